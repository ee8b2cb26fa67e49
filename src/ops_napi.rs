//! Bindings for the ops controls (`core::ops`) and dead-letter drains
//! (`core::dlq`): one [`OpsPlane`] class per plane, owned by its JS object
//! (Rust frees the plane when the object is collected). A thread-local table
//! of weak references lets `rcResetAll`, the scrape and [`ops_decide`] reach
//! the live planes.
//!
//! Hot path: `OpsPlane#flags` gives the JS middleware a summary it caches by
//! `version` (safe mode on?, dimmer level, quarantines?); while nothing is
//! switched on, a request costs no crossing at all. Otherwise it is one
//! [`ops_decide`] call (a free function: the cheaper crossing) with the
//! plane's slot, two numbers and, if the route names an agent, its id.
//!
//! Every call that changes the state also stamps the change in the plane's
//! replica (`core::ops_merge`), which `replicaExport` / `replicaMerge`
//! exchange with other instances.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;

use crate::codes_napi::{OpsCriticality, OpsDecision, OpsFlag};

use crate::core::dlq::{
    DlqSet, DrainSpec, Run, DEFAULT_RATE, MAX_BATCH, MAX_DRAIN_LIMIT, MAX_RATE,
};
use crate::core::error::{CoreError, CoreResult};
use crate::core::json;
use crate::core::ops::{refusal_json, Actor, Criticality, LoadReport, OpsState};
use crate::core::ops_merge::{Field, Replication};
use crate::napi_util::{borrow_mut, throw, Opts};

struct Plane {
    ops: OpsState,
    dlq: DlqSet,
    repl: Replication,
}

thread_local! {
    /// Every live plane of this thread, weakly, so `rcResetAll` and the
    /// scrape reach them; pruned when a plane is created.
    static PLANES: RefCell<Vec<Weak<RefCell<Plane>>>> = const { RefCell::new(Vec::new()) };
}

/// One ops plane (switches, quarantines, rollbacks, audit, dead-letter
/// drains, replication), owned by the JS object: Rust frees it when the
/// object is collected.
///
/// ```ts
/// const plane = new native.OpsPlane(Math.random() * 2 ** 52);
/// plane.setSafeMode(true, 'incident 42', 'alice', 'cli', Date.now());
/// plane.decide(false, OpsCriticality.Default, undefined, Date.now()); // OpsDecision.SafeMode
/// ```
#[napi]
pub struct OpsPlane {
    inner: Rc<RefCell<Plane>>,
    slot: u32,
}

fn with<T>(
    env: &Env,
    cell: &RefCell<Plane>,
    f: impl FnOnce(&mut Plane) -> CoreResult<T>,
) -> Result<T> {
    borrow_mut(cell, "the ops plane")
        .and_then(|mut p| f(&mut p))
        .map_err(|e| throw(env, e))
}

