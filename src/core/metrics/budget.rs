//! A byte allowance that many series' window slices draw on.
//!
//! Why: the all-time histograms are bounded by the series cap, but the
//! window slices of a busy store are most of its memory; one shared
//! allowance lets a store cap them all together (`max_window_bytes`) and
//! take a series that no longer fits out of the windows as a whole.

#[cfg(doc)]
use super::windows::LatencyWindows;

/// A byte allowance shared by the window slices of many series, so that a
/// store can bound their total. It counts what [`LatencyWindows::window_bytes`]
/// reports (histogram headers and counts), and only window slices: the
/// all-time histograms are never refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowBudget {
    limit: usize,
    used: usize,
}

impl WindowBudget {
    /// An allowance of `limit` bytes, none used yet.
    ///
    /// ```
    /// use reliability_core::core::metrics::{LatencyWindows, WindowBudget};
    /// let mut budget = WindowBudget::new(1 << 20);
    /// let mut w = LatencyWindows::new(0.0);
    /// w.record_within(1_500.0, 0.0, &mut budget);
    /// assert_eq!(budget.used(), w.window_bytes());
    /// ```
    pub fn new(limit: usize) -> Self {
        WindowBudget { limit, used: 0 }
    }

    /// An allowance that never refuses (`usize::MAX` bytes).
    pub fn unlimited() -> Self {
        Self::new(usize::MAX)
    }

    /// The cap, bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes currently held by the slices that drew on this budget.
    pub fn used(&self) -> usize {
        self.used
    }

    pub(super) fn take(&mut self, bytes: usize) -> bool {
        // `used <= limit` always holds: only `take` adds, and only within the limit.
        if bytes > self.limit - self.used {
            return false;
        }
        self.used += bytes;
        true
    }

    pub(super) fn give_back(&mut self, bytes: usize) {
        self.used = self.used.saturating_sub(bytes);
    }
}
