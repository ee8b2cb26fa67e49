//! What a store refused or bent (bad statuses, durations, times, ids,
//! clamped durations, series past the cap, windows past the memory cap),
//! counted by reason so it shows up instead of being silently dropped.

/// Why a call was not recorded. Each is counted in [`Diagnostics`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Status outside 100..=599.
    InvalidStatus,
    /// Duration NaN, negative or infinite.
    InvalidDuration,
    /// `now` NaN or infinite.
    InvalidTime,
    /// An id `intern` never returned.
    UnknownId,
    /// `request_finished` (or an abort) with nothing in flight: the gauge stays at 0.
    UnbalancedFinish,
}

impl Reason {
    /// Every reason, in the order the diagnostics report them.
    pub const ALL: [Reason; 5] = [
        Reason::InvalidStatus,
        Reason::InvalidDuration,
        Reason::InvalidTime,
        Reason::UnknownId,
        Reason::UnbalancedFinish,
    ];

    /// The reason's name as the diagnostics and the binding report it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidStatus => "invalid_status",
            Reason::InvalidDuration => "invalid_duration",
            Reason::InvalidTime => "invalid_time",
            Reason::UnknownId => "unknown_id",
            Reason::UnbalancedFinish => "unbalanced_finish",
        }
    }
}

/// What the store refused or bent, since creation or reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Diagnostics {
    /// Statuses outside 100..=599.
    pub invalid_status: u64,
    /// Durations NaN, negative or infinite.
    pub invalid_duration: u64,
    /// Times (`now`) NaN or infinite.
    pub invalid_time: u64,
    /// Ids `intern` never returned.
    pub unknown_id: u64,
    /// Finishes or aborts with nothing in flight.
    pub unbalanced_finish: u64,
    /// `intern` calls for new keys past the cap, answered with `OTHER`.
    /// Calls, not distinct keys: remembering the keys is the unbounded memory
    /// the cap exists to prevent.
    pub series_overflow: u64,
    /// Durations above one hour, recorded as one hour.
    pub clamped_durations: u64,
    /// Samples recorded without window latency (all time only) because
    /// their series was refused window memory by `max_window_bytes`.
    pub window_memory_exhausted: u64,
}

impl Diagnostics {
    /// Calls not recorded for `reason` since creation or reset.
    pub fn rejected(&self, reason: Reason) -> u64 {
        match reason {
            Reason::InvalidStatus => self.invalid_status,
            Reason::InvalidDuration => self.invalid_duration,
            Reason::InvalidTime => self.invalid_time,
            Reason::UnknownId => self.unknown_id,
            Reason::UnbalancedFinish => self.unbalanced_finish,
        }
    }

    pub(crate) fn count(&mut self, reason: Reason) {
        let c = match reason {
            Reason::InvalidStatus => &mut self.invalid_status,
            Reason::InvalidDuration => &mut self.invalid_duration,
            Reason::InvalidTime => &mut self.invalid_time,
            Reason::UnknownId => &mut self.unknown_id,
            Reason::UnbalancedFinish => &mut self.unbalanced_finish,
        };
        *c += 1;
    }
}
