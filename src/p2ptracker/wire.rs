//! P2PTracker++ wire format: bare comma-separated ASCII, no terminator, one message per write.
//!
//! Pure functions only. The tracker side is tolerant (spec §3.2): a read is split on newlines and
//! again before every `LOCAL_CHUNKS`/`WHERE_CHUNK` keyword, because public clients send messages
//! back to back and some add `\n`. The client side is strict about what it accepts as a reply to
//! the question it just asked (§3.4).

use std::fmt;

/// Largest chunk index the spec allows.
pub const MAX_IDX: u32 = 1_000_000;
/// Largest tracker reply: clients read with `recv(1024)`.
pub const MAX_REPLY: usize = 1024;
/// A peer's whole answer when it lacks a chunk (esander3616's peer).
pub const CHUNK_NOT_FOUND: &[u8] = b"CHUNK_NOT_FOUND";

const LOCAL_CHUNKS: &str = "LOCAL_CHUNKS";
const WHERE_CHUNK: &str = "WHERE_CHUNK";
const GET_CHUNK_FROM: &str = "GET_CHUNK_FROM";
const CHUNK_LOCATION_UNKNOWN: &str = "CHUNK_LOCATION_UNKNOWN";
const REQUEST_CHUNK: &str = "REQUEST_CHUNK";

/// A holder as announced: the ip text exactly as sent (`localhost` in practice) and the port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Holder {
    pub ip: String,
    pub port: u16,
}

/// What a client sends the tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    LocalChunks {
        idx: u32,
        holder: Holder,
    },
    WhereChunk {
        idx: u32,
    },
    /// `WHERE_CHUNK,<text>` whose index is not valid: still answered, with the text echoed.
    WhereChunkInvalid {
        text: String,
    },
}

/// Why a tracker segment was ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    NotAscii,
    UnknownKeyword(String),
    FieldCount { keyword: &'static str, got: usize },
    BadIndex(String),
    BadIp(String),
    BadPort(String),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::NotAscii => write!(f, "the message is not ASCII"),
            WireError::UnknownKeyword(k) => write!(f, "{k:?} is not a known message"),
            WireError::FieldCount { keyword, got } => {
                write!(f, "{keyword} has {got} fields")
            }
            WireError::BadIndex(t) => write!(f, "{t:?} is not a chunk index in 1..={MAX_IDX}"),
            WireError::BadIp(t) => write!(f, "{t:?} is neither a host name nor an IP address"),
            WireError::BadPort(t) => write!(f, "{t:?} is not a port in 1..=65535"),
        }
    }
}

impl std::error::Error for WireError {}

/// Parses a chunk index: decimal, no sign, no leading zeros, 1..=MAX_IDX.
pub fn parse_idx(text: &str) -> Option<u32> {
    let ok = !text.is_empty()
        && text.len() <= 7
        && text.bytes().all(|b| b.is_ascii_digit())
        && !text.starts_with('0');
    ok.then(|| text.parse::<u32>().ok())
        .flatten()
        .filter(|i| (1..=MAX_IDX).contains(i))
}

/// Parses a port: decimal digits, 1..=65535.
pub fn parse_port(text: &str) -> Option<u16> {
    let ok = !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| text.parse::<u16>().ok())
        .flatten()
        .filter(|p| *p != 0)
}

/// Whether `text` is an address a peer can dial: an IP literal or a host name (RFC 1123 labels
/// of letters, digits and `-`, separated by dots, at most 253 bytes). The spec only forbids `,`
/// and whitespace; anything looser would let `1.2.3.4;rm` or a NUL reach every client.
pub fn valid_host(text: &str) -> bool {
    if text == "localhost" || text.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let name = text.strip_suffix('.').unwrap_or(text);
    !name.is_empty() && text.len() <= 253 && name.split('.').all(label_ok)
}

