//! Just enough of a Kafka client: framing, pipelining and the few APIs a load generator needs.

pub mod admin;
pub mod conn;
pub mod group;
pub mod txn;

pub use admin::{GroupVersions, TopicInfo, TxnVersions, Versions};
pub use conn::Connection;
