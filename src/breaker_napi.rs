//! Bindings for circuit breakers.
//!
//! The hot path is designed around what a crossing costs here. Measured on
//! this machine (2 × AMD EPYC, Node 20, one million calls): a free function
//! with one number (`cbDrain(inst)`) ~105 ns, one with four numbers ~130 ns,
//! the same work as a class method with three (`table.control(id, op, now)`)
//! ~270 ns, a class getter ~240 ns: unwrapping `this` costs more than the
//! work. Hence:
//! - **Mirror pages** (`Float64Array`s allocated by JS, written only by Rust):
//!   three slots per breaker, `[gate, slowCallMs, rejectUntil]`. `gate == 0`
//!   means "closed: run without asking", so a call on a closed breaker makes
//!   no crossing before it runs; `now < rejectUntil` means "open: refuse
//!   without asking" (the refusal is reported in the next batch).
//! - **Outcome ring** (`Float64Array`): the JS wrapper appends
//!   `(id, latency, finishedAt)` for each plain success, and `(id, -1, at)`
//!   for each refusal it made from the mirror; Rust drains the ring at the
//!   start of every crossing, or when it fills. A plain success on
//!   a closed breaker cannot change its state (only failures, slow calls and
//!   half-open trials can, and those cross at once), so batching changes when
//!   Rust learns of it, never what it decides.
//! - **I/O block** (`Float64Array`): arguments of the slow-path calls are
//!   written there and the call itself takes no arguments.
//!
//! All state lives in a thread-local registry: each Node worker thread has
//! its own, as each has its own JS heap. A thread may load the JS wrapper
//! more than once (jest and vitest evaluate modules once per test file in one
//! worker) while the addon is loaded once, so each copy of the wrapper owns
//! one [`BreakerTable`]: its buffers, attached to the thread's registry as an
//! *instance*; the breakers themselves are shared by name (one registry per
//! thread, which the scrape reads). When the JS table is collected (the copy
//! of the wrapper is gone), `Drop` detaches its instance and releases its
//! buffers. The cold operations (create, configure, controls, snapshots) are
//! the table's methods. The four per-call crossings (`cbAcquire`, `cbRecord`,
//! `cbDrain`, `cbRetryDelay`) stay free functions taking the table's
//! `inst`: a class method's crossing (unwrapping `this`) costs about twice
//! a free function's (figures above).

use std::cell::RefCell;

use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;

use crate::codes_napi::{BreakerControl, BreakerGate, BREAKER_TRANSITION_SHIFT};
use crate::core::backoff::Jitter;
use crate::core::breaker::{
    Admission, Breaker, BreakerOutcome, BreakerRegistry, RawBreakerOptions, State, Transitions,
};
use crate::core::error::CoreError;
use crate::napi_util::{borrow_mut, either::Either, throw, Opts};

/// Breakers per mirror page; a page is `PAGE * STRIDE` f64s (24 KiB).
const PAGE: usize = 1024;
const STRIDE: usize = 3;
/// Successes the ring holds before the JS side forces a drain.
const RING_CAP: usize = 512;
const RING_LEN: usize = 1 + 3 * RING_CAP;
const IO_LEN: usize = 8;

/// The buffers of one copy of the JS wrapper.
struct Instance {
    /// Held so the buffers stay alive (each holds a napi reference); the raw
    /// pointers below point into them.
    _keep: Vec<Float64Array>,
    io: *mut f64,
    ring: *mut f64,
    pages: Vec<*mut f64>,
}

struct Binding {
    reg: BreakerRegistry,
    /// Indexed by a table's `inst`; `None` once its table was dropped (the
    /// slot is reused by the next table).
    instances: Vec<Option<Instance>>,
    /// The instance of the current call.
    cur: usize,
    /// Its io block (set with `cur`, so `io`/`set_io` need no lookup).
    cur_io: *mut f64,
    /// `performance.timeOrigin`: added to monotonic times to report epoch ms.
    time_origin: f64,
    drained: Vec<(u32, Transitions)>,
    /// Bumped by `reset_all`; written into every instance's `io[EPOCH_SLOT]`
    /// so a JS breaker object made before a reset re-creates itself.
    epoch: f64,
}

/// The io slot that carries the reset epoch (never an argument slot).
const EPOCH_SLOT: usize = IO_LEN - 1;

