//! Bindings for `core::auth`: the token-strength check and the process's
//! failed-token limiter (one per thread, shared by every router of the
//! package, so the global limit is the process's). No JS is called while
//! the limiter is borrowed.

use std::cell::RefCell;

use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;

use crate::core::auth::{self, AuthLimits, TokenLimiter};
use crate::napi_util::throw;

thread_local! {
    static LIMITER: RefCell<TokenLimiter> = RefCell::new(TokenLimiter::default());
}

fn limits(env: &Env, per_source: f64, window_ms: f64, global: f64) -> Result<AuthLimits> {
    AuthLimits::new(per_source, window_ms, global).map_err(|e| throw(env, e))
}

/// The limiter's defaults and the token minimum, so the TS layer copies none.
#[napi(object)]
pub struct AuthDefaults {
    pub max_token_failures: u32,
    pub max_global_token_failures: u32,
    pub failure_window_ms: f64,
    pub min_token_bits: f64,
}

#[napi]
pub fn auth_defaults() -> AuthDefaults {
    AuthDefaults {
        max_token_failures: auth::DEFAULT_MAX_FAILURES,
        max_global_token_failures: auth::DEFAULT_MAX_GLOBAL_FAILURES,
        failure_window_ms: auth::DEFAULT_FAILURE_WINDOW_MS,
        min_token_bits: auth::MIN_TOKEN_BITS,
    }
}

/// Throws a RangeError naming the option when the limiter figures are out of range.
#[napi]
pub fn auth_check_limits(
    env: Env,
    max_failures: f64,
    window_ms: f64,
    max_global: f64,
) -> Result<()> {
    limits(&env, max_failures, window_ms, max_global).map(|_| ())
}

/// Throws a RangeError (naming `field`, never quoting the token) when a
/// configured token is too weak; the message says how to make one.
#[napi]
pub fn auth_check_token(env: Env, field: String, token: String) -> Result<()> {
    auth::check_token(&field, &token).map_err(|e| throw(&env, e))
}

/// Records a failed token from `source`; `[refused now (0/1), Retry-After seconds]`.
#[napi]
pub fn auth_failure(
    env: Env,
    source: String,
    now: f64,
    max_failures: f64,
    window_ms: f64,
    max_global: f64,
) -> Result<Vec<f64>> {
    let l = limits(&env, max_failures, window_ms, max_global)?;
    Ok(LIMITER.with(|t| {
        let mut t = t.borrow_mut();
        let refused = t.failure(&source, now, &l);
        vec![
            if refused { 1.0 } else { 0.0 },
            t.retry_after_s(&source, now, &l),
        ]
    }))
}

/// Seconds until failing requests from `source` are accepted again (0: now).
#[napi]
pub fn auth_retry_after(
    env: Env,
    source: String,
    now: f64,
    max_failures: f64,
    window_ms: f64,
    max_global: f64,
) -> Result<f64> {
    let l = limits(&env, max_failures, window_ms, max_global)?;
    Ok(LIMITER.with(|t| t.borrow().retry_after_s(&source, now, &l)))
}

/// A right token from `source`: its own failure count starts again.
#[napi]
pub fn auth_success(source: String) {
    LIMITER.with(|t| t.borrow_mut().success(&source));
}

/// Forgets every failed-token count of this thread (for `resetAll()` in tests).
pub(crate) fn reset_all() -> std::result::Result<(), crate::core::error::CoreError> {
    LIMITER.with(|l| {
        *crate::napi_util::borrow_mut(l, "the token limiter")? = TokenLimiter::default();
        Ok(())
    })
}
