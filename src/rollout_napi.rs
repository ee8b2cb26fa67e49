//! Bindings for traffic shaping (`core::traffic_shaping`).
//!
//! Hot path:
//! * a decision is one call of the rollout's `decideFn` with the stickiness
//!   key (the JS side skips even that for 0 % and 100 % rollouts without
//!   allow/deny lists, from a mirror of each rollout's percentage that every
//!   call here keeps current through its return values);
//! * outcomes go into a JS `Float64Array` ring of `(id, cohort·2 + ok,
//!   latencyMs)` that `RolloutTable::drain` applies in one call, then
//!   evaluates each rollout it touched once: a rollback happens within that
//!   evaluation; a rollout judged as it records takes `recordFn` instead.
//!
//! Both per-request functions are raw napi functions, not class methods: a
//! method's crossing costs several times theirs (figures on `recordFn`).
//!
//! One JS `TrafficShaping` (one per copy of the JS module: jest/vitest load
//! modules once per test file) owns one native `RolloutTable`; when the JS
//! object is collected, `Drop` frees the set. The thread's list holds only
//! weak references, for `resetAll()` and the scrape (as `Watchdogs`). Each
//! method reads its arguments (config objects included) fully before it
//! borrows the set, so a getter that calls back in never meets a held borrow.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::{Rc, Weak};

use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;

use crate::codes_napi::RolloutOutcomeFlag;

use crate::core::error::{CoreError, CoreResult};
use crate::core::traffic_shaping::{
    self, percent_to_bp, BurnWindow, Config, Event, Figures, HashMode, RollbackTarget, RolloutSet,
    Slo, Step, Verdict, BUCKETS,
};
use crate::napi_util::{borrow_mut, throw, Opts};

thread_local! {
    /// Every live rollout set of this thread, weakly (pruned when one is created).
    static SETS: RefCell<Vec<Weak<RefCell<RolloutSet>>>> = const { RefCell::new(Vec::new()) };
}

const OK: u32 = RolloutOutcomeFlag::Ok as u32;
const NEW: u32 = RolloutOutcomeFlag::NewCohort as u32;

/// A set of rollouts (see `core::traffic_shaping::RolloutSet`), owned by
/// its JS object.
///
/// ```ts
/// const t = new native.RolloutTable();
/// const { id } = t.start('search-v2', { percentage: 25 }, Date.now());
/// const decide = t.decideFn(id);
/// decide('user-42') === t.decide(id, 'user-42'); // true
/// ```
#[napi]
pub struct RolloutTable {
    inner: Rc<RefCell<RolloutSet>>,
}

impl RolloutTable {
    fn with<T>(&self, env: &Env, f: impl FnOnce(&mut RolloutSet) -> CoreResult<T>) -> Result<T> {
        borrow_mut(&self.inner, "the rollout table")
            .and_then(|mut s| f(&mut s))
            .map_err(|e| throw(env, e))
    }
}

