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
        Some("Critical service database failed to initialize: Health check failed for database")
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
        Some("Critical service api failed to initialize: dependency cache failed: ECONNREFUSED")
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
