//! BitTrickle (spec `docs/specs/bittrickle.md`): a permissioned peer-to-peer file-sharing system
//! with a central indexing server. Users log in with a password, stay active with heartbeats,
//! publish file names, search, and download a file straight from an active publisher.
//! Client ↔ server traffic is one UDP datagram of text per request; peer ↔ peer is TCP.
//!
//! - [`wire`] — the pure codec: requests and the original server's exact reply sentences.
//! - [`credentials`] — `credentials.txt` (only BitTrickle has passwords, so it lives here).
//! - [`state`] — the server's rules (credentials, liveness, publications), clock-free.
//! - [`server`] — one thread owning the UDP socket and the state; original-format log lines.
//! - [`client`] — the shell, the heartbeat thread and the 5-worker upload service.
//! - [`session`] — noticing that the server forgot this client, and logging in again.
//! - [`cli`] — `peershare bittrickle server|client`.
//!
//! Spec ambiguities and how they are resolved here:
//! - `tcp_port` in `login` must parse as a `u16` (digits, 0–65535); otherwise the login is
//!   malformed and gets no reply. The `200` reply echoes the number, so a login with `007`
//!   would be echoed as `7` (the original echoed the text).
//! - The heartbeat from an active user refreshes it whatever UDP address it comes from (as the
//!   original: the username is the key).
//! - A quiet server checks expiry every `min(1 s, inactivity timeout)`, so shortened test
//!   timeouts still produce timely `inactive` lines.
//! - `Error: credentials.txt does not exist.` goes to stdout (the original used `print`);
//!   warnings for bad lines go to stderr as `warning: {path} line {n} ignored`, where `{path}`
//!   is the path as given (`credentials.txt` by default). Blank lines are skipped silently.
//! - The client prints the raw reply for every command except a `200` reply to `get`, which is
//!   replaced by `Requesting {f} download from peer {ip}:{port}` and the download's outcome.
//! - `xit` sends nothing to the server (there is no such request, as in the original): the
//!   server notices the silence and logs `Client {u} inactive ❌` after the timeout.
//! - `pub`, `unp` and `get` names go through the shared sanitiser before anything is sent;
//!   `sch` substrings are sent as typed (they are not file names).
//! - A stale late reply is never mistaken for the next request's answer: the UDP router only
//!   hands a request datagrams that arrive while it waits, and the queue of unclaimed ones is
//!   emptied before each request.
//! - An empty command line re-prompts silently; the username and password are taken exactly as
//!   typed (no trimming), so stray spaces are refused locally.
//! - Downloads give up after 30 s without a byte (the protocol's only end marker is EOF, so a
//!   stuck uploader would otherwise hang `get`); uploads give up after 30 s unable to write.
//! - The protocol carries no length, and an uploader killed mid-file closes with an orderly FIN.
//!   So the uploader half-closes after its last byte and waits for the downloader's close, and
//!   the downloader, after EOF, checks that the uploader is still there (`core::transfer::end`,
//!   whose module doc tables what can and cannot be detected; with an original uploader killed
//!   mid-file the prefix is still kept, undetectably). A file that cannot be vouched for is not
//!   landed: `Error during file download from … - {why}`, no `.part` left.
//! - Uploader error lines use these reasons: `no file name arrived: {os error}`,
//!   `the peer closed without naming a file`, `'{f}' is not a valid file name: {why}`,
//!   `File '{f}' not found`, or the OS error while sending.

pub mod cli;
pub mod client;
pub mod credentials;
pub mod server;
pub mod session;
pub mod state;
pub mod wire;
