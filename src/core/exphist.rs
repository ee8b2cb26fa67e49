//! A compact sparse exponential histogram: the latency storage behind every
//! window (see `histogram`) and the native histogram Prometheus scrapes.
//!
//! # Layout
//!
//! Bucket `i` holds the durations `d` (in seconds) with
//! `2^((i-1)/64) < d <= 2^(i/64)`: Prometheus's native histogram schema 6,
//! so the buckets are exactly the ones `io.prometheus.client.Histogram`
//! carries and a scrape needs no conversion. Consecutive bounds are a ratio
//! of `2^(1/64) = 1.0109` apart: a bucket's midpoint is within 0.55 % of
//! every value in it, and quantiles are reported at that midpoint (rounded
//! to the microsecond, then clamped to the exact min and max).
//!
//! Values are whole microseconds from 1 µs to 1 h, i.e. bucket indexes
//! [`IDX_MIN`] ..= [`IDX_MAX`] (2 033 buckets). A histogram keeps only the
//! range of buckets it has seen, densely, in the narrowest counter that
//! holds its largest count (u8, widened to u16, u32, u64 on overflow):
//! latencies spread over 1–500 ms fill ~575 buckets, ~600 bytes while every
//! count is under 256. Merging is adding counts bucket by bucket: exact.
//!
//! ```
//! use reliability_core::core::exphist::{index_us, ExpHist, Acc};
//! let mut h = ExpHist::default();
//! for us in [1_000, 2_000, 3_000] {
//!     h.record(us, index_us(us), |_| true);
//! }
//! let mut acc = Acc::new();
//! acc.add(&h, 6_000.0);
//! let p = acc.percentiles();
//! assert!(p.p50_us.abs_diff(2_000) <= 11); // within 0.55 % of 2 ms
//! assert_eq!((p.min_us, p.max_us, p.mean_us), (1_000, 3_000, 2_000.0));
//! ```

use std::mem::size_of;

/// Prometheus native histogram schema: `2^(2^-6)` between bucket bounds.
pub const SCHEMA: i32 = 6;
const PER_OCTAVE: i32 = 1 << SCHEMA;
/// Smallest duration kept, µs (smaller ones are recorded as this).
pub const MIN_US: u64 = 1;
/// Largest duration kept: one hour in µs (larger ones are clamped to it).
pub const MAX_US: u64 = 3_600_000_000;
/// Bucket of 1 µs.
pub const IDX_MIN: i32 = index_us(MIN_US);
/// Bucket of one hour.
pub const IDX_MAX: i32 = index_us(MAX_US);
/// Buckets from 1 µs to one hour.
pub const IDX_RANGE: usize = (IDX_MAX - IDX_MIN + 1) as usize;
/// Buckets added on each side when a histogram's range grows, so that a
/// spread of latencies does not reallocate on every new bucket.
const PAD: i32 = 16;

/// `2^(k/64)` for k in 0..=64.
const BOUNDS: [f64; 65] = [
    1.0,
    1.0108892860517005,
    1.0218971486541166,
    1.0330248790212284,
    1.0442737824274138,
    1.0556451783605572,
    1.0671404006768237,
    1.0787607977571199,
    1.0905077326652577,
    1.102382583307841,
    1.1143867425958924,
    1.1265216186082418,
    1.1387886347566916,
    1.1511892299529827,
    1.1637248587775775,
    1.1763969916502812,
    1.189207115002721,
    1.202156731452703,
    1.215247359980469,
    1.22848053610687,
    1.241857812073484,
    1.255380757024691,
    1.2690509571917332,
    1.2828700160787783,
    1.2968395546510096,
    1.3109612115247644,
    1.3252366431597413,
    1.339667524053303,
    1.3542555469368927,
    1.3690024229745905,
    1.383909881963832,
    1.3989796725383112,
    std::f64::consts::SQRT_2,
    1.42961333839197,
    1.4451808069770467,
    1.460917794180647,
    1.4768261459394993,
    1.4929077282912648,
    1.5091644275934228,
    1.5255981507445384,
    1.5422108254079407,
    1.559004400237837,
    1.5759808451078865,
    1.593142151342267,
    1.6104903319492543,
    1.6280274218573478,
    1.645755478153965,
    1.6636765803267364,
    1.681792830507429,
    1.7001063537185235,
    1.718619298122478,
    1.7373338352737062,
    1.7562521603732995,
    1.7753764925265212,
    1.7947090750031072,
    1.8142521755003989,
    1.8340080864093424,
    1.8539791250833855,
    1.8741676341103,
    1.8945759815869656,
    1.9152065613971474,
    1.9360617934922943,
    1.9571441241754002,
    1.978456026387951,
    2.0,
];

