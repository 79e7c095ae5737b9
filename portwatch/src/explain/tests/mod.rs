//! Rule tests on incident scenarios (`sim`), positive and negative, and the myths no finding
//! may repeat.

mod bind;
mod config;
mod episodes;
mod leak;
mod pools;
mod ranking;
mod search;
pub(crate) mod sim;

use super::{Cause, Finding, Severity};

/// The only finding of `cause` (panics if none or several).
pub(crate) fn one(fs: &[Finding], cause: Cause) -> &Finding {
    let v: Vec<&Finding> = fs.iter().filter(|f| f.cause == cause).collect();
    assert_eq!(v.len(), 1, "{cause:?} findings: {fs:#?}");
    v[0]
}

pub(crate) fn causes(fs: &[Finding]) -> Vec<(Cause, Severity)> {
    fs.iter().map(|f| (f.cause, f.severity)).collect()
}

/// Whether the finding's remedy `id` is said to help (`None`: not mentioned).
pub(crate) fn helps(f: &Finding, id: &str) -> Option<bool> {
    f.remedies.iter().find(|r| r.id == id).map(|r| r.helps)
}

/// docs/kernel-facts.md: tcp_fin_timeout never shortens TIME_WAIT (it bounds orphaned FIN_WAIT2 only: the
/// one finding where it helps); tcp_tw_reuse never helps ESTABLISHED, CLOSE_WAIT, FIN_WAIT2,
/// SYN_SENT or bind(); no finding claims otherwise. Every finding has one
/// evidence sentence, a title, and at least one remedy that helps.
pub(crate) fn assert_sound(fs: &[Finding]) {
    for f in fs {
        if f.cause != Cause::FinWait2Hold {
            assert_ne!(helps(f, "tcp_fin_timeout"), Some(true), "{f:#?}");
        }
        assert_ne!(helps(f, "tcp_tw_recycle"), Some(true), "{f:#?}");
        if f.cause != Cause::TimeWaitChurn && f.cause != Cause::Config {
            assert_ne!(helps(f, "tcp_tw_reuse"), Some(true), "{f:#?}");
        }
        assert!(!f.title.is_empty() && f.evidence.ends_with('.'), "{f:#?}");
        assert_eq!(
            f.evidence.matches(". ").count(),
            0,
            "one sentence: {}",
            f.evidence
        );
        assert!(f.helping().count() > 0, "{f:#?}");
        let all = format!("{f:?}");
        assert!(!all.contains("120 s"), "TIME_WAIT is 60 s: {all}");
    }
}
