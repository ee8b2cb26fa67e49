//! Bindings for the metrics store (`core::metrics`).
//!
//! Hot path: the Express middleware appends `(seriesId, status, durationUs)`
//! for each finished request to a shared `Float64Array` ring (status -1 for a
//! request the client aborted) and Rust drains it in one call when it fills,
//! 250 ms after its first entry (one shared unref'd timer on the JS side), or
//! before any read. So recording a request is three typed-array writes, not a
//! crossing; a crossing with three numbers would cost ~280 ns here.
//!
//! As for breakers, state is thread-local and each copy of the JS wrapper in
//! a thread attaches its own ring as an *instance*; the store is shared.

use std::cell::RefCell;

use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;

use crate::core::error::CoreError;
use crate::core::exphist::Percentiles;
use crate::core::exposition::http;
use crate::core::metrics::Window;
use crate::core::metrics::{MetricsOptions, MetricsStore, Refusal, MAX_SERIES_LIMIT, OTHER};
use crate::napi_util::{borrow_mut, throw, Opts};

/// Requests the ring holds before the JS side forces a drain.
const RING_CAP: usize = 1024;
const RING_LEN: usize = 1 + 3 * RING_CAP;

/// One wrapper copy's ring as the store sees it: a pointer into the
/// `Float64Array` its `MetricsBinding` keeps alive.
struct Attached {
    id: u64,
    ring: *mut f64,
}

struct Binding {
    store: MetricsStore,
    instances: Vec<Attached>,
    /// Route strings refused by `intern` (empty, oversized): recorded as `other`.
    invalid_routes: u64,
    created_at: f64,
    next_id: u64,
}

thread_local! {
    static BINDING: RefCell<Option<Binding>> = const { RefCell::new(None) };
    /// Rings of bindings dropped while the store was borrowed: kept alive
    /// (the store still points into them) until the next borrow detaches them.
    static ORPHANS: RefCell<Vec<(u64, Float64Array)>> = const { RefCell::new(Vec::new()) };
}

impl Binding {
    fn drain(&mut self, now: f64) {
        for inst in &self.instances {
            // SAFETY: `ring` points into a Float64Array of RING_LEN elements kept
            // alive by its `MetricsBinding` (or `ORPHANS`) until it is removed
            // from `instances`; only the JS thread touches it, one side at a time.
            let ring = unsafe { std::slice::from_raw_parts_mut(inst.ring, RING_LEN) };
            let n = (ring[0].max(0.0) as usize).min(RING_CAP);
            ring[0] = 0.0;
            if n > 0 {
                self.store.record_batch(&ring[1..1 + 3 * n], now);
            }
        }
    }

    /// Detaches the rings of bindings dropped while the store was borrowed.
    fn detach_orphans(&mut self) {
        let _ = ORPHANS.try_with(|o| {
            if let Ok(mut o) = o.try_borrow_mut() {
                if o.is_empty() {
                    return;
                }
                let gone: Vec<(u64, Float64Array)> = o.drain(..).collect();
                self.instances
                    .retain(|i| gone.iter().all(|(id, _)| *id != i.id));
                // `gone` drops here, after its pointers left `instances`.
            }
        });
    }
}

/// Runs `f` on this thread's store after applying every buffered request.
fn with<R>(
    env: &Env,
    now: Option<f64>,
    f: impl FnOnce(&mut Binding) -> std::result::Result<R, CoreError>,
) -> Result<R> {
    BINDING.with(|cell| {
        let res = borrow_mut(cell, "the metrics store").and_then(|mut b| match b.as_mut() {
            Some(b) => {
                b.detach_orphans();
                if let Some(now) = now {
                    b.drain(now);
                }
                f(b)
            }
            None => Err(CoreError::not_found(
                "metrics binding",
                "construct a MetricsBinding first",
            )),
        });
        res.map_err(|e| throw(env, e))
    })
}

fn read_options(opts: Option<Unknown>) -> std::result::Result<MetricsOptions, CoreError> {
    let o = Opts::from_unknown(opts, "options")?;
    let mut s = MetricsOptions::default();
    if let Some(v) = o.number(
        "maxSeries",
        &format!("an integer from 0 to {MAX_SERIES_LIMIT}"),
    )? {
        s.max_series = crate::core::error::check::int_in(
            "maxSeries",
            v,
            0,
            crate::core::metrics::MAX_SERIES_LIMIT,
        )?;
    }
    if let Some(v) = o.number("maxWindowBytes", "a number of bytes")? {
        s.max_window_bytes =
            crate::core::error::check::at_least("maxWindowBytes", v, 0.0)? as usize;
    }
    if let Some(b) = o.number_array("buckets", "an array of increasing numbers of seconds")? {
        s.buckets = b;
    }
    s.validate()?;
    Ok(s)
}

