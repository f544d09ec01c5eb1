//! One download: ask the tracker, pick owners, learn the size, split it S/N, fetch each range on
//! its own socket, land the file atomically (spec §3.3, §3.5).
//!
//! The original waited forever for every datagram. Here each range socket tracks the byte
//! intervals it has received ([`Intervals`]); an end marker with gaps, or `idle_timeout` without a
//! useful datagram, starts a round that asks for only the missing sub-ranges, twice from the same
//! owner and then twice from each further ranked owner. Pieces are written at their offsets into
//! `<name>.part` ([`PartFile`]) and the file is renamed into place only when every byte is there.

use super::journal::Journal;
use super::wire::{self, Message, Mode, Owner};
use super::PIECE_SIZE;
use crate::core::names;
use crate::core::shutdown::Shutdown;
use crate::core::trace::{self, Direction};
use crate::core::transfer::PartFile;
use crate::core::udp_rpc::{receive_loop, Received, Retry, UdpRpc};
use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Receive buffer of every range socket (pieces arrive in bursts from up to three owners).
pub const RANGE_RCVBUF: usize = 4 << 20;
/// Owners a download uses at once (`MAX_SPLITTNES_RATE`).
pub const MAX_OWNERS: usize = 3;
/// Most sub-ranges asked for in one round (the rest go in the next round).
const MAX_REQUESTS_PER_ROUND: usize = 512;
/// Rounds without progress per owner before the next owner is asked.
const ROUNDS_PER_OWNER: u32 = 2;

/// The byte intervals received so far, sorted and merged.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Intervals(Vec<(u64, u64)>);

impl Intervals {
    /// Adds `[a, b)`; returns how many of those bytes are new.
    pub fn insert(&mut self, a: u64, b: u64) -> u64 {
        if a >= b {
            return 0;
        }
        // First interval that ends at or after `a` (touching intervals merge).
        let start = self.0.partition_point(|&(_, e)| e < a);
        let mut end = start;
        let (mut lo, mut hi) = (a, b);
        let mut covered = 0;
        while end < self.0.len() && self.0[end].0 <= b {
            let (s, e) = self.0[end];
            covered += e.min(b).saturating_sub(s.max(a));
            lo = lo.min(s);
            hi = hi.max(e);
            end += 1;
        }
        self.0.splice(start..end, [(lo, hi)]);
        (b - a) - covered
    }

    /// The gaps of `[a, b)` not yet received.
    pub fn missing(&self, a: u64, b: u64) -> Vec<(u64, u64)> {
        let mut gaps = Vec::new();
        let mut at = a;
        for &(s, e) in &self.0 {
            if e <= at {
                continue;
            }
            if s >= b {
                break;
            }
            if s > at {
                gaps.push((at, s));
            }
            at = at.max(e);
        }
        if at < b {
            gaps.push((at, b));
        }
        gaps
    }

    /// Bytes of `[a, b)` received.
    pub fn covered(&self, a: u64, b: u64) -> u64 {
        (b - a) - self.missing(a, b).iter().map(|(s, e)| e - s).sum::<u64>()
    }
}

/// Python's `round(step * i)` for the S/N split: round half to even.
pub fn split_ranges(size: u64, owners: usize) -> Vec<(u64, u64)> {
    if owners == 0 {
        return Vec::new();
    }
    let step = size as f64 / owners as f64;
    (0..owners)
        .map(|i| {
            let r = |x: f64| x.round_ties_even() as u64;
            (r(step * i as f64), r(step * (i + 1) as f64))
        })
        .collect()
}

/// Why a download ended without a file (the text after `Download of {f} failed: `).
#[derive(Debug, PartialEq, Eq)]
pub enum DownloadError {
    TrackerSilent,
    NoOwnerAnswered,
    Missing(u64),
    Io(String),
    Abandoned,
}

impl fmt::Display for DownloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownloadError::TrackerSilent => write!(f, "the tracker did not answer"),
            DownloadError::NoOwnerAnswered => write!(f, "no owner answered"),
            DownloadError::Missing(n) => write!(f, "{n} bytes are still missing"),
            DownloadError::Io(e) => write!(f, "{e}"),
            DownloadError::Abandoned => write!(f, "the node is exiting"),
        }
    }
}

