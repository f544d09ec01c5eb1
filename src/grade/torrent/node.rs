//! `node 1`, `node 2`, `node 3`: the submission's node, first with the grader playing the
//! tracker on 12345 and a raw node asking it for a file, then downloading from two peershare
//! owners registered with peershare's tracker.

use super::{ask, expect, listed, node_dir, spec_addr, Raw};
use crate::grade::report::TestResult;
use crate::grade::runner::{self, CommandLine, Proc, Workdir};
use crate::grade::test_bytes;
use crate::grade::{Abort, Context};
use crate::torrent::wire::{Message, Mode};
use std::net::SocketAddr;
use std::time::Instant;

pub const IDS: &[&str] = &[
    "node 1: answers a size query and serves a range as 7,216-byte pieces",
    "node 2: a download from two owners lands byte-identical",
    "node 3: sends UPDATE to the tracker after serving",
];

/// The original's piece size (`BUFFER_SIZE - 2000`).
const PIECE: usize = 7216;
/// The served file's size and the range asked for (five pieces, the last one short).
const SERVED: usize = 30_000;
const RANGE: (i64, i64) = (1000, 30_000);
/// The size of the file downloaded from two owners.
const SHARED: usize = 100_003;

pub fn part(command: &CommandLine, cx: &Context) -> Result<Vec<TestResult>, Abort> {
    cx.say("BitTorrent-Python node");
    let (node1, node3) = serving(command, cx)?;
    cx.check_interrupt()?;
    let node2 = downloading(command, cx)?;
    Ok(vec![node1, node2, node3])
}

/// A node program started as `-node_id <id>` in `dir`, interactive, ended with Ctrl-C.
fn start_node(command: &CommandLine, id: u32, dir: &std::path::Path) -> Result<Proc, Abort> {
    let mut p = Proc::spawn_interactive(
        &format!("node {id}"),
        &command.with(&["-node_id", &id.to_string()]),
        dir,
    )?;
    p.interrupt_first();
    Ok(p)
}

/// `node 1` and `node 3`: node 4 offers `served.bin`; a raw node asks its size and a range.
fn serving(command: &CommandLine, cx: &Context) -> Result<(TestResult, TestResult), Abort> {
    super::port_free(cx)?;
    let tracker = Raw::bound(spec_addr(), spec_addr())?;
    let file = test_bytes(SERVED, 4);
    let dir = node_dir("torrent-node4", 4, &[("served.bin", &file)])?;
    let mut p = start_node(command, 4, &dir.path)?;
    let is = |mode: Mode, f: &'static str| move |m: &Message| matches!(m, Message::Node2Tracker { node_id: 4, filename, mode: md } if *md == mode && filename == f);
    let (reg, mut seen) = expect(&tracker, cx.timeouts.secs(8.0), is(Mode::Register, ""));
    let _ = p.send_line("torrent -setMode send served.bin");
    let (own, more) = expect(&tracker, cx.timeouts.secs(5.0), is(Mode::Own, "served.bin"));
    seen.extend(more);
    let mut e1 = vec![format!(
        "the grader's tracker on 12345 got, after start and `torrent -setMode send served.bin`: {}",
        listed(&seen)
    )];
    let Some((_, s)) = own else {
        e1.push(match reg {
            Some(_) => "wanted OWN served.bin from node 4 after the send command".into(),
            None => "wanted REGISTER from node 4, then OWN served.bin".into(),
        });
        e1.extend(p.evidence());
        let e3 = vec!["the node never offered served.bin, so nothing was served".into()];
        return Ok((
            TestResult::new(IDS[0], 10.0, false, e1),
            TestResult::new(IDS[2], 10.0, false, e3),
        ));
    };
    let (size_ok, size_e) = size_query(s, cx)?;
    let (range_ok, range_e) = range_request(s, &file, cx)?;
    e1.extend(size_e);
    e1.extend(range_e);
    let (update, after) = expect(
        &tracker,
        cx.timeouts.secs(3.0),
        is(Mode::Update, "served.bin"),
    );
    let mut e3 = vec![format!(
        "after serving, the grader's tracker got: {}",
        listed(&after)
    )];
    e3.push("wanted UPDATE served.bin from node 4".into());
    if !(size_ok && range_ok) {
        e1.extend(p.evidence());
    }
    if update.is_none() {
        e3.extend(p.evidence());
    }
    Ok((
        TestResult::new(IDS[0], 10.0, size_ok && range_ok, e1),
        TestResult::new(IDS[2], 10.0, update.is_some(), e3),
    ))
}

