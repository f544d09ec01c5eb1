//! Command line of `peershare bt make|show|tracker|seed|get`.

use super::client::{self, EngineConfig};
use super::metainfo::{self, Metainfo};
use super::storage::Storage;
use super::tracker::{self, TrackerConfig};
use crate::core::digest::to_hex;
use crate::core::pool::WorkerPool;
use crate::core::progress;
use crate::core::runtime::Runtime;
use crate::core::shutdown::Shutdown;
use crate::core::trace;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    role: Role,
}

#[derive(clap::Subcommand, Debug)]
enum Role {
    /// Make a .torrent (BEP 3 metainfo) for a file or a folder.
    Make(MakeArgs),
    /// Show a .torrent's name, size, files, piece count and info-hash.
    Show(ShowArgs),
    /// An HTTP (BEP 3/23) and UDP (BEP 15) tracker.
    Tracker(TrackerArgs),
    /// Seed complete data (the file, or the folder holding the torrent's files).
    Seed(SeedArgs),
    /// Download a torrent into a folder (resumes what is already there).
    Get(GetArgs),
}

#[derive(clap::Args, Debug)]
struct PeerArgs {
    /// Peer port to listen on (0 = any free port).
    #[arg(long, default_value_t = 6881)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    bind: std::net::IpAddr,
    /// Tracker URL to use instead of the torrent's.
    #[arg(long)]
    tracker: Option<String>,
    /// Write one JSON line per message (handshakes, peer-wire messages, announces) to this file.
    #[arg(long)]
    trace: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct SeedArgs {
    torrent: PathBuf,
    /// The data: the file itself, or the folder named like the torrent.
    data: PathBuf,
    #[command(flatten)]
    peer: PeerArgs,
}

#[derive(clap::Args, Debug)]
struct GetArgs {
    torrent: PathBuf,
    /// Folder to download into.
    #[arg(short = 'o', long = "output", default_value = ".")]
    output: PathBuf,
    /// Keep seeding after the download completes (until Ctrl-C).
    #[arg(long)]
    seed: bool,
    #[command(flatten)]
    peer: PeerArgs,
}

#[derive(clap::Args, Debug)]
struct TrackerArgs {
    /// HTTP port (0 = any free port).
    #[arg(long, default_value_t = 6969)]
    port: u16,
    /// UDP port (0 = any free port).
    #[arg(long = "udp-port", default_value_t = 6969)]
    udp_port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    bind: std::net::IpAddr,
    /// Seconds between a client's announces (`interval`), 1 ..= 86400; silent peers leave
    /// after three intervals.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    interval: u64,
    /// Write one JSON line per announce and reply to this file.
    #[arg(long)]
    trace: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct MakeArgs {
    /// The file or folder to share.
    source: PathBuf,
    /// Tracker URL (http://host:port/announce or udp://host:port).
    #[arg(long)]
    announce: String,
    /// Bytes per piece: a power of two, 16384 ..= 67108864 (default: about 1,500 pieces).
    #[arg(long = "piece-length", value_parser = parse_piece_length)]
    piece_length: Option<u64>,
    /// Where to write the .torrent (default: <name>.torrent here).
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct ShowArgs {
    torrent: PathBuf,
}

fn parse_piece_length(s: &str) -> Result<u64, String> {
    let n: u64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if n.is_power_of_two() && (metainfo::MIN_PIECE_LENGTH..=metainfo::MAX_PIECE_LENGTH).contains(&n)
    {
        Ok(n)
    } else {
        Err(format!(
            "must be a power of two in {}..={}",
            metainfo::MIN_PIECE_LENGTH,
            metainfo::MAX_PIECE_LENGTH
        ))
    }
}

pub fn run(args: Args) -> ExitCode {
    match args.role {
        Role::Make(a) => run_make(a),
        Role::Show(a) => run_show(a),
        Role::Tracker(a) => run_tracker(a),
        Role::Seed(a) => run_peer(a.torrent, Some(a.data), PathBuf::new(), true, a.peer),
        Role::Get(a) => run_peer(a.torrent, None, a.output, a.seed, a.peer),
    }
}

fn fail(what: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {what}");
    ExitCode::from(1)
}

fn run_make(a: MakeArgs) -> ExitCode {
    let total = match total_size(&a.source) {
        Ok(n) => n,
        Err(e) => return fail(format_args!("cannot read {}: {e}", a.source.display())),
    };
    let piece_length = a
        .piece_length
        .unwrap_or_else(|| metainfo::default_piece_length(total));
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let rt = Runtime::new("bt", "bt-make", &Shutdown::new());
    let pool = match WorkerPool::new(&rt, "hash", workers) {
        Ok(p) => p,
        Err(e) => return fail(format_args!("cannot start the hashing pool: {e}")),
    };
    let bar = progress::bytes(Some(total), "hashing");
    let made = metainfo::make(&a.source, &a.announce, piece_length, &pool, &|n| {
        bar.set_position(n)
    });
    bar.finish_and_clear();
    let bytes = match made {
        Ok(b) => b,
        Err(e) => {
            return fail(format_args!(
                "cannot make a torrent of {}: {e}",
                a.source.display()
            ))
        }
    };
    let m = match metainfo::parse(&bytes) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    let out = a
        .output
        .unwrap_or_else(|| PathBuf::from(format!("{}.torrent", m.name)));
    if let Err(e) = std::fs::write(&out, &bytes) {
        return fail(format_args!("cannot write {}: {e}", out.display()));
    }
    println!(
        "made {} ({} pieces of {} bytes), info-hash {}",
        out.display(),
        m.piece_count(),
        m.piece_length,
        to_hex(&m.info_hash)
    );
    ExitCode::SUCCESS
}

fn total_size(p: &std::path::Path) -> std::io::Result<u64> {
    let meta = std::fs::metadata(p)?;
    if meta.is_file() {
        return Ok(meta.len());
    }
    let mut total = 0;
    for e in std::fs::read_dir(p)? {
        let e = e?;
        let ty = e.file_type()?;
        if ty.is_dir() {
            total += total_size(&e.path())?;
        } else if ty.is_file() {
            total += e.metadata()?.len();
        }
    }
    Ok(total)
}

/// `show`'s lines: what `transmission-show` tells, in our own plain words.
pub fn describe(m: &Metainfo) -> String {
    let mut s = String::new();
    s.push_str(&format!("name: {}\n", m.name));
    s.push_str(&format!("info-hash: {}\n", to_hex(&m.info_hash)));
    s.push_str(&format!("size: {} bytes\n", m.total_length));
    s.push_str(&format!(
        "pieces: {} of {} bytes\n",
        m.piece_count(),
        m.piece_length
    ));
    for t in m.trackers() {
        s.push_str(&format!("tracker: {t}\n"));
    }
    s.push_str(&format!("files: {}\n", m.files.len()));
    for f in &m.files {
        let path = if m.multi_file {
            format!("{}/{}", m.name, f.path.join("/"))
        } else {
            m.name.clone()
        };
        s.push_str(&format!("  {path} ({} bytes)\n", f.length));
    }
    s
}

fn run_show(a: ShowArgs) -> ExitCode {
    match metainfo::read(&a.torrent) {
        Ok(m) => {
            print!("{}", describe(&m));
            ExitCode::SUCCESS
        }
        Err(e) => fail(format_args!("cannot read {}: {e}", a.torrent.display())),
    }
}

fn run_tracker(a: TrackerArgs) -> ExitCode {
    if let Err(code) = trace::start_from_cli(a.trace.as_deref(), "bt-tracker") {
        return code;
    }
    let http = match crate::core::tcp::bind(SocketAddr::new(a.bind, a.port)) {
        Ok(l) => l,
        Err(e) => return fail(format_args!("cannot listen on TCP port {}: {e}", a.port)),
    };
    let udp = match crate::core::udp_rpc::bind(SocketAddr::new(a.bind, a.udp_port)) {
        Ok(s) => s,
        Err(e) => return fail(format_args!("cannot bind UDP port {}: {e}", a.udp_port)),
    };
    let (Ok(h), Ok(u)) = (http.local_addr(), udp.local_addr()) else {
        return fail("cannot read the bound addresses");
    };
    println!("tracker: http://{h}/announce udp://{u}");
    let shutdown = Shutdown::new();
    let _ = shutdown.trigger_on_ctrl_c();
    let config = TrackerConfig {
        interval: Duration::from_secs(a.interval),
        expiry: Duration::from_secs(a.interval * 3),
    };
    match tracker::run(config, Some(http), Some(udp), shutdown) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(format_args!("the tracker stopped: {e}")),
    }
}

/// `seed` (`data` given: check it and serve) and `get` (download into `out`, resume, maybe seed):
/// open and check the data, listen and start the engine, then show progress until it stops.
fn run_peer(
    torrent: PathBuf,
    data: Option<PathBuf>,
    out: PathBuf,
    keep_seeding: bool,
    p: PeerArgs,
) -> ExitCode {
    let seeding = data.is_some();
    let shutdown = Shutdown::new();
    let _ = shutdown.trigger_on_ctrl_c();
    let opened = match open_checked(&torrent, data.as_deref(), &out, &shutdown) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let Opened {
        meta,
        storage,
        have,
    } = opened;
    let (trackers, listener) = match trackers_and_listener(&meta, &p) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let port = listener.local_addr().map_or(p.port, |a| a.port());
    let verb = if seeding { "seeding" } else { "downloading" };
    println!("{verb} {} on port {port}", meta.name);
    let label = format!("bt-{}-{port}", if seeding { "seed" } else { "get" });
    if let Err(code) = trace::start_from_cli(p.trace.as_deref(), &label) {
        return code;
    }
    let whole = format!("torrent {}", meta.name);
    let downloading = !seeding && have.count() < meta.piece_count();
    if downloading {
        trace::transfer_begin(
            trace::Proto::Tcp,
            None,
            None,
            &whole,
            Some(meta.total_length),
        );
    }
    let config = EngineConfig {
        meta: meta.clone(),
        storage,
        have,
        trackers,
        stop_when_complete: !keep_seeding,
        label,
    };
    let running = match client::start(config, listener, shutdown) {
        Ok(r) => r,
        Err(e) => return fail(format_args!("cannot start: {e}")),
    };
    let complete = show_progress(running, &meta, seeding, keep_seeding, downloading);
    if complete || seeding {
        ExitCode::SUCCESS
    } else {
        let why = Some("stopped before the torrent was complete");
        trace::transfer_end(trace::Proto::Tcp, None, None, &whole, 0, why);
        eprintln!(
            "error: stopped before {} was complete (the .part files resume next time)",
            meta.name
        );
        ExitCode::from(1)
    }
}

/// The trackers to announce to (`--tracker` wins over the torrent's) and the peer listener.
fn trackers_and_listener(
    meta: &Metainfo,
    p: &PeerArgs,
) -> Result<(Vec<String>, std::net::TcpListener), ExitCode> {
    let trackers = match &p.tracker {
        Some(t) => vec![t.clone()],
        None => meta.trackers(),
    };
    if trackers.is_empty() {
        return Err(fail(
            "the torrent names no tracker; give one with --tracker",
        ));
    }
    let listener = crate::core::tcp::bind(SocketAddr::new(p.bind, p.port))
        .map_err(|e| fail(format_args!("cannot listen on port {}: {e}", p.port)))?;
    Ok((trackers, listener))
}

/// A torrent's data, opened and hashed: what is already there and verified.
struct Opened {
    meta: Arc<Metainfo>,
    storage: Storage,
    have: super::wire::Bitfield,
}

/// Reads the torrent, opens the data (`data` to seed, else `out` to download into) and checks
/// every piece on all cores; a seed whose data does not match is refused.
fn open_checked(
    torrent: &std::path::Path,
    data: Option<&std::path::Path>,
    out: &std::path::Path,
    shutdown: &Shutdown,
) -> Result<Opened, ExitCode> {
    let meta = match metainfo::read(torrent) {
        Ok(m) => Arc::new(m),
        Err(e) => return Err(fail(format_args!("cannot read {}: {e}", torrent.display()))),
    };
    let storage = match data {
        Some(d) => Storage::open_seed(meta.clone(), d),
        None => Storage::open_download(meta.clone(), out),
    }
    .map_err(|e| fail(format_args!("cannot open the data: {e}")))?;
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let rt = Runtime::new("bt", "bt-check", shutdown);
    let pool = WorkerPool::new(&rt, "hash", workers)
        .map_err(|e| fail(format_args!("cannot start the hashing pool: {e}")))?;
    let bar = progress::bytes(Some(meta.total_length), "checking");
    let checked = storage.check(&pool, &|n| bar.set_position(n));
    bar.finish_and_clear();
    drop(pool);
    let have = checked.map_err(|e| fail(format_args!("cannot check the data: {e}")))?;
    let (count, n) = (have.count(), meta.piece_count());
    if let Some(d) = data {
        if count != n {
            return Err(fail(format_args!(
                "{} does not match the torrent: {count} of {n} pieces check out",
                d.display()
            )));
        }
    } else if count > 0 {
        println!("resuming: {count} of {n} pieces already verified");
    }
    Ok(Opened {
        meta,
        storage,
        have,
    })
}

/// The progress bar until the engine stops; prints the download's summary line once. Whether
/// the torrent was complete.
fn show_progress(
    running: client::Running,
    meta: &Metainfo,
    seeding: bool,
    keep_seeding: bool,
    downloading: bool,
) -> bool {
    let started = std::time::Instant::now();
    let n = meta.piece_count();
    let bar = progress::bytes(Some(meta.total_length), &meta.name);
    let announced = std::sync::atomic::AtomicBool::new(false);
    let complete = running.wait(&|e| {
        let have = e.have();
        let done: u64 = (0..n)
            .filter(|&i| have.has(i))
            .map(|i| meta.piece_size(i))
            .sum();
        bar.set_position(done);
        let peers = e.peers.load(Ordering::Relaxed);
        bar.set_message(format!("{} ({peers} peers)", meta.name));
        if done == meta.total_length && !seeding && !announced.swap(true, Ordering::SeqCst) {
            bar.finish_and_clear();
            if downloading {
                let whole = format!("torrent {}", meta.name);
                trace::transfer_end(trace::Proto::Tcp, None, None, &whole, done, None);
            }
            let secs = started.elapsed().as_secs_f64();
            println!(
                "downloaded {} ({} bytes) in {secs:.1} s, {:.1} MiB/s",
                meta.name,
                meta.total_length,
                e.downloaded.load(Ordering::Relaxed) as f64 / secs.max(1e-6) / 1048576.0
            );
            if keep_seeding {
                println!("seeding {} until Ctrl-C", meta.name);
            }
        }
    });
    bar.finish_and_clear();
    complete
}
