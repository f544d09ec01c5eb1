//! The tracker role: one receive loop that owns the state (the original started a thread per
//! datagram over unsynchronised dicts), answers NEED at once, sweeps on time, and hands the JSON
//! snapshots to a writer thread (`torrent-snapshot`) so the disk never delays a reply.
//!
//! The rules live in [`super::state`]; this file is only sockets, threads and files.

use super::journal::Journal;
use super::state::{Action, Input, Tracker};
use super::wire::{self, Message};
use crate::core::runtime::{Runtime, STOP_BOUND};
use crate::core::shutdown::Shutdown;
use crate::core::trace::Direction;
use crate::core::udp_rpc::{receive_loop, Datagram, Received};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::io;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use super::state::{need_reply, py_list, NodeKey, Sweep, TrackerState, ORIGINAL_BUFFER};

/// Receive buffer of the tracker's socket.
const TRACKER_RCVBUF: usize = 1 << 20;

/// Tracker settings (spec §2).
#[derive(Debug, Clone)]
pub struct TrackerConfig {
    pub sweep_interval: Duration,
    /// Snapshots are written at most this often (and on exit).
    pub snapshot_interval: Duration,
    pub db_dir: PathBuf,
}

fn replace_file(path: &Path, text: &str) -> io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

fn save_snapshots(db_dir: &Path, nodes: &str, files: &str) {
    let saved = std::fs::create_dir_all(db_dir)
        .and_then(|_| replace_file(&db_dir.join("nodes.json"), nodes))
        .and_then(|_| replace_file(&db_dir.join("files.json"), files));
    match saved {
        Ok(()) => log::debug!("saved the tracker snapshots in {}", db_dir.display()),
        Err(e) => log::warn!("could not save the tracker snapshots: {e}"),
    }
}

/// Writes every snapshot it is handed until the sending side closes (the loop has ended).
fn snapshot_writer(db_dir: PathBuf, rendered: Receiver<(String, String)>) {
    for (nodes, files) in rendered.iter() {
        save_snapshots(&db_dir, &nodes, &files);
    }
}

/// The Node2Tracker fields of a datagram, or why it was dropped.
fn to_input(socket: &UdpSocket, d: &Datagram) -> Option<Input> {
    let parsed = wire::parse(&d.bytes);
    if let Ok(m) = &parsed {
        wire::trace_datagram(Direction::Recv, socket, d.from, &d.bytes, Some(m));
    }
    match parsed {
        Ok(Message::Node2Tracker {
            node_id,
            filename,
            mode,
        }) => Some(Input::Request {
            node_id,
            filename,
            mode,
            from: d.from,
        }),
        Ok(_) => {
            log::warn!(
                "dropped a datagram from {}: not a Node2Tracker message",
                d.from
            );
            None
        }
        Err(e) => {
            log::warn!("dropped a datagram from {}: {e}", d.from);
            None
        }
    }
}

/// Carries out what the state asked for. A snapshot the writer has no room for yet is put back
/// (the state is marked dirty again) rather than waited for.
fn perform(
    actions: Vec<Action>,
    socket: &UdpSocket,
    journal: &Journal,
    writer: &Sender<(String, String)>,
    tracker: &mut Tracker,
) {
    for action in actions {
        match action {
            Action::Log(line) => journal.log(&line),
            Action::Reply { to, bytes } => match socket.send_to(&bytes, to) {
                Ok(_) => wire::trace_datagram(Direction::Send, socket, to, &bytes, None),
                Err(e) => log::warn!("could not answer {to}: {e}"),
            },
            Action::Save { nodes, files } => {
                if let Err(TrySendError::Full(_)) = writer.try_send((nodes, files)) {
                    tracker.mark_dirty();
                }
            }
        }
    }
}

/// Serves on `socket` until `shutdown` fires, then writes the last snapshot and stops its threads.
pub fn run(
    config: TrackerConfig,
    socket: UdpSocket,
    journal: Journal,
    shutdown: &Shutdown,
) -> io::Result<()> {
    journal.log("***************** Tracker program started just right now! *****************");
    // Every node's REGISTER, OWN and NEED lands on this one socket; bursts must not be dropped.
    if let Err(e) = socket2::SockRef::from(&socket).set_recv_buffer_size(TRACKER_RCVBUF) {
        log::debug!("could not raise the receive buffer: {e}");
    }
    let rt = Runtime::new("torrent", "torrent-tracker", shutdown);
    let (writer, rendered) = crossbeam_channel::bounded::<(String, String)>(1);
    let db_dir = config.db_dir.clone();
    let writer_thread = rt.spawn_owned("snapshot", move || snapshot_writer(db_dir, rendered))?;
    let mut tracker = Tracker::new(
        config.sweep_interval,
        config.snapshot_interval,
        Instant::now(),
    );
    let tick = config
        .sweep_interval
        .clamp(Duration::from_millis(1), Duration::from_millis(50));
    let looped = receive_loop(&socket, rt.shutdown(), tick, |event| {
        let input = match event {
            Received::Tick => Input::Tick,
            Received::Datagram(d) => match to_input(&socket, &d) {
                Some(input) => input,
                None => return,
            },
        };
        let actions = tracker.handle(input, Instant::now());
        perform(actions, &socket, &journal, &writer, &mut tracker);
    });
    // The last state goes to disk on exit, whatever the schedule.
    if let Some(Action::Save { nodes, files }) = tracker.save() {
        let _ = writer.send((nodes, files));
    }
    drop(writer);
    let _ = writer_thread.join();
    rt.stop(STOP_BOUND);
    looped
}
