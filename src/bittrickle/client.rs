//! The BitTrickle client: an interactive shell, a heartbeat thread, and a TCP upload service.
//!
//! Threads, one for one with the original: the main thread prompts and runs each command
//! (including a foreground `get`); a heartbeat thread sends `heartbeat {u}` on the same UDP
//! socket; the upload listener hands each connection to one of [`UPLOAD_WORKERS`] pool threads
//! once it has named its file (request-first: the original's worker blocked in `recv` on a
//! silent connection, so five idle connections stopped every upload).
//! The socket's receive side belongs to [`UdpRpc`]'s router, so a request waits 1 s per try,
//! sends 3 times, and then reports `Error: server not responding` instead of hanging.

use crate::bittrickle::session::{Published, SessionCheck};
use crate::bittrickle::wire::{self, Request, WELCOME};
use crate::core::console::{Console, Input, Printer};
use crate::core::heartbeat::HeartbeatSender;
use crate::core::names::{self, NameError};
use crate::core::pool::UPLOAD_WORKERS;
use crate::core::progress;
use crate::core::runtime::{Runtime, STOP_BOUND};
use crate::core::shutdown::Shutdown;
use crate::core::tcp::{self, TcpService};
use crate::core::trace::{self, Body, Direction, Proto};
use crate::core::transfer::{self, EndCheck, Expect, TransferError, WatchedReader, FINISH_WAIT};
use crate::core::udp_rpc::{Retry, UdpRpc};
use std::fmt;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The spec's heartbeat period.
pub const HEARTBEAT_PERIOD: Duration = Duration::from_secs(2);

/// The spec's request timing: 1 s per try, 3 sends.
pub const REQUEST_RETRY: Retry = Retry {
    timeout: Duration::from_secs(1),
    sends: 3,
};

/// Downloader's connect deadline.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Uploader: one read of at most this many bytes carries the file name.
const MAX_NAME_REQUEST: usize = 1024;

/// Uploader: how long a connected peer may stay silent before it is dropped.
const NAME_TIMEOUT: Duration = Duration::from_secs(5);
/// Most connections that may wait to name their file at once (the oldest makes room).
const MAX_WAITING: usize = 64;

/// How long either side of a transfer may stall before it is given up (the protocol has no end
/// marker but EOF, so without this a stuck peer would hang a `get` forever).
const STALL_LIMIT: Duration = Duration::from_secs(30);

/// How long the downloader waits for a live uploader to acknowledge its end-of-file probe.
const END_CHECK_WITHIN: Duration = Duration::from_secs(5);

/// The download's error when Ctrl-C interrupts it.
const INTERRUPTED: &str = "the download was interrupted";

/// A payload exactly equal to this is what the original uploader meant to send for a missing file.
const NOT_FOUND_TEXT: &[u8] = b"Error: File not found";

/// What the client needs besides its sockets.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The server's UDP address.
    pub server: SocketAddr,
    /// [`HEARTBEAT_PERIOD`] by default; tests shorten it.
    pub heartbeat: Duration,
    /// [`REQUEST_RETRY`] by default.
    pub retry: Retry,
    /// Where shared files are read from and downloads land (the cwd).
    pub dir: PathBuf,
    /// How often to check that the server still knows this client ([`session::RECHECK`]).
    pub recheck: Duration,
}

/// Runs the client on stdin/stdout until `xit`, EOF or `shutdown`; the upload service is serving
/// on `listener` before the first prompt (its port goes into `login`).
pub fn run(
    config: ClientConfig,
    socket: UdpSocket,
    listener: TcpListener,
    shutdown: &Shutdown,
) -> io::Result<()> {
    let console = Console::start()?;
    let out = console.printer();
    let rt = Runtime::new("bittrickle", "bittrickle-client", shutdown);
    let tcp_port = listener.local_addr()?.port();
    let uploads = start_uploads(&rt, listener, &config.dir, &out)?;
    let rpc = UdpRpc::start(&rt, socket)?;
    let mut client = Client {
        config,
        rpc,
        out: out.clone(),
        user: String::new(),
        shutdown: shutdown.clone(),
        published: Published::default(),
    };

    let Some(password) = client.login(&console, tcp_port) else {
        close(&out, &rt, None, uploads);
        return Ok(());
    };

    let heartbeat = start_heartbeat(&rt, &client, password, tcp_port)?;
    out.line("Available commands are: get, lap, lpf, pub, sch, unp, xit");
    commands(&console, &mut client, shutdown);
    close(&out, &rt, Some(heartbeat), uploads);
    Ok(())
}

