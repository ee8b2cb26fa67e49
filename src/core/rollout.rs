//! Progressive rollouts: sticky bucketing, per-cohort windows, SLO analysis
//! and the automatic rollback / advance decisions.
//!
//! * **Bucketing.** MurmurHash3 of `<rollout>:<key>` into 10,000 buckets;
//!   a key is in the new cohort when its bucket is below the percentage in
//!   basis points. Raising the percentage only adds keys. The original's
//!   Java-hash `% 100` rule is kept as `HashMode::Legacy`. The deny list
//!   wins over the allow list, as in the original.
//! * **Windows.** Each cohort (new, stable) keeps request/error counts in a
//!   ring of short slices long enough for the longest burn-rate window, and
//!   latency histograms (HDR, 2 digits) over the analysis window.
//! * **Analysis.** With fewer than `min_samples` new-cohort requests in the
//!   window the verdict is `Inconclusive`, never healthy. Otherwise the
//!   new cohort breaches on an error-rate ceiling, a latency-quantile
//!   ceiling, multi-window burn rates of an availability target (SRE
//!   workbook: both the long and the short window burn faster than the
//!   factor), or on being worse than the stable cohort by a margin.
//! * **Decisions.** A breach rolls back within the same evaluation (to 0 or
//!   to the last good step); a healthy step with enough time and requests
//!   advances. Every decision lands in a bounded history with its reason
//!   and figures. Nothing here runs on a timer: evaluation happens when
//!   outcomes are recorded and when the status is read.

use std::collections::{HashMap, HashSet, VecDeque};

use hdrhistogram::Histogram;

use super::error::{check, CoreError, CoreResult};
use super::hash::{legacy_bucket, murmur_bucket};
use super::histogram::{
    full_histogram, merge_into, record_sized, RingSpec, SliceRing, Slot, MAX_US,
};

