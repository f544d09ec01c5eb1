//! The system part (50 points): the submission's tracker with its own clients, watched from
//! their folders and `logs.log`.

use super::*;

struct SystemLayout {
    label: &'static str,
    sizes: Vec<usize>,
    /// Per client: chunks held at start, and whether it joins late.
    clients: Vec<(Vec<u32>, bool)>,
}

struct SystemRun {
    label: &'static str,
    names: Vec<String>,
    ports: Vec<u16>,
    held: Vec<Vec<u32>>,
    total: u32,
    /// (time, client, idx) for every chunk that appeared.
    landings: Vec<(Duration, usize, u32)>,
    done_at: Vec<Option<Duration>>,
    elapsed: Duration,
    /// Clients that ended with an error before the run ended.
    crashed: Vec<usize>,
    ending: Vec<String>,
    log: Vec<LogLine>,
}

impl SystemRun {
    fn all_done(&self) -> bool {
        self.done_at.iter().all(Option::is_some)
    }

    fn state(&self) -> String {
        self.names
            .iter()
            .zip(&self.done_at)
            .enumerate()
            .map(|(k, (n, d))| {
                let have =
                    self.held[k].len() + self.landings.iter().filter(|(_, c, _)| *c == k).count();
                match d {
                    Some(t) => format!("{n} done at {:.1} s", t.as_secs_f64()),
                    None => format!("{n} has {have}/{}", self.total),
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn evidence(&self, what: &str) -> Vec<String> {
        let mut ev = vec![
            format!("{} — {what}", self.label),
            format!("  {}", self.state()),
        ];
        ev.extend(self.ending.iter().map(|l| format!("  {l}")));
        ev
    }
}

/// Stop when no chunk lands anywhere for this long (a hung run).
const STALL_SECS: f64 = 20.0;

fn system_bound(cx: &Context, total: u32) -> Duration {
    cx.timeouts.secs(15.0 + 9.0 * total as f64)
}

fn run_system(
    tracker_cmd: &CommandLine,
    client_cmd: &CommandLine,
    layout: SystemLayout,
    cx: &Context,
) -> Result<SystemRun, Abort> {
    let dir = Workdir::new("system")?;
    let chunks = make_chunks(&layout.sizes);
    let n = layout.clients.len();
    let held: Vec<Vec<u32>> = layout.clients.iter().map(|(h, _)| h.clone()).collect();
    let mut run = SystemRun::new(layout.label, held, chunks.len() as u32);
    let names = run.names.clone();
    let mut folders = Vec::new();
    for (name, held) in names.iter().zip(&run.held) {
        folders.push(write_folder(&dir.path, name, held, &chunks)?);
    }
    for _ in 0..n {
        run.ports.push(runner::free_port()?);
    }
    let mut tracker = match start_tracker(tracker_cmd, &dir.path, cx)? {
        Ok(t) => t,
        Err(ev) => {
            run.ending = ev;
            return Ok(run);
        }
    };
    let start = Instant::now();
    let spawn = |k: usize| -> Result<Proc, Abort> {
        let full = client_cmd.with(&[
            "-folder".into(),
            folders[k].clone().into_os_string(),
            "-transfer_port".into(),
            run.ports[k].to_string().into(),
            "-name".into(),
            names[k].clone().into(),
        ] as &[std::ffi::OsString]);
        start_program(&format!("P2PClient {}", names[k]), &full, &dir.path)
    };
    let mut procs: Vec<Option<Proc>> = (0..n).map(|_| None).collect();
    for (k, slot) in procs.iter_mut().enumerate() {
        if !layout.clients[k].1 {
            *slot = Some(spawn(k)?);
        }
    }
    if layout.clients.iter().any(|(_, late)| *late) {
        wait_for_early_announcements(&layout, &run, &dir.path, cx);
        for (k, slot) in procs.iter_mut().enumerate() {
            if layout.clients[k].1 {
                *slot = Some(spawn(k)?);
            }
        }
    }
    run.watch(&folders, &chunks, &mut tracker, &mut procs, start, cx)?;
    run.elapsed = start.elapsed();
    cx.shutdown.sleep(Duration::from_millis(500));
    // Clients first, so the tracker's port is not left in TIME_WAIT for the next test.
    for p in procs.iter_mut().flatten() {
        p.kill();
    }
    if !run.all_done() && run.crashed.is_empty() {
        run.note_stderr(&procs);
    }
    drop(procs);
    drop(tracker);
    run.log = log_lines(&dir.path);
    Ok(run)
}

/// Late joiners wait until the early clients' chunks are all known to the tracker (from its
/// log or theirs), or a while.
fn wait_for_early_announcements(layout: &SystemLayout, run: &SystemRun, dir: &Path, cx: &Context) {
    let early_ports: Vec<(u32, u16)> = (0..layout.clients.len())
        .filter(|k| !layout.clients[*k].1)
        .flat_map(|k| run.held[k].iter().map(move |&i| (i, k)))
        .map(|(i, k)| (i, run.ports[k]))
        .collect();
    let announced = || {
        let lines = log_lines(dir);
        early_ports.iter().all(|(i, p)| {
            lines.iter().any(
                |l| matches!(l, LogLine::LocalChunks { idx, port, .. } if idx == i && port == p),
            )
        })
    };
    runner::wait_until(
        cx.timeouts.secs(5.0 + 2.0 * early_ports.len() as f64),
        &cx.shutdown,
        announced,
    );
}

impl SystemRun {
    /// A run not started yet: clients `c1`, `c2`, … holding `held`.
    fn new(label: &'static str, held: Vec<Vec<u32>>, total: u32) -> SystemRun {
        let n = held.len();
        SystemRun {
            label,
            names: (1..=n).map(|k| format!("c{k}")).collect(),
            ports: vec![],
            held,
            total,
            landings: vec![],
            done_at: vec![None; n],
            elapsed: Duration::ZERO,
            crashed: vec![],
            ending: vec![],
            log: vec![],
        }
    }

    /// The last stderr lines of every client, for a run that stopped without a crash.
    fn note_stderr(&mut self, procs: &[Option<Proc>]) {
        for p in procs.iter().flatten() {
            let lines = p.stderr.last_lines(3);
            if !lines.is_empty() {
                self.ending.push(format!("{} last stderr lines:", p.label));
                self.ending
                    .extend(lines.into_iter().map(|l| format!("  | {l}")));
            }
        }
    }

    /// Records every chunk landing until every client is done, the tracker or every client
    /// ends, nothing lands for [`STALL_SECS`], or the bound passes.
    fn watch(
        &mut self,
        folders: &[PathBuf],
        chunks: &[Vec<u8>],
        tracker: &mut Proc,
        procs: &mut [Option<Proc>],
        start: Instant,
        cx: &Context,
    ) -> Result<(), Abort> {
        let mut have: Vec<BTreeSet<u32>> = self
            .held
            .iter()
            .map(|h| h.iter().copied().collect())
            .collect();
        let bound = system_bound(cx, self.total);
        let stall = cx.timeouts.secs(STALL_SECS);
        let mut last_change = Instant::now();
        loop {
            if cx.shutdown.sleep(runner::POLL) {
                return Err(Abort::Interrupted);
            }
            let t = start.elapsed();
            for (k, folder) in folders.iter().enumerate() {
                let now = present(folder, chunks);
                for &i in now.difference(&have[k]) {
                    self.landings.push((t, k, i));
                    last_change = Instant::now();
                }
                have[k] = now;
                if have[k].len() as u32 == self.total && self.done_at[k].is_none() {
                    self.done_at[k] = Some(t);
                }
            }
            if self.all_done() {
                return Ok(());
            }
            if tracker.exited().is_some() {
                self.ending.push("the tracker ended during the run".into());
                self.ending.extend(tracker.evidence());
                return Ok(());
            }
            if self.note_crashes(procs) && self.crashed.len() == procs.len() {
                return Ok(());
            }
            if last_change.elapsed() >= stall {
                self.ending.push(format!(
                    "stopped: no chunk landed anywhere for {:.0} s",
                    stall.as_secs_f64()
                ));
                return Ok(());
            }
            if t >= bound {
                self.ending.push(format!(
                    "stopped at the bound of {:.0} s",
                    bound.as_secs_f64()
                ));
                return Ok(());
            }
        }
    }

    /// Records clients that ended before they had every chunk; whether one did just now.
    fn note_crashes(&mut self, procs: &mut [Option<Proc>]) -> bool {
        let mut dead = false;
        for (k, p) in procs.iter_mut().enumerate() {
            let Some(p) = p else { continue };
            let Some(s) = p.exited() else { continue };
            if self.done_at[k].is_none() && !self.crashed.contains(&k) {
                self.crashed.push(k);
                self.ending.push(format!(
                    "{} ended before it had every chunk ({})",
                    self.names[k],
                    runner::describe_status(s)
                ));
                std::thread::sleep(Duration::from_millis(200));
                self.ending.extend(p.evidence());
                dead = true;
            }
        }
        dead
    }
}

pub(super) fn part(
    tracker_cmd: &CommandLine,
    client_cmd: &CommandLine,
    cx: &Context,
) -> Result<Vec<TestResult>, Abort> {
    let run = |label: &'static str, sizes: Vec<usize>, clients: Vec<(Vec<u32>, bool)>| {
        cx.say(&format!("system: {label}"));
        let layout = SystemLayout {
            label,
            sizes,
            clients,
        };
        run_system(tracker_cmd, client_cmd, layout, cx)
    };
    let cyclic = run(
        "spec layout c1{1,2} c2{3,4} c3{5,1}",
        vec![6000; 5],
        vec![
            (vec![1, 2], false),
            (vec![3, 4], false),
            (vec![5, 1], false),
        ],
    )?;
    let small = run(
        "small chunks (1 B to 1 KB), c1 holds all 6, c2..c4 none",
        vec![1, 10, 100, 1000, 1024, 513],
        vec![
            ((1..=6).collect(), false),
            (vec![], false),
            (vec![], false),
            (vec![], false),
        ],
    )?;
    let large = run(
        "large chunks (3 x 3 MB), c1 holds all, c2 none",
        vec![3 * 1024 * 1024; 3],
        vec![((1..=3).collect(), false), (vec![], false)],
    )?;
    let late = run(
        "c1 holds all 4 and joins first; c2, c3 (none) join after its announcements",
        vec![5000; 4],
        vec![((1..=4).collect(), false), (vec![], true), (vec![], true)],
    )?;
    let mut system_2 = all_got("system 2", &cyclic);
    if system_2.passed {
        system_2.evidence = vec![format!("all done in {:.1} s", cyclic.elapsed.as_secs_f64())];
    }
    Ok(vec![
        system_invoked(&cyclic),
        system_2,
        system_time(&small, cx),
        system_concurrent(&cyclic),
        all_got("system 5", &small),
        all_got("system 6", &large),
        all_got("system 7", &late),
    ])
}

/// Passed when every client of `run` got every chunk.
fn all_got(id: &str, run: &SystemRun) -> TestResult {
    if run.all_done() {
        result(id, true, vec![])
    } else {
        result(id, false, run.evidence("not every client got every chunk"))
    }
}

fn system_invoked(run: &SystemRun) -> TestResult {
    let mut problems = Vec::new();
    for (k, name) in run.names.iter().enumerate() {
        if run.crashed.contains(&k) {
            problems.push(format!("{name} ended with an error"));
            continue;
        }
        let port = run.ports.get(k).copied().unwrap_or(0);
        let announced = run
            .log
            .iter()
            .any(|l| matches!(l, LogLine::LocalChunks { port: p, .. } if *p == port));
        let received = run.landings.iter().any(|(_, c, _)| *c == k);
        if !announced && !received {
            problems.push(format!(
                "{name} (port {port}) neither announced a chunk (no LOCAL_CHUNKS line naming port {port} in logs.log) nor received one"
            ));
        }
    }
    if problems.is_empty() {
        return result("system 1", true, vec![]);
    }
    let mut ev = run.evidence("three clients started together");
    ev.extend(problems.into_iter().map(|p| format!("  {p}")));
    result("system 1", false, ev)
}

fn system_time(run: &SystemRun, cx: &Context) -> TestResult {
    let bound = system_bound(cx, run.total);
    let how = format!(
        "bound {:.0} s = (15 s + 9 s x {} chunks) x timeout-scale {}; a run with no new chunk for {:.0} s counts as hung",
        bound.as_secs_f64(),
        run.total,
        cx.timeouts.scale,
        cx.timeouts.secs(STALL_SECS).as_secs_f64()
    );
    if run.all_done() && run.elapsed <= bound {
        return result(
            "system 3",
            true,
            vec![format!(
                "{}: all done in {:.1} s; {how}",
                run.label,
                run.elapsed.as_secs_f64()
            )],
        );
    }
    let mut ev = run.evidence("clients did not all finish within the bound");
    ev.push(format!("  {how}"));
    result("system 3", false, ev)
}

fn system_concurrent(run: &SystemRun) -> TestResult {
    for &(t, y, i) in &run.landings {
        let mut sources: Vec<usize> = (0..run.names.len())
            .filter(|&k| k != y)
            .filter(|&k| {
                run.held[k].contains(&i)
                    || run
                        .landings
                        .iter()
                        .any(|&(t2, c, j)| c == k && j == i && t2 < t)
            })
            .collect();
        sources.dedup();
        let all_busy = !sources.is_empty()
            && sources
                .iter()
                .all(|&k| run.done_at[k].is_none_or(|d| d > t));
        if all_busy {
            let names: Vec<&str> = sources.iter().map(|&k| run.names[k].as_str()).collect();
            return result(
                "system 4",
                true,
                vec![format!(
                    "{} received chunk {i} at {:.1} s while every client holding it ({}) was still downloading",
                    run.names[y],
                    t.as_secs_f64(),
                    names.join(", ")
                )],
            );
        }
    }
    result(
        "system 4",
        false,
        run.evidence("no chunk moved from a client that was still downloading"),
    )
}
