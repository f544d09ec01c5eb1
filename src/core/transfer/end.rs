//! Telling a finished upload from a dead uploader, on wires that carry no size.
//!
//! FileApp, BitTrickle and P2PTracker++ send a file as raw bytes and end it by closing the
//! connection. When an uploader process dies (`kill -9`, a crash), the kernel closes its sockets
//! for it: bytes still queued are sent, then an orderly FIN. So end-of-file alone proves nothing,
//! and a cut file used to be kept as complete. (Checked on this kernel: see the tests below; a
//! socket closed by process exit behaves exactly like one closed by `close(2)`.)
//!
//! What peershare does, without a byte an original program would see:
//!
//! - **Uploader** ([`finish_upload`], [`abort_upload`], or [`upload_file`] for both): after the
//!   last byte it half-closes (`shutdown(Write)`: the FIN an original downloader waits for) and
//!   keeps reading, up to a bound, until the downloader closes. On any failure mid-file it aborts
//!   with RST (`SO_LINGER` 0, then close), so the downloader sees ECONNRESET, not EOF.
//! - **Downloader** ([`EndCheck`], run by `receive_file` before it commits): after EOF it writes
//!   one probe byte and closes its side. A live, half-closed peershare uploader acknowledges
//!   both at once; a closed socket (dead process, or an original uploader that closed fully)
//!   answers the byte with RST. Our socket closes either way; only a reset leaves an error
//!   behind. Polled with a growing back-off from 20 µs: on loopback the answer is usually there
//!   when `shutdown` returns, on a LAN one round trip later. No fixed wait.
//! - **RST is ambiguous** (original uploader, or a dead peershare). The tie-breaker needs no
//!   bytes: a connection to the uploader's *listening* address (FileApp owner TCP port,
//!   BitTrickle/P2PTracker++ peer port). Refused, or accepted and then reset within
//!   [`LISTENER_HOLD`] (a killed process closes its connections a moment before its listener,
//!   and a closing listener resets what waits in its queue): the uploader's process is gone, the
//!   file is discarded. Accepted and held: it is kept (closed without sending a byte).
//!
//! What a peershare downloader can and cannot detect:
//!
//! | uploader                                              | outcome                         |
//! |-------------------------------------------------------|---------------------------------|
//! | peershare, file sent in full                          | kept (probe acknowledged)       |
//! | peershare, killed / crashed mid-file                  | discarded (RST, port refused)   |
//! | peershare, I/O error mid-file (disk, file shrank)     | discarded (RST before EOF)      |
//! | peershare, killed after the last byte, before probe   | discarded (a false alarm, safe) |
//! | original, file sent in full, process still running    | kept (RST, port accepts)        |
//! | original, file sent in full, then process exited      | discarded (a false alarm, safe) |
//! | original, killed mid-file                             | **kept: undetectable** (the     |
//! |                                                       | wire is the same as a full send)|
//! | original, killed mid-file, but another process then   | **kept: undetectable**          |
//! | listens on its port                                   |                                 |
//! | no ACK and no RST within the bound (network cut)      | confirmed by the port check     |
//!
//! Costs: one byte, our FIN's ACK and ~0.1 ms per transfer with peershare uploaders; with
//! original uploaders one extra connection to their listening port, held [`LISTENER_HOLD`] and
//! closed without a request (an original owner may print its "connection" lines for it).
//! A peershare uploader killed while so loaded that its listener closes more than
//! [`LISTENER_HOLD`] after its connection would pass as an original one.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Longest a peershare uploader waits, after its last byte, for the downloader to close.
pub const FINISH_WAIT: Duration = Duration::from_secs(10);

/// How long the port check holds its connection to see whether a dying listener resets it.
/// Paid only after a reset (original uploaders, dead ones), never on the confirmed path.
pub const LISTENER_HOLD: Duration = Duration::from_millis(50);

/// Bytes an uploader reads (and drops) while waiting for the close: the probe is one.
const DRAIN_LIMIT: usize = 64 * 1024;

/// How a finished upload ended on the downloader's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndVerdict {
    /// A live peershare uploader acknowledged the probe after its last byte.
    Confirmed,
    /// The uploader closed fully (an original program) and its listening port still accepts.
    UploaderListening,
}

/// Why a received stream cannot be vouched for.
#[derive(Debug)]
pub enum EndError {
    /// The connection was reset and nobody listens at the uploader's address any more.
    UploaderGone(SocketAddr),
    /// The connection was reset and no listening address was given to check.
    Reset,
}

