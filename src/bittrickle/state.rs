//! The server's state and rules: who may log in, who is active, who published what.
//!
//! Plain data, no sockets and no clock: every call takes `now`, so the liveness rule ("inactive
//! after strictly more than the timeout since the last login or heartbeat") is tested without
//! sleeping. [`ServerState::handle`] turns one parsed request into what the server should do.
//!
//! Retries are idempotent (the client resends a request whose reply was lost, 1 s apart, 3 sends
//! in all), decided here:
//! - a `login` from the UDP address that holds the user's session gets the welcome again (and
//!   refreshes it) instead of `User is already active` — the original turned a lost welcome into
//!   a failed login; another address still gets `already active`;
//! - a `pub` or `unp` identical to the last request from the same address within
//!   [`REPLAY_WINDOW`] gets the first reply again without being applied twice, so a retried
//!   `pub` says `published successfully`, not `already published by you`. A user who types the
//!   same `pub` twice within 3 s sees `published successfully` twice (harmless: same state).

use crate::bittrickle::credentials::{Check, Credentials};
use crate::bittrickle::wire::{Reply, Request};
use crate::core::heartbeat::LivenessTable;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long a `pub`/`unp` reply is kept for a retry of the same datagram: the spec's client
/// sends 3 times 1 s apart, so its last resend leaves within 2 s of the first.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(3);

/// At most this many addresses' last replies are remembered (a flood of fake sources cannot
/// grow the table without bound; the oldest half is dropped when full).
const MAX_REMEMBERED: usize = 10_000;

/// Where an active user can be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The UDP address the login came from (named in the `inactive` log line).
    pub udp: SocketAddr,
    /// The TCP port the user announced; its IP is the UDP source's.
    pub tcp_port: u16,
}

/// What handling one request produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Reply(Reply),
    /// A heartbeat from an active user refreshed it (logged; no reply).
    HeartbeatAccepted,
    /// A heartbeat from a user who is not logged in (unknown, expired, or logged in before the
    /// server restarted): no reply. `first` is true for the first such heartbeat since the user
    /// last logged in, so the server names the cause once rather than every 2 s.
    NotLoggedIn {
        first: bool,
    },
}

/// Everything the server knows.
pub struct ServerState {
    credentials: Credentials,
    active: LivenessTable<String, Session>,
    /// file → publishers, both in first-publication order.
    published: Vec<(String, Vec<String>)>,
    /// The last replied request per source address, for answering its retries.
    last_reply: HashMap<SocketAddr, Remembered>,
    /// Users whose heartbeat was refused since their last login (the cause is logged once).
    strangers: HashSet<String>,
}

/// A reply kept for a retry of the same request.
struct Remembered {
    request: Request,
    reply: Reply,
    at: Instant,
}

impl ServerState {
    pub fn new(credentials: Credentials, inactivity: Duration) -> ServerState {
        ServerState {
            credentials,
            active: LivenessTable::new(inactivity),
            published: Vec::new(),
            last_reply: HashMap::new(),
            strangers: HashSet::new(),
        }
    }

    /// Removes users silent for too long; returns them (with their sessions) in login order.
    pub fn expire(&mut self, now: Instant) -> Vec<(String, Session)> {
        self.last_reply
            .retain(|_, r| now.saturating_duration_since(r.at) <= REPLAY_WINDOW);
        self.active.expire(now)
    }

    /// Applies `request` from `from`. Callers run [`ServerState::expire`] first.
    pub fn handle(&mut self, request: Request, from: SocketAddr, now: Instant) -> Outcome {
        if matches!(request, Request::Heartbeat { .. }) {
            return self.apply(request, from, now);
        }
        if let Some(r) = self.last_reply.get(&from) {
            let retry = matches!(request, Request::Pub { .. } | Request::Unp { .. })
                && r.request == request
                && now.saturating_duration_since(r.at) <= REPLAY_WINDOW;
            if retry {
                return Outcome::Reply(r.reply.clone());
            }
        }
        let outcome = self.apply(request.clone(), from, now);
        if let Outcome::Reply(reply) = &outcome {
            if self.last_reply.len() >= MAX_REMEMBERED {
                self.forget_oldest_half();
            }
            let reply = reply.clone();
            self.last_reply.insert(
                from,
                Remembered {
                    request,
                    reply,
                    at: now,
                },
            );
        }
        outcome
    }