/// Splits raw tracker input into message segments (spec §3.2): on `\n` (dropping `\r`), then
/// before every keyword not at a segment's start; trimmed; empty ones skipped.
pub fn split_segments(input: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    for line in input.split(|b| *b == b'\n') {
        let mut start = 0;
        let mut i = 1;
        while i < line.len() {
            let rest = &line[i..];
            if rest.starts_with(LOCAL_CHUNKS.as_bytes()) || rest.starts_with(WHERE_CHUNK.as_bytes())
            {
                push_trimmed(&mut out, &line[start..i]);
                start = i;
                i += WHERE_CHUNK.len();
            } else {
                i += 1;
            }
        }
        push_trimmed(&mut out, &line[start..]);
    }
    out
}

fn push_trimmed<'a>(out: &mut Vec<&'a [u8]>, seg: &'a [u8]) {
    let is_pad = |b: &u8| *b == b' ' || *b == b'\r' || *b == b'\t';
    let start = seg.iter().position(|b| !is_pad(b)).unwrap_or(seg.len());
    let end = seg
        .iter()
        .rposition(|b| !is_pad(b))
        .map_or(start, |e| e + 1);
    if start < end {
        out.push(&seg[start..end]);
    }
}

/// Parses one segment from [`split_segments`].
pub fn parse_request(segment: &[u8]) -> Result<Request, WireError> {
    if !segment.is_ascii() {
        return Err(WireError::NotAscii);
    }
    let text = std::str::from_utf8(segment).map_err(|_| WireError::NotAscii)?;
    let fields: Vec<&str> = text.split(',').map(str::trim).collect();
    match fields[0] {
        LOCAL_CHUNKS => {
            if fields.len() != 4 {
                return Err(WireError::FieldCount {
                    keyword: LOCAL_CHUNKS,
                    got: fields.len(),
                });
            }
            let idx = parse_idx(fields[1]).ok_or_else(|| WireError::BadIndex(fields[1].into()))?;
            if !valid_host(fields[2]) {
                return Err(WireError::BadIp(fields[2].into()));
            }
            let port = parse_port(fields[3]).ok_or_else(|| WireError::BadPort(fields[3].into()))?;
            Ok(Request::LocalChunks {
                idx,
                holder: Holder {
                    ip: fields[2].to_string(),
                    port,
                },
            })
        }
        WHERE_CHUNK => {
            if fields.len() != 2 {
                return Err(WireError::FieldCount {
                    keyword: WHERE_CHUNK,
                    got: fields.len(),
                });
            }
            Ok(match parse_idx(fields[1]) {
                Some(idx) => Request::WhereChunk { idx },
                None => Request::WhereChunkInvalid {
                    text: fields[1].to_string(),
                },
            })
        }
        other => Err(WireError::UnknownKeyword(
            other.chars().take(40).collect::<String>(),
        )),
    }
}

/// `LOCAL_CHUNKS,<idx>,<ip>,<port>`.
pub fn encode_local_chunks(idx: u32, ip: &str, port: u16) -> String {
    format!("{LOCAL_CHUNKS},{idx},{ip},{port}")
}

/// `WHERE_CHUNK,<idx>`.
pub fn encode_where_chunk(idx: u32) -> String {
    format!("{WHERE_CHUNK},{idx}")
}

/// `REQUEST_CHUNK,<idx>`.
pub fn encode_request_chunk(idx: u32) -> String {
    format!("{REQUEST_CHUNK},{idx}")
}

/// `GET_CHUNK_FROM,<idx>,<ip>,<port>,…` with as many holders as fit in [`MAX_REPLY`] bytes;
/// returns the reply and how many holders it names.
pub fn encode_get_chunk_from(idx: u32, holders: &[Holder]) -> (String, usize) {
    // Built by hand rather than with `format!`: this is the tracker's per-request work, and
    // formatting was most of it (benches/instructions.rs).
    let mut out = String::with_capacity(MAX_REPLY);
    out.push_str(GET_CHUNK_FROM);
    out.push(',');
    push_decimal(&mut out, idx);
    let mut used = 0;
    for h in holders {
        let len = 2 + h.ip.len() + decimal_len(h.port.into());
        if out.len() + len > MAX_REPLY {
            break;
        }
        out.push(',');
        out.push_str(&h.ip);
        out.push(',');
        push_decimal(&mut out, h.port.into());
        used += 1;
    }
    (out, used)
}