impl std::fmt::Display for EndError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndError::UploaderGone(a) => write!(
                f,
                "the uploader at {a} disappeared, so the end of the file cannot be trusted"
            ),
            EndError::Reset => write!(f, "the uploader reset the connection at the end"),
        }
    }
}

impl std::error::Error for EndError {}

/// The check a downloader runs after EOF, before a file is landed.
#[derive(Debug)]
pub struct EndCheck {
    stream: TcpStream,
    uploader: Option<SocketAddr>,
    within: Duration,
}

impl EndCheck {
    /// Checks the end of `stream` (a clone of the download connection is kept). `uploader` is the
    /// address the uploader listens on for the port check; `within` bounds the wait for the ACK.
    pub fn new(
        stream: &TcpStream,
        uploader: Option<SocketAddr>,
        within: Duration,
    ) -> io::Result<EndCheck> {
        Ok(EndCheck {
            stream: stream.try_clone()?,
            uploader,
            within,
        })
    }

    /// Probes after EOF and decides; see the module doc for the table.
    pub fn run(self) -> Result<EndVerdict, EndError> {
        if self.probe_acknowledged() {
            return Ok(EndVerdict::Confirmed);
        }
        let Some(addr) = self.uploader else {
            return Err(EndError::Reset);
        };
        let within = self.within.min(Duration::from_secs(3));
        if listener_alive(addr, within) {
            Ok(EndVerdict::UploaderListening)
        } else {
            Err(EndError::UploaderGone(addr))
        }
    }

    /// Writes the probe and our FIN, then waits until the socket closes: by the uploader's ACK
    /// (true) or by a reset, the bound, or an error (false: the caller checks the port).
    ///
    /// Why the FIN: a live uploader has half-closed and sits in FIN_WAIT2, where a received FIN
    /// is acknowledged at once (no delayed ACK: a lone probe byte was held up to 40 ms in 1 of 20
    /// runs here). Our socket then goes LAST_ACK → CLOSED, which `getpeername` reports as
    /// ENOTCONN; a reset closes it too but leaves an error in `SO_ERROR`. So std alone tells
    /// the two apart, with no `TCP_INFO` (no safe crate offers it; this crate forbids unsafe).
    fn probe_acknowledged(&self) -> bool {
        if (&self.stream).write(&[0u8]).is_err() || self.stream.shutdown(Shutdown::Write).is_err() {
            return false;
        }
        let deadline = Instant::now() + self.within;
        let mut pause = Duration::from_micros(20);
        loop {
            if self.stream.peer_addr().is_err() {
                // Closed: by the ACK of our FIN, unless a reset left its error behind.
                return matches!(self.stream.take_error(), Ok(None));
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }
}

/// Whether a process still listens at `addr`: the connection is accepted and is not reset
/// within [`LISTENER_HOLD`]. Why hold it: a killed process's sockets are closed one after the
/// other (on this kernel the connection before the listener), so for a moment after the cut
/// stream's FIN its listener still accepts; closing a listener resets every connection still
/// in its accept queue, which is what the hold waits to see.
fn listener_alive(addr: SocketAddr, within: Duration) -> bool {
    let Ok(mut conn) = TcpStream::connect_timeout(&addr, within) else {
        return false;
    };
    if conn.set_read_timeout(Some(LISTENER_HOLD)).is_err() {
        return true;
    }
    match conn.read(&mut [0u8; 1]) {
        Ok(0) => false,
        Ok(_) => true,
        Err(e) => crate::core::timed_out(&e),
    }
}

/// Ends a complete upload: half-close (the downloader's EOF), then read until the downloader
/// closes, at most `wait` and [`DRAIN_LIMIT`] bytes, so a peershare downloader's probe is
/// acknowledged by a live socket.
pub fn finish_upload(stream: &TcpStream, wait: Duration) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let _ = stream.set_read_timeout(Some(wait.max(Duration::from_millis(1))));
    let deadline = Instant::now() + wait;
    let (mut buf, mut seen) = ([0u8; 512], 0usize);
    while seen < DRAIN_LIMIT && Instant::now() < deadline {
        match (&*stream).read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                seen += n;
            }
        }
    }
}

/// Ends a failed upload with RST, so the downloader sees an error rather than EOF. The caller
/// must drop its last handle to the socket right after (the RST goes out on that close).
pub fn abort_upload(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

/// Sends the whole file at `path`; an error also when the file shrank while being sent (the
/// downloader must not take the shorter stream for the file).
pub fn send_whole_file(out: &mut TcpStream, path: &std::path::Path) -> io::Result<u64> {
    let len = std::fs::metadata(path)?.len();
    let n = super::send_file(out, path)?;
    if n < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the file shrank to {n} bytes while being sent"),
        ));
    }
    Ok(n)
}

