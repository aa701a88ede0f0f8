//! RecordBatch v2 framing: header parsing, validation before append, and the fields the broker
//! writes in (base offset, partition leader epoch).
//!
//! # Layout (RecordBatch v2, big-endian, as on the wire and on disk)
//! ```text
//! offset  size  field
//!      0     8  baseOffset            written by the broker on append
//!      8     4  batchLength           bytes after this field (so a batch is batchLength + 12 bytes)
//!     12     4  partitionLeaderEpoch  written by the broker on append
//!     16     1  magic                 must be 2
//!     17     4  crc                   CRC32C of bytes [21, end)
//!     21     2  attributes            bits 0-2 compression, 3 timestamp type, 4 transactional, 5 control
//!     23     4  lastOffsetDelta
//!     27     8  baseTimestamp
//!     35     8  maxTimestamp
//!     43     8  producerId
//!     51     2  producerEpoch
//!     53     4  baseSequence
//!     57     4  recordCount
//!     61     …  records (compressed as a whole when attributes say so)
//! ```
//! The CRC does not cover the first 21 bytes, which is why the broker may rewrite the base offset
//! and leader epoch without recomputing it.

/// Bytes before the records: the fixed header of a v2 batch.
pub const BATCH_HEADER_BYTES: usize = 61;
/// The smallest prefix that tells where a batch ends (baseOffset + batchLength).
pub const BATCH_LENGTH_PREFIX_BYTES: usize = 12;
/// The bytes `assign_offset` writes lie within this prefix (base offset, batch length, leader
/// epoch): past it, a batch as written is the producer's bytes.
pub const BROKER_ASSIGNED_PREFIX_BYTES: usize = 16;
/// The offset of the first byte the CRC covers.
pub(super) const CRC_START: usize = 21;
pub const MAGIC_V2: i8 = 2;

/// What went wrong with a batch a producer sent; each maps to one Kafka error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// Lengths or CRC do not add up: CORRUPT_MESSAGE.
    Corrupt(&'static str),
    /// A batch larger than the topic's max.message.bytes: MESSAGE_TOO_LARGE.
    TooLarge { batch_bytes: usize, max_bytes: u32 },
    /// Well framed but not acceptable (old magic, bad record count): INVALID_RECORD.
    Invalid(&'static str),
    /// Some records are not acceptable (KIP-467): INVALID_RECORD, with their indexes in the
    /// batch and the message for each.
    Records { message: String, indexes: Vec<i32> },
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchError::Corrupt(why) => write!(f, "corrupt record batch: {why}"),
            BatchError::TooLarge {
                batch_bytes,
                max_bytes,
            } => {
                write!(
                    f,
                    "record batch of {batch_bytes} bytes exceeds max.message.bytes {max_bytes}"
                )
            }
            BatchError::Invalid(why) => write!(f, "invalid record batch: {why}"),
            BatchError::Records { message, .. } => f.write_str(message),
        }
    }
}

