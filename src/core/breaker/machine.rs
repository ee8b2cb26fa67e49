//! One circuit breaker's state machine and its counters (its options live in
//! [`super::options`]; the breaker knows nothing of retries, which compose
//! with it from outside).
//!
//! The breaker never reads a clock: every method takes `now` in milliseconds
//! from a monotonic source, so tests move time by passing numbers and the
//! open → half-open step happens lazily on the next call (no timer per
//! breaker). Every method that may change the state returns the
//! [`Transitions`] it made, which the JS wrapper turns into events.
//!
//! ```
//! use reliability_core::core::breaker::{Breaker, BreakerOptions, Admission, BreakerOutcome};
//! let mut b = Breaker::new(BreakerOptions { failure_threshold: 2, ..Default::default() }, 0.0).unwrap();
//! for t in [1.0, 2.0] {
//!     assert_eq!(b.try_acquire(t).0, Admission::Admit);
//!     b.on_outcome(BreakerOutcome::Failure, 5.0, t, false);
//! }
//! assert_eq!(b.try_acquire(3.0).0, Admission::RejectOpen);
//! ```

use std::rc::Rc;

use super::options::{BreakerOptions, OpeningRule};
use super::window::{BreakerCounts, RollingWindow, Sample};
use crate::core::error::CoreResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// Where a breaker is in its cycle; `getState()` returns [`State::as_str`].
pub enum State {
    /// Calls run; failures are counted.
    Closed,
    /// Calls are refused until `resetTimeout` has passed.
    Open,
    /// A few trial calls run; their outcomes close or re-open it.
    HalfOpen,
}

impl State {
    /// The original's spelling, which `getState()` returns.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half-open",
        }
    }
}

/// The answer to "may this call run?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: run it.
    Admit = 0,
    /// Half-open: run it as a trial; its outcome must be reported with `trial = true`.
    AdmitTrial = 1,
    /// Open and still inside `resetTimeout`.
    RejectOpen = 2,
    /// Isolated by an operator: open until closed by hand.
    RejectIsolated = 3,
    /// Half-open, but every trial slot is taken.
    RejectHalfOpenFull = 4,
}

/// What a finished call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerOutcome {
    /// The call returned.
    Success = 0,
    /// The call threw or rejected.
    Failure = 1,
    /// The call outlived `timeout` (counts as a failure).
    Timeout = 2,
}

/// State changes made by one operation, as bits, so the binding can hand
/// them to JS as one small integer and the wrapper emits one event each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transitions(pub u32);

impl Transitions {
    /// The breaker opened.
    pub const OPENED: u32 = 1;
    /// The breaker closed.
    pub const CLOSED: u32 = 2;
    /// The breaker went half-open.
    pub const HALF_OPENED: u32 = 4;
    /// Set with `OPENED` when the breaker re-opened from half-open (failed trials).
    pub const FROM_HALF_OPEN: u32 = 8;

    fn add(&mut self, bit: u32) {
        self.0 |= bit;
    }

    /// Whether `bit` (one of the constants above) is set.
    ///
    /// Example: `Transitions(Transitions::OPENED).has(Transitions::OPENED)`
    pub fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }
}

/// Lifetime counters (never reset except by `reset()`), for snapshots.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    /// Calls that succeeded.
    pub successes: u64,
    /// Calls that failed (timeouts not included).
    pub failures: u64,
    /// Calls that timed out.
    pub timeouts: u64,
    /// Calls slower than `slowCallDurationMs`.
    pub slow: u64,
    /// Calls refused without running.
    pub rejects: u64,
    /// Transitions to open.
    pub opened: u64,
    /// Transitions to closed and to half-open (opens are `opened`).
    pub closed: u64,
    /// Times the breaker went half-open.
    pub half_opened: u64,
    /// Calls whose failure or rejection the wrapper answered with its fallback.
    pub fallbacks: u64,
}

