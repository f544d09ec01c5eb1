//! The UDP tracker protocol (BEP 15): connect, announce, scrape and error datagrams, both
//! directions. Pure: no sockets.
//!
//! Connection ids must be unguessable, or anyone could announce a spoofed source address (the
//! reason BEP 15 has a connect step at all). The tracker keeps no table of them: an id is the
//! first 8 bytes of SHA-1(secret ‖ client address ‖ 2-minute window), [`connection_id`], and is
//! accepted for the current and the previous window.

use super::announce::{
    compact_peers, parse_compact_peers, Announce, AnnounceReply, Event, ScrapeStats,
    DEFAULT_NUMWANT, MAX_NUMWANT,
};
use std::fmt;
use std::net::SocketAddr;

pub const PROTOCOL_ID: u64 = 0x417_2710_1980;
/// BEP 15 allows up to about 74 info-hashes per scrape.
pub const MAX_SCRAPE: usize = 74;
/// How long one connection-id window lasts (BEP 15: ids are valid two minutes).
pub const WINDOW_SECS: u64 = 120;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UdpRequest {
    Connect {
        tid: u32,
    },
    Announce {
        connection_id: u64,
        tid: u32,
        announce: Announce,
    },
    Scrape {
        connection_id: u64,
        tid: u32,
        hashes: Vec<[u8; 20]>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UdpReply {
    Connect { tid: u32, connection_id: u64 },
    Announce { tid: u32, reply: AnnounceReply },
    Scrape { tid: u32, stats: Vec<ScrapeStats> },
    Error { tid: u32, message: String },
}

/// Datagrams we do not answer at all (BEP 15: too short, wrong protocol id, unknown action).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped(pub &'static str);

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dropped a UDP tracker datagram: {}", self.0)
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap_or([0; 4]))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]))
}
fn twenty(b: &[u8], at: usize) -> [u8; 20] {
    b[at..at + 20].try_into().unwrap_or([0; 20])
}

pub fn parse_request(b: &[u8]) -> Result<UdpRequest, Dropped> {
    if b.len() < 16 {
        return Err(Dropped("shorter than 16 bytes"));
    }
    let (connection_id, action, tid) = (u64_at(b, 0), u32_at(b, 8), u32_at(b, 12));
    match action {
        0 if connection_id == PROTOCOL_ID => Ok(UdpRequest::Connect { tid }),
        0 => Err(Dropped("connect without the protocol id")),
        1 => {
            if b.len() < 98 {
                return Err(Dropped("announce shorter than 98 bytes"));
            }
            let event = match u32_at(b, 80) {
                1 => Event::Completed,
                2 => Event::Started,
                3 => Event::Stopped,
                _ => Event::None,
            };
            let numwant = u32_at(b, 92) as i32;
            Ok(UdpRequest::Announce {
                connection_id,
                tid,
                announce: Announce {
                    info_hash: twenty(b, 16),
                    peer_id: twenty(b, 36),
                    downloaded: u64_at(b, 56),
                    left: u64_at(b, 64),
                    uploaded: u64_at(b, 72),
                    event,
                    port: u16::from_be_bytes([b[96], b[97]]),
                    compact: true,
                    numwant: if numwant < 0 {
                        DEFAULT_NUMWANT
                    } else {
                        (numwant as u32).min(MAX_NUMWANT)
                    },
                },
            })
        }
        2 => {
            let hashes: Vec<[u8; 20]> = b[16..]
                .chunks_exact(20)
                .take(MAX_SCRAPE)
                .map(|c| twenty(c, 0))
                .collect();
            Ok(UdpRequest::Scrape {
                connection_id,
                tid,
                hashes,
            })
        }
        _ => Err(Dropped("unknown action")),
    }
}

