//! Latency histograms over sliding time windows (10 s, 1 min, 5 min) and all time.
//!
//! Why HDR histograms: they keep a fixed relative error from 1 µs to 1 hour
//! in bounded memory, and two of them merge by adding counts, which is exact:
//! the merge of the histograms of several time slices, series or processes is
//! the histogram of all their samples. Averaging percentiles, the usual
//! shortcut, is not.
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
//! # Precision: windows within 1 %, all time within 0.1 %
//!
//! Window slices keep 2 significant digits ([`WINDOW_SIGFIG`]): above 256 µs
//! a bucket is at most 1/128 of its values wide, so a window percentile is
//! within 0.8 % of the exact sample (below 256 µs it is exact). The all-time
//! histogram keeps 3 ([`SIGFIG`]): buckets 1/1024 wide, within 0.1 %.
//!
//! Why the split: memory. A series holds 16 slices and one all-time
//! histogram, so the slices are most of its memory, and one digit less makes a
//! slice 7 times smaller. The all-time histogram is the one that needs the
//! precision: it feeds the Prometheus buckets and the exports other processes
//! merge, and it lives for the whole process. A "p99 over the last minute"
//! read off a dashboard does not need better than 1 %.
//!
//! Merging across the two precisions: every HDR bucket is a power of two wide
//! and starts at a multiple of its width, so a 3-digit bucket lies inside the
//! 2-digit bucket of the same values. Merging 3 digits into 2 is therefore
//! exact (the same as recording the samples at 2 digits). Merging 2 into 3 puts
//! each count at its bucket's lowest value, as HDR's own `add` does, and keeps
//! the 1 % error. So window reads use a 2-digit [`Aggregate`]
//! ([`Aggregate::for_window`]) and report exactly what one 2-digit histogram of
//! the window's samples would.
//!
//! # Memory (bounded, lazy, and counted exactly)
//!
//! With d digits HDR keeps 2·h sub-buckets of unit width (h = 128 at 2
//! digits, 1024 at 3), then h counts per doubling of the range. Covering up
//! to 1 h (3.6e9 µs) takes 25 doublings of 256 at 2 digits and 22 of 2048 at
//! 3, that is (25 + 1) × 128 = 3 328 and (22 + 1) × 1024 = 23 552 counts:
//!
//! | histogram                   | counts to 1 h | bytes   | counts to 1 s | bytes  |
//! |-----------------------------|---------------|---------|---------------|--------|
//! | window slice, 2 digits, u32 | 3 328         | 13 312  | 1 792         | 7 168  |
//! | all time, 3 digits, u64     | 23 552        | 188 416 | 11 264        | 90 112 |
//!
//! Per series, with all 16 slices and the 3 running window sums allocated,
//! plus 2 048 bytes for 20 histogram headers (`size_of::<Histogram<_>>()`,
//! 96 bytes on 64-bit) and 16 slot entries:
//!
//! - worst case, an hour-long request in every slice: 19 × 13 312 and
//!   188 416 and the overhead, **443 520 bytes** (≈ 433 KiB; it was 1 697 504
//!   with 3-digit slices);
//! - typical, every latency under 1 s: 19 × 7 168 and 90 112 and the
//!   overhead, **228 480 bytes** (≈ 223 KiB).
//!
//! The running sums (one per ring: the sum of its live slices, kept by
//! adding each sample and subtracting each slice that expires) cost three
//! more histograms and three more records per sample, and make a window
//! read one walk over one histogram instead of a merge of 5–6 slices.
//!
//! The tests `worst_case_memory_matches_the_documented_figure` and
//! `typical_memory_matches_the_documented_figure` check both sums.
//!
//! Three things keep the usual case below those:
//! - a slice's histogram is allocated only when a sample lands in it, so an
//!   idle series costs a few hundred bytes and a series busy for only the last
//!   10 s holds 4 or 5 histograms, not 17;
//! - a histogram is allocated at the size its first value needs (1 KB for a
//!   slice, 16 KB all time) and grows only when a larger value comes, up to
//!   the 1 h clamp;
//! - a slice that rotates is reset in place, never freed and reallocated, so
//!   memory does not churn either.
//!
//! Growth rebuilds the histogram at exactly the new size rather than using
//! HDR's auto-resize. Auto-resize grows the counts with `Vec::resize`, whose
//! amortised doubling can leave up to twice the needed capacity allocated, and
//! then the figures above and [`LatencyWindows::heap_bytes`] would undercount
//! by as much. A rebuild copies the counts, at most once per doubling of the
//! largest value the slot has ever held (≤ 25 times in its life).
//!
//! A store can cap the bytes of all its window slices together with a
//! [`WindowBudget`]; see [`LatencyWindows::record_within`].
//!
//! Cost: [`LatencyWindows::record`] (all time and the three rings) takes
//! about 35 ns in release builds on the 2-core EPYC dev box, most of it in
//! HDR's own bucket update; run the ignored `record_timing` test to measure.
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