/// Reads a rollout config object (field names as the JS options).
fn read_config(o: &Opts) -> CoreResult<Config> {
    let mut c = Config::default();
    if let Some(p) = o.number("percentage", "a number from 0 to 100")? {
        c.bp = percent_to_bp("percentage", p)?;
    }
    for (key, set) in [("allowList", &mut c.allow), ("denyList", &mut c.deny)] {
        if let Some(list) = o.string_array(key, "an array of strings")? {
            if list.len() > traffic_shaping::MAX_LIST {
                return Err(CoreError::range(
                    key,
                    &format!("at most {} entries", traffic_shaping::MAX_LIST),
                    list.len(),
                ));
            }
            *set = list.into_iter().collect();
        }
    }
    c.hash = match o.string("hash", "'murmur3' or 'legacy'")?.as_deref() {
        None | Some("murmur3") | Some("murmur") => HashMode::Murmur,
        Some("legacy") => HashMode::Legacy,
        Some(other) => {
            return Err(CoreError::range(
                "hash",
                "'murmur3' or 'legacy'",
                format!("\"{other}\""),
            ))
        }
    };
    if let Some(steps) = o.object_array("steps")? {
        c.steps = steps
            .iter()
            .enumerate()
            .map(|(i, s)| -> CoreResult<Step> {
                let p = s
                    .number("percentage", "a number from 0 to 100")?
                    .ok_or_else(|| {
                        CoreError::type_error(
                            &format!("steps[{i}].percentage"),
                            "a number from 0 to 100",
                            "undefined",
                        )
                    })?;
                Ok(Step {
                    bp: percent_to_bp(&format!("steps[{i}].percentage"), p)?,
                    min_duration_ms: s.number("minDurationMs", "a number of ms")?.unwrap_or(0.0),
                    min_requests: match s.number("minRequests", "an integer >= 0")? {
                        None => 0,
                        Some(v) if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= 1e12 => {
                            v as u64
                        }
                        Some(v) => {
                            return Err(CoreError::range(
                                &format!("steps[{i}].minRequests"),
                                "an integer >= 0",
                                v,
                            ))
                        }
                    },
                })
            })
            .collect::<CoreResult<Vec<_>>>()?;
    }
    if o.has("slo")? {
        let so = o.nested("slo")?;
        let q = so
            .number("latencyQuantile", "a number > 0 and < 1")?
            .unwrap_or(0.99);
        let mut slo = Slo {
            error_rate: so.number("errorRate", "a number from 0 to 1")?,
            latency: so.number("p99Latency", "a number of ms")?.map(|ms| (q, ms)),
            availability: so.number("availability", "a number > 0 and < 1")?,
            burn_windows: vec![],
            max_error_rate_increase: so.number("maxErrorRateIncrease", "a number from 0 to 1")?,
            max_latency_ratio: so.number("maxLatencyRatio", "a number > 1")?,
        };
        if slo.latency.is_none() && so.has("latencyQuantile")? {
            return Err(CoreError::type_error(
                "slo.p99Latency",
                "a number of ms (the ceiling for slo.latencyQuantile)",
                "undefined",
            ));
        }
        match so.object_array("burnRateWindows")? {
            Some(ws) => {
                slo.burn_windows = ws
                    .iter()
                    .enumerate()
                    .map(|(i, w)| -> CoreResult<BurnWindow> {
                        let req = |k: &str| -> CoreResult<f64> {
                            w.number(k, "a number")?.ok_or_else(|| {
                                CoreError::type_error(
                                    &format!("slo.burnRateWindows[{i}].{k}"),
                                    "a number",
                                    "undefined",
                                )
                            })
                        };
                        Ok(BurnWindow {
                            long_ms: req("longMs")?,
                            short_ms: req("shortMs")?,
                            factor: req("factor")?,
                        })
                    })
                    .collect::<CoreResult<Vec<_>>>()?;
            }
            // The SRE workbook's paging pair for an availability target.
            None if slo.availability.is_some() => {
                slo.burn_windows = vec![
                    BurnWindow {
                        long_ms: 3_600_000.0,
                        short_ms: 300_000.0,
                        factor: 14.4,
                    },
                    BurnWindow {
                        long_ms: 21_600_000.0,
                        short_ms: 1_800_000.0,
                        factor: 6.0,
                    },
                ];
            }
            None => {}
        }
        if !slo.burn_windows.is_empty() && slo.availability.is_none() {
            return Err(CoreError::type_error(
                "slo.availability",
                "a number > 0 and < 1 (burn rates measure its error budget)",
                "undefined",
            ));
        }
        c.slo = Some(slo);
    }
    c.auto_rollback = o.boolean("autoRollback")?.unwrap_or(c.auto_rollback);
    c.auto_advance = o.boolean("autoAdvance")?.unwrap_or(true);
    c.rollback_to = match o
        .string("rollbackTo", "'zero' or 'last-good-step'")?
        .as_deref()
    {
        None | Some("zero") => RollbackTarget::Zero,
        Some("last-good-step") => RollbackTarget::LastGoodStep,
        Some(other) => {
            return Err(CoreError::range(
                "rollbackTo",
                "'zero' or 'last-good-step'",
                format!("\"{other}\""),
            ))
        }
    };
    if let Some(w) = o.number("windowMs", "a number of ms")? {
        c.window_ms = w;
    }
    if let Some(m) = o.number("minSamples", "an integer from 1")? {
        c.min_samples =
            crate::core::error::check::int_in("minSamples", m, 1, 1_000_000_000)? as u64;
    }
    c.validate()?;
    Ok(c)
}

/// The figures an SLO verdict was reached on (new cohort against stable).
#[napi(object)]
pub struct TsFigures {
    pub requests: f64,
    pub error_rate: f64,
    pub latency_ms: Option<f64>,
    pub stable_requests: f64,
    pub stable_error_rate: f64,
    pub stable_latency_ms: Option<f64>,
    /// `[long, short]` burn rate per configured window.
    pub burn_rates: Vec<Vec<f64>>,
}