pub fn encode_request(r: &UdpRequest) -> Vec<u8> {
    let mut out = Vec::with_capacity(98);
    match r {
        UdpRequest::Connect { tid } => {
            out.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
            out.extend_from_slice(&0u32.to_be_bytes());
            out.extend_from_slice(&tid.to_be_bytes());
        }
        UdpRequest::Announce {
            connection_id,
            tid,
            announce: a,
        } => {
            out.extend_from_slice(&connection_id.to_be_bytes());
            out.extend_from_slice(&1u32.to_be_bytes());
            out.extend_from_slice(&tid.to_be_bytes());
            out.extend_from_slice(&a.info_hash);
            out.extend_from_slice(&a.peer_id);
            out.extend_from_slice(&a.downloaded.to_be_bytes());
            out.extend_from_slice(&a.left.to_be_bytes());
            out.extend_from_slice(&a.uploaded.to_be_bytes());
            let event: u32 = match a.event {
                Event::None => 0,
                Event::Completed => 1,
                Event::Started => 2,
                Event::Stopped => 3,
            };
            out.extend_from_slice(&event.to_be_bytes());
            out.extend_from_slice(&0u32.to_be_bytes()); // ip: the source address
            out.extend_from_slice(&0u32.to_be_bytes()); // key
            out.extend_from_slice(&(a.numwant as i32).to_be_bytes());
            out.extend_from_slice(&a.port.to_be_bytes());
        }
        UdpRequest::Scrape {
            connection_id,
            tid,
            hashes,
        } => {
            out.extend_from_slice(&connection_id.to_be_bytes());
            out.extend_from_slice(&2u32.to_be_bytes());
            out.extend_from_slice(&tid.to_be_bytes());
            for h in hashes {
                out.extend_from_slice(h);
            }
        }
    }
    out
}

pub fn encode_reply(r: &UdpReply) -> Vec<u8> {
    let mut out = Vec::new();
    let head = |out: &mut Vec<u8>, action: u32, tid: u32| {
        out.extend_from_slice(&action.to_be_bytes());
        out.extend_from_slice(&tid.to_be_bytes());
    };
    match r {
        UdpReply::Connect { tid, connection_id } => {
            head(&mut out, 0, *tid);
            out.extend_from_slice(&connection_id.to_be_bytes());
        }
        UdpReply::Announce { tid, reply } => {
            head(&mut out, 1, *tid);
            for n in [reply.interval, reply.incomplete, reply.complete] {
                out.extend_from_slice(&n.to_be_bytes());
            }
            out.extend_from_slice(&compact_peers(&reply.peers));
        }
        UdpReply::Scrape { tid, stats } => {
            head(&mut out, 2, *tid);
            for s in stats {
                for n in [s.complete, s.downloaded, s.incomplete] {
                    out.extend_from_slice(&n.to_be_bytes());
                }
            }
        }
        UdpReply::Error { tid, message } => {
            head(&mut out, 3, *tid);
            out.extend_from_slice(message.as_bytes());
        }
    }
    out
}

pub fn parse_reply(b: &[u8]) -> Result<UdpReply, Dropped> {
    if b.len() < 8 {
        return Err(Dropped("reply shorter than 8 bytes"));
    }
    let (action, tid) = (u32_at(b, 0), u32_at(b, 4));
    match action {
        0 if b.len() >= 16 => Ok(UdpReply::Connect {
            tid,
            connection_id: u64_at(b, 8),
        }),
        1 if b.len() >= 20 => Ok(UdpReply::Announce {
            tid,
            reply: AnnounceReply {
                interval: u32_at(b, 8),
                incomplete: u32_at(b, 12),
                complete: u32_at(b, 16),
                peers: parse_compact_peers(&b[20..]),
            },
        }),
        2 => Ok(UdpReply::Scrape {
            tid,
            stats: b[8..]
                .chunks_exact(12)
                .map(|c| ScrapeStats {
                    complete: u32_at(c, 0),
                    downloaded: u32_at(c, 4),
                    incomplete: u32_at(c, 8),
                })
                .collect(),
        }),
        3 => Ok(UdpReply::Error {
            tid,
            message: String::from_utf8_lossy(&b[8..]).into_owned(),
        }),
        _ => Err(Dropped("unknown or short reply")),
    }
}

