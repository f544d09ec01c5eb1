//! `peershare grade <system>`: run an implementation (any language) through its assignment's
//! published rubric, with peershare's own programs playing the other roles, and say what passed,
//! what failed and why, with the evidence.
//!
//! - [`runner`]: processes (own process group, cwd in a fresh temp dir, unbuffered Python),
//!   deadlines scaled by `--timeout-scale`, the spec's fixed port 5100.
//! - [`report`]: the text report and Gradescope's `results.json`.
//! - [`p2ptracker`]: the P2PTracker++ rubric, its scripted tracker and peers, and `--log`.
//! - [`batch`]: a class at once (`--batch`), each submission in its own network namespace
//!   when run as root.

pub mod batch;
pub mod p2ptracker;
pub mod report;
pub mod runner;

use self::p2ptracker::{Abort, Context, Part, Subject};
use self::runner::{CommandLine, Timeouts};
use crate::core::shutdown::Shutdown;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub system: GradeSystem,
}

#[derive(Subcommand, Debug)]
pub enum GradeSystem {
    /// P2PTracker++: tracker (20), client (30) and whole system (50) from the assignment's rubric.
    #[command(name = "p2ptracker")]
    P2pTracker(P2pArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct P2pArgs {
    /// Folder holding P2PTracker.py and P2PClient.py (names matched case-insensitively).
    pub submission: Option<PathBuf>,
    /// Command line for the tracker instead of `python3 -u P2PTracker.py`.
    #[arg(long = "tracker-cmd")]
    pub tracker_cmd: Option<String>,
    /// Command line for a client; the grader appends `-folder <abs> -transfer_port <p> -name <n>`.
    #[arg(long = "client-cmd")]
    pub client_cmd: Option<String>,
    /// Grade peershare's own tracker and client.
    #[arg(long = "self")]
    pub self_test: bool,
    /// Which part of the rubric to run.
    #[arg(long, value_enum, default_value = "all")]
    pub part: Part,
    /// Also write Gradescope's results.json here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Stretch every deadline by this factor (0.1..=100).
    #[arg(long = "timeout-scale", default_value_t = 1.0, value_parser = parse_scale)]
    pub timeout_scale: f64,
    /// Check an existing logs.log instead of running anything.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Grade every submission folder inside this folder.
    #[arg(long)]
    pub batch: Option<PathBuf>,
    /// Submissions graded at once with --batch (1..=32; needs root for more than 1).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=32))]
    pub jobs: u16,
    /// With --batch: write one row per submission here.
    #[arg(long)]
    pub csv: Option<PathBuf>,
}

fn parse_scale(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.1..=100.0).contains(&x) => Ok(x),
        _ => Err("must be a number in 0.1..=100".into()),
    }
}

/// The submission's file whose lowercased name is `wanted`, in `dir` or one level down
/// (Gradescope uploads often keep the student's folder).
pub fn find_file(dir: &Path, wanted: &str) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut subdirs = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            subdirs.push(path);
        } else if e.file_name().to_string_lossy().to_lowercase() == wanted {
            return Some(path);
        }
    }
    subdirs.sort();
    subdirs.iter().find_map(|d| {
        std::fs::read_dir(d).ok()?.flatten().find_map(|e| {
            (e.path().is_file() && e.file_name().to_string_lossy().to_lowercase() == wanted)
                .then(|| e.path())
        })
    })
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

pub fn run(args: Args) -> ExitCode {
    match args.system {
        GradeSystem::P2pTracker(a) => run_p2ptracker(a),
    }
}

