//! Bindings for retries (`core::backoff`): the one validation of a retry
//! spec (`retrySpec`, which `retry()` calls once per policy) and the one
//! delay rule (`backoffDelay`, called once per retry by the JS retry loops).
//!
//! `backoffDelay` stays a free function of numbers and a short string: it
//! runs before every retry sleep, and a free-function crossing costs a tenth
//! of a class-method crossing here.

use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;

use crate::core::backoff::{Jitter, RawRetry, RetryFields, RetryPolicy, MAX_FACTOR, MAX_RETRIES};
use crate::core::error::CoreError;
use crate::napi_util::{either::Either, throw, Opts};

/// The most retries `retry()` and a breaker's `retryOptions` accept
/// (`core::backoff::MAX_RETRIES`).
#[napi]
pub const RETRY_MAX_RETRIES: u32 = MAX_RETRIES;

/// A validated `retry()` spec, defaults filled in (what `retrySpec` returns).
#[napi(object)]
pub struct RetrySpec {
    /// Extra attempts after the first, 0 to `RETRY_MAX_RETRIES`.
    pub max_retries: u32,
    /// The sleep before the first retry, in ms.
    pub base_delay: f64,
    /// The cap on any one sleep, in ms.
    pub max_delay: f64,
    /// Growth per attempt.
    pub factor: f64,
    /// The jitter strategy's name, as `backoffDelay` takes it.
    pub jitter: String,
}

/// Reads and validates `retry()`'s options (`maxRetries`, `baseDelay`,
/// `maxDelay`, `factor`, `jitter`: `true` is 'proportional', `false` 'none')
/// with the rule a breaker's `retryOptions` uses, and returns them with the
/// defaults filled in. A TypeError or RangeError names the field and its range.
///
/// ```ts
/// const s = native.retrySpec({ maxRetries: 2, jitter: true });
/// // { maxRetries: 2, baseDelay: 100, maxDelay: 3000, factor: 2, jitter: 'proportional' }
/// ```
#[napi]
pub fn retry_spec(env: Env, options: Option<Unknown>) -> Result<RetrySpec> {
    read_spec(options).map_err(|e| throw(&env, e))
}

fn read_spec(options: Option<Unknown>) -> std::result::Result<RetrySpec, CoreError> {
    let f = &RetryFields::RETRY;
    let o = Opts::from_unknown(options, "options")?;
    let jitter = match o.bool_or_string(
        f.jitter,
        "a boolean or one of 'none', 'proportional', 'full', 'equal', 'decorrelated'",
    )? {
        None => None,
        Some(Either::Left(true)) => Some(Jitter::Proportional),
        Some(Either::Left(false)) => Some(Jitter::None),
        Some(Either::Right(s)) => Some(Jitter::parse(f.jitter, &s)?),
    };
    let raw = RawRetry {
        max_retries: o.number(
            f.max_retries,
            &format!("an integer from 0 to {MAX_RETRIES}"),
        )?,
        initial_delay_ms: o.number(f.initial_delay, "a number of milliseconds >= 0")?,
        max_delay_ms: o.number(f.max_delay, "a number of milliseconds >= 0")?,
        factor: o.number(f.factor, &format!("a number from 1 to {MAX_FACTOR}"))?,
        jitter,
    };
    let p = raw.build_over(f, &RetryPolicy::for_retry())?;
    Ok(RetrySpec {
        max_retries: p.max_retries,
        base_delay: p.initial_delay_ms,
        max_delay: p.max_delay_ms,
        factor: p.factor,
        jitter: p.jitter.as_str().to_string(),
    })
}

/// The sleep before retry `attempt + 1` (0-based `attempt`, the sleep
/// `previousMs` before it, a uniform `u` in [0, 1)) under an exponential
/// policy: `min(initialMs * factor^attempt, maxMs)`, then `jitter`
/// ('none', 'proportional', 'full', 'equal' or 'decorrelated').
///
/// ```ts
/// native.backoffDelay(1, 100, 1000, 2, 'equal', 100, Math.random()); // in [100, 200)
/// ```
#[napi]
#[allow(clippy::too_many_arguments)]
pub fn backoff_delay(
    env: Env,
    attempt: u32,
    initial_ms: f64,
    max_ms: f64,
    factor: f64,
    jitter: String,
    previous_ms: f64,
    u: f64,
) -> Result<f64> {
    (|| -> std::result::Result<f64, CoreError> {
        let p = RetryPolicy {
            max_retries: 0,
            initial_delay_ms: initial_ms,
            max_delay_ms: max_ms,
            factor,
            jitter: Jitter::parse("jitter", &jitter)?,
        };
        p.validate()?;
        Ok(p.delay(attempt, previous_ms, u))
    })()
    .map_err(|e| throw(&env, e))
}