/// What a download needs from its node.
#[derive(Clone)]
pub struct Downloader {
    pub node_id: i64,
    pub tracker: SocketAddr,
    pub dir: PathBuf,
    pub idle_timeout: Duration,
    pub query_retry: Retry,
    pub journal: Journal,
    pub shutdown: Shutdown,
    /// The node's query socket and its router: NEEDs and size queries of every download.
    pub query: UdpRpc,
    /// The address range sockets bind.
    pub bind: IpAddr,
}

/// A ranked owner with a usable address.
#[derive(Debug, Clone)]
struct Peer {
    node_id: i64,
    addr: SocketAddr,
}

fn fresh_socket(ip: IpAddr) -> Result<UdpSocket, DownloadError> {
    UdpSocket::bind(SocketAddr::new(ip, 0)).map_err(|e| DownloadError::Io(e.to_string()))
}

fn io_err(e: std::io::Error) -> DownloadError {
    DownloadError::Io(e.to_string())
}

impl Downloader {
    /// One request and its answer through the node's query socket (the original opened a fresh
    /// socket per query; one router per node does the same job with one thread).
    fn ask(
        &self,
        bytes: &[u8],
        to: SocketAddr,
        accept: impl Fn(&Message) -> bool + Send + 'static,
    ) -> Option<Message> {
        let traced = |dir: Direction, peer: SocketAddr, b: &[u8]| {
            if trace::enabled() {
                if let Ok(local) = self.query.local_addr() {
                    let msg = wire::parse(b).ok();
                    let text = msg.as_ref().map(|m| wire::value_json(&wire::to_value(m)));
                    let body = trace::Body::Json(text.as_deref().unwrap_or("null"));
                    trace::message(
                        dir,
                        trace::Proto::Udp,
                        Some(local),
                        Some(peer),
                        body,
                        b.len(),
                    );
                }
            }
        };
        traced(Direction::Send, to, bytes);
        let answer = self.query.request(bytes, to, self.query_retry, move |d| {
            wire::parse(&d.bytes).is_ok_and(|m| accept(&m))
        });
        match answer {
            Ok(d) => {
                traced(Direction::Recv, d.from, &d.bytes);
                wire::parse(&d.bytes).ok()
            }
            Err(e) => {
                trace::failure(
                    trace::Proto::Udp,
                    None,
                    Some(to),
                    &format!("no answer: {e}"),
                );
                None
            }
        }
    }

    fn search(&self, f: &str) -> Result<Vec<Owner>, DownloadError> {
        let need = wire::encode(&Message::Node2Tracker {
            node_id: self.node_id,
            filename: f.to_string(),
            mode: Mode::Need,
        });
        let name = f.to_string();
        match self.ask(
            &need,
            self.tracker,
            move |m| matches!(m, Message::Tracker2Node { filename, .. } if *filename == name),
        ) {
            Some(Message::Tracker2Node { search_result, .. }) => Ok(search_result),
            _ => Err(DownloadError::TrackerSilent),
        }
    }

    fn ask_size(&self, f: &str, peer: &Peer) -> Option<u64> {
        let query = wire::encode(&Message::Node2Node {
            src_node_id: self.node_id,
            dest_node_id: peer.node_id,
            filename: f.to_string(),
            size: -1,
        });
        let name = f.to_string();
        match self.ask(&query, peer.addr, move |m| {
            matches!(m, Message::Node2Node { filename, size, .. } if *filename == name && *size >= 0)
        }) {
            Some(Message::Node2Node { size, .. }) => u64::try_from(size).ok(),
            _ => None,
        }
    }

    /// Runs the whole download of `f` and logs its outcome.
    pub fn run(&self, f: &str) {
        match self.fetch(f) {
            Ok(()) => {}
            Err(DownloadError::Abandoned) => {}
            Err(e) => self.journal.log(&format!("Download of {f} failed: {e}")),
        }
    }

