//! Choosing a partition for a record the way Kafka's Java producer does by default.
//!
//! A keyed record goes to `toPositive(murmur2(key)) % partitions`, so a key lands on the same
//! partition whichever Kafka client wrote it; that is what makes per-key ordering hold across
//! producers written in different languages. Records without a key go round-robin.

use std::sync::atomic::{AtomicU32, Ordering};

/// Kafka's `Utils.murmur2`: MurmurHash2, 32 bit, seed `0x9747b28c`, little-endian blocks.
///
/// Returns the hash as Java's signed `int` so that it compares directly with Kafka's values.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    let mut h: u32 = SEED ^ data.len() as u32;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    // The Java switch falls through: 3 tail bytes apply all three steps.
    let tail = blocks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit (not `abs`, which overflows on `i32::MIN`).
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition Kafka's default partitioner picks for `key` among `partitions`.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    assert!(partitions > 0, "a topic has at least one partition");
    to_positive(murmur2(key)) % partitions
}

/// Kafka's default partitioning: murmur2 of the key, round-robin for records without one.
#[derive(Debug, Default)]
pub struct DefaultPartitioner {
    next: AtomicU32,
}

impl DefaultPartitioner {
    /// A partitioner whose round-robin starts at partition 0.
    pub fn new() -> DefaultPartitioner {
        DefaultPartitioner::default()
    }

    /// The partition for a record with `key` in a topic with `partitions` partitions.
    pub fn partition(&self, key: Option<&[u8]>, partitions: i32) -> i32 {
        assert!(partitions > 0, "a topic has at least one partition");
        match key {
            Some(key) => partition_for_key(key, partitions),
            None => {
                let n = self.next.fetch_add(1, Ordering::Relaxed);
                (n % partitions as u32) as i32
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's own vectors, from `UtilsTest.testMurmur2`.
    #[test]
    fn murmur2_matches_kafka() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            (b"abc", 479_470_107),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key), expected, "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn keys_are_stable_and_in_range() {
        for key in [&b"foo"[..], b"", b"k", b"key-1", b"\xff\xfe\xfd"] {
            let p = partition_for_key(key, 7);
            assert!((0..7).contains(&p));
            assert_eq!(p, partition_for_key(key, 7));
        }
        // One partition: everything goes to 0.
        assert_eq!(partition_for_key(b"foo", 1), 0);
        // toPositive(murmur2("21")) % 10 = (-973932308 & 0x7fffffff) % 10
        assert_eq!(partition_for_key(b"21", 10), 1_173_551_340 % 10);
    }

    #[test]
    fn to_positive_clears_only_the_sign_bit() {
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(42), 42);
    }

    #[test]
    fn null_keys_go_round_robin() {
        let p = DefaultPartitioner::new();
        let picks: Vec<i32> = (0..6).map(|_| p.partition(None, 3)).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        assert_eq!(p.partition(Some(b"21"), 10), partition_for_key(b"21", 10));
    }
}
