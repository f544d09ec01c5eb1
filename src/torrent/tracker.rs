//! The tracker: who owns which file, how often each node uploaded, who is still alive.
//!
//! [`TrackerState`] is plain data with the rules of spec §3.4; [`run`] is the one receive loop
//! that owns it (the original started a thread per datagram over unsynchronised dicts), answers
//! NEED, sweeps on time and writes the JSON snapshots.

use super::journal::Journal;
use super::wire::{self, Message, Mode, Owner};
use crate::core::pyjson;
use crate::core::shutdown::Shutdown;
use crate::core::udp_rpc::{receive_loop, Received};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Largest datagram an original node reads (`BUFFER_SIZE`): replies must fit.
pub const ORIGINAL_BUFFER: usize = 9_216;
/// Receive buffer of the tracker's socket.
const TRACKER_RCVBUF: usize = 1 << 20;

/// A node as the tracker knows it: its id and the address its datagram came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeKey {
    pub node_id: i64,
    pub addr: SocketAddr,
}

/// Who was alive and who was removed by one sweep (ids ascending, without repeats).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    pub alive: BTreeSet<i64>,
    pub dead: BTreeSet<i64>,
}

impl Sweep {
    /// The original's sweep line, or `None` when both sets are empty.
    pub fn log_line(&self) -> Option<String> {
        if self.alive.is_empty() && self.dead.is_empty() {
            return None;
        }
        Some(format!(
            "Node(s) {} is in the torrent and node(s){} have left.",
            py_list(&self.alive),
            py_list(&self.dead)
        ))
    }
}

/// `[1, 2]`, as Python prints a list of ints.
pub fn py_list<'a>(ids: impl IntoIterator<Item = &'a i64>) -> String {
    let items: Vec<String> = ids.into_iter().map(|i| i.to_string()).collect();
    format!("[{}]", items.join(", "))
}

/// The tracker's tables (spec §3.4).
#[derive(Debug, Default)]
pub struct TrackerState {
    /// Keys in first-seen order, each with "sent REGISTER (or OWN) since the last sweep".
    informed: Vec<(NodeKey, bool)>,
    /// filename → owners in OWN order, no duplicates.
    owners: BTreeMap<String, Vec<NodeKey>>,
    /// node_id → finished uploads.
    send_freq: HashMap<i64, i64>,
}

impl TrackerState {
    fn mark_alive(&mut self, key: &NodeKey) {
        match self.informed.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = true,
            None => self.informed.push((key.clone(), true)),
        }
    }

    /// REGISTER: the key is alive.
    pub fn register(&mut self, key: NodeKey) {
        self.mark_alive(&key);
    }

    /// OWN: `key` owns `filename` (once), with a zero upload count if it had none.
    pub fn own(&mut self, key: NodeKey, filename: &str) {
        let list = self.owners.entry(filename.to_string()).or_default();
        if !list.contains(&key) {
            list.push(key.clone());
        }
        self.send_freq.entry(key.node_id).or_insert(0);
        self.mark_alive(&key);
    }

    /// UPDATE: `node_id` finished one upload.
    pub fn update(&mut self, node_id: i64) {
        *self.send_freq.entry(node_id).or_insert(0) += 1;
    }

    /// Upload count of `node_id` (0 when unknown, like the original's defaultdict).
    pub fn send_freq(&self, node_id: i64) -> i64 {
        self.send_freq.get(&node_id).copied().unwrap_or(0)
    }

    /// NEED: owners of `filename` ranked by upload count, highest first, ties in OWN order.
    pub fn need(&self, filename: &str) -> Vec<Owner> {
        let mut owners: Vec<Owner> = self
            .owners
            .get(filename)
            .map(|list| {
                list.iter()
                    .map(|k| Owner {
                        node_id: k.node_id,
                        ip: k.addr.ip().to_string(),
                        port: i64::from(k.addr.port()),
                        send_freq: self.send_freq(k.node_id),
                    })
                    .collect()
            })
            .unwrap_or_default();
        owners.sort_by_key(|o| std::cmp::Reverse(o.send_freq));
        owners
    }

    /// EXIT (and a dead key at a sweep): removes `key` everywhere and its node's upload count.
    pub fn remove(&mut self, key: &NodeKey) {
        self.send_freq.remove(&key.node_id);
        self.informed.retain(|(k, _)| k != key);
        for list in self.owners.values_mut() {
            list.retain(|k| k != key);
        }
        self.owners.retain(|_, list| !list.is_empty());
    }

    /// Resets every live key to "not heard from" and removes every key that was already so.
    pub fn sweep(&mut self) -> Sweep {
        let mut result = Sweep::default();
        let mut dead = Vec::new();
        for (key, heard) in &mut self.informed {
            if *heard {
                *heard = false;
                result.alive.insert(key.node_id);
            } else {
                result.dead.insert(key.node_id);
                dead.push(key.clone());
            }
        }
        for key in &dead {
            self.remove(key);
        }
        result
    }

    /// `nodes.json`: `{"node<id>": freq}`, indent 4, sorted keys (Python's `json.dump`).
    pub fn nodes_json(&self) -> String {
        let map: BTreeMap<String, String> = self
            .send_freq
            .iter()
            .map(|(id, f)| (format!("node{id}"), f.to_string()))
            .collect();
        json_object(&map)
    }

    /// `files.json`: filename → list of `json.dumps({"node_id": …, "addr": [ip, port]})` strings.
    pub fn files_json(&self) -> String {
        let map: BTreeMap<String, String> = self
            .owners
            .iter()
            .map(|(name, list)| {
                let items: Vec<String> = list
                    .iter()
                    .map(|k| {
                        let entry = format!(
                            "{{\"node_id\": {}, \"addr\": [{}, {}]}}",
                            k.node_id,
                            pyjson::quote(&k.addr.ip().to_string()),
                            k.addr.port()
                        );
                        format!("        {}", pyjson::quote(&entry))
                    })
                    .collect();
                (name.clone(), format!("[\n{}\n    ]", items.join(",\n")))
            })
            .collect();
        json_object(&map)
    }
}

