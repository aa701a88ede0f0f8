//! Building blocks: rate limiting, record and batch generation, partitioning, finish conditions,
//! bounded waiting and a minimal Kafka connection.

pub mod batch;
pub mod finish;
pub mod kafka;
pub mod partitioner;
pub mod rate;
pub mod wait;
