//! One rollout's state machine: its phase, its current step, the two
//! cohorts and the bounded decision history.

use std::collections::VecDeque;

use super::bucket::{legacy_bucket, murmur_bucket};
use super::cohort::Cohort;
use super::config::{Config, HashMode};
use super::slo::{Figures, Verdict};
use super::{BUCKETS, HISTORY_CAP};

/// Where a rollout is in its life (`status.phase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutPhase {
    /// Serving its percentage and being judged.
    Running,
    /// Serving its percentage; no advance, no rollback.
    Paused,
    /// Rolled back after a breach.
    RolledBack,
    /// Reached 100 % (the last step, or promoted).
    Completed,
    /// Stopped by hand at 0 %.
    Aborted,
}

impl RolloutPhase {
    /// The phase as the JSON shapes spell it.
    ///
    /// ```
    /// use reliability_core::core::traffic_shaping::RolloutPhase;
    /// assert_eq!(RolloutPhase::RolledBack.as_str(), "rolled-back");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutPhase::Running => "running",
            RolloutPhase::Paused => "paused",
            RolloutPhase::RolledBack => "rolled-back",
            RolloutPhase::Completed => "completed",
            RolloutPhase::Aborted => "aborted",
        }
    }
}

/// One decision in a rollout's history, with its reason and figures.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// When (ms, the caller's clock).
    pub at: f64,
    /// `start`, `update`, `advance`, `breach`, `rollback`, `pause`, `resume`, `promote`, `abort`.
    pub kind: &'static str,
    /// Percentage before, in basis points.
    pub from_bp: u32,
    /// Percentage after, in basis points.
    pub to_bp: u32,
    /// Why (empty for a plain start).
    pub reason: String,
    /// The figures the decision used, when an analysis made it.
    pub figures: Option<Figures>,
}

/// What an evaluation or a manual action did, for the JS side's events.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The rollout's id in its set.
    pub rollout: usize,
    /// The decision, as it landed in the history.
    pub entry: HistoryEntry,
}

/// One rollout: its configuration, phase, step, cohorts and history.
#[derive(Debug)]
pub struct Rollout {
    /// Its name in the set.
    pub name: String,
    /// Its configuration; `config.bp` is the current percentage.
    pub config: Config,
    /// Its phase.
    pub phase: RolloutPhase,
    /// Index of the current step (when the config has steps).
    pub step: Option<usize>,
    pub(crate) step_started: f64,
    /// The highest percentage that was judged healthy (for `LastGoodStep`).
    pub(crate) last_good_bp: u32,
    pub(crate) new: Cohort,
    pub(crate) stable: Cohort,
    /// The last [`HISTORY_CAP`] decisions, oldest first.
    pub history: VecDeque<HistoryEntry>,
    /// The verdict of the last analysis.
    pub last_verdict: Verdict,
    /// The figures of the last analysis.
    pub last_figures: Figures,
    /// When it was (re)started (ms).
    pub started_at: f64,
    /// Outcomes were recorded by [`RolloutSet::record_checked`] without an
    /// analysis: the next [`RolloutSet::evaluate_pending`] runs one (steps
    /// still advance, and time still moves the windows).
    pub(crate) pending_eval: bool,
}

impl Rollout {
    /// Is `key` in the new cohort? Deny list first, then allow list.
    pub fn decide(&self, key: &str) -> bool {
        if !self.config.deny.is_empty() && self.config.deny.contains(key) {
            return false;
        }
        if !self.config.allow.is_empty() && self.config.allow.contains(key) {
            return true;
        }
        match self.config.bp {
            0 => false,
            BUCKETS => true,
            // Legacy: the original compared the 0..99 bucket with the
            // percentage; bucket·100 < bp is the same test.
            bp => self.bucket(key) < bp,
        }
    }

    /// [`decide`](Self::decide) for a key whose bucket the caller hashed
    /// already; only for a rollout with no allow or deny list (`None` when
    /// it has one: the key itself decides then).
    pub fn decide_bucket(&self, bucket: u32) -> Option<bool> {
        if !self.config.deny.is_empty() || !self.config.allow.is_empty() {
            return None;
        }
        Some(match self.config.bp {
            0 => false,
            BUCKETS => true,
            bp => bucket < bp,
        })
    }

    /// The key's bucket in 0..10_000 (legacy buckets 0..99 scaled by 100, so
    /// `bucket < bp` is the rule for both modes).
    pub fn bucket(&self, key: &str) -> u32 {
        match self.config.hash {
            HashMode::Murmur => murmur_bucket(&self.name, key),
            HashMode::Legacy => legacy_bucket(&self.name, key) * 100,
        }
    }

    /// The current percentage (0..=100).
    pub fn percentage(&self) -> f64 {
        self.config.bp as f64 / 100.0
    }

    /// Whether outcomes of the new cohort are judged as they are recorded
    /// ([`super::RolloutSet::record_checked`]): only when a breach would act.
    pub fn judged_on_record(&self) -> bool {
        self.config.auto_rollback && self.config.slo.is_some()
    }

    /// Appends one history entry (the oldest goes past [`HISTORY_CAP`]) and
    /// returns it for the event that reports it.
    pub(crate) fn log(
        &mut self,
        at: f64,
        kind: &'static str,
        from_bp: u32,
        to_bp: u32,
        reason: String,
        figures: Option<Figures>,
    ) -> HistoryEntry {
        let e = HistoryEntry {
            at,
            kind,
            from_bp,
            to_bp,
            reason,
            figures,
        };
        self.push(e.clone());
        e
    }

    pub(crate) fn push(&mut self, e: HistoryEntry) {
        if self.history.len() >= HISTORY_CAP {
            self.history.pop_front();
        }
        self.history.push_back(e);
    }

    pub(crate) fn set_bp(&mut self, bp: u32, now: f64) {
        self.config.bp = bp;
        self.step_started = now;
        self.new.reset_step();
        self.stable.reset_step();
    }
}
