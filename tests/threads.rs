//! docs/threads.md cannot drift from the code: every role it documents is started (the binary, so
//! each role's threads are alone in their process), its running threads are read from
//! `/proc/<pid>/task/*/comm`, and they must be exactly what the document's table for that role
//! lists: every thread marked `always` is seen, and every thread seen is listed. Linux keeps only
//! the first 15 bytes of a thread's name, so names are compared on those.

mod support;

use std::collections::BTreeSet;
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};
use support::Proc;

/// Linux's limit on `comm` (16 bytes with the NUL).
const COMM: usize = 15;

/// One role's table in docs/threads.md: (thread name, always running?).
#[derive(Debug)]
struct Documented {
    role: String,
    threads: Vec<(String, bool)>,
}

/// Sections `### <system> <role> …` and their table rows `` | `name` | when | … ``.
fn documented() -> Vec<Documented> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/threads.md");
    let text = std::fs::read_to_string(&path).expect("docs/threads.md");
    let mut out: Vec<Documented> = Vec::new();
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("### ") {
            let role: Vec<&str> = h.split_whitespace().take(2).collect();
            out.push(Documented {
                role: role.join(" "),
                threads: Vec::new(),
            });
        } else if let (Some(row), Some(doc)) = (line.strip_prefix("| `"), out.last_mut()) {
            let name = row.split('`').next().unwrap().to_string();
            let when = row.split('|').nth(1).unwrap_or("").trim();
            doc.threads.push((name, when == "always"));
        }
    }
    out.retain(|d| !d.threads.is_empty());
    out
}

/// Whether `comm` (a running thread's truncated name) is the documented `name`, where `<…>` in
/// `name` stands for any text (`p2ptracker-chunks-<i>`).
fn is(comm: &str, name: &str) -> bool {
    let literal = name.split('<').next().unwrap();
    if literal.len() < name.len() && literal.len() < COMM {
        comm.starts_with(literal)
    } else {
        comm == &name[..name.len().min(COMM)]
    }
}

fn comms(pid: u32) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(c) = std::fs::read_to_string(t.path().join("comm")) {
                out.insert(c.trim_end().to_string());
            }
        }
    }
    out
}

/// The address in the first `listening on <addr>` line on stderr.
fn listening(p: &Proc) -> String {
    let err = p.wait_stderr("listening on ", 20);
    let at = err.find("listening on ").unwrap() + "listening on ".len();
    err[at..].split_whitespace().next().unwrap().to_string()
}

fn port(addr: &str) -> String {
    addr.rsplit(':').next().unwrap().to_string()
}

