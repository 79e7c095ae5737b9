//! What each traced mode's process says, made into a [`Tally`]: its standard output (lines
//! counted as they come), its summary on stderr, a recording read back, a JSON report.

use std::{
    io::{BufRead, BufReader, Read},
    path::Path,
};

use anyhow::{Context as _, bail};
use portwatch::{
    model::Input,
    record::{ContextRecord, Item, Reader},
};

use crate::tracer::{Parse, StdoutSeen, Tally};

pub fn read_stdout(out: impl Read, parse: Parse) -> StdoutSeen {
    let mut r = BufReader::with_capacity(1 << 20, out);
    match parse {
        Parse::EventsJson | Parse::Tcpstates { .. } => {
            let (mut state, mut total) = (0, 0);
            let mut line = Vec::new();
            while matches!(r.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                match parse {
                    Parse::EventsJson => {
                        total += 1;
                        if memfind(&line, b"\"type\":\"state\"") {
                            state += 1;
                        }
                    }
                    Parse::Tcpstates { port } => {
                        if tcpstates_matches(&line, port) {
                            state += 1;
                            total += 1;
                        }
                    }
                    _ => unreachable!(),
                }
                line.clear();
            }
            StdoutSeen::Lines { state, total }
        }
        _ => {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            StdoutSeen::Text(s)
        }
    }
}

fn memfind(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// `SKADDR C-PID C-COMM LADDR LPORT RADDR RPORT OLDSTATE -> NEWSTATE MS` (comm may hold
/// spaces, so count from the right).
pub fn tcpstates_matches(line: &[u8], port: u16) -> bool {
    let line = String::from_utf8_lossy(line);
    let t: Vec<&str> = line.split_whitespace().collect();
    if t.len() < 10 || t[t.len() - 3] != "->" {
        return false;
    }
    let p = port.to_string();
    t[t.len() - 7] == p || t[t.len() - 5] == p
}

pub fn parse_output(
    parse: Parse,
    out: &Path,
    seen: StdoutSeen,
    err: &str,
) -> anyhow::Result<Tally> {
    let text = || match &seen {
        StdoutSeen::Text(s) => s.as_str(),
        StdoutSeen::Lines { .. } => "",
    };
    let mut t = Tally::default();
    match parse {
        Parse::EventsJson => {
            let StdoutSeen::Lines { state, total } = seen else {
                unreachable!()
            };
            t.state_received = Some(state);
            t.received = total;
            t.lost = summary_number(err, " lost").context("no summary on stderr")?;
            t.lost_by = summary_lost_by(err);
        }
        Parse::Tcpstates { .. } => {
            let StdoutSeen::Lines { state, total } = seen else {
                unreachable!()
            };
            t.state_received = Some(state);
            t.received = total;
            // "lost N events on CPU #C"
            t.lost = err
                .lines()
                .filter_map(|l| {
                    l.trim()
                        .strip_prefix("lost ")?
                        .split(' ')
                        .next()?
                        .parse::<u64>()
                        .ok()
                })
                .sum::<u64>();
        }
        Parse::Tui => {
            t.received = summary_number(err, " events received").context("no summary on stderr")?;
            t.lost = summary_number(err, " lost").context("no summary on stderr")?;
            t.lost_by = summary_lost_by(err);
        }
        Parse::Recording => return read_recording(out),
        Parse::ReportJson => {
            let v: serde_json::Value = serde_json::from_str(text())
                .with_context(|| format!("report JSON; stderr: {}", err.trim()))?;
            t.received = v["model"]["events"].as_u64().context("model.events")?;
            t.lost = v["lost_events"]["total"]
                .as_u64()
                .context("lost_events.total")?;
            if let Some(o) = v["lost_events"].as_object() {
                t.lost_by = o
                    .iter()
                    .filter(|(k, _)| *k != "total")
                    .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                    .filter(|(_, v)| *v > 0)
                    .collect();
            }
        }
        Parse::StandinJson => {
            t = serde_json::from_str(text().trim())
                .with_context(|| format!("stand-in output; stderr: {}", err.trim()))?;
        }
    }
    Ok(t)
}

/// The number before `what` in portwatch's summary line ("… 12 lost (…").
fn summary_number(err: &str, what: &str) -> Option<u64> {
    let line = err.lines().rev().find(|l| l.contains("events received"))?;
    let before = &line[..line.find(what)?];
    before.split_whitespace().last()?.parse().ok()
}

/// The summary line's losses by kind, named as [`lost_by`] names them: "… lost (ring full or
/// unreadable: state 1, call 0, timewait 2; skipped program runs: state 3, calls 0; untracked
/// calls 0; undecodable 0); …". Only the non-zero ones.
fn summary_lost_by(err: &str) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    let Some(line) = err.lines().rev().find(|l| l.contains("events received")) else {
        return out;
    };
    let Some(inner) = line
        .split_once("(ring full or unreadable: ")
        .and_then(|(_, r)| r.split_once(')'))
        .map(|(i, _)| i)
    else {
        return out;
    };
    for group in inner.split("; ") {
        let (prefix, items) = match group.split_once(": ") {
            Some(("skipped program runs", items)) => ("skipped_", items),
            _ => ("", group),
        };
        for item in items.split(", ") {
            let Some((name, n)) = item.rsplit_once(' ') else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            let key = match (prefix, name) {
                ("", "untracked calls") => "untracked_calls".to_string(),
                ("", "undecodable") => "decode_errors".to_string(),
                ("", kind) => format!("{kind}_ring_full"),
                (p, kind) => format!("{p}{kind}"),
            };
            if n > 0 {
                out.insert(key, n);
            }
        }
    }
    out
}

