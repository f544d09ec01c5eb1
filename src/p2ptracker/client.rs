//! The P2PTracker++ client: announces its chunks, asks where the missing ones are, fetches them
//! from peers (at most five at once), announces each new one, and serves its chunks meanwhile.
//!
//! Threads, all on the client's [`Runtime`] (named `p2ptracker-…`, joined when [`run`] returns):
//! the caller's thread owns the tracker connection ([`link`](super::link)) and is its only writer
//! (spec §3.4); the chunk server ([`serve`](super::serve)) is a [`TcpService`] that reads each
//! request on its accept thread and then serves it on the 5-worker pool; each download ([`fetch`](super::fetch)) runs on its own `chunk-N` thread and reports
//! back over a crossbeam channel, so the tracker conversation never waits on a peer. What to
//! fetch next is the [`DownloadSchedule`]'s decision; `local_chunks.txt` is rewritten by the
//! [`ListWriter`]. Pacing: after every `LOCAL_CHUNKS` the tracker thread pauses `pace`; after a
//! `WHERE_CHUNK` it sends nothing until the reply is in, so strict trackers never see two
//! messages in one read.
//!
//! Where the spec is loose: self is recognised in a holder list by our port together with a
//! loopback ip (`localhost`, `127.x`) or the address we advertise; a failed chunk waits for the
//! next round like an unknown one. Stdout names peers as `<ip>:<port>` as announced
//! (`localhost:<port>` in practice). On a terminal every line goes above the `chunks k/N` bar
//! (never under a stale copy of it), the bar's clock keeps moving while we wait, and it is left
//! showing `N/N` at the end.

use super::chunk_list::{self, ChunkList, ListError};
use super::fetch;
use super::folder_lock::{FolderLock, LockError};
use super::link::TrackerLink;
use super::list_writer::ListWriter;
use super::schedule::{DownloadSchedule, Report};
use super::serve;
use super::wire::{Holder, Reply};
use crate::core::event_log::EventLog;
use crate::core::progress;
use crate::core::runtime::{Runtime, STOP_BOUND};
use crate::core::shutdown::Shutdown;
use crate::core::tcp::TcpService;
use crossbeam_channel::{select, Receiver, Sender};
use indicatif::ProgressBar;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use super::schedule::MAX_PARALLEL;

const ROUND_PAUSE_MIN: Duration = Duration::from_secs(1);
/// The address clients announce by the spec.
pub const DEFAULT_ADVERTISE: &str = "localhost";

/// Everything a client needs besides its listener.
pub struct ClientConfig {
    pub folder: PathBuf,
    pub name: String,
    pub tracker: SocketAddr,
    /// Pause after each `LOCAL_CHUNKS`.
    pub pace: Duration,
    /// Return once complete and no upload runs, instead of serving until shutdown.
    pub exit_when_complete: bool,
    /// With `exit_when_complete`: keep serving this long after completion first.
    pub linger: Duration,
    /// The address put in `LOCAL_CHUNKS` (`localhost` by the spec; `--advertise` for multi-host).
    pub advertise: String,
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

impl ClientConfig {
    /// The spec's defaults for everything but the folder, name and tracker: paced at 1 s,
    /// serving until shutdown, announcing `localhost`, quiet, no log.
    pub fn new(folder: PathBuf, name: &str, tracker: SocketAddr) -> ClientConfig {
        ClientConfig {
            folder,
            name: name.to_string(),
            tracker,
            pace: Duration::from_secs(1),
            exit_when_complete: false,
            linger: Duration::ZERO,
            advertise: DEFAULT_ADVERTISE.to_string(),
            log: EventLog::disabled(),
            verbose: false,
            start_gate: None,
            on_complete: None,
        }
    }
}

/// Why a client could not run.
#[derive(Debug)]
pub enum ClientError {
    Folder(PathBuf, io::Error),
    List(ListError),
    Lock(LockError),
    Io(io::Error),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Folder(p, e) => write!(f, "cannot use folder {}: {e}", p.display()),
            ClientError::List(e) => write!(f, "{e}"),
            ClientError::Lock(e) => write!(f, "{e}"),
            ClientError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Folder(_, e) | ClientError::Io(e) => Some(e),
            ClientError::List(e) => Some(e),
            ClientError::Lock(e) => Some(e),
        }
    }
}

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
pub struct Shared {
    pub folder: PathBuf,
    pub name: String,
    pub own_port: u16,
    pub advertise: String,
    pub log: EventLog,
    pub verbose: bool,
    pub shutdown: Shutdown,
    /// Starts the `chunk-N` download threads; joined when the client ends.
    pub rt: Runtime,
    pub list: ListWriter,
    pub held: Mutex<HashMap<u32, PathBuf>>,
    pub uploads: AtomicUsize,
    pub bytes_served: AtomicU64,
    /// The `chunks k/N` bar (verbose only; hidden when stdout is not a terminal).
    pub bar: Option<ProgressBar>,
}

impl Shared {
    pub fn holds(&self, idx: u32) -> Option<PathBuf> {
        self.held.lock().ok()?.get(&idx).cloned()
    }

