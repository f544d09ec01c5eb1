//! The tracking server: an accept thread, one thread per connection, the node table behind one
//! Mutex. A `find` refreshes every live node concurrently with short timeouts, so one dead or
//! busy node never stalls the others (the original asked them one by one, with no timeout).

use crate::core::console::Printer;
use crate::core::runtime::{Runtime, STOP_BOUND};
use crate::core::shutdown::Shutdown;
use crate::core::tcp::{self, Dispatch, TcpService};
use crate::xfs::conn::{self, RequestError};
use crate::xfs::state::{ListOutcome, NodeTable};
use crate::xfs::wire::{self, Message};
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Timeouts of the tracker (tests shorten nothing: the spec's values are already short).
#[derive(Debug, Clone)]
pub struct TrackerConfig {
    /// Deadline for a client's whole message.
    pub read_timeout: Duration,
    /// `updatelist` refresh: connecting to a node.
    pub refresh_connect_timeout: Duration,
    /// `updatelist` refresh: the node's reply.
    pub refresh_reply_timeout: Duration,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            read_timeout: Duration::from_secs(5),
            refresh_connect_timeout: Duration::from_secs(1),
            refresh_reply_timeout: Duration::from_secs(2),
        }
    }
}

struct Tracker {
    config: TrackerConfig,
    table: Mutex<NodeTable>,
    printer: Printer,
}

impl Tracker {
    fn table(&self) -> MutexGuard<'_, NodeTable> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Serves `listener` until `shutdown` fires: one thread per connection (core::tcp's service),
/// the node table behind one lock.
pub fn run(config: TrackerConfig, listener: TcpListener, shutdown: Shutdown) -> io::Result<()> {
    let tracker = Arc::new(Tracker {
        config,
        table: Mutex::new(NodeTable::default()),
        printer: Printer::plain(),
    });
    let rt = Runtime::new("xfs", "xfs-tracker", &shutdown);
    let service = TcpService::start_with(
        &rt,
        listener,
        "tracker",
        Dispatch::ThreadPerConnection,
        move |stream, peer| serve(&tracker, stream, peer),
    )?;
    while !rt.shutdown().sleep(Duration::from_secs(3600)) {}
    drop(service);
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
            tracker.table().register(&info);
            b"ACK".to_vec()
        }
        Ok(Message::FileList(list)) => {
            let outcome = tracker.table().update_files(&list);
            match outcome {
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
    if let Err(e) = stream.write_all(&reply) {
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

fn refresh_one(config: &TrackerConfig, ip: &str, port: u16) -> Refresh {
    let Some(addr) = wire::parse_ip(ip).map(|ip| SocketAddr::new(ip, port)) else {
        return Refresh::Down;
    };
    match conn::request(
        addr,
        &wire::encode(&Message::UpdateList),
        config.refresh_connect_timeout,
        config.refresh_reply_timeout,
    ) {
        Ok(bytes) => match wire::parse(&bytes) {
            Ok(Message::FileList(list)) => Refresh::Files(list.files),
            Ok(other) => Refresh::Silent(format!("unexpected reply {other:?}")),
            Err(e) => Refresh::Silent(e.to_string()),
        },
        Err(RequestError::Connect(_)) => Refresh::Down,
        Err(e @ RequestError::Exchange(_)) => Refresh::Silent(e.to_string()),
    }
}

/// Asks every live node for its list at once; unreachable nodes are marked down and skipped.
fn refresh(tracker: &Tracker) {
    let targets = tracker.table().up_addresses();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = targets
            .iter()
            .map(|(ip, port)| s.spawn(move || refresh_one(&tracker.config, ip, *port)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Refresh::Silent("refresh panicked".into()))
            })
            .collect()
    });
    for ((ip, port), result) in targets.into_iter().zip(results) {
        match result {
            Refresh::Files(files) => tracker.table().refresh_files(&ip, port, files),
            Refresh::Down => {
                tracker.table().mark_down(&ip, port);
                tracker.printer.line(&format!(
                    "node with ip: {ip} and port: {port} is not responding"
                ));
                tracker.printer.line("Skipping node");
            }
            Refresh::Silent(why) => {
                log::debug!("{ip}:{port} kept with its cached list: {why}");
            }
        }
    }
}

/// Binds the tracker's listener on `127.0.0.1:port`.
pub fn bind(port: u16) -> io::Result<TcpListener> {
    tcp::bind(SocketAddr::from(([127, 0, 0, 1], port)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn in_process_tracker_acks_and_stops_on_shutdown() {
        let listener = bind(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let stop = shutdown.clone();
        let t = std::thread::spawn(move || run(TrackerConfig::default(), listener, stop));
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
