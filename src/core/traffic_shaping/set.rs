//! The set of rollouts of one traffic-shaping instance, keyed by name, and
//! the actions on it (start, percentage, record, evaluate, pause/resume,
//! promote, abort, remove).

use super::cohort::Cohort;
use super::config::{Config, RollbackTarget};
use super::rollout::{Event, Rollout, RolloutPhase};
use super::slo::{Figures, Verdict};
use super::{BUCKETS, MAX_ROLLOUTS};
use crate::core::error::{CoreError, CoreResult};
use crate::core::named::{check_name, Named};

/// The id of the rollout named `""`: past every id [`Named`] hands out (its
/// cap is [`MAX_ROLLOUTS`]).
const ANONYMOUS: usize = MAX_ROLLOUTS;

/// The rollouts of one traffic-shaping instance. Names follow the one name
/// rule ([`check_name`], via [`Named`]) with one exception kept for the
/// original's parity: the empty name is a rollout (the original hashed
/// `:<user>` for it), held in its own slot. A removed rollout keeps its id
/// (and its place under the cap): restarting the name reuses it, so an id
/// handed to JavaScript never names another rollout.
///
/// ```
/// use reliability_core::core::traffic_shaping::{Config, RolloutSet};
/// let mut s = RolloutSet::new();
/// let (id, _) = s.start("search-v2", Config::default(), 0.0).unwrap();
/// assert_eq!(s.id_of("search-v2"), Some(id));
/// assert!(s.start("a\u{202e}b", Config::default(), 0.0).is_err());
/// assert!(s.remove("search-v2"));
/// assert_eq!(s.id_of("search-v2"), None);
/// ```
#[derive(Debug)]
pub struct RolloutSet {
    named: Named<Option<Rollout>>,
    anonymous: Option<Rollout>,
}

impl Default for RolloutSet {
    fn default() -> Self {
        RolloutSet {
            named: Named::new("Rollout", MAX_ROLLOUTS, "remove rollouts no longer needed"),
            anonymous: None,
        }
    }
}

