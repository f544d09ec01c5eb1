//! The FileApp wire format, byte for byte what the original FileApp.py sends.
//!
//! Client → server datagrams carry no type field (the server tells them apart by source
//! address, see `state.rs`), so this module offers one codec per payload shape: the registration
//! `{name},{tcp_port}`, the offer (a JSON array of strings), the table (a JSON object
//! `{"file,owner": [ip, tcp_port]}`), the fixed words (`ACK`, `DEREG`, …) and the peer request
//! line `{file},{requester}`. JSON is written exactly as Python's `json.dumps` writes it
//! (separators `", "` and `": "`, strings through `core::pyjson`) and read with `core::pyjson`'s
//! strict parser, so key order is the order on the wire. Pure: no sockets, no clocks.

use crate::core::names;
use crate::core::pyjson::{self, Json};
use std::fmt;

/// The server's answer to a registration; the client compares the whole datagram to it.
pub const WELCOME: &str = ">>> [Welcome, You are registered.]";
/// The client's acknowledgement of the first table after the welcome.
pub const ACK: &[u8] = b"ACK";
/// The server's acknowledgement of an offer.
pub const ACK_OFFER: &[u8] = b"ACK_OFFER";
/// A client leaving.
pub const DEREG: &[u8] = b"DEREG";
/// The server's acknowledgement of a dereg.
pub const ACK_DEREG: &[u8] = b"ACK_DEREG";
/// Largest UDP payload over IPv4; the server never builds a table bigger than this.
pub const MAX_TABLE_BYTES: usize = 65_507;
/// What original clients read per datagram; bigger tables are lost on them.
pub const ORIGINAL_RECV_BYTES: usize = 4_096;
/// Nesting allowed in received JSON (the real shapes need 2).
const MAX_DEPTH: usize = 16;

/// The rejection text for a name that an active client already uses.
pub fn rejection(name: &str) -> String {
    format!("Client {name} already registered. Registration rejected.")
}

/// Why a payload was not understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    NotUtf8,
    Registration(&'static str),
    Json(String),
    NotAList,
    NotAnObject,
    BadKey(String),
    BadValue(String),
    Request(&'static str),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::NotUtf8 => write!(f, "the datagram is not UTF-8"),
            WireError::Registration(why) => write!(f, "the registration {why}"),
            WireError::Json(why) => write!(f, "the payload is not JSON: {why}"),
            WireError::NotAList => write!(f, "the payload is not a JSON array"),
            WireError::NotAnObject => write!(f, "the payload is not a JSON object"),
            WireError::BadKey(k) => {
                write!(f, "the table key {k:?} does not contain exactly one ','")
            }
            WireError::BadValue(k) => {
                write!(f, "the table value for {k:?} is not [ip, tcp_port]")
            }
            WireError::Request(why) => write!(f, "the request {why}"),
        }
    }
}

impl std::error::Error for WireError {}

/// `{name},{tcp_port}`: a client joining.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub name: String,
    pub tcp_port: u16,
}

pub fn encode_registration(r: &Registration) -> Vec<u8> {
    format!("{},{}", r.name, r.tcp_port).into_bytes()
}

/// Exactly one `,`, a non-empty name, and a port 1-65535 in ASCII digits.
pub fn parse_registration(bytes: &[u8]) -> Result<Registration, WireError> {
    let text = std::str::from_utf8(bytes).map_err(|_| WireError::NotUtf8)?;
    let (name, port) =
        split_one_comma(text).ok_or(WireError::Registration("does not contain exactly one ','"))?;
    if name.is_empty() {
        return Err(WireError::Registration("has an empty name"));
    }
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(WireError::Registration("port is not a number"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(Registration {
            name: name.to_string(),
            tcp_port: p,
        }),
        _ => Err(WireError::Registration("port is not in 1-65535")),
    }
}

/// Splits `a,b` when the text holds exactly one comma.
pub fn split_one_comma(text: &str) -> Option<(&str, &str)> {
    let (a, b) = text.split_once(',')?;
    (!b.contains(',')).then_some((a, b))
}

/// `json.dumps(list_of_names)`.
pub fn encode_offer(names: &[String]) -> Vec<u8> {
    let mut out = String::from("[");
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        pyjson::push_string(&mut out, n);
    }
    out.push(']');
    out.into_bytes()
}

