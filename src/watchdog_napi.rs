//! Bindings for watchdogs (`core::watchdog`): the class `Watchdogs`.
//!
//! One JS registry (`lib/watchdogs.ts`, one per module copy) owns one native
//! `Watchdogs`; when the JS object is collected, `Drop` frees the registry
//! (the thread's list holds only weak references, for `resetAll()` and the
//! scrape).
//!
//! Hot path: tracked calls are appended by the JS side to a `Float64Array`
//! ring of `(id, latencyMs, ok)` that `drain` applies in one call (when
//! full, before reads, and on the JS side's one shared unref'd tick), so
//! `trackAiCall` around a call costs typed-array writes, not a crossing.
//! Each method reads its arguments (option objects included) fully before it
//! borrows the registry, so a getter that calls back in never meets a held
//! borrow.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;

use crate::core::error::CoreResult;
use crate::core::watchdog::{Kind, Registry, Thresholds, Transition};
use crate::napi_util::{borrow_mut, throw, Opts};

thread_local! {
    /// Every live registry of this thread, weakly (pruned when one is created).
    static REGS: RefCell<Vec<Weak<RefCell<Registry>>>> = const { RefCell::new(Vec::new()) };
}

/// A watchdog registry (see `core::watchdog::Registry`).
///
/// ```ts
/// const w = new native.Watchdogs();
/// const id = w.register('gauge', 'queue:emails', { warn: 100, critical: 1000 }, Date.now());
/// const change = w.set(id, 1500, Date.now()); // { name: 'queue:emails', from: 'ok', to: 'critical', … }
/// ```
#[napi]
pub struct Watchdogs {
    inner: Rc<RefCell<Registry>>,
}

impl Watchdogs {
    fn with<T>(&self, env: &Env, f: impl FnOnce(&mut Registry) -> CoreResult<T>) -> Result<T> {
        borrow_mut(&self.inner, "the watchdog registry")
            .and_then(|mut r| f(&mut r))
            .map_err(|e| throw(env, e))
    }
}

fn thresholds(opts: Option<Unknown>) -> CoreResult<(Thresholds, f64)> {
    let o = Opts::from_unknown(opts, "options")?;
    let t = Thresholds {
        warn: o.number("warn", "a finite number >= 0")?,
        critical: o.number("critical", "a finite number >= 0")?,
        hold_ms: o.number("holdMs", "a number of ms")?.unwrap_or(0.0),
    };
    Ok((
        t,
        o.number("quantile", "0.5, 0.9, 0.95, 0.99 or 0.999")?
            .unwrap_or(0.99),
    ))
}

#[napi(object)]
/// A watchdog id from `track`.
pub struct WdTracked {
    /// The watchdog's id (an index in the ring and in `set`/`record`/`count`).
    pub id: u32,
    /// True when the registry was full and `id` is the shared overflow watchdog.
    pub overflowed: bool,
}

#[napi(object)]
/// A state change of one watchdog.
pub struct WdTransition {
    /// The watchdog's id.
    pub id: u32,
    /// The watchdog's name.
    pub name: String,
    /// The state before: `ok`, `warn` or `critical`.
    pub from: String,
    /// The state after.
    pub to: String,
    /// The value that caused it.
    pub value: f64,
    /// When (ms since the epoch, the caller's clock).
    pub at: f64,
}

fn tr(r: &Registry, t: &Transition) -> WdTransition {
    WdTransition {
        id: t.id as u32,
        name: r.get(t.id).map(|d| d.name.clone()).unwrap_or_default(),
        from: t.from.as_str().into(),
        to: t.to.as_str().into(),
        value: t.value,
        at: t.at,
    }
}

