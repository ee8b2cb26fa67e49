//! One (method, route) series: request counts in the window rings and all
//! time, its latency windows, Prometheus bucket counts and refusals.
//!
//! Why apart from the store: the store maps labels to series and applies
//! the caps; a series only counts and reads its own figures.

use super::aggregate::Aggregate;
use super::budget::WindowBudget;
use super::stats::WindowStats;
use super::windows::{new_rings, LatencyWindows, Recorded, Window};
use crate::core::exphist::Percentiles;
use crate::core::time_ring::{SliceRing, Slot};

/// Request counts for one slice (or, summed, a window).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Completed requests by status class, 1xx at index 0 to 5xx at 4.
    pub(crate) by_class: [u64; 5],
    pub(crate) aborted: u64,
}

impl Tally {
    pub(crate) fn requests(&self) -> u64 {
        self.by_class.iter().sum()
    }

    pub(crate) fn add(&mut self, o: &Tally) {
        for (a, b) in self.by_class.iter_mut().zip(o.by_class) {
            *a += b;
        }
        self.aborted += o.aborted;
    }
}

impl Slot for Tally {
    fn clear(&mut self) {
        *self = Tally::default();
    }
}

pub(crate) struct Series {
    pub(crate) method: Box<str>,
    pub(crate) route: Box<str>,
    pub(crate) tallies: [SliceRing<Tally>; 3],
    pub(crate) all_time: Tally,
    pub(crate) latency: LatencyWindows,
    /// Exact sum of recorded durations in µs, for Prometheus `_sum`.
    pub(crate) sum_us: u64,
    /// Prometheus bucket counts (not cumulative), one per bound plus `+Inf`,
    /// counted at record time so a scrape formats numbers instead of walking
    /// every histogram (a walk cost ~45 µs per series).
    pub(crate) buckets: Box<[u64]>,
    /// All-time refused requests by [`Refusal`] (index `code - 1`).
    pub(crate) refused: [u64; 4],
}

impl Series {
    /// `origin` is the store's: a series made late simply had no traffic before.
    pub(crate) fn new(method: &str, route: &str, origin: f64, bounds: usize) -> Self {
        Series {
            method: method.into(),
            route: route.into(),
            tallies: new_rings(origin),
            all_time: Tally::default(),
            latency: LatencyWindows::new(origin),
            sum_us: 0,
            buckets: vec![0; bounds + 1].into_boxed_slice(),
            refused: [0; 4],
        }
    }

    /// `method` and `route` as label pairs.
    pub(crate) fn label_pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("method", self.method.to_string()),
            ("route", self.route.to_string()),
        ]
    }

    /// `class` and `duration_us` were validated by the store.
    pub(crate) fn record(
        &mut self,
        class: usize,
        duration_us: f64,
        now: f64,
        budget: &mut WindowBudget,
        bounds_us: &[u64],
    ) -> Recorded {
        let r = self.latency.record_within(duration_us, now, budget);
        if let Some(us) = r.micros() {
            self.count(class, us, now, bounds_us);
        }
        r
    }

    /// Everything but the latency histograms: the pooled series keeps only
    /// these at record time (its latency is merged from the series on read,
    /// which halves the histogram work per request).
    pub(crate) fn count(&mut self, class: usize, us: u64, now: f64, bounds_us: &[u64]) {
        for ring in &mut self.tallies {
            ring.head(now).by_class[class] += 1;
        }
        self.all_time.by_class[class] += 1;
        self.sum_us = self.sum_us.saturating_add(us);
        // First bound at or above the value; past the last, `+Inf`.
        let i = bounds_us
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(bounds_us.len());
        if let Some(b) = self.buckets.get_mut(i) {
            *b += 1;
        }
    }

    pub(crate) fn abort(&mut self, now: f64) {
        for ring in &mut self.tallies {
            ring.head(now).aborted += 1;
        }
        self.all_time.aborted += 1;
    }

    pub(crate) fn has_traffic(&self) -> bool {
        self.all_time.requests() > 0 || self.all_time.aborted > 0
    }

    /// Request counts over `window` as of `now`.
    pub(crate) fn tally(&mut self, window: Window, now: f64) -> Tally {
        match window.ring_index() {
            None => self.all_time,
            Some(i) => {
                let mut t = Tally::default();
                self.tallies[i].slots(now).iter().for_each(|s| t.add(s));
                t
            }
        }
    }

    /// Milliseconds `window` covers at `now`. The same for every series of a
    /// store: they share its origin, so their slices share boundaries.
    pub(crate) fn span_ms(&mut self, window: Window, now: f64, origin: f64) -> f64 {
        match window.ring_index() {
            None => (now - origin).max(0.0),
            Some(i) => self.tallies[i].covered_ms(now),
        }
    }

    pub(crate) fn stats(
        &mut self,
        scratch: &mut Scratch,
        window: Window,
        now: f64,
        origin: f64,
    ) -> WindowStats {
        let tally = self.tally(window, now);
        let span_ms = self.span_ms(window, now, origin);
        let latency = match window {
            // All time is one histogram already: summarise it in place.
            Window::AllTime => Percentiles::of_with_sum(self.latency.all_time(), self.sum_us),
            _ => scratch
                .for_window(window)
                .window_percentiles(&mut self.latency, window, now),
        };
        WindowStats::new(tally, span_ms, latency)
    }

    pub(crate) fn reset(&mut self, now: f64) {
        self.tallies.iter_mut().for_each(|r| r.reset(now));
        self.all_time = Tally::default();
        self.latency.reset(now);
        self.sum_us = 0;
        self.buckets.iter_mut().for_each(|b| *b = 0);
        self.refused = [0; 4];
    }
}

/// The store's scratch histograms, one per precision, so that every read
/// reports what one histogram of its samples at the window's digits would
/// (see `histogram`).
#[derive(Debug)]
pub(crate) struct Scratch {
    pub(crate) all_time: Aggregate,
    pub(crate) windows: Aggregate,
}

impl Scratch {
    pub(crate) fn new() -> Self {
        Scratch {
            all_time: Aggregate::for_window(Window::AllTime),
            windows: Aggregate::for_window(Window::TenSeconds),
        }
    }

    pub(crate) fn for_window(&mut self, window: Window) -> &mut Aggregate {
        match window {
            Window::AllTime => &mut self.all_time,
            _ => &mut self.windows,
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.all_time.heap_bytes() + self.windows.heap_bytes()
    }
}
