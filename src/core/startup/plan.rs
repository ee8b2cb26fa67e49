//! The plan half of the startup DAG: service specs and their validation,
//! the problems that prevent a start (all of them at once), and the order
//! and levels services start in. Nothing here changes once the run begins.

use std::collections::HashMap;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::DfsPostOrder;

use super::{Dag, NodeState};
use crate::core::error::{check, CoreError, CoreResult};
use crate::core::named::check_name;

/// Init timeout when a service gives none: 30 s, as the original.
pub const DEFAULT_INIT_TIMEOUT_MS: f64 = 30_000.0;
/// Health-check timeout when a service gives none: 5 s.
pub const DEFAULT_HEALTH_TIMEOUT_MS: f64 = 5_000.0;
/// Longest display name accepted.
pub const MAX_NAME_LEN: usize = 1024;
/// Upper bound for init/health timeouts: one day.
pub const MAX_TIMEOUT_MS: f64 = 86_400_000.0;

/// One service as registered.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    /// Unique id; dependencies name it.
    pub id: String,
    /// Display name, for logs and the report.
    pub name: String,
    /// Ids of the services that must be ready first, in the order listed.
    pub dependencies: Vec<String>,
    /// A critical failure aborts startup and blocks readiness.
    pub critical: bool,
    /// How long init may take, in ms.
    pub init_timeout_ms: f64,
    /// How long the health check may take, in ms.
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
        // Display names keep their own, longer limit.
        if !crate::core::text::is_clean(&self.name, MAX_NAME_LEN) {
            crate::core::text::check(&format!("{}.name", field()), &self.name, MAX_NAME_LEN, true)?;
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

/// A service id or dependency id: the one name rule ([`check_name`]).
/// The field's name is built only on error (a big graph checks 50,000
/// dependency ids).
fn check_id(field: impl Fn() -> String, id: &str) -> CoreResult<()> {
    // Fast path, a subset the rule accepts: 1..=256 printable ASCII bytes
    // (a byte per character, none forbidden). Everything else gets the rule.
    let printable = id.bytes().all(|b| (0x20..0x7f).contains(&b));
    if printable && !id.is_empty() && id.len() <= crate::core::named::MAX_NAME_CHARS {
        return Ok(());
    }
    check_name(&field(), id)
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

/// Something that makes the graph unusable. The messages keep the
/// original's wording where it had one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A dependency names no registered service.
    MissingDependency {
        /// The service with the dependency.
        service: String,
        /// The id it names.
        missing: String,
        /// Why the missing service is absent, when it was skipped on purpose
        /// (e.g. "INIT_SUBSYSTEMS is not 'true'").
        skipped_because: Option<String>,
    },
    /// A service lists itself.
    SelfDependency {
        /// The service.
        service: String,
    },
    /// A dependency cycle.
    Cycle {
        /// Starts and ends with the same id; each step is "depends on".
        path: Vec<String>,
    },
}

impl Problem {
    /// The kind, as JS sees it: `missing-dependency`, `self-dependency` or `cycle`.
    pub fn kind(&self) -> &'static str {
        match self {
            Problem::MissingDependency { .. } => "missing-dependency",
            Problem::SelfDependency { .. } => "self-dependency",
            Problem::Cycle { .. } => "cycle",
        }
    }

    /// The message a user reads (the original's wording where it had one).
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
    /// Services in start order, dependencies first.
    pub order: Vec<usize>,
    /// `level_of[i]`: 0 for a service with no dependencies, else 1 + the
    /// highest level among its dependencies.
    pub level_of: Vec<u32>,
    /// Services per level, each level in registration order.
    pub levels: Vec<Vec<usize>>,
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

pub(super) type FnvMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<Fnv>>;

impl Dag {
    /// An empty DAG.
    ///
    /// ```
    /// use reliability_core::core::startup::{Dag, ServiceSpec};
    /// let mut d = Dag::new();
    /// d.register(ServiceSpec::new("db", "Database", &[], true)).unwrap();
    /// d.register(ServiceSpec::new("api", "API", &["db"], false)).unwrap();
    /// assert_eq!(d.plan().unwrap().order, [0, 1]);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// How many services are registered.
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// True with no service registered.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// The spec of service `i` (registration order); panics past `len()`, an index the DAG handed out.
    pub fn spec(&self, i: usize) -> &ServiceSpec {
        &self.specs[i]
    }

    /// The index of the service `id`.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
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
