//! The BitTrickle server: one thread owns the UDP socket and all state.
//!
//! Each datagram is parsed ([`wire::parse`]); malformed ones are dropped with a debug log and no
//! reply. Before every datagram, and on a tick when the socket is quiet, users silent for longer
//! than the inactivity timeout are expired, so `Client {u} inactive ❌` lines appear on time.
//! Log lines go to stdout in the original's shape:
//! `{YYYY-mm-dd HH:MM:SS.mmm}: ('{ip}', {port}) {event}`.

use crate::bittrickle::credentials::Credentials;
use crate::bittrickle::state::{Outcome, ServerState};
use crate::bittrickle::wire::{self, Reply, Request};
use crate::core::console::Printer;
use crate::core::shutdown::Shutdown;
use crate::core::trace::{self, Body, Direction, Proto};
use crate::core::udp_rpc::{receive_loop, Datagram, Received};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// The spec's inactivity timeout: inactive after strictly more than 3 s without a heartbeat.
pub const INACTIVITY: Duration = Duration::from_secs(3);

/// How often a quiet server checks for expired users.
const TICK: Duration = Duration::from_secs(1);

/// What the server needs besides its socket.
pub struct ServerConfig {
    pub credentials: Credentials,
    /// [`INACTIVITY`] by default; tests shorten it.
    pub inactivity: Duration,
}

/// Prints the banner, then serves on `socket` until `shutdown` fires.
pub fn run(config: ServerConfig, socket: UdpSocket, shutdown: &Shutdown) -> io::Result<()> {
    let local = socket.local_addr()?;
    let out = Printer::plain();
    out.line(&format!(
        "⚡ Bitrickle Server started! Ready to receive on {}:{} ⚡",
        local.ip(),
        local.port()
    ));
    let tick = TICK.min(config.inactivity).max(Duration::from_millis(10));
    let mut state = ServerState::new(config.credentials, config.inactivity);
    receive_loop(&socket, shutdown, tick, |received| {
        let now = Instant::now();
        for (user, session) in state.expire(now) {
            out.line(&log_line(
                session.udp,
                &format!("Client {user} inactive ❌"),
            ));
        }
        if let Received::Datagram(d) = received {
            if trace::enabled() {
                let size = d.bytes.len();
                trace::message(
                    Direction::Recv,
                    Proto::Udp,
                    Some(local),
                    Some(d.from),
                    Body::Text(&wire::traced_text(&d.bytes)),
                    size,
                );
            }
            serve(&mut state, &socket, &out, d, now);
        }
    })
}

fn serve(state: &mut ServerState, socket: &UdpSocket, out: &Printer, d: Datagram, now: Instant) {
    let request = match wire::parse(&d.bytes) {
        Ok(r) => r,
        Err(e) => {
            log::debug!("ignored a datagram from {}: {e}", d.from);
            return;
        }
    };
    let user = request.user().to_string();
    let command = command_name(&request);
    match state.handle(request, d.from, now) {
        Outcome::NotLoggedIn { first } => {
            if first {
                log::warn!(
                    "heartbeat from {user} at {} ignored: {user} is not logged in (unknown user, \
                     silent for longer than the inactivity timeout, or logged in before this \
                     server started); the client must log in again",
                    d.from
                );
            }
        }
        Outcome::HeartbeatAccepted => {
            out.line(&log_line(d.from, &format!("Received HBT from {user}")));
        }
        Outcome::Reply(reply) => {
            out.line(&log_line(
                d.from,
                &format!("Received {command} from {user}"),
            ));
            send_reply(socket, &wire::encode_reply(&reply), d.from);
            out.line(&log_line(d.from, &sent_event(&reply, command, &user)));
        }
    }
}

/// Sends one reply datagram (the one place the server sends, so the one trace hook).
fn send_reply(socket: &UdpSocket, text: &str, to: SocketAddr) {
    if trace::enabled() {
        let local = socket.local_addr().ok();
        trace::message(
            Direction::Send,
            Proto::Udp,
            local,
            Some(to),
            Body::Text(text),
            text.len(),
        );
    }
    if let Err(e) = socket.send_to(text.as_bytes(), to) {
        log::warn!("could not reply to {to}: {e}");
    }
}

/// The upper-case name the log uses for a request (`AUTH` for `login`).
fn command_name(request: &Request) -> &'static str {
    match request {
        Request::Login { .. } => "AUTH",
        Request::Heartbeat { .. } => "HBT",
        Request::Lap { .. } => "LAP",
        Request::Pub { .. } => "PUB",
        Request::Unp { .. } => "UNP",
        Request::Lpf { .. } => "LPF",
        Request::Sch { .. } => "SCH",
        Request::Get { .. } => "GET",
    }
}

/// The `Sent …` event logged after a reply.
fn sent_event(reply: &Reply, command: &str, user: &str) -> String {
    let ok = match reply {
        Reply::Welcome => return format!("Sent OK - LOGIN to {user} ✅"),
        Reply::UnknownUser => return format!("Sent ERR - LOGIN to {user} ❌ - Unknown username."),
        Reply::WrongPassword => {
            return format!("Sent ERR - LOGIN to {user} ❌ - Incorrect password.")
        }
        Reply::AlreadyActive => {
            return format!("Sent ERR - LOGIN to {user} ❌ - User is already active.")
        }
        Reply::UnpublishFailed(_)
        | Reply::GetOwnFile(_)
        | Reply::NoActivePublisher(_)
        | Reply::FileNotFound(_) => false,
        _ => true,
    };
    if ok {
        format!("Sent {command} - OK to {user} ✅")
    } else {
        format!("Sent {command} - ERR to {user} ❌")
    }
}

/// `{local time with ms}: ('{ip}', {port}) {event}` — the original's Python tuple form.
fn log_line(addr: SocketAddr, event: &str) -> String {
    let now = jiff::Zoned::now();
    format!(
        "{}.{:03}: ('{}', {}) {event}",
        now.strftime("%Y-%m-%d %H:%M:%S"),
        now.millisecond(),
        addr.ip(),
        addr.port()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_have_the_original_shape() {
        let line = log_line(
            SocketAddr::from(([127, 0, 0, 1], 5000)),
            "Received LAP from hans",
        );
        let (stamp, rest) = line.split_once(": ").unwrap();
        assert_eq!(rest, "('127.0.0.1', 5000) Received LAP from hans");
        assert_eq!(stamp.len(), "2024-11-20 13:45:01.123".len());
        assert_eq!(&stamp[4..5], "-");
        assert_eq!(&stamp[10..11], " ");
        assert_eq!(&stamp[19..20], ".");
    }

    #[test]
    fn sent_events_say_ok_or_err_as_the_original() {
        assert_eq!(
            sent_event(&Reply::Welcome, "AUTH", "u"),
            "Sent OK - LOGIN to u ✅"
        );
        assert_eq!(
            sent_event(&Reply::WrongPassword, "AUTH", "u"),
            "Sent ERR - LOGIN to u ❌ - Incorrect password."
        );
        assert_eq!(
            sent_event(&Reply::FoundFiles(vec![]), "SCH", "u"),
            "Sent SCH - OK to u ✅"
        );
        assert_eq!(
            sent_event(&Reply::UnpublishFailed("f".into()), "UNP", "u"),
            "Sent UNP - ERR to u ❌"
        );
        assert_eq!(
            sent_event(&Reply::FileNotFound("f".into()), "GET", "u"),
            "Sent GET - ERR to u ❌"
        );
        assert_eq!(
            sent_event(&Reply::AlreadyPublished("f".into()), "PUB", "u"),
            "Sent PUB - OK to u ✅"
        );
    }
}
