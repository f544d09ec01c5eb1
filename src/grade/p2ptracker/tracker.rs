//! The tracker part (20 points): `tracker 1`-`tracker 4`, the submission's tracker alone on
//! 127.0.0.1:5100, asked with raw protocol bytes and peershare's own clients.

use super::*;

pub(super) fn part(cmd: &CommandLine, cx: &Context) -> Result<Vec<TestResult>, Abort> {
    let mut out = Vec::new();
    cx.say("tracker 1 (three peershare clients)");
    out.push(tracker_1(cmd, cx)?);
    cx.say("tracker 2 (one holder)");
    out.push(tracker_holders(cmd, cx, "tracker 2", 1)?);
    cx.say("tracker 3 (two holders)");
    out.push(tracker_holders(cmd, cx, "tracker 3", 2)?);
    cx.say("tracker 4 (unknown chunk)");
    out.push(tracker_4(cmd, cx)?);
    Ok(out)
}

fn tracker_1(cmd: &CommandLine, cx: &Context) -> Result<TestResult, Abort> {
    let dir = Workdir::new("tracker1")?;
    let chunks = make_chunks(&[3000, 3000, 3000]);
    let tracker = match start_tracker(cmd, &dir.path, cx)? {
        Ok(t) => t,
        Err(ev) => return Ok(result("tracker 1", false, ev)),
    };
    let mut tracker = tracker;
    let mut clients = Vec::new();
    let mut folders = Vec::new();
    for (k, name) in ["g1", "g2", "g3"].iter().enumerate() {
        let folder = write_folder(&dir.path, name, &[k as u32 + 1], &chunks)?;
        let c = CommandLine {
            program: cx.peershare.clone().into(),
            args: vec![],
        }
        .with(&[
            "p2ptracker",
            "client",
            "--transfer_port",
            "0",
            "--pace-ms",
            "1000",
            "--name",
            name,
            "--folder",
        ])
        .with(&[folder.as_os_str()]);
        clients.push(start_program(
            &format!("peershare client {name}"),
            &c,
            &dir.path,
        )?);
        folders.push(folder);
    }
    let limit = cx.timeouts.secs(25.0);
    let done = runner::wait_until(limit, &cx.shutdown, || {
        folders.iter().all(|f| present(f, &chunks).len() == 3) || tracker.exited().is_some()
    });
    cx.check_interrupt()?;
    let mut ev = vec![format!(
        "three peershare clients (g1 holds 1, g2 holds 2, g3 holds 3 of 3 chunks) connected at once and each needs the other two"
    )];
    for (name, f) in ["g1", "g2", "g3"].iter().zip(&folders) {
        ev.push(format!("{name} has chunks {}", list(present(f, &chunks))));
    }
    drop(clients);
    let passed = done && tracker.exited().is_none();
    if !passed {
        ev.push(format!(
            "not every client had every chunk within {:.0} s",
            limit.as_secs_f64()
        ));
        ev.extend(tracker.evidence());
        ev.extend(tail_of_log(&dir.path, 6));
    }
    Ok(result(
        "tracker 1",
        passed,
        if passed { vec![] } else { ev },
    ))
}

fn tail_of_log(dir: &Path, n: usize) -> Vec<String> {
    let text = read_log(dir);
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return vec!["logs.log: empty or missing".into()];
    }
    let mut out = vec![format!(
        "logs.log (last {} of {} lines):",
        n.min(lines.len()),
        lines.len()
    )];
    out.extend(
        lines[lines.len().saturating_sub(n)..]
            .iter()
            .map(|l| format!("  | {l}")),
    );
    out
}

