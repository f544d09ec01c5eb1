//! The Simple xFS rubric: not written yet (issue 12). The command line, the subject and the shared
//! runner are in place; [`grade`] refuses with one clear line rather than report a score.

use super::report::Report;
use super::runner::CommandLine;
use super::{programs, Abort, Context, TrackerNodeArgs};
use std::path::Path;

/// What is being graded: the two programs (either may be absent; its tests are then skipped).
#[derive(Debug, Clone)]
pub struct Subject {
    pub tracker: Option<CommandLine>,
    pub node: Option<CommandLine>,
}

/// The subject the arguments describe, or the usage error.
pub fn subject(a: &TrackerNodeArgs, exe: &Path) -> Result<Subject, String> {
    let p = programs(
        &a.submission,
        a.common.self_test,
        [
            ("--tracker-cmd", &a.tracker_cmd, "tracker.py"),
            ("--node-cmd", &a.node_cmd, "node.py"),
        ],
        [&["xfs", "tracker"], &["xfs", "node"]],
        exe,
    )?;
    Ok(Subject {
        tracker: p.first,
        node: p.second,
    })
}

/// Runs the rubric; until it is written, says so instead of reporting an empty score.
pub fn grade(_subject: &Subject, _cx: &Context) -> Result<Report, Abort> {
    Err(Abort::NotYet("Simple xFS"))
}
