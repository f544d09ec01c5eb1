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

mod client;
pub mod logs;
pub mod scripted;
mod system;
mod tracker;

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
            report.tests.extend(tracker::part(t, cx)?);
        }
    }
    if part.client() {
        if let Some(c) = &subject.client {
            report.notes.push(format!("client: {c}"));
            report.tests.extend(client::part(c, cx)?);
        }
    }
    if part.system() {
        if let (Some(t), Some(c)) = (&subject.tracker, &subject.client) {
            report.tests.extend(system::part(t, c, cx)?);
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
