//! Golden signals per route: traffic, errors and latency per (method, route
//! template), plus requests in flight, over 10 s, 1 min, 5 min and all time.
//!
//! Series are interned to small ids once (at route registration, or on a
//! route's first request) so the hot path passes a number, not two strings.
//! The number of series is capped because every series costs memory (see
//! `windows` for the figures) and every series is a Prometheus time series:
//! a route template built from raw URLs would otherwise grow without bound.
//! Past the cap new keys share the `other` series, and the overflow is counted
//! so it shows up instead of silently lumping traffic together.
//!
//! Nothing here panics on bad input from the caller: a status outside
//! 100..=599, a duration that is NaN, negative or infinite, a non-finite time
//! or an unknown id is not recorded and is counted under a named [`Reason`].
//! Counters live in the same lazily rotated slices as the latency histograms
//! ([`SliceRing`](crate::core::time_ring::SliceRing)), so both agree on what "the last minute" is.
//!
//! # Memory
//!
//! Per series: the latency histograms (see `windows`: at most 325 280
//! bytes, 20 histograms of 2 033 u64 counts, of which 309 016 in the 16
//! window slices and 3 running sums; 204 160 when every latency stays under
//! 1 s), the series struct, 16
//! counter slices of 48 bytes, Prometheus bucket counters and the label
//! strings (about three times the route's length). A series that has had no
//! traffic yet costs under 2 KB. Allocations, once made, are kept and reused
//! until the store is dropped.
//!
//! The window slices of all series together are capped by
//! [`MetricsOptions::max_window_bytes`] (default 64 MiB). A series whose
//! slices would take the total past it loses its window latency: its slices
//! are freed, its window percentiles read count 0 until [`MetricsStore::reset`],
//! and each sample it records meanwhile is counted in
//! [`Diagnostics::window_memory_exhausted`]. Its counts, rates, all-time
//! latency and Prometheus output are unaffected. Pooled figures keep no
//! histograms of their own: they are summed and merged from the series.
//!
//! So with the default cap of 1000 series the worst case, an hour-long
//! request in every slice of every series, is about 1000 × 16 264 bytes all
//! time (16 MB) + 64 MiB of window histograms + about 1 MB of counters and
//! structs: about 84 MB. Uncapped (`max_window_bytes` at its limit) it
//! would be 1000 × 325 280 ≈ 325 MB. With every latency under 1 s the
//! 64 MiB give about 346 series their windows. Lower `max_series` if the
//! all-time part is too much for the host: `max_window_bytes` does not cap it.
//!
//! ```
//! use reliability_core::core::exposition::http;
//! use reliability_core::core::metrics::{MetricsOptions, MetricsStore, Window};
//! let mut s = MetricsStore::new(MetricsOptions::default(), 0.0).unwrap();
//! let id = s.intern("GET", "/users/:id").unwrap();
//! s.record(id, 200, 1_500.0, 10.0).unwrap();
//! s.record(id, 503, 80_000.0, 20.0).unwrap();
//! let st = s.series_stats(id, Window::TenSeconds, 1_000.0).unwrap();
//! assert_eq!((st.requests, st.status_5xx, st.server_error_rate), (2, 1, 0.5));
//! let mut text = String::new();
//! http::render_prometheus(&s, &mut text);
//! assert!(text.contains(r#"http_requests_total{method="GET",route="/users/:id",status_class="5xx"} 1"#));
//! ```

use std::collections::HashMap;

use super::budget::WindowBudget;
use super::diagnostics::{Diagnostics, Reason};
use super::options::*;
use super::refusal::Refusal;
use super::series::{Scratch, Series, Tally};
use super::stats::WindowStats;
use super::windows::{Recorded, Window};
use crate::core::error::{check, CoreError, CoreResult};

/// A series id from [`MetricsStore::intern`].
pub type SeriesId = u32;

/// The series for requests that matched no route; the caller decides which those are.
pub const UNMATCHED: SeriesId = 0;
/// The series every key past the cardinality cap shares.
pub const OTHER: SeriesId = 1;
/// Labels of the two reserved series. Route templates start with "/", so
/// these do not collide with a real route; interning them returns the
/// reserved ids, so no two series ever carry the same labels.
pub const RESERVED_METHOD: &str = "*";
/// Route label of the series of requests no route matched.
pub const UNMATCHED_ROUTE: &str = "unmatched";
/// Route label of the series every key past the cap shares.
pub const OTHER_ROUTE: &str = "other";
/// The route label of a request refused before routing that no route would have matched.
pub const REFUSED_ROUTE: &str = "refused";

/// A Prometheus bucket bound, in seconds.
#[derive(Debug, Clone)]
pub(crate) struct Bound {
    /// The bound, seconds.
    pub(crate) seconds: f64,
}

/// The golden signals of every (method, route) series, capped; see the module docs.
pub struct MetricsStore {
    max_series: usize,
    bounds: Vec<Bound>,
    /// The same bounds in µs, searched on every record.
    bounds_us: Vec<u64>,
    series: Vec<Series>,
    /// method → route → id: two levels so a lookup borrows both strings
    /// instead of allocating a key.
    ids: HashMap<Box<str>, HashMap<Box<str>, SeriesId>>,
    /// Keeps no counts or histograms: pooled figures are summed and merged
    /// from the series when read (reads are rare, requests are not), which
    /// halves the work per request. It only gives the windows' spans.
    pooled: Series,
    in_flight: u64,
    diag: Diagnostics,
    /// What every series' window slices draw on (the pooled series' aside).
    budget: WindowBudget,
    /// The scratch histograms every read merges into.
    scratch: Scratch,
    /// Reused by `stats_for` to deduplicate ids without allocating per read.
    id_scratch: Vec<SeriesId>,
    /// Reused by `record_batch` to apply a batch grouped by series.
    batch_order: Vec<u64>,
    /// Creation or reset time.
    origin: f64,
}

impl MetricsStore {
    /// A store with `opts` (validated) whose windows start at `now` (ms).
    pub fn new(opts: MetricsOptions, now: f64) -> CoreResult<Self> {
        opts.validate()?;
        check_now(now)?;
        let bounds = opts.buckets.iter().map(|&s| Bound { seconds: s }).collect();
        let bounds_us: Vec<u64> = opts
            .buckets
            .iter()
            .map(|&s| (s * 1e6).round() as u64)
            .collect();
        let n_bounds = bounds_us.len();
        let mut store = MetricsStore {
            max_series: opts.max_series as usize,
            bounds,
            bounds_us,
            series: Vec::new(),
            ids: HashMap::new(),
            pooled: Series::new(RESERVED_METHOD, "", now, n_bounds),
            in_flight: 0,
            diag: Diagnostics::default(),
            budget: WindowBudget::new(opts.max_window_bytes),
            scratch: Scratch::new(),
            id_scratch: Vec::new(),
            batch_order: Vec::new(),
            origin: now,
        };
        store.insert(RESERVED_METHOD, UNMATCHED_ROUTE);
        store.insert(RESERVED_METHOD, OTHER_ROUTE);
        Ok(store)
    }

    /// The id of (method, route), creating the series if it is new and the
    /// cap allows; past the cap, `OTHER`. Strings are taken as they are (no
    /// case folding): the caller passes the method as Node gives it and the
    /// route template, never the raw URL.
    pub fn intern(&mut self, method: &str, route: &str) -> CoreResult<SeriesId> {
        check_label("method", method, MAX_METHOD_LEN)?;
        check_label("route", route, MAX_ROUTE_LEN)?;
        if let Some(id) = self.lookup(method, route) {
            return Ok(id);
        }
        if self.series.len() - 2 >= self.max_series {
            self.diag.series_overflow += 1;
            return Ok(OTHER);
        }
        Ok(self.insert(method, route))
    }

    /// The id of an existing series, without creating one.
    pub fn lookup(&self, method: &str, route: &str) -> Option<SeriesId> {
        self.ids
            .get(method)
            .and_then(|routes| routes.get(route))
            .copied()
    }

    fn insert(&mut self, method: &str, route: &str) -> SeriesId {
        let id = self.series.len() as SeriesId;
        self.series.push(Series::new(
            method,
            route,
            self.origin,
            self.bounds_us.len(),
        ));
        self.ids
            .entry(method.into())
            .or_default()
            .insert(route.into(), id);
        id
    }

