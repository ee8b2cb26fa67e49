//! Watchdog families, read from watchdog [`Registry`]s (label `watchdog`).
//!
//! The value each watchdog's state machine last judged is exported in one
//! family per thing measured, in base units (Prometheus naming: one family
//! holds one unit): `watchdog_value` for a gauge's value (whatever the gauge
//! counts), `watchdog_watched_latency_seconds{percentile}` for a latency
//! tracker's watched quantile (its thresholds are in ms, the family is in
//! seconds), and `watchdog_rate_per_second` for a counter's event rate (its
//! thresholds are per minute, the family is per second).
//!
//! Besides: `watchdog_level{level}` (1 for the current alert level
//! ok/warn/critical); for latency trackers and counters
//! `watchdog_calls_total`, for trackers `watchdog_errors_total` and
//! `watchdog_latency_seconds{percentile}` (50, 90, 99 over the last minute; a
//! gauge: `quantile` is a summary's label). Watchdogs are capped by the registry.
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
use crate::core::watchdog::{Kind as WdKind, Level, Registry, RATE_WINDOW_MS};

/// The label value of a watched quantile: `0.99` is `"99"`, `0.999` is `"99.9"`
/// (the `percentile` label of `watchdog_latency_seconds`).
fn percentile_label(q: f64) -> String {
    // Rounded to a thousandth of a percent so 0.999 * 100 prints as 99.9.
    let p = (q * 100_000.0).round() / 1000.0;
    format!("{p}")
}

/// What a watchdog's last judged value is, and so which family exports it.
enum Judged {
    /// A gauge's value, as set.
    Gauge,
    /// A tracker's watched quantile (ms), exported in seconds.
    Latency(f64),
    /// A counter's events over the last minute, exported per second.
    Rate,
}

/// The watchdog families of every registry: judged values (one family per
/// unit), alert levels, calls, errors, latency quantiles.
pub fn collect(regs: &mut [&mut Registry], now: f64) -> Vec<Family> {
    let mut value = Family::new(
        "watchdog_value",
        Kind::Gauge,
        "The value a gauge watchdog last judged (in the gauge's own unit).",
    );
    let mut watched = Family::new(
        "watchdog_watched_latency_seconds",
        Kind::Gauge,
        "The latency quantile a tracker watchdog last judged (over the last minute), in seconds.",
    );
    watched.unit = Some("seconds");
    let mut rate = Family::new(
        "watchdog_rate_per_second",
        Kind::Gauge,
        "The event rate a counter watchdog last judged (over the last minute), per second.",
    );
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
        let dogs: Vec<(usize, String, f64, Level, Judged)> = reg
            .iter()
            .map(|(id, d)| {
                let judged = match d.kind {
                    WdKind::Gauge { .. } => Judged::Gauge,
                    WdKind::Latency { quantile, .. } => Judged::Latency(quantile),
                    WdKind::Counter { .. } => Judged::Rate,
                };
                (id, d.name.clone(), d.last_value, d.state.level, judged)
            })
            .collect();
        for (id, name, last, lv, judged) in dogs {
            if !seen.insert(name.clone()) {
                continue;
            }
            let n = || vec![("watchdog", name.clone())];
            if last.is_finite() {
                match judged {
                    Judged::Gauge => value.samples.push(Sample::new(n(), Value::Number(last))),
                    Judged::Latency(q) => watched.samples.push(Sample::new(
                        vec![
                            ("watchdog", name.clone()),
                            ("percentile", percentile_label(q)),
                        ],
                        Value::Number(last / 1e3),
                    )),
                    Judged::Rate => rate
                        .samples
                        .push(Sample::new(n(), Value::Number(last * 1e3 / RATE_WINDOW_MS))),
                }
            }
            let (tracks, is_latency) = match judged {
                Judged::Gauge => (false, false),
                Judged::Latency(_) => (true, true),
                Judged::Rate => (true, false),
            };
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
    vec![value, watched, rate, level, calls, errors, latency]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::watchdog::Thresholds;

    fn samples<'a>(f: &'a [Family], name: &str) -> Vec<&'a Sample> {
        f.iter()
            .find(|f| f.name == name)
            .map(|f| f.samples.iter().collect())
            .unwrap_or_default()
    }

    #[test]
    fn each_judged_value_goes_to_the_family_of_its_unit() {
        let mut r = Registry::new();
        let g = r.gauge("queue", Thresholds::none(), 0.0).unwrap();
        r.set(g, 7.0, 0.0).unwrap();
        let t = r.latency("ai", Thresholds::none(), 0.999, 0.0).unwrap();
        r.record(t, 250.0, true, 1.0).unwrap();
        let c = r.counter("dead", Thresholds::none(), 0.0).unwrap();
        r.count(c, 120.0, 2.0).unwrap();
        r.step_all(3.0);
        let f = collect(&mut [&mut r], 3.0);
        let v = samples(&f, "watchdog_value");
        assert_eq!(v.len(), 1, "only the gauge");
        assert!(matches!(v[0].value, Value::Number(x) if x == 7.0));
        let l = samples(&f, "watchdog_watched_latency_seconds");
        assert_eq!(l.len(), 1, "only the tracker");
        assert_eq!(l[0].labels[1], ("percentile", "99.9".to_string()));
        let Value::Number(secs) = l[0].value else {
            panic!("a number")
        };
        assert!((0.2..0.3).contains(&secs), "250 ms as seconds, got {secs}");
        let rt = samples(&f, "watchdog_rate_per_second");
        assert_eq!(rt.len(), 1, "only the counter");
        assert!(
            matches!(rt[0].value, Value::Number(x) if x == 2.0),
            "120 a minute is 2 a second"
        );
    }

    #[test]
    fn percentile_labels() {
        let got: Vec<String> = crate::core::watchdog::QUANTILES
            .iter()
            .map(|&q| percentile_label(q))
            .collect();
        assert_eq!(got, ["50", "90", "95", "99", "99.9"]);
    }
}