/// `tracker 2` (one holder) and `tracker 3` (two holders): announce, ask on another connection,
/// compare the reply, check the tracker's log lines.
fn tracker_holders(
    cmd: &CommandLine,
    cx: &Context,
    id: &str,
    holders: usize,
) -> Result<TestResult, Abort> {
    let dir = Workdir::new("tracker-holders")?;
    let mut tracker = match start_tracker(cmd, &dir.path, cx)? {
        Ok(t) => t,
        Err(ev) => return Ok(result(id, false, ev)),
    };
    let idx = if holders == 1 { 7 } else { 9 };
    let ports: Vec<u16> = (0..holders)
        .map(|k| 6101 + k as u16 + (idx as u16) * 10)
        .collect();
    let mut tx = Vec::new();
    let Some(mut q) = announce_holders(idx, &ports, cx, &mut tx) else {
        return Ok(finish_fail(id, tx, &mut tracker, &dir.path));
    };
    let mut ok = ask_holders(&mut q, idx, &ports, cx, &mut tx)?;
    if ok {
        ok = holders_logged(&dir.path, idx, &ports, cx, &mut tx);
    }
    drop(q);
    if ok {
        return Ok(result(id, true, vec![]));
    }
    Ok(finish_fail(id, tx, &mut tracker, &dir.path))
}

/// Announces chunk `idx` at each of `ports`, one connection per holder; the last connection,
/// still open, is the one to ask on. Each announcer closes before the next one opens, so a
/// tracker serving one connection at a time loses only `tracker 1`.
fn announce_holders(idx: u32, ports: &[u16], cx: &Context, tx: &mut Vec<String>) -> Option<Raw> {
    let mut last: Option<Raw> = None;
    for (k, port) in ports.iter().enumerate() {
        let name = ["A", "B"][k];
        if let Some(prev) = last.take() {
            tx.push(format!("{} closed its connection", prev.name));
            drop(prev);
        }
        let mut a = Raw::open(name, tx)?;
        a.send(&wire::encode_local_chunks(idx, "localhost", *port), tx);
        last = Some(a);
        cx.shutdown.sleep(PACE);
    }
    last
}

/// Asks WHERE_CHUNK `idx` on `q` up to three times, 1 s apart (a tracker thread may still be
/// sleeping on the announcement), until the reply names exactly the holders at `ports`.
fn ask_holders(
    q: &mut Raw,
    idx: u32,
    ports: &[u16],
    cx: &Context,
    tx: &mut Vec<String>,
) -> Result<bool, Abort> {
    let want: Vec<Holder> = ports
        .iter()
        .map(|&port| Holder {
            ip: "localhost".into(),
            port,
        })
        .collect();
    let mut problem = None;
    for attempt in 0..3 {
        cx.check_interrupt()?;
        if attempt > 0 {
            cx.shutdown.sleep(PACE);
        }
        if !q.send(&wire::encode_where_chunk(idx), tx) {
            break;
        }
        let Some(reply) = q.reply(cx.timeouts.secs(10.0), tx) else {
            break;
        };
        let text = reply.trim_end_matches(['\r', '\n']);
        match wire::parse_reply(text.as_bytes(), idx) {
            Some(Reply::Holders(got)) => {
                let same_set = got.len() == want.len() && want.iter().all(|w| got.contains(w));
                let exact = text.split(',').count() == 2 + 2 * got.len();
                if same_set && exact {
                    if ports.len() == 2 && got != want {
                        tx.push("(holders not in registration order; accepted)".into());
                    }
                    return Ok(true);
                }
                problem = Some(format!(
                    "wanted holders {} in GET_CHUNK_FROM,{idx},…",
                    want.iter()
                        .map(|h| format!("localhost,{}", h.port))
                        .collect::<Vec<_>>()
                        .join(",")
                ));
                if got.len() >= want.len() {
                    break;
                }
            }
            Some(Reply::Unknown) => {
                problem = Some(format!(
                    "chunk {idx} was announced {} time(s) but reported unknown",
                    ports.len()
                ));
            }
            None => {
                problem = Some(format!(
                    "{text:?} is not GET_CHUNK_FROM,{idx},… nor CHUNK_LOCATION_UNKNOWN,{idx}"
                ));
                break;
            }
        }
    }
    tx.extend(problem);
    Ok(false)
}

