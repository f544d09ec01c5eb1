//! A node: serves its directory, answers `getload`/`updatelist`, and downloads whole files from
//! the peer with the lowest `latency + 10 × load`, checking size and MD5 before a download lands.
//!
//! Threads: the console (main thread), the listener with its 5-worker pool (one message per
//! connection), one upload thread per `send` (at most [`MAX_UPLOADS`]), and one thread per
//! download, so the prompt returns at once and large files never block `getload`.

use crate::core::console::{Console, Input, Printer};
use crate::core::latency::LatencyTable;
use crate::core::names;
use crate::core::pool::UPLOAD_WORKERS;
use crate::core::runtime::{Runtime, STOP_BOUND};
use crate::core::select::rank_by_latency_and_load;
use crate::core::shutdown::Shutdown;
use crate::core::tcp::{self, TcpService};
use crate::core::transfer::{self, Expect};
use crate::xfs::conn::{self, RequestError};
use crate::xfs::files::{self, FileIndex, Md5Hasher};
use crate::xfs::wire::{self, FileEntry, FileList, Message, NodeInfo};
use std::collections::HashSet;
use std::fmt;
use std::io::{self, IsTerminal, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown as NetShutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most uploads streaming at once; a `send` beyond that is closed without reply.
pub const MAX_UPLOADS: usize = 16;

/// Messages longer than this break original programs (they read with one `recv(2048)`).
const ORIGINAL_RECV: usize = 2048;

/// What a node needs besides its listener.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Shared and download directory.
    pub dir: PathBuf,
    pub tracker: SocketAddr,
    /// latency.txt, re-read for every download.
    pub latency_path: PathBuf,
    /// How long a download waits for the serving peer to connect back.
    pub accept_timeout: Duration,
    /// Extra attempts at the same peer after an MD5/size mismatch.
    pub retries: usize,
}

impl NodeConfig {
    pub fn new(dir: PathBuf, tracker: SocketAddr, latency_path: PathBuf) -> NodeConfig {
        NodeConfig {
            dir,
            tracker,
            latency_path,
            accept_timeout: Duration::from_secs(10),
            retries: 3,
        }
    }
}

/// Why a node stopped.
#[derive(Debug)]
pub enum NodeError {
    /// The tracker refused the registration connection (exit 1).
    TrackerDown,
    Io(io::Error),
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeError::TrackerDown => write!(f, "the tracking server is down"),
            NodeError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for NodeError {}

impl From<io::Error> for NodeError {
    fn from(e: io::Error) -> Self {
        NodeError::Io(e)
    }
}

struct Node {
    config: NodeConfig,
    id: String,
    /// Our listener's address: what we register and what latency.txt is looked up by.
    addr: SocketAddr,
    load: AtomicU64,
    uploads: AtomicUsize,
    index: Mutex<FileIndex>,
    printer: Printer,
    shutdown: Shutdown,
    /// Starts the node's upload, control and download threads; joined at exit.
    rt: Runtime,
    warned_size: AtomicBool,
    /// Names being downloaded: two downloads of one name would share one `.part` file.
    downloading: Mutex<HashSet<String>>,
    /// latency.txt warnings already logged, so a re-read repeats only new ones.
    latency_warned: Mutex<HashSet<String>>,
}

const TRACKER_CONNECT: Duration = Duration::from_secs(2);

/// A UUID version 4 string from `rand`.
pub fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = crate::core::digest::to_hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Counts one download in progress for as long as it lives.
struct LoadGuard<'a>(&'a AtomicU64);

impl<'a> LoadGuard<'a> {
    fn new(load: &'a AtomicU64) -> Self {
        load.fetch_add(1, Ordering::SeqCst);
        LoadGuard(load)
    }
}

impl Drop for LoadGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Node {
    fn files(&self) -> Vec<FileEntry> {
        let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        index.scan(&self.config.dir).unwrap_or_else(|e| {
            log::warn!("cannot scan {}: {e}", self.config.dir.display());
            Vec::new()
        })
    }

    fn ip_text(&self) -> String {
        self.addr.ip().to_string()
    }

    /// The FileList as sent for `updatelist` (both directions): address set.
    fn file_list(&self) -> FileList {
        FileList {
            files: self.files(),
            node_id: self.id.clone(),
            node_port: Some(self.addr.port()),
            node_ip: Some(self.ip_text()),
        }
    }

