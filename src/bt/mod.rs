//! Real BitTorrent v1 (BEP 3, with BEP 15 and BEP 23 for trackers), proven against aria2,
//! Transmission and libtorrent: the sixth system, on the same threaded core as the course five.
//!
//! - [`bencode`]: strict canonical bencode; raw spans so the info-hash is never re-encoded.
//! - [`metainfo`]: `.torrent` files, single and multi-file, pieces spanning files; making one
//!   hashes on the worker pool.
//! - [`wire`]: handshake, length-prefixed peer messages, bitfields.
//! - [`announce`], [`udp_tracker`]: tracker codecs (HTTP query + bencoded reply, compact and
//!   dict peers; BEP 15 datagrams); [`swarm`]: the tracker's table; [`tracker`]: its I/O;
//!   [`announcer`]: announcing as a client.
//! - [`picker`]: rarest first, endgame; [`storage`]: `.part` files, verified writes, atomic
//!   landing, re-check on start (resume).
//! - [`peer`]: one connection (reader thread + `bt-peer-write` thread); [`client`]: the engine
//!   behind `seed` and `get` (listener, announces, dials).
//! - [`cli`]: `peershare bt make|show|tracker|seed|get`.
//!
//! Spec choices (where BEP 3 leaves room):
//! - `make` writes `announce`, `created by` and `info` (`name`, `piece length`, `pieces`,
//!   `length` or `files`); folder files are sorted by path, empty files kept.
//! - `seed`'s data path is the file itself (one-file torrent) or the folder holding the files;
//!   it must check out completely. `get -o dir` writes `dir/<name>`.
//! - The rest (unchoking, pipelining, late bitfields, tracker behaviour, no MSE) is listed in
//!   the README's BitTorrent section and in the module docs of [`peer`] and [`tracker`].

pub mod announce;
pub mod announcer;
pub mod bencode;
pub mod cli;
pub mod client;
pub mod metainfo;
pub mod peer;
pub mod picker;
pub mod storage;
pub mod swarm;
pub mod tracker;
pub mod udp_tracker;
pub mod wire;
