//! Reading the inputs of `peershare diagram`: trace lines (`core::trace`'s schema) and
//! P2PTracker++ `logs.log` lines. Pure: text in, events and problems out.
//!
//! A file is a trace when its first non-blank line starts with `{`, else a `logs.log`. A line that
//! is not what its file should hold becomes a [`Problem`] naming the file and line, and is
//! skipped: one bad line (a torn write from a crashed process, an editor's stray text) must not
//! hide the rest of a run.

use crate::core::pyjson::{self, Json};
use std::fmt;
use std::net::SocketAddr;

/// Lines longer than this are reported and skipped rather than held in memory.
pub const MAX_LINE: usize = 1 << 20;
/// Nesting allowed in a trace line (the message value sits two levels down).
const MAX_DEPTH: usize = 66;

/// A line that could not be read, with where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    /// 1-based.
    pub line: usize,
    pub why: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}; line skipped", self.file, self.line, self.why)
    }
}

/// What a trace line records (the `kind` and `dir` fields together).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceKind {
    Send,
    Recv,
    TransferBegin,
    TransferEnd,
    Failure,
}

/// One trace line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEvent {
    pub t_us: u64,
    pub process: String,
    pub thread: String,
    pub kind: TraceKind,
    /// `"tcp"` or `"udp"`.
    pub proto: String,
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    /// The message as one line of text: a string as it is, any other JSON value encoded.
    pub msg: String,
    pub size: Option<u64>,
    pub error: Option<String>,
}

/// One P2PTracker++ `logs.log` line: `<entity>,<COMMAND>,<fields…>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogLine {
    /// `<name>,LOCAL_CHUNKS,<idx>,localhost,<port>`: sent by a client, or received by the tracker
    /// when `entity` is `P2PTracker`.
    LocalChunks { entity: String, idx: u32, port: u16 },
    /// `<name>,WHERE_CHUNK,<idx>`: sent by a client or received by the tracker.
    WhereChunk { entity: String, idx: u32 },
    /// `P2PTracker,GET_CHUNK_FROM,<idx>,localhost,<port>,…` after the tracker sent it.
    GetChunkFrom {
        entity: String,
        idx: u32,
        ports: Vec<u16>,
    },
    /// `P2PTracker,CHUNK_LOCATION_UNKNOWN,<idx>` after the tracker sent it.
    ChunkLocationUnknown { entity: String, idx: u32 },
    /// `<name>,REQUEST_CHUNK,<idx>,localhost,<peer_port>` when a client asked that peer.
    RequestChunk { entity: String, idx: u32, port: u16 },
}

impl LogLine {
    /// The wire text this line stands for (the line without its entity).
    pub fn text(&self) -> String {
        match self {
            LogLine::LocalChunks { idx, port, .. } => {
                format!("LOCAL_CHUNKS,{idx},localhost,{port}")
            }
            LogLine::WhereChunk { idx, .. } => format!("WHERE_CHUNK,{idx}"),
            LogLine::GetChunkFrom { idx, ports, .. } => {
                let mut s = format!("GET_CHUNK_FROM,{idx}");
                for p in ports {
                    s.push_str(&format!(",localhost,{p}"));
                }
                s
            }
            LogLine::ChunkLocationUnknown { idx, .. } => format!("CHUNK_LOCATION_UNKNOWN,{idx}"),
            LogLine::RequestChunk { idx, port, .. } => {
                format!("REQUEST_CHUNK,{idx},localhost,{port}")
            }
        }
    }
}

/// What one input file held.
#[derive(Debug, Default)]
pub struct Parsed {
    pub trace: Vec<TraceEvent>,
    /// `logs.log` lines in file order (the file has no times).
    pub log: Vec<LogLine>,
    pub problems: Vec<Problem>,
}

/// Reads one file's bytes (`name` is how problems name it).
pub fn parse_file(name: &str, bytes: &[u8]) -> Parsed {
    let mut out = Parsed::default();
    let is_trace = bytes
        .split(|b| *b == b'\n')
        .map(|l| l.trim_ascii())
        .find(|l| !l.is_empty())
        .is_some_and(|l| l.starts_with(b"{"));
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = raw.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let problem = |why: String| Problem {
            file: name.to_string(),
            line: i + 1,
            why,
        };
        if line.len() > MAX_LINE {
            out.problems
                .push(problem(format!("line longer than {MAX_LINE} bytes")));
            continue;
        }
        let result = if is_trace {
            parse_trace_line(line).map(|e| out.trace.push(e))
        } else {
            parse_log_line(line).map(|l| out.log.push(l))
        };
        if let Err(why) = result {
            out.problems.push(problem(why));
        }
    }
    out
}