thread_local! {
    static BINDING: RefCell<Option<Binding>> = const { RefCell::new(None) };
    /// Set by `rcAttach` (which may run before the first `cbInit`).
    static UNDER_TEST: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Instances whose table was dropped while the registry was borrowed
    /// (a finalizer that ran inside a call): detached by the next call.
    static DETACH: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's binding with `inst` as the current instance,
/// after applying every batched success; maps core errors to JS errors.
fn with<R>(
    env: Option<&Env>,
    inst: u32,
    f: impl FnOnce(&mut Binding) -> std::result::Result<R, CoreError>,
) -> Result<R> {
    BINDING.with(|cell| {
        let res =
            borrow_mut(cell, "the circuit breaker registry").and_then(|mut b| match b.as_mut() {
                Some(b) => {
                    b.detach_pending();
                    let Some(Some(i)) = b.instances.get(inst as usize) else {
                        return Err(CoreError::not_found(
                            "circuit breaker binding instance",
                            inst,
                        ));
                    };
                    b.cur_io = i.io;
                    b.cur = inst as usize;
                    b.drain();
                    f(b)
                }
                _ => Err(CoreError::not_found(
                    "circuit breaker binding instance",
                    inst,
                )),
            });
        res.map_err(|e| match env {
            Some(env) => throw(env, e),
            None => Error::from_reason(e.message),
        })
    })
}

impl Binding {
    #[inline]
    fn io(&self, i: usize) -> f64 {
        debug_assert!(i < IO_LEN);
        // SAFETY: `cur_io` points into the current instance's Float64Array of IO_LEN
        // elements kept alive by `_keep` (set by `with`, which checked the instance is
        // attached); JS and Rust touch it only on the JS thread, one at a time.
        unsafe { *self.cur_io.add(i) }
    }

    #[inline]
    fn set_io(&mut self, i: usize, v: f64) {
        debug_assert!(i < IO_LEN);
        // SAFETY: as in `io`: in bounds (callers pass constant slots below
        // IO_LEN), kept alive by `_keep`, touched only on the JS thread.
        unsafe { *self.cur_io.add(i) = v }
    }

    fn id(&self) -> std::result::Result<u32, CoreError> {
        let v = self.io(0);
        if v >= 0.0 && v.fract() == 0.0 && (v as usize) < self.reg.len() {
            Ok(v as u32)
        } else {
            Err(CoreError::not_found("circuit breaker id", v))
        }
    }

    /// Detaches instance `inst` (its table was dropped): applies what its
    /// ring still holds first, then releases its buffers.
    fn detach(&mut self, inst: u32) {
        if !matches!(self.instances.get(inst as usize), Some(Some(_))) {
            return;
        }
        self.drain();
        if let Some(slot) = self.instances.get_mut(inst as usize) {
            *slot = None;
        }
        while matches!(self.instances.last(), Some(None)) {
            self.instances.pop();
        }
    }

    fn detach_pending(&mut self) {
        let pending = DETACH.with(|d| d.try_borrow_mut().map(|mut d| std::mem::take(&mut *d)));
        for inst in pending.unwrap_or_default() {
            self.detach(inst);
        }
    }

    /// Applies every batched success, in the order they happened, before the
    /// operation that triggered the drain sees the breaker.
    fn drain(&mut self) {
        let mut drained = std::mem::take(&mut self.drained);
        for inst in self.instances.iter().flatten() {
            // SAFETY: as for `io`; RING_LEN elements.
            let ring = unsafe { std::slice::from_raw_parts_mut(inst.ring, RING_LEN) };
            let n = (ring[0].max(0.0) as usize).min(RING_CAP);
            ring[0] = 0.0;
            if n > 0 {
                let entries = ring[1..1 + 3 * n]
                    .chunks_exact(3)
                    .map(|c| (c[0] as u32, c[1], c[2]));
                self.reg.apply_batch(entries, &mut drained);
            }
        }
        for (id, _) in drained.drain(..) {
            self.sync(id);
        }
        self.drained = drained;
    }

    /// Writes a breaker's gate and slow-call threshold into its mirror page.
    /// Every instance that has the page gets the write.
    fn sync(&mut self, id: u32) {
        let (page, slot) = (id as usize / PAGE, id as usize % PAGE);
        let Some(b) = self.reg.get(id) else { return };
        // gate: 0 closed, 2 open, 3 half-open, 4 isolated (open by hand).
        let gate = if b.admits_without_asking() {
            BreakerGate::Closed
        } else if b.is_isolated() {
            BreakerGate::Isolated
        } else {
            match b.state() {
                State::Closed => BreakerGate::Ask,
                State::Open => BreakerGate::Open,
                State::HalfOpen => BreakerGate::HalfOpen,
            }
        } as i32 as f64;
        let slow = b.options().slow_call_duration_ms.unwrap_or(f64::INFINITY);
        let until = b.rejects_until().unwrap_or(0.0);
        for inst in self.instances.iter().flatten() {
            let Some(&p) = inst.pages.get(page) else {
                continue;
            };
            // SAFETY: each page is PAGE * STRIDE long and kept alive by `_keep`.
            unsafe {
                *p.add(slot * STRIDE) = gate;
                *p.add(slot * STRIDE + 1) = slow;
                *p.add(slot * STRIDE + 2) = until;
            }
        }
    }
}

fn pack(admission: Admission, tr: Transitions) -> i32 {
    admission as i32 | (tr.0 as i32) << BREAKER_TRANSITION_SHIFT
}

/// Attaches one wrapper copy's buffers; returns its instance id.
fn cb_init(
    env: Env,
    io: Float64Array,
    ring: Float64Array,
    time_origin: f64,
    seed: Option<f64>,
) -> Result<u32> {
    if io.len() < IO_LEN || ring.len() < RING_LEN {
        return Err(throw(
            &env,
            CoreError::range(
                "cbInit buffers",
                &format!("io >= {IO_LEN} and ring >= {RING_LEN} elements"),
                io.len(),
            ),
        ));
    }
    BINDING.with(|cell| {
        let mut b = borrow_mut(cell, "the circuit breaker registry").map_err(|e| throw(&env, e))?;
        let b = b.get_or_insert_with(|| {
            let seed = seed.map(|s| s.to_bits()).unwrap_or_else(|| {
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0);
                t ^ (std::process::id() as u64) << 32
            });
            Binding {
                reg: BreakerRegistry::new(seed),
                instances: Vec::new(),
                cur: 0,
                cur_io: std::ptr::null_mut(),
                time_origin,
                drained: Vec::new(),
                epoch: 0.0,
            }
        });
        // SAFETY: `io` has at least IO_LEN elements (checked above).
        unsafe { *(io.as_ptr() as *mut f64).add(EPOCH_SLOT) = b.epoch };
        let (io_ptr, ring_ptr) = (io.as_ptr() as *mut f64, ring.as_ptr() as *mut f64);
        let inst = Instance {
            _keep: vec![io, ring],
            io: io_ptr,
            ring: ring_ptr,
            pages: Vec::new(),
        };
        // The slot of a dropped table is reused (no table refers to it any more).
        match b.instances.iter().position(Option::is_none) {
            Some(free) => {
                b.instances[free] = Some(inst);
                Ok(free as u32)
            }
            None => {
                b.instances.push(Some(inst));
                Ok((b.instances.len() - 1) as u32)
            }
        }
    })
}

