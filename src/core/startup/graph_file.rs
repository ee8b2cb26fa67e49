//! Reading `deploy/graph.json` (spec §4): `{ services: [...], notes? }`.
//!
//! The original ran `JSON.parse` and trusted the shape, so a typo in a field
//! name silently dropped the field. Here every problem in the file is
//! collected, each with its JSON path (`$.services[3].dependencies[0]`), and
//! returned together, so one run tells the operator everything to fix.
//! Graph-level problems (missing dependencies, cycles) are the DAG's job and
//! are checked after conditional services are left out.

use serde_json::{Map, Value};

use super::{MAX_NAME_LEN, MAX_TIMEOUT_MS};
use crate::core::json::{self, type_of, ReadError};
use crate::core::named::check_name;

/// Largest graph file accepted, in bytes: far above any real service graph,
/// low enough that a wrong path (a log file, a dump) fails fast.
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;

const TOP_FIELDS: &[&str] = &["services", "notes", "$schema", "description"];
const SERVICE_FIELDS: &[&str] = &[
    "id",
    "name",
    "description",
    "dependencies",
    "critical",
    "initModule",
    "initFunction",
    "healthCheckModule",
    "healthCheckFunction",
    "conditional",
    "timeout",
    "healthCheckTimeout",
];

/// One service as written in the file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GraphService {
    /// The service id (the one name rule).
    pub id: String,
    /// Display name (the id when absent).
    pub name: String,
    /// Ids of the services that must be ready first.
    pub dependencies: Vec<String>,
    /// A critical failure aborts startup.
    pub critical: bool,
    /// Module whose export initialises the service.
    pub init_module: Option<String>,
    /// Name of that export.
    pub init_function: Option<String>,
    /// Module whose export checks the service.
    pub health_check_module: Option<String>,
    /// Name of that export.
    pub health_check_function: Option<String>,
    /// An environment variable name; the service exists only when it is exactly `"true"`.
    pub conditional: Option<String>,
    /// Init timeout in ms (an extension: the original format had none).
    pub timeout_ms: Option<f64>,
    /// Health-check timeout in ms, when set.
    pub health_check_timeout_ms: Option<f64>,
}

/// A problem at a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProblem {
    /// Where in the file, as a JSON path (`$.services[2].id`).
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

impl std::fmt::Display for FileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

struct Collector(Vec<FileProblem>);

impl Collector {
    fn add(&mut self, path: &str, message: impl Into<String>) {
        self.0.push(FileProblem {
            path: path.to_string(),
            message: message.into(),
        });
    }

    fn id_string(&mut self, path: &str, v: &Value) -> Option<String> {
        match v {
            // The one name rule; the message is the rule's, after the path.
            Value::String(s) => match check_name("", s) {
                Ok(()) => Some(s.clone()),
                Err(e) => {
                    self.add(path, e.message.trim_start());
                    None
                }
            },
            other => {
                self.add(path, format!("must be a string, got {}", type_of(other)));
                None
            }
        }
    }

    fn opt_string(&mut self, path: &str, obj: &Map<String, Value>, key: &str) -> Option<String> {
        match obj.get(key)? {
            Value::String(s) if !s.is_empty() && s.len() <= 4096 => Some(s.clone()),
            Value::String(_) => {
                self.add(
                    &format!("{path}.{key}"),
                    "must be a non-empty string of at most 4096 bytes",
                );
                None
            }
            other => {
                self.add(
                    &format!("{path}.{key}"),
                    format!("must be a string, got {}", type_of(other)),
                );
                None
            }
        }
    }

    fn opt_timeout(&mut self, path: &str, obj: &Map<String, Value>, key: &str) -> Option<f64> {
        match obj.get(key)? {
            Value::Number(n) => {
                let v = n.as_f64().unwrap_or(f64::NAN);
                if v.is_finite() && v > 0.0 && v <= MAX_TIMEOUT_MS {
                    Some(v)
                } else {
                    self.add(
                        &format!("{path}.{key}"),
                        format!("must be a number of ms > 0 and <= {MAX_TIMEOUT_MS}, got {v}"),
                    );
                    None
                }
            }
            other => {
                self.add(
                    &format!("{path}.{key}"),
                    format!("must be a number of ms, got {}", type_of(other)),
                );
                None
            }
        }
    }
}

