//! The process allocator, with one guard: a single allocation of `HUGE_ALLOCATION_BYTES` or
//! more is served by an anonymous `MAP_NORESERVE` mapping instead of the system allocator.
//!
//! Why: kafka-protocol's array decoders reserve capacity from the element count read off the
//! wire before checking that the bytes are there. A forged count in an 8-byte request asks
//! for hundreds of gigabytes; the system allocator fails and Rust aborts the process. With
//! this guard the reservation is only address space (no page is touched until written), the
//! decoder then runs out of bytes and fails cleanly, and the mapping is returned. One
//! mechanism covers every request type, present and future, instead of a hand-written count
//! walker per API. Frames are bounded by `socket.request.max.bytes` before any decoding, so
//! what is actually written into such a mapping stays bounded by the frame.
//! (With `vm.overcommit_memory=2` the kernel refuses even this; the README says so.)

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations at least this large are mapped with MAP_NORESERVE. Legitimate allocations this
/// large are rare (a buffer for a frame near `socket.request.max.bytes` is 100 MiB), so the
/// system allocator keeps serving everything on the hot paths.
pub const HUGE_ALLOCATION_BYTES: usize = 1 << 30;

pub struct GuardedAlloc;

fn mapped(layout: &Layout) -> bool {
    layout.size() >= HUGE_ALLOCATION_BYTES && layout.align() <= 4096
}

unsafe fn map(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping with no address hint has no preconditions.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        p.cast()
    }
}

// SAFETY: every block is either the system allocator's or a mapping of exactly `layout.size()`
// bytes, chosen by the same pure function of the layout on allocation and deallocation.
unsafe impl GlobalAlloc for GuardedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if mapped(&layout) {
            unsafe { map(layout.size()) }
        } else {
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if mapped(&layout) {
            // Fresh anonymous pages are zero.
            unsafe { map(layout.size()) }
        } else {
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if mapped(&layout) {
            unsafe { libc::munmap(ptr.cast(), layout.size()) };
        } else {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !mapped(&layout) && !mapped(&new_layout) {
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            unsafe { self.dealloc(ptr, layout) };
        }
        new
    }
}

#[cfg(test)]
mod tests {
    /// A reservation far beyond the machine's memory succeeds and costs nothing until used.
    #[test]
    fn huge_reservation_does_not_abort() {
        let v: Vec<[u8; 64]> = Vec::with_capacity(1 << 32);
        assert!(v.capacity() >= 1 << 32);
    }
}
