//! `peershare p2ptracker tracker|client`: flags as the spec spells them (`-folder` etc. are
//! rewritten to `--folder` by `main`), validation, binding, and exit codes (usage 2, unusable
//! folder/list or bind failure 1).

use super::client::{self, ClientConfig};
use super::tracker;
use crate::core::event_log::EventLog;
use crate::core::shutdown::Shutdown;
use crate::core::tcp;
use clap::{Parser, Subcommand};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub role: Role,
}

#[derive(Subcommand, Debug)]
pub enum Role {
    /// The tracker: records who holds which chunk and answers WHERE_CHUNK.
    Tracker {
        /// TCP port on 127.0.0.1 (0 = OS-assigned).
        #[arg(long, default_value_t = 5100)]
        port: u16,
    },
    /// A client: announces its chunks, fetches the missing ones from peers, serves its own.
    Client {
        /// Folder holding local_chunks.txt and the chunk files.
        #[arg(long)]
        folder: PathBuf,
        /// Port of this client's chunk server on 127.0.0.1 (0 = OS-assigned).
        #[arg(long = "transfer_port")]
        transfer_port: u16,
        /// Name written in logs.log (no ',' or whitespace, at most 64 bytes).
        #[arg(long, value_parser = parse_name)]
        name: String,
        /// Tracker address.
        #[arg(long, default_value = "127.0.0.1:5100", value_parser = parse_addr)]
        tracker: SocketAddr,
        /// Pause after each LOCAL_CHUNKS, in ms (0 suits peershare's own tracker).
        #[arg(long = "pace-ms", default_value_t = 1000)]
        pace_ms: u64,
        /// Exit 0 once every chunk is present and no upload runs.
        #[arg(long = "exit-when-complete")]
        exit_when_complete: bool,
    },
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

fn open_log() -> EventLog {
    EventLog::open(Path::new("logs.log")).unwrap_or_else(|e| {
        eprintln!("warning: cannot open logs.log: {e}");
        EventLog::disabled()
    })
}

pub fn run(args: Args) -> ExitCode {
    let shutdown = Shutdown::new();
    if let Err(e) = shutdown.trigger_on_ctrl_c() {
        log::warn!("Ctrl-C handler not installed: {e}");
    }
    match args.role {
        Role::Tracker { port } => {
            let listener = match tcp::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: cannot listen on 127.0.0.1:{port}: {e}");
                    return ExitCode::from(1);
                }
            };
            match tracker::run(listener, shutdown, open_log()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Role::Client {
            folder,
            transfer_port,
            name,
            tracker,
            pace_ms,
            exit_when_complete,
        } => {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, transfer_port));
            let listener = match tcp::bind(addr) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: cannot listen on {addr}: {e}");
                    return ExitCode::from(1);
                }
            };
            let config = ClientConfig {
                folder,
                name,
                tracker,
                pace: Duration::from_millis(pace_ms),
                exit_when_complete,
                log: open_log(),
                verbose: true,
                start_gate: None,
                on_complete: None,
            };
            match client::run(config, listener, shutdown) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}
