//! Bindings for the ops controls (`core::ops`) and dead-letter drains
//! (`core::dlq`).
//!
//! Hot path: `ops_flags` gives the JS middleware a summary it caches by
//! `version` (safe mode on?, dimmer level, quarantines?); while nothing is
//! switched on, a request costs no crossing at all. Otherwise it is one
//! `ops_decide` call with two numbers and, if the route names an agent, its id.

use std::cell::RefCell;

use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;

use crate::core::dlq::{DlqSet, Run};
use crate::core::error::{CoreError, CoreResult};
use crate::core::ops::{audit_json, Actor, Criticality, OpsState};
use crate::napi_util::throw;

struct Plane {
    ops: OpsState,
    dlq: DlqSet,
}

thread_local! {
    static PLANES: RefCell<Vec<Plane>> = const { RefCell::new(Vec::new()) };
}

fn with<T>(env: &Env, h: u32, f: impl FnOnce(&mut Plane) -> CoreResult<T>) -> Result<T> {
    PLANES
        .with(|p| {
            let mut p = p.borrow_mut();
            let plane = p.get_mut(h as usize).ok_or_else(|| CoreError::not_found("ops handle", h));
            plane.and_then(f)
        })
        .map_err(|e| throw(env, e))
}

fn actor(name: String, source: String) -> Actor {
    Actor { name, source }
}

#[napi]
pub fn ops_create(seed: f64) -> u32 {
    PLANES.with(|p| {
        let mut p = p.borrow_mut();
        p.push(Plane { ops: OpsState::new(seed.to_bits()), dlq: DlqSet::new() });
        (p.len() - 1) as u32
    })
}

/// `[version, safeMode 0/1, brownout level or -1, quarantined count, next expiry or -1]`.
#[napi]
pub fn ops_flags(env: Env, h: u32, now: f64) -> Result<Vec<f64>> {
    with(&env, h, |p| {
        p.ops.expire(now);
        let o = &p.ops;
        Ok(vec![
            o.version as f64,
            if o.safe_mode.is_some() { 1.0 } else { 0.0 },
            o.brownout.as_ref().map_or(-1.0, |b| b.level),
            o.quarantine_list(now).count() as f64,
            o.next_expiry().unwrap_or(-1.0),
        ])
    })
}

/// The decision for one request: 0 serve, 1 safe mode (503), 2 shed (503),
/// 3 quarantined (423). `criticality`: 0 critical, 1 default, 2 sheddable.
#[napi]
pub fn ops_decide(env: Env, h: u32, essential: bool, criticality: u32, agent: Option<String>, now: f64) -> Result<u32> {
    let c = match criticality {
        0 => Criticality::Critical,
        1 => Criticality::Default,
        _ => Criticality::Sheddable,
    };
    with(&env, h, |p| Ok(p.ops.decide(essential, c, agent.as_deref(), now).code()))
}

#[napi]
pub fn ops_set_safe_mode(env: Env, h: u32, on: bool, reason: String, who: String, source: String, now: f64) -> Result<bool> {
    with(&env, h, |p| p.ops.set_safe_mode(on, &reason, &actor(who, source), now))
}

#[napi]
pub fn ops_set_brownout(env: Env, h: u32, level: Option<f64>, reason: String, who: String, source: String, now: f64) -> Result<bool> {
    with(&env, h, |p| p.ops.set_brownout(level, &reason, &actor(who, source), now))
}

#[napi]
pub fn ops_quarantine(env: Env, h: u32, agent: String, reason: String, ttl_ms: Option<f64>, who: String, source: String, now: f64) -> Result<bool> {
    with(&env, h, |p| p.ops.quarantine(&agent, &reason, ttl_ms, &actor(who, source), now))
}

#[napi]
pub fn ops_release(env: Env, h: u32, agent: String, who: String, source: String, now: f64) -> Result<bool> {
    with(&env, h, |p| p.ops.release(&agent, &actor(who, source), now))
}

#[napi]
pub fn ops_record_rollback(env: Env, h: u32, names: Vec<String>, reason: String, who: String, source: String, now: f64) -> Result<bool> {
    with(&env, h, |p| p.ops.record_rollback(&names, &reason, &actor(who, source), now))
}

#[napi]
pub fn ops_clear_rollback(env: Env, h: u32, name: String) -> Result<bool> {
    with(&env, h, |p| Ok(p.ops.clear_rollback(&name)))
}