/// For each of 1024 equal cells of the mantissa range [1, 2), the first
/// bound at or above the cell's start. Bounds are > 1 % apart and cells
/// < 0.1 % wide, so a mantissa's bucket is this entry or the next one: one
/// lookup and one comparison instead of a logarithm.
const CELLS: [u8; 1024] = cells();

const fn cells() -> [u8; 1024] {
    let mut t = [0u8; 1024];
    let mut c = 0;
    let mut k = 0;
    while c < 1024 {
        let low = 1.0 + c as f64 / 1024.0;
        while BOUNDS[k] < low {
            k += 1;
        }
        t[c] = k as u8;
        c += 1;
    }
    t
}

/// The schema-6 bucket of a positive, normal duration in seconds.
#[inline]
pub const fn index_seconds(s: f64) -> i32 {
    let bits = s.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32 - 1023;
    let cell = ((bits >> 42) & 0x3ff) as usize;
    let m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    let mut k = CELLS[cell] as usize;
    if m > BOUNDS[k] {
        k += 1;
    }
    exp * PER_OCTAVE + k as i32
}

/// The bucket of a duration in whole microseconds (>= 1).
#[inline]
pub const fn index_us(us: u64) -> i32 {
    index_seconds(us as f64 * 1e-6)
}

/// Upper bound of bucket `i`, in seconds: `2^(i/64)`.
pub fn upper_seconds(i: i32) -> f64 {
    BOUNDS[i.rem_euclid(PER_OCTAVE) as usize] * 2f64.powi(i.div_euclid(PER_OCTAVE))
}

/// The whole microsecond a bucket is reported as: the one nearest its
/// midpoint that falls in it (a bucket under 1 µs wide holds at most one),
/// at most [`MAX_US`]. Exported histograms carry each bucket at this value,
/// and importing it lands in the same bucket: round trips are exact.
pub fn rep_us(i: i32) -> u64 {
    let mid = (upper_seconds(i - 1) + upper_seconds(i)) * 0.5e6;
    let n = (mid.round() as u64).clamp(MIN_US, MAX_US);
    if index_us(n) == i {
        return n;
    }
    for c in [n + 1, n.saturating_sub(1).max(MIN_US)] {
        if index_us(c) == i {
            return c;
        }
    }
    n
}

/// A counter width.
trait Count: Copy + Default {
    const MAX: Self;
    fn inc(&mut self);
    fn get(self) -> u64;
    /// Adds `n` if the sum fits this width (u64 saturates); false otherwise.
    fn try_add(&mut self, n: u64) -> bool;
}

macro_rules! count {
    ($t:ty) => {
        impl Count for $t {
            const MAX: Self = <$t>::MAX;
            #[inline]
            fn inc(&mut self) {
                *self += 1;
            }
            #[inline]
            fn get(self) -> u64 {
                self as u64
            }
            #[inline]
            fn try_add(&mut self, n: u64) -> bool {
                let sum = (*self as u64).saturating_add(n);
                if sum > <$t>::MAX as u64 {
                    return false;
                }
                *self = sum as $t;
                true
            }
        }
    };
}
count!(u8);
count!(u16);
count!(u32);
count!(u64);

/// The counts of a histogram's range, in the narrowest width that holds them.
#[derive(Debug, Clone)]
enum Counts {
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
}

macro_rules! each {
    ($counts:expr, $v:ident => $body:expr) => {
        match $counts {
            Counts::U8($v) => $body,
            Counts::U16($v) => $body,
            Counts::U32($v) => $body,
            Counts::U64($v) => $body,
        }
    };
}

#[inline]
fn bump<T: Count>(v: &mut [T], off: usize) -> bool {
    match v.get_mut(off) {
        Some(c) if (*c).get() != T::MAX.get() => {
            c.inc();
            true
        }
        _ => false,
    }
}

/// `v` copied into a zeroed run of `n` counts, starting at `at`.
fn regrow<T: Count>(v: &[T], at: usize, n: usize) -> Vec<T> {
    let mut w = vec![T::default(); n];
    w[at..at + v.len()].copy_from_slice(v);
    w
}

fn widen<T: Count, U: From<T>>(v: &[T]) -> Vec<U> {
    v.iter().map(|&c| U::from(c)).collect()
}

/// One histogram: a dense run of counts over the buckets it has seen.
#[derive(Debug, Clone)]
pub struct ExpHist {
    /// Bucket index of `counts[0]`.
    lo: i32,
    counts: Counts,
    total: u64,
    min_us: u64,
    max_us: u64,
}

