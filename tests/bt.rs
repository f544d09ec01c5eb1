//! `peershare bt` against the real clients: aria2c, transmission-cli/-create/-show, mktorrent and
//! libtorrent (Debian's python3-libtorrent). Everything runs on 127.0.0.1 with DHT, LPD, PEX and
//! port mapping off; every child is killed by PID when its guard drops and temp dirs go with
//! their `TempDir`. A missing client fails the test with one line naming its Debian package.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{free_tcp_port, pseudo_random, Proc, BIN};

/// A client process killed (by PID) and reaped when dropped; its output goes to `log`.
struct Kid {
    child: Child,
    log: PathBuf,
    what: String,
}

impl Kid {
    fn spawn(what: &str, cmd: &mut Command, log: &Path) -> Kid {
        let out = std::fs::File::create(log).unwrap();
        let err = out.try_clone().unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        Kid {
            child,
            log: log.to_path_buf(),
            what: what.to_string(),
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the exit code within `secs`, panicking with the log on timeout.
    fn wait(&mut self, secs: u64) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                panic!(
                    "{} did not finish in {secs} s; its log:\n{}",
                    self.what,
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fails with one line naming the Debian package when a client binary is missing.
fn need(bin: &str, package: &str) -> PathBuf {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/bin"])
    {
        let p = Path::new(dir).join(bin);
        if p.is_file() {
            return p;
        }
    }
    panic!("{bin} is missing: install the Debian package {package}");
}

/// Runs `peershare args…` to completion and returns (exit code, stdout, stderr).
fn peershare(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn info_hash_from_show(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("info-hash: "))
        .unwrap_or_else(|| panic!("no info-hash line in {stdout:?}"))
        .to_string()
}

fn transmission_show_hash(torrent: &Path) -> String {
    let out = Command::new(need("transmission-show", "transmission-cli"))
        .arg(torrent)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Hash: "))
        .unwrap_or_else(|| panic!("no Hash line in {text}"))
        .to_string()
}

/// A folder with files that do not line up with 16 KiB pieces, plus an empty one.
fn sample_folder(root: &Path) -> PathBuf {
    let dir = root.join("album");
    std::fs::create_dir_all(dir.join("disc2")).unwrap();
    std::fs::write(dir.join("a.bin"), pseudo_random(50_000, 1)).unwrap();
    std::fs::write(dir.join("disc2/b.bin"), pseudo_random(123_457, 2)).unwrap();
    std::fs::write(dir.join("empty.txt"), b"").unwrap();
    std::fs::write(dir.join("z.txt"), b"tail").unwrap();
    dir
}

#[test]
fn show_prints_the_info_hash_transmission_create_and_mktorrent_print() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("one.bin"), pseudo_random(300_001, 3)).unwrap();
    let folder = sample_folder(dir);
    let st = Command::new(need("transmission-create", "transmission-cli"))
        .args([
            "-o",
            "tc.torrent",
            "-t",
            "http://127.0.0.1:1/announce",
            "one.bin",
        ])
        .current_dir(dir)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let st = Command::new(need("mktorrent", "mktorrent"))
        .args(["-a", "udp://127.0.0.1:1", "-l", "15", "-o", "mk.torrent"])
        .arg(&folder)
        .current_dir(dir)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    for t in ["tc.torrent", "mk.torrent"] {
        let (code, out, err) = peershare(dir, &["bt", "show", t]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            info_hash_from_show(&out),
            transmission_show_hash(&dir.join(t))
        );
    }
    let (_, out, _) = peershare(dir, &["bt", "show", "mk.torrent"]);
    assert!(out.contains("album/disc2/b.bin (123457 bytes)"), "{out}");
    assert!(out.contains("files: 4"), "{out}");
}

#[test]
fn make_writes_torrents_transmission_reads_with_the_same_info_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("one.bin"), pseudo_random(100_000, 4)).unwrap();
    sample_folder(dir);
    for (src, extra) in [
        ("one.bin", vec![]),
        ("album", vec!["--piece-length", "16384"]),
    ] {
        let mut args = vec![
            "bt",
            "make",
            src,
            "--announce",
            "http://127.0.0.1:1/announce",
            "-o",
            "p.torrent",
        ];
        args.extend(extra);
        let (code, out, err) = peershare(dir, &args);
        assert_eq!(code, 0, "{err}");
        assert!(out.starts_with("made p.torrent"), "{out}");
        let (_, shown, _) = peershare(dir, &["bt", "show", "p.torrent"]);
        assert_eq!(
            info_hash_from_show(&shown),
            transmission_show_hash(&dir.join("p.torrent"))
        );
    }
}

