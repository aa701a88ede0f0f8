//! The network layer: framing (pure) and the connection loop (buffers, in-order responses).

pub mod connection;
pub mod frame;
