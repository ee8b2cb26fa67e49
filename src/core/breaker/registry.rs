//! Named breakers, interned to small integer ids so the hot path passes a
//! number, not a string. Like the original registry, asking for an existing
//! name returns the existing breaker and ignores the new options.
//!
//! Names follow the one name rule of the crate ([`check_name`]: 1 to 256
//! characters, no control, invisible or bidi character), since they end up
//! in logs, metric labels and JSON. The storage is not a
//! [`crate::core::named::Named`]: that keeps its entries in one doubling
//! `Vec`, which at the 10 000-breaker default would carry up to as many
//! spare ~200-byte entries again and move every entry on growth; the
//! fixed-size chunks below keep the per-breaker memory target (< 1 KB, JS
//! and Rust together) and never move an entry.

use std::collections::HashMap;
use std::rc::Rc;

use super::machine::{Admission, Breaker, BreakerOutcome, Transitions};
use super::options::BreakerOptions;
use crate::core::error::{CoreError, CoreResult};
use crate::core::named::check_name;
use crate::core::rng::SplitMix64;

/// Default cap on breakers per registry: ids are dense and never reused, so
/// a caller creating breakers per request (opossum #404) hits a clear error
/// at creation instead of growing without bound (100,000 names cost ~130 MB).
pub const DEFAULT_MAX_BREAKERS: usize = 10_000;

/// The highest cap `set_max_breakers` accepts.
pub const MAX_BREAKERS: usize = 1_000_000;

struct Entry {
    /// Shared with the name index: one allocation per name.
    name: Rc<str>,
    breaker: Breaker,
    rng: SplitMix64,
}

/// Entries per chunk. Chunks are allocated whole and never move or grow, so
/// the registry does not carry a doubling `Vec`'s spare capacity (up to 2x
/// the entries) and ids stay valid indexes forever.
const CHUNK: usize = 1024;

/// Dense id-indexed storage in fixed-size chunks.
#[derive(Default)]
struct Entries {
    chunks: Vec<Vec<Entry>>,
    len: usize,
}

impl Entries {
    fn get(&self, id: usize) -> Option<&Entry> {
        self.chunks.get(id / CHUNK)?.get(id % CHUNK)
    }

    fn get_mut(&mut self, id: usize) -> Option<&mut Entry> {
        self.chunks.get_mut(id / CHUNK)?.get_mut(id % CHUNK)
    }

    fn last(&self) -> Option<&Entry> {
        self.len.checked_sub(1).and_then(|i| self.get(i))
    }

    fn push(&mut self, e: Entry) {
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        self.chunks
            .last_mut()
            .expect("a chunk was just ensured")
            .push(e);
        self.len += 1;
    }
}

/// The breakers of one thread, by name and by dense id, capped at `maxBreakers`.
///
/// ```
/// use reliability_core::core::breaker::{BreakerOptions, BreakerRegistry};
/// let mut r = BreakerRegistry::new(1);
/// let (id, created) = r.get_or_create("db", BreakerOptions::default(), None, 0.0).unwrap();
/// assert!(created);
/// assert_eq!(r.id_of("db"), Some(id));
/// ```
pub struct BreakerRegistry {
    entries: Entries,
    by_name: HashMap<Rc<str>, u32>,
    seeder: SplitMix64,
    max_breakers: usize,
}

impl BreakerRegistry {
    /// `seed` drives the per-breaker jitter generators of breakers created
    /// without their own seed.
    pub fn new(seed: u64) -> Self {
        BreakerRegistry {
            entries: Entries::default(),
            by_name: HashMap::new(),
            seeder: SplitMix64::new(seed),
            max_breakers: DEFAULT_MAX_BREAKERS,
        }
    }

    /// Removes every breaker (names and state); the cap and the jitter
    /// seeder stay. Ids handed out before are invalid afterwards.
    ///
    /// ```
    /// use reliability_core::core::breaker::BreakerRegistry;
    /// use reliability_core::core::breaker::BreakerOptions;
    /// let mut r = BreakerRegistry::new(1);
    /// r.get_or_create("a", BreakerOptions::default(), None, 0.0).unwrap();
    /// r.clear();
    /// assert_eq!(r.len(), 0);
    /// assert!(r.id_of("a").is_none());
    /// ```
    pub fn clear(&mut self) {
        self.entries = Entries::default();
        self.by_name.clear();
    }

