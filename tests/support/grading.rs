//! What the graders' tests share: running `peershare grade <system>`, reading the failed test ids
//! from its report, finding processes a grading left behind, and the checks every two-role
//! rubric (FileApp, BitTrickle) gets: full marks for peershare three runs in a row, each broken
//! Python server losing exactly its test, crashing and silent submissions failing everything.

use super::BIN;
use std::collections::BTreeSet;
use std::fs::File;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// `peershare grade <system> <args>` from a fresh temp dir.
pub fn grade(system: &str, args: &[&str]) -> Output {
    run_grade(Command::new(BIN), system, args)
}

/// Runs `peershare` (as `command` starts it) with `grade <system> <args>` from a fresh temp dir.
fn run_grade(mut command: Command, system: &str, args: &[&str]) -> Output {
    let cwd = tempfile::tempdir().unwrap();
    command
        .args(["grade", system])
        .args(args)
        .current_dir(cwd.path())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Test ids (`tracker 4`) that failed, from the text report.
pub fn failed(stdout: &str) -> BTreeSet<String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("FAIL  "))
        .map(|l| {
            let name = l.split_once("  ").map_or(l, |(_, n)| n);
            name.split(':').next().unwrap_or(name).to_string()
        })
        .collect()
}

/// PIDs of live processes whose command line mentions `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != std::process::id())
        .filter(|pid| {
            let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| !s.contains(") Z "));
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            alive && String::from_utf8_lossy(&cmd).contains(needle)
        })
        .collect()
}

/// `python3 -u <fixtures>/<script> <extra>`.
pub fn python(fixtures: &str, script: &str, extra: &str) -> String {
    format!("python3 -u {fixtures}/{script} {extra}")
}

/// `--self` scores `full` (e.g. `110/110`) with nothing failed, three runs in a row.
pub fn full_marks_three_times(system: &str, full: &str) {
    full_marks_three_times_via(full, |args| grade(system, args));
}

