//! The service dependency DAG: which services exist, what each depends on,
//! in what order they start, and how far startup has got.
//!
//! The graph itself (storage, cycles, DFS post-order) is petgraph's. What is
//! ours is the bookkeeping around it:
//!
//! * **All problems at once.** `problems()` lists every missing dependency,
//!   self-dependency and cycle (each with its whole path, `a → b → c → a`),
//!   so a broken `graph.json` is fixed in one pass, not one error per restart.
//! * **Order and levels.** The order is the original's DFS post-order (nodes
//!   in registration order, dependencies in the order listed), so a file that
//!   lists dependencies first starts in file order. The level of a service is
//!   the length of its longest dependency chain; services of one level can
//!   start in parallel.
//! * **The run.** The JS side runs the user's init and health-check callbacks;
//!   this module decides what may start next (`next_runnable`), records each
//!   outcome, and applies the rules: a critical failure aborts startup, a
//!   non-critical one marks its pending dependents degraded at once (the
//!   original made each dependent wait 30 s and then fail).
//!
//! Time is injected as milliseconds.

use std::collections::HashMap;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::DfsPostOrder;

use super::error::{check, CoreError, CoreResult};

pub const DEFAULT_INIT_TIMEOUT_MS: f64 = 30_000.0;
pub const DEFAULT_HEALTH_TIMEOUT_MS: f64 = 5_000.0;
/// Longest id or dependency name accepted (ids end up in logs and JSON).
pub const MAX_ID_LEN: usize = 256;
/// Longest display name accepted.
pub const MAX_NAME_LEN: usize = 1024;
/// Upper bound for init/health timeouts: one day.
pub const MAX_TIMEOUT_MS: f64 = 86_400_000.0;

/// One service as registered.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    pub id: String,
    pub name: String,
    pub dependencies: Vec<String>,
    pub critical: bool,
    pub init_timeout_ms: f64,
    pub health_timeout_ms: f64,
}

impl ServiceSpec {
    /// A spec with the default timeouts.
    pub fn new(id: &str, name: &str, dependencies: &[&str], critical: bool) -> Self {
        ServiceSpec {
            id: id.to_string(),
            name: name.to_string(),
            dependencies: dependencies.iter().map(|d| d.to_string()).collect(),
            critical,
            init_timeout_ms: DEFAULT_INIT_TIMEOUT_MS,
            health_timeout_ms: DEFAULT_HEALTH_TIMEOUT_MS,
        }
    }

    /// Checks every field; `field` prefixes the names in messages (`node.id`).
    pub fn validate(&self, field: &str) -> CoreResult<()> {
        self.validate_with(|| field.to_string())
    }

    /// As `validate`, building the field prefix only when there is an error
    /// (a big graph validates 50,000 dependency names).
    pub fn validate_with(&self, field: impl Fn() -> String) -> CoreResult<()> {
        check_id(|| format!("{}.id", field()), &self.id)?;
        if self.name.chars().count() > MAX_NAME_LEN {
            return Err(CoreError::range(
                &format!("{}.name", field()),
                &format!("a string of at most {MAX_NAME_LEN} characters"),
                format!("{} characters", self.name.chars().count()),
            ));
        }
        for (i, d) in self.dependencies.iter().enumerate() {
            check_id(|| format!("{}.dependencies[{i}]", field()), d)?;
            // Lists are short; a linear scan beats hashing here.
            if self.dependencies[..i].contains(d) {
                return Err(CoreError::range(
                    &format!("{}.dependencies[{i}]", field()),
                    "an id not already listed",
                    format!("a repeat of \"{d}\""),
                ));
            }
        }
        check_timeout(|| format!("{}.timeout", field()), self.init_timeout_ms)?;
        check_timeout(
            || format!("{}.healthCheckTimeout", field()),
            self.health_timeout_ms,
        )?;
        Ok(())
    }
}