fn figures(f: &Figures) -> TsFigures {
    TsFigures {
        requests: f.requests as f64,
        error_rate: f.error_rate,
        latency_ms: f.latency_ms,
        stable_requests: f.stable_requests as f64,
        stable_error_rate: f.stable_error_rate,
        stable_latency_ms: f.stable_latency_ms,
        burn_rates: f.burn_rates.iter().map(|&(l, s)| vec![l, s]).collect(),
    }
}

/// A change of one rollout (start, update, advance, breach, rollback, …).
#[napi(object)]
pub struct TsEvent {
    pub id: u32,
    pub name: String,
    pub kind: String,
    pub at: f64,
    pub from_percentage: f64,
    pub to_percentage: f64,
    pub reason: String,
    pub figures: Option<TsFigures>,
    /// After the event: 1 when every key is in the new cohort, 0 when none
    /// is, -1 when it depends on the key (the JS side then asks `decideFn`).
    pub uniform: i32,
}

fn uniform(set: &RolloutSet, id: usize) -> i32 {
    match set.get(id).and_then(|r| r.config.uniform_decision()) {
        Some(true) => 1,
        Some(false) => 0,
        None => -1,
    }
}

fn event(set: &RolloutSet, e: &Event) -> TsEvent {
    TsEvent {
        id: e.rollout as u32,
        name: set
            .get(e.rollout)
            .map(|r| r.name.clone())
            .unwrap_or_default(),
        kind: e.entry.kind.to_string(),
        at: e.entry.at,
        from_percentage: e.entry.from_bp as f64 / 100.0,
        to_percentage: e.entry.to_bp as f64 / 100.0,
        reason: e.entry.reason.clone(),
        figures: e.entry.figures.as_ref().map(figures),
        uniform: uniform(set, e.rollout),
    }
}

/// What `start`/`reconfigure` return: the rollout's id, the JS mirror and the event.
#[napi(object)]
pub struct TsStarted {
    pub id: u32,
    /// Basis points (0..=10000) and whether allow/deny lists exist: the JS mirror.
    pub bp: u32,
    pub has_lists: bool,
    /// New-cohort outcomes go through `record`/`recordFn` (judged as recorded), not the ring.
    pub judged_on_record: bool,
    pub event: TsEvent,
}

fn mirror(set: &RolloutSet, id: usize) -> (u32, bool, bool) {
    set.get(id).map_or((BUCKETS, false, false), |r| {
        (
            r.config.bp,
            !r.config.allow.is_empty() || !r.config.deny.is_empty(),
            r.judged_on_record(),
        )
    })
}

/// One cohort's figures over one window (`10s`, `1m`, or the analysis window).
#[napi(object)]
pub struct TsCohortWindow {
    pub window: String,
    pub requests: f64,
    pub errors: f64,
    pub error_rate: f64,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}

/// One cohort (new or stable): totals since the start and per window.
#[napi(object)]
pub struct TsCohort {
    pub total_requests: f64,
    pub total_errors: f64,
    pub windows: Vec<TsCohortWindow>,
}

/// One entry of a rollout's history.
#[napi(object)]
pub struct TsHistory {
    pub at: f64,
    pub kind: String,
    pub from_percentage: f64,
    pub to_percentage: f64,
    pub reason: String,
    pub figures: Option<TsFigures>,
}

/// Everything about one rollout (`status`).
#[napi(object)]
pub struct TsStatus {
    pub name: String,
    pub percentage: f64,
    pub phase: String,
    pub hash: String,
    pub step: Option<u32>,
    pub steps: Vec<f64>,
    pub verdict: String,
    pub verdict_reason: String,
    pub figures: TsFigures,
    pub window_ms: f64,
    pub min_samples: f64,
    pub new_cohort: TsCohort,
    pub stable_cohort: TsCohort,
    pub history: Vec<TsHistory>,
    pub allow_list_size: u32,
    pub deny_list_size: u32,
    pub started_at: f64,
}

