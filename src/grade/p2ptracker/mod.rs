//! The P2PTracker++ rubric (100 points): the tracker alone, graded with raw protocol bytes and
//! peershare clients (20); the client alone, graded with the scripted tracker and peers of
//! [`scripted`] so `client 3`, `client 7` and `client 8` are judged from the wire (30); the whole
//! system, the submission's tracker with its clients (50).
//!
//! Where the assignment is loose, the grader does this (and says so in its evidence):
//! - It paces its own messages 1 s apart on a connection and never puts two in one write, since
//!   the public trackers read one message per `recv(1024)`.
//! - A tracker whose first answer lacks a holder announced a moment before is asked again (up to
//!   three times, 1 s apart): a tracker thread may still be sleeping on the announcement.
//! - Several client tests are judged from one run (a client is run once per layout); a test
//!   that holds for a rule must hold in every run that exercises it.
//! - `system 4` (serve while downloading) is witnessed when a chunk lands at a client while every
//!   client that could have sent it was itself still missing chunks. In the spec's cyclic layout
//!   a client that serves only after finishing deadlocks, so it also fails `system 2`.
//! - `system 3`'s bound is 15 s + 9 s per chunk (a one-at-a-time client sleeping 1 s around each
//!   WHERE_CHUNK, REQUEST_CHUNK and LOCAL_CHUNKS, behind a seed that announces every chunk),
//!   times `--timeout-scale`; a run also stops when no chunk lands anywhere for 20 s (hung).
//! - Received chunks must be `<folder>/chunk_<idx>`, byte-identical.

pub mod logs;
pub mod scripted;

use self::logs::{LogLine, Parsed};
use self::scripted::{Recorder, ScriptedPeer, ScriptedTracker, Seen};
use super::report::{Report, TestResult};
use super::runner::{self, CommandLine, PortBusy, Proc, Workdir, SPEC_PORT};
pub use super::{Abort, Context};
use crate::core::tcp;
use crate::p2ptracker::chunk_list;
use crate::p2ptracker::wire::{self, Holder, Reply, Request};
use rand::RngCore;
use std::collections::BTreeSet;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Which rubric section to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    Tracker,
    Client,
    System,
    All,
}

impl Part {
    pub fn tracker(self) -> bool {
        matches!(self, Part::Tracker | Part::All)
    }
    pub fn client(self) -> bool {
        matches!(self, Part::Client | Part::All)
    }
    pub fn system(self) -> bool {
        matches!(self, Part::System | Part::All)
    }
}

/// What is being graded: the two programs (either may be absent when its part is not run).
#[derive(Debug, Clone)]
pub struct Subject {
    pub tracker: Option<CommandLine>,
    pub client: Option<CommandLine>,
}

/// The rubric's names and points, in report order.
pub const RUBRIC: [(&str, f64); 19] = [
    (
        "tracker 1: accepts simultaneous connections from more than 2 clients",
        5.0,
    ),
    (
        "tracker 2: chunk list where a chunk exists and one client has it",
        5.0,
    ),
    (
        "tracker 3: a chunk two clients have (both holders in the reply)",
        5.0,
    ),
    (
        "tracker 4: a chunk nobody registered gets CHUNK_LOCATION_UNKNOWN",
        5.0,
    ),
    ("client 1: sends its own chunk list to the tracker", 2.5),
    (
        "client 2: asks the tracker for all the other chunks it needs",
        2.5,
    ),
    (
        "client 3: connects to peers without disconnecting from the tracker",
        5.0,
    ),
    (
        "client 4: transfers some files from peer clients (layout 1)",
        5.0,
    ),
    (
        "client 5: transfers some files from peer clients (layout 2)",
        5.0,
    ),
    ("client 6: transfers all files from peer clients", 5.0),
    ("client 7: asks peers only for the correct chunks", 2.5),
    ("client 8: disconnects from peers after each transfer", 2.5),
    ("system 1: more than one client can be invoked", 5.0),
    (
        "system 2: all clients make progress and eventually have all chunks",
        8.0,
    ),
    ("system 3: clients finish in reasonable time", 8.0),
    (
        "system 4: clients make and receive peer connections at the same time",
        8.0,
    ),
    ("system 5: small chunk files", 5.0),
    ("system 6: large chunk files (3 MB)", 8.0),
    (
        "system 7: all clients finish when only some clients, holding every chunk, join first",
        8.0,
    ),
];

fn result(id: &str, passed: bool, evidence: Vec<String>) -> TestResult {
    let (name, max) = RUBRIC
        .iter()
        .find(|(n, _)| n.split(':').next() == Some(id))
        .copied()
        .unwrap_or((id, 0.0));
    TestResult::new(name, max, passed, evidence)
}

/// Runs the selected part(s) of the rubric.
pub fn grade(subject: &Subject, part: Part, cx: &Context) -> Result<Report, Abort> {
    let start = Instant::now();
    runner::wait_port_free(SPEC_PORT, cx.timeouts.secs(2.0), &cx.shutdown)
        .map_err(Abort::PortBusy)?;
    let mut report = Report::default();
    if part.tracker() {
        if let Some(t) = &subject.tracker {
            report.notes.push(format!("tracker: {t}"));
            report.tests.extend(tracker_part(t, cx)?);
        }
    }
    if part.client() {
        if let Some(c) = &subject.client {
            report.notes.push(format!("client: {c}"));
            report.tests.extend(client_part(c, cx)?);
        }
    }
    if part.system() {
        if let (Some(t), Some(c)) = (&subject.tracker, &subject.client) {
            report.tests.extend(system_part(t, c, cx)?);
        }
    }
    report.elapsed = start.elapsed();
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// Layouts: random chunk files and local_chunks.txt per client folder.

/// Chunk contents, index 0 = chunk 1.
fn make_chunks(sizes: &[usize]) -> Vec<Vec<u8>> {
    let mut rng = rand::thread_rng();
    sizes
        .iter()
        .map(|&n| {
            let mut v = vec![0u8; n];
            rng.fill_bytes(&mut v);
            v
        })
        .collect()
}

/// `<root>/<name>/` with `chunk_<i>` for each held chunk and a `local_chunks.txt`.
fn write_folder(root: &Path, name: &str, held: &[u32], chunks: &[Vec<u8>]) -> io::Result<PathBuf> {
    let folder = root.join(name);
    std::fs::create_dir_all(&folder)?;
    let mut text = String::new();
    for &i in held {
        std::fs::write(folder.join(format!("chunk_{i}")), &chunks[i as usize - 1])?;
        text.push_str(&format!("{i},chunk_{i}\n"));
    }
    text.push_str(&format!("{},LASTCHUNK\n", chunks.len()));
    chunk_list::write_atomically(&folder, &text)?;
    Ok(folder)
}

/// Chunks present in `folder` as `chunk_<i>`, byte-identical.
fn present(folder: &Path, chunks: &[Vec<u8>]) -> BTreeSet<u32> {
    (1..=chunks.len() as u32)
        .filter(|i| {
            std::fs::read(folder.join(format!("chunk_{i}")))
                .is_ok_and(|b| b == chunks[*i as usize - 1])
        })
        .collect()
}

fn list(set: impl IntoIterator<Item = u32>) -> String {
    let v: Vec<String> = set.into_iter().map(|i| i.to_string()).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(",")
    }
}

