//! Watchdogs: named gauges (queue depths), latency trackers (publish and AI
//! calls) and rate counters (dead letters), each with warn and critical
//! thresholds and a state machine with hysteresis.
//!
//! * A **gauge** holds the last value set (or pulled by the JS side on read).
//! * A **latency tracker** keeps HDR histograms over 10 s / 1 min / 5 min
//!   (the same windows as the golden signals, `metrics::LatencyWindows`)
//!   and call/error counts per minute; its watched value is a quantile
//!   (default p99) over the last minute.
//! * A **counter** counts events per minute (dead letters) over a ring of
//!   10 s slices; its watched value is the per-minute rate.
//!
//! **Hysteresis**: a watchdog changes state only after its value has stayed
//! on the other side of a threshold for `hold_ms` (so one spike does not
//! page, and one good sample does not clear an alert). The state machine is
//! stepped when values arrive and when the JS side's one shared timer ticks;
//! time is injected.

use super::error::{check, CoreError, CoreResult};
use super::exphist::Percentiles;
use super::metrics::{Aggregate, LatencyWindows, Window};
use super::named::{check_name, Named};
use super::time_ring::{RingSpec, SliceRing, Slot};

/// The most watchdogs a registry holds (names past it are refused, or
/// fall back to a shared overflow watchdog through [`Registry::track`]).
pub const MAX_WATCHDOGS: usize = 1000;

/// Slots past `MAX_WATCHDOGS` kept for the shared overflow watchdogs
/// (`ai:other`, `publish:other`, ...) that `track` falls back to, so a full
/// registry never makes the package's own wrappers fail.
pub const OVERFLOW_SLOTS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
/// A watchdog's alert state, ordered by severity.
pub enum Level {
    /// Below every threshold.
    Ok,
    /// At or past `warn`, below `critical`.
    Warn,
    /// At or past `critical`.
    Critical,
}

impl Level {
    /// The name the binding and the exposition use (`ok`, `warn`, `critical`).
    ///
    /// ```
    /// use reliability_core::core::watchdog::Level;
    /// assert_eq!(Level::Critical.as_str(), "critical");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
/// When a watchdog's value changes its state.
pub struct Thresholds {
    /// `warn` from this value up (none: never).
    pub warn: Option<f64>,
    /// `critical` from this value up (none: never).
    pub critical: Option<f64>,
    /// How long a value must stay past (or back over) a threshold before the state changes.
    pub hold_ms: f64,
}

impl Thresholds {
    /// No thresholds: the watchdog stays `ok` (a watched figure only).
    pub fn none() -> Self {
        Thresholds {
            warn: None,
            critical: None,
            hold_ms: 0.0,
        }
    }

    /// Checks the thresholds (finite, >= 0, warn <= critical, hold within a
    /// day); errors name the field with `prefix` in front.
    ///
    /// ```
    /// use reliability_core::core::watchdog::Thresholds;
    /// let t = Thresholds { warn: Some(5.0), critical: Some(1.0), hold_ms: 0.0 };
    /// assert!(t.validate("latency.").unwrap_err().message.starts_with("latency.warn"));
    /// ```
    pub fn validate(&self, prefix: &str) -> CoreResult<()> {
        for (k, v) in [("warn", self.warn), ("critical", self.critical)] {
            if let Some(v) = v {
                if !v.is_finite() || v < 0.0 {
                    return Err(CoreError::range(
                        &format!("{prefix}{k}"),
                        "a finite number >= 0",
                        check::fmt_num(v),
                    ));
                }
            }
        }
        if let (Some(w), Some(c)) = (self.warn, self.critical) {
            if w > c {
                return Err(CoreError::range(
                    &format!("{prefix}warn"),
                    &format!("at most {prefix}critical ({c})"),
                    w,
                ));
            }
        }
        if !self.hold_ms.is_finite() || self.hold_ms < 0.0 || self.hold_ms > 86_400_000.0 {
            return Err(CoreError::range(
                &format!("{prefix}holdMs"),
                "a number of ms from 0 to 86400000",
                check::fmt_num(self.hold_ms),
            ));
        }
        Ok(())
    }

