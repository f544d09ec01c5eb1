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
//! - [`demo`] runs a whole P2PTracker++ swarm on loopback in one process.
//!
//! Data flows one way, CLI → system → core; the core never knows which system called it.
//! Blocking `std::net` sockets and OS threads talk over crossbeam channels; there is no async
//! runtime.

#![forbid(unsafe_code)]

pub mod bittrickle;
pub mod core;
pub mod demo;
pub mod fileapp;
pub mod p2ptracker;
pub mod torrent;
pub mod xfs;
