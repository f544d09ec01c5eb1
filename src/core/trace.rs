//! `--trace FILE`: one JSON line per protocol message and per file transfer, from any system, so
//! `peershare diagram` can draw who sent what to whom, on which thread, in which order.
//!
//! Why it looks like this:
//! - **Off costs nothing.** Until [`start`] is called every function here is one relaxed atomic
//!   load and a return; callers that would build an argument (format a summary, encode a value)
//!   guard with `if trace::enabled()` first.
//! - **One writer per process, one `write(2)` per line, `O_APPEND`.** Several processes (a tracker
//!   and its clients started in one folder, or a grader's children) may share one trace file the
//!   way they share `logs.log`: with `O_APPEND` the kernel appends each `write` call whole, so lines
//!   never tear or merge, provided each line goes out in one call (see `core::event_log`). Lines
//!   are built in full first and never written through a buffer.
//! - **Roles, not just processes.** The demo and the tests run a tracker and several clients in one
//!   process, so the `"process"` field is the label of the *thread's role* ([`set_thread_role`];
//!   the role runtime sets it in every thread it starts) and falls back to the process label given
//!   to [`start`].
//! - **Times are microseconds since the Unix epoch** (the wall clock, not a monotonic one) so lines
//!   from different processes sort together.
//!
//! # Schema
//! One JSON object per line, keys in this order, a key left out where it does not apply:
//!
//! | key       | value                                                                          |
//! |-----------|--------------------------------------------------------------------------------|
//! | `t_us`    | integer, µs since the Unix epoch                                               |
//! | `process` | string, the thread's role label, else the process label                        |
//! | `thread`  | string, the thread's name (`udp-listener`, `upload-3`); `unnamed` if none      |
//! | `kind`    | `"message"`, `"transfer_begin"`, `"transfer_end"` or `"failure"`               |
//! | `dir`     | `"send"` or `"recv"` (messages only)                                           |
//! | `proto`   | `"tcp"` or `"udp"`                                                             |
//! | `local`   | `"ip:port"` of this end, when known                                            |
//! | `remote`  | `"ip:port"` of the other end, when known                                       |
//! | `msg`     | a message: the text as sent (string), or the decoded value (any JSON value) for |
//! |           | pickle and JSON protocols, or a summary string; a transfer or failure: what    |
//! | `size`    | integer: bytes on the wire (message), expected bytes (`transfer_begin`, when   |
//! |           | known), bytes moved (`transfer_end`); absent for failures                      |
//! | `error`   | string, why a transfer ended early (`transfer_end` only, when it failed)       |
//!
//! Transfers are recorded where they happen, preferably on the side that receives the data (it
//! knows when the data is complete); the diagram infers the direction from the request before it.
//! Never put raw file bytes in a trace: use [`Body::Summary`] (`chunk 7: 1048576 bytes`).

use crate::core::pyjson;
use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// Nesting allowed in a [`Body::Json`] value; deeper values are written as a string instead.
const MAX_JSON_DEPTH: usize = 64;

static ENABLED: AtomicBool = AtomicBool::new(false);
static SINK: OnceLock<Tracer> = OnceLock::new();

thread_local! {
    static ROLE: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
}

/// Starts tracing for this process into `path` (created if missing, appended to). Call once per
/// process; a later call keeps the first file and only replaces the process label.
pub fn start(path: &Path, process: &str) -> io::Result<()> {
    if let Some(sink) = SINK.get() {
        sink.set_process(process);
        return Ok(());
    }
    let tracer = Tracer::open(path, process)?;
    if let Err(tracer) = SINK.set(tracer) {
        // Another thread started tracing at the same moment: its file wins, our label stays.
        if let Some(sink) = SINK.get() {
            sink.set_process(&tracer.process());
        }
    }
    ENABLED.store(true, Ordering::Release);
    Ok(())
}

/// `--trace FILE` for a command line: starts tracing when a path was given, or says in one line
/// why it cannot (exit status 1), the same words in every role of every system.
pub fn start_from_cli(path: Option<&Path>, label: &str) -> Result<(), std::process::ExitCode> {
    let Some(path) = path else { return Ok(()) };
    start(path, label).map_err(|e| {
        eprintln!("error: cannot open the trace file {}: {e}", path.display());
        std::process::ExitCode::from(1)
    })
}