    fn level_of(&self, v: f64) -> Level {
        if self.critical.is_some_and(|c| v >= c) {
            Level::Critical
        } else if self.warn.is_some_and(|w| v >= w) {
            Level::Warn
        } else {
            Level::Ok
        }
    }
}

/// The state machine: `level` since `since`, and a candidate level the
/// value has pointed at since `pending.1`.
#[derive(Debug, Clone, PartialEq)]
/// A watchdog's state machine.
pub struct State {
    /// The current level.
    pub level: Level,
    /// Since when (ms, the caller's clock).
    pub since: f64,
    pending: Option<(Level, f64)>,
}

/// A change of state, for alerts.
#[derive(Debug, Clone, PartialEq)]
/// A state change of watchdog `id`.
pub struct Transition {
    /// The watchdog's id.
    pub id: usize,
    /// The level before.
    pub from: Level,
    /// The level after.
    pub to: Level,
    /// The value that caused it.
    pub value: f64,
    /// When (ms, the caller's clock).
    pub at: f64,
}

impl State {
    fn new(now: f64) -> Self {
        State {
            level: Level::Ok,
            since: now,
            pending: None,
        }
    }

    /// Steps the machine with the current value; returns `(from, to)` on a change.
    fn step(&mut self, t: &Thresholds, value: f64, now: f64) -> Option<(Level, Level)> {
        let target = t.level_of(value);
        if target == self.level {
            self.pending = None;
            return None;
        }
        let since = match self.pending {
            Some((l, s)) if l == target => s,
            _ => {
                self.pending = Some((target, now));
                now
            }
        };
        if now - since >= t.hold_ms {
            let from = self.level;
            self.level = target;
            self.since = now;
            self.pending = None;
            return Some((from, target));
        }
        None
    }
}

#[derive(Debug, Default, Clone, Copy)]
/// Calls and errors in one time slice (or in total).
pub struct Counts {
    /// Calls.
    pub calls: u64,
    /// Of which failed.
    pub errors: u64,
}

impl Slot for Counts {
    fn clear(&mut self) {
        *self = Counts::default();
    }
}

// The latency variant is large, but watchdogs are few (capped) and boxing
// would add an indirection on every record.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
/// What a watchdog watches, with the figures it keeps.
pub enum Kind {
    /// A value set from outside (a queue depth).
    Gauge {
        /// The last value set.
        value: f64,
    },
    /// A latency quantile over the last minute.
    Latency {
        /// Latency histograms (last minute and since start).
        windows: LatencyWindows,
        /// Calls and errors per slice of the last minute.
        counts: SliceRing<Counts>,
        /// Calls and errors since start.
        total: Counts,
        /// The watched quantile (one of [`QUANTILES`]).
        quantile: f64,
    },
    /// An event rate per minute.
    Counter {
        /// Events per slice of the last minute.
        ring: SliceRing<Counts>,
        /// Events since start.
        total: u64,
    },
}

#[derive(Debug)]
/// One watchdog: a watched figure with thresholds and a state machine.
pub struct Watchdog {
    /// Its name (the one name rule, `core::named`).
    pub name: String,
    /// What it watches.
    pub kind: Kind,
    /// When its state changes.
    pub thresholds: Thresholds,
    /// Its state machine.
    pub state: State,
    /// The value the state machine last saw.
    pub last_value: f64,
}

const MINUTE: RingSpec = RingSpec {
    slice_ms: 10_000.0,
    slices: 6,
};

/// The window a counter's rate is counted over, in ms: a counter's value is
/// its events in the last minute (the exposition divides by this to export
/// a rate per second).
pub const RATE_WINDOW_MS: f64 = MINUTE.slice_ms * MINUTE.slices as f64;

/// Figures of a latency tracker or a counter.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stats {
    /// Calls (events) in the last minute.
    pub calls_per_minute: f64,
    /// Errors in the last minute.
    pub errors_per_minute: f64,
    /// Calls (events) since start.
    pub total_calls: u64,
    /// Errors since start.
    pub total_errors: u64,
    /// Over the last minute (latency trackers only).
    pub latency: Option<Percentiles>,
}

/// Quantiles a latency tracker can watch (those `Percentiles` carries).
pub const QUANTILES: [f64; 5] = [0.5, 0.9, 0.95, 0.99, 0.999];

