//! `peershare grade bittrickle`: peershare's own programs score 110 three runs in a row, a small
//! Python server that breaks one rule loses exactly that test, and a crashing or silent
//! submission fails every test with evidence and leaves no process behind. The server's port is
//! given on the command line, so gradings run at once on free ports.

mod support;

use support::grading::*;
use support::BIN;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/grade/bittrickle"
);

#[test]
fn peershare_scores_110_three_runs_in_a_row() {
    full_marks_three_times("bittrickle", "110/110");
}

#[test]
fn each_broken_server_loses_exactly_the_test_of_its_rule() {
    let cases = [("--never-expire", "heartbeat 1"), ("--sch-own", "sch 1")];
    let client = format!("{BIN} bittrickle client");
    broken_servers_lose_exactly_their_tests("bittrickle", FIXTURES, &client, &cases, "100/110");
}

#[test]
fn crashing_and_silent_submissions_fail_everything_with_evidence_and_leave_nothing_running() {
    crashing_and_silent_fail_everything(
        "bittrickle",
        FIXTURES,
        "RuntimeError: BitTrickle crashed on purpose",
    );
}