#[napi]
impl RolloutTable {
    /// An empty set, owned by the JS object.
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        let inner = Rc::new(RefCell::new(RolloutSet::new()));
        SETS.with(|cell| {
            // Not borrowed by anyone else while JS runs (`reset_all`/`families` never call JS).
            if let Ok(mut sets) = cell.try_borrow_mut() {
                sets.retain(|w| w.strong_count() > 0);
                sets.push(Rc::downgrade(&inner));
            }
        });
        RolloutTable { inner }
    }

    /// Starts (or restarts) a rollout from a config object.
    #[napi]
    pub fn start(
        &self,
        env: Env,
        name: String,
        config: Option<Unknown>,
        now: f64,
    ) -> Result<TsStarted> {
        let cfg = Opts::from_unknown(config, "options")
            .and_then(|o| read_config(&o))
            .map_err(|e| throw(&env, e))?;
        self.with(&env, |s| {
            let (id, ev) = s.start(&name, cfg, now)?;
            let (bp, has_lists, judged_on_record) = mirror(s, id);
            Ok(TsStarted {
                id: id as u32,
                bp,
                has_lists,
                judged_on_record,
                event: event(s, &ev),
            })
        })
    }

    /// Replaces a rollout's config (a full config object; the JS side merges partials).
    #[napi]
    pub fn reconfigure(
        &self,
        env: Env,
        name: String,
        config: Unknown,
        now: f64,
    ) -> Result<TsStarted> {
        let cfg = Opts::from_unknown(Some(config), "options")
            .and_then(|o| read_config(&o))
            .map_err(|e| throw(&env, e))?;
        self.with(&env, |s| {
            let ev = s.reconfigure(&name, cfg, now)?;
            let (bp, has_lists, judged_on_record) = mirror(s, ev.rollout);
            Ok(TsStarted {
                id: ev.rollout as u32,
                bp,
                has_lists,
                judged_on_record,
                event: event(s, &ev),
            })
        })
    }

    /// Sets the percentage by hand; returns the event (its `id` and `toPercentage` update the mirror).
    #[napi]
    pub fn set_percentage(
        &self,
        env: Env,
        name: String,
        percentage: f64,
        reason: String,
        now: f64,
    ) -> Result<TsEvent> {
        self.with(&env, |s| {
            let bp = percent_to_bp("percentage", percentage)?;
            let ev = s.set_percentage(&name, bp, &reason, now)?;
            Ok(event(s, &ev))
        })
    }

    /// `pause`, `resume`, `promote`, `abort`, `rollback`.
    #[napi]
    pub fn action(
        &self,
        env: Env,
        name: String,
        action: String,
        reason: String,
        now: f64,
    ) -> Result<TsEvent> {
        self.with(&env, |s| {
            let ev = s.action(&name, &action, &reason, now)?;
            Ok(event(s, &ev))
        })
    }

    /// The id of rollout `name`, or null.
    #[napi]
    pub fn id(&self, env: Env, name: String) -> Result<Option<u32>> {
        self.with(&env, |s| Ok(s.id_of(&name).map(|i| i as u32)))
    }

    /// Is `key` in the new cohort of rollout `id`? True for an unknown id.
    #[napi]
    pub fn decide(&self, env: Env, id: u32, key: String) -> Result<bool> {
        self.with(&env, |s| {
            Ok(s.get(id as usize).is_none_or(|r| r.decide(&key)))
        })
    }

    /// The bucket (0..10000) of `key` in rollout `id`, for the JS side's
    /// per-key cache: a bucket depends only on the rollout's name, the key and
    /// the hash mode, never on the percentage, so it stays valid while the
    /// percentage moves. Legacy buckets (0..99) are scaled by 100. -1 for an
    /// unknown id (and, rather than a panic, if re-entered).
    #[napi]
    pub fn bucket(&self, id: u32, key: String) -> i32 {
        match self.inner.try_borrow() {
            Ok(s) => s.get(id as usize).map_or(-1, |r| r.bucket(&key) as i32),
            Err(_) => -1,
        }
    }

    /// A function of one argument, `(key) => table.decide(id, key)` with the
    /// same answers, for the JS side's decision on a key it has not cached.
    /// Why a function per rollout, not a method: each argument of a bound
    /// call costs a type check and a conversion, and a class method also
    /// unwraps `this`; this one carries a weak reference to the set and `id`
    /// in its own data, reads the key in one engine call and allocates
    /// nothing. Legacy hashing and long keys take `decide`'s path. The data
    /// is freed with the function; a function outliving its table answers
    /// true (as for an unknown rollout).
    ///
    /// ```js
    /// const decide = table.decideFn(id);
    /// decide('user-42') === table.decide(id, 'user-42'); // true
    /// ```
    #[napi(ts_return_type = "(key: string) => boolean")]
    pub fn decide_fn<'e>(&self, env: &'e Env, id: u32) -> Result<Unknown<'e>> {
        let data = TableRef {
            set: Rc::downgrade(&self.inner),
            id,
        };
        raw_fn(env, "decide", data, decide_cb)
    }

    /// `(id, flags, latencyMs, now) => record(id, flags, latencyMs, now)`:
    /// the same answers (null in the usual case, else the events) and the
    /// same errors, for `recordRequest` on a rollout judged as it records.
    /// Why a function, not the method: that path crosses once per request,
    /// and a class method's crossing (unwrapping `this`, checking each
    /// argument) measured about 770 ns against 440 ns for a free function
    /// and less for this one, which reads four numbers from its arguments
    /// and its table from its own data. A function outliving its table
    /// records nothing (null).
    ///
    /// ```js
    /// const record = table.recordFn();
    /// record(id, RolloutOutcomeFlag.NewCohort | RolloutOutcomeFlag.Ok, 12, Date.now()); // null
    /// ```
    #[napi(
        ts_return_type = "(id: number, flags: number, latencyMs: number, now: number) => Array<TsEvent> | null"
    )]
    pub fn record_fn<'e>(&self, env: &'e Env) -> Result<Unknown<'e>> {
        let data = TableRef {
            set: Rc::downgrade(&self.inner),
            id: 0,
        };
        raw_fn(env, "record", data, record_cb)
    }

    /// Applies the ring `[count, (id, cohort·2 + ok, latencyMs)…]`, evaluates
    /// every rollout it touched (and every one `record` left pending), and
    /// returns what they decided. The JS side resets the count after the
    /// call (the ring is only read here).
    #[napi]
    pub fn drain(&self, env: Env, ring: Float64Array, now: f64) -> Result<Vec<TsEvent>> {
        let buf: &[f64] = &ring;
        self.with(&env, |s| {
            let n = (buf.first().copied().unwrap_or(0.0).max(0.0) as usize)
                .min((buf.len().saturating_sub(1)) / 3);
            let mut touched = BTreeSet::new();
            for k in 0..n {
                let o = 1 + 3 * k;
                let (id, flags, latency) = (buf[o], buf[o + 1], buf[o + 2]);
                if !(id >= 0.0 && id.fract() == 0.0) {
                    continue;
                }
                let id = id as usize;
                let flags = flags as u32;
                if s.record(id, flags & NEW != 0, flags & OK != 0, latency, now) {
                    touched.insert(id);
                }
            }
            let mut out = Vec::new();
            for id in touched {
                for e in s.evaluate(id, now) {
                    out.push(event(s, &e));
                }
            }
            // And those whose outcomes went through `record` without an analysis.
            for e in s.evaluate_pending(now) {
                out.push(event(s, &e));
            }
            Ok(out)
        })
    }

    /// Records one outcome (`flags`: cohort·2 + ok, as in the ring) and judges
    /// it at once when it could start a breach; returns what that decided, or
    /// null when nothing happened (the usual case: no array is made).
    #[napi]
    pub fn record(
        &self,
        env: Env,
        id: u32,
        flags: u32,
        latency_ms: f64,
        now: f64,
    ) -> Result<Option<Vec<TsEvent>>> {
        self.with(&env, |s| {
            let events = s
                .record_checked(
                    id as usize,
                    flags & NEW != 0,
                    flags & OK != 0,
                    latency_ms,
                    now,
                )
                .unwrap_or_default();
            Ok(if events.is_empty() {
                None
            } else {
                Some(events.iter().map(|e| event(s, e)).collect())
            })
        })
    }

    /// Evaluates one rollout now (e.g. before a status read).
    #[napi]
    pub fn evaluate(&self, env: Env, id: u32, now: f64) -> Result<Vec<TsEvent>> {
        self.with(&env, |s| {
            let evs = s.evaluate(id as usize, now);
            Ok(evs.iter().map(|e| event(s, e)).collect())
        })
    }

    /// The full status of rollout `id` (evaluates it first, so it is current).
    #[napi]
    pub fn status(&self, env: Env, id: u32, now: f64) -> Result<TsStatus> {
        self.with(&env, |s| status(s, id as usize, now))
    }

    /// Names in creation order.
    #[napi]
    pub fn list(&self, env: Env) -> Result<Vec<String>> {
        self.with(&env, |s| {
            let ids: Vec<usize> = s.ids().collect();
            Ok(ids
                .into_iter()
                .filter_map(|i| s.get(i).map(|r| r.name.clone()))
                .collect())
        })
    }

    /// Removes rollout `name`; false when there was none.
    #[napi]
    pub fn remove(&self, env: Env, name: String) -> Result<bool> {
        self.with(&env, |s| Ok(s.remove(&name)))
    }

    /// The cluster-wide SLO check of the Redis backend: `requests` and `errors`
    /// are rollout `id`'s new cohort summed over every instance's analysis
    /// window. Returns the error-rate limit they break, or null: the rule
    /// (`Config::cluster_breach`) is the one each instance applies to itself.
    #[napi]
    pub fn cluster_breach(
        &self,
        env: Env,
        id: u32,
        requests: f64,
        errors: f64,
    ) -> Result<Option<f64>> {
        let count = |v: f64| {
            if v.is_finite() && v > 0.0 {
                v as u64
            } else {
                0
            }
        };
        self.with(&env, |s| {
            Ok(s.get(id as usize)
                .and_then(|r| r.config.cluster_breach(count(requests), count(errors))))
        })
    }
}

