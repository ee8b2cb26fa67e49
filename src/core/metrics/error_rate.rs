//! The package's one documented error-rate definition.
//!
//! Why a module of its own: every figure called `errorRate` (golden
//! signals, endpoints, the Redis cluster view, rollout SLOs) must be the
//! same rule, so it lives once, here, and everything else calls it.

/// The lowest status that counts as an error (4xx and 5xx), for
/// [`error_rate`] and for the default success rule of rollouts.
pub const ERROR_STATUS_FROM: u16 = 400;

/// The package's one definition of "error rate": the share of completed
/// requests answered with a status of 400 or more (the original's rule;
/// rollouts count a request as failed by the same rule unless `isSuccess`
/// says otherwise), 0 with no requests. Every figure called `errorRate`
/// (golden signals, endpoints, the Redis cluster view, rollout SLOs) is
/// this, computed here; [`server_error_rate`] is the 5xx-only share.
///
/// ```
/// use reliability_core::core::metrics::error_rate;
/// assert_eq!(error_rate(1, 2, 4), 0.75);
/// assert_eq!(error_rate(0, 0, 0), 0.0);
/// ```
pub fn error_rate(status_4xx: u64, status_5xx: u64, requests: u64) -> f64 {
    // 4xx and 5xx are exactly the statuses from ERROR_STATUS_FROM on.
    const _: () = assert!(ERROR_STATUS_FROM == 400);
    rate_of(status_4xx + status_5xx, requests)
}

/// The share of requests answered 5xx, 0 with no requests.
///
/// ```
/// use reliability_core::core::metrics::server_error_rate;
/// assert_eq!(server_error_rate(1, 4), 0.25);
/// ```
pub fn server_error_rate(status_5xx: u64, requests: u64) -> f64 {
    rate_of(status_5xx, requests)
}

/// `errors / requests`, 0 with no requests (a rate over nothing is no errors).
///
/// ```
/// use reliability_core::core::metrics::rate_of;
/// assert_eq!(rate_of(3, 0), 0.0);
/// ```
pub fn rate_of(errors: u64, requests: u64) -> f64 {
    if requests == 0 {
        0.0
    } else {
        errors as f64 / requests as f64
    }
}
