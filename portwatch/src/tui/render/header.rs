//! The header: source and loss, sockets by state as `ss -s` counts them, the sysctls that
//! decide capacity.

use ratatui::{
    Frame,
    layout::Rect,
    text::{Line, Span},
};

use super::lines;
use crate::{
    event::TcpState,
    explain::tw_buckets_near,
    tui::{
        app::App,
        data::SourceInfo,
        widgets::{count, duration, trunc},
    },
};

pub const HEIGHT: u16 = 3;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    lines(
        frame,
        area,
        vec![
            source_line(app, area.width),
            totals_line(app),
            sysctl_line(app),
        ],
    )
}

fn source_line<'a>(app: &App, width: u16) -> Line<'a> {
    let t = app.theme;
    let v = &app.view;
    let lost = v.snapshot.lost_events.total;
    let mut right = vec![
        Span::styled("events ", t.dim()),
        Span::raw(count(v.snapshot.model.events)),
        Span::styled("  lost ", t.dim()),
        Span::styled(count(lost), t.nonzero_bad(lost)),
    ];
    if lost > 0 {
        // Said in words, not only in colour (the Lost section of the report says by kind).
        right.insert(
            0,
            Span::styled("DEGRADED  ", t.nonzero_bad(lost).patch(t.bold())),
        );
    }
    let rw: usize = right.iter().map(Span::width).sum();
    let mut left = vec![Span::styled("portwatch ", t.bold())];
    match &v.source {
        SourceInfo::Live => left.push(Span::styled("● live", t.ok().patch(t.bold()))),
        SourceInfo::Replay(r) => {
            left.push(Span::styled("▶ replay ", t.info().patch(t.bold())));
            let mut tail = vec![Span::raw(match r.duration_s {
                Some(d) => format!("  {} / {}", duration(r.position_s), duration(d)),
                None => format!("  {}", duration(r.position_s)),
            })];
            tail.push(Span::raw(format!("  ×{}", r.speed)));
            if r.ended {
                tail.push(Span::styled("  ENDED", t.warn()));
            } else if r.paused {
                tail.push(Span::styled("  PAUSED", t.warn().patch(t.bold())));
            }
            // The file name gives way to position, speed, pause and loss.
            let used: usize = left.iter().chain(&tail).map(Span::width).sum::<usize>() + rw + 2;
            let room = usize::from(width).saturating_sub(used).max(4);
            left.push(Span::raw(trunc(&r.file, room).into_owned()));
            left.extend(tail);
        }
    }
    let lw: usize = left.iter().map(Span::width).sum();
    let pad = usize::from(width).saturating_sub(lw + rw).max(2);
    left.push(Span::raw(" ".repeat(pad)));
    left.extend(right);
    Line::from(left)
}

/// `ss -s` style: every socket, then the states that matter for ports.
fn totals_line<'a>(app: &App) -> Line<'a> {
    let t = app.theme;
    let all = &app.view.snapshot.totals.all;
    let shown = [
        (TcpState::Established, "estab"),
        (TcpState::SynSent, "syn-sent"),
        (TcpState::TimeWait, "timewait"),
        (TcpState::CloseWait, "close-wait"),
        (TcpState::Listen, "listen"),
    ];
    let mut spans = vec![
        Span::styled("TCP ", t.dim()),
        Span::styled(all.total().to_string(), t.bold()),
    ];
    let mut rest = all.total();
    for (s, name) in shown {
        let n = all.get(s);
        rest -= n;
        spans.push(Span::styled(format!("  {name} "), t.dim()));
        spans.push(Span::raw(n.to_string()));
    }
    spans.push(Span::styled("  other ", t.dim()));
    spans.push(Span::raw(rest.to_string()));
    Line::from(spans)
}

fn tw_reuse_text(v: u8, timestamps: u8) -> String {
    let what = match v {
        0 => "off",
        1 => "on",
        2 => "loopback",
        _ => "?",
    };
    if v != 0 && timestamps == 0 {
        format!("{v} ({what}, no timestamps: inactive)")
    } else {
        format!("{v} ({what})")
    }
}

/// The namespace that matters most (the one of the most urgent pool), its port range, usable
/// ports, `tcp_tw_reuse` and timewait buckets.
fn sysctl_line<'a>(app: &App) -> Line<'a> {
    let t = app.theme;
    let s = &app.view.snapshot;
    let ns = s.pools.first().map(|p| p.netns);
    let Some(n) = s
        .sysctls
        .iter()
        .find(|n| Some(n.netns) == ns)
        .or_else(|| s.sysctls.iter().find(|n| n.netns != 0))
        .or(s.sysctls.first())
    else {
        return Line::styled("no namespace seen yet", t.dim());
    };
    let (lo, hi) = n.sysctls.port_range;
    let mut spans = vec![
        Span::styled("ports ", t.dim()),
        Span::raw(format!("{lo}–{hi}")),
        Span::styled(
            format!(" ({} usable)", count(u64::from(n.capacity.capacity))),
            t.dim(),
        ),
        Span::styled("  tw_reuse ", t.dim()),
        Span::raw(tw_reuse_text(n.sysctls.tw_reuse, n.sysctls.timestamps)),
        Span::styled("  tw ", t.dim()),
    ];
    let tw_full = tw_buckets_near(n.timewait_sockets, n.sysctls.max_tw_buckets);
    spans.push(Span::styled(
        format!(
            "{}/{}",
            count(u64::from(n.timewait_sockets)),
            count(u64::from(n.sysctls.max_tw_buckets))
        ),
        if tw_full { t.bad() } else { t.plain() },
    ));
    if n.tw_overflow_since_start > 0 {
        spans.push(Span::styled(
            format!(" overflow {}", count(n.tw_overflow_since_start)),
            t.bad(),
        ));
    }
    spans.push(Span::styled(format!("  netns {}", n.netns), t.dim()));
    let others = s.sysctls.len().saturating_sub(1);
    if others > 0 {
        spans.push(Span::styled(format!(" +{others}"), t.dim()));
    }
    if n.assumed {
        spans.push(Span::styled("  sysctls assumed", t.warn()));
    }
    Line::from(spans)
}

/// One line of warnings (degraded hooks and the like), the first in full.
pub fn warnings(frame: &mut Frame, area: Rect, app: &App) {
    let w = &app.view.snapshot.warnings;
    let Some(first) = w.first() else {
        return;
    };
    let t = app.theme;
    let mut spans = vec![
        Span::styled("⚠ ", t.warn()),
        Span::styled(first.clone(), t.warn()),
    ];
    if w.len() > 1 {
        spans.push(Span::styled(
            format!("  (+{} more in ?)", w.len() - 1),
            t.dim(),
        ));
    }
    lines(frame, area, vec![Line::from(spans)]);
}