/// One trace line, or why it is not one.
pub fn parse_trace_line(line: &[u8]) -> Result<TraceEvent, String> {
    let v = pyjson::parse(line, MAX_DEPTH).map_err(|e| format!("not a JSON object ({e})"))?;
    if !matches!(v, Json::Object(_)) {
        return Err(format!("a trace line must be an object, not {}", v.kind()));
    }
    let string = |key: &str| match v.get(key) {
        Some(Json::String(s)) => Ok(Some(s.clone())),
        None => Ok(None),
        Some(other) => Err(format!("\"{key}\" is {}, not a string", other.kind())),
    };
    let required = |key: &str| string(key)?.ok_or_else(|| format!("\"{key}\" is missing"));
    let number = |key: &str| match v.get(key) {
        None => Ok(None),
        Some(n) => n
            .as_i128()
            .and_then(|n| u64::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| format!("\"{key}\" is not a non-negative integer")),
    };
    let addr = |key: &str| match string(key)? {
        None => Ok(None),
        Some(s) => s
            .parse::<SocketAddr>()
            .map(Some)
            .map_err(|_| format!("\"{key}\" is not ip:port: {s:?}")),
    };
    let t_us = number("t_us")?.ok_or("\"t_us\" is missing")?;
    let kind = match (required("kind")?.as_str(), string("dir")?.as_deref()) {
        ("message", Some("send")) => TraceKind::Send,
        ("message", Some("recv")) => TraceKind::Recv,
        ("message", _) => return Err("a message needs \"dir\": \"send\" or \"recv\"".into()),
        ("transfer_begin", _) => TraceKind::TransferBegin,
        ("transfer_end", _) => TraceKind::TransferEnd,
        ("failure", _) => TraceKind::Failure,
        (other, _) => return Err(format!("unknown \"kind\" {other:?}")),
    };
    let proto = required("proto")?;
    if proto != "tcp" && proto != "udp" {
        return Err(format!(
            "\"proto\" must be \"tcp\" or \"udp\", not {proto:?}"
        ));
    }
    let msg = match v.get("msg") {
        None => String::new(),
        Some(Json::String(s)) => s.clone(),
        Some(other) => json_text(other),
    };
    Ok(TraceEvent {
        t_us,
        process: required("process")?,
        thread: required("thread")?,
        kind,
        proto,
        local: addr("local")?,
        remote: addr("remote")?,
        msg,
        size: number("size")?,
        error: string("error")?,
    })
}

/// A log line's comma-separated fields, read for error messages that name the command.
struct Fields<'a> {
    f: &'a [&'a str],
    command: &'a str,
}

impl Fields<'_> {
    fn idx(&self) -> Result<u32, String> {
        self.f
            .get(2)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{} needs a chunk index as its second field", self.command))
    }

    fn port(&self, i: usize) -> Result<u16, String> {
        self.f
            .get(i)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{}: field {} is not a port", self.command, i + 1))
    }

    fn want(&self, n: usize) -> Result<(), String> {
        if self.f.len() == n {
            Ok(())
        } else {
            Err(format!(
                "{} lines have {n} fields, this one {}",
                self.command,
                self.f.len()
            ))
        }
    }
}

/// One `logs.log` line, or why it is not one. Spaces around fields are tolerated, as the
/// course's graders tolerate them.
pub fn parse_log_line(line: &[u8]) -> Result<LogLine, String> {
    let text = std::str::from_utf8(line).map_err(|_| "not UTF-8 text".to_string())?;
    let f: Vec<&str> = text.split(',').map(str::trim).collect();
    let entity = f[0].to_string();
    if entity.is_empty() {
        return Err("the line has no entity name before the first comma".into());
    }
    let command = f.get(1).copied().unwrap_or("");
    let fields = Fields { f: &f, command };
    let (idx, port, want) = (|| fields.idx(), |i| fields.port(i), |n| fields.want(n));
    match command {
        "LOCAL_CHUNKS" => {
            want(5)?;
            Ok(LogLine::LocalChunks {
                idx: idx()?,
                port: port(4)?,
                entity,
            })
        }
        "WHERE_CHUNK" => {
            want(3)?;
            Ok(LogLine::WhereChunk {
                idx: idx()?,
                entity,
            })
        }
        "GET_CHUNK_FROM" => {
            if f.len() < 3 || f.len().is_multiple_of(2) {
                return Err("GET_CHUNK_FROM lines have an index and ip,port pairs".into());
            }
            let ports = (4..f.len())
                .step_by(2)
                .map(port)
                .collect::<Result<_, _>>()?;
            Ok(LogLine::GetChunkFrom {
                idx: idx()?,
                ports,
                entity,
            })
        }
        "CHUNK_LOCATION_UNKNOWN" => {
            want(3)?;
            Ok(LogLine::ChunkLocationUnknown {
                idx: idx()?,
                entity,
            })
        }
        "REQUEST_CHUNK" => {
            want(5)?;
            Ok(LogLine::RequestChunk {
                idx: idx()?,
                port: port(4)?,
                entity,
            })
        }
        "" => Err("no command after the entity name".into()),
        other => Err(format!("unknown command {other:?}")),
    }
}

