//! Health gates: per-service readiness with consecutive-pass and
//! consecutive-failure thresholds, and the schedule of their checks.
//!
//! The JS side runs the check functions; this module decides when each is
//! due, gives every check a token (so a late answer from a check that
//! already timed out is ignored), turns results into readiness with
//! hysteresis, and answers "is the process ready?" from state alone.
//!
//! Two differences from the original, both on purpose:
//! * reading readiness never runs a check (the original advanced the pass
//!   counters on every probe and dashboard poll);
//! * a ready gate turns not-ready only after `required_failures` failures in
//!   a row (Kubernetes' failureThreshold), so one slow check does not pull a
//!   healthy instance out of the load balancer. The default of 1 keeps the
//!   original's behaviour.
//!
//! Time is injected as milliseconds (wall-clock, since `lastCheck` is shown
//! as a timestamp); a clock that steps backwards only delays checks by at
//! most one interval.

use super::error::{check, CoreError, CoreResult};
use super::named::{check_name, Named};
use super::text;

/// Passes in a row that make a gate ready (the original's 3).
pub const DEFAULT_REQUIRED_PASSES: u32 = 3;
/// Failures in a row that make a ready gate not ready (the original's 1).
pub const DEFAULT_REQUIRED_FAILURES: u32 = 1;
/// Time between checks of a gate.
pub const DEFAULT_INTERVAL_MS: f64 = 5_000.0;
/// How long a check may take before it counts as failed.
pub const DEFAULT_TIMEOUT_MS: f64 = 5_000.0;
/// Shortest check interval: a check loop faster than this is a busy loop.
pub const MIN_INTERVAL_MS: f64 = 10.0;
/// Upper bound of every interval and timeout: one day.
pub const MAX_MS: f64 = 86_400_000.0;
/// Most gates one set holds (one per service; a gate made per request
/// would otherwise grow memory and every readiness probe without bound).
pub const MAX_GATES: usize = 1024;
/// Longest display name of a gate.
pub const MAX_GATE_NAME_CHARS: usize = 1024;
/// Longest failure reason kept (a check may throw a huge message).
pub const MAX_REASON_BYTES: usize = 512;

/// One gate as registered.
///
/// ```
/// use reliability_core::core::gate::GateSpec;
/// let mut s = GateSpec::new("db", "Database", true);
/// s.required_passes = 1;
/// assert!(s.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct GateSpec {
    /// The service the gate watches (the one name rule).
    pub service_id: String,
    /// Display name.
    pub name: String,
    /// Only critical gates decide readiness.
    pub critical: bool,
    /// Passes in a row that make the gate ready.
    pub required_passes: u32,
    /// Failures in a row that make a ready gate not ready.
    pub required_failures: u32,
    /// Time between checks, in ms.
    pub interval_ms: f64,
    /// How long a check may take, in ms.
    pub timeout_ms: f64,
}

impl GateSpec {
    /// A spec with the default thresholds and timings.
    pub fn new(service_id: &str, name: &str, critical: bool) -> Self {
        GateSpec {
            service_id: service_id.to_string(),
            name: name.to_string(),
            critical,
            required_passes: DEFAULT_REQUIRED_PASSES,
            required_failures: DEFAULT_REQUIRED_FAILURES,
            interval_ms: DEFAULT_INTERVAL_MS,
            timeout_ms: DEFAULT_TIMEOUT_MS,
        }
    }

    /// Checks every field; messages name them as the JS options do.
    pub fn validate(&self) -> CoreResult<()> {
        check_name("gate.serviceId", &self.service_id)?;
        text::check("gate.name", &self.name, MAX_GATE_NAME_CHARS, true)?;
        check::int_in(
            "gate.requiredConsecutivePasses",
            self.required_passes as f64,
            1,
            1000,
        )?;
        check::int_in(
            "gate.requiredConsecutiveFailures",
            self.required_failures as f64,
            1,
            1000,
        )?;
        in_ms("gate.checkIntervalMs", self.interval_ms, MIN_INTERVAL_MS)?;
        in_ms("gate.timeoutMs", self.timeout_ms, 1.0)?;
        Ok(())
    }
}

