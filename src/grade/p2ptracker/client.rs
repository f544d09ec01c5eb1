//! The client part (30 points): the submission's client alone, run once per layout against
//! the scripted tracker and peers of [`super::scripted`], and judged from what they recorded.

use super::*;

struct ClientLayout {
    label: &'static str,
    sizes: Vec<usize>,
    held: Vec<u32>,
    peers: Vec<Vec<u32>>,
}

/// What one run of the student client showed.
struct ClientRun {
    label: &'static str,
    name: String,
    port: u16,
    held: Vec<u32>,
    total: u32,
    peer_ports: Vec<u16>,
    events: Vec<(Duration, Seen)>,
    have: BTreeSet<u32>,
    complete: bool,
    /// Why the run ended, and the program's evidence when it ended badly.
    ending: Vec<String>,
    dir: Workdir,
}

impl ClientRun {
    fn got(&self) -> Vec<(Duration, usize, String)> {
        self.events
            .iter()
            .filter_map(|(t, s)| match s {
                Seen::TrackerGot { conn, text } => Some((*t, *conn, text.clone())),
                _ => None,
            })
            .collect()
    }

    fn peer_conns(&self) -> Vec<(usize, String, usize, Option<Duration>, Duration)> {
        self.events
            .iter()
            .filter_map(|(_, s)| match s {
                Seen::PeerConn {
                    peer,
                    request,
                    served,
                    closed_after,
                    opened,
                } => Some((*peer, request.clone(), *served, *closed_after, *opened)),
                _ => None,
            })
            .collect()
    }

    fn head(&self) -> String {
        format!(
            "{} ({} holds {} of {} chunks; peers on ports {})",
            self.label,
            self.name,
            list(self.held.iter().copied()),
            self.total,
            self.peer_ports
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

fn client_layouts() -> Vec<ClientLayout> {
    vec![
        ClientLayout {
            label: "layout 1",
            sizes: vec![4000; 4],
            held: vec![1, 2],
            peers: vec![vec![1, 3], vec![2, 4]],
        },
        ClientLayout {
            label: "layout 2",
            sizes: vec![2500, 7000, 1, 1024, 12000, 300],
            held: vec![2, 5],
            peers: vec![vec![1, 2, 3], vec![4, 5, 6]],
        },
        ClientLayout {
            label: "layout 3",
            sizes: vec![5000; 5],
            held: vec![],
            peers: vec![vec![1, 2, 3], vec![3, 4, 5]],
        },
    ]
}

fn run_client(cmd: &CommandLine, layout: ClientLayout, cx: &Context) -> Result<ClientRun, Abort> {
    let dir = Workdir::new("client")?;
    let chunks = make_chunks(&layout.sizes);
    let total = chunks.len() as u32;
    let rec = Recorder::new();
    let linger = cx.timeouts.secs(5.0);
    let (peers, mut tracker) = start_scripted(&layout, &chunks, &rec, linger, cx)?;
    let name = "student".to_string();
    let folder = write_folder(&dir.path, &name, &layout.held, &chunks)?;
    let port = runner::free_port()?;
    let full = cmd.with(&[
        "-folder".into(),
        folder.clone().into_os_string(),
        "-transfer_port".into(),
        port.to_string().into(),
        "-name".into(),
        name.clone().into(),
    ] as &[std::ffi::OsString]);
    let mut proc = start_program("P2PClient", &full, &dir.path)?;
    let missing = (total as usize - layout.held.len()) as f64;
    let bound = cx.timeouts.secs(15.0 + 9.0 * missing);
    let (have, ending) = watch_client(&mut proc, &folder, &chunks, &rec, bound, cx)?;
    // Let the last peer connections close (client 8) and the last lines reach logs.log.
    let settle = Instant::now() + linger + Duration::from_secs(1);
    cx.shutdown.sleep(Duration::from_millis(800));
    while Instant::now() < settle && rec.pending_peers() > 0 {
        if cx.shutdown.sleep(runner::POLL) {
            return Err(Abort::Interrupted);
        }
    }
    let complete = have.len() as u32 == total;
    let peer_ports = peers.iter().map(|p| p.port).collect();
    drop(proc);
    tracker.stop();
    drop(peers);
    Ok(ClientRun {
        label: layout.label,
        name,
        port,
        held: layout.held,
        total,
        peer_ports,
        events: rec.events(),
        have,
        complete,
        ending,
        dir,
    })
}

/// The layout's scripted peers, and the scripted tracker on 5100 that names them as holders.
fn start_scripted(
    layout: &ClientLayout,
    chunks: &[Vec<u8>],
    rec: &Recorder,
    linger: Duration,
    cx: &Context,
) -> Result<(Vec<ScriptedPeer>, ScriptedTracker), Abort> {
    runner::wait_port_free(SPEC_PORT, cx.timeouts.secs(10.0), &cx.shutdown)
        .map_err(Abort::PortBusy)?;
    let listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], SPEC_PORT)))
        .map_err(|_| {
            Abort::PortBusy(PortBusy {
                port: SPEC_PORT,
                holder: runner::port_holder(SPEC_PORT),
            })
        })?;
    let mut peers = Vec::new();
    let mut seed = Vec::new();
    for (k, held) in layout.peers.iter().enumerate() {
        let map = held
            .iter()
            .map(|&i| (i, chunks[i as usize - 1].clone()))
            .collect();
        let p = ScriptedPeer::start(k, map, linger, rec.clone())?;
        for &i in held {
            seed.push((
                i,
                Holder {
                    ip: "localhost".into(),
                    port: p.port,
                },
            ));
        }
        peers.push(p);
    }
    seed.sort_by_key(|(i, _)| *i);
    let tracker = ScriptedTracker::start(listener, &seed, rec.clone())?;
    Ok((peers, tracker))
}

