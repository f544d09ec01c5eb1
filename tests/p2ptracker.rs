//! P2PTracker++ integration tests (spec `docs/specs/p2ptracker.md`, §8 checklist).
//!
//! Three kinds of test:
//! - the real tracker process driven with raw TCP bytes (messages have no terminator, replies are
//!   read with one read and a timeout);
//! - a real client process against a scripted fake tracker and fake peers living in the test;
//! - swarms of real processes (tracker and clients in one temp cwd, `--pace-ms 0`).

mod support;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use support::{free_tcp_port, pseudo_random, wait_for, Proc};

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/// The port in the first `listening on 127.0.0.1:<port>` line of a process's stderr.
fn listen_port(p: &Proc) -> u16 {
    let needle = "listening on 127.0.0.1:";
    let text = p.wait_stderr(needle, 20);
    let rest = &text[text.find(needle).unwrap() + needle.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap()
}

fn start_tracker(cwd: &Path) -> (Proc, u16) {
    let p = Proc::start(cwd, &["p2ptracker", "tracker", "--port", "0"]);
    let port = listen_port(&p);
    (p, port)
}

/// Starts a client; returns it with its transfer port.
fn start_client(
    cwd: &Path,
    folder: &Path,
    name: &str,
    tracker: u16,
    pace_ms: u64,
    extra: &[&str],
) -> (Proc, u16) {
    let folder = folder.to_str().unwrap().to_string();
    let tracker = format!("127.0.0.1:{tracker}");
    let pace = pace_ms.to_string();
    let mut args = vec![
        "p2ptracker",
        "client",
        "-folder",
        &folder,
        "-transfer_port",
        "0",
        "-name",
        name,
        "--tracker",
        &tracker,
        "--pace-ms",
        &pace,
    ];
    args.extend_from_slice(extra);
    let p = Proc::start(cwd, &args);
    let port = listen_port(&p);
    (p, port)
}

/// Deterministic content of chunk `idx`.
fn chunk_data(idx: u32, size: usize) -> Vec<u8> {
    pseudo_random(size, u64::from(idx) * 7919 + 13)
}

fn default_size(idx: u32) -> usize {
    16 * 1024 + idx as usize * 37
}

/// `<root>/<name>/` with `chunk_<i>` for every held chunk and a `local_chunks.txt` naming them.
fn make_folder(
    root: &Path,
    name: &str,
    total: u32,
    held: &[u32],
    size: fn(u32) -> usize,
) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let mut list = String::new();
    for &i in held {
        std::fs::write(dir.join(format!("chunk_{i}")), chunk_data(i, size(i))).unwrap();
        list.push_str(&format!("{i},chunk_{i}\n"));
    }
    list.push_str(&format!("{total},LASTCHUNK\n"));
    std::fs::write(dir.join("local_chunks.txt"), list).unwrap();
    dir
}

fn part_files(folder: &Path) -> Vec<String> {
    std::fs::read_dir(folder)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part"))
        .collect()
}

/// Every chunk present and byte-identical, listed in `local_chunks.txt`, no `.part` left.
fn assert_complete(folder: &Path, total: u32, size: fn(u32) -> usize) {
    let list = std::fs::read_to_string(folder.join("local_chunks.txt")).unwrap();
    for i in 1..=total {
        let got = std::fs::read(folder.join(format!("chunk_{i}")))
            .unwrap_or_else(|e| panic!("{}: chunk_{i}: {e}", folder.display()));
        assert!(
            got == chunk_data(i, size(i)),
            "{}: chunk_{i} differs",
            folder.display()
        );
        assert!(
            list.lines().any(|l| l == format!("{i},chunk_{i}")),
            "{}: chunk {i} not listed:\n{list}",
            folder.display()
        );
    }
    assert!(list.ends_with(&format!("{total},LASTCHUNK\n")), "{list}");
    assert!(part_files(folder).is_empty(), "{:?}", part_files(folder));
}

/// Runs client `c1` on `folder` until it exits by itself with every chunk
/// (`--exit-when-complete`) within `secs`; the ended process (for its output) and its port.
fn run_to_completion(cwd: &Path, folder: &Path, tracker: u16, secs: u64) -> (Proc, u16) {
    let (mut c, own) = start_client(cwd, folder, "c1", tracker, 0, &["--exit-when-complete"]);
    assert_eq!(c.wait_exit(secs), Some(0));
    (c, own)
}

fn all_present(total: u32) -> String {
    format!("all {total} chunks present in")
}

/// Reads everything until EOF or a reset (a reset after no data is still "no data").
fn read_all_lenient(s: &mut TcpStream, secs: u64) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(secs))).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                panic!("peer neither sent data nor closed within {secs} s")
            }
            Err(_) => return out, // reset
        }
    }
}

/// `REQUEST_CHUNK`-style raw request to a client's chunk server; returns what came back.
fn raw_request(port: u16, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(request).unwrap();
    read_all_lenient(&mut s, 8)
}

// ---------------------------------------------------------------------------------------------
// Raw connection to the real tracker
// ---------------------------------------------------------------------------------------------

struct Raw(TcpStream);

