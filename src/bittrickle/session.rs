//! Noticing that the server forgot this client (it restarted, or the client was silent past the
//! timeout) and logging in again with the credentials typed at start-up.
//!
//! The protocol never tells a client it is unknown: heartbeats get no reply, and every other
//! request is answered for anyone. So every [`RECHECK`] the heartbeat thread sends the client's
//! own `login` from a fresh UDP socket (a new address). The answer tells the two cases apart
//! without changing anything on a server that still knows us:
//! - `User is already active` — the server still holds our session: nothing to do;
//! - `Welcome` — it had forgotten us, and this login is our new session (the TCP port is ours,
//!   and heartbeats refresh a user whatever address they come from). The client then publishes
//!   again every file it had published, from the same socket, and tells the user one line;
//! - `Unknown username` / `Incorrect password` — the server's credentials changed: the user is
//!   told to leave and log in again;
//! - no answer — the server is down: nothing now, the next check tries again.
//!
//! Re-logging in by itself (rather than asking) fits this protocol: a login carries nothing but the
//! credentials the user already typed, and a client that is not logged in is useless to its peers
//! (its files are not offered). The cost is one `login` datagram every [`RECHECK`], which the
//! server logs as `Received AUTH` / `Sent ERR - LOGIN … already active` (documented).

use crate::bittrickle::wire::{self, Request, WELCOME};
use crate::core::console::Printer;
use crate::core::udp_rpc::Retry;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the client checks that the server still knows it.
pub const RECHECK: Duration = Duration::from_secs(15);

/// Files this client published and has not unpublished, in publication order (shared between
/// the shell, which updates it from replies, and the check, which publishes them again).
#[derive(Clone, Default)]
pub struct Published(Arc<Mutex<Vec<String>>>);

impl Published {
    /// Records the server's reply to `pub`/`unp` of `file`.
    pub fn note_reply(&self, file: &str, reply: &str) {
        let Ok(mut files) = self.0.lock() else { return };
        let published = reply == wire::encode_reply(&wire::Reply::Published(file.into()))
            || reply == wire::encode_reply(&wire::Reply::AlreadyPublished(file.into()));
        let unpublished = reply == wire::encode_reply(&wire::Reply::Unpublished(file.into()));
        if published && !files.iter().any(|f| f == file) {
            files.push(file.to_string());
        } else if unpublished {
            files.retain(|f| f != file);
        }
    }

    fn list(&self) -> Vec<String> {
        self.0.lock().map(|f| f.clone()).unwrap_or_default()
    }
}

/// Everything a check needs; runs on the heartbeat thread.
pub struct SessionCheck {
    pub server: SocketAddr,
    /// The local IP the client's sockets are bound to (the probe socket uses it too).
    pub bind: std::net::IpAddr,
    pub user: String,
    pub password: String,
    pub tcp_port: u16,
    pub retry: Retry,
    pub published: Published,
    pub out: Printer,
}

impl SessionCheck {
    /// One check; problems with the probe socket itself are only logged.
    pub fn run(&self) {
        let Ok(socket) = UdpSocket::bind(SocketAddr::new(self.bind, 0)) else {
            log::debug!("session check: no socket");
            return;
        };
        let login = Request::Login {
            user: self.user.clone(),
            password: self.password.clone(),
            tcp_port: self.tcp_port,
        };
        let Some(reply) = ask(&socket, self.server, &wire::encode(&login), self.retry) else {
            return; // the server is down or busy: the next check tries again
        };
        if reply == wire::encode_reply(&wire::Reply::AlreadyActive) {
            return;
        }
        if reply != WELCOME {
            self.out.line(&format!(
                "The server no longer accepts {}: {reply} Type xit and start the client again.",
                self.user
            ));
            return;
        }
        let files = self.published.list();
        for file in &files {
            let request = Request::Pub {
                user: self.user.clone(),
                file: file.clone(),
            };
            ask(&socket, self.server, &wire::encode(&request), self.retry);
        }
        let republished = match files.len() {
            0 => String::new(),
            n => format!(" and published your {n} file(s) again"),
        };
        self.out.line(&format!(
            "The server had forgotten you (it restarted?): logged in again as {}{republished}.",
            self.user
        ));
    }
}

/// Sends `bytes` and waits for a reply from `server`, resending per `retry`.
fn ask(socket: &UdpSocket, server: SocketAddr, bytes: &[u8], retry: Retry) -> Option<String> {
    socket.set_read_timeout(Some(retry.timeout)).ok()?;
    let mut buf = vec![0u8; 65_536];
    for _ in 0..retry.sends.max(1) {
        socket.send_to(bytes, server).ok()?;
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            if from == server {
                return Some(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_files_follow_the_servers_replies() {
        let p = Published::default();
        p.note_reply("a", "File 'a' published successfully.");
        p.note_reply("b", "File 'b' is already published by you.");
        p.note_reply("c", "Error: server not responding");
        p.note_reply("a", "File 'a' published successfully.");
        assert_eq!(p.list(), ["a", "b"]);
        p.note_reply("a", "File 'a' unpublished successfully.");
        assert_eq!(p.list(), ["b"]);
    }
}