/// `CHUNK_LOCATION_UNKNOWN,<idx>` for a valid index.
pub fn encode_unknown_idx(idx: u32) -> String {
    let mut out = String::with_capacity(CHUNK_LOCATION_UNKNOWN.len() + 11);
    out.push_str(CHUNK_LOCATION_UNKNOWN);
    out.push(',');
    push_decimal(&mut out, idx);
    out
}

/// Appends `n` in decimal, without the formatting machinery.
pub fn push_decimal(out: &mut String, n: u32) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[i..].iter().map(|&d| char::from(d)));
}

fn decimal_len(n: u32) -> usize {
    n.checked_ilog10().map_or(1, |l| l as usize + 1)
}

/// `CHUNK_LOCATION_UNKNOWN,<idx text>`, the echoed text cut so the reply stays within
/// [`MAX_REPLY`] bytes like every other reply (an invalid index can be any length).
pub fn encode_unknown(idx_text: &str) -> String {
    let room = MAX_REPLY - CHUNK_LOCATION_UNKNOWN.len() - 1;
    let mut cut = idx_text.len().min(room);
    while !idx_text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{CHUNK_LOCATION_UNKNOWN},{}", &idx_text[..cut])
}

/// What a tracker reply said about the chunk just asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Holders(Vec<Holder>),
    Unknown,
}

/// Parses the tracker's reply to `WHERE_CHUNK,<asked>`. Anything that is not one of the two
/// replies for exactly that index is `None` (treated as unknown for this round). Holder pairs
/// that do not parse are skipped.
pub fn parse_reply(bytes: &[u8], asked: u32) -> Option<Reply> {
    let text = std::str::from_utf8(bytes).ok()?;
    let text = text.trim_end_matches(['\r', '\n']);
    let fields: Vec<&str> = text.split(',').collect();
    if fields.len() < 2 || parse_idx(fields[1]) != Some(asked) {
        return None;
    }
    match fields[0] {
        CHUNK_LOCATION_UNKNOWN if fields.len() == 2 => Some(Reply::Unknown),
        GET_CHUNK_FROM => Some(Reply::Holders(
            fields[2..]
                .chunks_exact(2)
                .filter_map(|pair| {
                    let port = parse_port(pair[1].trim())?;
                    let ip = pair[0].trim();
                    valid_host(ip).then(|| Holder {
                        ip: ip.to_string(),
                        port,
                    })
                })
                .collect(),
        )),
        _ => None,
    }
}

