//! Cases 2, 4, 5, 6, 7 and 11: the submission's node, first with no tracker, then against
//! peershare's tracker on 5025 beside a peershare node P.

use super::{entry, find, has_line, listed, lists, own, start_tracker, Node};
use crate::grade::report::TestResult;
use crate::grade::runner::{self, CommandLine, Workdir};
use crate::grade::test_bytes;
use crate::grade::{Abort, Context};
use crate::xfs::wire::{self, Message};
use std::time::Duration;

pub const IDS: &[&str] = &[
    "case 2: a node started without a tracker says it cannot connect",
    "case 4: updatelist gets the node's files with sizes and MD5s",
    "case 5: getload of an idle node is 0",
    "case 6: find prints the nodes that have a file",
    "case 7: a download lands byte-identical, both ways",
    "case 11: a file added to the folder is found after updatelist",
];

pub fn part(command: &CommandLine, cx: &Context) -> Result<Vec<TestResult>, Abort> {
    cx.say("Simple xFS node");
    let ports = [
        runner::free_port()?,
        runner::free_port()?,
        runner::free_port()?,
    ];
    let case2 = no_tracker(command, &ports, cx)?;
    let dir = Workdir::new("xfs-peershare-tracker")?;
    let mut tracker = match start_tracker("peershare tracker", &own(cx, "tracker"), &dir.path, cx)?
    {
        Ok(t) => t,
        Err(e) => return Ok(rest_fail(case2, &e)),
    };
    let n_bytes = test_bytes(40_000, 3);
    let mut n = Node::start("node N", command, ports[1], &[("n.txt", &n_bytes)], &ports)?;
    if let Err(e) = n.acked(cx) {
        return Ok(rest_fail(case2, &e));
    }
    let case5 = getload(&n);
    let case4 = updatelist(&n, &n_bytes);
    let case11 = added_file(&mut n, cx);
    cx.check_interrupt()?;
    let p_bytes = test_bytes(60_000, 4);
    let mut p = Node::start(
        "peershare node P",
        &own(cx, "node"),
        ports[2],
        &[("p.txt", &p_bytes)],
        &ports,
    )?;
    let p_ok = p.acked(cx);
    let (case6, case7) = match p_ok {
        Ok(()) => (
            find_command(&mut n, p.port, cx),
            download(&mut n, &mut p, &n_bytes, &p_bytes, cx),
        ),
        Err(e) => (
            TestResult::new(IDS[3], 10.0, false, e.clone()),
            TestResult::new(IDS[4], 10.0, false, e),
        ),
    };
    let mut out = vec![case2, case4, case5, case6, case7, case11];
    for t in out.iter_mut().skip(1).filter(|t| !t.passed) {
        t.evidence.extend(n.proc.evidence());
    }
    tracker.kill();
    Ok(out)
}

/// Case 2 as given, and every other case failed with `e`.
fn rest_fail(case2: TestResult, e: &[String]) -> Vec<TestResult> {
    let mut out = vec![case2];
    out.extend(
        IDS[1..]
            .iter()
            .map(|id| TestResult::new(id, 10.0, false, e.to_vec())),
    );
    out
}

/// Case 2: nothing listens on 5025; within 5 s the node's output says `refused` or `down`,
/// and it prints no `ACK`.
fn no_tracker(command: &CommandLine, ports: &[u16], cx: &Context) -> Result<TestResult, Abort> {
    runner::wait_port_free(super::SPEC_PORT, cx.timeouts.secs(10.0), &cx.shutdown)
        .map_err(Abort::PortBusy)?;
    let mut n = Node::start("node without a tracker", command, ports[0], &[], ports)?;
    let said = |t: &str| {
        let t = t.to_lowercase();
        t.contains("refused") || t.contains("down")
    };
    runner::wait_until(cx.timeouts.secs(5.0), &cx.shutdown, || {
        said(&n.proc.stdout.text()) || said(&n.proc.stderr.text())
    });
    cx.check_interrupt()?;
    let (out, err) = (n.proc.stdout.text(), n.proc.stderr.text());
    let ok = (said(&out) || said(&err)) && !has_line(&out, "ACK");
    let mut e = vec!["nothing listened on 127.0.0.1:5025".to_string()];
    e.push(format!(
        "the node printed: {:?}",
        out.lines()
            .chain(err.lines())
            .filter(|l| !l.trim().is_empty())
            .take(6)
            .collect::<Vec<_>>()
    ));
    e.push("wanted a line saying the tracker refused or is down, and no ACK".into());
    if !ok {
        e.extend(n.proc.evidence());
    }
    n.proc.kill();
    Ok(TestResult::new(IDS[0], 10.0, ok, e))
}

/// Sends `text` to the node's port and returns its reply, or what went wrong.
fn ask(n: &Node, text: &str) -> Result<Vec<u8>, String> {
    crate::xfs::conn::request(
        n.addr(),
        text.as_bytes(),
        Duration::from_secs(3),
        Duration::from_secs(5),
    )
    .map_err(|e| e.to_string())
}