impl Raw {
    fn connect(port: u16) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_nodelay(true).unwrap();
        Raw(s)
    }

    fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.0.write_all(bytes.as_ref()).unwrap();
    }

    /// One read within `ms`: `None` on timeout, `Some(empty)` on EOF.
    fn recv(&mut self, ms: u64) -> Option<Vec<u8>> {
        self.0
            .set_read_timeout(Some(Duration::from_millis(ms)))
            .unwrap();
        let mut buf = vec![0u8; 4096];
        match self.0.read(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                Some(buf)
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => None,
            Err(e) => panic!("tracker connection failed: {e}"),
        }
    }

    /// One reply (one read, 5 s), which must be non-empty.
    fn reply(&mut self) -> String {
        let got = self.recv(5000).expect("no reply within 5 s");
        assert!(!got.is_empty(), "the tracker closed the connection");
        String::from_utf8(got).unwrap()
    }

    /// Sends `WHERE_CHUNK,<idx>` (no terminator) and returns the one-read reply.
    fn ask(&mut self, idx: &str) -> String {
        self.send(format!("WHERE_CHUNK,{idx}"));
        self.reply()
    }

    fn announce(&mut self, idx: u32, ip: &str, port: u16) {
        self.send(format!("LOCAL_CHUNKS,{idx},{ip},{port}"));
    }

    fn expect_silence(&mut self, ms: u64) {
        if let Some(b) = self.recv(ms) {
            panic!(
                "expected silence, got {:?}",
                String::from_utf8_lossy(&b).into_owned()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Scripted fake tracker
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Msg {
    conn: usize,
    at: Instant,
    text: String,
}

enum Answer {
    Reply(String),
    Close,
    /// Never answer (a wedged tracker).
    Silent,
}

/// Decides the answer to `WHERE_CHUNK,<idx>`, the `nth` (0-based) time that index is asked.
type Responder = Arc<dyn Fn(u32, usize) -> Answer + Send + Sync>;

#[derive(Default)]
struct FtState {
    reads: Mutex<Vec<Msg>>,
    msgs: Mutex<Vec<Msg>>,
    conns: Mutex<Vec<TcpStream>>,
    eofs: Mutex<Vec<usize>>,
    asks: Mutex<HashMap<u32, usize>>,
}

struct FakeTracker {
    port: u16,
    st: Arc<FtState>,
}

fn unknown(idx: u32) -> Answer {
    Answer::Reply(format!("CHUNK_LOCATION_UNKNOWN,{idx}"))
}

fn holders(idx: u32, ports: &[u16]) -> Answer {
    let mut s = format!("GET_CHUNK_FROM,{idx}");
    for p in ports {
        s.push_str(&format!(",localhost,{p}"));
    }
    Answer::Reply(s)
}

/// Splits what a client sent into messages, before every keyword (the client sends none merged
/// when it paces, but with `--pace-ms 0` reads may merge).
fn split_msgs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.split('\n') {
        let mut cur = String::new();
        let mut i = 0;
        while i < line.len() {
            let rest = &line[i..];
            if i > 0
                && !cur.is_empty()
                && (rest.starts_with("LOCAL_CHUNKS") || rest.starts_with("WHERE_CHUNK"))
            {
                out.push(std::mem::take(&mut cur));
            }
            let c = rest.chars().next().unwrap();
            cur.push(c);
            i += c.len_utf8();
        }
        if !cur.is_empty() {
            out.push(cur);
        }
    }
    out
}

impl FakeTracker {
    fn start(responder: impl Fn(u32, usize) -> Answer + Send + Sync + 'static) -> FakeTracker {
        Self::start_on(
            TcpListener::bind("127.0.0.1:0").unwrap(),
            Arc::new(responder),
        )
    }

    fn start_on(listener: TcpListener, responder: Responder) -> FakeTracker {
        let port = listener.local_addr().unwrap().port();
        let st = Arc::new(FtState::default());
        let st2 = st.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let conn = {
                    let mut conns = st2.conns.lock().unwrap();
                    conns.push(stream.try_clone().unwrap());
                    conns.len() - 1
                };
                let (st3, resp) = (st2.clone(), responder.clone());
                thread::spawn(move || Self::serve(stream, conn, &st3, &*resp));
            }
        });
        FakeTracker { port, st }
    }

    fn serve(
        mut stream: TcpStream,
        conn: usize,
        st: &FtState,
        resp: &(dyn Fn(u32, usize) -> Answer + Send + Sync),
    ) {
        let mut buf = vec![0u8; 65536];
        loop {
            let n = match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let at = Instant::now();
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            st.reads.lock().unwrap().push(Msg {
                conn,
                at,
                text: text.clone(),
            });
            for m in split_msgs(&text) {
                st.msgs.lock().unwrap().push(Msg {
                    conn,
                    at,
                    text: m.clone(),
                });
                let Some(idx) = m.strip_prefix("WHERE_CHUNK,").and_then(|i| i.parse().ok()) else {
                    continue;
                };
                let nth = {
                    let mut asks = st.asks.lock().unwrap();
                    let e = asks.entry(idx).or_insert(0);
                    *e += 1;
                    *e - 1
                };
                match resp(idx, nth) {
                    Answer::Reply(r) => {
                        if stream.write_all(r.as_bytes()).is_err() {
                            break;
                        }
                    }
                    Answer::Silent => {}
                    Answer::Close => {
                        let _ = stream.shutdown(Shutdown::Both);
                        st.eofs.lock().unwrap().push(conn);
                        return;
                    }
                }
            }
        }
        st.eofs.lock().unwrap().push(conn);
    }

    fn msgs(&self) -> Vec<Msg> {
        self.st.msgs.lock().unwrap().clone()
    }

    fn texts(&self) -> Vec<String> {
        self.msgs().into_iter().map(|m| m.text).collect()
    }

    fn texts_on(&self, conn: usize) -> Vec<String> {
        self.msgs()
            .into_iter()
            .filter(|m| m.conn == conn)
            .map(|m| m.text)
            .collect()
    }

    fn reads(&self) -> Vec<Msg> {
        self.st.reads.lock().unwrap().clone()
    }

    fn connections(&self) -> usize {
        self.st.conns.lock().unwrap().len()
    }

    fn eofs(&self) -> Vec<usize> {
        self.st.eofs.lock().unwrap().clone()
    }

    /// Indices asked with WHERE_CHUNK, in order.
    fn wheres(&self) -> Vec<u32> {
        self.texts()
            .iter()
            .filter_map(|t| t.strip_prefix("WHERE_CHUNK,")?.parse().ok())
            .collect()
    }

    fn count(&self, text: &str) -> usize {
        self.texts().iter().filter(|t| *t == text).count()
    }

    fn wait_count(&self, text: &str, n: usize, secs: u64) {
        wait_for(&format!("{n}x {text:?} at the fake tracker"), secs, || {
            self.count(text) >= n
        });
    }

    /// Drops every connection (the client sees EOF).
    fn drop_all(&self) {
        for s in self.st.conns.lock().unwrap().iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fake peers
// ---------------------------------------------------------------------------------------------

/// Concurrent-connection counter.
#[derive(Default)]
struct Conc {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Conc {
    fn enter(&self) {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
    }
    fn exit(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
    fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

type DataFn = Arc<dyn Fn(u32) -> Vec<u8> + Send + Sync>;

#[derive(Clone)]
enum PeerMode {
    /// Reads the request, waits `delay`, sends `data(idx)` (empty: nothing), closes its side,
    /// then waits for the client's EOF.
    Serve(DataFn, Duration),
    /// Reads only 5 bytes of the request, sends half of the data, then drops the socket with
    /// unread input (the kernel sends RST).
    HalfThenReset(Vec<u8>),
    /// Reads the request, sends the first half, sets `.1`, waits for `.2` (at most 20 s), then
    /// sends the rest and closes.
    Gated(Vec<u8>, Arc<AtomicBool>, Arc<AtomicBool>),
}

#[derive(Default)]
struct PeerState {
    requests: Mutex<Vec<String>>,
    conns: AtomicUsize,
    eofs: AtomicUsize,
    conc: Conc,
}

struct FakePeer {
    port: u16,
    st: Arc<PeerState>,
}

fn serving(size: fn(u32) -> usize) -> PeerMode {
    PeerMode::Serve(Arc::new(move |i| chunk_data(i, size(i))), Duration::ZERO)
}

impl FakePeer {
    fn start(mode: PeerMode) -> FakePeer {
        Self::start_shared(mode, None)
    }

    fn start_shared(mode: PeerMode, shared: Option<Arc<Conc>>) -> FakePeer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let st = Arc::new(PeerState::default());
        let st2 = st.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                st2.conns.fetch_add(1, Ordering::SeqCst);
                let (st3, mode, shared) = (st2.clone(), mode.clone(), shared.clone());
                thread::spawn(move || Self::serve(stream, &st3, mode, shared.as_deref()));
            }
        });
        FakePeer { port, st }
    }

    fn serve(mut s: TcpStream, st: &PeerState, mode: PeerMode, shared: Option<&Conc>) {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        if let PeerMode::HalfThenReset(data) = &mode {
            let mut head = [0u8; 5];
            let n = s.read(&mut head).unwrap_or(0);
            st.requests
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&head[..n]).into_owned());
            let _ = s.write_all(&data[..data.len() / 2]);
            thread::sleep(Duration::from_millis(100));
            drop(s); // unread request bytes: RST
            return;
        }
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).unwrap_or(0);
        let req = String::from_utf8_lossy(&buf[..n]).into_owned();
        st.requests.lock().unwrap().push(req.clone());
        let idx: u32 = req
            .strip_prefix("REQUEST_CHUNK,")
            .and_then(|i| i.parse().ok())
            .unwrap_or(0);
        match mode {
            PeerMode::Serve(data, delay) => {
                st.conc.enter();
                if let Some(c) = shared {
                    c.enter();
                }
                thread::sleep(delay);
                let bytes = data(idx);
                let _ = s.write_all(&bytes);
                st.conc.exit();
                if let Some(c) = shared {
                    c.exit();
                }
            }
            PeerMode::Gated(data, half_sent, gate) => {
                let half = data.len() / 2;
                let _ = s.write_all(&data[..half]);
                half_sent.store(true, Ordering::SeqCst);
                let deadline = Instant::now() + Duration::from_secs(20);
                while !gate.load(Ordering::SeqCst) && Instant::now() < deadline {
                    thread::sleep(Duration::from_millis(10));
                }
                let _ = s.write_all(&data[half..]);
            }
            PeerMode::HalfThenReset(_) => unreachable!(),
        }
        let _ = s.shutdown(Shutdown::Write);
        // A peershare client sends one probe byte after EOF, then closes (the end check).
        let mut rest = [0u8; 64];
        loop {
            match s.read(&mut rest) {
                Ok(0) => {
                    st.eofs.fetch_add(1, Ordering::SeqCst);
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }

    fn requests(&self) -> Vec<String> {
        self.st.requests.lock().unwrap().clone()
    }

    fn conns(&self) -> usize {
        self.st.conns.load(Ordering::SeqCst)
    }
}

/// A fake-tracker client test folder: `<tmp>/c` holding `held` of `total`.
fn client_dir(total: u32, held: &[u32]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let folder = make_folder(tmp.path(), "c", total, held, default_size);
    (tmp, folder)
}

fn lc(idx: u32, port: u16) -> String {
    format!("LOCAL_CHUNKS,{idx},localhost,{port}")
}

// ---------------------------------------------------------------------------------------------
// Tracker (raw TCP against the real process)
// ---------------------------------------------------------------------------------------------

#[test]
fn tracker_accepts_more_than_two_simultaneous_clients() {
    let tmp = tempfile::tempdir().unwrap();
    let (_t, port) = start_tracker(tmp.path());
    let mut conns: Vec<Raw> = (0..4).map(|_| Raw::connect(port)).collect();
    for (k, c) in conns.iter_mut().enumerate() {
        let idx = k as u32 + 1;
        c.announce(idx, "localhost", 7000 + idx as u16);
        // Asking on the same connection makes sure the announcement was processed.
        assert_eq!(
            c.ask(&idx.to_string()),
            format!("GET_CHUNK_FROM,{idx},localhost,{}", 7000 + idx)
        );
    }
    // Every connection stays open; each asks for the next one's chunk, last first.
    for k in (0..4).rev() {
        let want = (k + 1) % 4 + 1;
        assert_eq!(
            conns[k].ask(&want.to_string()),
            format!("GET_CHUNK_FROM,{want},localhost,{}", 7000 + want)
        );
    }
    // And again in the other order, all still open at once.
    for (k, c) in conns.iter_mut().enumerate() {
        let want = (k + 2) % 4 + 1;
        assert_eq!(
            c.ask(&want.to_string()),
            format!("GET_CHUNK_FROM,{want},localhost,{}", 7000 + want)
        );
    }
}

#[test]
fn tracker_answers_get_chunk_from_when_one_client_has_the_chunk() {
    let tmp = tempfile::tempdir().unwrap();
    let (_t, port) = start_tracker(tmp.path());
    let mut a = Raw::connect(port);
    a.announce(3, "localhost", 7003);
    let mut b = Raw::connect(port);
    // a's announcement is processed before its own question is answered.
    assert_eq!(a.ask("3"), "GET_CHUNK_FROM,3,localhost,7003");
    assert_eq!(b.ask("3"), "GET_CHUNK_FROM,3,localhost,7003");
    b.expect_silence(300);
}

#[test]
fn tracker_answers_both_holders_in_registration_order_when_two_clients_have_the_chunk() {
    let tmp = tempfile::tempdir().unwrap();
    let (_t, port) = start_tracker(tmp.path());
    let mut a = Raw::connect(port);
    let mut b = Raw::connect(port);
    // The higher port registers first: the answer must not be sorted.
    a.announce(1, "localhost", 7002);
    assert_eq!(a.ask("1"), "GET_CHUNK_FROM,1,localhost,7002");
    b.announce(1, "localhost", 7001);
    assert_eq!(b.ask("1"), "GET_CHUNK_FROM,1,localhost,7002,localhost,7001");
    let mut c = Raw::connect(port);
    assert_eq!(c.ask("1"), "GET_CHUNK_FROM,1,localhost,7002,localhost,7001");
}

#[test]
fn tracker_answers_chunk_location_unknown_for_unregistered_chunk() {
    let tmp = tempfile::tempdir().unwrap();
    let (_t, port) = start_tracker(tmp.path());
    let mut a = Raw::connect(port);
    assert_eq!(a.ask("1"), "CHUNK_LOCATION_UNKNOWN,1");
    a.announce(1, "localhost", 7001);
    assert_eq!(a.ask("2"), "CHUNK_LOCATION_UNKNOWN,2");
    assert_eq!(a.ask("1000000"), "CHUNK_LOCATION_UNKNOWN,1000000");
    assert_eq!(a.ask("1"), "GET_CHUNK_FROM,1,localhost,7001");
}

#[test]
fn tracker_sends_nothing_in_reply_to_local_chunks() {
    let tmp = tempfile::tempdir().unwrap();
    let (_t, port) = start_tracker(tmp.path());
    let mut a = Raw::connect(port);
    a.announce(1, "localhost", 7001);
    a.expect_silence(300);
    a.announce(2, "localhost", 7001);
    a.announce(1, "localhost", 7001); // a duplicate is silent too
    a.expect_silence(300);
    // Nothing queued before the next real reply either.
    assert_eq!(a.ask("2"), "GET_CHUNK_FROM,2,localhost,7001");
    a.expect_silence(200);
}

#[test]
fn tracker_splits_merged_messages_and_tolerates_trailing_newlines() {
    let tmp = tempfile::tempdir().unwrap();
    let (_t, port) = start_tracker(tmp.path());
    let mut a = Raw::connect(port);
    a.send("LOCAL_CHUNKS,2,localhost,7003WHERE_CHUNK,2");
    assert_eq!(a.reply(), "GET_CHUNK_FROM,2,localhost,7003");
    a.send("WHERE_CHUNK,2\n");
    assert_eq!(a.reply(), "GET_CHUNK_FROM,2,localhost,7003");
    a.send("WHERE_CHUNK,2\r\n");
    assert_eq!(a.reply(), "GET_CHUNK_FROM,2,localhost,7003");
    a.send("LOCAL_CHUNKS,3,localhost,7004\r\nWHERE_CHUNK,3\n");
    assert_eq!(a.reply(), "GET_CHUNK_FROM,3,localhost,7004");
    a.send("LOCAL_CHUNKS,4,localhost,7005\n");
    a.expect_silence(200);
    // Two questions in one write: two replies, in order (they may arrive in one read).
    a.send("WHERE_CHUNK,4WHERE_CHUNK,9");
    let want = "GET_CHUNK_FROM,4,localhost,7005CHUNK_LOCATION_UNKNOWN,9";
    let mut got = Vec::new();
    while got.len() < want.len() {
        let part = a.recv(5000).expect("second reply missing");
        assert!(!part.is_empty());
        got.extend(part);
    }
    assert_eq!(String::from_utf8(got).unwrap(), want);
}

#[test]
fn tracker_stores_duplicate_holders_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (_t, port) = start_tracker(tmp.path());
    let mut a = Raw::connect(port);
    for _ in 0..3 {
        a.announce(1, "localhost", 7001);
        thread::sleep(Duration::from_millis(20));
    }
    a.send("LOCAL_CHUNKS,1,localhost,7002\nLOCAL_CHUNKS,1,localhost,7001\n");
    assert_eq!(a.ask("1"), "GET_CHUNK_FROM,1,localhost,7001,localhost,7002");
    // Re-announcing on another connection (a reconnecting client) adds nothing either.
    let mut b = Raw::connect(port);
    b.announce(1, "localhost", 7002);
    b.announce(1, "localhost", 7001);
    assert_eq!(b.ask("1"), "GET_CHUNK_FROM,1,localhost,7001,localhost,7002");
}

#[test]
fn tracker_caps_reply_at_1024_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let (_t, port) = start_tracker(tmp.path());
    let mut a = Raw::connect(port);
    let mut burst = String::new();
    for k in 0..200u16 {
        burst.push_str(&format!("LOCAL_CHUNKS,1,localhost,{}\n", 10000 + k));
    }
    a.send(&burst);
    // "GET_CHUNK_FROM,1" is 16 bytes and every ",localhost,1xxxx" 16 more: 63 fit exactly.
    let mut want = "GET_CHUNK_FROM,1".to_string();
    for k in 0..200u16 {
        let part = format!(",localhost,{}", 10000 + k);
        if want.len() + part.len() > 1024 {
            break;
        }
        want.push_str(&part);
    }
    assert_eq!(want.len(), 1024);
    let got = a.ask("1");
    assert_eq!(got.len(), 1024);
    assert_eq!(got, want);
    a.expect_silence(300);
    // The connection is fine afterwards.
    assert_eq!(a.ask("2"), "CHUNK_LOCATION_UNKNOWN,2");
}

