//! Command line of `peershare torrent tracker` and `peershare torrent node -node_id <n>`.

use super::journal::Journal;
use super::node::{Node, NodeConfig};
use super::tracker::{self, TrackerConfig};
use crate::core::console::{Console, Input, Printer};
use crate::core::shutdown::Shutdown;
use crate::core::trace;
use crate::core::udp_rpc::{self, Retry};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    role: Role,
}

#[derive(clap::Subcommand, Debug)]
enum Role {
    /// The tracker: owners, upload counts, liveness sweep.
    Tracker(TrackerArgs),
    /// A node: serves its files and downloads on `torrent -setMode …` commands.
    Node(NodeArgs),
}

#[derive(clap::Args, Debug)]
struct TrackerArgs {
    /// UDP port (0 = any free port).
    #[arg(long, default_value_t = 12345)]
    port: u16,
    /// IP address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Write one JSON line per message to this file.
    #[arg(long)]
    trace: Option<PathBuf>,
    /// How often silent nodes are swept out (1 to 86,400,000 ms).
    #[arg(long = "sweep-interval-ms", default_value_t = 22_000, value_parser = millis)]
    sweep_interval_ms: u64,
    /// Least time between two writes of the JSON snapshots (1 to 86,400,000 ms); the last state
    /// is also written on exit.
    #[arg(long = "snapshot-interval-ms", default_value_t = 1_000, value_parser = millis)]
    snapshot_interval_ms: u64,
    #[arg(long = "logs-dir", default_value = "logs")]
    logs_dir: PathBuf,
    #[arg(long = "db-dir", default_value = "tracker_db")]
    db_dir: PathBuf,
}

#[derive(clap::Args, Debug)]
struct NodeArgs {
    /// This node's id (also spelled `-node_id`).
    #[arg(long = "node_id", value_parser = clap::value_parser!(i64).range(0..=2_147_483_647))]
    node_id: i64,
    /// The tracker's `host:port`: a host name or an IP (`localhost` means 127.0.0.1).
    #[arg(long, default_value = "127.0.0.1:12345", value_parser = parse_addr)]
    tracker: SocketAddr,
    #[arg(long = "files-dir", default_value = "node_files")]
    files_dir: PathBuf,
    #[arg(long = "logs-dir", default_value = "logs")]
    logs_dir: PathBuf,
    /// How often the node tells the tracker it is alive (1 to 86,400,000 ms).
    #[arg(long = "register-interval-ms", default_value_t = 20_000, value_parser = millis)]
    register_interval_ms: u64,
    /// Silence on a range socket before missing bytes are asked for again (1 to 86,400,000 ms).
    #[arg(long = "idle-timeout-ms", default_value_t = 1_000, value_parser = millis)]
    idle_timeout_ms: u64,
    /// IP address every socket of the node binds.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Log the original's `The N/M has been sent!` line for every piece served.
    #[arg(long)]
    verbose: bool,
    /// Write one JSON line per message and transfer to this file.
    #[arg(long)]
    trace: Option<PathBuf>,
}

/// Milliseconds from 1 ms to a day: 0 would spin, and more than a day is surely a typo.
fn millis(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(v) if (1..=86_400_000).contains(&v) => Ok(v),
        _ => Err(format!("{text} is not in 1..=86400000 (milliseconds)")),
    }
}

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    crate::core::tcp::parse_host_port(s).map_err(|e| e.to_string())
}

fn bind(addr: SocketAddr) -> Result<UdpSocket, ExitCode> {
    match udp_rpc::bind(addr) {
        Ok(s) => Ok(s),
        Err(e) => {
            eprintln!("error: cannot bind UDP {addr}: {e}");
            Err(ExitCode::from(1))
        }
    }
}

pub fn run(args: Args) -> ExitCode {
    match args.role {
        Role::Tracker(a) => run_tracker(a),
        Role::Node(a) => run_node(a),
    }
}

/// Opens a log in `dir`, or says why not (exit 1), like [`bind`] for sockets.
fn open_journal(printer: Printer, dir: &Path, name: &str) -> Result<Journal, ExitCode> {
    Journal::open(printer, dir, name).map_err(|e| {
        eprintln!("error: cannot open the log in {}: {e}", dir.display());
        ExitCode::from(1)
    })
}

fn run_tracker(a: TrackerArgs) -> ExitCode {
    if let Err(code) = trace::start_from_cli(a.trace.as_deref(), "torrent-tracker") {
        return code;
    }
    let socket = match bind(SocketAddr::new(a.bind, a.port)) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let journal = match open_journal(Printer::plain(), &a.logs_dir, "_tracker.log") {
        Ok(j) => j,
        Err(code) => return code,
    };
    let shutdown = Shutdown::new();
    let _ = shutdown.trigger_on_ctrl_c();
    let config = TrackerConfig {
        sweep_interval: Duration::from_millis(a.sweep_interval_ms),
        snapshot_interval: Duration::from_millis(a.snapshot_interval_ms),
        db_dir: a.db_dir,
    };
    match tracker::run(config, socket, journal, &shutdown) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: the tracker stopped: {e}");
            ExitCode::from(1)
        }
    }
}

fn run_node(a: NodeArgs) -> ExitCode {
    if let Err(code) =
        trace::start_from_cli(a.trace.as_deref(), &format!("torrent-node-{}", a.node_id))
    {
        return code;
    }
    let socket = match bind(SocketAddr::new(a.bind, 0)) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let console = match Console::start() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot read stdin: {e}");
            return ExitCode::from(1);
        }
    };
    let file_name = format!("node{}.log", a.node_id);
    let journal = match open_journal(console.printer(), &a.logs_dir, &file_name) {
        Ok(j) => j,
        Err(code) => return code,
    };
    let shutdown = Shutdown::new();
    let _ = shutdown.trigger_on_ctrl_c();
    let config = NodeConfig {
        node_id: a.node_id,
        tracker: a.tracker,
        dir: a.files_dir.join(format!("node{}", a.node_id)),
        register_interval: Duration::from_millis(a.register_interval_ms),
        idle_timeout: Duration::from_millis(a.idle_timeout_ms),
        query_retry: Retry {
            timeout: Duration::from_secs(1),
            sends: 3,
        },
        verbose: a.verbose,
        bind: a.bind,
    };
    match run_console(config, socket, journal, shutdown, &console) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// The node role with its stdin loop: runs until `exit`, EOF or Ctrl-C, then leaves cleanly.
pub fn run_console(
    config: NodeConfig,
    socket: UdpSocket,
    journal: Journal,
    shutdown: Shutdown,
    console: &Console,
) -> std::io::Result<()> {
    let mut node = Node::start(config, socket, journal.clone(), shutdown.clone())?;
    journal.say("ENTER YOUR COMMAND!");
    // EOF and Ctrl-C end the loop like `exit`.
    while let Input::Line(line) = console.read_line("", &shutdown) {
        if !node.handle_line(&line) {
            break;
        }
    }
    node.exit();
    Ok(())
}
