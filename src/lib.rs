//! peershare: five course peer-to-peer file-sharing systems on one threaded core.
//!
//! The map of this crate:
//! - [`core`] holds the machinery every system shares: the role runtime, the worker pool, TCP
//!   transfer and landing of downloads (`.part`, verify, rename), chunking, digests, the one name
//!   sanitiser, the `logs.log` event log, `--trace` lines, UDP request/reply, the console and
//!   progress bars, and `pyjson`, the one reader and writer of Python-`json.dumps`-exact JSON.
//! - Every role (a tracker, a server, a client, a node) has one [`core::runtime::Runtime`]: every
//!   thread the role starts is spawned on it, named `<system>-<job>`, stopped through the role's
//!   shutdown signal (a child of the process's, so Ctrl-C stops all roles and one role can stop
//!   alone) and joined when the role ends; a thread that outlives its role is reported by name.
//! - Each system is a thin front over that core: `wire` (pure codec), its state (plain structs and
//!   rules), and the I/O roles that wire them to sockets: [`p2ptracker`] (P2PTracker++),
//!   [`fileapp`] (FileApp, "Bootleg BitTorrent"), [`bittrickle`] (BitTrickle), [`torrent`]
//!   (BitTorrent-Python) and [`xfs`] (Simple xFS).
//! - [`bt`] is real BitTorrent v1 (BEP 3/15/23) on the same core, tested against aria2,
//!   Transmission and libtorrent.
//! - [`demo`] runs a whole P2PTracker++ swarm on loopback in one process.
//! - [`grade`] runs any implementation through its assignment's rubric (`peershare grade`), with
//!   peershare's programs playing the other roles, and reports the evidence.
//! - [`diagram`] draws a run's `--trace` files and `logs.log` as a sequence diagram (HTML, Mermaid).
//!
//! Data flows one way, CLI → system → core; the core never knows which system called it.
//! Blocking `std::net` sockets and OS threads talk over crossbeam channels; there is no async
//! runtime.

#![forbid(unsafe_code)]
// No function outside the tests is over 60 lines (clippy.toml) unless its `allow` says why;
// CI's clippy runs with `-D warnings`, so this is checked, not hoped for.
#![cfg_attr(not(test), warn(clippy::too_many_lines))]

pub mod bittrickle;
pub mod bt;
pub mod core;
pub mod demo;
pub mod diagram;
pub mod fileapp;
pub mod grade;
pub mod p2ptracker;
pub mod torrent;
pub mod xfs;
