//! A fixed ring of equal time slices, rotated lazily by the times its owner
//! passes in (milliseconds from the caller, never from a timer).
//!
//! Why one type: the metrics windows (latency histograms and request
//! counts), the watchdogs' minute, the rollout cohorts and the breakers'
//! rolling windows all keep "the last N ms" as slices, and each used to carry
//! its own copy of the rotation rules. They now share these: whole steps
//! from one origin (so rings of different slice lengths agree on
//! boundaries), a clock that goes backwards or is not finite leaves the ring
//! alone, an idle gap longer than the ring clears it in one pass, and a slot
//! that rotates is cleared in place ([`Slot::clear`]), never freed.

/// Shape of one ring: `slices` slices of `slice_ms` each.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RingSpec {
    /// Length of one slice, ms.
    pub slice_ms: f64,
    /// Slices in the ring (at least 1 is kept).
    pub slices: usize,
}

/// Something kept per time slice. `clear` must empty it without freeing
/// what it allocated, so a slot that rotates is reused.
pub trait Slot: Default {
    /// Empties the slot, keeping its allocations.
    fn clear(&mut self);
}

/// A fixed ring of equal time slices; the head holds "now". Shared by the
/// latency histograms and request counters of the metrics windows, the
/// watchdogs, the rollout cohorts and the breakers' rolling windows, so all
/// of them rotate by the same rules.
///
/// ```
/// use reliability_core::core::time_ring::{RingSpec, SliceRing, Slot};
/// #[derive(Default)]
/// struct Hits(u32);
/// impl Slot for Hits {
///     fn clear(&mut self) {
///         self.0 = 0;
///     }
/// }
/// let spec = RingSpec { slice_ms: 1_000.0, slices: 10 };
/// let mut r: SliceRing<Hits> = SliceRing::new(spec, 0.0);
/// r.head(100.0).0 += 1;
/// r.head(9_900.0).0 += 1;
/// assert_eq!(r.slots(9_999.0).iter().map(|h| h.0).sum::<u32>(), 2);
/// // At 10 s the slice [0, 1 s) has left the 10 s window.
/// assert_eq!(r.slots(10_000.0).iter().map(|h| h.0).sum::<u32>(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct SliceRing<T> {
    slice_ms: f64,
    slots: Box<[T]>,
    /// Index of the slot that holds `head_start`. u32, and the origin kept
    /// as `young` rather than a time, so that the ring is 40 bytes: every
    /// breaker holds one (the registry checks its entry size).
    head: u32,
    /// Start time of the head slot.
    head_start: f64,
    /// Slices the ring moved since it was made or reset, up to its length:
    /// while fewer than the ring holds, the origin (nothing before it can be
    /// in a slot) is `head_start - young * slice_ms`; past that the oldest
    /// slice starts after the origin and bounds the span on its own.
    young: u32,
}

impl<T: Slot> SliceRing<T> {
    /// A ring of `spec.slices` empty slots whose first slice starts at `now`
    /// (a bad clock reading starts it at 0).
    pub fn new(spec: RingSpec, now: f64) -> Self {
        let n = spec.slices.clamp(1, u32::MAX as usize);
        SliceRing {
            slice_ms: spec.slice_ms,
            slots: (0..n).map(|_| T::default()).collect(),
            head: 0,
            head_start: finite_or_zero(now),
            young: 0,
        }
    }

    /// The span of the whole ring: slice length times slices, ms.
    pub fn window_ms(&self) -> f64 {
        self.slice_ms * self.slots.len() as f64
    }

