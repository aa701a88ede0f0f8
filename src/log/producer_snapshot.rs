//! Kafka's producer state snapshot of a partition (`<offset, 20 digits>.snapshot`, written by
//! ProducerStateManager): each producer's epoch, last batch and open transaction as of the
//! offset in the file name, so recovery replays only the log past that offset to rebuild
//! idempotence and transaction state, not the whole partition.
//!
//! # Layout (format version 1, big-endian, as Kafka writes it)
//! ```text
//! version                   i16  1
//! crc                       u32  CRC32C of every byte after this field
//! entry count               i32
//! then per entry, 46 bytes:
//!   producer_id               i64
//!   producer_epoch            i16
//!   last_sequence             i32  sequence of the last record of its last batch
//!   last_offset               i64  offset of that record
//!   offset_delta              i32  last offset minus first offset of that batch
//!   timestamp                 i64  max timestamp of that batch
//!   coordinator_epoch         i32  epoch of the coordinator that wrote its last marker
//!   current_txn_first_offset  i64  first offset of its open transaction, -1 when none
//! ```
//! These bytes come from disk, so decoding is bounded and never panics: a file with another
//! version, a CRC that does not match, or a length other than its count says is an error, and
//! the caller drops that snapshot and replays from an older one, as Kafka does.

use crate::util::read::{get_i16, get_i32, get_i64, take_array};
/// One producer's state in a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotEntry {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub last_sequence: i32,
    pub last_offset: i64,
    pub offset_delta: i32,
    pub timestamp: i64,
    pub coordinator_epoch: i32,
    /// -1 when the producer has no open transaction.
    pub current_txn_first_offset: i64,
}

const VERSION: i16 = 1;
/// Bytes before the CRC's coverage starts: version and CRC.
const CRC_END: usize = 6;
const ENTRY_BYTES: usize = 46;

/// The snapshot file's bytes. More entries than an i32 can count cannot occur (one per
/// producer of a partition); past that many, the rest are left out so the file stays readable.
pub fn encode(entries: &[SnapshotEntry]) -> Vec<u8> {
    let count = i32::try_from(entries.len()).unwrap_or(i32::MAX);
    let mut out = Vec::with_capacity(CRC_END + 4 + entries.len() * ENTRY_BYTES);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&count.to_be_bytes());
    for e in entries.iter().take(count as usize) {
        out.extend_from_slice(&e.producer_id.to_be_bytes());
        out.extend_from_slice(&e.producer_epoch.to_be_bytes());
        out.extend_from_slice(&e.last_sequence.to_be_bytes());
        out.extend_from_slice(&e.last_offset.to_be_bytes());
        out.extend_from_slice(&e.offset_delta.to_be_bytes());
        out.extend_from_slice(&e.timestamp.to_be_bytes());
        out.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
        out.extend_from_slice(&e.current_txn_first_offset.to_be_bytes());
    }
    let crc = crc32c::crc32c(out.get(CRC_END..).unwrap_or_default());
    if let Some(field) = out.get_mut(2..CRC_END) {
        field.copy_from_slice(&crc.to_be_bytes());
    }
    out
}

/// The entries of a snapshot file. The count is checked against the bytes left before any
/// room is reserved for entries, so a forged count costs nothing.
pub fn decode(bytes: &[u8]) -> Result<Vec<SnapshotEntry>, &'static str> {
    const SHORT: &str = "producer snapshot: shorter than its header";
    let mut b = bytes;
    if get_i16(&mut b).ok_or(SHORT)? != VERSION {
        return Err("producer snapshot: unknown version");
    }
    let crc = u32::from_be_bytes(take_array(&mut b).ok_or(SHORT)?);
    if crc32c::crc32c(b) != crc {
        return Err("producer snapshot: CRC does not match");
    }
    let count = usize::try_from(get_i32(&mut b).ok_or(SHORT)?)
        .map_err(|_| "producer snapshot: negative entry count")?;
    match count.checked_mul(ENTRY_BYTES) {
        Some(n) if n == b.len() => {}
        Some(n) if n < b.len() => return Err("producer snapshot: bytes after its entries"),
        _ => return Err("producer snapshot: entry count larger than the file"),
    }
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        entries.push(get_entry(&mut b).ok_or("producer snapshot: truncated entry")?);
    }
    Ok(entries)
}

/// `{offset:020}.snapshot`, Kafka's name for the snapshot taken at `offset`.
pub fn file_name(offset: i64) -> String {
    format!("{offset:020}.snapshot")
}

/// The offset a snapshot file's name says; `None` for any other name.
pub fn parse_file_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".snapshot")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

