//! Scenario benchmarks: each row runs a peershare scenario and, in the same process, baselines
//! that move the same bytes over a loopback TCP socket into a file, and prints their ratios as a
//! Markdown table. Two baselines: the machine's limit (`limit.rs`: sendfile out, large reads or
//! splice in, whichever is faster here) and, for continuity with earlier tables, a plain
//! `std::io::copy` (8 KiB copies on both sides). Every download is verified (SHA-256 of every
//! chunk or file) — a fast wrong answer does not count.
//!
//! Each row runs three times and shows the median with min–max, since one figure on a shared
//! machine proves little; a ratio measured in the same run does. After the table come scaling
//! curves (how time, rate and memory grow with work), written as CSV under `target/bench/` and,
//! with `PEERSHARE_BENCH_CHARTS=<dir>`, as SVG charts there (the README's are in `docs/bench/`).
//!
//! `cargo bench --bench scenarios` runs the full sizes; `PEERSHARE_BENCH_SMOKE=1` shrinks every
//! scenario to a few MiB and one run so CI can run it in seconds; `PEERSHARE_BENCH_MIB` sets the
//! one-file size; `PEERSHARE_BENCH_ONLY=<key>` runs only matching rows and curves.

mod chart;
mod limit;

use peershare::demo::{random_file, Swarm};
use std::fs::File;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

struct Row {
    scenario: String,
    subject: String,
    baseline: String,
    ratio: f64,
    /// The same figure against the `std::io::copy` baseline (one-file and swarm rows).
    copy_ratio: Option<f64>,
    target: String,
}

/// The two baselines of a run, in MiB/s.
#[derive(Clone, Copy)]
struct Baselines {
    limit: f64,
    copy: f64,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn rate(bytes: u64, d: Duration) -> f64 {
    mib(bytes) / d.as_secs_f64().max(1e-9)
}

/// The baseline: `std::io::copy` of `src` over a fresh loopback connection into a new file.
fn baseline_copy(src: &Path, dest: &Path) -> io::Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let src = src.to_path_buf();
    let start = Instant::now();
    let sender = std::thread::spawn(move || -> io::Result<u64> {
        let (mut sock, _) = listener.accept()?;
        io::copy(&mut File::open(&src)?, &mut sock)
    });
    let mut sock = TcpStream::connect(addr)?;
    let mut out = File::create(dest)?;
    io::copy(&mut sock, &mut out)?;
    out.sync_all()?;
    let elapsed = start.elapsed();
    sender
        .join()
        .map_err(|_| io::Error::other("baseline sender panicked"))??;
    Ok(elapsed)
}

/// Best of `n` runs of each baseline over a `bytes`-sized file; the limit is the faster of its
/// two receivers (named in the returned label). The copies are checked against the source.
fn baselines(work: &Path, bytes: u64, n: usize) -> io::Result<(Baselines, &'static str)> {
    use peershare::core::digest::sha256_file;
    let src = work.join("baseline.src");
    let mib_count = bytes.div_ceil(1 << 20).max(1);
    random_file(&src, mib_count, 7)?;
    let dest = work.join("baseline.dst");
    let moved = mib_count << 20;
    let best = |run: &dyn Fn() -> io::Result<Duration>| -> io::Result<f64> {
        let mut best = f64::MIN;
        for _ in 0..n {
            best = best.max(rate(moved, run()?));
        }
        if sha256_file(&src)? != sha256_file(&dest)? {
            return Err(io::Error::other("a baseline copy differs from its source"));
        }
        Ok(best)
    };
    let copy = best(&|| baseline_copy(&src, &dest))?;
    let mut limit = (f64::MIN, limit::Receiver::LargeReads);
    for how in [limit::Receiver::LargeReads, limit::Receiver::Splice] {
        let r = best(&|| limit::limit_copy(&src, &dest, how))?;
        println!("limit candidate: {}: {r:.0} MiB/s", how.label());
        if r > limit.0 {
            limit = (r, how);
        }
    }
    std::fs::remove_file(&src)?;
    std::fs::remove_file(&dest)?;
    Ok((
        Baselines {
            limit: limit.0,
            copy,
        },
        limit.1.label(),
    ))
}

/// P2PTracker++ swarm: `peers` clients, `chunks` × `chunk_mib` MiB, random overlapping holdings,
/// pacing off, until every client has every chunk; compared with the ideal time to move the
/// bytes that must move at the baseline rate.
fn swarm_row(
    label: &str,
    peers: usize,
    chunks: u64,
    chunk_bytes: u64,
    base: Baselines,
) -> Result<Row, Box<dyn std::error::Error>> {
    let (took, bytes) = swarm_time(peers, chunks, chunk_bytes)?;
    let ideal = mib(bytes) / base.limit;
    Ok(Row {
        scenario: label.into(),
        subject: format!(
            "{:.3} s ({:.0} MiB moved, {:.0} MiB/s)",
            took,
            mib(bytes),
            mib(bytes) / took
        ),
        baseline: format!("{ideal:.3} s ideal at {:.0} MiB/s", base.limit),
        ratio: took / ideal,
        copy_ratio: Some(took / (mib(bytes) / base.copy)),
        target: "≤ 1.5× time".into(),
    })
}

