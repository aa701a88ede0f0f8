//! The line printed to stderr about once a second while a run goes.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::metrics::{Flow, Lat, Metrics};
use super::report::group;

pub struct Progress {
    flow: Flow,
    lat: Lat,
    last_at: Option<Instant>,
    last_records: u64,
    last_bytes: u64,
}

impl Progress {
    pub fn new(flow: Flow, lat: Lat) -> Progress {
        Progress {
            flow,
            lat,
            last_at: None,
            last_records: 0,
            last_bytes: 0,
        }
    }

    /// The progress line now, or None before the run started.
    pub fn line(&mut self, m: &Metrics, now: Instant) -> Option<String> {
        let start = *m.start.get()?;
        let c = m.flow(self.flow);
        let records = c.records.load(Ordering::Relaxed);
        let bytes = c.bytes.load(Ordering::Relaxed);
        let since = self.last_at.unwrap_or(start);
        let dt = now.saturating_duration_since(since).as_secs_f64().max(1e-3);
        let rate = (records - self.last_records) as f64 / dt;
        let mbps = (bytes - self.last_bytes) as f64 / dt / 1e6;
        self.last_at = Some(now);
        self.last_records = records;
        self.last_bytes = bytes;
        let p99 = m
            .quantile_us(self.lat, 0.99)
            .map(|us| format!("{:.3} ms", us as f64 / 1000.0))
            .unwrap_or_else(|| "-".into());
        let mut line = format!(
            "[{:>6.1}s] {:>10} rec/s {:>9.2} MB/s  p99 {}  total {}  errors {}",
            now.saturating_duration_since(start).as_secs_f64(),
            group(rate.round() as u64),
            mbps,
            p99,
            group(records),
            group(m.errors.load(Ordering::Relaxed)),
        );
        if self.flow == Flow::Consumed {
            let produced = m.flow(Flow::Produced).records.load(Ordering::Relaxed);
            if produced > 0 {
                line.push_str(&format!("  produced {}", group(produced)));
            }
        }
        Some(line)
    }
}