/// The full status of rollout `id` of `s`.
fn status(s: &mut RolloutSet, id: usize, now: f64) -> CoreResult<TsStatus> {
    s.evaluate(id, now);
    let cohort = |s: &mut RolloutSet, new: bool, window_ms: f64| {
        let (tr, te) = s.cohort_total(id, new).unwrap_or((0, 0));
        let windows = [("10s", 10_000.0), ("1m", 60_000.0), ("window", window_ms)]
            .into_iter()
            .map(|(name, ms)| {
                let (r, e, p50, p99) = s
                    .cohort_window(id, new, ms, now)
                    .unwrap_or((0, 0, None, None));
                TsCohortWindow {
                    window: name.to_string(),
                    requests: r as f64,
                    errors: e as f64,
                    error_rate: if r == 0 { 0.0 } else { e as f64 / r as f64 },
                    p50,
                    p99,
                }
            })
            .collect();
        TsCohort {
            total_requests: tr as f64,
            total_errors: te as f64,
            windows,
        }
    };
    let window_ms = s
        .get(id)
        .ok_or_else(|| CoreError::not_found("rollout id", id))?
        .config
        .window_ms;
    let new_cohort = cohort(s, true, window_ms);
    let stable_cohort = cohort(s, false, window_ms);
    let r = s.get(id).expect("checked above");
    let (verdict, verdict_reason) = match &r.last_verdict {
        Verdict::Healthy => ("healthy", String::new()),
        Verdict::Inconclusive(why) => ("inconclusive", why.clone()),
        Verdict::Breach(why) => ("breach", why.clone()),
    };
    Ok(TsStatus {
        name: r.name.clone(),
        percentage: r.percentage(),
        phase: r.phase.as_str().to_string(),
        hash: match r.config.hash {
            HashMode::Murmur => "murmur3",
            HashMode::Legacy => "legacy",
        }
        .to_string(),
        step: r.step.map(|s| s as u32),
        steps: r.config.steps.iter().map(|s| s.bp as f64 / 100.0).collect(),
        verdict: verdict.to_string(),
        verdict_reason,
        figures: figures(&r.last_figures),
        window_ms,
        min_samples: r.config.min_samples as f64,
        new_cohort,
        stable_cohort,
        history: r
            .history
            .iter()
            .map(|e| TsHistory {
                at: e.at,
                kind: e.kind.to_string(),
                from_percentage: e.from_bp as f64 / 100.0,
                to_percentage: e.to_bp as f64 / 100.0,
                reason: e.reason.clone(),
                figures: e.figures.as_ref().map(figures),
            })
            .collect(),
        allow_list_size: r.config.allow.len() as u32,
        deny_list_size: r.config.deny.len() as u32,
        started_at: r.started_at,
    })
}

