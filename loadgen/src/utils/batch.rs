//! Record values, keys and record batches.
//!
//! Values are `--record-bytes` long. The first 8 bytes carry the time the record was scheduled
//! (nanoseconds since the run's shared origin, big-endian), the next 8 a run id, so a consumer in
//! the same process can measure end-to-end latency and ignore records of other runs; the rest is
//! random uppercase letters, like Kafka's `ProducerPerformance` payloads (compressible about as
//! much as text). Batches are v2 record batches encoded by `kafka_protocol` (CRC-32C, optional
//! compression). A plain producer's batches carry producer id -1, epoch -1 and base sequence -1,
//! as a non-idempotent Java producer writes them; an idempotent or transactional producer's carry
//! its producer id and epoch and the partition's next sequence ([`Sequences`]), and a
//! transactional producer's also the transactional attribute (bit 4). The CRC covers these
//! fields, so they are set when the batch is encoded.

use anyhow::{bail, Context, Result};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// Bytes of the time stamp at the start of a value.
pub const TS_BYTES: usize = 8;
/// Bytes of time stamp and run id at the start of a value.
pub const TAG_BYTES: usize = 16;
/// Record batch header bytes (v2), before the records.
pub const BATCH_HEADER_BYTES: usize = 61;
/// Bytes a record adds to a batch besides its key and value (length, attributes, deltas, key and
/// value lengths, header count), a little generous.
pub const RECORD_OVERHEAD_BYTES: usize = 16;
/// Letters the values are cut from.
const POOL_BYTES: usize = 1 << 20;

/// The letters every generator of the process cuts its values from, made once: made per
/// generator (a random byte at a time), 10,000 producers spent about 10 ms and 1 MiB each
/// before sending, so connections-10000 did not connect its producers within loadgen's limit.
/// Generators start at different places in it (`RecordGen::new`), so their values differ.
fn shared_pool() -> Bytes {
    static POOL: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let mut rng = Rng::new(0x5eed_1e77e75);
        let mut pool = BytesMut::with_capacity(POOL_BYTES);
        for _ in 0..POOL_BYTES {
            pool.put_u8(b'A' + rng.below(26) as u8);
        }
        pool.freeze()
    })
    .clone()
}

/// A small, fast, deterministic PRNG (xorshift64*), enough for payloads and key choice.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // splitmix64 of the seed, never 0.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

/// A record waiting in a producer's batch.
#[derive(Debug, Clone)]
pub struct PendingRecord {
    pub key: Option<Bytes>,
    pub value: Bytes,
    /// Scheduled (or, without `--rate`, handed-over) time: nanoseconds since the origin.
    pub sched_ns: u64,
}

impl PendingRecord {
    /// Key plus value bytes: what the throughput figures count.
    pub fn payload_bytes(&self) -> usize {
        self.key.as_ref().map_or(0, |k| k.len()) + self.value.len()
    }

    /// Estimated bytes in an uncompressed batch.
    pub fn batch_bytes(&self) -> usize {
        self.payload_bytes() + RECORD_OVERHEAD_BYTES
    }
}

/// Makes record values and keys.
pub struct RecordGen {
    pool: Bytes,
    cursor: usize,
    record_bytes: usize,
    run_id: u64,
    keys: Vec<Bytes>,
    rng: Rng,
}

impl RecordGen {
    /// `keys`: `Some(n)` draws keys uniformly from the n strings "0".."n-1".
    pub fn new(record_bytes: usize, keys: Option<u32>, run_id: u64, seed: u64) -> RecordGen {
        let mut rng = Rng::new(seed);
        let cursor = rng.below(POOL_BYTES as u64) as usize;
        let keys = keys
            .map(|n| (0..n).map(|i| Bytes::from(i.to_string())).collect())
            .unwrap_or_default();
        RecordGen {
            pool: shared_pool(),
            cursor,
            record_bytes,
            run_id,
            keys,
            rng,
        }
    }