/// Finished calls by duration bucket ([`CALL_BUCKETS_S`], not cumulative,
/// the last one past every bound) and their summed duration, for the
/// call-duration histogram. Boxed and made on a breaker's first call, so
/// breakers that never run (and the registry's fixed-size entries) do not
/// carry it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallDurations {
    /// Calls per duration bucket (`CALL_BUCKETS_S`, then one past the last bound).
    pub buckets: [u64; CALL_BUCKETS_S.len() + 1],
    /// Sum of the call durations, in milliseconds.
    pub sum_ms: f64,
}

/// Upper bounds, in seconds, of the call-duration histogram's buckets
/// (prom-client's defaults, as the HTTP histogram's).
pub const CALL_BUCKETS_S: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Clone)]
/// One circuit breaker: state, counters and rolling window. See the module example.
pub struct Breaker {
    /// Shared between breakers created with equal options (most are), so
    /// 10 000 breakers do not hold 10 000 copies.
    opts: Rc<BreakerOptions>,
    state: State,
    /// Set by `isolate()`: open until an operator closes or resets it.
    isolated: bool,
    /// The original's `failureCount`: failed calls since the last success.
    failure_count: u32,
    last_failure_at: Option<f64>,
    /// When the breaker last opened; the reset timeout runs from here.
    opened_at: f64,
    last_transition_at: f64,
    half_open_successes: u32,
    half_open_failures: u32,
    half_open_in_flight: u32,
    window: RollingWindow,
    totals: Totals,
    durations: Option<Box<CallDurations>>,
}

impl Breaker {
    /// A closed breaker with these options (validated; the error names the field), created at `now`.
    pub fn new(opts: impl Into<Rc<BreakerOptions>>, now: f64) -> CoreResult<Self> {
        let opts = opts.into();
        opts.validate()?;
        let window = RollingWindow::new(opts.rolling_window_ms, opts.rolling_buckets, now);
        Ok(Breaker {
            opts,
            state: State::Closed,
            isolated: false,
            failure_count: 0,
            last_failure_at: None,
            opened_at: 0.0,
            last_transition_at: now,
            half_open_successes: 0,
            half_open_failures: 0,
            half_open_in_flight: 0,
            window,
            totals: Totals::default(),
            durations: None,
        })
    }

    /// Its options.
    pub fn options(&self) -> &BreakerOptions {
        &self.opts
    }

    /// Its options as shared with other breakers of equal configuration.
    pub fn shared_options(&self) -> &Rc<BreakerOptions> {
        &self.opts
    }

    /// Its state, as of its last call (open → half-open happens lazily on the next acquire).
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether an operator isolated it (open until closed by hand).
    pub fn is_isolated(&self) -> bool {
        self.isolated
    }

    /// Failures in a row since the last success (the consecutive rule).
    pub fn failure_count(&self) -> u32 {
        self.failure_count
    }

    /// When the last failure of the current run of failures happened (ms), if any.
    pub fn last_failure_at(&self) -> Option<f64> {
        self.last_failure_at
    }

    /// When the state last changed (ms).
    pub fn last_transition_at(&self) -> f64 {
        self.last_transition_at
    }

    /// Its lifetime counters.
    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// The call-duration histogram (None before the first finished call).
    pub fn durations(&self) -> Option<&CallDurations> {
        self.durations.as_deref()
    }

    /// Counts a call the wrapper answered with its fallback.
    pub fn count_fallback(&mut self) {
        self.totals.fallbacks += 1;
    }

    /// Trial calls running now (half-open only).
    pub fn half_open_in_flight(&self) -> u32 {
        self.half_open_in_flight
    }

    /// When an open breaker will admit its next trial (None unless open and not isolated).
    pub fn next_attempt_at(&self) -> Option<f64> {
        (self.state == State::Open && !self.isolated)
            .then(|| self.opened_at + self.opts.reset_timeout_ms)
    }

    /// True when a call may run without asking: the breaker is closed. The
    /// binding mirrors this into a typed array so the JS hot path reads it
    /// without crossing into Rust.
    pub fn admits_without_asking(&self) -> bool {
        self.state == State::Closed
    }

