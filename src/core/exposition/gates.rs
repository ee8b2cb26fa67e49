//! Health-gate families, read from a [`GateSet`]: `health_gate_ready`
//! (1/0 per gate, labels `service`, `critical`), `health_gate_checks_total`
//! and `health_gate_check_failures_total` (per gate), the last check's
//! duration `health_gate_check_duration_seconds`, and the overall
//! `health_ready` / `health_degraded` (1/0) that `/health/ready` answers.
//! Gates are capped by the set (one per service).
//!
//! ```
//! use reliability_core::core::exposition::gates;
//! use reliability_core::core::gate::{GateSet, GateSpec};
//! let mut g = GateSet::new();
//! g.register(GateSpec::new("db", "Database", true), 0.0).unwrap();
//! let f = gates::collect(&[&g]);
//! assert_eq!(f[0].name, "health_gate_ready");
//! ```

use super::model::{Family, Kind, Sample, Value};
use crate::core::gate::GateSet;

fn b(x: bool) -> Value {
    Value::Number(if x { 1.0 } else { 0.0 })
}

/// The families of every gate in `sets` (a service registered in two sets
/// shows once, from the first); overall readiness is ready only when every
/// set is.
pub fn collect(sets: &[&GateSet]) -> Vec<Family> {
    let mut ready = Family::new(
        "health_gate_ready",
        Kind::Gauge,
        "1 when the health gate passes, 0 when not.",
    );
    let mut checks = Family::new(
        "health_gate_checks_total",
        Kind::Counter,
        "Health checks run by the gate.",
    );
    let mut failures = Family::new(
        "health_gate_check_failures_total",
        Kind::Counter,
        "Health checks of the gate that failed or timed out.",
    );
    let mut duration = Family::new(
        "health_gate_check_duration_seconds",
        Kind::Gauge,
        "Duration of the gate's last health check, in seconds.",
    );
    duration.unit = Some("seconds");
    let (mut all_ready, mut degraded, mut any) = (true, false, false);
    let mut seen = std::collections::HashSet::new();
    for set in sets {
        if set.is_empty() {
            continue;
        }
        any = true;
        let r = set.readiness();
        all_ready &= r.ready;
        degraded |= r.degraded;
        for g in set.gates() {
            if !seen.insert(g.spec.service_id.as_str()) {
                continue;
            }
            let svc = || vec![("service", g.spec.service_id.clone())];
            ready.samples.push(Sample::new(
                vec![
                    ("service", g.spec.service_id.clone()),
                    ("critical", g.spec.critical.to_string()),
                ],
                b(g.ready),
            ));
            checks
                .samples
                .push(Sample::new(svc(), Value::Number(g.checks as f64)));
            failures
                .samples
                .push(Sample::new(svc(), Value::Number(g.failures as f64)));
            if let Some(ms) = g.last_duration_ms {
                duration
                    .samples
                    .push(Sample::new(svc(), Value::Number(ms / 1000.0)));
            }
        }
    }
    let overall = Family::new(
        "health_ready",
        Kind::Gauge,
        "1 when every critical health gate passes and the process is not shutting down.",
    )
    .with(Sample::new(vec![], b(any && all_ready)));
    let deg = Family::new(
        "health_degraded",
        Kind::Gauge,
        "1 when some non-critical health gate fails.",
    )
    .with(Sample::new(vec![], b(degraded)));
    vec![ready, checks, failures, duration, overall, deg]
}