fn check_id(field: impl Fn() -> String, id: &str) -> CoreResult<()> {
    // Byte length bounds the char count from above: skip counting short ids.
    let n = if id.len() <= MAX_ID_LEN {
        id.len().min(1)
    } else {
        id.chars().count()
    };
    if n == 0 || n > MAX_ID_LEN {
        let n = id.chars().count();
        return Err(CoreError::range(
            &field(),
            &format!("a non-empty string of at most {MAX_ID_LEN} characters"),
            if n == 0 {
                "an empty string".to_string()
            } else {
                format!("{n} characters")
            },
        ));
    }
    Ok(())
}

fn check_timeout(field: impl Fn() -> String, v: f64) -> CoreResult<()> {
    if !v.is_finite() || v <= 0.0 || v > MAX_TIMEOUT_MS {
        return Err(CoreError::range(
            &field(),
            &format!("a number of ms > 0 and <= {MAX_TIMEOUT_MS}"),
            check::fmt_num(v),
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Initializing,
    Ready,
    Failed,
    /// Not started because a dependency failed (a non-critical one).
    Degraded,
}

impl Status {
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
    Init,
    HealthCheck,
    /// A dependency failed, so the service never started.
    Dependency,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Init => "init",
            Phase::HealthCheck => "health-check",
            Phase::Dependency => "dependency",
        }
    }

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

/// Something that makes the graph unusable. The messages keep the
/// original's wording where it had one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    MissingDependency {
        service: String,
        missing: String,
        /// Why the missing service is absent, when it was skipped on purpose
        /// (e.g. "INIT_SUBSYSTEMS is not 'true'").
        skipped_because: Option<String>,
    },
    SelfDependency {
        service: String,
    },
    /// `path` starts and ends with the same id; each step is "depends on".
    Cycle {
        path: Vec<String>,
    },
}

impl Problem {
    pub fn kind(&self) -> &'static str {
        match self {
            Problem::MissingDependency { .. } => "missing-dependency",
            Problem::SelfDependency { .. } => "self-dependency",
            Problem::Cycle { .. } => "cycle",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Problem::MissingDependency {
                service,
                missing,
                skipped_because: None,
            } => {
                format!("Dependency not found: {missing} (required by {service})")
            }
            Problem::MissingDependency {
                service,
                missing,
                skipped_because: Some(why),
            } => {
                format!("Dependency not found: {missing} (required by {service}); {missing} was skipped because {why}")
            }
            Problem::SelfDependency { service } => format!("Service {service} depends on itself"),
            Problem::Cycle { path } => {
                format!("Circular dependency detected: {}", path.join(" → "))
            }
        }
    }
}

/// Start order and parallel levels, as indices into registration order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub order: Vec<usize>,
    /// `level_of[i]`: 0 for a service with no dependencies, else 1 + the
    /// highest level among its dependencies.
    pub level_of: Vec<u32>,
    /// Services per level, each level in registration order.
    pub levels: Vec<Vec<usize>>,
}

/// Where one service has got to, with the times the report shows.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeState {
    pub status: Status,
    pub started_at: Option<f64>,
    pub finished_at: Option<f64>,
    /// Time between the run starting (or the last dependency becoming ready)
    /// and this service starting: queueing behind the concurrency limit.
    pub wait_ms: Option<f64>,
    pub init_ms: Option<f64>,
    pub health_ms: Option<f64>,
    pub error: Option<String>,
    pub failed_phase: Option<Phase>,
}

