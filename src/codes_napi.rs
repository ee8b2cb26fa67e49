//! Every numeric protocol the TypeScript layer decodes, exported as napi
//! enums and constants so that `index.d.ts` carries them and `lib/` never
//! writes one of these numbers itself (`__test__/one-rule.test.js` fails if
//! it does).
//!
//! napi-rs enums need literal discriminants, so each enum here mirrors a core
//! type; the `tests` below fail if the two drift apart. The TS side imports
//! them as `const enum`s from `index.d.ts`, which `tsc` inlines: reading a
//! code costs nothing on the hot path.
//!
//! ```ts
//! import { BreakerAdmission } from '../index';
//! if (code === BreakerAdmission.Trial) { /* run as a half-open trial */ }
//! ```

use napi_derive::napi;

/// What `cbAcquire` answers in its low 4 bits (`core::breaker::Admission`).
#[napi]
pub enum BreakerAdmission {
    /// Closed: run it.
    Admit = 0,
    /// Half-open: run it as a trial, report it with `trial = 1`.
    Trial = 1,
    /// Open and still inside `resetTimeout`.
    RejectOpen = 2,
    /// Isolated by an operator.
    RejectIsolated = 3,
    /// Half-open, every trial slot taken.
    RejectHalfOpenFull = 4,
}

/// Transition bits (`core::breaker::Transitions`): what `cbRecord` and
/// `cbControl` return, and `cbAcquire` above [`BREAKER_TRANSITION_SHIFT`].
#[napi]
pub enum BreakerTransition {
    Opened = 1,
    Closed = 2,
    HalfOpened = 4,
    /// Set with `Opened` when failed trials re-opened it.
    FromHalfOpen = 8,
}

/// `cbAcquire` packs `admission | transitions << BREAKER_TRANSITION_SHIFT`.
#[napi]
pub const BREAKER_TRANSITION_SHIFT: u32 = 4;

/// Mask of the admission bits in `cbAcquire`'s answer.
#[napi]
pub const BREAKER_ADMISSION_MASK: u32 = (1 << BREAKER_TRANSITION_SHIFT) - 1;

/// The outcome slot of `cbRecord`'s I/O block (`core::breaker::BreakerOutcome`).
#[napi]
pub enum BreakerOutcome {
    Success = 0,
    Failure = 1,
    Timeout = 2,
}

/// The gate slot of a breaker's mirror page.
#[napi]
pub enum BreakerGate {
    /// Closed: run without asking.
    Closed = 0,
    /// Closed, but the call must ask Rust (slow-call tracking and the like).
    Ask = 1,
    Open = 2,
    HalfOpen = 3,
    /// Open by hand until closed by hand.
    Isolated = 4,
}

/// `cbControl`'s `op`.
#[napi]
pub enum BreakerControl {
    Reset = 0,
    Close = 1,
    Open = 2,
    Isolate = 3,
    /// Counts a fallback served (for `circuit_breaker_calls_total{outcome="fallback"}`).
    Fallback = 4,
}

/// `opsDecide`'s answer (`core::ops::Decision::code`): 0 serves, the others
/// are the refusal codes metrics count refused requests under.
#[napi]
pub enum OpsDecision {
    Serve = 0,
    SafeMode = 1,
    Shed = 2,
    Quarantined = 3,
}

/// Slots of `opsFlags`' answer, the summary the JS middleware caches.
#[napi]
pub enum OpsFlag {
    /// Bumped by every change of the ops state.
    Version = 0,
    /// 1 while safe mode is on, else 0.
    SafeMode = 1,
    /// The brownout dimmer level, or -1 while brownout is off.
    Dimmer = 2,
    /// How many agents are quarantined.
    Quarantines = 3,
    /// When the next quarantine expires (epoch ms), or -1.
    NextExpiry = 4,
}

/// `opsDecide`'s `criticality`.
#[napi]
pub enum OpsCriticality {
    Critical = 0,
    Default = 1,
    Sheddable = 2,
}

