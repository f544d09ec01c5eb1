//! Running other people's programs safely: every child in its own process group with its cwd in a
//! fresh temp dir, stdout/stderr tails kept as evidence, every wait bounded by a deadline that
//! `--timeout-scale` stretches, and the whole group ended (TERM, then KILL) when the handle drops,
//! which also happens when Ctrl-C fires the grader's [`Shutdown`] and the waits return.
//!
//! The spec fixes 127.0.0.1:5100 for trackers, so [`wait_port_free`] checks it before each test
//! and names the process that holds it; [`listening_on`] reads `/proc/net/tcp` to see a tracker's
//! listener without connecting to it (a probe connection would be a message to the tracker).

use crate::core::shutdown::Shutdown;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The spec's fixed tracker port.
pub const SPEC_PORT: u16 = 5100;
/// Bytes of each output stream kept per process.
const TAIL_BYTES: usize = 16 * 1024;
/// How often waits look again.
pub const POLL: Duration = Duration::from_millis(100);

/// Deadlines, stretched by `--timeout-scale`.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub scale: f64,
}

impl Timeouts {
    /// `secs` seconds times the scale.
    pub fn secs(&self, secs: f64) -> Duration {
        Duration::from_secs_f64(secs * self.scale)
    }
}

/// A program and its arguments (a student's `python3 -u P2PClient.py`, a `--client-cmd`, or
/// peershare itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    pub program: OsString,
    pub args: Vec<OsString>,
}

impl CommandLine {
    /// Splits a `--tracker-cmd`/`--client-cmd` on whitespace (no shell quoting: wrap anything
    /// fancier in a script).
    pub fn parse(text: &str) -> Option<CommandLine> {
        let mut words = text.split_whitespace().map(OsString::from);
        let program = words.next()?;
        Some(CommandLine {
            program,
            args: words.collect(),
        })
    }

    /// `python3 -u <script>`: unbuffered, so prints and crashes reach us as they happen.
    pub fn python(script: &Path) -> CommandLine {
        CommandLine {
            program: "python3".into(),
            args: vec!["-u".into(), script.as_os_str().to_owned()],
        }
    }

    /// This command with `extra` appended.
    pub fn with<S: Into<OsString> + Clone>(&self, extra: &[S]) -> CommandLine {
        let mut c = self.clone();
        c.args.extend(extra.iter().cloned().map(Into::into));
        c
    }
}

impl fmt::Display for CommandLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.program.to_string_lossy())?;
        for a in &self.args {
            write!(f, " {}", a.to_string_lossy())?;
        }
        Ok(())
    }
}

/// The last [`TAIL_BYTES`] of one output stream, filled by a reader thread, and how many bytes
/// came in all (so a test can look only at what came after a [`Tail::mark`]).
#[derive(Clone, Default)]
pub struct Tail(Arc<Mutex<Kept>>);

#[derive(Default)]
struct Kept {
    bytes: VecDeque<u8>,
    total: usize,
}

impl Tail {
    fn start(
        mut pipe: impl Read + Send + 'static,
        name: String,
    ) -> io::Result<(Tail, JoinHandle<()>)> {
        let tail = Tail::default();
        let sink = tail.0.clone();
        let handle = std::thread::Builder::new().name(name).spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if let Ok(mut k) = sink.lock() {
                            k.bytes.extend(&buf[..n]);
                            k.total += n;
                            let excess = k.bytes.len().saturating_sub(TAIL_BYTES);
                            k.bytes.drain(..excess);
                        }
                    }
                }
            }
        })?;
        Ok((tail, handle))
    }

    /// Everything kept, as text.
    pub fn text(&self) -> String {
        self.since(0)
    }

    /// How many bytes have come so far: pass it to [`Tail::since`] later.
    pub fn mark(&self) -> usize {
        self.0.lock().map(|k| k.total).unwrap_or(0)
    }

    /// What came after `mark`, as text (only what is still kept).
    pub fn since(&self, mark: usize) -> String {
        self.0
            .lock()
            .map(|k| {
                let first = k.total - k.bytes.len();
                let skip = mark.saturating_sub(first).min(k.bytes.len());
                let bytes: Vec<u8> = k.bytes.iter().skip(skip).copied().collect();
                String::from_utf8_lossy(&bytes).into_owned()
            })
            .unwrap_or_default()
    }

    /// Waits up to `timeout` until what came after `mark` satisfies `done`; returns that text
    /// either way, with whether it did.
    pub fn wait_for(
        &self,
        mark: usize,
        timeout: Duration,
        shutdown: &Shutdown,
        mut done: impl FnMut(&str) -> bool,
    ) -> (bool, String) {
        let end = Instant::now() + timeout;
        loop {
            let text = self.since(mark);
            if done(&text) {
                return (true, text);
            }
            if Instant::now() >= end || shutdown.sleep(POLL / 2) {
                return (false, text);
            }
        }
    }

    /// The last `n` non-empty lines.
    pub fn last_lines(&self, n: usize) -> Vec<String> {
        let text = self.text();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(n)..]
            .iter()
            .map(|l| l.chars().take(300).collect())
            .collect()
    }
}

