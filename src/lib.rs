//! reliability-core: a Rust core for Node reliability primitives, exposed to
//! JavaScript through napi-rs.
//!
//! `core` is pure Rust (no napi types) and is what `cargo test` exercises;
//! the `*_napi` modules are thin bindings that convert values and map errors.

pub mod core;

mod breaker_napi;
mod napi_util;
