//! The server's state and rules, with no sockets and no clocks of its own.
//!
//! The server tells datagrams apart by source address (the protocol has no type field), keeps
//! one record per address, and the ordered table of `(file, owner)` keys. Every input — a
//! datagram or a timer tick — goes through [`ServerState::handle`], which returns the
//! [`Action`]s to carry out (datagrams to send, lines to print, warnings). The
//! server's receive loop owns this struct, so there are no locks, and registration
//! retransmits are per-client deadlines checked on ticks: nobody waits for anybody's ACK.

use super::wire::{self, TableRow};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Timing of the registration table retransmit (the spec's 500 ms, 3 sends).
#[derive(Debug, Clone, Copy)]
pub struct AckRetry {
    pub timeout: Duration,
    pub sends: u32,
}

impl Default for AckRetry {
    fn default() -> Self {
        AckRetry {
            timeout: Duration::from_millis(500),
            sends: 3,
        }
    }
}

/// Something the I/O side must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Send {
        to: SocketAddr,
        bytes: Vec<u8>,
    },
    /// A line for the server's stdout.
    Print(String),
    /// A warning for stderr.
    Warn(String),
    /// A debug note for stderr.
    Debug(String),
}

/// What the server's receive loop feeds [`ServerState::handle`].
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    Datagram {
        from: SocketAddr,
        bytes: &'a [u8],
    },
    /// Time passed with nothing received (retransmit deadlines are checked on every input).
    Tick,
}

/// A table retransmit waiting for the client's `ACK`.
#[derive(Debug, Clone, Copy)]
struct Pending {
    sends: u32,
    due: Instant,
}

#[derive(Debug, Clone)]
struct Client {
    name: String,
    tcp_port: u16,
    active: bool,
    /// Offered names in offer order (an ordered set).
    files: Vec<String>,
    pending: Option<Pending>,
}

/// One table key `"{file},{owner}"`, owned by the client at `owner`.
#[derive(Debug, Clone)]
struct Entry {
    file: String,
    owner: SocketAddr,
    /// Length of this entry in the encoded table.
    encoded_len: usize,
}

/// Why a datagram from an address with no active registration was dropped, naming the real
/// cause: after a server restart, registered clients keep sending offers and DEREGs, which used
/// to be reported as malformed registrations.
fn unregistered(from: SocketAddr, bytes: &[u8], e: &wire::WireError) -> String {
    let what = if bytes == wire::DEREG {
        Some("a DEREG")
    } else if bytes == wire::ACK || bytes == wire::ACK_OFFER || bytes == wire::ACK_DEREG {
        Some("an ACK")
    } else if wire::parse_offer(bytes).is_ok() {
        Some("an offer")
    } else {
        None
    };
    match what {
        Some(what) => format!(
            "ignored {what} from {from}, which is not registered (was the server restarted? \
             the client registers again when its next offer goes unanswered)"
        ),
        None => format!("dropped a datagram from {from}: {e}"),
    }
}

/// Everything the server knows.
#[derive(Debug, Default)]
pub struct ServerState {
    retry: AckRetry,
    clients: Vec<(SocketAddr, Client)>,
    table: Vec<Entry>,
    /// Whether the table is past what original clients can read (warned once per crossing).
    oversized: bool,
}

impl ServerState {
    pub fn new(retry: AckRetry) -> ServerState {
        ServerState {
            retry,
            ..ServerState::default()
        }
    }

    fn client(&self, addr: SocketAddr) -> Option<&Client> {
        self.clients
            .iter()
            .find(|(a, _)| *a == addr)
            .map(|(_, c)| c)
    }

    fn client_mut(&mut self, addr: SocketAddr) -> Option<&mut Client> {
        self.clients
            .iter_mut()
            .find(|(a, _)| *a == addr)
            .map(|(_, c)| c)
    }

    /// The table rows in key order.
    pub fn rows(&self) -> Vec<TableRow> {
        self.table
            .iter()
            .filter_map(|e| {
                self.client(e.owner).map(|c| TableRow {
                    file: e.file.clone(),
                    owner: c.name.clone(),
                    ip: e.owner.ip().to_string(),
                    tcp_port: c.tcp_port,
                })
            })
            .collect()
    }

    /// The table as sent on the wire.
    pub fn encoded_table(&self) -> Vec<u8> {
        wire::encode_table(&self.rows())
    }

    fn table_len(&self) -> usize {
        wire::table_len(self.table.iter().map(|e| e.encoded_len))
    }

    /// Handles one input at time `now`: the datagram's actions, then any table retransmit due.
    pub fn handle(&mut self, input: Input<'_>, now: Instant) -> Vec<Action> {
        let mut actions = match input {
            Input::Datagram { from, bytes } => self.datagram(from, bytes, now),
            Input::Tick => Vec::new(),
        };
        if self.next_due().is_some_and(|due| due <= now) {
            actions.extend(self.tick(now));
        }
        actions
    }

