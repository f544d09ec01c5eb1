//! Machinery every system uses. Nothing here knows any system's wire format: systems call in,
//! the core never calls out.

pub mod chunking;
pub mod console;
pub mod credentials;
pub mod digest;
pub mod event_log;
pub mod heartbeat;
pub mod latency;
pub mod names;
pub mod pool;
pub mod progress;
pub mod pyjson;
pub mod runtime;
pub mod select;
pub mod shutdown;
pub mod tcp;
pub mod trace;
pub mod transfer;
pub mod udp_rpc;

/// True when a read with a timeout simply ran out of time (or a signal interrupted it): blocking
/// loops in peershare poll with timeouts so they notice shutdown, and try again on these.
pub fn timed_out(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{Interrupted, TimedOut, WouldBlock};
    matches!(e.kind(), WouldBlock | TimedOut | Interrupted)
}
