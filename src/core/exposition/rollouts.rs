//! Rollout families, read from [`RolloutSet`]s (labels `rollout`, and
//! `cohort` = new/stable where the figure is per cohort):
//! `rollout_percentage` (0–100), `rollout_step` (index of the current step,
//! -1 without steps), `rollout_phase{phase}` and `rollout_verdict{verdict}`
//! (1 for the current one, 0 for the others), `rollout_requests_total` and
//! `rollout_errors_total` per cohort, `rollout_rollbacks_total` (in the
//! kept history). Rollouts are capped by the set.
//!
//! ```
//! use reliability_core::core::exposition::rollouts;
//! use reliability_core::core::traffic_shaping::RolloutSet;
//! let f = rollouts::collect(&[&RolloutSet::new()]);
//! assert_eq!(f[0].name, "rollout_percentage");
//! ```

use super::model::{Family, Kind, Sample, Value};
use crate::core::traffic_shaping::{RolloutPhase, RolloutSet, Verdict};

const PHASES: [RolloutPhase; 5] = [
    RolloutPhase::Running,
    RolloutPhase::Paused,
    RolloutPhase::RolledBack,
    RolloutPhase::Completed,
    RolloutPhase::Aborted,
];

/// The rollout families of every set: percentage, step, phase, verdict, cohorts, rollbacks.
pub fn collect(sets: &[&RolloutSet]) -> Vec<Family> {
    let mut pct = Family::new(
        "rollout_percentage",
        Kind::Gauge,
        "Share of traffic in the rollout's new cohort, percent.",
    );
    let mut step = Family::new(
        "rollout_step",
        Kind::Gauge,
        "Index of the rollout's current step (-1 when it has no steps).",
    );
    let mut phase = Family::new(
        "rollout_phase",
        Kind::Gauge,
        "1 for the phase the rollout is in, 0 for the others.",
    );
    let mut verdict = Family::new(
        "rollout_verdict",
        Kind::Gauge,
        "1 for the rollout's last verdict (healthy, breach, inconclusive), 0 for the others.",
    );
    let mut requests = Family::new(
        "rollout_requests_total",
        Kind::Counter,
        "Requests recorded for the rollout by cohort.",
    );
    let mut errors = Family::new(
        "rollout_errors_total",
        Kind::Counter,
        "Failed requests recorded for the rollout by cohort.",
    );
    let mut rollbacks = Family::new(
        "rollout_rollbacks_total",
        Kind::Counter,
        "Rollbacks of the rollout (automatic or by hand).",
    );
    let mut seen = std::collections::HashSet::new();
    for set in sets {
        for id in set.ids() {
            let Some(r) = set.get(id) else { continue };
            if !seen.insert(r.name.clone()) {
                continue;
            }
            let n = || vec![("rollout", r.name.clone())];
            let with =
                |k: &'static str, v: &str| vec![("rollout", r.name.clone()), (k, v.to_string())];
            pct.samples
                .push(Sample::new(n(), Value::Number(r.percentage())));
            step.samples.push(Sample::new(
                n(),
                Value::Number(r.step.map_or(-1.0, |s| s as f64)),
            ));
            for p in PHASES {
                let v = if p == r.phase { 1.0 } else { 0.0 };
                phase.samples.push(Sample::new(
                    with("phase", &p.as_str().replace('-', "_")),
                    Value::Number(v),
                ));
            }
            let current = match r.last_verdict {
                Verdict::Healthy => "healthy",
                Verdict::Breach(_) => "breach",
                Verdict::Inconclusive(_) => "inconclusive",
            };
            for v in ["healthy", "breach", "inconclusive"] {
                verdict.samples.push(Sample::new(
                    with("verdict", v),
                    Value::Number(if v == current { 1.0 } else { 0.0 }),
                ));
            }
            for (cohort, new) in [("new", true), ("stable", false)] {
                let (q, e) = set.cohort_total(id, new).unwrap_or((0, 0));
                requests
                    .samples
                    .push(Sample::new(with("cohort", cohort), Value::Number(q as f64)));
                errors
                    .samples
                    .push(Sample::new(with("cohort", cohort), Value::Number(e as f64)));
            }
            let rb = r.history.iter().filter(|h| h.kind == "rollback").count();
            rollbacks
                .samples
                .push(Sample::new(n(), Value::Number(rb as f64)));
        }
    }
    vec![pct, step, phase, verdict, requests, errors, rollbacks]
}
