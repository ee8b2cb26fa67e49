//! Access to the package's own endpoints: how strong a token must be, and
//! the failed-token limiter.
//!
//! * **Token strength**: a configured token (ops or read) must carry at
//!   least [`MIN_TOKEN_BITS`] bits, estimated from its length and alphabet
//!   ([`token_bits`]). Guessing a 128-bit token is hopeless at any request
//!   rate, so the limiter never needs to refuse the right token.
//! * **Limiter**: it only throttles *failures*. A source with more than
//!   `per_source` failed tokens in a window is refused (429) until the
//!   window ends, and so is every failing request once the whole process
//!   saw more than `global` failures in the window: rotating source
//!   addresses buys nothing. A request that presents the right token is
//!   checked before the limiter and never refused by it (behind a proxy or
//!   NAT, others' failures must not lock the operator out).
//!
//! ```
//! use reliability_core::core::auth::{token_bits, AuthLimits, TokenLimiter};
//! assert!(token_bits("0123456789abcdef0123456789abcdef") >= 128.0);
//! let limits = AuthLimits::new(2.0, 60_000.0, 100.0).unwrap();
//! let mut l = TokenLimiter::default();
//! assert!(!l.failure("10.0.0.1", 0.0, &limits));
//! assert!(!l.failure("10.0.0.1", 1.0, &limits));
//! assert!(l.failure("10.0.0.1", 2.0, &limits), "third failure: refused for the window");
//! ```

use std::collections::HashMap;

use super::error::{check, CoreError, CoreResult};

/// The least a configured token must carry, in bits.
pub const MIN_TOKEN_BITS: f64 = 128.0;
/// Failed tokens one source may present per window before it gets 429.
pub const DEFAULT_MAX_FAILURES: u32 = 10;
/// Failed tokens the whole process accepts per window, all sources together.
pub const DEFAULT_MAX_GLOBAL_FAILURES: u32 = 100;
/// The window the failure counts cover, in milliseconds (one minute).
///
/// Example: `AuthLimits::default().window_ms == DEFAULT_FAILURE_WINDOW_MS`
pub const DEFAULT_FAILURE_WINDOW_MS: f64 = 60_000.0;
/// Sources the limiter remembers; past it the oldest window is dropped.
pub const AUTH_SOURCES_CAP: usize = 4096;
/// Longest source string kept (an address or a label).
pub const MAX_SOURCE_CHARS: usize = 256;
/// Longest token accepted in configuration.
pub const MAX_TOKEN_CHARS: usize = 4096;

/// The limiter's thresholds, checked once when a router is created.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AuthLimits {
    /// Failed tokens one source may send per window before it is throttled.
    ///
    /// Example: `AuthLimits { per_source: 10, ..AuthLimits::default() }`
    pub per_source: u32,
    /// The window the counts cover, in milliseconds.
    ///
    /// Example: `AuthLimits { window_ms: 60_000.0, ..AuthLimits::default() }`
    pub window_ms: f64,
    /// Failed tokens the whole process accepts per window, all sources together.
    ///
    /// Example: `AuthLimits { global: 100, ..AuthLimits::default() }`
    pub global: u32,
}

impl Default for AuthLimits {
    fn default() -> Self {
        AuthLimits {
            per_source: DEFAULT_MAX_FAILURES,
            window_ms: DEFAULT_FAILURE_WINDOW_MS,
            global: DEFAULT_MAX_GLOBAL_FAILURES,
        }
    }
}

impl AuthLimits {
    /// Validates the three figures (numbers as JS gives them); errors name the option.
    pub fn new(per_source: f64, window_ms: f64, global: f64) -> CoreResult<Self> {
        let int = |field: &str, v: f64, max: f64| -> CoreResult<u32> {
            if !v.is_finite() || v.fract() != 0.0 || v < 1.0 || v > max {
                return Err(CoreError::range(
                    field,
                    &format!("an integer from 1 to {max}"),
                    check::fmt_num(v),
                ));
            }
            Ok(v as u32)
        };
        let per_source = int("maxTokenFailures", per_source, 1_000_000.0)?;
        let global = int("maxGlobalTokenFailures", global, 10_000_000.0)?;
        if !window_ms.is_finite() || !(1000.0..=86_400_000.0).contains(&window_ms) {
            return Err(CoreError::range(
                "failureWindowMs",
                "a number of ms from 1000 to 86400000",
                check::fmt_num(window_ms),
            ));
        }
        Ok(AuthLimits {
            per_source,
            window_ms,
            global,
        })
    }
}

