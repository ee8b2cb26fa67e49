//! Bindings for the startup DAG (`core::startup`) and the graph file reader
//! (`core::startup::graph_file`).
//!
//! Nothing here is on a request path: startup runs once. Each DAG is a
//! [`StartupDag`] object owned by one JS `StartupDAG` (every copy of the JS
//! wrapper, e.g. one per test file under jest or vitest, has its own); when
//! the JS object is collected, its DAG is dropped.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;

use crate::core::error::{CoreError, CoreResult};
use crate::core::startup::graph_file;
use crate::core::startup::{self as dag, Dag, Outcome, Phase, Problem, ServiceSpec, Status};
use crate::napi_util::{borrow_mut, throw, Opts};

thread_local! {
    /// Every live DAG, weakly, for the scrape and `resetAll()` only: the JS
    /// object owns its DAG. Dead entries go at the next construction.
    static LIVE: RefCell<Vec<Weak<RefCell<Dag>>>> = const { RefCell::new(Vec::new()) };
}

/// One startup DAG and its run (see `core::startup`).
///
/// Methods take `&self` and borrow the DAG only after every user object is
/// read, so a getter that calls back in gets ERR_REENTRANT, never a second
/// mutable borrow.
///
/// ```ts
/// const d = new native.StartupDag();
/// d.register({ id: 'db', critical: true });
/// d.plan().order; // ['db']
/// ```
#[napi]
pub struct StartupDag {
    inner: Rc<RefCell<Dag>>,
}

impl StartupDag {
    fn with<T>(&self, env: &Env, f: impl FnOnce(&mut Dag) -> CoreResult<T>) -> Result<T> {
        borrow_mut(&self.inner, "the startup DAG")
            .and_then(|mut d| f(&mut d))
            .map_err(|e| throw(env, e))
    }
}

impl Default for StartupDag {
    fn default() -> Self {
        Self::new()
    }
}

#[napi]
impl StartupDag {
    /// A new, empty DAG.
    #[napi(constructor)]
    pub fn new() -> Self {
        let inner = Rc::new(RefCell::new(Dag::new()));
        LIVE.with(|l| {
            if let Ok(mut l) = l.try_borrow_mut() {
                l.retain(|w| w.strong_count() > 0);
                l.push(Rc::downgrade(&inner));
            }
        });
        StartupDag { inner }
    }

    /// Registers (or replaces) a service from the user's node object; reads
    /// `id`, `name`, `dependencies`, `critical`, `timeout`, `healthCheckTimeout`.
    /// Returns its index.
    #[napi]
    pub fn register(&self, env: Env, node: Unknown) -> Result<u32> {
        let spec = (|| -> CoreResult<ServiceSpec> {
            let o = Opts::from_unknown(Some(node), "node")?;
            let id = o.string("id", "a non-empty string")?.ok_or_else(|| {
                CoreError::type_error("node.id", "a non-empty string", "undefined")
            })?;
            let name = o.string("name", "a string")?.unwrap_or_else(|| id.clone());
            Ok(ServiceSpec {
                name,
                dependencies: o
                    .string_array("dependencies", "an array of service ids")?
                    .unwrap_or_default(),
                critical: o.boolean("critical")?.unwrap_or(false),
                init_timeout_ms: o
                    .number("timeout", "a number of ms")?
                    .unwrap_or(dag::DEFAULT_INIT_TIMEOUT_MS),
                health_timeout_ms: o
                    .number("healthCheckTimeout", "a number of ms")?
                    .unwrap_or(dag::DEFAULT_HEALTH_TIMEOUT_MS),
                id,
            })
        })()
        .map_err(|e| throw(&env, e))?;
        self.with(&env, |d| d.register(spec).map(|i| i as u32))
    }

    /// Records a service left out on purpose, with the reason.
    #[napi]
    pub fn skip(&self, env: Env, id: String, reason: String) -> Result<()> {
        self.with(&env, |d| {
            d.skip(&id, &reason);
            Ok(())
        })
    }