impl NodeState {
    fn pending() -> Self {
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
    NotStarted,
    Running,
    /// Every service is ready.
    Ready,
    /// Every critical service is ready; some non-critical ones are not.
    Degraded,
    /// A critical service failed; the message is the original's.
    Failed(String),
}

impl Outcome {
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

/// Marks a dependency on an unknown id in `Resolved`.
const NONE: u32 = u32::MAX;

/// Dependencies as indices, one flat array with per-service offsets.
struct Resolved {
    start: Vec<u32>,
    deps: Vec<u32>,
}

impl Resolved {
    fn of(&self, i: usize) -> &[u32] {
        &self.deps[self.start[i] as usize..self.start[i + 1] as usize]
    }
}

/// FNV-1a: ids are short strings from the app's own configuration, so a
/// fast non-keyed hash is enough (and several times cheaper than SipHash
/// for the 60,000 lookups of a big graph).
#[derive(Default, Clone, Copy)]
pub struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type FnvMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<Fnv>>;

#[derive(Debug, Default)]
pub struct Dag {
    specs: Vec<ServiceSpec>,
    state: Vec<NodeState>,
    index: FnvMap<String, usize>,
    /// Services left out on purpose (conditional), with the reason.
    skipped: HashMap<String, String>,
    // The run; `plan` and `dependents` are fixed when it begins.
    run_started_at: Option<f64>,
    run_finished_at: Option<f64>,
    plan: Option<Plan>,
    dependents: Vec<Vec<usize>>,
    in_flight: usize,
    abort: Option<String>,
}

impl Dag {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.specs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    pub fn spec(&self, i: usize) -> &ServiceSpec {
        &self.specs[i]
    }

    pub fn state(&self, i: usize) -> &NodeState {
        &self.state[i]
    }

    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    pub fn started(&self) -> bool {
        self.run_started_at.is_some()
    }

    /// Adds a service, or replaces the one with the same id (which goes back
    /// to pending), as the original did. Refused once the run has begun.
    pub fn register(&mut self, spec: ServiceSpec) -> CoreResult<usize> {
        if self.started() {
            return Err(CoreError::state(
                "Cannot register nodes after DAG initialization",
            ));
        }
        spec.validate("node")?;
        self.skipped.remove(&spec.id);
        if let Some(&i) = self.index.get(&spec.id) {
            self.specs[i] = spec;
            self.state[i] = NodeState::pending();
            return Ok(i);
        }
        let i = self.specs.len();
        self.index.insert(spec.id.clone(), i);
        self.specs.push(spec);
        self.state.push(NodeState::pending());
        Ok(i)
    }

    /// Records that `id` was left out on purpose, so a dependency on it is
    /// reported with the reason rather than as a typo.
    pub fn skip(&mut self, id: &str, reason: &str) {
        if !self.index.contains_key(id) {
            self.skipped.insert(id.to_string(), reason.to_string());
        }
    }

    /// Every problem in the graph: missing dependencies and self-dependencies
    /// in registration order, then one cycle per strongly connected component.
    pub fn problems(&self) -> Vec<Problem> {
        let r = self.resolve();
        self.problems_of(&r, &self.graph(&r))
    }

    /// Each dependency as an index, resolved once per plan (one hash lookup
    /// per edge), in CSR form: `deps[start[i]..start[i+1]]`, `NONE` for an
    /// unknown id.
    fn resolve(&self) -> Resolved {
        let mut start = Vec::with_capacity(self.specs.len() + 1);
        let mut deps = Vec::with_capacity(self.specs.iter().map(|s| s.dependencies.len()).sum());
        start.push(0);
        for s in &self.specs {
            deps.extend(
                s.dependencies
                    .iter()
                    .map(|d| self.index.get(d).map_or(NONE, |&j| j as u32)),
            );
            start.push(deps.len() as u32);
        }
        Resolved { start, deps }
    }

