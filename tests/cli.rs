//! The command line as a newcomer meets it: help with no arguments, clap's whole usage error
//! (what is missing, the usage line, the `--help` tip), "did you mean" for a misspelt command.

use std::process::{Command, Output};

fn peershare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_peershare"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the peershare binary runs")
}

fn all_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn no_arguments_prints_the_command_list() {
    let out = peershare(&[]);
    let text = all_text(&out);
    for system in [
        "p2ptracker",
        "fileapp",
        "bittrickle",
        "torrent",
        "xfs",
        "demo",
    ] {
        assert!(text.contains(system), "{system} missing from:\n{text}");
    }
    assert!(text.contains("Usage: peershare <COMMAND>"), "{text}");
}

#[test]
fn a_system_without_a_role_prints_its_help() {
    let out = peershare(&["p2ptracker"]);
    let text = all_text(&out);
    assert!(
        text.contains("tracker") && text.contains("client"),
        "{text}"
    );
    assert!(
        text.contains("Usage: peershare p2ptracker <COMMAND>"),
        "{text}"
    );
}

#[test]
fn a_usage_error_shows_what_is_missing_the_usage_and_the_help_tip() {
    let out = peershare(&["fileapp"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the following required arguments were not provided"),
        "{err}"
    );
    assert!(err.contains("--server <port>"), "{err}");
    assert!(err.contains("Usage: peershare fileapp"), "{err}");
    assert!(err.contains("--help"), "{err}");
}

#[test]
fn a_misspelt_command_gets_a_suggestion() {
    let out = peershare(&["p2ptraker"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("a similar subcommand exists: 'p2ptracker'"),
        "{err}"
    );
}

#[test]
fn help_exits_zero_on_stdout() {
    let out = peershare(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Commands:"));
}

#[test]
fn interactive_roles_keep_info_lines_out_of_the_terminal_by_default() {
    let work = tempfile::tempdir().expect("temp dir");
    let out = peershare(&[
        "demo",
        "--size",
        "1",
        "--work-dir",
        work.path().to_str().expect("utf-8 temp path"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", all_text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains(" INFO "), "INFO lines by default:\n{err}");
}

/// Every role that takes `--trace` says in the same one line when it cannot open the file, and
/// exits 1 before it binds or writes anything.
#[test]
fn an_unwritable_trace_file_is_one_line_and_exit_1_in_every_system() {
    let bad = "/nonexistent-peershare-dir/trace.jsonl";
    let want = format!("error: cannot open the trace file {bad}: ");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("credentials.txt"), "hans falcon*solo\n").unwrap();
    for args in [
        &["p2ptracker", "tracker", "--port", "0", "--trace", bad][..],
        &["fileapp", "-s", "0", "--trace", bad],
        &["bittrickle", "server", "0", "--trace", bad],
        &["torrent", "tracker", "--port", "0", "--trace", bad],
        &["xfs", "tracker", "--port", "0", "--trace", bad],
        &[
            "bt",
            "tracker",
            "--port",
            "0",
            "--udp-port",
            "0",
            "--trace",
            bad,
        ],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_peershare"))
            .args(args)
            .current_dir(tmp.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{args:?}: {err}");
        assert!(errors[0].starts_with(&want), "{args:?}: {err}");
    }
}