    /// The cap on breakers (default `DEFAULT_MAX_BREAKERS`).
    pub fn max_breakers(&self) -> usize {
        self.max_breakers
    }

    /// Sets the cap on breakers: an integer from 1 to `MAX_BREAKERS`.
    /// Breakers that already exist stay; past the cap, creating one fails.
    ///
    /// ```
    /// use reliability_core::core::breaker::BreakerRegistry;
    /// let mut r = BreakerRegistry::new(1);
    /// r.set_max_breakers(50_000.0).unwrap();
    /// assert_eq!(r.max_breakers(), 50_000);
    /// assert!(r.set_max_breakers(0.0).is_err());
    /// ```
    pub fn set_max_breakers(&mut self, max: f64) -> CoreResult<()> {
        self.max_breakers =
            crate::core::error::check::int_in("maxBreakers", max, 1, MAX_BREAKERS as u32)? as usize;
        Ok(())
    }

    /// How many breakers exist.
    pub fn len(&self) -> usize {
        self.entries.len
    }

    /// True when there is no breaker.
    pub fn is_empty(&self) -> bool {
        self.entries.len == 0
    }

    /// The id of the breaker named `name`, if it exists.
    pub fn id_of(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).copied()
    }

    /// Returns the id of `name`, creating the breaker if it is new.
    /// The bool says whether it was created.
    pub fn get_or_create(
        &mut self,
        name: &str,
        opts: BreakerOptions,
        seed: Option<u64>,
        now: f64,
    ) -> CoreResult<(u32, bool)> {
        if let Some(id) = self.id_of(name) {
            return Ok((id, false));
        }
        check_name("name", name)?;
        if self.entries.len >= self.max_breakers {
            return Err(CoreError::limit(
                &format!("circuit breaker \"{name}\" not created: the registry holds {} breakers", self.entries.len),
                self.max_breakers,
                "raise the cap with configureCircuitBreakers({ maxBreakers }), or reuse names instead of making one per request",
            ));
        }
        // Reuse the previous breaker's options when they are equal: breakers
        // are usually made in families with one configuration.
        let opts = match self.entries.last() {
            Some(e) if **e.breaker.shared_options() == opts => {
                Rc::clone(e.breaker.shared_options())
            }
            _ => Rc::new(opts),
        };
        let breaker = Breaker::new(opts, now)?;
        let seed = seed.unwrap_or_else(|| self.seeder.next_u64());
        let id = self.entries.len as u32;
        let name: Rc<str> = name.into();
        self.entries.push(Entry {
            name: Rc::clone(&name),
            breaker,
            rng: SplitMix64::new(seed),
        });
        self.by_name.insert(name, id);
        Ok((id, true))
    }

    /// The name of the breaker with this id.
    pub fn name(&self, id: u32) -> Option<&str> {
        self.entries.get(id as usize).map(|e| &*e.name)
    }

    /// The breaker with this id.
    pub fn get(&self, id: u32) -> Option<&Breaker> {
        self.entries.get(id as usize).map(|e| &e.breaker)
    }

    /// The breaker with this id, mutably.
    pub fn get_mut(&mut self, id: u32) -> Option<&mut Breaker> {
        self.entries.get_mut(id as usize).map(|e| &mut e.breaker)
    }

    fn entry(&mut self, id: u32) -> CoreResult<&mut Entry> {
        self.entries
            .get_mut(id as usize)
            .ok_or_else(|| CoreError::not_found("circuit breaker id", id))
    }

    /// May a call run on breaker `id` now? A NotFound error for an unknown id.
    pub fn try_acquire(&mut self, id: u32, now: f64) -> CoreResult<(Admission, Transitions)> {
        Ok(self.entry(id)?.breaker.try_acquire(now))
    }

    /// Reports the outcome of a call admitted by [`BreakerRegistry::try_acquire`] (`trial` when it was admitted half-open).
    pub fn on_outcome(
        &mut self,
        id: u32,
        outcome: BreakerOutcome,
        latency_ms: f64,
        at: f64,
        trial: bool,
    ) -> CoreResult<Transitions> {
        Ok(self
            .entry(id)?
            .breaker
            .on_outcome(outcome, latency_ms, at, trial))
    }

    /// Applies outcomes the binding batched: each is (id, latency, at). A
    /// latency >= 0 is a plain success that finished at `at`; a negative one
    /// is a call refused at `at` while the breaker was open.
    /// Unknown ids are skipped: a batch is never partly lost because of one bad entry.
    /// Returns the transitions per breaker that changed (normally none: a fast
    /// success can only change state through the slow-call rule).
    pub fn apply_batch(
        &mut self,
        batch: impl Iterator<Item = (u32, f64, f64)>,
        changed: &mut Vec<(u32, Transitions)>,
    ) {
        for (id, latency, at) in batch {
            if let Some(e) = self.entries.get_mut(id as usize) {
                if latency < 0.0 {
                    e.breaker.count_reject(at);
                    continue;
                }
                let tr = e
                    .breaker
                    .on_outcome(BreakerOutcome::Success, latency, at, false);
                if tr.0 != 0 {
                    changed.push((id, tr));
                }
            }
        }
    }

    /// The sleep after failed attempt `attempt`. `u` in [0,1) comes from an
    /// injected random source, or from the breaker's own seeded generator when `None`.
    pub fn retry_delay(
        &mut self,
        id: u32,
        attempt: u32,
        previous_ms: f64,
        u: Option<f64>,
    ) -> CoreResult<f64> {
        let e = self.entry(id)?;
        let u = u.unwrap_or_else(|| e.rng.next_f64());
        Ok(e.breaker.options().retry.delay(attempt, previous_ms, u))
    }

    /// Every id, in creation order.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.entries.len).map(|i| i as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::backoff::Jitter;
    use crate::core::breaker::State;

    #[test]
    fn same_name_same_id_and_first_options_win() {
        let mut r = BreakerRegistry::new(1);
        let (a, created) = r
            .get_or_create(
                "db",
                BreakerOptions {
                    failure_threshold: 2,
                    ..Default::default()
                },
                None,
                0.0,
            )
            .unwrap();
        assert!(created);
        let (b, created) = r
            .get_or_create(
                "db",
                BreakerOptions {
                    failure_threshold: 9,
                    ..Default::default()
                },
                None,
                0.0,
            )
            .unwrap();
        assert!(!created);
        assert_eq!(a, b);
        assert_eq!(r.get(a).unwrap().options().failure_threshold, 2);
        assert_eq!(r.name(a), Some("db"));
        // Equal options are shared, not copied.
        let (c, _) = r
            .get_or_create(
                "db2",
                BreakerOptions {
                    failure_threshold: 2,
                    ..Default::default()
                },
                None,
                0.0,
            )
            .unwrap();
        assert!(Rc::ptr_eq(
            r.get(a).unwrap().shared_options(),
            r.get(c).unwrap().shared_options()
        ));
    }

    #[test]
    fn bad_names_and_ids_are_errors_not_panics() {
        let mut r = BreakerRegistry::new(1);
        assert!(r
            .get_or_create("", BreakerOptions::default(), None, 0.0)
            .is_err());
        assert!(r
            .get_or_create(&"x".repeat(257), BreakerOptions::default(), None, 0.0)
            .is_err());
        assert!(r
            .get_or_create("a\u{202e}b", BreakerOptions::default(), None, 0.0)
            .is_err());
        assert!(r
            .get_or_create(&"x".repeat(256), BreakerOptions::default(), None, 0.0)
            .is_ok());
        r.clear();
        assert!(r.try_acquire(99, 0.0).is_err());
        assert!(r
            .on_outcome(99, BreakerOutcome::Success, 1.0, 0.0, false)
            .is_err());
        // A failed creation leaves nothing behind.
        assert!(r
            .get_or_create(
                "bad",
                BreakerOptions {
                    failure_threshold: 0,
                    ..Default::default()
                },
                None,
                0.0
            )
            .is_err());
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn batched_successes_reset_consecutive_failures_and_skip_unknown_ids() {
        let mut r = BreakerRegistry::new(1);
        let (id, _) = r
            .get_or_create("x", BreakerOptions::default(), None, 0.0)
            .unwrap();
        for t in 0..4 {
            r.on_outcome(id, BreakerOutcome::Failure, 1.0, t as f64, false)
                .unwrap();
        }
        let mut changed = Vec::new();
        r.apply_batch(
            [(id, 1.0, 5.0), (77, 1.0, 5.0), (id, -1.0, 6.0)].into_iter(),
            &mut changed,
        );
        assert_eq!(r.get(id).unwrap().failure_count(), 0);
        assert_eq!(r.get(id).unwrap().totals().rejects, 1);
        assert!(changed.is_empty());
        assert_eq!(r.get(id).unwrap().state(), State::Closed);
    }

    #[test]
    fn per_breaker_state_stays_small() {
        // The benchmark's memory target is < 1 KB per breaker, JS and Rust together.
        // (176 + 24 for the transition and fallback counters of the metrics; the
        // call-duration histogram is boxed, 104 bytes once a breaker has run.)
        assert!(
            std::mem::size_of::<Entry>() <= 208,
            "Entry grew to {}",
            std::mem::size_of::<Entry>()
        );
        // Ids past a chunk boundary still resolve.
        let mut r = BreakerRegistry::new(3);
        for i in 0..(CHUNK + 5) {
            let (id, _) = r
                .get_or_create(&format!("b{i}"), BreakerOptions::default(), None, 0.0)
                .unwrap();
            assert_eq!(id as usize, i);
        }
        assert_eq!(r.name(CHUNK as u32 + 4), Some("b1028"));
        assert_eq!(r.id_of("b1028"), Some(CHUNK as u32 + 4));
        assert!(std::mem::size_of::<crate::core::breaker::window::BreakerCounts>() <= 24);
    }

    #[test]
    fn the_breaker_cap_refuses_new_names_with_a_limit_error() {
        let mut r = BreakerRegistry::new(1);
        assert_eq!(r.max_breakers(), DEFAULT_MAX_BREAKERS);
        r.set_max_breakers(3.0).unwrap();
        for i in 0..3 {
            r.get_or_create(&format!("b{i}"), BreakerOptions::default(), None, 0.0)
                .unwrap();
        }
        let e = r
            .get_or_create("b3", BreakerOptions::default(), None, 0.0)
            .unwrap_err();
        assert_eq!(e.kind, crate::core::error::ErrorKind::Limit);
        assert!(
            e.message.contains("at most 3") && e.message.contains("maxBreakers"),
            "{}",
            e.message
        );
        // Existing names still resolve; raising the cap admits new ones.
        assert_eq!(
            r.get_or_create("b1", BreakerOptions::default(), None, 0.0)
                .unwrap(),
            (1, false)
        );
        r.set_max_breakers(4.0).unwrap();
        assert!(r
            .get_or_create("b3", BreakerOptions::default(), None, 0.0)
            .is_ok());
        for bad in [0.0, 1.5, f64::NAN, 2e6] {
            assert_eq!(
                r.set_max_breakers(bad).unwrap_err().kind,
                crate::core::error::ErrorKind::Range
            );
        }
    }

    #[test]
    fn seeded_jitter_is_reproducible() {
        let mk = || {
            let mut r = BreakerRegistry::new(7);
            let mut o = BreakerOptions::default();
            o.retry.jitter = Jitter::Full;
            let (id, _) = r.get_or_create("j", o, Some(1234), 0.0).unwrap();
            (0..5)
                .map(|a| r.retry_delay(id, a, 0.0, None).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(mk(), mk());
        let mut r = BreakerRegistry::new(7);
        let (id, _) = r
            .get_or_create("k", BreakerOptions::default(), None, 0.0)
            .unwrap();
        assert_eq!(r.retry_delay(id, 0, 0.0, Some(0.5)).unwrap(), 105.0);
    }
}
