//! The HdrHistogram V2 interchange encoding (compressed, base64) of
//! exports and imports, and the checks an import passes before the decoder
//! sees it.
//!
//! Why V2: it is what the Java, Go and JS HdrHistogram implementations read
//! and write, so another process (or another tool) can merge our exports.
//! Why the checks: the hdrhistogram decoder trusts the sizes in a header
//! (found by `npm run fuzz`); `checked_v2` refuses what would make it
//! allocate or loop past the input.

use hdrhistogram::Histogram;

pub use crate::core::exphist::{MAX_US, MIN_US};

/// Significant decimal digits of the HDR histograms [`Aggregate::export`](super::aggregate::Aggregate::export)
/// writes (values within 0.1 %, inside every schema-6 bucket).
pub const SIGFIG: u8 = 3;
/// Significant decimal digits of the rollout cohorts' HDR slices (1 %).
pub const WINDOW_SIGFIG: u8 = 2;
/// Longest base64 string [`Aggregate::import`](super::aggregate::Aggregate::import) accepts. A full 1 µs .. 1 h
/// histogram compresses to tens of kilobytes; anything much bigger is not one.
pub const MAX_IMPORT_LEN: usize = 4 << 20;

/// A histogram covering the whole 1 µs .. 1 h range from the start, for
/// merging into: anything recorded anywhere here fits it.
pub(crate) fn full_histogram(sigfig: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(MIN_US, MAX_US, sigfig)
        .expect("1 µs .. 1 h at 2 or 3 digits is a valid HDR configuration")
}

// As the hdrhistogram crate and the Java original spell them (base | 0x10).
pub(crate) const V2_COOKIE: u32 = 0x1c84_9313;
pub(crate) const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9314;
/// Bytes of a V2 header after the cookie: payload length, normalizing
/// offset, significant digits, lowest, highest, int-to-double ratio.
const V2_HEADER: usize = 4 + 4 + 4 + 8 + 8 + 8;
/// Most bytes a compressed import may inflate to (a full 1 µs .. 1 h
/// histogram is well under 1 MiB uncompressed).
pub const MAX_INFLATED: usize = 16 << 20;

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The uncompressed V2 form of `bytes` (cookie included), once its header is
/// known to describe no more than the bytes that are really there. The
/// hdrhistogram decoder trusts the header's payload length and allocates it
/// before reading (4 GiB for a 40-byte input), and a compressed payload may
/// inflate without bound; both are refused here, before anything is allocated.
pub(crate) fn checked_v2(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, &'static str> {
    use std::io::Read as _;
    let plain: std::borrow::Cow<'_, [u8]> = match be_u32(bytes, 0) {
        Some(V2_COOKIE) => bytes.into(),
        Some(V2_COMPRESSED_COOKIE) => {
            let len = be_u32(bytes, 4).ok_or("a truncated header")? as usize;
            let deflated = bytes
                .get(8..8usize.saturating_add(len))
                .ok_or("a compressed payload longer than the input")?;
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(deflated)
                .take(MAX_INFLATED as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|_| "an undecodable compressed payload")?;
            if out.len() > MAX_INFLATED {
                return Err("a compressed payload that inflates past 16 MiB");
            }
            out.into()
        }
        _ => return Err("no V2 cookie"),
    };
    if be_u32(&plain, 0) != Some(V2_COOKIE) {
        return Err("no V2 cookie inside the compressed payload");
    }
    let payload = be_u32(&plain, 4).ok_or("a truncated header")? as usize;
    if plain.len() < 4 + V2_HEADER || payload > plain.len() - 4 - V2_HEADER {
        return Err("a header whose payload length exceeds the input");
    }
    // The payload is zig-zag varints: a count, or minus a run of zeros. The
    // decoder negates the run, which overflows for -2^63 (a panic where
    // overflow checks are on: found by `npm run fuzz`).
    let mut rest = &plain[4 + V2_HEADER..4 + V2_HEADER + payload];
    while let Some(v) = varint(&mut rest) {
        if v == u64::MAX {
            return Err("a run of 2^63 zeros");
        }
    }
    Ok(plain)
}

/// The next varint of an HDR V2 payload (LEB128, the ninth byte all 8
/// bits, as the decoder reads it), or None at the end.
fn varint(rest: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for k in 0..9 {
        let (&b, tail) = rest.split_first()?;
        *rest = tail;
        if k == 8 {
            return Some(v | u64::from(b) << 56);
        }
        v |= u64::from(b & 0x7f) << (7 * k);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}