/// Constants the JS side must agree on.
#[napi(object)]
pub struct CbLayout {
    pub page: u32,
    pub stride: u32,
    pub ring_cap: u32,
    pub io_len: u32,
}

fn cb_layout() -> CbLayout {
    CbLayout {
        page: PAGE as u32,
        stride: STRIDE as u32,
        ring_cap: RING_CAP as u32,
        io_len: IO_LEN as u32,
    }
}

/// Gives Rust the next mirror page; returns how many pages it now has.
fn cb_attach_page(env: Env, inst: u32, page: Float64Array) -> Result<u32> {
    if page.len() < PAGE * STRIDE {
        return Err(throw(
            &env,
            CoreError::range(
                "mirror page",
                &format!("{} elements", PAGE * STRIDE),
                page.len(),
            ),
        ));
    }
    with(Some(&env), inst, |b| {
        let cur = b.cur;
        let Some(Some(i)) = b.instances.get_mut(cur) else {
            return Err(CoreError::not_found(
                "circuit breaker binding instance",
                inst,
            ));
        };
        i.pages.push(page.as_ptr() as *mut f64);
        i._keep.push(page);
        let n = i.pages.len();
        let first = (n - 1) * PAGE;
        for id in first..(first + PAGE).min(b.reg.len()) {
            b.sync(id as u32);
        }
        Ok(n as u32)
    })
}

