//! `peershare grade torrent`: peershare's own programs score 60 three runs in a row, small
//! Python trackers and nodes that each break one rule lose exactly that test, and a crashing or
//! silent submission fails every test with evidence and leaves no process behind.
//!
//! BitTorrent-Python's tracker port 12345 is fixed, so every grading runs in its own network
//! namespace as root (CI), or takes its turn through a lock otherwise (see [`Net`]). The
//! fixtures' submission folder carries a config.py with a 2 s sweep, which the grader reads.

mod support;

use std::path::Path;
use support::grading::*;
use support::BIN;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/grade/torrent");

/// A submission folder: the fixture tracker and node under the original's names, and a
/// config.py in the original's shape with a 2 s sweep.
fn submission() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["tracker.py", "node.py"] {
        std::fs::copy(Path::new(FIXTURES).join(f), dir.path().join(f)).unwrap();
    }
    std::fs::write(
        dir.path().join("config.py"),
        "config = {\n    \"constants\": {\n        \"NODE_TIME_INTERVAL\": 20,\n        \"TRACKER_TIME_INTERVAL\": 2,\n    },\n}\n",
    )
    .unwrap();
    dir
}

#[test]
fn peershare_scores_60_three_runs_in_a_row() {
    let net = Net::new(12345);
    full_marks_three_times_via("60/60", |args| net.grade("torrent", args));
}

#[test]
fn each_broken_tracker_or_node_loses_exactly_the_test_of_its_rule() {
    let sub = submission();
    let dir = sub.path().to_str().unwrap();
    let tracker = |flag: &str| format!("python3 -u {dir}/tracker.py {flag}");
    let node = |flag: &str| format!("python3 -u {dir}/node.py {flag}");
    let own_tracker = format!("{BIN} torrent tracker --sweep-interval-ms 2000");
    let own_node = format!("{BIN} torrent node");
    let cases: Vec<(String, String, &str)> = vec![
        (tracker(""), node(""), ""),
        (tracker("--no-empty"), own_node.clone(), "tracker 1"),
        (tracker("--own-order"), own_node.clone(), "tracker 2"),
        (tracker("--no-sweep"), own_node.clone(), "tracker 3"),
        (own_tracker.clone(), node("--one-owner"), "node 2"),
        (own_tracker.clone(), node("--no-update"), "node 3"),
    ];
    std::thread::scope(|s| {
        for (t, n, lost) in &cases {
            s.spawn(move || {
                let net = Net::new(12345);
                let out = net.grade("torrent", &[dir, "--tracker-cmd", t, "--node-cmd", n]);
                let text = String::from_utf8_lossy(&out.stdout);
                let want: std::collections::BTreeSet<String> = [lost.to_string()]
                    .into_iter()
                    .filter(|l| !l.is_empty())
                    .collect();
                assert_eq!(failed(&text), want, "{t} / {n}:\n{text}");
                assert!(
                    text.contains("the tracker should sweep every 2 s"),
                    "{text}"
                );
            });
        }
    });
}

#[test]
fn crashing_and_silent_submissions_fail_everything_with_evidence_and_leave_nothing_running() {
    crashing_and_silent_fail_everything_via(
        FIXTURES,
        "RuntimeError: torrent crashed on purpose",
        ["--tracker-cmd", "--node-cmd"],
        |args| Net::new(12345).grade("torrent", args),
    );
}

#[test]
fn port_12345_held_by_another_program_is_a_usage_error_naming_it() {
    let bind = "s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 12345))";
    held_port_is_a_usage_error_naming_it("torrent", 12345, bind, &[]);
}