fn read_log(dir: &Path) -> String {
    std::fs::read(dir.join("logs.log"))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn log_lines(dir: &Path) -> Vec<LogLine> {
    logs::parse_file(&read_log(dir))
        .into_iter()
        .filter_map(|(_, _, p)| match p {
            Parsed::Line(l) => Some(l),
            _ => None,
        })
        .collect()
}

/// Evidence for a log line that should be there: either it is, or what came nearest.
fn want_log_line(dir: &Path, want: &LogLine, shown: &str) -> Option<String> {
    let text = read_log(dir);
    let parsed = logs::parse_file(&text);
    if parsed
        .iter()
        .any(|(_, _, p)| p == &Parsed::Line(want.clone()))
    {
        return None;
    }
    let mut msg = format!("logs.log has no line {shown}");
    let entity = want.entity();
    let keyword = shown.split(',').nth(1).unwrap_or("");
    let malformed = |(_, raw, p): &&(usize, &str, Parsed)| {
        matches!(p, Parsed::Malformed(_)) && raw.contains(entity)
    };
    let near = parsed
        .iter()
        .filter(malformed)
        .find(|(_, raw, _)| raw.contains(keyword))
        .or_else(|| parsed.iter().find(malformed));
    match near {
        Some((no, raw, Parsed::Malformed(why))) => {
            msg.push_str(&format!("; line {no} {raw:?} {why}"));
        }
        _ if text.is_empty() => msg.push_str(" (logs.log is empty or missing)"),
        _ => {}
    }
    Some(msg)
}

fn start_program(label: &str, cmd: &CommandLine, dir: &Path) -> Result<Proc, Abort> {
    Proc::spawn(label, cmd, dir)
        .map_err(|e| Abort::Setup(io::Error::new(e.kind(), format!("cannot start {cmd}: {e}"))))
}

/// Starts the student tracker in `dir` and waits until it listens on 5100.
fn start_tracker(
    cmd: &CommandLine,
    dir: &Path,
    cx: &Context,
) -> Result<Result<Proc, Vec<String>>, Abort> {
    runner::wait_port_free(SPEC_PORT, cx.timeouts.secs(10.0), &cx.shutdown)
        .map_err(Abort::PortBusy)?;
    let mut p = start_program("P2PTracker", cmd, dir)?;
    // Python under load can take seconds just to start; a crash is seen at once regardless.
    let limit = cx.timeouts.secs(STARTUP_SECS);
    let up = runner::wait_until(limit, &cx.shutdown, || {
        runner::listening_on(SPEC_PORT) || p.exited().is_some()
    });
    cx.check_interrupt()?;
    if up && p.exited().is_none() {
        return Ok(Ok(p));
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut ev = vec![if p.exited().is_some() {
        format!("the tracker ended before it listened on 127.0.0.1:{SPEC_PORT}")
    } else {
        format!(
            "the tracker did not listen on 127.0.0.1:{SPEC_PORT} within {:.0} s",
            limit.as_secs_f64()
        )
    }];
    ev.extend(p.evidence());
    Ok(Err(ev))
}

fn connect_tracker() -> io::Result<TcpStream> {
    tcp::connect(
        SocketAddr::from(([127, 0, 0, 1], SPEC_PORT)),
        Duration::from_secs(3),
    )
}

// ---------------------------------------------------------------------------------------------
// Tracker part.

/// A raw connection to the student tracker that writes what it does into a transcript.
struct Raw {
    name: &'static str,
    stream: TcpStream,
}

impl Raw {
    fn open(name: &'static str, tx: &mut Vec<String>) -> Option<Raw> {
        match connect_tracker() {
            Ok(stream) => Some(Raw { name, stream }),
            Err(e) => {
                tx.push(format!(
                    "{name}: cannot connect to 127.0.0.1:{SPEC_PORT}: {e}"
                ));
                None
            }
        }
    }

    fn send(&mut self, msg: &str, tx: &mut Vec<String>) -> bool {
        tx.push(format!("{} sent {msg}", self.name));
        if let Err(e) = self.stream.write_all(msg.as_bytes()) {
            tx.push(format!("{}: the write failed: {e}", self.name));
            return false;
        }
        true
    }

    /// One reply, as text, or `None` (with the reason in the transcript).
    fn reply(&mut self, timeout: Duration, tx: &mut Vec<String>) -> Option<String> {
        let start = Instant::now();
        match tcp::read_once(&mut self.stream, 1024, timeout) {
            Ok(b) if b.is_empty() => {
                tx.push(format!("{}: the tracker closed the connection", self.name));
                None
            }
            Ok(b) => {
                let text = String::from_utf8_lossy(&b).into_owned();
                tx.push(format!(
                    "{} got {text:?} after {:.1} s",
                    self.name,
                    start.elapsed().as_secs_f64()
                ));
                Some(text)
            }
            Err(_) => {
                tx.push(format!(
                    "{}: no reply within {:.0} s",
                    self.name,
                    timeout.as_secs_f64()
                ));
                None
            }
        }
    }
}

const PACE: Duration = Duration::from_secs(1);
/// How long a program may take to listen (tracker) or connect (client) after it starts.
const STARTUP_SECS: f64 = 15.0;

fn tracker_part(cmd: &CommandLine, cx: &Context) -> Result<Vec<TestResult>, Abort> {
    let mut out = Vec::new();
    cx.say("tracker 1 (three peershare clients)");
    out.push(tracker_1(cmd, cx)?);
    cx.say("tracker 2 (one holder)");
    out.push(tracker_holders(cmd, cx, "tracker 2", 1)?);
    cx.say("tracker 3 (two holders)");
    out.push(tracker_holders(cmd, cx, "tracker 3", 2)?);
    cx.say("tracker 4 (unknown chunk)");
    out.push(tracker_4(cmd, cx)?);
    Ok(out)
}

fn tracker_1(cmd: &CommandLine, cx: &Context) -> Result<TestResult, Abort> {
    let dir = Workdir::new("tracker1")?;
    let chunks = make_chunks(&[3000, 3000, 3000]);
    let tracker = match start_tracker(cmd, &dir.path, cx)? {
        Ok(t) => t,
        Err(ev) => return Ok(result("tracker 1", false, ev)),
    };
    let mut tracker = tracker;
    let mut clients = Vec::new();
    let mut folders = Vec::new();
    for (k, name) in ["g1", "g2", "g3"].iter().enumerate() {
        let folder = write_folder(&dir.path, name, &[k as u32 + 1], &chunks)?;
        let c = CommandLine {
            program: cx.peershare.clone().into(),
            args: vec![],
        }
        .with(&[
            "p2ptracker",
            "client",
            "--transfer_port",
            "0",
            "--pace-ms",
            "1000",
            "--name",
            name,
            "--folder",
        ])
        .with(&[folder.as_os_str()]);
        clients.push(start_program(
            &format!("peershare client {name}"),
            &c,
            &dir.path,
        )?);
        folders.push(folder);
    }
    let limit = cx.timeouts.secs(25.0);
    let done = runner::wait_until(limit, &cx.shutdown, || {
        folders.iter().all(|f| present(f, &chunks).len() == 3) || tracker.exited().is_some()
    });
    cx.check_interrupt()?;
    let mut ev = vec![format!(
        "three peershare clients (g1 holds 1, g2 holds 2, g3 holds 3 of 3 chunks) connected at once and each needs the other two"
    )];
    for (name, f) in ["g1", "g2", "g3"].iter().zip(&folders) {
        ev.push(format!("{name} has chunks {}", list(present(f, &chunks))));
    }
    drop(clients);
    let passed = done && tracker.exited().is_none();
    if !passed {
        ev.push(format!(
            "not every client had every chunk within {:.0} s",
            limit.as_secs_f64()
        ));
        ev.extend(tracker.evidence());
        ev.extend(tail_of_log(&dir.path, 6));
    }
    Ok(result(
        "tracker 1",
        passed,
        if passed { vec![] } else { ev },
    ))
}

fn tail_of_log(dir: &Path, n: usize) -> Vec<String> {
    let text = read_log(dir);
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return vec!["logs.log: empty or missing".into()];
    }
    let mut out = vec![format!(
        "logs.log (last {} of {} lines):",
        n.min(lines.len()),
        lines.len()
    )];
    out.extend(
        lines[lines.len().saturating_sub(n)..]
            .iter()
            .map(|l| format!("  | {l}")),
    );
    out
}

/// `tracker 2` (one holder) and `tracker 3` (two holders): announce, ask on another connection,
/// compare the reply, check the tracker's log lines.
fn tracker_holders(
    cmd: &CommandLine,
    cx: &Context,
    id: &str,
    holders: usize,
) -> Result<TestResult, Abort> {
    let dir = Workdir::new("tracker-holders")?;
    let mut tracker = match start_tracker(cmd, &dir.path, cx)? {
        Ok(t) => t,
        Err(ev) => return Ok(result(id, false, ev)),
    };
    let idx = if holders == 1 { 7 } else { 9 };
    let ports: Vec<u16> = (0..holders)
        .map(|k| 6101 + k as u16 + (idx as u16) * 10)
        .collect();
    let mut tx = Vec::new();
    // Each announcer closes before the next one opens and the question goes on the last
    // connection, so a tracker serving one connection at a time loses only `tracker 1`.
    let mut last = None;
    for (k, port) in ports.iter().enumerate() {
        let name = ["A", "B"][k];
        if let Some(prev) = last.take() {
            let prev: Raw = prev;
            tx.push(format!("{} closed its connection", prev.name));
            drop(prev);
        }
        let Some(mut a) = Raw::open(name, &mut tx) else {
            return Ok(finish_fail(id, tx, &mut tracker, &dir.path));
        };
        a.send(&wire::encode_local_chunks(idx, "localhost", *port), &mut tx);
        last = Some(a);
        cx.shutdown.sleep(PACE);
    }
    let Some(mut q) = last else {
        return Ok(finish_fail(id, tx, &mut tracker, &dir.path));
    };
    let want: Vec<Holder> = ports
        .iter()
        .map(|&port| Holder {
            ip: "localhost".into(),
            port,
        })
        .collect();
    let mut ok = false;
    let mut problem = None;
    for attempt in 0..3 {
        cx.check_interrupt()?;
        if attempt > 0 {
            cx.shutdown.sleep(PACE);
        }
        if !q.send(&wire::encode_where_chunk(idx), &mut tx) {
            break;
        }
        let Some(reply) = q.reply(cx.timeouts.secs(10.0), &mut tx) else {
            break;
        };
        let text = reply.trim_end_matches(['\r', '\n']);
        match wire::parse_reply(text.as_bytes(), idx) {
            Some(Reply::Holders(got)) => {
                let same_set = got.len() == want.len() && want.iter().all(|w| got.contains(w));
                let exact = text.split(',').count() == 2 + 2 * got.len();
                if same_set && exact {
                    ok = true;
                    if holders == 2 && got != want {
                        tx.push("(holders not in registration order; accepted)".into());
                    }
                    break;
                }
                problem = Some(format!(
                    "wanted holders {} in GET_CHUNK_FROM,{idx},…",
                    want.iter()
                        .map(|h| format!("localhost,{}", h.port))
                        .collect::<Vec<_>>()
                        .join(",")
                ));
                if got.len() >= want.len() {
                    break;
                }
            }
            Some(Reply::Unknown) => {
                problem = Some(format!(
                    "chunk {idx} was announced {} time(s) but reported unknown",
                    holders
                ));
            }
            None => {
                problem = Some(format!(
                    "{text:?} is not GET_CHUNK_FROM,{idx},… nor CHUNK_LOCATION_UNKNOWN,{idx}"
                ));
                break;
            }
        }
    }
    if ok {
        // The tracker's own lines: receipt of each announcement and the reply it sent.
        let mut wanted = vec![];
        for p in &ports {
            wanted.push((
                LogLine::LocalChunks {
                    entity: "P2PTracker".into(),
                    idx,
                    port: *p,
                },
                format!("P2PTracker,LOCAL_CHUNKS,{idx},localhost,{p}"),
            ));
        }
        wanted.push((
            LogLine::WhereChunk {
                entity: "P2PTracker".into(),
                idx,
            },
            format!("P2PTracker,WHERE_CHUNK,{idx}"),
        ));
        let sent_logged = || {
            log_lines(&dir.path).iter().any(|l| {
                matches!(l, LogLine::GetChunkFrom { entity, idx: i, ports: p }
                    if entity == "P2PTracker" && *i == idx && p.len() == ports.len())
            })
        };
        runner::wait_until(cx.timeouts.secs(3.0), &cx.shutdown, || {
            sent_logged()
                && wanted
                    .iter()
                    .all(|(w, s)| want_log_line(&dir.path, w, s).is_none())
        });
        let missing: Vec<String> = wanted
            .iter()
            .filter_map(|(w, s)| want_log_line(&dir.path, w, s))
            .collect();
        let sent_logged = sent_logged();
        if !missing.is_empty() || !sent_logged {
            ok = false;
            tx.extend(missing);
            if !sent_logged {
                tx.push(format!(
                    "logs.log has no P2PTracker,GET_CHUNK_FROM,{idx},… line naming every holder"
                ));
            }
        }
    } else if let Some(p) = problem {
        tx.push(p);
    }
    drop(q);
    if ok {
        return Ok(result(id, true, vec![]));
    }
    Ok(finish_fail(id, tx, &mut tracker, &dir.path))
}

fn finish_fail(id: &str, mut tx: Vec<String>, tracker: &mut Proc, dir: &Path) -> TestResult {
    if tracker.exited().is_some() || !tracker.stderr.last_lines(1).is_empty() {
        tx.extend(tracker.evidence());
    }
    tx.extend(tail_of_log(dir, 6));
    result(id, false, tx)
}

fn tracker_4(cmd: &CommandLine, cx: &Context) -> Result<TestResult, Abort> {
    let dir = Workdir::new("tracker4")?;
    let mut tracker = match start_tracker(cmd, &dir.path, cx)? {
        Ok(t) => t,
        Err(ev) => return Ok(result("tracker 4", false, ev)),
    };
    let mut tx = Vec::new();
    let Some(mut a) = Raw::open("A", &mut tx) else {
        return Ok(finish_fail("tracker 4", tx, &mut tracker, &dir.path));
    };
    a.send(&wire::encode_local_chunks(3, "localhost", 6201), &mut tx);
    cx.shutdown.sleep(PACE);
    let mut q = a;
    let idx = 42;
    q.send(&wire::encode_where_chunk(idx), &mut tx);
    let mut ok = false;
    if let Some(reply) = q.reply(cx.timeouts.secs(10.0), &mut tx) {
        let text = reply.trim_end_matches(['\r', '\n']);
        if text == wire::encode_unknown(&idx.to_string()) {
            ok = true;
        } else {
            tx.push(format!("wanted exactly {:?}", wire::encode_unknown("42")));
        }
    }
    cx.check_interrupt()?;
    if ok {
        let want = LogLine::Unknown {
            entity: "P2PTracker".into(),
            idx,
        };
        let shown = "P2PTracker,CHUNK_LOCATION_UNKNOWN,42";
        runner::wait_until(cx.timeouts.secs(3.0), &cx.shutdown, || {
            want_log_line(&dir.path, &want, shown).is_none()
        });
        if let Some(m) = want_log_line(&dir.path, &want, shown) {
            ok = false;
            tx.push(m);
        }
    }
    drop(q);
    if ok {
        return Ok(result("tracker 4", true, vec![]));
    }
    Ok(finish_fail("tracker 4", tx, &mut tracker, &dir.path))
}

// ---------------------------------------------------------------------------------------------
// Client part.

struct ClientLayout {
    label: &'static str,
    sizes: Vec<usize>,
    held: Vec<u32>,
    peers: Vec<Vec<u32>>,
}

/// What one run of the student client showed.
struct ClientRun {
    label: &'static str,
    name: String,
    port: u16,
    held: Vec<u32>,
    total: u32,
    peer_ports: Vec<u16>,
    events: Vec<(Duration, Seen)>,
    have: BTreeSet<u32>,
    complete: bool,
    /// Why the run ended, and the program's evidence when it ended badly.
    ending: Vec<String>,
    dir: Workdir,
}

impl ClientRun {
    fn got(&self) -> Vec<(Duration, usize, String)> {
        self.events
            .iter()
            .filter_map(|(t, s)| match s {
                Seen::TrackerGot { conn, text } => Some((*t, *conn, text.clone())),
                _ => None,
            })
            .collect()
    }

    fn peer_conns(&self) -> Vec<(usize, String, usize, Option<Duration>, Duration)> {
        self.events
            .iter()
            .filter_map(|(_, s)| match s {
                Seen::PeerConn {
                    peer,
                    request,
                    served,
                    closed_after,
                    opened,
                } => Some((*peer, request.clone(), *served, *closed_after, *opened)),
                _ => None,
            })
            .collect()
    }

    fn head(&self) -> String {
        format!(
            "{} ({} holds {} of {} chunks; peers on ports {})",
            self.label,
            self.name,
            list(self.held.iter().copied()),
            self.total,
            self.peer_ports
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

fn client_layouts() -> Vec<ClientLayout> {
    vec![
        ClientLayout {
            label: "layout 1",
            sizes: vec![4000; 4],
            held: vec![1, 2],
            peers: vec![vec![1, 3], vec![2, 4]],
        },
        ClientLayout {
            label: "layout 2",
            sizes: vec![2500, 7000, 1, 1024, 12000, 300],
            held: vec![2, 5],
            peers: vec![vec![1, 2, 3], vec![4, 5, 6]],
        },
        ClientLayout {
            label: "layout 3",
            sizes: vec![5000; 5],
            held: vec![],
            peers: vec![vec![1, 2, 3], vec![3, 4, 5]],
        },
    ]
}

fn run_client(cmd: &CommandLine, layout: ClientLayout, cx: &Context) -> Result<ClientRun, Abort> {
    let dir = Workdir::new("client")?;
    let chunks = make_chunks(&layout.sizes);
    let total = chunks.len() as u32;
    runner::wait_port_free(SPEC_PORT, cx.timeouts.secs(10.0), &cx.shutdown)
        .map_err(Abort::PortBusy)?;
    let listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], SPEC_PORT)))
        .map_err(|_| {
            Abort::PortBusy(PortBusy {
                port: SPEC_PORT,
                holder: runner::port_holder(SPEC_PORT),
            })
        })?;
    let rec = Recorder::new();
    let linger = cx.timeouts.secs(5.0);
    let mut peers = Vec::new();
    let mut seed = Vec::new();
    for (k, held) in layout.peers.iter().enumerate() {
        let map = held
            .iter()
            .map(|&i| (i, chunks[i as usize - 1].clone()))
            .collect();
        let p = ScriptedPeer::start(k, map, linger, rec.clone())?;
        for &i in held {
            seed.push((
                i,
                Holder {
                    ip: "localhost".into(),
                    port: p.port,
                },
            ));
        }
        peers.push(p);
    }
    seed.sort_by_key(|(i, _)| *i);
    let mut tracker = ScriptedTracker::start(listener, &seed, rec.clone())?;
    let name = "student".to_string();
    let folder = write_folder(&dir.path, &name, &layout.held, &chunks)?;
    let port = runner::free_port()?;
    let full = cmd.with(&[
        "-folder".into(),
        folder.clone().into_os_string(),
        "-transfer_port".into(),
        port.to_string().into(),
        "-name".into(),
        name.clone().into(),
    ] as &[std::ffi::OsString]);
    let mut proc = start_program("P2PClient", &full, &dir.path)?;
    let missing = (total as usize - layout.held.len()) as f64;
    let deadline = Instant::now() + cx.timeouts.secs(15.0 + 9.0 * missing);
    let connect_by = Instant::now() + cx.timeouts.secs(STARTUP_SECS);
    let stall = cx.timeouts.secs(20.0);
    let mut last_change = Instant::now();
    let mut have = present(&folder, &chunks);
    let mut ending = Vec::new();
    loop {
        if cx.shutdown.sleep(runner::POLL) {
            return Err(Abort::Interrupted);
        }
        let now_have = present(&folder, &chunks);
        if now_have != have {
            have = now_have;
            last_change = Instant::now();
        }
        if have.len() as u32 == total {
            break;
        }
        let connected = rec
            .events()
            .iter()
            .any(|(_, s)| matches!(s, Seen::TrackerOpened { .. }));
        if proc.exited().is_some() {
            ending.push("the client ended before it had every chunk".to_string());
            std::thread::sleep(Duration::from_millis(200));
            ending.extend(proc.evidence());
            break;
        }
        if !connected && Instant::now() >= connect_by {
            ending.push(format!(
                "the client never connected to the tracker at 127.0.0.1:{SPEC_PORT} within {:.0} s",
                cx.timeouts.secs(STARTUP_SECS).as_secs_f64()
            ));
            ending.extend(proc.evidence());
            break;
        }
        if last_change.elapsed() >= stall {
            ending.push(format!(
                "stopped: no new chunk for {:.0} s (it had {} of {total})",
                stall.as_secs_f64(),
                have.len()
            ));
            ending.extend(proc.evidence());
            break;
        }
        if Instant::now() >= deadline {
            ending.push(format!(
                "stopped at the run's deadline with {} of {total} chunks",
                have.len()
            ));
            ending.extend(proc.evidence());
            break;
        }
    }
    // Let the last peer connections close (client 8) and the last lines reach logs.log.
    let settle = Instant::now() + linger + Duration::from_secs(1);
    cx.shutdown.sleep(Duration::from_millis(800));
    while Instant::now() < settle && rec.pending_peers() > 0 {
        if cx.shutdown.sleep(runner::POLL) {
            return Err(Abort::Interrupted);
        }
    }
    let complete = have.len() as u32 == total;
    let peer_ports = peers.iter().map(|p| p.port).collect();
    drop(proc);
    tracker.stop();
    drop(peers);
    Ok(ClientRun {
        label: layout.label,
        name,
        port,
        held: layout.held,
        total,
        peer_ports,
        events: rec.events(),
        have,
        complete,
        ending,
        dir,
    })
}

