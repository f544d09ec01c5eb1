//! `auth 1`, `auth 2`, the server half of `heartbeat 1`, `lap 1`, `pub 1`, `lpf 1`, `sch 1`,
//! `unp 1`: raw datagrams to the submission's server, replies compared byte for byte.

use super::{start_server, Half, Part};
use crate::grade::report::TestResult;
use crate::grade::runner::{self, CommandLine, Workdir};
use crate::grade::udp::Raw;
use crate::grade::{Abort, Context};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub const IDS: &[&str] = &[
    "auth 1: wrong password, unknown user and an active user get the exact replies",
    "auth 2: a good login is welcomed",
    "lap 1: lap lists the other active users, or says there are none",
    "pub 1: pub publishes once and says so when repeated",
    "lpf 1: lpf lists a user's published files, or says there are none",
    "sch 1: sch finds others' files by substring and skips one's own",
    "unp 1: unp removes a publication and refuses what is not published",
];

/// One exchange to check: what was sent, what came back, what was wanted.
struct Exchange {
    sent: String,
    got: Option<String>,
    want: String,
}

impl Exchange {
    fn ok(&self) -> bool {
        self.got.as_deref() == Some(self.want.as_str())
    }
}

/// Sends `request` from `who` and records the reply against `want`.
fn ask(who: &Raw, request: &str, want: &str, wait: Duration) -> Exchange {
    Exchange {
        sent: request.to_string(),
        got: who.ask(request, wait),
        want: want.to_string(),
    }
}

fn result(id: &str, exchanges: &[Exchange]) -> TestResult {
    let passed = exchanges.iter().all(Exchange::ok);
    let e = exchanges
        .iter()
        .map(|x| {
            format!(
                "{} `{}` → {:?}{}",
                if x.ok() { "ok" } else { "WRONG" },
                x.sent,
                x.got,
                if x.ok() {
                    String::new()
                } else {
                    format!(" (wanted {:?})", x.want)
                }
            )
        })
        .collect();
    TestResult::new(id, 10.0, passed, e)
}

/// Sends `heartbeat <user>` for every user every second until dropped.
struct Beats {
    stop: Arc<AtomicBool>,
}

impl Beats {
    fn start(users: Vec<(Arc<Raw>, &'static str)>) -> std::io::Result<Beats> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("grade-heartbeats".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    for (raw, user) in &users {
                        raw.send(format!("heartbeat {user}").as_bytes());
                    }
                    std::thread::sleep(Duration::from_millis(1000));
                }
            })?;
        Ok(Beats { stop })
    }
}