    fn problems_of(&self, r: &Resolved, g: &DiGraph<(), (), u32>) -> Vec<Problem> {
        let mut out = Vec::new();
        for (i, s) in self.specs.iter().enumerate() {
            for (k, &j) in r.of(i).iter().enumerate() {
                if j as usize == i {
                    out.push(Problem::SelfDependency {
                        service: s.id.clone(),
                    });
                } else if j == NONE {
                    let d = &s.dependencies[k];
                    out.push(Problem::MissingDependency {
                        service: s.id.clone(),
                        missing: d.clone(),
                        skipped_because: self.skipped.get(d).cloned(),
                    });
                }
            }
        }
        let mut cycles: Vec<Vec<usize>> = tarjan_scc(g)
            .into_iter()
            .filter(|scc| scc.len() > 1)
            .map(|scc| {
                let mut members: Vec<usize> = scc.iter().map(|n| n.index()).collect();
                members.sort_unstable();
                self.cycle_through(r, &members)
            })
            .collect();
        // Report cycles in the order their first service was registered.
        cycles.sort_by_key(|c| c[0]);
        out.extend(cycles.into_iter().map(|c| Problem::Cycle {
            path: c.iter().map(|&i| self.specs[i].id.clone()).collect(),
        }));
        out
    }

    /// Edges service → dependency over known services (self-loops left out:
    /// they are reported on their own). Edges are added in reverse listed
    /// order because petgraph walks a node's edges newest first, and the
    /// DFS below must see dependencies in the order they are listed.
    fn graph(&self, r: &Resolved) -> DiGraph<(), (), u32> {
        let mut g = DiGraph::with_capacity(self.specs.len(), r.deps.len());
        for _ in 0..self.specs.len() {
            g.add_node(());
        }
        for i in 0..self.specs.len() {
            for &j in r.of(i) {
                if j != NONE && j as usize != i {
                    g.add_edge(NodeIndex::new(i), NodeIndex::new(j as usize), ());
                }
            }
        }
        g
    }

    /// A cycle inside one strongly connected component (`members` sorted),
    /// from its earliest-registered member back to itself, following
    /// dependencies in listed order: the first cycle a reader would find.
    fn cycle_through(&self, r: &Resolved, members: &[usize]) -> Vec<usize> {
        let start = members[0];
        let in_scc = |j: usize| members.binary_search(&j).is_ok();
        // Iterative DFS keeping the current path; the component is strongly
        // connected, so a way back to `start` exists.
        let mut path = vec![start];
        let mut next_dep = vec![0usize];
        let mut seen = vec![false; self.specs.len()];
        seen[start] = true;
        while let Some(&top) = path.last() {
            let k = next_dep.last_mut().expect("stacks move together");
            let deps = r.of(top);
            if *k >= deps.len() {
                path.pop();
                next_dep.pop();
                continue;
            }
            let j = deps[*k];
            *k += 1;
            if j == NONE {
                continue;
            }
            let j = j as usize;
            if j == start && top != start {
                path.push(start);
                return path;
            }
            if j != top && in_scc(j) && !seen[j] {
                seen[j] = true;
                path.push(j);
                next_dep.push(0);
            }
        }
        // Unreachable for a real component; keep a valid answer anyway.
        vec![start, start]
    }