fn client_part(cmd: &CommandLine, cx: &Context) -> Result<Vec<TestResult>, Abort> {
    let mut runs = Vec::new();
    for layout in client_layouts() {
        cx.say(&format!("client {}", layout.label));
        runs.push(run_client(cmd, layout, cx)?);
    }
    Ok(vec![
        client_announces(&runs),
        client_asks(&runs),
        client_keeps_tracker(&runs),
        client_transfers("client 4", &runs[0]),
        client_transfers("client 5", &runs[1]),
        client_transfers("client 6", &runs[2]),
        client_asks_right_chunks(&runs),
        client_disconnects(&runs),
    ])
}

/// Evidence lines for a failed run check: the run's head, the problems, how the run ended.
fn run_evidence(run: &ClientRun, problems: Vec<String>) -> Vec<String> {
    let mut ev = vec![run.head()];
    ev.extend(problems.into_iter().map(|p| format!("  {p}")));
    ev.extend(run.ending.iter().map(|l| format!("  {l}")));
    ev
}

fn judge_runs(
    id: &str,
    runs: &[ClientRun],
    mut check: impl FnMut(&ClientRun) -> Vec<String>,
) -> TestResult {
    let mut ev = Vec::new();
    for run in runs {
        let problems = check(run);
        if !problems.is_empty() {
            ev.extend(run_evidence(run, problems));
        }
    }
    result(id, ev.is_empty(), ev)
}

