//! The records of `__transaction_state`, in Kafka's own formats (TransactionLog and the
//! generated TransactionLogKey/Value schemas), so the topic reads the same as a Kafka broker's
//! and Kafka's tools could decode it.
//!
//! A key names a transactional id; its value is that id's transaction metadata: producer id
//! and epoch, timeout, status, the partitions in the transaction and two timestamps. A null
//! value deletes (a tombstone). Values are written in version 0, as Kafka writes them unless
//! transaction version 2 is enabled, and read in versions 0 and 1.
//!
//! These bytes come from disk, so decoding is bounded and never panics: a short or malformed
//! record is `None`, and loading skips it.

use crate::util::read::{get_i16, get_i32, get_i64, get_i8, take, take_array};
use bytes::{BufMut, Bytes, BytesMut};

/// The state of a transactional id's transaction, with Kafka's ids (TransactionState), which
/// are the byte the value stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum TxnStatus {
    Empty = 0,
    Ongoing = 1,
    PrepareCommit = 2,
    PrepareAbort = 3,
    CompleteCommit = 4,
    CompleteAbort = 5,
    Dead = 6,
    PrepareEpochFence = 7,
}

impl TxnStatus {
    /// Every status, in id order.
    pub const ALL: [TxnStatus; 8] = [
        TxnStatus::Empty,
        TxnStatus::Ongoing,
        TxnStatus::PrepareCommit,
        TxnStatus::PrepareAbort,
        TxnStatus::CompleteCommit,
        TxnStatus::CompleteAbort,
        TxnStatus::Dead,
        TxnStatus::PrepareEpochFence,
    ];

    /// The byte Kafka stores for this status.
    pub fn id(self) -> i8 {
        self as i8
    }

    /// The status with Kafka's id `id`; `None` for an id Kafka does not define.
    pub fn from_id(id: i8) -> Option<TxnStatus> {
        TxnStatus::ALL.into_iter().find(|s| s.id() == id)
    }
}

/// The metadata of one transactional id: the value of its `__transaction_state` record.
///
/// # Layout (big-endian)
/// ```text
/// version 0 (written and read):
///   version                  i16  0
///   producer_id              i64
///   producer_epoch           i16
///   transaction_timeout_ms   i32
///   transaction_status       i8   TxnStatus id
///   partitions               i32  topic count, -1 = null; then per topic:
///     topic                    i16 length, UTF-8 bytes
///     partition_ids            i32 count, then i32 each
///   last_update_timestamp_ms i64
///   start_timestamp_ms       i64
/// version 1 (read only; the first flexible version): the same fields in the same order, but
///   every array and string length is an unsigned varint of length + 1 (0 = null), each topic
///   entry ends in a tagged-field section, and so does the value. A tagged-field section is an
///   unsigned varint count, then per field an unsigned varint tag, an unsigned varint size and
///   that many bytes. Kafka's value tags (previous and next producer id, client transaction
///   version) have no place here and are skipped, like any unknown tag.
/// ```
/// The partitions are null when the status is `Empty` (Kafka writes them so, and ignores them
/// when it reads an `Empty` value) and may be null in other states too; null reads as none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnValue {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub status: TxnStatus,
    /// Topics and their partition ids in the transaction; never written for `Empty`.
    pub partitions: Vec<(String, Vec<i32>)>,
    pub last_update_ms: i64,
    pub start_ms: i64,
}

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;
const FLEXIBLE_VALUE_VERSION: i16 = 1;

/// The key of a transactional id's record: `version i16 = 0`, then the id as an i16 length and
/// its UTF-8 bytes. An id longer than a string can hold (32,767 bytes) is cut at the last
/// character boundary that fits; callers reject such ids before they get here.
pub fn encode_key(transactional_id: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(4 + transactional_id.len());
    b.put_i16(KEY_VERSION);
    put_str(&mut b, transactional_id);
    b.freeze()
}