    /// Order and levels, or every problem that prevents them.
    pub fn plan(&self) -> Result<Plan, Vec<Problem>> {
        let r = self.resolve();
        let g = self.graph(&r);
        let problems = self.problems_of(&r, &g);
        if !problems.is_empty() {
            return Err(problems);
        }
        let n = self.specs.len();
        let mut order = Vec::with_capacity(n);
        let mut dfs = DfsPostOrder::empty(&g);
        for i in 0..n {
            if dfs.discovered.contains(i) {
                continue;
            }
            dfs.move_to(NodeIndex::new(i));
            while let Some(x) = dfs.next(&g) {
                order.push(x.index());
            }
        }
        let mut level_of = vec![0u32; n];
        for &i in &order {
            // Dependencies come earlier in `order`, so their levels are final.
            level_of[i] = r
                .of(i)
                .iter()
                .map(|&j| level_of[j as usize] + 1)
                .max()
                .unwrap_or(0);
        }
        let depth = level_of.iter().max().map_or(0, |&m| m as usize + 1);
        let mut levels = vec![Vec::new(); depth];
        for (i, &l) in level_of.iter().enumerate() {
            levels[l as usize].push(i);
        }
        Ok(Plan {
            order,
            level_of,
            levels,
        })
    }

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

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

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

/// Order and levels for a bare list of `(id, dependencies)`, without
/// keeping any state: the standalone sort (and what the benchmark times).
pub fn plan_of(services: Vec<(String, Vec<String>)>) -> CoreResult<Result<Plan, Vec<Problem>>> {
    let mut dag = Dag::new();
    for (k, (id, deps)) in services.into_iter().enumerate() {
        let spec = ServiceSpec {
            name: String::new(),
            id,
            dependencies: deps,
            critical: false,
            init_timeout_ms: DEFAULT_INIT_TIMEOUT_MS,
            health_timeout_ms: DEFAULT_HEALTH_TIMEOUT_MS,
        };
        spec.validate_with(|| format!("services[{k}]"))?;
        if dag.index.contains_key(&spec.id) {
            return Err(CoreError::range(
                &format!("services[{k}].id"),
                "an id not used by an earlier service",
                format!("\"{}\"", spec.id),
            ));
        }
        let i = dag.specs.len();
        dag.index.insert(spec.id.clone(), i);
        dag.specs.push(spec);
        dag.state.push(NodeState::pending());
    }
    Ok(dag.plan())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dag(nodes: &[(&str, &[&str], bool)]) -> Dag {
        let mut d = Dag::new();
        for (id, deps, critical) in nodes {
            d.register(ServiceSpec::new(id, id, deps, *critical))
                .unwrap();
        }
        d
    }

    fn ids(d: &Dag, v: &[usize]) -> Vec<String> {
        v.iter().map(|&i| d.spec(i).id.clone()).collect()
    }

    fn start(d: &mut Dag, now: f64, max: usize) -> Vec<String> {
        let v = d.next_runnable(now, max);
        ids(d, &v)
    }

    /// The original `deploy/graph.json` with every conditional service on.
    fn original() -> Dag {
        dag(&[
            ("database", &[], true),
            ("event-bus", &["database"], false),
            ("neural-mesh", &["database"], false),
            ("agent-wallet-manager", &["database"], false),
            ("latent-collaboration", &["neural-mesh"], false),
            (
                "runtime-bridge",
                &[
                    "neural-mesh",
                    "agent-wallet-manager",
                    "latent-collaboration",
                ],
                false,
            ),
            ("citadel", &["runtime-bridge"], false),
            ("dreamkeeper", &["runtime-bridge"], false),
            ("drone-dome", &["runtime-bridge"], false),
        ])
    }

    /// The original algorithm, recursively: the reference for the order.
    fn reference_order(d: &Dag) -> Vec<usize> {
        fn visit(d: &Dag, i: usize, seen: &mut Vec<bool>, out: &mut Vec<usize>) {
            if seen[i] {
                return;
            }
            seen[i] = true;
            for dep in &d.spec(i).dependencies {
                visit(d, d.index_of(dep).unwrap(), seen, out);
            }
            out.push(i);
        }
        let mut seen = vec![false; d.len()];
        let mut out = Vec::new();
        for i in 0..d.len() {
            visit(d, i, &mut seen, &mut out);
        }
        out
    }

    #[test]
    fn original_graph_starts_in_file_order_with_five_levels() {
        let d = original();
        let p = d.plan().unwrap();
        assert_eq!(ids(&d, &p.order), ids(&d, &(0..9).collect::<Vec<_>>()));
        let levels: Vec<Vec<String>> = p.levels.iter().map(|l| ids(&d, l)).collect();
        assert_eq!(
            levels,
            vec![
                vec!["database"],
                vec!["event-bus", "neural-mesh", "agent-wallet-manager"],
                vec!["latent-collaboration"],
                vec!["runtime-bridge"],
                vec!["citadel", "dreamkeeper", "drone-dome"],
            ]
        );
    }

    #[test]
    fn order_is_the_originals_dfs_post_order() {
        // Dependencies listed after their dependents and in varied orders.
        let d = dag(&[
            ("app", &["cache", "db", "queue"], false),
            ("queue", &["db", "config"], false),
            ("cache", &["config"], false),
            ("db", &["config"], false),
            ("config", &[], false),
            ("lonely", &[], false),
        ]);
        let p = d.plan().unwrap();
        assert_eq!(p.order, reference_order(&d));
        assert_eq!(
            ids(&d, &p.order),
            ["config", "cache", "db", "queue", "app", "lonely"]
        );
        assert_eq!(p.level_of[0], 3); // app: config(0) → db(1) → queue(2) → app(3)
    }

    #[test]
    fn order_matches_reference_on_pseudo_random_dags() {
        let mut rng = crate::core::rng::SplitMix64::new(7);
        for _ in 0..200 {
            let n = 1 + (rng.next_u64() % 40) as usize;
            // Edges only towards higher numbers keep it acyclic; registration is shuffled.
            let mut names: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                names.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
            }
            let mut d = Dag::new();
            for &k in &names {
                let deps: Vec<String> = ((k + 1)..n)
                    .filter(|_| rng.next_u64().is_multiple_of(4))
                    .map(|j| format!("s{j}"))
                    .collect();
                let deps: Vec<&str> = deps.iter().map(|s| s.as_str()).collect();
                d.register(ServiceSpec::new(&format!("s{k}"), "", &deps, false))
                    .unwrap();
            }
            let p = d.plan().unwrap();
            assert_eq!(p.order, reference_order(&d));
            for (i, &l) in p.level_of.iter().enumerate() {
                for dep in &d.spec(i).dependencies {
                    assert!(p.level_of[d.index_of(dep).unwrap()] < l);
                }
            }
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let d = dag(&[
            ("a", &["b"], false),
            ("b", &["c"], false),
            ("c", &["a", "ghost"], false),
            ("d", &["d"], false),
            ("e", &["f"], false),
            ("f", &["e", "phantom"], false),
        ]);
        let msgs: Vec<String> = d.problems().iter().map(|p| p.message()).collect();
        assert_eq!(
            msgs,
            [
                "Dependency not found: ghost (required by c)",
                "Service d depends on itself",
                "Dependency not found: phantom (required by f)",
                "Circular dependency detected: a → b → c → a",
                "Circular dependency detected: e → f → e",
            ]
        );
        assert_eq!(d.plan().unwrap_err().len(), 5);
    }

    #[test]
    fn cycle_path_follows_listed_dependencies_inside_a_bigger_component() {
        // a→b→c→a and a→c→a share a component; the reported cycle is the first found.
        let d = dag(&[
            ("x", &[], false),
            ("a", &["x", "b", "c"], false),
            ("b", &["c"], false),
            ("c", &["a"], false),
        ]);
        assert_eq!(
            d.problems(),
            vec![Problem::Cycle {
                path: vec!["a".into(), "b".into(), "c".into(), "a".into()]
            }]
        );
    }

    #[test]
    fn skipped_services_are_named_with_their_reason() {
        // The original graph with INIT_SUBSYSTEMS unset: dreamkeeper needs runtime-bridge.
        let mut d = dag(&[
            ("database", &[], true),
            ("dreamkeeper", &["runtime-bridge"], false),
        ]);
        d.skip("runtime-bridge", "INIT_SUBSYSTEMS is not 'true'");
        assert_eq!(
            d.problems()[0].message(),
            "Dependency not found: runtime-bridge (required by dreamkeeper); runtime-bridge was skipped because INIT_SUBSYSTEMS is not 'true'"
        );
    }

    #[test]
    fn a_failed_begin_leaves_the_dag_usable() {
        let mut d = dag(&[("a", &["b"], false)]);
        assert!(d.begin(0.0).is_err());
        assert!(!d.started());
        d.register(ServiceSpec::new("b", "B", &[], false)).unwrap();
        assert_eq!(d.begin(1.0), Ok(true));
        assert_eq!(d.begin(2.0), Ok(false));
        assert_eq!(
            d.register(ServiceSpec::new("c", "C", &[], false))
                .unwrap_err()
                .message,
            "Cannot register nodes after DAG initialization"
        );
    }

    #[test]
    fn runs_level_by_level_within_the_concurrency_limit() {
        let mut d = original();
        d.begin(0.0).unwrap();
        assert_eq!(start(&mut d, 0.0, 2), ["database"]);
        assert!(
            d.next_runnable(1.0, 2).is_empty(),
            "nothing else until the database is ready"
        );
        d.report_ready(0, 10.0, 8.0, 2.0).unwrap();
        let wave = d.next_runnable(10.0, 2);
        assert_eq!(ids(&d, &wave), ["event-bus", "neural-mesh"]);
        assert!(d.next_runnable(10.0, 2).is_empty(), "limit of 2 reached");
        d.report_ready(1, 15.0, 5.0, 0.0).unwrap();
        assert_eq!(start(&mut d, 15.0, 2), ["agent-wallet-manager"]);
        assert_eq!(
            d.state(3).wait_ms,
            Some(5.0),
            "queued 5 ms behind the limit"
        );
        for i in [2, 3] {
            d.report_ready(i, 20.0, 1.0, 1.0).unwrap();
        }
        assert_eq!(start(&mut d, 20.0, 8), ["latent-collaboration"]);
        d.report_ready(4, 21.0, 1.0, 0.0).unwrap();
        assert_eq!(start(&mut d, 21.0, 8), ["runtime-bridge"]);
        d.report_ready(5, 22.0, 1.0, 0.0).unwrap();
        let last = d.next_runnable(22.0, 8);
        assert_eq!(ids(&d, &last), ["citadel", "dreamkeeper", "drone-dome"]);
        assert!(!d.is_finished());
        for i in last {
            d.report_ready(i, 30.0, 8.0, 0.0).unwrap();
        }
        assert!(d.is_finished());
        assert_eq!(d.outcome(), Outcome::Ready);
        assert_eq!(d.state(0).duration_ms(), Some(10.0));
        assert!(d.critical_ready());
    }

    #[test]
    fn non_critical_failure_degrades_dependents_at_once() {
        let mut d = original();
        d.begin(0.0).unwrap();
        d.next_runnable(0.0, 8);
        d.report_ready(0, 1.0, 1.0, 0.0).unwrap();
        d.next_runnable(1.0, 8);
        let e = d
            .report_failed(2, 2.0, "Init timeout: neural-mesh", Phase::Init, None)
            .unwrap();
        assert_eq!(
            ids(&d, &e.degraded),
            [
                "latent-collaboration",
                "runtime-bridge",
                "citadel",
                "dreamkeeper",
                "drone-dome"
            ]
        );
        assert_eq!(e.abort, None);
        assert_eq!(
            d.state(5).error.as_deref(),
            Some("dependency neural-mesh failed")
        );
        assert_eq!(
            d.state(7).error.as_deref(),
            Some("dependency runtime-bridge failed")
        );
        d.report_ready(1, 3.0, 1.0, 0.0).unwrap();
        d.report_ready(3, 3.0, 1.0, 0.0).unwrap();
        assert!(d.next_runnable(3.0, 8).is_empty());
        assert!(d.is_finished());
        assert_eq!(d.outcome(), Outcome::Degraded);
        assert!(d.critical_ready());
        assert_eq!(d.counts(), [0, 0, 3, 1, 5]);
    }

    #[test]
    fn critical_failure_aborts_and_leaves_the_rest_pending() {
        let mut d = original();
        d.begin(0.0).unwrap();
        d.next_runnable(0.0, 8);
        let e = d
            .report_failed(
                0,
                5.0,
                "Health check failed for database",
                Phase::HealthCheck,
                Some(4.0),
            )
            .unwrap();
        assert_eq!(
            e.abort.as_deref(),
            Some(
                "Critical service database failed to initialize: Health check failed for database"
            )
        );
        assert!(d.next_runnable(5.0, 8).is_empty());
        assert!(d.is_finished());
        assert_eq!(
            d.outcome(),
            Outcome::Failed(
                "Critical service database failed to initialize: Health check failed for database"
                    .into()
            )
        );
        assert_eq!(d.counts(), [8, 0, 0, 1, 0]);
        assert!(!d.critical_ready());
    }

    #[test]
    fn a_critical_dependent_of_a_failed_service_aborts_the_run() {
        let mut d = dag(&[("cache", &[], false), ("api", &["cache"], true)]);
        d.begin(0.0).unwrap();
        d.next_runnable(0.0, 4);
        let e = d
            .report_failed(0, 1.0, "ECONNREFUSED", Phase::Init, None)
            .unwrap();
        assert_eq!(
            e.abort.as_deref(),
            Some(
                "Critical service api failed to initialize: dependency cache failed: ECONNREFUSED"
            )
        );
    }

    #[test]
    fn reports_for_services_not_running_are_refused() {
        let mut d = dag(&[("a", &[], false)]);
        d.begin(0.0).unwrap();
        assert_eq!(
            d.report_ready(0, 1.0, 0.0, 0.0).unwrap_err().kind,
            crate::core::error::ErrorKind::State
        );
        assert_eq!(
            d.report_ready(9, 1.0, 0.0, 0.0).unwrap_err().kind,
            crate::core::error::ErrorKind::Range
        );
    }

    #[test]
    fn empty_dag_is_ready_at_once() {
        let mut d = Dag::new();
        d.begin(0.0).unwrap();
        assert!(d.is_finished());
        assert_eq!(d.outcome(), Outcome::Ready);
        assert!(d.critical_ready());
    }

    #[test]
    fn validation_names_the_field() {
        let mut d = Dag::new();
        let e = d
            .register(ServiceSpec::new("", "x", &[], false))
            .unwrap_err();
        assert_eq!(
            e.message,
            "node.id must be a non-empty string of at most 256 characters, got an empty string"
        );
        let mut s = ServiceSpec::new("a", "A", &["b", "b"], false);
        assert!(d
            .register(s.clone())
            .unwrap_err()
            .message
            .starts_with("node.dependencies[1] must be an id not already listed"));
        s.dependencies.pop();
        s.init_timeout_ms = f64::NAN;
        assert_eq!(
            d.register(s).unwrap_err().message,
            "node.timeout must be a number of ms > 0 and <= 86400000, got NaN"
        );
        let long = "x".repeat(300);
        assert!(d.register(ServiceSpec::new(&long, "", &[], false)).is_err());
        assert!(d.is_empty());
    }

    #[test]
    fn plan_of_sorts_ten_thousand_services() {
        let n = 10_000;
        let mut rng = crate::core::rng::SplitMix64::new(1);
        let services: Vec<(String, Vec<String>)> = (0..n)
            .map(|i| {
                let deps = if i == 0 {
                    vec![]
                } else {
                    (0..5)
                        .map(|_| format!("s{}", rng.next_u64() % i as u64))
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .collect()
                };
                (format!("s{i}"), deps)
            })
            .collect();
        let p = plan_of(services).unwrap().unwrap();
        assert_eq!(p.order.len(), n);
        assert_eq!(p.levels.iter().map(|l| l.len()).sum::<usize>(), n);
        let dup = plan_of(vec![("a".into(), vec![]), ("a".into(), vec![])]).unwrap_err();
        assert_eq!(
            dup.message,
            "services[1].id must be an id not used by an earlier service, got \"a\""
        );
    }
}
