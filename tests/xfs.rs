//! Simple xFS end to end: real `peershare xfs` processes on 127.0.0.1 port 0, raw wire bytes,
//! and fake nodes written here that speak the wire (corrupting, slow, or streaming before their
//! `ACK` like the original node.py). Names follow the spec's §8 checklist.

mod support;

use peershare::core::digest::StreamHasher;
use peershare::xfs::files::Md5Hasher;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{pseudo_random, wait_for, Proc};

// ---------------------------------------------------------------------------------------------
// Helpers

fn md5_hex(data: &[u8]) -> String {
    let mut h = Box::<Md5Hasher>::default();
    h.update(data);
    h.finish_hex()
}

/// The address a process logged as `listening on <addr>`.
fn listen_addr(p: &Proc) -> SocketAddr {
    let text = p.wait_stderr("listening on ", 10);
    let line = text.lines().find(|l| l.contains("listening on ")).unwrap();
    line.rsplit("listening on ")
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn start_tracker(cwd: &Path) -> (Proc, SocketAddr) {
    start_tracker_on(cwd, 0)
}

fn start_tracker_on(cwd: &Path, port: u16) -> (Proc, SocketAddr) {
    let p = Proc::start(cwd, &["xfs", "tracker", "--port", &port.to_string()]);
    let addr = listen_addr(&p);
    (p, addr)
}

/// Starts a node sharing `cwd/dir` (created if missing) and waits for its registration reply.
fn start_node(cwd: &Path, dir: &str, tracker: SocketAddr) -> (Proc, SocketAddr) {
    std::fs::create_dir_all(cwd.join(dir)).unwrap();
    let p = Proc::start(
        cwd,
        &[
            "xfs",
            "node",
            "127.0.0.1",
            "0",
            dir,
            "--tracker",
            &tracker.to_string(),
            "--latency",
            "latency.txt",
        ],
    );
    let addr = listen_addr(&p);
    p.wait_stdout("ACK\n", 10);
    (p, addr)
}

/// One request on its own connection; the whole reply up to EOF (empty = closed without reply).
fn ask(addr: SocketAddr, msg: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    s.write_all(msg).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn ask_text(addr: SocketAddr, msg: &str) -> String {
    String::from_utf8(ask(addr, msg.as_bytes())).unwrap()
}

fn file_json(name: &str, data: &[u8]) -> String {
    format!(
        r#"{{"name": "{name}", "size": {}, "hash_val": "{}", "type": "file"}}"#,
        data.len(),
        md5_hex(data)
    )
}

fn node_json(id: &str, port: u16, files: &[String]) -> String {
    format!(
        r#"{{"id": "{id}", "status": 1, "ip": "127.0.0.1", "port": {port}, "load": 0, "filelist": {{"files": [{}], "node_id": "{id}", "node_port": null, "node_ip": null, "type": "filelist"}}, "type": "node"}}"#,
        files.join(", ")
    )
}

fn filelist_json(id: &str, port: Option<u16>, files: &[String]) -> String {
    let (p, ip) = match port {
        Some(p) => (p.to_string(), "\"127.0.0.1\"".to_string()),
        None => ("null".to_string(), "null".to_string()),
    };
    format!(
        r#"{{"files": [{}], "node_id": "{id}", "node_port": {p}, "node_ip": {ip}, "type": "filelist"}}"#,
        files.join(", ")
    )
}

fn register(tracker: SocketAddr, id: &str, port: u16, files: &[String]) {
    assert_eq!(ask_text(tracker, &node_json(id, port, files)), "ACK");
}

fn write_latency(cwd: &Path, lines: &[String]) {
    std::fs::write(cwd.join("latency.txt"), lines.join("\n") + "\n").unwrap();
}

/// Waits for an output line equal to `line` once leading prompts (`> `, printed by the console
/// whenever it is idle, so they land before async lines) are stripped.
fn wait_line(p: &Proc, line: &str, secs: u64) {
    wait_for(&format!("line {line:?}"), secs, || {
        p.stdout
            .text()
            .lines()
            .any(|l| l.trim_start_matches("> ") == line)
    });
}

fn count(p: &Proc, needle: &str) -> usize {
    p.stdout.text().matches(needle).count()
}

/// A listener that completes TCP handshakes (backlog) but never reads or answers.
fn silent_listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

#[derive(Clone, Copy, PartialEq)]
enum Serve {
    /// `ACK` at once, then the right bytes.
    Good,
    /// `ACK`, then the bytes with one flipped.
    Corrupt,
    /// `ACK`, then the bytes trickled until `release` is set.
    Slow,
    /// The original node.py: stream everything, then `ACK`.
    StreamBeforeAck,
    /// `ACK`, the right bytes, then 4 MiB more.
    TooLong,
}

/// A node written in the test, speaking the wire by hand.
struct FakeNode {
    port: u16,
    sends: Arc<AtomicUsize>,
    release: Arc<AtomicBool>,
}

impl FakeNode {
    /// Serves `name` = `data`; `load` answers getload (`None`: getload is closed unanswered).
    fn start(name: &str, data: Vec<u8>, load: Option<u64>, mode: Serve) -> FakeNode {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sends = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(AtomicBool::new(false));
        let (s2, r2) = (sends.clone(), release.clone());
        let data = Arc::new(data);
        let file = file_json(name, &data);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut c) = conn else { continue };
                let (sends, release, data, file) =
                    (s2.clone(), r2.clone(), data.clone(), file.clone());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 2048];
                    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let n = c.read(&mut buf).unwrap_or(0);
                    let req = String::from_utf8_lossy(&buf[..n]).trim().to_string();
                    let words: Vec<&str> = req.split_whitespace().collect();
                    match words.first().copied() {
                        Some("getload") => {
                            if let Some(l) = load {
                                let _ = c.write_all(l.to_string().as_bytes());
                            }
                        }
                        Some("updatelist") => {
                            let _ =
                                c.write_all(filelist_json("fake", Some(port), &[file]).as_bytes());
                        }
                        Some("send") if words.len() == 4 => {
                            sends.fetch_add(1, Ordering::SeqCst);
                            let to: SocketAddr =
                                format!("{}:{}", words[2], words[3]).parse().unwrap();
                            if mode != Serve::StreamBeforeAck {
                                let _ = c.write_all(b"ACK");
                            }
                            let Ok(mut d) = TcpStream::connect(to) else {
                                return;
                            };
                            match mode {
                                Serve::Good | Serve::StreamBeforeAck => {
                                    let _ = d.write_all(&data);
                                }
                                Serve::TooLong => {
                                    let _ = d.write_all(&data);
                                    let _ = d.write_all(&vec![7u8; 4 << 20]);
                                }
                                Serve::Corrupt => {
                                    let mut bad = data.to_vec();
                                    bad[0] ^= 0xff;
                                    let _ = d.write_all(&bad);
                                }
                                Serve::Slow => {
                                    let mut sent = 0;
                                    while sent < data.len() {
                                        if !release.load(Ordering::SeqCst) {
                                            let end = (sent + 16).min(data.len() - 1);
                                            let _ = d.write_all(&data[sent..end]);
                                            sent = end;
                                            std::thread::sleep(Duration::from_millis(20));
                                        } else {
                                            let _ = d.write_all(&data[sent..]);
                                            sent = data.len();
                                        }
                                    }
                                }
                            }
                            drop(d);
                            if mode == Serve::StreamBeforeAck {
                                let _ = c.write_all(b"ACK");
                            }
                        }
                        _ => {}
                    }
                });
            }
        });
        FakeNode {
            port,
            sends,
            release,
        }
    }

    fn sends(&self) -> usize {
        self.sends.load(Ordering::SeqCst)
    }
}