/// What a `decideFn`/`recordFn` function carries: its set (weakly: the
/// function never keeps a collected table alive) and, for `decideFn`, its rollout.
struct TableRef {
    set: Weak<RefCell<RolloutSet>>,
    id: u32,
}

/// Frees a raw function's `TableRef` when the function is collected.
unsafe extern "C" fn free_table_ref(
    _env: napi::sys::napi_env,
    data: *mut std::ffi::c_void,
    _hint: *mut std::ffi::c_void,
) {
    if !data.is_null() {
        // SAFETY: `data` is the `Box<TableRef>` `raw_fn` leaked for this function, freed once.
        drop(unsafe { Box::from_raw(data.cast::<TableRef>()) });
    }
}

/// A JS function calling `cb` with `data` (boxed; freed when the function
/// is collected, through a wrap on the function object).
fn raw_fn<'e>(
    env: &'e Env,
    name: &str,
    data: TableRef,
    cb: unsafe extern "C" fn(
        napi::sys::napi_env,
        napi::sys::napi_callback_info,
    ) -> napi::sys::napi_value,
) -> Result<Unknown<'e>> {
    let data = Box::into_raw(Box::new(data));
    let mut f = std::ptr::null_mut();
    // SAFETY: a plain function with a static callback; `data` stays valid
    // until the function's finalizer (`free_table_ref`) frees it.
    let status = unsafe {
        let mut s = napi::sys::napi_create_function(
            env.raw(),
            name.as_ptr().cast(),
            name.len() as isize,
            Some(cb),
            data.cast(),
            &mut f,
        );
        if s == napi::sys::Status::napi_ok {
            s = napi::sys::napi_wrap(
                env.raw(),
                f,
                data.cast(),
                Some(free_table_ref),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
        }
        s
    };
    if status != napi::sys::Status::napi_ok {
        // Not handed to a finalizer: ours to free (the function, if made, is
        // never handed out: we throw, so its callback never runs).
        // SAFETY: `data` came from `Box::into_raw` above and nothing else owns it.
        drop(unsafe { Box::from_raw(data) });
        return Err(Error::from_reason(format!(
            "RolloutTable: could not create the {name} function"
        )));
    }
    // SAFETY: `f` was just created in `env`.
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), f) })
}

