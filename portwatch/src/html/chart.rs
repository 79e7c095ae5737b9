//! One pool's timeline as inline SVG: ports in use stacked by state against the capacity
//! line, failures per second in a strip below, and the moments findings appeared and ended.
//! Times are seconds from the window's start; nothing is fetched, nothing is scripted (each
//! point's figures are in `<title>` tooltips).

use std::fmt::Write as _;

use super::esc;
use crate::{
    event::TcpState,
    explain::Severity,
    model::Episode,
    timeline::{FindingSpan, PoolSeries},
};

const W: f64 = 960.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 20.0;
/// The stacked area: top and height.
const AREA_TOP: f64 = 28.0;
const AREA_H: f64 = 200.0;
/// The failures strip, below the area's axis labels.
const FAIL_TOP: f64 = AREA_TOP + AREA_H + 42.0;
const FAIL_H: f64 = 50.0;
const H: f64 = FAIL_TOP + FAIL_H + 28.0;

/// The states drawn, bottom first, with their CSS class (colours in the page's style).
pub const LAYERS: [(&[TcpState], &str, &str); 6] = [
    (&[TcpState::Established], "ESTABLISHED", "st-est"),
    (
        &[TcpState::SynSent, TcpState::SynRecv],
        "SYN_SENT",
        "st-syn",
    ),
    (
        &[TcpState::FinWait1, TcpState::FinWait2, TcpState::Closing],
        "FIN_WAIT",
        "st-fin",
    ),
    (
        &[TcpState::CloseWait, TcpState::LastAck],
        "CLOSE_WAIT",
        "st-cw",
    ),
    (&[TcpState::TimeWait], "TIME_WAIT", "st-tw"),
    (
        &[
            TcpState::Close,
            TcpState::Listen,
            TcpState::NewSynRecv,
            TcpState::BoundInactive,
        ],
        "other",
        "st-other",
    ),
];

/// The time axis: the window, in model ns.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub start_ns: u64,
    pub end_ns: u64,
}

impl Window {
    fn secs(&self, t_ns: u64) -> f64 {
        t_ns.saturating_sub(self.start_ns) as f64 / 1e9
    }
    fn len_s(&self) -> f64 {
        self.secs(self.end_ns).max(1.0)
    }
    fn x(&self, t_ns: u64) -> f64 {
        LEFT + (self.secs(t_ns) / self.len_s()).min(1.0) * (W - LEFT - RIGHT)
    }
}

