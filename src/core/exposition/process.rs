//! Node process metrics with prom-client's `collectDefaultMetrics` names,
//! labels and buckets, so dashboards built on prom-client work unchanged.
//! JavaScript reads the raw figures (`process`, `v8`, `perf_hooks` are only
//! there) into one `Float64Array` laid out as [`layout`] says, plus the
//! strings (version, heap space names, handle and request types); this
//! module turns them into families. Figures that are not finite are left
//! out rather than exposed as garbage.
//!
//! ```
//! use reliability_core::core::exposition::process::{collect, layout};
//! let mut v = vec![0.0; layout::FIXED];
//! v[layout::CPU_USER] = 1.5;
//! let fams = collect(&v, &["v22.1.0".to_string()], "").unwrap();
//! assert!(fams.iter().any(|f| f.name == "process_cpu_seconds_total"));
//! ```

use super::model::{Family, HistogramValue, Kind, Sample, Value};
use crate::core::error::{CoreError, CoreResult};

/// Indexes into the values array.
pub mod layout {
    /// Slot: user CPU seconds.
    pub const CPU_USER: usize = 0;
    /// Slot: system CPU seconds.
    pub const CPU_SYSTEM: usize = 1;
    /// Slot: process start time, Unix seconds.
    pub const START_TIME: usize = 2;
    /// Slot: resident memory, bytes.
    pub const RSS: usize = 3;
    /// First slot of the event-loop lag figures (seconds).
    pub const LAG: usize = 4;
    /// min, max, mean, stddev, p50, p90, p99 of the event-loop delay, seconds.
    pub const LAG_STATS: usize = 5;
    /// Slot: active handles.
    pub const HANDLES: usize = 12;
    /// Slot: active requests.
    pub const REQUESTS: usize = 13;
    /// Slot: V8 heap total, bytes.
    pub const HEAP_TOTAL: usize = 14;
    /// Slot: V8 heap used, bytes.
    pub const HEAP_USED: usize = 15;
    /// Slot: V8 external memory, bytes.
    pub const EXTERNAL: usize = 16;
    /// Per GC kind (major, minor, incremental, weakcb): the cumulative
    /// count of each bucket of [`super::GC_BUCKETS`] (not cumulative over
    /// buckets), then the count and the sum in seconds.
    pub const GC: usize = 17;
    /// Slots per GC kind: its bucket counts, then count and sum.
    pub const GC_STRIDE: usize = super::GC_BUCKETS.len() + 2;
    /// How many heap spaces, handle types and request types follow.
    pub const COUNTS: usize = GC + 4 * GC_STRIDE;
    /// Then 3 values (size, used, available) per heap space, 1 per handle
    /// type, 1 per request type; the names, after the version string, in
    /// the same order.
    pub const FIXED: usize = COUNTS + 3;
}

/// prom-client's default GC duration buckets, seconds.
pub const GC_BUCKETS: [f64; 6] = [0.001, 0.01, 0.1, 1.0, 2.0, 5.0];
/// The `kind` label values of the GC histogram, prom-client's.
pub const GC_KINDS: [&str; 4] = ["major", "minor", "incremental", "weakcb"];

/// Longest prefix accepted (`prefix` option).
pub const MAX_PREFIX_LEN: usize = 64;

/// Checks a family-name prefix: empty, or a valid metric-name start.
pub fn check_prefix(prefix: &str) -> CoreResult<()> {
    let ok = prefix.len() <= MAX_PREFIX_LEN
        && prefix.chars().enumerate().all(|(i, c)| {
            c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
        });
    if ok {
        Ok(())
    } else {
        Err(CoreError::range(
            "prefix",
            &format!("at most {MAX_PREFIX_LEN} characters of [a-zA-Z_:] (digits after the first)"),
            format!("'{}'", prefix.chars().take(80).collect::<String>()),
        ))
    }
}

fn gauge(prefix: &str, name: &str, help: &str, v: f64) -> Option<Family> {
    v.is_finite().then(|| {
        Family::new(format!("{prefix}{name}"), Kind::Gauge, help)
            .with(Sample::new(vec![], Value::Number(v)))
    })
}

fn counter(prefix: &str, name: &str, help: &str, v: f64) -> Option<Family> {
    v.is_finite().then(|| {
        let mut f = Family::new(format!("{prefix}{name}"), Kind::Counter, help)
            .with(Sample::new(vec![], Value::Number(v)));
        f.unit = Some("seconds");
        f
    })
}

