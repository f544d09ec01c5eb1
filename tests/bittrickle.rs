//! BitTrickle end to end: raw UDP against the real server (in-process on port 0, or the binary
//! with its banner parsed), real `peershare bittrickle client` processes, and raw TCP against a
//! client's upload port. Short timings come from the hidden `--*-ms` options; no fixed ports.

mod support;

use peershare::bittrickle::credentials::Credentials;
use peershare::bittrickle::server::{self, ServerConfig};
use peershare::core::pyjson::{self, Json};
use peershare::core::shutdown::Shutdown;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use support::{pseudo_random, wait_for, Proc};

const CREDS: &str =
    "hans falcon*solo\nyoda wise@!man\nvader sithlord**\nleia $blasterpistol$\nluke light==saber\n";

const NO_PEERS: &str = "No active peers available ❌.";

/// The line after a welcome, and the first prompt.
const COMMANDS: &str = "Available commands are: get, lap, lpf, pub, sch, unp, xit\n> ";

// ---------------------------------------------------------------------------------------------
// In-process server and a raw UDP peer

struct Server {
    addr: SocketAddr,
    stop: Shutdown,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.trigger();
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

fn server(inactivity_ms: u64) -> Server {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let stop = Shutdown::new();
    let s = stop.clone();
    let config = ServerConfig {
        credentials: Credentials::parse(CREDS).0,
        inactivity: Duration::from_millis(inactivity_ms),
    };
    let thread = std::thread::spawn(move || server::run(config, socket, &s).unwrap());
    Server {
        addr,
        stop,
        thread: Some(thread),
    }
}

/// A raw UDP socket speaking the protocol by hand.
struct Peer {
    sock: UdpSocket,
    server: SocketAddr,
}

impl Peer {
    fn new(server: SocketAddr) -> Peer {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Peer { sock, server }
    }

    fn send(&self, bytes: &[u8]) {
        self.sock.send_to(bytes, self.server).unwrap();
    }