#[test]
fn tracker_keeps_holders_after_announcing_connection_closes() {
    let tmp = tempfile::tempdir().unwrap();
    let (t, port) = start_tracker(tmp.path());
    {
        let mut a = Raw::connect(port);
        a.announce(5, "localhost", 7005);
        assert_eq!(a.ask("5"), "GET_CHUNK_FROM,5,localhost,7005");
        a.0.shutdown(Shutdown::Both).unwrap();
    }
    // Let the tracker see the close.
    t.wait_stderr("disconnected", 10);
    let mut b = Raw::connect(port);
    assert_eq!(b.ask("5"), "GET_CHUNK_FROM,5,localhost,7005");
    // A connection dropped in the middle of a message keeps what it announced before.
    {
        let mut c = Raw::connect(port);
        c.announce(6, "localhost", 7006);
        c.expect_silence(200);
        c.send("LOCAL_CHUNKS,6,local");
    }
    thread::sleep(Duration::from_millis(200));
    assert_eq!(b.ask("6"), "GET_CHUNK_FROM,6,localhost,7006");
}

#[test]
fn tracker_ignores_malformed_segments_and_keeps_the_connection() {
    let tmp = tempfile::tempdir().unwrap();
    let (t, port) = start_tracker(tmp.path());
    let mut a = Raw::connect(port);
    let bad: Vec<Vec<u8>> = vec![
        b"garbage".to_vec(),
        b"HELLO,1,localhost,7001".to_vec(),
        b"LOCAL_CHUNKS".to_vec(),
        b"LOCAL_CHUNKS,1,localhost".to_vec(),
        b"LOCAL_CHUNKS,1,localhost,7001,extra".to_vec(),
        b"LOCAL_CHUNKS,0,localhost,7001".to_vec(),
        b"LOCAL_CHUNKS,-1,localhost,7001".to_vec(),
        b"LOCAL_CHUNKS,01,localhost,7001".to_vec(),
        b"LOCAL_CHUNKS,1000001,localhost,7001".to_vec(),
        b"LOCAL_CHUNKS,abc,localhost,7001".to_vec(),
        b"LOCAL_CHUNKS,1,localhost,0".to_vec(),
        b"LOCAL_CHUNKS,1,localhost,65536".to_vec(),
        b"LOCAL_CHUNKS,1,localhost,port".to_vec(),
        b"LOCAL_CHUNKS,1,,7001".to_vec(),
        b"LOCAL_CHUNKS,1,local host,7001".to_vec(),
        b"LOCAL_CHUNKS,1,local\xffhost,7001".to_vec(),
        b"\xff\xfe\xfd\x00\x01".to_vec(),
        b"WHERE_CHUNK".to_vec(),
        b"WHERE_CHUNK,1,2".to_vec(),
        b",,,,".to_vec(),
    ];
    for seg in &bad {
        a.send(seg);
        // Nothing was recorded for chunk 1 and the connection still answers.
        assert_eq!(
            a.ask("1"),
            "CHUNK_LOCATION_UNKNOWN,1",
            "after {:?}",
            String::from_utf8_lossy(seg)
        );
    }
    // A 1 MiB line without any message in it.
    let mut big = vec![b'x'; 1 << 20];
    big.push(b'\n');
    a.send(&big);
    a.expect_silence(300);
    assert_eq!(a.ask("1"), "CHUNK_LOCATION_UNKNOWN,1");
    // Invalid indices in WHERE_CHUNK are still answered, with the text echoed.
    assert_eq!(a.ask("abc"), "CHUNK_LOCATION_UNKNOWN,abc");
    assert_eq!(a.ask("0"), "CHUNK_LOCATION_UNKNOWN,0");
    assert_eq!(a.ask("-1"), "CHUNK_LOCATION_UNKNOWN,-1");
    assert_eq!(a.ask("1000001"), "CHUNK_LOCATION_UNKNOWN,1000001");
    // And a valid announcement afterwards is the only holder.
    a.announce(1, "localhost", 7001);
    assert_eq!(a.ask("1"), "GET_CHUNK_FROM,1,localhost,7001");
    assert!(t.stderr.text().contains("WARN"), "no warning on stderr");
    let log = std::fs::read_to_string(tmp.path().join("logs.log")).unwrap();
    for line in log.lines() {
        assert!(
            line == "P2PTracker,WHERE_CHUNK,1"
                || line == "P2PTracker,CHUNK_LOCATION_UNKNOWN,1"
                || line == "P2PTracker,LOCAL_CHUNKS,1,localhost,7001"
                || line == "P2PTracker,GET_CHUNK_FROM,1,localhost,7001",
            "unexpected log line {line:?}"
        );
    }
}

#[test]
fn tracker_logs_received_and_sent_lines_with_localhost_and_no_spaces() {
    let tmp = tempfile::tempdir().unwrap();
    let (_t, port) = start_tracker(tmp.path());
    let mut a = Raw::connect(port);
    let mut b = Raw::connect(port);
    a.announce(1, "localhost", 7001);
    a.expect_silence(100);
    b.announce(1, "127.0.0.1", 7002);
    b.expect_silence(100);
    a.announce(1, "localhost", 7001);
    a.expect_silence(100);
    // The reply echoes the ip as announced; the log writes localhost.
    assert_eq!(a.ask("1"), "GET_CHUNK_FROM,1,localhost,7001,127.0.0.1,7002");
    let path = tmp.path().join("logs.log");
    // The sent line is written after the reply: wait for it before the next question.
    wait_for("the GET_CHUNK_FROM log line", 5, || {
        std::fs::read_to_string(&path).is_ok_and(|t| t.contains("GET_CHUNK_FROM"))
    });
    assert_eq!(b.ask("2"), "CHUNK_LOCATION_UNKNOWN,2");
    let want = "P2PTracker,LOCAL_CHUNKS,1,localhost,7001\n\
                P2PTracker,LOCAL_CHUNKS,1,localhost,7002\n\
                P2PTracker,LOCAL_CHUNKS,1,localhost,7001\n\
                P2PTracker,WHERE_CHUNK,1\n\
                P2PTracker,GET_CHUNK_FROM,1,localhost,7001,localhost,7002\n\
                P2PTracker,WHERE_CHUNK,2\n\
                P2PTracker,CHUNK_LOCATION_UNKNOWN,2\n";
    wait_for("the last log line", 5, || {
        std::fs::read_to_string(&path).is_ok_and(|t| t.len() >= want.len())
    });
    assert_eq!(std::fs::read_to_string(&path).unwrap(), want);
}

// ---------------------------------------------------------------------------------------------
// Client against a fake tracker and fake peers
// ---------------------------------------------------------------------------------------------

#[test]
fn client_sends_its_own_chunk_list_to_the_tracker() {
    let ft = FakeTracker::start(|i, _| unknown(i));
    let (tmp, folder) = client_dir(5, &[1, 3, 4]);
    let (_c, own) = start_client(tmp.path(), &folder, "c1", ft.port, 0, &[]);
    wait_for("the first WHERE_CHUNK", 10, || !ft.wheres().is_empty());
    let texts = ft.texts();
    assert_eq!(&texts[..3], &[lc(1, own), lc(3, own), lc(4, own)]);
    assert_eq!(texts[3], "WHERE_CHUNK,2");
    assert_eq!(ft.connections(), 1);
}

#[test]
fn client_asks_the_tracker_for_every_missing_chunk() {
    let ft = FakeTracker::start(|i, _| unknown(i));
    let (tmp, folder) = client_dir(6, &[1, 3]);
    let (_c, _) = start_client(tmp.path(), &folder, "c1", ft.port, 0, &[]);
    // Two rounds: each asks exactly the missing chunks, ascending.
    wait_for("two rounds of WHERE_CHUNK", 10, || ft.wheres().len() >= 8);
    assert_eq!(&ft.wheres()[..8], &[2, 4, 5, 6, 2, 4, 5, 6]);
    assert!(ft
        .texts()
        .iter()
        .all(|t| t.starts_with("LOCAL_CHUNKS,") || t.starts_with("WHERE_CHUNK,")));
}

#[test]
fn client_connects_to_peers_without_disconnecting_from_the_tracker() {
    let peer = FakePeer::start(serving(default_size));
    let pp = peer.port;
    let ft = FakeTracker::start(move |i, _| holders(i, &[pp]));
    let (tmp, folder) = client_dir(3, &[1]);
    let (c, own) = start_client(tmp.path(), &folder, "c1", ft.port, 0, &[]);
    c.wait_stdout(&all_present(3), 20);
    ft.wait_count(&lc(2, own), 1, 5);
    ft.wait_count(&lc(3, own), 1, 5);
    assert_complete(&folder, 3, default_size);
    assert_eq!(peer.requests().len(), 2);
    // One tracker connection, never closed while fetching: the new chunks were announced on it.
    assert_eq!(ft.connections(), 1);
    assert!(ft.eofs().is_empty(), "the tracker connection was closed");
    let on0 = ft.texts_on(0);
    assert!(on0.contains(&lc(2, own)), "{on0:?}");
    assert!(on0.contains(&lc(3, own)), "{on0:?}");
}

#[test]
fn client_transfers_some_files_from_peer_clients() {
    // Two layouts: overlapping holdings, and interleaved ones.
    for layout in [
        vec![("A", vec![1, 2, 3]), ("B", vec![3, 4, 5])],
        vec![("A", vec![1, 3, 5]), ("B", vec![2, 4])],
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let (_t, port) = start_tracker(tmp.path());
        let mut procs = Vec::new();
        for (name, held) in &layout {
            let folder = make_folder(tmp.path(), name, 5, held, default_size);
            let (p, _) = start_client(tmp.path(), &folder, name, port, 0, &[]);
            procs.push((p, folder, held.clone()));
        }
        for (p, folder, held) in &procs {
            let out = p.wait_stdout(&all_present(5), 60);
            assert_complete(folder, 5, default_size);
            for i in 1..=5u32 {
                let line = format!("chunk {i} received from localhost:");
                assert_eq!(out.contains(&line), !held.contains(&i), "{out}");
            }
        }
    }
}

#[test]
fn client_transfers_all_files_from_peer_clients() {
    let tmp = tempfile::tempdir().unwrap();
    let (_t, port) = start_tracker(tmp.path());
    let a = make_folder(tmp.path(), "A", 4, &[1, 2], default_size);
    let b = make_folder(tmp.path(), "B", 4, &[3, 4], default_size);
    let c = make_folder(tmp.path(), "C", 4, &[], default_size);
    let (_pa, _) = start_client(tmp.path(), &a, "A", port, 0, &[]);
    let (_pb, _) = start_client(tmp.path(), &b, "B", port, 0, &[]);
    let (mut pc, _) = start_client(tmp.path(), &c, "C", port, 0, &["--exit-when-complete"]);
    assert_eq!(pc.wait_exit(60), Some(0));
    assert_complete(&c, 4, default_size);
    let out = pc.stdout.text();
    assert_eq!(out.matches(" received from localhost:").count(), 4, "{out}");
    assert!(out.contains(&format!("all 4 chunks present in {}", c.display())));
}

#[test]
fn client_asks_peers_only_for_chunks_it_lacks_and_only_holders_named_by_the_tracker() {
    let p1 = FakePeer::start(serving(default_size));
    let p2 = FakePeer::start(serving(default_size));
    let p3 = FakePeer::start(serving(default_size)); // never named
    let (pp1, pp2) = (p1.port, p2.port);
    let own_port = Arc::new(AtomicUsize::new(0));
    let own2 = own_port.clone();
    // For chunk 4 the tracker also names the asking client itself, first.
    let ft = FakeTracker::start(move |i, _| match i {
        2 => holders(2, &[pp1]),
        4 => {
            wait_for("the client's port", 10, || own2.load(Ordering::SeqCst) != 0);
            holders(4, &[own2.load(Ordering::SeqCst) as u16, pp2])
        }
        _ => unknown(i),
    });
    let (tmp, folder) = client_dir(4, &[1, 3]);
    let (mut c, own) = start_client(
        tmp.path(),
        &folder,
        "c1",
        ft.port,
        0,
        &["--exit-when-complete"],
    );
    own_port.store(own as usize, Ordering::SeqCst);
    assert_eq!(c.wait_exit(20), Some(0));
    assert_complete(&folder, 4, default_size);
    let log = std::fs::read_to_string(tmp.path().join("logs.log")).unwrap();
    assert!(
        !log.contains(&format!("REQUEST_CHUNK,4,localhost,{own}")),
        "{log}"
    );
    assert_eq!(p1.requests(), vec!["REQUEST_CHUNK,2"]);
    assert_eq!(p2.requests(), vec!["REQUEST_CHUNK,4"]);
    assert_eq!(p3.conns(), 0);
    assert_eq!(ft.wheres(), vec![2, 4]);
}

