//! The FileApp client: registration, the `>>> ` command loop, table updates, and the owner's
//! TCP listener.
//!
//! The commands are in `client/commands.rs`.
//!
//! Threads: the caller's thread runs the console; `core::udp_rpc`'s router is the only reader of
//! the UDP socket and hands `ACK_OFFER`/`ACK_DEREG` to the waiting command and everything else to
//! the table thread here; the TCP listener reads each request (core::tcp request-first) before
//! handing it to the 5-worker upload pool. Requests run in the
//! foreground, one fresh connection each, as many as the user likes.

mod commands;

use super::listing;
use super::peer::{self, FetchTiming, Offered, ServeTiming, SharedOffered};
use super::wire::{self, TableRow};
use crate::core::console::{Console, Input, Printer};
use crate::core::names;
use crate::core::pool::UPLOAD_WORKERS;
use crate::core::runtime::{Runtime, STOP_BOUND};
use crate::core::shutdown::Shutdown;
use crate::core::tcp::{RequestFirst, TcpService};
use crate::core::udp_rpc::{Datagram, Retry, UdpRpc};
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Client settings; [`ClientConfig::new`] gives the spec's timing.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub name: String,
    /// Where every datagram goes (replies are accepted from any address).
    pub server: SocketAddr,
    /// Welcome after registration: 1 s, 3 sends.
    pub register: Retry,
    /// `ACK_OFFER` / `ACK_DEREG`: 500 ms, 3 sends.
    pub ack: Retry,
    /// How long to wait for the first table after the welcome.
    pub first_table: Duration,
    pub fetch: FetchTiming,
    pub serve: ServeTiming,
    /// Where downloads land (the process's cwd in the CLI).
    pub download_dir: PathBuf,
}

impl ClientConfig {
    pub fn new(name: &str, server: SocketAddr) -> ClientConfig {
        ClientConfig {
            name: name.to_string(),
            server,
            register: Retry {
                timeout: Duration::from_secs(1),
                sends: 3,
            },
            ack: Retry {
                timeout: Duration::from_millis(500),
                sends: 3,
            },
            first_table: Duration::from_secs(2),
            fetch: FetchTiming {
                connect: Duration::from_secs(3),
                idle: Duration::from_secs(30),
            },
            serve: ServeTiming {
                request: Duration::from_secs(5),
                stall: Duration::from_secs(30),
            },
            download_dir: PathBuf::from("."),
        }
    }
}

/// Why a client ended with exit status 1.
#[derive(Debug)]
pub enum ClientError {
    /// The server answered the registration with something other than the welcome.
    Rejected,
    /// The server never answered the registration.
    NoServer,
    Io(io::Error),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Rejected => write!(f, "the server rejected the registration"),
            ClientError::NoServer => write!(f, "the server did not answer the registration"),
            ClientError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Io(e) => Some(e),
            ClientError::Rejected | ClientError::NoServer => None,
        }
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

fn is_ack_word(bytes: &[u8]) -> bool {
    bytes == wire::ACK || bytes == wire::ACK_OFFER || bytes == wire::ACK_DEREG
}