/// Failure counts per source and for the whole process, each in a fixed window.
#[derive(Debug, Default)]
pub struct TokenLimiter {
    per_source: HashMap<String, (u32, f64)>,
    global: (u32, f64),
}

impl TokenLimiter {
    /// Records a failed token from `source`; true when failing requests from
    /// it are now refused (its own count, or the global one, is over).
    pub fn failure(&mut self, source: &str, now: f64, l: &AuthLimits) -> bool {
        let key: String = source.chars().take(MAX_SOURCE_CHARS).collect();
        if self.per_source.len() >= AUTH_SOURCES_CAP && !self.per_source.contains_key(&key) {
            // Forget the source whose window started first.
            if let Some(oldest) = self
                .per_source
                .iter()
                .min_by(|a, b| a.1 .1.total_cmp(&b.1 .1))
                .map(|(k, _)| k.clone())
            {
                self.per_source.remove(&oldest);
            }
        }
        let e = self.per_source.entry(key).or_insert((0, now));
        if now - e.1 > l.window_ms {
            *e = (0, now);
        }
        e.0 = e.0.saturating_add(1);
        let own = e.0 > l.per_source;
        if now - self.global.1 > l.window_ms {
            self.global = (0, now);
        }
        self.global.0 = self.global.0.saturating_add(1);
        own || self.global.0 > l.global
    }

    /// True while failing requests from `source` are refused.
    pub fn blocked(&self, source: &str, now: f64, l: &AuthLimits) -> bool {
        let over = |(n, start): (u32, f64), max: u32| now - start <= l.window_ms && n > max;
        over(self.global, l.global)
            || self
                .per_source
                .get(source)
                .is_some_and(|&e| over(e, l.per_source))
    }

    /// Seconds until failing requests from `source` are accepted again (0 if they are).
    pub fn retry_after_s(&self, source: &str, now: f64, l: &AuthLimits) -> f64 {
        let left = |(n, start): (u32, f64), max: u32| {
            if now - start <= l.window_ms && n > max {
                start + l.window_ms - now
            } else {
                0.0
            }
        };
        let g = left(self.global, l.global);
        let s = self
            .per_source
            .get(source)
            .map_or(0.0, |&e| left(e, l.per_source));
        (g.max(s) / 1000.0)
            .ceil()
            .max(if g > 0.0 || s > 0.0 { 1.0 } else { 0.0 })
    }

    /// A right token from `source`: its own count starts again.
    pub fn success(&mut self, source: &str) {
        self.per_source.remove(source);
    }

    /// How many sources have failures on record (bounded: the map is capped).
    ///
    /// Example: `assert_eq!(limiter.sources(), 0);`
    pub fn sources(&self) -> usize {
        self.per_source.len()
    }
}

/// Estimated bits in a token: its length times the bits per character of
/// the smallest usual alphabet holding all its characters (decimal 3.3,
/// hex 4, lower-case alphanumeric 5.2, alphanumeric 5.95, base64/base64url
/// 6, printable ASCII 6.6, anything else 7). A token whose characters repeat
/// a lot (`aaaa…`, `abab…`) is counted at its Shannon entropy instead, when
/// that is under half the alphabet's figure.
pub fn token_bits(token: &str) -> f64 {
    let chars: Vec<char> = token.chars().collect();
    let n = chars.len();
    if n == 0 {
        return 0.0;
    }
    let all = |f: fn(char) -> bool| chars.iter().all(|&c| f(c));
    let per_char: f64 = if all(|c| c.is_ascii_digit()) {
        10f64.log2()
    } else if all(|c| c.is_ascii_hexdigit())
        && (all(|c| !c.is_ascii_uppercase()) || all(|c| !c.is_ascii_lowercase()))
    {
        4.0
    } else if all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        || all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    {
        36f64.log2()
    } else if all(|c| c.is_ascii_alphanumeric()) {
        62f64.log2()
    } else if all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '/' | '=')) {
        6.0
    } else if all(|c| (' '..='~').contains(&c)) {
        95f64.log2()
    } else {
        7.0
    };
    let mut counts: HashMap<char, usize> = HashMap::new();
    for &c in &chars {
        *counts.entry(c).or_default() += 1;
    }
    let shannon: f64 = counts
        .values()
        .map(|&k| {
            let p = k as f64 / n as f64;
            -p * p.log2()
        })
        .sum();
    let bits = if shannon < per_char / 2.0 {
        shannon
    } else {
        per_char
    };
    bits * n as f64
}

