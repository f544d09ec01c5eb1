//! The listener side of a node: one message per connection (`getload`, `updatelist`, `send`),
//! and the upload thread a `send` starts.

use super::{Node, MAX_UPLOADS};
use crate::core::names;
use crate::core::tcp;
use crate::core::trace::{self, Proto};
use crate::core::transfer;
use crate::xfs::conn;
use crate::xfs::files;
use crate::xfs::wire::{self, Message};
use std::io;
use std::net::{Shutdown as NetShutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

impl Node {
    pub(super) fn serve(self: &Arc<Self>, mut stream: TcpStream, peer: SocketAddr) {
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
        let _ = conn::write_message(&mut stream, &reply);
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
            let _ = conn::write_message(&mut stream, b"ACK");
            drop(stream);
            match connect_back(to, Duration::from_secs(3)) {
                // A receiver that stops reading must not hold this thread forever.
                Ok(mut data) => upload(&mut data, &path, &name, to),
                Err(e) => log::warn!("cannot connect to {to} to send {name}: {e}"),
            }
            me.uploads.fetch_sub(1, Ordering::SeqCst);
        });
        if let Err(e) = spawned {
            self.uploads.fetch_sub(1, Ordering::SeqCst);
            log::warn!("cannot start an upload thread: {e}");
        }
    }
}

/// Streams the file at `path` to a downloader's data connection.
fn upload(data: &mut TcpStream, path: &Path, name: &str, to: SocketAddr) {
    let local = data.local_addr().ok();
    if trace::enabled() {
        let size = std::fs::metadata(path).ok().map(|m| m.len());
        trace::transfer_begin(Proto::Tcp, local, Some(to), &format!("file {name}"), size);
    }
    // A receiver that stops reading must not hold this thread forever.
    let sent = data
        .set_write_timeout(Some(Duration::from_secs(30)))
        .and_then(|_| transfer::send_file(data, path));
    match &sent {
        Ok(n) => {
            let _ = data.shutdown(NetShutdown::Write);
            log::info!("sent {name} ({n} bytes) to {to}");
        }
        Err(e) => log::warn!("sending {name} to {to} failed: {e}"),
    }
    if trace::enabled() {
        let (bytes, error) = match &sent {
            Ok(n) => (*n, None),
            Err(e) => (0, Some(e.to_string())),
        };
        trace::transfer_end(
            Proto::Tcp,
            local,
            Some(to),
            &format!("file {name}"),
            bytes,
            error.as_deref(),
        );
    }
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
