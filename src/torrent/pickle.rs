//! The slice of Python's pickle format that BitTorrent-Python puts on the wire: plain dicts of
//! ints, strings, bytes, `None`, lists and tuples.
//!
//! The originals call `pickle.loads` on every datagram, which executes whatever the sender asks
//! (GLOBAL + REDUCE is a remote shell). This decoder is hand-written instead of a crate because
//! the allow-list is the whole point: it knows only the opcodes listed in the spec (§3.1), every
//! other byte is an error, nothing is ever looked up or called, and every length is checked
//! against the bytes left before anything is allocated. A crate would accept far more and need an
//! allow-list scan in front of it anyway; this module is smaller than that combination.
//!
//! Decoding builds values in an arena so the memo behaves like Python's (a `BINGET` refers to the
//! same object, even a container filled after it was memoised); the arena is then expanded into a
//! [`Value`] tree under a depth limit (which also stops self-referencing containers) and a size
//! budget (so a few `BINGET`s of a large string cannot multiply memory).
//!
//! Encoding writes protocol 3 without memo or frame (what Python ≥ 3.0 reads), in key order.

use std::fmt;

/// A decoded plain-data value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    /// Key/value pairs in pickle order. A repeated key stays as a second pair; lookups take the
    /// last, which is the value Python's dict would hold.
    Dict(Vec<(Value, Value)>),
}

impl Value {
    /// `Value::Str` from anything string-like.
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// The value under string key `key`, when `self` is a dict.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(items) => items
                .iter()
                .rev()
                .find(|(k, _)| matches!(k, Value::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Largest pickle we decode (the largest UDP payload over IPv4).
pub const MAX_INPUT: usize = 65_507;
/// Deepest container nesting accepted.
pub const MAX_DEPTH: usize = 8;
/// Most items on the unpickler stack at once.
pub const MAX_STACK: usize = 4_096;
/// Most memo entries.
pub const MAX_MEMO: usize = 4_096;
/// Most bytes and items the decoded tree may hold once memo references are expanded.
pub const MAX_EXPANDED: usize = 1 << 20;

/// Why a byte string was not accepted as a plain-data pickle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PickleError {
    TooLong(usize),
    NoProtocol,
    Protocol(u8),
    Truncated,
    Forbidden(u8),
    BadLength,
    BadUtf8,
    StackFull,
    StackEmpty,
    NoMark,
    MemoFull,
    MemoMissing(u32),
    WrongType(&'static str),
    TooDeep,
    TooLarge,
    TrailingBytes(usize),
    NoStop,
    NotAStrKeyedDict,
}

impl fmt::Display for PickleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PickleError::TooLong(n) => write!(f, "the pickle is {n} bytes, more than {MAX_INPUT}"),
            PickleError::NoProtocol => write!(f, "the pickle does not start with PROTO"),
            PickleError::Protocol(p) => write!(f, "pickle protocol {p} is not 2 to 5"),
            PickleError::Truncated => write!(f, "the pickle ends in the middle of an opcode"),
            PickleError::Forbidden(op) => write!(f, "opcode 0x{op:02x} is not allowed"),
            PickleError::BadLength => write!(f, "a length is larger than the bytes left"),
            PickleError::BadUtf8 => write!(f, "a string is not valid UTF-8"),
            PickleError::StackFull => write!(f, "the pickle stack grows past {MAX_STACK} items"),
            PickleError::StackEmpty => write!(f, "an opcode needs more items than the stack has"),
            PickleError::NoMark => write!(f, "an opcode needs a MARK that is not there"),
            PickleError::MemoFull => write!(f, "the memo grows past {MAX_MEMO} entries"),
            PickleError::MemoMissing(i) => write!(f, "memo entry {i} does not exist"),
            PickleError::WrongType(what) => write!(f, "{what}"),
            PickleError::TooDeep => write!(f, "containers are nested deeper than {MAX_DEPTH}"),
            PickleError::TooLarge => write!(f, "the decoded value would be too large"),
            PickleError::TrailingBytes(n) => write!(f, "{n} bytes follow STOP"),
            PickleError::NoStop => write!(f, "the pickle has no STOP"),
            PickleError::NotAStrKeyedDict => {
                write!(f, "the pickle is not a dict with string keys")
            }
        }
    }
}

impl std::error::Error for PickleError {}

