//! Ops controls: the switches an operator flips during an incident, what
//! each request is allowed to do under them, and the audit trail.
//!
//! * **Safe mode**: only routes marked essential are served.
//! * **Brownout**: a dimmer `level` in [0, 1], the share of non-critical
//!   traffic served. Sheddable routes go first: a `default` route is served
//!   with probability `min(1, 2·level)`, a `sheddable` one with
//!   `max(0, 2·level − 1)`, a `critical` one always. So at 0.5 every
//!   sheddable request is shed and every default one served; at 0 only
//!   critical traffic remains (what the original's "brownout enable" meant).
//! * **Quarantine**: agent ids with a reason and an optional expiry, checked
//!   lazily against "now" (no timers).
//! * **Audit**: every action (changed or not: actions are idempotent) is
//!   kept in a bounded ring with its time, arguments, actor, source and result.
//!
//! * **Refusals** (requests without a valid token) are aggregated per
//!   source, action and reason over a minute, with a count, in their own
//!   bounded list: a flood of them never evicts an operator's action.
//! * **Applied commands**: ids of the CLI commands (local mode) this state
//!   has applied, so the CLI can tell the operator a server applied them.
//!
//! The state serialises to JSON for the state file (`to_json` / `load_json`).
//! Every text goes through one rule (`core::text`) when written, and the
//! loader applies the same rule: what the plane writes, it loads back. A file
//! that is not a state file at all is an error; inside a state file a bad
//! entry is dropped (or its text repaired) and reported, never the rest.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{json, Map, Value};

use super::error::{check, CoreError, CoreResult};
use super::json::{self, type_of as kind};
use super::metrics::Refusal as RefusalCode;
use super::rng::SplitMix64;
use super::text::{self, clean};

/// Audit entries kept (oldest dropped first, counted in `audit_dropped`).
pub const AUDIT_CAP: usize = 1000;
/// Audit entries written to the state file.
pub const AUDIT_PERSISTED: usize = 200;
/// Quarantined agents at most (a bound on memory and on the state file).
pub const MAX_QUARANTINED: usize = 10_000;
/// A reason an operator gives (safe mode, brownout, quarantine, rollback), in
/// characters: long enough for a sentence and a ticket link, short enough to
/// keep the audit ring and the state file small.
pub const MAX_REASON_CHARS: usize = 500;
/// An agent id, actor name or source, in characters (the crate's usual name bound).
pub const MAX_ID_CHARS: usize = 256;
/// An audit result (`error: <message>`, `refused: <why>`).
pub const MAX_RESULT_CHARS: usize = MAX_REASON_CHARS + 100;
/// An audit entry's arguments, as JSON text; larger ones are replaced by `{"truncated": true}`.
pub const MAX_ARGS_CHARS: usize = 4000;
/// Aggregated refusals kept (their own ring: they never evict operator actions).
pub const REFUSALS_CAP: usize = 256;
/// Aggregated refusals written to the state file.
pub const REFUSALS_PERSISTED: usize = 50;
/// Refusals from one source for one action and reason within this window share an entry.
pub const REFUSAL_WINDOW_MS: f64 = 60_000.0;
/// Applied CLI command ids kept (and written to the state file).
pub const APPLIED_CAP: usize = 256;
/// Problems one load reports in detail (the rest are counted).
pub const REPORT_CAP: usize = 50;
/// The `format` field of the state file this code writes and loads; a file of
/// another format is refused whole rather than half understood.
pub const STATE_FORMAT: u64 = 1;

/// How much a route matters under brownout: the dimmer sheds `Sheddable`
/// routes first, then `Default` ones, never `Critical` ones (see the module docs
/// for the probabilities).
///
/// ```
/// use reliability_core::core::ops::Criticality;
/// let c = Criticality::parse("criticality", "sheddable").unwrap();
/// assert_eq!(c.as_str(), "sheddable");
/// assert!(Criticality::parse("criticality", "low").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Criticality {
    /// Always served under brownout (safe mode still applies).
    Critical,
    /// Served with probability `min(1, 2·level)`: shed only below half.
    Default,
    /// Served with probability `max(0, 2·level − 1)`: the first to go.
    Sheddable,
}

impl Criticality {
    /// Reads a route's `criticality` option; anything but the three names is a
    /// RangeError naming `field`, so a typo never silently means `default`.
    pub fn parse(field: &str, s: &str) -> CoreResult<Self> {
        match s {
            "critical" => Ok(Criticality::Critical),
            "default" => Ok(Criticality::Default),
            "sheddable" => Ok(Criticality::Sheddable),
            _ => Err(CoreError::range(
                field,
                "'critical', 'default' or 'sheddable'",
                format!("\"{s}\""),
            )),
        }
    }

    /// The option's spelling, the inverse of [`Self::parse`].
    pub fn as_str(self) -> &'static str {
        match self {
            Criticality::Critical => "critical",
            Criticality::Default => "default",
            Criticality::Sheddable => "sheddable",
        }
    }
}

/// What the middleware does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The request runs (refusal code 0).
    Serve,
    /// 503: safe mode, not an essential route.
    SafeMode,
    /// 503: shed by the brownout dimmer.
    Shed,
    /// 423: the request's agent is quarantined.
    Quarantined,
}

impl Decision {
    /// 0 serves; the others are the refusal codes metrics count them under
    /// (`http_requests_refused_total`), so the middleware passes a decision on as it is.
    pub fn code(self) -> u32 {
        match self {
            Decision::Serve => 0,
            Decision::SafeMode => RefusalCode::SafeMode.code(),
            Decision::Shed => RefusalCode::Brownout.code(),
            Decision::Quarantined => RefusalCode::Quarantine.code(),
        }
    }
}

/// An on/off switch that is on (safe mode, a rolled-back rollout): who turned
/// it on, when and why, so the status and the state file can say so.
#[derive(Debug, Clone, PartialEq)]
pub struct Switch {
    /// When it was turned on (ms since the epoch); kept when only the reason changes.
    pub since: f64,
    /// The operator's reason (held to the one text rule, `core::text`).
    pub reason: String,
    /// The actor's name who turned it on.
    pub actor: String,
}

/// The brownout dimmer while it is on: its level and who set it.
#[derive(Debug, Clone, PartialEq)]
pub struct Brownout {
    /// Share of non-critical traffic served, in [0, 1].
    pub level: f64,
    /// When brownout was turned on (ms since the epoch); a level change keeps it.
    pub since: f64,
    /// The operator's reason (held to the one text rule, `core::text`).
    pub reason: String,
    /// The actor's name who last set it.
    pub actor: String,
}

/// One quarantined agent: why, by whom, and until when.
#[derive(Debug, Clone, PartialEq)]
pub struct Quarantine {
    /// When the agent was first quarantined (ms since the epoch); a new reason or
    /// ttl keeps it.
    pub since: f64,
    /// The operator's reason (held to the one text rule, `core::text`).
    pub reason: String,
    /// The actor's name who last quarantined it.
    pub actor: String,
    /// When the quarantine lapses (ms since the epoch), checked lazily against
    /// "now"; `None` holds until released.
    pub expires_at: Option<f64>,
}

