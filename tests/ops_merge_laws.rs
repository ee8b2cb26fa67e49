//! Property tests of the ops-state merge (`core::ops_merge`, issue 19).
//!
//! * `Replica::merge` is a semilattice join: commutative, associative,
//!   idempotent, on replicas drawn with few keys and few stamps (so ties
//!   between equal stamps are exercised too).
//! * A replica survives its own document unchanged (export, then parse).
//! * Three nodes making random changes with random, partial exchanges
//!   (outages) end up equal after a full exchange, holding for every
//!   switch, agent and rollout the change made last.
//! * Arbitrary text handed to `merge_remote` never panics, and a refused
//!   document changes nothing.

use std::collections::BTreeMap;

use proptest::prelude::*;
use reliability_core::core::ops::{Actor, Brownout, OpsState, Quarantine, Switch};
use reliability_core::core::ops_merge::{Field, Reg, Replica, Replication, Stamp};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn stamp() -> impl Strategy<Value = Stamp> {
    (0u64..4, 0u32..3, prop::sample::select(vec!["a", "b", "c"])).prop_map(|(ms, counter, node)| {
        Stamp {
            ms,
            counter,
            node: node.into(),
        }
    })
}

fn text() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["", "x", "db down", "by b"]).prop_map(String::from)
}

fn switch() -> impl Strategy<Value = Switch> {
    (0u32..3, text(), text()).prop_map(|(since, reason, actor)| Switch {
        since: since as f64,
        reason,
        actor,
    })
}

fn brownout() -> impl Strategy<Value = Brownout> {
    (0u32..=4, switch()).prop_map(|(l, s)| Brownout {
        level: l as f64 / 4.0,
        since: s.since,
        reason: s.reason,
        actor: s.actor,
    })
}

fn quarantine() -> impl Strategy<Value = Quarantine> {
    (switch(), prop::option::of(0u32..3)).prop_map(|(s, e)| Quarantine {
        since: s.since,
        reason: s.reason,
        actor: s.actor,
        expires_at: e.map(|e| 1e15 + e as f64),
    })
}

fn reg<T: std::fmt::Debug + Clone, S: Strategy<Value = T>>(
    value: S,
) -> impl Strategy<Value = Reg<T>> {
    (stamp(), prop::option::of(value)).prop_map(|(at, value)| Reg { at, value })
}

fn replica() -> impl Strategy<Value = Replica> {
    let key = prop::sample::select(vec!["k1", "k2", "k3", "k4"]).prop_map(String::from);
    (
        reg(switch()),
        reg(brownout()),
        prop::collection::btree_map(key.clone(), reg(quarantine()), 0..4),
        prop::collection::btree_map(key, reg(switch()), 0..4),
    )
        .prop_map(|(safe_mode, brownout, quarantine, rolled_back)| Replica {
            safe_mode,
            brownout,
            quarantine,
            rolled_back,
        })
}

fn merged(a: &Replica, b: &Replica) -> Replica {
    let mut m = a.clone();
    m.merge(b);
    m
}

#[derive(Debug, Clone)]
enum Act {
    SafeMode(bool),
    Brownout(Option<u8>),
    Quarantine(u8),
    Release(u8),
    Rollback(u8),
    ClearRollback(u8),
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        any::<bool>().prop_map(Act::SafeMode),
        prop::option::of(0u8..=4).prop_map(Act::Brownout),
        (0u8..6).prop_map(Act::Quarantine),
        (0u8..6).prop_map(Act::Release),
        (0u8..3).prop_map(Act::Rollback),
        (0u8..3).prop_map(Act::ClearRollback),
    ]
}

/// What a node shows, for comparing nodes and the expected outcome.
type View = (Option<String>, Option<f64>, Vec<String>, Vec<String>);

