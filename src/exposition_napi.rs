//! One crossing per scrape: gathers the families of every registry (HTTP
//! signals, breakers, rollouts, gates, ops, watchdogs) and the process
//! figures JS read, and renders them in the format `Accept` asks for.

use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;

use crate::core::exposition::model::{Family, Kind, Value};
use crate::core::exposition::{negotiate, process};
use crate::napi_util::throw;

thread_local! {
    static LAST_LEN: std::cell::Cell<usize> = const { std::cell::Cell::new(64 * 1024) };
}

#[napi(object)]
pub struct ExScrape {
    pub content_type: String,
    /// The body of a text format (Prometheus text, OpenMetrics).
    pub body: Option<String>,
    /// The body of the protobuf format (with native histograms).
    pub bytes: Option<Buffer>,
}

fn gather(
    in_flight: f64,
    process_values: Option<&[f64]>,
    strings: &[String],
    prefix: &str,
    now: f64,
    native: bool,
) -> std::result::Result<Vec<Family>, crate::core::error::CoreError> {
    let mut fams = Vec::with_capacity(64);
    crate::metrics_napi::families(in_flight, now, native, &mut fams);
    crate::breaker_napi::families(now, &mut fams);
    crate::rollout_napi::families(&mut fams);
    crate::gate_napi::families(&mut fams);
    crate::dag_napi::families(&mut fams);
    crate::ops_napi::families(now, &mut fams);
    crate::watchdog_napi::families(now, &mut fams);
    if let Some(v) = process_values {
        process::check_prefix(prefix)?;
        fams.extend(process::collect(v, strings, prefix)?);
    }
    Ok(fams)
}

/// Every family in the format negotiated from `accept`. `process` (with
/// `strings`) holds the Node process figures in `process::layout`; without
/// it the process families are left out (e.g. prom-client emits them).
#[napi]
pub fn ex_scrape(
    env: Env,
    accept: String,
    in_flight: f64,
    process: Option<Float64Array>,
    strings: Option<Vec<String>>,
    prefix: String,
    now: f64,
) -> Result<ExScrape> {
    let strings = strings.unwrap_or_default();
    let format = negotiate(Some(&accept));
    // Native histogram buckets only for the format that carries them.
    let native = format == crate::core::exposition::Format::Protobuf;
    let fams = gather(
        in_flight,
        process.as_deref(),
        &strings,
        &prefix,
        now,
        native,
    )
    .map_err(|e| throw(&env, e))?;
    // Sized from the last scrape, so the body is not regrown and copied each time.
    let cap = LAST_LEN.with(|c| c.get()) + 4096;
    let content_type = format.content_type().to_string();
    let mut body = String::with_capacity(cap);
    if format.render_text(&fams, &mut body) {
        LAST_LEN.with(|c| c.set(body.len().min(64 << 20)));
        return Ok(ExScrape {
            content_type,
            body: Some(body),
            bytes: None,
        });
    }
    let mut bytes = Vec::with_capacity(cap);
    crate::core::exposition::protobuf::render(&fams, &mut bytes);
    LAST_LEN.with(|c| c.set(bytes.len().min(64 << 20)));
    Ok(ExScrape {
        content_type,
        body: None,
        bytes: Some(bytes.into()),
    })
}

/// The process figures' layout, so JS fills the array without duplicating it.
#[napi(object)]
pub struct ExLayout {
    pub fixed: u32,
    pub gc: u32,
    pub gc_stride: u32,
    pub counts: u32,
    pub gc_buckets: Vec<f64>,
    pub gc_kinds: Vec<String>,
}

#[napi]
pub fn ex_process_layout() -> ExLayout {
    use process::layout::*;
    ExLayout {
        fixed: FIXED as u32,
        gc: GC as u32,
        gc_stride: GC_STRIDE as u32,
        counts: COUNTS as u32,
        gc_buckets: process::GC_BUCKETS.to_vec(),
        gc_kinds: process::GC_KINDS.iter().map(|s| s.to_string()).collect(),
    }
}

/// Every family as JSON in prom-client's `get()` shape (`name`, `help`,
/// `type`, `values: [{ metricName?, labels, value }]`, histograms as their
/// `_bucket`/`_sum`/`_count` values), for `registerWith(promClientRegistry)`.
#[napi]
pub fn ex_families_json(
    env: Env,
    in_flight: f64,
    process: Option<Float64Array>,
    strings: Option<Vec<String>>,
    prefix: String,
    now: f64,
) -> Result<String> {
    let strings = strings.unwrap_or_default();
    // prom-client's shape has no native buckets.
    let fams = gather(in_flight, process.as_deref(), &strings, &prefix, now, false)
        .map_err(|e| throw(&env, e))?;
    let out: Vec<serde_json::Value> = fams.iter().map(prom_client_shape).collect();
    Ok(serde_json::Value::Array(out).to_string())
}

fn prom_client_shape(f: &Family) -> serde_json::Value {
    use serde_json::{json, Map, Value as J};
    let labels = |ls: &[(&'static str, String)], le: Option<J>| {
        let mut m = Map::new();
        for (k, v) in ls {
            m.insert((*k).to_string(), J::String(v.clone()));
        }
        if let Some(le) = le {
            m.insert("le".into(), le);
        }
        J::Object(m)
    };
    // JSON has no infinities; prom-client prints the number it is given.
    let num = |v: f64| serde_json::Number::from_f64(v).map_or(J::Null, J::Number);
    let mut values = Vec::new();
    for s in &f.samples {
        match &s.value {
            Value::Number(v) => {
                values.push(json!({ "labels": labels(&s.labels, None), "value": num(*v) }))
            }
            Value::Histogram(h) => {
                for &(le, c) in &h.buckets {
                    values.push(json!({ "metricName": format!("{}_bucket", f.name), "labels": labels(&s.labels, Some(num(le))), "value": c }));
                }
                values.push(json!({ "metricName": format!("{}_bucket", f.name), "labels": labels(&s.labels, Some(J::String("+Inf".into()))), "value": h.count }));
                values.push(json!({ "metricName": format!("{}_sum", f.name), "labels": labels(&s.labels, None), "value": num(h.sum) }));
                values.push(json!({ "metricName": format!("{}_count", f.name), "labels": labels(&s.labels, None), "value": h.count }));
            }
        }
    }
    let kind = match f.kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
        Kind::Histogram => "histogram",
    };
    json!({ "name": f.name, "help": f.help, "type": kind, "values": values })
}
