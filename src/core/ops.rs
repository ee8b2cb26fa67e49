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
//! The state serialises to JSON for the state file (`to_json` / `from_json`);
//! a file that does not parse is an error the caller reports, never a panic.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{json, Map, Value};

use super::error::{check, CoreError, CoreResult};
use super::graph_file::type_of as kind;
use super::rng::SplitMix64;

/// Audit entries kept (oldest dropped first, counted in `audit_dropped`).
pub const AUDIT_CAP: usize = 1000;
/// Audit entries written to the state file.
pub const AUDIT_PERSISTED: usize = 200;
/// Quarantined agents at most (a bound on memory and on the state file).
pub const MAX_QUARANTINED: usize = 10_000;
pub const MAX_REASON_CHARS: usize = 500;
pub const MAX_ID_CHARS: usize = 256;
pub const STATE_FORMAT: u64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Criticality {
    Critical,
    Default,
    Sheddable,
}

impl Criticality {
    pub fn parse(field: &str, s: &str) -> CoreResult<Self> {
        match s {
            "critical" => Ok(Criticality::Critical),
            "default" => Ok(Criticality::Default),
            "sheddable" => Ok(Criticality::Sheddable),
            _ => Err(CoreError::range(field, "'critical', 'default' or 'sheddable'", format!("\"{s}\""))),
        }
    }

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
    Serve,
    /// 503: safe mode, not an essential route.
    SafeMode,
    /// 503: shed by the brownout dimmer.
    Shed,
    /// 423: the request's agent is quarantined.
    Quarantined,
}