/// The connection id for `addr` in time window `window` (seconds / [`WINDOW_SECS`]).
pub fn connection_id(secret: &[u8; 32], addr: SocketAddr, window: u64) -> u64 {
    use sha1::{Digest, Sha1};
    let mut h = Sha1::new();
    h.update(secret);
    h.update(addr.to_string().as_bytes());
    h.update(window.to_be_bytes());
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().unwrap_or([0; 8]))
}

/// A BEP 15 request as a `--trace` line shows it.
pub fn request_summary(r: &UdpRequest) -> String {
    match r {
        UdpRequest::Connect { .. } => "connect".into(),
        UdpRequest::Announce { announce, .. } => super::announce::announce_summary(announce),
        UdpRequest::Scrape { hashes, .. } => format!("scrape {} info-hashes", hashes.len()),
    }
}

/// A BEP 15 reply as a `--trace` line shows it.
pub fn reply_summary(r: &UdpReply) -> String {
    match r {
        UdpReply::Connect { .. } => "connected".into(),
        UdpReply::Announce { reply, .. } => super::announce::reply_summary(reply),
        UdpReply::Scrape { stats, .. } => format!("scrape reply: {} torrents", stats.len()),
        UdpReply::Error { message, .. } => format!("error: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bt::announce::PeerEntry;

    #[test]
    fn requests_round_trip() {
        let a = Announce {
            info_hash: [1; 20],
            peer_id: [2; 20],
            port: 6881,
            uploaded: 3,
            downloaded: 4,
            left: 5,
            event: Event::Stopped,
            compact: true,
            numwant: 10,
        };
        for r in [
            UdpRequest::Connect { tid: 9 },
            UdpRequest::Announce {
                connection_id: 77,
                tid: 8,
                announce: a,
            },
            UdpRequest::Scrape {
                connection_id: 77,
                tid: 7,
                hashes: vec![[3; 20], [4; 20]],
            },
        ] {
            assert_eq!(parse_request(&encode_request(&r)).unwrap(), r);
        }
        assert_eq!(encode_request(&UdpRequest::Connect { tid: 0 }).len(), 16);
    }

    #[test]
    fn replies_round_trip() {
        let reply = AnnounceReply {
            interval: 60,
            complete: 1,
            incomplete: 2,
            peers: vec![PeerEntry {
                addr: "127.0.0.1:5".parse().unwrap(),
                peer_id: None,
            }],
        };
        for r in [
            UdpReply::Connect {
                tid: 1,
                connection_id: 2,
            },
            UdpReply::Announce { tid: 3, reply },
            UdpReply::Scrape {
                tid: 4,
                stats: vec![ScrapeStats {
                    complete: 1,
                    downloaded: 2,
                    incomplete: 3,
                }],
            },
            UdpReply::Error {
                tid: 5,
                message: "bad connection id".into(),
            },
        ] {
            assert_eq!(parse_reply(&encode_reply(&r)).unwrap(), r);
        }
    }

    #[test]
    fn short_or_foreign_datagrams_are_dropped() {
        assert!(parse_request(&[0; 15]).is_err());
        let mut c = encode_request(&UdpRequest::Connect { tid: 1 });
        c[0] = 9;
        assert!(parse_request(&c).is_err());
        let mut a = vec![0u8; 97];
        a[11] = 1;
        assert!(parse_request(&a).is_err());
    }

    #[test]
    fn connection_ids_depend_on_secret_address_and_window() {
        let addr: SocketAddr = "127.0.0.1:1000".parse().unwrap();
        let id = connection_id(&[1; 32], addr, 5);
        assert_eq!(id, connection_id(&[1; 32], addr, 5));
        assert_ne!(id, connection_id(&[2; 32], addr, 5));
        assert_ne!(
            id,
            connection_id(&[1; 32], "127.0.0.1:1001".parse().unwrap(), 5)
        );
        assert_ne!(id, connection_id(&[1; 32], addr, 6));
    }
}
