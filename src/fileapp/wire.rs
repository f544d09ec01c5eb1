//! The FileApp wire format, byte for byte what the original FileApp.py sends.
//!
//! Client → server datagrams carry no type field (the server tells them apart by source
//! address, see `table.rs`), so this module offers one codec per payload shape: the registration
//! `{name},{tcp_port}`, the offer (a JSON array of strings), the table (a JSON object
//! `{"file,owner": [ip, tcp_port]}`), the fixed words (`ACK`, `DEREG`, …) and the peer request
//! line `{file},{requester}`. JSON is written exactly as Python's `json.dumps` writes it
//! (separators `", "` and `": "`, `ensure_ascii` escapes) and read with a small strict parser, so
//! no JSON crate is needed and key order is the order on the wire. Pure: no sockets, no clocks.

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
        push_json_string(&mut out, n);
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
            Json::String(s) => Ok(s),
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
    push_json_string(&mut out, &format!("{},{}", row.file, row.owner));
    out.push_str(": [");
    push_json_string(&mut out, &row.ip);
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

/// Appends `s` as a JSON string the way Python's `json.dumps` (ensure_ascii) writes it.
pub fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if !(' '..='~').contains(&c) => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A parsed JSON value; numbers keep their text so ports parse exactly.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

/// Parses one JSON document (whitespace around it allowed, nothing else). Duplicate object
/// keys keep the first position and the last value, as Python's dict does.
pub fn parse_json(text: &str) -> Result<Json, WireError> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("extra data after the value"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> WireError {
        WireError::Json(format!("{what} at byte {}", self.i))
    }

    fn ws(&mut self) {
        while self
            .s
            .get(self.i)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, WireError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        self.ws();
        match self.s.get(self.i) {
            None => Err(self.err("unexpected end")),
            Some(b'"') => self.string().map(Json::String),
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.eat(b']') {
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    if self.eat(b']') {
                        return Ok(Json::Array(items));
                    }
                    if !self.eat(b',') {
                        return Err(self.err("expected ',' or ']'"));
                    }
                }
            }
            Some(b'{') => {
                self.i += 1;
                let mut pairs: Vec<(String, Json)> = Vec::new();
                self.ws();
                if self.eat(b'}') {
                    return Ok(Json::Object(pairs));
                }
                loop {
                    self.ws();
                    if self.s.get(self.i) != Some(&b'"') {
                        return Err(self.err("expected a string key"));
                    }
                    let key = self.string()?;
                    self.ws();
                    if !self.eat(b':') {
                        return Err(self.err("expected ':'"));
                    }
                    let v = self.value(depth + 1)?;
                    match pairs.iter_mut().find(|(k, _)| *k == key) {
                        Some(slot) => slot.1 = v,
                        None => pairs.push((key, v)),
                    }
                    self.ws();
                    if self.eat(b'}') {
                        return Ok(Json::Object(pairs));
                    }
                    if !self.eat(b',') {
                        return Err(self.err("expected ',' or '}'"));
                    }
                }
            }
            Some(b't') => self.word("true", Json::Bool(true)),
            Some(b'f') => self.word("false", Json::Bool(false)),
            Some(b'n') => self.word("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("unexpected character")),
        }
    }

    fn word(&mut self, w: &str, v: Json) -> Result<Json, WireError> {
        if self.s[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            Ok(v)
        } else {
            Err(self.err("unexpected word"))
        }
    }

    fn number(&mut self) -> Result<Json, WireError> {
        let start = self.i;
        self.eat(b'-');
        let digits = |p: &mut Self| {
            let s = p.i;
            while p.s.get(p.i).is_some_and(u8::is_ascii_digit) {
                p.i += 1;
            }
            p.i > s
        };
        if !digits(self) {
            return Err(self.err("bad number"));
        }
        if self.eat(b'.') && !digits(self) {
            return Err(self.err("bad number"));
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if !digits(self) {
                return Err(self.err("bad number"));
            }
        }
        let text = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        Ok(Json::Number(text))
    }

    fn hex4(&mut self) -> Result<u16, WireError> {
        let h = self
            .s
            .get(self.i..self.i + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u16::from_str_radix(h, 16).ok())
            .ok_or_else(|| self.err("bad \\u escape"))?;
        self.i += 4;
        Ok(h)
    }

    fn string(&mut self) -> Result<String, WireError> {
        self.i += 1; // the opening quote
        let mut out = String::new();
        loop {
            let start = self.i;
            while self
                .s
                .get(self.i)
                .is_some_and(|b| *b != b'"' && *b != b'\\' && *b >= 0x20)
            {
                self.i += 1;
            }
            // The input is a &str and we stopped on ASCII, so this slice is valid UTF-8.
            out.push_str(&String::from_utf8_lossy(&self.s[start..self.i]));
            match self.s.get(self.i) {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    let esc = *self.s.get(self.i).ok_or_else(|| self.err("bad escape"))?;
                    self.i += 1;
                    match esc {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let c = if (0xd800..0xdc00).contains(&hi)
                                && self.s[self.i..].starts_with(b"\\u")
                            {
                                let save = self.i;
                                self.i += 2;
                                let lo = self.hex4()?;
                                if (0xdc00..0xe000).contains(&lo) {
                                    let c = 0x10000
                                        + ((u32::from(hi) - 0xd800) << 10)
                                        + (u32::from(lo) - 0xdc00);
                                    char::from_u32(c)
                                } else {
                                    self.i = save;
                                    None
                                }
                            } else {
                                char::from_u32(u32::from(hi))
                            };
                            // Lone surrogates (Python accepts them) become U+FFFD.
                            out.push(c.unwrap_or('\u{fffd}'));
                        }
                        _ => return Err(self.err("bad escape")),
                    }
                }
                Some(_) => return Err(self.err("control character in string")),
            }
        }
    }
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
    fn strings_are_escaped_like_python_ensure_ascii() {
        let mut s = String::new();
        push_json_string(&mut s, "a\"b\\c\nd\te\u{1}é€😀\u{7f}/");
        assert_eq!(s, r#""a\"b\\c\nd\te\u0001\u00e9\u20ac\ud83d\ude00\u007f/""#);
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
        assert_eq!(parse_offer(b"{}"), Err(WireError::NotAList));
        assert!(parse_offer(b"hello").is_err());
        assert!(parse_offer(b"[\"a\"").is_err());
        assert!(parse_offer(b"\xfe\xff").is_err());
        let deep = "[".repeat(1000);
        assert!(parse_offer(deep.as_bytes()).is_err());
    }

    #[test]
    fn json_parser_handles_numbers_words_and_surrogates() {
        assert_eq!(
            parse_json(" [1, -2.5e3, true, false, null] ").unwrap(),
            Json::Array(vec![
                Json::Number("1".into()),
                Json::Number("-2.5e3".into()),
                Json::Bool(true),
                Json::Bool(false),
                Json::Null
            ])
        );
        assert_eq!(
            parse_json(r#""\ud83d\ude00\ud800x""#).unwrap(),
            Json::String("😀\u{fffd}x".into())
        );
        for bad in [
            "-",
            "1.",
            "1e",
            "tru",
            "\"\\x\"",
            "\"\\u12\"",
            "\"a\u{1}\"",
            "[1,]",
        ] {
            assert!(parse_json(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_json(r#"{"a": 1, "b": 2, "a": 3}"#).unwrap(),
            Json::Object(vec![
                ("a".into(), Json::Number("3".into())),
                ("b".into(), Json::Number("2".into()))
            ])
        );
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