/// A running program in its own process group; dropping it ends the whole group.
pub struct Proc {
    pub label: String,
    pub command: CommandLine,
    child: Child,
    /// The program's stdin, for interactive programs ([`Proc::spawn_interactive`]).
    stdin: Option<ChildStdin>,
    pub stdout: Tail,
    pub stderr: Tail,
    readers: Vec<JoinHandle<()>>,
    pub started: Instant,
    status: Option<ExitStatus>,
    /// The first signal on [`Proc::kill`]: TERM, or INT for a child grader that cleans up.
    stop_signal: rustix::process::Signal,
}

impl Proc {
    /// Starts `command` in `cwd` with stdin closed and both outputs captured.
    pub fn spawn(label: &str, command: &CommandLine, cwd: &Path) -> io::Result<Proc> {
        Proc::start(label, command, cwd, false)
    }

    /// Starts an interactive program: like [`Proc::spawn`], with stdin a pipe that
    /// [`Proc::send_line`] writes to (a person at the prompt).
    pub fn spawn_interactive(label: &str, command: &CommandLine, cwd: &Path) -> io::Result<Proc> {
        Proc::start(label, command, cwd, true)
    }

    /// Types one line at the program's prompt. Fails when stdin is not a pipe or is closed.
    pub fn send_line(&mut self, line: &str) -> io::Result<()> {
        let stdin = self.stdin.as_mut().ok_or_else(|| {
            io::Error::new(io::ErrorKind::BrokenPipe, "the program's stdin is closed")
        })?;
        stdin.write_all(format!("{line}\n").as_bytes())?;
        stdin.flush()
    }

