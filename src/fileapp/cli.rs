//! Command line of `peershare fileapp`: `-s <port>` or
//! `-c <name> <server-ip> <server-port> <client-udp-port> <client-tcp-port>`.
//!
//! The arguments are echoed exactly as the original printed them before anything is checked,
//! then validated (`error: …`, exit 2), then the sockets are bound (exit 1 on failure).

use super::client::{self, ClientConfig, ClientError};
use super::server::{self, ServerConfig};
use crate::core::console::Console;
use crate::core::shutdown::Shutdown;
use crate::core::tcp;
use crate::core::trace;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["server", "client"])))]
pub struct Args {
    /// Run the server on this UDP port (0-65535; 0 lets the OS pick and logs the port).
    #[arg(short = 's', long = "server", value_name = "port")]
    pub server: Option<String>,
    /// Run a client: its name (no ',' or whitespace, at most 64 bytes), the server's host name or
    /// IP, the server's UDP port (1-65535), and this client's UDP and TCP ports (0-65535; 0 lets
    /// the OS pick).
    #[arg(
        short = 'c',
        long = "client",
        num_args = 5,
        value_names = ["name", "server-ip", "server-port", "client-udp-port", "client-tcp-port"]
    )]
    pub client: Option<Vec<String>>,
    /// The local IP every socket binds to: the server's UDP socket, a client's UDP and TCP
    /// sockets (use 0.0.0.0 or a LAN address for several hosts).
    #[arg(long = "bind", value_name = "ip", default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Append one JSON line per message sent or received and per file transfer to FILE (see
    /// `peershare diagram`).
    #[arg(long = "trace", value_name = "FILE")]
    pub trace: Option<PathBuf>,
}

const RULE: &str = "===============";

/// Longest client name accepted on the command line.
const MAX_NAME_BYTES: usize = 64;

fn usage(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

/// A port in `min`-65535 (0 = let the OS pick, allowed where we listen).
fn port(which: &str, text: &str, min: u16) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(p) if p >= min => Ok(p),
        _ => Err(format!(
            "{which} must be a port number {min}-65535, not {text:?}"
        )),
    }
}

/// Checks a client name: non-empty, at most 64 bytes, no `,` and no whitespace.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        Err("client name must not be empty".into())
    } else if name.contains(',') || name.chars().any(char::is_whitespace) {
        Err("client name must not contain ',' or whitespace".into())
    } else if name.len() > MAX_NAME_BYTES {
        Err(format!(
            "client name must be at most {MAX_NAME_BYTES} bytes"
        ))
    } else {
        Ok(())
    }
}

pub fn run(args: Args) -> ExitCode {
    let label = match &args.client {
        Some(c) => format!("fileapp-client-{}", c.first().map_or("", |n| n.as_str())),
        None => "fileapp-server".to_string(),
    };
    if let Err(code) = trace::start_from_cli(args.trace.as_deref(), &label) {
        return code;
    }
    match (args.server, args.client) {
        (Some(p), _) => {
            println!("{RULE}\nPrinting args:\nserver True\nclient False\nport {p}\n{RULE}");
            run_server(&p, args.bind)
        }
        (None, Some(c)) if c.len() == 5 => {
            println!(
                "{RULE}\nPrinting args:\nserver False\nclient True\nname {}\nserver-ip {}\nserver-port {}\nclient-udp-port {}\nclient-tcp-port {}\n{RULE}",
                c[0], c[1], c[2], c[3], c[4]
            );
            run_client(&c, args.bind)
        }
        _ => usage("give -s <port> or -c <name> <server-ip> <server-port> <client-udp-port> <client-tcp-port>"),
    }
}

fn run_server(port_text: &str, bind: IpAddr) -> ExitCode {
    let p = match port("port", port_text, 0) {
        Ok(p) => p,
        Err(e) => return usage(&e),
    };
    let socket = match UdpSocket::bind(SocketAddr::new(bind, p)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot bind UDP port {p}: {e}");
            return ExitCode::from(1);
        }
    };
    if let Ok(a) = socket.local_addr() {
        log::info!("listening on {a}");
    }
    let shutdown = Shutdown::new();
    let _ = shutdown.trigger_on_ctrl_c();
    match server::run(ServerConfig::default(), socket, &shutdown) {
        Ok(()) => {
            println!("Server terminated.");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: the server stopped: {e}");
            ExitCode::from(1)
        }
    }
}

/// `c` holds name, server-ip (a host name or IP), server-port, client-udp-port, client-tcp-port.
fn run_client(c: &[String], bind: IpAddr) -> ExitCode {
    let [name, ip, sport, uport, tport] = c else {
        return usage("-c takes five values");
    };
    if let Err(e) = check_name(name) {
        return usage(&e);
    }
    let ports = (
        port("server-port", sport, 1),
        port("client-udp-port", uport, 0),
        port("client-tcp-port", tport, 0),
    );
    let (sport, uport, tport) = match ports {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return usage(&e),
    };
    let server = match tcp::resolve_host(ip, sport) {
        Ok(a) => a,
        Err(e) => {
            return usage(&format!(
                "server-ip must be a host name or IP address, not {ip:?} ({e})"
            ))
        }
    };
    let udp = match UdpSocket::bind(SocketAddr::new(bind, uport)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot bind UDP port {uport}: {e}");
            return ExitCode::from(1);
        }
    };
    if let Ok(a) = udp.local_addr() {
        log::info!("listening on {a}");
    }
    let listener = match tcp::bind(SocketAddr::new(bind, tport)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot bind TCP port {tport}: {e}");
            return ExitCode::from(1);
        }
    };
    let shutdown = Shutdown::new();
    let _ = shutdown.trigger_on_ctrl_c();
    let console = match Console::start() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot read the console: {e}");
            return ExitCode::from(1);
        }
    };
    let config = ClientConfig::new(name, server);
    match client::run(config, udp, listener, &console, &shutdown) {
        Ok(()) => ExitCode::SUCCESS,
        Err(ClientError::Rejected | ClientError::NoServer) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_checked_against_their_range() {
        assert_eq!(port("port", "0", 0), Ok(0));
        assert_eq!(
            port("server-port", "0", 1).unwrap_err(),
            "server-port must be a port number 1-65535, not \"0\""
        );
        assert!(port("client-udp-port", "65536", 0).is_err());
        assert!(port("client-udp-port", "-1", 0).is_err());
        assert_eq!(port("client-tcp-port", "65535", 0), Ok(65535));
    }

    #[test]
    fn names_with_commas_whitespace_or_too_long_are_refused() {
        assert!(check_name("alice").is_ok());
        assert_eq!(
            check_name("a,b").unwrap_err(),
            "client name must not contain ',' or whitespace"
        );
        assert!(check_name("a b").is_err());
        assert!(check_name("").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
        assert!(check_name(&"x".repeat(64)).is_ok());
    }
}
