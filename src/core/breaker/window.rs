//! A rolling time window of call outcomes, kept in a fixed ring of buckets.
//!
//! Why buckets: the window's size is fixed when the breaker is made, whatever
//! the call rate, and a read sums at most `buckets` small structs instead of
//! walking every call (opossum concatenates and sorts every latency on each
//! failure). Buckets rotate when the window is touched, never from a timer.
//!
//! ```
//! use reliability_core::core::breaker::window::{RollingWindow, Sample};
//! // 10 s split into 10 buckets of 1 s, starting at t = 0.
//! let mut w = RollingWindow::new(10_000.0, 10, 0.0);
//! w.record(100.0, Sample::Success, 4.0, false);
//! w.record(200.0, Sample::Failure, 6.0, false);
//! let t = w.totals(500.0);
//! assert_eq!((t.calls(), t.failure_pct(), t.mean_latency_ms()), (2, 50.0, 5.0));
//! // Ten seconds later both samples have left the window.
//! assert_eq!(w.totals(10_500.0).calls(), 0);
//! ```

use crate::core::time_ring::{RingSpec, SliceRing, Slot};

/// Outcome counts for one bucket of a breaker's window (or, summed by
/// [`RollingWindow::totals`], for the whole window): what the opening rule and
/// the snapshots read. Kept `Copy` and at 24 bytes because every breaker holds
/// one per bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BreakerCounts {
    /// Calls that ran and succeeded.
    pub successes: u32,
    /// Calls that ran and failed, timeouts included: the numerator of the
    /// failure rate.
    pub failures: u32,
    /// Calls that failed because they ran past their timeout (also counted in `failures`).
    pub timeouts: u32,
    /// Calls (successful or not) slower than `slowCallDurationMs`.
    pub slow: u32,
    /// Calls refused without running because the breaker was open or its half-open slots were taken.
    pub rejects: u32,
    /// Sum of the latencies of the finished calls, for the mean. f32 keeps a
    /// bucket at 24 bytes (10 buckets per breaker, 10 000s of breakers); its
    /// 24-bit mantissa is ample for a mean shown in snapshots.
    pub latency_sum_ms: f32,
}

impl BreakerCounts {
    /// Calls that ran to an outcome (rejections are not calls that ran).
    pub fn calls(&self) -> u32 {
        self.successes + self.failures
    }

    /// Failure rate in percent of the calls that ran, 0 when none ran.
    pub fn failure_pct(&self) -> f64 {
        pct(self.failures, self.calls())
    }

    /// Slow calls in percent of the calls that ran, 0 when none ran: what
    /// `slowCallRateThreshold` is compared with.
    pub fn slow_pct(&self) -> f64 {
        pct(self.slow, self.calls())
    }

    /// Mean latency (ms) of the calls that ran, 0 when none ran; shown in
    /// snapshots, never used to decide a transition.
    pub fn mean_latency_ms(&self) -> f64 {
        let n = self.calls();
        if n == 0 {
            0.0
        } else {
            self.latency_sum_ms as f64 / n as f64
        }
    }

    fn add(&mut self, o: &BreakerCounts) {
        self.successes += o.successes;
        self.failures += o.failures;
        self.timeouts += o.timeouts;
        self.slow += o.slow;
        self.rejects += o.rejects;
        self.latency_sum_ms += o.latency_sum_ms;
    }
}

fn pct(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// What happened to one call, as the window counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sample {
    /// The call ran and succeeded.
    Success,
    /// The call ran and failed.
    Failure,
    /// The call ran past its timeout: counted as a failure and as a timeout.
    Timeout,
    /// The call was refused without running; counted apart, since a refusal
    /// says nothing about the dependency's health.
    Reject,
}

/// The last `window_ms` of one breaker's outcomes, as a ring of equal
/// buckets of [`BreakerCounts`]: memory is fixed when the breaker is made and a
/// read sums `buckets` structs, whatever the call rate. The ring is the one
/// [`SliceRing`] every time window of the crate uses, so a breaker's window
/// rotates by the same rules as the metrics windows.
#[derive(Debug, Clone)]
pub struct RollingWindow {
    ring: SliceRing<BreakerCounts>,
}

