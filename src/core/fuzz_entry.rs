//! The bodies of the fuzz targets (issue 19), one `pub fn` per parser or
//! decoder. `fuzz/fuzz_targets/<name>.rs` (cargo-fuzz, nightly, `npm run
//! fuzz`) calls them with the fuzzer's bytes, and `tests/fuzz_corpus.rs`
//! replays every file of `fuzz/corpus/<name>/` through the same function
//! under plain `cargo test`, so a crash once found stays fixed.
//!
//! Each function takes any bytes and must not panic. Beyond "no panic", each
//! checks the property that makes the parser worth trusting (a panic is
//! how a broken property is reported to the fuzzer):
//! * ops state: a file that loads writes a file that loads back equal, with
//!   nothing dropped; a file that is refused changes nothing;
//! * Redis replica documents: a merged state still saves and loads back
//!   clean, and the replica's own export parses;
//! * HDR import: what imports exports and imports back with the same count;
//! * graph file: what parses can be registered and planned or refused;
//! * option objects: whatever the validators accept builds a working
//!   breaker, rollout, metrics store, watchdog, gate or DAG node.
//!
//! ```
//! reliability_core::core::fuzz_entry::ops_state(br#"{"format":1}"#);
//! ```

use super::backoff::Jitter;
use super::breaker::BreakerRegistry;
use super::breaker::RawBreakerOptions;
use super::gate::{GateSet, GateSpec};
use super::metrics::Aggregate;
use super::metrics::{MetricsOptions, MetricsStore};
use super::ops::OpsState;
use super::ops_merge::{Replica, Replication};
use super::startup::graph_file::parse_graph;
use super::startup::{Dag, ServiceSpec};
use super::traffic_shaping::{Config, RolloutSet, Slo, Step};
use super::watchdog::{Registry as Watchdogs, Thresholds};

/// A target's body: any bytes in, a panic if a property breaks.
pub type Target = fn(&[u8]);

/// The fuzz targets by name: the folder names under `fuzz/corpus/`.
pub const TARGETS: [(&str, Target); 5] = [
    ("graph_file", graph_file),
    ("ops_state", ops_state),
    ("hdr_import", hdr_import),
    ("redis_message", redis_message),
    ("options", options),
];

fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// `deploy/graph.json`: parse, then register every service in a DAG and plan it.
pub fn graph_file(data: &[u8]) {
    let Ok(services) = parse_graph(&text(data)) else {
        return;
    };
    let mut dag = Dag::new();
    for s in services {
        let mut spec = ServiceSpec::new(&s.id, &s.name, &[], s.critical);
        spec.dependencies = s.dependencies;
        let _ = dag.register(spec);
    }
    let _ = dag.plan();
}

/// The ops state file (and `applyState` of a document from Redis): the
/// lenient loader. What loads, saves; what it saves loads back equal.
pub fn ops_state(data: &[u8]) {
    let t = text(data);
    let mut s = OpsState::new(1);
    let before = s.to_json(0.0);
    match s.load_json(&t) {
        Err(_) => assert_eq!(s.to_json(0.0), before, "a refused file changes nothing"),
        Ok(_) => {
            let saved = s.to_json(0.0);
            let mut back = OpsState::new(2);
            let r = back
                .load_json(&saved)
                .unwrap_or_else(|e| panic!("what the plane writes must load: {e:?}\n{saved}"));
            assert!(
                r.dropped.is_empty(),
                "what the plane writes loads back with nothing dropped: {:?}\n{saved}",
                r.dropped
            );
            assert_eq!(back.to_json(0.0), saved, "and equal");
        }
    }
}

/// A base64 HdrHistogram (V2, compressed or not). The first byte chooses
/// how the rest is read: 0 means raw bytes (encoded here, so the fuzzer
/// explores the binary format), anything else means the text as given.
pub fn hdr_import(data: &[u8]) {
    use base64::Engine as _;
    let input = match data.split_first() {
        Some((0, rest)) => base64::engine::general_purpose::STANDARD.encode(rest),
        _ => text(data).into_owned(),
    };
    let mut a = Aggregate::new();
    let Ok(n) = a.import(&input) else {
        return;
    };
    let mut out = String::new();
    a.export(&mut out).expect("an imported histogram exports");
    let mut b = Aggregate::new();
    let m = b.import(&out).expect("an exported histogram imports");
    assert_eq!(m, n, "the re-imported histogram holds the same samples");
}

/// An `rc:ops` replica document as read from Redis: parse it, merge it into
/// a state that holds some controls of its own, then check that the state
/// still saves and loads back clean and the replica's export parses.
pub fn redis_message(data: &[u8]) {
    let t = text(data);
    let _ = Replica::parse_text(&t, 1_000.0);
    let mut ops = OpsState::new(3);
    let mut rep = Replication::new("fuzz-node");
    let actor = super::ops::Actor {
        name: "fuzz".into(),
        source: "test".into(),
    };
    let _ = ops.set_safe_mode(true, "local", &actor, 10.0);
    let _ = ops.quarantine("agent-local", "r", None, &actor, 10.0);
    rep.record_local(&ops, 10.0);
    let _ = rep.merge_remote(&mut ops, &t, 1_000.0);
    let saved = ops.to_json(1_000.0);
    let mut back = OpsState::new(4);
    let r = back
        .load_json(&saved)
        .unwrap_or_else(|e| panic!("a merged state must load: {e:?}\n{saved}"));
    assert!(
        r.dropped.is_empty(),
        "a merged state loads back with nothing dropped: {:?}\n{saved}",
        r.dropped
    );
    let export = rep.export();
    Replica::parse_text(&export, 1_000.0)
        .unwrap_or_else(|e| panic!("the replica's own export must parse: {e:?}\n{export}"));
}