#[test]
fn make_refuses_a_piece_length_that_is_not_a_power_of_two() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("f"), b"x").unwrap();
    let (code, _, err) = peershare(
        tmp.path(),
        &[
            "bt",
            "make",
            "f",
            "--announce",
            "http://x/a",
            "--piece-length",
            "20000",
        ],
    );
    assert_eq!(code, 2);
    assert!(
        err.starts_with("error:") && err.contains("power of two"),
        "{err}"
    );
}

#[test]
fn show_refuses_non_canonical_malformed_and_trailing_bencode() {
    let tmp = tempfile::tempdir().unwrap();
    let good_info = b"d6:lengthi3e4:name1:a12:piece lengthi16384e6:pieces20:AAAAAAAAAAAAAAAAAAAAe";
    let cases: [(&str, Vec<u8>, &str); 5] = [
        (
            "leading-zero.torrent",
            b"d4:infod6:lengthi03eee".to_vec(),
            "not canonical",
        ),
        (
            "unsorted.torrent",
            [&b"d4:info"[..], good_info, b"1:ai1ee"].concat(),
            "out of order",
        ),
        (
            "trailing.torrent",
            [&b"d4:info"[..], good_info, b"ex"].concat(),
            "after the bencoded value",
        ),
        (
            "huge.torrent",
            b"d4:info99999999999:xe".to_vec(),
            "more than the data holds",
        ),
        (
            "deep.torrent",
            [vec![b'l'; 5000], vec![b'e'; 5000]].concat(),
            "deeper than",
        ),
    ];
    for (name, bytes, why) in cases {
        std::fs::write(tmp.path().join(name), bytes).unwrap();
        let (code, out, err) = peershare(tmp.path(), &["bt", "show", name]);
        assert_eq!(code, 1, "{name}: {out}");
        assert!(
            err.starts_with("error: ") && err.contains(why),
            "{name}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

// ---- swarms with real clients ------------------------------------------------------------

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bt");

/// `peershare bt tracker` on 127.0.0.1 with free ports and a 1-second interval.
struct Tracker {
    _proc: Proc,
    http: String,
    udp: String,
}

fn start_tracker(dir: &Path) -> Tracker {
    let proc = Proc::start(
        dir,
        &[
            "bt",
            "tracker",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--udp-port",
            "0",
            "--interval",
            "1",
        ],
    );
    let out = proc.wait_stdout("tracker: ", 10);
    let line = out.lines().find(|l| l.starts_with("tracker: ")).unwrap();
    let mut words = line.split(' ').skip(1);
    let http = words.next().unwrap().to_string();
    let udp = format!("{}/announce", words.next().unwrap());
    Tracker {
        _proc: proc,
        http,
        udp,
    }
}

fn make(dir: &Path, src: &str, announce: &str, out: &str) {
    let (code, _, err) = peershare(
        dir,
        &[
            "bt",
            "make",
            src,
            "--announce",
            announce,
            "--piece-length",
            "16384",
            "-o",
            out,
        ],
    );
    assert_eq!(code, 0, "{err}");
}

/// `peershare bt seed` on a free port; returns once it serves.
fn start_seed(dir: &Path, torrent: &str, data: &str) -> Proc {
    let p = Proc::start(
        dir,
        &[
            "bt",
            "seed",
            torrent,
            data,
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
        ],
    );
    p.wait_stdout("seeding", 20);
    p
}

fn start_get(dir: &Path, torrent: &str, out: &str, extra: &[&str]) -> Proc {
    let mut args = vec![
        "bt",
        "get",
        torrent,
        "-o",
        out,
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
    ];
    args.extend_from_slice(extra);
    Proc::start(dir, &args)
}

/// aria2c with DHT, LPD and PEX off. A `udp://` tracker needs aria2's DHT socket (aria2 1.36
/// says "udp is not supported yet" without it), so for those DHT is on with no entry point
/// and a DHT file in the temp dir: it listens on loopback and talks to nobody.
fn aria2(dir: &Path, torrent: &str, out: &str, udp_tracker: bool, extra: &[&str]) -> Kid {
    let mut cmd = Command::new(need("aria2c", "aria2"));
    cmd.current_dir(dir)
        .args([
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            "--enable-dht6=false",
        ])
        .args([
            "--console-log-level=warn",
            "--summary-interval=0",
            "--bt-stop-timeout=60",
        ])
        .arg(format!("--listen-port={}", free_tcp_port()))
        .arg(format!("--dir={out}"));
    if udp_tracker {
        cmd.arg("--enable-dht=true")
            .arg(format!("--dht-listen-port={}", support::free_udp_port()))
            .arg(format!("--dht-file-path={}", dir.join("dht.dat").display()));
    } else {
        cmd.arg("--enable-dht=false");
    }
    cmd.args(extra).arg(torrent);
    Kid::spawn("aria2c", &mut cmd, &dir.join(format!("aria2-{out}.log")))
}

fn assert_same_file(a: &Path, b: &Path) {
    let (x, y) = (
        std::fs::read(a).unwrap(),
        std::fs::read(b).unwrap_or_default(),
    );
    assert!(
        x == y,
        "{} and {} differ ({} vs {} bytes)",
        a.display(),
        b.display(),
        x.len(),
        y.len()
    );
}

fn assert_same_tree(a: &Path, b: &Path) {
    for e in std::fs::read_dir(a).unwrap() {
        let e = e.unwrap();
        let other = b.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            assert_same_tree(&e.path(), &other);
        } else {
            assert_same_file(&e.path(), &other);
        }
    }
}

fn one_file(dir: &Path, name: &str, len: usize, seed: u64) {
    std::fs::write(dir.join(name), pseudo_random(len, seed)).unwrap();
}

#[test]
fn aria2c_downloads_one_file_from_peershare_seed_through_the_http_tracker() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let t = start_tracker(dir);
    one_file(dir, "song.bin", 3_000_017, 11);
    make(dir, "song.bin", &t.http, "song.torrent");
    let _seed = start_seed(dir, "song.torrent", "song.bin");
    let mut a = aria2(dir, "song.torrent", "dl", false, &["--seed-time=0"]);
    assert_eq!(a.wait(60), 0, "{}", a.output());
    assert_same_file(&dir.join("song.bin"), &dir.join("dl/song.bin"));
}

#[test]
fn aria2c_downloads_a_folder_from_peershare_seed_through_the_udp_tracker() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let t = start_tracker(dir);
    sample_folder(dir);
    make(dir, "album", &t.udp, "album.torrent");
    let _seed = start_seed(dir, "album.torrent", "album");
    let mut a = aria2(dir, "album.torrent", "dl", true, &["--seed-time=0"]);
    assert_eq!(a.wait(60), 0, "{}", a.output());
    assert_same_tree(&dir.join("album"), &dir.join("dl/album"));
}