// ---------------------------------------------------------------------------------------------
// Tracker, raw wire

#[test]
fn tracker_acks_node_registration_and_filelist() {
    let t = tempfile::tempdir().unwrap();
    let (tp, tracker) = start_tracker(t.path());
    let f = file_json("a.txt", b"abc");
    let (_l, port) = silent_listener();
    assert_eq!(
        ask_text(tracker, &node_json("id-1", port, std::slice::from_ref(&f))),
        "ACK"
    );
    assert_eq!(
        ask_text(tracker, &filelist_json("id-1", Some(port), &[f])),
        "ACK"
    );
    let out = tp.wait_stdout("received data: b'{\"files\"", 5);
    assert!(out.contains("Connection address: ('127.0.0.1', "), "{out}");
    assert!(
        out.contains("received data: b'{\"id\": \"id-1\", \"status\": 1"),
        "{out}"
    );
}

#[test]
fn tracker_find_refreshes_nodes_and_returns_matching_nodes_in_registration_order() {
    let t = tempfile::tempdir().unwrap();
    let (_tp, tracker) = start_tracker(t.path());
    // Each fake node answers updatelist with "f.bin", which it did not register.
    let a = FakeNode::start("f.bin", b"data".to_vec(), Some(0), Serve::Good);
    let b = FakeNode::start("f.bin", b"data".to_vec(), Some(0), Serve::Good);
    let c = FakeNode::start("f.bin", b"data".to_vec(), Some(0), Serve::Good);
    register(tracker, "b", b.port, &[]);
    register(tracker, "a", a.port, &[file_json("other", b"x")]);
    register(tracker, "c", c.port, &[]);
    let reply = ask_text(tracker, "find f.bin");
    let ports: Vec<u16> = [b.port, a.port, c.port].to_vec();
    let mut at = 0;
    for p in &ports {
        let needle = format!("\"port\": {p}, ");
        let i = reply[at..]
            .find(&needle)
            .unwrap_or_else(|| panic!("{reply}"));
        at += i + needle.len();
    }
    assert_eq!(
        ask_text(tracker, "find other"),
        r#"{"nodes": [], "type": "nodelist"}"#
    );
    assert_eq!(
        ask_text(tracker, "find"),
        r#"{"nodes": [], "type": "nodelist"}"#
    );
}

#[test]
fn tracker_find_reply_matches_original_field_order_and_separators() {
    let t = tempfile::tempdir().unwrap();
    let (_tp, tracker) = start_tracker(t.path());
    let (_l, port) = silent_listener();
    register(
        tracker,
        "5b1e6c1e-0000-4000-8000-000000000001",
        port,
        &[
            file_json("text1.txt", b"hello world\n"),
            file_json("b", b"b"),
        ],
    );
    let expected = format!(
        r#"{{"nodes": [{{"id": "5b1e6c1e-0000-4000-8000-000000000001", "status": 1, "ip": "127.0.0.1", "port": {port}, "load": null, "filelist": {{"files": [{{"name": "text1.txt", "size": 12, "hash_val": "6f5902ac237024bdd0c176cb93063dc4", "type": "file"}}], "node_id": "5b1e6c1e-0000-4000-8000-000000000001", "node_port": null, "node_ip": null, "type": "filelist"}}, "type": "node"}}], "type": "nodelist"}}"#
    );
    assert_eq!(ask_text(tracker, "find text1.txt"), expected);
}

#[test]
fn tracker_find_reply_lists_only_matching_file_and_fits_2048_bytes() {
    let t = tempfile::tempdir().unwrap();
    let (_tp, tracker) = start_tracker(t.path());
    let mut keep = Vec::new();
    let many: Vec<String> = (0..20).map(|i| file_json(&format!("f{i}"), b"z")).collect();
    for i in 0..30 {
        let (l, port) = silent_listener();
        keep.push(l);
        register(tracker, &format!("node-{i}"), port, &many);
    }
    let reply = ask_text(tracker, "find f7");
    assert!(reply.len() <= 2048, "{}", reply.len());
    assert!(reply.ends_with("], \"type\": \"nodelist\"}"), "{reply}");
    let listed = reply.matches("\"type\": \"node\"").count();
    assert!(listed >= 3, "{reply}");
    assert_eq!(reply.matches("\"name\": ").count(), listed);
    assert!(!reply.contains("\"f8\""));
}

#[test]
fn tracker_marks_dead_node_status_0_prints_not_responding_and_skips_it() {
    let t = tempfile::tempdir().unwrap();
    let (tp, tracker) = start_tracker(t.path());
    let dead = support::free_tcp_port();
    let live = FakeNode::start("f", b"f".to_vec(), Some(0), Serve::Good);
    register(tracker, "dead", dead, &[file_json("f", b"f")]);
    register(tracker, "live", live.port, &[file_json("f", b"f")]);
    let reply = ask_text(tracker, "find f");
    assert!(!reply.contains(&format!("\"port\": {dead}")), "{reply}");
    assert!(
        reply.contains(&format!("\"port\": {}", live.port)),
        "{reply}"
    );
    let line =
        format!("node with ip: 127.0.0.1 and port: {dead} is not responding\nSkipping node\n");
    tp.wait_stdout(&line, 5);
    // Status 0: not contacted again, not listed.
    let reply = ask_text(tracker, "find f");
    assert!(!reply.contains(&format!("\"port\": {dead}")), "{reply}");
    assert_eq!(tp.stdout.text().matches(&line).count(), 1);
    // Contact from the node brings it back.
    assert_eq!(
        ask_text(
            tracker,
            &filelist_json("dead", Some(dead), &[file_json("f", b"f")])
        ),
        "ACK"
    );
    let l = TcpListener::bind(("127.0.0.1", dead));
    if l.is_ok() {
        let reply = ask_text(tracker, "find f");
        assert!(reply.contains(&format!("\"port\": {dead}")), "{reply}");
    }
}

