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
            sample(out, &f.name, s);
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

/// One sample's lines; shared with the OpenMetrics renderer (the sample
/// syntax is the same in both formats for what the package exposes).
pub(crate) fn sample(out: &mut String, name: &str, s: &Sample) {
    match &s.value {
        Value::Number(v) => {
            out.push_str(name);
            labels(out, &s.labels, None);
            out.push(' ');
            push_number(out, *v);
            out.push('\n');
        }
        Value::Histogram(h) => {
            for &(le, cumulative) in &h.buckets {
                if le == f64::INFINITY {
                    // A bound of +Inf is the implied last bucket.
                    continue;
                }
                bucket(out, name, &s.labels, &ryu_like(le), cumulative);
            }
            bucket(out, name, &s.labels, "+Inf", h.count);
            out.push_str(name);
            out.push_str("_sum");
            labels(out, &s.labels, None);
            out.push(' ');
            push_number(out, h.sum);
            out.push('\n');
            out.push_str(name);
            out.push_str("_count");
            labels(out, &s.labels, None);
            let _ = writeln!(out, " {}", h.count);
        }
    }
}

fn bucket(out: &mut String, name: &str, ls: &[(&'static str, String)], le: &str, n: u64) {
    out.push_str(name);
    out.push_str("_bucket");
    labels(out, ls, Some(le));
    let _ = writeln!(out, " {n}");
}

fn labels(out: &mut String, ls: &[(&'static str, String)], le: Option<&str>) {
    if ls.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    for (i, (k, v)) in ls.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        push_escaped(out, v);
        out.push('"');
    }
    if let Some(le) = le {
        if !ls.is_empty() {
            out.push(',');
        }
        out.push_str("le=\"");
        out.push_str(le);
        out.push('"');
    }
    out.push('}');
}

/// A float as both formats spell it: `+Inf`, `-Inf`, `NaN`, else Rust's
/// shortest round-trip form (`0.005`, `3`, `1e-7`).
pub(crate) fn ryu_like(v: f64) -> String {
    let mut s = String::new();
    push_number(&mut s, v);
    s
}

pub(crate) fn push_number(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else if v.fract() == 0.0 && v.abs() < 9.0e15 {
        // Counts are whole numbers: integer formatting is several times
        // faster than float formatting and spells them the same.
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
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
