//! P2PTracker++ (spec: `docs/specs/p2ptracker.md`): a text-over-TCP tracker and clients that
//! gather a chunked file set from each other.
//!
//! - [`wire`]: the messages, pure.
//! - [`chunk_list`]: `local_chunks.txt`, parsed and rewritten.
//! - [`tracker`]: holder index and the tracker's connection threads.
//! - [`client`]: the client's tracker conversation, parallel chunk downloads and chunk server.
//! - [`cli`]: `peershare p2ptracker tracker|client`.

pub mod chunk_list;
pub mod cli;
pub mod client;
pub mod tracker;
pub mod wire;