    /// Encodes `msg`, warning once if original programs could not read it whole.
    fn encode(&self, msg: &Message) -> Vec<u8> {
        let bytes = wire::encode(msg);
        if bytes.len() > ORIGINAL_RECV && !self.warned_size.swap(true, Ordering::SeqCst) {
            log::warn!(
                "this node's file list is {} bytes; original xFS programs read only {ORIGINAL_RECV}",
                bytes.len()
            );
        }
        bytes
    }

    /// latency.txt as it is now (edits apply to the next download), each warning logged once.
    fn latencies(&self) -> LatencyTable {
        let (table, warnings) = LatencyTable::read(&self.config.latency_path);
        let mut warned = self
            .latency_warned
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for w in warnings {
            if warned.insert(w.clone()) {
                log::warn!("{w}");
            }
        }
        table
    }

    fn ask_tracker(&self, message: &[u8], reply: Duration) -> Result<Vec<u8>, RequestError> {
        conn::request(self.config.tracker, message, TRACKER_CONNECT, reply)
    }

    /// Sends our FileList to the tracker. Only a failed connection is an error: an original
    /// tracker may close without an `ACK`.
    fn send_file_list(&self) -> Result<(), RequestError> {
        let bytes = self.encode(&Message::FileList(self.file_list()));
        match self.ask_tracker(&bytes, Duration::from_secs(2)) {
            Err(e @ RequestError::Connect(_)) => Err(e),
            Err(e) => {
                log::debug!("file list sent, no ACK: {e}");
                Ok(())
            }
            Ok(_) => Ok(()),
        }
    }

    /// Registration at start: Node JSON with a full scan and load 0.
    fn register(&self) -> Result<(), NodeError> {
        let info = NodeInfo {
            id: self.id.clone(),
            status: 1,
            ip: self.ip_text(),
            port: self.addr.port(),
            load: Some(0),
            filelist: FileList {
                files: self.files(),
                node_id: self.id.clone(),
                node_port: None,
                node_ip: None,
            },
        };
        let bytes = self.encode(&Message::Node(info));
        match self.ask_tracker(&bytes, Duration::from_secs(5)) {
            Err(RequestError::Connect(e)) => {
                log::debug!("registration failed: {e}");
                self.printer
                    .line("Connection refused, tracking server is down");
                Err(NodeError::TrackerDown)
            }
            Ok(reply) if reply.trim_ascii() == b"ACK" => {
                self.printer.line("ACK");
                Ok(())
            }
            Ok(_) | Err(RequestError::Exchange(_)) => {
                self.printer.line("NACK");
                Ok(())
            }
        }
    }

