//! Exposition: the families as data (`model`), the collectors that fill it
//! (one per domain, each reading its registry) and the formats that render
//! it (`text`, `openmetrics`). The format of a scrape is chosen once, by
//! [`negotiate`] from the scraper's `Accept` header.
//!
//! ```
//! use reliability_core::core::exposition::{negotiate, Format};
//! assert_eq!(negotiate("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"), Format::OpenMetrics);
//! assert_eq!(negotiate("*/*"), Format::Text);
//! ```

pub mod breakers;
pub mod gates;
pub mod model;
pub mod openmetrics;
pub mod ops;
pub mod process;
pub mod rollouts;
pub mod text;
pub mod watchdogs;

use model::Family;

/// An exposition format the metrics endpoint can answer in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text 0.0.4 (the default: every scraper reads it).
    Text,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => text::CONTENT_TYPE,
            Format::OpenMetrics => openmetrics::CONTENT_TYPE,
        }
    }

    /// Appends `families` in this format.
    pub fn render(self, families: &[Family], out: &mut String) {
        match self {
            Format::Text => text::render(families, out),
            Format::OpenMetrics => openmetrics::render(families, out),
        }
    }
}

/// The format for an `Accept` header: the accepted media type with the
/// highest `q` among those this endpoint can serve, the first listed on a
/// tie; text when none is (or the header is absent or malformed: a scrape
/// is never refused for its header).
pub fn negotiate(accept: &str) -> Format {
    let mut best = (Format::Text, -1.0f64);
    // Headers longer than this are not a scraper's; read only their start.
    let accept = match accept.char_indices().nth(4096) {
        Some((i, _)) => &accept[..i],
        None => accept,
    };
    for part in accept.split(',') {
        let mut params = part.split(';');
        let media = params.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1.0f64;
        for p in params {
            if let Some((k, v)) = p.split_once('=') {
                if k.trim().eq_ignore_ascii_case("q") {
                    q = v
                        .trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q))
                        .unwrap_or(0.0);
                }
            }
        }
        let format = match media.as_str() {
            "application/openmetrics-text" => Format::OpenMetrics,
            "text/plain" | "text/*" | "*/*" => Format::Text,
            _ => continue,
        };
        if q > 0.0 && q > best.1 {
            best = (format, q);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_q_and_defaults_to_text() {
        // Prometheus 2.x's scrape header.
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(negotiate(prom), Format::OpenMetrics);
        assert_eq!(
            negotiate("text/plain;version=0.0.4;q=1,application/openmetrics-text;q=0.5"),
            Format::Text
        );
        assert_eq!(negotiate("application/openmetrics-text;q=0"), Format::Text);
        assert_eq!(negotiate(""), Format::Text);
        assert_eq!(negotiate("garbage;;;=,=,"), Format::Text);
        assert_eq!(negotiate("application/json"), Format::Text);
        assert_eq!(
            negotiate("Application/OpenMetrics-Text"),
            Format::OpenMetrics
        );
        assert_eq!(negotiate(&"x".repeat(100_000)), Format::Text);
    }
}
