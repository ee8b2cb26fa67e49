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
//! actually covers ([`SliceRing::covered_ms`]) so rates are not skewed by the
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
//! 1–500 ms fill ~575 buckets: a busy series (16 slices and all time) holds
//! about 11.3 KB, the test `a_busy_series_holds_all_windows_and_all_time_in_16_kb`
//! checks <= 16 KB at 10, 100 and 1 000 requests a second (the HDR layout
//! this replaced held ~223 KB). The worst case, every slice spanning
//! 1 µs .. 1 h with u64 counts, is 17 × 2 033 × 8 bytes (~276 KB).
//! A slice allocates on its first sample and a slice that rotates is
//! cleared in place, never freed, so memory does not churn.
//!
//! A store can cap the bytes of all its window slices together with a
//! [`WindowBudget`]; see [`LatencyWindows::record_within`].
//!
//! Cost: [`LatencyWindows::record`] computes the bucket once (a table
//! lookup on the float's mantissa, no logarithm) and bumps four counters;
//! run the ignored `record_timing` test to measure.
//!
//! Exports stay in the HdrHistogram V2 interchange form (see [`Aggregate`]),
//! exact bucket by bucket (`full_histogram` is the HDR side of that form).

use std::mem::size_of;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

use super::error::{CoreError, CoreResult};
pub use super::exphist::Percentiles;
use super::exphist::{index_us, rep_us, Acc, ExpHist};
pub use super::time_ring::{RingSpec, SliceRing, Slot};

/// Significant decimal digits of the HDR histograms [`Aggregate::export`]
/// writes (values within 0.1 %, inside every schema-6 bucket).
pub const SIGFIG: u8 = 3;
/// Significant decimal digits of the rollout cohorts' HDR slices (1 %).
pub const WINDOW_SIGFIG: u8 = 2;
/// Smallest value tracked (1 µs; anything below is recorded as this) and
/// largest (one hour in µs; larger values are clamped to it).
pub use super::exphist::{MAX_US, MIN_US};
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