/// The header fields of one batch that the log needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// The whole batch, header included.
    pub total_bytes: u32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    /// The offset of the last record in the batch.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    pub fn compression(&self) -> i16 {
        self.attributes & 0x7
    }

    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }

    /// True when the batch's timestamps are the broker's (LogAppendTime, attribute bit 3):
    /// every record then has the batch's largest timestamp.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_LOG_APPEND_TIME != 0
    }

    /// The sequence of the batch's last record: sequences wrap from `i32::MAX` to 0, as
    /// Kafka's `DefaultRecordBatch.incrementSequence`.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return self.base_sequence;
        }
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        if last > i64::from(i32::MAX) {
            (last - i64::from(i32::MAX) - 1) as i32
        } else {
            last as i32
        }
    }

    /// Parses the fixed header at the front of `buf`. `None` when `buf` is shorter than a header
    /// or the length field is impossible; the batch body may still be incomplete.
    pub fn parse(buf: &[u8]) -> Option<BatchHeader> {
        if buf.len() < BATCH_HEADER_BYTES {
            return None;
        }
        let batch_length = be_i32(buf, 8);
        let total = i64::from(batch_length) + BATCH_LENGTH_PREFIX_BYTES as i64;
        if total < BATCH_HEADER_BYTES as i64 || total > i64::from(u32::MAX) {
            return None;
        }
        Some(BatchHeader {
            base_offset: be_i64(buf, 0),
            total_bytes: total as u32,
            magic: buf[16] as i8,
            crc: u32::from_be_bytes([buf[17], buf[18], buf[19], buf[20]]),
            attributes: i16::from_be_bytes([buf[21], buf[22]]),
            last_offset_delta: be_i32(buf, 23),
            base_timestamp: be_i64(buf, 27),
            max_timestamp: be_i64(buf, 35),
            producer_id: be_i64(buf, 43),
            producer_epoch: i16::from_be_bytes([buf[51], buf[52]]),
            base_sequence: be_i32(buf, 53),
            record_count: be_i32(buf, 57),
        })
    }
}

fn be_i32(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

fn be_i64(buf: &[u8], at: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    i64::from_be_bytes(b)
}

/// The length of the longest run of whole batches at the start of `records` that fits in
/// `limit` bytes (0 when even the first does not fit).
pub fn whole_batches_within(records: &[u8], limit: usize) -> usize {
    let mut used = 0usize;
    while used < records.len() {
        let Some(h) = BatchHeader::parse(&records[used..]) else {
            break;
        };
        let next = used + h.total_bytes as usize;
        if next > limit || next > records.len() {
            break;
        }
        used = next;
    }
    used
}

/// The end of each whole batch in `records` (stored batches, as a read returns them).
pub fn batch_ends(records: &[u8]) -> Vec<u32> {
    let mut ends = Vec::new();
    let mut used = 0usize;
    while let Some(h) = records.get(used..).and_then(BatchHeader::parse) {
        let next = used + h.total_bytes as usize;
        if next > records.len() || next == used {
            break;
        }
        used = next;
        ends.push(used as u32);
    }
    ends
}

/// Checks one complete batch read back from disk: the length fits and the CRC matches.
pub fn check_stored_batch(buf: &[u8]) -> Option<BatchHeader> {
    let header = BatchHeader::parse(buf)?;
    let total = header.total_bytes as usize;
    if total > buf.len() || header.magic != MAGIC_V2 {
        return None;
    }
    if crc32c::crc32c(&buf[CRC_START..total]) != header.crc {
        return None;
    }
    Some(header)
}

/// Validates the records a producer sent for one partition: one or more complete v2 batches,
/// each with a matching CRC, a sane record count and within `max_batch_bytes`.
/// Returns the headers in order.
pub fn validate_produce(
    records: &[u8],
    max_batch_bytes: u32,
) -> Result<Vec<BatchHeader>, BatchError> {
    let mut headers = Vec::with_capacity(1);
    let mut rest = records;
    if rest.is_empty() {
        return Err(BatchError::Corrupt("no record batch"));
    }
    while !rest.is_empty() {
        if rest.len() < BATCH_LENGTH_PREFIX_BYTES + 5 {
            return Err(BatchError::Corrupt("truncated batch header"));
        }
        // Old message formats (magic 0 and 1) share the first 17 bytes' shape; answer them
        // as Kafka does for a broker that only stores v2.
        let magic = rest[16] as i8;
        if magic != MAGIC_V2 {
            return Err(BatchError::Invalid(
                "only magic 2 record batches are accepted",
            ));
        }
        let header = BatchHeader::parse(rest).ok_or(BatchError::Corrupt("bad batch length"))?;
        let total = header.total_bytes as usize;
        if total > rest.len() {
            return Err(BatchError::Corrupt("batch length exceeds the request"));
        }
        if total > max_batch_bytes as usize {
            return Err(BatchError::TooLarge {
                batch_bytes: total,
                max_bytes: max_batch_bytes,
            });
        }
        let batch = &rest[..total];
        if crc32c::crc32c(&batch[CRC_START..]) != header.crc {
            return Err(BatchError::Corrupt("CRC mismatch"));
        }
        if header.record_count <= 0 {
            return Err(BatchError::Invalid("record count must be positive"));
        }
        if header.last_offset_delta != header.record_count - 1 {
            return Err(BatchError::Invalid(
                "lastOffsetDelta does not match the record count",
            ));
        }
        if header.compression() > 4 {
            return Err(BatchError::Invalid("unknown compression codec"));
        }
        if header.compression() == 0 {
            count_uncompressed_records(&batch[BATCH_HEADER_BYTES..], header.record_count)?;
        }
        headers.push(header);
        rest = &rest[total..];
    }
    Ok(headers)
}

/// The producer fields a client may send, as Kafka's LogValidator checks them: control batches
/// are the broker's own (transaction markers), a transactional batch needs a producer id, and
/// an idempotent batch a sequence.
pub fn check_producer_fields(header: &BatchHeader) -> Result<(), BatchError> {
    if header.is_control() {
        return Err(BatchError::Invalid("clients cannot write control batches"));
    }
    if header.producer_id < 0 {
        if header.is_transactional() {
            return Err(BatchError::Invalid(
                "a transactional batch needs a producer id",
            ));
        }
        return Ok(());
    }
    if header.producer_epoch < 0 || header.base_sequence < 0 {
        return Err(BatchError::Invalid(
            "a batch with a producer id needs its epoch and sequence",
        ));
    }
    Ok(())
}

/// Walks the length prefixes of an uncompressed batch's records and checks that there are
/// exactly `expected` of them filling the batch.
fn count_uncompressed_records(mut body: &[u8], expected: i32) -> Result<(), BatchError> {
    let mut count: i32 = 0;
    while !body.is_empty() {
        let (len, used) = read_varint(body).ok_or(BatchError::Invalid("bad record length"))?;
        if len < 0 || (len as u64) > (body.len() - used) as u64 {
            return Err(BatchError::Invalid("record length exceeds the batch"));
        }
        body = &body[used + len as usize..];
        count = count.saturating_add(1);
    }
    if count != expected {
        return Err(BatchError::Invalid(
            "record count does not match the records",
        ));
    }
    Ok(())
}

/// Reads a zigzag varint (at most 5 bytes for an i32), returning the value and the bytes used.
pub(super) fn read_varint(buf: &[u8]) -> Option<(i64, usize)> {
    let mut value: u64 = 0;
    for (i, b) in buf.iter().take(10).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let decoded = ((value >> 1) as i64) ^ -((value & 1) as i64);
            return Some((decoded, i + 1));
        }
    }
    None
}

