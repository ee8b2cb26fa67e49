//! Prometheus protobuf exposition: `io.prometheus.client.MetricFamily`
//! messages, each prefixed by its length as a varint (the "delimited"
//! encoding), hand-encoded: the few message types of `metrics.proto` need
//! varints, doubles and length-delimited fields, no protobuf crate.
//!
//! Histograms carry their classic buckets and, when the model has one, the
//! native (sparse exponential) histogram: schema, zero threshold and count,
//! positive spans and deltas. A scraper with native histograms enabled
//! reads the native one; others read the buckets.
//!
//! ```
//! use reliability_core::core::exposition::model::{Family, Kind, Sample, Value};
//! use reliability_core::core::exposition::protobuf::{render, CONTENT_TYPE};
//! let f = Family::new("rc_example_total", Kind::Counter, "An example.")
//!     .with(Sample::new(vec![], Value::Number(3.0)));
//! let mut out = Vec::new();
//! render(&[f], &mut out);
//! assert_eq!(out[0] as usize, out.len() - 1); // one delimited message
//! assert!(CONTENT_TYPE.contains("encoding=delimited"));
//! ```

use super::model::{Family, HistogramValue, Kind, NativeHistogram, Sample, Value};

/// The Content-Type of [`render`]'s bytes.
pub const CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

// `metrics.proto` field numbers.
const MF_NAME: u32 = 1;
const MF_HELP: u32 = 2;
const MF_TYPE: u32 = 3;
const MF_METRIC: u32 = 4;
const MF_UNIT: u32 = 5;
const M_LABEL: u32 = 1;
const M_GAUGE: u32 = 2;
const M_COUNTER: u32 = 3;
const M_HISTOGRAM: u32 = 7;
const LP_NAME: u32 = 1;
const LP_VALUE: u32 = 2;
const H_SAMPLE_COUNT: u32 = 1;
const H_SAMPLE_SUM: u32 = 2;
const H_BUCKET: u32 = 3;
const H_SCHEMA: u32 = 5;
const H_ZERO_THRESHOLD: u32 = 6;
const H_ZERO_COUNT: u32 = 7;
const H_POSITIVE_SPAN: u32 = 12;
const H_POSITIVE_DELTA: u32 = 13;
const B_CUMULATIVE_COUNT: u32 = 1;
const B_UPPER_BOUND: u32 = 2;
const SPAN_OFFSET: u32 = 1;
const SPAN_LENGTH: u32 = 2;
// MetricType
const COUNTER: u64 = 0;
const GAUGE: u64 = 1;
const HISTOGRAM: u64 = 4;

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;

/// Appends every family to `out`, each as one length-delimited `MetricFamily`.
pub fn render(families: &[Family], out: &mut Vec<u8>) {
    let mut msg = Vec::with_capacity(4096);
    for f in families {
        msg.clear();
        family(f, &mut msg);
        varint(out, msg.len() as u64);
        out.extend_from_slice(&msg);
    }
}

fn family(f: &Family, out: &mut Vec<u8>) {
    string(out, MF_NAME, &f.name);
    string(out, MF_HELP, &f.help);
    let t = match f.kind {
        Kind::Counter => COUNTER,
        Kind::Gauge => GAUGE,
        Kind::Histogram => HISTOGRAM,
    };
    key(out, MF_TYPE, VARINT);
    varint(out, t);
    for s in &f.samples {
        nested(out, MF_METRIC, |m| metric(f.kind, s, m));
    }
    if let Some(unit) = f.unit {
        string(out, MF_UNIT, unit);
    }
}

fn metric(kind: Kind, s: &Sample, out: &mut Vec<u8>) {
    for (name, value) in &s.labels {
        nested(out, M_LABEL, |lp| {
            string(lp, LP_NAME, name);
            string(lp, LP_VALUE, value);
        });
    }
    match (&s.value, kind) {
        (Value::Number(v), Kind::Counter) => nested(out, M_COUNTER, |c| double(c, 1, *v)),
        (Value::Number(v), _) => nested(out, M_GAUGE, |g| double(g, 1, *v)),
        (Value::Histogram(h), _) => nested(out, M_HISTOGRAM, |m| histogram(h, m)),
    }
}

fn histogram(h: &HistogramValue, out: &mut Vec<u8>) {
    key(out, H_SAMPLE_COUNT, VARINT);
    varint(out, h.count);
    double(out, H_SAMPLE_SUM, h.sum);
    for &(le, cumulative) in &h.buckets {
        nested(out, H_BUCKET, |b| {
            key(b, B_CUMULATIVE_COUNT, VARINT);
            varint(b, cumulative);
            double(b, B_UPPER_BOUND, le);
        });
    }
    if let Some(n) = &h.native {
        native(n, out);
    }
}

