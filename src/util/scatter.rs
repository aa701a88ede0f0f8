//! A response buffer that takes large `Bytes` by reference instead of copying them: an encoder
//! writes into it as into any buffer, and where it puts one of the slices it was told of (the
//! record bytes of a fetch response, as the log holds them), the buffer keeps a clone of that
//! `Bytes` as a part of its own. What comes out is the frame as a list of parts, for one
//! vectored write: header and fields in small owned parts, records where they already are.
//!
//! It recognises a slice by address and length, in the order it was told of them, so the
//! encoder needs no change: kafka-protocol writes a `Bytes` field with one `put_slice` of the
//! whole value.

use bytes::{buf::UninitSlice, BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::buf::ByteBufMut;

/// Slices shorter than this are copied: below it, a copy costs less than another part
/// (another iovec, another `Bytes` clone). Sized to a page.
pub const SCATTER_REF_BYTES_MIN: usize = 4096;

pub struct ScatterBuf {
    /// Finished parts, in order.
    parts: Vec<Bytes>,
    /// Bytes in `parts`.
    parts_len: usize,
    /// Where the encoder writes now.
    head: BytesMut,
    /// The slices to take by reference, in the order the encoder writes them; `next` is the
    /// first not met yet.
    refs: Vec<Bytes>,
    next: usize,
}

impl ScatterBuf {
    /// A buffer that takes each of `refs` (those of at least `SCATTER_REF_BYTES_MIN` bytes) by
    /// reference when the encoder writes it, in this order; `owned_capacity`: the bytes
    /// expected besides them.
    pub fn new(refs: impl IntoIterator<Item = Bytes>, owned_capacity: usize) -> ScatterBuf {
        ScatterBuf {
            parts: Vec::new(),
            parts_len: 0,
            head: BytesMut::with_capacity(owned_capacity),
            refs: refs
                .into_iter()
                .filter(|b| b.len() >= SCATTER_REF_BYTES_MIN)
                .collect(),
            next: 0,
        }
    }

    /// The bytes written so far.
    pub fn len(&self) -> usize {
        self.parts_len + self.head.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes written, as parts in order (no empty part).
    pub fn finish(mut self) -> Vec<Bytes> {
        self.seal_head();
        self.parts
    }

    fn seal_head(&mut self) {
        if !self.head.is_empty() {
            let head = self.head.split().freeze();
            self.parts_len += head.len();
            self.parts.push(head);
        }
    }

    /// Makes everything written one owned part again, so that it can be changed in place
    /// (`ByteBufMut::range`/`seek` below the current part). No encoder of a message does
    /// this (only record batch encoders, which write into their own buffers): it keeps the
    /// buffer correct, not fast.
    fn merge(&mut self) {
        if self.parts.is_empty() {
            return;
        }
        let mut all = BytesMut::with_capacity(self.len() + self.head.capacity());
        for p in self.parts.drain(..) {
            all.extend_from_slice(&p);
        }
        all.extend_from_slice(&self.head);
        self.parts_len = 0;
        self.head = all;
    }
}

// SAFETY: every method hands on to `head`, a `BytesMut`, whose `BufMut` is sound; `put_slice`
// either does the same or records a part, writing no memory.
unsafe impl BufMut for ScatterBuf {
    fn remaining_mut(&self) -> usize {
        self.head.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller's promise (`cnt` bytes of `chunk_mut` initialised) is `head`'s.
        unsafe { self.head.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.head.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        if let Some(r) = self.refs.get(self.next) {
            if r.as_ptr() == src.as_ptr() && r.len() == src.len() {
                let r = r.clone();
                self.next += 1;
                self.seal_head();
                self.parts_len += r.len();
                self.parts.push(r);
                return;
            }
        }
        self.head.extend_from_slice(src);
    }
}

impl ByteBufMut for ScatterBuf {
    fn offset(&self) -> usize {
        self.len()
    }

    fn seek(&mut self, offset: usize) {
        if offset < self.parts_len {
            self.merge();
        }
        self.head.resize(offset - self.parts_len, 0);
    }

    fn range(&mut self, r: std::ops::Range<usize>) -> &mut [u8] {
        if r.start < self.parts_len {
            self.merge();
        }
        let at = self.parts_len;
        &mut self.head[r.start - at..r.end - at]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{FetchResponse, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn response(records: &[Bytes]) -> FetchResponse {
        let partitions = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                PartitionData::default()
                    .with_partition_index(i as i32)
                    .with_high_watermark(7)
                    .with_records(Some(r.clone()))
            })
            .collect();
        FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
            .with_topic(TopicName(StrBytes::from_static_str("t")))
            .with_partitions(partitions)])
    }

    /// Encoded through the scatter buffer, a fetch response has the same bytes as encoded into
    /// one buffer, in every version, and the large record slices are the log's own memory
    /// (the same address), not copies.
    #[test]
    fn same_bytes_and_records_by_reference() {
        let records: Vec<Bytes> = [10_000usize, 100, 0, 5000]
            .iter()
            .map(|&n| Bytes::from((0..n).map(|i| i as u8).collect::<Vec<_>>()))
            .collect();
        let resp = response(&records);
        for version in 4..=12 {
            let mut flat = BytesMut::new();
            resp.encode(&mut flat, version).unwrap();
            let mut buf = ScatterBuf::new(records.iter().cloned(), 64);
            resp.encode(&mut buf, version).unwrap();
            assert_eq!(buf.len(), flat.len());
            let parts = buf.finish();
            assert_eq!(parts.concat(), flat.to_vec(), "version {version}");
            for big in [&records[0], &records[3]] {
                assert!(
                    parts.iter().any(|p| p.as_ptr() == big.as_ptr()),
                    "version {version}: a large record slice was copied"
                );
            }
            assert!(parts.iter().all(|p| !p.is_empty()));
        }
    }

    /// Slices equal in content but elsewhere in memory are copied, and so is a slice told of
    /// out of order: only what the encoder writes in the expected order is referenced.
    #[test]
    fn only_the_named_slices_are_referenced() {
        let a = Bytes::from(vec![1u8; 8192]);
        let twin = Bytes::from(vec![1u8; 8192]);
        let mut buf = ScatterBuf::new([a.clone()], 0);
        buf.put_slice(&twin);
        buf.put_slice(&a);
        let parts = buf.finish();
        assert_eq!(parts.len(), 2);
        assert_ne!(parts[0].as_ptr(), twin.as_ptr());
        assert_eq!(parts[1].as_ptr(), a.as_ptr());
    }

    /// Changing bytes already written (what a length back-patch does) works across parts.
    #[test]
    fn range_and_seek_reach_back_across_parts() {
        let a = Bytes::from(vec![9u8; 8192]);
        let mut buf = ScatterBuf::new([a.clone()], 0);
        buf.put_i32(0);
        buf.put_slice(&a);
        buf.put_u8(5);
        buf.range(0..4).copy_from_slice(&7i32.to_be_bytes());
        let end = buf.offset();
        buf.seek(end + 2);
        let out = buf.finish().concat();
        assert_eq!(&out[..4], &7i32.to_be_bytes());
        assert_eq!(out.len(), 4 + 8192 + 1 + 2);
        assert_eq!(out[4 + 8192], 5);
    }
}
