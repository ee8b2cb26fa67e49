//! Latency histograms over sliding time windows (10 s, 1 min, 5 min) and all time.
//!
//! Why HDR histograms: they keep a fixed relative error (3 significant
//! digits, so at most 0.1 %) from 1 µs to 1 hour in a fixed amount of memory,
//! and two of them merge by adding counts, which is exact: the merge of the
//! histograms of several time slices, series or processes is the histogram of
//! all their samples. Averaging percentiles, the usual shortcut, is not.
//!
//! Why slices: one histogram cannot forget what has left a sliding window
//! without remembering every sample. So each window is a ring of time slices
//! and a read merges the live ones. Rings rotate lazily when they are recorded
//! to or read, with `now` in milliseconds from the caller, never from a timer.
//!
//! | window | ring        | what a read covers                              |
//! |--------|-------------|-------------------------------------------------|
//! | 10 s   | 5 × 2 s     | the current slice plus 4 full ones: 8 to 10 s   |
//! | 1 min  | 6 × 10 s    | 50 to 60 s                                      |
//! | 5 min  | 5 × 60 s    | 240 to 300 s                                    |
//! | all    | one u64 HDR | everything since creation or reset              |
//!
//! Three rings (16 slices) rather than one ring of 2 s slices: 5 minutes of
//! 2 s slices would be 150 histograms per series. The read reports the span it
//! actually covers ([`SliceRing::covered_ms`]) so rates are not skewed by the
//! partly filled current slice.
//!
//! # Memory (bounded, and lazy)
//!
//! With 3 significant digits HDR keeps 2048 sub-buckets (unit resolution up
//! to 2000) and then one half-bucket of 1024 counts per doubling. Covering
//! 1 µs to 1 h (3.6e9 µs < 2048 × 2^21) takes 22 buckets, so
//! (22 + 1) × 1024 = 23 552 counts:
//!
//! - one window slice, u32 counts: 23 552 × 4 = 94 208 bytes;
//! - the all-time histogram, u64 counts: 23 552 × 8 = 188 416 bytes;
//! - worst case per series: 16 × 94 208 + 188 416 = **1 695 744 bytes** of
//!   counts, plus 17 histogram headers (`size_of::<Histogram<_>>()`, 96 bytes
//!   on 64-bit) and 16 slot pointers: 1 697 504 bytes (≈ 1.62 MiB). The test
//!   `worst_case_memory_matches_the_documented_figure` checks this sum.
//!
//! That worst case needs a series that saw a one-hour latency in every one of
//! its 16 slices. Three things keep the usual case far below it:
//! - a slice's histogram is allocated only when a sample lands in it, so an
//!   idle series costs a few hundred bytes and a series busy for only the last
//!   10 s holds 4 or 5 histograms, not 17;
//! - a histogram starts at 2048 counts (8 KB for a slice) and grows (HDR
//!   auto-resize) only up to the largest latency it has seen, which the 1 h
//!   clamp bounds: a series whose requests stay under 1 s needs 11 264 counts,
//!   45 056 bytes per slice;
//! - a slice that rotates is reset in place, never freed and reallocated, so
//!   memory does not churn either.
//!
//! Slices count in u32: overflowing one bucket of a 60 s slice takes 71 million
//! samples a second at a single latency, and even then counts saturate rather
//! than wrap. The all-time histogram counts in u64 because it lives for the
//! process's whole life.

use std::mem::size_of;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::{Counter, Histogram};

use super::error::{CoreError, CoreResult};

/// Significant decimal digits kept: values are exact to within 0.1 %.
pub const SIGFIG: u8 = 3;
/// Smallest value tracked, in microseconds; anything below is recorded as this.
pub const MIN_US: u64 = 1;
/// Largest value tracked: one hour in microseconds. Larger values are clamped to it.
pub const MAX_US: u64 = 3_600_000_000;
/// Longest base64 string [`Aggregate::import`] accepts. A full 1 µs .. 1 h
/// histogram compresses to tens of kilobytes; anything much bigger is not one.
pub const MAX_IMPORT_LEN: usize = 4 << 20;

