//! A node: serves its directory, answers `getload`/`updatelist`, and downloads whole files from
//! the peer with the lowest `latency + 10 × load`, checking size and MD5 before a download lands.
//!
//! - this file: the node's shared state, registration and tracker requests, and [`run`];
//! - [`commands`]: the console's commands (`find`, `download`, `getload`, `updatelist`, `help`);
//! - [`serve`]: the listener side (`getload`, `updatelist`, `send` and its upload thread);
//! - [`download`]: choosing a peer and the download attempts.
//!
//! Threads, all on the node's runtime (`xfs-…`): the listener with its 5-worker pool (one message
//! per connection), one upload thread per `send` (at most [`MAX_UPLOADS`]), one thread per
//! download with its `control` thread, and a `getload` pool of 8 that asks candidates' loads.
//! The console's stdin thread is the core console's (it blocks in read(2) and cannot be joined).
//! Stopping fires the runtime's signal: downloads notice it within a fraction of a second and
//! their `.part` files go with the `PartFile` that owns them.

mod commands;
mod download;
mod serve;

use crate::core::console::{Console, Input, Printer};
use crate::core::pool::{WorkerPool, UPLOAD_WORKERS};
use crate::core::runtime::{Runtime, STOP_BOUND};
use crate::core::shutdown::Shutdown;
use crate::core::tcp::TcpService;
use crate::xfs::conn::{self, RequestError};
use crate::xfs::files::FileIndex;
use crate::xfs::latency::LatencyTable;
use crate::xfs::wire::{self, FileEntry, FileList, Message, NodeInfo};
use std::collections::HashSet;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    /// The address registered and looked up in latency.txt; `None` = the listener's (with an
    /// unspecified address registering as 127.0.0.1).
    pub advertise: Option<IpAddr>,
}

impl NodeConfig {
    pub fn new(dir: PathBuf, tracker: SocketAddr, latency_path: PathBuf) -> NodeConfig {
        NodeConfig {
            dir,
            tracker,
            latency_path,
            accept_timeout: Duration::from_secs(10),
            retries: 3,
            advertise: None,
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

impl std::error::Error for NodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NodeError::Io(e) => Some(e),
            NodeError::TrackerDown => None,
        }
    }
}

impl From<io::Error> for NodeError {
    fn from(e: io::Error) -> Self {
        NodeError::Io(e)
    }
}

pub(crate) struct Node {
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
    /// Asks candidates for their load, a few at a time.
    getload_pool: WorkerPool,
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
}

/// The address the node registers: `advertise` (or the listener's IP, an unspecified one as
/// 127.0.0.1) with the listener's port.
fn own_addr(listener: &TcpListener, advertise: Option<IpAddr>) -> io::Result<SocketAddr> {
    let mut addr = listener.local_addr()?;
    match advertise {
        Some(ip) => addr.set_ip(ip),
        None if addr.ip().is_unspecified() => addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        None => {}
    }
    Ok(addr)
}

/// Runs a node on `listener` with a console on stdin until `exit`, end of input or `shutdown`.
pub fn run_console(
    config: NodeConfig,
    listener: TcpListener,
    shutdown: &Shutdown,
) -> Result<(), NodeError> {
    let console = Console::start()?;
    run(config, listener, shutdown, &console)
}

/// Runs a node on `listener` until `exit`, end of input on `console`, or `shutdown`; every
/// thread it started has ended when it returns.
pub fn run(
    config: NodeConfig,
    listener: TcpListener,
    shutdown: &Shutdown,
    console: &Console,
) -> Result<(), NodeError> {
    if !config.dir.is_dir() {
        return Err(NodeError::Io(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} is not a directory", config.dir.display()),
        )));
    }
    let rt = Runtime::new("xfs", "xfs-node", shutdown);
    let node = Arc::new(Node {
        addr: own_addr(&listener, config.advertise)?,
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
        getload_pool: WorkerPool::new(&rt, "getload", 8)?,
    });
    let serving = node.clone();
    let service = TcpService::start(&rt, listener, "serve", UPLOAD_WORKERS, move |s, peer| {
        serving.serve(s, peer)
    })?;
    // Read once now so a bad latency.txt is reported at start, not only at the first download.
    node.latencies();
    node.printer
        .line("Node starting and connecting to tracking server");
    let registered = node.register();
    if registered.is_ok() {
        while let Input::Line(line) = console.read_line("> ", rt.shutdown()) {
            if !commands::run_line(&node, &line) {
                break;
            }
        }
    }
    drop(service);
    // Downloads hold the node too; the last holder's drop joins the getload pool.
    drop(node);
    rt.stop(STOP_BOUND);
    registered
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
