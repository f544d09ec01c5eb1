//! The one download reader every system uses: a `TcpStream` that fails (rather than ending
//! cleanly) when the role shuts down or the uploader falls silent too long, so an interrupted
//! download is never landed as if complete.
//!
//! It polls: each `read` blocks at most [`POLL`], then checks the shutdown signal and the
//! silence so far. No watcher thread (FileApp used to start one per download to shut the
//! socket down on Ctrl-C); the cost is one wake-up per [`POLL`] only while the uploader is silent.

use crate::core::shutdown::Shutdown;
use std::io::{self, Read};
use std::net::TcpStream;
use std::time::Duration;

/// How often a blocked read wakes to look at the shutdown signal.
pub const POLL: Duration = Duration::from_millis(200);

/// A download source that gives up on shutdown or after `idle` of silence.
pub struct WatchedReader {
    stream: TcpStream,
    stop: Shutdown,
    idle: Duration,
    stalled: Duration,
    interrupted: &'static str,
}

impl WatchedReader {
    /// Reads `stream` (a clone is kept); `interrupted` is the error text when `stop` fires (each
    /// system words it as its original did).
    pub fn new(
        stream: &TcpStream,
        stop: &Shutdown,
        idle: Duration,
        interrupted: &'static str,
    ) -> io::Result<WatchedReader> {
        let stream = stream.try_clone()?;
        stream.set_read_timeout(Some(POLL.min(idle).max(Duration::from_millis(1))))?;
        Ok(WatchedReader {
            stream,
            stop: stop.clone(),
            idle,
            stalled: Duration::ZERO,
            interrupted,
        })
    }
}

impl Read for WatchedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.stop.is_triggered() {
                // Not `Interrupted`: readers retry that kind.
                return Err(io::Error::other(self.interrupted));
            }
            match self.stream.read(buf) {
                Ok(n) => {
                    self.stalled = Duration::ZERO;
                    // A read that ended because Ctrl-C shut things down is not a clean EOF.
                    if n == 0 && self.stop.is_triggered() {
                        return Err(io::Error::other(self.interrupted));
                    }
                    return Ok(n);
                }
                Err(e) if crate::core::timed_out(&e) => {
                    self.stalled += self.stream.read_timeout()?.unwrap_or(POLL);
                    if self.stalled >= self.idle {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("the peer sent nothing for {} s", self.idle.as_secs()),
                        ));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        (a, l.accept().unwrap().0)
    }

    #[test]
    fn shutdown_turns_a_blocked_read_into_an_error() {
        let (down, mut up) = pair();
        let stop = Shutdown::new();
        let mut r = WatchedReader::new(&down, &stop, Duration::from_secs(30), "stopped").unwrap();
        up.write_all(b"abc").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(r.read(&mut buf).unwrap(), 3);
        let s = stop.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            s.trigger();
        });
        let err = r.read(&mut buf).unwrap_err();
        assert_eq!(err.to_string(), "stopped");
        t.join().unwrap();
    }

    #[test]
    fn a_silent_peer_times_out_after_idle() {
        let (down, _up) = pair();
        let mut r =
            WatchedReader::new(&down, &Shutdown::new(), Duration::from_millis(300), "x").unwrap();
        let err = r.read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
