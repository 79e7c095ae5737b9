//! Small building blocks for rows: fixed-width columns with truncation (…), text gauges. The
//! numbers are formatted by `snapshot::cells`, as the text report formats them.

use std::borrow::Cow;

use ratatui::{
    style::Style,
    text::{Line, Span},
};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

pub use crate::snapshot::cells::{count, duration, est_tw_other, eta, rate};
use crate::{event::TcpState, model::StateCounts};

/// `s` cut to `w` columns, ending in `…` when cut.
pub fn trunc(s: &str, w: usize) -> Cow<'_, str> {
    if s.width() <= w {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(cut(s, w))
    }
}

/// `s` in at most `w` columns, always ending in `…` (something after it was left out).
fn cut(s: &str, w: usize) -> String {
    if w == 0 {
        return String::new();
    }
    let mut out = String::with_capacity(w + 3);
    let mut used = 0;
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if used + cw > w - 1 {
            break;
        }
        out.push(c);
        used += cw;
    }
    out.push('…');
    out
}

/// `s` truncated and padded to exactly `w` columns.
pub fn cell(s: &str, w: usize, right: bool) -> String {
    let t = trunc(s, w);
    let pad = w.saturating_sub(t.width());
    if right {
        format!("{}{t}", " ".repeat(pad))
    } else {
        format!("{t}{}", " ".repeat(pad))
    }
}

/// A line cut to `w` columns, its last visible span ending in `…` when cut.
pub fn fit(line: Line<'_>, w: usize) -> Line<'_> {
    if line.width() <= w {
        return line;
    }
    let mut spans = Vec::with_capacity(line.spans.len());
    let mut left = w;
    for s in line.spans {
        let sw = s.content.width();
        if sw < left {
            left -= sw;
            spans.push(s);
            continue;
        }
        spans.push(Span::styled(cut(&s.content, left), s.style));
        break;
    }
    Line::from(spans).style(line.style)
}

/// One column of a table: `width` 0 takes what the fixed columns leave, up to `max`
/// (0: no limit) so that numbers stay near their names on wide terminals.
#[derive(Clone, Copy, Debug)]
pub struct Col {
    pub title: &'static str,
    pub width: u16,
    pub right: bool,
    pub max: u16,
}

pub const fn left(title: &'static str, width: u16) -> Col {
    Col {
        title,
        width,
        right: false,
        max: 0,
    }
}

pub const fn right(title: &'static str, width: u16) -> Col {
    Col {
        title,
        width,
        right: true,
        max: 0,
    }
}

/// A flexible column, at most `max` wide.
pub const fn flex(title: &'static str, max: u16) -> Col {
    Col {
        title,
        width: 0,
        right: false,
        max,
    }
}

/// The widest `[v6]:port` address.
pub const ADDR_MAX: u16 = 47;

/// Column widths for `total` columns (one space between columns); flexible columns share
/// what is left, at least 4 each.
pub fn widths(cols: &[Col], total: u16) -> Vec<usize> {
    let gaps = cols.len().saturating_sub(1);
    let fixed: usize = cols.iter().map(|c| usize::from(c.width)).sum::<usize>() + gaps;
    let flex = cols.iter().filter(|c| c.width == 0).count().max(1);
    let share = (usize::from(total).saturating_sub(fixed) / flex).max(4);
    cols.iter()
        .map(|c| {
            if c.width == 0 && c.max > 0 {
                share.min(usize::from(c.max))
            } else if c.width == 0 {
                share
            } else {
                usize::from(c.width)
            }
        })
        .collect()
}

/// A row of cells laid out on `widths`.
pub fn row<'a>(cols: &[Col], widths: &[usize], cells: Vec<(String, Style)>) -> Line<'a> {
    let mut spans = Vec::with_capacity(cells.len() * 2);
    for (i, ((text, style), (c, w))) in cells.into_iter().zip(cols.iter().zip(widths)).enumerate() {
        if i > 0 {
            spans.push(Span::raw(" "));
        }
        spans.push(Span::styled(cell(&text, *w, c.right), style));
    }
    Line::from(spans)
}

/// The header row of a table.
pub fn header_row<'a>(cols: &[Col], widths: &[usize], style: Style) -> Line<'a> {
    row(
        cols,
        widths,
        cols.iter().map(|c| (c.title.to_string(), style)).collect(),
    )
}

/// A section rule: `─ Title ──────…`.
pub fn rule<'a>(title: String, width: u16, title_style: Style, line_style: Style) -> Line<'a> {
    let w = usize::from(width);
    let title = trunc(&title, w.saturating_sub(4)).into_owned();
    let rest = w.saturating_sub(title.width() + 3);
    Line::from(vec![
        Span::styled("─ ", line_style),
        Span::styled(title, title_style),
        Span::styled(format!(" {}", "─".repeat(rest)), line_style),
    ])
}

/// Monotonic seconds with milliseconds, for event timestamps.
pub fn mono(ns: u64) -> String {
    format!(
        "{}.{:03}",
        ns / 1_000_000_000,
        ns % 1_000_000_000 / 1_000_000
    )
}

/// A horizontal bar `w` cells wide, in eighths.
pub fn bar(frac: f64, w: usize) -> String {
    const EIGHTHS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let frac = if frac.is_finite() {
        frac.clamp(0.0, 1.0)
    } else {
        1.0
    };
    let eighths = (frac * (w * 8) as f64).round() as usize;
    let full = eighths / 8;
    let mut s = "█".repeat(full);
    if full < w {
        let part = eighths % 8;
        if part > 0 {
            s.push(EIGHTHS[part]);
        }
        let used = full + usize::from(part > 0);
        s.push_str(&"·".repeat(w - used));
    }
    s
}

/// Short state names as in `ss -s`.
pub fn state_short(s: TcpState) -> &'static str {
    match s {
        TcpState::Established => "estab",
        TcpState::SynSent => "syn-sent",
        TcpState::SynRecv => "syn-recv",
        TcpState::FinWait1 => "fin-wait-1",
        TcpState::FinWait2 => "fin-wait-2",
        TcpState::TimeWait => "time-wait",
        TcpState::Close => "close",
        TcpState::CloseWait => "close-wait",
        TcpState::LastAck => "last-ack",
        TcpState::Listen => "listen",
        TcpState::Closing => "closing",
        TcpState::NewSynRecv => "new-syn-recv",
        TcpState::BoundInactive => "bound",
    }
}