    /// (method, route) of a series.
    pub fn labels(&self, id: SeriesId) -> Option<(&str, &str)> {
        self.series
            .get(id as usize)
            .map(|s| (&*s.method, &*s.route))
    }

    /// Series held, the two reserved ones included.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Every series id in creation order: the interned ones always, the two
    /// reserved ones only once they have had traffic (since creation or
    /// reset), so a listing does not show `unmatched` and `other` at zero.
    pub fn series_ids(&self) -> impl Iterator<Item = SeriesId> + '_ {
        self.series
            .iter()
            .enumerate()
            .filter(|(id, s)| *id > OTHER as usize || s.has_traffic())
            .map(|(id, _)| id as SeriesId)
    }

    /// Every series whose route label is `route`, whatever its method, in
    /// creation order. Empty for a route never interned.
    pub fn ids_for_route(&self, route: &str) -> Vec<SeriesId> {
        let mut ids: Vec<SeriesId> = self
            .ids
            .values()
            .filter_map(|routes| routes.get(route).copied())
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Records a completed request. On `Err` nothing was recorded and the
    /// reason was counted. Durations above one hour are recorded as one hour
    /// and counted in `clamped_durations`.
    pub fn record(
        &mut self,
        id: SeriesId,
        status: u16,
        duration_us: f64,
        now_ms: f64,
    ) -> Result<(), Reason> {
        let class = match self.check_record(id, status, duration_us, now_ms) {
            Ok(class) => class,
            Err(reason) => return Err(self.reject(reason)),
        };
        let series = &mut self.series[id as usize];
        let r = series.record(
            class,
            duration_us,
            now_ms,
            &mut self.budget,
            &self.bounds_us,
        );
        if !series.latency.has_windows() {
            self.diag.window_memory_exhausted += 1;
        }
        if matches!(r, Recorded::Clamped(_)) {
            self.diag.clamped_durations += 1;
        }
        Ok(())
    }

    /// Applies a batch of `(id, status, duration_us)` triples, as the binding
    /// buffers them, all at `now_ms`; returns how many were applied. A
    /// negative status is an abort ([`MetricsStore::record_abort`]: the
    /// in-flight gauge is left alone, the binding keeps it). Every entry that
    /// is not applied is counted in [`Diagnostics`] under the reason `record`
    /// or `record_abort` would give; ids that are not whole numbers count as
    /// unknown and statuses that are not whole numbers as invalid. A trailing
    /// partial entry (fewer than 3 numbers) is ignored. The hot path: no
    /// allocation beyond what histograms need the first time a slice is used.
    pub fn record_batch(&mut self, batch: &[f64], now_ms: f64) -> usize {
        const ABORTED_STATUS: f64 = -1.0;
        // Apply the entries grouped by series: a series' histograms are then
        // warm in cache for its run of entries, instead of every entry
        // touching seven cold histograms (with 100 routes, cache misses were
        // most of the cost). Within a series the order is kept; every entry
        // is recorded at `now_ms` anyway.
        let mut order = std::mem::take(&mut self.batch_order);
        order.clear();
        order.extend(
            batch
                .chunks_exact(3)
                .enumerate()
                .map(|(i, e)| ((e[0].max(0.0).min(u32::MAX as f64) as u64) << 32) | i as u64),
        );
        order.sort_unstable();
        let mut applied = 0;
        for key in order.iter() {
            let i = (*key & 0xFFFF_FFFF) as usize;
            let entry = &batch[3 * i..3 * i + 3];
            let (id, status, duration_us) = (entry[0], entry[1], entry[2]);
            let done = match batch_id(id) {
                None => Err(self.reject(Reason::UnknownId)),
                // Exactly -1 marks an aborted request; any other negative is a bad status.
                Some(id) if status == ABORTED_STATUS => self.record_abort(id, now_ms),
                // 0 is never a valid status: `record` rejects it as such.
                Some(id) => {
                    let (status, refusal) = split_refusal(batch_status(status).unwrap_or(0));
                    let done = self.record(id, status, duration_us, now_ms);
                    if let (Ok(()), Some(r)) = (done, refusal) {
                        self.series[id as usize].refused[r.code() as usize - 1] += 1;
                    }
                    done
                }
            };
            applied += usize::from(done.is_ok());
        }
        self.batch_order = order;
        applied
    }

    /// Returns the status class index (0 for 1xx .. 4 for 5xx).
    fn check_record(
        &self,
        id: SeriesId,
        status: u16,
        duration_us: f64,
        now_ms: f64,
    ) -> Result<usize, Reason> {
        if id as usize >= self.series.len() {
            return Err(Reason::UnknownId);
        }
        if !(100..=599).contains(&status) {
            return Err(Reason::InvalidStatus);
        }
        if !duration_us.is_finite() || duration_us < 0.0 {
            return Err(Reason::InvalidDuration);
        }
        if !now_ms.is_finite() {
            return Err(Reason::InvalidTime);
        }
        Ok((status / 100 - 1) as usize)
    }

    fn reject(&mut self, reason: Reason) -> Reason {
        self.diag.count(reason);
        reason
    }

    /// A request began. The gauge is global: when a request starts, its route
    /// is usually not known yet.
    pub fn request_started(&mut self) {
        self.in_flight = self.in_flight.saturating_add(1);
    }

    /// A request that was started has completed (record it with `record`).
    pub fn request_finished(&mut self) {
        self.end_in_flight();
    }

    fn end_in_flight(&mut self) {
        if self.in_flight == 0 {
            self.diag.count(Reason::UnbalancedFinish);
        } else {
            self.in_flight -= 1;
        }
    }

    /// A started request ended without a response (the client went away).
    /// Call it instead of `request_finished`. The in-flight gauge goes down
    /// even when the id or time is bad: the request is over either way, and
    /// a bad argument must not leave the gauge stuck high.
    pub fn request_aborted(&mut self, id: SeriesId, now_ms: f64) -> Result<(), Reason> {
        self.end_in_flight();
        self.record_abort(id, now_ms)
    }

    /// Counts an aborted request against a series without touching the
    /// in-flight gauge: for callers that keep the gauge themselves
    /// ([`MetricsStore::set_in_flight`]).
    pub fn record_abort(&mut self, id: SeriesId, now_ms: f64) -> Result<(), Reason> {
        if id as usize >= self.series.len() {
            return Err(self.reject(Reason::UnknownId));
        }
        if !now_ms.is_finite() {
            return Err(self.reject(Reason::InvalidTime));
        }
        self.series[id as usize].abort(now_ms);
        Ok(())
    }

    /// Requests started and not yet finished or aborted.
    pub fn in_flight(&self) -> u64 {
        self.in_flight
    }

    /// Sets the in-flight gauge, for a caller that counts requests in flight
    /// itself (the binding, in a buffer shared with JavaScript) instead of
    /// calling `request_started` and `request_finished`.
    pub fn set_in_flight(&mut self, n: u64) {
        self.in_flight = n;
    }

    /// Bytes of histogram storage held now: every series' latency
    /// histograms (the pooled series' included) and the scratch histograms
    /// reads merge into. Counters and label strings are not counted.
    pub fn heap_bytes(&self) -> usize {
        let series: usize = self
            .series
            .iter()
            .chain([&self.pooled])
            .map(|s| s.latency.heap_bytes())
            .sum();
        series + self.scratch.heap_bytes()
    }

    /// Bytes of window slices held against `max_window_bytes`.
    pub fn window_bytes(&self) -> usize {
        self.budget.used()
    }

    /// What the store refused or bent since creation or reset.
    pub fn diagnostics(&self) -> Diagnostics {
        self.diag
    }

    /// One series over one window, as of `now`.
    pub fn series_stats(
        &mut self,
        id: SeriesId,
        window: Window,
        now: f64,
    ) -> CoreResult<WindowStats> {
        check_now(now)?;
        let s = self
            .series
            .get_mut(id as usize)
            .ok_or_else(|| CoreError::not_found("series id", id))?;
        Ok(s.stats(&mut self.scratch, window, now, self.origin))
    }

    /// Every series together over one window, as of `now`.
    pub fn pooled_stats(&mut self, window: Window, now: f64) -> CoreResult<WindowStats> {
        check_now(now)?;
        let span_ms = self.pooled.span_ms(window, now, self.origin);
        let agg = self.scratch.for_window(window);
        agg.clear();
        let mut tally = Tally::default();
        for s in self.series.iter_mut() {
            tally.add(&s.tally(window, now));
            agg.add_window(&mut s.latency, window, now);
        }
        Ok(WindowStats::new(tally, span_ms, agg.percentiles()))
    }

    /// Several series together (all methods of one route, say) over one
    /// window, as of `now`: counts summed, latency merged (exact, not an
    /// average of percentiles). An id listed twice counts once; no ids give
    /// zero figures over the window's span. A series that lost its window
    /// latency to `max_window_bytes` adds its counts but no latency, so then
    /// `latency.count` is below `requests`.
    pub fn stats_for(
        &mut self,
        ids: &[SeriesId],
        window: Window,
        now: f64,
    ) -> CoreResult<WindowStats> {
        check_now(now)?;
        // One series needs no merge (its all-time histogram is read in place).
        if let [id] = ids {
            return self.series_stats(*id, window, now);
        }
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= self.series.len()) {
            return Err(CoreError::not_found("series id", id));
        }
        let unique = &mut self.id_scratch;
        unique.clear();
        unique.extend_from_slice(ids);
        unique.sort_unstable();
        unique.dedup();
        let agg = self.scratch.for_window(window);
        agg.clear();
        let mut tally = Tally::default();
        for &id in unique.iter() {
            let s = &mut self.series[id as usize];
            tally.add(&s.tally(window, now));
            agg.add_window(&mut s.latency, window, now);
        }
        let latency = agg.percentiles();
        // Every series shares the store's slice boundaries, so the pooled
        // series gives the span, with no ids too.
        let span_ms = self.pooled.span_ms(window, now, self.origin);
        Ok(WindowStats::new(tally, span_ms, latency))
    }

    /// Appends the latency histogram of a series (`None`: all series) over a
    /// window to `out`, in HDR's base64 V2 compressed form, for merging with
    /// other processes' histograms (`Aggregate::import`). It has the digits
    /// the window is kept at: 2 for the rings, 3 for all time.
    pub fn export_latency(
        &mut self,
        id: Option<SeriesId>,
        window: Window,
        now: f64,
        out: &mut String,
    ) -> CoreResult<()> {
        check_now(now)?;
        if let Some(id) = id {
            if id as usize >= self.series.len() {
                return Err(CoreError::not_found("series id", id));
            }
        }
        let agg = self.scratch.for_window(window);
        agg.clear();
        for (i, s) in self.series.iter_mut().enumerate() {
            if id.is_none_or(|id| id as usize == i) {
                agg.add_window(&mut s.latency, window, now);
            }
        }
        agg.export(out)
    }

    /// Zeroes every count, histogram and diagnostic as of `now`. Series and
    /// their ids survive (callers cache ids), and so does the in-flight
    /// gauge: those requests are still running and will finish. Histogram
    /// allocations are kept, and series that lost their windows to
    /// `max_window_bytes` may have them again if memory allows.
    pub fn reset(&mut self, now: f64) -> CoreResult<()> {
        check_now(now)?;
        self.series.iter_mut().for_each(|s| s.reset(now));
        self.pooled.reset(now);
        self.diag = Diagnostics::default();
        self.origin = now;
        Ok(())
    }

    /// Every series, the reserved ones first, in id order (for the HTTP
    /// families of `exposition::http`).
    pub(crate) fn series_all(&self) -> &[Series] {
        &self.series
    }

    /// The Prometheus bucket bounds, increasing.
    pub(crate) fn bounds(&self) -> &[Bound] {
        &self.bounds
    }

    /// The series whose counters are exposed: all but `other` until it has
    /// traffic (it exists from the start but only means "past the cap").
    pub(crate) fn exposed(&self) -> impl Iterator<Item = &Series> + '_ {
        self.series
            .iter()
            .enumerate()
            .filter(|(i, s)| *i != OTHER as usize || s.has_traffic())
            .map(|(_, s)| s)
    }

    /// Refused requests of a series by reason (all time).
    pub fn refused(&self, id: SeriesId) -> Option<[(Refusal, u64); 4]> {
        self.series
            .get(id as usize)
            .map(|s| Refusal::ALL.map(|r| (r, s.refused[r.code() as usize - 1])))
    }
}

