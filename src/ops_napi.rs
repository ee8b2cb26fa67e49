//! Bindings for the ops controls (`core::ops`) and dead-letter drains
//! (`core::dlq`).
//!
//! Hot path: `ops_flags` gives the JS middleware a summary it caches by
//! `version` (safe mode on?, dimmer level, quarantines?); while nothing is
//! switched on, a request costs no crossing at all. Otherwise it is one
//! `ops_decide` call with two numbers and, if the route names an agent, its id.
//!
//! Every call that changes the state also stamps the change in the plane's
//! replica (`core::ops_merge`), which `ops_replica_export` /
//! `ops_replica_merge` exchange with other instances.

use std::cell::RefCell;

use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;

use crate::codes_napi::{OpsCriticality, OpsDecision, OpsFlag};

use crate::core::dlq::{DlqSet, Run};
use crate::core::error::{CoreError, CoreResult};
use crate::core::ops::{refusal_json, Actor, Criticality, LoadReport, OpsState};
use crate::core::ops_merge::{Field, Replication};
use crate::napi_util::{borrow_mut, throw};

struct Plane {
    ops: OpsState,
    dlq: DlqSet,
    repl: Replication,
}

thread_local! {
    static PLANES: RefCell<Vec<Plane>> = const { RefCell::new(Vec::new()) };
}

fn with<T>(env: &Env, h: u32, f: impl FnOnce(&mut Plane) -> CoreResult<T>) -> Result<T> {
    PLANES
        .with(|p| {
            let mut p = borrow_mut(p, "the ops plane table")?;
            let plane = p
                .get_mut(h as usize)
                .ok_or_else(|| CoreError::not_found("ops handle", h));
            plane.and_then(f)
        })
        .map_err(|e| throw(env, e))
}

/// `with`, then records what the call changed in the replica, and stamps
/// the registers the action named (`targets`) when it succeeded, changed or not.
fn with_local<T>(
    env: &Env,
    h: u32,
    now: f64,
    targets: Vec<Field>,
    f: impl FnOnce(&mut Plane) -> CoreResult<T>,
) -> Result<T> {
    with(env, h, |p| {
        // In sync before: only the action's own fields can differ after it.
        let synced = p.repl.synced_with(&p.ops);
        let r = f(p);
        if synced && r.is_ok() {
            p.repl.record_targets(&p.ops, &targets, now);
            return r;
        }
        p.repl.record_local(&p.ops, now);
        if r.is_ok() {
            for t in &targets {
                p.repl.touch(&p.ops, t, now);
            }
        }
        r
    })
}

fn actor(name: String, source: String) -> Actor {
    Actor { name, source }
}

#[napi]
pub fn ops_create(env: Env, seed: f64) -> Result<u32> {
    PLANES.with(|p| {
        let mut p = borrow_mut(p, "the ops plane table").map_err(|e| throw(&env, e))?;
        // A node id until the Redis backend names the instance: it only breaks ties.
        let node = format!("node-{:012x}", seed.to_bits() & 0xffff_ffff_ffff);
        p.push(Plane {
            ops: OpsState::new(seed.to_bits()),
            dlq: DlqSet::new(),
            repl: Replication::new(&node),
        });
        Ok((p.len() - 1) as u32)
    })
}

/// `[version, safeMode 0/1, brownout level or -1, quarantined count, next expiry or -1]`.
#[napi]
pub fn ops_flags(env: Env, h: u32, now: f64) -> Result<Vec<f64>> {
    with(&env, h, |p| {
        p.ops.expire(now);
        let o = &p.ops;
        let mut f = vec![0.0; OpsFlag::NextExpiry as usize + 1];
        f[OpsFlag::Version as usize] = o.version as f64;
        f[OpsFlag::SafeMode as usize] = if o.safe_mode.is_some() { 1.0 } else { 0.0 };
        f[OpsFlag::Dimmer as usize] = o.brownout.as_ref().map_or(-1.0, |b| b.level);
        // expire(now) just ran: every entry left is live.
        f[OpsFlag::Quarantines as usize] = o.quarantine_len() as f64;
        f[OpsFlag::NextExpiry as usize] = o.next_expiry().unwrap_or(-1.0);
        Ok(f)
    })
}