#[test]
fn tracker_keeps_busy_node_that_accepts_but_does_not_answer() {
    let t = tempfile::tempdir().unwrap();
    let (tp, tracker) = start_tracker(t.path());
    let (_l, port) = silent_listener();
    register(tracker, "busy", port, &[file_json("f", b"f")]);
    let reply = ask_text(tracker, "find f");
    assert!(reply.contains(&format!("\"port\": {port}")), "{reply}");
    assert!(!tp.stdout.text().contains("is not responding"));
}

#[test]
fn tracker_adds_unknown_filelist_node_and_prints_adding_line() {
    let t = tempfile::tempdir().unwrap();
    let (tp, tracker) = start_tracker(t.path());
    let (_l, port) = silent_listener();
    assert_eq!(
        ask_text(
            tracker,
            &filelist_json("new", Some(port), &[file_json("g", b"g")])
        ),
        "ACK"
    );
    tp.wait_stdout("Node does not exist in global node list, adding\n", 5);
    assert!(ask_text(tracker, "find g").contains(&format!("\"port\": {port}")));
    // Unknown id and no address: ACK, ignored.
    assert_eq!(
        ask_text(
            tracker,
            &filelist_json("ghost", None, &[file_json("h", b"h")])
        ),
        "ACK"
    );
    assert_eq!(
        ask_text(tracker, "find h"),
        r#"{"nodes": [], "type": "nodelist"}"#
    );
}

#[test]
fn tracker_replaces_entry_when_node_restarts_on_same_address() {
    let t = tempfile::tempdir().unwrap();
    let (_tp, tracker) = start_tracker(t.path());
    let (_l, port) = silent_listener();
    register(tracker, "first", port, &[file_json("old", b"o")]);
    register(tracker, "second", port, &[file_json("new", b"n")]);
    assert_eq!(
        ask_text(tracker, "find old"),
        r#"{"nodes": [], "type": "nodelist"}"#
    );
    let reply = ask_text(tracker, "find new");
    assert_eq!(reply.matches("\"type\": \"node\"").count(), 1, "{reply}");
    assert!(reply.contains("\"id\": \"second\""), "{reply}");
}

#[test]
fn tracker_serves_connections_concurrently() {
    let t = tempfile::tempdir().unwrap();
    let (_tp, tracker) = start_tracker(t.path());
    // A client that starts a JSON message and stalls holds its connection for 5 s...
    let mut stalled = TcpStream::connect(tracker).unwrap();
    stalled.write_all(b"{\"type\": ").unwrap();
    // ...and a busy node stalls a find for 2 s; others are served meanwhile.
    let (_l, port) = silent_listener();
    register(tracker, "busy", port, &[file_json("f", b"f")]);
    let finder = std::thread::spawn(move || ask_text(tracker, "find f"));
    let mut s = TcpStream::connect(tracker).unwrap();
    s.write_all(node_json("quick", 1, &[]).as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut buf = [0u8; 16];
    let n = s
        .read(&mut buf)
        .expect("served while another connection stalls");
    assert_eq!(&buf[..n], b"ACK");
    assert!(finder.join().unwrap().contains("busy"));
    drop(stalled);
}

#[test]
fn tracker_survives_malformed_json_and_unknown_commands() {
    let t = tempfile::tempdir().unwrap();
    let (tp, tracker) = start_tracker(t.path());
    for bad in [
        &b"{not json}"[..],
        b"{\"type\": 5}",
        b"{\"type\": \"node\", \"id\": 7}",
        b"{\"type\": \"filelist\", \"files\": \"x\", \"node_id\": \"n\"}",
        b"{\"type\": \"node\", \"id\": \"i\", \"status\": 1, \"ip\": \"127.0.0.1\", \"port\": \"80\", \"load\": 0, \"filelist\": {}}",
        b"[1, 2]",
        b"hello tracker",
        b"getload",
        b"\x00\xff\xfe garbage",
        b"send a 127.0.0.1 1",
    ] {
        assert_eq!(ask(tracker, bad), b"", "{:?}", String::from_utf8_lossy(bad));
    }
    // A huge never-ending JSON is cut off at 1 MiB.
    let mut s = TcpStream::connect(tracker).unwrap();
    let mut big = b"{\"files\": [".to_vec();
    big.extend(std::iter::repeat_n(b' ', 1_200_000));
    let _ = s.write_all(&big);
    drop(s);
    tp.wait_stdout("received data: b'\\x00\\xff\\xfe garbage'", 5);
    register(tracker, "ok", 1, &[]);
}

// ---------------------------------------------------------------------------------------------
// Nodes

#[test]
fn node_registers_with_full_scan_and_prints_ack() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir(t.path().join("d")).unwrap();
    std::fs::write(t.path().join("d/b.txt"), b"hello world\n").unwrap();
    std::fs::write(t.path().join("d/a.bin"), b"").unwrap();
    std::fs::write(t.path().join("d/c.part"), b"half").unwrap();
    // A fake tracker that records the registration.
    let fake = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = fake.local_addr().unwrap();
    let got = std::thread::spawn(move || {
        let (mut c, _) = fake.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while !buf.ends_with(b"\"type\": \"node\"}") {
            let n = c.read(&mut chunk).unwrap();
            assert!(n > 0);
            buf.extend_from_slice(&chunk[..n]);
        }
        c.write_all(b"ACK").unwrap();
        String::from_utf8(buf).unwrap()
    });
    let (node, naddr) = start_node(t.path(), "d", addr);
    let json = got.join().unwrap();
    let start = node.wait_stdout("ACK\n", 5);
    assert!(start.starts_with("Node starting and connecting to tracking server\nACK\n"));
    let id = &json[8..44];
    let expected = format!(
        r#"{{"id": "{id}", "status": 1, "ip": "127.0.0.1", "port": {}, "load": 0, "filelist": {{"files": [{}, {}], "node_id": "{id}", "node_port": null, "node_ip": null, "type": "filelist"}}, "type": "node"}}"#,
        naddr.port(),
        file_json("a.bin", b""),
        file_json("b.txt", b"hello world\n")
    );
    assert_eq!(json, expected);
    assert_eq!(id.as_bytes()[14], b'4', "UUID v4: {id}");
}

#[test]
fn node_prints_nack_on_an_empty_registration_reply() {
    let t = tempfile::tempdir().unwrap();
    let fake = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = fake.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut c, _) = fake.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = c.read(&mut buf);
    });
    std::fs::create_dir(t.path().join("d")).unwrap();
    let node = Proc::start(
        t.path(),
        &[
            "xfs",
            "node",
            "localhost",
            "0",
            "d",
            "--tracker",
            &addr.to_string(),
        ],
    );
    node.wait_stdout(
        "Node starting and connecting to tracking server\nNACK\n",
        10,
    );
}

