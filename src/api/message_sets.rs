//! Message format v0 and v1 (the MessageSets of Kafka 0.8-0.10), for the Produce v0-2 and
//! Fetch v0-3 clients Kafka 3.9 still serves: a produced message set is up-converted to one
//! RecordBatch v2 (what the log stores), and stored v2 batches are down-converted for a fetch,
//! as Kafka's `LogValidator` and `RecordsUtil.downConvert` do. kafka-protocol refuses magic 0
//! and 1 both ways, so the layout is handled here; decompression goes through the log's bounded
//! `records::decompress`.
//!
//! # Layout (magic 0 and 1), one entry of a message set
//! ```text
//! offset i64, message_size i32, crc u32 (CRC-32 of what follows), magic i8, attributes i8
//! (bits 0-2 codec, bit 3 LogAppendTime in v1), [timestamp i64: v1 only],
//! key (i32 length, -1 null), value (i32 length, -1 null)
//! ```
//! A compressed message (codec 1 gzip, 2 snappy, 3 lz4) holds an inner message set,
//! compressed, as its value; its offset is the inner set's last offset. Inner offsets are
//! absolute in v0 and relative to the first (0, 1, ...) in v1.

use bytes::Bytes;

use crate::log::batch::{self, BatchHeader};
use crate::log::records::{self, RecordsError, DECOMPRESSED_LIMIT_BYTES};

/// A v0 message without key or value: crc, magic, attributes, two null lengths.
const MESSAGE_V0_BYTES_MIN: usize = 4 + 1 + 1 + 4 + 4;
/// v1 adds the timestamp.
const MESSAGE_V1_BYTES_MIN: usize = MESSAGE_V0_BYTES_MIN + 8;
/// The entry header before each message: offset and size.
const ENTRY_HEADER_BYTES: usize = 8 + 4;
/// Attribute bit 3: the message's timestamp is the broker's (v1).
const LOG_APPEND_TIME: i8 = 0x8;
/// Kafka's `RecordBatch.NO_TIMESTAMP`: what a v0 message (no timestamp field) has.
pub const NO_TIMESTAMP: i64 = -1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConvertError {
    /// Not a valid message set: lengths, CRC, magic, codec, nesting.
    Corrupt(&'static str),
    /// Inflates past `DECOMPRESSED_LIMIT_BYTES`.
    TooLarge,
}

impl std::fmt::Display for ConvertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConvertError::Corrupt(why) => write!(f, "invalid message set: {why}"),
            ConvertError::TooLarge => write!(
                f,
                "the message set decompresses to more than {DECOMPRESSED_LIMIT_BYTES} bytes"
            ),
        }
    }
}

impl From<RecordsError> for ConvertError {
    fn from(e: RecordsError) -> Self {
        match e {
            RecordsError::TooLarge => ConvertError::TooLarge,
            RecordsError::Corrupt(why) | RecordsError::Invalid(why) => ConvertError::Corrupt(why),
        }
    }
}

/// One message of a set, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Message<'a> {
    offset: i64,
    magic: i8,
    attributes: i8,
    timestamp: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
}

impl Message<'_> {
    fn codec(&self) -> i16 {
        i16::from(self.attributes & 0x7)
    }
}