fn in_ms(field: &str, v: f64, min: f64) -> CoreResult<f64> {
    if !v.is_finite() || v < min || v > MAX_MS {
        return Err(CoreError::range(
            field,
            &format!("a number of ms from {min} to {MAX_MS}"),
            check::fmt_num(v),
        ));
    }
    Ok(v)
}

/// One gate's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// What was registered.
    pub spec: GateSpec,
    /// The gate passes (with hysteresis).
    pub ready: bool,
    /// Passes in a row so far.
    pub consecutive_passes: u32,
    /// Failures in a row so far.
    pub consecutive_failures: u32,
    /// When the last check answered (epoch ms).
    pub last_check: Option<f64>,
    /// The last check's answer.
    pub last_result: Option<bool>,
    /// Why the last check failed (None after a pass).
    pub reason: Option<String>,
    /// How long the last check took, in ms.
    pub last_duration_ms: Option<f64>,
    /// When `ready` last changed.
    pub since: Option<f64>,
    /// Checks answered.
    pub checks: u64,
    /// Checks that failed or timed out.
    pub failures: u64,
    next_due: f64,
    /// `(token, started_at, deadline)` of the check in flight.
    in_flight: Option<(u64, f64, f64)>,
}

/// A change of one gate's readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Readiness did not change.
    None,
    /// The gate became ready.
    BecameReady,
    /// The gate stopped being ready.
    BecameNotReady,
    /// The answer came for a check that had already timed out or been replaced.
    Stale,
}

/// What `/health/ready` needs, computed from state only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// Every critical gate ready, and not shutting down.
    pub ready: bool,
    /// Every critical gate is ready (whatever the shutdown).
    pub critical_ready: bool,
    /// Every gate is ready.
    pub all_ready: bool,
    /// Some non-critical gate is not ready.
    pub degraded: bool,
    /// The process is shutting down.
    pub shutting_down: bool,
}

/// The gates of a process, keyed by service id (a [`Named`] set, capped at
/// [`MAX_GATES`]), with the check tokens and the shutting-down flag.
#[derive(Debug)]
pub struct GateSet {
    gates: Named<Gate>,
    next_token: u64,
    shutting_down: bool,
}

impl Default for GateSet {
    fn default() -> Self {
        GateSet {
            gates: Named::new("health gate", MAX_GATES, "gates are one per service"),
            next_token: 0,
            shutting_down: false,
        }
    }
}