#[test]
fn node_exits_1_when_tracker_down_at_start() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir(t.path().join("d")).unwrap();
    let dead = format!("127.0.0.1:{}", support::free_tcp_port());
    let mut node = Proc::start(
        t.path(),
        &["xfs", "node", "127.0.0.1", "0", "d", "--tracker", &dead],
    );
    assert_eq!(node.wait_exit(10), Some(1));
    assert_eq!(
        node.stdout.text(),
        "Node starting and connecting to tracking server\nConnection refused, tracking server is down\n"
    );
    // Usage errors: one line, exit 2.
    let mut bad = Proc::start(t.path(), &["xfs", "node", "127.0.0.1", "0", "missing-dir"]);
    assert_eq!(bad.wait_exit(10), Some(2));
    assert!(bad.stderr.text().starts_with("error: "));
}

#[test]
fn node_answers_getload_and_updatelist_with_exact_forms() {
    let t = tempfile::tempdir().unwrap();
    let (tp, tracker) = start_tracker(t.path());
    std::fs::create_dir(t.path().join("d")).unwrap();
    std::fs::write(t.path().join("d/x.txt"), b"xyz").unwrap();
    let (_node, naddr) = start_node(t.path(), "d", tracker);
    assert_eq!(ask_text(naddr, "getload"), "0");
    let reg = tp.wait_stdout("\"type\": \"node\"}'", 5);
    let at = reg.find("{\"id\": \"").unwrap() + 8;
    let id = &reg[at..at + 36];
    let expected = format!(
        r#"{{"files": [{}], "node_id": "{id}", "node_port": {}, "node_ip": "127.0.0.1", "type": "filelist"}}"#,
        file_json("x.txt", b"xyz"),
        naddr.port()
    );
    assert_eq!(ask_text(naddr, "updatelist"), expected);
    // Anything else is closed without reply, and the node keeps serving.
    for bad in [
        &b"getload 1"[..],
        b"hello",
        b"{\"type\": 3}",
        b"\xff\x00",
        b"{\"broken",
    ] {
        assert_eq!(ask(naddr, bad), b"");
    }
    assert_eq!(ask_text(naddr, "getload\n"), "0");
}

#[test]
fn find_prints_found_nodes_lines() {
    let t = tempfile::tempdir().unwrap();
    let (_tp, tracker) = start_tracker(t.path());
    std::fs::create_dir(t.path().join("d1")).unwrap();
    std::fs::write(t.path().join("d1/text1.txt"), b"hello").unwrap();
    let (_n1, a1) = start_node(t.path(), "d1", tracker);
    let (mut n2, _) = start_node(t.path(), "d2", tracker);
    n2.type_line("find text1.txt");
    n2.wait_stdout(&format!("Found nodes:\n127.0.0.1 {}\n", a1.port()), 10);
    n2.type_line("find");
    n2.wait_stdout("Usage: find <filename>\n", 5);
    n2.type_line("download");
    n2.wait_stdout("Usage: download <filename>\n", 5);
    n2.type_line("getload 127.0.0.1");
    n2.wait_stdout("Usage: getload <ip> <port>\n", 5);
    n2.type_line("frobnicate");
    n2.wait_stdout("Invalid command\n", 5);
    n2.type_line(&format!("getload 127.0.0.1 {}", a1.port()));
    wait_line(&n2, "0", 5);
    let dead = support::free_tcp_port();
    n2.type_line(&format!("getload 127.0.0.1 {dead}"));
    n2.wait_stdout("Connection refused, cannot get load\nNothing\n", 5);
}

#[test]
fn find_prints_no_nodes_found() {
    let t = tempfile::tempdir().unwrap();
    let (mut tp, tracker) = start_tracker(t.path());
    let (mut n, _) = start_node(t.path(), "d", tracker);
    n.type_line("find nothing.txt");
    n.wait_stdout("No nodes found\n", 10);
    tp.kill();
    n.type_line("find nothing.txt");
    n.wait_stdout("Connection refused, tracking server is down\n", 10);
    n.type_line("download nothing.txt");
    n.wait_stdout(
        "Connection refused, cannot download the file, tracker is down\n",
        10,
    );
    n.type_line("updatelist");
    wait_for("second refused line", 10, || {
        count(&n, "Connection refused, tracking server is down\n") == 2
    });
}

#[test]
fn download_is_byte_identical_and_md5_checked() {
    let t = tempfile::tempdir().unwrap();
    write_latency(t.path(), &[]);
    let (_tp, tracker) = start_tracker(t.path());
    std::fs::create_dir(t.path().join("d1")).unwrap();
    let text = b"the quick brown fox\njumps over the lazy dog\n".to_vec();
    let bin = pseudo_random(5 * 1024 * 1024, 7);
    std::fs::write(t.path().join("d1/text1.txt"), &text).unwrap();
    std::fs::write(t.path().join("d1/bin.dat"), &bin).unwrap();
    let (_n1, a1) = start_node(t.path(), "d1", tracker);
    let (mut n2, a2) = start_node(t.path(), "d2", tracker);
    write_latency(
        t.path(),
        &[format!("127.0.0.1 {} 127.0.0.1 {} 3", a2.port(), a1.port())],
    );
    n2.type_line("download text1.txt");
    n2.type_line("download bin.dat");
    wait_for("two downloads", 20, || {
        count(&n2, "File downloaded successfully") == 2
    });
    let out = n2.stdout.text();
    assert!(
        out.contains(&format!("[127.0.0.1:{}]\n", a1.port())),
        "{out}"
    );
    assert!(out.contains("ACK\n"));
    assert!(out.contains("Connection address: ('127.0.0.1', "));
    assert_eq!(std::fs::read(t.path().join("d2/text1.txt")).unwrap(), text);
    assert_eq!(std::fs::read(t.path().join("d2/bin.dat")).unwrap(), bin);
    assert!(!t.path().join("d2/bin.dat.part").exists());
}

#[test]
fn large_file_download_does_not_deadlock() {
    let t = tempfile::tempdir().unwrap();
    let (_tp, tracker) = start_tracker(t.path());
    let big = pseudo_random(64 * 1024 * 1024, 11);
    std::fs::create_dir(t.path().join("d1")).unwrap();
    std::fs::write(t.path().join("d1/big.bin"), &big).unwrap();
    let (_n1, a1) = start_node(t.path(), "d1", tracker);
    let (mut n2, a2) = start_node(t.path(), "d2", tracker);
    write_latency(
        t.path(),
        &[format!("127.0.0.1 {} 127.0.0.1 {} 1", a2.port(), a1.port())],
    );
    n2.type_line("download big.bin");
    n2.wait_stdout("File downloaded successfully", 60);
    assert!(std::fs::read(t.path().join("d2/big.bin")).unwrap() == big);
    // The other ACK order: an original serving node streams everything before its ACK.
    let data = pseudo_random(8 * 1024 * 1024, 12);
    let orig = FakeNode::start("orig.bin", data.clone(), Some(0), Serve::StreamBeforeAck);
    register(tracker, "orig", orig.port, &[file_json("orig.bin", &data)]);
    n2.type_line("download orig.bin");
    wait_for("second download", 60, || {
        count(&n2, "File downloaded successfully") == 2
    });
    assert!(std::fs::read(t.path().join("d2/orig.bin")).unwrap() == data);
}