    /// Window figures as of `now`.
    pub fn window_counts(&mut self, now: f64) -> BreakerCounts {
        self.window.totals(now)
    }

    /// The length of its rolling window (ms).
    pub fn window_ms(&self) -> f64 {
        self.window.window_ms()
    }

    /// Decides whether a call may run now. An open breaker whose reset
    /// timeout has passed (`>=`, as the original) turns half-open here.
    pub fn try_acquire(&mut self, now: f64) -> (Admission, Transitions) {
        let mut tr = Transitions::default();
        if self.state == State::Open {
            if self.isolated {
                return (self.reject(now, Admission::RejectIsolated), tr);
            }
            // Compared as the mirror and `next_attempt_at` state it (`opened_at +
            // reset_timeout`): `now - opened_at` can round below the timeout at
            // the very instant the JS side saw it pass, and refuse a trial that
            // a clock moved by exactly `resetTimeout` must get.
            if now < self.opened_at + self.opts.reset_timeout_ms {
                return (self.reject(now, Admission::RejectOpen), tr);
            }
            self.enter(State::HalfOpen, now, &mut tr);
        }
        match self.state {
            State::Closed => (Admission::Admit, tr),
            State::HalfOpen => {
                if self.half_open_in_flight < self.opts.half_open_max_calls {
                    self.half_open_in_flight += 1;
                    (Admission::AdmitTrial, tr)
                } else {
                    (self.reject(now, Admission::RejectHalfOpenFull), tr)
                }
            }
            State::Open => unreachable!("open was handled above"),
        }
    }

    /// When calls are refused without asking: `Some(t)` while open (until
    /// `t`, or forever when isolated). The binding mirrors this so JS can
    /// refuse a call on an open breaker without crossing, and report the
    /// refusal in its next batch.
    pub fn rejects_until(&self) -> Option<f64> {
        match self.state {
            State::Open if self.isolated => Some(f64::INFINITY),
            State::Open => Some(self.opened_at + self.opts.reset_timeout_ms),
            _ => None,
        }
    }

    /// Counts a call refused by the caller on the strength of `rejects_until`.
    pub fn count_reject(&mut self, at: f64) {
        self.totals.rejects += 1;
        self.window.record(at, Sample::Reject, 0.0, false);
    }

    fn reject(&mut self, now: f64, why: Admission) -> Admission {
        self.totals.rejects += 1;
        self.window.record(now, Sample::Reject, 0.0, false);
        why
    }

    /// Records the outcome of a call that ran. `trial` says whether it was
    /// admitted as a half-open trial (its slot is released here). `at` is
    /// when the call finished; it may be slightly in the past for successes
    /// the binding batched.
    pub fn on_outcome(
        &mut self,
        outcome: BreakerOutcome,
        latency_ms: f64,
        at: f64,
        trial: bool,
    ) -> Transitions {
        let mut tr = Transitions::default();
        let latency_ms = if latency_ms.is_finite() && latency_ms >= 0.0 {
            latency_ms
        } else {
            0.0
        };
        let slow = self
            .opts
            .slow_call_duration_ms
            .is_some_and(|s| latency_ms >= s);
        let sample = match outcome {
            BreakerOutcome::Success => Sample::Success,
            BreakerOutcome::Failure => Sample::Failure,
            BreakerOutcome::Timeout => Sample::Timeout,
        };
        self.window.record(at, sample, latency_ms, slow);
        let b = CALL_BUCKETS_S
            .iter()
            .position(|&le| latency_ms <= le * 1000.0)
            .unwrap_or(CALL_BUCKETS_S.len());
        let d = self.durations.get_or_insert_with(Box::default);
        d.buckets[b] += 1;
        d.sum_ms += latency_ms;
        if slow {
            self.totals.slow += 1;
        }
        if trial {
            self.half_open_in_flight = self.half_open_in_flight.saturating_sub(1);
        }
        match outcome {
            BreakerOutcome::Success => {
                self.totals.successes += 1;
                self.failure_count = 0;
                self.last_failure_at = None;
                // Only a trial admitted in *this* half-open period can close
                // it; a call admitted while closed that finishes late does not.
                if self.state == State::HalfOpen && trial {
                    self.half_open_successes += 1;
                    if self.half_open_successes >= self.opts.half_open_success_threshold {
                        self.enter(State::Closed, at, &mut tr);
                    }
                } else if self.state == State::Closed && slow && self.slow_rate_exceeded(at) {
                    self.enter(State::Open, at, &mut tr);
                }
            }
            BreakerOutcome::Failure | BreakerOutcome::Timeout => {
                self.totals.failures += 1;
                if outcome == BreakerOutcome::Timeout {
                    self.totals.timeouts += 1;
                }
                self.failure_count = self.failure_count.saturating_add(1);
                self.last_failure_at = Some(at);
                match self.state {
                    State::HalfOpen if trial => {
                        self.half_open_failures += 1;
                        if self.half_open_failures >= self.opts.half_open_max_attempts {
                            self.enter(State::Open, at, &mut tr);
                        }
                    }
                    // Not a match guard: the rule reads `self` mutably (it prunes the window).
                    #[allow(clippy::collapsible_match)]
                    State::Closed => {
                        if self.failure_rule_met(at) || (slow && self.slow_rate_exceeded(at)) {
                            self.enter(State::Open, at, &mut tr);
                        }
                    }
                    _ => {}
                }
            }
        }
        tr
    }

