//! The BitTrickle rubric (issue 12): eleven tests of 10 points from the spec's commands, run
//! against any implementation, with peershare playing the other roles.
//!
//! | id | what it checks | how |
//! |---|---|---|
//! | `auth 1` | wrong password, unknown user, already-active user get the exact replies | raw UDP `login` |
//! | `auth 2` | a good login is welcomed | raw UDP `login` → `Welcome to BitTrickle!` |
//! | `heartbeat 1` | the server expires a silent user after 3 s and keeps a heartbeating one; the client heartbeats every 2 s | raw UDP `lap` before and after; peershare's server logs the client's `HBT`s |
//! | `lap 1`, `pub 1`, `lpf 1`, `sch 1`, `unp 1` | each command's exact replies | raw UDP |
//! | `get 1` | a file lands byte-identical from another client | two copies of the client against peershare's server |
//! | `xit 1` | `xit` prints the spec's lines and exits 0 | the client |
//! | `concurrency 1` | the client's uploader serves five downloads at once | five raw TCP downloads started together |
//!
//! Server tests (`auth`, `heartbeat` server half, `lap`…`unp`) send raw datagrams to the
//! submission's server, with a `credentials.txt` the grader writes into its cwd, and compare the
//! replies byte for byte (the spec fixes them, `❌` included). Client tests run the submission's
//! client against peershare's own server, typing at its prompts and reading its stdout, its files
//! and the server's log. Choices where the spec is loose: a server is ready once its banner is out
//! (or 1 s after start); a client heartbeats "every 2 s" if the server logged at least two of its
//! `HBT`s 1.5–2.5 s apart within 5 s of login; `heartbeat 1` needs both halves, so it fails when
//! either program is missing; tests of a role whose program was not given fail saying so.

mod client;
mod server;

use super::report::{Report, TestResult};
use super::runner::{self, CommandLine};
use super::{Abort, Context, ServerClientArgs};
use std::path::Path;
use std::time::Instant;

/// The users every grading's `credentials.txt` holds.
pub const CREDENTIALS: &str = "hans falcon*solo\nyoda wise@!man\nleia $blasterpistol$\n";

/// What is being graded: the two programs (either may be absent; its tests then fail saying so).
pub type Subject = super::ServerClient;

/// The subject the arguments describe, or the usage error.
pub fn subject(a: &ServerClientArgs, exe: &Path) -> Result<Subject, String> {
    super::server_client(
        a,
        exe,
        ["server.py", "client.py"],
        [&["bittrickle", "server"], &["bittrickle", "client"]],
    )
}

/// One side's half of `heartbeat 1`: whether it held, and its evidence.
type Half = (bool, Vec<String>);

/// A part's tests and its half of `heartbeat 1`.
type Part = (Vec<TestResult>, Half);

const HEARTBEAT: &str =
    "heartbeat 1: silent users expire after 3 s; the client heartbeats every 2 s";

/// Runs the rubric: the server tests, then the client tests; `heartbeat 1` joins a half of each.
pub fn grade(subject: &Subject, cx: &Context) -> Result<Report, Abort> {
    let start = Instant::now();
    let mut report = Report::default();
    let mut halves: Vec<Half> = Vec::new();
    match &subject.server {
        Some(s) => {
            report.notes.push(format!("server: {s}"));
            let (tests, half) = server::part(s, cx)?;
            report.tests.extend(tests);
            halves.push(half);
        }
        None => {
            report.tests.extend(super::not_given(server::IDS, "server"));
            halves.push((false, vec!["no server program was given".into()]));
        }
    }
    match &subject.client {
        Some(c) => {
            report.notes.push(format!("client: {c}"));
            let (tests, half) = client::part(c, cx)?;
            report.tests.extend(tests);
            halves.push(half);
        }
        None => {
            report.tests.extend(super::not_given(client::IDS, "client"));
            halves.push((false, vec!["no client program was given".into()]));
        }
    }
    let passed = halves.iter().all(|(ok, _)| *ok);
    let evidence = halves.into_iter().flat_map(|(_, e)| e).collect();
    report
        .tests
        .insert(2, TestResult::new(HEARTBEAT, 10.0, passed, evidence));
    report.elapsed = start.elapsed();
    Ok(report)
}

/// Starts a server program on `port` in `dir` (with `credentials.txt` written there); ready
/// when its banner is out or 1 s (scaled) has passed; its evidence if it ended first.
fn start_server(
    label: &str,
    command: &CommandLine,
    port: u16,
    dir: &Path,
    cx: &Context,
) -> Result<Result<runner::Proc, Vec<String>>, Abort> {
    std::fs::write(dir.join("credentials.txt"), CREDENTIALS)?;
    let mut p = runner::Proc::spawn(label, &command.with(&[port.to_string()]), dir)?;
    p.interrupt_first();
    let out = p.stdout.clone();
    let banner = format!(":{port}");
    let shutdown = cx.shutdown.clone();
    runner::wait_until(cx.timeouts.secs(1.0), &shutdown, || {
        out.text().contains(&banner) || p.exited().is_some()
    });
    cx.check_interrupt()?;
    // Some servers print the banner just before they bind.
    cx.shutdown.sleep(cx.timeouts.secs(0.3));
    if p.exited().is_some() {
        return Ok(Err(p.evidence()));
    }
    Ok(Ok(p))
}
