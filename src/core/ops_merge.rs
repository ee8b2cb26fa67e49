//! Merging the ops state of several instances without losing an
//! acknowledged change: a state-based CRDT over the ops controls.
//!
//! * Every local change is stamped with a hybrid logical clock ([`Stamp`]:
//!   physical ms, a counter for changes within one ms, the node id for
//!   ties). A node's stamps never go backwards, and a change made after
//!   seeing another's is stamped after it, even with skewed clocks.
//! * Safe mode and brownout are last-writer-wins registers ([`Reg`]): the
//!   value with the highest stamp wins, and "off" is a value too.
//! * Quarantines and rollbacks are maps of such registers, one per agent or
//!   rollout (an LWW-element set): an add and a remove each carry their own
//!   stamp (a remove is a tombstone), so concurrent changes to different
//!   agents all survive, and an add racing a remove of the same agent is
//!   settled by stamp, the same way on every instance.
//! * [`Replica::merge`] is the join of a semilattice: commutative,
//!   associative and idempotent (tests/properties.rs checks the laws), so
//!   instances that exchange documents in any order, any number of times,
//!   before or after an outage, end up equal.
//!
//! [`Replication`] ties a replica to the [`OpsState`] it mirrors: local
//! actions are recorded by comparing the two after each action, remote
//! documents are parsed defensively (a bad entry is dropped and counted, the
//! rest kept) and the winners are applied to the ops state.
//!
//! ```
//! use reliability_core::core::ops::{Actor, OpsState};
//! use reliability_core::core::ops_merge::Replication;
//! let who = Actor { name: "alice".into(), source: "test".into() };
//! let (mut a, mut ra) = (OpsState::new(1), Replication::new("a"));
//! let (mut b, mut rb) = (OpsState::new(2), Replication::new("b"));
//! a.quarantine("agent-1", "", None, &who, 10.0).unwrap();
//! ra.record_local(&a, 10.0);
//! b.quarantine("agent-2", "", None, &who, 11.0).unwrap();
//! rb.record_local(&b, 11.0);
//! rb.merge_remote(&mut b, &ra.export(), 12.0).unwrap();
//! ra.merge_remote(&mut a, &rb.export(), 12.0).unwrap();
//! assert!(a.quarantined("agent-2", 13.0).is_some() && b.quarantined("agent-1", 13.0).is_some());
//! ```

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::error::CoreResult;
use super::json::{self, finite};
use super::ops::{
    check_text, Actor, Brownout, OpsState, Quarantine, Switch, MAX_ID_CHARS, MAX_QUARANTINED,
    MAX_REASON_CHARS,
};

/// The replica document's format number.
pub const REPLICA_FORMAT: u64 = 1;
/// Removed (or expired) quarantines remembered, so a late copy of the add
/// does not bring them back; past it the oldest are forgotten.
pub const MAX_TOMBSTONES: usize = 10_000;
/// Rollback registers (recorded and cleared) kept at most.
pub const MAX_ROLLBACKS: usize = 10_000;
/// A stamp more than a day ahead of this node's clock is refused as garbage:
/// accepting it would pin every later local change behind it.
pub const MAX_FUTURE_MS: f64 = 86_400_000.0;

/// A hybrid-logical-clock stamp. Ordered by `ms`, then `counter`, then `node`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
///
/// ```
/// use reliability_core::core::ops_merge::Stamp;
/// let a = Stamp { ms: 1_000, counter: 0, node: "b".into() };
/// let b = Stamp { ms: 1_000, counter: 1, node: "a".into() };
/// // Same millisecond: the counter orders them before the node id does.
/// assert!(a < b);
/// ```
pub struct Stamp {
    /// Physical time (ms since the epoch), or the highest stamp seen so far
    /// when this node's clock lags it (so stamps never go backwards).
    pub ms: u64,
    /// Orders changes within one `ms` (a burst of actions, or a change made
    /// right after seeing a remote stamp of the same ms).
    pub counter: u32,
    /// The node that made the change; compared last, only to break ties.
    pub node: String,
}

/// A last-writer-wins register: `None` is "off" / "removed".
#[derive(Debug, Clone, PartialEq)]
pub struct Reg<T> {
    /// When the value was set; the higher stamp wins a merge.
    pub at: Stamp,
    /// The value, or `None` for off / removed (a tombstone, so a removal
    /// wins over an older add on every instance).
    pub value: Option<T>,
}

impl<T> Default for Reg<T> {
    fn default() -> Self {
        Reg {
            at: Stamp::default(),
            value: None,
        }
    }
}

/// A value a register can hold: it serialises itself, and that text breaks
/// ties between equal stamps (which only a node id reused by two processes,
/// or two old state files loaded with stamp 0, can produce).
pub trait Entry: Clone + PartialEq {
    /// The value as it travels in a replica document.
    fn to_value(&self) -> Value;
    /// Reads a value from a remote document; `None` for anything malformed
    /// or breaking the text rule, so a bad register is dropped, never applied.
    fn parse(v: &Value) -> Option<Self>;
}