    /// Moves the head forward so that `now` falls in it, clearing the slots
    /// it passes over. Time that goes backwards, or is not finite, leaves the
    /// ring alone: a bad clock reading must not wipe or poison the ring.
    #[inline]
    pub fn advance(&mut self, now: f64) {
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
                self.head = (self.head + 1) % n as u32;
                expire(&mut self.slots[self.head as usize]);
                self.slots[self.head as usize].clear();
            }
        }
        // Whole steps keep slice boundaries aligned to the origin.
        self.head_start += steps * self.slice_ms;
        self.young = (self.young as f64 + steps).min(n as f64) as u32;
    }

    /// The slot for `now`. A sample from the past goes into the newest slot:
    /// callers pass a monotonic clock, so that only happens on clock noise.
    #[inline]
    pub fn head(&mut self, now: f64) -> &mut T {
        self.advance(now);
        &mut self.slots[self.head as usize]
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
        self.covered_ms_at(now)
    }

    /// Whole slices `now` lies past the head (0 for the head itself, for
    /// time that goes backwards and for a bad clock reading).
    #[inline]
    pub fn steps_to(&self, now: f64) -> usize {
        let elapsed = now - self.head_start;
        if elapsed.is_finite() && elapsed >= self.slice_ms {
            (elapsed / self.slice_ms).floor().min(usize::MAX as f64) as usize
        } else {
            0
        }
    }

    /// The slots still live at `now`, without moving the ring: what
    /// [`slots`](Self::slots) would show after advancing, minus the cleared
    /// ones. Reads use it where moving the ring must wait for a writer
    /// (the longer windows are filled by folding finished short slices).
    pub fn live(&self, now: f64) -> impl Iterator<Item = &T> {
        let n = self.slots.len();
        let live = n.saturating_sub(self.steps_to(now));
        let head = self.head as usize;
        (0..live).map(move |j| &self.slots[(head + n - j) % n])
    }

    /// As [`covered_ms`](Self::covered_ms), without moving the ring.
    pub fn covered_ms_at(&self, now: f64) -> f64 {
        let head_start = self.head_start + self.steps_to(now) as f64 * self.slice_ms;
        let oldest = head_start - self.slice_ms * (self.slots.len() - 1) as f64;
        let origin = if (self.young as usize) < self.slots.len() {
            self.head_start - self.young as f64 * self.slice_ms
        } else {
            f64::NEG_INFINITY
        };
        let covered = now - oldest.max(origin);
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
        let head = self.head as usize;
        let slots = &self.slots;
        (0..k.min(n)).map(move |j| &slots[(head + n - j) % n])
    }

    /// Empties every slot and restarts the ring (and its origin) at `now`.
    pub fn reset(&mut self, now: f64) {
        self.slots.iter_mut().for_each(Slot::clear);
        self.head = 0;
        self.head_start = finite_or_zero(now);
        self.young = 0;
    }

    /// Every slot as stored, live or not, in storage order (for totals of
    /// memory, not for reads).
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter()
    }

    /// As [`iter`](Self::iter), mutably: for an owner that frees or
    /// replaces every slot at once.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.slots.iter_mut()
    }

    /// Slots in the ring.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Never true: a ring keeps at least one slot.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Start time of the head slot, ms.
    pub fn head_start(&self) -> f64 {
        self.head_start
    }

    /// The head slot, without moving the ring.
    pub fn head_slot(&self) -> &T {
        &self.slots[self.head as usize]
    }

    /// The slots that moving the ring to `now` would clear (the oldest
    /// first), without moving it: what a running sum of the stored slots
    /// holds beyond the live ones.
    pub fn expiring(&self, now: f64) -> impl Iterator<Item = &T> {
        let n = self.slots.len();
        let head = self.head as usize;
        (0..self.steps_to(now).min(n)).map(move |j| &self.slots[(head + 1 + j) % n])
    }

    /// The slot holding time `at`, moving the ring forward when `at` is past
    /// the head; `None` for a time older than the ring (or not finite
    /// before the head). For owners that file late samples in their own
    /// slice (the breakers batch successes) instead of in the head.
    #[inline]
    pub fn slot_at(&mut self, at: f64) -> Option<&mut T> {
        if at >= self.head_start {
            self.advance(at);
            return Some(&mut self.slots[self.head as usize]);
        }
        let back = ((self.head_start - at) / self.slice_ms).ceil();
        let n = self.slots.len();
        // NaN (a time that is not finite) is not below `n` either.
        if back.is_nan() || back >= n as f64 {
            return None;
        }
        let idx = (self.head as usize + n - back as usize) % n;
        Some(&mut self.slots[idx])
    }
}

fn finite_or_zero(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut r: SliceRing<N> = SliceRing::new(
            RingSpec {
                slice_ms: 60_000.0,
                slices: 5,
            },
            1_000.0,
        );
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
    fn late_times_find_their_own_slot_or_none() {
        let spec = RingSpec {
            slice_ms: 100.0,
            slices: 10,
        };
        let mut r: SliceRing<N> = SliceRing::new(spec, 0.0);
        r.slot_at(950.0).unwrap().0 += 1;
        // 50 ms is still inside the ring at 950 ms: its own slot, not the head.
        r.slot_at(50.0).unwrap().0 += 10;
        assert_eq!(ring_sum(&mut r, 999.0), 11);
        assert_eq!(ring_sum(&mut r, 1_050.0), 1);
        // Older than the ring, or not finite: no slot.
        assert!(r.slot_at(10.0).is_none());
        assert!(r.slot_at(f64::NAN).is_none());
        assert!(r.slot_at(f64::NEG_INFINITY).is_none());
        assert_eq!(r.expiring(1_050.0).count(), 0);
        assert_eq!(r.expiring(1_250.0).count(), 2);
        assert_eq!(r.expiring(1e12).count(), 10);
    }
}
