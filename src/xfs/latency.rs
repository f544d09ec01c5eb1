//! `latency.txt`: the static table of emulated peer-to-peer delays, and the peer choice it feeds
//! (`latency + 10 × load`).
//!
//! One line per ordered pair, `srcIP srcPort dstIP dstPort ms`, whitespace-separated (extra
//! fields after the fifth are ignored, as the original's `split()` indexing did). The first line
//! matching a pair wins; a pair without a line costs [`DEFAULT_LATENCY_MS`]. A line that cannot be
//! read is skipped with one warning that names it, so one typo never disables the whole table.
//! Blank lines and lines starting with `#` are skipped silently.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

/// What a pair without a line in the table costs, in milliseconds.
pub const DEFAULT_LATENCY_MS: u64 = 100;

/// One readable line: the delay from `src` to `dst`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyEntry {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub ms: u64,
}

/// A line that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number.
    pub number: usize,
    pub text: String,
    pub reason: &'static str,
}

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {} ({:?}) is skipped: {}",
            self.number, self.text, self.reason
        )
    }
}

/// The parsed table, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencyTable {
    pub entries: Vec<LatencyEntry>,
}

/// `localhost` or an IP literal (what the original compared as text; we compare addresses so
/// `localhost` and `127.0.0.1` agree).
fn parse_ip(text: &str) -> Option<IpAddr> {
    if text.eq_ignore_ascii_case("localhost") {
        return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    text.parse().ok()
}

impl LatencyTable {
    /// Parses the table's text; returns the table and the lines it skipped.
    pub fn parse(text: &str) -> (LatencyTable, Vec<BadLine>) {
        let mut table = LatencyTable::default();
        let mut bad = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            match parse_line(trimmed) {
                Ok(entry) => table.entries.push(entry),
                Err(reason) => bad.push(BadLine {
                    number: i + 1,
                    text: trimmed.to_string(),
                    reason,
                }),
            }
        }
        (table, bad)
    }

    /// Reads the table at `path` without logging: the table and one warning sentence per problem
    /// (each skipped line, named; or the unreadable file, in which case every pair uses the
    /// default). Callers that re-read the file decide how often to repeat the warnings.
    pub fn read(path: &Path) -> (LatencyTable, Vec<String>) {
        match std::fs::read(path) {
            Ok(bytes) => {
                let (table, bad) = LatencyTable::parse(&String::from_utf8_lossy(&bytes));
                let warnings = bad
                    .iter()
                    .map(|line| format!("{}: {line}", path.display()))
                    .collect();
                (table, warnings)
            }
            Err(e) => {
                let why = if e.kind() == io::ErrorKind::NotFound {
                    "does not exist".to_string()
                } else {
                    format!("cannot be read: {e}")
                };
                let warning = format!(
                    "{} {why}; every pair uses the default latency of {DEFAULT_LATENCY_MS} ms",
                    path.display()
                );
                (LatencyTable::default(), vec![warning])
            }
        }
    }

    /// [`LatencyTable::read`], logging every warning.
    pub fn load(path: &Path) -> LatencyTable {
        let (table, warnings) = LatencyTable::read(path);
        for w in warnings {
            log::warn!("{w}");
        }
        table
    }

    /// The first matching line's delay from `src` to `dst`, else [`DEFAULT_LATENCY_MS`].
    pub fn latency_ms(&self, src: SocketAddr, dst: SocketAddr) -> u64 {
        self.entries
            .iter()
            .find(|e| e.src == src && e.dst == dst)
            .map_or(DEFAULT_LATENCY_MS, |e| e.ms)
    }
}

fn parse_line(line: &str) -> Result<LatencyEntry, &'static str> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 5 {
        return Err("expected `srcIP srcPort dstIP dstPort ms`");
    }
    let src_ip = parse_ip(fields[0]).ok_or("the source is not an IP address")?;
    let src_port: u16 = fields[1]
        .parse()
        .map_err(|_| "the source port is not a port")?;
    let dst_ip = parse_ip(fields[2]).ok_or("the destination is not an IP address")?;
    let dst_port: u16 = fields[3]
        .parse()
        .map_err(|_| "the destination port is not a port")?;
    let ms: u64 = fields[4]
        .parse()
        .map_err(|_| "the latency is not a whole number of milliseconds")?;
    Ok(LatencyEntry {
        src: SocketAddr::new(src_ip, src_port),
        dst: SocketAddr::new(dst_ip, dst_port),
        ms,
    })
}