/// The families from the raw figures. `strings[0]` is `process.version`.
/// A values array shorter than its own counts say is refused (a wrapper
/// bug, never a request).
pub fn collect(v: &[f64], strings: &[String], prefix: &str) -> CoreResult<Vec<Family>> {
    use layout::*;
    if v.len() < FIXED {
        return Err(CoreError::range(
            "values",
            &format!("at least {FIXED} numbers"),
            v.len().to_string(),
        ));
    }
    let count = |i: usize| {
        if v[i].is_finite() && v[i] >= 0.0 {
            v[i] as usize
        } else {
            0
        }
    };
    let (spaces, handles, requests) = (count(COUNTS), count(COUNTS + 1), count(COUNTS + 2));
    let need = FIXED + 3 * spaces + handles + requests;
    if v.len() < need || strings.len() < 1 + spaces + handles + requests {
        return Err(CoreError::range(
            "values",
            &format!(
                "{need} numbers and {} strings",
                1 + spaces + handles + requests
            ),
            format!("{} and {}", v.len(), strings.len()),
        ));
    }
    let p = prefix;
    let mut out: Vec<Family> = Vec::with_capacity(32);
    out.extend(counter(
        p,
        "process_cpu_user_seconds_total",
        "Total user CPU time spent in seconds.",
        v[CPU_USER],
    ));
    out.extend(counter(
        p,
        "process_cpu_system_seconds_total",
        "Total system CPU time spent in seconds.",
        v[CPU_SYSTEM],
    ));
    out.extend(counter(
        p,
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.",
        v[CPU_USER] + v[CPU_SYSTEM],
    ));
    out.extend(gauge(
        p,
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        v[START_TIME],
    ));
    out.extend(gauge(
        p,
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        v[RSS],
    ));
    out.extend(gauge(
        p,
        "nodejs_eventloop_lag_seconds",
        "Lag of event loop in seconds.",
        v[LAG],
    ));
    for (i, (n, h)) in [
        ("min", "The minimum recorded event loop delay."),
        ("max", "The maximum recorded event loop delay."),
        ("mean", "The mean of the recorded event loop delays."),
        (
            "stddev",
            "The standard deviation of the recorded event loop delays.",
        ),
        (
            "p50",
            "The 50th percentile of the recorded event loop delays.",
        ),
        (
            "p90",
            "The 90th percentile of the recorded event loop delays.",
        ),
        (
            "p99",
            "The 99th percentile of the recorded event loop delays.",
        ),
    ]
    .iter()
    .enumerate()
    {
        out.extend(gauge(
            p,
            &format!("nodejs_eventloop_lag_{n}_seconds"),
            h,
            v[LAG_STATS + i],
        ));
    }
    let mut names = strings[1..].iter();
    let typed =
        |name: &str, help: &str, n: usize, at: usize, names: &mut std::slice::Iter<String>| {
            let mut f = Family::new(format!("{p}{name}"), Kind::Gauge, help);
            for i in 0..n {
                let t = names.next().cloned().unwrap_or_default();
                if v[at + i].is_finite() {
                    f.samples
                        .push(Sample::new(vec![("type", t)], Value::Number(v[at + i])));
                }
            }
            f
        };
    let spaces_at = FIXED;
    let handles_at = spaces_at + 3 * spaces;
    let requests_at = handles_at + handles;
    let space_names: Vec<String> = names.by_ref().take(spaces).cloned().collect();
    out.push(typed("nodejs_active_handles", "Number of active libuv handles grouped by handle type. Every handle type is C++ class name.", handles, handles_at, &mut names));
    out.extend(gauge(
        p,
        "nodejs_active_handles_total",
        "Total number of active handles.",
        v[HANDLES],
    ));
    out.push(typed("nodejs_active_requests", "Number of active libuv requests grouped by request type. Every request type is C++ class name.", requests, requests_at, &mut names));
    out.extend(gauge(
        p,
        "nodejs_active_requests_total",
        "Total number of active requests.",
        v[REQUESTS],
    ));
    out.extend(gauge(
        p,
        "nodejs_heap_size_total_bytes",
        "Process heap size from Node.js in bytes.",
        v[HEAP_TOTAL],
    ));
    out.extend(gauge(
        p,
        "nodejs_heap_size_used_bytes",
        "Process heap size used from Node.js in bytes.",
        v[HEAP_USED],
    ));
    out.extend(gauge(
        p,
        "nodejs_external_memory_bytes",
        "Node.js external memory size in bytes.",
        v[EXTERNAL],
    ));
    for (k, kind) in ["total", "used", "available"].iter().enumerate() {
        let mut f = Family::new(
            format!("{p}nodejs_heap_space_size_{kind}_bytes"),
            Kind::Gauge,
            format!("Process heap space size {kind} from Node.js in bytes."),
        );
        for (i, name) in space_names.iter().enumerate() {
            let x = v[spaces_at + 3 * i + k];
            if x.is_finite() {
                // prom-client's label: the V8 space name without `_space`.
                let space = name.split("_space").next().unwrap_or(name).to_string();
                f.samples
                    .push(Sample::new(vec![("space", space)], Value::Number(x)));
            }
        }
        out.push(f);
    }
    let version = strings[0].clone();
    let mut parts = version.trim_start_matches('v').split('.').map(|s| {
        s.split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap_or("")
            .to_string()
    });
    let (major, minor, patch) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    out.push(
        Family::new(
            format!("{p}nodejs_version_info"),
            Kind::Gauge,
            "Node.js version info.",
        )
        .with(Sample::new(
            vec![
                ("version", version),
                ("major", major),
                ("minor", minor),
                ("patch", patch),
            ],
            Value::Number(1.0),
        )),
    );
    let mut gc = Family::new(
        format!("{p}nodejs_gc_duration_seconds"),
        Kind::Histogram,
        "Garbage collection duration by kind, one of major, minor, incremental or weakcb.",
    );
    gc.unit = Some("seconds");
    for (k, kind) in GC_KINDS.iter().enumerate() {
        let at = GC + k * GC_STRIDE;
        let n = |x: f64| {
            if x.is_finite() && x >= 0.0 {
                x as u64
            } else {
                0
            }
        };
        let count = n(v[at + GC_BUCKETS.len()]);
        if count == 0 {
            continue; // prom-client shows a kind once it has happened
        }
        let mut cumulative = 0;
        let buckets = GC_BUCKETS
            .iter()
            .enumerate()
            .map(|(i, &le)| {
                cumulative += n(v[at + i]);
                (le, cumulative)
            })
            .collect();
        let sum = v[at + GC_BUCKETS.len() + 1];
        gc.samples.push(Sample::new(
            vec![("kind", (*kind).to_string())],
            Value::Histogram(HistogramValue {
                buckets,
                count,
                sum: if sum.is_finite() { sum } else { 0.0 },
                native: None,
            }),
        ));
    }
    out.push(gc);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::layout::*;
    use super::*;

    #[test]
    fn figures_become_prom_client_families() {
        let mut v = vec![0.0; FIXED];
        v[CPU_USER] = 1.25;
        v[CPU_SYSTEM] = 0.5;
        v[HEAP_USED] = f64::NAN;
        let gc = GC + GC_STRIDE; // minor
        v[gc] = 3.0;
        v[gc + 2] = 1.0;
        v[gc + GC_BUCKETS.len()] = 4.0;
        v[gc + GC_BUCKETS.len() + 1] = 0.02;
        v[COUNTS] = 1.0;
        v[COUNTS + 1] = 1.0;
        v.extend([10.0, 6.0, 4.0, 2.0]);
        let s: Vec<String> = ["v20.11.1", "old_space", "TCPServerWrap"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let f = collect(&v, &s, "app_").unwrap();
        let get = |n: &str| {
            f.iter()
                .find(|x| x.name == n)
                .unwrap_or_else(|| panic!("{n}"))
        };
        let num = |n: &str| match get(n).samples[0].value {
            Value::Number(x) => x,
            _ => panic!(),
        };
        assert_eq!(num("app_process_cpu_seconds_total"), 1.75);
        assert!(f
            .iter()
            .all(|x| x.name != "app_nodejs_heap_size_used_bytes"));
        let sp = &get("app_nodejs_heap_space_size_used_bytes").samples[0];
        assert_eq!(sp.labels, vec![("space", "old".to_string())]);
        assert!(matches!(sp.value, Value::Number(x) if x == 6.0));
        let h = &get("app_nodejs_active_handles").samples[0];
        assert_eq!(h.labels, vec![("type", "TCPServerWrap".to_string())]);
        let vi = &get("app_nodejs_version_info").samples[0];
        assert_eq!(
            vi.labels[1..],
            [
                ("major", "20".to_string()),
                ("minor", "11".to_string()),
                ("patch", "1".to_string())
            ]
        );
        let g = get("app_nodejs_gc_duration_seconds");
        assert_eq!(g.samples.len(), 1);
        let Value::Histogram(h) = &g.samples[0].value else {
            panic!()
        };
        assert_eq!(h.buckets[..3], [(0.001, 3), (0.01, 3), (0.1, 4)]);
        assert_eq!(h.count, 4);
        // A short array (counts that promise more than is there) is refused.
        v[COUNTS + 2] = 5.0;
        assert!(collect(&v, &s, "").is_err());
        assert!(check_prefix("9x").is_err() && check_prefix("my_app_").is_ok());
    }
}
