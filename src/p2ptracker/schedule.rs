//! The client's download schedule: which chunks are missing, which wait for a download slot,
//! which are running, how busy each holder is, and which holders refused us lately. Pure: the
//! tracker thread feeds it tracker replies and download reports and starts the downloads it
//! names; no sockets, and the clock comes in as `now`.
//!
//! Peer-choice rules (spec §5), kept here beside the state they read:
//! - among chunks with known holders, the one with the fewest holders starts first
//!   ([`rarest_first`]);
//! - each download goes first to the holder with the fewest transfers running from us, ties
//!   broken by the reply's order rotated by the chunk index ([`least_busy`]);
//! - at most [`MAX_PARALLEL`] downloads run.
//!
//! Dead holders (issue 13): the tracker keeps holders after their connection closes (graders
//! announce on one connection and ask on another), so a client that left stays listed. A holder
//! that refused a connection is left out of new downloads until a back-off (1 s, doubling to
//! 30 s) has passed, so other holders go first; a chunk whose every holder is backed off goes
//! back to be asked again next round. Its warning is given once; the count is given at the end.

use super::wire::Holder;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Downloads running at once (spec §5).
pub const MAX_PARALLEL: usize = 5;
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A failure that repeats word for word (a full disk fails every chunk alike) is shown once,
/// then at most once per this interval with how many times it happened meanwhile.
const REPEAT_EVERY: Duration = Duration::from_secs(30);

/// Among `holders` (in the tracker's order), the one with the fewest transfers currently running
/// from us; ties go to the first in the order rotated by `rotate` (the chunk index), so equal
/// holders share the work across chunks. `None` when `holders` is empty.
pub fn least_busy<P: Eq + Hash>(
    holders: &[P],
    running: &HashMap<P, usize>,
    rotate: usize,
) -> Option<usize> {
    let n = holders.len();
    (0..n)
        .map(|k| (k + rotate) % n)
        .min_by_key(|&i| running.get(&holders[i]).copied().unwrap_or(0))
}

/// Chunk indices ordered so those with the fewest known holders come first (rarest first); ties
/// keep ascending index order.
pub fn rarest_first(mut chunks: Vec<(u32, usize)>) -> Vec<u32> {
    chunks.sort_by_key(|&(idx, holders)| (holders, idx));
    chunks.into_iter().map(|(idx, _)| idx).collect()
}

/// A download to start: the chunk and its holders in the order to try them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub idx: u32,
    pub holders: Vec<Holder>,
}

/// Why one holder did not deliver a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Nobody listening, or no answer to the connect: the holder has probably left.
    Refused,
    /// It answered but did not deliver (reset, refusal payload, stall); the text says how.
    Other(String),
}

/// A download's report to the tracker thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub idx: u32,
    /// The holder first tried (its busy count is released).
    pub first: Holder,
    /// Holders that failed, in the order tried.
    pub failures: Vec<(Holder, Failure)>,
    /// The holder that delivered, and the byte count.
    pub delivered: Option<(Holder, u64)>,
}

#[derive(Debug, Clone)]
struct Backoff {
    until: Instant,
    delay: Duration,
    refusals: u64,
}

/// The schedule (see the module doc).
#[derive(Debug)]
pub struct DownloadSchedule {
    total: u32,
    missing: BTreeSet<u32>,
    ready: BTreeMap<u32, Vec<Holder>>,
    in_flight: HashSet<u32>,
    busy: HashMap<Holder, usize>,
    backoff: HashMap<Holder, Backoff>,
    /// Per failure text: when it was last shown and how often it came since.
    repeats: HashMap<String, (Instant, u32)>,
    fetched: u32,
    bytes_fetched: u64,
}

impl DownloadSchedule {
    /// A schedule for chunks `1..=total` of which `missing` are not yet present.
    pub fn new(total: u32, missing: BTreeSet<u32>) -> DownloadSchedule {
        DownloadSchedule {
            total,
            missing,
            ready: BTreeMap::new(),
            in_flight: HashSet::new(),
            busy: HashMap::new(),
            backoff: HashMap::new(),
            repeats: HashMap::new(),
            fetched: 0,
            bytes_fetched: 0,
        }
    }