/// The transactional id a key names; `None` when it is not a version 0 transaction key or is
/// malformed. Bytes after the id are ignored, as Kafka's reader does.
pub fn decode_key(bytes: &[u8]) -> Option<String> {
    let mut b = bytes;
    if get_i16(&mut b)? != KEY_VERSION {
        return None;
    }
    get_str(&mut b)
}

/// A value in version 0, the version Kafka writes unless transaction version 2 is enabled.
/// An `Empty` value's partitions are written as null whatever the field holds.
pub fn encode_value(v: &TxnValue) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(VALUE_VERSION);
    b.put_i64(v.producer_id);
    b.put_i16(v.producer_epoch);
    b.put_i32(v.timeout_ms);
    b.put_i8(v.status.id());
    if v.status == TxnStatus::Empty {
        b.put_i32(-1);
    } else {
        let topics = put_count(&mut b, v.partitions.len());
        for (topic, ids) in v.partitions.iter().take(topics) {
            put_str(&mut b, topic);
            let n = put_count(&mut b, ids.len());
            for id in ids.iter().take(n) {
                b.put_i32(*id);
            }
        }
    }
    b.put_i64(v.last_update_ms);
    b.put_i64(v.start_ms);
    b.freeze()
}

/// Decodes a value of version 0 or 1; `None` for another version, an unknown status or
/// malformed bytes. Bytes after the value are ignored, as Kafka's reader does.
pub fn decode_value(bytes: &[u8]) -> Option<TxnValue> {
    let mut b = bytes;
    let flexible = match get_i16(&mut b)? {
        VALUE_VERSION => false,
        FLEXIBLE_VALUE_VERSION => true,
        _ => return None,
    };
    let producer_id = get_i64(&mut b)?;
    let producer_epoch = get_i16(&mut b)?;
    let timeout_ms = get_i32(&mut b)?;
    let status = TxnStatus::from_id(get_i8(&mut b)?)?;
    let partitions = if flexible {
        get_compact_partitions(&mut b)?
    } else {
        get_partitions(&mut b)?
    };
    let last_update_ms = get_i64(&mut b)?;
    let start_ms = get_i64(&mut b)?;
    if flexible {
        skip_tagged_fields(&mut b)?;
    }
    Some(TxnValue {
        producer_id,
        producer_epoch,
        timeout_ms,
        status,
        // Kafka ignores the partitions of an Empty transaction; so do we.
        partitions: if status == TxnStatus::Empty {
            Vec::new()
        } else {
            partitions
        },
        last_update_ms,
        start_ms,
    })
}

/// The version 0 partitions array; null reads as empty.
fn get_partitions(b: &mut &[u8]) -> Option<Vec<(String, Vec<i32>)>> {
    let Ok(count) = usize::try_from(get_i32(b)?) else {
        return Some(Vec::new());
    };
    // A topic takes at least 6 bytes (empty name, empty id array): bound the count by what is
    // there before reserving room for it.
    if count > b.len() / 6 {
        return None;
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let topic = get_str(b)?;
        // The id array is not nullable: a negative count is malformed.
        let n = usize::try_from(get_i32(b)?).ok()?;
        out.push((topic, get_i32s(b, n)?));
    }
    Some(out)
}

/// The version 1 (compact) partitions array; null reads as empty.
fn get_compact_partitions(b: &mut &[u8]) -> Option<Vec<(String, Vec<i32>)>> {
    let Some(count) = get_compact_len(b)? else {
        return Some(Vec::new());
    };
    // A topic takes at least 3 bytes (name length, id array length, tag count).
    if count > b.len() / 3 {
        return None;
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let topic = get_compact_str(b)?;
        let n = get_compact_len(b)??;
        let ids = get_i32s(b, n)?;
        skip_tagged_fields(b)?;
        out.push((topic, ids));
    }
    Some(out)
}

/// `n` big-endian i32s, checked against the bytes left before reserving room for them.
fn get_i32s(b: &mut &[u8], n: usize) -> Option<Vec<i32>> {
    if n > b.len() / 4 {
        return None;
    }
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(get_i32(b)?);
    }
    Some(ids)
}

