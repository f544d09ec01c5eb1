//! A download: ask the tracker, ask each candidate its load, rank by `latency + 10 × load`, then
//! attempts (a `send` request, the peer connects back, the bytes land in `<name>.part`, size and
//! MD5 are checked, the file is renamed into place).
//!
//! A failed attempt is one of three things ([`Attempt`]): the peer would not serve (next peer), the
//! bytes were wrong or broke off (the same peer again, up to `retries` times), or this node could
//! not write them (a full disk, a read-only directory): then no peer can help, so the download ends
//! at once with the real reason instead of fetching the file four times from every peer.

use super::Node;
use crate::core::console::Printer;
use crate::core::names;
use crate::core::tcp;
use crate::core::trace::{self, Proto};
use crate::core::transfer::{self, Expect, TransferError};
use crate::xfs::conn;
use crate::xfs::files::{self, Md5Hasher};
use crate::xfs::latency::{latency_load_score, rank_by_latency_and_load};
use crate::xfs::wire::{self, FileEntry, Message};
use crossbeam_channel::Receiver;
use std::cell::Cell;
use std::io::{self, IsTerminal, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A data connection silent this long fails the attempt.
const DATA_IDLE: Duration = Duration::from_secs(30);
/// How often blocked reads wake to look at the shutdown signal.
const POLL: Duration = Duration::from_millis(200);
/// Timeout of each `getload` question.
const GETLOAD_TIMEOUT: Duration = Duration::from_secs(2);

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

/// How one attempt ended.
enum Attempt {
    Done,
    /// The peer would not or could not serve: go to the next candidate.
    Refused(String),
    /// Bytes came but were wrong (or broke off): retry the same peer.
    Failed(String),
    /// This node could not store the bytes: no peer can help, stop.
    Local(String),
}

/// A candidate with what ranking needs.
struct Scored {
    addr: SocketAddr,
    file: FileEntry,
    latency: u64,
    load: u64,
}

impl Node {
    /// `download <name>`: refuses names that cannot be shared and second downloads of one name.
    pub(super) fn download(&self, name: &str) {
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
    fn download_into(&self, name: &str, dest: &Path) {
        let p = &self.printer;
        let _load = LoadGuard::new(&self.load);
        let Some(scored) = self.candidates(name) else {
            return;
        };
        let costs: Vec<(u64, u64)> = scored.iter().map(|s| (s.latency, s.load)).collect();
        for i in rank_by_latency_and_load(&costs) {
            let c = &scored[i];
            log::info!(
                "asking {} for {name}: {} ms + 10 × load {} = {}",
                c.addr,
                c.latency,
                c.load,
                latency_load_score(c.latency, c.load)
            );
            match self.attempts_at(c, dest) {
                Some(Ok(())) => {
                    p.line("File downloaded successfully");
                    return;
                }
                Some(Err(why)) => {
                    p.line(&format!("Download of {name} failed: {why}"));
                    return;
                }
                None => {}
            }
            if self.shutdown.is_triggered() {
                return;
            }
        }
        p.line(&format!(
            "Giving up on {name}: no peer delivered a matching copy"
        ));
    }

    /// Up to `1 + retries` attempts at one peer: `Some(Ok)` done, `Some(Err)` a local error that
    /// ends the download, `None` try the next peer.
    fn attempts_at(&self, c: &Scored, dest: &Path) -> Option<Result<(), String>> {
        for _ in 0..=self.config.retries {
            if self.shutdown.is_triggered() {
                return None;
            }
            match self.attempt(c.addr, &c.file, c.latency, dest) {
                Attempt::Done => return Some(Ok(())),
                Attempt::Local(why) => return Some(Err(why)),
                Attempt::Refused(why) => {
                    log::warn!("{} did not send {}: {why}", c.addr, c.file.name);
                    return None;
                }
                Attempt::Failed(why) => {
                    log::warn!("download of {} from {} failed: {why}", c.file.name, c.addr);
                    self.printer.line("File download failed");
                }
            }
        }
        None
    }

    /// Asks the tracker who has `name`, prints the candidates, and keeps those that answer
    /// `getload`, with their latency. `None` (after printing why) when there is no one to ask.
    fn candidates(&self, name: &str) -> Option<Vec<Scored>> {
        let p = &self.printer;
        let nodes = match self.find_nodes(name) {
            Err(_) => {
                p.line("Connection refused, cannot download the file, tracker is down");
                return None;
            }
            Ok(Some(nodes)) if !nodes.is_empty() => nodes,
            Ok(_) => {
                p.line("No nodes found with the file");
                return None;
            }
        };
        let listed: Vec<(SocketAddr, FileEntry)> = nodes
            .iter()
            .filter_map(|n| {
                let ip = wire::parse_ip(&n.ip)?;
                let file = n.filelist.files.iter().find(|f| f.name == name)?;
                Some((SocketAddr::new(ip, n.port), file.clone()))
            })
            .filter(|(addr, _)| *addr != self.addr)
            .collect();
        let shown: Vec<String> = listed.iter().map(|(a, _)| a.to_string()).collect();
        p.line(&format!("[{}]", shown.join(", ")));
        let latencies = self.latencies();
        let loads = self.ask_loads(&listed);
        let scored: Vec<Scored> = listed
            .into_iter()
            .zip(loads)
            .filter_map(|((addr, file), load)| match load {
                Some(load) => Some(Scored {
                    addr,
                    file,
                    latency: latencies.latency_ms(self.addr, addr),
                    load,
                }),
                None => {
                    log::warn!("{addr} did not answer getload; not asking it for {name}");
                    None
                }
            })
            .collect();
        if scored.is_empty() {
            p.line(&format!("{name}: no reachable peer has the file"));
            return None;
        }
        Some(scored)
    }

    /// Each candidate's `getload` answer (`None` = no usable answer), asked through the node's
    /// getload pool, so a few dead peers cost one timeout, not one each, and many candidates
    /// never mean many threads.
    fn ask_loads(&self, candidates: &[(SocketAddr, FileEntry)]) -> Vec<Option<u64>> {
        let (tx, rx) = crossbeam_channel::unbounded();
        for (i, (addr, _)) in candidates.iter().enumerate() {
            let (tx, addr) = (tx.clone(), *addr);
            let _ = self.getload_pool.execute(move || {
                let _ = tx.send((i, ask_load(addr)));
            });
        }
        drop(tx);
        let mut loads = vec![None; candidates.len()];
        for (i, load) in rx.iter() {
            loads[i] = load;
        }
        loads
    }

    /// One `send` to `peer`: data listener on an OS-assigned port, the control reply read
    /// concurrently with the data (an original serving node streams before its `ACK`).
    fn attempt(&self, peer: SocketAddr, file: &FileEntry, latency_ms: u64, dest: &Path) -> Attempt {
        let (data_listener, control) = match self.request_send(peer, file) {
            Ok(pair) => pair,
            Err(why) => return Attempt::Refused(why),
        };
        let replies = self.read_control_reply(control);
        let mut data = match self.accept_data(&data_listener, peer, &replies) {
            Ok(s) => s,
            Err(why) => return Attempt::Refused(why),
        };
        let from = data.peer_addr().unwrap_or(peer);
        self.printer.line(&format!(
            "Connection address: ('{}', {})",
            from.ip(),
            from.port()
        ));
        if data.set_nonblocking(false).is_err() || data.set_read_timeout(Some(POLL)).is_err() {
            return Attempt::Failed("cannot configure the data connection".into());
        }
        // Emulated network delay: once per download (the original slept per 2,048-byte read).
        if self.shutdown.sleep(Duration::from_millis(latency_ms)) {
            return Attempt::Refused("shutting down".into());
        }
        self.receive(&mut data, file, dest)
    }

    /// Opens the data port and sends `send <name> <ip> <port>` on a control connection.
    fn request_send(
        &self,
        peer: SocketAddr,
        file: &FileEntry,
    ) -> Result<(TcpListener, TcpStream), String> {
        let data_listener = TcpListener::bind(SocketAddr::new(self.addr.ip(), 0))
            .or_else(|_| TcpListener::bind(SocketAddr::new(self.listen_ip(), 0)))
            .and_then(|l| l.set_nonblocking(true).map(|_| l))
            .map_err(|e| format!("cannot open a data port: {e}"))?;
        let data_port = data_listener
            .local_addr()
            .map_err(|e| e.to_string())?
            .port();
        let request = wire::encode(&Message::Send {
            name: file.name.clone(),
            ip: self.addr.ip(),
            port: data_port,
        });
        let mut control = tcp::connect(peer, Duration::from_secs(3))
            .map_err(|e| format!("cannot connect: {e}"))?;
        conn::write_message(&mut control, &request)
            .map_err(|e| format!("cannot send the request: {e}"))?;
        Ok((data_listener, control))
    }

    /// Reads the `send` reply on a `control` thread (printing `ACK`), so the data can arrive first.
    fn read_control_reply(&self, mut control: TcpStream) -> Receiver<io::Result<Vec<u8>>> {
        let (tx, rx) = crossbeam_channel::bounded::<io::Result<Vec<u8>>>(1);
        let printer = self.printer.clone();
        let (wait, stop) = (self.config.accept_timeout, self.shutdown.clone());
        let _ = self.rt.spawn("control", move || {
            let reply = read_reply_until(&mut control, wait, &stop);
            if let Ok(bytes) = &reply {
                if bytes.trim_ascii() == b"ACK" {
                    printer.line("ACK");
                }
            }
            let _ = tx.send(reply);
        });
        rx
    }

    /// Waits for the asked peer to connect to the data port (others are closed).
    fn accept_data(
        &self,
        listener: &TcpListener,
        peer: SocketAddr,
        replies: &Receiver<io::Result<Vec<u8>>>,
    ) -> Result<TcpStream, String> {
        let deadline = Instant::now() + self.config.accept_timeout;
        loop {
            match listener.accept() {
                // Only the peer we asked may deliver; anyone else probing the port is dropped.
                Ok((s, from)) if from.ip() == peer.ip() => return Ok(s),
                Ok((_, from)) => log::warn!("{from} connected to the data port for {peer}; closed"),
                Err(e) if crate::core::timed_out(&e) => {}
                Err(e) => return Err(format!("accept failed: {e}")),
            }
            if let Ok(Ok(reply)) = replies.try_recv() {
                if reply.is_empty() {
                    return Err("it closed the request without a reply".into());
                }
            }
            if Instant::now() > deadline {
                return Err("it never connected back".into());
            }
            if self.shutdown.sleep(Duration::from_millis(5)) {
                return Err("shutting down".into());
            }
        }
    }

    /// Lands the data stream in `dest` (through `<dest>.part`), telling a local write error from
    /// a bad or broken stream.
    fn receive(&self, data: &mut TcpStream, file: &FileEntry, dest: &Path) -> Attempt {
        let local = data.local_addr().ok();
        let remote = data.peer_addr().ok();
        let what = format!("file {}", file.name);
        trace::transfer_begin(Proto::Tcp, local, remote, &what, Some(file.size));
        let mut progress = ProgressLines::new(&self.printer, &file.name, file.size);
        // Read at most one byte more than announced: enough to tell "too long" without letting
        // a peer fill the disk.
        let mut source = Watched::new(
            Read::take(&mut *data, file.size.saturating_add(1)),
            &self.shutdown,
        );
        let mut got = 0;
        let result = transfer::receive_file(
            &mut source,
            dest,
            Expect {
                len: Some(file.size),
                digest: Some((
                    Box::<Md5Hasher>::default(),
                    file.hash_val.to_ascii_lowercase(),
                )),
                ..Expect::default()
            },
            &mut |n| {
                got = n;
                progress.update(n);
            },
        );
        let attempt = match result {
            Ok(_) => Attempt::Done,
            // The stream never failed, so the error came from creating, writing, syncing or
            // renaming the file here.
            Err(TransferError::Io(e)) if !source.failed.get() => {
                Attempt::Local(format!("cannot write {}: {e}", dest.display()))
            }
            Err(e) => Attempt::Failed(e.to_string()),
        };
        if trace::enabled() {
            let error = match &attempt {
                Attempt::Done => None,
                Attempt::Failed(why) | Attempt::Local(why) | Attempt::Refused(why) => Some(why),
            };
            trace::transfer_end(
                Proto::Tcp,
                local,
                remote,
                &what,
                got,
                error.map(String::as_str),
            );
        }
        attempt
    }

    /// Where the listener is bound, for a data port when the advertised address is not local.
    fn listen_ip(&self) -> std::net::IpAddr {
        std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
    }
}

/// One `getload` question.
fn ask_load(addr: SocketAddr) -> Option<u64> {
    let get = wire::encode(&Message::GetLoad);
    let reply = conn::request(addr, &get, GETLOAD_TIMEOUT, GETLOAD_TIMEOUT).ok()?;
    std::str::from_utf8(reply.trim_ascii())
        .ok()?
        .parse::<u64>()
        .ok()
}

/// One read of the control reply within `wait`, waking every [`POLL`] to notice `stop`.
fn read_reply_until(
    control: &mut TcpStream,
    wait: Duration,
    stop: &crate::core::shutdown::Shutdown,
) -> io::Result<Vec<u8>> {
    let deadline = Instant::now() + wait;
    loop {
        match tcp::read_once(control, conn::TEXT_MAX, POLL) {
            Err(e) if crate::core::timed_out(&e) => {
                if stop.is_triggered() || Instant::now() >= deadline {
                    return Err(e);
                }
            }
            other => {
                if let Ok(bytes) = &other {
                    conn::trace_received(control, bytes);
                }
                return other;
            }
        }
    }
}

/// The data stream as `receive_file` reads it: reads that time out every [`POLL`] are retried
/// until [`DATA_IDLE`] passes without a byte or the node stops, and any error it returns is
/// remembered, so a failed transfer can be blamed on the stream or on this node's disk.
struct Watched<'a, R> {
    inner: R,
    stop: &'a crate::core::shutdown::Shutdown,
    last_byte: Instant,
    failed: Cell<bool>,
}

impl<'a, R: Read> Watched<'a, R> {
    fn new(inner: R, stop: &'a crate::core::shutdown::Shutdown) -> Self {
        Watched {
            inner,
            stop,
            last_byte: Instant::now(),
            failed: Cell::new(false),
        }
    }

    fn fail(&self, e: io::Error) -> io::Result<usize> {
        self.failed.set(true);
        Err(e)
    }
}

impl<R: Read> Read for Watched<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.stop.is_triggered() {
                // Not `Interrupted`: readers retry that kind.
                return self.fail(io::Error::other("the node is stopping"));
            }
            match self.inner.read(buf) {
                Ok(n) => {
                    self.last_byte = Instant::now();
                    return Ok(n);
                }
                Err(e) if crate::core::timed_out(&e) => {
                    if self.last_byte.elapsed() >= DATA_IDLE {
                        return self.fail(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the peer sent nothing for 30 s",
                        ));
                    }
                }
                Err(e) => return self.fail(e),
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::shutdown::Shutdown;

    #[test]
    fn watched_remembers_a_stream_error_and_not_a_clean_end() {
        let stop = Shutdown::new();
        let mut ok = Watched::new(&b"abc"[..], &stop);
        let mut buf = [0u8; 8];
        assert_eq!(ok.read(&mut buf).unwrap(), 3);
        assert_eq!(ok.read(&mut buf).unwrap(), 0);
        assert!(!ok.failed.get());
        stop.trigger();
        assert!(ok.read(&mut buf).is_err());
        assert!(ok.failed.get());
    }

    #[test]
    fn a_local_write_error_is_not_blamed_on_the_stream() {
        // receive_file into a `.part` that cannot be created: the stream is never read.
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f.bin");
        std::fs::create_dir(transfer::part_path(&dest)).unwrap();
        let stop = Shutdown::new();
        let mut source = Watched::new(&b"data"[..], &stop);
        let r = transfer::receive_file(&mut source, &dest, Expect::default(), &mut |_| {});
        assert!(matches!(r, Err(TransferError::Io(_))));
        assert!(!source.failed.get());
    }
}
