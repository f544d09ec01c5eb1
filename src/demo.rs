//! `peershare demo`: a whole P2PTracker++ swarm on 127.0.0.1 in one process, no setup.
//!
//! The files of `dir/` (or one random file of `--size` MiB) are cut into chunks; every client gets
//! an overlapping random subset (each chunk held by at least one client) in a fresh work
//! directory; the tracker and clients run with pacing off until every client holds every chunk;
//! then every chunk's SHA-256 is checked against the source and a summary is printed. The same
//! [`Swarm`] drives the benchmarks.

use crate::core::chunking;
use crate::core::digest;
use crate::core::event_log::EventLog;
use crate::core::runtime::{Runtime, STOP_BOUND};
use crate::core::shutdown::Shutdown;
use crate::core::tcp;
use crate::p2ptracker::client::{self, ClientConfig, Outcome};
use crate::p2ptracker::layout::{self, Layout};
use crate::p2ptracker::tracker;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use std::fmt;
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Largest `--size`, in MiB.
pub const MAX_SIZE_MIB: u64 = 64 * 1024;
/// Largest `--chunk-size`, in bytes (1 GiB).
pub const MAX_CHUNK_SIZE: u64 = 1 << 30;
/// Most clients in one demo (each is several threads).
pub const MAX_PEERS: usize = 64;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder whose files are shared.
    #[arg(long, default_value = "dir")]
    pub dir: PathBuf,
    /// Generate one random file of this many MiB instead of using --dir.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_SIZE_MIB))]
    pub size: Option<u64>,
    /// Chunk size in bytes.
    #[arg(long = "chunk-size", default_value_t = 64 * 1024,
          value_parser = clap::value_parser!(u64).range(1..=MAX_CHUNK_SIZE))]
    pub chunk_size: u64,
    /// Number of clients.
    #[arg(long, default_value_t = 4,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(2..=MAX_PEERS as u64))]
    pub peers: usize,
    /// Seed of the random holdings (and the random file).
    #[arg(long, default_value_t = 4119)]
    pub seed: u64,
    /// Where to build the swarm (default: a new folder under the system temp dir, kept afterwards).
    #[arg(long = "work-dir")]
    pub work_dir: Option<PathBuf>,
    /// Append one JSON line per message and transfer to FILE (see `peershare diagram`).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Write the swarm's sequence diagram (HTML) to FILE and print its path.
    #[arg(long, value_name = "FILE")]
    pub diagram: Option<PathBuf>,
}

/// A demo client's thread: it hands back the client's name and how its run ended.
type ClientThread = std::thread::JoinHandle<(String, Result<client::Outcome, client::ClientError>)>;

/// Joins the client threads: the complete clients' outcomes, and the first failure (a panic,
/// an incomplete client or a client error).
fn collect(threads: Vec<ClientThread>) -> (Vec<(String, client::Outcome)>, Option<SwarmError>) {
    let mut outcomes = Vec::new();
    let mut failure = None;
    for t in threads {
        let Ok((name, result)) = t.join() else {
            failure.get_or_insert(SwarmError::Io(io::Error::other("a client thread panicked")));
            continue;
        };
        match result {
            Ok(o) if o.complete => outcomes.push((name, o)),
            Ok(_) => drop(failure.get_or_insert(SwarmError::Incomplete(name))),
            Err(e) => drop(failure.get_or_insert(SwarmError::Client(name, e))),
        }
    }
    (outcomes, failure)
}

/// Why a swarm could not be built or did not finish correctly.
#[derive(Debug)]
pub enum SwarmError {
    Io(io::Error),
    /// Nothing to share: the folder (or file list) holds no non-empty file.
    NoChunks(PathBuf),
    Client(String, client::ClientError),
    Incomplete(String),
    Mismatch {
        client: String,
        idx: u32,
    },
}

impl fmt::Display for SwarmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwarmError::Io(e) => write!(f, "{e}"),
            SwarmError::NoChunks(p) => {
                write!(f, "{} holds no non-empty files to share", p.display())
            }
            SwarmError::Client(n, e) => write!(f, "client {n} failed: {e}"),
            SwarmError::Incomplete(n) => write!(f, "client {n} did not get every chunk"),
            SwarmError::Mismatch { client, idx } => {
                write!(
                    f,
                    "client {client} holds a chunk {idx} that differs from the source"
                )
            }
        }
    }
}

