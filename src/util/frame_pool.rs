//! Buffers for request frames larger than a connection's read buffer, reused instead of
//! allocated (and zeroed) for each request.
//!
//! A produce request of 1 MiB batches used to cost a fresh 1 MiB allocation, zeroed before
//! the socket read filled it: memset alone was 6% of the broker's CPU
//! (`results/2026-11-30-frame-pool`). A frame too large for the read buffer now gets a buffer
//! of its size class (a power of two) from the pool of the thread that reads it; the request
//! keeps it as `Bytes` (its records are slices of it, which may travel to the shard owning
//! their partition, or stay in the tail cache), and when the last slice is dropped the buffer
//! goes back to the pool of the thread dropping it. Each thread keeps at most
//! [`KEPT_BYTES_MAX`] in free buffers; the rest go back to the allocator.

use std::cell::RefCell;

use bytes::Bytes;

/// The smallest class: frames this large or smaller are read into the connection's buffer.
const MIN_CLASS_SHIFT: u32 = 15;
/// The largest class pooled (16 MiB); larger frames (rare: up to `socket.request.max.bytes`)
/// get a buffer of their own size, freed when done.
const MAX_CLASS_SHIFT: u32 = 24;
const CLASSES: usize = (MAX_CLASS_SHIFT - MIN_CLASS_SHIFT + 1) as usize;
/// Free buffers a thread keeps, in bytes: room for a few requests of each common size.
pub const KEPT_BYTES_MAX: usize = 32 << 20;

#[derive(Default)]
struct Free {
    classes: [Vec<Vec<u8>>; CLASSES],
    bytes: usize,
}

thread_local! {
    static FREE: RefCell<Free> = RefCell::default();
}

/// The class index of a buffer for `len` bytes, `None` past the largest class.
fn class_of(len: usize) -> Option<usize> {
    let shift = len
        .max(1)
        .next_power_of_two()
        .trailing_zeros()
        .max(MIN_CLASS_SHIFT);
    (shift <= MAX_CLASS_SHIFT).then(|| (shift - MIN_CLASS_SHIFT) as usize)
}

/// A frame's buffer: initialized bytes, at least as many as asked for.
pub struct FrameBuf {
    vec: Vec<u8>,
}

impl FrameBuf {
    /// A buffer of at least `len` bytes, from this thread's free buffers when one of the size
    /// is there (its bytes are whatever the last frame left: only what is read is used).
    pub fn take(len: usize) -> FrameBuf {
        let Some(class) = class_of(len) else {
            return FrameBuf { vec: vec![0; len] };
        };
        let reused = FREE
            .try_with(|f| {
                let mut f = f.borrow_mut();
                let v = f.classes[class].pop();
                if let Some(v) = &v {
                    f.bytes -= v.len();
                }
                v
            })
            .ok()
            .flatten();
        let vec = reused.unwrap_or_else(|| vec![0; 1 << (class as u32 + MIN_CLASS_SHIFT)]);
        FrameBuf { vec }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.vec
    }

    /// The first `len` bytes as `Bytes`; the buffer returns to a pool when the last slice of
    /// them is dropped.
    pub fn freeze(self, len: usize) -> Bytes {
        debug_assert!(len <= self.vec.len());
        Bytes::from_owner(self).slice(..len)
    }
}

impl AsRef<[u8]> for FrameBuf {
    fn as_ref(&self) -> &[u8] {
        &self.vec
    }
}

impl Drop for FrameBuf {
    fn drop(&mut self) {
        let len = self.vec.len();
        let Some(class) = class_of(len).filter(|&c| len == 1 << (c as u32 + MIN_CLASS_SHIFT))
        else {
            return;
        };
        let vec = std::mem::take(&mut self.vec);
        // A thread being torn down has no pool left: the buffer is then freed.
        let _ = FREE.try_with(|f| {
            let mut f = f.borrow_mut();
            if f.bytes + len <= KEPT_BYTES_MAX {
                f.bytes += len;
                f.classes[class].push(vec);
            }
        });
    }
}

/// Bytes this thread keeps in free buffers.
#[cfg(test)]
fn kept_bytes() -> usize {
    FREE.with(|f| f.borrow().bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_once_every_slice_is_dropped() {
        let mut b = FrameBuf::take(100_000);
        assert_eq!(b.bytes_mut().len(), 128 * 1024);
        b.bytes_mut()[..3].copy_from_slice(b"abc");
        let first = b.bytes_mut().as_ptr();
        let bytes = b.freeze(100_000);
        let part = bytes.slice(1..3);
        drop(bytes);
        assert_eq!(kept_bytes(), 0, "a slice still holds the buffer");
        assert_eq!(&part[..], b"bc");
        drop(part);
        assert_eq!(kept_bytes(), 128 * 1024);
        let mut again = FrameBuf::take(70_000);
        assert_eq!(again.bytes_mut().as_ptr(), first);
        assert_eq!(kept_bytes(), 0);
    }

    #[test]
    fn what_is_kept_is_bounded_and_odd_sizes_are_not_kept() {
        let big = FrameBuf::take((16 << 20) + 1);
        assert_eq!(big.vec.len(), (16 << 20) + 1);
        drop(big);
        assert_eq!(kept_bytes(), 0);
        let held: Vec<FrameBuf> = (0..4).map(|_| FrameBuf::take(16 << 20)).collect();
        drop(held);
        assert_eq!(kept_bytes(), KEPT_BYTES_MAX);
    }

    #[test]
    fn a_slice_dropped_on_another_thread_goes_to_that_threads_pool() {
        let bytes = FrameBuf::take(40_000).freeze(40_000);
        std::thread::spawn(move || {
            drop(bytes);
            assert_eq!(kept_bytes(), 64 * 1024);
        })
        .join()
        .unwrap();
        assert_eq!(kept_bytes(), 0);
    }
}