/// Skips a tagged-field section. Each field takes at least two bytes, so a forged count runs
/// out of bytes after at most half the input.
fn skip_tagged_fields(b: &mut &[u8]) -> Option<()> {
    let count = get_uvarint(b)?;
    for _ in 0..count {
        let _tag = get_uvarint(b)?;
        let size = usize::try_from(get_uvarint(b)?).ok()?;
        take(b, size)?;
    }
    Some(())
}

/// Writes an i32 element count and returns how many elements it covers: all of them, unless
/// there are more than an i32 can count.
fn put_count(b: &mut BytesMut, len: usize) -> usize {
    let n = i32::try_from(len).unwrap_or(i32::MAX);
    b.put_i32(n);
    n as usize
}

fn put_str(b: &mut BytesMut, s: &str) {
    let mut len = s.len().min(i16::MAX as usize);
    while !s.is_char_boundary(len) {
        len -= 1;
    }
    let s = s.get(..len).unwrap_or_default();
    b.put_i16(s.len() as i16);
    b.put_slice(s.as_bytes());
}

/// An unsigned varint of at most 5 bytes (Kafka's limit) whose value fits a u32.
fn get_uvarint(b: &mut &[u8]) -> Option<u32> {
    let mut value: u64 = 0;
    for i in 0..5 {
        let [byte] = take_array::<1>(b)?;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return u32::try_from(value).ok();
        }
    }
    None
}

/// A compact length (varint of length + 1); `Some(None)` is null.
fn get_compact_len(b: &mut &[u8]) -> Option<Option<usize>> {
    match get_uvarint(b)? {
        0 => Some(None),
        n => Some(Some(usize::try_from(n - 1).ok()?)),
    }
}

/// A non-nullable string: i16 length, then UTF-8 bytes.
fn get_str(b: &mut &[u8]) -> Option<String> {
    let len = usize::try_from(get_i16(b)?).ok()?;
    utf8(take(b, len)?)
}

/// A non-nullable compact string; Kafka's strings hold at most 32,767 bytes.
fn get_compact_str(b: &mut &[u8]) -> Option<String> {
    let len = get_compact_len(b)??;
    if len > i16::MAX as usize {
        return None;
    }
    utf8(take(b, len)?)
}

