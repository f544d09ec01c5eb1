//! P2PTracker++ (spec: `docs/specs/p2ptracker.md`): a text-over-TCP tracker and clients that
//! gather a chunked file set from each other.
//!
//! - [`wire`]: the messages, pure.
//! - [`chunk_list`]: `local_chunks.txt`, parsed and rewritten.
//! - [`state`]: the tracker's holder index and what it does about each message, pure.
//! - [`tracker`]: the tracker's connection threads and connection cap.
//! - [`client`]: a client's run: its threads, shared state and the tracker thread's loop.
//! - [`link`]: the client's tracker connection. [`schedule`]: what to download next, pure.
//! - [`fetch`]: one chunk download. [`serve`]: the chunk server. [`list_writer`]: rewrites of
//!   `local_chunks.txt`. [`folder_lock`]: one client per folder. [`layout`]: `split`/`join`.
//! - [`cli`]: `peershare p2ptracker tracker|client`.

pub mod chunk_list;
pub mod cli;
pub mod client;
pub mod fetch;
pub mod folder_lock;
pub mod layout;
pub mod link;
pub mod list_writer;
pub mod schedule;
pub mod serve;
pub mod state;
pub mod tracker;
pub mod wire;
