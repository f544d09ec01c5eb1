//! Test support shared by every integration test: spawn `peershare` with piped stdio, type into
//! stdin, wait for an output line with a deadline, pick free ports, and kill children on drop.
//! Every server in a test binds 127.0.0.1 port 0 (or a port picked free here), never a fixed port.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_peershare");

/// A TCP port that was free a moment ago (for CLIs that need a number before binding).
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A UDP port that was free a moment ago.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Output collected from one pipe by a reader thread, and whether the pipe has ended.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>, Arc<std::sync::atomic::AtomicBool>);

impl Captured {
    fn spawn(mut pipe: impl Read + Send + 'static) -> Captured {
        let c = Captured::default();
        let sink = c.0.clone();
        let ended = c.1.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sink.lock().unwrap().extend_from_slice(&buf[..n]),
                }
            }
            ended.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        c
    }

    /// Whether the reader has seen the end of the pipe (so `text` is complete).
    pub fn ended(&self) -> bool {
        self.1.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// A running `peershare` process, killed when dropped.
pub struct Proc {
    pub child: Child,
    stdin: Option<ChildStdin>,
    pub stdout: Captured,
    pub stderr: Captured,
}

impl Proc {
    /// Starts `peershare args...` in `cwd` with piped stdio and `RUST_LOG=info`.
    pub fn start(cwd: &Path, args: &[&str]) -> Proc {
        Self::start_env(cwd, args, &[])
    }

    pub fn start_env(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(cwd)
            .env("RUST_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn peershare");
        let stdout = Captured::spawn(child.stdout.take().unwrap());
        let stderr = Captured::spawn(child.stderr.take().unwrap());
        let stdin = child.stdin.take();
        Proc {
            child,
            stdin,
            stdout,
            stderr,
        }
    }

    /// Types `line` and a newline into stdin.
    pub fn type_line(&mut self, line: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = stdin.write_all(format!("{line}\n").as_bytes());
            let _ = stdin.flush();
        }
    }

    /// Closes stdin (EOF).
    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// Waits until stdout contains `needle`; panics with both streams after `secs`.
    pub fn wait_stdout(&self, needle: &str, secs: u64) -> String {
        self.wait_in(&self.stdout, needle, secs)
    }

    /// Waits until stderr contains `needle`.
    pub fn wait_stderr(&self, needle: &str, secs: u64) -> String {
        self.wait_in(&self.stderr, needle, secs)
    }

    fn wait_in(&self, which: &Captured, needle: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let text = which.text();
            if text.contains(needle) {
                return text;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {needle:?}\n--- stdout:\n{}\n--- stderr:\n{}",
                    self.stdout.text(),
                    self.stderr.text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to exit within `secs`; returns its exit code.
    pub fn wait_exit(&mut self, secs: u64) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                // The readers may still hold output the process wrote just before it ended.
                let drained = Instant::now() + Duration::from_secs(2);
                while !(self.stdout.ended() && self.stderr.ended()) && Instant::now() < drained {
                    std::thread::sleep(Duration::from_millis(5));
                }
                return status.code();
            }
            if Instant::now() > deadline {
                panic!(
                    "process did not exit\n--- stdout:\n{}\n--- stderr:\n{}",
                    self.stdout.text(),
                    self.stderr.text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGINT (Ctrl-C).
    pub fn interrupt(&self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads lines from `r` until one contains `needle` or `secs` pass.
pub fn read_until_line(r: impl Read, needle: &str, secs: u64) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    for line in BufReader::new(r).lines() {
        let line = line.ok()?;
        if line.contains(needle) {
            return Some(line);
        }
        if Instant::now() > deadline {
            return None;
        }
    }
    None
}

/// Polls `cond` every 20 ms until it holds; panics with `what` after `secs`.
pub fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Deterministic pseudo-random bytes (xorshift), so test data needs no crate.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A one-client UDP proxy on 127.0.0.1 that forwards both ways and drops the server's replies
/// whose 1-based numbers are in `drop_replies` (a lost reply, reproducibly). Stops when dropped.
pub struct LossyUdpProxy {
    pub addr: std::net::SocketAddr,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LossyUdpProxy {
    pub fn start(server: std::net::SocketAddr, drop_replies: &[usize]) -> LossyUdpProxy {
        use std::sync::atomic::{AtomicBool, Ordering};
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let back = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = front.local_addr().unwrap();
        for s in [&front, &back] {
            s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, drops) = (stop.clone(), drop_replies.to_vec());
        let thread = std::thread::spawn(move || {
            let (mut client, mut replies, mut buf) = (None, 0usize, vec![0u8; 65_536]);
            while !flag.load(Ordering::SeqCst) {
                if let Ok((n, from)) = front.recv_from(&mut buf) {
                    client = Some(from);
                    let _ = back.send_to(&buf[..n], server);
                }
                if let Ok((n, _)) = back.recv_from(&mut buf) {
                    replies += 1;
                    if let (Some(c), false) = (client, drops.contains(&replies)) {
                        let _ = front.send_to(&buf[..n], c);
                    }
                }
            }
        });
        LossyUdpProxy {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for LossyUdpProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
pub mod grading;
pub mod netns;