/// Case 5: a raw `getload` gets `0`.
fn getload(n: &Node) -> TestResult {
    let reply = ask(n, "getload");
    let ok = reply
        .as_ref()
        .is_ok_and(|r| String::from_utf8_lossy(r).trim() == "0");
    let e = vec![
        format!(
            "raw `getload` to 127.0.0.1:{}: {}",
            n.port,
            match &reply {
                Ok(r) => format!("{:?}", String::from_utf8_lossy(r)),
                Err(e) => e.clone(),
            }
        ),
        "wanted 0 (the node downloads nothing)".into(),
    ];
    TestResult::new(IDS[2], 10.0, ok, e)
}

/// Case 4: a raw `updatelist` gets a FileList with n.txt's size and MD5, the node's ip and port.
fn updatelist(n: &Node, n_bytes: &[u8]) -> TestResult {
    let want = entry("n.txt", n_bytes);
    let reply = ask(n, "updatelist");
    let (ok, got) = match &reply {
        Ok(r) => match wire::parse(r) {
            Ok(Message::FileList(l)) => (
                l.files.contains(&want)
                    && l.node_port == Some(n.port)
                    && l.node_ip.as_deref() == Some("127.0.0.1"),
                format!("{l:?}"),
            ),
            Ok(other) => (false, format!("not a FileList: {other:?}")),
            Err(e) => (false, format!("{:?}: {e}", String::from_utf8_lossy(r))),
        },
        Err(e) => (false, e.clone()),
    };
    let e = vec![
        format!("raw `updatelist` to 127.0.0.1:{}: {got}", n.port),
        format!(
            "wanted a FileList with {want:?}, node_ip \"127.0.0.1\", node_port {}",
            n.port
        ),
    ];
    TestResult::new(IDS[1], 10.0, ok, e)
}

/// Case 11: `added.txt` is written into the node's folder; after `updatelist`, find lists the node.
fn added_file(n: &mut Node, cx: &Context) -> TestResult {
    let bytes = test_bytes(5_000, 5);
    let want = entry("added.txt", &bytes);
    if let Err(err) = std::fs::write(n.dir.path.join("share/added.txt"), &bytes) {
        return TestResult::new(
            IDS[5],
            10.0,
            false,
            vec![format!("could not add the file: {err}")],
        );
    }
    let _ = n.proc.send_line("updatelist");
    let mut found = Err("not asked".to_string());
    runner::wait_until(cx.timeouts.secs(4.0), &cx.shutdown, || {
        found = find("added.txt");
        lists(&found, &[n.port], &want)
    });
    let e = vec![
        "added.txt was written into the node's share/ and the node typed `updatelist`".to_string(),
        format!("find added.txt at the tracker listed: {}", listed(&found)),
        format!("wanted 127.0.0.1:{} with {want:?}", n.port),
    ];
    TestResult::new(IDS[5], 10.0, lists(&found, &[n.port], &want), e)
}

/// Case 6: `find p.txt` prints `Found nodes:` and P's address; `find nothing.txt` prints
/// `No nodes found`.
fn find_command(n: &mut Node, p_port: u16, cx: &Context) -> TestResult {
    let line = format!("127.0.0.1 {p_port}");
    let (found, out) = n.command("find p.txt", cx, |t| {
        has_line(t, "Found nodes:") && has_line(t, &line)
    });
    let (none, out2) = n.command("find nothing.txt", cx, |t| has_line(t, "No nodes found"));
    let mut e = vec![format!(
        "the node typed `find p.txt`; it printed: {:?}",
        lines(&out)
    )];
    e.push(format!("then `find nothing.txt`: {:?}", lines(&out2)));
    e.push(format!(
        "wanted `Found nodes:` and `{line}`, then `No nodes found`"
    ));
    TestResult::new(IDS[3], 10.0, found && none, e)
}

fn lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .take(8)
        .collect()
}

/// Case 7: the node downloads p.txt from P, and P downloads n.txt from the node.
fn download(
    n: &mut Node,
    p: &mut Node,
    n_bytes: &[u8],
    p_bytes: &[u8],
    cx: &Context,
) -> TestResult {
    let mut e = Vec::new();
    let mut ok = true;
    for (who, from, name, bytes) in [
        (&mut *n, "P", "p.txt", p_bytes),
        (&mut *p, "the node", "n.txt", n_bytes),
    ] {
        let _ = who.proc.send_line(&format!("download {name}"));
        let landed = who.dir.path.join("share").join(name);
        let same = runner::wait_until(cx.timeouts.secs(15.0), &cx.shutdown, || {
            std::fs::read(&landed).is_ok_and(|b| b == bytes)
        });
        let got = std::fs::read(&landed).map(|b| b.len());
        e.push(format!(
            "{} typed `download {name}` (from {from}): {}",
            who.proc.label,
            match got {
                Ok(len) if same => format!("{len} bytes, identical"),
                Ok(len) => format!("{len} bytes, different"),
                Err(_) => "nothing landed".into(),
            }
        ));
        ok &= same;
    }
    e.push(format!(
        "wanted p.txt ({} bytes) at the node and n.txt ({} bytes) at P, byte-identical",
        p_bytes.len(),
        n_bytes.len()
    ));
    TestResult::new(IDS[4], 10.0, ok, e)
}