    pub fn total(&self) -> u32 {
        self.total
    }

    /// Chunks present now.
    pub fn present(&self) -> u32 {
        self.total - self.missing.len() as u32
    }

    pub fn fetched(&self) -> u32 {
        self.fetched
    }

    pub fn bytes_fetched(&self) -> u64 {
        self.bytes_fetched
    }

    /// Every chunk present and no download running.
    pub fn complete(&self) -> bool {
        self.missing.is_empty() && self.in_flight.is_empty()
    }

    /// Missing chunks neither running nor waiting for a slot: what to ask the tracker about.
    pub fn to_query(&self) -> Vec<u32> {
        self.missing
            .iter()
            .copied()
            .filter(|i| !self.in_flight.contains(i) && !self.ready.contains_key(i))
            .collect()
    }

    /// The tracker named these holders (ourselves already removed) for a missing chunk.
    pub fn learned(&mut self, idx: u32, holders: Vec<Holder>) {
        if !holders.is_empty() && self.missing.contains(&idx) && !self.in_flight.contains(&idx) {
            self.ready.insert(idx, holders);
        }
    }

    fn backed_off(&self, h: &Holder, now: Instant) -> bool {
        self.backoff.get(h).is_some_and(|b| now < b.until)
    }

    /// Downloads to start now, rarest first, while fewer than [`MAX_PARALLEL`] run; each is
    /// counted as running until its [`Report`] (or [`DownloadSchedule::not_started`]).
    pub fn next_starts(&mut self, now: Instant) -> Vec<Start> {
        let mut starts = Vec::new();
        if self.in_flight.len() >= MAX_PARALLEL || self.ready.is_empty() {
            return starts;
        }
        let order = rarest_first(self.ready.iter().map(|(i, h)| (*i, h.len())).collect());
        for idx in order {
            if self.in_flight.len() >= MAX_PARALLEL {
                break;
            }
            let Some(holders) = self.ready.remove(&idx) else {
                continue;
            };
            let usable: Vec<Holder> = holders
                .into_iter()
                .filter(|h| !self.backed_off(h, now))
                .collect();
            let rotate = idx as usize;
            // Every holder backed off: the chunk is asked about again next round.
            let Some(first) = least_busy(&usable, &self.busy, rotate) else {
                continue;
            };
            let n = usable.len();
            let mut ordered = vec![usable[first].clone()];
            ordered.extend(
                (0..n)
                    .map(|k| (k + rotate) % n)
                    .filter(|&i| i != first)
                    .map(|i| usable[i].clone()),
            );
            *self.busy.entry(ordered[0].clone()).or_default() += 1;
            self.in_flight.insert(idx);
            starts.push(Start {
                idx,
                holders: ordered,
            });
        }
        starts
    }

    /// A download named by [`DownloadSchedule::next_starts`] could not be started.
    pub fn not_started(&mut self, start: &Start) {
        self.in_flight.remove(&start.idx);
        self.release(&start.holders[0]);
    }

    fn release(&mut self, h: &Holder) {
        if let Some(n) = self.busy.get_mut(h) {
            *n = n.saturating_sub(1);
        }
    }

    /// Whether to show failure `text` now: `Some(times it came unshown since)` when it is new or
    /// was last shown [`REPEAT_EVERY`] ago, `None` (counted) otherwise.
    fn repeat(&mut self, text: &str, now: Instant) -> Option<u32> {
        match self.repeats.get_mut(text) {
            Some((shown, since)) if now.duration_since(*shown) < REPEAT_EVERY => {
                *since += 1;
                None
            }
            Some((shown, since)) => {
                *shown = now;
                Some(std::mem::take(since))
            }
            None => {
                self.repeats.insert(text.to_string(), (now, 0));
                Some(0)
            }
        }
    }

