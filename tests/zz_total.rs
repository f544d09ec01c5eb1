//! The suite's last line: one total over every test binary, so `cargo test --release` ends with
//! a figure a newcomer can compare, not nineteen `test result:` blocks to add up.
//!
//! Why this works from inside the suite: cargo runs the library's unit tests, then the
//! integration tests in name order (this one, `zz_total`, is last; the crate has no doc tests and
//! sets `doctest = false`), and it stops at the first binary that fails. So when this binary runs,
//! every other one has already passed, and counting their tests is counting what passed. Each
//! binary is found through cargo's fingerprint directory (`test-lib-peershare`,
//! `test-integration-test-<name>`), the newest build of each target, which is the one cargo just
//! built or found up to date; it is asked for its list with the same arguments cargo gave us, so
//! a filter (`cargo test --release grade`) counts only what ran. With `--no-fail-fast` the line
//! would count failed binaries too: cargo's own error line after it says so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `--list` is cargo asking what this binary holds: it holds no test of its own.
    if args.iter().any(|a| a == "--list") {
        return;
    }
    match total(&args) {
        Ok(t) => {
            println!();
            println!(
                "total: {} tests in {} binaries: {} run, {} ignored \
                 (cargo reaches this line only when every binary before it passed)",
                t.passed + t.ignored,
                t.binaries,
                t.passed,
                t.ignored
            );
        }
        Err(why) => println!("total: not counted ({why})"),
    }
}

struct Total {
    passed: usize,
    ignored: usize,
    binaries: usize,
}

fn total(args: &[String]) -> Result<Total, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let deps = exe.parent().ok_or("this binary has no directory")?;
    let profile = deps.parent().ok_or("the deps directory has no parent")?;
    let binaries = newest_test_binaries(&profile.join(".fingerprint"), deps)?;
    let only_ignored = args.iter().any(|a| a == "--ignored");
    let with_ignored = args.iter().any(|a| a == "--include-ignored");
    let mut t = Total {
        passed: 0,
        ignored: 0,
        binaries: binaries.len(),
    };
    for bin in binaries.values() {
        let listed = count_tests(bin, args, false)?;
        let ignored = if with_ignored || only_ignored {
            0
        } else {
            count_tests(bin, args, true)?
        };
        t.passed += listed - ignored.min(listed);
        t.ignored += ignored;
    }
    Ok(t)
}

/// Target name → binary, for the library's unit tests and every integration test but this one.
fn newest_test_binaries(
    fingerprints: &Path,
    deps: &Path,
) -> Result<BTreeMap<String, PathBuf>, String> {
    let dirs = std::fs::read_dir(fingerprints)
        .map_err(|e| format!("cannot read {}: {e}", fingerprints.display()))?;
    let mut newest: BTreeMap<String, (SystemTime, PathBuf)> = BTreeMap::new();
    for dir in dirs.flatten() {
        let name = dir.file_name().to_string_lossy().into_owned();
        let Some(hash) = name.strip_prefix("peershare-") else {
            continue;
        };
        let Ok(files) = std::fs::read_dir(dir.path()) else {
            continue;
        };
        for file in files.flatten() {
            let file_name = file.file_name().to_string_lossy().into_owned();
            let (target, binary) = if file_name == "test-lib-peershare" {
                ("lib".to_string(), format!("peershare-{hash}"))
            } else if let Some(test) = file_name.strip_prefix("test-integration-test-") {
                if test.contains('.') || test == "zz_total" {
                    continue;
                }
                (test.to_string(), format!("{test}-{hash}"))
            } else {
                continue;
            };
            let path = deps.join(binary);
            let built = file.metadata().and_then(|m| m.modified());
            let (Ok(built), true) = (built, path.is_file()) else {
                continue;
            };
            // A test file since deleted leaves its old build behind: count only live targets.
            if target != "lib" && !Path::new("tests").join(format!("{target}.rs")).is_file() {
                continue;
            }
            if newest.get(&target).is_none_or(|(t, _)| built > *t) {
                newest.insert(target, (built, path));
            }
        }
    }
    Ok(newest.into_iter().map(|(k, (_, p))| (k, p)).collect())
}

/// How many tests `bin` lists under cargo's arguments (only the ignored ones when `ignored`).
fn count_tests(bin: &Path, args: &[String], ignored: bool) -> Result<usize, String> {
    let mut cmd = Command::new(bin);
    cmd.args(args).args(["--list", "--format", "terse"]);
    if ignored {
        cmd.arg("--ignored");
    }
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!("{} --list failed: {}", bin.display(), out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.ends_with(": test"))
        .count())
}
