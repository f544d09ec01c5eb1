//! `peershare grade fileapp`: peershare's own programs score 100 three runs in a row, a small
//! Python server that breaks one rule loses exactly that test, and a crashing or silent
//! submission fails every test with evidence and leaves no process behind. FileApp's ports are
//! given on the command line, so gradings run at once on free ports.

mod support;

use support::grading::*;
use support::BIN;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/grade/fileapp");

#[test]
fn peershare_scores_100_three_runs_in_a_row() {
    full_marks_three_times("fileapp", "100/100");
}

#[test]
fn each_broken_server_loses_exactly_the_test_of_its_rule() {
    let cases = [
        ("--no-resend", "registration 4"),
        ("--allow-taken", "registration 2"),
    ];
    let client = format!("{BIN} fileapp");
    broken_servers_lose_exactly_their_tests("fileapp", FIXTURES, &client, &cases, "90/100");
}

#[test]
fn crashing_and_silent_submissions_fail_everything_with_evidence_and_leave_nothing_running() {
    crashing_and_silent_fail_everything(
        "fileapp",
        FIXTURES,
        "RuntimeError: FileApp crashed on purpose",
    );
}