/// Watches the client's folder until it holds every chunk, it exits, it never connects to the
/// tracker, no chunk lands for 20 s, or `bound` passes; the chunks it has and why it stopped.
fn watch_client(
    proc: &mut Proc,
    folder: &Path,
    chunks: &[Vec<u8>],
    rec: &Recorder,
    bound: Duration,
    cx: &Context,
) -> Result<(BTreeSet<u32>, Vec<String>), Abort> {
    let total = chunks.len();
    let deadline = Instant::now() + bound;
    let connect_by = Instant::now() + cx.timeouts.secs(STARTUP_SECS);
    let stall = cx.timeouts.secs(20.0);
    let mut last_change = Instant::now();
    let mut have = present(folder, chunks);
    let mut ending = Vec::new();
    while have.len() < total {
        if cx.shutdown.sleep(runner::POLL) {
            return Err(Abort::Interrupted);
        }
        let now_have = present(folder, chunks);
        if now_have != have {
            have = now_have;
            last_change = Instant::now();
            continue;
        }
        let connected = rec
            .events()
            .iter()
            .any(|(_, s)| matches!(s, Seen::TrackerOpened { .. }));
        if proc.exited().is_some() {
            ending.push("the client ended before it had every chunk".to_string());
            std::thread::sleep(Duration::from_millis(200));
        } else if !connected && Instant::now() >= connect_by {
            ending.push(format!(
                "the client never connected to the tracker at 127.0.0.1:{SPEC_PORT} within {:.0} s",
                cx.timeouts.secs(STARTUP_SECS).as_secs_f64()
            ));
        } else if last_change.elapsed() >= stall {
            ending.push(format!(
                "stopped: no new chunk for {:.0} s (it had {} of {total})",
                stall.as_secs_f64(),
                have.len()
            ));
        } else if Instant::now() >= deadline {
            ending.push(format!(
                "stopped at the run's deadline with {} of {total} chunks",
                have.len()
            ));
        } else {
            continue;
        }
        ending.extend(proc.evidence());
        break;
    }
    Ok((have, ending))
}

pub(super) fn part(cmd: &CommandLine, cx: &Context) -> Result<Vec<TestResult>, Abort> {
    let mut runs = Vec::new();
    for layout in client_layouts() {
        cx.say(&format!("client {}", layout.label));
        runs.push(run_client(cmd, layout, cx)?);
    }
    Ok(vec![
        client_announces(&runs),
        client_asks(&runs),
        client_keeps_tracker(&runs),
        client_transfers("client 4", &runs[0]),
        client_transfers("client 5", &runs[1]),
        client_transfers("client 6", &runs[2]),
        client_asks_right_chunks(&runs),
        client_disconnects(&runs),
    ])
}