mod op {
    pub const PROTO: u8 = 0x80;
    pub const FRAME: u8 = 0x95;
    pub const STOP: u8 = 0x2e;
    pub const MARK: u8 = 0x28;
    pub const EMPTY_DICT: u8 = 0x7d;
    pub const SETITEM: u8 = 0x73;
    pub const SETITEMS: u8 = 0x75;
    pub const EMPTY_LIST: u8 = 0x5d;
    pub const APPEND: u8 = 0x61;
    pub const APPENDS: u8 = 0x65;
    pub const EMPTY_TUPLE: u8 = 0x29;
    pub const TUPLE: u8 = 0x74;
    pub const TUPLE1: u8 = 0x85;
    pub const TUPLE2: u8 = 0x86;
    pub const TUPLE3: u8 = 0x87;
    pub const NONE: u8 = 0x4e;
    pub const NEWTRUE: u8 = 0x88;
    pub const NEWFALSE: u8 = 0x89;
    pub const BININT: u8 = 0x4a;
    pub const BININT1: u8 = 0x4b;
    pub const BININT2: u8 = 0x4d;
    pub const LONG1: u8 = 0x8a;
    pub const BINUNICODE: u8 = 0x58;
    pub const SHORT_BINUNICODE: u8 = 0x8c;
    pub const BINUNICODE8: u8 = 0x8d;
    pub const BINBYTES: u8 = 0x42;
    pub const SHORT_BINBYTES: u8 = 0x43;
    pub const BINBYTES8: u8 = 0x8e;
    pub const BINPUT: u8 = 0x71;
    pub const LONG_BINPUT: u8 = 0x72;
    pub const MEMOIZE: u8 = 0x94;
    pub const BINGET: u8 = 0x68;
    pub const LONG_BINGET: u8 = 0x6a;
}

