//! `offer 1`, `offer 2`, `list 1`, `transfer 1`, `transfer 2`, `dereg 1`: two copies of the
//! submission's client (A owns files, B requests them) against peershare's own server, with a
//! raw observer client registered beside them to see every table the server broadcasts.

use super::{has_line, table_keys, Raw, Register};
use crate::fileapp::listing;
use crate::fileapp::wire::TableRow;
use crate::grade::report::TestResult;
use crate::grade::runner::{self, CommandLine, Proc, Workdir};
use crate::grade::{Abort, Context};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

pub const IDS: &[&str] = &[
    "offer 1: setdir and offer of existing files reach every client's table",
    "offer 2: offers before setdir or of missing files are refused locally",
    "list 1: list shows the table in the PrettyTable layout",
    "transfer 1: a requested file lands byte-identical",
    "transfer 2: a file the owner does not offer is refused",
    "dereg 1: dereg removes the client's rows everywhere and the client stops acting",
];

/// What the offered file holds (not all ASCII, so a text-mode copy would show).
fn x_bytes() -> Vec<u8> {
    (0..50_000u32).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// One client of the submission, interactive, in its own folder.
struct Client {
    proc: Proc,
    tcp: u16,
}

impl Client {
    fn start(
        command: &CommandLine,
        name: &'static str,
        server: u16,
        dir: &Path,
        cx: &Context,
    ) -> Result<Result<Client, Vec<String>>, Abort> {
        let (udp, tcp) = (runner::free_port()?, runner::free_port()?);
        let args = [
            "-c".to_string(),
            name.to_string(),
            "127.0.0.1".to_string(),
            server.to_string(),
            udp.to_string(),
            tcp.to_string(),
        ];
        let mut proc =
            Proc::spawn_interactive(&format!("client {name}"), &command.with(&args), dir)?;
        proc.interrupt_first();
        let (ready, _) = proc
            .stdout
            .wait_for(0, cx.timeouts.secs(8.0), &cx.shutdown, |t| {
                has_line(t, ">>> [Client table updated.]")
            });
        cx.check_interrupt()?;
        if !ready {
            let mut e = vec![format!(
                "client {name} did not print `>>> [Client table updated.]` after registering"
            )];
            e.extend(proc.evidence());
            return Ok(Err(e));
        }
        Ok(Ok(Client { proc, tcp }))
    }

    /// Types `line`; waits until what it prints after contains every one of `want`; that text.
    fn command(&mut self, line: &str, want: &[&str], cx: &Context) -> (bool, String) {
        let mark = self.proc.stdout.mark();
        let _ = self.proc.send_line(line);
        self.proc
            .stdout
            .wait_for(mark, cx.timeouts.secs(5.0), &cx.shutdown, |t| {
                want.iter().all(|w| has_line(t, w))
            })
    }
}

/// Lines of evidence for a typed command: what was typed and what came back.
fn typed(who: &str, line: &str, out: &str) -> Vec<String> {
    let mut e = vec![format!("{who} typed `{line}`; it printed:")];
    e.extend(
        out.lines()
            .filter(|l| !l.trim().is_empty())
            .take(12)
            .map(|l| format!("  | {l}")),
    );
    e
}

/// Everything the client tests share: the server, the observer, the two clients.
struct World {
    _server: Proc,
    observer: Raw,
    a: Client,
    b: Client,
    _a_dir: Workdir,
    b_dir: Workdir,
}

pub fn part(command: &CommandLine, cx: &Context) -> Result<Vec<TestResult>, Abort> {
    cx.say("FileApp client");
    let mut w = match setup(command, cx)? {
        Ok(w) => w,
        Err(e) => {
            return Ok(IDS
                .iter()
                .map(|id| TestResult::new(id, 10.0, false, e.clone()))
                .collect())
        }
    };
    let offer1 = offer_1(&mut w, cx);
    let list1 = list_1(&mut w, cx);
    let transfer1 = transfer_1(&mut w, cx);
    cx.check_interrupt()?;
    let transfer2 = transfer_2(&mut w, cx);
    let offer2 = offer_2(&mut w, cx);
    let dereg1 = dereg_1(&mut w, cx);
    let mut out = vec![offer1, offer2, list1, transfer1, transfer2, dereg1];
    for t in out.iter_mut().filter(|t| !t.passed) {
        t.evidence.extend(w.a.proc.evidence());
    }
    Ok(out)
}

/// peershare's server, the observer and clients A (with `share/x.txt`, `share/y.txt`) and B.
fn setup(command: &CommandLine, cx: &Context) -> Result<Result<World, Vec<String>>, Abort> {
    let server_dir = Workdir::new("fileapp-peershare-server")?;
    let port = runner::free_port()?;
    let own = CommandLine {
        program: cx.peershare.clone().into_os_string(),
        args: vec!["fileapp".into(), "-s".into(), port.to_string().into()],
    };
    let server = Proc::spawn("peershare server", &own, &server_dir.path)?;
    let _ = server
        .stderr
        .wait_for(0, cx.timeouts.secs(5.0), &cx.shutdown, |t| {
            t.contains("listening on")
        });
    let observer = Raw::new(SocketAddr::from(([127, 0, 0, 1], port)))?;
    if observer
        .register("observer", 41999, cx.timeouts.secs(2.0))
        .1
        .is_none()
    {
        return Ok(Err(vec![
            "peershare's own FileApp server did not answer".into()
        ]));
    }
    let a_dir = Workdir::new("fileapp-A")?;
    std::fs::create_dir_all(a_dir.path.join("share"))?;
    std::fs::write(a_dir.path.join("share/x.txt"), x_bytes())?;
    std::fs::write(a_dir.path.join("share/y.txt"), b"not offered")?;
    let b_dir = Workdir::new("fileapp-B")?;
    std::fs::create_dir_all(b_dir.path.join("bshare"))?;
    let a = match Client::start(command, "A", port, &a_dir.path, cx)? {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    let b = match Client::start(command, "B", port, &b_dir.path, cx)? {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    // The broadcasts of A's and B's registrations are not what the tests look for.
    while observer.recv(Duration::from_millis(200)).is_some() {}
    Ok(Ok(World {
        _server: server,
        observer,
        a,
        b,
        _a_dir: a_dir,
        b_dir,
    }))
}

/// Whether the observer gets a table within `wait` whose keys satisfy `want`; what it got.
fn observed(
    w: &World,
    wait: Duration,
    want: impl Fn(&[(String, String)]) -> bool,
) -> (bool, Vec<String>) {
    w.observer
        .recv_until(wait, |d| table_keys(d).is_ok_and(|k| want(&k)))
}

fn offer_1(w: &mut World, cx: &Context) -> TestResult {
    let set = ">>> [Successfully set share as the directory for searching offered files.]";
    let (set_ok, set_out) = w.a.command("setdir share", &[set], cx);
    let acked = ">>> [Offer Message received by Server.]";
    let (offer_ok, offer_out) = w.a.command("offer x.txt", &[acked], cx);
    let key = ("x.txt".to_string(), "A".to_string());
    let (seen, tables) = observed(w, cx.timeouts.secs(3.0), |k| k.contains(&key));
    let mut e = typed("A", "setdir share", &set_out);
    e.extend(typed("A", "offer x.txt", &offer_out));
    e.push(format!("the observer's tables after the offer: {tables:?}"));
    e.push(format!(
        "wanted `{set}`, `{acked}` and a broadcast table with \"x.txt,A\""
    ));
    TestResult::new(IDS[0], 10.0, set_ok && offer_ok && seen, e)
}

fn offer_2(w: &mut World, cx: &Context) -> TestResult {
    let first = ">>> [Please set a directory first. Usage: setdir <dir>.]";
    let (before_ok, before_out) = w.b.command("offer x.txt", &[first], cx);
    let set = ">>> [Successfully set bshare as the directory for searching offered files.]";
    let (_, set_out) = w.b.command("setdir bshare", &[set], cx);
    let missing = ">>> [Offer failed: missing.txt does not exist in bshare.]";
    let (missing_ok, missing_out) = w.b.command("offer missing.txt", &[missing], cx);
    let (leaked, tables) = observed(w, cx.timeouts.secs(1.0), |k| {
        k.iter().any(|(_, o)| o == "B")
    });
    let mut e = typed("B", "offer x.txt", &before_out);
    e.extend(typed("B", "setdir bshare", &set_out));
    e.extend(typed("B", "offer missing.txt", &missing_out));
    e.push(format!("the observer's tables meanwhile: {tables:?}"));
    e.push(format!(
        "wanted `{first}`, then `{missing}`, and no offer reaching the server"
    ));
    TestResult::new(IDS[1], 10.0, before_ok && missing_ok && !leaked, e)
}

fn list_1(w: &mut World, cx: &Context) -> TestResult {
    let rows = [TableRow {
        file: "x.txt".into(),
        owner: "A".into(),
        ip: "127.0.0.1".into(),
        tcp_port: w.a.tcp,
    }];
    let want = listing::render(&rows);
    let want_refs: Vec<&str> = want.iter().map(String::as_str).collect();
    let (ok, out) = w.a.command("list", &want_refs, cx);
    let mut e = typed("A", "list", &out);
    e.push("wanted these lines (PrettyTable, no borders, left-aligned):".into());
    e.extend(want.iter().map(|l| format!("  | {l}")));
    TestResult::new(IDS[2], 10.0, ok, e)
}

fn transfer_1(w: &mut World, cx: &Context) -> TestResult {
    let done = "< x.txt downloaded successfully! >";
    let (said, out) = w.b.command("request x.txt A", &[done], cx);
    let got = std::fs::read(w.b_dir.path.join("x.txt")).ok();
    let same = got.as_deref() == Some(x_bytes().as_slice());
    let mut e = typed("B", "request x.txt A", &out);
    e.push(match &got {
        Some(g) => format!(
            "B's x.txt: {} bytes, {}",
            g.len(),
            if same { "identical" } else { "different" }
        ),
        None => "B has no x.txt".into(),
    });
    e.push(format!(
        "wanted `{done}` and the file byte-identical (50,000 bytes)"
    ));
    TestResult::new(IDS[3], 10.0, said && same, e)
}

/// Raw TCP `y.txt,eve` to A gets no bytes, and B's `request y.txt A` is refused locally.
fn transfer_2(w: &mut World, cx: &Context) -> TestResult {
    let raw = raw_request(w.a.tcp, "y.txt,eve", cx.timeouts.secs(7.0));
    let refused = "< Invalid Request >";
    let (said, out) = w.b.command("request y.txt A", &[refused], cx);
    let kept = w.b_dir.path.join("y.txt").exists();
    let mut e = vec![format!(
        "raw TCP `y.txt,eve` to A's port {}: {raw}",
        w.a.tcp
    )];
    e.extend(typed("B", "request y.txt A", &out));
    e.push(format!("B has y.txt: {kept}"));
    e.push(format!(
        "wanted no bytes for the raw request, `{refused}` and no y.txt at B"
    ));
    TestResult::new(IDS[4], 10.0, raw == "0 bytes" && said && !kept, e)
}

/// Sends `request` to 127.0.0.1:`port` and reads to EOF: `N bytes`, or what went wrong.
fn raw_request(port: u16, request: &str, wait: Duration) -> String {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = match TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
        Ok(s) => s,
        Err(e) => return format!("cannot connect: {e}"),
    };
    let _ = s.set_read_timeout(Some(wait));
    if let Err(e) = s.write_all(request.as_bytes()) {
        return format!("cannot send: {e}");
    }
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => format!("{} bytes", got.len()),
        Err(e) if crate::core::timed_out(&e) => format!("{} bytes, then no close", got.len()),
        Err(_) => format!("{} bytes", got.len()),
    }
}

fn dereg_1(w: &mut World, cx: &Context) -> TestResult {
    let bye = ">>> [You are now Offline. Bye.]";
    let (said, out) = w.a.command("dereg A", &[bye], cx);
    let (gone, tables) = observed(w, cx.timeouts.secs(3.0), |k| {
        !k.iter().any(|(_, o)| o == "A")
    });
    let invalid = ">>> [Invalid command. Please try again.]";
    let (refused, after) = w.a.command("offer x.txt", &[invalid], cx);
    let (back, later) = observed(w, cx.timeouts.secs(1.0), |k| {
        k.iter().any(|(_, o)| o == "A")
    });
    let mut e = typed("A", "dereg A", &out);
    e.push(format!("the observer's tables after the dereg: {tables:?}"));
    e.extend(typed("A", "offer x.txt", &after));
    if back {
        e.push(format!("A's rows came back: {later:?}"));
    }
    e.push(format!(
        "wanted `{bye}`, a table without A's rows, then `{invalid}`"
    ));
    TestResult::new(IDS[5], 10.0, said && gone && refused && !back, e)
}