/// A histogram covering the whole 1 µs .. 1 h range from the start, for
/// merging into: anything recorded anywhere here fits it.
pub(crate) fn full_histogram(sigfig: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(MIN_US, MAX_US, sigfig)
        .expect("1 µs .. 1 h at 2 or 3 digits is a valid HDR configuration")
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
    fn add_ring(&self, acc: &mut Acc, i: usize, now: f64) {
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

impl Percentiles {
    /// Summary of one histogram whose samples sum to `sum_us`.
    pub fn of_with_sum(h: &ExpHist, sum_us: u64) -> Self {
        h.percentiles(sum_us as f64)
    }
}

/// A scratch histogram for reads: it sums the slices of a window, several
/// series, or histograms imported from other processes, and is cleared and
/// reused between reads instead of allocated per read. It also owns the
/// serializer buffers, for the same reason.
///
/// Exports are HdrHistogram V2 (compressed, base64), the interchange form
/// the Java, Go and JS implementations read, with each schema-6 bucket
/// carried at its [`rep_us`]: a whole µs that HDR's 3 digits keep within
/// 0.1 %, well inside the bucket (±0.5 %), so an import puts every count
/// back in its own bucket. Export, import and merge are exact bucket by
/// bucket, and strings exported by the older HDR-backed versions import as
/// before (each value into its bucket).
pub struct Aggregate {
    acc: Acc,
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
            .field("count", &self.acc.count())
            .field("clamped", &self.clamped)
            .finish()
    }
}

impl Aggregate {
    /// An empty aggregate.
    pub fn new() -> Self {
        Aggregate {
            acc: Acc::new(),
            clamped: 0,
            bytes: Vec::new(),
            serializer: V2DeflateSerializer::new(),
            deserializer: Deserializer::new(),
        }
    }

    /// The same as [`Aggregate::new`]: every window is kept at schema 6
    /// now. Kept so that callers may still hold one per window.
    pub fn for_window(_window: Window) -> Self {
        Self::new()
    }

    /// Bytes of the scratch histogram (the serializer buffers aside).
    pub fn heap_bytes(&self) -> usize {
        self.acc.heap_bytes()
    }

    pub fn clear(&mut self) {
        self.acc.clear();
        self.clamped = 0;
    }

    /// Adds the window of `src` as of `now`.
    pub fn add_window(&mut self, src: &mut LatencyWindows, window: Window, now: f64) {
        match window.ring_index() {
            None => self.acc.add(&src.all_time, src.all_sum as f64),
            Some(i) => src.add_ring(&mut self.acc, i, now),
        }
    }

    /// The merged histogram.
    pub fn histogram(&self) -> &Acc {
        &self.acc
    }

    pub fn percentiles(&self) -> Percentiles {
        self.acc.percentiles()
    }

    /// Values above one hour met while merging imported histograms.
    pub fn clamped(&self) -> u64 {
        self.clamped
    }

    /// Clears, adds one window of `src` and summarises it.
    pub fn window_percentiles(
        &mut self,
        src: &mut LatencyWindows,
        window: Window,
        now: f64,
    ) -> Percentiles {
        self.clear();
        self.add_window(src, window, now);
        self.percentiles()
    }

    /// Appends the histogram to `out` in the HdrHistogram interchange form:
    /// V2 compressed encoding (zlib), then standard base64.
    pub fn export(&mut self, out: &mut String) -> CoreResult<()> {
        let mut h = full_histogram(SIGFIG);
        self.acc.for_each(|i, c| {
            let _ = h.record_n(rep_us(i), c);
        });
        self.bytes.clear();
        self.serializer
            .serialize(&h, &mut self.bytes)
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
        let room = (i64::MAX as u64).saturating_sub(self.acc.count());
        if total.is_none_or(|t| t > room) {
            return Err(CoreError::range(
                "histogram",
                &format!(
                    "{WHAT} whose samples, with those already merged, number at most 2^63 - 1"
                ),
                "more",
            ));
        }
        for v in h.iter_recorded() {
            let count = v.count_at_value();
            let value = h.lowest_equivalent(v.value_iterated_to()).max(MIN_US);
            if value > MAX_US {
                self.clamped += count;
            }
            self.acc.add_us(value, count);
        }
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
    use crate::core::exphist::{IDX_MAX, IDX_MIN};
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

    /// The target shape: a busy series (100 requests a second),
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

    #[test]
    fn export_import_round_trip_is_exact() {
        let mut w = LatencyWindows::new(0.0);
        let mut rng = SplitMix64::new(3);
        for i in 0..5_000 {
            w.record(10f64.powf(rng.next_f64() * 9.6), i as f64);
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
        // Bucket by bucket (min and max become their buckets' values).
        let buckets = |x: &Aggregate| {
            let mut v = vec![];
            x.histogram().for_each(|i, c| v.push((i, c)));
            v
        };
        assert_eq!(buckets(&b), buckets(&a));
        let (pa, pb) = (a.percentiles(), b.percentiles());
        assert_eq!(pa.p50_us, pb.p50_us);
        assert_eq!(pa.p99_us, pb.p99_us);
    }

    #[test]
    fn every_bucket_survives_the_hdr_interchange() {
        // Each bucket's value, at HDR's 3 digits, lands back in the bucket.
        let h = full_histogram(SIGFIG);
        for i in IDX_MIN..=IDX_MAX {
            let r = rep_us(i);
            if index_us(r) != i {
                continue; // a sub-µs bucket no whole µs falls in
            }
            assert_eq!(
                index_us(h.lowest_equivalent(r).max(MIN_US)),
                i,
                "bucket {i}"
            );
        }
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
        let buckets = |x: &Aggregate| {
            let mut v = vec![];
            x.histogram().for_each(|i, c| v.push((i, c)));
            v
        };
        assert_eq!(buckets(&merged), buckets(&direct));
        assert_eq!(merged.percentiles().p99_us, direct.percentiles().p99_us);
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
        let mut h = Histogram::<u64>::new_with_bounds(MIN_US, MAX_US, 3).unwrap();
        for v in [10u64, 200, 3_000] {
            h.record(v).unwrap();
        }
        let mut v2 = Vec::new();
        hdrhistogram::serialization::V2Serializer::new()
            .serialize(&h, &mut v2)
            .unwrap();
        assert_eq!(b.import(&BASE64.encode(v2)).unwrap(), 3);
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
        assert_eq!(agg.percentiles().max_us, MAX_US);
    }

    #[test]
    fn garbage_imports_are_errors_and_merge_nothing() {
        let mut good = Aggregate::new();
        let mut w = LatencyWindows::new(0.0);
        w.record(1234.0, 0.0);
        good.add_window(&mut w, Window::AllTime, 0.0);
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
        assert_eq!(agg.histogram().count(), 0);
    }
}
