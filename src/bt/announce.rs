//! The HTTP tracker protocol (BEP 3, compact peers BEP 23): announce and scrape queries and
//! their bencoded replies, both directions. Pure: no sockets.
//!
//! `info_hash` and `peer_id` are raw 20-byte strings percent-encoded in the query; they are
//! decoded as bytes, never as UTF-8. The tracker answers in the compact form (6 bytes per IPv4
//! peer) unless the client asks `compact=0`, and clients here accept both forms.

use super::bencode::{self, Owned, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

/// Default and largest number of peers in one reply.
pub const DEFAULT_NUMWANT: u32 = 50;
pub const MAX_NUMWANT: u32 = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    None,
    Started,
    Completed,
    Stopped,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::None => "",
            Event::Started => "started",
            Event::Completed => "completed",
            Event::Stopped => "stopped",
        }
    }
}

/// One announce, from either transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    pub info_hash: [u8; 20],
    pub peer_id: [u8; 20],
    pub port: u16,
    pub uploaded: u64,
    pub downloaded: u64,
    pub left: u64,
    pub event: Event,
    pub compact: bool,
    pub numwant: u32,
}

/// A tracker request read from an HTTP request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpRequest {
    Announce(Announce),
    Scrape(Vec<[u8; 20]>),
}

/// A peer in a reply; the id is known only from the dictionary form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerEntry {
    pub addr: SocketAddrV4,
    pub peer_id: Option<[u8; 20]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceReply {
    pub interval: u32,
    pub complete: u32,
    pub incomplete: u32,
    pub peers: Vec<PeerEntry>,
}

/// Counts for one torrent in a scrape reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScrapeStats {
    pub complete: u32,
    pub downloaded: u32,
    pub incomplete: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnnounceError {
    /// Not `GET /announce?…` or `GET /scrape?…` (answered with 404).
    NotFound,
    /// A bad announce: answered with `failure reason` and this text.
    Bad(String),
    /// A reply we could not read (client side).
    BadReply(String),
    /// The tracker said no (client side).
    Failure(String),
}

impl fmt::Display for AnnounceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnnounceError::NotFound => write!(f, "not a tracker request"),
            AnnounceError::Bad(why) => write!(f, "{why}"),
            AnnounceError::BadReply(why) => write!(f, "the tracker's reply is unreadable: {why}"),
            AnnounceError::Failure(why) => write!(f, "the tracker refused: {why}"),
        }
    }
}

impl std::error::Error for AnnounceError {}

fn bad(s: impl Into<String>) -> AnnounceError {
    AnnounceError::Bad(s.into())
}

/// `%XX` and `+` decoding to raw bytes.
pub fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

/// Percent-encodes every byte but RFC 3986's unreserved characters.
pub fn percent_encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for &c in bytes {
        if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
            s.push(c as char);
        } else {
            s.push_str(&format!("%{c:02X}"));
        }
    }
    s
}

fn twenty(v: &[u8], what: &str) -> Result<[u8; 20], AnnounceError> {
    v.try_into()
        .map_err(|_| bad(format!("{what} must be 20 bytes, not {}", v.len())))
}

/// Parses `GET /announce?… HTTP/1.x` (or `/scrape`), the first line of an HTTP request.
pub fn parse_request_line(line: &str) -> Result<HttpRequest, AnnounceError> {
    let mut parts = line.split(' ');
    let (Some("GET"), Some(target)) = (parts.next(), parts.next()) else {
        return Err(AnnounceError::NotFound);
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let q = Query::parse(query)?;
    match path {
        "/announce" => q.announce().map(HttpRequest::Announce),
        "/scrape" => {
            let hashes = q
                .params
                .iter()
                .filter(|(k, _)| *k == "info_hash")
                .map(|(_, v)| twenty(v, "info_hash"))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(HttpRequest::Scrape(hashes))
        }
        _ => Err(AnnounceError::NotFound),
    }
}

/// A request's query string, percent-decoded, in order (scrape repeats `info_hash`).
struct Query<'a> {
    params: Vec<(&'a str, Vec<u8>)>,
}

impl<'a> Query<'a> {
    fn parse(query: &'a str) -> Result<Query<'a>, AnnounceError> {
        let mut params = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v).ok_or_else(|| bad(format!("bad percent-encoding in {k}")))?;
            params.push((k, v));
        }
        Ok(Query { params })
    }

    /// The first value of `key`.
    fn one(&self, key: &str) -> Option<&[u8]> {
        self.params
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_slice())
    }

    fn number(&self, key: &str) -> Result<Option<u64>, AnnounceError> {
        match self.one(key) {
            None => Ok(None),
            Some(v) => std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .map(Some)
                .ok_or_else(|| bad(format!("{key} is not a number"))),
        }
    }

    /// The announce BEP 3 describes: info_hash, peer_id and port required, the rest defaulted.
    fn announce(&self) -> Result<Announce, AnnounceError> {
        let required = |key: &'static str| {
            let v = self.one(key).ok_or_else(|| bad(format!("missing {key}")))?;
            twenty(v, key)
        };
        let (info_hash, peer_id) = (required("info_hash")?, required("peer_id")?);
        let port = self.number("port")?.ok_or_else(|| bad("missing port"))?;
        if port == 0 || port > 65535 {
            return Err(bad("port must be 1..=65535"));
        }
        let event = match self.one("event").unwrap_or(b"") {
            b"" | b"empty" => Event::None,
            b"started" => Event::Started,
            b"completed" => Event::Completed,
            b"stopped" => Event::Stopped,
            _ => return Err(bad("event must be started, completed or stopped")),
        };
        Ok(Announce {
            info_hash,
            peer_id,
            port: port as u16,
            uploaded: self.number("uploaded")?.unwrap_or(0),
            downloaded: self.number("downloaded")?.unwrap_or(0),
            left: self.number("left")?.unwrap_or(0),
            event,
            compact: self.one("compact") != Some(b"0"),
            numwant: self
                .number("numwant")?
                .map_or(DEFAULT_NUMWANT, |n| n.min(MAX_NUMWANT as u64) as u32),
        })
    }
}