/// The windows a read can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Window {
    TenSeconds,
    OneMinute,
    FiveMinutes,
    AllTime,
}

impl Window {
    pub const ALL: [Window; 4] = [Window::TenSeconds, Window::OneMinute, Window::FiveMinutes, Window::AllTime];

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

/// Shape of one ring: `slices` slices of `slice_ms` each.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RingSpec {
    pub slice_ms: f64,
    pub slices: usize,
}

/// The rings behind the 10 s, 1 min and 5 min windows, in [`Window::ring_index`] order.
pub const RINGS: [RingSpec; 3] = [
    RingSpec { slice_ms: 2_000.0, slices: 5 },
    RingSpec { slice_ms: 10_000.0, slices: 6 },
    RingSpec { slice_ms: 60_000.0, slices: 5 },
];

/// Something kept per time slice. `clear` must empty it without freeing
/// what it allocated, so a slot that rotates is reused.
pub trait Slot: Default {
    fn clear(&mut self);
}

/// A fixed ring of equal time slices; the head holds "now". Shared by the
/// histograms here and the request counters in `signals`, so both rotate
/// by the same rules.
#[derive(Debug, Clone)]
pub struct SliceRing<T> {
    slice_ms: f64,
    slots: Box<[T]>,
    /// Index of the slot that holds `head_start`.
    head: usize,
    /// Start time of the head slot.
    head_start: f64,
    /// When the ring was made or reset: nothing before it can be in a slot.
    origin: f64,
}

impl<T: Slot> SliceRing<T> {
    pub fn new(spec: RingSpec, now: f64) -> Self {
        let n = spec.slices.max(1);
        SliceRing {
            slice_ms: spec.slice_ms,
            slots: (0..n).map(|_| T::default()).collect(),
            head: 0,
            head_start: finite_or_zero(now),
            origin: finite_or_zero(now),
        }
    }

    pub fn window_ms(&self) -> f64 {
        self.slice_ms * self.slots.len() as f64
    }

    /// Moves the head forward so that `now` falls in it, clearing the slots
    /// it passes over. Time that goes backwards, or is not finite, leaves the
    /// ring alone: a bad clock reading must not wipe or poison the ring.
    fn advance(&mut self, now: f64) {
        let elapsed = now - self.head_start;
        if !elapsed.is_finite() || elapsed < self.slice_ms {
            return;
        }
        let n = self.slots.len();
        let steps = (elapsed / self.slice_ms).floor();
        if steps >= n as f64 {
            self.slots.iter_mut().for_each(Slot::clear);
        } else {
            for _ in 0..steps as usize {
                self.head = (self.head + 1) % n;
                self.slots[self.head].clear();
            }
        }
        // Whole steps keep slice boundaries aligned to the origin.
        self.head_start += steps * self.slice_ms;
    }

    /// The slot for `now`. A sample from the past goes into the newest slot:
    /// callers pass a monotonic clock, so that only happens on clock noise.
    pub fn head(&mut self, now: f64) -> &mut T {
        self.advance(now);
        &mut self.slots[self.head]
    }

    /// Every slot as of `now`; slots older than the window are already cleared.
    pub fn slots(&mut self, now: f64) -> &[T] {
        self.advance(now);
        &self.slots
    }

    /// Milliseconds of time the live slots cover at `now`: the full slices,
    /// the elapsed part of the current one, and never before the origin.
    pub fn covered_ms(&mut self, now: f64) -> f64 {
        self.advance(now);
        let oldest = self.head_start - self.slice_ms * (self.slots.len() - 1) as f64;
        let covered = now - oldest.max(self.origin);
        if covered.is_finite() {
            covered.clamp(0.0, self.window_ms())
        } else {
            0.0
        }
    }

    pub fn reset(&mut self, now: f64) {
        self.slots.iter_mut().for_each(Slot::clear);
        self.head = 0;
        self.head_start = finite_or_zero(now);
        self.origin = self.head_start;
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter()
    }
}