impl Default for ExpHist {
    fn default() -> Self {
        ExpHist {
            lo: 0,
            counts: Counts::U8(Vec::new()),
            total: 0,
            min_us: u64::MAX,
            max_us: 0,
        }
    }
}

impl ExpHist {
    /// Counts `us` (whole µs in 1 ..= [`MAX_US`]) in bucket `idx` (its
    /// [`index_us`], computed once by the caller for all the histograms a
    /// sample goes to). `grant` is asked for the extra heap bytes when the
    /// range grows or the counters widen; if it refuses, nothing changes
    /// and this returns false.
    #[inline]
    pub fn record(&mut self, us: u64, idx: i32, mut grant: impl FnMut(usize) -> bool) -> bool {
        let off = idx.wrapping_sub(self.lo) as u32 as usize;
        let done = each!(&mut self.counts, v => bump(v, off));
        if !done && !self.make_room(idx, &mut grant) {
            return false;
        }
        self.total += 1;
        self.min_us = self.min_us.min(us);
        self.max_us = self.max_us.max(us);
        true
    }

    /// The rare part of [`record`](Self::record): grow the range to cover
    /// `idx` or widen the counters, then count.
    #[cold]
    fn make_room(&mut self, idx: i32, grant: &mut impl FnMut(usize) -> bool) -> bool {
        let idx = idx.clamp(IDX_MIN, IDX_MAX);
        if !self.cover(idx, grant) {
            return false;
        }
        let off = (idx - self.lo) as usize;
        loop {
            if each!(&mut self.counts, v => bump(v, off)) {
                return true;
            }
            // Full at this width: widen everything (at most three times in a life).
            match self.widen_counts(grant) {
                Some(true) => {}
                // 2^64 samples in one bucket: saturate.
                None => return true,
                Some(false) => return false,
            }
        }
    }

    /// Adds every count of `src` (a histogram of the same schema), as if
    /// its samples had been recorded here one by one: the range and counter
    /// width end up the same, and growth is asked of `grant` the same way.
    /// Used to fold a finished short slice into the longer windows' slices
    /// once, instead of writing every sample to all of them. On a refusal
    /// this returns false with part of `src` added: the caller drops the
    /// histogram.
    pub fn merge_from(&mut self, src: &ExpHist, mut grant: impl FnMut(usize) -> bool) -> bool {
        if src.total == 0 {
            return true;
        }
        let mut ok = true;
        src.for_each(|idx, c| {
            ok = ok && self.add_n(idx, c, &mut grant);
        });
        if ok {
            self.total += src.total;
            self.min_us = self.min_us.min(src.min_us);
            self.max_us = self.max_us.max(src.max_us);
        }
        ok
    }

    /// Takes the counts of `src` back out of this histogram: the inverse of
    /// [`merge_from`](Self::merge_from) for a histogram that holds every
    /// sample of `src`, exact because counts are integers. It keeps the
    /// range and the counter width (like [`clear`](Self::clear), so the next
    /// merge does not reallocate). Returns false and changes nothing when
    /// `src` is not contained here (a bucket of `src` counts more).
    ///
    /// Min and max: a histogram cannot know which samples remain, so they
    /// stay what they were, bounds of the remaining samples rather than their
    /// exact extremes (exact again once empty). Owners that keep a running
    /// sum this way take the extremes from its parts, as `LatencyWindows`
    /// does from its live slices.
    ///
    /// ```
    /// use reliability_core::core::exphist::{index_us, ExpHist};
    /// let (mut a, mut b) = (ExpHist::default(), ExpHist::default());
    /// a.record(1_000, index_us(1_000), |_| true);
    /// b.record(5_000, index_us(5_000), |_| true);
    /// let before = a.clone();
    /// a.merge_from(&b, |_| true);
    /// assert!(a.subtract(&b));
    /// assert!(a.same_counts(&before));
    /// assert!(!a.subtract(&b), "b is no longer contained in a");
    /// ```
    pub fn subtract(&mut self, src: &ExpHist) -> bool {
        if src.total == 0 {
            return true;
        }
        let (lo, len) = (self.lo, self.len() as i32);
        let mut contained = src.total <= self.total;
        src.for_each(|idx, c| {
            contained = contained
                && idx >= lo
                && idx < lo + len
                && each!(&self.counts, v => v[(idx - lo) as usize].get() >= c);
        });
        if !contained {
            return false;
        }
        src.for_each(|idx, c| {
            let off = (idx - lo) as usize;
            each!(&mut self.counts, v => {
                let left = v[off].get() - c;
                v[off] = Default::default();
                // `left` fits: it is at most the count that was there.
                let _ = v[off].try_add(left);
            });
        });
        self.total -= src.total;
        if self.total == 0 {
            self.min_us = u64::MAX;
            self.max_us = 0;
        }
        true
    }

