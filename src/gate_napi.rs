//! Bindings for health gates (`core::gate`).
//!
//! The JS side owns the check functions and one shared, unref'd timer; it
//! asks `gate_tick` what to run, runs it, and reports each answer with the
//! check's token. `/health/ready` calls `gate_readiness`, which only reads.
//! Gate sets are handles into a thread-local table, like DAGs.

use std::cell::RefCell;

use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;

use crate::core::error::{CoreError, CoreResult};
use crate::core::gate::{self, GateSet, GateSpec, Transition};
use crate::napi_util::{borrow_mut, throw, Opts};

thread_local! {
    static SETS: RefCell<Vec<GateSet>> = const { RefCell::new(Vec::new()) };
}

fn with<T>(env: &Env, h: u32, f: impl FnOnce(&mut GateSet) -> CoreResult<T>) -> Result<T> {
    SETS.with(|cell| {
        let mut s = borrow_mut(cell, "the health gate table")?;
        let set = s
            .get_mut(h as usize)
            .ok_or_else(|| CoreError::not_found("health gate set handle", h));
        set.and_then(f)
    })
    .map_err(|e| throw(env, e))
}

#[napi]
pub fn gate_create(env: Env) -> Result<u32> {
    SETS.with(|cell| {
        let mut s = borrow_mut(cell, "the health gate table").map_err(|e| throw(&env, e))?;
        s.push(GateSet::new());
        Ok((s.len() - 1) as u32)
    })
}

/// Registers (or replaces) a gate from the user's object. Reads
/// `serviceId`, `name`, `critical`, `requiredConsecutivePasses` (or the
/// original's `requiredPasses`), `requiredConsecutiveFailures`,
/// `checkIntervalMs`, `timeoutMs`. Returns the gate's index.
#[napi]
pub fn gate_register(env: Env, h: u32, gate: Unknown, now: f64) -> Result<u32> {
    let spec = (|| -> CoreResult<GateSpec> {
        let o = Opts::from_unknown(Some(gate), "gate")?;
        let id = o
            .string("serviceId", "a non-empty string")?
            .ok_or_else(|| {
                CoreError::type_error("gate.serviceId", "a non-empty string", "undefined")
            })?;
        let int = |key: &str, default: u32| -> CoreResult<u32> {
            match o.number(key, "an integer from 1 to 1000")? {
                None => Ok(default),
                Some(v) => crate::core::error::check::int_in(&format!("gate.{key}"), v, 1, 1000),
            }
        };
        let passes = match o.number("requiredConsecutivePasses", "an integer from 1 to 1000")? {
            Some(_) => int("requiredConsecutivePasses", gate::DEFAULT_REQUIRED_PASSES)?,
            None => int("requiredPasses", gate::DEFAULT_REQUIRED_PASSES)?,
        };
        Ok(GateSpec {
            name: o.string("name", "a string")?.unwrap_or_else(|| id.clone()),
            service_id: id,
            critical: o.boolean("critical")?.unwrap_or(false),
            required_passes: passes,
            required_failures: int(
                "requiredConsecutiveFailures",
                gate::DEFAULT_REQUIRED_FAILURES,
            )?,
            interval_ms: o
                .number("checkIntervalMs", "a number of ms")?
                .unwrap_or(gate::DEFAULT_INTERVAL_MS),
            timeout_ms: o
                .number("timeoutMs", "a number of ms")?
                .unwrap_or(gate::DEFAULT_TIMEOUT_MS),
        })
    })()
    .map_err(|e| throw(&env, e))?;
    with(&env, h, |s| s.register(spec, now).map(|i| i as u32))
}

pub(crate) fn transition_code(t: Transition) -> i32 {
    match t {
        Transition::None => 0,
        Transition::BecameReady => 1,
        Transition::BecameNotReady => 2,
        Transition::Stale => -1,
    }
}

#[napi(object)]
pub struct GateTick {
    /// Flattened `(gate, token)` pairs of the checks to run now.
    pub start: Vec<f64>,
    /// Flattened `(gate, transition)` pairs of checks that just timed out
    /// (transition: 0 none, 1 became ready, 2 became not ready).
    pub expired: Vec<f64>,
    /// When to call again (epoch ms), or -1 with no gates.
    pub next_wake: f64,
}

/// One scheduler step: time out overdue checks and, when `start` (the
/// periodic checks are on), start the due ones.
#[napi]
pub fn gate_tick(env: Env, h: u32, now: f64, start: bool) -> Result<GateTick> {
    with(&env, h, |s| {
        let expired = s
            .expire(now)
            .into_iter()
            .flat_map(|(i, t)| [i as f64, transition_code(t) as f64])
            .collect();
        let start = if start {
            s.start_due(now)
                .into_iter()
                .flat_map(|(i, t)| [i as f64, t as f64])
                .collect()
        } else {
            vec![]
        };
        Ok(GateTick {
            start,
            expired,
            next_wake: s.next_wake().unwrap_or(-1.0),
        })
    })
}

