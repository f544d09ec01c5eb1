//! The sequence diagram as data: lifelines and rows in reading order. Pure; both renderers draw
//! this and the tests check it.
//!
//! From a trace: one row per message, drawn once even when both ends traced it (a send is paired
//! with the receive of the same text at the address it went to, first come first served, within
//! [`MATCH_WINDOW_US`]); the other end of a message only one side traced is the lifeline that
//! used that address as its own (exact address, else the port), else a lifeline named after the
//! address (an untraced program, e.g. an original Python peer). A transfer is one row at its
//! begin time, labelled with its size and duration; its direction is inferred from the last
//! message between the two ends (who asked receives the data), else remote → recorder.
//!
//! From `logs.log` (no times; file order): client → P2PTracker for LOCAL_CHUNKS and
//! WHERE_CHUNK, P2PTracker → client for its replies (the client whose WHERE_CHUNK for that index
//! it received earliest and has not answered), client → holder for REQUEST_CHUNK (the holder is
//! the client that announced that port in its LOCAL_CHUNKS lines). A client's line and the
//! tracker's line for the same message become one arrow. A second REQUEST_CHUNK for a chunk the
//! same client already requested is marked as a re-request: the first attempt failed.

use super::read::{LogLine, TraceEvent, TraceKind};
use crate::core::pyjson::{self, Json};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

/// A send and a receive further apart than this are not the same message.
pub const MATCH_WINDOW_US: u64 = 30_000_000;
/// A block of rows repeated at least this many times in a row is drawn once with a count.
pub const MIN_REPEAT: usize = 3;
/// The longest block of rows looked for when collapsing repeats.
pub const MAX_BLOCK: usize = 4;
/// The lifeline of a sender `logs.log` does not name.
pub const UNKNOWN_CLIENT: &str = "(unknown client)";

/// What a row draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowKind {
    Message,
    Transfer,
    Failure,
}

impl RowKind {
    pub fn name(self) -> &'static str {
        match self {
            RowKind::Message => "message",
            RowKind::Transfer => "transfer",
            RowKind::Failure => "failure",
        }
    }
}

/// One arrow (or a marker on one lifeline when `to` is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub kind: RowKind,
    pub from: usize,
    pub to: Option<usize>,
    /// The message text, or the transfer's or failure's summary.
    pub label: String,
    /// The message's keyword (`WHERE_CHUNK`, `ls`), for filtering.
    pub word: String,
    /// Microseconds since the first event (traces only).
    pub t_us: Option<u64>,
    /// Where it came from: threads, addresses, sizes.
    pub detail: String,
    /// A failure, or a transfer that ended with an error.
    pub failed: bool,
}

/// A row, or a block of rows that repeats (drawn once, with the count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Row(Row),
    Repeat {
        /// The first instance of the block.
        body: Vec<Row>,
        times: usize,
        /// The labels of the last instance, so the tooltip shows how far it went.
        last: Vec<String>,
    },
}

/// Lifelines in drawing order and the items top to bottom.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagram {
    pub lifelines: Vec<String>,
    pub items: Vec<Item>,
}

impl Diagram {
    /// Every row, collapsed blocks counted once (what is drawn).
    pub fn drawn_rows(&self) -> impl Iterator<Item = &Row> {
        self.items.iter().flat_map(|i| match i {
            Item::Row(r) => std::slice::from_ref(r),
            Item::Repeat { body, .. } => body.as_slice(),
        })
    }

    /// How many events the diagram stands for, repeats included.
    pub fn event_count(&self) -> usize {
        self.items
            .iter()
            .map(|i| match i {
                Item::Row(_) => 1,
                Item::Repeat { body, times, .. } => body.len() * times,
            })
            .sum()
    }

    /// Keywords in first-use order (the filter's list).
    pub fn words(&self) -> Vec<&str> {
        let mut seen = Vec::new();
        for r in self.drawn_rows() {
            if !seen.contains(&r.word.as_str()) {
                seen.push(r.word.as_str());
            }
        }
        seen
    }
}

/// Builds the diagram of `trace` events (any order; sorted by time here) followed by `log`
/// lines (file order). With `threads`, each thread is its own lifeline.
pub fn build(mut trace: Vec<TraceEvent>, log: &[LogLine], threads: bool) -> Diagram {
    trace.sort_by_key(|e| e.t_us);
    let mut b = Builder::default();
    let mut rows = trace_rows(&trace, threads);
    rows.extend(log_rows(log, &mut b));
    b.finish(rows)
}

/// Rows with endpoints still symbolic; lifeline indices are given in first-use order at the end.
#[derive(Debug, Clone)]
struct Draft {
    kind: RowKind,
    from: End,
    to: Option<End>,
    label: String,
    t_us: Option<u64>,
    detail: String,
    failed: bool,
    /// A transfer's `what` as recorded (`chunk 7`), to match both ends' records; else empty.
    what: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    Named(String),
    /// `logs.log`: the client that announced this port, else `localhost:<port>`.
    Port(u16),
    /// `logs.log`: whoever sent row N (a reply goes back to the asker).
    SenderOf(usize),
}

