//! Just enough of a Kafka client: framing, pipelining and the few APIs a load generator needs.

pub mod admin;
pub mod conn;
pub mod group;

pub use admin::{GroupVersions, TopicInfo, Versions};
pub use conn::Connection;
