//! The FileApp client: registration, the `>>> ` command loop, table updates, and the owner's
//! TCP listener.
//!
//! Threads: the caller's thread runs the console; `core::udp_rpc`'s router is the only reader of
//! the UDP socket and hands `ACK_OFFER`/`ACK_DEREG` to the waiting command and everything else to
//! the table thread here; the TCP listener feeds the 5-worker upload pool. Requests run in the
//! foreground, one fresh connection each, as many as the user likes.

use super::listing;
use super::peer::{self, FetchTiming, Offered, ServeTiming, SharedOffered};
use super::wire::{self, TableRow};
use crate::core::console::{Console, Input, Printer};
use crate::core::names;
use crate::core::pool::UPLOAD_WORKERS;
use crate::core::runtime::{Runtime, STOP_BOUND};
use crate::core::shutdown::Shutdown;
use crate::core::tcp::TcpService;
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

impl std::error::Error for ClientError {}

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

/// A registered client's running parts.
struct Session {
    config: ClientConfig,
    rpc: UdpRpc,
    table: Arc<TableView>,
    offered: SharedOffered,
    service: Option<TcpService>,
    printer: Printer,
    registered: bool,
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
    let rpc = UdpRpc::start(io, udp)?;
    let table = Arc::new(TableView {
        rows: Mutex::new(Vec::new()),
        frozen: AtomicBool::new(false),
    });
    register(&config, tcp_port, &rpc, &table, &printer)?;

