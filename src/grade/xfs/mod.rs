//! The Simple xFS rubric (issue 12): the original README's test cases 1-11, 10 points each,
//! run against any implementation, with peershare playing the other roles.
//!
//! | id | README case | judged | how |
//! |---|---|---|---|
//! | `case 1` | tracker then node | tracker | a peershare node registers (it prints `ACK`); a raw `find` lists it with its file's size and MD5 |
//! | `case 2` | node then tracker | node | no tracker on 5025: the node says it cannot connect (`refused` or `down` in its output) and prints no `ACK` |
//! | `case 3` | two nodes | tracker | a second node registers; `find` lists both for the shared file, in registration order, and only the second for its own |
//! | `case 4` | `updatelist` | node | a raw `updatelist` gets the node's FileList: its files with sizes and MD5s, its ip and port |
//! | `case 5` | `getload` | node | a raw `getload` to an idle node gets `0` |
//! | `case 6` | `find` | node | `find f` prints `Found nodes:` and `127.0.0.1 <port>` of the node that has it; an unknown file prints `No nodes found` |
//! | `case 7` | `download` | node | the node downloads from a peershare node and serves one (both land byte-identical; each side checks the MD5) |
//! | `case 8` | tracker restarted, nodes silent | tracker | after a restart, `find` of a registered file lists nobody |
//! | `case 9` | tracker restarted, nodes call `updatelist` | tracker | the node's `updatelist` makes `find` list it again |
//! | `case 10` | node killed | tracker | after one node is killed, `find` lists only the live one |
//! | `case 11` | file added, then `updatelist` | node | a file written into the node's folder is found after its `updatelist` |
//!
//! Tracker cases run the submission's tracker with peershare nodes and raw `find` probes; node
//! cases run the submission's node against peershare's tracker and a peershare node. A case
//! whose program was not given fails saying so. Replies are JSON: decoded by
//! [`crate::xfs::wire`] and compared as values (a tracker may list every file of a node, as the
//! original does, or only the matching one, as peershare does).
//!
//! Choices where the assignment is loose:
//! - The tracker's port is the original's fixed 5025, so tracker and node cases run one after
//!   the other; a port held by another program stops the grading with its holder named.
//! - Nodes are started as `node.py 127.0.0.1 <port> share` in a folder of their own holding
//!   `share/` and a `latency.txt` with 10 ms between every pair of the grading's nodes (the
//!   original reads that file at start).
//! - A node is ready once it printed a line `ACK` (prompts set aside), within 8 s.
//! - Case 2 accepts any wording with `refused` or `down`: the original dies with a
//!   `ConnectionRefusedError` traceback, peershare prints `Connection refused, tracking server is
//!   down`; both tell the user the tracker cannot be reached.
//! - Case 10 asks `find` up to twice within 10 s, since the original refreshes nodes only when
//!   asked. Deadlines stretch with `--timeout-scale`.

mod node;
mod tracker;

use super::report::Report;
use super::runner::{self, CommandLine, Proc, Workdir};
use super::{programs, Abort, Context, TrackerNodeArgs};
use crate::xfs::wire::{self, FileEntry, Message};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// The tracker's port in the original.
pub const SPEC_PORT: u16 = 5025;

/// What is being graded: the two programs (either may be absent; its cases then fail saying so).
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

/// Runs the rubric: the tracker cases, then the node cases; reported in the README's order.
pub fn grade(subject: &Subject, cx: &Context) -> Result<Report, Abort> {
    let start = Instant::now();
    let mut report = Report::default();
    runner::wait_port_free(SPEC_PORT, cx.timeouts.secs(2.0), &cx.shutdown)
        .map_err(Abort::PortBusy)?;
    let (tracker, node) = (subject.tracker.as_ref(), subject.node.as_ref());
    super::role_part(&mut report, "tracker", tracker, tracker::IDS, |t| {
        tracker::part(t, cx)
    })?;
    super::role_part(&mut report, "node", node, node::IDS, |n| node::part(n, cx))?;
    report.tests.sort_by_key(|t| case_number(&t.name));
    report.elapsed = start.elapsed();
    Ok(report)
}

