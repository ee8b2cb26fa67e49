//! JSON read by the core: one bounded parse and typed field access whose
//! errors name the field.
//!
//! Why one module: the ops state file, the ops replica documents, audit
//! arguments and the startup graph file each used to call `serde_json` and
//! word their own "not JSON" and "wrong type" errors. They now share the
//! parse (with its depth limit, and a size limit where the text comes from
//! outside the package), the names of JSON types in messages, and the
//! readers of `format` and number fields, so the same mistake reads the same
//! everywhere.
//!
//! Depth: serde_json refuses nesting deeper than [`MAX_DEPTH`] levels, so a
//! hostile text cannot overflow the stack; the size limit is the caller's
//! (a file read from disk has one, a text the package wrote itself is
//! bounded by the caps of what it holds).
//!
//! ```
//! use reliability_core::core::json;
//! let v = json::parse("state file", "valid JSON", r#"{"format":1,"at":5}"#, json::NO_SIZE_LIMIT).unwrap();
//! let o = json::object("state file", &v).unwrap();
//! json::check_format(o, "$.format", 1).unwrap();
//! assert_eq!(json::finite_field(o, "$", "at").unwrap(), 5.0);
//! assert_eq!(
//!     json::finite_field(o, "$", "since").unwrap_err().message,
//!     "$.since must be a finite number, got missing"
//! );
//! ```

use serde_json::{Map, Value};

use super::error::{CoreError, CoreResult};

/// The deepest nesting a parse accepts (serde_json's recursion limit): a
/// deeper text is refused as invalid JSON, never a stack overflow.
pub const MAX_DEPTH: usize = 128;

/// The size limit of a text the package wrote itself (the ops state file, a
/// replica document, audit arguments): their size is bounded by the caps of
/// what they hold, so only the depth limit applies.
pub const NO_SIZE_LIMIT: usize = usize::MAX;

/// Why a text could not be read (see [`read`]).
#[derive(Debug)]
pub enum ReadError {
    /// The text is longer than the caller's limit.
    TooLarge {
        /// The text's length in bytes.
        bytes: usize,
        /// The limit it broke.
        max: usize,
    },
    /// Not JSON (or nested deeper than [`MAX_DEPTH`]); serde_json's message
    /// says where.
    Invalid(serde_json::Error),
}

/// Parses `text` if it is at most `max_bytes` long. The error is left
/// for the caller to word (a file reader lists problems by JSON path).
///
/// ```
/// use reliability_core::core::json::{read, ReadError};
/// assert!(read("[1, 2]", 16).is_ok());
/// assert!(matches!(read("[1, 2]", 3), Err(ReadError::TooLarge { bytes: 6, max: 3 })));
/// assert!(matches!(read(&"[".repeat(200), 1000), Err(ReadError::Invalid(_))));
/// ```
pub fn read(text: &str, max_bytes: usize) -> Result<Value, ReadError> {
    if text.len() > max_bytes {
        return Err(ReadError::TooLarge {
            bytes: text.len(),
            max: max_bytes,
        });
    }
    serde_json::from_str(text).map_err(ReadError::Invalid)
}

/// [`read`], with the error as a [`CoreError`] naming `field`: a TypeError
/// `"{field} must be {allowed}, got {serde_json's message}"` for a text that
/// is not JSON, a RangeError for one past `max_bytes`.
///
/// ```
/// use reliability_core::core::json::{parse, NO_SIZE_LIMIT};
/// let e = parse("args", "JSON", "{", NO_SIZE_LIMIT).unwrap_err();
/// assert!(e.message.starts_with("args must be JSON, got EOF"), "{}", e.message);
/// let e = parse("args", "JSON", "[1]", 2).unwrap_err();
/// assert_eq!(e.message, "args must be at most 2 bytes of JSON, got 3 bytes");
/// ```
pub fn parse(field: &str, allowed: &str, text: &str, max_bytes: usize) -> CoreResult<Value> {
    read(text, max_bytes).map_err(|e| match e {
        ReadError::TooLarge { bytes, max } => CoreError::range(
            field,
            &format!("at most {max} bytes of JSON"),
            format!("{bytes} bytes"),
        ),
        ReadError::Invalid(e) => CoreError::type_error(field, allowed, e),
    })
}