fn text_of(o: &Map<String, Value>, key: &str, max: usize) -> Option<String> {
    let s = o.get(key)?.as_str()?;
    check_text(key, s, max, true).ok()?;
    Some(s.to_string())
}

impl Entry for Switch {
    fn to_value(&self) -> Value {
        json!({ "since": self.since, "reason": self.reason, "actor": self.actor })
    }
    fn parse(v: &Value) -> Option<Self> {
        let o = v.as_object()?;
        Some(Switch {
            since: finite(o, "since")?,
            reason: text_of(o, "reason", MAX_REASON_CHARS)?,
            actor: text_of(o, "actor", MAX_ID_CHARS)?,
        })
    }
}

impl Entry for Brownout {
    fn to_value(&self) -> Value {
        json!({ "level": self.level, "since": self.since, "reason": self.reason, "actor": self.actor })
    }
    fn parse(v: &Value) -> Option<Self> {
        let s = Switch::parse(v)?;
        let level = finite(v.as_object()?, "level").filter(|l| (0.0..=1.0).contains(l))?;
        Some(Brownout {
            level,
            since: s.since,
            reason: s.reason,
            actor: s.actor,
        })
    }
}

impl Entry for Quarantine {
    fn to_value(&self) -> Value {
        json!({ "since": self.since, "reason": self.reason, "actor": self.actor, "expiresAt": self.expires_at })
    }
    fn parse(v: &Value) -> Option<Self> {
        let s = Switch::parse(v)?;
        let expires_at = match v.get("expiresAt") {
            None | Some(Value::Null) => None,
            Some(_) => Some(finite(v.as_object()?, "expiresAt")?),
        };
        Some(Quarantine {
            since: s.since,
            reason: s.reason,
            actor: s.actor,
            expires_at,
        })
    }
}

/// True when `a` should replace `b`: a higher stamp; on equal stamps a value
/// beats "removed", and between two values the greater serialisation wins
/// (any fixed rule will do, as long as every node applies the same one).
fn beats<T: Entry>(a: &Reg<T>, b: &Reg<T>) -> bool {
    match a.at.cmp(&b.at) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => match (&a.value, &b.value) {
            (Some(_), None) => true,
            (None, _) => false,
            (Some(x), Some(y)) => tie_key(x) > tie_key(y),
        },
    }
}

fn tie_key<T: Entry>(x: &T) -> String {
    x.to_value().to_string()
}

fn merge_reg<T: Entry>(mine: &mut Reg<T>, theirs: &Reg<T>) -> bool {
    if beats(theirs, mine) {
        *mine = theirs.clone();
        true
    } else {
        false
    }
}

fn merge_map<T: Entry>(
    mine: &mut BTreeMap<String, Reg<T>>,
    theirs: &BTreeMap<String, Reg<T>>,
    field: fn(String) -> Field,
    out: &mut Vec<Field>,
) {
    for (k, r) in theirs {
        let changed = match mine.get_mut(k) {
            Some(m) => merge_reg(m, r),
            None => {
                mine.insert(k.clone(), r.clone());
                true
            }
        };
        if changed {
            out.push(field(k.clone()));
        }
    }
}

/// One register of the ops state, as named in a merge's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// The safe-mode switch.
    SafeMode,
    /// The brownout dimmer.
    Brownout,
    /// One agent's quarantine, by agent id.
    Quarantine(String),
    /// One rollout's rollback, by rollout name.
    RolledBack(String),
}

/// The ops controls as a CRDT: what every instance exchanges.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replica {
    /// Safe mode as a register (`None` = off).
    pub safe_mode: Reg<Switch>,
    /// The brownout dimmer as a register (`None` = off).
    pub brownout: Reg<Brownout>,
    /// One register per agent quarantined here or remotely, tombstones
    /// included (live ones bounded by `MAX_QUARANTINED`, tombstones by
    /// [`MAX_TOMBSTONES`]).
    pub quarantine: BTreeMap<String, Reg<Quarantine>>,
    /// One register per rollout rolled back or cleared (bounded by [`MAX_ROLLBACKS`]).
    pub rolled_back: BTreeMap<String, Reg<Switch>>,
}

fn reg_json<T: Entry>(r: &Reg<T>) -> Value {
    json!({ "at": [r.at.ms, r.at.counter, r.at.node], "value": r.value.as_ref().map(Entry::to_value) })
}

fn stamp_of(v: &Value, max_ms: f64) -> Option<Stamp> {
    let a = v.as_array().filter(|a| a.len() == 3)?;
    let ms = a[0]
        .as_u64()
        .filter(|&m| m <= (1u64 << 53) && (m as f64) <= max_ms)?;
    let counter = u32::try_from(a[1].as_u64()?).ok()?;
    let node = a[2].as_str()?;
    check_text("node", node, MAX_ID_CHARS, true).ok()?;
    Some(Stamp {
        ms,
        counter,
        node: node.to_string(),
    })
}

fn parse_reg<T: Entry>(v: &Value, max_ms: f64) -> Option<Reg<T>> {
    let o = v.as_object()?;
    let at = stamp_of(o.get("at")?, max_ms)?;
    let value = match o.get("value") {
        None | Some(Value::Null) => None,
        Some(x) => Some(T::parse(x)?),
    };
    Some(Reg { at, value })
}

