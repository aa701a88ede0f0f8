//! The network layer: framing (pure), the connection loop (buffers, in-order responses), and
//! the listener each shard accepts on.

pub mod admission;
pub mod connection;
pub mod frame;
pub mod listener;
pub mod request_budget;
