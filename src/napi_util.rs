//! Shared helpers for the binding files: reading option objects with errors
//! that name the field, and turning core errors into JS TypeError/RangeError.
//!
//! SAFETY (every `unsafe` in this file): `Unknown::cast::<T>` is unsafe only
//! because it trusts the caller about the value's JS type. Each call here is
//! on a value whose `ValueType` was matched to `T` on the line before (or in
//! the same `match` arm), so the cast reads exactly the type napi reported.
//! The JS tests call every reader with every wrong type (`__test__/hostile.test.js`).

use std::cell::{RefCell, RefMut};

use napi::bindgen_prelude::*;
use napi::{Env, Status, ValueType};
use napi_derive::napi;

use crate::core::error::{CoreError, ErrorKind};

/// Throws `e` as the matching JS error class and returns the napi error that
/// tells napi-rs an exception is already pending (so it does not throw twice).
pub fn throw(env: &Env, e: CoreError) -> Error {
    let code = e.kind.code();
    let _ = match e.kind {
        ErrorKind::Type => env.throw_type_error(&e.message, Some(code)),
        ErrorKind::Range | ErrorKind::Limit => env.throw_range_error(&e.message, Some(code)),
        ErrorKind::NotFound | ErrorKind::State | ErrorKind::Reentrant => {
            env.throw_error(&e.message, Some(code))
        }
    };
    Error::new(Status::PendingException, e.message)
}

/// Mutably borrows a binding's thread-local state, or refuses a re-entrant
/// call with `ERR_REENTRANT` instead of panicking across the FFI. Bindings
/// read every user object before calling this, so it should never refuse;
/// it is the guard for whatever is missed.
///
/// ```ignore
/// let mut state = borrow_mut(cell, "the circuit breaker registry")?;
/// ```
pub fn borrow_mut<'a, T>(
    cell: &'a RefCell<T>,
    what: &str,
) -> std::result::Result<RefMut<'a, T>, CoreError> {
    cell.try_borrow_mut()
        .map_err(|_| CoreError::reentrant(what))
}

/// The `code` of each error the binding throws, for the JS side to match on.
#[napi(object)]
pub struct ErrorCodes {
    /// A TypeError's code (`ERR_INVALID_ARG_TYPE`): a value of the wrong type.
    pub invalid_type: String,
    /// A RangeError's code (`ERR_OUT_OF_RANGE`): a value outside its range.
    pub out_of_range: String,
    /// Nothing is registered under the name (`ERR_NOT_FOUND`).
    pub not_found: String,
    /// The call does not fit the object's state (`ERR_INVALID_STATE`).
    pub invalid_state: String,
    /// A capped set is full (`ERR_LIMIT_REACHED`, thrown as a RangeError).
    pub limit_reached: String,
    /// A re-entrant call was refused (`ERR_REENTRANT`).
    pub reentrant: String,
}

/// The error codes (`ERR_LIMIT_REACHED`, …), so JS compares against the
/// binding's strings instead of copies.
#[napi]
pub fn error_codes() -> ErrorCodes {
    let c = |k: ErrorKind| k.code().to_string();
    ErrorCodes {
        invalid_type: c(ErrorKind::Type),
        out_of_range: c(ErrorKind::Range),
        not_found: c(ErrorKind::NotFound),
        invalid_state: c(ErrorKind::State),
        limit_reached: c(ErrorKind::Limit),
        reentrant: c(ErrorKind::Reentrant),
    }
}

fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Undefined => "undefined",
        ValueType::Null => "null",
        ValueType::Boolean => "a boolean",
        ValueType::Number => "a number",
        ValueType::String => "a string",
        ValueType::Symbol => "a symbol",
        ValueType::Object => "an object",
        ValueType::Function => "a function",
        _ => "a value of another type",
    }
}

/// A plain options object (or nothing). `field` names it in errors.
pub struct Opts<'a> {
    obj: Option<Object<'a>>,
    prefix: String,
}