#[test]
fn peershare_get_downloads_a_folder_from_an_aria2c_seeder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let t = start_tracker(dir);
    std::fs::create_dir(dir.join("src")).unwrap();
    sample_folder(&dir.join("src"));
    make(&dir.join("src"), "album", &t.http, "../album.torrent");
    let _a = aria2(
        dir,
        "album.torrent",
        "src",
        false,
        &["-V", "--seed-ratio=0.0"],
    );
    let mut g = start_get(dir, "album.torrent", "dl", &[]);
    g.wait_stdout("downloaded album", 60);
    assert_eq!(g.wait_exit(20), Some(0));
    assert_same_tree(&dir.join("src/album"), &dir.join("dl/album"));
    assert!(!dir.join("dl/album/a.bin.part").exists());
}

#[test]
fn peershare_get_resumes_by_rechecking_a_part_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let t = start_tracker(dir);
    one_file(dir, "big.bin", 1_000_000, 12);
    make(dir, "big.bin", &t.http, "big.torrent");
    std::fs::create_dir(dir.join("dl")).unwrap();
    let mut part = std::fs::read(dir.join("big.bin")).unwrap();
    for b in &mut part[600_000..] {
        *b = 0;
    }
    std::fs::write(dir.join("dl/big.bin.part"), &part).unwrap();
    let _seed = start_seed(dir, "big.torrent", "big.bin");
    let mut g = start_get(dir, "big.torrent", "dl", &[]);
    let out = g.wait_stdout("downloaded big.bin", 60);
    assert!(
        out.contains("resuming: 36 of 62 pieces already verified"),
        "{out}"
    );
    assert_eq!(g.wait_exit(20), Some(0));
    assert_same_file(&dir.join("big.bin"), &dir.join("dl/big.bin"));
    assert!(!dir.join("dl/big.bin.part").exists());
}

