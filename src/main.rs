//! `peershare <system> <role> [spec args]` and `peershare demo`: parse the command line, call the
//! library, turn its result into an exit code. Nothing else lives here.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "peershare",
    version,
    about = "Five course P2P file-sharing systems on one core",
    arg_required_else_help = true,
    subcommand_required = true
)]
struct Cli {
    #[command(subcommand)]
    system: System,
}

#[derive(Subcommand)]
enum System {
    /// P2PTracker++: text-over-TCP tracker and chunk-gathering clients.
    #[command(name = "p2ptracker")]
    P2pTracker(peershare::p2ptracker::cli::Args),
    /// BitTrickle: UDP indexing server with logins and heartbeats; peers download over TCP.
    #[command(name = "bittrickle")]
    BitTrickle(peershare::bittrickle::cli::Args),
    /// FileApp ("Bootleg BitTorrent"): UDP table server and TCP-sharing clients.
    #[command(name = "fileapp")]
    FileApp(peershare::fileapp::cli::Args),
    /// Simple xFS: JSON-over-TCP tracker and nodes that fetch whole files by latency and load.
    #[command(name = "xfs")]
    Xfs(peershare::xfs::cli::Args),
    /// BitTorrent-Python: UDP tracker and nodes exchanging pickled dicts.
    #[command(name = "torrent")]
    Torrent(peershare::torrent::cli::Args),
    /// A whole P2PTracker++ swarm on 127.0.0.1 in one process.
    Demo(peershare::demo::Args),
}

/// Long flags the specs spell with one dash (`-folder`, `-node_id`); clap wants two.
const SINGLE_DASH_LONG: &[&str] = &["-folder", "-transfer_port", "-name", "-node_id"];

fn normalize(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    args.map(|a| match a.to_str() {
        Some(s)
            if SINGLE_DASH_LONG
                .iter()
                .any(|f| s == *f || s.starts_with(&format!("{f}="))) =>
        {
            format!("-{s}").into()
        }
        _ => a,
    })
    .collect()
}

/// Role words of the long-running servers, which log at `info` by default (every listener says
/// `listening on <addr>`). Interactive roles (clients, nodes, the demo) default to `warn`, so
/// `INFO` lines do not land inside their prompts. `RUST_LOG` overrides both.
const SERVER_ROLES: &[&str] = &["tracker", "server", "-s", "--server"];

fn default_log_level(args: &[std::ffi::OsString]) -> &'static str {
    let role = args.iter().skip(1).take(2).filter_map(|a| a.to_str());
    if role
        .into_iter()
        .any(|w| SERVER_ROLES.contains(&w) || w.starts_with("--server="))
    {
        "info"
    } else {
        "warn"
    }
}

fn main() -> ExitCode {
    let args = normalize(std::env::args_os());
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or(default_log_level(&args)),
    )
    .format_timestamp_millis()
    .init();
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        // clap's whole message: what is missing or wrong, the usage line, the `--help` tip and
        // "did you mean" for a misspelt command; help and version go to stdout with exit 0,
        // usage errors to stderr with exit 2.
        Err(e) => e.exit(),
    };
    match cli.system {
        System::P2pTracker(args) => peershare::p2ptracker::cli::run(args),
        System::BitTrickle(args) => peershare::bittrickle::cli::run(args),
        System::FileApp(args) => peershare::fileapp::cli::run(args),
        System::Xfs(args) => peershare::xfs::cli::run(args),
        System::Torrent(args) => peershare::torrent::cli::run(args),
        System::Demo(args) => peershare::demo::run(args),
    }
}
