//! Small shard-local utilities every layer may use; nothing here knows of Kafka, partitions or
//! shards. The bottom of the dependency picture (ARCHITECTURE "Layers").

pub mod blocking;
pub mod notify;

pub use notify::Notify;