    /// A value scheduled at `sched_ns`.
    pub fn value(&mut self, sched_ns: u64) -> Bytes {
        let n = self.record_bytes;
        let mut v = BytesMut::with_capacity(n);
        if n >= TS_BYTES {
            v.put_u64(sched_ns);
        }
        if n >= TAG_BYTES {
            v.put_u64(self.run_id);
        }
        let mut rest = n - v.len();
        while rest > 0 {
            let take = rest.min(self.pool.len() - self.cursor);
            v.put_slice(&self.pool[self.cursor..self.cursor + take]);
            rest -= take;
            self.cursor = (self.cursor + take) % self.pool.len();
        }
        // Start the next value elsewhere so consecutive values differ.
        self.cursor = (self.cursor + 7919) % self.pool.len();
        v.freeze()
    }

    /// The next key, if the run uses keys.
    pub fn key(&mut self) -> Option<Bytes> {
        if self.keys.is_empty() {
            return None;
        }
        let i = self.rng.below(self.keys.len() as u64) as usize;
        Some(self.keys[i].clone())
    }
}

/// What the first bytes of a value say: scheduled time, and run id when present.
pub fn value_tag(value: &[u8]) -> Option<(u64, Option<u64>)> {
    if value.len() < TS_BYTES {
        return None;
    }
    let ts = u64::from_be_bytes(value[..8].try_into().unwrap());
    let run =
        (value.len() >= TAG_BYTES).then(|| u64::from_be_bytes(value[8..16].try_into().unwrap()));
    Some((ts, run))
}

/// The producer fields of a batch header: who writes it and where it stands in that
/// producer's sequence of the partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchIdentity {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The sequence of the batch's first record (-1: none).
    pub base_sequence: i32,
    /// Part of a transaction (attribute bit 4).
    pub transactional: bool,
}

impl BatchIdentity {
    /// A plain (non-idempotent) producer's batch: producer id, epoch and base sequence -1.
    pub const NONE: BatchIdentity = BatchIdentity {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        transactional: false,
    };
}

/// The sequence `n` records after `seq`, wrapping from `i32::MAX` to 0 as Kafka does
/// (`DefaultRecordBatch.incrementSequence`).
pub fn increment_sequence(seq: i32, n: i32) -> i32 {
    debug_assert!(seq >= 0 && n >= 0);
    if seq > i32::MAX - n {
        n - (i32::MAX - seq) - 1
    } else {
        seq + n
    }
}

/// An idempotent (or transactional) producer's identity, as InitProducerId gave it, and its
/// next sequence per partition: each batch of a partition starts where the previous one ended.
/// Kafka keeps the sequence across transactions (the epoch stays: EndTxn v0-4).
#[derive(Debug, Clone)]
pub struct Sequences {
    producer_id: i64,
    producer_epoch: i16,
    transactional: bool,
    /// Indexed like the topic's partitions (not by partition id).
    next: Vec<i32>,
}

impl Sequences {
    pub fn new(
        producer_id: i64,
        producer_epoch: i16,
        partitions: usize,
        transactional: bool,
    ) -> Self {
        Sequences {
            producer_id,
            producer_epoch,
            transactional,
            next: vec![0; partitions],
        }
    }

    /// The identity of partition `p`'s next batch (the sequence does not move until
    /// [`Sequences::advance`], so a batch that fails to encode leaves no gap).
    pub fn identity(&self, p: usize) -> BatchIdentity {
        BatchIdentity {
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence: self.next[p],
            transactional: self.transactional,
        }
    }

    /// Partition `p`'s batch of `records` records is on its way: the next starts after it.
    pub fn advance(&mut self, p: usize, records: usize) {
        let n = i32::try_from(records).expect("a batch has fewer than 2^31 records");
        self.next[p] = increment_sequence(self.next[p], n);
    }
}