/// The upload service: request-first, so a connection holds one of the five workers only once
/// it has named its file, and downloaders that connect and say nothing cannot starve them.
fn start_uploads(
    rt: &Runtime,
    listener: TcpListener,
    dir: &Path,
    out: &Printer,
) -> io::Result<TcpService> {
    let (dir, out, stop) = (dir.to_path_buf(), out.clone(), rt.shutdown().clone());
    let config = tcp::RequestFirst {
        workers: UPLOAD_WORKERS,
        max_request: MAX_NAME_REQUEST,
        deadline: NAME_TIMEOUT,
        max_waiting: MAX_WAITING,
    };
    TcpService::start_request_first(rt, listener, "upload", config, move |s, peer, req| {
        serve_upload(s, peer, &req, &dir, &out, &stop)
    })
}

/// The heartbeat thread: a heartbeat every interval, and every `recheck` a check that the
/// server still knows this session (logging in again after a server restart).
fn start_heartbeat(
    rt: &Runtime,
    client: &Client,
    password: String,
    tcp_port: u16,
) -> io::Result<HeartbeatSender> {
    let (rpc, server) = (client.rpc.clone(), client.config.server);
    let beat = wire::encode(&Request::Heartbeat {
        user: client.user.clone(),
    });
    let check = SessionCheck {
        server,
        bind: rpc.local_addr()?.ip(),
        user: client.user.clone(),
        password,
        tcp_port,
        retry: client.config.retry,
        published: client.published.clone(),
        out: client.out.clone(),
    };
    let (recheck, mut checked) = (client.config.recheck, std::time::Instant::now());
    HeartbeatSender::start(rt, "heartbeat", client.config.heartbeat, move || {
        if checked.elapsed() >= recheck {
            check.run();
            checked = std::time::Instant::now();
        }
        if trace::enabled() {
            let local = rpc.local_addr().ok();
            trace::message(
                Direction::Send,
                Proto::Udp,
                local,
                Some(server),
                Body::Bytes(&beat),
                beat.len(),
            );
        }
        if let Err(e) = rpc.send_to(&beat, server) {
            log::debug!("heartbeat not sent: {e}");
        }
    })
}

/// Reads and runs commands until `xit`, EOF or Ctrl-C.
fn commands(console: &Console, client: &mut Client, shutdown: &Shutdown) {
    let bye = |client: &Client| {
        client
            .out
            .line(&format!("Client {} exiting gracefully...", client.user));
    };
    loop {
        match console.read_line("> ", shutdown) {
            Input::Line(line) => {
                if client.command(&line) == Flow::Exit {
                    bye(client);
                    return;
                }
            }
            Input::Eof => {
                bye(client);
                return;
            }
            Input::Interrupted => return,
        }
    }
}

/// Stops every thread in the spec's order, printing its shutdown lines (no heartbeat thread
/// exists before login).
fn close(out: &Printer, rt: &Runtime, heartbeat: Option<HeartbeatSender>, mut uploads: TcpService) {
    out.line("");
    out.line("Graceful shutdown initiated...");
    rt.shutdown().trigger();
    if let Some(mut heartbeat) = heartbeat {
        heartbeat.stop();
        out.line("Heartbeat thread terminated.");
    }
    uploads.stop();
    out.line("⚡ TCP download listener terminated ⚡");
    rt.stop(STOP_BOUND);
    out.line("Client shutdown complete.");
}

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Exit,
}

/// The server did not answer any of the tries.
struct NotResponding;

struct Client {
    config: ClientConfig,
    rpc: UdpRpc,
    out: Printer,
    user: String,
    shutdown: Shutdown,
    /// What this client has published, for publishing again after a server restart.
    published: Published,
}

/// A username or password the server could parse: one non-empty token.
fn is_single_token(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(char::is_whitespace)
}

impl Client {
    /// Prompts until the server says welcome and returns the password (kept for logging in
    /// again after a server restart); `None` on EOF or Ctrl-C.
    fn login(&mut self, console: &Console, tcp_port: u16) -> Option<String> {
        loop {
            let Input::Line(user) = console.read_line("Enter username: ", &self.shutdown) else {
                return None;
            };
            let Input::Line(password) = console.read_secret("Enter password: ", &self.shutdown)
            else {
                return None;
            };
            if !is_single_token(&user) || !is_single_token(&password) {
                self.out
                    .line("Error: username and password must be non-empty and contain no spaces.");
                continue;
            }
            let request = Request::Login {
                user: user.clone(),
                password: password.clone(),
                tcp_port,
            };
            if let Some(reply) = self.ask_and_print(&request) {
                if reply == WELCOME {
                    self.user = user;
                    return Some(password);
                }
            }
        }
    }

