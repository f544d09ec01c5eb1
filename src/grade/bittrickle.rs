//! The BitTrickle rubric: not written yet (issue 12). The command line, the subject and the shared
//! runner are in place; [`grade`] refuses with one clear line rather than report a score.

use super::report::Report;
use super::runner::CommandLine;
use super::{programs, Abort, Context, ServerClientArgs};
use std::path::Path;

/// What is being graded: the two programs (either may be absent; its tests are then skipped).
#[derive(Debug, Clone)]
pub struct Subject {
    pub server: Option<CommandLine>,
    pub client: Option<CommandLine>,
}

/// The subject the arguments describe, or the usage error.
pub fn subject(a: &ServerClientArgs, exe: &Path) -> Result<Subject, String> {
    let p = programs(
        &a.submission,
        a.common.self_test,
        [
            ("--server-cmd", &a.server_cmd, "server.py"),
            ("--client-cmd", &a.client_cmd, "client.py"),
        ],
        [&["bittrickle", "server"], &["bittrickle", "client"]],
        exe,
    )?;
    Ok(Subject {
        server: p.first,
        client: p.second,
    })
}

/// Runs the rubric; until it is written, says so instead of reporting an empty score.
pub fn grade(_subject: &Subject, _cx: &Context) -> Result<Report, Abort> {
    Err(Abort::NotYet("BitTrickle"))
}
