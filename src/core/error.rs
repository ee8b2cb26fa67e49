//! Errors the core returns instead of panicking. The binding layer turns
//! `Type` into a JS `TypeError`, `Range` into a `RangeError` and `NotFound`
//! into a plain `Error`; the message always names the field and what it allows.

use std::fmt;

/// What went wrong, which picks the JS error class and `code` (see [`ErrorKind::code`]).
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
    /// A configured cap (breakers, watchdogs, ...) is reached: a JS
    /// `RangeError` whose message names the cap and how to raise it.
    Limit,
    /// A call made while the same module's state is in use further up the
    /// stack (a getter or Proxy trap of an argument calling back in): a plain
    /// JS `Error`. The bindings read arguments before taking their state, so
    /// this is a last line of defence, never a panic.
    Reentrant,
}

impl ErrorKind {
    /// The `code` of the JS error, the one place these strings are written.
    ///
    /// ```
    /// use reliability_core::core::error::ErrorKind;
    /// assert_eq!(ErrorKind::Limit.code(), "ERR_LIMIT_REACHED");
    /// ```
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Type => "ERR_INVALID_ARG_TYPE",
            ErrorKind::Range => "ERR_OUT_OF_RANGE",
            ErrorKind::NotFound => "ERR_NOT_FOUND",
            ErrorKind::State => "ERR_INVALID_STATE",
            ErrorKind::Limit => "ERR_LIMIT_REACHED",
            ErrorKind::Reentrant => "ERR_REENTRANT",
        }
    }
}

/// An error of the core: a kind and a message that names the field and what
/// it allows, ready to show to the user as it is.
///
/// ```
/// use reliability_core::core::error::{CoreError, ErrorKind};
/// let e = CoreError::range("failureThreshold", "an integer from 1 to 1000", 0);
/// assert_eq!(e.kind, ErrorKind::Range);
/// assert_eq!(e.message, "failureThreshold must be an integer from 1 to 1000, got 0");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreError {
    /// Which JS error class and `code` the binding throws.
    pub kind: ErrorKind,
    /// The whole message, naming the field and the allowed range.
    pub message: String,
}

impl CoreError {
    /// `field` has the right type but a value outside `allowed` (a RangeError).
    pub fn range(field: &str, allowed: &str, got: impl fmt::Display) -> Self {
        CoreError {
            kind: ErrorKind::Range,
            message: format!("{field} must be {allowed}, got {got}"),
        }
    }

    /// `field` has the wrong type (a TypeError).
    ///
    /// ```
    /// use reliability_core::core::error::CoreError;
    /// let e = CoreError::type_error("timeout", "a number", "a string");
    /// assert_eq!(e.message, "timeout must be a number, got a string");
    /// ```
    pub fn type_error(field: &str, allowed: &str, got: impl fmt::Display) -> Self {
        CoreError {
            kind: ErrorKind::Type,
            message: format!("{field} must be {allowed}, got {got}"),
        }
    }

    /// Nothing is registered as `name` (a plain Error with `ERR_NOT_FOUND`).
    pub fn not_found(what: &str, name: impl fmt::Display) -> Self {
        CoreError {
            kind: ErrorKind::NotFound,
            message: format!("{what} not found: {name}"),
        }
    }
}

impl CoreError {
    /// A call not allowed in the current state (a plain Error with `ERR_INVALID_STATE`).
    pub fn state(message: impl Into<String>) -> Self {
        CoreError {
            kind: ErrorKind::State,
            message: message.into(),
        }
    }

    /// `what` would pass its cap `max`; `raise` says how to change the cap.
    pub fn limit(what: &str, max: usize, raise: &str) -> Self {
        CoreError {
            kind: ErrorKind::Limit,
            message: format!("{what}: at most {max} allowed ({raise})"),
        }
    }

    /// A re-entrant call into `what` (see `ErrorKind::Reentrant`).
    pub fn reentrant(what: &str) -> Self {
        CoreError {
            kind: ErrorKind::Reentrant,
            message: format!("{what} was called again while it was in use (from a getter, Proxy trap or callback of an argument)"),
        }
    }
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CoreError {}

/// The result type of every fallible core function.
pub type CoreResult<T> = Result<T, CoreError>;

/// Checks shared by every options struct, so each field is validated the same
/// way and says the same thing when it is wrong.
pub mod check {
    use super::{CoreError, CoreResult};

    /// A finite number `>= min`.
    pub fn at_least(field: &str, v: f64, min: f64) -> CoreResult<f64> {
        if !v.is_finite() || v < min {
            return Err(CoreError::range(
                field,
                &format!("a finite number >= {min}"),
                fmt_num(v),
            ));
        }
        Ok(v)
    }

    /// A finite number `> min`.
    pub fn above(field: &str, v: f64, min: f64) -> CoreResult<f64> {
        if !v.is_finite() || v <= min {
            return Err(CoreError::range(
                field,
                &format!("a finite number > {min}"),
                fmt_num(v),
            ));
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
            return Err(CoreError::range(
                field,
                "a percentage > 0 and <= 100",
                fmt_num(v),
            ));
        }
        Ok(v)
    }

    /// A number as error messages show it (`NaN` spelled out).
    ///
    /// ```
    /// use reliability_core::core::error::check::fmt_num;
    /// assert_eq!(fmt_num(f64::NAN), "NaN");
    /// assert_eq!(fmt_num(2.5), "2.5");
    /// ```
    pub fn fmt_num(v: f64) -> String {
        if v.is_nan() {
            "NaN".to_string()
        } else {
            format!("{v}")
        }
    }
}