/// The decision for one request: 0 serve, 1 safe mode (503), 2 shed (503),
/// 3 quarantined (423). `criticality`: 0 critical, 1 default, 2 sheddable.
#[napi]
pub fn ops_decide(
    env: Env,
    h: u32,
    essential: bool,
    criticality: u32,
    agent: Option<String>,
    now: f64,
) -> Result<u32> {
    let c = match criticality {
        x if x == OpsCriticality::Critical as u32 => Criticality::Critical,
        x if x == OpsCriticality::Default as u32 => Criticality::Default,
        _ => Criticality::Sheddable,
    };
    with(&env, h, |p| {
        Ok(p.ops.decide(essential, c, agent.as_deref(), now).code())
    })
}

#[napi]
pub fn ops_set_safe_mode(
    env: Env,
    h: u32,
    on: bool,
    reason: String,
    who: String,
    source: String,
    now: f64,
) -> Result<bool> {
    with_local(&env, h, now, vec![Field::SafeMode], |p| {
        p.ops.set_safe_mode(on, &reason, &actor(who, source), now)
    })
}

#[napi]
pub fn ops_set_brownout(
    env: Env,
    h: u32,
    level: Option<f64>,
    reason: String,
    who: String,
    source: String,
    now: f64,
) -> Result<bool> {
    with_local(&env, h, now, vec![Field::Brownout], |p| {
        p.ops.set_brownout(level, &reason, &actor(who, source), now)
    })
}

// Positional arguments are the binding's calling convention here.
#[allow(clippy::too_many_arguments)]
#[napi]
pub fn ops_quarantine(
    env: Env,
    h: u32,
    agent: String,
    reason: String,
    ttl_ms: Option<f64>,
    who: String,
    source: String,
    now: f64,
) -> Result<bool> {
    with_local(&env, h, now, vec![Field::Quarantine(agent.clone())], |p| {
        p.ops
            .quarantine(&agent, &reason, ttl_ms, &actor(who, source), now)
    })
}

#[napi]
pub fn ops_release(
    env: Env,
    h: u32,
    agent: String,
    who: String,
    source: String,
    now: f64,
) -> Result<bool> {
    with_local(&env, h, now, vec![Field::Quarantine(agent.clone())], |p| {
        p.ops.release(&agent, &actor(who, source), now)
    })
}

#[napi]
pub fn ops_record_rollback(
    env: Env,
    h: u32,
    names: Vec<String>,
    reason: String,
    who: String,
    source: String,
    now: f64,
) -> Result<bool> {
    with_local(
        &env,
        h,
        now,
        names.iter().cloned().map(Field::RolledBack).collect(),
        |p| {
            p.ops
                .record_rollback(&names, &reason, &actor(who, source), now)
        },
    )
}

#[napi]
pub fn ops_clear_rollback(env: Env, h: u32, name: String, now: f64) -> Result<bool> {
    with_local(&env, h, now, vec![Field::RolledBack(name.clone())], |p| {
        Ok(p.ops.clear_rollback(&name))
    })
}

/// Adds an audit entry for an action the core does not perform itself
/// (a refused request, a DLQ drain). `args_json` must be a JSON object.
// Positional arguments are the binding's calling convention here.
#[allow(clippy::too_many_arguments)]
#[napi]
pub fn ops_audit_push(
    env: Env,
    h: u32,
    action: String,
    args_json: String,
    who: String,
    source: String,
    result: String,
    now: f64,
) -> Result<()> {
    let args: serde_json::Value = serde_json::from_str(&args_json)
        .map_err(|e| throw(&env, CoreError::type_error("args", "JSON", e)))?;
    with(&env, h, |p| {
        p.ops
            .push_audit(now, &action, args, &actor(who, source), result);
        Ok(())
    })
}

