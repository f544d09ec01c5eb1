//! `peershare diagram`: known inputs give exactly the expected lifelines and arrows in the SVG,
//! malformed lines are reported and skipped, Mermaid is capped, and a real browser draws a demo
//! run's page from disk without touching the network.

mod support;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Proc, BIN};

fn peershare(cwd: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run peershare")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The value of `attr="…"` in `tag`.
fn attr<'a>(tag: &'a str, attr: &str) -> Option<&'a str> {
    let start = tag.find(&format!(" {attr}=\""))? + attr.len() + 3;
    Some(&tag[start..start + tag[start..].find('"')?])
}

/// Lifeline names in header order, as the SVG has them.
fn lifelines(html: &str) -> Vec<String> {
    html.split("<text class=\"ll\" ")
        .skip(1)
        .map(|s| {
            let name = &s[s.find('>').unwrap() + 1..s.find("<title>").unwrap()];
            unescape(name)
        })
        .collect()
}

/// Every drawn row in order: (kind, from, to or "-", full message text).
fn arrows(html: &str) -> Vec<(String, String, String, String)> {
    let names = lifelines(html);
    html.split("<g class=\"r ")
        .skip(1)
        .map(|s| {
            let tag = format!(" class=\"{}", &s[..s.find('>').unwrap()]);
            let class = attr(&tag, "class").unwrap();
            let kind = class.split(' ').next().unwrap().trim_start_matches("k-");
            let name = |i: &str| names[i.parse::<usize>().unwrap()].clone();
            let from = name(attr(&tag, "data-from").unwrap());
            let to = attr(&tag, "data-to").map_or("-".to_string(), name);
            let desc = &s[s.find("<desc>").unwrap() + 6..];
            let label = unescape(&desc[..desc.find('\n').unwrap()]);
            (kind.to_string(), from, to, label)
        })
        .collect()
}

fn row(kind: &str, from: &str, to: &str, label: &str) -> (String, String, String, String) {
    (kind.into(), from.into(), to.into(), label.into())
}

const KNOWN_LOG: &str = "\
A,LOCAL_CHUNKS,1,localhost,6001
B,LOCAL_CHUNKS,2,localhost,6002
P2PTracker,LOCAL_CHUNKS,1,localhost,6001
P2PTracker,LOCAL_CHUNKS,2,localhost,6002
P2PTracker,WHERE_CHUNK,2
A,WHERE_CHUNK,2
P2PTracker,GET_CHUNK_FROM,2,localhost,6002
B,WHERE_CHUNK,3
P2PTracker,WHERE_CHUNK,3
P2PTracker,CHUNK_LOCATION_UNKNOWN,3
A,REQUEST_CHUNK,2,localhost,6002
A,REQUEST_CHUNK,2,localhost,6002
A,LOCAL_CHUNKS,2,localhost,6001
";

