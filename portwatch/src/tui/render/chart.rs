//! The timeline chart of one pool: its ports in use by state, stacked against its capacity,
//! and its EADDRNOTAVAIL failures per second below, one column per second of model time, the
//! newest at the right. The figures are the App's timeline (`crate::timeline`, the one the
//! HTML report draws from), sampled from the snapshots; nothing here counts sockets.
//!
//! Every state has its own texture (`█` ESTABLISHED, `▒` SYN_SENT, `░` any other, `▓`
//! TIME_WAIT) as well as its colour, so the chart reads without colour (`NO_COLOR`) and in a
//! text snapshot; the top of the stack is drawn in eighths of a row.

use ratatui::{
    style::Style,
    text::{Line, Span},
};

use crate::{
    event::TcpState,
    snapshot::cells::{col, count, duration},
    timeline::{PoolSample, PoolSeries},
    tui::theme::Theme,
};

const SEC: u64 = 1_000_000_000;

/// A second with no sample (the pool was not shown, or a replay jumped) carries the one
/// before it this long; a longer gap stays empty.
const CARRY_S: usize = 5;

/// A chart spans at least this many seconds (when it has the columns).
const MIN_SPAN_S: usize = 60;

/// The stacked layers, bottom first: a name for the legend, the texture, the colour.
const LAYERS: [(&str, char); 4] = [
    (col::ESTAB, '█'),
    ("SYN_SENT", '▒'),
    ("other", '░'),
    (col::TIME_WAIT, '▓'),
];

fn layer_style(t: Theme, i: usize) -> Style {
    match i {
        0 => t.ok(),
        1 => t.info(),
        2 => t.plain(),
        _ => t.warn(),
    }
}

/// Lower eighths of a cell, 1 to 8.
const EIGHTHS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A sample's ports by layer.
fn layers(s: &PoolSample) -> [u32; 4] {
    let est = s.states.get(TcpState::Established);
    let syn = s.states.get(TcpState::SynSent);
    let tw = s.states.get(TcpState::TimeWait);
    let other = s.states.total().saturating_sub(est + syn + tw);
    [est, syn, other, tw]
}

/// One column: ports by layer, failures in that second.
#[derive(Clone, Copy, Default)]
struct Column {
    layers: [u32; 4],
    failures: u64,
    seen: bool,
}

/// The last `width` seconds up to `now_ns`, one column each (samples after `now_ns` are left
/// out: the display is paused there).
fn columns(series: &PoolSeries, now_ns: u64, width: usize) -> Vec<Column> {
    let mut v = vec![Column::default(); width];
    let last = now_ns / SEC;
    for s in series.samples.iter().filter(|s| s.t_ns <= now_ns) {
        // Seconds before now: the rightmost column is 0.
        let ago = (last - s.t_ns / SEC) as usize;
        if ago < width {
            v[width - 1 - ago] = Column {
                layers: layers(s),
                failures: s.failures,
                seen: true,
            };
        }
    }
    // Carry a sample over the seconds after it that have none (not its failures).
    let mut since = None;
    for i in 0..width {
        if v[i].seen {
            since = Some(i);
        } else if let Some(j) = since
            && i - j <= CARRY_S
        {
            v[i] = Column {
                failures: 0,
                ..v[j]
            };
        }
    }
    v
}

/// The chart's legend: the layers, the scale and the failures.
pub fn legend<'a>(t: Theme, series: Option<&PoolSeries>, now_ns: u64) -> Vec<Span<'a>> {
    let mut v = Vec::new();
    for (i, (name, glyph)) in LAYERS.iter().enumerate() {
        v.push(Span::styled(format!("{glyph} "), layer_style(t, i)));
        v.push(Span::raw(format!("{name}  ")));
    }
    let Some(s) = series else {
        return v;
    };
    let shown: Vec<&PoolSample> = s.samples.iter().filter(|x| x.t_ns <= now_ns).collect();
    let fail: u64 = shown.iter().map(|x| x.failures).sum();
    let cap = shown.last().map_or(0, |x| x.capacity);
    v.push(Span::styled(
        format!("of {} ports", count(u64::from(cap))),
        t.dim(),
    ));
    v.push(Span::styled("  failed ", t.dim()));
    v.push(Span::styled(count(fail), t.nonzero_bad(fail)));
    v
}

