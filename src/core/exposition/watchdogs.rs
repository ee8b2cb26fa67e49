//! Watchdog families, read from watchdog [`Registry`]s (label `watchdog`):
//! `watchdog_value` (the value the state machine last saw: a gauge's value,
//! a tracker's watched latency quantile in ms, a counter's rate),
//! `watchdog_level{level}` (1 for the current alert level ok/warn/critical),
//! and for latency trackers and counters `watchdog_calls_total` and
//! `watchdog_errors_total`; trackers also `watchdog_latency_seconds{percentile}` (50, 90, 99; a gauge: `quantile` is a summary's label)
//! over the last minute. Watchdogs are capped by the registry.
//!
//! ```
//! use reliability_core::core::exposition::watchdogs;
//! use reliability_core::core::watchdog::{Registry, Thresholds};
//! let mut r = Registry::new();
//! r.gauge("queue", Thresholds::none(), 0.0).unwrap();
//! let f = watchdogs::collect(&mut [&mut r], 0.0);
//! assert_eq!(f[0].name, "watchdog_value");
//! ```

use super::model::{Family, Kind, Sample, Value};
use crate::core::watchdog::{Kind as WdKind, Level, Registry};

/// The watchdog families of every registry: values, alert levels, calls, errors, latency quantiles.
pub fn collect(regs: &mut [&mut Registry], now: f64) -> Vec<Family> {
    let mut value = Family::new("watchdog_value", Kind::Gauge, "The value the watchdog last judged (gauge value, watched latency quantile in ms, or counter rate).");
    let mut level = Family::new(
        "watchdog_level",
        Kind::Gauge,
        "1 for the watchdog's current alert level (ok, warn, critical), 0 for the others.",
    );
    let mut calls = Family::new(
        "watchdog_calls_total",
        Kind::Counter,
        "Calls recorded by a latency tracker or counter watchdog.",
    );
    let mut errors = Family::new(
        "watchdog_errors_total",
        Kind::Counter,
        "Failed calls recorded by a latency tracker watchdog.",
    );
    let mut latency = Family::new(
        "watchdog_latency_seconds",
        Kind::Gauge,
        "Latency of a tracker watchdog's calls over the last minute, by percentile, in seconds.",
    );
    latency.unit = Some("seconds");
    let mut seen = std::collections::HashSet::new();
    for reg in regs.iter_mut() {
        let dogs: Vec<(usize, String, f64, Level, bool, bool)> = reg
            .iter()
            .map(|(id, d)| {
                let (tracks, is_latency) = match d.kind {
                    WdKind::Gauge { .. } => (false, false),
                    WdKind::Latency { .. } => (true, true),
                    WdKind::Counter { .. } => (true, false),
                };
                (
                    id,
                    d.name.clone(),
                    d.last_value,
                    d.state.level,
                    tracks,
                    is_latency,
                )
            })
            .collect();
        for (id, name, last, lv, tracks, is_latency) in dogs {
            if !seen.insert(name.clone()) {
                continue;
            }
            let n = || vec![("watchdog", name.clone())];
            if last.is_finite() {
                value.samples.push(Sample::new(n(), Value::Number(last)));
            }
            for l in [Level::Ok, Level::Warn, Level::Critical] {
                let v = if l == lv { 1.0 } else { 0.0 };
                level.samples.push(Sample::new(
                    vec![
                        ("watchdog", name.clone()),
                        ("level", l.as_str().to_string()),
                    ],
                    Value::Number(v),
                ));
            }
            if !tracks {
                continue;
            }
            let st = reg.stats(id, now);
            calls
                .samples
                .push(Sample::new(n(), Value::Number(st.total_calls as f64)));
            if is_latency {
                errors
                    .samples
                    .push(Sample::new(n(), Value::Number(st.total_errors as f64)));
                if let Some(p) = st.latency {
                    for (q, us) in [("50", p.p50_us), ("90", p.p90_us), ("99", p.p99_us)] {
                        latency.samples.push(Sample::new(
                            vec![("watchdog", name.clone()), ("percentile", q.to_string())],
                            Value::Number(us as f64 / 1e6),
                        ));
                    }
                }
            }
        }
    }
    vec![value, level, calls, errors, latency]
}
