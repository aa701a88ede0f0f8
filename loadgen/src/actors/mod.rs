//! The actors: producers and consumers, each running on one executor with its own connections
//! (eos.rs: what makes a producer idempotent or transactional).

pub mod consumer;
pub mod eos;
pub mod producer;

pub use consumer::{Consumer, ConsumerConfig, ConsumerSpec};
pub use eos::{EosConfig, TxnConfig};
pub use producer::{Producer, ProducerConfig, ProducerSpec};