fn get_entry(b: &mut &[u8]) -> Option<SnapshotEntry> {
    Some(SnapshotEntry {
        producer_id: get_i64(b)?,
        producer_epoch: get_i16(b)?,
        last_sequence: get_i32(b)?,
        last_offset: get_i64(b)?,
        offset_delta: get_i32(b)?,
        timestamp: get_i64(b)?,
        coordinator_epoch: get_i32(b)?,
        current_txn_first_offset: get_i64(b)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entries() -> Vec<SnapshotEntry> {
        vec![
            SnapshotEntry {
                producer_id: 1000,
                producer_epoch: 2,
                last_sequence: 41,
                last_offset: 120,
                offset_delta: 4,
                timestamp: 1_700_000_000_000,
                coordinator_epoch: 7,
                current_txn_first_offset: 100,
            },
            SnapshotEntry {
                producer_id: 1001,
                producer_epoch: 0,
                last_sequence: 9,
                last_offset: 130,
                offset_delta: 0,
                timestamp: 1_700_000_000_100,
                coordinator_epoch: -1,
                current_txn_first_offset: -1,
            },
        ]
    }

    /// Rewrites the CRC after a test changed the covered bytes on purpose.
    fn reseal(bytes: &mut [u8]) {
        let crc = crc32c::crc32c(&bytes[CRC_END..]);
        bytes[2..CRC_END].copy_from_slice(&crc.to_be_bytes());
    }

    #[test]
    fn round_trip() {
        assert_eq!(decode(&encode(&entries())), Ok(entries()));
        assert_eq!(decode(&encode(&[])), Ok(vec![]));
    }

    /// The bytes of a one-entry snapshot, against Kafka's PID_SNAPSHOT schema.
    #[test]
    fn layout() {
        let e = entries()[0];
        let mut body = vec![0, 0, 0, 1];
        body.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x03, 0xe8]); // producer id 1000
        body.extend_from_slice(&[0, 2]); // epoch
        body.extend_from_slice(&[0, 0, 0, 41]); // last sequence
        body.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 120]); // last offset
        body.extend_from_slice(&[0, 0, 0, 4]); // offset delta
        body.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
        body.extend_from_slice(&[0, 0, 0, 7]); // coordinator epoch
        body.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 100]); // txn first offset
        let mut want = vec![0, 1];
        want.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        want.extend_from_slice(&body);
        assert_eq!(want.len(), CRC_END + 4 + ENTRY_BYTES);
        assert_eq!(encode(&[e]), want);
        assert_eq!(decode(&want), Ok(vec![e]));
    }

    #[test]
    fn crc_damage_is_detected() {
        let good = encode(&entries());
        for at in [2, 6, 10, 30, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            assert_eq!(
                decode(&bad),
                Err("producer snapshot: CRC does not match"),
                "flip at {at}"
            );
        }
    }

    #[test]
    fn other_versions_are_refused() {
        let mut bytes = encode(&entries());
        bytes[1] = 2;
        assert_eq!(decode(&bytes), Err("producer snapshot: unknown version"));
    }

    /// A count far beyond the bytes, with a valid CRC, is refused by the count check, which
    /// runs before anything is reserved for the entries.
    #[test]
    fn forged_huge_count_is_refused_before_allocating() {
        for count in [i32::MAX, 3] {
            let mut bytes = encode(&entries());
            bytes[CRC_END..CRC_END + 4].copy_from_slice(&count.to_be_bytes());
            reseal(&mut bytes);
            assert_eq!(
                decode(&bytes),
                Err("producer snapshot: entry count larger than the file")
            );
        }
        let mut bytes = encode(&entries());
        bytes[CRC_END..CRC_END + 4].copy_from_slice(&(-1i32).to_be_bytes());
        reseal(&mut bytes);
        assert_eq!(
            decode(&bytes),
            Err("producer snapshot: negative entry count")
        );
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&entries());
        bytes.push(0);
        reseal(&mut bytes);
        assert_eq!(
            decode(&bytes),
            Err("producer snapshot: bytes after its entries")
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        let full = encode(&entries());
        for n in 0..full.len() {
            assert!(decode(&full[..n]).is_err(), "cut at {n}");
        }
    }

    #[test]
    fn file_names() {
        assert_eq!(file_name(42), "00000000000000000042.snapshot");
        assert_eq!(parse_file_name("00000000000000000042.snapshot"), Some(42));
        assert_eq!(parse_file_name(&file_name(i64::MAX)), Some(i64::MAX));
        assert_eq!(parse_file_name("42.snapshot"), None);
        assert_eq!(parse_file_name("00000000000000000042.log"), None);
        assert_eq!(parse_file_name("0000000000000000004x.snapshot"), None);
        assert_eq!(parse_file_name("99999999999999999999.snapshot"), None);
    }

    proptest! {
        /// Whatever is on disk, decoding never panics, also past a valid version and CRC.
        #[test]
        fn decode_never_panics(body in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&body);
            let mut sealed = vec![0u8, 1, 0, 0, 0, 0];
            sealed.extend_from_slice(&body);
            reseal(&mut sealed);
            let _ = decode(&sealed);
        }
    }
}