/// One object being built; containers refer to other nodes by index.
enum Node {
    Scalar(Value),
    List(Vec<usize>),
    Tuple(Vec<usize>),
    Dict(Vec<(usize, usize)>),
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        if n > self.bytes.len() - self.pos {
            return Err(PickleError::Truncated);
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn le(&mut self, n: usize) -> Result<u64, PickleError> {
        let b = self.take(n)?;
        Ok(b.iter()
            .rev()
            .fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }

    /// A length prefix of `n` bytes, checked against what is left before anything is allocated.
    fn len(&mut self, n: usize) -> Result<usize, PickleError> {
        let len = self.le(n)?;
        let left = (self.bytes.len() - self.pos) as u64;
        if len > left {
            return Err(PickleError::BadLength);
        }
        Ok(len as usize)
    }
}

struct Machine {
    nodes: Vec<Node>,
    stack: Vec<usize>,
    marks: Vec<usize>,
    memo: std::collections::HashMap<u32, usize>,
}

impl Machine {
    fn push(&mut self, node: Node) -> Result<(), PickleError> {
        if self.stack.len() >= MAX_STACK {
            return Err(PickleError::StackFull);
        }
        self.nodes.push(node);
        self.stack.push(self.nodes.len() - 1);
        Ok(())
    }

    fn push_ref(&mut self, id: usize) -> Result<(), PickleError> {
        if self.stack.len() >= MAX_STACK {
            return Err(PickleError::StackFull);
        }
        self.stack.push(id);
        Ok(())
    }

    fn pop(&mut self) -> Result<usize, PickleError> {
        self.stack.pop().ok_or(PickleError::StackEmpty)
    }

    fn top(&self) -> Result<usize, PickleError> {
        self.stack.last().copied().ok_or(PickleError::StackEmpty)
    }

    /// Items pushed since the last MARK (which is removed).
    fn pop_mark(&mut self) -> Result<Vec<usize>, PickleError> {
        let mark = self.marks.pop().ok_or(PickleError::NoMark)?;
        if mark > self.stack.len() {
            return Err(PickleError::StackEmpty);
        }
        Ok(self.stack.split_off(mark))
    }

    fn put(&mut self, idx: u32) -> Result<(), PickleError> {
        let top = self.top()?;
        if !self.memo.contains_key(&idx) && self.memo.len() >= MAX_MEMO {
            return Err(PickleError::MemoFull);
        }
        self.memo.insert(idx, top);
        Ok(())
    }

    fn get(&mut self, idx: u32) -> Result<(), PickleError> {
        let id = *self.memo.get(&idx).ok_or(PickleError::MemoMissing(idx))?;
        self.push_ref(id)
    }

    fn append(&mut self, items: Vec<usize>) -> Result<(), PickleError> {
        let target = self.top()?;
        match &mut self.nodes[target] {
            Node::List(list) => {
                list.extend(items);
                Ok(())
            }
            _ => Err(PickleError::WrongType("APPEND needs a list below it")),
        }
    }

    fn set_items(&mut self, items: Vec<usize>) -> Result<(), PickleError> {
        if !items.len().is_multiple_of(2) {
            return Err(PickleError::WrongType("SETITEMS needs key/value pairs"));
        }
        let target = self.top()?;
        match &mut self.nodes[target] {
            Node::Dict(dict) => {
                dict.extend(items.chunks_exact(2).map(|kv| (kv[0], kv[1])));
                Ok(())
            }
            _ => Err(PickleError::WrongType("SETITEM needs a dict below it")),
        }
    }

    /// Expands node `id` into a tree, charging `budget` for every item and byte.
    fn expand(&self, id: usize, depth: usize, budget: &mut usize) -> Result<Value, PickleError> {
        let mut charge = |n: usize| -> Result<(), PickleError> {
            *budget = budget.checked_sub(n.max(1)).ok_or(PickleError::TooLarge)?;
            Ok(())
        };
        let container_depth = || {
            if depth >= MAX_DEPTH {
                Err(PickleError::TooDeep)
            } else {
                Ok(depth + 1)
            }
        };
        match &self.nodes[id] {
            Node::Scalar(v) => {
                charge(match v {
                    Value::Str(s) => s.len(),
                    Value::Bytes(b) => b.len(),
                    _ => 1,
                })?;
                Ok(v.clone())
            }
            Node::List(items) => {
                let d = container_depth()?;
                charge(items.len())?;
                let list = items
                    .iter()
                    .map(|&i| self.expand(i, d, budget))
                    .collect::<Result<_, _>>()?;
                Ok(Value::List(list))
            }
            Node::Tuple(items) => {
                let d = container_depth()?;
                charge(items.len())?;
                let tuple = items
                    .iter()
                    .map(|&i| self.expand(i, d, budget))
                    .collect::<Result<_, _>>()?;
                Ok(Value::Tuple(tuple))
            }
            Node::Dict(items) => {
                let d = container_depth()?;
                charge(items.len())?;
                // Repeated keys are kept as pairs (no quadratic de-duplication on hostile
                // input); [`Value::get`] reads the last one, as Python's dict keeps the last.
                let dict = items
                    .iter()
                    .map(|&(k, v)| Ok((self.expand(k, d, budget)?, self.expand(v, d, budget)?)))
                    .collect::<Result<_, PickleError>>()?;
                Ok(Value::Dict(dict))
            }
        }
    }
}

fn text(bytes: &[u8]) -> Result<Node, PickleError> {
    let s = std::str::from_utf8(bytes).map_err(|_| PickleError::BadUtf8)?;
    Ok(Node::Scalar(Value::Str(s.to_owned())))
}

/// Decodes any allowed plain-data pickle (protocol 2 to 5) into a [`Value`].
pub fn decode(bytes: &[u8]) -> Result<Value, PickleError> {
    if bytes.len() > MAX_INPUT {
        return Err(PickleError::TooLong(bytes.len()));
    }
    let mut r = Reader { bytes, pos: 0 };
    match r.byte() {
        Ok(op::PROTO) => {}
        Ok(_) => return Err(PickleError::NoProtocol),
        Err(_) => return Err(PickleError::Truncated),
    }
    let proto = r.byte()?;
    if !(2..=5).contains(&proto) {
        return Err(PickleError::Protocol(proto));
    }
    let mut m = Machine {
        nodes: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: Default::default(),
    };
    loop {
        let code = r.byte().map_err(|_| PickleError::NoStop)?;
        if code == op::STOP {
            break;
        }
        match read_scalar(code, &mut r)? {
            Some(node) => m.push(node)?,
            None => m.step(code, &mut r)?,
        }
    }
    if r.pos != bytes.len() {
        return Err(PickleError::TrailingBytes(bytes.len() - r.pos));
    }
    m.finish()
}

/// A scalar opcode's value (reading its argument), or `None` for every other opcode.
fn read_scalar(code: u8, r: &mut Reader<'_>) -> Result<Option<Node>, PickleError> {
    Ok(match code {
        op::NONE => Some(Node::Scalar(Value::None)),
        op::NEWTRUE => Some(Node::Scalar(Value::Bool(true))),
        op::NEWFALSE => Some(Node::Scalar(Value::Bool(false))),
        op::BININT => {
            let v = r.le(4)? as u32 as i32;
            Some(Node::Scalar(Value::Int(i64::from(v))))
        }
        op::BININT1 => {
            let v = r.le(1)?;
            Some(Node::Scalar(Value::Int(v as i64)))
        }
        op::BININT2 => {
            let v = r.le(2)?;
            Some(Node::Scalar(Value::Int(v as i64)))
        }
        op::LONG1 => {
            let n = usize::from(r.byte()?);
            if n > 8 {
                return Err(PickleError::WrongType(
                    "LONG1 integers over 8 bytes are refused",
                ));
            }
            let raw = r.le(n)?;
            let v = if n == 0 {
                0
            } else {
                // Sign-extend the n-byte two's complement number.
                let shift = 64 - 8 * n as u32;
                ((raw << shift) as i64) >> shift
            };
            Some(Node::Scalar(Value::Int(v)))
        }
        op::BINUNICODE => {
            let n = r.len(4)?;
            Some(text(r.take(n)?)?)
        }
        op::SHORT_BINUNICODE => {
            let n = r.len(1)?;
            Some(text(r.take(n)?)?)
        }
        op::BINUNICODE8 => {
            let n = r.len(8)?;
            Some(text(r.take(n)?)?)
        }
        op::BINBYTES | op::SHORT_BINBYTES | op::BINBYTES8 => {
            let width = match code {
                op::BINBYTES => 4,
                op::SHORT_BINBYTES => 1,
                _ => 8,
            };
            let n = r.len(width)?;
            Some(Node::Scalar(Value::Bytes(r.take(n)?.to_vec())))
        }
        _ => None,
    })
}

impl Machine {
    /// Runs one structural or memo opcode; anything not on the allow-list is an error.
    #[allow(
        clippy::too_many_lines,
        reason = "one arm per allowed opcode: the allow-list is easiest to audit as one match"
    )]
    fn step(&mut self, code: u8, r: &mut Reader<'_>) -> Result<(), PickleError> {
        match code {
            op::FRAME => {
                r.len(8)?;
            }
            op::MARK => {
                if self.marks.len() >= MAX_STACK {
                    return Err(PickleError::StackFull);
                }
                self.marks.push(self.stack.len());
            }
            op::EMPTY_DICT => self.push(Node::Dict(Vec::new()))?,
            op::EMPTY_LIST => self.push(Node::List(Vec::new()))?,
            op::EMPTY_TUPLE => self.push(Node::Tuple(Vec::new()))?,
            op::SETITEM => {
                let v = self.pop()?;
                let k = self.pop()?;
                self.set_items(vec![k, v])?;
            }
            op::SETITEMS => {
                let items = self.pop_mark()?;
                self.set_items(items)?;
            }
            op::APPEND => {
                let v = self.pop()?;
                self.append(vec![v])?;
            }
            op::APPENDS => {
                let items = self.pop_mark()?;
                self.append(items)?;
            }
            op::TUPLE => {
                let items = self.pop_mark()?;
                self.push(Node::Tuple(items))?;
            }
            op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                let n = usize::from(code - op::TUPLE1 + 1);
                if self.stack.len() < n {
                    return Err(PickleError::StackEmpty);
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.push(Node::Tuple(items))?;
            }
            op::BINPUT => {
                let i = r.le(1)? as u32;
                self.put(i)?;
            }
            op::LONG_BINPUT => {
                let i = r.le(4)? as u32;
                self.put(i)?;
            }
            op::MEMOIZE => {
                let i = self.memo.len() as u32;
                self.put(i)?;
            }
            op::BINGET => {
                let i = r.le(1)? as u32;
                self.get(i)?;
            }
            op::LONG_BINGET => {
                let i = r.le(4)? as u32;
                self.get(i)?;
            }
            other => return Err(PickleError::Forbidden(other)),
        }
        Ok(())
    }