/// A batch status `status + Refusal::STRIDE * code` split into the status
/// and the refusal; a code that names no refusal leaves the status as it is
/// (so `record` rejects it as invalid).
fn split_refusal(v: u16) -> (u16, Option<Refusal>) {
    let code = u32::from(v) / Refusal::STRIDE;
    match Refusal::from_code(code) {
        Some(r) => ((u32::from(v) % Refusal::STRIDE) as u16, Some(r)),
        None => (v, None),
    }
}

/// A batch entry's id: a whole number that fits a `SeriesId`, or `None`.
fn batch_id(v: f64) -> Option<SeriesId> {
    (v >= 0.0 && v <= SeriesId::MAX as f64 && v.fract() == 0.0).then_some(v as SeriesId)
}

/// A batch entry's status, when it is a whole number that fits a `u16`;
/// `record` then checks the range.
fn batch_status(v: f64) -> Option<u16> {
    (v >= 0.0 && v <= u16::MAX as f64 && v.fract() == 0.0).then_some(v as u16)
}

fn check_label(field: &str, value: &str, max: usize) -> CoreResult<()> {
    if value.is_empty() || value.len() > max {
        return Err(CoreError::range(
            field,
            &format!("a non-empty string of at most {max} bytes"),
            format!("{} bytes", value.len()),
        ));
    }
    Ok(())
}

