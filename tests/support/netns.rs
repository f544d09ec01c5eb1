//! Several hosts on one machine: network namespaces joined by a bridge (issue 17 §1).
//!
//! [`Net::new_or_skip`] builds N hosts: one namespace per host plus one for the bridge, a veth
//! pair per host (`eth0` inside the host, `v<i>` on the bridge), addresses 10.77.0.<i+1>/24 that
//! exist only inside those namespaces, and `lo` up. Faults are added inside a host's namespace
//! only: random loss with nftables (`numgen random mod 100 < P drop` on inbound UDP and TCP;
//! this kernel has no `netem`, so there is no delay emulation), a `tbf` rate limit on a host's
//! egress, link down/up, and a size-limited tmpfs for disk-full tests.
//!
//! Names are `ps<pid>n<counter>…`, so concurrent test binaries never collide. Dropping the [`Net`]
//! kills every process still inside its namespaces (listed by `ip netns pids`, so nothing outside
//! is ever touched), unmounts its tmpfs mounts and deletes the namespaces, which takes the veths,
//! nft tables and qdiscs with them; this runs during a panic's unwinding too.
//!
//! When namespaces cannot be made (not root, no `ip`), the constructor prints one
//! `skipped: <test>: <why>` line and returns `None`; tests using it end in `_or_skip`.