    /// Applies one download report. Returns the chunk to announce if it landed, and the
    /// warnings to show (a refusing holder's first refusal only).
    pub fn finished(&mut self, report: Report, now: Instant) -> (Option<u32>, Vec<String>) {
        self.in_flight.remove(&report.idx);
        self.release(&report.first);
        let mut warnings = Vec::new();
        for (h, why) in report.failures {
            match why {
                Failure::Refused => {
                    if let Some(w) = self.refused(h, now) {
                        warnings.push(w);
                    }
                }
                Failure::Other(text) => {
                    if let Some(more) = self.repeat(&text, now) {
                        let again = match more {
                            0 => String::new(),
                            n => format!(" ({n} more like it since it was last shown)"),
                        };
                        warnings.push(format!(
                            "chunk {} from {}:{} failed: {text}{again}",
                            report.idx, h.ip, h.port
                        ));
                    }
                }
            }
        }
        let Some((from, bytes)) = report.delivered else {
            return (None, warnings);
        };
        if let Some(b) = self.backoff.get_mut(&from) {
            b.until = now;
            b.delay = BACKOFF_FIRST;
        }
        self.missing.remove(&report.idx);
        self.fetched += 1;
        self.bytes_fetched += bytes;
        (Some(report.idx), warnings)
    }

    /// Records a refusal; the first one of a holder is worth a warning.
    fn refused(&mut self, h: Holder, now: Instant) -> Option<String> {
        let b = self.backoff.entry(h.clone()).or_insert(Backoff {
            until: now,
            delay: BACKOFF_FIRST,
            refusals: 0,
        });
        b.refusals += 1;
        if now >= b.until {
            b.until = now + b.delay;
            b.delay = (b.delay * 2).min(BACKOFF_MAX);
        }
        (b.refusals == 1).then(|| {
            format!(
                "{}:{} refused a connection; asking other holders first and retrying it after \
                 a growing pause",
                h.ip, h.port
            )
        })
    }