fn check_now(now: f64) -> CoreResult<()> {
    if !now.is_finite() {
        return Err(CoreError::range(
            "now",
            "a finite number of milliseconds",
            check::fmt_num(now),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::error::ErrorKind;
    use crate::core::exposition::http::{
        self, ABORTED, DURATION, IN_FLIGHT, REFUSED, REQUESTS, STATUS_CLASSES,
    };
    use crate::core::exposition::model::Value;
    use crate::core::metrics::Aggregate;

    use crate::core::rng::SplitMix64;

    fn store() -> MetricsStore {
        MetricsStore::new(MetricsOptions::default(), 0.0).unwrap()
    }

    #[test]
    fn intern_is_stable_and_validates_routes() {
        let mut s = store();
        let a = s.intern("GET", "/a").unwrap();
        assert_eq!(s.intern("GET", "/a").unwrap(), a);
        assert_ne!(s.intern("POST", "/a").unwrap(), a);
        assert_eq!(s.labels(a), Some(("GET", "/a")));
        assert_eq!(s.lookup("GET", "/a"), Some(a));
        assert_eq!(s.lookup("GET", "/b"), None);
        assert!(s.intern("GET", &"r".repeat(MAX_ROUTE_LEN)).is_ok());
        for bad in [String::new(), "r".repeat(MAX_ROUTE_LEN + 1)] {
            let e = s.intern("GET", &bad).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Range);
            assert!(
                e.message
                    .starts_with("route must be a non-empty string of at most 512 bytes"),
                "{}",
                e.message
            );
        }
        assert!(s
            .intern("", "/a")
            .unwrap_err()
            .message
            .starts_with("method must be"));
        // The reserved keys are the reserved series, so labels never repeat.
        assert_eq!(
            s.intern(RESERVED_METHOD, UNMATCHED_ROUTE).unwrap(),
            UNMATCHED
        );
        assert_eq!(s.intern(RESERVED_METHOD, OTHER_ROUTE).unwrap(), OTHER);
        assert_eq!(s.labels(UNMATCHED), Some(("*", "unmatched")));
    }

    #[test]
    fn cardinality_cap_maps_new_keys_to_other_and_counts_them() {
        let mut s = MetricsStore::new(
            MetricsOptions {
                max_series: 3,
                ..Default::default()
            },
            0.0,
        )
        .unwrap();
        let ids: Vec<_> = (0..3)
            .map(|i| s.intern("GET", &format!("/r{i}")).unwrap())
            .collect();
        assert!(ids.iter().all(|&id| id > OTHER));
        assert_eq!(s.intern("GET", "/r3").unwrap(), OTHER);
        assert_eq!(s.intern("GET", "/r4").unwrap(), OTHER);
        assert_eq!(s.intern("GET", "/r3").unwrap(), OTHER);
        // Known keys still get their own series past the cap.
        assert_eq!(s.intern("GET", "/r1").unwrap(), ids[1]);
        assert_eq!(s.diagnostics().series_overflow, 3);
        assert_eq!(s.series_count(), 5);
        s.record(OTHER, 200, 10.0, 1.0).unwrap();
        assert_eq!(
            s.series_stats(OTHER, Window::AllTime, 1.0)
                .unwrap()
                .requests,
            1
        );
        // A cap of 0 sends everything to `other`.
        let mut z = MetricsStore::new(
            MetricsOptions {
                max_series: 0,
                ..Default::default()
            },
            0.0,
        )
        .unwrap();
        assert_eq!(z.intern("GET", "/").unwrap(), OTHER);
    }

    #[test]
    fn counts_and_rates_per_window_rotate_with_injected_time() {
        let mut s = store();
        let id = s.intern("GET", "/a").unwrap();
        s.record(id, 200, 1_000.0, 0.0).unwrap();
        s.record(id, 404, 1_200.0, 5_000.0).unwrap();
        s.record(id, 500, 1_500.0, 9_000.0).unwrap();
        s.record(id, 503, 2_000.0, 9_500.0).unwrap();
        let st = s.series_stats(id, Window::TenSeconds, 9_999.0).unwrap();
        assert_eq!((st.requests, st.status_4xx, st.status_5xx), (4, 1, 2));
        assert_eq!((st.error_rate, st.server_error_rate), (0.75, 0.5));
        assert_eq!(st.span_seconds, 9.999);
        assert!((st.requests_per_second - 4.0 / 9.999).abs() < 1e-12);
        // Min and max are exact (the old HDR slices reported 2 007 here).
        assert_eq!(
            (st.latency.count, st.latency.min_us, st.latency.max_us),
            (4, 1_000, 2_000)
        );
        // At 10 s the first 2 s slice leaves; the 1 min window keeps all four.
        let st = s.series_stats(id, Window::TenSeconds, 10_000.0).unwrap();
        assert_eq!(
            (st.requests, st.latency.count, st.span_seconds),
            (3, 3, 8.0)
        );
        assert_eq!(
            s.series_stats(id, Window::OneMinute, 10_000.0)
                .unwrap()
                .requests,
            4
        );
        assert_eq!(
            s.series_stats(id, Window::FiveMinutes, 299_999.0)
                .unwrap()
                .requests,
            4
        );
        assert_eq!(
            s.series_stats(id, Window::FiveMinutes, 300_000.0)
                .unwrap()
                .requests,
            0
        );
        // All time: rate over the time since creation.
        let st = s.series_stats(id, Window::AllTime, 400_000.0).unwrap();
        assert_eq!(
            (st.requests, st.span_seconds, st.requests_per_second),
            (4, 400.0, 0.01)
        );
        assert_eq!(st.latency.count, 4);
    }

    #[test]
    fn rates_over_less_than_a_second_divide_by_a_second() {
        let mut s = store();
        let id = s.intern("GET", "/a").unwrap();
        s.record(id, 200, 10.0, 0.0).unwrap();
        let st = s.series_stats(id, Window::TenSeconds, 0.0).unwrap();
        assert_eq!((st.span_seconds, st.requests_per_second), (0.0, 1.0));
        assert_eq!(
            s.series_stats(id, Window::AllTime, 0.0)
                .unwrap()
                .requests_per_second,
            1.0
        );
    }

    #[test]
    fn a_series_interned_late_shares_the_store_clock() {
        let mut s = store();
        let first = s.intern("GET", "/first").unwrap();
        s.record(first, 200, 10.0, 100_000.0).unwrap();
        let late = s.intern("GET", "/late").unwrap();
        s.record(late, 200, 10.0, 100_500.0).unwrap();
        let st = s.series_stats(late, Window::OneMinute, 105_000.0).unwrap();
        assert_eq!((st.requests, st.span_seconds), (1, 55.0));
    }

    #[test]
    fn pooled_figures_sum_every_series() {
        let mut s = store();
        let a = s.intern("GET", "/a").unwrap();
        let b = s.intern("POST", "/b").unwrap();
        let mut rng = SplitMix64::new(5);
        let mut all = Vec::new();
        for i in 0..3_000 {
            let us = 100.0 + rng.next_f64() * 50_000.0;
            let (id, status) = if i % 4 == 0 { (b, 500) } else { (a, 200) };
            s.record(id, status, us, i as f64).unwrap();
            all.push(us.round() as u64);
        }
        s.record(UNMATCHED, 404, 7.0, 3_000.0).unwrap();
        all.push(7);
        all.sort_unstable();
        let p = s.pooled_stats(Window::AllTime, 3_000.0).unwrap();
        assert_eq!((p.requests, p.status_5xx, p.status_4xx), (3_001, 750, 1));
        let exact_p99 = all[(0.99 * all.len() as f64).ceil() as usize - 1];
        assert!(p.latency.p99_us.abs_diff(exact_p99) as f64 <= exact_p99 as f64 * 0.001);
        let p10 = s.pooled_stats(Window::TenSeconds, 3_000.0).unwrap();
        assert_eq!((p10.requests, p10.latency.count), (3_001, 3_001));
        // The same samples at 2 digits: within a 1/128-wide bucket.
        for (w, a) in [
            (p10.latency.p50_us, p.latency.p50_us),
            (p10.latency.p99_us, p.latency.p99_us),
            (p10.latency.max_us, p.latency.max_us),
        ] {
            assert!(w.abs_diff(a) <= a / 128, "{w} vs {a}");
        }
    }

    #[test]
    fn bad_input_is_counted_and_never_recorded() {
        let mut s = store();
        let id = s.intern("GET", "/a").unwrap();
        for status in [0, 99, 600, 999, u16::MAX] {
            assert_eq!(s.record(id, status, 10.0, 1.0), Err(Reason::InvalidStatus));
        }
        for d in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1.0,
            -f64::MIN_POSITIVE,
        ] {
            assert_eq!(s.record(id, 200, d, 1.0), Err(Reason::InvalidDuration));
        }
        for now in [f64::NAN, f64::INFINITY] {
            assert_eq!(s.record(id, 200, 10.0, now), Err(Reason::InvalidTime));
        }
        assert_eq!(s.record(9_999, 200, 10.0, 1.0), Err(Reason::UnknownId));
        assert_eq!(s.record(u32::MAX, 200, 10.0, 1.0), Err(Reason::UnknownId));
        let d = s.diagnostics();
        assert_eq!(
            (
                d.invalid_status,
                d.invalid_duration,
                d.invalid_time,
                d.unknown_id
            ),
            (5, 5, 2, 2)
        );
        assert_eq!(d.rejected(Reason::InvalidStatus), 5);
        assert_eq!(s.pooled_stats(Window::AllTime, 2.0).unwrap().requests, 0);
        // Edges that are valid: 100 and 599, zero duration, more than an hour (clamped).
        assert!(s.record(id, 100, 0.0, 1.0).is_ok());
        assert!(s.record(id, 599, 1e12, 1.0).is_ok());
        assert_eq!(s.diagnostics().clamped_durations, 1);
        assert_eq!(
            s.series_stats(id, Window::AllTime, 2.0).unwrap().requests,
            2
        );
        // Reads with bad arguments are errors, not panics.
        assert_eq!(
            s.series_stats(77, Window::AllTime, 2.0).unwrap_err().kind,
            ErrorKind::NotFound
        );
        assert_eq!(
            s.pooled_stats(Window::OneMinute, f64::NAN)
                .unwrap_err()
                .kind,
            ErrorKind::Range
        );
        assert!(s.reset(f64::INFINITY).is_err());
        let names: Vec<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            names,
            [
                "invalid_status",
                "invalid_duration",
                "invalid_time",
                "unknown_id",
                "unbalanced_finish"
            ]
        );
    }

    #[test]
    fn in_flight_never_goes_negative_and_aborts_count_per_series() {
        let mut s = store();
        let id = s.intern("GET", "/a").unwrap();
        s.request_finished();
        assert_eq!((s.in_flight(), s.diagnostics().unbalanced_finish), (0, 1));
        s.request_started();
        s.request_started();
        s.request_started();
        s.request_finished();
        s.request_aborted(id, 5.0).unwrap();
        assert_eq!(s.in_flight(), 1);
        // A bad id is counted, and the request still leaves the gauge.
        assert_eq!(s.request_aborted(42, 5.0), Err(Reason::UnknownId));
        assert_eq!(s.in_flight(), 0);
        let st = s.series_stats(id, Window::TenSeconds, 6.0).unwrap();
        assert_eq!((st.aborted, st.requests), (1, 0));
        assert_eq!(s.pooled_stats(Window::AllTime, 6.0).unwrap().aborted, 1);
        assert_eq!(
            s.series_stats(id, Window::TenSeconds, 20_000.0)
                .unwrap()
                .aborted,
            0
        );
    }

    #[test]
    fn reset_zeroes_figures_but_keeps_ids_and_in_flight() {
        let mut s = store();
        let id = s.intern("GET", "/a").unwrap();
        s.request_started();
        s.record(id, 500, 10.0, 1.0).unwrap();
        s.record(id, 1000, 10.0, 1.0).unwrap_err();
        s.reset(1_000.0).unwrap();
        assert_eq!(
            s.series_stats(id, Window::AllTime, 1_000.0).unwrap(),
            WindowStats::default()
        );
        assert_eq!(s.diagnostics(), Diagnostics::default());
        assert_eq!((s.intern("GET", "/a").unwrap(), s.in_flight()), (id, 1));
        s.record(id, 200, 10.0, 3_000.0).unwrap();
        let st = s.series_stats(id, Window::AllTime, 3_000.0).unwrap();
        assert_eq!((st.requests, st.span_seconds), (1, 2.0));
        let mut text = String::new();
        http::render_prometheus(&s, &mut text);
        // The 5xx count is back to 0 (still shown: a counter reset, not a series gone).
        assert!(
            text.contains(
                "http_requests_total{method=\"GET\",route=\"/a\",status_class=\"5xx\"} 0\n"
            ),
            "{text}"
        );
    }

    /// One parsed sample line: metric name, label text, value.
    fn samples(text: &str) -> Vec<(&str, &str, &str)> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let (head, value) = l.rsplit_once(' ').unwrap();
                match head.split_once('{') {
                    Some((name, labels)) => (name, labels.strip_suffix('}').unwrap(), value),
                    None => (head, "", value),
                }
            })
            .collect()
    }

    /// The family a sample belongs to: histogram suffixes are stripped.
    fn family(name: &str) -> &str {
        ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name)
    }

    #[test]
    fn prometheus_output_is_well_formed() {
        let mut s = store();
        let a = s.intern("GET", "/a").unwrap();
        let b = s.intern("POST", "/b").unwrap();
        let mut rng = SplitMix64::new(1);
        for i in 0..2_000 {
            let (id, status) = if i % 3 == 0 {
                (b, 201)
            } else {
                (a, [200, 404, 500][i % 3])
            };
            s.record(id, status, 10f64.powf(2.0 + rng.next_f64() * 5.0), i as f64)
                .unwrap();
        }
        s.request_started();
        s.request_started();
        s.request_aborted(b, 1.0).unwrap();
        let mut text = String::from("# already in the buffer\n");
        http::render_prometheus(&s, &mut text);
        assert!(text.starts_with("# already in the buffer\n# HELP http_requests_total "));
        assert!(text.ends_with('\n'));

        // Each family: one HELP and one TYPE, before its samples, which are contiguous.
        let mut seen: Vec<&str> = Vec::new();
        for line in text.lines().skip(1) {
            let fam = match line
                .strip_prefix("# HELP ")
                .or_else(|| line.strip_prefix("# TYPE "))
            {
                Some(rest) => rest.split(' ').next().unwrap(),
                None => family(line.split(['{', ' ']).next().unwrap()),
            };
            if seen.last() != Some(&fam) {
                assert!(!seen.contains(&fam), "{fam} split up");
                assert!(
                    line.starts_with("# HELP"),
                    "{fam} starts without HELP: {line}"
                );
                seen.push(fam);
            }
        }
        assert_eq!(seen, [REQUESTS, ABORTED, IN_FLIGHT, DURATION, REFUSED]);
        for (kind, fam) in [
            ("counter", REQUESTS),
            ("counter", ABORTED),
            ("gauge", IN_FLIGHT),
            ("histogram", DURATION),
            ("counter", REFUSED),
        ] {
            assert_eq!(text.matches(&format!("# TYPE {fam} {kind}\n")).count(), 1);
            assert_eq!(text.matches(&format!("# HELP {fam} ")).count(), 1);
        }
        assert!(text.contains("\nhttp_requests_in_flight 1\n"));
        assert!(text.contains("\nhttp_requests_aborted_total{method=\"POST\",route=\"/b\"} 1\n"));

        let parsed = samples(&text);
        for (id, labels) in [
            (a, "method=\"GET\",route=\"/a\""),
            (b, "method=\"POST\",route=\"/b\""),
        ] {
            let requests: u64 = parsed
                .iter()
                .filter(|(n, l, _)| *n == REQUESTS && l.starts_with(labels))
                .map(|(_, _, v)| v.parse::<u64>().unwrap())
                .sum();
            let buckets: Vec<(&str, u64)> = parsed
                .iter()
                .filter(|(n, l, _)| {
                    *n == "http_request_duration_seconds_bucket" && l.starts_with(labels)
                })
                .map(|(_, l, v)| (l.rsplit_once("le=").unwrap().1, v.parse().unwrap()))
                .collect();
            assert_eq!(buckets.len(), DEFAULT_BUCKETS.len() + 1);
            assert!(
                buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                "not cumulative: {buckets:?}"
            );
            assert_eq!(buckets.last().unwrap().0, "\"+Inf\"");
            let count = |suffix: &str| {
                parsed
                    .iter()
                    .find(|(n, l, _)| n.ends_with(suffix) && *l == labels)
                    .unwrap()
                    .2
            };
            assert_eq!(
                count("_count").parse::<u64>().unwrap(),
                buckets.last().unwrap().1
            );
            assert_eq!(buckets.last().unwrap().1, requests);
            let st = s.series_stats(id, Window::AllTime, 2_000.0).unwrap();
            assert_eq!(requests, st.requests);
            let sum: f64 = count("_sum").parse().unwrap();
            assert!((sum - st.latency.mean_us * st.requests as f64 / 1e6).abs() <= sum * 0.001);
        }
    }

    #[test]
    fn refused_requests_count_by_reason_and_every_reason_has_a_zero_sample() {
        let mut s = store();
        let mut text = String::new();
        http::render_prometheus(&s, &mut text);
        for r in Refusal::ALL {
            let zero = format!(
                "\n{REFUSED}{{method=\"*\",route=\"refused\",reason=\"{}\"}} 0\n",
                r.as_str()
            );
            assert!(
                text.contains(&zero),
                "no zero sample for {}: {text}",
                r.as_str()
            );
        }
        let get = s.intern("GET", "/api/users/:id").unwrap();
        let post = s.intern("POST", REFUSED_ROUTE).unwrap();
        let stride = Refusal::STRIDE as f64;
        // A brownout 503 twice, a quarantine 423, a rollout 503, a plain 200, and
        // a code that names no refusal (rejected as a bad status, not counted).
        let batch = [
            get as f64,
            503.0 + 2.0 * stride,
            100.0,
            get as f64,
            503.0 + 2.0 * stride,
            100.0,
            get as f64,
            423.0 + 3.0 * stride,
            100.0,
            post as f64,
            503.0 + 4.0 * stride,
            100.0,
            get as f64,
            200.0,
            100.0,
            get as f64,
            503.0 + 9.0 * stride,
            100.0,
        ];
        assert_eq!(s.record_batch(&batch, 1.0), 5);
        assert_eq!(s.diagnostics().invalid_status, 1);
        let st = s.series_stats(get, Window::AllTime, 1.0).unwrap();
        assert_eq!(
            (st.requests, st.status_4xx, st.status_5xx),
            (4, 1, 2),
            "refused requests are requests of their route too"
        );
        let by = |s: &MetricsStore, id| s.refused(id).unwrap().map(|(_, n)| n);
        assert_eq!(by(&s, get), [0, 2, 1, 0]);
        assert_eq!(by(&s, post), [0, 0, 0, 1]);
        text.clear();
        http::render_prometheus(&s, &mut text);
        assert!(text.contains("\nhttp_requests_refused_total{method=\"GET\",route=\"/api/users/:id\",reason=\"brownout\"} 2\n"), "{text}");
        assert!(text.contains("\nhttp_requests_refused_total{method=\"GET\",route=\"/api/users/:id\",reason=\"quarantine\"} 1\n"));
        assert!(text.contains("\nhttp_requests_refused_total{method=\"POST\",route=\"refused\",reason=\"rollout\"} 1\n"));
        // The zero sample stays only for the reason nothing was refused for.
        assert!(text.contains("\nhttp_requests_refused_total{method=\"*\",route=\"refused\",reason=\"safe_mode\"} 0\n"));
        assert!(!text.contains("route=\"refused\",reason=\"brownout\"} 0"));
        s.reset(2.0).unwrap();
        assert_eq!(by(&s, get), [0; 4]);
    }

    #[test]
    fn ops_decisions_are_refusal_codes() {
        use crate::core::ops::Decision;
        assert_eq!(Decision::Serve.code(), 0);
        assert_eq!(
            Refusal::from_code(Decision::SafeMode.code()),
            Some(Refusal::SafeMode)
        );
        assert_eq!(
            Refusal::from_code(Decision::Shed.code()),
            Some(Refusal::Brownout)
        );
        assert_eq!(
            Refusal::from_code(Decision::Quarantined.code()),
            Some(Refusal::Quarantine)
        );
        assert!(Refusal::ALL
            .iter()
            .all(|r| r.code() >= 1 && (r.code() as usize) <= Refusal::ALL.len()));
    }

    #[test]
    fn every_counter_family_has_zero_samples_from_the_start() {
        let mut s = store();
        let mut text = String::new();
        http::render_prometheus(&s, &mut text);
        let zeros = |text: &str, fam: &str| {
            samples(text)
                .into_iter()
                .filter(|(n, _, v)| *n == fam && *v == "0")
                .count()
        };
        // A fresh store: the unmatched series, every class, and its aborts, all 0; `other` not yet.
        assert_eq!(zeros(&text, REQUESTS), STATUS_CLASSES.len(), "{text}");
        assert!(
            text.contains("\nhttp_requests_aborted_total{method=\"*\",route=\"unmatched\"} 0\n"),
            "{text}"
        );
        assert!(!text.contains("route=\"other\""), "{text}");
        // A route with only 2xx traffic still shows its other classes and its aborts at 0.
        let id = s.intern("GET", "/a").unwrap();
        s.record(id, 200, 1_000.0, 1.0).unwrap();
        text.clear();
        http::render_prometheus(&s, &mut text);
        for class in ["1xx", "3xx", "4xx", "5xx"] {
            assert!(text.contains(&format!("\nhttp_requests_total{{method=\"GET\",route=\"/a\",status_class=\"{class}\"}} 0\n")), "{class}: {text}");
        }
        assert!(text.contains(
            "\nhttp_requests_total{method=\"GET\",route=\"/a\",status_class=\"2xx\"} 1\n"
        ));
        assert!(text.contains("\nhttp_requests_aborted_total{method=\"GET\",route=\"/a\"} 0\n"));
        // `other` shows once traffic reaches it.
        s.record(OTHER, 500, 1_000.0, 1.0).unwrap();
        text.clear();
        http::render_prometheus(&s, &mut text);
        assert!(
            text.contains("\nhttp_requests_aborted_total{method=\"*\",route=\"other\"} 0\n"),
            "{text}"
        );
    }

    #[test]
    fn prometheus_buckets_use_custom_bounds_and_include_the_bound() {
        let opts = MetricsOptions {
            buckets: vec![0.005, 0.1],
            ..Default::default()
        };
        let mut s = MetricsStore::new(opts, 0.0).unwrap();
        let id = s.intern("GET", "/").unwrap();
        for us in [5_000.0, 5_000.0, 5_001.0 * 1.01, 100_000.0, 2e6] {
            s.record(id, 200, us, 0.0).unwrap();
        }
        let mut text = String::new();
        http::render_prometheus(&s, &mut text);
        let b = |le: &str| {
            format!(
                "http_request_duration_seconds_bucket{{method=\"GET\",route=\"/\",le=\"{le}\"}} "
            )
        };
        assert!(text.contains(&(b("0.005") + "2\n")), "{text}");
        assert!(text.contains(&(b("0.1") + "4\n")), "{text}");
        assert!(text.contains(&(b("+Inf") + "5\n")), "{text}");
        assert!(
            text.contains(
                "http_request_duration_seconds_sum{method=\"GET\",route=\"/\"} 2.115051\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut s = store();
        let id = s.intern("GET", "/a\\b\"c\nd").unwrap();
        s.record(id, 200, 10.0, 0.0).unwrap();
        let mut text = String::new();
        http::render_prometheus(&s, &mut text);
        assert!(text.contains("http_requests_total{method=\"GET\",route=\"/a\\\\b\\\"c\\nd\",status_class=\"2xx\"} 1\n"), "{text}");
        // No raw newline inside a sample: every line is a comment or parses as a sample.
        assert_eq!(
            text.lines().filter(|l| !l.starts_with('#')).count(),
            samples(&text).len()
        );
        assert!(text
            .lines()
            .all(|l| l.starts_with('#') || l.starts_with("http_")));
        assert_eq!(s.labels(id), Some(("GET", "/a\\b\"c\nd")));
    }

    #[test]
    fn options_are_validated_with_field_names() {
        let bad = |o: MetricsOptions| MetricsStore::new(o, 0.0).err().unwrap().message;
        assert!(bad(MetricsOptions {
            max_series: MAX_SERIES_LIMIT + 1,
            ..Default::default()
        })
        .starts_with("maxSeries must be"));
        let too_big = MetricsOptions {
            max_window_bytes: usize::MAX,
            ..Default::default()
        };
        assert_eq!(bad(too_big), format!("maxWindowBytes must be a number of bytes from 0 to {MAX_WINDOW_BYTES_LIMIT}, got {}", usize::MAX));
        assert!(MetricsStore::new(
            MetricsOptions {
                max_window_bytes: 0,
                ..Default::default()
            },
            0.0
        )
        .is_ok());
        assert_eq!(MetricsOptions::default().max_window_bytes, 64 * 1024 * 1024);
        for buckets in [
            vec![0.1, 0.1],
            vec![0.2, 0.1],
            vec![f64::NAN],
            vec![0.0],
            vec![-1.0],
            vec![7_200.0],
            vec![0.1; MAX_BUCKETS + 1],
        ] {
            assert!(bad(MetricsOptions {
                buckets,
                ..Default::default()
            })
            .starts_with("buckets must be"));
        }
        assert!(MetricsStore::new(MetricsOptions::default(), f64::NAN).is_err());
        // No bounds at all is valid: the histogram is then only +Inf, _sum and _count.
        let mut s = MetricsStore::new(
            MetricsOptions {
                buckets: vec![],
                ..Default::default()
            },
            0.0,
        )
        .unwrap();
        s.record(UNMATCHED, 200, 10.0, 0.0).unwrap();
        let mut text = String::new();
        http::render_prometheus(&s, &mut text);
        assert_eq!(text.matches("_bucket{").count(), 1);
    }

    #[test]
    fn stats_for_pools_several_series_exactly() {
        let mut s = store();
        let get = s.intern("GET", "/r").unwrap();
        let post = s.intern("POST", "/r").unwrap();
        let other = s.intern("GET", "/other").unwrap();
        assert_eq!(s.ids_for_route("/r"), [get, post]);
        assert_eq!(s.ids_for_route("/other"), [other]);
        assert_eq!(s.ids_for_route("/nothing"), Vec::<SeriesId>::new());
        assert_eq!(s.ids_for_route(UNMATCHED_ROUTE), [UNMATCHED]);
        let mut rng = SplitMix64::new(17);
        for i in 0..2_000 {
            let (id, status) = if i % 3 == 0 { (post, 503) } else { (get, 200) };
            s.record(
                id,
                status,
                10f64.powf(1.0 + rng.next_f64() * 6.0),
                i as f64 * 2.0,
            )
            .unwrap();
        }
        s.record_abort(get, 3_000.0).unwrap();
        for window in Window::ALL {
            // Only /r has traffic, so /r pooled is every request pooled: the
            // merge of the two series' histograms must equal the histogram
            // that saw every sample.
            let both = s.stats_for(&[get, post, get], window, 4_000.0).unwrap();
            let pooled = s.pooled_stats(window, 4_000.0).unwrap();
            assert_eq!(both, pooled, "{}", window.as_str());
            assert_eq!(both.latency.count, both.requests);
            let one = s.stats_for(&[post], window, 4_000.0).unwrap();
            assert_eq!(one, s.series_stats(post, window, 4_000.0).unwrap());
        }
        let st = s
            .stats_for(&[get, post], Window::OneMinute, 4_000.0)
            .unwrap();
        assert_eq!((st.requests, st.status_5xx, st.aborted), (2_000, 667, 1));
        // Nothing listed: zero figures over the window's span.
        let none = s.stats_for(&[], Window::TenSeconds, 4_000.0).unwrap();
        assert_eq!(
            (none.requests, none.latency.count, none.span_seconds),
            (0, 0, 4.0)
        );
        assert_eq!(
            s.stats_for(&[get, 99], Window::AllTime, 1.0)
                .unwrap_err()
                .kind,
            ErrorKind::NotFound
        );
        assert_eq!(
            s.stats_for(&[get], Window::AllTime, f64::NAN)
                .unwrap_err()
                .kind,
            ErrorKind::Range
        );
    }

    #[test]
    fn series_ids_list_reserved_series_only_with_traffic() {
        let mut s = store();
        let a = s.intern("GET", "/a").unwrap();
        let b = s.intern("GET", "/b").unwrap();
        assert_eq!(s.series_ids().collect::<Vec<_>>(), [a, b]);
        s.record(UNMATCHED, 404, 10.0, 1.0).unwrap();
        assert_eq!(s.series_ids().collect::<Vec<_>>(), [UNMATCHED, a, b]);
        s.record_abort(OTHER, 1.0).unwrap();
        assert_eq!(s.series_ids().collect::<Vec<_>>(), [UNMATCHED, OTHER, a, b]);
        s.reset(2.0).unwrap();
        assert_eq!(s.series_ids().collect::<Vec<_>>(), [a, b]);
    }

    #[test]
    fn record_batch_applies_good_entries_and_counts_bad_ones() {
        let mut s = store();
        let id = s.intern("GET", "/a").unwrap() as f64;
        s.set_in_flight(5);
        #[rustfmt::skip]
        let batch = [
            id, 200.0, 1_000.0,
            id, 503.0, 2_000.0,
            id, -1.0, f64::NAN,          // aborted: the duration is not looked at
            f64::NAN, 200.0, 10.0,       // unknown ids
            1.5, 200.0, 10.0,
            -1.0, 200.0, 10.0,
            1e12, -1.0, 0.0,
            id, 99.0, 10.0,              // invalid statuses
            id, 200.5, 10.0,
            id, f64::NAN, 10.0,
            id, 1e9, 10.0,
            id, 200.0, -5.0,             // invalid duration
            id, 200.0,                   // partial trailing entry: ignored
        ];
        assert_eq!(s.record_batch(&batch, 1_000.0), 3);
        let d = s.diagnostics();
        assert_eq!(
            (
                d.unknown_id,
                d.invalid_status,
                d.invalid_duration,
                d.invalid_time
            ),
            (4, 4, 1, 0)
        );
        // Aborts from a batch leave the caller's gauge alone and are not "unbalanced".
        assert_eq!((s.in_flight(), d.unbalanced_finish), (5, 0));
        let st = s
            .series_stats(id as SeriesId, Window::TenSeconds, 1_000.0)
            .unwrap();
        assert_eq!(
            (st.requests, st.status_5xx, st.aborted, st.latency.count),
            (2, 1, 1, 2)
        );
        // A bad clock rejects every entry, each counted.
        assert_eq!(
            s.record_batch(&[id, 200.0, 1.0, id, -1.0, 0.0], f64::INFINITY),
            0
        );
        assert_eq!(s.diagnostics().invalid_time, 2);
        assert_eq!(s.record_batch(&[], 1.0), 0);
        let mut text = String::new();
        http::render_prometheus(&s, &mut text);
        assert!(text.contains("\nhttp_requests_in_flight 5\n"));
    }

    #[test]
    fn window_memory_cap_takes_late_series_out_of_the_windows_only() {
        let mut s = store();
        let a = s.intern("GET", "/a").unwrap();
        s.record(a, 200, 100.0, 0.0).unwrap();
        // Exactly what /a's first three slices took: nothing is left for /b.
        let per_series = s.window_bytes();
        assert!(per_series > 0 && per_series < 10_000, "{per_series}");
        let opts = MetricsOptions {
            max_window_bytes: per_series,
            ..Default::default()
        };
        let mut s = MetricsStore::new(opts, 0.0).unwrap();
        let a = s.intern("GET", "/a").unwrap();
        let b = s.intern("GET", "/b").unwrap();
        s.record(a, 200, 100.0, 0.0).unwrap();
        s.record(b, 500, 300.0, 0.0).unwrap();
        s.record(b, 200, 300.0, 500.0).unwrap();
        assert_eq!(s.window_bytes(), per_series);
        assert_eq!(s.diagnostics().window_memory_exhausted, 2);
        let st = s.series_stats(b, Window::TenSeconds, 1_000.0).unwrap();
        // Counts and rates stay; window latency is absent, all time is not.
        assert_eq!((st.requests, st.status_5xx, st.latency.count), (2, 1, 0));
        assert_eq!(
            s.series_stats(b, Window::AllTime, 1_000.0)
                .unwrap()
                .latency
                .count,
            2
        );
        assert_eq!(
            s.series_stats(a, Window::TenSeconds, 1_000.0)
                .unwrap()
                .latency
                .count,
            1
        );
        // Pooled latency is merged from the series, so it shows the same gap.
        assert_eq!(
            s.pooled_stats(Window::TenSeconds, 1_000.0)
                .unwrap()
                .latency
                .count,
            1
        );
        assert_eq!(
            s.pooled_stats(Window::AllTime, 1_000.0)
                .unwrap()
                .latency
                .count,
            3
        );
        let both = s.stats_for(&[a, b], Window::TenSeconds, 1_000.0).unwrap();
        assert_eq!((both.requests, both.latency.count), (3, 1));
        let mut text = String::new();
        http::render_prometheus(&s, &mut text);
        assert!(
            text.contains("http_request_duration_seconds_count{method=\"GET\",route=\"/b\"} 2\n"),
            "{text}"
        );
        // When /a needs a new slice it is refused too, and gives its bytes back.
        s.record(a, 200, 100.0, 2_000.0).unwrap();
        assert_eq!(
            (s.window_bytes(), s.diagnostics().window_memory_exhausted),
            (0, 3)
        );
        // Reset: everyone may try again (with a latency as small as /a's
        // first, so that three slices fit).
        s.reset(10_000.0).unwrap();
        assert_eq!(s.diagnostics().window_memory_exhausted, 0);
        s.record(b, 200, 100.0, 10_000.0).unwrap();
        assert_eq!(s.window_bytes(), per_series);
        assert_eq!(
            s.series_stats(b, Window::TenSeconds, 10_000.0)
                .unwrap()
                .latency
                .count,
            1
        );

        // A cap of 0: no series has windows, so neither do pooled reads;
        // counts and all-time latency remain.
        let mut z = MetricsStore::new(
            MetricsOptions {
                max_window_bytes: 0,
                ..Default::default()
            },
            0.0,
        )
        .unwrap();
        z.record(UNMATCHED, 200, 10.0, 0.0).unwrap();
        assert_eq!(
            z.series_stats(UNMATCHED, Window::OneMinute, 0.0)
                .unwrap()
                .latency
                .count,
            0
        );
        let p = z.pooled_stats(Window::OneMinute, 0.0).unwrap();
        assert_eq!((p.requests, p.latency.count), (1, 0));
        assert_eq!(
            z.pooled_stats(Window::AllTime, 0.0).unwrap().latency.count,
            1
        );
        assert_eq!(z.window_bytes(), 0);
    }

    #[test]
    fn the_duration_family_carries_native_buckets_that_add_up() {
        use crate::core::exphist::{index_us, upper_seconds};
        let mut s = store();
        let a = s.intern("GET", "/a").unwrap();
        let values = [150.0, 150.0, 2_000.0, 2_010.0, 90_000.0, 1_500_000.0];
        for (i, &us) in values.iter().enumerate() {
            s.record(a, 200, us, i as f64).unwrap();
        }
        let fams = http::families(&s);
        let names: Vec<&str> = fams.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, [REQUESTS, ABORTED, IN_FLIGHT, DURATION, REFUSED]);
        let d = &fams[3];
        assert_eq!(d.samples.len(), 1);
        let Value::Histogram(h) = &d.samples[0].value else {
            panic!("not a histogram")
        };
        assert_eq!(h.count, 6);
        assert!((h.sum - values.iter().sum::<f64>() / 1e6).abs() < 1e-12);
        assert_eq!(h.buckets.len(), DEFAULT_BUCKETS.len());
        let n = h.native.as_ref().unwrap();
        assert_eq!(n.schema, 6);
        // Rebuild (bucket index, count) from spans and deltas.
        let (mut idx, mut count, mut k) = (0i32, 0i64, 0usize);
        let mut buckets = vec![];
        for (j, &(offset, len)) in n.positive_spans.iter().enumerate() {
            idx = if j == 0 { offset } else { idx + offset + 1 };
            for m in 0..len {
                if m > 0 {
                    idx += 1;
                }
                count += n.positive_deltas[k];
                k += 1;
                buckets.push((idx, count as u64));
            }
        }
        let mut expected: Vec<(i32, u64)> = vec![];
        for &us in &values {
            let i = index_us(us as u64);
            match expected.last_mut() {
                Some((j, c)) if *j == i => *c += 1,
                _ => expected.push((i, 1)),
            }
        }
        assert_eq!(buckets, expected);
        // Each value lies in its bucket, in seconds.
        for (&us, &(i, _)) in values.iter().zip(&[
            buckets[0], buckets[0], buckets[1], buckets[1], buckets[2], buckets[3],
        ]) {
            let sec = us / 1e6;
            assert!(upper_seconds(i - 1) < sec && sec <= upper_seconds(i));
        }
        let mut pb = Vec::new();
        http::render_protobuf(&s, &mut pb);
        assert!(pb.windows(DURATION.len()).any(|w| w == DURATION.as_bytes()));
    }

    #[test]
    fn heap_bytes_counts_every_histogram() {
        let mut s = store();
        let idle = s.heap_bytes();
        // Only the scratch histograms and idle slot pointers.
        assert!(idle < 300_000, "{idle}");
        let a = s.intern("GET", "/a").unwrap();
        for i in 0..1_000 {
            s.record(a, 200, 4e9, i as f64 * 300.0).unwrap();
        }
        // /a holds one clamped latency (one hour) in every slice: 17
        // buckets each (the top bucket and 16 below it), u8 counts in the
        // slices (at most 200 per 60 s slice) and u16 all time (1 000); the
        // running sums of the rings: u8 for 10 s and 1 min, u16 for 5 min
        // (up to 1 000). The pooled series keeps no histograms (its idle
        // slots were in `idle`).
        assert_eq!(s.window_bytes(), 16 * 17 + 17 + 17 + 2 * 17);
        let series = s.heap_bytes() - idle;
        assert!(
            series < 2_000,
            "{series} bytes (the HDR layout held 443 520)"
        );
        assert!(series >= 20 * 17 + 17 * 2, "{series}");
    }

    #[test]
    #[ignore = "timing: cargo test --release -- --ignored --nocapture store_record_timing"]
    fn store_record_timing() {
        use std::hint::black_box;
        use std::time::Instant;
        let mut s = store();
        let ids: Vec<SeriesId> = (0..16)
            .map(|i| s.intern("GET", &format!("/r{i}")).unwrap())
            .collect();
        let values: Vec<f64> = (0..4_096)
            .map(|i| 10f64.powf(2.0 + (i as f64 * 0.618_034).fract() * 4.0))
            .collect();
        let n = 10_000_000usize;
        let start = Instant::now();
        for i in 0..n {
            let _ = black_box(s.record(ids[i & 15], 200, values[i & 4_095], i as f64 * 0.04));
        }
        let ns = start.elapsed().as_nanos() as f64 / n as f64;
        let mut batch = Vec::with_capacity(3 * 1_024);
        for i in 0..1_024 {
            batch.extend_from_slice(&[ids[i & 15] as f64, 200.0, values[i]]);
        }
        let rounds = 10_000;
        let start = Instant::now();
        for r in 0..rounds {
            black_box(s.record_batch(&batch, 400_000.0 + r as f64));
        }
        let batch_ns = start.elapsed().as_nanos() as f64 / (rounds * 1_024) as f64;
        eprintln!("MetricsStore::record: {ns:.1} ns, record_batch: {batch_ns:.1} ns per request (series and pooled: 2 × (all time + the 2 s ring + counters))");
    }

    #[test]
    fn exported_latency_merges_like_the_pooled_histogram() {
        let mut s = store();
        let a = s.intern("GET", "/a").unwrap();
        let b = s.intern("GET", "/b").unwrap();
        for i in 0..500 {
            s.record(
                if i % 2 == 0 { a } else { b },
                200,
                50.0 + i as f64 * 37.0,
                i as f64,
            )
            .unwrap();
        }
        let mut merged = Aggregate::new();
        for id in [a, b] {
            let mut e = String::new();
            s.export_latency(Some(id), Window::OneMinute, 500.0, &mut e)
                .unwrap();
            merged.import(&e).unwrap();
        }
        let mut pooled = String::new();
        s.export_latency(None, Window::OneMinute, 500.0, &mut pooled)
            .unwrap();
        let mut direct = Aggregate::new();
        direct.import(&pooled).unwrap();
        assert_eq!(merged.histogram(), direct.histogram());
        assert!(s
            .export_latency(Some(99), Window::AllTime, 0.0, &mut pooled)
            .is_err());
    }
}

