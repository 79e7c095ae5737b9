//! Colours that mean something: red = out of ports or failing, yellow = heading there,
//! green = fine. With `NO_COLOR` every style keeps its modifiers (bold, reverse) and drops its
//! colours, so meaning still shows through labels and bars.

use ratatui::style::{Color, Modifier, Style};

use crate::explain::finding::Severity;

/// Whether colour is allowed: `NO_COLOR` unset or empty (no-color.org). Read once at start
/// by the session and passed to [`super::App::new`].
pub fn color_from_env() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    pub fn plain(self) -> Style {
        Style::new()
    }

    pub fn bad(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub fn warn(self) -> Style {
        self.fg(Color::Yellow)
    }

    pub fn ok(self) -> Style {
        self.fg(Color::Green)
    }

    pub fn info(self) -> Style {
        self.fg(Color::Cyan)
    }

    pub fn dim(self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new()
        }
    }

    pub fn bold(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    /// Section titles and column headers.
    pub fn title(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn header(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
    }

    /// The selected row.
    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    /// The active tab, key names in hints.
    pub fn key(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn severity(self, s: Severity) -> Style {
        match s {
            Severity::Critical => self.bad(),
            Severity::Warning => self.warn().add_modifier(Modifier::BOLD),
            Severity::Info => self.info(),
        }
    }

    /// A pool by the explain engine's severity (`Snapshot::pool_severity`): red when failing
    /// or about to, yellow when heading there, green otherwise. The thresholds are the explain
    /// engine's (`explain::thresholds`), not the TUI's.
    pub fn pool(self, s: Option<Severity>) -> Style {
        match s {
            Some(Severity::Critical) => self.bad(),
            Some(Severity::Warning) => self.warn(),
            _ => self.ok(),
        }
    }

    /// A count that is bad when non-zero (lost events, failures).
    pub fn nonzero_bad(self, n: u64) -> Style {
        if n > 0 { self.bad() } else { self.plain() }
    }
}

pub fn severity_label(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "CRIT",
        Severity::Warning => "WARN",
        Severity::Info => "INFO",
    }
}