#[derive(Default)]
struct Builder {
    tracker_first: bool,
    ports: HashMap<u16, String>,
}

impl Builder {
    fn resolve(&self, rows: &[Draft], end: &End) -> String {
        match end {
            End::Named(n) => n.clone(),
            End::Port(p) => self
                .ports
                .get(p)
                .cloned()
                .unwrap_or_else(|| format!("localhost:{p}")),
            End::SenderOf(i) => match rows.get(*i).map(|r| &r.from) {
                Some(End::SenderOf(_)) | None => UNKNOWN_CLIENT.to_string(),
                Some(e) => self.resolve(rows, e),
            },
        }
    }

    fn finish(self, rows: Vec<Draft>) -> Diagram {
        let mut lifelines: Vec<String> = Vec::new();
        if self.tracker_first {
            lifelines.push(crate::p2ptracker::tracker::LOG_NAME.to_string());
        }
        let mut index = |name: String| match lifelines.iter().position(|l| *l == name) {
            Some(i) => i,
            None => {
                lifelines.push(name);
                lifelines.len() - 1
            }
        };
        let t0 = rows.iter().filter_map(|r| r.t_us).min().unwrap_or(0);
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let from = index(self.resolve(&rows, &r.from));
            let to = r.to.as_ref().map(|e| index(self.resolve(&rows, e)));
            out.push(Row {
                kind: r.kind,
                from,
                to,
                word: keyword(r.kind, &r.label),
                label: r.label.clone(),
                t_us: r.t_us.map(|t| t - t0),
                detail: r.detail.clone(),
                failed: r.failed,
            });
        }
        let first = self.tracker_first.then_some(0);
        reorder(
            Diagram {
                lifelines,
                items: out.into_iter().map(Item::Row).collect(),
            },
            first,
        )
    }
}

/// Lifelines in reading order: the busiest one first (the tracker or server every arrow goes
/// to or from), then the others by name with numbers compared as numbers (`peer2` before
/// `peer10`), and ends known only by an address (untraced programs) last. `first` overrides
/// the busiest (`logs.log`: the tracker).
fn reorder(d: Diagram, first: Option<usize>) -> Diagram {
    let n = d.lifelines.len();
    let mut touching = vec![0usize; n];
    for r in d.drawn_rows() {
        touching[r.from] += 1;
        if let Some(to) = r.to.filter(|t| *t != r.from) {
            touching[to] += 1;
        }
    }
    // The first lifeline with the most rows (ties keep the first seen).
    let hub = first.or_else(|| (0..n).rev().max_by_key(|i| touching[*i]));
    let mut order: Vec<usize> = (0..n).filter(|i| Some(*i) != hub).collect();
    order.sort_by_cached_key(|i| {
        let name = &d.lifelines[*i];
        (is_address(name), natural_key(name))
    });
    order.splice(0..0, hub);
    let mut new_index = vec![0; n];
    for (new, old) in order.iter().enumerate() {
        new_index[*old] = new;
    }
    let remap = |r: &Row| Row {
        from: new_index[r.from],
        to: r.to.map(|t| new_index[t]),
        ..r.clone()
    };
    Diagram {
        lifelines: order.iter().map(|i| d.lifelines[*i].clone()).collect(),
        items: d
            .items
            .iter()
            .map(|item| match item {
                Item::Row(r) => Item::Row(remap(r)),
                Item::Repeat { body, times, last } => Item::Repeat {
                    body: body.iter().map(remap).collect(),
                    times: *times,
                    last: last.clone(),
                },
            })
            .collect(),
    }
}

/// A lifeline named after an address or an unknown sender, not a traced process.
fn is_address(name: &str) -> bool {
    name.parse::<SocketAddr>().is_ok()
        || name.starts_with("localhost:")
        || name == "?"
        || name == UNKNOWN_CLIENT
}

/// `peer10` → [("peer", 10)]: text runs each followed by the number after them.
fn natural_key(name: &str) -> Vec<(String, u128)> {
    let mut key = Vec::new();
    let (mut text, mut digits) = (String::new(), String::new());
    for c in name.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            if !digits.is_empty() {
                key.push((
                    std::mem::take(&mut text),
                    digits.parse().unwrap_or(u128::MAX),
                ));
                digits.clear();
            }
            text.push(c);
        }
    }
    key.push((text, digits.parse().unwrap_or(0)));
    key
}

/// The word a filter groups a message by: a text protocol's leading keyword, a JSON message's
/// `type`/`command`-like field, `data` for transfers, `failure` for failures.
pub fn keyword(kind: RowKind, label: &str) -> String {
    match kind {
        RowKind::Transfer => return "data".into(),
        RowKind::Failure => return "failure".into(),
        RowKind::Message => {}
    }
    let t = label.trim_start();
    if t.starts_with('{') {
        if let Ok(v) = pyjson::parse(t.as_bytes(), 64) {
            for key in [
                "type", "command", "cmd", "op", "action", "request", "kind", "message",
            ] {
                if let Some(Json::String(s)) = v.get(key) {
                    return s.chars().take(32).collect();
                }
            }
        }
        return "json".into();
    }
    let word: String = t
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(32)
        .collect();
    if word.is_empty() {
        "other".into()
    } else {
        word
    }
}