#[test]
fn peershare_get_downloads_from_peershare_seed_and_keeps_seeding_with_seed_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let t = start_tracker(dir);
    one_file(dir, "x.bin", 2_000_000, 13);
    make(dir, "x.bin", &t.http, "x.torrent");
    let seed = start_seed(dir, "x.torrent", "x.bin");
    let g = start_get(dir, "x.torrent", "dl", &["--seed"]);
    g.wait_stdout("seeding x.bin until Ctrl-C", 60);
    assert_same_file(&dir.join("x.bin"), &dir.join("dl/x.bin"));
    // The first seeder leaves; aria2c still gets the file from the downloader.
    drop(seed);
    let mut a = aria2(dir, "x.torrent", "dl2", false, &["--seed-time=0"]);
    assert_eq!(a.wait(60), 0, "{}", a.output());
    assert_same_file(&dir.join("x.bin"), &dir.join("dl2/x.bin"));
}

/// transmission-cli with its own config dir: DHT, LPD, PEX, uTP and port mapping off.
fn transmission(dir: &Path, name: &str, torrent: &str, download_dir: &str) -> Kid {
    let bin = need("transmission-cli", "transmission-cli");
    let cfg = dir.join(format!("tr-{name}"));
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("settings.json"),
        r#"{"dht-enabled": false, "lpd-enabled": false, "pex-enabled": false, "utp-enabled": false,
           "port-forwarding-enabled": false, "bind-address-ipv4": "127.0.0.1",
           "encryption": 0, "speed-limit-up-enabled": false, "speed-limit-down-enabled": false}"#,
    )
    .unwrap();
    let mut cmd = Command::new(bin);
    cmd.current_dir(dir).arg("-g").arg(&cfg).args([
        "-M",
        "-et",
        "-U",
        "-D",
        "-p",
        &free_tcp_port().to_string(),
        "-w",
        download_dir,
        torrent,
    ]);
    Kid::spawn(
        "transmission-cli",
        &mut cmd,
        &dir.join(format!("tr-{name}.log")),
    )
}