    fn recv(&self) -> String {
        let mut buf = vec![0u8; 65_535];
        let (n, from) = self.sock.recv_from(&mut buf).expect("a reply");
        assert_eq!(from, self.server);
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    fn ask(&self, text: &str) -> String {
        self.send(text.as_bytes());
        self.recv()
    }

    /// Sends `bytes`, then a `lap` probe: the first reply must be the probe's, proving `bytes`
    /// got none (the server answers in order) and that the server still serves.
    fn assert_no_reply(&self, bytes: &[u8]) {
        self.send(bytes);
        let probe = self.ask("lap zz_probe");
        assert!(
            probe == NO_PEERS || probe.contains("active peer(s):"),
            "{:?} got a reply: {probe:?}",
            String::from_utf8_lossy(bytes)
        );
    }

    fn login(&self, user: &str, password: &str, tcp_port: u16) -> String {
        self.ask(&format!("login {user} {password} {tcp_port}"))
    }
}

/// Polls `lap {asker}` until `cond` holds on the reply.
fn wait_lap(p: &Peer, asker: &str, what: &str, cond: impl Fn(&str) -> bool) {
    wait_for(what, 10, || cond(&p.ask(&format!("lap {asker}"))));
}

// ---------------------------------------------------------------------------------------------
// Processes

fn write_creds(dir: &Path) {
    std::fs::write(dir.join("credentials.txt"), CREDS).unwrap();
}

fn banner_port(text: &str) -> u16 {
    let rest = text.split("Ready to receive on 127.0.0.1:").nth(1).unwrap();
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

/// `peershare bittrickle server 0 …` in `dir` (with the test credentials); returns it and its port.
fn server_proc(dir: &Path, extra: &[&str]) -> (Proc, u16) {
    write_creds(dir);
    let mut args = vec!["bittrickle", "server", "0"];
    args.extend_from_slice(extra);
    let p = Proc::start(dir, &args);
    let out = p.wait_stdout("Ready to receive on", 10);
    let port = banner_port(&out);
    (p, port)
}

fn client(dir: &Path, server_port: u16, extra: &[&str]) -> Proc {
    let port = server_port.to_string();
    let mut args = vec!["bittrickle", "client", port.as_str()];
    args.extend_from_slice(extra);
    Proc::start(dir, &args)
}

/// A client logged in as `user` (heartbeats every 200 ms).
fn logged_in(dir: &Path, server_port: u16, user: &str, password: &str) -> Proc {
    let mut c = client(dir, server_port, &["--heartbeat-ms", "200"]);
    c.type_line(user);
    c.type_line(password);
    c.wait_stdout(COMMANDS, 10);
    c
}

/// hans, logged in (see [`logged_in`]).
fn hans(dir: &Path, server_port: u16) -> Proc {
    logged_in(dir, server_port, "hans", "falcon*solo")
}

/// yoda, logged in (see [`logged_in`]).
fn yoda(dir: &Path, server_port: u16) -> Proc {
    logged_in(dir, server_port, "yoda", "wise@!man")
}

/// `N` fresh temp dirs: one for the server, one per client.
fn temp_dirs<const N: usize>() -> [tempfile::TempDir; N] {
    std::array::from_fn(|_| tempfile::tempdir().unwrap())
}

/// Types `line` and waits for `needle` in what stdout prints after it and for the next prompt;
/// returns the new output without that prompt.
fn command(p: &mut Proc, line: &str, needle: &str) -> String {
    let before = p.stdout.text().len();
    p.type_line(line);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = p.stdout.text();
        let new = &text[before.min(text.len())..];
        if new.contains(needle) && new.ends_with("> ") {
            return new[..new.len() - 2].to_string();
        }
        assert!(
            Instant::now() < deadline,
            "after {line:?}: no {needle:?}\n--- stdout:\n{text}\n--- stderr:\n{}",
            p.stderr.text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The client's TCP upload port, from its `listening on` log line.
fn upload_port(p: &Proc) -> u16 {
    let err = p.wait_stderr("listening on 127.0.0.1:", 10);
    let rest = err.split("listening on 127.0.0.1:").nth(1).unwrap();
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

/// Raw TCP download from an uploader: send the name, read to EOF.
fn raw_fetch(port: u16, name: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(name).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    got
}

// ---------------------------------------------------------------------------------------------
// Server CLI

#[test]
fn server_banner_shows_bound_address_and_port_zero_works() {
    let dir = tempfile::tempdir().unwrap();
    let (p, port) = server_proc(dir.path(), &[]);
    assert_ne!(port, 0);
    assert!(p.stdout.text().contains(&format!(
        "⚡ Bitrickle Server started! Ready to receive on 127.0.0.1:{port} ⚡\n"
    )));
    p.wait_stderr(&format!("listening on 127.0.0.1:{port}"), 5);
    let peer = Peer::new(SocketAddr::from(([127, 0, 0, 1], port)));
    assert_eq!(
        peer.login("hans", "falcon*solo", 1),
        "Welcome to BitTrickle!"
    );
}

#[test]
fn server_missing_credentials_exits_1_with_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Proc::start(dir.path(), &["bittrickle", "server", "0"]);
    assert_eq!(p.wait_exit(10), Some(1));
    p.wait_stdout("Error: credentials.txt does not exist.\n", 5);
    let mut q = Proc::start(
        dir.path(),
        &[
            "bittrickle",
            "server",
            "0",
            "--credentials",
            "users/none.txt",
        ],
    );
    assert_eq!(q.wait_exit(10), Some(1));
    q.wait_stdout("Error: users/none.txt does not exist.\n", 5);
}

#[test]
fn usage_errors_exit_2_with_one_error_line() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["bittrickle", "server"][..],
        &["bittrickle", "server", "70000"],
        &["bittrickle", "server", "1", "2"],
        &["bittrickle", "client"],
        &["bittrickle", "client", "x"],
        &["bittrickle", "server", "0", "--inactivity-ms", "0"],
        &["bittrickle", "server", "0", "--bind", "nowhere"],
        &["bittrickle", "client", "1", "--heartbeat-ms", "0"],
        &[
            "bittrickle",
            "client",
            "1",
            "--request-timeout-ms",
            "99999999",
        ],
        &["bittrickle", "client", "1", "--bind", "1.2.3"],
        &[
            "bittrickle",
            "client",
            "1",
            "--server-host",
            "no.such.host.invalid",
        ],
    ] {
        let mut p = Proc::start(dir.path(), args);
        assert_eq!(p.wait_exit(10), Some(2), "{args:?}");
        let err = p.wait_stderr("\n", 5); // the reader thread may lag the exit
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        // clap's whole message follows (usage, the --help tip), with one `error:` line.
        assert_eq!(err.matches("error:").count(), 1, "{args:?}: {err}");
        if let Some(option) = args.iter().find(|a| a.starts_with("--")) {
            assert!(err.contains(option), "{args:?}: {err}");
        }
        if args.iter().any(|a| a.ends_with("-ms")) {
            assert!(err.contains("is not in 10..="), "{args:?}: {err}");
        }
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "{args:?} wrote a file"
        );
    }
}

#[test]
fn server_and_client_bound_to_given_ips_answer_there_and_get_names_the_client_ip() {
    let [sd, ad, bd] = temp_dirs();
    write_creds(sd.path());
    let s = Proc::start(
        sd.path(),
        &["bittrickle", "server", "0", "--bind", "127.0.0.2"],
    );
    let out = s.wait_stdout("Ready to receive on", 10);
    let rest = out
        .split("Ready to receive on 127.0.0.2:")
        .nth(1)
        .expect("bound to 127.0.0.2");
    let port: u16 = rest.split_whitespace().next().unwrap().parse().unwrap();
    std::fs::write(ad.path().join("a.txt"), b"from 127.0.0.3").unwrap();
    let port_arg = port.to_string();
    let args = |bind: &'static str| {
        let host = [
            "--server-host",
            "127.0.0.2",
            "--bind",
            bind,
            "--heartbeat-ms",
            "200",
        ];
        let mut v = vec!["bittrickle", "client", port_arg.as_str()];
        v.extend_from_slice(&host);
        v.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let start = |dir: &Path, bind, user: &str, password: &str| {
        let a = args(bind);
        let mut c = Proc::start(dir, &a.iter().map(String::as_str).collect::<Vec<_>>());
        c.type_line(user);
        c.type_line(password);
        c.wait_stdout(COMMANDS, 10);
        c
    };
    let mut a = start(ad.path(), "127.0.0.3", "hans", "falcon*solo");
    a.wait_stderr("listening on 127.0.0.3:", 10);
    let mut b = start(bd.path(), "127.0.0.4", "yoda", "wise@!man");
    command(&mut a, "pub a.txt", "published successfully.");
    let out = command(&mut b, "get a.txt", "✅");
    assert!(
        out.starts_with("Requesting a.txt download from peer 127.0.0.3:"),
        "{out}"
    );
    assert_eq!(
        std::fs::read(bd.path().join("a.txt")).unwrap(),
        b"from 127.0.0.3"
    );
    // Nothing answers on 127.0.0.1 at the server's port.
    let p = Peer::new(SocketAddr::from(([127, 0, 0, 1], port)));
    p.sock
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    p.send(b"lap luke");
    assert!(p.sock.recv_from(&mut [0u8; 64]).is_err());
}

/// The string field `key` of one trace line.
fn trace_field(line: &Json, key: &str) -> String {
    match line.get(key) {
        Some(Json::String(s)) => s.clone(),
        other => panic!("{key}: {other:?}"),
    }
}

#[test]
fn trace_records_every_message_both_sides_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.jsonl");
    let t = trace.to_str().unwrap();
    let (_s, port) = server_proc(dir.path(), &["--trace", t]);
    let mut c = client(dir.path(), port, &["--trace", t, "--heartbeat-ms", "60000"]);
    c.type_line("hans");
    c.type_line("falcon*solo");
    c.wait_stdout(COMMANDS, 10);
    command(&mut c, "lap", "\n");
    command(&mut c, "pub nothere.txt", "\n"); // refused locally: nothing sent
    command(&mut c, "sch zz", "\n");
    c.type_line("xit");
    assert_eq!(c.wait_exit(10), Some(0));
    let text = std::fs::read_to_string(&trace).unwrap();
    assert!(!text.contains("falcon*solo"), "{text}");
    let lines: Vec<Json> = text
        .lines()
        .map(|l| pyjson::parse(l.as_bytes(), 16).unwrap_or_else(|e| panic!("{l}: {e:?}")))
        .collect();
    let summary: Vec<(String, String, String)> = lines
        .iter()
        .map(|l| {
            for key in ["thread", "proto", "local", "remote"] {
                trace_field(l, key);
            }
            assert!(l.get("t_us").and_then(Json::as_i128).is_some());
            assert!(l.get("size").and_then(Json::as_i128).is_some());
            (
                trace_field(l, "process"),
                trace_field(l, "dir"),
                trace_field(l, "msg"),
            )
        })
        .collect();
    let count = |process: &str, dir: &str| {
        summary
            .iter()
            .filter(|(p, d, _)| p == process && d == dir)
            .count()
    };
    // login, heartbeat (one, at start), lap, sch: 4 sends by the client, 3 replies back.
    assert_eq!(count("bittrickle-client", "send"), 4, "{text}");
    assert_eq!(count("bittrickle-client", "recv"), 3, "{text}");
    assert_eq!(count("bittrickle-server", "recv"), 4, "{text}");
    assert_eq!(count("bittrickle-server", "send"), 3, "{text}");
    let sent: Vec<&str> = summary
        .iter()
        .filter(|(p, d, _)| p == "bittrickle-client" && d == "send")
        .map(|(_, _, m)| m.as_str())
        .collect();
    assert!(
        sent.contains(&"lap hans") && sent.contains(&"sch hans zz"),
        "{sent:?}"
    );
    assert!(
        sent.iter().any(|m| m.starts_with("login hans *** ")),
        "{sent:?}"
    );
}

#[test]
fn credentials_bad_line_is_skipped_with_a_warning_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("users.txt"),
        "hans falcon*solo\nbroken\nyoda wise@!man extra\nleia $blasterpistol$\n",
    )
    .unwrap();
    let p = Proc::start(
        dir.path(),
        &["bittrickle", "server", "0", "--credentials", "users.txt"],
    );
    let out = p.wait_stdout("Ready to receive on", 10);
    let err = p.wait_stderr("line 3 ignored", 5);
    assert!(err.contains("warning: users.txt line 2 ignored"), "{err}");
    assert!(err.contains("warning: users.txt line 3 ignored"), "{err}");
    let peer = Peer::new(SocketAddr::from(([127, 0, 0, 1], banner_port(&out))));
    assert_eq!(
        peer.login("leia", "$blasterpistol$", 1),
        "Welcome to BitTrickle!"
    );
    assert_eq!(
        peer.login("yoda", "wise@!man", 1),
        "Authentication failed: Unknown username ❌."
    );
}

