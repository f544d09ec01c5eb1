//! `peershare grade fileapp`: peershare's own programs score 100 three runs in a row, a small
//! Python server that breaks one rule loses exactly that test, and a crashing or silent
//! submission fails every test with evidence and leaves no process behind. FileApp's ports are
//! given on the command line, so gradings run at once on free ports.

mod support;

use std::collections::BTreeSet;
use std::process::{Command, Output, Stdio};
use support::BIN;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/grade/fileapp");

fn grade(args: &[&str]) -> Output {
    let cwd = tempfile::tempdir().unwrap();
    Command::new(BIN)
        .args(["grade", "fileapp"])
        .args(args)
        .current_dir(cwd.path())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Test ids (`registration 4`) that failed, from the text report.
fn failed(stdout: &str) -> BTreeSet<String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("FAIL  "))
        .map(|l| {
            let name = l.split_once("  ").map_or(l, |(_, n)| n);
            name.split(':').next().unwrap_or(name).to_string()
        })
        .collect()
}

fn python(script: &str, extra: &str) -> String {
    format!("python3 -u {FIXTURES}/{script} {extra}")
}

/// PIDs of live processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
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

#[test]
fn peershare_scores_100_three_runs_in_a_row() {
    for run in 1..=3 {
        let out = grade(&["--self"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "run {run}:\n{text}");
        assert!(text.contains("score: 100/100"), "run {run}:\n{text}");
        assert!(failed(&text).is_empty(), "run {run}:\n{text}");
    }
}

#[test]
fn the_reference_python_server_scores_full_marks_on_the_server_tests() {
    let client = format!("{BIN} fileapp");
    let out = grade(&[
        "--server-cmd",
        &python("server.py", ""),
        "--client-cmd",
        &client,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(failed(&text).is_empty(), "{text}");
}

#[test]
fn each_broken_server_loses_exactly_the_test_of_its_rule() {
    let client = format!("{BIN} fileapp");
    for (flag, lost) in [
        ("--no-resend", "registration 4"),
        ("--allow-taken", "registration 2"),
    ] {
        let out = grade(&[
            "--server-cmd",
            &python("server.py", flag),
            "--client-cmd",
            &client,
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        let want: BTreeSet<String> = [lost.to_string()].into();
        assert_eq!(failed(&text), want, "{flag}:\n{text}");
        assert!(text.contains("score: 90/100"), "{flag}:\n{text}");
    }
}

#[test]
fn crashing_and_silent_submissions_fail_everything_with_evidence_and_leave_nothing_running() {
    // The two gradings run at once: the silent one waits out every deadline.
    let runs: Vec<_> = [
        ("crash.py", "RuntimeError: FileApp crashed on purpose"),
        ("silent.py", "is still running"),
    ]
    .into_iter()
    .map(|(script, evidence)| {
        std::thread::spawn(move || {
            let cmd = python(script, "");
            let dir = tempfile::tempdir().unwrap();
            let results = dir.path().join("results.json");
            let results_arg = results.to_str().unwrap();
            let out = grade(&[
                "--server-cmd",
                &cmd,
                "--client-cmd",
                &cmd,
                "--json",
                results_arg,
            ]);
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
            let left = processes_mentioning(&format!("grade/fileapp/{script}"));
            assert!(left.is_empty(), "{script}: still running {left:?}");
        })
    })
    .collect();
    for r in runs {
        r.join().unwrap();
    }
}