    fn fetch(&self, f: &str) -> Result<(), DownloadError> {
        let log = |t: &str| self.journal.log(t);
        log(&format!(
            "You just started to download {f}. Let's search it in torrent!"
        ));
        let ranked = self.ranked_owners(f)?;
        if ranked.is_empty() {
            log(&format!("No one has {f}"));
            return Ok(());
        }
        let mut used: Vec<Peer> = ranked.iter().take(MAX_OWNERS).cloned().collect();
        let ids: Vec<i64> = used.iter().map(|p| p.node_id).collect();
        log(&format!(
            "You are going to download {f} from Node(s) {}",
            super::state::py_list(&ids)
        ));
        let size = self.learn_size(f, &ranked, &mut used)?;
        log(&format!(
            "The file {f} which you are about to download, has size of {size} bytes"
        ));
        let dest = names::resolve(&self.dir, f).map_err(|e| DownloadError::Io(e.to_string()))?;
        let mut part = PartFile::create(&dest).map_err(io_err)?;
        let missing = self.fetch_ranges(f, &mut part, &used, &ranked, size)?;
        if self.shutdown.is_triggered() {
            return Err(DownloadError::Abandoned);
        }
        if missing > 0 {
            return Err(DownloadError::Missing(missing));
        }
        log(&format!(
            "All the chunks of {f} has downloaded from neighboring peers. But they must be reassembled!"
        ));
        log(&format!(
            "All the pieces of the {f} is now sorted and ready to be reassembled."
        ));
        part.file().set_len(size).map_err(io_err)?;
        part.commit().map_err(io_err)?;
        log(&format!(
            "{f} has successfully downloaded and saved in my files directory."
        ));
        Ok(())
    }

    /// The tracker's owners of `f` other than us, most uploads first, with usable addresses.
    fn ranked_owners(&self, f: &str) -> Result<Vec<Peer>, DownloadError> {
        let mut owners: Vec<Owner> = self
            .search(f)?
            .into_iter()
            .filter(|o| o.node_id != self.node_id)
            .collect();
        owners.sort_by_key(|o| std::cmp::Reverse(o.send_freq));
        Ok(owners
            .into_iter()
            .filter_map(|o| {
                let port = u16::try_from(o.port).ok()?;
                let addr = crate::core::tcp::resolve_host(&o.ip, port).ok()?;
                Some(Peer {
                    node_id: o.node_id,
                    addr,
                })
            })
            .collect())
    }

    /// The size from the first of `used` that answers; silent ones are replaced by the next
    /// ranked spare.
    fn learn_size(
        &self,
        f: &str,
        ranked: &[Peer],
        used: &mut Vec<Peer>,
    ) -> Result<u64, DownloadError> {
        let mut next_spare = used.len();
        loop {
            if self.shutdown.is_triggered() {
                return Err(DownloadError::Abandoned);
            }
            let Some(first) = used.first().cloned() else {
                return Err(DownloadError::NoOwnerAnswered);
            };
            if let Some(size) = self.ask_size(f, &first) {
                return Ok(size);
            }
            used.remove(0);
            if let Some(spare) = ranked.get(next_spare) {
                used.push(spare.clone());
                next_spare += 1;
            }
        }
    }

    /// Fetches the S/N split of `size` from `used`, one `torrent-range` thread per non-empty
    /// range; returns how many bytes are still missing.
    fn fetch_ranges(
        &self,
        f: &str,
        part: &mut PartFile,
        used: &[Peer],
        ranked: &[Peer],
        size: u64,
    ) -> Result<u64, DownloadError> {
        let bar = crate::core::progress::bytes(Some(size), f);
        let ranges = split_ranges(size, used.len());
        let role = trace::role();
        let mut missing = 0;
        std::thread::scope(|scope| -> Result<(), DownloadError> {
            let mut running = Vec::new();
            for (peer, &(a, b)) in used.iter().zip(&ranges) {
                if a >= b {
                    continue;
                }
                let file = part.file().try_clone().map_err(io_err)?;
                // This range's owner first, then every other owner in rank order.
                let mut candidates = vec![peer.clone()];
                candidates.extend(ranked.iter().filter(|p| p.node_id != peer.node_id).cloned());
                let fetch = RangeFetch {
                    dl: self,
                    filename: f,
                    range: (a, b),
                    file,
                    candidates,
                    bar: bar.clone(),
                };
                let role = role.clone();
                // Scoped (they borrow this download) and named like the runtime's threads.
                let handle = std::thread::Builder::new()
                    .name("torrent-range".into())
                    .spawn_scoped(scope, move || {
                        if let Some(role) = role {
                            trace::set_thread_role(&role);
                        }
                        fetch.run()
                    })
                    .map_err(io_err)?;
                running.push(handle);
            }
            for handle in running {
                match handle.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(DownloadError::Missing(n))) => missing += n,
                    Ok(Err(e)) => return Err(e),
                    Err(_) => return Err(DownloadError::Io("a range thread panicked".into())),
                }
            }
            Ok(())
        })?;
        bar.finish_and_clear();
        Ok(missing)
    }
}