    fn failure_rule_met(&mut self, now: f64) -> bool {
        match self.opts.opening_rule() {
            OpeningRule::ConsecutiveFailures { threshold } => self.failure_count >= threshold,
            OpeningRule::FailureRate { percentage, volume } => {
                let c = self.window.totals(now);
                c.calls() >= volume.max(1) && c.failure_pct() >= percentage
            }
        }
    }

    fn slow_rate_exceeded(&mut self, now: f64) -> bool {
        let c = self.window.totals(now);
        c.calls() >= self.opts.volume_threshold.max(1)
            && c.slow_pct() >= self.opts.slow_call_rate_threshold
    }

    /// Every state change goes through here, so the counters that belong to
    /// one period are reset in one place (the original leaked half-open
    /// successes from one period into the next).
    fn enter(&mut self, to: State, now: f64, tr: &mut Transitions) {
        if self.state == to {
            return;
        }
        if to == State::Open && self.state == State::HalfOpen {
            tr.add(Transitions::FROM_HALF_OPEN);
        }
        self.state = to;
        self.last_transition_at = now;
        self.half_open_successes = 0;
        self.half_open_failures = 0;
        match to {
            State::Open => {
                self.opened_at = now;
                self.totals.opened += 1;
                tr.add(Transitions::OPENED);
            }
            State::HalfOpen => {
                self.half_open_in_flight = 0;
                self.totals.half_opened += 1;
                tr.add(Transitions::HALF_OPENED);
            }
            State::Closed => {
                self.isolated = false;
                self.failure_count = 0;
                self.half_open_in_flight = 0;
                self.totals.closed += 1;
                tr.add(Transitions::CLOSED);
            }
        }
    }

    /// Forces the breaker closed and zeroes every counter, window included
    /// (the original's `reset()`). Lifetime totals are zeroed too.
    pub fn reset(&mut self, now: f64) -> Transitions {
        let mut tr = Transitions::default();
        self.enter(State::Closed, now, &mut tr);
        self.isolated = false;
        self.failure_count = 0;
        self.last_failure_at = None;
        self.window.clear(now);
        self.totals = Totals::default();
        self.durations = None;
        tr
    }

    /// Closes the breaker by hand, keeping its statistics.
    pub fn close(&mut self, now: f64) -> Transitions {
        let mut tr = Transitions::default();
        self.isolated = false;
        self.enter(State::Closed, now, &mut tr);
        tr
    }

    /// Opens the breaker by hand; it half-opens after `resetTimeout` as usual.
    pub fn open(&mut self, now: f64) -> Transitions {
        let mut tr = Transitions::default();
        self.enter(State::Open, now, &mut tr);
        self.opened_at = now;
        tr
    }