/// A JSON value as one line of compact text (`{"a": [1, 2]}`, Python's default separators), for
/// labels and for matching a sender's record with its receiver's.
pub fn json_text(v: &Json) -> String {
    let mut out = String::new();
    push_json(&mut out, v);
    out
}

fn push_json(out: &mut String, v: &Json) {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => out.push_str(n),
        Json::String(s) => pyjson::push_string(out, s),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                push_json(out, item);
            }
            out.push(']');
        }
        Json::Object(pairs) => {
            out.push('{');
            for (i, (k, item)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                pyjson::push_string(out, k);
                out.push_str(": ");
                push_json(out, item);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_of_every_command_parse() {
        let text = b"peer1,LOCAL_CHUNKS,2,localhost,36497\n\
            P2PTracker,WHERE_CHUNK,4\n\
            P2PTracker,GET_CHUNK_FROM,4,localhost,1,localhost,2\n\
            P2PTracker,CHUNK_LOCATION_UNKNOWN,9\n\
            \n\
            peer2,REQUEST_CHUNK,4,localhost,2\n";
        let p = parse_file("logs.log", text);
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert!(p.trace.is_empty());
        let texts: Vec<String> = p.log.iter().map(LogLine::text).collect();
        assert_eq!(
            texts,
            [
                "LOCAL_CHUNKS,2,localhost,36497",
                "WHERE_CHUNK,4",
                "GET_CHUNK_FROM,4,localhost,1,localhost,2",
                "CHUNK_LOCATION_UNKNOWN,9",
                "REQUEST_CHUNK,4,localhost,2",
            ]
        );
        assert_eq!(
            p.log[2],
            LogLine::GetChunkFrom {
                entity: "P2PTracker".into(),
                idx: 4,
                ports: vec![1, 2]
            }
        );
    }

    #[test]
    fn malformed_log_lines_are_reported_with_line_numbers_and_skipped() {
        let text = "peer1,WHERE_CHUNK,1\n\
            peer1,WHERE_CHUNK,x\n\
            garbage\n\
            peer1,LOCAL_CHUNKS,1,localhost\n\
            ,WHERE_CHUNK,1\n\
            peer1,HELLO,1\n\
            P2PTracker,GET_CHUNK_FROM,1,localhost\n\
            peer1,REQUEST_CHUNK,1,localhost,99999\n\
            peer2,WHERE_CHUNK,2\n";
        let p = parse_file("a/logs.log", text.as_bytes());
        assert_eq!(p.log.len(), 2);
        let lines: Vec<usize> = p.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            p.problems[4].to_string(),
            "a/logs.log:6: unknown command \"HELLO\"; line skipped"
        );
    }

    #[test]
    fn trace_lines_parse_and_bad_ones_say_why() {
        let text = concat!(
            r#"{"t_us":5,"process":"A","thread":"main","kind":"message","dir":"send","proto":"tcp","local":"127.0.0.1:1","remote":"127.0.0.1:2","msg":{"type": "ls", "n": [1]},"size":3}"#,
            "\n",
            r#"{"t_us":6,"process":"A","thread":"main","kind":"transfer_end","proto":"tcp","msg":"chunk 1","size":9,"error":"reset"}"#,
            "\n{\"t_us\":7,\n",
            r#"{"t_us":8,"process":"A","thread":"t","kind":"message","proto":"tcp","msg":"x"}"#,
            "\n",
            r#"{"t_us":-1,"process":"A","thread":"t","kind":"failure","proto":"tcp"}"#,
            "\n",
            r#"{"t_us":9,"process":"A","thread":"t","kind":"failure","proto":"sctp"}"#,
            "\n",
            r#"{"t_us":9,"process":"A","thread":"t","kind":"failure","proto":"udp","remote":"nowhere"}"#,
            "\n[1]\n",
        );
        let p = parse_file("t.jsonl", text.as_bytes());
        assert_eq!(p.trace.len(), 2);
        assert_eq!(p.trace[0].kind, TraceKind::Send);
        assert_eq!(p.trace[0].msg, r#"{"type": "ls", "n": [1]}"#);
        assert_eq!(p.trace[0].remote, Some("127.0.0.1:2".parse().unwrap()));
        assert_eq!(p.trace[1].kind, TraceKind::TransferEnd);
        assert_eq!(p.trace[1].error.as_deref(), Some("reset"));
        let lines: Vec<usize> = p.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [3, 4, 5, 6, 7, 8]);
        assert!(p.problems[1].why.contains("\"dir\""), "{}", p.problems[1]);
    }
}