    /// True when both hold the same count in every bucket (ranges, widths
    /// and min/max aside).
    pub fn same_counts(&self, other: &ExpHist) -> bool {
        let mut a = Vec::new();
        let mut b = Vec::new();
        self.for_each(|i, c| a.push((i, c)));
        other.for_each(|i, c| b.push((i, c)));
        self.total == other.total && a == b
    }

    /// Adds `n` to bucket `idx`, growing the range and the width as needed.
    fn add_n(&mut self, idx: i32, n: u64, grant: &mut impl FnMut(usize) -> bool) -> bool {
        let idx = idx.clamp(IDX_MIN, IDX_MAX);
        if !self.cover(idx, grant) {
            return false;
        }
        let off = (idx - self.lo) as usize;
        loop {
            if each!(&mut self.counts, v => v[off].try_add(n)) {
                return true;
            }
            // u64 saturates in try_add, so None cannot happen here.
            if self.widen_counts(grant) != Some(true) {
                return false;
            }
        }
    }

    /// Widens every counter one step: `Some(true)` done, `Some(false)`
    /// refused by `grant`, `None` already at u64.
    fn widen_counts(&mut self, grant: &mut impl FnMut(usize) -> bool) -> Option<bool> {
        let len = self.len();
        let next = match &self.counts {
            Counts::U8(v) => Counts::U16(widen(v)),
            Counts::U16(v) => Counts::U32(widen(v)),
            Counts::U32(v) => Counts::U64(widen(v)),
            Counts::U64(_) => return None,
        };
        if !grant(len * self.width()) {
            return Some(false);
        }
        self.counts = next;
        Some(true)
    }

    /// Grows the range (with its padding) to hold bucket `idx`, already
    /// clamped; false if `grant` refuses the bytes.
    fn cover(&mut self, idx: i32, grant: &mut impl FnMut(usize) -> bool) -> bool {
        let len = self.len() as i32;
        if len == 0 || idx < self.lo || idx >= self.lo + len {
            let (lo, hi) = if len == 0 {
                (idx - PAD, idx + PAD)
            } else {
                (self.lo.min(idx - PAD), (self.lo + len - 1).max(idx + PAD))
            };
            let (lo, hi) = (lo.max(IDX_MIN), hi.min(IDX_MAX));
            let n = (hi - lo + 1) as usize;
            let width = self.width();
            if !grant((n - len as usize) * width) {
                return false;
            }
            let at = if len == 0 { 0 } else { (self.lo - lo) as usize };
            self.counts = match &self.counts {
                Counts::U8(v) => Counts::U8(regrow(v, at, n)),
                Counts::U16(v) => Counts::U16(regrow(v, at, n)),
                Counts::U32(v) => Counts::U32(regrow(v, at, n)),
                Counts::U64(v) => Counts::U64(regrow(v, at, n)),
            };
            self.lo = lo;
        }
        true
    }

    fn width(&self) -> usize {
        match &self.counts {
            Counts::U8(_) => 1,
            Counts::U16(_) => 2,
            Counts::U32(_) => 4,
            Counts::U64(_) => 8,
        }
    }