/// Encodes `records` as one v2 record batch written by `id`. `origin_wall_ms` is the wall clock
/// (ms since the Unix epoch) at the origin, so each record's CreateTime is its scheduled time.
pub fn encode_batch(
    records: &[PendingRecord],
    origin_wall_ms: i64,
    compression: Compression,
    id: BatchIdentity,
) -> Result<Bytes> {
    if records.is_empty() {
        bail!("empty batch");
    }
    let recs: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: id.transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: id.producer_id,
            producer_epoch: id.producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder keeps records in one batch while offset - sequence stays the same, and
            // writes the first record's sequence as the base sequence (-1: no idempotence). Past
            // i32::MAX it wraps to negative here, which only the per-record view shows: the batch
            // holds the base sequence alone, and the broker wraps it to 0 as Kafka does.
            sequence: id.base_sequence.wrapping_add(i as i32),
            timestamp: origin_wall_ms + (r.sched_ns / 1_000_000) as i64,
            key: r.key.clone(),
            value: Some(r.value.clone()),
            headers: Default::default(),
        })
        .collect();
    let estimate: usize =
        BATCH_HEADER_BYTES + records.iter().map(|r| r.batch_bytes()).sum::<usize>();
    let mut buf = BytesMut::with_capacity(estimate);
    RecordBatchEncoder::encode(
        &mut buf,
        recs.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .context("encoding a record batch")?;
    Ok(buf.freeze())
}

/// Header facts of a v2 batch at the front of `b` (at least 61 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Bytes of the whole batch, offset and length fields included.
    pub total_bytes: usize,
    pub magic: i8,
    pub last_offset_delta: i32,
    pub record_count: i32,
    pub control: bool,
}

impl BatchHeader {
    pub fn parse(b: &[u8]) -> Option<BatchHeader> {
        if b.len() < BATCH_HEADER_BYTES {
            return None;
        }
        let base_offset = i64::from_be_bytes(b[0..8].try_into().unwrap());
        let len = i32::from_be_bytes(b[8..12].try_into().unwrap());
        if len < 0 {
            return None;
        }
        let attributes = i16::from_be_bytes(b[21..23].try_into().unwrap());
        Some(BatchHeader {
            base_offset,
            total_bytes: 12 + len as usize,
            magic: b[16] as i8,
            last_offset_delta: i32::from_be_bytes(b[23..27].try_into().unwrap()),
            record_count: i32::from_be_bytes(b[57..61].try_into().unwrap()),
            control: attributes & (1 << 5) != 0,
        })
    }

    /// The offset after this batch.
    pub fn next_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64 + 1
    }
}

