//! FileApp ("Bootleg BitTorrent", see `docs/specs/fileapp.md`): a central UDP server keeps the
//! table of who offers which file and pushes it to every active client whenever it changes;
//! clients fetch files straight from each other over TCP. Datagrams, JSON and the TCP request
//! line are byte-identical to the original FileApp.py, so peershare and original programs mix.
//!
//! - [`wire`]: the payload codecs, including Python-`json.dumps`-exact JSON.
//! - [`state`]: the server's state and rules (who is registered, the ordered table, per-client
//!   retransmit deadlines) as a pure state machine returning actions.
//! - [`listing`]: `list` rendered like the original's PrettyTable.
//! - [`server`], [`client`], [`peer`]: the I/O roles; [`cli`]: the command line.
//!
//! Spec points left open and how they are resolved here:
//! - A datagram from an active client is checked in this order: `DEREG`, the ack words (`ACK`,
//!   `ACK_OFFER`, `ACK_DEREG`: ignored), a repeated registration with the same name, else an
//!   offer. A datagram from an address with no active registration that is not a registration
//!   (an offer or `DEREG` after a server restart) is dropped with a warning naming it.
//! - After a server restart the client learns it was forgotten only when an offer goes
//!   unanswered (the protocol has no "unknown client" reply, and original clients must not see
//!   a new one): it then sends its registration again; on the welcome it says so, and offers
//!   everything offered so far. A silent server still ends in `No ACK from Server`.
//! - `help` lists the commands (a peershare addition).
//! - `>>> [Offer Message Received By Server]` is printed only for offers that parse as a JSON
//!   array (the original printed it before `json.loads` crashed on anything else).
//! - A repeated registration from an active address does not change the registered TCP port.
//! - `offer a b c` checks every name first; the first bad one prints its line and nothing is
//!   sent. Offered names are served from the moment they are sent, even if the `ACK_OFFER` is
//!   lost (the server may list them anyway).
//! - After the welcome the client waits up to 2 s for the first table (the server's three sends
//!   take 1 s); if none comes it starts with an empty table and warns.
//! - An empty command line prints the invalid-command line.
//! - Owner side: a malformed or missing request line prints the refusal line with the raw text
//!   (or `(no request)`) as the file and the requester's IP as the client; a transfer that
//!   breaks prints `< {f} transfer failed: {reason}. >` before the close line. The close line
//!   follows every requester-side outcome after `established`, too.
//! - Ctrl-C during a foreground `request` aborts it (`< {f} download failed: interrupted by
//!   Ctrl-C. >`, no `.part` left), then the usual dereg runs.
//! - A requester gives up on an owner silent for 30 s mid-transfer, and an owner on a requester
//!   that stops reading for 30 s (the original waited forever on both).
//! - A table row's address goes through `core::tcp::resolve_host`, so `localhost` works too.
//! - `request` for a table row whose file name is not a plain name (`../x` from a hostile owner)
//!   prints `< {f} download failed: {reason}. >` and writes nothing.
//! - The TCP listener uses std's backlog (128) rather than 16; std sets SO_REUSEADDR.

pub mod cli;
pub mod client;
pub mod listing;
pub mod peer;
pub mod server;
pub mod state;
pub mod wire;
