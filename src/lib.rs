//! reliability-core: a Rust core for Node reliability primitives, exposed to
//! JavaScript through napi-rs.
//!
//! `core` is pure Rust (no napi types) and is what `cargo test` exercises;
//! the `*_napi` modules are thin bindings that convert values and map errors.

pub mod core;

// Under `cargo test` the #[napi] exports are not generated, so the binding looks unused.
#[cfg_attr(test, allow(dead_code))]
mod auth_napi;
#[cfg_attr(test, allow(dead_code))]
mod breaker_napi;
#[cfg_attr(test, allow(dead_code))]
mod codes_napi;
#[cfg_attr(test, allow(dead_code))]
mod dag_napi;
#[cfg_attr(test, allow(dead_code))]
mod exposition_napi;
#[cfg_attr(test, allow(dead_code))]
mod gate_napi;
#[cfg_attr(test, allow(dead_code))]
mod metrics_napi;
#[cfg_attr(test, allow(dead_code))]
mod napi_util;
#[cfg_attr(test, allow(dead_code))]
mod ops_napi;
#[cfg_attr(test, allow(dead_code))]
mod quorum_napi;
#[cfg_attr(test, allow(dead_code))]
mod reset_napi;
#[cfg_attr(test, allow(dead_code))]
mod retry_napi;
#[cfg_attr(test, allow(dead_code))]
mod rollout_napi;
#[cfg_attr(test, allow(dead_code))]
mod watchdog_napi;