/// Splits fetched record bytes into complete batches; a trailing partial batch (the broker may
/// cut the response at the partition's byte limit) is left out.
pub fn complete_batches(records: &Bytes) -> Vec<(BatchHeader, Bytes)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(h) = BatchHeader::parse(&records[pos..]) {
        if h.total_bytes < BATCH_HEADER_BYTES || pos + h.total_bytes > records.len() {
            break;
        }
        out.push((h, records.slice(pos..pos + h.total_bytes)));
        pos += h.total_bytes;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::RecordBatchDecoder;

    fn records(gen: &mut RecordGen, n: usize) -> Vec<PendingRecord> {
        (0..n)
            .map(|i| PendingRecord {
                key: gen.key(),
                value: gen.value(1_000_000 * i as u64 + 5),
                sched_ns: 1_000_000 * i as u64 + 5,
            })
            .collect()
    }

    #[test]
    fn values_carry_time_and_run() {
        let mut g = RecordGen::new(100, None, 42, 1);
        let v = g.value(123_456_789);
        assert_eq!(v.len(), 100);
        assert_eq!(value_tag(&v), Some((123_456_789, Some(42))));
        assert!(v[16..].iter().all(|b| b.is_ascii_uppercase()));
        assert_ne!(g.value(1)[16..], g.value(1)[16..]);
        let mut g = RecordGen::new(12, None, 42, 1);
        assert_eq!(value_tag(&g.value(7)), Some((7, None)));
        let mut g = RecordGen::new(3, None, 42, 1);
        assert_eq!(g.value(7).len(), 3);
        let mut g = RecordGen::new(3 << 20, None, 42, 1);
        assert_eq!(g.value(7).len(), 3 << 20);
    }

    #[test]
    fn keys_come_from_n_values() {
        let mut g = RecordGen::new(10, Some(5), 0, 9);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..1000 {
            seen.insert(g.key().unwrap());
        }
        let want: std::collections::BTreeSet<Bytes> =
            (0..5).map(|i| Bytes::from(i.to_string())).collect();
        assert_eq!(seen, want);
        assert_eq!(RecordGen::new(10, None, 0, 9).key(), None);
    }

    /// Every codec gives one valid batch (CRC-32C checked by the decoder) with every record back.
    #[test]
    fn batches_are_valid_and_crc_checked() {
        let codecs = [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ];
        for codec in codecs {
            let mut g = RecordGen::new(1024, Some(100), 7, 3);
            let recs = records(&mut g, 50);
            let bytes = encode_batch(&recs, 1_700_000_000_000, codec, BatchIdentity::NONE).unwrap();
            let h = BatchHeader::parse(&bytes).unwrap();
            assert_eq!(h.total_bytes, bytes.len(), "{codec:?}: one batch");
            assert_eq!(h.magic, 2);
            assert_eq!(h.base_offset, 0);
            assert_eq!(h.record_count, 50);
            assert_eq!(h.last_offset_delta, 49);
            assert_eq!(h.next_offset(), 50);
            // Attributes carry the codec; producer id -1, base sequence -1.
            assert_eq!(i16::from_be_bytes([bytes[21], bytes[22]]) & 7, codec as i16);
            assert_eq!(i64::from_be_bytes(bytes[43..51].try_into().unwrap()), -1);
            assert_eq!(i32::from_be_bytes(bytes[53..57].try_into().unwrap()), -1);
            // CRC-32C over attributes..end, as the broker checks it.
            let crc = u32::from_be_bytes(bytes[17..21].try_into().unwrap());
            assert_eq!(crc, crc32c_sw(&bytes[21..]), "{codec:?}: crc");

            let mut buf = bytes.clone();
            let set = RecordBatchDecoder::decode(&mut buf).unwrap();
            assert_eq!(set.records.len(), 50);
            for (i, (got, want)) in set.records.iter().zip(&recs).enumerate() {
                assert_eq!(got.offset, i as i64);
                assert_eq!(got.key, want.key);
                assert_eq!(got.value.as_ref(), Some(&want.value));
                assert_eq!(got.timestamp, 1_700_000_000_000 + i as i64);
            }
            // A flipped bit is caught.
            let mut bad = bytes.to_vec();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            assert!(RecordBatchDecoder::decode(&mut Bytes::from(bad)).is_err());
        }
    }

    #[test]
    fn sequences_wrap_at_i32_max_to_zero() {
        assert_eq!(increment_sequence(0, 5), 5);
        assert_eq!(increment_sequence(100, 0), 100);
        assert_eq!(increment_sequence(i32::MAX - 3, 3), i32::MAX);
        assert_eq!(increment_sequence(i32::MAX - 2, 3), 0);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 5), 3);
        assert_eq!(increment_sequence(i32::MAX, i32::MAX), i32::MAX - 1);
    }

    /// Each partition has its own sequence; a batch's identity is the producer's id and epoch
    /// and its partition's next sequence, which moves by the batch's record count.
    #[test]
    fn sequences_per_partition() {
        let mut s = Sequences::new(4242, 3, 3, false);
        let id = s.identity(1);
        assert_eq!(
            id,
            BatchIdentity {
                producer_id: 4242,
                producer_epoch: 3,
                base_sequence: 0,
                transactional: false,
            }
        );
        s.advance(1, 10);
        s.advance(1, 7);
        s.advance(2, 1);
        let next = |s: &Sequences, p| s.identity(p).base_sequence;
        assert_eq!((next(&s, 0), next(&s, 1), next(&s, 2)), (0, 17, 1));
        assert_eq!(s.identity(1).base_sequence, 17);
        // Asking again does not move it.
        assert_eq!(s.identity(1).base_sequence, 17);
        assert!(Sequences::new(1, 0, 1, true).identity(0).transactional);
        // Wrapping.
        let mut s = Sequences::new(1, 0, 1, false);
        s.advance(0, i32::MAX as usize);
        assert_eq!(next(&s, 0), i32::MAX);
        s.advance(0, 4);
        assert_eq!(next(&s, 0), 3);
    }

    /// The producer id, epoch, base sequence and transactional bit land in the header as Kafka
    /// lays it out, the CRC (which covers them) validates, and the decoder gives them back.
    #[test]
    fn batches_carry_the_producer_fields() {
        let codecs = [Compression::None, Compression::Lz4, Compression::Zstd];
        let ids = [
            BatchIdentity {
                producer_id: 0x0102_0304_0506,
                producer_epoch: 7,
                base_sequence: 1000,
                transactional: false,
            },
            BatchIdentity {
                producer_id: 9,
                producer_epoch: 0,
                base_sequence: 0,
                transactional: true,
            },
            // Near the wrap: still one batch, with this base sequence.
            BatchIdentity {
                producer_id: 9,
                producer_epoch: 1,
                base_sequence: i32::MAX - 1,
                transactional: true,
            },
        ];
        for codec in codecs {
            for id in ids {
                let mut g = RecordGen::new(100, Some(10), 7, 3);
                let recs = records(&mut g, 5);
                let bytes = encode_batch(&recs, 1_700_000_000_000, codec, id).unwrap();
                let h = BatchHeader::parse(&bytes).unwrap();
                assert_eq!(h.total_bytes, bytes.len(), "{codec:?} {id:?}: one batch");
                assert_eq!(h.record_count, 5);
                assert!(!h.control);
                let attributes = i16::from_be_bytes([bytes[21], bytes[22]]);
                assert_eq!(attributes & (1 << 4) != 0, id.transactional, "{id:?}");
                assert_eq!(attributes & 7, codec as i16);
                assert_eq!(
                    i64::from_be_bytes(bytes[43..51].try_into().unwrap()),
                    id.producer_id
                );
                assert_eq!(
                    i16::from_be_bytes(bytes[51..53].try_into().unwrap()),
                    id.producer_epoch
                );
                assert_eq!(
                    i32::from_be_bytes(bytes[53..57].try_into().unwrap()),
                    id.base_sequence
                );
                let crc = u32::from_be_bytes(bytes[17..21].try_into().unwrap());
                assert_eq!(crc, crc32c_sw(&bytes[21..]), "{codec:?} {id:?}: crc");

                let info = RecordBatchDecoder::decode_batch_info(&mut bytes.clone()).unwrap();
                assert_eq!(info.len(), 1);
                assert_eq!(info[0].producer_id, id.producer_id);
                assert_eq!(info[0].producer_epoch, id.producer_epoch);
                assert_eq!(info[0].base_sequence, id.base_sequence);
                assert_eq!(info[0].transactional, id.transactional);
                assert!(!info[0].control);
                assert_eq!(info[0].record_count, 5);

                // The full decode checks the CRC and gives every record back.
                let set = RecordBatchDecoder::decode(&mut bytes.clone()).unwrap();
                assert_eq!(set.records.len(), 5);
                for (i, (got, want)) in set.records.iter().zip(&recs).enumerate() {
                    assert_eq!(got.producer_id, id.producer_id);
                    assert_eq!(got.producer_epoch, id.producer_epoch);
                    assert_eq!(got.transactional, id.transactional);
                    assert_eq!(got.sequence, id.base_sequence.wrapping_add(i as i32));
                    assert_eq!(got.value.as_ref(), Some(&want.value));
                }
                // The CRC covers the producer fields: a flipped bit there is caught.
                for at in [44, 52, 56] {
                    let mut bad = bytes.to_vec();
                    bad[at] ^= 1;
                    assert!(
                        RecordBatchDecoder::decode(&mut Bytes::from(bad)).is_err(),
                        "{codec:?} {id:?}: byte {at} flipped"
                    );
                }
            }
        }
    }

    #[test]
    fn complete_batches_skips_a_cut_tail() {
        let mut g = RecordGen::new(200, None, 7, 3);
        let a = encode_batch(
            &records(&mut g, 3),
            0,
            Compression::None,
            BatchIdentity::NONE,
        )
        .unwrap();
        let b = encode_batch(
            &records(&mut g, 4),
            0,
            Compression::None,
            BatchIdentity::NONE,
        )
        .unwrap();
        let mut all = BytesMut::new();
        all.put_slice(&a);
        all.put_slice(&b);
        let all = all.freeze();
        assert_eq!(complete_batches(&all).len(), 2);
        let cut = all.slice(..all.len() - 10);
        let got = complete_batches(&cut);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, a);
        assert!(complete_batches(&all.slice(..30)).is_empty());
    }

    /// Bitwise CRC-32C (Castagnoli), independent of the encoder's implementation.
    fn crc32c_sw(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in data {
            crc ^= byte as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0x82f6_3b78
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
