//! Property tests and bounded fuzzing of the core (issue 12).
//!
//! * State machines: half-open never admits more trials than allowed; a
//!   rollout's cohort for a key never flips while its percentage only rises;
//!   window counts agree with a brute-force recount; readiness is a function
//!   of the gates' states only.
//! * Parsers and config entry points: arbitrary input never panics; it is
//!   either accepted or refused with an error (graph JSON, the ops state
//!   file, HDR histogram import, DAG plans with cycles, rollout and gate
//!   options).

use proptest::prelude::*;
use reliability_core::core::breaker::{Admission, Breaker, BreakerOptions, BreakerOutcome};
use reliability_core::core::gate::{GateSet, GateSpec};
use reliability_core::core::metrics::Aggregate;
use reliability_core::core::ops::{Actor, OpsState};
use reliability_core::core::startup::graph_file::parse_graph;
use reliability_core::core::startup::plan_of;
use reliability_core::core::traffic_shaping::{Config, RolloutSet};
use serde_json::json;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

#[derive(Debug, Clone)]
enum Op {
    Acquire,
    Finish(bool),
    Wait(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![3 => Just(Op::Acquire), 3 => any::<bool>().prop_map(Op::Finish), 1 => (0u16..2000).prop_map(Op::Wait)]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn half_open_never_admits_more_trials_than_allowed(max in 1u32..5, ops in prop::collection::vec(op(), 1..300)) {
        let opts = BreakerOptions { failure_threshold: 2, reset_timeout_ms: 500.0, half_open_max_calls: max, ..BreakerOptions::default() };
        let mut b = Breaker::new(opts, 0.0).unwrap();
        let mut now = 0.0;
        let mut trials: Vec<()> = Vec::new();
        let mut closed_calls = 0u32;
        for o in ops {
            match o {
                Op::Acquire => {
                    let (a, _) = b.try_acquire(now);
                    match a {
                        Admission::AdmitTrial => trials.push(()),
                        Admission::Admit => closed_calls += 1,
                        _ => {}
                    }
                }
                Op::Finish(ok) => {
                    let outcome = if ok { BreakerOutcome::Success } else { BreakerOutcome::Failure };
                    if trials.pop().is_some() {
                        b.on_outcome(outcome, 1.0, now, true);
                    } else if closed_calls > 0 {
                        closed_calls -= 1;
                        b.on_outcome(outcome, 1.0, now, false);
                    }
                }
                Op::Wait(ms) => now += ms as f64,
            }
            prop_assert!(b.half_open_in_flight() <= max, "{} trials in flight, max {}", b.half_open_in_flight(), max);
        }
    }

    #[test]
    fn a_cohort_never_flips_while_the_percentage_only_rises(steps in prop::collection::vec(0u32..=10_000, 1..8), keys in prop::collection::vec("[a-z0-9@.-]{1,24}", 1..60)) {
        let mut steps = steps;
        steps.sort_unstable();
        let mut s = RolloutSet::new();
        let (id, _) = s.start("prop", Config { bp: steps[0], ..Config::default() }, 0.0).unwrap();
        let mut was_in: Vec<bool> = keys.iter().map(|k| s.get(id).unwrap().decide(k)).collect();
        for &bp in &steps[1..] {
            s.set_percentage("prop", bp, "", 0.0).unwrap();
            for (i, k) in keys.iter().enumerate() {
                let now_in = s.get(id).unwrap().decide(k);
                prop_assert!(!was_in[i] || now_in, "{} left the new cohort when the percentage rose to {}", k, bp);
                was_in[i] = now_in;
            }
        }
    }

    #[test]
    fn window_counts_agree_with_a_brute_force_recount(events in prop::collection::vec((0u32..20_000, any::<bool>()), 1..400), probe in 0u32..25_000) {
        let mut events = events;
        events.sort_by_key(|e| e.0);
        let mut s = RolloutSet::new();
        // windowMs 1000 and no burn windows: 5 slices of 200 ms, aligned to 0.
        let (id, _) = s.start("w", Config { window_ms: 1000.0, ..Config::default() }, 0.0).unwrap();
        let now = probe.max(events.last().unwrap().0) as f64;
        for &(t, ok) in &events {
            s.record(id, true, ok, 1.0, t as f64);
        }
        let (req, err, _, _) = s.cohort_window(id, true, 1000.0, now).unwrap();
        let head = (now / 200.0).floor() as i64;
        let live = |t: u32| (t as f64 / 200.0).floor() as i64 > head - 5;
        let br = events.iter().filter(|e| live(e.0)).count() as u64;
        let be = events.iter().filter(|e| live(e.0) && !e.1).count() as u64;
        prop_assert_eq!((req, err), (br, be));
    }

    #[test]
    fn readiness_is_a_function_of_the_gates_states_only(gates in prop::collection::vec((any::<bool>(), 1u32..4, 1u32..4), 1..6), answers in prop::collection::vec((any::<bool>(), 0u8..3), 0..120), shutting in any::<bool>()) {
        let mut set = GateSet::new();
        for (i, &(critical, passes, failures)) in gates.iter().enumerate() {
            let mut g = GateSpec::new(&format!("g{i}"), "", critical);
            g.required_passes = passes;
            g.required_failures = failures;
            g.interval_ms = 100.0;
            set.register(g, 0.0).unwrap();
        }
        let mut now = 0.0;
        for (pass, action) in answers {
            now += 50.0;
            match action {
                0 => {
                    for (g, t) in set.start_due(now) {
                        set.record(g, t, pass, None, now + 1.0);
                    }
                }
                1 => { set.expire(now + 10_000.0); }
                _ => { let _ = set.readiness(); }
            }
        }
        set.set_shutting_down(shutting);
        let r = set.readiness();
        let critical_ready = set.gates().all(|g| !g.spec.critical || g.ready);
        prop_assert_eq!(r.critical_ready, critical_ready);
        prop_assert_eq!(r.ready, critical_ready && !shutting);
        prop_assert_eq!(r.all_ready, set.gates().all(|g| g.ready));
        prop_assert_eq!(r.degraded, set.gates().any(|g| !g.spec.critical && !g.ready));
        // Reading twice changes nothing.
        prop_assert_eq!(set.readiness(), r);
    }

    #[test]
    fn graph_json_never_panics(text in ".{0,400}") {
        let _ = parse_graph(&text);
    }

    #[test]
    fn structured_graph_json_never_panics(ids in prop::collection::vec("[a-c]{0,2}", 0..8), deps in prop::collection::vec(prop::collection::vec(0usize..8, 0..4), 0..8), extra in any::<bool>()) {
        let services: Vec<String> = ids.iter().enumerate().map(|(i, id)| {
            let d: Vec<String> = deps.get(i).map(|v| v.iter().map(|&j| format!("\"{}\"", ids.get(j).cloned().unwrap_or_default())).collect()).unwrap_or_default();
            format!("{{\"id\":\"{id}\",\"name\":\"n\",\"dependencies\":[{}]{}}}", d.join(","), if extra { ",\"critical\":1" } else { "" })
        }).collect();
        let text = format!("{{\"services\":[{}]}}", services.join(","));
        if let Ok(list) = parse_graph(&text) {
            // Whatever parses can be planned or refused, never panic.
            let _ = plan_of(list.into_iter().map(|s| (s.id, s.dependencies)).collect());
        }
    }

    #[test]
    fn dag_plans_of_random_graphs_never_panic(edges in prop::collection::vec((0usize..30, 0usize..30), 0..120), n in 1usize..30) {
        let mut services: Vec<(String, Vec<String>)> = (0..n).map(|i| (format!("s{i}"), vec![])).collect();
        for (a, b) in edges {
            let (a, b) = (a % n, b % 40);
            let d = format!("s{b}");
            if !services[a].1.contains(&d) {
                services[a].1.push(d);
            }
        }
        match plan_of(services.clone()) {
            Ok(Ok(plan)) => {
                prop_assert_eq!(plan.order.len(), n);
                let pos: Vec<usize> = { let mut p = vec![0; n]; for (i, &x) in plan.order.iter().enumerate() { p[x] = i; } p };
                for (i, (_, deps)) in services.iter().enumerate() {
                    for d in deps {
                        let j: usize = d[1..].parse().unwrap();
                        prop_assert!(pos[j] < pos[i]);
                    }
                }
            }
            Ok(Err(problems)) => prop_assert!(!problems.is_empty()),
            Err(_) => {}
        }
    }

    #[test]
    fn ops_state_files_never_panic_and_bad_ones_change_nothing(text in ".{0,300}") {
        let mut s = OpsState::new(1);
        let before = s.to_json(0.0);
        if s.load_json(&text).is_err() {
            prop_assert_eq!(s.to_json(0.0), before);
        }
    }

    /// Issue 19: anything the plane can write, it loads back: a random run of
    /// operator actions, drains, refusals and applied CLI commands, with any
    /// Unicode (controls, U+0085, bidi, very long) in every text the caller
    /// gives, saves to a file that loads into an equal state with nothing dropped.
    #[test]
    fn whatever_the_plane_writes_loads_back_equal(steps in prop::collection::vec(ops_step(), 1..40)) {
        let mut s = OpsState::new(1);
        let mut now = 1_700_000_000_000.0;
        for st in &steps {
            now += 1000.0;
            apply_step(&mut s, st, now);
        }
        let text = s.to_json(now);
        let mut t = OpsState::new(2);
        let report = t.load_json(&text).expect("the plane's own file is a state file");
        prop_assert!(report.is_empty(), "{:?}", report);
        let strip = |x: &str| { let mut v: serde_json::Value = serde_json::from_str(x).unwrap(); v["version"] = json!(0); v };
        prop_assert_eq!(strip(&t.to_json(now)), strip(&text));
        // Sequence numbers continue above every saved one.
        let max_seq = t.audit_view(100_000).iter().filter_map(|e| e["seq"].as_u64()).max().unwrap_or(0);
        t.push_audit(now, "x", json!({}), &Actor::default(), String::new());
        prop_assert!(t.audit().last().unwrap().seq > max_seq);
    }

    #[test]
    fn hdr_imports_never_panic(text in "[A-Za-z0-9+/=]{0,200}") {
        let mut a = Aggregate::new();
        let _ = a.import(&text);
    }

    #[test]
    fn rollout_and_gate_options_are_validated_without_panics(bp in any::<u32>(), window in any::<f64>(), min in any::<u64>(), passes in any::<u32>(), interval in any::<f64>()) {
        let mut s = RolloutSet::new();
        let _ = s.start("x", Config { bp, window_ms: window, min_samples: min, ..Config::default() }, 0.0);
        let mut g = GateSpec::new("g", "G", true);
        g.required_passes = passes;
        g.interval_ms = interval;
        let _ = GateSet::new().register(g, 0.0);
    }
}

/// Any text, often hostile: any Unicode scalar (controls included), short or
/// past every limit.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::collection::vec(any::<char>(), 0..12).prop_map(String::from_iter),
        2 => prop::sample::select(vec!["alice", "10.0.0.1\u{85}x", "a\nb", "\u{202e}gnp.exe", "x\u{200b}y", "", "agent-1", "\t"]).prop_map(String::from),
        1 => (prop::collection::vec(any::<char>(), 0..4), 250usize..800).prop_map(|(c, n)| { let base: String = c.into_iter().collect(); format!("{base}{}", "y".repeat(n)) }),
    ]
}

