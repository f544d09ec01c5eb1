//! BitTorrent-Python (spec `torrent.md` §8): the codec against Python's own pickles, the tracker
//! and nodes as real `peershare` processes spoken to with raw pickled datagrams, and downloads
//! from real nodes and from test owners written here that speak the wire (lossy, dying, silent).

mod support;

use peershare::core::console::Printer;
use peershare::core::shutdown::Shutdown;
use peershare::torrent::journal::Journal;
use peershare::torrent::pickle::{self, PickleError, Value};
use peershare::torrent::tracker::{self, TrackerConfig};
use peershare::torrent::wire::{self, Message, Mode, Owner};
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{pseudo_random, wait_for, Proc};

const PIECE: usize = 7216;
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/torrent");

// ---------------------------------------------------------------------------------------------
// helpers

fn udp() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn send(sock: &UdpSocket, msg: &Message, to: SocketAddr) {
    sock.send_to(&wire::encode(msg), to).unwrap();
}

fn recv(sock: &UdpSocket) -> (Message, SocketAddr) {
    let mut buf = vec![0u8; 65_535];
    let (n, from) = sock.recv_from(&mut buf).expect("a datagram");
    (wire::parse(&buf[..n]).expect("a valid message"), from)
}

/// Receives for `ms` milliseconds; returns whatever arrived.
fn recv_for(sock: &UdpSocket, ms: u64) -> Vec<(Vec<u8>, SocketAddr)> {
    let deadline = Instant::now() + Duration::from_millis(ms);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65_535];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            out.push((buf[..n].to_vec(), from));
        }
    }
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    out
}

fn n2t(node_id: i64, filename: &str, mode: Mode) -> Message {
    Message::Node2Tracker {
        node_id,
        filename: filename.into(),
        mode,
    }
}

fn need(sock: &UdpSocket, tracker: SocketAddr, node_id: i64, f: &str) -> Vec<Owner> {
    send(sock, &n2t(node_id, f, Mode::Need), tracker);
    match recv(sock).0 {
        Message::Tracker2Node {
            dest_node_id,
            search_result,
            filename,
        } => {
            assert_eq!(dest_node_id, node_id);
            assert_eq!(filename, f);
            search_result
        }
        other => panic!("not a Tracker2Node: {other:?}"),
    }
}

/// The address a process logged with `listening on <addr>`.
fn listening(p: &Proc) -> SocketAddr {
    let err = p.wait_stderr("listening on ", 10);
    let at = err.find("listening on ").unwrap() + "listening on ".len();
    err[at..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn start_tracker(dir: &Path, sweep_ms: u64) -> (Proc, SocketAddr) {
    let p = Proc::start(
        dir,
        &[
            "torrent",
            "tracker",
            "--port",
            "0",
            "--sweep-interval-ms",
            &sweep_ms.to_string(),
        ],
    );
    let addr = listening(&p);
    p.wait_stdout("Tracker program started", 10);
    (p, addr)
}

fn start_node(dir: &Path, id: i64, tracker: SocketAddr, extra: &[&str]) -> (Proc, SocketAddr) {
    let id = id.to_string();
    let tracker = tracker.to_string();
    let mut args = vec!["torrent", "node", "-node_id", &id, "--tracker", &tracker];
    if !extra.contains(&"--idle-timeout-ms") {
        args.extend_from_slice(&["--idle-timeout-ms", "200"]);
    }
    args.extend_from_slice(extra);
    let p = Proc::start(dir, &args);
    let addr = listening(&p);
    p.wait_stdout("ENTER YOUR COMMAND!", 10);
    (p, addr)
}

fn put_file(dir: &Path, id: i64, name: &str, data: &[u8]) {
    let d = dir.join("node_files").join(format!("node{id}"));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join(name), data).unwrap();
}

fn node_file(dir: &Path, id: i64, name: &str) -> std::path::PathBuf {
    dir.join("node_files").join(format!("node{id}")).join(name)
}

fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

/// A test owner that speaks the wire: answers size queries and serves ranges from memory on
/// its own socket, optionally dropping every `drop_every`-th datagram it sends or going silent
/// after `die_after` pieces. Records every range it was asked for.
#[derive(Clone)]
struct TestOwner {
    requests: Arc<Mutex<Vec<(i64, i64)>>>,
    stop: Arc<AtomicBool>,
}

#[derive(Clone, Copy, Default)]
struct Behaviour {
    drop_every: Option<usize>,
    die_after: Option<usize>,
    ranges_silent: bool,
    size_silent: bool,
}

impl TestOwner {
    fn start(
        node_id: i64,
        filename: &str,
        data: Vec<u8>,
        tracker: SocketAddr,
        b: Behaviour,
    ) -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        send(&sock, &n2t(node_id, filename, Mode::Own), tracker);
        let owner = TestOwner {
            requests: Arc::default(),
            stop: Arc::default(),
        };
        let (requests, stop, name) = (
            owner.requests.clone(),
            owner.stop.clone(),
            filename.to_string(),
        );
        std::thread::spawn(move || {
            let out = udp();
            let sent = AtomicUsize::new(0);
            let mut pieces = 0usize;
            let mut buf = vec![0u8; 65_535];
            let dead = |pieces: usize| b.die_after.is_some_and(|d| pieces >= d);
            let emit = |bytes: Vec<u8>, to: SocketAddr| {
                let k = sent.fetch_add(1, Ordering::SeqCst) + 1;
                if b.drop_every.is_some_and(|n| k.is_multiple_of(n)) {
                    return;
                }
                let _ = out.send_to(&bytes, to);
            };
            while !stop.load(Ordering::SeqCst) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                match wire::parse(&buf[..n]) {
                    Ok(Message::Node2Node {
                        src_node_id,
                        filename,
                        size: -1,
                        ..
                    }) if !b.size_silent && !dead(pieces) => {
                        assert_eq!(filename, name);
                        let m = Message::Node2Node {
                            src_node_id: node_id,
                            dest_node_id: src_node_id,
                            filename,
                            size: data.len() as i64,
                        };
                        let _ = out.send_to(&wire::encode(&m), from);
                    }
                    Ok(Message::ChunkSharing {
                        src_node_id,
                        filename,
                        range,
                        idx: -1,
                        chunk: None,
                        ..
                    }) => {
                        requests.lock().unwrap().push(range);
                        if b.ranges_silent || dead(pieces) {
                            continue;
                        }
                        let (a, e) = (range.0 as usize, (range.1 as usize).min(data.len()));
                        for (k, start) in (a..e).step_by(PIECE).enumerate() {
                            if dead(pieces) {
                                break;
                            }
                            let piece = &data[start..(start + PIECE).min(e)];
                            emit(
                                wire::encode_piece(
                                    node_id,
                                    src_node_id,
                                    &filename,
                                    range,
                                    k as i64,
                                    piece,
                                ),
                                from,
                            );
                            pieces += 1;
                        }
                        if !dead(pieces) {
                            let end = Message::ChunkSharing {
                                src_node_id: node_id,
                                dest_node_id: src_node_id,
                                filename,
                                range,
                                idx: -1,
                                chunk: None,
                            };
                            emit(wire::encode(&end), from);
                        }
                    }
                    _ => {}
                }
            }
        });
        owner
    }

    fn requests(&self) -> Vec<(i64, i64)> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for TestOwner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Waits until the tracker lists `n` owners of `f`.
fn wait_owners(tracker: SocketAddr, f: &str, n: usize) {
    let s = udp();
    wait_for("owners at the tracker", 10, || {
        need(&s, tracker, 999, f).len() == n
    });
}

// ---------------------------------------------------------------------------------------------
// codec