#[test]
fn server_log_lines_match_original_format_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let (mut p, port) = server_proc(dir.path(), &["--inactivity-ms", "1000"]);
    let peer = Peer::new(SocketAddr::from(([127, 0, 0, 1], port)));
    let me = peer.sock.local_addr().unwrap().port();
    peer.login("hans", "nope", 1);
    peer.login("nobody", "x", 1);
    peer.login("hans", "falcon*solo", 1);
    peer.login("hans", "falcon*solo", 1);
    peer.send(b"heartbeat hans");
    peer.ask("pub hans a.txt");
    peer.ask("unp hans zz.txt");
    peer.ask("get hans a.txt");
    peer.ask("lap hans");
    peer.ask("lpf hans");
    peer.ask("sch hans x");
    let out = p.wait_stdout("Client hans inactive ❌", 10);
    let events: Vec<&str> = out
        .lines()
        .skip(1)
        .map(|line| {
            let (stamp, rest) = line.split_once(": ").unwrap();
            let b = stamp.as_bytes();
            assert_eq!(stamp.len(), 23, "{line}");
            assert!(
                b[4] == b'-' && b[7] == b'-' && b[10] == b' ' && b[13] == b':' && b[19] == b'.'
            );
            let prefix = format!("('127.0.0.1', {me}) ");
            rest.strip_prefix(prefix.as_str())
                .unwrap_or_else(|| panic!("{line}"))
        })
        .collect();
    assert_eq!(
        events,
        [
            "Received AUTH from hans",
            "Sent ERR - LOGIN to hans ❌ - Incorrect password.",
            "Received AUTH from nobody",
            "Sent ERR - LOGIN to nobody ❌ - Unknown username.",
            "Received AUTH from hans",
            "Sent OK - LOGIN to hans ✅",
            // A repeated login from the session's own address is a retry: welcomed again.
            "Received AUTH from hans",
            "Sent OK - LOGIN to hans ✅",
            "Received HBT from hans",
            "Received PUB from hans",
            "Sent PUB - OK to hans ✅",
            "Received UNP from hans",
            "Sent UNP - ERR to hans ❌",
            "Received GET from hans",
            "Sent GET - ERR to hans ❌",
            "Received LAP from hans",
            "Sent LAP - OK to hans ✅",
            "Received LPF from hans",
            "Sent LPF - OK to hans ✅",
            "Received SCH from hans",
            "Sent SCH - OK to hans ✅",
            "Client hans inactive ❌",
        ]
    );
    p.interrupt();
    assert_eq!(p.wait_exit(10), Some(0));
    assert!(p.wait_stdout("shutdown complete ⚡\n", 5).ends_with(
        "\n\nGraceful shutdown initiated...\n⚡ Bitrickle Server shutdown complete ⚡\n"
    ));
}

// ---------------------------------------------------------------------------------------------
// Server over raw UDP

#[test]
fn login_unknown_user_wrong_password_already_active_and_welcome_exact_replies() {
    let s = server(3000);
    let p = Peer::new(s.addr);
    assert_eq!(
        p.login("nobody", "x", 5000),
        "Authentication failed: Unknown username ❌."
    );
    assert_eq!(
        p.login("hans", "falcon", 5000),
        "Authentication failed: Incorrect password. Please try again ❌."
    );
    assert_eq!(
        p.login("hans", "falcon*solo", 5000),
        "Welcome to BitTrickle!"
    );
    assert_eq!(
        Peer::new(s.addr).login("hans", "falcon*solo", 6000),
        "Authentication failed: User is already active ❌."
    );
    // The replies are the exact bytes, U+274C included.
    p.send(b"login nobody2 x 1");
    let mut buf = [0u8; 1024];
    let (n, _) = p.sock.recv_from(&mut buf).unwrap();
    assert_eq!(
        &buf[..n],
        b"Authentication failed: Unknown username \xE2\x9D\x8C."
    );
}

#[test]
fn login_order_of_checks_unknown_then_password_then_active() {
    let s = server(3000);
    let p = Peer::new(s.addr);
    assert_eq!(p.login("yoda", "wise@!man", 1), "Welcome to BitTrickle!");
    // Active user with a wrong password: the password is checked before activity.
    assert_eq!(
        p.login("yoda", "wrong", 1),
        "Authentication failed: Incorrect password. Please try again ❌."
    );
    // Unknown user whatever the password.
    assert_eq!(
        p.login("Yoda", "wise@!man", 1),
        "Authentication failed: Unknown username ❌."
    );
    assert_eq!(
        Peer::new(s.addr).login("yoda", "wise@!man", 1),
        "Authentication failed: User is already active ❌."
    );
}

#[test]
fn malformed_requests_get_no_reply_and_server_keeps_serving() {
    let s = server(3000);
    let p = Peer::new(s.addr);
    let oversize = vec![b'a'; 65_507];
    let mut garbage = pseudo_random(512, 7);
    garbage[0] = 0xff;
    for bytes in [
        &b""[..],
        b"   \n",
        b"\xff\xfe\xfd",
        b"lap \xc3",
        b"LAP hans",
        b"hello",
        b"xit hans",
        b"login hans falcon*solo",
        b"login hans falcon*solo 5000 extra",
        b"login hans falcon*solo notaport",
        b"login hans falcon*solo 65536",
        b"heartbeat",
        b"lap",
        b"lap hans extra",
        b"pub hans",
        b"pub hans a b",
        b"unp hans",
        b"lpf",
        b"sch hans",
        b"sch hans a b",
        b"get hans",
        b"get hans a b",
        &oversize,
        &garbage,
    ] {
        p.assert_no_reply(bytes);
    }
    // The bad login did not log hans in.
    assert_eq!(p.login("hans", "falcon*solo", 1), "Welcome to BitTrickle!");
}

#[test]
fn a_file_name_whose_reply_would_not_fit_a_datagram_is_refused_without_reply() {
    let s = server(3000);
    let p = Peer::new(s.addr);
    let huge = "a".repeat(65_490); // the request still fits one datagram
    p.assert_no_reply(format!("pub hans {huge}").as_bytes());
    // Nothing was published: `lpf` (whose reply lists names) still fits and is answered.
    assert_eq!(p.ask("lpf hans"), "No files published ❌.");
    p.assert_no_reply(format!("unp hans {huge}").as_bytes());
    p.assert_no_reply(format!("get hans {huge}").as_bytes());
    let longest = "b".repeat(255);
    assert_eq!(
        p.ask(&format!("pub hans {longest}")),
        format!("File '{longest}' published successfully.")
    );
}