impl RolloutSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of the live rollout `name`.
    pub fn id_of(&self, name: &str) -> Option<usize> {
        let id = if name.is_empty() {
            ANONYMOUS
        } else {
            self.named.id_of(name)? as usize
        };
        self.get(id).map(|_| id)
    }

    /// The live rollout with this id.
    pub fn get(&self, id: usize) -> Option<&Rollout> {
        if id == ANONYMOUS {
            return self.anonymous.as_ref();
        }
        self.named.get(u32::try_from(id).ok()?)?.as_ref()
    }

    /// The live rollout with this id, mutably.
    pub fn get_mut(&mut self, id: usize) -> Option<&mut Rollout> {
        if id == ANONYMOUS {
            return self.anonymous.as_mut();
        }
        self.named.get_mut(u32::try_from(id).ok()?)?.as_mut()
    }

    fn by_name(&mut self, name: &str) -> CoreResult<&mut Rollout> {
        let id = self
            .id_of(name)
            .ok_or_else(|| CoreError::not_found("Rollout", name))?;
        Ok(self.get_mut(id).expect("id_of names live rollouts"))
    }

    /// The ids of the live rollouts, in creation order (the empty name last).
    pub fn ids(&self) -> impl Iterator<Item = usize> + '_ {
        self.named
            .iter()
            .filter(|(_, _, r)| r.is_some())
            .map(|(i, _, _)| i as usize)
            .chain(self.anonymous.as_ref().map(|_| ANONYMOUS))
    }

    /// The slot of `name`, created (empty) when the name is new: the name
    /// rule and the cap apply to new names only.
    fn slot(&mut self, name: &str) -> CoreResult<(usize, &mut Option<Rollout>)> {
        if name.is_empty() {
            return Ok((ANONYMOUS, &mut self.anonymous));
        }
        let (id, _) = self.named.get_or_insert("name", name, || Ok(None))?;
        let slot = self.named.get_mut(id).expect("just looked up");
        Ok((id as usize, slot))
    }

    /// Starts (or restarts, zeroing its figures) rollout `name`. With steps,
    /// the percentage starts at the first step.
    pub fn start(
        &mut self,
        name: &str,
        mut config: Config,
        now: f64,
    ) -> CoreResult<(usize, Event)> {
        if !name.is_empty() && self.named.id_of(name).is_none() {
            check_name("name", name)?;
        }
        config.validate()?;
        if let Some(first) = config.steps.first() {
            config.bp = first.bp;
        }
        let (id, slot) = self.slot(name)?;
        let history = slot.take().map(|r| r.history).unwrap_or_default();
        let step = if config.steps.is_empty() {
            None
        } else {
            Some(0)
        };
        let mut r = Rollout {
            name: name.to_string(),
            new: Cohort::new(&config, now),
            stable: Cohort::new(&config, now),
            phase: RolloutPhase::Running,
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
        let entry = r.log(now, "start", 0, r.config.bp, String::new(), None);
        *self.slot(name)?.1 = Some(r);
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
        if r.phase == RolloutPhase::RolledBack || r.phase == RolloutPhase::Aborted {
            r.phase = RolloutPhase::Running;
        }
        let entry = r.log(now, "update", from, bp, reason.to_string(), None);
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
        let entry = r.log(
            now,
            "update",
            from,
            r.config.bp,
            "configuration changed".into(),
            None,
        );
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
    /// use reliability_core::core::traffic_shaping::{Config, RolloutSet, Slo};
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
    /// use reliability_core::core::traffic_shaping::{Config, RolloutSet, Slo, Step};
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
            .ids()
            .filter(|&id| self.get(id).is_some_and(|r| r.pending_eval))
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
        if r.phase != RolloutPhase::Running {
            return out;
        }
        match verdict {
            Verdict::Breach(reason) => {
                let from = r.config.bp;
                let breach = r.log(
                    now,
                    "breach",
                    from,
                    from,
                    reason.clone(),
                    Some(figures.clone()),
                );
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
                    r.phase = RolloutPhase::RolledBack;
                    if let (Some(steps), RollbackTarget::LastGoodStep) =
                        (Some(&r.config.steps), r.config.rollback_to)
                    {
                        r.step = steps.iter().rposition(|s| s.bp <= to);
                    }
                    let e = r.log(now, "rollback", from, to, reason, Some(figures));
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
                        r.phase = RolloutPhase::Completed;
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
                    let e = r.log(
                        now,
                        "advance",
                        from,
                        to,
                        format!(
                            "healthy for {waited:.0} ms with {} requests in the window",
                            figures.requests
                        ),
                        Some(figures),
                    );
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
                r.phase = RolloutPhase::Paused;
                "pause"
            }
            "resume" => {
                r.phase = RolloutPhase::Running;
                r.step_started = now;
                "resume"
            }
            "promote" => {
                r.set_bp(BUCKETS, now);
                r.phase = RolloutPhase::Completed;
                if !r.config.steps.is_empty() {
                    r.step = Some(r.config.steps.len() - 1);
                }
                "promote"
            }
            "abort" => {
                r.set_bp(0, now);
                r.phase = RolloutPhase::Aborted;
                "abort"
            }
            "rollback" => {
                r.set_bp(0, now);
                r.phase = RolloutPhase::RolledBack;
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
        let entry = r.log(now, kind, from, r.config.bp, reason.to_string(), None);
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

    /// Removes rollout `name`; false when there is none. Its id stays
    /// reserved for the name (see [`RolloutSet`]).
    pub fn remove(&mut self, name: &str) -> bool {
        match self.id_of(name) {
            Some(ANONYMOUS) => self.anonymous.take().is_some(),
            Some(id) => self
                .named
                .get_mut(id as u32)
                .is_some_and(|r| r.take().is_some()),
            None => false,
        }
    }
}