    /// The order and levels of the registered services, or their problems.
    #[napi]
    pub fn plan(&self, env: Env) -> Result<DagPlan> {
        self.with(&env, |d| {
            Ok(match d.plan() {
                Ok(p) => DagPlan {
                    order: p.order.iter().map(|&i| d.spec(i).id.clone()).collect(),
                    levels: p
                        .levels
                        .iter()
                        .map(|l| l.iter().map(|&i| d.spec(i).id.clone()).collect())
                        .collect(),
                    problems: vec![],
                },
                Err(ps) => DagPlan {
                    order: vec![],
                    levels: vec![],
                    problems: ps.iter().map(problem).collect(),
                },
            })
        })
    }

    /// Begins the run. Returns the problems that prevent it (empty when it
    /// began, or had already begun).
    #[napi]
    pub fn begin(&self, env: Env, now: f64) -> Result<Vec<DagProblem>> {
        self.with(&env, |d| {
            Ok(d.begin(now)
                .err()
                .map(|ps| ps.iter().map(problem).collect())
                .unwrap_or_default())
        })
    }

    /// Indices of the services to start now (marked initializing).
    #[napi]
    pub fn next(&self, env: Env, now: f64, max_in_flight: u32) -> Result<Vec<u32>> {
        self.with(&env, |d| {
            Ok(d.next_runnable(now, max_in_flight.max(1) as usize)
                .into_iter()
                .map(|i| i as u32)
                .collect())
        })
    }

    /// Records that service `i` initialised and passed its health check.
    #[napi]
    pub fn report_ready(
        &self,
        env: Env,
        i: u32,
        now: f64,
        init_ms: f64,
        health_ms: f64,
    ) -> Result<()> {
        self.with(&env, |d| {
            d.report_ready(i as usize, now, init_ms, health_ms)
        })
    }

    /// Records a failure in `phase` (`'init'` or `'health-check'`).
    #[napi]
    pub fn report_failed(
        &self,
        env: Env,
        i: u32,
        now: f64,
        reason: String,
        phase: String,
        init_ms: Option<f64>,
    ) -> Result<DagFailure> {
        self.with(&env, |d| {
            let phase = Phase::parse("phase", &phase)?;
            let e = d.report_failed(i as usize, now, &reason, phase, init_ms)?;
            Ok(DagFailure {
                degraded: e.degraded.iter().map(|&k| d.spec(k).id.clone()).collect(),
                abort: e.abort,
            })
        })
    }

    /// Everything about the DAG and its run, for `getStatus()`,
    /// `getStartupReport()` and `/api/observability/startup-dag`.
    #[napi]
    pub fn report(&self, env: Env) -> Result<DagReport> {
        self.with(&env, |d| {
            let fresh;
            let (plan, problems) = match d.current_plan() {
                Some(p) => (Some(p), vec![]),
                None => match d.plan() {
                    Ok(p) => {
                        fresh = p;
                        (Some(&fresh), vec![])
                    }
                    Err(ps) => (None, ps.iter().map(problem).collect()),
                },
            };
            let services = (0..d.len())
                .map(|i| {
                    let (s, st) = (d.spec(i), d.state(i));
                    DagService {
                        index: i as u32,
                        id: s.id.clone(),
                        name: s.name.clone(),
                        status: st.status.as_str().to_string(),
                        critical: s.critical,
                        dependencies: s.dependencies.clone(),
                        level: plan.map(|p| p.level_of[i]),
                        timeout: s.init_timeout_ms,
                        health_check_timeout: s.health_timeout_ms,
                        started_at: st.started_at,
                        finished_at: st.finished_at,
                        duration: if st.status == Status::Ready {
                            st.duration_ms()
                        } else {
                            None
                        },
                        wait_ms: st.wait_ms,
                        init_ms: st.init_ms,
                        health_check_ms: st.health_ms,
                        error: st.error.clone(),
                        failed_phase: st.failed_phase.map(|p| p.as_str().to_string()),
                    }
                })
                .collect();
            let [pending, initializing, ready, failed, degraded] = d.counts();
            let outcome = d.outcome();
            let (started_at, finished_at) = d.run_times();
            Ok(DagReport {
                outcome: outcome.as_str().to_string(),
                error: match outcome {
                    Outcome::Failed(m) => Some(m),
                    _ => None,
                },
                started_at,
                finished_at,
                duration: finished_at.zip(started_at).map(|(f, s)| f - s),
                total: d.len() as u32,
                ready: ready as u32,
                failed: failed as u32,
                pending: (pending + initializing) as u32,
                initializing: initializing as u32,
                degraded: degraded as u32,
                critical_ready: d.critical_ready(),
                order: plan
                    .map(|p| p.order.iter().map(|&i| d.spec(i).id.clone()).collect())
                    .unwrap_or_default(),
                levels: plan
                    .map(|p| {
                        p.levels
                            .iter()
                            .map(|l| l.iter().map(|&i| d.spec(i).id.clone()).collect())
                            .collect()
                    })
                    .unwrap_or_default(),
                problems,
                services,
            })
        })
    }

