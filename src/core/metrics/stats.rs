//! What a read returns: one series' (or several series') figures over one
//! window.

use super::error_rate::{error_rate, server_error_rate};
use super::series::Tally;
use crate::core::exphist::Percentiles;

/// A rate over less than a second of data is noise: a store's first request
/// would read as a thousand per second. Rates divide by at least this.
pub const MIN_RATE_SPAN_S: f64 = 1.0;

/// Figures for one series (or all of them) over one window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowStats {
    /// Completed requests (aborted ones are not requests that completed).
    pub requests: u64,
    /// Completed requests answered 4xx.
    pub status_4xx: u64,
    /// Completed requests answered 5xx.
    pub status_5xx: u64,
    /// Requests the client aborted before a response.
    pub aborted: u64,
    /// Time the figures cover: the window's live slices (between 4/5 and all
    /// of the window once it has filled), or for all time, since creation or
    /// reset. Never more than the store has existed.
    pub span_seconds: f64,
    /// `requests / span_seconds`, the span floored at [`MIN_RATE_SPAN_S`].
    pub requests_per_second: f64,
    /// [`error_rate`]: share of requests answered 4xx or 5xx, in [0, 1].
    pub error_rate: f64,
    /// Share of requests answered 5xx, in [0, 1]: the server's own failures
    /// (4xx are the client's and often expected: 404, 401).
    pub server_error_rate: f64,
    /// Latency of the completed requests, µs.
    pub latency: Percentiles,
}

impl WindowStats {
    pub(crate) fn new(t: Tally, span_ms: f64, latency: Percentiles) -> Self {
        let requests = t.requests();
        let span_seconds = span_ms / 1_000.0;
        WindowStats {
            requests,
            status_4xx: t.by_class[3],
            status_5xx: t.by_class[4],
            aborted: t.aborted,
            span_seconds,
            requests_per_second: requests as f64 / span_seconds.max(MIN_RATE_SPAN_S),
            error_rate: error_rate(t.by_class[3], t.by_class[4], requests),
            server_error_rate: server_error_rate(t.by_class[4], requests),
            latency,
        }
    }
}