/// A size query to `s` from a fresh socket: the answer must carry the file's size.
fn size_query(s: SocketAddr, cx: &Context) -> Result<(bool, Vec<String>), Abort> {
    let raw = Raw::new(s)?;
    let q = Message::Node2Node {
        src_node_id: 9,
        dest_node_id: 4,
        filename: "served.bin".into(),
        size: -1,
    };
    let (reply, seen) = ask(&raw, &q, s, cx, |m| matches!(m, Message::Node2Node { .. }));
    let ok = matches!(reply, Some(Message::Node2Node { size, ref filename, .. })
        if size == SERVED as i64 && filename == "served.bin");
    Ok((
        ok,
        vec![
            format!("size query (size -1) to the node's {s}: {}", listed(&seen)),
            format!("wanted a Node2Node for served.bin with size {SERVED}"),
        ],
    ))
}

/// A range request to `s`: every piece exact, then the end marker.
fn range_request(s: SocketAddr, file: &[u8], cx: &Context) -> Result<(bool, Vec<String>), Abort> {
    let raw = Raw::new(s)?;
    raw.send(&crate::torrent::wire::encode(&Message::ChunkSharing {
        src_node_id: 9,
        dest_node_id: 4,
        filename: "served.bin".into(),
        range: RANGE,
        idx: -1,
        chunk: None,
    }));
    let (a, b) = (RANGE.0 as usize, RANGE.1 as usize);
    let n = (b - a).div_ceil(PIECE);
    let mut pieces: Vec<Option<bool>> = vec![None; n];
    let (mut ended, mut problems) = (false, Vec::new());
    let end = Instant::now() + cx.timeouts.secs(10.0);
    while !ended && Instant::now() < end {
        let Some((bytes, _)) = raw.recv_from(cx.timeouts.secs(3.0)) else {
            break;
        };
        match crate::torrent::wire::parse(&bytes) {
            Ok(Message::ChunkSharing { idx: -1, .. }) => ended = true,
            Ok(Message::ChunkSharing {
                idx,
                chunk: Some(c),
                range,
                ..
            }) if range == RANGE && (0..n as i64).contains(&idx) => {
                let from = a + PIECE * idx as usize;
                let want = &file[from..(from + PIECE).min(b)];
                let ok = c == want;
                if !ok {
                    problems.push(format!(
                        "piece {idx}: {} bytes, wanted {} bytes of the file from {from}{}",
                        c.len(),
                        want.len(),
                        if c.len() == want.len() {
                            " (same length, other bytes)"
                        } else {
                            ""
                        }
                    ));
                }
                pieces[idx as usize] = Some(ok);
            }
            Ok(m) => problems.push(format!("unexpected: {}", super::describe(&m))),
            Err(e) => problems.push(format!("{} bytes that are not a message: {e}", bytes.len())),
        }
    }
    let good = pieces.iter().filter(|p| **p == Some(true)).count();
    let ok = ended && good == n && problems.is_empty();
    let mut e = vec![format!(
        "range request {RANGE:?}: {good} of {n} pieces exact, end marker {}",
        if ended { "seen" } else { "not seen" }
    )];
    e.extend(problems.into_iter().take(5));
    e.push(format!(
        "wanted pieces 0..{n} of 7,216 bytes (the last {}), each the file's bytes, then idx -1",
        (b - a) - PIECE * (n - 1)
    ));
    Ok((ok, e))
}