    fn forget_oldest_half(&mut self) {
        let mut times: Vec<Instant> = self.last_reply.values().map(|r| r.at).collect();
        times.sort_unstable();
        let cut = times[times.len() / 2];
        self.last_reply.retain(|_, r| r.at > cut);
    }

    /// `login`: user, then password, then activity; the session's own address may log in again.
    fn login(
        &mut self,
        user: String,
        password: &str,
        tcp_port: u16,
        from: SocketAddr,
        now: Instant,
    ) -> Reply {
        match self.credentials.check(&user, password) {
            Check::UnknownUser => Reply::UnknownUser,
            Check::WrongPassword => Reply::WrongPassword,
            Check::Valid
                if self.active.is_alive(&user, now)
                    && self.active.get(&user).is_some_and(|s| s.udp != from) =>
            {
                Reply::AlreadyActive
            }
            Check::Valid
                if self.active.is_alive(&user, now)
                    && self
                        .active
                        .get(&user)
                        .is_some_and(|s| s.tcp_port == tcp_port) =>
            {
                // A retry from the session's own address: refreshed in place (login order kept).
                self.active.touch(&user, now);
                Reply::Welcome
            }
            Check::Valid => {
                self.strangers.remove(&user);
                self.active.insert(
                    user,
                    Session {
                        udp: from,
                        tcp_port,
                    },
                    now,
                );
                Reply::Welcome
            }
        }
    }

    /// The rules for one request, retries aside.
    fn apply(&mut self, request: Request, from: SocketAddr, now: Instant) -> Outcome {
        let reply = match request {
            Request::Login {
                user,
                password,
                tcp_port,
            } => self.login(user, &password, tcp_port, from, now),
            Request::Heartbeat { user } => {
                return if self.active.touch(&user, now) {
                    Outcome::HeartbeatAccepted
                } else {
                    if self.strangers.len() >= MAX_REMEMBERED {
                        self.strangers.clear();
                    }
                    Outcome::NotLoggedIn {
                        first: self.strangers.insert(user),
                    }
                };
            }
            Request::Lap { user } => Reply::ActivePeers(
                self.active
                    .iter()
                    .filter(|(name, _)| **name != user && self.active.is_alive(name, now))
                    .map(|(name, _)| name.clone())
                    .collect(),
            ),
            Request::Pub { user, file } => self.publish(user, file),
            Request::Unp { user, file } => self.unpublish(&user, file),
            Request::Lpf { user } => Reply::PublishedFiles(
                self.published
                    .iter()
                    .filter(|(_, by)| by.contains(&user))
                    .map(|(f, _)| f.clone())
                    .collect(),
            ),
            Request::Sch { user, substring } => Reply::FoundFiles(
                self.published
                    .iter()
                    .filter(|(f, by)| {
                        f.contains(substring.as_str())
                            && !by.contains(&user)
                            && by.iter().any(|p| self.active.is_alive(p, now))
                    })
                    .map(|(f, _)| f.clone())
                    .collect(),
            ),
            Request::Get { user, file } => self.locate(&user, file, now),
        };
        Outcome::Reply(reply)
    }

    fn publish(&mut self, user: String, file: String) -> Reply {
        match self.published.iter_mut().find(|(f, _)| *f == file) {
            Some((_, by)) if by.contains(&user) => Reply::AlreadyPublished(file),
            Some((_, by)) => {
                by.push(user);
                Reply::Published(file)
            }
            None => {
                self.published.push((file.clone(), vec![user]));
                Reply::Published(file)
            }
        }
    }

