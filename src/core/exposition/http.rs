//! The HTTP families (`http_requests_total`, `http_requests_aborted_total`,
//! `http_requests_in_flight`, `http_request_duration_seconds`,
//! `http_requests_refused_total`): the metrics store's figures as
//! exposition data, beside the other collectors.
//!
//! Why here and not in the store: the store keeps the figures; what a
//! scrape shows of them (names, help, labels, zero samples) is exposition,
//! like every other collector in this module.
//!
//! ```
//! use reliability_core::core::exposition::http;
//! use reliability_core::core::metrics::{MetricsOptions, MetricsStore};
//! let mut s = MetricsStore::new(MetricsOptions::default(), 0.0).unwrap();
//! let id = s.intern("GET", "/users/:id").unwrap();
//! s.record(id, 503, 80_000.0, 20.0).unwrap();
//! let mut text = String::new();
//! http::render_prometheus(&s, &mut text);
//! assert!(text.contains(r#"http_requests_total{method="GET",route="/users/:id",status_class="5xx"} 1"#));
//! ```

use super::model::{Family, HistogramValue, Kind, NativeHistogram, Sample, Value};
use super::{protobuf, text};
use crate::core::exphist::SCHEMA;
use crate::core::metrics::{MetricsStore, Refusal, REFUSED_ROUTE, RESERVED_METHOD};

pub(crate) const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
pub(crate) const REQUESTS: &str = "http_requests_total";
pub(crate) const ABORTED: &str = "http_requests_aborted_total";
pub(crate) const IN_FLIGHT: &str = "http_requests_in_flight";
pub(crate) const DURATION: &str = "http_request_duration_seconds";
pub(crate) const REFUSED: &str = "http_requests_refused_total";

/// The HTTP families as data (see `exposition::model`), rendered by
/// every exposition format. Counters and the histogram are all-time
/// (Prometheus computes windows itself with `rate()`). Every counter
/// family has a sample from the start: each series that exists (the
/// `unmatched` one always, a route once it is interned, `other` once it
/// has traffic) shows all five status classes and its aborted count,
/// zeros included, so `rate()` of a class or of aborts that has not
/// happened yet reads 0 instead of nothing. The histogram appears once a
/// series has a duration.
pub fn families(store: &MetricsStore) -> Vec<Family> {
    families_with(store, true)
}

/// [`families`], with the duration histogram's native
/// buckets only when `native` (only protobuf carries them; walking every
/// series' histogram for them was a third of a text scrape's cost).
pub fn families_with(store: &MetricsStore, native: bool) -> Vec<Family> {
    let mut requests = Family::new(
        REQUESTS,
        Kind::Counter,
        "Completed HTTP requests by method, route and status class.",
    );
    let mut aborted = Family::new(
        ABORTED,
        Kind::Counter,
        "HTTP requests that ended before a response was sent.",
    );
    for s in store.exposed() {
        for (class, &n) in STATUS_CLASSES.iter().zip(&s.all_time.by_class) {
            requests.samples.push(Sample::new(
                vec![
                    ("method", s.method.to_string()),
                    ("route", s.route.to_string()),
                    ("status_class", (*class).to_string()),
                ],
                Value::Number(n as f64),
            ));
        }
        aborted.samples.push(Sample::new(
            s.label_pairs(),
            Value::Number(s.all_time.aborted as f64),
        ));
    }
    let in_flight = Family::new(
        IN_FLIGHT,
        Kind::Gauge,
        "HTTP requests started and not yet finished or aborted.",
    )
    .with(Sample::new(vec![], Value::Number(store.in_flight() as f64)));
    let mut durations = Family::new(
        DURATION,
        Kind::Histogram,
        "HTTP request duration in seconds.",
    );
    durations.unit = Some("seconds");
    for s in store.series_all() {
        let count: u64 = s.buckets.iter().sum();
        if count == 0 {
            continue;
        }
        let mut cumulative = 0u64;
        let buckets = store
            .bounds()
            .iter()
            .zip(s.buckets.iter())
            .map(|(b, n)| {
                cumulative += n;
                (b.seconds, cumulative)
            })
            .collect();
        let native = native.then(|| {
            let (positive_spans, positive_deltas) = s.latency.all_time().native_spans();
            NativeHistogram {
                schema: SCHEMA,
                // Durations are >= 1 µs: nothing is in a zero bucket.
                zero_threshold: 0.0,
                zero_count: 0,
                positive_spans,
                positive_deltas,
            }
        });
        durations.samples.push(Sample::new(
            s.label_pairs(),
            Value::Histogram(HistogramValue {
                buckets,
                count,
                sum: s.sum_us as f64 / 1e6,
                native,
            }),
        ));
    }
    let mut refused = Family::new(REFUSED, Kind::Counter, "HTTP requests refused by safe mode, brownout, quarantine or a rollout, by method, route and reason.");
    // Every reason has a sample from the start: while no request was
    // refused for a reason, `{method="*",route="refused",reason="…"} 0`.
    for (i, r) in Refusal::ALL.iter().enumerate() {
        let mut any = false;
        for s in store.series_all().iter().filter(|s| s.refused[i] > 0) {
            any = true;
            let mut labels = s.label_pairs();
            labels.push(("reason", r.as_str().to_string()));
            refused
                .samples
                .push(Sample::new(labels, Value::Number(s.refused[i] as f64)));
        }
        if !any {
            refused.samples.push(Sample::new(
                vec![
                    ("method", RESERVED_METHOD.to_string()),
                    ("route", REFUSED_ROUTE.to_string()),
                    ("reason", r.as_str().to_string()),
                ],
                Value::Number(0.0),
            ));
        }
    }
    vec![requests, aborted, in_flight, durations, refused]
}

/// Appends the HTTP families in the Prometheus text exposition format
/// 0.0.4. The caller's `String` can be cleared and reused between
/// scrapes so its buffer is allocated once.
pub fn render_prometheus(store: &MetricsStore, out: &mut String) {
    text::render(&families_with(store, false), out);
}

/// Appends the HTTP families in the Prometheus protobuf exposition
/// (delimited `MetricFamily` messages; see `exposition::protobuf`), the
/// duration histogram with its native (schema 6) buckets.
pub fn render_protobuf(store: &MetricsStore, out: &mut Vec<u8>) {
    protobuf::render(&families(store), out);
}