/// Whether [`start`] has been called: one relaxed atomic load, cheap enough for any hot path.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Labels the lines this thread writes (the `"process"` field) with `role`, e.g.
/// `p2ptracker-client-A`: several roles share one process in the demo and in tests.
pub fn set_thread_role(role: &str) {
    ROLE.with(|r| *r.borrow_mut() = Some(Arc::from(role)));
}

/// This thread's role label, so code that starts helper threads can pass it on.
pub fn role() -> Option<Arc<str>> {
    ROLE.with(|r| r.borrow().clone())
}

/// Transport of a traced message or transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

/// Whether this process sent or received a traced message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Send,
    Recv,
}

/// The message as the trace shows it.
#[derive(Debug, Clone, Copy)]
pub enum Body<'a> {
    /// A text protocol's message as sent.
    Text(&'a str),
    /// Bytes of a text-ish protocol, shown as lossy UTF-8 text.
    Bytes(&'a [u8]),
    /// An already-encoded JSON value (a decoded pickle or a JSON message), written as that value.
    /// Text that is not one JSON value is written as a string instead, so the line stays valid.
    Json(&'a str),
    /// A summary such as `chunk 7: 1048576 bytes`; never raw file bytes.
    Summary(&'a str),
}

/// Records one protocol message sent or received; `size` is its length on the wire.
pub fn message(
    dir: Direction,
    proto: Proto,
    local: Option<SocketAddr>,
    remote: Option<SocketAddr>,
    body: Body<'_>,
    size: usize,
) {
    if !enabled() {
        return;
    }
    let record = Record {
        kind: Kind::Message(dir),
        proto,
        local,
        remote,
        msg: body,
        size: Some(size as u64),
        error: None,
    };
    emit(&record);
}

/// Records the start of a file transfer; `size` is the expected length when known.
pub fn transfer_begin(
    proto: Proto,
    local: Option<SocketAddr>,
    remote: Option<SocketAddr>,
    what: &str,
    size: Option<u64>,
) {
    if !enabled() {
        return;
    }
    let record = Record {
        kind: Kind::TransferBegin,
        proto,
        local,
        remote,
        msg: Body::Summary(what),
        size,
        error: None,
    };
    emit(&record);
}

/// Records the end of a file transfer: `bytes` moved, and `error` when it ended early.
pub fn transfer_end(
    proto: Proto,
    local: Option<SocketAddr>,
    remote: Option<SocketAddr>,
    what: &str,
    bytes: u64,
    error: Option<&str>,
) {
    if !enabled() {
        return;
    }
    let record = Record {
        kind: Kind::TransferEnd,
        proto,
        local,
        remote,
        msg: Body::Summary(what),
        size: Some(bytes),
        error,
    };
    emit(&record);
}

/// Records a timeout, refusal or re-request; the diagram marks these.
pub fn failure(proto: Proto, local: Option<SocketAddr>, remote: Option<SocketAddr>, what: &str) {
    if !enabled() {
        return;
    }
    let record = Record {
        kind: Kind::Failure,
        proto,
        local,
        remote,
        msg: Body::Summary(what),
        size: None,
        error: None,
    };
    emit(&record);
}

fn emit(record: &Record<'_>) {
    if let Some(sink) = SINK.get() {
        let role = role();
        sink.write(record, role.as_deref(), now_us());
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Message(Direction),
    TransferBegin,
    TransferEnd,
    Failure,
}

/// Everything one line says except the time, the labels and the thread.
struct Record<'a> {
    kind: Kind,
    proto: Proto,
    local: Option<SocketAddr>,
    remote: Option<SocketAddr>,
    msg: Body<'a>,
    size: Option<u64>,
    error: Option<&'a str>,
}

/// The open trace file and this process's label. The process-wide one lives in `SINK`; tests make
/// their own, each with its own descriptor, like separate processes.
struct Tracer {
    file: File,
    process: RwLock<Arc<str>>,
}

impl Tracer {
    fn open(path: &Path, process: &str) -> io::Result<Tracer> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Tracer {
            file,
            process: RwLock::new(Arc::from(process)),
        })
    }

    fn set_process(&self, process: &str) {
        if let Ok(mut label) = self.process.write() {
            *label = Arc::from(process);
        }
    }

    fn process(&self) -> Arc<str> {
        match self.process.read() {
            Ok(label) => label.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Writes `record` as one line in one `write(2)`. A failure is logged and otherwise ignored:
    /// losing a trace line must not stop a transfer.
    fn write(&self, record: &Record<'_>, role: Option<&str>, t_us: u64) {
        let process = self.process();
        let thread = std::thread::current();
        let line = encode_line(
            record,
            role.unwrap_or(&process),
            thread.name().unwrap_or("unnamed"),
            t_us,
        );
        if let Err(e) = (&self.file).write_all(line.as_bytes()) {
            log::warn!("could not append to the trace file: {e}");
        }
    }
}

/// One trace line, newline included.
fn encode_line(record: &Record<'_>, process: &str, thread: &str, t_us: u64) -> String {
    let mut out = String::with_capacity(160);
    out.push_str("{\"t_us\":");
    out.push_str(&t_us.to_string());
    out.push_str(",\"process\":");
    pyjson::push_string(&mut out, process);
    out.push_str(",\"thread\":");
    pyjson::push_string(&mut out, thread);
    let (kind, dir) = match record.kind {
        Kind::Message(Direction::Send) => ("message", Some("send")),
        Kind::Message(Direction::Recv) => ("message", Some("recv")),
        Kind::TransferBegin => ("transfer_begin", None),
        Kind::TransferEnd => ("transfer_end", None),
        Kind::Failure => ("failure", None),
    };
    out.push_str(",\"kind\":\"");
    out.push_str(kind);
    out.push('"');
    if let Some(dir) = dir {
        out.push_str(",\"dir\":\"");
        out.push_str(dir);
        out.push('"');
    }
    out.push_str(match record.proto {
        Proto::Tcp => ",\"proto\":\"tcp\"",
        Proto::Udp => ",\"proto\":\"udp\"",
    });
    for (key, addr) in [("local", record.local), ("remote", record.remote)] {
        if let Some(addr) = addr {
            out.push_str(",\"");
            out.push_str(key);
            out.push_str("\":");
            pyjson::push_string(&mut out, &addr.to_string());
        }
    }
    out.push_str(",\"msg\":");
    match record.msg {
        Body::Text(s) | Body::Summary(s) => pyjson::push_string(&mut out, s),
        Body::Bytes(b) => pyjson::push_string(&mut out, &String::from_utf8_lossy(b)),
        Body::Json(v) => {
            if pyjson::parse(v.as_bytes(), MAX_JSON_DEPTH).is_ok() {
                out.push_str(v.trim());
            } else {
                pyjson::push_string(&mut out, v);
            }
        }
    }
    if let Some(size) = record.size {
        out.push_str(",\"size\":");
        out.push_str(&size.to_string());
    }
    if let Some(error) = record.error {
        out.push_str(",\"error\":");
        pyjson::push_string(&mut out, error);
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::pyjson::Json;

    fn addr(port: u16) -> Option<SocketAddr> {
        Some(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    fn parse_lines(text: &str) -> Vec<Json> {
        text.lines()
            .map(|l| pyjson::parse(l.as_bytes(), 64).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    fn keys(v: &Json) -> Vec<&str> {
        match v {
            Json::Object(pairs) => pairs.iter().map(|(k, _)| k.as_str()).collect(),
            other => panic!("not an object: {other:?}"),
        }
    }

    fn string<'a>(v: &'a Json, key: &str) -> &'a str {
        match v.get(key) {
            Some(Json::String(s)) => s,
            other => panic!("{key} is {other:?}"),
        }
    }

    fn record<'a>(
        kind: Kind,
        msg: Body<'a>,
        size: Option<u64>,
        error: Option<&'a str>,
    ) -> Record<'a> {
        Record {
            kind,
            proto: Proto::Tcp,
            local: addr(5000),
            remote: addr(40112),
            msg,
            size,
            error,
        }
    }

    #[test]
    fn every_kind_of_line_parses_and_carries_its_fields_in_schema_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace.jsonl");
        let tracer = Tracer::open(&path, "p2ptracker-tracker").unwrap();
        let records = [
            record(
                Kind::Message(Direction::Recv),
                Body::Text("WHERE_CHUNK,3"),
                Some(13),
                None,
            ),
            record(
                Kind::Message(Direction::Send),
                Body::Bytes(b"ok\xff"),
                Some(3),
                None,
            ),
            record(
                Kind::Message(Direction::Send),
                Body::Json("{\"a\": [1, 2]}"),
                Some(14),
                None,
            ),
            record(
                Kind::TransferBegin,
                Body::Summary("chunk 7: 1048576 bytes"),
                Some(1048576),
                None,
            ),
            record(
                Kind::TransferEnd,
                Body::Summary("chunk 7"),
                Some(10),
                Some("connection reset"),
            ),
            record(
                Kind::Failure,
                Body::Summary("timeout: no reply"),
                None,
                None,
            ),
        ];
        for (i, r) in records.iter().enumerate() {
            tracer.write(
                r,
                if i == 0 { Some("role-A") } else { None },
                1000 + i as u64,
            );
        }
        let lines = parse_lines(&std::fs::read_to_string(&path).unwrap());
        assert_eq!(lines.len(), records.len());
        let common = ["t_us", "process", "thread", "kind"];
        let tail = ["proto", "local", "remote", "msg"];
        let message: Vec<&str> = [&common[..], &["dir"], &tail[..], &["size"]].concat();
        assert_eq!(keys(&lines[0]), message);
        assert_eq!(keys(&lines[1]), message);
        assert_eq!(keys(&lines[2]), message);
        assert_eq!(
            keys(&lines[3]),
            [&common[..], &tail[..], &["size"]].concat()
        );
        assert_eq!(
            keys(&lines[4]),
            [&common[..], &tail[..], &["size", "error"]].concat()
        );
        assert_eq!(keys(&lines[5]), [&common[..], &tail[..]].concat());

        assert_eq!(lines[0].get("t_us").and_then(Json::as_i128), Some(1000));
        assert_eq!(string(&lines[0], "process"), "role-A");
        assert_eq!(string(&lines[1], "process"), "p2ptracker-tracker");
        let this_thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_string();
        assert_eq!(string(&lines[0], "thread"), this_thread);
        assert_eq!(string(&lines[0], "kind"), "message");
        assert_eq!(string(&lines[0], "dir"), "recv");
        assert_eq!(string(&lines[1], "dir"), "send");
        assert_eq!(string(&lines[0], "proto"), "tcp");
        assert_eq!(string(&lines[0], "local"), "127.0.0.1:5000");
        assert_eq!(string(&lines[0], "remote"), "127.0.0.1:40112");
        assert_eq!(string(&lines[0], "msg"), "WHERE_CHUNK,3");
        assert_eq!(string(&lines[1], "msg"), "ok\u{fffd}");
        let json = Json::Object(vec![(
            "a".into(),
            Json::Array(vec![Json::Number("1".into()), Json::Number("2".into())]),
        )]);
        assert_eq!(lines[2].get("msg"), Some(&json));
        assert_eq!(string(&lines[3], "kind"), "transfer_begin");
        assert_eq!(lines[3].get("size").and_then(Json::as_i128), Some(1048576));
        assert_eq!(string(&lines[4], "kind"), "transfer_end");
        assert_eq!(string(&lines[4], "error"), "connection reset");
        assert_eq!(string(&lines[5], "kind"), "failure");
        assert_eq!(string(&lines[5], "msg"), "timeout: no reply");
    }

    #[test]
    fn a_json_body_that_is_not_json_is_written_as_a_string() {
        let r = record(
            Kind::Message(Direction::Send),
            Body::Json("{\"a\": "),
            Some(6),
            None,
        );
        let line = encode_line(&r, "p", "t", 1);
        let v = pyjson::parse(line.trim_end().as_bytes(), 8).unwrap();
        assert_eq!(string(&v, "msg"), "{\"a\": ");
    }

    #[test]
    fn awkward_labels_and_messages_are_escaped_into_one_line() {
        let r = record(
            Kind::Message(Direction::Send),
            Body::Text("a\nb\"c\\ é"),
            Some(7),
            None,
        );
        let line = encode_line(&r, "proc\n\"x\"", "thr\t", 1);
        assert_eq!(line.matches('\n').count(), 1);
        let v = pyjson::parse(line.trim_end().as_bytes(), 8).unwrap();
        assert_eq!(string(&v, "msg"), "a\nb\"c\\ é");
        assert_eq!(string(&v, "process"), "proc\n\"x\"");
        assert_eq!(string(&v, "thread"), "thr\t");
    }

    #[test]
    fn lines_from_many_writers_on_one_file_never_tear() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace.jsonl");
        let long = "x".repeat(3000);
        let handles: Vec<_> = (0..8)
            .map(|t| {
                // Each writer has its own descriptor, as separate processes would.
                let tracer = Tracer::open(&path, &format!("p{t}")).unwrap();
                let long = long.clone();
                std::thread::Builder::new()
                    .name(format!("writer-{t}"))
                    .spawn(move || {
                        for i in 0..300u64 {
                            let r = record(
                                Kind::Message(Direction::Send),
                                Body::Text(&long),
                                Some(i),
                                None,
                            );
                            tracer.write(&r, None, i);
                        }
                    })
                    .unwrap()
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let lines = parse_lines(&std::fs::read_to_string(&path).unwrap());
        assert_eq!(lines.len(), 8 * 300);
        for v in &lines {
            assert_eq!(string(v, "msg").len(), 3000);
            let p = string(v, "process");
            assert_eq!(string(v, "thread"), format!("writer-{}", &p[1..]));
        }
    }

    /// Runs this test binary again as a child running only `child_process_writer`, in `mode`.
    fn child(path: &Path, mode: &str) -> std::process::Child {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "core::trace::tests::child_process_writer",
                "--exact",
                "--ignored",
            ])
            .args(["--test-threads", "1", "--quiet"])
            .env("PEERSHARE_TRACE_CHILD", mode)
            .env("PEERSHARE_TRACE_CHILD_FILE", path)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }

    const CHILD_LINES: usize = 2000;

    /// Not a test on its own: the body of the child processes the tests below start. It uses the
    /// process-wide tracer, which only a fresh process can start or leave off.
    #[test]
    #[ignore = "run as a child process by the two-process tests"]
    fn child_process_writer() {
        let (Ok(mode), Ok(path)) = (
            std::env::var("PEERSHARE_TRACE_CHILD"),
            std::env::var("PEERSHARE_TRACE_CHILD_FILE"),
        ) else {
            return;
        };
        let path = Path::new(&path);
        if mode == "off" {
            assert!(!enabled());
            message(
                Direction::Send,
                Proto::Udp,
                addr(1),
                addr(2),
                Body::Text("x"),
                1,
            );
            transfer_begin(Proto::Tcp, addr(1), addr(2), "chunk 1", Some(5));
            transfer_end(Proto::Tcp, addr(1), addr(2), "chunk 1", 5, None);
            failure(Proto::Tcp, addr(1), addr(2), "timeout");
            assert!(!path.exists(), "tracing off created {}", path.display());
            // Proof for the parent that this body ran (and did not just get filtered out).
            std::fs::write(path.with_extension("ran"), b"").unwrap();
            return;
        }
        start(path, "first-label").unwrap();
        start(Path::new("/nonexistent/dir/ignored"), &mode).unwrap();
        assert!(enabled());
        let role_thread = std::thread::Builder::new()
            .name("with-role".into())
            .spawn(move || {
                set_thread_role("role-B");
                assert_eq!(role().as_deref(), Some("role-B"));
                for i in 0..CHILD_LINES / 2 {
                    let body = format!("LOCAL_CHUNKS,{i},127.0.0.1,{}", "9".repeat(i % 700));
                    message(
                        Direction::Send,
                        Proto::Tcp,
                        addr(1),
                        addr(2),
                        Body::Text(&body),
                        i,
                    );
                }
            })
            .unwrap();
        let plain_thread = std::thread::Builder::new()
            .name("no-role".into())
            .spawn(move || {
                for i in 0..CHILD_LINES / 2 {
                    let body = format!("WHERE_CHUNK,{i}{}", " ".repeat(i % 900));
                    message(
                        Direction::Recv,
                        Proto::Tcp,
                        addr(2),
                        addr(1),
                        Body::Text(&body),
                        i,
                    );
                }
            })
            .unwrap();
        role_thread.join().unwrap();
        plain_thread.join().unwrap();
    }

    #[test]
    fn two_processes_appending_to_one_trace_file_never_tear_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace.jsonl");
        let mut children = [child(&path, "proc-1"), child(&path, "proc-2")];
        for c in &mut children {
            assert!(c.wait().unwrap().success());
        }
        let lines = parse_lines(&std::fs::read_to_string(&path).unwrap());
        assert_eq!(lines.len(), 2 * CHILD_LINES);
        let count = |process: &str, thread: &str| {
            lines
                .iter()
                .filter(|v| string(v, "process") == process && string(v, "thread") == thread)
                .count()
        };
        // The second start() kept the file and relabelled the process; role-B came from the role.
        assert_eq!(count("proc-1", "no-role"), CHILD_LINES / 2);
        assert_eq!(count("proc-2", "no-role"), CHILD_LINES / 2);
        assert_eq!(count("role-B", "with-role"), CHILD_LINES);
    }

    #[test]
    fn tracing_off_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace.jsonl");
        assert!(child(&path, "off").wait().unwrap().success());
        assert!(path.with_extension("ran").exists(), "the child did not run");
        assert!(!path.exists());
    }
}