/// Requests a ring holds before the JS side must drain it
/// (`MetricsBinding#drain`); a ring is `1 + 3 * metricsRingCap()` elements.
#[napi]
pub fn metrics_ring_cap() -> u32 {
    RING_CAP as u32
}

/// Applies every buffered request of every ring in the thread now (the
/// store is shared, so no binding is needed).
///
/// Why a free function and not a `MetricsBinding` method: it runs on the
/// request path when a ring fills and before every read, and an empty drain
/// measured ~150-210 ns as this free function vs ~440-460 ns as a class
/// method (1e6-call loop, `node` 20, this machine).
///
/// ```ts
/// native.metricsDrain(performance.now());
/// ```
#[napi]
pub fn metrics_drain(env: Env, now: f64) -> Result<()> {
    with(&env, Some(now), |_| Ok(()))
}

/// One copy of the JS wrapper (`lib/metrics.ts`) in this thread: owns its
/// ring and reads the thread's store, which every copy shares (series are
/// shared by name across module copies; `resetAll()` and the scrape read
/// it too). Dropping it (its JS owner collected) detaches the ring.
///
/// Methods cost a class-method crossing; none is per request: the
/// recording path writes the ring only. The one call on the request path
/// (a full ring's drain, once per `metricsRingCap()` requests) stays the free
/// function `metricsDrain`: see there.
///
/// ```ts
/// const ring = new Float64Array(1 + 3 * native.metricsRingCap());
/// const m = new native.MetricsBinding(ring, performance.now());
/// const id = m.intern('GET', '/users/:id');
/// ```
#[napi]
pub struct MetricsBinding {
    id: u64,
    /// Keeps the ring the store points into alive; taken by `Drop`.
    ring: Option<Float64Array>,
}

#[napi]
impl MetricsBinding {
    /// Attaches `ring` (at least `1 + 3 * metricsRingCap()` elements). The first
    /// binding in a thread creates the store with default options.
    #[napi(constructor)]
    pub fn new(env: Env, ring: Float64Array, now: f64) -> Result<Self> {
        if ring.len() < RING_LEN {
            return Err(throw(
                &env,
                CoreError::range("metrics ring", &format!("{RING_LEN} elements"), ring.len()),
            ));
        }
        BINDING.with(|cell| {
            let mut b = borrow_mut(cell, "the metrics store").map_err(|e| throw(&env, e))?;
            if b.is_none() {
                let store = MetricsStore::new(MetricsOptions::default(), now)
                    .map_err(|e| throw(&env, e))?;
                *b = Some(Binding {
                    store,
                    instances: Vec::new(),
                    invalid_routes: 0,
                    created_at: now,
                    next_id: 0,
                });
            }
            let Some(b) = b.as_mut() else {
                return Err(throw(
                    &env,
                    CoreError::not_found("metrics binding", "MetricsBinding"),
                ));
            };
            b.detach_orphans();
            let id = b.next_id;
            b.next_id += 1;
            b.instances.push(Attached {
                id,
                ring: ring.as_ptr() as *mut f64,
            });
            Ok(MetricsBinding {
                id,
                ring: Some(ring),
            })
        })
    }

    /// Replaces the store with one built from `options` (maxSeries, buckets,
    /// maxWindowBytes). Allowed only while no route has been recorded, so no
    /// figure is silently lost.
    #[napi]
    pub fn configure(&self, env: Env, options: Option<Unknown>, now: f64) -> Result<()> {
        // Read the user's object before borrowing the store: a getter or Proxy
        // trap may call back into this module (issue 19).
        let opts = read_options(options);
        with(&env, Some(now), |b| {
            let opts = opts?;
            // The two reserved series (`unmatched`, `other`) always exist.
            let routes = b.store.series_count().saturating_sub(2);
            if routes > 0 {
                return Err(CoreError::range(
                    "configureMetrics",
                    "called before the first route is recorded or interned",
                    format!("{routes} route series already exist"),
                ));
            }
            b.store = MetricsStore::new(opts, now)?;
            Ok(())
        })
    }