fn expected_messages() -> HashMap<&'static str, Message> {
    let piece: Vec<u8> = (0..PIECE).map(|i| ((i * 7) % 256) as u8).collect();
    let chunk = |src, dest, range, idx, chunk| Message::ChunkSharing {
        src_node_id: src,
        dest_node_id: dest,
        filename: "file_A.txt".into(),
        range,
        idx,
        chunk,
    };
    let owner = |node_id, port, send_freq| Owner {
        node_id,
        ip: "127.0.0.1".into(),
        port,
        send_freq,
    };
    let size = |src, dest, filename: &str, size| Message::Node2Node {
        src_node_id: src,
        dest_node_id: dest,
        filename: filename.into(),
        size,
    };
    HashMap::from([
        ("register", n2t(1, "", Mode::Register)),
        ("own", n2t(2, "file_A.txt", Mode::Own)),
        ("need", n2t(3, "file_A.txt", Mode::Need)),
        ("update", n2t(2, "file_A.txt", Mode::Update)),
        ("exit", n2t(1, "", Mode::Exit)),
        (
            "tracker2node",
            Message::Tracker2Node {
                dest_node_id: 3,
                search_result: vec![
                    owner(1, 50001, 4),
                    owner(2, 50002, 0),
                    owner(70000, 65535, 300),
                ],
                filename: "file_A.txt".into(),
            },
        ),
        (
            "tracker2node_empty",
            Message::Tracker2Node {
                dest_node_id: 3,
                search_result: vec![],
                filename: "nothing".into(),
            },
        ),
        ("size_query", size(3, 1, "file_A.txt", -1)),
        ("size_answer", size(1, 3, "file_A.txt", 1_000_000)),
        ("size_answer_big", size(1, 3, "big.iso", 5_000_000_000)),
        ("range_request", chunk(3, 1, (0, 100_000), -1, None)),
        ("piece", chunk(1, 3, (0, 100_000), 5, Some(piece.clone()))),
        (
            "piece_short",
            chunk(1, 3, (33, 67), 0, Some(piece[..34].to_vec())),
        ),
        ("end_marker", chunk(1, 3, (0, 100_000), -1, None)),
        (
            "unicode_name",
            n2t(2_147_483_647, "f\u{ef}le \u{2713}.txt", Mode::Own),
        ),
    ])
}

fn fixture_lines() -> Vec<(String, u8, bool, Vec<u8>)> {
    let text = std::fs::read_to_string(format!("{FIXTURES}/pickles.txt")).unwrap();
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let bytes = (0..f[3].len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&f[3][i..i + 2], 16).unwrap())
                .collect();
            (
                f[0].to_string(),
                f[1].parse().unwrap(),
                f[2] == "accept",
                bytes,
            )
        })
        .collect()
}

#[test]
fn codec_decodes_python_protocol_2_3_4_5_dumps_of_every_message() {
    let expected = expected_messages();
    let lines = fixture_lines();
    let mut accepted = 0;
    for (name, proto, accept, bytes) in &lines {
        let got = wire::parse(bytes);
        if *accept {
            assert_eq!(
                got.as_ref().ok(),
                expected.get(name.as_str()),
                "{name} p{proto}"
            );
            accepted += 1;
        } else {
            assert!(got.is_err(), "{name} p{proto} must be refused: {got:?}");
        }
    }
    // Every message in every protocol (pieces only from protocol 3 on).
    assert_eq!(accepted, expected.len() * 4 - 2);
    let forbidden = lines.iter().filter(|l| l.0.ends_with("_forbidden")).count();
    assert_eq!(forbidden, 16);
}

#[test]
fn codec_encodes_register_to_the_test_vector() {
    let hex: String = wire::encode(&n2t(1, "", Mode::Register))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        hex,
        "80037d2858070000006e6f64655f69644b01580800000066696c656e616d65580000000058040000006d6f64654b00752e"
    );
}

#[test]
fn python_pickle_loads_every_encoded_message_to_the_expected_dict() {
    let Ok(mut child) = std::process::Command::new("python3")
        .arg(format!("{FIXTURES}/make_pickles.py"))
        .arg("--check")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    else {
        eprintln!("python3 is not installed; skipping");
        return;
    };
    let expected = expected_messages();
    let mut input = String::new();
    for (name, msg) in &expected {
        let hex: String = wire::encode(msg)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        input.push_str(&format!("{name} {hex}\n"));
    }
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(count(&text, "ok "), expected.len(), "{text}");
    assert!(!text.contains("bad "), "{text}");
}

#[test]
fn codec_rejects_global_stack_global_reduce_build_and_every_non_listed_opcode() {
    let allowed: &[u8] = &[
        0x80, 0x95, 0x2e, 0x28, 0x7d, 0x73, 0x75, 0x5d, 0x61, 0x65, 0x29, 0x74, 0x85, 0x86, 0x87,
        0x4e, 0x88, 0x89, 0x4a, 0x4b, 0x4d, 0x8a, 0x58, 0x8c, 0x8d, 0x42, 0x43, 0x8e, 0x71, 0x72,
        0x94, 0x68, 0x6a,
    ];
    for op in 0..=255u8 {
        if allowed.contains(&op) {
            continue;
        }
        // The opcode right after the protocol header, then plausible operands.
        let mut bytes = vec![0x80, 4, op];
        bytes.extend_from_slice(b"os\nsystem\n\x00\x00\x00\x00.");
        assert_eq!(
            pickle::decode(&bytes),
            Err(PickleError::Forbidden(op)),
            "opcode {op:#04x}"
        );
    }
    // GLOBAL (c), STACK_GLOBAL (\x93), REDUCE (R), BUILD (b) inside an otherwise valid dict.
    for evil in [
        &b"\x80\x03}q\x00X\x04\x00\x00\x00modeq\x01cos\nsystem\nq\x02s."[..],
        b"\x80\x04}\x8c\x04mode\x8c\x02os\x8c\x06system\x93s.",
        b"\x80\x03}X\x04\x00\x00\x00mode)Rs.",
        b"\x80\x03}X\x04\x00\x00\x00mode}}bs.",
    ] {
        assert!(matches!(
            pickle::decode(evil),
            Err(PickleError::Forbidden(_))
        ));
    }
}

#[test]
fn codec_rejects_truncated_oversized_deep_and_trailing_garbage_inputs_without_panic() {
    let valid: Vec<Vec<u8>> = fixture_lines()
        .into_iter()
        .filter(|l| l.2)
        .map(|l| l.3)
        .collect();
    for bytes in &valid {
        for cut in 0..bytes.len() {
            assert!(
                wire::parse(&bytes[..cut]).is_err(),
                "a truncated pickle parsed"
            );
        }
        let mut trailing = bytes.clone();
        trailing.push(b'.');
        assert!(matches!(
            pickle::decode(&trailing),
            Err(PickleError::TrailingBytes(1))
        ));
    }
    // Nine nested lists under the top dict.
    let mut deep = b"\x80\x03}X\x01\x00\x00\x00a".to_vec();
    deep.extend(std::iter::repeat_n(b']', 9));
    deep.extend(std::iter::repeat_n(b'a', 8));
    deep.extend_from_slice(b"s.");
    assert_eq!(pickle::decode(&deep), Err(PickleError::TooDeep));
    // Absurd lengths never allocate.
    for absurd in [
        &b"\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\x7f"[..],
        b"\x80\x04B\xff\xff\xff\xff",
        b"\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\xff}.",
        b"\x80\x04\x8a\xff",
    ] {
        assert!(pickle::decode(absurd).is_err());
    }
    assert!(matches!(
        pickle::decode(&vec![b'('; 70_000]),
        Err(PickleError::TooLong(70_000))
    ));
    // A stack of 5,000 Nones.
    let mut wide = b"\x80\x03".to_vec();
    wide.extend(std::iter::repeat_n(b'N', 5_000));
    assert_eq!(pickle::decode(&wide), Err(PickleError::StackFull));
    // Property: pseudo-random mutations of valid pickles never panic.
    let noise = pseudo_random(400_000, 42);
    let mut at = 0;
    let mut next = || {
        at = (at + 1) % noise.len();
        noise[at] as usize
    };
    for round in 0..20_000 {
        let mut bytes = valid[round % valid.len()].clone();
        for _ in 0..1 + next() % 4 {
            let i = (next() << 8 | next()) % bytes.len();
            match next() % 3 {
                0 => bytes[i] = next() as u8,
                1 => {
                    bytes.remove(i);
                }
                _ => bytes.insert(i, next() as u8),
            }
            if bytes.is_empty() {
                bytes.push(0);
            }
        }
        let _ = wire::parse(&bytes);
    }
}