fn read_options(
    opts: Option<Unknown>,
) -> std::result::Result<(RawBreakerOptions, Option<u64>), CoreError> {
    let o = Opts::from_unknown(opts, "options")?;
    let r = o.nested("retryOptions")?;
    let jitter = match r.bool_or_string(
        "jitter",
        "a boolean or one of 'none', 'proportional', 'full', 'equal', 'decorrelated'",
    )? {
        None => None,
        Some(Either::Left(true)) => Some(Jitter::Proportional),
        Some(Either::Left(false)) => Some(Jitter::None),
        Some(Either::Right(s)) => Some(Jitter::parse("retryOptions.jitter", &s)?),
    };
    let seed = match r.number("seed", "an integer")? {
        None => None,
        Some(s) if s.is_finite() && s.fract() == 0.0 && s.abs() <= 9_007_199_254_740_991.0 => {
            Some(s as i64 as u64)
        }
        Some(s) => return Err(CoreError::range("retryOptions.seed", "a safe integer", s)),
    };
    let num = |k: &str, allowed: &str| o.number(k, allowed);
    let raw = RawBreakerOptions {
        failure_threshold: num("failureThreshold", "an integer >= 1")?,
        error_threshold_percentage: num("errorThresholdPercentage", "a percentage > 0 and <= 100")?,
        volume_threshold: num("volumeThreshold", "an integer >= 0")?,
        rolling_window_ms: num("rollingWindowMs", "a number of milliseconds > 0")?,
        rolling_buckets: num("rollingBuckets", "an integer from 1 to 1000")?,
        reset_timeout_ms: num("resetTimeout", "a number of milliseconds >= 0")?,
        half_open_max_attempts: num("halfOpenMaxAttempts", "an integer >= 1")?,
        half_open_max_calls: num("halfOpenMaxCalls", "an integer >= 1")?,
        half_open_success_threshold: num("halfOpenSuccessThreshold", "an integer >= 1")?,
        slow_call_duration_ms: num("slowCallDurationMs", "a number of milliseconds > 0")?,
        slow_call_rate_threshold: num("slowCallRateThreshold", "a percentage > 0 and <= 100")?,
        timeout_ms: o.number_or_false("timeout", "a number of milliseconds > 0, or false")?,
        request_timeout_ms: o.number_or_false(
            "requestTimeout",
            "a number of milliseconds >= 0 (0: no timeout), or false",
        )?,
        max_retries: r.number(
            "maxRetries",
            &format!("an integer from 0 to {}", crate::core::backoff::MAX_RETRIES),
        )?,
        initial_delay_ms: r.number("initialDelay", "a number of milliseconds >= 0")?,
        max_delay_ms: r.number("maxDelay", "a number of milliseconds >= 0")?,
        factor: r.number(
            "factor",
            &format!("a number from 1 to {}", crate::core::backoff::MAX_FACTOR),
        )?,
        jitter,
        exact_latency: o.boolean("exactLatency")?,
    };
    Ok((raw, seed))
}

/// Creates (or finds) the breaker `name`; returns its id. Options of an
/// existing name are ignored, as the original registry did.
fn cb_create(env: Env, inst: u32, name: Unknown, opts: Option<Unknown>, now: f64) -> Result<u32> {
    let name = match name.get_type()? {
        // SAFETY: the value was just checked to be a string.
        napi::ValueType::String => unsafe { name.cast::<String>() }?,
        _ => {
            return Err(throw(
                &env,
                CoreError::type_error("name", "a non-empty string", "another type"),
            ))
        }
    };
    // Read the user's object before borrowing the registry: a getter or
    // Proxy trap may call back into this module (issue 19). A read error
    // matters only if the name is new (existing names ignore their options).
    let read = read_options(opts);
    with(Some(&env), inst, |b| {
        if let Some(id) = b.reg.id_of(&name) {
            return Ok(id);
        }
        let (raw, seed) = read?;
        let o = if UNDER_TEST.with(|u| u.get()) {
            raw.build_over(&crate::core::breaker::BreakerOptions::under_test())?
        } else {
            raw.build()?
        };
        let (id, _) = b.reg.get_or_create(&name, o, seed, now)?;
        b.sync(id);
        Ok(id)
    })
}

