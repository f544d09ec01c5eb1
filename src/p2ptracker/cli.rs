//! `peershare p2ptracker tracker|client|split|join`: flags as the spec spells them (every option
//! also takes the assignment's single dash, `-folder`, `-tracker`…, rewritten to `--folder` by
//! `main`), validation (clap ranges: one `error:` line naming the option and its range, exit 2),
//! binding, and exit codes (usage 2, unusable folder/list, folder in use or bind failure 1).

use super::client::{self, ClientConfig};
use super::layout::{self, Layout};
use super::tracker::{self, TrackerConfig, MAX_MAX_CONNECTIONS};
use crate::core::event_log::EventLog;
use crate::core::shutdown::Shutdown;
use crate::core::tcp;
use crate::core::trace;
use clap::{Parser, Subcommand};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(arg_required_else_help = true)]
pub struct Args {
    #[command(subcommand)]
    pub role: Role,
}

/// The assignment's spelling, shown in `--help`; two dashes work as well.
const CLIENT_USAGE: &str = "peershare p2ptracker client -folder <path> -transfer_port <port> \
                            -name <name> [-tracker <host:port>] [-pace-ms <ms>] \
                            [-exit-when-complete [-linger <secs>]] [-bind <ip>] [-advertise <ip>] \
                            [-trace <file>]";
const TRACKER_USAGE: &str =
    "peershare p2ptracker tracker [-port <port>] [-max-connections <n>] [-bind <ip>] [-trace <file>]";
const SINGLE_DASH_NOTE: &str = "Every option takes one dash as in the assignment (-folder) or two \
                                (--folder).";

#[derive(Subcommand, Debug)]
pub enum Role {
    /// The tracker: records who holds which chunk and answers WHERE_CHUNK.
    #[command(override_usage = TRACKER_USAGE, after_help = SINGLE_DASH_NOTE)]
    Tracker(TrackerArgs),
    /// A client: announces its chunks, fetches the missing ones from peers, serves its own.
    #[command(override_usage = CLIENT_USAGE, after_help = SINGLE_DASH_NOTE)]
    Client(ClientArgs),
    /// Cuts a file into chunk files and writes local_chunks.txt layouts for client folders.
    Split {
        /// The file to cut.
        file: PathBuf,
        /// Number of chunks.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=super::wire::MAX_IDX as i64))]
        chunks: u32,
        /// Client folders to fill (created if missing).
        #[arg(long, num_args = 1.., required = true)]
        into: Vec<PathBuf>,
        /// Which chunks each folder gets: all of them, round-robin, or a random overlap.
        #[arg(long, value_enum, default_value_t = Layout::RoundRobin)]
        layout: Layout,
        /// Seed of the random layout.
        #[arg(long, default_value_t = 4119)]
        seed: u64,
    },
    /// Reassembles a complete folder's chunks into one file, checking nothing is missing.
    Join {
        /// A client folder with local_chunks.txt.
        folder: PathBuf,
        /// The file to write.
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
pub struct TrackerArgs {
    /// TCP port (0 = OS-assigned).
    #[arg(long, default_value_t = 5100)]
    port: u16,
    /// Client connections served at once; more are closed at once (logged once).
    #[arg(long = "max-connections", default_value_t = tracker::DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new()
              .range(1..=MAX_MAX_CONNECTIONS as u64))]
    max_connections: usize,
    /// Address to listen on (0.0.0.0 for every interface).
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Append one JSON line per message to this file (for `peershare diagram`).
    #[arg(long)]
    trace: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct ClientArgs {
    /// Folder holding local_chunks.txt and the chunk files.
    #[arg(long)]
    folder: PathBuf,
    /// Port of this client's chunk server (0 = OS-assigned).
    #[arg(long = "transfer_port")]
    transfer_port: u16,
    /// Name written in logs.log (no ',' or whitespace, at most 64 bytes).
    #[arg(long, value_parser = parse_name)]
    name: String,
    /// Tracker address, host name or IP with port.
    #[arg(long, default_value = "127.0.0.1:5100", value_parser = parse_addr)]
    tracker: SocketAddr,
    /// Pause after each LOCAL_CHUNKS, in ms (0 suits peershare's own tracker).
    #[arg(long = "pace-ms", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pace_ms: u64,
    /// Exit 0 once every chunk is present and no upload runs.
    #[arg(long = "exit-when-complete")]
    exit_when_complete: bool,
    /// With -exit-when-complete: keep serving this many seconds after completion.
    #[arg(long, default_value_t = 0, requires = "exit_when_complete",
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    linger: u64,
    /// Address the chunk server listens on (0.0.0.0 for every interface).
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Address announced in LOCAL_CHUNKS instead of the spec's `localhost` (for several
    /// hosts; logs.log still says localhost as the spec wants).
    #[arg(long, default_value = client::DEFAULT_ADVERTISE, value_parser = parse_advertise)]
    advertise: String,
    /// Append one JSON line per message and transfer to this file (for `peershare diagram`).
    #[arg(long)]
    trace: Option<PathBuf>,
}

fn parse_name(s: &str) -> Result<String, String> {
    if s.is_empty() {
        Err("the name must not be empty".into())
    } else if s.len() > 64 {
        Err("the name must be at most 64 bytes".into())
    } else if s.contains(',') || s.chars().any(char::is_whitespace) {
        Err("the name must not contain ',' or whitespace".into())
    } else {
        Ok(s.to_string())
    }
}

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    tcp::parse_host_port(s).map_err(|e| e.to_string())
}

