//! Request/reply over UDP with one owner of the socket's receive side.
//!
//! UDP clients in these systems receive two kinds of datagram on one socket: replies to what they
//! asked (`ACK_OFFER`, a login answer) and unsolicited events (a pushed table). If the waiting
//! command and a listener thread both called `recv_from`, either could steal the other's datagram.
//! So exactly one thread receives ([`receive_loop`], also used by servers); it hands each
//! datagram to the oldest waiting request whose matcher accepts it, or else to the event channel.
//! [`UdpRpc::request`] sends, waits `timeout` and resends, `sends` times in all.

use crate::core::runtime::Runtime;
use crate::core::shutdown::Shutdown;
use crate::core::trace;
use crossbeam_channel::{Receiver, Sender};
use std::fmt;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Largest UDP payload; every receive buffer in peershare has this size.
pub const MAX_DATAGRAM: usize = 65_535;

/// How often blocked receives wake to check for shutdown.
const POLL: Duration = Duration::from_millis(100);

/// Binds a UDP socket and logs where it listens (the UDP twin of `core::tcp::bind`).
pub fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = UdpSocket::bind(addr)?;
    log::info!("listening on {}", socket.local_addr()?);
    Ok(socket)
}

/// `--trace`: one line per datagram sent or received through this module (every UDP receive
/// goes through [`receive_loop`], every client send through [`UdpRpc::send_to`]); free when off.
pub fn trace_datagram(dir: trace::Direction, socket: &UdpSocket, remote: SocketAddr, bytes: &[u8]) {
    if trace::enabled() {
        let body = trace::Body::Bytes(bytes);
        trace::message(
            dir,
            trace::Proto::Udp,
            socket.local_addr().ok(),
            Some(remote),
            body,
            bytes.len(),
        );
    }
}

/// One received datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub bytes: Vec<u8>,
    pub from: SocketAddr,
}

/// What [`receive_loop`] hands its callback.
pub enum Received {
    Datagram(Datagram),
    /// Nothing arrived for one `tick` (lets servers expire state on time).
    Tick,
}

/// Receives on `socket` until `shutdown` fires, calling `on` for each datagram and at least every
/// `tick`. Receive errors (ICMP port-unreachable surfacing as ECONNREFUSED) are logged and skipped.
pub fn receive_loop(
    socket: &UdpSocket,
    shutdown: &Shutdown,
    tick: Duration,
    mut on: impl FnMut(Received),
) -> io::Result<()> {
    socket.set_read_timeout(Some(tick.min(POLL).max(Duration::from_millis(1))))?;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut last_tick = std::time::Instant::now();
    while !shutdown.is_triggered() {
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => on(Received::Datagram(Datagram {
                bytes: buf[..n].to_vec(),
                from,
            })),
            Err(e) if crate::core::timed_out(&e) => {}
            Err(e) => log::debug!("udp receive error: {e}"),
        }
        if last_tick.elapsed() >= tick {
            last_tick = std::time::Instant::now();
            on(Received::Tick);
        }
    }
    Ok(())
}

/// Timing of one request: wait `timeout` per try, `sends` tries in all.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub timeout: Duration,
    pub sends: u32,
}

/// Why a request got no answer.
#[derive(Debug)]
pub enum RpcError {
    NoReply,
    Io(io::Error),
    Closed,
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpcError::NoReply => write!(f, "no reply arrived"),
            RpcError::Io(e) => write!(f, "{e}"),
            RpcError::Closed => write!(f, "the socket is shut down"),
        }
    }
}

impl std::error::Error for RpcError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RpcError::Io(e) => Some(e),
            RpcError::NoReply | RpcError::Closed => None,
        }
    }
}

type Matcher = Box<dyn Fn(&Datagram) -> bool + Send>;

struct Waiter {
    id: u64,
    matches: Matcher,
    deliver: Sender<Datagram>,
}

#[derive(Default)]
struct Waiters {
    next_id: u64,
    list: Vec<Waiter>,
}

/// A UDP socket whose receive side is owned by a router thread. Cloning shares it.
#[derive(Clone)]
pub struct UdpRpc {
    socket: Arc<UdpSocket>,
    /// Trace every datagram as raw text here (FileApp); systems whose messages need decoding
    /// or masking first (BitTrickle passwords, pickles) trace at their own codec instead.
    raw_trace: bool,
    waiters: Arc<Mutex<Waiters>>,
    events: Receiver<Datagram>,
}

impl UdpRpc {
    /// Starts the router thread `<system>-udp-router` on `rt`; it ends when the runtime's shutdown
    /// fires. Datagrams no request claims go to [`UdpRpc::events`].
    pub fn start(rt: &Runtime, socket: UdpSocket) -> io::Result<UdpRpc> {
        Self::start_with(rt, socket, false)
    }