fn parsed_requests(run: &ClientRun) -> Vec<(Duration, usize, Result<Request, wire::WireError>)> {
    run.got()
        .into_iter()
        .map(|(t, c, text)| (t, c, wire::parse_request(text.as_bytes())))
        .collect()
}

fn seen_by_tracker(run: &ClientRun) -> String {
    let got: Vec<String> = run.got().into_iter().map(|(_, _, t)| t).take(8).collect();
    if got.is_empty() {
        "the tracker received nothing".into()
    } else {
        format!("the tracker received: {}", got.join(" | "))
    }
}

fn client_announces(runs: &[ClientRun]) -> TestResult {
    judge_runs("client 1", runs, |run| {
        let reqs = parsed_requests(run);
        let mut problems = Vec::new();
        for &i in &run.held {
            let on_wire = reqs.iter().any(|(_, _, r)| {
                matches!(r, Ok(Request::LocalChunks { idx, holder })
                    if *idx == i && holder.port == run.port
                        && (holder.ip == "localhost" || holder.ip == "127.0.0.1"))
            });
            if !on_wire {
                problems.push(format!(
                    "no LOCAL_CHUNKS,{i},localhost,{} reached the tracker; {}",
                    run.port,
                    seen_by_tracker(run)
                ));
                continue;
            }
            let want = LogLine::LocalChunks {
                entity: run.name.clone(),
                idx: i,
                port: run.port,
            };
            if let Some(m) = want_log_line(
                &run.dir.path,
                &want,
                &format!("{},LOCAL_CHUNKS,{i},localhost,{}", run.name, run.port),
            ) {
                problems.push(m);
            }
        }
        problems
    })
}