#[test]
fn heartbeat_keeps_user_active_and_gets_no_reply() {
    let s = server(500);
    let hans = Peer::new(s.addr);
    let yoda = Peer::new(s.addr);
    assert_eq!(
        hans.login("hans", "falcon*solo", 1),
        "Welcome to BitTrickle!"
    );
    let end = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < end {
        hans.assert_no_reply(b"heartbeat hans");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(yoda.ask("lap yoda"), "1 active peer(s):\nhans");
    assert_eq!(
        yoda.login("hans", "falcon*solo", 1),
        "Authentication failed: User is already active ❌."
    );
}

#[test]
fn user_is_inactive_after_more_than_3s_without_heartbeat_and_must_log_in_again() {
    let s = server(300);
    let hans = Peer::new(s.addr);
    let yoda = Peer::new(s.addr);
    assert_eq!(
        hans.login("hans", "falcon*solo", 1),
        "Welcome to BitTrickle!"
    );
    assert_eq!(yoda.ask("lap yoda"), "1 active peer(s):\nhans");
    wait_lap(&yoda, "yoda", "hans to expire", |r| r == NO_PEERS);
    assert_eq!(
        hans.login("hans", "falcon*solo", 1),
        "Welcome to BitTrickle!"
    );
}

#[test]
fn expired_user_heartbeat_is_ignored() {
    let s = server(300);
    let hans = Peer::new(s.addr);
    let yoda = Peer::new(s.addr);
    hans.login("hans", "falcon*solo", 1);
    wait_lap(&yoda, "yoda", "hans to expire", |r| r == NO_PEERS);
    hans.assert_no_reply(b"heartbeat hans");
    hans.assert_no_reply(b"heartbeat nobody");
    assert_eq!(yoda.ask("lap yoda"), NO_PEERS);
}

#[test]
fn lap_excludes_requester_in_login_order_with_count_header() {
    let s = server(3000);
    let (a, b, c) = (Peer::new(s.addr), Peer::new(s.addr), Peer::new(s.addr));
    assert_eq!(a.ask("lap leia"), NO_PEERS);
    a.login("leia", "$blasterpistol$", 1);
    assert_eq!(a.ask("lap leia"), NO_PEERS);
    b.login("hans", "falcon*solo", 2);
    c.login("yoda", "wise@!man", 3);
    assert_eq!(a.ask("lap leia"), "2 active peer(s):\nhans\nyoda");
    assert_eq!(b.ask("lap hans"), "2 active peer(s):\nleia\nyoda");
    // Answered for anyone, logged in or not.
    assert_eq!(b.ask("lap luke"), "3 active peer(s):\nleia\nhans\nyoda");
}

#[test]
fn pub_is_idempotent_and_needs_no_login() {
    let s = server(3000);
    let p = Peer::new(s.addr);
    assert_eq!(
        p.ask("pub hans a.txt"),
        "File 'a.txt' published successfully."
    );
    // From another socket: a repeat from the same one within 3 s is a retry (see below).
    assert_eq!(
        Peer::new(s.addr).ask("pub hans a.txt"),
        "File 'a.txt' is already published by you."
    );
    assert_eq!(
        p.ask("pub yoda a.txt"),
        "File 'a.txt' published successfully."
    );
    assert_eq!(p.ask("lpf hans"), "1 file(s) published:\na.txt");
}

#[test]
fn lpf_lists_own_files_even_when_inactive_and_across_logins() {
    let s = server(300);
    let hans = Peer::new(s.addr);
    let yoda = Peer::new(s.addr);
    assert_eq!(hans.ask("lpf hans"), "No files published ❌.");
    hans.login("hans", "falcon*solo", 1);
    hans.ask("pub hans b.txt");
    hans.ask("pub hans a.txt");
    yoda.ask("pub yoda c.txt");
    wait_lap(&yoda, "yoda", "hans to expire", |r| r == NO_PEERS);
    assert_eq!(hans.ask("lpf hans"), "2 file(s) published:\nb.txt\na.txt");
    assert_eq!(
        hans.login("hans", "falcon*solo", 1),
        "Welcome to BitTrickle!"
    );
    assert_eq!(hans.ask("lpf hans"), "2 file(s) published:\nb.txt\na.txt");
}

#[test]
fn a_repeated_pub_or_unp_from_the_same_address_is_a_retry_and_gets_the_first_reply() {
    let s = server(3000);
    let p = Peer::new(s.addr);
    let published = "File 'a.txt' published successfully.";
    let unpublished = "File 'a.txt' unpublished successfully.";
    assert_eq!(p.ask("pub hans a.txt"), published);
    assert_eq!(p.ask("pub hans a.txt"), published);
    assert_eq!(p.ask("lpf hans"), "1 file(s) published:\na.txt");
    assert_eq!(p.ask("unp hans a.txt"), unpublished);
    assert_eq!(p.ask("unp hans a.txt"), unpublished);
    assert_eq!(p.ask("lpf hans"), "No files published ❌.");
    // A repeated login from the address holding the session is welcomed again; others are not.
    assert_eq!(p.login("hans", "falcon*solo", 1), "Welcome to BitTrickle!");
    assert_eq!(p.login("hans", "falcon*solo", 1), "Welcome to BitTrickle!");
    assert_eq!(
        Peer::new(s.addr).login("hans", "falcon*solo", 1),
        "Authentication failed: User is already active ❌."
    );
}

#[test]
fn a_lost_login_reply_is_retried_into_a_welcome_and_the_next_lines_stay_commands() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(3000);
    // The proxy loses the server's first reply: the client resends `login` after its timeout.
    let proxy = support::LossyUdpProxy::start(s.addr, &[1]);
    let mut c = client(
        dir.path(),
        proxy.addr.port(),
        &["--request-timeout-ms", "300"],
    );
    for line in ["hans", "falcon*solo", "lap"] {
        c.type_line(line);
    }
    let out = c.wait_stdout(&format!("{NO_PEERS}\n> "), 10);
    assert_eq!(
        out,
        format!("Enter username: Enter password: Welcome to BitTrickle!\n{COMMANDS}{NO_PEERS}\n> ")
    );
}

#[test]
fn unp_succeeds_once_then_fails_with_exact_text() {
    let s = server(3000);
    let p = Peer::new(s.addr);
    let fail = |f: &str| {
        format!("File '{f}' unpublication failed. File doesn't exist or is already unpublished ❌.")
    };
    assert_eq!(p.ask("unp hans never.txt"), fail("never.txt"));
    p.ask("pub hans a.txt");
    p.ask("pub yoda a.txt");
    assert_eq!(p.ask("unp leia a.txt"), fail("a.txt"));
    assert_eq!(
        p.ask("unp hans a.txt"),
        "File 'a.txt' unpublished successfully."
    );
    assert_eq!(Peer::new(s.addr).ask("unp hans a.txt"), fail("a.txt"));
    assert_eq!(p.ask("lpf hans"), "No files published ❌.");
    assert_eq!(p.ask("lpf yoda"), "1 file(s) published:\na.txt");
}