    /// Asks the tracker who has `name` (after re-registering our list); `Ok(None)` when the
    /// tracker answered with nothing usable.
    fn find_nodes(&self, name: &str) -> Result<Option<Vec<NodeInfo>>, NodeError> {
        if self.send_file_list().is_err() {
            return Err(NodeError::TrackerDown);
        }
        let reply = match self.ask_tracker(
            &wire::encode(&Message::Find(Some(name.to_string()))),
            Duration::from_secs(10),
        ) {
            Ok(r) => r,
            Err(RequestError::Connect(_)) => return Err(NodeError::TrackerDown),
            Err(e) => {
                log::warn!("the tracker gave no find reply: {e}");
                return Ok(None);
            }
        };
        match wire::parse(&reply) {
            Ok(Message::NodeList(nodes)) => Ok(Some(nodes)),
            Ok(_) | Err(_) => Ok(None),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Console commands

    fn cmd_find(&self, name: &str) {
        let p = &self.printer;
        match self.find_nodes(name) {
            Err(_) => p.line("Connection refused, tracking server is down"),
            Ok(None) => p.line("NACK OR NO FILE FOUND"),
            Ok(Some(nodes)) if nodes.is_empty() => p.line("No nodes found"),
            Ok(Some(nodes)) => {
                p.line("Found nodes:");
                for n in nodes {
                    p.line(&format!("{} {}", n.ip, n.port));
                }
            }
        }
    }

    fn cmd_getload(&self, ip: &str, port: &str) {
        let p = &self.printer;
        let addr = match (wire::parse_ip(ip), port.parse::<u16>()) {
            (Some(ip), Ok(port)) => SocketAddr::new(ip, port),
            _ => {
                p.line("Usage: getload <ip> <port>");
                return;
            }
        };
        let timeout = Duration::from_secs(2);
        match conn::request(addr, &wire::encode(&Message::GetLoad), timeout, timeout) {
            Err(RequestError::Connect(_)) => {
                p.line("Connection refused, cannot get load");
                p.line("Nothing");
            }
            Ok(reply) if !reply.trim_ascii().is_empty() => {
                p.line(String::from_utf8_lossy(reply.trim_ascii()).as_ref())
            }
            Ok(_) | Err(RequestError::Exchange(_)) => p.line("NACK"),
        }
    }

    fn cmd_updatelist(&self) {
        if self.send_file_list().is_err() {
            self.printer
                .line("Connection refused, tracking server is down");
        }
    }

    // -----------------------------------------------------------------------------------------
    // Listener side

    fn serve(self: &Arc<Self>, mut stream: TcpStream, peer: SocketAddr) {
        let bytes = match conn::read_message(&mut stream, Duration::from_secs(5)) {
            Ok(b) => b,
            Err(e) => {
                log::debug!("{peer}: no message: {e}");
                return;
            }
        };
        let reply = match wire::parse(&bytes) {
            Ok(Message::GetLoad) => self.load.load(Ordering::SeqCst).to_string().into_bytes(),
            Ok(Message::UpdateList) => self.encode(&Message::FileList(self.file_list())),
            Ok(Message::Send { name, ip, port }) => {
                self.start_upload(stream, peer, &name, SocketAddr::new(ip, port));
                return;
            }
            Ok(other) => {
                log::debug!("{peer}: {other:?} is not a node request; closing");
                return;
            }
            Err(e) => {
                log::debug!("{peer}: {e}; closing");
                return;
            }
        };
        let _ = stream.write_all(&reply);
    }

    /// `send`: checks the name, replies `ACK` at once and streams on an upload thread, so a
    /// large file never holds a pool worker (or deadlocks against a downloader waiting for ACK).
    fn start_upload(
        self: &Arc<Self>,
        mut stream: TcpStream,
        peer: SocketAddr,
        name: &str,
        to: SocketAddr,
    ) {
        let path = match names::resolve(&self.config.dir, name) {
            Ok(p) => p,
            Err(e) => {
                log::warn!("{peer}: refused send of {name:?}: {e}");
                return;
            }
        };
        if let Some(why) = files::unshareable(name) {
            log::warn!("{peer}: refused send of {name:?}: {why}");
            return;
        }
        let regular = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file());
        if !regular {
            log::warn!("{peer}: refused send of {name:?}: no such file");
            return;
        }
        if self.uploads.fetch_add(1, Ordering::SeqCst) >= MAX_UPLOADS {
            self.uploads.fetch_sub(1, Ordering::SeqCst);
            log::warn!("{peer}: refused send of {name:?}: {MAX_UPLOADS} uploads already running");
            return;
        }
        let me = self.clone();
        let name = name.to_string();
        let spawned = self.rt.spawn("upload", move || {
            let _ = stream.write_all(b"ACK");
            drop(stream);
            match connect_back(to, Duration::from_secs(3)) {
                // A receiver that stops reading must not hold this thread forever.
                Ok(mut data) => match data
                    .set_write_timeout(Some(Duration::from_secs(30)))
                    .and_then(|_| transfer::send_file(&mut data, &path))
                {
                    Ok(n) => {
                        let _ = data.shutdown(NetShutdown::Write);
                        log::info!("sent {name} ({n} bytes) to {to}");
                    }
                    Err(e) => log::warn!("sending {name} to {to} failed: {e}"),
                },
                Err(e) => log::warn!("cannot connect to {to} to send {name}: {e}"),
            }
            me.uploads.fetch_sub(1, Ordering::SeqCst);
        });
        if let Err(e) = spawned {
            self.uploads.fetch_sub(1, Ordering::SeqCst);
            log::warn!("cannot start an upload thread: {e}");
        }
    }

    // -----------------------------------------------------------------------------------------
    // Downloads

    /// On exit the process ends without unwinding the download threads, so their `.part` files
    /// would stay behind: remove them here.
    fn remove_partial_downloads(&self) {
        let names = self.downloading.lock().unwrap_or_else(|e| e.into_inner());
        for name in names.iter() {
            if let Ok(dest) = names::resolve(&self.config.dir, name) {
                let _ = std::fs::remove_file(transfer::part_path(&dest));
            }
        }
    }

    fn download(&self, name: &str) {
        let p = &self.printer;
        let dest = match names::resolve(&self.config.dir, name) {
            Ok(d) if files::unshareable(name).is_none() => d,
            _ => {
                p.line(&format!("{name}: not a file name that can be shared"));
                return;
            }
        };
        let fresh = self
            .downloading
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string());
        if !fresh {
            p.line(&format!("{name}: already downloading"));
            return;
        }
        self.download_into(name, &dest);
        self.downloading
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }

    /// The download proper: find, rank, attempts; counts in `load` while it runs.
    fn download_into(&self, name: &str, dest: &std::path::Path) {
        let p = &self.printer;
        let _load = LoadGuard::new(&self.load);
        let nodes = match self.find_nodes(name) {
            Err(_) => {
                p.line("Connection refused, cannot download the file, tracker is down");
                return;
            }
            Ok(Some(nodes)) if !nodes.is_empty() => nodes,
            Ok(_) => {
                p.line("No nodes found with the file");
                return;
            }
        };
        let candidates: Vec<(SocketAddr, FileEntry)> = nodes
            .iter()
            .filter_map(|n| {
                let ip = wire::parse_ip(&n.ip)?;
                let file = n.filelist.files.iter().find(|f| f.name == name)?;
                Some((SocketAddr::new(ip, n.port), file.clone()))
            })
            .filter(|(addr, _)| *addr != self.addr)
            .collect();
        let listed: Vec<String> = candidates.iter().map(|(a, _)| a.to_string()).collect();
        p.line(&format!("[{}]", listed.join(", ")));
        let latencies = self.latencies();
        let mut scored = Vec::new();
        for ((addr, file), load) in candidates.iter().cloned().zip(ask_loads(&candidates)) {
            match load {
                Some(load) => {
                    let latency = latencies.latency_ms(self.addr, addr);
                    scored.push((addr, file, latency, load));
                }
                None => log::warn!("{addr} did not answer getload; not asking it for {name}"),
            }
        }
        if scored.is_empty() {
            p.line(&format!("{name}: no reachable peer has the file"));
            return;
        }
        let costs: Vec<(u64, u64)> = scored.iter().map(|(_, _, l, d)| (*l, *d)).collect();
        for i in rank_by_latency_and_load(&costs) {
            let (addr, file, latency, load) = &scored[i];
            log::info!(
                "asking {addr} for {name}: {latency} ms + 10 × load {load} = {}",
                crate::core::select::latency_load_score(*latency, *load)
            );
            for _ in 0..=self.config.retries {
                if self.shutdown.is_triggered() {
                    return;
                }
                match self.attempt(*addr, file, *latency, dest) {
                    Attempt::Done => {
                        p.line("File downloaded successfully");
                        return;
                    }
                    Attempt::Refused(why) => {
                        log::warn!("{addr} did not send {name}: {why}");
                        break;
                    }
                    Attempt::Failed(why) => {
                        log::warn!("download of {name} from {addr} failed: {why}");
                        p.line("File download failed");
                    }
                }
            }
        }
        p.line(&format!(
            "Giving up on {name}: no peer delivered a matching copy"
        ));
    }

