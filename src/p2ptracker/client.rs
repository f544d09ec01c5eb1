//! The P2PTracker++ client: announces its chunks, asks where the missing ones are, fetches them
//! from peers (at most five at once), announces each new one, and serves its chunks meanwhile.
//!
//! Threads: the caller's thread owns the tracker connection and is its only writer (spec §3.4);
//! the chunk server is a [`TcpService`] on the 5-worker pool; each download runs on its own
//! thread and reports back over a crossbeam channel, so the tracker conversation never waits on
//! a peer. Pacing: after every `LOCAL_CHUNKS` the tracker thread pauses `pace`; after a
//! `WHERE_CHUNK` it sends nothing until the reply is in, so strict trackers never see two messages
//! in one read. That wait (10 s at most) checks for shutdown every 200 ms, so Ctrl-C is prompt
//! even with a tracker that never answers.
//!
//! Where the spec is loose: self is recognised in a holder list by our port together with a
//! loopback ip (`localhost`, `127.x`); holders of a chunk are tried in the order
//! "least busy first, then the tracker's order rotated by the chunk index"; a failed chunk waits
//! for the next round like an unknown one. Stdout names peers as `localhost:<port>`.

use super::chunk_list::{self, ChunkList, ListError};
use super::wire::{self, Holder, Reply};
use crate::core::event_log::EventLog;
use crate::core::progress;
use crate::core::runtime::{Runtime, STOP_BOUND};
use crate::core::select;
use crate::core::shutdown::Shutdown;
use crate::core::tcp::{self, TcpService};
use crate::core::transfer::{self, Expect, TransferError};
use crossbeam_channel::{select, Receiver, Sender};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Downloads running at once (spec §5).
pub const MAX_PARALLEL: usize = 5;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Shutdown is checked this often while waiting for a tracker reply.
const REPLY_SLICE: Duration = Duration::from_millis(200);
const PEER_IDLE: Duration = Duration::from_secs(30);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(4);
const ROUND_PAUSE_MIN: Duration = Duration::from_secs(1);

/// Everything a client needs besides its listener.
pub struct ClientConfig {
    pub folder: PathBuf,
    pub name: String,
    pub tracker: SocketAddr,
    /// Pause after each `LOCAL_CHUNKS`.
    pub pace: Duration,
    /// Return once complete and no upload runs, instead of serving until shutdown.
    pub exit_when_complete: bool,
    pub log: EventLog,
    /// Print per-chunk lines, warnings and the progress bar (the CLI); the demo runs quiet.
    pub verbose: bool,
    /// In-process swarms: after the first announcement, wait until this channel closes, which
    /// the swarm does once the tracker holds every client's announcements, so nobody's first
    /// questions race other clients' announcements (the demo and benchmarks; `None` from the CLI).
    pub start_gate: Option<Receiver<()>>,
    /// Told our name once every chunk is present (in-process swarms wait for everyone).
    pub on_complete: Option<Sender<String>>,
}

/// Why a client could not run.
#[derive(Debug)]
pub enum ClientError {
    Folder(PathBuf, io::Error),
    List(ListError),
    Io(io::Error),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Folder(p, e) => write!(f, "cannot use folder {}: {e}", p.display()),
            ClientError::List(e) => write!(f, "{e}"),
            ClientError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

/// What a finished run did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub total: u32,
    pub fetched: u32,
    pub bytes_fetched: u64,
    pub bytes_served: u64,
    pub complete: bool,
}

/// State shared by the tracker thread, download threads and the chunk server.
struct Shared {
    folder: PathBuf,
    name: String,
    own_port: u16,
    log: EventLog,
    verbose: bool,
    shutdown: Shutdown,
    /// Starts the `chunk-N` download threads; joined when the client ends.
    rt: Runtime,
    list: ListWriter,
    held: Mutex<HashMap<u32, PathBuf>>,
    uploads: AtomicUsize,
    bytes_served: AtomicU64,
}

impl Shared {
    fn holds(&self, idx: u32) -> Option<PathBuf> {
        self.held.lock().ok()?.get(&idx).cloned()
    }

