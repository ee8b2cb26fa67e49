//! A breaker's options and their one validation: [`BreakerOptions`] (the
//! checked, typed form the state machine runs on) and [`RawBreakerOptions`]
//! (what a caller wrote, every field optional and still a plain number), so
//! integer-ness, ranges and defaults are decided here, once, and every error
//! names the field the caller wrote.
//!
//! ```
//! use reliability_core::core::breaker::{BreakerOptions, RawBreakerOptions};
//! let o = RawBreakerOptions { failure_threshold: Some(3.0), ..Default::default() }.build().unwrap();
//! assert_eq!(o.failure_threshold, 3);
//! assert_eq!(o.reset_timeout_ms, BreakerOptions::default().reset_timeout_ms);
//! ```

use crate::core::backoff::{RawRetry, RetryFields, RetryPolicy};
use crate::core::error::{check, CoreError, CoreResult};

/// When a closed breaker opens. Two rules behind one method (cockatiel keeps
/// them as separate strategy classes; an enum does the same without a heap
/// allocation per breaker, which matters with 10 000 breakers).
#[derive(Debug, Clone, PartialEq)]
pub enum OpeningRule {
    /// `threshold` failed calls in a row (the original's rule).
    ConsecutiveFailures {
        /// Failures in a row that open the breaker.
        threshold: u32,
    },
    /// Failure rate over the rolling window at or above `percentage`, once
    /// the window holds at least `volume` calls (opossum, resilience4j).
    FailureRate {
        /// Failure rate (percent) that opens the breaker.
        percentage: f64,
        /// Calls the window must hold before the rate counts.
        volume: u32,
    },
}

/// Everything a breaker can be configured with. `Default` gives the
/// original's defaults (spec §2.1) with its bugs fixed (see README).
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerOptions {
    /// Failures in a row before opening, when no `errorThresholdPercentage` is set.
    pub failure_threshold: u32,
    /// Optional rate rule; replaces the consecutive rule when set.
    pub error_threshold_percentage: Option<f64>,
    /// Minimum calls in the window before a rate (failure or slow) can open the breaker.
    pub volume_threshold: u32,
    /// Length of the rolling window the rate rules read, in ms.
    pub rolling_window_ms: f64,
    /// Buckets of the rolling window (its resolution).
    pub rolling_buckets: u32,
    /// Time an open breaker waits before letting a trial call through.
    pub reset_timeout_ms: f64,
    /// Failed trials in one half-open period before it re-opens.
    pub half_open_max_attempts: u32,
    /// Trial calls allowed in flight at once while half-open; the rest are rejected.
    pub half_open_max_calls: u32,
    /// Successful trials in one half-open period before it closes.
    pub half_open_success_threshold: u32,
    /// Calls slower than this count as slow.
    pub slow_call_duration_ms: Option<f64>,
    /// Share of slow calls in the window (percent) that opens the breaker.
    pub slow_call_rate_threshold: f64,
    /// Per-call timeout; enforced by the JS wrapper (it owns the promise),
    /// validated and stored here so there is one source of truth.
    pub timeout_ms: Option<f64>,
    /// The retry policy the JS wrapper composes around the breaker (`retryOptions`).
    pub retry: RetryPolicy,
    /// `exactLatency`: read the clock before and after every call. Off (the
    /// default), a closed breaker without `slow_call_duration_ms` or
    /// `timeout_ms` times its calls with the JS wrapper's turn clock: one
    /// clock read per event-loop turn shared by every call in that turn, so a
    /// latency is exact to the turn and synchronous work inside one turn is
    /// not counted. Breakers with a slow-call rule, a timeout, half-open
    /// trials and failures read the clock per call whatever this says (see
    /// [`BreakerOptions::times_per_turn`]).
    pub exact_latency: bool,
}