#[test]
fn sch_is_case_sensitive_substring_excludes_own_files_and_inactive_publishers() {
    let s = server(400);
    let (hans, yoda, leia) = (Peer::new(s.addr), Peer::new(s.addr), Peer::new(s.addr));
    yoda.login("yoda", "wise@!man", 2);
    for f in ["notes.txt", "Notes.md", "song.mp3"] {
        yoda.ask(&format!("pub yoda {f}"));
    }
    hans.ask("pub hans my_notes.txt");
    leia.ask("pub leia notes.bak"); // leia never logs in: not searchable
    assert_eq!(hans.ask("sch hans notes"), "1 file(s) found:\nnotes.txt");
    assert_eq!(
        hans.ask("sch hans otes"),
        "2 file(s) found:\nnotes.txt\nNotes.md"
    );
    assert_eq!(hans.ask("sch hans zzz"), "No files found ❌.");
    assert_eq!(yoda.ask("sch yoda .mp3"), "No files found ❌.");
    assert_eq!(yoda.ask("sch yoda _notes"), "No files found ❌."); // hans is not active
    hans.login("hans", "falcon*solo", 1);
    assert_eq!(
        yoda.ask("sch yoda _notes"),
        "1 file(s) found:\nmy_notes.txt"
    );
    // Once yoda stops heartbeating, yoda's files drop out of every search.
    let end = Instant::now() + Duration::from_secs(10);
    while hans.ask("sch hans otes") != "No files found ❌." {
        hans.send(b"heartbeat hans");
        assert!(Instant::now() < end, "yoda never expired");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn get_returns_200_with_earliest_active_publisher_tcp_address() {
    let s = server(3000);
    let (hans, yoda, leia) = (Peer::new(s.addr), Peer::new(s.addr), Peer::new(s.addr));
    yoda.ask("pub yoda a.txt");
    leia.ask("pub leia a.txt");
    leia.login("leia", "$blasterpistol$", 6001);
    assert_eq!(hans.ask("get hans a.txt"), "200 127.0.0.1 6001");
    yoda.login("yoda", "wise@!man", 6002);
    assert_eq!(hans.ask("get hans a.txt"), "200 127.0.0.1 6002");
    // Answered whether or not the asker is logged in.
    assert_eq!(hans.ask("get luke a.txt"), "200 127.0.0.1 6002");
}

#[test]
fn get_own_file_no_active_publisher_and_unknown_file_exact_replies() {
    let s = server(3000);
    let p = Peer::new(s.addr);
    assert_eq!(
        p.ask("get hans a.txt"),
        "File 'a.txt' not found in published files ❌."
    );
    p.ask("pub yoda a.txt");
    assert_eq!(
        p.ask("get hans a.txt"),
        "No active peers found with file 'a.txt' or you already have the file published ❌."
    );
    p.login("yoda", "wise@!man", 7);
    assert_eq!(
        p.ask("get yoda a.txt"),
        "Error you already published this file 'a.txt' ❌."
    );
    assert_eq!(p.ask("get hans a.txt"), "200 127.0.0.1 7");
}

// ---------------------------------------------------------------------------------------------
// Client against a fake server (raw UDP)

/// A UDP socket posing as the server.
fn fake_server() -> (UdpSocket, u16) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let port = s.local_addr().unwrap().port();
    (s, port)
}

fn recv_text(s: &UdpSocket) -> (String, SocketAddr) {
    let mut buf = [0u8; 2048];
    let (n, from) = s.recv_from(&mut buf).expect("a datagram from the client");
    (String::from_utf8_lossy(&buf[..n]).into_owned(), from)
}

#[test]
fn client_heartbeats_every_2s_after_login() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, port) = fake_server();
    let mut c = client(dir.path(), port, &["--heartbeat-ms", "100"]);
    let tcp = upload_port(&c);
    c.type_line("hans");
    c.type_line("falcon*solo");
    let (login, from) = recv_text(&fake);
    assert_eq!(login, format!("login hans falcon*solo {tcp}"));
    fake.send_to(b"Welcome to BitTrickle!", from).unwrap();
    for _ in 0..4 {
        let (beat, _) = recv_text(&fake);
        assert_eq!(beat, "heartbeat hans");
    }
    c.wait_stdout(COMMANDS, 5);
    // The default period is the spec's 2 s.
    assert_eq!(
        peershare::bittrickle::client::HEARTBEAT_PERIOD,
        Duration::from_secs(2)
    );
}

#[test]
fn client_prints_server_not_responding_when_server_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, port) = fake_server();
    let mut c = client(dir.path(), port, &["--request-timeout-ms", "150"]);
    c.type_line("hans");
    c.type_line("falcon*solo");
    c.wait_stdout("Error: server not responding\nEnter username: ", 10);
    // Three sends of the same login, then the client re-prompts.
    let mut client_addr = None;
    for _ in 0..3 {
        let (text, from) = recv_text(&fake);
        assert!(text.starts_with("login hans falcon*solo "));
        client_addr = Some(from);
    }
    let client_addr = client_addr.unwrap();
    // A late reply to the abandoned login is never taken as the answer to the next request:
    // the next login prints the fresh reply. (The pause only lets the stale datagram arrive
    // first; nothing is asserted about time.)
    fake.send_to(b"stale reply", client_addr).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    c.type_line("hans");
    c.type_line("falcon*solo");
    let (again, _) = recv_text(&fake);
    assert!(again.starts_with("login hans falcon*solo "));
    fake.send_to(b"Welcome to BitTrickle!", client_addr)
        .unwrap();
    let out = c.wait_stdout(COMMANDS, 10);
    assert!(!out.contains("stale reply"), "{out}");
    let out = command(&mut c, "lap", "Error: server not responding");
    assert_eq!(out, "Error: server not responding\n");
}

#[test]
fn pub_of_missing_local_file_prints_error_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, port) = fake_server();
    let mut c = client(dir.path(), port, &["--heartbeat-ms", "60000"]);
    c.type_line("hans");
    c.type_line("falcon*solo");
    let (_, from) = recv_text(&fake);
    fake.send_to(b"Welcome to BitTrickle!", from).unwrap();
    assert_eq!(recv_text(&fake).0, "heartbeat hans");
    c.wait_stdout(COMMANDS, 5);
    let out = command(&mut c, "pub ghost.txt", "current directory.");
    assert_eq!(
        out,
        "Error: File 'ghost.txt' does not exist in the current directory.\n"
    );
    command(&mut c, "unp ../x", "is not a valid file name.");
    command(&mut c, "get a/b", "is not a valid file name.");
    // The next datagram the server sees is the next real request, not a pub.
    c.type_line("lap");
    assert_eq!(recv_text(&fake).0, "lap hans");
}

// ---------------------------------------------------------------------------------------------
// Client against the real server

#[test]
fn client_prompts_reprompt_after_failed_login_and_prints_commands_banner() {
    let dir = tempfile::tempdir().unwrap();
    let (_s, port) = server_proc(dir.path(), &[]);
    let mut c = client(dir.path(), port, &[]);
    c.wait_stdout("Enter username: ", 10);
    c.type_line("hans");
    c.type_line("wrong");
    c.type_line("nobody");
    c.type_line("x");
    c.type_line("hans");
    c.type_line("falcon*solo");
    let out = c.wait_stdout("> ", 10);
    assert_eq!(
        out,
        "Enter username: Enter password: \
         Authentication failed: Incorrect password. Please try again ❌.\n\
         Enter username: Enter password: Authentication failed: Unknown username ❌.\n\
         Enter username: Enter password: Welcome to BitTrickle!\n\
         Available commands are: get, lap, lpf, pub, sch, unp, xit\n> "
    );
    let mut twin = client(dir.path(), port, &[]);
    twin.type_line("hans");
    twin.type_line("falcon*solo");
    twin.wait_stdout(
        "Authentication failed: User is already active ❌.\nEnter username: ",
        10,
    );
}

/// Runs the client on a pseudo-terminal (Python's `pty`, as the crate has no pty code), types a
/// username and password, and returns everything the terminal showed.
const PTY_SCRIPT: &str = r#"
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out = b""
def pump(t):
    global out
    end = time.time() + t
    while time.time() < end:
        if select.select([fd], [], [], 0.05)[0]:
            try:
                out += os.read(fd, 4096)
            except OSError:
                return
def wait_for(needle):
    end = time.time() + 10
    while needle not in out and time.time() < end:
        pump(0.05)
wait_for(b"username: ")
os.write(fd, b"hans\r")
wait_for(b"password: ")
os.write(fd, b"sekrit99\r")
wait_for(b"Incorrect password")
os.kill(pid, 9)
os.waitpid(pid, 0)
sys.stdout.write(out.decode("utf-8", "replace"))
"#;