#[test]
fn peer_choice_minimises_latency_plus_ten_times_load_with_latency_file() {
    let t = tempfile::tempdir().unwrap();
    let (_tp, tracker) = start_tracker(t.path());
    let data = b"choose me wisely".to_vec();
    // near: 5 ms but 3 downloads (35); far: 20 ms idle (20); unlisted: default 100 ms idle.
    let near = FakeNode::start("f.txt", data.clone(), Some(3), Serve::Good);
    let far = FakeNode::start("f.txt", data.clone(), Some(0), Serve::Good);
    let unlisted = FakeNode::start("f.txt", data.clone(), Some(0), Serve::Good);
    for (id, n) in [("u", &unlisted), ("n", &near), ("f", &far)] {
        register(tracker, id, n.port, &[file_json("f.txt", &data)]);
    }
    std::fs::write(t.path().join("latency.txt"), "").unwrap();
    let (mut node, me) = start_node(t.path(), "d", tracker);
    write_latency(
        t.path(),
        &[
            format!("127.0.0.1 {} 127.0.0.1 {} 5", me.port(), near.port),
            "this line is broken".to_string(),
            format!("127.0.0.1 {} 127.0.0.1 {} 20", me.port(), far.port),
        ],
    );
    node.type_line("download f.txt");
    node.wait_stdout("File downloaded successfully", 20);
    assert_eq!((near.sends(), far.sends(), unlisted.sends()), (0, 1, 0));
    // The bad latency line is named in one warning.
    node.wait_stderr("line 2 (\"this line is broken\") is skipped", 5);
    // Without the table every peer costs 100 ms: the idle one first in tracker order wins.
    std::fs::remove_file(t.path().join("latency.txt")).unwrap();
    std::fs::remove_file(t.path().join("d/f.txt")).unwrap();
    node.type_line("download f.txt");
    wait_for("second download", 20, || {
        count(&node, "File downloaded successfully") == 2
    });
    assert_eq!((near.sends(), far.sends(), unlisted.sends()), (0, 1, 1));
    // Each warning once, however often the table is re-read.
    let err = node.wait_stderr("latency.txt does not exist", 5);
    assert_eq!(err.matches("this line is broken").count(), 1, "{err}");
    node.type_line("download f.txt");
    wait_for("third download", 20, || {
        count(&node, "File downloaded successfully") == 3
    });
    assert_eq!(node.stderr.text().matches("does not exist").count(), 1);
}

#[test]
fn download_excludes_self_and_skips_failing_getload() {
    let t = tempfile::tempdir().unwrap();
    let (_tp, tracker) = start_tracker(t.path());
    let data = b"shared by everyone".to_vec();
    std::fs::create_dir(t.path().join("d")).unwrap();
    std::fs::write(t.path().join("d/f.txt"), &data).unwrap();
    let (mut node, me) = start_node(t.path(), "d", tracker);
    let mute = FakeNode::start("f.txt", data.clone(), None, Serve::Good);
    let good = FakeNode::start("f.txt", data.clone(), Some(5), Serve::Good);
    register(tracker, "mute", mute.port, &[file_json("f.txt", &data)]);
    register(tracker, "good", good.port, &[file_json("f.txt", &data)]);
    write_latency(
        t.path(),
        &[
            format!("127.0.0.1 {0} 127.0.0.1 {0} 1", me.port()),
            format!("127.0.0.1 {} 127.0.0.1 {} 1", me.port(), mute.port),
        ],
    );
    node.type_line("download f.txt");
    node.wait_stdout("File downloaded successfully", 20);
    let out = node.stdout.text();
    assert!(
        out.contains(&format!(
            "[127.0.0.1:{}, 127.0.0.1:{}]",
            mute.port, good.port
        )),
        "{out}"
    );
    assert_eq!((mute.sends(), good.sends()), (0, 1));
}

#[test]
fn md5_mismatch_retries_three_times_then_next_peer_then_gives_up() {
    let t = tempfile::tempdir().unwrap();
    let (_tp, tracker) = start_tracker(t.path());
    let data = pseudo_random(100_000, 3);
    let bad = FakeNode::start("f.bin", data.clone(), Some(0), Serve::Corrupt);
    let good = FakeNode::start("f.bin", data.clone(), Some(0), Serve::Good);
    register(tracker, "bad", bad.port, &[file_json("f.bin", &data)]);
    register(tracker, "good", good.port, &[file_json("f.bin", &data)]);
    std::fs::write(t.path().join("latency.txt"), "").unwrap();
    let (mut node, me) = start_node(t.path(), "d", tracker);
    write_latency(
        t.path(),
        &[
            format!("127.0.0.1 {} 127.0.0.1 {} 1", me.port(), bad.port),
            format!("127.0.0.1 {} 127.0.0.1 {} 2", me.port(), good.port),
        ],
    );
    node.type_line("download f.bin");
    node.wait_stdout("File downloaded successfully", 30);
    assert_eq!(count(&node, "File download failed"), 4);
    assert_eq!((bad.sends(), good.sends()), (4, 1));
    assert_eq!(std::fs::read(t.path().join("d/f.bin")).unwrap(), data);

    // Only corrupt peers: give up; the corrupted bytes never land.
    let other = pseudo_random(50_000, 4);
    let bad2 = FakeNode::start("g.bin", other.clone(), Some(0), Serve::Corrupt);
    register(tracker, "bad2", bad2.port, &[file_json("g.bin", &other)]);
    node.type_line("download g.bin");
    node.wait_stdout(
        "Giving up on g.bin: no peer delivered a matching copy\n",
        30,
    );
    assert_eq!(bad2.sends(), 4);
    assert!(!t.path().join("d/g.bin").exists());
    assert!(!t.path().join("d/g.bin.part").exists());
    assert_eq!(ask_text(me, "getload"), "0");
}