/// Seconds until every client of a verified swarm has every chunk, and the bytes that moved.
fn swarm_time(
    peers: usize,
    chunks: u64,
    chunk_bytes: u64,
) -> Result<(f64, u64), Box<dyn std::error::Error>> {
    let work = tempfile::tempdir()?;
    let src = work.path().join("fileset.bin");
    let total_mib = (chunks * chunk_bytes).div_ceil(1 << 20);
    random_file(&src, total_mib, 42)?;
    let swarm = Swarm::build(work.path(), &[src], chunk_bytes, peers, 11)?;
    let report = swarm.run()?;
    Ok((report.elapsed.as_secs_f64(), swarm.bytes_needed))
}

/// One file from one peer to another through P2PTracker++ chunks (1 MiB each): a client holding
/// everything, a client holding nothing.
fn one_file_p2ptracker(bytes: u64, base: Baselines) -> Result<Row, Box<dyn std::error::Error>> {
    let work = tempfile::tempdir()?;
    let src = work.path().join("one.bin");
    random_file(&src, bytes >> 20, 5)?;
    // Two peers with seed chosen so holdings are random; rebuild as "all" and "none".
    let swarm = Swarm::build(work.path(), std::slice::from_ref(&src), 1 << 20, 2, 1)?;
    let n = swarm.chunk_digests.len();
    let (seed_dir, leech_dir) = (&swarm.clients[0].1, &swarm.clients[1].1);
    for dir in [seed_dir, leech_dir] {
        for e in std::fs::read_dir(dir)?.flatten() {
            std::fs::remove_file(e.path())?;
        }
    }
    let mut list = String::new();
    for i in 1..=n {
        std::fs::copy(
            work.path().join("source").join(format!("chunk_{i}")),
            seed_dir.join(format!("chunk_{i}")),
        )?;
        list.push_str(&format!("{i},chunk_{i}\n"));
    }
    std::fs::write(
        seed_dir.join("local_chunks.txt"),
        format!("{list}{n},LASTCHUNK\n"),
    )?;
    std::fs::write(
        leech_dir.join("local_chunks.txt"),
        format!("{n},LASTCHUNK\n"),
    )?;
    let swarm = Swarm {
        bytes_needed: bytes,
        initial_entries: n,
        ..swarm
    };
    let report = swarm.run()?;
    let r = rate(bytes, report.elapsed);
    Ok(Row {
        scenario: format!("one file, {} MiB: P2PTracker++ chunks", bytes >> 20),
        subject: format!("{r:.0} MiB/s"),
        baseline: format!("{:.0} MiB/s", base.limit),
        ratio: r / base.limit,
        copy_ratio: Some(r / base.copy),
        target: "≥ 0.90× rate".into(),
    })
}

/// A `peershare` process (killed on drop) and the address it reported on stderr.
struct Server {
    child: std::process::Child,
    addr: std::net::SocketAddr,
}

impl Server {
    fn start(args: &[&str], cwd: &Path) -> Result<Server, Box<dyn std::error::Error>> {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_peershare"))
            .args(args)
            .current_dir(cwd)
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let mut lines = io::BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines.next().ok_or("the server exited before listening")??;
            if let Some(a) = line.split("listening on ").nth(1) {
                break a.trim().parse()?;
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Server { child, addr })
    }