    pub fn is_self(&self, h: &Holder) -> bool {
        h.port == self.own_port
            && (h.ip.eq_ignore_ascii_case("localhost")
                || h.ip == self.advertise
                || h.ip.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()))
    }

    /// A line on stdout (verbose only), above the progress bar.
    pub fn say(&self, text: &str) {
        if self.verbose {
            self.above_bar(|| println!("{text}"));
        }
    }

    /// A line on stderr (verbose only), above the progress bar.
    pub fn say_err(&self, text: &str) {
        if self.verbose {
            self.above_bar(|| eprintln!("{text}"));
        }
    }

    /// A `warning:` line on stderr (verbose), or a debug log line (quiet, the demo).
    pub fn warn(&self, text: &str) {
        if self.verbose {
            self.above_bar(|| eprintln!("warning: {text}"));
        } else {
            log::debug!("{}: {text}", self.name);
        }
    }

    fn above_bar(&self, print: impl FnOnce()) {
        match &self.bar {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }

    /// Files the received chunk: list rewrite first, then it becomes servable.
    pub fn land(&self, idx: u32) -> io::Result<()> {
        self.list.add_and_save(&self.folder, idx)?;
        if let Ok(mut held) = self.held.lock() {
            held.insert(idx, self.folder.join(format!("chunk_{idx}")));
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

/// Runs a client on `listener` until it is complete (with `exit_when_complete`, after
/// `linger`) or `shutdown` fires. Every thread it started has ended when it returns.
pub fn run(
    config: ClientConfig,
    listener: TcpListener,
    shutdown: &Shutdown,
) -> Result<Outcome, ClientError> {
    let _lock = FolderLock::acquire(&config.folder).map_err(|e| match e {
        LockError::Io(_, io) if !config.folder.is_dir() => {
            ClientError::Folder(config.folder.clone(), io)
        }
        e => ClientError::Lock(e),
    })?;
    let (list, held) = load_holdings(&config.folder, config.verbose)?;
    let own_port = listener.local_addr()?.port();
    let total = list.total;
    let missing: BTreeSet<u32> = (1..=total).filter(|i| !held.contains_key(i)).collect();
    let rt = Runtime::new(
        "p2ptracker",
        &format!("p2ptracker-client-{}", config.name),
        shutdown,
    );
    // This thread is the client's tracker thread: its trace lines carry the client's role.
    crate::core::trace::set_thread_role(rt.role());
    let bar = config
        .verbose
        .then(|| progress::count(u64::from(total), "chunks"));
    let shared = Arc::new(Shared {
        folder: config.folder.clone(),
        name: config.name.clone(),
        own_port,
        advertise: config.advertise.clone(),
        log: config.log.clone(),
        verbose: config.verbose,
        shutdown: rt.shutdown().clone(),
        rt: rt.clone(),
        list: ListWriter::new(list),
        held: Mutex::new(held),
        uploads: AtomicUsize::new(0),
        bytes_served: AtomicU64::new(0),
        bar,
    });
    let serving = shared.clone();
    let service = TcpService::start_request_first(
        &rt,
        listener,
        "chunks",
        serve::request_first(),
        move |stream, peer, request| serve::serve_peer(stream, peer, request, &serving),
    )?;
    let mut link = TrackerLink {
        addr: config.tracker,
        pace: config.pace,
        shared: &shared,
        stream: None,
    };
    let mut schedule = DownloadSchedule::new(total, missing);
    let result = converse(&mut link, &mut schedule, &shared, &config);
    drop(link);
    drop(service);
    rt.stop(STOP_BOUND);
    result.map(|()| Outcome {
        total,
        fetched: schedule.fetched(),
        bytes_fetched: schedule.bytes_fetched(),
        bytes_served: shared.bytes_served.load(Ordering::Relaxed),
        complete: schedule.present() == total,
    })
}

/// The tracker thread's work: announce, gather every chunk, then serve.
fn converse(
    link: &mut TrackerLink,
    schedule: &mut DownloadSchedule,
    shared: &Arc<Shared>,
    config: &ClientConfig,
) -> Result<(), ClientError> {
    let shutdown = &shared.shutdown;
    if let Some(b) = &shared.bar {
        b.set_position(u64::from(schedule.present()));
    }
    if !link.ensure_connected() {
        return Ok(());
    }
    if let Some(gate) = &config.start_gate {
        let _ = gate.recv();
    }
    if !gather(link, schedule, shared, config.pace.max(ROUND_PAUSE_MIN)) {
        return Ok(());
    }
    if let Some(b) = &shared.bar {
        b.set_position(u64::from(schedule.total()));
        b.finish();
    }
    shared.say(&format!(
        "all {} chunks present in {}",
        schedule.total(),
        config.folder.display()
    ));
    if let Some(tell) = &config.on_complete {
        let _ = tell.send(config.name.clone());
    }
    if config.exit_when_complete {
        if !config.linger.is_zero() {
            shared.say(&format!(
                "serving chunks on {}:{} for {} s more",
                shared.advertise,
                shared.own_port,
                config.linger.as_secs()
            ));
            serve_until(link, shutdown, Some(Instant::now() + config.linger));
        }
        while shared.uploads.load(Ordering::SeqCst) > 0
            && !shutdown.sleep(Duration::from_millis(20))
        {}
        return Ok(());
    }
    shared.say(&format!(
        "serving chunks on {}:{} until Ctrl-C",
        shared.advertise, shared.own_port
    ));
    serve_until(link, shutdown, None);
    Ok(())
}

/// Keeps the tracker connection (reconnecting and re-announcing) until shutdown or `until`.
fn serve_until(link: &mut TrackerLink, shutdown: &Shutdown, until: Option<Instant>) {
    let slice = Duration::from_millis(500);
    loop {
        let nap = until.map_or(slice, |t| {
            slice.min(t.saturating_duration_since(Instant::now()))
        });
        if shutdown.sleep(nap) || until.is_some_and(|t| Instant::now() >= t) {
            return;
        }
        link.check_alive();
        if !link.ensure_connected() {
            return;
        }
    }
}

/// Asks, fetches and announces until every chunk is present. False when shutdown came first.
fn gather(
    link: &mut TrackerLink,
    schedule: &mut DownloadSchedule,
    shared: &Arc<Shared>,
    round_pause: Duration,
) -> bool {
    let shutdown = &shared.shutdown;
    let (done_tx, done_rx): (Sender<Report>, Receiver<Report>) = crossbeam_channel::unbounded();
    let mut next_round = Instant::now();
    while !schedule.complete() {
        if shutdown.is_triggered() || !link.ensure_connected() {
            return false;
        }
        drain(link, schedule, shared, &done_tx, &done_rx);
        if !schedule.to_query().is_empty() && Instant::now() >= next_round {
            if !ask_round(link, schedule, shared, &done_tx, &done_rx) {
                return false;
            }
            next_round = Instant::now() + round_pause;
            continue;
        }
        if schedule.complete() {
            // The drain above may have landed the last chunk: do not wait for news that will
            // never come (this cost a full idle second at the end of most swarms).
            break;
        }
        let wait = if schedule.to_query().is_empty() {
            Duration::from_secs(1)
        } else {
            next_round.saturating_duration_since(Instant::now())
        };
        select! {
            recv(done_rx) -> d => if let Ok(d) = d { apply(link, schedule, shared, d) },
            recv(shutdown.receiver()) -> _ => return false,
            default(wait) => {
                link.check_alive();
                if let Some(b) = &shared.bar {
                    b.tick(); // the elapsed time keeps moving while we wait
                }
            }
        }
    }
    for line in schedule.refusal_summary() {
        shared.warn(&line);
    }
    true
}

/// One round of `WHERE_CHUNK` over every chunk to ask about, starting downloads as answers come.
/// False when shutdown came first.
fn ask_round(
    link: &mut TrackerLink,
    schedule: &mut DownloadSchedule,
    shared: &Arc<Shared>,
    done_tx: &Sender<Report>,
    done_rx: &Receiver<Report>,
) -> bool {
    for idx in schedule.to_query() {
        if shared.shutdown.is_triggered() {
            return false;
        }
        match link.where_chunk(idx) {
            Ok(Some(Reply::Holders(hs))) => {
                let hs: Vec<Holder> = hs.into_iter().filter(|h| !shared.is_self(h)).collect();
                schedule.learned(idx, hs);
            }
            Ok(_) => {}
            Err(_) => break, // reconnect at the top of the loop
        }
        drain(link, schedule, shared, done_tx, done_rx);
    }
    true
}

/// Applies every report waiting and starts what the schedule says.
fn drain(
    link: &mut TrackerLink,
    schedule: &mut DownloadSchedule,
    shared: &Arc<Shared>,
    done_tx: &Sender<Report>,
    done_rx: &Receiver<Report>,
) {
    start_downloads(schedule, shared, done_tx);
    while let Ok(d) = done_rx.try_recv() {
        apply(link, schedule, shared, d);
    }
    start_downloads(schedule, shared, done_tx);
}

fn start_downloads(schedule: &mut DownloadSchedule, shared: &Arc<Shared>, done: &Sender<Report>) {
    for start in schedule.next_starts(Instant::now()) {
        let (s, d, job) = (shared.clone(), done.clone(), start.clone());
        if let Err(e) = shared.rt.spawn(&format!("chunk-{}", start.idx), move || {
            fetch::download(s, job, d)
        }) {
            log::warn!("cannot start a download thread: {e}");
            schedule.not_started(&start);
        }
    }
}

/// Applies one download report: warnings, the bar, and the announcement of a landed chunk.
fn apply(link: &mut TrackerLink, schedule: &mut DownloadSchedule, shared: &Shared, d: Report) {
    let (landed, warnings) = schedule.finished(d, Instant::now());
    for w in warnings {
        shared.warn(&w);
    }
    if let Some(idx) = landed {
        if let Some(b) = &shared.bar {
            b.set_position(u64::from(schedule.present()));
        }
        let _ = link.announce(idx);
    }
}
