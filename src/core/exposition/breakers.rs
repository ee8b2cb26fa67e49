//! The breaker families, read from a breaker [`BreakerRegistry`]:
//!
//! | family | type | labels |
//! |---|---|---|
//! | `circuit_breaker_state` | gauge (1 for the current state, 0 for the others, as resilience4j's `resilience4j_circuitbreaker_state`) | `name`, `state` = closed, open, half_open, forced_open |
//! | `circuit_breaker_calls_total` | counter | `name`, `outcome` = success, failure, timeout, rejected, fallback |
//! | `circuit_breaker_slow_calls_total` | counter | `name` |
//! | `circuit_breaker_transitions_total` | counter | `name`, `to` = open, closed, half_open |
//! | `circuit_breaker_call_duration_seconds` | histogram | `name` |
//! | `circuit_breaker_failure_rate`, `circuit_breaker_slow_call_rate` | gauge (0–1, over the rolling window) | `name` |
//!
//! A `failure` is any failed call, timeouts included (as the breaker counts
//! them); `timeout` counts those that failed by running past the timeout.
//! Names are capped by the registry (`maxBreakers`), so the cardinality is.
//!
//! ```
//! use reliability_core::core::breaker::BreakerOptions;
//! use reliability_core::core::exposition::breakers;
//! use reliability_core::core::breaker::BreakerRegistry;
//! let mut r = BreakerRegistry::new(1);
//! r.get_or_create("db", BreakerOptions::default(), None, 0.0).unwrap();
//! let fams = breakers::collect(&mut r, 0.0);
//! assert_eq!(fams[0].name, "circuit_breaker_state");
//! assert_eq!(fams[0].samples.len(), 4);
//! ```

use super::model::{Family, HistogramValue, Kind, Sample, Value};
use crate::core::breaker::BreakerRegistry;
use crate::core::breaker::{State, CALL_BUCKETS_S};

