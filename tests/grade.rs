//! `peershare grade p2ptracker`: peershare scores 100 every time, the reference Python submission
//! scores 100, each broken fixture loses exactly the tests for the rule it breaks, and no program
//! the grader started outlives it.
//!
//! Student trackers use the spec's fixed 127.0.0.1:5100. As root (CI) every grading runs in its
//! own network namespace, so gradings run at once and never meet other tests on this machine;
//! otherwise they take turns through an exclusive lock on a file in /tmp.

mod support;

use peershare::core::pyjson::{self, Json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::grading::{failed, held_port_is_a_usage_error_naming_it, processes_mentioning, Net};
use support::BIN;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/grade/p2ptracker"
);

fn passed_count(stdout: &str) -> usize {
    stdout.lines().filter(|l| l.starts_with("PASS  ")).count()
}

fn fixture(case: &str) -> String {
    format!("{FIXTURES}/{case}")
}

fn ids(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn reference_submission_scores_100_and_each_broken_fixture_loses_exactly_its_tests() {
    // (case, part, tests expected to fail, evidence expected somewhere in the report)
    let cases: Vec<(&str, &str, Vec<&str>, &str)> = vec![
        ("good", "all", vec![], "score: 100/100"),
        (
            "tracker_silent_unknown",
            "tracker",
            vec!["tracker 4"],
            "no reply within",
        ),
        (
            "tracker_last_holder_only",
            "tracker",
            vec!["tracker 3"],
            "wanted holders",
        ),
        (
            "tracker_one_at_a_time",
            "tracker",
            vec!["tracker 1"],
            "not every client had every chunk",
        ),
        (
            "tracker_garbage",
            "tracker",
            vec!["tracker 1", "tracker 2", "tracker 3", "tracker 4"],
            "is not GET_CHUNK_FROM",
        ),
        (
            "client_never_announce",
            "client",
            vec!["client 1"],
            "no LOCAL_CHUNKS",
        ),
        (
            "client_asks_own_chunks",
            "client",
            vec!["client 7"],
            "which it had from the start",
        ),
        (
            "client_reconnect_each_question",
            "client",
            vec!["client 3"],
            "tracker connections",
        ),
        (
            "client_malformed_log",
            "client",
            vec!["client 1", "client 2", "client 7"],
            "contains whitespace",
        ),
        (
            "client_never_connects",
            "client",
            vec![
                "client 1", "client 2", "client 3", "client 4", "client 5", "client 6", "client 7",
                "client 8",
            ],
            "never connected to the tracker",
        ),
        (
            "client_serve_after_done",
            "system",
            vec!["system 2", "system 4"],
            "no chunk landed anywhere",
        ),
        (
            "crash_at_start",
            "all",
            vec![
                "tracker 1",
                "tracker 2",
                "tracker 3",
                "tracker 4",
                "client 1",
                "client 2",
                "client 3",
                "client 4",
                "client 5",
                "client 6",
                "client 7",
                "client 8",
                "system 1",
                "system 2",
                "system 3",
                "system 4",
                "system 5",
                "system 6",
                "system 7",
            ],
            "RuntimeError: P2PTracker crashed at start on purpose",
        ),
    ];
    let outputs: Vec<(Output, Duration)> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .map(|(case, part, _, _)| {
                s.spawn(move || {
                    let net = Net::new(5100);
                    let start = Instant::now();
                    let out = net.grade("p2ptracker", &[&fixture(case), "--part", part]);
                    (out, start.elapsed())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut problems = Vec::new();
    for ((case, _, want_failed, evidence), (out, took)) in cases.iter().zip(&outputs) {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let got = failed(&stdout);
        let code = out.status.code();
        let want_code = if want_failed.is_empty() { 0 } else { 1 };
        if got != ids(want_failed) || code != Some(want_code) || !stdout.contains(evidence) {
            problems.push(format!(
                "{case} ({:.0} s): failed {got:?}, wanted {want_failed:?}, exit {code:?}, evidence {evidence:?}\n{stdout}\n{}",
                took.as_secs_f64(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        if passed_count(&stdout) + got.len() == 0 {
            problems.push(format!("{case}: no results at all"));
        }
        let left = processes_mentioning(&fixture(case));
        if !left.is_empty() {
            problems.push(format!("{case}: processes left running: {left:?}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

fn json_tests(json: &Json) -> Vec<(String, String, String, String)> {
    let Some(Json::Array(tests)) = json.get("tests") else {
        panic!("no tests array")
    };
    tests
        .iter()
        .map(|t| {
            let text = |k: &str| match t.get(k) {
                Some(Json::String(s)) => s.clone(),
                Some(Json::Number(n)) => n.clone(),
                other => panic!("{k}: {other:?}"),
            };
            assert!(matches!(t.get("output"), Some(Json::String(_))));
            (
                text("name"),
                text("score"),
                text("max_score"),
                text("status"),
            )
        })
        .collect()
}

#[test]
fn peershare_scores_100_three_runs_in_a_row_and_json_matches_the_schema() {
    let mut seen = Vec::new();
    for run in 0..3 {
        let net = Net::new(5100);
        let dir = tempfile::tempdir().unwrap();
        let json_path = dir.path().join("results.json");
        let out = net.grade(
            "p2ptracker",
            &["--self", "--json", json_path.to_str().unwrap()],
        );
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(
            out.status.code(),
            Some(0),
            "run {run}:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("score: 100/100"), "{stdout}");
        assert_eq!(passed_count(&stdout), 19, "{stdout}");
        let json = pyjson::parse(&std::fs::read(&json_path).unwrap(), 16).unwrap();
        assert_eq!(json.get("score"), Some(&Json::Number("100.0".into())));
        assert!(json.get("execution_time").and_then(Json::as_i128).is_some());
        let tests = json_tests(&json);
        assert_eq!(tests.len(), 19);
        let max: f64 = tests.iter().map(|t| t.2.parse::<f64>().unwrap()).sum();
        assert_eq!(max, 100.0);
        for (name, score, max, status) in &tests {
            let prefix_ok = ["tracker ", "client ", "system "]
                .iter()
                .any(|p| name.starts_with(p));
            assert!(prefix_ok && name.contains(": "), "{name}");
            assert_eq!((score, status.as_str()), (max, "passed"), "{name}");
        }
        seen.push(tests);
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn log_check_accepts_a_good_log_and_names_each_bad_line() {
    let good = Command::new(BIN)
        .args(["grade", "p2ptracker", "--log"])
        .arg(format!("{FIXTURES}/logs/good.log"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&good.stdout);
    assert_eq!(good.status.code(), Some(0), "{text}");
    assert!(
        text.contains("18 lines (17 well-formed, 1 debug lines), 0 problems"),
        "{text}"
    );
    let bad = Command::new(BIN)
        .args(["grade", "p2ptracker", "--log"])
        .arg(format!("{FIXTURES}/logs/bad.log"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{text}");
    for want in [
        "5 problems",
        "line 3: \"c2, WHERE_CHUNK, 1\" contains whitespace",
        "line 4: ",
        "lists port 6009, which never announced chunk 1",
        "line 5: ",
        "the tracker never named port 6007 for chunk 1",
        "line 6: ",
        "c1 fetches chunk 1, which it announced",
        "line 7: ",
        "not localhost",
    ] {
        assert!(text.contains(want), "{want:?} missing from\n{text}");
    }
}

#[test]
fn usage_errors_exit_2_with_one_error_line() {
    let empty = tempfile::tempdir().unwrap();
    for (args, want) in [
        (
            vec!["grade", "p2ptracker", empty.path().to_str().unwrap()],
            "no P2PTracker.py",
        ),
        (
            vec!["grade", "p2ptracker", "--self", "--timeout-scale", "0"],
            "0.1..=100",
        ),
        (vec!["grade", "p2ptracker"], "--self"),
        (
            vec!["grade", "p2ptracker", "--log", "/nonexistent/logs.log"],
            "cannot read",
        ),
    ] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(want),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn port_5100_held_by_another_program_is_a_usage_error_naming_it() {
    let bind = "s=socket.socket(); s.bind(('127.0.0.1', 5100)); s.listen()";
    let extra = ["--part", "tracker", "--timeout-scale", "0.5"];
    held_port_is_a_usage_error_naming_it("p2ptracker", 5100, bind, &extra);
}

#[test]
fn ctrl_c_on_the_grader_ends_every_program_it_started() {
    let net = Net::new(5100);
    let case = fixture("client_serve_after_done");
    let mut grader = net
        .command(BIN)
        .args(["grade", "p2ptracker", &case, "--part", "system"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut students = Vec::new();
    while students.len() < 2 && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
        students = processes_mentioning(&case);
    }
    assert!(students.len() >= 2, "the student programs never started");
    // `ip netns exec` execs the grader, so the child's pid is the grader's.
    let sent = Command::new("kill")
        .args(["-INT", &grader.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let end = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = grader.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "the grader did not stop on Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130));
    let left: Vec<u32> = processes_mentioning(&case)
        .into_iter()
        .filter(|p| students.contains(p))
        .collect();
    assert!(left.is_empty(), "still running: {left:?}");
}

#[test]
fn batch_grades_every_submission_into_csv_and_json() {
    let _net = Net::new(5100); // without root: the batch shares 5100, so take our turn
    let class = tempfile::tempdir().unwrap();
    for (name, case) in [("ann", "good"), ("bob", "tracker_silent_unknown")] {
        let dir = class.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        for file in ["P2PTracker.py", "P2PClient.py"] {
            let text = std::fs::read_to_string(format!("{FIXTURES}/{case}/{file}")).unwrap();
            // The broken fixture runs ../good; point it at the fixture folder instead.
            let text = text.replace(
                "os.path.dirname(os.path.abspath(__file__)), \"..\", \"good\"",
                &format!("{:?}", format!("{FIXTURES}/good")),
            );
            std::fs::write(dir.join(file), text).unwrap();
        }
    }
    let out_dir = tempfile::tempdir().unwrap();
    let csv = out_dir.path().join("grades.csv");
    let out = Command::new(BIN)
        .args([
            "grade",
            "p2ptracker",
            "--part",
            "tracker",
            "--jobs",
            "2",
            "--batch",
        ])
        .arg(class.path())
        .arg("--csv")
        .arg(&csv)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let text = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert!(
        rows[0].starts_with("name,score,tracker 1,tracker 2,tracker 3,tracker 4,client 1"),
        "{text}"
    );
    assert!(rows[1].starts_with("ann,20,5,5,5,5,"), "{text}\n{err}");
    assert!(rows[2].starts_with("bob,15,5,5,5,0,"), "{text}\n{err}");
    for name in ["ann", "bob"] {
        let json = std::fs::read(out_dir.path().join(format!("{name}.results.json"))).unwrap();
        assert_eq!(json_tests(&pyjson::parse(&json, 16).unwrap()).len(), 4);
        let report = std::fs::read_to_string(out_dir.path().join(format!("{name}.txt"))).unwrap();
        assert!(report.contains("score: "), "{report}");
    }
}

#[test]
fn gradescope_run_autograder_writes_results_json_under_the_autograder_root() {
    let net = Net::new(5100);
    let root = tempfile::tempdir().unwrap();
    let sub = root.path().join("submission");
    std::fs::create_dir_all(&sub).unwrap();
    for file in ["P2PTracker.py", "P2PClient.py"] {
        std::fs::copy(
            format!("{FIXTURES}/tracker_silent_unknown/{file}"),
            sub.join(file),
        )
        .unwrap();
    }
    // The fixture runs ../good: give it one next to the submission.
    let good = root.path().join("good");
    std::fs::create_dir_all(&good).unwrap();
    for file in ["P2PTracker.py", "P2PClient.py"] {
        std::fs::copy(format!("{FIXTURES}/good/{file}"), good.join(file)).unwrap();
    }
    let script: PathBuf =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/gradescope/run_autograder");
    let out = net
        .command("bash")
        .arg(&script)
        .env("PEERSHARE_AUTOGRADER_ROOT", root.path())
        .env("PEERSHARE_BIN", BIN)
        .env("PEERSHARE_GRADE_ARGS", "--part tracker")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{log}");
    let json = std::fs::read(root.path().join("results/results.json")).unwrap();
    let json = pyjson::parse(&json, 16).unwrap();
    assert_eq!(
        json.get("score"),
        Some(&Json::Number("15.0".into())),
        "{log}"
    );
    let tests = json_tests(&json);
    let failed: Vec<&str> = tests
        .iter()
        .filter(|t| t.3 == "failed")
        .map(|t| t.0.as_str())
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].starts_with("tracker 4:"), "{failed:?}");
}
