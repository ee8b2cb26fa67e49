//! What a metrics store is configured with, its defaults and its limits.
//!
//! Why apart: the limits are the rule for every option (the binding and the
//! fuzz target read them from here), and a store validates its options once,
//! when it is made.

use crate::core::error::{check, CoreError, CoreResult};

/// Longest route template accepted, in bytes: routes become label values.
pub const MAX_ROUTE_LEN: usize = 512;
/// Longest method accepted, in bytes; real ones are a few letters.
pub const MAX_METHOD_LEN: usize = 64;
/// Default cap on interned series (beyond the two reserved ones).
pub const DEFAULT_MAX_SERIES: u32 = 1_000;
/// Upper bound on `max_series`: at the worst case of about 16 KB a series
/// for all time alone (which `max_window_bytes` does not cap), this is
/// already 1.6 GB, far more than a process should hold.
pub const MAX_SERIES_LIMIT: u32 = 100_000;
/// prom-client's default buckets, in seconds.
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Most Prometheus duration buckets a store accepts.
pub const MAX_BUCKETS: usize = 100;
/// Default cap on the bytes of all series' window slices together: room for
/// about 217 series at their worst (309 016 bytes each), or 346 whose
/// latencies stay under 1 s (193 952 bytes each).
pub const DEFAULT_MAX_WINDOW_BYTES: usize = 64 << 20;
/// Upper bound on `max_window_bytes` (1 TiB): anything near it means "no cap".
pub const MAX_WINDOW_BYTES_LIMIT: u64 = 1 << 40;

/// What a [`MetricsStore`](super::MetricsStore) is made with (`configureMetrics` in JS).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsOptions {
    /// Interned (method, route) series beyond the two reserved ones.
    pub max_series: u32,
    /// Upper bounds (seconds) of the Prometheus duration buckets, increasing.
    pub buckets: Vec<f64>,
    /// Cap on the bytes of all series' window slices together (the pooled
    /// series aside); see "Memory" in the module docs.
    pub max_window_bytes: usize,
}

impl Default for MetricsOptions {
    fn default() -> Self {
        MetricsOptions {
            max_series: DEFAULT_MAX_SERIES,
            buckets: DEFAULT_BUCKETS.to_vec(),
            max_window_bytes: DEFAULT_MAX_WINDOW_BYTES,
        }
    }
}

impl MetricsOptions {
    /// Checks every option against its range; the error names the field.
    ///
    /// ```
    /// use reliability_core::core::metrics::MetricsOptions;
    /// let bad = MetricsOptions { buckets: vec![1.0, 0.5], ..MetricsOptions::default() };
    /// assert!(bad.validate().is_err());
    /// assert!(MetricsOptions::default().validate().is_ok());
    /// ```
    pub fn validate(&self) -> CoreResult<()> {
        check::int_in("maxSeries", self.max_series as f64, 0, MAX_SERIES_LIMIT)?;
        if self.max_window_bytes as u64 > MAX_WINDOW_BYTES_LIMIT {
            return Err(CoreError::range(
                "maxWindowBytes",
                &format!("a number of bytes from 0 to {MAX_WINDOW_BYTES_LIMIT}"),
                self.max_window_bytes,
            ));
        }
        if self.buckets.len() > MAX_BUCKETS {
            return Err(CoreError::range(
                "buckets",
                &format!("at most {MAX_BUCKETS} bounds"),
                self.buckets.len(),
            ));
        }
        let mut previous = 0.0;
        for &b in &self.buckets {
            // Below 1 µs or above 1 h a bound cannot split anything the histograms hold.
            if !b.is_finite() || !(0.000_001..=3_600.0).contains(&b) || b <= previous {
                return Err(CoreError::range(
                    "buckets",
                    "increasing numbers of seconds from 0.000001 to 3600",
                    check::fmt_num(b),
                ));
            }
            previous = b;
        }
        Ok(())
    }
}
