//! Machinery every system uses. Nothing here knows any system's wire format: systems call in,
//! the core never calls out.

pub mod chunking;
pub mod console;
pub mod digest;
pub mod event_log;
pub mod latency;
pub mod names;
pub mod pool;
pub mod progress;
pub mod select;
pub mod shutdown;
pub mod tcp;
pub mod transfer;
pub mod udp_rpc;