    /// The id of (method, route), creating the series (or `other` past the
    /// cap). A route the core refuses (empty, oversized) is counted and
    /// mapped to `other`.
    #[napi]
    pub fn intern(&self, env: Env, method: String, route: String) -> Result<u32> {
        with(&env, None, |b| match b.store.intern(&method, &route) {
            Ok(id) => Ok(id),
            Err(_) => {
                b.invalid_routes += 1;
                Ok(OTHER)
            }
        })
    }

    /// Figures for every window (10s, 1m, 5m, all), pooled over every
    /// series, or over `ids` when given.
    #[napi]
    pub fn windows(&self, env: Env, ids: Option<Vec<u32>>, now: f64) -> Result<Vec<SgWindow>> {
        with(&env, Some(now), |b| windows_of(b, ids.as_deref(), now))
    }

    /// As [`windows`](Self::windows), flat: [`WINDOW_ROW`] numbers per
    /// window, in `Window::ALL` order (10s, 1m, 5m, all). Why: the same as
    /// for [`latency_table`](Self::latency_table); `getEndpointMetrics` and
    /// `getGoldenSignals` build their objects in JS from it, which cut a
    /// `getEndpointMetrics` call from ~15 µs to ~6 µs (100 routes).
    #[napi]
    pub fn window_table(&self, env: Env, ids: Option<Vec<u32>>, now: f64) -> Result<Float64Array> {
        with(&env, Some(now), |b| {
            let ws = windows_of(b, ids.as_deref(), now)?;
            let mut v = Vec::with_capacity(WINDOW_ROW * ws.len());
            for w in &ws {
                let l = &w.latency;
                v.extend([
                    w.requests,
                    w.status4xx,
                    w.status5xx,
                    w.aborted,
                    w.error_rate,
                    w.server_error_rate,
                    w.requests_per_second,
                    w.span_seconds,
                ]);
                v.extend(l.row());
            }
            Ok(v.into())
        })
    }

    /// Latency of every series with traffic over one window, in one call:
    /// the dashboard's view. Each window read is one walk over that series'
    /// running window sum.
    ///
    /// Why flat (labels, then [`LATENCY_ROW`] numbers per series) rather
    /// than an array of `SgSeriesLatency` objects: napi builds an object
    /// property by property, each a crossing that interns its key, and for
    /// 100 series those ~1 500 crossings were most of the read (~0.4 ms of
    /// 0.6); one array of strings and one `Float64Array` are a few hundred,
    /// and `lib/metrics.ts` builds the same objects in JS.
    #[napi]
    pub fn latency_table(&self, env: Env, window: String, now: f64) -> Result<SgLatencyTable> {
        with(&env, Some(now), |b| {
            let w = parse_window(&window)?;
            let ids: Vec<u32> = b.store.series_ids().collect();
            let mut labels = Vec::with_capacity(2 * ids.len());
            let mut values = Vec::with_capacity(LATENCY_ROW * ids.len());
            for id in ids {
                let s = b.store.series_stats(id, w, now)?;
                let (method, route) = b.store.labels(id).unwrap_or_default();
                labels.push(method.to_string());
                labels.push(route.to_string());
                let l = latency(&s.latency);
                values.extend([s.requests as f64]);
                values.extend(l.row());
            }
            Ok(SgLatencyTable {
                labels,
                values: values.into(),
            })
        })
    }

    /// Every series with traffic, in creation order.
    #[napi]
    pub fn series(&self, env: Env, now: f64) -> Result<Vec<SgSeries>> {
        with(&env, Some(now), |b| {
            let ids: Vec<u32> = b.store.series_ids().collect();
            Ok(ids
                .into_iter()
                .filter_map(|id| {
                    b.store.labels(id).map(|(m, r)| SgSeries {
                        id,
                        method: m.to_string(),
                        route: r.to_string(),
                    })
                })
                .collect())
        })
    }

    /// Ids of every series of `route` (any method).
    #[napi]
    pub fn ids_for_route(&self, env: Env, route: String) -> Result<Vec<u32>> {
        with(&env, None, |b| Ok(b.store.ids_for_route(&route)))
    }

