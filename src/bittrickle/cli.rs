//! Command line of `peershare bittrickle`: `server <port> [--credentials <path>]` and
//! `client <server-port>`. Binds the sockets, installs Ctrl-C, calls the role, maps the result to
//! an exit code. The hidden `--*-ms` options shorten the spec's timings for tests.

use crate::bittrickle::client::{self, ClientConfig, HEARTBEAT_PERIOD, REQUEST_RETRY};
use crate::bittrickle::server::{self, ServerConfig, INACTIVITY};
use crate::bittrickle::credentials::{BadLine, Credentials, CredentialsError};
use crate::core::shutdown::Shutdown;
use crate::core::tcp;
use crate::core::udp_rpc::{self, Retry};
use std::net::{Ipv4Addr, SocketAddr};
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
    /// The indexing server: credentials, active users, publications (UDP on 127.0.0.1:<port>).
    Server {
        /// UDP port to bind on 127.0.0.1 (0 = any free port; the banner shows it).
        port: u16,
        /// The credentials file (default: ./credentials.txt).
        #[arg(long)]
        credentials: Option<PathBuf>,
        /// Inactivity timeout in milliseconds (the spec's 3000; tests shorten it).
        #[arg(long, hide = true, default_value_t = INACTIVITY.as_millis() as u64)]
        inactivity_ms: u64,
    },
    /// An interactive peer talking to the server on 127.0.0.1:<server-port>.
    Client {
        /// The server's UDP port on 127.0.0.1.
        server_port: u16,
        /// Heartbeat period in milliseconds (the spec's 2000; tests shorten it).
        #[arg(long, hide = true, default_value_t = HEARTBEAT_PERIOD.as_millis() as u64)]
        heartbeat_ms: u64,
        /// Reply timeout per try in milliseconds (the spec's 1000; 3 sends in all).
        #[arg(long, hide = true, default_value_t = REQUEST_RETRY.timeout.as_millis() as u64)]
        request_timeout_ms: u64,
    },
}

pub fn run(args: Args) -> ExitCode {
    match args.role {
        Role::Server {
            port,
            credentials,
            inactivity_ms,
        } => run_server(port, credentials, Duration::from_millis(inactivity_ms)),
        Role::Client {
            server_port,
            heartbeat_ms,
            request_timeout_ms,
        } => run_client(
            server_port,
            Duration::from_millis(heartbeat_ms),
            Duration::from_millis(request_timeout_ms),
        ),
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

fn run_server(port: u16, path: Option<PathBuf>, inactivity: Duration) -> ExitCode {
    let path = path.unwrap_or_else(|| PathBuf::from("credentials.txt"));
    let credentials = match Credentials::load(&path) {
        Ok((credentials, bad)) => {
            for BadLine(n) in bad {
                eprintln!("warning: {} line {n} ignored", path.display());
            }
            credentials
        }
        Err(CredentialsError::Missing(p)) => {
            // The original printed this with print(), so it goes to stdout.
            println!("Error: {} does not exist.", p.display());
            return ExitCode::from(1);
        }
        Err(e) => {
            println!("Error: {e}.");
            return ExitCode::from(1);
        }
    };
    let socket = match udp_rpc::bind(loopback(port)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot bind UDP port {port}: {e}");
            return ExitCode::from(1);
        }
    };
    let shutdown = Shutdown::new();
    let _ = shutdown.trigger_on_ctrl_c();
    let config = ServerConfig {
        credentials,
        inactivity,
    };
    if let Err(e) = server::run(config, socket, &shutdown) {
        eprintln!("error: the server stopped: {e}");
        return ExitCode::from(1);
    }
    println!();
    println!("Graceful shutdown initiated...");
    println!("⚡ Bitrickle Server shutdown complete ⚡");
    ExitCode::SUCCESS
}

fn run_client(server_port: u16, heartbeat: Duration, timeout: Duration) -> ExitCode {
    let dir = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: cannot read the current directory: {e}");
            return ExitCode::from(1);
        }
    };
    let socket = match std::net::UdpSocket::bind(loopback(0)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot bind a UDP socket: {e}");
            return ExitCode::from(1);
        }
    };
    let listener = match tcp::bind(loopback(0)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot bind the TCP upload listener: {e}");
            return ExitCode::from(1);
        }
    };
    let shutdown = Shutdown::new();
    let _ = shutdown.trigger_on_ctrl_c();
    let config = ClientConfig {
        server: loopback(server_port),
        heartbeat,
        retry: Retry {
            timeout,
            sends: REQUEST_RETRY.sends,
        },
        dir,
    };
    match client::run(config, socket, listener, &shutdown) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: the client stopped: {e}");
            ExitCode::from(1)
        }
    }
}
