//! Bindings for quorum breakers (`core::breaker::quorum`), which the Redis
//! backend's JS-side vote loop asks what to do.

use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;

use crate::codes_napi::QuorumAction;
use crate::core::breaker::quorum::{self, Quorum};
use crate::core::error::CoreError;
use crate::napi_util::throw;

/// One quorum breaker's rule (see `core::breaker::quorum`); the Redis backend counts
/// the votes and asks it what to do.
///
/// ```ts
/// const q = new native.QuorumRule(2);
/// if (q.decide(failing, voters, breaker.isOpen()) === QuorumAction.Open) breaker.open();
/// ```
#[napi]
pub struct QuorumRule {
    inner: Quorum,
}

#[napi]
impl QuorumRule {
    /// `quorum`: an integer >= 1 (instances) or a share in (0, 1]; anything
    /// else is a RangeError naming `quorum`.
    #[napi(constructor)]
    pub fn new(env: Env, quorum: Unknown) -> Result<Self> {
        let q = match quorum.get_type()? {
            // SAFETY: the value was just checked to be a number.
            ValueType::Number => unsafe { quorum.cast::<f64>() }?,
            other => {
                return Err(throw(
                    &env,
                    CoreError::range(
                        "quorum",
                        "an integer >= 1 or a share in (0, 1]",
                        format!("{other:?}").to_lowercase(),
                    ),
                ))
            }
        };
        Quorum::new(q)
            .map(|inner| QuorumRule { inner })
            .map_err(|e| throw(&env, e))
    }

    /// What to do with the local breaker given `failing` "open" votes among
    /// `voters` fresh ones and whether it is open now.
    #[napi]
    pub fn decide(&mut self, failing: u32, voters: u32, is_open: bool) -> QuorumAction {
        match self.inner.decide(failing, voters, is_open) {
            quorum::QuorumAction::None => QuorumAction::None,
            quorum::QuorumAction::Open => QuorumAction::Open,
            quorum::QuorumAction::Close => QuorumAction::Close,
        }
    }

    /// This instance's vote: false for a breaker the quorum opened.
    #[napi]
    pub fn votes_open(&self, is_open: bool) -> bool {
        self.inner.votes_open(is_open)
    }

    /// True while the quorum holds the local breaker open.
    #[napi(getter)]
    pub fn forced(&self) -> bool {
        self.inner.forced()
    }

    /// The quorum as given: a count of instances (>= 1) or a share in (0, 1].
    #[napi(getter)]
    pub fn quorum(&self) -> f64 {
        self.inner.quorum()
    }
}