/// The score of a peer, `latency + 10 × load` (the original README's formula: one download in
/// progress weighs as much as 10 ms of latency).
pub fn latency_load_score(latency_ms: u64, load: u64) -> u64 {
    latency_ms.saturating_add(load.saturating_mul(10))
}

/// Candidate indices ranked best first by [`latency_load_score`] over `(latency_ms, load)` pairs
/// given in the tracker's order; equal scores keep that order (the sort is stable), so the first
/// entry is the peer to ask and the rest are the fallbacks.
pub fn rank_by_latency_and_load(candidates: &[(u64, u64)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by_key(|&i| latency_load_score(candidates[i].0, candidates[i].1));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn first_matching_line_wins_and_unlisted_pairs_cost_the_default() {
        let (t, bad) = LatencyTable::parse(
            "127.0.0.1 5001 127.0.0.1 5002 20\n\
             localhost 5001 127.0.0.1 5002 99\n\
             \n# comment\n\
             127.0.0.1 5002 127.0.0.1 5001 30 extra\n",
        );
        assert!(bad.is_empty());
        assert_eq!(t.latency_ms(a("127.0.0.1:5001"), a("127.0.0.1:5002")), 20);
        assert_eq!(t.latency_ms(a("127.0.0.1:5002"), a("127.0.0.1:5001")), 30);
        assert_eq!(t.latency_ms(a("127.0.0.1:5001"), a("127.0.0.1:5003")), 100);
    }

    #[test]
    fn bad_lines_are_skipped_and_named() {
        let (t, bad) = LatencyTable::parse(
            "127.0.0.1 5001 127.0.0.1 5002\n\
             127.0.0.1 5001 127.0.0.1 5003 fast\n\
             nohost 5001 127.0.0.1 5003 5\n\
             127.0.0.1 70000 127.0.0.1 5003 5\n\
             127.0.0.1 5001 127.0.0.1 5003 -4\n\
             127.0.0.1 5001 127.0.0.1 5003 7\n",
        );
        assert_eq!(
            bad.iter().map(|b| b.number).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
        assert_eq!(t.latency_ms(a("127.0.0.1:5001"), a("127.0.0.1:5003")), 7);
        let text = bad[1].to_string();
        assert!(text.contains("line 2"), "{text}");
        assert!(text.contains("fast"), "{text}");
    }

    #[test]
    fn a_missing_file_is_an_empty_table() {
        let dir = tempfile::tempdir().unwrap();
        let t = LatencyTable::load(&dir.path().join("nope.txt"));
        assert!(t.entries.is_empty());
        let (_, warnings) = LatencyTable::read(&dir.path().join("nope.txt"));
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains("nope.txt does not exist"),
            "{warnings:?}"
        );
        assert_eq!(t.latency_ms(a("127.0.0.1:1"), a("127.0.0.1:2")), 100);
    }

    #[test]
    fn rank_adds_ten_ms_per_download_and_keeps_tracker_order_on_ties() {
        // README example: 20 ms with 3 downloads (50) loses to 40 ms idle (40).
        assert_eq!(rank_by_latency_and_load(&[(20, 3), (40, 0)]), vec![1, 0]);
        assert_eq!(
            rank_by_latency_and_load(&[(20, 1), (30, 0), (10, 2)]),
            vec![0, 1, 2]
        );
        assert_eq!(rank_by_latency_and_load(&[(100, 0), (100, 0)]), vec![0, 1]);
        assert_eq!(rank_by_latency_and_load(&[]), Vec::<usize>::new());
        assert_eq!(latency_load_score(u64::MAX, 5), u64::MAX);
    }
}