fn wait_for_file(what: &Kid, path: &Path, expected: &[u8], secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while std::fs::read(path).map(|d| d != expected).unwrap_or(true) {
        if Instant::now() > deadline {
            panic!(
                "{} never completed {}; its log:\n{}",
                what.what,
                path.display(),
                what.output()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn transmission_downloads_from_peershare_seed_which_dials_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let t = start_tracker(dir);
    one_file(dir, "t.bin", 2_500_000, 14);
    make(dir, "t.bin", &t.http, "t.torrent");
    let seed = start_seed(dir, "t.torrent", "t.bin");
    std::fs::create_dir(dir.join("dl")).unwrap();
    let tr = transmission(dir, "leech", "t.torrent", "dl");
    wait_for_file(
        &tr,
        &dir.join("dl/t.bin"),
        &std::fs::read(dir.join("t.bin")).unwrap(),
        90,
    );
    assert!(
        seed.stderr.text().contains("(-TR3000-)"),
        "{}",
        seed.stderr.text()
    );
}

#[test]
fn peershare_get_downloads_from_a_transmission_seeder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let t = start_tracker(dir);
    std::fs::create_dir(dir.join("src")).unwrap();
    sample_folder(&dir.join("src"));
    make(&dir.join("src"), "album", &t.http, "../album.torrent");
    let _tr = transmission(dir, "seed", "album.torrent", "src");
    let mut g = start_get(dir, "album.torrent", "dl", &[]);
    g.wait_stdout("downloaded album", 90);
    assert_eq!(g.wait_exit(20), Some(0));
    assert_same_tree(&dir.join("src/album"), &dir.join("dl/album"));
    assert!(
        g.stderr.text().contains("(-TR3000-)"),
        "{}",
        g.stderr.text()
    );
}

fn libtorrent(dir: &Path, mode: &str, torrent: &str, save: &str) -> Kid {
    let py = Path::new("/usr/bin/python3");
    let ok = Command::new(py)
        .args(["-c", "import libtorrent"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "libtorrent for /usr/bin/python3 is missing: install the Debian package python3-libtorrent"
    );
    let mut cmd = Command::new(py);
    cmd.current_dir(dir)
        .arg(format!("{FIXTURES}/lt_peer.py"))
        .args([mode, torrent, save, &free_tcp_port().to_string(), "90"]);
    Kid::spawn("libtorrent", &mut cmd, &dir.join(format!("lt-{mode}.log")))
}

#[test]
fn libtorrent_downloads_from_peershare_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let t = start_tracker(dir);
    sample_folder(dir);
    make(dir, "album", &t.http, "album.torrent");
    let _seed = start_seed(dir, "album.torrent", "album");
    std::fs::create_dir(dir.join("dl")).unwrap();
    let mut lt = libtorrent(dir, "get", "album.torrent", "dl");
    assert_eq!(lt.wait(100), 0, "{}", lt.output());
    assert_same_tree(&dir.join("album"), &dir.join("dl/album"));
}

#[test]
fn peershare_get_downloads_from_a_libtorrent_seeder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let t = start_tracker(dir);
    one_file(dir, "l.bin", 2_000_003, 15);
    make(dir, "l.bin", &t.udp, "l.torrent");
    let _lt = libtorrent(dir, "seed", "l.torrent", ".");
    let mut g = start_get(dir, "l.torrent", "dl", &[]);
    g.wait_stdout("downloaded l.bin", 90);
    assert_eq!(g.wait_exit(20), Some(0));
    assert_same_file(&dir.join("l.bin"), &dir.join("dl/l.bin"));
}

#[test]
fn swarm_of_two_peershare_seeds_aria2c_and_a_peershare_leecher() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let t = start_tracker(dir);
    one_file(dir, "s.bin", 4_000_000, 16);
    make(dir, "s.bin", &t.http, "s.torrent");
    let _s1 = start_seed(dir, "s.torrent", "s.bin");
    let _s2 = start_seed(dir, "s.torrent", "s.bin");
    let mut a = aria2(dir, "s.torrent", "dla", false, &["--seed-time=0"]);
    let mut g = start_get(dir, "s.torrent", "dlp", &[]);
    g.wait_stdout("downloaded s.bin", 90);
    assert_eq!(g.wait_exit(20), Some(0));
    assert_eq!(a.wait(90), 0, "{}", a.output());
    assert_same_file(&dir.join("s.bin"), &dir.join("dlp/s.bin"));
    assert_same_file(&dir.join("s.bin"), &dir.join("dla/s.bin"));
    let connected = g.stderr.text().matches("connected to").count();
    assert!(
        connected >= 2,
        "the leecher met {connected} peers:\n{}",
        g.stderr.text()
    );
}

#[test]
fn a_corrupt_piece_is_fetched_again_from_another_peer() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let t = start_tracker(dir);
    one_file(dir, "c.bin", 500_000, 17);
    make(dir, "c.bin", &t.http, "c.torrent");
    let (_, shown, _) = peershare(dir, &["bt", "show", "c.torrent"]);
    let hash = info_hash_from_show(&shown);
    let mut cmd = Command::new("python3");
    cmd.current_dir(dir)
        .arg(format!("{FIXTURES}/corrupt_seed.py"))
        .args([hash.as_str(), "c.bin", t.http.as_str(), "60"]);
    let bad = Kid::spawn("corrupt seeder", &mut cmd, &dir.join("corrupt.log"));
    support::wait_for("the corrupt seeder to announce", 20, || {
        bad.output().contains("listening")
    });
    let mut g = start_get(dir, "c.torrent", "dl", &[]);
    g.wait_stderr("failed its SHA-1 check", 30);
    assert!(!dir.join("dl/c.bin").exists());
    let _good = start_seed(dir, "c.torrent", "c.bin");
    g.wait_stdout("downloaded c.bin", 60);
    assert_eq!(g.wait_exit(20), Some(0));
    assert_same_file(&dir.join("c.bin"), &dir.join("dl/c.bin"));
}