/// Parses and checks the whole file. `Err` holds every problem found.
pub fn parse_graph(text: &str) -> Result<Vec<GraphService>, Vec<FileProblem>> {
    // The one bounded parse: the size here, nesting by `json::MAX_DEPTH`, so
    // hostile input cannot overflow the stack.
    let root: Value = json::read(text, MAX_FILE_BYTES).map_err(|e| {
        vec![FileProblem {
            path: "$".into(),
            message: match e {
                ReadError::TooLarge { bytes, max } => {
                    format!("the file is {bytes} bytes; at most {max} are accepted")
                }
                ReadError::Invalid(e) => format!("not valid JSON: {e}"),
            },
        }]
    })?;
    let mut c = Collector(Vec::new());
    let Value::Object(top) = &root else {
        return Err(vec![FileProblem {
            path: "$".into(),
            message: format!(
                "must be an object with a \"services\" array, got {}",
                type_of(&root)
            ),
        }]);
    };
    for k in top.keys() {
        if !TOP_FIELDS.contains(&k.as_str()) {
            c.add(
                &format!("$.{k}"),
                format!("unknown field (allowed: {})", TOP_FIELDS.join(", ")),
            );
        }
    }
    if let Some(notes) = top.get("notes") {
        if !notes.is_object() {
            c.add(
                "$.notes",
                format!("must be an object, got {}", type_of(notes)),
            );
        }
    }
    let mut out = Vec::new();
    match top.get("services") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            let mut first_at: std::collections::HashMap<String, usize> =
                std::collections::HashMap::new();
            for (i, v) in list.iter().enumerate() {
                let path = format!("$.services[{i}]");
                if let Some(s) = parse_service(&mut c, &path, v) {
                    if let Some(&j) = first_at.get(&s.id) {
                        c.add(
                            &format!("{path}.id"),
                            format!("duplicate id \"{}\" (first used at $.services[{j}])", s.id),
                        );
                        continue;
                    }
                    first_at.insert(s.id.clone(), i);
                    out.push(s);
                }
            }
        }
        Some(other) => c.add(
            "$.services",
            format!("must be an array, got {}", type_of(other)),
        ),
    }
    if c.0.is_empty() {
        Ok(out)
    } else {
        Err(c.0)
    }
}

