//! Command line of `peershare p2ptracker`.

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> ExitCode {
    ExitCode::SUCCESS
}