    /// Closes the program's stdin (end of input, as Ctrl-D at a terminal).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    fn start(
        label: &str,
        command: &CommandLine,
        cwd: &Path,
        interactive: bool,
    ) -> io::Result<Proc> {
        let mut child = Command::new(&command.program)
            .args(&command.args)
            .current_dir(cwd)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(if interactive {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()?;
        let mut readers = Vec::new();
        let mut take = |pipe: Option<Box<dyn Read + Send>>, which: &str| -> io::Result<Tail> {
            match pipe {
                Some(p) => {
                    let (tail, h) = Tail::start(p, format!("grade-{which}"))?;
                    readers.push(h);
                    Ok(tail)
                }
                None => Ok(Tail::default()),
            }
        };
        let stdout = take(child.stdout.take().map(|p| Box::new(p) as _), "stdout")?;
        let stderr = take(child.stderr.take().map(|p| Box::new(p) as _), "stderr")?;
        Ok(Proc {
            label: label.to_string(),
            command: command.clone(),
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr,
            readers,
            started: Instant::now(),
            status: None,
            stop_signal: rustix::process::Signal::TERM,
        })
    }

    /// Stop with SIGINT (Ctrl-C) rather than SIGTERM, for programs that clean up on Ctrl-C.
    pub fn interrupt_first(&mut self) {
        self.stop_signal = rustix::process::Signal::INT;
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the program has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Waits up to `timeout` for the program to end by itself.
    pub fn wait_exit(&mut self, timeout: Duration, shutdown: &Shutdown) -> Option<ExitStatus> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(s) = self.exited() {
                return Some(s);
            }
            if Instant::now() >= end || shutdown.sleep(POLL / 2) {
                return None;
            }
        }
    }

    /// Evidence lines: how it ended (if it did) and its last stderr lines.
    pub fn evidence(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        match self.exited() {
            Some(s) => out.push(format!(
                "{} (pid {}) exited after {:.1} s with {}",
                self.label,
                self.pid(),
                self.started.elapsed().as_secs_f64(),
                describe_status(s)
            )),
            None => out.push(format!(
                "{} (pid {}) is still running",
                self.label,
                self.pid()
            )),
        }
        let lines = self.stderr.last_lines(5);
        if !lines.is_empty() {
            out.push(format!("{} last stderr lines:", self.label));
            out.extend(lines.into_iter().map(|l| format!("  | {l}")));
        }
        out
    }

    /// Ends the whole process group: TERM (or INT), up to 1 s (5 s after INT) of grace, then KILL.
    pub fn kill(&mut self) {
        let pgid = rustix::process::Pid::from_raw(self.child.id() as i32);
        if self.exited().is_none() {
            if let Some(p) = pgid {
                let _ = rustix::process::kill_process_group(p, self.stop_signal);
            }
            let grace = if self.stop_signal == rustix::process::Signal::INT {
                5
            } else {
                1
            };
            let end = Instant::now() + Duration::from_secs(grace);
            while self.exited().is_none() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Children the program left behind share its group: end them too, even after it exited.
        if let Some(p) = pgid {
            let _ = rustix::process::kill_process_group(p, rustix::process::Signal::KILL);
        }
        if self.status.is_none() {
            self.status = self.child.wait().ok();
        }
        // A reader still blocked means something outside the group holds the pipe: leave it.
        for h in self.readers.drain(..) {
            let end = Instant::now() + Duration::from_millis(500);
            while !h.is_finished() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(10));
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `exit status 1`, `signal 9`.
pub fn describe_status(s: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(sig)) => format!("signal {sig}"),
        _ => "an unknown status".into(),
    }
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct Workdir {
    pub path: PathBuf,
}

impl Workdir {
    pub fn new(label: &str) -> io::Result<Workdir> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "peershare-grade-{}-{n}-{nanos:x}-{label}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path)?;
        Ok(Workdir { path })
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Whether something listens on TCP `port` in this network namespace (`/proc/net/tcp{,6}`).
pub fn listening_on(port: u16) -> bool {
    let want = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|file| {
        std::fs::read_to_string(file).is_ok_and(|text| {
            text.lines().skip(1).any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3 && f[1].ends_with(&want) && f[3] == "0A"
            })
        })
    })
}

/// Whether a UDP socket is bound to `port` in this network namespace (`/proc/net/udp{,6}`).
pub fn udp_bound(port: u16) -> bool {
    let want = format!(":{port:04X}");
    ["/proc/net/udp", "/proc/net/udp6"].iter().any(|file| {
        std::fs::read_to_string(file).is_ok_and(|text| {
            text.lines().skip(1).any(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|a| a.ends_with(&want))
            })
        })
    })
}

/// Who listens on TCP `port`, as `ss -ltnp` tells it (`python3 pid 1234`), if anyone can tell.
pub fn port_holder(port: u16) -> Option<String> {
    holder(port, "-Hltnp")
}

/// Who holds UDP `port`, as `ss -lunp` tells it.
pub fn udp_port_holder(port: u16) -> Option<String> {
    holder(port, "-Hlunp")
}

fn holder(port: u16, ss_flags: &str) -> Option<String> {
    let out = Command::new("ss")
        .args([ss_flags, &format!("sport = :{port}")])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let users = text.split("users:((").nth(1)?;
    let mut parts = users.split(',');
    let name = parts.next()?.trim_matches('"');
    let pid = parts.find_map(|p| p.strip_prefix("pid="))?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default();
    Some(if cmdline.is_empty() {
        format!("{name} (pid {pid})")
    } else {
        format!("{name} (pid {pid}: {cmdline})")
    })
}

/// Why a port the spec fixes could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortBusy {
    pub port: u16,
    pub holder: Option<String>,
}

impl fmt::Display for PortBusy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.holder {
            Some(h) => write!(f, "port {} on 127.0.0.1 is held by {h}", self.port),
            None => write!(
                f,
                "port {} on 127.0.0.1 is in use (no process could be named)",
                self.port
            ),
        }
    }
}