#[test]
fn getload_reports_one_during_a_download() {
    let t = tempfile::tempdir().unwrap();
    let (_tp, tracker) = start_tracker(t.path());
    let data = pseudo_random(4096, 5);
    let slow = FakeNode::start("slow.bin", data.clone(), Some(0), Serve::Slow);
    register(tracker, "slow", slow.port, &[file_json("slow.bin", &data)]);
    write_latency(t.path(), &[]);
    let (mut node, me) = start_node(t.path(), "d", tracker);
    node.type_line("download slow.bin");
    node.wait_stdout("Connection address: ", 10);
    assert_eq!(ask_text(me, "getload"), "1");
    // A second download of the same name would share the `.part`: refused, load unchanged.
    node.type_line("download slow.bin");
    node.wait_stdout("slow.bin: already downloading\n", 5);
    assert_eq!(ask_text(me, "getload"), "1");
    node.type_line(&format!("getload 127.0.0.1 {}", me.port()));
    wait_line(&node, "1", 5);
    slow.release.store(true, Ordering::SeqCst);
    node.wait_stdout("File downloaded successfully", 20);
    assert_eq!(ask_text(me, "getload"), "0");
}

#[test]
fn send_of_missing_file_gets_no_reply_and_node_keeps_serving() {
    let t = tempfile::tempdir().unwrap();
    let (_tp, tracker) = start_tracker(t.path());
    let (node, naddr) = start_node(t.path(), "d", tracker);
    let (catch, cport) = silent_listener();
    catch.set_nonblocking(true).unwrap();
    assert_eq!(
        ask_text(naddr, &format!("send nope.txt 127.0.0.1 {cport}")),
        ""
    );
    node.wait_stderr("nope.txt", 5);
    assert_eq!(ask_text(naddr, "getload"), "0");
    assert!(
        catch.accept().is_err(),
        "nothing connects back for a refused send"
    );
}

#[test]
fn send_refuses_path_traversal() {
    let t = tempfile::tempdir().unwrap();
    let (_tp, tracker) = start_tracker(t.path());
    std::fs::write(t.path().join("secret.txt"), b"top secret").unwrap();
    std::fs::create_dir(t.path().join("d")).unwrap();
    std::fs::write(t.path().join("d/ok.txt"), b"fine").unwrap();
    std::fs::write(t.path().join("d/half.part"), b"partial").unwrap();
    let (node, naddr) = start_node(t.path(), "d", tracker);
    let (catch, cport) = silent_listener();
    catch.set_nonblocking(true).unwrap();
    for name in [
        "../secret.txt",
        "../../etc/passwd",
        "/etc/passwd",
        "..",
        "half.part",
    ] {
        assert_eq!(
            ask_text(naddr, &format!("send {name} 127.0.0.1 {cport}")),
            "",
            "{name}"
        );
    }
    for bad in [
        "send ok.txt",
        "send ok.txt 127.0.0.1 99999",
        "send ok.txt nohost 5",
        "send ok.txt 127.0.0.1 5 6",
    ] {
        assert_eq!(ask_text(naddr, bad), "", "{bad}");
    }
    node.wait_stderr("refused send of \"../../etc/passwd\"", 5);
    std::thread::sleep(Duration::from_millis(100));
    assert!(catch.accept().is_err(), "nothing was sent");
    // A good send still works: ACK at once, then the bytes on the data connection.
    catch.set_nonblocking(false).unwrap();
    assert_eq!(
        ask_text(naddr, &format!("send ok.txt 127.0.0.1 {cport}")),
        "ACK"
    );
    let (mut d, _) = catch.accept().unwrap();
    let mut got = Vec::new();
    d.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"fine");
}

#[test]
fn partial_download_is_not_listed_by_scan() {
    let t = tempfile::tempdir().unwrap();
    let (_tp, tracker) = start_tracker(t.path());
    std::fs::create_dir(t.path().join("d")).unwrap();
    std::fs::write(t.path().join("d/whole.txt"), b"w").unwrap();
    std::fs::write(t.path().join("d/big.bin.part"), b"half").unwrap();
    let (_node, naddr) = start_node(t.path(), "d", tracker);
    let list = ask_text(naddr, "updatelist");
    assert!(
        list.contains("whole.txt") && !list.contains(".part"),
        "{list}"
    );
}

#[test]
fn after_tracker_restart_file_of_a_silent_node_is_not_found() {
    let t = tempfile::tempdir().unwrap();
    let (mut tp, tracker) = start_tracker(t.path());
    std::fs::create_dir(t.path().join("d1")).unwrap();
    std::fs::write(t.path().join("d1/f.txt"), b"f").unwrap();
    let (_n1, _) = start_node(t.path(), "d1", tracker);
    let (mut n2, _) = start_node(t.path(), "d2", tracker);
    tp.kill();
    let (_tp2, _) = start_tracker_on(t.path(), tracker.port());
    n2.type_line("find f.txt");
    n2.wait_stdout("No nodes found\n", 10);
}

#[test]
fn after_tracker_restart_node_is_relearned_from_its_own_find() {
    let t = tempfile::tempdir().unwrap();
    let (mut tp, tracker) = start_tracker(t.path());
    std::fs::create_dir(t.path().join("d1")).unwrap();
    std::fs::write(t.path().join("d1/f.txt"), b"f").unwrap();
    let (mut n1, a1) = start_node(t.path(), "d1", tracker);
    let (mut n2, _) = start_node(t.path(), "d2", tracker);
    tp.kill();
    let (tp2, _) = start_tracker_on(t.path(), tracker.port());
    n1.type_line("find anything");
    n1.wait_stdout("No nodes found\n", 10);
    tp2.wait_stdout("Node does not exist in global node list, adding\n", 5);
    n2.type_line("download f.txt");
    n2.wait_stdout("File downloaded successfully", 10);
    let out = n2.stdout.text();
    assert!(out.contains(&format!("[127.0.0.1:{}]", a1.port())), "{out}");
}

#[test]
fn after_tracker_restart_updatelist_restores_find() {
    let t = tempfile::tempdir().unwrap();
    let (mut tp, tracker) = start_tracker(t.path());
    std::fs::create_dir(t.path().join("d1")).unwrap();
    std::fs::write(t.path().join("d1/f.txt"), b"f").unwrap();
    let (mut n1, a1) = start_node(t.path(), "d1", tracker);
    let (_n2, a2) = start_node(t.path(), "d2", tracker);
    tp.kill();
    let (tp2, tracker2) = start_tracker_on(t.path(), tracker.port());
    n1.type_line("updatelist");
    tp2.wait_stdout("Node does not exist in global node list, adding\n", 10);
    let reply = ask_text(tracker2, "find f.txt");
    assert!(
        reply.contains(&format!("\"port\": {}", a1.port())),
        "{reply}"
    );
    assert!(
        !reply.contains(&format!("\"port\": {}", a2.port())),
        "{reply}"
    );
}

#[test]
fn file_added_while_running_is_found_after_updatelist() {
    let t = tempfile::tempdir().unwrap();
    let (_tp, tracker) = start_tracker(t.path());
    let (mut n1, a1) = start_node(t.path(), "d1", tracker);
    let (mut n2, _) = start_node(t.path(), "d2", tracker);
    n2.type_line("find late.txt");
    n2.wait_stdout("No nodes found\n", 10);
    std::fs::write(t.path().join("d1/late.txt"), b"late").unwrap();
    n1.type_line("updatelist");
    n2.type_line("find late.txt");
    n2.wait_stdout(&format!("Found nodes:\n127.0.0.1 {}\n", a1.port()), 10);
}

