//! Choosing a partition for a record, the way the Java client does.
//!
//! With a key: `toPositive(murmur2(key)) % partitions` (Kafka's `BuiltInPartitioner`), so a
//! record produced here lands on the same partition as the same key produced by a Java client.
//! Without a key: sticky per batch (the Java client's default since 2.4): every record goes to the
//! current partition until its batch is closed, then the next partition (round-robin) takes over.

/// Kafka's `Utils.murmur2`: MurmurHash2, 32-bit, seed 0x9747b28c, over the key bytes.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: i32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut h: i32 = (SEED as i32) ^ (length as i32);
    let length4 = length / 4;
    for i in 0..length4 {
        let i4 = i * 4;
        let mut k: i32 = (data[i4] as i32)
            | ((data[i4 + 1] as i32) << 8)
            | ((data[i4 + 2] as i32) << 16)
            | ((data[i4 + 3] as i32) << 24);
        k = k.wrapping_mul(M);
        k ^= ((k as u32) >> R) as i32;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = length & !3;
    // Java's switch falls through from case 3 to case 1.
    let rem = length % 4;
    if rem >= 3 {
        h ^= (data[tail + 2] as i32) << 16;
    }
    if rem >= 2 {
        h ^= (data[tail + 1] as i32) << 8;
    }
    if rem >= 1 {
        h ^= data[tail] as i32;
        h = h.wrapping_mul(M);
    }
    h ^= ((h as u32) >> 13) as i32;
    h = h.wrapping_mul(M);
    h ^= ((h as u32) >> 15) as i32;
    h
}

/// Kafka's `Utils.toPositive`: masks the sign bit (not `abs`, which overflows at `i32::MIN`).
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition the Java client picks for `key` among `partitions` partitions.
pub fn partition_for_key(key: &[u8], partitions: usize) -> usize {
    debug_assert!(partitions > 0);
    (to_positive(murmur2(key)) as usize) % partitions
}

/// Sticky partitioning for records without a key: one partition until its batch closes.
#[derive(Debug, Clone)]
pub struct Sticky {
    current: usize,
    partitions: usize,
}

impl Sticky {
    /// Starts at `first % partitions` (producers start at different partitions).
    pub fn new(first: usize, partitions: usize) -> Sticky {
        assert!(partitions > 0);
        Sticky {
            current: first % partitions,
            partitions,
        }
    }

    pub fn current(&self) -> usize {
        self.current
    }

    /// The batch of the current partition closed: move on to the next partition.
    pub fn advance(&mut self) {
        self.current = (self.current + 1) % self.partitions;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from Kafka's own tests (`UtilsTest.testMurmur2`) and kafka-clients 4.x.
    #[test]
    fn murmur2_matches_java() {
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58897971
        );
        assert_eq!(murmur2(b"abc"), 479470107);
        assert_eq!(murmur2(b""), 275646681);
        assert_eq!(murmur2(b"a"), -1563381124);
        assert_eq!(murmur2(b"hello world"), 1221641059);
        assert_eq!(murmur2(b"key-0"), 29210041);
        assert_eq!(murmur2("éèê".as_bytes()), -1401640301);
    }

    /// toPositive masks the sign bit and the partition is that modulo the partition count.
    #[test]
    fn partition_is_positive_murmur2_mod_n() {
        assert_eq!(to_positive(-973932308), 1173551340);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(-1), i32::MAX);
        // -973932308 & 0x7fffffff = 1173551340; 1173551340 % 8 = 4, % 3 = 0.
        assert_eq!(partition_for_key(b"21", 8), 4);
        assert_eq!(partition_for_key(b"21", 3), 0);
        // -790332482 & 0x7fffffff = 1357151166; % 8 = 6, % 10 = 6, % 7 = 5.
        assert_eq!(partition_for_key(b"foobar", 8), 6);
        assert_eq!(partition_for_key(b"foobar", 7), 1357151166 % 7);
        for n in 1..50 {
            assert!(partition_for_key(b"foobar", n) < n);
        }
    }

    #[test]
    fn sticky_rotates_round_robin() {
        let mut s = Sticky::new(5, 4);
        assert_eq!(s.current(), 1);
        s.advance();
        assert_eq!(s.current(), 2);
        s.advance();
        s.advance();
        assert_eq!(s.current(), 0);
    }
}
