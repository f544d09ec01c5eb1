//! A raw UDP client for probing a submission's server: one socket on 127.0.0.1 talking to one
//! server address, with deadline-bounded receives.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

pub struct Raw {
    socket: UdpSocket,
    server: SocketAddr,
}

impl Raw {
    pub fn new(server: SocketAddr) -> io::Result<Raw> {
        Raw::bound(SocketAddr::from(([127, 0, 0, 1], 0)), server)
    }

    /// A probe on a given local address: the grader playing a server whose port the spec fixes.
    pub fn bound(local: SocketAddr, server: SocketAddr) -> io::Result<Raw> {
        Ok(Raw {
            socket: UdpSocket::bind(local)?,
            server,
        })
    }

    pub fn send(&self, bytes: &[u8]) {
        let _ = self.socket.send_to(bytes, self.server);
    }

    /// The next datagram within `timeout`, as text.
    pub fn recv(&self, timeout: Duration) -> Option<String> {
        self.recv_from(timeout)
            .map(|(d, _)| String::from_utf8_lossy(&d).into_owned())
    }

    /// The next datagram within `timeout`, as bytes, with its sender.
    pub fn recv_from(&self, timeout: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        let end = Instant::now() + timeout;
        let mut buf = vec![0u8; 65_536];
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let _ = self.socket.set_read_timeout(Some(left));
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) => return Some((buf[..n].to_vec(), from)),
                Err(e) if crate::core::timed_out(&e) => return None,
                Err(_) => continue,
            }
        }
    }

    /// Sends `bytes` to `to` rather than to the server.
    pub fn send_to(&self, bytes: &[u8], to: SocketAddr) {
        let _ = self.socket.send_to(bytes, to);
    }

    /// Where this socket is bound (what the server sees as the sender).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Sends `request` and returns the first reply within `timeout`.
    pub fn ask(&self, request: &str, timeout: Duration) -> Option<String> {
        while self.recv(Duration::from_millis(1)).is_some() {}
        self.send(request.as_bytes());
        self.recv(timeout)
    }

    /// Datagrams until one satisfies `want` or `timeout` passes; all of them, and whether it did.
    pub fn recv_until(
        &self,
        timeout: Duration,
        want: impl Fn(&str) -> bool,
    ) -> (bool, Vec<String>) {
        let end = Instant::now() + timeout;
        let mut seen = Vec::new();
        while let Some(d) = self.recv(end.saturating_duration_since(Instant::now())) {
            let done = want(&d);
            seen.push(d);
            if done {
                return (true, seen);
            }
        }
        (false, seen)
    }
}
