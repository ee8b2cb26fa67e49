//! What a rollout is configured with, and the one validation of it: the
//! percentage, allow/deny lists, steps, the SLO and the rollback policy.

use std::collections::HashSet;

use super::cohort::count_spec;
use super::slo::{BurnWindow, Slo};
use super::{BUCKETS, DEFAULT_MIN_SAMPLES, MAX_COUNT_SLICES, MAX_LIST, MAX_STEPS};
use crate::core::error::{check, CoreError, CoreResult};

/// How a key maps to a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashMode {
    /// MurmurHash3 of `<rollout>:<key>` into [`BUCKETS`] buckets (the default).
    Murmur,
    /// The original's Java string hash `% 100` (kept for parity).
    Legacy,
}

/// Where a breach rolls the percentage back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackTarget {
    /// To 0 %: nobody in the new cohort.
    Zero,
    /// To the highest step judged healthy (0 when none was).
    LastGoodStep,
}

/// One step of a rollout plan: its percentage and what it needs to advance.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Basis points (1 = 0.01 %).
    pub bp: u32,
    /// The step lasts at least this long before it may advance.
    pub min_duration_ms: f64,
    /// New-cohort requests the step needs before it may advance.
    pub min_requests: u64,
}

/// Everything a rollout is started with; [`Config::validate`] is the one check.
///
/// ```
/// use reliability_core::core::traffic_shaping::Config;
/// assert!(Config::default().validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The percentage, in basis points (10,000 = 100 %).
    pub bp: u32,
    /// Keys always in the new cohort (unless denied).
    pub allow: HashSet<String>,
    /// Keys never in the new cohort (wins over `allow`).
    pub deny: HashSet<String>,
    /// The bucketing rule.
    pub hash: HashMode,
    /// The plan; empty for a fixed percentage.
    pub steps: Vec<Step>,
    /// What the new cohort is judged against; `None`: never judged.
    pub slo: Option<Slo>,
    /// Roll back on a breach. Off by default, as in the original, which
    /// rolled back only when `autoRollback` was truthy and an SLO was set.
    pub auto_rollback: bool,
    /// Advance a healthy step by itself (on by default).
    pub auto_advance: bool,
    /// Where a breach rolls back to.
    pub rollback_to: RollbackTarget,
    /// The analysis window in ms.
    pub window_ms: f64,
    /// New-cohort requests in the window below which the verdict is inconclusive.
    pub min_samples: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bp: BUCKETS,
            allow: HashSet::new(),
            deny: HashSet::new(),
            hash: HashMode::Murmur,
            steps: Vec::new(),
            slo: None,
            auto_rollback: false,
            auto_advance: true,
            rollback_to: RollbackTarget::Zero,
            window_ms: 60_000.0,
            min_samples: DEFAULT_MIN_SAMPLES,
        }
    }
}

impl Config {
    /// The error-rate SLO rule, in one place for every caller (this
    /// instance's analysis, and the Redis backend's check over every
    /// instance's new cohort summed): with at least `min_samples` requests,
    /// a rate above `slo.errorRate` is a breach. Returns the limit broken.
    ///
    /// ```
    /// use reliability_core::core::traffic_shaping::{Config, Slo};
    /// let c = Config { slo: Some(Slo { error_rate: Some(0.05), ..Slo::default() }), ..Config::default() };
    /// assert_eq!(c.error_rate_breach(11, 0.1), Some(0.05));
    /// assert_eq!(c.error_rate_breach(10, 0.1), None); // too few samples
    /// assert_eq!(c.error_rate_breach(100, 0.05), None); // at the limit is not above it
    /// ```
    pub fn error_rate_breach(&self, requests: u64, rate: f64) -> Option<f64> {
        let max = self.slo.as_ref()?.error_rate?;
        (requests >= self.min_samples && rate > max).then_some(max)
    }

    /// The cluster-wide check of the Redis backend: only rollouts that roll
    /// back on their own (`autoRollback`) and send the new cohort traffic
    /// are judged, by [`Config::error_rate_breach`] over the summed counts.
    ///
    /// ```
    /// use reliability_core::core::traffic_shaping::{Config, Slo};
    /// let c = Config { slo: Some(Slo { error_rate: Some(0.05), ..Slo::default() }), auto_rollback: true, ..Config::default() };
    /// assert_eq!(c.cluster_breach(100, 10), Some(0.05));
    /// assert_eq!(Config { auto_rollback: false, ..c }.cluster_breach(100, 10), None);
    /// ```
    pub fn cluster_breach(&self, requests: u64, errors: u64) -> Option<f64> {
        if !self.auto_rollback || self.bp == 0 {
            return None;
        }
        self.error_rate_breach(requests, crate::core::metrics::rate_of(errors, requests))
    }

    /// The answer every key gets, when the configuration leaves no choice
    /// (0 % or 100 % and no list that says otherwise), so that callers may
    /// skip hashing; `None` when it depends on the key.
    ///
    /// ```
    /// use reliability_core::core::traffic_shaping::Config;
    /// assert_eq!(Config { bp: 0, ..Config::default() }.uniform_decision(), Some(false));
    /// assert_eq!(Config { bp: 5_000, ..Config::default() }.uniform_decision(), None);
    /// ```
    pub fn uniform_decision(&self) -> Option<bool> {
        match self.bp {
            0 if self.allow.is_empty() => Some(false),
            BUCKETS if self.deny.is_empty() => Some(true),
            _ => None,
        }
    }
}