#[test]
fn client_hides_the_password_as_it_is_typed_on_a_terminal() {
    let python = Path::new("/usr/bin/python3");
    if !python.exists() {
        println!("skipped: /usr/bin/python3 (for a pseudo-terminal) is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = server(3000);
    let port = s.addr.port().to_string();
    let out = std::process::Command::new(python)
        .args([
            "-c",
            PTY_SCRIPT,
            support::BIN,
            "bittrickle",
            "client",
            &port,
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("Incorrect password"), "{shown}");
    assert!(shown.contains("hans"), "the username is echoed: {shown}");
    assert!(
        !shown.contains("sekrit99"),
        "the password was echoed: {shown}"
    );
}

#[test]
fn client_refuses_empty_or_spaced_credentials_locally() {
    let dir = tempfile::tempdir().unwrap();
    let (_s, port) = server_proc(dir.path(), &[]);
    let mut c = client(dir.path(), port, &[]);
    for (u, p) in [
        ("", "x"),
        ("hans", ""),
        ("han s", "falcon*solo"),
        ("hans", "falcon *solo"),
    ] {
        c.type_line(u);
        c.type_line(p);
    }
    c.type_line("hans");
    c.type_line("falcon*solo");
    let out = c.wait_stdout("Welcome to BitTrickle!", 10);
    let refusal = "Error: username and password must be non-empty and contain no spaces.\n";
    assert_eq!(out.matches(refusal).count(), 4, "{out}");
    assert!(!out.contains("Authentication failed"), "{out}");
}

#[test]
fn client_usage_errors_and_unknown_command_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let (_s, port) = server_proc(dir.path(), &[]);
    let mut c = hans(dir.path(), port);
    for (line, want) in [
        ("lap x", "Error, usage: lap"),
        ("lpf x", "Error, usage: lpf"),
        ("pub", "Error, usage: pub <filename>"),
        ("pub a b", "Error, usage: pub <filename>"),
        ("unp", "Error, usage: unp <filename>"),
        ("sch", "Error, usage: sch <substring>"),
        ("sch a b", "Error, usage: sch <substring>"),
        ("get", "Error, usage: get <filename>"),
        ("get a b", "Error, usage: get <filename>"),
        ("hello", "Unknown command"),
        ("LAP", "Unknown command"),
        ("xitfoo", "Unknown command"),
        ("pub ..", "Error: '..' is not a valid file name."),
    ] {
        let out = command(&mut c, line, &format!("{want}\n"));
        assert_eq!(out, format!("{want}\n"), "{line}");
    }
    assert_eq!(command(&mut c, "lap", "\n"), format!("{NO_PEERS}\n"));
    assert_eq!(command(&mut c, "sch zz", "\n"), "No files found ❌.\n");
}

#[test]
fn get_downloads_identical_bytes_text_and_binary_into_cwd() {
    let [sd, ad, bd, cd] = temp_dirs();
    let (_s, port) = server_proc(sd.path(), &[]);
    let text = b"A long time ago in a galaxy far, far away....\n".repeat(50);
    let binary = pseudo_random(5 * 1024 * 1024, 42);
    std::fs::write(ad.path().join("story.txt"), &text).unwrap();
    std::fs::write(ad.path().join("blob.bin"), &binary).unwrap();
    let mut a = hans(ad.path(), port);
    let mut b = yoda(bd.path(), port);
    let mut c = logged_in(cd.path(), port, "leia", "$blasterpistol$");
    assert_eq!(
        command(&mut a, "pub story.txt", "\n"),
        "File 'story.txt' published successfully.\n"
    );
    command(&mut a, "pub blob.bin", "published successfully.");
    assert_eq!(
        command(&mut b, "sch .", "blob.bin\n"),
        "2 file(s) found:\nstory.txt\nblob.bin\n"
    );
    assert_eq!(
        command(&mut a, "lap", "leia\n"),
        "2 active peer(s):\nyoda\nleia\n"
    );
    let aport = upload_port(&a);
    for (who, dir) in [(&mut b, bd.path()), (&mut c, cd.path())] {
        let out = command(who, "get story.txt", "✅");
        assert_eq!(
            out,
            format!(
                "Requesting story.txt download from peer 127.0.0.1:{aport}\n\
                 File story.txt 100% downloaded successfully, check your current working directory ✅\n"
            )
        );
        command(who, "get blob.bin", "✅");
        assert_eq!(std::fs::read(dir.join("story.txt")).unwrap(), text);
        assert_eq!(std::fs::read(dir.join("blob.bin")).unwrap(), binary);
        assert!(!dir.join("blob.bin.part").exists());
    }
    // A downloader can publish what it got; the earliest active publisher (hans) still serves.
    command(&mut b, "pub blob.bin", "published successfully.");
    assert_eq!(
        command(&mut c, "sch blob", "\n"),
        "1 file(s) found:\nblob.bin\n"
    );
    std::fs::remove_file(ad.path().join("blob.bin")).unwrap();
    assert_eq!(
        command(&mut a, "get blob.bin", "\n"),
        "Error you already published this file 'blob.bin' ❌.\n"
    );
}

#[test]
fn get_refuses_when_file_already_in_cwd() {
    let [sd, ad, bd] = temp_dirs();
    let (_s, port) = server_proc(sd.path(), &[]);
    std::fs::write(ad.path().join("a.txt"), b"new").unwrap();
    std::fs::write(bd.path().join("a.txt"), b"old").unwrap();
    let mut a = hans(ad.path(), port);
    let mut b = yoda(bd.path(), port);
    command(&mut a, "pub a.txt", "published successfully.");
    assert_eq!(
        command(&mut b, "get a.txt", "\n"),
        "Error: File 'a.txt' already exists in the current directory.\n"
    );
    assert_eq!(std::fs::read(bd.path().join("a.txt")).unwrap(), b"old");
    assert_eq!(
        command(&mut b, "get zz.txt", "\n"),
        "File 'zz.txt' not found in published files ❌.\n"
    );
}

#[test]
fn downloader_treats_zero_bytes_or_error_text_as_failure_and_keeps_no_file() {
    let [sd, ad, bd] = temp_dirs();
    let (_s, port) = server_proc(sd.path(), &[]);
    std::fs::write(ad.path().join("empty.txt"), b"").unwrap();
    std::fs::write(ad.path().join("gone.txt"), b"soon gone").unwrap();
    let mut a = hans(ad.path(), port);
    let mut b = yoda(bd.path(), port);
    let aport = upload_port(&a);
    command(&mut a, "pub empty.txt", "published successfully.");
    command(&mut a, "pub gone.txt", "published successfully.");
    std::fs::remove_file(ad.path().join("gone.txt")).unwrap();
    for f in ["empty.txt", "gone.txt"] {
        let out = command(&mut b, &format!("get {f}"), "Error during");
        assert!(
            out.ends_with(&format!(
                "Error during file download from 127.0.0.1:{aport} - peer sent no data\n"
            )),
            "{out}"
        );
        assert!(!bd.path().join(f).exists());
        assert!(!bd.path().join(format!("{f}.part")).exists());
    }
    a.wait_stdout("Error handling client ('127.0.0.1', ", 5);
    a.wait_stdout("File 'gone.txt' not found", 5);

    // A fake publisher that sends the original's error text.
    let fake = TcpListener::bind("127.0.0.1:0").unwrap();
    let fport = fake.local_addr().unwrap().port();
    let luke = Peer::new(SocketAddr::from(([127, 0, 0, 1], port)));
    assert_eq!(
        luke.login("luke", "light==saber", fport),
        "Welcome to BitTrickle!"
    );
    luke.ask("pub luke err.txt");
    let server_thread = std::thread::spawn(move || {
        let (mut s, _) = fake.accept().unwrap();
        let mut name = [0u8; 64];
        let n = s.read(&mut name).unwrap();
        assert_eq!(&name[..n], b"err.txt");
        s.write_all(b"Error: File not found").unwrap();
    });
    let out = command(&mut b, "get err.txt", "Error during");
    assert!(
        out.ends_with(&format!(
            "Error during file download from 127.0.0.1:{fport} - peer reported: Error: File not found\n"
        )),
        "{out}"
    );
    server_thread.join().unwrap();
    assert!(!bd.path().join("err.txt").exists());
    assert!(!bd.path().join("err.txt.part").exists());
}

#[test]
fn downloader_reports_an_uploader_dying_mid_file_and_keeps_no_file() {
    let [sd, bd] = temp_dirs();
    let (_s, port) = server_proc(sd.path(), &[]);
    let mut b = yoda(bd.path(), port);
    let fake = TcpListener::bind("127.0.0.1:0").unwrap();
    let fport = fake.local_addr().unwrap().port();
    let luke = Peer::new(SocketAddr::from(([127, 0, 0, 1], port)));
    luke.login("luke", "light==saber", fport);
    luke.ask("pub luke big.bin");
    let uploader = std::thread::spawn(move || {
        let (mut s, _) = fake.accept().unwrap();
        // Wait for the name but leave it unread: closing with unread bytes sends a reset,
        // which is what a killed process does to a connection it had not finished with.
        std::thread::sleep(Duration::from_millis(200));
        s.write_all(&pseudo_random(256 * 1024, 3)).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    });
    let out = command(&mut b, "get big.bin", "Error during");
    uploader.join().unwrap();
    assert!(
        out.contains(&format!(
            "Error during file download from 127.0.0.1:{fport} - "
        )),
        "{out}"
    );
    assert!(!bd.path().join("big.bin").exists());
    assert!(!bd.path().join("big.bin.part").exists());
    // The client carries on.
    command(&mut b, "lpf", "No files published ❌.");
}

#[test]
fn a_publisher_that_dies_mid_file_with_an_orderly_close_leaves_no_file() {
    let [sd, bd] = temp_dirs();
    let (_s, port) = server_proc(sd.path(), &[]);
    let mut b = yoda(bd.path(), port);
    let fake = TcpListener::bind("127.0.0.1:0").unwrap();
    let fport = fake.local_addr().unwrap().port();
    let luke = Peer::new(SocketAddr::from(([127, 0, 0, 1], port)));
    luke.login("luke", "light==saber", fport);
    luke.ask("pub luke cut.bin");
    // What `kill -9` does to an uploader mid-file: queued bytes go out, then an orderly FIN,
    // and its listening port closes. The wire carries no size, so EOF alone looked complete.
    let uploader = std::thread::spawn(move || {
        let (mut s, _) = fake.accept().unwrap();
        let mut name = [0u8; 64];
        let n = s.read(&mut name).unwrap();
        assert_eq!(&name[..n], b"cut.bin");
        s.write_all(&pseudo_random(200 * 1024, 4)).unwrap();
        drop(fake);
        drop(s);
    });
    let out = command(&mut b, "get cut.bin", "Error during");
    uploader.join().unwrap();
    assert!(
        out.contains(&format!(
            "Error during file download from 127.0.0.1:{fport} - "
        )),
        "{out}"
    );
    assert!(!bd.path().join("cut.bin").exists());
    assert!(!bd.path().join("cut.bin.part").exists());
}

#[test]
fn downloader_gets_a_failure_when_the_publisher_is_gone() {
    let [sd, bd] = temp_dirs();
    let (_s, port) = server_proc(sd.path(), &[]);
    let mut b = yoda(bd.path(), port);
    // A publisher whose TCP port has nobody listening (it went away after logging in).
    let dead_port = support::free_tcp_port();
    let luke = Peer::new(SocketAddr::from(([127, 0, 0, 1], port)));
    luke.login("luke", "light==saber", dead_port);
    luke.ask("pub luke x.txt");
    let out = command(&mut b, "get x.txt", "Error during");
    assert!(out.contains(&format!(
        "Error during file download from 127.0.0.1:{dead_port} - "
    )));
    assert!(!bd.path().join("x.txt").exists());
}

// ---------------------------------------------------------------------------------------------
// The upload service over raw TCP

#[test]
fn five_concurrent_downloads_from_one_uploader_succeed() {
    let [sd, ad] = temp_dirs();
    let (_s, port) = server_proc(sd.path(), &[]);
    let data = pseudo_random(1024 * 1024, 9);
    std::fs::write(ad.path().join("f.bin"), &data).unwrap();
    let a = hans(ad.path(), port);
    let up = upload_port(&a);
    // Five connections that have not named a file yet hold no upload worker (request-first):
    // a sixth that names its file is served at once, not after they give up.
    let mut held: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(("127.0.0.1", up)).unwrap())
        .collect();
    let mut sixth = TcpStream::connect(("127.0.0.1", up)).unwrap();
    sixth.write_all(b"f.bin").unwrap();
    sixth
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut probe = [0u8; 1];
    assert_eq!(
        sixth.read(&mut probe).unwrap(),
        1,
        "the sixth waited behind five silent connections"
    );
    assert_eq!(probe[0], data[0]);
    // The five now ask; all six complete byte-identical.
    let handles: Vec<_> = held
        .drain(..)
        .map(|mut s| {
            std::thread::spawn(move || {
                s.write_all(b"f.bin").unwrap();
                let mut got = Vec::new();
                s.read_to_end(&mut got).unwrap();
                got
            })
        })
        .collect();
    sixth
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut got = probe.to_vec();
    sixth.read_to_end(&mut got).unwrap();
    assert!(got == data);
    for h in handles {
        assert!(h.join().unwrap() == data);
    }
    // And six at once through fresh connections also complete.
    let many: Vec<_> = (0..6)
        .map(|_| std::thread::spawn(move || raw_fetch(up, b"f.bin")))
        .collect();
    for h in many {
        assert!(h.join().unwrap() == data);
    }
}

#[test]
fn uploader_missing_file_closes_without_bytes_and_keeps_serving() {
    let [sd, ad] = temp_dirs();
    let (_s, port) = server_proc(sd.path(), &[]);
    std::fs::write(ad.path().join("here.txt"), b"here\n").unwrap();
    let a = hans(ad.path(), port);
    let up = upload_port(&a);
    for _ in 0..7 {
        assert!(raw_fetch(up, b"missing.txt").is_empty());
    }
    a.wait_stdout("Error handling client ('127.0.0.1', ", 5);
    assert_eq!(raw_fetch(up, b"here.txt"), b"here\n");
    assert_eq!(raw_fetch(up, b"here.txt\r\n"), b"here\n");
    // A peer that connects and closes without a name, and one that sends garbage.
    drop(TcpStream::connect(("127.0.0.1", up)).unwrap());
    assert!(raw_fetch(up, &[0xff, 0x00, 0x2f]).is_empty());
    assert_eq!(raw_fetch(up, b"here.txt"), b"here\n");
}

#[test]
fn uploader_refuses_path_traversal_names() {
    let [sd, root] = temp_dirs();
    let (_s, port) = server_proc(sd.path(), &[]);
    let shared = root.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::write(root.path().join("secret.txt"), b"secret").unwrap();
    let a = hans(&shared, port);
    let up = upload_port(&a);
    let abs = root.path().join("secret.txt");
    for name in [
        &b"../secret.txt"[..],
        b"..",
        b".",
        b"",
        abs.to_str().unwrap().as_bytes(),
        b"sub/../../secret.txt",
    ] {
        assert!(
            raw_fetch(up, name).is_empty(),
            "{:?}",
            String::from_utf8_lossy(name)
        );
    }
    a.wait_stdout("is not a valid file name", 5);
}

// ---------------------------------------------------------------------------------------------
// Leaving

#[test]
fn xit_and_eof_print_shutdown_lines_in_order_and_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let (_s, port) = server_proc(dir.path(), &[]);
    let tail = "\n\nGraceful shutdown initiated...\nHeartbeat thread terminated.\n\
                ⚡ TCP download listener terminated ⚡\nClient shutdown complete.\n";

    let mut a = hans(dir.path(), port);
    a.type_line("xit");
    assert_eq!(a.wait_exit(10), Some(0));
    let out = a.wait_stdout("Client shutdown complete.\n", 5);
    assert!(
        out.ends_with(&format!("> Client hans exiting gracefully...{tail}")),
        "{out}"
    );

    let mut b = yoda(dir.path(), port);
    b.close_stdin();
    assert_eq!(b.wait_exit(10), Some(0));
    let out = b.wait_stdout("Client shutdown complete.\n", 5);
    assert!(
        out.ends_with(&format!("> Client yoda exiting gracefully...{tail}")),
        "{out}"
    );

    let mut c = logged_in(dir.path(), port, "leia", "$blasterpistol$");
    c.interrupt();
    assert_eq!(c.wait_exit(10), Some(0));
    let out = c.wait_stdout("Client shutdown complete.\n", 5);
    // Ctrl-C at the prompt: the prompt line is ended by the empty line itself.
    assert!(out.ends_with(&format!("> {}", &tail[1..])), "{out}");
    assert!(!out.contains("exiting gracefully"), "{out}");

    // Before login there is no heartbeat thread: EOF and Ctrl-C print the shorter tail.
    let before_login = "Enter username: \nGraceful shutdown initiated...\n\
                        ⚡ TCP download listener terminated ⚡\nClient shutdown complete.\n";
    let mut d = client(dir.path(), port, &[]);
    d.wait_stdout("Enter username: ", 10);
    d.close_stdin();
    assert_eq!(d.wait_exit(10), Some(0));
    assert_eq!(
        d.wait_stdout("Client shutdown complete.\n", 5),
        before_login
    );
    let mut e = client(dir.path(), port, &[]);
    e.wait_stdout("Enter username: ", 10);
    e.interrupt();
    assert_eq!(e.wait_exit(10), Some(0));
    assert_eq!(
        e.wait_stdout("Client shutdown complete.\n", 5),
        before_login
    );
}

