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
