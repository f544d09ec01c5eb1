//! The FileApp rubric (issue 12): ten tests of 10 points from the assignment's test plan, run
//! against any implementation, with peershare playing the other roles.
//!
//! | id | what it checks | how |
//! |---|---|---|
//! | `registration 1` | a free name is welcomed | raw UDP: `alice,<port>` → the exact welcome, then a table |
//! | `registration 2` | a taken name is refused | a second address registers `alice` → the exact rejection |
//! | `registration 3` | a new client's table is initialised | alice offers `a.txt`; `bob` registers and his first table lists it |
//! | `registration 4` | the table is resent twice, 500 ms apart, with no ACK | a silent client counts the tables: exactly 3, 0.3–1.0 s apart |
//! | `offer 1` | setdir/offer reach every client's table | the submission's client offers; a raw observer's next table lists it |
//! | `offer 2` | offers before setdir / of missing files are refused locally | the exact lines, and the server hears of neither |
//! | `list 1` | `list` is the PrettyTable layout | every line of the expected table appears as printed |
//! | `transfer 1` | a requested file lands byte-identical | a second client of the submission requests it |
//! | `transfer 2` | a file the owner does not offer is refused | raw TCP `y.txt,eve` gets no bytes; `request y.txt A` prints `< Invalid Request >` |
//! | `dereg 1` | dereg empties the owner's rows and the client stops acting | the observer's table drops them; a later `offer` is refused |
//!
//! Server tests (`registration *`) drive the submission's server with raw datagrams, compared byte
//! for byte where the spec fixes them (welcome, rejection; tables as decoded rows, since the
//! original's JSON spacing is what `fileapp::wire` reads and writes). Client tests run the
//! submission's client against peershare's own server and judge it from its stdout (the exact
//! lines of `docs/specs/fileapp.md` §4, prompts and surrounding whitespace ignored), its files and
//! what a raw observer client registered with the same server receives.
//!
//! Choices where the assignment is loose: a client is ready once it printed `Client table
//! updated.` (the spec's line after the welcome); a server is ready 0.5 s (× `--timeout-scale`)
//! after its start-up echo, as the original binds after printing; `registration 4` counts tables
//! for 2.5 s and wants 3 sends in all, gaps 0.3–1.0 s (the spec's 500 ms with slack for a loaded
//! machine); tests of a role whose program was not given fail with that as their evidence.

mod client;
mod server;

use super::report::Report;
use super::runner::{self, CommandLine};
use super::{Abort, Context, ServerClientArgs};
use std::path::Path;
use std::time::{Duration, Instant};

/// What is being graded: the two programs (either may be absent; its tests then fail saying so).
pub type Subject = super::ServerClient;

/// The subject the arguments describe, or the usage error.
pub fn subject(a: &ServerClientArgs, exe: &Path) -> Result<Subject, String> {
    super::server_client(
        a,
        exe,
        ["fileapp.py", "fileapp.py"],
        [&["fileapp"], &["fileapp"]],
    )
}

/// Runs the rubric: the server tests, then the client tests.
pub fn grade(subject: &Subject, cx: &Context) -> Result<Report, Abort> {
    let start = Instant::now();
    let mut report = Report::default();
    let (server, client) = (subject.server.as_ref(), subject.client.as_ref());
    super::role_part(&mut report, "server", server, server::IDS, |s| {
        server::part(s, cx)
    })?;
    super::role_part(&mut report, "client", client, client::IDS, |c| {
        client::part(c, cx)
    })?;
    report.elapsed = start.elapsed();
    Ok(report)
}

use super::udp::Raw;

/// FileApp's registration over a raw socket.
trait Register {
    fn register(&self, name: &str, tcp: u16, timeout: Duration)
        -> (Option<String>, Option<String>);
}

impl Register for Raw {
    /// Registers `name` (TCP port `tcp`) and ACKs the first table; the welcome and that table.
    fn register(
        &self,
        name: &str,
        tcp: u16,
        timeout: Duration,
    ) -> (Option<String>, Option<String>) {
        self.send(format!("{name},{tcp}").as_bytes());
        let welcome = self.recv(timeout);
        let table = welcome.as_ref().and_then(|_| self.recv(timeout));
        if table.is_some() {
            self.send(crate::fileapp::wire::ACK);
        }
        (welcome, table)
    }
}

/// The `(file, owner)` keys of a table datagram, or why it is not one.
fn table_keys(text: &str) -> Result<Vec<(String, String)>, String> {
    let (rows, _) =
        crate::fileapp::wire::parse_table(text.as_bytes()).map_err(|e| e.to_string())?;
    Ok(rows.into_iter().map(|r| (r.file, r.owner)).collect())
}

/// Whether `text` holds `line` as a line once prompts (`>>> ` alone) and outer spaces are set
/// aside: the spec's words must be there exactly.
fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim();
        let l = l
            .strip_prefix(">>> ")
            .filter(|rest| rest.starts_with(">>> ["))
            .unwrap_or(l);
        l.trim_end() == line.trim()
    })
}

/// Starts the submission's server on `port` in `dir`; ready when its start-up echo is out
/// and half a second (scaled) has passed, or `None` with evidence if it died first.
fn start_server(
    command: &CommandLine,
    port: u16,
    dir: &Path,
    cx: &Context,
) -> Result<Result<runner::Proc, Vec<String>>, Abort> {
    let mut p = runner::Proc::spawn("server", &command.with(&["-s", &port.to_string()]), dir)?;
    p.interrupt_first();
    let echo = format!("port {port}");
    let (out, shutdown) = (p.stdout.clone(), cx.shutdown.clone());
    runner::wait_until(cx.timeouts.secs(5.0), &shutdown, || {
        out.text().contains(&echo) || p.exited().is_some()
    });
    cx.check_interrupt()?;
    cx.shutdown.sleep(cx.timeouts.secs(0.5));
    if p.exited().is_some() {
        return Ok(Err(p.evidence()));
    }
    Ok(Ok(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_match_with_prompts_and_spaces_set_aside_but_words_exact() {
        let out = ">>> >>> [Client table updated.]\n>>> [Offer Message received by Server.]  \n";
        assert!(has_line(out, ">>> [Client table updated.]"));
        assert!(has_line(out, ">>> [Offer Message received by Server.]"));
        assert!(!has_line(out, ">>> [Offer message received by server.]"));
        assert!(has_line("   < Invalid Request >\n", "< Invalid Request >"));
    }
}
