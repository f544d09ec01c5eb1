//! Bencode (BEP 3), strict: only the one canonical spelling of a value is accepted.
//!
//! The info-hash is the SHA-1 of the `info` value's bytes exactly as they stand in the file, so
//! a decoder that tolerated `i007e` or unsorted keys and re-encoded would hash something else
//! than every other client. We never re-encode: [`Value::Dict`] keeps each value's raw byte span
//! ([`Entry::raw`]), and anything non-canonical is refused instead of "repaired": integers
//! without leading zeros or `-0`, string lengths without leading zeros, dictionary keys sorted
//! as raw bytes and unique, nothing after the top value. Nesting is limited to [`MAX_DEPTH`] and
//! a string length can never exceed the bytes that are left, so hostile input cannot make us
//! allocate or recurse without bound.

use std::collections::BTreeMap;
use std::fmt;

/// Deepest nesting of lists and dictionaries we decode (metainfo needs 4; trackers 3).
pub const MAX_DEPTH: usize = 32;

/// A decoded value borrowing from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    Int(i64),
    Bytes(&'a [u8]),
    List(Vec<Value<'a>>),
    Dict(Vec<Entry<'a>>),
}

/// One dictionary entry: key, decoded value and the value's bytes as they stood in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    pub key: &'a [u8],
    pub value: Value<'a>,
    pub raw: &'a [u8],
}

/// Why input was refused; `at` is the byte offset where decoding stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BencodeError {
    UnexpectedEnd,
    Unexpected { at: usize, byte: u8 },
    BadInteger { at: usize },
    BadLength { at: usize },
    TooLong { at: usize, len: u64 },
    TooDeep { at: usize },
    UnsortedKeys { at: usize },
    DuplicateKey { at: usize },
    TrailingBytes { at: usize },
}

impl fmt::Display for BencodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BencodeError::UnexpectedEnd => {
                write!(f, "the bencoded data ends in the middle of a value")
            }
            BencodeError::Unexpected { at, byte } => {
                write!(
                    f,
                    "unexpected byte 0x{byte:02x} at offset {at} in bencoded data"
                )
            }
            BencodeError::BadInteger { at } => {
                write!(f, "the integer at offset {at} is not canonical bencode")
            }
            BencodeError::BadLength { at } => {
                write!(
                    f,
                    "the string length at offset {at} is not canonical bencode"
                )
            }
            BencodeError::TooLong { at, len } => write!(
                f,
                "the string at offset {at} claims {len} bytes, more than the data holds"
            ),
            BencodeError::TooDeep { at } => {
                write!(
                    f,
                    "the bencoded data nests deeper than {MAX_DEPTH} levels at offset {at}"
                )
            }
            BencodeError::UnsortedKeys { at } => {
                write!(f, "the dictionary key at offset {at} is out of order")
            }
            BencodeError::DuplicateKey { at } => {
                write!(
                    f,
                    "the dictionary key at offset {at} repeats an earlier key"
                )
            }
            BencodeError::TrailingBytes { at } => {
                write!(f, "there are bytes after the bencoded value (offset {at})")
            }
        }
    }
}

impl std::error::Error for BencodeError {}

