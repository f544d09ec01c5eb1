//! The grader's own tracker and peers for judging a student client from the wire.
//!
//! [`ScriptedTracker`] is a correct tracker on 127.0.0.1:5100 (the student client's fixed
//! address) that records every connection, every segment received and every reply sent.
//! [`ScriptedPeer`]s hold chunks, serve `REQUEST_CHUNK` as the spec says, and record what they
//! were asked on which connection, then half-close and watch whether the client closes its end
//! (`client 8`). Both use the protocol codec ([`wire`]) and the tracker's holder index
//! ([`ChunkIndex`], the tracker's own state); they are not a second implementation of either.

use crate::core::runtime::{Runtime, STOP_BOUND};
use crate::core::shutdown::Shutdown;
use crate::core::tcp::{self, Dispatch, TcpService};
use crate::p2ptracker::state::TrackerState as ChunkIndex;
use crate::p2ptracker::wire::{self, Holder, Request};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown as Half, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One thing seen on the wire, stamped with the time since the run began.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    TrackerOpened {
        conn: usize,
    },
    TrackerClosed {
        conn: usize,
    },
    TrackerGot {
        conn: usize,
        text: String,
    },
    TrackerSent {
        conn: usize,
        text: String,
    },
    /// A peer connection; `request` is what it read, `served` the bytes sent back, and `closed`
    /// whether the client closed its end after the peer half-closed (`None`: never did).
    PeerConn {
        peer: usize,
        request: String,
        served: usize,
        closed_after: Option<Duration>,
        opened: Duration,
    },
}

/// Shared record of a run.
#[derive(Clone)]
pub struct Recorder {
    start: Instant,
    events: Arc<Mutex<Vec<(Duration, Seen)>>>,
    /// Peer connections accepted but not yet recorded (still waiting for the client to close).
    pending: Arc<AtomicUsize>,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            start: Instant::now(),
            events: Arc::default(),
            pending: Arc::default(),
        }
    }

    fn push(&self, seen: Seen) {
        if let Ok(mut e) = self.events.lock() {
            e.push((self.start.elapsed(), seen));
        }
    }

    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Peer connections still open.
    pub fn pending_peers(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    pub fn events(&self) -> Vec<(Duration, Seen)> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

/// A correct tracker that records everything, on a listener the caller bound.
pub struct ScriptedTracker {
    service: TcpService,
    stopping: Arc<AtomicBool>,
    rt: Runtime,
}

impl ScriptedTracker {
    /// Starts serving; `seed` lists holders known before any client speaks (the scripted peers).
    pub fn start(
        listener: TcpListener,
        seed: &[(u32, Holder)],
        rec: Recorder,
    ) -> io::Result<ScriptedTracker> {
        let mut index = ChunkIndex::default();
        for (idx, h) in seed {
            index.announce(*idx, h.clone());
        }
        let index = Arc::new(Mutex::new(index));
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = stopping.clone();
        let next = Arc::new(AtomicUsize::new(0));
        let rt = Runtime::new("grade", "grade-tracker", &Shutdown::new());
        let service = TcpService::start_with(
            &rt,
            listener,
            "tracker",
            Dispatch::ThreadPerConnection,
            move |stream, _| {
                let conn = next.fetch_add(1, Ordering::SeqCst);
                serve_tracker_conn(stream, conn, &index, &rec, &stop);
            },
        )?;
        Ok(ScriptedTracker {
            service,
            stopping,
            rt,
        })
    }

    pub fn stop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.service.stop();
        self.rt.stop(STOP_BOUND);
    }
}

impl Drop for ScriptedTracker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve_tracker_conn(
    mut stream: TcpStream,
    conn: usize,
    index: &Mutex<ChunkIndex>,
    rec: &Recorder,
    stop: &AtomicBool,
) {
    rec.push(Seen::TrackerOpened { conn });
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::SeqCst) {
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if crate::core::timed_out(&e) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        for seg in wire::split_segments(&buf[..n]) {
            let text = String::from_utf8_lossy(seg).into_owned();
            rec.push(Seen::TrackerGot {
                conn,
                text: text.clone(),
            });
            let reply = match wire::parse_request(seg) {
                Ok(Request::LocalChunks { idx, holder }) => {
                    if let Ok(mut i) = index.lock() {
                        i.announce(idx, holder);
                    }
                    None
                }
                Ok(Request::WhereChunk { idx }) => {
                    let holders = index
                        .lock()
                        .map(|i| i.holders(idx).to_vec())
                        .unwrap_or_default();
                    Some(if holders.is_empty() {
                        wire::encode_unknown(&idx.to_string())
                    } else {
                        wire::encode_get_chunk_from(idx, &holders).0
                    })
                }
                Ok(Request::WhereChunkInvalid { text }) => Some(wire::encode_unknown(&text)),
                Err(_) => None,
            };
            if let Some(r) = reply {
                // Recorded before the write: the client may reach a peer before we return.
                rec.push(Seen::TrackerSent {
                    conn,
                    text: r.clone(),
                });
                if stream.write_all(r.as_bytes()).is_err() {
                    break;
                }
            }
        }
    }
    rec.push(Seen::TrackerClosed { conn });
}

