//! Reads: a scratch histogram that sums windows, series and imports.
//!
//! Why one scratch per store: a read sums the slices of a window (or the
//! windows of several series, or other processes' exports) into one
//! full-range histogram, then summarises it; clearing and reusing it keeps
//! reads free of allocation.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

use super::hdr_v2::{checked_v2, full_histogram, MAX_IMPORT_LEN, SIGFIG};
use super::windows::{LatencyWindows, Window};
use crate::core::error::{CoreError, CoreResult};
use crate::core::exphist::{rep_us, Acc, ExpHist, Percentiles, MAX_US, MIN_US};

impl Percentiles {
    /// Summary of one histogram whose samples sum to `sum_us`.
    pub fn of_with_sum(h: &ExpHist, sum_us: u64) -> Self {
        h.percentiles(sum_us as f64)
    }
}

/// A scratch histogram for reads: it sums the slices of a window, several
/// series, or histograms imported from other processes, and is cleared and
/// reused between reads instead of allocated per read. It also owns the
/// serializer buffers, for the same reason.
///
/// Exports are HdrHistogram V2 (compressed, base64), the interchange form
/// the Java, Go and JS implementations read, with each schema-6 bucket
/// carried at its [`rep_us`]: a whole µs that HDR's 3 digits keep within
/// 0.1 %, well inside the bucket (±0.5 %), so an import puts every count
/// back in its own bucket. Export, import and merge are exact bucket by
/// bucket, and strings exported by the older HDR-backed versions import as
/// before (each value into its bucket).
pub struct Aggregate {
    acc: Acc,
    clamped: u64,
    bytes: Vec<u8>,
    serializer: V2DeflateSerializer,
    deserializer: Deserializer,
}

impl Default for Aggregate {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Aggregate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aggregate")
            .field("count", &self.acc.count())
            .field("clamped", &self.clamped)
            .finish()
    }
}

impl Aggregate {
    /// An empty aggregate.
    pub fn new() -> Self {
        Aggregate {
            acc: Acc::new(),
            clamped: 0,
            bytes: Vec::new(),
            serializer: V2DeflateSerializer::new(),
            deserializer: Deserializer::new(),
        }
    }

    /// The same as [`Aggregate::new`]: every window is kept at schema 6
    /// now. Kept so that callers may still hold one per window.
    pub fn for_window(_window: Window) -> Self {
        Self::new()
    }

    /// Bytes of the scratch histogram (the serializer buffers aside).
    pub fn heap_bytes(&self) -> usize {
        self.acc.heap_bytes()
    }

    /// Empties the scratch histogram (keeping its allocation) and the clamped count.
    pub fn clear(&mut self) {
        self.acc.clear();
        self.clamped = 0;
    }

    /// Adds the window of `src` as of `now`.
    pub fn add_window(&mut self, src: &mut LatencyWindows, window: Window, now: f64) {
        match window.ring_index() {
            None => self.acc.add(src.all_time(), src.all_time_sum_us() as f64),
            Some(i) => src.add_ring(&mut self.acc, i, now),
        }
    }

    /// The merged histogram.
    pub fn histogram(&self) -> &Acc {
        &self.acc
    }

    /// Count, exact min/max and mean, and the quantiles of what was added.
    pub fn percentiles(&self) -> Percentiles {
        self.acc.percentiles()
    }

    /// Values above one hour met while merging imported histograms.
    pub fn clamped(&self) -> u64 {
        self.clamped
    }

    /// Clears, adds one window of `src` and summarises it.
    pub fn window_percentiles(
        &mut self,
        src: &mut LatencyWindows,
        window: Window,
        now: f64,
    ) -> Percentiles {
        self.clear();
        self.add_window(src, window, now);
        self.percentiles()
    }

