//! The BitTorrent-Python rubric (placeholder: the rubric lands with issue 12).

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
        [&["torrent", "tracker"], &["torrent", "node"]],
        exe,
    )?;
    Ok(Subject {
        tracker: p.first,
        node: p.second,
    })
}

/// Runs the rubric.
pub fn grade(_subject: &Subject, _cx: &Context) -> Result<Report, Abort> {
    Ok(Report::default())
}