/// A peer holding some chunks.
pub struct ScriptedPeer {
    pub port: u16,
    service: TcpService,
    rt: Runtime,
}

impl ScriptedPeer {
    /// Serves `chunks` (idx → bytes) on 127.0.0.1:0; waits up to `linger` for the client to close.
    pub fn start(
        peer: usize,
        chunks: HashMap<u32, Vec<u8>>,
        linger: Duration,
        rec: Recorder,
    ) -> io::Result<ScriptedPeer> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let port = listener.local_addr()?.port();
        let chunks = Arc::new(chunks);
        let rt = Runtime::new("grade", "grade-peer", &Shutdown::new());
        let service = TcpService::start(&rt, listener, "peer", 5, move |mut stream, _| {
            let opened = rec.now();
            rec.pending.fetch_add(1, Ordering::SeqCst);
            let req = tcp::read_once(&mut stream, 1024, Duration::from_secs(5)).unwrap_or_default();
            let request = String::from_utf8_lossy(&req).into_owned();
            let mut served = 0;
            if let Some(bytes) = wire::parse_request_chunk(&req).and_then(|i| chunks.get(&i)) {
                if stream.write_all(bytes).is_ok() {
                    served = bytes.len();
                }
            }
            let _ = stream.shutdown(Half::Write);
            let closed_after = wait_for_close(&mut stream, linger);
            rec.push(Seen::PeerConn {
                peer,
                request,
                served,
                closed_after,
                opened,
            });
            rec.pending.fetch_sub(1, Ordering::SeqCst);
        })?;
        Ok(ScriptedPeer { port, service, rt })
    }
}

impl Drop for ScriptedPeer {
    fn drop(&mut self) {
        self.service.stop();
        self.rt.stop(STOP_BOUND);
    }
}

/// Reads (discarding) until EOF; how long that took, or `None` if the client kept it open.
fn wait_for_close(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    while start.elapsed() < limit {
        let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
        match stream.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e) if crate::core::timed_out(&e) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A reset is the client closing too.
            Err(_) => return Some(start.elapsed()),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripted_tracker_answers_from_seed_and_announcements_and_records_both() {
        let rec = Recorder::new();
        let l = tcp::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = l.local_addr().unwrap();
        let seed = [(
            1,
            Holder {
                ip: "localhost".into(),
                port: 7001,
            },
        )];
        let _t = ScriptedTracker::start(l, &seed, rec.clone()).unwrap();
        let mut s = tcp::connect(addr, Duration::from_secs(2)).unwrap();
        s.write_all(b"LOCAL_CHUNKS,1,localhost,7002").unwrap();
        std::thread::sleep(Duration::from_millis(200));
        s.write_all(b"WHERE_CHUNK,1").unwrap();
        let r = tcp::read_once(&mut s, 1024, Duration::from_secs(2)).unwrap();
        assert_eq!(r, b"GET_CHUNK_FROM,1,localhost,7001,localhost,7002");
        s.write_all(b"WHERE_CHUNK,2").unwrap();
        let r = tcp::read_once(&mut s, 1024, Duration::from_secs(2)).unwrap();
        assert_eq!(r, b"CHUNK_LOCATION_UNKNOWN,2");
        drop(s);
        std::thread::sleep(Duration::from_millis(300));
        let ev: Vec<Seen> = rec.events().into_iter().map(|(_, s)| s).collect();
        assert!(ev.contains(&Seen::TrackerGot {
            conn: 0,
            text: "LOCAL_CHUNKS,1,localhost,7002".into()
        }));
        assert!(ev.contains(&Seen::TrackerClosed { conn: 0 }));
    }

    #[test]
    fn scripted_peer_serves_held_chunks_and_sees_the_client_close() {
        let rec = Recorder::new();
        let p = ScriptedPeer::start(
            0,
            HashMap::from([(3, b"abc".to_vec())]),
            Duration::from_secs(2),
            rec.clone(),
        )
        .unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], p.port));
        let mut s = tcp::connect(addr, Duration::from_secs(2)).unwrap();
        s.write_all(b"REQUEST_CHUNK,3").unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"abc");
        drop(s);
        let mut s = tcp::connect(addr, Duration::from_secs(2)).unwrap();
        s.write_all(b"REQUEST_CHUNK,4").unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        assert!(got.is_empty());
        drop(s);
        std::thread::sleep(Duration::from_millis(500));
        let conns: Vec<(usize, Option<Duration>)> = rec
            .events()
            .into_iter()
            .filter_map(|(_, s)| match s {
                Seen::PeerConn {
                    served,
                    closed_after,
                    ..
                } => Some((served, closed_after)),
                _ => None,
            })
            .collect();
        assert_eq!(conns.len(), 2);
        assert!(conns.iter().all(|(_, c)| c.is_some()));
        assert!(conns.iter().any(|(s, _)| *s == 3));
    }
}