#[napi(object)]
/// Latency figures of a tracker, in ms.
pub struct WdLatency {
    /// Calls in the window.
    pub count: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

#[napi(object)]
/// One watchdog as it stands.
pub struct WdView {
    /// Its name.
    pub name: String,
    /// `gauge`, `latency` or `counter`.
    pub kind: String,
    /// `ok`, `warn` or `critical`.
    pub state: String,
    /// Since when it is in that state (ms since the epoch).
    pub since: f64,
    /// The watched value (gauge value, latency quantile in ms, rate per minute).
    pub value: f64,
    /// Warn threshold.
    pub warn: Option<f64>,
    /// Critical threshold.
    pub critical: Option<f64>,
    /// Hold time before a state change (ms).
    pub hold_ms: f64,
    /// Calls in the last minute (trackers and counters).
    pub calls_per_minute: Option<f64>,
    /// Errors in the last minute (trackers and counters).
    pub errors_per_minute: Option<f64>,
    /// Calls since start (trackers and counters).
    pub total_calls: Option<f64>,
    /// Errors since start (trackers and counters).
    pub total_errors: Option<f64>,
    /// Last minute (latency trackers).
    pub latency: Option<WdLatency>,
    /// Since start (latency trackers).
    pub all_time: Option<WdLatency>,
}

fn lat(p: &crate::core::exphist::Percentiles) -> WdLatency {
    WdLatency {
        count: p.count as f64,
        p50: p.p50_us as f64 / 1000.0,
        p95: p.p95_us as f64 / 1000.0,
        p99: p.p99_us as f64 / 1000.0,
        max: p.max_us as f64 / 1000.0,
        mean: p.mean_us / 1000.0,
    }
}

#[napi]
impl Watchdogs {
    /// An empty registry, owned by the JS object.
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        let inner = Rc::new(RefCell::new(Registry::new()));
        REGS.with(|cell| {
            // Not borrowed by anyone else while JS runs (`reset_all`/`families` never call JS).
            if let Ok(mut regs) = cell.try_borrow_mut() {
                regs.retain(|w| w.strong_count() > 0);
                regs.push(Rc::downgrade(&inner));
            }
        });
        Watchdogs { inner }
    }

    /// Registers (or re-thresholds) a watchdog: `kind` is `gauge`, `latency`
    /// or `counter`; `opts` has `warn`, `critical`, `holdMs`, `quantile`.
    #[napi]
    pub fn register(
        &self,
        env: Env,
        kind: String,
        name: String,
        opts: Option<Unknown>,
        now: f64,
    ) -> Result<u32> {
        let (t, q) = thresholds(opts).map_err(|e| throw(&env, e))?;
        self.with(&env, |r| {
            r.register(&kind, &name, t, q, now).map(|i| i as u32)
        })
    }

    /// Registers a watchdog for a name the package derives from user data
    /// (AI call names, topics). Once the registry is full a new name gets the
    /// shared watchdog `overflow` instead and the fallback is counted
    /// (`overflowed`), so a wrapped call never fails because of the cap.
    #[napi]
    pub fn track(
        &self,
        env: Env,
        kind: String,
        name: String,
        overflow: String,
        opts: Option<Unknown>,
        now: f64,
    ) -> Result<WdTracked> {
        let (t, q) = thresholds(opts).map_err(|e| throw(&env, e))?;
        self.with(&env, |r| {
            r.track(&kind, &name, &overflow, t, q, now)
                .map(|(id, overflowed)| WdTracked {
                    id: id as u32,
                    overflowed,
                })
        })
    }

    /// How many `track` calls fell back to an overflow watchdog.
    #[napi]
    pub fn overflowed(&self, env: Env) -> Result<f64> {
        self.with(&env, |r| Ok(r.overflowed() as f64))
    }

    /// Sets a gauge; returns the state change it caused, if any.
    #[napi]
    pub fn set(&self, env: Env, id: u32, value: f64, now: f64) -> Result<Option<WdTransition>> {
        self.with(&env, |r| {
            Ok(r.set(id as usize, value, now)?.map(|t| tr(r, &t)))
        })
    }

    /// Records one call directly (the ring's slow path; throws on bad input).
    #[napi]
    pub fn record(&self, env: Env, id: u32, latency_ms: f64, ok: bool, now: f64) -> Result<()> {
        self.with(&env, |r| r.record(id as usize, latency_ms, ok, now))
    }