/// Registry settings from `configureCircuitBreakers(options)`: reads
/// `maxBreakers`, the cap on breakers (an integer from 1 to 1,000,000,
/// default 10,000; past it, creating a breaker throws a RangeError with code
/// `ERR_LIMIT_REACHED`). Returns the cap in force.
fn cb_configure(env: Env, inst: u32, opts: Option<Unknown>) -> Result<u32> {
    // Read the user's object before borrowing the registry (issue 19).
    let max = Opts::from_unknown(opts, "options")
        .and_then(|o| o.number("maxBreakers", "an integer from 1 to 1000000"));
    with(Some(&env), inst, |b| {
        if let Some(m) = max? {
            b.reg.set_max_breakers(m)?;
        }
        Ok(b.reg.max_breakers() as u32)
    })
}

/// io: [id, now] → admission | transitions << 4. On return io[1] holds when
/// an open breaker admits its next trial (NaN if not open), so a rejection
/// can say "retry after" without another crossing.
#[napi]
pub fn cb_acquire(inst: u32) -> Result<i32> {
    with(None, inst, |b| {
        let id = b.id()?;
        let (a, tr) = b.reg.try_acquire(id, b.io(1))?;
        let next = b
            .reg
            .get(id)
            .and_then(|br| br.next_attempt_at())
            .unwrap_or(f64::NAN);
        b.set_io(1, next);
        b.sync(id);
        Ok(pack(a, tr))
    })
}

/// io: [id, outcome (0 ok, 1 failure, 2 timeout), latencyMs, finishedAt, trial (0/1)] → transitions.
#[napi]
pub fn cb_record(inst: u32) -> Result<i32> {
    with(None, inst, |b| {
        let id = b.id()?;
        let outcome = match b.io(1) as i32 {
            x if x == BreakerOutcome::Success as i32 => BreakerOutcome::Success,
            x if x == BreakerOutcome::Timeout as i32 => BreakerOutcome::Timeout,
            _ => BreakerOutcome::Failure,
        };
        let tr = b
            .reg
            .on_outcome(id, outcome, b.io(2), b.io(3), b.io(4) != 0.0)?;
        b.sync(id);
        Ok(tr.0 as i32)
    })
}

/// Applies the batched successes now (the ring is full, or a read wants fresh figures).
#[napi]
pub fn cb_drain(inst: u32) -> Result<()> {
    with(None, inst, |_| Ok(()))
}

/// io: [id, attempt, previousDelay, u or NaN] → the sleep before the next attempt, in ms.
#[napi]
pub fn cb_retry_delay(inst: u32) -> Result<f64> {
    with(None, inst, |b| {
        let id = b.id()?;
        let u = b.io(3);
        let d = b.reg.retry_delay(
            id,
            b.io(1).max(0.0) as u32,
            b.io(2),
            (!u.is_nan()).then_some(u),
        )?;
        b.set_io(0, d);
        Ok(d)
    })
}

/// Manual controls: 0 reset, 1 close, 2 open, 3 isolate. Returns transitions.
fn cb_control(env: Env, inst: u32, id: u32, op: u32, now: f64) -> Result<i32> {
    with(Some(&env), inst, |b| {
        let br = b
            .reg
            .get_mut(id)
            .ok_or_else(|| CoreError::not_found("circuit breaker id", id))?;
        let tr = match op {
            x if x == BreakerControl::Reset as u32 => br.reset(now),
            x if x == BreakerControl::Close as u32 => br.close(now),
            x if x == BreakerControl::Open as u32 => br.open(now),
            x if x == BreakerControl::Isolate as u32 => br.isolate(now),
            // Counted for `circuit_breaker_calls_total{outcome="fallback"}`.
            x if x == BreakerControl::Fallback as u32 => {
                br.count_fallback();
                Transitions::default()
            }
            _ => {
                return Err(CoreError::range(
                    "op",
                    "0 (reset), 1 (close), 2 (open), 3 (isolate) or 4 (count a fallback)",
                    op,
                ))
            }
        };
        b.sync(id);
        Ok(tr.0 as i32)
    })
}

/// The original's `getState()` shape.
#[napi(object)]
pub struct CbState {
    pub state: String,
    pub failure_count: u32,
    pub last_failure_time: Option<f64>,
}