/// Where lifelines live: the address each one used as its own.
struct Owners {
    exact: HashMap<SocketAddr, String>,
    by_port: HashMap<u16, String>,
}

impl Owners {
    fn of(trace: &[TraceEvent], name: impl Fn(&TraceEvent) -> String) -> Owners {
        let mut o = Owners {
            exact: HashMap::new(),
            by_port: HashMap::new(),
        };
        for e in trace {
            if let Some(a) = e.local {
                o.exact.entry(a).or_insert_with(|| name(e));
                if a.port() != 0 {
                    o.by_port.entry(a.port()).or_insert_with(|| name(e));
                }
            }
        }
        o
    }

    fn owner(&self, addr: SocketAddr) -> String {
        self.exact
            .get(&addr)
            .or_else(|| self.by_port.get(&addr.port()))
            .cloned()
            .unwrap_or_else(|| addr.to_string())
    }
}

/// A message waiting for its other end's record.
struct Pending {
    row: usize,
    t_us: u64,
    /// The sending end's port when known (0: not recorded).
    sender_port: u16,
}

type MatchKey = (String, u16, String);
/// (recorder, thread, proto, remote): transfers begun there and not yet ended (row, begin time).
type OpenTransfers = HashMap<(String, String, String, Option<SocketAddr>), Vec<(usize, u64)>>;

fn trace_rows(trace: &[TraceEvent], threads: bool) -> Vec<Draft> {
    let name = |e: &TraceEvent| {
        if threads {
            format!("{} / {}", e.process, e.thread)
        } else {
            e.process.clone()
        }
    };
    let mut t = TraceRows {
        owners: Owners::of(trace, name),
        rows: Vec::new(),
        sends: HashMap::new(),
        recvs: HashMap::new(),
        begun: HashMap::new(),
        last_sender: HashMap::new(),
    };
    for e in trace {
        let me = name(e);
        let other = e.remote.map(|a| t.owners.owner(a));
        match e.kind {
            TraceKind::Send | TraceKind::Recv => t.message(e, me, other),
            TraceKind::TransferBegin => t.transfer_begin(e, me, other),
            TraceKind::TransferEnd => t.transfer_end(e, me, other),
            TraceKind::Failure => t.rows.push(Draft {
                kind: RowKind::Failure,
                from: End::Named(me),
                to: other.map(End::Named),
                label: e.msg.clone(),
                t_us: Some(e.t_us),
                detail: describe(e),
                failed: true,
                what: String::new(),
            }),
        }
    }
    merge_duplicate_transfers(t.rows)
}

/// The state of turning time-ordered trace events into rows.
struct TraceRows {
    owners: Owners,
    rows: Vec<Draft>,
    /// Messages one end recorded, waiting for the other end's record.
    sends: HashMap<MatchKey, VecDeque<Pending>>,
    recvs: HashMap<MatchKey, VecDeque<Pending>>,
    begun: OpenTransfers,
    /// Last message between two lifelines (pair in name order): who sent it.
    last_sender: HashMap<(String, String), String>,
}