impl Default for BreakerOptions {
    fn default() -> Self {
        BreakerOptions {
            failure_threshold: 5,
            error_threshold_percentage: None,
            volume_threshold: 10,
            rolling_window_ms: 10_000.0,
            rolling_buckets: 10,
            reset_timeout_ms: 60_000.0,
            half_open_max_attempts: 3,
            half_open_max_calls: 1,
            half_open_success_threshold: 2,
            slow_call_duration_ms: None,
            slow_call_rate_threshold: 100.0,
            timeout_ms: None,
            retry: RetryPolicy::default(),
            exact_latency: false,
        }
    }
}

impl BreakerOptions {
    /// The defaults under a test runner (`JEST_WORKER_ID`, `VITEST`,
    /// `NODE_ENV=test`): the same options except that retries do not wait
    /// (`retryOptions.initialDelay` 0), so a call that keeps failing still
    /// makes its 1 + 5 attempts (tests that count calls to a dependency see
    /// the production count) but settles at once instead of after ~3 s, and
    /// does not depend on timers, real or fake. An `initialDelay` given
    /// explicitly is honoured (its sleeps follow fake timers).
    ///
    /// ```
    /// use reliability_core::core::breaker::BreakerOptions;
    /// let t = BreakerOptions::under_test();
    /// assert_eq!(t.retry.initial_delay_ms, 0.0);
    /// assert_eq!(t.retry.max_retries, BreakerOptions::default().retry.max_retries);
    /// ```
    pub fn under_test() -> Self {
        let mut o = BreakerOptions::default();
        o.retry.initial_delay_ms = 0.0;
        o
    }

    /// Checks every field; the error names the field and its allowed range.
    pub fn validate(&self) -> CoreResult<()> {
        check::int_in(
            "failureThreshold",
            self.failure_threshold as f64,
            1,
            1_000_000,
        )?;
        if let Some(p) = self.error_threshold_percentage {
            check::percentage("errorThresholdPercentage", p)?;
        }
        check::int_in(
            "volumeThreshold",
            self.volume_threshold as f64,
            0,
            1_000_000_000,
        )?;
        check::above("rollingWindowMs", self.rolling_window_ms, 0.0)?;
        check::int_in("rollingBuckets", self.rolling_buckets as f64, 1, 1000)?;
        if self.rolling_window_ms / (self.rolling_buckets as f64) < 1.0 {
            return Err(CoreError::range(
                "rollingWindowMs",
                "at least 1 ms per bucket (rollingWindowMs >= rollingBuckets)",
                self.rolling_window_ms,
            ));
        }
        check::at_least("resetTimeout", self.reset_timeout_ms, 0.0)?;
        check::int_in(
            "halfOpenMaxAttempts",
            self.half_open_max_attempts as f64,
            1,
            1_000_000,
        )?;
        check::int_in(
            "halfOpenMaxCalls",
            self.half_open_max_calls as f64,
            1,
            1_000_000,
        )?;
        check::int_in(
            "halfOpenSuccessThreshold",
            self.half_open_success_threshold as f64,
            1,
            1_000_000,
        )?;
        if let Some(v) = self.slow_call_duration_ms {
            check::above("slowCallDurationMs", v, 0.0)?;
        }
        check::percentage("slowCallRateThreshold", self.slow_call_rate_threshold)?;
        if let Some(v) = self.timeout_ms {
            check::above("timeout", v, 0.0)?;
        }
        self.retry.validate()
    }

    /// Whether the closed path may time its calls with the turn clock (one
    /// clock read per event-loop turn) instead of two reads per call: only
    /// without a slow-call rule (it needs each call's own latency), without
    /// a timeout (its deadline is read per call anyway) and without
    /// `exact_latency`. The JS wrapper reads it back with the options.
    ///
    /// ```
    /// use reliability_core::core::breaker::BreakerOptions;
    /// assert!(BreakerOptions::default().times_per_turn());
    /// let slow = BreakerOptions { slow_call_duration_ms: Some(50.0), ..Default::default() };
    /// assert!(!slow.times_per_turn());
    /// let exact = BreakerOptions { exact_latency: true, ..Default::default() };
    /// assert!(!exact.times_per_turn());
    /// ```
    pub fn times_per_turn(&self) -> bool {
        !self.exact_latency && self.slow_call_duration_ms.is_none() && self.timeout_ms.is_none()
    }

