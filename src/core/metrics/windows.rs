//! Latency histograms over sliding time windows (10 s, 1 min, 5 min) and all time.
//!
//! Why exponential histograms (`exphist`, Prometheus native schema 6): a
//! fixed relative error (every reported quantile within 1 %, 0.55 % in
//! fact) from 1 µs to 1 hour in a few hundred bytes, and two of them merge
//! by adding counts bucket by bucket, which is exact: the merge of the
//! histograms of several time slices, series or processes is the histogram
//! of all their samples. Averaging percentiles, the usual shortcut, is not.
//!
//! Why slices: one histogram cannot forget what has left a sliding window
//! without remembering every sample. So each window is a ring of time slices
//! and a read merges the live ones. Rings rotate lazily when they are recorded
//! to (reads see the slices live at their `now` without moving the ring), with
//! `now` in milliseconds from the caller, never from a timer.
//!
//! | window | ring        | what a read covers                              |
//! |--------|-------------|-------------------------------------------------|
//! | 10 s   | 5 × 2 s     | the current slice plus 4 full ones: 8 to 10 s   |
//! | 1 min  | 6 × 10 s    | 50 to 60 s                                      |
//! | 5 min  | 5 × 60 s    | 240 to 300 s                                    |
//! | all    | one         | everything since creation or reset              |
//!
//! Three rings (16 slices) rather than one ring of 2 s slices: 5 minutes of
//! 2 s slices would be 150 histograms per series. The read reports the span it
//! actually covers ([`SliceRing::covered_ms`](crate::core::time_ring::SliceRing::covered_ms)) so rates are not skewed by the
//! partly filled current slice.
//!
//! Why one write per sample: recording is the hot path, and writing every
//! sample to three rings cost three histogram updates. A sample goes to the
//! 2 s head (and all time) only; when the 2 s ring moves on, the finished
//! slice is merged once into the 10 s and 60 s slices that hold its time
//! (one origin for all rings, and 2 s divides both, so it lies in exactly
//! one of each). Reads add the 2 s head that is not folded yet, and never
//! move the rings (only records do), so a longer ring cannot move past a
//! slice still to be folded into it. The merge gives the same counts, range
//! and width as writing each sample, so memory is unchanged; the longer
//! rings' slices are just allocated one 2 s slice later.
//!
//! # Memory (bounded, lazy, and counted exactly)
//!
//! A slice's histogram holds only the range of buckets it has seen (plus 16
//! on each side, so a spread does not regrow on every new bucket), in u8
//! counts widened to u16/u32/u64 when one overflows. Latencies spread over
//! 1–500 ms fill ~575 buckets: a busy series (16 slices, 3 running sums and
//! all time) holds about 13–14 KB, the test `a_busy_series_holds_all_windows_and_all_time_in_16_kb`
//! checks <= 16 KB at 10, 100 and 1 000 requests a second (the HDR layout
//! this replaced held ~223 KB). The worst case, every slice spanning
//! 1 µs .. 1 h with u64 counts, is 20 × 2 033 × 8 bytes (~325 KB).
//! A slice allocates on its first sample and a slice that rotates is
//! cleared in place, never freed, so memory does not churn.
//!
//! Why running sums: a read used to merge every live slice of its ring
//! (~6 µs a route). Each ring also keeps the exact sum of its slices (the
//! 10 s ring's without the head being written), added to when a slice is
//! folded in and subtracted from when one expires, so a read adds one
//! histogram (plus the 2 s head not folded yet) and takes out the slices
//! that expired since the ring last moved. Counts are integers, so the sum
//! is exact (test `running_sums_equal_the_merge_of_the_live_slices`). They
//! add three histograms of the spread to a busy series: ~13.0 KB at 10 and
//! 100 requests a second, ~14.2 KB at 1 000.
//!
//! A store can cap the bytes of all its window slices together with a
//! [`WindowBudget`]; see [`LatencyWindows::record_within`].
//!
//! Cost: [`LatencyWindows::record`] computes the bucket once (a table
//! lookup on the float's mantissa, no logarithm) and bumps four counters;
//! run the ignored `record_timing` test to measure.
//!
//! Reads go through an [`Aggregate`]; exports stay in the HdrHistogram V2
//! interchange form (see `hdr_v2`), exact bucket by bucket.

use std::mem::size_of;

#[cfg(doc)]
use super::aggregate::Aggregate;
use super::budget::WindowBudget;
use crate::core::exphist::{index_us, Acc, ExpHist, MAX_US, MIN_US};
use crate::core::time_ring::{RingSpec, SliceRing, Slot};

