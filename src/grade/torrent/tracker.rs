//! `tracker 1`, `tracker 2`, `tracker 3`: the submission's tracker on 12345, driven by raw nodes.

use super::{ask, listed, spec_addr, Raw};
use crate::grade::report::TestResult;
use crate::grade::runner::{self, CommandLine, Proc, Workdir};
use crate::grade::{Abort, Context};
use crate::torrent::wire::{Message, Mode, Owner};
use std::time::{Duration, Instant};

pub const IDS: &[&str] = &[
    "tracker 1: REGISTER, OWN and NEED get the right replies",
    "tracker 2: owners are ranked by upload count",
    "tracker 3: a silent node is removed and a live one kept",
];

pub fn part(
    command: &CommandLine,
    sweep: Duration,
    cx: &Context,
) -> Result<Vec<TestResult>, Abort> {
    cx.say("BitTorrent-Python tracker");
    super::port_free(cx)?;
    let dir = Workdir::new("torrent-tracker")?;
    let mut p = Proc::spawn("tracker", command, &dir.path)?;
    runner::wait_until(cx.timeouts.secs(5.0), &cx.shutdown, || {
        runner::udp_bound(super::SPEC_PORT) || p.exited().is_some()
    });
    cx.check_interrupt()?;
    cx.shutdown.sleep(cx.timeouts.secs(0.3));
    if p.exited().is_some() || !runner::udp_bound(super::SPEC_PORT) {
        let mut e = vec!["the tracker never bound UDP 127.0.0.1:12345".to_string()];
        e.extend(p.evidence());
        return Ok(IDS
            .iter()
            .map(|id| TestResult::new(id, 10.0, false, e.clone()))
            .collect());
    }
    let mut out = vec![tracker_1(cx)?, tracker_2(cx)?];
    cx.check_interrupt()?;
    out.push(tracker_3(sweep, cx)?);
    cx.check_interrupt()?;
    for t in out.iter_mut().filter(|t| !t.passed) {
        t.evidence.extend(p.evidence());
    }
    Ok(out)
}

/// A raw node: its socket (which the tracker keys it by) and its id.
struct Node {
    raw: Raw,
    id: i64,
}

impl Node {
    fn new(id: i64) -> Result<Node, Abort> {
        Ok(Node {
            raw: Raw::new(spec_addr())?,
            id,
        })
    }

    fn say(&self, filename: &str, mode: Mode) {
        self.raw
            .send(&crate::torrent::wire::encode(&Message::Node2Tracker {
                node_id: self.id,
                filename: filename.into(),
                mode,
            }));
    }

    /// REGISTER, then OWN `filename`.
    fn owns(&self, filename: &str) {
        self.say("", Mode::Register);
        std::thread::sleep(Duration::from_millis(50));
        self.say(filename, Mode::Own);
        std::thread::sleep(Duration::from_millis(50));
    }

    /// What the tracker answers to NEED `filename` from a fresh socket, as this node.
    fn need(
        &self,
        filename: &str,
        cx: &Context,
    ) -> Result<(Option<Vec<Owner>>, Vec<String>), Abort> {
        let asker = Raw::new(spec_addr())?;
        let need = Message::Node2Tracker {
            node_id: self.id,
            filename: filename.into(),
            mode: Mode::Need,
        };
        let (reply, seen) = ask(
            &asker,
            &need,
            spec_addr(),
            cx,
            |m| matches!(m, Message::Tracker2Node { filename: f, .. } if f == filename),
        );
        let owners = match reply {
            Some(Message::Tracker2Node {
                dest_node_id,
                search_result,
                ..
            }) if dest_node_id == self.id => Some(search_result),
            _ => None,
        };
        Ok((owners, seen))
    }

    fn port(&self) -> i64 {
        self.raw.local_addr().map_or(0, |a| i64::from(a.port()))
    }
}

fn owner(n: &Node, send_freq: i64) -> Owner {
    Owner {
        node_id: n.id,
        ip: "127.0.0.1".into(),
        port: n.port(),
        send_freq,
    }
}

