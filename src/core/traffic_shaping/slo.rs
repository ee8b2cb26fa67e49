//! The SLO analysis of a rollout's new cohort: the SLO itself (error-rate
//! and latency ceilings, availability burn windows, comparison with the
//! stable cohort), the figures an evaluation reads and the verdict. Kept
//! apart from the state machine so the breach rule lives in one place.

use super::cohort::CohortCounts;
use super::rollout::{Rollout, RolloutPhase};

/// A multi-window burn-rate rule (SRE workbook): breach when both the long
/// and the short window burn the error budget at least `factor` times too fast.
#[derive(Debug, Clone, PartialEq)]
pub struct BurnWindow {
    /// The long window (ms).
    pub long_ms: f64,
    /// The short window (ms), confirming the long one is still burning.
    pub short_ms: f64,
    /// The burn rate (error rate / budget) that breaches.
    pub factor: f64,
}

/// What the new cohort is judged against: absolute ceilings, burn rates of
/// an availability target, and margins over the stable cohort.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Slo {
    /// Error-rate ceiling for the new cohort (0..=1, strict `>` breaches).
    pub error_rate: Option<f64>,
    /// `(quantile 0..1, ceiling ms)`: e.g. `(0.99, 500.0)`.
    pub latency: Option<(f64, f64)>,
    /// Availability target (e.g. 0.999): burn-rate alerting on its error budget.
    pub availability: Option<f64>,
    /// Burn-rate rules on the availability target's budget.
    pub burn_windows: Vec<BurnWindow>,
    /// Judge the new cohort against the stable one: breach when its error
    /// rate exceeds stable's by more than this (absolute, 0..=1)...
    pub max_error_rate_increase: Option<f64>,
    /// ...or its latency quantile exceeds stable's times this ratio (> 1).
    pub max_latency_ratio: Option<f64>,
}

/// The outcome of one analysis of the new cohort.
///
/// ```
/// use reliability_core::core::traffic_shaping::{Config, RolloutSet, Verdict};
/// let mut s = RolloutSet::new();
/// let (id, _) = s.start("r", Config::default(), 0.0).unwrap();
/// let (v, _) = s.get_mut(id).unwrap().analyse(1.0);
/// assert!(matches!(v, Verdict::Inconclusive(_)));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Not enough to judge (no SLO, or too few samples): why.
    Inconclusive(String),
    /// Every rule holds.
    Healthy,
    /// A rule broke: which, with its figures.
    Breach(String),
}

/// The figures an evaluation used, kept with each history entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// New-cohort requests in the analysis window.
    pub requests: u64,
    /// New-cohort error rate in the window.
    pub error_rate: f64,
    /// New-cohort latency quantile (ms), `None` without samples.
    pub latency_ms: Option<f64>,
    /// Stable-cohort requests in the window.
    pub stable_requests: u64,
    /// Stable-cohort error rate in the window.
    pub stable_error_rate: f64,
    /// Stable-cohort latency quantile (ms).
    pub stable_latency_ms: Option<f64>,
    /// `(long, short)` burn rates per configured window.
    pub burn_rates: Vec<(f64, f64)>,
}

impl Rollout {
    /// Could the new-cohort outcome just recorded have started a breach?
    /// A failure can (every error rule), a latency over the ceiling can
    /// (the latency rule), and so can the request that brings the window to
    /// `min_samples` (the original's 11th request). Anything else only
    /// lowers the error rate or the quantile; what time does to the windows
    /// is judged by the deferred evaluation.
    pub(crate) fn may_breach(&mut self, ok: bool, latency_ms: f64, now: f64) -> bool {
        if self.phase != RolloutPhase::Running || self.config.bp == 0 || !self.judged_on_record() {
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

    fn figures(&mut self, now: f64) -> Figures {
        let w = self.config.window_ms;
        let n = self.new.window(w, now);
        let s = self.stable.window(w, now);
        let rate = |c: CohortCounts| crate::core::metrics::rate_of(c.errors, c.requests);
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
}