impl Decision {
    pub fn code(self) -> u32 {
        match self {
            Decision::Serve => 0,
            Decision::SafeMode => 1,
            Decision::Shed => 2,
            Decision::Quarantined => 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Switch {
    pub since: f64,
    pub reason: String,
    pub actor: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Brownout {
    pub level: f64,
    pub since: f64,
    pub reason: String,
    pub actor: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Quarantine {
    pub since: f64,
    pub reason: String,
    pub actor: String,
    pub expires_at: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub seq: u64,
    pub at: f64,
    pub action: String,
    /// The action's arguments as a JSON object (never a token).
    pub args: Value,
    pub actor: String,
    pub source: String,
    /// `changed`, `unchanged` or `error: <message>`.
    pub result: String,
}

/// Who asked, for the audit trail.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub name: String,
    pub source: String,
}

#[derive(Debug)]
pub struct OpsState {
    pub safe_mode: Option<Switch>,
    pub brownout: Option<Brownout>,
    quarantine: BTreeMap<String, Quarantine>,
    /// Rollouts rolled back by an operator (name → when, reason), so a
    /// restart does not bring them back at their configured percentage.
    pub rolled_back: BTreeMap<String, Switch>,
    audit: VecDeque<AuditEntry>,
    pub audit_dropped: u64,
    next_seq: u64,
    /// Bumped on every change; lets readers (the JS flag mirror, the file
    /// watcher) tell cheaply whether anything moved.
    pub version: u64,
    rng: SplitMix64,
}

fn check_text(field: &str, s: &str, max: usize, allow_empty: bool) -> CoreResult<()> {
    let n = s.chars().count();
    if (!allow_empty && n == 0) || n > max {
        return Err(CoreError::range(
            field,
            &format!("a {}string of at most {max} characters", if allow_empty { "" } else { "non-empty " }),
            if n == 0 { "an empty string".to_string() } else { format!("{n} characters") },
        ));
    }
    if s.chars().any(|c| c.is_control() && c != '\t') {
        return Err(CoreError::range(field, "text without control characters", "a control character"));
    }
    Ok(())
}

impl OpsState {
    pub fn new(seed: u64) -> Self {
        OpsState {
            safe_mode: None,
            brownout: None,
            quarantine: BTreeMap::new(),
            rolled_back: BTreeMap::new(),
            audit: VecDeque::new(),
            audit_dropped: 0,
            next_seq: 1,
            version: 0,
            rng: SplitMix64::new(seed),
        }
    }

    fn record(&mut self, now: f64, action: &str, args: Value, who: &Actor, changed: bool) -> bool {
        if changed {
            self.version += 1;
        }
        self.push_audit(now, action, args, who, if changed { "changed".into() } else { "unchanged".into() });
        changed
    }

    /// Appends to the audit ring (also used for refused or failed actions).
    pub fn push_audit(&mut self, now: f64, action: &str, args: Value, who: &Actor, result: String) {
        if self.audit.len() >= AUDIT_CAP {
            self.audit.pop_front();
            self.audit_dropped += 1;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.audit.push_back(AuditEntry {
            seq,
            at: now,
            action: action.to_string(),
            args,
            actor: who.name.chars().take(MAX_ID_CHARS).collect(),
            source: who.source.chars().take(MAX_ID_CHARS).collect(),
            result,
        });
    }

    pub fn audit(&self) -> impl DoubleEndedIterator<Item = &AuditEntry> {
        self.audit.iter()
    }

    /// Turns safe mode on or off. Returns whether anything changed.
    pub fn set_safe_mode(&mut self, on: bool, reason: &str, who: &Actor, now: f64) -> CoreResult<bool> {
        check_text("reason", reason, MAX_REASON_CHARS, true)?;
        let changed = match (on, &self.safe_mode) {
            (true, Some(s)) if s.reason == reason => false,
            (true, _) => {
                let since = self.safe_mode.as_ref().map_or(now, |s| s.since);
                self.safe_mode = Some(Switch { since, reason: reason.to_string(), actor: who.name.clone() });
                true
            }
            (false, None) => false,
            (false, Some(_)) => {
                self.safe_mode = None;
                true
            }
        };
        Ok(self.record(now, "safe-mode", json!({ "enabled": on, "reason": reason }), who, changed))
    }

    /// Sets the brownout dimmer (`level` 0..=1, the share of non-critical
    /// traffic served), or turns brownout off with `None`.
    pub fn set_brownout(&mut self, level: Option<f64>, reason: &str, who: &Actor, now: f64) -> CoreResult<bool> {
        check_text("reason", reason, MAX_REASON_CHARS, true)?;
        if let Some(l) = level {
            if !l.is_finite() || !(0.0..=1.0).contains(&l) {
                return Err(CoreError::range("level", "a number from 0 to 1 (the share of non-critical traffic served)", check::fmt_num(l)));
            }
        }
        let changed = match (level, &self.brownout) {
            (Some(l), Some(b)) if b.level == l && b.reason == reason => false,
            (Some(l), _) => {
                let since = self.brownout.as_ref().map_or(now, |b| b.since);
                self.brownout = Some(Brownout { level: l, since, reason: reason.to_string(), actor: who.name.clone() });
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

    pub fn quarantine(&mut self, agent: &str, reason: &str, ttl_ms: Option<f64>, who: &Actor, now: f64) -> CoreResult<bool> {
        check_text("agentId", agent, MAX_ID_CHARS, false)?;
        check_text("reason", reason, MAX_REASON_CHARS, true)?;
        if let Some(t) = ttl_ms {
            if !t.is_finite() || t <= 0.0 || t > 365.0 * 86_400_000.0 {
                return Err(CoreError::range("ttlMs", "a number of ms > 0 and at most one year", check::fmt_num(t)));
            }
        }
        self.expire(now);
        if !self.quarantine.contains_key(agent) && self.quarantine.len() >= MAX_QUARANTINED {
            return Err(CoreError::range("agentId", &format!("one of at most {MAX_QUARANTINED} quarantined agents"), "one more"));
        }
        let expires_at = ttl_ms.map(|t| now + t);
        let changed = match self.quarantine.get(agent) {
            Some(q) if q.reason == reason && ttl_ms.is_none() && q.expires_at.is_none() => false,
            Some(q) => {
                let since = q.since;
                self.quarantine.insert(agent.to_string(), Quarantine { since, reason: reason.to_string(), actor: who.name.clone(), expires_at });
                true
            }
            None => {
                self.quarantine.insert(agent.to_string(), Quarantine { since: now, reason: reason.to_string(), actor: who.name.clone(), expires_at });
                true
            }
        };
        let mut args = json!({ "agentId": agent, "reason": reason });
        if let Some(t) = ttl_ms {
            args["ttlMs"] = json!(t);
        }
        Ok(self.record(now, "quarantine-agent", args, who, changed))
    }

    pub fn release(&mut self, agent: &str, who: &Actor, now: f64) -> CoreResult<bool> {
        check_text("agentId", agent, MAX_ID_CHARS, false)?;
        self.expire(now);
        let changed = self.quarantine.remove(agent).is_some();
        Ok(self.record(now, "release-agent", json!({ "agentId": agent }), who, changed))
    }

    /// Drops quarantines whose time is up. Returns how many.
    pub fn expire(&mut self, now: f64) -> usize {
        let before = self.quarantine.len();
        self.quarantine.retain(|_, q| q.expires_at.is_none_or(|t| t > now));
        let n = before - self.quarantine.len();
        if n > 0 {
            self.version += 1;
        }
        n
    }

    pub fn quarantined(&self, agent: &str, now: f64) -> Option<&Quarantine> {
        self.quarantine.get(agent).filter(|q| q.expires_at.is_none_or(|t| t > now))
    }

    pub fn quarantine_list(&self, now: f64) -> impl Iterator<Item = (&String, &Quarantine)> {
        self.quarantine.iter().filter(move |(_, q)| q.expires_at.is_none_or(|t| t > now))
    }

    /// Earliest quarantine expiry, so readers know when the flags go stale.
    pub fn next_expiry(&self) -> Option<f64> {
        self.quarantine.values().filter_map(|q| q.expires_at).min_by(|a, b| a.total_cmp(b))
    }

    /// Marks rollouts rolled back (`None` name = the ones listed in `names`).
    pub fn record_rollback(&mut self, names: &[String], reason: &str, who: &Actor, now: f64) -> CoreResult<bool> {
        check_text("reason", reason, MAX_REASON_CHARS, true)?;
        for (i, n) in names.iter().enumerate() {
            check_text(&format!("names[{i}]"), n, MAX_ID_CHARS, false)?;
        }
        let mut changed = false;
        for n in names {
            if !self.rolled_back.contains_key(n) {
                changed = true;
                self.rolled_back.insert(n.clone(), Switch { since: now, reason: reason.to_string(), actor: who.name.clone() });
            }
        }
        Ok(self.record(now, "rollback", json!({ "rollouts": names, "reason": reason }), who, changed))
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
    pub fn decide(&mut self, essential: bool, criticality: Criticality, agent: Option<&str>, now: f64) -> Decision {
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

    /// The persistent part as JSON: switches, quarantines, rollbacks and the
    /// last audit entries.
    pub fn to_json(&self, now: f64) -> String {
        let sw = |s: &Switch| json!({ "since": s.since, "reason": s.reason, "actor": s.actor });
        let quarantine: Map<String, Value> = self
            .quarantine_list(now)
            .map(|(k, q)| (k.clone(), json!({ "since": q.since, "reason": q.reason, "actor": q.actor, "expiresAt": q.expires_at })))
            .collect();
        let audit: Vec<Value> = self.audit.iter().rev().take(AUDIT_PERSISTED).rev().map(audit_json).collect();
        let v = json!({
            "format": STATE_FORMAT,
            "version": self.version,
            "savedAt": now,
            "safeMode": self.safe_mode.as_ref().map(sw),
            "brownout": self.brownout.as_ref().map(|b| json!({ "level": b.level, "since": b.since, "reason": b.reason, "actor": b.actor })),
            "quarantine": quarantine,
            "rolledBack": self.rolled_back.iter().map(|(k, s)| (k.clone(), sw(s))).collect::<Map<String, Value>>(),
            "audit": audit,
        });
        serde_json::to_string_pretty(&v).unwrap_or_default()
    }

    /// Replaces the persistent part from a state file's text. Everything is
    /// checked before anything is applied; an error names the JSON path.
    pub fn load_json(&mut self, text: &str) -> CoreResult<()> {
        let v: Value = serde_json::from_str(text).map_err(|e| CoreError::type_error("state file", "valid JSON", e))?;
        let o = v.as_object().ok_or_else(|| CoreError::type_error("state file", "a JSON object", kind(&v)))?;
        match o.get("format").and_then(Value::as_u64) {
            Some(STATE_FORMAT) => {}
            _ => return Err(CoreError::range("$.format", &format!("{STATE_FORMAT}"), o.get("format").map_or("missing".to_string(), |f| f.to_string()))),
        }
        let switch = |path: &str, v: &Value| -> CoreResult<Switch> {
            let o = v.as_object().ok_or_else(|| CoreError::type_error(path, "an object", kind(v)))?;
            Ok(Switch { since: num(o, path, "since")?, reason: text_field(o, path, "reason", MAX_REASON_CHARS)?, actor: text_field(o, path, "actor", MAX_ID_CHARS)? })
        };
        let safe_mode = match o.get("safeMode") {
            None | Some(Value::Null) => None,
            Some(v) => Some(switch("$.safeMode", v)?),
        };
        let brownout = match o.get("brownout") {
            None | Some(Value::Null) => None,
            Some(v) => {
                let s = switch("$.brownout", v)?;
                let level = num(v.as_object().expect("checked by switch"), "$.brownout", "level")?;
                if !(0.0..=1.0).contains(&level) {
                    return Err(CoreError::range("$.brownout.level", "a number from 0 to 1", level));
                }
                Some(Brownout { level, since: s.since, reason: s.reason, actor: s.actor })
            }
        };
        let mut quarantine = BTreeMap::new();
        if let Some(q) = o.get("quarantine").filter(|v| !v.is_null()) {
            let q = q.as_object().ok_or_else(|| CoreError::type_error("$.quarantine", "an object", kind(q)))?;
            if q.len() > MAX_QUARANTINED {
                return Err(CoreError::range("$.quarantine", &format!("at most {MAX_QUARANTINED} agents"), q.len()));
            }
            for (id, e) in q {
                let path = format!("$.quarantine[{id:?}]");
                check_text(&path, id, MAX_ID_CHARS, false)?;
                let s = switch(&path, e)?;
                let expires_at = match e.get("expiresAt") {
                    None | Some(Value::Null) => None,
                    Some(_) => Some(num(e.as_object().expect("checked"), &path, "expiresAt")?),
                };
                quarantine.insert(id.clone(), Quarantine { since: s.since, reason: s.reason, actor: s.actor, expires_at });
            }
        }
        let mut rolled_back = BTreeMap::new();
        if let Some(r) = o.get("rolledBack").filter(|v| !v.is_null()) {
            let r = r.as_object().ok_or_else(|| CoreError::type_error("$.rolledBack", "an object", kind(r)))?;
            for (name, e) in r {
                let path = format!("$.rolledBack[{name:?}]");
                check_text(&path, name, MAX_ID_CHARS, false)?;
                rolled_back.insert(name.clone(), switch(&path, e)?);
            }
        }
        let mut audit = VecDeque::new();
        if let Some(a) = o.get("audit").filter(|v| !v.is_null()) {
            let a = a.as_array().ok_or_else(|| CoreError::type_error("$.audit", "an array", kind(a)))?;
            for (i, e) in a.iter().rev().take(AUDIT_CAP).rev().enumerate() {
                let path = format!("$.audit[{i}]");
                let eo = e.as_object().ok_or_else(|| CoreError::type_error(&path, "an object", kind(e)))?;
                audit.push_back(AuditEntry {
                    seq: eo.get("seq").and_then(Value::as_u64).ok_or_else(|| CoreError::type_error(&format!("{path}.seq"), "a positive integer", "another value"))?,
                    at: num(eo, &path, "at")?,
                    action: text_field(eo, &path, "action", MAX_ID_CHARS)?,
                    args: eo.get("args").cloned().unwrap_or(Value::Null),
                    actor: text_field(eo, &path, "actor", MAX_ID_CHARS)?,
                    source: text_field(eo, &path, "source", MAX_ID_CHARS)?,
                    result: text_field(eo, &path, "result", MAX_REASON_CHARS + 100)?,
                });
            }
        }
        // Everything checked: apply.
        self.safe_mode = safe_mode;
        self.brownout = brownout;
        self.quarantine = quarantine;
        self.rolled_back = rolled_back;
        self.next_seq = self.next_seq.max(audit.back().map_or(0, |e| e.seq) + 1);
        self.audit = audit;
        self.version += 1;
        Ok(())
    }
}

fn num(o: &Map<String, Value>, path: &str, key: &str) -> CoreResult<f64> {
    match o.get(key).and_then(Value::as_f64) {
        Some(v) if v.is_finite() => Ok(v),
        _ => Err(CoreError::type_error(&format!("{path}.{key}"), "a finite number", o.get(key).map_or("missing", kind))),
    }
}

fn text_field(o: &Map<String, Value>, path: &str, key: &str, max: usize) -> CoreResult<String> {
    match o.get(key) {
        Some(Value::String(s)) => {
            check_text(&format!("{path}.{key}"), s, max, true)?;
            Ok(s.clone())
        }
        other => Err(CoreError::type_error(&format!("{path}.{key}"), "a string", other.map_or("missing", kind))),
    }
}

pub fn audit_json(e: &AuditEntry) -> Value {
    json!({ "seq": e.seq, "at": e.at, "action": e.action, "args": e.args, "actor": e.actor, "source": e.source, "result": e.result })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op() -> Actor {
        Actor { name: "alice".into(), source: "127.0.0.1".into() }
    }

    #[test]
    fn safe_mode_serves_only_essential_routes_and_is_idempotent() {
        let mut s = OpsState::new(1);
        assert_eq!(s.decide(false, Criticality::Default, None, 0.0), Decision::Serve);
        assert!(s.set_safe_mode(true, "db failover", &op(), 10.0).unwrap());
        assert!(!s.set_safe_mode(true, "db failover", &op(), 11.0).unwrap(), "same again: unchanged");
        assert_eq!(s.decide(false, Criticality::Critical, None, 12.0), Decision::SafeMode);
        assert_eq!(s.decide(true, Criticality::Sheddable, None, 12.0), Decision::Serve);
        assert!(s.set_safe_mode(true, "still failing over", &op(), 13.0).unwrap());
        assert_eq!(s.safe_mode.as_ref().unwrap().since, 10.0, "since is kept when only the reason changes");
        assert!(s.set_safe_mode(false, "", &op(), 14.0).unwrap());
        assert!(!s.set_safe_mode(false, "", &op(), 15.0).unwrap());
        let results: Vec<&str> = s.audit().map(|e| e.result.as_str()).collect();
        assert_eq!(results, ["changed", "unchanged", "changed", "changed", "unchanged"]);
        assert_eq!(s.version, 3);
    }

    #[test]
    fn brownout_dimmer_sheds_sheddable_first() {
        let mut s = OpsState::new(42);
        let share = |s: &mut OpsState, c: Criticality| {
            let n = 20_000;
            (0..n).filter(|_| s.decide(false, c, None, 0.0) == Decision::Serve).count() as f64 / n as f64
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
        s.set_brownout(Some(0.0), "critical only", &op(), 0.0).unwrap();
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
        assert!(s.quarantine("agent-7", "looping", Some(1000.0), &op(), 0.0).unwrap());
        assert_eq!(s.decide(true, Criticality::Critical, Some("agent-7"), 999.0), Decision::Quarantined);
        assert_eq!(s.decide(true, Criticality::Critical, Some("agent-8"), 999.0), Decision::Serve);
        assert_eq!(s.next_expiry(), Some(1000.0));
        assert_eq!(s.decide(true, Criticality::Critical, Some("agent-7"), 1000.0), Decision::Serve, "expired");
        assert_eq!(s.quarantine_list(1000.0).count(), 0);
        s.quarantine("a", "", None, &op(), 0.0).unwrap();
        assert!(!s.quarantine("a", "", None, &op(), 1.0).unwrap());
        assert!(s.release("a", &op(), 2.0).unwrap());
        assert!(!s.release("a", &op(), 3.0).unwrap());
        assert!(s.quarantine("", "", None, &op(), 0.0).is_err());
        assert!(s.quarantine("x", "", Some(-1.0), &op(), 0.0).unwrap_err().message.starts_with("ttlMs"));
        assert!(s.quarantine("x\n", "", None, &op(), 0.0).is_err(), "no control characters (log injection)");
    }

    #[test]
    fn state_round_trips_and_bad_files_change_nothing() {
        let mut s = OpsState::new(1);
        s.set_safe_mode(true, "maintenance", &op(), 5.0).unwrap();
        s.set_brownout(Some(0.3), "latency", &op(), 6.0).unwrap();
        s.quarantine("agent-1", "spam", None, &op(), 7.0).unwrap();
        s.quarantine("agent-2", "gone soon", Some(10.0), &op(), 7.0).unwrap();
        s.record_rollback(&["search-v2".into()], "errors", &op(), 8.0).unwrap();
        let text = s.to_json(8.0);
        let mut t = OpsState::new(2);
        t.load_json(&text).unwrap();
        assert_eq!(t.safe_mode, s.safe_mode);
        assert_eq!(t.brownout, s.brownout);
        assert_eq!(t.quarantine_list(8.0).count(), 2);
        assert!(t.rolled_back.contains_key("search-v2"));
        assert_eq!(t.audit().count(), 5);
        t.set_safe_mode(false, "", &op(), 9.0).unwrap();
        assert_eq!(t.audit().last().unwrap().seq, 6, "sequence numbers continue");

        let before = t.to_json(9.0);
        for bad in [
            "",
            "not json",
            "[]",
            r#"{"format": 99}"#,
            r#"{"format": 1, "brownout": {"level": 2, "since": 0, "reason": "", "actor": ""}}"#,
            r#"{"format": 1, "safeMode": {"since": "x", "reason": "", "actor": ""}}"#,
            r#"{"format": 1, "quarantine": {"a": {"since": 0, "reason": "", "actor": ""}}, "audit": [{"seq": 1}]}"#,
        ] {
            assert!(t.load_json(bad).is_err(), "{bad}");
            assert_eq!(t.to_json(9.0), before, "a bad file applies nothing: {bad}");
        }
        let e = t.load_json(r#"{"format": 1, "safeMode": {"since": "x", "reason": "", "actor": ""}}"#).unwrap_err();
        assert_eq!(e.message, "$.safeMode.since must be a finite number, got a string");
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