#[napi(object)]
pub struct OpsSwitch {
    pub since: f64,
    pub reason: String,
    pub actor: String,
}

#[napi(object)]
pub struct OpsBrownout {
    pub level: f64,
    pub since: f64,
    pub reason: String,
    pub actor: String,
}

#[napi(object)]
pub struct OpsQuarantine {
    pub agent_id: String,
    pub since: f64,
    pub reason: String,
    pub actor: String,
    pub expires_at: Option<f64>,
}

#[napi(object)]
pub struct OpsRollback {
    pub name: String,
    pub since: f64,
    pub reason: String,
    pub actor: String,
}

#[napi(object)]
pub struct OpsStatus {
    pub version: f64,
    pub safe_mode: Option<OpsSwitch>,
    pub brownout: Option<OpsBrownout>,
    pub quarantined: Vec<OpsQuarantine>,
    pub rolled_back: Vec<OpsRollback>,
    pub audit_entries: u32,
    pub audit_dropped: f64,
    /// Aggregated refusal entries kept, and those dropped from their own ring.
    pub refusal_entries: u32,
    pub refusals_dropped: f64,
}

/// The controls. `only` limits `quarantined` to the agents named (each looked
/// up directly, O(log n)): an action's caller patches its cached list with
/// the one entry it touched instead of rebuilding thousands of JS objects per
/// action (which made creating n quarantines O(n²)).
#[napi]
pub fn ops_status(env: Env, h: u32, now: f64, only: Option<Vec<String>>) -> Result<OpsStatus> {
    with(&env, h, |p| {
        p.ops.expire(now);
        let o = &p.ops;
        let entry = |(k, q): (&String, &crate::core::ops::Quarantine)| OpsQuarantine {
            agent_id: k.clone(),
            since: q.since,
            reason: q.reason.clone(),
            actor: q.actor.clone(),
            expires_at: q.expires_at,
        };
        let quarantined = match &only {
            Some(agents) => agents
                .iter()
                .filter_map(|a| o.quarantined(a, now).map(|q| entry((a, q))))
                .collect(),
            None => o.quarantine_list(now).map(entry).collect(),
        };
        Ok(OpsStatus {
            version: o.version as f64,
            safe_mode: o.safe_mode.as_ref().map(|s| OpsSwitch {
                since: s.since,
                reason: s.reason.clone(),
                actor: s.actor.clone(),
            }),
            brownout: o.brownout.as_ref().map(|b| OpsBrownout {
                level: b.level,
                since: b.since,
                reason: b.reason.clone(),
                actor: b.actor.clone(),
            }),
            quarantined,
            rolled_back: o
                .rolled_back
                .iter()
                .map(|(k, s)| OpsRollback {
                    name: k.clone(),
                    since: s.since,
                    reason: s.reason.clone(),
                    actor: s.actor.clone(),
                })
                .collect(),
            audit_entries: o.audit().count() as u32,
            audit_dropped: o.audit_dropped as f64,
            refusal_entries: o.refusals().count() as u32,
            refusals_dropped: o.refusals_dropped as f64,
        })
    })
}

/// The last `limit` audit entries (operator actions and aggregated
/// refusals merged by sequence number), oldest first, as one JSON array
/// string (entries carry free-form `args`).
#[napi]
pub fn ops_audit(env: Env, h: u32, limit: u32) -> Result<String> {
    with(&env, h, |p| {
        Ok(serde_json::Value::Array(p.ops.audit_view(limit as usize)).to_string())
    })
}

/// The state file's text: the ops state with the replica's clocks.
#[napi]
pub fn ops_to_json(env: Env, h: u32, now: f64) -> Result<String> {
    with(&env, h, |p| Ok(p.repl.file_json(&p.ops.to_json(now))))
}

