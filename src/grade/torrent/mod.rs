//! The BitTorrent-Python rubric (issue 12): six tests of 10 points, run against any
//! implementation, with peershare playing the other roles.
//!
//! | id | what it checks | how |
//! |---|---|---|
//! | `tracker 1` | REGISTER/OWN/NEED get the right replies | raw nodes: an OWNed file's NEED lists its owner (id, the address the OWN came from, 0 uploads); an unknown file's NEED gets an empty list |
//! | `tracker 2` | owners are ranked by upload count | three raw owners, UPDATEs 2 and 1 from the last two: NEED lists them 2, 1, 0 |
//! | `tracker 3` | a silent node is removed, a live one kept | one raw owner goes silent, one REGISTERs every second; NEED once a second until only the live one is listed |
//! | `node 1` | a size query is answered and a range served | the grader plays the tracker on 12345; after `send`, a raw node asks the size from a fresh socket, then a range: 7,216-byte pieces, exact bytes, then the end marker |
//! | `node 2` | a download from two owners lands byte-identical | peershare's tracker and two peershare owners; both must have served the submission's node |
//! | `node 3` | UPDATE follows serving | the grader's tracker receives UPDATE for the file once the range is served |
//!
//! Replies are pickles, so they are decoded by peershare's allow-listed decoder
//! ([`crate::torrent::wire`]) and compared as values (a list where a tuple is expected passes,
//! as the protocol allows); what the grader sends is peershare's protocol-3 encoding, which every
//! Python pickle reads.
//!
//! Choices where the assignment is loose:
//! - The tracker's port is the original's fixed 12345 (config.py's `TRACKER_ADDR`), so tracker
//!   and node tests run one after the other and wait for the port; a port held by another
//!   program stops the grading with its holder named, as the P2PTracker++ grader does at 5100.
//! - Nodes are started as the original's `node.py -node_id <n>` and find their files in
//!   `node_files/node<n>/` of their working folder (made by the grader, with `logs/`).
//! - A silent node must be gone within two sweeps plus 4 s. The sweep is config.py's
//!   `TRACKER_TIME_INTERVAL` when the submission folder has a config.py that sets it, else the
//!   original's 22 s; `--self` starts peershare's tracker with a 3 s sweep so the test takes
//!   seconds. Deadlines stretch with `--timeout-scale`.
//! - A tracker is ready once something holds UDP 12345 (it answers nothing unasked); a node is
//!   ready for commands once the grader's tracker has its REGISTER, or (against peershare's
//!   tracker) once it printed `ENTER YOUR COMMAND!` or 3 s passed.
//! - Tests of a role whose program was not given fail with that as their evidence.

mod node;
mod tracker;

use super::report::Report;
use super::runner::CommandLine;
use super::udp::Raw;
use super::{programs, Abort, Context, TrackerNodeArgs};
use crate::torrent::wire::{self, Message};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// The tracker's port in the original's config.py.
pub const SPEC_PORT: u16 = 12345;

/// How often the original tracker sweeps (config.py's `TRACKER_TIME_INTERVAL`).
const ORIGINAL_SWEEP: Duration = Duration::from_secs(22);

/// How often peershare's tracker sweeps under `--self`.
const SELF_SWEEP_MS: u64 = 3000;

/// What is being graded: the two programs (either may be absent; its tests then fail saying
/// so) and how often the tracker sweeps.
#[derive(Debug, Clone)]
pub struct Subject {
    pub tracker: Option<CommandLine>,
    pub node: Option<CommandLine>,
    pub sweep: Duration,
}

/// The subject the arguments describe, or the usage error.
pub fn subject(a: &TrackerNodeArgs, exe: &Path) -> Result<Subject, String> {
    let sweep = SELF_SWEEP_MS.to_string();
    let p = programs(
        &a.submission,
        a.common.self_test,
        [
            ("--tracker-cmd", &a.tracker_cmd, "tracker.py"),
            ("--node-cmd", &a.node_cmd, "node.py"),
        ],
        [
            &["torrent", "tracker", "--sweep-interval-ms", &sweep],
            &["torrent", "node"],
        ],
        exe,
    )?;
    Ok(Subject {
        tracker: p.first,
        node: p.second,
        sweep: if a.common.self_test {
            Duration::from_millis(SELF_SWEEP_MS)
        } else {
            a.submission
                .as_deref()
                .and_then(|d| super::find_file(d, "config.py"))
                .and_then(|p| std::fs::read_to_string(p).ok())
                .and_then(|text| sweep_in_config(&text))
                .unwrap_or(ORIGINAL_SWEEP)
        },
    })
}

/// The tracker's sweep interval a submission's config.py sets (`"TRACKER_TIME_INTERVAL": 22`
/// in the original's dict, or `TRACKER_TIME_INTERVAL = 22`), if it sets one of 1 to 3,600 s.
fn sweep_in_config(text: &str) -> Option<Duration> {
    let key = "TRACKER_TIME_INTERVAL";
    let at = text.find(key)? + key.len();
    let rest = text[at..].trim_start_matches(['"', '\'', ' ', '\t']);
    let rest = rest.strip_prefix([':', '='])?.trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let secs: u64 = digits.parse().ok()?;
    (1..=3600)
        .contains(&secs)
        .then(|| Duration::from_secs(secs))
}