fn native(n: &NativeHistogram, out: &mut Vec<u8>) {
    key(out, H_SCHEMA, VARINT);
    varint(out, zigzag(n.schema as i64));
    double(out, H_ZERO_THRESHOLD, n.zero_threshold);
    key(out, H_ZERO_COUNT, VARINT);
    varint(out, n.zero_count);
    if n.positive_spans.is_empty() {
        // No observation yet: an empty span is how client_golang marks a
        // histogram as native, so the scraper does not fall back to classic.
        nested(out, H_POSITIVE_SPAN, |_| {});
    }
    for &(offset, length) in &n.positive_spans {
        nested(out, H_POSITIVE_SPAN, |s| {
            key(s, SPAN_OFFSET, VARINT);
            varint(s, zigzag(offset as i64));
            key(s, SPAN_LENGTH, VARINT);
            varint(s, length as u64);
        });
    }
    if !n.positive_deltas.is_empty() {
        // Packed: accepted for repeated scalars by every protobuf decoder.
        nested(out, H_POSITIVE_DELTA, |d| {
            for &delta in &n.positive_deltas {
                varint(d, zigzag(delta));
            }
        });
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn key(out: &mut Vec<u8>, field: u32, wire: u32) {
    varint(out, ((field << 3) | wire) as u64);
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn double(out: &mut Vec<u8>, field: u32, v: f64) {
    key(out, field, FIXED64);
    out.extend_from_slice(&v.to_le_bytes());
}

fn string(out: &mut Vec<u8>, field: u32, s: &str) {
    key(out, field, LEN);
    varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// A length-delimited sub-message: written to the end of `out`, then its
/// length varint inserted before it (messages here are small).
fn nested(out: &mut Vec<u8>, field: u32, body: impl FnOnce(&mut Vec<u8>)) {
    key(out, field, LEN);
    let start = out.len();
    body(out);
    let len = out.len() - start;
    let mut prefix = Vec::with_capacity(5);
    varint(&mut prefix, len as u64);
    out.splice(start..start, prefix);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny protobuf decoder: (field, wire type, payload) triples, with
    /// varints decoded and fixed64 as raw bits.
    #[derive(Debug, Clone, PartialEq)]
    enum F<'a> {
        V(u64),
        D(f64),
        B(&'a [u8]),
    }

    fn read_varint(b: &[u8], at: &mut usize) -> u64 {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let byte = b[*at];
            *at += 1;
            v |= ((byte & 0x7f) as u64) << shift;
            if byte < 0x80 {
                return v;
            }
            shift += 7;
        }
    }

    fn fields(b: &[u8]) -> Vec<(u32, F<'_>)> {
        let mut at = 0;
        let mut out = vec![];
        while at < b.len() {
            let k = read_varint(b, &mut at);
            let (field, wire) = ((k >> 3) as u32, (k & 7) as u32);
            let v = match wire {
                0 => F::V(read_varint(b, &mut at)),
                1 => {
                    let d = f64::from_le_bytes(b[at..at + 8].try_into().unwrap());
                    at += 8;
                    F::D(d)
                }
                2 => {
                    let n = read_varint(b, &mut at) as usize;
                    at += n;
                    F::B(&b[at - n..at])
                }
                w => panic!("wire type {w}"),
            };
            out.push((field, v));
        }
        assert_eq!(at, b.len(), "no trailing bytes");
        out
    }

    fn get<'a>(fs: &[(u32, F<'a>)], field: u32) -> Vec<F<'a>> {
        fs.iter()
            .filter(|(f, _)| *f == field)
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn unzig(v: u64) -> i64 {
        ((v >> 1) as i64) ^ -((v & 1) as i64)
    }

    fn delimited(b: &[u8]) -> Vec<&[u8]> {
        let mut at = 0;
        let mut out = vec![];
        while at < b.len() {
            let n = read_varint(b, &mut at) as usize;
            out.push(&b[at..at + n]);
            at += n;
        }
        out
    }

    #[test]
    fn families_decode_back_to_the_model() {
        let counter =
            Family::new("rc_requests_total", Kind::Counter, "Requests.").with(Sample::new(
                vec![("route", "/a".into()), ("method", "GET".into())],
                Value::Number(300.0),
            ));
        let gauge = Family::new("rc_in_flight", Kind::Gauge, "In flight.")
            .with(Sample::new(vec![], Value::Number(-2.5)));
        let mut hist = Family::new("rc_duration_seconds", Kind::Histogram, "Durations.");
        hist.unit = Some("seconds");
        let hist = hist.with(Sample::new(
            vec![("route", "/a".into())],
            Value::Histogram(HistogramValue {
                buckets: vec![(0.1, 2), (1.0, 5)],
                count: 6,
                sum: 3.25,
                native: Some(NativeHistogram {
                    schema: 6,
                    zero_threshold: 0.0,
                    zero_count: 0,
                    positive_spans: vec![(-200, 2), (3, 1)],
                    positive_deltas: vec![2, 1, -3],
                }),
            }),
        ));
        let mut out = Vec::new();
        render(&[counter, gauge, hist], &mut out);
        let msgs = delimited(&out);
        assert_eq!(msgs.len(), 3);

        let c = fields(msgs[0]);
        assert_eq!(get(&c, MF_NAME), vec![F::B(b"rc_requests_total")]);
        assert_eq!(get(&c, MF_HELP), vec![F::B(b"Requests.")]);
        assert_eq!(get(&c, MF_TYPE), vec![F::V(COUNTER)]);
        let [F::B(m)] = get(&c, MF_METRIC)[..] else {
            panic!()
        };
        let m = fields(m);
        let labels: Vec<_> = get(&m, M_LABEL)
            .into_iter()
            .map(|l| match l {
                F::B(b) => fields(b),
                _ => panic!(),
            })
            .collect();
        assert_eq!(labels[0], vec![(1, F::B(b"route")), (2, F::B(b"/a"))]);
        assert_eq!(labels[1], vec![(1, F::B(b"method")), (2, F::B(b"GET"))]);
        let [F::B(v)] = get(&m, M_COUNTER)[..] else {
            panic!()
        };
        assert_eq!(fields(v), vec![(1, F::D(300.0))]);

        let g = fields(msgs[1]);
        assert_eq!(get(&g, MF_TYPE), vec![F::V(GAUGE)]);
        let [F::B(m)] = get(&g, MF_METRIC)[..] else {
            panic!()
        };
        let [F::B(v)] = get(&fields(m), M_GAUGE)[..] else {
            panic!()
        };
        assert_eq!(fields(v), vec![(1, F::D(-2.5))]);

        let h = fields(msgs[2]);
        assert_eq!(get(&h, MF_TYPE), vec![F::V(HISTOGRAM)]);
        assert_eq!(get(&h, MF_UNIT), vec![F::B(b"seconds")]);
        let [F::B(m)] = get(&h, MF_METRIC)[..] else {
            panic!()
        };
        let [F::B(hv)] = get(&fields(m), M_HISTOGRAM)[..] else {
            panic!()
        };
        let hv = fields(hv);
        assert_eq!(get(&hv, H_SAMPLE_COUNT), vec![F::V(6)]);
        assert_eq!(get(&hv, H_SAMPLE_SUM), vec![F::D(3.25)]);
        let buckets: Vec<_> = get(&hv, H_BUCKET)
            .into_iter()
            .map(|b| match b {
                F::B(b) => fields(b),
                _ => panic!(),
            })
            .collect();
        assert_eq!(buckets[1], vec![(1, F::V(5)), (2, F::D(1.0))]);
        assert_eq!(get(&hv, H_SCHEMA), vec![F::V(12)]); // zigzag(6)
        assert_eq!(get(&hv, H_ZERO_THRESHOLD), vec![F::D(0.0)]);
        let spans: Vec<(i64, u64)> = get(&hv, H_POSITIVE_SPAN)
            .into_iter()
            .map(|s| match s {
                F::B(b) => {
                    let f = fields(b);
                    match (&f[0].1, &f[1].1) {
                        (F::V(o), F::V(l)) => (unzig(*o), *l),
                        _ => panic!(),
                    }
                }
                _ => panic!(),
            })
            .collect();
        assert_eq!(spans, vec![(-200, 2), (3, 1)]);
        let [F::B(packed)] = get(&hv, H_POSITIVE_DELTA)[..] else {
            panic!()
        };
        let mut at = 0;
        let mut deltas = vec![];
        while at < packed.len() {
            deltas.push(unzig(read_varint(packed, &mut at)));
        }
        assert_eq!(deltas, vec![2, 1, -3]);
    }

    #[test]
    fn an_empty_native_histogram_still_says_it_is_native() {
        let f = Family::new("h", Kind::Histogram, "").with(Sample::new(
            vec![],
            Value::Histogram(HistogramValue {
                native: Some(NativeHistogram {
                    schema: 6,
                    ..Default::default()
                }),
                ..Default::default()
            }),
        ));
        let mut out = Vec::new();
        render(&[f], &mut out);
        let mf = fields(delimited(&out)[0]);
        let [F::B(m)] = get(&mf, MF_METRIC)[..] else {
            panic!()
        };
        let [F::B(hv)] = get(&fields(m), M_HISTOGRAM)[..] else {
            panic!()
        };
        assert_eq!(get(&fields(hv), H_POSITIVE_SPAN), vec![F::B(b"")]);
    }

    #[test]
    fn long_messages_get_multi_byte_lengths() {
        let mut f = Family::new("g", Kind::Gauge, "x".repeat(300));
        for i in 0..50 {
            f.samples.push(Sample::new(
                vec![("i", i.to_string())],
                Value::Number(i as f64),
            ));
        }
        let mut out = Vec::new();
        render(&[f.clone(), f], &mut out);
        let msgs = delimited(&out);
        assert_eq!(msgs.len(), 2);
        assert_eq!(get(&fields(msgs[1]), MF_METRIC).len(), 50);
    }
}
