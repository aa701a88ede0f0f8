//! glommio io_memory sizing: how much registered memory each shard gets, from the memlock limit.

pub use super::defaults::MIN_IO_MEMORY_BYTES;
use super::defaults::MIN_SHARDS;

/// Largest explicit `shardlog.io.memory.bytes`; more than this per shard only pins memory for nothing.
pub const MAX_IO_MEMORY_BYTES: usize = 1 << 30;
/// Most io_memory the computed default gives a shard: glommio's own default.
pub const IO_MEMORY_CAP_BYTES: usize = 10 * 1024 * 1024;
/// Least io_memory the computed default gives a shard, even when the memlock limit cannot hold it;
/// glommio then skips buffer registration (with a warning) and uses ordinary memory.
pub const IO_MEMORY_FLOOR_BYTES: usize = 256 * 1024;
/// The computed default is rounded down to a multiple of this.
pub const IO_MEMORY_ALIGN_BYTES: usize = 64 * 1024;
/// Locked memory left out of the budget for the rest of the process and other processes of the same user.
pub const IO_MEMORY_HEADROOM_BYTES: usize = 1024 * 1024;
/// How many times glommio pins each executor's io_memory: it registers the same buffer with its
/// main, poll and latency rings, and the kernel charges each registration separately
/// (measured: io_memory 1 MiB shows VmPin 3072 kB).
pub const IO_MEMORY_REGISTRATIONS_PER_SHARD: usize = 3;
/// Locked memory charged per executor for glommio's three io_uring rings themselves, on top of
/// the registered buffers (measured at about 500 KiB on Linux 6.18 with glommio 0.9's ring depth).
pub const IO_RING_LOCKED_BYTES_PER_SHARD: usize = 512 * 1024;
/// Memlock limit assumed when getrlimit fails: the common distribution default.
pub const ASSUMED_MEMLOCK_LIMIT_BYTES: usize = 8 * 1024 * 1024;

/// Default glommio io_memory per shard, sized to fit the locked-memory limit.
///
/// glommio preallocates `io_memory` per executor and registers it with io_uring, which pins it and
/// charges it against RLIMIT_MEMLOCK of the user (summed over all of that user's processes), unless
/// the process has CAP_IPC_LOCK. The buffer is registered with each of the executor's three rings
/// (main, poll, latency) and each registration is charged in full; the rings themselves cost about
/// another 500 KiB. When registration does not fit, glommio warns and falls back to unregistered
/// memory (slower); when a ring does not fit, the executor fails to start, and glommio refuses to
/// start at all under a 512 KiB limit. Distributions commonly set the limit to 8 MiB.
///
/// So: if the soft limit is unlimited, use [`IO_MEMORY_CAP_BYTES`]. Otherwise take the limit minus
/// [`IO_MEMORY_HEADROOM_BYTES`], divide it among `shards`, subtract [`IO_RING_LOCKED_BYTES_PER_SHARD`],
/// divide by [`IO_MEMORY_REGISTRATIONS_PER_SHARD`], round down to [`IO_MEMORY_ALIGN_BYTES`], and
/// clamp to [`IO_MEMORY_FLOOR_BYTES`]..=[`IO_MEMORY_CAP_BYTES`]. An 8 MiB limit with 2 shards gives
/// 1 MiB per shard: 2 x (3 x 1 MiB + 0.5 MiB) = 7 MiB locked.
pub fn default_io_memory_bytes(shards: usize) -> usize {
    io_memory_for_memlock_limit(memlock_soft_limit_bytes(), shards)
}

/// The soft RLIMIT_MEMLOCK in bytes, None when unlimited.
pub(super) fn memlock_soft_limit_bytes() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into the struct we pass, which outlives the call.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) };
    if rc != 0 {
        return Some(ASSUMED_MEMLOCK_LIMIT_BYTES);
    }
    if limit.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    Some(usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX))
}

/// The sizing rule of [`default_io_memory_bytes`] for a given limit (None = unlimited).
pub(super) fn io_memory_for_memlock_limit(limit_bytes: Option<usize>, shards: usize) -> usize {
    let Some(limit) = limit_bytes else {
        return IO_MEMORY_CAP_BYTES;
    };
    let per_shard = limit.saturating_sub(IO_MEMORY_HEADROOM_BYTES) / shards.max(MIN_SHARDS);
    let per_registration = per_shard.saturating_sub(IO_RING_LOCKED_BYTES_PER_SHARD)
        / IO_MEMORY_REGISTRATIONS_PER_SHARD;
    let aligned = per_registration / IO_MEMORY_ALIGN_BYTES * IO_MEMORY_ALIGN_BYTES;
    aligned.clamp(IO_MEMORY_FLOOR_BYTES, IO_MEMORY_CAP_BYTES)
}