/// What a load left out or repaired (`core::ops::LoadReport`).
#[napi(object)]
pub struct OpsLoadReport {
    pub dropped: Vec<String>,
    pub repaired: Vec<String>,
    /// Problems past the first 50, counted only.
    pub more: f64,
}

fn report(r: LoadReport) -> OpsLoadReport {
    OpsLoadReport {
        dropped: r.dropped,
        repaired: r.repaired,
        more: r.more as f64,
    }
}

/// Replaces the persistent state from a state file's text. Throws (and
/// changes nothing) only when the text is not a state file at all; a bad
/// entry inside is dropped or repaired and listed in the report. Clocks come
/// from the file (`replica`); a file without them loads with clock 0 the
/// first time.
#[napi]
pub fn ops_load_json(env: Env, h: u32, text: String, now: f64) -> Result<OpsLoadReport> {
    with(&env, h, |p| {
        let first = p.ops.version == 0;
        let r = p.ops.load_json(&text)?;
        p.repl.after_load(&mut p.ops, &text, first, now);
        Ok(report(r))
    })
}

#[napi(object)]
pub struct OpsCheckedState {
    pub dropped: Vec<String>,
    pub repaired: Vec<String>,
    pub more: f64,
    /// The document as this plane would write it: every entry valid.
    pub text: String,
}

/// Checks a state document from elsewhere (Redis, a file) with the same
/// rules as the loader, without touching any plane: the report and the
/// sanitised document. Throws only when it is not a state document at all.
///
/// ```js
/// const { dropped, text } = native.opsCheckState(doc, Date.now());
/// ```
#[napi]
pub fn ops_check_state(env: Env, text: String, now: f64) -> Result<OpsCheckedState> {
    let mut s = OpsState::new(0);
    let r = s.load_json(&text).map_err(|e| throw(&env, e))?;
    Ok(OpsCheckedState {
        dropped: r.dropped,
        repaired: r.repaired,
        more: r.more as f64,
        text: s.to_json(now),
    })
}

#[napi(object)]
pub struct OpsRefusal {
    /// The aggregated entry, as JSON (the audit's shape plus `count`, `firstAt`).
    pub entry_json: String,
    /// True when this refusal opened a new entry (first from that source in the window).
    pub first: bool,
    pub count: f64,
}

/// Records a refused request (aggregated per source, action and reason).
#[napi]
pub fn ops_record_refusal(
    env: Env,
    h: u32,
    action: String,
    source: String,
    why: String,
    now: f64,
) -> Result<OpsRefusal> {
    with(&env, h, |p| {
        let (r, first) = p.ops.record_refusal(now, &action, &source, &why);
        Ok(OpsRefusal {
            entry_json: refusal_json(&r).to_string(),
            first,
            count: r.count as f64,
        })
    })
}

/// Notes that the CLI command `id` was applied (it is saved with the state).
#[napi]
pub fn ops_mark_applied(
    env: Env,
    h: u32,
    id: String,
    by: String,
    result: String,
    now: f64,
) -> Result<()> {
    with(&env, h, |p| p.ops.mark_applied(&id, &by, &result, now))
}

/// `[by, result]` of the applied CLI command `id`, or null.
#[napi]
pub fn ops_applied(env: Env, h: u32, id: String) -> Result<Option<Vec<String>>> {
    with(&env, h, |p| {
        Ok(p.ops
            .applied(&id)
            .map(|a| vec![a.by.clone(), a.result.clone()]))
    })
}

/// Names this instance in its replica's clock stamps (ties only).
#[napi]
pub fn ops_replica_set_node(env: Env, h: u32, node: String) -> Result<()> {
    with(&env, h, |p| p.repl.set_node(&node))
}

/// This instance's replica document (the ops controls with their clocks).
#[napi]
pub fn ops_replica_export(env: Env, h: u32, now: f64) -> Result<String> {
    with(&env, h, |p| {
        p.repl.record_local(&p.ops, now);
        Ok(p.repl.export())
    })
}

