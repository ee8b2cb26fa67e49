//! One cohort's measurements (new or stable): request/error counts in a
//! ring of short slices long enough for the longest burn-rate window, and
//! latency histograms over the analysis window, in the crate's sparse
//! exponential histogram (`core::exphist`, schema 6) like the metrics.

use super::config::Config;
use crate::core::exphist::{index_us, upper_seconds, Acc, ExpHist, MAX_US, MIN_US};
use crate::core::time_ring::{RingSpec, SliceRing, Slot};

/// Slices of the latency ring: the analysis window moves in sixths.
const LATENCY_SLICES: usize = 6;

/// The count ring: slices of a fifth of the shortest window, as many as the
/// longest window needs.
pub(crate) fn count_spec(c: &Config) -> RingSpec {
    let shortest = c
        .burn_windows()
        .iter()
        .map(|w| w.short_ms)
        .fold(c.window_ms, f64::min);
    let longest = c
        .burn_windows()
        .iter()
        .map(|w| w.long_ms)
        .fold(c.window_ms, f64::max);
    let slice_ms = (shortest / 5.0).max(10.0);
    RingSpec {
        slice_ms,
        slices: (longest / slice_ms).ceil() as usize,
    }
}

/// Requests and errors of a cohort over some span.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct CohortCounts {
    pub(crate) requests: u64,
    pub(crate) errors: u64,
}

impl Slot for CohortCounts {
    fn clear(&mut self) {
        *self = CohortCounts::default();
    }
}

/// One slice of the latency ring.
#[derive(Debug, Default)]
struct LatSlot(ExpHist);

impl Slot for LatSlot {
    fn clear(&mut self) {
        self.0.clear();
    }
}

/// One cohort's windows and totals.
#[derive(Debug)]
pub(crate) struct Cohort {
    counts: SliceRing<CohortCounts>,
    latency: SliceRing<LatSlot>,
    pub(crate) total: CohortCounts,
    /// Requests since the current step began (for `min_requests`).
    pub(crate) step_requests: u64,
}

impl Cohort {
    pub(crate) fn new(c: &Config, now: f64) -> Self {
        Cohort {
            counts: SliceRing::new(count_spec(c), now),
            latency: SliceRing::new(
                RingSpec {
                    slice_ms: c.window_ms / LATENCY_SLICES as f64,
                    slices: LATENCY_SLICES,
                },
                now,
            ),
            total: CohortCounts::default(),
            step_requests: 0,
        }
    }

    pub(crate) fn record(&mut self, ok: bool, latency_ms: f64, now: f64) {
        let e = !ok as u64;
        let h = self.counts.head(now);
        h.requests += 1;
        h.errors += e;
        self.total.requests += 1;
        self.total.errors += e;
        self.step_requests += 1;
        if latency_ms.is_finite() && latency_ms >= 0.0 {
            let us = ((latency_ms * 1000.0).round() as u64).clamp(MIN_US, MAX_US);
            let slot = self.latency.head(now);
            // No byte budget here: a slice holds at most the ~2,000 buckets
            // of 1 µs .. 1 h, and a rollout has a fixed number of slices.
            slot.0.record(us, index_us(us), |_| true);
        }
    }

    /// Requests and errors over the last `ms` (whole slices, at least one).
    pub(crate) fn window(&mut self, ms: f64, now: f64) -> CohortCounts {
        let slice_ms = self.counts.window_ms() / self.counts.slots(now).len() as f64;
        let k = ((ms / slice_ms).round() as usize).max(1);
        self.counts
            .newest(now, k)
            .fold(CohortCounts::default(), |mut c, s| {
                c.requests += s.requests;
                c.errors += s.errors;
                c
            })
    }

    /// The latency quantile (ms) over the analysis window, as the lowest
    /// value of its bucket (at least the exact minimum), so a breach is never
    /// claimed for a value that only rounds up past the ceiling.
    pub(crate) fn latency_quantile(&mut self, q: f64, now: f64) -> Option<f64> {
        let mut merged: Option<Acc> = None;
        let mut min_us = u64::MAX;
        for s in self.latency.slots(now) {
            if let Some((lo, _)) = s.0.min_max() {
                merged.get_or_insert_with(Acc::new).add(&s.0, 0.0);
                min_us = min_us.min(lo);
            }
        }
        let m = merged?;
        quantile_floor_us(&m, q).map(|us| us.max(min_us) as f64 / 1000.0)
    }

    pub(crate) fn reset_step(&mut self) {
        self.step_requests = 0;
    }
}

/// The lowest value (µs) of the bucket holding quantile `q` of `h` (nearest
/// rank, as the metrics' quantiles); `None` when `h` is empty.
fn quantile_floor_us(h: &Acc, q: f64) -> Option<u64> {
    let total = h.count();
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut cum = 0u64;
    let mut at = None;
    h.for_each(|i, c| {
        cum += c;
        if at.is_none() && cum >= rank {
            at = Some(i);
        }
    });
    at.map(bucket_floor_us)
}

/// The smallest whole microsecond in bucket `i` (whose values are above
/// `2^((i-1)/64)` s): computed from the float bound, then nudged so that
/// [`index_us`] agrees, since the bound itself may round either way.
fn bucket_floor_us(i: i32) -> u64 {
    let mut us = ((upper_seconds(i - 1) * 1e6).floor() as u64 + 1).clamp(MIN_US, MAX_US);
    while us > MIN_US && index_us(us - 1) == i {
        us -= 1;
    }
    while us < MAX_US && index_us(us) < i {
        us += 1;
    }
    us
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_floor_is_in_its_bucket_and_the_one_below_is_not() {
        for us in [1u64, 2, 3, 10, 99, 1_000, 12_345, 500_000, 3_000_000_000] {
            let i = index_us(us);
            let f = bucket_floor_us(i);
            assert_eq!(index_us(f), i, "{us}");
            assert!(f <= us, "{us}");
            assert!(f == MIN_US || index_us(f - 1) < i, "{us}");
        }
    }

    #[test]
    fn the_quantile_is_the_floor_of_its_bucket() {
        let mut h = ExpHist::default();
        for us in 1..=100u64 {
            h.record(us * 1_000, index_us(us * 1_000), |_| true);
        }
        let mut acc = Acc::new();
        acc.add(&h, 0.0);
        let p99 = quantile_floor_us(&acc, 0.99).unwrap();
        assert!(p99 <= 99_000 && 99_000 - p99 < 99_000 / 90, "{p99}");
        assert_eq!(quantile_floor_us(&Acc::new(), 0.5), None);
    }
}