/// 7 for `case 7: …`.
fn case_number(name: &str) -> u32 {
    name.strip_prefix("case ")
        .and_then(|r| r.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX)
}

/// peershare's own `xfs <role>`.
fn own(cx: &Context, role: &str) -> CommandLine {
    CommandLine {
        program: cx.peershare.clone().into_os_string(),
        args: vec!["xfs".into(), role.into()],
    }
}

/// Starts a tracker in `dir` and waits for 5025 to listen; the evidence if it does not.
fn start_tracker(
    label: &str,
    command: &CommandLine,
    dir: &Path,
    cx: &Context,
) -> Result<Result<Proc, Vec<String>>, Abort> {
    runner::wait_port_free(SPEC_PORT, cx.timeouts.secs(10.0), &cx.shutdown)
        .map_err(Abort::PortBusy)?;
    let mut p = Proc::spawn(label, command, dir)?;
    let up = runner::wait_until(cx.timeouts.secs(5.0), &cx.shutdown, || {
        runner::listening_on(SPEC_PORT) || p.exited().is_some()
    }) && runner::listening_on(SPEC_PORT);
    cx.check_interrupt()?;
    if !up {
        let mut e = vec![format!("{label} never listened on 127.0.0.1:{SPEC_PORT}")];
        e.extend(p.evidence());
        return Ok(Err(e));
    }
    Ok(Ok(p))
}

/// A node at work: its program, its port and its folder (with `share/`).
struct Node {
    proc: Proc,
    port: u16,
    dir: Workdir,
}

impl Node {
    /// Starts `command 127.0.0.1 <port> share` in a fresh folder holding `files` in `share/`
    /// and a latency.txt for `ports` (the `ACK` is awaited apart, by [`Node::acked`]).
    fn start(
        label: &str,
        command: &CommandLine,
        port: u16,
        files: &[(&str, &[u8])],
        ports: &[u16],
    ) -> Result<Node, Abort> {
        let dir = Workdir::new(&format!("xfs-{label}"))?;
        std::fs::create_dir_all(dir.path.join("share"))?;
        for (name, bytes) in files {
            std::fs::write(dir.path.join("share").join(name), bytes)?;
        }
        std::fs::write(dir.path.join("latency.txt"), latency_table(ports))?;
        let args = [
            "127.0.0.1".to_string(),
            port.to_string(),
            "share".to_string(),
        ];
        let mut proc = Proc::spawn_interactive(label, &command.with(&args), &dir.path)?;
        proc.interrupt_first();
        Ok(Node { proc, port, dir })
    }

    /// Waits for a line `ACK`; the evidence if it does not come.
    fn acked(&mut self, cx: &Context) -> Result<(), Vec<String>> {
        let (ok, out) = self
            .proc
            .stdout
            .wait_for(0, cx.timeouts.secs(8.0), &cx.shutdown, |t| {
                has_line(t, "ACK")
            });
        if ok {
            return Ok(());
        }
        let mut e = vec![format!(
            "{} did not print `ACK` after registering; it printed: {:?}",
            self.proc.label,
            out.lines().take(6).collect::<Vec<_>>()
        )];
        e.extend(self.proc.evidence());
        Err(e)
    }