fn read_recording(path: &Path) -> anyhow::Result<Tally> {
    let mut r = Reader::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut t = Tally {
        state_received: Some(0),
        recording_bytes: Some(std::fs::metadata(path)?.len()),
        ..Tally::default()
    };
    let mut loss = None;
    for item in r.by_ref() {
        match item? {
            Item::Event(e) => {
                t.received += 1;
                if matches!(e.kind, portwatch::event::EventKind::State(_)) {
                    *t.state_received.as_mut().unwrap() += 1;
                }
            }
            Item::Context(ContextRecord::Input(Input::Loss(c))) => loss = Some(c.value),
            Item::Context(_) => {}
        }
    }
    if !r.integrity().is_complete() {
        bail!("{}: {}", path.display(), r.integrity());
    }
    let c = loss.context("no loss counters in the recording")?;
    t.lost = c.lost_total();
    t.lost_by = lost_by(&c);
    t.read_failed = Some(c.read_failed);
    t.kernel_seen = Some(c.state.seen + c.skipped.state);
    Ok(t)
}

/// The non-zero parts of `Counters::lost_total`.
pub fn lost_by(c: &portwatch::collect::Counters) -> std::collections::BTreeMap<String, u64> {
    [
        ("state_ring_full", c.state.lost),
        ("call_ring_full", c.call.lost),
        ("timewait_ring_full", c.timewait.lost),
        ("decode_errors", c.decode_errors),
        ("skipped_state", c.skipped.state),
        ("skipped_calls", c.skipped.calls),
        ("untracked_calls", c.untracked_calls),
    ]
    .into_iter()
    .filter(|(_, v)| *v > 0)
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_and_tcpstates_lines() {
        let s = "portwatch: tracing\nportwatch: 39 events received, 2 lost (ring full …)";
        assert_eq!(summary_number(s, " lost"), Some(2));
        // The line `portwatch events` and the TUI print when they stop.
        let mut c = portwatch::collect::Counters::default();
        c.state.lost = 5;
        c.timewait.lost = 1;
        c.skipped.state = 2;
        c.decode_errors = 3;
        let line = "portwatch: 90 events received, 11 lost (ring full or unreadable: state 5, \
                    call 0, timewait 1; skipped program runs: state 2, calls 0; untracked calls 0; \
                    undecodable 3); timer program runs skipped (mostly unrelated timers): 7";
        assert_eq!(summary_lost_by(line), lost_by(&c), "{line}");
        assert_eq!(summary_number(line, " lost"), Some(c.lost_total()));
        let l =
            b"ffff8881 1234 my comm 127.0.0.1 40000 127.0.0.1 23100 SYN_SENT -> ESTABLISHED 0.01\n";
        assert!(tcpstates_matches(l, 23100));
        assert!(!tcpstates_matches(l, 8080));
    }
}