#[cfg(test)]
mod read_timing {
    use super::*;
    use crate::core::exposition::{http, text};
    #[test]
    #[ignore = "timing: cargo test --release --lib -- --ignored --nocapture scrape_costs"]
    fn scrape_costs() {
        let mut s = MetricsStore::new(MetricsOptions::default(), 0.0).unwrap();
        let ids: Vec<SeriesId> = (0..100)
            .map(|r| s.intern("GET", &format!("/api/r{r}/:id")).unwrap())
            .collect();
        for &id in &ids {
            for i in 0..200u64 {
                let status = if i % 17 == 0 { 503 } else { 200 };
                s.record(id, status, (1 + (i * 37) % 500) as f64 * 1000.0, 1.0)
                    .unwrap();
            }
        }
        let rounds = 2_000;
        let mut out = String::with_capacity(1 << 18);
        for _ in 0..3 {
            let t = std::time::Instant::now();
            for _ in 0..rounds {
                std::hint::black_box(http::families(&s));
            }
            let fam = t.elapsed() / rounds;
            let t = std::time::Instant::now();
            for _ in 0..rounds {
                for se in &s.series {
                    std::hint::black_box(se.latency.all_time().native_spans());
                }
            }
            eprintln!("native_spans of 100 series: {:?}", t.elapsed() / rounds);
            let fams = http::families(&s);
            let t = std::time::Instant::now();
            for _ in 0..rounds {
                out.clear();
                text::render(std::hint::black_box(&fams), &mut out);
            }
            let render = t.elapsed() / rounds;
            let t = std::time::Instant::now();
            for _ in 0..rounds {
                out.clear();
                http::render_prometheus(&s, &mut out);
            }
            let both = t.elapsed() / rounds;
            eprintln!("HTTP families of 100 routes: families() {fam:?}, text::render {render:?}, render_prometheus {both:?} ({} bytes)", out.len());
        }
    }