    /// Buckets in the stored range (occupied or not).
    fn len(&self) -> usize {
        each!(&self.counts, v => v.len())
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Smallest and largest sample in µs, exact; `None` when empty.
    pub fn min_max(&self) -> Option<(u64, u64)> {
        (self.total > 0).then_some((self.min_us, self.max_us))
    }

    /// Empties the histogram, keeping its range and width (a slot that
    /// rotates refills at the same size).
    pub fn clear(&mut self) {
        if self.total > 0 {
            each!(&mut self.counts, v => v.fill(Default::default()));
        }
        self.total = 0;
        self.min_us = u64::MAX;
        self.max_us = 0;
    }

    /// Heap bytes of the counts (allocated exactly: `vec!` and `collect`
    /// of a sized iterator reserve the length).
    pub fn heap_bytes(&self) -> usize {
        each!(&self.counts, v => v.capacity()) * self.width()
    }

    /// Every occupied bucket, in increasing order: (index, count).
    pub fn for_each(&self, mut f: impl FnMut(i32, u64)) {
        let lo = self.lo;
        each!(&self.counts, v => {
            for (j, c) in v.iter().enumerate() {
                if c.get() > 0 {
                    f(lo + j as i32, c.get());
                }
            }
        });
    }
}

impl ExpHist {
    /// The buckets as a Prometheus native histogram's positive spans
    /// ((offset, length); the first offset is the first bucket's index, the
    /// others the gap since the previous span) and deltas (each count minus
    /// the previous one).
    ///
    /// ```
    /// use reliability_core::core::exphist::{index_us, ExpHist};
    /// let mut h = ExpHist::default();
    /// h.record(1_000_000, index_us(1_000_000), |_| true); // 1 s: bucket 0
    /// assert_eq!(h.native_spans(), (vec![(0, 1)], vec![1]));
    /// ```
    pub fn native_spans(&self) -> (Vec<(i32, u32)>, Vec<i64>) {
        let (mut spans, mut deltas) = (Vec::<(i32, u32)>::new(), Vec::new());
        let (mut prev_idx, mut prev_count) = (None::<i32>, 0i64);
        self.for_each(|i, c| {
            match prev_idx {
                Some(p) if p + 1 == i => spans.last_mut().expect("a span is open").1 += 1,
                Some(p) => spans.push((i - p - 1, 1)),
                None => spans.push((i, 1)),
            }
            let c = c.min(i64::MAX as u64) as i64;
            deltas.push(c - prev_count);
            prev_count = c;
            prev_idx = Some(i);
        });
        (spans, deltas)
    }
}

/// A full-range u64 histogram for reads: the sum of window slices, of
/// several series, or of other processes' exports. One per store, cleared
/// (only over the buckets it used) and reused.
#[derive(Clone)]
pub struct Acc {
    counts: Box<[u64]>,
    total: u64,
    min_us: u64,
    max_us: u64,
    sum_us: f64,
    /// Occupied offsets are within `occ_lo..occ_hi`.
    occ_lo: usize,
    occ_hi: usize,
}

impl Default for Acc {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Acc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acc").field("count", &self.total).finish()
    }
}

impl PartialEq for Acc {
    fn eq(&self, other: &Self) -> bool {
        self.total == other.total
            && self.min_us == other.min_us
            && self.max_us == other.max_us
            && self.counts == other.counts
    }
}

impl Acc {
    /// An empty histogram.
    pub fn new() -> Self {
        Acc {
            counts: vec![0; IDX_RANGE].into_boxed_slice(),
            total: 0,
            min_us: u64::MAX,
            max_us: 0,
            sum_us: 0.0,
            occ_lo: IDX_RANGE,
            occ_hi: 0,
        }
    }

    /// Bytes this histogram holds on the heap (its bucket counts).
    pub fn heap_bytes(&self) -> usize {
        self.counts.len() * size_of::<u64>()
    }

    /// Empties the histogram (keeps its allocation).
    pub fn clear(&mut self) {
        if self.occ_lo < self.occ_hi {
            self.counts[self.occ_lo..self.occ_hi].fill(0);
        }
        self.total = 0;
        self.min_us = u64::MAX;
        self.max_us = 0;
        self.sum_us = 0.0;
        self.occ_lo = IDX_RANGE;
        self.occ_hi = 0;
    }

    /// Adds `h`, whose samples sum to `sum_us`.
    pub fn add(&mut self, h: &ExpHist, sum_us: f64) {
        if h.total == 0 {
            return;
        }
        let at = (h.lo - IDX_MIN) as usize;
        let n = h.len();
        let dst = &mut self.counts[at..at + n];
        each!(&h.counts, v => {
            for (d, c) in dst.iter_mut().zip(v.iter()) {
                *d = d.saturating_add(c.get());
            }
        });
        self.occ_lo = self.occ_lo.min(at);
        self.occ_hi = self.occ_hi.max(at + n);
        self.total += h.total;
        self.min_us = self.min_us.min(h.min_us);
        self.max_us = self.max_us.max(h.max_us);
        self.sum_us += sum_us;
    }

    /// Adds the counts of `h` and `sum_us` to the mean, but not its min and
    /// max: for a running sum whose extremes are only bounds (see
    /// [`ExpHist::subtract`]); the caller adds the exact ones with
    /// [`include_extremes`](Self::include_extremes).
    pub fn add_counts(&mut self, h: &ExpHist, sum_us: f64) {
        if h.total == 0 {
            return;
        }
        let (min_us, max_us) = (self.min_us, self.max_us);
        self.add(h, sum_us);
        (self.min_us, self.max_us) = (min_us, max_us);
    }

    /// Takes the counts of `h` (added before, by [`add`](Self::add) or
    /// [`add_counts`](Self::add_counts) as part of a larger histogram) and
    /// `sum_us` back out; min and max are left alone, as in
    /// [`add_counts`](Self::add_counts). The occupied range is not narrowed
    /// (it only bounds where counts may be).
    pub fn subtract_counts(&mut self, h: &ExpHist, sum_us: f64) {
        if h.total == 0 {
            return;
        }
        let at = (h.lo - IDX_MIN) as usize;
        let n = h.len();
        let dst = &mut self.counts[at..at + n];
        each!(&h.counts, v => {
            for (d, c) in dst.iter_mut().zip(v.iter()) {
                *d = d.saturating_sub(c.get());
            }
        });
        self.total = self.total.saturating_sub(h.total);
        self.sum_us -= sum_us;
    }

