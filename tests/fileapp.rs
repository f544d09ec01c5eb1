//! FileApp end to end: the real `peershare fileapp` server spoken to with raw datagrams, real
//! clients against a scripted fake server (a UDP socket in the test), and real clients sharing
//! files with each other. Names follow the spec's §8 checklist.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};
use support::{pseudo_random, wait_for, Proc};

const WELCOME: &str = ">>> [Welcome, You are registered.]";
const UPDATED: &str = ">>> [Client table updated.]";

// ---------------------------------------------------------------- helpers

/// The port a process logged as `listening on 0.0.0.0:<port>` from `module`.
fn logged_port(p: &Proc, module: &str) -> u16 {
    let needle = format!("{module}] listening on ");
    let text = p.wait_stderr(&needle, 10);
    let line = text.lines().find(|l| l.contains(&needle)).unwrap();
    line.rsplit(':').next().unwrap().trim().parse().unwrap()
}

/// A real server on an OS-chosen port; returns it and its address on 127.0.0.1.
fn start_server(dir: &Path) -> (Proc, SocketAddr) {
    let p = Proc::start(dir, &["fileapp", "-s", "0"]);
    let port = logged_port(&p, "fileapp::cli");
    (p, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// A real client with OS-chosen ports, registered (its first table printed).
fn start_client(dir: &Path, name: &str, server: SocketAddr) -> Proc {
    let p = spawn_client(dir, name, server);
    p.wait_stdout(UPDATED, 10);
    p
}

fn spawn_client(dir: &Path, name: &str, server: SocketAddr) -> Proc {
    let port = server.port().to_string();
    Proc::start(dir, &["fileapp", "-c", name, "127.0.0.1", &port, "0", "0"])
}

/// A UDP socket in the test: a raw client of the real server, or a fake server.
struct Raw {
    sock: UdpSocket,
}

impl Raw {
    fn new() -> Raw {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        Raw { sock }
    }

    fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    fn port(&self) -> u16 {
        self.addr().port()
    }

    fn send(&self, bytes: &[u8], to: SocketAddr) {
        self.sock.send_to(bytes, to).unwrap();
    }

    /// The next datagram within `ms`, if any.
    fn recv_within(&self, ms: u64) -> Option<(String, SocketAddr)> {
        self.sock
            .set_read_timeout(Some(Duration::from_millis(ms)))
            .unwrap();
        let mut buf = vec![0u8; 70_000];
        match self.sock.recv_from(&mut buf) {
            Ok((n, from)) => Some((String::from_utf8_lossy(&buf[..n]).into_owned(), from)),
            Err(_) => None,
        }
    }

    /// The next datagram (5 s deadline).
    fn recv(&self) -> (String, SocketAddr) {
        self.recv_within(5000).expect("a datagram within 5 s")
    }

    fn recv_text(&self) -> String {
        self.recv().0
    }

    /// Everything that arrives until `ms` of silence.
    fn drain(&self, ms: u64) -> Vec<String> {
        let mut got = Vec::new();
        while let Some((d, _)) = self.recv_within(ms) {
            got.push(d);
        }
        got
    }

    /// Registers `name` (announcing `tcp_port`) with a real server; optionally ACKs the table.
    fn register(&self, server: SocketAddr, name: &str, tcp_port: u16, ack: bool) -> String {
        self.send(format!("{name},{tcp_port}").as_bytes(), server);
        assert_eq!(self.recv_text(), WELCOME);
        let table = self.recv_text();
        if ack {
            self.send(b"ACK", server);
        }
        table
    }

    /// Fake server: waits for a registration, answers welcome + `table`, returns (text, from).
    fn accept_registration(&self, table: &str) -> (String, SocketAddr) {
        let (reg, from) = self.recv();
        self.send(WELCOME.as_bytes(), from);
        self.send(table.as_bytes(), from);
        (reg, from)
    }
}

/// Waits for exit with `code`, then until everything the process wrote has been read and stdout
/// ends with `tail` (the pipe readers may lag behind the exit).
fn finished(p: &mut Proc, code: i32, tail: &str) {
    assert_eq!(p.wait_exit(10), Some(code));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !p.stdout.text().ends_with(tail) {
        assert!(
            Instant::now() < deadline,
            "stdout does not end with {tail:?}:\n{}",
            p.stdout.text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

fn stdout_lines(p: &Proc) -> Vec<String> {
    p.stdout
        .text()
        .lines()
        .map(|l| l.trim_start_matches(">>> ").to_string())
        .collect()
}

fn make_dir(root: &Path, name: &str) -> std::path::PathBuf {
    let d = root.join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

// ---------------------------------------------------------------- CLI

#[test]
fn prints_args_block_in_original_order_for_server_and_client() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, _) = start_server(tmp.path());
    server.wait_stdout("port 0\n===============\n", 5);
    assert!(server.stdout.text().starts_with(
        "===============\nPrinting args:\nserver True\nclient False\nport 0\n===============\n"
    ));
    let fake = Raw::new();
    let sp = fake.port().to_string();
    let c = Proc::start(
        tmp.path(),
        &["fileapp", "-c", "alice", "localhost", &sp, "0", "0"],
    );
    fake.accept_registration("{}");
    c.wait_stdout(UPDATED, 10);
    let expected = format!(
        "===============\nPrinting args:\nserver False\nclient True\nname alice\nserver-ip localhost\nserver-port {sp}\nclient-udp-port 0\nclient-tcp-port 0\n===============\n{WELCOME}\n{UPDATED}\n"
    );
    assert!(
        c.stdout.text().starts_with(&expected),
        "{}",
        c.stdout.text()
    );
}

#[test]
fn client_rejects_name_with_comma_at_startup() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, err) in [
        (
            "a,b",
            "error: client name must not contain ',' or whitespace",
        ),
        (
            "a b",
            "error: client name must not contain ',' or whitespace",
        ),
    ] {
        let mut c = Proc::start(
            tmp.path(),
            &["fileapp", "-c", name, "127.0.0.1", "9", "0", "0"],
        );
        assert_eq!(c.wait_exit(10), Some(2));
        c.wait_stderr(err, 5);
        assert_eq!(c.stderr.text().trim_end(), err);
        c.wait_stdout(&format!("name {name}\n"), 5);
        assert!(c.stdout.text().contains(&format!("name {name}\n")));
    }
    for args in [
        &["fileapp", "-c", "al", "not-an-ip", "9", "0", "0"][..],
        &["fileapp", "-c", "al", "127.0.0.1", "70000", "0", "0"],
        &["fileapp", "-s", "x"],
        &["fileapp"],
        &["fileapp", "-s", "1", "-c", "a", "b", "c", "d", "e"],
    ] {
        let mut c = Proc::start(tmp.path(), args);
        assert_eq!(c.wait_exit(10), Some(2), "{args:?}");
        c.wait_stderr("\n", 5);
        assert!(c.stderr.text().starts_with("error: "), "{args:?}");
        assert_eq!(c.stderr.text().lines().count(), 1, "{args:?}");
    }
}

#[test]
fn port_zero_registers_the_actual_tcp_port_and_logs_listening_on() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = Raw::new();
    let c = spawn_client(tmp.path(), "alice", fake.addr());
    let (reg, from) = fake.accept_registration("{}");
    let tcp = logged_port(&c, "core::tcp");
    assert_ne!(tcp, 0);
    assert_eq!(reg, format!("alice,{tcp}"));
    let udp = logged_port(&c, "fileapp::cli");
    assert_eq!(from.port(), udp);
    TcpStream::connect(("127.0.0.1", tcp)).expect("the listener is up");
}

// ---------------------------------------------------------------- server, raw UDP

#[test]
fn server_replies_welcome_then_table_with_python_json_separators() {
    let tmp = tempfile::tempdir().unwrap();
    let (_s, server) = start_server(tmp.path());
    let a = Raw::new();
    assert_eq!(a.register(server, "alice", 5001, true), "{}");
    a.send(br#"["hello.txt", "jjs.jpg", "\u00e9t\u00e9.txt"]"#, server);
    assert_eq!(a.recv_text(), "ACK_OFFER");
    assert_eq!(
        a.recv_text(),
        r#"{"hello.txt,alice": ["127.0.0.1", 5001], "jjs.jpg,alice": ["127.0.0.1", 5001], "\u00e9t\u00e9.txt,alice": ["127.0.0.1", 5001]}"#
    );
    let b = Raw::new();
    assert_eq!(
        b.register(server, "bob", 5002, true),
        r#"{"hello.txt,alice": ["127.0.0.1", 5001], "jjs.jpg,alice": ["127.0.0.1", 5001], "\u00e9t\u00e9.txt,alice": ["127.0.0.1", 5001]}"#
    );
}

#[test]
fn server_rejects_name_of_active_client_with_exact_text() {
    let tmp = tempfile::tempdir().unwrap();
    let (_s, server) = start_server(tmp.path());
    let a = Raw::new();
    a.register(server, "alice", 5001, true);
    let b = Raw::new();
    b.send(b"alice,5002", server);
    assert_eq!(
        b.recv_text(),
        "Client alice already registered. Registration rejected."
    );
    assert!(b.drain(300).is_empty());
}

#[test]
fn server_retransmits_current_table_three_times_500ms_apart_without_ack() {
    let tmp = tempfile::tempdir().unwrap();
    let (_s, server) = start_server(tmp.path());
    let a = Raw::new();
    a.register(server, "alice", 5001, true);
    let b = Raw::new();
    b.send(b"bob,5002", server);
    assert_eq!(b.recv_text(), WELCOME);
    assert_eq!(b.recv_text(), "{}");
    // While bob's ACK is outstanding the table changes: the retransmits carry the new one.
    a.send(br#"["x"]"#, server);
    let now = r#"{"x,alice": ["127.0.0.1", 5001]}"#;
    let rest = b.drain(1200);
    assert_eq!(rest, vec![now, now, now], "broadcast, then two retransmits");
    // A lone registration without ACK: three tables in all, then silence.
    let c = Raw::new();
    c.send(b"carol,5003", server);
    assert_eq!(c.recv_text(), WELCOME);
    let tables = c.drain(1200);
    assert_eq!(tables, vec![now, now, now]);
}

#[test]
fn server_stops_retransmitting_on_ack_or_any_datagram_from_that_client() {
    let tmp = tempfile::tempdir().unwrap();
    let (_s, server) = start_server(tmp.path());
    let a = Raw::new();
    a.register(server, "alice", 5001, true);
    assert!(a.drain(1200).is_empty(), "ACKed: no retransmit");
    let b = Raw::new();
    b.register(server, "bob", 5002, false);
    b.send(b"[]", server);
    assert_eq!(b.recv_text(), "ACK_OFFER");
    assert_eq!(b.recv_text(), "{}");
    assert!(
        b.drain(1200).is_empty(),
        "any datagram stops the retransmits"
    );
}

#[test]
fn server_answers_other_clients_while_a_registration_ack_is_pending() {
    let tmp = tempfile::tempdir().unwrap();
    let (_s, server) = start_server(tmp.path());
    let a = Raw::new();
    a.send(b"alice,5001", server);
    assert_eq!(a.recv_text(), WELCOME);
    assert_eq!(a.recv_text(), "{}");
    // alice withholds her ACK; bob is served at once, before alice's first retransmit.
    let b = Raw::new();
    b.register(server, "bob", 5002, true);
    b.send(br#"["f"]"#, server);
    assert_eq!(b.recv_text(), "ACK_OFFER");
    assert_eq!(b.recv_text(), r#"{"f,bob": ["127.0.0.1", 5002]}"#);
    // alice got the broadcast; her own retransmits follow later.
    assert_eq!(a.recv_text(), r#"{"f,bob": ["127.0.0.1", 5002]}"#);
}

#[test]
fn server_acks_offer_then_broadcasts_to_all_active_including_offerer() {
    let tmp = tempfile::tempdir().unwrap();
    let (_s, server) = start_server(tmp.path());
    let (a, b, c) = (Raw::new(), Raw::new(), Raw::new());
    a.register(server, "alice", 5001, true);
    b.register(server, "bob", 5002, true);
    c.register(server, "carol", 5003, true);
    c.send(b"DEREG", server);
    assert_eq!(c.recv_text(), "ACK_DEREG");
    assert_eq!(a.recv_text(), "{}");
    assert_eq!(b.recv_text(), "{}");
    a.send(br#"["one.txt"]"#, server);
    let t = r#"{"one.txt,alice": ["127.0.0.1", 5001]}"#;
    assert_eq!(a.recv_text(), "ACK_OFFER");
    assert_eq!(a.recv_text(), t);
    assert_eq!(b.recv_text(), t);
    assert!(c.drain(300).is_empty(), "offline clients get no broadcast");
    // Even an offer that changes nothing is broadcast.
    a.send(br#"["one.txt"]"#, server);
    assert_eq!(a.recv_text(), "ACK_OFFER");
    assert_eq!(a.recv_text(), t);
    assert_eq!(b.recv_text(), t);
}

#[test]
fn server_keeps_table_insertion_order_and_ignores_duplicate_offers() {
    let tmp = tempfile::tempdir().unwrap();
    let (_s, server) = start_server(tmp.path());
    let (a, b) = (Raw::new(), Raw::new());
    a.register(server, "alice", 5001, true);
    b.register(server, "bob", 5002, true);
    a.send(br#"["z", "a", "z"]"#, server);
    a.drain(200);
    b.send(br#"["m"]"#, server);
    b.drain(200);
    a.drain(200);
    a.send(br#"["a", "b"]"#, server);
    assert_eq!(a.recv_text(), "ACK_OFFER");
    assert_eq!(
        a.recv_text(),
        r#"{"z,alice": ["127.0.0.1", 5001], "a,alice": ["127.0.0.1", 5001], "m,bob": ["127.0.0.1", 5002], "b,alice": ["127.0.0.1", 5001]}"#
    );
}

#[test]
fn server_acks_dereg_removes_owner_keys_and_broadcasts_to_remaining() {
    let tmp = tempfile::tempdir().unwrap();
    let (_s, server) = start_server(tmp.path());
    let (a, b) = (Raw::new(), Raw::new());
    a.register(server, "alice", 5001, true);
    b.register(server, "bob", 5002, true);
    a.send(br#"["a1", "a2"]"#, server);
    a.drain(200);
    b.send(br#"["b1"]"#, server);
    b.drain(200);
    a.drain(200);
    a.send(b"DEREG", server);
    assert_eq!(a.recv_text(), "ACK_DEREG");
    assert_eq!(b.recv_text(), r#"{"b1,bob": ["127.0.0.1", 5002]}"#);
    assert!(a.drain(300).is_empty(), "the leaver gets no table");
}

#[test]
fn server_reacks_repeated_dereg_from_offline_address() {
    let tmp = tempfile::tempdir().unwrap();
    let (_s, server) = start_server(tmp.path());
    let (a, b) = (Raw::new(), Raw::new());
    a.register(server, "alice", 5001, true);
    b.register(server, "bob", 5002, true);
    a.send(b"DEREG", server);
    assert_eq!(a.recv_text(), "ACK_DEREG");
    assert_eq!(b.recv_text(), "{}");
    a.send(b"DEREG", server);
    assert_eq!(a.recv_text(), "ACK_DEREG");
    assert!(b.drain(300).is_empty(), "a repeated dereg changes nothing");
}

#[test]
fn server_ignores_late_ack_and_survives_malformed_registration_and_offer() {
    let tmp = tempfile::tempdir().unwrap();
    let (s, server) = start_server(tmp.path());
    let junk = Raw::new();
    for bad in [
        &b"nocomma"[..],
        b"a,b,1",
        b",1",
        b"a,0",
        b"a,99999",
        b"\xff\xfe,1",
        b"DEREG",
        b"ACK",
        b"",
    ] {
        junk.send(bad, server);
    }
    junk.send(&vec![b'x'; 65_000], server);
    assert!(
        junk.drain(300).is_empty(),
        "malformed registrations are dropped"
    );
    let a = Raw::new();
    a.register(server, "alice", 5001, true);
    a.send(b"ACK", server); // late ACK: the original parsed it as an offer and crashed
    for bad in [
        &b"{}"[..],
        b"\"str\"",
        b"[1",
        b"not json",
        b"\xff",
        b"ACK_OFFER",
        b"ACK_DEREG",
        b"{\"a,b\": [\"1.2.3.4\", 1]}",
    ] {
        a.send(bad, server);
    }
    let mut big = b"[\"".to_vec();
    big.extend(vec![b'y'; 65_480]);
    big.extend(b"\"]");
    a.send(&big, server);
    // The 65 KB name does not fit a table datagram: skipped, the offer is still acked.
    assert_eq!(a.recv_text(), "ACK_OFFER");
    let table = a.recv_text();
    assert!(table == "{}", "{} bytes", table.len());
    assert!(a.drain(300).is_empty());
    a.send(br#"["ok.txt"]"#, server);
    assert_eq!(a.recv_text(), "ACK_OFFER");
    assert_eq!(a.recv_text(), r#"{"ok.txt,alice": ["127.0.0.1", 5001]}"#);
    s.wait_stderr("WARN", 5);
}

#[test]
fn server_skips_offered_names_with_comma() {
    let tmp = tempfile::tempdir().unwrap();
    let (_s, server) = start_server(tmp.path());
    let a = Raw::new();
    a.register(server, "alice", 5001, true);
    a.send(br#"["a,b", "good", "", 7, null]"#, server);
    assert_eq!(a.recv_text(), "ACK_OFFER");
    assert_eq!(a.recv_text(), r#"{"good,alice": ["127.0.0.1", 5001]}"#);
}

#[test]
fn server_allows_name_reuse_after_dereg() {
    let tmp = tempfile::tempdir().unwrap();
    let (_s, server) = start_server(tmp.path());
    let a = Raw::new();
    a.register(server, "alice", 5001, true);
    a.send(b"DEREG", server);
    assert_eq!(a.recv_text(), "ACK_DEREG");
    let b = Raw::new();
    assert_eq!(b.register(server, "alice", 5009, true), "{}");
    // The old address is a fresh registration too.
    a.send(b"carol,5001", server);
    assert_eq!(a.recv_text(), WELCOME);
}

#[test]
fn server_prints_offer_and_dereg_lines_with_address() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut s, server) = start_server(tmp.path());
    let a = Raw::new();
    a.register(server, "alice", 5001, true);
    a.send(br#"["x"]"#, server);
    s.wait_stdout(">>> [Offer Message Received By Server]\n", 5);
    a.send(b"DEREG", server);
    s.wait_stdout(
        &format!(
            ">>> [Deregistration Request for ('127.0.0.1', {}) Received By Server.]\n",
            a.port()
        ),
        5,
    );
    s.interrupt();
    finished(&mut s, 0, "Server terminated.\n");
}

// ---------------------------------------------------------------- client against a fake server

#[test]
fn client_prints_welcome_and_table_updated_and_acks_only_first_table() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = Raw::new();
    let c = spawn_client(tmp.path(), "alice", fake.addr());
    let (_, from) = fake.accept_registration("{}");
    assert_eq!(fake.recv_text(), "ACK");
    fake.send(br#"{"f,bob": ["127.0.0.1", 9]}"#, from);
    fake.send(b"ACK_OFFER", from); // stray: ignored
    fake.send(b"garbage", from); // not a table: ignored
    fake.send(b"[\"a list\"]", from);
    fake.send(&vec![b' '; 65_000], from);
    fake.send(br#"{"g,bob": ["127.0.0.1", 9]}"#, from);
    wait_for("two table updates", 10, || {
        count(&c.stdout.text(), "[Client table updated.]") == 3
    });
    assert!(fake.drain(700).is_empty(), "only the first table is ACKed");
    let out = c.stdout.text();
    assert!(out.contains(&format!("{WELCOME}\n{UPDATED}\n")));
}

#[test]
fn client_exits_1_with_rejection_text_when_name_taken() {
    let tmp = tempfile::tempdir().unwrap();
    let (_s, server) = start_server(tmp.path());
    let a = Raw::new();
    a.register(server, "alice", 5001, true);
    let mut c = spawn_client(tmp.path(), "alice", server);
    finished(
        &mut c,
        1,
        "===============\nClient alice already registered. Registration rejected.\n",
    );
}

#[test]
fn client_times_out_registration_after_three_tries() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = Raw::new();
    let mut c = spawn_client(tmp.path(), "alice", fake.addr());
    finished(
        &mut c,
        1,
        "===============\n >>> [Server not responding]\n >>> [Exiting]\n",
    );
    let sent = fake.drain(100);
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(sent.iter().all(|d| d.starts_with("alice,")));
}

/// A real client registered with a fake server whose first table is `table`.
fn client_with_fake(dir: &Path, name: &str, table: &str) -> (Proc, Raw, SocketAddr) {
    let fake = Raw::new();
    let c = spawn_client(dir, name, fake.addr());
    let (_, from) = fake.accept_registration(table);
    assert_eq!(fake.recv_text(), "ACK");
    c.wait_stdout(UPDATED, 10);
    (c, fake, from)
}

#[test]
fn client_offer_unacked_prints_no_ack_after_three_sends_and_stays_registered() {
    let tmp = tempfile::tempdir().unwrap();
    let share = make_dir(tmp.path(), "share");
    std::fs::write(share.join("a.txt"), "a").unwrap();
    let (mut c, fake, from) = client_with_fake(tmp.path(), "alice", "{}");
    c.type_line("setdir share");
    c.type_line("offer a.txt");
    c.wait_stdout(">>> [No ACK from Server, please try again later.]\n", 10);
    let offers = fake.drain(100);
    assert_eq!(offers, vec![r#"["a.txt"]"#; 3]);
    // Still registered: the next offer is acked, then EOF deregisters.
    c.type_line("offer a.txt");
    let (again, _) = fake.recv();
    assert_eq!(again, r#"["a.txt"]"#);
    fake.send(b"ACK_OFFER", from);
    fake.send(br#"{"a.txt,alice": ["127.0.0.1", 9]}"#, from);
    let out = c.wait_stdout("[Offer Message received by Server.]\n", 10);
    let acked_at = out.find("[Offer Message received by Server.]").unwrap();
    wait_for("the broadcast after the ACK", 10, || {
        c.stdout.text().rfind("[Client table updated.]").unwrap() > acked_at
    });
    c.close_stdin();
    assert_eq!(fake.recv_text(), "DEREG");
    fake.send(b"ACK_DEREG", from);
    finished(&mut c, 0, ">>> [You are now Offline. Bye.]\n");
}

#[test]
fn dereg_without_server_prints_not_responding_and_exiting() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut c, fake, _) = client_with_fake(tmp.path(), "alice", "{}");
    c.type_line("dereg alice");
    finished(
        &mut c,
        0,
        ">>>  >>> [Server not responding]\n >>> [Exiting]\n",
    );
    assert_eq!(fake.drain(100), vec!["DEREG"; 3]);
}

#[test]
fn list_empty_prints_no_files_line_and_blank_line() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut c, _fake, _) = client_with_fake(tmp.path(), "alice", "{}");
    c.type_line("list");
    c.type_line("list");
    c.wait_stdout(
        ">>> >>> [No files available for download at the moment.]\n\n>>> >>> [No files available for download at the moment.]\n\n>>> ",
        10,
    );
}

const SPEC_TABLE: &str = r#"{"jjs.jpg,waa": ["127.0.0.1", 1031], "hello.txt,alice": ["127.0.0.1", 41027], "jjs.jpg,heyy": ["127.0.0.1", 1030]}"#;
const SPEC_LISTING: &str = " FILENAME   OWNER  IP ADDRESS  TCP PORT \n hello.txt  alice  127.0.0.1   41027    \n jjs.jpg    waa    127.0.0.1   1031     \n jjs.jpg    heyy   127.0.0.1   1030     \n";

#[test]
fn list_matches_prettytable_layout_sorted_by_filename_ties_in_table_order() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut c, _fake, _) = client_with_fake(tmp.path(), "me", SPEC_TABLE);
    c.type_line("list");
    c.wait_stdout(&format!(">>> {SPEC_LISTING}>>> "), 10);
}

#[test]
fn list_with_argument_prints_warning_then_table() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut c, _fake, _) = client_with_fake(tmp.path(), "me", SPEC_TABLE);
    c.type_line("list everything");
    c.wait_stdout(
        &format!(">>> >>> [Warning: list does not take any arguments]\n{SPEC_LISTING}>>> "),
        10,
    );
}

#[test]
fn client_setdir_offer_usage_and_error_lines_are_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let share = make_dir(tmp.path(), "share");
    std::fs::write(share.join("ok.txt"), "x").unwrap();
    std::fs::write(share.join("empty.txt"), "").unwrap();
    std::fs::write(tmp.path().join("plainfile"), "x").unwrap();
    let (_s, server) = start_server(tmp.path());
    let mut c = start_client(tmp.path(), "alice", server);
    let steps = [
        (
            "offer ok.txt",
            ">>> [Please set a directory first. Usage: setdir <dir>.]",
        ),
        ("setdir", ">>> [Usage: setdir <dir>.]"),
        ("setdir a b", ">>> [Usage: setdir <dir>.]"),
        ("setdir nope", ">>> [setdir failed: nope does not exist.]"),
        (
            "setdir plainfile",
            ">>> [setdir failed: plainfile does not exist.]",
        ),
        (
            "setdir share",
            ">>> [Successfully set share as the directory for searching offered files.]",
        ),
        ("offer", ">>> [Please provide files to offer from share.]"),
        (
            "offer missing.txt",
            ">>> [Offer failed: missing.txt does not exist in share.]",
        ),
        (
            "offer ok.txt missing.txt",
            ">>> [Offer failed: missing.txt does not exist in share.]",
        ),
        (
            "offer ../plainfile",
            ">>> [Offer failed: ../plainfile is not a valid file name.]",
        ),
        (
            "offer a,b",
            ">>> [Offer failed: a,b is not a valid file name.]",
        ),
        ("offer empty.txt", ">>> [Offer failed: empty.txt is empty.]"),
        ("bogus", ">>> [Invalid command. Please try again.]"),
        (
            "request onlyone",
            ">>> [Usage: request <file_name> <client_name>.]",
        ),
        ("dereg", ">>> [Usage: dereg <nick-name>.]"),
        ("offer ok.txt", ">>> [Offer Message received by Server.]"),
    ];
    for (i, (cmd, want)) in steps.iter().enumerate() {
        c.type_line(cmd);
        wait_for(&format!("{cmd:?} -> {want:?}"), 10, || {
            let lines = stdout_lines(&c);
            lines
                .iter()
                .filter(|l| l.as_str() == want.trim_start_matches(">>> "))
                .count()
                >= steps[..=i].iter().filter(|(_, w)| w == want).count()
        });
    }
    c.wait_stdout(UPDATED, 5);
}

#[test]
fn dereg_wrong_name_prints_name_does_not_match() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut c, fake, _) = client_with_fake(tmp.path(), "alice", "{}");
    c.type_line("dereg bob");
    c.wait_stdout(">>> [Deregister failed: name does not match.]\n", 10);
    assert!(fake.drain(300).is_empty(), "nothing is sent");
}

// ---------------------------------------------------------------- real clients

/// A server and an owner `alice` offering `files` (name, bytes) from `share/`.
fn owner_with_files(tmp: &Path, files: &[(&str, &[u8])]) -> (Proc, SocketAddr, Proc) {
    let (s, server) = start_server(tmp);
    let a_dir = make_dir(tmp, "alice");
    let share = make_dir(&a_dir, "share");
    for (name, data) in files {
        std::fs::write(share.join(name), data).unwrap();
    }
    let mut a = start_client(&a_dir, "alice", server);
    a.type_line("setdir share");
    let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
    a.type_line(&format!("offer {}", names.join(" ")));
    a.wait_stdout(">>> [Offer Message received by Server.]", 10);
    (s, server, a)
}

fn request_ok(p: &mut Proc, file: &str, owner: &str, nth: usize) {
    p.type_line(&format!("request {file} {owner}"));
    let done = format!(
        "< Connection with client {owner} established. >\n< Downloading {file}... >\n< {file} downloaded successfully! >\n< Connection with client {owner} closed. >\n"
    );
    wait_for(&format!("download #{nth} of {file}"), 20, || {
        count(&p.stdout.text(), &done) >= nth
    });
}

#[test]
fn request_downloads_identical_bytes_into_cwd() {
    let tmp = tempfile::tempdir().unwrap();
    let big = pseudo_random(5 * 1024 * 1024, 7);
    let text = b"hello, world\nsecond line\n".to_vec();
    let (_s, server, a) = owner_with_files(tmp.path(), &[("hello.txt", &text), ("big.bin", &big)]);
    let b_dir = make_dir(tmp.path(), "bob");
    std::fs::write(b_dir.join("hello.txt"), "old contents").unwrap();
    let mut b = start_client(&b_dir, "bob", server);
    b.wait_stdout(UPDATED, 5);
    wait_for("bob sees the offer", 10, || {
        count(&b.stdout.text(), "[Client table updated.]") >= 1
    });
    b.type_line("list");
    b.wait_stdout(" big.bin", 10);
    request_ok(&mut b, "hello.txt", "alice", 1);
    request_ok(&mut b, "big.bin", "alice", 1);
    assert_eq!(std::fs::read(b_dir.join("hello.txt")).unwrap(), text);
    assert_eq!(std::fs::read(b_dir.join("big.bin")).unwrap(), big);
    assert!(!b_dir.join("big.bin.part").exists());
    a.wait_stdout(
        "< big.bin transferred successfully! >\n< Connection with client bob closed. >\n",
        10,
    );
    a.wait_stdout(
        "< Accepting connection request from 127.0.0.1 >\n< Transferring hello.txt... >\n",
        1,
    );
}

#[test]
fn client_can_request_many_files_in_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (_s, server, a) = owner_with_files(tmp.path(), &[("one.txt", b"1"), ("two.txt", b"22")]);
    let b_dir = make_dir(tmp.path(), "bob");
    let mut b = start_client(&b_dir, "bob", server);
    request_ok(&mut b, "one.txt", "alice", 1);
    request_ok(&mut b, "two.txt", "alice", 1);
    request_ok(&mut b, "one.txt", "alice", 2);
    assert_eq!(std::fs::read(b_dir.join("two.txt")).unwrap(), b"22");
    assert_eq!(count(&a.stdout.text(), "transferred successfully!"), 3);
}

#[test]
fn three_clients_share_in_every_direction() {
    let tmp = tempfile::tempdir().unwrap();
    let (_s, server, _a) = owner_with_files(tmp.path(), &[("from_a.txt", b"aaa")]);
    let b_dir = make_dir(tmp.path(), "bob");
    let c_dir = make_dir(tmp.path(), "carol");
    std::fs::write(b_dir.join("from_b.bin"), pseudo_random(300_000, 3)).unwrap();
    let mut b = start_client(&b_dir, "bob", server);
    let mut c = start_client(&c_dir, "carol", server);
    b.type_line("setdir .");
    b.type_line("offer from_b.bin");
    b.wait_stdout(">>> [Offer Message received by Server.]", 10);
    c.wait_stdout(UPDATED, 5);
    wait_for("carol sees bob's file", 10, || {
        c.type_line("list");
        std::thread::sleep(Duration::from_millis(100));
        c.stdout.text().contains(" from_b.bin ")
    });
    request_ok(&mut c, "from_a.txt", "alice", 1);
    request_ok(&mut c, "from_b.bin", "bob", 1);
    request_ok(&mut b, "from_a.txt", "alice", 1);
    assert_eq!(
        std::fs::read(c_dir.join("from_b.bin")).unwrap(),
        pseudo_random(300_000, 3)
    );
    assert_eq!(std::fs::read(b_dir.join("from_a.txt")).unwrap(), b"aaa");
}

#[test]
fn request_self_or_unknown_key_prints_invalid_request() {
    let tmp = tempfile::tempdir().unwrap();
    let (_s, server, mut a) = owner_with_files(tmp.path(), &[("f.txt", b"f")]);
    let b_dir = make_dir(tmp.path(), "bob");
    let mut b = start_client(&b_dir, "bob", server);
    a.type_line("request f.txt alice");
    a.wait_stdout("< Invalid Request >\n", 10);
    for bad in [
        "request nope.txt alice",
        "request f.txt nobody",
        "request ../x alice",
    ] {
        b.type_line(bad);
    }
    wait_for("three invalid requests", 10, || {
        count(&b.stdout.text(), "< Invalid Request >\n") == 3
    });
    b.type_line("request a b c");
    b.wait_stdout(">>> [Usage: request <file_name> <client_name>.]", 10);
}

#[test]
fn owner_missing_file_closes_without_data_and_keeps_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let (_s, server, a) = owner_with_files(tmp.path(), &[("gone.txt", b"g"), ("kept.txt", b"k")]);
    std::fs::remove_file(tmp.path().join("alice/share/gone.txt")).unwrap();
    let b_dir = make_dir(tmp.path(), "bob");
    let mut b = start_client(&b_dir, "bob", server);
    b.type_line("request gone.txt alice");
    b.wait_stdout(
        "< gone.txt download failed: client alice sent no data. >\n< Connection with client alice closed. >\n",
        10,
    );
    a.wait_stdout(
        "< Transfer failed: gone.txt is not available in share. >\n< Connection with client bob closed. >\n",
        10,
    );
    assert!(!b_dir.join("gone.txt").exists());
    assert!(!b_dir.join("gone.txt.part").exists());
    request_ok(&mut b, "kept.txt", "alice", 1);
    assert_eq!(std::fs::read(b_dir.join("kept.txt")).unwrap(), b"k");
}

/// A fake owner: one connection, then `behave` on it.
fn fake_owner(behave: impl FnOnce(TcpStream) + Send + 'static) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((s, _)) = l.accept() {
            behave(s);
        }
    });
    port
}

#[test]
fn requester_keeps_no_file_and_no_part_when_owner_sends_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let silent = fake_owner(|mut s| {
        let mut buf = [0u8; 100];
        let n = s.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"f.txt,me");
    });
    // Sends part of a file and resets the connection (unread data makes close send RST).
    let reset = fake_owner(|mut s| {
        let _ = s.write_all(&vec![7u8; 200_000]);
        std::thread::sleep(Duration::from_millis(200));
    });
    let table = format!(
        r#"{{"f.txt,owner": ["127.0.0.1", {silent}], "cut.bin,owner": ["127.0.0.1", {reset}], "../evil,owner": ["127.0.0.1", {silent}], "x,nobody": ["127.0.0.1", 1]}}"#
    );
    std::fs::write(tmp.path().join("f.txt"), "keep me").unwrap();
    let (mut c, _fake, _) = client_with_fake(tmp.path(), "me", &table);
    c.type_line("request f.txt owner");
    c.wait_stdout(
        "< f.txt download failed: client owner sent no data. >\n< Connection with client owner closed. >\n",
        10,
    );
    assert_eq!(std::fs::read(tmp.path().join("f.txt")).unwrap(), b"keep me");
    assert!(!tmp.path().join("f.txt.part").exists());
    c.type_line("request cut.bin owner");
    c.wait_stdout("< cut.bin download failed: ", 10);
    assert!(!tmp.path().join("cut.bin").exists());
    assert!(!tmp.path().join("cut.bin.part").exists());
    c.type_line("request ../evil owner");
    c.wait_stdout(
        "< ../evil download failed: the file name contains a path separator. >",
        10,
    );
    c.type_line("request x nobody");
    c.wait_stdout("< Connection with client nobody failed: ", 10);
}

#[test]
fn owner_refuses_names_not_offered_and_path_traversal() {
    let tmp = tempfile::tempdir().unwrap();
    let (_s, _server, a) = owner_with_files(tmp.path(), &[("pub.txt", b"public")]);
    std::fs::write(tmp.path().join("alice/share/secret.txt"), "secret").unwrap();
    std::fs::write(tmp.path().join("alice/outside.txt"), "outside").unwrap();
    let port = logged_port(&a, "core::tcp");
    let ask = |req: &[u8]| -> Vec<u8> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(req).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        got
    };
    for bad in [
        &b"secret.txt,x"[..],
        b"../outside.txt,x",
        b"/etc/passwd,x",
        b"pub.txt",
        b"pub.txt,x,y",
        b"\xff\xfe,x",
        &vec![b'a'; 5000],
    ] {
        assert!(ask(bad).is_empty(), "{:?}", String::from_utf8_lossy(bad));
    }
    // A connection that sends nothing is closed once the owner stops waiting (5 s).
    assert!(ask(b"").is_empty());
    a.wait_stdout(
        "< Transfer failed: (no request) is not available in share. >",
        5,
    );
    assert_eq!(ask(b"pub.txt,x"), b"public", "the owner keeps serving");
    a.wait_stdout("< Transfer failed: secret.txt is not available in share. >\n< Connection with client x closed. >\n", 5);
    a.wait_stdout(
        "< Transfer failed: ../outside.txt is not available in share. >",
        5,
    );
}

#[test]
fn after_dereg_only_list_works() {
    let tmp = tempfile::tempdir().unwrap();
    let (s, server, _a) = owner_with_files(tmp.path(), &[("f.txt", b"f")]);
    let b_dir = make_dir(tmp.path(), "bob");
    let mut b = start_client(&b_dir, "bob", server);
    b.type_line("dereg bob");
    b.wait_stdout(">>> [You are now Offline. Bye.]\n", 10);
    s.wait_stdout("[Deregistration Request for", 10);
    for cmd in [
        "setdir .",
        "offer f.txt",
        "request f.txt alice",
        "dereg bob",
    ] {
        b.type_line(cmd);
    }
    wait_for("four invalid commands", 10, || {
        count(&b.stdout.text(), "[Invalid command. Please try again.]") == 4
    });
    b.type_line("list");
    b.wait_stdout(" f.txt     alice", 10);
    b.close_stdin();
    assert_eq!(b.wait_exit(10), Some(0));
    assert_eq!(
        count(&b.stdout.text(), "Offline"),
        1,
        "no second dereg at EOF"
    );
}

#[test]
fn eof_on_stdin_deregisters_and_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let (s, server, mut a) = owner_with_files(tmp.path(), &[("f.txt", b"f")]);
    let b_dir = make_dir(tmp.path(), "bob");
    let mut b = start_client(&b_dir, "bob", server);
    a.close_stdin();
    finished(&mut a, 0, ">>> [You are now Offline. Bye.]\n");
    // bob's table no longer lists alice's file.
    wait_for("bob's table update", 10, || {
        count(&b.stdout.text(), "[Client table updated.]") >= 2
    });
    b.type_line("list");
    b.wait_stdout("[No files available for download at the moment.]", 10);
    // Ctrl-C deregisters too.
    b.interrupt();
    finished(&mut b, 0, "[You are now Offline. Bye.]\n");
    wait_for("two dereg lines", 10, || {
        count(&s.stdout.text(), "[Deregistration Request for") == 2
    });
}

#[test]
fn killed_client_stays_listed_and_requests_to_it_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let (_s, server, mut a) = owner_with_files(tmp.path(), &[("f.txt", b"f")]);
    a.kill();
    let b_dir = make_dir(tmp.path(), "bob");
    let mut b = start_client(&b_dir, "bob", server);
    b.type_line("list");
    b.wait_stdout(" f.txt     alice", 10);
    b.type_line("request f.txt alice");
    b.wait_stdout("< Connection with client alice failed: ", 10);
    assert!(!b_dir.join("f.txt").exists());
}

