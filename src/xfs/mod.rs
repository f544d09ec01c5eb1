//! Simple xFS ("Project 3", UMN CSCI 5105): a tracking server knows every node and the files in
//! each node's directory (name, size, MD5); a node that wants a file asks the tracker who has
//! it, picks the node with the lowest `latency + 10 × load`, has that node stream the whole file
//! to it over TCP, and checks the MD5 before the file lands. Spec: `docs/specs/xfs.md`.
//!
//! Layers: [`wire`] (pure codec, byte-exact with Python's `json.dumps`), [`state`] (the tracker's
//! node table), [`files`] (directory scan, MD5), [`latency`] (latency.txt and the peer choice),
//! [`conn`] (message framing), and the roles [`tracker`] and [`node`]; [`cli`] parses the command
//! line.
//!
//! Ambiguities in the spec, and how they are resolved here:
//! - Load counts one per `download` command in progress (raised before asking the tracker,
//!   lowered when the download ends either way), not once per attempt, so `getload` during a
//!   download reads exactly 1 however many retries it takes.
//! - The candidate list printed by `download` is the tracker's answer minus this node, before
//!   `getload` drops unreachable candidates. If nothing is left after that (only this node has the
//!   file, or no candidate answers `getload`) the node prints `{f}: no reachable peer has the file`.
//! - A download attempt that fails before any data connection (connect refused, empty reply,
//!   no connect-back within 10 s) moves straight to the next candidate; an attempt whose bytes
//!   arrive but have the wrong size or MD5, or break off, prints `File download failed` and is
//!   retried on the same peer up to 3 more times.
//! - The data connection has a 30 s per-read timeout, so a peer that stalls forever fails the
//!   attempt instead of hanging the download thread.
//! - A `send` for a name that the scan would not share (`.part`, whitespace) is refused like a
//!   missing file: downloads in progress are never served.
//! - `latency.txt` lines compare addresses, not text, so `localhost` and `127.0.0.1` match;
//!   blank lines and `#` lines are skipped silently, other bad lines with one warning each.
//! - The tracker keys FileList updates from its own refresh by the address it asked, ignoring the
//!   `node_id` in the reply (original nodes overwrote that field).
//! - An empty console line just shows the prompt again; end of input ends the node like `exit`.
//! - Download progress on a terminal is a line per second through the console printer
//!   (`big.bin: 38% (392.7 of 1024.0 MiB, 195.2 MiB/s)`) rather than a redrawn bar: downloads run
//!   in the background while the prompt is live, and a bar on the prompt's line garbles what the
//!   user types. Nothing is printed when stdout is not a terminal.
//! - A node listens on its `<ip>` unless `--bind` names another address (e.g. 0.0.0.0); it always
//!   registers `<ip>`, and looks latency.txt up by `<ip>` and its port. A node bound to an
//!   unspecified address without another `<ip>` registers as 127.0.0.1.
//! - The tracker lets one sending address register at most `--max-nodes-per-ip` (64) nodes; a
//!   registration beyond that is closed without `ACK` (the node prints `NACK`) and logged once.
//!   A `find` refreshes at most 8 nodes at once and gives the whole refresh 3 s; nodes not asked
//!   in time keep their cached lists.
//! - A download that cannot write its file here (disk full, read-only directory) ends at once
//!   with `Download of {f} failed: cannot write …`, without trying other peers.
//! - `help` at the prompt lists the commands.
//! - Only regular files are shared and served; symlinks in `<dir>` are skipped (they could point
//!   outside it).
//! - The downloader accepts the data connection only from the IP of the peer it asked (others are
//!   closed with a warning) and reads at most one byte more than the announced size.
//! - A serving node retries a refused connect-back for up to 3 s, so a downloader that opens its
//!   data port only after the `ACK` (as node.py may) is still reached.
//! - `download` of a name that could not be shared (a path, whitespace, `.part`) prints
//!   `{f}: not a file name that can be shared`; a second `download` of a name already in progress
//!   prints `{f}: already downloading` (both would otherwise write the same `.part`).

pub mod cli;
pub mod conn;
pub mod files;
pub mod latency;
pub mod node;
pub mod state;
pub mod tracker;
pub mod wire;
