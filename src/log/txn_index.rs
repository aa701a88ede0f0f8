//! Kafka's aborted transaction index of one segment (`<base offset, 20 digits>.txnindex`,
//! TransactionIndex and AbortedTxn in Kafka): one entry per transaction aborted by a marker in
//! the segment, in the order the markers were written, so a read_committed fetch can tell the
//! consumer which producers' batches in its range to drop without reading the markers.
//!
//! # Layout (big-endian, 34-byte entries back to back, as Kafka writes them)
//! ```text
//! version             i16  0
//! producer_id         i64
//! first_offset        i64  first offset of the transaction in the partition
//! last_offset         i64  offset of its abort marker
//! last_stable_offset  i64  the partition's last stable offset once the abort was written
//! ```
//! These bytes come from disk, so decoding is bounded and never panics. Reading stops at the
//! first entry that cannot be one: a torn tail (the broker stopped mid-write), an unknown
//! version, or an all-zero entry (space written ahead of the entries). No real entry is all
//! zeros: Kafka's last stable offset of an abort is the marker's offset + 1 or the first
//! offset of another producer's open transaction, both above 0 when the marker is at 0.

use crate::util::read::{get_i64, take_array};
pub const ENTRY_BYTES: usize = 34;

const VERSION: i16 = 0;

/// One aborted transaction of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

/// The entry's bytes, to append to the index.
pub fn encode(e: &AbortedTxn) -> [u8; ENTRY_BYTES] {
    let mut out = [0u8; ENTRY_BYTES];
    let fields = [
        e.producer_id,
        e.first_offset,
        e.last_offset,
        e.last_stable_offset,
    ];
    let (version, rest) = out.split_at_mut(2);
    version.copy_from_slice(&VERSION.to_be_bytes());
    for (slot, field) in rest.chunks_exact_mut(8).zip(fields) {
        slot.copy_from_slice(&field.to_be_bytes());
    }
    out
}

/// The entries of an index file, up to the first that cannot be one (see the module doc).
pub fn decode_all(bytes: &[u8]) -> Vec<AbortedTxn> {
    bytes
        .chunks_exact(ENTRY_BYTES)
        .map_while(|entry| {
            if entry.iter().all(|&b| b == 0) {
                return None;
            }
            let mut b = entry;
            if i16::from_be_bytes(take_array(&mut b)?) != VERSION {
                return None;
            }
            Some(AbortedTxn {
                producer_id: get_i64(&mut b)?,
                first_offset: get_i64(&mut b)?,
                last_offset: get_i64(&mut b)?,
                last_stable_offset: get_i64(&mut b)?,
            })
        })
        .collect()
}

/// `{base_offset:020}.txnindex`, Kafka's name for the index of the segment at `base_offset`.
pub fn file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.txnindex")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn txns() -> Vec<AbortedTxn> {
        vec![
            AbortedTxn {
                producer_id: 1000,
                first_offset: 10,
                last_offset: 25,
                last_stable_offset: 26,
            },
            AbortedTxn {
                producer_id: 0,
                first_offset: 30,
                last_offset: 31,
                last_stable_offset: 0,
            },
            AbortedTxn {
                producer_id: -1,
                first_offset: i64::MIN,
                last_offset: i64::MAX,
                last_stable_offset: -1,
            },
        ]
    }

    fn file(txns: &[AbortedTxn]) -> Vec<u8> {
        txns.iter().flat_map(encode).collect()
    }

    #[test]
    fn round_trip() {
        assert_eq!(decode_all(&file(&txns())), txns());
        assert_eq!(decode_all(&[]), vec![]);
    }

    /// One entry byte by byte, against Kafka's AbortedTxn.
    #[test]
    fn layout() {
        let e = txns()[0];
        let mut want = vec![0, 0];
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x03, 0xe8]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 10]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 25]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 26]);
        assert_eq!(want.len(), ENTRY_BYTES);
        assert_eq!(encode(&e).to_vec(), want);
        assert_eq!(decode_all(&want), vec![e]);
    }

    /// A cut anywhere keeps exactly the whole entries before it.
    #[test]
    fn every_truncation_keeps_the_whole_entries() {
        let all = txns();
        let full = file(&all);
        for n in 0..=full.len() {
            assert_eq!(decode_all(&full[..n]), all[..n / ENTRY_BYTES], "cut at {n}");
        }
    }

    #[test]
    fn stops_at_an_unknown_version() {
        let all = txns();
        let mut bytes = file(&all);
        bytes[ENTRY_BYTES + 1] = 1;
        assert_eq!(decode_all(&bytes), all[..1]);
    }

    #[test]
    fn stops_at_preallocated_zeros() {
        let all = txns();
        let mut bytes = file(&all[..2]);
        bytes.extend_from_slice(&[0; ENTRY_BYTES * 3]);
        bytes.extend_from_slice(&encode(&all[2]));
        assert_eq!(decode_all(&bytes), all[..2]);
    }

    #[test]
    fn file_names() {
        assert_eq!(file_name(0), "00000000000000000000.txnindex");
        assert_eq!(file_name(1234), "00000000000000001234.txnindex");
    }

    proptest! {
        /// Whatever is on disk, decoding never panics and reads no more entries than fit.
        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            prop_assert!(decode_all(&bytes).len() <= bytes.len() / ENTRY_BYTES);
        }

        #[test]
        fn any_entries_round_trip(raw in prop::collection::vec(
            (any::<i64>(), any::<i64>(), any::<i64>(), 1i64..), 0..8)) {
            let all: Vec<AbortedTxn> = raw.into_iter().map(|(p, f, l, s)| AbortedTxn {
                producer_id: p, first_offset: f, last_offset: l, last_stable_offset: s,
            }).collect();
            prop_assert_eq!(decode_all(&file(&all)), all);
        }
    }
}
