//! The tracking server: an accept thread, one thread per connection, the node table behind one
//! Mutex. A `find` refreshes every live node through a small pool (`xfs-refresh-N`) with a
//! per-node timeout and one deadline for the whole refresh, so dead, busy or fake nodes never
//! stall a `find` for long nor multiply its threads and connections (the original asked them one
//! by one with no timeout; a thread per node made 1,000 fake registrations cost 1,000 threads and
//! connections per `find`). Each sending address may hold at most `max_nodes_per_ip` entries.

use crate::core::console::Printer;
use crate::core::pool::WorkerPool;
use crate::core::runtime::{Runtime, STOP_BOUND};
use crate::core::shutdown::Shutdown;
use crate::core::tcp::{self, Dispatch, TcpService};
use crate::xfs::conn::{self, RequestError};
use crate::xfs::state::{CapReached, ListOutcome, NodeTable, DEFAULT_NODES_PER_IP};
use crate::xfs::wire::{self, Message};
use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Timeouts of the tracker (tests shorten nothing: the spec's values are already short).
#[derive(Debug, Clone)]
pub struct TrackerConfig {
    /// Deadline for a client's whole message.
    pub read_timeout: Duration,
    /// `updatelist` refresh: connecting to a node. Longer than TCP's first SYN retransmission
    /// (1 s), so one lost SYN or SYN-ACK on a lossy link does not mark a live node down.
    pub refresh_connect_timeout: Duration,
    /// `updatelist` refresh: the node's reply.
    pub refresh_reply_timeout: Duration,
    /// The whole refresh of one `find`: nodes not asked by then keep their cached lists.
    pub refresh_deadline: Duration,
    /// Nodes refreshed at once (threads and connections one `find` may use).
    pub refresh_workers: usize,
    /// Most entries one sending address may register.
    pub max_nodes_per_ip: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            read_timeout: Duration::from_secs(5),
            refresh_connect_timeout: Duration::from_millis(2500),
            refresh_reply_timeout: Duration::from_secs(2),
            refresh_deadline: Duration::from_secs(3),
            refresh_workers: 8,
            max_nodes_per_ip: DEFAULT_NODES_PER_IP,
        }
    }
}

struct Tracker {
    config: TrackerConfig,
    table: Mutex<NodeTable>,
    printer: Printer,
    refresh_pool: WorkerPool,
    /// Addresses whose cap was already reported (once each).
    capped: Mutex<HashSet<IpAddr>>,
}

impl Tracker {
    /// Reports the first refusal from each address.
    fn report_cap(&self, c: CapReached) {
        let mut capped = self.capped.lock().unwrap_or_else(|p| p.into_inner());
        if capped.insert(c.from) {
            log::warn!(
                "{} already registered {} nodes (--max-nodes-per-ip); further new nodes from it are refused",
                c.from,
                c.cap
            );
        }
    }

    fn table(&self) -> MutexGuard<'_, NodeTable> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Serves `listener` until `shutdown` fires: one thread per connection (core::tcp's service),
/// the node table behind one lock.
pub fn run(config: TrackerConfig, listener: TcpListener, shutdown: &Shutdown) -> io::Result<()> {
    let rt = Runtime::new("xfs", "xfs-tracker", shutdown);
    let tracker = Arc::new(Tracker {
        refresh_pool: WorkerPool::new(&rt, "refresh", config.refresh_workers)?,
        table: Mutex::new(NodeTable::new(config.max_nodes_per_ip)),
        config,
        printer: Printer::plain(),
        capped: Mutex::new(HashSet::new()),
    });
    let service =
        TcpService::start_with(&rt, listener, "tracker", Dispatch::ThreadPerConnection, {
            let tracker = tracker.clone();
            move |stream, peer| serve(&tracker, stream, peer)
        })?;
    while !rt.shutdown().sleep(Duration::from_secs(3600)) {}
    drop(service);
    // The service's handler held the other reference; dropping the last one joins the pool.
    drop(tracker);
    rt.stop(STOP_BOUND);
    Ok(())
}