fn client_asks(runs: &[ClientRun]) -> TestResult {
    judge_runs("client 2", runs, |run| {
        let reqs = parsed_requests(run);
        let mut problems = Vec::new();
        for i in (1..=run.total).filter(|i| !run.held.contains(i)) {
            let asked = reqs
                .iter()
                .any(|(_, _, r)| matches!(r, Ok(Request::WhereChunk { idx }) if *idx == i));
            if !asked {
                problems.push(format!(
                    "never sent WHERE_CHUNK,{i}; {}",
                    seen_by_tracker(run)
                ));
                continue;
            }
            let want = LogLine::WhereChunk {
                entity: run.name.clone(),
                idx: i,
            };
            if let Some(m) = want_log_line(
                &run.dir.path,
                &want,
                &format!("{},WHERE_CHUNK,{i}", run.name),
            ) {
                problems.push(m);
            }
        }
        problems
    })
}

fn client_keeps_tracker(runs: &[ClientRun]) -> TestResult {
    let mut any_peer = false;
    let mut r = judge_runs("client 3", runs, |run| {
        let mut problems = Vec::new();
        let opened: Vec<(Duration, usize)> = run
            .events
            .iter()
            .filter_map(|(t, s)| match s {
                Seen::TrackerOpened { conn } => Some((*t, *conn)),
                _ => None,
            })
            .collect();
        let conns = run.peer_conns();
        any_peer |= !conns.is_empty();
        if opened.is_empty() {
            problems.push("never connected to the tracker".into());
            return problems;
        }
        if opened.len() > 1 {
            let times: Vec<String> = opened
                .iter()
                .map(|(t, _)| format!("{:.1} s", t.as_secs_f64()))
                .collect();
            problems.push(format!(
                "opened {} tracker connections (at {}); the spec wants one for the whole run",
                opened.len(),
                times.join(", ")
            ));
        }
        let first = opened[0].1;
        let closed = run.events.iter().find_map(|(t, s)| match s {
            Seen::TrackerClosed { conn } if *conn == first => Some(*t),
            _ => None,
        });
        if let Some(c) = closed {
            if let Some((_, req, ..)) = conns.iter().find(|(_, _, _, _, o)| *o > c) {
                problems.push(format!(
                    "closed its tracker connection at {:.1} s, then asked a peer {req:?}",
                    c.as_secs_f64()
                ));
            }
        }
        problems
    });
    if !any_peer && r.passed {
        r.passed = false;
        r.evidence
            .push("the client made no peer connection in any run".into());
        for run in runs {
            r.evidence.extend(run.ending.iter().cloned());
        }
    }
    r
}