/// Evidence lines for a failed run check: the run's head, the problems, how the run ended.
fn run_evidence(run: &ClientRun, problems: Vec<String>) -> Vec<String> {
    let mut ev = vec![run.head()];
    ev.extend(problems.into_iter().map(|p| format!("  {p}")));
    ev.extend(run.ending.iter().map(|l| format!("  {l}")));
    ev
}

fn judge_runs(
    id: &str,
    runs: &[ClientRun],
    mut check: impl FnMut(&ClientRun) -> Vec<String>,
) -> TestResult {
    let mut ev = Vec::new();
    for run in runs {
        let problems = check(run);
        if !problems.is_empty() {
            ev.extend(run_evidence(run, problems));
        }
    }
    result(id, ev.is_empty(), ev)
}

fn parsed_requests(run: &ClientRun) -> Vec<(Duration, usize, Result<Request, wire::WireError>)> {
    run.got()
        .into_iter()
        .map(|(t, c, text)| (t, c, wire::parse_request(text.as_bytes())))
        .collect()
}

fn seen_by_tracker(run: &ClientRun) -> String {
    let got: Vec<String> = run.got().into_iter().map(|(_, _, t)| t).take(8).collect();
    if got.is_empty() {
        "the tracker received nothing".into()
    } else {
        format!("the tracker received: {}", got.join(" | "))
    }
}

fn client_announces(runs: &[ClientRun]) -> TestResult {
    judge_runs("client 1", runs, |run| {
        let reqs = parsed_requests(run);
        let mut problems = Vec::new();
        for &i in &run.held {
            let on_wire = reqs.iter().any(|(_, _, r)| {
                matches!(r, Ok(Request::LocalChunks { idx, holder })
                    if *idx == i && holder.port == run.port
                        && (holder.ip == "localhost" || holder.ip == "127.0.0.1"))
            });
            if !on_wire {
                problems.push(format!(
                    "no LOCAL_CHUNKS,{i},localhost,{} reached the tracker; {}",
                    run.port,
                    seen_by_tracker(run)
                ));
                continue;
            }
            let want = LogLine::LocalChunks {
                entity: run.name.clone(),
                idx: i,
                port: run.port,
            };
            if let Some(m) = want_log_line(
                &run.dir.path,
                &want,
                &format!("{},LOCAL_CHUNKS,{i},localhost,{}", run.name, run.port),
            ) {
                problems.push(m);
            }
        }
        problems
    })
}

fn client_asks(runs: &[ClientRun]) -> TestResult {
    judge_runs("client 2", runs, |run| {
        let reqs = parsed_requests(run);
        let mut problems = Vec::new();
        for i in (1..=run.total).filter(|i| !run.held.contains(i)) {
            let asked = reqs
                .iter()
                .any(|(_, _, r)| matches!(r, Ok(Request::WhereChunk { idx }) if *idx == i));
            if !asked {
                problems.push(format!(
                    "never sent WHERE_CHUNK,{i}; {}",
                    seen_by_tracker(run)
                ));
                continue;
            }
            let want = LogLine::WhereChunk {
                entity: run.name.clone(),
                idx: i,
            };
            if let Some(m) = want_log_line(
                &run.dir.path,
                &want,
                &format!("{},WHERE_CHUNK,{i}", run.name),
            ) {
                problems.push(m);
            }
        }
        problems
    })
}

fn client_keeps_tracker(runs: &[ClientRun]) -> TestResult {
    let mut any_peer = false;
    let mut r = judge_runs("client 3", runs, |run| {
        let mut problems = Vec::new();
        let opened: Vec<(Duration, usize)> = run
            .events
            .iter()
            .filter_map(|(t, s)| match s {
                Seen::TrackerOpened { conn } => Some((*t, *conn)),
                _ => None,
            })
            .collect();
        let conns = run.peer_conns();
        any_peer |= !conns.is_empty();
        if opened.is_empty() {
            problems.push("never connected to the tracker".into());
            return problems;
        }
        if opened.len() > 1 {
            let times: Vec<String> = opened
                .iter()
                .map(|(t, _)| format!("{:.1} s", t.as_secs_f64()))
                .collect();
            problems.push(format!(
                "opened {} tracker connections (at {}); the spec wants one for the whole run",
                opened.len(),
                times.join(", ")
            ));
        }
        let first = opened[0].1;
        let closed = run.events.iter().find_map(|(t, s)| match s {
            Seen::TrackerClosed { conn } if *conn == first => Some(*t),
            _ => None,
        });
        if let Some(c) = closed {
            if let Some((_, req, ..)) = conns.iter().find(|(_, _, _, _, o)| *o > c) {
                problems.push(format!(
                    "closed its tracker connection at {:.1} s, then asked a peer {req:?}",
                    c.as_secs_f64()
                ));
            }
        }
        problems
    });
    if !any_peer && r.passed {
        r.passed = false;
        r.evidence
            .push("the client made no peer connection in any run".into());
        for run in runs {
            r.evidence.extend(run.ending.iter().cloned());
        }
    }
    r
}