#[test]
fn client_closes_each_peer_connection_after_its_transfer() {
    let peer = FakePeer::start(serving(default_size));
    let pp = peer.port;
    let ft = FakeTracker::start(move |i, _| holders(i, &[pp]));
    let (tmp, folder) = client_dir(4, &[1]);
    // Default mode: the client keeps running, so EOF on a peer connection can only come from
    // the client closing it after the transfer.
    let (c, _) = start_client(tmp.path(), &folder, "c1", ft.port, 0, &[]);
    c.wait_stdout(&all_present(4), 20);
    wait_for("EOF on all three peer connections", 10, || {
        peer.st.eofs.load(Ordering::SeqCst) == 3
    });
    assert_eq!(peer.conns(), 3);
    assert_complete(&folder, 4, default_size);
}

#[test]
fn client_sends_each_message_in_one_write_without_terminator_and_paces_after_local_chunks() {
    let ft = FakeTracker::start(|i, _| unknown(i));
    let (tmp, folder) = client_dir(5, &[1, 2, 3]);
    let (_c, own) = start_client(tmp.path(), &folder, "c1", ft.port, 100, &[]);
    wait_for("WHERE_CHUNK,5", 10, || ft.wheres().len() >= 2);
    let reads = ft.reads();
    let texts: Vec<&str> = reads.iter().map(|r| r.text.as_str()).collect();
    // Each read is exactly one message: one write, no terminator, nothing merged.
    assert_eq!(
        &texts[..5],
        &[
            lc(1, own).as_str(),
            lc(2, own).as_str(),
            lc(3, own).as_str(),
            "WHERE_CHUNK,4",
            "WHERE_CHUNK,5"
        ]
    );
    for t in &texts {
        assert!(!t.contains('\n') && !t.contains('\r'), "{t:?}");
    }
    // A pause of at least --pace-ms follows every LOCAL_CHUNKS.
    for k in 0..3 {
        let gap = reads[k + 1].at - reads[k].at;
        assert!(gap >= Duration::from_millis(90), "gap {k}: {gap:?}");
    }
}

#[test]
fn client_polls_unknown_chunks_until_they_appear() {
    let peer = FakePeer::start(serving(default_size));
    let pp = peer.port;
    // Chunk 2 is unknown (with a trailing CRLF, as some trackers send), then the tracker
    // answers about another chunk (which counts as unknown), then chunk 2 appears (with a
    // trailing LF).
    let ft = FakeTracker::start(move |i, nth| match nth {
        0 => Answer::Reply(format!("CHUNK_LOCATION_UNKNOWN,{i}\r\n")),
        1 => Answer::Reply(format!("GET_CHUNK_FROM,{},localhost,{pp}", i * 10)),
        _ => Answer::Reply(format!("GET_CHUNK_FROM,{i},localhost,{pp}\n")),
    });
    let (tmp, folder) = client_dir(2, &[1]);
    let (_, _) = run_to_completion(tmp.path(), &folder, ft.port, 20);
    assert_complete(&folder, 2, default_size);
    let asks: Vec<Instant> = ft
        .msgs()
        .iter()
        .filter(|m| m.text == "WHERE_CHUNK,2")
        .map(|m| m.at)
        .collect();
    assert_eq!(asks.len(), 3);
    for w in asks.windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_millis(950),
            "{:?}",
            w[1] - w[0]
        );
    }
    assert_eq!(peer.requests(), vec!["REQUEST_CHUNK,2"]);
}

#[test]
fn client_runs_at_most_five_downloads_and_spreads_them_over_holders() {
    let total = Arc::new(Conc::default());
    // Transfers last until the tracker has answered about every chunk, then 300 ms more: the
    // client could run all ten at once if it did not limit itself.
    let all_asked = Arc::new(AtomicBool::new(false));
    let slow = || {
        let gate = all_asked.clone();
        PeerMode::Serve(
            Arc::new(move |i| {
                wait_for("WHERE_CHUNK,11 answered", 20, || {
                    gate.load(Ordering::SeqCst)
                });
                thread::sleep(Duration::from_millis(300));
                chunk_data(i, default_size(i))
            }),
            Duration::ZERO,
        )
    };
    let p1 = FakePeer::start_shared(slow(), Some(total.clone()));
    let p2 = FakePeer::start_shared(slow(), Some(total.clone()));
    let (pp1, pp2) = (p1.port, p2.port);
    let asked = all_asked.clone();
    let ft = FakeTracker::start(move |i, _| {
        if i == 11 {
            asked.store(true, Ordering::SeqCst);
        }
        // Ordered so that rotating the list by the index alone would always pick p1: only
        // counting running transfers spreads them.
        if i % 2 == 0 {
            holders(i, &[pp1, pp2])
        } else {
            holders(i, &[pp2, pp1])
        }
    });
    let (tmp, folder) = client_dir(11, &[1]);
    let (_, _) = run_to_completion(tmp.path(), &folder, ft.port, 30);
    assert_complete(&folder, 11, default_size);
    assert_eq!(total.max(), 5, "downloads at once");
    let (n1, n2) = (p1.requests().len(), p2.requests().len());
    assert_eq!(n1 + n2, 10);
    assert!(n1 >= 3 && n2 >= 3, "requests {n1}/{n2}");
    let (m1, m2) = (p1.st.conc.max(), p2.st.conc.max());
    assert!((2..=3).contains(&m1) && (2..=3).contains(&m2), "{m1}/{m2}");
}

#[test]
fn client_starts_the_chunk_with_fewest_holders_first_when_slots_free_up() {
    // Transfers are held until the client has asked about chunk 14. The client sends nothing
    // while a reply is pending, so that question proves it has read the answer about 13 and
    // knows every holder count before any slot frees up (a fixed margin was flaky under load).
    // Then transfers finish one at a time, 200 ms apart, so each freed slot's new download has
    // logged its request before the next slot frees (threads started together race to log).
    let all_known = Arc::new(AtomicBool::new(false));
    let tickets = Arc::new(AtomicUsize::new(0));
    let slow = || {
        let (gate, tickets) = (all_known.clone(), tickets.clone());
        PeerMode::Serve(
            Arc::new(move |i| {
                wait_for("WHERE_CHUNK,14 asked", 20, || gate.load(Ordering::SeqCst));
                let turn = tickets.fetch_add(1, Ordering::SeqCst) as u64;
                thread::sleep(Duration::from_millis(200 * (turn.min(5) + 1)));
                chunk_data(i, default_size(i))
            }),
            Duration::ZERO,
        )
    };
    let p1 = FakePeer::start(slow());
    let p2 = FakePeer::start(slow());
    let (pp1, pp2) = (p1.port, p2.port);
    // 2..=6 fill the five slots at once; of the rest, 11..=13 have one holder, 7..=10 two;
    // 14 is unknown in the first round (it comes in a later round, after the others).
    let known = all_known.clone();
    let asks_14 = Arc::new(AtomicUsize::new(0));
    let ft = FakeTracker::start(move |i, _| {
        if i == 14 {
            known.store(true, Ordering::SeqCst);
            if asks_14.fetch_add(1, Ordering::SeqCst) == 0 {
                return unknown(i);
            }
        }
        if i >= 11 {
            holders(i, &[pp1])
        } else {
            holders(i, &[pp1, pp2])
        }
    });
    let (tmp, folder) = client_dir(14, &[1]);
    let (_, _) = run_to_completion(tmp.path(), &folder, ft.port, 30);
    assert_complete(&folder, 14, default_size);
    let log = std::fs::read_to_string(tmp.path().join("logs.log")).unwrap();
    let order: Vec<u32> = log
        .lines()
        .filter_map(|l| l.strip_prefix("c1,REQUEST_CHUNK,"))
        .map(|r| r.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(order.len(), 13, "{log}");
    let first: BTreeSet<u32> = order[..5].iter().copied().collect();
    assert_eq!(first, (2..=6).collect(), "{order:?}");
    let next: BTreeSet<u32> = order[5..8].iter().copied().collect();
    assert_eq!(next, (11..=13).collect(), "{order:?}");
}

#[test]
fn client_rewrites_local_chunks_atomically_before_lastchunk_and_resumes_after_restart() {
    let peer = FakePeer::start(serving(default_size));
    let pp = peer.port;
    let tmp = tempfile::tempdir().unwrap();
    let folder = make_folder(tmp.path(), "c", 4, &[1], default_size);
    // CRLF and no final newline: the rewrite uses LF and ends with one.
    std::fs::write(folder.join("local_chunks.txt"), "1,chunk_1\r\n4,LASTCHUNK").unwrap();
    // Run 1: only chunk 2 is available; then the client is killed.
    let ft1 = FakeTracker::start(move |i, _| {
        if i == 2 {
            holders(2, &[pp])
        } else {
            unknown(i)
        }
    });
    let (mut c, _) = start_client(tmp.path(), &folder, "c1", ft1.port, 0, &[]);
    c.wait_stdout("chunk 2 received", 20);
    let list = folder.join("local_chunks.txt");
    assert_eq!(
        std::fs::read_to_string(&list).unwrap(),
        "1,chunk_1\n2,chunk_2\n4,LASTCHUNK\n"
    );
    c.kill();
    // Run 2: resumes, asking only for 3 and 4.
    let ft2 = FakeTracker::start(move |i, _| holders(i, &[pp]));
    let (_, _) = run_to_completion(tmp.path(), &folder, ft2.port, 20);
    assert_eq!(ft2.wheres(), vec![3, 4]);
    let text = std::fs::read_to_string(&list).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(text.ends_with('\n') && !text.contains('\r'), "{text:?}");
    assert_eq!(lines.len(), 5, "{text}");
    assert_eq!(&lines[..2], &["1,chunk_1", "2,chunk_2"]);
    let mid: BTreeSet<&str> = lines[2..4].iter().copied().collect();
    assert_eq!(mid, BTreeSet::from(["3,chunk_3", "4,chunk_4"]));
    assert_eq!(lines[4], "4,LASTCHUNK");
    assert_complete(&folder, 4, default_size);
    let names: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("chunk_") || n == "local_chunks.txt"),
        "leftover files: {names:?}"
    );
    // Run 3: with the full list it asks for nothing.
    let ft3 = FakeTracker::start(|i, _| unknown(i));
    let (_, own) = run_to_completion(tmp.path(), &folder, ft3.port, 20);
    ft3.wait_count(&lc(4, own), 1, 5);
    assert!(ft3.wheres().is_empty(), "{:?}", ft3.texts());
    assert_eq!(peer.requests().len(), 3);
}

#[test]
fn client_tolerates_crlf_blank_lines_and_spaces_in_local_chunks() {
    let ft = FakeTracker::start(|i, _| unknown(i));
    let (tmp, folder) = client_dir(4, &[1, 2]);
    // Chunk 1 lives under another name, as in the assignment's sample folders.
    std::fs::rename(folder.join("chunk_1"), folder.join("part one.bin")).unwrap();
    std::fs::write(
        folder.join("local_chunks.txt"),
        "\r\n 1 , part one.bin \r\n\r\n4 , LASTCHUNK\r\n   \r\n2,  chunk_2\r\n\r\n",
    )
    .unwrap();
    let (c, own) = start_client(tmp.path(), &folder, "c1", ft.port, 0, &[]);
    wait_for("a WHERE_CHUNK round", 10, || ft.wheres().len() >= 2);
    let texts = ft.texts();
    assert_eq!(
        &texts[..4],
        &[
            lc(1, own),
            lc(2, own),
            "WHERE_CHUNK,3".into(),
            "WHERE_CHUNK,4".into()
        ]
    );
    assert!(!c.stderr.text().contains("warning"), "{}", c.stderr.text());
    assert_eq!(
        raw_request(own, b"REQUEST_CHUNK,1"),
        chunk_data(1, default_size(1))
    );
}