/// As [`full_marks_three_times`], with how to run a grading given (e.g. in a [`Net`]).
pub fn full_marks_three_times_via(full: &str, run: impl Fn(&[&str]) -> Output) {
    for n in 1..=3 {
        let out = run(&["--self"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "run {n}:\n{text}");
        assert!(text.contains(&format!("score: {full}")), "run {n}:\n{text}");
        assert!(failed(&text).is_empty(), "run {n}:\n{text}");
    }
}

/// The fixture server with each switch in `cases` loses exactly that case's test, scoring
/// `score`; with no switch it loses nothing. peershare plays the client (`client`).
pub fn broken_servers_lose_exactly_their_tests(
    system: &str,
    fixtures: &str,
    client: &str,
    cases: &[(&str, &str)],
    score: &str,
) {
    let good = grade(
        system,
        &[
            "--server-cmd",
            &python(fixtures, "server.py", ""),
            "--client-cmd",
            client,
        ],
    );
    let text = String::from_utf8_lossy(&good.stdout);
    assert!(
        failed(&text).is_empty(),
        "the fixture server without switches:\n{text}"
    );
    for (flag, lost) in cases {
        let server = python(fixtures, "server.py", flag);
        let out = grade(system, &["--server-cmd", &server, "--client-cmd", client]);
        let text = String::from_utf8_lossy(&out.stdout);
        let want: BTreeSet<String> = [lost.to_string()].into();
        assert_eq!(failed(&text), want, "{flag}:\n{text}");
        assert!(text.contains(&format!("score: {score}")), "{flag}:\n{text}");
    }
}

/// `crash.py` and `silent.py` as both programs: every test fails, the evidence shows the crash
/// (`crash_words`) or the hang, the grade exits 1, and no process of theirs is left. The two
/// gradings run at once: the silent one waits out every deadline.
pub fn crashing_and_silent_fail_everything(
    system: &'static str,
    fixtures: &'static str,
    crash_words: &'static str,
) {
    crashing_and_silent_fail_everything_via(
        fixtures,
        crash_words,
        ["--server-cmd", "--client-cmd"],
        |args| grade(system, args),
    );
}

/// As [`crashing_and_silent_fail_everything`], with the programs' flags (`--tracker-cmd`,
/// `--node-cmd`) and how to run a grading (e.g. in a [`Net`]) given.
pub fn crashing_and_silent_fail_everything_via(
    fixtures: &'static str,
    crash_words: &'static str,
    flags: [&'static str; 2],
    run: impl Fn(&[&str]) -> Output + Sync,
) {
    std::thread::scope(|s| {
        let runs: Vec<_> = [("crash.py", crash_words), ("silent.py", "is still running")]
            .into_iter()
            .map(|(script, evidence)| {
                let run = &run;
                s.spawn(move || {
                    let cmd = python(fixtures, script, "");
                    let dir = tempfile::tempdir().unwrap();
                    let results = dir.path().join("results.json");
                    let results_arg = results.to_str().unwrap();
                    let out = run(&[flags[0], &cmd, flags[1], &cmd, "--json", results_arg]);
                    assert_eq!(
                        out.status.code(),
                        Some(1),
                        "{script}: a failing grade exits 1"
                    );
                    let json = std::fs::read_to_string(&results).unwrap();
                    assert!(json.contains("\"score\": 0"), "{script}:\n{json}");
                    assert!(json.contains(evidence), "{script}:\n{json}");
                    assert!(
                        !json.contains("\"status\": \"passed\""),
                        "{script}:\n{json}"
                    );
                    let left = processes_mentioning(&format!("{fixtures}/{script}"));
                    assert!(left.is_empty(), "{script}: still running {left:?}");
                })
            })
            .collect();
        for r in runs {
            r.join().unwrap();
        }
    });
}

/// A private view of a port the spec fixes (5100, 12345, 5025): a network namespace of its own
/// (root, so gradings run at once), otherwise an exclusive lock on a file in /tmp (they take turns).
pub struct Net {
    ns: Option<String>,
    _lock: Option<File>,
}

impl Net {
    pub fn new(port: u16) -> Net {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "psgt-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        if root
            && Command::new("ip")
                .args(["netns", "add", &name])
                .status()
                .is_ok_and(|s| s.success())
        {
            let up = Command::new("ip")
                .args(["-n", &name, "link", "set", "lo", "up"])
                .status()
                .unwrap();
            assert!(up.success());
            return Net {
                ns: Some(name),
                _lock: None,
            };
        }
        let lock = File::create(format!("/tmp/peershare-grade-port-{port}.lock")).unwrap();
        lock.lock().unwrap();
        Net {
            ns: None,
            _lock: Some(lock),
        }
    }

    pub fn command(&self, program: &str) -> Command {
        match &self.ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, program]);
                c
            }
            None => Command::new(program),
        }
    }

    pub fn grade(&self, system: &str, args: &[&str]) -> Output {
        run_grade(self.command(BIN), system, args)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        if let Some(ns) = &self.ns {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// With python3 holding the spec's fixed `port` (the statements `bind` bind it), `peershare
/// grade <system> --self <extra>` is a usage error (exit 2) that names the holder.
pub fn held_port_is_a_usage_error_naming_it(system: &str, port: u16, bind: &str, extra: &[&str]) {
    let net = Net::new(port);
    let code = format!("import socket,time; {bind}; print('ready', flush=True); time.sleep(60)");
    let mut holder = net
        .command("python3")
        .args(["-c", &code])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The grading starts once the port is held (python may be slow to start on a busy machine).
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
        &mut ready,
    )
    .unwrap();
    assert_eq!(ready.trim(), "ready");
    let mut args = vec!["--self"];
    args.extend_from_slice(extra);
    let out = net.grade(system, &args);
    let _ = holder.kill();
    let _ = holder.wait();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let named = format!("error: port {port} on 127.0.0.1 is held by python3");
    assert!(err.contains(&named), "{err}");
}