/// The windows a read can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Window {
    /// The last 10 seconds (5 slices of 2 s).
    TenSeconds,
    /// The last minute (6 slices of 10 s).
    OneMinute,
    /// The last 5 minutes (5 slices of 60 s).
    FiveMinutes,
    /// Everything since creation or reset.
    AllTime,
}

impl Window {
    /// Every window, shortest first.
    pub const ALL: [Window; 4] = [
        Window::TenSeconds,
        Window::OneMinute,
        Window::FiveMinutes,
        Window::AllTime,
    ];

    /// The window's name in the JS API and the binding (`10s`, `1m`, `5m`, `all`).
    ///
    /// ```
    /// use reliability_core::core::metrics::Window;
    /// assert_eq!(Window::OneMinute.as_str(), "1m");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Window::TenSeconds => "10s",
            Window::OneMinute => "1m",
            Window::FiveMinutes => "5m",
            Window::AllTime => "all",
        }
    }

    /// Index into [`RINGS`] (and into the `[_; 3]` ring arrays built from
    /// it); `None` for all-time, which has no ring.
    pub fn ring_index(self) -> Option<usize> {
        match self {
            Window::TenSeconds => Some(0),
            Window::OneMinute => Some(1),
            Window::FiveMinutes => Some(2),
            Window::AllTime => None,
        }
    }
}

/// The rings behind the 10 s, 1 min and 5 min windows, in [`Window::ring_index`] order.
pub const RINGS: [RingSpec; 3] = [
    RingSpec {
        slice_ms: 2_000.0,
        slices: 5,
    },
    RingSpec {
        slice_ms: 10_000.0,
        slices: 6,
    },
    RingSpec {
        slice_ms: 60_000.0,
        slices: 5,
    },
];

/// Builds the three rings of [`RINGS`].
pub fn new_rings<T: Slot>(now: f64) -> [SliceRing<T>; 3] {
    RINGS.map(|spec| SliceRing::new(spec, now))
}

/// One slice: its histogram and the exact sum of its samples in µs, so a
/// mean costs a division instead of a walk.
#[derive(Debug, Default)]
struct HistSlot(ExpHist, u64);

impl Slot for HistSlot {
    fn clear(&mut self) {
        self.0.clear();
        self.1 = 0;
    }
}

impl HistSlot {
    fn heap_bytes(&self) -> usize {
        self.0.heap_bytes()
    }

    /// Adds `src` (a running sum taking in a slice), drawing growth from `budget`.
    fn merge_from(&mut self, src: &HistSlot, budget: &mut WindowBudget) -> bool {
        if !self.0.merge_from(&src.0, |bytes| budget.take(bytes)) {
            return false;
        }
        self.1 += src.1;
        true
    }

    /// Takes `src` back out (a running sum losing a slice that expires).
    fn subtract(&mut self, src: &HistSlot) {
        // A running sum holds every slice it took in: always contained.
        let contained = self.0.subtract(&src.0);
        debug_assert!(contained, "a running sum lost track of a slice");
        self.1 = self.1.saturating_sub(src.1);
    }
}

/// Moves `ring` to `now`, taking each slice it expires out of `sum`, the
/// running sum of its slices.
#[inline]
fn advance_summed(ring: &mut SliceRing<HistSlot>, sum: &mut HistSlot, now: f64) {
    ring.advance_with(now, |slot| sum.subtract(slot));
}

/// What [`LatencyWindows::record`] did with a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Recorded as this many microseconds (values under 1 µs become 1).
    Exact(u64),
    /// Above one hour: recorded as [`MAX_US`] and counted in `clamped()`.
    Clamped(u64),
    /// NaN, infinite or negative: not recorded.
    Rejected,
}

impl Recorded {
    /// The microseconds that went into the histograms, if any.
    pub fn micros(self) -> Option<u64> {
        match self {
            Recorded::Exact(us) | Recorded::Clamped(us) => Some(us),
            Recorded::Rejected => None,
        }
    }
}

/// Turns a caller's duration into what the histograms store. Rounds to the
/// nearest microsecond: that is the resolution of the bottom of the range.
pub fn quantize(value_us: f64) -> Recorded {
    if !value_us.is_finite() || value_us < 0.0 {
        return Recorded::Rejected;
    }
    if value_us > MAX_US as f64 {
        return Recorded::Clamped(MAX_US);
    }
    // `+ 0.5` then truncation is `round()` for these non-negative values (the
    // one float edge, just under 0.5, ends up as MIN_US either way), without
    // the libm call `round()` costs on baseline x86-64.
    Recorded::Exact(((value_us + 0.5) as u64).max(MIN_US))
}

