//! Retry delays: exponential growth capped at `max_delay`, then one of several
//! jitter strategies. `Proportional` is the original's rule (base plus up to
//! 10 %); `Full`, `Equal` and `Decorrelated` are the AWS Architecture Blog
//! strategies that cockatiel and Polly users expect.

use super::error::{check, CoreError, CoreResult};

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
    /// Checks every field against its allowed range; the error names the field.
    ///
    /// Example: `RetryPolicy::default().validate()?;`
    pub fn validate(&self) -> CoreResult<()> {
        check::int_in("retryOptions.maxRetries", self.max_retries as f64, 0, 100)?;
        check::at_least("retryOptions.initialDelay", self.initial_delay_ms, 0.0)?;
        check::at_least("retryOptions.maxDelay", self.max_delay_ms, 0.0)?;
        if self.max_delay_ms < self.initial_delay_ms {
            return Err(CoreError::range(
                "retryOptions.maxDelay",
                &format!(
                    "a number >= retryOptions.initialDelay ({})",
                    self.initial_delay_ms
                ),
                self.max_delay_ms,
            ));
        }
        if !self.factor.is_finite() || !(1.0..=10.0).contains(&self.factor) {
            return Err(CoreError::range(
                "retryOptions.factor",
                "a number from 1 to 10",
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
}