fn tracker_1(cx: &Context) -> Result<TestResult, Abort> {
    let (a, b) = (Node::new(1)?, Node::new(2)?);
    a.owns("t1.txt");
    let (owners, seen) = b.need("t1.txt", cx)?;
    let want = vec![owner(&a, 0)];
    let (none, seen_none) = b.need("nobody.txt", cx)?;
    let mut e = vec![
        format!(
            "node 1 (port {}) sent REGISTER and OWN t1.txt; node 2 sent NEED t1.txt and got: {}",
            a.port(),
            listed(&seen)
        ),
        format!("NEED nobody.txt got: {}", listed(&seen_none)),
    ];
    e.push(format!(
        "wanted Tracker2Node to node 2 with search_result {want:?}, then one with an empty list"
    ));
    let ok = owners.as_ref() == Some(&want) && none.as_deref() == Some(&[][..]);
    Ok(TestResult::new(IDS[0], 10.0, ok, e))
}

fn tracker_2(cx: &Context) -> Result<TestResult, Abort> {
    let nodes = [Node::new(11)?, Node::new(12)?, Node::new(13)?];
    for n in &nodes {
        n.owns("t2.bin");
    }
    for n in [&nodes[2], &nodes[2], &nodes[1]] {
        n.say("t2.bin", Mode::Update);
        std::thread::sleep(Duration::from_millis(50));
    }
    cx.shutdown.sleep(cx.timeouts.secs(0.3));
    let asker = Node::new(14)?;
    let (owners, seen) = asker.need("t2.bin", cx)?;
    let want = vec![
        owner(&nodes[2], 2),
        owner(&nodes[1], 1),
        owner(&nodes[0], 0),
    ];
    let e = vec![
        "nodes 11, 12, 13 OWNed t2.bin in that order; 13 sent UPDATE twice, 12 once".to_string(),
        format!("NEED t2.bin got: {}", listed(&seen)),
        format!("wanted search_result {want:?}"),
    ];
    Ok(TestResult::new(IDS[1], 10.0, owners == Some(want), e))
}

/// Node 21 owns and goes silent; node 22 owns and REGISTERs every second; NEED once a
/// second until only 22 is listed, for up to two sweeps and 4 s.
fn tracker_3(sweep: Duration, cx: &Context) -> Result<TestResult, Abort> {
    cx.say("waiting for the tracker's sweep");
    let (silent, live, asker) = (Node::new(21)?, Node::new(22)?, Node::new(23)?);
    silent.owns("t3.bin");
    live.owns("t3.bin");
    let start = Instant::now();
    let deadline = start + cx.timeouts.secs(2.0 * sweep.as_secs_f64() + 4.0);
    let ids = |o: &Option<Vec<Owner>>| -> Option<Vec<i64>> {
        o.as_ref().map(|v| v.iter().map(|x| x.node_id).collect())
    };
    let (mut history, mut last) = (Vec::new(), None);
    let mut verdict = None;
    while Instant::now() < deadline && verdict.is_none() {
        live.say("", Mode::Register);
        let (owners, _) = asker.need("t3.bin", cx)?;
        let now = ids(&owners);
        if last.as_ref() != Some(&now) {
            history.push(format!("{:.1} s: {now:?}", start.elapsed().as_secs_f64()));
            last = Some(now.clone());
        }
        verdict = match now.as_deref() {
            Some([22]) => Some(true),
            Some(v) if !v.contains(&22) => Some(false),
            _ => None,
        };
        cx.check_interrupt()?;
        if verdict.is_none() {
            cx.shutdown.sleep(cx.timeouts.secs(1.0));
        }
    }
    let e = vec![
        format!(
            "nodes 21 and 22 OWNed t3.bin; 22 REGISTERed every second, 21 said nothing more; \
             the sweep is every {} s",
            sweep.as_secs_f64()
        ),
        format!(
            "the owners NEED t3.bin listed, as they changed: {}",
            history.join("; ")
        ),
        format!(
            "wanted [22] within {:.0} s (two sweeps and 4 s), with 22 listed throughout",
            cx.timeouts
                .secs(2.0 * sweep.as_secs_f64() + 4.0)
                .as_secs_f64()
        ),
    ];
    Ok(TestResult::new(IDS[2], 10.0, verdict == Some(true), e))
}