/// Bytes of the stack buffer `decide_raw` joins `<name>:<key>` in.
const JOIN_BUF: usize = 256;

/// Rollout `id` of `set`'s decision for `key` (1 new cohort, 0 stable),
/// without building a Rust `String` (two engine calls and an allocation):
/// the rollout's name and `:` are copied into a stack buffer and Node writes
/// the key's UTF-8 bytes right after them in one call; the hash runs over
/// the buffer and `Rollout::decide_bucket` decides. A key that may not have
/// fit (Node truncates), a non-string, legacy hashing and a rollout with
/// allow/deny lists take the `String` path (`Rollout::decide`), so every key
/// gets the answer `decide` gives it. 1 for an unknown id, and (true too) if
/// the set is busy (re-entered), which only a callback inside the binding
/// could cause.
///
/// # Safety
/// `env` and `key` are the environment and a value of the current call.
unsafe fn decide_raw(
    env: napi::sys::napi_env,
    set: &RefCell<RolloutSet>,
    id: u32,
    key: napi::sys::napi_value,
) -> i32 {
    let fast = (|| {
        let s = set.try_borrow().ok()?;
        let r = s.get(id as usize)?;
        if r.config.hash != HashMode::Murmur
            || r.name.len() + 1 + 8 > JOIN_BUF
            || r.decide_bucket(0).is_none()
        {
            return Some(None);
        }
        let mut buf = [0u8; JOIN_BUF];
        let p = r.name.len();
        buf[..p].copy_from_slice(r.name.as_bytes());
        buf[p] = b':';
        let room = JOIN_BUF - p - 1;
        let mut written = 0usize;
        // SAFETY: `buf[p + 1..]` is `room` bytes long; Node writes at most
        // `room - 1` bytes and a NUL there, and reports what it wrote.
        let status = unsafe {
            napi::sys::napi_get_value_string_utf8(
                env,
                key,
                buf[p + 1..].as_mut_ptr().cast(),
                room,
                &mut written,
            )
        };
        // Written up to the last 4 bytes of room: the key may have been cut
        // (at a character boundary), so hash it from the whole string.
        if status != napi::sys::Status::napi_ok || written + 4 >= room {
            return Some(None);
        }
        let b = crate::core::traffic_shaping::bucket::murmur_bucket_joined(&buf[..p + 1 + written]);
        Some(r.decide_bucket(b))
    })();
    match fast {
        None => 1,
        Some(Some(d)) => d as i32,
        // SAFETY: as the caller promised; converted as a `String` argument is.
        Some(None) => match unsafe { String::from_napi_value(env, key) } {
            Ok(key) => set
                .try_borrow()
                .ok()
                .as_ref()
                .and_then(|s| s.get(id as usize))
                .is_none_or(|r| r.decide(&key)) as i32,
            Err(_) => 1,
        },
    }
}

/// The function `decideFn` returns: `(key: string) => boolean`.
unsafe extern "C" fn decide_cb(
    env: napi::sys::napi_env,
    info: napi::sys::napi_callback_info,
) -> napi::sys::napi_value {
    let mut argc = 1usize;
    let mut argv = [std::ptr::null_mut(); 1];
    let mut data = std::ptr::null_mut();
    let mut out = std::ptr::null_mut();
    // SAFETY: the arguments of this callback, buffers sized as declared;
    // `data` is the live `DecideData` of this function (freed only with it).
    unsafe {
        let ok = napi::sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            std::ptr::null_mut(),
            &mut data,
        ) == napi::sys::Status::napi_ok;
        let d = match (ok && argc >= 1 && !data.is_null())
            .then(|| &*data.cast::<TableRef>())
            .and_then(|d| Some((d.set.upgrade()?, d.id)))
        {
            Some((set, id)) => decide_raw(env, &set, id, argv[0]),
            None => 1,
        };
        napi::sys::napi_get_boolean(env, d != 0, &mut out);
    }
    out
}

