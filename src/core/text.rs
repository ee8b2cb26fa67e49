//! The one rule for text kept in the ops state (reasons, actors, sources,
//! agent ids, audit results): which characters it may hold and how long it
//! may be. The writer and the reader of the state file both use it, so
//! anything the plane writes, it loads back.
//!
//! * **Forbidden characters**: control characters (C0, DEL and C1, which
//!   includes U+0085 NEXT LINE) except tab, the Unicode line and paragraph
//!   separators, bidirectional controls and invisible format characters
//!   (zero-width space/joiners, word joiner, BOM, soft hyphen...). They break
//!   log lines, hide text from an operator or make two ids look alike.
//!   (Emoji variation selectors stay allowed: `⚠️` in a reason is fine.)
//! * **Operator input** (agent ids, rollout names, reasons) with such a
//!   character or too long is refused with a RangeError naming the field
//!   ([`check`]).
//! * **Metadata** the plane records on its own (actor, source, an error
//!   message) is sanitised instead ([`clean`]): each forbidden character
//!   becomes U+FFFD and the text is cut at the limit with `…`.
//!
//! ```
//! use reliability_core::core::text::{clean, check};
//! assert_eq!(clean("10.0.0.1\u{85}evil", 256), "10.0.0.1\u{fffd}evil");
//! assert!(check("agentId", "a\u{202e}b", 256, false).is_err());
//! ```

use super::error::{CoreError, CoreResult};

/// True for a character no ops text may hold (see the module doc).
pub fn forbidden(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFFB}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

/// Checks operator input: at most `max` characters (and at least one unless
/// `allow_empty`), none of them [`forbidden`]. The error names `field`.
pub fn check(field: &str, s: &str, max: usize, allow_empty: bool) -> CoreResult<()> {
    let n = s.chars().count();
    if (!allow_empty && n == 0) || n > max {
        return Err(CoreError::range(
            field,
            &format!(
                "a {}string of at most {max} characters",
                if allow_empty { "" } else { "non-empty " }
            ),
            if n == 0 {
                "an empty string".to_string()
            } else {
                format!("{n} characters")
            },
        ));
    }
    if let Some(c) = s.chars().find(|&c| forbidden(c)) {
        return Err(CoreError::range(
            field,
            "text without control, invisible or bidirectional-control characters",
            format!("U+{:04X}", c as u32),
        ));
    }
    Ok(())
}

/// True when [`check`] would accept `s` (no allocation).
pub fn is_clean(s: &str, max: usize) -> bool {
    s.chars().count() <= max && !s.chars().any(forbidden)
}

/// Sanitises metadata: forbidden characters become U+FFFD, and text longer
/// than `max` characters is cut to `max - 1` plus `…`. The result always
/// passes [`check`] with `allow_empty`.
pub fn clean(s: &str, max: usize) -> String {
    if is_clean(s, max) {
        return s.to_string();
    }
    let n = s.chars().count();
    let keep = if n > max { max.saturating_sub(1) } else { n };
    let mut out: String = s
        .chars()
        .take(keep)
        .map(|c| if forbidden(c) { '\u{FFFD}' } else { c })
        .collect();
    if n > max && max > 0 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_output_always_passes_check() {
        for s in [
            "",
            "plain",
            "a\nb",
            "x\u{85}y",
            "\u{2028}",
            "\u{202e}evil",
            "\u{200b}",
            "\u{feff}bom",
            &"é".repeat(700),
            "tab\tok",
        ] {
            for max in [1, 5, 256, 600] {
                let c = clean(s, max);
                assert!(check("f", &c, max, true).is_ok(), "{s:?} / {max} -> {c:?}");
            }
        }
        assert_eq!(clean("tab\tok", 10), "tab\tok");
        assert_eq!(clean("abcdef", 4), "abc…");
    }

    #[test]
    fn check_names_the_field_and_the_character() {
        assert_eq!(check("agentId", "a\u{200b}b", 256, false).unwrap_err().message, "agentId must be text without control, invisible or bidirectional-control characters, got U+200B");
        assert_eq!(
            check("agentId", "", 256, false).unwrap_err().message,
            "agentId must be a non-empty string of at most 256 characters, got an empty string"
        );
        assert!(check("reason", "ok: 💥 done", 500, true).is_ok());
    }
}