fn finite_or_zero(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// Builds the three rings of [`RINGS`].
pub fn new_rings<T: Slot>(now: f64) -> [SliceRing<T>; 3] {
    RINGS.map(|spec| SliceRing::new(spec, now))
}

/// One slice's histogram, allocated on its first sample.
#[derive(Debug, Default)]
struct HistSlot(Option<Box<Histogram<u32>>>);

impl Slot for HistSlot {
    fn clear(&mut self) {
        // An empty histogram is already clear; skip the 8..94 KB memset.
        if let Some(h) = self.0.as_mut().filter(|h| !h.is_empty()) {
            h.reset();
        }
    }
}

impl HistSlot {
    fn record(&mut self, us: u64) {
        let h = self.0.get_or_insert_with(|| Box::new(growing_histogram()));
        // Cannot fail: auto-resize is on and `us` <= MAX_US.
        let _ = h.record(us);
    }

    fn heap_bytes(&self) -> usize {
        self.0.as_ref().map_or(0, |h| histogram_bytes(h))
    }
}

/// A histogram that starts small (2048 counts) and grows to the largest
/// value it is given. `record`, not `saturating_record`, must be used on it:
/// the saturating form clamps to the current size instead of growing.
fn growing_histogram<T: Counter>() -> Histogram<T> {
    Histogram::new(SIGFIG).expect("3 significant digits is a valid HDR configuration")
}

/// A histogram covering the whole 1 µs .. 1 h range from the start, for
/// merging into: anything recorded anywhere here fits it.
fn full_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(MIN_US, MAX_US, SIGFIG).expect("1 µs .. 1 h at 3 digits is a valid HDR configuration")
}

fn histogram_bytes<T: Counter>(h: &Histogram<T>) -> usize {
    size_of::<Histogram<T>>() + h.distinct_values() * size_of::<T>()
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
    Recorded::Exact((value_us.round() as u64).max(MIN_US))
}

/// The latency histograms of one series: three rings of slices and all time.
/// Reads go through an [`Aggregate`], which the caller owns so that one
/// scratch histogram serves every series.
#[derive(Debug)]
pub struct LatencyWindows {
    rings: [SliceRing<HistSlot>; 3],
    all_time: Option<Box<Histogram<u64>>>,
    clamped: u64,
}

impl LatencyWindows {
    pub fn new(now: f64) -> Self {
        LatencyWindows { rings: new_rings(now), all_time: None, clamped: 0 }
    }

    /// Records one duration in microseconds at `now` (ms) into the current
    /// slice of every ring and into all time.
    pub fn record(&mut self, value_us: f64, now: f64) -> Recorded {
        let r = quantize(value_us);
        let Some(us) = r.micros() else { return r };
        if matches!(r, Recorded::Clamped(_)) {
            self.clamped += 1;
        }
        for ring in &mut self.rings {
            ring.head(now).record(us);
        }
        let all = self.all_time.get_or_insert_with(|| Box::new(growing_histogram()));
        let _ = all.record(us); // cannot fail, as in HistSlot::record
        r
    }

    /// The all-time histogram; `None` until the first sample.
    pub fn all_time(&self) -> Option<&Histogram<u64>> {
        self.all_time.as_deref()
    }

    /// Samples above one hour, recorded as one hour.
    pub fn clamped(&self) -> u64 {
        self.clamped
    }

    /// Milliseconds the window's slices cover at `now`; `None` for all time,
    /// whose span the owner knows (it is "since creation or reset").
    pub fn covered_ms(&mut self, window: Window, now: f64) -> Option<f64> {
        window.ring_index().map(|i| self.rings[i].covered_ms(now))
    }

    /// Empties every histogram, keeping their allocations.
    pub fn reset(&mut self, now: f64) {
        self.rings.iter_mut().for_each(|r| r.reset(now));
        if let Some(h) = self.all_time.as_mut() {
            h.reset();
        }
        self.clamped = 0;
    }

    /// Slices that hold an allocated histogram (at most 16).
    pub fn allocated_slices(&self) -> usize {
        self.rings.iter().flat_map(|r| r.iter()).filter(|s| s.0.is_some()).count()
    }