/// Writes the broker-assigned base offset and leader epoch into a batch in place.
/// Neither field is covered by the CRC.
pub fn assign_offset(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    assert!(
        batch.len() >= BATCH_HEADER_BYTES,
        "assign_offset on a short batch"
    );
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
    batch[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// Makes a batch's timestamp the broker's (LogAppendTime, as Kafka's LogValidator does for
/// `message.timestamp.type=LogAppendTime`): the timestamp-type attribute bit set, the max
/// timestamp `now_ms`, and the CRC (which covers both) computed again. Records keep their
/// deltas; consumers read every record of such a batch at its max timestamp.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    let total = batch_total_len(batch);
    assert!(
        total >= BATCH_HEADER_BYTES && total <= batch.len(),
        "set_log_append_time on a short batch"
    );
    let attributes = i16::from_be_bytes([batch[21], batch[22]]) | TIMESTAMP_TYPE_LOG_APPEND_TIME;
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    batch[35..43].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&batch[CRC_START..total]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// The attribute bit of a batch whose timestamps are the broker's.
const TIMESTAMP_TYPE_LOG_APPEND_TIME: i16 = 0x08;

/// A batch's whole length (its length field plus the 12 bytes before it).
fn batch_total_len(batch: &[u8]) -> usize {
    batch.get(8..12).map_or(0, |b| {
        i32::from_be_bytes([b[0], b[1], b[2], b[3]]).max(0) as usize
    }) + BATCH_LENGTH_PREFIX_BYTES
}

/// The wall clock in ms since the epoch (the broker's LogAppendTime).
pub fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Encodes `(key, value, timestamp)` records as one v2 batch the way a producer does (base
/// offset 0, no producer id): the broker's own records (`__consumer_offsets`), and the one
/// batch builder of the unit tests, `tests/` and `benches/` (`encode_batch`).
pub fn try_encode_batch(
    records: impl IntoIterator<Item = (Option<bytes::Bytes>, Option<bytes::Bytes>, i64)>,
    compression: kafka_protocol::records::Compression,
) -> Result<Vec<u8>, String> {
    try_encode_batch_as(records, compression, None)
}

/// `try_encode_batch` for a transactional producer `(producer id, epoch)`, without sequences:
/// the group coordinator's transactional offset commits, which Kafka writes the same way.
pub fn try_encode_batch_as(
    records: impl IntoIterator<Item = (Option<bytes::Bytes>, Option<bytes::Bytes>, i64)>,
    compression: kafka_protocol::records::Compression,
    transactional: Option<(i64, i16)>,
) -> Result<Vec<u8>, String> {
    use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let (producer_id, producer_epoch) = transactional.unwrap_or((-1, -1));
    let records: Vec<Record> = records
        .into_iter()
        .enumerate()
        .map(|(i, (key, value, timestamp))| Record {
            transactional: transactional.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch where offset - sequence changes: keep it constant.
            sequence: i as i32 - i32::from(transactional.is_some()),
            timestamp,
            key,
            value,
            headers: Default::default(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).map_err(|e| e.to_string())?;
    Ok(buf.to_vec())
}

/// A transaction marker as Kafka writes it: a control batch of one record whose key is
/// `version i16 (0), type i16 (0 abort, 1 commit)` and whose value is an `EndTxnMarker`
/// (`version i16 (0), coordinator_epoch i32`), with the producer's id and epoch and no
/// sequence.
pub fn encode_marker(
    producer_id: i64,
    producer_epoch: i16,
    coordinator_epoch: i32,
    commit: bool,
    timestamp: i64,
) -> Result<Vec<u8>, String> {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&i16::from(commit).to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    let record = Record {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id,
        producer_epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp,
        key: Some(bytes::Bytes::from(key)),
        value: Some(bytes::Bytes::from(value)),
        headers: Default::default(),
    };
    let mut buf = bytes::BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, [&record], &options)
        .map_err(|e| format!("encoding a transaction marker: {e}"))?;
    Ok(buf.to_vec())
}

/// Reads a stored control batch as a transaction marker: `(commit, coordinator_epoch)`, or
/// `None` when it is not one (these bytes come from disk: nothing here panics).
pub fn parse_marker(batch: &[u8]) -> Option<(bool, i32)> {
    let mut buf = bytes::Bytes::copy_from_slice(batch);
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf).ok()?;
    let record = set.records.first()?;
    let commit = marker_of(record.key.as_deref())?;
    let epoch = record
        .value
        .as_ref()
        .and_then(|v| {
            Some(i32::from_be_bytes([
                *v.get(2)?,
                *v.get(3)?,
                *v.get(4)?,
                *v.get(5)?,
            ]))
        })
        .unwrap_or(-1);
    Some((commit, epoch))
}

/// A control record's key as a marker: `Some(true)` for a commit, `Some(false)` for an
/// abort, `None` for anything else.
pub fn marker_of(key: Option<&[u8]>) -> Option<bool> {
    let key = key?;
    match i16::from_be_bytes([*key.get(2)?, *key.get(3)?]) {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

/// `try_encode_batch` for tests and benches.
#[doc(hidden)]
pub fn encode_batch(
    records: impl IntoIterator<Item = (Option<bytes::Bytes>, Option<bytes::Bytes>, i64)>,
    compression: kafka_protocol::records::Compression,
) -> Vec<u8> {
    try_encode_batch(records, compression).expect("encoding a record batch")
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use kafka_protocol::records::Compression;

    /// A LogAppendTime batch keeps its records and says so: the attribute bit set, the max
    /// timestamp the broker's, and a CRC that checks.
    #[test]
    fn log_append_time_is_written_with_a_good_crc() {
        let mut b = make_batch(3, 10, Compression::Gzip);
        let before = validate_produce(&b, 1 << 20).expect("valid")[0];
        assert!(!before.is_log_append_time());
        set_log_append_time(&mut b, 1_234_567);
        let after = validate_produce(&b, 1 << 20).expect("the CRC checks")[0];
        assert!(after.is_log_append_time());
        assert_eq!(after.max_timestamp, 1_234_567);
        assert_eq!(after.record_count, before.record_count);
        assert_eq!(
            b[61..],
            make_batch(3, 10, Compression::Gzip)[61..],
            "records untouched"
        );
    }

    /// Builds one v2 batch of `n` records with the given compression, as a producer would.
    pub fn make_batch(n: usize, value_bytes: usize, compression: Compression) -> Vec<u8> {
        let records = (0..n).map(|i| {
            let key = bytes::Bytes::from(format!("k{i}"));
            (
                Some(key),
                Some(bytes::Bytes::from(vec![b'v'; value_bytes])),
                1_000 + i as i64,
            )
        });
        encode_batch(records, compression)
    }

    /// A well-formed batch passes and its header reads back the producer's fields.
    #[test]
    fn valid_batch_passes() {
        let b = make_batch(5, 10, Compression::None);
        let headers = validate_produce(&b, 1 << 20).expect("valid");
        assert_eq!(headers.len(), 1);
        assert_eq!(headers[0].record_count, 5);
        assert_eq!(headers[0].last_offset_delta, 4);
        assert_eq!(headers[0].max_timestamp, 1_004);
        assert!(check_stored_batch(&b).is_some());
    }

    /// Each kind of damage gets its own Kafka error.
    #[test]
    fn damage_is_classified() {
        let b = make_batch(3, 10, Compression::None);
        let mut flipped = b.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(
            validate_produce(&flipped, 1 << 20),
            Err(BatchError::Corrupt("CRC mismatch"))
        );
        assert!(matches!(
            validate_produce(&b, 10),
            Err(BatchError::TooLarge { .. })
        ));
        assert!(matches!(
            validate_produce(&b[..b.len() - 1], 1 << 20),
            Err(BatchError::Corrupt(_))
        ));
        let mut old = b.clone();
        old[16] = 1;
        assert!(matches!(
            validate_produce(&old, 1 << 20),
            Err(BatchError::Invalid(_))
        ));
        assert!(matches!(
            validate_produce(&[], 1 << 20),
            Err(BatchError::Corrupt(_))
        ));
    }

    /// Rewriting the base offset leaves the CRC valid.
    #[test]
    fn offset_assignment_keeps_crc() {
        let mut b = make_batch(2, 3, Compression::Lz4);
        assign_offset(&mut b, 42, 7);
        let h = check_stored_batch(&b).expect("still valid");
        assert_eq!(h.base_offset, 42);
        assert_eq!(h.last_offset(), 43);
    }

    /// Two batches back to back are both validated.
    #[test]
    fn several_batches() {
        let mut b = make_batch(2, 3, Compression::None);
        b.extend(make_batch(4, 3, Compression::Gzip));
        assert_eq!(validate_produce(&b, 1 << 20).expect("valid").len(), 2);
    }
}