    /// The one value left on the stack, expanded, which must be a dict with string keys.
    fn finish(&self) -> Result<Value, PickleError> {
        if self.stack.len() != 1 || !self.marks.is_empty() {
            return Err(PickleError::WrongType(
                "the pickle leaves other than exactly one value",
            ));
        }
        let mut budget = MAX_EXPANDED;
        let value = self.expand(self.stack[0], 0, &mut budget)?;
        match &value {
            Value::Dict(items) if items.iter().all(|(k, _)| matches!(k, Value::Str(_))) => {
                Ok(value)
            }
            _ => Err(PickleError::NotAStrKeyedDict),
        }
    }
}

/// Encodes `value` as a protocol-3 pickle without memo or frame.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = vec![op::PROTO, 3];
    write_value(&mut out, value);
    out.push(op::STOP);
    out
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::None => out.push(op::NONE),
        Value::Bool(true) => out.push(op::NEWTRUE),
        Value::Bool(false) => out.push(op::NEWFALSE),
        Value::Int(i) => write_int(out, *i),
        Value::Str(s) => {
            out.push(op::BINUNICODE);
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bytes(b) => {
            if b.len() < 256 {
                out.push(op::SHORT_BINBYTES);
                out.push(b.len() as u8);
            } else {
                out.push(op::BINBYTES);
                out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            }
            out.extend_from_slice(b);
        }
        Value::List(items) => {
            out.push(op::EMPTY_LIST);
            if !items.is_empty() {
                out.push(op::MARK);
                items.iter().for_each(|v| write_value(out, v));
                out.push(op::APPENDS);
            }
        }
        Value::Tuple(items) => match items.len() {
            0 => out.push(op::EMPTY_TUPLE),
            1..=3 => {
                items.iter().for_each(|v| write_value(out, v));
                out.push(op::TUPLE1 + items.len() as u8 - 1);
            }
            _ => {
                out.push(op::MARK);
                items.iter().for_each(|v| write_value(out, v));
                out.push(op::TUPLE);
            }
        },
        Value::Dict(items) => {
            out.push(op::EMPTY_DICT);
            if !items.is_empty() {
                out.push(op::MARK);
                for (k, v) in items {
                    write_value(out, k);
                    write_value(out, v);
                }
                out.push(op::SETITEMS);
            }
        }
    }
}

