//! The metric families the package exposes, as data: one model that every
//! exposition format renders (Prometheus text 0.0.4, OpenMetrics 1.0 text,
//! Prometheus protobuf with native histograms). Collectors fill it; renderers
//! never compute a figure themselves.
//!
//! ```
//! use reliability_core::core::exposition::model::{Family, Kind, Sample, Value};
//! let f = Family::new("rc_example_total", Kind::Counter, "An example.")
//!     .with(Sample::new(vec![("route", "/a".into())], Value::Number(3.0)));
//! assert_eq!(f.samples.len(), 1);
//! ```

/// What a family is, in the Prometheus sense.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (reset on restart); the name ends in `_total`.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Classic buckets, sum and count (and native buckets in protobuf).
    Histogram,
}

/// One family: a name (counters carry their `_total` suffix here; the
/// OpenMetrics renderer strips it from the `# TYPE` line), its kind, a help
/// text, an optional unit (`"seconds"`, `"bytes"`) and its samples.
#[derive(Clone, Debug)]
pub struct Family {
    /// The metric name, with the prefix and (for counters) `_total`.
    pub name: String,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// The `# HELP` text, unescaped.
    pub help: String,
    /// The unit OpenMetrics declares (`"seconds"`), if any.
    pub unit: Option<&'static str>,
    /// The family's series, in output order.
    pub samples: Vec<Sample>,
}

/// One series of a family: label pairs in order (values unescaped) and a value.
#[derive(Clone, Debug)]
pub struct Sample {
    /// (name, value) pairs in output order; values unescaped.
    pub labels: Vec<(&'static str, String)>,
    /// The sample's number or histogram.
    pub value: Value,
}

/// A sample's value: a number for counters and gauges, a histogram for histograms.
#[derive(Clone, Debug)]
pub enum Value {
    /// A counter's or gauge's value.
    Number(f64),
    /// A histogram's buckets, sum and count.
    Histogram(HistogramValue),
}

/// A histogram sample: classic cumulative buckets (upper bound, cumulative
/// count; the `+Inf` bucket is implied by `count`), sum in the family's unit,
/// count, and optionally the same data as a native (sparse exponential)
/// histogram for scrapers that negotiate protobuf.
#[derive(Clone, Debug, Default)]
pub struct HistogramValue {
    /// (upper bound, cumulative count), increasing; `+Inf` is `count`.
    pub buckets: Vec<(f64, u64)>,
    /// Samples in the histogram.
    pub count: u64,
    /// Sum of the samples, in the family's unit.
    pub sum: f64,
    /// The same samples as native buckets, for protobuf only.
    pub native: Option<NativeHistogram>,
}

/// A native histogram as Prometheus's protobuf exposition carries it:
/// bucket boundaries are powers of `2^(2^-schema)`; spans and deltas as in
/// `io.prometheus.client.Histogram` (positive side only: durations are > 0).
#[derive(Clone, Debug, Default)]
pub struct NativeHistogram {
    /// Resolution: bounds are powers of `2^(2^-schema)` (6 here).
    pub schema: i32,
    /// Width of the zero bucket (0: durations are never zero).
    pub zero_threshold: f64,
    /// Samples in the zero bucket.
    pub zero_count: u64,
    /// (offset, length) pairs, offsets relative to the end of the previous span.
    pub positive_spans: Vec<(i32, u32)>,
    /// Count of each bucket as a delta to the previous bucket's count.
    pub positive_deltas: Vec<i64>,
}

impl Family {
    /// A family with no unit and no samples yet.
    pub fn new(name: impl Into<String>, kind: Kind, help: impl Into<String>) -> Self {
        Family {
            name: name.into(),
            kind,
            help: help.into(),
            unit: None,
            samples: Vec::new(),
        }
    }
    /// The family with `sample` added at the end.
    pub fn with(mut self, sample: Sample) -> Self {
        self.samples.push(sample);
        self
    }
}

impl Sample {
    /// A sample with these labels (in output order) and value.
    pub fn new(labels: Vec<(&'static str, String)>, value: Value) -> Self {
        Sample { labels, value }
    }
}