/// Sends the whole file at `path` and ends the connection the way [`EndCheck`] reads it:
/// [`finish_upload`] when every byte went out, [`abort_upload`] otherwise. Consumes the stream
/// so the abort's RST really goes out.
pub fn upload_file(
    mut stream: TcpStream,
    path: &std::path::Path,
    wait: Duration,
) -> io::Result<u64> {
    let sent = send_whole_file(&mut stream, path);
    match &sent {
        Ok(_) => finish_upload(&stream, wait),
        Err(_) => abort_upload(&stream),
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A downloader connection and its uploader end, plus the uploader's listener.
    fn pair() -> (TcpStream, TcpStream, TcpListener) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let down = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (up, _) = l.accept().unwrap();
        (down, up, l)
    }

    fn read_all(mut s: &TcpStream) -> io::Result<Vec<u8>> {
        let mut got = Vec::new();
        s.read_to_end(&mut got).map(|_| got)
    }

    fn check(down: &TcpStream, l: &TcpListener) -> Result<EndVerdict, EndError> {
        EndCheck::new(down, l.local_addr().ok(), Duration::from_secs(5))
            .unwrap()
            .run()
    }

    #[test]
    fn a_live_half_closed_uploader_confirms_the_end() {
        let (down, up, l) = pair();
        let t = std::thread::spawn(move || {
            (&up).write_all(b"all of it").unwrap();
            finish_upload(&up, Duration::from_secs(5));
        });
        assert_eq!(read_all(&down).unwrap(), b"all of it");
        let verdict = check(&down, &l);
        drop(down);
        t.join().unwrap();
        assert_eq!(verdict.unwrap(), EndVerdict::Confirmed);
    }

    /// What `kill -9` does to the uploader: its sockets are closed (queued bytes, then FIN) and
    /// its listener with them. The downloader sees a clean EOF, and only the check catches it.
    #[test]
    fn a_dead_uploader_ends_with_eof_but_the_check_refuses_it() {
        let (down, up, l) = pair();
        let addr = l.local_addr().unwrap();
        (&up).write_all(&vec![7u8; 200_000]).unwrap();
        drop(up);
        drop(l);
        assert_eq!(read_all(&down).unwrap().len(), 200_000, "EOF, no error");
        let err = EndCheck::new(&down, Some(addr), Duration::from_secs(5))
            .unwrap()
            .run()
            .unwrap_err();
        assert!(matches!(err, EndError::UploaderGone(a) if a == addr));
    }

    #[test]
    fn an_original_uploader_that_closes_fully_and_keeps_listening_is_trusted() {
        let (down, up, l) = pair();
        (&up).write_all(b"whole").unwrap();
        drop(up);
        assert_eq!(read_all(&down).unwrap(), b"whole");
        assert_eq!(check(&down, &l).unwrap(), EndVerdict::UploaderListening);
    }

    #[test]
    fn an_aborted_upload_is_a_read_error_not_eof() {
        let (down, up, _l) = pair();
        (&up).write_all(b"part").unwrap();
        abort_upload(&up);
        drop(up);
        assert!(read_all(&down).is_err());
    }

    #[test]
    fn upload_file_aborts_when_the_file_is_missing() {
        let (down, up, _l) = pair();
        let dir = tempfile::tempdir().unwrap();
        assert!(upload_file(up, &dir.path().join("gone"), Duration::from_secs(1)).is_err());
        assert!(read_all(&down).is_err() || read_all(&down).unwrap().is_empty());
    }

    /// 100 one-MiB uploads in a row all confirm; prints how long the check took (not asserted:
    /// speed is for benches, but a delayed ACK would show here as ~40 ms).
    #[test]
    fn every_complete_upload_in_a_run_is_confirmed() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut took = Vec::new();
        for _ in 0..100 {
            let down = TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (up, _) = l.accept().unwrap();
            let t = std::thread::spawn(move || {
                (&up).write_all(&vec![1u8; 1 << 20]).unwrap();
                finish_upload(&up, Duration::from_secs(5));
            });
            assert_eq!(read_all(&down).unwrap().len(), 1 << 20);
            let start = Instant::now();
            assert_eq!(check(&down, &l).unwrap(), EndVerdict::Confirmed);
            took.push(start.elapsed());
            drop(down);
            t.join().unwrap();
        }
        took.sort();
        eprintln!(
            "end check: median {:?}, 95th {:?}, max {:?}",
            took[50], took[95], took[99]
        );
    }
}
