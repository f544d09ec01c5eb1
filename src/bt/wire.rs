//! The peer wire protocol (BEP 3): the 68-byte handshake and length-prefixed messages.
//!
//! Pure codec: [`parse_handshake`], [`parse`] (one message body, without its 4-byte length),
//! [`encode`] (with the length) and [`Framer`], which cuts a byte stream into message bodies and
//! refuses a length prefix above its limit before buffering anything. Message ids we do not know
//! (the fast extension's, BEP 10's `extended`) parse as [`Message::Unknown`] and are ignored by
//! the caller, as BEP 3 asks; a known id with the wrong length is an error that closes the
//! connection.

use std::fmt;

/// `\x13BitTorrent protocol`.
pub const PROTOCOL: &[u8; 20] = b"\x13BitTorrent protocol";
pub const HANDSHAKE_LEN: usize = 68;
/// The block size everyone requests (BEP 3 practice; larger requests are refused by many).
pub const BLOCK: u32 = 16 * 1024;
/// The largest block we serve; a request above it closes the connection.
pub const MAX_REQUEST: u32 = 128 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    pub reserved: [u8; 8],
    pub info_hash: [u8; 20],
    pub peer_id: [u8; 20],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    KeepAlive,
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have(u32),
    Bitfield(Vec<u8>),
    Request {
        index: u32,
        begin: u32,
        length: u32,
    },
    Piece {
        index: u32,
        begin: u32,
        data: Vec<u8>,
    },
    Cancel {
        index: u32,
        begin: u32,
        length: u32,
    },
    /// BEP 5's DHT port; we run no DHT and ignore it.
    Port(u16),
    Unknown(u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    NotBitTorrent,
    BadLength { id: u8, len: usize },
    TooLong { len: u64, max: usize },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::NotBitTorrent => write!(f, "the peer did not send a BitTorrent handshake"),
            WireError::BadLength { id, len } => {
                write!(f, "message id {id} cannot be {len} bytes long")
            }
            WireError::TooLong { len, max } => {
                write!(f, "a {len}-byte message exceeds the {max}-byte limit")
            }
        }
    }
}

impl std::error::Error for WireError {}

pub fn encode_handshake(h: &Handshake) -> [u8; HANDSHAKE_LEN] {
    let mut out = [0u8; HANDSHAKE_LEN];
    out[..20].copy_from_slice(PROTOCOL);
    out[20..28].copy_from_slice(&h.reserved);
    out[28..48].copy_from_slice(&h.info_hash);
    out[48..68].copy_from_slice(&h.peer_id);
    out
}

