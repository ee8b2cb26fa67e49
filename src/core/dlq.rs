//! Dead-letter-queue drains: one drain per queue at a time, paced by a token
//! bucket (SQS redrive style: at most `rate` messages per second, bursts of
//! at most one second's worth), with the counts of each run.
//!
//! The JS side owns the queues (`depth()`, `drain(limit)`); it asks
//! `allowance` how many messages it may take now, reports what happened with
//! `progress`, and sleeps when the allowance is zero.
//!
//! Queue names follow the one name rule (`core::named::check_name`) and the
//! queues live in a capped [`Named`] set, like every other name-keyed set.
//! The DLQ-specific cap [`MAX_QUEUES`] stays: a set keyed by user names needs
//! a bound, and nothing in the API raises it.

use super::error::{check, CoreError, CoreResult};
use super::named::{check_name, Named};

/// Messages per second a drain takes when the queue was registered without a rate.
pub const DEFAULT_RATE: f64 = 100.0;
/// The highest rate `register` accepts, in messages per second.
pub const MAX_RATE: f64 = 100_000.0;
/// How many queues one set holds at most (a cap on a name-keyed set).
pub const MAX_QUEUES: usize = 1000;
/// Messages a drain takes at most when it is given no `limit`.
pub const DEFAULT_DRAIN_LIMIT: u32 = 1000;
/// The largest `limit` a drain accepts.
pub const MAX_DRAIN_LIMIT: u32 = 1_000_000_000;
/// Messages asked of a queue's `drain()` at once when no `batchSize` is given.
pub const DEFAULT_BATCH: u32 = 100;
/// The largest `batchSize` a drain accepts.
pub const MAX_BATCH: u32 = 100_000;

/// A drain's options, checked and with the defaults filled in.
///
/// ```
/// use reliability_core::core::dlq::{DrainSpec, DEFAULT_BATCH, DEFAULT_DRAIN_LIMIT};
/// let d = DrainSpec::build(None, None).unwrap();
/// assert_eq!((d.limit, d.batch), (DEFAULT_DRAIN_LIMIT, DEFAULT_BATCH));
/// assert_eq!(
///     DrainSpec::build(None, Some(0.0)).unwrap_err().message,
///     "batchSize must be an integer from 1 to 100000, got 0"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainSpec {
    /// The most messages the drain takes, from 1 to [`MAX_DRAIN_LIMIT`].
    pub limit: u32,
    /// Messages asked of the queue's `drain()` at once, from 1 to [`MAX_BATCH`].
    pub batch: u32,
}

impl DrainSpec {
    /// Checks `limit` and `batchSize` (absent: the defaults); the error is a
    /// RangeError naming the field. `batchSize` is checked first.
    pub fn build(limit: Option<f64>, batch: Option<f64>) -> CoreResult<DrainSpec> {
        let batch = match batch {
            None => DEFAULT_BATCH,
            Some(b) => check::int_in("batchSize", b, 1, MAX_BATCH)?,
        };
        let limit = match limit {
            None => DEFAULT_DRAIN_LIMIT,
            Some(l) => check_limit(l)?,
        };
        Ok(DrainSpec { limit, batch })
    }
}

/// The one check of a drain's `limit`.
fn check_limit(limit: f64) -> CoreResult<u32> {
    check::int_in("limit", limit, 1, MAX_DRAIN_LIMIT)
}

/// One drain of one queue: its limit and what it did.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// When the drain began (the caller's clock, milliseconds).
    pub started_at: f64,
    /// When it ended; `None` while it runs.
    pub finished_at: Option<f64>,
    /// The most messages it may take.
    pub limit: u64,
    /// Messages handled successfully so far.
    pub processed: u64,
    /// Messages whose handling failed so far.
    pub failed: u64,
    /// Why the drain stopped early, if it did.
    pub error: Option<String>,
    /// `running`, `done` (queue empty or limit reached) or `failed`.
    pub status: &'static str,
}

#[derive(Debug)]
struct Queue {
    rate: f64,
    tokens: f64,
    refilled_at: f64,
    current: Option<Run>,
    last: Option<Run>,
    total_processed: u64,
    total_failed: u64,
    runs: u64,
    /// The depth the queue's own `depth()` last reported (the core cannot ask it).
    depth: Option<f64>,
}