    /// Types `line`; waits until what it prints after satisfies `done`; that text.
    fn command(&mut self, line: &str, cx: &Context, done: impl Fn(&str) -> bool) -> (bool, String) {
        let mark = self.proc.stdout.mark();
        let _ = self.proc.send_line(line);
        self.proc
            .stdout
            .wait_for(mark, cx.timeouts.secs(5.0), &cx.shutdown, done)
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

/// `latency.txt`: 10 ms both ways between every two of `ports` on 127.0.0.1.
fn latency_table(ports: &[u16]) -> String {
    let mut out = String::new();
    for a in ports {
        for b in ports.iter().filter(|b| *b != a) {
            out.push_str(&format!("127.0.0.1 {a} 127.0.0.1 {b} 10\n"));
        }
    }
    out
}

/// Whether `text` has `line` as a line once prompts (`> `) and outer spaces are set aside.
fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| {
        let mut l = l.trim();
        while let Some(rest) = l.strip_prefix('>') {
            l = rest.trim_start();
        }
        l.trim_end() == line
    })
}

/// A node in a find reply: its address and its file entries.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    port: u16,
    ip: String,
    files: Vec<FileEntry>,
}

/// A raw `find name` at the tracker: the nodes listed, or what went wrong.
fn find(name: &str) -> Result<Vec<Found>, String> {
    let tracker = SocketAddr::from(([127, 0, 0, 1], SPEC_PORT));
    let reply = crate::xfs::conn::request(
        tracker,
        format!("find {name}").as_bytes(),
        Duration::from_secs(3),
        Duration::from_secs(8),
    )
    .map_err(|e| e.to_string())?;
    match wire::parse(&reply) {
        Ok(Message::NodeList(nodes)) => Ok(nodes
            .into_iter()
            .map(|n| Found {
                port: n.port,
                ip: n.ip,
                files: n.filelist.files,
            })
            .collect()),
        Ok(other) => Err(format!("a reply that is not a NodeList: {other:?}")),
        Err(e) => Err(format!(
            "{:?} is not a NodeList: {e}",
            String::from_utf8_lossy(&reply[..reply.len().min(200)])
        )),
    }
}

/// The `ip:port` list of a find outcome, for evidence.
fn listed(found: &Result<Vec<Found>, String>) -> String {
    match found {
        Ok(nodes) if nodes.is_empty() => "no nodes".into(),
        Ok(nodes) => nodes
            .iter()
            .map(|n| format!("{}:{}", n.ip, n.port))
            .collect::<Vec<_>>()
            .join(", "),
        Err(e) => format!("no answer ({e})"),
    }
}

/// Whether `found` lists exactly the nodes on `ports`, in that order, each with `file`
/// (name, size and MD5) among its entries.
fn lists(found: &Result<Vec<Found>, String>, ports: &[u16], file: &FileEntry) -> bool {
    found.as_ref().is_ok_and(|nodes| {
        nodes.len() == ports.len()
            && nodes
                .iter()
                .zip(ports)
                .all(|(n, p)| n.port == *p && n.ip == "127.0.0.1" && n.files.contains(file))
    })
}

/// The file entry a node should report for `bytes` named `name`.
fn entry(name: &str, bytes: &[u8]) -> FileEntry {
    FileEntry {
        name: name.into(),
        size: bytes.len() as u64,
        hash_val: {
            use crate::core::digest::StreamHasher;
            let mut h = Box::<crate::xfs::files::Md5Hasher>::default();
            h.update(bytes);
            h.finish_hex()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_lines_match_with_prompts_set_aside() {
        assert!(has_line("> ACK\n> ", "ACK"));
        assert!(has_line("Node starting\nACK\n", "ACK"));
        assert!(!has_line("NACK\n", "ACK"));
        assert!(has_line("> > Found nodes:\n", "Found nodes:"));
    }

    #[test]
    fn cases_sort_by_number() {
        assert_eq!(case_number("case 10: node killed"), 10);
        assert!(case_number("case 2: x") < case_number("case 11: y"));
    }

    #[test]
    fn the_latency_table_has_every_ordered_pair() {
        assert_eq!(
            latency_table(&[1, 2]),
            "127.0.0.1 1 127.0.0.1 2 10\n127.0.0.1 2 127.0.0.1 1 10\n"
        );
    }
}