#[derive(Debug, Clone)]
enum Step {
    Safe(bool, String, String, String),
    Brown(Option<f64>, String, String, String),
    Quarantine(String, String, Option<f64>, String),
    Release(String, String),
    Rollback(Vec<String>, String, String),
    Drain(String, String, String, String),
    Refusal(String, String, String),
    Applied(String, String, String),
}

fn ops_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (any::<bool>(), any_text(), any_text(), any_text())
            .prop_map(|(a, b, c, d)| Step::Safe(a, b, c, d)),
        (
            prop::option::of(0.0f64..=1.0),
            any_text(),
            any_text(),
            any_text()
        )
            .prop_map(|(a, b, c, d)| Step::Brown(a, b, c, d)),
        (
            any_text(),
            any_text(),
            prop::option::of(1.0f64..1e9),
            any_text()
        )
            .prop_map(|(a, b, c, d)| Step::Quarantine(a, b, c, d)),
        (any_text(), any_text()).prop_map(|(a, b)| Step::Release(a, b)),
        (
            prop::collection::vec(any_text(), 0..3),
            any_text(),
            any_text()
        )
            .prop_map(|(a, b, c)| Step::Rollback(a, b, c)),
        (any_text(), any_text(), any_text(), any_text())
            .prop_map(|(a, b, c, d)| Step::Drain(a, b, c, d)),
        (any_text(), any_text(), any_text()).prop_map(|(a, b, c)| Step::Refusal(a, b, c)),
        ("[A-Za-z0-9_-]{1,64}|.{0,10}", any_text(), any_text())
            .prop_map(|(a, b, c)| Step::Applied(a, b, c)),
    ]
}

