//! `logs.log` as the assignment fixes it: five line shapes, `entity,COMMAND,...`, no whitespace,
//! every IP `localhost`; any other line is a debug line, which the assignment allows.
//!
//! The message part of each line goes through the protocol's own codec ([`wire::parse_request`],
//! [`wire::parse_reply`], [`wire::parse_request_chunk`]); this module only adds the entity field
//! and the log's stricter rules (no whitespace, `localhost`). [`check`] is `--log FILE`: every
//! required line well-formed, and the consistency checks that need no run.

use crate::p2ptracker::wire::{self, Holder, Reply, Request};
use std::collections::{HashMap, HashSet};

const KEYWORDS: [&str; 5] = [
    "LOCAL_CHUNKS",
    "WHERE_CHUNK",
    "REQUEST_CHUNK",
    "GET_CHUNK_FROM",
    "CHUNK_LOCATION_UNKNOWN",
];

/// One well-formed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogLine {
    LocalChunks {
        entity: String,
        idx: u32,
        port: u16,
    },
    WhereChunk {
        entity: String,
        idx: u32,
    },
    RequestChunk {
        entity: String,
        idx: u32,
        port: u16,
    },
    GetChunkFrom {
        entity: String,
        idx: u32,
        ports: Vec<u16>,
    },
    Unknown {
        entity: String,
        idx: u32,
    },
}

impl LogLine {
    pub fn entity(&self) -> &str {
        match self {
            LogLine::LocalChunks { entity, .. }
            | LogLine::WhereChunk { entity, .. }
            | LogLine::RequestChunk { entity, .. }
            | LogLine::GetChunkFrom { entity, .. }
            | LogLine::Unknown { entity, .. } => entity,
        }
    }
}

/// A line read from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Line(LogLine),
    /// No protocol keyword anywhere: a debug line.
    Debug,
    /// Names a protocol message but breaks the format; the sentence says how.
    Malformed(String),
}

fn holders_are_localhost(holders: &[Holder]) -> bool {
    holders.iter().all(|h| h.ip == "localhost")
}

/// Parses one line (without its newline).
pub fn parse_line(line: &str) -> Parsed {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if !KEYWORDS.iter().any(|k| line.contains(k)) {
        return Parsed::Debug;
    }
    if line.chars().any(char::is_whitespace) {
        return Parsed::Malformed("contains whitespace".into());
    }
    let Some((entity, message)) = line.split_once(',') else {
        return Parsed::Malformed("has no `entity,` field".into());
    };
    if entity.is_empty() || KEYWORDS.contains(&entity) {
        return Parsed::Malformed("does not start with the entity name".into());
    }
    let entity = entity.to_string();
    match message.split(',').next().unwrap_or("") {
        "LOCAL_CHUNKS" | "WHERE_CHUNK" => request_line(entity, message),
        "REQUEST_CHUNK" => request_chunk_line(entity, message),
        "GET_CHUNK_FROM" | "CHUNK_LOCATION_UNKNOWN" => reply_line(entity, message),
        other => Parsed::Malformed(format!("{other:?} is not one of the five messages")),
    }
}

/// `LOCAL_CHUNKS,…` or `WHERE_CHUNK,…` after the entity.
fn request_line(entity: String, message: &str) -> Parsed {
    let bad = Parsed::Malformed;
    match wire::parse_request(message.as_bytes()) {
        Ok(Request::LocalChunks { idx, holder }) if holder.ip == "localhost" => {
            Parsed::Line(LogLine::LocalChunks {
                entity,
                idx,
                port: holder.port,
            })
        }
        Ok(Request::LocalChunks { holder, .. }) => {
            bad(format!("gives ip {:?}, not localhost", holder.ip))
        }
        Ok(Request::WhereChunk { idx }) => Parsed::Line(LogLine::WhereChunk { entity, idx }),
        Ok(Request::WhereChunkInvalid { text }) => bad(format!("{text:?} is not a chunk index")),
        Err(e) => bad(e.to_string()),
    }
}

