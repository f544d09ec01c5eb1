//! BitTorrent speed, baseline and subject in one run: the same file moved on loopback by
//! - aria2c seeder → aria2c (the baseline every ratio is against),
//! - `peershare bt seed` → aria2c,
//! - `peershare bt seed` → `peershare bt get`,
//!
//! each timed from the downloader's start to its exit, min/median/max over the runs, every
//! download compared byte for byte with the source (both clients also check every piece's
//! SHA-1). 1 GiB and 3 runs by default; `PEERSHARE_BENCH_SMOKE=1` uses 8 MiB and one run,
//! `PEERSHARE_BENCH_MIB` and `PEERSHARE_BENCH_RUNS` override. Then the UDP announce rate of
//! `peershare bt tracker` against `opentracker`, one load generator, same run.

use peershare::demo::random_file;
use std::io::{BufRead, BufReader, Read};
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_peershare");

/// A child killed by PID and reaped when dropped.
struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(cmd: &mut Command) -> Kid {
    Kid(cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}")))
}

/// Reads the child's stdout until a line starts with `prefix`.
fn line_starting(kid: &mut Kid, prefix: &str) -> String {
    let out = kid.0.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(out).lines();
    let line = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?}"));
    // Keep draining so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    line
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

fn aria2(dir: &Path, out: &str, torrent: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new("aria2c");
    cmd.current_dir(dir)
        .args([
            "--enable-dht=false",
            "--enable-dht6=false",
            "--bt-enable-lpd=false",
        ])
        .args([
            "--enable-peer-exchange=false",
            "--console-log-level=warn",
            "--summary-interval=0",
        ])
        .arg(format!("--listen-port={}", free_port()))
        .arg(format!("--dir={out}"))
        .args(extra)
        .arg(torrent);
    cmd
}

fn same_file(a: &Path, b: &Path) -> bool {
    let (Ok(fa), Ok(fb)) = (std::fs::File::open(a), std::fs::File::open(b)) else {
        return false;
    };
    let (mut ra, mut rb) = (
        BufReader::with_capacity(1 << 20, fa),
        BufReader::with_capacity(1 << 20, fb),
    );
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = ra.read(&mut x).unwrap_or(0);
        let mut m = 0;
        while m < n {
            match rb.read(&mut y[m..n]) {
                Ok(0) | Err(_) => return false,
                Ok(k) => m += k,
            }
        }
        if n == 0 {
            return rb.read(&mut y).is_ok_and(|k| k == 0);
        }
        if x[..n] != y[..n] {
            return false;
        }
    }
}