/// Parses a peer's `REQUEST_CHUNK,<idx>` (trailing whitespace tolerated).
pub fn parse_request_chunk(bytes: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(bytes).ok()?.trim_end();
    let idx = text.strip_prefix("REQUEST_CHUNK,")?;
    parse_idx(idx)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hand_built_numbers_match_format() {
        for n in [0, 7, 9, 10, 99, 100, 65_535, 999_999_999, u32::MAX] {
            let mut s = String::new();
            push_decimal(&mut s, n);
            assert_eq!(s, n.to_string());
            assert_eq!(decimal_len(n), s.len());
            assert_eq!(encode_unknown_idx(n), encode_unknown(&n.to_string()));
        }
    }

    use super::*;

    fn h(ip: &str, port: u16) -> Holder {
        Holder {
            ip: ip.into(),
            port,
        }
    }

    #[test]
    fn every_message_encodes_exactly() {
        assert_eq!(
            encode_local_chunks(2, "localhost", 7003),
            "LOCAL_CHUNKS,2,localhost,7003"
        );
        assert_eq!(encode_where_chunk(3), "WHERE_CHUNK,3");
        assert_eq!(encode_request_chunk(9), "REQUEST_CHUNK,9");
        assert_eq!(encode_unknown("7"), "CHUNK_LOCATION_UNKNOWN,7");
        let (r, n) = encode_get_chunk_from(1, &[h("localhost", 7001), h("localhost", 7002)]);
        assert_eq!(r, "GET_CHUNK_FROM,1,localhost,7001,localhost,7002");
        assert_eq!(n, 2);
    }

    #[test]
    fn requests_parse_bare_and_newline_terminated() {
        let want = Request::LocalChunks {
            idx: 2,
            holder: h("localhost", 7003),
        };
        for input in [
            &b"LOCAL_CHUNKS,2,localhost,7003"[..],
            b"LOCAL_CHUNKS,2,localhost,7003\n",
            b"LOCAL_CHUNKS,2,localhost,7003\r\n",
            b"  LOCAL_CHUNKS,2,localhost,7003  ",
        ] {
            let segs = split_segments(input);
            assert_eq!(segs.len(), 1, "{input:?}");
            assert_eq!(parse_request(segs[0]).unwrap(), want);
        }
        assert_eq!(
            parse_request(b"WHERE_CHUNK,3").unwrap(),
            Request::WhereChunk { idx: 3 }
        );
    }

    #[test]
    fn merged_messages_split_at_each_keyword() {
        let segs = split_segments(
            b"LOCAL_CHUNKS,2,localhost,7003WHERE_CHUNK,3\nWHERE_CHUNK,4WHERE_CHUNK,5\n\n",
        );
        let parsed: Vec<Request> = segs.iter().map(|s| parse_request(s).unwrap()).collect();
        assert_eq!(
            parsed,
            vec![
                Request::LocalChunks {
                    idx: 2,
                    holder: h("localhost", 7003)
                },
                Request::WhereChunk { idx: 3 },
                Request::WhereChunk { idx: 4 },
                Request::WhereChunk { idx: 5 },
            ]
        );
    }

    #[test]
    fn malformed_segments_are_errors_not_panics() {
        for bad in [
            &b"HELLO"[..],
            b"LOCAL_CHUNKS,1,localhost",
            b"LOCAL_CHUNKS,0,localhost,7000",
            b"LOCAL_CHUNKS,-1,localhost,7000",
            b"LOCAL_CHUNKS,01,localhost,7000",
            b"LOCAL_CHUNKS,1000001,localhost,7000",
            b"LOCAL_CHUNKS,99999999999999999999,localhost,7000",
            b"LOCAL_CHUNKS,1,localhost,0",
            b"LOCAL_CHUNKS,1,localhost,65536",
            b"LOCAL_CHUNKS,1,,7000",
            b"LOCAL_CHUNKS,1,local host,7000",
            b"WHERE_CHUNK",
            b"WHERE_CHUNK,1,2",
            b"\xff\xfeWHERE",
            b"WHERE_CHUNK,\xc3\xa9",
        ] {
            assert!(parse_request(bad).is_err(), "{bad:?}");
        }
        assert!(split_segments(b"").is_empty());
        assert!(split_segments(b"\n\r\n   \n").is_empty());
    }

    #[test]
    fn invalid_where_chunk_index_is_answered_with_its_text() {
        for (input, text) in [
            (&b"WHERE_CHUNK,abc"[..], "abc"),
            (b"WHERE_CHUNK,-5", "-5"),
            (b"WHERE_CHUNK,99999999", "99999999"),
            (b"WHERE_CHUNK,", ""),
        ] {
            assert_eq!(
                parse_request(input).unwrap(),
                Request::WhereChunkInvalid { text: text.into() }
            );
        }
    }

    #[test]
    fn huge_lines_do_not_panic() {
        let mut big = b"WHERE_CHUNK,".to_vec();
        big.extend(std::iter::repeat_n(b'9', 1 << 20));
        let segs = split_segments(&big);
        assert_eq!(segs.len(), 1);
        assert!(matches!(
            parse_request(segs[0]),
            Ok(Request::WhereChunkInvalid { .. })
        ));
        let garbage = crate::core::digest::sha256_hex(b"x").repeat(40_000);
        for s in split_segments(garbage.as_bytes()) {
            assert!(parse_request(s).is_err());
        }
    }

    #[test]
    fn unknown_reply_to_a_huge_index_is_capped_at_1024_bytes() {
        let digits = "9".repeat(5000);
        let r = encode_unknown(&digits);
        assert_eq!(r.len(), MAX_REPLY);
        assert!(r.starts_with("CHUNK_LOCATION_UNKNOWN,999"));
        assert_eq!(
            encode_unknown("é".repeat(600).as_str()).len(),
            MAX_REPLY - 1
        );
    }

    #[test]
    fn only_host_names_and_ip_literals_are_addresses() {
        for good in [
            "localhost",
            "127.0.0.1",
            "::1",
            "fe80::1",
            "lab-pc-07.cs.example.edu",
            "example.com.",
            "h1",
        ] {
            assert!(valid_host(good), "{good}");
        }
        for bad in [
            "",
            "1.2.3.4;rm",
            "\x00",
            "a b",
            "-lead",
            "trail-",
            "a..b",
            "under_score",
            "semi;colon",
            "../etc",
            &"a".repeat(64),
            &format!("{}.com", "a.".repeat(130)),
        ] {
            assert!(!valid_host(bad), "{bad:?}");
        }
        for seg in [
            &b"LOCAL_CHUNKS,1,1.2.3.4;rm,7000"[..],
            b"LOCAL_CHUNKS,1,\x00,7000",
            b"LOCAL_CHUNKS,1,$(reboot),7000",
        ] {
            assert!(
                matches!(parse_request(seg), Err(WireError::BadIp(_))),
                "{seg:?}"
            );
        }
        assert_eq!(
            parse_reply(b"GET_CHUNK_FROM,3,a;b,7001,localhost,7002", 3),
            Some(Reply::Holders(vec![h("localhost", 7002)]))
        );
    }

    #[test]
    fn reply_is_capped_at_1024_bytes() {
        let many: Vec<Holder> = (0..500).map(|i| h("localhost", 10000 + i)).collect();
        let (r, n) = encode_get_chunk_from(1_000_000, &many);
        assert!(r.len() <= MAX_REPLY);
        assert!(r.len() + ",localhost,10000".len() > MAX_REPLY);
        assert_eq!(r.matches("localhost").count(), n);
    }

    #[test]
    fn replies_are_accepted_only_for_the_asked_index() {
        assert_eq!(
            parse_reply(b"GET_CHUNK_FROM,3,localhost,7001,localhost,7002", 3),
            Some(Reply::Holders(vec![
                h("localhost", 7001),
                h("localhost", 7002)
            ]))
        );
        assert_eq!(
            parse_reply(b"CHUNK_LOCATION_UNKNOWN,3\r\n", 3),
            Some(Reply::Unknown)
        );
        assert_eq!(parse_reply(b"GET_CHUNK_FROM,31,localhost,7001", 3), None);
        assert_eq!(parse_reply(b"CHUNK_LOCATION_UNKNOWN,4", 3), None);
        assert_eq!(parse_reply(b"garbage", 3), None);
        assert_eq!(parse_reply(b"", 3), None);
        assert_eq!(
            parse_reply(
                b"GET_CHUNK_FROM,3,localhost,notaport,localhost,7002,dangling",
                3
            ),
            Some(Reply::Holders(vec![h("localhost", 7002)]))
        );
    }

    #[test]
    fn peer_requests_parse_strictly() {
        assert_eq!(parse_request_chunk(b"REQUEST_CHUNK,5"), Some(5));
        assert_eq!(parse_request_chunk(b"REQUEST_CHUNK,5\r\n"), Some(5));
        assert_eq!(parse_request_chunk(b"REQUEST_CHUNK,../../etc/passwd"), None);
        assert_eq!(parse_request_chunk(b"REQUEST_CHUNK,99999999"), None);
        assert_eq!(parse_request_chunk(b"GET /"), None);
        assert_eq!(parse_request_chunk(b"\xff"), None);
    }
}
