//! `peershare demo`: a whole P2PTracker++ swarm on loopback.

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> ExitCode {
    ExitCode::SUCCESS
}