/// The process's dead-letter queues by name, each with its token bucket and
/// runs. One drain per queue at a time, paced by the bucket, so a redrive
/// never floods the service that failed the messages in the first place.
///
/// ```
/// use reliability_core::core::dlq::DlqSet;
/// let mut set = DlqSet::new();
/// set.register("dead-letter", 10.0).unwrap(); // 10 messages per second
/// set.begin("dead-letter", 5.0, 0.0).unwrap(); // at most 5 messages
/// // A fresh bucket holds one message: the first batch starts at once.
/// assert_eq!(set.allowance("dead-letter", 0.0, 100).unwrap(), (1, 0.0));
/// assert!(!set.progress("dead-letter", 1.0, 0.0, 0.0).unwrap());
/// // The bucket is empty: wait 100 ms for the next message.
/// assert_eq!(set.allowance("dead-letter", 0.0, 100).unwrap(), (0, 100.0));
/// assert_eq!(set.allowance("dead-letter", 100.0, 100).unwrap(), (1, 0.0));
/// let run = set.end("dead-letter", 150.0, None).unwrap();
/// assert_eq!((run.processed, run.status), (1, "done"));
/// assert!(set.begin("dead-letter", 5.0, 200.0).is_ok(), "the next drain may start");
/// ```
#[derive(Debug)]
pub struct DlqSet {
    queues: Named<Queue>,
}

impl Default for DlqSet {
    fn default() -> Self {
        DlqSet {
            queues: Named::new(
                "Dead-letter queue",
                MAX_QUEUES,
                "the cap is fixed: register each queue once, at startup",
            ),
        }
    }
}

/// A queue's figures, for status and the dashboard.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueView {
    /// The queue's name.
    pub name: String,
    /// Its drain rate, in messages per second.
    pub rate: f64,
    /// The drain that runs now, if any.
    pub current: Option<Run>,
    /// The last drain that ended.
    pub last: Option<Run>,
    /// Messages handled over every run.
    pub total_processed: u64,
    /// Messages that failed over every run.
    pub total_failed: u64,
    /// How many drains have run.
    pub runs: u64,
    /// The depth last reported by the queue (`None` before its first report).
    pub depth: Option<f64>,
}