    fn is_self(&self, h: &Holder) -> bool {
        h.port == self.own_port
            && (h.ip.eq_ignore_ascii_case("localhost")
                || h.ip.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()))
    }

    fn warn(&self, text: &str) {
        if self.verbose {
            eprintln!("warning: {text}");
        } else {
            log::debug!("{}: {text}", self.name);
        }
    }

    /// Files the received chunk: list rewrite first, then it becomes servable.
    fn land(&self, idx: u32) -> io::Result<()> {
        self.list.add_and_save(&self.folder, idx)?;
        if let Ok(mut held) = self.held.lock() {
            held.insert(idx, self.folder.join(format!("chunk_{idx}")));
        }
        Ok(())
    }
}

/// `local_chunks.txt` with group commit. Each landed chunk must be in the file on disk before it
/// is announced, and every rewrite is fsynced; with five downloads landing at once, one fsync under
/// a lock per chunk serialised them all. Instead a chunk that lands while a rewrite is in flight
/// waits for the next rewrite, which covers every chunk added meanwhile.
struct ListWriter {
    state: Mutex<ListState>,
    saved: Condvar,
}

struct ListState {
    list: ChunkList,
    added: u64,
    saved: u64,
    saving: bool,
}

impl ListWriter {
    fn new(list: ChunkList) -> ListWriter {
        ListWriter {
            state: Mutex::new(ListState {
                list,
                added: 0,
                saved: 0,
                saving: false,
            }),
            saved: Condvar::new(),
        }
    }

    /// Adds `<idx>,chunk_<idx>` and returns once a rewrite containing it is on disk.
    fn add_and_save(&self, folder: &Path, idx: u32) -> io::Result<()> {
        let poisoned = || io::Error::other("the chunk list lock is poisoned");
        let mut st = self.state.lock().map_err(|_| poisoned())?;
        st.list.add_chunk(idx);
        st.added += 1;
        let mine = st.added;
        while st.saved < mine {
            if st.saving {
                st = self.saved.wait(st).map_err(|_| poisoned())?;
                continue;
            }
            st.saving = true;
            let (text, upto) = (st.list.render(), st.added);
            drop(st);
            let written = chunk_list::write_atomically(folder, &text);
            st = self.state.lock().map_err(|_| poisoned())?;
            st.saving = false;
            self.saved.notify_all();
            written?;
            st.saved = st.saved.max(upto);
        }
        Ok(())
    }
}

/// Loads the list and decides which chunks are present; warns about the rest.
fn load_holdings(
    folder: &Path,
    verbose: bool,
) -> Result<(ChunkList, HashMap<u32, PathBuf>), ClientError> {
    let meta = std::fs::metadata(folder).map_err(|e| ClientError::Folder(folder.into(), e))?;
    if !meta.is_dir() {
        return Err(ClientError::Folder(
            folder.into(),
            io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        ));
    }
    let list = chunk_list::load(folder).map_err(ClientError::List)?;
    let say = |w: &str| {
        if verbose {
            eprintln!("warning: {w}");
        }
    };
    for w in &list.warnings {
        say(w);
    }
    let mut held = HashMap::new();
    for e in &list.entries {
        if held.contains_key(&e.idx) {
            continue;
        }
        let path = folder.join(&e.name);
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => {
                if m.len() == 0 {
                    say(&format!(
                        "{} line {}: chunk {} is empty and cannot be served to peers",
                        chunk_list::FILE_NAME,
                        e.line_no,
                        e.idx
                    ));
                }
                held.insert(e.idx, path);
            }
            _ => say(&format!(
                "{} line {}: {} is missing; chunk {} will be downloaded",
                chunk_list::FILE_NAME,
                e.line_no,
                e.name,
                e.idx
            )),
        }
    }
    Ok((list, held))
}