    /// Sends `request` (after dropping stale datagrams) and returns the server's reply text.
    fn ask(&self, request: &Request) -> Result<String, NotResponding> {
        self.rpc.discard_events();
        let server = self.config.server;
        let bytes = wire::encode(request);
        let local = self.rpc.local_addr().ok();
        if trace::enabled() {
            trace::message(
                Direction::Send,
                Proto::Udp,
                local,
                Some(server),
                Body::Text(&wire::traced_text(&bytes)),
                bytes.len(),
            );
        }
        let reply = self
            .rpc
            .request(&bytes, server, self.config.retry, move |d| d.from == server);
        match reply {
            Ok(d) => {
                let text = String::from_utf8_lossy(&d.bytes).into_owned();
                if trace::enabled() {
                    trace::message(
                        Direction::Recv,
                        Proto::Udp,
                        local,
                        Some(server),
                        Body::Text(&text),
                        d.bytes.len(),
                    );
                }
                Ok(text)
            }
            Err(e) => {
                log::debug!("request failed: {e}");
                trace::failure(
                    Proto::Udp,
                    local,
                    Some(server),
                    &format!("no reply after {} sends", self.config.retry.sends),
                );
                Err(NotResponding)
            }
        }
    }

    /// [`Client::ask`], printing the reply verbatim (or the not-responding error).
    fn ask_and_print(&self, request: &Request) -> Option<String> {
        match self.ask(request) {
            Ok(reply) => {
                self.out.line(&reply);
                Some(reply)
            }
            Err(NotResponding) => {
                self.out.line("Error: server not responding");
                None
            }
        }
    }

    /// Runs one command line.
    fn command(&mut self, line: &str) -> Flow {
        let words: Vec<&str> = line.split_whitespace().collect();
        let user = self.user.clone();
        let usage = |text: &str| self.out.line(text);
        match words.as_slice() {
            [] => {}
            ["xit", ..] => return Flow::Exit,
            ["lap"] => {
                self.ask_and_print(&Request::Lap { user });
            }
            ["lap", ..] => usage("Error, usage: lap"),
            ["lpf"] => {
                self.ask_and_print(&Request::Lpf { user });
            }
            ["lpf", ..] => usage("Error, usage: lpf"),
            ["pub", file] => {
                if let Some(path) = self.valid_name(file) {
                    if path.is_file() {
                        let name = file.to_string();
                        if let Some(reply) = self.ask_and_print(&Request::Pub { user, file: name })
                        {
                            self.published.note_reply(file, &reply);
                        }
                    } else {
                        self.out.line(&format!(
                            "Error: File '{file}' does not exist in the current directory."
                        ));
                    }
                }
            }
            ["pub", ..] => usage("Error, usage: pub <filename>"),
            ["unp", file] => {
                if self.valid_name(file).is_some() {
                    let name = file.to_string();
                    if let Some(reply) = self.ask_and_print(&Request::Unp { user, file: name }) {
                        self.published.note_reply(file, &reply);
                    }
                }
            }
            ["unp", ..] => usage("Error, usage: unp <filename>"),
            ["sch", substring] => {
                let substring = substring.to_string();
                self.ask_and_print(&Request::Sch { user, substring });
            }
            ["sch", ..] => usage("Error, usage: sch <substring>"),
            ["get", file] => self.get(file),
            ["get", ..] => usage("Error, usage: get <filename>"),
            _ => usage("Unknown command"),
        }
        Flow::Continue
    }

    /// The file's path in the shared directory, or `None` after printing why the name is refused.
    fn valid_name(&self, file: &str) -> Option<PathBuf> {
        match names::resolve(&self.config.dir, file) {
            Ok(path) if file.len() <= wire::MAX_NAME => Some(path),
            _ => {
                self.out
                    .line(&format!("Error: '{file}' is not a valid file name."));
                None
            }
        }
    }