/// One operator action in the audit ring, changed or not (actions are
/// idempotent, and a no-op is still worth knowing about in an incident).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Sequence number, unique and increasing across the audit and the
    /// refusals, so the two merge into one ordered view.
    pub seq: u64,
    /// When the action ran (ms since the epoch).
    pub at: f64,
    /// The action's name (`safe-mode`, `brownout`, `quarantine-agent`, ...).
    pub action: String,
    /// The action's arguments as a JSON object (never a token).
    pub args: Value,
    /// Who asked (the actor's name).
    pub actor: String,
    /// Where the request came from (an address, or `local` for the CLI).
    pub source: String,
    /// `changed`, `unchanged` or `error: <message>`.
    pub result: String,
}

/// Refused requests from one source for one action and reason within
/// [`REFUSAL_WINDOW_MS`]: one entry with a count. `seq` is renewed on each
/// refusal, so the merged audit view shows the entry at its latest time.
#[derive(Debug, Clone, PartialEq)]
pub struct RefusedAttempts {
    /// Sequence number of the latest refusal counted here (shared with the audit).
    pub seq: u64,
    /// When the first refusal of this entry came (ms since the epoch).
    pub first_at: f64,
    /// When the latest one came.
    pub at: f64,
    /// The action that was asked for.
    pub action: String,
    /// Where the refused requests came from.
    pub source: String,
    /// `refused: <why>`.
    pub result: String,
    /// Refusals counted into this entry.
    pub count: u64,
}

/// A CLI command (local mode) this state has applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The command id the CLI wrote (see [`check_command_id`]).
    pub id: String,
    /// When this state applied it (ms since the epoch).
    pub at: f64,
    /// Who applied it (e.g. `pid 1234 on host`).
    pub by: String,
    /// `changed`, `unchanged` or `error: <message>`.
    pub result: String,
}

/// Who asked, for the audit trail.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    /// Who the operator says they are (recorded, not authenticated: the token is).
    pub name: String,
    /// Where the request came from (an address, or `local` for the CLI).
    pub source: String,
}

impl Actor {
    /// The same actor with both texts sanitised (metadata: never refused).
    pub fn cleaned(&self) -> Actor {
        Actor {
            name: clean(&self.name, MAX_ID_CHARS),
            source: clean(&self.source, MAX_ID_CHARS),
        }
    }
}

/// What a load of the state file left out or repaired, one line each
/// (at most [`REPORT_CAP`] lines; `more` counts the rest).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    /// Entries left out because they could not be repaired, each with its
    /// JSON path and why.
    pub dropped: Vec<String>,
    /// Entries kept after their text was sanitised, each with its JSON path.
    pub repaired: Vec<String>,
    /// Problems past [`REPORT_CAP`], counted only, so a hostile file cannot
    /// make the report itself unbounded.
    pub more: u64,
}

impl LoadReport {
    /// True when the file loaded as written: nothing dropped or repaired.
    pub fn is_empty(&self) -> bool {
        self.dropped.is_empty() && self.repaired.is_empty() && self.more == 0
    }

    fn drop(&mut self, what: String) {
        if self.dropped.len() + self.repaired.len() < REPORT_CAP {
            self.dropped.push(what);
        } else {
            self.more += 1;
        }
    }

    fn repair(&mut self, what: String) {
        if self.dropped.len() + self.repaired.len() < REPORT_CAP {
            self.repaired.push(what);
        } else {
            self.more += 1;
        }
    }
}

/// Everything the ops plane knows on one instance: the switches, the
/// quarantine, the rollbacks, the bounded audit and refusal rings and the
/// applied CLI commands. The one place their rules live; the binding and the
/// TS wrappers only forward to it.
///
/// ```
/// use reliability_core::core::ops::{Actor, Criticality, Decision, OpsState};
/// let mut s = OpsState::new(7);
/// let who = Actor { name: "alice".into(), source: "cli".into() };
/// assert!(s.set_safe_mode(true, "db failover", &who, 1_000.0).unwrap());
/// // Setting it again is recorded but changes nothing.
/// assert!(!s.set_safe_mode(true, "db failover", &who, 2_000.0).unwrap());
/// assert_eq!(s.decide(false, Criticality::Default, None, 3_000.0), Decision::SafeMode);
/// assert_eq!(s.decide(true, Criticality::Default, None, 3_000.0), Decision::Serve);
/// assert!(s.quarantine("agent-7", "loops", Some(60_000.0), &who, 3_000.0).unwrap());
/// assert_eq!(s.decide(true, Criticality::Critical, Some("agent-7"), 4_000.0), Decision::Quarantined);
/// assert_eq!(s.audit().count(), 3);
/// ```
#[derive(Debug)]
pub struct OpsState {
    /// Safe mode, when on: only essential routes are served.
    pub safe_mode: Option<Switch>,
    /// The brownout dimmer, when on.
    pub brownout: Option<Brownout>,
    quarantine: BTreeMap<String, Quarantine>,
    /// Rollouts rolled back by an operator (name → when, reason), so a
    /// restart does not bring them back at their configured percentage.
    pub rolled_back: BTreeMap<String, Switch>,
    audit: VecDeque<AuditEntry>,
    /// Audit entries evicted from the full ring (past [`AUDIT_CAP`]), so a
    /// reader knows the trail has a gap.
    pub audit_dropped: u64,
    refusals: VecDeque<RefusedAttempts>,
    /// Aggregated refusals evicted from their full ring (past [`REFUSALS_CAP`]).
    pub refusals_dropped: u64,
    applied: VecDeque<Applied>,
    next_seq: u64,
    /// Bumped on every change; lets readers (the JS flag mirror, the file
    /// watcher) tell cheaply whether anything moved.
    pub version: u64,
    rng: SplitMix64,
}

pub(crate) fn check_text(field: &str, s: &str, max: usize, allow_empty: bool) -> CoreResult<()> {
    text::check(field, s, max, allow_empty)
}

/// Command ids the CLI writes: 1 to 64 of `[A-Za-z0-9_-]`.
pub fn check_command_id(id: &str) -> CoreResult<()> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(CoreError::range(
            "command id",
            "1 to 64 letters, digits, '-' or '_'",
            format!("{} characters", id.chars().count()),
        ));
    }
    Ok(())
}