    #[test]
    #[ignore = "timing"]
    fn read_costs() {
        let mut s = MetricsStore::new(MetricsOptions::default(), 0.0).unwrap();
        let mut ids = vec![];
        for r in 0..100 {
            ids.push(s.intern("GET", &format!("/r{r}")).unwrap());
        }
        let mut x = 12345u64;
        for i in 0..100_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ms = 1.0 * (500f64).powf((x % 10_000) as f64 / 10_000.0);
            s.record(ids[(i % 100) as usize], 200, ms * 1000.0, i as f64 * 0.5)
                .unwrap();
        }
        let now = 50_000.0;
        for w in Window::ALL {
            let t = std::time::Instant::now();
            for &id in &ids {
                std::hint::black_box(s.series_stats(id, w, now).unwrap());
            }
            eprintln!("series_stats {:?}: {:?} per 100", w, t.elapsed());
            let t = std::time::Instant::now();
            for &id in &ids {
                std::hint::black_box(s.stats_for(&[id], w, now).unwrap());
            }
            eprintln!("stats_for {:?}: {:?} per 100", w, t.elapsed());
        }
        let t = std::time::Instant::now();
        let mut out = String::new();
        http::render_prometheus(&s, &mut out);
        eprintln!("render: {:?}", t.elapsed());
        let t = std::time::Instant::now();
        for w in Window::ALL {
            std::hint::black_box(s.pooled_stats(w, now).unwrap());
        }
        eprintln!("pooled 4 windows: {:?}", t.elapsed());
    }
}