fn parse_advertise(s: &str) -> Result<String, String> {
    if super::wire::valid_host(s) {
        Ok(s.to_string())
    } else {
        Err("expected a host name or an IP address".into())
    }
}

fn open_log() -> EventLog {
    EventLog::open(Path::new("logs.log")).unwrap_or_else(|e| {
        eprintln!("warning: cannot open logs.log: {e}");
        EventLog::disabled()
    })
}

/// Binds or says why not (exit 1).
fn listen(ip: IpAddr, port: u16) -> Result<std::net::TcpListener, ExitCode> {
    let addr = SocketAddr::new(ip, port);
    tcp::bind(addr).map_err(|e| {
        eprintln!("error: cannot listen on {addr}: {e}");
        ExitCode::from(1)
    })
}

fn exit_with<E: std::fmt::Display>(result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

pub fn run(args: Args) -> ExitCode {
    let shutdown = Shutdown::new();
    match args.role {
        Role::Split {
            file,
            chunks,
            into,
            layout,
            seed,
        } => exit_with(
            layout::split(&file, chunks, &into, layout, seed).map(|report| {
                println!("{report}");
            }),
        ),
        Role::Join { folder, output } => exit_with(layout::join(&folder, &output).map(|n| {
            println!("wrote {} ({n} bytes)", output.display());
        })),
        Role::Tracker(a) => run_tracker(a, &shutdown),
        Role::Client(a) => run_client(a, &shutdown),
    }
}

fn run_tracker(a: TrackerArgs, shutdown: &Shutdown) -> ExitCode {
    if let Err(code) = trace::start_from_cli(a.trace.as_deref(), "p2ptracker-tracker") {
        return code;
    }
    if let Err(e) = shutdown.trigger_on_ctrl_c() {
        log::warn!("Ctrl-C handler not installed: {e}");
    }
    let listener = match listen(a.bind, a.port) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let config = TrackerConfig {
        max_connections: a.max_connections,
        log: open_log(),
    };
    exit_with(tracker::run(config, listener, shutdown))
}

fn run_client(a: ClientArgs, shutdown: &Shutdown) -> ExitCode {
    let label = format!("p2ptracker-client-{}", a.name);
    if let Err(code) = trace::start_from_cli(a.trace.as_deref(), &label) {
        return code;
    }
    if let Err(e) = shutdown.trigger_on_ctrl_c() {
        log::warn!("Ctrl-C handler not installed: {e}");
    }
    let listener = match listen(a.bind, a.transfer_port) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let mut config = ClientConfig::new(a.folder, &a.name, a.tracker);
    config.pace = Duration::from_millis(a.pace_ms);
    config.exit_when_complete = a.exit_when_complete;
    config.linger = Duration::from_secs(a.linger);
    config.advertise = a.advertise;
    config.log = open_log();
    config.verbose = true;
    exit_with(client::run(config, listener, shutdown).map(|_| ()))
}