#[test]
fn codec_sends_range_as_tuple_and_addr_as_list() {
    let chunk = wire::encode(&Message::ChunkSharing {
        src_node_id: 1,
        dest_node_id: 2,
        filename: "f".into(),
        range: (0, 5),
        idx: -1,
        chunk: None,
    });
    let v = pickle::decode(&chunk).unwrap();
    assert_eq!(
        v.get("range"),
        Some(&Value::Tuple(vec![Value::Int(0), Value::Int(5)]))
    );
    // TUPLE2 right after the two BININT1s.
    assert!(chunk.windows(5).any(|w| w == [0x4b, 0, 0x4b, 5, 0x86]));
    let reply = wire::encode(&Message::Tracker2Node {
        dest_node_id: 1,
        search_result: vec![Owner {
            node_id: 2,
            ip: "127.0.0.1".into(),
            port: 5000,
            send_freq: 1,
        }],
        filename: "f".into(),
    });
    let v = pickle::decode(&reply).unwrap();
    let Some(Value::List(entries)) = v.get("search_result") else {
        panic!("{v:?}")
    };
    let Value::Tuple(pair) = &entries[0] else {
        panic!("{entries:?}")
    };
    assert_eq!(
        pair[0].get("addr"),
        Some(&Value::List(vec![
            Value::str("127.0.0.1"),
            Value::Int(5000)
        ]))
    );
    assert!(
        wire::encode(&Message::ChunkSharing {
            src_node_id: 1,
            dest_node_id: 2,
            filename: "f".into(),
            range: (0, 100_000),
            idx: 13,
            chunk: Some(vec![0; PIECE]),
        })
        .len()
            <= 9_216
    );
}

// ---------------------------------------------------------------------------------------------
// tracker

#[test]
fn tracker_records_own_and_answers_need_with_owners_ranked_by_send_freq() {
    let dir = tempfile::tempdir().unwrap();
    let (t, tracker) = start_tracker(dir.path(), 60_000);
    let owners: Vec<UdpSocket> = (0..3).map(|_| udp()).collect();
    for (i, s) in owners.iter().enumerate() {
        send(s, &n2t(i as i64 + 1, "f.txt", Mode::Own), tracker);
    }
    t.wait_stdout("Node 3 owns f.txt and is ready to send.", 10);
    let asker = udp();
    let got = need(&asker, tracker, 7, "f.txt");
    let ids: Vec<i64> = got.iter().map(|o| o.node_id).collect();
    assert_eq!(ids, vec![1, 2, 3], "ties keep OWN order");
    assert_eq!(
        got[1].port,
        i64::from(owners[1].local_addr().unwrap().port())
    );
    assert_eq!(got[1].ip, "127.0.0.1");
    for (id, times) in [(3, 2), (2, 1)] {
        for _ in 0..times {
            send(&owners[0], &n2t(id, "f.txt", Mode::Update), tracker);
        }
    }
    let got = need(&asker, tracker, 7, "f.txt");
    let ranked: Vec<(i64, i64)> = got.iter().map(|o| (o.node_id, o.send_freq)).collect();
    assert_eq!(ranked, vec![(3, 2), (2, 1), (1, 0)]);
    assert!(need(&asker, tracker, 7, "other").is_empty());
    t.wait_stdout("Node7 is searching for other", 10);
}

#[test]
fn tracker_update_increments_send_freq_and_own_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let (_t, tracker) = start_tracker(dir.path(), 60_000);
    let s = udp();
    send(&s, &n2t(4, "a", Mode::Own), tracker);
    send(&s, &n2t(4, "b", Mode::Own), tracker);
    send(&s, &n2t(4, "a", Mode::Own), tracker);
    let got = need(&s, tracker, 4, "a");
    assert_eq!(got.len(), 1, "OWN twice does not list twice");
    assert_eq!(got[0].send_freq, 0);
    send(&s, &n2t(4, "a", Mode::Update), tracker);
    send(&s, &n2t(4, "b", Mode::Update), tracker);
    assert_eq!(need(&s, tracker, 4, "a")[0].send_freq, 2);
    let nodes = dir.path().join("tracker_db/nodes.json");
    wait_for("nodes.json", 5, || {
        std::fs::read_to_string(&nodes).is_ok_and(|t| t == "{\n    \"node4\": 2\n}")
    });
}

#[test]
fn tracker_exit_removes_node_entries_and_logs() {
    let dir = tempfile::tempdir().unwrap();
    let (t, tracker) = start_tracker(dir.path(), 60_000);
    let (a, b) = (udp(), udp());
    send(&a, &n2t(1, "f", Mode::Own), tracker);
    send(&a, &n2t(1, "g", Mode::Own), tracker);
    send(&b, &n2t(2, "f", Mode::Own), tracker);
    send(&a, &n2t(1, "", Mode::Exit), tracker);
    t.wait_stdout("Node 1 exited torrent intentionally.", 10);
    let ids: Vec<i64> = need(&b, tracker, 2, "f")
        .iter()
        .map(|o| o.node_id)
        .collect();
    assert_eq!(ids, vec![2]);
    assert!(need(&b, tracker, 2, "g").is_empty());
    // An EXIT from a key the tracker never saw is harmless.
    send(&udp(), &n2t(9, "", Mode::Exit), tracker);
    t.wait_stdout("Node 9 exited torrent intentionally.", 10);
    let log = std::fs::read_to_string(dir.path().join("logs/_tracker.log")).unwrap();
    assert!(log.contains("]  Node 1 exited torrent intentionally.\n"));
    assert_eq!(need(&b, tracker, 2, "f").len(), 1);
}