/// Whether the tracker's logs.log has its own lines for the exchange: receipt of each
/// announcement, the question, and the reply it sent naming every holder.
fn holders_logged(dir: &Path, idx: u32, ports: &[u16], cx: &Context, tx: &mut Vec<String>) -> bool {
    let mut wanted: Vec<(LogLine, String)> = ports
        .iter()
        .map(|p| {
            (
                LogLine::LocalChunks {
                    entity: "P2PTracker".into(),
                    idx,
                    port: *p,
                },
                format!("P2PTracker,LOCAL_CHUNKS,{idx},localhost,{p}"),
            )
        })
        .collect();
    wanted.push((
        LogLine::WhereChunk {
            entity: "P2PTracker".into(),
            idx,
        },
        format!("P2PTracker,WHERE_CHUNK,{idx}"),
    ));
    let sent_logged = || {
        log_lines(dir).iter().any(|l| {
            matches!(l, LogLine::GetChunkFrom { entity, idx: i, ports: p }
                if entity == "P2PTracker" && *i == idx && p.len() == ports.len())
        })
    };
    runner::wait_until(cx.timeouts.secs(3.0), &cx.shutdown, || {
        sent_logged()
            && wanted
                .iter()
                .all(|(w, s)| want_log_line(dir, w, s).is_none())
    });
    let missing: Vec<String> = wanted
        .iter()
        .filter_map(|(w, s)| want_log_line(dir, w, s))
        .collect();
    let sent = sent_logged();
    tx.extend(missing.iter().cloned());
    if !sent {
        tx.push(format!(
            "logs.log has no P2PTracker,GET_CHUNK_FROM,{idx},… line naming every holder"
        ));
    }
    missing.is_empty() && sent
}

fn finish_fail(id: &str, mut tx: Vec<String>, tracker: &mut Proc, dir: &Path) -> TestResult {
    if tracker.exited().is_some() || !tracker.stderr.last_lines(1).is_empty() {
        tx.extend(tracker.evidence());
    }
    tx.extend(tail_of_log(dir, 6));
    result(id, false, tx)
}

fn tracker_4(cmd: &CommandLine, cx: &Context) -> Result<TestResult, Abort> {
    let dir = Workdir::new("tracker4")?;
    let mut tracker = match start_tracker(cmd, &dir.path, cx)? {
        Ok(t) => t,
        Err(ev) => return Ok(result("tracker 4", false, ev)),
    };
    let mut tx = Vec::new();
    let Some(mut a) = Raw::open("A", &mut tx) else {
        return Ok(finish_fail("tracker 4", tx, &mut tracker, &dir.path));
    };
    a.send(&wire::encode_local_chunks(3, "localhost", 6201), &mut tx);
    cx.shutdown.sleep(PACE);
    let mut q = a;
    let idx = 42;
    q.send(&wire::encode_where_chunk(idx), &mut tx);
    let mut ok = false;
    if let Some(reply) = q.reply(cx.timeouts.secs(10.0), &mut tx) {
        let text = reply.trim_end_matches(['\r', '\n']);
        if text == wire::encode_unknown(&idx.to_string()) {
            ok = true;
        } else {
            tx.push(format!("wanted exactly {:?}", wire::encode_unknown("42")));
        }
    }
    cx.check_interrupt()?;
    if ok {
        let want = LogLine::Unknown {
            entity: "P2PTracker".into(),
            idx,
        };
        let shown = "P2PTracker,CHUNK_LOCATION_UNKNOWN,42";
        runner::wait_until(cx.timeouts.secs(3.0), &cx.shutdown, || {
            want_log_line(&dir.path, &want, shown).is_none()
        });
        if let Some(m) = want_log_line(&dir.path, &want, shown) {
            ok = false;
            tx.push(m);
        }
    }
    drop(q);
    if ok {
        return Ok(result("tracker 4", true, vec![]));
    }
    Ok(finish_fail("tracker 4", tx, &mut tracker, &dir.path))
}
