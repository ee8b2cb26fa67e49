//! The pure-Rust core. Nothing in here knows about napi or JavaScript: every
//! module takes "now" as milliseconds from the caller (a monotonic clock in
//! production, a number in tests), so `cargo test` drives the state machines
//! without sleeping and without Node.

// The core holds every rule and every figure; it has no reason for unsafe code.
#![forbid(unsafe_code)]

pub mod auth;
pub mod backoff;
pub mod breaker;
pub mod dlq;
pub mod error;
pub mod exphist;
pub mod exposition;
#[doc(hidden)]
pub mod fuzz_entry;
pub mod gate;
pub mod json;
pub mod metrics;
pub mod named;
pub mod ops;
pub mod ops_merge;
pub mod rng;
pub mod startup;
pub mod text;
pub mod time_ring;
pub mod traffic_shaping;
pub mod watchdog;