    /// Every critical service is ready (vacuously true with none).
    #[napi]
    pub fn critical_ready(&self, env: Env) -> Result<bool> {
        self.with(&env, |d| Ok(d.critical_ready()))
    }

    /// True once nothing runs and nothing more can start.
    #[napi]
    pub fn finished(&self, env: Env) -> Result<bool> {
        self.with(&env, |d| Ok(d.is_finished()))
    }

    /// Forgets every service and the run.
    #[napi]
    pub fn clear(&self, env: Env) -> Result<()> {
        self.with(&env, |d| {
            d.clear();
            Ok(())
        })
    }
}

#[napi(object)]
pub struct DagProblem {
    pub kind: String,
    pub message: String,
    pub service: Option<String>,
    pub missing: Option<String>,
    pub path: Option<Vec<String>>,
}

fn problem(p: &Problem) -> DagProblem {
    let message = p.message();
    let kind = p.kind().to_string();
    match p {
        Problem::MissingDependency {
            service, missing, ..
        } => DagProblem {
            kind,
            message,
            service: Some(service.clone()),
            missing: Some(missing.clone()),
            path: None,
        },
        Problem::SelfDependency { service } => DagProblem {
            kind,
            message,
            service: Some(service.clone()),
            missing: None,
            path: None,
        },
        Problem::Cycle { path } => DagProblem {
            kind,
            message,
            service: path.first().cloned(),
            missing: None,
            path: Some(path.clone()),
        },
    }
}

#[napi(object)]
pub struct DagPlan {
    /// Service ids in start order (dependencies first).
    pub order: Vec<String>,
    /// Service ids per level; a level's services may start together.
    pub levels: Vec<Vec<String>>,
    /// Every problem that prevents a plan (then `order` and `levels` are empty).
    pub problems: Vec<DagProblem>,
}

#[napi(object)]
pub struct DagFailure {
    /// Ids of the pending dependents now degraded.
    pub degraded: Vec<String>,
    /// The abort message when startup must stop.
    pub abort: Option<String>,
}

#[napi(object)]
pub struct DagService {
    pub index: u32,
    pub id: String,
    pub name: String,
    pub status: String,
    pub critical: bool,
    pub dependencies: Vec<String>,
    pub level: Option<u32>,
    pub timeout: f64,
    pub health_check_timeout: f64,
    /// Epoch ms (the JS side passes wall-clock time).
    pub started_at: Option<f64>,
    pub finished_at: Option<f64>,
    pub duration: Option<f64>,
    pub wait_ms: Option<f64>,
    pub init_ms: Option<f64>,
    pub health_check_ms: Option<f64>,
    pub error: Option<String>,
    pub failed_phase: Option<String>,
}

#[napi(object)]
pub struct DagReport {
    /// `not-started`, `running`, `ready`, `degraded` or `failed`.
    pub outcome: String,
    pub error: Option<String>,
    pub started_at: Option<f64>,
    pub finished_at: Option<f64>,
    pub duration: Option<f64>,
    pub total: u32,
    pub ready: u32,
    pub failed: u32,
    /// Pending and initializing, as the original counted them.
    pub pending: u32,
    pub initializing: u32,
    pub degraded: u32,
    pub critical_ready: bool,
    /// Start order and levels (from the run's plan, or a fresh one).
    pub order: Vec<String>,
    pub levels: Vec<Vec<String>>,
    pub problems: Vec<DagProblem>,
    /// In registration order.
    pub services: Vec<DagService>,
}