/// The latency histograms of one series: three rings of exponential
/// histograms (one per slice) and an all-time one, all at schema 6. Reads
/// go through an [`Aggregate`], which the caller owns so that one scratch
/// histogram serves every series.
#[derive(Debug)]
pub struct LatencyWindows {
    rings: [SliceRing<HistSlot>; 3],
    /// The running merge of each ring: the exact sum of its slices (for the
    /// 10 s ring, of all but the 2 s head being written, which stays out
    /// so a record writes one histogram), so a read adds one histogram
    /// instead of every live slice. A slice is added when it is folded in
    /// and subtracted when it expires; counts are integers, so the sum is
    /// exact. Its min and max are only bounds: reads take the extremes
    /// from the slices' headers.
    sums: [HistSlot; 3],
    all_time: ExpHist,
    /// Exact sum of the all-time samples, µs.
    all_sum: u64,
    clamped: u64,
    /// False once a [`WindowBudget`] refused this series a slice; until reset.
    windows: bool,
}

impl LatencyWindows {
    /// Empty windows whose slices start at `now` (ms); nothing is allocated until the first sample.
    pub fn new(now: f64) -> Self {
        LatencyWindows {
            rings: new_rings(now),
            sums: Default::default(),
            all_time: ExpHist::default(),
            all_sum: 0,
            clamped: 0,
            windows: true,
        }
    }

    /// Records one duration in microseconds at `now` (ms) into the current
    /// slice of every ring and into all time, with no cap on memory.
    pub fn record(&mut self, value_us: f64, now: f64) -> Recorded {
        self.record_within(value_us, now, &mut WindowBudget::unlimited())
    }

    /// As [`record`](Self::record), drawing the bytes of every slice it
    /// allocates or grows from `budget`. When the budget cannot cover one,
    /// this series gives up its windows: its slices are freed (their bytes go
    /// back to the budget) and window reads see no latency until
    /// [`reset`](Self::reset); all time keeps recording. The whole series
    /// rather than single samples, so that a window's latency is either
    /// complete or visibly absent ([`has_windows`](Self::has_windows)), never
    /// silently missing part of its samples. Draw on one budget for the whole
    /// life of a `LatencyWindows`.
    #[inline]
    pub fn record_within(
        &mut self,
        value_us: f64,
        now: f64,
        budget: &mut WindowBudget,
    ) -> Recorded {
        let r = quantize(value_us);
        let Some(us) = r.micros() else { return r };
        if matches!(r, Recorded::Clamped(_)) {
            self.clamped += 1;
        }
        // One bucket index for the four histograms the sample goes to.
        let idx = index_us(us);
        if self.windows && !self.record_windows(us, idx, now, budget) {
            self.drop_windows(budget);
        }
        self.all_time.record(us, idx, |_| true);
        self.all_sum += us;
        r
    }

    /// One write per sample: into the 2 s head only. The 1 min and 5 min
    /// rings get a finished 2 s slice in one merge when the 2 s ring moves
    /// on ([`fold_head`](Self::fold_head)); reads add the 2 s head that is
    /// not folded yet. Slice boundaries share one origin and 2 s divides
    /// 10 s and 60 s, so a 2 s slice lies in exactly one slice of each.
    #[inline]
    fn record_windows(&mut self, us: u64, idx: i32, now: f64, budget: &mut WindowBudget) -> bool {
        if self.rings[0].steps_to(now) > 0 {
            if !self.fold_head(budget) {
                return false;
            }
            advance_summed(&mut self.rings[0], &mut self.sums[0], now);
        }
        let head = self.rings[0].head(now);
        if !head.0.record(us, idx, |bytes| budget.take(bytes)) {
            return false;
        }
        head.1 += us;
        true
    }

    /// Merges the 2 s head into the slices of the longer rings that hold
    /// its time, and into every running sum (the 10 s ring's takes it in
    /// now that it is finished), before the 2 s ring moves past it.
    #[cold]
    fn fold_head(&mut self, budget: &mut WindowBudget) -> bool {
        let [short, rest @ ..] = &mut self.rings;
        let [short_sum, rest_sums @ ..] = &mut self.sums;
        let at = short.head_start();
        let src = short.head_slot();
        if src.0.is_empty() {
            return true;
        }
        if !short_sum.merge_from(src, budget) {
            return false;
        }
        for (ring, sum) in rest.iter_mut().zip(rest_sums) {
            advance_summed(ring, sum, at);
            let dst = ring.head(at);
            if !dst.merge_from(src, budget) || !sum.merge_from(src, budget) {
                return false;
            }
        }
        true
    }