/// An indent-4 JSON object from already-rendered values, keys sorted.
fn json_object(map: &BTreeMap<String, String>) -> String {
    if map.is_empty() {
        return "{}".into();
    }
    let items: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("    {}: {v}", pyjson::quote(k)))
        .collect();
    format!("{{\n{}\n}}", items.join(",\n"))
}

/// The Tracker2Node answer to a NEED, with as many ranked owners as fit in `ORIGINAL_BUFFER`.
pub fn need_reply(dest_node_id: i64, filename: &str, mut owners: Vec<Owner>) -> Vec<u8> {
    loop {
        let bytes = wire::encode(&Message::Tracker2Node {
            dest_node_id,
            search_result: owners.clone(),
            filename: filename.to_string(),
        });
        if bytes.len() <= ORIGINAL_BUFFER || owners.is_empty() {
            return bytes;
        }
        // Entries are about the same size: cut to the share that fits, then one at a time.
        let keep = (owners.len() * ORIGINAL_BUFFER / bytes.len()).min(owners.len() - 1);
        owners.truncate(keep);
    }
}

/// Tracker settings (spec §2).
#[derive(Debug, Clone)]
pub struct TrackerConfig {
    pub sweep_interval: Duration,
    pub db_dir: PathBuf,
}

fn replace_file(path: &Path, text: &str) -> io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

fn save_snapshots(state: &TrackerState, db_dir: &Path) {
    let saved = std::fs::create_dir_all(db_dir)
        .and_then(|_| replace_file(&db_dir.join("nodes.json"), &state.nodes_json()))
        .and_then(|_| replace_file(&db_dir.join("files.json"), &state.files_json()));
    if let Err(e) = saved {
        log::warn!("could not save the tracker snapshots: {e}");
    }
}

