//! Open-loop rate limiting without coordinated omission.
//!
//! Record `i` of a producer is scheduled at `start + phase + i / rate`, whatever happened to the
//! records before it. The producer generates every record whose time has come (late ones in a
//! burst) and latency is measured from the scheduled time, so a broker stall shows up as the
//! latency of every record that should have been sent during it, not just of one.

use std::time::Duration;

const NANOS_PER_SEC: f64 = 1e9;

#[derive(Debug, Clone, Copy)]
pub struct RateLimiter {
    /// Records per second.
    rate: f64,
    /// Offset of record 0 from the start, in nanoseconds.
    phase_ns: u64,
}

impl RateLimiter {
    /// `rate` records per second (finite, > 0), record 0 at `phase` after the start.
    pub fn new(rate: f64, phase: Duration) -> RateLimiter {
        assert!(rate.is_finite() && rate > 0.0, "rate must be > 0");
        RateLimiter {
            rate,
            phase_ns: phase.as_nanos() as u64,
        }
    }

    /// The `n` limiters that together send `total_rate`: each sends `total_rate / n`, offset by
    /// `k / total_rate`, so the merged schedule is evenly spaced at `total_rate`.
    pub fn split(total_rate: f64, n: usize) -> Vec<RateLimiter> {
        assert!(n > 0);
        (0..n)
            .map(|k| {
                RateLimiter::new(
                    total_rate / n as f64,
                    Duration::from_nanos((k as f64 * NANOS_PER_SEC / total_rate) as u64),
                )
            })
            .collect()
    }

    /// When record `i` is due, in nanoseconds after the start.
    pub fn scheduled_ns(&self, i: u64) -> u64 {
        self.phase_ns + (i as f64 * NANOS_PER_SEC / self.rate).round() as u64
    }

    /// How many records are due at `elapsed_ns` after the start (records 0..n have
    /// `scheduled_ns <= elapsed_ns`).
    pub fn due(&self, elapsed_ns: u64) -> u64 {
        if elapsed_ns < self.phase_ns {
            return 0;
        }
        let since = (elapsed_ns - self.phase_ns) as f64;
        // Estimate, then correct for floating-point rounding against scheduled_ns itself.
        let mut n = (since * self.rate / NANOS_PER_SEC).floor() as u64 + 1;
        while n > 0 && self.scheduled_ns(n - 1) > elapsed_ns {
            n -= 1;
        }
        while self.scheduled_ns(n) <= elapsed_ns {
            n += 1;
        }
        n
    }

    /// Records scheduled strictly before `window_ns` (what a run of that length must send).
    pub fn count_before(&self, window_ns: u64) -> u64 {
        if window_ns == 0 {
            0
        } else {
            self.due(window_ns - 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_start_plus_i_over_rate() {
        let r = RateLimiter::new(1000.0, Duration::ZERO);
        assert_eq!(r.scheduled_ns(0), 0);
        assert_eq!(r.scheduled_ns(1), 1_000_000);
        assert_eq!(r.scheduled_ns(2500), 2_500_000_000);
        let r = RateLimiter::new(3.0, Duration::from_millis(10));
        assert_eq!(r.scheduled_ns(0), 10_000_000);
        assert_eq!(r.scheduled_ns(1), 10_000_000 + 333_333_333);
        assert_eq!(r.scheduled_ns(3), 1_010_000_000);
    }

    #[test]
    fn due_counts_records_whose_time_has_come() {
        let r = RateLimiter::new(1000.0, Duration::ZERO);
        assert_eq!(r.due(0), 1);
        assert_eq!(r.due(999_999), 1);
        assert_eq!(r.due(1_000_000), 2);
        assert_eq!(r.due(1_000_000_000), 1001);
        let r = RateLimiter::new(2000.0, Duration::from_micros(250));
        assert_eq!(r.due(0), 0);
        assert_eq!(r.due(249_999), 0);
        assert_eq!(r.due(250_000), 1);
        assert_eq!(r.due(750_000), 2);
        // due() agrees with scheduled_ns() everywhere, including awkward rates.
        for rate in [1.0, 3.0, 7.5, 333.3, 2000.0, 123_457.0] {
            let r = RateLimiter::new(rate, Duration::from_nanos(17));
            for i in 0..2000u64 {
                let t = r.scheduled_ns(i);
                assert_eq!(r.due(t), i + 1, "rate {rate} i {i}");
                if t > 0 {
                    assert!(r.due(t - 1) <= i, "rate {rate} i {i}");
                }
            }
        }
    }

    #[test]
    fn a_window_holds_rate_times_length_records() {
        let r = RateLimiter::new(2000.0, Duration::ZERO);
        assert_eq!(r.count_before(5_000_000_000), 10_000);
        assert_eq!(r.count_before(0), 0);
        let total: u64 = RateLimiter::split(2000.0, 3)
            .iter()
            .map(|r| r.count_before(5_000_000_000))
            .sum();
        assert_eq!(total, 10_000);
    }

    /// Split limiters interleave: the merged schedule is evenly spaced at the total rate.
    #[test]
    fn split_interleaves_evenly() {
        let parts = RateLimiter::split(1000.0, 4);
        let mut all: Vec<u64> = parts
            .iter()
            .flat_map(|r| (0..100).map(move |i| r.scheduled_ns(i)))
            .collect();
        all.sort_unstable();
        for (i, t) in all.iter().enumerate() {
            assert_eq!(*t, i as u64 * 1_000_000);
        }
    }
}
