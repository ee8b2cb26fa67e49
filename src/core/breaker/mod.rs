//! Circuit breakers, one concept per module:
//!
//! - [`machine`]: one breaker's state machine (closed → open → half-open) and
//!   its counters;
//! - [`options`]: its options and their one validation;
//! - [`window`]: the rolling window of call outcomes a breaker's opening rule
//!   reads (a fixed ring of buckets);
//! - [`registry`]: the named, capped set of breakers of a thread, interned to
//!   small ids so the hot path passes a number, not a string;
//! - [`quorum`]: the cluster rule that opens a breaker when enough instances
//!   see its dependency failing.
//!
//! Retry is not here: it is a separate policy (`core::backoff`) composed with
//! a breaker by the caller, as cockatiel's `wrap` does.
//!
//! ```
//! use reliability_core::core::breaker::{Admission, Breaker, BreakerOptions, BreakerOutcome};
//! let mut b = Breaker::new(BreakerOptions { failure_threshold: 1, ..Default::default() }, 0.0).unwrap();
//! assert_eq!(b.try_acquire(1.0).0, Admission::Admit);
//! b.on_outcome(BreakerOutcome::Failure, 5.0, 1.0, false);
//! assert_eq!(b.try_acquire(2.0).0, Admission::RejectOpen);
//! ```

pub mod machine;
pub mod options;
pub mod quorum;
pub mod registry;
pub mod window;

pub use machine::{
    Admission, Breaker, BreakerOutcome, CallDurations, State, Totals, Transitions, CALL_BUCKETS_S,
};
pub use options::{BreakerOptions, OpeningRule, RawBreakerOptions};
pub use registry::BreakerRegistry;
pub use window::{BreakerCounts, RollingWindow, Sample};