impl Drop for Beats {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The server tests and the server half of `heartbeat 1`.
pub fn part(command: &CommandLine, cx: &Context) -> Result<Part, Abort> {
    cx.say("BitTrickle server");
    let dir = Workdir::new("bittrickle-server")?;
    let port = runner::free_port()?;
    let mut server = match start_server("server", command, port, &dir.path, cx)? {
        Ok(p) => p,
        Err(evidence) => {
            let mut e = vec!["the server ended before it could be graded".to_string()];
            e.extend(evidence);
            let tests = IDS
                .iter()
                .map(|id| TestResult::new(id, 10.0, false, e.clone()))
                .collect();
            return Ok((tests, (false, e)));
        }
    };
    let at = SocketAddr::from(([127, 0, 0, 1], port));
    let wait = cx.timeouts.secs(2.0);
    let (hans, yoda) = (Arc::new(Raw::new(at)?), Arc::new(Raw::new(at)?));
    let logins = logins(&hans, &yoda, at, wait)?;
    cx.check_interrupt()?;
    let [publish, lpf, sch, unp] = file_commands(&hans, &yoda, wait);
    let half = expiry(&hans, at, cx)?;
    let mut tests = vec![
        result(IDS[0], &logins.auth1),
        result(IDS[1], &logins.auth2),
        result(IDS[2], &logins.lap),
        result(IDS[3], &publish),
        result(IDS[4], &lpf),
        result(IDS[5], &sch),
        result(IDS[6], &unp),
    ];
    for t in tests.iter_mut().filter(|t| !t.passed) {
        t.evidence.extend(server.evidence());
    }
    server.kill();
    Ok((tests, half))
}

/// The exchanges of `auth 1`, `auth 2` and `lap 1`, and the heartbeats that keep hans and
/// yoda active until this is dropped.
struct Logins {
    auth1: Vec<Exchange>,
    auth2: Vec<Exchange>,
    lap: Vec<Exchange>,
    _beats: Beats,
}

/// `auth 1`, `auth 2` and `lap 1`: the refused logins, hans's welcome, another address taking
/// hans's name while he heartbeats, and lap before and after yoda logs in.
fn logins(
    hans: &Arc<Raw>,
    yoda: &Arc<Raw>,
    at: SocketAddr,
    wait: Duration,
) -> Result<Logins, Abort> {
    let other = Raw::new(at)?;
    let mut auth1 = vec![
        ask(
            hans,
            "login hans wrong 5000",
            "Authentication failed: Incorrect password. Please try again ❌.",
            wait,
        ),
        ask(
            hans,
            "login nobody x 5000",
            "Authentication failed: Unknown username ❌.",
            wait,
        ),
    ];
    let auth2 = vec![ask(
        hans,
        "login hans falcon*solo 5001",
        "Welcome to BitTrickle!",
        wait,
    )];
    let beats = Beats::start(vec![(hans.clone(), "hans"), (yoda.clone(), "yoda")])?;
    auth1.push(ask(
        &other,
        "login hans falcon*solo 5002",
        "Authentication failed: User is already active ❌.",
        wait,
    ));
    let lap_alone = ask(hans, "lap hans", "No active peers available ❌.", wait);
    let _ = yoda.ask("login yoda wise@!man 5003", wait);
    let lap = vec![
        lap_alone,
        ask(hans, "lap hans", "1 active peer(s):\nyoda", wait),
    ];
    Ok(Logins {
        auth1,
        auth2,
        lap,
        _beats: beats,
    })
}

/// `pub 1`, `lpf 1`, `sch 1`, `unp 1`: hans publishes a.txt (twice), both list and search, and
/// both try to unpublish it.
fn file_commands(hans: &Raw, yoda: &Raw, wait: Duration) -> [Vec<Exchange>; 4] {
    let first = ask(
        hans,
        "pub hans a.txt",
        "File 'a.txt' published successfully.",
        wait,
    );
    // Another request between the two, so the repeat cannot be taken for a retransmission (a
    // server may answer a resent request as it answered the first).
    let _ = hans.ask("lap hans", wait);
    let again = ask(
        hans,
        "pub hans a.txt",
        "File 'a.txt' is already published by you.",
        wait,
    );
    let lpf = vec![
        ask(yoda, "lpf yoda", "No files published ❌.", wait),
        ask(hans, "lpf hans", "1 file(s) published:\na.txt", wait),
    ];
    let sch = vec![
        ask(yoda, "sch yoda a.t", "1 file(s) found:\na.txt", wait),
        ask(hans, "sch hans a", "No files found ❌.", wait),
        ask(yoda, "sch yoda zzz", "No files found ❌.", wait),
    ];
    let unp = vec![
        ask(
            yoda,
            "unp yoda a.txt",
            "File 'a.txt' unpublication failed. File doesn't exist or is already unpublished ❌.",
            wait,
        ),
        ask(
            hans,
            "unp hans a.txt",
            "File 'a.txt' unpublished successfully.",
            wait,
        ),
    ];
    [vec![first, again], lpf, sch, unp]
}

/// `leia` logs in and stays silent while hans heartbeats: listed at once, gone after 4.5 s.
fn expiry(hans: &Raw, at: SocketAddr, cx: &Context) -> Result<Half, Abort> {
    let wait = cx.timeouts.secs(2.0);
    let leia = Raw::new(at)?;
    let welcome = leia.ask("login leia $blasterpistol$ 5004", wait);
    let before = hans.ask("lap hans", wait);
    cx.shutdown
        .sleep(cx.timeouts.secs(4.5).max(Duration::from_millis(4500)));
    cx.check_interrupt()?;
    let after = hans.ask("lap hans", wait);
    let listed = |r: &Option<String>| {
        r.as_deref()
            .is_some_and(|t| t.lines().skip(1).any(|l| l == "leia"))
    };
    let yoda_kept = after
        .as_deref()
        .is_some_and(|t| t.lines().skip(1).any(|l| l == "yoda"));
    let passed = welcome.is_some() && listed(&before) && !listed(&after) && yoda_kept;
    let e = vec![
        format!("server: leia logged in ({welcome:?}) and sent no heartbeat; hans and yoda heartbeat every 1 s"),
        format!("server: `lap hans` at once → {before:?}"),
        format!("server: `lap hans` 4.5 s later → {after:?}"),
        "server: wanted leia listed at once and gone later, yoda still listed".into(),
    ];
    Ok((passed, e))
}
