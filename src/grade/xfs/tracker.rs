//! Cases 1, 3, 8, 9 and 10: the submission's tracker on 5025 with peershare nodes A and B, and
//! raw `find` probes.

use super::{entry, find, listed, lists, own, start_tracker, Node};
use crate::grade::report::TestResult;
use crate::grade::runner::{self, CommandLine, Workdir};
use crate::grade::test_bytes;
use crate::grade::{Abort, Context};
use crate::xfs::wire::FileEntry;
use std::time::{Duration, Instant};

pub const IDS: &[&str] = &[
    "case 1: a node that starts after the tracker is registered",
    "case 3: two nodes are registered and found in order",
    "case 8: after a restart, the tracker knows no silent node",
    "case 9: after a restart, a node's updatelist makes it found again",
    "case 10: a killed node is no longer found",
];

pub fn part(command: &CommandLine, cx: &Context) -> Result<Vec<TestResult>, Abort> {
    cx.say("Simple xFS tracker");
    let dir = Workdir::new("xfs-tracker")?;
    let mut tracker = match start_tracker("tracker", command, &dir.path, cx)? {
        Ok(t) => t,
        Err(e) => return Ok(fail_all(&e)),
    };
    let (a_bytes, b_bytes) = (test_bytes(20_000, 1), test_bytes(30_000, 2));
    let (a_txt, b_txt) = (entry("a.txt", &a_bytes), entry("b.txt", &b_bytes));
    let ports = [runner::free_port()?, runner::free_port()?];
    let node = own(cx, "node");
    let mut a = Node::start("node A", &node, ports[0], &[("a.txt", &a_bytes)], &ports)?;
    let case1 = registered(&mut a, &a_txt, cx);
    let files_b: [(&str, &[u8]); 2] = [("a.txt", &a_bytes), ("b.txt", &b_bytes)];
    let mut b = Node::start("node B", &node, ports[1], &files_b, &ports)?;
    let case3 = two_nodes(&mut b, &ports, &a_txt, &b_txt, cx);
    cx.check_interrupt()?;
    let case10 = killed_node(&mut b, &ports, &a_txt, cx);
    drop(b);
    tracker.kill();
    let (case8, case9) = restarted(command, &dir.path, &mut a, &a_txt, cx)?;
    let mut out = vec![case1, case3, case8, case9, case10];
    for t in out.iter_mut().filter(|t| !t.passed) {
        t.evidence.extend(tracker.evidence());
    }
    Ok(out)
}

/// Case 1: A prints `ACK` and `find a.txt` lists it with a.txt's size and MD5.
fn registered(a: &mut Node, a_txt: &FileEntry, cx: &Context) -> TestResult {
    let acked = a.acked(cx);
    let found = find("a.txt");
    let mut e = vec![format!(
        "peershare node A on port {} with a.txt: {}",
        a.port,
        if acked.is_ok() {
            "printed ACK"
        } else {
            "no ACK"
        }
    )];
    let ok = acked.is_ok() && lists(&found, &[a.port], a_txt);
    e.extend(acked.err().unwrap_or_default());
    e.push(format!("find a.txt listed: {}", listed(&found)));
    e.push(format!(
        "wanted 127.0.0.1:{} with a.txt ({} bytes, MD5 {})",
        a.port, a_txt.size, a_txt.hash_val
    ));
    TestResult::new(IDS[0], 10.0, ok, e)
}

/// Case 3: B registers too; `find a.txt` lists A then B, `find b.txt` B alone.
fn two_nodes(
    b: &mut Node,
    ports: &[u16],
    a_txt: &FileEntry,
    b_txt: &FileEntry,
    cx: &Context,
) -> TestResult {
    let b_acked = b.acked(cx).is_ok();
    let (both, only_b) = (find("a.txt"), find("b.txt"));
    let e = vec![
        format!(
            "peershare node B on port {} with a.txt and b.txt: {}",
            b.port,
            if b_acked { "printed ACK" } else { "no ACK" }
        ),
        format!("find a.txt listed: {}", listed(&both)),
        format!("find b.txt listed: {}", listed(&only_b)),
        "wanted A then B for a.txt, and B alone for b.txt".to_string(),
    ];
    let ok = b_acked && lists(&both, ports, a_txt) && lists(&only_b, &ports[1..], b_txt);
    TestResult::new(IDS[1], 10.0, ok, e)
}

fn fail_all(e: &[String]) -> Vec<TestResult> {
    IDS.iter()
        .map(|id| TestResult::new(id, 10.0, false, e.to_vec()))
        .collect()
}

/// Case 10: B is killed; `find a.txt` (asked up to twice within 10 s) lists A alone.
fn killed_node(b: &mut Node, ports: &[u16], a_txt: &FileEntry, cx: &Context) -> TestResult {
    b.proc.kill();
    let end = Instant::now() + cx.timeouts.secs(10.0);
    let mut seen = Vec::new();
    let mut ok = false;
    for _ in 0..2 {
        let found = find("a.txt");
        seen.push(listed(&found));
        ok = lists(&found, &ports[..1], a_txt);
        if ok || Instant::now() >= end {
            break;
        }
        cx.shutdown.sleep(Duration::from_millis(500));
    }
    let e = vec![
        format!("node B (port {}) was killed", ports[1]),
        format!("find a.txt then listed: {}", seen.join(" / then: ")),
        format!("wanted 127.0.0.1:{} alone", ports[0]),
    ];
    TestResult::new(IDS[4], 10.0, ok, e)
}

/// Cases 8 and 9: the tracker is restarted; `find a.txt` lists nobody, then A types
/// `updatelist` and `find a.txt` lists A.
fn restarted(
    command: &CommandLine,
    dir: &std::path::Path,
    a: &mut Node,
    a_txt: &FileEntry,
    cx: &Context,
) -> Result<(TestResult, TestResult), Abort> {
    cx.say("restarting the xFS tracker");
    let mut tracker = match start_tracker("restarted tracker", command, dir, cx)? {
        Ok(t) => t,
        Err(e) => {
            return Ok((
                TestResult::new(IDS[2], 10.0, false, e.clone()),
                TestResult::new(IDS[3], 10.0, false, e),
            ))
        }
    };
    let silent = find("a.txt");
    let e8 = vec![
        "the tracker was ended and started again; node A said nothing".to_string(),
        format!("find a.txt listed: {}", listed(&silent)),
        "wanted no nodes".into(),
    ];
    let case8 = TestResult::new(IDS[2], 10.0, lists(&silent, &[], a_txt), e8);
    let _ = a.proc.send_line("updatelist");
    cx.shutdown.sleep(cx.timeouts.secs(0.5));
    let mut back = find("a.txt");
    if !lists(&back, &[a.port], a_txt) {
        cx.shutdown.sleep(cx.timeouts.secs(1.0));
        back = find("a.txt");
    }
    let e9 = vec![
        "node A typed `updatelist`".to_string(),
        format!("find a.txt listed: {}", listed(&back)),
        format!("wanted 127.0.0.1:{} with a.txt", a.port),
    ];
    let mut case9 = TestResult::new(IDS[3], 10.0, lists(&back, &[a.port], a_txt), e9);
    if !case9.passed {
        case9.evidence.extend(tracker.evidence());
    }
    tracker.kill();
    Ok((case8, case9))
}