    /// The 2 s head not yet folded into ring `i` (1 or 2), when the slice of
    /// ring `i` that it belongs to is still live at `now`.
    fn unfolded(&self, i: usize, now: f64) -> Option<&HistSlot> {
        let short = &self.rings[0];
        let ring = &self.rings[i];
        let at = short.head_start();
        // A clock that went back reads as the newest slice, as `head` would take it.
        let age = ring.steps_to(now).saturating_sub(ring.steps_to(at));
        (age < ring.len()).then(|| short.head_slot())
    }

    fn drop_windows(&mut self, budget: &mut WindowBudget) {
        let slots = self.rings.iter_mut().flat_map(|r| r.iter_mut());
        for slot in slots.chain(self.sums.iter_mut()) {
            budget.give_back(slot.heap_bytes());
            *slot = HistSlot::default();
        }
        self.windows = false;
    }

    /// Adds window ring `i` as of `now` to `acc`, without moving the rings
    /// (a longer ring moved ahead of an unfolded 2 s slice would take the
    /// fold in the wrong slice). From the running sum, minus the slices that
    /// expired since the ring last moved, plus the 2 s head not folded into
    /// it; from the live slices one by one when more expired than remain.
    pub(super) fn add_ring(&self, acc: &mut Acc, i: usize, now: f64) {
        let ring = &self.rings[i];
        let n = ring.len();
        let expired = ring.steps_to(now).min(n);
        // The 10 s ring's head is live but not in its sum; a longer ring's
        // sum holds its head and misses the unfolded 2 s head.
        let unfolded = if i == 0 {
            (expired < n).then(|| ring.head_slot())
        } else {
            self.unfolded(i, now)
        };
        if expired > n - expired {
            for slot in ring.live(now) {
                acc.add(&slot.0, slot.1 as f64);
            }
            if i > 0 {
                if let Some(slot) = unfolded {
                    acc.add(&slot.0, slot.1 as f64);
                }
            }
            return;
        }
        let sum = &self.sums[i];
        acc.add_counts(&sum.0, sum.1 as f64);
        // The oldest `expired` slots: still in the sum, no longer live.
        for slot in ring.expiring(now) {
            acc.subtract_counts(&slot.0, slot.1 as f64);
        }
        // The exact extremes, from the headers of the live slices (the
        // unfolded head brings its own with `add`).
        for slot in ring.live(now) {
            if let Some((lo, hi)) = slot.0.min_max() {
                acc.include_extremes(lo, hi);
            }
        }
        if let Some(slot) = unfolded {
            acc.add(&slot.0, slot.1 as f64);
        }
    }

    /// False after a [`WindowBudget`] refused this series memory: its window
    /// reads then have no latency (count 0) until reset.
    pub fn has_windows(&self) -> bool {
        self.windows
    }

    /// The all-time histogram (empty until the first sample).
    pub fn all_time(&self) -> &ExpHist {
        &self.all_time
    }

    /// Exact sum of every sample since creation or reset, µs.
    pub fn all_time_sum_us(&self) -> u64 {
        self.all_sum
    }

    /// Samples above one hour, recorded as one hour.
    pub fn clamped(&self) -> u64 {
        self.clamped
    }

    /// Milliseconds the window's slices cover at `now`; `None` for all time,
    /// whose span the owner knows (it is "since creation or reset").
    pub fn covered_ms(&mut self, window: Window, now: f64) -> Option<f64> {
        // Without moving the rings: only records move them (see `record_windows`).
        window
            .ring_index()
            .map(|i| self.rings[i].covered_ms_at(now))
    }

    /// Empties every histogram, keeping their allocations, and gives a series
    /// that lost its windows to the budget another try.
    pub fn reset(&mut self, now: f64) {
        self.rings.iter_mut().for_each(|r| r.reset(now));
        self.sums.iter_mut().for_each(Slot::clear);
        self.all_time.clear();
        self.all_sum = 0;
        self.clamped = 0;
        self.windows = true;
    }

    /// Slices whose histogram holds an allocation (at most 16).
    /// (The running sums are not slices; their bytes are in
    /// [`window_bytes`](Self::window_bytes).)
    pub fn allocated_slices(&self) -> usize {
        self.rings
            .iter()
            .flat_map(|r| r.iter())
            .filter(|s| s.heap_bytes() > 0)
            .count()
    }

    /// Bytes of the window slices' and running sums' counts: what a
    /// [`WindowBudget`] counts.
    pub fn window_bytes(&self) -> usize {
        self.rings
            .iter()
            .flat_map(|r| r.iter())
            .chain(&self.sums)
            .map(HistSlot::heap_bytes)
            .sum()
    }

