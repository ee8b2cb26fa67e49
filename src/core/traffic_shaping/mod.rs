//! Traffic shaping: progressive rollouts with sticky bucketing, per-cohort
//! windows, SLO analysis and the automatic rollback / advance decisions
//! (the core of `lib/traffic-shaping.ts`, whose name this module follows).
//!
//! * **Bucketing** ([`bucket`]). MurmurHash3 of `<rollout>:<key>` into 10,000
//!   buckets; a key is in the new cohort when its bucket is below the
//!   percentage in basis points. Raising the percentage only adds keys. The
//!   original's Java-hash `% 100` rule is kept as `HashMode::Legacy`. The deny
//!   list wins over the allow list, as in the original.
//! * **Cohorts** ([`cohort`]). Each cohort (new, stable) keeps request/error
//!   counts in a ring of short slices long enough for the longest burn-rate
//!   window, and latency histograms (`core::exphist`, schema 6, the metrics'
//!   histogram) over the analysis window.
//! * **Analysis** ([`slo`]). With fewer than `min_samples` new-cohort
//!   requests in the window the verdict is `Inconclusive`, never healthy.
//!   Otherwise the new cohort breaches on an error-rate ceiling, a
//!   latency-quantile ceiling, multi-window burn rates of an availability
//!   target (SRE workbook: both the long and the short window burn faster than
//!   the factor), or on being worse than the stable cohort by a margin.
//! * **Decisions** ([`rollout`], [`set`]). A breach rolls back within the same
//!   evaluation (to 0 or to the last good step); a healthy step with enough
//!   time and requests advances. Every decision lands in a bounded history
//!   with its reason and figures. Nothing here runs on a timer: evaluation
//!   happens when outcomes are recorded and when the status is read.

pub mod bucket;
pub mod cohort;
pub mod config;
pub mod rollout;
pub mod set;
pub mod slo;

pub use config::{percent_to_bp, Config, HashMode, RollbackTarget, Step};
pub use rollout::{Event, HistoryEntry, Rollout, RolloutPhase};
pub use set::RolloutSet;
pub use slo::{BurnWindow, Figures, Slo, Verdict};

/// Buckets a key hashes into: the percentage's resolution is one basis point.
pub const BUCKETS: u32 = 10_000;
/// `minSamples` when not given: the original judged from the 11th request
/// (`requestCount > 10`).
pub const DEFAULT_MIN_SAMPLES: u64 = 11;
/// Rollouts per instance at most (a name-keyed set is always capped).
pub const MAX_ROLLOUTS: usize = 1000;
/// Entries in an allow or deny list at most.
pub const MAX_LIST: usize = 100_000;
/// Steps in a rollout plan at most.
pub const MAX_STEPS: usize = 100;
/// Decisions kept in a rollout's history (the oldest goes first).
pub const HISTORY_CAP: usize = 100;
/// Slices in a count ring at most (bounds memory per cohort).
pub const MAX_COUNT_SLICES: usize = 4096;

#[cfg(test)]
mod tests;