fn utf8(bytes: &[u8]) -> Option<String> {
    std::str::from_utf8(bytes).ok().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ongoing() -> TxnValue {
        TxnValue {
            producer_id: 4000,
            producer_epoch: 3,
            timeout_ms: 60_000,
            status: TxnStatus::Ongoing,
            partitions: vec![("orders".into(), vec![0, 2]), ("audit".into(), vec![7])],
            last_update_ms: 1_700_000_000_500,
            start_ms: 1_700_000_000_000,
        }
    }

    /// Appends a compact length (length + 1) that fits one varint byte.
    fn compact(out: &mut Vec<u8>, len: u8) {
        assert!(len < 0x7f);
        out.push(len + 1);
    }

    /// The ongoing() value in version 1, with a tag in a topic entry and Kafka's three value
    /// tags, all of which are skipped.
    fn ongoing_v1() -> Vec<u8> {
        let mut v = vec![0, 1];
        v.extend_from_slice(&4000i64.to_be_bytes());
        v.extend_from_slice(&3i16.to_be_bytes());
        v.extend_from_slice(&60_000i32.to_be_bytes());
        v.push(1);
        compact(&mut v, 2);
        compact(&mut v, 6);
        v.extend_from_slice(b"orders");
        compact(&mut v, 2);
        v.extend_from_slice(&0i32.to_be_bytes());
        v.extend_from_slice(&2i32.to_be_bytes());
        v.extend_from_slice(&[1, 9, 2, 0xaa, 0xbb]); // one unknown tag (9), two bytes
        compact(&mut v, 5);
        v.extend_from_slice(b"audit");
        compact(&mut v, 1);
        v.extend_from_slice(&7i32.to_be_bytes());
        v.push(0);
        v.extend_from_slice(&1_700_000_000_500i64.to_be_bytes());
        v.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
        v.push(3);
        v.extend_from_slice(&[0, 8]); // PreviousProducerId
        v.extend_from_slice(&3999i64.to_be_bytes());
        v.extend_from_slice(&[1, 8]); // NextProducerId
        v.extend_from_slice(&(-1i64).to_be_bytes());
        v.extend_from_slice(&[2, 2, 0, 2]); // ClientTransactionVersion
        v
    }

    #[test]
    fn statuses_have_kafkas_ids() {
        for (i, s) in TxnStatus::ALL.into_iter().enumerate() {
            assert_eq!(s.id(), i as i8);
            assert_eq!(TxnStatus::from_id(i as i8), Some(s));
        }
        assert_eq!(TxnStatus::from_id(8), None);
        assert_eq!(TxnStatus::from_id(-1), None);
    }

    #[test]
    fn keys_round_trip() {
        for id in ["", "tx-1", "ünïcode-id"] {
            assert_eq!(decode_key(&encode_key(id)).as_deref(), Some(id));
        }
    }

    /// The key is `version 0, i16 length, bytes`, and another key version is not ours.
    #[test]
    fn key_layout() {
        assert_eq!(&encode_key("abc")[..], &[0, 0, 0, 3, b'a', b'b', b'c']);
        assert_eq!(decode_key(&[0, 1, 0, 3, b'a', b'b', b'c']), None);
        assert_eq!(decode_key(&[0, 0, 0xff, 0xff]), None, "null id");
        assert_eq!(decode_key(&[0, 0, 0, 2, 0xc3, 0x28]), None, "not UTF-8");
    }

    /// An over-long id is cut at a character boundary, so the key still decodes.
    #[test]
    fn overlong_key_is_cut_on_a_character() {
        let id = "é".repeat(20_000);
        let decoded = decode_key(&encode_key(&id)).expect("decodes");
        assert_eq!(decoded.len(), 32_766);
        assert!(id.starts_with(&decoded));
    }

    #[test]
    fn values_round_trip_in_every_status() {
        for status in TxnStatus::ALL {
            let mut v = ongoing();
            v.status = status;
            if status == TxnStatus::Empty {
                v.partitions.clear();
            }
            assert_eq!(decode_value(&encode_value(&v)), Some(v));
        }
        let mut none = ongoing();
        none.status = TxnStatus::CompleteCommit;
        none.partitions.clear();
        assert_eq!(decode_value(&encode_value(&none)), Some(none));
    }

    /// Version 0 byte by byte, against the TransactionLogValue schema.
    #[test]
    fn value_v0_layout() {
        let mut want = vec![0, 0];
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x0f, 0xa0]); // producer id 4000
        want.extend_from_slice(&[0, 3]); // epoch
        want.extend_from_slice(&[0, 0, 0xea, 0x60]); // timeout 60000
        want.push(1); // Ongoing
        want.extend_from_slice(&[0, 0, 0, 2]); // two topics
        want.extend_from_slice(&[0, 6]);
        want.extend_from_slice(b"orders");
        want.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2]);
        want.extend_from_slice(&[0, 5]);
        want.extend_from_slice(b"audit");
        want.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 7]);
        want.extend_from_slice(&1_700_000_000_500i64.to_be_bytes());
        want.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
        assert_eq!(&encode_value(&ongoing())[..], &want[..]);
        assert_eq!(decode_value(&want), Some(ongoing()));
    }

    /// An Empty transaction's partitions are written as null and ignored when read.
    #[test]
    fn empty_partitions_are_null() {
        let mut v = ongoing();
        v.status = TxnStatus::Empty;
        let bytes = encode_value(&v);
        assert_eq!(&bytes[17..21], &[0xff, 0xff, 0xff, 0xff]);
        v.partitions.clear();
        assert_eq!(decode_value(&bytes), Some(v));
    }

    /// Null partitions in a state other than Empty read as none.
    #[test]
    fn null_partitions_read_as_none() {
        let mut v = ongoing();
        v.status = TxnStatus::CompleteAbort;
        v.partitions.clear();
        let mut bytes = encode_value(&v).to_vec();
        bytes[17..21].copy_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(decode_value(&bytes), Some(v.clone()));

        let mut flexible = ongoing_v1();
        let start = 2 + 8 + 2 + 4 + 1;
        let end = flexible.len() - 16 - 1 - 10 - 10 - 4;
        flexible.splice(start..end, [0u8]);
        v.status = TxnStatus::Ongoing;
        assert_eq!(decode_value(&flexible), Some(v));
    }

    #[test]
    fn reads_flexible_version_1() {
        assert_eq!(decode_value(&ongoing_v1()), Some(ongoing()));
    }

    #[test]
    fn rejects_unknown_versions_and_statuses() {
        let mut bytes = encode_value(&ongoing()).to_vec();
        bytes[1] = 2;
        assert_eq!(decode_value(&bytes), None);
        bytes[1] = 0;
        bytes[16] = 8;
        assert_eq!(decode_value(&bytes), None);
    }

    /// A forged topic or id count larger than the bytes is malformed, not an allocation.
    #[test]
    fn forged_counts_are_malformed() {
        let mut bytes = encode_value(&ongoing()).to_vec();
        bytes[17..21].copy_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(decode_value(&bytes), None);
        let mut bytes = encode_value(&ongoing()).to_vec();
        bytes[29..33].copy_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(decode_value(&bytes), None);
        let mut bytes = encode_value(&ongoing()).to_vec();
        bytes[29..33].copy_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(decode_value(&bytes), None, "the id array is not nullable");
    }

    #[test]
    fn every_truncation_is_none() {
        let key = encode_key("tx-1");
        for n in 0..key.len() {
            assert_eq!(decode_key(&key[..n]), None, "key cut at {n}");
        }
        for full in [encode_value(&ongoing()).to_vec(), ongoing_v1()] {
            for n in 0..full.len() {
                assert_eq!(decode_value(&full[..n]), None, "value cut at {n}");
            }
        }
    }

    #[test]
    fn varints() {
        let mut b: &[u8] = &[0x96, 0x01];
        assert_eq!(get_uvarint(&mut b), Some(150));
        let mut b: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0x0f];
        assert_eq!(get_uvarint(&mut b), Some(u32::MAX));
        let mut b: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0x1f];
        assert_eq!(get_uvarint(&mut b), None, "over 32 bits");
        let mut b: &[u8] = &[0x80, 0x80, 0x80, 0x80, 0x80, 0x00];
        assert_eq!(get_uvarint(&mut b), None, "over 5 bytes");
    }

    fn status() -> impl Strategy<Value = TxnStatus> {
        (1i8..8).prop_map(|id| TxnStatus::from_id(id).unwrap_or(TxnStatus::Ongoing))
    }

    proptest! {
        /// Whatever is on disk, decoding never panics.
        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_key(&bytes);
            let _ = decode_value(&bytes);
            let mut flexible = vec![0u8, 1];
            flexible.extend_from_slice(&bytes);
            let _ = decode_value(&flexible);
        }

        /// Valid values of both versions with bytes overwritten reach every field's decoder;
        /// still no panic.
        #[test]
        fn damaged_values_never_panic(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
            for mut bytes in [encode_value(&ongoing()).to_vec(), ongoing_v1()] {
                for (at, byte) in &edits {
                    let len = bytes.len();
                    bytes[at % len] = *byte;
                }
                let _ = decode_value(&bytes);
            }
        }

        #[test]
        fn any_value_round_trips(
            producer_id in any::<i64>(),
            producer_epoch in any::<i16>(),
            timeout_ms in any::<i32>(),
            status in status(),
            partitions in prop::collection::vec(
                (".{0,12}", prop::collection::vec(any::<i32>(), 0..5)), 0..4),
            last_update_ms in any::<i64>(),
            start_ms in any::<i64>(),
        ) {
            let v = TxnValue { producer_id, producer_epoch, timeout_ms, status, partitions,
                               last_update_ms, start_ms };
            prop_assert_eq!(decode_value(&encode_value(&v)), Some(v));
        }
    }
}