impl<'a> Opts<'a> {
    /// Reads `value` as an options object: `undefined`/`null` (or no
    /// argument) is an empty one, anything but an object a TypeError naming
    /// `field`. Errors about its keys name them `field.key` (just `key` when
    /// `field` is `"options"`, the top-level argument).
    ///
    /// ```ignore
    /// let o = Opts::from_unknown(options, "options")?;
    /// let max = o.number("maxRetries", "an integer from 0 to 100")?;
    /// ```
    pub fn from_unknown(
        value: Option<Unknown<'a>>,
        field: &str,
    ) -> std::result::Result<Self, CoreError> {
        let obj = match value {
            None => None,
            Some(v) => match v
                .get_type()
                .map_err(|e| CoreError::type_error(field, "an object", e))?
            {
                ValueType::Undefined | ValueType::Null => None,
                ValueType::Object => Some(
                    unsafe { v.cast::<Object>() }
                        .map_err(|e| CoreError::type_error(field, "an object", e))?,
                ),
                t => return Err(CoreError::type_error(field, "an object", type_name(t))),
            },
        };
        Ok(Opts {
            obj,
            prefix: if field == "options" {
                String::new()
            } else {
                format!("{field}.")
            },
        })
    }

    fn get(&self, key: &str) -> std::result::Result<Option<(Unknown<'a>, ValueType)>, CoreError> {
        let Some(obj) = &self.obj else {
            return Ok(None);
        };
        let v: Unknown = obj
            .get_named_property(key)
            .map_err(|e| CoreError::type_error(&self.path(key), "readable", e))?;
        let t = v
            .get_type()
            .map_err(|e| CoreError::type_error(&self.path(key), "readable", e))?;
        Ok(match t {
            ValueType::Undefined | ValueType::Null => None,
            t => Some((v, t)),
        })
    }

    /// How errors name `key` of this object (`retryOptions.maxRetries`).
    pub fn path(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    /// A number, or None when absent. `allowed` describes the range for the type error.
    pub fn number(&self, key: &str, allowed: &str) -> std::result::Result<Option<f64>, CoreError> {
        match self.get(key)? {
            None => Ok(None),
            Some((v, ValueType::Number)) => {
                Ok(Some(unsafe { v.cast::<f64>() }.map_err(|e| {
                    CoreError::type_error(&self.path(key), allowed, e)
                })?))
            }
            Some((_, t)) => Err(CoreError::type_error(
                &self.path(key),
                allowed,
                type_name(t),
            )),
        }
    }

    /// The options object at `key` (an empty one when absent); its keys are
    /// named `key.inner` in errors.
    pub fn nested(&self, key: &str) -> std::result::Result<Opts<'a>, CoreError> {
        let path = self.path(key);
        match self.get(key)? {
            None => Ok(Opts {
                obj: None,
                prefix: format!("{path}."),
            }),
            Some((v, _)) => Opts::from_unknown(Some(v), &path),
        }
    }

    /// True when `key` holds a value (not undefined or null).
    pub fn has(&self, key: &str) -> std::result::Result<bool, CoreError> {
        Ok(self.get(key)?.is_some())
    }

    /// An array of option objects (`steps: [{...}, ...]`), or None when absent.
    pub fn object_array(&self, key: &str) -> std::result::Result<Option<Vec<Opts<'a>>>, CoreError> {
        let path = self.path(key);
        let Some((v, t)) = self.get(key)? else {
            return Ok(None);
        };
        if t != ValueType::Object || !v.is_array().unwrap_or(false) {
            return Err(CoreError::type_error(
                &path,
                "an array of objects",
                type_name(t),
            ));
        }
        let arr: Vec<Unknown> = unsafe { v.cast::<Vec<Unknown>>() }
            .map_err(|e| CoreError::type_error(&path, "an array of objects", e))?;
        arr.into_iter()
            .enumerate()
            .map(|(i, x)| Opts::from_unknown(Some(x), &format!("{path}[{i}]")))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Either a boolean or a string, for options like `jitter: true | 'full'`.
    pub fn bool_or_string(
        &self,
        key: &str,
        allowed: &str,
    ) -> std::result::Result<Option<either::Either<bool, String>>, CoreError> {
        match self.get(key)? {
            None => Ok(None),
            Some((v, ValueType::Boolean)) => Ok(Some(either::Either::Left(
                unsafe { v.cast::<bool>() }.unwrap_or(false),
            ))),
            Some((v, ValueType::String)) => Ok(Some(either::Either::Right(
                unsafe { v.cast::<String>() }
                    .map_err(|e| CoreError::type_error(&self.path(key), allowed, e))?,
            ))),
            Some((_, t)) => Err(CoreError::type_error(
                &self.path(key),
                allowed,
                type_name(t),
            )),
        }
    }