#[napi(object)]
pub struct OpsMergeChange {
    /// `safeMode`, `brownout`, `quarantine` or `rolledBack`.
    pub kind: String,
    /// The agent or rollout (for `quarantine` and `rolledBack`).
    pub key: Option<String>,
    /// Whether the switch is now on, or the entry present.
    pub present: bool,
    /// The instance whose change won.
    pub node: String,
}

#[napi(object)]
pub struct OpsMergeResult {
    pub changes: Vec<OpsMergeChange>,
    /// Entries of the document dropped as invalid (or past a cap).
    pub dropped: u32,
}

/// Merges another instance's replica document: per switch and per entry the
/// later clock wins. Throws a TypeError/RangeError (changing nothing) when
/// `text` is not a replica document; bad entries inside one are dropped and
/// counted in `dropped`.
#[napi]
pub fn ops_replica_merge(env: Env, h: u32, text: String, now: f64) -> Result<OpsMergeResult> {
    with(&env, h, |p| {
        let r = p.repl.merge_remote(&mut p.ops, &text, now)?;
        Ok(OpsMergeResult {
            changes: r
                .applied
                .into_iter()
                .map(|a| OpsMergeChange {
                    kind: a.kind.to_string(),
                    key: a.key,
                    present: a.present,
                    node: a.node,
                })
                .collect(),
            dropped: r.dropped,
        })
    })
}

/// What a refused request's answer says, looked up directly (no status
/// rebuilt): for 1 (safe mode) its reason, for 2 (shed) the level and
/// reason, for 3 (quarantined) the agent's reason and expiry.
#[napi(object)]
pub struct OpsRefusalAnswer {
    pub reason: String,
    pub level: Option<f64>,
    pub until: Option<f64>,
}

#[napi]
pub fn ops_refusal(
    env: Env,
    h: u32,
    code: f64,
    agent: Option<String>,
    now: f64,
) -> Result<OpsRefusalAnswer> {
    let (safe, shed, quarantined) = (
        OpsDecision::SafeMode as u32,
        OpsDecision::Shed as u32,
        OpsDecision::Quarantined as u32,
    );
    let Some(code) = [safe, shed, quarantined]
        .into_iter()
        .find(|&c| c as f64 == code)
    else {
        return Err(throw(
            &env,
            CoreError::range(
                "decision",
                &format!("{safe}, {shed} or {quarantined}"),
                crate::core::error::check::fmt_num(code),
            ),
        ));
    };
    with(&env, h, |p| {
        let o = &p.ops;
        Ok(match code {
            x if x == safe => OpsRefusalAnswer {
                reason: o
                    .safe_mode
                    .as_ref()
                    .map_or(String::new(), |s| s.reason.clone()),
                level: None,
                until: None,
            },
            x if x == shed => OpsRefusalAnswer {
                reason: o
                    .brownout
                    .as_ref()
                    .map_or(String::new(), |b| b.reason.clone()),
                level: Some(o.brownout.as_ref().map_or(0.0, |b| b.level)),
                until: None,
            },
            _ => {
                let q = agent.as_deref().and_then(|a| o.quarantined(a, now));
                OpsRefusalAnswer {
                    reason: q.map_or(String::new(), |q| q.reason.clone()),
                    level: None,
                    until: q.and_then(|q| q.expires_at),
                }
            }
        })
    })
}

// ---- dead-letter queues ----------------------------------------------------------

#[napi]
pub fn dlq_register(env: Env, h: u32, name: String, rate_per_second: f64) -> Result<()> {
    with(&env, h, |p| {
        p.dlq.register(&name, rate_per_second).map(|_| ())
    })
}

#[napi]
pub fn dlq_begin(env: Env, h: u32, name: String, limit: f64, now: f64) -> Result<()> {
    with(&env, h, |p| p.dlq.begin(&name, limit, now))
}