fn pair(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

fn port(a: Option<SocketAddr>) -> u16 {
    a.map_or(0, |a| a.port())
}

impl TraceRows {
    fn message(&mut self, e: &TraceEvent, me: String, other: Option<String>) {
        let send = e.kind == TraceKind::Send;
        let (sender_port, receiver_port) = if send {
            (port(e.local), port(e.remote))
        } else {
            (port(e.remote), port(e.local))
        };
        let key = (e.proto.clone(), receiver_port, e.msg.trim().to_string());
        let (theirs, mine) = if send {
            (&mut self.recvs, &mut self.sends)
        } else {
            (&mut self.sends, &mut self.recvs)
        };
        let matched = theirs.get_mut(&key).and_then(|q| {
            q.retain(|p| e.t_us.saturating_sub(p.t_us) <= MATCH_WINDOW_US);
            let at = q.iter().position(|p| {
                p.sender_port == 0 || sender_port == 0 || p.sender_port == sender_port
            })?;
            q.remove(at)
        });
        let where_ = describe(e);
        let row = match matched {
            Some(p) => {
                let r = &mut self.rows[p.row];
                if send {
                    r.from = End::Named(me);
                    r.detail = format!("{where_}\n{}", r.detail);
                } else {
                    r.to = Some(End::Named(me));
                    r.detail = format!("{}\n{where_}", r.detail);
                }
                p.row
            }
            None => {
                let (from, to) = if send {
                    (End::Named(me), other.map(End::Named))
                } else {
                    let from = other.unwrap_or_else(|| "?".into());
                    (End::Named(from), Some(End::Named(me)))
                };
                self.rows.push(Draft {
                    kind: RowKind::Message,
                    from,
                    to,
                    label: e.msg.clone(),
                    t_us: Some(e.t_us),
                    detail: where_,
                    failed: false,
                    what: String::new(),
                });
                mine.entry(key).or_default().push_back(Pending {
                    row: self.rows.len() - 1,
                    t_us: e.t_us,
                    sender_port,
                });
                self.rows.len() - 1
            }
        };
        if let (End::Named(f), Some(End::Named(t))) = (&self.rows[row].from, &self.rows[row].to) {
            self.last_sender.insert(pair(f, t), f.clone());
        }
    }

    fn transfer_begin(&mut self, e: &TraceEvent, me: String, other: Option<String>) {
        let (from, to) = transfer_ends(&me, other.as_deref(), &self.last_sender);
        self.rows.push(Draft {
            kind: RowKind::Transfer,
            from,
            to,
            label: transfer_label(&e.msg, e.size, None, None),
            t_us: Some(e.t_us),
            detail: format!("{}\n(no end recorded)", describe(e)),
            failed: false,
            what: e.msg.clone(),
        });
        self.begun
            .entry((me, e.thread.clone(), e.proto.clone(), e.remote))
            .or_default()
            .push((self.rows.len() - 1, e.t_us));
    }

    fn transfer_end(&mut self, e: &TraceEvent, me: String, other: Option<String>) {
        let key = (me.clone(), e.thread.clone(), e.proto.clone(), e.remote);
        let open = self.begun.get_mut(&key).filter(|v| !v.is_empty());
        if let Some(open) = open {
            // The begin with the same text, else the oldest one.
            let at = open
                .iter()
                .position(|(r, _)| self.rows[*r].label.starts_with(&e.msg))
                .unwrap_or(0);
            let (r, t0) = open.remove(at);
            let took = Some(e.t_us.saturating_sub(t0));
            let row = &mut self.rows[r];
            row.label = transfer_label(&e.msg, e.size, took, e.error.as_deref());
            row.failed = e.error.is_some();
            row.detail = describe(e);
            return;
        }
        let (from, to) = transfer_ends(&me, other.as_deref(), &self.last_sender);
        self.rows.push(Draft {
            kind: RowKind::Transfer,
            from,
            to,
            label: transfer_label(&e.msg, e.size, None, e.error.as_deref()),
            t_us: Some(e.t_us),
            detail: format!("{}\n(no begin recorded)", describe(e)),
            failed: e.error.is_some(),
            what: e.msg.clone(),
        });
    }
}

/// Who sends the data: whoever received the last message between the two ends (it was asked).
fn transfer_ends(
    me: &str,
    other: Option<&str>,
    last_sender: &HashMap<(String, String), String>,
) -> (End, Option<End>) {
    let Some(other) = other else {
        return (End::Named(me.to_string()), None);
    };
    match last_sender.get(&pair(me, other)) {
        Some(asker) if asker == other => (End::Named(me.into()), Some(End::Named(other.into()))),
        _ => (End::Named(other.into()), Some(End::Named(me.into()))),
    }
}

fn transfer_label(
    what: &str,
    size: Option<u64>,
    took_us: Option<u64>,
    error: Option<&str>,
) -> String {
    let mut s = what.to_string();
    if let Some(n) = size {
        if !what.contains(&n.to_string()) {
            s.push_str(&format!(" ({n} bytes)"));
        }
    }
    if let Some(us) = took_us {
        s.push_str(&format!(" in {:.1} ms", us as f64 / 1000.0));
    }
    if let Some(err) = error {
        s.push_str(&format!(" ✗ {err}"));
    }
    s
}

/// Both ends recorded the same data: keep one row. Two transfers with the same `what` between
/// the same two lifelines from different recorders are one; so is a transfer and a summary
/// message `<what>: …` between the same two (the sender's record of the data the receiver
/// recorded as a transfer). The transfer row is kept; the other record joins its hover text.
fn merge_duplicate_transfers(mut rows: Vec<Draft>) -> Vec<Draft> {
    let mut keep = vec![true; rows.len()];
    // (lifeline, lifeline, what) -> rows seen and not yet merged: (row, recorder, time, transfer?).
    type Seen = HashMap<(String, String, String), Vec<(usize, String, u64, bool)>>;
    let mut open: Seen = HashMap::new();
    let mut merges = Vec::new(); // (kept transfer row, dropped row)
    for (i, r) in rows.iter().enumerate() {
        let (End::Named(a), Some(End::Named(b))) = (&r.from, &r.to) else {
            continue;
        };
        let transfer = r.kind == RowKind::Transfer;
        let what = match r.kind {
            RowKind::Transfer => r.what.clone(),
            RowKind::Message => match r.label.split_once(':') {
                Some((what, _)) if !what.trim().is_empty() => what.trim().to_string(),
                _ => continue,
            },
            RowKind::Failure => continue,
        };
        let (x, y) = pair(a, b);
        let t = r.t_us.unwrap_or(0);
        let list = open.entry((x, y, what)).or_default();
        list.retain(|(_, _, t0, _)| t.saturating_sub(*t0) <= MATCH_WINDOW_US);
        let recorder = r.detail.split(' ').next().unwrap_or("").to_string();
        // A transfer pairs with the other end's transfer or summary; a summary with a transfer.
        let other = list
            .iter()
            .position(|(_, who, _, was_transfer)| *who != recorder && (transfer || *was_transfer));
        match other {
            Some(at) => {
                let (j, _, _, was_transfer) = list.remove(at);
                let (kept, dropped) = if was_transfer { (j, i) } else { (i, j) };
                keep[dropped] = false;
                merges.push((kept, dropped));
            }
            None => list.push((i, recorder, t, transfer)),
        }
    }
    for (kept, dropped) in merges {
        let also = format!(
            "\nalso recorded: {} ({})",
            rows[dropped].label, rows[dropped].detail
        );
        rows[kept].detail.push_str(&also);
    }
    rows.into_iter()
        .zip(keep)
        .filter_map(|(r, k)| k.then_some(r))
        .collect()
}

/// `A/thread tcp 127.0.0.1:1 -> 127.0.0.1:2, 13 bytes` for a tooltip.
fn describe(e: &TraceEvent) -> String {
    let addr = |a: Option<SocketAddr>| a.map_or_else(|| "?".to_string(), |a| a.to_string());
    let arrow = match e.kind {
        TraceKind::Recv => "<-",
        _ => "->",
    };
    let mut s = format!(
        "{}/{} {} {} {arrow} {}",
        e.process,
        e.thread,
        e.proto,
        addr(e.local),
        addr(e.remote)
    );
    if let (Some(n), TraceKind::Send | TraceKind::Recv) = (e.size, e.kind) {
        s.push_str(&format!(", {n} bytes"));
    }
    if let Some(err) = &e.error {
        s.push_str(&format!(", error: {err}"));
    }
    s
}

fn log_rows(log: &[LogLine], b: &mut Builder) -> Vec<Draft> {
    let tracker = crate::p2ptracker::tracker::LOG_NAME;
    let mut p = LogPairing::default();
    for line in log {
        match line {
            LogLine::LocalChunks { entity, idx, port } if entity != tracker => {
                b.ports.entry(*port).or_insert_with(|| entity.clone());
                p.client_local_chunks(line, entity, (*idx, *port));
            }
            LogLine::LocalChunks { entity, idx, port } => {
                p.tracker_local_chunks(line, entity, (*idx, *port));
            }
            LogLine::WhereChunk { entity, idx } if entity != tracker => {
                p.client_where_chunk(line, entity, *idx);
            }
            LogLine::WhereChunk { entity, idx } => p.tracker_where_chunk(line, entity, *idx),
            LogLine::GetChunkFrom { entity, idx, .. }
            | LogLine::ChunkLocationUnknown { entity, idx } => p.reply(line, entity, *idx),
            LogLine::RequestChunk { entity, idx, port } => {
                p.request_chunk(line, entity, *idx, *port);
            }
        }
    }
    if !log.is_empty() {
        b.tracker_first = true;
    }
    p.rows
}

/// Turns P2PTracker++ log lines into message rows. A message is logged once by its sender
/// and once by its receiver, in either order: the first line makes the row and waits in a
/// queue (keyed by what identifies the message) for the other end's line, which only adds its
/// name to the row.
#[derive(Default)]
struct LogPairing {
    rows: Vec<Draft>,
    client_lc: HashMap<(u32, u16), VecDeque<usize>>,
    tracker_lc: HashMap<(u32, u16), VecDeque<usize>>,
    client_wc: HashMap<u32, VecDeque<usize>>,
    tracker_wc: HashMap<u32, VecDeque<usize>>,
    /// WHERE_CHUNK rows whose reply is still to come, per chunk.
    unanswered: HashMap<u32, VecDeque<usize>>,
    /// REQUEST_CHUNK lines so far per (client, chunk): a second one means the first failed.
    requested: HashMap<(String, u32), usize>,
}

/// A message row as logged by `who`.
fn log_message(from: End, to: End, line: &LogLine, who: &str) -> Draft {
    Draft {
        kind: RowKind::Message,
        from,
        to: Some(to),
        label: line.text(),
        t_us: None,
        detail: format!("logged by {who}"),
        failed: false,
        what: String::new(),
    }
}

fn named(s: &str) -> End {
    End::Named(s.to_string())
}

impl LogPairing {
    fn push(&mut self, d: Draft) -> usize {
        self.rows.push(d);
        self.rows.len() - 1
    }

    fn client_local_chunks(&mut self, line: &LogLine, entity: &str, key: (u32, u16)) {
        let tracker = crate::p2ptracker::tracker::LOG_NAME;
        if let Some(r) = self.tracker_lc.get_mut(&key).and_then(VecDeque::pop_front) {
            self.rows[r].from = named(entity);
            self.rows[r].detail.push_str(&format!(" and {entity}"));
        } else {
            let r = self.push(log_message(named(entity), named(tracker), line, entity));
            self.client_lc.entry(key).or_default().push_back(r);
        }
    }

    fn tracker_local_chunks(&mut self, line: &LogLine, entity: &str, key: (u32, u16)) {
        if let Some(r) = self.client_lc.get_mut(&key).and_then(VecDeque::pop_front) {
            self.rows[r].detail.push_str(&format!(" and {entity}"));
        } else {
            let r = self.push(log_message(End::Port(key.1), named(entity), line, entity));
            self.tracker_lc.entry(key).or_default().push_back(r);
        }
    }

    fn client_where_chunk(&mut self, line: &LogLine, entity: &str, idx: u32) {
        let tracker = crate::p2ptracker::tracker::LOG_NAME;
        if let Some(r) = self.tracker_wc.get_mut(&idx).and_then(VecDeque::pop_front) {
            self.rows[r].from = named(entity);
            self.rows[r].detail.push_str(&format!(" and {entity}"));
        } else {
            let r = self.push(log_message(named(entity), named(tracker), line, entity));
            self.client_wc.entry(idx).or_default().push_back(r);
        }
    }

    fn tracker_where_chunk(&mut self, line: &LogLine, entity: &str, idx: u32) {
        let r = match self.client_wc.get_mut(&idx).and_then(VecDeque::pop_front) {
            Some(r) => {
                self.rows[r].detail.push_str(&format!(" and {entity}"));
                r
            }
            None => {
                let from = named(UNKNOWN_CLIENT);
                let r = self.push(log_message(from, named(entity), line, entity));
                self.tracker_wc.entry(idx).or_default().push_back(r);
                r
            }
        };
        self.unanswered.entry(idx).or_default().push_back(r);
    }

    /// GET_CHUNK_FROM or CHUNK_LOCATION_UNKNOWN goes back to whoever asked first.
    fn reply(&mut self, line: &LogLine, entity: &str, idx: u32) {
        let to = match self.unanswered.get_mut(&idx).and_then(VecDeque::pop_front) {
            Some(r) => End::SenderOf(r),
            None => named(UNKNOWN_CLIENT),
        };
        self.push(log_message(named(entity), to, line, entity));
    }

    fn request_chunk(&mut self, line: &LogLine, entity: &str, idx: u32, port: u16) {
        let attempt = self.requested.entry((entity.to_string(), idx)).or_insert(0);
        *attempt += 1;
        let attempt = *attempt;
        if attempt > 1 {
            self.push(Draft {
                kind: RowKind::Failure,
                from: named(entity),
                to: None,
                label: format!(
                    "re-request of chunk {idx} (attempt {attempt}): the earlier one failed"
                ),
                t_us: None,
                detail: format!("inferred from {entity}'s REQUEST_CHUNK lines"),
                failed: true,
                what: String::new(),
            });
        }
        self.push(log_message(named(entity), End::Port(port), line, entity));
    }
}

/// Replaces every block of up to [`MAX_BLOCK`] rows that repeats at least [`MIN_REPEAT`] times
/// in a row (same kinds, ends, keywords and outcome) by one [`Item::Repeat`]; but only when the
/// diagram has more than `above` rows, so small runs show every message.
pub fn collapse(d: Diagram, above: usize) -> Diagram {
    let rows: Vec<Row> = d
        .items
        .into_iter()
        .flat_map(|i| match i {
            Item::Row(r) => vec![r],
            Item::Repeat { body, .. } => body,
        })
        .collect();
    if rows.len() <= above {
        return Diagram {
            lifelines: d.lifelines,
            items: rows.into_iter().map(Item::Row).collect(),
        };
    }
    let sig = |r: &Row| (r.kind, r.from, r.to, r.word.clone(), r.failed);
    let sigs: Vec<_> = rows.iter().map(sig).collect();
    let mut items = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        let mut best = (1, 1); // (block length, times)
        for k in 1..=MAX_BLOCK.min(rows.len() - i) {
            let mut times = 1;
            while i + (times + 1) * k <= rows.len()
                && sigs[i + times * k..i + (times + 1) * k] == sigs[i..i + k]
            {
                times += 1;
            }
            if times >= MIN_REPEAT && k * times > best.0 * best.1 {
                best = (k, times);
            }
        }
        let (k, times) = best;
        if times >= MIN_REPEAT {
            let last_at = i + (times - 1) * k;
            items.push(Item::Repeat {
                body: rows[i..i + k].to_vec(),
                times,
                last: rows[last_at..last_at + k]
                    .iter()
                    .map(|r| r.label.clone())
                    .collect(),
            });
            i += k * times;
        } else {
            items.push(Item::Row(rows[i].clone()));
            i += 1;
        }
    }
    Diagram {
        lifelines: d.lifelines,
        items,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagram::read::{parse_file, TraceKind};

    /// (kind, from, to, label) of every drawn row, lifelines by name.
    fn arrows(d: &Diagram) -> Vec<(RowKind, String, String, String)> {
        d.drawn_rows()
            .map(|r| {
                let to = r.to.map_or("-".to_string(), |t| d.lifelines[t].clone());
                (r.kind, d.lifelines[r.from].clone(), to, r.label.clone())
            })
            .collect()
    }

    fn ev(
        t: u64,
        process: &str,
        kind: TraceKind,
        local: u16,
        remote: u16,
        msg: &str,
    ) -> TraceEvent {
        let a = |p: u16| (p != 0).then(|| SocketAddr::from(([127, 0, 0, 1], p)));
        TraceEvent {
            t_us: t,
            process: process.into(),
            thread: format!("{process}-thread"),
            kind,
            proto: "tcp".into(),
            local: a(local),
            remote: a(remote),
            msg: msg.into(),
            size: Some(msg.len() as u64),
            error: None,
        }
    }

    #[test]
    fn logs_log_receivers_are_inferred_and_both_ends_lines_make_one_arrow() {
        let text = "A,LOCAL_CHUNKS,1,localhost,6001\n\
            P2PTracker,LOCAL_CHUNKS,1,localhost,6001\n\
            P2PTracker,WHERE_CHUNK,2\n\
            A,WHERE_CHUNK,2\n\
            B,WHERE_CHUNK,2\n\
            P2PTracker,GET_CHUNK_FROM,2,localhost,6001\n\
            P2PTracker,WHERE_CHUNK,2\n\
            P2PTracker,CHUNK_LOCATION_UNKNOWN,2\n\
            B,REQUEST_CHUNK,1,localhost,6001\n\
            B,REQUEST_CHUNK,1,localhost,6001\n\
            B,REQUEST_CHUNK,3,localhost,7777\n";
        let p = parse_file("logs.log", text.as_bytes());
        let d = build(vec![], &p.log, false);
        assert_eq!(d.lifelines, ["P2PTracker", "A", "B", "localhost:7777"]);
        let m = RowKind::Message;
        let row = |k, f: &str, t: &str, l: &str| (k, f.into(), t.into(), l.into());
        assert_eq!(
            arrows(&d),
            [
                row(m, "A", "P2PTracker", "LOCAL_CHUNKS,1,localhost,6001"),
                row(m, "A", "P2PTracker", "WHERE_CHUNK,2"),
                row(m, "B", "P2PTracker", "WHERE_CHUNK,2"),
                row(m, "P2PTracker", "A", "GET_CHUNK_FROM,2,localhost,6001"),
                row(m, "P2PTracker", "B", "CHUNK_LOCATION_UNKNOWN,2"),
                row(m, "B", "A", "REQUEST_CHUNK,1,localhost,6001"),
                row(
                    RowKind::Failure,
                    "B",
                    "-",
                    "re-request of chunk 1 (attempt 2): the earlier one failed"
                ),
                row(m, "B", "A", "REQUEST_CHUNK,1,localhost,6001"),
                row(m, "B", "localhost:7777", "REQUEST_CHUNK,3,localhost,7777"),
            ]
        );
    }

    #[test]
    fn a_tracker_line_whose_client_never_logged_comes_from_an_unknown_client() {
        let p = parse_file(
            "logs.log",
            b"P2PTracker,WHERE_CHUNK,5\nP2PTracker,CHUNK_LOCATION_UNKNOWN,5\n",
        );
        let d = build(vec![], &p.log, false);
        assert_eq!(d.lifelines, ["P2PTracker", UNKNOWN_CLIENT]);
        assert_eq!(arrows(&d)[1].2, UNKNOWN_CLIENT);
    }

    #[test]
    fn a_message_traced_at_both_ends_is_one_arrow_and_one_end_suffices() {
        use TraceKind::*;
        let trace = vec![
            ev(150, "T", Recv, 5000, 40001, "WHERE_CHUNK,1"),
            ev(100, "A", Send, 40001, 5000, "WHERE_CHUNK,1"),
            ev(160, "T", Send, 5000, 40001, "GET_CHUNK_FROM,1"),
            ev(170, "A", Recv, 40001, 5000, "GET_CHUNK_FROM,1"),
            // Only the receiver traced this one; the sender is whoever owns port 40001.
            ev(180, "T", Recv, 5000, 40001, "WHERE_CHUNK,2"),
            // Nobody traced port 9: an untraced program.
            ev(190, "A", Send, 40001, 9, "HELLO"),
        ];
        let d = build(trace, &[], false);
        assert_eq!(d.lifelines, ["A", "T", "127.0.0.1:9"]);
        let got: Vec<_> = arrows(&d).into_iter().map(|a| (a.1, a.2, a.3)).collect();
        let want = [
            ("A", "T", "WHERE_CHUNK,1"),
            ("T", "A", "GET_CHUNK_FROM,1"),
            ("A", "T", "WHERE_CHUNK,2"),
            ("A", "127.0.0.1:9", "HELLO"),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect();
        assert_eq!(got, want);
        let times: Vec<_> = d.drawn_rows().map(|r| r.t_us).collect();
        assert_eq!(times, [Some(0), Some(60), Some(80), Some(90)]);
    }

    #[test]
    fn threads_make_their_own_lifelines() {
        use TraceKind::*;
        let mut recv = ev(150, "T", Recv, 5000, 40001, "X");
        recv.thread = "tracker-conn-1".into();
        let trace = vec![ev(100, "A", Send, 40001, 5000, "X"), recv];
        let d = build(trace, &[], true);
        assert_eq!(d.lifelines, ["A / A-thread", "T / tracker-conn-1"]);
    }

    #[test]
    fn transfers_flow_to_the_asker_with_size_and_time_and_failures_are_marked() {
        use TraceKind::*;
        let mut begin = ev(210, "A", TransferBegin, 40003, 6002, "chunk 1");
        begin.size = Some(4096);
        let mut end = ev(2210, "A", TransferEnd, 40003, 6002, "chunk 1");
        end.size = Some(100);
        end.error = Some("connection reset".into());
        let mut served = ev(220, "B", TransferBegin, 6002, 40003, "chunk 1");
        served.size = Some(4096);
        let trace = vec![
            ev(200, "A", Send, 40003, 6002, "REQUEST_CHUNK,1"),
            ev(205, "B", Recv, 6002, 40003, "REQUEST_CHUNK,1"),
            begin,
            served,
            end,
            ev(3000, "A", Failure, 0, 6003, "connect refused"),
            ev(3100, "A", Failure, 0, 0, "timeout"),
        ];
        let d = build(trace, &[], false);
        let got = arrows(&d);
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(
            got[1],
            (
                RowKind::Transfer,
                "B".into(),
                "A".into(),
                "chunk 1 (100 bytes) in 2.0 ms ✗ connection reset".into()
            )
        );
        assert!(d.drawn_rows().nth(1).unwrap().failed);
        assert_eq!(got[2].1, "A");
        assert_eq!(got[2].2, "127.0.0.1:6003");
        assert_eq!(got[3].2, "-");
        assert!(d
            .drawn_rows()
            .skip(2)
            .all(|r| r.kind == RowKind::Failure && r.failed));
    }

    #[test]
    fn a_senders_summary_of_the_data_a_receiver_traced_as_a_transfer_is_one_row() {
        use TraceKind::*;
        let mut begin = ev(210, "A", TransferBegin, 40003, 6002, "chunk 5");
        begin.size = None;
        let mut end = ev(900, "A", TransferEnd, 40003, 6002, "chunk 5");
        end.size = Some(65536);
        let trace = vec![
            ev(200, "A", Send, 40003, 6002, "REQUEST_CHUNK,5"),
            begin,
            // The holder only says what it sent (it does not trace the request it read).
            ev(800, "B", Send, 6002, 40003, "chunk 5: 65536 bytes"),
            end,
            // A later chunk's summary with no transfer traced stays a message.
            ev(5000, "B", Send, 6002, 40004, "chunk 6: 10 bytes"),
            ev(5001, "A", Recv, 40004, 6002, "unrelated"),
        ];
        let d = build(trace, &[], false);
        let got: Vec<_> = arrows(&d)
            .into_iter()
            .map(|a| (a.0, a.1, a.2, a.3))
            .collect();
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[0].3, "REQUEST_CHUNK,5");
        assert_eq!(
            got[1],
            (
                RowKind::Transfer,
                "B".into(),
                "A".into(),
                "chunk 5 (65536 bytes) in 0.7 ms".into()
            )
        );
        assert!(d
            .drawn_rows()
            .nth(1)
            .unwrap()
            .detail
            .contains("also recorded: chunk 5: 65536 bytes"));
        assert_eq!(got[2].3, "chunk 6: 10 bytes");
    }

    #[test]
    fn keywords_come_from_text_json_and_kind() {
        assert_eq!(keyword(RowKind::Message, "WHERE_CHUNK,1"), "WHERE_CHUNK");
        assert_eq!(keyword(RowKind::Message, "{\"type\": \"ls\"}"), "ls");
        assert_eq!(keyword(RowKind::Message, "{\"x\": 1}"), "json");
        assert_eq!(keyword(RowKind::Message, ",,,"), "other");
        assert_eq!(keyword(RowKind::Transfer, "chunk 1"), "data");
    }

    fn row(from: usize, to: usize, label: &str) -> Row {
        Row {
            kind: RowKind::Message,
            from,
            to: Some(to),
            label: label.into(),
            word: keyword(RowKind::Message, label),
            t_us: None,
            detail: String::new(),
            failed: false,
        }
    }

    #[test]
    fn a_thousand_repeated_request_and_reply_pairs_collapse_into_one_block() {
        let mut items = vec![Item::Row(row(0, 1, "HELLO"))];
        for i in 0..1000 {
            items.push(Item::Row(row(0, 1, &format!("REQUEST_CHUNK,{i}"))));
            items.push(Item::Row(row(1, 0, &format!("CHUNK,{i}"))));
        }
        items.push(Item::Row(row(1, 0, "BYE")));
        let d = Diagram {
            lifelines: vec!["A".into(), "B".into()],
            items,
        };
        let small = collapse(d.clone(), 5000);
        assert_eq!(small.items.len(), 2002);
        let c = collapse(d, 100);
        assert_eq!(c.event_count(), 2002);
        assert_eq!(c.items.len(), 3);
        match &c.items[1] {
            Item::Repeat { body, times, last } => {
                assert_eq!(*times, 1000);
                assert_eq!(body[0].label, "REQUEST_CHUNK,0");
                assert_eq!(last, &["REQUEST_CHUNK,999", "CHUNK,999"]);
            }
            other => panic!("{other:?}"),
        }
    }
}