    /// Widens min and max to take in `min_us ..= max_us` (exact extremes of
    /// counts added with [`add_counts`](Self::add_counts)).
    pub fn include_extremes(&mut self, min_us: u64, max_us: u64) {
        self.min_us = self.min_us.min(min_us);
        self.max_us = self.max_us.max(max_us);
    }

    /// Adds `n` samples of `us` µs (clamped into 1 ..= [`MAX_US`]).
    pub fn add_us(&mut self, us: u64, n: u64) {
        if n == 0 {
            return;
        }
        let us = us.clamp(MIN_US, MAX_US);
        let at = (index_us(us) - IDX_MIN) as usize;
        self.counts[at] = self.counts[at].saturating_add(n);
        self.occ_lo = self.occ_lo.min(at);
        self.occ_hi = self.occ_hi.max(at + 1);
        self.total += n;
        self.min_us = self.min_us.min(us);
        self.max_us = self.max_us.max(us);
        self.sum_us += us as f64 * n as f64;
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Every occupied bucket, in increasing order: (index, count).
    pub fn for_each(&self, mut f: impl FnMut(i32, u64)) {
        if self.occ_lo >= self.occ_hi {
            return;
        }
        for (j, &c) in self.counts[self.occ_lo..self.occ_hi].iter().enumerate() {
            if c > 0 {
                f(IDX_MIN + (self.occ_lo + j) as i32, c);
            }
        }
    }

    /// Count, exact min/max and mean, and the quantiles (nearest rank, each
    /// at its bucket's [`rep_us`], clamped to min..max).
    pub fn percentiles(&self) -> Percentiles {
        let (lo, hi) = (self.occ_lo, self.occ_hi.max(self.occ_lo));
        summarize(
            self.total,
            self.min_us,
            self.max_us,
            self.sum_us,
            IDX_MIN + lo as i32,
            &self.counts[lo..hi],
        )
    }
}

impl ExpHist {
    /// As [`Acc::percentiles`], for one histogram whose samples sum to `sum_us`.
    pub fn percentiles(&self, sum_us: f64) -> Percentiles {
        each!(&self.counts, v => summarize(self.total, self.min_us, self.max_us, sum_us, self.lo, v))
    }
}

/// Buckets summed at a time by [`summarize`] before it looks inside.
const CHUNK: usize = 32;

/// One walk over the dense counts (bucket `lo` first) for five quantiles
/// (nearest rank, each reported at its bucket's [`rep_us`], clamped to the
/// exact min..max). Why chunks: a read is mostly this walk, and a bucket by
/// bucket walk with its rank test costs ~1 µs over the ~600 buckets of a
/// 1–500 ms spread; summing 32 counts at a time (vectorised) and stepping
/// into a chunk only where a rank falls in it does the same in a fraction,
/// with the same result, and stops after the last rank.
fn summarize<T: Count>(
    total: u64,
    min_us: u64,
    max_us: u64,
    sum_us: f64,
    lo: i32,
    counts: &[T],
) -> Percentiles {
    if total == 0 {
        return Percentiles::default();
    }
    const QS: [f64; 5] = [0.5, 0.9, 0.95, 0.99, 0.999];
    let ranks = QS.map(|q| ((q * total as f64).ceil() as u64).clamp(1, total));
    let mut out = [max_us; 5];
    let mut j = 0;
    let mut cum = 0u64;
    for (k, chunk) in counts.chunks(CHUNK).enumerate() {
        let sum: u64 = chunk.iter().map(|c| c.get()).sum();
        if cum + sum < ranks[j] {
            cum += sum;
            continue;
        }
        for (m, c) in chunk.iter().enumerate() {
            cum += c.get();
            while j < 5 && cum >= ranks[j] {
                out[j] = rep_us(lo + (k * CHUNK + m) as i32).clamp(min_us, max_us);
                j += 1;
            }
        }
        if j == 5 {
            break;
        }
    }
    Percentiles {
        count: total,
        min_us,
        max_us,
        mean_us: sum_us / total as f64,
        p50_us: out[0],
        p90_us: out[1],
        p95_us: out[2],
        p99_us: out[3],
        p999_us: out[4],
    }
}

/// Summary of a histogram, in microseconds. All zero when it is empty.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    /// Samples in the histogram.
    pub count: u64,
    /// The smallest sample (exact).
    pub min_us: u64,
    /// The largest sample (exact).
    pub max_us: u64,
    /// Exact mean, in microseconds.
    pub mean_us: f64,
    /// Median, in microseconds (bucket midpoint, within 0.55 %).
    pub p50_us: u64,
    /// 90th percentile, in microseconds.
    pub p90_us: u64,
    /// 95th percentile, in microseconds.
    pub p95_us: u64,
    /// 99th percentile, in microseconds.
    pub p99_us: u64,
    /// 99.9th percentile, in microseconds.
    pub p999_us: u64,
}

