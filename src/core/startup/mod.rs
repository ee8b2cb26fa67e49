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
//!
//! [`plan`] holds what is fixed before the run (specs, validation,
//! problems, order and levels); [`run`] holds the run's bookkeeping;
//! [`graph_file`] reads a `graph.json` into specs. One [`Dag`] holds both
//! halves, since replacing a service resets its run state.

use std::collections::HashMap;

pub mod graph_file;
pub mod plan;
pub mod run;

pub use plan::{
    plan_of, Fnv, Plan, Problem, ServiceSpec, DEFAULT_HEALTH_TIMEOUT_MS, DEFAULT_INIT_TIMEOUT_MS,
    MAX_NAME_LEN, MAX_TIMEOUT_MS,
};
pub use run::{FailureEffect, NodeState, Outcome, Phase, Status};

use plan::FnvMap;

/// The services, their plan and their run (see the module docs).
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

#[cfg(test)]
mod tests;