fn client_transfers(id: &str, run: &ClientRun) -> TestResult {
    if run.complete {
        return result(id, true, vec![]);
    }
    let missing: Vec<u32> = (1..=run.total).filter(|i| !run.have.contains(i)).collect();
    result(
        id,
        false,
        run_evidence(
            run,
            vec![format!(
                "missing chunk_{} (byte-identical files wanted in the folder)",
                list(missing).replace(',', ", chunk_")
            )],
        ),
    )
}

fn client_asks_right_chunks(runs: &[ClientRun]) -> TestResult {
    let mut asked_any = false;
    let mut r = judge_runs("client 7", runs, |run| {
        let mut problems = Vec::new();
        let mut fetched: BTreeSet<u32> = BTreeSet::new();
        let mut conns = run.peer_conns();
        conns.sort_by_key(|c| c.4);
        for (peer, request, served, _, opened) in conns {
            asked_any = true;
            let port = run.peer_ports.get(peer).copied().unwrap_or(0);
            let Some(idx) = wire::parse_request_chunk(request.as_bytes()) else {
                problems.push(format!(
                    "peer {port} got {request:?}, not REQUEST_CHUNK,<idx>"
                ));
                continue;
            };
            if run.held.contains(&idx) {
                problems.push(format!(
                    "asked peer {port} for chunk {idx} at {:.1} s, which it had from the start",
                    opened.as_secs_f64()
                ));
            } else if fetched.contains(&idx) {
                problems.push(format!(
                    "asked peer {port} for chunk {idx} at {:.1} s after already receiving it",
                    opened.as_secs_f64()
                ));
            }
            let named = run.events.iter().any(|(t, s)| match s {
                Seen::TrackerSent { text, .. } if *t <= opened => {
                    matches!(wire::parse_reply(text.as_bytes(), idx),
                        Some(Reply::Holders(h)) if h.iter().any(|h| h.port == port))
                }
                _ => false,
            });
            if !named {
                problems.push(format!(
                    "asked peer {port} for chunk {idx}, but the tracker had not named it for that chunk"
                ));
            }
            let want = LogLine::RequestChunk {
                entity: run.name.clone(),
                idx,
                port,
            };
            if let Some(m) = want_log_line(
                &run.dir.path,
                &want,
                &format!("{},REQUEST_CHUNK,{idx},localhost,{port}", run.name),
            ) {
                problems.push(m);
            }
            if served > 0 {
                fetched.insert(idx);
            }
        }
        problems
    });
    if !asked_any && r.passed {
        r.passed = false;
        r.evidence
            .push("the client asked no peer for any chunk in any run".into());
        for run in runs {
            r.evidence.extend(run.ending.iter().cloned());
        }
    }
    r
}

fn client_disconnects(runs: &[ClientRun]) -> TestResult {
    let mut any = false;
    let mut r = judge_runs("client 8", runs, |run| {
        let mut problems = Vec::new();
        for (peer, request, _, closed_after, _) in run.peer_conns() {
            any = true;
            if closed_after.is_none() {
                let port = run.peer_ports.get(peer).copied().unwrap_or(0);
                problems.push(format!(
                    "after peer {port} answered {request:?} and closed its side, the client kept the connection open"
                ));
            }
        }
        problems
    });
    if !any && r.passed {
        r.passed = false;
        r.evidence
            .push("the client made no peer connection in any run".into());
    }
    r
}

// ---------------------------------------------------------------------------------------------
// System part.

struct SystemLayout {
    label: &'static str,
    sizes: Vec<usize>,
    /// Per client: chunks held at start, and whether it joins late.
    clients: Vec<(Vec<u32>, bool)>,
}

