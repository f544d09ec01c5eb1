//! BitTorrent-Python's four messages as Rust types, and their pickled-dict form (spec §3.2).
//!
//! Pure: no sockets, no clocks. [`parse`] recognises a message by its distinguishing key, checked
//! in the order `mode`, `search_result`, `range`, `size`, then requires every key of that message
//! (extra keys are ignored, a 2-element list is accepted where a tuple is expected). [`encode`]
//! writes the keys in the original's order, `range` as a tuple and `addr` as a list, because an
//! original downloader sorts pieces by `range` and a list does not compare with a tuple.

use super::pickle::{self, PickleError, Value};
use crate::core::pyjson;
use crate::core::trace::{self, Body, Direction, Proto};
use std::fmt;
use std::net::{SocketAddr, UdpSocket};

/// Node2Tracker modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Register = 0,
    Own = 1,
    Need = 2,
    Update = 3,
    Exit = 4,
}

impl Mode {
    fn from_int(i: i64) -> Option<Mode> {
        Some(match i {
            0 => Mode::Register,
            1 => Mode::Own,
            2 => Mode::Need,
            3 => Mode::Update,
            4 => Mode::Exit,
            _ => return None,
        })
    }
}

/// One entry of a Tracker2Node search result: `({'node_id', 'addr': [ip, port]}, send_freq)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub node_id: i64,
    pub ip: String,
    pub port: i64,
    pub send_freq: i64,
}

/// Every datagram BitTorrent-Python sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// `{node_id, filename, mode}`.
    Node2Tracker {
        node_id: i64,
        filename: String,
        mode: Mode,
    },
    /// `{dest_node_id, search_result, filename}`.
    Tracker2Node {
        dest_node_id: i64,
        search_result: Vec<Owner>,
        filename: String,
    },
    /// `{src_node_id, dest_node_id, filename, size}`; size −1 asks for the size.
    Node2Node {
        src_node_id: i64,
        dest_node_id: i64,
        filename: String,
        size: i64,
    },
    /// `{src_node_id, dest_node_id, filename, range, idx, chunk}`: a request or end marker
    /// (idx −1, chunk None) or piece `idx` of `range`.
    ChunkSharing {
        src_node_id: i64,
        dest_node_id: i64,
        filename: String,
        range: (i64, i64),
        idx: i64,
        chunk: Option<Vec<u8>>,
    },
}

/// Why a datagram is not a BitTorrent-Python message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    Pickle(PickleError),
    Unrecognised,
    Missing(&'static str),
    WrongType(&'static str),
    UnknownMode(i64),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Pickle(e) => write!(f, "not an allowed pickle: {e}"),
            WireError::Unrecognised => write!(
                f,
                "the dict has none of the keys mode, search_result, range or size"
            ),
            WireError::Missing(k) => write!(f, "the key '{k}' is missing"),
            WireError::WrongType(k) => write!(f, "the key '{k}' has the wrong type"),
            WireError::UnknownMode(m) => write!(f, "mode {m} is not 0 to 4"),
        }
    }
}

impl std::error::Error for WireError {}

impl From<PickleError> for WireError {
    fn from(e: PickleError) -> Self {
        WireError::Pickle(e)
    }
}

fn field<'a>(v: &'a Value, key: &'static str) -> Result<&'a Value, WireError> {
    v.get(key).ok_or(WireError::Missing(key))
}

fn int(v: &Value, key: &'static str) -> Result<i64, WireError> {
    match field(v, key)? {
        Value::Int(i) => Ok(*i),
        _ => Err(WireError::WrongType(key)),
    }
}

fn string(v: &Value, key: &'static str) -> Result<String, WireError> {
    match field(v, key)? {
        Value::Str(s) => Ok(s.clone()),
        _ => Err(WireError::WrongType(key)),
    }
}

/// A tuple, or a list where a tuple is expected.
fn seq(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Tuple(items) | Value::List(items) => Some(items),
        _ => None,
    }
}

fn owner(entry: &Value) -> Result<Owner, WireError> {
    let bad = WireError::WrongType("search_result");
    let [node, freq] = seq(entry).ok_or(bad.clone())? else {
        return Err(bad);
    };
    let Value::Int(send_freq) = freq else {
        return Err(bad);
    };
    let node_id = int(node, "node_id")?;
    let addr = seq(field(node, "addr")?).ok_or(WireError::WrongType("addr"))?;
    let [Value::Str(ip), Value::Int(port)] = addr else {
        return Err(WireError::WrongType("addr"));
    };
    Ok(Owner {
        node_id,
        ip: ip.clone(),
        port: *port,
        send_freq: *send_freq,
    })
}