#[test]
fn tracker_sweep_removes_every_silent_node_and_logs_alive_and_left_lists() {
    let dir = tempfile::tempdir().unwrap();
    let (t, tracker) = start_tracker(dir.path(), 300);
    let alive = udp();
    let (b, c) = (udp(), udp());
    send(&alive, &n2t(1, "f", Mode::Own), tracker);
    send(&b, &n2t(2, "f", Mode::Own), tracker);
    send(&c, &n2t(3, "f", Mode::Register), tracker);
    send(&c, &n2t(3, "f", Mode::Own), tracker);
    let stop = Arc::new(AtomicBool::new(false));
    let keep = {
        let (s, stop) = (alive.try_clone().unwrap(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                send(&s, &n2t(1, "", Mode::Register), tracker);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    t.wait_stdout(
        "Node(s) [1, 2, 3] is in the torrent and node(s)[] have left.",
        10,
    );
    t.wait_stdout(
        "Node(s) [1] is in the torrent and node(s)[2, 3] have left.",
        10,
    );
    let ids: Vec<i64> = need(&udp(), tracker, 5, "f")
        .iter()
        .map(|o| o.node_id)
        .collect();
    assert_eq!(ids, vec![1]);
    stop.store(true, Ordering::SeqCst);
    keep.join().unwrap();
    t.wait_stdout("node(s)[1] have left.", 10);
    assert!(need(&udp(), tracker, 5, "f").is_empty());
}

#[test]
fn tracker_reply_fits_9216_bytes_with_many_owners() {
    let dir = tempfile::tempdir().unwrap();
    let (t, tracker) = start_tracker(dir.path(), 60_000);
    let socks: Vec<UdpSocket> = (0..300).map(|_| udp()).collect();
    let asker = udp();
    for (i, s) in socks.iter().enumerate() {
        send(s, &n2t(1000 + i as i64, "popular", Mode::Own), tracker);
        if i % 50 == 49 {
            need(&asker, tracker, 1, "popular");
        }
    }
    t.wait_stdout("Node 1299 owns popular", 10);
    send(&asker, &n2t(1, "popular", Mode::Need), tracker);
    let mut buf = vec![0u8; 65_535];
    let (n, _) = asker.recv_from(&mut buf).unwrap();
    assert!(n <= 9_216, "{n} bytes");
    let Ok(Message::Tracker2Node { search_result, .. }) = wire::parse(&buf[..n]) else {
        panic!()
    };
    assert!(search_result.len() >= 100, "{}", search_result.len());
    assert_eq!(search_result[0].node_id, 1000);
}

#[test]
fn tracker_writes_log_lines_and_snapshots_like_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let (t, tracker) = start_tracker(dir.path(), 60_000);
    let s = udp();
    let port = s.local_addr().unwrap().port();
    send(&s, &n2t(1, "file_A.txt", Mode::Own), tracker);
    send(&s, &n2t(1, "file_A.txt", Mode::Update), tracker);
    need(&s, tracker, 1, "file_A.txt");
    t.wait_stdout("Node1 is searching for file_A.txt", 10);
    let log = std::fs::read_to_string(dir.path().join("logs/_tracker.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines[0].ends_with(
        "]  ***************** Tracker program started just right now! *****************"
    ));
    assert!(lines[1].ends_with("]  Node 1 owns file_A.txt and is ready to send."));
    assert!(lines[2].ends_with("]  Node1 is searching for file_A.txt"));
    assert_eq!(&lines[1][..1], "[");
    assert_eq!(&lines[1][9..12], "]  ");
    // Snapshots are written by their own thread, at most once a second: wait for them.
    let files_path = dir.path().join("tracker_db/files.json");
    let nodes_path = dir.path().join("tracker_db/nodes.json");
    wait_for("the snapshots", 10, || {
        std::fs::read_to_string(&nodes_path).is_ok_and(|n| n.contains("\"node1\": 1"))
    });
    let files = std::fs::read_to_string(files_path).unwrap();
    assert_eq!(
        files,
        format!("{{\n    \"file_A.txt\": [\n        \"{{\\\"node_id\\\": 1, \\\"addr\\\": [\\\"127.0.0.1\\\", {port}]}}\"\n    ]\n}}")
    );
    let nodes = std::fs::read_to_string(dir.path().join("tracker_db/nodes.json")).unwrap();
    assert_eq!(nodes, "{\n    \"node1\": 1\n}");
}

#[test]
fn many_owns_do_not_delay_a_need_reply_and_snapshots_wait_for_their_interval_or_exit() {
    let _alone = IN_PROCESS.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tracker = socket.local_addr().unwrap();
    let journal =
        Journal::open(Printer::plain(), &dir.path().join("logs"), "_tracker.log").unwrap();
    let db_dir = dir.path().join("tracker_db");
    let config = TrackerConfig {
        sweep_interval: Duration::from_secs(3600),
        snapshot_interval: Duration::from_secs(3600),
        db_dir: db_dir.clone(),
    };
    let shutdown = Shutdown::new();
    let stop = shutdown.clone();
    let running = std::thread::spawn(move || tracker::run(config, socket, journal, &stop));
    let owner = udp();
    let asker = udp();
    let long = "n".repeat(400);
    for batch in 0..20 {
        for i in 0..100 {
            send(
                &owner,
                &n2t(1, &format!("{long}-{}", batch * 100 + i), Mode::Own),
                tracker,
            );
        }
        // Every NEED is answered in order after the OWNs before it, and knows their owner.
        let owners = need(&asker, tracker, 7, &format!("{long}-{}", batch * 100 + 99));
        assert_eq!(owners.len(), 1, "batch {batch}");
    }
    assert!(
        !db_dir.join("files.json").exists(),
        "no snapshot is written on the receive path before its interval"
    );
    shutdown.trigger();
    running.join().unwrap().unwrap();
    let files = std::fs::read_to_string(db_dir.join("files.json")).unwrap();
    assert_eq!(
        files.matches(&long).count(),
        2000,
        "the last state is saved on exit"
    );
    assert!(peershare::torrent::state::TrackerState::default().files_json() == "{}");
}

#[test]
fn tracker_drops_garbage_and_forbidden_pickles_and_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let (t, tracker) = start_tracker(dir.path(), 60_000);
    let s = udp();
    s.send_to(b"hello", tracker).unwrap();
    s.send_to(b"\x80\x04cos\nsystem\n(S'touch pwned'\ntR.", tracker)
        .unwrap();
    s.send_to(&[], tracker).unwrap();
    let wrong = wire::encode(&Message::Node2Node {
        src_node_id: 1,
        dest_node_id: 2,
        filename: "f".into(),
        size: -1,
    });
    s.send_to(&wrong, tracker).unwrap();
    let bad_mode = pickle::encode(&Value::Dict(vec![
        (Value::str("node_id"), Value::Int(1)),
        (Value::str("filename"), Value::str("f")),
        (Value::str("mode"), Value::Int(7)),
    ]));
    s.send_to(&bad_mode, tracker).unwrap();
    t.wait_stderr("mode 7 is not 0 to 4", 10);
    t.wait_stderr("opcode 0x63 is not allowed", 10);
    send(&s, &n2t(1, "f", Mode::Own), tracker);
    assert_eq!(need(&s, tracker, 1, "f").len(), 1);
    assert!(!dir.path().join("pwned").exists());
}

// ---------------------------------------------------------------------------------------------
// node

#[test]
fn node_start_logs_and_sends_register_twice_then_every_interval() {
    let dir = tempfile::tempdir().unwrap();
    let fake = udp();
    let tracker = fake.local_addr().unwrap();
    let (n, s) = start_node(dir.path(), 5, tracker, &["--register-interval-ms", "150"]);
    let mut registers = 0;
    let mut buf = vec![0u8; 65_535];
    while registers < 4 {
        let (len, from) = fake.recv_from(&mut buf).unwrap();
        assert_eq!(from, s, "REGISTER comes from the service socket");
        assert_eq!(
            wire::parse(&buf[..len]).unwrap(),
            n2t(5, "", Mode::Register)
        );
        registers += 1;
    }
    let out = n.wait_stdout("ENTER YOUR COMMAND!", 5);
    let lines: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
    assert!(lines[0]
        .ends_with("]  ***************** Node program started just right now! *****************"));
    assert!(lines[1].ends_with("]  You entered Torrent."));
    n.wait_stdout(
        "I informed the tracker that I'm still alive in the torrent!",
        5,
    );
    let log = std::fs::read_to_string(dir.path().join("logs/node5.log")).unwrap();
    assert!(log.contains("]  You entered Torrent.\n"));
    assert!(!log.contains("ENTER YOUR COMMAND!"));
}

#[test]
fn node_send_missing_file_logs_you_dont_have() {
    let dir = tempfile::tempdir().unwrap();
    let fake = udp();
    let tracker = fake.local_addr().unwrap();
    put_file(dir.path(), 6, "have.txt", b"x");
    let (mut n, s) = start_node(dir.path(), 6, tracker, &[]);
    n.type_line("torrent -setMode send nope.txt");
    n.wait_stdout("]  You don't have nope.txt", 5);
    n.type_line("torrent -setMode send ../etc/passwd");
    n.wait_stdout("]  You don't have ../etc/passwd", 5);
    n.type_line("torrent -setMode send have.txt");
    n.wait_stdout(
        "You are free now! You are waiting for other nodes' requests!",
        5,
    );
    n.type_line("torrent -setMode send have.txt");
    n.wait_stdout("But you are already in SEND(upload) mode!", 5);
    let owns: Vec<SocketAddr> = recv_for(&fake, 300)
        .into_iter()
        .filter(|(b, _)| wire::parse(b) == Ok(n2t(6, "have.txt", Mode::Own)))
        .map(|(_, from)| from)
        .collect();
    assert_eq!(owns, vec![s, s], "OWN every time, from S");
}

#[test]
fn node_answers_size_query_from_a_fresh_socket() {
    let dir = tempfile::tempdir().unwrap();
    let fake = udp();
    put_file(dir.path(), 7, "f.bin", &[1u8; 12_345]);
    put_file(dir.path(), 7, "empty", b"");
    let (n, s) = start_node(dir.path(), 7, fake.local_addr().unwrap(), &[]);
    let q = udp();
    let ask = |f: &str| Message::Node2Node {
        src_node_id: 9,
        dest_node_id: 7,
        filename: f.into(),
        size: -1,
    };
    send(&q, &ask("f.bin"), s);
    let (answer, from) = recv(&q);
    assert_ne!(from, s, "answers come from a fresh socket");
    assert_eq!(
        answer,
        Message::Node2Node {
            src_node_id: 7,
            dest_node_id: 9,
            filename: "f.bin".into(),
            size: 12_345
        }
    );
    send(&q, &ask("empty"), s);
    assert!(matches!(recv(&q).0, Message::Node2Node { size: 0, .. }));
    send(&q, &ask("missing"), s);
    n.wait_stdout("Cannot serve missing to node9: no such file", 5);
    send(&q, &ask("../x"), s);
    n.wait_stdout(
        "Cannot serve ../x to node9: the file name contains a path separator",
        5,
    );
    assert!(recv_for(&q, 200).is_empty());
}

#[test]
fn node_serves_range_as_7216_byte_pieces_then_end_marker_then_update() {
    let dir = tempfile::tempdir().unwrap();
    let fake = udp();
    let data = pseudo_random(20_000, 3);
    put_file(dir.path(), 8, "f.bin", &data);
    let (n, s) = start_node(dir.path(), 8, fake.local_addr().unwrap(), &["--verbose"]);
    let _ = recv_for(&fake, 100);
    let q = udp();
    let req = |range| Message::ChunkSharing {
        src_node_id: 9,
        dest_node_id: 8,
        filename: "f.bin".into(),
        range,
        idx: -1,
        chunk: None,
    };
    // The end is past the file: clamped to 20,000.
    send(&q, &req((100, 25_000)), s);
    let mut from_port = None;
    let mut got = Vec::new();
    for k in 0..3 {
        let (m, from) = recv(&q);
        assert_ne!(from, s);
        assert!(from_port.is_none_or(|p| p == from));
        from_port = Some(from);
        let Message::ChunkSharing {
            src_node_id: 8,
            dest_node_id: 9,
            range: (100, 25_000),
            idx,
            chunk: Some(chunk),
            ..
        } = m
        else {
            panic!("{m:?}")
        };
        assert_eq!(idx, k);
        assert_eq!(chunk.len(), [PIECE, PIECE, 19_900 - 2 * PIECE][k as usize]);
        got.extend(chunk);
    }
    assert_eq!(got, data[100..]);
    assert_eq!(
        recv(&q),
        (
            req((100, 25_000)).clone().pipe_end_marker(8, 9),
            from_port.unwrap()
        )
    );
    let (update, ufrom) = recv(&fake);
    assert_eq!(update, n2t(8, "f.bin", Mode::Update));
    assert_eq!(ufrom, from_port.unwrap(), "UPDATE from the serving socket");
    n.wait_stdout("The 0/3 has been sent!", 5);
    n.wait_stdout("The 2/3 has been sent!", 5);
    n.wait_stdout(
        "The process of sending a chunk to node9 of file f.bin has finished!",
        5,
    );
    // A start at or past the end: the end marker only.
    send(&q, &req((20_000, 30_000)), s);
    assert_eq!(recv(&q).0, req((20_000, 30_000)).pipe_end_marker(8, 9));
}

trait EndMarker {
    fn pipe_end_marker(self, src: i64, dest: i64) -> Message;
}

impl EndMarker for Message {
    /// The owner's end marker for this request: same filename and range, ids swapped.
    fn pipe_end_marker(self, src: i64, dest: i64) -> Message {
        let Message::ChunkSharing {
            filename, range, ..
        } = self
        else {
            panic!()
        };
        Message::ChunkSharing {
            src_node_id: src,
            dest_node_id: dest,
            filename,
            range,
            idx: -1,
            chunk: None,
        }
    }
}

#[test]
fn node_survives_garbage_forbidden_pickles_traversal_and_bad_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let fake = udp();
    put_file(dir.path(), 3, "f", &[5u8; 100]);
    std::fs::write(dir.path().join("node_files/secret"), b"secret").unwrap();
    let (n, s) = start_node(dir.path(), 3, fake.local_addr().unwrap(), &[]);
    let q = udp();
    q.send_to(b"\x00\x01garbage", s).unwrap();
    q.send_to(b"\x80\x04cposix\nsystem\n(S'touch pwned'\ntR.", s)
        .unwrap();
    q.send_to(&vec![0x28; 9_000], s).unwrap();
    let req = |f: &str, range| Message::ChunkSharing {
        src_node_id: 4,
        dest_node_id: 3,
        filename: f.into(),
        range,
        idx: -1,
        chunk: None,
    };
    send(&q, &req("../secret", (0, 6)), s);
    n.wait_stdout("Cannot serve ../secret to node4", 5);
    send(&q, &req("f", (-5, 6)), s);
    n.wait_stdout(
        "Cannot serve f to node4: the range (-5, 6) starts before the file",
        5,
    );
    assert!(
        recv_for(&q, 200).is_empty(),
        "nothing is sent for refused requests"
    );
    n.wait_stderr("opcode 0x63 is not allowed", 5);
    send(&q, &req("f", (90, 1_000_000)), s);
    let (m, _) = recv(&q);
    assert!(matches!(m, Message::ChunkSharing { chunk: Some(ref c), .. } if c.len() == 10));
    assert!(!dir.path().join("pwned").exists());
}