/// The chart in `width` × `height` cells: `height - 2` rows of ports in use, a row of
/// failures per second, a time axis. Fewer than 3 rows: nothing.
pub fn chart<'a>(
    t: Theme,
    series: Option<&PoolSeries>,
    now_ns: u64,
    width: u16,
    height: u16,
) -> Vec<Line<'a>> {
    let (width, height) = (usize::from(width), usize::from(height));
    let Some(series) = series.filter(|s| s.samples.iter().any(|x| x.t_ns <= now_ns)) else {
        return vec![Line::styled("  no history yet for this pool", t.dim())];
    };
    if height < 3 {
        return Vec::new();
    }
    let rows = height - 2;
    let cap = series
        .samples
        .iter()
        .rfind(|x| x.t_ns <= now_ns)
        .map_or(0, |x| x.capacity);
    // The scale's top: the capacity, or a peak above it.
    let shown = || series.samples.iter().filter(|x| x.t_ns <= now_ns);
    let peak = shown().map(|x| x.states.total()).max().unwrap_or(0);
    let top = cap.max(peak).max(1);
    // The label column: the top's figure, `0`, `fail`.
    let top_label = count(u64::from(top));
    let lw = top_label.len().max(4) + 1;
    let pw = width.saturating_sub(lw).max(1);
    // Seconds shown: the history there is, at least a minute, at most one per column; a
    // short history on a wide terminal gets several columns per second.
    let oldest = shown().next().map_or(now_ns, |x| x.t_ns);
    let span = ((now_ns / SEC).saturating_sub(oldest / SEC) + 1) as usize;
    let secs = span.clamp(MIN_SPAN_S.min(pw), pw);
    // Whole columns per second; where that is one, every column is a second.
    let (secs, per) = match pw / secs {
        0 | 1 => (pw, 1),
        per => (secs, per),
    };
    let pad = " ".repeat(pw - secs * per);
    let cols = columns(series, now_ns, secs);
    let units = (rows * 8) as u64;
    let eighths = |n: u32| -> usize {
        let e = (u64::from(n) * units + u64::from(top) / 2) / u64::from(top);
        // Anything in use shows, however small against the capacity.
        (e as usize).max(usize::from(n > 0))
    };

    let mut out = Vec::with_capacity(height);
    for r in (0..rows).rev() {
        let label = if r == rows - 1 {
            top_label.clone()
        } else if r == 0 {
            "0".into()
        } else {
            String::new()
        };
        let mut spans = vec![
            Span::styled(format!("{label:>w$} ", w = lw - 1), t.dim()),
            Span::raw(pad.clone()),
        ];
        let (lo, hi) = (r * 8, r * 8 + 8);
        for c in &cols {
            // Cumulative tops of the layers, in eighths.
            let mut tops = [0usize; 4];
            let mut sum = 0;
            for (i, n) in c.layers.iter().enumerate() {
                sum += n;
                tops[i] = eighths(sum);
            }
            let total = tops[3];
            let (glyph, style) = if total <= lo {
                (' ', t.plain())
            } else if total >= hi {
                // A full cell: the layer at its middle.
                let mid = lo + 4;
                let i = tops.iter().position(|&top| top > mid).unwrap_or(3);
                (LAYERS[i].1, layer_style(t, i))
            } else {
                // The top of the stack, in the topmost layer's colour.
                let i = (0..4).rev().find(|&i| c.layers[i] > 0).unwrap_or(0);
                (EIGHTHS[total - lo], layer_style(t, i))
            };
            spans.push(Span::styled(glyph.to_string().repeat(per), style));
        }
        out.push(Line::from(spans));
    }

    // Failures per second, scaled to the worst second shown.
    let worst = cols.iter().map(|c| c.failures).max().unwrap_or(0);
    let mut spans = vec![
        Span::styled(format!("{:>w$} ", "fail", w = lw - 1), t.dim()),
        Span::raw(pad.clone()),
    ];
    for c in &cols {
        let g = if c.failures == 0 {
            ' '
        } else {
            EIGHTHS[(c.failures * 8).div_ceil(worst).clamp(1, 8) as usize]
        };
        spans.push(Span::styled(g.to_string().repeat(per), t.bad()));
    }
    out.push(Line::from(spans));

    out.push(Line::styled(
        format!("{:w$}{pad}{}", "", axis(secs, per, worst), w = lw),
        t.dim(),
    ));
    out
}

/// The time axis under `secs` seconds of `per` columns each: the oldest second, the middle,
/// now; and the worst second's failures.
fn axis(secs: usize, per: usize, worst: u64) -> String {
    let pw = secs * per;
    let left = format!("-{}", duration((secs - 1) as f64));
    let mid = format!("-{}", duration(((secs - 1) / 2) as f64));
    let right = if worst > 0 {
        format!("now (fail max {}/s)", count(worst))
    } else {
        "now".to_string()
    };
    let mut line: Vec<char> = vec![' '; pw];
    let put = |line: &mut Vec<char>, at: usize, s: &str| {
        for (k, ch) in s.chars().enumerate() {
            if let Some(c) = line.get_mut(at + k) {
                *c = ch;
            }
        }
    };
    if pw >= left.len() + mid.len() + right.len() + 4 {
        put(&mut line, 0, &left);
        let at = (secs - 1 - (secs - 1) / 2) * per;
        put(&mut line, at.saturating_sub(mid.len() / 2), &mid);
    } else if pw >= left.len() + right.len() + 2 {
        put(&mut line, 0, &left);
    }
    put(&mut line, pw.saturating_sub(right.chars().count()), &right);
    line.into_iter().collect()
}
