//! Command line of `peershare bt make|show|tracker|seed|get`.

use super::metainfo::{self, Metainfo};
use super::tracker::{self, TrackerConfig};
use crate::core::digest::to_hex;
use crate::core::pool::WorkerPool;
use crate::core::progress;
use crate::core::shutdown::Shutdown;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
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
    let pool = match WorkerPool::new("bt-hash", workers) {
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
