//! Golden signals per route and the latency histograms behind them, one
//! concept per module:
//!
//! - [`windows`]: the 10 s / 1 min / 5 min / all-time latency windows of
//!   one series (rings of exponential histograms with running sums);
//! - [`budget`]: the byte allowance all series' window slices share;
//! - [`aggregate`]: the scratch histogram reads, merges and imports sum into;
//! - [`hdr_v2`]: the HdrHistogram V2 interchange encoding of exports;
//! - [`series`], [`store`]: one (method, route) series and the store that
//!   interns them, caps them and applies batches;
//! - [`options`], [`diagnostics`], [`refusal`], [`stats`]: what a store is
//!   configured with, what it refused, why a request was refused, what a
//!   read returns;
//! - [`error_rate`](mod@error_rate): the one documented error-rate definition.
//!
//! The HTTP exposition of the store's figures is `exposition::http`.

pub mod aggregate;
pub mod budget;
pub mod diagnostics;
pub mod error_rate;
pub mod hdr_v2;
pub mod options;
pub mod refusal;
pub mod series;
pub mod stats;
pub mod store;
pub mod windows;

pub use aggregate::Aggregate;
pub use budget::WindowBudget;
pub use diagnostics::{Diagnostics, Reason};
pub use error_rate::{error_rate, rate_of, server_error_rate, ERROR_STATUS_FROM};
pub use options::*;
pub use refusal::Refusal;
pub use stats::{WindowStats, MIN_RATE_SPAN_S};
pub use store::*;
pub use windows::{quantize, LatencyWindows, Recorded, Window, RINGS};