/// A round step for about `n` ticks over `span`.
fn step(span: f64, n: f64) -> f64 {
    let raw = span / n;
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

/// The SVG of one pool over `win`, with the finding spans and exhaustion episodes about it.
pub fn render(
    series: &PoolSeries,
    spans: &[&FindingSpan],
    episodes: &[&Episode],
    win: Window,
) -> String {
    let cap = series.capacity();
    let top = f64::from(cap.max(series.peak_in_use()).max(1)) * 1.08;
    let y = |v: f64| AREA_TOP + AREA_H - v / top * AREA_H;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="timeline" viewBox="0 0 {W} {H}" role="img" xmlns="http://www.w3.org/2000/svg" aria-label="ports in use by state against capacity, and failures per second">"#
    );
    // Finding spans: a band across the area per span, coloured by severity.
    for (k, span) in spans.iter().enumerate() {
        let (x0, x1) = (
            win.x(span.first_ns),
            win.x(span.last_ns).max(win.x(span.first_ns) + 2.0),
        );
        let sev = severity_class(span.severity);
        let ended = if span.open {
            "still present at the end".to_string()
        } else {
            format!("ended at {:.0} s", win.secs(span.last_ns))
        };
        let _ = write!(
            s,
            r#"<g class="span {sev}" data-first-s="{:.0}" data-last-s="{:.0}"><title>{} — from {:.0} s, {ended}</title><rect class="band" x="{x0:.1}" y="{AREA_TOP}" width="{:.1}" height="{AREA_H}"/><rect class="tag" x="{x0:.1}" y="{:.1}" width="{:.1}" height="6"/><line class="start" x1="{x0:.1}" x2="{x0:.1}" y1="{:.1}" y2="{}"/></g>"#,
            win.secs(span.first_ns),
            win.secs(span.last_ns),
            esc(&span.title),
            win.secs(span.first_ns),
            x1 - x0,
            4.0 + 8.0 * k as f64,
            x1 - x0,
            4.0 + 8.0 * k as f64,
            AREA_TOP + AREA_H,
        );
    }
    // Exhaustion episodes: a hatched band from start to end (to the window's end while
    // ongoing) over the area and the failures strip, marked where the cause was read.
    for e in episodes {
        let end = e.end_ns.unwrap_or(win.end_ns);
        let (x0, x1) = (win.x(e.start_ns), win.x(end).max(win.x(e.start_ns) + 2.0));
        let c = e.cause_composition();
        let held: Vec<String> = c
            .states
            .iter()
            .map(|(st, n)| format!("{} {n}", st.name()))
            .collect();
        let until = match e.end_ns {
            Some(t) => format!("to {:.0} s", win.secs(t)),
            None => "ongoing at the end".to_string(),
        };
        let xc = win.x(c.at_ns);
        let _ = write!(
            s,
            r#"<g class="episode" data-start-s="{:.0}" data-end-s="{}" data-failures="{}"><title>exhaustion episode from {:.0} s {until}: {} connect() failures; held when the cause was read ({:.0} s): {}</title><rect class="episode-band" x="{x0:.1}" y="{AREA_TOP}" width="{:.1}" height="{:.1}"/><line class="episode-cause" x1="{xc:.1}" x2="{xc:.1}" y1="{AREA_TOP}" y2="{:.1}"/></g>"#,
            win.secs(e.start_ns),
            e.end_ns
                .map_or(String::new(), |t| format!("{:.0}", win.secs(t))),
            e.failures,
            win.secs(e.start_ns),
            e.failures,
            win.secs(c.at_ns),
            esc(&held.join(", ")),
            x1 - x0,
            FAIL_TOP + FAIL_H - AREA_TOP,
            FAIL_TOP + FAIL_H,
        );
    }
    // Stacked areas, bottom layer first.
    let mut below = vec![0.0f64; series.samples.len()];
    for (states, name, class) in LAYERS {
        let values: Vec<f64> = series
            .samples
            .iter()
            .map(|p| f64::from(states.iter().map(|&st| p.states.get(st)).sum::<u32>()))
            .collect();
        if values.iter().all(|v| *v == 0.0) {
            continue;
        }
        let mut pts = String::new();
        for (i, p) in series.samples.iter().enumerate() {
            let _ = write!(pts, "{:.1},{:.1} ", win.x(p.t_ns), y(below[i] + values[i]));
        }
        for (i, p) in series.samples.iter().enumerate().rev() {
            let _ = write!(pts, "{:.1},{:.1} ", win.x(p.t_ns), y(below[i]));
        }
        let _ = write!(
            s,
            r#"<polygon class="layer {class}" data-state="{name}" points="{}"><title>{name}</title></polygon>"#,
            pts.trim_end()
        );
        for (b, v) in below.iter_mut().zip(&values) {
            *b += v;
        }
    }
    // Capacity.
    if cap > 0 {
        let yc = y(f64::from(cap));
        let _ = write!(
            s,
            r#"<line class="capacity" x1="{LEFT}" x2="{:.1}" y1="{yc:.1}" y2="{yc:.1}"/><text class="cap-label" x="{:.1}" y="{:.1}" text-anchor="end">capacity {cap}</text>"#,
            W - RIGHT,
            W - RIGHT - 4.0,
            yc - 5.0
        );
    }
    // Per-second figures as tooltips over invisible columns.
    for (i, p) in series.samples.iter().enumerate() {
        let x = win.x(p.t_ns);
        let next = series.samples.get(i + 1).map_or(x + 4.0, |q| win.x(q.t_ns));
        let states: Vec<String> = p
            .states
            .iter()
            .map(|(st, c)| format!("{} {c}", st.name()))
            .collect();
        let _ = write!(
            s,
            r#"<rect class="hover" x="{x:.1}" y="{AREA_TOP}" width="{:.1}" height="{:.1}"><title>{:.0} s: {} of {} in use ({}); {} failed</title></rect>"#,
            (next - x).max(1.0),
            FAIL_TOP + FAIL_H - AREA_TOP,
            win.secs(p.t_ns),
            p.in_use,
            p.capacity,
            states.join(", "),
            p.failures
        );
    }
    // Axes: ports.
    let ystep = step(top, 4.0);
    let mut v = 0.0;
    while v <= top {
        let yy = y(v);
        let _ = write!(
            s,
            r#"<line class="grid" x1="{LEFT}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{v:.0}</text>"#,
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0
        );
        v += ystep;
    }
    let _ = write!(
        s,
        r#"<text class="axis-label" x="12" y="{:.1}" transform="rotate(-90 12 {:.1})" text-anchor="middle">ports in use</text>"#,
        AREA_TOP + AREA_H / 2.0,
        AREA_TOP + AREA_H / 2.0
    );
    // Failures per second.
    let fmax = series
        .samples
        .iter()
        .map(|p| p.failures)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let _ = write!(
        s,
        r#"<line class="axis" x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{fmax:.0}/s</text><text class="axis-label fail-label" x="{:.1}" y="{:.1}">EADDRNOTAVAIL per second</text>"#,
        W - RIGHT,
        FAIL_TOP + FAIL_H,
        FAIL_TOP + FAIL_H,
        LEFT - 6.0,
        FAIL_TOP + 8.0,
        LEFT + 4.0,
        FAIL_TOP - 4.0
    );
    let bar_w = ((W - LEFT - RIGHT) / win.len_s()).clamp(1.0, 24.0) * 0.8;
    for p in series.samples.iter().filter(|p| p.failures > 0) {
        // A sample counts the second before it.
        let x = win.x(p.t_ns) - bar_w;
        let h = p.failures as f64 / fmax * FAIL_H;
        let _ = write!(
            s,
            r#"<rect class="fail" data-t-s="{:.0}" x="{x:.1}" y="{:.1}" width="{bar_w:.1}" height="{h:.1}"><title>{:.0} s: {} EADDRNOTAVAIL</title></rect>"#,
            win.secs(p.t_ns),
            FAIL_TOP + FAIL_H - h,
            win.secs(p.t_ns),
            p.failures
        );
    }
    // Axes: time.
    let len = win.len_s();
    let xstep = step(len, 8.0);
    let mut t = 0.0;
    while t <= len + 1e-9 {
        let x = LEFT + t / len * (W - LEFT - RIGHT);
        let _ = write!(
            s,
            r#"<line class="axis" x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}"/><text class="tick" x="{x:.1}" y="{:.1}" text-anchor="middle">{t:.0} s</text>"#,
            AREA_TOP + AREA_H,
            AREA_TOP + AREA_H + 4.0,
            AREA_TOP + AREA_H + 16.0
        );
        t += xstep;
    }
    let _ = write!(
        s,
        r#"<line class="axis" x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/><text class="axis-label" x="{:.1}" y="{:.1}" text-anchor="end">seconds from the window's start</text></svg>"#,
        W - RIGHT,
        AREA_TOP + AREA_H,
        AREA_TOP + AREA_H,
        W - RIGHT,
        H - 6.0
    );
    s
}

pub fn severity_class(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "sev-critical",
        Severity::Warning => "sev-warning",
        Severity::Info => "sev-info",
    }
}

/// The legend: one swatch per state layer drawn in any chart.
pub fn legend() -> String {
    let mut s = String::from(r#"<ul class="legend">"#);
    for (_, name, class) in LAYERS {
        let _ = write!(s, r#"<li><span class="swatch {class}"></span>{name}</li>"#);
    }
    s.push_str(
        r#"<li><span class="swatch cap"></span>capacity</li><li><span class="swatch fail"></span>EADDRNOTAVAIL/s</li><li><span class="swatch band"></span>a finding present</li></ul>"#,
    );
    s
}

#[cfg(test)]
mod tests {
    use super::step;

    #[test]
    fn round_steps() {
        assert_eq!(step(60.0, 8.0), 10.0);
        assert_eq!(step(8.0, 8.0), 1.0);
        assert_eq!(step(50.0 * 1.08, 4.0), 20.0);
        assert_eq!(step(3600.0, 8.0), 500.0);
    }
}
