//! Moving one xFS message over a connection: the framing of §3.1 on top of `core::tcp`.
//!
//! There is no terminator and no length. A message starting with `{` is read until one whole
//! JSON value has arrived (at most [`JSON_MAX`] bytes, within the deadline); anything else is
//! one read of at most [`TEXT_MAX`] bytes, like the original's single `recv(2048)`.

use crate::core::tcp;
use crate::core::trace::{self, Body, Direction, Proto};
use crate::xfs::wire;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Longest text command or short reply (the original's `recv(2048)`).
pub const TEXT_MAX: usize = 2048;
/// Longest JSON message we accept.
pub const JSON_MAX: usize = 1 << 20;

/// Records one message on `stream` in the trace: JSON as its value, text as sent.
fn trace_message(stream: &TcpStream, dir: Direction, bytes: &[u8]) {
    if !trace::enabled() || bytes.is_empty() {
        return;
    }
    let body = match std::str::from_utf8(bytes) {
        Ok(text) if bytes.first() == Some(&b'{') => Body::Json(text),
        Ok(text) => Body::Text(text),
        Err(_) => Body::Bytes(bytes),
    };
    let (local, remote) = (stream.local_addr().ok(), stream.peer_addr().ok());
    trace::message(dir, Proto::Tcp, local, remote, body, bytes.len());
}

/// Records a message read some other way (the downloader's one-read control reply).
pub fn trace_received(stream: &TcpStream, bytes: &[u8]) {
    trace_message(stream, Direction::Recv, bytes);
}

/// Writes one whole message (the only way xFS messages are sent, so the trace sees each once).
pub fn write_message(stream: &mut TcpStream, bytes: &[u8]) -> io::Result<()> {
    stream.write_all(bytes)?;
    trace_message(stream, Direction::Send, bytes);
    Ok(())
}

/// Reads one message: JSON until complete, text in one read. An empty result means the peer
/// closed without sending anything.
pub fn read_message(stream: &mut TcpStream, timeout: Duration) -> io::Result<Vec<u8>> {
    let bytes = read_frame(stream, timeout)?;
    trace_message(stream, Direction::Recv, &bytes);
    Ok(bytes)
}

fn read_frame(stream: &mut TcpStream, timeout: Duration) -> io::Result<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut buf = tcp::read_once(stream, TEXT_MAX, timeout)?;
    if buf.first() != Some(&b'{') {
        return Ok(buf);
    }
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match wire::json_complete(&buf) {
            Ok(true) => return Ok(buf),
            // Let the caller's parse name the error.
            Err(_) => return Ok(buf),
            Ok(false) => {}
        }
        if buf.len() > JSON_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the JSON message is longer than {JSON_MAX} bytes"),
            ));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the JSON message did not complete in time",
            ));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(buf),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Why a request got no reply.
#[derive(Debug)]
pub enum RequestError {
    /// The connection could not be made (refused, unreachable, timed out).
    Connect(io::Error),
    /// Connected, but sending or reading the reply failed.
    Exchange(io::Error),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Connect(e) => write!(f, "could not connect: {e}"),
            RequestError::Exchange(e) => write!(f, "connected, but got no reply: {e}"),
        }
    }
}

impl std::error::Error for RequestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RequestError::Connect(e) | RequestError::Exchange(e) => Some(e),
        }
    }
}

/// One request on its own connection: connect, write `message` in one write, read the reply.
pub fn request(
    addr: SocketAddr,
    message: &[u8],
    connect_timeout: Duration,
    reply_timeout: Duration,
) -> Result<Vec<u8>, RequestError> {
    let mut stream = tcp::connect(addr, connect_timeout).map_err(RequestError::Connect)?;
    write_message(&mut stream, message).map_err(RequestError::Exchange)?;
    read_message(&mut stream, reply_timeout).map_err(RequestError::Exchange)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn json_split_over_several_writes_is_read_whole_and_text_in_one_read() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"{\"a\": [1, ").unwrap();
            std::thread::sleep(Duration::from_millis(50));
            s.write_all(b"2]}").unwrap();
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"getload\n").unwrap();
        });
        let (mut a, _) = listener.accept().unwrap();
        assert_eq!(
            read_message(&mut a, Duration::from_secs(5)).unwrap(),
            b"{\"a\": [1, 2]}"
        );
        let (mut b, _) = listener.accept().unwrap();
        assert_eq!(
            read_message(&mut b, Duration::from_secs(5)).unwrap(),
            b"getload\n"
        );
        t.join().unwrap();
    }

    #[test]
    fn an_unfinished_json_message_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"{\"a\": ").unwrap();
        let (mut a, _) = listener.accept().unwrap();
        assert!(read_message(&mut a, Duration::from_millis(200)).is_err());
        drop(s);
    }
}