fn parse_map<T: Entry>(
    o: &Map<String, Value>,
    key: &str,
    cap: usize,
    max_ms: f64,
    dropped: &mut u32,
) -> BTreeMap<String, Reg<T>> {
    let mut out = BTreeMap::new();
    match o.get(key) {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let ok = out.len() < cap && check_text(key, k, MAX_ID_CHARS, false).is_ok();
                match parse_reg::<T>(v, max_ms).filter(|_| ok) {
                    Some(r) => {
                        out.insert(k.clone(), r);
                    }
                    None => *dropped += 1,
                }
            }
        }
        Some(_) => *dropped += 1,
    }
    out
}

impl Replica {
    /// Merges `other` into `self` (the join: per register, the higher stamp
    /// wins). Returns the registers that changed.
    pub fn merge(&mut self, other: &Replica) -> Vec<Field> {
        let mut out = Vec::new();
        if merge_reg(&mut self.safe_mode, &other.safe_mode) {
            out.push(Field::SafeMode);
        }
        if merge_reg(&mut self.brownout, &other.brownout) {
            out.push(Field::Brownout);
        }
        merge_map(
            &mut self.quarantine,
            &other.quarantine,
            Field::Quarantine,
            &mut out,
        );
        merge_map(
            &mut self.rolled_back,
            &other.rolled_back,
            Field::RolledBack,
            &mut out,
        );
        out
    }

    /// The highest stamp held (what a receiving clock must move past).
    pub fn max_stamp(&self) -> Stamp {
        let regs = [&self.safe_mode.at, &self.brownout.at].into_iter();
        regs.chain(self.quarantine.values().map(|r| &r.at))
            .chain(self.rolled_back.values().map(|r| &r.at))
            .max()
            .cloned()
            .unwrap_or_default()
    }

    /// The document another instance parses with [`Replica::parse`].
    pub fn to_json(&self, node: &str) -> Value {
        json!({
            "format": REPLICA_FORMAT,
            "node": node,
            "safeMode": reg_json(&self.safe_mode),
            "brownout": reg_json(&self.brownout),
            "quarantine": self.quarantine.iter().map(|(k, r)| (k.clone(), reg_json(r))).collect::<Map<String, Value>>(),
            "rolledBack": self.rolled_back.iter().map(|(k, r)| (k.clone(), reg_json(r))).collect::<Map<String, Value>>(),
        })
    }

    /// Reads a replica document. A document that is not an object of this
    /// format is an error; inside it, every register that does not check
    /// out (wrong types, a reason too long or with control characters, a
    /// level outside 0..1, a stamp more than a day past `now`, entries past
    /// the caps) is dropped and counted in the second value; the rest is kept.
    pub fn parse(v: &Value, now: f64) -> CoreResult<(Replica, u32)> {
        let o = json::object("replica", v)?;
        json::check_format(o, "replica.format", REPLICA_FORMAT)?;
        let max_ms = if now.is_finite() {
            now + MAX_FUTURE_MS
        } else {
            MAX_FUTURE_MS
        };
        let mut dropped = 0;
        let one = |key: &str| -> Option<&Value> { o.get(key).filter(|v| !v.is_null()) };
        let safe_mode = match one("safeMode") {
            None => Reg::default(),
            Some(v) => parse_reg(v, max_ms).unwrap_or_else(|| {
                dropped += 1;
                Reg::default()
            }),
        };
        let brownout = match one("brownout") {
            None => Reg::default(),
            Some(v) => parse_reg(v, max_ms).unwrap_or_else(|| {
                dropped += 1;
                Reg::default()
            }),
        };
        let quarantine = parse_map(
            o,
            "quarantine",
            MAX_QUARANTINED + MAX_TOMBSTONES,
            max_ms,
            &mut dropped,
        );
        let rolled_back = parse_map(o, "rolledBack", MAX_ROLLBACKS, max_ms, &mut dropped);
        Ok((
            Replica {
                safe_mode,
                brownout,
                quarantine,
                rolled_back,
            },
            dropped,
        ))
    }

    /// [`Replica::parse`] of a document's text.
    pub fn parse_text(text: &str, now: f64) -> CoreResult<(Replica, u32)> {
        let v = json::parse("replica", "valid JSON", text, json::NO_SIZE_LIMIT)?;
        Replica::parse(&v, now)
    }
}

/// A quarantine that still applies at `now`.
fn live(q: &Option<Quarantine>, now: f64) -> Option<&Quarantine> {
    q.as_ref().filter(|q| q.expires_at.is_none_or(|t| t > now))
}

/// One change a merge applied to the ops state.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// `safeMode`, `brownout`, `quarantine` or `rolledBack`.
    pub kind: &'static str,
    /// The agent or rollout, for the two sets.
    pub key: Option<String>,
    /// Whether the switch is now on / the entry now present.
    pub present: bool,
    /// The node whose change won.
    pub node: String,
}

/// What merging one remote document did, for the audit and the metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MergeReport {
    /// The remote changes that won and were applied to the ops state.
    pub applied: Vec<Applied>,
    /// Registers of the remote document dropped as invalid or past a cap.
    pub dropped: u32,
}