    /// Bytes this series holds on the heap: the slots (histogram headers
    /// and sums) and the counts of every histogram.
    pub fn heap_bytes(&self) -> usize {
        let slots: usize = self
            .rings
            .iter()
            .map(|r| r.len() * size_of::<HistSlot>())
            .sum();
        slots + self.window_bytes() + self.all_time.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::metrics::aggregate::Aggregate;
    use crate::core::rng::SplitMix64;

    /// The longer windows are filled by folding finished 2 s slices; reads
    /// in between (which never move the rings) and idle gaps must give the
    /// same samples as writing each one to every ring.
    #[test]
    fn folded_windows_hold_exactly_the_samples_of_their_slices() {
        let mut rng = SplitMix64::new(7);
        let mut w = LatencyWindows::new(0.0);
        let mut seen: Vec<(f64, u64)> = Vec::new();
        let mut t = 0.0;
        let mut agg = Aggregate::new();
        for step in 0..4_000 {
            // Mostly small steps, sometimes a gap longer than a slice or a window.
            let r = rng.next_u64() % 100;
            t += match r {
                0 => 400_000.0,
                1..=5 => 15_000.0,
                _ => (rng.next_u64() % 700) as f64,
            };
            let us = 100 + rng.next_u64() % 2_000_000;
            w.record(us as f64, t);
            seen.push((t, us));
            if step % 7 == 0 {
                let now = t + (rng.next_u64() % 3_000) as f64;
                for (window, spec) in [Window::TenSeconds, Window::OneMinute, Window::FiveMinutes]
                    .into_iter()
                    .zip(RINGS)
                {
                    let live = |at: f64| {
                        (now / spec.slice_ms).floor() - (at / spec.slice_ms).floor()
                            < spec.slices as f64
                    };
                    let (n, sum) = seen
                        .iter()
                        .filter(|(at, _)| live(*at))
                        .fold((0u64, 0u64), |(n, s), (_, us)| (n + 1, s + us));
                    let p = agg.window_percentiles(&mut w, window, now);
                    assert_eq!(p.count, n, "{window:?} at {now}");
                    assert_eq!(
                        p.mean_us.round() as u64,
                        if n == 0 {
                            0
                        } else {
                            (sum as f64 / n as f64).round() as u64
                        },
                        "{window:?} at {now}"
                    );
                }
            }
        }
    }

    /// A window read the slow way: every live slice, one by one (what reads
    /// did before the running sums).
    fn read_from_scratch(w: &LatencyWindows, i: usize, now: f64) -> Acc {
        let mut acc = Acc::new();
        for slot in w.rings[i].live(now) {
            acc.add(&slot.0, slot.1 as f64);
        }
        if i > 0 {
            if let Some(slot) = w.unfolded(i, now) {
                acc.add(&slot.0, slot.1 as f64);
            }
        }
        acc
    }

    /// After random records, idle gaps, clock noise, reads and resets, each
    /// running sum is the from-scratch merge of its ring's slices (the 10 s
    /// ring's without its head), and every read equals the slow one, min,
    /// max and mean included.
    #[test]
    fn running_sums_equal_the_merge_of_the_live_slices() {
        for seed in 0..12 {
            let mut rng = SplitMix64::new(100 + seed);
            let mut w = LatencyWindows::new(0.0);
            let mut agg = Aggregate::new();
            let mut t = 0.0;
            for step in 0..3_000 {
                t += match rng.next_u64() % 200 {
                    0 => 400_000.0,
                    1..=3 => 61_000.0,
                    4..=12 => 9_000.0,
                    13 => -500.0, // clock noise
                    _ => (rng.next_u64() % 900) as f64,
                };
                let us = 50 + rng.next_u64() % (1 + (rng.next_u64() % 3_000_000));
                w.record(us as f64, t);
                if step % 997 == 996 && seed % 3 == 0 {
                    w.reset(t);
                }
                for (i, ring) in w.rings.iter().enumerate() {
                    let mut scratch = HistSlot::default();
                    for slot in ring.iter() {
                        if i == 0 && std::ptr::eq(slot, ring.head_slot()) {
                            continue;
                        }
                        scratch.0.merge_from(&slot.0, |_| true);
                        scratch.1 += slot.1;
                    }
                    let sum = &w.sums[i];
                    assert!(
                        sum.0.same_counts(&scratch.0) && sum.1 == scratch.1,
                        "seed {seed} step {step} ring {i}"
                    );
                }
                if step % 5 == 0 {
                    let now = t + (rng.next_u64() % 80_000) as f64;
                    for (i, window) in [Window::TenSeconds, Window::OneMinute, Window::FiveMinutes]
                        .into_iter()
                        .enumerate()
                    {
                        agg.clear();
                        agg.add_window(&mut w, window, now);
                        let slow = read_from_scratch(&w, i, now);
                        assert_eq!(agg.histogram(), &slow, "seed {seed} step {step} {window:?}");
                        assert_eq!(agg.percentiles(), slow.percentiles());
                    }
                }
            }
        }
    }

    #[test]
    fn windows_rotate_with_injected_time() {
        let mut w = LatencyWindows::new(0.0);
        let mut agg = Aggregate::new();
        let count = |w: &mut LatencyWindows, agg: &mut Aggregate, win, now| {
            agg.window_percentiles(w, win, now).count
        };
        // Reads and records go forward in time together, as a monotonic clock would.
        w.record(100.0, 0.0);
        w.record(100.0, 8_000.0);
        // 10 s = 5 × 2 s: the sample at 0 leaves when [0, 2 s) does, at 10 s.
        assert_eq!(count(&mut w, &mut agg, Window::TenSeconds, 9_999.0), 2);
        assert_eq!(count(&mut w, &mut agg, Window::TenSeconds, 10_000.0), 1);
        w.record(100.0, 15_000.0);
        assert_eq!(count(&mut w, &mut agg, Window::TenSeconds, 20_000.0), 1);
        assert_eq!(count(&mut w, &mut agg, Window::TenSeconds, 26_000.0), 0);
        // 1 min = 6 × 10 s: [0, 10 s) leaves at 60 s, [10 s, 20 s) at 70 s.
        assert_eq!(count(&mut w, &mut agg, Window::OneMinute, 59_999.0), 3);
        assert_eq!(count(&mut w, &mut agg, Window::OneMinute, 60_000.0), 1);
        w.record(100.0, 61_000.0);
        assert_eq!(count(&mut w, &mut agg, Window::OneMinute, 70_000.0), 1);
        // 5 min = 5 × 60 s.
        assert_eq!(count(&mut w, &mut agg, Window::FiveMinutes, 299_999.0), 4);
        assert_eq!(count(&mut w, &mut agg, Window::FiveMinutes, 300_000.0), 1);
        assert_eq!(count(&mut w, &mut agg, Window::FiveMinutes, 360_000.0), 0);
        assert_eq!(count(&mut w, &mut agg, Window::AllTime, 1e9), 4);
        assert_eq!(
            w.covered_ms(Window::OneMinute, 1e9),
            Some(60_000.0 - 10_000.0)
        );
        assert_eq!(w.covered_ms(Window::AllTime, 1e9), None);
    }

    /// Nearest rank: the smallest value with at least `ceil(q * n)` samples at or below it.
    fn exact_quantile(sorted: &[u64], q: f64) -> u64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
        sorted[rank - 1]
    }

