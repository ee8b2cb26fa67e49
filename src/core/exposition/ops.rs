//! Ops families, read from the ops state and the DLQ drains:
//! `ops_safe_mode` (1/0), `ops_brownout_level` (the share of optional
//! traffic shed, as set), `ops_quarantined_agents`, `ops_rolled_back_rollouts`,
//! `ops_audit_entries_total`; per DLQ (label `queue`, capped by the set):
//! `dlq_drain_running` (1/0), `dlq_drain_progress` (processed share of the
//! running drain's limit, 0–1), `dlq_drained_total` and
//! `dlq_drain_failures_total` (messages), `dlq_drain_runs_total`, and
//! `dlq_depth` (the depth the queue last reported, for queues that did).
//!
//! ```
//! use reliability_core::core::dlq::DlqSet;
//! use reliability_core::core::exposition::ops;
//! use reliability_core::core::ops::OpsState;
//! let f = ops::collect(&OpsState::new(1), &DlqSet::new(), 0.0);
//! assert_eq!(f[0].name, "ops_safe_mode");
//! ```

use super::model::{Family, Kind, Sample, Value};
use crate::core::dlq::DlqSet;
use crate::core::ops::OpsState;

fn one(name: &str, kind: Kind, help: &str, v: f64) -> Family {
    Family::new(name, kind, help).with(Sample::new(vec![], Value::Number(v)))
}

/// The ops families of one plane: switches, quarantines, rollbacks, audit and DLQ drains.
pub fn collect(ops: &OpsState, dlq: &DlqSet, now: f64) -> Vec<Family> {
    let mut out = vec![
        one(
            "ops_safe_mode",
            Kind::Gauge,
            "1 while safe mode is on.",
            if ops.safe_mode.is_some() { 1.0 } else { 0.0 },
        ),
        one(
            "ops_brownout_level",
            Kind::Gauge,
            "Brownout level as set by the operator (0 when off).",
            ops.brownout.as_ref().map_or(0.0, |b| b.level),
        ),
        one(
            "ops_quarantined_agents",
            Kind::Gauge,
            "Agents quarantined now.",
            ops.quarantine_list(now).count() as f64,
        ),
        one(
            "ops_rolled_back_rollouts",
            Kind::Gauge,
            "Rollouts an operator has rolled back.",
            ops.rolled_back.len() as f64,
        ),
        one(
            "ops_audit_entries_total",
            Kind::Counter,
            "Entries written to the ops audit log (kept and dropped).",
            (ops.audit().count() as u64 + ops.audit_dropped) as f64,
        ),
    ];
    let mut running = Family::new(
        "dlq_drain_running",
        Kind::Gauge,
        "1 while a drain of the dead-letter queue runs.",
    );
    let mut progress = Family::new(
        "dlq_drain_progress",
        Kind::Gauge,
        "Processed share (0-1) of the running drain's limit; 1 when none runs.",
    );
    let mut drained = Family::new(
        "dlq_drained_total",
        Kind::Counter,
        "Dead-letter messages drained (replayed) successfully.",
    );
    let mut failed = Family::new(
        "dlq_drain_failures_total",
        Kind::Counter,
        "Dead-letter messages whose replay failed.",
    );
    let mut runs = Family::new(
        "dlq_drain_runs_total",
        Kind::Counter,
        "Drains of the dead-letter queue started.",
    );
    let mut depth = Family::new(
        "dlq_depth",
        Kind::Gauge,
        "Messages in the dead-letter queue, as the queue last reported.",
    );
    for q in dlq.views() {
        if let Some(d) = q.depth {
            depth.samples.push(Sample::new(
                vec![("queue", q.name.clone())],
                Value::Number(d),
            ));
        }
        let l = || vec![("queue", q.name.clone())];
        let cur = q.current.as_ref().filter(|r| r.status == "running");
        running.samples.push(Sample::new(
            l(),
            Value::Number(if cur.is_some() { 1.0 } else { 0.0 }),
        ));
        let p = cur.map_or(1.0, |r| {
            if r.limit == 0 {
                0.0
            } else {
                (r.processed as f64 / r.limit as f64).min(1.0)
            }
        });
        progress.samples.push(Sample::new(l(), Value::Number(p)));
        drained
            .samples
            .push(Sample::new(l(), Value::Number(q.total_processed as f64)));
        failed
            .samples
            .push(Sample::new(l(), Value::Number(q.total_failed as f64)));
        runs.samples
            .push(Sample::new(l(), Value::Number(q.runs as f64)));
    }
    out.extend([running, progress, drained, failed, runs, depth]);
    out
}