impl Slot for BreakerCounts {
    fn clear(&mut self) {
        *self = BreakerCounts::default();
    }
}

impl RollingWindow {
    /// `window_ms` split into `buckets` equal slices; the caller validated both.
    pub fn new(window_ms: f64, buckets: u32, now: f64) -> Self {
        let n = buckets.max(1) as usize;
        let spec = RingSpec {
            slice_ms: window_ms / n as f64,
            slices: n,
        };
        RollingWindow {
            ring: SliceRing::new(spec, now),
        }
    }

    /// The window's length (ms): bucket length times bucket count, as
    /// snapshots report it.
    pub fn window_ms(&self) -> f64 {
        self.ring.window_ms()
    }

    /// Records a sample that happened at `at`. Samples may arrive late (the
    /// binding batches successes): a late sample goes into the bucket of its
    /// own time if that bucket is still in the window, and is dropped if not.
    #[inline]
    pub fn record(&mut self, at: f64, sample: Sample, latency_ms: f64, slow: bool) {
        let Some(b) = self.ring.slot_at(at) else {
            return;
        };
        match sample {
            Sample::Success => b.successes += 1,
            Sample::Failure => b.failures += 1,
            Sample::Timeout => {
                b.failures += 1;
                b.timeouts += 1;
            }
            Sample::Reject => {
                b.rejects += 1;
                return;
            }
        }
        if slow {
            b.slow += 1;
        }
        b.latency_sum_ms += latency_ms as f32;
    }

    /// Sum over the window as of `now`.
    pub fn totals(&mut self, now: f64) -> BreakerCounts {
        let mut t = BreakerCounts::default();
        for b in self.ring.slots(now) {
            t.add(b);
        }
        t
    }

    /// Forgets every sample and restarts the ring at `now`, for a breaker's
    /// `reset()` (which zeroes all its counters).
    pub fn clear(&mut self, now: f64) {
        self.ring.reset(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_within_window_and_forgets_after_it() {
        let mut w = RollingWindow::new(10_000.0, 10, 0.0);
        w.record(0.0, Sample::Success, 5.0, false);
        w.record(500.0, Sample::Failure, 7.0, false);
        w.record(9_500.0, Sample::Timeout, 100.0, true);
        let t = w.totals(9_999.0);
        assert_eq!((t.successes, t.failures, t.timeouts, t.slow), (1, 2, 1, 1));
        assert!((t.failure_pct() - 200.0 / 3.0).abs() < 1e-9);
        // At 10 s the first bucket (0..1 s) has left the window.
        let t = w.totals(10_000.0);
        assert_eq!((t.successes, t.failures), (0, 1));
        // Long idle: everything is gone.
        assert_eq!(w.totals(1e9).calls(), 0);
    }

    #[test]
    fn late_samples_land_in_their_own_bucket_or_are_dropped() {
        let mut w = RollingWindow::new(1_000.0, 10, 0.0);
        w.record(950.0, Sample::Success, 1.0, false);
        // Arrives late, but 50 ms is still inside the window at 950 ms.
        w.record(50.0, Sample::Success, 1.0, false);
        assert_eq!(w.totals(950.0).successes, 2);
        // At 1 050 ms the bucket of 50 ms has rotated out.
        assert_eq!(w.totals(1_050.0).successes, 1);
        // A sample older than the whole window is dropped, not misfiled.
        w.record(10.0, Sample::Failure, 1.0, false);
        assert_eq!(w.totals(1_050.0).failures, 0);
    }

    #[test]
    fn rejects_are_not_calls() {
        let mut w = RollingWindow::new(1_000.0, 4, 0.0);
        w.record(1.0, Sample::Reject, 0.0, false);
        let t = w.totals(2.0);
        assert_eq!((t.rejects, t.calls()), (1, 0));
        assert_eq!(t.failure_pct(), 0.0);
    }

    #[test]
    fn time_going_backwards_is_harmless() {
        let mut w = RollingWindow::new(1_000.0, 10, 5_000.0);
        w.record(5_000.0, Sample::Success, 1.0, false);
        let t = w.totals(4_000.0);
        assert_eq!(t.successes, 1);
    }
}
