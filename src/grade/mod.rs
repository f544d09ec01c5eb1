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
//! - [`fileapp`], [`bittrickle`], [`torrent`], [`xfs`]: the other four rubrics, on the same
//!   runner and report ([`run_system`] is their shared command line).

pub mod batch;
pub mod bittrickle;
pub mod fileapp;
pub mod p2ptracker;
pub mod report;
pub mod runner;
pub mod torrent;
pub mod udp;
pub mod xfs;

use self::p2ptracker::{Part, Subject};
use self::report::Report;
use self::runner::{CommandLine, PortBusy, Timeouts};
use crate::core::shutdown::Shutdown;
use clap::{Parser, Subcommand};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// How to grade.
#[derive(Clone)]
pub struct Context {
    pub timeouts: Timeouts,
    pub shutdown: Shutdown,
    /// The peershare binary, whose clients grade a tracker.
    pub peershare: PathBuf,
    /// Progress lines on stderr.
    pub progress: bool,
}

impl Context {
    /// A `grading: …` progress line on stderr, when progress lines were asked for.
    pub fn say(&self, what: &str) {
        if self.progress {
            eprintln!("grading: {what}");
        }
    }

    /// `Err(Abort::Interrupted)` once Ctrl-C has reached the grader.
    pub fn check_interrupt(&self) -> Result<(), Abort> {
        if self.shutdown.is_triggered() {
            Err(Abort::Interrupted)
        } else {
            Ok(())
        }
    }
}

/// The programs of a server-and-clients system (FileApp, BitTrickle); either may be absent.
#[derive(Debug, Clone)]
pub struct ServerClient {
    pub server: Option<CommandLine>,
    pub client: Option<CommandLine>,
}

/// The server and client `a` describes: `files` are the submission's file names (lower case),
/// `own` what `--self` runs.
pub fn server_client(
    a: &ServerClientArgs,
    exe: &Path,
    files: [&str; 2],
    own: [&[&str]; 2],
) -> Result<ServerClient, String> {
    let p = programs(
        &a.submission,
        a.common.self_test,
        [
            ("--server-cmd", &a.server_cmd, files[0]),
            ("--client-cmd", &a.client_cmd, files[1]),
        ],
        own,
        exe,
    )?;
    Ok(ServerClient {
        server: p.first,
        client: p.second,
    })
}

/// Runs `part` for a role's program and adds its results (and a note naming the program) to
/// `report`; a program not given fails the role's tests (`ids`), saying so.
pub fn role_part(
    report: &mut Report,
    role: &str,
    program: Option<&CommandLine>,
    ids: &[&str],
    part: impl FnOnce(&CommandLine) -> Result<Vec<report::TestResult>, Abort>,
) -> Result<(), Abort> {
    match program {
        Some(p) => {
            report.notes.push(format!("{role}: {p}"));
            report.tests.extend(part(p)?);
        }
        None => report.tests.extend(not_given(ids, role)),
    }
    Ok(())
}

/// `len` bytes for a grader's test file, different per `seed` and not all ASCII, so a
/// text-mode copy or a piece from the wrong offset would show.
pub fn test_bytes(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(131).wrapping_add(seed) ^ (i >> 9)) as u8)
        .collect()
}

/// The tests of a role whose program was not given: failed, saying so.
pub fn not_given(ids: &[&str], role: &str) -> Vec<report::TestResult> {
    ids.iter()
        .map(|id| {
            report::TestResult::new(
                id,
                10.0,
                false,
                vec![format!("no {role} program was given")],
            )
        })
        .collect()
}

/// Why grading stopped before a score.
#[derive(Debug)]
pub enum Abort {
    PortBusy(PortBusy),
    Interrupted,
    Setup(io::Error),
}

impl fmt::Display for Abort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Abort::PortBusy(p) => {
                write!(f, "{p}; the spec fixes that port, so grading cannot go on")
            }
            Abort::Interrupted => write!(f, "interrupted"),
            Abort::Setup(e) => write!(f, "could not set up a test: {e}"),
        }
    }
}