fn cb_state(env: Env, inst: u32, id: u32) -> Result<CbState> {
    with(Some(&env), inst, |b| {
        let origin = b.time_origin;
        let br = b
            .reg
            .get(id)
            .ok_or_else(|| CoreError::not_found("circuit breaker id", id))?;
        Ok(CbState {
            state: br.state().as_str().to_string(),
            failure_count: br.failure_count(),
            last_failure_time: br.last_failure_at().map(|t| (origin + t).round()),
        })
    })
}

#[napi(object)]
pub struct CbWindow {
    pub window_ms: f64,
    pub calls: u32,
    pub successes: u32,
    pub failures: u32,
    pub timeouts: u32,
    pub slow: u32,
    pub rejects: u32,
    /// Percent (0–100) of the calls in the window that failed, like `errorThresholdPercentage`.
    pub failure_rate: f64,
    /// Percent (0–100) of the calls in the window that were slow.
    pub slow_call_rate: f64,
    pub mean_latency_ms: f64,
}

#[napi(object)]
pub struct CbTotals {
    pub successes: f64,
    pub failures: f64,
    pub timeouts: f64,
    pub slow: f64,
    pub rejects: f64,
    pub opened: f64,
}

#[napi(object)]
pub struct CbOptionsView {
    pub failure_threshold: u32,
    pub error_threshold_percentage: Option<f64>,
    pub volume_threshold: u32,
    pub rolling_window_ms: f64,
    pub rolling_buckets: u32,
    pub reset_timeout: f64,
    pub half_open_max_attempts: u32,
    pub half_open_max_calls: u32,
    pub half_open_success_threshold: u32,
    pub slow_call_duration_ms: Option<f64>,
    pub slow_call_rate_threshold: f64,
    pub timeout: Option<f64>,
    pub max_retries: u32,
    pub initial_delay: f64,
    pub max_delay: f64,
    pub factor: f64,
    pub jitter: String,
    /// `exactLatency` as given (default false).
    pub exact_latency: bool,
    /// Whether the closed path times calls with the turn clock
    /// ([`crate::core::breaker::BreakerOptions::times_per_turn`]): the wrapper reads it here.
    pub times_per_turn: bool,
}

/// Everything about one breaker, for `toJSON()`, dashboards and the CLI.
#[napi(object)]
pub struct CbSnapshot {
    pub name: String,
    pub state: String,
    pub isolated: bool,
    pub failure_count: u32,
    pub last_failure_time: Option<f64>,
    pub last_transition_time: f64,
    /// When an open breaker admits its next trial (epoch ms).
    pub next_attempt_time: Option<f64>,
    pub half_open_in_flight: u32,
    pub window: CbWindow,
    pub totals: CbTotals,
    pub options: CbOptionsView,
}

fn snapshot(name: &str, br: &mut Breaker, now: f64, origin: f64) -> CbSnapshot {
    let c = br.window_counts(now);
    let o = br.options().clone();
    let t = br.totals();
    CbSnapshot {
        name: name.to_string(),
        state: br.state().as_str().to_string(),
        isolated: br.is_isolated(),
        failure_count: br.failure_count(),
        last_failure_time: br.last_failure_at().map(|t| (origin + t).round()),
        last_transition_time: (origin + br.last_transition_at()).round(),
        next_attempt_time: br.next_attempt_at().map(|t| (origin + t).round()),
        half_open_in_flight: br.half_open_in_flight(),
        window: CbWindow {
            window_ms: br.window_ms(),
            calls: c.calls(),
            successes: c.successes,
            failures: c.failures,
            timeouts: c.timeouts,
            slow: c.slow,
            rejects: c.rejects,
            failure_rate: c.failure_pct(),
            slow_call_rate: c.slow_pct(),
            mean_latency_ms: c.mean_latency_ms(),
        },
        totals: CbTotals {
            successes: t.successes as f64,
            failures: t.failures as f64,
            timeouts: t.timeouts as f64,
            slow: t.slow as f64,
            rejects: t.rejects as f64,
            opened: t.opened as f64,
        },
        options: CbOptionsView {
            failure_threshold: o.failure_threshold,
            error_threshold_percentage: o.error_threshold_percentage,
            volume_threshold: o.volume_threshold,
            rolling_window_ms: o.rolling_window_ms,
            rolling_buckets: o.rolling_buckets,
            reset_timeout: o.reset_timeout_ms,
            half_open_max_attempts: o.half_open_max_attempts,
            half_open_max_calls: o.half_open_max_calls,
            half_open_success_threshold: o.half_open_success_threshold,
            slow_call_duration_ms: o.slow_call_duration_ms,
            slow_call_rate_threshold: o.slow_call_rate_threshold,
            timeout: o.timeout_ms,
            max_retries: o.retry.max_retries,
            initial_delay: o.retry.initial_delay_ms,
            max_delay: o.retry.max_delay_ms,
            factor: o.retry.factor,
            jitter: o.retry.jitter.as_str().to_string(),
            exact_latency: o.exact_latency,
            times_per_turn: o.times_per_turn(),
        },
    }
}

