//! The run half of the startup DAG: what may start next, each service's
//! outcome, and the rules applied to it (a critical failure aborts, a
//! non-critical one degrades its pending dependents at once).

use super::{Dag, Plan, Problem};
use crate::core::error::{CoreError, CoreResult};

/// Where a service has got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Waiting for its dependencies or a free slot.
    Pending,
    /// Its init or health check is running.
    Initializing,
    /// Initialised and healthy.
    Ready,
    /// Its init or health check failed.
    Failed,
    /// Not started because a dependency failed (a non-critical one).
    Degraded,
}

impl Status {
    /// Every status, in the order of [`Dag::counts`].
    pub const ALL: [Status; 5] = [
        Status::Pending,
        Status::Initializing,
        Status::Ready,
        Status::Failed,
        Status::Degraded,
    ];

    /// The name JS and the metrics use.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Initializing => "initializing",
            Status::Ready => "ready",
            Status::Failed => "failed",
            Status::Degraded => "degraded",
        }
    }
}

/// The step of a service's start that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The init callback.
    Init,
    /// The health check after init.
    HealthCheck,
    /// A dependency failed, so the service never started.
    Dependency,
}

impl Phase {
    /// The name JS uses (`init`, `health-check`, `dependency`).
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Init => "init",
            Phase::HealthCheck => "health-check",
            Phase::Dependency => "dependency",
        }
    }

    /// Parses a phase JS reports (`init` or `health-check`); a RangeError naming `field` otherwise.
    pub fn parse(field: &str, s: &str) -> CoreResult<Phase> {
        match s {
            "init" => Ok(Phase::Init),
            "health-check" => Ok(Phase::HealthCheck),
            _ => Err(CoreError::range(
                field,
                "'init' or 'health-check'",
                format!("\"{s}\""),
            )),
        }
    }
}

/// Where one service has got to, with the times the report shows.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeState {
    /// Where the service has got to.
    pub status: Status,
    /// When it started (epoch ms).
    pub started_at: Option<f64>,
    /// When it became ready or failed (epoch ms).
    pub finished_at: Option<f64>,
    /// Time between the run starting (or the last dependency becoming ready)
    /// and this service starting: queueing behind the concurrency limit.
    pub wait_ms: Option<f64>,
    /// How long init took, in ms.
    pub init_ms: Option<f64>,
    /// How long the health check took, in ms.
    pub health_ms: Option<f64>,
    /// Why it failed or was not started.
    pub error: Option<String>,
    /// The step that failed.
    pub failed_phase: Option<Phase>,
}

impl NodeState {
    pub(super) fn pending() -> Self {
        NodeState {
            status: Status::Pending,
            started_at: None,
            finished_at: None,
            wait_ms: None,
            init_ms: None,
            health_ms: None,
            error: None,
            failed_phase: None,
        }
    }

    /// `finished - started`, for a service that got that far.
    pub fn duration_ms(&self) -> Option<f64> {
        Some(self.finished_at? - self.started_at?)
    }
}

/// How a run ended (or that it has not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `begin` was not called.
    NotStarted,
    /// Services are still starting.
    Running,
    /// Every service is ready.
    Ready,
    /// Every critical service is ready; some non-critical ones are not.
    Degraded,
    /// A critical service failed; the message is the original's.
    Failed(String),
}

impl Outcome {
    /// The name JS uses (`not-started`, `running`, `ready`, `degraded`, `failed`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::NotStarted => "not-started",
            Outcome::Running => "running",
            Outcome::Ready => "ready",
            Outcome::Degraded => "degraded",
            Outcome::Failed(_) => "failed",
        }
    }
}

/// What a failure did to the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureEffect {
    /// Pending dependents now marked degraded.
    pub degraded: Vec<usize>,
    /// Set when startup is aborted: `Critical service <id> failed to initialize: <reason>`.
    pub abort: Option<String>,
}

impl Dag {
    /// The run state of service `i`; panics past `len()`, an index the DAG handed out.
    pub fn state(&self, i: usize) -> &NodeState {
        &self.state[i]
    }

    /// True once the run has begun (registration is closed).
    pub fn started(&self) -> bool {
        self.run_started_at.is_some()
    }

    /// The plan the run follows, once it has begun.
    pub fn current_plan(&self) -> Option<&Plan> {
        self.plan.as_ref()
    }

    /// Begins the run. Unlike the original, a graph with problems leaves the
    /// DAG as it was (nothing marked initialised), so it can be fixed and
    /// started again. Returns false if the run had already begun.
    pub fn begin(&mut self, now: f64) -> Result<bool, Vec<Problem>> {
        if self.started() {
            return Ok(false);
        }
        let plan = self.plan()?;
        let mut dependents = vec![Vec::new(); self.specs.len()];
        for (i, s) in self.specs.iter().enumerate() {
            for d in &s.dependencies {
                dependents[self.index[d]].push(i);
            }
        }
        self.dependents = dependents;
        self.plan = Some(plan);
        self.run_started_at = Some(now);
        self.maybe_finish(now);
        Ok(true)
    }

