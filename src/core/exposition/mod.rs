//! Exposition: the families as data (`model`), the collectors that fill it
//! (one per domain, each reading its registry) and the formats that render
//! it (`text`, `openmetrics`, `protobuf`). The format of a scrape is chosen once, by
//! [`negotiate()`] from the scraper's `Accept` header.
//!
//! ```
//! use reliability_core::core::exposition::{negotiate, Format};
//! assert_eq!(negotiate(Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5")), Format::OpenMetrics);
//! assert_eq!(negotiate(Some("*/*")), Format::Text);
//! ```

pub mod breakers;
pub mod gates;
pub mod http;
pub mod model;
pub mod negotiate;
pub mod openmetrics;
pub mod ops;
pub mod process;
pub mod protobuf;
pub mod rollouts;
pub mod startup;
pub mod text;
pub mod watchdogs;

pub use negotiate::{negotiate, Format};

use model::Family;

impl Format {
    /// The `Content-Type` of an answer in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => text::CONTENT_TYPE,
            Format::OpenMetrics => openmetrics::CONTENT_TYPE,
            Format::Protobuf => protobuf::CONTENT_TYPE,
        }
    }

    /// Appends `families` in this format, if it is a text one (`false` for
    /// protobuf: see [`protobuf::render`], which writes bytes).
    pub fn render_text(self, families: &[Family], out: &mut String) -> bool {
        match self {
            Format::Text => text::render(families, out),
            Format::OpenMetrics => openmetrics::render(families, out),
            Format::Protobuf => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_q_and_defaults_to_text() {
        // Prometheus 2.x's scrape header.
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(negotiate(Some(prom)), Format::OpenMetrics);
        assert_eq!(
            negotiate(Some(
                "text/plain;version=0.0.4;q=1,application/openmetrics-text;q=0.5"
            )),
            Format::Text
        );
        assert_eq!(
            negotiate(Some("application/openmetrics-text;q=0")),
            Format::Text
        );
        assert_eq!(negotiate(Some("")), Format::Text);
        assert_eq!(negotiate(Some("garbage;;;=,=,")), Format::Text);
        assert_eq!(negotiate(Some("application/json")), Format::Text);
        assert_eq!(
            negotiate(Some("Application/OpenMetrics-Text")),
            Format::OpenMetrics
        );
        assert_eq!(negotiate(Some(&"x".repeat(100_000))), Format::Text);
    }
}
