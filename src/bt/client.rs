//! The peer engine behind both `bt seed` and `bt get`: one torrent, its storage, the picker,
//! the connected peers, the tracker announces and the dialer.
//!
//! Threads: `bt-peer-accept` (core's thread-per-connection listener) and one `bt-dial` thread per
//! outgoing connection run [`peer::run`]; each connection adds a `bt-peer-write` thread; the
//! `bt-announce` thread announces on the tracker's interval (and at once on completion) and
//! starts dials to the peers it names that we are not connected to. A seeder dials too: some
//! clients (Transmission 3.00) never dial loopback peers themselves, so on one machine they only
//! meet us when we call them. Shared state is one mutex ([`Shared`]); counters are atomics.

use super::announce::{Announce, Event, DEFAULT_NUMWANT};
use super::announcer;
use super::metainfo::Metainfo;
use super::peer;
use super::picker::Picker;
use super::storage::Storage;
use super::wire::{Bitfield, Message};
use crate::core::runtime::{Runtime, STOP_BOUND};
use crate::core::shutdown::Shutdown;
use crate::core::tcp::{Dispatch, TcpService};
use crossbeam_channel::{Receiver, Sender};
use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Connections at once (each is two threads); more are closed after the handshake.
pub const MAX_PEERS: usize = 100;

/// A new peer id: `-PS0100-` and 12 random bytes (Azureus-style, BEP 20).
pub fn new_peer_id() -> [u8; 20] {
    let mut id = [0u8; 20];
    id[..8].copy_from_slice(b"-PS0100-");
    let tail: [u8; 12] = rand::random();
    id[8..].copy_from_slice(&tail);
    id
}

/// What a reader thread is told by the engine.
pub enum Control {
    /// Piece `i` was verified (maybe from another peer): drop any fetch of it.
    PieceDone(usize),
}

pub(crate) struct Link {
    pub peer_id: [u8; 20],
    pub addr: SocketAddr,
    pub writer: Sender<peer::Out>,
    pub control: Sender<Control>,
}

pub(crate) struct Shared {
    pub picker: Picker,
    pub links: HashMap<u64, Link>,
    /// Peers that sent a bad copy of a piece: never asked for that piece again.
    pub bad: HashMap<usize, HashSet<[u8; 20]>>,
    /// Addresses being dialed or connected by us.
    pub dialing: HashSet<SocketAddr>,
    /// Addresses not to dial again (ourselves, seeds while we seed).
    pub skip: HashSet<SocketAddr>,
}

/// Everything the peer threads share.
pub struct Engine {
    pub meta: Arc<Metainfo>,
    pub storage: Storage,
    pub peer_id: [u8; 20],
    pub listen: SocketAddr,
    pub(crate) shared: Mutex<Shared>,
    pub uploaded: AtomicU64,
    pub downloaded: AtomicU64,
    pub peers: AtomicUsize,
    next_conn: AtomicU64,
    completed: Sender<()>,
    /// This role's threads (`bt-peer-…`, `bt-write`, `bt-dial`, `bt-announce`).
    pub rt: Runtime,
    pub shutdown: Shutdown,
}