    /// The id of (method, route) if it exists.
    #[napi]
    pub fn lookup(&self, env: Env, method: String, route: String) -> Result<Option<u32>> {
        with(&env, None, |b| Ok(b.store.lookup(&method, &route)))
    }

    /// Prometheus text exposition (format 0.0.4) of every series.
    #[napi]
    pub fn prometheus(&self, env: Env, in_flight: f64, now: f64) -> Result<String> {
        with(&env, Some(now), |b| {
            b.store.set_in_flight(in_flight.max(0.0) as u64);
            let mut out = String::with_capacity(16 * 1024);
            http::render_prometheus(&b.store, &mut out);
            Ok(out)
        })
    }

    /// A latency histogram in HDR's compressed base64 interchange format
    /// (V2 + DEFLATE), for one series or pooled; mergeable across processes.
    #[napi]
    pub fn export(&self, env: Env, id: Option<u32>, window: String, now: f64) -> Result<String> {
        with(&env, Some(now), |b| {
            let w = parse_window(&window)?;
            let mut out = String::new();
            b.store.export_latency(id, w, now, &mut out)?;
            Ok(out)
        })
    }

    /// Clears every figure (series ids stay valid).
    #[napi]
    pub fn reset(&self, env: Env, now: f64) -> Result<()> {
        with(&env, Some(now), |b| {
            b.store.reset(now)?;
            b.invalid_routes = 0;
            b.created_at = now;
            Ok(())
        })
    }

    /// Counted reasons for input that was not recorded, and store figures.
    #[napi]
    pub fn diagnostics(&self, env: Env, now: f64) -> Result<SgDiagnostics> {
        with(&env, Some(now), |b| {
            let d = b.store.diagnostics();
            Ok(SgDiagnostics {
                invalid_status: d.invalid_status as f64,
                invalid_duration: d.invalid_duration as f64,
                invalid_time: d.invalid_time as f64,
                unknown_id: d.unknown_id as f64,
                invalid_route: b.invalid_routes as f64,
                series_overflow: d.series_overflow as f64,
                clamped_durations: d.clamped_durations as f64,
                window_memory_exhausted: d.window_memory_exhausted as f64,
                series: b.store.series_count() as u32,
                histogram_bytes: b.store.heap_bytes() as f64,
                uptime_ms: now - b.created_at,
            })
        })
    }

    /// Every (series, reason) with refused requests, all time, in series order.
    #[napi]
    pub fn refused(&self, env: Env, now: f64) -> Result<Vec<SgRefused>> {
        with(&env, Some(now), |b| {
            let mut out = Vec::new();
            for id in 0..b.store.series_count() as u32 {
                let (Some((method, route)), Some(counts)) =
                    (b.store.labels(id), b.store.refused(id))
                else {
                    continue;
                };
                for (r, n) in counts {
                    if n > 0 {
                        out.push(SgRefused {
                            method: method.to_string(),
                            route: route.to_string(),
                            reason: r.as_str().to_string(),
                            count: n as f64,
                        });
                    }
                }
            }
            Ok(out)
        })
    }
}

impl Drop for MetricsBinding {
    /// Detaches the ring before it is freed. Runs in a finalizer: never
    /// panics; if the store is borrowed right now the ring waits in
    /// `ORPHANS` (still alive) until the next borrow detaches it.
    fn drop(&mut self) {
        let Some(ring) = self.ring.take() else { return };
        let id = self.id;
        let detached = BINDING
            .try_with(|cell| match cell.try_borrow_mut() {
                Ok(mut b) => {
                    if let Some(b) = b.as_mut() {
                        b.instances.retain(|i| i.id != id);
                    }
                    true
                }
                Err(_) => false,
            })
            .unwrap_or(true);
        if !detached {
            let _ = ORPHANS.try_with(|o| {
                if let Ok(mut o) = o.try_borrow_mut() {
                    o.push((id, ring));
                } else {
                    // Cannot happen (ORPHANS is borrowed only briefly, never
                    // across JS); leak rather than free memory still pointed at.
                    std::mem::forget(ring);
                }
            });
        }
    }
}

#[napi(object)]
pub struct SgLatency {
    pub count: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
}

