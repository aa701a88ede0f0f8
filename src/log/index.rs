//! The offset index and time index of one segment: sparse, in memory while the segment is
//! open, written beside the segment (`<base>.index`, `<base>.timeindex`) when it is rolled or
//! the broker stops, and rebuilt by recovery when missing or stale.
//!
//! # Layout (both files, big-endian, entries back to back, as Kafka writes them)
//! ```text
//! .index      8 bytes per entry: relativeOffset u32 (offset - segment base), position u32
//! .timeindex 12 bytes per entry: timestamp i64 (max timestamp so far), relativeOffset u32
//! ```
//! An entry is added for the first batch that starts `index.interval.bytes` or more after the
//! previous entry, so a lookup is followed by a scan of at most that many bytes.

pub const OFFSET_ENTRY_BYTES: usize = 8;
pub const TIME_ENTRY_BYTES: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    pub timestamp: i64,
    pub relative_offset: u32,
}

/// Both indexes of one segment. Entries only grow, in offset, position and timestamp.
#[derive(Debug, Default, Clone)]
pub struct SegmentIndex {
    offsets: Vec<OffsetEntry>,
    times: Vec<TimeEntry>,
    /// Position of the batch that got the last offset entry (0 when none).
    last_indexed_position: u32,
}

impl SegmentIndex {
    pub fn new() -> SegmentIndex {
        SegmentIndex::default()
    }

    /// Records a batch appended at `position`; adds entries when `interval_bytes` have passed
    /// since the last one. `max_timestamp` is the segment's largest timestamp so far.
    pub fn on_append(
        &mut self,
        relative_offset: u32,
        position: u32,
        max_timestamp: i64,
        interval_bytes: u32,
    ) {
        if let Some(last) = self.offsets.last() {
            // The writer rolls before a relative offset could overflow, so entries always
            // grow; were one not to, the entry is skipped (a lookup then scans further) rather
            // than the shard stopped.
            if relative_offset <= last.relative_offset || position <= last.position {
                debug_assert!(false, "index entries must grow");
                return;
            }
        }
        let due = self.offsets.is_empty()
            || position.saturating_sub(self.last_indexed_position) >= interval_bytes;
        if !due {
            return;
        }
        self.offsets.push(OffsetEntry {
            relative_offset,
            position,
        });
        self.last_indexed_position = position;
        if self
            .times
            .last()
            .is_none_or(|t| max_timestamp > t.timestamp)
        {
            self.times.push(TimeEntry {
                timestamp: max_timestamp,
                relative_offset,
            });
        }
    }

    /// The entry with the largest offset at or below `relative_offset` (the start of a scan).
    pub fn lookup(&self, relative_offset: u32) -> OffsetEntry {
        let i = self
            .offsets
            .partition_point(|e| e.relative_offset <= relative_offset);
        if i == 0 {
            OffsetEntry {
                relative_offset: 0,
                position: 0,
            }
        } else {
            self.offsets[i - 1]
        }
    }

    /// The offset entry to start scanning from for the first record with a timestamp >= `ts`:
    /// the last entry whose max timestamp so far is below `ts`.
    pub fn lookup_time(&self, ts: i64) -> OffsetEntry {
        let i = self.times.partition_point(|e| e.timestamp < ts);
        if i == 0 {
            return OffsetEntry {
                relative_offset: 0,
                position: 0,
            };
        }
        self.lookup(self.times[i - 1].relative_offset)
    }

    /// The first batch's largest timestamp (the first time entry), when there is one: what
    /// time-based rolling measures a segment's age from, as Kafka's `rollingBasedTimestamp`.
    pub fn first_timestamp(&self) -> Option<i64> {
        self.times.first().map(|t| t.timestamp)
    }

    /// The largest timestamp the time index has seen (-1 when empty).
    pub fn max_timestamp(&self) -> i64 {
        self.times.last().map_or(-1, |t| t.timestamp)
    }

    /// Adds a final time entry at roll so the sealed segment's largest timestamp is on disk,
    /// as Kafka does.
    pub fn seal_time(&mut self, max_timestamp: i64, relative_offset: u32) {
        let newer = self
            .times
            .last()
            .is_none_or(|t| max_timestamp > t.timestamp && relative_offset > t.relative_offset);
        if newer {
            self.times.push(TimeEntry {
                timestamp: max_timestamp,
                relative_offset,
            });
        }
    }

