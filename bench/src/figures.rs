//! The figures a bench run reports, each next to its target, and how they are printed.

use serde::Serialize;

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    AtLeast(f64),
    AtMost(f64),
}

impl Target {
    fn met(self, v: f64) -> bool {
        match self {
            Target::AtLeast(t) => v >= t,
            Target::AtMost(t) => v <= t,
        }
    }

    fn show(self, unit: &str) -> String {
        match self {
            Target::AtLeast(t) => format!(">= {}{unit}", num(t)),
            Target::AtMost(t) => format!("<= {}{unit}", num(t)),
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// Stable key, e.g. `churn.record.ratio` (the smoke run checks every expected key).
    pub key: String,
    pub label: String,
    /// `None`: not measured, `note` says why.
    pub value: Option<f64>,
    pub unit: String,
    pub target: Option<Target>,
    /// `Some(true)` met, `Some(false)` missed, `None` no target or no value.
    pub met: Option<bool>,
    /// Spread of the repeated measurements (e.g. "min 0.91 max 0.95, 3 pairs").
    pub spread: String,
    pub note: String,
    /// Not measurable on this machine for a reason outside portwatch (a tool not installed).
    pub unavailable: bool,
}

impl Figure {
    pub fn new(key: &str, label: &str, value: f64, unit: &str) -> Figure {
        Figure {
            key: key.into(),
            label: label.into(),
            value: Some(value),
            unit: unit.into(),
            target: None,
            met: None,
            spread: String::new(),
            note: String::new(),
            unavailable: false,
        }
    }

    /// A figure that could not be measured.
    pub fn missing(key: &str, label: &str, why: impl Into<String>) -> Figure {
        Figure {
            value: None,
            note: why.into(),
            ..Figure::new(key, label, 0.0, "")
        }
    }

    pub fn target(mut self, t: Target) -> Figure {
        self.target = Some(t);
        self.met = self.value.map(|v| t.met(v));
        self
    }

    /// Not measurable for a reason outside portwatch (a tool missing, a tool's own quirk).
    pub fn unavailable(mut self) -> Figure {
        self.unavailable = true;
        self
    }

    pub fn spread(mut self, s: impl Into<String>) -> Figure {
        self.spread = s.into();
        self
    }

    pub fn note(mut self, s: impl Into<String>) -> Figure {
        let s = s.into();
        if !self.note.is_empty() && !s.is_empty() {
            self.note.push_str("; ");
        }
        self.note.push_str(&s);
        self
    }
}

/// A number with 3 significant digits and thousands separators where it helps.
pub fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if a >= 10_000.0 {
        let s = format!("{v:.0}");
        let (sign, digits) = s.split_at(usize::from(v < 0.0));
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        format!("{sign}{out}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 || a == 0.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Median, minimum and maximum.
pub fn stats(xs: &[f64]) -> (f64, f64, f64) {
    if xs.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (median, v[0], v[n - 1])
}

/// "min X max Y, N runs".
pub fn spread_of(xs: &[f64], what: &str) -> String {
    let (_, lo, hi) = stats(xs);
    format!("{} .. {}, {} {what}", num(lo), num(hi), xs.len())
}

/// The table, as plain text at most ~120 columns wide; notes wrap under their line.
pub fn render(figs: &[Figure]) -> String {
    let mut out = String::new();
    let w = figs
        .iter()
        .map(|f| f.label.len())
        .max()
        .unwrap_or(10)
        .min(48);
    out.push_str(&format!(
        "{:<w$}  {:>14}  {:>14}  {:<4}  {}\n",
        "figure", "value", "target", "met", "spread / notes"
    ));
    out.push_str(&format!("{}\n", "-".repeat(w + 60)));
    for f in figs {
        let value = match f.value {
            Some(v) => format!("{}{}", num(v), unit_suffix(&f.unit)),
            None => "n/a".into(),
        };
        let target = f
            .target
            .map(|t| t.show(&unit_suffix(&f.unit)))
            .unwrap_or_default();
        let met = match f.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        };
        let mut tail = f.spread.clone();
        if !f.note.is_empty() {
            if !tail.is_empty() {
                tail.push_str("; ");
            }
            tail.push_str(&f.note);
        }
        out.push_str(&format!(
            "{:<w$}  {value:>14}  {target:>14}  {met:<4}  {tail}\n",
            f.label
        ));
    }
    out
}

fn unit_suffix(unit: &str) -> String {
    if unit.is_empty() {
        String::new()
    } else {
        format!(" {unit}")
    }
}