#[napi(object)]
pub struct GraphFileService {
    pub id: String,
    pub name: String,
    pub dependencies: Vec<String>,
    pub critical: bool,
    pub init_module: Option<String>,
    pub init_function: Option<String>,
    pub health_check_module: Option<String>,
    pub health_check_function: Option<String>,
    pub conditional: Option<String>,
    pub timeout: Option<f64>,
    pub health_check_timeout: Option<f64>,
}

#[napi(object)]
pub struct GraphFile {
    pub services: Vec<GraphFileService>,
    /// `"$.services[2].id: is required"`, … (empty when the file is valid).
    pub problems: Vec<String>,
}

/// Parses and checks the text of a `graph.json`.
#[napi]
pub fn dag_parse_graph(text: String) -> GraphFile {
    match graph_file::parse_graph(&text) {
        Ok(list) => GraphFile {
            services: list
                .into_iter()
                .map(|s| GraphFileService {
                    id: s.id,
                    name: s.name,
                    dependencies: s.dependencies,
                    critical: s.critical,
                    init_module: s.init_module,
                    init_function: s.init_function,
                    health_check_module: s.health_check_module,
                    health_check_function: s.health_check_function,
                    conditional: s.conditional,
                    timeout: s.timeout_ms,
                    health_check_timeout: s.health_check_timeout_ms,
                })
                .collect(),
            problems: vec![],
        },
        Err(ps) => GraphFile {
            services: vec![],
            problems: ps.iter().map(|p| p.to_string()).collect(),
        },
    }
}

/// Standalone sort: `json` is `[[id, [dep, …]], …]`. Returns the start order
/// as indices into the input, followed by a `-1` separator and the level of
/// each input service: numbers only, so a big graph costs one string in and
/// one typed array out. Throws with every problem when there is no order.
#[napi]
pub fn dag_sort_json(env: Env, json: String) -> Result<Uint32Array> {
    let parsed: std::result::Result<Vec<(String, Vec<String>)>, _> = serde_json::from_str(&json);
    let services = parsed.map_err(|e| {
        throw(
            &env,
            CoreError::type_error("services", "an array of [id, [dependency ids]]", e),
        )
    })?;
    let n = services.len();
    let plan = dag::plan_of(services).map_err(|e| throw(&env, e))?;
    match plan {
        Ok(p) => {
            let mut out = Vec::with_capacity(2 * n + 1);
            out.extend(p.order.iter().map(|&i| i as u32));
            out.push(u32::MAX);
            out.extend(p.level_of.iter().copied());
            Ok(Uint32Array::new(out))
        }
        Err(ps) => {
            let msg = ps
                .iter()
                .map(|p| p.message())
                .collect::<Vec<_>>()
                .join("; ");
            Err(throw(&env, CoreError::state(msg)))
        }
    }
}

/// Every live DAG, for a scrape or a reset (never while one is borrowed:
/// a DAG borrowed elsewhere is left out).
fn live() -> Vec<Rc<RefCell<Dag>>> {
    LIVE.with(|l| {
        l.try_borrow()
            .map(|l| l.iter().filter_map(Weak::upgrade).collect())
            .unwrap_or_default()
    })
}

/// Empties every live startup DAG of this thread in place. For
/// `resetAll()` in tests.
pub(crate) fn reset_all() -> CoreResult<()> {
    for d in live() {
        *borrow_mut(&d, "the startup DAG")? = Dag::new();
    }
    Ok(())
}

/// The startup families of every live DAG of this thread, for a scrape.
pub(crate) fn families(out: &mut Vec<crate::core::exposition::model::Family>) {
    let dags = live();
    let borrowed: Vec<_> = dags.iter().filter_map(|d| d.try_borrow().ok()).collect();
    let refs: Vec<&Dag> = borrowed.iter().map(|d| &**d).collect();
    out.extend(crate::core::exposition::startup::collect(&refs));
}