    pub fn last(&self) -> Option<OffsetEntry> {
        self.offsets.last().copied()
    }

    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Drops every entry at or past `position` (recovery truncated the segment there).
    pub fn truncate_to_position(&mut self, position: u32) {
        self.offsets.retain(|e| e.position < position);
        let last_rel = self.offsets.last().map(|e| e.relative_offset);
        self.times
            .retain(|t| last_rel.is_some_and(|r| t.relative_offset <= r));
        self.last_indexed_position = self.offsets.last().map_or(0, |e| e.position);
    }

    pub fn encode_offsets(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.offsets.len() * OFFSET_ENTRY_BYTES);
        for e in &self.offsets {
            out.extend_from_slice(&e.relative_offset.to_be_bytes());
            out.extend_from_slice(&e.position.to_be_bytes());
        }
        out
    }

    pub fn encode_times(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.times.len() * TIME_ENTRY_BYTES);
        for e in &self.times {
            out.extend_from_slice(&e.timestamp.to_be_bytes());
            out.extend_from_slice(&e.relative_offset.to_be_bytes());
        }
        out
    }

    /// Loads both files' bytes, keeping only the prefix of entries that are ordered and point
    /// inside `segment_bytes`: a stale or torn index is cut, never trusted.
    pub fn decode(offsets: &[u8], times: &[u8], segment_bytes: u32) -> SegmentIndex {
        let mut index = SegmentIndex::new();
        for chunk in offsets.chunks_exact(OFFSET_ENTRY_BYTES) {
            let e = OffsetEntry {
                relative_offset: u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]),
                position: u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]),
            };
            let ordered = index.offsets.last().map_or(e.position == 0, |l| {
                e.relative_offset > l.relative_offset && e.position > l.position
            });
            if !ordered || e.position >= segment_bytes {
                break;
            }
            index.offsets.push(e);
        }
        for chunk in times.chunks_exact(TIME_ENTRY_BYTES) {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&chunk[0..8]);
            let e = TimeEntry {
                timestamp: i64::from_be_bytes(ts),
                relative_offset: u32::from_be_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]),
            };
            let ordered = index
                .times
                .last()
                .is_none_or(|l| e.timestamp > l.timestamp && e.relative_offset > l.relative_offset);
            if !ordered {
                break;
            }
            index.times.push(e);
        }
        index.last_indexed_position = index.offsets.last().map_or(0, |e| e.position);
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries are sparse by interval, and lookups return the entry at or below the target.
    #[test]
    fn sparse_entries_and_lookup() {
        let mut ix = SegmentIndex::new();
        let mut pos = 0u32;
        for rel in 0..100u32 {
            ix.on_append(rel, pos, 1000 + i64::from(rel), 4096);
            pos += 1000;
        }
        // One entry per 5 batches of 1000 bytes (4096 / 1000 rounded up).
        assert_eq!(ix.len(), 20);
        assert_eq!(
            ix.lookup(0),
            OffsetEntry {
                relative_offset: 0,
                position: 0
            }
        );
        assert_eq!(
            ix.lookup(7),
            OffsetEntry {
                relative_offset: 5,
                position: 5000
            }
        );
        assert_eq!(
            ix.lookup(1_000),
            OffsetEntry {
                relative_offset: 95,
                position: 95_000
            }
        );
        assert_eq!(ix.lookup_time(1012).relative_offset, 10);
        assert_eq!(ix.lookup_time(0).relative_offset, 0);
    }

    /// What is encoded decodes to the same index; a torn tail and out-of-range entries are cut.
    #[test]
    fn roundtrip_and_torn_files() {
        let mut ix = SegmentIndex::new();
        for rel in 0..10u32 {
            ix.on_append(rel, rel * 5000, i64::from(rel), 4096);
        }
        let (o, t) = (ix.encode_offsets(), ix.encode_times());
        let back = SegmentIndex::decode(&o, &t, u32::MAX);
        assert_eq!(back.encode_offsets(), o);
        assert_eq!(back.encode_times(), t);
        let torn = SegmentIndex::decode(&o[..o.len() - 3], &t, u32::MAX);
        assert_eq!(torn.len(), 9);
        let short = SegmentIndex::decode(&o, &t, 20_000);
        assert_eq!(short.len(), 4);
        assert_eq!(
            short.last(),
            Some(OffsetEntry {
                relative_offset: 3,
                position: 15_000
            })
        );
        let mut cut = back.clone();
        cut.truncate_to_position(10_000);
        assert_eq!(cut.len(), 2);
    }

    /// Garbage (zeros) is not taken for entries beyond the first.
    #[test]
    fn zero_filled_file_is_one_entry_at_most() {
        let ix = SegmentIndex::decode(&[0u8; 64], &[0u8; 48], 100);
        assert_eq!(ix.len(), 1);
    }
}
