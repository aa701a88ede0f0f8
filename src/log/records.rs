//! The records inside a stored or produced batch: decompressed within a bound, walked without
//! allocating by the counts they claim, and re-encoded with their codec (the cleaner's rewrite
//! of a batch it keeps part of). kafka-protocol's decoder reserves memory by the record count
//! and header count on the wire and decompresses without a bound, so nothing here uses it.
//!
//! # Record layout (v2, inside the batch body, after decompression)
//! ```text
//! length varint, attributes i8, timestampDelta varlong, offsetDelta varint,
//! keyLength varint (-1: null), key, valueLength varint (-1: null), value, headers...
//! ```

use std::borrow::Cow;
use std::io::Read;

use bytes::BytesMut;

use super::batch::{read_varint, BatchHeader, BATCH_HEADER_BYTES as BATCH_BODY_START, CRC_START};

/// The most bytes one batch may decompress to. Kafka streams records out of a compressed
/// batch; we hold them, so a batch that would inflate past this (a compression bomb, or a
/// legitimately huge batch) is not decompressed: produce refuses it on a compacted topic and
/// the cleaner keeps it as it is.
pub const DECOMPRESSED_LIMIT_BYTES: usize = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordsError {
    /// Not decodable: a bad codec stream, lengths that do not add up.
    Corrupt(&'static str),
    /// Decodable, but the records contradict the batch (their count, their offsets).
    Invalid(&'static str),
    /// Decompresses to more than the limit.
    TooLarge,
}

impl std::fmt::Display for RecordsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordsError::Corrupt(why) | RecordsError::Invalid(why) => write!(f, "{why}"),
            RecordsError::TooLarge => write!(
                f,
                "the batch decompresses to more than {DECOMPRESSED_LIMIT_BYTES} bytes"
            ),
        }
    }
}

/// One record, borrowed from its batch's (decompressed) body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    pub key: Option<&'a [u8]>,
    /// False for a tombstone (null value).
    pub has_value: bool,
    /// The value's bytes (`None` for a tombstone).
    pub value: Option<&'a [u8]>,
    /// The whole record as stored, length prefix included.
    pub raw: &'a [u8],
}

/// The records body of `batch` (a whole v2 batch), decompressed with its codec.
pub fn body<'a>(header: &BatchHeader, batch: &'a [u8]) -> Result<Cow<'a, [u8]>, RecordsError> {
    let total = (header.total_bytes as usize).min(batch.len());
    let compressed = batch
        .get(BATCH_BODY_START..total)
        .ok_or(RecordsError::Corrupt("batch shorter than its header"))?;
    decompress(header.compression(), compressed).map_err(|e| match e {
        RecordsError::Corrupt(_) => RecordsError::Corrupt("the batch does not decompress"),
        e => e,
    })
}

/// Decompresses `data` with Kafka codec `codec` (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd),
/// refusing output past `DECOMPRESSED_LIMIT_BYTES`.
pub fn decompress(codec: i16, data: &[u8]) -> Result<Cow<'_, [u8]>, RecordsError> {
    let limit = DECOMPRESSED_LIMIT_BYTES;
    let bad = |_| RecordsError::Corrupt("bad compressed data");
    let read_bounded = |mut r: Box<dyn Read + '_>| -> Result<Vec<u8>, RecordsError> {
        let mut out = Vec::new();
        (&mut r)
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(bad)?;
        if out.len() > limit {
            return Err(RecordsError::TooLarge);
        }
        Ok(out)
    };
    match codec {
        0 => Ok(Cow::Borrowed(data)),
        1 => read_bounded(Box::new(flate2::read::MultiGzDecoder::new(data))).map(Cow::Owned),
        2 => snappy(data, limit).map(Cow::Owned),
        3 => read_bounded(Box::new(lz4::Decoder::new(data).map_err(bad)?)).map(Cow::Owned),
        4 => read_bounded(Box::new(
            zstd::stream::read::Decoder::new(data).map_err(bad)?,
        ))
        .map(Cow::Owned),
        _ => Err(RecordsError::Corrupt("unknown compression codec")),
    }
}