#[test]
fn diagram_of_a_known_logs_log_has_exactly_the_expected_lifelines_and_arrows_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("logs.log"), KNOWN_LOG).unwrap();
    let out = peershare(tmp.path(), &["diagram", "logs.log"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("written to logs.html"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(text(&out.stderr), "");
    let html = std::fs::read_to_string(tmp.path().join("logs.html")).unwrap();
    assert_eq!(lifelines(&html), ["P2PTracker", "A", "B"]);
    let m = "message";
    assert_eq!(
        arrows(&html),
        [
            row(m, "A", "P2PTracker", "LOCAL_CHUNKS,1,localhost,6001"),
            row(m, "B", "P2PTracker", "LOCAL_CHUNKS,2,localhost,6002"),
            row(m, "A", "P2PTracker", "WHERE_CHUNK,2"),
            row(m, "P2PTracker", "A", "GET_CHUNK_FROM,2,localhost,6002"),
            row(m, "B", "P2PTracker", "WHERE_CHUNK,3"),
            row(m, "P2PTracker", "B", "CHUNK_LOCATION_UNKNOWN,3"),
            row(m, "A", "B", "REQUEST_CHUNK,2,localhost,6002"),
            row(
                "failure",
                "A",
                "-",
                "re-request of chunk 2 (attempt 2): the earlier one failed"
            ),
            row(m, "A", "B", "REQUEST_CHUNK,2,localhost,6002"),
            row(m, "A", "P2PTracker", "LOCAL_CHUNKS,2,localhost,6001"),
        ]
    );
    // The failure is marked as one.
    assert_eq!(html.matches("<g class=\"r k-failure").count(), 1);
    assert!(html.contains("class=\"r k-failure w"));
    assert!(
        html.contains(" f\" id=\"r7\" data-n=\"7\""),
        "the failure row carries the class f"
    );
}

/// A tracker T, clients A and B; both ends trace most messages; A fetches a chunk from B and then
/// fails to reach an untraced peer.
fn known_trace() -> String {
    let line = |t: u64, p: &str, th: &str, kind: &str, extra: &str| {
        format!("{{\"t_us\":{t},\"process\":\"{p}\",\"thread\":\"{th}\",\"kind\":\"{kind}\",{extra}}}\n")
    };
    let msg = |dir: &str, local: u16, remote: u16, m: &str| {
        format!(
            "\"dir\":\"{dir}\",\"proto\":\"tcp\",\"local\":\"127.0.0.1:{local}\",\"remote\":\"127.0.0.1:{remote}\",\"msg\":{m},\"size\":10"
        )
    };
    let mut s = String::new();
    s += &line(
        1_000_100,
        "A",
        "main",
        "message",
        &msg("send", 40001, 5000, "\"WHERE_CHUNK,1\""),
    );
    s += &line(1_000_120, "B", "udp", "message", "\"dir\":\"send\",\"proto\":\"udp\",\"local\":\"127.0.0.1:7000\",\"remote\":\"127.0.0.1:5001\",\"msg\":{\"type\": \"hello\", \"port\": 6002},\"size\":30");
    s += &line(1_000_125, "T", "udp-listener", "message", "\"dir\":\"recv\",\"proto\":\"udp\",\"local\":\"127.0.0.1:5001\",\"remote\":\"127.0.0.1:7000\",\"msg\":{\"type\":\"hello\",\"port\":6002},\"size\":30");
    s += &line(
        1_000_150,
        "T",
        "conn-1",
        "message",
        &msg("recv", 5000, 40001, "\"WHERE_CHUNK,1\""),
    );
    s += &line(
        1_000_160,
        "T",
        "conn-1",
        "message",
        &msg("send", 5000, 40001, "\"GET_CHUNK_FROM,1,127.0.0.1,6002\""),
    );
    s += &line(
        1_000_170,
        "A",
        "main",
        "message",
        &msg("recv", 40001, 5000, "\"GET_CHUNK_FROM,1,127.0.0.1,6002\""),
    );
    s += &line(
        1_000_200,
        "A",
        "fetch-1",
        "message",
        &msg("send", 40003, 6002, "\"REQUEST_CHUNK,1\""),
    );
    s += &line(
        1_000_205,
        "B",
        "upload-1",
        "message",
        &msg("recv", 6002, 40003, "\"REQUEST_CHUNK,1\""),
    );
    s += &line(1_000_210, "A", "fetch-1", "transfer_begin", "\"proto\":\"tcp\",\"local\":\"127.0.0.1:40003\",\"remote\":\"127.0.0.1:6002\",\"msg\":\"chunk 1\",\"size\":4096");
    s += &line(1_001_210, "A", "fetch-1", "transfer_end", "\"proto\":\"tcp\",\"local\":\"127.0.0.1:40003\",\"remote\":\"127.0.0.1:6002\",\"msg\":\"chunk 1\",\"size\":4096");
    s += &line(
        1_002_000,
        "A",
        "fetch-2",
        "failure",
        "\"proto\":\"tcp\",\"remote\":\"127.0.0.1:6003\",\"msg\":\"connection refused\"",
    );
    s
}

#[test]
fn diagram_of_a_known_trace_pairs_both_ends_and_draws_transfers_and_failures_in_time_order() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("run.trace"), known_trace()).unwrap();
    let out = peershare(tmp.path(), &["diagram", "run.trace", "-o", "out.html"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let html = std::fs::read_to_string(tmp.path().join("out.html")).unwrap();
    assert_eq!(lifelines(&html), ["A", "B", "T", "127.0.0.1:6003"]);
    assert_eq!(
        arrows(&html),
        [
            row("message", "A", "T", "WHERE_CHUNK,1"),
            row("message", "B", "T", "{\"type\": \"hello\", \"port\": 6002}"),
            row("message", "T", "A", "GET_CHUNK_FROM,1,127.0.0.1,6002"),
            row("message", "A", "B", "REQUEST_CHUNK,1"),
            row("transfer", "B", "A", "chunk 1 (4096 bytes) in 1.0 ms"),
            row("failure", "A", "127.0.0.1:6003", "connection refused"),
        ]
    );
    // Times are shown relative to the first event; threads are in the hover text.
    assert!(html.contains(">0.000 ms<") && html.contains(">1.900 ms<"));
    assert!(html.contains("A/fetch-1 tcp 127.0.0.1:40003 -&gt; 127.0.0.1:6002"));

    let out = peershare(
        tmp.path(),
        &["diagram", "run.trace", "--threads", "-o", "t.html"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let html = std::fs::read_to_string(tmp.path().join("t.html")).unwrap();
    assert_eq!(
        lifelines(&html),
        [
            "A / main",
            "A / fetch-1",
            "A / fetch-2",
            "B / udp",
            "B / upload-1",
            "T / conn-1",
            "T / udp-listener",
            "127.0.0.1:6003"
        ]
    );
    assert_eq!(arrows(&html).len(), 6);
}

#[test]
fn malformed_lines_are_reported_with_line_numbers_and_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let mut trace = known_trace();
    trace.insert_str(0, "{\"t_us\":1,\"process\":\"torn\n");
    trace.push_str("not json at all\n\u{0}\u{1}\n");
    std::fs::write(tmp.path().join("run.trace"), trace).unwrap();
    std::fs::write(
        tmp.path().join("logs.log"),
        "A,WHERE_CHUNK,1\nA,WHERE_CHUNK\n\u{fffd}\u{fffd}\nP2PTracker,WHERE_CHUNK,1\n",
    )
    .unwrap();
    let out = peershare(
        tmp.path(),
        &["diagram", "run.trace", "logs.log", "-o", "x.html"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let warnings: Vec<&str> = err.lines().collect();
    assert_eq!(warnings.len(), 5, "{err}");
    assert!(
        warnings[0].starts_with("warning: run.trace:1: not a JSON object"),
        "{err}"
    );
    assert!(
        warnings[1].starts_with("warning: run.trace:13: not a JSON object"),
        "{err}"
    );
    assert!(warnings[2].starts_with("warning: run.trace:14: "), "{err}");
    assert!(
        warnings[3].starts_with("warning: logs.log:2: WHERE_CHUNK"),
        "{err}"
    );
    assert!(
        warnings[4].starts_with("warning: logs.log:3: no command after the entity name"),
        "{err}"
    );
    assert!(
        warnings.iter().all(|w| w.ends_with("; line skipped")),
        "{err}"
    );
    let html = std::fs::read_to_string(tmp.path().join("x.html")).unwrap();
    // The trace's six rows, then the log's one WHERE_CHUNK (both ends' lines, one arrow).
    let a = arrows(&html);
    assert_eq!(a.len(), 7);
    assert_eq!(a[6], row("message", "A", "P2PTracker", "WHERE_CHUNK,1"));
    assert!(html.contains("5 malformed input lines skipped"));

    // Nothing drawable at all, or a missing file: one error line, exit 1.
    std::fs::write(tmp.path().join("junk"), "junk\n").unwrap();
    let out = peershare(tmp.path(), &["diagram", "junk"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).ends_with("error: no message, transfer or failure found in the input\n")
    );
    let out = peershare(tmp.path(), &["diagram", "missing.log"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("error: cannot read missing.log: "));
    let out = peershare(tmp.path(), &["diagram", "logs.log", "--mermaid-cap", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let first = text(&out.stderr).lines().next().unwrap_or("").to_string();
    assert!(
        first.starts_with("error: ") && first.contains("--mermaid-cap"),
        "{first}"
    );
}

#[test]
fn mermaid_output_is_capped_and_says_how_many_events_were_left_out() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("logs.log"), KNOWN_LOG).unwrap();
    let out = peershare(
        tmp.path(),
        &["diagram", "logs.log", "--mermaid", "--mermaid-cap", "4"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "sequenceDiagram
    participant P0 as P2PTracker
    participant P1 as A
    participant P2 as B
    P1->>P0: LOCAL_CHUNKS,1,localhost,6001
    P2->>P0: LOCAL_CHUNKS,2,localhost,6002
    P1->>P0: WHERE_CHUNK,2
    P0->>P1: GET_CHUNK_FROM,2,localhost,6002
    Note over P0,P2: 6 more events left out (drawn: 4 rows, the cap)
"
    );
    // --mermaid alone writes no page.
    assert!(!tmp.path().join("logs.html").exists());

    let out = peershare(tmp.path(), &["diagram", "logs.log", "--mermaid"]);
    let all = text(&out.stdout);
    assert!(
        all.contains("    Note over P1: ✗ re-request of chunk 2 (attempt 2)"),
        "{all}"
    );
    assert!(!all.contains("left out"), "{all}");
}

#[test]
fn a_thousand_repeated_transfers_collapse_into_one_counted_block_and_twenty_thousand_render() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = String::new();
    for i in 0..1000u64 {
        let t = 1_000_000 + i * 10;
        s += &format!("{{\"t_us\":{t},\"process\":\"A\",\"thread\":\"f\",\"kind\":\"message\",\"dir\":\"send\",\"proto\":\"tcp\",\"local\":\"127.0.0.1:4000\",\"remote\":\"127.0.0.1:6000\",\"msg\":\"REQUEST_CHUNK,{i}\",\"size\":16}}\n");
        s += &format!("{{\"t_us\":{},\"process\":\"B\",\"thread\":\"u\",\"kind\":\"transfer_begin\",\"proto\":\"tcp\",\"local\":\"127.0.0.1:6000\",\"remote\":\"127.0.0.1:4000\",\"msg\":\"chunk {i}\",\"size\":1024}}\n", t + 1);
    }
    std::fs::write(tmp.path().join("many.trace"), &s).unwrap();
    let out = peershare(tmp.path(), &["diagram", "many.trace"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let html = std::fs::read_to_string(tmp.path().join("many.html")).unwrap();
    assert_eq!(
        html.matches("<g class=\"rep\" data-times=\"1000\">")
            .count(),
        1
    );
    assert_eq!(
        arrows(&html),
        [
            row("message", "A", "B", "REQUEST_CHUNK,0"),
            row("transfer", "B", "A", "chunk 0 (1024 bytes)"),
        ]
    );
    assert!(html.contains("the last time: REQUEST_CHUNK,999 | chunk 999 (1024 bytes)"));

    // 20,000 messages that do not repeat as a pattern are all drawn, in blocks.
    let mut s = String::new();
    for i in 0..20_000u64 {
        let (from, to) = (i % 7, (i * 3 + 1) % 7);
        let to = if to == from { (to + 1) % 7 } else { to };
        s += &format!("{{\"t_us\":{i},\"process\":\"p{from}\",\"thread\":\"t\",\"kind\":\"message\",\"dir\":\"send\",\"proto\":\"udp\",\"local\":\"127.0.0.1:{}\",\"remote\":\"127.0.0.1:{}\",\"msg\":\"M{} {i}\",\"size\":9}}\n", 7000 + from, 7000 + to, i % 5);
    }
    std::fs::write(tmp.path().join("big.trace"), &s).unwrap();
    let out = peershare(tmp.path(), &["diagram", "big.trace"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let html = std::fs::read_to_string(tmp.path().join("big.html")).unwrap();
    assert_eq!(html.matches("<g class=\"r ").count(), 20_000);
    assert_eq!(html.matches("<div class=\"blk\"").count(), 100);
}

// ---- a real browser ----

/// Chromium headless in its own process group, killed (the whole group, by its id) on drop.
struct Chromium {
    pid: u32,
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.pid)])
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs `chromium --headless … extra… url` with a fresh profile and every HTTP(S) request sent
/// to `proxy`; returns stdout. Panics after `secs`.
fn chromium(profile: &Path, proxy: u16, extra: &[&str], url: &str, secs: u64) -> String {
    let out_path = profile.with_extension("stdout");
    let stdout = std::fs::File::create(&out_path).unwrap();
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--proxy-server=127.0.0.1:{proxy}"))
        .args(extra)
        .arg(url)
        .stdout(stdout)
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("chromium must be installed (Debian's `chromium`; .ci/run installs it)");
    let guard = Chromium { pid: child.id() };
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "chromium did not finish in {secs} s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(guard);
    std::fs::read_to_string(&out_path).unwrap()
}

/// A proxy that records the request line of every connection and answers nothing useful: it
/// shows which URLs the browser tried to fetch.
fn recording_proxy() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::Builder::new()
        .name("test-proxy".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let mut first = String::new();
                let _ = BufReader::new(&conn).read_line(&mut first);
                log.lock().unwrap().push(first.trim().to_string());
            }
        })
        .unwrap();
    (port, seen)
}

/// Requests Chromium makes on its own (update checks, sign-in, network time) whatever the page.
fn browser_own(request: &str) -> bool {
    ["google.com", "googleapis.com", "gvt1.com", "gstatic.com"]
        .iter()
        .any(|h| request.contains(&format!("{h}:")) || request.contains(&format!("{h}/")))
}

fn page_requests(seen: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    let seen = seen.lock().unwrap();
    seen.iter().filter(|r| !browser_own(r)).cloned().collect()
}

fn url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// Runs `peershare demo --diagram swarm.html --trace trace.jsonl` on the sample files (3 peers,
/// 64 KiB chunks) in `tmp`; returns the page, the trace and the work dir.
fn demo_with_diagram(tmp: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let work = tmp.join("work");
    let page = tmp.join("swarm.html");
    let trace = tmp.join("trace.jsonl");
    let dir = format!("{}/dir", env!("CARGO_MANIFEST_DIR"));
    let mut demo = Proc::start(
        tmp,
        &[
            "demo",
            "--dir",
            &dir,
            "--chunk-size",
            "65536",
            "--peers",
            "3",
            "--work-dir",
            work.to_str().unwrap(),
            "--trace",
            trace.to_str().unwrap(),
            "--diagram",
            page.to_str().unwrap(),
        ],
    );
    assert_eq!(demo.wait_exit(120), Some(0), "{}", demo.stderr.text());
    // The pipe's reader thread may still be draining the last lines after the exit.
    let out = demo.wait_stdout(&format!("diagram: {}\n", page.display()), 10);
    assert!(
        out.contains(&format!("\ndiagram: {}\n", page.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!("trace: {}\n", trace.display())),
        "{out}"
    );
    (page, trace, work)
}

#[test]
fn demo_with_diagram_writes_the_swarms_page_and_prints_its_path() {
    let tmp = tempfile::tempdir().unwrap();
    let (page, trace, work) = demo_with_diagram(tmp.path());
    let html = std::fs::read_to_string(&page).unwrap();
    // The tracker and the three clients, whichever input the page was drawn from.
    assert_eq!(lifelines(&html).len(), 4, "{:?}", lifelines(&html));
    let a = arrows(&html);
    assert!(a.len() > 20, "{a:?}");
    let source = if std::fs::metadata(&trace).unwrap().len() > 0 {
        trace
    } else {
        work.join("logs.log")
    };
    let loaded = peershare::diagram::load(&[source], false).unwrap();
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    assert_eq!(a.len(), loaded.diagram.drawn_rows().count());
}

#[test]
fn chromium_draws_a_demo_runs_diagram_from_disk_without_any_network_request() {
    let tmp = tempfile::tempdir().unwrap();
    let (page, _, _) = demo_with_diagram(tmp.path());
    let expected = arrows(&std::fs::read_to_string(&page).unwrap()).len();
    assert!(expected > 20, "{expected}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("http://") && !html.contains("https://"));

    let (proxy, seen) = recording_proxy();
    // The detector works: a page that does load something from the network is caught.
    let leaky = tmp.path().join("leaky.html");
    std::fs::write(&leaky, "<img src=\"http://peershare-test.invalid/x.png\">").unwrap();
    chromium(
        &tmp.path().join("p0"),
        proxy,
        &["--dump-dom"],
        &url(&leaky),
        60,
    );
    let caught = page_requests(&seen);
    assert!(
        caught.iter().any(|r| r.contains("peershare-test.invalid")),
        "{caught:?}"
    );
    seen.lock().unwrap().clear();

    let dom = chromium(
        &tmp.path().join("p1"),
        proxy,
        &["--dump-dom"],
        &url(&page),
        60,
    );
    assert_eq!(dom.matches("<g class=\"r ").count(), expected);
    assert_eq!(dom.matches("<text class=\"ll\"").count(), 4);
    let shot = tmp.path().join("shot.png");
    let shot_arg = format!("--screenshot={}", shot.display());
    chromium(&tmp.path().join("p2"), proxy, &[&shot_arg], &url(&page), 60);
    assert_eq!(page_requests(&seen), Vec::<String>::new());

    // The script works: a filter box hides the rows touching its lifeline, + zooms, and hovering
    // an arrow shows its full message.
    let probe = tmp.path().join("probe.html");
    let script = "<script>\
        var b=document.querySelector('#bar input[data-h]');b.checked=false;\
        b.dispatchEvent(new Event('change'));\
        document.querySelector('#bar button[data-z=\"1.25\"]').click();\
        var l=document.querySelector('g.r line'),r=l.getBoundingClientRect();\
        l.dispatchEvent(new MouseEvent('mousemove',{bubbles:true,clientX:r.x+5,clientY:r.y}));\
        var hidden=[...document.querySelectorAll('g.r')]\
          .filter(function(e){return getComputedStyle(e).display=='none';}).length;\
        document.title='PROBE '+document.getElementById('scroll').className+' '\
          +document.getElementById('zoom').style.zoom+' '+hidden;\
        </script></body>";
    let html = std::fs::read_to_string(&page).unwrap();
    std::fs::write(&probe, html.replace("</body>", script)).unwrap();
    let dom = chromium(
        &tmp.path().join("p4"),
        proxy,
        &["--dump-dom"],
        &url(&probe),
        60,
    );
    let touching_first = arrows(&html)
        .iter()
        .filter(|a| a.1 == lifelines(&html)[0] || a.2 == lifelines(&html)[0])
        .count();
    assert!(
        dom.contains(&format!("<title>PROBE hp0 1.25 {touching_first}</title>")),
        "{}",
        &dom[..dom.len().min(600)]
    );
    let first_label = &arrows(&html)[0].3;
    let tip = dom.split("<div id=\"tip\"").nth(1).unwrap();
    assert!(
        tip.contains(&format!(">{first_label}\n")),
        "{}",
        &tip[..tip.len().min(300)]
    );

    // Not blank: a page of the same size with nothing on it compresses to far fewer bytes.
    let blank = tmp.path().join("blank.html");
    std::fs::write(&blank, "<!DOCTYPE html><html><body></body></html>").unwrap();
    let blank_shot = tmp.path().join("blank.png");
    let blank_arg = format!("--screenshot={}", blank_shot.display());
    chromium(
        &tmp.path().join("p3"),
        proxy,
        &[&blank_arg],
        &url(&blank),
        60,
    );
    let (drawn, empty) = (size(&shot), size(&blank_shot));
    assert!(
        drawn > 5 * empty,
        "diagram {drawn} bytes, blank page {empty} bytes"
    );
}

fn size(p: &PathBuf) -> u64 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .len()
}