/// Decodes one datagram.
pub fn parse(bytes: &[u8]) -> Result<Message, WireError> {
    let v = pickle::decode(bytes)?;
    if v.get("mode").is_some() {
        let mode = int(&v, "mode")?;
        return Ok(Message::Node2Tracker {
            node_id: int(&v, "node_id")?,
            filename: string(&v, "filename")?,
            mode: Mode::from_int(mode).ok_or(WireError::UnknownMode(mode))?,
        });
    }
    if let Some(result) = v.get("search_result") {
        let Value::List(entries) = result else {
            return Err(WireError::WrongType("search_result"));
        };
        return Ok(Message::Tracker2Node {
            dest_node_id: int(&v, "dest_node_id")?,
            search_result: entries.iter().map(owner).collect::<Result<_, _>>()?,
            filename: string(&v, "filename")?,
        });
    }
    if let Some(range) = v.get("range") {
        let range = match seq(range) {
            Some([Value::Int(a), Value::Int(b)]) => (*a, *b),
            _ => return Err(WireError::WrongType("range")),
        };
        let chunk = match field(&v, "chunk")? {
            Value::None => None,
            Value::Bytes(b) => Some(b.clone()),
            _ => return Err(WireError::WrongType("chunk")),
        };
        return Ok(Message::ChunkSharing {
            src_node_id: int(&v, "src_node_id")?,
            dest_node_id: int(&v, "dest_node_id")?,
            filename: string(&v, "filename")?,
            range,
            idx: int(&v, "idx")?,
            chunk,
        });
    }
    if v.get("size").is_some() {
        return Ok(Message::Node2Node {
            src_node_id: int(&v, "src_node_id")?,
            dest_node_id: int(&v, "dest_node_id")?,
            filename: string(&v, "filename")?,
            size: int(&v, "size")?,
        });
    }
    Err(WireError::Unrecognised)
}

fn dict(items: Vec<(&str, Value)>) -> Value {
    Value::Dict(items.into_iter().map(|(k, v)| (Value::str(k), v)).collect())
}

/// The pickled-dict value of `msg`, keys in the original's order.
pub fn to_value(msg: &Message) -> Value {
    match msg {
        Message::Node2Tracker {
            node_id,
            filename,
            mode,
        } => dict(vec![
            ("node_id", Value::Int(*node_id)),
            ("filename", Value::str(filename.as_str())),
            ("mode", Value::Int(*mode as i64)),
        ]),
        Message::Tracker2Node {
            dest_node_id,
            search_result,
            filename,
        } => dict(vec![
            ("dest_node_id", Value::Int(*dest_node_id)),
            (
                "search_result",
                Value::List(search_result.iter().map(owner_value).collect()),
            ),
            ("filename", Value::str(filename.as_str())),
        ]),
        Message::Node2Node {
            src_node_id,
            dest_node_id,
            filename,
            size,
        } => dict(vec![
            ("src_node_id", Value::Int(*src_node_id)),
            ("dest_node_id", Value::Int(*dest_node_id)),
            ("filename", Value::str(filename.as_str())),
            ("size", Value::Int(*size)),
        ]),
        Message::ChunkSharing {
            src_node_id,
            dest_node_id,
            filename,
            range,
            idx,
            chunk,
        } => dict(vec![
            ("src_node_id", Value::Int(*src_node_id)),
            ("dest_node_id", Value::Int(*dest_node_id)),
            ("filename", Value::str(filename.as_str())),
            (
                "range",
                Value::Tuple(vec![Value::Int(range.0), Value::Int(range.1)]),
            ),
            ("idx", Value::Int(*idx)),
            (
                "chunk",
                chunk
                    .as_ref()
                    .map_or(Value::None, |b| Value::Bytes(b.clone())),
            ),
        ]),
    }
}

fn owner_value(o: &Owner) -> Value {
    Value::Tuple(vec![
        dict(vec![
            ("node_id", Value::Int(o.node_id)),
            (
                "addr",
                Value::List(vec![Value::str(o.ip.as_str()), Value::Int(o.port)]),
            ),
        ]),
        Value::Int(o.send_freq),
    ])
}

/// Encodes `msg` as a protocol-3 pickle.
pub fn encode(msg: &Message) -> Vec<u8> {
    pickle::encode(&to_value(msg))
}

