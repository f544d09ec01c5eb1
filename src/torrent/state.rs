//! The tracker's tables and rules (spec §3.4) as plain data: who owns which file, how often each
//! node uploaded, who is still alive, and when the JSON snapshots are due. No sockets, no clock:
//! [`TrackerState::handle`] takes one input and the time and returns what the I/O loop must do.
//!
//! Snapshots: the original rewrote `nodes.json` and `files.json` after every OWN, UPDATE and EXIT,
//! so the cost of one datagram grew with the table (2,000 OWNs with long names took 10 s of CPU,
//! and datagrams were dropped meanwhile). Here a change only marks the tables dirty; a tick renders
//! them at most once per `snapshot_interval` ([`Action::Save`]) and the tracker's writer thread
//! writes them, so replies never wait for the disk. The last state is saved on exit.

use super::wire::{self, Message, Mode, Owner};
use crate::core::pyjson;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Largest datagram an original node reads (`BUFFER_SIZE`): replies must fit.
pub const ORIGINAL_BUFFER: usize = 9_216;

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

/// One thing the tracker's receive loop hands its state.
#[derive(Debug)]
pub enum Input {
    /// A Node2Tracker message from `from`.
    Request {
        node_id: i64,
        filename: String,
        mode: Mode,
        from: SocketAddr,
    },
    /// Time passed (the loop ticks at least every 50 ms).
    Tick,
}

/// What the receive loop must do after an input.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Append this line to the tracker's log (stdout and `_tracker.log`).
    Log(String),
    /// Send these bytes to `to` (a NEED reply).
    Reply { to: SocketAddr, bytes: Vec<u8> },
    /// Write the snapshots: `nodes.json` and `files.json` contents.
    Save { nodes: String, files: String },
}

/// The tracker's state with its clocks' schedule (sweep and snapshots).
#[derive(Debug)]
pub struct Tracker {
    pub tables: TrackerState,
    sweep_interval: Duration,
    next_sweep: Instant,
    snapshot_interval: Duration,
    next_save: Instant,
    dirty: bool,
}

impl Tracker {
    /// A tracker started at `now`: the first sweep and the first snapshot are one interval away.
    pub fn new(sweep_interval: Duration, snapshot_interval: Duration, now: Instant) -> Tracker {
        Tracker {
            tables: TrackerState::default(),
            sweep_interval,
            next_sweep: now + sweep_interval,
            snapshot_interval,
            next_save: now + snapshot_interval,
            dirty: false,
        }
    }

    /// Applies one input at `now`.
    pub fn handle(&mut self, input: Input, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        match input {
            Input::Request {
                node_id,
                filename,
                mode,
                from,
            } => self.request(node_id, &filename, mode, from, &mut actions),
            Input::Tick => self.tick(now, &mut actions),
        }
        actions
    }

    fn request(
        &mut self,
        node_id: i64,
        filename: &str,
        mode: Mode,
        from: SocketAddr,
        actions: &mut Vec<Action>,
    ) {
        let key = NodeKey {
            node_id,
            addr: from,
        };
        let t = &mut self.tables;
        match mode {
            Mode::Register => t.register(key),
            Mode::Own => {
                t.own(key, filename);
                self.dirty = true;
                actions.push(Action::Log(format!(
                    "Node {node_id} owns {filename} and is ready to send."
                )));
            }
            Mode::Need => {
                actions.push(Action::Log(format!(
                    "Node{node_id} is searching for {filename}"
                )));
                let bytes = need_reply(node_id, filename, t.need(filename));
                actions.push(Action::Reply { to: from, bytes });
            }
            Mode::Update => {
                t.update(node_id);
                self.dirty = true;
            }
            Mode::Exit => {
                t.remove(&key);
                self.dirty = true;
                actions.push(Action::Log(format!(
                    "Node {node_id} exited torrent intentionally."
                )));
            }
        }
    }

    fn tick(&mut self, now: Instant, actions: &mut Vec<Action>) {
        if now >= self.next_sweep {
            self.next_sweep = now + self.sweep_interval;
            let sweep = self.tables.sweep();
            if !sweep.dead.is_empty() {
                self.dirty = true;
            }
            if let Some(line) = sweep.log_line() {
                actions.push(Action::Log(line));
            }
        }
        if self.dirty && now >= self.next_save {
            self.next_save = now + self.snapshot_interval;
            actions.extend(self.save());
        }
    }

    /// Asks for the snapshots to be saved again at the next due tick (the writer was busy).
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// The snapshots if anything changed since the last save (on exit).
    pub fn save(&mut self) -> Option<Action> {
        if !self.dirty {
            return None;
        }
        self.dirty = false;
        Some(Action::Save {
            nodes: self.tables.nodes_json(),
            files: self.tables.files_json(),
        })
    }
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

    fn own(node_id: i64, name: &str) -> Input {
        Input::Request {
            node_id,
            filename: name.into(),
            mode: Mode::Own,
            from: key(node_id, 5000).addr,
        }
    }

    fn saves(actions: &[Action]) -> usize {
        actions
            .iter()
            .filter(|a| matches!(a, Action::Save { .. }))
            .count()
    }

    #[test]
    fn many_owns_do_not_delay_a_need_reply_and_snapshot_at_most_once_per_interval() {
        let t0 = Instant::now();
        let second = Duration::from_secs(1);
        let mut t = Tracker::new(Duration::from_secs(3600), second, t0);
        let mut saved = 0;
        // 2,000 OWNs with long names, with ticks in between, all within the first interval.
        for i in 0..2000 {
            let name = format!("{}-{i}", "x".repeat(200));
            let now = t0 + Duration::from_micros(i * 400);
            let actions = t.handle(own(i as i64, &name), now);
            assert!(actions.iter().all(|a| matches!(a, Action::Log(_))));
            saved += saves(&t.handle(Input::Tick, now));
        }
        assert_eq!(saved, 0, "no snapshot before the first interval has passed");
        // The NEED is answered in the same step, whatever the snapshot schedule.
        let need = t.handle(
            Input::Request {
                node_id: 9,
                filename: format!("{}-7", "x".repeat(200)),
                mode: Mode::Need,
                from: key(9, 6000).addr,
            },
            t0 + second / 2,
        );
        assert!(matches!(need.last(), Some(Action::Reply { to, .. }) if *to == key(9, 6000).addr));
        // Ticks over the next 3.5 intervals save once per interval while something changed.
        for ms in (1000..4500).step_by(50) {
            let now = t0 + Duration::from_millis(ms);
            if ms == 2200 {
                t.handle(own(1, "late"), now);
            }
            saved += saves(&t.handle(Input::Tick, now));
        }
        assert_eq!(saved, 2, "once for the OWNs, once for the late OWN");
        assert_eq!(t.save(), None, "nothing left to save on exit");
        t.handle(own(2, "last"), t0 + Duration::from_millis(4600));
        let Some(Action::Save { files, .. }) = t.save() else {
            panic!("the change before exit is saved on exit")
        };
        assert!(files.contains("\"last\""));
    }

    #[test]
    fn a_sweep_that_removes_someone_marks_the_snapshot_dirty() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut t = Tracker::new(s, Duration::from_secs(3600), t0);
        t.handle(own(1, "f"), t0);
        assert!(t.save().is_some());
        let first = t.handle(Input::Tick, t0 + s);
        assert_eq!(
            first,
            vec![Action::Log(
                "Node(s) [1] is in the torrent and node(s)[] have left.".into()
            )]
        );
        t.handle(Input::Tick, t0 + 2 * s);
        assert!(t.save().is_some());
    }
}
