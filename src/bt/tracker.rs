//! `peershare bt tracker`: an HTTP tracker (thread per connection, std::net, no framework) and a
//! UDP tracker (one thread owns the socket) sharing one [`SwarmTable`] behind a mutex.
//!
//! HTTP: one request per connection, answered `HTTP/1.0` and closed, which every client accepts.
//! The request head is read up to 8 KiB within 10 s; anything longer or slower is dropped. A
//! peer's address is the TCP source IP (an `ip=` parameter is ignored: it would let anyone add
//! a third party to a swarm). Bad announces get HTTP 200 with a bencoded `failure reason`, as
//! BEP 3 specifies; paths other than `/announce` and `/scrape` get 404.

use super::announce::{self, AnnounceError, HttpRequest};
use super::swarm::SwarmTable;
use super::udp_tracker::{self, UdpReply, UdpRequest, WINDOW_SECS};
use crate::core::runtime::{Runtime, STOP_BOUND};
use crate::core::shutdown::Shutdown;
use crate::core::tcp::{Dispatch, TcpService};
use crate::core::timed_out;
use crate::core::trace::{self, Body, Direction, Proto};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Longest HTTP request head we read.
const MAX_HEAD: usize = 8 * 1024;

pub struct TrackerConfig {
    /// The `interval` told to clients.
    pub interval: Duration,
    /// Silence after which a peer leaves the swarm.
    pub expiry: Duration,
}

type Table = Arc<Mutex<SwarmTable>>;

/// Serves HTTP on `http` and UDP on `udp` until `shutdown` fires.
pub fn run(
    config: TrackerConfig,
    http: Option<TcpListener>,
    udp: Option<UdpSocket>,
    shutdown: Shutdown,
) -> io::Result<()> {
    let table: Table = Arc::new(Mutex::new(SwarmTable::new(config.interval, config.expiry)));
    let rt = Runtime::new("bt", "bt-tracker", &shutdown);
    let service = match http {
        Some(listener) => {
            let t = table.clone();
            Some(TcpService::start_with(
                &rt,
                listener,
                "http",
                Dispatch::ThreadPerConnection,
                move |stream, peer| serve_http(stream, peer, &t),
            )?)
        }
        None => None,
    };
    if let Some(socket) = udp {
        let (t, s) = (table.clone(), rt.shutdown().clone());
        rt.spawn("udp", move || serve_udp(socket, &t, &s))?;
    }
    while !shutdown.sleep(Duration::from_secs(3600)) {}
    drop(service);
    rt.stop(STOP_BOUND);
    Ok(())
}

fn ipv4_of(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(ip) => Some(ip),
        IpAddr::V6(ip) => ip.to_ipv4_mapped(),
    }
}

/// Reads the request head (up to the blank line), bounded in size and time.
fn read_head(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head over 8 KiB",
            ));
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(head)
}

fn serve_http(mut stream: TcpStream, peer: SocketAddr, table: &Table) {
    let head = match read_head(&mut stream) {
        Ok(h) => h,
        Err(e) => {
            log::debug!("dropped HTTP client {peer}: {e}");
            return;
        }
    };
    let line = String::from_utf8_lossy(head.split(|&b| b == b'\n').next().unwrap_or(&[]))
        .trim_end()
        .to_string();
    let local = stream.local_addr().ok();
    if trace::enabled() {
        let body = Body::Text(&line);
        trace::message(
            Direction::Recv,
            Proto::Tcp,
            local,
            Some(peer),
            body,
            head.len(),
        );
    }
    let (status, body) = answer_http(&line, peer, table);
    let reply = format!(
        "HTTP/1.0 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if trace::enabled() {
        let what = match announce::parse_reply(&body) {
            Ok(r) => format!("{status}: {}", announce::reply_summary(&r)),
            Err(e) => format!("{status}: {e}"),
        };
        let body_ = Body::Summary(&what);
        let size = reply.len() + body.len();
        trace::message(Direction::Send, Proto::Tcp, local, Some(peer), body_, size);
    }
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let _ = stream
        .write_all(&[reply.as_bytes(), &body].concat())
        .and_then(|_| stream.flush());
}

fn answer_http(line: &str, peer: SocketAddr, table: &Table) -> (&'static str, Vec<u8>) {
    let now = Instant::now();
    match announce::parse_request_line(line) {
        Ok(HttpRequest::Announce(a)) => {
            let Some(ip) = ipv4_of(peer.ip()) else {
                return (
                    "200 OK",
                    announce::encode_failure("this tracker serves IPv4 peers only"),
                );
            };
            let Ok(mut t) = table.lock() else {
                return ("500 Internal Server Error", Vec::new());
            };
            let reply = t.announce(&a, ip, now);
            log::info!("HTTP {}", announce_line(&a, ip, reply.peers.len()));
            ("200 OK", announce::encode_reply(&reply, a.compact))
        }
        Ok(HttpRequest::Scrape(hashes)) => {
            let Ok(mut t) = table.lock() else {
                return ("500 Internal Server Error", Vec::new());
            };
            ("200 OK", announce::encode_scrape(&t.scrape(&hashes, now)))
        }
        Err(AnnounceError::NotFound) => ("404 Not Found", b"not a tracker request".to_vec()),
        Err(e) => {
            log::info!("refused an HTTP announce from {peer}: {e}");
            ("200 OK", announce::encode_failure(&e.to_string()))
        }
    }
}