#[test]
fn invalid_stdin_line_prints_usage_and_node_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    let fake = udp();
    let (mut n, _) = start_node(dir.path(), 2, fake.local_addr().unwrap(), &[]);
    n.type_line("hello world");
    n.type_line("");
    n.type_line("torrent -setMode send");
    n.type_line("torrent -setMode fly f");
    let out = n.wait_stdout("Usage: torrent -setMode send <filename> | torrent -setMode download <filename> | torrent -setMode exit", 5);
    n.type_line("torrent -setMode send nothing");
    let out2 = n.wait_stdout("You don't have nothing", 5);
    assert!(out2.len() > out.len());
    assert_eq!(
        count(&n.stdout.text(), "Usage: torrent -setMode send <filename>"),
        3
    );
    let log = std::fs::read_to_string(dir.path().join("logs/node2.log")).unwrap();
    assert!(!log.contains("Usage"));
}

#[test]
fn exit_and_eof_send_exit_and_log_you_exited_the_torrent() {
    let dir = tempfile::tempdir().unwrap();
    for how in ["exit", "eof"] {
        let fake = udp();
        let (mut n, s) = start_node(dir.path(), 4, fake.local_addr().unwrap(), &[]);
        if how == "exit" {
            n.type_line("torrent -setMode exit");
        } else {
            n.close_stdin();
        }
        assert_eq!(n.wait_exit(10), Some(0));
        n.wait_stdout("]  You exited the torrent!", 5);
        let exits: Vec<SocketAddr> = recv_for(&fake, 200)
            .into_iter()
            .filter(|(b, _)| wire::parse(b) == Ok(n2t(4, "", Mode::Exit)))
            .map(|(_, f)| f)
            .collect();
        assert_eq!(exits, vec![s], "{how}");
    }
}

