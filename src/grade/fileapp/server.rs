//! `registration 1`–`4`: the submission's server, driven by raw datagrams from the grader.

use super::{start_server, table_keys, Raw, Register};
use crate::fileapp::wire;
use crate::grade::report::TestResult;
use crate::grade::runner::{self, CommandLine, Workdir};
use crate::grade::{Abort, Context};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub const IDS: &[&str] = &[
    "registration 1: a client registers with a free name",
    "registration 2: a taken name is refused",
    "registration 3: the client's table is initialised on registration",
    "registration 4: the table is resent at most twice, 500 ms apart, without an ACK",
];

/// The four server tests against one server process.
pub fn part(command: &CommandLine, cx: &Context) -> Result<Vec<TestResult>, Abort> {
    cx.say("FileApp server");
    let dir = Workdir::new("fileapp-server")?;
    let port = runner::free_port()?;
    let mut server = match start_server(command, port, &dir.path, cx)? {
        Ok(p) => p,
        Err(evidence) => {
            let mut e = vec!["the server ended before it could be graded".to_string()];
            e.extend(evidence);
            return Ok(IDS
                .iter()
                .map(|id| TestResult::new(id, 10.0, false, e.clone()))
                .collect());
        }
    };
    let at = SocketAddr::from(([127, 0, 0, 1], port));
    let wait = cx.timeouts.secs(2.0);
    let alice = Raw::new(at)?;
    let mut out = vec![registration_1(&alice, wait)];
    cx.check_interrupt()?;
    out.push(registration_2(at, wait)?);
    out.push(registration_3(&alice, at, wait)?);
    cx.check_interrupt()?;
    out.push(registration_4(at, cx)?);
    for t in out.iter_mut().filter(|t| !t.passed) {
        t.evidence.extend(server.evidence());
    }
    server.kill();
    Ok(out)
}

fn registration_1(alice: &Raw, wait: Duration) -> TestResult {
    let (welcome, table) = alice.register("alice", 41001, wait);
    let mut e = vec![
        "sent `alice,41001` from a new address".to_string(),
        format!("first reply: {welcome:?}"),
        format!("second reply: {table:?}"),
    ];
    let welcomed = welcome.as_deref() == Some(wire::WELCOME);
    let table_ok = table.as_deref().map(table_keys);
    if !welcomed {
        e.push(format!("wanted exactly {:?}", wire::WELCOME));
    }
    if let Some(Err(why)) = &table_ok {
        e.push(format!("the second reply is not a table: {why}"));
    }
    let passed = welcomed && matches!(table_ok, Some(Ok(_)));
    TestResult::new(IDS[0], 10.0, passed, e)
}

fn registration_2(at: SocketAddr, wait: Duration) -> Result<TestResult, Abort> {
    let other = Raw::new(at)?;
    other.send(b"alice,41002");
    let reply = other.recv(wait);
    let want = wire::rejection("alice");
    let passed = reply.as_deref() == Some(want.as_str());
    let e = vec![
        "sent `alice,41002` from a second address while alice is active".to_string(),
        format!("reply: {reply:?}"),
        format!("wanted exactly {want:?}"),
    ];
    Ok(TestResult::new(IDS[1], 10.0, passed, e))
}

/// Alice offers `a.txt` (ACK_OFFER and a broadcast come back); bob then registers and his
/// first table must list `a.txt` from alice.
fn registration_3(alice: &Raw, at: SocketAddr, wait: Duration) -> Result<TestResult, Abort> {
    alice.send(&wire::encode_offer(&["a.txt".to_string()]));
    let (acked, _) = alice.recv_until(wait, |d| d.as_bytes() == wire::ACK_OFFER);
    let _ = alice.recv(wait); // the broadcast table
    let bob = Raw::new(at)?;
    let (welcome, table) = bob.register("bob", 41003, wait);
    let keys = table.as_deref().map(table_keys);
    let listed = matches!(&keys, Some(Ok(k)) if k.contains(&("a.txt".into(), "alice".into())));
    let e = vec![
        format!(
            "alice offered [\"a.txt\"]: ACK_OFFER {}",
            if acked { "came" } else { "did not come" }
        ),
        format!("bob registered: welcome {welcome:?}"),
        format!("bob's first table: {table:?}"),
        "wanted a table with the key \"a.txt,alice\"".to_string(),
    ];
    Ok(TestResult::new(
        IDS[2],
        10.0,
        listed && welcome.is_some(),
        e,
    ))
}

/// A client that never ACKs counts the tables it gets for 2.5 s: 3 in all, 0.3–1.0 s apart.
fn registration_4(at: SocketAddr, cx: &Context) -> Result<TestResult, Abort> {
    let carol = Raw::new(at)?;
    carol.send(b"carol,41004");
    let welcome = carol.recv(cx.timeouts.secs(2.0));
    let start = Instant::now();
    let mut times = Vec::new();
    let window = cx.timeouts.secs(2.5);
    while let Some(d) = carol.recv(window.saturating_sub(start.elapsed())) {
        if table_keys(&d).is_ok() {
            times.push(start.elapsed());
        }
    }
    let gaps: Vec<f64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    let spaced = gaps
        .iter()
        .all(|g| (0.3..=1.0).contains(&(g / cx.timeouts.scale.max(1.0))));
    let passed = welcome.is_some() && times.len() == 3 && spaced;
    let shown: Vec<String> = times
        .iter()
        .map(|t| format!("{:.2} s", t.as_secs_f64()))
        .collect();
    let e = vec![
        "registered `carol,41004` and sent no ACK".to_string(),
        format!("welcome: {welcome:?}"),
        format!("tables received at {} after the first", shown.join(", ")),
        "wanted 3 tables in all (the first and 2 resends), 0.3–1.0 s apart".to_string(),
    ];
    Ok(TestResult::new(IDS[3], 10.0, passed, e))
}