use super::{Captured, Proc, BIN};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The environment variable that tells a re-run test binary which role to play (see
/// [`Net::role`]).
pub const ROLE: &str = "PEERSHARE_NETNS_ROLE";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// One emulated host.
pub struct Host {
    /// The namespace's name (pass to `ip netns exec`).
    pub ns: String,
    /// Its address on the shared bridge.
    pub ip: Ipv4Addr,
}

/// A set of hosts on one bridge; everything it made goes away on drop.
pub struct Net {
    pub hosts: Vec<Host>,
    bridge: String,
    mounts: Vec<PathBuf>,
}

/// Runs a command to completion, quietly; `Err` carries its stderr.
fn run(args: &[&str]) -> Result<Output, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs `nft -f -` with `ruleset` as its input inside `ns`.
fn nft(ns: &str, ruleset: &str) -> Result<(), String> {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("nft: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(ruleset.as_bytes())
            .map_err(|e| format!("nft: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Net {
    /// Builds `n` hosts, or prints `skipped: <test>: <why>` and returns `None`.
    pub fn new_or_skip(test: &str, n: usize) -> Option<Net> {
        match Net::new(n) {
            Ok(net) => Some(net),
            Err(why) => {
                println!("skipped: {test}: network namespaces unavailable ({why})");
                None
            }
        }
    }

    fn new(n: usize) -> Result<Net, String> {
        let tag = format!(
            "ps{}n{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let bridge = format!("{tag}br");
        run(&["ip", "netns", "add", &bridge])?;
        let mut net = Net {
            hosts: Vec::new(),
            bridge: bridge.clone(),
            mounts: Vec::new(),
        };
        run(&["ip", "-n", &bridge, "link", "add", "br0", "type", "bridge"])?;
        run(&["ip", "-n", &bridge, "link", "set", "br0", "up"])?;
        for i in 0..n {
            let ns = format!("{tag}h{i}");
            run(&["ip", "netns", "add", &ns])?;
            // Pushed before configuring so a failure half-way still removes it.
            let ip = Ipv4Addr::new(10, 77, 0, (i + 1) as u8);
            net.hosts.push(Host { ns: ns.clone(), ip });
            let v = format!("v{i}");
            run(&[
                "ip", "-n", &bridge, "link", "add", &v, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ])?;
            run(&[
                "ip", "-n", &bridge, "link", "set", &v, "master", "br0", "up",
            ])?;
            run(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{ip}/24"),
                "dev",
                "eth0",
            ])?;
            run(&["ip", "-n", &ns, "link", "set", "eth0", "up"])?;
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    /// Host `i`'s address.
    pub fn ip(&self, i: usize) -> Ipv4Addr {
        self.hosts[i].ip
    }

    /// Starts `peershare args…` on host `i` (stdio piped, `RUST_LOG=info`), killed when the
    /// returned [`Proc`] or this `Net` is dropped.
    pub fn spawn(&self, i: usize, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.hosts[i].ns, BIN])
            .args(args)
            .current_dir(cwd)
            .env("RUST_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        // `ip netns exec` execs the command, so the child's PID is peershare's own.
        let mut child = cmd.spawn().expect("spawn ip netns exec peershare");
        let stdout = Captured::spawn(child.stdout.take().expect("piped stdout"));
        let stderr = Captured::spawn(child.stderr.take().expect("piped stderr"));
        let stdin = child.stdin.take();
        Proc {
            child,
            stdin,
            stdout,
            stderr,
        }
    }

    /// Runs `cmd` to completion on host `i`.
    pub fn exec(&self, i: usize, cmd: &[&str]) -> Result<Output, String> {
        let mut args = vec!["ip", "netns", "exec", &self.hosts[i].ns];
        args.extend_from_slice(cmd);
        run(&args)
    }

    /// Drops `percent` % of inbound UDP and TCP packets arriving on host `i`'s link, at random
    /// (every direction of every conversation when set on every host).
    pub fn loss(&self, i: usize, percent: u32) -> Result<(), String> {
        self.drop_rule(i, percent, "")
    }

    /// Like [`Net::loss`], only for packets to the given destination ports.
    pub fn loss_to_ports(&self, i: usize, percent: u32, ports: &[u16]) -> Result<(), String> {
        let set: Vec<String> = ports.iter().map(u16::to_string).collect();
        self.drop_rule(i, percent, &format!("th dport {{ {} }}", set.join(", ")))
    }

    fn drop_rule(&self, i: usize, percent: u32, matcher: &str) -> Result<(), String> {
        let ruleset = format!(
            "table inet peershare_test {{\n  chain input {{\n    \
             type filter hook input priority 0; policy accept;\n    \
             iifname \"eth0\" meta l4proto {{ tcp, udp }} {matcher} numgen random mod 100 < {percent} drop\n  \
             }}\n}}\n"
        );
        nft(&self.hosts[i].ns, &ruleset)
    }

    /// Limits host `i`'s egress to `rate` (tc syntax, e.g. `"8mbit"`) with a token bucket.
    pub fn rate_limit(&self, i: usize, rate: &str) -> Result<(), String> {
        self.exec(
            i,
            &[
                "tc", "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate", rate, "burst",
                "64kb", "latency", "400ms",
            ],
        )
        .map(|_| ())
    }

    /// Takes host `i`'s link down (`false`) or brings it back up (`true`).
    pub fn link(&self, i: usize, up: bool) -> Result<(), String> {
        let state = if up { "up" } else { "down" };
        run(&["ip", "-n", &self.hosts[i].ns, "link", "set", "eth0", state]).map(|_| ())
    }

    /// Mounts a tmpfs of `size` (mount syntax, e.g. `"1m"`) on `dir`; unmounted on drop.
    pub fn tmpfs(&mut self, dir: &Path, size: &str) -> Result<(), String> {
        let dir_text = dir.to_string_lossy().into_owned();
        run(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size}"),
            "tmpfs",
            &dir_text,
        ])?;
        self.mounts.push(dir.to_path_buf());
        Ok(())
    }

    /// Re-runs this test binary inside host `i` as `role` (its `in_namespace_role` test reads
    /// [`ROLE`]): traffic generators and checkers that must sit on a host. Stdin and stdout are
    /// piped, so a role can say `netns-ready` and wait for a line before going on.
    pub fn role(&self, i: usize, role: &str) -> Role {
        let exe = std::env::current_exe().expect("current test binary");
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.hosts[i].ns])
            .arg(exe)
            .args([
                "--exact",
                "in_namespace_role",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROLE, role)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("re-run the test binary in a namespace");
        let out = Captured::spawn(child.stdout.take().expect("piped stdout"));
        let err = Captured::spawn(child.stderr.take().expect("piped stderr"));
        let stdin = child.stdin.take();
        Role {
            child,
            stdin,
            out,
            err,
            what: role.to_string(),
        }
    }

    /// The PIDs inside host `i`'s namespace.
    pub fn pids(&self, i: usize) -> Vec<u32> {
        pids_in(&self.hosts[i].ns)
    }
}

/// A role process started by [`Net::role`]; killed when dropped.
pub struct Role {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Captured,
    err: Captured,
    what: String,
}

impl Role {
    /// Waits until the role has printed `netns-ready`.
    pub fn wait_ready(&self, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !self.out.text().contains("netns-ready") {
            assert!(
                Instant::now() < deadline && !self.out.ended(),
                "role {:?} never got ready:\n{}\n{}",
                self.what,
                self.out.text(),
                self.err.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Types `line` into the role's stdin.
    pub fn send_line(&mut self, line: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = stdin.write_all(format!("{line}\n").as_bytes());
            let _ = stdin.flush();
        }
    }

    /// Whether the role has ended.
    pub fn is_finished(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits (at most `secs`) for the role to end; returns its `netns-result:` line.
    pub fn result(mut self, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !self.out.ended() {
            assert!(
                Instant::now() < deadline,
                "role {:?} did not end:\n{}",
                self.what,
                self.out.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.wait();
        let text = self.out.text();
        text.lines()
            .find_map(|l| l.split("netns-result: ").nth(1))
            .unwrap_or_else(|| {
                panic!(
                    "no result from role {:?}:\n{text}\n{}",
                    self.what,
                    self.err.text()
                )
            })
            .to_string()
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pids_in(ns: &str) -> Vec<u32> {
    run(&["ip", "netns", "pids", ns])
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

impl Drop for Net {
    fn drop(&mut self) {
        for host in &self.hosts {
            for pid in pids_in(&host.ns) {
                let _ = run(&["kill", "-9", &pid.to_string()]);
            }
        }
        for dir in self.mounts.drain(..) {
            let d = dir.to_string_lossy().into_owned();
            if run(&["umount", &d]).is_err() {
                let _ = run(&["umount", "-l", &d]);
            }
        }
        for host in &self.hosts {
            let _ = run(&["ip", "netns", "del", &host.ns]);
        }
        let _ = run(&["ip", "netns", "del", &self.bridge]);
    }
}