#[test]
fn async_table_update_prints_above_prompt_without_garbling_typed_input() {
    // A terminal is needed for rustyline; `script` gives the client a pty.
    let has_script = std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_script {
        eprintln!("`script` (util-linux) is not installed; the pty check cannot run here");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let fake = Raw::new();
    let cmd = format!(
        "{} fileapp -c alice 127.0.0.1 {} 0 0",
        support::BIN,
        fake.port()
    );
    let mut child = std::process::Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .current_dir(tmp.path())
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut pipe = child.stdout.take().unwrap();
    let sink = out.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let text = || String::from_utf8_lossy(&out.lock().unwrap()).into_owned();
    let (_, from) = fake.accept_registration("{}");
    assert_eq!(fake.recv_text(), "ACK");
    wait_for("the prompt", 10, || text().contains(">>> "));
    let mut stdin = child.stdin.take().unwrap();
    // Typed one key at a time, as a person would.
    for key in [b"l", b"i", b"s"] {
        stdin.write_all(key).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_for("the typed text echoed", 10, || text().contains("li"));
    fake.send(br#"{"new.txt,bob": ["127.0.0.1", 9]}"#, from);
    wait_for("the update", 10, || {
        count(&text(), "[Client table updated.]") == 2
    });
    for key in [b"t", b"\r"] {
        stdin.write_all(key).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !text().contains(" new.txt   bob ") {
        assert!(Instant::now() < deadline, "no listing: {:?}", text());
        std::thread::sleep(Duration::from_millis(20));
    }
    let t = text();
    let update = t.rfind("[Client table updated.]").unwrap();
    // The update sits on its own line and the typed `lis` is redrawn after it, intact.
    assert!(!t.contains("lis>>> [Client table updated.]"), "{t:?}");
    assert!(t[update..].contains(">>> lis"), "{t:?}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn ctrl_c_during_request_aborts_the_download_and_deregisters() {
    let tmp = tempfile::tempdir().unwrap();
    // Dropping `release` at the end lets the fake owner go.
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let stalls = fake_owner(move |mut s| {
        let mut buf = [0u8; 100];
        let _ = s.read(&mut buf);
        let _ = s.write_all(&[1u8; 1000]);
        // Keep the connection open, silent, until the test ends.
        let _ = hold.recv_timeout(Duration::from_secs(20));
    });
    let table = format!(r#"{{"slow.bin,owner": ["127.0.0.1", {stalls}]}}"#);
    let (mut c, fake, from) = client_with_fake(tmp.path(), "me", &table);
    c.type_line("request slow.bin owner");
    c.wait_stdout("< Downloading slow.bin... >\n", 10);
    wait_for("the .part file", 10, || {
        tmp.path().join("slow.bin.part").exists()
    });
    c.interrupt();
    c.wait_stdout(
        "< slow.bin download failed: interrupted by Ctrl-C. >\n< Connection with client owner closed. >\n",
        10,
    );
    assert_eq!(fake.recv_text(), "DEREG");
    fake.send(b"ACK_DEREG", from);
    finished(&mut c, 0, ">>> [You are now Offline. Bye.]\n");
    assert!(!tmp.path().join("slow.bin").exists());
    assert!(!tmp.path().join("slow.bin.part").exists());
    drop(release);
}

// ---------------------------------------------------------------- end of transfer (issue 14.1)

/// A separate uploader process in Python, as an original FileApp owner would be: it listens,
/// reads one request, sends `bytes` bytes, then either kills itself with SIGKILL (`die`) or
/// closes the connection fully and keeps listening (`close`). Killed by PID when dropped.
struct PyOwner {
    child: std::process::Child,
    port: u16,
}

impl PyOwner {
    fn start(mode: &str, bytes: usize) -> Option<PyOwner> {
        const SCRIPT: &str = "import os, signal, socket, sys, time\n\
l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(16)\n\
print(l.getsockname()[1], flush=True)\n\
c, _ = l.accept(); c.recv(1024); c.sendall(b'x' * int(sys.argv[2]))\n\
if sys.argv[1] == 'die': os.kill(os.getpid(), signal.SIGKILL)\n\
c.close()\n\
time.sleep(60)\n";
        let mut child = std::process::Command::new("python3")
            .args(["-c", SCRIPT, mode, &bytes.to_string()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        let mut line = String::new();
        let mut out = std::io::BufReader::new(child.stdout.take()?);
        std::io::BufRead::read_line(&mut out, &mut line).ok()?;
        let port = line.trim().parse().ok()?;
        Some(PyOwner { child, port })
    }
}

impl Drop for PyOwner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn requester_discards_a_file_cut_by_an_owner_killed_mid_transfer() {
    let Some(dying) = PyOwner::start("die", 3_000_000) else {
        eprintln!("skipped: python3 is not available to play a killed owner");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let table = format!(r#"{{"big.bin,owner": ["127.0.0.1", {}]}}"#, dying.port);
    let (mut c, _fake, _) = client_with_fake(tmp.path(), "me", &table);
    c.type_line("request big.bin owner");
    c.wait_stdout(
        &format!(
            "< big.bin download failed: the uploader at 127.0.0.1:{} disappeared, so the end of the file cannot be trusted. >\n< Connection with client owner closed. >\n",
            dying.port
        ),
        15,
    );
    assert!(!tmp.path().join("big.bin").exists());
    assert!(!tmp.path().join("big.bin.part").exists());
}

#[test]
fn requester_keeps_a_whole_file_from_an_owner_that_closes_fully_like_the_original() {
    let Some(original) = PyOwner::start("close", 3_000_000) else {
        eprintln!("skipped: python3 is not available to play an original owner");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let table = format!(r#"{{"big.bin,owner": ["127.0.0.1", {}]}}"#, original.port);
    let (mut c, _fake, _) = client_with_fake(tmp.path(), "me", &table);
    request_ok(&mut c, "big.bin", "owner", 1);
    assert_eq!(
        std::fs::read(tmp.path().join("big.bin")).unwrap(),
        vec![b'x'; 3_000_000]
    );
}