/// Runs `download` (which must exit 0) `runs` times into fresh folders; MiB/s per run.
fn time_runs(
    dir: &Path,
    src: &Path,
    name: &str,
    runs: usize,
    bytes: u64,
    mut download: impl FnMut(&str) -> Command,
) -> Vec<f64> {
    let mut rates = Vec::new();
    for run in 0..runs {
        let out = format!("dl-{}-{run}", rates.len() + run * 100 + name.len());
        let _ = std::fs::remove_dir_all(dir.join(&out));
        let start = Instant::now();
        let status = download(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let secs = start.elapsed().as_secs_f64();
        assert!(
            status.is_ok_and(|s| s.success()),
            "{name}: the download failed"
        );
        let got = dir.join(&out).join(src.file_name().unwrap_or_default());
        assert!(
            same_file(src, &got),
            "{name}: the download differs from the source"
        );
        let _ = std::fs::remove_dir_all(dir.join(&out));
        rates.push(bytes as f64 / 1048576.0 / secs);
    }
    rates.sort_by(f64::total_cmp);
    rates
}

fn summary(rates: &[f64]) -> (f64, f64, f64) {
    (rates[0], rates[rates.len() / 2], rates[rates.len() - 1])
}

/// UDP announces per second one blocking client gets from the tracker at `addr` in `secs`.
fn announce_rate(addr: &str, secs: f64) -> f64 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(1)))
        .expect("timeout");
    let mut buf = [0u8; 2048];
    let mut connect = 0x41727101980u64.to_be_bytes().to_vec();
    connect.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
    let _ = s.send(&connect);
    let Ok(n) = s.recv(&mut buf) else { return 0.0 };
    if n < 16 {
        return 0.0;
    }
    let conn = buf[8..16].to_vec();
    let start = Instant::now();
    let mut count = 0u64;
    let mut i = 0u32;
    while start.elapsed().as_secs_f64() < secs {
        i = i.wrapping_add(1);
        let mut a = conn.clone();
        a.extend_from_slice(&1u32.to_be_bytes());
        a.extend_from_slice(&i.to_be_bytes());
        let mut hash = [0u8; 20];
        hash[..4].copy_from_slice(&(i % 1000).to_be_bytes());
        a.extend_from_slice(&hash);
        let mut peer = *b"-ZZ0000-000000000000";
        peer[8..12].copy_from_slice(&i.to_be_bytes());
        a.extend_from_slice(&peer);
        a.extend_from_slice(&[0; 8]);
        a.extend_from_slice(&1000u64.to_be_bytes());
        a.extend_from_slice(&[0; 8]);
        a.extend_from_slice(&[0; 12]);
        a.extend_from_slice(&50i32.to_be_bytes());
        a.extend_from_slice(&((i % 60000) as u16 + 1024).to_be_bytes());
        let _ = s.send(&a);
        match s.recv(&mut buf) {
            // opentracker answers some announces with just the 8-byte header.
            Ok(n) if n >= 8 && buf[3] == 1 && buf[4..8] == i.to_be_bytes() => count += 1,
            _ => {}
        }
    }
    count as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let smoke = std::env::var_os("PEERSHARE_BENCH_SMOKE").is_some();
    let env_num = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let size_mib = env_num("PEERSHARE_BENCH_MIB").unwrap_or(if smoke { 8 } else { 1024 });
    let runs = env_num("PEERSHARE_BENCH_RUNS").unwrap_or(if smoke { 1 } else { 3 }) as usize;
    for (bin, package) in [("aria2c", "aria2")] {
        if Command::new(bin)
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            panic!("{bin} is missing: install the Debian package {package}");
        }
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let src = dir.join("bench.bin");
    random_file(&src, size_mib, 42).expect("random file");
    let bytes = size_mib << 20;

    let mut tracker = spawn(Command::new(BIN).current_dir(dir).args([
        "bt",
        "tracker",
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--udp-port",
        "0",
        "--interval",
        "1",
    ]));
    let line = line_starting(&mut tracker, "tracker: ");
    let mut words = line.split(' ').skip(1);
    let http = words.next().unwrap_or_default().to_string();
    let udp = words
        .next()
        .unwrap_or_default()
        .trim_start_matches("udp://")
        .to_string();
    let status = Command::new(BIN)
        .current_dir(dir)
        .args([
            "bt",
            "make",
            "bench.bin",
            "--announce",
            &http,
            "-o",
            "bench.torrent",
        ])
        .stdout(Stdio::null())
        .status();
    assert!(status.is_ok_and(|s| s.success()), "bt make failed");

    // aria2c → aria2c: the seeder checks its data (-V) before the first timed run.
    let seed_dir = dir.join("aria2-seed");
    std::fs::create_dir_all(&seed_dir).expect("seed dir");
    std::fs::hard_link(&src, seed_dir.join("bench.bin")).expect("link");
    let aria_seed = spawn(&mut aria2(
        dir,
        "aria2-seed",
        "bench.torrent",
        &["-V", "--seed-ratio=0.0"],
    ));
    std::thread::sleep(Duration::from_secs(if smoke { 2 } else { 8 }));
    let base = time_runs(dir, &src, "aria2c → aria2c", runs, bytes, |out| {
        aria2(dir, out, "bench.torrent", &["--seed-time=0"])
    });
    drop(aria_seed);

    let mut ps_seed = spawn(Command::new(BIN).current_dir(dir).args([
        "bt",
        "seed",
        "bench.torrent",
        "bench.bin",
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
    ]));
    line_starting(&mut ps_seed, "seeding");
    // The tracker forgets the aria2c seeder after three silent intervals.
    std::thread::sleep(Duration::from_secs(4));
    let ps_aria = time_runs(dir, &src, "peershare → aria2c", runs, bytes, |out| {
        aria2(dir, out, "bench.torrent", &["--seed-time=0"])
    });
    let ps_ps = time_runs(dir, &src, "peershare → peershare", runs, bytes, |out| {
        let mut c = Command::new(BIN);
        c.current_dir(dir).args([
            "bt",
            "get",
            "bench.torrent",
            "-o",
            out,
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
        ]);
        c
    });
    drop(ps_seed);

    let (_, base_median, _) = summary(&base);
    println!("\nBitTorrent, {size_mib} MiB, {runs} run(s), MiB/s from the downloader's start to its exit:\n");
    println!("| transfer | min | median | max | median / aria2c→aria2c |");
    println!("|---|---|---|---|---|");
    for (name, rates) in [
        ("aria2c seed → aria2c (baseline)", &base),
        ("peershare seed → aria2c", &ps_aria),
        ("peershare seed → peershare get", &ps_ps),
    ] {
        let (lo, mid, hi) = summary(rates);
        println!(
            "| {name} | {lo:.1} | {mid:.1} | {hi:.1} | {:.2} |",
            mid / base_median
        );
    }

    // UDP announce rate: peershare's tracker against opentracker, one blocking client each.
    let secs = if smoke { 0.5 } else { 5.0 };
    let ours = announce_rate(&udp, secs);
    drop(tracker);
    let ot_port = free_port();
    let theirs = if Command::new("opentracker")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
    {
        let _ot = spawn(Command::new("opentracker").current_dir(dir).args([
            "-d",
            &dir.to_string_lossy(),
            "-i",
            "127.0.0.1",
            "-p",
            &ot_port.to_string(),
            "-P",
            &ot_port.to_string(),
        ]));
        std::thread::sleep(Duration::from_millis(500));
        Some(announce_rate(&format!("127.0.0.1:{ot_port}"), secs))
    } else {
        None
    };
    println!("\nUDP announces per second, one blocking client, {secs} s:\n");
    println!("| tracker | announces/s | ratio to opentracker |");
    println!("|---|---|---|");
    match theirs {
        Some(t) => {
            println!("| opentracker | {t:.0} | 1.00 |");
            println!("| peershare bt tracker | {ours:.0} | {:.2} |", ours / t.max(1e-9));
        }
        None => println!("| peershare bt tracker | {ours:.0} | (opentracker missing: Debian package opentracker) |"),
    }
}
