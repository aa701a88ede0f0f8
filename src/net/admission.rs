//! Broker-wide connection limits: `max.connections`, `max.connections.per.ip` and
//! `max.connections.per.ip.overrides`. Every shard's accept loop asks here before it serves a
//! connection; one past a limit is closed at once, with a log line, as Kafka closes it. The
//! counts are shared by the shards behind a mutex taken twice per connection (at accept and at
//! close), never on the data path.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::Config;

/// Refusals are logged at most this often (a client retrying in a loop would flood the log).
const WARN_EVERY: Duration = Duration::from_secs(10);

pub struct Admission {
    max: usize,
    per_ip: usize,
    overrides: HashMap<IpAddr, usize>,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
    warned: Option<Instant>,
    refused_since_warning: u64,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Broker { limit: usize },
    Address { limit: usize },
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Broker { limit } => {
                write!(f, "the broker holds max.connections ({limit}) connections")
            }
            Refused::Address { limit } => write!(
                f,
                "its address holds max.connections.per.ip ({limit}, or its override) connections"
            ),
        }
    }
}

impl Admission {
    pub fn new(config: &Config) -> Arc<Admission> {
        let count = |n: i32| usize::try_from(n).unwrap_or(0);
        let overrides =
            crate::config::parse_address_counts(&config.max_connections_per_ip_overrides)
                .unwrap_or_default() // checked when the configuration was read
                .into_iter()
                .map(|(ip, n)| (ip, n as usize))
                .collect();
        Arc::new(Admission {
            max: count(config.max_connections),
            per_ip: count(config.max_connections_per_ip),
            overrides,
            counts: Mutex::new(Counts::default()),
        })
    }

    /// Counts a connection from `ip` in, unless a limit is reached (then logs, now and then).
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, Refused> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let from_ip = counts.by_ip.get(&ip).copied().unwrap_or(0);
        let ip_limit = self.overrides.get(&ip).copied().unwrap_or(self.per_ip);
        let refused = if counts.total >= self.max {
            Some(Refused::Broker { limit: self.max })
        } else if from_ip >= ip_limit {
            Some(Refused::Address { limit: ip_limit })
        } else {
            None
        };
        if let Some(why) = refused {
            counts.refused_since_warning += 1;
            let now = Instant::now();
            if counts
                .warned
                .is_none_or(|t| now.duration_since(t) >= WARN_EVERY)
            {
                tracing::warn!(%ip, refused = counts.refused_since_warning, "closing new connections: {why}");
                counts.warned = Some(now);
                counts.refused_since_warning = 0;
            }
            return Err(why);
        }
        counts.total += 1;
        *counts.by_ip.entry(ip).or_insert(0) += 1;
        Ok(Admitted {
            admission: self.clone(),
            ip,
        })
    }
}

/// A connection counted in; counted out when dropped.
pub struct Admitted {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut counts = self
            .admission
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        counts.total -= 1;
        if let Some(n) = counts.by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.by_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each limit refuses the connection past it, an override replaces the per-address
    /// limit for its address, and closing a connection makes room again.
    #[test]
    fn limits_and_overrides() {
        let mut config = Config::for_tests(std::path::PathBuf::from("/nonexistent"));
        config.max_connections = 4;
        config.max_connections_per_ip = 2;
        config.max_connections_per_ip_overrides = "10.0.0.9:3".to_string();
        let admission = Admission::new(&config);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.9".parse().unwrap();
        let a1 = admission.admit(a).expect("a1");
        let _a2 = admission.admit(a).expect("a2");
        assert_eq!(
            admission.admit(a).err(),
            Some(Refused::Address { limit: 2 })
        );
        let _b1 = admission.admit(b).expect("b1");
        let _b2 = admission.admit(b).expect("b2: the override allows 3");
        assert_eq!(admission.admit(b).err(), Some(Refused::Broker { limit: 4 }));
        drop(a1);
        let _b3 = admission.admit(b).expect("b3: room again");
        assert_eq!(admission.admit(a).err(), Some(Refused::Broker { limit: 4 }));
    }
}