#[test]
fn stdout_log_line_format_has_two_spaces_and_a_blank_line() {
    let dir = tempfile::tempdir().unwrap();
    let fake = udp();
    let (n, _) = start_node(dir.path(), 1, fake.local_addr().unwrap(), &[]);
    let out = n.wait_stdout("You entered Torrent.", 5);
    let mut lines = out.lines();
    let first = lines.next().unwrap();
    let b = first.as_bytes();
    assert_eq!(b[0], b'[');
    assert!(b[1..9]
        .iter()
        .enumerate()
        .all(|(i, c)| if i == 2 || i == 5 {
            *c == b':'
        } else {
            c.is_ascii_digit()
        }));
    assert_eq!(
        &first[9..],
        "]  ***************** Node program started just right now! *****************"
    );
    assert_eq!(lines.next(), Some(""));
    assert!(lines.next().unwrap().ends_with("]  You entered Torrent."));
    assert_eq!(lines.next(), Some(""));
}

// ---------------------------------------------------------------------------------------------
// downloads

#[test]
fn download_from_one_owner_is_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (_t, tracker) = start_tracker(dir.path(), 60_000);
    let data = pseudo_random(1_000_003, 1);
    put_file(dir.path(), 1, "one.bin", &data);
    let (mut owner, _) = start_node(dir.path(), 1, tracker, &["--verbose"]);
    owner.type_line("torrent -setMode send one.bin");
    wait_owners(tracker, "one.bin", 1);
    let (mut n, _) = start_node(dir.path(), 2, tracker, &[]);
    n.type_line("torrent -setMode download one.bin");
    n.wait_stdout(
        "one.bin has successfully downloaded and saved in my files directory.",
        30,
    );
    assert_eq!(
        std::fs::read(node_file(dir.path(), 2, "one.bin")).unwrap(),
        data
    );
    let out = n.stdout.text();
    for line in [
        "You just started to download one.bin. Let's search it in torrent!",
        "You are going to download one.bin from Node(s) [1]",
        "The file one.bin which you are about to download, has size of 1000003 bytes",
        "I sent a request for a chunk of one.bin for node1",
        "All the chunks of one.bin has downloaded from neighboring peers. But they must be reassembled!",
        "All the pieces of the one.bin is now sorted and ready to be reassembled.",
    ] {
        assert!(out.contains(line), "{line}\n{out}");
    }
    owner.wait_stdout("The 138/139 has been sent!", 10);
    owner.wait_stdout(
        "The process of sending a chunk to node2 of file one.bin has finished!",
        10,
    );
    // The owner's UPDATE reached the tracker.
    let s = udp();
    wait_for("send_freq 1", 10, || {
        need(&s, tracker, 9, "one.bin")[0].send_freq == 1
    });
    // A second download of a file we have.
    n.type_line("torrent -setMode download one.bin");
    n.wait_stdout("You already have this file!", 5);
    n.type_line("torrent -setMode download nobody.bin");
    n.wait_stdout("No one has nobody.bin", 5);
    assert!(!node_file(dir.path(), 2, "one.bin.part").exists());
}

#[test]
fn download_split_across_three_owners_uses_python_round_half_even_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let (_t, tracker) = start_tracker(dir.path(), 60_000);
    // Real owners: all three serve, the result is byte-identical (20 MiB).
    let data = pseudo_random(20 << 20, 2);
    let mut owners = Vec::new();
    for id in 1..=3 {
        put_file(dir.path(), id, "big.bin", &data);
        let (mut o, _) = start_node(dir.path(), id, tracker, &[]);
        o.type_line("torrent -setMode send big.bin");
        owners.push(o);
    }
    wait_owners(tracker, "big.bin", 3);
    let (mut n, _) = start_node(dir.path(), 4, tracker, &[]);
    n.type_line("torrent -setMode download big.bin");
    n.wait_stdout(
        "big.bin has successfully downloaded and saved in my files directory.",
        60,
    );
    n.wait_stdout(
        "You are going to download big.bin from Node(s) [1, 2, 3]",
        1,
    );
    assert!(std::fs::read(node_file(dir.path(), 4, "big.bin")).unwrap() == data);
    for o in &owners {
        o.wait_stdout(
            "The process of sending a chunk to node4 of file big.bin has finished!",
            10,
        );
    }
    // Test owners record the exact ranges: 100,000 / 3 and 14,433 / 2 (7,216.5 rounds to even).
    let small = pseudo_random(100_000, 3);
    let t3: Vec<TestOwner> = (11..=13)
        .map(|id| {
            TestOwner::start(
                id,
                "thirds.bin",
                small.clone(),
                tracker,
                Behaviour::default(),
            )
        })
        .collect();
    wait_owners(tracker, "thirds.bin", 3);
    n.type_line("torrent -setMode download thirds.bin");
    n.wait_stdout("thirds.bin has successfully downloaded", 20);
    let ranges: Vec<Vec<(i64, i64)>> = t3.iter().map(|o| o.requests()).collect();
    assert_eq!(
        ranges,
        vec![
            vec![(0, 33_333)],
            vec![(33_333, 66_667)],
            vec![(66_667, 100_000)]
        ]
    );
    assert_eq!(
        std::fs::read(node_file(dir.path(), 4, "thirds.bin")).unwrap(),
        small
    );
    let odd = pseudo_random(14_433, 4);
    let t2: Vec<TestOwner> = (21..=22)
        .map(|id| TestOwner::start(id, "halves.bin", odd.clone(), tracker, Behaviour::default()))
        .collect();
    wait_owners(tracker, "halves.bin", 2);
    n.type_line("torrent -setMode download halves.bin");
    n.wait_stdout("halves.bin has successfully downloaded", 20);
    assert_eq!(t2[0].requests(), vec![(0, 7_216)]);
    assert_eq!(t2[1].requests(), vec![(7_216, 14_433)]);
    assert_eq!(
        std::fs::read(node_file(dir.path(), 4, "halves.bin")).unwrap(),
        odd
    );
}

#[test]
fn download_excludes_self_and_uses_at_most_three_owners() {
    let dir = tempfile::tempdir().unwrap();
    let (_t, tracker) = start_tracker(dir.path(), 60_000);
    let data = pseudo_random(50_000, 5);
    let owners: Vec<TestOwner> = (1..=4)
        .map(|id| TestOwner::start(id, "x.bin", data.clone(), tracker, Behaviour::default()))
        .collect();
    // The downloader itself (node 9) is listed with the most uploads.
    let me = TestOwner::start(9, "x.bin", data.clone(), tracker, Behaviour::default());
    let s = udp();
    for (id, ups) in [(9, 10), (4, 3), (3, 2), (2, 1)] {
        for _ in 0..ups {
            send(&s, &n2t(id, "x.bin", Mode::Update), tracker);
        }
    }
    wait_owners(tracker, "x.bin", 5);
    let (mut n, _) = start_node(dir.path(), 9, tracker, &[]);
    n.type_line("torrent -setMode download x.bin");
    n.wait_stdout("x.bin has successfully downloaded", 20);
    n.wait_stdout("You are going to download x.bin from Node(s) [4, 3, 2]", 1);
    assert!(me.requests().is_empty());
    assert!(owners[0].requests().is_empty(), "node 1 ranks fourth");
    for o in &owners[1..] {
        assert_eq!(o.requests().len(), 1);
    }
    assert_eq!(
        std::fs::read(node_file(dir.path(), 9, "x.bin")).unwrap(),
        data
    );
}