    /// Like [`UdpRpc::start`], and every datagram sent or received is traced as raw text.
    pub fn start_traced(rt: &Runtime, socket: UdpSocket) -> io::Result<UdpRpc> {
        Self::start_with(rt, socket, true)
    }

    fn start_with(rt: &Runtime, socket: UdpSocket, raw_trace: bool) -> io::Result<UdpRpc> {
        let socket = Arc::new(socket);
        let waiters: Arc<Mutex<Waiters>> = Arc::default();
        let (event_tx, events) = crossbeam_channel::unbounded();
        let (sock, w, stop) = (socket.clone(), waiters.clone(), rt.shutdown().clone());
        rt.spawn("udp-router", move || {
            let routed = receive_loop(&sock, &stop, POLL, |r| {
                if let Received::Datagram(d) = r {
                    if raw_trace {
                        trace_datagram(trace::Direction::Recv, &sock, d.from, &d.bytes);
                    }
                    route(&w, &event_tx, d);
                }
            });
            if let Err(e) = routed {
                log::error!("udp router stopped: {e}");
            }
        })?;
        Ok(UdpRpc {
            socket,
            raw_trace,
            waiters,
            events,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Sends one datagram (fire and forget).
    pub fn send_to(&self, bytes: &[u8], to: SocketAddr) -> io::Result<()> {
        if self.raw_trace {
            trace_datagram(trace::Direction::Send, &self.socket, to, bytes);
        }
        self.socket.send_to(bytes, to).map(|_| ())
    }

    /// Datagrams that no request claimed, in arrival order.
    pub fn events(&self) -> &Receiver<Datagram> {
        &self.events
    }

    /// Drops every unclaimed datagram queued so far (stale replies before a new request).
    pub fn discard_events(&self) {
        while self.events.try_recv().is_ok() {}
    }

    /// Sends `bytes` to `to` and waits for a datagram `matches` accepts, resending per `retry`.
    pub fn request(
        &self,
        bytes: &[u8],
        to: SocketAddr,
        retry: Retry,
        matches: impl Fn(&Datagram) -> bool + Send + 'static,
    ) -> Result<Datagram, RpcError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let id = {
            let mut w = self.waiters.lock().map_err(|_| RpcError::Closed)?;
            w.next_id += 1;
            let id = w.next_id;
            w.list.push(Waiter {
                id,
                matches: Box::new(matches),
                deliver: tx,
            });
            id
        };
        let result = (|| {
            for _ in 0..retry.sends.max(1) {
                self.send_to(bytes, to).map_err(RpcError::Io)?;
                match rx.recv_timeout(retry.timeout) {
                    Ok(d) => return Ok(d),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
                    Err(_) => return Err(RpcError::Closed),
                }
            }
            Err(RpcError::NoReply)
        })();
        if let Ok(mut w) = self.waiters.lock() {
            w.list.retain(|x| x.id != id);
        }
        result
    }
}

fn route(waiters: &Mutex<Waiters>, events: &Sender<Datagram>, d: Datagram) {
    if let Ok(mut w) = waiters.lock() {
        if let Some(pos) = w.list.iter().position(|x| (x.matches)(&d)) {
            let waiter = w.list.remove(pos);
            let _ = waiter.deliver.try_send(d);
            return;
        }
    }
    let _ = events.send(d);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> UdpSocket {
        UdpSocket::bind("127.0.0.1:0").unwrap()
    }

    #[test]
    fn reply_goes_to_the_request_and_other_datagrams_to_events() {
        let stop = Shutdown::new();
        let server = local();
        let server_addr = server.local_addr().unwrap();
        let rpc = UdpRpc::start(&Runtime::new("t", "t", &stop), local()).unwrap();
        let me = rpc.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 100];
            let (n, from) = server.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"ping");
            server.send_to(b"table", from).unwrap();
            server.send_to(b"ACK", from).unwrap();
        });
        let reply = rpc
            .request(
                b"ping",
                server_addr,
                Retry {
                    timeout: Duration::from_secs(2),
                    sends: 1,
                },
                |d| d.bytes == b"ACK",
            )
            .unwrap();
        assert_eq!(reply.bytes, b"ACK");
        let ev = rpc.events().recv_timeout(Duration::from_secs(2)).unwrap();
        assert_eq!(ev.bytes, b"table");
        assert_ne!(me.port(), 0);
        stop.trigger();
    }

    #[test]
    fn request_resends_then_gives_up() {
        let stop = Shutdown::new();
        let silent = local();
        let rpc = UdpRpc::start(&Runtime::new("t", "t", &stop), local()).unwrap();
        let err = rpc
            .request(
                b"x",
                silent.local_addr().unwrap(),
                Retry {
                    timeout: Duration::from_millis(30),
                    sends: 3,
                },
                |_| true,
            )
            .unwrap_err();
        assert!(matches!(err, RpcError::NoReply));
        silent
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut buf = [0u8; 10];
        for _ in 0..3 {
            silent.recv_from(&mut buf).unwrap();
        }
        stop.trigger();
    }
}