pub const BUCKETS: u32 = 10_000;
/// `minSamples` when not given: the original judged from the 11th request
/// (`requestCount > 10`).
pub const DEFAULT_MIN_SAMPLES: u64 = 11;
pub const MAX_ROLLOUTS: usize = 1000;
pub const MAX_LIST: usize = 100_000;
pub const MAX_STEPS: usize = 100;
pub const HISTORY_CAP: usize = 100;
/// Slices in a count ring at most (bounds memory per cohort).
pub const MAX_COUNT_SLICES: usize = 4096;
const LATENCY_SLICES: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashMode {
    Murmur,
    Legacy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackTarget {
    Zero,
    LastGoodStep,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Basis points (1 = 0.01 %).
    pub bp: u32,
    pub min_duration_ms: f64,
    pub min_requests: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BurnWindow {
    pub long_ms: f64,
    pub short_ms: f64,
    pub factor: f64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Slo {
    /// Error-rate ceiling for the new cohort (0..=1, strict `>` breaches).
    pub error_rate: Option<f64>,
    /// `(quantile 0..1, ceiling ms)`: e.g. `(0.99, 500.0)`.
    pub latency: Option<(f64, f64)>,
    /// Availability target (e.g. 0.999): burn-rate alerting on its error budget.
    pub availability: Option<f64>,
    pub burn_windows: Vec<BurnWindow>,
    /// Judge the new cohort against the stable one: breach when its error
    /// rate exceeds stable's by more than this (absolute, 0..=1)...
    pub max_error_rate_increase: Option<f64>,
    /// ...or its latency quantile exceeds stable's times this ratio (> 1).
    pub max_latency_ratio: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub bp: u32,
    pub allow: HashSet<String>,
    pub deny: HashSet<String>,
    pub hash: HashMode,
    pub steps: Vec<Step>,
    pub slo: Option<Slo>,
    /// Roll back on a breach. Off by default, as in the original, which
    /// rolled back only when `autoRollback` was truthy and an SLO was set.
    pub auto_rollback: bool,
    pub auto_advance: bool,
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
    /// use reliability_core::core::rollout::{Config, Slo};
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
    /// use reliability_core::core::rollout::{Config, Slo};
    /// let c = Config { slo: Some(Slo { error_rate: Some(0.05), ..Slo::default() }), auto_rollback: true, ..Config::default() };
    /// assert_eq!(c.cluster_breach(100, 10), Some(0.05));
    /// assert_eq!(Config { auto_rollback: false, ..c }.cluster_breach(100, 10), None);
    /// ```
    pub fn cluster_breach(&self, requests: u64, errors: u64) -> Option<f64> {
        if !self.auto_rollback || self.bp == 0 {
            return None;
        }
        self.error_rate_breach(requests, super::signals::rate_of(errors, requests))
    }

    /// The answer every key gets, when the configuration leaves no choice
    /// (0 % or 100 % and no list that says otherwise), so that callers may
    /// skip hashing; `None` when it depends on the key.
    ///
    /// ```
    /// use reliability_core::core::rollout::Config;
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

    pub fn burn_windows(&self) -> &[BurnWindow] {
        self.slo.as_ref().map_or(&[], |s| &s.burn_windows)
    }
}

/// The count ring: slices of a fifth of the shortest window, as many as the
/// longest window needs.
fn count_spec(c: &Config) -> RingSpec {
    let shortest = c
        .burn_windows()
        .iter()
        .map(|w| w.short_ms)
        .fold(c.window_ms, f64::min);
    let longest = c
        .burn_windows()
        .iter()
        .map(|w| w.long_ms)
        .fold(c.window_ms, f64::max);
    let slice_ms = (shortest / 5.0).max(10.0);
    RingSpec {
        slice_ms,
        slices: (longest / slice_ms).ceil() as usize,
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    requests: u64,
    errors: u64,
}

impl Slot for Counts {
    fn clear(&mut self) {
        *self = Counts::default();
    }
}

#[derive(Debug, Default)]
struct LatSlot(Option<Box<Histogram<u32>>>);

impl Slot for LatSlot {
    fn clear(&mut self) {
        if let Some(h) = self.0.as_mut().filter(|h| !h.is_empty()) {
            h.reset();
        }
    }
}

#[derive(Debug)]
struct Cohort {
    counts: SliceRing<Counts>,
    latency: SliceRing<LatSlot>,
    total: Counts,
    /// Requests since the current step began (for `min_requests`).
    step_requests: u64,
}

impl Cohort {
    fn new(c: &Config, now: f64) -> Self {
        Cohort {
            counts: SliceRing::new(count_spec(c), now),
            latency: SliceRing::new(
                RingSpec {
                    slice_ms: c.window_ms / LATENCY_SLICES as f64,
                    slices: LATENCY_SLICES,
                },
                now,
            ),
            total: Counts::default(),
            step_requests: 0,
        }
    }

    fn record(&mut self, ok: bool, latency_ms: f64, now: f64) {
        let e = !ok as u64;
        let h = self.counts.head(now);
        h.requests += 1;
        h.errors += e;
        self.total.requests += 1;
        self.total.errors += e;
        self.step_requests += 1;
        if latency_ms.is_finite() && latency_ms >= 0.0 {
            let us = ((latency_ms * 1000.0).round() as u64).clamp(1, MAX_US);
            let slot = self.latency.head(now);
            record_sized(&mut slot.0, us, 2, |_| true);
        }
    }

    /// Requests and errors over the last `ms` (whole slices, at least one).
    fn window(&mut self, ms: f64, now: f64) -> Counts {
        let slice_ms = self.counts.window_ms() / self.counts.slots(now).len() as f64;
        let k = ((ms / slice_ms).round() as usize).max(1);
        self.counts
            .newest(now, k)
            .fold(Counts::default(), |mut c, s| {
                c.requests += s.requests;
                c.errors += s.errors;
                c
            })
    }

    /// The latency quantile (ms) over the analysis window, as the lowest
    /// value of its HDR bucket, so a breach is never claimed for a value
    /// that only rounds up past the ceiling.
    fn latency_quantile(&mut self, q: f64, now: f64) -> Option<f64> {
        let mut merged: Option<Histogram<u64>> = None;
        for s in self.latency.slots(now) {
            if let Some(h) = s.0.as_deref().filter(|h| !h.is_empty()) {
                merge_into(merged.get_or_insert_with(|| full_histogram(2)), h);
            }
        }
        let m = merged?;
        let v = m.value_at_quantile(q);
        Some(m.lowest_equivalent(v) as f64 / 1000.0)
    }

    fn reset_step(&mut self) {
        self.step_requests = 0;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Running,
    Paused,
    RolledBack,
    Completed,
    Aborted,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Running => "running",
            Phase::Paused => "paused",
            Phase::RolledBack => "rolled-back",
            Phase::Completed => "completed",
            Phase::Aborted => "aborted",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Inconclusive(String),
    Healthy,
    Breach(String),
}

/// The figures an evaluation used, kept with each history entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    pub requests: u64,
    pub error_rate: f64,
    pub latency_ms: Option<f64>,
    pub stable_requests: u64,
    pub stable_error_rate: f64,
    pub stable_latency_ms: Option<f64>,
    /// `(long, short)` burn rates per configured window.
    pub burn_rates: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub at: f64,
    /// `start`, `update`, `advance`, `breach`, `rollback`, `pause`, `resume`, `promote`, `abort`.
    pub kind: &'static str,
    pub from_bp: u32,
    pub to_bp: u32,
    pub reason: String,
    pub figures: Option<Figures>,
}

/// What an evaluation or a manual action did, for the JS side's events.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub rollout: usize,
    pub entry: HistoryEntry,
}

#[derive(Debug)]
pub struct Rollout {
    pub name: String,
    pub config: Config,
    pub phase: Phase,
    /// Index of the current step (when the config has steps).
    pub step: Option<usize>,
    step_started: f64,
    /// The highest percentage that was judged healthy (for `LastGoodStep`).
    last_good_bp: u32,
    new: Cohort,
    stable: Cohort,
    pub history: VecDeque<HistoryEntry>,
    pub last_verdict: Verdict,
    pub last_figures: Figures,
    pub started_at: f64,
    /// Outcomes were recorded by [`RolloutSet::record_checked`] without an
    /// analysis: the next [`RolloutSet::evaluate_pending`] runs one (steps
    /// still advance, and time still moves the windows).
    pending_eval: bool,
}

impl Rollout {
    /// Is `key` in the new cohort? Deny list first, then allow list.
    pub fn decide(&self, key: &str) -> bool {
        if !self.config.deny.is_empty() && self.config.deny.contains(key) {
            return false;
        }
        if !self.config.allow.is_empty() && self.config.allow.contains(key) {
            return true;
        }
        match self.config.bp {
            0 => false,
            BUCKETS => true,
            // Legacy: the original compared the 0..99 bucket with the
            // percentage; bucket·100 < bp is the same test.
            bp => self.bucket(key) < bp,
        }
    }

    /// [`decide`](Self::decide) for a key whose bucket the caller hashed
    /// already; only for a rollout with no allow or deny list (`None` when
    /// it has one: the key itself decides then).
    pub fn decide_bucket(&self, bucket: u32) -> Option<bool> {
        if !self.config.deny.is_empty() || !self.config.allow.is_empty() {
            return None;
        }
        Some(match self.config.bp {
            0 => false,
            BUCKETS => true,
            bp => bucket < bp,
        })
    }

    /// The key's bucket in 0..10_000 (legacy buckets 0..99 scaled by 100, so
    /// `bucket < bp` is the rule for both modes).
    pub fn bucket(&self, key: &str) -> u32 {
        match self.config.hash {
            HashMode::Murmur => murmur_bucket(&self.name, key),
            HashMode::Legacy => legacy_bucket(&self.name, key) * 100,
        }
    }

    pub fn percentage(&self) -> f64 {
        self.config.bp as f64 / 100.0
    }

    /// Whether outcomes of the new cohort are judged as they are recorded
    /// ([`RolloutSet::record_checked`]): only when a breach would act.
    pub fn judged_on_record(&self) -> bool {
        self.config.auto_rollback && self.config.slo.is_some()
    }

    /// Could the new-cohort outcome just recorded have started a breach?
    /// A failure can (every error rule), a latency over the ceiling can
    /// (the latency rule), and so can the request that brings the window to
    /// `min_samples` (the original's 11th request). Anything else only
    /// lowers the error rate or the quantile; what time does to the windows
    /// is judged by the deferred evaluation.
    fn may_breach(&mut self, ok: bool, latency_ms: f64, now: f64) -> bool {
        if self.phase != Phase::Running || self.config.bp == 0 || !self.judged_on_record() {
            return false;
        }
        if !ok {
            return true;
        }
        if let Some((_, ceiling)) = self.config.slo.as_ref().and_then(|s| s.latency) {
            if latency_ms > ceiling {
                return true;
            }
        }
        self.new.window(self.config.window_ms, now).requests == self.config.min_samples
    }

    fn push(&mut self, e: HistoryEntry) {
        if self.history.len() >= HISTORY_CAP {
            self.history.pop_front();
        }
        self.history.push_back(e);
    }

    fn figures(&mut self, now: f64) -> Figures {
        let w = self.config.window_ms;
        let n = self.new.window(w, now);
        let s = self.stable.window(w, now);
        let rate = |c: Counts| super::signals::rate_of(c.errors, c.requests);
        let q = self
            .config
            .slo
            .as_ref()
            .and_then(|s| s.latency.map(|(q, _)| q))
            .unwrap_or(0.99);
        let budget = self
            .config
            .slo
            .as_ref()
            .and_then(|s| s.availability)
            .map(|a| 1.0 - a);
        let windows = self.config.burn_windows().to_vec();
        let burn_rates = match budget {
            Some(b) => windows
                .iter()
                .map(|bw| {
                    let l = self.new.window(bw.long_ms, now);
                    let sh = self.new.window(bw.short_ms, now);
                    (rate(l) / b, rate(sh) / b)
                })
                .collect(),
            None => vec![],
        };
        Figures {
            requests: n.requests,
            error_rate: rate(n),
            latency_ms: self.new.latency_quantile(q, now),
            stable_requests: s.requests,
            stable_error_rate: rate(s),
            stable_latency_ms: self.stable.latency_quantile(q, now),
            burn_rates,
        }
    }

    /// The verdict for the new cohort at `now`.
    pub fn analyse(&mut self, now: f64) -> (Verdict, Figures) {
        let f = self.figures(now);
        let Some(slo) = self.config.slo.clone() else {
            return (Verdict::Inconclusive("no SLO configured".into()), f);
        };
        if f.requests < self.config.min_samples {
            return (
                Verdict::Inconclusive(format!(
                    "{} of {} samples needed in the window",
                    f.requests, self.config.min_samples
                )),
                f,
            );
        }
        if let Some(max) = self.config.error_rate_breach(f.requests, f.error_rate) {
            return (
                Verdict::Breach(format!(
                    "error rate {:.4} > {max} over the last {} ms",
                    f.error_rate, self.config.window_ms
                )),
                f,
            );
        }
        if let (Some((q, ceiling)), Some(v)) = (slo.latency, f.latency_ms) {
            if v > ceiling {
                return (
                    Verdict::Breach(format!("p{} latency {v:.1} ms > {ceiling} ms", q * 100.0)),
                    f,
                );
            }
        }
        for (bw, &(long, short)) in slo.burn_windows.iter().zip(&f.burn_rates) {
            if long >= bw.factor && short >= bw.factor {
                return (
                    Verdict::Breach(format!(
                        "error budget burning at {long:.1}x over {} ms and {short:.1}x over {} ms (threshold {}x)",
                        bw.long_ms, bw.short_ms, bw.factor
                    )),
                    f,
                );
            }
        }
        if f.stable_requests >= self.config.min_samples {
            if let Some(d) = slo.max_error_rate_increase {
                if f.error_rate > f.stable_error_rate + d {
                    return (
                        Verdict::Breach(format!(
                            "error rate {:.4} exceeds the stable cohort's {:.4} by more than {d}",
                            f.error_rate, f.stable_error_rate
                        )),
                        f,
                    );
                }
            }
            if let (Some(r), Some(nv), Some(sv)) =
                (slo.max_latency_ratio, f.latency_ms, f.stable_latency_ms)
            {
                if nv > sv * r {
                    return (
                        Verdict::Breach(format!(
                            "latency {nv:.1} ms is more than {r}x the stable cohort's {sv:.1} ms"
                        )),
                        f,
                    );
                }
            }
        }
        (Verdict::Healthy, f)
    }

    fn set_bp(&mut self, bp: u32, now: f64) {
        self.config.bp = bp;
        self.step_started = now;
        self.new.reset_step();
        self.stable.reset_step();
    }
}

#[derive(Debug, Default)]
pub struct RolloutSet {
    rollouts: Vec<Option<Rollout>>,
    index: HashMap<String, usize>,
}

impl RolloutSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn id_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    pub fn get(&self, id: usize) -> Option<&Rollout> {
        self.rollouts.get(id).and_then(|r| r.as_ref())
    }

    pub fn get_mut(&mut self, id: usize) -> Option<&mut Rollout> {
        self.rollouts.get_mut(id).and_then(|r| r.as_mut())
    }

    fn by_name(&mut self, name: &str) -> CoreResult<&mut Rollout> {
        let id = *self
            .index
            .get(name)
            .ok_or_else(|| CoreError::not_found("Rollout", name))?;
        Ok(self.rollouts[id].as_mut().expect("indexed rollouts exist"))
    }

    pub fn ids(&self) -> impl Iterator<Item = usize> + '_ {
        self.rollouts
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_some())
            .map(|(i, _)| i)
    }

    /// Starts (or restarts, zeroing its figures) rollout `name`. With steps,
    /// the percentage starts at the first step.
    pub fn start(
        &mut self,
        name: &str,
        mut config: Config,
        now: f64,
    ) -> CoreResult<(usize, Event)> {
        // An empty name is a name (the original hashed `:<user>` for it).
        let n = name.chars().count();
        if n > 256 {
            return Err(CoreError::range(
                "name",
                "a string of at most 256 characters",
                format!("{n} characters"),
            ));
        }
        config.validate()?;
        if let Some(first) = config.steps.first() {
            config.bp = first.bp;
        }
        let id = match self.index.get(name) {
            Some(&id) => id,
            None => {
                if self.index.len() >= MAX_ROLLOUTS {
                    return Err(CoreError::range(
                        "name",
                        &format!("one of at most {MAX_ROLLOUTS} rollouts"),
                        "one more",
                    ));
                }
                self.rollouts.push(None);
                let id = self.rollouts.len() - 1;
                self.index.insert(name.to_string(), id);
                id
            }
        };
        let history = self.rollouts[id]
            .take()
            .map(|r| r.history)
            .unwrap_or_default();
        let step = if config.steps.is_empty() {
            None
        } else {
            Some(0)
        };
        let mut r = Rollout {
            name: name.to_string(),
            new: Cohort::new(&config, now),
            stable: Cohort::new(&config, now),
            phase: Phase::Running,
            step,
            step_started: now,
            last_good_bp: 0,
            history,
            last_verdict: Verdict::Inconclusive("no data yet".into()),
            last_figures: Figures::default(),
            started_at: now,
            pending_eval: false,
            config,
        };
        let entry = HistoryEntry {
            at: now,
            kind: "start",
            from_bp: 0,
            to_bp: r.config.bp,
            reason: String::new(),
            figures: None,
        };
        r.push(entry.clone());
        self.rollouts[id] = Some(r);
        Ok((id, Event { rollout: id, entry }))
    }

    /// Sets the percentage by hand (`updateRollout(name, pct)`).
    pub fn set_percentage(
        &mut self,
        name: &str,
        bp: u32,
        reason: &str,
        now: f64,
    ) -> CoreResult<Event> {
        if bp > BUCKETS {
            return Err(CoreError::range(
                "percentage",
                "a number from 0 to 100",
                bp as f64 / 100.0,
            ));
        }
        let id = self
            .id_of(name)
            .ok_or_else(|| CoreError::not_found("Rollout", name))?;
        let r = self.by_name(name)?;
        let from = r.config.bp;
        r.set_bp(bp, now);
        if r.phase == Phase::RolledBack || r.phase == Phase::Aborted {
            r.phase = Phase::Running;
        }
        let entry = HistoryEntry {
            at: now,
            kind: "update",
            from_bp: from,
            to_bp: bp,
            reason: reason.to_string(),
            figures: None,
        };
        r.push(entry.clone());
        Ok(Event { rollout: id, entry })
    }

    /// Replaces the config wholesale (after validation), keeping figures.
    pub fn reconfigure(&mut self, name: &str, config: Config, now: f64) -> CoreResult<Event> {
        config.validate()?;
        let id = self
            .id_of(name)
            .ok_or_else(|| CoreError::not_found("Rollout", name))?;
        let r = self.by_name(name)?;
        let from = r.config.bp;
        let windows_changed = r.config.window_ms != config.window_ms
            || r.config.burn_windows() != config.burn_windows();
        r.config = config;
        if windows_changed {
            r.new = Cohort::new(&r.config, now);
            r.stable = Cohort::new(&r.config, now);
        }
        if r.config.steps.is_empty() {
            r.step = None;
        } else if r.step.is_none_or(|s| s >= r.config.steps.len()) {
            r.step = Some(0);
        }
        let entry = HistoryEntry {
            at: now,
            kind: "update",
            from_bp: from,
            to_bp: r.config.bp,
            reason: "configuration changed".into(),
            figures: None,
        };
        r.push(entry.clone());
        Ok(Event { rollout: id, entry })
    }

    /// Records one outcome. `new_cohort`: the request went to the new version.
    pub fn record(
        &mut self,
        id: usize,
        new_cohort: bool,
        ok: bool,
        latency_ms: f64,
        now: f64,
    ) -> bool {
        let Some(r) = self.get_mut(id) else {
            return false;
        };
        if new_cohort {
            r.new.record(ok, latency_ms, now);
        } else {
            r.stable.record(ok, latency_ms, now);
        }
        true
    }

    /// Records one outcome and, for a new-cohort outcome that could have
    /// started a breach of a rollout that rolls back by itself, runs the
    /// analysis at once, so the rollback happens on this request (the
    /// original's rule acted on the 11th request; a deferred evaluation let
    /// every request of the delay through). `None` for an unknown id.
    ///
    /// ```
    /// use reliability_core::core::rollout::{Config, RolloutSet, Slo};
    /// let mut s = RolloutSet::new();
    /// let slo = Slo { error_rate: Some(0.05), ..Slo::default() };
    /// let (id, _) = s.start("r", Config { slo: Some(slo), auto_rollback: true, ..Config::default() }, 0.0).unwrap();
    /// for _ in 0..10 {
    ///     assert!(s.record_checked(id, true, false, 5.0, 1.0).unwrap().is_empty());
    /// }
    /// let ev = s.record_checked(id, true, false, 5.0, 1.0).unwrap();
    /// assert_eq!(ev.iter().map(|e| e.entry.kind).collect::<Vec<_>>(), ["breach", "rollback"]);
    /// assert_eq!(s.get(id).unwrap().percentage(), 0.0);
    /// ```
    pub fn record_checked(
        &mut self,
        id: usize,
        new_cohort: bool,
        ok: bool,
        latency_ms: f64,
        now: f64,
    ) -> Option<Vec<Event>> {
        if !self.record(id, new_cohort, ok, latency_ms, now) {
            return None;
        }
        let r = self.get_mut(id)?;
        if !new_cohort || !r.may_breach(ok, latency_ms, now) {
            r.pending_eval = true;
            return Some(Vec::new());
        }
        Some(self.evaluate(id, now))
    }

    /// Runs the analysis of every rollout with outcomes recorded since its
    /// last one (see [`RolloutSet::record_checked`]); what the deferred
    /// drain calls, so a healthy step advances even when every outcome was
    /// recorded one by one.
    ///
    /// ```
    /// use reliability_core::core::rollout::{Config, RolloutSet, Slo, Step};
    /// let mut s = RolloutSet::new();
    /// let steps = vec![Step { bp: 5000, min_duration_ms: 0.0, min_requests: 10 }, Step { bp: 10_000, min_duration_ms: 0.0, min_requests: 0 }];
    /// let slo = Some(Slo { error_rate: Some(0.5), ..Slo::default() });
    /// let (id, _) = s.start("r", Config { steps, slo, auto_rollback: true, min_samples: 5, ..Config::default() }, 0.0).unwrap();
    /// for _ in 0..10 {
    ///     assert!(s.record_checked(id, true, true, 5.0, 1.0).unwrap().is_empty());
    /// }
    /// assert_eq!(s.evaluate_pending(2.0)[0].entry.kind, "advance");
    /// ```
    pub fn evaluate_pending(&mut self, now: f64) -> Vec<Event> {
        let ids: Vec<usize> = self
            .rollouts
            .iter()
            .enumerate()
            .filter(|(_, r)| r.as_ref().is_some_and(|r| r.pending_eval))
            .map(|(i, _)| i)
            .collect();
        ids.into_iter()
            .flat_map(|id| self.evaluate(id, now))
            .collect()
    }

    /// Runs the analysis of rollout `id` and applies what it decides.
    pub fn evaluate(&mut self, id: usize, now: f64) -> Vec<Event> {
        let mut out = Vec::new();
        let Some(r) = self.get_mut(id) else {
            return out;
        };
        r.pending_eval = false;
        let (verdict, figures) = r.analyse(now);
        r.last_verdict = verdict.clone();
        r.last_figures = figures.clone();
        if r.phase != Phase::Running {
            return out;
        }
        match verdict {
            Verdict::Breach(reason) => {
                let from = r.config.bp;
                let breach = HistoryEntry {
                    at: now,
                    kind: "breach",
                    from_bp: from,
                    to_bp: from,
                    reason: reason.clone(),
                    figures: Some(figures.clone()),
                };
                r.push(breach.clone());
                out.push(Event {
                    rollout: id,
                    entry: breach,
                });
                if r.config.auto_rollback && from > 0 {
                    let to = match r.config.rollback_to {
                        RollbackTarget::Zero => 0,
                        RollbackTarget::LastGoodStep => r.last_good_bp.min(from.saturating_sub(1)),
                    };
                    r.set_bp(to, now);
                    r.phase = Phase::RolledBack;
                    if let (Some(steps), RollbackTarget::LastGoodStep) =
                        (Some(&r.config.steps), r.config.rollback_to)
                    {
                        r.step = steps.iter().rposition(|s| s.bp <= to);
                    }
                    let e = HistoryEntry {
                        at: now,
                        kind: "rollback",
                        from_bp: from,
                        to_bp: to,
                        reason,
                        figures: Some(figures),
                    };
                    r.push(e.clone());
                    out.push(Event {
                        rollout: id,
                        entry: e,
                    });
                }
            }
            Verdict::Healthy => {
                r.last_good_bp = r.last_good_bp.max(r.config.bp);
                let Some(i) = r.step else { return out };
                if !r.config.auto_advance || i + 1 >= r.config.steps.len() {
                    if i + 1 >= r.config.steps.len() && r.config.bp >= BUCKETS {
                        r.phase = Phase::Completed;
                    }
                    return out;
                }
                let cur = &r.config.steps[i];
                let waited = now - r.step_started;
                if waited >= cur.min_duration_ms && r.new.step_requests >= cur.min_requests {
                    let from = r.config.bp;
                    let to = r.config.steps[i + 1].bp;
                    r.set_bp(to, now);
                    r.step = Some(i + 1);
                    let e = HistoryEntry {
                        at: now,
                        kind: "advance",
                        from_bp: from,
                        to_bp: to,
                        reason: format!(
                            "healthy for {waited:.0} ms with {} requests in the window",
                            figures.requests
                        ),
                        figures: Some(figures),
                    };
                    r.push(e.clone());
                    out.push(Event {
                        rollout: id,
                        entry: e,
                    });
                }
            }
            Verdict::Inconclusive(_) => {}
        }
        out
    }

    /// Manual actions: `pause`, `resume`, `promote` (to 100 %), `abort` (to
    /// 0 %, stays there), `rollback` (fast: to 0 % without analysis).
    pub fn action(
        &mut self,
        name: &str,
        action: &str,
        reason: &str,
        now: f64,
    ) -> CoreResult<Event> {
        let id = self
            .id_of(name)
            .ok_or_else(|| CoreError::not_found("Rollout", name))?;
        let r = self.by_name(name)?;
        let from = r.config.bp;
        let kind: &'static str = match action {
            "pause" => {
                r.phase = Phase::Paused;
                "pause"
            }
            "resume" => {
                r.phase = Phase::Running;
                r.step_started = now;
                "resume"
            }
            "promote" => {
                r.set_bp(BUCKETS, now);
                r.phase = Phase::Completed;
                if !r.config.steps.is_empty() {
                    r.step = Some(r.config.steps.len() - 1);
                }
                "promote"
            }
            "abort" => {
                r.set_bp(0, now);
                r.phase = Phase::Aborted;
                "abort"
            }
            "rollback" => {
                r.set_bp(0, now);
                r.phase = Phase::RolledBack;
                "rollback"
            }
            other => {
                return Err(CoreError::range(
                    "action",
                    "'pause', 'resume', 'promote', 'abort' or 'rollback'",
                    format!("\"{other}\""),
                ))
            }
        };
        let entry = HistoryEntry {
            at: now,
            kind,
            from_bp: from,
            to_bp: r.config.bp,
            reason: reason.to_string(),
            figures: None,
        };
        r.push(entry.clone());
        Ok(Event { rollout: id, entry })
    }

    /// Requests and errors of one cohort over `ms`, for the status views.
    pub fn cohort_window(
        &mut self,
        id: usize,
        new_cohort: bool,
        ms: f64,
        now: f64,
    ) -> Option<(u64, u64, Option<f64>, Option<f64>)> {
        let r = self.get_mut(id)?;
        let c = if new_cohort {
            &mut r.new
        } else {
            &mut r.stable
        };
        let w = c.window(ms, now);
        Some((
            w.requests,
            w.errors,
            c.latency_quantile(0.5, now),
            c.latency_quantile(0.99, now),
        ))
    }

    /// All-time requests and errors of a cohort.
    pub fn cohort_total(&self, id: usize, new_cohort: bool) -> Option<(u64, u64)> {
        let r = self.get(id)?;
        let c = if new_cohort { &r.new } else { &r.stable };
        Some((c.total.requests, c.total.errors))
    }

    pub fn remove(&mut self, name: &str) -> bool {
        match self.index.remove(name) {
            Some(id) => {
                self.rollouts[id] = None;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tests of the analysis roll back by themselves (the default is off, as the original).
    fn cfg(pct: f64) -> Config {
        Config {
            bp: percent_to_bp("percentage", pct).unwrap(),
            auto_rollback: true,
            ..Config::default()
        }
    }

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("user-{i}")).collect()
    }

    #[test]
    fn raising_the_percentage_keeps_every_user_already_in() {
        let mut s = RolloutSet::new();
        let (id, _) = s.start("search-v2", cfg(10.0), 0.0).unwrap();
        let ks = keys(50_000);
        let at10: Vec<bool> = ks.iter().map(|k| s.get(id).unwrap().decide(k)).collect();
        s.set_percentage("search-v2", 2000, "", 1.0).unwrap();
        let at20: Vec<bool> = ks.iter().map(|k| s.get(id).unwrap().decide(k)).collect();
        assert!(
            at10.iter().zip(&at20).all(|(a, b)| !a || *b),
            "nobody in the 10 % left at 20 %"
        );
        let n10 = at10.iter().filter(|x| **x).count() as f64 / ks.len() as f64;
        let n20 = at20.iter().filter(|x| **x).count() as f64 / ks.len() as f64;
        assert!(
            (n10 - 0.10).abs() < 0.01 && (n20 - 0.20).abs() < 0.01,
            "{n10} {n20}"
        );
    }

    #[test]
    fn buckets_are_uniform_chi_square_over_a_million_keys() {
        let bins = 100usize;
        let mut counts = vec![0u64; bins];
        let n = 1_000_000;
        for i in 0..n {
            let b = murmur_bucket("checkout-v3", &format!("{i}"));
            counts[(b as usize) * bins / BUCKETS as usize] += 1;
        }
        let expected = n as f64 / bins as f64;
        let chi2: f64 = counts
            .iter()
            .map(|&c| (c as f64 - expected).powi(2) / expected)
            .sum();
        // 99 degrees of freedom: the 0.999 quantile is about 148.2.
        assert!(chi2 < 148.2, "chi-square {chi2}");
    }

    #[test]
    fn deny_beats_allow_and_0_and_100_are_absolute() {
        let mut s = RolloutSet::new();
        let mut c = cfg(0.0);
        c.allow.insert("vip".into());
        c.deny.insert("vip".into());
        c.allow.insert("beta".into());
        let (id, _) = s.start("f", c, 0.0).unwrap();
        let r = s.get(id).unwrap();
        assert!(!r.decide("vip"));
        assert!(r.decide("beta"));
        assert!(!r.decide("anyone"));
        s.set_percentage("f", 10_000, "", 0.0).unwrap();
        assert!(s.get(id).unwrap().decide("anyone"));
        assert!(!s.get(id).unwrap().decide("vip"));
    }

    #[test]
    fn legacy_mode_reproduces_the_original() {
        let mut s = RolloutSet::new();
        let mut c = cfg(65.0);
        c.hash = HashMode::Legacy;
        let (id, _) = s.start("api-agent", c, 0.0).unwrap();
        assert!(
            !s.get(id).unwrap().decide("anonymous"),
            "bucket 65 is not < 65"
        );
        s.set_percentage("api-agent", 6600, "", 0.0).unwrap();
        assert!(s.get(id).unwrap().decide("anonymous"));
    }

    fn slo_cfg() -> Config {
        Config {
            slo: Some(Slo {
                error_rate: Some(0.05),
                ..Slo::default()
            }),
            ..cfg(100.0)
        }
    }

    #[test]
    fn without_auto_rollback_a_breach_is_reported_and_nothing_moves() {
        let mut s = RolloutSet::new();
        let c = Config {
            slo: Some(Slo {
                error_rate: Some(0.05),
                ..Slo::default()
            }),
            ..Config::default()
        };
        assert!(!c.auto_rollback, "off by default, as the original");
        let (id, _) = s.start("r", c, 0.0).unwrap();
        for i in 0..20 {
            assert_eq!(
                s.record_checked(id, true, false, 5.0, i as f64),
                Some(vec![]),
                "not judged on record"
            );
        }
        let ev = s.evaluate(id, 20.0);
        assert_eq!(
            ev.iter().map(|e| e.entry.kind).collect::<Vec<_>>(),
            ["breach"]
        );
        assert_eq!(s.get(id).unwrap().percentage(), 100.0);
    }

    #[test]
    fn a_breach_acts_on_the_request_that_makes_it() {
        let mut s = RolloutSet::new();
        let (id, _) = s.start("r", slo_cfg(), 0.0).unwrap();
        // Successes never start an error-rate breach; the 11th brings the window to min_samples.
        for i in 0..10 {
            assert_eq!(
                s.record_checked(id, true, i != 3, 5.0, i as f64),
                Some(vec![]),
                "request {i}"
            );
        }
        let ev = s.record_checked(id, true, true, 5.0, 10.0).unwrap();
        assert_eq!(
            ev.iter().map(|e| e.entry.kind).collect::<Vec<_>>(),
            ["breach", "rollback"],
            "1/11 > 0.05 on the 11th"
        );
        // Stable outcomes and unknown ids are only recorded.
        let (id2, _) = s.start("q", slo_cfg(), 0.0).unwrap();
        for i in 0..50 {
            assert_eq!(
                s.record_checked(id2, false, false, 5.0, i as f64),
                Some(vec![])
            );
        }
        assert_eq!(s.record_checked(99, true, false, 5.0, 0.0), None);
        // A latency breach acts on the slow request that makes it.
        let lat = Config {
            slo: Some(Slo {
                latency: Some((0.99, 100.0)),
                ..Slo::default()
            }),
            ..cfg(100.0)
        };
        let (id3, _) = s.start("p", lat, 0.0).unwrap();
        for i in 0..10 {
            assert!(s
                .record_checked(id3, true, true, 5.0, i as f64)
                .unwrap()
                .is_empty());
        }
        assert!(
            s.record_checked(id3, true, true, 5.0, 10.0)
                .unwrap()
                .is_empty(),
            "11 fast samples: healthy"
        );
        let ev = s.record_checked(id3, true, true, 150.0, 11.0).unwrap();
        assert_eq!(
            ev.iter().map(|e| e.entry.kind).collect::<Vec<_>>(),
            ["breach", "rollback"]
        );
    }

    #[test]
    fn outcomes_recorded_one_by_one_still_advance_steps_on_the_deferred_evaluation() {
        let mut s = RolloutSet::new();
        let steps = vec![
            Step {
                bp: 5000,
                min_duration_ms: 0.0,
                min_requests: 10,
            },
            Step {
                bp: BUCKETS,
                min_duration_ms: 0.0,
                min_requests: 0,
            },
        ];
        let c = Config {
            steps,
            min_samples: 5,
            ..slo_cfg()
        };
        let (id, _) = s.start("plan", c, 0.0).unwrap();
        for i in 0..20 {
            assert_eq!(
                s.record_checked(id, true, true, 5.0, i as f64),
                Some(vec![])
            );
        }
        assert_eq!(
            s.get(id).unwrap().config.bp,
            5000,
            "no analysis on healthy outcomes"
        );
        let ev = s.evaluate_pending(20.0);
        assert_eq!(
            ev.iter().map(|e| e.entry.kind).collect::<Vec<_>>(),
            ["advance"]
        );
        assert_eq!(s.get(id).unwrap().config.bp, BUCKETS);
        assert!(
            s.evaluate_pending(21.0).is_empty(),
            "nothing pending any more"
        );
    }

    #[test]
    fn an_empty_name_is_a_rollout_as_in_the_original() {
        let mut s = RolloutSet::new();
        let mut c = cfg(77.0);
        c.hash = HashMode::Legacy;
        let (id, _) = s.start("", c, 0.0).unwrap();
        // The original's vector: ("", "anonymous") hashes to bucket 77.
        assert_eq!(s.get(id).unwrap().bucket("anonymous"), 7700);
        assert!(!s.get(id).unwrap().decide("anonymous"));
        assert!(s.start(&"x".repeat(257), cfg(1.0), 0.0).is_err());
    }

    #[test]
    fn the_originals_example_rolls_back_on_the_eleventh_request() {
        let mut s = RolloutSet::new();
        let (id, _) = s.start("r", slo_cfg(), 0.0).unwrap();
        for i in 0..10 {
            s.record(id, true, i != 3, 5.0, i as f64);
            assert!(
                s.evaluate(id, i as f64).is_empty(),
                "inconclusive before 11 samples"
            );
        }
        assert!(matches!(
            s.get(id).unwrap().last_verdict,
            Verdict::Inconclusive(_)
        ));
        s.record(id, true, true, 5.0, 10.0);
        let ev = s.evaluate(id, 10.0);
        assert_eq!(
            ev.iter().map(|e| e.entry.kind).collect::<Vec<_>>(),
            ["breach", "rollback"]
        );
        let r = s.get(id).unwrap();
        assert_eq!((r.config.bp, r.phase), (0, Phase::RolledBack));
        assert!(
            ev[1].entry.reason.starts_with("error rate 0.0909 > 0.05"),
            "{}",
            ev[1].entry.reason
        );
        assert_eq!(ev[1].entry.figures.as_ref().unwrap().requests, 11);
    }

    #[test]
    fn latency_ceiling_uses_the_quantile_without_false_breaches() {
        let mut s = RolloutSet::new();
        let mut c = cfg(100.0);
        c.slo = Some(Slo {
            latency: Some((0.99, 100.0)),
            ..Slo::default()
        });
        let (id, _) = s.start("r", c.clone(), 0.0).unwrap();
        for _ in 0..10 {
            s.record(id, true, true, 5.0, 1.0);
        }
        s.record(id, true, true, 100.0, 1.0);
        assert!(
            s.evaluate(id, 2.0).is_empty(),
            "exactly at the ceiling is not a breach"
        );
        s.record(id, true, true, 101.0, 3.0);
        let ev = s.evaluate(id, 3.0);
        assert_eq!(ev.len(), 2, "{:?}", s.get(id).unwrap().last_verdict);
        assert!(
            ev[0].entry.reason.starts_with("p99 latency 10"),
            "{}",
            ev[0].entry.reason
        );
    }

    #[test]
    fn low_traffic_is_inconclusive_and_never_advances() {
        let mut s = RolloutSet::new();
        let mut c = slo_cfg();
        c.steps = vec![
            Step {
                bp: 100,
                min_duration_ms: 0.0,
                min_requests: 0,
            },
            Step {
                bp: 2500,
                min_duration_ms: 0.0,
                min_requests: 0,
            },
        ];
        let (id, _) = s.start("r", c, 0.0).unwrap();
        assert_eq!(
            s.get(id).unwrap().config.bp,
            100,
            "starts at the first step"
        );
        for t in 0..100 {
            assert!(s.evaluate(id, t as f64 * 1000.0).is_empty());
        }
        assert_eq!(s.get(id).unwrap().config.bp, 100, "no data, no advance");
        for _ in 0..5 {
            s.record(id, true, true, 1.0, 100_000.0);
        }
        assert!(s.evaluate(id, 100_000.0).is_empty(), "5 of 11 samples");
    }

    #[test]
    fn healthy_steps_advance_after_their_duration_and_requests() {
        let mut s = RolloutSet::new();
        let mut c = slo_cfg();
        c.steps = [1.0, 5.0, 25.0, 100.0]
            .iter()
            .map(|&p| Step {
                bp: (p * 100.0) as u32,
                min_duration_ms: 1000.0,
                min_requests: 20,
            })
            .collect();
        let (id, _) = s.start("r", c, 0.0).unwrap();
        let mut t = 0.0;
        let mut seen = vec![];
        while t < 10_000.0 {
            for _ in 0..10 {
                s.record(id, true, true, 2.0, t);
            }
            for e in s.evaluate(id, t) {
                seen.push((e.entry.kind, e.entry.to_bp, t));
            }
            t += 250.0;
        }
        assert_eq!(
            seen.iter().map(|x| x.1).collect::<Vec<_>>(),
            [500, 2500, 10_000]
        );
        assert!(seen.iter().all(|x| x.0 == "advance"));
        assert_eq!(seen[0].2, 1000.0, "not before the step's minimum duration");
        assert_eq!(s.get(id).unwrap().phase, Phase::Completed);
    }

    #[test]
    fn rollback_to_the_last_good_step() {
        let mut s = RolloutSet::new();
        let mut c = slo_cfg();
        c.rollback_to = RollbackTarget::LastGoodStep;
        c.steps = [5.0, 25.0, 50.0]
            .iter()
            .map(|&p| Step {
                bp: (p * 100.0) as u32,
                min_duration_ms: 0.0,
                min_requests: 11,
            })
            .collect();
        let (id, _) = s.start("r", c, 0.0).unwrap();
        for _ in 0..11 {
            s.record(id, true, true, 1.0, 0.0);
        }
        assert_eq!(s.evaluate(id, 0.0)[0].entry.to_bp, 2500);
        // Now 25 % fails; the window still holds the healthy samples, so fail hard.
        for _ in 0..40 {
            s.record(id, true, false, 1.0, 1.0);
        }
        let ev = s.evaluate(id, 1.0);
        assert_eq!(ev.last().unwrap().entry.kind, "rollback");
        assert_eq!(
            ev.last().unwrap().entry.to_bp,
            500,
            "back to 5 %, the last step judged healthy"
        );
    }

    #[test]
    fn multi_window_burn_rate_needs_both_windows() {
        // 99.9 % availability, page at 14.4x over 60 s and 5 s (the SRE workbook's
        // 1 h / 5 min pair, scaled down so the test moves time in seconds).
        let burn_cfg = || {
            let mut c = cfg(100.0);
            c.window_ms = 1000.0;
            c.slo = Some(Slo {
                availability: Some(0.999),
                burn_windows: vec![BurnWindow {
                    long_ms: 60_000.0,
                    short_ms: 5_000.0,
                    factor: 14.4,
                }],
                ..Slo::default()
            });
            c
        };
        let feed = |s: &mut RolloutSet, id: usize, from: f64, to: f64, error_every: usize| {
            let mut t = from;
            while t < to {
                for k in 0..100 {
                    s.record(id, true, error_every == 0 || k % error_every != 0, 1.0, t);
                }
                t += 1000.0;
            }
        };
        let mut s = RolloutSet::new();
        // Long window hot, short window cool: an old problem, already over. No page.
        let (a, _) = s.start("a", burn_cfg(), 0.0).unwrap();
        feed(&mut s, a, 0.0, 55_000.0, 33); // ~3 % errors: burn ~30x
        feed(&mut s, a, 55_000.0, 60_000.0, 0);
        assert!(s.evaluate(a, 59_999.0).is_empty());
        let (long, short) = s.get(a).unwrap().last_figures.burn_rates[0];
        assert!(long > 14.4 && short < 14.4, "{long} {short}");
        // Short window hot, long window cool: a blip. No page yet.
        let (b, _) = s.start("b", burn_cfg(), 0.0).unwrap();
        feed(&mut s, b, 0.0, 59_000.0, 0);
        for k in 0..100 {
            s.record(b, true, k % 2 == 0, 1.0, 59_000.0);
        }
        assert!(s.evaluate(b, 59_000.0).is_empty());
        let (long, short) = s.get(b).unwrap().last_figures.burn_rates[0];
        assert!(long < 14.4 && short > 14.4, "{long} {short}");
        // The blip goes on: both windows burn. Page, and roll back.
        for k in 0..400 {
            s.record(b, true, k % 2 == 0, 1.0, 59_500.0);
        }
        let ev = s.evaluate(b, 59_500.0);
        assert_eq!(
            ev.last().map(|e| e.entry.kind),
            Some("rollback"),
            "{:?}",
            s.get(b).unwrap().last_figures
        );
        assert!(
            ev[0].entry.reason.starts_with("error budget burning at"),
            "{}",
            ev[0].entry.reason
        );
        // Brute-force check of the figures: 250 errors of 6,400 requests in the long window.
        let (long, _) = s.get(b).unwrap().last_figures.burn_rates[0];
        assert!((long - (250.0 / 6400.0) / 0.001).abs() < 1e-6, "{long}");
    }

    #[test]
    fn compared_with_the_stable_cohort() {
        let mut s = RolloutSet::new();
        let mut c = cfg(50.0);
        c.slo = Some(Slo {
            max_error_rate_increase: Some(0.02),
            ..Slo::default()
        });
        let (id, _) = s.start("r", c, 0.0).unwrap();
        for k in 0..100 {
            s.record(id, false, k % 10 != 0, 1.0, 0.0); // stable: 10 % errors (a bad day for everyone)
            s.record(id, true, k % 10 != 0 && k != 5, 1.0, 0.0); // new: 11 %
        }
        assert!(
            s.evaluate(id, 0.0).is_empty(),
            "11 % vs 10 % is within 2 points"
        );
        for _ in 0..30 {
            s.record(id, true, false, 1.0, 0.0);
        }
        let ev = s.evaluate(id, 0.0);
        assert!(
            ev[0].entry.reason.contains("exceeds the stable cohort's"),
            "{}",
            ev[0].entry.reason
        );
    }

    #[test]
    fn manual_actions_and_bad_input() {
        let mut s = RolloutSet::new();
        let (id, _) = s.start("r", slo_cfg(), 0.0).unwrap();
        s.action("r", "pause", "", 0.0).unwrap();
        for _ in 0..20 {
            s.record(id, true, false, 1.0, 0.0);
        }
        assert!(
            s.evaluate(id, 0.0).is_empty(),
            "paused: no automatic action"
        );
        s.action("r", "resume", "", 0.0).unwrap();
        assert_eq!(s.evaluate(id, 0.0).len(), 2);
        s.action("r", "promote", "", 1.0).unwrap();
        assert_eq!(s.get(id).unwrap().config.bp, BUCKETS);
        s.action("r", "rollback", "fast", 2.0).unwrap();
        assert_eq!(s.get(id).unwrap().config.bp, 0);
        assert!(s.action("r", "explode", "", 0.0).is_err());
        assert_eq!(
            s.action("nope", "pause", "", 0.0).unwrap_err().message,
            "Rollout not found: nope"
        );
        assert_eq!(
            percent_to_bp("percentage", 150.0).unwrap_err().message,
            "percentage must be a number from 0 to 100, got 150"
        );
        assert!(percent_to_bp("percentage", f64::NAN).is_err());
        assert_eq!(percent_to_bp("percentage", 0.01).unwrap(), 1);
        let mut bad = cfg(10.0);
        bad.steps = vec![
            Step {
                bp: 500,
                min_duration_ms: 0.0,
                min_requests: 0,
            },
            Step {
                bp: 100,
                min_duration_ms: 0.0,
                min_requests: 0,
            },
        ];
        assert!(s
            .start("x", bad.clone(), 0.0)
            .unwrap_err()
            .message
            .starts_with("steps[1].percentage must be greater than steps[0].percentage (5)"));
        bad.steps.clear();
        bad.slo = Some(Slo {
            error_rate: Some(1.5),
            ..Slo::default()
        });
        assert!(s
            .start("x", bad.clone(), 0.0)
            .unwrap_err()
            .message
            .starts_with("slo.errorRate"));
        bad.slo = Some(Slo {
            availability: Some(0.999),
            burn_windows: vec![BurnWindow {
                long_ms: 1000.0,
                short_ms: 5000.0,
                factor: 2.0,
            }],
            ..Slo::default()
        });
        assert!(s
            .start("x", bad.clone(), 0.0)
            .unwrap_err()
            .message
            .starts_with("slo.burnRateWindows[0].longMs"));
        bad.slo = Some(Slo {
            availability: Some(0.999),
            burn_windows: vec![BurnWindow {
                long_ms: 30.0 * 86_400_000.0,
                short_ms: 10.0,
                factor: 2.0,
            }],
            ..Slo::default()
        });
        assert!(s
            .start("x", bad, 0.0)
            .unwrap_err()
            .message
            .starts_with("slo.burnRateWindows must be windows needing"));
        assert!(s.id_of("x").is_none(), "nothing half-applied");
    }
}