impl Engine {
    pub(crate) fn lock(&self) -> io::Result<std::sync::MutexGuard<'_, Shared>> {
        self.shared
            .lock()
            .map_err(|_| io::Error::other("engine lock poisoned"))
    }

    pub fn have(&self) -> Bitfield {
        self.lock()
            .map(|s| s.picker.have().clone())
            .unwrap_or_else(|_| Bitfield::new(self.meta.piece_count()))
    }

    pub fn is_complete(&self) -> bool {
        self.lock().is_ok_and(|s| s.picker.is_complete())
    }

    pub fn left(&self) -> u64 {
        let have = self.have();
        (0..self.meta.piece_count())
            .filter(|&i| !have.has(i))
            .map(|i| self.meta.piece_size(i))
            .sum()
    }

    /// Registers a connection after its handshake; `None` if it duplicates one (same peer id)
    /// or is ourselves.
    pub(crate) fn add_link(&self, link: Link) -> Option<u64> {
        let mut s = self.lock().ok()?;
        if link.peer_id == self.peer_id {
            s.skip.insert(link.addr);
            return None;
        }
        if s.links.values().any(|l| l.peer_id == link.peer_id) || s.links.len() >= MAX_PEERS {
            return None;
        }
        let id = self.next_conn.fetch_add(1, Ordering::SeqCst);
        s.links.insert(id, link);
        self.peers.store(s.links.len(), Ordering::SeqCst);
        Some(id)
    }

    pub(crate) fn remove_link(&self, id: u64, bits: Option<&Bitfield>, fetching: &[usize]) {
        if let Ok(mut s) = self.lock() {
            if let Some(l) = s.links.remove(&id) {
                s.dialing.remove(&l.addr);
            }
            if let Some(b) = bits {
                s.picker.remove_peer(b);
            }
            for &i in fetching {
                s.picker.release(i);
            }
            self.peers.store(s.links.len(), Ordering::SeqCst);
        }
    }

    /// A verified piece: write it, tell every peer (`have`) and every other fetcher (cancel).
    pub fn piece_verified(&self, index: usize, data: &[u8]) -> io::Result<bool> {
        // Write before `have`: nobody may be told about bytes not on disk.
        {
            let s = self.lock()?;
            if s.picker.have().has(index) {
                return Ok(false);
            }
        }
        self.storage.write_piece(index, data)?;
        let mut s = self.lock()?;
        if !s.picker.complete(index) {
            return Ok(false);
        }
        self.downloaded
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        for l in s.links.values() {
            let _ = l.writer.send(peer::Out::Msg(Message::Have(index as u32)));
            let _ = l.control.send(Control::PieceDone(index));
        }
        if s.picker.is_complete() {
            let _ = self.completed.send(());
        }
        Ok(true)
    }

    /// A piece failed its hash: never ask that peer for it again; someone else gets it.
    pub fn piece_failed(&self, index: usize, from: [u8; 20]) {
        if let Ok(mut s) = self.lock() {
            s.picker.release(index);
            s.bad.entry(index).or_default().insert(from);
        }
    }

    /// Next piece for a peer holding `bits`, never one in `fetching` or one it sent bad.
    pub fn pick(&self, bits: &Bitfield, fetching: &[usize], peer_id: &[u8; 20]) -> Option<usize> {
        let mut s = self.lock().ok()?;
        let Shared { picker, bad, .. } = &mut *s;
        picker.pick(bits, &|i| {
            fetching.contains(&i) || bad.get(&i).is_some_and(|b| b.contains(peer_id))
        })
    }
}

pub struct EngineConfig {
    pub meta: Arc<Metainfo>,
    pub storage: Storage,
    pub have: Bitfield,
    pub trackers: Vec<String>,
    /// Stop once complete (a `get` without `--seed`).
    pub stop_when_complete: bool,
    /// The role label its threads' `--trace` lines carry (`bt-get-6881`): unique per peer, so
    /// several peers sharing one trace file get a lifeline each.
    pub label: String,
}

/// A running engine; [`Running::wait`] blocks until it stops.
pub struct Running {
    pub engine: Arc<Engine>,
    completed: Receiver<()>,
    service: Option<TcpService>,
    announcer: Option<JoinHandle<()>>,
    stop_when_complete: bool,
}

/// Starts listening on `listener`, announcing and dialing.
pub fn start(
    config: EngineConfig,
    listener: TcpListener,
    shutdown: Shutdown,
) -> io::Result<Running> {
    let listen = listener.local_addr()?;
    let (completed_tx, completed) = crossbeam_channel::unbounded();
    let rt = Runtime::new("bt", &config.label, &shutdown);
    let engine = Arc::new(Engine {
        meta: config.meta,
        storage: config.storage,
        peer_id: new_peer_id(),
        listen,
        shared: Mutex::new(Shared {
            picker: Picker::new(config.have),
            links: HashMap::new(),
            bad: HashMap::new(),
            dialing: HashSet::new(),
            skip: HashSet::new(),
        }),
        uploaded: AtomicU64::new(0),
        downloaded: AtomicU64::new(0),
        peers: AtomicUsize::new(0),
        next_conn: AtomicU64::new(1),
        completed: completed_tx,
        shutdown: rt.shutdown().clone(),
        rt: rt.clone(),
    });
    let e = engine.clone();
    let service = TcpService::start_with(
        &rt,
        listener,
        "peer",
        Dispatch::ThreadPerConnection,
        move |stream, addr| peer::run(&e, stream, addr, None),
    )?;
    let e = engine.clone();
    let trackers = config.trackers;
    let announcer = rt.spawn_owned("announce", move || announce_loop(&e, &trackers))?;
    Ok(Running {
        engine,
        completed,
        service: Some(service),
        announcer: Some(announcer),
        stop_when_complete: config.stop_when_complete,
    })
}

