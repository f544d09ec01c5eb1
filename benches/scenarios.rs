//! Scenario benchmarks: each row runs a peershare scenario and, in the same process, a baseline
//! that moves the same bytes with a plain `std::io::copy` over a loopback TCP socket into a file
//! (the physical limit of this machine for that job), and prints their ratio as a Markdown table.
//! Every download is verified (SHA-256 of every chunk) — a fast wrong answer does not count.
//!
//! `cargo bench --bench scenarios` runs the full sizes; `PEERSHARE_BENCH_SMOKE=1` shrinks every
//! scenario to a few MiB so CI can run it in seconds; `PEERSHARE_BENCH_MIB` sets the one-file size.

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
    target: String,
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

/// Best of `n` baseline runs over a `bytes`-sized file (the limit is the fastest run).
fn baseline_rate(work: &Path, bytes: u64, n: usize) -> io::Result<f64> {
    let src = work.join("baseline.src");
    let mib_count = bytes.div_ceil(1 << 20).max(1);
    random_file(&src, mib_count, 7)?;
    let dest = work.join("baseline.dst");
    let mut best = f64::MIN;
    for _ in 0..n {
        let d = baseline_copy(&src, &dest)?;
        best = best.max(rate(mib_count << 20, d));
    }
    std::fs::remove_file(&src)?;
    std::fs::remove_file(&dest)?;
    Ok(best)
}

/// P2PTracker++ swarm: `peers` clients, `chunks` × `chunk_mib` MiB, random overlapping holdings,
/// pacing off, until every client has every chunk; compared with the ideal time to move the
/// bytes that must move at the baseline rate.
fn swarm_row(
    label: &str,
    peers: usize,
    chunks: u64,
    chunk_bytes: u64,
    base: f64,
) -> Result<Row, Box<dyn std::error::Error>> {
    let work = tempfile::tempdir()?;
    let src = work.path().join("fileset.bin");
    let total_mib = (chunks * chunk_bytes).div_ceil(1 << 20);
    random_file(&src, total_mib, 42)?;
    let swarm = Swarm::build(work.path(), &[src], chunk_bytes, peers, 11)?;
    let report = swarm.run()?;
    let ideal = mib(swarm.bytes_needed) / base;
    let took = report.elapsed.as_secs_f64();
    Ok(Row {
        scenario: label.into(),
        subject: format!(
            "{:.3} s ({:.0} MiB moved, {:.0} MiB/s)",
            took,
            mib(swarm.bytes_needed),
            mib(swarm.bytes_needed) / took
        ),
        baseline: format!("{ideal:.3} s ideal at {base:.0} MiB/s"),
        ratio: took / ideal,
        target: "≤ 2.0× time".into(),
    })
}

/// One file from one peer to another through P2PTracker++ chunks (1 MiB each): a client holding
/// everything, a client holding nothing.
fn one_file_p2ptracker(bytes: u64, base: f64) -> Result<Row, Box<dyn std::error::Error>> {
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
        scenario: format!(
            "one file, {} MiB, peer to peer: P2PTracker++ chunks",
            bytes >> 20
        ),
        subject: format!("{r:.0} MiB/s"),
        baseline: format!("{base:.0} MiB/s"),
        ratio: r / base,
        target: "≥ 0.90× rate".into(),
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; this harness takes no options.
    let smoke = std::env::var_os("PEERSHARE_BENCH_SMOKE").is_some();
    let one_mib: u64 = std::env::var("PEERSHARE_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 4 } else { 1024 });
    let work = tempfile::tempdir()?;
    let base = baseline_rate(work.path(), if smoke { 4 << 20 } else { 512 << 20 }, 3)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("machine: {cores} cores; baseline: std::io::copy over loopback TCP into a file, best of 3: {base:.0} MiB/s\n");
    let mut rows = Vec::new();
    let (c004, s004) = if smoke { (8, 256 << 10) } else { (64, 1 << 20) };
    rows.push(swarm_row(
        &format!(
            "P2PTracker++ swarm: 4 clients, {c004} × {} KiB chunks",
            s004 >> 10
        ),
        4,
        c004,
        s004,
        base,
    )?);
    let (c8, s8) = if smoke {
        (16, 256 << 10)
    } else {
        (256, 1 << 20)
    };
    rows.push(swarm_row(
        &format!(
            "P2PTracker++ swarm: 8 clients, {c8} × {} KiB chunks",
            s8 >> 10
        ),
        8,
        c8,
        s8,
        base,
    )?);
    rows.push(one_file_p2ptracker(one_mib << 20, base)?);
    println!("| scenario | peershare | baseline (same run) | ratio | target |");
    println!("|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {:.2} | {} |",
            r.scenario, r.subject, r.baseline, r.ratio, r.target
        );
    }
    Ok(())
}