/// Significant decimal digits of the all-time histogram (and of
/// [`Aggregate::new`]): values within 0.1 %.
pub const SIGFIG: u8 = 3;
/// Significant decimal digits of window slices: values within 1 % (0.8 %).
/// See the module docs for why windows give up a digit.
pub const WINDOW_SIGFIG: u8 = 2;
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
    pub const ALL: [Window; 4] = [
        Window::TenSeconds,
        Window::OneMinute,
        Window::FiveMinutes,
        Window::AllTime,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Window::TenSeconds => "10s",
            Window::OneMinute => "1m",
            Window::FiveMinutes => "5m",
            Window::AllTime => "all",
        }
    }

    /// Significant digits the window's latency is kept at.
    pub fn sigfig(self) -> u8 {
        match self {
            Window::AllTime => SIGFIG,
            _ => WINDOW_SIGFIG,
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
    #[inline]
    fn advance(&mut self, now: f64) {
        self.advance_with(now, |_| {});
    }

    /// As `advance`, handing each slot to `expire` just before it is
    /// cleared, so an owner that keeps a running sum of the live slots can
    /// take the slot's contents back out of it.
    #[inline]
    pub fn advance_with(&mut self, now: f64, expire: impl FnMut(&mut T)) {
        let elapsed = now - self.head_start;
        // Every record and read comes through here and almost all stay in
        // the head slice: keep that check inline and the rotation out of line.
        if elapsed.is_finite() && elapsed >= self.slice_ms {
            self.rotate(elapsed, expire);
        }
    }

    #[cold]
    fn rotate(&mut self, elapsed: f64, mut expire: impl FnMut(&mut T)) {
        let n = self.slots.len();
        let steps = (elapsed / self.slice_ms).floor();
        if steps >= n as f64 {
            for slot in self.slots.iter_mut() {
                expire(slot);
                slot.clear();
            }
        } else {
            for _ in 0..steps as usize {
                self.head = (self.head + 1) % n;
                expire(&mut self.slots[self.head]);
                self.slots[self.head].clear();
            }
        }
        // Whole steps keep slice boundaries aligned to the origin.
        self.head_start += steps * self.slice_ms;
    }

    /// The slot for `now`. A sample from the past goes into the newest slot:
    /// callers pass a monotonic clock, so that only happens on clock noise.
    #[inline]
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

    /// The newest `k` slots as of `now` (the head first), at most all of them.
    pub fn newest(&mut self, now: f64, k: usize) -> impl Iterator<Item = &T> {
        self.advance(now);
        let n = self.slots.len();
        let head = self.head;
        let slots = &self.slots;
        (0..k.min(n)).map(move |j| &slots[(head + n - j) % n])
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
    pub fn new(limit: usize) -> Self {
        WindowBudget { limit, used: 0 }
    }

    pub fn unlimited() -> Self {
        Self::new(usize::MAX)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes currently held by the slices that drew on this budget.
    pub fn used(&self) -> usize {
        self.used
    }

    fn take(&mut self, bytes: usize) -> bool {
        // `used <= limit` always holds: only `take` adds, and only within the limit.
        if bytes > self.limit - self.used {
            return false;
        }
        self.used += bytes;
        true
    }

    fn give_back(&mut self, bytes: usize) {
        self.used = self.used.saturating_sub(bytes);
    }
}

/// One slice's histogram (2 digits, u32 counts), allocated on its first sample.
#[derive(Debug, Default)]
/// The second field is the exact sum of the slice's samples in µs, so a
/// mean costs a division instead of a walk over the histogram.
struct HistSlot(Option<Box<Histogram<u32>>>, u64);

impl Slot for HistSlot {
    fn clear(&mut self) {
        // An empty histogram is already clear; skip the memset (up to 13 KB).
        if let Some(h) = self.0.as_mut().filter(|h| !h.is_empty()) {
            h.reset();
        }
        self.1 = 0;
    }
}

impl HistSlot {
    fn heap_bytes(&self) -> usize {
        self.0.as_deref().map_or(0, histogram_bytes)
    }
}

/// Records `us` in the histogram in `slot`, first allocating it, or
/// rebuilding it larger, at exactly the size `us` needs if it does not cover
/// `us` yet. `grant` is asked for the extra bytes before anything changes; if
/// it refuses, nothing is recorded and this returns false.
#[inline]
pub(crate) fn record_sized<T: Counter>(
    slot: &mut Option<Box<Histogram<T>>>,
    us: u64,
    sigfig: u8,
    grant: impl FnOnce(usize) -> bool,
) -> bool {
    // The hot path. Auto-resize is off, so a value the histogram does not
    // cover is an error here rather than an amortised (oversized) regrowth.
    if let Some(h) = slot.as_mut() {
        if h.record(us).is_ok() {
            return true;
        }
    }
    allocate_and_record(slot, us, sigfig, grant)
}

/// The rare part of [`record_sized`]: at most once per doubling of the
/// largest value a slot has held.
#[cold]
fn allocate_and_record<T: Counter>(
    slot: &mut Option<Box<Histogram<T>>>,
    us: u64,
    sigfig: u8,
    grant: impl FnOnce(usize) -> bool,
) -> bool {
    let old_bytes = slot.as_deref().map_or(0, histogram_bytes);
    let mut h = sized_histogram::<T>(us, sigfig);
    if !grant(histogram_bytes(&h).saturating_sub(old_bytes)) {
        return false;
    }
    if let Some(old) = slot.as_deref() {
        // Cannot fail: `h` covers `us`, which is above everything `old` holds,
        // and it has the same digits, so every count keeps its bucket.
        let _ = h.add(old);
    }
    let _ = h.record(us); // cannot fail: `h` was sized for `us`
    match slot.as_mut() {
        // Reuse the box: only the counts are reallocated.
        Some(b) => **b = h,
        None => *slot = Some(Box::new(h)),
    }
    true
}

/// A histogram of `sigfig` digits just large enough for `us`, auto-resize off
/// (see "Memory" in the module docs for why growth is done by hand).
fn sized_histogram<T: Counter>(us: u64, sigfig: u8) -> Histogram<T> {
    Histogram::new_with_bounds(MIN_US, us.clamp(2 * MIN_US, MAX_US), sigfig)
        .expect("1 µs .. 1 h at 2 or 3 digits is a valid HDR configuration")
}

/// A histogram covering the whole 1 µs .. 1 h range from the start, for
/// merging into: anything recorded anywhere here fits it.
pub(crate) fn full_histogram(sigfig: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(MIN_US, MAX_US, sigfig)
        .expect("1 µs .. 1 h at 2 or 3 digits is a valid HDR configuration")
}

/// Heap bytes of a boxed histogram: the box and the counts. Exact because
/// every counts `Vec` here is allocated at its final length (`new_with_bounds`
/// reserves exactly; nothing resizes it afterwards).
pub(crate) fn histogram_bytes<T: Counter>(h: &Histogram<T>) -> usize {
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
    // `+ 0.5` then truncation is `round()` for these non-negative values (the
    // one float edge, just under 0.5, ends up as MIN_US either way), without
    // the libm call `round()` costs on baseline x86-64.
    Recorded::Exact(((value_us + 0.5) as u64).max(MIN_US))
}

/// The latency histograms of one series: three rings of 2-digit slices and a
/// 3-digit all-time histogram. Reads go through an [`Aggregate`], which the
/// caller owns so that one scratch histogram serves every series.
#[derive(Debug)]
pub struct LatencyWindows {
    rings: [SliceRing<HistSlot>; 3],
    /// Per ring, the sum of its live slices: every sample goes into the head
    /// slice and into the sum, and a slice that expires is subtracted from
    /// the sum. A window read is then one walk over one histogram instead
    /// of merging 5–6 slices first (~40 µs → a few µs per window).
    sums: [HistSlot; 3],
    /// Set if a subtraction ever failed (it should not): that ring's sum is
    /// rebuilt from its slices on the next read.
    stale_sum: [bool; 3],
    all_time: Option<Box<Histogram<u64>>>,
    clamped: u64,
    /// False once a [`WindowBudget`] refused this series a slice; until reset.
    windows: bool,
}

impl LatencyWindows {
    pub fn new(now: f64) -> Self {
        LatencyWindows {
            rings: new_rings(now),
            sums: Default::default(),
            stale_sum: [false; 3],
            all_time: None,
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
        if self.windows && !self.record_windows(us, now, budget) {
            self.drop_windows(budget);
        }
        record_sized(&mut self.all_time, us, SIGFIG, |_| true);
        r
    }

    fn record_windows(&mut self, us: u64, now: f64, budget: &mut WindowBudget) -> bool {
        (0..self.rings.len()).all(|i| {
            self.sync(i, now);
            let head = self.rings[i].head(now);
            if !record_sized(&mut head.0, us, WINDOW_SIGFIG, |bytes| budget.take(bytes)) {
                return false;
            }
            head.1 += us;
            let sum = &mut self.sums[i];
            if !record_sized(&mut sum.0, us, WINDOW_SIGFIG, |bytes| budget.take(bytes)) {
                return false;
            }
            sum.1 += us;
            true
        })
    }

    /// Rotates ring `i` to `now`, taking every slice that expires out of its sum.
    fn sync(&mut self, i: usize, now: f64) {
        let (sum, stale) = (&mut self.sums[i], &mut self.stale_sum[i]);
        self.rings[i].advance_with(now, |slot| {
            if let (Some(h), Some(total)) = (slot.0.as_deref(), sum.0.as_deref_mut()) {
                if !h.is_empty() && total.subtract(h).is_err() {
                    *stale = true;
                }
            }
            sum.1 = sum.1.saturating_sub(slot.1);
        });
        if self.stale_sum[i] {
            self.rebuild_sum(i);
        }
    }

    #[cold]
    fn rebuild_sum(&mut self, i: usize) {
        let sum = &mut self.sums[i];
        sum.1 = 0;
        if let Some(total) = sum.0.as_deref_mut() {
            total.reset();
            for slot in self.rings[i].iter() {
                if let Some(h) = slot.0.as_deref() {
                    // The sum was sized to cover every value its slices hold.
                    let _ = total.add(h);
                }
                sum.1 += slot.1;
            }
        }
        self.stale_sum[i] = false;
    }

    /// The sum of ring `i`'s live slices as of `now`.
    fn window_sum(&mut self, i: usize, now: f64) -> Option<&Histogram<u32>> {
        self.sync(i, now);
        self.sums[i].0.as_deref()
    }

    /// Summary of ring `i`'s window as of `now`, with the exact mean.
    fn window_summary(&mut self, i: usize, now: f64) -> Percentiles {
        self.sync(i, now);
        let sum = &self.sums[i];
        sum.0
            .as_deref()
            .map(|h| Percentiles::of_with_sum(h, sum.1))
            .unwrap_or_default()
    }

    fn drop_windows(&mut self, budget: &mut WindowBudget) {
        for slot in self
            .rings
            .iter_mut()
            .flat_map(|r| r.slots.iter_mut())
            .chain(self.sums.iter_mut())
        {
            budget.give_back(slot.heap_bytes());
            slot.0 = None;
            slot.1 = 0;
        }
        self.windows = false;
    }

    /// False after a [`WindowBudget`] refused this series memory: its window
    /// reads then have no latency (count 0) until reset.
    pub fn has_windows(&self) -> bool {
        self.windows
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
        window.ring_index().map(|i| {
            self.sync(i, now);
            self.rings[i].covered_ms(now)
        })
    }

    /// Empties every histogram, keeping their allocations, and gives a series
    /// that lost its windows to the budget another try.
    pub fn reset(&mut self, now: f64) {
        self.rings.iter_mut().for_each(|r| r.reset(now));
        self.sums.iter_mut().for_each(Slot::clear);
        self.stale_sum = [false; 3];
        if let Some(h) = self.all_time.as_mut() {
            h.reset();
        }
        self.clamped = 0;
        self.windows = true;
    }

    /// Slices that hold an allocated histogram (at most 16).
    pub fn allocated_slices(&self) -> usize {
        self.rings
            .iter()
            .flat_map(|r| r.iter())
            .filter(|s| s.0.is_some())
            .count()
    }

    /// Bytes of the window slices' histograms: what a [`WindowBudget`] counts.
    pub fn window_bytes(&self) -> usize {
        self.rings
            .iter()
            .flat_map(|r| r.iter())
            .chain(self.sums.iter())
            .map(HistSlot::heap_bytes)
            .sum()
    }

    /// Bytes this series holds on the heap: slot pointers and histograms.
    pub fn heap_bytes(&self) -> usize {
        let slots: usize = self
            .rings
            .iter()
            .map(|r| r.slots.len() * size_of::<HistSlot>())
            .sum();
        slots + self.window_bytes() + self.all_time.as_deref().map_or(0, histogram_bytes)
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
    /// As [`Percentiles::of`], with the mean from the exact sum of the
    /// samples (µs) instead of a second walk over the histogram.
    pub fn of_with_sum<T: Counter>(h: &Histogram<T>, sum_us: u64) -> Self {
        if h.is_empty() {
            return Percentiles::default();
        }
        Self::with_mean(h, sum_us as f64 / h.len() as f64)
    }

    pub fn of<T: Counter>(h: &Histogram<T>) -> Self {
        if h.is_empty() {
            return Percentiles::default();
        }
        Self::with_mean(h, h.mean())
    }

    /// `h` is not empty.
    fn with_mean<T: Counter>(h: &Histogram<T>, mean_us: f64) -> Self {
        // One pass over the counts for all five quantiles.
        let mut q = [0u64; 5];
        for (slot, v) in q
            .iter_mut()
            .zip(h.value_at_quantiles([0.5, 0.9, 0.95, 0.99, 0.999]))
        {
            *slot = v;
        }
        Percentiles {
            count: h.len(),
            min_us: h.min_nz(),
            max_us: h.max(),
            mean_us,
            p50_us: q[0],
            p90_us: q[1],
            p95_us: q[2],
            p99_us: q[3],
            p999_us: q[4],
        }
    }
}

/// Adds `src` into `dst` value by value. Works across counter types, sizes
/// and digits (slices are u32, 2 digits and grown to need; aggregates u64 and
/// full size). Each count goes in at its bucket's lowest value: into as many
/// digits or fewer that is exact, since buckets nest (see the module docs);
/// into more, it keeps `src`'s coarser error. Values beyond one hour (only a
/// foreign histogram can hold them) are clamped as recording them would have
/// been; returns how many were.
pub(crate) fn merge_into<T: Counter>(dst: &mut Histogram<u64>, src: &Histogram<T>) -> u64 {
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
///
/// Its digits are fixed at creation: [`Aggregate::new`] keeps 3 (all time,
/// imports), [`Aggregate::for_window`] as many as the window is stored at, so
/// a window read reports exactly what one histogram of its samples would.
/// Any aggregate accepts anything; see [`Window::sigfig`] and the module docs
/// for what merging across digits costs.
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
        f.debug_struct("Aggregate")
            .field("sigfig", &self.hist.sigfig())
            .field("count", &self.hist.len())
            .field("clamped", &self.clamped)
            .finish()
    }
}

impl Aggregate {
    /// A 3-digit aggregate, for all-time reads and imports.
    pub fn new() -> Self {
        Self::with_sigfig(SIGFIG)
    }

    /// An aggregate at the digits `window` is stored at (2 for the rings, 3
    /// for all time).
    pub fn for_window(window: Window) -> Self {
        Self::with_sigfig(window.sigfig())
    }

    fn with_sigfig(sigfig: u8) -> Self {
        Aggregate {
            hist: full_histogram(sigfig),
            clamped: 0,
            bytes: Vec::new(),
            serializer: V2DeflateSerializer::new(),
            deserializer: Deserializer::new(),
        }
    }

    pub fn sigfig(&self) -> u8 {
        self.hist.sigfig()
    }

    /// Bytes of the scratch histogram (the serializer buffers aside).
    pub fn heap_bytes(&self) -> usize {
        histogram_bytes(&self.hist)
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
                if let Some(h) = src.window_sum(i, now) {
                    self.clamped += merge_into(&mut self.hist, h);
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

    /// Clears, adds one window of `src` and summarises it. Use an aggregate
    /// made by [`Aggregate::for_window`] for the window: a 3-digit one reads a
    /// ring window's 2-digit buckets at their lowest values (still within 1 %).
    pub fn window_percentiles(
        &mut self,
        src: &mut LatencyWindows,
        window: Window,
        now: f64,
    ) -> Percentiles {
        // A ring window of one series is one histogram already (its running
        // sum, at the window's digits): summarise it in place, no merge.
        if let Some(i) = window.ring_index() {
            if self.sigfig() == WINDOW_SIGFIG {
                return src.window_summary(i, now);
            }
        }
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
            .map_err(|e| {
                CoreError::range(
                    "histogram",
                    "counts the HDR V2 format can encode",
                    format!("{e:?}"),
                )
            })?;
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
            return Err(CoreError::range(
                "histogram",
                &format!("{WHAT} of 1 to {MAX_IMPORT_LEN} characters"),
                format!("{} characters", encoded.len()),
            ));
        }
        self.bytes.clear();
        BASE64
            .decode_vec(encoded, &mut self.bytes)
            .map_err(|e| CoreError::range("histogram", WHAT, format!("invalid base64 ({e})")))?;
        let plain = checked_v2(&self.bytes)
            .map_err(|why| CoreError::range("histogram", WHAT, why.to_string()))?;
        let h: Histogram<u64> = self
            .deserializer
            .deserialize(&mut plain.as_ref())
            .map_err(|e| CoreError::range("histogram", WHAT, format!("undecodable bytes ({e})")))?;
        // V2 stores each count as an i64: past i64::MAX samples in all, a
        // bucket of the merge (values above an hour share one) could hold a
        // count the aggregate can no longer export (found by `npm run fuzz`).
        let total = h
            .iter_recorded()
            .try_fold(0u64, |t, v| t.checked_add(v.count_at_value()));
        let room = (i64::MAX as u64).saturating_sub(self.hist.len());
        if total.is_none_or(|t| t > room) {
            return Err(CoreError::range(
                "histogram",
                &format!(
                    "{WHAT} whose samples, with those already merged, number at most 2^63 - 1"
                ),
                "more",
            ));
        }
        self.add_histogram(&h);
        Ok(h.len())
    }
}

// As the hdrhistogram crate and the Java original spell them (base | 0x10).
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9314;
/// Bytes of a V2 header after the cookie: payload length, normalizing
/// offset, significant digits, lowest, highest, int-to-double ratio.
const V2_HEADER: usize = 4 + 4 + 4 + 8 + 8 + 8;
/// Most bytes a compressed import may inflate to (a full 1 µs .. 1 h
/// histogram is well under 1 MiB uncompressed).
pub const MAX_INFLATED: usize = 16 << 20;

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The uncompressed V2 form of `bytes` (cookie included), once its header is
/// known to describe no more than the bytes that are really there. The
/// hdrhistogram decoder trusts the header's payload length and allocates it
/// before reading (4 GiB for a 40-byte input), and a compressed payload may
/// inflate without bound; both are refused here, before anything is allocated.
fn checked_v2(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, &'static str> {
    use std::io::Read as _;
    let plain: std::borrow::Cow<'_, [u8]> = match be_u32(bytes, 0) {
        Some(V2_COOKIE) => bytes.into(),
        Some(V2_COMPRESSED_COOKIE) => {
            let len = be_u32(bytes, 4).ok_or("a truncated header")? as usize;
            let deflated = bytes
                .get(8..8usize.saturating_add(len))
                .ok_or("a compressed payload longer than the input")?;
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(deflated)
                .take(MAX_INFLATED as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|_| "an undecodable compressed payload")?;
            if out.len() > MAX_INFLATED {
                return Err("a compressed payload that inflates past 16 MiB");
            }
            out.into()
        }
        _ => return Err("no V2 cookie"),
    };
    if be_u32(&plain, 0) != Some(V2_COOKIE) {
        return Err("no V2 cookie inside the compressed payload");
    }
    let payload = be_u32(&plain, 4).ok_or("a truncated header")? as usize;
    if plain.len() < 4 + V2_HEADER || payload > plain.len() - 4 - V2_HEADER {
        return Err("a header whose payload length exceeds the input");
    }
    // The payload is zig-zag varints: a count, or minus a run of zeros. The
    // decoder negates the run, which overflows for -2^63 (a panic where
    // overflow checks are on: found by `npm run fuzz`).
    let mut rest = &plain[4 + V2_HEADER..4 + V2_HEADER + payload];
    while let Some(v) = varint(&mut rest) {
        if v == u64::MAX {
            return Err("a run of 2^63 zeros");
        }
    }
    Ok(plain)
}

/// The next varint of an HDR V2 payload (LEB128, the ninth byte all 8
/// bits, as the decoder reads it), or None at the end.
fn varint(rest: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for k in 0..9 {
        let (&b, tail) = rest.split_first()?;
        *rest = tail;
        if k == 8 {
            return Some(v | u64::from(b) << 56);
        }
        v |= u64::from(b & 0x7f) << (7 * k);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
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
        let mut r: SliceRing<N> = SliceRing::new(
            RingSpec {
                slice_ms: 2_000.0,
                slices: 5,
            },
            0.0,
        );
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

    /// HDR's quantile: the smallest value with at least `ceil(q * n)` samples at or below it.
    fn exact_quantile(sorted: &[u64], q: f64) -> u64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
        sorted[rank - 1]
    }

    /// The documented error of a window's digits: 0.1 % at 3, 1 % at 2
    /// (buckets are at most 1/128 of their values wide, so 0.78 % in fact).
    fn relative_error(window: Window) -> f64 {
        match window.sigfig() {
            3 => 0.001,
            _ => 1.0 / 128.0,
        }
    }

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
        for window in [Window::TenSeconds, Window::OneMinute, Window::AllTime] {
            let rel = relative_error(window);
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
                    rel,
                    &format!("{name} q{q}"),
                );
            }
            assert_within(p.min_us, values[0], rel, &format!("{name} min"));
            assert_within(
                p.max_us,
                *values.last().unwrap(),
                rel,
                &format!("{name} max"),
            );
            let mean = values.iter().sum::<u64>() as f64 / values.len() as f64;
            assert!(
                (p.mean_us - mean).abs() <= mean * rel,
                "{name} mean {} vs {mean}",
                p.mean_us
            );
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
        assert_eq!((p.count, p.min_us), (4, 1));
        assert!(w.all_time().unwrap().equivalent(p.max_us, MAX_US));
    }

    #[test]
    fn slices_are_allocated_lazily_and_reused() {
        let mut w = LatencyWindows::new(0.0);
        assert_eq!(w.allocated_slices(), 0);
        let idle = w.heap_bytes();
        assert!(
            idle <= 16 * size_of::<HistSlot>(),
            "an idle series holds only slot pointers, got {idle}"
        );
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
        // Small latencies keep histograms at their smallest size: 256 counts
        // for a 2-digit slice, 2048 for the 3-digit all-time one.
        let slice = size_of::<Histogram<u32>>() + 256 * 4;
        let all = size_of::<Histogram<u64>>() + 2048 * 8;
        // 16 slices and the 3 running sums.
        assert_eq!(busy, 19 * slice + all + 16 * size_of::<HistSlot>());
        assert_eq!(w.window_bytes(), 19 * slice);
    }

    /// Headers of 16 slices, 3 running sums and all time, and the 16 slot pointers.
    fn overhead() -> usize {
        19 * size_of::<Histogram<u32>>() + size_of::<Histogram<u64>>() + 16 * size_of::<HistSlot>()
    }

    /// One sample of `us` every second for 5 minutes: every slice of every ring holds it.
    fn every_slice_sees(us: f64) -> LatencyWindows {
        let mut w = LatencyWindows::new(0.0);
        for s in 0..300 {
            w.record(us, s as f64 * 1_000.0);
        }
        assert_eq!(w.allocated_slices(), 16);
        w
    }

    #[test]
    fn worst_case_memory_matches_the_documented_figure() {
        // An hour-long request in every slice of every ring.
        let w = every_slice_sees(4e9);
        let (slice_counts, all_counts) = (3_328, 23_552);
        assert_eq!(w.all_time().unwrap().distinct_values(), all_counts);
        assert_eq!(
            w.window_bytes(),
            19 * (size_of::<Histogram<u32>>() + slice_counts * 4)
        );
        let documented = 19 * slice_counts * 4 + all_counts * 8;
        assert_eq!(documented, 441_344);
        assert_eq!(w.heap_bytes(), documented + overhead());
        assert!(overhead() < 2_500, "{}", overhead());
        if size_of::<usize>() == 8 {
            assert_eq!(w.heap_bytes(), 443_520);
        }
        assert!(w.heap_bytes() < 450_000);
    }

    #[test]
    fn typical_memory_matches_the_documented_figure() {
        // Every latency under a second, the largest in every slice.
        let w = every_slice_sees(999_999.0);
        let (slice_counts, all_counts) = (1_792, 11_264);
        assert_eq!(w.all_time().unwrap().distinct_values(), all_counts);
        let documented = 19 * slice_counts * 4 + all_counts * 8;
        assert_eq!(documented, 226_304);
        assert_eq!(w.heap_bytes(), documented + overhead());
        if size_of::<usize>() == 8 {
            assert_eq!(w.heap_bytes(), 228_480);
        }
        assert!(w.heap_bytes() < 250_000);
    }

    #[test]
    fn running_sums_equal_the_merge_of_the_live_slices() {
        // Random latencies at random gaps (some longer than a whole window),
        // read at random times: each ring's running sum must hold exactly
        // what its live slices hold.
        let mut rng = SplitMix64::new(7);
        let mut w = LatencyWindows::new(0.0);
        let mut now = 0.0;
        for step in 0..20_000 {
            now += match rng.next_u64() % 100 {
                0 => 400_000.0 * rng.next_f64(),
                1..=5 => 20_000.0 * rng.next_f64(),
                _ => 300.0 * rng.next_f64(),
            };
            w.record(1.0 + 2e6 * rng.next_f64().powi(3), now);
            if step % 97 == 0 {
                for i in 0..3 {
                    let sum = w.window_sum(i, now).cloned();
                    let mut merged: Histogram<u32> =
                        Histogram::new_with_bounds(1, MAX_US, WINDOW_SIGFIG).unwrap();
                    for slot in w.rings[i].iter() {
                        if let Some(h) = slot.0.as_deref() {
                            merged.add(h).unwrap();
                        }
                    }
                    let sum_len = sum.as_ref().map_or(0, |h| h.len());
                    assert_eq!(sum_len, merged.len(), "ring {i} at step {step}");
                    if let Some(sum) = sum {
                        for v in merged.iter_recorded() {
                            assert_eq!(
                                sum.count_at(v.value_iterated_to()),
                                v.count_at_value(),
                                "ring {i}"
                            );
                        }
                        assert_eq!(Percentiles::of(&sum), Percentiles::of(&merged));
                    }
                }
            }
        }
        assert!(!w.stale_sum.iter().any(|&s| s));
    }

    #[test]
    fn growth_allocates_exactly_and_keeps_every_count() {
        // Latencies that creep up rebuild the histograms many times; the
        // result must match recording the largest value first (one exact
        // allocation), in bytes and in content.
        let mut rng = SplitMix64::new(21);
        let values: Vec<f64> = (0..3_000)
            .map(|i| (i as f64 * 1_000.0 + rng.next_f64() * 999.0).min(4e9))
            .collect();
        let mut grown = LatencyWindows::new(0.0);
        let mut direct = LatencyWindows::new(0.0);
        direct.record(*values.last().unwrap(), 0.0);
        for &v in &values {
            grown.record(v, 1.0);
        }
        for &v in &values[..values.len() - 1] {
            direct.record(v, 1.0);
        }
        assert_eq!(grown.heap_bytes(), direct.heap_bytes());
        let max = values.last().unwrap().round() as u64;
        let exact = |sigfig| {
            Histogram::<u32>::new_with_bounds(1, max, sigfig)
                .unwrap()
                .distinct_values()
        };
        assert_eq!(grown.all_time().unwrap().distinct_values(), exact(SIGFIG));
        // Three head slices and three running sums.
        assert_eq!(
            grown.window_bytes(),
            6 * (size_of::<Histogram<u32>>() + exact(WINDOW_SIGFIG) * 4)
        );
        for window in Window::ALL {
            let mut a = Aggregate::for_window(window);
            let mut b = Aggregate::for_window(window);
            a.add_window(&mut grown, window, 1.0);
            b.add_window(&mut direct, window, 1.0);
            assert_eq!(a.histogram(), b.histogram(), "{}", window.as_str());
            assert_eq!(a.percentiles(), b.percentiles());
            assert_eq!(a.percentiles().count, 3_000);
        }
    }

    #[test]
    fn a_refused_budget_takes_the_whole_series_out_of_the_windows() {
        let slice = size_of::<Histogram<u32>>() + 256 * 4;
        // Room for one series' first three slices and their three sums, and a bit.
        let mut budget = WindowBudget::new(6 * slice + 100);
        let (mut a, mut b) = (LatencyWindows::new(0.0), LatencyWindows::new(0.0));
        a.record_within(50.0, 0.0, &mut budget);
        assert_eq!(
            (budget.used(), a.window_bytes(), a.allocated_slices()),
            (6 * slice, 6 * slice, 3)
        );
        // A second series does not fit: it gets no slice at all, only all time.
        assert_eq!(b.record_within(70.0, 0.0, &mut budget), Recorded::Exact(70));
        assert!(!b.has_windows() && a.has_windows());
        assert_eq!((b.allocated_slices(), budget.used()), (0, 6 * slice));
        assert_eq!(b.all_time().unwrap().len(), 1);
        let mut agg = Aggregate::for_window(Window::TenSeconds);
        assert_eq!(
            agg.window_percentiles(&mut b, Window::TenSeconds, 0.0)
                .count,
            0
        );
        // The first series rotates into a new 2 s slice: refused too, and its
        // slices go back to the budget.
        a.record_within(50.0, 2_000.0, &mut budget);
        assert!(!a.has_windows());
        assert_eq!((a.allocated_slices(), budget.used()), (0, 0));
        assert_eq!(
            agg.window_percentiles(&mut a, Window::OneMinute, 2_000.0)
                .count,
            0
        );
        assert_eq!(
            Aggregate::new()
                .window_percentiles(&mut a, Window::AllTime, 2_000.0)
                .count,
            2
        );
        // Until reset, later samples stay out of the windows even with room.
        b.record_within(70.0, 2_500.0, &mut budget);
        assert_eq!((b.allocated_slices(), budget.used()), (0, 0));
        b.reset(3_000.0);
        b.record_within(70.0, 3_000.0, &mut budget);
        assert!(b.has_windows());
        assert_eq!(budget.used(), b.window_bytes());
        // Growth draws on the budget as well: an hour-long sample does not fit.
        b.record_within(4e9, 3_000.0, &mut budget);
        assert_eq!((b.has_windows(), budget.used()), (false, 0));
        assert_eq!(b.clamped(), 1);
    }

    #[test]
    fn three_digits_merge_exactly_into_two() {
        // Buckets nest, so the 3-digit all-time histogram merged into a 2-digit
        // aggregate equals the 2-digit slices holding the same samples.
        let mut w = LatencyWindows::new(0.0);
        let mut rng = SplitMix64::new(13);
        for i in 0..5_000 {
            w.record(10f64.powf(rng.next_f64() * 9.6), i as f64 * 0.3);
        }
        let mut slices = Aggregate::for_window(Window::TenSeconds);
        slices.add_window(&mut w, Window::TenSeconds, 1_500.0);
        let mut all = Aggregate::for_window(Window::TenSeconds);
        all.add_histogram(w.all_time().unwrap());
        assert_eq!(slices.sigfig(), WINDOW_SIGFIG);
        assert_eq!(slices.histogram(), all.histogram());
        assert_eq!(slices.percentiles(), all.percentiles());
        // The other way, 2 into 3 digits: each count at its bucket's lowest
        // value, so within a 2-digit bucket of the exact figure.
        let mut fine = Aggregate::new();
        fine.add_window(&mut w, Window::TenSeconds, 1_500.0);
        let (f, c) = (fine.percentiles(), slices.percentiles());
        for (got, coarse) in [
            (f.p50_us, c.p50_us),
            (f.p99_us, c.p99_us),
            (f.max_us, c.max_us),
        ] {
            assert!(
                got <= coarse && coarse - got <= coarse / 128,
                "{got} vs {coarse}"
            );
        }
    }

    #[test]
    #[ignore = "timing: cargo test --release -- --ignored --nocapture record_timing"]
    fn record_timing() {
        use std::hint::black_box;
        use std::time::Instant;
        let values: Vec<f64> = (0..4_096)
            .map(|i| 10f64.powf(2.0 + (i as f64 * 0.618_034).fract() * 4.0))
            .collect();
        let mut w = LatencyWindows::new(0.0);
        let n = 20_000_000usize;
        let start = Instant::now();
        for i in 0..n {
            // 20 µs apart: 400 s in all, so every ring rotates many times.
            black_box(w.record(values[i & 4_095], i as f64 * 0.02));
        }
        let ns = start.elapsed().as_nanos() as f64 / n as f64;
        eprintln!("LatencyWindows::record: {ns:.1} ns per sample (all time + 3 rings)");
        if !cfg!(debug_assertions) {
            assert!(ns < 100.0, "{ns} ns");
        }
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
        let (mut x, mut y, mut both) = (
            LatencyWindows::new(0.0),
            LatencyWindows::new(0.0),
            LatencyWindows::new(0.0),
        );
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
    fn imports_refuse_headers_that_claim_more_than_the_input_holds() {
        // A 40-byte V2 histogram whose header claims a 4 GiB payload: the
        // decoder would allocate it before reading (issue 19: found while writing the
        // fuzz target); refused, nothing merged.
        let mut raw = V2_COOKIE.to_be_bytes().to_vec();
        raw.extend(u32::MAX.to_be_bytes()); // payload length
        raw.extend(0u32.to_be_bytes()); // normalizing offset
        raw.extend(2u32.to_be_bytes()); // significant digits
        raw.extend(1u64.to_be_bytes());
        raw.extend(3_600_000_000u64.to_be_bytes());
        raw.extend(1f64.to_be_bytes());
        let mut a = Aggregate::new();
        let e = a.import(&BASE64.encode(&raw)).unwrap_err();
        assert!(
            e.message.contains("payload length exceeds"),
            "{}",
            e.message
        );
        // The same inside a compressed envelope, and a zlib bomb.
        let deflate = |plain: &[u8]| {
            use std::io::Write as _;
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
            z.write_all(plain).unwrap();
            let z = z.finish().unwrap();
            let mut out = V2_COMPRESSED_COOKIE.to_be_bytes().to_vec();
            out.extend((z.len() as u32).to_be_bytes());
            out.extend(z);
            BASE64.encode(out)
        };
        assert!(a.import(&deflate(&raw)).is_err());
        let mut bomb = raw.clone();
        bomb[4..8].copy_from_slice(&(17u32 << 20).to_be_bytes());
        bomb.resize(40 + (17 << 20), 0);
        let e = a.import(&deflate(&bomb)).unwrap_err();
        assert!(e.message.contains("inflates past"), "{}", e.message);
        // A run of 2^63 zeros (zig-zag of u64::MAX): the decoder's negation overflows.
        let mut zeros = raw.clone();
        zeros[4..8].copy_from_slice(&9u32.to_be_bytes());
        zeros.extend([0xff; 9]);
        let e = a.import(&BASE64.encode(&zeros)).unwrap_err();
        assert!(e.message.contains("2^63 zeros"), "{}", e.message);
        assert_eq!(a.percentiles().count, 0, "nothing was merged");
        // A real export still imports.
        let mut b = Aggregate::new();
        let mut w = Aggregate::new();
        let mut h = Histogram::<u64>::new_with_bounds(MIN_US, MAX_US, 3).unwrap();
        for v in [10u64, 200, 3_000] {
            h.record(v).unwrap();
        }
        w.add_histogram(&h);
        let mut out = String::new();
        w.export(&mut out).unwrap();
        assert_eq!(b.import(&out).unwrap(), 3);
    }

    #[test]
    fn imports_never_hold_more_samples_than_an_export_can_count() {
        use hdrhistogram::serialization::V2Serializer;
        let encode = |h: &Histogram<u64>| {
            let mut b = Vec::new();
            V2Serializer::new().serialize(h, &mut b).unwrap();
            BASE64.encode(b)
        };
        // Two values above an hour with more than half of i64::MAX each:
        // clamped into one bucket, their sum is past what V2 can count.
        let half = (i64::MAX as u64) / 2 + 1;
        let mut h = Histogram::<u64>::new_with_bounds(1, 1_000_000_000_000, 2).unwrap();
        h.record_n(5_000_000_000, half).unwrap();
        h.record_n(9_000_000_000, half).unwrap();
        let mut a = Aggregate::new();
        let e = a.import(&encode(&h)).unwrap_err();
        assert!(e.message.contains("at most 2^63 - 1"), "{}", e.message);
        // The same across two imports: the second is refused.
        let mut one = Histogram::<u64>::new_with_bounds(1, MAX_US, 2).unwrap();
        one.record_n(1_000, half).unwrap();
        assert_eq!(a.import(&encode(&one)).unwrap(), half);
        assert!(a.import(&encode(&one)).is_err());
        let mut out = String::new();
        a.export(&mut out).expect("what was merged still exports");
    }

    #[test]
    fn imports_of_foreign_histograms_clamp_what_exceeds_an_hour() {
        let mut foreign: Histogram<u64> = Histogram::new_with_bounds(1, 100 * MAX_US, 3).unwrap();
        foreign.record(10 * MAX_US).unwrap();
        foreign.record(500).unwrap();
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&foreign, &mut bytes)
            .unwrap();
        let mut agg = Aggregate::new();
        assert_eq!(agg.import(&BASE64.encode(&bytes)).unwrap(), 2);
        assert_eq!(agg.clamped(), 1);
        assert!(agg.histogram().equivalent(agg.percentiles().max_us, MAX_US));
    }

    #[test]
    fn garbage_imports_are_errors_and_merge_nothing() {
        let mut good = Aggregate::new();
        good.add_histogram(&{
            let mut h: Histogram<u64> = full_histogram(SIGFIG);
            h.record(1234).unwrap();
            h
        });
        let mut s = String::new();
        good.export(&mut s).unwrap();
        let truncated = &s[..s.len() / 2];
        let mut agg = Aggregate::new();
        for bad in [
            "",
            "   ",
            "not base64 at all!",
            "AAAAAAAA",
            "HISTFAAAAA==",
            truncated,
            &"A".repeat(MAX_IMPORT_LEN + 4),
        ] {
            let e = agg.import(bad).unwrap_err();
            assert!(e.message.starts_with("histogram must be"), "{}", e.message);
        }
        assert_eq!(agg.histogram().len(), 0);
    }
}