/// Audit arguments as written: strings (and keys) sanitised, and the whole
/// replaced by `{"truncated": true}` past [`MAX_ARGS_CHARS`]; not an object → `{}`.
pub fn clean_args(v: &Value) -> Value {
    fn walk(v: &Value, depth: usize) -> Value {
        match v {
            Value::String(s) => Value::String(clean(s, MAX_REASON_CHARS)),
            Value::Array(a) if depth < 8 => {
                Value::Array(a.iter().map(|x| walk(x, depth + 1)).collect())
            }
            Value::Object(o) if depth < 8 => Value::Object(
                o.iter()
                    .map(|(k, x)| (clean(k, MAX_ID_CHARS), walk(x, depth + 1)))
                    .collect(),
            ),
            Value::Array(_) | Value::Object(_) => Value::Null,
            other => other.clone(),
        }
    }
    if !v.is_object() {
        return json!({});
    }
    let c = walk(v, 0);
    if c.to_string().chars().count() > MAX_ARGS_CHARS {
        return json!({ "truncated": true });
    }
    c
}

impl OpsState {
    /// An empty state: every switch off, nothing quarantined, empty rings.
    /// `seed` drives the brownout dimmer's coin, so tests can replay it.
    pub fn new(seed: u64) -> Self {
        OpsState {
            safe_mode: None,
            brownout: None,
            quarantine: BTreeMap::new(),
            rolled_back: BTreeMap::new(),
            audit: VecDeque::new(),
            audit_dropped: 0,
            refusals: VecDeque::new(),
            refusals_dropped: 0,
            applied: VecDeque::new(),
            next_seq: 1,
            version: 0,
            rng: SplitMix64::new(seed),
        }
    }

    fn record(&mut self, now: f64, action: &str, args: Value, who: &Actor, changed: bool) -> bool {
        // `who` is already cleaned by the caller (the switches store its name).
        if changed {
            self.version += 1;
        }
        self.push_audit(
            now,
            action,
            args,
            who,
            if changed {
                "changed".into()
            } else {
                "unchanged".into()
            },
        );
        changed
    }