    /// One line per holder that refused more than once: how often.
    pub fn refusal_summary(&self) -> Vec<String> {
        let mut lines: Vec<(String, u64)> = self
            .backoff
            .iter()
            .filter(|(_, b)| b.refusals > 1)
            .map(|(h, b)| (format!("{}:{}", h.ip, h.port), b.refusals))
            .collect();
        lines.sort();
        lines
            .into_iter()
            .map(|(who, n)| format!("{who} refused {n} connections in all"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(port: u16) -> Holder {
        Holder {
            ip: "localhost".into(),
            port,
        }
    }

    fn report(idx: u32, first: u16, failures: &[(u16, Failure)], by: Option<u16>) -> Report {
        Report {
            idx,
            first: h(first),
            failures: failures.iter().map(|(p, f)| (h(*p), f.clone())).collect(),
            delivered: by.map(|p| (h(p), 100)),
        }
    }

    #[test]
    fn least_busy_prefers_idle_holders_and_rotates_ties() {
        let holders = ["a", "b", "c"];
        let mut running = HashMap::new();
        assert_eq!(least_busy(&holders, &running, 0), Some(0));
        assert_eq!(least_busy(&holders, &running, 1), Some(1));
        assert_eq!(least_busy(&holders, &running, 5), Some(2));
        running.insert("a", 2);
        running.insert("b", 1);
        assert_eq!(least_busy(&holders, &running, 0), Some(2));
        assert_eq!(least_busy::<&str>(&[], &running, 0), None);
    }

    #[test]
    fn rarest_first_orders_by_holder_count_then_index() {
        assert_eq!(
            rarest_first(vec![(1, 3), (2, 1), (3, 2), (4, 1)]),
            vec![2, 4, 3, 1]
        );
    }

    #[test]
    fn at_most_five_run_rarest_first_and_spread_over_holders() {
        let now = Instant::now();
        let mut s = DownloadSchedule::new(8, (1..=8).collect());
        for idx in 1..=8 {
            let hs = if idx == 6 {
                vec![h(7001)]
            } else {
                vec![h(7001), h(7002)]
            };
            s.learned(idx, hs);
        }
        let starts = s.next_starts(now);
        assert_eq!(starts.len(), MAX_PARALLEL);
        assert_eq!(starts[0].idx, 6, "the chunk with one holder goes first");
        let firsts: Vec<u16> = starts.iter().map(|s| s.holders[0].port).collect();
        let on_7001 = firsts.iter().filter(|p| **p == 7001).count();
        assert!((2..=3).contains(&on_7001), "{firsts:?}");
        assert!(s.next_starts(now).is_empty());
        assert!(s.to_query().is_empty(), "three wait for a slot");
        let (landed, warnings) = s.finished(report(6, 7001, &[], Some(7001)), now);
        assert_eq!(landed, Some(6));
        assert!(warnings.is_empty());
        assert_eq!(s.next_starts(now).len(), 1);
        assert_eq!(s.present(), 1);
    }

    #[test]
    fn a_failure_repeated_word_for_word_is_shown_once_then_with_a_count() {
        let now = Instant::now();
        let mut s = DownloadSchedule::new(3, [1, 2, 3].into());
        let full = || Failure::Other("No space left on device (os error 28)".into());
        let mut shown = Vec::new();
        for (i, idx) in [1, 2, 3, 1].into_iter().enumerate() {
            let at = now + Duration::from_secs(i as u64);
            let (_, w) = s.finished(report(idx, 7001, &[(7001, full())], None), at);
            shown.extend(w);
        }
        assert_eq!(
            shown,
            vec!["chunk 1 from localhost:7001 failed: No space left on device (os error 28)"]
        );
        let later = now + REPEAT_EVERY + Duration::from_secs(5);
        let (_, w) = s.finished(report(2, 7001, &[(7001, full())], None), later);
        assert_eq!(
            w,
            vec![
                "chunk 2 from localhost:7001 failed: No space left on device (os error 28) \
                 (3 more like it since it was last shown)"
            ]
        );
        let (_, w) = s.finished(
            report(3, 7001, &[(7001, Failure::Other("reset".into()))], None),
            later,
        );
        assert_eq!(w, vec!["chunk 3 from localhost:7001 failed: reset"]);
    }

    #[test]
    fn a_failed_chunk_is_asked_about_again() {
        let now = Instant::now();
        let mut s = DownloadSchedule::new(2, [1, 2].into());
        s.learned(1, vec![h(7001)]);
        let start = s.next_starts(now);
        assert_eq!(s.to_query(), vec![2]);
        let (landed, warnings) = s.finished(
            report(1, 7001, &[(7001, Failure::Other("reset".into()))], None),
            now,
        );
        assert_eq!(landed, None);
        assert_eq!(warnings, vec!["chunk 1 from localhost:7001 failed: reset"]);
        assert_eq!(s.to_query(), vec![1, 2]);
        assert_eq!(start[0].holders, vec![h(7001)]);
        assert!(!s.complete());
    }

    #[test]
    fn a_refusing_holder_is_backed_off_warned_once_and_counted() {
        let t0 = Instant::now();
        let mut s = DownloadSchedule::new(4, (1..=4).collect());
        s.learned(1, vec![h(7001), h(7009)]);
        let start = s.next_starts(t0);
        assert_eq!(
            start[0].holders[0],
            h(7009),
            "rotation by idx 1 starts at 7009"
        );
        let (_, w) = s.finished(report(1, 7009, &[(7009, Failure::Refused)], Some(7001)), t0);
        assert_eq!(w.len(), 1, "{w:?}");
        // Backed off: new downloads leave it out, other holders first.
        s.learned(2, vec![h(7009), h(7001)]);
        s.learned(3, vec![h(7009)]);
        let starts = s.next_starts(t0 + Duration::from_millis(100));
        assert_eq!(starts.len(), 1);
        assert_eq!(starts[0].holders, vec![h(7001)]);
        assert!(
            s.to_query().contains(&3),
            "only a dead holder: ask again next round"
        );
        // After the back-off it is tried again; a second refusal is not warned about again.
        let later = t0 + Duration::from_secs(2);
        s.learned(3, vec![h(7009)]);
        let starts = s.next_starts(later);
        assert_eq!(starts[0].holders, vec![h(7009)]);
        let (_, w) = s.finished(report(3, 7009, &[(7009, Failure::Refused)], None), later);
        assert!(w.is_empty());
        s.learned(3, vec![h(7009)]);
        assert!(
            s.next_starts(later + Duration::from_millis(1500))
                .is_empty(),
            "the pause grew to 2 s"
        );
        assert_eq!(
            s.refusal_summary(),
            vec!["localhost:7009 refused 2 connections in all"]
        );
    }
}
