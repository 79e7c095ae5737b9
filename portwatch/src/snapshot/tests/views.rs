//! The TUI and the text report, built from ONE snapshot, show every column they share under the
//! same name and with the same figure: each shared column is found by its name in both views'
//! header, and the figure under it, row by row, is compared with `snapshot::cells`' and between
//! the two views.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::{Terminal, backend::TestBackend};

use super::super::{
    Limits, LostEvents, Snapshot,
    cells::{FailureGroupCells, GroupCells, ListenerCells, PoolCells, ProcessCells, RemoteCells},
};
use crate::{
    model::Model,
    report::{Context, Report, Source, tests::churn_exhaustion, text},
    tui::{App, Options, SourceInfo, ViewData, on_key, tests::fixtures::incident},
};

/// Columns whose figures are left-aligned (names, addresses); the others are right-aligned.
const LEFT: [&str; 8] = [
    "COMMAND",
    "TOP DESTINATION",
    "LISTENING ON",
    "OWNER",
    "REMOTE IP",
    "ERROR",
    "CALL",
    "ADDRESS",
];

/// The TUI on `snap` after `keys`, as lines of text (200×50).
fn tui(snap: &Snapshot, keys: &[char]) -> Vec<String> {
    let mut app = App::new(Options::default());
    app.update(ViewData {
        snapshot: snap.clone(),
        source: SourceInfo::Live,
        drill: None,
    });
    for &k in keys {
        on_key(&mut app, KeyEvent::from(KeyCode::Char(k)));
    }
    let mut t = Terminal::new(TestBackend::new(200, 50)).unwrap();
    t.draw(|f| crate::tui::draw(f, &app)).unwrap();
    t.backend()
        .to_string()
        .lines()
        .map(|l| l.trim_matches('"').to_string())
        .collect()
}

/// Where each of `names` stands in `header` (char indices), searched in order, each a whole
/// word: `None` when one is missing.
fn spans(header: &str, names: &[&str]) -> Option<Vec<(usize, usize)>> {
    let h: Vec<char> = header.chars().collect();
    let mut from = 0;
    let mut out = Vec::new();
    for name in names {
        let n: Vec<char> = name.chars().collect();
        let at = (from..=h.len().checked_sub(n.len())?).find(|&i| {
            h[i..i + n.len()] == n[..]
                && (i == 0 || h[i - 1] == ' ')
                && h.get(i + n.len()).is_none_or(|&c| c == ' ')
        })?;
        out.push((at, at + n.len()));
        from = at + n.len();
    }
    Some(out)
}

/// The figure under the column at `span` of the header: the word ending where the name ends
/// (right-aligned), or the text starting where it starts, up to two spaces (left-aligned).
fn figure(row: &str, (start, end): (usize, usize), left: bool) -> String {
    let r: Vec<char> = row.chars().collect();
    if left {
        let s: String = r.get(start..).unwrap_or_default().iter().collect();
        s.split("  ").next().unwrap_or_default().trim().to_string()
    } else {
        let end = end.min(r.len());
        let from = r[..end]
            .iter()
            .rposition(|&c| c == ' ')
            .map_or(0, |i| i + 1);
        r[from..end].iter().collect()
    }
}

/// In `lines` from `from`: the first header line with every name of `cols`, then the first line
/// after it containing `key`; checks that each column's figure there is the one `cols` gives.
/// Returns the row's index.
fn check(view: &str, lines: &[String], from: usize, key: &str, cols: &[(&str, &str)]) -> usize {
    let names: Vec<&str> = cols.iter().map(|(n, _)| *n).collect();
    let (h, sp) = lines
        .iter()
        .enumerate()
        .skip(from)
        .find_map(|(i, l)| spans(l, &names).map(|s| (i, s)))
        .unwrap_or_else(|| panic!("{view}: no header with {names:?}:\n{}", lines.join("\n")));
    let r = (h + 1..lines.len())
        .find(|&i| lines[i].contains(key))
        .unwrap_or_else(|| panic!("{view}: no row with {key} under\n{}", lines[h]));
    for ((name, want), span) in cols.iter().zip(sp) {
        let got = figure(&lines[r], span, LEFT.contains(name));
        assert_eq!(
            &got, want,
            "{view}: column {name} of the row with {key}\n{}\n{}",
            lines[h], lines[r]
        );
    }
    r
}

/// Both views' rows of one table show `cols`.
fn both(tui: &[String], report: &[String], key: &str, cols: &[(&str, &str)]) {
    check("TUI", tui, 0, key, cols);
    check("text report", report, 0, key, cols);
}