/// A JSON array; each element is a name (`Ok`) or the reason it must be skipped (`Err`).
pub fn parse_offer(bytes: &[u8]) -> Result<Vec<Result<String, String>>, WireError> {
    let text = std::str::from_utf8(bytes).map_err(|_| WireError::NotUtf8)?;
    let Json::Array(items) = parse_json(text)? else {
        return Err(WireError::NotAList);
    };
    Ok(items
        .into_iter()
        .map(|item| match item {
            Json::String(s) if s.is_empty() => Err("an empty name".to_string()),
            Json::String(s) if s.contains(',') => Err(format!("{s:?} contains ','")),
            // Names land in every client's table: only plain file names (no `../`, NUL, `/`).
            Json::String(s) => match names::check(&s) {
                Ok(_) => Ok(s),
                Err(why) => Err(format!("{s:?}: {why}")),
            },
            other => Err(format!("{} is not a string", other.kind())),
        })
        .collect())
}

/// One row of the table: `"{file},{owner}": [ip, tcp_port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRow {
    pub file: String,
    pub owner: String,
    pub ip: String,
    pub tcp_port: u16,
}

/// One `"key": value` pair as `json.dumps` writes it (also used to size the table).
pub fn encode_entry(row: &TableRow) -> String {
    let mut out = String::new();
    pyjson::push_string(&mut out, &format!("{},{}", row.file, row.owner));
    out.push_str(": [");
    pyjson::push_string(&mut out, &row.ip);
    out.push_str(&format!(", {}]", row.tcp_port));
    out
}

/// `json.dumps(table)`, keys in table order.
pub fn encode_table(rows: &[TableRow]) -> Vec<u8> {
    let entries: Vec<String> = rows.iter().map(encode_entry).collect();
    format!("{{{}}}", entries.join(", ")).into_bytes()
}

/// Bytes of `encode_table` for entries of the given encoded lengths.
pub fn table_len(entry_lens: impl Iterator<Item = usize>) -> usize {
    let (mut sum, mut n) = (2usize, 0usize);
    for len in entry_lens {
        sum += len;
        n += 1;
    }
    sum + n.saturating_sub(1) * 2
}

/// A table: the rows that parse, in wire order, plus the reason for each row skipped.
pub fn parse_table(bytes: &[u8]) -> Result<(Vec<TableRow>, Vec<WireError>), WireError> {
    let text = std::str::from_utf8(bytes).map_err(|_| WireError::NotUtf8)?;
    let Json::Object(pairs) = parse_json(text)? else {
        return Err(WireError::NotAnObject);
    };
    let (mut rows, mut skipped) = (Vec::new(), Vec::new());
    for (key, value) in pairs {
        let Some((file, owner)) = split_one_comma(&key) else {
            skipped.push(WireError::BadKey(key));
            continue;
        };
        let row = match value {
            Json::Array(v) => match v.as_slice() {
                [Json::String(ip), Json::Number(port)] => {
                    port.parse::<u16>().ok().map(|tcp_port| TableRow {
                        file: file.to_string(),
                        owner: owner.to_string(),
                        ip: ip.clone(),
                        tcp_port,
                    })
                }
                _ => None,
            },
            _ => None,
        };
        match row {
            Some(row) => rows.push(row),
            None => skipped.push(WireError::BadValue(key)),
        }
    }
    Ok((rows, skipped))
}

/// `{file},{requester}`: the one write a requester sends to an owner.
pub fn encode_request(file: &str, requester: &str) -> Vec<u8> {
    format!("{file},{requester}").into_bytes()
}

/// The owner's reading of a request: UTF-8 with exactly one `,`, both parts non-empty.
pub fn parse_request(bytes: &[u8]) -> Result<(String, String), WireError> {
    if bytes.is_empty() {
        return Err(WireError::Request("is empty"));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| WireError::NotUtf8)?;
    let (file, who) =
        split_one_comma(text).ok_or(WireError::Request("does not contain exactly one ','"))?;
    if file.is_empty() || who.is_empty() {
        return Err(WireError::Request("has an empty part"));
    }
    Ok((file.to_string(), who.to_string()))
}