    /// One `send` to `peer`: data listener on an OS-assigned port, the control reply read
    /// concurrently with the data (an original serving node streams before its `ACK`).
    fn attempt(
        &self,
        peer: SocketAddr,
        file: &FileEntry,
        latency_ms: u64,
        dest: &std::path::Path,
    ) -> Attempt {
        let data_listener = match TcpListener::bind(SocketAddr::new(self.addr.ip(), 0))
            .and_then(|l| l.set_nonblocking(true).map(|_| l))
        {
            Ok(l) => l,
            Err(e) => return Attempt::Refused(format!("cannot open a data port: {e}")),
        };
        let data_port = match data_listener.local_addr() {
            Ok(a) => a.port(),
            Err(e) => return Attempt::Refused(e.to_string()),
        };
        let request = wire::encode(&Message::Send {
            name: file.name.clone(),
            ip: self.addr.ip(),
            port: data_port,
        });
        let mut control = match tcp::connect(peer, Duration::from_secs(3)) {
            Ok(s) => s,
            Err(e) => return Attempt::Refused(format!("cannot connect: {e}")),
        };
        if let Err(e) = control.write_all(&request) {
            return Attempt::Refused(format!("cannot send the request: {e}"));
        }
        let (tx, rx) = crossbeam_channel::bounded::<io::Result<Vec<u8>>>(1);
        let printer = self.printer.clone();
        let wait = self.config.accept_timeout;
        let _ = self.rt.spawn("control", move || {
            let reply = tcp::read_once(&mut control, conn::TEXT_MAX, wait);
            if let Ok(bytes) = &reply {
                if bytes.trim_ascii() == b"ACK" {
                    printer.line("ACK");
                }
            }
            let _ = tx.send(reply);
        });
        let deadline = Instant::now() + self.config.accept_timeout;
        let mut data = loop {
            match data_listener.accept() {
                // Only the peer we asked may deliver; anyone else probing the port is dropped.
                Ok((s, from)) if from.ip() == peer.ip() => break s,
                Ok((_, from)) => log::warn!("{from} connected to the data port for {peer}; closed"),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Attempt::Refused(format!("accept failed: {e}")),
            }
            if let Ok(Ok(reply)) = rx.try_recv() {
                if reply.is_empty() {
                    return Attempt::Refused("it closed the request without a reply".into());
                }
            }
            if Instant::now() > deadline {
                return Attempt::Refused("it never connected back".into());
            }
            if self.shutdown.sleep(Duration::from_millis(5)) {
                return Attempt::Refused("shutting down".into());
            }
        };
        let from = data.peer_addr().unwrap_or(peer);
        self.printer.line(&format!(
            "Connection address: ('{}', {})",
            from.ip(),
            from.port()
        ));
        if data.set_nonblocking(false).is_err()
            || data
                .set_read_timeout(Some(Duration::from_secs(30)))
                .is_err()
        {
            return Attempt::Failed("cannot configure the data connection".into());
        }
        // Emulated network delay: once per download (the original slept per 2,048-byte read).
        if self.shutdown.sleep(Duration::from_millis(latency_ms)) {
            return Attempt::Refused("shutting down".into());
        }
        let mut progress = ProgressLines::new(&self.printer, &file.name, file.size);
        // Read at most one byte more than announced: enough to tell "too long" without letting
        // a peer fill the disk.
        let result = transfer::receive_file(
            &mut Read::take(&mut data, file.size.saturating_add(1)),
            dest,
            Expect {
                len: Some(file.size),
                digest: Some((
                    Box::<Md5Hasher>::default(),
                    file.hash_val.to_ascii_lowercase(),
                )),
                ..Expect::default()
            },
            &mut |n| progress.update(n),
        );
        match result {
            Ok(_) => Attempt::Done,
            Err(e) => Attempt::Failed(e.to_string()),
        }
    }
}

/// Download progress on a terminal, as whole lines through the console's printer: the prompt
/// stays usable while downloads run in the background, which a redrawn bar on the same
/// terminal line would garble. Silent when stdout is not a terminal (scripts, graders).
struct ProgressLines<'a> {
    printer: &'a Printer,
    name: &'a str,
    total: u64,
    last: Option<Instant>,
    started: Instant,
}

impl<'a> ProgressLines<'a> {
    const EVERY: Duration = Duration::from_secs(1);

    fn new(printer: &'a Printer, name: &'a str, total: u64) -> Self {
        let tty = io::stdout().is_terminal();
        ProgressLines {
            printer,
            name,
            total,
            last: tty.then(Instant::now),
            started: Instant::now(),
        }
    }

    fn update(&mut self, got: u64) {
        let Some(last) = self.last else { return };
        if last.elapsed() < Self::EVERY || got >= self.total {
            return;
        }
        self.last = Some(Instant::now());
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        self.printer.line(&format!(
            "{}: {:.0}% ({:.1} of {:.1} MiB, {:.1} MiB/s)",
            self.name,
            100.0 * got as f64 / self.total.max(1) as f64,
            mib(got),
            mib(self.total),
            mib(got) / secs
        ));
    }
}