fn cb_snapshot(env: Env, inst: u32, id: u32, now: f64) -> Result<CbSnapshot> {
    with(Some(&env), inst, |b| {
        let origin = b.time_origin;
        let name = b
            .reg
            .name(id)
            .ok_or_else(|| CoreError::not_found("circuit breaker id", id))?
            .to_string();
        let br = b.reg.get_mut(id).expect("id checked above");
        Ok(snapshot(&name, br, now, origin))
    })
}

/// Snapshots of every breaker, in creation order.
fn cb_snapshot_all(env: Env, inst: u32, now: f64) -> Result<Vec<CbSnapshot>> {
    with(Some(&env), inst, |b| {
        let origin = b.time_origin;
        let ids: Vec<u32> = b.reg.ids().collect();
        Ok(ids
            .into_iter()
            .map(|id| {
                let name = b.reg.name(id).unwrap_or_default().to_string();
                snapshot(
                    &name,
                    b.reg.get_mut(id).expect("id from ids()"),
                    now,
                    origin,
                )
            })
            .collect())
    })
}

/// One copy of the JS wrapper's view of the thread's breakers: its shared
/// buffers (io block, outcome ring, mirror pages), attached to the thread's
/// registry, and the cold operations on the breakers. The JS module makes one
/// at load and keeps it; when it is collected, `Drop` detaches its buffers
/// (applying what its ring still holds first). The per-call crossings take
/// its [`BreakerTable::inst`] and are free functions (`cbAcquire`,
/// `cbRecord`, `cbDrain`, `cbRetryDelay`), the cheapest crossing here.
///
/// ```js
/// const l = native.BreakerTable.layout();
/// const io = new Float64Array(l.ioLen);
/// const ring = new Float64Array(1 + 3 * l.ringCap);
/// const table = new native.BreakerTable(io, ring, performance.timeOrigin);
/// table.attachPage(new Float64Array(l.page * l.stride));
/// const id = table.create('orders-db', { failureThreshold: 5 }, performance.now());
/// table.snapshot(id, performance.now()).state; // 'closed'
/// ```
#[napi]
pub struct BreakerTable {
    inst: u32,
}

#[napi]
impl BreakerTable {
    /// Attaches `io` (at least `ioLen` elements) and `ring` (at least
    /// `1 + 3 * ringCap`) as a new instance. `timeOrigin` is
    /// `performance.timeOrigin` (to report epoch ms); `seed` seeds the
    /// registry's jitter generator when this is the thread's first table.
    #[napi(constructor)]
    pub fn new(
        env: Env,
        io: Float64Array,
        ring: Float64Array,
        time_origin: f64,
        seed: Option<f64>,
    ) -> Result<Self> {
        Ok(BreakerTable {
            inst: cb_init(env, io, ring, time_origin, seed)?,
        })
    }

    /// The buffer sizes the JS side must agree on (static: needed before a table exists).
    #[napi]
    pub fn layout() -> CbLayout {
        cb_layout()
    }

    /// This table's instance id, the first argument of the per-call free functions.
    #[napi(getter)]
    pub fn inst(&self) -> u32 {
        self.inst
    }

    /// Gives Rust the next mirror page (`page * stride` elements); returns how many pages it now has.
    #[napi]
    pub fn attach_page(&self, env: Env, page: Float64Array) -> Result<u32> {
        cb_attach_page(env, self.inst, page)
    }