    /// The next sequence number: never lower than one already used, and it
    /// saturates instead of wrapping.
    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.saturating_add(1);
        seq
    }

    /// Appends to the audit ring (actions the core does not perform itself,
    /// such as a DLQ drain). Every text is sanitised (`core::text`), so the
    /// entry always loads back from the state file.
    pub fn push_audit(&mut self, now: f64, action: &str, args: Value, who: &Actor, result: String) {
        if self.audit.len() >= AUDIT_CAP {
            self.audit.pop_front();
            self.audit_dropped += 1;
        }
        let seq = self.take_seq();
        let who = who.cleaned();
        self.audit.push_back(AuditEntry {
            seq,
            at: if now.is_finite() { now } else { 0.0 },
            action: clean(action, MAX_ID_CHARS),
            args: clean_args(&args),
            actor: who.name,
            source: who.source,
            result: clean(&result, MAX_RESULT_CHARS),
        });
    }

    /// Operator actions (and drains), oldest first; refusals are apart ([`Self::refusals`]).
    pub fn audit(&self) -> impl DoubleEndedIterator<Item = &AuditEntry> {
        self.audit.iter()
    }

    /// Records a refused request (no or wrong token): counted into the
    /// entry of the same source, action and reason in the current window,
    /// or a new entry; the refusal ring is bounded on its own. Returns the
    /// entry and whether it is new.
    pub fn record_refusal(
        &mut self,
        now: f64,
        action: &str,
        source: &str,
        why: &str,
    ) -> (RefusedAttempts, bool) {
        let now = if now.is_finite() { now } else { 0.0 };
        let action = clean(action, MAX_ID_CHARS);
        let source = clean(source, MAX_ID_CHARS);
        let result = clean(&format!("refused: {why}"), MAX_RESULT_CHARS);
        let seq = self.take_seq();
        let found = self.refusals.iter().rposition(|r| {
            r.source == source
                && r.action == action
                && r.result == result
                && now - r.first_at < REFUSAL_WINDOW_MS
                && now >= r.first_at
        });
        if let Some(i) = found {
            let mut r = self.refusals.remove(i).expect("index from rposition");
            r.count = r.count.saturating_add(1);
            r.at = r.at.max(now);
            r.seq = seq;
            self.refusals.push_back(r.clone());
            return (r, false);
        }
        if self.refusals.len() >= REFUSALS_CAP {
            self.refusals.pop_front();
            self.refusals_dropped += 1;
        }
        let r = RefusedAttempts {
            seq,
            first_at: now,
            at: now,
            action,
            source,
            result,
            count: 1,
        };
        self.refusals.push_back(r.clone());
        (r, true)
    }

    /// Aggregated refusals, oldest update first.
    pub fn refusals(&self) -> impl DoubleEndedIterator<Item = &RefusedAttempts> {
        self.refusals.iter()
    }

    /// The last `limit` entries of the audit and the refusals merged by
    /// sequence number, oldest first, as JSON values.
    pub fn audit_view(&self, limit: usize) -> Vec<Value> {
        let mut a = self.audit.iter().rev().peekable();
        let mut r = self.refusals.iter().rev().peekable();
        let mut out = Vec::new();
        while out.len() < limit {
            let take_audit = match (a.peek(), r.peek()) {
                (Some(x), Some(y)) => x.seq >= y.seq,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if take_audit {
                out.push(audit_json(a.next().expect("peeked")));
            } else {
                out.push(refusal_json(r.next().expect("peeked")));
            }
        }
        out.reverse();
        out
    }

    /// Notes that the CLI command `id` was applied (by `by`, with `result`).
    pub fn mark_applied(&mut self, id: &str, by: &str, result: &str, now: f64) -> CoreResult<()> {
        check_command_id(id)?;
        if self.applied.len() >= APPLIED_CAP {
            self.applied.pop_front();
        }
        self.applied.push_back(Applied {
            id: id.to_string(),
            at: if now.is_finite() { now } else { 0.0 },
            by: clean(by, MAX_ID_CHARS),
            result: clean(result, MAX_RESULT_CHARS),
        });
        self.version += 1;
        Ok(())
    }

    /// The applied command `id`, if this state has it.
    pub fn applied(&self, id: &str) -> Option<&Applied> {
        self.applied.iter().rev().find(|a| a.id == id)
    }

    /// Turns safe mode on or off. Returns whether anything changed.
    pub fn set_safe_mode(
        &mut self,
        on: bool,
        reason: &str,
        who: &Actor,
        now: f64,
    ) -> CoreResult<bool> {
        let who = &who.cleaned();
        check::at_least("now", now, f64::MIN)?;
        check_text("reason", reason, MAX_REASON_CHARS, true)?;
        let changed = match (on, &self.safe_mode) {
            (true, Some(s)) if s.reason == reason => false,
            (true, _) => {
                let since = self.safe_mode.as_ref().map_or(now, |s| s.since);
                self.safe_mode = Some(Switch {
                    since,
                    reason: reason.to_string(),
                    actor: who.name.clone(),
                });
                true
            }
            (false, None) => false,
            (false, Some(_)) => {
                self.safe_mode = None;
                true
            }
        };
        Ok(self.record(
            now,
            "safe-mode",
            json!({ "enabled": on, "reason": reason }),
            who,
            changed,
        ))
    }

    /// Sets the brownout dimmer (`level` 0..=1, the share of non-critical
    /// traffic served), or turns brownout off with `None`.
    pub fn set_brownout(
        &mut self,
        level: Option<f64>,
        reason: &str,
        who: &Actor,
        now: f64,
    ) -> CoreResult<bool> {
        let who = &who.cleaned();
        check::at_least("now", now, f64::MIN)?;
        check_text("reason", reason, MAX_REASON_CHARS, true)?;
        if let Some(l) = level {
            if !l.is_finite() || !(0.0..=1.0).contains(&l) {
                return Err(CoreError::range(
                    "level",
                    "a number from 0 to 1 (the share of non-critical traffic served)",
                    check::fmt_num(l),
                ));
            }
        }
        let changed = match (level, &self.brownout) {
            (Some(l), Some(b)) if b.level == l && b.reason == reason => false,
            (Some(l), _) => {
                let since = self.brownout.as_ref().map_or(now, |b| b.since);
                self.brownout = Some(Brownout {
                    level: l,
                    since,
                    reason: reason.to_string(),
                    actor: who.name.clone(),
                });
                true
            }
            (None, None) => false,
            (None, Some(_)) => {
                self.brownout = None;
                true
            }
        };
        let args = match level {
            Some(l) => json!({ "enabled": true, "level": l, "reason": reason }),
            None => json!({ "enabled": false, "reason": reason }),
        };
        Ok(self.record(now, "brownout", args, who, changed))
    }

    /// Quarantines `agent` (its requests get [`Decision::Quarantined`]) for
    /// `ttl_ms` (> 0, at most a year) or until released. Quarantining it again
    /// updates the reason and expiry and keeps `since`. At most
    /// [`MAX_QUARANTINED`] agents: one more is a RangeError. Returns whether
    /// anything changed; the action is audited either way.
    pub fn quarantine(
        &mut self,
        agent: &str,
        reason: &str,
        ttl_ms: Option<f64>,
        who: &Actor,
        now: f64,
    ) -> CoreResult<bool> {
        let who = &who.cleaned();
        check::at_least("now", now, f64::MIN)?;
        check_text("agentId", agent, MAX_ID_CHARS, false)?;
        check_text("reason", reason, MAX_REASON_CHARS, true)?;
        if let Some(t) = ttl_ms {
            if !t.is_finite() || t <= 0.0 || t > 365.0 * 86_400_000.0 {
                return Err(CoreError::range(
                    "ttlMs",
                    "a number of ms > 0 and at most one year",
                    check::fmt_num(t),
                ));
            }
        }
        self.expire(now);
        if !self.quarantine.contains_key(agent) && self.quarantine.len() >= MAX_QUARANTINED {
            return Err(CoreError::range(
                "agentId",
                &format!("one of at most {MAX_QUARANTINED} quarantined agents"),
                "one more",
            ));
        }
        let expires_at = ttl_ms.map(|t| now + t);
        let changed = match self.quarantine.get(agent) {
            Some(q) if q.reason == reason && ttl_ms.is_none() && q.expires_at.is_none() => false,
            Some(q) => {
                let since = q.since;
                self.quarantine.insert(
                    agent.to_string(),
                    Quarantine {
                        since,
                        reason: reason.to_string(),
                        actor: who.name.clone(),
                        expires_at,
                    },
                );
                true
            }
            None => {
                self.quarantine.insert(
                    agent.to_string(),
                    Quarantine {
                        since: now,
                        reason: reason.to_string(),
                        actor: who.name.clone(),
                        expires_at,
                    },
                );
                true
            }
        };
        let mut args = json!({ "agentId": agent, "reason": reason });
        if let Some(t) = ttl_ms {
            args["ttlMs"] = json!(t);
        }
        Ok(self.record(now, "quarantine-agent", args, who, changed))
    }

    /// Lifts `agent`'s quarantine. Returns whether it was quarantined (an
    /// expired one counts as already released); audited either way.
    pub fn release(&mut self, agent: &str, who: &Actor, now: f64) -> CoreResult<bool> {
        let who = &who.cleaned();
        check::at_least("now", now, f64::MIN)?;
        check_text("agentId", agent, MAX_ID_CHARS, false)?;
        self.expire(now);
        let changed = self.quarantine.remove(agent).is_some();
        Ok(self.record(
            now,
            "release-agent",
            json!({ "agentId": agent }),
            who,
            changed,
        ))
    }

    /// Drops quarantines whose time is up. Returns how many.
    pub fn expire(&mut self, now: f64) -> usize {
        let before = self.quarantine.len();
        self.quarantine
            .retain(|_, q| q.expires_at.is_none_or(|t| t > now));
        let n = before - self.quarantine.len();
        if n > 0 {
            self.version += 1;
        }
        n
    }

    /// The quarantine map itself, for `ops_merge` to apply other instances' changes.
    pub(crate) fn quarantine_mut(&mut self) -> &mut BTreeMap<String, Quarantine> {
        &mut self.quarantine
    }

    /// How many agents the map holds, expired or not: after [`Self::expire`]
    /// at `now` the same as `quarantine_list(now).count()`, without the O(n) walk.
    pub fn quarantine_len(&self) -> usize {
        self.quarantine.len()
    }

    /// `agent`'s quarantine if it holds at `now`; an expired entry reads as
    /// none even before [`Self::expire`] drops it (no timers).
    pub fn quarantined(&self, agent: &str, now: f64) -> Option<&Quarantine> {
        self.quarantine
            .get(agent)
            .filter(|q| q.expires_at.is_none_or(|t| t > now))
    }

    /// The quarantines that hold at `now`, by agent id in order (for the
    /// status view).
    pub fn quarantine_list(&self, now: f64) -> impl Iterator<Item = (&String, &Quarantine)> {
        self.quarantine
            .iter()
            .filter(move |(_, q)| q.expires_at.is_none_or(|t| t > now))
    }

    /// Earliest quarantine expiry, so readers know when the flags go stale.
    pub fn next_expiry(&self) -> Option<f64> {
        self.quarantine
            .values()
            .filter_map(|q| q.expires_at)
            .min_by(|a, b| a.total_cmp(b))
    }

    /// Marks rollouts rolled back (`None` name = the ones listed in `names`).
    pub fn record_rollback(
        &mut self,
        names: &[String],
        reason: &str,
        who: &Actor,
        now: f64,
    ) -> CoreResult<bool> {
        let who = &who.cleaned();
        check::at_least("now", now, f64::MIN)?;
        check_text("reason", reason, MAX_REASON_CHARS, true)?;
        for (i, n) in names.iter().enumerate() {
            check_text(&format!("names[{i}]"), n, MAX_ID_CHARS, false)?;
        }
        let mut changed = false;
        for n in names {
            if !self.rolled_back.contains_key(n) {
                changed = true;
                self.rolled_back.insert(
                    n.clone(),
                    Switch {
                        since: now,
                        reason: reason.to_string(),
                        actor: who.name.clone(),
                    },
                );
            }
        }
        Ok(self.record(
            now,
            "rollback",
            json!({ "rollouts": names, "reason": reason }),
            who,
            changed,
        ))
    }

    /// Forgets a recorded rollback (the rollout was restarted on purpose).
    pub fn clear_rollback(&mut self, name: &str) -> bool {
        let changed = self.rolled_back.remove(name).is_some();
        if changed {
            self.version += 1;
        }
        changed
    }

    /// The decision for one request: `essential` routes pass safe mode,
    /// `criticality` decides under brownout, `agent` (if any) is checked
    /// against the quarantine.
    pub fn decide(
        &mut self,
        essential: bool,
        criticality: Criticality,
        agent: Option<&str>,
        now: f64,
    ) -> Decision {
        if let Some(a) = agent {
            if self.quarantined(a, now).is_some() {
                return Decision::Quarantined;
            }
        }
        if self.safe_mode.is_some() && !essential {
            return Decision::SafeMode;
        }
        if let Some(b) = &self.brownout {
            let p = match criticality {
                Criticality::Critical => 1.0,
                Criticality::Default => (2.0 * b.level).min(1.0),
                Criticality::Sheddable => (2.0 * b.level - 1.0).max(0.0),
            };
            if p < 1.0 && self.rng.next_f64() >= p {
                return Decision::Shed;
            }
        }
        Decision::Serve
    }

    // ---- the state file ---------------------------------------------------

    /// The persistent part as JSON: switches, quarantines, rollbacks, the
    /// last audit entries and refusals, the applied CLI commands and the next
    /// sequence number. The failed-token limiter is not saved.
    pub fn to_json(&self, now: f64) -> String {
        let sw = |s: &Switch| json!({ "since": s.since, "reason": s.reason, "actor": s.actor });
        let quarantine: Map<String, Value> = self
            .quarantine_list(now)
            .map(|(k, q)| (k.clone(), json!({ "since": q.since, "reason": q.reason, "actor": q.actor, "expiresAt": q.expires_at })))
            .collect();
        let audit: Vec<Value> = self
            .audit
            .iter()
            .rev()
            .take(AUDIT_PERSISTED)
            .rev()
            .map(audit_json)
            .collect();
        let refused: Vec<Value> = self
            .refusals
            .iter()
            .rev()
            .take(REFUSALS_PERSISTED)
            .rev()
            .map(refusal_json)
            .collect();
        let applied: Vec<Value> = self
            .applied
            .iter()
            .map(|a| json!({ "id": a.id, "at": a.at, "by": a.by, "result": a.result }))
            .collect();
        let v = json!({
            "format": STATE_FORMAT,
            "version": self.version,
            "savedAt": now,
            "nextSeq": self.next_seq,
            "safeMode": self.safe_mode.as_ref().map(sw),
            "brownout": self.brownout.as_ref().map(|b| json!({ "level": b.level, "since": b.since, "reason": b.reason, "actor": b.actor })),
            "quarantine": quarantine,
            "rolledBack": self.rolled_back.iter().map(|(k, s)| (k.clone(), sw(s))).collect::<Map<String, Value>>(),
            "audit": audit,
            "refused": refused,
            "applied": applied,
        });
        serde_json::to_string_pretty(&v).unwrap_or_default()
    }

    /// Replaces the persistent part from a state file's text.
    ///
    /// Only a text that is not a state file at all (not JSON, not an object,
    /// another `format`) is an error, and then nothing changes. Inside a
    /// state file each entry stands alone: one with a text that breaks the
    /// rule of `core::text` is repaired (sanitised), one that cannot be
    /// repaired (a number that is not a number, a bad agent id) is dropped;
    /// both are listed in the report, every other entry is kept.
    ///
    /// ```
    /// use reliability_core::core::ops::OpsState;
    /// let mut s = OpsState::new(1);
    /// let r = s.load_json(r#"{"format":1,"safeMode":{"since":1,"reason":"ok","actor":"a"},"audit":[{"seq":1,"at":"x"}]}"#).unwrap();
    /// assert!(s.safe_mode.is_some());
    /// assert_eq!(r.dropped, ["$.audit[0]: $.audit[0].at must be a finite number, got a string"]);
    /// ```
    pub fn load_json(&mut self, text: &str) -> CoreResult<LoadReport> {
        let v = json::parse("state file", "valid JSON", text, json::NO_SIZE_LIMIT)?;
        let o = json::object("state file", &v)?;
        json::check_format(o, "$.format", STATE_FORMAT)?;
        let mut rep = LoadReport::default();
        let safe_mode = match o.get("safeMode") {
            None | Some(Value::Null) => None,
            Some(v) => switch("$.safeMode", v, &mut rep),
        };
        let brownout = match o.get("brownout") {
            None | Some(Value::Null) => None,
            Some(v) => switch("$.brownout", v, &mut rep).and_then(|s| {
                let level = v
                    .get("level")
                    .and_then(Value::as_f64)
                    .filter(|l| (0.0..=1.0).contains(l));
                match level {
                    Some(level) => Some(Brownout {
                        level,
                        since: s.since,
                        reason: s.reason,
                        actor: s.actor,
                    }),
                    None => {
                        rep.drop(format!(
                            "$.brownout: $.brownout.level must be a number from 0 to 1, got {}",
                            v.get("level")
                                .map_or("missing".to_string(), |l| l.to_string())
                        ));
                        None
                    }
                }
            }),
        };
        let mut quarantine = BTreeMap::new();
        if let Some(q) = object(o, "$.quarantine", "quarantine", &mut rep) {
            for (id, e) in q {
                let path = format!("$.quarantine[{id:?}]");
                if quarantine.len() >= MAX_QUARANTINED {
                    rep.drop(format!(
                        "{path}: more than {MAX_QUARANTINED} quarantined agents"
                    ));
                    continue;
                }
                if let Err(err) = check_text(&path, id, MAX_ID_CHARS, false) {
                    rep.drop(format!("{path}: {err}"));
                    continue;
                }
                let Some(s) = switch(&path, e, &mut rep) else {
                    continue;
                };
                let expires_at = match e.get("expiresAt") {
                    None | Some(Value::Null) => None,
                    Some(x) => {
                        match x.as_f64().filter(|t| t.is_finite()) {
                            Some(t) => Some(t),
                            None => {
                                rep.drop(format!("{path}: {path}.expiresAt must be a finite number or null, got {}", kind(x)));
                                continue;
                            }
                        }
                    }
                };
                quarantine.insert(
                    id.clone(),
                    Quarantine {
                        since: s.since,
                        reason: s.reason,
                        actor: s.actor,
                        expires_at,
                    },
                );
            }
        }
        let mut rolled_back = BTreeMap::new();
        if let Some(r) = object(o, "$.rolledBack", "rolledBack", &mut rep) {
            for (name, e) in r {
                let path = format!("$.rolledBack[{name:?}]");
                if let Err(err) = check_text(&path, name, MAX_ID_CHARS, false) {
                    rep.drop(format!("{path}: {err}"));
                    continue;
                }
                if let Some(s) = switch(&path, e, &mut rep) {
                    rolled_back.insert(name.clone(), s);
                }
            }
        }
        let mut max_seq = 0u64;
        let mut audit = VecDeque::new();
        for (path, eo) in entries(o, "audit", AUDIT_CAP, &mut rep) {
            // One message per dropped entry: the first reason is enough.
            let Some(seq) = seq_field(&eo, &path, &mut rep) else {
                continue;
            };
            let Some(at) = num_field(&eo, &path, "at", &mut rep) else {
                continue;
            };
            max_seq = max_seq.max(seq);
            let args = match eo.get("args") {
                None | Some(Value::Null) => Value::Null,
                Some(a) => {
                    let c = clean_args(a);
                    if &c != a {
                        rep.repair(format!("{path}.args: sanitised"));
                    }
                    c
                }
            };
            audit.push_back(AuditEntry {
                seq,
                at,
                action: text_field(&eo, &path, "action", MAX_ID_CHARS, &mut rep),
                args,
                actor: text_field(&eo, &path, "actor", MAX_ID_CHARS, &mut rep),
                source: text_field(&eo, &path, "source", MAX_ID_CHARS, &mut rep),
                result: text_field(&eo, &path, "result", MAX_RESULT_CHARS, &mut rep),
            });
        }
        let mut refusals = VecDeque::new();
        for (path, eo) in entries(o, "refused", REFUSALS_CAP, &mut rep) {
            // One message per dropped entry: the first reason is enough.
            let Some(seq) = seq_field(&eo, &path, &mut rep) else {
                continue;
            };
            let Some(at) = num_field(&eo, &path, "at", &mut rep) else {
                continue;
            };
            let Some(first_at) = num_field(&eo, &path, "firstAt", &mut rep) else {
                continue;
            };
            let Some(count) = eo.get("count").and_then(Value::as_u64).filter(|&c| c >= 1) else {
                rep.drop(format!("{path}: {path}.count must be a positive integer"));
                continue;
            };
            max_seq = max_seq.max(seq);
            refusals.push_back(RefusedAttempts {
                seq,
                first_at,
                at,
                action: text_field(&eo, &path, "action", MAX_ID_CHARS, &mut rep),
                source: text_field(&eo, &path, "source", MAX_ID_CHARS, &mut rep),
                result: text_field(&eo, &path, "result", MAX_RESULT_CHARS, &mut rep),
                count,
            });
        }
        let mut applied = VecDeque::new();
        for (path, eo) in entries(o, "applied", APPLIED_CAP, &mut rep) {
            let id = match eo.get("id") {
                Some(Value::String(id)) if check_command_id(id).is_ok() => id.clone(),
                _ => {
                    rep.drop(format!("{path}: {path}.id must be a command id"));
                    continue;
                }
            };
            let Some(at) = num_field(&eo, &path, "at", &mut rep) else {
                continue;
            };
            applied.push_back(Applied {
                id,
                at,
                by: text_field(&eo, &path, "by", MAX_ID_CHARS, &mut rep),
                result: text_field(&eo, &path, "result", MAX_RESULT_CHARS, &mut rep),
            });
        }
        let file_next = match o.get("nextSeq") {
            None | Some(Value::Null) => 0,
            Some(n) => n.as_u64().unwrap_or_else(|| {
                rep.drop(format!(
                    "$.nextSeq: must be a positive integer, got {}",
                    kind(n)
                ));
                0
            }),
        };
        // Everything read: apply. Sequence numbers only ever go up.
        self.safe_mode = safe_mode;
        self.brownout = brownout;
        self.quarantine = quarantine;
        self.rolled_back = rolled_back;
        self.next_seq = self.next_seq.max(file_next).max(max_seq.saturating_add(1));
        self.audit = audit;
        self.refusals = refusals;
        self.applied = applied;
        self.version += 1;
        Ok(rep)
    }
}