/// Decodes exactly one canonical value filling all of `input`.
pub fn decode(input: &[u8]) -> Result<Value<'_>, BencodeError> {
    let mut d = Decoder { input, pos: 0 };
    let v = d.value(0)?;
    if d.pos != input.len() {
        return Err(BencodeError::TrailingBytes { at: d.pos });
    }
    Ok(v)
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    fn peek(&self) -> Result<u8, BencodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(BencodeError::UnexpectedEnd)
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, BencodeError> {
        if depth > MAX_DEPTH {
            return Err(BencodeError::TooDeep { at: self.pos });
        }
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                let n = self.integer(b'e')?;
                Ok(Value::Int(n))
            }
            b'0'..=b'9' => Ok(Value::Bytes(self.bytes()?)),
            b'l' => {
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => {
                self.pos += 1;
                let mut entries: Vec<Entry<'a>> = Vec::new();
                while self.peek()? != b'e' {
                    let key_at = self.pos;
                    if !self.peek()?.is_ascii_digit() {
                        return Err(BencodeError::Unexpected {
                            at: self.pos,
                            byte: self.peek()?,
                        });
                    }
                    let key = self.bytes()?;
                    if let Some(last) = entries.last() {
                        match last.key.cmp(key) {
                            std::cmp::Ordering::Less => {}
                            std::cmp::Ordering::Equal => {
                                return Err(BencodeError::DuplicateKey { at: key_at })
                            }
                            std::cmp::Ordering::Greater => {
                                return Err(BencodeError::UnsortedKeys { at: key_at })
                            }
                        }
                    }
                    let start = self.pos;
                    let value = self.value(depth + 1)?;
                    let raw = &self.input[start..self.pos];
                    entries.push(Entry { key, value, raw });
                }
                self.pos += 1;
                Ok(Value::Dict(entries))
            }
            byte => Err(BencodeError::Unexpected { at: self.pos, byte }),
        }
    }

    /// Digits up to `end`, canonical: no `+`, no leading zero, no `-0`, no empty number.
    fn integer(&mut self, end: u8) -> Result<i64, BencodeError> {
        let at = self.pos;
        let rest = &self.input[self.pos..];
        let len = rest
            .iter()
            .position(|&b| b == end)
            .ok_or(BencodeError::UnexpectedEnd)?;
        let text = &rest[..len];
        let digits = text.strip_prefix(b"-").unwrap_or(text);
        let canonical = !digits.is_empty()
            && digits.iter().all(u8::is_ascii_digit)
            && (digits == b"0" || digits[0] != b'0')
            && !(text[0] == b'-' && digits == b"0");
        if !canonical {
            return Err(BencodeError::BadInteger { at });
        }
        let n = std::str::from_utf8(text)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or(BencodeError::BadInteger { at })?;
        self.pos += len + 1;
        Ok(n)
    }

    fn bytes(&mut self) -> Result<&'a [u8], BencodeError> {
        let at = self.pos;
        let n = self.integer(b':').map_err(|e| match e {
            BencodeError::BadInteger { at } => BencodeError::BadLength { at },
            e => e,
        })?;
        if n < 0 {
            return Err(BencodeError::BadLength { at });
        }
        let left = self.input.len() - self.pos;
        if n as u64 > left as u64 {
            return Err(BencodeError::TooLong { at, len: n as u64 });
        }
        let s = &self.input[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }
}

impl<'a> Value<'a> {
    /// The value under `key` of a dictionary.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.entry(key).map(|e| &e.value)
    }

    /// The entry (with raw span) under `key` of a dictionary.
    pub fn entry(&self, key: &str) -> Option<&Entry<'a>> {
        match self {
            Value::Dict(entries) => entries.iter().find(|e| e.key == key.as_bytes()),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&'a str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match self {
            Value::List(items) => Some(items),
            _ => None,
        }
    }
}

/// An owned value to encode; dictionaries are `BTreeMap`s so keys come out sorted and unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owned {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Owned>),
    Dict(BTreeMap<Vec<u8>, Owned>),
}

impl Owned {
    pub fn str(s: &str) -> Owned {
        Owned::Bytes(s.as_bytes().to_vec())
    }

    /// A dictionary from `(key, value)` pairs.
    pub fn dict<'k>(pairs: impl IntoIterator<Item = (&'k str, Owned)>) -> Owned {
        Owned::Dict(
            pairs
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect(),
        )
    }
}

/// Canonical bencode of `value`.
pub fn encode(value: &Owned) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