/// Serves one peer connection: one read, `REQUEST_CHUNK,<idx>` for a chunk we hold, raw bytes.
fn serve_peer(mut stream: TcpStream, peer: SocketAddr, shared: &Shared) {
    let request = match tcp::read_once(&mut stream, 1024, REQUEST_TIMEOUT) {
        Ok(r) => r,
        Err(e) => {
            log::debug!("peer {peer}: no request: {e}");
            return;
        }
    };
    let Some(idx) = wire::parse_request_chunk(&request) else {
        log::info!(
            "peer {peer}: malformed request {:?}",
            String::from_utf8_lossy(&request)
        );
        return;
    };
    let Some(path) = shared.holds(idx) else {
        log::info!("peer {peer}: asked for chunk {idx}, which we do not hold");
        return;
    };
    shared.uploads.fetch_add(1, Ordering::SeqCst);
    match transfer::send_file(&mut stream, &path) {
        Ok(n) => {
            shared.bytes_served.fetch_add(n, Ordering::Relaxed);
        }
        Err(e) => log::info!("peer {peer}: sending chunk {idx} failed: {e}"),
    }
    shared.uploads.fetch_sub(1, Ordering::SeqCst);
}

/// The one tracker connection and everything written on it.
struct TrackerLink<'a> {
    addr: SocketAddr,
    pace: Duration,
    shared: &'a Shared,
    stream: Option<TcpStream>,
}

impl TrackerLink<'_> {
    /// Connects (with backoff, forever) if not connected and re-announces every held chunk.
    /// Returns false only when shutdown fired.
    fn ensure_connected(&mut self) -> bool {
        while self.stream.is_none() {
            let mut backoff = BACKOFF_FIRST;
            let mut said = false;
            let stream = loop {
                if self.shared.shutdown.is_triggered() {
                    return false;
                }
                match tcp::connect(self.addr, CONNECT_TIMEOUT) {
                    Ok(s) => break s,
                    Err(e) => {
                        if !said {
                            if self.shared.verbose {
                                eprintln!("waiting for tracker at {}", self.addr);
                            }
                            log::debug!("tracker {}: {e}", self.addr);
                            said = true;
                        }
                        if self.shared.shutdown.sleep(backoff) {
                            return false;
                        }
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                    }
                }
            };
            log::info!("connected to tracker at {}", self.addr);
            self.stream = Some(stream);
            let mut held: Vec<u32> = self
                .shared
                .held
                .lock()
                .map(|h| h.keys().copied().collect())
                .unwrap_or_default();
            held.sort_unstable();
            for idx in held {
                if self.announce(idx).is_err() {
                    break; // lost again: the outer loop reconnects
                }
            }
        }
        true
    }

    fn lost(&mut self, why: &io::Error) {
        log::warn!("lost the tracker at {}: {why}", self.addr);
        self.stream = None;
    }

    /// Sends `LOCAL_CHUNKS` in one write, logs it, then pauses.
    fn announce(&mut self, idx: u32) -> io::Result<()> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(io::Error::new(io::ErrorKind::NotConnected, "no tracker"));
        };
        let msg = wire::encode_local_chunks(idx, "localhost", self.shared.own_port);
        if let Err(e) = stream.write_all(msg.as_bytes()) {
            self.lost(&e);
            return Err(e);
        }
        let port = self.shared.own_port.to_string();
        self.shared.log.record(&[
            &self.shared.name,
            "LOCAL_CHUNKS",
            &idx.to_string(),
            "localhost",
            &port,
        ]);
        if !self.pace.is_zero() {
            self.shared.shutdown.sleep(self.pace);
        }
        Ok(())
    }

    /// Asks `WHERE_CHUNK` and waits for its reply. `Ok(None)`: no usable answer this round.
    fn where_chunk(&mut self, idx: u32) -> io::Result<Option<Reply>> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(io::Error::new(io::ErrorKind::NotConnected, "no tracker"));
        };
        let asked = (|| {
            stream.write_all(wire::encode_where_chunk(idx).as_bytes())?;
            self.shared
                .log
                .record(&[&self.shared.name, "WHERE_CHUNK", &idx.to_string()]);
            let reply = read_reply(stream, &self.shared.shutdown)?;
            if reply.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the tracker closed the connection",
                ));
            }
            Ok(reply)
        })();
        match asked {
            Ok(reply) => Ok(wire::parse_reply(&reply, idx)),
            Err(e) => {
                self.lost(&e);
                Err(e)
            }
        }
    }

    /// While idle: notices a tracker that went away, so we reconnect and re-announce.
    fn check_alive(&mut self) {
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(1)));
        let mut buf = [0u8; 1024];
        match stream.read(&mut buf) {
            Ok(0) => self.lost(&io::Error::new(io::ErrorKind::UnexpectedEof, "closed")),
            Ok(_) => {}
            Err(e) if crate::core::timed_out(&e) => {}
            Err(e) => self.lost(&e),
        }
    }
}