#[test]
fn after_a_server_restart_the_client_logs_in_again_publishes_again_and_says_so() {
    let [sd, ad] = temp_dirs();
    let (mut s, port) = server_proc(sd.path(), &[]);
    std::fs::write(ad.path().join("a.txt"), b"a").unwrap();
    let mut a = client(
        ad.path(),
        port,
        &["--heartbeat-ms", "100", "--recheck-ms", "300"],
    );
    a.type_line("hans");
    a.type_line("falcon*solo");
    a.wait_stdout(COMMANDS, 10);
    command(&mut a, "pub a.txt", "published successfully.");
    s.kill();
    let s2 = Proc::start(sd.path(), &["bittrickle", "server", &port.to_string()]);
    s2.wait_stdout("Ready to receive on", 10);
    a.wait_stdout(
        "The server had forgotten you (it restarted?): logged in again as hans \
         and published your 1 file(s) again.",
        10,
    );
    let luke = Peer::new(SocketAddr::from(([127, 0, 0, 1], port)));
    assert_eq!(luke.ask("lap luke"), "1 active peer(s):\nhans");
    assert_eq!(luke.ask("sch luke a.t"), "1 file(s) found:\na.txt");
    // While the server knows the client, the checks change nothing and print nothing more.
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(a.stdout.text().matches("had forgotten you").count(), 1);
    // The server names the cause of an ignored heartbeat once.
    luke.send(b"heartbeat leia");
    luke.send(b"heartbeat leia");
    let err = s2.wait_stderr("heartbeat from leia", 5);
    assert!(err.contains("leia is not logged in"), "{err}");
    assert_eq!(luke.ask("lap luke"), "1 active peer(s):\nhans");
    assert_eq!(s2.stderr.text().matches("heartbeat from leia").count(), 1);
}

