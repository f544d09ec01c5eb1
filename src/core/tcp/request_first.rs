//! Reading a connection's request *before* it takes an upload worker.
//!
//! With a plain pool, each of the 5 upload workers waits up to the request deadline for a
//! request line: 20 connections that send nothing kept a good request waiting 12–15 s (issue 14
//! item 3). Here the accept thread also reads requests: it `poll(2)`s the listener and every
//! connection still owing its request (through rustix's safe `poll`, so no thread per waiting
//! connection and no busy sweep), reads one request from each connection that becomes readable,
//! and only then hands `(stream, peer, request)` to the pool. A connection that sends nothing
//! within the deadline is handed over with an empty request (the systems print their refusal
//! for it, as before); when [`RequestFirst::max_waiting`] connections are already waiting, the
//! oldest is closed to make room (warned once each time the bound is reached).

use crate::core::pool::WorkerPool;
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How [`super::TcpService::start_request_first`] reads requests.
#[derive(Debug, Clone, Copy)]
pub struct RequestFirst {
    /// Upload workers (the systems use `pool::UPLOAD_WORKERS`, 5).
    pub workers: usize,
    /// Most bytes read as the request (one read, as the originals' single `recv(N)`).
    pub max_request: usize,
    /// How long a connection may take to send its request.
    pub deadline: Duration,
    /// Most connections waiting for their request at once.
    pub max_waiting: usize,
}

/// The longest a `poll` sleeps, so a stop request is seen even if its wake-up connection is lost.
const POLL_CAP: Duration = Duration::from_millis(250);

/// A connection accepted but whose request has not arrived yet.
struct Waiting {
    stream: TcpStream,
    peer: SocketAddr,
    until: Instant,
}

/// The accept-and-read loop; returns when `stop` is set (the pool is dropped by the caller).
pub(super) fn run<H>(
    listener: &TcpListener,
    config: RequestFirst,
    stop: &AtomicBool,
    pool: &WorkerPool,
    handle: &Arc<H>,
) where
    H: Fn(TcpStream, SocketAddr, Vec<u8>) + Send + Sync + 'static,
{
    if let Err(e) = listener.set_nonblocking(true) {
        log::warn!("cannot make the listener nonblocking: {e}");
        return;
    }
    let mut waiting: Vec<Waiting> = Vec::new();
    let mut full_warned = false;
    while !stop.load(Ordering::SeqCst) {
        let ready = match wait_ready(listener, &waiting) {
            Ok(r) => r,
            Err(e) => {
                log::warn!("poll failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        // Readable or expired connections leave the waiting set, newest index first.
        let now = Instant::now();
        for i in (0..waiting.len()).rev() {
            if ready.conns.contains(&i) || waiting[i].until <= now {
                let w = waiting.swap_remove(i);
                let request = read_request(&w, config.max_request, now);
                let h = handle.clone();
                if pool.execute(move || h(w.stream, w.peer, request)).is_err() {
                    return;
                }
            }
        }
        if ready.listener && !stop.load(Ordering::SeqCst) {
            accept_all(listener, config, &mut waiting, &mut full_warned);
        }
    }
}

/// Which of the polled sockets are ready.
struct Ready {
    listener: bool,
    conns: Vec<usize>,
}

/// Polls the listener and every waiting connection until one is ready or the earliest
/// deadline passes.
fn wait_ready(listener: &TcpListener, waiting: &[Waiting]) -> io::Result<Ready> {
    let now = Instant::now();
    let timeout = waiting
        .iter()
        .map(|w| w.until.saturating_duration_since(now))
        .min()
        .unwrap_or(POLL_CAP)
        .min(POLL_CAP);
    let mut fds = Vec::with_capacity(waiting.len() + 1);
    fds.push(PollFd::new(listener, PollFlags::IN));
    for w in waiting {
        fds.push(PollFd::new(&w.stream, PollFlags::IN));
    }
    let ts = Timespec {
        tv_sec: timeout.as_secs() as _,
        tv_nsec: timeout.subsec_nanos() as _,
    };
    match poll(&mut fds, Some(&ts)) {
        Ok(_) => {}
        Err(rustix::io::Errno::INTR) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Ready {
        listener: !fds[0].revents().is_empty(),
        conns: fds[1..]
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.revents().is_empty())
            .map(|(i, _)| i)
            .collect(),
    })
}

/// One read of the request if the connection has sent something (or closed); empty if not.
fn read_request(w: &Waiting, max: usize, now: Instant) -> Vec<u8> {
    if w.until <= now {
        // Expired: take whatever is there without blocking (usually nothing).
        let _ = w.stream.set_nonblocking(true);
    }
    let mut buf = vec![0u8; max];
    let n = loop {
        match (&w.stream).read(&mut buf) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break 0,
        }
    };
    let _ = w.stream.set_nonblocking(false);
    buf.truncate(n);
    buf
}

/// Accepts every pending connection; makes room by closing the oldest waiting one when full.
fn accept_all(
    listener: &TcpListener,
    config: RequestFirst,
    waiting: &mut Vec<Waiting>,
    full_warned: &mut bool,
) {
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                // Accepted sockets do not inherit O_NONBLOCK on Linux; make sure anyway.
                let _ = stream.set_nonblocking(false);
                let max = config.max_waiting.max(1);
                if waiting.len() >= max {
                    if !*full_warned {
                        log::warn!(
                            "{max} connections are waiting for their request; closing the oldest to make room"
                        );
                        *full_warned = true;
                    }
                    if let Some(oldest) = (0..waiting.len()).min_by_key(|&i| waiting[i].until) {
                        drop(waiting.swap_remove(oldest));
                    }
                } else if waiting.len() < max / 2 {
                    *full_warned = false;
                }
                waiting.push(Waiting {
                    stream,
                    peer,
                    until: Instant::now() + config.deadline,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                log::warn!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
                return;
            }
        }
    }
}