    /// Appends the histogram to `out` in the HdrHistogram interchange form:
    /// V2 compressed encoding (zlib), then standard base64.
    pub fn export(&mut self, out: &mut String) -> CoreResult<()> {
        let mut h = full_histogram(SIGFIG);
        self.acc.for_each(|i, c| {
            let _ = h.record_n(rep_us(i), c);
        });
        self.bytes.clear();
        self.serializer
            .serialize(&h, &mut self.bytes)
            .map_err(|e| {
                CoreError::range(
                    "histogram",
                    "counts the HDR V2 format can encode",
                    format!("{e:?}"),
                )
            })?;
        BASE64.encode_string(&self.bytes, out);
        Ok(())
    }

    /// Merges a base64 V2 histogram (compressed or not, as [`Aggregate::export`]
    /// or another HdrHistogram implementation writes it) into this one and
    /// returns how many samples it held. On error nothing is merged.
    ///
    /// The decoder trusts the sizes in the histogram's header, as the
    /// hdrhistogram crate does: import histograms from your own processes,
    /// not from untrusted clients.
    pub fn import(&mut self, encoded: &str) -> CoreResult<u64> {
        const WHAT: &str = "a base64 HdrHistogram in V2 encoding";
        let encoded = encoded.trim();
        if encoded.is_empty() || encoded.len() > MAX_IMPORT_LEN {
            return Err(CoreError::range(
                "histogram",
                &format!("{WHAT} of 1 to {MAX_IMPORT_LEN} characters"),
                format!("{} characters", encoded.len()),
            ));
        }
        self.bytes.clear();
        BASE64
            .decode_vec(encoded, &mut self.bytes)
            .map_err(|e| CoreError::range("histogram", WHAT, format!("invalid base64 ({e})")))?;
        let plain = checked_v2(&self.bytes)
            .map_err(|why| CoreError::range("histogram", WHAT, why.to_string()))?;
        let h: Histogram<u64> = self
            .deserializer
            .deserialize(&mut plain.as_ref())
            .map_err(|e| CoreError::range("histogram", WHAT, format!("undecodable bytes ({e})")))?;
        // V2 stores each count as an i64: past i64::MAX samples in all, a
        // bucket of the merge (values above an hour share one) could hold a
        // count the aggregate can no longer export (found by `npm run fuzz`).
        let total = h
            .iter_recorded()
            .try_fold(0u64, |t, v| t.checked_add(v.count_at_value()));
        let room = (i64::MAX as u64).saturating_sub(self.acc.count());
        if total.is_none_or(|t| t > room) {
            return Err(CoreError::range(
                "histogram",
                &format!(
                    "{WHAT} whose samples, with those already merged, number at most 2^63 - 1"
                ),
                "more",
            ));
        }
        for v in h.iter_recorded() {
            let count = v.count_at_value();
            let value = h.lowest_equivalent(v.value_iterated_to()).max(MIN_US);
            if value > MAX_US {
                self.clamped += count;
            }
            self.acc.add_us(value, count);
        }
        Ok(h.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::exphist::{index_us, IDX_MAX, IDX_MIN};
    use crate::core::metrics::hdr_v2::{V2_COMPRESSED_COOKIE, V2_COOKIE};
    use crate::core::rng::SplitMix64;
    use hdrhistogram::serialization::V2DeflateSerializer;

    #[test]
    fn export_import_round_trip_is_exact() {
        let mut w = LatencyWindows::new(0.0);
        let mut rng = SplitMix64::new(3);
        for i in 0..5_000 {
            w.record(10f64.powf(rng.next_f64() * 9.6), i as f64);
        }
        let mut a = Aggregate::new();
        a.add_window(&mut w, Window::OneMinute, 5_000.0);
        let mut s = String::from("prefix:");
        a.export(&mut s).unwrap();
        let encoded = s.strip_prefix("prefix:").unwrap();
        // The compressed V2 cookie 0x1c849314, base64-encoded.
        assert!(encoded.starts_with("HISTF"), "{}", &encoded[..8]);
        let mut b = Aggregate::new();
        assert_eq!(b.import(encoded).unwrap(), 5_000);
        // Bucket by bucket (min and max become their buckets' values).
        let buckets = |x: &Aggregate| {
            let mut v = vec![];
            x.histogram().for_each(|i, c| v.push((i, c)));
            v
        };
        assert_eq!(buckets(&b), buckets(&a));
        let (pa, pb) = (a.percentiles(), b.percentiles());
        assert_eq!(pa.p50_us, pb.p50_us);
        assert_eq!(pa.p99_us, pb.p99_us);
    }

    #[test]
    fn every_bucket_survives_the_hdr_interchange() {
        // Each bucket's value, at HDR's 3 digits, lands back in the bucket.
        let h = full_histogram(SIGFIG);
        for i in IDX_MIN..=IDX_MAX {
            let r = rep_us(i);
            if index_us(r) != i {
                continue; // a sub-µs bucket no whole µs falls in
            }
            assert_eq!(
                index_us(h.lowest_equivalent(r).max(MIN_US)),
                i,
                "bucket {i}"
            );
        }
    }

    #[test]
    fn merging_two_exports_equals_recording_everything_in_one() {
        let (mut x, mut y, mut both) = (
            LatencyWindows::new(0.0),
            LatencyWindows::new(0.0),
            LatencyWindows::new(0.0),
        );
        let mut rng = SplitMix64::new(11);
        for i in 0..4_000 {
            let v = 10f64.powf(rng.next_f64() * 6.5);
            if i % 3 == 0 { &mut x } else { &mut y }.record(v, i as f64);
            both.record(v, i as f64);
        }
        let mut agg = Aggregate::new();
        let mut exports = Vec::new();
        for w in [&mut x, &mut y] {
            agg.clear();
            agg.add_window(w, Window::AllTime, 4_000.0);
            let mut s = String::new();
            agg.export(&mut s).unwrap();
            exports.push(s);
        }
        let mut merged = Aggregate::new();
        for e in &exports {
            merged.import(e).unwrap();
        }
        let mut direct = Aggregate::new();
        direct.add_window(&mut both, Window::AllTime, 4_000.0);
        let buckets = |x: &Aggregate| {
            let mut v = vec![];
            x.histogram().for_each(|i, c| v.push((i, c)));
            v
        };
        assert_eq!(buckets(&merged), buckets(&direct));
        assert_eq!(merged.percentiles().p99_us, direct.percentiles().p99_us);
        assert_eq!(merged.percentiles().count, 4_000);
    }

    #[test]
    fn imports_refuse_headers_that_claim_more_than_the_input_holds() {
        // A 40-byte V2 histogram whose header claims a 4 GiB payload: the
        // decoder would allocate it before reading (issue 19: found while writing the
        // fuzz target); refused, nothing merged.
        let mut raw = V2_COOKIE.to_be_bytes().to_vec();
        raw.extend(u32::MAX.to_be_bytes()); // payload length
        raw.extend(0u32.to_be_bytes()); // normalizing offset
        raw.extend(2u32.to_be_bytes()); // significant digits
        raw.extend(1u64.to_be_bytes());
        raw.extend(3_600_000_000u64.to_be_bytes());
        raw.extend(1f64.to_be_bytes());
        let mut a = Aggregate::new();
        let e = a.import(&BASE64.encode(&raw)).unwrap_err();
        assert!(
            e.message.contains("payload length exceeds"),
            "{}",
            e.message
        );
        // The same inside a compressed envelope, and a zlib bomb.
        let deflate = |plain: &[u8]| {
            use std::io::Write as _;
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
            z.write_all(plain).unwrap();
            let z = z.finish().unwrap();
            let mut out = V2_COMPRESSED_COOKIE.to_be_bytes().to_vec();
            out.extend((z.len() as u32).to_be_bytes());
            out.extend(z);
            BASE64.encode(out)
        };
        assert!(a.import(&deflate(&raw)).is_err());
        let mut bomb = raw.clone();
        bomb[4..8].copy_from_slice(&(17u32 << 20).to_be_bytes());
        bomb.resize(40 + (17 << 20), 0);
        let e = a.import(&deflate(&bomb)).unwrap_err();
        assert!(e.message.contains("inflates past"), "{}", e.message);
        // A run of 2^63 zeros (zig-zag of u64::MAX): the decoder's negation overflows.
        let mut zeros = raw.clone();
        zeros[4..8].copy_from_slice(&9u32.to_be_bytes());
        zeros.extend([0xff; 9]);
        let e = a.import(&BASE64.encode(&zeros)).unwrap_err();
        assert!(e.message.contains("2^63 zeros"), "{}", e.message);
        assert_eq!(a.percentiles().count, 0, "nothing was merged");
        // A real export still imports.
        let mut b = Aggregate::new();
        let mut h = Histogram::<u64>::new_with_bounds(MIN_US, MAX_US, 3).unwrap();
        for v in [10u64, 200, 3_000] {
            h.record(v).unwrap();
        }
        let mut v2 = Vec::new();
        hdrhistogram::serialization::V2Serializer::new()
            .serialize(&h, &mut v2)
            .unwrap();
        assert_eq!(b.import(&BASE64.encode(v2)).unwrap(), 3);
    }

    #[test]
    fn imports_never_hold_more_samples_than_an_export_can_count() {
        use hdrhistogram::serialization::V2Serializer;
        let encode = |h: &Histogram<u64>| {
            let mut b = Vec::new();
            V2Serializer::new().serialize(h, &mut b).unwrap();
            BASE64.encode(b)
        };
        // Two values above an hour with more than half of i64::MAX each:
        // clamped into one bucket, their sum is past what V2 can count.
        let half = (i64::MAX as u64) / 2 + 1;
        let mut h = Histogram::<u64>::new_with_bounds(1, 1_000_000_000_000, 2).unwrap();
        h.record_n(5_000_000_000, half).unwrap();
        h.record_n(9_000_000_000, half).unwrap();
        let mut a = Aggregate::new();
        let e = a.import(&encode(&h)).unwrap_err();
        assert!(e.message.contains("at most 2^63 - 1"), "{}", e.message);
        // The same across two imports: the second is refused.
        let mut one = Histogram::<u64>::new_with_bounds(1, MAX_US, 2).unwrap();
        one.record_n(1_000, half).unwrap();
        assert_eq!(a.import(&encode(&one)).unwrap(), half);
        assert!(a.import(&encode(&one)).is_err());
        let mut out = String::new();
        a.export(&mut out).expect("what was merged still exports");
    }

    #[test]
    fn imports_of_foreign_histograms_clamp_what_exceeds_an_hour() {
        let mut foreign: Histogram<u64> = Histogram::new_with_bounds(1, 100 * MAX_US, 3).unwrap();
        foreign.record(10 * MAX_US).unwrap();
        foreign.record(500).unwrap();
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&foreign, &mut bytes)
            .unwrap();
        let mut agg = Aggregate::new();
        assert_eq!(agg.import(&BASE64.encode(&bytes)).unwrap(), 2);
        assert_eq!(agg.clamped(), 1);
        assert_eq!(agg.percentiles().max_us, MAX_US);
    }

    #[test]
    fn garbage_imports_are_errors_and_merge_nothing() {
        let mut good = Aggregate::new();
        let mut w = LatencyWindows::new(0.0);
        w.record(1234.0, 0.0);
        good.add_window(&mut w, Window::AllTime, 0.0);
        let mut s = String::new();
        good.export(&mut s).unwrap();
        let truncated = &s[..s.len() / 2];
        let mut agg = Aggregate::new();
        for bad in [
            "",
            "   ",
            "not base64 at all!",
            "AAAAAAAA",
            "HISTFAAAAA==",
            truncated,
            &"A".repeat(MAX_IMPORT_LEN + 4),
        ] {
            let e = agg.import(bad).unwrap_err();
            assert!(e.message.starts_with("histogram must be"), "{}", e.message);
        }
        assert_eq!(agg.histogram().count(), 0);
    }
}