    /// The stated error of every reported quantile: 1 % (0.55 % in fact,
    /// the half-width of a schema-6 bucket, plus the rounding to 1 µs).
    const REL: f64 = 0.01;

    fn assert_within(got: u64, exact: u64, rel: f64, what: &str) {
        let err = got.abs_diff(exact) as f64;
        assert!(
            err <= exact as f64 * rel,
            "{what}: got {got}, exact {exact}"
        );
    }

    fn check_distribution(name: &str, mut sample: impl FnMut() -> f64) {
        let mut w = LatencyWindows::new(0.0);
        let mut values = Vec::new();
        for i in 0..20_000 {
            let v = sample();
            // Spread over 4 s so the 10 s window merges several slices.
            let r = w.record(v, i as f64 * 0.2);
            values.push(r.micros().unwrap());
        }
        values.sort_unstable();
        for window in Window::ALL {
            let name = format!("{name} {}", window.as_str());
            let p = Aggregate::for_window(window).window_percentiles(&mut w, window, 4_000.0);
            assert_eq!(p.count, values.len() as u64, "{name}");
            for (q, got) in [
                (0.5, p.p50_us),
                (0.9, p.p90_us),
                (0.95, p.p95_us),
                (0.99, p.p99_us),
                (0.999, p.p999_us),
            ] {
                assert_within(
                    got,
                    exact_quantile(&values, q),
                    REL,
                    &format!("{name} q{q}"),
                );
            }
            assert_eq!(p.min_us, values[0], "{name} min is exact");
            assert_eq!(p.max_us, *values.last().unwrap(), "{name} max is exact");
            let mean = values.iter().sum::<u64>() as f64 / values.len() as f64;
            assert!(
                (p.mean_us - mean).abs() <= 1e-6 * mean,
                "{name} mean is exact"
            );
        }
    }