#[test]
fn client_treats_empty_or_chunk_not_found_payload_as_failure() {
    let empty = FakePeer::start(PeerMode::Serve(Arc::new(|_| Vec::new()), Duration::ZERO));
    let not_found = FakePeer::start(PeerMode::Serve(
        Arc::new(|_| b"CHUNK_NOT_FOUND".to_vec()),
        Duration::ZERO,
    ));
    let good = FakePeer::start(serving(default_size));
    let (pe, pn, pg) = (empty.port, not_found.port, good.port);
    let tmp = tempfile::tempdir().unwrap();
    let folder = make_folder(tmp.path(), "c", 3, &[1], default_size);
    let clean_at_retry = Arc::new(Mutex::new(None));
    let (f2, seen) = (folder.clone(), clean_at_retry.clone());
    // Chunk 2: first only refusing holders; when the client asks again, nothing of the failed
    // attempts may be on disk. Chunk 3: the holder tried first (rotation by idx) refuses.
    let ft = FakeTracker::start(move |i, nth| match (i, nth) {
        (2, 0) => holders(2, &[pe, pn]),
        (2, _) => {
            let clean = !f2.join("chunk_2").exists() && !f2.join("chunk_2.part").exists();
            seen.lock().unwrap().get_or_insert(clean);
            holders(2, &[pe, pg])
        }
        (3, _) => holders(3, &[pg, pn]),
        _ => unknown(i),
    });
    let (_, own) = run_to_completion(tmp.path(), &folder, ft.port, 20);
    assert_complete(&folder, 3, default_size);
    assert_eq!(*clean_at_retry.lock().unwrap(), Some(true));
    // The refusing holders were asked, and their payloads were not announced as chunks.
    assert_eq!(empty.requests(), vec!["REQUEST_CHUNK,2", "REQUEST_CHUNK,2"]);
    let nf: HashSet<String> = not_found.requests().into_iter().collect();
    assert_eq!(
        nf,
        HashSet::from(["REQUEST_CHUNK,2".to_string(), "REQUEST_CHUNK,3".to_string()])
    );
    // Chunk 3 and the second try of chunk 2 used the next holder without asking again.
    assert_eq!(ft.count("WHERE_CHUNK,2"), 2);
    assert_eq!(ft.count("WHERE_CHUNK,3"), 1);
    assert_eq!(ft.count(&lc(2, own)), 1);
    assert_eq!(ft.count(&lc(3, own)), 1);
}

#[test]
fn client_fetches_from_the_next_holder_after_a_peer_resets_mid_chunk() {
    let size = |_| 256 * 1024;
    let reset = FakePeer::start(PeerMode::HalfThenReset(chunk_data(2, size(2))));
    let good = FakePeer::start(serving(size));
    let (pr, pg) = (reset.port, good.port);
    // idx 2 over two holders: the first listed is tried first.
    let ft = FakeTracker::start(move |i, _| holders(i, &[pr, pg]));
    let tmp = tempfile::tempdir().unwrap();
    let folder = make_folder(tmp.path(), "c", 2, &[1], size);
    let (c, _) = run_to_completion(tmp.path(), &folder, ft.port, 20);
    assert_eq!(reset.conns(), 1, "the resetting holder was not tried first");
    assert_eq!(good.requests(), vec!["REQUEST_CHUNK,2"]);
    assert_eq!(ft.count("WHERE_CHUNK,2"), 1);
    assert_complete(&folder, 2, size);
    assert!(c.stdout.text().contains(&format!(
        "chunk 2 received from localhost:{pg} (262144 bytes)"
    )));
}

#[test]
fn client_exits_1_with_one_error_line_when_local_chunks_has_no_lastchunk() {
    let ft = FakeTracker::start(|i, _| unknown(i));
    let (tmp, folder) = client_dir(2, &[1]);
    std::fs::write(folder.join("local_chunks.txt"), "1,chunk_1\n2,chunk_2\n").unwrap();
    let args = [
        "p2ptracker",
        "client",
        "-folder",
        folder.to_str().unwrap(),
        "-transfer_port",
        "0",
        "-name",
        "c1",
        "--tracker",
        &format!("127.0.0.1:{}", ft.port),
        "--pace-ms",
        "0",
    ];
    let mut c = Proc::start_env(tmp.path(), &args, &[("RUST_LOG", "off")]);
    assert_eq!(c.wait_exit(10), Some(1));
    thread::sleep(Duration::from_millis(100));
    let err = c.stderr.text();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(lines[0].contains("LASTCHUNK"), "{err}");
    assert!(ft.texts().is_empty());
}

#[test]
fn client_warns_about_a_bad_local_chunks_line_and_continues() {
    let ft = FakeTracker::start(|i, _| unknown(i));
    let (tmp, folder) = client_dir(3, &[1]);
    // Line 3 names a file outside the folder: refused by the sanitiser, never served.
    std::fs::write(tmp.path().join("secret"), b"outside the folder").unwrap();
    std::fs::write(
        folder.join("local_chunks.txt"),
        "1,chunk_1\nnonsense\n2,../secret\n3,gone.bin\n3,LASTCHUNK\n",
    )
    .unwrap();
    let (c, own) = start_client(tmp.path(), &folder, "c1", ft.port, 0, &[]);
    c.wait_stderr("warning: local_chunks.txt line 2 ignored", 10);
    c.wait_stderr("warning: local_chunks.txt line 3 ignored", 10);
    // A listed file that is missing makes its chunk missing, with a warning naming the line.
    let err = c.wait_stderr("gone.bin", 10);
    assert!(
        err.lines()
            .any(|l| l.starts_with("warning: ") && l.contains("line 4") && l.contains("gone.bin")),
        "{err}"
    );
    wait_for("a WHERE_CHUNK round", 10, || ft.wheres().len() >= 2);
    assert_eq!(
        &ft.texts()[..3],
        &[lc(1, own), "WHERE_CHUNK,2".into(), "WHERE_CHUNK,3".into()]
    );
    assert!(raw_request(own, b"REQUEST_CHUNK,2").is_empty());
    assert_eq!(
        raw_request(own, b"REQUEST_CHUNK,1"),
        chunk_data(1, default_size(1))
    );
}

#[test]
fn client_usage_errors_exit_2_and_unusable_folders_exit_1_with_one_error_line() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = make_folder(tmp.path(), "c", 2, &[1], default_size);
    let f = folder.to_str().unwrap();
    let missing = tmp.path().join("nope");
    let m = missing.to_str().unwrap();
    let empty = tmp.path().join("empty"); // a folder without local_chunks.txt
    std::fs::create_dir(&empty).unwrap();
    let e = empty.to_str().unwrap();
    let long = "n".repeat(65);
    let cases: Vec<(Vec<&str>, i32)> = vec![
        (vec!["-folder", f, "-transfer_port", "0", "-name", "a,b"], 2),
        (vec!["-folder", f, "-transfer_port", "0", "-name", "a b"], 2),
        (vec!["-folder", f, "-transfer_port", "0", "-name", ""], 2),
        (vec!["-folder", f, "-transfer_port", "0", "-name", &long], 2),
        (vec!["-folder", f, "-transfer_port", "0"], 2),
        (vec!["-folder", f, "-transfer_port", "x", "-name", "a"], 2),
        (vec!["-folder", m, "-transfer_port", "0", "-name", "a"], 1),
        (vec!["-folder", e, "-transfer_port", "0", "-name", "a"], 1),
    ];
    for (extra, code) in cases {
        let mut args = vec!["p2ptracker", "client"];
        args.extend(extra.iter().copied());
        args.extend(["--tracker", "127.0.0.1:9", "--pace-ms", "0"]);
        let mut p = Proc::start_env(tmp.path(), &args, &[("RUST_LOG", "off")]);
        assert_eq!(p.wait_exit(10), Some(code), "{args:?}");
        thread::sleep(Duration::from_millis(100));
        let err = p.stderr.text();
        // Usage errors show clap's whole message (error line, usage tip); others one line.
        if code == 1 {
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        }
        assert!(err.starts_with("error: "), "{args:?}: {err}");
    }
}

#[test]
fn client_reconnects_and_reannounces_after_tracker_restart() {
    let peer = FakePeer::start(serving(default_size));
    let pp = peer.port;
    // The first connection is dropped when it asks; the next gets answers.
    let ft = FakeTracker::start(move |i, nth| {
        if nth == 0 {
            Answer::Close
        } else {
            holders(i, &[pp])
        }
    });
    let (tmp, folder) = client_dir(3, &[1, 2]);
    let (c, own) = start_client(tmp.path(), &folder, "c1", ft.port, 0, &[]);
    c.wait_stdout(&all_present(3), 20);
    ft.wait_count(&lc(3, own), 1, 5);
    assert_eq!(
        ft.texts_on(0),
        vec![lc(1, own), lc(2, own), "WHERE_CHUNK,3".into()]
    );
    assert_eq!(
        ft.texts_on(1),
        vec![lc(1, own), lc(2, own), "WHERE_CHUNK,3".into(), lc(3, own)]
    );
    // Dropped again while idle after completion: back, with every held chunk.
    ft.drop_all();
    wait_for("a third connection with every chunk", 10, || {
        ft.texts_on(2).len() >= 3
    });
    assert_eq!(ft.texts_on(2), vec![lc(1, own), lc(2, own), lc(3, own)]);
}

#[test]
fn client_waits_for_a_tracker_that_is_down_at_start() {
    let port = free_tcp_port();
    let (tmp, folder) = client_dir(2, &[1]);
    let (c, own) = start_client(tmp.path(), &folder, "c1", port, 0, &[]);
    c.wait_stderr(&format!("waiting for tracker at 127.0.0.1:{port}"), 10);
    // Chunks are served meanwhile.
    assert_eq!(
        raw_request(own, b"REQUEST_CHUNK,1"),
        chunk_data(1, default_size(1))
    );
    let ft = FakeTracker::start_on(
        TcpListener::bind(("127.0.0.1", port)).unwrap(),
        Arc::new(|i, _| unknown(i)),
    );
    ft.wait_count("WHERE_CHUNK,2", 1, 10);
    assert_eq!(ft.texts()[0], lc(1, own));
    assert_eq!(
        c.stderr.text().matches("waiting for tracker").count(),
        1,
        "{}",
        c.stderr.text()
    );
}

#[test]
fn client_logs_local_chunks_where_chunk_and_request_chunk_exactly() {
    let peer = FakePeer::start(serving(default_size));
    let pp = peer.port;
    let ft = FakeTracker::start(move |i, _| holders(i, &[pp]));
    let (tmp, folder) = client_dir(2, &[1]);
    let (_, own) = run_to_completion(tmp.path(), &folder, ft.port, 20);
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("logs.log")).unwrap(),
        format!(
            "c1,LOCAL_CHUNKS,1,localhost,{own}\n\
             c1,WHERE_CHUNK,2\n\
             c1,REQUEST_CHUNK,2,localhost,{pp}\n\
             c1,LOCAL_CHUNKS,2,localhost,{own}\n"
        )
    );
}

/// Checks every `logs.log` line of a swarm: known entity, known keyword, right field count,
/// indices in range, ports of known clients.
fn check_swarm_log(text: &str, total: u32, clients: &HashMap<String, u16>) -> usize {
    assert!(text.ends_with('\n'));
    let ports: HashSet<u16> = clients.values().copied().collect();
    let idx_ok = |s: &str| s.parse::<u32>().is_ok_and(|i| (1..=total).contains(&i));
    let port_ok = |s: &str| s.parse::<u16>().is_ok_and(|p| ports.contains(&p));
    let mut n = 0;
    for line in text.lines() {
        n += 1;
        assert!(!line.contains(' ') && !line.is_empty(), "{line:?}");
        let f: Vec<&str> = line.split(',').collect();
        assert!(f.len() >= 3, "{line:?}");
        assert!(idx_ok(f[2]), "{line:?}");
        if f[0] == "P2PTracker" {
            match f[1] {
                "LOCAL_CHUNKS" => {
                    assert!(
                        f.len() == 5 && f[3] == "localhost" && port_ok(f[4]),
                        "{line:?}"
                    )
                }
                "WHERE_CHUNK" | "CHUNK_LOCATION_UNKNOWN" => assert_eq!(f.len(), 3, "{line:?}"),
                "GET_CHUNK_FROM" => {
                    assert!(f.len() >= 5 && f.len() % 2 == 1, "{line:?}");
                    for pair in f[3..].chunks(2) {
                        assert!(pair[0] == "localhost" && port_ok(pair[1]), "{line:?}");
                    }
                }
                _ => panic!("unknown tracker line {line:?}"),
            }
        } else {
            let own = *clients
                .get(f[0])
                .unwrap_or_else(|| panic!("unknown entity in {line:?}"));
            match f[1] {
                "LOCAL_CHUNKS" => assert!(
                    f.len() == 5 && f[3] == "localhost" && f[4] == own.to_string(),
                    "{line:?}"
                ),
                "WHERE_CHUNK" => assert_eq!(f.len(), 3, "{line:?}"),
                "REQUEST_CHUNK" => assert!(
                    f.len() == 5 && f[3] == "localhost" && port_ok(f[4]) && f[4] != own.to_string(),
                    "{line:?}"
                ),
                _ => panic!("unknown client line {line:?}"),
            }
        }
    }
    n
}