/// A switch (safe mode, brownout, a quarantine, a rollback): `since` must be a
/// number (else dropped); `reason` and `actor` are repaired if they break the text rule.
fn switch(path: &str, v: &Value, rep: &mut LoadReport) -> Option<Switch> {
    let Some(o) = v.as_object() else {
        rep.drop(format!("{path}: must be an object, got {}", kind(v)));
        return None;
    };
    let since = num_field(o, path, "since", rep)?;
    Some(Switch {
        since,
        reason: text_field(o, path, "reason", MAX_REASON_CHARS, rep),
        actor: text_field(o, path, "actor", MAX_ID_CHARS, rep),
    })
}

/// A top-level object (`quarantine`, `rolledBack`); another type is dropped and reported.
fn object<'a>(
    o: &'a Map<String, Value>,
    path: &str,
    key: &str,
    rep: &mut LoadReport,
) -> Option<&'a Map<String, Value>> {
    match o.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(other) => {
            rep.drop(format!("{path}: must be an object, got {}", kind(other)));
            None
        }
    }
}

/// The object entries of a top-level array (the last `cap`), with their paths.
fn entries(
    o: &Map<String, Value>,
    key: &str,
    cap: usize,
    rep: &mut LoadReport,
) -> Vec<(String, Map<String, Value>)> {
    let a = match o.get(key) {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(a)) => a,
        Some(other) => {
            rep.drop(format!("$.{key}: must be an array, got {}", kind(other)));
            return Vec::new();
        }
    };
    let from = a.len().saturating_sub(cap);
    let mut out = Vec::new();
    for (i, e) in a.iter().enumerate().skip(from) {
        let path = format!("$.{key}[{i}]");
        match e {
            Value::Object(m) => out.push((path, m.clone())),
            other => rep.drop(format!("{path}: must be an object, got {}", kind(other))),
        }
    }
    out
}