/// One read of the tracker's reply (up to [`wire::MAX_REPLY`] bytes, [`REPLY_TIMEOUT`]), waited
/// for in short slices so Ctrl-C is not held up by a tracker that never answers.
fn read_reply(stream: &mut TcpStream, shutdown: &Shutdown) -> io::Result<Vec<u8>> {
    let deadline = Instant::now() + REPLY_TIMEOUT;
    loop {
        match tcp::read_once(stream, wire::MAX_REPLY, REPLY_SLICE) {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if shutdown.is_triggered() {
                    return Err(io::Error::new(io::ErrorKind::Interrupted, "shutting down"));
                }
                if Instant::now() >= deadline {
                    return Err(e);
                }
            }
            other => return other,
        }
    }
}

/// A download's report to the tracker thread.
struct Done {
    idx: u32,
    /// The holder first chosen (its busy count is released).
    chosen: Holder,
    /// The holder that delivered, and the byte count.
    result: Option<(Holder, u64)>,
}

/// Fetches chunk `idx` from one holder into `<folder>/chunk_<idx>` (via `.part`).
fn fetch(shared: &Shared, idx: u32, holder: &Holder) -> Result<u64, TransferError> {
    let addr = tcp::resolve_host(&holder.ip, holder.port)?;
    let mut stream = tcp::connect(addr, CONNECT_TIMEOUT)?;
    stream.write_all(wire::encode_request_chunk(idx).as_bytes())?;
    shared.log.record(&[
        &shared.name,
        "REQUEST_CHUNK",
        &idx.to_string(),
        "localhost",
        &holder.port.to_string(),
    ]);
    stream.set_read_timeout(Some(PEER_IDLE))?;
    let dest = shared.folder.join(format!("chunk_{idx}"));
    transfer::receive_file(
        &mut stream,
        &dest,
        Expect {
            refuse_empty: true,
            refusal_text: Some(wire::CHUNK_NOT_FOUND),
            ..Expect::default()
        },
        &mut |_| {},
    )
}

/// Tries `holders` in order until one delivers chunk `idx`.
fn download(shared: Arc<Shared>, idx: u32, holders: Vec<Holder>, done: Sender<Done>) {
    let chosen = holders[0].clone();
    let mut result = None;
    for h in holders {
        if shared.shutdown.is_triggered() {
            break;
        }
        match fetch(&shared, idx, &h) {
            Ok(n) => match shared.land(idx) {
                Ok(()) => {
                    if shared.verbose {
                        println!("chunk {idx} received from localhost:{} ({n} bytes)", h.port);
                    }
                    result = Some((h, n));
                    break;
                }
                Err(e) => shared.warn(&format!("chunk {idx}: cannot update the chunk list: {e}")),
            },
            Err(e) => shared.warn(&format!(
                "chunk {idx} from localhost:{} failed: {e}",
                h.port
            )),
        }
    }
    let _ = done.send(Done {
        idx,
        chosen,
        result,
    });
}

/// Bookkeeping of the tracker thread.
struct Plan {
    total: u32,
    missing: BTreeSet<u32>,
    ready: BTreeMap<u32, Vec<Holder>>,
    in_flight: HashSet<u32>,
    busy: HashMap<Holder, usize>,
    outcome: Outcome,
}

impl Plan {
    fn complete(&self) -> bool {
        self.missing.is_empty() && self.in_flight.is_empty()
    }