/// Starts `role` in `dir`; returns its process last, after any server it needs.
fn start(role: &str, dir: &Path) -> Vec<Proc> {
    let p = |args: &[&str]| Proc::start(dir, args);
    match role {
        "p2ptracker tracker" => {
            let t = p(&["p2ptracker", "tracker", "--port", "0"]);
            // A connected client gives the tracker its per-connection thread.
            let addr = listening(&t);
            let conn = TcpStream::connect(&addr).unwrap();
            std::mem::forget(conn);
            vec![t]
        }
        "p2ptracker client" => {
            let t = p(&["p2ptracker", "tracker", "--port", "0"]);
            let tracker = listening(&t);
            let folder = dir.join("A");
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::write(folder.join("chunk_1"), "one").unwrap();
            std::fs::write(folder.join("local_chunks.txt"), "1,chunk_1\n1,LASTCHUNK\n").unwrap();
            let c = p(&[
                "p2ptracker",
                "client",
                "-folder",
                "A",
                "-transfer_port",
                "0",
                "-name",
                "A",
                "--tracker",
                &tracker,
            ]);
            listening(&c);
            vec![t, c]
        }
        "fileapp server" => {
            let s = p(&["fileapp", "-s", "0"]);
            listening(&s);
            vec![s]
        }
        "fileapp client" => {
            let s = p(&["fileapp", "-s", "0"]);
            let server = port(&listening(&s));
            let c = p(&["fileapp", "-c", "n1", "127.0.0.1", &server, "0", "0"]);
            c.wait_stdout("Client table updated.", 20);
            vec![s, c]
        }
        "bittrickle server" => {
            std::fs::write(dir.join("credentials.txt"), "hans falcon*solo\n").unwrap();
            let s = p(&["bittrickle", "server", "0"]);
            s.wait_stdout("Ready to receive on", 20);
            vec![s]
        }
        "bittrickle client" => {
            std::fs::write(dir.join("credentials.txt"), "hans falcon*solo\n").unwrap();
            let s = p(&["bittrickle", "server", "0"]);
            let out = s.wait_stdout("Ready to receive on", 20);
            let rest = out.split("Ready to receive on 127.0.0.1:").nth(1).unwrap();
            let server: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let mut c = p(&["bittrickle", "client", &server]);
            c.type_line("hans");
            c.type_line("falcon*solo");
            c.wait_stdout("Welcome to BitTrickle", 20);
            vec![s, c]
        }
        "torrent tracker" => {
            let t = p(&["torrent", "tracker", "--port", "0"]);
            listening(&t);
            vec![t]
        }
        "torrent node" => {
            let t = p(&["torrent", "tracker", "--port", "0"]);
            let tracker = listening(&t);
            let n = p(&["torrent", "node", "-node_id", "1", "--tracker", &tracker]);
            n.wait_stdout("ENTER YOUR COMMAND!", 20);
            vec![t, n]
        }
        "xfs tracker" => {
            let t = p(&["xfs", "tracker", "--port", "0"]);
            let addr = listening(&t);
            std::mem::forget(TcpStream::connect(&addr).unwrap());
            vec![t]
        }
        "xfs node" => {
            let t = p(&["xfs", "tracker", "--port", "0"]);
            let tracker = listening(&t);
            std::fs::create_dir_all(dir.join("share")).unwrap();
            let latency = Path::new(env!("CARGO_MANIFEST_DIR")).join("latency.txt");
            let n = p(&[
                "xfs",
                "node",
                "127.0.0.1",
                "0",
                "share",
                "--tracker",
                &tracker,
                "--latency",
                latency.to_str().unwrap(),
            ]);
            n.wait_stdout("ACK\n", 20);
            vec![t, n]
        }
        "bt tracker" => {
            let t = p(&[
                "bt",
                "tracker",
                "--bind",
                "127.0.0.1",
                "--port",
                "0",
                "--udp-port",
                "0",
            ]);
            t.wait_stdout("tracker: ", 20);
            vec![t]
        }
        "bt seed" | "bt get" => {
            let t = p(&[
                "bt",
                "tracker",
                "--bind",
                "127.0.0.1",
                "--port",
                "0",
                "--udp-port",
                "0",
            ]);
            let out = t.wait_stdout("tracker: ", 20);
            let line = out
                .lines()
                .find_map(|l| l.strip_prefix("tracker: "))
                .unwrap();
            let http = line.split(' ').next().unwrap().to_string();
            std::fs::write(dir.join("x.bin"), vec![7u8; 300_000]).unwrap();
            let mut make = p(&[
                "bt",
                "make",
                "x.bin",
                "--announce",
                &http,
                "-o",
                "x.torrent",
            ]);
            assert_eq!(make.wait_exit(20), Some(0));
            let peer = ["--bind", "127.0.0.1", "--port", "0"];
            let s = p(&[&["bt", "seed", "x.torrent", "x.bin"][..], &peer].concat());
            s.wait_stdout("seeding", 20);
            if role == "bt seed" {
                return vec![t, s];
            }
            // `--seed` keeps the downloader up after it completes, so its threads can be read.
            let g = p(&[&["bt", "get", "x.torrent", "-o", "dl", "--seed"][..], &peer].concat());
            g.wait_stdout("seeding x.bin until Ctrl-C", 30);
            vec![t, s, g]
        }
        other => panic!("docs/threads.md documents {other:?}, which this test cannot start"),
    }
}

#[test]
fn every_documented_role_runs_exactly_the_threads_docs_threads_md_lists() {
    let docs = documented();
    let roles: Vec<&str> = docs.iter().map(|d| d.role.as_str()).collect();
    for want in [
        "p2ptracker tracker",
        "p2ptracker client",
        "fileapp server",
        "fileapp client",
        "bittrickle server",
        "bittrickle client",
        "torrent tracker",
        "torrent node",
        "xfs tracker",
        "xfs node",
        "bt tracker",
        "bt seed",
        "bt get",
    ] {
        assert!(
            roles.contains(&want),
            "docs/threads.md has no table for {want}"
        );
    }
    let _keep_udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for doc in &docs {
        let tmp = tempfile::tempdir().unwrap();
        let procs = start(&doc.role, tmp.path());
        let pid = procs.last().unwrap().child.id();
        // Threads start as the role comes up; watch until every `always` one has been seen.
        let mut seen = BTreeSet::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            seen.extend(comms(pid));
            let missing: Vec<&str> = doc
                .threads
                .iter()
                .filter(|(name, always)| *always && !seen.iter().any(|c| is(c, name)))
                .map(|(name, _)| name.as_str())
                .collect();
            if missing.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{}: documented threads {missing:?} never ran; running: {seen:?}",
                doc.role
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Look a little longer for threads the document does not know.
        for _ in 0..10 {
            seen.extend(comms(pid));
            std::thread::sleep(Duration::from_millis(20));
        }
        let unknown: Vec<&String> = seen
            .iter()
            .filter(|c| !doc.threads.iter().any(|(name, _)| is(c, name)))
            .collect();
        assert!(
            unknown.is_empty(),
            "{}: threads {unknown:?} run but docs/threads.md does not list them",
            doc.role
        );
        drop(procs);
    }
}

#[test]
fn thread_names_are_matched_on_their_first_fifteen_bytes() {
    assert!(is("p2ptracker-trac", "p2ptracker-tracker-accept"));
    assert!(is("xfs-serve-3", "xfs-serve-<i>"));
    assert!(!is("xfs-serve-accep", "xfs-serve"));
    assert!(is("peershare", "peershare"));
    assert!(is("fileapp-upload-", "fileapp-upload-<i>"));
}
