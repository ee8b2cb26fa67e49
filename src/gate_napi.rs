//! Bindings for health gates (`core::gate`).
//!
//! The JS side owns the check functions and one shared, unref'd timer; it
//! asks `tick` what to run, runs it, and reports each answer with the
//! check's token. `/health/ready` calls `readiness`, which only reads. Each
//! gate set is a [`HealthGates`] object owned by one JS `HealthGates` (lib/health-gates.ts);
//! when the JS object is collected, its set is dropped.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;

use crate::core::error::{CoreError, CoreResult};
use crate::core::gate::{self, GateSet, GateSpec, Transition};
use crate::napi_util::{borrow_mut, throw, Opts};

thread_local! {
    /// Every live set, weakly, for the scrape and `resetAll()` only: the JS
    /// object owns its set. Dead entries go at the next construction.
    static LIVE: RefCell<Vec<Weak<RefCell<GateSet>>>> = const { RefCell::new(Vec::new()) };
}

/// One set of health gates (see `core::gate`).
///
/// Methods take `&self` and borrow the set only after every user object is
/// read, so a getter that calls back in gets ERR_REENTRANT.
///
/// ```ts
/// const g = new native.HealthGates();
/// g.register({ serviceId: 'db', critical: true }, Date.now());
/// g.ready(); // false until its checks pass
/// ```
#[napi]
pub struct HealthGates {
    inner: Rc<RefCell<GateSet>>,
}

impl HealthGates {
    fn with<T>(&self, env: &Env, f: impl FnOnce(&mut GateSet) -> CoreResult<T>) -> Result<T> {
        borrow_mut(&self.inner, "the health gate set")
            .and_then(|mut s| f(&mut s))
            .map_err(|e| throw(env, e))
    }
}

impl Default for HealthGates {
    fn default() -> Self {
        Self::new()
    }
}

#[napi]
impl HealthGates {
    /// A new, empty set.
    #[napi(constructor)]
    pub fn new() -> Self {
        let inner = Rc::new(RefCell::new(GateSet::new()));
        LIVE.with(|l| {
            if let Ok(mut l) = l.try_borrow_mut() {
                l.retain(|w| w.strong_count() > 0);
                l.push(Rc::downgrade(&inner));
            }
        });
        HealthGates { inner }
    }

    /// Registers (or replaces) a gate from the user's object. Reads
    /// `serviceId`, `name`, `critical`, `requiredConsecutivePasses` (or the
    /// original's `requiredPasses`), `requiredConsecutiveFailures`,
    /// `checkIntervalMs`, `timeoutMs`. Returns the gate's index.
    #[napi]
    pub fn register(&self, env: Env, gate: Unknown, now: f64) -> Result<u32> {
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
                    Some(v) => {
                        crate::core::error::check::int_in(&format!("gate.{key}"), v, 1, 1000)
                    }
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
        self.with(&env, |s| s.register(spec, now).map(|i| i as u32))
    }

    /// One scheduler step: time out overdue checks and, when `start` (the
    /// periodic checks are on), start the due ones.
    #[napi]
    pub fn tick(&self, env: Env, now: f64, start: bool) -> Result<GateTick> {
        self.with(&env, |s| {
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
    pub fn next_wake(&self, env: Env) -> Result<f64> {
        self.with(&env, |s| Ok(s.next_wake().unwrap_or(-1.0)))
    }

    /// Starts an explicit check of gate `i` (or joins the one running); returns its token.
    #[napi]
    pub fn start(&self, env: Env, i: u32, now: f64) -> Result<f64> {
        self.with(&env, |s| s.start_now(i as usize, now).map(|t| t as f64))
    }

    /// Records a check's answer. Returns 0 no change, 1 became ready,
    /// 2 became not ready, -1 stale (the check had timed out or been replaced).
    #[napi]
    pub fn record(
        &self,
        env: Env,
        i: u32,
        token: f64,
        pass: bool,
        reason: Option<String>,
        now: f64,
    ) -> Result<i32> {
        self.with(&env, |s| {
            Ok(transition_code(s.record(
                i as usize,
                token as u64,
                pass,
                reason.as_deref(),
                now,
            )))
        })
    }

    /// While shutting down the set reports not-ready (the load balancer drains it).
    #[napi]
    pub fn set_shutting_down(&self, env: Env, on: bool) -> Result<()> {
        self.with(&env, |s| {
            s.set_shutting_down(on);
            Ok(())
        })
    }

    /// Readiness and every gate, from state only (never runs a check).
    #[napi]
    pub fn readiness(&self, env: Env) -> Result<GateReadiness> {
        self.with(&env, |s| {
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
    pub fn ready(&self, env: Env) -> Result<bool> {
        self.with(&env, |s| Ok(s.readiness().ready))
    }

    /// Forgets every gate.
    #[napi]
    pub fn clear(&self, env: Env) -> Result<()> {
        self.with(&env, |s| {
            s.clear();
            Ok(())
        })
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

/// The protocol code of a transition (see `codes_napi`).
pub(crate) fn transition_code(t: Transition) -> i32 {
    match t {
        Transition::None => 0,
        Transition::BecameReady => 1,
        Transition::BecameNotReady => 2,
        Transition::Stale => -1,
    }
}

/// Every live set (a set borrowed elsewhere is left out).
fn live() -> Vec<Rc<RefCell<GateSet>>> {
    LIVE.with(|l| {
        l.try_borrow()
            .map(|l| l.iter().filter_map(Weak::upgrade).collect())
            .unwrap_or_default()
    })
}

/// Empties every live health gate set of this thread in place. For
/// `resetAll()` in tests.
pub(crate) fn reset_all() -> CoreResult<()> {
    for s in live() {
        *borrow_mut(&s, "the health gate set")? = GateSet::new();
    }
    Ok(())
}

/// The health-gate families of every live set, for a scrape.
pub(crate) fn families(out: &mut Vec<crate::core::exposition::model::Family>) {
    let sets = live();
    let borrowed: Vec<_> = sets.iter().filter_map(|s| s.try_borrow().ok()).collect();
    let refs: Vec<&GateSet> = borrowed.iter().map(|s| &**s).collect();
    out.extend(crate::core::exposition::gates::collect(&refs));
}