#[test]
fn download_recovers_when_pieces_and_end_marker_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (_t, tracker) = start_tracker(dir.path(), 60_000);
    let data = pseudo_random(1 << 20, 6);
    let lossy = Behaviour {
        drop_every: Some(10),
        ..Behaviour::default()
    };
    let owner = TestOwner::start(1, "lossy.bin", data.clone(), tracker, lossy);
    wait_owners(tracker, "lossy.bin", 1);
    let (mut n, _) = start_node(dir.path(), 2, tracker, &[]);
    n.type_line("torrent -setMode download lossy.bin");
    n.wait_stdout("lossy.bin has successfully downloaded", 30);
    assert_eq!(
        std::fs::read(node_file(dir.path(), 2, "lossy.bin")).unwrap(),
        data
    );
    assert!(n
        .stdout
        .text()
        .contains("missing bytes of lossy.bin from node1"));
    // Re-requests ask only for sub-ranges, never the whole file again.
    let asked = owner.requests();
    assert!(asked.len() > 1);
    assert!(asked[1..].iter().all(|&(a, b)| b - a < (1 << 20)));
}

#[test]
fn download_switches_owner_when_first_owner_goes_silent() {
    let dir = tempfile::tempdir().unwrap();
    let (_t, tracker) = start_tracker(dir.path(), 60_000);
    let data = pseudo_random(600_000, 7);
    let dying = Behaviour {
        die_after: Some(20),
        ..Behaviour::default()
    };
    let first = TestOwner::start(1, "d.bin", data.clone(), tracker, dying);
    let second = TestOwner::start(2, "d.bin", data.clone(), tracker, Behaviour::default());
    let s = udp();
    send(&s, &n2t(1, "d.bin", Mode::Update), tracker);
    wait_owners(tracker, "d.bin", 2);
    let (mut n, _) = start_node(dir.path(), 3, tracker, &[]);
    n.type_line("torrent -setMode download d.bin");
    n.wait_stdout("d.bin has successfully downloaded", 30);
    assert_eq!(
        std::fs::read(node_file(dir.path(), 3, "d.bin")).unwrap(),
        data
    );
    n.wait_stdout("missing bytes of d.bin from node2", 1);
    assert!(first.requests().len() >= 3, "two rounds to the first owner");
    assert!(second.requests().len() >= 2);
}

#[test]
fn download_fails_cleanly_when_all_owners_silent_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_t, tracker) = start_tracker(dir.path(), 60_000);
    let data = pseudo_random(100_000, 8);
    let silent = Behaviour {
        ranges_silent: true,
        ..Behaviour::default()
    };
    let _a = TestOwner::start(1, "s.bin", data.clone(), tracker, silent);
    let _b = TestOwner::start(2, "s.bin", data.clone(), tracker, silent);
    wait_owners(tracker, "s.bin", 2);
    let (mut n, _) = start_node(dir.path(), 3, tracker, &[]);
    n.type_line("torrent -setMode download s.bin");
    n.wait_stdout(
        "Download of s.bin failed: 100000 bytes are still missing",
        30,
    );
    assert!(!node_file(dir.path(), 3, "s.bin").exists());
    assert!(!node_file(dir.path(), 3, "s.bin.part").exists());
    // An owner silent on the size query: `no owner answered` (after 3 × 1 s).
    let mute = Behaviour {
        size_silent: true,
        ..Behaviour::default()
    };
    let _c = TestOwner::start(1, "m.bin", data, tracker, mute);
    wait_owners(tracker, "m.bin", 1);
    n.type_line("torrent -setMode download m.bin");
    n.wait_stdout("Download of m.bin failed: no owner answered", 30);
    assert!(!node_file(dir.path(), 3, "m.bin.part").exists());
    // The node keeps running.
    n.type_line("torrent -setMode download s.bin");
    n.wait_stdout("You are going to download s.bin from Node(s) [1, 2]", 5);
}

#[test]
fn download_of_existing_file_logs_you_already_have_this_file() {
    let dir = tempfile::tempdir().unwrap();
    let fake = udp();
    put_file(dir.path(), 1, "mine.txt", b"hello");
    let (mut n, _) = start_node(dir.path(), 1, fake.local_addr().unwrap(), &[]);
    n.type_line("torrent -setMode download mine.txt");
    n.wait_stdout("]  You already have this file!", 5);
    n.type_line("torrent -setMode download ../mine.txt");
    n.wait_stdout(
        "Usage: torrent -setMode download <filename> (the file name contains a path separator)",
        5,
    );
    let got = recv_for(&fake, 200);
    assert!(got.iter().all(|(b, _)| matches!(
        wire::parse(b),
        Ok(Message::Node2Tracker {
            mode: Mode::Register,
            ..
        })
    )));
}

#[test]
fn empty_file_downloads_as_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_t, tracker) = start_tracker(dir.path(), 60_000);
    put_file(dir.path(), 1, "empty.txt", b"");
    let (mut owner, _) = start_node(dir.path(), 1, tracker, &[]);
    owner.type_line("torrent -setMode send empty.txt");
    wait_owners(tracker, "empty.txt", 1);
    let (mut n, _) = start_node(dir.path(), 2, tracker, &[]);
    n.type_line("torrent -setMode download empty.txt");
    n.wait_stdout("empty.txt has successfully downloaded", 10);
    n.wait_stdout("has size of 0 bytes", 1);
    assert_eq!(
        std::fs::read(node_file(dir.path(), 2, "empty.txt")).unwrap(),
        b""
    );
}

#[test]
fn download_in_progress_is_not_started_twice_and_exit_removes_its_part() {
    let dir = tempfile::tempdir().unwrap();
    let (_t, tracker) = start_tracker(dir.path(), 60_000);
    let silent = Behaviour {
        ranges_silent: true,
        ..Behaviour::default()
    };
    let _a = TestOwner::start(1, "slow.bin", vec![1; 50_000], tracker, silent);
    wait_owners(tracker, "slow.bin", 1);
    let (mut n, _) = start_node(dir.path(), 2, tracker, &["--idle-timeout-ms", "5000"]);
    n.type_line("torrent -setMode download slow.bin");
    n.wait_stdout("I sent a request for a chunk of slow.bin for node1", 10);
    assert!(node_file(dir.path(), 2, "slow.bin.part").exists());
    n.type_line("torrent -setMode download slow.bin");
    n.wait_stdout("You are already downloading slow.bin", 5);
    n.type_line("torrent -setMode exit");
    assert_eq!(n.wait_exit(10), Some(0));
    assert!(!node_file(dir.path(), 2, "slow.bin.part").exists());
}

/// 100 MiB from three owners; run with
/// `cargo test --release --test torrent -- --ignored --nocapture throughput`.
#[test]
#[ignore]
fn throughput_100_mib_from_three_owners() {
    let dir = tempfile::tempdir().unwrap();
    let (_t, tracker) = start_tracker(dir.path(), 60_000);
    let data = pseudo_random(100 << 20, 9);
    let mut owners = Vec::new();
    for id in 1..=3 {
        put_file(dir.path(), id, "hundred.bin", &data);
        let (mut o, _) = start_node(dir.path(), id, tracker, &[]);
        o.type_line("torrent -setMode send hundred.bin");
        owners.push(o);
    }
    wait_owners(tracker, "hundred.bin", 3);
    let (mut n, _) = start_node(dir.path(), 4, tracker, &["--idle-timeout-ms", "1000"]);
    let start = Instant::now();
    n.type_line("torrent -setMode download hundred.bin");
    n.wait_stdout("hundred.bin has successfully downloaded", 600);
    let secs = start.elapsed().as_secs_f64();
    assert!(std::fs::read(node_file(dir.path(), 4, "hundred.bin")).unwrap() == data);
    let rerequests = count(&n.stdout.text(), "Re-requesting");
    println!(
        "100 MiB from 3 owners in {secs:.2} s = {:.1} MiB/s ({rerequests} re-request rounds)",
        100.0 / secs
    );
}

