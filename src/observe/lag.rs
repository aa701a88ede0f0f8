//! Consumer lag with a status, evaluated as Burrow does (linkedin/Burrow,
//! `core/internal/evaluator/caching.go`): each group partition keeps a window of its last
//! commits, each with the lag it had when it was seen (the log end offset then, minus the
//! committed offset), and the log end offsets sampled beside them. The rules, in Burrow's
//! order, when the current lag is above zero (else the partition is OK):
//!
//! 1. **STOP**: the time since the last commit is longer than the window's span (first to last
//!    commit), unless some sampled log end offset is at or below the last commit (the consumer
//!    was caught up lately).
//! 2. **REWIND**: a committed offset went down and no later commit got back to where it was.
//! 3. If any commit in the window had zero lag: **OK** (rules 4 and 5 are skipped).
//! 4. **STALL**: every commit in the window has the same offset.
//! 5. **WARNING**: the lag never went down from one commit to the next.
//! 6. Otherwise **OK**.
//!
//! A group's status is the worst of its partitions', with STOP, STALL and REWIND reported as
//! ERROR (Burrow's group status is OK, WARN or ERR); its partition with the most lag is
//! reported beside it.

use std::collections::VecDeque;

use serde::Serialize;

/// A partition's status; the order is Burrow's (a higher one is worse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Ok,
    Warning,
    Error,
    Stop,
    Stall,
    Rewind,
}

impl Status {
    /// The group status a partition status contributes.
    pub fn for_group(self) -> Status {
        if self > Status::Error {
            Status::Error
        } else {
            self
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Error => "ERROR",
            Status::Stop => "STOP",
            Status::Stall => "STALL",
            Status::Rewind => "REWIND",
        }
    }
}

/// One commit as the monitor saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Commit {
    pub offset: i64,
    /// When it was committed (the commit's timestamp), in ms since the epoch.
    pub timestamp_ms: i64,
    /// The log end offset when it was seen, minus `offset`, at least 0.
    pub lag: i64,
}

/// A group partition's window.
#[derive(Debug, Clone, Default)]
pub struct Window {
    pub commits: VecDeque<Commit>,
    /// Log end offsets sampled, oldest first, as many as commits are kept.
    pub log_ends: VecDeque<i64>,
}

impl Window {
    /// Records a sample: the partition's current commit (a new entry when its timestamp or
    /// offset differs from the last one seen) and its log end offset, keeping `size` of each.
    pub fn observe(&mut self, offset: i64, timestamp_ms: i64, log_end: i64, size: usize) {
        let new = self
            .commits
            .back()
            .is_none_or(|c| c.timestamp_ms != timestamp_ms || c.offset != offset);
        if new {
            self.commits.push_back(Commit {
                offset,
                timestamp_ms,
                lag: (log_end - offset).max(0),
            });
        }
        self.log_ends.push_back(log_end);
        while self.log_ends.len() > size {
            self.log_ends.pop_front();
        }
        while self.commits.len() > size {
            self.commits.pop_front();
        }
    }

    /// The partition's status with `current_lag` at `now_ms`.
    pub fn status(&self, current_lag: i64, now_ms: i64) -> Status {
        let commits = &self.commits;
        let (Some(first), Some(last)) = (commits.front(), commits.back()) else {
            return Status::Ok;
        };
        if current_lag <= 0 {
            return Status::Ok;
        }
        let stopped = now_ms - last.timestamp_ms > last.timestamp_ms - first.timestamp_ms;
        let caught_up_lately = self.log_ends.iter().any(|&end| end <= last.offset);
        if stopped && !caught_up_lately {
            return Status::Stop;
        }
        if let Some(i) = (1..commits.len()).find(|&i| commits[i].offset < commits[i - 1].offset) {
            let before = commits[i - 1].offset;
            if !commits.iter().skip(i).any(|c| c.offset >= before) {
                return Status::Rewind;
            }
        }
        if commits.iter().any(|c| c.lag <= 0) {
            return Status::Ok;
        }
        if commits.iter().all(|c| c.offset == first.offset) {
            return Status::Stall;
        }
        if commits
            .iter()
            .zip(commits.iter().skip(1))
            .all(|(a, b)| b.lag >= a.lag)
        {
            return Status::Warning;
        }
        Status::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A window of commits `(offset, timestamp, log end then)`.
    fn window(commits: &[(i64, i64, i64)]) -> Window {
        let mut w = Window::default();
        for &(offset, ts, end) in commits {
            w.observe(offset, ts, end, 10);
        }
        w
    }

    #[test]
    fn burrows_rules_in_burrows_order() {
        // Caught up now: OK whatever the window says.
        assert_eq!(
            window(&[(5, 0, 9), (5, 10, 9)]).status(0, 1_000),
            Status::Ok
        );
        // Commits moving, lag going down: OK.
        let moving = window(&[(10, 0, 120), (50, 10, 130), (100, 20, 140)]);
        assert_eq!(moving.status(20, 25), Status::Ok);
        // The same commits long after the last one: STOP.
        assert_eq!(moving.status(20, 1_000), Status::Stop);
        // Committing the same offset while the log grows: STALL.
        let stalled = window(&[(10, 0, 100), (10, 10, 120), (10, 20, 140)]);
        assert_eq!(stalled.status(130, 25), Status::Stall);
        // Moving, but the lag never shrinks: WARNING.
        let behind = window(&[(10, 0, 100), (20, 10, 120), (30, 20, 140)]);
        assert_eq!(behind.status(110, 25), Status::Warning);
        // Went back and stayed back: REWIND; back to where it was: not.
        let rewound = window(&[(50, 0, 100), (20, 10, 100), (30, 20, 100)]);
        assert_eq!(rewound.status(70, 25), Status::Rewind);
        let recovered = window(&[(50, 0, 100), (20, 10, 100), (60, 20, 100)]);
        assert_eq!(recovered.status(40, 25), Status::Ok);
        // A commit with no lag in the window: OK even if the offset stays.
        let idle = window(&[(100, 0, 100), (100, 10, 100), (100, 20, 130)]);
        assert_eq!(idle.status(30, 25), Status::Ok);
        // Caught up lately (a sampled log end at the commit): not STOP.
        assert_eq!(idle.status(30, 1_000), Status::Ok);
    }

    #[test]
    fn the_window_keeps_the_last_commits_and_skips_repeats() {
        let mut w = Window::default();
        for i in 0..15 {
            w.observe(i, i * 10, 100, 10);
            w.observe(i, i * 10, 100, 10);
        }
        assert_eq!(w.commits.len(), 10);
        assert_eq!(w.commits.front().map(|c| c.offset), Some(5));
        assert_eq!(w.log_ends.len(), 10);
    }

    #[test]
    fn group_status_maps_the_partition_errors() {
        assert_eq!(Status::Stall.for_group(), Status::Error);
        assert_eq!(Status::Warning.for_group(), Status::Warning);
        assert_eq!(Status::Stall.name(), "STALL");
    }
}
