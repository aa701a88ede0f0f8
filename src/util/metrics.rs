//! Each shard's counters and histograms: plain cells in a thread-local, bumped by the layer
//! that sees the event (connections and requests in `net`, syncs in `log`), never shared
//! between threads. `/metrics` asks every shard for a `Snapshot` (a copy, sent back over the
//! mesh) and adds them up, so counting costs a thread-local access and no atomic.

use std::cell::RefCell;
use std::collections::BTreeMap;

use hdrhistogram::Histogram;

/// Histograms record microseconds from 1 µs to this (an hour), 2 significant digits: a few
/// KiB each.
const HISTOGRAM_MAX_US: u64 = 3_600_000_000;
/// Writes per sync round are recorded up to this.
const HISTOGRAM_MAX_COUNT: u64 = 1_000_000;

fn histogram(max: u64) -> Histogram<u64> {
    Histogram::new_with_bounds(1, max, 2).expect("static histogram bounds are valid")
}

/// One shard's figures. Counters only grow; gauges are set.
#[derive(Clone)]
pub struct Snapshot {
    /// Requests answered, by (API key, version).
    pub requests: BTreeMap<(i16, i16), u64>,
    /// Time from a request's last byte read to its response's last byte written, in µs, by
    /// API key.
    pub request_latency_us: BTreeMap<i16, Histogram<u64>>,
    /// Request bytes read (size prefixes included) and response bytes written.
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub connections_accepted: u64,
    pub connections_closed: u64,
    /// Bytes of requests held in the shard's `queued.max.request.bytes` budget now.
    pub request_bytes_held: u64,
    /// fdatasync rounds of the group commit: duration in µs, and writes made durable per
    /// round.
    pub sync_latency_us: Histogram<u64>,
    pub sync_writes: Histogram<u64>,
}

impl Default for Snapshot {
    fn default() -> Snapshot {
        Snapshot {
            requests: BTreeMap::new(),
            request_latency_us: BTreeMap::new(),
            bytes_in: 0,
            bytes_out: 0,
            connections_accepted: 0,
            connections_closed: 0,
            request_bytes_held: 0,
            sync_latency_us: histogram(HISTOGRAM_MAX_US),
            sync_writes: histogram(HISTOGRAM_MAX_COUNT),
        }
    }
}

impl Snapshot {
    /// Adds another shard's figures to these.
    pub fn add(&mut self, other: &Snapshot) {
        for (k, v) in &other.requests {
            *self.requests.entry(*k).or_default() += v;
        }
        for (k, h) in &other.request_latency_us {
            let mine = self
                .request_latency_us
                .entry(*k)
                .or_insert_with(|| histogram(HISTOGRAM_MAX_US));
            // Same bounds on both sides: adding cannot fail.
            let _ = mine.add(h);
        }
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.connections_accepted += other.connections_accepted;
        self.connections_closed += other.connections_closed;
        self.request_bytes_held += other.request_bytes_held;
        let _ = self.sync_latency_us.add(&other.sync_latency_us);
        let _ = self.sync_writes.add(&other.sync_writes);
    }
}

thread_local! {
    static SHARD: RefCell<Snapshot> = RefCell::default();
}

fn with(f: impl FnOnce(&mut Snapshot)) {
    // A thread being torn down counts nothing more.
    let _ = SHARD.try_with(|s| f(&mut s.borrow_mut()));
}

/// A request of `api_key` v`version`, `frame_bytes` long with its size prefix, answered with
/// `response_bytes` after `elapsed_us`.
pub fn request_answered(
    api_key: i16,
    version: i16,
    frame_bytes: usize,
    response_bytes: usize,
    elapsed_us: u64,
) {
    with(|s| {
        *s.requests.entry((api_key, version)).or_default() += 1;
        s.request_latency_us
            .entry(api_key)
            .or_insert_with(|| histogram(HISTOGRAM_MAX_US))
            .saturating_record(elapsed_us.max(1));
        s.bytes_in += frame_bytes as u64;
        s.bytes_out += response_bytes as u64;
    });
}

pub fn connection_accepted() {
    with(|s| s.connections_accepted += 1);
}

/// The shard's request budget holds `bytes` now.
pub fn request_bytes_held(bytes: usize) {
    with(|s| s.request_bytes_held = bytes as u64);
}

pub fn connection_closed() {
    with(|s| s.connections_closed += 1);
}

/// A group-commit round: `writes` made durable by an fdatasync taking `elapsed_us`.
pub fn synced(writes: u64, elapsed_us: u64) {
    with(|s| {
        s.sync_latency_us.saturating_record(elapsed_us.max(1));
        s.sync_writes.saturating_record(writes.max(1));
    });
}

/// A copy of this thread's figures.
pub fn snapshot() -> Snapshot {
    SHARD.try_with(|s| s.borrow().clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_add_up_across_shards() {
        request_answered(0, 9, 100, 20, 150);
        request_answered(0, 9, 100, 20, 250);
        synced(3, 900);
        let mine = snapshot();
        let other = std::thread::spawn(|| {
            request_answered(1, 12, 50, 5000, 40);
            connection_accepted();
            snapshot()
        })
        .join()
        .unwrap();
        let mut all = Snapshot::default();
        all.add(&mine);
        all.add(&other);
        assert_eq!(all.requests[&(0, 9)], 2);
        assert_eq!(all.requests[&(1, 12)], 1);
        assert_eq!((all.bytes_in, all.bytes_out), (250, 5040));
        assert_eq!(all.connections_accepted, 1);
        assert_eq!(all.request_latency_us[&0].len(), 2);
        assert_eq!(all.sync_writes.max(), 3);
    }
}