pub fn parse_handshake(b: &[u8; HANDSHAKE_LEN]) -> Result<Handshake, WireError> {
    if &b[..20] != PROTOCOL {
        return Err(WireError::NotBitTorrent);
    }
    let mut h = Handshake {
        reserved: [0; 8],
        info_hash: [0; 20],
        peer_id: [0; 20],
    };
    h.reserved.copy_from_slice(&b[20..28]);
    h.info_hash.copy_from_slice(&b[28..48]);
    h.peer_id.copy_from_slice(&b[48..68]);
    Ok(h)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parses one message body (what follows the 4-byte length; empty = keep-alive).
pub fn parse(body: &[u8]) -> Result<Message, WireError> {
    let Some((&id, rest)) = body.split_first() else {
        return Ok(Message::KeepAlive);
    };
    let want = |n: usize| {
        if rest.len() == n {
            Ok(())
        } else {
            Err(WireError::BadLength {
                id,
                len: body.len(),
            })
        }
    };
    Ok(match id {
        0 => want(0).map(|_| Message::Choke)?,
        1 => want(0).map(|_| Message::Unchoke)?,
        2 => want(0).map(|_| Message::Interested)?,
        3 => want(0).map(|_| Message::NotInterested)?,
        4 => want(4).map(|_| Message::Have(u32_at(rest, 0)))?,
        5 => Message::Bitfield(rest.to_vec()),
        6 | 8 => {
            want(12)?;
            let (index, begin, length) = (u32_at(rest, 0), u32_at(rest, 4), u32_at(rest, 8));
            if id == 6 {
                Message::Request {
                    index,
                    begin,
                    length,
                }
            } else {
                Message::Cancel {
                    index,
                    begin,
                    length,
                }
            }
        }
        7 => {
            if rest.len() < 8 {
                return Err(WireError::BadLength {
                    id,
                    len: body.len(),
                });
            }
            Message::Piece {
                index: u32_at(rest, 0),
                begin: u32_at(rest, 4),
                data: rest[8..].to_vec(),
            }
        }
        9 => want(2).map(|_| Message::Port(u16::from_be_bytes([rest[0], rest[1]])))?,
        other => Message::Unknown(other),
    })
}

/// The length-prefixed bytes of `m`.
pub fn encode(m: &Message) -> Vec<u8> {
    let mut body: Vec<u8> = Vec::new();
    let three = |id: u8, a: u32, b: u32, c: u32| {
        let mut v = vec![id];
        for x in [a, b, c] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v
    };
    match m {
        Message::KeepAlive => {}
        Message::Choke => body.push(0),
        Message::Unchoke => body.push(1),
        Message::Interested => body.push(2),
        Message::NotInterested => body.push(3),
        Message::Have(i) => {
            body.push(4);
            body.extend_from_slice(&i.to_be_bytes());
        }
        Message::Bitfield(bits) => {
            body.push(5);
            body.extend_from_slice(bits);
        }
        Message::Request {
            index,
            begin,
            length,
        } => body = three(6, *index, *begin, *length),
        Message::Piece { index, begin, data } => {
            return piece_header(*index, *begin, data.len())
                .into_iter()
                .chain(data.iter().copied())
                .collect()
        }
        Message::Cancel {
            index,
            begin,
            length,
        } => body = three(8, *index, *begin, *length),
        Message::Port(p) => {
            body.push(9);
            body.extend_from_slice(&p.to_be_bytes());
        }
        Message::Unknown(id) => body.push(*id),
    }
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// The 13 bytes before a `piece` message's block (so a sender can write the block itself).
pub fn piece_header(index: u32, begin: u32, len: usize) -> [u8; 13] {
    let mut h = [0u8; 13];
    h[..4].copy_from_slice(&(9 + len as u32).to_be_bytes());
    h[4] = 7;
    h[5..9].copy_from_slice(&index.to_be_bytes());
    h[9..13].copy_from_slice(&begin.to_be_bytes());
    h
}

/// Cuts a byte stream into message bodies, refusing any length prefix above `max`.
pub struct Framer {
    buf: Vec<u8>,
    start: usize,
    max: usize,
}

impl Framer {
    pub fn new(max: usize) -> Framer {
        Framer {
            buf: Vec::new(),
            start: 0,
            max,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole message body, if one is buffered.
    pub fn next_body(&mut self) -> Result<Option<Vec<u8>>, WireError> {
        let avail = &self.buf[self.start..];
        if avail.len() < 4 {
            return Ok(None);
        }
        let len = u32_at(avail, 0) as u64;
        if len > self.max as u64 {
            return Err(WireError::TooLong { len, max: self.max });
        }
        let len = len as usize;
        if avail.len() < 4 + len {
            return Ok(None);
        }
        let body = avail[4..4 + len].to_vec();
        self.start += 4 + len;
        if self.start > (1 << 20) {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        Ok(Some(body))
    }
}

/// `⌈pieces / 8⌉` bytes, most significant bit first (BEP 3's bitfield).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitfield {
    bits: Vec<u8>,
    len: usize,
}

impl Bitfield {
    pub fn new(len: usize) -> Bitfield {
        Bitfield {
            bits: vec![0; len.div_ceil(8)],
            len,
        }
    }

    /// A received bitfield: exactly `⌈len/8⌉` bytes and spare bits zero, or `None`.
    pub fn from_wire(bytes: &[u8], len: usize) -> Option<Bitfield> {
        if bytes.len() != len.div_ceil(8) {
            return None;
        }
        if !len.is_multiple_of(8) {
            let spare = 0xffu8 >> (len % 8);
            if bytes[bytes.len() - 1] & spare != 0 {
                return None;
            }
        }
        Some(Bitfield {
            bits: bytes.to_vec(),
            len,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn has(&self, i: usize) -> bool {
        i < self.len && self.bits[i / 8] & (0x80 >> (i % 8)) != 0
    }

    pub fn set(&mut self, i: usize) {
        if i < self.len {
            self.bits[i / 8] |= 0x80 >> (i % 8);
        }
    }

    pub fn count(&self) -> usize {
        self.bits.iter().map(|b| b.count_ones() as usize).sum()
    }

    pub fn is_full(&self) -> bool {
        self.count() == self.len
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bits
    }
}

/// One line for a `--trace` or a diagram: what the message says, never its block bytes.
pub fn summary(m: &Message) -> String {
    match m {
        Message::KeepAlive => "keep-alive".into(),
        Message::Choke => "choke".into(),
        Message::Unchoke => "unchoke".into(),
        Message::Interested => "interested".into(),
        Message::NotInterested => "not interested".into(),
        Message::Have(i) => format!("have {i}"),
        Message::Bitfield(b) => {
            let set: u32 = b.iter().map(|x| x.count_ones()).sum();
            format!("bitfield: {set} pieces")
        }
        Message::Request {
            index,
            begin,
            length,
        } => format!("request piece {index} at {begin}: {length} bytes"),
        Message::Piece { index, begin, data } => {
            format!("piece {index} at {begin}: {} bytes", data.len())
        }
        Message::Cancel {
            index,
            begin,
            length,
        } => format!("cancel piece {index} at {begin}: {length} bytes"),
        Message::Port(p) => format!("port {p}"),
        Message::Unknown(id) => format!("unknown message id {id}"),
    }
}

/// The handshake as a `--trace` line shows it: the info-hash and the peer id's client prefix.
pub fn handshake_summary(h: &Handshake) -> String {
    format!(
        "handshake {} from {}",
        crate::core::digest::to_hex(&h.info_hash),
        String::from_utf8_lossy(&h.peer_id[..8])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_name_the_message_and_never_carry_block_bytes() {
        let piece = Message::Piece {
            index: 3,
            begin: 16384,
            data: vec![0xAB; 16384],
        };
        assert_eq!(summary(&piece), "piece 3 at 16384: 16384 bytes");
        assert_eq!(
            summary(&Message::Bitfield(vec![0b1010_0000, 1])),
            "bitfield: 3 pieces"
        );
        assert_eq!(
            summary(&Message::Request {
                index: 0,
                begin: 0,
                length: BLOCK
            }),
            "request piece 0 at 0: 16384 bytes"
        );
        let h = Handshake {
            reserved: [0; 8],
            info_hash: [0xAB; 20],
            peer_id: *b"-PS0100-abcdefghijkl",
        };
        assert_eq!(
            handshake_summary(&h),
            format!("handshake {} from -PS0100-", "ab".repeat(20))
        );
    }

    #[test]
    fn handshake_round_trip_and_refusal() {
        let h = Handshake {
            reserved: [0; 8],
            info_hash: [7; 20],
            peer_id: *b"-PS0100-abcdefghijkl",
        };
        let b = encode_handshake(&h);
        assert_eq!(&b[..20], PROTOCOL);
        assert_eq!(parse_handshake(&b).unwrap(), h);
        let mut bad = b;
        bad[1] = b'X';
        assert_eq!(parse_handshake(&bad), Err(WireError::NotBitTorrent));
    }

    #[test]
    fn every_message_round_trips() {
        let all = [
            Message::KeepAlive,
            Message::Choke,
            Message::Unchoke,
            Message::Interested,
            Message::NotInterested,
            Message::Have(9),
            Message::Bitfield(vec![0xf0]),
            Message::Request {
                index: 1,
                begin: 16384,
                length: 16384,
            },
            Message::Piece {
                index: 2,
                begin: 0,
                data: vec![1, 2, 3],
            },
            Message::Cancel {
                index: 1,
                begin: 0,
                length: 5,
            },
            Message::Port(6881),
            Message::Unknown(20),
        ];
        for m in all {
            let bytes = encode(&m);
            let len = u32_at(&bytes, 0) as usize;
            assert_eq!(len, bytes.len() - 4);
            assert_eq!(parse(&bytes[4..]).unwrap(), m);
        }
        assert_eq!(&encode(&Message::Have(1))[..], b"\0\0\0\x05\x04\0\0\0\x01");
    }

    #[test]
    fn known_ids_with_wrong_lengths_are_errors() {
        assert!(parse(&[0, 1]).is_err());
        assert!(parse(&[4, 0, 0]).is_err());
        assert!(parse(&[6, 0, 0, 0, 0]).is_err());
        assert!(parse(&[7, 0, 0, 0]).is_err());
    }

    #[test]
    fn framer_cuts_messages_split_anywhere_and_refuses_oversize_prefixes() {
        let mut stream = encode(&Message::Have(3));
        stream.extend(encode(&Message::KeepAlive));
        stream.extend(encode(&Message::Piece {
            index: 0,
            begin: 0,
            data: vec![5; 100],
        }));
        let mut f = Framer::new(1000);
        let mut got = Vec::new();
        for b in stream.chunks(3) {
            f.push(b);
            while let Some(body) = f.next_body().unwrap() {
                got.push(parse(&body).unwrap());
            }
        }
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], Message::Have(3));
        let mut f = Framer::new(1000);
        f.push(&[0, 0, 0x10, 0]);
        assert!(matches!(f.next_body(), Err(WireError::TooLong { .. })));
    }

    #[test]
    fn bitfield_wants_exact_size_and_zero_spare_bits() {
        assert!(Bitfield::from_wire(&[0xff, 0x80], 9).is_some());
        assert!(Bitfield::from_wire(&[0xff, 0xc0], 9).is_none());
        assert!(Bitfield::from_wire(&[0xff], 9).is_none());
        assert!(Bitfield::from_wire(&[0xff, 0x80, 0], 9).is_none());
        let mut b = Bitfield::new(10);
        b.set(0);
        b.set(9);
        assert_eq!(b.as_bytes(), &[0x80, 0x40]);
        assert_eq!(b.count(), 2);
        assert!(b.has(9) && !b.has(1) && !b.has(10));
    }
}