    /// Missing chunks neither running nor waiting for a slot.
    fn to_query(&self) -> Vec<u32> {
        self.missing
            .iter()
            .copied()
            .filter(|i| !self.in_flight.contains(i) && !self.ready.contains_key(i))
            .collect()
    }

    /// Starts downloads, rarest first, while fewer than MAX_PARALLEL run.
    fn start_downloads(&mut self, shared: &Arc<Shared>, done: &Sender<Done>) {
        if self.in_flight.len() >= MAX_PARALLEL || self.ready.is_empty() {
            return;
        }
        let order = select::rarest_first(self.ready.iter().map(|(i, h)| (*i, h.len())).collect());
        for idx in order {
            if self.in_flight.len() >= MAX_PARALLEL {
                break;
            }
            let Some(holders) = self.ready.remove(&idx) else {
                continue;
            };
            let rotate = idx as usize;
            let Some(first) = select::least_busy(&holders, &self.busy, rotate) else {
                continue;
            };
            let n = holders.len();
            let mut ordered = vec![holders[first].clone()];
            ordered.extend(
                (0..n)
                    .map(|k| (k + rotate) % n)
                    .filter(|&i| i != first)
                    .map(|i| holders[i].clone()),
            );
            *self.busy.entry(ordered[0].clone()).or_default() += 1;
            self.in_flight.insert(idx);
            let (shared, done) = (shared.clone(), done.clone());
            let rt = shared.rt.clone();
            let spawned = rt.spawn(&format!("chunk-{idx}"), move || {
                download(shared, idx, ordered, done)
            });
            if let Err(e) = spawned {
                log::warn!("cannot start a download thread: {e}");
                self.in_flight.remove(&idx);
            }
        }
    }

    /// Applies one download report; returns the index to announce, if it landed.
    fn finish(&mut self, d: Done) -> Option<u32> {
        self.in_flight.remove(&d.idx);
        if let Some(n) = self.busy.get_mut(&d.chosen) {
            *n = n.saturating_sub(1);
        }
        let (_, bytes) = d.result?;
        self.missing.remove(&d.idx);
        self.outcome.fetched += 1;
        self.outcome.bytes_fetched += bytes;
        Some(d.idx)
    }
}

/// Runs a client on `listener` until it is complete (with `exit_when_complete`) or `shutdown`
/// fires. Leaves no `.part` files behind.
pub fn run(
    config: ClientConfig,
    listener: TcpListener,
    shutdown: Shutdown,
) -> Result<Outcome, ClientError> {
    let (list, held) = load_holdings(&config.folder, config.verbose)?;
    let own_port = listener.local_addr()?.port();
    let total = list.total;
    let missing: BTreeSet<u32> = (1..=total).filter(|i| !held.contains_key(i)).collect();
    let rt = Runtime::new(
        "p2ptracker",
        &format!("p2ptracker-client-{}", config.name),
        &shutdown,
    );
    let shared = Arc::new(Shared {
        folder: config.folder.clone(),
        name: config.name.clone(),
        own_port,
        log: config.log.clone(),
        verbose: config.verbose,
        shutdown: rt.shutdown().clone(),
        rt: rt.clone(),
        list: ListWriter::new(list),
        held: Mutex::new(held),
        uploads: AtomicUsize::new(0),
        bytes_served: AtomicU64::new(0),
    });
    let serving = shared.clone();
    let service = TcpService::start(
        &rt,
        listener,
        "chunks",
        crate::core::pool::UPLOAD_WORKERS,
        move |stream, peer| serve_peer(stream, peer, &serving),
    )?;
    let mut link = TrackerLink {
        addr: config.tracker,
        pace: config.pace,
        shared: &shared,
        stream: None,
    };
    let mut plan = Plan {
        total,
        missing,
        ready: BTreeMap::new(),
        in_flight: HashSet::new(),
        busy: HashMap::new(),
        outcome: Outcome {
            total,
            ..Outcome::default()
        },
    };
    let result = converse(&mut link, &mut plan, &shared, &config, rt.shutdown());
    drop(service);
    rt.stop(STOP_BOUND);
    remove_part_files(&config.folder);
    let mut outcome = plan.outcome;
    outcome.complete = plan.missing.is_empty();
    outcome.bytes_served = shared.bytes_served.load(Ordering::Relaxed);
    result.map(|()| outcome)
}