/// The stored size of one histogram header (what a slot holds inline).
pub const HEADER_BYTES: usize = size_of::<ExpHist>();

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::rng::SplitMix64;

    #[test]
    fn index_matches_the_logarithm_and_bounds_are_upper_inclusive() {
        for us in (1..5_000u64).chain((5_000..MAX_US).step_by(9_999_991)) {
            let s = us as f64 * 1e-6;
            let exact = (s.log2() * 64.0).ceil() as i32;
            let i = index_us(us);
            // The logarithm itself is off by an ulp at some bounds.
            assert!((i - exact).abs() <= 1, "{us}: {i} vs {exact}");
            assert!(
                upper_seconds(i - 1) < s && s <= upper_seconds(i),
                "{us} in bucket {i}"
            );
        }
        for e in -20..12 {
            let p = 2f64.powi(e);
            assert_eq!(
                index_seconds(p),
                e * 64,
                "2^{e} is the upper bound of its bucket"
            );
        }
        assert_eq!(IDX_MIN, -1275);
        assert_eq!(IDX_MAX, 757);
    }

    #[test]
    fn midpoints_are_within_0_55_percent_of_their_bucket() {
        // The top bucket is reported at MAX_US, below its midpoint.
        for i in IDX_MIN + 700..IDX_MAX {
            let (lo, hi) = (upper_seconds(i - 1) * 1e6, upper_seconds(i) * 1e6);
            let r = rep_us(i) as f64;
            // Half a bucket, plus the rounding to a whole µs.
            assert!(
                r - lo <= 0.0055 * lo + 0.5 && hi - r <= 0.0055 * hi + 0.5,
                "{i}: {lo} {r} {hi}"
            );
        }
    }

    #[test]
    fn counters_widen_and_keep_every_count() {
        let mut h = ExpHist::default();
        let mut granted = 0;
        for _ in 0..70_000 {
            assert!(h.record(1_000, index_us(1_000), |b| {
                granted += b;
                true
            }));
        }
        h.record(2, index_us(2), |b| {
            granted += b;
            true
        });
        assert_eq!(h.count(), 70_001);
        assert_eq!(h.heap_bytes(), granted);
        assert!(matches!(h.counts, Counts::U32(_)));
        let mut seen = vec![];
        h.for_each(|i, c| seen.push((i, c)));
        assert_eq!(seen, vec![(index_us(2), 1), (index_us(1_000), 70_000)]);
        assert_eq!(h.min_max(), Some((2, 1_000)));
        h.clear();
        assert!(h.is_empty());
        assert_eq!(h.heap_bytes(), granted, "clear keeps the allocation");
    }

    /// A histogram of `n` log-uniform samples over 10 µs .. 10 s.
    fn random_hist(rng: &mut SplitMix64, n: usize) -> ExpHist {
        let mut h = ExpHist::default();
        for _ in 0..n {
            let us = (10.0 * 1e6f64.powf(rng.next_f64())).round() as u64;
            h.record(us, index_us(us), |_| true);
        }
        h
    }

    #[test]
    fn add_then_subtract_returns_the_identical_histogram_and_quantiles() {
        let mut rng = SplitMix64::new(17);
        for round in 0..200 {
            let a = random_hist(&mut rng, 1 + round * 7);
            // Sometimes enough to widen the counters of the sum.
            let b = random_hist(&mut rng, if round % 10 == 0 { 70_000 } else { round * 3 });
            let mut s = a.clone();
            assert!(s.merge_from(&b, |_| true));
            assert!(s.subtract(&b));
            assert!(s.same_counts(&a), "round {round}");
            let mut buckets = (vec![], vec![]);
            s.for_each(|i, c| buckets.0.push((i, c)));
            a.for_each(|i, c| buckets.1.push((i, c)));
            assert_eq!(buckets.0, buckets.1);
            // With the exact extremes (the owner's), the same quantiles.
            let (mut x, mut y) = (Acc::new(), Acc::new());
            x.add_counts(&s, 1.0);
            let (lo, hi) = a.min_max().unwrap();
            x.include_extremes(lo, hi);
            y.add(&a, 1.0);
            assert_eq!(x, y);
            assert_eq!(x.percentiles(), y.percentiles());
            // Taking out everything empties it, extremes included.
            assert!(s.subtract(&a));
            assert!(s.is_empty() && s.min_max().is_none());
            assert_eq!(s.percentiles(0.0), Percentiles::default());
        }
    }

    /// The chunked walk reports what a bucket by bucket nearest-rank walk does.
    #[test]
    fn chunked_quantiles_match_the_bucket_by_bucket_walk() {
        let mut rng = SplitMix64::new(23);
        for n in [1usize, 2, 3, 31, 32, 33, 100, 999, 5_000, 70_000] {
            let h = random_hist(&mut rng, n);
            let mut buckets = vec![];
            h.for_each(|i, c| buckets.push((i, c)));
            let (lo, hi) = h.min_max().unwrap();
            let total = h.count();
            let expect = [0.5, 0.9, 0.95, 0.99, 0.999].map(|q: f64| {
                let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
                let mut cum = 0;
                let (i, _) = buckets
                    .iter()
                    .find(|(_, c)| {
                        cum += c;
                        cum >= rank
                    })
                    .unwrap();
                rep_us(*i).clamp(lo, hi)
            });
            let p = h.percentiles(0.0);
            assert_eq!(
                [p.p50_us, p.p90_us, p.p95_us, p.p99_us, p.p999_us],
                expect,
                "n {n}"
            );
            let mut acc = Acc::new();
            acc.add(&h, 0.0);
            assert_eq!(acc.percentiles(), p, "n {n}");
        }
    }

    #[test]
    fn subtracting_what_is_not_contained_changes_nothing() {
        let mut rng = SplitMix64::new(3);
        let a = random_hist(&mut rng, 50);
        let mut b = a.clone();
        b.record(2_000_000, index_us(2_000_000), |_| true);
        let mut s = a.clone();
        assert!(!s.subtract(&b));
        assert!(s.same_counts(&a));
        assert!(s.subtract(&ExpHist::default()));
    }

    #[test]
    fn acc_subtract_counts_undoes_add() {
        let mut rng = SplitMix64::new(5);
        let (a, b) = (random_hist(&mut rng, 300), random_hist(&mut rng, 300));
        let mut x = Acc::new();
        x.add(&a, 10.0);
        x.add(&b, 20.0);
        x.subtract_counts(&b, 20.0);
        let mut y = Acc::new();
        y.add(&a, 10.0);
        let (lo, hi) = (a.min_max().unwrap(), b.min_max().unwrap());
        // Counts and total are a's again; the extremes still bound both.
        assert_eq!(x.count(), y.count());
        let (mut cx, mut cy) = (vec![], vec![]);
        x.for_each(|i, c| cx.push((i, c)));
        y.for_each(|i, c| cy.push((i, c)));
        assert_eq!(cx, cy);
        assert_eq!(x.percentiles().min_us, lo.0.min(hi.0));
        assert_eq!(x.percentiles().mean_us, 10.0 / 300.0);
    }

    #[test]
    fn a_refused_grant_records_nothing() {
        let mut h = ExpHist::default();
        assert!(!h.record(5, index_us(5), |_| false));
        assert!(h.is_empty());
        assert_eq!(h.heap_bytes(), 0);
    }

    #[test]
    fn every_quantile_is_within_1_percent_of_the_exact_one() {
        let mut rng = SplitMix64::new(7);
        for n in [1usize, 2, 7, 100, 10_000] {
            let mut xs: Vec<u64> = (0..n)
                .map(|_| {
                    // Log-uniform over 100 µs .. 2 s.
                    let u = rng.next_f64();
                    (100.0 * 20_000f64.powf(u)).round() as u64
                })
                .collect();
            let mut h = ExpHist::default();
            for &x in &xs {
                h.record(x, index_us(x), |_| true);
            }
            let mut acc = Acc::new();
            acc.add(&h, xs.iter().sum::<u64>() as f64);
            let p = acc.percentiles();
            xs.sort_unstable();
            for (q, got) in [
                (0.5, p.p50_us),
                (0.9, p.p90_us),
                (0.95, p.p95_us),
                (0.99, p.p99_us),
                (0.999, p.p999_us),
            ] {
                let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
                let exact = xs[rank - 1] as f64;
                let err = (got as f64 - exact).abs() / exact;
                assert!(err <= 0.01, "n {n} q {q}: {got} vs {exact} ({err})");
            }
            assert_eq!(p.min_us, xs[0]);
            assert_eq!(p.max_us, xs[n - 1]);
        }
    }
}