/// One window's figures. Latencies in milliseconds.
#[napi(object)]
pub struct SgWindow {
    /// `10s`, `1m`, `5m` or `all`.
    pub window: String,
    pub requests: f64,
    #[napi(js_name = "status4xx")]
    pub status4xx: f64,
    #[napi(js_name = "status5xx")]
    pub status5xx: f64,
    pub aborted: f64,
    /// Share of requests with status >= 400 (the original's definition), 0..1.
    pub error_rate: f64,
    /// Share of requests with status >= 500, 0..1.
    pub server_error_rate: f64,
    /// Requests divided by the time the window actually covers (at least 1 s).
    pub requests_per_second: f64,
    pub span_seconds: f64,
    pub latency: SgLatency,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl SgLatency {
    /// The nine figures in the order the flat tables carry them (count,
    /// min, max, mean, p50, p90, p95, p99, p999), so both tables and
    /// `lib/metrics.ts`'s one reader agree on one order.
    fn row(&self) -> [f64; 9] {
        [
            self.count, self.min, self.max, self.mean, self.p50, self.p90, self.p95, self.p99,
            self.p999,
        ]
    }
}

fn latency(p: &Percentiles) -> SgLatency {
    SgLatency {
        count: p.count as f64,
        min: ms(p.min_us),
        max: ms(p.max_us),
        mean: p.mean_us / 1000.0,
        p50: ms(p.p50_us),
        p90: ms(p.p90_us),
        p95: ms(p.p95_us),
        p99: ms(p.p99_us),
        p999: ms(p.p999_us),
    }
}

fn windows_of(
    b: &mut Binding,
    ids: Option<&[u32]>,
    now: f64,
) -> std::result::Result<Vec<SgWindow>, CoreError> {
    Window::ALL
        .iter()
        .map(|&w| {
            let s = match ids {
                None => b.store.pooled_stats(w, now)?,
                Some(ids) => b.store.stats_for(ids, w, now)?,
            };
            let n = s.requests as f64;
            Ok(SgWindow {
                window: w.as_str().to_string(),
                requests: n,
                status4xx: s.status_4xx as f64,
                status5xx: s.status_5xx as f64,
                aborted: s.aborted as f64,
                error_rate: s.error_rate,
                server_error_rate: s.server_error_rate,
                requests_per_second: s.requests_per_second,
                span_seconds: s.span_seconds,
                latency: latency(&s.latency),
            })
        })
        .collect()
}

#[napi(object)]
pub struct SgSeries {
    pub id: u32,
    pub method: String,
    pub route: String,
}

/// Numbers per window in `MetricsBinding#windowTable`: the [`SgWindow`]
/// fields after `window`, in their order, the latency's as in [`SgLatency`].
pub const WINDOW_ROW: usize = 17;

/// Numbers per series in [`SgLatencyTable::values`]: requests, then the
/// [`SgLatency`] fields in their order (count, min, max, mean, p50, p90,
/// p95, p99, p999).
pub const LATENCY_ROW: usize = 10;

/// Every series' latency over one window (`MetricsBinding#latencyTable`).
#[napi(object)]
pub struct SgLatencyTable {
    /// Method and route of each series, in turn.
    pub labels: Vec<String>,
    /// [`LATENCY_ROW`] numbers per series, in the order of `labels`.
    pub values: Float64Array,
}

/// One series' latency, as `getLatencyPercentiles` returns it (built in
/// JS from an [`SgLatencyTable`]). Rust never builds one: it is here for
/// its TypeScript declaration in `index.d.ts`, the public return type.
#[allow(dead_code)]
#[napi(object)]
pub struct SgSeriesLatency {
    pub method: String,
    pub route: String,
    pub requests: f64,
    pub latency: SgLatency,
}

fn parse_window(w: &str) -> std::result::Result<Window, CoreError> {
    Window::ALL
        .iter()
        .copied()
        .find(|x| x.as_str() == w)
        .ok_or_else(|| CoreError::range("window", "'10s', '1m', '5m' or 'all'", format!("'{w}'")))
}

#[napi(object)]
pub struct SgDiagnostics {
    pub invalid_status: f64,
    pub invalid_duration: f64,
    pub invalid_time: f64,
    pub unknown_id: f64,
    pub invalid_route: f64,
    pub series_overflow: f64,
    pub clamped_durations: f64,
    pub window_memory_exhausted: f64,
    pub series: u32,
    pub histogram_bytes: f64,
    /// Milliseconds (monotonic) since the store was created or reset.
    pub uptime_ms: f64,
}

#[napi(object)]
pub struct SgMerged {
    pub count: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// Merges histograms exported by `sg_export` (this process's or other
/// instances') into one and summarises it in ms: exact merging, not an
/// average of percentiles. Throws (RangeError) on an undecodable one.
#[napi]
pub fn metrics_merge_exports(env: Env, encoded: Vec<String>) -> Result<SgMerged> {
    let mut agg = crate::core::metrics::Aggregate::new();
    for (i, e) in encoded.iter().enumerate() {
        if e.is_empty() {
            continue;
        }
        agg.import(e).map_err(|err| {
            throw(
                &env,
                CoreError::range(
                    &format!("histograms[{i}]"),
                    "an exported HDR histogram",
                    err.message,
                ),
            )
        })?;
    }
    let p = agg.percentiles();
    let ms = |us: u64| us as f64 / 1000.0;
    Ok(SgMerged {
        count: p.count as f64,
        p50: ms(p.p50_us),
        p90: ms(p.p90_us),
        p95: ms(p.p95_us),
        p99: ms(p.p99_us),
        max: ms(p.max_us),
        mean: p.mean_us / 1000.0,
    })
}

/// The refusal codes (`http_requests_refused_total`'s reasons) as the JS
/// side passes them: a refused request's ring status is
/// `status + stride * code`. The ops gate's decisions 1-3 are these codes.
#[napi(object)]
pub struct SgRefusalCodes {
    pub safe_mode: u32,
    pub brownout: u32,
    pub quarantine: u32,
    pub rollout: u32,
    pub stride: u32,
}

#[napi]
pub fn metrics_refusal_codes() -> SgRefusalCodes {
    SgRefusalCodes {
        safe_mode: Refusal::SafeMode.code(),
        brownout: Refusal::Brownout.code(),
        quarantine: Refusal::Quarantine.code(),
        rollout: Refusal::Rollout.code(),
        stride: Refusal::STRIDE,
    }
}

#[napi(object)]
pub struct SgRefused {
    pub method: String,
    pub route: String,
    /// `safe_mode`, `brownout`, `quarantine` or `rollout`.
    pub reason: String,
    pub count: f64,
}

/// Clears every figure and every buffered request of every wrapper copy
/// (for `resetAll()` in tests). Series ids stay valid.
pub(crate) fn reset_all(now: f64) -> std::result::Result<(), CoreError> {
    BINDING.with(|cell| {
        let mut b = borrow_mut(cell, "the metrics store")?;
        let Some(b) = b.as_mut() else { return Ok(()) };
        for inst in &b.instances {
            // SAFETY: as in `Binding::drain`.
            unsafe { *inst.ring = 0.0 };
        }
        b.store.reset(now)?;
        b.invalid_routes = 0;
        b.created_at = now;
        Ok(())
    })
}

/// The HTTP families for a scrape, after applying every buffered request.
/// `native`: with the duration histogram's native buckets (protobuf only).
pub(crate) fn families(
    in_flight: f64,
    now: f64,
    native: bool,
    out: &mut Vec<crate::core::exposition::model::Family>,
) {
    BINDING.with(|cell| {
        if let Ok(mut b) = cell.try_borrow_mut() {
            if let Some(b) = b.as_mut() {
                b.drain(now);
                b.store.set_in_flight(in_flight.max(0.0) as u64);
                out.extend(http::families_with(&b.store, native));
            }
        }
    });
}

/// The package's one "error rate" (`core::metrics::error_rate`): the share
/// of `requests` answered 4xx or 5xx, 0 with none. For figures summed
/// outside the store (the Redis backend's cluster view).
///
/// ```ts
/// native.metricsErrorRate(1, 2, 4); // 0.75
/// ```
#[napi]
pub fn metrics_error_rate(status4xx: f64, status5xx: f64, requests: f64) -> f64 {
    let count = |v: f64| {
        if v.is_finite() && v > 0.0 {
            v as u64
        } else {
            0
        }
    };
    crate::core::metrics::error_rate(count(status4xx), count(status5xx), count(requests))
}

/// Statuses from this one on are errors (`core::metrics::ERROR_STATUS_FROM`):
/// what `errorRate` counts and what a rollout's default `isSuccess` refuses.
#[napi]
pub const ERROR_STATUS_FROM: u32 = crate::core::metrics::ERROR_STATUS_FROM as u32;