    /// Services that may start now, at most `max_in_flight` running at once,
    /// lower levels first; each is marked initializing.
    pub fn next_runnable(&mut self, now: f64, max_in_flight: usize) -> Vec<usize> {
        let mut out = Vec::new();
        if self.abort.is_some() || self.run_finished_at.is_some() {
            return out;
        }
        let Some(plan) = &self.plan else { return out };
        let room = max_in_flight.saturating_sub(self.in_flight);
        'levels: for level in &plan.levels {
            for &i in level {
                if out.len() >= room {
                    break 'levels;
                }
                if self.state[i].status != Status::Pending {
                    continue;
                }
                let deps_ready_at = self.specs[i].dependencies.iter().try_fold(
                    self.run_started_at.unwrap_or(now),
                    |acc, d| {
                        let st = &self.state[self.index[d]];
                        (st.status == Status::Ready).then(|| acc.max(st.finished_at.unwrap_or(acc)))
                    },
                );
                if let Some(ready_at) = deps_ready_at {
                    out.push(i);
                    let st = &mut self.state[i];
                    st.status = Status::Initializing;
                    st.started_at = Some(now);
                    st.wait_ms = Some((now - ready_at).max(0.0));
                }
            }
        }
        self.in_flight += out.len();
        out
    }

    fn take_in_flight(&mut self, i: usize) -> CoreResult<()> {
        if i >= self.specs.len() {
            return Err(CoreError::range(
                "service",
                &format!("an index below {}", self.specs.len()),
                i,
            ));
        }
        if self.state[i].status != Status::Initializing {
            return Err(CoreError::state(format!(
                "Service {} is {}, not initializing",
                self.specs[i].id,
                self.state[i].status.as_str()
            )));
        }
        self.in_flight -= 1;
        Ok(())
    }

    /// Records that service `i` initialised and passed its health check.
    pub fn report_ready(
        &mut self,
        i: usize,
        now: f64,
        init_ms: f64,
        health_ms: f64,
    ) -> CoreResult<()> {
        self.take_in_flight(i)?;
        let st = &mut self.state[i];
        st.status = Status::Ready;
        st.finished_at = Some(now);
        st.init_ms = Some(init_ms);
        st.health_ms = Some(health_ms);
        self.maybe_finish(now);
        Ok(())
    }

    /// Records that service `i` failed in `phase` with `reason`. A critical
    /// failure aborts the run; otherwise every pending service that depends
    /// on it, directly or not, is marked degraded at once (and if one of
    /// those is critical, the run aborts on its behalf).
    pub fn report_failed(
        &mut self,
        i: usize,
        now: f64,
        reason: &str,
        phase: Phase,
        init_ms: Option<f64>,
    ) -> CoreResult<FailureEffect> {
        self.take_in_flight(i)?;
        {
            let st = &mut self.state[i];
            st.status = Status::Failed;
            st.finished_at = Some(now);
            st.error = Some(reason.to_string());
            st.failed_phase = Some(phase);
            st.init_ms = init_ms;
        }
        let mut effect = FailureEffect {
            degraded: Vec::new(),
            abort: None,
        };
        if self.specs[i].critical {
            effect.abort = Some(format!(
                "Critical service {} failed to initialize: {reason}",
                self.specs[i].id
            ));
        } else {
            let mut stack = vec![i];
            while let Some(x) = stack.pop() {
                for k in 0..self.dependents[x].len() {
                    let dep = self.dependents[x][k];
                    if self.state[dep].status != Status::Pending {
                        continue;
                    }
                    let why = format!("dependency {} failed", self.specs[x].id);
                    let st = &mut self.state[dep];
                    st.status = Status::Degraded;
                    st.error = Some(why.clone());
                    st.failed_phase = Some(Phase::Dependency);
                    effect.degraded.push(dep);
                    stack.push(dep);
                    if self.specs[dep].critical && effect.abort.is_none() {
                        effect.abort = Some(format!(
                            "Critical service {} failed to initialize: {why}: {reason}",
                            self.specs[dep].id
                        ));
                    }
                }
            }
        }
        if let Some(msg) = &effect.abort {
            if self.abort.is_none() {
                self.abort = Some(msg.clone());
            }
        }
        self.maybe_finish(now);
        Ok(effect)
    }

    fn maybe_finish(&mut self, now: f64) {
        if self.run_finished_at.is_some() || self.in_flight > 0 {
            return;
        }
        let nothing_left =
            self.abort.is_some() || self.state.iter().all(|s| s.status != Status::Pending);
        if nothing_left {
            self.run_finished_at = Some(now);
        }
    }

    /// True once nothing is running and nothing more can start. Startup
    /// cannot stall: every pending service either has all dependencies
    /// ready (it can start), or one not ready that is itself pending or
    /// running (it will end), since failures mark their dependents degraded.
    pub fn is_finished(&self) -> bool {
        self.run_finished_at.is_some()
    }

    /// How many services are starting now.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// How the run ended, or that it has not.
    pub fn outcome(&self) -> Outcome {
        if self.run_started_at.is_none() {
            return Outcome::NotStarted;
        }
        if let Some(msg) = &self.abort {
            return Outcome::Failed(msg.clone());
        }
        if self.run_finished_at.is_none() {
            return Outcome::Running;
        }
        if self.state.iter().all(|s| s.status == Status::Ready) {
            Outcome::Ready
        } else {
            Outcome::Degraded
        }
    }

    /// `(started_at, finished_at)` of the run.
    pub fn run_times(&self) -> (Option<f64>, Option<f64>) {
        (self.run_started_at, self.run_finished_at)
    }

    /// Every critical service is ready (vacuously true with none).
    pub fn critical_ready(&self) -> bool {
        self.specs
            .iter()
            .zip(&self.state)
            .all(|(s, st)| !s.critical || st.status == Status::Ready)
    }

    /// Counts by status: `[pending, initializing, ready, failed, degraded]`.
    pub fn counts(&self) -> [usize; 5] {
        let mut c = [0; 5];
        for st in &self.state {
            c[st.status as usize] += 1;
        }
        c
    }

    /// Forgets everything (tests, or a process that rebuilds its graph).
    pub fn clear(&mut self) {
        *self = Dag::new();
    }
}