/// Checks a configured token (`field` names the option or variable): at
/// most [`MAX_TOKEN_CHARS`], printable, and at least [`MIN_TOKEN_BITS`]
/// bits. The error says how to make a good one and never quotes the token.
pub fn check_token(field: &str, token: &str) -> CoreResult<()> {
    let n = token.chars().count();
    if n > MAX_TOKEN_CHARS {
        return Err(CoreError::range(
            field,
            &format!("a token of at most {MAX_TOKEN_CHARS} characters"),
            format!("{n} characters"),
        ));
    }
    if token.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(CoreError::range(
            field,
            "a token without spaces or control characters",
            "one with them",
        ));
    }
    let bits = token_bits(token);
    if bits < MIN_TOKEN_BITS {
        return Err(CoreError::range(
            field,
            &format!("a random token of at least {MIN_TOKEN_BITS} bits (make one with `openssl rand -hex 32` or `node -e \"console.log(require('crypto').randomBytes(32).toString('hex'))\"`)"),
            format!("a token of about {} bits ({n} characters)", bits.floor()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_strength() {
        assert!(
            token_bits(&"a1".repeat(32)) < 128.0,
            "a repeated pattern counts at its Shannon entropy"
        );
        assert_eq!(token_bits(&"0f".repeat(0)), 0.0);
        assert!(
            check_token("token", "0123456789abcdef0123456789abcdef").is_ok(),
            "32 hex characters: 128 bits"
        );
        assert!(
            check_token("token", "0123456789abcdef0123456789abcde").is_err(),
            "31 hex: 124 bits"
        );
        assert!(check_token("token", "secret").is_err());
        assert!(check_token("token", &"x".repeat(200)).is_err());
        let e = check_token("RELIABILITY_OPS_TOKEN", "cluster-token").unwrap_err();
        assert!(
            e.message
                .starts_with("RELIABILITY_OPS_TOKEN must be a random token of at least 128 bits"),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("openssl rand -hex 32") && !e.message.contains("cluster-token"),
            "says how, never quotes it: {}",
            e.message
        );
        // base64url of 22 random bytes: 30 characters × 6 bits.
        assert!(check_token("t", "q3Jd9_kLm2PxR7vN-b0WcYt5Zs8Ae1").is_ok());
        assert!(check_token("t", "has space 0123456789abcdef0123456789abcdef").is_err());
    }

    #[test]
    fn limiter_throttles_failures_per_source_and_globally() {
        let l = AuthLimits::new(5.0, 60_000.0, 20.0).unwrap();
        let mut t = TokenLimiter::default();
        for _ in 0..5 {
            assert!(!t.failure("10.0.0.1", 0.0, &l));
        }
        assert!(t.failure("10.0.0.1", 1.0, &l));
        assert!(t.blocked("10.0.0.1", 2.0, &l));
        assert!(!t.blocked("10.0.0.2", 2.0, &l));
        assert_eq!(t.retry_after_s("10.0.0.1", 2.0, &l), 60.0);
        assert!(!t.blocked("10.0.0.1", 60_002.0, &l), "window over");
        // Rotating sources: each stays under its own limit, the global one catches them.
        let mut t = TokenLimiter::default();
        let mut refused = 0;
        for i in 0..100 {
            if t.failure(&format!("127.0.0.{}", i % 50), i as f64, &l) {
                refused += 1;
            }
        }
        assert_eq!(refused, 80, "every failure past the 20th in the window");
        assert!(
            t.blocked("127.0.0.99", 100.0, &l),
            "a new source is refused too while the global count is over"
        );
        assert!(!t.blocked("127.0.0.99", 61_000.0, &l));
        for i in 0..(AUTH_SOURCES_CAP + 10) {
            t.failure(&format!("s{i}"), i as f64, &l);
        }
        assert!(t.sources() <= AUTH_SOURCES_CAP);
    }

    #[test]
    fn limits_are_checked() {
        assert!(AuthLimits::new(0.0, 60_000.0, 10.0)
            .unwrap_err()
            .message
            .starts_with("maxTokenFailures"));
        assert!(AuthLimits::new(1.0, 10.0, 10.0)
            .unwrap_err()
            .message
            .starts_with("failureWindowMs"));
        assert!(AuthLimits::new(1.5, 60_000.0, 10.0).is_err());
        assert!(AuthLimits::new(1.0, 60_000.0, 0.0)
            .unwrap_err()
            .message
            .starts_with("maxGlobalTokenFailures"));
        assert_eq!(
            AuthLimits::default(),
            AuthLimits::new(10.0, 60_000.0, 100.0).unwrap()
        );
    }
}
