//! The tracker's table: which peers are in which torrent's swarm, and who went silent.
//!
//! Plain data driven by [`SwarmTable::announce`] and [`SwarmTable::scrape`] with the time passed
//! in; no sockets, no clock. A peer is keyed by (info-hash, peer id); its address is the source
//! address of the announce (HTTP: the TCP peer's IP; UDP: the datagram's) with the port it
//! announced. A peer not heard from for `expiry` is dropped on the next call. A `stopped` event
//! removes the peer at once; `completed` counts one download for scrape's `downloaded`.

use super::announce::{Announce, AnnounceReply, Event, PeerEntry, ScrapeStats};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
struct Peer {
    addr: SocketAddrV4,
    left: u64,
    last_seen: Instant,
}

#[derive(Debug, Default)]
struct Swarm {
    peers: HashMap<[u8; 20], Peer>,
    downloaded: u32,
}

impl Swarm {
    fn stats(&self) -> ScrapeStats {
        let complete = self.peers.values().filter(|p| p.left == 0).count() as u32;
        ScrapeStats {
            complete,
            downloaded: self.downloaded,
            incomplete: self.peers.len() as u32 - complete,
        }
    }
}

pub struct SwarmTable {
    swarms: HashMap<[u8; 20], Swarm>,
    interval: Duration,
    expiry: Duration,
    /// When silent peers were last swept: sweeping walks every peer, so at most once a second.
    swept: Option<Instant>,
}

impl SwarmTable {
    /// Peers announce every `interval`; one silent for `expiry` is dropped.
    pub fn new(interval: Duration, expiry: Duration) -> SwarmTable {
        SwarmTable {
            swarms: HashMap::new(),
            interval,
            expiry,
            swept: None,
        }
    }

    fn expire(&mut self, now: Instant) {
        if self
            .swept
            .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1))
        {
            return;
        }
        self.swept = Some(now);
        let expiry = self.expiry;
        for swarm in self.swarms.values_mut() {
            swarm
                .peers
                .retain(|_, p| now.saturating_duration_since(p.last_seen) < expiry);
        }
        self.swarms
            .retain(|_, s| !s.peers.is_empty() || s.downloaded > 0);
    }

    /// Records `a` from source IP `ip` and answers with up to `numwant` other peers.
    pub fn announce(&mut self, a: &Announce, ip: Ipv4Addr, now: Instant) -> AnnounceReply {
        self.expire(now);
        let swarm = self.swarms.entry(a.info_hash).or_default();
        if a.event == Event::Stopped {
            swarm.peers.remove(&a.peer_id);
        } else {
            let addr = SocketAddrV4::new(ip, a.port);
            let before = swarm.peers.insert(
                a.peer_id,
                Peer {
                    addr,
                    left: a.left,
                    last_seen: now,
                },
            );
            let was_incomplete = before.is_none_or(|p| p.left > 0);
            if a.event == Event::Completed && was_incomplete {
                swarm.downloaded += 1;
            }
        }
        let stats = swarm.stats();
        let peers = swarm
            .peers
            .iter()
            .filter(|(id, _)| **id != a.peer_id)
            // A seed gains nothing from other seeds.
            .filter(|(_, p)| a.left > 0 || p.left > 0)
            .take(a.numwant as usize)
            .map(|(id, p)| PeerEntry {
                addr: p.addr,
                peer_id: Some(*id),
            })
            .collect();
        AnnounceReply {
            interval: self.interval.as_secs().max(1) as u32,
            complete: stats.complete,
            incomplete: stats.incomplete,
            peers,
        }
    }

    /// Counts for each info-hash (zeros for unknown ones, as BEP 48 trackers commonly do).
    pub fn scrape(&mut self, hashes: &[[u8; 20]], now: Instant) -> Vec<([u8; 20], ScrapeStats)> {
        self.expire(now);
        hashes
            .iter()
            .map(|h| (*h, self.swarms.get(h).map(Swarm::stats).unwrap_or_default()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(id: u8, left: u64, event: Event) -> Announce {
        Announce {
            info_hash: [9; 20],
            peer_id: [id; 20],
            port: 6000 + id as u16,
            uploaded: 0,
            downloaded: 0,
            left,
            event,
            compact: true,
            numwant: 50,
        }
    }

    const IP: Ipv4Addr = Ipv4Addr::LOCALHOST;

    #[test]
    fn announcers_see_each_other_but_not_themselves() {
        let mut t = SwarmTable::new(Duration::from_secs(30), Duration::from_secs(90));
        let now = Instant::now();
        let r = t.announce(&ann(1, 0, Event::Started), IP, now);
        assert!(r.peers.is_empty());
        assert_eq!((r.complete, r.incomplete, r.interval), (1, 0, 30));
        let r = t.announce(&ann(2, 10, Event::Started), IP, now);
        assert_eq!(r.peers.len(), 1);
        assert_eq!(r.peers[0].addr, SocketAddrV4::new(IP, 6001));
        assert_eq!((r.complete, r.incomplete), (1, 1));
    }

    #[test]
    fn seeds_are_not_sent_other_seeds() {
        let mut t = SwarmTable::new(Duration::from_secs(30), Duration::from_secs(90));
        let now = Instant::now();
        t.announce(&ann(1, 0, Event::Started), IP, now);
        assert!(t
            .announce(&ann(2, 0, Event::Started), IP, now)
            .peers
            .is_empty());
    }

    #[test]
    fn silent_peers_expire_and_stopped_peers_leave_at_once() {
        let mut t = SwarmTable::new(Duration::from_secs(30), Duration::from_secs(90));
        let now = Instant::now();
        t.announce(&ann(1, 5, Event::Started), IP, now);
        t.announce(&ann(2, 5, Event::Started), IP, now);
        t.announce(&ann(2, 5, Event::Stopped), IP, now);
        let r = t.announce(&ann(3, 5, Event::Started), IP, now);
        assert_eq!(r.peers.len(), 1);
        let later = now + Duration::from_secs(91);
        let r = t.announce(&ann(3, 5, Event::None), IP, later);
        assert!(r.peers.is_empty());
    }

    #[test]
    fn completed_counts_once_in_scrape() {
        let mut t = SwarmTable::new(Duration::from_secs(30), Duration::from_secs(90));
        let now = Instant::now();
        t.announce(&ann(1, 5, Event::Started), IP, now);
        t.announce(&ann(1, 0, Event::Completed), IP, now);
        t.announce(&ann(1, 0, Event::Completed), IP, now);
        let s = t.scrape(&[[9; 20], [8; 20]], now);
        assert_eq!(
            s[0].1,
            ScrapeStats {
                complete: 1,
                downloaded: 1,
                incomplete: 0
            }
        );
        assert_eq!(s[1].1, ScrapeStats::default());
    }
}