enum Attempt {
    Done,
    /// The peer would not or could not serve: go to the next candidate.
    Refused(String),
    /// Bytes came but were wrong (or broke off): retry the same peer.
    Failed(String),
}

/// Each candidate's `getload` answer (`None` = no usable answer), asked 16 at a time so a few
/// dead peers cost one 2 s timeout, not one each.
fn ask_loads(candidates: &[(SocketAddr, FileEntry)]) -> Vec<Option<u64>> {
    let timeout = Duration::from_secs(2);
    let ask = |addr: SocketAddr| {
        let reply = conn::request(addr, &wire::encode(&Message::GetLoad), timeout, timeout).ok()?;
        std::str::from_utf8(reply.trim_ascii())
            .ok()?
            .parse::<u64>()
            .ok()
    };
    let mut loads = Vec::with_capacity(candidates.len());
    for batch in candidates.chunks(16) {
        std::thread::scope(|s| {
            let handles: Vec<_> = batch
                .iter()
                .map(|(addr, _)| s.spawn(move || ask(*addr)))
                .collect();
            loads.extend(handles.into_iter().map(|h| h.join().ok().flatten()));
        });
    }
    loads
}

/// Connects to a downloader's data port within `within`, retrying refusals: a downloader may
/// open its data listener only once our `ACK` has arrived (as an original node may).
fn connect_back(to: SocketAddr, within: Duration) -> io::Result<TcpStream> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tcp::connect(to, left.max(Duration::from_millis(10))) {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused && !left.is_zero() => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Normalises the node's own address: an unspecified bind address registers as 127.0.0.1.
fn own_addr(listener: &TcpListener) -> io::Result<SocketAddr> {
    let mut addr = listener.local_addr()?;
    if addr.ip().is_unspecified() {
        addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    Ok(addr)
}

/// Runs a node on `listener` until `exit`, end of input or `shutdown`.
pub fn run(config: NodeConfig, listener: TcpListener, shutdown: Shutdown) -> Result<(), NodeError> {
    if !config.dir.is_dir() {
        return Err(NodeError::Io(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} is not a directory", config.dir.display()),
        )));
    }
    let console = Console::start()?;
    let rt = Runtime::new("xfs", "xfs-node", &shutdown);
    let node = Arc::new(Node {
        addr: own_addr(&listener)?,
        id: uuid_v4(),
        config,
        load: AtomicU64::new(0),
        uploads: AtomicUsize::new(0),
        index: Mutex::new(FileIndex::default()),
        printer: console.printer(),
        shutdown: rt.shutdown().clone(),
        rt: rt.clone(),
        warned_size: AtomicBool::new(false),
        downloading: Mutex::new(HashSet::new()),
        latency_warned: Mutex::new(HashSet::new()),
    });
    let serving = node.clone();
    let service = TcpService::start(&rt, listener, "serve", UPLOAD_WORKERS, move |s, peer| {
        serving.serve(s, peer)
    })?;
    // Read once now so a bad latency.txt is reported at start, not only at the first download.
    node.latencies();
    node.printer
        .line("Node starting and connecting to tracking server");
    node.register()?;
    while let Input::Line(line) = console.read_line("> ", &shutdown) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [] => {}
            ["exit", ..] => break,
            ["updatelist", ..] => node.cmd_updatelist(),
            ["getload", ip, port, ..] => node.cmd_getload(ip, port),
            ["getload", ..] => node.printer.line("Usage: getload <ip> <port>"),
            ["find", name, ..] => node.cmd_find(name),
            ["find"] => node.printer.line("Usage: find <filename>"),
            ["download", name, ..] => {
                let n = node.clone();
                let name = name.to_string();
                let spawned = rt.spawn("download", move || n.download(&name));
                if let Err(e) = spawned {
                    log::warn!("cannot start a download thread: {e}");
                }
            }
            ["download"] => node.printer.line("Usage: download <filename>"),
            _ => node.printer.line("Invalid command"),
        }
    }
    drop(service);
    rt.stop(STOP_BOUND);
    node.remove_partial_downloads();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v4_has_the_version_and_variant_bits() {
        let id = uuid_v4();
        assert_eq!(id.len(), 36);
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            vec![8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
        assert_ne!(uuid_v4(), id);
    }
}