#[test]
fn concurrent_clients_share_logs_log_without_torn_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let (_t, port) = start_tracker(tmp.path());
    let total = 12;
    let mut procs = Vec::new();
    let mut names = HashMap::new();
    for k in 0..4u32 {
        let name = format!("peer{k}");
        let held: Vec<u32> = (1..=total).filter(|i| i % 4 == k).collect();
        let folder = make_folder(tmp.path(), &name, total, &held, default_size);
        let (p, own) = start_client(tmp.path(), &folder, &name, port, 0, &[]);
        names.insert(name, own);
        procs.push((p, folder));
    }
    for (p, folder) in &procs {
        p.wait_stdout(&all_present(total), 60);
        assert_complete(folder, total, default_size);
    }
    let text = std::fs::read_to_string(tmp.path().join("logs.log")).unwrap();
    let n = check_swarm_log(&text, total, &names);
    // Each client announced 12 chunks and the tracker logged each: at least 96 lines.
    assert!(n >= 96, "{n} lines");
    for name in names.keys() {
        let own = text
            .lines()
            .filter(|l| l.starts_with(&format!("{name},LOCAL_CHUNKS,")))
            .count();
        assert!(own >= total as usize, "{name}: {own}");
        assert!(text.contains(&format!("{name},REQUEST_CHUNK,")));
    }
}

#[test]
fn client_keeps_serving_after_completion_and_exit_when_complete_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let (_t, port) = start_tracker(tmp.path());
    let a = make_folder(tmp.path(), "A", 3, &[1, 2], default_size);
    let b = make_folder(tmp.path(), "B", 3, &[3], default_size);
    let c = make_folder(tmp.path(), "C", 3, &[], default_size);
    let (mut pa, aport) = start_client(tmp.path(), &a, "A", port, 0, &[]);
    let (_pb, _) = start_client(tmp.path(), &b, "B", port, 0, &[]);
    let (mut pc, _) = start_client(tmp.path(), &c, "C", port, 0, &["--exit-when-complete"]);
    assert_eq!(pc.wait_exit(60), Some(0));
    assert_complete(&c, 3, default_size);
    let out = pc.stdout.text();
    assert!(out.contains(&format!("all 3 chunks present in {}", c.display())));
    assert!(!out.contains("serving chunks"), "{out}");
    let out = pa.wait_stdout(
        &format!("serving chunks on localhost:{aport} until Ctrl-C"),
        60,
    );
    assert!(out.contains(&format!("all 3 chunks present in {}", a.display())));
    assert!(out.contains("chunk 3 received from localhost:"), "{out}");
    assert_complete(&a, 3, default_size);
    thread::sleep(Duration::from_millis(300));
    assert!(pa.child.try_wait().unwrap().is_none(), "A exited");
    for i in 1..=3 {
        assert_eq!(
            raw_request(aport, format!("REQUEST_CHUNK,{i}").as_bytes()),
            chunk_data(i, default_size(i))
        );
    }
    pa.interrupt();
    assert_eq!(pa.wait_exit(10), Some(0));
}

#[test]
fn client_chunk_server_closes_hostile_requests_without_data() {
    let ft = FakeTracker::start(|i, _| unknown(i));
    let (tmp, folder) = client_dir(2, &[1, 2]);
    std::fs::write(folder.join("secret.txt"), b"do not serve").unwrap();
    let (c, own) = start_client(tmp.path(), &folder, "c1", ft.port, 0, &[]);
    c.wait_stdout("serving chunks", 10);
    let mut big = b"REQUEST_CHUNK,".to_vec();
    big.extend(std::iter::repeat_n(b'9', 4096 - big.len()));
    let hostile: Vec<Vec<u8>> = vec![
        b"REQUEST_CHUNK,../../etc/passwd".to_vec(),
        b"REQUEST_CHUNK,../c/chunk_1".to_vec(),
        b"REQUEST_CHUNK,secret.txt".to_vec(),
        b"REQUEST_CHUNK,local_chunks.txt".to_vec(),
        b"REQUEST_CHUNK,99999".to_vec(),
        b"REQUEST_CHUNK,3".to_vec(),
        b"REQUEST_CHUNK,0".to_vec(),
        b"REQUEST_CHUNK,-1".to_vec(),
        b"REQUEST_CHUNK,01".to_vec(),
        b"REQUEST_CHUNK,1,2".to_vec(),
        b"REQUEST_CHUNK".to_vec(),
        big,
        vec![b'A'; 4096],
        b"GET / HTTP/1.0\r\n\r\n".to_vec(),
        b"\xff\xfe\x00garbage".to_vec(),
    ];
    for req in &hostile {
        assert!(
            raw_request(own, req).is_empty(),
            "data sent for {:?}",
            String::from_utf8_lossy(&req[..req.len().min(40)])
        );
    }
    // Still serving valid requests (a trailing newline is tolerated).
    assert_eq!(
        raw_request(own, b"REQUEST_CHUNK,1"),
        chunk_data(1, default_size(1))
    );
    assert_eq!(
        raw_request(own, b"REQUEST_CHUNK,2\r\n"),
        chunk_data(2, default_size(2))
    );
}

#[test]
fn client_exits_0_on_ctrl_c_and_leaves_no_part_files() {
    let half_sent = Arc::new(AtomicBool::new(false));
    let gate = Arc::new(AtomicBool::new(false));
    let stall = FakePeer::start(PeerMode::Gated(
        chunk_data(2, 512 * 1024),
        half_sent.clone(),
        gate.clone(),
    ));
    let sp = stall.port;
    let ft = FakeTracker::start(move |i, _| holders(i, &[sp]));
    let (tmp, folder) = client_dir(2, &[1]);
    let (mut c, _) = start_client(tmp.path(), &folder, "c1", ft.port, 0, &[]);
    wait_for("half of chunk 2 sent", 10, || {
        half_sent.load(Ordering::SeqCst)
    });
    wait_for("chunk_2.part", 10, || folder.join("chunk_2.part").exists());
    c.interrupt();
    assert_eq!(c.wait_exit(10), Some(0));
    gate.store(true, Ordering::SeqCst);
    assert!(part_files(&folder).is_empty(), "{:?}", part_files(&folder));
    assert!(!folder.join("chunk_2").exists());
    assert_eq!(
        std::fs::read_to_string(folder.join("local_chunks.txt")).unwrap(),
        "1,chunk_1\n2,LASTCHUNK\n"
    );
}

#[test]
fn client_exits_0_on_ctrl_c_while_waiting_for_a_silent_tracker() {
    let ft = FakeTracker::start(|_, _| Answer::Silent);
    let (tmp, folder) = client_dir(2, &[1]);
    let (mut c, _) = start_client(tmp.path(), &folder, "c1", ft.port, 0, &[]);
    ft.wait_count("WHERE_CHUNK,2", 1, 10);
    thread::sleep(Duration::from_millis(200));
    c.interrupt();
    // Well before the 10 s reply timeout.
    let deadline = Instant::now() + Duration::from_secs(4);
    while c.child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "Ctrl-C ignored while waiting for a reply"
        );
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(c.wait_exit(1), Some(0));
    assert!(part_files(&folder).is_empty());
}

// ---------------------------------------------------------------------------------------------
// System: swarms of real processes
// ---------------------------------------------------------------------------------------------

/// Starts a tracker and one client per `(name, held)` in one temp cwd, waits for every client to
/// hold all chunks and checks them byte for byte.
fn swarm(total: u32, layout: &[(&str, &[u32])], size: fn(u32) -> usize) -> Duration {
    let tmp = tempfile::tempdir().unwrap();
    let (_t, port) = start_tracker(tmp.path());
    let started = Instant::now();
    let mut procs = Vec::new();
    let mut names = HashMap::new();
    for (name, held) in layout {
        let folder = make_folder(tmp.path(), name, total, held, size);
        let (p, own) = start_client(tmp.path(), &folder, name, port, 0, &[]);
        names.insert(name.to_string(), own);
        procs.push((p, folder));
    }
    for (p, folder) in &procs {
        p.wait_stdout(&all_present(total), 90);
        assert_complete(folder, total, size);
    }
    let took = started.elapsed();
    let text = std::fs::read_to_string(tmp.path().join("logs.log")).unwrap();
    check_swarm_log(&text, total, &names);
    took
}

#[test]
fn more_than_one_client_can_be_invoked() {
    swarm(3, &[("A", &[1]), ("B", &[2]), ("C", &[3])], default_size);
}

#[test]
fn all_clients_make_progress_and_eventually_have_all_chunks() {
    swarm(
        5,
        &[("A", &[1, 2]), ("B", &[3, 4]), ("C", &[5, 1])],
        default_size,
    );
}

#[test]
fn clients_finish_in_reasonable_time() {
    let held: Vec<Vec<u32>> = (0..5u32)
        .map(|k| (1..=20).filter(|i| i % 5 == k).collect())
        .collect();
    let layout: Vec<(&str, &[u32])> = ["c0", "c1", "c2", "c3", "c4"]
        .iter()
        .zip(&held)
        .map(|(n, h)| (*n, h.as_slice()))
        .collect();
    let took = swarm(20, &layout, |_| 32 * 1024);
    // A generous bound: with --pace-ms 0 this takes a few seconds (polling rounds are 1 s).
    assert!(took < Duration::from_secs(60), "{took:?}");
}

#[test]
fn clients_upload_and_download_at_the_same_time() {
    let tmp = tempfile::tempdir().unwrap();
    let (_t, port) = start_tracker(tmp.path());
    let size = |_| 1024 * 1024;
    let half_sent = Arc::new(AtomicBool::new(false));
    let gate = Arc::new(AtomicBool::new(false));
    // A holder of chunk 2 in the test that stops half way until we let it finish.
    let holder = FakePeer::start(PeerMode::Gated(
        chunk_data(2, size(2)),
        half_sent.clone(),
        gate.clone(),
    ));
    let mut announcer = Raw::connect(port);
    announcer.announce(2, "localhost", holder.port);
    assert_eq!(
        announcer.ask("2"),
        format!("GET_CHUNK_FROM,2,localhost,{}", holder.port)
    );
    let x = make_folder(tmp.path(), "X", 2, &[1], size);
    let (px, xport) = start_client(tmp.path(), &x, "X", port, 0, &[]);
    wait_for("X downloading chunk 2", 20, || {
        half_sent.load(Ordering::SeqCst) && x.join("chunk_2.part").exists()
    });
    // While X is downloading chunk 2, it uploads chunk 1.
    assert_eq!(
        raw_request(xport, b"REQUEST_CHUNK,1"),
        chunk_data(1, size(1))
    );
    assert!(x.join("chunk_2.part").exists() && !x.join("chunk_2").exists());
    gate.store(true, Ordering::SeqCst);
    px.wait_stdout(
        &format!(
            "chunk 2 received from localhost:{} (1048576 bytes)",
            holder.port
        ),
        20,
    );
    px.wait_stdout(&all_present(2), 10);
    assert_complete(&x, 2, size);
}

#[test]
fn small_chunk_files_succeed() {
    swarm(6, &[("A", &[1, 2, 3]), ("B", &[4, 5]), ("C", &[6])], |i| {
        [1, 2, 15, 100, 1000, 1024][i as usize - 1]
    });
}

#[test]
fn large_chunk_files_succeed() {
    swarm(3, &[("A", &[1]), ("B", &[2]), ("C", &[3])], |_| {
        8 * 1024 * 1024
    });
}

#[test]
fn all_clients_finish_when_only_some_clients_with_all_chunks_join() {
    swarm(
        6,
        &[("A", &[1, 2, 3, 4, 5, 6]), ("B", &[]), ("C", &[])],
        default_size,
    );
}