fn client_transfers(id: &str, run: &ClientRun) -> TestResult {
    if run.complete {
        return result(id, true, vec![]);
    }
    let missing: Vec<u32> = (1..=run.total).filter(|i| !run.have.contains(i)).collect();
    result(
        id,
        false,
        run_evidence(
            run,
            vec![format!(
                "missing chunk_{} (byte-identical files wanted in the folder)",
                list(missing).replace(',', ", chunk_")
            )],
        ),
    )
}

/// Whether the scripted tracker had named the peer on `port` as a holder of chunk `idx` before
/// `when`.
fn tracker_named(run: &ClientRun, idx: u32, port: u16, when: Duration) -> bool {
    run.events.iter().any(|(t, s)| match s {
        Seen::TrackerSent { text, .. } if *t <= when => {
            matches!(wire::parse_reply(text.as_bytes(), idx),
                Some(Reply::Holders(h)) if h.iter().any(|h| h.port == port))
        }
        _ => false,
    })
}

fn client_asks_right_chunks(runs: &[ClientRun]) -> TestResult {
    let mut asked_any = false;
    let mut r = judge_runs("client 7", runs, |run| {
        let mut problems = Vec::new();
        let mut fetched: BTreeSet<u32> = BTreeSet::new();
        let mut conns = run.peer_conns();
        conns.sort_by_key(|c| c.4);
        for (peer, request, served, _, opened) in conns {
            asked_any = true;
            let port = run.peer_ports.get(peer).copied().unwrap_or(0);
            let Some(idx) = wire::parse_request_chunk(request.as_bytes()) else {
                problems.push(format!(
                    "peer {port} got {request:?}, not REQUEST_CHUNK,<idx>"
                ));
                continue;
            };
            if run.held.contains(&idx) {
                problems.push(format!(
                    "asked peer {port} for chunk {idx} at {:.1} s, which it had from the start",
                    opened.as_secs_f64()
                ));
            } else if fetched.contains(&idx) {
                problems.push(format!(
                    "asked peer {port} for chunk {idx} at {:.1} s after already receiving it",
                    opened.as_secs_f64()
                ));
            }
            if !tracker_named(run, idx, port, opened) {
                problems.push(format!(
                    "asked peer {port} for chunk {idx}, but the tracker had not named it for that chunk"
                ));
            }
            let want = LogLine::RequestChunk {
                entity: run.name.clone(),
                idx,
                port,
            };
            if let Some(m) = want_log_line(
                &run.dir.path,
                &want,
                &format!("{},REQUEST_CHUNK,{idx},localhost,{port}", run.name),
            ) {
                problems.push(m);
            }
            if served > 0 {
                fetched.insert(idx);
            }
        }
        problems
    });
    if !asked_any && r.passed {
        r.passed = false;
        r.evidence
            .push("the client asked no peer for any chunk in any run".into());
        for run in runs {
            r.evidence.extend(run.ending.iter().cloned());
        }
    }
    r
}

fn client_disconnects(runs: &[ClientRun]) -> TestResult {
    let mut any = false;
    let mut r = judge_runs("client 8", runs, |run| {
        let mut problems = Vec::new();
        for (peer, request, _, closed_after, _) in run.peer_conns() {
            any = true;
            if closed_after.is_none() {
                let port = run.peer_ports.get(peer).copied().unwrap_or(0);
                problems.push(format!(
                    "after peer {port} answered {request:?} and closed its side, the client kept the connection open"
                ));
            }
        }
        problems
    });
    if !any && r.passed {
        r.passed = false;
        r.evidence
            .push("the client made no peer connection in any run".into());
    }
    r
}