/// Serves on `socket` until `shutdown` fires.
pub fn run(
    config: TrackerConfig,
    socket: UdpSocket,
    journal: Journal,
    shutdown: Shutdown,
) -> io::Result<()> {
    journal.log("***************** Tracker program started just right now! *****************");
    // Every node's REGISTER, OWN and NEED lands on this one socket; bursts must not be dropped.
    if let Err(e) = socket2::SockRef::from(&socket).set_recv_buffer_size(TRACKER_RCVBUF) {
        log::debug!("could not raise the receive buffer: {e}");
    }
    let mut state = TrackerState::default();
    let mut next_sweep = Instant::now() + config.sweep_interval;
    let tick = config
        .sweep_interval
        .clamp(Duration::from_millis(1), Duration::from_millis(50));
    receive_loop(&socket, &shutdown, tick, |event| match event {
        Received::Tick => {
            if Instant::now() >= next_sweep {
                next_sweep += config.sweep_interval;
                let sweep = state.sweep();
                if !sweep.dead.is_empty() {
                    save_snapshots(&state, &config.db_dir);
                }
                if let Some(line) = sweep.log_line() {
                    journal.log(&line);
                }
            }
        }
        Received::Datagram(d) => {
            let msg = match wire::parse(&d.bytes) {
                Ok(m) => m,
                Err(e) => {
                    log::warn!("dropped a datagram from {}: {e}", d.from);
                    return;
                }
            };
            let Message::Node2Tracker {
                node_id,
                filename,
                mode,
            } = msg
            else {
                log::warn!(
                    "dropped a datagram from {}: not a Node2Tracker message",
                    d.from
                );
                return;
            };
            let key = NodeKey {
                node_id,
                addr: d.from,
            };
            match mode {
                Mode::Register => state.register(key),
                Mode::Own => {
                    state.own(key, &filename);
                    journal.log(&format!(
                        "Node {node_id} owns {filename} and is ready to send."
                    ));
                    save_snapshots(&state, &config.db_dir);
                }
                Mode::Need => {
                    journal.log(&format!("Node{node_id} is searching for {filename}"));
                    let reply = need_reply(node_id, &filename, state.need(&filename));
                    if let Err(e) = socket.send_to(&reply, d.from) {
                        log::warn!("could not answer {}: {e}", d.from);
                    }
                }
                Mode::Update => {
                    state.update(node_id);
                    save_snapshots(&state, &config.db_dir);
                }
                Mode::Exit => {
                    state.remove(&key);
                    save_snapshots(&state, &config.db_dir);
                    journal.log(&format!("Node {node_id} exited torrent intentionally."));
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: i64, port: u16) -> NodeKey {
        NodeKey {
            node_id: id,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    #[test]
    fn owners_are_ranked_by_uploads_then_own_order() {
        let mut s = TrackerState::default();
        s.own(key(1, 5001), "f");
        s.own(key(2, 5002), "f");
        s.own(key(3, 5003), "f");
        s.own(key(1, 5001), "f");
        s.update(3);
        s.update(3);
        s.update(2);
        let ids: Vec<(i64, i64)> = s
            .need("f")
            .iter()
            .map(|o| (o.node_id, o.send_freq))
            .collect();
        assert_eq!(ids, vec![(3, 2), (2, 1), (1, 0)]);
        assert!(s.need("other").is_empty());
    }

    #[test]
    fn sweep_keeps_the_heard_and_removes_every_silent_key() {
        let mut s = TrackerState::default();
        s.register(key(1, 5001));
        s.own(key(2, 5002), "f");
        s.register(key(3, 5003));
        assert_eq!(
            s.sweep(),
            Sweep {
                alive: [1, 2, 3].into(),
                dead: [].into()
            }
        );
        s.register(key(1, 5001));
        let sweep = s.sweep();
        assert_eq!(sweep.dead, [2, 3].into());
        assert_eq!(
            sweep.log_line().unwrap(),
            "Node(s) [1] is in the torrent and node(s)[2, 3] have left."
        );
        assert!(s.need("f").is_empty());
        assert_eq!(s.files_json(), "{}");
        let _ = s.sweep();
        assert_eq!(s.sweep().log_line(), None);
    }

    #[test]
    fn snapshots_look_like_pythons_json_dump() {
        let mut s = TrackerState::default();
        s.own(key(1, 5000), "a.txt");
        s.own(key(10, 5010), "a.txt");
        s.update(1);
        assert_eq!(s.nodes_json(), "{\n    \"node1\": 1,\n    \"node10\": 0\n}");
        assert_eq!(
            s.files_json(),
            "{\n    \"a.txt\": [\n        \"{\\\"node_id\\\": 1, \\\"addr\\\": [\\\"127.0.0.1\\\", 5000]}\",\n        \"{\\\"node_id\\\": 10, \\\"addr\\\": [\\\"127.0.0.1\\\", 5010]}\"\n    ]\n}"
        );
    }

    #[test]
    fn the_need_reply_is_capped_to_what_an_original_node_reads() {
        let owners: Vec<Owner> = (0..500)
            .map(|i| Owner {
                node_id: i,
                ip: "127.0.0.1".into(),
                port: 40_000 + i,
                send_freq: 0,
            })
            .collect();
        let reply = need_reply(7, "f", owners);
        assert!(reply.len() <= ORIGINAL_BUFFER);
        let Ok(Message::Tracker2Node { search_result, .. }) = wire::parse(&reply) else {
            panic!()
        };
        assert!(search_result.len() > 100);
        assert_eq!(search_result[0].node_id, 0);
    }
}