fn seq_field(o: &Map<String, Value>, path: &str, rep: &mut LoadReport) -> Option<u64> {
    let s = o.get("seq").and_then(Value::as_u64);
    if s.is_none() {
        rep.drop(format!(
            "{path}: {path}.seq must be a positive integer, got {}",
            o.get("seq").map_or("missing", kind)
        ));
    }
    s
}

fn num_field(o: &Map<String, Value>, path: &str, key: &str, rep: &mut LoadReport) -> Option<f64> {
    match json::finite_field(o, path, key) {
        Ok(v) => Some(v),
        Err(e) => {
            rep.drop(format!("{path}: {e}"));
            None
        }
    }
}

/// A text field; missing, not a string, or breaking the text rule: repaired and reported.
fn text_field(
    o: &Map<String, Value>,
    path: &str,
    key: &str,
    max: usize,
    rep: &mut LoadReport,
) -> String {
    match o.get(key) {
        Some(Value::String(s)) if text::is_clean(s, max) => s.clone(),
        Some(Value::String(s)) => {
            let why = check_text(&format!("{path}.{key}"), s, max, true)
                .err()
                .map_or_else(String::new, |e| e.message);
            rep.repair(format!("{path}.{key}: sanitised ({why})"));
            clean(s, max)
        }
        other => {
            rep.repair(format!(
                "{path}.{key}: must be a string, got {}; set to \"\"",
                other.map_or("missing", kind)
            ));
            String::new()
        }
    }
}