/// xerial's snappy framing (what the Java client writes): a 16-byte header, then blocks of
/// `u32 length, raw snappy`; without the header, one raw snappy block (as Kafka reads it too).
fn snappy(data: &[u8], limit: usize) -> Result<Vec<u8>, RecordsError> {
    const MAGIC: &[u8] = b"\x82SNAPPY\x00";
    const HEADER: usize = 16;
    let corrupt = RecordsError::Corrupt("bad snappy data");
    let mut out = Vec::new();
    let block = |raw: &[u8], out: &mut Vec<u8>| -> Result<(), RecordsError> {
        let len = snap::raw::decompress_len(raw).map_err(|_| corrupt.clone())?;
        if out.len() + len > limit {
            return Err(RecordsError::TooLarge);
        }
        let start = out.len();
        out.resize(start + len, 0);
        let n = snap::raw::Decoder::new()
            .decompress(raw, &mut out[start..])
            .map_err(|_| corrupt.clone())?;
        out.truncate(start + n);
        Ok(())
    };
    if !data.starts_with(MAGIC) {
        block(data, &mut out)?;
        return Ok(out);
    }
    let mut rest = data.get(HEADER..).ok_or(corrupt.clone())?;
    while !rest.is_empty() {
        let len_bytes: [u8; 4] = rest
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or(corrupt.clone())?;
        let len = u32::from_be_bytes(len_bytes) as usize;
        let raw = rest.get(4..4 + len).ok_or(corrupt.clone())?;
        block(raw, &mut out)?;
        rest = &rest[4 + len..];
    }
    Ok(out)
}

/// Walks the records of a decompressed body in order; each is checked to lie within the
/// body. Stops at the first that does not, with an error.
pub fn walk(body: &[u8]) -> RecordIter<'_> {
    RecordIter { rest: body }
}

