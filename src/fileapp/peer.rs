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
use crate::core::transfer::{self, EndCheck, Expect, TransferError, WatchedReader};
use std::io::Write;
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
            match transfer::send_whole_file(&mut stream, &path) {
                Ok(_) => {
                    printer.line(&format!("< {file} transferred successfully! >"));
                    // Half-close and wait for the requester's close: its end check (see
                    // core::transfer::end) needs a live socket to acknowledge its probe.
                    transfer::finish_upload(&stream, transfer::FINISH_WAIT);
                }
                Err(e) => {
                    printer.line(&format!("< {file} transfer failed: {e}. >"));
                    // RST, not FIN: the requester must not take the cut file for the whole.
                    transfer::abort_upload(&stream);
                }
            }
            drop(stream);
            printer.line(&format!("< Connection with client {requester} closed. >"));
            return;
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
        .map_err(TransferError::Io)
        .and_then(|_| {
            printer.line(&format!("< Downloading {file}... >"));
            let bar = progress::bytes(None, file);
            let mut source =
                WatchedReader::new(&stream, stop, timing.idle, "interrupted by Ctrl-C")?;
            // The wire has no size: only a confirmed end lands the file (core::transfer::end).
            let end_check = EndCheck::new(&stream, Some(addr), timing.connect)?;
            let got = transfer::receive_file(
                &mut source,
                &dest_dir.join(file),
                Expect {
                    refuse_empty: true,
                    end_check: Some(end_check),
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

/// Shared owner-side state.
pub type SharedOffered = Arc<Mutex<Offered>>;