/// Waits until nothing listens on TCP `port`, up to `timeout`.
pub fn wait_port_free(port: u16, timeout: Duration, shutdown: &Shutdown) -> Result<(), PortBusy> {
    wait_free(port, timeout, shutdown, listening_on, port_holder)
}

/// Waits until no socket holds UDP `port`, up to `timeout`.
pub fn wait_udp_port_free(
    port: u16,
    timeout: Duration,
    shutdown: &Shutdown,
) -> Result<(), PortBusy> {
    wait_free(port, timeout, shutdown, udp_bound, udp_port_holder)
}

fn wait_free(
    port: u16,
    timeout: Duration,
    shutdown: &Shutdown,
    taken: fn(u16) -> bool,
    holder: fn(u16) -> Option<String>,
) -> Result<(), PortBusy> {
    let end = Instant::now() + timeout;
    loop {
        if !taken(port) {
            return Ok(());
        }
        if Instant::now() >= end || shutdown.sleep(POLL) {
            return Err(PortBusy {
                port,
                holder: holder(port),
            });
        }
    }
}

/// Polls `cond` until it holds (true), the deadline passes or shutdown fires (false).
pub fn wait_until(timeout: Duration, shutdown: &Shutdown, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end || shutdown.sleep(POLL) {
            return false;
        }
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for programs that need a number).
pub fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interactive_program_answers_lines_and_tail_marks_split_its_output() {
        let dir = Workdir::new("runner").unwrap();
        let cat = CommandLine::parse("cat").unwrap();
        let mut p = Proc::spawn_interactive("cat", &cat, &dir.path).unwrap();
        let shutdown = Shutdown::new();
        p.send_line("first").unwrap();
        let (ok, _) = p
            .stdout
            .wait_for(0, Duration::from_secs(5), &shutdown, |t| {
                t.contains("first")
            });
        assert!(ok);
        let mark = p.stdout.mark();
        p.send_line("second").unwrap();
        let (ok, after) = p
            .stdout
            .wait_for(mark, Duration::from_secs(5), &shutdown, |t| {
                t.contains("second")
            });
        assert!(ok);
        assert_eq!(after, "second\n");
        p.close_stdin();
        assert!(p.wait_exit(Duration::from_secs(5), &shutdown).is_some());
        assert!(p.send_line("third").is_err());
    }

    #[test]
    fn dropping_a_proc_ends_its_whole_process_group() {
        let dir = Workdir::new("runner").unwrap();
        // The shell starts a grandchild in the same group and reports its pid.
        let cmd = CommandLine::parse("sh -c")
            .unwrap()
            .with(&["sleep 30 & echo $!; wait"]);
        let p = Proc::spawn("sh", &cmd, &dir.path).unwrap();
        let shutdown = Shutdown::new();
        assert!(wait_until(Duration::from_secs(5), &shutdown, || !p
            .stdout
            .text()
            .trim()
            .is_empty()));
        let grandchild: u32 = p.stdout.text().trim().parse().unwrap();
        let pid = p.pid();
        drop(p);
        for pid in [pid, grandchild] {
            let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| !s.contains(") Z "));
            assert!(!alive, "pid {pid} survived");
        }
    }

    #[test]
    fn evidence_names_the_exit_status_and_last_stderr_lines() {
        let dir = Workdir::new("runner").unwrap();
        let cmd = CommandLine::parse("sh -c")
            .unwrap()
            .with(&["echo boom >&2; exit 3"]);
        let mut p = Proc::spawn("P2PClient c1", &cmd, &dir.path).unwrap();
        assert!(p
            .wait_exit(Duration::from_secs(5), &Shutdown::new())
            .is_some());
        // The reader may trail the exit by a moment.
        assert!(wait_until(Duration::from_secs(2), &Shutdown::new(), || p
            .stderr
            .text()
            .contains("boom")));
        let ev = p.evidence().join("\n");
        assert!(ev.contains("exit status 3"), "{ev}");
        assert!(ev.contains("| boom"), "{ev}");
    }

    #[test]
    fn listening_on_sees_a_listener_and_its_absence() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(listening_on(port));
        drop(l);
        assert!(!listening_on(port));
    }

    #[test]
    fn timeouts_scale() {
        assert_eq!(Timeouts { scale: 2.0 }.secs(1.5), Duration::from_secs(3));
    }
}