/// Runs the rubric: the tracker tests, then the node tests.
pub fn grade(subject: &Subject, cx: &Context) -> Result<Report, Abort> {
    let start = Instant::now();
    let mut report = Report::default();
    super::runner::wait_udp_port_free(SPEC_PORT, cx.timeouts.secs(2.0), &cx.shutdown)
        .map_err(Abort::PortBusy)?;
    let (tracker, node) = (subject.tracker.as_ref(), subject.node.as_ref());
    super::role_part(&mut report, "tracker", tracker, tracker::IDS, |t| {
        tracker::part(t, subject.sweep, cx)
    })?;
    if tracker.is_some() {
        let sweep = subject.sweep.as_secs_f64();
        report
            .notes
            .push(format!("the tracker should sweep every {sweep} s"));
    }
    super::role_part(&mut report, "node", node, node::IDS, |n| node::part(n, cx))?;
    report.elapsed = start.elapsed();
    Ok(report)
}

/// 127.0.0.1:12345.
fn spec_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], SPEC_PORT))
}

/// Waits for the fixed port to be free again (the previous program may still be ending).
fn port_free(cx: &Context) -> Result<(), Abort> {
    super::runner::wait_udp_port_free(SPEC_PORT, cx.timeouts.secs(10.0), &cx.shutdown)
        .map_err(Abort::PortBusy)
}

/// The first datagram at `raw` within `wait` that decodes and that `want` accepts, with its
/// sender; every datagram seen, described, for the evidence.
fn expect(
    raw: &Raw,
    wait: Duration,
    want: impl Fn(&Message) -> bool,
) -> (Option<(Message, SocketAddr)>, Vec<String>) {
    let end = Instant::now() + wait;
    let mut seen = Vec::new();
    while let Some((bytes, from)) = raw.recv_from(end.saturating_duration_since(Instant::now())) {
        match wire::parse(&bytes) {
            Ok(m) if want(&m) => {
                seen.push(describe(&m));
                return (Some((m, from)), seen);
            }
            Ok(m) => seen.push(describe(&m)),
            Err(e) => seen.push(format!("{} bytes that are not a message: {e}", bytes.len())),
        }
    }
    (None, seen)
}

/// Sends `msg` to `to` up to three times, a second apart (scaled), until a reply `want`
/// accepts; the reply and everything seen.
fn ask(
    raw: &Raw,
    msg: &Message,
    to: SocketAddr,
    cx: &Context,
    want: impl Fn(&Message) -> bool,
) -> (Option<Message>, Vec<String>) {
    let mut seen = Vec::new();
    for _ in 0..3 {
        raw.send_to(&wire::encode(msg), to);
        let (got, more) = expect(raw, cx.timeouts.secs(1.0), &want);
        seen.extend(more);
        if let Some((m, _)) = got {
            return (Some(m), seen);
        }
    }
    (None, seen)
}

/// Datagrams seen, for a line of evidence.
fn listed(seen: &[String]) -> String {
    if seen.is_empty() {
        "nothing".into()
    } else {
        seen.join("; ")
    }
}

/// A message for a line of evidence (a piece's bytes as their count).
fn describe(m: &Message) -> String {
    match m {
        Message::ChunkSharing {
            filename,
            range,
            idx,
            chunk,
            ..
        } => match chunk {
            Some(c) => format!(
                "piece {idx} of {filename} range {range:?}: {} bytes",
                c.len()
            ),
            None => format!("ChunkSharing {filename} range {range:?} idx {idx}, no chunk"),
        },
        other => format!("{other:?}"),
    }
}

/// A folder for a node: `node_files/node<id>/` holding `files`, and `logs/`.
fn node_dir(
    label: &str,
    id: u32,
    files: &[(&str, &[u8])],
) -> std::io::Result<super::runner::Workdir> {
    let dir = super::runner::Workdir::new(label)?;
    let files_dir = dir.path.join(format!("node_files/node{id}"));
    std::fs::create_dir_all(&files_dir)?;
    std::fs::create_dir_all(dir.path.join("logs"))?;
    for (name, bytes) in files {
        std::fs::write(files_dir.join(name), bytes)?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_is_read_from_the_originals_config_dict_or_an_assignment() {
        let original = "config = {\n    \"constants\": {\n        \"NODE_TIME_INTERVAL\": 20,\n        \"TRACKER_TIME_INTERVAL\": 22,\n    }\n}\n";
        assert_eq!(sweep_in_config(original), Some(Duration::from_secs(22)));
        assert_eq!(
            sweep_in_config("TRACKER_TIME_INTERVAL = 5\n"),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            sweep_in_config("'TRACKER_TIME_INTERVAL':3"),
            Some(Duration::from_secs(3))
        );
        assert_eq!(sweep_in_config("TRACKER_TIME_INTERVAL = 0"), None);
        assert_eq!(sweep_in_config("TRACKER_TIME_INTERVAL = config.x"), None);
        assert_eq!(sweep_in_config("nothing here"), None);
    }
}
