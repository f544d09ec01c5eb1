//! Command line of `peershare xfs`: `tracker [--port 5025] [--bind IP]` and
//! `node <ip> <port> <dir> [--tracker HOST:5025] [--latency latency.txt] [--bind IP]`.

use crate::core::shutdown::Shutdown;
use crate::core::tcp;
use crate::core::trace;
use crate::xfs::node::{self, NodeConfig, NodeError};
use crate::xfs::state::DEFAULT_NODES_PER_IP;
use crate::xfs::tracker::{self, TrackerConfig};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    role: Role,
}

#[derive(clap::Subcommand, Debug)]
enum Role {
    /// The tracking server.
    Tracker(TrackerArgs),
    /// A node sharing <dir>.
    Node(NodeArgs),
}

#[derive(clap::Args, Debug)]
struct TrackerArgs {
    /// TCP port to listen on (0 = any free port).
    #[arg(long, default_value_t = 5025)]
    port: u16,
    /// IP address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Most nodes one address may register (1 to 100,000); more are refused, logged once.
    #[arg(long = "max-nodes-per-ip", default_value_t = DEFAULT_NODES_PER_IP as u32,
              value_parser = clap::value_parser!(u32).range(1..=100_000))]
    max_nodes_per_ip: u32,
    /// Write one JSON line per message and transfer to this file.
    #[arg(long)]
    trace: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct NodeArgs {
    /// This node's address: registered with the tracker, and listened on unless --bind.
    ip: String,
    /// TCP port to listen on (0 lets the OS pick one).
    port: u16,
    /// Shared and download directory (must exist).
    dir: PathBuf,
    /// The tracker's host:port (a host name or an IP).
    #[arg(long, default_value = "127.0.0.1:5025", value_parser = parse_addr)]
    tracker: SocketAddr,
    /// Latency table (`srcIP srcPort dstIP dstPort ms` per line).
    #[arg(long, default_value = "latency.txt")]
    latency: PathBuf,
    /// IP address to listen on when it differs from <ip> (e.g. 0.0.0.0).
    #[arg(long)]
    bind: Option<IpAddr>,
    /// Write one JSON line per message and transfer to this file.
    #[arg(long)]
    trace: Option<PathBuf>,
}

fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    tcp::parse_host_port(text).map_err(|e| e.to_string())
}

pub fn run(args: Args) -> ExitCode {
    let shutdown = Shutdown::new();
    let _ = shutdown.trigger_on_ctrl_c();
    match args.role {
        Role::Tracker(a) => run_tracker(a, &shutdown),
        Role::Node(a) => run_node(a, &shutdown),
    }
}

fn run_tracker(a: TrackerArgs, shutdown: &Shutdown) -> ExitCode {
    if let Err(code) = trace::start_from_cli(a.trace.as_deref(), "xfs-tracker") {
        return code;
    }
    let listener = match tracker::bind(a.bind, a.port) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "error: cannot listen on {}: {e}",
                SocketAddr::new(a.bind, a.port)
            );
            return ExitCode::from(1);
        }
    };
    let config = TrackerConfig {
        max_nodes_per_ip: a.max_nodes_per_ip as usize,
        ..TrackerConfig::default()
    };
    match tracker::run(config, listener, shutdown) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn run_node(a: NodeArgs, shutdown: &Shutdown) -> ExitCode {
    let Some(ip_addr) = crate::xfs::wire::parse_ip(&a.ip) else {
        eprintln!("error: {} is not an IP address", a.ip);
        return ExitCode::from(2);
    };
    if !a.dir.is_dir() {
        eprintln!("error: {} is not a directory", a.dir.display());
        return ExitCode::from(2);
    }
    if let Err(code) = trace::start_from_cli(a.trace.as_deref(), "xfs-node") {
        return code;
    }
    let listen = SocketAddr::new(a.bind.unwrap_or(ip_addr), a.port);
    let listener = match tcp::bind(listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {listen}: {e}");
            return ExitCode::from(1);
        }
    };
    let mut config = NodeConfig::new(a.dir, a.tracker, a.latency);
    config.advertise = Some(ip_addr);
    match node::run_console(config, listener, shutdown) {
        Ok(()) => ExitCode::SUCCESS,
        Err(NodeError::TrackerDown) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
