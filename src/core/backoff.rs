//! Retry delays: exponential growth capped at `max_delay`, then one of several
//! jitter strategies. `Proportional` is the original's rule (base plus up to
//! 10 %); `Full`, `Equal` and `Decorrelated` are the AWS Architecture Blog
//! strategies that cockatiel and Polly users expect.
//!
//! It is also the one rule of what a retry spec may hold ([`RawRetry`]):
//! `retry()`'s options and a breaker's `retryOptions` are checked by the same
//! code against the same limits ([`MAX_RETRIES`], [`MAX_FACTOR`]), each
//! error naming the field the caller wrote ([`RetryFields`]).
//!
//! ```
//! use reliability_core::core::backoff::{RawRetry, RetryFields, RetryPolicy, MAX_RETRIES};
//! let p = RawRetry { max_retries: Some(2.0), ..Default::default() }
//!     .build_over(&RetryFields::RETRY, &RetryPolicy::for_retry())
//!     .unwrap();
//! assert_eq!(p.max_retries, 2);
//! let e = RawRetry { max_retries: Some(f64::from(MAX_RETRIES) + 1.0), ..Default::default() }
//!     .build_over(&RetryFields::RETRY, &RetryPolicy::for_retry())
//!     .unwrap_err();
//! assert_eq!(e.message, "maxRetries must be an integer from 0 to 100, got 101");
//! ```

use super::error::{check, CoreError, CoreResult};

/// The most retries (extra attempts after the first) a retry spec accepts.
pub const MAX_RETRIES: u32 = 100;

/// The largest growth per attempt a retry spec accepts (the smallest is 1).
pub const MAX_FACTOR: f64 = 10.0;

/// The option names a caller wrote, so an error names the field as written:
/// a breaker's `retryOptions.*` or `retry()`'s own options.
///
/// Example: `RetryFields::RETRY.initial_delay == "baseDelay"`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryFields {
    /// The name of the retry count.
    pub max_retries: &'static str,
    /// The name of the first delay.
    pub initial_delay: &'static str,
    /// The name of the delay cap.
    pub max_delay: &'static str,
    /// The name of the growth factor.
    pub factor: &'static str,
    /// The name of the jitter strategy.
    pub jitter: &'static str,
}

impl RetryFields {
    /// A breaker's `retryOptions`.
    pub const BREAKER: RetryFields = RetryFields {
        max_retries: "retryOptions.maxRetries",
        initial_delay: "retryOptions.initialDelay",
        max_delay: "retryOptions.maxDelay",
        factor: "retryOptions.factor",
        jitter: "retryOptions.jitter",
    };
    /// The options of `retry()` / `new RetryPolicy()`.
    pub const RETRY: RetryFields = RetryFields {
        max_retries: "maxRetries",
        initial_delay: "baseDelay",
        max_delay: "maxDelay",
        factor: "factor",
        jitter: "jitter",
    };
}

/// How a retry delay is spread around its exponential base.
///
/// Example: `Jitter::parse("retryOptions.jitter", "full")? == Jitter::Full`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Exactly the exponential base.
    None,
    /// `base + u * base * 0.1`: uniform on [base, 1.1 base). The original's `jitter: true`.
    Proportional,
    /// Uniform on [0, base).
    Full,
    /// `base / 2 + u * base / 2`: uniform on [base/2, base).
    Equal,
    /// `min(max, uniform on [initial, 3 * previous))`: each delay depends on the last one.
    Decorrelated,
}

impl Jitter {
    /// The strategy named `s` (`none`, `proportional`, `full`, `equal`, `decorrelated`); a
    /// TypeError naming `field` and the allowed names otherwise.
    ///
    /// Example: `let j = Jitter::parse("retryOptions.jitter", "equal")?;`
    pub fn parse(field: &str, s: &str) -> CoreResult<Jitter> {
        Ok(match s {
            "none" => Jitter::None,
            "proportional" => Jitter::Proportional,
            "full" => Jitter::Full,
            "equal" => Jitter::Equal,
            "decorrelated" => Jitter::Decorrelated,
            _ => {
                return Err(CoreError::range(
                    field,
                    "true, false, 'none', 'proportional', 'full', 'equal' or 'decorrelated'",
                    format!("'{s}'"),
                ))
            }
        })
    }

