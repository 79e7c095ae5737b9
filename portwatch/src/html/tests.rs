//! The page of a simulated TIME_WAIT exhaustion: self-contained, one chart per pool shown,
//! the report's figures in it, text escaped.

use super::*;
use crate::{
    explain::{explain, tests::sim::Sim},
    model::testutil::task,
    report::{Context, LostEvents, Source},
};

fn incident() -> (Report, Timeline) {
    let mut sim = Sim::range(40000, 40049, 0);
    let start = sim.now();
    let mut tl = Timeline::new();
    for k in 0..10 {
        if k < 6 {
            sim.churn(
                |_| task(4242, "cli<ent>"),
                "127.0.0.1",
                "127.0.0.1:8080",
                20.0,
                1.0,
            );
        } else {
            sim.advance(1.0);
        }
        let now = sim.now();
        tl.sample(now, &sim.m.pools(now, 10), &explain(&sim.m, now));
    }
    let ctx = Context {
        host: "test-host".into(),
        kernel: "6.18.0".into(),
        source: Source::Recording,
        recording: Some("/tmp/incident.pwr".into()),
        window_start_ns: start,
        window_end_ns: sim.now(),
        generated_at: None,
    };
    let report = Report::build(&sim.m, ctx, LostEvents::default(), Default::default());
    (report, tl)
}

#[test]
fn the_page_holds_the_findings_one_chart_per_pool_and_the_figures() {
    let (report, tl) = incident();
    let page = render(&report, &tl);
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.ends_with("</html>\n"));
    // Self-contained: nothing to fetch, no script.
    for needle in ["<script", " src=", "href=", "url(", "@import"] {
        assert!(!page.contains(needle), "{needle}");
    }
    assert_eq!(page.matches(r#"<figure class="pool-chart""#).count(), 1);
    assert_eq!(page.matches("<svg").count(), 1);
    let p = &report.pools[0];
    assert!(page.contains(&format!(r#"data-capacity="{}""#, p.capacity)));
    assert!(page.contains(&format!(r#"data-eaddrnotavail="{}""#, p.eaddrnotavail)));
    assert!(p.eaddrnotavail > 0);
    assert!(page.contains(r#"data-peak-in-use="50""#), "the pool filled");
    assert!(page.contains(r#"data-state="TIME_WAIT""#));
    assert_eq!(
        page.matches(r#"<article class="finding"#).count(),
        report.findings.len()
    );
    assert!(page.contains(r#"data-cause="time_wait_churn""#));
    // The process name is escaped wherever it appears.
    assert!(!page.contains("cli<ent>"));
    assert!(page.contains("cli&lt;ent&gt;"));
    assert!(page.contains(r#"data-lost-total="0""#));
    assert!(page.contains("40000 40049"), "the sysctls in force");
    // The failures' repeats, one row per group, as the text report lists them.
    let groups = &report.failures.groups;
    assert_eq!(groups.len(), 1);
    let repeats = &page[page.find(r#"<table class="repeats">"#).expect("repeats")..];
    let repeats = &repeats[..repeats.find("</table>").unwrap()];
    assert_eq!(repeats.matches("<tr><td>").count(), groups.len());
    assert!(
        repeats.contains("cli&lt;ent&gt; → <code>127.0.0.1:8080</code>"),
        "{repeats}"
    );
}

#[test]
fn escaping() {
    assert_eq!(
        esc(r#"<a href="x">&'"#),
        "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
    );
}