/// How a JSON value's type is named in error messages ("a string", "an array", ...).
///
/// ```
/// use reliability_core::core::json::type_of;
/// assert_eq!(type_of(&serde_json::json!([1])), "an array");
/// assert_eq!(type_of(&serde_json::Value::Null), "null");
/// ```
pub fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `v` as an object, or a TypeError `"{field} must be a JSON object, got …"`.
///
/// ```
/// use reliability_core::core::json::object;
/// let e = object("replica", &serde_json::json!(3)).unwrap_err();
/// assert_eq!(e.message, "replica must be a JSON object, got a number");
/// ```
pub fn object<'a>(field: &str, v: &'a Value) -> CoreResult<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| CoreError::type_error(field, "a JSON object", type_of(v)))
}

/// Checks a document's `format` number: `expected`, or a RangeError naming
/// `field` with what was there (`missing` when absent).
///
/// ```
/// use reliability_core::core::json::check_format;
/// let v = serde_json::json!({ "format": 2 });
/// let e = check_format(v.as_object().unwrap(), "replica.format", 1).unwrap_err();
/// assert_eq!(e.message, "replica.format must be 1, got 2");
/// ```
pub fn check_format(o: &Map<String, Value>, field: &str, expected: u64) -> CoreResult<()> {
    match o.get("format").and_then(Value::as_u64) {
        Some(f) if f == expected => Ok(()),
        _ => Err(CoreError::range(
            field,
            &format!("{expected}"),
            o.get("format")
                .map_or("missing".to_string(), |f| f.to_string()),
        )),
    }
}

/// The finite number at `key`, or `None` (absent, another type, or a
/// number too large for an `f64`).
///
/// ```
/// use reliability_core::core::json::finite;
/// let v = serde_json::json!({ "level": 0.5, "name": "x" });
/// assert_eq!(finite(v.as_object().unwrap(), "level"), Some(0.5));
/// assert_eq!(finite(v.as_object().unwrap(), "name"), None);
/// ```
pub fn finite(o: &Map<String, Value>, key: &str) -> Option<f64> {
    o.get(key)?.as_f64().filter(|v| v.is_finite())
}

/// The finite number at `key`, or a TypeError naming `{path}.{key}` and
/// what was there (`missing` when absent).
///
/// ```
/// use reliability_core::core::json::finite_field;
/// let v = serde_json::json!({ "at": "x" });
/// let e = finite_field(v.as_object().unwrap(), "$.audit[0]", "at").unwrap_err();
/// assert_eq!(e.message, "$.audit[0].at must be a finite number, got a string");
/// ```
pub fn finite_field(o: &Map<String, Value>, path: &str, key: &str) -> CoreResult<f64> {
    finite(o, key).ok_or_else(|| {
        CoreError::type_error(
            &format!("{path}.{key}"),
            "a finite number",
            o.get(key).map_or("missing", type_of),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::error::ErrorKind;

    #[test]
    fn depth_is_bounded_without_a_stack_overflow() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        assert!(read(&ok, NO_SIZE_LIMIT).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(matches!(
            read(&deep, NO_SIZE_LIMIT),
            Err(ReadError::Invalid(_))
        ));
        let hostile = "[".repeat(1_000_000);
        let e = parse("state file", "valid JSON", &hostile, NO_SIZE_LIMIT).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Type);
        assert!(e
            .message
            .starts_with("state file must be valid JSON, got recursion limit"));
    }

    #[test]
    fn size_is_checked_before_parsing() {
        let e = parse("graph", "JSON", "not even json", 4).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Range);
        assert_eq!(
            e.message,
            "graph must be at most 4 bytes of JSON, got 13 bytes"
        );
    }

    #[test]
    fn fields_name_themselves() {
        let v = serde_json::json!({ "s": "x", "f": 1.5 });
        let o = object("doc", &v).unwrap();
        assert_eq!(finite(o, "f"), Some(1.5));
        assert_eq!(
            finite_field(o, "$", "s").unwrap_err().message,
            "$.s must be a finite number, got a string"
        );
        assert_eq!(
            check_format(o, "$.format", 1).unwrap_err().message,
            "$.format must be 1, got missing"
        );
    }
}