    /// The strategy's name, as `parse` accepts it.
    ///
    /// Example: `Jitter::Full.as_str() == "full"`
    pub fn as_str(self) -> &'static str {
        match self {
            Jitter::None => "none",
            Jitter::Proportional => "proportional",
            Jitter::Full => "full",
            Jitter::Equal => "equal",
            Jitter::Decorrelated => "decorrelated",
        }
    }
}

/// How many times to retry and how long to wait in between.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Extra attempts after the first; 0 means the call runs once.
    pub max_retries: u32,
    /// The delay before the first retry, in milliseconds.
    ///
    /// Example: `RetryPolicy { initial_delay_ms: 100.0, ..RetryPolicy::default() }`
    pub initial_delay_ms: f64,
    /// The cap on any one delay, in milliseconds.
    ///
    /// Example: `RetryPolicy { max_delay_ms: 5_000.0, ..RetryPolicy::default() }`
    pub max_delay_ms: f64,
    /// Growth per attempt (the original doubles).
    pub factor: f64,
    /// How each delay is spread (see `Jitter`).
    ///
    /// Example: `RetryPolicy { jitter: Jitter::Full, ..RetryPolicy::default() }`
    pub jitter: Jitter,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            initial_delay_ms: 100.0,
            max_delay_ms: 3000.0,
            factor: 2.0,
            jitter: Jitter::Proportional,
        }
    }
}

impl RetryPolicy {
    /// The defaults of `retry()`: 3 retries, 100 ms doubling up to 3 s, full
    /// jitter (the breaker's `retryOptions` default is [`RetryPolicy::default`]).
    ///
    /// ```
    /// use reliability_core::core::backoff::{Jitter, RetryPolicy};
    /// assert_eq!(RetryPolicy::for_retry().max_retries, 3);
    /// assert_eq!(RetryPolicy::for_retry().jitter, Jitter::Full);
    /// ```
    pub fn for_retry() -> Self {
        RetryPolicy {
            max_retries: 3,
            jitter: Jitter::Full,
            ..RetryPolicy::default()
        }
    }

    /// Checks every field against its allowed range; the error names the
    /// field as a breaker's `retryOptions` (see [`RetryPolicy::validate_as`]).
    ///
    /// Example: `RetryPolicy::default().validate()?;`
    pub fn validate(&self) -> CoreResult<()> {
        self.validate_as(&RetryFields::BREAKER)
    }

    /// Checks every field against its allowed range; the error names the
    /// field as `f` spells it.
    ///
    /// ```
    /// use reliability_core::core::backoff::{RetryFields, RetryPolicy};
    /// let p = RetryPolicy { factor: 11.0, ..RetryPolicy::default() };
    /// let e = p.validate_as(&RetryFields::RETRY).unwrap_err();
    /// assert_eq!(e.message, "factor must be a number from 1 to 10, got 11");
    /// ```
    pub fn validate_as(&self, f: &RetryFields) -> CoreResult<()> {
        check::int_in(f.max_retries, self.max_retries as f64, 0, MAX_RETRIES)?;
        check::at_least(f.initial_delay, self.initial_delay_ms, 0.0)?;
        check::at_least(f.max_delay, self.max_delay_ms, 0.0)?;
        if self.max_delay_ms < self.initial_delay_ms {
            return Err(CoreError::range(
                f.max_delay,
                &format!(
                    "a number >= {} ({})",
                    f.initial_delay, self.initial_delay_ms
                ),
                self.max_delay_ms,
            ));
        }
        if !self.factor.is_finite() || !(1.0..=MAX_FACTOR).contains(&self.factor) {
            return Err(CoreError::range(
                f.factor,
                &format!("a number from 1 to {MAX_FACTOR}"),
                check::fmt_num(self.factor),
            ));
        }
        Ok(())
    }

    /// The exponential base before jitter for the sleep after failed attempt
    /// `attempt` (0-based): `min(initial * factor^attempt, max)`.
    pub fn base_delay(&self, attempt: u32) -> f64 {
        let grown = self.initial_delay_ms * self.factor.powi(attempt.min(1024) as i32);
        if grown.is_finite() {
            grown.min(self.max_delay_ms)
        } else {
            self.max_delay_ms
        }
    }