fn be_i32(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_i64(b: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Parses the messages of a set in order; every length is checked against the bytes left and
/// every CRC is checked. A trailing partial message is an error (producers never send one).
fn parse_set(mut set: &[u8]) -> Result<Vec<Message<'_>>, ConvertError> {
    let corrupt = ConvertError::Corrupt;
    let mut out = Vec::new();
    while !set.is_empty() {
        let offset = be_i64(set, 0).ok_or(corrupt("truncated message offset"))?;
        let size = be_i32(set, 8).ok_or(corrupt("truncated message size"))?;
        let size = usize::try_from(size).map_err(|_| corrupt("negative message size"))?;
        if size < MESSAGE_V0_BYTES_MIN {
            return Err(corrupt("message smaller than its header"));
        }
        let end = ENTRY_HEADER_BYTES
            .checked_add(size)
            .filter(|e| *e <= set.len())
            .ok_or(corrupt("message size exceeds the message set"))?;
        let m = &set[ENTRY_HEADER_BYTES..end];
        let crc = u32::from_be_bytes([m[0], m[1], m[2], m[3]]);
        let mut hasher = flate2::Crc::new();
        hasher.update(&m[4..]);
        if hasher.sum() != crc {
            return Err(corrupt("message CRC mismatch"));
        }
        let magic = m[4] as i8;
        let attributes = m[5] as i8;
        let (timestamp, mut at) = match magic {
            0 => (NO_TIMESTAMP, 6),
            1 if size >= MESSAGE_V1_BYTES_MIN => (be_i64(m, 6).unwrap_or(NO_TIMESTAMP), 14),
            1 => return Err(corrupt("message smaller than its header")),
            _ => return Err(corrupt("message magic is not 0 or 1")),
        };
        let bytes_field = |at: &mut usize| -> Result<Option<&[u8]>, ConvertError> {
            let len = be_i32(m, *at).ok_or(corrupt("truncated length"))?;
            *at += 4;
            if len == -1 {
                return Ok(None);
            }
            let len = usize::try_from(len).map_err(|_| corrupt("negative length"))?;
            let field = m
                .get(*at..at.saturating_add(len))
                .ok_or(corrupt("key or value exceeds its message"))?;
            *at += len;
            Ok(Some(field))
        };
        let key = bytes_field(&mut at)?;
        let value = bytes_field(&mut at)?;
        if at != m.len() {
            return Err(corrupt("bytes after a message's value"));
        }
        out.push(Message {
            offset,
            magic,
            attributes,
            timestamp,
            key,
            value,
        });
        set = &set[end..];
    }
    Ok(out)
}

/// Kafka's codec number to kafka-protocol's.
fn compression(codec: i16) -> Result<kafka_protocol::records::Compression, ConvertError> {
    use kafka_protocol::records::Compression;
    Ok(match codec {
        0 => Compression::None,
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        4 => Compression::Zstd,
        _ => return Err(ConvertError::Corrupt("unknown compression codec")),
    })
}

/// A produced message set (v0 or v1, compressed or not) as one RecordBatch v2 with offset
/// deltas 0, 1, ... and no producer id, compressed with the set's codec (Kafka's
/// `compression.type=producer`). Timestamps are kept: a v0 message has none, so its record
/// carries `NO_TIMESTAMP` (-1), as Kafka's up-conversion writes it (a LogAppendTime topic
/// stamps the batch with the broker's time on append anyway). Decompression holds at most
/// `DECOMPRESSED_LIMIT_BYTES` for the whole set.
pub fn up_convert(set: &[u8]) -> Result<Vec<u8>, ConvertError> {
    let mut records: Vec<(Option<Bytes>, Option<Bytes>, i64)> = Vec::new();
    let mut codec = 0;
    let mut inflated = 0usize;
    let copy = |b: Option<&[u8]>| b.map(Bytes::copy_from_slice);
    for m in parse_set(set)? {
        if m.codec() == 0 {
            records.push((copy(m.key), copy(m.value), m.timestamp));
            continue;
        }
        if m.codec() > 3 {
            return Err(ConvertError::Corrupt(
                "codec not allowed in message format v0/v1",
            ));
        }
        codec = m.codec();
        let compressed = m
            .value
            .ok_or(ConvertError::Corrupt("compressed message without a value"))?;
        let fixed;
        let compressed = if m.magic == 0 && m.codec() == 3 {
            fixed = lz4_header_checksum(compressed, false)?;
            &fixed[..]
        } else {
            compressed
        };
        let inner = records::decompress(m.codec(), compressed)?;
        inflated = inflated.saturating_add(inner.len());
        if inflated > DECOMPRESSED_LIMIT_BYTES {
            return Err(ConvertError::TooLarge);
        }
        let log_append_time = m.magic == 1 && m.attributes & LOG_APPEND_TIME != 0;
        for i in parse_set(&inner)? {
            if i.codec() != 0 {
                return Err(ConvertError::Corrupt("compressed message inside another"));
            }
            let timestamp = if log_append_time {
                m.timestamp
            } else {
                i.timestamp
            };
            records.push((copy(i.key), copy(i.value), timestamp));
        }
    }
    if records.is_empty() {
        return Err(ConvertError::Corrupt("no message"));
    }
    batch::try_encode_batch(records, compression(codec)?)
        .map_err(|_| ConvertError::Corrupt("cannot encode the converted batch"))
}

/// Appends one message entry (offset, size, crc, magic, attributes, [timestamp], key, value).
fn put_message(
    out: &mut Vec<u8>,
    offset: i64,
    magic: i8,
    attributes: i8,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) {
    out.extend_from_slice(&offset.to_be_bytes());
    let size_at = out.len();
    out.extend_from_slice(&0i32.to_be_bytes());
    let crc_at = out.len();
    out.extend_from_slice(&0u32.to_be_bytes());
    out.push(magic as u8);
    out.push(attributes as u8);
    if magic >= 1 {
        out.extend_from_slice(&timestamp.to_be_bytes());
    }
    for field in [key, value] {
        match field {
            // Lengths fit: a field comes from a batch or a compressed set of at most
            // DECOMPRESSED_LIMIT_BYTES (64 MiB).
            Some(b) => {
                out.extend_from_slice(&(b.len() as i32).to_be_bytes());
                out.extend_from_slice(b);
            }
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    let size = (out.len() - crc_at) as i32;
    out[size_at..size_at + 4].copy_from_slice(&size.to_be_bytes());
    let mut hasher = flate2::Crc::new();
    hasher.update(&out[crc_at + 4..]);
    out[crc_at..crc_at + 4].copy_from_slice(&hasher.sum().to_be_bytes());
}

/// `frame` (an LZ4 frame) with its header checksum rewritten: `broken` as Kafka 0.8-0.9 wrote
/// it for message format v0 (a hash of the magic number and the descriptor, which Kafka 3.9
/// still writes and ignores for v0, `KafkaLZ4BlockOutputStream`), else as the LZ4 frame format
/// has it (a hash of the descriptor alone), so that the standard decoder takes what old
/// clients wrote.
pub fn lz4_header_checksum(frame: &[u8], broken: bool) -> Result<Vec<u8>, ConvertError> {
    const MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];
    let bad = ConvertError::Corrupt("bad LZ4 frame header");
    if frame.get(..4) != Some(&MAGIC[..]) {
        return Err(bad);
    }
    let flags = *frame.get(4).ok_or(bad.clone())?;
    // FLG, BD, then the content size (FLG bit 3) and the dictionary id (FLG bit 0).
    let mut hc_at = 6;
    if flags & 0x08 != 0 {
        hc_at += 8;
    }
    if flags & 0x01 != 0 {
        hc_at += 4;
    }
    if hc_at >= frame.len() {
        return Err(bad);
    }
    let hashed = if broken {
        &frame[..hc_at]
    } else {
        &frame[4..hc_at]
    };
    let mut out = frame.to_vec();
    out[hc_at] = (xxhash_rust::xxh32::xxh32(hashed, 0) >> 8) as u8;
    Ok(out)
}

/// Compresses `data` with Kafka codec `codec` (1-3).
fn compress(codec: i16, data: &[u8]) -> Result<Vec<u8>, ConvertError> {
    use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy};
    let mut out = bytes::BytesMut::new();
    let fill = |b: &mut bytes::BytesMut| {
        b.extend_from_slice(data);
        Ok(())
    };
    let done = match codec {
        1 => Gzip::compress(&mut out, fill),
        2 => Snappy::compress(&mut out, fill),
        3 => Lz4::compress(&mut out, fill),
        _ => return Err(ConvertError::Corrupt("codec not allowed in v0/v1")),
    };
    done.map_err(|_| ConvertError::Corrupt("compressing a message set failed"))?;
    Ok(out.to_vec())
}

/// Stored v2 batches (whole, as a fetch reads them) as a message set of `magic` 0 or 1, as
/// Kafka's `RecordsUtil.downConvert` writes them: control batches (transaction markers) are
/// dropped; an uncompressed batch becomes one message per record at or past `fetch_offset`;
/// a compressed batch becomes one compressed message (its codec; zstd, which v0/v1 cannot
/// carry, as gzip, where Kafka answers UNSUPPORTED_COMPRESSION_TYPE, an error these clients
/// do not know) holding all its records (a consumer skips those below its position in a
/// compressed set itself, as Kafka relies on). Record headers are dropped (v0/v1 have none).
/// A LogAppendTime batch's messages (v1) take its time and say so.
pub fn down_convert(batches: &[u8], fetch_offset: i64, magic: i8) -> Result<Vec<u8>, ConvertError> {
    let mut out = Vec::with_capacity(batches.len());
    let mut rest = batches;
    while let Some(header) = BatchHeader::parse(rest) {
        let total = header.total_bytes as usize;
        let Some(batch) = rest.get(..total) else {
            break; // A partial batch at the end: as a fetch of v2, the client reads it next time.
        };
        rest = &rest[total..];
        if header.is_control() || header.magic != batch::MAGIC_V2 {
            continue;
        }
        let body = records::body(&header, batch)?;
        let log_append_time = header.is_log_append_time();
        let ts_attribute = if magic >= 1 && log_append_time {
            LOG_APPEND_TIME
        } else {
            0
        };
        let timestamp = |delta: i64| {
            if log_append_time {
                header.max_timestamp
            } else {
                header.base_timestamp.saturating_add(delta)
            }
        };
        let codec = match header.compression() {
            4 => 1,
            c => c,
        };
        if codec == 0 {
            for r in records::walk(&body) {
                let r = r?;
                let offset = header.base_offset + i64::from(r.offset_delta);
                if offset < fetch_offset {
                    continue;
                }
                let ts = timestamp(r.timestamp_delta);
                put_message(&mut out, offset, magic, ts_attribute, ts, r.key, r.value);
            }
            continue;
        }
        let mut inner = Vec::with_capacity(body.len());
        let mut first_offset = None;
        let mut last_offset = 0i64;
        let mut max_timestamp = NO_TIMESTAMP;
        for r in records::walk(&body) {
            let r = r?;
            let offset = header.base_offset + i64::from(r.offset_delta);
            let first = *first_offset.get_or_insert(offset);
            let inner_offset = if magic >= 1 { offset - first } else { offset };
            let ts = timestamp(r.timestamp_delta);
            max_timestamp = max_timestamp.max(ts);
            last_offset = offset;
            put_message(
                &mut inner,
                inner_offset,
                magic,
                ts_attribute,
                ts,
                r.key,
                r.value,
            );
        }
        if first_offset.is_none() {
            continue;
        }
        let mut compressed = compress(codec, &inner)?;
        if magic == 0 && codec == 3 {
            compressed = lz4_header_checksum(&compressed, true)?;
        }
        let attributes = codec as i8 | ts_attribute;
        put_message(
            &mut out,
            last_offset,
            magic,
            attributes,
            max_timestamp,
            None,
            Some(&compressed),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::Compression;

    fn b(s: &str) -> Option<&[u8]> {
        Some(s.as_bytes())
    }

    /// A v1 message set as a producer writes it: uncompressed, or one compressed wrapper.
    fn set_v1(codec: i16, msgs: &[(&str, &str, i64)]) -> Vec<u8> {
        let mut plain = Vec::new();
        for (i, (k, v, ts)) in msgs.iter().enumerate() {
            put_message(&mut plain, i as i64, 1, 0, *ts, b(k), b(v));
        }
        if codec == 0 {
            return plain;
        }
        let mut out = Vec::new();
        let last = msgs.len() as i64 - 1;
        let wrapper_ts = msgs.iter().map(|m| m.2).max().unwrap_or(-1);
        let value = compress(codec, &plain).expect("compresses");
        put_message(
            &mut out,
            last,
            1,
            codec as i8,
            wrapper_ts,
            None,
            Some(&value),
        );
        out
    }

    /// A record read back: key, value, timestamp.
    type Read = (Option<Vec<u8>>, Option<Vec<u8>>, i64);

    fn read_batch(batch: &[u8]) -> (BatchHeader, Vec<Read>) {
        let h = batch::validate_produce(batch, 1 << 20).expect("a valid v2 batch")[0];
        let body = records::body(&h, batch).expect("body");
        let recs = records::walk(&body)
            .map(|r| {
                let r = r.expect("record");
                (
                    r.key.map(<[u8]>::to_vec),
                    r.value.map(<[u8]>::to_vec),
                    h.base_timestamp + r.timestamp_delta,
                )
            })
            .collect();
        (h, recs)
    }

    /// v1 sets, plain and compressed with each legacy codec, up-convert to one v2 batch with
    /// the same keys, values and timestamps, in the set's codec.
    #[test]
    fn v1_sets_up_convert_with_their_timestamps() {
        let msgs = [("k0", "v0", 1000), ("k1", "v1", 1005), ("k2", "v2", 999)];
        for codec in [0i16, 1, 2, 3] {
            let out = up_convert(&set_v1(codec, &msgs)).expect("converts");
            let (h, recs) = read_batch(&out);
            assert_eq!(h.compression(), codec);
            assert_eq!(h.record_count, 3);
            assert_eq!(h.producer_id, -1);
            assert_eq!(h.max_timestamp, 1005);
            let want: Vec<_> = msgs
                .iter()
                .map(|(k, v, ts)| {
                    (
                        Some(k.as_bytes().to_vec()),
                        Some(v.as_bytes().to_vec()),
                        *ts,
                    )
                })
                .collect();
            assert_eq!(recs, want, "codec {codec}");
        }
    }

    /// v0 messages have no timestamp: their records carry NO_TIMESTAMP (-1), as in Kafka;
    /// null keys and values stay null.
    #[test]
    fn v0_messages_up_convert_without_timestamps() {
        let mut set = Vec::new();
        put_message(&mut set, 0, 0, 0, 0, None, b("v"));
        put_message(&mut set, 1, 0, 0, 0, b("k"), None);
        let (h, recs) = read_batch(&up_convert(&set).expect("converts"));
        assert_eq!(h.max_timestamp, NO_TIMESTAMP);
        assert_eq!(
            recs,
            vec![
                (None, Some(b"v".to_vec()), -1),
                (Some(b"k".to_vec()), None, -1)
            ]
        );
    }

    /// Bad CRCs, sizes past the set, truncation anywhere, unknown magic, nested compression
    /// and an empty set are errors, never panics.
    #[test]
    fn bad_sets_are_errors() {
        let good = set_v1(0, &[("k", "v", 1), ("k2", "v2", 2)]);
        assert!(up_convert(&good).is_ok());
        let first = set_v1(0, &[("k", "v", 1)]).len();
        for cut in (0..good.len()).filter(|c| *c != first) {
            assert!(up_convert(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut crc = good.clone();
        *crc.last_mut().expect("bytes") ^= 1;
        assert_eq!(
            up_convert(&crc),
            Err(ConvertError::Corrupt("message CRC mismatch"))
        );
        let mut size = good.clone();
        size[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(up_convert(&size).is_err());
        let mut magic = Vec::new();
        put_message(&mut magic, 0, 2, 0, 0, None, b("v"));
        assert!(up_convert(&magic).is_err());
        let inner = set_v1(1, &[("k", "v", 1)]);
        let mut nested = Vec::new();
        let value = compress(1, &inner).expect("compresses");
        put_message(&mut nested, 0, 1, 1, 1, None, Some(&value));
        assert_eq!(
            up_convert(&nested),
            Err(ConvertError::Corrupt("compressed message inside another"))
        );
    }

    /// LZ4 in message format v0 carries Kafka 0.8's broken header checksum both ways: a
    /// produced v0 set with it up-converts, and a v0 fetch gets it (what 0.9 clients check).
    #[test]
    fn lz4_in_v0_has_the_broken_header_checksum() {
        let mut plain = Vec::new();
        put_message(&mut plain, 0, 0, 0, 0, b("k"), b("v"));
        let proper = compress(3, &plain).expect("compresses");
        let broken = lz4_header_checksum(&proper, true).expect("a frame");
        assert_ne!(broken, proper, "the checksums differ");
        assert!(
            records::decompress(3, &broken).is_err(),
            "the standard decoder refuses it"
        );
        let mut set = Vec::new();
        put_message(&mut set, 0, 0, 3, 0, None, Some(&broken));
        let (_, recs) = read_batch(&up_convert(&set).expect("converts"));
        assert_eq!(recs, vec![(Some(b"k".to_vec()), Some(b"v".to_vec()), -1)]);
        let stored = batch::encode_batch(
            [(None, Some(Bytes::from_static(b"v")), 5)],
            Compression::Lz4,
        );
        let out = down_convert(&stored, 0, 0).expect("converts");
        let wrapper = parse_set(&out).expect("parses")[0];
        let value = wrapper.value.expect("value");
        assert!(
            records::decompress(3, value).is_err(),
            "broken as Kafka writes v0"
        );
        let fixed = lz4_header_checksum(value, false).expect("a frame");
        assert!(records::decompress(3, &fixed).is_ok());
    }

    /// A compressed message claiming a huge inner set (a gzip bomb) stops at the bound.
    #[test]
    fn a_compression_bomb_stops_at_the_bound() {
        let zeros = vec![0u8; DECOMPRESSED_LIMIT_BYTES + 1];
        let value = compress(1, &zeros).expect("compresses");
        let mut set = Vec::new();
        put_message(&mut set, 0, 1, 1, 1, None, Some(&value));
        assert_eq!(up_convert(&set), Err(ConvertError::TooLarge));
    }

    /// A LogAppendTime batch's v1 messages carry the broker's time and the attribute bit; a
    /// zstd batch (v0/v1 cannot carry zstd) goes out as one gzip message.
    #[test]
    fn log_append_time_and_zstd_down_convert() {
        let recs = (0..2).map(|i| (None, Some(Bytes::from(format!("v{i}"))), 100 + i));
        let mut b = batch::encode_batch(recs.clone(), Compression::None);
        batch::set_log_append_time(&mut b, 777);
        let set = down_convert(&b, 0, 1).expect("converts");
        for m in parse_set(&set).expect("parses") {
            assert_eq!(
                (m.timestamp, m.attributes & LOG_APPEND_TIME),
                (777, LOG_APPEND_TIME)
            );
        }
        let z = batch::encode_batch(recs, Compression::Zstd);
        let set = down_convert(&z, 0, 1).expect("converts");
        let outer = parse_set(&set).expect("parses");
        assert_eq!((outer.len(), outer[0].codec(), outer[0].offset), (1, 1, 1));
        let inner = records::decompress(1, outer[0].value.expect("value")).expect("gzip");
        let values: Vec<_> = parse_set(&inner)
            .expect("inner parses")
            .iter()
            .map(|m| m.value.map(<[u8]>::to_vec))
            .collect();
        assert_eq!(values, vec![Some(b"v0".to_vec()), Some(b"v1".to_vec())]);
    }

    /// Stored batches down-convert to v0 and v1 sets with absolute offsets: uncompressed
    /// batches from the fetch offset on, compressed ones whole in one wrapper whose offset is
    /// the last; control batches are dropped.
    #[test]
    fn batches_down_convert() {
        let rec = |i: i64| {
            (
                Some(Bytes::from(format!("k{i}"))),
                Some(Bytes::from(format!("v{i}"))),
                100 + i,
            )
        };
        let mut log = Vec::new();
        let mut plain = batch::encode_batch((0..3).map(rec), Compression::None);
        batch::assign_offset(&mut plain, 10, 0);
        log.extend_from_slice(&plain);
        let mut marker = batch::encode_marker(7, 0, 0, true, 5).expect("marker");
        batch::assign_offset(&mut marker, 13, 0);
        log.extend_from_slice(&marker);
        let mut lz4 = batch::encode_batch((3..5).map(rec), Compression::Lz4);
        batch::assign_offset(&mut lz4, 14, 0);
        log.extend_from_slice(&lz4);
        for magic in [0i8, 1] {
            let set = down_convert(&log, 11, magic).expect("converts");
            let outer = parse_set(&set).expect("parses");
            assert_eq!(outer.len(), 3, "two plain messages and one wrapper");
            assert_eq!((outer[0].offset, outer[0].key), (11, b("k1")));
            assert_eq!((outer[1].offset, outer[1].value), (12, b("v2")));
            assert_eq!(outer[2].offset, 15);
            assert_eq!(outer[2].codec(), 3);
            let mut value = outer[2].value.expect("value").to_vec();
            if magic == 0 {
                value = lz4_header_checksum(&value, false).expect("a frame");
            }
            let inner = records::decompress(3, &value).expect("lz4");
            let inner = parse_set(&inner).expect("inner parses");
            let offsets: Vec<i64> = inner.iter().map(|m| m.offset).collect();
            if magic == 1 {
                assert_eq!(offsets, vec![0, 1]);
                assert_eq!(outer[0].timestamp, 101);
                assert_eq!(inner[1].timestamp, 104);
                assert_eq!(outer[2].timestamp, 104);
            } else {
                assert_eq!(offsets, vec![14, 15]);
            }
            assert_eq!(inner[0].key, b("k3"));
        }
    }
}