    #[test]
    fn every_reported_quantile_is_within_1_percent() {
        let mut rng = SplitMix64::new(7);
        check_distribution("uniform 1 µs..1 s", || 1.0 + rng.next_f64() * 1e6);
        let mut rng = SplitMix64::new(8);
        // Log-uniform across six decades.
        check_distribution("log-uniform", || 10f64.powf(rng.next_f64() * 6.0));
        let mut rng = SplitMix64::new(9);
        // Mostly fast, with a slow tail: the shape p99 exists for.
        check_distribution("bimodal", || {
            if rng.next_f64() < 0.97 {
                800.0 + rng.next_f64() * 400.0
            } else {
                2e5 + rng.next_f64() * 3e6
            }
        });
    }

    #[test]
    fn out_of_range_values_are_clamped_or_rejected() {
        let mut w = LatencyWindows::new(0.0);
        assert_eq!(w.record(0.2, 0.0), Recorded::Exact(1));
        assert_eq!(w.record(0.0, 0.0), Recorded::Exact(1));
        assert_eq!(w.record(4e9, 0.0), Recorded::Clamped(MAX_US));
        assert_eq!(w.record(f64::MAX, 0.0), Recorded::Clamped(MAX_US));
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0] {
            assert_eq!(w.record(bad, 0.0), Recorded::Rejected);
        }
        assert_eq!(w.clamped(), 2);
        let p = Aggregate::new().window_percentiles(&mut w, Window::AllTime, 0.0);
        assert_eq!((p.count, p.min_us, p.max_us), (4, 1, MAX_US));
    }

    #[test]
    fn slices_are_allocated_lazily_and_reused() {
        let mut w = LatencyWindows::new(0.0);
        assert_eq!(w.allocated_slices(), 0);
        let idle = w.heap_bytes();
        assert_eq!(
            idle,
            16 * size_of::<HistSlot>(),
            "an idle series holds only its slots"
        );
        w.record(50.0, 0.0);
        // One slice: the 2 s head. The longer rings get theirs when it is
        // folded into them, as the 2 s ring moves on.
        assert_eq!(w.allocated_slices(), 1);
        w.record(50.0, 2_000.0);
        assert_eq!(w.allocated_slices(), 4);
        // Twenty minutes at one sample a second: every slot gets used, and
        // rotation clears slots in place instead of reallocating.
        for s in 0..1_200 {
            w.record(50.0, s as f64 * 1_000.0);
        }
        assert_eq!(w.allocated_slices(), 16);
        let busy = w.heap_bytes();
        for s in 1_200..2_400 {
            w.record(50.0, s as f64 * 1_000.0);
        }
        assert_eq!(w.heap_bytes(), busy);
        // One latency: 2 × 16 + 1 buckets of u8 per slice, u16 for all time
        // (2 400 samples in one bucket). The running sums: u8 for the 10 s
        // and 1 min rings, u16 for 5 min (300 samples).
        let slice = 2 * 16 + 1;
        assert_eq!(w.window_bytes(), 16 * slice + slice + slice + 2 * slice);
        assert_eq!(
            busy,
            w.window_bytes() + 2 * slice + 16 * size_of::<HistSlot>()
        );
    }

    /// The issue's target shape: a busy series (100 requests a second),
    /// latencies log-uniform over 1–500 ms, for 10 minutes so that every
    /// slice of every ring is full.
    fn busy_series(seed: u64, per_second: usize) -> LatencyWindows {
        let mut rng = SplitMix64::new(seed);
        let mut w = LatencyWindows::new(0.0);
        for s in 0..600 {
            for k in 0..per_second {
                let us = 1_000.0 * 500f64.powf(rng.next_f64());
                w.record(
                    us,
                    s as f64 * 1_000.0 + k as f64 * 1_000.0 / per_second as f64,
                );
            }
        }
        w
    }

    #[test]
    fn a_busy_series_holds_all_windows_and_all_time_in_16_kb() {
        for per_second in [10, 100, 1_000] {
            let w = busy_series(5, per_second);
            assert_eq!(w.allocated_slices(), 16);
            let bytes = w.heap_bytes();
            assert!(bytes <= 16 * 1024, "{per_second}/s: {bytes} bytes");
            // What the bytes are: 17 histograms over the ~575 buckets of
            // 1–500 ms (plus padding), u8 to u32 counts, and the slots.
            assert_eq!(
                bytes,
                w.window_bytes() + w.all_time().heap_bytes() + 16 * size_of::<HistSlot>()
            );
            eprintln!("{per_second}/s: {bytes} bytes per series");
        }
        // The old HDR layout held 228 480 bytes for the same series.
    }

    #[test]
    fn growth_keeps_every_count() {
        // Latencies that creep up grow the ranges many times; the windows
        // must hold what recording them in any order would.
        let mut rng = SplitMix64::new(21);
        let values: Vec<f64> = (0..3_000)
            .map(|i| (i as f64 * 1_000.0 + rng.next_f64() * 999.0).min(4e9))
            .collect();
        let mut grown = LatencyWindows::new(0.0);
        let mut reversed = LatencyWindows::new(0.0);
        for &v in &values {
            grown.record(v, 1.0);
        }
        for &v in values.iter().rev() {
            reversed.record(v, 1.0);
        }
        for window in Window::ALL {
            let mut a = Aggregate::for_window(window);
            let mut b = Aggregate::for_window(window);
            a.add_window(&mut grown, window, 1.0);
            b.add_window(&mut reversed, window, 1.0);
            assert_eq!(a.histogram(), b.histogram(), "{}", window.as_str());
            assert_eq!(a.percentiles(), b.percentiles());
            assert_eq!(a.percentiles().count, 3_000);
        }
    }

    #[test]
    fn a_refused_budget_takes_the_whole_series_out_of_the_windows() {
        // A first sample allocates 2 × 16 + 1 u8 buckets in the 2 s head;
        // when the 2 s ring moves on, the slice is folded into the three
        // running sums and into a new slice of the same size in each longer
        // ring, and the next 2 s slice takes one more.
        let slice = 33;
        let mut budget = WindowBudget::new(7 * slice + 10);
        let (mut a, mut b) = (LatencyWindows::new(0.0), LatencyWindows::new(0.0));
        a.record_within(50.0, 0.0, &mut budget);
        assert_eq!(
            (budget.used(), a.window_bytes(), a.allocated_slices()),
            (slice, slice, 1)
        );
        a.record_within(50.0, 2_000.0, &mut budget);
        assert_eq!(
            (budget.used(), a.window_bytes(), a.allocated_slices()),
            (7 * slice, 7 * slice, 4)
        );
        // A second series does not fit: it gets no slice at all, only all time.
        assert_eq!(b.record_within(70.0, 0.0, &mut budget), Recorded::Exact(70));
        assert!(!b.has_windows() && a.has_windows());
        assert_eq!((b.allocated_slices(), budget.used()), (0, 7 * slice));
        assert_eq!(b.all_time().count(), 1);
        let mut agg = Aggregate::for_window(Window::TenSeconds);
        assert_eq!(
            agg.window_percentiles(&mut b, Window::TenSeconds, 0.0)
                .count,
            0
        );
        // The first series rotates into a new 2 s slice: refused too, and its
        // slices go back to the budget.
        a.record_within(50.0, 4_000.0, &mut budget);
        assert!(!a.has_windows());
        assert_eq!((a.allocated_slices(), budget.used()), (0, 0));
        assert_eq!(
            agg.window_percentiles(&mut a, Window::OneMinute, 4_000.0)
                .count,
            0
        );
        assert_eq!(
            Aggregate::new()
                .window_percentiles(&mut a, Window::AllTime, 4_000.0)
                .count,
            3
        );
        // Until reset, later samples stay out of the windows even with room.
        b.record_within(70.0, 2_500.0, &mut budget);
        assert_eq!((b.allocated_slices(), budget.used()), (0, 0));
        b.reset(3_000.0);
        b.record_within(70.0, 3_000.0, &mut budget);
        assert!(b.has_windows());
        assert_eq!(budget.used(), b.window_bytes());
        // Growth draws on the budget as well: a far-away sample does not fit.
        b.record_within(4e9, 3_000.0, &mut budget);
        assert_eq!((b.has_windows(), budget.used()), (false, 0));
        assert_eq!(b.clamped(), 1);
    }

    #[test]
    #[ignore = "timing: cargo test --release -- --ignored --nocapture record_timing"]
    fn record_timing() {
        use std::hint::black_box;
        use std::time::Instant;
        // Log-uniform over 100 µs .. 2 s, across 100 series.
        let values: Vec<f64> = (0..4_096)
            .map(|i| 100.0 * 20_000f64.powf((i as f64 * 0.618_034).fract()))
            .collect();
        let mut ws: Vec<LatencyWindows> = (0..100).map(|_| LatencyWindows::new(0.0)).collect();
        let n = 20_000_000usize;
        let start = Instant::now();
        for i in 0..n {
            // 20 µs apart: 400 s in all, so every ring rotates many times.
            black_box(ws[i % 100].record(values[i & 4_095], i as f64 * 0.02));
        }
        let ns = start.elapsed().as_nanos() as f64 / n as f64;
        eprintln!("LatencyWindows::record: {ns:.1} ns per sample (all time + the 2 s ring, folds included, 100 series)");
        if !cfg!(debug_assertions) {
            assert!(ns < 100.0, "{ns} ns");
        }
    }
}