    /// Creates (or finds) the breaker `name`; returns its id. Options of an
    /// existing name are ignored, as the original registry did. The options
    /// object is read fully before the registry is borrowed.
    #[napi]
    pub fn create(&self, env: Env, name: Unknown, opts: Option<Unknown>, now: f64) -> Result<u32> {
        cb_create(env, self.inst, name, opts, now)
    }

    /// Registry settings from `configureCircuitBreakers(options)`: reads
    /// `maxBreakers` (an integer from 1 to 1,000,000, default 10,000; past
    /// it, creating a breaker throws a RangeError with code
    /// `ERR_LIMIT_REACHED`). Returns the cap in force.
    #[napi]
    pub fn configure(&self, env: Env, opts: Option<Unknown>) -> Result<u32> {
        cb_configure(env, self.inst, opts)
    }

    /// Manual controls (`BreakerControl`: reset, close, open, isolate, count
    /// a fallback) on breaker `id`; returns the transitions.
    #[napi]
    pub fn control(&self, env: Env, id: u32, op: u32, now: f64) -> Result<i32> {
        cb_control(env, self.inst, id, op, now)
    }

    /// The original's `getState()` of breaker `id`.
    #[napi]
    pub fn state(&self, env: Env, id: u32) -> Result<CbState> {
        cb_state(env, self.inst, id)
    }

    /// Everything about breaker `id` at `now`.
    #[napi]
    pub fn snapshot(&self, env: Env, id: u32, now: f64) -> Result<CbSnapshot> {
        cb_snapshot(env, self.inst, id, now)
    }

    /// Snapshots of every breaker, in creation order.
    #[napi]
    pub fn snapshot_all(&self, env: Env, now: f64) -> Result<Vec<CbSnapshot>> {
        cb_snapshot_all(env, self.inst, now)
    }
}

impl Drop for BreakerTable {
    fn drop(&mut self) {
        let inst = self.inst;
        BINDING.with(|cell| match cell.try_borrow_mut() {
            Ok(mut b) => {
                if let Some(b) = b.as_mut() {
                    b.detach(inst);
                }
            }
            // Collected during a call (the registry is borrowed): the next call detaches it.
            Err(_) => DETACH.with(|d| {
                if let Ok(mut d) = d.try_borrow_mut() {
                    d.push(inst);
                }
            }),
        });
    }
}

/// Removes every breaker of this thread (for `resetAll()` in tests): the
/// registry is emptied, every mirror page of every wrapper copy is zeroed,
/// batched outcomes are dropped, and the epoch each copy reads from its io
/// block is bumped so breaker objects made before re-create themselves by
/// name on their next use. The cap set by `configureCircuitBreakers` stays.
pub(crate) fn reset_all() -> std::result::Result<(), CoreError> {
    BINDING.with(|cell| {
        let mut b = borrow_mut(cell, "the circuit breaker registry")?;
        let Some(b) = b.as_mut() else { return Ok(()) };
        b.reg.clear();
        b.drained.clear();
        b.epoch += 1.0;
        for inst in b.instances.iter().flatten() {
            // SAFETY: as in `Binding::io`/`drain`: buffers kept alive by
            // `_keep`, of IO_LEN / RING_LEN / PAGE * STRIDE elements.
            unsafe {
                *inst.ring = 0.0;
                *inst.io.add(EPOCH_SLOT) = b.epoch;
                for &p in &inst.pages {
                    std::slice::from_raw_parts_mut(p, PAGE * STRIDE).fill(0.0);
                }
            }
        }
        Ok(())
    })
}

/// Makes breakers created from now on fill omitted options from the test
/// defaults (`BreakerOptions::under_test()`), or from the production ones.
pub(crate) fn set_under_test(on: bool) {
    UNDER_TEST.with(|u| u.set(on));
}

/// The breaker families for a scrape (see `exposition_napi`), after
/// applying every batched outcome; nothing while the registry is busy (a
/// scrape from inside a breaker callback) or not yet initialised.
pub(crate) fn families(now: f64, out: &mut Vec<crate::core::exposition::model::Family>) {
    BINDING.with(|cell| {
        if let Ok(mut b) = cell.try_borrow_mut() {
            if let Some(b) = b.as_mut() {
                b.drain();
                out.extend(crate::core::exposition::breakers::collect(&mut b.reg, now));
            }
        }
    });
}