fn apply_step(s: &mut OpsState, st: &Step, now: f64) {
    let who = |a: &String, src: &str| Actor {
        name: a.clone(),
        source: src.to_string(),
    };
    // Operator input may be refused (a RangeError in JS); the rest must be written loadable.
    let _ = match st {
        Step::Safe(on, r, a, src) => s.set_safe_mode(*on, r, &who(a, src), now).map(|_| ()),
        Step::Brown(l, r, a, src) => s.set_brownout(*l, r, &who(a, src), now).map(|_| ()),
        Step::Quarantine(id, r, ttl, a) => {
            s.quarantine(id, r, *ttl, &who(a, "local"), now).map(|_| ())
        }
        Step::Release(id, a) => s.release(id, &who(a, ""), now).map(|_| ()),
        Step::Rollback(n, r, a) => s.record_rollback(n, r, &who(a, ""), now).map(|_| ()),
        Step::Drain(q, err, a, src) => {
            s.push_audit(
                now,
                "drain-dlq",
                json!({ "queue": q, "limit": 10 }),
                &who(a, src),
                format!("error: {err}"),
            );
            Ok(())
        }
        Step::Refusal(action, src, why) => {
            s.record_refusal(now, action, src, why);
            Ok(())
        }
        Step::Applied(id, by, res) => s.mark_applied(id, by, res, now),
    };
}