impl std::error::Error for SwarmError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SwarmError::Io(e) => Some(e),
            SwarmError::Client(_, e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for SwarmError {
    fn from(e: io::Error) -> Self {
        SwarmError::Io(e)
    }
}

/// A swarm laid out on disk, ready to run.
pub struct Swarm {
    pub work: PathBuf,
    pub chunk_digests: Vec<String>,
    pub chunk_bytes: Vec<u64>,
    pub clients: Vec<(String, PathBuf)>,
    /// Bytes that must move so every client has everything.
    pub bytes_needed: u64,
    /// (chunk, holder) pairs the clients announce at start.
    pub initial_entries: usize,
}

/// What a finished swarm did.
pub struct Report {
    pub elapsed: Duration,
    pub outcomes: Vec<(String, Outcome)>,
    pub log_path: PathBuf,
}

impl Swarm {
    /// Cuts `sources` into `chunk_size` chunks under `work/source` and gives each of `peers`
    /// clients (at least 2) a random subset in `work/peer<i>`; every chunk has at least one
    /// holder.
    pub fn build(
        work: &Path,
        sources: &[PathBuf],
        chunk_size: u64,
        peers: usize,
        seed: u64,
    ) -> Result<Swarm, SwarmError> {
        if peers < 2 || chunk_size == 0 {
            return Err(SwarmError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a swarm needs at least 2 peers and chunks of at least 1 byte",
            )));
        }
        let src_dir = work.join("source");
        std::fs::create_dir_all(&src_dir)?;
        let mut chunks: Vec<(u32, PathBuf, u64)> = Vec::new();
        for s in sources {
            let next = chunks.len() as u32 + 1;
            chunks.extend(chunking::split_file(s, &src_dir, chunk_size, next)?);
        }
        if chunks.is_empty() {
            let from = sources
                .first()
                .and_then(|p| p.parent())
                .map_or_else(|| work.to_path_buf(), Path::to_path_buf);
            return Err(SwarmError::NoChunks(from));
        }
        let n = chunks.len();
        let holds = layout::assign(Layout::Random, n, peers, seed);
        let mut clients = Vec::new();
        let mut bytes_needed = 0;
        let mut initial_entries = 0;
        for (p, held) in holds.iter().enumerate() {
            let name = format!("peer{}", p + 1);
            let dir = work.join(&name);
            std::fs::create_dir_all(&dir)?;
            let mut list = String::new();
            for (c, (idx, path, len)) in chunks.iter().enumerate() {
                if held[c] {
                    std::fs::copy(path, dir.join(format!("chunk_{idx}")))?;
                    list.push_str(&format!("{idx},chunk_{idx}\n"));
                    initial_entries += 1;
                } else {
                    bytes_needed += len;
                }
            }
            list.push_str(&format!("{n},LASTCHUNK\n"));
            std::fs::write(dir.join("local_chunks.txt"), list)?;
            clients.push((name, dir));
        }
        let chunk_digests = chunks
            .iter()
            .map(|(_, p, _)| digest::sha256_file(p))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Swarm {
            work: work.into(),
            chunk_digests,
            chunk_bytes: chunks.iter().map(|c| c.2).collect(),
            clients,
            bytes_needed,
            initial_entries,
        })
    }

    /// Runs tracker and clients in this process until every client is complete, then checks
    /// every chunk of every client against the source digests.
    pub fn run(&self) -> Result<Report, SwarmError> {
        let log_path = self.work.join("logs.log");
        let log = EventLog::open(&log_path)?;
        let shutdown = Shutdown::new();
        let listener = tcp::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        let tracker = tracker::start(
            tracker::TrackerConfig {
                log: log.clone(),
                ..Default::default()
            },
            listener,
            &shutdown,
        )?;
        let (gate_open, gate) = crossbeam_channel::bounded::<()>(0);
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        // The clients' threads: each runs one client and hands back its result.
        let rt = Runtime::new("p2ptracker", "p2ptracker-demo", &shutdown);
        let start = Instant::now();
        let mut threads = Vec::new();
        for (i, (name, folder)) in self.clients.iter().enumerate() {
            let mut config = ClientConfig::new(folder.clone(), name, tracker.local_addr());
            config.pace = Duration::ZERO;
            config.log = log.clone();
            config.start_gate = Some(gate.clone());
            config.on_complete = Some(done_tx.clone());
            let listener = tcp::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
            let stop = rt.shutdown().clone();
            let name = name.clone();
            threads.push(rt.spawn_owned(&format!("demo-{}", i + 1), move || {
                (name, client::run(config, listener, &stop))
            })?);
        }
        // Open the gate once the tracker has every initial announcement (or after 10 s).
        let deadline = Instant::now() + Duration::from_secs(10);
        while tracker.entries() < self.initial_entries && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(gate_open);
        // Every client reports completion once; a run that stalls ends after 10 minutes.
        for _ in 0..self.clients.len() {
            if done_rx.recv_timeout(Duration::from_secs(600)).is_err() {
                break;
            }
        }
        let elapsed = start.elapsed();
        rt.shutdown().trigger();
        let (outcomes, failure) = collect(threads);
        rt.stop(STOP_BOUND);
        if let Some(e) = failure {
            return Err(e);
        }
        drop(tracker);
        self.verify()?;
        Ok(Report {
            elapsed,
            outcomes,
            log_path,
        })
    }

    /// Every client's `chunk_<idx>` has the source chunk's SHA-256.
    pub fn verify(&self) -> Result<(), SwarmError> {
        for (name, dir) in &self.clients {
            for (i, want) in self.chunk_digests.iter().enumerate() {
                let idx = i as u32 + 1;
                let got = digest::sha256_file(&dir.join(format!("chunk_{idx}")))
                    .map_err(|_| SwarmError::Incomplete(name.clone()))?;
                if &got != want {
                    return Err(SwarmError::Mismatch {
                        client: name.clone(),
                        idx,
                    });
                }
            }
        }
        Ok(())
    }
}

