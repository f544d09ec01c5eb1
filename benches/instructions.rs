//! Instructions per request, counted by `valgrind --tool=callgrind`: a figure that stays the same
//! run after run on a noisy shared machine, where times do not.
//!
//! For each operation the bench runs itself twice under callgrind, once doing the operation `n`
//! times and once `3n` times, and reports `(I(3n) - I(n)) / 2n`: start-up and set-up cancel out.
//! Operations: the P2PTracker++ tracker answering `WHERE_CHUNK` over a real loopback connection
//! (its user-space cost: parse, index look-up, reply; with `logs.log` off, then on), and the wire
//! codecs.
//!
//! `cargo bench --bench instructions`; `PEERSHARE_BENCH_SMOKE=1` uses a small `n`. Without
//! valgrind it says so in one line and exits 0.

use peershare::core::shutdown::Shutdown;
use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;

/// The operations measured, by key.
const OPS: &[(&str, &str)] = &[
    (
        "tracker-where-chunk",
        "P2PTracker++ tracker: one WHERE_CHUNK answered (loopback TCP)",
    ),
    (
        "tracker-logged-where-chunk",
        "P2PTracker++ tracker: the same, writing its three logs.log lines",
    ),
    (
        "p2ptracker-parse",
        "P2PTracker++ wire: parse one LOCAL_CHUNKS segment",
    ),
    ("pyjson-table", "core::pyjson: parse a 20-row FileApp table"),
    (
        "torrent-parse",
        "BitTorrent-Python wire: decode one pickled Tracker2Node reply (3 owners)",
    ),
];

fn run_op(op: &str, n: u64) -> Result<(), Box<dyn std::error::Error>> {
    match op {
        "tracker-where-chunk" => tracker_where_chunk(n, false),
        "tracker-logged-where-chunk" => tracker_where_chunk(n, true),
        "p2ptracker-parse" => {
            for _ in 0..n {
                black_box(peershare::p2ptracker::wire::parse_request(black_box(
                    b"LOCAL_CHUNKS,17,localhost,7001",
                )))
                .map_err(|e| format!("{e:?}"))?;
            }
            Ok(())
        }
        "pyjson-table" => {
            let mut table = String::from("{");
            for i in 0..20 {
                if i > 0 {
                    table.push_str(", ");
                }
                table.push_str(&format!(
                    "\"file{i}.txt,client{i}\": [\"127.0.0.1\", {}]",
                    7000 + i
                ));
            }
            table.push('}');
            for _ in 0..n {
                black_box(peershare::core::pyjson::parse(
                    black_box(table.as_bytes()),
                    32,
                ))?;
            }
            Ok(())
        }
        "torrent-parse" => {
            use peershare::torrent::wire::{self, Message, Owner};
            let owners = (1..=3)
                .map(|i| Owner {
                    node_id: i,
                    ip: "127.0.0.1".into(),
                    port: 50_000 + i,
                    send_freq: i,
                })
                .collect();
            let bytes = wire::encode(&Message::Tracker2Node {
                dest_node_id: 4,
                search_result: owners,
                filename: "big.bin".into(),
            });
            for _ in 0..n {
                black_box(wire::parse(black_box(&bytes)))?;
            }
            Ok(())
        }
        other => Err(format!("unknown operation {other}").into()),
    }
}

/// A tracker in this process, one client: 100 chunks announced by 4 holders, then `n` questions,
/// each answered before the next is asked.
fn tracker_where_chunk(n: u64, logged: bool) -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let shutdown = Shutdown::new();
    let dir = tempfile::tempdir()?;
    let mut config = peershare::p2ptracker::tracker::TrackerConfig::default();
    if logged {
        config.log = peershare::core::event_log::EventLog::open(&dir.path().join("logs.log"))?;
    }
    let tracker = peershare::p2ptracker::tracker::start(config, listener, &shutdown)?;
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let mut announce = String::new();
    for idx in 1..=100 {
        for port in 7001..=7004 {
            announce.push_str(&format!("LOCAL_CHUNKS,{idx},localhost,{port}\n"));
        }
    }
    s.write_all(announce.as_bytes())?;
    let mut buf = [0u8; 1024];
    for i in 0..=n {
        let idx = i % 100 + 1;
        s.write_all(format!("WHERE_CHUNK,{idx}").as_bytes())?;
        if s.read(&mut buf)? == 0 {
            return Err("the tracker closed the connection".into());
        }
    }
    drop(s);
    shutdown.trigger();
    drop(tracker);
    Ok(())
}

/// Instructions callgrind counted for `op` done `n` times in a child of this bench.
fn collected(op: &str, n: u64) -> Result<u64, Box<dyn std::error::Error>> {
    let out_file = tempfile::NamedTempFile::new()?;
    let out = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!(
            "--callgrind-out-file={}",
            out_file.path().display()
        ))
        .arg(std::env::current_exe()?)
        .env("PEERSHARE_INSTR_CHILD", format!("{op}:{n}"))
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("callgrind run of {op} failed:\n{err}").into());
    }
    err.lines()
        .find_map(|l| l.split("Collected :").nth(1))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no 'Collected' line from callgrind:\n{err}").into())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Ok(spec) = std::env::var("PEERSHARE_INSTR_CHILD") {
        let (op, n) = spec.split_once(':').ok_or("bad child spec")?;
        return run_op(op, n.parse()?);
    }
    if Command::new("valgrind").arg("--version").output().is_err() {
        println!("instructions: valgrind not found (apt-get install valgrind); skipped");
        return Ok(());
    }
    let smoke = std::env::var_os("PEERSHARE_BENCH_SMOKE").is_some();
    let only = std::env::var("PEERSHARE_BENCH_ONLY").unwrap_or_default();
    println!("| operation | instructions per operation (callgrind) |");
    println!("|---|---|");
    for (key, label) in OPS {
        if !key.contains(only.as_str()) {
            continue;
        }
        let tracker = key.starts_with("tracker-");
        let n: u64 = match (tracker, smoke) {
            (true, true) => 200,
            (true, false) => 2_000,
            (_, true) => 2_000,
            (_, false) => 50_000,
        };
        let one = collected(key, n)?;
        let three = collected(key, 3 * n)?;
        let per = three.saturating_sub(one) as f64 / (2 * n) as f64;
        println!("| {label} | {per:.0} |");
    }
    Ok(())
}
