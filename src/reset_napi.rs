//! `resetAll()` for tests, and the per-thread count of loads of the JS
//! wrapper that makes it automatic.
//!
//! The addon is loaded once per thread while Jest (every mode) and vitest
//! (`vmThreads`, `isolate: false` with a fresh module graph) evaluate the JS
//! wrapper again for each test file. The JS side's module-level state is new
//! on each load, the state held here is not: so the truth about "a new test
//! file started" lives here, in [`rc_attach`]'s load count, and JS caches
//! that outlive a reset (a breaker object an app module kept) notice it
//! through the epoch written into every attached buffer.
//!
//! ```js
//! const shared = new Float64Array(2);
//! const loads = native.rcAttach(shared, underTestRunner); // 1 on the first load
//! native.rcResetAll(performance.now());                   // shared[0] is now 1
//! ```

use std::cell::RefCell;

use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;

use crate::core::error::CoreError;
use crate::napi_util::{borrow_mut, throw};

/// Slots of the buffer each wrapper copy attaches.
const EPOCH: usize = 0;
const LEN: usize = 2;

struct Loads {
    /// One buffer per load of the JS wrapper; kept alive by the reference.
    buffers: Vec<(Float64Array, *mut f64)>,
    epoch: f64,
}

thread_local! {
    static LOADS: RefCell<Loads> = const { RefCell::new(Loads { buffers: Vec::new(), epoch: 0.0 }) };
}

/// Attaches one load's shared buffer (at least 2 elements: `[epoch, loads]`)
/// and records whether this load runs under a test runner (breakers created
/// afterwards take the test defaults). Returns how many times the wrapper
/// has been loaded in this thread, this load included.
#[napi]
pub fn rc_attach(env: Env, shared: Float64Array, under_test: bool) -> Result<u32> {
    if shared.len() < LEN {
        return Err(throw(
            &env,
            CoreError::range(
                "rcAttach buffer",
                &format!(">= {LEN} elements"),
                shared.len(),
            ),
        ));
    }
    crate::breaker_napi::set_under_test(under_test);
    LOADS.with(|cell| {
        let mut l = borrow_mut(cell, "the load table").map_err(|e| throw(&env, e))?;
        let ptr = shared.as_ptr() as *mut f64;
        l.buffers.push((shared, ptr));
        let n = l.buffers.len();
        let epoch = l.epoch;
        for (_, p) in &l.buffers {
            // SAFETY: each buffer has >= LEN elements (checked on attach) and
            // is kept alive by its reference; only this thread touches it.
            unsafe {
                *p.add(EPOCH) = epoch;
                *p.add(1) = n as f64;
            }
        }
        Ok(n as u32)
    })
}

/// Resets everything this thread's addon holds: breakers removed, metrics
/// figures and buffered requests cleared, ops planes (switches, quarantines,
/// audit, dead-letter queues), rollouts, health gates, watchdogs and
/// startup DAGs emptied in place, failed-token counts forgotten. Bumps the
/// epoch every load reads. Returns the new epoch.
#[napi]
pub fn rc_reset_all(env: Env, now: f64) -> Result<f64> {
    let run = || -> std::result::Result<f64, CoreError> {
        crate::breaker_napi::reset_all()?;
        crate::metrics_napi::reset_all(now)?;
        crate::ops_napi::reset_all()?;
        crate::gate_napi::reset_all()?;
        crate::rollout_napi::reset_all()?;
        crate::watchdog_napi::reset_all()?;
        crate::dag_napi::reset_all()?;
        crate::auth_napi::reset_all()?;
        LOADS.with(|cell| {
            let mut l = borrow_mut(cell, "the load table")?;
            l.epoch += 1.0;
            let epoch = l.epoch;
            for (_, p) in &l.buffers {
                // SAFETY: as in `rc_attach`.
                unsafe { *p.add(EPOCH) = epoch };
            }
            Ok(epoch)
        })
    };
    run().map_err(|e| throw(&env, e))
}