    /// Opens the breaker and keeps it open until `close()` or `reset()`
    /// (cockatiel's `isolate()`, Polly's manual control).
    pub fn isolate(&mut self, now: f64) -> Transitions {
        let tr = self.open(now);
        self.isolated = true;
        tr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> BreakerOptions {
        BreakerOptions::default()
    }

    fn run(b: &mut Breaker, now: f64, outcome: BreakerOutcome) -> (Admission, Transitions) {
        let (a, mut tr) = b.try_acquire(now);
        if matches!(a, Admission::Admit | Admission::AdmitTrial) {
            tr.0 |= b
                .on_outcome(outcome, 1.0, now, a == Admission::AdmitTrial)
                .0;
        }
        (a, tr)
    }

    #[test]
    fn opens_after_threshold_failures_in_a_row() {
        let mut b = Breaker::new(opts(), 0.0).unwrap();
        for i in 0..4 {
            let (_, tr) = run(&mut b, i as f64, BreakerOutcome::Failure);
            assert_eq!(tr.0, 0);
        }
        assert_eq!(b.failure_count(), 4);
        let (_, tr) = run(&mut b, 4.0, BreakerOutcome::Failure);
        assert!(tr.has(Transitions::OPENED));
        assert_eq!(b.state(), State::Open);
        assert_eq!(b.last_failure_at(), Some(4.0));
    }

    #[test]
    fn a_success_resets_the_count() {
        let mut b = Breaker::new(opts(), 0.0).unwrap();
        for i in 0..4 {
            run(&mut b, i as f64, BreakerOutcome::Failure);
        }
        run(&mut b, 5.0, BreakerOutcome::Success);
        assert_eq!(b.failure_count(), 0);
        assert_eq!(b.last_failure_at(), None);
        for i in 0..4 {
            run(&mut b, 6.0 + i as f64, BreakerOutcome::Failure);
        }
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn open_rejects_until_reset_timeout_then_half_opens_at_exactly_the_timeout() {
        let mut b = Breaker::new(
            BreakerOptions {
                failure_threshold: 1,
                reset_timeout_ms: 100.0,
                ..opts()
            },
            0.0,
        )
        .unwrap();
        run(&mut b, 10.0, BreakerOutcome::Failure);
        assert_eq!(b.try_acquire(109.9).0, Admission::RejectOpen);
        assert_eq!(b.next_attempt_at(), Some(110.0));
        let (a, tr) = b.try_acquire(110.0);
        assert_eq!(a, Admission::AdmitTrial);
        assert!(tr.has(Transitions::HALF_OPENED));
        assert_eq!(b.state(), State::HalfOpen);
        assert_eq!(b.totals().rejects, 1);
    }

    #[test]
    fn half_opens_at_next_attempt_at_even_where_the_subtraction_rounds_down() {
        // An opening time where (t + 1000) - t < 1000 in f64, as a manual or
        // fake clock moved by exactly resetTimeout from performance.now() gives.
        let t = (0..100_000)
            .map(|i| 300.0 + i as f64 * 0.000_123_7)
            .find(|t: &f64| (t + 1000.0) - t < 1000.0)
            .expect("such a time exists");
        let mut b = Breaker::new(
            BreakerOptions {
                failure_threshold: 1,
                reset_timeout_ms: 1000.0,
                ..opts()
            },
            0.0,
        )
        .unwrap();
        b.open(t);
        let at = b.next_attempt_at().unwrap();
        assert_eq!(at, t + 1000.0);
        assert_eq!(b.try_acquire(at).0, Admission::AdmitTrial);
    }

    #[test]
    fn half_open_admits_only_max_calls_at_once() {
        let mut b = Breaker::new(
            BreakerOptions {
                failure_threshold: 1,
                reset_timeout_ms: 0.0,
                half_open_max_calls: 3,
                ..opts()
            },
            0.0,
        )
        .unwrap();
        run(&mut b, 0.0, BreakerOutcome::Failure);
        let admitted: Vec<Admission> = (0..100).map(|_| b.try_acquire(1.0).0).collect();
        assert_eq!(
            admitted
                .iter()
                .filter(|a| **a == Admission::AdmitTrial)
                .count(),
            3
        );
        assert_eq!(
            admitted
                .iter()
                .filter(|a| **a == Admission::RejectHalfOpenFull)
                .count(),
            97
        );
        // Releasing a slot lets exactly one more in.
        b.on_outcome(BreakerOutcome::Success, 1.0, 2.0, true);
        assert_eq!(b.try_acquire(2.0).0, Admission::AdmitTrial);
        assert_eq!(b.try_acquire(2.0).0, Admission::RejectHalfOpenFull);
    }

    #[test]
    fn half_open_closes_after_success_threshold_and_reopens_after_max_attempts() {
        let o = BreakerOptions {
            failure_threshold: 1,
            reset_timeout_ms: 50.0,
            ..opts()
        };
        let mut b = Breaker::new(o, 0.0).unwrap();
        run(&mut b, 0.0, BreakerOutcome::Failure);
        // Half-open: two successes close it.
        let (_, tr) = run(&mut b, 60.0, BreakerOutcome::Success);
        assert!(tr.has(Transitions::HALF_OPENED) && !tr.has(Transitions::CLOSED));
        let (_, tr) = run(&mut b, 61.0, BreakerOutcome::Success);
        assert!(tr.has(Transitions::CLOSED));
        assert_eq!(b.state(), State::Closed);
        // Open again, then three failed trials re-open and restart the timer.
        run(&mut b, 100.0, BreakerOutcome::Failure);
        run(&mut b, 150.0, BreakerOutcome::Failure);
        run(&mut b, 151.0, BreakerOutcome::Failure);
        let (_, tr) = run(&mut b, 152.0, BreakerOutcome::Failure);
        assert!(tr.has(Transitions::OPENED) && tr.has(Transitions::FROM_HALF_OPEN));
        assert_eq!(b.try_acquire(201.9).0, Admission::RejectOpen);
        assert_eq!(b.try_acquire(202.0).0, Admission::AdmitTrial);
    }

    #[test]
    fn successes_do_not_leak_between_half_open_periods() {
        // Spec §9 sequence (threshold 2, reset 50 ms). The original closes on the
        // last step because a success carried over; here it needs two fresh ones.
        let o = BreakerOptions {
            failure_threshold: 2,
            reset_timeout_ms: 50.0,
            ..opts()
        };
        let mut b = Breaker::new(o, 0.0).unwrap();
        run(&mut b, 0.0, BreakerOutcome::Failure);
        run(&mut b, 1.0, BreakerOutcome::Failure);
        assert_eq!(b.state(), State::Open);
        assert_eq!(
            run(&mut b, 2.0, BreakerOutcome::Success).0,
            Admission::RejectOpen
        );
        run(&mut b, 61.0, BreakerOutcome::Success);
        assert_eq!(b.state(), State::HalfOpen);
        for t in [62.0, 63.0, 64.0] {
            run(&mut b, t, BreakerOutcome::Failure);
        }
        assert_eq!(b.state(), State::Open);
        run(&mut b, 124.0, BreakerOutcome::Success);
        assert_eq!(
            b.state(),
            State::HalfOpen,
            "one success is not enough after a re-open"
        );
        run(&mut b, 125.0, BreakerOutcome::Success);
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn late_non_trial_calls_do_not_decide_half_open() {
        let o = BreakerOptions {
            failure_threshold: 1,
            reset_timeout_ms: 10.0,
            ..opts()
        };
        let mut b = Breaker::new(o, 0.0).unwrap();
        run(&mut b, 0.0, BreakerOutcome::Failure);
        assert_eq!(b.try_acquire(20.0).0, Admission::AdmitTrial);
        // Two calls admitted back when it was closed finish now.
        b.on_outcome(BreakerOutcome::Success, 1.0, 21.0, false);
        b.on_outcome(BreakerOutcome::Success, 1.0, 21.0, false);
        assert_eq!(b.state(), State::HalfOpen);
        b.on_outcome(BreakerOutcome::Failure, 1.0, 21.0, false);
        assert_eq!(b.state(), State::HalfOpen);
    }

    #[test]
    fn rate_rule_needs_volume_then_opens_at_percentage() {
        let o = BreakerOptions {
            error_threshold_percentage: Some(50.0),
            volume_threshold: 10,
            failure_threshold: 1, // ignored by the rate rule
            ..opts()
        };
        let mut b = Breaker::new(o, 0.0).unwrap();
        for i in 0..5 {
            run(&mut b, i as f64, BreakerOutcome::Failure);
        }
        assert_eq!(b.state(), State::Closed, "5 calls < volume 10");
        for i in 5..9 {
            run(&mut b, i as f64, BreakerOutcome::Success);
        }
        assert_eq!(b.state(), State::Closed);
        // 10th call: 5 failures + this one = 6/10 >= 50 %.
        let (_, tr) = run(&mut b, 9.0, BreakerOutcome::Failure);
        assert!(tr.has(Transitions::OPENED));
    }

    #[test]
    fn rate_rule_forgets_old_failures() {
        let o = BreakerOptions {
            error_threshold_percentage: Some(50.0),
            volume_threshold: 4,
            rolling_window_ms: 1000.0,
            ..opts()
        };
        let mut b = Breaker::new(o, 0.0).unwrap();
        for i in 0..3 {
            run(&mut b, i as f64, BreakerOutcome::Failure);
        }
        // 2 s later the window is empty: one failure is 1 call < volume.
        run(&mut b, 2_000.0, BreakerOutcome::Failure);
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn slow_calls_open_by_rate() {
        let o = BreakerOptions {
            slow_call_duration_ms: Some(100.0),
            slow_call_rate_threshold: 50.0,
            volume_threshold: 4,
            ..opts()
        };
        let mut b = Breaker::new(o, 0.0).unwrap();
        b.on_outcome(BreakerOutcome::Success, 10.0, 1.0, false);
        b.on_outcome(BreakerOutcome::Success, 10.0, 2.0, false);
        b.on_outcome(BreakerOutcome::Success, 150.0, 3.0, false);
        assert_eq!(b.state(), State::Closed);
        let tr = b.on_outcome(BreakerOutcome::Success, 150.0, 4.0, false);
        assert!(tr.has(Transitions::OPENED));
        assert_eq!(b.totals().slow, 2);
    }

    #[test]
    fn timeouts_count_as_failures() {
        let mut b = Breaker::new(
            BreakerOptions {
                failure_threshold: 2,
                ..opts()
            },
            0.0,
        )
        .unwrap();
        run(&mut b, 1.0, BreakerOutcome::Timeout);
        run(&mut b, 2.0, BreakerOutcome::Timeout);
        assert_eq!(b.state(), State::Open);
        assert_eq!(b.totals().timeouts, 2);
        assert_eq!(b.window_counts(3.0).timeouts, 2);
    }

    #[test]
    fn manual_controls() {
        let mut b = Breaker::new(
            BreakerOptions {
                reset_timeout_ms: 10.0,
                ..opts()
            },
            0.0,
        )
        .unwrap();
        assert!(b.isolate(1.0).has(Transitions::OPENED));
        assert_eq!(
            b.try_acquire(1_000_000.0).0,
            Admission::RejectIsolated,
            "isolation ignores resetTimeout"
        );
        assert!(b.close(2.0).has(Transitions::CLOSED));
        assert!(!b.is_isolated());
        b.open(3.0);
        assert_eq!(b.try_acquire(12.9).0, Admission::RejectOpen);
        assert_eq!(b.try_acquire(13.0).0, Admission::AdmitTrial);
        run(&mut b, 14.0, BreakerOutcome::Failure);
        let tr = b.reset(15.0);
        assert!(tr.has(Transitions::CLOSED));
        assert_eq!(
            (b.failure_count(), b.last_failure_at(), b.totals()),
            (0, None, Totals::default())
        );
        assert_eq!(b.window_counts(15.0).calls(), 0);
    }
}