impl DlqSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or re-configures) a queue; `rate` in messages per second, in
    /// (0, [`MAX_RATE`]]. Returns the queue's index (registration order, the
    /// order of [`Self::views`]); past [`MAX_QUEUES`] a new name is refused.
    pub fn register(&mut self, name: &str, rate: f64) -> CoreResult<usize> {
        check_name("name", name)?;
        if !rate.is_finite() || rate <= 0.0 || rate > MAX_RATE {
            return Err(CoreError::range(
                "ratePerSecond",
                &format!("a number > 0 and <= {MAX_RATE}"),
                check::fmt_num(rate),
            ));
        }
        let (id, created) = self.queues.get_or_insert("name", name, || {
            Ok(Queue {
                rate,
                tokens: 0.0,
                refilled_at: f64::NAN,
                current: None,
                last: None,
                total_processed: 0,
                total_failed: 0,
                runs: 0,
                depth: None,
            })
        })?;
        if !created {
            if let Some(q) = self.queues.get_mut(id) {
                q.rate = rate;
            }
        }
        Ok(id as usize)
    }

    fn get(&mut self, name: &str) -> CoreResult<&mut Queue> {
        self.queues.require_mut(name)
    }

    /// Starts a drain of at most `limit` messages. Refused while one runs.
    pub fn begin(&mut self, name: &str, limit: f64, now: f64) -> CoreResult<()> {
        check_limit(limit)?;
        let q = self.get(name)?;
        if q.current.is_some() {
            return Err(CoreError::state(format!(
                "A drain of {name} is already running"
            )));
        }
        // A fresh bucket holds one message, so the first batch starts at once
        // and the pace is set by the rate from then on.
        q.tokens = 1.0;
        q.refilled_at = now;
        q.runs += 1;
        q.current = Some(Run {
            started_at: now,
            finished_at: None,
            limit: limit as u64,
            processed: 0,
            failed: 0,
            error: None,
            status: "running",
        });
        Ok(())
    }

    /// Messages the drain may take now (0: wait `wait_ms`), at most `batch`.
    pub fn allowance(&mut self, name: &str, now: f64, batch: u64) -> CoreResult<(u64, f64)> {
        let q = self.get(name)?;
        let Some(run) = &q.current else {
            return Err(CoreError::state(format!("No drain of {name} is running")));
        };
        let elapsed = (now - q.refilled_at).max(0.0);
        q.tokens = (q.tokens + elapsed * q.rate / 1000.0).min(q.rate.max(1.0));
        q.refilled_at = now;
        let left = run.limit - run.processed - run.failed;
        let n = (q.tokens.floor() as u64).min(left).min(batch.max(1));
        let wait = if n == 0 && left > 0 {
            ((1.0 - q.tokens) * 1000.0 / q.rate).max(1.0)
        } else {
            0.0
        };
        Ok((n, wait))
    }

    /// Records a batch's result. Returns true when the run should stop
    /// (limit reached, or the batch took nothing: the queue is empty).
    pub fn progress(
        &mut self,
        name: &str,
        processed: f64,
        failed: f64,
        now: f64,
    ) -> CoreResult<bool> {
        for (f, v) in [("processed", processed), ("failed", failed)] {
            if !v.is_finite() || v < 0.0 || v.fract() != 0.0 {
                return Err(CoreError::range(
                    f,
                    "a whole number >= 0",
                    check::fmt_num(v),
                ));
            }
        }
        let q = self.get(name)?;
        let Some(run) = &mut q.current else {
            return Err(CoreError::state(format!("No drain of {name} is running")));
        };
        let (p, f) = (processed as u64, failed as u64);
        run.processed += p;
        run.failed += f;
        q.total_processed += p;
        q.total_failed += f;
        q.tokens -= (p + f) as f64;
        let _ = now;
        Ok(p + f == 0 || run.processed + run.failed >= run.limit)
    }

    /// Ends the run (with `error` when the drain function threw).
    pub fn end(&mut self, name: &str, now: f64, error: Option<&str>) -> CoreResult<Run> {
        let q = self.get(name)?;
        let mut run = q
            .current
            .take()
            .ok_or_else(|| CoreError::state(format!("No drain of {name} is running")))?;
        run.finished_at = Some(now);
        // Shown in status and written to the audit: the same text rule as the state file.
        run.error = error.map(|e| super::text::clean(e, 500));
        run.status = if error.is_some() { "failed" } else { "done" };
        q.last = Some(run.clone());
        Ok(run)
    }

    /// Records the depth the queue's `depth()` reported (the JS side asks
    /// the queue and forwards the answer; the core exports it as `dlq_depth`).
    pub fn set_depth(&mut self, name: &str, depth: f64) -> CoreResult<()> {
        if !depth.is_finite() || depth < 0.0 {
            return Err(CoreError::range(
                "depth",
                "a finite number >= 0",
                crate::core::error::check::fmt_num(depth),
            ));
        }
        let Some(q) = self.queues.by_name_mut(name) else {
            return Err(CoreError::range(
                "name",
                "a registered dead-letter queue",
                name.chars().take(80).collect::<String>(),
            ));
        };
        q.depth = Some(depth);
        Ok(())
    }

    /// Every queue's figures, in registration order.
    pub fn views(&self) -> Vec<QueueView> {
        self.queues
            .iter()
            .map(|(_, name, q)| QueueView {
                name: name.to_string(),
                rate: q.rate,
                current: q.current.clone(),
                last: q.last.clone(),
                total_processed: q.total_processed,
                total_failed: q.total_failed,
                runs: q.runs,
                depth: q.depth,
            })
            .collect()
    }

    /// The registered queues' names, in registration order.
    pub fn names(&self) -> Vec<String> {
        self.queues
            .iter()
            .map(|(_, name, _)| name.to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paced_by_the_rate_one_run_at_a_time() {
        let mut d = DlqSet::new();
        d.register("dead-letter", 10.0).unwrap();
        d.begin("dead-letter", 25.0, 0.0).unwrap();
        assert_eq!(
            d.begin("dead-letter", 5.0, 0.0).unwrap_err().message,
            "A drain of dead-letter is already running"
        );
        // First message at once.
        assert_eq!(d.allowance("dead-letter", 0.0, 100).unwrap(), (1, 0.0));
        assert!(!d.progress("dead-letter", 1.0, 0.0, 0.0).unwrap());
        // Then 10/s: 100 ms per message.
        let (n, wait) = d.allowance("dead-letter", 50.0, 100).unwrap();
        assert_eq!(n, 0);
        assert!((wait - 50.0).abs() < 1e-6, "{wait}");
        assert_eq!(
            d.allowance("dead-letter", 1050.0, 100).unwrap().0,
            10,
            "burst capped at one second"
        );
        assert!(!d.progress("dead-letter", 9.0, 1.0, 1050.0).unwrap());
        assert_eq!(d.allowance("dead-letter", 3050.0, 100).unwrap().0, 10);
        assert!(!d.progress("dead-letter", 10.0, 0.0, 3050.0).unwrap());
        assert_eq!(
            d.allowance("dead-letter", 9050.0, 100).unwrap().0,
            4,
            "only what is left of the limit"
        );
        assert!(d.progress("dead-letter", 4.0, 0.0, 9050.0).unwrap());
        let r = d.end("dead-letter", 9051.0, None).unwrap();
        assert_eq!((r.processed, r.failed, r.status), (24, 1, "done"));
        assert!(d.allowance("dead-letter", 9100.0, 10).is_err());
        d.begin("dead-letter", 5.0, 10_000.0).unwrap();
        assert!(
            d.progress("dead-letter", 0.0, 0.0, 10_000.0).unwrap(),
            "an empty batch ends the run"
        );
        let r = d.end("dead-letter", 10_001.0, Some("boom")).unwrap();
        assert_eq!(r.status, "failed");
        let v = &d.views()[0];
        assert_eq!((v.total_processed, v.total_failed, v.runs), (24, 1, 2));
    }

    #[test]
    fn bad_input_is_refused() {
        let mut d = DlqSet::new();
        assert!(d.register("", 1.0).is_err());
        assert!(d.register("q", 0.0).is_err());
        assert!(d.register("q", f64::NAN).is_err());
        d.register("q", 5.0).unwrap();
        assert!(d.begin("q", 0.0, 0.0).is_err());
        assert!(d.begin("q", 1.5, 0.0).is_err());
        assert_eq!(
            d.begin("nope", 1.0, 0.0).unwrap_err().message,
            "Dead-letter queue not found: nope"
        );
        d.begin("q", 3.0, 0.0).unwrap();
        assert!(d.progress("q", -1.0, 0.0, 0.0).is_err());
    }

    #[test]
    fn names_follow_the_one_name_rule_and_the_set_is_capped() {
        let mut d = DlqSet::new();
        let e = d.register("", 1.0).unwrap_err();
        assert_eq!(
            e.message,
            check_name("name", "").unwrap_err().message,
            "the one name rule's message"
        );
        assert!(d.register(&"q".repeat(257), 1.0).is_err());
        assert!(
            d.register("a\u{202e}b", 1.0).is_err(),
            "bidi controls refused"
        );
        assert_eq!(d.register("q", 1.0).unwrap(), 0);
        assert_eq!(
            d.register("q", 2.0).unwrap(),
            0,
            "re-registering keeps the index"
        );
        assert_eq!(d.views()[0].rate, 2.0);
        for i in 1..MAX_QUEUES {
            d.register(&format!("q{i}"), 1.0).unwrap();
        }
        let e = d.register("one-more", 1.0).unwrap_err();
        assert_eq!(e.kind, crate::core::error::ErrorKind::Limit);
        assert_eq!(
            d.register("q", 3.0).unwrap(),
            0,
            "a known name still re-registers"
        );
        assert_eq!(d.names().len(), MAX_QUEUES);
    }
}
