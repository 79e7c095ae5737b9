//! Plain-text layout: word wrapping with hanging indents and cell truncation, in characters
//! (the text may hold "–", "×", "→").

/// The report's width in columns.
pub const WIDTH: usize = 100;

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// Appends `text` wrapped to [`WIDTH`]: the first line starts with `first`, the next ones
/// with `rest` (usually spaces as wide as `first`).
pub fn wrap(out: &mut String, first: &str, rest: &str, text: &str) {
    let mut line = first.to_string();
    let mut len = chars(first);
    let mut empty = true;
    for word in text.split_whitespace() {
        let w = chars(word);
        if !empty && len + 1 + w > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = rest.to_string();
            len = chars(rest);
            empty = true;
        }
        if !empty {
            line.push(' ');
            len += 1;
        }
        // A word longer than a line is cut.
        let room = WIDTH.saturating_sub(len).max(1);
        let word = if w > room {
            fit(word, room)
        } else {
            word.to_string()
        };
        len += chars(&word);
        line.push_str(&word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// `s` cut to `w` characters, ending in "…" when cut.
pub fn fit(s: &str, w: usize) -> String {
    if chars(s) <= w {
        return s.to_string();
    }
    let mut t: String = s.chars().take(w.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// A table row: each cell fitted to its width, left- or right-aligned, joined by two spaces.
pub fn row(out: &mut String, indent: &str, cells: &[(&str, usize, bool)]) {
    let mut line = indent.to_string();
    for (i, (text, w, right)) in cells.iter().enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        let t = fit(text, *w);
        if *right {
            line.push_str(&format!("{t:>w$}", w = *w));
        } else {
            line.push_str(&format!("{t:<w$}", w = *w));
        }
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_with_hanging_indent_within_the_width() {
        let mut out = String::new();
        let text = "word ".repeat(60);
        wrap(&mut out, "   Why:   ", "          ", &text);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.len() > 2);
        assert!(lines.iter().all(|l| l.chars().count() <= WIDTH));
        assert!(lines[0].starts_with("   Why:   word"));
        assert!(lines[1].starts_with("          word"));
        let mut out = String::new();
        wrap(&mut out, "", "", &"x".repeat(150));
        assert_eq!(out.trim_end().chars().count(), WIDTH);
    }

    #[test]
    fn cells_are_fitted_and_aligned() {
        let mut out = String::new();
        row(&mut out, "  ", &[("abcdef", 4, false), ("7", 3, true)]);
        assert_eq!(out, "  abc…    7\n");
    }
}