/// Looks like a table rather than a text reply (tables are JSON objects).
fn looks_like_table(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// The table as the last broadcast left it; frozen after a dereg.
struct TableView {
    rows: Mutex<Vec<TableRow>>,
    frozen: AtomicBool,
}

impl TableView {
    /// Takes a received table if it parses; says what happened.
    fn accept(&self, d: &Datagram, printer: &Printer) -> bool {
        match wire::parse_table(&d.bytes) {
            Ok((rows, skipped)) => {
                for why in skipped {
                    log::warn!("skipped a table row from {}: {why}", d.from);
                }
                if let Ok(mut slot) = self.rows.lock() {
                    *slot = rows;
                }
                printer.line(">>> [Client table updated.]");
                true
            }
            Err(e) => {
                log::warn!("ignored a datagram from {}: {e}", d.from);
                false
            }
        }
    }

    fn rows(&self) -> Vec<TableRow> {
        self.rows.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

/// What `help` prints (a peershare addition; the original had no help).
const HELP: &str = ">>> [Commands: setdir <dir> | offer <file>... | list | request <file> <client> | dereg <name> | help]";

/// A registered client's running parts.
struct Session {
    config: ClientConfig,
    rpc: UdpRpc,
    table: Arc<TableView>,
    offered: SharedOffered,
    service: Option<TcpService>,
    printer: Printer,
    registered: bool,
    /// The TCP port announced at registration (announced again when registering again).
    tcp_port: u16,
    /// Ctrl-C: ends the command loop and aborts a running download.
    stop: Shutdown,
}

/// What a command asks the loop to do next.
enum Next {
    Prompt,
    Exit,
}

/// Registers on `udp` (announcing `listener`'s port), then runs the command loop on `console`
/// until EOF, Ctrl-C (`shutdown`) or a dereg the server does not answer.
pub fn run(
    config: ClientConfig,
    udp: UdpSocket,
    listener: TcpListener,
    console: &Console,
    shutdown: &Shutdown,
) -> Result<(), ClientError> {
    // The router and table thread stop with this, not with Ctrl-C: the final dereg still
    // needs its ACK after the user pressed Ctrl-C.
    let io = Runtime::new("fileapp", "fileapp-client", &Shutdown::new());
    let result = run_inner(config, udp, listener, console, shutdown, &io);
    io.stop(STOP_BOUND);
    result
}

fn run_inner(
    config: ClientConfig,
    udp: UdpSocket,
    listener: TcpListener,
    console: &Console,
    shutdown: &Shutdown,
    io: &Runtime,
) -> Result<(), ClientError> {
    let printer = console.printer();
    let tcp_port = listener.local_addr()?.port();
    let rpc = UdpRpc::start_traced(io, udp)?;
    let table = Arc::new(TableView {
        rows: Mutex::new(Vec::new()),
        frozen: AtomicBool::new(false),
    });
    register(&config, tcp_port, &rpc, &table, &printer)?;

    let offered: SharedOffered = Arc::new(Mutex::new(Offered::default()));
    let service = {
        let (offered, printer, timing) = (offered.clone(), printer.clone(), config.serve);
        // The request is read before a connection takes one of the 5 workers (issue 14.3).
        let config = RequestFirst {
            workers: UPLOAD_WORKERS,
            max_request: peer::MAX_REQUEST,
            deadline: timing.request,
            max_waiting: peer::MAX_WAITING,
        };
        TcpService::start_request_first(io, listener, "upload", config, move |s, from, req| {
            peer::serve(s, from, &req, &offered, &printer, timing)
        })?
    };
    spawn_table_thread(io, &rpc, &table, &printer)?;

    let mut session = Session {
        config,
        rpc,
        table,
        offered,
        service: Some(service),
        printer,
        registered: true,
        tcp_port,
        stop: shutdown.clone(),
    };
    loop {
        match console.read_line(">>> ", shutdown) {
            Input::Line(line) => {
                if let Next::Exit = session.command(&line) {
                    break;
                }
            }
            Input::Eof | Input::Interrupted => {
                if session.registered {
                    session.deregister();
                }
                break;
            }
        }
    }
    Ok(())
}

/// Sends the registration until the server answers, prints its answer, then takes and ACKs the
/// first table.
fn register(
    config: &ClientConfig,
    tcp_port: u16,
    rpc: &UdpRpc,
    table: &TableView,
    printer: &Printer,
) -> Result<(), ClientError> {
    rpc.discard_events();
    let hello = wire::encode_registration(&wire::Registration {
        name: config.name.clone(),
        tcp_port,
    });
    let reply = rpc.request(&hello, config.server, config.register, |d| {
        !is_ack_word(&d.bytes) && !looks_like_table(&d.bytes)
    });
    let reply = match reply {
        Ok(d) => d,
        Err(e) => {
            log::debug!("registration got no answer: {e}");
            printer.line(" >>> [Server not responding]");
            printer.line(" >>> [Exiting]");
            return Err(ClientError::NoServer);
        }
    };
    let text = String::from_utf8_lossy(&reply.bytes);
    printer.line(&text);
    if text != wire::WELCOME {
        return Err(ClientError::Rejected);
    }
    let deadline = Instant::now() + config.first_table;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(d) = rpc.events().recv_timeout(left) else {
            log::warn!("no table arrived after the welcome; starting with an empty one");
            return Ok(());
        };
        if is_ack_word(&d.bytes) || !looks_like_table(&d.bytes) {
            log::debug!("ignored {:?} while waiting for the first table", d.bytes);
            continue;
        }
        if table.accept(&d, printer) {
            // Only this table is ACKed: an original server reads a stray ACK as an offer.
            if let Err(e) = rpc.send_to(wire::ACK, config.server) {
                log::warn!("could not ACK the table: {e}");
            }
            return Ok(());
        }
    }
}

/// Every datagram no command waits for is a table (or noise).
fn spawn_table_thread(
    io: &Runtime,
    rpc: &UdpRpc,
    table: &Arc<TableView>,
    printer: &Printer,
) -> io::Result<()> {
    let (rpc, table, printer) = (rpc.clone(), table.clone(), printer.clone());
    let stop = io.shutdown().clone();
    io.spawn("table", move || loop {
            crossbeam_channel::select! {
                recv(rpc.events()) -> got => {
                    let Ok(d) = got else { return };
                    if is_ack_word(&d.bytes) || d.bytes == wire::WELCOME.as_bytes() {
                        log::debug!("ignored a stray {:?} from {}", String::from_utf8_lossy(&d.bytes), d.from);
                    } else if table.frozen.load(Ordering::SeqCst) {
                        log::debug!("ignored a datagram from {} after dereg", d.from);
                    } else {
                        table.accept(&d, &printer);
                    }
                }
                recv(stop.receiver()) -> _ => return,
            }
        })?;
    Ok(())
}