/// Percent (0..=100, 0.01 granularity) to basis points.
pub fn percent_to_bp(field: &str, pct: f64) -> CoreResult<u32> {
    if !pct.is_finite() || !(0.0..=100.0).contains(&pct) {
        return Err(CoreError::range(
            field,
            "a number from 0 to 100",
            check::fmt_num(pct),
        ));
    }
    Ok((pct * 100.0).round() as u32)
}

fn ms_field(field: &str, v: f64, min: f64, max: f64) -> CoreResult<f64> {
    if !v.is_finite() || v < min || v > max {
        return Err(CoreError::range(
            field,
            &format!("a number of ms from {min} to {max}"),
            check::fmt_num(v),
        ));
    }
    Ok(v)
}

fn unit(field: &str, v: f64) -> CoreResult<f64> {
    if !v.is_finite() || !(0.0..=1.0).contains(&v) {
        return Err(CoreError::range(
            field,
            "a number from 0 to 1",
            check::fmt_num(v),
        ));
    }
    Ok(v)
}

impl Config {
    /// Checks everything; called before a config is applied, so a bad one
    /// changes nothing.
    pub fn validate(&self) -> CoreResult<()> {
        if self.bp > BUCKETS {
            return Err(CoreError::range(
                "percentage",
                "a number from 0 to 100",
                self.bp as f64 / 100.0,
            ));
        }
        for (field, list) in [("allowList", &self.allow), ("denyList", &self.deny)] {
            if list.len() > MAX_LIST {
                return Err(CoreError::range(
                    field,
                    &format!("at most {MAX_LIST} entries"),
                    list.len(),
                ));
            }
        }
        if self.steps.len() > MAX_STEPS {
            return Err(CoreError::range(
                "steps",
                &format!("at most {MAX_STEPS} steps"),
                self.steps.len(),
            ));
        }
        for (i, s) in self.steps.iter().enumerate() {
            if i > 0 && s.bp <= self.steps[i - 1].bp {
                return Err(CoreError::range(
                    &format!("steps[{i}].percentage"),
                    &format!(
                        "greater than steps[{}].percentage ({})",
                        i - 1,
                        self.steps[i - 1].bp as f64 / 100.0
                    ),
                    s.bp as f64 / 100.0,
                ));
            }
            ms_field(
                &format!("steps[{i}].minDurationMs"),
                s.min_duration_ms,
                0.0,
                30.0 * 86_400_000.0,
            )?;
        }
        ms_field("windowMs", self.window_ms, 60.0, 86_400_000.0)?;
        check::int_in("minSamples", self.min_samples as f64, 1, 1_000_000_000)?;
        if let Some(slo) = &self.slo {
            if let Some(e) = slo.error_rate {
                unit("slo.errorRate", e)?;
            }
            if let Some((q, c)) = slo.latency {
                if !q.is_finite() || q <= 0.0 || q >= 1.0 {
                    return Err(CoreError::range(
                        "slo.latencyQuantile",
                        "a number > 0 and < 1 (0.99 for p99)",
                        check::fmt_num(q),
                    ));
                }
                ms_field("slo.p99Latency", c, 0.001, 3_600_000.0)?;
            }
            if let Some(a) = slo.availability {
                if !a.is_finite() || a <= 0.0 || a >= 1.0 {
                    return Err(CoreError::range(
                        "slo.availability",
                        "a number > 0 and < 1 (e.g. 0.999)",
                        check::fmt_num(a),
                    ));
                }
            }
            for (i, w) in slo.burn_windows.iter().enumerate() {
                ms_field(
                    &format!("slo.burnRateWindows[{i}].shortMs"),
                    w.short_ms,
                    10.0,
                    30.0 * 86_400_000.0,
                )?;
                ms_field(
                    &format!("slo.burnRateWindows[{i}].longMs"),
                    w.long_ms,
                    w.short_ms,
                    30.0 * 86_400_000.0,
                )?;
                if !w.factor.is_finite() || w.factor <= 0.0 || w.factor > 10_000.0 {
                    return Err(CoreError::range(
                        &format!("slo.burnRateWindows[{i}].factor"),
                        "a number > 0 and <= 10000",
                        check::fmt_num(w.factor),
                    ));
                }
            }
            if let Some(d) = slo.max_error_rate_increase {
                unit("slo.maxErrorRateIncrease", d)?;
            }
            if let Some(r) = slo.max_latency_ratio {
                if !r.is_finite() || r <= 1.0 || r > 1000.0 {
                    return Err(CoreError::range(
                        "slo.maxLatencyRatio",
                        "a number > 1 and <= 1000",
                        check::fmt_num(r),
                    ));
                }
            }
            let slices = count_spec(self).slices;
            if slices > MAX_COUNT_SLICES {
                return Err(CoreError::range("slo.burnRateWindows", &format!("windows needing at most {MAX_COUNT_SLICES} slices (longest / (shortest / 5))"), slices));
            }
        }
        Ok(())
    }

    /// The SLO's burn windows (none without an SLO).
    pub fn burn_windows(&self) -> &[BurnWindow] {
        self.slo.as_ref().map_or(&[], |s| &s.burn_windows)
    }
}