/// The P2PTracker++ subject the arguments describe, or the usage error.
pub fn p2p_subject(a: &P2pArgs, exe: &Path) -> Result<Subject, String> {
    let peershare = |args: &[&str]| CommandLine {
        program: exe.as_os_str().to_owned(),
        args: args.iter().map(Into::into).collect(),
    };
    if a.self_test {
        return Ok(Subject {
            tracker: Some(peershare(&["p2ptracker", "tracker"])),
            client: Some(peershare(&["p2ptracker", "client", "--pace-ms", "0"])),
        });
    }
    let parse = |flag: &str, text: &Option<String>| -> Result<Option<CommandLine>, String> {
        match text {
            None => Ok(None),
            Some(t) => CommandLine::parse(t)
                .map(Some)
                .ok_or_else(|| format!("{flag} must name a program")),
        }
    };
    let mut tracker = parse("--tracker-cmd", &a.tracker_cmd)?;
    let mut client = parse("--client-cmd", &a.client_cmd)?;
    if let Some(dir) = &a.submission {
        if !dir.is_dir() {
            return Err(format!("{} is not a folder", dir.display()));
        }
        let abs = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if tracker.is_none() {
            tracker = find_file(&abs, "p2ptracker.py").map(|p| CommandLine::python(&p));
        }
        if client.is_none() {
            client = find_file(&abs, "p2pclient.py").map(|p| CommandLine::python(&p));
        }
    } else if tracker.is_none() && client.is_none() {
        return Err("give a submission folder, --tracker-cmd/--client-cmd, or --self".into());
    }
    let where_ = a
        .submission
        .as_ref()
        .map(|d| format!(" in {}", d.display()))
        .unwrap_or_default();
    let part = format!("{:?}", a.part).to_lowercase();
    if (a.part.tracker() || a.part.system()) && tracker.is_none() {
        return Err(format!(
            "no P2PTracker.py{where_} (needed for --part {part}; or give --tracker-cmd)"
        ));
    }
    if (a.part.client() || a.part.system()) && client.is_none() {
        return Err(format!(
            "no P2PClient.py{where_} (needed for --part {part}; or give --client-cmd)"
        ));
    }
    Ok(Subject { tracker, client })
}

fn run_p2ptracker(a: P2pArgs) -> ExitCode {
    if let Some(log) = &a.log {
        return check_log(log);
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot find the peershare binary: {e}");
            return ExitCode::from(1);
        }
    };
    let shutdown = Shutdown::new();
    if let Err(e) = shutdown.trigger_on_ctrl_c() {
        log::warn!("Ctrl-C handler not installed: {e}");
    }
    if let Some(dir) = &a.batch {
        return batch::run(&a, dir, &exe, &shutdown);
    }
    if a.csv.is_some() || a.jobs != 1 {
        return usage("--csv and --jobs go with --batch");
    }
    let subject = match p2p_subject(&a, &exe) {
        Ok(s) => s,
        Err(m) => return usage(&m),
    };
    let cx = Context {
        timeouts: Timeouts {
            scale: a.timeout_scale,
        },
        shutdown,
        peershare: exe,
        progress: true,
    };
    match p2ptracker::grade(&subject, a.part, &cx) {
        Ok(report) => {
            print!("{}", report.render_text());
            if let Some(path) = &a.json {
                if let Err(e) = std::fs::write(path, report.render_json()) {
                    eprintln!("error: cannot write {}: {e}", path.display());
                    return ExitCode::from(2);
                }
            }
            if report.all_passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(Abort::Interrupted) => {
            eprintln!("grading interrupted; every program it started has been ended");
            ExitCode::from(130)
        }
        Err(Abort::PortBusy(p)) => usage(&format!(
            "{p}; the spec fixes that port, so nothing can be graded until it is free"
        )),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn check_log(path: &Path) -> ExitCode {
    let text = match std::fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => return usage(&format!("cannot read {}: {e}", path.display())),
    };
    let c = p2ptracker::logs::check(&text);
    println!(
        "{}: {} lines ({} well-formed, {} debug lines), {} problem{}",
        path.display(),
        c.lines,
        c.well_formed,
        c.debug,
        c.problems.len(),
        if c.problems.len() == 1 { "" } else { "s" }
    );
    for p in &c.problems {
        println!("  {p}");
    }
    if c.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
