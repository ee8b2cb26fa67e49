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
    Counter,
    Gauge,
    Histogram,
}

/// One family: a name (counters carry their `_total` suffix here; the
/// OpenMetrics renderer strips it from the `# TYPE` line), its kind, a help
/// text, an optional unit (`"seconds"`, `"bytes"`) and its samples.
#[derive(Clone, Debug)]
pub struct Family {
    pub name: String,
    pub kind: Kind,
    pub help: String,
    pub unit: Option<&'static str>,
    pub samples: Vec<Sample>,
}

/// One series of a family: label pairs in order (values unescaped) and a value.
#[derive(Clone, Debug)]
pub struct Sample {
    pub labels: Vec<(&'static str, String)>,
    pub value: Value,
}

#[derive(Clone, Debug)]
pub enum Value {
    Number(f64),
    Histogram(HistogramValue),
}

/// A histogram sample: classic cumulative buckets (upper bound, cumulative
/// count; the `+Inf` bucket is implied by `count`), sum in the family's unit,
/// count, and optionally the same data as a native (sparse exponential)
/// histogram for scrapers that negotiate protobuf.
#[derive(Clone, Debug, Default)]
pub struct HistogramValue {
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum: f64,
    pub native: Option<NativeHistogram>,
}

/// A native histogram as Prometheus's protobuf exposition carries it:
/// bucket boundaries are powers of `2^(2^-schema)`; spans and deltas as in
/// `io.prometheus.client.Histogram` (positive side only: durations are > 0).
#[derive(Clone, Debug, Default)]
pub struct NativeHistogram {
    pub schema: i32,
    pub zero_threshold: f64,
    pub zero_count: u64,
    /// (offset, length) pairs, offsets relative to the end of the previous span.
    pub positive_spans: Vec<(i32, u32)>,
    /// Count of each bucket as a delta to the previous bucket's count.
    pub positive_deltas: Vec<i64>,
}

impl Family {
    pub fn new(name: impl Into<String>, kind: Kind, help: impl Into<String>) -> Self {
        Family {
            name: name.into(),
            kind,
            help: help.into(),
            unit: None,
            samples: Vec::new(),
        }
    }
    pub fn with(mut self, sample: Sample) -> Self {
        self.samples.push(sample);
        self
    }
}

impl Sample {
    pub fn new(labels: Vec<(&'static str, String)>, value: Value) -> Self {
        Sample { labels, value }
    }
}