fn window_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / WINDOW_SECS)
}

fn serve_udp(socket: UdpSocket, table: &Table, shutdown: &Shutdown) {
    let secret: [u8; 32] = rand::random();
    if let Err(e) = socket.set_read_timeout(Some(Duration::from_millis(200))) {
        log::error!("cannot poll the UDP tracker socket: {e}");
        return;
    }
    let mut buf = [0u8; 2048];
    while !shutdown.is_triggered() {
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if timed_out(&e) => continue,
            Err(e) => {
                // ICMP port unreachable from an earlier reply surfaces here on Linux; keep serving.
                log::debug!("UDP tracker receive: {e}");
                continue;
            }
        };
        let local = if trace::enabled() {
            socket.local_addr().ok()
        } else {
            None
        };
        if trace::enabled() {
            let what = match udp_tracker::parse_request(&buf[..n]) {
                Ok(r) => udp_tracker::request_summary(&r),
                Err(e) => e.to_string(),
            };
            trace::message(
                Direction::Recv,
                Proto::Udp,
                local,
                Some(from),
                Body::Summary(&what),
                n,
            );
        }
        if let Some(reply) = answer_udp(&buf[..n], from, &secret, table) {
            let bytes = udp_tracker::encode_reply(&reply);
            let _ = socket.send_to(&bytes, from);
            if trace::enabled() {
                let what = udp_tracker::reply_summary(&reply);
                let body = Body::Summary(&what);
                trace::message(
                    Direction::Send,
                    Proto::Udp,
                    local,
                    Some(from),
                    body,
                    bytes.len(),
                );
            }
        }
    }
}

/// `announce <info-hash> from <ip>:<port> event=… left=…: N peers`, for the log.
fn announce_line(
    a: &crate::bt::announce::Announce,
    ip: std::net::Ipv4Addr,
    peers: usize,
) -> String {
    format!(
        "announce {} from {ip}:{} event={} left={}: {peers} peers",
        crate::core::digest::to_hex(&a.info_hash),
        a.port,
        a.event.as_str(),
        a.left
    )
}

/// A UDP announce with a valid connection id: the table's answer (IPv4 peers only, as BEP
/// 15's compact form has room for nothing else).
fn udp_announce(
    a: &crate::bt::announce::Announce,
    from: SocketAddr,
    tid: u32,
    table: &Table,
    now: Instant,
) -> Option<UdpReply> {
    let Some(ip) = ipv4_of(from.ip()) else {
        return Some(UdpReply::Error {
            tid,
            message: "IPv4 peers only".into(),
        });
    };
    let mut t = table.lock().ok()?;
    let reply = t.announce(a, ip, now);
    // debug, not info: a UDP tracker's whole point is a high announce rate.
    log::debug!("UDP {}", announce_line(a, ip, reply.peers.len()));
    Some(UdpReply::Announce { tid, reply })
}

fn answer_udp(
    datagram: &[u8],
    from: SocketAddr,
    secret: &[u8; 32],
    table: &Table,
) -> Option<UdpReply> {
    let req = match udp_tracker::parse_request(datagram) {
        Ok(r) => r,
        Err(e) => {
            log::debug!("{e} from {from}");
            return None;
        }
    };
    let window = window_now();
    let valid = |id: u64| {
        id == udp_tracker::connection_id(secret, from, window)
            || id == udp_tracker::connection_id(secret, from, window.wrapping_sub(1))
    };
    let now = Instant::now();
    let bad_id = |tid| UdpReply::Error {
        tid,
        message: "unknown or expired connection id".into(),
    };
    Some(match req {
        UdpRequest::Connect { tid } => UdpReply::Connect {
            tid,
            connection_id: udp_tracker::connection_id(secret, from, window),
        },
        UdpRequest::Announce {
            connection_id,
            tid,
            announce: a,
        } => {
            if !valid(connection_id) {
                log::info!("refused a UDP announce from {from}: bad connection id");
                return Some(bad_id(tid));
            }
            udp_announce(&a, from, tid, table, now)?
        }
        UdpRequest::Scrape {
            connection_id,
            tid,
            hashes,
        } => {
            if !valid(connection_id) {
                return Some(bad_id(tid));
            }
            let mut t = table.lock().ok()?;
            let stats = t.scrape(&hashes, now).into_iter().map(|(_, s)| s).collect();
            UdpReply::Scrape { tid, stats }
        }
    })
}