impl GateSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many gates there are.
    pub fn len(&self) -> usize {
        self.gates.len()
    }

    /// True with no gate.
    pub fn is_empty(&self) -> bool {
        self.gates.is_empty()
    }

    /// Every gate, in registration order (its index is its position).
    pub fn gates(&self) -> impl Iterator<Item = &Gate> {
        self.gates.values()
    }

    /// Gate `i`, or a RangeError.
    pub fn gate(&self, i: usize) -> CoreResult<&Gate> {
        self.gates.get(i as u32).ok_or_else(|| {
            CoreError::range("gate", &format!("an index below {}", self.gates.len()), i)
        })
    }

    /// The index of the gate of `service_id`.
    pub fn index_of(&self, service_id: &str) -> Option<usize> {
        self.gates.id_of(service_id).map(|i| i as usize)
    }

    /// Adds a gate, or replaces the one with the same service id (its counts
    /// start again from zero, as in the original). The first check is due at once.
    pub fn register(&mut self, spec: GateSpec, now: f64) -> CoreResult<usize> {
        spec.validate()?;
        let gate = Gate {
            spec,
            ready: false,
            consecutive_passes: 0,
            consecutive_failures: 0,
            last_check: None,
            last_result: None,
            reason: None,
            last_duration_ms: None,
            since: Some(now),
            checks: 0,
            failures: 0,
            next_due: now,
            in_flight: None,
        };
        let id = gate.spec.service_id.clone();
        let mut new = Some(gate);
        let (i, _) = self.gates.get_or_insert("gate.serviceId", &id, || {
            new.take()
                .ok_or_else(|| CoreError::state("health gate made twice"))
        })?;
        // Not taken: the id exists, and its gate is replaced.
        if let (Some(g), Some(slot)) = (new, self.gates.get_mut(i)) {
            *slot = g;
        }
        Ok(i as usize)
    }

    fn token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    /// Starts the checks that are due and not already running; returns
    /// `(gate, token)` pairs for the JS side to run.
    pub fn start_due(&mut self, now: f64) -> Vec<(usize, u64)> {
        let mut out = Vec::new();
        for i in 0..self.gates.len() {
            let Some(g) = self.gates.get(i as u32) else {
                continue;
            };
            // A clock step backwards must not postpone a check by more than one interval.
            let due = g.next_due <= now || g.next_due - now > g.spec.interval_ms;
            if g.in_flight.is_none() && due {
                out.push((i, self.begin(i, now)));
            }
        }
        out
    }

    /// Starts a check of gate `i` now (an explicit `checkGate`), or returns
    /// the token of the one already running, so callers share one answer.
    pub fn start_now(&mut self, i: usize, now: f64) -> CoreResult<u64> {
        if let Some((t, _, _)) = self.gate(i)?.in_flight {
            return Ok(t);
        }
        Ok(self.begin(i, now))
    }

    fn begin(&mut self, i: usize, now: f64) -> u64 {
        let t = self.token();
        if let Some(g) = self.gates.get_mut(i as u32) {
            g.in_flight = Some((t, now, now + g.spec.timeout_ms));
            g.next_due = now + g.spec.interval_ms;
        }
        t
    }

    /// Fails every check that has run past its timeout; returns the gates
    /// whose readiness changed because of it.
    pub fn expire(&mut self, now: f64) -> Vec<(usize, Transition)> {
        let mut out = Vec::new();
        for i in 0..self.gates.len() {
            let Some(g) = self.gates.get(i as u32) else {
                continue;
            };
            if let Some((t, _, deadline)) = g.in_flight {
                if now >= deadline {
                    let ms = g.spec.timeout_ms;
                    let tr = self.record(
                        i,
                        t,
                        false,
                        Some(&format!("check timed out after {ms} ms")),
                        now,
                    );
                    out.push((i, tr));
                }
            }
        }
        out
    }

    /// Records the answer of check `token` for gate `i`.
    pub fn record(
        &mut self,
        i: usize,
        token: u64,
        pass: bool,
        reason: Option<&str>,
        now: f64,
    ) -> Transition {
        let Some(g) = self.gates.get_mut(i as u32) else {
            return Transition::Stale;
        };
        let Some((t, started, _)) = g.in_flight else {
            return Transition::Stale;
        };
        if t != token {
            return Transition::Stale;
        }
        g.in_flight = None;
        g.checks += 1;
        g.last_check = Some(now);
        g.last_result = Some(pass);
        g.last_duration_ms = Some((now - started).max(0.0));
        let was = g.ready;
        if pass {
            g.consecutive_passes = g.consecutive_passes.saturating_add(1);
            g.consecutive_failures = 0;
            g.reason = None;
            if g.consecutive_passes >= g.spec.required_passes {
                g.ready = true;
            }
        } else {
            g.failures += 1;
            g.consecutive_failures = g.consecutive_failures.saturating_add(1);
            g.consecutive_passes = 0;
            g.reason = Some(truncate(reason.unwrap_or("check failed"), MAX_REASON_BYTES));
            if g.consecutive_failures >= g.spec.required_failures {
                g.ready = false;
            }
        }
        if g.ready != was {
            g.since = Some(now);
            if g.ready {
                Transition::BecameReady
            } else {
                Transition::BecameNotReady
            }
        } else {
            Transition::None
        }
    }

    /// When the scheduler should next wake: the earliest due check or
    /// deadline, or None with no gates.
    pub fn next_wake(&self) -> Option<f64> {
        self.gates
            .values()
            .map(|g| match g.in_flight {
                Some((_, _, deadline)) => deadline,
                None => g.next_due,
            })
            .min_by(|a, b| a.total_cmp(b))
    }

    /// True while a check of gate `i` runs.
    pub fn is_checking(&self, i: usize) -> bool {
        self.gates
            .get(i as u32)
            .is_some_and(|g| g.in_flight.is_some())
    }

    /// While shutting down the process reports not-ready whatever its gates
    /// say, so the load balancer drains it before it closes.
    pub fn set_shutting_down(&mut self, on: bool) {
        self.shutting_down = on;
    }

    /// Readiness from state alone. Only critical gates decide `ready`; with
    /// no critical gates the process is ready (as the original).
    pub fn readiness(&self) -> Readiness {
        let critical_ready = self.gates.values().all(|g| !g.spec.critical || g.ready);
        Readiness {
            ready: critical_ready && !self.shutting_down,
            critical_ready,
            all_ready: self.gates.values().all(|g| g.ready),
            degraded: self.gates.values().any(|g| !g.spec.critical && !g.ready),
            shutting_down: self.shutting_down,
        }
    }

    /// Forgets every gate.
    pub fn clear(&mut self) {
        *self = GateSet::new();
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(critical: bool, passes: u32, failures: u32) -> (GateSet, usize) {
        let mut s = GateSet::new();
        let mut spec = GateSpec::new("db", "Database", critical);
        spec.required_passes = passes;
        spec.required_failures = failures;
        let i = s.register(spec, 0.0).unwrap();
        (s, i)
    }

    /// Runs one scheduled round at `now` with the given answer.
    fn round(s: &mut GateSet, now: f64, pass: bool) -> Transition {
        let due = s.start_due(now);
        assert_eq!(due.len(), 1, "one check due at {now}");
        s.record(
            due[0].0,
            due[0].1,
            pass,
            if pass { None } else { Some("no") },
            now + 1.0,
        )
    }

    #[test]
    fn three_passes_make_a_gate_ready_one_failure_resets_it() {
        let (mut s, _) = one(true, 3, 1);
        assert!(!s.readiness().ready);
        assert_eq!(round(&mut s, 0.0, true), Transition::None);
        assert_eq!(round(&mut s, 5000.0, true), Transition::None);
        assert_eq!(round(&mut s, 10000.0, true), Transition::BecameReady);
        assert!(s.readiness().ready);
        assert_eq!(round(&mut s, 15000.0, false), Transition::BecameNotReady);
        let g = &s.gate(0).unwrap();
        assert_eq!(
            (
                g.consecutive_passes,
                g.consecutive_failures,
                g.reason.as_deref()
            ),
            (0, 1, Some("no"))
        );
        assert!(!s.readiness().ready);
    }

    #[test]
    fn failure_threshold_protects_against_flapping() {
        let (mut s, _) = one(true, 1, 3);
        assert_eq!(round(&mut s, 0.0, true), Transition::BecameReady);
        assert_eq!(round(&mut s, 5000.0, false), Transition::None);
        assert_eq!(round(&mut s, 10000.0, false), Transition::None);
        assert!(s.readiness().ready, "two failures in a row are tolerated");
        assert_eq!(round(&mut s, 15000.0, true), Transition::None);
        assert_eq!(round(&mut s, 20000.0, false), Transition::None);
        assert_eq!(round(&mut s, 25000.0, false), Transition::None);
        assert_eq!(round(&mut s, 30000.0, false), Transition::BecameNotReady);
    }

    #[test]
    fn reading_readiness_never_advances_counters() {
        let (mut s, _) = one(true, 3, 1);
        round(&mut s, 0.0, true);
        for _ in 0..100 {
            let _ = s.readiness();
        }
        assert_eq!(s.gate(0).unwrap().consecutive_passes, 1);
    }

    #[test]
    fn schedule_waits_for_the_interval_and_for_the_check_in_flight() {
        let (mut s, i) = one(true, 3, 1);
        let first = s.start_due(0.0);
        assert_eq!(first.len(), 1);
        assert!(s.start_due(100.0).is_empty(), "already running");
        assert_eq!(s.next_wake(), Some(5000.0), "deadline of the running check");
        s.record(i, first[0].1, true, None, 10.0);
        assert_eq!(s.next_wake(), Some(5000.0), "next interval");
        assert!(s.start_due(4999.0).is_empty());
        assert_eq!(s.start_due(5000.0).len(), 1);
    }

    #[test]
    fn a_hung_check_times_out_and_its_late_answer_is_ignored() {
        let (mut s, i) = one(true, 1, 1);
        let t = s.start_due(0.0)[0].1;
        assert!(s.expire(4999.0).is_empty());
        assert_eq!(s.expire(5000.0), vec![(i, Transition::None)]);
        assert_eq!(
            s.gate(0).unwrap().reason.as_deref(),
            Some("check timed out after 5000 ms")
        );
        assert_eq!(s.record(i, t, true, None, 6000.0), Transition::Stale);
        assert_eq!(s.gate(0).unwrap().checks, 1);
    }

    #[test]
    fn explicit_checks_share_the_running_one() {
        let (mut s, i) = one(true, 1, 1);
        let a = s.start_now(i, 0.0).unwrap();
        assert_eq!(s.start_now(i, 1.0).unwrap(), a);
        assert_eq!(s.record(i, a, true, None, 2.0), Transition::BecameReady);
        assert!(s.start_now(i, 3.0).unwrap() > a);
        assert!(s.start_now(7, 3.0).is_err());
    }

    #[test]
    fn only_critical_gates_block_readiness() {
        let mut s = GateSet::new();
        assert!(s.readiness().ready, "no gates: ready, as the original");
        let mut spec = GateSpec::new("cache", "Cache", false);
        spec.required_passes = 1;
        s.register(spec, 0.0).unwrap();
        let r = s.readiness();
        assert!(r.ready && r.critical_ready && !r.all_ready && r.degraded);
        let db = s.register(GateSpec::new("db", "DB", true), 0.0).unwrap();
        assert!(!s.readiness().ready);
        for k in 0..3 {
            let due = s.start_due(k as f64 * 5000.0);
            for (g, t) in due {
                s.record(g, t, g == db, Some("down"), k as f64 * 5000.0 + 1.0);
            }
        }
        let r = s.readiness();
        assert!(r.ready && r.degraded);
        s.set_shutting_down(true);
        let r = s.readiness();
        assert!(!r.ready && r.critical_ready && r.shutting_down);
    }

    #[test]
    fn re_registering_resets_and_backward_clock_still_checks() {
        let (mut s, i) = one(true, 1, 1);
        round(&mut s, 1_000_000.0, true);
        assert!(s.readiness().ready);
        s.register(GateSpec::new("db", "Database", true), 1_000_010.0)
            .unwrap();
        assert_eq!(s.len(), 1);
        assert!(!s.gate(i).unwrap().ready);
        // next_due is 1_000_010; the clock jumps back an hour.
        let t = s.start_due(1_000_010.0)[0].1;
        s.record(i, t, true, None, 1_000_011.0);
        assert_eq!(s.start_due(1_000_011.0 - 3_600_000.0).len(), 1);
    }

    #[test]
    fn validation_names_fields_and_reasons_are_bounded() {
        let mut s = GateSet::new();
        let mut spec = GateSpec::new("db", "DB", true);
        spec.required_passes = 0;
        assert_eq!(
            s.register(spec.clone(), 0.0).unwrap_err().message,
            "gate.requiredConsecutivePasses must be an integer from 1 to 1000, got 0"
        );
        spec.required_passes = 3;
        spec.interval_ms = 1.0;
        assert_eq!(
            s.register(spec.clone(), 0.0).unwrap_err().message,
            "gate.checkIntervalMs must be a number of ms from 10 to 86400000, got 1"
        );
        spec.interval_ms = 1000.0;
        spec.timeout_ms = f64::INFINITY;
        assert!(s
            .register(spec, 0.0)
            .unwrap_err()
            .message
            .starts_with("gate.timeoutMs"));
        assert!(s.is_empty());
        let (mut s, i) = one(true, 1, 1);
        let t = s.start_due(0.0)[0].1;
        s.record(i, t, false, Some(&"é".repeat(1000)), 1.0);
        assert!(s.gate(0).unwrap().reason.as_ref().unwrap().len() <= MAX_REASON_BYTES + 3);
    }

    #[test]
    fn gates_follow_the_one_name_rule_and_the_cap() {
        let mut s = GateSet::new();
        let e = s
            .register(GateSpec::new("db\u{202e}", "Database", true), 0.0)
            .unwrap_err();
        assert!(
            e.message.starts_with("gate.serviceId must be"),
            "{}",
            e.message
        );
        for k in 0..MAX_GATES {
            s.register(GateSpec::new(&format!("svc-{k}"), "", false), 0.0)
                .unwrap();
        }
        let e = s
            .register(GateSpec::new("one-more", "", false), 0.0)
            .unwrap_err();
        assert_eq!(e.kind, crate::core::error::ErrorKind::Limit);
        // Replacing an existing gate is not a new name.
        assert_eq!(
            s.register(GateSpec::new("svc-0", "Zero", true), 0.0)
                .unwrap(),
            0
        );
        assert!(s.gate(0).unwrap().spec.critical);
    }
}
