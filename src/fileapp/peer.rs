//! Client ↔ client TCP: the owner serving one request, and the requester fetching one file.
//!
//! One connection per request: `{file},{requester}` in one write, then the raw bytes until the
//! owner closes. The protocol carries no size and no refusal message, so zero bytes means "no"
//! (which is why empty files cannot be offered) and a download lands only through
//! `core::transfer` (`.part`, then rename).

use super::wire::{self, TableRow};
use crate::core::console::Printer;
use crate::core::names;
use crate::core::progress;
use crate::core::shutdown::Shutdown;
use crate::core::tcp;
use crate::core::transfer::{self, Expect, TransferError};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the owner side needs to decide a request: what was offered, from where.
#[derive(Debug, Default)]
pub struct Offered {
    /// The `setdir` directory as typed (for messages) and as a path.
    pub dir: Option<(String, PathBuf)>,
    /// Names this client offered, in offer order.
    pub files: Vec<String>,
}

impl Offered {
    /// The path to serve for `file`, if it was offered and is a regular file in the directory now.
    fn path_for(&self, file: &str) -> Option<PathBuf> {
        let (_, dir) = self.dir.as_ref()?;
        if !self.files.iter().any(|f| f == file) {
            return None;
        }
        let path = names::resolve(dir, file).ok()?;
        path.is_file().then_some(path)
    }

    fn dir_text(&self) -> String {
        self.dir
            .as_ref()
            .map_or_else(|| "(no directory set)".to_string(), |(d, _)| d.clone())
    }
}

/// Timing of the owner side.
#[derive(Debug, Clone, Copy)]
pub struct ServeTiming {
    /// How long the owner waits for the request line (spec: 5 s).
    pub request: Duration,
    /// Longest a send may block on a requester that stopped reading.
    pub stall: Duration,
}

/// Owner: answers one connection. Never panics on peer input; every path ends with the close line.
pub fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    offered: &Mutex<Offered>,
    printer: &Printer,
    timing: ServeTiming,
) {
    printer.line(&format!(
        "< Accepting connection request from {} >",
        peer.ip()
    ));
    let raw = tcp::read_once(&mut stream, 4096, timing.request).unwrap_or_default();
    let (file, requester) = match wire::parse_request(&raw) {
        Ok(parts) => parts,
        Err(e) => {
            log::warn!("bad request from {peer}: {e}");
            let shown = if raw.is_empty() {
                "(no request)".to_string()
            } else {
                String::from_utf8_lossy(&raw).chars().take(80).collect()
            };
            let dir = offered.lock().map(|o| o.dir_text()).unwrap_or_default();
            printer.line(&format!(
                "< Transfer failed: {shown} is not available in {dir}. >"
            ));
            printer.line(&format!("< Connection with client {} closed. >", peer.ip()));
            return;
        }
    };
    let (path, dir) = match offered.lock() {
        Ok(o) => (o.path_for(&file), o.dir_text()),
        Err(_) => (None, String::new()),
    };
    match path {
        None => printer.line(&format!(
            "< Transfer failed: {file} is not available in {dir}. >"
        )),
        Some(path) => {
            printer.line(&format!("< Transferring {file}... >"));
            // A requester that stops reading must not hold a pool worker (and a dereg) forever.
            let _ = stream.set_write_timeout(Some(timing.stall));
            let sent = transfer::send_file(&mut stream, &path).and_then(|n| {
                stream.flush()?;
                Ok(n)
            });
            match sent {
                Ok(_) => printer.line(&format!("< {file} transferred successfully! >")),
                Err(e) => printer.line(&format!("< {file} transfer failed: {e}. >")),
            }
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    printer.line(&format!("< Connection with client {requester} closed. >"));
}

/// Timing of the requester side.
#[derive(Debug, Clone, Copy)]
pub struct FetchTiming {
    pub connect: Duration,
    /// Longest silence while receiving before giving up.
    pub idle: Duration,
}

/// Requester: fetches `row.file` from its owner into `dest_dir/{file}`, printing the status lines.
/// `stop` (Ctrl-C) aborts a running download: the `.part` is removed and nothing is landed.
pub fn fetch(
    row: &TableRow,
    me: &str,
    dest_dir: &Path,
    printer: &Printer,
    timing: FetchTiming,
    stop: &Shutdown,
) {
    let (file, owner) = (&row.file, &row.owner);
    if let Err(e) = names::check(file) {
        printer.line(&format!("< {file} download failed: {e}. >"));
        return;
    }
    let addr = match tcp::resolve_host(&row.ip, row.tcp_port) {
        Ok(a) => a,
        Err(e) => {
            printer.line(&format!("< Connection with client {owner} failed: {e}. >"));
            return;
        }
    };
    let mut stream = match tcp::connect(addr, timing.connect) {
        Ok(s) => s,
        Err(e) => {
            printer.line(&format!("< Connection with client {owner} failed: {e}. >"));
            return;
        }
    };
    printer.line(&format!("< Connection with client {owner} established. >"));
    let outcome = stream
        .write_all(&wire::encode_request(file, me))
        .and_then(|_| stream.set_read_timeout(Some(timing.idle)))
        .map_err(TransferError::Io)
        .and_then(|_| {
            printer.line(&format!("< Downloading {file}... >"));
            let bar = progress::bytes(None, file);
            let mut source = Cancellable::new(&stream, stop)?;
            let got = transfer::receive_file(
                &mut source,
                &dest_dir.join(file),
                Expect {
                    refuse_empty: true,
                    ..Expect::default()
                },
                &mut |n| bar.set_position(n),
            );
            bar.finish_and_clear();
            got
        });
    match outcome {
        Ok(_) => printer.line(&format!("< {file} downloaded successfully! >")),
        Err(TransferError::Empty) => printer.line(&format!(
            "< {file} download failed: client {owner} sent no data. >"
        )),
        Err(e) => printer.line(&format!("< {file} download failed: {e}. >")),
    }
    printer.line(&format!("< Connection with client {owner} closed. >"));
}

/// A download source that fails (rather than ending cleanly) once `stop` fires, so an
/// interrupted download is never landed as if complete. A watcher thread shuts the socket down to
/// wake a blocked read; dropping the reader ends the watcher.
struct Cancellable {
    stream: TcpStream,
    stop: Shutdown,
    _done: crossbeam_channel::Sender<()>,
}

impl Cancellable {
    fn new(stream: &TcpStream, stop: &Shutdown) -> Result<Cancellable, TransferError> {
        let (done, finished) = crossbeam_channel::bounded::<()>(0);
        let (waker, watch) = (stream.try_clone()?, stop.clone());
        std::thread::Builder::new()
            .name("fileapp-cancel".into())
            .spawn(move || {
                crossbeam_channel::select! {
                    recv(watch.receiver()) -> _ => {
                        let _ = waker.shutdown(std::net::Shutdown::Both);
                    }
                    recv(finished) -> _ => {}
                }
            })?;
        Ok(Cancellable {
            stream: stream.try_clone()?,
            stop: stop.clone(),
            _done: done,
        })
    }
}

impl Read for Cancellable {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stream.read(buf)?;
        if self.stop.is_triggered() {
            // Not `Interrupted`: readers retry that kind.
            return Err(io::Error::other("interrupted by Ctrl-C"));
        }
        Ok(n)
    }
}

/// Shared owner-side state.
pub type SharedOffered = Arc<Mutex<Offered>>;
