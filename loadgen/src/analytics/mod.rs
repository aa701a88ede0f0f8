//! Measurement and reporting: latency histograms (HdrHistogram), per-second throughput series,
//! error counts, the progress line and the final human/JSON summary.

pub mod metrics;
pub mod progress;
pub mod report;