fn quantile_ms(p: &Percentiles, q: f64) -> f64 {
    let us = if q == 0.5 {
        p.p50_us
    } else if q == 0.9 {
        p.p90_us
    } else if q == 0.95 {
        p.p95_us
    } else if q == 0.99 {
        p.p99_us
    } else {
        p.p999_us
    };
    us as f64 / 1000.0
}

/// The watchdog `id`, mutably (a free function so the scratch histograms can
/// be borrowed beside it; ids are `u32`s in `Named`, a larger one is absent).
fn at(dogs: &mut Named<Watchdog>, id: usize) -> Option<&mut Watchdog> {
    dogs.get_mut(u32::try_from(id).ok()?)
}

/// The watchdogs of one JS registry, by name, with stable ids.
///
/// ```
/// use reliability_core::core::watchdog::{Registry, Thresholds};
/// let mut r = Registry::new();
/// let t = Thresholds { warn: Some(10.0), critical: Some(100.0), hold_ms: 0.0 };
/// let id = r.gauge("queue:emails", t, 0.0).unwrap();
/// let change = r.set(id, 500.0, 1.0).unwrap().unwrap();
/// assert_eq!(change.to.as_str(), "critical");
/// ```
pub struct Registry {
    /// The watchdogs by name (the one name rule and a hard cap of
    /// `MAX_WATCHDOGS + OVERFLOW_SLOTS`; the user's cap is checked here).
    dogs: Named<Watchdog>,
    /// Scratch histograms for reads (reused, not allocated per read).
    minute: Aggregate,
    all: Aggregate,
    /// `track` calls answered with the overflow watchdog because the registry was full.
    overflowed: u64,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            dogs: Named::new(
                "watchdog",
                MAX_WATCHDOGS + OVERFLOW_SLOTS,
                "reuse names; the package's own wrappers fall back to shared `other` watchdogs",
            ),
            minute: Aggregate::for_window(Window::OneMinute),
            all: Aggregate::new(),
            overflowed: 0,
        }
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("dogs", &self.dogs.len())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many watchdogs there are (ids are `0..len`).
    pub fn len(&self) -> usize {
        self.dogs.len()
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.dogs.is_empty()
    }

    /// The watchdog `id`.
    pub fn get(&self, id: usize) -> Option<&Watchdog> {
        self.dogs.get(u32::try_from(id).ok()?)
    }

    /// The id of the watchdog `name`.
    pub fn id_of(&self, name: &str) -> Option<usize> {
        self.dogs.id_of(name).map(|id| id as usize)
    }

    /// Every watchdog with its id, in creation order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Watchdog)> {
        self.dogs.values().enumerate()
    }

    fn add(
        &mut self,
        name: &str,
        kind: Kind,
        thresholds: Thresholds,
        now: f64,
    ) -> CoreResult<usize> {
        self.add_capped(name, kind, thresholds, now, MAX_WATCHDOGS)
    }

    fn add_capped(
        &mut self,
        name: &str,
        kind: Kind,
        thresholds: Thresholds,
        now: f64,
        cap: usize,
    ) -> CoreResult<usize> {
        thresholds.validate("")?;
        if let Some(id) = self.dogs.id_of(name) {
            // Same name again: keep the figures, take the new thresholds.
            let d = self.dogs.get_mut(id).expect("an id from id_of");
            if std::mem::discriminant(&d.kind) != std::mem::discriminant(&kind) {
                return Err(CoreError::range(
                    "name",
                    "a name not used by a watchdog of another kind",
                    format!("\"{name}\""),
                ));
            }
            d.thresholds = thresholds;
            return Ok(id as usize);
        }
        check_name("name", name)?;
        if self.dogs.len() >= cap {
            return Err(CoreError::limit(
                &format!("watchdog \"{name}\" not registered"),
                MAX_WATCHDOGS,
                "reuse names; the package's own wrappers fall back to shared `other` watchdogs",
            ));
        }
        let (id, _) = self.dogs.get_or_insert("name", name, || {
            Ok(Watchdog {
                name: name.to_string(),
                kind,
                thresholds,
                state: State::new(now),
                last_value: 0.0,
            })
        })?;
        Ok(id as usize)
    }

    /// Registers a watchdog of `kind` (`gauge`, `latency` or `counter`;
    /// `quantile` is used by latency trackers only).
    pub fn register(
        &mut self,
        kind: &str,
        name: &str,
        t: Thresholds,
        quantile: f64,
        now: f64,
    ) -> CoreResult<usize> {
        self.register_capped(kind, name, t, quantile, now, MAX_WATCHDOGS)
    }

    fn register_capped(
        &mut self,
        kind: &str,
        name: &str,
        t: Thresholds,
        quantile: f64,
        now: f64,
        cap: usize,
    ) -> CoreResult<usize> {
        let kind = match kind {
            "gauge" => Kind::Gauge { value: 0.0 },
            "latency" => {
                if !QUANTILES.contains(&quantile) {
                    return Err(CoreError::range(
                        "quantile",
                        "one of 0.5, 0.9, 0.95, 0.99, 0.999",
                        check::fmt_num(quantile),
                    ));
                }
                Kind::Latency {
                    windows: LatencyWindows::new(now),
                    counts: SliceRing::new(MINUTE, now),
                    total: Counts::default(),
                    quantile,
                }
            }
            "counter" => Kind::Counter {
                ring: SliceRing::new(MINUTE, now),
                total: 0,
            },
            other => {
                return Err(CoreError::range(
                    "kind",
                    "'gauge', 'latency' or 'counter'",
                    format!("\"{other}\""),
                ))
            }
        };
        self.add_capped(name, kind, t, now, cap)
    }

    /// Like `register`, for names the package makes up from user data (AI
    /// call names, topics): once the registry is full, a new name gets the
    /// shared watchdog `overflow` instead (registered in a reserved slot,
    /// without thresholds), the fallback is counted, and the bool is true.
    /// Other errors (a bad name, a kind clash) are returned as they are.
    ///
    /// ```
    /// use reliability_core::core::watchdog::{Registry, Thresholds, MAX_WATCHDOGS};
    /// let mut r = Registry::new();
    /// for i in 0..MAX_WATCHDOGS {
    ///     r.register("counter", &format!("c{i}"), Thresholds::none(), 0.99, 0.0).unwrap();
    /// }
    /// let (id, overflowed) = r.track("latency", "ai:new", "ai:other", Thresholds::none(), 0.99, 0.0).unwrap();
    /// assert!(overflowed && r.get(id).unwrap().name == "ai:other" && r.overflowed() == 1);
    /// ```
    pub fn track(
        &mut self,
        kind: &str,
        name: &str,
        overflow: &str,
        t: Thresholds,
        quantile: f64,
        now: f64,
    ) -> CoreResult<(usize, bool)> {
        match self.register(kind, name, t, quantile, now) {
            Err(e) if e.kind == super::error::ErrorKind::Limit => {
                // An existing overflow watchdog keeps its thresholds.
                let same_kind = |d: &Watchdog| {
                    matches!(
                        (&d.kind, kind),
                        (Kind::Gauge { .. }, "gauge")
                            | (Kind::Latency { .. }, "latency")
                            | (Kind::Counter { .. }, "counter")
                    )
                };
                let id = match self.id_of(overflow) {
                    Some(id) if self.get(id).is_some_and(same_kind) => id,
                    _ => self.register_capped(
                        kind,
                        overflow,
                        Thresholds::none(),
                        quantile,
                        now,
                        MAX_WATCHDOGS + OVERFLOW_SLOTS,
                    )?,
                };
                self.overflowed += 1;
                Ok((id, true))
            }
            r => r.map(|id| (id, false)),
        }
    }

    /// How many `track` calls fell back to an overflow watchdog.
    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }

    /// Registers (or re-thresholds) the gauge `name`.
    pub fn gauge(&mut self, name: &str, t: Thresholds, now: f64) -> CoreResult<usize> {
        self.add(name, Kind::Gauge { value: 0.0 }, t, now)
    }

    /// A latency tracker watching the `quantile` (0..1, e.g. 0.99) of the last minute, in ms.
    pub fn latency(
        &mut self,
        name: &str,
        t: Thresholds,
        quantile: f64,
        now: f64,
    ) -> CoreResult<usize> {
        if !QUANTILES.contains(&quantile) {
            return Err(CoreError::range(
                "quantile",
                "one of 0.5, 0.9, 0.95, 0.99, 0.999",
                check::fmt_num(quantile),
            ));
        }
        self.add(
            name,
            Kind::Latency {
                windows: LatencyWindows::new(now),
                counts: SliceRing::new(MINUTE, now),
                total: Counts::default(),
                quantile,
            },
            t,
            now,
        )
    }

    /// Registers (or re-thresholds) the counter `name` (its rate per minute is watched).
    pub fn counter(&mut self, name: &str, t: Thresholds, now: f64) -> CoreResult<usize> {
        self.add(
            name,
            Kind::Counter {
                ring: SliceRing::new(MINUTE, now),
                total: 0,
            },
            t,
            now,
        )
    }

    fn dog(&mut self, id: usize) -> CoreResult<&mut Watchdog> {
        let n = self.dogs.len();
        at(&mut self.dogs, id)
            .ok_or_else(|| CoreError::range("watchdog", &format!("an id below {n}"), id))
    }

    /// Sets a gauge. Negative or non-finite values are refused (nothing changes).
    pub fn set(&mut self, id: usize, value: f64, now: f64) -> CoreResult<Option<Transition>> {
        if !value.is_finite() || value < 0.0 {
            return Err(CoreError::range(
                "value",
                "a finite number >= 0",
                check::fmt_num(value),
            ));
        }
        let d = self.dog(id)?;
        match &mut d.kind {
            Kind::Gauge { value: v } => *v = value,
            _ => {
                return Err(CoreError::range(
                    "watchdog",
                    "a gauge",
                    format!("\"{}\"", d.name),
                ))
            }
        }
        Ok(self.step(id, now))
    }

    /// Records one latency-tracked call. Non-finite or negative latencies are
    /// refused before anything is counted.
    pub fn record(&mut self, id: usize, latency_ms: f64, ok: bool, now: f64) -> CoreResult<()> {
        if !latency_ms.is_finite() || latency_ms < 0.0 {
            return Err(CoreError::range(
                "latencyMs",
                "a finite number >= 0",
                check::fmt_num(latency_ms),
            ));
        }
        let d = self.dog(id)?;
        match &mut d.kind {
            Kind::Latency {
                windows,
                counts,
                total,
                ..
            } => {
                windows.record(latency_ms * 1000.0, now);
                let c = counts.head(now);
                c.calls += 1;
                c.errors += !ok as u64;
                total.calls += 1;
                total.errors += !ok as u64;
                Ok(())
            }
            _ => Err(CoreError::range(
                "watchdog",
                "a latency tracker",
                format!("\"{}\"", d.name),
            )),
        }
    }

    /// Adds `n` events to a counter.
    pub fn count(&mut self, id: usize, n: f64, now: f64) -> CoreResult<()> {
        if !n.is_finite() || n < 0.0 || n.fract() != 0.0 {
            return Err(CoreError::range(
                "n",
                "a whole number >= 0",
                check::fmt_num(n),
            ));
        }
        let d = self.dog(id)?;
        match &mut d.kind {
            Kind::Counter { ring, total } => {
                ring.head(now).calls += n as u64;
                *total += n as u64;
                Ok(())
            }
            _ => Err(CoreError::range(
                "watchdog",
                "a counter",
                format!("\"{}\"", d.name),
            )),
        }
    }

    /// The value a watchdog's thresholds apply to: a gauge's value, a
    /// tracker's quantile (ms) over the last minute, a counter's rate per minute.
    pub fn value(&mut self, id: usize, now: f64) -> f64 {
        let Some(d) = at(&mut self.dogs, id) else {
            return 0.0;
        };
        match &mut d.kind {
            Kind::Gauge { value } => *value,
            Kind::Latency {
                windows, quantile, ..
            } => {
                let q = *quantile;
                let p = self
                    .minute
                    .window_percentiles(windows, Window::OneMinute, now);
                if p.count == 0 {
                    0.0
                } else {
                    quantile_ms(&p, q)
                }
            }
            Kind::Counter { ring, .. } => {
                ring.slots(now).iter().map(|c| c.calls).sum::<u64>() as f64
            }
        }
    }

    /// Steps watchdog `id`'s state machine with its current value.
    pub fn step(&mut self, id: usize, now: f64) -> Option<Transition> {
        let v = self.value(id, now);
        let d = at(&mut self.dogs, id)?;
        d.last_value = v;
        let t = d.thresholds;
        d.state.step(&t, v, now).map(|(from, to)| Transition {
            id,
            from,
            to,
            value: v,
            at: now,
        })
    }

    /// Steps every watchdog (the shared timer's tick).
    pub fn step_all(&mut self, now: f64) -> Vec<Transition> {
        (0..self.dogs.len())
            .filter_map(|id| self.step(id, now))
            .collect()
    }

    /// The figures of a latency tracker or counter `id` (zeros for a gauge or an unknown id).
    pub fn stats(&mut self, id: usize, now: f64) -> Stats {
        let Some(d) = at(&mut self.dogs, id) else {
            return Stats::default();
        };
        match &mut d.kind {
            Kind::Gauge { .. } => Stats::default(),
            Kind::Latency {
                windows,
                counts,
                total,
                ..
            } => {
                // Calls in the last minute, counted, not extrapolated from a
                // shorter span (a process up for 5 s shows what it saw).
                let (c, e) = counts
                    .slots(now)
                    .iter()
                    .fold((0, 0), |(c, e), x| (c + x.calls, e + x.errors));
                let p = self
                    .minute
                    .window_percentiles(windows, Window::OneMinute, now);
                Stats {
                    calls_per_minute: c as f64,
                    errors_per_minute: e as f64,
                    total_calls: total.calls,
                    total_errors: total.errors,
                    latency: (p.count > 0).then_some(p),
                }
            }
            Kind::Counter { ring, total } => {
                let c: u64 = ring.slots(now).iter().map(|x| x.calls).sum();
                Stats {
                    calls_per_minute: c as f64,
                    errors_per_minute: 0.0,
                    total_calls: *total,
                    total_errors: 0,
                    latency: None,
                }
            }
        }
    }

    /// Latency over all time of a tracker (for averages since start).
    pub fn all_time(&mut self, id: usize, now: f64) -> Option<Percentiles> {
        match &mut at(&mut self.dogs, id)?.kind {
            Kind::Latency { windows, .. } => {
                let p = self.all.window_percentiles(windows, Window::AllTime, now);
                (p.count > 0).then_some(p)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(warn: f64, critical: f64, hold: f64) -> Thresholds {
        Thresholds {
            warn: Some(warn),
            critical: Some(critical),
            hold_ms: hold,
        }
    }

    #[test]
    fn names_follow_the_one_name_rule() {
        let mut r = Registry::new();
        for bad in ["", "a\u{202e}b", "a\u{0}", &"x".repeat(257)] {
            let e = r
                .register("gauge", bad, Thresholds::none(), 0.99, 0.0)
                .unwrap_err();
            assert!(e.message.starts_with("name must be"), "{}", e.message);
        }
        assert!(r.is_empty());
        let id = r
            .register("gauge", &"x".repeat(256), Thresholds::none(), 0.99, 0.0)
            .unwrap();
        assert_eq!(r.id_of(&"x".repeat(256)), Some(id));
    }

    #[test]
    fn hysteresis_needs_the_value_to_stay_for_the_hold_time() {
        let mut r = Registry::new();
        let q = r
            .gauge("queue:agent-1", t(100.0, 1000.0, 5000.0), 0.0)
            .unwrap();
        assert_eq!(
            r.set(q, 150.0, 1000.0).unwrap(),
            None,
            "past warn, but not for 5 s yet"
        );
        assert_eq!(
            r.set(q, 50.0, 3000.0).unwrap(),
            None,
            "back under: the pending change is dropped"
        );
        assert_eq!(r.set(q, 150.0, 4000.0).unwrap(), None);
        assert_eq!(r.step(q, 8999.0), None);
        let tr = r.step(q, 9000.0).unwrap();
        assert_eq!((tr.from, tr.to, tr.value), (Level::Ok, Level::Warn, 150.0));
        assert_eq!(r.get(q).unwrap().state.since, 9000.0);
        // Straight to critical (also held), then back down to ok after holding.
        assert_eq!(r.set(q, 5000.0, 10_000.0).unwrap(), None);
        assert_eq!(
            r.set(q, 5000.0, 15_000.0).unwrap().map(|t| t.to),
            Some(Level::Critical)
        );
        assert_eq!(
            r.set(q, 0.0, 16_000.0).unwrap(),
            None,
            "one good sample does not clear it"
        );
        assert_eq!(
            r.set(q, 0.0, 21_000.0).unwrap().map(|t| (t.from, t.to)),
            Some((Level::Critical, Level::Ok))
        );
    }

    #[test]
    fn zero_hold_changes_at_once() {
        let mut r = Registry::new();
        let q = r.gauge("q", t(1.0, 2.0, 0.0), 0.0).unwrap();
        assert_eq!(
            r.set(q, 3.0, 1.0).unwrap().map(|t| t.to),
            Some(Level::Critical)
        );
    }

    #[test]
    fn latency_tracker_watches_its_quantile() {
        let mut r = Registry::new();
        let ai = r
            .latency("ai:openai-embeddings", t(500.0, 2000.0, 0.0), 0.99, 0.0)
            .unwrap();
        for i in 0..98 {
            r.record(ai, 100.0, true, i as f64).unwrap();
        }
        r.record(ai, 3000.0, false, 100.0).unwrap();
        r.record(ai, 3000.0, true, 100.0).unwrap();
        let tr = r.step(ai, 200.0).unwrap();
        assert_eq!(tr.to, Level::Critical);
        assert!((tr.value - 3000.0).abs() < 3000.0 * 0.01, "{}", tr.value);
        let s = r.stats(ai, 200.0);
        assert_eq!((s.total_calls, s.total_errors), (100, 1));
        assert!(s.calls_per_minute >= 100.0);
        let p = s.latency.unwrap();
        assert!(
            (p.p50_us as f64 / 1000.0 - 100.0).abs() < 1.0,
            "{}",
            p.p50_us
        );
    }

    #[test]
    fn counters_give_a_rate_per_minute() {
        let mut r = Registry::new();
        let d = r
            .counter("dlq:dead-letter", t(10.0, 100.0, 0.0), 0.0)
            .unwrap();
        r.count(d, 7.0, 1000.0).unwrap();
        r.count(d, 5.0, 30_000.0).unwrap();
        assert_eq!(r.value(d, 30_000.0), 12.0);
        assert_eq!(r.step(d, 30_000.0).map(|t| t.to), Some(Level::Warn));
        assert_eq!(r.value(d, 75_000.0), 5.0, "the first batch left the minute");
        assert_eq!(r.stats(d, 75_000.0).total_calls, 12);
    }

    #[test]
    fn bad_input_changes_nothing() {
        let mut r = Registry::new();
        assert_eq!(
            r.gauge("q", t(10.0, 5.0, 0.0), 0.0).unwrap_err().message,
            "warn must be at most critical (5), got 10"
        );
        assert!(r
            .gauge(
                "q",
                Thresholds {
                    warn: Some(f64::NAN),
                    critical: None,
                    hold_ms: 0.0
                },
                0.0
            )
            .is_err());
        assert!(r.gauge("", Thresholds::none(), 0.0).is_err());
        assert!(r.is_empty());
        let q = r.gauge("q", Thresholds::none(), 0.0).unwrap();
        assert_eq!(
            r.set(q, -1.0, 0.0).unwrap_err().message,
            "value must be a finite number >= 0, got -1"
        );
        assert!(r.set(q, f64::INFINITY, 0.0).is_err());
        assert_eq!(r.value(q, 0.0), 0.0);
        let l = r.latency("l", Thresholds::none(), 0.99, 0.0).unwrap();
        assert!(r.record(l, f64::NAN, true, 0.0).is_err());
        assert_eq!(r.stats(l, 0.0).total_calls, 0, "nothing recorded half-way");
        assert!(
            r.record(q, 1.0, true, 0.0).is_err(),
            "a gauge is not a tracker"
        );
        assert!(
            r.latency("q", Thresholds::none(), 0.99, 0.0).is_err(),
            "a name keeps its kind"
        );
        assert!(r.latency("x", Thresholds::none(), 1.5, 0.0).is_err());
    }
}