impl Running {
    /// Calls `tick` every 200 ms until the engine stops (shutdown, or completion when told to
    /// stop then); returns whether the torrent is complete.
    pub fn wait(mut self, tick: &dyn Fn(&Engine)) -> bool {
        let shutdown = self.engine.shutdown.clone();
        loop {
            tick(&self.engine);
            if self.engine.is_complete() && self.stop_when_complete {
                break;
            }
            crossbeam_channel::select! {
                recv(self.completed) -> _ => {},
                recv(shutdown.receiver()) -> _ => break,
                default(Duration::from_millis(200)) => {},
            }
        }
        tick(&self.engine);
        let complete = self.engine.is_complete();
        shutdown.trigger();
        drop(self.service.take());
        if let Some(a) = self.announcer.take() {
            let _ = a.join();
        }
        // Peer threads notice the shutdown within their read timeout.
        let left = self.engine.rt.stop(STOP_BOUND);
        if !left.is_empty() {
            log::warn!("threads still running at exit: {left:?}");
        }
        complete
    }
}

fn announce_once(
    e: &Engine,
    trackers: &[String],
    event: Event,
    timeout: Duration,
) -> Option<super::announce::AnnounceReply> {
    let a = Announce {
        info_hash: e.meta.info_hash,
        peer_id: e.peer_id,
        port: e.listen.port(),
        uploaded: e.uploaded.load(Ordering::Relaxed),
        downloaded: e.downloaded.load(Ordering::Relaxed),
        left: e.left(),
        event,
        compact: true,
        numwant: DEFAULT_NUMWANT,
    };
    for url in trackers {
        match announcer::announce(url, &a, timeout) {
            Ok(reply) => return Some(reply),
            Err(err) => log::warn!("announce to {url} failed: {err}"),
        }
    }
    None
}

fn announce_loop(e: &Arc<Engine>, trackers: &[String]) {
    let mut event = Event::Started;
    let mut was_complete = e.is_complete();
    let mut dials: Vec<JoinHandle<()>> = Vec::new();
    while !e.shutdown.is_triggered() {
        let reply = announce_once(e, trackers, event, Duration::from_secs(5));
        let interval = match &reply {
            Some(r) => {
                event = Event::None;
                Duration::from_secs(u64::from(r.interval).clamp(1, 1800))
            }
            None => Duration::from_secs(5),
        };
        if let Some(r) = reply {
            for p in r.peers {
                let addr = SocketAddr::V4(p.addr);
                if addr.port() == e.listen.port()
                    && (addr.ip().is_loopback() || addr.ip() == e.listen.ip())
                {
                    continue;
                }
                let fresh = e.lock().is_ok_and(|mut s| {
                    let known = s.skip.contains(&addr) || s.dialing.contains(&addr);
                    if !known {
                        s.dialing.insert(addr);
                    }
                    !known
                });
                if fresh {
                    let e2 = e.clone();
                    let spawned = e.rt.spawn_owned("dial", move || dial(&e2, addr));
                    match spawned {
                        Ok(h) => dials.push(h),
                        Err(err) => log::warn!("cannot start a dial thread: {err}"),
                    }
                }
            }
        }
        dials.retain(|h| !h.is_finished());
        // Sleep the interval, waking early to announce `completed`.
        let deadline = std::time::Instant::now() + interval;
        while std::time::Instant::now() < deadline {
            if e.shutdown.sleep(Duration::from_millis(200)) {
                break;
            }
            if !was_complete && e.is_complete() {
                was_complete = true;
                event = Event::Completed;
                break;
            }
        }
    }
    let _ = announce_once(e, trackers, Event::Stopped, Duration::from_secs(2));
    for h in dials {
        let _ = h.join();
    }
}

fn dial(e: &Arc<Engine>, addr: SocketAddr) {
    match crate::core::tcp::connect(addr, Duration::from_secs(3)) {
        Ok(stream) => peer::run(e, stream, addr, Some(addr)),
        Err(err) => {
            log::debug!("cannot connect to {addr}: {err}");
            if let Ok(mut s) = e.lock() {
                s.dialing.remove(&addr);
            }
        }
    }
}
