//! The actors: producers and consumers, each running on one executor with its own connections.

pub mod consumer;
pub mod producer;

pub use consumer::{Consumer, ConsumerConfig, ConsumerSpec};
pub use producer::{Producer, ProducerConfig, ProducerSpec};