/// Writes `mib` MiB of seeded random bytes to `path`.
pub fn random_file(path: &Path, mib: u64, seed: u64) -> io::Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = io::BufWriter::new(std::fs::File::create(path)?);
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..mib {
        rng.fill_bytes(&mut block);
        out.write_all(&block)?;
    }
    out.flush()
}

fn sources(args: &Args, work: &Path) -> io::Result<Vec<PathBuf>> {
    if let Some(mib) = args.size {
        let path = work.join("random.bin");
        random_file(&path, mib, args.seed)?;
        return Ok(vec![path]);
    }
    let listing = std::fs::read_dir(&args.dir).map_err(|e| {
        io::Error::new(e.kind(), format!("cannot read {}: {e}", args.dir.display()))
    })?;
    let mut files: Vec<PathBuf> = listing
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Removes what an earlier demo left in `work` (chunk folders, the log, the random file), so a
/// reused `--work-dir` starts clean; other files there are left alone.
fn clear_earlier_run(work: &Path) -> io::Result<()> {
    let Ok(listing) = std::fs::read_dir(work) else {
        return Ok(());
    };
    for entry in listing.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours_dir = name == "source"
            || name
                .strip_prefix("peer")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if ours_dir && entry.path().is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else if name == "logs.log" || name == "random.bin" {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

fn demo(args: &Args) -> Result<(), SwarmError> {
    let work = match &args.work_dir {
        Some(w) => w.clone(),
        None => std::env::temp_dir().join(format!("peershare-demo-{}", std::process::id())),
    };
    let created = !work.exists();
    let result = clear_earlier_run(&work)
        .map_err(SwarmError::from)
        .and_then(|()| demo_in(args, &work));
    if result.is_err() {
        // A failed demo leaves nothing behind: the whole dir if we made it, else our part.
        let _ = if created {
            std::fs::remove_dir_all(&work)
        } else {
            clear_earlier_run(&work)
        };
    }
    result
}

fn demo_in(args: &Args, work: &Path) -> Result<(), SwarmError> {
    let work = work.to_path_buf();
    std::fs::create_dir_all(&work)?;
    let files = sources(args, &work)?;
    if files.is_empty() {
        return Err(SwarmError::NoChunks(args.dir.clone()));
    }
    let shared: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "peershare demo: {} file(s), {:.2} MiB, {}-byte chunks, {} clients, work dir {}",
        files.len(),
        mib(shared),
        args.chunk_size,
        args.peers,
        work.display()
    );
    let swarm = Swarm::build(&work, &files, args.chunk_size, args.peers, args.seed)?;
    println!(
        "{} chunks; {:.2} MiB must move so that every client has every chunk",
        swarm.chunk_digests.len(),
        mib(swarm.bytes_needed)
    );
    let trace = start_trace(args, &work)?;
    let report = swarm.run()?;
    let secs = report.elapsed.as_secs_f64().max(1e-9);
    let moved: u64 = report.outcomes.iter().map(|(_, o)| o.bytes_fetched).sum();
    println!(
        "all {} clients complete in {:.3} s: {:.2} MiB moved, {:.1} MiB/s",
        report.outcomes.len(),
        secs,
        mib(moved),
        mib(moved) / secs
    );
    for (name, o) in &report.outcomes {
        println!(
            "  {name}: fetched {} chunk(s), {:.2} MiB; served {:.2} MiB",
            o.fetched,
            mib(o.bytes_fetched),
            mib(o.bytes_served)
        );
    }
    println!(
        "every chunk of every client matches the source SHA-256 ({} chunks x {} clients)",
        swarm.chunk_digests.len(),
        report.outcomes.len()
    );
    println!("event log: {}", report.log_path.display());
    if let Some(out) = &args.diagram {
        write_diagram(trace.as_deref(), &report.log_path, out)?;
    }
    Ok(())
}

/// Starts tracing to `--trace` (or, for `--diagram` alone, `trace.jsonl` in the work dir).
fn start_trace(args: &Args, work: &Path) -> Result<Option<PathBuf>, SwarmError> {
    let path = match (&args.trace, &args.diagram) {
        (Some(t), _) => t.clone(),
        (None, Some(_)) => work.join("trace.jsonl"),
        (None, None) => return Ok(None),
    };
    crate::core::trace::start(&path, "demo").map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot open trace file {}: {e}", path.display()),
        )
    })?;
    println!("trace: {}", path.display());
    Ok(Some(path))
}

/// Draws the run from its trace, or from `logs.log` when the trace holds nothing.
fn write_diagram(trace: Option<&Path>, log: &Path, out: &Path) -> Result<(), SwarmError> {
    let traced = trace.filter(|t| std::fs::metadata(t).is_ok_and(|m| m.len() > 0));
    let input = traced.unwrap_or(log).to_path_buf();
    crate::diagram::write_html(&[input], out, false)
        .map_err(|e| SwarmError::Io(io::Error::other(e.to_string())))?;
    println!("diagram: {}", out.display());
    Ok(())
}

pub fn run(args: Args) -> ExitCode {
    match demo(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
