//! `peershare diagram FILE... [-o out.html] [--mermaid] [--threads]`: draws what a run did as a
//! sequence diagram, one lifeline per process (per thread with `--threads`), one arrow per
//! message, data transfers apart with their sizes, failures marked.
//!
//! Inputs are `--trace` files (see `core::trace` for the schema) and P2PTracker++ `logs.log`
//! files, in any mix: trace events from every trace file are merged by time; `logs.log` lines
//! have no times, so they follow in argument order, after the trace events, each file in its own
//! order (give the tracker's and the clients' files of one run together when they are apart).
//! Lines that cannot be read are reported on stderr with their file and line number and skipped.
//!
//! - [`read`]: lines to events (pure).
//! - [`model`]: events to lifelines and rows, receivers inferred, repeats collapsed (pure).
//! - [`render_html`], [`render_mermaid`]: the two outputs (pure).
//!
//! Choices the issue left open: the page goes to `-o`, by default next to the first input with
//! the extension `.html`; `--mermaid` prints Mermaid on stdout (and writes the page only when
//! `-o` is given); repeats are collapsed only in diagrams of more than [`COLLAPSE_ABOVE`] rows,
//! so a small run shows every message.

pub mod model;
pub mod read;
pub mod render_html;
pub mod render_mermaid;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Diagrams with more rows than this have their repeated blocks collapsed with a count.
pub const COLLAPSE_ABOVE: usize = 500;
/// Malformed lines listed one by one on stderr before the rest are counted.
const MAX_PROBLEMS_SHOWN: usize = 20;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Trace files (`--trace`) and/or P2PTracker++ logs.log files.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Where to write the HTML page (default: the first FILE with the extension .html).
    #[arg(short = 'o', long = "output", value_name = "out.html")]
    pub output: Option<PathBuf>,
    /// Print a Mermaid sequenceDiagram on stdout (write HTML too only when -o is given).
    #[arg(long)]
    pub mermaid: bool,
    /// Most rows in the Mermaid output; the rest are counted in a note.
    #[arg(long = "mermaid-cap", default_value_t = render_mermaid::DEFAULT_CAP as u64,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub mermaid_cap: u64,
    /// One lifeline per thread instead of per process.
    #[arg(long)]
    pub threads: bool,
}

/// Why no diagram was made.
#[derive(Debug)]
pub enum DiagramError {
    Read(PathBuf, io::Error),
    Write(PathBuf, io::Error),
    /// Nothing drawable in any input.
    Empty,
}

impl fmt::Display for DiagramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiagramError::Read(p, e) => write!(f, "cannot read {}: {e}", p.display()),
            DiagramError::Write(p, e) => write!(f, "cannot write {}: {e}", p.display()),
            DiagramError::Empty => write!(f, "no message, transfer or failure found in the input"),
        }
    }
}

impl std::error::Error for DiagramError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DiagramError::Read(_, e) | DiagramError::Write(_, e) => Some(e),
            DiagramError::Empty => None,
        }
    }
}

/// A diagram built from files, with the lines that were skipped.
pub struct Loaded {
    pub diagram: model::Diagram,
    pub problems: Vec<read::Problem>,
    pub title: String,
}

/// Reads every file and builds the (collapsed where long) diagram.
pub fn load(files: &[PathBuf], threads: bool) -> Result<Loaded, DiagramError> {
    let mut trace = Vec::new();
    let mut log = Vec::new();
    let mut problems = Vec::new();
    for path in files {
        let bytes = std::fs::read(path).map_err(|e| DiagramError::Read(path.clone(), e))?;
        let parsed = read::parse_file(&path.display().to_string(), &bytes);
        trace.extend(parsed.trace);
        log.extend(parsed.log);
        problems.extend(parsed.problems);
    }
    let diagram = model::collapse(model::build(trace, &log, threads), COLLAPSE_ABOVE);
    if diagram.items.is_empty() {
        return Err(DiagramError::Empty);
    }
    let names: Vec<String> = files
        .iter()
        .map(|p| {
            p.file_name()
                .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into())
        })
        .collect();
    Ok(Loaded {
        diagram,
        problems,
        title: format!("peershare diagram: {}", names.join(", ")),
    })
}

/// Writes the HTML page of `files` to `out`; returns what was loaded (for its counts and
/// problems).
pub fn write_html(files: &[PathBuf], out: &Path, threads: bool) -> Result<Loaded, DiagramError> {
    let loaded = load(files, threads)?;
    let html = render_html::render(&loaded.diagram, &loaded.title, loaded.problems.len());
    std::fs::write(out, html).map_err(|e| DiagramError::Write(out.to_path_buf(), e))?;
    Ok(loaded)
}

/// The default page path: the first input with the extension `.html` (never the input itself).
pub fn default_output(first: &Path) -> PathBuf {
    let out = first.with_extension("html");
    if out == first {
        first.with_extension("diagram.html")
    } else {
        out
    }
}

fn report_problems(problems: &[read::Problem]) {
    for p in problems.iter().take(MAX_PROBLEMS_SHOWN) {
        eprintln!("warning: {p}");
    }
    if problems.len() > MAX_PROBLEMS_SHOWN {
        eprintln!(
            "warning: {} more malformed lines skipped",
            problems.len() - MAX_PROBLEMS_SHOWN
        );
    }
}

fn diagram(args: &Args) -> Result<(), DiagramError> {
    let loaded = load(&args.files, args.threads)?;
    report_problems(&loaded.problems);
    let d = &loaded.diagram;
    if args.mermaid {
        print!("{}", render_mermaid::render(d, args.mermaid_cap as usize));
    }
    let out = match (&args.output, args.mermaid) {
        (Some(o), _) => o.clone(),
        (None, true) => return Ok(()),
        (None, false) => default_output(&args.files[0]),
    };
    let html = render_html::render(d, &loaded.title, loaded.problems.len());
    std::fs::write(&out, html).map_err(|e| DiagramError::Write(out.clone(), e))?;
    let line = format!(
        "diagram: {} lifelines, {} events, written to {}",
        d.lifelines.len(),
        d.event_count(),
        out.display()
    );
    if args.mermaid {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
    Ok(())
}

pub fn run(args: Args) -> ExitCode {
    match diagram(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