/// The path and query of an announce to `base` (which may already carry a query).
pub fn announce_target(base_path: &str, a: &Announce) -> String {
    let sep = if base_path.contains('?') { '&' } else { '?' };
    let mut q = format!(
        "{base_path}{sep}info_hash={}&peer_id={}&port={}&uploaded={}&downloaded={}&left={}&compact={}&numwant={}",
        percent_encode(&a.info_hash),
        percent_encode(&a.peer_id),
        a.port,
        a.uploaded,
        a.downloaded,
        a.left,
        u8::from(a.compact),
        a.numwant
    );
    if a.event != Event::None {
        q.push_str("&event=");
        q.push_str(a.event.as_str());
    }
    q
}

/// 6 bytes per peer: IPv4 then port, big-endian (BEP 23).
pub fn compact_peers(peers: &[PeerEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(peers.len() * 6);
    for p in peers {
        out.extend_from_slice(&p.addr.ip().octets());
        out.extend_from_slice(&p.addr.port().to_be_bytes());
    }
    out
}

pub fn parse_compact_peers(b: &[u8]) -> Vec<PeerEntry> {
    b.chunks_exact(6)
        .map(|c| PeerEntry {
            addr: SocketAddrV4::new(
                Ipv4Addr::new(c[0], c[1], c[2], c[3]),
                u16::from_be_bytes([c[4], c[5]]),
            ),
            peer_id: None,
        })
        .collect()
}

/// The bencoded reply to an announce, compact or dictionary form.
pub fn encode_reply(r: &AnnounceReply, compact: bool) -> Vec<u8> {
    let peers = if compact {
        Owned::Bytes(compact_peers(&r.peers))
    } else {
        Owned::List(
            r.peers
                .iter()
                .map(|p| {
                    let mut d = BTreeMap::new();
                    d.insert(b"ip".to_vec(), Owned::str(&p.addr.ip().to_string()));
                    d.insert(b"port".to_vec(), Owned::Int(p.addr.port() as i64));
                    if let Some(id) = p.peer_id {
                        d.insert(b"peer id".to_vec(), Owned::Bytes(id.to_vec()));
                    }
                    Owned::Dict(d)
                })
                .collect(),
        )
    };
    bencode::encode(&Owned::dict([
        ("complete", Owned::Int(r.complete as i64)),
        ("incomplete", Owned::Int(r.incomplete as i64)),
        ("interval", Owned::Int(r.interval as i64)),
        ("min interval", Owned::Int(r.interval as i64)),
        ("peers", peers),
    ]))
}

pub fn encode_failure(reason: &str) -> Vec<u8> {
    bencode::encode(&Owned::dict([("failure reason", Owned::str(reason))]))
}

pub fn encode_scrape(files: &[([u8; 20], ScrapeStats)]) -> Vec<u8> {
    let mut map = BTreeMap::new();
    for (hash, s) in files {
        map.insert(
            hash.to_vec(),
            Owned::dict([
                ("complete", Owned::Int(s.complete as i64)),
                ("downloaded", Owned::Int(s.downloaded as i64)),
                ("incomplete", Owned::Int(s.incomplete as i64)),
            ]),
        );
    }
    bencode::encode(&Owned::dict([("files", Owned::Dict(map))]))
}

/// Reads a tracker's bencoded announce reply (either peer form); `failure reason` is an error.
pub fn parse_reply(body: &[u8]) -> Result<AnnounceReply, AnnounceError> {
    let v = bencode::decode(body).map_err(|e| AnnounceError::BadReply(e.to_string()))?;
    if let Some(reason) = v.get("failure reason") {
        let text = reason
            .as_bytes()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        return Err(AnnounceError::Failure(text.into_owned()));
    }
    let int = |k: &str| {
        v.get(k)
            .and_then(Value::as_int)
            .unwrap_or(0)
            .clamp(0, u32::MAX as i64) as u32
    };
    let peers = match v.get("peers") {
        Some(Value::Bytes(b)) => parse_compact_peers(b),
        Some(Value::List(list)) => list
            .iter()
            .filter_map(|p| {
                let ip: Ipv4Addr = p.get("ip")?.as_str()?.parse().ok()?;
                let port = u16::try_from(p.get("port")?.as_int()?).ok()?;
                let peer_id = p
                    .get("peer id")
                    .and_then(Value::as_bytes)
                    .and_then(|b| b.try_into().ok());
                Some(PeerEntry {
                    addr: SocketAddrV4::new(ip, port),
                    peer_id,
                })
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(AnnounceReply {
        interval: int("interval"),
        complete: int("complete"),
        incomplete: int("incomplete"),
        peers,
    })
}

/// IPv4 part of a socket address (trackers here serve IPv4 peer lists only).
pub fn v4(addr: SocketAddr) -> Option<SocketAddrV4> {
    match addr {
        SocketAddr::V4(a) => Some(a),
        SocketAddr::V6(a) => a
            .ip()
            .to_ipv4_mapped()
            .map(|ip| SocketAddrV4::new(ip, a.port())),
    }
}

/// An announce as a `--trace` line shows it.
pub fn announce_summary(a: &Announce) -> String {
    let event = match a.event {
        Event::None => String::new(),
        e => format!(" event={}", e.as_str()),
    };
    format!(
        "announce {}{event} port={} left={}",
        crate::core::digest::to_hex(&a.info_hash),
        a.port,
        a.left
    )
}

/// A tracker's announce reply as a `--trace` line shows it.
pub fn reply_summary(r: &AnnounceReply) -> String {
    let peers: Vec<String> = r.peers.iter().map(|p| p.addr.to_string()).collect();
    format!(
        "interval {} s, {} seeds, {} leechers, peers [{}]",
        r.interval,
        r.complete,
        r.incomplete,
        peers.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Announce {
        Announce {
            info_hash: [0xab; 20],
            peer_id: *b"-PS0100-\x00\x01 +%&=abcde",
            port: 6881,
            uploaded: 1,
            downloaded: 2,
            left: 3,
            event: Event::Started,
            compact: true,
            numwant: 50,
        }
    }

    #[test]
    fn announce_query_round_trips_raw_bytes() {
        let a = sample();
        let line = format!("GET {} HTTP/1.1", announce_target("/announce", &a));
        assert_eq!(parse_request_line(&line).unwrap(), HttpRequest::Announce(a));
    }

    #[test]
    fn bad_announces_say_why() {
        let e = parse_request_line("GET /announce?peer_id=x HTTP/1.0").unwrap_err();
        assert_eq!(e, bad("missing info_hash"));
        let e = parse_request_line("GET /announce?info_hash=%AB&peer_id=x HTTP/1.0").unwrap_err();
        assert!(e.to_string().contains("20 bytes"));
        assert_eq!(
            parse_request_line("GET /favicon.ico HTTP/1.0"),
            Err(AnnounceError::NotFound)
        );
        assert_eq!(
            parse_request_line("POST /announce HTTP/1.0"),
            Err(AnnounceError::NotFound)
        );
    }

    #[test]
    fn replies_round_trip_in_both_peer_forms() {
        let r = AnnounceReply {
            interval: 30,
            complete: 1,
            incomplete: 2,
            peers: vec![PeerEntry {
                addr: "127.0.0.1:6881".parse().unwrap(),
                peer_id: Some([7; 20]),
            }],
        };
        let compact = parse_reply(&encode_reply(&r, true)).unwrap();
        assert_eq!(compact.peers[0].addr, r.peers[0].addr);
        assert_eq!(compact.peers[0].peer_id, None);
        assert_eq!(parse_reply(&encode_reply(&r, false)).unwrap(), r);
        assert_eq!(
            parse_reply(&encode_failure("no")),
            Err(AnnounceError::Failure("no".into()))
        );
    }

    #[test]
    fn scrape_lists_every_info_hash() {
        let line = format!(
            "GET /scrape?info_hash={}&info_hash={} HTTP/1.0",
            percent_encode(&[1; 20]),
            percent_encode(&[2; 20])
        );
        assert_eq!(
            parse_request_line(&line).unwrap(),
            HttpRequest::Scrape(vec![[1; 20], [2; 20]])
        );
        let body = encode_scrape(&[(
            [1; 20],
            ScrapeStats {
                complete: 1,
                downloaded: 2,
                incomplete: 3,
            },
        )]);
        let v = bencode::decode(&body).unwrap();
        let files = v.get("files").unwrap();
        assert!(matches!(files, Value::Dict(e) if e[0].key == [1u8; 20]));
    }
}
