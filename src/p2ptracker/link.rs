//! The client's one tracker connection (spec §3.4): connect with backoff and re-announce,
//! `LOCAL_CHUNKS` then a pause, `WHERE_CHUNK` then nothing until its reply, and noticing a
//! tracker that went away while we are idle. The caller's thread is its only writer.

use super::client::Shared;
use super::wire::{self, Reply};
use crate::core::shutdown::Shutdown;
use crate::core::tcp;
use crate::core::trace::{self, Body, Direction, Proto};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Shutdown is checked this often while waiting for a tracker reply.
const REPLY_SLICE: Duration = Duration::from_millis(200);
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(4);

/// The one tracker connection and everything written on it.
pub struct TrackerLink<'a> {
    pub addr: SocketAddr,
    pub pace: Duration,
    pub shared: &'a Shared,
    pub stream: Option<TcpStream>,
}

impl TrackerLink<'_> {
    /// Connects (with backoff, forever) if not connected and re-announces every held chunk.
    /// Returns false only when shutdown fired.
    pub fn ensure_connected(&mut self) -> bool {
        while self.stream.is_none() {
            let mut backoff = BACKOFF_FIRST;
            let mut said = false;
            let stream = loop {
                if self.shared.shutdown.is_triggered() {
                    return false;
                }
                match tcp::connect(self.addr, CONNECT_TIMEOUT) {
                    Ok(s) => break s,
                    Err(e) => {
                        trace::failure(
                            Proto::Tcp,
                            None,
                            Some(self.addr),
                            &format!("connect to tracker: {e}"),
                        );
                        if !said {
                            self.shared
                                .say_err(&format!("waiting for tracker at {}", self.addr));
                            log::debug!("tracker {}: {e}", self.addr);
                            said = true;
                        }
                        if self.shared.shutdown.sleep(backoff) {
                            return false;
                        }
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                    }
                }
            };
            log::info!("connected to tracker at {}", self.addr);
            self.stream = Some(stream);
            let mut held: Vec<u32> = self
                .shared
                .held
                .lock()
                .map(|h| h.keys().copied().collect())
                .unwrap_or_default();
            held.sort_unstable();
            for idx in held {
                if self.announce(idx).is_err() {
                    break; // lost again: the outer loop reconnects
                }
            }
        }
        true
    }

    fn lost(&mut self, why: &io::Error) {
        log::warn!("lost the tracker at {}: {why}", self.addr);
        self.stream = None;
    }

    /// Sends `LOCAL_CHUNKS` in one write, logs it, then pauses.
    pub fn announce(&mut self, idx: u32) -> io::Result<()> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(io::Error::new(io::ErrorKind::NotConnected, "no tracker"));
        };
        let msg = wire::encode_local_chunks(idx, &self.shared.advertise, self.shared.own_port);
        if let Err(e) = stream.write_all(msg.as_bytes()) {
            self.lost(&e);
            return Err(e);
        }
        trace_tcp(stream, Direction::Send, msg.as_bytes());
        let port = self.shared.own_port.to_string();
        self.shared.log.record(&[
            &self.shared.name,
            "LOCAL_CHUNKS",
            &idx.to_string(),
            "localhost",
            &port,
        ]);
        if !self.pace.is_zero() {
            self.shared.shutdown.sleep(self.pace);
        }
        Ok(())
    }

    /// Asks `WHERE_CHUNK` and waits for its reply. `Ok(None)`: no usable answer this round.
    pub fn where_chunk(&mut self, idx: u32) -> io::Result<Option<Reply>> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(io::Error::new(io::ErrorKind::NotConnected, "no tracker"));
        };
        let asked = (|| {
            let question = wire::encode_where_chunk(idx);
            stream.write_all(question.as_bytes())?;
            trace_tcp(stream, Direction::Send, question.as_bytes());
            self.shared
                .log
                .record(&[&self.shared.name, "WHERE_CHUNK", &idx.to_string()]);
            let reply = read_reply(stream, &self.shared.shutdown).inspect_err(|e| {
                if crate::core::timed_out(e) {
                    trace::failure(
                        Proto::Tcp,
                        stream.local_addr().ok(),
                        stream.peer_addr().ok(),
                        &format!("no reply to WHERE_CHUNK,{idx} within 10 s"),
                    );
                }
            })?;
            trace_tcp(stream, Direction::Recv, &reply);
            if reply.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the tracker closed the connection",
                ));
            }
            Ok(reply)
        })();
        match asked {
            Ok(reply) => Ok(wire::parse_reply(&reply, idx)),
            Err(e) => {
                self.lost(&e);
                Err(e)
            }
        }
    }

    /// While idle: notices a tracker that went away, so we reconnect and re-announce.
    pub fn check_alive(&mut self) {
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(1)));
        let mut buf = [0u8; 1024];
        match stream.read(&mut buf) {
            Ok(0) => self.lost(&io::Error::new(io::ErrorKind::UnexpectedEof, "closed")),
            Ok(_) => {}
            Err(e) if crate::core::timed_out(&e) => {}
            Err(e) => self.lost(&e),
        }
    }
}

/// Traces one message on a TCP stream (nothing when tracing is off).
pub fn trace_tcp(stream: &TcpStream, dir: Direction, bytes: &[u8]) {
    if trace::enabled() {
        trace::message(
            dir,
            Proto::Tcp,
            stream.local_addr().ok(),
            stream.peer_addr().ok(),
            Body::Bytes(bytes),
            bytes.len(),
        );
    }
}

/// One read of the tracker's reply (up to [`wire::MAX_REPLY`] bytes, [`REPLY_TIMEOUT`]), waited
/// for in short slices so Ctrl-C is not held up by a tracker that never answers.
fn read_reply(stream: &mut TcpStream, shutdown: &Shutdown) -> io::Result<Vec<u8>> {
    let deadline = Instant::now() + REPLY_TIMEOUT;
    loop {
        match tcp::read_once(stream, wire::MAX_REPLY, REPLY_SLICE) {
            Err(e) if crate::core::timed_out(&e) => {
                if shutdown.is_triggered() {
                    return Err(io::Error::new(io::ErrorKind::Interrupted, "shutting down"));
                }
                if Instant::now() >= deadline {
                    return Err(e);
                }
            }
            other => return other,
        }
    }
}