/// An audit entry as the status view and the state file show it.
pub fn audit_json(e: &AuditEntry) -> Value {
    json!({ "seq": e.seq, "at": e.at, "action": e.action, "args": e.args, "actor": e.actor, "source": e.source, "result": e.result })
}

/// An aggregated refusal in the audit's shape, plus `count` and `firstAt`.
pub fn refusal_json(r: &RefusedAttempts) -> Value {
    json!({ "seq": r.seq, "at": r.at, "firstAt": r.first_at, "action": r.action, "args": {}, "actor": "unauthenticated", "source": r.source, "result": r.result, "count": r.count })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op() -> Actor {
        Actor {
            name: "alice".into(),
            source: "127.0.0.1".into(),
        }
    }

    #[test]
    fn safe_mode_serves_only_essential_routes_and_is_idempotent() {
        let mut s = OpsState::new(1);
        assert_eq!(
            s.decide(false, Criticality::Default, None, 0.0),
            Decision::Serve
        );
        assert!(s.set_safe_mode(true, "db failover", &op(), 10.0).unwrap());
        assert!(
            !s.set_safe_mode(true, "db failover", &op(), 11.0).unwrap(),
            "same again: unchanged"
        );
        assert_eq!(
            s.decide(false, Criticality::Critical, None, 12.0),
            Decision::SafeMode
        );
        assert_eq!(
            s.decide(true, Criticality::Sheddable, None, 12.0),
            Decision::Serve
        );
        assert!(s
            .set_safe_mode(true, "still failing over", &op(), 13.0)
            .unwrap());
        assert_eq!(
            s.safe_mode.as_ref().unwrap().since,
            10.0,
            "since is kept when only the reason changes"
        );
        assert!(s.set_safe_mode(false, "", &op(), 14.0).unwrap());
        assert!(!s.set_safe_mode(false, "", &op(), 15.0).unwrap());
        let results: Vec<&str> = s.audit().map(|e| e.result.as_str()).collect();
        assert_eq!(
            results,
            ["changed", "unchanged", "changed", "changed", "unchanged"]
        );
        assert_eq!(s.version, 3);
    }

    #[test]
    fn brownout_dimmer_sheds_sheddable_first() {
        let mut s = OpsState::new(42);
        let share = |s: &mut OpsState, c: Criticality| {
            let n = 20_000;
            (0..n)
                .filter(|_| s.decide(false, c, None, 0.0) == Decision::Serve)
                .count() as f64
                / n as f64
        };
        s.set_brownout(Some(0.5), "", &op(), 0.0).unwrap();
        assert_eq!(share(&mut s, Criticality::Default), 1.0);
        assert_eq!(share(&mut s, Criticality::Sheddable), 0.0);
        s.set_brownout(Some(0.25), "", &op(), 0.0).unwrap();
        let d = share(&mut s, Criticality::Default);
        assert!((d - 0.5).abs() < 0.02, "default served {d}");
        s.set_brownout(Some(0.9), "", &op(), 0.0).unwrap();
        let sh = share(&mut s, Criticality::Sheddable);
        assert!((sh - 0.8).abs() < 0.02, "sheddable served {sh}");
        s.set_brownout(Some(0.0), "critical only", &op(), 0.0)
            .unwrap();
        assert_eq!(share(&mut s, Criticality::Default), 0.0);
        assert_eq!(share(&mut s, Criticality::Critical), 1.0);
        assert_eq!(s.set_brownout(Some(1.5), "", &op(), 0.0).unwrap_err().message, "level must be a number from 0 to 1 (the share of non-critical traffic served), got 1.5");
        assert!(s.set_brownout(Some(f64::NAN), "", &op(), 0.0).is_err());
        assert!(s.set_brownout(None, "", &op(), 0.0).unwrap());
        assert_eq!(share(&mut s, Criticality::Sheddable), 1.0);
    }

    #[test]
    fn quarantine_with_expiry_checked_lazily() {
        let mut s = OpsState::new(1);
        assert!(s
            .quarantine("agent-7", "looping", Some(1000.0), &op(), 0.0)
            .unwrap());
        assert_eq!(
            s.decide(true, Criticality::Critical, Some("agent-7"), 999.0),
            Decision::Quarantined
        );
        assert_eq!(
            s.decide(true, Criticality::Critical, Some("agent-8"), 999.0),
            Decision::Serve
        );
        assert_eq!(s.next_expiry(), Some(1000.0));
        assert_eq!(
            s.decide(true, Criticality::Critical, Some("agent-7"), 1000.0),
            Decision::Serve,
            "expired"
        );
        assert_eq!(s.quarantine_list(1000.0).count(), 0);
        s.quarantine("a", "", None, &op(), 0.0).unwrap();
        assert!(!s.quarantine("a", "", None, &op(), 1.0).unwrap());
        assert!(s.release("a", &op(), 2.0).unwrap());
        assert!(!s.release("a", &op(), 3.0).unwrap());
        assert!(s.quarantine("", "", None, &op(), 0.0).is_err());
        assert!(s
            .quarantine("x", "", Some(-1.0), &op(), 0.0)
            .unwrap_err()
            .message
            .starts_with("ttlMs"));
        assert!(
            s.quarantine("x\n", "", None, &op(), 0.0).is_err(),
            "no control characters (log injection)"
        );
    }

    #[test]
    fn state_round_trips_and_bad_files_change_nothing() {
        let mut s = OpsState::new(1);
        s.set_safe_mode(true, "maintenance", &op(), 5.0).unwrap();
        s.set_brownout(Some(0.3), "latency", &op(), 6.0).unwrap();
        s.quarantine("agent-1", "spam", None, &op(), 7.0).unwrap();
        s.quarantine("agent-2", "gone soon", Some(10.0), &op(), 7.0)
            .unwrap();
        s.record_rollback(&["search-v2".into()], "errors", &op(), 8.0)
            .unwrap();
        let text = s.to_json(8.0);
        let mut t = OpsState::new(2);
        t.load_json(&text).unwrap();
        assert_eq!(t.safe_mode, s.safe_mode);
        assert_eq!(t.brownout, s.brownout);
        assert_eq!(t.quarantine_list(8.0).count(), 2);
        assert!(t.rolled_back.contains_key("search-v2"));
        assert_eq!(t.audit().count(), 5);
        t.set_safe_mode(false, "", &op(), 9.0).unwrap();
        assert_eq!(
            t.audit().last().unwrap().seq,
            6,
            "sequence numbers continue"
        );

        let before = t.to_json(9.0);
        for bad in [
            "",
            "not json",
            "[]",
            r#"{"format": 99}"#,
            r#"{"safeMode": null}"#,
        ] {
            assert!(t.load_json(bad).is_err(), "{bad}");
            assert_eq!(
                t.to_json(9.0),
                before,
                "a text that is not a state file applies nothing: {bad}"
            );
        }
        assert_eq!(
            t.load_json("[]").unwrap_err().message,
            "state file must be a JSON object, got an array"
        );
    }

    #[test]
    fn a_bad_entry_costs_only_itself() {
        let text = r#"{"format": 1,
            "safeMode": {"since": 1, "reason": "db\u0085failover", "actor": "alice"},
            "brownout": {"level": 2, "since": 0, "reason": "", "actor": ""},
            "quarantine": {"ok": {"since": 0, "reason": "", "actor": ""}, "bad\u200bid": {"since": 0, "reason": "", "actor": ""}, "nan": {"since": "x", "reason": "", "actor": ""}},
            "rolledBack": {"search-v2": {"since": 2, "reason": "errors", "actor": "x"}},
            "audit": [{"seq": 1}, {"seq": 7, "at": 3, "action": "drain-dlq", "args": {}, "actor": "a\nb", "source": "s", "result": "error: " }],
            "nextSeq": 40}"#;
        let mut s = OpsState::new(1);
        let r = s.load_json(text).unwrap();
        assert_eq!(
            s.safe_mode.as_ref().unwrap().reason,
            "db\u{fffd}failover",
            "repaired, kept"
        );
        assert!(s.brownout.is_none());
        assert_eq!(
            s.quarantine_list(0.0)
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>(),
            ["ok"]
        );
        assert!(
            s.rolled_back.contains_key("search-v2"),
            "the rollback stays rolled back"
        );
        assert_eq!(s.audit().count(), 1);
        assert_eq!(r.dropped.len(), 4, "{r:?}");
        assert!(r.dropped.iter().any(|d| d.starts_with("$.brownout")));
        assert!(r.dropped.iter().any(|d| d.starts_with("$.audit[0]")));
        assert_eq!(r.repaired.len(), 2, "{r:?}");
        s.set_safe_mode(false, "", &op(), 9.0).unwrap();
        assert_eq!(
            s.audit().last().unwrap().seq,
            40,
            "the saved next sequence number is honoured"
        );
    }

    #[test]
    fn what_the_writer_writes_the_reader_loads() {
        let mut s = OpsState::new(1);
        let hostile = Actor {
            name: format!("x\u{7}{}", "a".repeat(400)),
            source: "10.0.0.1\u{85}".into(),
        };
        s.set_safe_mode(true, "m", &hostile, 1.0).unwrap();
        s.push_audit(
            2.0,
            "drain-dlq",
            json!({ "queue": "q\nx" }),
            &hostile,
            format!("error: line1\nline2 {}", "e".repeat(700)),
        );
        s.record_refusal(3.0, "safe-mode", "1.2.3.4\u{85}", "missing token");
        s.mark_applied("abc-1", "pid 1", "changed", 4.0).unwrap();
        let text = s.to_json(5.0);
        let mut t = OpsState::new(2);
        let r = t.load_json(&text).unwrap();
        assert!(r.is_empty(), "{r:?}");
        assert_eq!(
            t.to_json(5.0)
                .replace(&format!("\"version\": {}", t.version), ""),
            text.replace(&format!("\"version\": {}", s.version), "")
        );
        assert!(t.applied("abc-1").is_some());
        assert!(s.mark_applied("bad id", "", "", 0.0).is_err());
        assert!(s
            .quarantine("a\u{202e}b", "", None, &op(), 0.0)
            .unwrap_err()
            .message
            .contains("bidirectional"));
    }

    #[test]
    fn refusals_are_aggregated_and_never_evict_operator_actions() {
        let mut s = OpsState::new(1);
        s.quarantine("agent-1", "spam", None, &op(), 0.0).unwrap();
        for i in 0..1500 {
            s.record_refusal(
                1.0 + i as f64,
                "safe-mode",
                &format!("10.0.{}.{}", i / 256, i % 256),
                "wrong token",
            );
        }
        for i in 0..100 {
            s.record_refusal(2000.0 + i as f64, "safe-mode", "10.9.9.9", "wrong token");
        }
        assert_eq!(s.audit().count(), 1, "the operator's action is still there");
        assert_eq!(s.refusals().count(), REFUSALS_CAP);
        assert_eq!(
            s.refusals().last().unwrap().count,
            100,
            "one source in one window: one entry"
        );
        let view = s.audit_view(5);
        assert_eq!(view.len(), 5);
        assert_eq!(view[4]["count"], 100);
        let seqs: Vec<u64> = s
            .audit_view(10_000)
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "merged by sequence number"
        );
        let (_, first) = s.record_refusal(
            2000.0 + REFUSAL_WINDOW_MS,
            "safe-mode",
            "10.9.9.9",
            "wrong token",
        );
        assert!(first, "a new window opens a new entry");
        let mut t = OpsState::new(2);
        t.load_json(&s.to_json(0.0)).unwrap();
        assert_eq!(t.quarantine_list(0.0).count(), 1);
        assert_eq!(t.audit().count(), 1);
    }

    #[test]
    fn sequence_numbers_never_go_back() {
        let mut s = OpsState::new(1);
        s.load_json(&format!(r#"{{"format": 1, "audit": [{{"seq": {}, "at": 0, "action": "a", "args": {{}}, "actor": "", "source": "", "result": ""}}]}}"#, u64::MAX)).unwrap();
        s.set_safe_mode(true, "", &op(), 0.0).unwrap();
        assert_eq!(
            s.audit().last().unwrap().seq,
            u64::MAX,
            "saturates, never wraps"
        );
        let mut t = OpsState::new(1);
        for _ in 0..5 {
            t.set_safe_mode(true, "", &op(), 0.0).unwrap();
        }
        t.load_json(r#"{"format": 1}"#).unwrap();
        t.set_safe_mode(true, "", &op(), 0.0).unwrap();
        assert_eq!(
            t.audit().last().unwrap().seq,
            6,
            "an empty file does not restart the numbers"
        );
    }

    #[test]
    fn audit_ring_is_bounded_and_counts_drops() {
        let mut s = OpsState::new(1);
        for i in 0..(AUDIT_CAP + 5) {
            s.set_safe_mode(i % 2 == 0, "", &op(), i as f64).unwrap();
        }
        assert_eq!(s.audit().count(), AUDIT_CAP);
        assert_eq!(s.audit_dropped, 5);
        assert_eq!(s.audit().next().unwrap().seq, 6);
        let v: Value = serde_json::from_str(&s.to_json(0.0)).unwrap();
        assert_eq!(v["audit"].as_array().unwrap().len(), AUDIT_PERSISTED);
    }
}