/// Non-zero states, `estab 3  time-wait 9`.
pub fn states_text(s: &StateCounts) -> String {
    let mut out = String::new();
    for (st, n) in s.iter() {
        if !out.is_empty() {
            out.push_str("  ");
        }
        out.push_str(state_short(st));
        out.push(' ');
        out.push_str(&count(u64::from(n)));
    }
    if out.is_empty() {
        out.push_str("no sockets");
    }
    out
}

/// Words of `text` in lines of at most `w` columns (a longer word is cut with `…`).
pub fn wrap(text: &str, w: usize) -> Vec<String> {
    let w = w.max(1);
    let mut out = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let word = trunc(word, w);
        let need = if line.is_empty() {
            word.width()
        } else {
            line.width() + 1 + word.width()
        };
        if need > w && !line.is_empty() {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() {
        out.push(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting() {
        assert_eq!(trunc("abcdef", 4), "abc…");
        assert_eq!(trunc("abc", 4), "abc");
        assert_eq!(cell("ab", 4, true), "  ab");
        assert_eq!(bar(0.5, 4), "██··");
        assert_eq!(bar(1.0, 4), "████");
        assert_eq!(bar(f64::INFINITY, 2), "██");
        assert_eq!(mono(1_000_123_456_789), "1000.123");
        assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
        assert_eq!(wrap("abcdefgh", 4), ["abc…"]);
    }

    #[test]
    fn fit_cuts_the_last_visible_span() {
        let l = fit(Line::from(vec![Span::raw("abc"), Span::raw("defgh")]), 6);
        assert_eq!(l.to_string(), "abcde…");
    }
}