#[test]
fn a_client_that_joins_late_gets_every_chunk() {
    let tmp = tempfile::tempdir().unwrap();
    let (_t, port) = start_tracker(tmp.path());
    let a = make_folder(tmp.path(), "A", 4, &[1, 2], default_size);
    let b = make_folder(tmp.path(), "B", 4, &[3, 4], default_size);
    let (pa, _) = start_client(tmp.path(), &a, "A", port, 0, &[]);
    let (pb, _) = start_client(tmp.path(), &b, "B", port, 0, &[]);
    pa.wait_stdout("serving chunks", 60);
    pb.wait_stdout("serving chunks", 60);
    let late = make_folder(tmp.path(), "L", 4, &[], default_size);
    let (mut pl, _) = start_client(tmp.path(), &late, "L", port, 0, &["--exit-when-complete"]);
    assert_eq!(pl.wait_exit(60), Some(0));
    assert_complete(&late, 4, default_size);
}

#[test]
fn clients_reconnect_reannounce_and_finish_after_the_tracker_restarts_on_the_same_port() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let port_s = port.to_string();
    let tracker_args = ["p2ptracker", "tracker", "--port", port_s.as_str()];
    let mut t = Proc::start(tmp.path(), &tracker_args);
    assert_eq!(listen_port(&t), port);
    let a = make_folder(tmp.path(), "A", 3, &[1], default_size);
    let b = make_folder(tmp.path(), "B", 3, &[2], default_size);
    let (pa, _) = start_client(tmp.path(), &a, "A", port, 0, &[]);
    let (pb, _) = start_client(tmp.path(), &b, "B", port, 0, &[]);
    // Mid-run: A and B swapped their chunks, nobody has chunk 3 yet.
    pa.wait_stdout("chunk 2 received", 30);
    pb.wait_stdout("chunk 1 received", 30);
    t.kill();
    thread::sleep(Duration::from_millis(300));
    let _t2 = Proc::start(tmp.path(), &tracker_args);
    assert_eq!(listen_port(&_t2), port);
    // The new tracker knows nothing; C can only get 1 and 2 if A and B re-announced them.
    let c = make_folder(tmp.path(), "C", 3, &[3], default_size);
    let (pc, _) = start_client(tmp.path(), &c, "C", port, 0, &[]);
    for (p, folder) in [(&pa, &a), (&pb, &b), (&pc, &c)] {
        p.wait_stdout(&all_present(3), 60);
        assert_complete(folder, 3, default_size);
    }
}

// ---------------------------------------------------------------------------------------------
// Hardening and everyday use (issues 13, 14, 15, 17)
// ---------------------------------------------------------------------------------------------

/// Names of this process's threads that start with `prefix` (Linux shows 15 bytes of a name),
/// the main thread (named after the test binary) left out.
fn threads_named(prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    let me = std::process::id().to_string();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        if task.file_name().to_string_lossy() == me {
            continue;
        }
        if let Ok(comm) = std::fs::read_to_string(task.path().join("comm")) {
            if comm.trim_end().starts_with(prefix) {
                names.push(comm.trim_end().to_string());
            }
        }
    }
    names
}

#[test]
fn tracker_caps_connections_logs_once_and_serves_again_when_one_closes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = Proc::start(
        tmp.path(),
        &[
            "p2ptracker",
            "tracker",
            "--port",
            "0",
            "-max-connections",
            "3",
        ],
    );
    let port = listen_port(&t);
    let mut held: Vec<Raw> = (0..3).map(|_| Raw::connect(port)).collect();
    for (k, c) in held.iter_mut().enumerate() {
        assert_eq!(
            c.ask(&format!("{}", k + 1)),
            format!("CHUNK_LOCATION_UNKNOWN,{}", k + 1)
        );
    }
    // Beyond the cap a connection is closed at once, without an answer.
    for _ in 0..5 {
        let mut extra = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let _ = extra.write_all(b"WHERE_CHUNK,1");
        extra
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 64];
        // Closed at once without an answer: EOF, or a reset for the unread question.
        match extra.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            other => panic!("expected the connection closed, got {other:?}"),
        }
    }
    let err = t.wait_stderr("connections open (--max-connections)", 10);
    assert_eq!(
        err.matches("connections open (--max-connections)").count(),
        1,
        "{err}"
    );
    drop(held.pop());
    let mut again = None;
    wait_for("a slot frees", 10, || {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let _ = c.write_all(b"WHERE_CHUNK,9");
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 64];
        match c.read(&mut buf) {
            Ok(n) if n > 0 => {
                again = Some(String::from_utf8_lossy(&buf[..n]).into_owned());
                true
            }
            _ => false,
        }
    });
    assert_eq!(again.unwrap(), "CHUNK_LOCATION_UNKNOWN,9");
    t.kill();
}

#[test]
fn tracker_numeric_options_are_validated_with_their_range() {
    let tmp = tempfile::tempdir().unwrap();
    for (args, needle) in [
        (vec!["--max-connections", "0"], "--max-connections"),
        (vec!["--max-connections", "100001"], "1..=100000"),
        (vec!["--port", "65536"], "--port"),
        (vec!["--bind", "nowhere"], "--bind"),
    ] {
        let mut all = vec!["p2ptracker", "tracker"];
        all.extend(args.iter().copied());
        let mut p = Proc::start(tmp.path(), &all);
        assert_eq!(p.wait_exit(10), Some(2), "{all:?}");
        let err = p.wait_stderr("error: ", 5);
        let first = err.lines().next().unwrap_or("");
        assert!(
            first.starts_with("error: ") && first.contains(needle),
            "{all:?}: {err}"
        );
    }
    assert!(!tmp.path().join("logs.log").exists());
}

#[test]
fn tracker_caps_the_unknown_reply_to_a_huge_index_at_1024_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let (_t, port) = start_tracker(tmp.path());
    let mut c = Raw::connect(port);
    let reply = c.ask(&"9".repeat(5000));
    assert_eq!(reply.len(), 1024);
    assert!(reply.starts_with("CHUNK_LOCATION_UNKNOWN,999"));
    assert_eq!(
        c.ask("1"),
        "CHUNK_LOCATION_UNKNOWN,1",
        "the connection stays usable"
    );
}

#[test]
fn tracker_ignores_announced_addresses_that_are_not_host_names_or_ips() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut t, port) = start_tracker(tmp.path());
    let mut c = Raw::connect(port);
    c.announce(1, "1.2.3.4;rm", 7001);
    c.send("\n");
    c.announce(1, "\0", 7002);
    c.send("\n");
    c.announce(1, "lab-pc-7.example.edu", 7003);
    c.send("\n");
    c.announce(1, "10.0.0.2", 7004);
    assert_eq!(
        c.ask("1"),
        "GET_CHUNK_FROM,1,lab-pc-7.example.edu,7003,10.0.0.2,7004"
    );
    let err = t.wait_stderr("neither a host name nor an IP address", 10);
    assert!(err.contains("1.2.3.4;rm"), "{err}");
    t.kill();
}

#[test]
fn client_refuses_a_folder_another_client_is_using() {
    let ft = FakeTracker::start(|i, _| unknown(i));
    let (tmp, folder) = client_dir(2, &[1]);
    let (mut first, _) = start_client(tmp.path(), &folder, "c1", ft.port, 0, &[]);
    let f = folder.to_str().unwrap();
    let tracker = format!("127.0.0.1:{}", ft.port);
    let mut second = Proc::start(
        tmp.path(),
        &[
            "p2ptracker",
            "client",
            "-folder",
            f,
            "-transfer_port",
            "0",
            "-name",
            "c2",
            "-tracker",
            &tracker,
        ],
    );
    assert_eq!(second.wait_exit(10), Some(1));
    let err = second.stderr.text();
    assert!(
        err.contains(&format!(
            "error: folder {f} is in use by another client (pid {})",
            first.child.id()
        )),
        "{err}"
    );
    first.interrupt();
    assert_eq!(first.wait_exit(10), Some(0));
    assert!(!folder.join(".peershare.lock").exists(), "removed on exit");
    // A killed client's lock dies with it.
    let (mut third, _) = start_client(tmp.path(), &folder, "c3", ft.port, 0, &[]);
    third.kill();
    let (mut fourth, _) = start_client(tmp.path(), &folder, "c4", ft.port, 0, &[]);
    fourth.interrupt();
    assert_eq!(fourth.wait_exit(10), Some(0));
    assert_eq!(
        std::fs::read_to_string(folder.join("local_chunks.txt")).unwrap(),
        "1,chunk_1\n2,LASTCHUNK\n"
    );
}

#[test]
fn client_warns_once_about_a_dead_holder_and_fetches_from_the_live_one() {
    let live = FakePeer::start(serving(default_size));
    let dead = free_tcp_port();
    let lp = live.port;
    // Dead holder listed first for every chunk, as a tracker keeps holders that left.
    let ft = FakeTracker::start(move |i, _| holders(i, &[dead, lp]));
    let (tmp, folder) = client_dir(12, &[]);
    let (mut c, _) = start_client(
        tmp.path(),
        &folder,
        "c1",
        ft.port,
        0,
        &["--exit-when-complete"],
    );
    assert_eq!(c.wait_exit(30), Some(0), "{}", c.stderr.text());
    assert_complete(&folder, 12, default_size);
    let err = c.stderr.text();
    let refusal = format!("localhost:{dead} refused a connection");
    assert_eq!(err.matches(&refusal).count(), 1, "{err}");
    assert!(
        !err.contains(&format!("from localhost:{dead} failed")),
        "no per-chunk warning for the dead holder: {err}"
    );
}

#[test]
fn every_client_option_takes_one_dash_and_help_shows_the_assignments_names() {
    let ft = FakeTracker::start(|i, _| unknown(i));
    let (tmp, folder) = client_dir(1, &[1]);
    let f = folder.to_str().unwrap();
    let tracker = format!("127.0.0.1:{}", ft.port);
    let mut c = Proc::start(
        tmp.path(),
        &[
            "p2ptracker",
            "client",
            "-folder",
            f,
            "-transfer_port",
            "0",
            "-name",
            "c1",
            "-tracker",
            &tracker,
            "-pace-ms",
            "0",
            "-exit-when-complete",
            "-linger",
            "0",
            "-bind",
            "127.0.0.1",
            "-advertise",
            "localhost",
        ],
    );
    assert_eq!(c.wait_exit(10), Some(0), "{}", c.stderr.text());
    let mut h = Proc::start(tmp.path(), &["p2ptracker", "client", "--help"]);
    assert_eq!(h.wait_exit(10), Some(0));
    let help = h.stdout.text();
    assert!(
        help.contains("-folder <path> -transfer_port <port> -name <name>"),
        "{help}"
    );
    for bad in [
        vec!["-pace-ms", "60001"],
        vec!["-linger", "5"], // without -exit-when-complete
        vec!["-advertise", "a;b"],
    ] {
        let mut args = vec![
            "p2ptracker",
            "client",
            "-folder",
            f,
            "-transfer_port",
            "0",
            "-name",
            "c1",
        ];
        args.extend(bad.iter().copied());
        let mut p = Proc::start(tmp.path(), &args);
        assert_eq!(p.wait_exit(10), Some(2), "{args:?}");
        assert!(
            p.wait_stderr("error: ", 5).starts_with("error: "),
            "{args:?}"
        );
    }
}

#[test]
fn client_lingers_after_completion_then_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let (_t, tport) = start_tracker(tmp.path());
    let a = make_folder(tmp.path(), "a", 2, &[1, 2], default_size);
    let b = make_folder(tmp.path(), "b", 2, &[], default_size);
    let (mut ca, _) = start_client(
        tmp.path(),
        &a,
        "A",
        tport,
        0,
        &["--exit-when-complete", "--linger", "60"],
    );
    ca.wait_stdout("for 60 s more", 10);
    // A is complete from the start but still serves: B joins later and finishes.
    let (mut cb, _) = start_client(tmp.path(), &b, "B", tport, 0, &["--exit-when-complete"]);
    assert_eq!(cb.wait_exit(30), Some(0), "{}", cb.stderr.text());
    assert_complete(&b, 2, default_size);
    thread::sleep(Duration::from_millis(300));
    assert!(ca.child.try_wait().unwrap().is_none(), "still lingering");
    ca.interrupt();
    assert_eq!(ca.wait_exit(10), Some(0));
}

