//! A class at once: `--batch <folder of submission folders> [--jobs N] [--csv grades.csv]`.
//!
//! Each submission is graded by a child `peershare grade p2ptracker <folder> --json …`, so one
//! submission's stray processes or a crash of its grading cannot touch another's. The spec fixes
//! 127.0.0.1:5100, so two submissions can only run at once in separate network namespaces: as
//! root each child runs under `ip netns exec` in its own namespace (loopback up, nothing else),
//! up to `--jobs` at a time; otherwise one at a time, and the grader says why.
//!
//! Output next to the CSV (or in the current folder): `<name>.results.json` and `<name>.txt`
//! per submission; the CSV has `name,score,<test id>…,note`.

use super::p2ptracker::RUBRIC;
use super::runner::{CommandLine, Proc, Timeouts};
use super::P2pArgs;
use crate::core::pyjson::{self, Json};
use crate::core::shutdown::Shutdown;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// A network namespace with loopback up, deleted on drop.
pub struct Namespace {
    pub name: String,
}

impl Namespace {
    pub fn create(name: &str) -> io::Result<Namespace> {
        ip(&["netns", "add", name])?;
        let ns = Namespace {
            name: name.to_string(),
        };
        ip(&["-n", name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// `cmd` run inside this namespace.
    pub fn wrap(&self, cmd: &CommandLine) -> CommandLine {
        let mut args: Vec<std::ffi::OsString> = vec![
            "netns".into(),
            "exec".into(),
            self.name.clone().into(),
            cmd.program.clone(),
        ];
        args.extend(cmd.args.iter().cloned());
        CommandLine {
            program: "ip".into(),
            args,
        }
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

fn ip(args: &[&str]) -> io::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Whether submissions can get their own namespaces here: root, and `ip netns` works.
pub fn namespaces_available() -> Result<(), String> {
    if !rustix::process::geteuid().is_root() {
        return Err("not running as root, so submissions cannot get their own network namespaces and share 127.0.0.1:5100".into());
    }
    let probe = format!("psg-probe-{}", std::process::id());
    Namespace::create(&probe)
        .map(drop)
        .map_err(|e| format!("network namespaces unavailable ({e})"))
}

/// One graded submission.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: String,
    pub score: f64,
    /// Points per test id (`tracker 1` …), as the child's JSON gave them.
    pub points: Vec<(String, f64)>,
    pub note: String,
}

/// Reads a child's results.json into a row.
pub fn row_from_json(name: &str, text: &str) -> Option<Row> {
    let v = pyjson::parse(text.as_bytes(), 16).ok()?;
    let num = |j: Option<&Json>| match j {
        Some(Json::Number(t)) => t.parse::<f64>().ok(),
        _ => None,
    };
    let score = num(v.get("score"))?;
    let Some(Json::Array(tests)) = v.get("tests") else {
        return None;
    };
    let points = tests
        .iter()
        .filter_map(|t| {
            let Some(Json::String(n)) = t.get("name") else {
                return None;
            };
            let id = n.split(':').next().unwrap_or(n).to_string();
            Some((id, num(t.get("score"))?))
        })
        .collect();
    Some(Row {
        name: name.to_string(),
        score,
        points,
        note: String::new(),
    })
}

/// The CSV text: header, then one row per submission.
pub fn render_csv(rows: &[Row]) -> String {
    let ids: Vec<&str> = RUBRIC
        .iter()
        .map(|(n, _)| n.split(':').next().unwrap_or(n))
        .collect();
    let mut out = String::from("name,score");
    for id in &ids {
        let _ = write!(out, ",{id}");
    }
    out.push_str(",note\n");
    let field = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    for r in rows {
        let _ = write!(out, "{},{}", field(&r.name), r.score);
        for id in &ids {
            match r.points.iter().find(|(i, _)| i == id) {
                Some((_, p)) => {
                    let _ = write!(out, ",{p}");
                }
                None => out.push(','),
            }
        }
        let _ = writeln!(out, ",{}", field(&r.note));
    }
    out
}

/// The submission folders inside `dir`, sorted, or why there are none.
fn submissions(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read --batch {}: {e}", dir.display()))?;
    let mut subs: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    subs.sort();
    if subs.is_empty() {
        return Err(format!(
            "--batch {} holds no submission folders",
            dir.display()
        ));
    }
    Ok(subs)
}

/// Grades `subs` on `jobs` named worker threads (joined by the scope), each taking the next
/// submission until none is left or Ctrl-C came; the rows in the order they finished.
fn grade_all(
    subs: Vec<PathBuf>,
    jobs: usize,
    grade: impl Fn(usize, &Path) -> Row + Sync,
    shutdown: &Shutdown,
) -> Vec<Row> {
    let queue = Mutex::new(subs.into_iter().enumerate().collect::<Vec<_>>());
    let rows = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for w in 0..jobs {
            let (queue, rows, grade) = (&queue, &rows, &grade);
            let spawned = std::thread::Builder::new()
                .name(format!("grade-batch-{w}"))
                .spawn_scoped(s, move || loop {
                    let next = queue.lock().ok().and_then(|mut q| q.pop());
                    let Some((k, sub)) = next else { break };
                    if shutdown.is_triggered() {
                        break;
                    }
                    let row = grade(k, &sub);
                    eprintln!("graded {}: {}", row.name, row.score);
                    if let Ok(mut r) = rows.lock() {
                        r.push(row);
                    }
                });
            if let Err(e) = spawned {
                eprintln!("warning: cannot start a batch worker: {e}");
            }
        }
    });
    rows.into_inner().unwrap_or_default()
}

pub fn run(a: &P2pArgs, dir: &Path, exe: &Path, shutdown: &Shutdown) -> ExitCode {
    let subs = match submissions(dir) {
        Ok(s) => s,
        Err(why) => {
            eprintln!("error: {why}");
            return ExitCode::from(2);
        }
    };
    let out_dir = a
        .csv
        .as_ref()
        .and_then(|c| c.parent().map(Path::to_path_buf))
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let out_dir = std::fs::canonicalize(&out_dir).unwrap_or(out_dir);
    let isolated = match namespaces_available() {
        Ok(()) => true,
        Err(why) => {
            eprintln!("grading one submission at a time: {why}");
            false
        }
    };
    let jobs = if isolated { a.jobs as usize } else { 1 };
    let rows = grade_all(
        subs,
        jobs,
        |k, sub| grade_one(a, sub, k, exe, &out_dir, isolated, shutdown),
        shutdown,
    );
    let mut rows = rows;
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    let csv = render_csv(&rows);
    print!("{csv}");
    if let Some(path) = &a.csv {
        if let Err(e) = std::fs::write(path, &csv) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if shutdown.is_triggered() {
        eprintln!("grading interrupted; every program it started has been ended");
        return ExitCode::from(130);
    }
    ExitCode::SUCCESS
}

/// `peershare grade p2ptracker SUB --json JSON` with the batch's scale and part.
fn grader_command(a: &P2pArgs, exe: &Path, sub: &Path, json: &Path) -> CommandLine {
    CommandLine {
        program: exe.as_os_str().to_owned(),
        args: vec![],
    }
    .with(&["grade", "p2ptracker"])
    .with(&[sub.as_os_str(), "--json".as_ref(), json.as_os_str()])
    .with(&[
        "--timeout-scale".to_string(),
        a.timeout_scale.to_string(),
        "--part".to_string(),
        format!("{:?}", a.part).to_lowercase(),
    ])
}

fn grade_one(
    a: &P2pArgs,
    sub: &Path,
    k: usize,
    exe: &Path,
    out_dir: &Path,
    isolated: bool,
    shutdown: &Shutdown,
) -> Row {
    let name = sub
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("submission-{k}"));
    let json = out_dir.join(format!("{name}.results.json"));
    let _ = std::fs::remove_file(&json);
    let mut cmd = grader_command(a, exe, sub, &json);
    let failed = |note: String| Row {
        name: name.clone(),
        score: 0.0,
        points: vec![],
        note,
    };
    let ns = if isolated {
        match Namespace::create(&format!("psg-{}-{k}", std::process::id())) {
            Ok(ns) => {
                cmd = ns.wrap(&cmd);
                Some(ns)
            }
            Err(e) => return failed(format!("no namespace: {e}")),
        }
    } else {
        None
    };
    let mut child = match Proc::spawn(&format!("grader for {name}"), &cmd, out_dir) {
        Ok(p) => p,
        Err(e) => return failed(format!("cannot start the grader: {e}")),
    };
    // The child grader ends its own programs on SIGINT; give it that chance before the group
    // is killed.
    child.interrupt_first();
    let limit = Timeouts {
        scale: a.timeout_scale,
    }
    .secs(900.0);
    let status = child.wait_exit(limit, shutdown);
    // Let the reader threads drain the last lines.
    std::thread::sleep(Duration::from_millis(100));
    let text = child.stdout.text();
    let _ = std::fs::write(out_dir.join(format!("{name}.txt")), &text);
    let err = child.stderr.last_lines(3).join(" / ");
    drop(child);
    drop(ns);
    let row = std::fs::read_to_string(&json)
        .ok()
        .and_then(|t| row_from_json(&name, &t));
    match (row, status) {
        (Some(r), _) => r,
        (None, None) => failed(format!(
            "grading did not finish within {:.0} s",
            limit.as_secs_f64()
        )),
        (None, Some(s)) => failed(format!(
            "grading ended with {} and no results: {err}",
            super::runner::describe_status(s)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_a_column_per_rubric_test_and_quotes_awkward_names() {
        let json = "{\"score\": 7.5, \"tests\": [{\"name\": \"tracker 1: x\", \"score\": 5.0}, {\"name\": \"client 1: y\", \"score\": 2.5}]}";
        let mut r = row_from_json("ann, b", json).unwrap();
        r.note = "ok".into();
        let csv = render_csv(&[r]);
        let mut lines = csv.lines();
        let header = lines.next().unwrap();
        assert!(
            header.starts_with("name,score,tracker 1,tracker 2,"),
            "{header}"
        );
        assert!(header.ends_with(",system 7,note"), "{header}");
        let row = lines.next().unwrap();
        assert!(row.starts_with("\"ann, b\",7.5,5,,,,2.5,"), "{row}");
        assert_eq!(
            row.split(',').count(),
            header.split(',').count() + 1,
            "{row}"
        );
    }
}
