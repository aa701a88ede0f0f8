//! Memory the allocator keeps after a burst goes back to the system. glibc's malloc keeps freed
//! memory in its arenas: after 10,000 connections each produced through their read buffers and
//! closed, an idle broker held 1.4-2 GiB it no longer used, and `malloc_trim(0)` returned all
//! but ~90 MiB of it (results/2026-11-30-scale-2). A trim every few seconds, on the blocking
//! pool, keeps an idle broker's resident memory to what it uses.

use std::future::Future;
use std::time::Duration;

/// How often free memory is handed back. A trim walks the free lists (milliseconds with
/// gigabytes free, microseconds with little), off the shard's thread.
pub const MEMORY_TRIM_INTERVAL: Duration = Duration::from_secs(10);

/// Trims free memory every `MEMORY_TRIM_INTERVAL` until `stop` completes.
pub async fn trim_until(stop: impl Future<Output = ()>) {
    futures::pin_mut!(stop);
    loop {
        let tick = glommio::timer::sleep(MEMORY_TRIM_INTERVAL);
        futures::pin_mut!(tick);
        if let futures::future::Either::Right(_) = futures::future::select(tick, &mut stop).await {
            return;
        }
        super::blocking::run(trim).await;
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim takes each arena's lock; it is safe beside other threads' allocations.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