    /// Bytes this series holds on the heap: slot pointers and histograms.
    pub fn heap_bytes(&self) -> usize {
        let slots: usize = self.rings.iter().map(|r| r.slots.len() * size_of::<HistSlot>()).sum();
        let slices: usize = self.rings.iter().flat_map(|r| r.iter()).map(HistSlot::heap_bytes).sum();
        slots + slices + self.all_time.as_deref().map_or(0, histogram_bytes)
    }
}

/// Summary of a histogram, in microseconds. All zero when it is empty.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    /// Lowest value equivalent to the smallest sample (HDR rounds down here).
    pub min_us: u64,
    /// Highest value equivalent to the largest sample (HDR rounds up here).
    pub max_us: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
}

impl Percentiles {
    pub fn of<T: Counter>(h: &Histogram<T>) -> Self {
        if h.is_empty() {
            return Percentiles::default();
        }
        // One pass over the counts for all five quantiles.
        let mut q = [0u64; 5];
        for (slot, v) in q.iter_mut().zip(h.value_at_quantiles([0.5, 0.9, 0.95, 0.99, 0.999])) {
            *slot = v;
        }
        Percentiles {
            count: h.len(),
            min_us: h.min_nz(),
            max_us: h.max(),
            mean_us: h.mean(),
            p50_us: q[0],
            p90_us: q[1],
            p95_us: q[2],
            p99_us: q[3],
            p999_us: q[4],
        }
    }
}

/// Adds `src` into `dst` value by value. Works across counter types and
/// sizes (slices are u32 and grown to need, aggregates u64 and full size):
/// with the same lowest value and digits every value lands in the same
/// bucket, so the merge is exact. Values beyond one hour (only a foreign
/// histogram can hold them) are clamped as recording them would have been;
/// returns how many were.
fn merge_into<T: Counter>(dst: &mut Histogram<u64>, src: &Histogram<T>) -> u64 {
    let mut clamped = 0;
    for v in src.iter_recorded() {
        let count = v.count_at_value().as_u64();
        let mut value = src.lowest_equivalent(v.value_iterated_to()).max(MIN_US);
        if value > MAX_US {
            value = MAX_US;
            clamped += count;
        }
        dst.saturating_record_n(value, count);
    }
    clamped
}

/// A scratch histogram for reads: it sums the slices of a window, several
/// series, or histograms imported from other processes, and is cleared and
/// reused between reads instead of allocated per read. It also owns the
/// serializer buffers, for the same reason.
pub struct Aggregate {
    hist: Histogram<u64>,
    clamped: u64,
    bytes: Vec<u8>,
    serializer: V2DeflateSerializer,
    deserializer: Deserializer,
}

impl Default for Aggregate {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Aggregate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aggregate").field("count", &self.hist.len()).field("clamped", &self.clamped).finish()
    }
}

impl Aggregate {
    pub fn new() -> Self {
        Aggregate {
            hist: full_histogram(),
            clamped: 0,
            bytes: Vec::new(),
            serializer: V2DeflateSerializer::new(),
            deserializer: Deserializer::new(),
        }
    }

    pub fn clear(&mut self) {
        self.hist.reset();
        self.clamped = 0;
    }

    /// Adds the window of `src` as of `now`.
    pub fn add_window(&mut self, src: &mut LatencyWindows, window: Window, now: f64) {
        match window.ring_index() {
            None => {
                if let Some(h) = src.all_time.as_deref() {
                    self.clamped += merge_into(&mut self.hist, h);
                }
            }
            Some(i) => {
                for slot in src.rings[i].slots(now) {
                    if let Some(h) = slot.0.as_deref() {
                        self.clamped += merge_into(&mut self.hist, h);
                    }
                }
            }
        }
    }

    /// Adds any HDR histogram (values in microseconds).
    pub fn add_histogram<T: Counter>(&mut self, h: &Histogram<T>) {
        self.clamped += merge_into(&mut self.hist, h);
    }

    pub fn histogram(&self) -> &Histogram<u64> {
        &self.hist
    }

    pub fn percentiles(&self) -> Percentiles {
        Percentiles::of(&self.hist)
    }

    /// Values above one hour met while merging imported histograms.
    pub fn clamped(&self) -> u64 {
        self.clamped
    }