    let offered: SharedOffered = Arc::new(Mutex::new(Offered::default()));
    let service = {
        let (offered, printer, timing) = (offered.clone(), printer.clone(), config.serve);
        TcpService::start(io, listener, "upload", UPLOAD_WORKERS, move |s, peer| {
            peer::serve(s, peer, &offered, &printer, timing)
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

impl Session {
    fn say(&self, line: &str) {
        self.printer.line(line);
    }

    fn command(&mut self, line: &str) -> Next {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((&cmd, args)) = words.split_first() else {
            self.say(">>> [Invalid command. Please try again.]");
            return Next::Prompt;
        };
        if cmd == "list" {
            self.list(args);
            return Next::Prompt;
        }
        if !self.registered {
            self.say(">>> [Invalid command. Please try again.]");
            return Next::Prompt;
        }
        match cmd {
            "setdir" => self.setdir(args),
            "offer" => self.offer(args),
            "request" => self.request(args),
            "dereg" => return self.dereg(args),
            _ => self.say(">>> [Invalid command. Please try again.]"),
        }
        Next::Prompt
    }

    fn list(&self, args: &[&str]) {
        if !args.is_empty() {
            self.say(">>> [Warning: list does not take any arguments]");
        }
        let rows = self.table.rows();
        if rows.is_empty() {
            self.say(">>> [No files available for download at the moment.]");
            self.say("");
            return;
        }
        // One print, so an update arriving meanwhile cannot land inside the table.
        self.say(&listing::render(&rows).join("\n"));
    }

    fn setdir(&self, args: &[&str]) {
        let [dir] = args else {
            self.say(">>> [Usage: setdir <dir>.]");
            return;
        };
        if !Path::new(dir).is_dir() {
            self.say(&format!(">>> [setdir failed: {dir} does not exist.]"));
            return;
        }
        if let Ok(mut o) = self.offered.lock() {
            o.dir = Some((dir.to_string(), PathBuf::from(dir)));
        }
        self.say(&format!(
            ">>> [Successfully set {dir} as the directory for searching offered files.]"
        ));
    }

    /// Checks every file first; the first bad one cancels the whole offer (nothing is sent).
    fn offer(&self, args: &[&str]) {
        let dir = self.offered.lock().ok().and_then(|o| o.dir.clone());
        let Some((dir_text, dir)) = dir else {
            self.say(">>> [Please set a directory first. Usage: setdir <dir>.]");
            return;
        };
        if args.is_empty() {
            self.say(&format!(
                ">>> [Please provide files to offer from {dir_text}.]"
            ));
            return;
        }
        for f in args {
            let path = match names::resolve(&dir, f) {
                Ok(p) if !f.contains(',') => p,
                _ => {
                    self.say(&format!(
                        ">>> [Offer failed: {f} is not a valid file name.]"
                    ));
                    return;
                }
            };
            match std::fs::metadata(&path) {
                Ok(m) if m.is_file() && m.len() == 0 => {
                    self.say(&format!(">>> [Offer failed: {f} is empty.]"));
                    return;
                }
                Ok(m) if m.is_file() => {}
                _ => {
                    self.say(&format!(
                        ">>> [Offer failed: {f} does not exist in {dir_text}.]"
                    ));
                    return;
                }
            }
        }
        let names: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        // Serve them from now on even if the ACK is lost: the server may have them listed.
        if let Ok(mut o) = self.offered.lock() {
            for n in &names {
                if !o.files.contains(n) {
                    o.files.push(n.clone());
                }
            }
        }
        // The ACK line is printed by the matcher, on the router thread, so it comes before the
        // `[Client table updated.]` of the broadcast that follows it (as in the original, whose
        // one listener thread printed both). `outcome` makes exactly one of the two lines win.
        const WAITING: u8 = 0;
        const ACKED: u8 = 1;
        const GAVE_UP: u8 = 2;
        let outcome = Arc::new(AtomicU8::new(WAITING));
        let (seen, printer) = (outcome.clone(), self.printer.clone());
        let acked = self.rpc.request(
            &wire::encode_offer(&names),
            self.config.server,
            self.config.ack,
            move |d| {
                let ack = d.bytes == wire::ACK_OFFER;
                if ack
                    && seen
                        .compare_exchange(WAITING, ACKED, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
                {
                    printer.line(">>> [Offer Message received by Server.]");
                }
                ack
            },
        );
        if let Err(e) = acked {
            let gave_up = outcome
                .compare_exchange(WAITING, GAVE_UP, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok();
            if gave_up {
                log::debug!("offer not acknowledged: {e}");
                self.say(">>> [No ACK from Server, please try again later.]");
            }
        }
    }

    fn request(&self, args: &[&str]) {
        let [file, owner] = args else {
            self.say(">>> [Usage: request <file_name> <client_name>.]");
            return;
        };
        if *owner == self.config.name {
            self.say("< Invalid Request >");
            return;
        }
        let row = self
            .table
            .rows()
            .into_iter()
            .find(|r| r.file == *file && r.owner == *owner);
        match row {
            None => self.say("< Invalid Request >"),
            Some(row) => peer::fetch(
                &row,
                &self.config.name,
                &self.config.download_dir,
                &self.printer,
                self.config.fetch,
                &self.stop,
            ),
        }
    }

    fn dereg(&mut self, args: &[&str]) -> Next {
        let [name] = args else {
            self.say(">>> [Usage: dereg <nick-name>.]");
            return Next::Prompt;
        };
        if *name != self.config.name {
            self.say(">>> [Deregister failed: name does not match.]");
            return Next::Prompt;
        }
        if self.deregister() {
            Next::Prompt
        } else {
            Next::Exit
        }
    }

    /// Closes the listener, sends `DEREG` until acknowledged; `false` when the server is silent.
    fn deregister(&mut self) -> bool {
        if let Some(mut service) = self.service.take() {
            service.stop();
        }
        self.registered = false;
        self.table.frozen.store(true, Ordering::SeqCst);
        let acked = self
            .rpc
            .request(wire::DEREG, self.config.server, self.config.ack, |d| {
                d.bytes == wire::ACK_DEREG
            });
        match acked {
            Ok(_) => {
                self.say(">>> [You are now Offline. Bye.]");
                true
            }
            Err(e) => {
                log::debug!("dereg not acknowledged: {e}");
                self.say(" >>> [Server not responding]");
                self.say(" >>> [Exiting]");
                false
            }
        }
    }
}