/// The tracker thread's work: announce, ask, fetch, announce again; then serve.
fn converse(
    link: &mut TrackerLink,
    plan: &mut Plan,
    shared: &Arc<Shared>,
    config: &ClientConfig,
    shutdown: &Shutdown,
) -> Result<(), ClientError> {
    let (done_tx, done_rx): (Sender<Done>, Receiver<Done>) = crossbeam_channel::unbounded();
    let bar = config
        .verbose
        .then(|| progress::count(u64::from(plan.total), "chunks"));
    let present = |p: &Plan| u64::from(p.total) - p.missing.len() as u64;
    if let Some(b) = &bar {
        b.set_position(present(plan));
    }
    if !link.ensure_connected() {
        return Ok(());
    }
    if let Some(gate) = &config.start_gate {
        let _ = gate.recv();
    }
    let round_pause = config.pace.max(ROUND_PAUSE_MIN);
    let mut next_round = Instant::now();
    let apply = |plan: &mut Plan, link: &mut TrackerLink, d: Done| {
        if let Some(idx) = plan.finish(d) {
            if let Some(b) = &bar {
                b.set_position(present(plan));
            }
            let _ = link.announce(idx);
        }
    };
    while !plan.complete() {
        if shutdown.is_triggered() || !link.ensure_connected() {
            return Ok(());
        }
        while let Ok(d) = done_rx.try_recv() {
            apply(plan, link, d);
        }
        plan.start_downloads(shared, &done_tx);
        let pending = plan.to_query();
        if !pending.is_empty() && Instant::now() >= next_round {
            for idx in pending {
                if shutdown.is_triggered() {
                    return Ok(());
                }
                match link.where_chunk(idx) {
                    Ok(Some(Reply::Holders(hs))) => {
                        let hs: Vec<Holder> =
                            hs.into_iter().filter(|h| !shared.is_self(h)).collect();
                        if !hs.is_empty() {
                            plan.ready.insert(idx, hs);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break, // reconnect at the top of the loop
                }
                plan.start_downloads(shared, &done_tx);
                while let Ok(d) = done_rx.try_recv() {
                    apply(plan, link, d);
                }
                plan.start_downloads(shared, &done_tx);
            }
            next_round = Instant::now() + round_pause;
            continue;
        }
        if plan.complete() {
            // The drain above may have landed the last chunk: do not wait for news that will
            // never come (this cost a full idle second at the end of most swarms).
            break;
        }
        let wait = if plan.to_query().is_empty() {
            Duration::from_secs(1)
        } else {
            next_round.saturating_duration_since(Instant::now())
        };
        select! {
            recv(done_rx) -> d => if let Ok(d) = d { apply(plan, link, d) },
            recv(shutdown.receiver()) -> _ => return Ok(()),
            default(wait) => link.check_alive(),
        }
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if config.verbose {
        println!(
            "all {} chunks present in {}",
            plan.total,
            config.folder.display()
        );
    }
    if let Some(tell) = &config.on_complete {
        let _ = tell.send(config.name.clone());
    }
    if config.exit_when_complete {
        while shared.uploads.load(Ordering::SeqCst) > 0
            && !shutdown.sleep(Duration::from_millis(20))
        {}
        return Ok(());
    }
    if config.verbose {
        println!(
            "serving chunks on localhost:{} until Ctrl-C",
            shared.own_port
        );
    }
    while !shutdown.sleep(Duration::from_millis(500)) {
        link.check_alive();
        if !link.ensure_connected() {
            break;
        }
    }
    Ok(())
}

/// Ctrl-C and normal ends leave no `chunk_<idx>.part` behind.
fn remove_part_files(folder: &Path) {
    let Ok(dir) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("chunk_") && name.ends_with(".part") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