#[test]
fn split_writes_layouts_and_join_reassembles_and_checks_completeness() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("movie.bin");
    let data = pseudo_random(100_000, 5);
    std::fs::write(&src, &data).unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let mut p = Proc::start(
        tmp.path(),
        &[
            "p2ptracker",
            "split",
            src.to_str().unwrap(),
            "--chunks",
            "4",
            "--into",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--layout",
            "round-robin",
        ],
    );
    assert_eq!(p.wait_exit(10), Some(0), "{}", p.stderr.text());
    assert_eq!(
        std::fs::read_to_string(b.join("local_chunks.txt")).unwrap(),
        "2,chunk_2\n4,chunk_4\n4,LASTCHUNK\n"
    );
    let out = tmp.path().join("out.bin");
    let mut j = Proc::start(
        tmp.path(),
        &[
            "p2ptracker",
            "join",
            a.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(j.wait_exit(10), Some(1));
    j.wait_stderr("2 of 4 chunks missing (chunk 2, 4)", 5);
    assert!(!out.exists());
    // A swarm of the two folders completes; then join gives the file back.
    let (_t, tport) = start_tracker(tmp.path());
    let (cb, _) = start_client(tmp.path(), &b, "B", tport, 0, &[]);
    let (mut ca, _) = start_client(tmp.path(), &a, "A", tport, 0, &["--exit-when-complete"]);
    assert_eq!(ca.wait_exit(30), Some(0), "{}", ca.stderr.text());
    cb.interrupt();
    let mut j = Proc::start(
        tmp.path(),
        &[
            "p2ptracker",
            "join",
            a.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(j.wait_exit(10), Some(0), "{}", j.stderr.text());
    assert_eq!(std::fs::read(&out).unwrap(), data);
    let mut bad = Proc::start(
        tmp.path(),
        &[
            "p2ptracker",
            "split",
            src.to_str().unwrap(),
            "--chunks",
            "0",
            "--into",
            "x",
        ],
    );
    assert_eq!(bad.wait_exit(10), Some(2));
    assert!(!tmp.path().join("x").exists());
}

#[test]
fn tracker_and_client_in_process_leave_no_thread_behind_when_stopped() {
    use peershare::core::shutdown::Shutdown as Stop;
    use peershare::p2ptracker::{client, tracker};
    let stop = Stop::new();
    let t = tracker::start(
        tracker::TrackerConfig::default(),
        TcpListener::bind("127.0.0.1:0").unwrap(),
        &stop,
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let full = make_folder(tmp.path(), "full", 3, &[1, 2, 3], default_size);
    let empty = make_folder(tmp.path(), "empty", 3, &[], default_size);
    let mut seeder = client::ClientConfig::new(full, "S", t.local_addr());
    seeder.pace = Duration::ZERO;
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut leecher = client::ClientConfig::new(empty.clone(), "L", t.local_addr());
    leecher.pace = Duration::ZERO;
    leecher.on_complete = Some(tx);
    let (s_stop, l_stop) = (stop.clone(), stop.clone());
    let s_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let l_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let s = thread::spawn(move || client::run(seeder, s_listener, &s_stop));
    let l = thread::spawn(move || client::run(leecher, l_listener, &l_stop));
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the leecher completes");
    assert!(!threads_named("p2ptracker-").is_empty());
    stop.trigger();
    assert!(s.join().unwrap().is_ok());
    assert!(l.join().unwrap().unwrap().complete);
    drop(t);
    assert_complete(&empty, 3, default_size);
    assert_eq!(threads_named("p2ptracker-"), Vec::<String>::new());
}

#[test]
fn client_bound_to_an_ip_answers_there_and_advertises_the_given_address() {
    let ft = FakeTracker::start(|i, _| unknown(i));
    let (tmp, folder) = client_dir(2, &[1]);
    let tracker = format!("127.0.0.1:{}", ft.port);
    let mut c = Proc::start(
        tmp.path(),
        &[
            "p2ptracker",
            "client",
            "-folder",
            folder.to_str().unwrap(),
            "-transfer_port",
            "0",
            "-name",
            "c1",
            "-tracker",
            &tracker,
            "-pace-ms",
            "0",
            "-bind",
            "127.0.0.2",
            "-advertise",
            "127.0.0.2",
        ],
    );
    let text = c.wait_stderr("listening on 127.0.0.2:", 10);
    let rest = &text[text.find("listening on 127.0.0.2:").unwrap() + 23..];
    let port: u16 = rest
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap();
    let mut s = TcpStream::connect(("127.0.0.2", port)).unwrap();
    s.write_all(b"REQUEST_CHUNK,1").unwrap();
    assert_eq!(read_all_lenient(&mut s, 8), chunk_data(1, default_size(1)));
    drop(s);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "not on 127.0.0.1"
    );
    wait_for("the announcement", 10, || {
        ft.texts()
            .contains(&format!("LOCAL_CHUNKS,1,127.0.0.2,{port}"))
    });
    c.interrupt();
    assert_eq!(c.wait_exit(10), Some(0));
}

#[test]
fn trace_lines_parse_carry_their_fields_and_match_the_messages_sent() {
    use peershare::core::pyjson::{self, Json};
    let tmp = tempfile::tempdir().unwrap();
    let trace = tmp.path().join("swarm.trace");
    let tr = trace.to_str().unwrap();
    let mut t = Proc::start(
        tmp.path(),
        &["p2ptracker", "tracker", "--port", "0", "-trace", tr],
    );
    let tport = listen_port(&t);
    let a = make_folder(tmp.path(), "a", 3, &[1, 2, 3], default_size);
    let b = make_folder(tmp.path(), "b", 3, &[], default_size);
    let (mut ca, _) = start_client(tmp.path(), &a, "A", tport, 0, &["-trace", tr]);
    ca.wait_stderr("connected to tracker", 10);
    let (mut cb, _) = start_client(
        tmp.path(),
        &b,
        "B",
        tport,
        0,
        &["-trace", tr, "--exit-when-complete"],
    );
    assert_eq!(cb.wait_exit(30), Some(0), "{}", cb.stderr.text());
    ca.interrupt();
    assert_eq!(ca.wait_exit(10), Some(0));
    t.kill();
    let log = std::fs::read_to_string(tmp.path().join("logs.log")).unwrap();
    let count_log = |prefix: &str| log.lines().filter(|l| l.starts_with(prefix)).count();
    let text = std::fs::read_to_string(&trace).unwrap();
    let mut lines = Vec::new();
    for line in text.lines() {
        let v = pyjson::parse(line.as_bytes(), 16).unwrap_or_else(|e| panic!("{line}: {e:?}"));
        for key in ["t_us", "process", "thread", "kind", "proto"] {
            assert!(v.get(key).is_some(), "{key} missing in {line}");
        }
        lines.push(v);
    }
    let s = |v: &Json, k: &str| match v.get(k) {
        Some(Json::String(s)) => s.clone(),
        _ => String::new(),
    };
    let count = |process: &str, kind: &str, dir: &str, msg_prefix: &str| {
        lines
            .iter()
            .filter(|v| {
                s(v, "process") == process
                    && s(v, "kind") == kind
                    && s(v, "dir") == dir
                    && s(v, "msg").starts_with(msg_prefix)
            })
            .count()
    };
    let tracker = "p2ptracker-tracker";
    assert_eq!(
        count(tracker, "message", "recv", "LOCAL_CHUNKS"),
        count_log("P2PTracker,LOCAL_CHUNKS,")
    );
    assert_eq!(
        count(tracker, "message", "recv", "WHERE_CHUNK"),
        count_log("P2PTracker,WHERE_CHUNK,")
    );
    assert_eq!(
        count(tracker, "message", "send", "GET_CHUNK_FROM")
            + count(tracker, "message", "send", "CHUNK_LOCATION_UNKNOWN"),
        count_log("P2PTracker,GET_CHUNK_FROM,") + count_log("P2PTracker,CHUNK_LOCATION_UNKNOWN,")
    );
    let b_role = "p2ptracker-client-B";
    assert_eq!(
        count(b_role, "message", "send", "REQUEST_CHUNK"),
        count_log("B,REQUEST_CHUNK,")
    );
    assert_eq!(
        count(b_role, "message", "send", "WHERE_CHUNK"),
        count_log("B,WHERE_CHUNK,")
    );
    assert_eq!(count(b_role, "transfer_end", "", "chunk "), 3);
    assert_eq!(
        count("p2ptracker-client-A", "message", "send", "chunk "),
        3,
        "the holder summarises what it sent"
    );
    assert!(!text.contains(&String::from_utf8_lossy(&chunk_data(1, 64))[..]));
}

/// A holder that dies mid-chunk: half the chunk, then its connection and its listener close,
/// as the kernel closes them for a process killed with `kill -9` (an orderly FIN).
fn dying_holder(data: Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        let mut buf = [0u8; 64];
        let _ = s.read(&mut buf);
        let _ = s.write_all(&data[..data.len() / 2]);
        drop(s);
        drop(listener);
    });
    port
}

#[test]
fn client_never_lists_or_announces_a_chunk_cut_short_by_a_dying_holder() {
    let dead = dying_holder(chunk_data(2, 256 * 1024));
    let ft = FakeTracker::start(move |i, _| holders(i, &[dead]));
    let (tmp, folder) = client_dir(2, &[1]);
    let (mut c, _) = start_client(tmp.path(), &folder, "c1", ft.port, 0, &[]);
    let err = c.wait_stderr(&format!("chunk 2 from localhost:{dead} failed"), 15);
    assert!(!folder.join("chunk_2").exists(), "{err}");
    assert!(part_files(&folder).is_empty());
    assert_eq!(
        std::fs::read_to_string(folder.join("local_chunks.txt")).unwrap(),
        "1,chunk_1\n2,LASTCHUNK\n"
    );
    assert!(!ft.texts().iter().any(|t| t.starts_with("LOCAL_CHUNKS,2,")));
    c.interrupt();
    assert_eq!(c.wait_exit(10), Some(0));
}

#[test]
fn idle_connections_to_a_client_do_not_delay_a_good_chunk_request() {
    let ft = FakeTracker::start(|i, _| unknown(i));
    let (tmp, folder) = client_dir(2, &[1]);
    let (_c, port) = start_client(tmp.path(), &folder, "c1", ft.port, 0, &[]);
    let idle: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    thread::sleep(Duration::from_millis(200));
    assert_eq!(
        raw_request(port, b"REQUEST_CHUNK,1"),
        chunk_data(1, default_size(1))
    );
    // Served while every idle connection still waits (before: after 15 of them timed out).
    for mut s in idle {
        s.set_nonblocking(true).unwrap();
        let mut b = [0u8; 1];
        match s.read(&mut b) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            other => panic!("an idle connection was already given up on: {other:?}"),
        }
    }
}

#[test]
fn after_kill_9_at_any_moment_every_listed_chunk_is_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let (_t, tport) = start_tracker(tmp.path());
    let size = |_| 256 * 1024;
    let total = 40;
    let all: Vec<u32> = (1..=total).collect();
    let seed = make_folder(tmp.path(), "seed", total, &all, size);
    let leech = make_folder(tmp.path(), "leech", total, &[], size);
    let (_s, _) = start_client(tmp.path(), &seed, "S", tport, 0, &[]);
    for round in 0..6u64 {
        let (mut c, _) = start_client(tmp.path(), &leech, "L", tport, 0, &[]);
        thread::sleep(Duration::from_millis(30 + round * 40));
        c.kill(); // SIGKILL
        let list = std::fs::read_to_string(leech.join("local_chunks.txt")).unwrap();
        for line in list.lines() {
            let (idx, name) = line.split_once(',').unwrap();
            if name == "LASTCHUNK" {
                continue;
            }
            let idx: u32 = idx.parse().unwrap();
            assert_eq!(
                std::fs::read(leech.join(name)).unwrap(),
                chunk_data(idx, size(idx)),
                "round {round}: listed chunk {idx} is not whole"
            );
        }
    }
    let (mut c, _) = start_client(tmp.path(), &leech, "L", tport, 0, &["--exit-when-complete"]);
    assert_eq!(c.wait_exit(30), Some(0), "{}", c.stderr.text());
    assert_complete(&leech, total, size);
}
