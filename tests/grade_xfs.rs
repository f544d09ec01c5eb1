//! `peershare grade xfs`: peershare's own programs score 110 three runs in a row, a small
//! Python tracker whose switches each break one rule loses exactly that case, a crashing or
//! silent submission fails every case with evidence and leaves no process behind, and a port
//! 5025 held by another program is named.
//!
//! The xFS tracker's port 5025 is fixed, so every grading runs in its own network namespace as
//! root (CI), or takes its turn through a lock otherwise (see [`Net`]).

mod support;

use support::grading::*;
use support::BIN;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/grade/xfs");

#[test]
fn peershare_scores_110_three_runs_in_a_row() {
    let net = Net::new(5025);
    full_marks_three_times_via("110/110", |args| net.grade("xfs", args));
}

#[test]
fn each_broken_tracker_loses_exactly_the_case_of_its_rule() {
    let node = format!("{BIN} xfs node");
    let cases = [
        ("", ""),
        ("--every-node", "case 3"),
        ("--keep-state", "case 8"),
        ("--no-refresh", "case 10"),
    ];
    std::thread::scope(|s| {
        for (flag, lost) in cases {
            let node = &node;
            s.spawn(move || {
                let tracker = python(FIXTURES, "tracker.py", flag);
                let out =
                    Net::new(5025).grade("xfs", &["--tracker-cmd", &tracker, "--node-cmd", node]);
                let text = String::from_utf8_lossy(&out.stdout);
                let want: std::collections::BTreeSet<String> = [lost.to_string()]
                    .into_iter()
                    .filter(|l| !l.is_empty())
                    .collect();
                assert_eq!(failed(&text), want, "{flag}:\n{text}");
            });
        }
    });
}

#[test]
fn crashing_and_silent_submissions_fail_everything_with_evidence_and_leave_nothing_running() {
    crashing_and_silent_fail_everything_via(
        FIXTURES,
        "RuntimeError: xfs crashed on purpose",
        ["--tracker-cmd", "--node-cmd"],
        |args| Net::new(5025).grade("xfs", args),
    );
}

#[test]
fn port_5025_held_by_another_program_is_a_usage_error_naming_it() {
    let bind = "s=socket.socket(); s.bind(('127.0.0.1', 5025)); s.listen()";
    held_port_is_a_usage_error_naming_it("xfs", 5025, bind, &[]);
}

/// Gradescope's entry point grades another system when `PEERSHARE_SYSTEM` says so: a
/// submission with only tracker.py gets the tracker cases' 50 points and a results.json that
/// says the node was not given.
#[test]
fn run_autograder_grades_xfs_when_peershare_system_says_so() {
    let net = Net::new(5025);
    let root = tempfile::tempdir().unwrap();
    let sub = root.path().join("submission");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::copy(format!("{FIXTURES}/tracker.py"), sub.join("tracker.py")).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/gradescope/run_autograder"
    );
    let out = net
        .command("bash")
        .arg(script)
        .env("PEERSHARE_AUTOGRADER_ROOT", root.path())
        .env("PEERSHARE_BIN", BIN)
        .env("PEERSHARE_SYSTEM", "xfs")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let json = std::fs::read_to_string(root.path().join("results/results.json")).unwrap();
    assert!(json.contains("\"score\": 50"), "{json}");
    assert!(json.contains("case 10: a killed node"), "{json}");
    assert!(json.contains("no node program was given"), "{json}");
}
