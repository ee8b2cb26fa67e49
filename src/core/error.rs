//! Errors the core returns instead of panicking. The binding layer turns
//! `Type` into a JS `TypeError`, `Range` into a `RangeError` and `NotFound`
//! into a plain `Error`; the message always names the field and what it allows.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The value has the wrong type (a string where a number is needed).
    Type,
    /// The value has the right type but is outside the allowed range.
    Range,
    /// A name that nothing was registered under.
    NotFound,
    /// A call that is not allowed in the current state (e.g. registering a
    /// service after startup began); a plain JS `Error`.
    State,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreError {
    pub kind: ErrorKind,
    pub message: String,
}

impl CoreError {
    pub fn range(field: &str, allowed: &str, got: impl fmt::Display) -> Self {
        CoreError {
            kind: ErrorKind::Range,
            message: format!("{field} must be {allowed}, got {got}"),
        }
    }

    pub fn type_error(field: &str, allowed: &str, got: impl fmt::Display) -> Self {
        CoreError {
            kind: ErrorKind::Type,
            message: format!("{field} must be {allowed}, got {got}"),
        }
    }

    pub fn not_found(what: &str, name: impl fmt::Display) -> Self {
        CoreError {
            kind: ErrorKind::NotFound,
            message: format!("{what} not found: {name}"),
        }
    }
}

impl CoreError {
    pub fn state(message: impl Into<String>) -> Self {
        CoreError { kind: ErrorKind::State, message: message.into() }
    }
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CoreError {}

pub type CoreResult<T> = Result<T, CoreError>;

/// Checks shared by every options struct, so each field is validated the same
/// way and says the same thing when it is wrong.
pub mod check {
    use super::{CoreError, CoreResult};

    /// A finite number `>= min`.
    pub fn at_least(field: &str, v: f64, min: f64) -> CoreResult<f64> {
        if !v.is_finite() || v < min {
            return Err(CoreError::range(field, &format!("a finite number >= {min}"), fmt_num(v)));
        }
        Ok(v)
    }

    /// A finite number `> min`.
    pub fn above(field: &str, v: f64, min: f64) -> CoreResult<f64> {
        if !v.is_finite() || v <= min {
            return Err(CoreError::range(field, &format!("a finite number > {min}"), fmt_num(v)));
        }
        Ok(v)
    }

    /// An integer in `[min, max]`.
    pub fn int_in(field: &str, v: f64, min: u32, max: u32) -> CoreResult<u32> {
        if !v.is_finite() || v.fract() != 0.0 || v < min as f64 || v > max as f64 {
            return Err(CoreError::range(
                field,
                &format!("an integer from {min} to {max}"),
                fmt_num(v),
            ));
        }
        Ok(v as u32)
    }

    /// A percentage in `(0, 100]`.
    pub fn percentage(field: &str, v: f64) -> CoreResult<f64> {
        if !v.is_finite() || v <= 0.0 || v > 100.0 {
            return Err(CoreError::range(field, "a percentage > 0 and <= 100", fmt_num(v)));
        }
        Ok(v)
    }

    pub fn fmt_num(v: f64) -> String {
        if v.is_nan() {
            "NaN".to_string()
        } else {
            format!("{v}")
        }
    }
}