/// Adds an audit entry for an action the core does not perform itself
/// (a refused request, a DLQ drain). `args_json` must be a JSON object.
#[napi]
pub fn ops_audit_push(env: Env, h: u32, action: String, args_json: String, who: String, source: String, result: String, now: f64) -> Result<()> {
    let args: serde_json::Value = serde_json::from_str(&args_json).map_err(|e| throw(&env, CoreError::type_error("args", "JSON", e)))?;
    with(&env, h, |p| {
        p.ops.push_audit(now, &action, args, &actor(who, source), result);
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
}

#[napi]
pub fn ops_status(env: Env, h: u32, now: f64) -> Result<OpsStatus> {
    with(&env, h, |p| {
        p.ops.expire(now);
        let o = &p.ops;
        Ok(OpsStatus {
            version: o.version as f64,
            safe_mode: o.safe_mode.as_ref().map(|s| OpsSwitch { since: s.since, reason: s.reason.clone(), actor: s.actor.clone() }),
            brownout: o.brownout.as_ref().map(|b| OpsBrownout { level: b.level, since: b.since, reason: b.reason.clone(), actor: b.actor.clone() }),
            quarantined: o
                .quarantine_list(now)
                .map(|(k, q)| OpsQuarantine { agent_id: k.clone(), since: q.since, reason: q.reason.clone(), actor: q.actor.clone(), expires_at: q.expires_at })
                .collect(),
            rolled_back: o.rolled_back.iter().map(|(k, s)| OpsRollback { name: k.clone(), since: s.since, reason: s.reason.clone(), actor: s.actor.clone() }).collect(),
            audit_entries: o.audit().count() as u32,
            audit_dropped: o.audit_dropped as f64,
        })
    })
}

/// The last `limit` audit entries, oldest first, as one JSON array string
/// (entries carry free-form `args`).
#[napi]
pub fn ops_audit(env: Env, h: u32, limit: u32) -> Result<String> {
    with(&env, h, |p| {
        let all: Vec<_> = p.ops.audit().collect();
        let from = all.len().saturating_sub(limit as usize);
        let v: Vec<serde_json::Value> = all[from..].iter().map(|e| audit_json(e)).collect();
        Ok(serde_json::Value::Array(v).to_string())
    })
}

#[napi]
pub fn ops_to_json(env: Env, h: u32, now: f64) -> Result<String> {
    with(&env, h, |p| Ok(p.ops.to_json(now)))
}

/// Replaces the persistent state from a state file's text; throws (and
/// changes nothing) when it is not a valid state file.
#[napi]
pub fn ops_load_json(env: Env, h: u32, text: String) -> Result<()> {
    with(&env, h, |p| p.ops.load_json(&text))
}

/// What a refused request's answer says, looked up directly (no status
/// rebuilt): for 1 (safe mode) its reason, for 2 (shed) the level and
/// reason, for 3 (quarantined) the agent's reason and expiry.
#[napi(object)]
pub struct OpsRefusal {
    pub reason: String,
    pub level: Option<f64>,
    pub until: Option<f64>,
}

#[napi]
pub fn ops_refusal(env: Env, h: u32, code: u32, agent: Option<String>, now: f64) -> Result<OpsRefusal> {
    with(&env, h, |p| {
        let o = &p.ops;
        Ok(match code {
            1 => OpsRefusal { reason: o.safe_mode.as_ref().map_or(String::new(), |s| s.reason.clone()), level: None, until: None },
            2 => OpsRefusal { reason: o.brownout.as_ref().map_or(String::new(), |b| b.reason.clone()), level: Some(o.brownout.as_ref().map_or(0.0, |b| b.level)), until: None },
            _ => {
                let q = agent.as_deref().and_then(|a| o.quarantined(a, now));
                OpsRefusal { reason: q.map_or(String::new(), |q| q.reason.clone()), level: None, until: q.and_then(|q| q.expires_at) }
            }
        })
    })
}

// ---- dead-letter queues ----------------------------------------------------------

#[napi]
pub fn dlq_register(env: Env, h: u32, name: String, rate_per_second: f64) -> Result<()> {
    with(&env, h, |p| p.dlq.register(&name, rate_per_second).map(|_| ()))
}

#[napi]
pub fn dlq_begin(env: Env, h: u32, name: String, limit: f64, now: f64) -> Result<()> {
    with(&env, h, |p| p.dlq.begin(&name, limit, now))
}

/// `[messages allowed now, ms to wait when 0]`.
#[napi]
pub fn dlq_allowance(env: Env, h: u32, name: String, now: f64, batch: u32) -> Result<Vec<f64>> {
    with(&env, h, |p| p.dlq.allowance(&name, now, batch as u64).map(|(n, w)| vec![n as f64, w]))
}

/// Records a batch; true when the run should stop.
#[napi]
pub fn dlq_progress(env: Env, h: u32, name: String, processed: f64, failed: f64, now: f64) -> Result<bool> {
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
    with(&env, h, |p| p.dlq.end(&name, now, error.as_deref()).map(|r| run_obj(&r)))
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