/// `[messages allowed now, ms to wait when 0]`.
#[napi]
pub fn dlq_allowance(env: Env, h: u32, name: String, now: f64, batch: u32) -> Result<Vec<f64>> {
    with(&env, h, |p| {
        p.dlq
            .allowance(&name, now, batch as u64)
            .map(|(n, w)| vec![n as f64, w])
    })
}

/// Records a batch; true when the run should stop.
#[napi]
pub fn dlq_progress(
    env: Env,
    h: u32,
    name: String,
    processed: f64,
    failed: f64,
    now: f64,
) -> Result<bool> {
    with(&env, h, |p| p.dlq.progress(&name, processed, failed, now))
}

#[napi(object)]
pub struct DlqRun {
    pub started_at: f64,
    pub finished_at: Option<f64>,
    pub limit: f64,
    pub processed: f64,
    pub failed: f64,
    pub error: Option<String>,
    pub status: String,
}

fn run_obj(r: &Run) -> DlqRun {
    DlqRun {
        started_at: r.started_at,
        finished_at: r.finished_at,
        limit: r.limit as f64,
        processed: r.processed as f64,
        failed: r.failed as f64,
        error: r.error.clone(),
        status: r.status.to_string(),
    }
}

#[napi]
pub fn dlq_end(env: Env, h: u32, name: String, now: f64, error: Option<String>) -> Result<DlqRun> {
    with(&env, h, |p| {
        p.dlq.end(&name, now, error.as_deref()).map(|r| run_obj(&r))
    })
}

#[napi(object)]
pub struct DlqView {
    pub name: String,
    pub rate_per_second: f64,
    pub current: Option<DlqRun>,
    pub last: Option<DlqRun>,
    pub total_processed: f64,
    pub total_failed: f64,
    pub runs: f64,
}

/// Records the depth a queue's `depth()` reported, exported as `dlq_depth{queue}`.
#[napi]
pub fn dlq_set_depth(env: Env, h: u32, name: String, depth: f64) -> Result<()> {
    with(&env, h, |p| p.dlq.set_depth(&name, depth))
}

#[napi]
pub fn dlq_views(env: Env, h: u32) -> Result<Vec<DlqView>> {
    with(&env, h, |p| {
        Ok(p.dlq
            .views()
            .into_iter()
            .map(|v| DlqView {
                name: v.name,
                rate_per_second: v.rate,
                current: v.current.as_ref().map(run_obj),
                last: v.last.as_ref().map(run_obj),
                total_processed: v.total_processed as f64,
                total_failed: v.total_failed as f64,
                runs: v.runs as f64,
            })
            .collect())
    })
}

/// Empties every ops plane of this thread in place (switches, quarantines,
/// rollbacks, audit, dead-letter queues, replication): handles stay valid.
/// For `resetAll()` in tests.
pub(crate) fn reset_all() -> std::result::Result<(), CoreError> {
    PLANES.with(|p| {
        let mut p = borrow_mut(p, "the ops plane table")?;
        for (i, plane) in p.iter_mut().enumerate() {
            let seed =
                (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ std::process::id() as u64;
            let node = format!("node-{:012x}", seed & 0xffff_ffff_ffff);
            *plane = Plane {
                ops: OpsState::new(seed),
                dlq: DlqSet::new(),
                repl: Replication::new(&node),
            };
        }
        Ok(())
    })
}

/// The ops and DLQ families of the process's (first) ops plane, for a
/// scrape; without a plane, the switches read off (so alerts and
/// dashboards see 0, not nothing).
pub(crate) fn families(now: f64, out: &mut Vec<crate::core::exposition::model::Family>) {
    PLANES.with(|cell| {
        if let Ok(planes) = cell.try_borrow() {
            match planes.first() {
                Some(p) => out.extend(crate::core::exposition::ops::collect(&p.ops, &p.dlq, now)),
                None => out.extend(crate::core::exposition::ops::collect(
                    &OpsState::new(0),
                    &DlqSet::new(),
                    now,
                )),
            }
        }
    });
}