impl std::error::Error for Abort {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Abort::Setup(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Abort {
    fn from(e: io::Error) -> Abort {
        Abort::Setup(e)
    }
}

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
    /// FileApp: registration, offer, list, transfer and dereg from its README's test plan.
    #[command(name = "fileapp")]
    FileApp(ServerClientArgs),
    /// BitTrickle: auth, heartbeat, every command and five downloads at once.
    #[command(name = "bittrickle")]
    BitTrickle(ServerClientArgs),
    /// BitTorrent-Python: the tracker's replies and ranking, the node's serving and downloads.
    #[command(name = "torrent")]
    Torrent(TrackerNodeArgs),
    /// Simple xFS: the README's test cases 1-11.
    #[command(name = "xfs")]
    Xfs(TrackerNodeArgs),
}

/// What every grader takes besides the programs.
#[derive(clap::Args, Debug, Clone)]
pub struct Common {
    /// Grade peershare's own programs.
    #[arg(long = "self")]
    pub self_test: bool,
    /// Also write Gradescope's results.json here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Stretch every deadline by this factor (0.1..=100).
    #[arg(long = "timeout-scale", default_value_t = 1.0, value_parser = parse_scale)]
    pub timeout_scale: f64,
}

/// A system of a server and interactive clients (FileApp, BitTrickle).
#[derive(clap::Args, Debug, Clone)]
pub struct ServerClientArgs {
    /// Folder holding the submission, with the assignment's file names.
    pub submission: Option<PathBuf>,
    /// Command line for the server instead of the submission's file.
    #[arg(long = "server-cmd")]
    pub server_cmd: Option<String>,
    /// Command line for a client instead of the submission's file.
    #[arg(long = "client-cmd")]
    pub client_cmd: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

/// A system of a tracker and nodes (BitTorrent-Python, Simple xFS).
#[derive(clap::Args, Debug, Clone)]
pub struct TrackerNodeArgs {
    /// Folder holding the submission, with the assignment's file names.
    pub submission: Option<PathBuf>,
    /// Command line for the tracker instead of the submission's file.
    #[arg(long = "tracker-cmd")]
    pub tracker_cmd: Option<String>,
    /// Command line for a node instead of the submission's file.
    #[arg(long = "node-cmd")]
    pub node_cmd: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

/// The two programs of a system, as the arguments name them: `--self` gives `own`,
/// an explicit command wins over the submission's file, and a missing one is `None`
/// (the system's grader says which tests that rules out).
pub struct Programs {
    pub first: Option<CommandLine>,
    pub second: Option<CommandLine>,
}

/// Resolves the two programs: `flags` are (flag name, its text, the submission's file name in
/// lower case); `own` is what `--self` runs, as peershare arguments.
pub fn programs(
    submission: &Option<PathBuf>,
    self_test: bool,
    flags: [(&str, &Option<String>, &str); 2],
    own: [&[&str]; 2],
    exe: &Path,
) -> Result<Programs, String> {
    let peershare = |args: &[&str]| CommandLine {
        program: exe.as_os_str().to_owned(),
        args: args.iter().map(Into::into).collect(),
    };
    if self_test {
        return Ok(Programs {
            first: Some(peershare(own[0])),
            second: Some(peershare(own[1])),
        });
    }
    let abs = match submission {
        None => None,
        Some(dir) if !dir.is_dir() => return Err(format!("{} is not a folder", dir.display())),
        Some(dir) => {
            Some(std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?)
        }
    };
    let mut out = [None, None];
    for (slot, (flag, text, file)) in out.iter_mut().zip(flags) {
        *slot = match text {
            Some(t) => {
                Some(CommandLine::parse(t).ok_or_else(|| format!("{flag} must name a program"))?)
            }
            None => abs
                .as_deref()
                .and_then(|d| find_file(d, file))
                .map(|p| CommandLine::python(&p)),
        };
    }
    let [first, second] = out;
    if first.is_none() && second.is_none() {
        let [(f1, _, n1), (f2, _, n2)] = flags;
        return Err(match submission {
            Some(d) => format!(
                "neither {n1} nor {n2} in {} (or give {f1}/{f2})",
                d.display()
            ),
            None => format!("give a submission folder, {f1}/{f2}, or --self"),
        });
    }
    Ok(Programs { first, second })
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
        GradeSystem::FileApp(a) => {
            run_system(&a.common, |exe| fileapp::subject(&a, exe), fileapp::grade)
        }
        GradeSystem::BitTrickle(a) => run_system(
            &a.common,
            |exe| bittrickle::subject(&a, exe),
            bittrickle::grade,
        ),
        GradeSystem::Torrent(a) => {
            run_system(&a.common, |exe| torrent::subject(&a, exe), torrent::grade)
        }
        GradeSystem::Xfs(a) => run_system(&a.common, |exe| xfs::subject(&a, exe), xfs::grade),
    }
}

/// The shared command line of the four server/tracker graders: find the binary, resolve the
/// subject (a usage error exits 2), grade, print the report, write `--json`, and exit 0 only
/// when every test passed.
pub fn run_system<S>(
    common: &Common,
    subject: impl FnOnce(&Path) -> Result<S, String>,
    grade: impl FnOnce(&S, &Context) -> Result<Report, Abort>,
) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot find the peershare binary: {e}");
            return ExitCode::from(1);
        }
    };
    let subject = match subject(&exe) {
        Ok(s) => s,
        Err(m) => return usage(&m),
    };
    let shutdown = Shutdown::new();
    if let Err(e) = shutdown.trigger_on_ctrl_c() {
        log::warn!("Ctrl-C handler not installed: {e}");
    }
    let cx = Context {
        timeouts: Timeouts {
            scale: common.timeout_scale,
        },
        shutdown,
        peershare: exe,
        progress: true,
    };
    finish(grade(&subject, &cx), common.json.as_deref())
}

/// Prints a grading's outcome and turns it into the exit code (0 all passed, 1 some failed,
/// 2 could not grade, 130 interrupted).
fn finish(outcome: Result<Report, Abort>, json: Option<&Path>) -> ExitCode {
    match outcome {
        Ok(report) => {
            print!("{}", report.render_text());
            if let Some(path) = json {
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
    finish(p2ptracker::grade(&subject, a.part, &cx), a.json.as_deref())
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