/// The receiving side of one range: its own socket, its intervals, its owners to ask.
struct RangeFetch<'a> {
    dl: &'a Downloader,
    filename: &'a str,
    range: (u64, u64),
    file: File,
    candidates: Vec<Peer>,
    bar: indicatif::ProgressBar,
}

struct RangeState {
    got: Intervals,
    /// Bytes of the range received (kept so completeness is O(1) per datagram).
    received: u64,
    /// Every range asked for on this socket: pieces of any of them are good data.
    asked: HashSet<(u64, u64)>,
    /// Ranges of the current round whose end marker has not arrived.
    outstanding: HashSet<(u64, u64)>,
    current: usize,
    silent_rounds: u32,
    last_useful: Instant,
    result: Option<Result<(), DownloadError>>,
}

impl RangeState {
    /// Nothing received yet; `range` asked for (the first round).
    fn new(range: (u64, u64)) -> RangeState {
        RangeState {
            got: Intervals::default(),
            received: 0,
            asked: HashSet::from([range]),
            outstanding: HashSet::from([range]),
            current: 0,
            silent_rounds: 0,
            last_useful: Instant::now(),
            result: None,
        }
    }
}

impl RangeFetch<'_> {
    fn request(&self, socket: &UdpSocket, peer: &Peer, (a, b): (u64, u64)) {
        let msg = Message::ChunkSharing {
            src_node_id: self.dl.node_id,
            dest_node_id: peer.node_id,
            filename: self.filename.to_string(),
            range: (a as i64, b as i64),
            idx: -1,
            chunk: None,
        };
        if let Err(e) = wire::send(socket, &msg, peer.addr) {
            log::debug!("range request to {} failed: {e}", peer.addr);
        }
    }

    /// Asks for every missing sub-range, moving on to the next owner after two silent rounds.
    /// Returns an error when every owner has had its rounds.
    fn new_round(&self, socket: &UdpSocket, st: &mut RangeState) -> Result<(), DownloadError> {
        let (a, b) = self.range;
        if st.silent_rounds >= ROUNDS_PER_OWNER {
            st.current += 1;
            st.silent_rounds = 0;
        }
        let gaps = st.got.missing(a, b);
        let left: u64 = gaps.iter().map(|(s, e)| e - s).sum();
        let Some(peer) = self.candidates.get(st.current) else {
            return Err(DownloadError::Missing(left));
        };
        self.dl.journal.log(&format!(
            "Re-requesting {left} missing bytes of {} from node{}",
            self.filename, peer.node_id
        ));
        trace::failure(
            trace::Proto::Udp,
            socket.local_addr().ok(),
            Some(peer.addr),
            &format!("re-request {left} missing bytes of {}", self.filename),
        );
        st.outstanding = gaps.into_iter().take(MAX_REQUESTS_PER_ROUND).collect();
        for &gap in &st.outstanding {
            st.asked.insert(gap);
            self.request(socket, peer, gap);
        }
        st.silent_rounds += 1;
        st.last_useful = Instant::now();
        Ok(())
    }

    /// Handles one datagram; returns whether it was useful (a piece or end marker we asked for).
    fn on_datagram(
        &self,
        socket: &UdpSocket,
        st: &mut RangeState,
        bytes: &[u8],
        from: SocketAddr,
    ) -> Result<bool, DownloadError> {
        let parsed = wire::parse(bytes);
        if let (true, Ok(m)) = (trace::enabled(), &parsed) {
            wire::trace_datagram(Direction::Recv, socket, from, bytes, Some(m));
        }
        let Ok(Message::ChunkSharing {
            filename,
            range,
            idx,
            chunk,
            ..
        }) = parsed
        else {
            return Ok(false);
        };
        let (Ok(ra), Ok(rb)) = (u64::try_from(range.0), u64::try_from(range.1)) else {
            return Ok(false);
        };
        if filename != self.filename || !st.asked.contains(&(ra, rb)) {
            return Ok(false);
        }
        match (idx, chunk) {
            (-1, None) => {
                if !st.outstanding.remove(&(ra, rb)) {
                    // The end of a request from an earlier round.
                    return Ok(false);
                }
                if st.outstanding.is_empty() && st.received < self.range.1 - self.range.0 {
                    self.new_round(socket, st)?;
                }
                Ok(true)
            }
            (idx, Some(chunk)) if idx >= 0 => {
                let Some(offset) = (idx as u64)
                    .checked_mul(PIECE_SIZE as u64)
                    .and_then(|o| o.checked_add(ra))
                else {
                    return Ok(false);
                };
                if offset >= rb || chunk.len() as u64 != (rb - offset).min(PIECE_SIZE as u64) {
                    return Ok(false);
                }
                self.file.write_all_at(&chunk, offset).map_err(io_err)?;
                let new = st.got.insert(offset, offset + chunk.len() as u64);
                st.received += new;
                if new > 0 {
                    st.silent_rounds = 0;
                    self.bar.inc(new);
                }
                Ok(new > 0)
            }
            _ => Ok(false),
        }
    }

    /// One event of the receive loop: a useful datagram resets the idle clock; a whole range
    /// is the result; an idle timeout starts a new round of re-requests.
    fn step(
        &self,
        socket: &UdpSocket,
        st: &mut RangeState,
        event: Received,
    ) -> Result<(), DownloadError> {
        if let Received::Datagram(d) = event {
            if self.on_datagram(socket, st, &d.bytes, d.from)? {
                st.last_useful = Instant::now();
            }
        }
        let (a, b) = self.range;
        if st.received == b - a {
            st.result = Some(Ok(()));
        } else if st.last_useful.elapsed() >= self.dl.idle_timeout {
            self.new_round(socket, st)?;
        }
        Ok(())
    }

    fn run(self) -> Result<(), DownloadError> {
        let (a, b) = self.range;
        let socket = fresh_socket(self.dl.bind)?;
        if let Err(e) = socket2::SockRef::from(&socket).set_recv_buffer_size(RANGE_RCVBUF) {
            log::debug!("could not raise the receive buffer: {e}");
        }
        let Some(first) = self.candidates.first().cloned() else {
            return Err(DownloadError::NoOwnerAnswered);
        };
        let mut st = RangeState::new((a, b));
        self.request(&socket, &first, (a, b));
        self.dl.journal.log(&format!(
            "I sent a request for a chunk of {} for node{}",
            self.filename, first.node_id
        ));
        let done = Shutdown::new();
        let tick =
            (self.dl.idle_timeout / 4).clamp(Duration::from_millis(5), Duration::from_millis(50));
        let looped = receive_loop(&socket, &done, tick, |event| {
            if self.dl.shutdown.is_triggered() {
                st.result = Some(Err(DownloadError::Abandoned));
                done.trigger();
                return;
            }
            let step = self.step(&socket, &mut st, event);
            if let Err(e) = step {
                st.result = Some(Err(e));
            }
            if st.result.is_some() {
                done.trigger();
            }
        });
        if let Err(e) = looped {
            return Err(io_err(e));
        }
        st.result.unwrap_or(Err(DownloadError::Abandoned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_merge_and_report_new_bytes_and_gaps() {
        let mut iv = Intervals::default();
        assert_eq!(iv.insert(10, 20), 10);
        assert_eq!(iv.insert(30, 40), 10);
        assert_eq!(iv.insert(15, 35), 10);
        assert_eq!(iv, Intervals(vec![(10, 40)]));
        assert_eq!(iv.insert(10, 40), 0);
        assert_eq!(iv.insert(40, 50), 10);
        assert_eq!(iv, Intervals(vec![(10, 50)]));
        assert_eq!(iv.insert(0, 5), 5);
        assert_eq!(iv.missing(0, 60), vec![(5, 10), (50, 60)]);
        assert_eq!(iv.missing(12, 30), vec![]);
        assert_eq!(iv.covered(0, 60), 45);
        assert_eq!(iv.insert(0, 60), 15);
        assert!(iv.missing(0, 60).is_empty());
        assert_eq!(iv.insert(7, 7), 0);
    }

    #[test]
    fn split_uses_pythons_round_half_even() {
        // 10 / 4 = 2.5: round(2.5) = 2, round(5.0) = 5, round(7.5) = 8.
        assert_eq!(split_ranges(10, 4), vec![(0, 2), (2, 5), (5, 8), (8, 10)]);
        // 100 / 3 = 33.33…: (0, 33), (33, 67), (67, 100).
        assert_eq!(split_ranges(100, 3), vec![(0, 33), (33, 67), (67, 100)]);
        assert_eq!(split_ranges(1, 2), vec![(0, 0), (0, 1)]);
        assert_eq!(split_ranges(3, 2), vec![(0, 2), (2, 3)]);
        assert_eq!(split_ranges(5, 1), vec![(0, 5)]);
        assert!(split_ranges(5, 0).is_empty());
    }
}