fn view(s: &OpsState, now: f64) -> View {
    (
        s.safe_mode.as_ref().map(|x| x.reason.clone()),
        s.brownout.as_ref().map(|b| b.level),
        s.quarantine_list(now).map(|(k, _)| k.clone()).collect(),
        s.rolled_back.keys().cloned().collect(),
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn merge_is_commutative_associative_and_idempotent(a in replica(), b in replica(), c in replica()) {
        prop_assert_eq!(merged(&a, &b), merged(&b, &a));
        prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
        prop_assert_eq!(merged(&a, &a), a.clone());
        // Merging what one already holds changes nothing and says so.
        let mut m = merged(&a, &b);
        prop_assert!(m.merge(&b).is_empty());
    }

    #[test]
    fn a_replica_document_reads_back_as_the_same_replica(a in replica()) {
        let (back, dropped) = Replica::parse(&a.to_json("a"), 0.0).unwrap();
        prop_assert_eq!(dropped, 0);
        prop_assert_eq!(back, a);
    }

    #[test]
    fn three_nodes_converge_on_the_last_change_of_everything(steps in prop::collection::vec((0usize..3, act(), prop::option::of((0usize..3, 0usize..3))), 1..60)) {
        let who = Actor { name: "op".into(), source: "test".into() };
        let mut nodes: Vec<(OpsState, Replication)> = ["a", "b", "c"].iter().enumerate().map(|(i, n)| (OpsState::new(i as u64), Replication::new(n))).collect();
        // The expected outcome: per register, the last change made anywhere (time only moves forward here).
        let mut safe: Option<String> = None;
        let mut level: Option<f64> = None;
        let mut held: BTreeMap<String, bool> = BTreeMap::new();
        let mut rolled: BTreeMap<String, bool> = BTreeMap::new();
        let mut now = 1_000.0;
        for (i, a, exchange) in steps {
            now += 1.0;
            let (s, r) = &mut nodes[i];
            // Each change is made on what the node currently holds (it may not have heard of
            // others' yet); every accepted action is a write, changed here or not (as the binding does).
            let field = match &a {
                Act::SafeMode(_) => Field::SafeMode,
                Act::Brownout(_) => Field::Brownout,
                Act::Quarantine(k) | Act::Release(k) => Field::Quarantine(format!("q{k}")),
                Act::Rollback(k) | Act::ClearRollback(k) => Field::RolledBack(format!("r{k}")),
            };
            match a {
                Act::SafeMode(on) => {
                    let reason = format!("t{now}");
                    s.set_safe_mode(on, &reason, &who, now).unwrap();
                    safe = on.then_some(reason);
                }
                Act::Brownout(l) => {
                    let l = l.map(|l| l as f64 / 4.0);
                    s.set_brownout(l, &format!("t{now}"), &who, now).unwrap();
                    level = l;
                }
                Act::Quarantine(k) => {
                    s.quarantine(&format!("q{k}"), &format!("t{now}"), None, &who, now).unwrap();
                    held.insert(format!("q{k}"), true);
                }
                Act::Release(k) => {
                    s.release(&format!("q{k}"), &who, now).unwrap();
                    held.insert(format!("q{k}"), false);
                }
                Act::Rollback(k) => {
                    s.record_rollback(&[format!("r{k}")], "", &who, now).unwrap();
                    rolled.insert(format!("r{k}"), true);
                }
                Act::ClearRollback(k) => {
                    s.clear_rollback(&format!("r{k}"));
                    rolled.insert(format!("r{k}"), false);
                }
            }
            r.record_local(s, now);
            r.touch(s, &field, now);
            if let Some((from, to)) = exchange {
                if from != to {
                    let doc = nodes[from].1.export();
                    let (s, r) = &mut nodes[to];
                    r.merge_remote(s, &doc, now).unwrap();
                }
            }
        }
        // Every node hears from every other (twice round: what one merged reaches the rest).
        for _ in 0..2 {
            for from in 0..3 {
                for to in 0..3 {
                    if from != to {
                        let doc = nodes[from].1.export();
                        let (s, r) = &mut nodes[to];
                        r.merge_remote(s, &doc, now).unwrap();
                    }
                }
            }
        }
        prop_assert_eq!(&nodes[0].1.replica, &nodes[1].1.replica);
        prop_assert_eq!(&nodes[1].1.replica, &nodes[2].1.replica);
        let want: View = (
            safe,
            level,
            held.into_iter().filter(|(_, on)| *on).map(|(k, _)| k).collect(),
            rolled.into_iter().filter(|(_, on)| *on).map(|(k, _)| k).collect(),
        );
        for (s, _) in &nodes {
            prop_assert_eq!(view(s, now), want.clone());
        }
    }

    #[test]
    fn arbitrary_documents_never_panic_and_refused_ones_change_nothing(text in ".{0,300}", json_like in r#"\{"format": ?1(, ?"(safeMode|brownout|quarantine|rolledBack)": ?(null|1|"x"|\[\]|\{\}|\{"at": ?\[[0-9]{1,3}, ?[0-9], ?"n"\], ?"value": ?(null|\{\})\}))*\}"#) {
        let mut s = OpsState::new(1);
        let mut r = Replication::new("me");
        s.quarantine("kept", "", None, &Actor::default(), 10.0).unwrap();
        r.record_local(&s, 10.0);
        for doc in [text.as_str(), json_like.as_str()] {
            let before = (r.replica.clone(), view(&s, 11.0));
            if r.merge_remote(&mut s, doc, 11.0).is_err() {
                prop_assert_eq!((r.replica.clone(), view(&s, 11.0)), before);
            }
            prop_assert!(s.quarantined("kept", 11.0).is_some());
        }
    }
}