/// Python's choice of integer opcode: BININT1, BININT2, BININT, else LONG1 (minimal bytes).
fn write_int(out: &mut Vec<u8>, i: i64) {
    if (0..=0xff).contains(&i) {
        out.extend_from_slice(&[op::BININT1, i as u8]);
    } else if (0..=0xffff).contains(&i) {
        out.push(op::BININT2);
        out.extend_from_slice(&(i as u16).to_le_bytes());
    } else if i32::try_from(i).is_ok() {
        out.push(op::BININT);
        out.extend_from_slice(&(i as i32).to_le_bytes());
    } else {
        let full = i.to_le_bytes();
        let mut n = 8;
        // Drop redundant sign bytes while the next byte still carries the sign.
        while n > 1 {
            let top = full[n - 1];
            let next_sign = full[n - 2] & 0x80;
            if (top == 0 && next_sign == 0) || (top == 0xff && next_sign != 0) {
                n -= 1;
            } else {
                break;
            }
        }
        out.extend_from_slice(&[op::LONG1, n as u8]);
        out.extend_from_slice(&full[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict(items: Vec<(&str, Value)>) -> Value {
        Value::Dict(items.into_iter().map(|(k, v)| (Value::str(k), v)).collect())
    }

    #[test]
    fn every_value_kind_round_trips() {
        let v = dict(vec![
            ("n", Value::None),
            ("t", Value::Bool(true)),
            ("f", Value::Bool(false)),
            ("small", Value::Int(7)),
            ("mid", Value::Int(40_000)),
            ("neg", Value::Int(-1)),
            ("big", Value::Int(1 << 40)),
            ("min", Value::Int(i64::MIN)),
            ("negbig", Value::Int(-(1 << 40))),
            ("s", Value::str("héllo")),
            ("b", Value::Bytes(vec![1; 300])),
            ("sb", Value::Bytes(vec![2; 3])),
            ("l", Value::List(vec![Value::Int(1), Value::str("x")])),
            ("el", Value::List(vec![])),
            ("t0", Value::Tuple(vec![])),
            ("t2", Value::Tuple(vec![Value::Int(0), Value::Int(7216)])),
            ("t5", Value::Tuple(vec![Value::Int(1); 5])),
            ("d", dict(vec![("k", Value::Int(1))])),
        ]);
        assert_eq!(decode(&encode(&v)).unwrap(), v);
    }

    #[test]
    fn long1_uses_minimal_two_complement_bytes() {
        let mut out = Vec::new();
        write_int(&mut out, 1 << 31);
        assert_eq!(out, [op::LONG1, 5, 0, 0, 0, 0x80, 0]);
        out.clear();
        write_int(&mut out, -(1 << 31) - 1);
        assert_eq!(out, [op::LONG1, 5, 0xff, 0xff, 0xff, 0x7f, 0xff]);
    }

    #[test]
    fn memo_references_share_objects_filled_after_memoising() {
        // {'a': [1], 'b': <memo 1>} where the list was memoised while still empty.
        let bytes = [
            0x80, 4, 0x7d, 0x94, 0x28, 0x8c, 1, b'a', 0x94, 0x5d, 0x94, 0x4b, 1, 0x61, 0x8c, 1,
            b'b', 0x94, 0x68, 2, 0x75, 0x2e,
        ];
        let v = decode(&bytes).unwrap();
        assert_eq!(v.get("b"), Some(&Value::List(vec![Value::Int(1)])));
        assert_eq!(v.get("a"), v.get("b"));
    }

    #[test]
    fn a_repeated_key_reads_as_its_last_value() {
        // {'a': 1, 'a': 2} through SETITEMS.
        let bytes = [
            0x80, 4, 0x7d, 0x28, 0x8c, 1, b'a', 0x4b, 1, 0x8c, 1, b'a', 0x4b, 2, 0x75, 0x2e,
        ];
        assert_eq!(decode(&bytes).unwrap().get("a"), Some(&Value::Int(2)));
    }

    #[test]
    fn self_referencing_list_is_too_deep_not_a_hang() {
        // {'a': L} where L = []; L.append(L)
        let bytes = [
            0x80, 4, 0x7d, 0x8c, 1, b'a', 0x5d, 0x94, 0x68, 0, 0x61, 0x73, 0x2e,
        ];
        assert_eq!(decode(&bytes), Err(PickleError::TooDeep));
    }

    #[test]
    fn memo_amplification_hits_the_budget() {
        // A 60,000-byte string fetched from the memo 100 times into a list.
        let mut b = vec![0x80, 4, 0x7d, 0x8c, 1, b'a', 0x5d, 0x28];
        b.push(op::BINUNICODE);
        b.extend_from_slice(&60_000u32.to_le_bytes());
        b.extend(std::iter::repeat_n(b'x', 60_000));
        b.extend_from_slice(&[op::BINPUT, 0]);
        for _ in 0..100 {
            b.extend_from_slice(&[op::BINGET, 0]);
        }
        b.extend_from_slice(&[op::APPENDS, op::SETITEM, op::STOP]);
        assert_eq!(decode(&b), Err(PickleError::TooLarge));
    }

    #[test]
    fn forbidden_and_malformed_inputs_are_errors() {
        // GLOBAL 'os\nsystem\n' then REDUCE: the classic remote shell.
        let evil = b"\x80\x04cos\nsystem\n(S'id'\ntR.";
        assert_eq!(decode(evil), Err(PickleError::Forbidden(b'c')));
        assert_eq!(decode(b""), Err(PickleError::Truncated));
        assert_eq!(decode(b"}."), Err(PickleError::NoProtocol));
        assert_eq!(decode(b"\x80\x01}."), Err(PickleError::Protocol(1)));
        assert_eq!(decode(b"\x80\x03}"), Err(PickleError::NoStop));
        assert_eq!(decode(b"\x80\x03}.x"), Err(PickleError::TrailingBytes(1)));
        assert_eq!(decode(b"\x80\x03]."), Err(PickleError::NotAStrKeyedDict));
        assert_eq!(
            decode(b"\x80\x03X\xff\xff\xff\x7f."),
            Err(PickleError::BadLength)
        );
        assert_eq!(
            decode(b"\x80\x03\x8e\xff\xff\xff\xff\xff\xff\xff\xff."),
            Err(PickleError::BadLength)
        );
        assert_eq!(decode(b"\x80\x03}s."), Err(PickleError::StackEmpty));
        assert_eq!(decode(b"\x80\x03}u."), Err(PickleError::NoMark));
        assert_eq!(decode(b"\x80\x03h\x05."), Err(PickleError::MemoMissing(5)));
        assert_eq!(
            decode(b"\x80\x03\x8c\x02\xff\xfe."),
            Err(PickleError::BadUtf8)
        );
        assert_eq!(
            decode(&vec![0u8; MAX_INPUT + 1]),
            Err(PickleError::TooLong(MAX_INPUT + 1))
        );
    }
}
