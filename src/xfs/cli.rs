//! Command line of `peershare xfs`: `tracker [--port 5025]` and
//! `node <ip> <port> <dir> [--tracker 127.0.0.1:5025] [--latency latency.txt]`.

use crate::core::shutdown::Shutdown;
use crate::core::tcp;
use crate::xfs::node::{self, NodeConfig, NodeError};
use crate::xfs::tracker::{self, TrackerConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    role: Role,
}

#[derive(clap::Subcommand, Debug)]
enum Role {
    /// The tracking server (binds 127.0.0.1:<port>).
    Tracker {
        #[arg(long, default_value_t = 5025)]
        port: u16,
    },
    /// A node sharing <dir>; 0 as <port> lets the OS pick one.
    Node {
        /// IP literal or localhost to listen on and register.
        ip: String,
        port: u16,
        /// Shared and download directory (must exist).
        dir: PathBuf,
        /// The tracker's host:port.
        #[arg(long, default_value = "127.0.0.1:5025", value_parser = parse_addr)]
        tracker: SocketAddr,
        /// Latency table (`srcIP srcPort dstIP dstPort ms` per line).
        #[arg(long, default_value = "latency.txt")]
        latency: PathBuf,
    },
}

fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    tcp::parse_host_port(text).map_err(|e| e.to_string())
}

pub fn run(args: Args) -> ExitCode {
    let shutdown = Shutdown::new();
    let _ = shutdown.trigger_on_ctrl_c();
    match args.role {
        Role::Tracker { port } => {
            let listener = match tracker::bind(port) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: cannot listen on 127.0.0.1:{port}: {e}");
                    return ExitCode::from(1);
                }
            };
            match tracker::run(TrackerConfig::default(), listener, shutdown) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Role::Node {
            ip,
            port,
            dir,
            tracker,
            latency,
        } => {
            let Some(ip_addr) = crate::xfs::wire::parse_ip(&ip) else {
                eprintln!("error: {ip} is not an IP address");
                return ExitCode::from(2);
            };
            if !dir.is_dir() {
                eprintln!("error: {} is not a directory", dir.display());
                return ExitCode::from(2);
            }
            let listener = match tcp::bind(SocketAddr::new(ip_addr, port)) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: cannot listen on {ip}:{port}: {e}");
                    return ExitCode::from(1);
                }
            };
            match node::run(NodeConfig::new(dir, tracker, latency), listener, shutdown) {
                Ok(()) => ExitCode::SUCCESS,
                Err(NodeError::TrackerDown) => ExitCode::from(1),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}