    /// The elements of the array at `key` (None when absent), each checked
    /// to be of JS type `elem` (named `elem_name` in errors) and cast.
    fn array_of<T: FromNapiValue>(
        &self,
        key: &str,
        allowed: &str,
        elem: ValueType,
        elem_name: &str,
    ) -> std::result::Result<Option<Vec<T>>, CoreError> {
        let path = self.path(key);
        let Some((v, t)) = self.get(key)? else {
            return Ok(None);
        };
        if t != ValueType::Object || !v.is_array().unwrap_or(false) {
            return Err(CoreError::type_error(&path, allowed, type_name(t)));
        }
        let arr: Vec<Unknown> = unsafe { v.cast::<Vec<Unknown>>() }
            .map_err(|e| CoreError::type_error(&path, allowed, e))?;
        arr.iter()
            .enumerate()
            .map(|(i, x)| match x.get_type() {
                Ok(t) if t == elem => {
                    unsafe { x.cast::<T>() }.map_err(|e| CoreError::type_error(&path, allowed, e))
                }
                Ok(t) => Err(CoreError::type_error(
                    &format!("{path}[{i}]"),
                    elem_name,
                    type_name(t),
                )),
                Err(e) => Err(CoreError::type_error(&format!("{path}[{i}]"), elem_name, e)),
            })
            .collect::<std::result::Result<Vec<T>, CoreError>>()
            .map(Some)
    }

    /// An array of numbers, or None when absent.
    pub fn number_array(
        &self,
        key: &str,
        allowed: &str,
    ) -> std::result::Result<Option<Vec<f64>>, CoreError> {
        self.array_of(key, allowed, ValueType::Number, "a number")
    }

    /// A string, or None when absent.
    pub fn string(
        &self,
        key: &str,
        allowed: &str,
    ) -> std::result::Result<Option<String>, CoreError> {
        match self.get(key)? {
            None => Ok(None),
            Some((v, ValueType::String)) => {
                Ok(Some(unsafe { v.cast::<String>() }.map_err(|e| {
                    CoreError::type_error(&self.path(key), allowed, e)
                })?))
            }
            Some((_, t)) => Err(CoreError::type_error(
                &self.path(key),
                allowed,
                type_name(t),
            )),
        }
    }

    /// A boolean, or None when absent.
    pub fn boolean(&self, key: &str) -> std::result::Result<Option<bool>, CoreError> {
        match self.get(key)? {
            None => Ok(None),
            Some((v, ValueType::Boolean)) => {
                Ok(Some(unsafe { v.cast::<bool>() }.map_err(|e| {
                    CoreError::type_error(&self.path(key), "a boolean", e)
                })?))
            }
            Some((_, t)) => Err(CoreError::type_error(
                &self.path(key),
                "a boolean",
                type_name(t),
            )),
        }
    }

    /// An array of strings, or None when absent.
    pub fn string_array(
        &self,
        key: &str,
        allowed: &str,
    ) -> std::result::Result<Option<Vec<String>>, CoreError> {
        self.array_of(key, allowed, ValueType::String, "a string")
    }

    /// A number or `false` (meaning "off"), for options like `timeout`.
    pub fn number_or_false(
        &self,
        key: &str,
        allowed: &str,
    ) -> std::result::Result<Option<f64>, CoreError> {
        match self.get(key)? {
            None => Ok(None),
            Some((v, ValueType::Boolean)) if !unsafe { v.cast::<bool>() }.unwrap_or(true) => {
                Ok(None)
            }
            Some((v, ValueType::Number)) => {
                Ok(Some(unsafe { v.cast::<f64>() }.map_err(|e| {
                    CoreError::type_error(&self.path(key), allowed, e)
                })?))
            }
            Some((_, t)) => Err(CoreError::type_error(
                &self.path(key),
                allowed,
                type_name(t),
            )),
        }
    }
}

/// Minimal Either so the helpers need no extra crate.
pub mod either {
    /// One of two types (`jitter: true | 'full'`).
    pub enum Either<L, R> {
        /// The first type.
        Left(L),
        /// The second type.
        Right(R),
    }
}
