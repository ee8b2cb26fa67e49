//! OpenMetrics 1.0 text: as Prometheus text but a counter's `# TYPE`,
//! `# HELP` and `# UNIT` name the family without `_total` (its samples keep
//! it), a `# UNIT` line when the family has a unit its name ends with, `"`
//! escaped in help, and `# EOF` at the end.
//!
//! ```
//! use reliability_core::core::exposition::model::{Family, Kind, Sample, Value};
//! use reliability_core::core::exposition::openmetrics;
//! let f = Family::new("rc_calls_total", Kind::Counter, "Calls.")
//!     .with(Sample::new(vec![], Value::Number(2.0)));
//! let mut out = String::new();
//! openmetrics::render(&[f], &mut out);
//! assert_eq!(out, "# TYPE rc_calls counter\n# HELP rc_calls Calls.\nrc_calls_total 2\n# EOF\n");
//! ```

use super::model::{Family, Kind};
use super::text::{kind_name, push_help, sample, Scratch};

/// The `Content-Type` of this format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Appends every family and the closing `# EOF`.
pub fn render(families: &[Family], out: &mut String) {
    let mut scratch = Scratch::default();
    for f in families.iter().filter(|f| !f.samples.is_empty()) {
        let base = match f.kind {
            Kind::Counter => f.name.strip_suffix("_total").unwrap_or(&f.name),
            _ => &f.name,
        };
        out.push_str("# TYPE ");
        out.push_str(base);
        out.push(' ');
        out.push_str(kind_name(f.kind));
        out.push_str("\n# HELP ");
        out.push_str(base);
        out.push(' ');
        push_help(out, &f.help, true);
        out.push('\n');
        if let Some(unit) = f.unit {
            // OpenMetrics requires the unit to be the name's suffix.
            if base.ends_with(&format!("_{unit}")) {
                out.push_str("# UNIT ");
                out.push_str(base);
                out.push(' ');
                out.push_str(unit);
                out.push('\n');
            }
        }
        for s in &f.samples {
            sample(out, &f.name, s, &mut scratch);
        }
    }
    out.push_str("# EOF\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::exposition::model::{HistogramValue, Sample, Value};

    #[test]
    fn units_histograms_and_eof() {
        let mut f = Family::new("d_seconds", Kind::Histogram, "Say \"hi\".").with(Sample::new(
            vec![],
            Value::Histogram(HistogramValue {
                buckets: vec![(1.0, 2)],
                count: 2,
                sum: 0.5,
                native: None,
            }),
        ));
        f.unit = Some("seconds");
        let mut g = Family::new("cpu_seconds_total", Kind::Counter, "C.")
            .with(Sample::new(vec![], Value::Number(1.5)));
        g.unit = Some("seconds");
        let mut out = String::new();
        let empty = Family::new("nothing_total", Kind::Counter, "No series yet.");
        render(&[f, empty, g], &mut out);
        assert_eq!(
            out,
            "# TYPE d_seconds histogram\n# HELP d_seconds Say \\\"hi\\\".\n# UNIT d_seconds seconds\n\
             d_seconds_bucket{le=\"1\"} 2\nd_seconds_bucket{le=\"+Inf\"} 2\nd_seconds_sum 0.5\nd_seconds_count 2\n\
             # TYPE cpu_seconds counter\n# HELP cpu_seconds C.\n# UNIT cpu_seconds seconds\ncpu_seconds_total 1.5\n\
             # EOF\n"
        );
    }
}