#[test]
fn xit_stops_heartbeats_so_server_marks_user_inactive() {
    let dir = tempfile::tempdir().unwrap();
    let (s, port) = server_proc(dir.path(), &["--inactivity-ms", "1000"]);
    let mut a = hans(dir.path(), port);
    let mut b = yoda(dir.path(), port);
    // Heartbeats (every 200 ms) keep hans listed well past the 1 s timeout.
    for _ in 0..5 {
        assert_eq!(
            command(&mut b, "lap", "hans\n"),
            "1 active peer(s):\nhans\n"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    a.type_line("xit");
    assert_eq!(a.wait_exit(10), Some(0));
    s.wait_stdout("Client hans inactive ❌", 10);
    assert_eq!(command(&mut b, "lap", "\n"), format!("{NO_PEERS}\n"));
}

#[test]
fn uploader_killed_mid_file_ends_the_transfer_and_its_files_become_unavailable() {
    let [sd, ad, bd] = temp_dirs();
    let (_s, port) = server_proc(sd.path(), &["--inactivity-ms", "1000"]);
    let size = 32 * 1024 * 1024;
    std::fs::write(ad.path().join("big.bin"), pseudo_random(size, 5)).unwrap();
    let mut a = hans(ad.path(), port);
    let mut b = yoda(bd.path(), port);
    command(&mut a, "pub big.bin", "published successfully.");
    // A slow reader keeps the upload mid-file, then the uploader is killed.
    let mut s = TcpStream::connect(("127.0.0.1", upload_port(&a))).unwrap();
    s.write_all(b"big.bin").unwrap();
    let mut first = vec![0u8; 64 * 1024];
    s.read_exact(&mut first).unwrap();
    a.kill();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest); // ends (EOF or reset) rather than hanging
    assert!(first.len() + rest.len() < size);
    // Right after the kill a `get` may still be pointed at the dead peer: it fails cleanly.
    let out = command(&mut b, "get big.bin", "\n");
    assert!(
        out.contains("Error during file download from 127.0.0.1:")
            || out.contains("No active peers found with file 'big.bin'"),
        "{out}"
    );
    assert!(!bd.path().join("big.bin").exists());
    assert!(!bd.path().join("big.bin.part").exists());
    // Without heartbeats hans expires, and then nobody is offered the file.
    let probe = Peer::new(SocketAddr::from(([127, 0, 0, 1], port)));
    wait_for("hans to expire", 10, || {
        probe
            .ask("get luke big.bin")
            .starts_with("No active peers found")
    });
    assert_eq!(
        command(&mut b, "get big.bin", "\n"),
        "No active peers found with file 'big.bin' or you already have the file published ❌.\n"
    );
}

#[test]
fn ctrl_c_during_a_stalled_get_removes_the_part_and_exits_0() {
    let [sd, bd] = temp_dirs();
    let (_s, port) = server_proc(sd.path(), &[]);
    let mut b = yoda(bd.path(), port);
    let fake = TcpListener::bind("127.0.0.1:0").unwrap();
    let fport = fake.local_addr().unwrap().port();
    let luke = Peer::new(SocketAddr::from(([127, 0, 0, 1], port)));
    luke.login("luke", "light==saber", fport);
    luke.ask("pub luke slow.bin");
    b.type_line("get slow.bin");
    // The fake uploader sends a little and then stalls with the connection open.
    let (mut conn, _) = fake.accept().unwrap();
    conn.write_all(b"partial").unwrap();
    wait_for("the .part file", 10, || {
        bd.path().join("slow.bin.part").exists()
    });
    b.interrupt();
    assert_eq!(b.wait_exit(10), Some(0));
    let out = b.wait_stdout("Client shutdown complete.\n", 5);
    assert!(
        out.contains(&format!(
            "Error during file download from 127.0.0.1:{fport} - the download was interrupted\n"
        )),
        "{out}"
    );
    assert!(!bd.path().join("slow.bin").exists());
    assert!(!bd.path().join("slow.bin.part").exists());
}
