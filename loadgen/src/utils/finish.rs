//! When a run is over: after a number of records, or after a duration.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Finish {
    /// Exactly this many records (in total, over every actor).
    Records(u64),
    /// Until this long after the start.
    Duration(Duration),
}

impl Finish {
    pub fn records(&self) -> Option<u64> {
        match self {
            Finish::Records(n) => Some(*n),
            Finish::Duration(_) => None,
        }
    }

    pub fn duration(&self) -> Option<Duration> {
        match self {
            Finish::Records(_) => None,
            Finish::Duration(d) => Some(*d),
        }
    }
}

/// Actor `i`'s share of `total` records among `n` actors (the first `total % n` get one more).
pub fn share(total: u64, n: usize, i: usize) -> u64 {
    let n = n as u64;
    let i = i as u64;
    total / n + u64::from(i < total % n)
}

/// A count shared by actors on several threads that together must reach a total: each claims
/// what it got, and only the part still missing counts (the last fetch may return more).
#[derive(Debug)]
pub struct Budget {
    remaining: AtomicU64,
}

impl Budget {
    pub fn new(total: u64) -> Budget {
        Budget {
            remaining: AtomicU64::new(total),
        }
    }

    /// Claims up to `n`; returns how many were granted (0 once the total is reached).
    pub fn claim(&self, n: u64) -> u64 {
        let mut cur = self.remaining.load(Ordering::Relaxed);
        loop {
            let take = cur.min(n);
            if take == 0 {
                return 0;
            }
            match self.remaining.compare_exchange_weak(
                cur,
                cur - take,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return take,
                Err(actual) => cur = actual,
            }
        }
    }

    pub fn exhausted(&self) -> bool {
        self.remaining.load(Ordering::Acquire) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        for total in [0u64, 1, 7, 10, 10_001] {
            for n in 1..6 {
                let sum: u64 = (0..n).map(|i| share(total, n, i)).sum();
                assert_eq!(sum, total);
            }
        }
        assert_eq!(share(10, 3, 0), 4);
        assert_eq!(share(10, 3, 2), 3);
    }

    #[test]
    fn budget_grants_exactly_the_total() {
        let b = Budget::new(10);
        assert_eq!(b.claim(4), 4);
        assert_eq!(b.claim(4), 4);
        assert!(!b.exhausted());
        assert_eq!(b.claim(4), 2);
        assert!(b.exhausted());
        assert_eq!(b.claim(1), 0);
    }
}