/// Parses a whole datagram as one JSON document (`pyjson`, FileApp's nesting limit).
fn parse_json(text: &str) -> Result<Json, WireError> {
    pyjson::parse(text.as_bytes(), MAX_DEPTH).map_err(|e| WireError::Json(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(file: &str, owner: &str, port: u16) -> TableRow {
        TableRow {
            file: file.into(),
            owner: owner.into(),
            ip: "127.0.0.1".into(),
            tcp_port: port,
        }
    }

    #[test]
    fn table_is_encoded_with_python_separators_in_order() {
        let t = encode_table(&[row("jjs.jpg", "heyy", 1030), row("wee.txt", "heyy", 1030)]);
        assert_eq!(
            t,
            br#"{"jjs.jpg,heyy": ["127.0.0.1", 1030], "wee.txt,heyy": ["127.0.0.1", 1030]}"#
        );
        assert_eq!(encode_table(&[]), b"{}");
        let rows = [row("a", "b", 1), row("cc", "d", 22)];
        let len = table_len(rows.iter().map(|r| encode_entry(r).len()));
        assert_eq!(len, encode_table(&rows).len());
        assert_eq!(table_len(std::iter::empty()), 2);
    }

    #[test]
    fn offers_are_encoded_like_python_json_dumps() {
        assert_eq!(
            encode_offer(&["hello.txt".into(), "jjs.jpg".into()]),
            br#"["hello.txt", "jjs.jpg"]"#
        );
        assert_eq!(encode_offer(&[]), b"[]");
    }

    #[test]
    fn table_round_trips_including_escapes() {
        let rows = vec![row("é😀 x.txt", "bob", 9), row("q\"\\", "al", 65535)];
        let (back, skipped) = parse_table(&encode_table(&rows)).unwrap();
        assert_eq!(back, rows);
        assert!(skipped.is_empty());
    }

    #[test]
    fn table_rows_with_bad_keys_or_values_are_skipped() {
        let (rows, skipped) = parse_table(
            br#"{"nokey": ["1.2.3.4", 1], "a,b,c": ["x", 1], "f,o": ["1.2.3.4", "1"], "g,o": ["1.2.3.4", 70000], "h,o": ["1.2.3.4", 5]}"#,
        )
        .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].file, "h");
        assert_eq!(skipped.len(), 4);
        for bad in [
            &b"[]"[..],
            b"",
            b"{",
            b"{\"a,b\": [\"x\", 1]} x",
            b"\xff",
            b"nul",
            b"{\"a\" 1}",
            b"\"str\"",
            b"{1: 2}",
        ] {
            assert!(parse_table(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn offer_parses_strings_and_flags_bad_elements() {
        let got = parse_offer(br#"["a.txt", "", "x,y", 3, null, ["n"], "\u00e9"]"#).unwrap();
        assert_eq!(got[0], Ok("a.txt".into()));
        assert!(got[1].is_err() && got[2].is_err() && got[3].is_err());
        assert!(got[4].is_err() && got[5].is_err());
        assert_eq!(got[6], Ok("é".into()));
        let bad = parse_offer(br#"["../../etc/passwd", "a\u0000b", "/abs", "a\\b", "..", "ok"]"#)
            .unwrap();
        assert!(bad[..5].iter().all(|r| r.is_err()), "{bad:?}");
        assert_eq!(bad[5], Ok("ok".into()));
        assert_eq!(parse_offer(b"{}"), Err(WireError::NotAList));
        assert!(parse_offer(b"hello").is_err());
        assert!(parse_offer(b"[\"a\"").is_err());
        assert!(parse_offer(b"\xfe\xff").is_err());
        let deep = "[".repeat(1000);
        assert!(parse_offer(deep.as_bytes()).is_err());
    }

    #[test]
    fn registration_needs_one_comma_a_name_and_a_port() {
        assert_eq!(
            parse_registration(b"alice,41027").unwrap(),
            Registration {
                name: "alice".into(),
                tcp_port: 41027
            }
        );
        assert_eq!(
            encode_registration(&Registration {
                name: "bob".into(),
                tcp_port: 7
            }),
            b"bob,7"
        );
        for bad in [
            &b"alice"[..],
            b"a,b,1",
            b",1",
            b"a,0",
            b"a,65536",
            b"a,",
            b"a,+1",
            b"a, 1",
            b"a,99999999999",
            b"\xff,1",
            b"DEREG",
        ] {
            assert!(parse_registration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn request_line_needs_exactly_one_comma() {
        assert_eq!(encode_request("jjs.jpg", "bob"), b"jjs.jpg,bob");
        assert_eq!(
            parse_request(b"jjs.jpg,bob").unwrap(),
            ("jjs.jpg".into(), "bob".into())
        );
        for bad in [&b""[..], b"x", b"a,b,c", b",b", b"a,", b"\xff,b"] {
            assert!(parse_request(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            rejection("al"),
            "Client al already registered. Registration rejected."
        );
    }
}