fn parse_service(c: &mut Collector, path: &str, v: &Value) -> Option<GraphService> {
    let Value::Object(obj) = v else {
        c.add(path, format!("must be an object, got {}", type_of(v)));
        return None;
    };
    let before = c.0.len();
    for k in obj.keys() {
        if !SERVICE_FIELDS.contains(&k.as_str()) {
            c.add(
                &format!("{path}.{k}"),
                format!("unknown field (allowed: {})", SERVICE_FIELDS.join(", ")),
            );
        }
    }
    let id = match obj.get("id") {
        None => {
            c.add(&format!("{path}.id"), "is required");
            None
        }
        Some(v) => c.id_string(&format!("{path}.id"), v),
    };
    let name = match obj.get("name") {
        None => {
            c.add(&format!("{path}.name"), "is required");
            None
        }
        Some(Value::String(s)) if s.chars().count() <= MAX_NAME_LEN => Some(s.clone()),
        Some(Value::String(_)) => {
            c.add(
                &format!("{path}.name"),
                format!("must be at most {MAX_NAME_LEN} characters"),
            );
            None
        }
        Some(other) => {
            c.add(
                &format!("{path}.name"),
                format!("must be a string, got {}", type_of(other)),
            );
            None
        }
    };
    if let Some(d) = obj.get("description") {
        if !d.is_string() {
            c.add(
                &format!("{path}.description"),
                format!("must be a string, got {}", type_of(d)),
            );
        }
    }
    let mut dependencies = Vec::new();
    match obj.get("dependencies") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (j, d) in list.iter().enumerate() {
                let dpath = format!("{path}.dependencies[{j}]");
                if let Some(dep) = c.id_string(&dpath, d) {
                    if Some(&dep) == id.as_ref() {
                        c.add(&dpath, format!("service \"{dep}\" depends on itself"));
                    } else if dependencies.contains(&dep) {
                        c.add(&dpath, format!("\"{dep}\" is listed twice"));
                    } else {
                        dependencies.push(dep);
                    }
                }
            }
        }
        Some(other) => c.add(
            &format!("{path}.dependencies"),
            format!("must be an array of ids, got {}", type_of(other)),
        ),
    }
    let critical = match obj.get("critical") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            c.add(
                &format!("{path}.critical"),
                format!("must be a boolean, got {}", type_of(other)),
            );
            false
        }
    };
    let init_module = c.opt_string(path, obj, "initModule");
    let init_function = c.opt_string(path, obj, "initFunction");
    let health_check_module = c.opt_string(path, obj, "healthCheckModule");
    let health_check_function = c.opt_string(path, obj, "healthCheckFunction");
    for (a, b) in [
        ("initModule", "initFunction"),
        ("healthCheckModule", "healthCheckFunction"),
    ] {
        match (obj.contains_key(a), obj.contains_key(b)) {
            (true, false) => c.add(
                &format!("{path}.{b}"),
                format!("is required when {a} is given"),
            ),
            (false, true) => c.add(
                &format!("{path}.{a}"),
                format!("is required when {b} is given"),
            ),
            _ => {}
        }
    }
    let conditional = c.opt_string(path, obj, "conditional");
    let timeout_ms = c.opt_timeout(path, obj, "timeout");
    let health_check_timeout_ms = c.opt_timeout(path, obj, "healthCheckTimeout");
    if c.0.len() > before {
        return None;
    }
    Some(GraphService {
        id: id?,
        name: name?,
        dependencies,
        critical,
        init_module,
        init_function,
        health_check_module,
        health_check_function,
        conditional,
        timeout_ms,
        health_check_timeout_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGINAL: &str = include_str!("../../../__test__/fixtures/graph.json");

    #[test]
    fn the_original_file_parses() {
        let s = parse_graph(ORIGINAL).unwrap();
        assert_eq!(s.len(), 9);
        assert_eq!(s[0].id, "database");
        assert!(s[0].critical);
        assert_eq!(s[0].init_module.as_deref(), Some("server/db"));
        assert_eq!(
            s[5].dependencies,
            [
                "neural-mesh",
                "agent-wallet-manager",
                "latent-collaboration"
            ]
        );
        assert_eq!(s[5].conditional.as_deref(), Some("INIT_SUBSYSTEMS"));
        assert_eq!(s[7].conditional, None);
    }

    #[test]
    fn every_problem_comes_back_with_its_path() {
        let text = r#"{
          "services": [
            { "id": "a", "name": "A", "dependencies": ["a", 7], "critical": "yes", "initModule": "x" },
            { "id": "a", "name": "A again" },
            { "name": "no id", "dependncies": [] },
            "b",
            { "id": "c", "name": "C", "timeout": -1, "healthCheckFunction": "ok" }
          ],
          "extra": 1
        }"#;
        let p: Vec<String> = parse_graph(text)
            .unwrap_err()
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(
            p,
            [
                "$.extra: unknown field (allowed: services, notes, $schema, description)",
                "$.services[0].dependencies[0]: service \"a\" depends on itself",
                "$.services[0].dependencies[1]: must be a string, got a number",
                "$.services[0].critical: must be a boolean, got a string",
                "$.services[0].initFunction: is required when initModule is given",
                "$.services[2].dependncies: unknown field (allowed: id, name, description, dependencies, critical, initModule, initFunction, healthCheckModule, healthCheckFunction, conditional, timeout, healthCheckTimeout)",
                "$.services[2].id: is required",
                "$.services[3]: must be an object, got a string",
                "$.services[4].healthCheckModule: is required when healthCheckFunction is given",
                "$.services[4].timeout: must be a number of ms > 0 and <= 86400000, got -1",
            ]
        );
    }

    #[test]
    fn duplicate_ids_name_both_places() {
        let text = r#"{"services":[{"id":"a","name":"A"},{"id":"a","name":"B"}]}"#;
        assert_eq!(
            parse_graph(text).unwrap_err()[0].to_string(),
            "$.services[1].id: duplicate id \"a\" (first used at $.services[0])"
        );
    }

    #[test]
    fn bad_json_and_wrong_shapes() {
        let e = parse_graph("{\"services\": [").unwrap_err();
        assert!(
            e[0].message
                .starts_with("not valid JSON: EOF while parsing"),
            "{}",
            e[0].message
        );
        assert!(e[0].message.contains("line 1"));
        assert_eq!(
            parse_graph("[]").unwrap_err()[0].message,
            "must be an object with a \"services\" array, got an array"
        );
        assert_eq!(
            parse_graph("{\"services\": {}}").unwrap_err()[0].to_string(),
            "$.services: must be an array, got an object"
        );
        assert_eq!(parse_graph("{}").unwrap(), vec![]);
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(parse_graph(&deep).unwrap_err()[0]
            .message
            .contains("recursion limit"));
    }
}