/// `REQUEST_CHUNK,<idx>,localhost,<port>` after the entity (the peer it asked).
fn request_chunk_line(entity: String, message: &str) -> Parsed {
    let bad = Parsed::Malformed;
    let f: Vec<&str> = message.split(',').collect();
    if f.len() != 4 {
        return bad(format!("REQUEST_CHUNK has {} fields, wants 4", f.len()));
    }
    let Some(idx) = wire::parse_request_chunk(format!("{},{}", f[0], f[1]).as_bytes()) else {
        return bad(format!("{:?} is not a chunk index", f[1]));
    };
    if f[2] != "localhost" {
        return bad(format!("gives ip {:?}, not localhost", f[2]));
    }
    match wire::parse_port(f[3]) {
        Some(port) => Parsed::Line(LogLine::RequestChunk { entity, idx, port }),
        None => bad(format!("{:?} is not a port", f[3])),
    }
}

/// `GET_CHUNK_FROM,…` or `CHUNK_LOCATION_UNKNOWN,…` after the entity.
fn reply_line(entity: String, message: &str) -> Parsed {
    let bad = |why: &str| Parsed::Malformed(why.into());
    let idx_field = message.split(',').nth(1).unwrap_or("");
    let Some(idx) = wire::parse_idx(idx_field) else {
        return Parsed::Malformed(format!("{idx_field:?} is not a chunk index"));
    };
    let pairs = message.split(',').count().saturating_sub(2);
    match wire::parse_reply(message.as_bytes(), idx) {
        Some(Reply::Unknown) => Parsed::Line(LogLine::Unknown { entity, idx }),
        Some(Reply::Holders(h)) if h.len() * 2 == pairs && !h.is_empty() => {
            if holders_are_localhost(&h) {
                Parsed::Line(LogLine::GetChunkFrom {
                    entity,
                    idx,
                    ports: h.iter().map(|h| h.port).collect(),
                })
            } else {
                bad("names a holder whose ip is not localhost")
            }
        }
        Some(Reply::Holders(_)) => bad("holder list is not ip,port pairs"),
        None => bad("is not a well-formed reply"),
    }
}

/// Every line of a file with its 1-based number.
pub fn parse_file(text: &str) -> Vec<(usize, &str, Parsed)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l, parse_line(l)))
        .collect()
}

/// What `--log` found.
#[derive(Debug, Default)]
pub struct LogCheck {
    pub lines: usize,
    pub well_formed: usize,
    pub debug: usize,
    /// `line N: …` sentences.
    pub problems: Vec<String>,
}

