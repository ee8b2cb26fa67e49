//! Prometheus text exposition format 0.0.4: `# HELP`, `# TYPE`, one line per
//! sample; histograms as `_bucket{le}` (cumulative, `+Inf` last), `_sum`,
//! `_count`. Renders a `&[Family]` and computes nothing.
//!
//! ```
//! use reliability_core::core::exposition::model::{Family, Kind, Sample, Value};
//! use reliability_core::core::exposition::text;
//! let f = Family::new("rc_example_total", Kind::Counter, "An example.")
//!     .with(Sample::new(vec![("route", "/a".into())], Value::Number(3.0)));
//! let mut out = String::new();
//! text::render(&[f], &mut out);
//! assert_eq!(out, "# HELP rc_example_total An example.\n# TYPE rc_example_total counter\nrc_example_total{route=\"/a\"} 3\n");
//! ```

use std::fmt::Write;

use super::model::{Family, Kind, Sample, Value};

/// The `Content-Type` of this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Appends every family to `out` (the caller may reuse the buffer).
pub fn render(families: &[Family], out: &mut String) {
    let mut scratch = Scratch::default();
    // A family with no series is left out, as client_golang's gatherer does.
    for f in families.iter().filter(|f| !f.samples.is_empty()) {
        out.push_str("# HELP ");
        out.push_str(&f.name);
        out.push(' ');
        push_help(out, &f.help, false);
        out.push_str("\n# TYPE ");
        out.push_str(&f.name);
        out.push(' ');
        out.push_str(kind_name(f.kind));
        out.push('\n');
        for s in &f.samples {
            sample(out, &f.name, s, &mut scratch);
        }
    }
}

pub(crate) fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
        Kind::Histogram => "histogram",
    }
}

/// What one render reuses across samples, so a scrape allocates per
/// render instead of per line: a histogram's label text (escaped once, then
/// copied onto its ~14 lines) and the spelling of each bucket bound (every
/// series of a family has the same bounds; float formatting is the slowest
/// part of a line).
#[derive(Default)]
pub(crate) struct Scratch {
    labels: String,
    bounds: Vec<(u64, String)>,
}

impl Scratch {
    fn bound(&mut self, le: f64) -> &str {
        let bits = le.to_bits();
        let i = match self.bounds.iter().position(|(b, _)| *b == bits) {
            Some(i) => i,
            None => {
                // Bounded by the distinct bounds of one render (a few dozen).
                let mut s = String::new();
                push_number(&mut s, le);
                self.bounds.push((bits, s));
                self.bounds.len() - 1
            }
        };
        &self.bounds[i].1
    }
}

/// One sample's lines; shared with the OpenMetrics renderer (the sample
/// syntax is the same in both formats for what the package exposes).
pub(crate) fn sample(out: &mut String, name: &str, s: &Sample, scratch: &mut Scratch) {
    match &s.value {
        Value::Number(v) => {
            out.push_str(name);
            if !s.labels.is_empty() {
                out.push('{');
                push_labels(out, &s.labels);
                out.push('}');
            }
            out.push(' ');
            push_number(out, *v);
            out.push('\n');
        }
        Value::Histogram(h) => {
            let mut ls = std::mem::take(&mut scratch.labels);
            ls.clear();
            push_labels(&mut ls, &s.labels);
            for &(le, cumulative) in &h.buckets {
                if le == f64::INFINITY {
                    // A bound of +Inf is the implied last bucket.
                    continue;
                }
                bucket(out, name, &ls, scratch.bound(le), cumulative);
            }
            bucket(out, name, &ls, "+Inf", h.count);
            suffixed(out, name, "_sum", &ls);
            push_number(out, h.sum);
            out.push('\n');
            suffixed(out, name, "_count", &ls);
            push_u64(out, h.count);
            out.push('\n');
            scratch.labels = ls;
        }
    }
}

/// `name_suffix{labels} ` (no braces without labels).
fn suffixed(out: &mut String, name: &str, suffix: &str, ls: &str) {
    out.push_str(name);
    out.push_str(suffix);
    if !ls.is_empty() {
        out.push('{');
        out.push_str(ls);
        out.push('}');
    }
    out.push(' ');
}

/// `ls` is the sample's label text, already escaped.
fn bucket(out: &mut String, name: &str, ls: &str, le: &str, n: u64) {
    out.push_str(name);
    out.push_str("_bucket{");
    if !ls.is_empty() {
        out.push_str(ls);
        out.push(',');
    }
    out.push_str("le=\"");
    out.push_str(le);
    out.push_str("\"} ");
    push_u64(out, n);
    out.push('\n');
}

/// `k="v",k="v"` with values escaped, no braces.
fn push_labels(out: &mut String, ls: &[(&'static str, String)]) {
    for (i, (k, v)) in ls.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        push_escaped(out, v);
        out.push('"');
    }
}

/// A float as both formats spell it: `+Inf`, `-Inf`, `NaN`, else Rust's
/// shortest round-trip form (`0.005`, `3`, `1e-7`).
pub(crate) fn push_number(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else if v.fract() == 0.0 && v.abs() < 9.0e15 {
        // Counts are whole numbers: integer formatting is several times
        // faster than float formatting and spells them the same (`-0.0`
        // as `0`, as `v as i64` did).
        if v < 0.0 {
            out.push('-');
        }
        push_u64(out, v.abs() as u64);
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Decimal digits of `n` without `fmt` (its machinery costs more than the
/// digits on a line of a scrape).
pub(crate) fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or_default());
}

/// Label values escape backslash, double quote and newline.
pub(crate) fn push_escaped(out: &mut String, value: &str) {
    // Almost every value (routes, names) has nothing to escape: one copy.
    if !value.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Help text escapes backslash and newline (and, in OpenMetrics, `"`).
pub(crate) fn push_help(out: &mut String, help: &str, quote: bool) {
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::exposition::model::HistogramValue;

    #[test]
    fn histograms_are_cumulative_with_inf_sum_and_count() {
        let f = Family::new("d_seconds", Kind::Histogram, "D.\nline").with(Sample::new(
            vec![("route", "/a\"b\\".into())],
            Value::Histogram(HistogramValue {
                buckets: vec![(0.005, 1), (0.5, 3)],
                count: 4,
                sum: 1.25,
                native: None,
            }),
        ));
        let mut out = String::new();
        render(&[f], &mut out);
        assert_eq!(
            out,
            "# HELP d_seconds D.\\nline\n# TYPE d_seconds histogram\n\
             d_seconds_bucket{route=\"/a\\\"b\\\\\",le=\"0.005\"} 1\n\
             d_seconds_bucket{route=\"/a\\\"b\\\\\",le=\"0.5\"} 3\n\
             d_seconds_bucket{route=\"/a\\\"b\\\\\",le=\"+Inf\"} 4\n\
             d_seconds_sum{route=\"/a\\\"b\\\\\"} 1.25\n\
             d_seconds_count{route=\"/a\\\"b\\\\\"} 4\n"
        );
    }

    #[test]
    fn numbers_spell_infinities_and_nan() {
        let f = Family::new("g", Kind::Gauge, "G.")
            .with(Sample::new(vec![], Value::Number(f64::INFINITY)))
            .with(Sample::new(vec![], Value::Number(f64::NAN)))
            .with(Sample::new(vec![], Value::Number(-0.5)));
        let mut out = String::new();
        render(&[f], &mut out);
        assert!(out.ends_with("g +Inf\ng NaN\ng -0.5\n"), "{out}");
    }
}