/// When the scheduler should next wake (epoch ms), or -1 with no gates.
#[napi]
pub fn gate_next_wake(env: Env, h: u32) -> Result<f64> {
    with(&env, h, |s| Ok(s.next_wake().unwrap_or(-1.0)))
}

/// Starts an explicit check of gate `i` (or joins the one running); returns its token.
#[napi]
pub fn gate_start(env: Env, h: u32, i: u32, now: f64) -> Result<f64> {
    with(&env, h, |s| s.start_now(i as usize, now).map(|t| t as f64))
}

/// Records a check's answer. Returns 0 no change, 1 became ready,
/// 2 became not ready, -1 stale (the check had timed out or been replaced).
#[napi]
pub fn gate_record(
    env: Env,
    h: u32,
    i: u32,
    token: f64,
    pass: bool,
    reason: Option<String>,
    now: f64,
) -> Result<i32> {
    with(&env, h, |s| {
        Ok(transition_code(s.record(
            i as usize,
            token as u64,
            pass,
            reason.as_deref(),
            now,
        )))
    })
}

#[napi]
pub fn gate_set_shutting_down(env: Env, h: u32, on: bool) -> Result<()> {
    with(&env, h, |s| {
        s.set_shutting_down(on);
        Ok(())
    })
}

#[napi(object)]
pub struct GateView {
    pub index: u32,
    pub service_id: String,
    pub name: String,
    pub ready: bool,
    pub critical: bool,
    pub consecutive_passes: u32,
    pub consecutive_failures: u32,
    /// The original's field name for `requiredConsecutivePasses`.
    pub required_passes: u32,
    pub required_consecutive_failures: u32,
    pub check_interval_ms: f64,
    pub timeout_ms: f64,
    pub last_check: Option<f64>,
    pub last_result: Option<bool>,
    pub reason: Option<String>,
    pub last_duration_ms: Option<f64>,
    pub since: Option<f64>,
    pub checking: bool,
    pub checks: f64,
    pub failures: f64,
}

#[napi(object)]
pub struct GateReadiness {
    pub ready: bool,
    pub critical_ready: bool,
    pub all_ready: bool,
    pub degraded: bool,
    pub shutting_down: bool,
    pub gates: Vec<GateView>,
}

/// Readiness and every gate, from state only (never runs a check).
#[napi]
pub fn gate_readiness(env: Env, h: u32) -> Result<GateReadiness> {
    with(&env, h, |s| {
        let r = s.readiness();
        let gates = s
            .gates()
            .enumerate()
            .map(|(i, g)| GateView {
                index: i as u32,
                service_id: g.spec.service_id.clone(),
                name: g.spec.name.clone(),
                ready: g.ready,
                critical: g.spec.critical,
                consecutive_passes: g.consecutive_passes,
                consecutive_failures: g.consecutive_failures,
                required_passes: g.spec.required_passes,
                required_consecutive_failures: g.spec.required_failures,
                check_interval_ms: g.spec.interval_ms,
                timeout_ms: g.spec.timeout_ms,
                last_check: g.last_check,
                last_result: g.last_result,
                reason: g.reason.clone(),
                last_duration_ms: g.last_duration_ms,
                since: g.since,
                checking: s.is_checking(i),
                checks: g.checks as f64,
                failures: g.failures as f64,
            })
            .collect();
        Ok(GateReadiness {
            ready: r.ready,
            critical_ready: r.critical_ready,
            all_ready: r.all_ready,
            degraded: r.degraded,
            shutting_down: r.shutting_down,
            gates,
        })
    })
}

/// Just the verdict, for a probe that only needs the status code.
#[napi]
pub fn gate_ready(env: Env, h: u32) -> Result<bool> {
    with(&env, h, |s| Ok(s.readiness().ready))
}

#[napi]
pub fn gate_clear(env: Env, h: u32) -> Result<()> {
    with(&env, h, |s| {
        s.clear();
        Ok(())
    })
}

/// Empties every health gate set of this thread in place (handles stay
/// valid). For `resetAll()` in tests.
pub(crate) fn reset_all() -> CoreResult<()> {
    SETS.with(|cell| {
        let mut s = borrow_mut(cell, "the health gate table")?;
        s.iter_mut().for_each(|g| *g = GateSet::new());
        Ok(())
    })
}

/// The health-gate families of every set, for a scrape.
pub(crate) fn families(out: &mut Vec<crate::core::exposition::model::Family>) {
    SETS.with(|cell| {
        if let Ok(sets) = cell.try_borrow() {
            let refs: Vec<&GateSet> = sets.iter().collect();
            out.extend(crate::core::exposition::gates::collect(&refs));
        }
    });
}