fn encode_into(value: &Owned, out: &mut Vec<u8>) {
    match value {
        Owned::Int(n) => out.extend_from_slice(format!("i{n}e").as_bytes()),
        Owned::Bytes(b) => {
            out.extend_from_slice(format!("{}:", b.len()).as_bytes());
            out.extend_from_slice(b);
        }
        Owned::List(items) => {
            out.push(b'l');
            for item in items {
                encode_into(item, out);
            }
            out.push(b'e');
        }
        Owned::Dict(map) => {
            out.push(b'd');
            for (k, v) in map {
                out.extend_from_slice(format!("{}:", k.len()).as_bytes());
                out.extend_from_slice(k);
                encode_into(v, out);
            }
            out.push(b'e');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_kind_and_keeps_raw_spans() {
        let input = b"d1:ai-12e1:bl3:xyzi0ee4:infod1:xi7eee";
        let v = decode(input).unwrap();
        assert_eq!(v.get("a"), Some(&Value::Int(-12)));
        let list = v.get("b").unwrap().as_list().unwrap();
        assert_eq!(list[0], Value::Bytes(b"xyz"));
        assert_eq!(v.entry("info").unwrap().raw, b"d1:xi7ee");
    }

    #[test]
    fn round_trip_is_byte_identical() {
        let owned = Owned::dict([
            ("zeta", Owned::Int(0)),
            ("alpha", Owned::List(vec![Owned::str("x"), Owned::Int(-5)])),
            ("m", Owned::Bytes(vec![0, 255, 10])),
        ]);
        let bytes = encode(&owned);
        assert_eq!(bytes, b"d5:alphal1:xi-5ee1:m3:\x00\xff\x0a4:zetai0ee");
        let v = decode(&bytes).unwrap();
        assert_eq!(v.get("zeta"), Some(&Value::Int(0)));
    }

    #[test]
    fn refuses_non_canonical_integers() {
        for bad in [
            &b"i03e"[..],
            b"i-0e",
            b"ie",
            b"i-e",
            b"i+3e",
            b"i1.5e",
            b"i99999999999999999999e",
        ] {
            assert!(
                matches!(decode(bad), Err(BencodeError::BadInteger { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn refuses_non_canonical_and_huge_lengths() {
        assert!(matches!(
            decode(b"03:abc"),
            Err(BencodeError::BadLength { .. })
        ));
        assert!(decode(b"-1:a").is_err());
        assert!(matches!(
            decode(b"l-1:ae"),
            Err(BencodeError::Unexpected { .. })
        ));
        assert!(matches!(
            decode(b"99999999999:abc"),
            Err(BencodeError::TooLong { .. })
        ));
        assert!(matches!(
            decode(b"5:abc"),
            Err(BencodeError::TooLong { .. })
        ));
    }

    #[test]
    fn refuses_unsorted_and_duplicate_keys() {
        assert!(matches!(
            decode(b"d1:bi1e1:ai2ee"),
            Err(BencodeError::UnsortedKeys { .. })
        ));
        assert!(matches!(
            decode(b"d1:ai1e1:ai2ee"),
            Err(BencodeError::DuplicateKey { .. })
        ));
        assert!(matches!(
            decode(b"di1ei2ee"),
            Err(BencodeError::Unexpected { .. })
        ));
    }

    #[test]
    fn refuses_trailing_bytes_truncation_and_depth() {
        assert!(matches!(
            decode(b"i1ei2e"),
            Err(BencodeError::TrailingBytes { at: 3 })
        ));
        assert_eq!(decode(b"l1:a"), Err(BencodeError::UnexpectedEnd));
        assert_eq!(decode(b""), Err(BencodeError::UnexpectedEnd));
        let deep = [vec![b'l'; 10_000], vec![b'e'; 10_000]].concat();
        assert!(matches!(decode(&deep), Err(BencodeError::TooDeep { .. })));
        let ok = [vec![b'l'; MAX_DEPTH], vec![b'e'; MAX_DEPTH]].concat();
        assert!(decode(&ok).is_ok());
    }
}