/// One connection, one message.
fn serve(tracker: &Tracker, mut stream: TcpStream, peer: SocketAddr) {
    let p = &tracker.printer;
    p.line(&format!(
        "Connection address: ('{}', {})",
        peer.ip(),
        peer.port()
    ));
    let bytes = match conn::read_message(&mut stream, tracker.config.read_timeout) {
        Ok(b) => b,
        Err(e) => {
            log::warn!("{peer}: no complete message: {e}; closing");
            return;
        }
    };
    p.line(&format!("received data: {}", wire::py_bytes_repr(&bytes)));
    let reply = match wire::parse(&bytes) {
        Ok(Message::Node(info)) => {
            let registered = tracker.table().register(&info, peer.ip());
            if let Err(capped) = registered {
                tracker.report_cap(capped);
                return;
            }
            b"ACK".to_vec()
        }
        Ok(Message::FileList(list)) => {
            let outcome = tracker.table().update_files(&list, peer.ip());
            match outcome {
                ListOutcome::Capped(capped) => {
                    tracker.report_cap(capped);
                    return;
                }
                ListOutcome::Added => p.line("Node does not exist in global node list, adding"),
                ListOutcome::Ignored => log::warn!(
                    "{peer}: a file list from unknown node {:?} without an address; ignored",
                    list.node_id
                ),
                ListOutcome::Updated => {}
            }
            b"ACK".to_vec()
        }
        Ok(Message::Find(name)) => {
            // A bare `find` matches nothing: no need to disturb the nodes.
            if name.is_some() {
                refresh(tracker);
            }
            let nodes = tracker.table().find(name.as_deref());
            wire::encode(&Message::NodeList(nodes))
        }
        Ok(other) => {
            log::warn!("{peer}: {other:?} is not a tracker request; closing");
            return;
        }
        Err(e) => {
            log::warn!("{peer}: {e}; closing");
            return;
        }
    };
    if let Err(e) = conn::write_message(&mut stream, &reply) {
        log::debug!("{peer}: reply not sent: {e}");
    }
}

/// How one node answered `updatelist`.
enum Refresh {
    Files(Vec<wire::FileEntry>),
    /// It did not accept the connection: mark it down.
    Down,
    /// It accepted but gave no usable reply: keep it and its cached list.
    Silent(String),
}

fn refresh_one(config: &TrackerConfig, ip: &str, port: u16, deadline: Instant) -> Refresh {
    let Some(addr) = wire::parse_ip(ip).map(|ip| SocketAddr::new(ip, port)) else {
        return Refresh::Down;
    };
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Refresh::Silent("the refresh deadline passed before it was asked".into());
    }
    match conn::request(
        addr,
        &wire::encode(&Message::UpdateList),
        config.refresh_connect_timeout.min(left),
        config.refresh_reply_timeout.min(left),
    ) {
        Ok(bytes) => match wire::parse(&bytes) {
            Ok(Message::FileList(list)) => Refresh::Files(list.files),
            Ok(other) => Refresh::Silent(format!("unexpected reply {other:?}")),
            Err(e) => Refresh::Silent(e.to_string()),
        },
        Err(RequestError::Connect(e))
            if crate::core::timed_out(&e) && left < config.refresh_connect_timeout =>
        {
            Refresh::Silent("the refresh deadline passed while connecting".into())
        }
        Err(RequestError::Connect(_)) => Refresh::Down,
        Err(e @ RequestError::Exchange(_)) => Refresh::Silent(e.to_string()),
    }
}

/// Asks every live node for its list through the refresh pool, within one deadline; unreachable
/// nodes are marked down, nodes not answered in time keep their cached lists.
fn refresh(tracker: &Tracker) {
    let targets = tracker.table().up_addresses();
    let deadline = Instant::now() + tracker.config.refresh_deadline;
    let (tx, rx) = crossbeam_channel::unbounded();
    for (i, (ip, port)) in targets.iter().enumerate() {
        let (tx, config, ip, port) = (tx.clone(), tracker.config.clone(), ip.clone(), *port);
        let queued = tracker.refresh_pool.execute(move || {
            let _ = tx.send((i, refresh_one(&config, &ip, port, deadline)));
        });
        if queued.is_err() {
            return;
        }
    }
    drop(tx);
    // A little grace past the deadline for answers already on their way.
    let give_up = deadline + Duration::from_millis(200);
    let mut results: Vec<Option<Refresh>> = (0..targets.len()).map(|_| None).collect();
    while let Ok((i, result)) = rx.recv_deadline(give_up) {
        results[i] = Some(result);
    }
    for ((ip, port), result) in targets.into_iter().zip(results) {
        match result {
            Some(Refresh::Files(files)) => tracker.table().refresh_files(&ip, port, files),
            Some(Refresh::Down) => {
                tracker.table().mark_down(&ip, port);
                tracker.printer.line(&format!(
                    "node with ip: {ip} and port: {port} is not responding"
                ));
                tracker.printer.line("Skipping node");
            }
            Some(Refresh::Silent(why)) => {
                log::debug!("{ip}:{port} kept with its cached list: {why}");
            }
            None => log::debug!("{ip}:{port} kept with its cached list: not asked in time"),
        }
    }
}

/// Binds the tracker's listener on `ip:port`.
pub fn bind(ip: IpAddr, port: u16) -> io::Result<TcpListener> {
    tcp::bind(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn in_process_tracker_acks_and_stops_on_shutdown() {
        let listener = bind([127, 0, 0, 1].into(), 0).unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let stop = shutdown.clone();
        let t = std::thread::spawn(move || run(TrackerConfig::default(), listener, &stop));
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(br#"{"type": "filelist", "files": [], "node_id": "n", "node_port": 9, "node_ip": "127.0.0.1"}"#)
            .unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "ACK");
        shutdown.trigger();
        t.join().unwrap().unwrap();
    }
}
