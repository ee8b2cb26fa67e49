//! Quorum breakers: a breaker that opens on this instance when enough
//! instances of a cluster see its dependency failing, and closes again when
//! they no longer do, so one bad instance cannot open it for all.
//!
//! The votes travel through Redis (`lib/redis.ts`); this module holds the
//! rule: how many votes are needed, when to open or close, and what this
//! instance votes while the quorum holds its breaker open.
//!
//! ```
//! use reliability_core::core::breaker::quorum::{Quorum, QuorumAction};
//! let mut q = Quorum::new(0.5).unwrap(); // half of the instances that voted
//! assert_eq!(q.decide(1, 4, false), QuorumAction::None); // 1 of 4 is not half
//! assert_eq!(q.decide(2, 4, false), QuorumAction::Open);
//! assert!(q.forced());
//! assert_eq!(q.decide(0, 4, true), QuorumAction::Close);
//! ```

use crate::core::error::{check, CoreError, CoreResult};

/// What the caller should do to its local breaker after counting votes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuorumAction {
    /// Leave it as it is.
    None = 0,
    /// Open it: the quorum sees the dependency failing.
    Open = 1,
    /// Close it: the quorum that opened it is gone.
    Close = 2,
}

/// One quorum breaker's rule and whether the quorum (not this instance's own
/// failures) opened the local breaker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quorum {
    quorum: f64,
    forced: bool,
}

impl Quorum {
    /// `quorum` is a count of instances (an integer >= 1) or a share of the
    /// instances that voted, in (0, 1].
    ///
    /// ```
    /// use reliability_core::core::breaker::quorum::Quorum;
    /// assert!(Quorum::new(2.0).is_ok());
    /// assert!(Quorum::new(1.5).is_err());
    /// assert!(Quorum::new(0.0).is_err());
    /// ```
    pub fn new(quorum: f64) -> CoreResult<Quorum> {
        if !quorum.is_finite() || quorum <= 0.0 || (quorum > 1.0 && quorum.fract() != 0.0) {
            return Err(CoreError::range(
                "quorum",
                "an integer >= 1 or a share in (0, 1]",
                check::fmt_num(quorum),
            ));
        }
        Ok(Quorum {
            quorum,
            forced: false,
        })
    }

    /// The quorum as given.
    pub fn quorum(&self) -> f64 {
        self.quorum
    }

    /// True while the local breaker is open because the quorum opened it.
    pub fn forced(&self) -> bool {
        self.forced
    }

    /// Votes needed among `voters` fresh votes: the count itself, or for a
    /// share, that share of the voters rounded up (of at least one voter).
    ///
    /// ```
    /// use reliability_core::core::breaker::quorum::Quorum;
    /// assert_eq!(Quorum::new(0.5).unwrap().needed(5), 3);
    /// assert_eq!(Quorum::new(0.5).unwrap().needed(0), 1);
    /// assert_eq!(Quorum::new(1.0).unwrap().needed(5), 1); // 1 is a count
    /// assert_eq!(Quorum::new(3.0).unwrap().needed(2), 3);
    /// ```
    pub fn needed(&self, voters: u32) -> u32 {
        if self.quorum < 1.0 {
            (self.quorum * voters.max(1) as f64).ceil() as u32
        } else {
            self.quorum as u32
        }
    }

    /// Counts `failing` votes for "open" among `voters` fresh votes, given
    /// whether the local breaker is open now, and says what to do with it.
    pub fn decide(&mut self, failing: u32, voters: u32, is_open: bool) -> QuorumAction {
        let need = self.needed(voters);
        if failing >= need && !is_open {
            self.forced = true;
            QuorumAction::Open
        } else if failing < need && self.forced {
            self.forced = false;
            QuorumAction::Close
        } else {
            QuorumAction::None
        }
    }

    /// Whether this instance's vote is "open" given its breaker's state: a
    /// breaker the quorum opened is no vote of its own, so it votes closed.
    ///
    /// ```
    /// use reliability_core::core::breaker::quorum::Quorum;
    /// let mut q = Quorum::new(1.0).unwrap();
    /// assert!(q.votes_open(true));
    /// q.decide(1, 2, false); // opened by the quorum
    /// assert!(!q.votes_open(true));
    /// ```
    pub fn votes_open(&self, is_open: bool) -> bool {
        is_open && !self.forced
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_once_and_closes_only_what_it_opened() {
        let mut q = Quorum::new(2.0).unwrap();
        assert_eq!(q.decide(2, 3, false), QuorumAction::Open);
        // Already open: nothing to do, still forced.
        assert_eq!(q.decide(3, 3, true), QuorumAction::None);
        assert_eq!(q.decide(1, 3, true), QuorumAction::Close);
        assert!(!q.forced());
        // A breaker open on its own (not forced) is not closed by the quorum.
        assert_eq!(q.decide(0, 3, true), QuorumAction::None);
    }

    #[test]
    fn rejects_bad_quorums_naming_the_field() {
        for bad in [f64::NAN, f64::INFINITY, -1.0, 0.0, 2.5] {
            let e = Quorum::new(bad).unwrap_err();
            assert!(
                e.message
                    .starts_with("quorum must be an integer >= 1 or a share in (0, 1]"),
                "{}",
                e.message
            );
        }
    }
}
