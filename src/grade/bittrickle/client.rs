//! `get 1`, `xit 1`, `concurrency 1` and the client half of `heartbeat 1`: two copies of the
//! submission's client (hans publishes, yoda downloads) against peershare's own server.

use super::{start_server, Half, Part};
use crate::grade::report::TestResult;
use crate::grade::runner::{self, CommandLine, Proc, Workdir};
use crate::grade::udp::Raw;
use crate::grade::{Abort, Context};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

pub const IDS: &[&str] = &[
    "get 1: a published file lands byte-identical from another client",
    "xit 1: xit says goodbye and exits 0",
    "concurrency 1: one client's uploader serves five downloads at once",
];

const COMMANDS: &str = "Available commands are: get, lap, lpf, pub, sch, unp, xit";

/// What hans publishes (1 MiB, not text).
fn f_bytes() -> Vec<u8> {
    (0..(1u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// Starts the submission's client in `dir` and logs in as `user`; its evidence if it did not
/// reach the command list.
fn login(
    command: &CommandLine,
    user: &str,
    password: &str,
    port: u16,
    dir: &Path,
    cx: &Context,
) -> Result<Result<Proc, Vec<String>>, Abort> {
    let mut p = Proc::spawn_interactive(
        &format!("client {user}"),
        &command.with(&[port.to_string()]),
        dir,
    )?;
    p.interrupt_first();
    let _ = p.send_line(user);
    let _ = p.send_line(password);
    let (ok, _) = p
        .stdout
        .wait_for(0, cx.timeouts.secs(8.0), &cx.shutdown, |t| {
            t.contains(COMMANDS)
        });
    cx.check_interrupt()?;
    if ok {
        return Ok(Ok(p));
    }
    let mut e = vec![format!(
        "client {user} did not reach `{COMMANDS}` after logging in"
    )];
    e.extend(p.evidence());
    Ok(Err(e))
}

/// Types `line` and waits for `want` in what follows; that text.
fn command(p: &mut Proc, line: &str, want: &str, cx: &Context) -> (bool, String) {
    let mark = p.stdout.mark();
    let _ = p.send_line(line);
    p.stdout
        .wait_for(mark, cx.timeouts.secs(10.0), &cx.shutdown, |t| {
            t.contains(want)
        })
}

fn typed(who: &str, line: &str, out: &str) -> Vec<String> {
    let mut e = vec![format!("{who} typed `{line}`; it printed:")];
    e.extend(
        out.lines()
            .filter(|l| !l.trim().is_empty())
            .take(10)
            .map(|l| format!("  | {l}")),
    );
    e
}

pub fn part(command: &CommandLine, cx: &Context) -> Result<Part, Abort> {
    cx.say("BitTrickle client");
    let server_dir = Workdir::new("bittrickle-peershare-server")?;
    let port = runner::free_port()?;
    let own = CommandLine {
        program: cx.peershare.clone().into_os_string(),
        args: vec!["bittrickle".into(), "server".into()],
    };
    let server = match start_server("peershare server", &own, port, &server_dir.path, cx)? {
        Ok(p) => p,
        Err(e) => return Ok(all_failed(e)),
    };
    let (hans_dir, yoda_dir) = (
        Workdir::new("bittrickle-hans")?,
        Workdir::new("bittrickle-yoda")?,
    );
    let mut hans = match login(command, "hans", "falcon*solo", port, &hans_dir.path, cx)? {
        Ok(p) => p,
        Err(e) => return Ok(all_failed(e)),
    };
    let logged_in = std::time::Instant::now();
    let mut yoda = match login(command, "yoda", "wise@!man", port, &yoda_dir.path, cx)? {
        Ok(p) => p,
        Err(e) => return Ok(all_failed(e)),
    };
    std::fs::write(hans_dir.path.join("f.bin"), f_bytes())?;
    let get = get_1(&mut hans, &mut yoda, &yoda_dir.path, cx);
    let concurrency = concurrency_1(port, cx)?;
    // The heartbeat half needs 5 s of hans logged in.
    cx.shutdown
        .sleep(cx.timeouts.secs(5.0).saturating_sub(logged_in.elapsed()));
    let half = heartbeats(&server, "hans");
    let xit = xit_1(&mut yoda, cx);
    let mut tests = vec![get, xit, concurrency];
    for t in tests.iter_mut().filter(|t| !t.passed) {
        t.evidence.extend(hans.evidence());
    }
    Ok((tests, half))
}

fn all_failed(e: Vec<String>) -> Part {
    let tests = IDS
        .iter()
        .map(|id| TestResult::new(id, 10.0, false, e.clone()))
        .collect();
    (tests, (false, e))
}

fn get_1(hans: &mut Proc, yoda: &mut Proc, yoda_dir: &Path, cx: &Context) -> TestResult {
    let (published, pub_out) = command(
        hans,
        "pub f.bin",
        "File 'f.bin' published successfully.",
        cx,
    );
    let done = "File f.bin 100% downloaded successfully, check your current working directory ✅";
    let (said, get_out) = command(yoda, "get f.bin", done, cx);
    let got = std::fs::read(yoda_dir.join("f.bin")).ok();
    let same = got.as_deref() == Some(f_bytes().as_slice());
    let mut e = typed("hans", "pub f.bin", &pub_out);
    e.extend(typed("yoda", "get f.bin", &get_out));
    e.push(match &got {
        Some(g) => format!(
            "yoda's f.bin: {} bytes, {}",
            g.len(),
            if same { "identical" } else { "different" }
        ),
        None => "yoda has no f.bin".into(),
    });
    e.push(format!("wanted `{done}` and the 1 MiB file byte-identical"));
    TestResult::new(IDS[0], 10.0, published && said && same, e)
}

/// Asks peershare's server where `f.bin` is (as `leia`), then downloads it five times at once.
fn concurrency_1(port: u16, cx: &Context) -> Result<TestResult, Abort> {
    let leia = Raw::new(SocketAddr::from(([127, 0, 0, 1], port)))?;
    let wait = cx.timeouts.secs(2.0);
    let _ = leia.ask("login leia $blasterpistol$ 5999", wait);
    let reply = leia.ask("get leia f.bin", wait).unwrap_or_default();
    let Some(addr) = reply
        .strip_prefix("200 ")
        .and_then(|r| r.replacen(' ', ":", 1).parse::<SocketAddr>().ok())
    else {
        let e = vec![format!(
            "peershare's server answered `get leia f.bin` with {reply:?}"
        )];
        return Ok(TestResult::new(IDS[2], 10.0, false, e));
    };
    let deadline = cx.timeouts.secs(20.0);
    let fetches: Vec<_> = (0..5)
        .map(|_| std::thread::spawn(move || fetch(addr, deadline)))
        .collect();
    let results: Vec<Result<Vec<u8>, String>> = fetches
        .into_iter()
        .map(|h| {
            h.join()
                .unwrap_or_else(|_| Err("the fetch panicked".into()))
        })
        .collect();
    let want = f_bytes();
    let good = results
        .iter()
        .filter(|r| r.as_deref().ok() == Some(want.as_slice()))
        .count();
    let mut e = vec![format!(
        "five connections to hans's uploader at {addr}, each sending `f.bin`"
    )];
    for (i, r) in results.iter().enumerate() {
        e.push(match r {
            Ok(b) => format!(
                "download {}: {} bytes{}",
                i + 1,
                b.len(),
                if *b == want {
                    ", identical"
                } else {
                    ", different"
                }
            ),
            Err(why) => format!("download {}: {why}", i + 1),
        });
    }
    Ok(TestResult::new(IDS[2], 10.0, good == 5, e))
}

fn fetch(addr: SocketAddr, deadline: Duration) -> Result<Vec<u8>, String> {
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(3)).map_err(|e| e.to_string())?;
    let _ = s.set_read_timeout(Some(deadline));
    s.write_all(b"f.bin").map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    s.read_to_end(&mut got).map_err(|e| e.to_string())?;
    Ok(got)
}

/// The client half of `heartbeat 1`: `Received HBT from {user}` in peershare's server log, at
/// least twice, 1.5–2.5 s apart.
fn heartbeats(server: &Proc, user: &str) -> Half {
    let log = server.stdout.text();
    let needle = format!("Received HBT from {user}");
    let times: Vec<f64> = log
        .lines()
        .filter(|l| l.contains(&needle))
        .filter_map(seconds_of_day)
        .collect();
    let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let passed = times.len() >= 2 && gaps.iter().all(|g| (1.5..=2.5).contains(g));
    let shown: Vec<String> = gaps.iter().map(|g| format!("{g:.2} s")).collect();
    let e = vec![
        format!(
            "client: peershare's server logged {} heartbeats from {user} in its first 5 s",
            times.len()
        ),
        format!("client: gaps between them: [{}]", shown.join(", ")),
        "client: wanted at least 2, 1.5–2.5 s apart".into(),
    ];
    (passed, e)
}

/// `2026-12-04 00:51:02.123: (…)` → seconds since midnight.
fn seconds_of_day(line: &str) -> Option<f64> {
    let time = line.split(' ').nth(1)?.trim_end_matches(':');
    let mut parts = time.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

fn xit_1(yoda: &mut Proc, cx: &Context) -> TestResult {
    let bye = "Client yoda exiting gracefully...";
    let (said, out) = command(yoda, "xit", bye, cx);
    let status = yoda.wait_exit(cx.timeouts.secs(5.0), &cx.shutdown);
    let ok = said && status.is_some_and(|s| s.success());
    let mut e = typed("yoda", "xit", &out);
    e.push(match status {
        Some(s) => format!("it exited with {}", runner::describe_status(s)),
        None => "it was still running 5 s later".into(),
    });
    e.push(format!("wanted `{bye}` and exit status 0"));
    TestResult::new(IDS[1], 10.0, ok, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_log_times_are_read_to_the_millisecond() {
        let l = "2026-12-04 00:51:02.123: ('127.0.0.1', 5) Received HBT from hans";
        assert_eq!(seconds_of_day(l), Some(51.0 * 60.0 + 2.123));
        assert_eq!(seconds_of_day("nonsense"), None);
    }
}