    /// `get {f}`: ask the server where the file is, then download it in the foreground.
    fn get(&self, file: &str) {
        let Some(dest) = self.valid_name(file) else {
            return;
        };
        if dest.symlink_metadata().is_ok() {
            self.out.line(&format!(
                "Error: File '{file}' already exists in the current directory."
            ));
            return;
        }
        let request = Request::Get {
            user: self.user.clone(),
            file: file.to_string(),
        };
        let reply = match self.ask(&request) {
            Ok(reply) => reply,
            Err(NotResponding) => {
                self.out.line("Error: server not responding");
                return;
            }
        };
        let Some((ip, port)) = wire::parse_peer_address(&reply) else {
            self.out.line(&reply);
            return;
        };
        self.out
            .line(&format!("Requesting {file} download from peer {ip}:{port}"));
        match download(file, &ip, port, &dest, &self.shutdown) {
            Ok(_) => self.out.line(&format!(
                "File {file} 100% downloaded successfully, check your current working directory ✅"
            )),
            Err(reason) => self.out.line(&format!(
                "Error during file download from {ip}:{port} - {reason}"
            )),
        }
    }
}

/// Why a download failed, worded for `Error during file download from … - {reason}`.
#[derive(Debug)]
enum DownloadError {
    Io(io::Error),
    Transfer(TransferError),
}

impl fmt::Display for DownloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownloadError::Io(e) | DownloadError::Transfer(TransferError::Io(e)) => {
                write!(f, "{e}")
            }
            DownloadError::Transfer(TransferError::Empty) => write!(f, "peer sent no data"),
            DownloadError::Transfer(TransferError::Refused(text)) => {
                write!(f, "peer reported: {text}")
            }
            DownloadError::Transfer(other) => write!(f, "{other}"),
        }
    }
}

impl std::error::Error for DownloadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DownloadError::Io(e) => Some(e),
            DownloadError::Transfer(e) => Some(e),
        }
    }
}

/// Connects to the publisher, sends the bare name, and lands the stream as `dest` via `.part`.
fn download(
    file: &str,
    ip: &str,
    port: u16,
    dest: &Path,
    shutdown: &Shutdown,
) -> Result<u64, DownloadError> {
    let addr = tcp::resolve_host(ip, port).map_err(DownloadError::Io)?;
    let mut stream = tcp::connect(addr, CONNECT_TIMEOUT).map_err(DownloadError::Io)?;
    stream
        .write_all(file.as_bytes())
        .map_err(DownloadError::Io)?;
    if trace::enabled() {
        let local = stream.local_addr().ok();
        trace::message(
            Direction::Send,
            Proto::Tcp,
            local,
            Some(addr),
            Body::Text(file),
            file.len(),
        );
    }
    let bar = progress::bytes(None, file);
    let (local, remote) = (stream.local_addr().ok(), Some(addr));
    trace::transfer_begin(Proto::Tcp, local, remote, &format!("download {file}"), None);
    let mut source = WatchedReader::new(&stream, shutdown, STALL_LIMIT, INTERRUPTED)
        .map_err(DownloadError::Io)?;
    // The wire has no length: EOF counts only if the uploader is still there to vouch for it.
    let end_check =
        EndCheck::new(&stream, Some(addr), END_CHECK_WITHIN).map_err(DownloadError::Io)?;
    let expect = Expect {
        refuse_empty: true,
        refusal_text: Some(NOT_FOUND_TEXT),
        end_check: Some(end_check),
        ..Expect::default()
    };
    let mut got = 0;
    let landed = transfer::receive_file(&mut source, dest, expect, &mut |n| {
        got = n;
        bar.set_position(n)
    });
    bar.finish_and_clear();
    if trace::enabled() {
        let error = landed.as_ref().err().map(|e| e.to_string());
        let bytes = landed.as_ref().map_or(got, |n| *n);
        trace::transfer_end(
            Proto::Tcp,
            local,
            remote,
            &format!("download {file}"),
            bytes,
            error.as_deref(),
        );
    }
    landed.map_err(DownloadError::Transfer)
}

/// Why an upload ended without the file (printed as `Error handling client (…): {reason}`).
#[derive(Debug)]
enum UploadError {
    /// Closed, or silent past [`NAME_TIMEOUT`], without naming a file.
    EmptyRequest,
    NotUtf8,
    BadName(String, NameError),
    Missing(String),
    Send(io::Error),
}