/// Reads option values out of the fuzzer's bytes: each field is absent, an
/// edge value, or any f64 (NaN, infinities and subnormals included).
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn f64(&mut self) -> f64 {
        const EDGES: [f64; 16] = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            2.0,
            5.0,
            100.0,
            100.000_001,
            1000.0,
            1e6,
            9_007_199_254_740_993.0,
            f64::MAX,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        let b = self.byte();
        if b < 128 {
            return EDGES[(b % 16) as usize];
        }
        let mut bits = [0u8; 8];
        for x in &mut bits {
            *x = self.byte();
        }
        f64::from_bits(u64::from_le_bytes(bits))
    }

    fn opt(&mut self) -> Option<f64> {
        if self.byte().is_multiple_of(3) {
            None
        } else {
            Some(self.f64())
        }
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    fn word(&mut self) -> String {
        let n = (self.byte() % 12) as usize;
        (0..n).map(|_| char::from(self.byte() % 96 + 32)).collect()
    }
}

/// The core validators behind the option objects of breakers, rollouts,
/// metrics, watchdogs, gates and DAG nodes, with arbitrary field values.
/// Whatever a validator accepts must then work.
pub fn options(data: &[u8]) {
    let mut f = Fields(data);
    let jitter = match f.byte() % 4 {
        0 => None,
        1 => Some(Jitter::Proportional),
        2 => Some(Jitter::None),
        _ => Jitter::parse("retryOptions.jitter", &f.word()).ok(),
    };
    let raw = RawBreakerOptions {
        failure_threshold: f.opt(),
        error_threshold_percentage: f.opt(),
        volume_threshold: f.opt(),
        rolling_window_ms: f.opt(),
        rolling_buckets: f.opt(),
        reset_timeout_ms: f.opt(),
        half_open_max_attempts: f.opt(),
        half_open_max_calls: f.opt(),
        half_open_success_threshold: f.opt(),
        slow_call_duration_ms: f.opt(),
        slow_call_rate_threshold: f.opt(),
        timeout_ms: f.opt(),
        request_timeout_ms: f.opt(),
        max_retries: f.opt(),
        initial_delay_ms: f.opt(),
        max_delay_ms: f.opt(),
        factor: f.opt(),
        jitter,
        exact_latency: Some(f.byte() & 1 == 1),
    };
    if let Ok(o) = raw.build() {
        let mut reg = BreakerRegistry::new(7);
        reg.get_or_create("b", o, Some(1), 0.0)
            .expect("validated options create a breaker");
    }

    let mut c = Config {
        bp: f.u32(),
        window_ms: f.f64(),
        min_samples: f.u32() as u64,
        auto_rollback: f.byte() & 1 == 1,
        ..Config::default()
    };
    for _ in 0..(f.byte() % 4) {
        c.steps.push(Step {
            bp: f.u32(),
            min_duration_ms: f.f64(),
            min_requests: f.u32() as u64,
        });
    }
    if f.byte() & 1 == 1 {
        c.slo = Some(Slo {
            error_rate: f.opt(),
            latency: f.opt().map(|q| (q, f.f64())),
            availability: f.opt(),
            max_error_rate_increase: f.opt(),
            max_latency_ratio: f.opt(),
            ..Slo::default()
        });
    }
    let mut rollouts = RolloutSet::new();
    if let Ok((id, _)) = rollouts.start("r", c, 0.0) {
        for i in 0..20u32 {
            rollouts.record(id, i % 2 == 0, i % 3 != 0, f.f64(), i as f64 * 1000.0);
        }
        let _ = rollouts.evaluate(id, 1e7);
        let _ = rollouts.set_percentage("r", f.u32(), "fuzz", 1e7);
    }

    let mut s = MetricsOptions {
        max_series: f.u32() % 200_000,
        ..MetricsOptions::default()
    };
    if f.byte() & 1 == 1 {
        s.buckets = (0..(f.byte() % 8)).map(|_| f.f64()).collect();
    }
    if s.validate().is_ok() {
        MetricsStore::new(s, 0.0).expect("validated metrics options build a store");
    }

    let t = Thresholds {
        warn: f.opt(),
        critical: f.opt(),
        hold_ms: f.f64(),
    };
    let kind = ["gauge", "latency", "counter", "other"][(f.byte() % 4) as usize];
    let mut w = Watchdogs::new();
    if let Ok(id) = w.register(kind, "w", t, f.f64(), 0.0) {
        let _ = w.set(id, f.f64(), 1.0);
        let _ = w.record(id, f.f64(), true, 2.0);
        let _ = w.count(id, f.f64(), 3.0);
        let _ = w.step_all(4.0);
        let _ = w.stats(id, 5.0);
    }

    let mut g = GateSpec::new("g", "G", f.byte() & 1 == 1);
    g.required_passes = f.u32();
    g.required_failures = f.u32();
    g.interval_ms = f.f64();
    g.timeout_ms = f.f64();
    let mut gates = GateSet::new();
    if gates.register(g, 0.0).is_ok() {
        let pass = f.byte() & 1 == 1;
        for (i, token) in gates.start_due(1.0) {
            gates.record(i, token, pass, None, 2.0);
        }
        if let Ok(token) = gates.start_now(0, 3.0) {
            gates.record(0, token, !pass, Some("fuzz"), 4.0);
        }
        let _ = gates.expire(1e9);
        let _ = gates.readiness();
    }

    let mut dag = Dag::new();
    let id = f.word();
    let mut spec = ServiceSpec::new(&id, &id, &[], false);
    spec.dependencies = vec![f.word(), f.word()];
    spec.init_timeout_ms = f.f64();
    spec.health_timeout_ms = f.f64();
    let _ = dag.register(spec);
    let _ = dag.plan();
}