    /// Handles one datagram from `from` at time `now`.
    pub fn datagram(&mut self, from: SocketAddr, bytes: &[u8], now: Instant) -> Vec<Action> {
        let active = self.client(from).is_some_and(|c| c.active);
        if !active {
            if bytes == wire::DEREG && self.client(from).is_some() {
                return vec![Action::Send {
                    to: from,
                    bytes: wire::ACK_DEREG.to_vec(),
                }];
            }
            return self.register(from, bytes, now);
        }
        // Any datagram from a client ends its table retransmits (the original did the same).
        if let Some(c) = self.client_mut(from) {
            c.pending = None;
        }
        if bytes == wire::DEREG {
            return self.deregister(from);
        }
        if bytes == wire::ACK || bytes == wire::ACK_OFFER || bytes == wire::ACK_DEREG {
            return vec![Action::Debug(format!(
                "ignored {} from {from}",
                String::from_utf8_lossy(bytes)
            ))];
        }
        if let Ok(r) = wire::parse_registration(bytes) {
            if self.client(from).is_some_and(|c| c.name == r.name) {
                return self.welcome(from, now);
            }
        }
        self.offer(from, bytes)
    }

    fn register(&mut self, from: SocketAddr, bytes: &[u8], now: Instant) -> Vec<Action> {
        let r = match wire::parse_registration(bytes) {
            Ok(r) => r,
            Err(e) => return vec![Action::Warn(unregistered(from, bytes, &e))],
        };
        if self
            .clients
            .iter()
            .any(|(_, c)| c.active && c.name == r.name)
        {
            return vec![Action::Send {
                to: from,
                bytes: wire::rejection(&r.name).into_bytes(),
            }];
        }
        let client = Client {
            name: r.name,
            tcp_port: r.tcp_port,
            active: true,
            files: Vec::new(),
            pending: None,
        };
        match self.client_mut(from) {
            Some(c) => *c = client,
            None => self.clients.push((from, client)),
        }
        self.welcome(from, now)
    }

    /// Welcome, table, and (re)start the retransmit timer.
    fn welcome(&mut self, from: SocketAddr, now: Instant) -> Vec<Action> {
        let table = self.encoded_table();
        let due = now + self.retry.timeout;
        if let Some(c) = self.client_mut(from) {
            c.pending = Some(Pending { sends: 1, due });
        }
        vec![
            Action::Send {
                to: from,
                bytes: wire::WELCOME.as_bytes().to_vec(),
            },
            Action::Send {
                to: from,
                bytes: table,
            },
        ]
    }

    fn offer(&mut self, from: SocketAddr, bytes: &[u8]) -> Vec<Action> {
        let names = match wire::parse_offer(bytes) {
            Ok(n) => n,
            Err(e) => return vec![Action::Warn(format!("ignored an offer from {from}: {e}"))],
        };
        let mut actions = vec![Action::Print(
            ">>> [Offer Message Received By Server]".into(),
        )];
        let Some((name, tcp_port)) = self.client(from).map(|c| (c.name.clone(), c.tcp_port)) else {
            return actions;
        };
        let mut len = self.table_len();
        for item in names {
            let file = match item {
                Ok(f) => f,
                Err(why) => {
                    actions.push(Action::Warn(format!(
                        "skipped an offered name from {name}: {why}"
                    )));
                    continue;
                }
            };
            if self.client(from).is_some_and(|c| c.files.contains(&file)) {
                continue;
            }
            let encoded_len = wire::encode_entry(&TableRow {
                file: file.clone(),
                owner: name.clone(),
                ip: from.ip().to_string(),
                tcp_port,
            })
            .len();
            let grown = len + encoded_len + if self.table.is_empty() { 0 } else { 2 };
            if grown > wire::MAX_TABLE_BYTES {
                actions.push(Action::Warn(format!(
                    "skipped {file:?} from {name}: the table would not fit in one datagram"
                )));
                continue;
            }
            len = grown;
            if let Some(c) = self.client_mut(from) {
                c.files.push(file.clone());
            }
            self.table.push(Entry {
                file,
                owner: from,
                encoded_len,
            });
        }
        actions.push(Action::Send {
            to: from,
            bytes: wire::ACK_OFFER.to_vec(),
        });
        self.broadcast(&mut actions);
        actions
    }