    /// The sleep after failed attempt `attempt`, given the previous sleep
    /// (0 before the first) and a uniform `u` in [0, 1).
    pub fn delay(&self, attempt: u32, previous_ms: f64, u: f64) -> f64 {
        let u = if u.is_finite() {
            u.clamp(0.0, 1.0 - f64::EPSILON)
        } else {
            0.0
        };
        let base = self.base_delay(attempt);
        match self.jitter {
            Jitter::None => base,
            Jitter::Proportional => base + u * base * 0.1,
            Jitter::Full => u * base,
            Jitter::Equal => base / 2.0 + u * base / 2.0,
            Jitter::Decorrelated => {
                let lo = self.initial_delay_ms;
                let hi = (previous_ms.max(lo) * 3.0).max(lo);
                (lo + u * (hi - lo)).min(self.max_delay_ms)
            }
        }
    }
}

/// A retry spec as a caller wrote it: every field optional and still a plain
/// number, so integer-ness, ranges and defaults are decided here, once, for
/// `retry()` and a breaker's `retryOptions` alike.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawRetry {
    /// Extra attempts after the first: an integer from 0 to [`MAX_RETRIES`].
    pub max_retries: Option<f64>,
    /// The first delay in ms, >= 0.
    pub initial_delay_ms: Option<f64>,
    /// The cap on any one delay in ms, >= the first delay. When absent it is
    /// the default cap, raised to the first delay if that is larger.
    pub max_delay_ms: Option<f64>,
    /// Growth per attempt, from 1 to [`MAX_FACTOR`].
    pub factor: Option<f64>,
    /// The jitter strategy, already parsed (see [`Jitter::parse`]).
    pub jitter: Option<Jitter>,
}

impl RawRetry {
    /// Fills what the caller left out from `d` and validates the result; an
    /// error names the field as `f` spells it. An explicit 0 is taken as 0
    /// (`maxRetries: 0` means the call runs once).
    ///
    /// ```
    /// use reliability_core::core::backoff::{RawRetry, RetryFields, RetryPolicy};
    /// let raw = RawRetry { initial_delay_ms: Some(5000.0), ..Default::default() };
    /// let p = raw.build_over(&RetryFields::BREAKER, &RetryPolicy::default()).unwrap();
    /// assert_eq!(p.max_delay_ms, 5000.0); // the default cap follows the first delay up
    /// ```
    pub fn build_over(&self, f: &RetryFields, d: &RetryPolicy) -> CoreResult<RetryPolicy> {
        let p = self.fill(f, d)?;
        p.validate_as(f)?;
        Ok(p)
    }