/// A replica kept beside the ops state it mirrors, with this node's clock.
#[derive(Debug)]
pub struct Replication {
    node: String,
    clock: (u64, u32),
    /// The CRDT this node exchanges with the others.
    pub replica: Replica,
    /// The ops version the replica last matched in full (see [`Self::synced_with`]).
    synced: Option<u64>,
}

impl Replication {
    /// An empty replica for node `node` (cut to [`MAX_ID_CHARS`] characters;
    /// [`Self::set_node`] validates a configured id), its clock at zero.
    pub fn new(node: &str) -> Self {
        Replication {
            node: node.chars().take(MAX_ID_CHARS).collect(),
            clock: (0, 0),
            replica: Replica::default(),
            synced: None,
        }
    }

    /// Whether the replica matched `ops` at its current version: then a
    /// local action needs only its own fields stamped ([`Self::record_targets`]),
    /// not the full comparison of [`Self::record_local`], which costs O(n log n)
    /// in the quarantines and made creating n quarantines O(n² log n). Every
    /// change of the ops fields moves `ops.version`, so a stale mark is never
    /// trusted.
    pub fn synced_with(&self, ops: &OpsState) -> bool {
        self.synced == Some(ops.version)
    }

    /// After a local action on a replica that was [`Self::synced_with`] `ops`
    /// before it: stamps `targets` (the only fields the action can have
    /// changed; expiry is no difference, replicas read quarantines as live or
    /// not at `now`) and marks the replica in sync again.
    pub fn record_targets(&mut self, ops: &OpsState, targets: &[Field], now: f64) {
        for t in targets {
            self.touch(ops, t, now);
        }
        self.synced = Some(ops.version);
    }

    /// Names this node in its stamps (an instance id); it only breaks ties.
    pub fn set_node(&mut self, node: &str) -> CoreResult<()> {
        check_text("instanceId", node, MAX_ID_CHARS, false)?;
        self.node = node.to_string();
        Ok(())
    }

    /// The node id this replica stamps its changes with.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The stamp of a local change at `now`: past every stamp this node made or saw.
    fn tick(&mut self, now: f64) -> Stamp {
        let pt = if now.is_finite() && now > 0.0 {
            now.min((1u64 << 53) as f64) as u64
        } else {
            0
        };
        if pt > self.clock.0 {
            self.clock = (pt, 0);
        } else {
            self.clock.1 = self.clock.1.saturating_add(1);
        }
        Stamp {
            ms: self.clock.0,
            counter: self.clock.1,
            node: self.node.clone(),
        }
    }

    fn observe(&mut self, s: &Stamp) {
        if (s.ms, s.counter) > self.clock {
            self.clock = (s.ms, s.counter);
        }
    }

    /// Stamps every register where the ops state differs from the replica
    /// (the action just taken). Call after every local change. Returns how
    /// many registers were stamped.
    pub fn record_local(&mut self, ops: &OpsState, now: f64) -> usize {
        self.record(ops, now, None)
    }

    /// Stamps `field` with its current value in `ops` even when the action
    /// changed nothing here: an operator's "safe mode off" on an instance
    /// that never heard of the "on" is still a later write, and must win
    /// over it once the two meet.
    pub fn touch(&mut self, ops: &OpsState, field: &Field, now: f64) {
        let at = self.tick(now);
        match field {
            Field::SafeMode => {
                self.replica.safe_mode = Reg {
                    at,
                    value: ops.safe_mode.clone(),
                }
            }
            Field::Brownout => {
                self.replica.brownout = Reg {
                    at,
                    value: ops.brownout.clone(),
                }
            }
            Field::Quarantine(k) => {
                self.replica.quarantine.insert(
                    k.clone(),
                    Reg {
                        at,
                        value: ops.quarantined(k, now).cloned(),
                    },
                );
            }
            Field::RolledBack(k) => {
                self.replica.rolled_back.insert(
                    k.clone(),
                    Reg {
                        at,
                        value: ops.rolled_back.get(k).cloned(),
                    },
                );
            }
        }
        self.gc(now);
    }