#[test]
fn exit_ends_the_process() {
    let t = tempfile::tempdir().unwrap();
    let (mut tp, tracker) = start_tracker(t.path());
    let (mut n, naddr) = start_node(t.path(), "d", tracker);
    n.type_line("exit");
    assert_eq!(n.wait_exit(10), Some(0));
    assert!(TcpStream::connect_timeout(&naddr, Duration::from_millis(500)).is_err());
    // Ctrl-C ends a node and the tracker cleanly too.
    let (mut n2, _) = start_node(t.path(), "d", tracker);
    n2.interrupt();
    assert_eq!(n2.wait_exit(10), Some(0));
    tp.interrupt();
    assert_eq!(tp.wait_exit(10), Some(0));
}

#[test]
fn at_most_16_uploads_run_at_once_and_a_17th_send_gets_no_reply() {
    let t = tempfile::tempdir().unwrap();
    let (_tp, tracker) = start_tracker(t.path());
    std::fs::create_dir(t.path().join("d")).unwrap();
    // Far larger than the socket buffers: each upload blocks on a receiver that never reads.
    std::fs::write(
        t.path().join("d/big.bin"),
        pseudo_random(16 * 1024 * 1024, 9),
    )
    .unwrap();
    let (node, naddr) = start_node(t.path(), "d", tracker);
    let (catch, cport) = silent_listener();
    for i in 0..16 {
        assert_eq!(
            ask_text(naddr, &format!("send big.bin 127.0.0.1 {cport}")),
            "ACK",
            "send {i}"
        );
    }
    assert_eq!(
        ask_text(naddr, &format!("send big.bin 127.0.0.1 {cport}")),
        ""
    );
    node.wait_stderr("16 uploads already running", 5);
    // The pool stays free for getload meanwhile.
    assert_eq!(ask_text(naddr, "getload"), "0");
    // Once the receiver goes away the uploads end and sends are served again.
    drop(catch);
    let (catch2, cport2) = silent_listener();
    wait_for("an upload slot", 20, || {
        ask_text(naddr, &format!("send big.bin 127.0.0.1 {cport2}")) == "ACK"
    });
    drop(catch2);
}

#[test]
fn node_warns_once_when_its_file_list_exceeds_2048_bytes() {
    let t = tempfile::tempdir().unwrap();
    let (_tp, tracker) = start_tracker(t.path());
    std::fs::create_dir(t.path().join("d")).unwrap();
    for i in 0..20 {
        std::fs::write(
            t.path().join(format!("d/file-with-a-long-name-{i:02}.txt")),
            b"x",
        )
        .unwrap();
    }
    let (node, naddr) = start_node(t.path(), "d", tracker);
    assert!(ask_text(naddr, "updatelist").len() > 2048);
    let err = node.wait_stderr("original xFS programs read only 2048", 5);
    assert_eq!(
        err.matches("original xFS programs read only 2048").count(),
        1
    );
}

#[test]
fn serving_node_reaches_a_downloader_that_listens_only_after_the_ack() {
    // An original node.py downloader opens its data port once the ACK is in.
    let t = tempfile::tempdir().unwrap();
    let (_tp, tracker) = start_tracker(t.path());
    std::fs::create_dir(t.path().join("d")).unwrap();
    std::fs::write(t.path().join("d/ok.txt"), b"late listener").unwrap();
    let (_node, naddr) = start_node(t.path(), "d", tracker);
    let port = support::free_tcp_port();
    assert_eq!(
        ask_text(naddr, &format!("send ok.txt 127.0.0.1 {port}")),
        "ACK"
    );
    std::thread::sleep(Duration::from_millis(200));
    let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let (mut d, _) = l.accept().unwrap();
    let mut got = Vec::new();
    d.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"late listener");
}

#[test]
fn a_peer_sending_more_than_the_announced_size_fails_the_download() {
    let t = tempfile::tempdir().unwrap();
    let (_tp, tracker) = start_tracker(t.path());
    let data = pseudo_random(1000, 8);
    let long = FakeNode::start("l.bin", data.clone(), Some(0), Serve::TooLong);
    register(tracker, "long", long.port, &[file_json("l.bin", &data)]);
    write_latency(t.path(), &[]);
    let (mut node, _) = start_node(t.path(), "d", tracker);
    node.type_line("download l.bin");
    node.wait_stdout(
        "Giving up on l.bin: no peer delivered a matching copy\n",
        30,
    );
    assert_eq!(count(&node, "File download failed"), 4);
    assert!(!t.path().join("d/l.bin").exists());
    assert!(!t.path().join("d/l.bin.part").exists());
}

#[test]
fn exit_during_a_download_leaves_no_part_file() {
    let t = tempfile::tempdir().unwrap();
    let (_tp, tracker) = start_tracker(t.path());
    let data = pseudo_random(4096, 6);
    let slow = FakeNode::start("slow.bin", data.clone(), Some(0), Serve::Slow);
    register(tracker, "slow", slow.port, &[file_json("slow.bin", &data)]);
    write_latency(t.path(), &[]);
    let (mut node, _) = start_node(t.path(), "d", tracker);
    node.type_line("download slow.bin");
    wait_for("the .part file", 10, || {
        t.path().join("d/slow.bin.part").exists()
    });
    node.type_line("exit");
    assert_eq!(node.wait_exit(10), Some(0));
    assert!(!t.path().join("d/slow.bin.part").exists());
    assert!(!t.path().join("d/slow.bin").exists());
}

// ---------------------------------------------------------------------------------------------
// Hardening (issue 14), everyday use (issue 13), one shape (issue 15)

#[test]
fn find_refreshes_many_fake_registrations_through_a_bounded_pool() {
    let t = tempfile::tempdir().unwrap();
    let p = Proc::start(
        t.path(),
        &["xfs", "tracker", "--port", "0", "--max-nodes-per-ip", "300"],
    );
    let tracker = listen_addr(&p);
    // A listener that accepts and holds every connection without a word, counting them.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let seen = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in silent.incoming().flatten() {
            seen.fetch_add(1, Ordering::SeqCst);
            held.push(c);
        }
    });
    // 200 fake nodes at the silent listener's address (distinct ids, one port: the table keys
    // by address, so give each its own port number pointing nowhere but the first).
    register(tracker, "fake-0", silent_port, &[file_json("x", b"x")]);
    for i in 1..200u16 {
        let port = silent_port.wrapping_add(i);
        register(tracker, &format!("fake-{i}"), port, &[file_json("x", b"x")]);
    }
    let before = accepted.load(Ordering::SeqCst);
    let reply = ask_text(tracker, "find x");
    assert!(
        reply.starts_with("{\"nodes\": [") || reply.starts_with('['),
        "{reply}"
    );
    let during = accepted.load(Ordering::SeqCst) - before;
    // One find may use 8 connections at once within its 3 s deadline: never one per node.
    assert!(during <= 24, "{during} connections for one find");
}