/// The function `recordFn` returns: `(id, flags, latencyMs, now) => TsEvent[] | null`.
unsafe extern "C" fn record_cb(
    env: napi::sys::napi_env,
    info: napi::sys::napi_callback_info,
) -> napi::sys::napi_value {
    let mut argc = 4usize;
    let mut argv = [std::ptr::null_mut(); 4];
    let mut data = std::ptr::null_mut();
    let mut out = std::ptr::null_mut();
    // SAFETY: the arguments of this callback, buffers sized as declared;
    // `data` is the live `TableRef` of this function (freed only with it).
    unsafe {
        let napi_env = Env::from_raw(env);
        if napi::sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            std::ptr::null_mut(),
            &mut data,
        ) != napi::sys::Status::napi_ok
            || data.is_null()
        {
            napi::sys::napi_get_null(env, &mut out);
            return out;
        }
        // As the method's `u32`/`f64` parameters: numbers, or a TypeError naming the argument.
        let mut v = [0f64; 4];
        for (k, name) in ["id", "flags", "latencyMs", "now"].into_iter().enumerate() {
            if k >= argc
                || napi::sys::napi_get_value_double(env, argv[k], &mut v[k])
                    != napi::sys::Status::napi_ok
            {
                throw(
                    &napi_env,
                    CoreError::type_error(name, "a number", "not a number"),
                );
                return std::ptr::null_mut();
            }
        }
        let d = &*data.cast::<TableRef>();
        let Some(set) = d.set.upgrade() else {
            napi::sys::napi_get_null(env, &mut out);
            return out;
        };
        // u32 arguments convert as napi-rs converts them (wrapping).
        let (id, flags) = (v[0] as i64 as u32, v[1] as i64 as u32);
        let events = borrow_mut(&set, "the rollout table").map(|mut s| {
            let events = s
                .record_checked(id as usize, flags & NEW != 0, flags & OK != 0, v[2], v[3])
                .unwrap_or_default();
            (!events.is_empty()).then(|| events.iter().map(|e| event(&s, e)).collect::<Vec<_>>())
        });
        match events {
            Err(e) => {
                throw(&napi_env, e);
                std::ptr::null_mut()
            }
            Ok(None) => {
                napi::sys::napi_get_null(env, &mut out);
                out
            }
            Ok(Some(list)) => match Vec::<TsEvent>::to_napi_value(env, list) {
                Ok(v) => v,
                Err(e) => {
                    napi::JsError::from(e).throw_into(env);
                    std::ptr::null_mut()
                }
            },
        }
    }
}

/// Every live rollout set of this thread, strongly for the time of a reset or scrape.
fn live() -> CoreResult<Vec<Rc<RefCell<RolloutSet>>>> {
    SETS.with(|cell| {
        borrow_mut(cell, "the rollout table list")
            .map(|s| s.iter().filter_map(Weak::upgrade).collect())
    })
}

/// Empties every live rollout set of this thread in place (the JS objects
/// stay valid). For `resetAll()` in tests.
pub(crate) fn reset_all() -> CoreResult<()> {
    for set in live()? {
        *borrow_mut(&set, "the rollout table")? = RolloutSet::new();
    }
    Ok(())
}

/// The rollout families of every live set, for a scrape.
pub(crate) fn families(out: &mut Vec<crate::core::exposition::model::Family>) {
    let sets = live().unwrap_or_default();
    // A set borrowed right now (a scrape from inside a getter) is left out, never a panic.
    let held: Vec<_> = sets.iter().filter_map(|s| s.try_borrow().ok()).collect();
    let refs: Vec<&RolloutSet> = held.iter().map(|g| &**g).collect();
    out.extend(crate::core::exposition::rollouts::collect(&refs));
}

/// `minSamples` when a rollout config leaves it out (`core::traffic_shaping::DEFAULT_MIN_SAMPLES`).
#[napi]
pub const ROLLOUT_DEFAULT_MIN_SAMPLES: u32 =
    crate::core::traffic_shaping::DEFAULT_MIN_SAMPLES as u32;
