//! Talking to a tracker as a client: one announce over HTTP (`http://host:port/path`) or UDP
//! (`udp://host:port`, BEP 15 connect then announce), blocking with deadlines.

use super::announce::{self, Announce, AnnounceReply};
use super::udp_tracker::{self, UdpReply, UdpRequest};
use crate::core::tcp;
use crate::core::trace::{self, Body, Direction, Proto};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

/// Largest tracker reply we read over HTTP.
const MAX_REPLY: u64 = 1 << 20;

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

/// `scheme://host:port/rest` → (scheme, address, "/rest").
fn split_url(url: &str) -> io::Result<(&str, SocketAddr, String)> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| invalid(format!("{url} is not a tracker URL")))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let default_port = if scheme == "http" { 80 } else { 0 };
    let addr = if hostport.contains(':') {
        tcp::parse_host_port(hostport)?
    } else {
        tcp::resolve_host(hostport, default_port)?
    };
    Ok((scheme, addr, path))
}

/// One announce to `url`; the reply's peers, interval and counts.
pub fn announce(url: &str, a: &Announce, timeout: Duration) -> io::Result<AnnounceReply> {
    let (scheme, addr, path) = split_url(url)?;
    match scheme {
        "http" => announce_http(addr, &path, a, timeout),
        "udp" => announce_udp(addr, a, timeout),
        other => Err(invalid(format!(
            "{other}:// trackers are not supported (http and udp are)"
        ))),
    }
}

fn announce_http(
    addr: SocketAddr,
    path: &str,
    a: &Announce,
    timeout: Duration,
) -> io::Result<AnnounceReply> {
    let mut stream = tcp::connect(addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let request = format!(
        "GET {} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: peershare/{}\r\nConnection: close\r\n\r\n",
        announce::announce_target(path, a),
        env!("CARGO_PKG_VERSION")
    );
    stream.write_all(request.as_bytes())?;
    let (local, remote) = (stream.local_addr().ok(), Some(addr));
    if trace::enabled() {
        let line = request.lines().next().unwrap_or_default();
        let body = Body::Text(line);
        trace::message(
            Direction::Send,
            Proto::Tcp,
            local,
            remote,
            body,
            request.len(),
        );
    }
    let mut response = Vec::new();
    stream.take(MAX_REPLY).read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("the tracker's HTTP reply has no header end".into()))?;
    let status_line =
        String::from_utf8_lossy(response.split(|&b| b == b'\n').next().unwrap_or(&[])).into_owned();
    if status_line.split(' ').nth(1) != Some("200") {
        return Err(invalid(format!(
            "the tracker answered {}",
            status_line.trim_end()
        )));
    }
    let reply = announce::parse_reply(&response[split + 4..]);
    if trace::enabled() {
        let what = match &reply {
            Ok(r) => announce::reply_summary(r),
            Err(e) => e.to_string(),
        };
        let body = Body::Summary(&what);
        trace::message(
            Direction::Recv,
            Proto::Tcp,
            local,
            remote,
            body,
            response.len(),
        );
    }
    reply.map_err(|e| invalid(e.to_string()))
}

fn announce_udp(addr: SocketAddr, a: &Announce, timeout: Duration) -> io::Result<AnnounceReply> {
    let local: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .map_err(|_| invalid("bad bind".into()))?;
    let socket = UdpSocket::bind(local)?;
    socket.connect(addr)?;
    // BEP 15 retries after 15 × 2ⁿ s; a course tracker on a LAN answers in milliseconds, so
    // three tries within the caller's timeout.
    let per_try = (timeout / 3).max(Duration::from_millis(200));
    socket.set_read_timeout(Some(per_try))?;
    let exchange = |req: &UdpRequest| udp_exchange(&socket, addr, req);
    let connection_id = match exchange(&UdpRequest::Connect {
        tid: rand::random(),
    })? {
        UdpReply::Connect { connection_id, .. } => connection_id,
        _ => {
            return Err(invalid(
                "the tracker answered connect with something else".into(),
            ))
        }
    };
    match exchange(&UdpRequest::Announce {
        connection_id,
        tid: rand::random(),
        announce: a.clone(),
    })? {
        UdpReply::Announce { reply, .. } => Ok(reply),
        _ => Err(invalid(
            "the tracker answered announce with something else".into(),
        )),
    }
}

/// Sends `req` up to three times (the socket's read timeout apart) until the reply with its
/// transaction id comes; a BEP 15 error reply for it is the tracker refusing.
fn udp_exchange(socket: &UdpSocket, addr: SocketAddr, req: &UdpRequest) -> io::Result<UdpReply> {
    let tid = match req {
        UdpRequest::Connect { tid }
        | UdpRequest::Announce { tid, .. }
        | UdpRequest::Scrape { tid, .. } => *tid,
    };
    let bytes = udp_tracker::encode_request(req);
    let mut buf = [0u8; 4096];
    let local = socket.local_addr().ok();
    for _ in 0..3 {
        socket.send(&bytes)?;
        if trace::enabled() {
            let what = udp_tracker::request_summary(req);
            trace::message(
                Direction::Send,
                Proto::Udp,
                local,
                Some(addr),
                Body::Summary(&what),
                bytes.len(),
            );
        }
        loop {
            match socket.recv(&mut buf) {
                Ok(n) => match trace_reply(udp_tracker::parse_reply(&buf[..n]), local, addr, n) {
                    Ok(UdpReply::Error { tid: t, message }) if t == tid => {
                        return Err(invalid(format!("the tracker refused: {message}")))
                    }
                    Ok(reply) if reply_tid(&reply) == tid => return Ok(reply),
                    _ => continue,
                },
                Err(e) if crate::core::timed_out(&e) => break,
                Err(e) => return Err(e),
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        "the UDP tracker did not answer",
    ))
}

/// Records a UDP tracker reply for `--trace` and hands it on.
fn trace_reply(
    reply: Result<UdpReply, udp_tracker::Dropped>,
    local: Option<SocketAddr>,
    remote: SocketAddr,
    size: usize,
) -> Result<UdpReply, udp_tracker::Dropped> {
    if trace::enabled() {
        let what = match &reply {
            Ok(r) => udp_tracker::reply_summary(r),
            Err(e) => e.to_string(),
        };
        let body = Body::Summary(&what);
        trace::message(Direction::Recv, Proto::Udp, local, Some(remote), body, size);
    }
    reply
}

fn reply_tid(r: &UdpReply) -> u32 {
    match r {
        UdpReply::Connect { tid, .. }
        | UdpReply::Announce { tid, .. }
        | UdpReply::Scrape { tid, .. }
        | UdpReply::Error { tid, .. } => *tid,
    }
}