    fn unpublish(&mut self, user: &str, file: String) -> Reply {
        let Some(i) = self.published.iter().position(|(f, _)| *f == file) else {
            return Reply::UnpublishFailed(file);
        };
        let by = &mut self.published[i].1;
        let Some(j) = by.iter().position(|u| u == user) else {
            return Reply::UnpublishFailed(file);
        };
        by.remove(j);
        if by.is_empty() {
            self.published.remove(i);
        }
        Reply::Unpublished(file)
    }

    /// `get`: the earliest-publishing active user's TCP address.
    fn locate(&self, user: &str, file: String, now: Instant) -> Reply {
        let Some((_, by)) = self.published.iter().find(|(f, _)| *f == file) else {
            return Reply::FileNotFound(file);
        };
        if by.iter().any(|u| u == user) {
            return Reply::GetOwnFile(file);
        }
        let holder = by
            .iter()
            .filter(|u| self.active.is_alive(u, now))
            .find_map(|u| self.active.get(u));
        match holder {
            Some(s) => Reply::PeerAddress {
                ip: s.udp.ip().to_string(),
                port: s.tcp_port,
            },
            None => Reply::NoActivePublisher(file),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(3);

    fn state() -> ServerState {
        let creds = [("hans", "falcon"), ("yoda", "wise"), ("leia", "blaster")]
            .iter()
            .map(|(u, p)| (u.to_string(), p.to_string()))
            .collect();
        ServerState::new(creds, T)
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn req(text: &str) -> Request {
        crate::bittrickle::wire::parse(text.as_bytes()).unwrap()
    }

    fn reply(s: &mut ServerState, text: &str, now: Instant) -> Reply {
        reply_from(s, text, now, 9)
    }

    /// A request from another client socket (not a retry of the last one from port 9).
    fn reply_from(s: &mut ServerState, text: &str, now: Instant, port: u16) -> Reply {
        s.expire(now);
        match s.handle(req(text), addr(port), now) {
            Outcome::Reply(r) => r,
            other => panic!("{text}: {other:?}"),
        }
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn login_checks_user_then_password_then_activity() {
        let (mut s, t0) = (state(), Instant::now());
        assert_eq!(reply(&mut s, "login luke x 1", t0), Reply::UnknownUser);
        assert_eq!(reply(&mut s, "login hans x 1", t0), Reply::WrongPassword);
        assert_eq!(reply(&mut s, "login hans falcon 1", t0), Reply::Welcome);
        assert_eq!(reply(&mut s, "login hans x 1", t0), Reply::WrongPassword);
        let other = |s: &mut ServerState, at| reply_from(s, "login hans falcon 1", at, 10);
        assert_eq!(other(&mut s, t0), Reply::AlreadyActive);
        // Strictly more than 3 s later the user is gone and may log in again.
        assert_eq!(other(&mut s, t0 + T), Reply::AlreadyActive);
        let later = t0 + T + Duration::from_millis(1);
        assert_eq!(reply(&mut s, "login hans falcon 1", later), Reply::Welcome);
    }

    #[test]
    fn a_repeated_login_from_the_session_address_is_welcomed_again_and_keeps_login_order() {
        let (mut s, t0) = (state(), Instant::now());
        s.handle(req("login yoda wise 1"), addr(8), t0);
        assert_eq!(reply(&mut s, "login hans falcon 1", t0), Reply::Welcome);
        let later = t0 + T / 2;
        assert_eq!(reply(&mut s, "login hans falcon 1", later), Reply::Welcome);
        assert_eq!(
            reply(&mut s, "lap luke", later),
            Reply::ActivePeers(names(&["yoda", "hans"]))
        );
        // The retry refreshed the session: alive past the first login's deadline.
        let expired: Vec<String> = s.expire(t0 + T + T / 4).into_iter().map(|e| e.0).collect();
        assert_eq!(expired, names(&["yoda"]));
        assert_eq!(
            s.handle(req("login hans falcon 1"), addr(8), later),
            Outcome::Reply(Reply::AlreadyActive)
        );
    }

    #[test]
    fn a_retried_pub_or_unp_gets_the_first_reply_and_is_applied_once() {
        let (mut s, t0) = (state(), Instant::now());
        let f = || "a.txt".to_string();
        assert_eq!(reply(&mut s, "pub hans a.txt", t0), Reply::Published(f()));
        assert_eq!(
            reply(&mut s, "pub hans a.txt", t0 + T / 3),
            Reply::Published(f())
        );
        assert_eq!(
            reply(&mut s, "unp hans a.txt", t0 + T / 3),
            Reply::Unpublished(f())
        );
        assert_eq!(
            reply(&mut s, "unp hans a.txt", t0 + T / 2),
            Reply::Unpublished(f())
        );
        assert_eq!(
            reply(&mut s, "lpf hans", t0 + T / 2),
            Reply::PublishedFiles(vec![])
        );
        // Outside the window, or after another request, a repeat is a new request.
        reply(&mut s, "pub hans a.txt", t0 + T);
        let late = t0 + T + REPLAY_WINDOW + Duration::from_millis(1);
        assert_eq!(
            reply(&mut s, "pub hans a.txt", late),
            Reply::AlreadyPublished(f())
        );
        reply(&mut s, "lap hans", late);
        assert_eq!(
            reply(&mut s, "pub hans a.txt", late),
            Reply::AlreadyPublished(f())
        );
    }

    #[test]
    fn heartbeats_keep_users_active_and_expired_ones_are_ignored() {
        let (mut s, t0) = (state(), Instant::now());
        reply(&mut s, "login hans falcon 1", t0);
        assert_eq!(
            s.handle(req("heartbeat hans"), addr(9), t0 + 2 * T / 3),
            Outcome::HeartbeatAccepted
        );
        assert!(s.expire(t0 + T + T / 3).is_empty());
        let expired = s.expire(t0 + 2 * T);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].0, "hans");
        assert_eq!(expired[0].1.udp, addr(9));
        let refused = |first| Outcome::NotLoggedIn { first };
        assert_eq!(
            s.handle(req("heartbeat hans"), addr(9), t0 + 2 * T),
            refused(true)
        );
        assert_eq!(
            s.handle(req("heartbeat hans"), addr(9), t0 + 2 * T),
            refused(false)
        );
        assert_eq!(
            s.handle(req("heartbeat nobody"), addr(9), t0),
            refused(true)
        );
        // After a new login the next refusal is named again.
        reply(&mut s, "login hans falcon 1", t0 + 2 * T);
        s.expire(t0 + 4 * T);
        assert_eq!(
            s.handle(req("heartbeat hans"), addr(9), t0 + 4 * T),
            refused(true)
        );
    }

    #[test]
    fn lap_lists_others_in_login_order() {
        let (mut s, t0) = (state(), Instant::now());
        assert_eq!(reply(&mut s, "lap hans", t0), Reply::ActivePeers(vec![]));
        for u in ["leia blaster", "hans falcon", "yoda wise"] {
            reply(&mut s, &format!("login {u} 1"), t0);
        }
        assert_eq!(
            reply(&mut s, "lap hans", t0),
            Reply::ActivePeers(names(&["leia", "yoda"]))
        );
        assert_eq!(
            reply(&mut s, "lap luke", t0),
            Reply::ActivePeers(names(&["leia", "hans", "yoda"]))
        );
    }

    #[test]
    fn pub_unp_and_lpf_follow_the_rules() {
        let (mut s, t0) = (state(), Instant::now());
        let f = || "a.txt".to_string();
        assert_eq!(reply(&mut s, "pub hans a.txt", t0), Reply::Published(f()));
        assert_eq!(
            reply_from(&mut s, "pub hans a.txt", t0, 10),
            Reply::AlreadyPublished(f())
        );
        reply(&mut s, "pub hans b.txt", t0);
        reply(&mut s, "pub yoda a.txt", t0);
        assert_eq!(
            reply(&mut s, "lpf hans", t0),
            Reply::PublishedFiles(names(&["a.txt", "b.txt"]))
        );
        assert_eq!(reply(&mut s, "unp hans a.txt", t0), Reply::Unpublished(f()));
        assert_eq!(
            reply_from(&mut s, "unp hans a.txt", t0, 10),
            Reply::UnpublishFailed(f())
        );
        assert_eq!(
            reply(&mut s, "unp hans zzz", t0),
            Reply::UnpublishFailed("zzz".into())
        );
        // a.txt's entry survives (yoda), b.txt is removed and re-created at the end.
        reply(&mut s, "unp hans b.txt", t0);
        reply(&mut s, "pub hans b.txt", t0);
        reply(&mut s, "pub hans a.txt", t0);
        assert_eq!(
            reply(&mut s, "lpf hans", t0),
            Reply::PublishedFiles(names(&["a.txt", "b.txt"]))
        );
        assert_eq!(reply(&mut s, "lpf leia", t0), Reply::PublishedFiles(vec![]));
    }

    #[test]
    fn sch_is_case_sensitive_and_skips_own_and_inactive() {
        let (mut s, t0) = (state(), Instant::now());
        reply(&mut s, "login yoda wise 1", t0);
        for f in ["alpha.txt", "Beta.txt", "gamma.bin"] {
            reply(&mut s, &format!("pub yoda {f}"), t0);
        }
        reply(&mut s, "pub hans own.txt", t0);
        reply(&mut s, "pub leia idle.txt", t0);
        reply(&mut s, "login hans falcon 1", t0);
        assert_eq!(
            reply(&mut s, "sch hans .txt", t0),
            Reply::FoundFiles(names(&["alpha.txt", "Beta.txt"]))
        );
        assert_eq!(
            reply(&mut s, "sch hans beta", t0),
            Reply::FoundFiles(vec![])
        );
        assert_eq!(
            reply(&mut s, "sch leia own", t0),
            Reply::FoundFiles(names(&["own.txt"]))
        );
        let later = t0 + 2 * T;
        assert_eq!(
            reply(&mut s, "sch hans a", later),
            Reply::FoundFiles(vec![])
        );
    }

    #[test]
    fn get_picks_the_earliest_active_publisher() {
        let (mut s, t0) = (state(), Instant::now());
        let f = || "a.txt".to_string();
        assert_eq!(
            reply(&mut s, "get hans a.txt", t0),
            Reply::FileNotFound(f())
        );
        reply(&mut s, "pub leia a.txt", t0);
        reply(&mut s, "pub yoda a.txt", t0);
        assert_eq!(
            reply(&mut s, "get hans a.txt", t0),
            Reply::NoActivePublisher(f())
        );
        s.expire(t0);
        s.handle(req("login leia blaster 5000"), addr(8), t0);
        s.handle(req("login yoda wise 6000"), addr(7), t0 + T / 2);
        let at = t0 + T / 2;
        assert_eq!(
            reply(&mut s, "get hans a.txt", at),
            Reply::PeerAddress {
                ip: "127.0.0.1".into(),
                port: 5000
            }
        );
        assert_eq!(reply(&mut s, "get yoda a.txt", at), Reply::GetOwnFile(f()));
        // Once leia (the earliest publisher) expires, yoda is the one to ask.
        let later = t0 + T + T / 4;
        assert_eq!(
            reply(&mut s, "get hans a.txt", later),
            Reply::PeerAddress {
                ip: "127.0.0.1".into(),
                port: 6000
            }
        );
    }
}