#[test]
fn usage_errors_exit_2_and_a_taken_port_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["torrent", "node"][..],
        &["torrent", "node", "-node_id", "x"],
        &["torrent", "node", "-node_id", "2147483648"],
        &["torrent", "node", "-node_id", "1", "--tracker", "nowhere"],
        &["torrent", "node", "-node_id", "1", "--idle-timeout-ms", "0"],
        &[
            "torrent",
            "node",
            "-node_id",
            "1",
            "--register-interval-ms",
            "99999999999",
        ],
        &["torrent", "tracker", "--sweep-interval-ms", "0"],
        &["torrent", "tracker", "--snapshot-interval-ms", "0"],
    ] {
        let mut p = Proc::start(dir.path(), args);
        assert_eq!(p.wait_exit(10), Some(2), "{args:?}");
        let err = p.wait_stderr("error: ", 5);
        // One `error:` line naming the problem, then clap's usage and `--help` tip.
        assert!(
            err.starts_with("error: ") && err.matches("error:").count() == 1,
            "{err}"
        );
    }
    let mut p = Proc::start(dir.path(), &["torrent", "node", "--node_id", "1"]);
    p.wait_stdout("ENTER YOUR COMMAND!", 10);
    p.close_stdin();
    assert_eq!(p.wait_exit(10), Some(0));
    let taken = udp();
    let port = taken.local_addr().unwrap().port().to_string();
    let mut t = Proc::start(dir.path(), &["torrent", "tracker", "--port", &port]);
    assert_eq!(t.wait_exit(10), Some(1));
    let err = t.wait_stderr("error: ", 5);
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn download_fails_cleanly_when_the_tracker_does_not_answer() {
    let dir = tempfile::tempdir().unwrap();
    let silent_tracker = udp();
    let (mut n, _) = start_node(dir.path(), 1, silent_tracker.local_addr().unwrap(), &[]);
    n.type_line("torrent -setMode download f.bin");
    n.wait_stdout(
        "]  Download of f.bin failed: the tracker did not answer",
        10,
    );
    let needs = recv_for(&silent_tracker, 100)
        .into_iter()
        .filter(|(b, _)| wire::parse(b) == Ok(n2t(1, "f.bin", Mode::Need)))
        .count();
    assert_eq!(needs, 3, "NEED is sent three times");
    n.type_line("torrent -setMode exit");
    assert_eq!(n.wait_exit(10), Some(0));
}

#[test]
fn pieces_are_logged_only_with_verbose() {
    let dir = tempfile::tempdir().unwrap();
    let (_t, tracker) = start_tracker(dir.path(), 60_000);
    let data = pseudo_random(30_000, 3);
    put_file(dir.path(), 1, "q.bin", &data);
    let (mut owner, _) = start_node(dir.path(), 1, tracker, &[]);
    owner.type_line("torrent -setMode send q.bin");
    wait_owners(tracker, "q.bin", 1);
    let (mut n, _) = start_node(dir.path(), 2, tracker, &[]);
    n.type_line("torrent -setMode download q.bin");
    n.wait_stdout("q.bin has successfully downloaded", 20);
    owner.wait_stdout(
        "The process of sending a chunk to node2 of file q.bin has finished!",
        10,
    );
    assert!(!owner.stdout.text().contains("has been sent!"));
    assert!(owner
        .stdout
        .text()
        .contains("I informed the tracker that I'm still alive in the torrent!"));
    n.close_stdin();
    owner.close_stdin();
    n.wait_exit(10);
    owner.wait_exit(10);
}

/// Threads of this process named `torrent-…` (the test binary's own name excepted).
fn torrent_threads() -> Vec<String> {
    let own = std::fs::read_to_string("/proc/self/comm").unwrap_or_default();
    let mut names = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        if let Ok(comm) = std::fs::read_to_string(task.path().join("comm")) {
            if comm.starts_with("torrent-") && comm != own {
                names.push(comm.trim().to_string());
            }
        }
    }
    names
}

#[test]
fn every_torrent_role_stops_in_process_with_no_thread_left() {
    use peershare::core::udp_rpc::Retry;
    use peershare::torrent::node::{Node, NodeConfig};
    let _alone = IN_PROCESS.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tracker_addr = socket.local_addr().unwrap();
    let journal =
        Journal::open(Printer::plain(), &dir.path().join("logs"), "_tracker.log").unwrap();
    let config = TrackerConfig {
        sweep_interval: Duration::from_secs(3600),
        snapshot_interval: Duration::from_secs(1),
        db_dir: dir.path().join("tracker_db"),
    };
    let stop = Shutdown::new();
    let s = stop.clone();
    let running = std::thread::spawn(move || tracker::run(config, socket, journal, &s));
    let node_journal =
        Journal::open(Printer::plain(), &dir.path().join("logs"), "node1.log").unwrap();
    let node_config = NodeConfig {
        node_id: 1,
        tracker: tracker_addr,
        dir: dir.path().join("node1"),
        register_interval: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(200),
        query_retry: Retry {
            timeout: Duration::from_millis(200),
            sends: 2,
        },
        verbose: false,
        bind: [127, 0, 0, 1].into(),
    };
    let node = Node::start(
        node_config,
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        node_journal,
        Shutdown::new(),
    )
    .unwrap();
    wait_for("the node's and tracker's threads", 10, || {
        let names = torrent_threads();
        [
            "torrent-keep-al",
            "torrent-serve",
            "torrent-udp-rou",
            "torrent-snapsho",
        ]
        .iter()
        .all(|n| names.iter().any(|x| x.starts_with(n)))
    });
    node.exit();
    stop.trigger();
    running.join().unwrap().unwrap();
    assert_eq!(torrent_threads(), Vec::<String>::new());
}

/// In-process roles share this process's thread list: tests that count threads run alone.
static IN_PROCESS: Mutex<()> = Mutex::new(());

#[test]
fn tracker_bound_to_another_loopback_ip_answers_there_and_traces_every_message() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.jsonl");
    let p = Proc::start(
        dir.path(),
        &[
            "torrent",
            "tracker",
            "--port",
            "0",
            "--bind",
            "127.0.0.2",
            "--trace",
            trace.to_str().unwrap(),
        ],
    );
    let tracker = listening(&p);
    assert_eq!(tracker.ip().to_string(), "127.0.0.2");
    p.wait_stdout("Tracker program started", 10);
    let s = udp();
    send(&s, &n2t(1, "f", Mode::Own), tracker);
    assert_eq!(need(&s, tracker, 2, "f").len(), 1);
    // Two received, one sent.
    wait_for("three trace lines", 10, || {
        std::fs::read_to_string(&trace).is_ok_and(|t| t.lines().count() >= 3)
    });
    let text = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].contains(r#""dir":"recv""#) || lines[0].contains(r#""dir": "recv""#),
        "{text}"
    );
    assert!(
        lines[0].contains(r#""proto":"udp""#) || lines[0].contains(r#""proto": "udp""#),
        "{text}"
    );
    assert!(
        lines[0].contains(r#"{"node_id": 1, "filename": "f", "mode": 1}"#),
        "{text}"
    );
    assert!(lines[2].contains("search_result"), "{text}");
    for line in lines {
        assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
        assert!(
            line.contains("t_us") && line.contains("torrent-tracker"),
            "{line}"
        );
    }
}