impl fmt::Display for UploadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UploadError::EmptyRequest => write!(f, "no file name arrived"),
            UploadError::NotUtf8 => write!(f, "the file name is not UTF-8"),
            UploadError::BadName(name, e) => write!(f, "'{name}' is not a valid file name: {e}"),
            UploadError::Missing(name) => write!(f, "File '{name}' not found"),
            UploadError::Send(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for UploadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UploadError::Send(e) => Some(e),
            _ => None,
        }
    }
}

/// One upload connection on a pool worker, with the file name it sent (empty if it sent none
/// within [`NAME_TIMEOUT`]); problems print one line above the prompt.
fn serve_upload(
    stream: TcpStream,
    peer: SocketAddr,
    request: &[u8],
    dir: &Path,
    out: &Printer,
    stop: &Shutdown,
) {
    if stop.is_triggered() {
        return; // shutting down: close queued connections without bytes
    }
    if let Err(reason) = upload(stream, request, dir) {
        out.line(&format!(
            "Error handling client ('{}', {}): {reason}",
            peer.ip(),
            peer.port()
        ));
    }
}

/// Streams the file the request names; any refusal closes without bytes. A sent file ends with
/// a half-close and a wait for the downloader's close (a failure mid-file with a reset), so a
/// peershare downloader can tell a finished upload from a dead uploader.
fn upload(stream: TcpStream, request: &[u8], dir: &Path) -> Result<u64, UploadError> {
    if trace::enabled() {
        let (local, remote) = (stream.local_addr().ok(), stream.peer_addr().ok());
        trace::message(
            Direction::Recv,
            Proto::Tcp,
            local,
            remote,
            Body::Bytes(request),
            request.len(),
        );
    }
    if request.is_empty() {
        return Err(UploadError::EmptyRequest);
    }
    let text = std::str::from_utf8(request).map_err(|_| UploadError::NotUtf8)?;
    let name = text.trim_end_matches(['\r', '\n']);
    let path = names::resolve(dir, name).map_err(|e| UploadError::BadName(name.to_string(), e))?;
    if !path.is_file() {
        return Err(UploadError::Missing(name.to_string()));
    }
    stream
        .set_write_timeout(Some(STALL_LIMIT))
        .map_err(UploadError::Send)?;
    let (local, remote) = (stream.local_addr().ok(), stream.peer_addr().ok());
    let what = format!("upload {name}");
    let size = path.metadata().ok().map(|m| m.len());
    trace::transfer_begin(Proto::Tcp, local, remote, &what, size);
    let sent = transfer::upload_file(stream, &path, FINISH_WAIT);
    if trace::enabled() {
        let error = sent.as_ref().err().map(|e| e.to_string());
        let bytes = *sent.as_ref().unwrap_or(&0);
        trace::transfer_end(Proto::Tcp, local, remote, &what, bytes, error.as_deref());
    }
    sent.map_err(UploadError::Send)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn credentials_must_be_single_tokens() {
        assert!(is_single_token("hans"));
        assert!(is_single_token("falcon*solo"));
        assert!(!is_single_token(""));
        assert!(!is_single_token("han s"));
        assert!(!is_single_token("hans\t"));
    }

    #[test]
    fn download_errors_read_as_the_spec_words_them() {
        assert_eq!(
            DownloadError::Transfer(TransferError::Empty).to_string(),
            "peer sent no data"
        );
        assert_eq!(
            DownloadError::Transfer(TransferError::Refused("Error: File not found".into()))
                .to_string(),
            "peer reported: Error: File not found"
        );
    }

    #[test]
    fn uploader_refuses_traversal_and_missing_files_without_sending() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ok.txt"), b"hello").unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        for (name, expect) in [
            ("../ok.txt", None),
            ("missing.txt", None),
            ("ok.txt\r\n", Some(&b"hello"[..])),
        ] {
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(name.as_bytes()).unwrap();
            let (mut s, _) = listener.accept().unwrap();
            // The request-first listener reads the request before a worker gets the connection.
            let request = tcp::read_once(&mut s, MAX_NAME_REQUEST, NAME_TIMEOUT).unwrap();
            // A sent file waits for the downloader's close, so the uploader runs beside it.
            let d = dir.path().to_path_buf();
            let uploader = std::thread::spawn(move || upload(s, &request, &d));
            let mut got = Vec::new();
            c.read_to_end(&mut got).unwrap();
            drop(c);
            let result = uploader.join().unwrap();
            match expect {
                Some(bytes) => assert_eq!(got, bytes),
                None => {
                    assert!(result.is_err(), "{name}");
                    assert!(got.is_empty(), "{name}");
                }
            }
        }
    }
}