/// `with`, then records what the call changed in the replica, and stamps
/// the registers the action named (`targets`) when it succeeded, changed or not.
fn with_local<T>(
    env: &Env,
    cell: &RefCell<Plane>,
    now: f64,
    targets: Vec<Field>,
    f: impl FnOnce(&mut Plane) -> CoreResult<T>,
) -> Result<T> {
    with(env, cell, |p| {
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

fn fresh(seed: u64) -> Plane {
    // A node id until the Redis backend names the instance: it only breaks ties.
    let node = format!("node-{:012x}", seed & 0xffff_ffff_ffff);
    Plane {
        ops: OpsState::new(seed),
        dlq: DlqSet::new(),
        repl: Replication::new(&node),
    }
}

#[napi]
impl OpsPlane {
    /// An empty plane; `seed` seeds its ids and its provisional node id.
    #[napi(constructor)]
    pub fn new(env: Env, seed: f64) -> Result<Self> {
        let inner = Rc::new(RefCell::new(fresh(seed.to_bits())));
        // Not borrowed by anyone else while JS runs (`reset_all`/`families`/`ops_decide`
        // never call JS). A dead plane's slot is reused, so the table stays as
        // long as the most planes alive at once.
        let slot = PLANES.with(|cell| {
            let mut planes = borrow_mut(cell, "the ops plane table").map_err(|e| throw(&env, e))?;
            let weak = Rc::downgrade(&inner);
            let slot = match planes.iter().position(|w| w.strong_count() == 0) {
                Some(i) => {
                    planes[i] = weak;
                    i
                }
                None => {
                    planes.push(weak);
                    planes.len() - 1
                }
            };
            Ok::<u32, Error>(slot as u32)
        })?;
        Ok(OpsPlane { inner, slot })
    }

    /// This plane's index in the thread's plane table, for [`ops_decide`]
    /// (valid while this object lives).
    #[napi(getter)]
    pub fn slot(&self) -> u32 {
        self.slot
    }
}

fn actor(name: String, source: String) -> Actor {
    Actor { name, source }
}

#[napi]
impl OpsPlane {
    /// `[version, safeMode 0/1, brownout level or -1, quarantined count, next expiry or -1]`.
    #[napi]
    pub fn flags(&self, env: Env, now: f64) -> Result<Vec<f64>> {
        with(&env, &self.inner, |p| {
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
}

/// The decision for one request: 0 serve, 1 safe mode (503), 2 shed (503),
/// 3 quarantined (423). `criticality`: 0 critical, 1 default, 2 sheddable.
/// `slot` is the plane's [`OpsPlane::slot`].
///
/// A free function, not a method: it runs per request while a switch is on,
/// and a class-method crossing measured 690 ns against 287 ns for this form
/// (`/tmp` micro-benchmark, median of 7 rounds, see the h/opscls report).
///
/// ```js
/// const plane = new native.OpsPlane(1);
/// native.opsDecide(plane.slot, false, OpsCriticality.Default, undefined, Date.now()); // OpsDecision.Serve
/// ```
#[napi]
pub fn ops_decide(
    env: Env,
    slot: u32,
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
    let plane = PLANES
        .with(|cell| {
            let planes = borrow_mut(cell, "the ops plane table")?;
            planes
                .get(slot as usize)
                .and_then(Weak::upgrade)
                .ok_or_else(|| CoreError::not_found("ops plane slot", slot))
        })
        .map_err(|e| throw(&env, e))?;
    with(&env, &plane, |p| {
        Ok(p.ops.decide(essential, c, agent.as_deref(), now).code())
    })
}

#[napi]
impl OpsPlane {
    /// Switches safe mode on or off (non-essential routes answer 503); true when it changed.
    #[napi]
    pub fn set_safe_mode(
        &self,
        env: Env,
        on: bool,
        reason: String,
        who: String,
        source: String,
        now: f64,
    ) -> Result<bool> {
        with_local(&env, &self.inner, now, vec![Field::SafeMode], |p| {
            p.ops.set_safe_mode(on, &reason, &actor(who, source), now)
        })
    }
}

#[napi]
impl OpsPlane {
    /// Sets the dimmer level (0 to 1; null switches it off); true when it changed.
    #[napi]
    pub fn set_brownout(
        &self,
        env: Env,
        level: Option<f64>,
        reason: String,
        who: String,
        source: String,
        now: f64,
    ) -> Result<bool> {
        with_local(&env, &self.inner, now, vec![Field::Brownout], |p| {
            p.ops.set_brownout(level, &reason, &actor(who, source), now)
        })
    }
}

#[napi]
impl OpsPlane {
    /// Quarantines an agent (its routes answer 423), for `ttl_ms` or until released; true when it changed.
    // Positional arguments are the binding's calling convention here.
    #[allow(clippy::too_many_arguments)]
    #[napi]
    pub fn quarantine(
        &self,
        env: Env,
        agent: String,
        reason: String,
        ttl_ms: Option<f64>,
        who: String,
        source: String,
        now: f64,
    ) -> Result<bool> {
        with_local(
            &env,
            &self.inner,
            now,
            vec![Field::Quarantine(agent.clone())],
            |p| {
                p.ops
                    .quarantine(&agent, &reason, ttl_ms, &actor(who, source), now)
            },
        )
    }
}

#[napi]
impl OpsPlane {
    /// Releases a quarantined agent; true when it was quarantined.
    #[napi]
    pub fn release(
        &self,
        env: Env,
        agent: String,
        who: String,
        source: String,
        now: f64,
    ) -> Result<bool> {
        with_local(
            &env,
            &self.inner,
            now,
            vec![Field::Quarantine(agent.clone())],
            |p| p.ops.release(&agent, &actor(who, source), now),
        )
    }
}

#[napi]
impl OpsPlane {
    /// Records a fast rollback of the named rollouts; true when something changed.
    #[napi]
    pub fn record_rollback(
        &self,
        env: Env,
        names: Vec<String>,
        reason: String,
        who: String,
        source: String,
        now: f64,
    ) -> Result<bool> {
        with_local(
            &env,
            &self.inner,
            now,
            names.iter().cloned().map(Field::RolledBack).collect(),
            |p| {
                p.ops
                    .record_rollback(&names, &reason, &actor(who, source), now)
            },
        )
    }
}

#[napi]
impl OpsPlane {
    /// Forgets the rollback of rollout `name`; true when there was one.
    #[napi]
    pub fn clear_rollback(&self, env: Env, name: String, now: f64) -> Result<bool> {
        with_local(
            &env,
            &self.inner,
            now,
            vec![Field::RolledBack(name.clone())],
            |p| Ok(p.ops.clear_rollback(&name)),
        )
    }
}

#[napi]
impl OpsPlane {
    /// Adds an audit entry for an action the core does not perform itself
    /// (a refused request, a DLQ drain). `args_json` must be a JSON object.
    // Positional arguments are the binding's calling convention here.
    #[allow(clippy::too_many_arguments)]
    #[napi]
    pub fn audit_push(
        &self,
        env: Env,
        action: String,
        args_json: String,
        who: String,
        source: String,
        result: String,
        now: f64,
    ) -> Result<()> {
        let args = json::parse("args", "JSON", &args_json, json::NO_SIZE_LIMIT)
            .map_err(|e| throw(&env, e))?;
        with(&env, &self.inner, |p| {
            p.ops
                .push_audit(now, &action, args, &actor(who, source), result);
            Ok(())
        })
    }
}

/// A switch that is on (safe mode): since when, why and by whom.
#[napi(object)]
pub struct OpsSwitch {
    /// When it was turned on (ms since the epoch).
    pub since: f64,
    /// The reason given.
    pub reason: String,
    /// Who turned it on.
    pub actor: String,
}

/// The brownout, while on: its level and who set it.
#[napi(object)]
pub struct OpsBrownout {
    /// Share of non-critical traffic served, 0 to 1.
    pub level: f64,
    /// When it was set (ms since the epoch).
    pub since: f64,
    /// The reason given.
    pub reason: String,
    /// Who set it.
    pub actor: String,
}

/// One quarantined agent.
#[napi(object)]
pub struct OpsQuarantine {
    /// The agent's id.
    pub agent_id: String,
    /// When it was quarantined (ms since the epoch).
    pub since: f64,
    /// The reason given.
    pub reason: String,
    /// Who quarantined it.
    pub actor: String,
    /// When the quarantine ends by itself (ms since the epoch); none: until released.
    pub expires_at: Option<f64>,
}

/// One rollout rolled back by an operator.
#[napi(object)]
pub struct OpsRollback {
    /// The rollout's name.
    pub name: String,
    /// When it was rolled back (ms since the epoch).
    pub since: f64,
    /// The reason given.
    pub reason: String,
    /// Who rolled it back.
    pub actor: String,
}

/// The ops plane's state, as the status view shows it.
#[napi(object)]
pub struct OpsStatus {
    /// Bumped on every change (a cheap "did anything change" for readers).
    pub version: f64,
    /// Safe mode, while on.
    pub safe_mode: Option<OpsSwitch>,
    /// The brownout, while on.
    pub brownout: Option<OpsBrownout>,
    /// Every quarantined agent.
    pub quarantined: Vec<OpsQuarantine>,
    /// Every rolled-back rollout.
    pub rolled_back: Vec<OpsRollback>,
    /// Audit entries kept.
    pub audit_entries: u32,
    /// Audit entries dropped from the ring (oldest first).
    pub audit_dropped: f64,
    /// Aggregated refusal entries kept, and those dropped from their own ring.
    pub refusal_entries: u32,
    /// Aggregated refusal entries dropped from their ring.
    pub refusals_dropped: f64,
}

#[napi]
impl OpsPlane {
    /// The controls. `only` limits `quarantined` to the agents named (each looked
    /// up directly, O(log n)): an action's caller patches its cached list with
    /// the one entry it touched instead of rebuilding thousands of JS objects per
    /// action (which made creating n quarantines O(n²)).
    #[napi]
    pub fn status(&self, env: Env, now: f64, only: Option<Vec<String>>) -> Result<OpsStatus> {
        with(&env, &self.inner, |p| {
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
}

#[napi]
impl OpsPlane {
    /// The last `limit` audit entries (operator actions and aggregated
    /// refusals merged by sequence number), oldest first, as one JSON array
    /// string (entries carry free-form `args`).
    #[napi]
    pub fn audit(&self, env: Env, limit: u32) -> Result<String> {
        with(&env, &self.inner, |p| {
            Ok(serde_json::Value::Array(p.ops.audit_view(limit as usize)).to_string())
        })
    }
}

#[napi]
impl OpsPlane {
    /// The state file's text: the ops state with the replica's clocks.
    #[napi]
    pub fn to_json(&self, env: Env, now: f64) -> Result<String> {
        with(&env, &self.inner, |p| {
            Ok(p.repl.file_json(&p.ops.to_json(now)))
        })
    }
}

/// What a load left out or repaired (`core::ops::LoadReport`).
#[napi(object)]
pub struct OpsLoadReport {
    /// Entries left out, each with its JSON path and why.
    pub dropped: Vec<String>,
    /// Entries kept with a text repaired, each with its JSON path and why.
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

#[napi]
impl OpsPlane {
    /// Replaces the persistent state from a state file's text. Throws (and
    /// changes nothing) only when the text is not a state file at all; a bad
    /// entry inside is dropped or repaired and listed in the report. Clocks come
    /// from the file (`replica`); a file without them loads with clock 0 the
    /// first time.
    #[napi]
    pub fn load_json(&self, env: Env, text: String, now: f64) -> Result<OpsLoadReport> {
        with(&env, &self.inner, |p| {
            let first = p.ops.version == 0;
            let r = p.ops.load_json(&text)?;
            p.repl.after_load(&mut p.ops, &text, first, now);
            Ok(report(r))
        })
    }
}

/// What `opsCheckState` found in a state document, and the document cleaned.
#[napi(object)]
pub struct OpsCheckedState {
    /// Entries left out, each with its JSON path and why.
    pub dropped: Vec<String>,
    /// Entries kept with a text repaired, each with its JSON path and why.
    pub repaired: Vec<String>,
    /// Problems past the first 50, counted only.
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

/// A refused request as the audit aggregated it.
#[napi(object)]
pub struct OpsRefusal {
    /// The aggregated entry, as JSON (the audit's shape plus `count`, `firstAt`).
    pub entry_json: String,
    /// True when this refusal opened a new entry (first from that source in the window).
    pub first: bool,
    /// Refusals the entry counts so far.
    pub count: f64,
}

#[napi]
impl OpsPlane {
    /// Records a refused request (aggregated per source, action and reason).
    #[napi]
    pub fn record_refusal(
        &self,
        env: Env,
        action: String,
        source: String,
        why: String,
        now: f64,
    ) -> Result<OpsRefusal> {
        with(&env, &self.inner, |p| {
            let (r, first) = p.ops.record_refusal(now, &action, &source, &why);
            Ok(OpsRefusal {
                entry_json: refusal_json(&r).to_string(),
                first,
                count: r.count as f64,
            })
        })
    }
}

#[napi]
impl OpsPlane {
    /// Notes that the CLI command `id` was applied (it is saved with the state).
    #[napi]
    pub fn mark_applied(
        &self,
        env: Env,
        id: String,
        by: String,
        result: String,
        now: f64,
    ) -> Result<()> {
        with(&env, &self.inner, |p| {
            p.ops.mark_applied(&id, &by, &result, now)
        })
    }
}

#[napi]
impl OpsPlane {
    /// `[by, result]` of the applied CLI command `id`, or null.
    #[napi]
    pub fn applied(&self, env: Env, id: String) -> Result<Option<Vec<String>>> {
        with(&env, &self.inner, |p| {
            Ok(p.ops
                .applied(&id)
                .map(|a| vec![a.by.clone(), a.result.clone()]))
        })
    }
}

#[napi]
impl OpsPlane {
    /// Names this instance in its replica's clock stamps (ties only).
    #[napi]
    pub fn replica_set_node(&self, env: Env, node: String) -> Result<()> {
        with(&env, &self.inner, |p| p.repl.set_node(&node))
    }
}

#[napi]
impl OpsPlane {
    /// This instance's replica document (the ops controls with their clocks).
    #[napi]
    pub fn replica_export(&self, env: Env, now: f64) -> Result<String> {
        with(&env, &self.inner, |p| {
            p.repl.record_local(&p.ops, now);
            Ok(p.repl.export())
        })
    }
}

/// One switch or entry a merge changed.
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

/// What merging another instance's replica changed here.
#[napi(object)]
pub struct OpsMergeResult {
    /// Every switch or entry whose value changed.
    pub changes: Vec<OpsMergeChange>,
    /// Entries of the document dropped as invalid (or past a cap).
    pub dropped: u32,
}

#[napi]
impl OpsPlane {
    /// Merges another instance's replica document: per switch and per entry the
    /// later clock wins. Throws a TypeError/RangeError (changing nothing) when
    /// `text` is not a replica document; bad entries inside one are dropped and
    /// counted in `dropped`.
    #[napi]
    pub fn replica_merge(&self, env: Env, text: String, now: f64) -> Result<OpsMergeResult> {
        with(&env, &self.inner, |p| {
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
}

/// What a refused request's answer says, looked up directly (no status
/// rebuilt): for 1 (safe mode) its reason, for 2 (shed) the level and
/// reason, for 3 (quarantined) the agent's reason and expiry.
#[napi(object)]
pub struct OpsRefusalAnswer {
    /// The reason the operator gave.
    pub reason: String,
    /// The brownout level, the share of non-critical traffic served (shed only).
    pub level: Option<f64>,
    /// When the agent's quarantine ends (quarantined only; none: until released).
    pub until: Option<f64>,
}

#[napi]
impl OpsPlane {
    /// Why a request was refused with `decision` (see [`OpsRefusalAnswer`]).
    #[napi]
    pub fn refusal(
        &self,
        env: Env,
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
        with(&env, &self.inner, |p| {
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
}

// ---- dead-letter queues ----------------------------------------------------------

/// A drain's options as `dlqDrainSpec` checked them, defaults filled in.
#[napi(object)]
pub struct DlqDrainSpec {
    /// The most messages the drain takes.
    pub limit: u32,
    /// Messages asked of the queue's `drain()` at once.
    pub batch_size: u32,
}

/// Checks a drain's options `{ limit, batchSize }` with the core's rule
/// (`core::dlq::DrainSpec`: `limit` 1 to 1e9, default 1000; `batchSize` 1 to
/// 100000, default 100); absent or null is the default, a non-number a
/// TypeError and a number out of range a RangeError, each naming the field.
///
/// ```js
/// const { limit, batchSize } = native.dlqDrainSpec({ limit: opts.limit, batchSize: opts.batchSize });
/// ```
#[napi]
pub fn dlq_drain_spec(env: Env, options: Option<Unknown>) -> Result<DlqDrainSpec> {
    let read = || -> CoreResult<DrainSpec> {
        let o = Opts::from_unknown(options, "options")?;
        let batch = o.number(
            "batchSize",
            &format!("a number: an integer from 1 to {MAX_BATCH}"),
        )?;
        let limit = o.number(
            "limit",
            &format!("a number: an integer from 1 to {MAX_DRAIN_LIMIT}"),
        )?;
        DrainSpec::build(limit, batch)
    };
    let d = read().map_err(|e| throw(&env, e))?;
    Ok(DlqDrainSpec {
        limit: d.limit,
        batch_size: d.batch,
    })
}

/// Messages per second a dead-letter queue registered without `ratePerSecond`
/// is drained at (`core::dlq::DEFAULT_RATE`).
#[napi]
pub const DLQ_DEFAULT_RATE_PER_SECOND: u32 = DEFAULT_RATE as u32;

#[napi]
impl OpsPlane {
    /// Registers (or re-paces) the dead-letter queue `name`, drained at most
    /// `options.ratePerSecond` messages per second (absent or null: the core's
    /// default, `DLQ_DEFAULT_RATE_PER_SECOND`).
    #[napi]
    pub fn dlq_register(&self, env: Env, name: String, options: Option<Unknown>) -> Result<()> {
        // Read before the plane is borrowed (a getter may call back in).
        let rate = Opts::from_unknown(options, "options")
            .and_then(|o| o.number("ratePerSecond", &format!("a number > 0 and <= {MAX_RATE}")))
            .map_err(|e| throw(&env, e))?
            .unwrap_or(DEFAULT_RATE);
        with(&env, &self.inner, |p| {
            p.dlq.register(&name, rate).map(|_| ())
        })
    }
}

#[napi]
impl OpsPlane {
    /// Starts a drain run of at most `limit` messages; throws while one runs or on a bad limit.
    #[napi]
    pub fn dlq_begin(&self, env: Env, name: String, limit: f64, now: f64) -> Result<()> {
        with(&env, &self.inner, |p| p.dlq.begin(&name, limit, now))
    }
}

#[napi]
impl OpsPlane {
    /// `[messages allowed now, ms to wait when 0]`.
    #[napi]
    pub fn dlq_allowance(&self, env: Env, name: String, now: f64, batch: u32) -> Result<Vec<f64>> {
        with(&env, &self.inner, |p| {
            p.dlq
                .allowance(&name, now, batch as u64)
                .map(|(n, w)| vec![n as f64, w])
        })
    }
}

#[napi]
impl OpsPlane {
    /// Records a batch; true when the run should stop.
    #[napi]
    pub fn dlq_progress(
        &self,
        env: Env,
        name: String,
        processed: f64,
        failed: f64,
        now: f64,
    ) -> Result<bool> {
        with(&env, &self.inner, |p| {
            p.dlq.progress(&name, processed, failed, now)
        })
    }
}

/// One drain of a dead-letter queue (`core::dlq::Run`).
#[napi(object)]
pub struct DlqRun {
    /// When the drain began (ms, the caller's clock).
    pub started_at: f64,
    /// When it ended; none while it runs.
    pub finished_at: Option<f64>,
    /// The most messages it may take.
    pub limit: f64,
    /// Messages handled successfully.
    pub processed: f64,
    /// Messages whose handling failed.
    pub failed: f64,
    /// Why it stopped early, if it did.
    pub error: Option<String>,
    /// `running`, `done` or `failed`.
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
impl OpsPlane {
    /// Ends the drain run of `name` (with its error, if any) and returns its figures.
    #[napi]
    pub fn dlq_end(
        &self,
        env: Env,
        name: String,
        now: f64,
        error: Option<String>,
    ) -> Result<DlqRun> {
        with(&env, &self.inner, |p| {
            p.dlq.end(&name, now, error.as_deref()).map(|r| run_obj(&r))
        })
    }
}

/// A dead-letter queue's figures (`core::dlq::QueueView`).
#[napi(object)]
pub struct DlqView {
    /// The queue's name.
    pub name: String,
    /// Its drain rate, in messages per second.
    pub rate_per_second: f64,
    /// The drain that runs now, if any.
    pub current: Option<DlqRun>,
    /// The last drain that ended.
    pub last: Option<DlqRun>,
    /// Messages handled over every run.
    pub total_processed: f64,
    /// Messages that failed over every run.
    pub total_failed: f64,
    /// How many drains have run.
    pub runs: f64,
}

#[napi]
impl OpsPlane {
    /// Records the depth a queue's `depth()` reported, exported as `dlq_depth{queue}`.
    #[napi]
    pub fn dlq_set_depth(&self, env: Env, name: String, depth: f64) -> Result<()> {
        with(&env, &self.inner, |p| p.dlq.set_depth(&name, depth))
    }
}

#[napi]
impl OpsPlane {
    /// Drain figures of every registered queue.
    #[napi]
    pub fn dlq_views(&self, env: Env) -> Result<Vec<DlqView>> {
        with(&env, &self.inner, |p| {
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
}

/// Empties every live ops plane of this thread in place (switches,
/// quarantines, rollbacks, audit, dead-letter queues, replication): the JS
/// objects stay valid. For `resetAll()` in tests.
pub(crate) fn reset_all() -> std::result::Result<(), CoreError> {
    let planes: Vec<Rc<RefCell<Plane>>> = PLANES.with(|cell| {
        borrow_mut(cell, "the ops plane table")
            .map(|p| p.iter().filter_map(Weak::upgrade).collect())
    })?;
    for (i, plane) in planes.iter().enumerate() {
        let seed = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ std::process::id() as u64;
        *borrow_mut(plane, "the ops plane")? = fresh(seed);
    }
    Ok(())
}

/// The ops and DLQ families of the process's oldest live ops plane, for a
/// scrape; without one, the switches read off (so alerts and dashboards see
/// 0, not nothing).
pub(crate) fn families(now: f64, out: &mut Vec<crate::core::exposition::model::Family>) {
    let first = PLANES.with(|cell| {
        cell.try_borrow()
            .ok()
            .and_then(|p| p.iter().find_map(Weak::upgrade))
    });
    // A plane borrowed right now (a scrape from inside a getter) is left out, never a panic.
    match first.as_ref().map(|p| p.try_borrow()) {
        Some(Ok(p)) => out.extend(crate::core::exposition::ops::collect(&p.ops, &p.dlq, now)),
        Some(Err(_)) => {}
        None => out.extend(crate::core::exposition::ops::collect(
            &OpsState::new(0),
            &DlqSet::new(),
            now,
        )),
    };
}