/// `node 2`: peershare's tracker and owners 2 and 3 hold `shared.bin`; the submission's
/// node 1 downloads it.
fn downloading(command: &CommandLine, cx: &Context) -> Result<TestResult, Abort> {
    super::port_free(cx)?;
    let file = test_bytes(SHARED, 1);
    let swarm = match peershare_swarm(&file, cx)? {
        Ok(swarm) => swarm,
        Err(e) => return Ok(TestResult::new(IDS[1], 10.0, false, e)),
    };
    cx.check_interrupt()?;
    let dir = node_dir("torrent-node1", 1, &[])?;
    let mut p = start_node(command, 1, &dir.path)?;
    p.stdout
        .wait_for(0, cx.timeouts.secs(3.0), &cx.shutdown, |t| {
            t.contains("ENTER YOUR COMMAND!")
        });
    let _ = p.send_line("torrent -setMode download shared.bin");
    let landed = dir.path.join("node_files/node1/shared.bin");
    let same = || std::fs::read(&landed).is_ok_and(|b| b == file);
    runner::wait_until(cx.timeouts.secs(20.0), &cx.shutdown, || {
        same() || p.exited().is_some()
    });
    cx.check_interrupt()?;
    let line = "The process of sending a chunk to node1 of file shared.bin has finished!";
    let served: Vec<bool> = swarm
        .owners
        .iter()
        .map(|(o, _)| o.stdout.text().contains(line))
        .collect();
    let ok = same() && served.iter().all(|s| *s);
    let mut e = vec![
        "peershare's tracker on 12345 and peershare's nodes 2 and 3 offer shared.bin \
         (100,003 bytes); the node typed `torrent -setMode download shared.bin`"
            .to_string(),
        match std::fs::read(&landed) {
            Ok(g) => format!(
                "node_files/node1/shared.bin: {} bytes, {}",
                g.len(),
                if g == file { "identical" } else { "different" }
            ),
            Err(_) => "node_files/node1/shared.bin is not there".into(),
        },
        format!("owners 2 and 3 served a range to node 1: {served:?}"),
        "wanted the file byte-identical, with a range from each of the two owners".into(),
    ];
    if !ok {
        e.extend(
            p.stdout
                .last_lines(8)
                .into_iter()
                .map(|l| format!("  | {l}")),
        );
        e.extend(p.evidence());
    }
    Ok(TestResult::new(IDS[1], 10.0, ok, e))
}

/// peershare's programs the downloading node meets: the tracker and the owners, each with its
/// folder (ended and removed on drop).
struct Swarm {
    _tracker: (Proc, Workdir),
    owners: Vec<(Proc, Workdir)>,
}

/// peershare's tracker on 12345 and nodes 2 and 3 offering `file` as `shared.bin`, or the
/// evidence of which of them did not start.
fn peershare_swarm(file: &[u8], cx: &Context) -> Result<Result<Swarm, Vec<String>>, Abort> {
    let own = |args: &[&str]| CommandLine {
        program: cx.peershare.clone().into_os_string(),
        args: args.iter().map(Into::into).collect(),
    };
    let tracker_dir = Workdir::new("torrent-peershare-tracker")?;
    let tracker = Proc::spawn(
        "peershare tracker",
        &own(&["torrent", "tracker"]),
        &tracker_dir.path,
    )?;
    runner::wait_until(cx.timeouts.secs(5.0), &cx.shutdown, || {
        runner::udp_bound(super::SPEC_PORT)
    });
    let mut owners = Vec::new();
    for id in [2u32, 3] {
        let dir = node_dir(&format!("torrent-owner{id}"), id, &[("shared.bin", file)])?;
        let mut p = start_node(&own(&["torrent", "node"]), id, &dir.path)?;
        let (ready, _) = p
            .stdout
            .wait_for(0, cx.timeouts.secs(5.0), &cx.shutdown, |t| {
                t.contains("ENTER YOUR COMMAND!")
            });
        let _ = p.send_line("torrent -setMode send shared.bin");
        let (offered, _) = p
            .stdout
            .wait_for(0, cx.timeouts.secs(5.0), &cx.shutdown, |t| {
                t.contains("You are free now!")
            });
        if !(ready && offered) {
            let mut e = vec![format!(
                "peershare's own node {id} did not offer shared.bin"
            )];
            e.extend(p.evidence());
            return Ok(Err(e));
        }
        owners.push((p, dir));
    }
    Ok(Ok(Swarm {
        _tracker: (tracker, tracker_dir),
        owners,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_asked_for_is_five_pieces_with_a_short_last_one() {
        let n = ((RANGE.1 - RANGE.0) as usize).div_ceil(PIECE);
        assert_eq!(n, 5);
        assert!((RANGE.1 - RANGE.0) as usize - PIECE * 4 < PIECE);
    }
}