/// Encodes a ChunkSharing piece straight from a borrowed slice: the serving hot path, which
/// would otherwise copy every piece into an owned `Vec` first.
pub fn encode_piece(
    src_node_id: i64,
    dest_node_id: i64,
    filename: &str,
    range: (i64, i64),
    idx: i64,
    chunk: &[u8],
) -> Vec<u8> {
    let mut head = pickle::encode(&to_value(&Message::ChunkSharing {
        src_node_id,
        dest_node_id,
        filename: filename.to_string(),
        range,
        idx,
        chunk: None,
    }));
    // The encoding ends with `… 'chunk' None SETITEMS STOP`: swap the None for the bytes.
    let tail = head.split_off(head.len() - 3);
    debug_assert_eq!(tail, [0x4e, 0x75, 0x2e]);
    let mut out = head;
    out.reserve(chunk.len() + 8);
    if chunk.len() < 256 {
        out.extend_from_slice(&[0x43, chunk.len() as u8]);
    } else {
        out.push(0x42);
        out.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(chunk);
    out.extend_from_slice(&[0x75, 0x2e]);
    out
}

/// A decoded pickle value as JSON for the trace; bytes appear as a size, never as content.
pub fn value_json(v: &Value) -> String {
    let items = |xs: &[Value]| xs.iter().map(value_json).collect::<Vec<_>>().join(", ");
    match v {
        Value::None => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Str(s) => pyjson::quote(s),
        Value::Bytes(b) => pyjson::quote(&format!("<{} bytes>", b.len())),
        Value::List(xs) | Value::Tuple(xs) => format!("[{}]", items(xs)),
        Value::Dict(pairs) => {
            let fields: Vec<String> = pairs
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        Value::Str(s) => s.clone(),
                        other => value_json(other),
                    };
                    format!("{}: {}", pyjson::quote(&key), value_json(v))
                })
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

/// Records one datagram in the trace (when tracing is on): pieces as a summary, every other
/// message as its decoded dict.
pub fn trace_datagram(
    dir: Direction,
    socket: &UdpSocket,
    remote: SocketAddr,
    bytes: &[u8],
    msg: Option<&Message>,
) {
    if !trace::enabled() {
        return;
    }
    let parsed;
    let msg = match msg {
        Some(m) => Some(m),
        None => {
            parsed = parse(bytes).ok();
            parsed.as_ref()
        }
    };
    let text = match msg {
        Some(Message::ChunkSharing {
            filename,
            range,
            idx,
            chunk: Some(chunk),
            ..
        }) => format!(
            "piece {idx} of {filename} ({}, {}): {} bytes",
            range.0,
            range.1,
            chunk.len()
        ),
        Some(m) => value_json(&to_value(m)),
        None => format!("{} bytes that are not a message", bytes.len()),
    };
    let body = match msg {
        Some(Message::ChunkSharing { chunk: Some(_), .. }) | None => Body::Summary(&text),
        Some(_) => Body::Json(&text),
    };
    let local = socket.local_addr().ok();
    trace::message(dir, Proto::Udp, local, Some(remote), body, bytes.len());
}

/// Encodes `msg`, sends it from `socket` to `to`, and traces it: every non-piece datagram goes
/// out through here.
pub fn send(socket: &UdpSocket, msg: &Message, to: SocketAddr) -> std::io::Result<()> {
    let bytes = encode(msg);
    socket.send_to(&bytes, to)?;
    trace_datagram(Direction::Send, socket, to, &bytes, Some(msg));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    pub(crate) fn samples() -> Vec<Message> {
        vec![
            Message::Node2Tracker {
                node_id: 1,
                filename: String::new(),
                mode: Mode::Register,
            },
            Message::Node2Tracker {
                node_id: 2,
                filename: "file_A.txt".into(),
                mode: Mode::Own,
            },
            Message::Tracker2Node {
                dest_node_id: 3,
                search_result: vec![
                    Owner {
                        node_id: 1,
                        ip: "127.0.0.1".into(),
                        port: 50_001,
                        send_freq: 4,
                    },
                    Owner {
                        node_id: 2,
                        ip: "127.0.0.1".into(),
                        port: 50_002,
                        send_freq: 0,
                    },
                ],
                filename: "file_A.txt".into(),
            },
            Message::Node2Node {
                src_node_id: 3,
                dest_node_id: 1,
                filename: "file_A.txt".into(),
                size: -1,
            },
            Message::ChunkSharing {
                src_node_id: 1,
                dest_node_id: 3,
                filename: "file_A.txt".into(),
                range: (0, 100_000),
                idx: 5,
                chunk: Some(vec![7; 7216]),
            },
            Message::ChunkSharing {
                src_node_id: 3,
                dest_node_id: 1,
                filename: "file_A.txt".into(),
                range: (0, 100_000),
                idx: -1,
                chunk: None,
            },
        ]
    }

    #[test]
    fn register_matches_the_spec_test_vector() {
        let reg = Message::Node2Tracker {
            node_id: 1,
            filename: String::new(),
            mode: Mode::Register,
        };
        assert_eq!(
            hex(&encode(&reg)),
            "80037d2858070000006e6f64655f69644b01580800000066696c656e616d65580000000058040000006d6f64654b00752e"
        );
    }

    #[test]
    fn every_message_round_trips() {
        for m in samples() {
            assert_eq!(parse(&encode(&m)).unwrap(), m);
        }
    }

    #[test]
    fn encode_piece_equals_the_generic_encoding() {
        for len in [0, 5, 255, 256, 7216] {
            let chunk = vec![9u8; len];
            let generic = encode(&Message::ChunkSharing {
                src_node_id: 1,
                dest_node_id: 2,
                filename: "f".into(),
                range: (3, 4),
                idx: 0,
                chunk: Some(chunk.clone()),
            });
            assert_eq!(encode_piece(1, 2, "f", (3, 4), 0, &chunk), generic);
        }
    }

    #[test]
    fn range_is_a_tuple_and_addr_a_list() {
        let Value::Dict(items) = to_value(&samples()[4]) else {
            panic!()
        };
        assert!(matches!(items[3].1, Value::Tuple(_)));
        let v = to_value(&samples()[2]);
        let Some(Value::List(entries)) = v.get("search_result") else {
            panic!()
        };
        let Value::Tuple(pair) = &entries[0] else {
            panic!()
        };
        assert!(matches!(pair[0].get("addr"), Some(Value::List(_))));
    }

    #[test]
    fn trace_json_shows_the_dict_and_sizes_instead_of_bytes() {
        assert_eq!(
            value_json(&to_value(&samples()[0])),
            r#"{"node_id": 1, "filename": "", "mode": 0}"#
        );
        assert!(value_json(&to_value(&samples()[4])).contains(r#""chunk": "<7216 bytes>""#));
        assert!(value_json(&to_value(&samples()[4])).contains(r#""range": [0, 100000]"#));
    }

    #[test]
    fn wrong_shapes_are_errors() {
        let enc = |pairs: Vec<(&str, Value)>| pickle::encode(&dict(pairs));
        assert_eq!(
            parse(&enc(vec![("x", Value::Int(1))])),
            Err(WireError::Unrecognised)
        );
        assert_eq!(
            parse(&enc(vec![("mode", Value::Int(9))])),
            Err(WireError::Missing("node_id"))
        );
        assert_eq!(
            parse(&enc(vec![
                ("node_id", Value::Int(1)),
                ("filename", Value::str("")),
                ("mode", Value::Int(9))
            ])),
            Err(WireError::UnknownMode(9))
        );
        assert_eq!(
            parse(&enc(vec![
                ("node_id", Value::str("1")),
                ("filename", Value::str("")),
                ("mode", Value::Int(0))
            ])),
            Err(WireError::WrongType("node_id"))
        );
        assert_eq!(
            parse(&enc(vec![("range", Value::Tuple(vec![Value::Int(1)]))])),
            Err(WireError::WrongType("range"))
        );
        assert_eq!(
            parse(&enc(vec![
                ("range", Value::List(vec![Value::Int(1), Value::Int(2)])),
                ("chunk", Value::Int(3))
            ])),
            Err(WireError::WrongType("chunk"))
        );
        assert_eq!(
            parse(&enc(vec![
                ("dest_node_id", Value::Int(1)),
                ("filename", Value::str("f")),
                ("search_result", Value::List(vec![Value::Int(1)]))
            ])),
            Err(WireError::WrongType("search_result"))
        );
        assert!(matches!(parse(b"garbage"), Err(WireError::Pickle(_))));
    }

    #[test]
    fn extra_keys_are_ignored_and_lists_stand_in_for_tuples() {
        let v = dict(vec![
            ("src_node_id", Value::Int(1)),
            ("dest_node_id", Value::Int(2)),
            ("filename", Value::str("f")),
            ("range", Value::List(vec![Value::Int(0), Value::Int(9)])),
            ("idx", Value::Int(-1)),
            ("chunk", Value::None),
            ("extra", Value::Bool(true)),
        ]);
        assert_eq!(
            parse(&pickle::encode(&v)).unwrap(),
            Message::ChunkSharing {
                src_node_id: 1,
                dest_node_id: 2,
                filename: "f".into(),
                range: (0, 9),
                idx: -1,
                chunk: None
            }
        );
    }
}
