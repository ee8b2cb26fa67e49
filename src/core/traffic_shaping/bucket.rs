//! The two bucketing hashes of traffic shaping.
//!
//! * MurmurHash3 x86_32 (Austin Appleby's reference, seed 0): what Unleash
//!   and most flag systems use for sticky percentages. Buckets are
//!   `hash % 10_000`, so percentages have 0.01 % granularity and raising a
//!   percentage only adds users.
//! * The original B version's Java `String.hashCode` over UTF-16 code units
//!   with int32 wrap-around, `abs` taken after widening to i64 (JS's
//!   `Math.abs` works on doubles, so -2^31 gives 2^31), bucket `% 100`.

/// MurmurHash3 x86_32 of `data` with `seed`.
pub fn murmur3_x86_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = chunks.remainder();
    let mut k: u32 = 0;
    if tail.len() >= 3 {
        k ^= (tail[2] as u32) << 16;
    }
    if tail.len() >= 2 {
        k ^= (tail[1] as u32) << 8;
    }
    if !tail.is_empty() {
        k ^= tail[0] as u32;
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// Bucket 0..10_000 of bytes that already hold `<rollout>:<key>` (the
/// binding has Node write the key straight after the prefix).
///
/// ```
/// use reliability_core::core::traffic_shaping::bucket::{murmur_bucket, murmur_bucket_joined};
/// assert_eq!(murmur_bucket_joined(b"r:user-1"), murmur_bucket("r", "user-1"));
/// ```
pub fn murmur_bucket_joined(joined: &[u8]) -> u32 {
    murmur3_x86_32(joined, 0) % 10_000
}

/// Bucket 0..10_000 of `<rollout>:<key>`, hashed without building the string.
pub fn murmur_bucket(rollout: &str, key: &str) -> u32 {
    // Small keys: join on the stack to hash once.
    let mut buf = [0u8; 256];
    let n = rollout.len() + 1 + key.len();
    let h = if n <= buf.len() {
        buf[..rollout.len()].copy_from_slice(rollout.as_bytes());
        buf[rollout.len()] = b':';
        buf[rollout.len() + 1..n].copy_from_slice(key.as_bytes());
        murmur3_x86_32(&buf[..n], 0)
    } else {
        murmur3_x86_32(format!("{rollout}:{key}").as_bytes(), 0)
    };
    h % 10_000
}

/// Java's `String.hashCode` of `<feature>:<user>` over UTF-16 code units.
pub fn java_hash(feature: &str, user: &str) -> i32 {
    let mut h: i32 = 0;
    for c in feature
        .encode_utf16()
        .chain(std::iter::once(b':' as u16))
        .chain(user.encode_utf16())
    {
        h = h.wrapping_mul(31).wrapping_add(c as i32);
    }
    h
}

/// The original's bucket: `Math.abs(hash) % 100`.
pub fn legacy_bucket(feature: &str, user: &str) -> u32 {
    ((java_hash(feature, user) as i64).abs() % 100) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_reference_vectors() {
        // From the reference implementation's verification set (SMHasher) and
        // the widely published x86_32 test vectors.
        assert_eq!(murmur3_x86_32(b"", 0), 0);
        assert_eq!(murmur3_x86_32(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3_x86_32(b"", 0xffff_ffff), 0x81f1_6f39);
        assert_eq!(murmur3_x86_32(&[0xff, 0xff, 0xff, 0xff], 0), 0x7629_3b50);
        assert_eq!(murmur3_x86_32(&[0x21, 0x43, 0x65, 0x87], 0), 0xf55b_516b);
        assert_eq!(
            murmur3_x86_32(&[0x21, 0x43, 0x65, 0x87], 0x5082_edee),
            0x2362_f9de
        );
        assert_eq!(murmur3_x86_32(&[0x21, 0x43, 0x65], 0), 0x7e4a_8634);
        assert_eq!(murmur3_x86_32(&[0x21, 0x43], 0), 0xa0f7_b07a);
        assert_eq!(murmur3_x86_32(&[0x21], 0), 0x7266_1cf4);
        assert_eq!(murmur3_x86_32(b"Hello, world!", 1234), 0xfaf6_cdb3);
        assert_eq!(
            murmur3_x86_32(b"The quick brown fox jumps over the lazy dog", 0x9747_b28c),
            0x2fa8_26cd
        );
    }

    #[test]
    fn joined_bucket_is_the_bucket_of_name_colon_key() {
        for key in ["", "u", "user-1", "ünïcødé-🦀", &"k".repeat(300)] {
            let joined = format!("checkout:{key}");
            assert_eq!(
                murmur_bucket_joined(joined.as_bytes()),
                murmur_bucket("checkout", key)
            );
        }
    }

    #[test]
    fn murmur_bucket_joins_without_allocating_and_with() {
        let long = "k".repeat(400);
        assert_eq!(
            murmur_bucket("r", "user-1"),
            murmur3_x86_32(b"r:user-1", 0) % 10_000
        );
        assert_eq!(
            murmur_bucket("r", &long),
            murmur3_x86_32(format!("r:{long}").as_bytes(), 0) % 10_000
        );
    }

    #[test]
    fn legacy_vectors_from_the_spec() {
        let cases: &[(&str, &str, i32, u32)] = &[
            ("api-agent", "anonymous", 1366367365, 65),
            ("new-feature", "anonymous", -2076633604, 4),
            ("api-agent", "user-1", 508901783, 83),
            ("api-agent", "127.0.0.1", 673209749, 49),
            ("search-v2", "alice", -932845945, 45),
            ("agent-v2", "bob", 325972863, 63),
            ("-", "::1", 43343908, 8),
            ("", "anonymous", -608692877, 77),
            ("api-dreams", "::ffff:127.0.0.1", 1672326650, 50),
            ("x", "é", 117351, 51),
            ("feature", "😀", -148963225, 25),
        ];
        for &(f, u, h, b) in cases {
            assert_eq!(java_hash(f, u), h, "{f}:{u}");
            assert_eq!(legacy_bucket(f, u), b, "{f}:{u}");
        }
    }

    #[test]
    fn legacy_abs_widens_before_taking_the_absolute_value() {
        // A string whose hash is i32::MIN: abs in i32 would overflow; JS gives 2^31 % 100 = 48.
        // Find one by brute force over short strings.
        let mut found = None;
        'outer: for a in 0u16..128 {
            for b in 0u16..128 {
                for c in 0u16..128 {
                    let s = String::from_utf16(&[a, b, c]).unwrap();
                    // java_hash adds ':' and the user: use feature = s, user = "".
                    if java_hash(&s, "") == i32::MIN {
                        found = Some(s);
                        break 'outer;
                    }
                }
            }
        }
        if let Some(s) = found {
            assert_eq!(legacy_bucket(&s, ""), 48);
        }
        assert_eq!(((i32::MIN as i64).abs() % 100) as u32, 48);
    }
}