/// The families of every breaker in `reg`, as of `now` (the window rates
/// rotate to `now`).
pub fn collect(reg: &mut BreakerRegistry, now: f64) -> Vec<Family> {
    let mut state = Family::new(
        "circuit_breaker_state",
        Kind::Gauge,
        "Circuit breaker state: 1 for the state the breaker is in, 0 for the others.",
    );
    let mut calls = Family::new(
        "circuit_breaker_calls_total",
        Kind::Counter,
        "Circuit breaker calls by outcome (failure includes timeouts; rejected calls did not run; fallback counts calls answered by the fallback).",
    );
    let mut slow = Family::new(
        "circuit_breaker_slow_calls_total",
        Kind::Counter,
        "Circuit breaker calls slower than slowCallDurationMs.",
    );
    let mut transitions = Family::new(
        "circuit_breaker_transitions_total",
        Kind::Counter,
        "Circuit breaker state transitions by the state entered.",
    );
    let mut duration = Family::new(
        "circuit_breaker_call_duration_seconds",
        Kind::Histogram,
        "Duration of the calls a circuit breaker ran, in seconds.",
    );
    duration.unit = Some("seconds");
    let mut failure_rate = Family::new(
        "circuit_breaker_failure_rate",
        Kind::Gauge,
        "Failed share (0-1) of the calls in the breaker's rolling window.",
    );
    let mut slow_rate = Family::new(
        "circuit_breaker_slow_call_rate",
        Kind::Gauge,
        "Slow share (0-1) of the calls in the breaker's rolling window.",
    );
    let ids: Vec<u32> = reg.ids().collect();
    for id in ids {
        let Some(name) = reg.name(id).map(str::to_string) else {
            continue;
        };
        let Some(b) = reg.get_mut(id) else { continue };
        let t = b.totals();
        let current = match (b.state(), b.is_isolated()) {
            (_, true) => "forced_open",
            (State::Closed, _) => "closed",
            (State::Open, _) => "open",
            (State::HalfOpen, _) => "half_open",
        };
        let n = |l: &'static str, v: &str| vec![("name", name.clone()), (l, v.to_string())];
        for s in ["closed", "open", "half_open", "forced_open"] {
            let v = if s == current { 1.0 } else { 0.0 };
            state
                .samples
                .push(Sample::new(n("state", s), Value::Number(v)));
        }
        for (o, v) in [
            ("success", t.successes),
            ("failure", t.failures),
            ("timeout", t.timeouts),
            ("rejected", t.rejects),
            ("fallback", t.fallbacks),
        ] {
            calls
                .samples
                .push(Sample::new(n("outcome", o), Value::Number(v as f64)));
        }
        slow.samples.push(Sample::new(
            vec![("name", name.clone())],
            Value::Number(t.slow as f64),
        ));
        for (to, v) in [
            ("open", t.opened),
            ("closed", t.closed),
            ("half_open", t.half_opened),
        ] {
            transitions
                .samples
                .push(Sample::new(n("to", to), Value::Number(v as f64)));
        }
        let d = b.durations().cloned().unwrap_or_default();
        let mut cumulative = 0;
        let buckets = CALL_BUCKETS_S
            .iter()
            .zip(d.buckets.iter())
            .map(|(&le, &c)| {
                cumulative += c;
                (le, cumulative)
            })
            .collect();
        duration.samples.push(Sample::new(
            vec![("name", name.clone())],
            Value::Histogram(HistogramValue {
                buckets,
                count: d.buckets.iter().sum(),
                sum: d.sum_ms / 1000.0,
                native: None,
            }),
        ));
        let w = b.window_counts(now);
        failure_rate.samples.push(Sample::new(
            vec![("name", name.clone())],
            Value::Number(w.failure_pct() / 100.0),
        ));
        slow_rate.samples.push(Sample::new(
            vec![("name", name)],
            Value::Number(w.slow_pct() / 100.0),
        ));
    }
    vec![
        state,
        calls,
        slow,
        transitions,
        duration,
        failure_rate,
        slow_rate,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::breaker::{BreakerOptions, BreakerOutcome};

    fn value(f: &Family, labels: &[(&str, &str)]) -> f64 {
        let s = f
            .samples
            .iter()
            .find(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v))
            })
            .unwrap_or_else(|| panic!("{} has no {labels:?}", f.name));
        match &s.value {
            Value::Number(v) => *v,
            Value::Histogram(h) => h.count as f64,
        }
    }

    #[test]
    fn states_outcomes_transitions_durations_and_rates() {
        let mut r = BreakerRegistry::new(7);
        let o = BreakerOptions {
            failure_threshold: 2,
            ..BreakerOptions::default()
        };
        let (id, _) = r.get_or_create("pay", o, None, 0.0).unwrap();
        r.on_outcome(id, BreakerOutcome::Success, 30.0, 1.0, false)
            .unwrap();
        r.on_outcome(id, BreakerOutcome::Timeout, 2_000.0, 2.0, false)
            .unwrap();
        r.on_outcome(id, BreakerOutcome::Failure, 4.0, 3.0, false)
            .unwrap();
        r.get_mut(id).unwrap().count_fallback();
        let (adm, _) = r.try_acquire(id, 4.0).unwrap();
        assert!(matches!(adm, crate::core::breaker::Admission::RejectOpen));
        let f = collect(&mut r, 5.0);
        let by = |n: &str| f.iter().find(|x| x.name == n).unwrap();
        let st = by("circuit_breaker_state");
        assert_eq!(value(st, &[("state", "open")]), 1.0);
        assert_eq!(value(st, &[("state", "closed")]), 0.0);
        let calls = by("circuit_breaker_calls_total");
        for (o, v) in [
            ("success", 1.0),
            ("failure", 2.0),
            ("timeout", 1.0),
            ("rejected", 1.0),
            ("fallback", 1.0),
        ] {
            assert_eq!(value(calls, &[("outcome", o)]), v, "{o}");
        }
        assert_eq!(
            value(by("circuit_breaker_transitions_total"), &[("to", "open")]),
            1.0
        );
        let d = by("circuit_breaker_call_duration_seconds");
        let Value::Histogram(h) = &d.samples[0].value else {
            panic!()
        };
        assert_eq!(h.count, 3);
        assert_eq!(h.buckets[0], (0.005, 1)); // the 4 ms call
        assert_eq!(h.buckets[3], (0.05, 2)); // and the 30 ms one
        assert_eq!(h.buckets[9], (5.0, 3)); // the 2 s timeout
        assert!((h.sum - 2.034).abs() < 1e-9);
        let fr = value(by("circuit_breaker_failure_rate"), &[("name", "pay")]);
        assert!((fr - 2.0 / 3.0).abs() < 1e-9, "{fr}");
        r.get_mut(id).unwrap().isolate(6.0);
        let f = collect(&mut r, 6.0);
        assert_eq!(value(&f[0], &[("state", "forced_open")]), 1.0);
        assert_eq!(value(&f[0], &[("state", "open")]), 0.0);
    }
}