// ---- hostile input -----------------------------------------------------------------------

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};

fn hex_bytes(hex: &str) -> [u8; 20] {
    let mut out = [0u8; 20];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

fn handshake(info_hash: &[u8; 20]) -> Vec<u8> {
    let mut h = b"\x13BitTorrent protocol".to_vec();
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(info_hash);
    h.extend_from_slice(b"-ZZ0000-hostilepeer!");
    h
}

fn seed_port(seed: &Proc) -> u16 {
    let out = seed.stdout.text();
    let line = out.lines().find(|l| l.starts_with("seeding")).unwrap();
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// True when the other side closes the connection within 10 s (data before that is skipped).
fn closed_by_peer(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

fn message(id: u8, payload: &[u8]) -> Vec<u8> {
    let mut m = ((payload.len() + 1) as u32).to_be_bytes().to_vec();
    m.push(id);
    m.extend_from_slice(payload);
    m
}

fn request(index: u32, begin: u32, length: u32) -> Vec<u8> {
    let mut p = index.to_be_bytes().to_vec();
    p.extend_from_slice(&begin.to_be_bytes());
    p.extend_from_slice(&length.to_be_bytes());
    message(6, &p)
}

#[test]
fn hostile_peers_are_refused_and_the_connection_closed_while_the_seeder_keeps_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let t = start_tracker(dir);
    one_file(dir, "h.bin", 100_000, 18);
    make(dir, "h.bin", &t.http, "h.torrent");
    let (_, shown, _) = peershare(dir, &["bt", "show", "h.torrent"]);
    let info_hash = hex_bytes(&info_hash_from_show(&shown));
    let seed = start_seed(dir, "h.torrent", "h.bin");
    let addr = format!("127.0.0.1:{}", seed_port(&seed));
    let connect = |hash: &[u8; 20]| {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(&handshake(hash)).unwrap();
        s
    };
    let good = || {
        let mut s = connect(&info_hash);
        let mut back = [0u8; 68];
        s.read_exact(&mut back).unwrap();
        assert_eq!(&back[28..48], &info_hash);
        assert_eq!(&back[48..56], b"-PS0100-");
        let mut bitfield = [0u8; 5 + 1];
        s.read_exact(&mut bitfield).unwrap();
        assert_eq!(
            bitfield,
            [0, 0, 0, 2, 5, 0xfe],
            "7 pieces: 7 bits set, the spare bit zero"
        );
        s
    };
    // A handshake for another torrent: no handshake back, closed.
    let mut s = connect(&[0xee; 20]);
    assert!(closed_by_peer(&mut s));
    seed.wait_stderr("not ours", 10);
    // A bitfield of the wrong size.
    let mut s = good();
    s.write_all(&message(5, &[0xff, 0xff])).unwrap();
    assert!(closed_by_peer(&mut s));
    seed.wait_stderr("7 pieces need 1", 10);
    // A request running past the piece's end.
    let mut s = good();
    s.write_all(&message(2, &[])).unwrap();
    s.write_all(&request(0, 16_000, 16_384)).unwrap();
    assert!(closed_by_peer(&mut s));
    seed.wait_stderr("which holds 16384", 10);
    // A request for a piece that does not exist.
    let mut s = good();
    s.write_all(&request(7, 0, 16_384)).unwrap();
    assert!(closed_by_peer(&mut s));
    seed.wait_stderr("requested piece 7 of 7", 10);
    // An oversize message.
    let mut s = good();
    s.write_all(&0x7fff_ffffu32.to_be_bytes()).unwrap();
    assert!(closed_by_peer(&mut s));
    seed.wait_stderr("exceeds", 10);
    // Garbage instead of a handshake.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(&[b'x'; 68]).unwrap();
    assert!(closed_by_peer(&mut s));
    // Still serving: a well-behaved peer gets its block.
    let mut s = good();
    s.write_all(&message(2, &[])).unwrap();
    let mut unchoke = [0u8; 5];
    s.read_exact(&mut unchoke).unwrap();
    assert_eq!(unchoke, [0, 0, 0, 1, 1]);
    s.write_all(&request(6, 0, (100_000 - 6 * 16_384) as u32))
        .unwrap();
    let mut head = [0u8; 13];
    s.read_exact(&mut head).unwrap();
    assert_eq!(head[4], 7);
    let mut block = vec![0u8; 100_000 - 6 * 16_384];
    s.read_exact(&mut block).unwrap();
    assert_eq!(
        block,
        std::fs::read(dir.join("h.bin")).unwrap()[6 * 16_384..]
    );
}

fn http_get(addr: &str, target: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(format!("GET {target} HTTP/1.0\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn http_tracker_answers_compact_and_dict_peers_and_refuses_bad_announces() {
    let tmp = tempfile::tempdir().unwrap();
    let t = start_tracker(tmp.path());
    let addr = t
        .http
        .trim_start_matches("http://")
        .trim_end_matches("/announce")
        .to_string();
    let hash = "%01".repeat(20);
    let first = format!(
        "/announce?info_hash={hash}&peer_id={}&port=7001&left=5&event=started",
        "A".repeat(20)
    );
    let reply = http_get(&addr, &first);
    assert!(
        reply.starts_with(b"HTTP/1.0 200"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    assert!(contains(&reply, b"8:intervali1e"));
    let second = format!(
        "/announce?info_hash={hash}&peer_id={}&port=7002&left=5",
        "B".repeat(20)
    );
    let reply = http_get(&addr, &second);
    assert!(
        contains(&reply, b"5:peers6:\x7f\x00\x00\x01\x1b\x59"),
        "compact by default: 127.0.0.1:7001"
    );
    let reply = http_get(&addr, &format!("{second}&compact=0"));
    assert!(
        contains(&reply, b"7:peer id20:AAAAAAAAAAAAAAAAAAAA"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    assert!(contains(&reply, b"2:ip9:127.0.0.1"));
    let scrape = http_get(&addr, &format!("/scrape?info_hash={hash}"));
    assert!(
        contains(&scrape, b"d8:completei0e10:downloadedi0e10:incompletei2ee"),
        "{}",
        String::from_utf8_lossy(&scrape)
    );
    let bad = http_get(&addr, "/announce?info_hash=%01&peer_id=x&port=1");
    assert!(
        contains(&bad, b"14:failure reason"),
        "{}",
        String::from_utf8_lossy(&bad)
    );
    assert!(http_get(&addr, "/index.html").starts_with(b"HTTP/1.0 404"));
    // An endless request head is cut off; the tracker still answers the next client.
    let mut s = TcpStream::connect(&addr).unwrap();
    let _ = s.write_all(&vec![b'x'; 20_000]);
    assert!(closed_by_peer(&mut s));
    assert!(http_get(&addr, &second).starts_with(b"HTTP/1.0 200"));
}

#[test]
fn udp_tracker_needs_a_connection_id_it_issued_and_ignores_garbage() {
    let tmp = tempfile::tempdir().unwrap();
    let t = start_tracker(tmp.path());
    let addr = t
        .udp
        .trim_start_matches("udp://")
        .trim_end_matches("/announce")
        .to_string();
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 1024];
    s.send(b"hello tracker").unwrap();
    assert!(s.recv(&mut buf).is_err(), "garbage gets no answer");
    let announce = |conn: u64, tid: u32| {
        let mut a = conn.to_be_bytes().to_vec();
        a.extend_from_slice(&1u32.to_be_bytes());
        a.extend_from_slice(&tid.to_be_bytes());
        a.extend_from_slice(&[3; 20]);
        a.extend_from_slice(b"-ZZ0000-udpudpudpudp");
        a.extend_from_slice(&[0; 24]);
        a.extend_from_slice(&2u32.to_be_bytes());
        a.extend_from_slice(&[0; 8]);
        a.extend_from_slice(&(-1i32).to_be_bytes());
        a.extend_from_slice(&7003u16.to_be_bytes());
        a
    };
    s.send(&announce(0x1234, 9)).unwrap();
    let n = s.recv(&mut buf).unwrap();
    assert_eq!(&buf[..8], &[0, 0, 0, 3, 0, 0, 0, 9]);
    assert!(String::from_utf8_lossy(&buf[8..n]).contains("connection id"));
    let mut connect = 0x41727101980u64.to_be_bytes().to_vec();
    connect.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 5]);
    s.send(&connect).unwrap();
    let n = s.recv(&mut buf).unwrap();
    assert_eq!((n, &buf[..8]), (16, &[0, 0, 0, 0, 0, 0, 0, 5][..]));
    let conn = u64::from_be_bytes(buf[8..16].try_into().unwrap());
    s.send(&announce(conn, 10)).unwrap();
    let n = s.recv(&mut buf).unwrap();
    assert_eq!(&buf[..8], &[0, 0, 0, 1, 0, 0, 0, 10]);
    assert_eq!(n, 20, "no other peers yet");
    assert_eq!(&buf[8..12], &1u32.to_be_bytes(), "interval");
}

/// `--trace` on the tracker, a seed and a downloader sharing one file: every line is a whole JSON
/// object, each process has its own lifeline label, the handshake, announce and every request and
/// piece appear once on each side (TCP loses nothing), blocks are summaries, never bytes, and
/// `peershare diagram` reads the file without skipping a line.
#[test]
fn trace_records_every_peer_wire_message_and_announce_on_both_sides() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let trace = dir.join("swarm.jsonl");
    let trace_arg = trace.to_str().unwrap();
    let tracker = Proc::start(
        dir,
        &[
            "bt",
            "tracker",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--udp-port",
            "0",
            "--trace",
            trace_arg,
        ],
    );
    let out = tracker.wait_stdout("tracker: ", 10);
    let http = out
        .lines()
        .find_map(|l| l.strip_prefix("tracker: "))
        .unwrap();
    let http = http.split(' ').next().unwrap().to_string();
    // 13 pieces of 16 KiB (the last one short), one block each.
    one_file(dir, "x.bin", 200_000, 21);
    make(dir, "x.bin", &http, "x.torrent");
    let seed = Proc::start(
        dir,
        &[
            "bt",
            "seed",
            "x.torrent",
            "x.bin",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--trace",
            trace_arg,
        ],
    );
    seed.wait_stdout("seeding", 20);
    let mut get = start_get(dir, "x.torrent", "dl", &["--trace", trace_arg]);
    assert_eq!(get.wait_exit(60), Some(0), "{}", get.stderr.text());
    assert_same_file(&dir.join("x.bin"), &dir.join("dl/x.bin"));
    drop(seed);
    drop(tracker);

    let text = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for l in &lines {
        assert!(l.starts_with('{') && l.ends_with('}'), "torn line: {l}");
        for key in [
            "\"t_us\":",
            "\"process\":",
            "\"thread\":",
            "\"kind\":",
            "\"proto\":",
        ] {
            assert!(l.contains(key), "{key} missing: {l}");
        }
    }
    let count = |process: &str, dir: &str, what: &str| {
        lines
            .iter()
            .filter(|l| {
                l.contains(&format!("\"process\":\"{process}"))
                    && l.contains(&format!("\"dir\":\"{dir}\""))
                    && l.contains(what)
            })
            .count()
    };
    assert_eq!(count("bt-get-", "send", "\"request piece "), 13, "{text}");
    assert_eq!(count("bt-seed-", "recv", "\"request piece "), 13, "{text}");
    assert_eq!(count("bt-seed-", "send", "\"piece "), 13, "{text}");
    assert_eq!(count("bt-get-", "recv", "\"piece "), 13, "{text}");
    assert!(count("bt-get-", "send", "\"handshake ") >= 1, "{text}");
    assert!(count("bt-seed-", "recv", "\"handshake ") >= 1, "{text}");
    assert!(count("bt-tracker", "recv", "GET /announce?") >= 2, "{text}");
    assert!(
        count("bt-tracker", "send", "200 OK: interval") >= 2,
        "{text}"
    );
    assert!(count("bt-get-", "recv", "seeds, ") >= 1, "{text}");
    assert!(
        lines.iter().any(|l| l.contains("\"transfer_end\"")
            && l.contains("\"torrent x.bin\"")
            && l.contains("\"size\":200000")),
        "{text}"
    );
    // A block is 16 KiB; a summary line is far shorter.
    assert!(lines.iter().all(|l| l.len() < 1024), "a line carries bytes");

    let (code, mermaid, err) = peershare(dir, &["diagram", "swarm.jsonl", "--mermaid"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("skipped"), "{err}");
    assert!(
        mermaid.contains("sequenceDiagram") && mermaid.contains("bt-get-"),
        "{mermaid}"
    );
}
