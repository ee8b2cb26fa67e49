//! Bindings for watchdogs (`core::watchdog`).
//!
//! Hot path: tracked calls are appended by the JS side to a `Float64Array`
//! ring of `(id, latencyMs, ok)` that `wd_drain` applies in one call (when
//! full, before reads, and on the JS side's one shared unref'd tick), so
//! `trackAiCall` around a call costs typed-array writes, not a crossing.
//! Registries are handles into a thread-local table, one per JS module copy.

use std::cell::RefCell;

use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;

use crate::core::error::{CoreError, CoreResult};
use crate::core::watchdog::{Kind, Registry, Thresholds, Transition};
use crate::napi_util::{borrow_mut, throw, Opts};

thread_local! {
    static REGS: RefCell<Vec<Registry>> = const { RefCell::new(Vec::new()) };
}

fn with<T>(env: &Env, h: u32, f: impl FnOnce(&mut Registry) -> CoreResult<T>) -> Result<T> {
    REGS.with(|cell| {
        let mut r = borrow_mut(cell, "the watchdog table")?;
        let reg = r
            .get_mut(h as usize)
            .ok_or_else(|| CoreError::not_found("watchdog registry handle", h));
        reg.and_then(f)
    })
    .map_err(|e| throw(env, e))
}

#[napi]
pub fn wd_create(env: Env) -> Result<u32> {
    REGS.with(|cell| {
        let mut r = borrow_mut(cell, "the watchdog table").map_err(|e| throw(&env, e))?;
        r.push(Registry::new());
        Ok((r.len() - 1) as u32)
    })
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

/// Registers (or re-thresholds) a watchdog: `kind` is `gauge`, `latency` or `counter`.
#[napi]
pub fn wd_register(
    env: Env,
    h: u32,
    kind: String,
    name: String,
    opts: Option<Unknown>,
    now: f64,
) -> Result<u32> {
    let (t, q) = thresholds(opts).map_err(|e| throw(&env, e))?;
    with(&env, h, |r| {
        r.register(&kind, &name, t, q, now).map(|i| i as u32)
    })
}

#[napi(object)]
pub struct WdTracked {
    pub id: u32,
    /// True when the registry was full and `id` is the shared overflow watchdog.
    pub overflowed: bool,
}

/// Registers a watchdog for a name the package derives from user data (AI
/// call names, topics). Once the registry is full a new name gets the shared
/// watchdog `overflow` instead and the fallback is counted (`wd_overflowed`),
/// so a wrapped call never fails because of the cap.
#[napi]
pub fn wd_track(
    env: Env,
    h: u32,
    kind: String,
    name: String,
    overflow: String,
    opts: Option<Unknown>,
    now: f64,
) -> Result<WdTracked> {
    let (t, q) = thresholds(opts).map_err(|e| throw(&env, e))?;
    with(&env, h, |r| {
        r.track(&kind, &name, &overflow, t, q, now)
            .map(|(id, overflowed)| WdTracked {
                id: id as u32,
                overflowed,
            })
    })
}

/// How many `wd_track` calls fell back to an overflow watchdog.
#[napi]
pub fn wd_overflowed(env: Env, h: u32) -> Result<f64> {
    with(&env, h, |r| Ok(r.overflowed() as f64))
}

#[napi(object)]
pub struct WdTransition {
    pub id: u32,
    pub name: String,
    pub from: String,
    pub to: String,
    pub value: f64,
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

/// Sets a gauge; returns the state change it caused, if any.
#[napi]
pub fn wd_set(env: Env, h: u32, id: u32, value: f64, now: f64) -> Result<Option<WdTransition>> {
    with(&env, h, |r| {
        Ok(r.set(id as usize, value, now)?.map(|t| tr(r, &t)))
    })
}

/// Records one call directly (the ring's slow path; throws on bad input).
#[napi]
pub fn wd_record(env: Env, h: u32, id: u32, latency_ms: f64, ok: bool, now: f64) -> Result<()> {
    with(&env, h, |r| r.record(id as usize, latency_ms, ok, now))
}

#[napi]
pub fn wd_count(env: Env, h: u32, id: u32, n: f64, now: f64) -> Result<()> {
    with(&env, h, |r| r.count(id as usize, n, now))
}

/// Applies the ring `[count, (id, latencyMs, ok)…]` (the JS side resets the
/// count), then steps every watchdog; returns the state changes.
#[napi]
pub fn wd_drain(env: Env, h: u32, ring: Float64Array, now: f64) -> Result<Vec<WdTransition>> {
    let buf: &[f64] = &ring;
    with(&env, h, |r| {
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

#[napi(object)]
pub struct WdLatency {
    pub count: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

#[napi(object)]
pub struct WdView {
    pub name: String,
    pub kind: String,
    pub state: String,
    pub since: f64,
    pub value: f64,
    pub warn: Option<f64>,
    pub critical: Option<f64>,
    pub hold_ms: f64,
    pub calls_per_minute: Option<f64>,
    pub errors_per_minute: Option<f64>,
    pub total_calls: Option<f64>,
    pub total_errors: Option<f64>,
    /// Last minute (latency trackers).
    pub latency: Option<WdLatency>,
    /// Since start (latency trackers).
    pub all_time: Option<WdLatency>,
}

fn lat(p: &crate::core::histogram::Percentiles) -> WdLatency {
    WdLatency {
        count: p.count as f64,
        p50: p.p50_us as f64 / 1000.0,
        p95: p.p95_us as f64 / 1000.0,
        p99: p.p99_us as f64 / 1000.0,
        max: p.max_us as f64 / 1000.0,
        mean: p.mean_us / 1000.0,
    }
}

/// Every watchdog with its state and figures (steps them first).
#[napi]
pub fn wd_report(env: Env, h: u32, now: f64) -> Result<Vec<WdView>> {
    with(&env, h, |r| {
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

/// Empties every watchdog registry of this thread in place (handles stay
/// valid). For `resetAll()` in tests.
pub(crate) fn reset_all() -> CoreResult<()> {
    REGS.with(|cell| {
        let mut r = borrow_mut(cell, "the watchdog table")?;
        r.iter_mut().for_each(|w| *w = Registry::new());
        Ok(())
    })
}

/// The watchdog families of every registry, for a scrape.
pub(crate) fn families(now: f64, out: &mut Vec<crate::core::exposition::model::Family>) {
    REGS.with(|cell| {
        if let Ok(mut regs) = cell.try_borrow_mut() {
            let mut refs: Vec<&mut Registry> = regs.iter_mut().collect();
            out.extend(crate::core::exposition::watchdogs::collect(&mut refs, now));
        }
    });
}
