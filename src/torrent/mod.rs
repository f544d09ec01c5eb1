//! BitTorrent-Python (spec `torrent.md`): a UDP-only swarm of a tracker and nodes exchanging
//! pickled Python dicts, wire-compatible with the original `tracker.py` and `node.py`.
//!
//! - [`pickle`]: the allow-listed plain-data pickle codec (decodes protocols 2–5, encodes 3).
//! - [`wire`]: the four messages (Node2Tracker, Tracker2Node, Node2Node, ChunkSharing).
//! - [`state`]: the tracker's tables and rules, `handle(input, now) -> actions`, no sockets.
//! - [`tracker`]: the tracker's receive loop and its snapshot writer thread.
//! - [`node`]: keep-alive, serving from the node's directory, stdin commands.
//! - [`download`]: NEED, size query, S/N split, per-range sockets with gap re-requests.
//! - [`journal`]: the original's `log()`: `[HH:MM:SS]  text` on stdout (plus a blank line) and
//!   in `logs/`.
//! - [`cli`]: `peershare torrent tracker|node`.
//!
//! Spec ambiguities resolved here:
//! - A "round" of re-requests is one request per missing sub-range (at most 512; the rest go in
//!   the next round). The first request is not a round; after it, an owner gets two rounds
//!   without progress, then each further owner in rank order gets two (the range's own owner
//!   first, then every other ranked owner, including ones beyond the first three). Any new bytes
//!   reset the count. When every owner is used up the download fails with
//!   `Download of {f} failed: {n} bytes are still missing`; `no owner answered` is used when no
//!   owner answers the size query.
//! - A range request is answered even when a piece for it went missing: the downloader does not
//!   wait for an end marker once every byte of its range is there.
//! - Ranges that come out empty in the S/N split (a file smaller than the owner count) are not
//!   requested at all; an empty file is written without any range request, and its download still
//!   logs the three closing lines.
//! - `send` and `download` of a name that fails the sanitiser: `send` logs `You don't have {f}`
//!   (as for any file we lack); `download` prints
//!   `Usage: torrent -setMode download <filename> (<reason>)` on stdout, not logged.
//! - `torrent -setMode exit <anything>` exits too (the original's parser took 3 or 4 words).
//! - A range request whose start is negative is refused with `Cannot serve {f} to node{d}: …`;
//!   an end before the start, or a start at or past the file's end, gets the end marker only.
//! - The tracker's snapshots change after OWN, UPDATE, EXIT and a sweep that removed someone
//!   (the original saved in `remove_node` too), but are written at most once per
//!   `--snapshot-interval-ms` (1 s) and on exit, by their own thread: the original rewrote both
//!   files on every such datagram, which made each datagram cost as much as the whole table.
//!   An UPDATE for an unknown node creates its count (the original's defaultdict did the same).
//! - The tracker's NEED reply is cut to the ranked owners that fit in 9,216 bytes.
//! - Serving is paced (4 pieces, then 500 µs, see `node::BURST_PIECES`): the spec does not ask
//!   for it, but unpaced peershare owners overran an original downloader's 208 KiB receive
//!   buffer, and the original cannot recover lost pieces. It costs peershare's own downloads about
//!   a third (105–120 instead of 175–215 MiB/s for 100 MiB from three owners).
//! - The tracker's socket and every range socket get larger receive buffers (1 MiB, 4 MiB) so
//!   bursts of OWNs or pieces are not dropped by the kernel.
//! - A pickled dict with a repeated key reads as its last value (what Python's dict keeps).

pub mod cli;
pub mod download;
pub mod journal;
pub mod node;
pub mod pickle;
pub mod state;
pub mod tracker;
pub mod wire;

/// Bytes of file data per ChunkSharing piece (`CHUNK_PIECES_SIZE` = 9216 − 2000).
pub const PIECE_SIZE: usize = 7_216;