    /// Clears, adds one window of `src` and summarises it.
    pub fn window_percentiles(&mut self, src: &mut LatencyWindows, window: Window, now: f64) -> Percentiles {
        self.clear();
        self.add_window(src, window, now);
        self.percentiles()
    }

    /// Appends the histogram to `out` in the HdrHistogram interchange form:
    /// V2 compressed encoding (zlib), then standard base64, the same string
    /// the Java, Go and JS implementations read and write.
    pub fn export(&mut self, out: &mut String) -> CoreResult<()> {
        self.bytes.clear();
        self.serializer
            .serialize(&self.hist, &mut self.bytes)
            .map_err(|e| CoreError::range("histogram", "counts the HDR V2 format can encode", format!("{e:?}")))?;
        BASE64.encode_string(&self.bytes, out);
        Ok(())
    }

    /// Merges a base64 V2 histogram (compressed or not, as [`Aggregate::export`]
    /// or another HdrHistogram implementation writes it) into this one and
    /// returns how many samples it held. On error nothing is merged.
    ///
    /// The decoder trusts the sizes in the histogram's header, as the
    /// hdrhistogram crate does: import histograms from your own processes,
    /// not from untrusted clients.
    pub fn import(&mut self, encoded: &str) -> CoreResult<u64> {
        const WHAT: &str = "a base64 HdrHistogram in V2 encoding";
        let encoded = encoded.trim();
        if encoded.is_empty() || encoded.len() > MAX_IMPORT_LEN {
            return Err(CoreError::range("histogram", &format!("{WHAT} of 1 to {MAX_IMPORT_LEN} characters"), format!("{} characters", encoded.len())));
        }
        self.bytes.clear();
        BASE64
            .decode_vec(encoded, &mut self.bytes)
            .map_err(|e| CoreError::range("histogram", WHAT, format!("invalid base64 ({e})")))?;
        let h: Histogram<u64> = self
            .deserializer
            .deserialize(&mut self.bytes.as_slice())
            .map_err(|e| CoreError::range("histogram", WHAT, format!("undecodable bytes ({e})")))?;
        self.add_histogram(&h);
        Ok(h.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::rng::SplitMix64;

    /// A counter slot, to test the ring on its own.
    #[derive(Debug, Default)]
    struct N(u64);
    impl Slot for N {
        fn clear(&mut self) {
            self.0 = 0;
        }
    }

    fn ring_sum(r: &mut SliceRing<N>, now: f64) -> u64 {
        r.slots(now).iter().map(|n| n.0).sum()
    }

    #[test]
    fn ring_forgets_slices_as_they_leave_and_reports_its_span() {
        let mut r: SliceRing<N> = SliceRing::new(RingSpec { slice_ms: 2_000.0, slices: 5 }, 0.0);
        r.head(0.0).0 += 1;
        r.head(1_999.0).0 += 10;
        r.head(8_500.0).0 += 100;
        assert_eq!(ring_sum(&mut r, 9_999.0), 111);
        // At 10 s the slice [0, 2 s) has left the window.
        assert_eq!(ring_sum(&mut r, 10_000.0), 100);
        assert_eq!(r.covered_ms(10_000.0), 8_000.0);
        assert_eq!(r.covered_ms(11_000.0), 9_000.0);
        // A long idle gap clears everything in one step, not one slot per slice elapsed.
        assert_eq!(ring_sum(&mut r, 1e12), 0);
    }

    #[test]
    fn ring_span_starts_at_the_origin_and_bad_clocks_are_harmless() {
        let mut r: SliceRing<N> = SliceRing::new(RINGS[2], 1_000.0);
        assert_eq!(r.covered_ms(4_000.0), 3_000.0);
        r.head(4_000.0).0 += 1;
        // Backwards, NaN and infinite times neither rotate nor poison the ring.
        for t in [0.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            r.head(t).0 += 1;
            let c = r.covered_ms(t);
            assert!((0.0..=300_000.0).contains(&c), "{t}: {c}");
        }
        assert_eq!(ring_sum(&mut r, 5_000.0), 5);
        assert_eq!(r.covered_ms(5_000.0), 4_000.0);
    }

    #[test]
    fn windows_rotate_with_injected_time() {
        let mut w = LatencyWindows::new(0.0);
        let mut agg = Aggregate::new();
        let count = |w: &mut LatencyWindows, agg: &mut Aggregate, win, now| agg.window_percentiles(w, win, now).count;
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
        assert_eq!(w.covered_ms(Window::OneMinute, 1e9), Some(60_000.0 - 10_000.0));
        assert_eq!(w.covered_ms(Window::AllTime, 1e9), None);
    }

    /// HDR's quantile: the smallest value with at least `ceil(q * n)` samples at or below it.
    fn exact_quantile(sorted: &[u64], q: f64) -> u64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
        sorted[rank - 1]
    }

    fn assert_within_hdr_error(got: u64, exact: u64, what: &str) {
        let err = got.abs_diff(exact) as f64;
        assert!(err <= exact as f64 * 0.001, "{what}: got {got}, exact {exact}");
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
        let mut agg = Aggregate::new();
        for window in [Window::TenSeconds, Window::AllTime] {
            let p = agg.window_percentiles(&mut w, window, 4_000.0);
            assert_eq!(p.count, values.len() as u64, "{name}");
            for (q, got) in [(0.5, p.p50_us), (0.9, p.p90_us), (0.95, p.p95_us), (0.99, p.p99_us), (0.999, p.p999_us)] {
                assert_within_hdr_error(got, exact_quantile(&values, q), &format!("{name} q{q}"));
            }
            assert_within_hdr_error(p.min_us, values[0], &format!("{name} min"));
            assert_within_hdr_error(p.max_us, *values.last().unwrap(), &format!("{name} max"));
            let mean = values.iter().sum::<u64>() as f64 / values.len() as f64;
            assert!((p.mean_us - mean).abs() <= mean * 0.001, "{name} mean {} vs {mean}", p.mean_us);
        }
    }

    #[test]
    fn percentiles_are_within_hdr_relative_error() {
        let mut rng = SplitMix64::new(7);
        check_distribution("uniform 1 µs..1 s", || 1.0 + rng.next_f64() * 1e6);
        let mut rng = SplitMix64::new(8);
        // Log-uniform across six decades: every HDR bucket size gets used.
        check_distribution("log-uniform", || 10f64.powf(rng.next_f64() * 6.0));
        let mut rng = SplitMix64::new(9);
        // Mostly fast, with a slow tail: the shape p99 exists for.
        check_distribution("bimodal", || if rng.next_f64() < 0.97 { 800.0 + rng.next_f64() * 400.0 } else { 2e5 + rng.next_f64() * 3e6 });
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
        assert_eq!((p.count, p.min_us), (4, 1));
        assert!(w.all_time().unwrap().equivalent(p.max_us, MAX_US));
    }

    #[test]
    fn slices_are_allocated_lazily_and_reused() {
        let mut w = LatencyWindows::new(0.0);
        assert_eq!(w.allocated_slices(), 0);
        let idle = w.heap_bytes();
        assert!(idle < 200, "an idle series holds only slot pointers, got {idle}");
        w.record(50.0, 0.0);
        // One slice per ring, plus all time.
        assert_eq!(w.allocated_slices(), 3);
        // Twenty minutes at one sample a second: every slot gets used, and
        // rotation resets slots instead of adding any.
        for s in 0..1_200 {
            w.record(50.0, s as f64 * 1_000.0);
        }
        assert_eq!(w.allocated_slices(), 16);
        let busy = w.heap_bytes();
        for s in 1_200..2_400 {
            w.record(50.0, s as f64 * 1_000.0);
        }
        assert_eq!(w.heap_bytes(), busy);
        // Small latencies keep slices at their starting size (2048 counts).
        assert!(busy < 16 * (2048 * 4 + 200) + 2048 * 8 + 400, "{busy}");
    }

    #[test]
    fn worst_case_memory_matches_the_documented_figure() {
        let mut w = LatencyWindows::new(0.0);
        // An hour-long request in every slice of every ring.
        for s in 0..300 {
            w.record(4e9, s as f64 * 1_000.0);
        }
        assert_eq!(w.allocated_slices(), 16);
        let counts = 23_552;
        assert_eq!(w.all_time().unwrap().distinct_values(), counts);
        let documented = 16 * counts * 4 + counts * 8;
        assert_eq!(documented, 1_695_744);
        let headers = 16 * size_of::<Histogram<u32>>() + size_of::<Histogram<u64>>() + 16 * size_of::<HistSlot>();
        assert_eq!(w.heap_bytes(), documented + headers);
        assert!(headers < 2_000, "{headers}");
    }

    #[test]
    fn export_import_round_trip_is_exact() {
        let mut w = LatencyWindows::new(0.0);
        let mut rng = SplitMix64::new(3);
        for i in 0..5_000 {
            w.record(10f64.powf(rng.next_f64() * 7.0), i as f64);
        }
        let mut a = Aggregate::new();
        a.add_window(&mut w, Window::OneMinute, 5_000.0);
        let mut s = String::from("prefix:");
        a.export(&mut s).unwrap();
        let encoded = s.strip_prefix("prefix:").unwrap();
        // The compressed V2 cookie 0x1c849314, base64-encoded.
        assert!(encoded.starts_with("HISTF"), "{}", &encoded[..8]);
        let mut b = Aggregate::new();
        assert_eq!(b.import(encoded).unwrap(), 5_000);
        assert_eq!(b.histogram(), a.histogram());
        assert_eq!(b.percentiles(), a.percentiles());
    }

    #[test]
    fn merging_two_exports_equals_recording_everything_in_one() {
        let (mut x, mut y, mut both) = (LatencyWindows::new(0.0), LatencyWindows::new(0.0), LatencyWindows::new(0.0));
        let mut rng = SplitMix64::new(11);
        for i in 0..4_000 {
            let v = 10f64.powf(rng.next_f64() * 6.5);
            if i % 3 == 0 { &mut x } else { &mut y }.record(v, i as f64);
            both.record(v, i as f64);
        }
        let mut agg = Aggregate::new();
        let mut exports = Vec::new();
        for w in [&mut x, &mut y] {
            agg.clear();
            agg.add_window(w, Window::AllTime, 4_000.0);
            let mut s = String::new();
            agg.export(&mut s).unwrap();
            exports.push(s);
        }
        let mut merged = Aggregate::new();
        for e in &exports {
            merged.import(e).unwrap();
        }
        let mut direct = Aggregate::new();
        direct.add_window(&mut both, Window::AllTime, 4_000.0);
        assert_eq!(merged.histogram(), direct.histogram());
        assert_eq!(merged.percentiles(), direct.percentiles());
        assert_eq!(merged.percentiles().count, 4_000);
    }

    #[test]
    fn imports_of_foreign_histograms_clamp_what_exceeds_an_hour() {
        let mut foreign: Histogram<u64> = Histogram::new_with_bounds(1, 100 * MAX_US, 3).unwrap();
        foreign.record(10 * MAX_US).unwrap();
        foreign.record(500).unwrap();
        let mut bytes = Vec::new();
        V2DeflateSerializer::new().serialize(&foreign, &mut bytes).unwrap();
        let mut agg = Aggregate::new();
        assert_eq!(agg.import(&BASE64.encode(&bytes)).unwrap(), 2);
        assert_eq!(agg.clamped(), 1);
        assert!(agg.histogram().equivalent(agg.percentiles().max_us, MAX_US));
    }

    #[test]
    fn garbage_imports_are_errors_and_merge_nothing() {
        let mut good = Aggregate::new();
        good.add_histogram(&{
            let mut h: Histogram<u64> = full_histogram();
            h.record(1234).unwrap();
            h
        });
        let mut s = String::new();
        good.export(&mut s).unwrap();
        let truncated = &s[..s.len() / 2];
        let mut agg = Aggregate::new();
        for bad in ["", "   ", "not base64 at all!", "AAAAAAAA", "HISTFAAAAA==", truncated, &"A".repeat(MAX_IMPORT_LEN + 4)] {
            let e = agg.import(bad).unwrap_err();
            assert!(e.message.starts_with("histogram must be"), "{}", e.message);
        }
        assert_eq!(agg.histogram().len(), 0);
    }
}