pub struct RecordIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<RecordRef<'a>, RecordsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let parsed = parse_record(self.rest);
        match parsed {
            Ok((record, used)) => {
                self.rest = &self.rest[used..];
                Some(Ok(record))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

fn parse_record(buf: &[u8]) -> Result<(RecordRef<'_>, usize), RecordsError> {
    let bad = RecordsError::Corrupt("a record's lengths do not add up");
    let (len, used) = read_varint(buf).ok_or(bad.clone())?;
    let len = usize::try_from(len).map_err(|_| bad.clone())?;
    let end = used
        .checked_add(len)
        .filter(|e| *e <= buf.len())
        .ok_or(bad.clone())?;
    let mut body = &buf[used..end];
    let take = |body: &mut &[u8]| -> Result<i64, RecordsError> {
        let (v, n) = read_varint(body).ok_or(bad.clone())?;
        *body = &body[n..];
        Ok(v)
    };
    // Attributes (unused in v2).
    body = body.get(1..).ok_or(bad.clone())?;
    let timestamp_delta = take(&mut body)?;
    let offset_delta = i32::try_from(take(&mut body)?).map_err(|_| bad.clone())?;
    let key_len = take(&mut body)?;
    let key = match key_len {
        -1 => None,
        n if n >= 0 && (n as usize) <= body.len() => {
            let (k, rest) = body.split_at(n as usize);
            body = rest;
            Some(k)
        }
        _ => return Err(bad),
    };
    let value_len = take(&mut body)?;
    let value = match value_len {
        -1 => None,
        n if n >= 0 && (n as usize) <= body.len() => Some(&body[..n as usize]),
        _ => return Err(bad),
    };
    Ok((
        RecordRef {
            offset_delta,
            timestamp_delta,
            key,
            has_value: value.is_some(),
            value,
            raw: &buf[..end],
        },
        end,
    ))
}

/// A copy of `batch` holding only `kept` of its records (raw records, in order), compressed
/// again with its codec: base offset, last offset delta, base timestamp and producer fields
/// stay as they were (Kafka's cleaner keeps a batch's offset range so producer state holds),
/// the record count and largest timestamp follow the records kept, and the CRC is redone.
pub fn rebuild(
    header: &BatchHeader,
    batch: &[u8],
    kept: &[RecordRef<'_>],
) -> Result<Vec<u8>, RecordsError> {
    use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};
    let mut out = BytesMut::with_capacity(header.total_bytes as usize);
    out.extend_from_slice(
        batch
            .get(..BATCH_BODY_START)
            .ok_or(RecordsError::Corrupt("batch shorter than its header"))?,
    );
    let failed = |_| RecordsError::Corrupt("compressing the cleaned batch failed");
    match header.compression() {
        0 => kept.iter().for_each(|r| out.extend_from_slice(r.raw)),
        1 => Gzip::compress(&mut out, |b| {
            kept.iter().for_each(|r| b.extend_from_slice(r.raw));
            Ok(())
        })
        .map_err(failed)?,
        2 => Snappy::compress(&mut out, |b| {
            kept.iter().for_each(|r| b.extend_from_slice(r.raw));
            Ok(())
        })
        .map_err(failed)?,
        3 => Lz4::compress(&mut out, |b| {
            kept.iter().for_each(|r| b.extend_from_slice(r.raw));
            Ok(())
        })
        .map_err(failed)?,
        4 => Zstd::compress(&mut out, |b| {
            kept.iter().for_each(|r| b.extend_from_slice(r.raw));
            Ok(())
        })
        .map_err(failed)?,
        _ => return Err(RecordsError::Corrupt("unknown compression codec")),
    }
    let log_append_time = header.attributes & 0x8 != 0;
    let max_timestamp = if log_append_time {
        header.max_timestamp
    } else {
        kept.iter()
            .map(|r| header.base_timestamp.saturating_add(r.timestamp_delta))
            .max()
            .unwrap_or(header.max_timestamp)
    };
    let length = i32::try_from(out.len() - 12)
        .map_err(|_| RecordsError::Corrupt("cleaned batch too large"))?;
    out[8..12].copy_from_slice(&length.to_be_bytes());
    out[35..43].copy_from_slice(&max_timestamp.to_be_bytes());
    out[57..61].copy_from_slice(&(kept.len() as i32).to_be_bytes());
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out.to_vec())
}

/// What a produced batch's own records say of it, checked as Kafka's LogValidator does for a
/// compressed batch (an uncompressed one is counted by `batch::validate_produce`): as many
/// records as its header claims (counted, not taken from the header: a few small batches
/// claiming 2^31 records each would otherwise push relative offsets past 32 bits), with offset
/// deltas 0, 1, 2, ... in order. Returns the indexes of the records without a key (KIP-467).
/// Decompressing holds at most `DECOMPRESSED_LIMIT_BYTES` at a time per shard: validation runs
/// on the shard's thread, one batch after another.
pub fn check_produced(header: &BatchHeader, batch: &[u8]) -> Result<Vec<i32>, RecordsError> {
    let body = body(header, batch)?;
    let mut keyless = Vec::new();
    let mut count: i32 = 0;
    for record in walk(&body) {
        let record = record?;
        if record.offset_delta != count {
            return Err(RecordsError::Invalid(
                "the records' offset deltas are not 0, 1, 2, ... in order",
            ));
        }
        if record.key.is_none() {
            keyless.push(count);
        }
        count = count.saturating_add(1);
    }
    if count != header.record_count {
        return Err(RecordsError::Invalid(
            "the batch does not hold as many records as it claims",
        ));
    }
    Ok(keyless)
}

/// A batch holding no records that keeps `batch`'s offset range (base offset, last offset
/// delta) and producer fields, uncompressed: what the cleaner leaves where it removed the last
/// batch before the active segment, so consumers still find the log's end (clients move to
/// a batch's last offset + 1, KAFKA-5443; Kafka's cleaner keeps such empty batches too).
pub fn empty_batch(batch: &[u8]) -> Option<Vec<u8>> {
    let mut out = batch.get(..BATCH_BODY_START)?.to_vec();
    let length = (BATCH_BODY_START - 12) as i32;
    out[8..12].copy_from_slice(&length.to_be_bytes());
    out[21] = 0;
    out[22] &= !0x7;
    out[57..61].copy_from_slice(&0i32.to_be_bytes());
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::tests::make_batch;
    use kafka_protocol::records::Compression;

    /// A produced batch must hold as many records as it claims, with offset deltas 0, 1, 2;
    /// keyless records are reported by index.
    #[test]
    fn produced_records_are_counted_and_in_order() {
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let b = make_batch(3, 10, compression);
            let h = BatchHeader::parse(&b).expect("header");
            assert_eq!(check_produced(&h, &b), Ok(vec![]), "{compression:?}");
            let mut claims_more = h;
            claims_more.record_count = i32::MAX - 10;
            assert!(matches!(
                check_produced(&claims_more, &b),
                Err(RecordsError::Invalid(_))
            ));
        }
        // The second record's offset delta (one byte after its length, attributes and
        // timestamp delta) made 2 instead of 1.
        let mut b = make_batch(3, 10, Compression::None);
        let h = BatchHeader::parse(&b).expect("header");
        let first_len = read_varint(&b[BATCH_BODY_START..]).expect("length").0 as usize;
        let second = BATCH_BODY_START + 1 + first_len;
        assert_eq!(b[second + 3], 2, "zigzag 1");
        b[second + 3] = 4;
        assert_eq!(
            check_produced(&h, &b),
            Err(RecordsError::Invalid(
                "the records' offset deltas are not 0, 1, 2, ... in order"
            ))
        );
    }
}