    /// The rule that opens a closed breaker: the rate rule when `errorThresholdPercentage` is set, else consecutive failures.
    ///
    /// Example: `BreakerOptions::default().opening_rule() == OpeningRule::ConsecutiveFailures { threshold: 5 }`
    pub fn opening_rule(&self) -> OpeningRule {
        match self.error_threshold_percentage {
            Some(percentage) => OpeningRule::FailureRate {
                percentage,
                volume: self.volume_threshold,
            },
            None => OpeningRule::ConsecutiveFailures {
                threshold: self.failure_threshold,
            },
        }
    }
}

/// Options as they arrive from a caller: every field optional and still a
/// plain number, so integer-ness and ranges are checked here, once, and the
/// error names the field the caller wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawBreakerOptions {
    /// `failureThreshold`: an integer from 1.
    pub failure_threshold: Option<f64>,
    /// `errorThresholdPercentage`: a percentage in (0, 100].
    pub error_threshold_percentage: Option<f64>,
    /// `volumeThreshold`: an integer from 0.
    pub volume_threshold: Option<f64>,
    /// `rollingWindowMs`: > 0, at least 1 ms per bucket.
    pub rolling_window_ms: Option<f64>,
    /// `rollingBuckets`: an integer from 1 to 1000.
    pub rolling_buckets: Option<f64>,
    /// `resetTimeout` in ms, >= 0.
    pub reset_timeout_ms: Option<f64>,
    /// `halfOpenMaxAttempts`: an integer from 1.
    pub half_open_max_attempts: Option<f64>,
    /// `halfOpenMaxCalls`: an integer from 1.
    pub half_open_max_calls: Option<f64>,
    /// `halfOpenSuccessThreshold`: an integer from 1.
    pub half_open_success_threshold: Option<f64>,
    /// `slowCallDurationMs` in ms, > 0.
    pub slow_call_duration_ms: Option<f64>,
    /// `slowCallRateThreshold`: a percentage in (0, 100].
    pub slow_call_rate_threshold: Option<f64>,
    /// `timeout` in ms, > 0.
    pub timeout_ms: Option<f64>,
    /// Version B's name for `timeout`: honoured, and 0 turns the timeout
    /// off as it did there. Giving both with different values is an error.
    pub request_timeout_ms: Option<f64>,
    /// `retryOptions.maxRetries`: an integer from 0 to 100.
    pub max_retries: Option<f64>,
    /// `retryOptions.initialDelay` in ms, >= 0.
    pub initial_delay_ms: Option<f64>,
    /// `retryOptions.maxDelay` in ms, >= initialDelay.
    pub max_delay_ms: Option<f64>,
    /// `retryOptions.factor`: growth per attempt, 1 to 10.
    pub factor: Option<f64>,
    /// `retryOptions.jitter`, already parsed.
    pub jitter: Option<crate::core::backoff::Jitter>,
    /// `exactLatency`: a boolean (default false).
    pub exact_latency: Option<bool>,
}

impl RawBreakerOptions {
    /// Fills defaults for absent fields and validates the result. Unlike the
    /// original (`||`), an explicit 0 is taken as 0: `maxRetries: 0` means
    /// no retries, and `failureThreshold: 0` is a RangeError, not 5.
    pub fn build(&self) -> CoreResult<BreakerOptions> {
        self.build_over(&BreakerOptions::default())
    }