struct SystemRun {
    label: &'static str,
    names: Vec<String>,
    ports: Vec<u16>,
    held: Vec<Vec<u32>>,
    total: u32,
    /// (time, client, idx) for every chunk that appeared.
    landings: Vec<(Duration, usize, u32)>,
    done_at: Vec<Option<Duration>>,
    elapsed: Duration,
    /// Clients that ended with an error before the run ended.
    crashed: Vec<usize>,
    ending: Vec<String>,
    log: Vec<LogLine>,
}

impl SystemRun {
    fn all_done(&self) -> bool {
        self.done_at.iter().all(Option::is_some)
    }

    fn state(&self) -> String {
        self.names
            .iter()
            .zip(&self.done_at)
            .enumerate()
            .map(|(k, (n, d))| {
                let have =
                    self.held[k].len() + self.landings.iter().filter(|(_, c, _)| *c == k).count();
                match d {
                    Some(t) => format!("{n} done at {:.1} s", t.as_secs_f64()),
                    None => format!("{n} has {have}/{}", self.total),
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn evidence(&self, what: &str) -> Vec<String> {
        let mut ev = vec![
            format!("{} — {what}", self.label),
            format!("  {}", self.state()),
        ];
        ev.extend(self.ending.iter().map(|l| format!("  {l}")));
        ev
    }
}

/// Stop when no chunk lands anywhere for this long (a hung run).
const STALL_SECS: f64 = 20.0;

fn system_bound(cx: &Context, total: u32) -> Duration {
    cx.timeouts.secs(15.0 + 9.0 * total as f64)
}

fn run_system(
    tracker_cmd: &CommandLine,
    client_cmd: &CommandLine,
    layout: SystemLayout,
    cx: &Context,
) -> Result<SystemRun, Abort> {
    let dir = Workdir::new("system")?;
    let chunks = make_chunks(&layout.sizes);
    let total = chunks.len() as u32;
    let n = layout.clients.len();
    let names: Vec<String> = (1..=n).map(|k| format!("c{k}")).collect();
    let held: Vec<Vec<u32>> = layout.clients.iter().map(|(h, _)| h.clone()).collect();
    let mut run = SystemRun {
        label: layout.label,
        names: names.clone(),
        ports: vec![],
        held: held.clone(),
        total,
        landings: vec![],
        done_at: vec![None; n],
        elapsed: Duration::ZERO,
        crashed: vec![],
        ending: vec![],
        log: vec![],
    };
    let mut folders = Vec::new();
    for k in 0..n {
        folders.push(write_folder(&dir.path, &names[k], &held[k], &chunks)?);
        run.ports.push(runner::free_port()?);
    }
    let mut tracker = match start_tracker(tracker_cmd, &dir.path, cx)? {
        Ok(t) => t,
        Err(ev) => {
            run.ending = ev;
            return Ok(run);
        }
    };
    let start = Instant::now();
    let mut have: Vec<BTreeSet<u32>> = held.iter().map(|h| h.iter().copied().collect()).collect();
    let mut procs: Vec<Option<Proc>> = (0..n).map(|_| None).collect();
    let spawn = |k: usize| -> Result<Proc, Abort> {
        let full = client_cmd.with(&[
            "-folder".into(),
            folders[k].clone().into_os_string(),
            "-transfer_port".into(),
            run.ports[k].to_string().into(),
            "-name".into(),
            names[k].clone().into(),
        ] as &[std::ffi::OsString]);
        start_program(&format!("P2PClient {}", names[k]), &full, &dir.path)
    };
    for (k, slot) in procs.iter_mut().enumerate() {
        if !layout.clients[k].1 {
            *slot = Some(spawn(k)?);
        }
    }
    // Late joiners wait until the early ones' chunks are all known to the tracker (from its log
    // or theirs), or a while.
    if layout.clients.iter().any(|(_, late)| *late) {
        let early_ports: Vec<(u32, u16)> = (0..n)
            .filter(|k| !layout.clients[*k].1)
            .flat_map(|k| held[k].iter().map(move |&i| (i, k)))
            .map(|(i, k)| (i, run.ports[k]))
            .collect();
        let announced = |dir: &Path| {
            let lines = log_lines(dir);
            early_ports.iter().all(|(i, p)| {
                lines.iter().any(|l| matches!(l, LogLine::LocalChunks { idx, port, .. } if idx == i && port == p))
            })
        };
        runner::wait_until(
            cx.timeouts.secs(5.0 + 2.0 * early_ports.len() as f64),
            &cx.shutdown,
            || announced(&dir.path),
        );
        for (k, slot) in procs.iter_mut().enumerate() {
            if layout.clients[k].1 {
                *slot = Some(spawn(k)?);
            }
        }
    }
    let bound = system_bound(cx, total);
    let stall = cx.timeouts.secs(STALL_SECS);
    let mut last_change = Instant::now();
    loop {
        if cx.shutdown.sleep(runner::POLL) {
            return Err(Abort::Interrupted);
        }
        let t = start.elapsed();
        for k in 0..n {
            let now = present(&folders[k], &chunks);
            for &i in now.difference(&have[k]) {
                run.landings.push((t, k, i));
                last_change = Instant::now();
            }
            have[k] = now;
            if have[k].len() as u32 == total && run.done_at[k].is_none() {
                run.done_at[k] = Some(t);
            }
        }
        if run.all_done() {
            break;
        }
        if tracker.exited().is_some() {
            run.ending.push("the tracker ended during the run".into());
            run.ending.extend(tracker.evidence());
            break;
        }
        let mut dead = false;
        for (k, p) in procs.iter_mut().enumerate() {
            if let Some(p) = p {
                if let Some(s) = p.exited() {
                    if run.done_at[k].is_none() && !run.crashed.contains(&k) {
                        run.crashed.push(k);
                        run.ending.push(format!(
                            "{} ended before it had every chunk ({})",
                            names[k],
                            runner::describe_status(s)
                        ));
                        std::thread::sleep(Duration::from_millis(200));
                        run.ending.extend(p.evidence());
                        dead = true;
                    }
                }
            }
        }
        if dead && run.crashed.len() == n {
            break;
        }
        if last_change.elapsed() >= stall {
            run.ending.push(format!(
                "stopped: no chunk landed anywhere for {:.0} s",
                stall.as_secs_f64()
            ));
            break;
        }
        if t >= bound {
            run.ending.push(format!(
                "stopped at the bound of {:.0} s",
                bound.as_secs_f64()
            ));
            break;
        }
    }
    run.elapsed = start.elapsed();
    cx.shutdown.sleep(Duration::from_millis(500));
    // Clients first, so the tracker's port is not left in TIME_WAIT for the next test.
    for p in procs.iter_mut().flatten() {
        p.kill();
    }
    if !run.all_done() && run.crashed.is_empty() {
        for p in procs.iter_mut().flatten() {
            let lines = p.stderr.last_lines(3);
            if !lines.is_empty() {
                run.ending.push(format!("{} last stderr lines:", p.label));
                run.ending
                    .extend(lines.into_iter().map(|l| format!("  | {l}")));
            }
        }
    }
    drop(procs);
    drop(tracker);
    run.log = log_lines(&dir.path);
    Ok(run)
}

fn system_part(
    tracker_cmd: &CommandLine,
    client_cmd: &CommandLine,
    cx: &Context,
) -> Result<Vec<TestResult>, Abort> {
    let mut out = Vec::new();
    cx.say("system: spec layout c1{1,2} c2{3,4} c3{5,1}");
    let cyclic = run_system(
        tracker_cmd,
        client_cmd,
        SystemLayout {
            label: "spec layout c1{1,2} c2{3,4} c3{5,1}",
            sizes: vec![6000; 5],
            clients: vec![
                (vec![1, 2], false),
                (vec![3, 4], false),
                (vec![5, 1], false),
            ],
        },
        cx,
    )?;
    out.push(system_invoked(&cyclic));
    out.push(if cyclic.all_done() {
        result(
            "system 2",
            true,
            vec![format!("all done in {:.1} s", cyclic.elapsed.as_secs_f64())],
        )
    } else {
        result(
            "system 2",
            false,
            cyclic.evidence("not every client got every chunk"),
        )
    });
    cx.say("system: small chunks, c1 seeds 6 chunks to c2..c4");
    let small = run_system(
        tracker_cmd,
        client_cmd,
        SystemLayout {
            label: "small chunks (1 B to 1 KB), c1 holds all 6, c2..c4 none",
            sizes: vec![1, 10, 100, 1000, 1024, 513],
            clients: vec![
                ((1..=6).collect(), false),
                (vec![], false),
                (vec![], false),
                (vec![], false),
            ],
        },
        cx,
    )?;
    out.push(system_time(&small, cx));
    out.push(system_concurrent(&cyclic));
    out.push(if small.all_done() {
        result("system 5", true, vec![])
    } else {
        result(
            "system 5",
            false,
            small.evidence("not every client got every chunk"),
        )
    });
    cx.say("system: 3 MB chunks");
    let large = run_system(
        tracker_cmd,
        client_cmd,
        SystemLayout {
            label: "large chunks (3 x 3 MB), c1 holds all, c2 none",
            sizes: vec![3 * 1024 * 1024; 3],
            clients: vec![((1..=3).collect(), false), (vec![], false)],
        },
        cx,
    )?;
    out.push(if large.all_done() {
        result("system 6", true, vec![])
    } else {
        result(
            "system 6",
            false,
            large.evidence("not every client got every chunk"),
        )
    });
    cx.say("system: late joiners");
    let late = run_system(
        tracker_cmd,
        client_cmd,
        SystemLayout {
            label: "c1 holds all 4 and joins first; c2, c3 (none) join after its announcements",
            sizes: vec![5000; 4],
            clients: vec![((1..=4).collect(), false), (vec![], true), (vec![], true)],
        },
        cx,
    )?;
    out.push(if late.all_done() {
        result("system 7", true, vec![])
    } else {
        result(
            "system 7",
            false,
            late.evidence("not every client got every chunk"),
        )
    });
    Ok(out)
}

fn system_invoked(run: &SystemRun) -> TestResult {
    let mut problems = Vec::new();
    for (k, name) in run.names.iter().enumerate() {
        if run.crashed.contains(&k) {
            problems.push(format!("{name} ended with an error"));
            continue;
        }
        let port = run.ports.get(k).copied().unwrap_or(0);
        let announced = run
            .log
            .iter()
            .any(|l| matches!(l, LogLine::LocalChunks { port: p, .. } if *p == port));
        let received = run.landings.iter().any(|(_, c, _)| *c == k);
        if !announced && !received {
            problems.push(format!(
                "{name} (port {port}) neither announced a chunk (no LOCAL_CHUNKS line naming port {port} in logs.log) nor received one"
            ));
        }
    }
    if problems.is_empty() {
        return result("system 1", true, vec![]);
    }
    let mut ev = run.evidence("three clients started together");
    ev.extend(problems.into_iter().map(|p| format!("  {p}")));
    result("system 1", false, ev)
}

fn system_time(run: &SystemRun, cx: &Context) -> TestResult {
    let bound = system_bound(cx, run.total);
    let how = format!(
        "bound {:.0} s = (15 s + 9 s x {} chunks) x timeout-scale {}; a run with no new chunk for {:.0} s counts as hung",
        bound.as_secs_f64(),
        run.total,
        cx.timeouts.scale,
        cx.timeouts.secs(STALL_SECS).as_secs_f64()
    );
    if run.all_done() && run.elapsed <= bound {
        return result(
            "system 3",
            true,
            vec![format!(
                "{}: all done in {:.1} s; {how}",
                run.label,
                run.elapsed.as_secs_f64()
            )],
        );
    }
    let mut ev = run.evidence("clients did not all finish within the bound");
    ev.push(format!("  {how}"));
    result("system 3", false, ev)
}

fn system_concurrent(run: &SystemRun) -> TestResult {
    for &(t, y, i) in &run.landings {
        let mut sources: Vec<usize> = (0..run.names.len())
            .filter(|&k| k != y)
            .filter(|&k| {
                run.held[k].contains(&i)
                    || run
                        .landings
                        .iter()
                        .any(|&(t2, c, j)| c == k && j == i && t2 < t)
            })
            .collect();
        sources.dedup();
        let all_busy = !sources.is_empty()
            && sources
                .iter()
                .all(|&k| run.done_at[k].is_none_or(|d| d > t));
        if all_busy {
            let names: Vec<&str> = sources.iter().map(|&k| run.names[k].as_str()).collect();
            return result(
                "system 4",
                true,
                vec![format!(
                    "{} received chunk {i} at {:.1} s while every client holding it ({}) was still downloading",
                    run.names[y],
                    t.as_secs_f64(),
                    names.join(", ")
                )],
            );
        }
    }
    result(
        "system 4",
        false,
        run.evidence("no chunk moved from a client that was still downloading"),
    )
}
