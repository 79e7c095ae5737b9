//! `portwatch serve`: the agent's views for a time-series engine. Once per refresh the session
//! builds a [`Picture`]; [`Pages::render`] turns it into the bytes every endpoint serves
//! (`/metrics` in the OpenMetrics text format, `/report.json`, `/healthz`), and [`http::run`]
//! serves the latest pages. Nothing here reads the model between refreshes.

pub mod http;
pub mod metrics;
mod nat;
mod picture;

#[cfg(test)]
mod tests;

use std::time::Instant;

use bytes::Bytes;

pub use http::Pages;
pub use picture::Picture;

/// The default listening port: outside the Prometheus project's default port allocations
/// (9100–9999 are all taken and allocations continue above 10000) and below the default
/// ephemeral range (32768–60999), so that it never collides with an outbound connection's
/// source port.
pub const DEFAULT_PORT: u16 = 19150;

impl Pages {
    /// Renders every endpoint's body from one picture.
    pub fn render(p: &Picture) -> Pages {
        let json = serde_json::to_vec_pretty(&p.report)
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}").into_bytes());
        let m = metrics::render(p);
        Pages {
            openmetrics: Bytes::from(m.openmetrics),
            text: Bytes::from(m.text),
            report_json: Bytes::from(json),
            at: Instant::now(),
        }
    }
}