    /// As `build`, filling what the user left out from `d` (the production
    /// defaults, or `BreakerOptions::under_test()`).
    pub fn build_over(&self, d: &BreakerOptions) -> CoreResult<BreakerOptions> {
        let timeout_ms = match (self.timeout_ms, self.request_timeout_ms) {
            (t, None) => t,
            (None, Some(r)) => {
                check::at_least("requestTimeout", r, 0.0)?;
                (r > 0.0).then_some(r)
            }
            (Some(t), Some(r)) if t == r => Some(t),
            (Some(t), Some(r)) => {
                return Err(CoreError::range(
                    "requestTimeout",
                    &format!("absent or equal to timeout ({})", check::fmt_num(t)),
                    check::fmt_num(r),
                ));
            }
        };
        let int = |field: &str, v: Option<f64>, dflt: u32, min: u32, max: u32| -> CoreResult<u32> {
            match v {
                None => Ok(dflt),
                Some(v) => check::int_in(field, v, min, max),
            }
        };
        let o = BreakerOptions {
            failure_threshold: int(
                "failureThreshold",
                self.failure_threshold,
                d.failure_threshold,
                1,
                1_000_000,
            )?,
            error_threshold_percentage: self.error_threshold_percentage,
            volume_threshold: int(
                "volumeThreshold",
                self.volume_threshold,
                d.volume_threshold,
                0,
                1_000_000_000,
            )?,
            rolling_window_ms: self.rolling_window_ms.unwrap_or(d.rolling_window_ms),
            rolling_buckets: int(
                "rollingBuckets",
                self.rolling_buckets,
                d.rolling_buckets,
                1,
                1000,
            )?,
            reset_timeout_ms: self.reset_timeout_ms.unwrap_or(d.reset_timeout_ms),
            half_open_max_attempts: int(
                "halfOpenMaxAttempts",
                self.half_open_max_attempts,
                d.half_open_max_attempts,
                1,
                1_000_000,
            )?,
            half_open_max_calls: int(
                "halfOpenMaxCalls",
                self.half_open_max_calls,
                d.half_open_max_calls,
                1,
                1_000_000,
            )?,
            half_open_success_threshold: int(
                "halfOpenSuccessThreshold",
                self.half_open_success_threshold,
                d.half_open_success_threshold,
                1,
                1_000_000,
            )?,
            slow_call_duration_ms: self.slow_call_duration_ms,
            slow_call_rate_threshold: self
                .slow_call_rate_threshold
                .unwrap_or(d.slow_call_rate_threshold),
            timeout_ms,
            retry: RawRetry {
                max_retries: self.max_retries,
                initial_delay_ms: self.initial_delay_ms,
                max_delay_ms: self.max_delay_ms,
                factor: self.factor,
                jitter: self.jitter,
            }
            // Checked with the rest by `o.validate()` below (the one retry rule).
            .fill(&RetryFields::BREAKER, &d.retry)?,
            exact_latency: self.exact_latency.unwrap_or(d.exact_latency),
        };
        o.validate()?;
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::breaker::Breaker;

    fn opts() -> BreakerOptions {
        BreakerOptions::default()
    }

    #[test]
    fn raw_options_take_explicit_zero_and_reject_non_integers() {
        // Version B's requestTimeout is honoured; 0 turns it off, as there.
        let o = RawBreakerOptions {
            request_timeout_ms: Some(5000.0),
            ..Default::default()
        }
        .build()
        .unwrap();
        assert_eq!(o.timeout_ms, Some(5000.0));
        assert_eq!(
            RawBreakerOptions {
                request_timeout_ms: Some(0.0),
                ..Default::default()
            }
            .build()
            .unwrap()
            .timeout_ms,
            None
        );
        let e = RawBreakerOptions {
            timeout_ms: Some(100.0),
            request_timeout_ms: Some(200.0),
            ..Default::default()
        }
        .build()
        .unwrap_err();
        assert!(
            e.message
                .starts_with("requestTimeout must be absent or equal to timeout (100)"),
            "{}",
            e.message
        );
        assert!(RawBreakerOptions {
            request_timeout_ms: Some(-1.0),
            ..Default::default()
        }
        .build()
        .unwrap_err()
        .message
        .starts_with("requestTimeout"));
        let o = RawBreakerOptions {
            max_retries: Some(0.0),
            ..Default::default()
        }
        .build()
        .unwrap();
        assert_eq!(o.retry.max_retries, 0);
        assert_eq!(
            RawBreakerOptions::default().build().unwrap(),
            BreakerOptions::default()
        );
        let e = RawBreakerOptions {
            failure_threshold: Some(2.5),
            ..Default::default()
        }
        .build()
        .unwrap_err();
        assert_eq!(
            e.message,
            "failureThreshold must be an integer from 1 to 1000000, got 2.5"
        );
        let e = RawBreakerOptions {
            max_retries: Some(-1.0),
            ..Default::default()
        }
        .build()
        .unwrap_err();
        assert!(e.message.starts_with("retryOptions.maxRetries"));
        // maxDelay defaults up to initialDelay when only initialDelay is raised.
        let o = RawBreakerOptions {
            initial_delay_ms: Some(5000.0),
            ..Default::default()
        }
        .build()
        .unwrap();
        assert_eq!(o.retry.max_delay_ms, 5000.0);
    }

    #[test]
    fn validation_rejects_bad_values_with_field_names() {
        let cases: Vec<(BreakerOptions, &str)> = vec![
            (
                BreakerOptions {
                    failure_threshold: 0,
                    ..opts()
                },
                "failureThreshold",
            ),
            (
                BreakerOptions {
                    error_threshold_percentage: Some(0.0),
                    ..opts()
                },
                "errorThresholdPercentage",
            ),
            (
                BreakerOptions {
                    error_threshold_percentage: Some(100.5),
                    ..opts()
                },
                "errorThresholdPercentage",
            ),
            (
                BreakerOptions {
                    error_threshold_percentage: Some(f64::NAN),
                    ..opts()
                },
                "errorThresholdPercentage",
            ),
            (
                BreakerOptions {
                    reset_timeout_ms: -1.0,
                    ..opts()
                },
                "resetTimeout",
            ),
            (
                BreakerOptions {
                    reset_timeout_ms: f64::INFINITY,
                    ..opts()
                },
                "resetTimeout",
            ),
            (
                BreakerOptions {
                    rolling_window_ms: 5.0,
                    rolling_buckets: 10,
                    ..opts()
                },
                "rollingWindowMs",
            ),
            (
                BreakerOptions {
                    half_open_max_calls: 0,
                    ..opts()
                },
                "halfOpenMaxCalls",
            ),
            (
                BreakerOptions {
                    slow_call_duration_ms: Some(0.0),
                    ..opts()
                },
                "slowCallDurationMs",
            ),
            (
                BreakerOptions {
                    timeout_ms: Some(-5.0),
                    ..opts()
                },
                "timeout",
            ),
        ];
        for (o, field) in cases {
            let e = Breaker::new(o, 0.0).unwrap_err();
            assert!(
                e.message.starts_with(field),
                "{} should name {field}",
                e.message
            );
            assert_eq!(e.kind, crate::core::error::ErrorKind::Range);
        }
    }

    #[test]
    fn exact_latency_keeps_per_call_reads() {
        let dflt = RawBreakerOptions::default().build().unwrap();
        assert!(!dflt.exact_latency && dflt.times_per_turn());
        let exact = RawBreakerOptions {
            exact_latency: Some(true),
            ..Default::default()
        };
        assert!(!exact.build().unwrap().times_per_turn());
        let timed = RawBreakerOptions {
            timeout_ms: Some(100.0),
            ..Default::default()
        };
        assert!(!timed.build().unwrap().times_per_turn());
    }
}