#[test]
fn registrations_from_one_address_are_capped_and_the_cap_is_logged_once() {
    let t = tempfile::tempdir().unwrap();
    let p = Proc::start(
        t.path(),
        &["xfs", "tracker", "--port", "0", "--max-nodes-per-ip", "3"],
    );
    let tracker = listen_addr(&p);
    for port in 1..=3 {
        register(tracker, &format!("n{port}"), port, &[]);
    }
    assert_eq!(ask_text(tracker, &node_json("n4", 4, &[])), "");
    assert_eq!(ask_text(tracker, &filelist_json("n5", Some(5), &[])), "");
    // A node already registered may always register again.
    register(tracker, "n1-again", 1, &[]);
    p.wait_stderr("--max-nodes-per-ip", 5);
    assert_eq!(p.stderr.text().matches("--max-nodes-per-ip").count(), 1);
    let bad = Proc::start(t.path(), &["xfs", "tracker", "--max-nodes-per-ip", "0"]);
    let mut bad = bad;
    assert_eq!(bad.wait_exit(10), Some(2));
    bad.wait_stderr("--max-nodes-per-ip", 5);
}

#[test]
fn a_local_write_error_ends_the_download_at_once_with_the_reason() {
    let t = tempfile::tempdir().unwrap();
    let (_tp, tracker) = start_tracker(t.path());
    let data = pseudo_random(10_000, 8);
    let good = FakeNode::start("w.bin", data.clone(), Some(0), Serve::Good);
    register(tracker, "good", good.port, &[file_json("w.bin", &data)]);
    write_latency(t.path(), &[]);
    let (mut node, _) = start_node(t.path(), "d", tracker);
    // `w.bin.part` cannot be created: a directory is in its place (like a full disk, it is
    // this node's problem, not the peer's).
    std::fs::create_dir(t.path().join("d/w.bin.part")).unwrap();
    node.type_line("download w.bin");
    node.wait_stdout("Download of w.bin failed: cannot write", 10);
    assert_eq!(good.sends.load(Ordering::SeqCst), 1, "no re-download");
    assert_eq!(count(&node, "File download failed"), 0);
    assert_eq!(count(&node, "Giving up"), 0);
    assert!(!t.path().join("d/w.bin").exists());
    node.type_line("exit");
    assert_eq!(node.wait_exit(10), Some(0));
}

#[test]
fn help_lists_the_commands_and_positionals_are_described() {
    let t = tempfile::tempdir().unwrap();
    let (_tp, tracker) = start_tracker(t.path());
    let (mut node, _) = start_node(t.path(), "d", tracker);
    node.type_line("help");
    let out = node.wait_stdout("updatelist ", 10);
    for cmd in [
        "find <filename>",
        "download <filename>",
        "getload <ip> <port>",
        "exit",
    ] {
        assert!(out.contains(cmd), "{cmd}: {out}");
    }
    node.type_line("exit");
    assert_eq!(node.wait_exit(10), Some(0));
    let mut help = Proc::start(t.path(), &["xfs", "node", "--help"]);
    assert_eq!(help.wait_exit(10), Some(0));
    let text = help.stdout.text();
    for arg in ["<IP>", "<PORT>", "<DIR>"] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(arg))
            .unwrap_or_else(|| panic!("{arg} in {text}"));
        assert!(
            line.trim().len() > arg.len() + 3,
            "{arg} has no description: {line:?}"
        );
    }
}

/// Threads of this process whose name starts with `prefix` (the test binary's own name, which
/// also starts with `xfs-`, excepted).
fn threads_named(prefix: &str) -> Vec<String> {
    let own = std::fs::read_to_string("/proc/self/comm").unwrap_or_default();
    let mut names = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        if let Ok(comm) = std::fs::read_to_string(task.path().join("comm")) {
            if comm.starts_with(prefix) && comm != own {
                names.push(comm.trim().to_string());
            }
        }
    }
    names
}

#[test]
fn every_xfs_role_stops_in_process_with_no_thread_left() {
    use peershare::core::console::Console;
    use peershare::core::shutdown::Shutdown;
    use peershare::xfs::{node, tracker};
    let t = tempfile::tempdir().unwrap();
    let listener = tracker::bind([127, 0, 0, 1].into(), 0).unwrap();
    let addr = listener.local_addr().unwrap();
    let stop_tracker = Shutdown::new();
    let s = stop_tracker.clone();
    let tracker_thread =
        std::thread::spawn(move || tracker::run(tracker::TrackerConfig::default(), listener, &s));
    std::fs::create_dir(t.path().join("d")).unwrap();
    let config = node::NodeConfig::new(t.path().join("d"), addr, t.path().join("latency.txt"));
    let node_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let stop_node = Shutdown::new();
    let s = stop_node.clone();
    let node_thread = std::thread::spawn(move || {
        let console = Console::start().unwrap();
        node::run(config, node_listener, &s, &console)
    });
    // The node runs until its console ends (stdin may be closed under the test harness).
    wait_for("the node's threads", 10, || {
        node_thread.is_finished()
            || (threads_named("xfs-serve").len() >= 2 && !threads_named("xfs-getload").is_empty())
    });
    stop_node.trigger();
    node_thread.join().unwrap().unwrap();
    stop_tracker.trigger();
    tracker_thread.join().unwrap().unwrap();
    assert_eq!(threads_named("xfs-"), Vec::<String>::new());
}

#[test]
fn tracker_bound_to_another_loopback_ip_answers_there_and_traces_every_message() {
    let t = tempfile::tempdir().unwrap();
    let trace = t.path().join("trace.jsonl");
    let p = Proc::start(
        t.path(),
        &[
            "xfs",
            "tracker",
            "--port",
            "0",
            "--bind",
            "127.0.0.2",
            "--trace",
            trace.to_str().unwrap(),
        ],
    );
    let tracker = listen_addr(&p);
    assert_eq!(tracker.ip().to_string(), "127.0.0.2");
    register(tracker, "a", 1, &[]);
    assert_eq!(
        ask_text(tracker, "find nothing"),
        r#"{"nodes": [], "type": "nodelist"}"#
    );
    wait_for("four trace lines", 10, || {
        std::fs::read_to_string(&trace).is_ok_and(|t| t.lines().count() >= 4)
    });
    let text = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].contains(r#""type": "node""#),
        "JSON messages are their value: {text}"
    );
    assert!(
        lines[1].contains("ACK") && lines[2].contains("find nothing"),
        "{text}"
    );
}