/// What `gateResult` answers (`core::gate::Transition`).
#[napi]
pub enum GateTransition {
    None = 0,
    BecameReady = 1,
    BecameNotReady = 2,
    /// The answer came for a check that had timed out or been replaced.
    Stale = -1,
}

/// Bits of a rollout outcome's flags (`RolloutTable#recordFn`, the rollout ring).
#[napi]
pub enum RolloutOutcomeFlag {
    /// The request succeeded.
    Ok = 1,
    /// The request was in the new cohort.
    NewCohort = 2,
}

/// What `quorumBreaker.decide` tells the caller to do (`core::breaker::quorum::QuorumAction`).
#[napi]
pub enum QuorumAction {
    None = 0,
    Open = 1,
    Close = 2,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::breaker::quorum;
    use crate::core::breaker::{Admission, BreakerOutcome as Outcome, Transitions};
    use crate::core::gate::Transition;
    use crate::core::metrics::Refusal;
    use crate::core::ops::Decision;

    #[test]
    fn breaker_codes_match_the_core() {
        for (a, b) in [
            (Admission::Admit, BreakerAdmission::Admit),
            (Admission::AdmitTrial, BreakerAdmission::Trial),
            (Admission::RejectOpen, BreakerAdmission::RejectOpen),
            (Admission::RejectIsolated, BreakerAdmission::RejectIsolated),
            (
                Admission::RejectHalfOpenFull,
                BreakerAdmission::RejectHalfOpenFull,
            ),
        ] {
            assert_eq!(a as i32, b as i32);
            assert!((a as u32) <= BREAKER_ADMISSION_MASK);
        }
        for (bit, t) in [
            (Transitions::OPENED, BreakerTransition::Opened),
            (Transitions::CLOSED, BreakerTransition::Closed),
            (Transitions::HALF_OPENED, BreakerTransition::HalfOpened),
            (Transitions::FROM_HALF_OPEN, BreakerTransition::FromHalfOpen),
        ] {
            assert_eq!(bit as i32, t as i32);
        }
        for (o, b) in [
            (Outcome::Success, BreakerOutcome::Success),
            (Outcome::Failure, BreakerOutcome::Failure),
            (Outcome::Timeout, BreakerOutcome::Timeout),
        ] {
            assert_eq!(o as i32, b as i32);
        }
    }

    #[test]
    fn ops_decisions_are_the_refusal_codes() {
        assert_eq!(Decision::Serve.code(), OpsDecision::Serve as u32);
        assert_eq!(Decision::SafeMode.code(), OpsDecision::SafeMode as u32);
        assert_eq!(Decision::Shed.code(), OpsDecision::Shed as u32);
        assert_eq!(
            Decision::Quarantined.code(),
            OpsDecision::Quarantined as u32
        );
        assert_eq!(Refusal::SafeMode.code(), OpsDecision::SafeMode as u32);
        assert_eq!(Refusal::Brownout.code(), OpsDecision::Shed as u32);
        assert_eq!(Refusal::Quarantine.code(), OpsDecision::Quarantined as u32);
    }

    #[test]
    fn gate_and_quorum_codes_match_the_core() {
        use crate::gate_napi::transition_code;
        for (t, g) in [
            (Transition::None, GateTransition::None),
            (Transition::BecameReady, GateTransition::BecameReady),
            (Transition::BecameNotReady, GateTransition::BecameNotReady),
            (Transition::Stale, GateTransition::Stale),
        ] {
            assert_eq!(transition_code(t), g as i32);
        }
        for (a, q) in [
            (quorum::QuorumAction::None, QuorumAction::None),
            (quorum::QuorumAction::Open, QuorumAction::Open),
            (quorum::QuorumAction::Close, QuorumAction::Close),
        ] {
            assert_eq!(a as i32, q as i32);
        }
    }
}
