//! Command line of `peershare bittrickle`: `server <port> [--credentials <path>] [--bind <ip>]`
//! and `client <server-port> [--server-host <host>] [--bind <ip>]`, both with `--trace <file>`.
//! Binds the sockets, installs Ctrl-C, calls the role, maps the result to an exit code. The
//! hidden `--*-ms` options shorten the spec's timings for tests; every number is range-checked
//! by clap (one `error:` line naming the option and its range, exit 2).

use crate::bittrickle::client::{self, ClientConfig, HEARTBEAT_PERIOD, REQUEST_RETRY};
use crate::bittrickle::credentials::{BadLine, Credentials, CredentialsError};
use crate::bittrickle::server::{self, ServerConfig, INACTIVITY};
use crate::bittrickle::session::RECHECK;
use crate::core::shutdown::Shutdown;
use crate::core::tcp;
use crate::core::trace;
use crate::core::udp_rpc::{self, Retry};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    role: Role,
}

/// Options both roles take.
#[derive(clap::Args, Debug)]
struct Common {
    /// The local IP address to bind (the server's UDP socket; the client's UDP socket and upload
    /// listener). 0.0.0.0 listens on every interface.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Append one JSON line per protocol message and file transfer to FILE (see `peershare diagram`).
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug)]
enum Role {
    /// The indexing server: credentials, active users, publications (UDP on <bind>:<port>).
    Server {
        /// UDP port to bind (0 = any free port; the banner shows it).
        port: u16,
        /// The credentials file (default: ./credentials.txt).
        #[arg(long)]
        credentials: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
        /// Inactivity timeout in milliseconds (the spec's 3000; tests shorten it).
        #[arg(long, hide = true, default_value_t = INACTIVITY.as_millis() as u64,
              value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
        inactivity_ms: u64,
    },
    /// An interactive peer talking to the server at <server-host>:<server-port>.
    Client {
        /// The server's UDP port.
        server_port: u16,
        /// The server's host name or IP address.
        #[arg(long, default_value = "127.0.0.1")]
        server_host: String,
        #[command(flatten)]
        common: Common,
        /// Heartbeat period in milliseconds (the spec's 2000; tests shorten it).
        #[arg(long, hide = true, default_value_t = HEARTBEAT_PERIOD.as_millis() as u64,
              value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
        heartbeat_ms: u64,
        /// Reply timeout per try in milliseconds (the spec's 1000; 3 sends in all).
        #[arg(long, hide = true, default_value_t = REQUEST_RETRY.timeout.as_millis() as u64,
              value_parser = clap::value_parser!(u64).range(10..=60_000))]
        request_timeout_ms: u64,
        /// How often to check that the server still knows this client, in milliseconds.
        #[arg(long, hide = true, default_value_t = RECHECK.as_millis() as u64,
              value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
        recheck_ms: u64,
    },
}

pub fn run(args: Args) -> ExitCode {
    match args.role {
        Role::Server {
            port,
            credentials,
            common,
            inactivity_ms,
        } => {
            if let Err(code) = trace::start_from_cli(common.trace.as_deref(), "bittrickle-server") {
                return code;
            }
            let addr = SocketAddr::new(common.bind, port);
            run_server(addr, credentials, Duration::from_millis(inactivity_ms))
        }
        Role::Client {
            server_port,
            server_host,
            common,
            heartbeat_ms,
            request_timeout_ms,
            recheck_ms,
        } => {
            let server = match tcp::resolve_host(&server_host, server_port) {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("error: --server-host {server_host}: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Err(code) = trace::start_from_cli(common.trace.as_deref(), "bittrickle-client") {
                return code;
            }
            let timing = Timing {
                heartbeat: Duration::from_millis(heartbeat_ms),
                timeout: Duration::from_millis(request_timeout_ms),
                recheck: Duration::from_millis(recheck_ms),
            };
            run_client(server, common.bind, timing)
        }
    }
}

fn run_server(addr: SocketAddr, path: Option<PathBuf>, inactivity: Duration) -> ExitCode {
    let port = addr.port();
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
    let socket = match udp_rpc::bind(addr) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot bind UDP {}:{port}: {e}", addr.ip());
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

/// The client's timings (the spec's by default).
struct Timing {
    heartbeat: Duration,
    timeout: Duration,
    recheck: Duration,
}

fn run_client(server: SocketAddr, bind: IpAddr, timing: Timing) -> ExitCode {
    let Timing {
        heartbeat,
        timeout,
        recheck,
    } = timing;
    let dir = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: cannot read the current directory: {e}");
            return ExitCode::from(1);
        }
    };
    let socket = match std::net::UdpSocket::bind(SocketAddr::new(bind, 0)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot bind a UDP socket: {e}");
            return ExitCode::from(1);
        }
    };
    let listener = match tcp::bind(SocketAddr::new(bind, 0)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot bind the TCP upload listener: {e}");
            return ExitCode::from(1);
        }
    };
    let shutdown = Shutdown::new();
    let _ = shutdown.trigger_on_ctrl_c();
    let config = ClientConfig {
        server,
        heartbeat,
        retry: Retry {
            timeout,
            sends: REQUEST_RETRY.sends,
        },
        dir,
        recheck,
    };
    match client::run(config, socket, listener, &shutdown) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: the client stopped: {e}");
            ExitCode::from(1)
        }
    }
}