    fn record(&mut self, ops: &OpsState, now: f64, fixed: Option<Stamp>) -> usize {
        let mut stamp: Option<Stamp> = fixed;
        let mut n = 0;
        let mut next = |this: &mut Self| -> Stamp {
            n += 1;
            stamp.get_or_insert_with(|| this.tick(now)).clone()
        };
        if self.replica.safe_mode.value != ops.safe_mode {
            self.replica.safe_mode = Reg {
                at: next(self),
                value: ops.safe_mode.clone(),
            };
        }
        if self.replica.brownout.value != ops.brownout {
            self.replica.brownout = Reg {
                at: next(self),
                value: ops.brownout.clone(),
            };
        }
        let held: BTreeMap<&String, &Quarantine> = ops.quarantine_list(now).collect();
        let mut changes: Vec<(String, Option<Quarantine>)> = Vec::new();
        for (k, q) in &held {
            if self
                .replica
                .quarantine
                .get(*k)
                .and_then(|r| live(&r.value, now))
                != Some(*q)
            {
                changes.push(((*k).clone(), Some((*q).clone())));
            }
        }
        for (k, r) in &self.replica.quarantine {
            if live(&r.value, now).is_some() && !held.contains_key(k) {
                changes.push((k.clone(), None));
            }
        }
        for (k, value) in changes {
            let at = next(self);
            self.replica.quarantine.insert(k, Reg { at, value });
        }
        let mut changes: Vec<(String, Option<Switch>)> = Vec::new();
        for (k, s) in &ops.rolled_back {
            if self
                .replica
                .rolled_back
                .get(k)
                .and_then(|r| r.value.as_ref())
                != Some(s)
            {
                changes.push((k.clone(), Some(s.clone())));
            }
        }
        for (k, r) in &self.replica.rolled_back {
            if r.value.is_some() && !ops.rolled_back.contains_key(k) {
                changes.push((k.clone(), None));
            }
        }
        for (k, value) in changes {
            let at = next(self);
            self.replica.rolled_back.insert(k, Reg { at, value });
        }
        self.gc(now);
        self.synced = Some(ops.version);
        n
    }

    /// Forgets the oldest tombstones (and expired quarantines) past the caps.
    fn gc(&mut self, now: f64) {
        // Under the caps there is nothing to forget: skip the O(n) scan that
        // every action would otherwise pay.
        if self.replica.quarantine.len() <= MAX_TOMBSTONES
            && self.replica.rolled_back.len() <= MAX_ROLLBACKS
        {
            return;
        }
        let dead: Vec<(Stamp, String)> = self
            .replica
            .quarantine
            .iter()
            .filter(|(_, r)| live(&r.value, now).is_none())
            .map(|(k, r)| (r.at.clone(), k.clone()))
            .collect();
        if dead.len() > MAX_TOMBSTONES {
            let mut dead = dead;
            dead.sort();
            let over = dead.len() - MAX_TOMBSTONES;
            for (_, k) in dead.into_iter().take(over) {
                self.replica.quarantine.remove(&k);
            }
        }
        if self.replica.rolled_back.len() > MAX_ROLLBACKS {
            let mut dead: Vec<(Stamp, String)> = self
                .replica
                .rolled_back
                .iter()
                .filter(|(_, r)| r.value.is_none())
                .map(|(k, r)| (r.at.clone(), k.clone()))
                .collect();
            dead.sort();
            let over = self.replica.rolled_back.len() - MAX_ROLLBACKS;
            for (_, k) in dead.into_iter().take(over) {
                self.replica.rolled_back.remove(&k);
            }
        }
    }

    /// This node's replica document.
    pub fn export(&self) -> String {
        self.replica.to_json(&self.node).to_string()
    }

    /// Merges another instance's document into the replica and applies what
    /// won to `ops`, each applied change with an audit entry (source
    /// `replica:<node>`). A document that is not a replica at all is an
    /// error that changes nothing; bad registers inside one are dropped and
    /// counted. New quarantines past [`MAX_QUARANTINED`] are refused (counted).
    pub fn merge_remote(
        &mut self,
        ops: &mut OpsState,
        text: &str,
        now: f64,
    ) -> CoreResult<MergeReport> {
        let (mut remote, mut dropped) = Replica::parse_text(text, now)?;
        // Whatever was done here and not yet recorded must take part in the merge.
        self.record_local(ops, now);
        let mut held = self
            .replica
            .quarantine
            .values()
            .filter(|r| live(&r.value, now).is_some())
            .count();
        remote.quarantine.retain(|k, r| {
            let adds = live(&r.value, now).is_some()
                && self
                    .replica
                    .quarantine
                    .get(k)
                    .is_none_or(|m| live(&m.value, now).is_none());
            if !adds || !beats(r, self.replica.quarantine.get(k).unwrap_or(&Reg::default())) {
                return true;
            }
            if held >= MAX_QUARANTINED {
                dropped += 1;
                return false;
            }
            held += 1;
            true
        });
        let room = MAX_ROLLBACKS.saturating_sub(self.replica.rolled_back.len());
        let mut fresh = 0;
        remote.rolled_back.retain(|k, _| {
            if self.replica.rolled_back.contains_key(k) {
                return true;
            }
            fresh += 1;
            if fresh > room {
                dropped += 1;
            }
            fresh <= room
        });
        self.observe(&remote.max_stamp());
        let fields = self.replica.merge(&remote);
        let mut applied = Vec::new();
        for f in fields {
            if let Some(a) = self.apply(ops, &f, now) {
                applied.push(a);
            }
        }
        if !applied.is_empty() {
            ops.version += 1;
        }
        self.gc(now);
        Ok(MergeReport { applied, dropped })
    }