    fn deregister(&mut self, from: SocketAddr) -> Vec<Action> {
        if let Some(c) = self.client_mut(from) {
            c.active = false;
            c.files.clear();
        }
        self.table.retain(|e| e.owner != from);
        let mut actions = vec![
            Action::Print(format!(
                ">>> [Deregistration Request for ('{}', {}) Received By Server.]",
                from.ip(),
                from.port()
            )),
            Action::Send {
                to: from,
                bytes: wire::ACK_DEREG.to_vec(),
            },
        ];
        self.broadcast(&mut actions);
        actions
    }

    /// The current table to every active client.
    fn broadcast(&mut self, actions: &mut Vec<Action>) {
        let table = self.encoded_table();
        let big = table.len() > wire::ORIGINAL_RECV_BYTES;
        if big && !self.oversized {
            actions.push(Action::Warn(format!(
                "the table is {} bytes; original clients read only {} bytes per datagram",
                table.len(),
                wire::ORIGINAL_RECV_BYTES
            )));
        }
        self.oversized = big;
        for (addr, c) in &self.clients {
            if c.active {
                actions.push(Action::Send {
                    to: *addr,
                    bytes: table.clone(),
                });
            }
        }
    }

    /// Resends the current table to clients whose ACK is overdue; gives up after the last send.
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        let table = self.encoded_table();
        let retry = self.retry;
        let mut actions = Vec::new();
        for (addr, c) in self.clients.iter_mut() {
            let Some(p) = c.pending else { continue };
            if !c.active || now < p.due {
                continue;
            }
            if p.sends >= retry.sends {
                c.pending = None;
                actions.push(Action::Debug(format!(
                    "no ACK from {} at {addr} after {} table sends; keeping it registered",
                    c.name, p.sends
                )));
                continue;
            }
            c.pending = Some(Pending {
                sends: p.sends + 1,
                due: now + retry.timeout,
            });
            actions.push(Action::Send {
                to: *addr,
                bytes: table.clone(),
            });
        }
        actions
    }

    /// The earliest retransmit deadline (lets the loop size its tick).
    pub fn next_due(&self) -> Option<Instant> {
        self.clients
            .iter()
            .filter_map(|(_, c)| c.pending.map(|p| p.due))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn sends_to(actions: &[Action], to: SocketAddr) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send { to: t, bytes } if *t == to => {
                    Some(String::from_utf8_lossy(bytes).into_owned())
                }
                _ => None,
            })
            .collect()
    }

    fn registered(names: &[(&str, u16)]) -> (ServerState, Instant) {
        let now = Instant::now();
        let mut s = ServerState::new(AckRetry::default());
        for (name, port) in names {
            s.datagram(addr(*port), format!("{name},{}", port + 1).as_bytes(), now);
            s.datagram(addr(*port), b"ACK", now);
        }
        (s, now)
    }

    #[test]
    fn registration_gets_welcome_and_table_and_duplicates_are_rejected() {
        let now = Instant::now();
        let mut s = ServerState::new(AckRetry::default());
        let a = s.datagram(addr(1), b"alice,2", now);
        assert_eq!(sends_to(&a, addr(1)), vec![wire::WELCOME, "{}"]);
        let r = s.datagram(addr(3), b"alice,4", now);
        assert_eq!(
            sends_to(&r, addr(3)),
            vec!["Client alice already registered. Registration rejected."]
        );
        assert!(matches!(
            s.datagram(addr(5), b"nocomma", now)[0],
            Action::Warn(_)
        ));
        assert_eq!(s.clients.iter().filter(|(_, c)| c.active).count(), 1);
    }

    #[test]
    fn offers_and_deregs_from_unknown_clients_are_logged_as_such() {
        let now = Instant::now();
        let mut s = ServerState::new(AckRetry::default());
        for (bytes, what) in [
            (&br#"["a.txt"]"#[..], "ignored an offer from"),
            (b"DEREG", "ignored a DEREG from"),
            (b"nocomma", "dropped a datagram from"),
        ] {
            match &s.datagram(addr(9), bytes, now)[..] {
                [Action::Warn(w)] => assert!(w.contains(what), "{w}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn handle_runs_the_datagram_then_the_due_retransmits() {
        let now = Instant::now();
        let mut s = ServerState::new(AckRetry::default());
        let a = s.handle(
            Input::Datagram {
                from: addr(1),
                bytes: b"alice,2",
            },
            now,
        );
        assert_eq!(sends_to(&a, addr(1)), vec![wire::WELCOME, "{}"]);
        assert!(s.handle(Input::Tick, now).is_empty());
        let later = now + Duration::from_millis(500);
        assert_eq!(sends_to(&s.handle(Input::Tick, later), addr(1)), vec!["{}"]);
    }

    #[test]
    fn table_is_resent_until_three_sends_then_dropped_and_ack_stops_it() {
        let now = Instant::now();
        let mut s = ServerState::new(AckRetry::default());
        s.datagram(addr(1), b"alice,2", now);
        let ms = Duration::from_millis;
        assert!(s.tick(now + ms(100)).is_empty());
        assert_eq!(sends_to(&s.tick(now + ms(500)), addr(1)), vec!["{}"]);
        assert_eq!(sends_to(&s.tick(now + ms(1000)), addr(1)), vec!["{}"]);
        assert!(sends_to(&s.tick(now + ms(1500)), addr(1)).is_empty());
        assert!(s.next_due().is_none());
        s.datagram(addr(3), b"bob,4", now);
        s.datagram(addr(3), b"ACK", now);
        assert!(s.tick(now + ms(600)).is_empty());
    }

    #[test]
    fn offers_keep_insertion_order_ignore_duplicates_and_broadcast() {
        let (mut s, now) = registered(&[("alice", 10), ("bob", 20)]);
        let a = s.datagram(addr(10), br#"["z.txt", "a.txt"]"#, now);
        assert_eq!(
            a[0],
            Action::Print(">>> [Offer Message Received By Server]".into())
        );
        assert_eq!(sends_to(&a, addr(10))[0], "ACK_OFFER");
        let b = s.datagram(addr(20), br#"["m.txt", "z.txt"]"#, now);
        s.datagram(addr(10), br#"["z.txt", "b", "", "c,d", 5]"#, now);
        let table = r#"{"z.txt,alice": ["127.0.0.1", 11], "a.txt,alice": ["127.0.0.1", 11], "m.txt,bob": ["127.0.0.1", 21], "z.txt,bob": ["127.0.0.1", 21], "b,alice": ["127.0.0.1", 11]}"#;
        assert_eq!(String::from_utf8(s.encoded_table()).unwrap(), table);
        assert_eq!(sends_to(&b, addr(10)).len(), 1);
        assert_eq!(
            sends_to(&b, addr(20)),
            vec!["ACK_OFFER".to_string(), sends_to(&b, addr(10))[0].clone()]
        );
        assert!(matches!(
            s.datagram(addr(10), b"not json", now)[0],
            Action::Warn(_)
        ));
    }

    #[test]
    fn dereg_removes_keys_acks_broadcasts_and_frees_the_name() {
        let (mut s, now) = registered(&[("alice", 10), ("bob", 20)]);
        s.datagram(addr(10), br#"["a"]"#, now);
        s.datagram(addr(20), br#"["b"]"#, now);
        let d = s.datagram(addr(10), b"DEREG", now);
        assert_eq!(
            d[0],
            Action::Print(
                ">>> [Deregistration Request for ('127.0.0.1', 10) Received By Server.]".into()
            )
        );
        assert_eq!(sends_to(&d, addr(10)), vec!["ACK_DEREG"]);
        assert_eq!(
            sends_to(&d, addr(20)),
            vec![r#"{"b,bob": ["127.0.0.1", 21]}"#]
        );
        assert_eq!(
            sends_to(&s.datagram(addr(10), b"DEREG", now), addr(10)),
            vec!["ACK_DEREG"]
        );
        let again = s.datagram(addr(30), b"alice,31", now);
        assert_eq!(sends_to(&again, addr(30))[0], wire::WELCOME);
        // The offline address registers anew.
        let back = s.datagram(addr(10), b"carol,11", now);
        assert_eq!(sends_to(&back, addr(10))[0], wire::WELCOME);
    }

    #[test]
    fn repeated_registration_resends_welcome_and_late_acks_are_ignored() {
        let (mut s, now) = registered(&[("alice", 10)]);
        let r = s.datagram(addr(10), b"alice,11", now);
        assert_eq!(sends_to(&r, addr(10)), vec![wire::WELCOME, "{}"]);
        let late = s.datagram(addr(10), b"ACK", now);
        assert!(sends_to(&late, addr(10)).is_empty());
        let late = s.datagram(addr(10), b"ACK", now);
        assert!(matches!(late[0], Action::Debug(_)));
        assert_eq!(s.encoded_table(), b"{}");
    }

    #[test]
    fn offered_names_that_would_overflow_a_datagram_are_skipped() {
        let (mut s, now) = registered(&[("alice", 10)]);
        let names: Vec<String> = (0..2000)
            .map(|i| format!("file-number-{i:05}.bin"))
            .collect();
        let a = s.datagram(addr(10), &wire::encode_offer(&names), now);
        assert!(s.encoded_table().len() <= wire::MAX_TABLE_BYTES);
        assert!(a
            .iter()
            .any(|x| matches!(x, Action::Warn(w) if w.contains("original clients"))));
        assert!(a
            .iter()
            .any(|x| matches!(x, Action::Warn(w) if w.contains("one datagram"))));
    }
}