    /// Counts `n` events on a counter (a whole number >= 0).
    #[napi]
    pub fn count(&self, env: Env, id: u32, n: f64, now: f64) -> Result<()> {
        self.with(&env, |r| r.count(id as usize, n, now))
    }

    /// Applies the ring `[count, (id, latencyMs, ok)…]` (the JS side resets
    /// the count), then steps every watchdog; returns the state changes.
    #[napi]
    pub fn drain(&self, env: Env, ring: Float64Array, now: f64) -> Result<Vec<WdTransition>> {
        let buf: &[f64] = &ring;
        self.with(&env, |r| {
            let n = (buf.first().copied().unwrap_or(0.0).max(0.0) as usize)
                .min(buf.len().saturating_sub(1) / 3);
            for k in 0..n {
                let o = 1 + 3 * k;
                // Entries were checked by the JS side; a bad one is skipped, never fatal.
                let _ = r.record(buf[o] as usize, buf[o + 1], buf[o + 2] != 0.0, now);
            }
            let ts = r.step_all(now);
            Ok(ts.iter().map(|t| tr(r, t)).collect())
        })
    }

    /// Every watchdog with its state and figures (steps them first).
    #[napi]
    pub fn report(&self, env: Env, now: f64) -> Result<Vec<WdView>> {
        self.with(&env, |r| {
            r.step_all(now);
            let n = r.len();
            let mut out = Vec::with_capacity(n);
            for id in 0..n {
                let stats = r.stats(id, now);
                let all = r.all_time(id, now);
                let d = r.get(id).expect("id below len");
                let (kind, tracked) = match d.kind {
                    Kind::Gauge { .. } => ("gauge", false),
                    Kind::Latency { .. } => ("latency", true),
                    Kind::Counter { .. } => ("counter", true),
                };
                out.push(WdView {
                    name: d.name.clone(),
                    kind: kind.into(),
                    state: d.state.level.as_str().into(),
                    since: d.state.since,
                    value: d.last_value,
                    warn: d.thresholds.warn,
                    critical: d.thresholds.critical,
                    hold_ms: d.thresholds.hold_ms,
                    calls_per_minute: tracked.then_some(stats.calls_per_minute),
                    errors_per_minute: tracked.then_some(stats.errors_per_minute),
                    total_calls: tracked.then_some(stats.total_calls as f64),
                    total_errors: tracked.then_some(stats.total_errors as f64),
                    latency: stats.latency.as_ref().map(lat),
                    all_time: all.as_ref().map(lat),
                });
            }
            Ok(out)
        })
    }
}

/// Empties every live watchdog registry of this thread in place (the JS
/// objects stay valid). For `resetAll()` in tests.
pub(crate) fn reset_all() -> CoreResult<()> {
    let regs: Vec<Rc<RefCell<Registry>>> = REGS.with(|cell| {
        borrow_mut(cell, "the watchdog table").map(|r| r.iter().filter_map(Weak::upgrade).collect())
    })?;
    for reg in regs {
        *borrow_mut(&reg, "the watchdog registry")? = Registry::new();
    }
    Ok(())
}

/// The watchdog families of every live registry, for a scrape.
pub(crate) fn families(now: f64, out: &mut Vec<crate::core::exposition::model::Family>) {
    let regs: Vec<Rc<RefCell<Registry>>> = REGS.with(|cell| {
        cell.try_borrow()
            .map(|r| r.iter().filter_map(Weak::upgrade).collect())
            .unwrap_or_default()
    });
    // A registry borrowed right now (a scrape from inside a getter) is left out, never a panic.
    let mut held: Vec<_> = regs
        .iter()
        .filter_map(|r| r.try_borrow_mut().ok())
        .collect();
    let mut refs: Vec<&mut Registry> = held.iter_mut().map(|g| &mut **g).collect();
    out.extend(crate::core::exposition::watchdogs::collect(&mut refs, now));
}