    fn rss_kib(&self) -> u64 {
        rss_kib_of(&format!("/proc/{}/status", self.child.id()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rss_kib_of(status: &str) -> u64 {
    std::fs::read_to_string(status)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// What a tracker load run measured.
struct Load {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    rss_mib: u64,
}

fn tracker_load_row(conns: usize, secs: f64) -> Result<Row, Box<dyn std::error::Error>> {
    let l = tracker_load(conns, secs)?;
    Ok(Row {
        scenario: format!("P2PTracker++ tracker, {conns} connections held, WHERE_CHUNK loop"),
        subject: format!(
            "{:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, tracker RSS {} MiB",
            l.rps, l.p50_ms, l.p99_ms, l.rss_mib
        ),
        baseline: "100,000 req/s".into(),
        ratio: l.rps / 100_000.0,
        copy_ratio: None,
        target: "≥ 1.0, p99 < 5 ms".into(),
    })
}

/// P2PTracker++ tracker load: `conns` connections held open; driver threads keep a window of
/// requests in flight per thread (write a batch of `WHERE_CHUNK`s on consecutive connections,
/// then read their replies), for `secs`. Reports requests/s and p50/p99 latency per request.
fn tracker_load(conns: usize, secs: f64) -> Result<Load, Box<dyn std::error::Error>> {
    use std::io::{Read, Write};
    let work = tempfile::tempdir()?;
    let server = Server::start(
        &[
            "p2ptracker",
            "tracker",
            "--port",
            "0",
            "--max-connections",
            "20000",
        ],
        work.path(),
    )?;
    {
        let mut seed = TcpStream::connect(server.addr)?;
        for idx in 1..=100 {
            seed.write_all(format!("LOCAL_CHUNKS,{idx},localhost,7001\n").as_bytes())?;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let threads = 4usize;
    let per = conns.div_ceil(threads);
    // Every connection is open before the clock starts; the deadline is set once all are.
    let ready = std::sync::Arc::new(std::sync::Barrier::new(threads + 1));
    let deadline = std::sync::Arc::new(std::sync::OnceLock::<Instant>::new());
    let mut handles = Vec::new();
    for t in 0..threads {
        let addr = server.addr;
        let (ready, deadline) = (ready.clone(), deadline.clone());
        handles.push(std::thread::spawn(move || -> io::Result<Vec<u32>> {
            let mut socks = Vec::with_capacity(per);
            let mut failed = None;
            for _ in 0..per {
                match TcpStream::connect(addr).and_then(|s| s.set_nodelay(true).map(|()| s)) {
                    Ok(s) => socks.push(s),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            ready.wait();
            ready.wait();
            if let Some(e) = failed {
                return Err(e);
            }
            let deadline = *deadline
                .get()
                .ok_or_else(|| io::Error::other("no deadline"))?;
            let mut lat_us = Vec::new();
            let mut buf = [0u8; 1024];
            let batch = 32.min(socks.len().max(1));
            let mut next = 0usize;
            let mut idx = t as u32;
            while Instant::now() < deadline {
                let mut sent = Vec::with_capacity(batch);
                for k in 0..batch {
                    let i = (next + k) % socks.len();
                    idx = idx % 100 + 1;
                    socks[i].write_all(format!("WHERE_CHUNK,{idx}").as_bytes())?;
                    sent.push((i, Instant::now()));
                }
                for (i, at) in sent {
                    let n = socks[i].read(&mut buf)?;
                    if n == 0 {
                        return Err(io::Error::other("the tracker closed a connection"));
                    }
                    lat_us.push(at.elapsed().as_micros() as u32);
                }
                next = (next + batch) % socks.len();
            }
            Ok(lat_us)
        }));
    }
    ready.wait();
    let _ = deadline.set(Instant::now() + Duration::from_secs_f64(secs));
    ready.wait();
    let mut lat = Vec::new();
    for h in handles {
        lat.extend(h.join().map_err(|_| "driver panicked")??);
    }
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    Ok(Load {
        rps: lat.len() as f64 / secs,
        p50_ms: pct(0.50) as f64 / 1000.0,
        p99_ms: pct(0.99) as f64 / 1000.0,
        rss_mib: server.rss_kib() / 1024,
    })
}

fn tracker_memory_row(entries: u32) -> Result<Row, Box<dyn std::error::Error>> {
    let (per_entry, before, after) = tracker_memory(entries)?;
    Ok(Row {
        scenario: format!("P2PTracker++ tracker memory, {entries} chunk-holder entries"),
        subject: format!(
            "{per_entry:.0} B/entry (RSS {} → {} MiB)",
            before / 1024,
            after / 1024
        ),
        baseline: "1024 B/entry".into(),
        ratio: per_entry / 1024.0,
        copy_ratio: None,
        target: "< 1.0".into(),
    })
}

/// RSS growth per entry of a tracker holding `entries` (chunk, holder) pairs announced over
/// TCP, with its RSS (KiB) before and after.
fn tracker_memory(entries: u32) -> Result<(f64, u64, u64), Box<dyn std::error::Error>> {
    use std::io::{Read, Write};
    let work = tempfile::tempdir()?;
    let server = Server::start(&["p2ptracker", "tracker", "--port", "0"], work.path())?;
    let mut s = TcpStream::connect(server.addr)?;
    std::thread::sleep(Duration::from_millis(100));
    let before = server.rss_kib();
    let holders = 4u32;
    let mut batch = String::new();
    for i in 0..entries {
        let idx = i / holders + 1;
        let port = 7001 + i % holders;
        batch.push_str(&format!("LOCAL_CHUNKS,{idx},localhost,{port}\n"));
        if batch.len() > 60_000 {
            s.write_all(batch.as_bytes())?;
            batch.clear();
        }
    }
    s.write_all(batch.as_bytes())?;
    // A reply to a final question proves every announcement before it was processed.
    let last = (entries - 1) / holders + 1;
    s.write_all(format!("WHERE_CHUNK,{last}").as_bytes())?;
    let mut buf = [0u8; 1024];
    if s.read(&mut buf)? == 0 {
        return Err("the tracker closed the connection".into());
    }
    let after = server.rss_kib();
    let per_entry = (after.saturating_sub(before) * 1024) as f64 / entries as f64;
    Ok((per_entry, before, after))
}

/// RSS of an idle P2PTracker++ client process (all chunks present, serving).
fn idle_client_memory() -> Result<Row, Box<dyn std::error::Error>> {
    let work = tempfile::tempdir()?;
    let tracker = Server::start(&["p2ptracker", "tracker", "--port", "0"], work.path())?;
    let folder = work.path().join("c");
    std::fs::create_dir_all(&folder)?;
    std::fs::write(folder.join("chunk_1"), b"x")?;
    std::fs::write(folder.join("local_chunks.txt"), "1,chunk_1\n1,LASTCHUNK\n")?;
    let addr = tracker.addr.to_string();
    let client = Server::start(
        &[
            "p2ptracker",
            "client",
            "-folder",
            "c",
            "-transfer_port",
            "0",
            "-name",
            "idle",
            "--tracker",
            &addr,
            "--pace-ms",
            "0",
        ],
        work.path(),
    )?;
    std::thread::sleep(Duration::from_millis(500));
    let kib = client.rss_kib();
    Ok(Row {
        scenario: "P2PTracker++ idle client (tracker connection, chunk server, 5 workers)".into(),
        subject: format!("{:.1} MiB RSS", kib as f64 / 1024.0),
        baseline: "10 MiB".into(),
        ratio: kib as f64 / 10240.0,
        copy_ratio: None,
        target: "< 1.0".into(),
    })
}

/// A `peershare` process driven through stdin/stdout like a user at a terminal.
struct Session {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    out: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Session {
    fn start(args: &[&str], cwd: &Path) -> io::Result<Session> {
        use std::io::Read;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_peershare"))
            .args(args)
            .current_dir(cwd)
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        let out = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let sink = out.clone();
            std::thread::spawn(move || {
                let mut pipe = pipe;
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut s) = sink.lock() {
                        s.push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                }
            });
        }
        let stdin = child.stdin.take();
        Ok(Session { child, stdin, out })
    }

    fn type_line(&mut self, line: &str) -> io::Result<()> {
        use std::io::Write;
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::other("stdin closed"))?;
        stdin.write_all(format!("{line}\n").as_bytes())?;
        stdin.flush()
    }

    /// Waits until `needle` has appeared `count` times in stdout+stderr; returns the text after
    /// the first `start` bytes for parsing.
    fn wait(
        &self,
        needle: &str,
        count: usize,
        secs: u64,
    ) -> Result<String, Box<dyn std::error::Error>> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let text = self.out.lock().map(|s| s.clone()).unwrap_or_default();
            if text.matches(needle).count() >= count {
                return Ok(text);
            }
            if Instant::now() > deadline {
                return Err(format!("timed out waiting for {needle:?}; output:\n{text}").into());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Session {
    /// Types `line` and returns the time until `done` appears in the output.
    fn timed(&mut self, line: &str, done: &str) -> Result<Duration, Box<dyn std::error::Error>> {
        let start = Instant::now();
        self.type_line(line)?;
        self.wait(done, 1, 900)?;
        Ok(start.elapsed())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text after `marker` up to the next whitespace (a port in a banner line).
fn word_after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &text[text.find(marker)? + marker.len()..];
    rest.split_whitespace().next()
}

/// The row of a one-file scenario, after checking the download is byte-identical to the source.
fn one_file_row(
    label: &str,
    src: &Path,
    dest: &Path,
    bytes: u64,
    took: Duration,
    base: Baselines,
    target: &str,
) -> Result<Row, Box<dyn std::error::Error>> {
    use peershare::core::digest::sha256_file;
    if sha256_file(src)? != sha256_file(dest)? {
        return Err(format!("{label}: the download differs from the source").into());
    }
    let r = rate(bytes, took);
    Ok(Row {
        scenario: format!("one file, {} MiB: {label}", bytes >> 20),
        subject: format!("{r:.0} MiB/s"),
        baseline: format!("{:.0} MiB/s", base.limit),
        ratio: r / base.limit,
        copy_ratio: Some(r / base.copy),
        target: target.into(),
    })
}

/// One file through BitTrickle: `pub` by one client, `get` by another (real processes).
fn one_file_bittrickle(bytes: u64, base: Baselines) -> Result<Row, Box<dyn std::error::Error>> {
    let work = tempfile::tempdir()?;
    std::fs::write(
        work.path().join("credentials.txt"),
        "hans falcon*solo\nyoda wise@!man\n",
    )?;
    let (up, down) = (work.path().join("up"), work.path().join("down"));
    std::fs::create_dir_all(&up)?;
    std::fs::create_dir_all(&down)?;
    random_file(&up.join("big.bin"), bytes >> 20, 9)?;
    let server = Session::start(&["bittrickle", "server", "0"], work.path())?;
    let banner = server.wait("Ready to receive on", 1, 10)?;
    let addr = word_after(&banner, "Ready to receive on ").ok_or("no banner")?;
    let port = addr.rsplit(':').next().ok_or("no port")?.to_string();
    let mut hans = Session::start(&["bittrickle", "client", &port], &up)?;
    hans.type_line("hans")?;
    hans.type_line("falcon*solo")?;
    hans.wait("Available commands", 1, 10)?;
    hans.type_line("pub big.bin")?;
    hans.wait("published successfully", 1, 10)?;
    let mut yoda = Session::start(&["bittrickle", "client", &port], &down)?;
    yoda.type_line("yoda")?;
    yoda.type_line("wise@!man")?;
    yoda.wait("Available commands", 1, 10)?;
    let took = yoda.timed("get big.bin", "downloaded successfully")?;
    one_file_row(
        "BitTrickle get",
        &up.join("big.bin"),
        &down.join("big.bin"),
        bytes,
        took,
        base,
        "≥ 0.90× rate",
    )
}

/// One file through FileApp: `offer` by one client, `request` by another (real processes).
fn one_file_fileapp(bytes: u64, base: Baselines) -> Result<Row, Box<dyn std::error::Error>> {
    let work = tempfile::tempdir()?;
    let (share, down) = (work.path().join("share"), work.path().join("down"));
    std::fs::create_dir_all(&share)?;
    std::fs::create_dir_all(&down)?;
    random_file(&share.join("big.bin"), bytes >> 20, 13)?;
    let server = Session::start(&["fileapp", "-s", "0"], work.path())?;
    let text = server.wait("listening on ", 1, 10)?;
    let port = word_after(&text, "listening on ")
        .and_then(|a| a.rsplit(':').next())
        .ok_or("no server port")?
        .to_string();
    let mut alice = Session::start(
        &["fileapp", "-c", "alice", "127.0.0.1", &port, "0", "0"],
        work.path(),
    )?;
    alice.wait("[Client table updated.]", 1, 10)?;
    alice.type_line("setdir share")?;
    alice.type_line("offer big.bin")?;
    alice.wait("[Offer Message received by Server.]", 1, 10)?;
    let mut bob = Session::start(
        &["fileapp", "-c", "bob", "127.0.0.1", &port, "0", "0"],
        &down,
    )?;
    bob.wait("[Client table updated.]", 1, 10)?;
    let took = bob.timed("request big.bin alice", "big.bin downloaded successfully!")?;
    one_file_row(
        "FileApp request",
        &share.join("big.bin"),
        &down.join("big.bin"),
        bytes,
        took,
        base,
        "≥ 0.90× rate",
    )
}

/// The port of the first `listening on 127.0.0.1:<port>` line in `text`.
fn listening_port(text: &str) -> Result<String, Box<dyn std::error::Error>> {
    Ok(word_after(text, "listening on ")
        .and_then(|a| a.rsplit(':').next())
        .ok_or("no listening line")?
        .to_string())
}

/// One file through Simple xFS: node 2 downloads from node 1, latency emulation off (0 ms).
fn one_file_xfs(bytes: u64, base: Baselines) -> Result<Row, Box<dyn std::error::Error>> {
    let work = tempfile::tempdir()?;
    let (d1, d2) = (work.path().join("d1"), work.path().join("d2"));
    std::fs::create_dir_all(&d1)?;
    std::fs::create_dir_all(&d2)?;
    random_file(&d1.join("big.bin"), bytes >> 20, 17)?;
    let tracker = Session::start(&["xfs", "tracker", "--port", "0"], work.path())?;
    let taddr = format!(
        "127.0.0.1:{}",
        listening_port(&tracker.wait("listening on ", 1, 10)?)?
    );
    let node1 = Session::start(
        &[
            "xfs",
            "node",
            "127.0.0.1",
            "0",
            "d1",
            "--tracker",
            &taddr,
            "--latency",
            "lat.txt",
        ],
        work.path(),
    )?;
    let p1 = listening_port(&node1.wait("listening on ", 1, 10)?)?;
    node1.wait("ACK", 1, 30)?;
    let mut node2 = Session::start(
        &[
            "xfs",
            "node",
            "127.0.0.1",
            "0",
            "d2",
            "--tracker",
            &taddr,
            "--latency",
            "lat.txt",
        ],
        work.path(),
    )?;
    let p2 = listening_port(&node2.wait("listening on ", 1, 10)?)?;
    node2.wait("ACK", 1, 30)?;
    std::fs::write(
        work.path().join("lat.txt"),
        format!("127.0.0.1 {p2} 127.0.0.1 {p1} 0\n"),
    )?;
    let took = node2.timed("download big.bin", "File downloaded successfully")?;
    one_file_row(
        "xFS download (MD5 checked)",
        &d1.join("big.bin"),
        &d2.join("big.bin"),
        bytes,
        took,
        base,
        "≥ 0.90× rate",
    )
}

/// One file through BitTorrent-Python: node 4 downloads from owners 1-3 (S/N split over UDP).
fn one_file_torrent(bytes: u64, base: Baselines) -> Result<Row, Box<dyn std::error::Error>> {
    let work = tempfile::tempdir()?;
    let src = work.path().join("big.bin");
    random_file(&src, bytes >> 20, 19)?;
    for id in 1..=4 {
        std::fs::create_dir_all(work.path().join(format!("node_files/node{id}")))?;
    }
    let tracker = Session::start(&["torrent", "tracker", "--port", "0"], work.path())?;
    let taddr = format!(
        "127.0.0.1:{}",
        listening_port(&tracker.wait("listening on ", 1, 10)?)?
    );
    let mut owners = Vec::new();
    for id in 1..=3 {
        std::fs::hard_link(
            &src,
            work.path().join(format!("node_files/node{id}/big.bin")),
        )?;
        let mut node = Session::start(
            &[
                "torrent",
                "node",
                "-node_id",
                &id.to_string(),
                "--tracker",
                &taddr,
            ],
            work.path(),
        )?;
        node.wait("ENTER YOUR COMMAND!", 1, 10)?;
        node.type_line("torrent -setMode send big.bin")?;
        node.wait("You are free now!", 1, 10)?;
        owners.push(node);
    }
    let mut leech = Session::start(
        &["torrent", "node", "-node_id", "4", "--tracker", &taddr],
        work.path(),
    )?;
    leech.wait("ENTER YOUR COMMAND!", 1, 10)?;
    let took = leech.timed(
        "torrent -setMode download big.bin",
        "has successfully downloaded",
    )?;
    one_file_row(
        "BitTorrent-Python download from 3 owners (UDP)",
        &src,
        &work.path().join("node_files/node4/big.bin"),
        bytes,
        took,
        base,
        "(UDP; no target)",
    )
}

/// MD5 over an in-memory buffer: the ceiling of any download that verifies MD5 (xFS).
fn md5_speed(bytes: u64, base: Baselines) -> Result<Row, Box<dyn std::error::Error>> {
    use md5::Digest;
    let block: Vec<u8> = (0..(16u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let rounds = (bytes / block.len() as u64).max(1);
    let start = Instant::now();
    let mut h = md5::Md5::new();
    for _ in 0..rounds {
        h.update(&block);
    }
    let _ = h.finalize();
    let r = rate(rounds * block.len() as u64, start.elapsed());
    Ok(Row {
        scenario: "MD5 of memory, one core (the xFS download ceiling)".into(),
        subject: format!("{r:.0} MiB/s"),
        baseline: format!("{:.0} MiB/s", base.limit),
        ratio: r / base.limit,
        copy_ratio: Some(r / base.copy),
        target: "(reference)".into(),
    })
}

/// BitTrickle server over UDP: driver threads keep a window of `lpf` requests in flight.
fn bittrickle_load(secs: f64) -> Result<Row, Box<dyn std::error::Error>> {
    let work = tempfile::tempdir()?;
    std::fs::write(work.path().join("credentials.txt"), "hans falcon*solo\n")?;
    let server = Session::start(&["bittrickle", "server", "0"], work.path())?;
    let banner = server.wait("Ready to receive on", 1, 10)?;
    let addr: std::net::SocketAddr = word_after(&banner, "Ready to receive on ")
        .ok_or("no banner")?
        .parse()?;
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut handles = Vec::new();
    for _ in 0..4 {
        handles.push(std::thread::spawn(move || -> io::Result<(u64, u64)> {
            let sock = std::net::UdpSocket::bind("127.0.0.1:0")?;
            sock.set_read_timeout(Some(Duration::from_millis(500)))?;
            let mut buf = [0u8; 2048];
            let (mut answered, mut lost) = (0u64, 0u64);
            while Instant::now() < deadline {
                for _ in 0..16 {
                    sock.send_to(b"lpf hans", addr)?;
                }
                for _ in 0..16 {
                    match sock.recv_from(&mut buf) {
                        Ok(_) => answered += 1,
                        Err(_) => lost += 1,
                    }
                }
            }
            Ok((answered, lost))
        }));
    }
    let (mut answered, mut lost) = (0, 0);
    for h in handles {
        let (a, l) = h.join().map_err(|_| "driver panicked")??;
        answered += a;
        lost += l;
    }
    let rps = answered as f64 / secs;
    Ok(Row {
        scenario: "BitTrickle server, UDP `lpf` requests, 4 senders × 16 in flight".into(),
        subject: format!("{rps:.0} req/s ({lost} unanswered)"),
        baseline: "100,000 req/s".into(),
        ratio: rps / 100_000.0,
        copy_ratio: None,
        target: "≥ 1.0".into(),
    })
}

/// Runs `run` `n` times; the row of the median ratio, and the (min, max) ratios.
fn repeated(
    n: usize,
    run: &dyn Fn() -> Result<Row, Box<dyn std::error::Error>>,
) -> Result<(Row, f64, f64), Box<dyn std::error::Error>> {
    let mut rows = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        rows.push(run()?);
    }
    rows.sort_by(|a, b| a.ratio.total_cmp(&b.ratio));
    let (min, max) = (rows[0].ratio, rows[rows.len() - 1].ratio);
    let median = rows.swap_remove(rows.len() / 2);
    Ok((median, min, max))
}

/// Sizes of one bench run: full, or a few MiB and one run each (`PEERSHARE_BENCH_SMOKE`).
struct Plan {
    smoke: bool,
    runs: usize,
    one_file: u64,
    load_secs: f64,
}

fn curves(
    plan: &Plan,
    base: Baselines,
    only: &str,
) -> Result<Vec<chart::Curve>, Box<dyn std::error::Error>> {
    let mut out = Vec::new();
    let pick = |full: Vec<usize>, smoke: Vec<usize>| if plan.smoke { smoke } else { full };
    if "curve-clients".contains(only) {
        let (chunks, size) = if plan.smoke {
            (8, 64 << 10)
        } else {
            (64, 1 << 20)
        };
        let mut took = Vec::new();
        let mut ideal = Vec::new();
        for peers in pick(vec![2, 4, 8, 16, 32], vec![2, 4]) {
            let (t, bytes) = swarm_time(peers, chunks, size)?;
            println!("curve: swarm of {peers} clients, {chunks} chunks: {t:.3} s");
            took.push((peers as f64, t));
            ideal.push((peers as f64, mib(bytes) / base.limit));
        }
        out.push(chart::Curve {
            name: "swarm_vs_clients".into(),
            title: format!(
                "P2PTracker++ swarm completion, {chunks} × {} KiB",
                size >> 10
            ),
            x_label: "clients".into(),
            y_label: "seconds".into(),
            series: vec![
                ("peershare".into(), took),
                ("ideal at the limit".into(), ideal),
            ],
        });
    }
    if "curve-chunks".contains(only) {
        let size: u64 = 64 << 10;
        let mut took = Vec::new();
        let mut ideal = Vec::new();
        for chunks in pick(vec![16, 64, 256, 1024, 4096], vec![8, 16]) {
            let (t, bytes) = swarm_time(4, chunks as u64, size)?;
            println!("curve: swarm of 4 clients, {chunks} chunks: {t:.3} s");
            took.push((chunks as f64, t));
            ideal.push((chunks as f64, mib(bytes) / base.limit));
        }
        out.push(chart::Curve {
            name: "swarm_vs_chunks".into(),
            title: "P2PTracker++ swarm completion, 4 clients, 64 KiB chunks".into(),
            x_label: "chunks".into(),
            y_label: "seconds".into(),
            series: vec![
                ("peershare".into(), took),
                ("ideal at the limit".into(), ideal),
            ],
        });
    }
    if "curve-conns".contains(only) {
        let (mut rps, mut p99) = (Vec::new(), Vec::new());
        for conns in pick(vec![100, 1_000, 10_000], vec![50, 100]) {
            let l = tracker_load(conns, plan.load_secs)?;
            println!(
                "curve: tracker, {conns} connections: {:.0} req/s, p99 {:.2} ms",
                l.rps, l.p99_ms
            );
            rps.push((conns as f64, l.rps / 1000.0));
            p99.push((conns as f64, l.p99_ms));
        }
        out.push(chart::Curve {
            name: "tracker_rate_vs_connections".into(),
            title: "P2PTracker++ tracker: WHERE_CHUNK thousand requests/s".into(),
            x_label: "connections held".into(),
            y_label: "k req/s".into(),
            series: vec![("requests/s (thousands)".into(), rps)],
        });
        out.push(chart::Curve {
            name: "tracker_p99_vs_connections".into(),
            title: "P2PTracker++ tracker: WHERE_CHUNK p99 latency".into(),
            x_label: "connections held".into(),
            y_label: "ms".into(),
            series: vec![("p99".into(), p99)],
        });
    }
    if "curve-mem".contains(only) {
        let mut mem = Vec::new();
        for entries in pick(vec![10_000, 100_000, 1_000_000], vec![1_000, 10_000]) {
            let (_, _, after) = tracker_memory(entries as u32)?;
            println!(
                "curve: tracker holding {entries} entries: RSS {} MiB",
                after / 1024
            );
            mem.push((entries as f64, after as f64 / 1024.0));
        }
        out.push(chart::Curve {
            name: "tracker_memory_vs_entries".into(),
            title: "P2PTracker++ tracker RSS vs chunk-holder entries".into(),
            x_label: "entries".into(),
            y_label: "MiB".into(),
            series: vec![("RSS".into(), mem)],
        });
    }
    Ok(out)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; this harness takes no options.
    let smoke = std::env::var_os("PEERSHARE_BENCH_SMOKE").is_some();
    let plan = Plan {
        smoke,
        runs: if smoke { 1 } else { 3 },
        one_file: std::env::var("PEERSHARE_BENCH_MIB")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if smoke { 4 } else { 1024 })
            << 20,
        load_secs: if smoke { 0.5 } else { 5.0 },
    };
    let work = tempfile::tempdir()?;
    let (base, limit_label) = baselines(work.path(), if smoke { 4 << 20 } else { 512 << 20 }, 3)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "machine: {cores} cores; limit: {limit_label}, best of 3: {:.0} MiB/s; \
         std::io::copy baseline, best of 3: {:.0} MiB/s; each row: median of {} run(s) (min–max)\n",
        base.limit, base.copy, plan.runs
    );
    // PEERSHARE_BENCH_ONLY=<word> runs only the scenarios whose key contains it (for profiling).
    let only = std::env::var("PEERSHARE_BENCH_ONLY").unwrap_or_default();
    let (c004, s004) = if smoke { (8, 256 << 10) } else { (64, 1 << 20) };
    let (c8, s8) = if smoke {
        (16, 256 << 10)
    } else {
        (256, 1 << 20)
    };
    let conns = if smoke {
        vec![100]
    } else {
        vec![1_000, 10_000]
    };
    let (one, load_secs) = (plan.one_file, plan.load_secs);
    type Scenario<'a> = Box<dyn Fn() -> Result<Row, Box<dyn std::error::Error>> + 'a>;
    let mut scenarios: Vec<(&str, Scenario)> = vec![
        (
            "swarm4",
            Box::new(|| {
                swarm_row(
                    &format!(
                        "P2PTracker++ swarm: 4 clients, {c004} × {} KiB chunks",
                        s004 >> 10
                    ),
                    4,
                    c004,
                    s004,
                    base,
                )
            }),
        ),
        (
            "swarm8",
            Box::new(|| {
                swarm_row(
                    &format!(
                        "P2PTracker++ swarm: 8 clients, {c8} × {} KiB chunks",
                        s8 >> 10
                    ),
                    8,
                    c8,
                    s8,
                    base,
                )
            }),
        ),
        (
            "one-p2ptracker",
            Box::new(|| one_file_p2ptracker(one, base)),
        ),
        ("one-fileapp", Box::new(|| one_file_fileapp(one, base))),
        (
            "one-bittrickle",
            Box::new(|| one_file_bittrickle(one, base)),
        ),
        ("one-xfs", Box::new(|| one_file_xfs(one, base))),
        ("md5", Box::new(|| md5_speed(one, base))),
        ("one-torrent", Box::new(|| one_file_torrent(one, base))),
    ];
    for c in conns {
        scenarios.push((
            "load-tracker",
            Box::new(move || tracker_load_row(c, load_secs)),
        ));
    }
    scenarios.push(("load-bittrickle", Box::new(|| bittrickle_load(load_secs))));
    scenarios.push((
        "mem-tracker",
        Box::new(|| tracker_memory_row(if smoke { 10_000 } else { 1_000_000 })),
    ));
    scenarios.push(("mem-client", Box::new(idle_client_memory)));
    let mut rows = Vec::new();
    for (key, run) in &scenarios {
        if key.contains(only.as_str()) {
            rows.push(repeated(plan.runs, run.as_ref())?);
        }
    }
    println!("| scenario | peershare (median run) | baseline (same run) | ratio, median (min–max) | vs io::copy | target |");
    println!("|---|---|---|---|---|---|");
    for (r, min, max) in &rows {
        let copy = r.copy_ratio.map_or("".into(), |c| format!("{c:.2}"));
        println!(
            "| {} | {} | {} | {:.2} ({min:.2}–{max:.2}) | {copy} | {} |",
            r.scenario, r.subject, r.baseline, r.ratio, r.target
        );
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let csv_dir = target_dir.join("bench");
    let svg_dir = std::env::var_os("PEERSHARE_BENCH_CHARTS").map(std::path::PathBuf::from);
    for curve in curves(&plan, base, &only)? {
        curve.write(&csv_dir, svg_dir.as_deref())?;
    }
    println!("\ncurves: CSV in {}", csv_dir.display());
    Ok(())
}