    /// The first half of [`RawRetry::build_over`]: the retry count checked
    /// (it must be an integer to be stored) and the defaults filled in, the
    /// rest left for [`RetryPolicy::validate_as`], so a caller that validates
    /// a larger record (a breaker's options) keeps its order of errors.
    ///
    /// ```
    /// use reliability_core::core::backoff::{RawRetry, RetryFields, RetryPolicy};
    /// let raw = RawRetry { factor: Some(50.0), ..Default::default() };
    /// let p = raw.fill(&RetryFields::BREAKER, &RetryPolicy::default()).unwrap();
    /// assert!(p.validate().is_err(), "the factor is checked by validate");
    /// ```
    pub fn fill(&self, f: &RetryFields, d: &RetryPolicy) -> CoreResult<RetryPolicy> {
        let max_retries = match self.max_retries {
            None => d.max_retries,
            Some(v) => check::int_in(f.max_retries, v, 0, MAX_RETRIES)?,
        };
        Ok(RetryPolicy {
            max_retries,
            initial_delay_ms: self.initial_delay_ms.unwrap_or(d.initial_delay_ms),
            max_delay_ms: self
                .max_delay_ms
                .unwrap_or(d.max_delay_ms.max(self.initial_delay_ms.unwrap_or(0.0))),
            factor: self.factor.unwrap_or(d.factor),
            jitter: self.jitter.unwrap_or(d.jitter),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(initial: f64, max: f64, jitter: Jitter) -> RetryPolicy {
        RetryPolicy {
            initial_delay_ms: initial,
            max_delay_ms: max,
            jitter,
            ..Default::default()
        }
    }

    #[test]
    fn original_vectors_without_jitter() {
        // Spec §9: defaults give 100, 200, 400, 800, 1600.
        let p = policy(100.0, 3000.0, Jitter::None);
        let d: Vec<f64> = (0..5).map(|a| p.delay(a, 0.0, 0.5)).collect();
        assert_eq!(d, vec![100.0, 200.0, 400.0, 800.0, 1600.0]);
        // initialDelay 1000, maxDelay 3000: 1000, 2000, 3000, 3000, 3000.
        let p = policy(1000.0, 3000.0, Jitter::None);
        let d: Vec<f64> = (0..5).map(|a| p.delay(a, 0.0, 0.5)).collect();
        assert_eq!(d, vec![1000.0, 2000.0, 3000.0, 3000.0, 3000.0]);
        // initialDelay 1: 1, 2, 4, 8, 16.
        let p = policy(1.0, 3000.0, Jitter::None);
        let d: Vec<f64> = (0..5).map(|a| p.delay(a, 0.0, 0.99)).collect();
        assert_eq!(d, vec![1.0, 2.0, 4.0, 8.0, 16.0]);
    }

    #[test]
    fn jitter_bounds() {
        for a in 0..8 {
            for i in 0..=100 {
                let u = i as f64 / 100.0 * 0.999_999;
                let p = policy(100.0, 3000.0, Jitter::Proportional);
                let b = p.base_delay(a);
                let d = p.delay(a, 0.0, u);
                assert!(d >= b && d < b * 1.1 + 1e-9, "proportional {d} vs {b}");
                let d = policy(100.0, 3000.0, Jitter::Full).delay(a, 0.0, u);
                assert!((0.0..b).contains(&d) || (b == 0.0 && d == 0.0));
                let d = policy(100.0, 3000.0, Jitter::Equal).delay(a, 0.0, u);
                assert!(d >= b / 2.0 && d < b);
                let prev = 100.0 * 2f64.powi(a as i32);
                let d = policy(100.0, 3000.0, Jitter::Decorrelated).delay(a, prev, u);
                assert!((100.0..=3000.0).contains(&d) && d <= prev.max(100.0) * 3.0);
            }
        }
    }

    #[test]
    fn huge_attempt_numbers_stay_capped() {
        let p = policy(100.0, 3000.0, Jitter::None);
        assert_eq!(p.delay(100_000, 0.0, 0.0), 3000.0);
        assert_eq!(p.delay(0, 0.0, f64::NAN), 100.0);
    }

    #[test]
    fn validation_names_the_field() {
        let p = RetryPolicy {
            max_delay_ms: 10.0,
            ..Default::default()
        };
        let e = p.validate().unwrap_err();
        assert!(
            e.message.starts_with("retryOptions.maxDelay must be"),
            "{}",
            e.message
        );
        let p = RetryPolicy {
            initial_delay_ms: f64::NAN,
            ..Default::default()
        };
        assert!(p
            .validate()
            .unwrap_err()
            .message
            .contains("retryOptions.initialDelay"));
        assert_eq!(
            Jitter::parse("retryOptions.jitter", "weird")
                .unwrap_err()
                .kind,
            super::super::error::ErrorKind::Range
        );
    }

    #[test]
    fn one_spec_for_retry_and_breaker() {
        let build = |raw: RawRetry, f: &RetryFields| raw.build_over(f, &RetryPolicy::for_retry());
        let e = build(
            RawRetry {
                max_retries: Some(-1.0),
                ..Default::default()
            },
            &RetryFields::RETRY,
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "maxRetries must be an integer from 0 to 100, got -1"
        );
        let e = build(
            RawRetry {
                max_retries: Some(2.5),
                ..Default::default()
            },
            &RetryFields::BREAKER,
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "retryOptions.maxRetries must be an integer from 0 to 100, got 2.5"
        );
        let e = build(
            RawRetry {
                initial_delay_ms: Some(-1.0),
                ..Default::default()
            },
            &RetryFields::RETRY,
        )
        .unwrap_err();
        assert!(e.message.starts_with("baseDelay must be"), "{}", e.message);
        let e = build(
            RawRetry {
                initial_delay_ms: Some(10.0),
                max_delay_ms: Some(5.0),
                ..Default::default()
            },
            &RetryFields::RETRY,
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "maxDelay must be a number >= baseDelay (10), got 5"
        );
        let p = build(RawRetry::default(), &RetryFields::RETRY).unwrap();
        assert_eq!(p, RetryPolicy::for_retry());
        let p = build(
            RawRetry {
                max_retries: Some(f64::from(MAX_RETRIES)),
                ..Default::default()
            },
            &RetryFields::RETRY,
        )
        .unwrap();
        assert_eq!(p.max_retries, MAX_RETRIES);
    }
}