/// Checks a whole `logs.log`: shapes, then the consistency rules that need no run.
pub fn check(text: &str) -> LogCheck {
    let mut out = LogCheck::default();
    // Ports the tracker (or anyone) announced per chunk, ports the tracker named per chunk,
    // chunks each entity announced.
    let mut announced: HashMap<u32, HashSet<u16>> = HashMap::new();
    let mut named: HashMap<u32, HashSet<u16>> = HashMap::new();
    let mut own: HashMap<String, HashSet<u32>> = HashMap::new();
    for (no, raw, parsed) in parse_file(text) {
        out.lines += 1;
        let line = match parsed {
            Parsed::Debug => {
                out.debug += 1;
                continue;
            }
            Parsed::Malformed(why) => {
                out.problems.push(format!("line {no}: {raw:?} {why}"));
                continue;
            }
            Parsed::Line(l) => l,
        };
        out.well_formed += 1;
        match &line {
            LogLine::LocalChunks { entity, idx, port } => {
                announced.entry(*idx).or_default().insert(*port);
                own.entry(entity.clone()).or_default().insert(*idx);
            }
            LogLine::GetChunkFrom { idx, ports, .. } => {
                for p in ports {
                    if !announced.get(idx).is_some_and(|s| s.contains(p)) {
                        out.problems.push(format!(
                            "line {no}: {raw:?} lists port {p}, which never announced chunk {idx}"
                        ));
                    }
                    named.entry(*idx).or_default().insert(*p);
                }
            }
            LogLine::RequestChunk { entity, idx, port } => {
                if own.get(entity).is_some_and(|s| s.contains(idx)) {
                    out.problems.push(format!(
                        "line {no}: {raw:?}: {entity} fetches chunk {idx}, which it announced"
                    ));
                }
                if !named.get(idx).is_some_and(|s| s.contains(port)) {
                    out.problems.push(format!(
                        "line {no}: {raw:?}: the tracker never named port {port} for chunk {idx}"
                    ));
                }
            }
            LogLine::WhereChunk { .. } | LogLine::Unknown { .. } => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_five_shapes_parse() {
        assert_eq!(
            parse_line("c1,LOCAL_CHUNKS,2,localhost,7003"),
            Parsed::Line(LogLine::LocalChunks {
                entity: "c1".into(),
                idx: 2,
                port: 7003
            })
        );
        assert_eq!(
            parse_line("P2PTracker,GET_CHUNK_FROM,2,localhost,7003,localhost,7004"),
            Parsed::Line(LogLine::GetChunkFrom {
                entity: "P2PTracker".into(),
                idx: 2,
                ports: vec![7003, 7004]
            })
        );
        assert!(matches!(
            parse_line("P2PTracker,CHUNK_LOCATION_UNKNOWN,9"),
            Parsed::Line(LogLine::Unknown { idx: 9, .. })
        ));
        assert!(matches!(
            parse_line("c2,REQUEST_CHUNK,4,localhost,7001"),
            Parsed::Line(LogLine::RequestChunk {
                idx: 4,
                port: 7001,
                ..
            })
        ));
        assert!(matches!(
            parse_line("c2,WHERE_CHUNK,4"),
            Parsed::Line(LogLine::WhereChunk { idx: 4, .. })
        ));
    }

    #[test]
    fn debug_lines_pass_and_broken_message_lines_say_why() {
        assert_eq!(parse_line("connected to tracker"), Parsed::Debug);
        for (line, why) in [
            ("c1, LOCAL_CHUNKS, 2, localhost, 7003", "whitespace"),
            ("c1,LOCAL_CHUNKS,2,127.0.0.1,7003", "not localhost"),
            ("LOCAL_CHUNKS,2,localhost,7003", "entity"),
            ("c1,WHERE_CHUNK,x", "not a chunk index"),
            ("P2PTracker,GET_CHUNK_FROM,2,localhost", "pairs"),
            ("c1,REQUEST_CHUNK,2,localhost", "fields"),
        ] {
            match parse_line(line) {
                Parsed::Malformed(w) => assert!(w.contains(why), "{line}: {w}"),
                other => panic!("{line}: {other:?}"),
            }
        }
    }

    #[test]
    fn check_finds_unnamed_holders_own_chunks_and_unannounced_ports() {
        let good = "P2PTracker,LOCAL_CHUNKS,1,localhost,7001\nc1,LOCAL_CHUNKS,1,localhost,7001\n\
                    c2,WHERE_CHUNK,1\nP2PTracker,WHERE_CHUNK,1\n\
                    P2PTracker,GET_CHUNK_FROM,1,localhost,7001\nc2,REQUEST_CHUNK,1,localhost,7001\n\
                    debug: done\n";
        let c = check(good);
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert_eq!((c.lines, c.debug), (7, 1));
        let bad = "P2PTracker,GET_CHUNK_FROM,1,localhost,7009\nc1,LOCAL_CHUNKS,2,localhost,7001\n\
                   c1,REQUEST_CHUNK,2,localhost,7002\n";
        let c = check(bad);
        assert_eq!(c.problems.len(), 3, "{:?}", c.problems);
        assert!(c.problems[0].starts_with("line 1:") && c.problems[0].contains("never announced"));
        assert!(
            c.problems[1].starts_with("line 3:") && c.problems[1].contains("which it announced")
        );
        assert!(c.problems[2].contains("never named port 7002"));
    }
}