/// Every table both views have, from one snapshot of `model` at `ctx.window_end_ns`.
fn compare(model: &Model, ctx: Context) {
    let snap = Snapshot::build(
        model,
        ctx.window_end_ns,
        &Limits::REPORT,
        LostEvents::default(),
        Vec::new(),
    );
    let report = Report::new(ctx, snap.clone());
    let text: Vec<String> = text::render(&report).lines().map(str::to_string).collect();

    let pools = tui(&snap, &['2']);
    assert!(!snap.pools.is_empty());
    for p in &snap.pools {
        both(
            &pools,
            &text,
            &p.dst.to_string(),
            &PoolCells::of(p).columns(),
        );
    }
    let procs = tui(&snap, &['3']);
    assert!(!snap.processes.is_empty());
    for p in &snap.processes {
        let c = ProcessCells::of(p);
        both(&procs, &text, &format!(" {} ", c.pid), &c.columns());
    }
    // Process groups: the report keeps groups of more than one process, the TUI all.
    let groups = tui(&snap, &['3', 'g']);
    for g in &report.snapshot.process_groups {
        let c = GroupCells::of(g);
        both(&groups, &text, &format!("{} ", c.comm), &c.columns());
    }
    // Listeners, and the first one's remote IPs (the TUI shows the selected listener's).
    let inbound = tui(&snap, &['4']);
    assert!(!snap.listeners.is_empty() && !snap.listeners[0].by_remote.is_empty());
    for l in &snap.listeners {
        let key = l.local.to_string();
        both(&inbound, &text, &key, &ListenerCells::of(l).columns());
    }
    // Failure groups: the TUI's failures tab, the report's repeats.
    let fails = tui(&snap, &['5']);
    assert!(!snap.failures.groups.is_empty());
    for g in &snap.failures.groups {
        let c = FailureGroupCells::of(g, snap.at_ns);
        // The address ends the report's row.
        let key = format!(" {}", c.addr);
        check("TUI", &fails, 0, &key, &c.columns());
        let at = (text.iter())
            .position(|l| l.contains("repeats ("))
            .expect("the report's repeats");
        check("text report", &text, at, &key, &c.columns());
    }
    let l = &snap.listeners[0];
    let key = l.local.to_string();
    let at = check(
        "text report",
        &text,
        0,
        &key,
        &ListenerCells::of(l).columns(),
    );
    for r in &l.by_remote {
        let c = RemoteCells::of(r);
        let key = format!("{} ", c.ip);
        check("TUI", &inbound, 0, &key, &c.columns());
        check("text report", &text, at, &key, &c.columns());
    }
}

/// Figures in the tens of thousands (separators, not `28.2k`): a pool out of its 28,232 ports.
#[test]
fn the_views_agree_on_an_exhausted_default_range() {
    let (sim, ctx) = churn_exhaustion();
    assert_eq!(sim.m.pools(sim.now(), 1)[0].in_use, 28_232);
    compare(&sim.m, ctx);
}

/// The TUI's fixture: a group of short-lived curls, CLOSE_WAIT at a listener, failures.
#[test]
fn the_views_agree_on_the_tui_fixture() {
    let inc = incident();
    let snap = Snapshot::build(
        &inc.model,
        inc.now,
        &Limits::REPORT,
        LostEvents::default(),
        Vec::new(),
    );
    assert!(snap.process_groups.iter().any(|g| g.processes > 1));
    let ctx = Context {
        host: "web-1".into(),
        kernel: "6.18.0".into(),
        source: Source::Live,
        recording: None,
        window_start_ns: 0,
        window_end_ns: inc.now,
        generated_at: None,
    };
    compare(&inc.model, ctx);
}

/// The comparison catches a view that prints another figure under a shared name.
#[test]
#[should_panic(expected = "column CONN/s")]
fn another_figure_under_a_shared_name_is_caught() {
    let (sim, ctx) = churn_exhaustion();
    let report = Report::build(&sim.m, ctx, LostEvents::default(), Limits::REPORT);
    let text: Vec<String> = text::render(&report).lines().map(str::to_string).collect();
    let p = &report.snapshot.pools[0];
    let mut c = PoolCells::of(p);
    c.conn_per_s = super::super::cells::rate(p.rates.new_per_s + 1.0);
    check("text report", &text, 0, &p.dst.to_string(), &c.columns());
}