    /// Makes the ops state hold the replica's value of `f`; audits and
    /// reports it when that changed anything.
    fn apply(&self, ops: &mut OpsState, f: &Field, now: f64) -> Option<Applied> {
        let (kind, key, present, node, action, args, actor) = match f {
            Field::SafeMode => {
                let r = &self.replica.safe_mode;
                if ops.safe_mode == r.value {
                    return None;
                }
                ops.safe_mode = r.value.clone();
                let reason = r.value.as_ref().map_or("", |s| s.reason.as_str());
                let actor = r.value.as_ref().map(|s| s.actor.clone());
                (
                    "safeMode",
                    None,
                    r.value.is_some(),
                    &r.at.node,
                    "safe-mode",
                    json!({ "enabled": r.value.is_some(), "reason": reason }),
                    actor,
                )
            }
            Field::Brownout => {
                let r = &self.replica.brownout;
                if ops.brownout == r.value {
                    return None;
                }
                ops.brownout = r.value.clone();
                let args = match &r.value {
                    Some(b) => json!({ "enabled": true, "level": b.level, "reason": b.reason }),
                    None => json!({ "enabled": false, "reason": "" }),
                };
                (
                    "brownout",
                    None,
                    r.value.is_some(),
                    &r.at.node,
                    "brownout",
                    args,
                    r.value.as_ref().map(|b| b.actor.clone()),
                )
            }
            Field::Quarantine(k) => {
                let r = self.replica.quarantine.get(k)?;
                let want = live(&r.value, now);
                let map = ops.quarantine_mut();
                if map.get(k).filter(|q| q.expires_at.is_none_or(|t| t > now)) == want {
                    return None;
                }
                match want {
                    Some(q) => {
                        map.insert(k.clone(), q.clone());
                        (
                            "quarantine",
                            Some(k.clone()),
                            true,
                            &r.at.node,
                            "quarantine-agent",
                            json!({ "agentId": k, "reason": q.reason }),
                            Some(q.actor.clone()),
                        )
                    }
                    None => {
                        map.remove(k);
                        (
                            "quarantine",
                            Some(k.clone()),
                            false,
                            &r.at.node,
                            "release-agent",
                            json!({ "agentId": k }),
                            None,
                        )
                    }
                }
            }
            Field::RolledBack(k) => {
                let r = self.replica.rolled_back.get(k)?;
                if ops.rolled_back.get(k) == r.value.as_ref() {
                    return None;
                }
                match &r.value {
                    Some(s) => {
                        ops.rolled_back.insert(k.clone(), s.clone());
                        (
                            "rolledBack",
                            Some(k.clone()),
                            true,
                            &r.at.node,
                            "rollback",
                            json!({ "rollouts": [k], "reason": s.reason }),
                            Some(s.actor.clone()),
                        )
                    }
                    None => {
                        ops.rolled_back.remove(k);
                        (
                            "rolledBack",
                            Some(k.clone()),
                            false,
                            &r.at.node,
                            "clear-rollback",
                            json!({ "name": k }),
                            None,
                        )
                    }
                }
            }
        };
        let who = Actor {
            name: actor
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| node.clone()),
            source: format!("replica:{node}"),
        };
        ops.push_audit(now, action, args, &who, "changed (merged)".into());
        Some(Applied {
            kind,
            key,
            present,
            node: node.clone(),
        })
    }

    /// The state file's text: the ops state's JSON with this replica (the
    /// clocks) under `replica`, so a restart keeps them.
    pub fn file_json(&self, ops_json: &str) -> String {
        // Spliced in as one compact line rather than parsed and printed again:
        // with 10,000 quarantines that halves the cost of every save.
        let body = ops_json.trim_end();
        match body.strip_suffix('}') {
            Some(head) if body.starts_with('{') => {
                let head = head.trim_end();
                let sep = if head.ends_with('{') { "" } else { "," };
                format!(
                    "{head}{sep}\n  \"replica\": {}\n}}",
                    self.replica.to_json(&self.node)
                )
            }
            _ => ops_json.to_string(),
        }
    }

    /// After the ops state was loaded from a state file's `text`: merges
    /// the file's clocks (`replica`, bad registers dropped) with what this
    /// node already held, and makes `ops` hold the winners, so a reload (the
    /// CLI wrote the file) does not undo a change merged from another
    /// instance since the file was last written. A file without clocks
    /// loads with stamp 0 when it is the first load (an older file: any
    /// change stamped later wins over it); on a later reload, what such a
    /// file changed is a local change, stamped now.
    pub fn after_load(&mut self, ops: &mut OpsState, text: &str, first_load: bool, now: f64) {
        let file = json::read(text, json::NO_SIZE_LIMIT)
            .ok()
            .and_then(|v| v.get("replica").cloned());
        match file.map(|v| Replica::parse(&v, now)) {
            Some(Ok((r, _))) => {
                self.observe(&r.max_stamp());
                self.replica.merge(&r);
                let mut fields = vec![Field::SafeMode, Field::Brownout];
                fields.extend(
                    self.replica
                        .quarantine
                        .keys()
                        .cloned()
                        .map(Field::Quarantine),
                );
                fields.extend(
                    self.replica
                        .rolled_back
                        .keys()
                        .cloned()
                        .map(Field::RolledBack),
                );
                for f in &fields {
                    self.apply(ops, f, now);
                }
                self.record(ops, now, None);
            }
            _ if first_load => {
                self.replica = Replica::default();
                self.record(ops, now, Some(Stamp::default()));
            }
            _ => {
                self.record(ops, now, None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(n: &str) -> Actor {
        Actor {
            name: n.into(),
            source: "test".into(),
        }
    }

    fn node(id: &str, seed: u64) -> (OpsState, Replication) {
        (OpsState::new(seed), Replication::new(id))
    }

    fn sync(from: &Replication, to: (&mut OpsState, &mut Replication), now: f64) -> MergeReport {
        let doc = from.export();
        to.1.merge_remote(to.0, &doc, now).unwrap()
    }

    #[test]
    fn concurrent_quarantines_on_two_nodes_all_survive() {
        let (mut a, mut ra) = node("a", 1);
        let (mut b, mut rb) = node("b", 2);
        for i in 0..40 {
            a.quarantine(&format!("a{i}"), "", None, &who("alice"), 100.0 + i as f64)
                .unwrap();
            ra.record_local(&a, 100.0 + i as f64);
            b.quarantine(&format!("b{i}"), "", None, &who("bob"), 100.0 + i as f64)
                .unwrap();
            rb.record_local(&b, 100.0 + i as f64);
        }
        let r = sync(&ra, (&mut b, &mut rb), 200.0);
        assert_eq!(r.applied.len(), 40);
        sync(&rb, (&mut a, &mut ra), 201.0);
        assert_eq!(a.quarantine_list(300.0).count(), 80);
        assert_eq!(b.quarantine_list(300.0).count(), 80);
        assert_eq!(ra.replica, rb.replica, "they agree");
        assert!(a.audit().any(|e| e.source == "replica:b"
            && e.action == "quarantine-agent"
            && e.actor == "bob"));
        // Idempotent: the same document again changes nothing.
        assert!(sync(&rb, (&mut a, &mut ra), 202.0).applied.is_empty());
    }

    #[test]
    fn a_release_after_the_add_wins_and_a_late_add_copy_does_not_resurrect() {
        let (mut a, mut ra) = node("a", 1);
        let (mut b, mut rb) = node("b", 2);
        a.quarantine("x", "spam", None, &who("alice"), 10.0)
            .unwrap();
        ra.record_local(&a, 10.0);
        let old_doc = ra.export();
        sync(&ra, (&mut b, &mut rb), 11.0);
        b.release("x", &who("bob"), 12.0).unwrap();
        rb.record_local(&b, 12.0);
        sync(&rb, (&mut a, &mut ra), 13.0);
        assert!(a.quarantined("x", 14.0).is_none());
        // The stale document (from before the release) arrives late.
        rb.merge_remote(&mut b, &old_doc, 15.0).unwrap();
        assert!(b.quarantined("x", 16.0).is_none());
    }

    #[test]
    fn switches_changed_during_an_outage_merge_by_stamp() {
        let (mut a, mut ra) = node("a", 1);
        let (mut b, mut rb) = node("b", 2);
        // Both cut off: a browns out, b turns safe mode on, later a sets a second brownout level.
        a.set_brownout(Some(0.3), "a", &who("alice"), 100.0)
            .unwrap();
        ra.record_local(&a, 100.0);
        b.set_safe_mode(true, "b", &who("bob"), 101.0).unwrap();
        rb.record_local(&b, 101.0);
        b.set_brownout(Some(0.6), "b", &who("bob"), 102.0).unwrap();
        rb.record_local(&b, 102.0);
        sync(&ra, (&mut b, &mut rb), 103.0);
        sync(&rb, (&mut a, &mut ra), 103.0);
        for s in [&a, &b] {
            assert_eq!(
                s.brownout.as_ref().unwrap().level,
                0.6,
                "the later brownout wins"
            );
            assert_eq!(
                s.safe_mode.as_ref().unwrap().reason,
                "b",
                "the safe mode from b survives"
            );
        }
    }

    #[test]
    fn a_change_after_seeing_a_future_stamp_still_wins() {
        let (mut a, mut ra) = node("a", 1);
        let (mut b, mut rb) = node("b", 2);
        // b's clock runs 5 s ahead.
        b.set_safe_mode(true, "", &who("bob"), 5_100.0).unwrap();
        rb.record_local(&b, 5_100.0);
        sync(&rb, (&mut a, &mut ra), 100.0);
        a.set_safe_mode(false, "", &who("alice"), 101.0).unwrap();
        ra.record_local(&a, 101.0);
        sync(&ra, (&mut b, &mut rb), 5_102.0);
        assert!(
            b.safe_mode.is_none(),
            "the off made after seeing the on wins despite the skew"
        );
    }

    #[test]
    fn bad_registers_are_dropped_the_rest_kept() {
        let (mut a, mut ra) = node("a", 1);
        let far: u64 = 9_000_000_000_000_000;
        let doc = json!({
            "format": 1, "node": "evil",
            "safeMode": {"at": "yesterday", "value": {"since": 0, "reason": "", "actor": ""}},
            "brownout": {"at": [5, 0, "b"], "value": {"level": 7, "since": 0, "reason": "", "actor": ""}},
            "quarantine": {
                "ok": {"at": [5, 0, "b"], "value": {"since": 1, "reason": "fine", "actor": "bob", "expiresAt": null}},
                "bad\n": {"at": [5, 0, "b"], "value": {"since": 1, "reason": "", "actor": ""}},
                "future": {"at": [far, 0, "b"], "value": {"since": 1, "reason": "", "actor": ""}},
                "ctl": {"at": [5, 0, "b"], "value": {"since": 1, "reason": "a\u{7}b", "actor": ""}},
                "num": 42
            },
            "rolledBack": []
        });
        let r = ra.merge_remote(&mut a, &doc.to_string(), 10.0).unwrap();
        assert_eq!(r.dropped, 7);
        assert_eq!(r.applied.len(), 1);
        assert!(a.quarantined("ok", 11.0).is_some());
        assert!(a.safe_mode.is_none() && a.brownout.is_none());
        for bad in [
            "",
            "not json",
            "null",
            "[]",
            r#"{"format": 2}"#,
            r#"{"safeMode": {}}"#,
        ] {
            assert!(ra.merge_remote(&mut a, bad, 12.0).is_err(), "{bad}");
        }
        assert_eq!(
            a.quarantine_list(13.0).count(),
            1,
            "a bad document changes nothing"
        );
    }

    #[test]
    fn an_old_state_file_loads_with_stamp_zero_and_any_later_change_wins() {
        let (mut a, mut ra) = node("a", 1);
        let old = r#"{"format": 1, "safeMode": {"since": 1, "reason": "old", "actor": "x"}, "quarantine": {"q": {"since": 1, "reason": "", "actor": ""}}}"#;
        a.load_json(old).unwrap();
        ra.after_load(&mut a, old, true, 50.0);
        assert_eq!(ra.replica.safe_mode.at, Stamp::default());
        assert_eq!(ra.replica.quarantine["q"].at, Stamp::default());
        let (mut b, mut rb) = node("b", 2);
        b.set_safe_mode(false, "", &who("bob"), 60.0).unwrap();
        rb.record_local(&b, 60.0); // nothing changed on b: no stamp
        b.set_safe_mode(true, "new", &who("bob"), 61.0).unwrap();
        rb.record_local(&b, 61.0);
        sync(&rb, (&mut a, &mut ra), 62.0);
        assert_eq!(a.safe_mode.as_ref().unwrap().reason, "new");
        assert!(
            a.quarantined("q", 63.0).is_some(),
            "the old file's quarantine stays"
        );
        // The file written now carries the clocks, and loads them back.
        let text = ra.file_json(&a.to_json(64.0));
        let (mut c, mut rc) = node("c", 3);
        c.load_json(&text).unwrap();
        rc.after_load(&mut c, &text, true, 65.0);
        assert_eq!(rc.replica, ra.replica);
    }

    #[test]
    fn reloading_an_older_copy_of_the_file_does_not_undo_a_merged_change() {
        let (mut a, mut ra) = node("a", 1);
        let (mut b, mut rb) = node("b", 2);
        a.quarantine("x", "", None, &who("alice"), 10.0).unwrap();
        ra.record_local(&a, 10.0);
        let file = ra.file_json(&a.to_json(10.0));
        // b's safe mode arrives; then the CLI rewrites the file from the older copy, adding a quarantine.
        b.set_safe_mode(true, "from b", &who("bob"), 11.0).unwrap();
        rb.record_local(&b, 11.0);
        sync(&rb, (&mut a, &mut ra), 12.0);
        let (mut cli, mut rcli) = node("cli", 3);
        cli.load_json(&file).unwrap();
        rcli.after_load(&mut cli, &file, true, 13.0);
        cli.quarantine("y", "", None, &who("carol"), 14.0).unwrap();
        rcli.record_local(&cli, 14.0);
        let file = rcli.file_json(&cli.to_json(14.0));
        a.load_json(&file).unwrap();
        ra.after_load(&mut a, &file, false, 15.0);
        assert_eq!(
            a.safe_mode.as_ref().map(|s| s.reason.as_str()),
            Some("from b"),
            "the merged change stays"
        );
        assert!(
            a.quarantined("x", 16.0).is_some() && a.quarantined("y", 16.0).is_some(),
            "and the CLI's change applies"
        );
    }

    #[test]
    fn expiry_is_not_a_removal_and_tombstones_are_capped() {
        let (mut a, mut ra) = node("a", 1);
        a.quarantine("t", "", Some(10.0), &who("alice"), 100.0)
            .unwrap();
        ra.record_local(&a, 100.0);
        a.expire(200.0);
        assert_eq!(
            ra.record_local(&a, 200.0),
            0,
            "an expiry needs no stamp: it happens everywhere"
        );
        for i in 0..(MAX_TOMBSTONES + 5) {
            ra.replica.quarantine.insert(
                format!("k{i}"),
                Reg {
                    at: Stamp {
                        ms: i as u64,
                        counter: 0,
                        node: "a".into(),
                    },
                    value: None,
                },
            );
        }
        ra.record_local(&a, 300.0);
        assert_eq!(
            ra.replica.quarantine.len(),
            MAX_TOMBSTONES,
            "the oldest tombstones are forgotten"
        );
        assert!(
            !ra.replica.quarantine.contains_key("k0")
                && ra.replica.quarantine.contains_key("k10004")
        );
    }
}
