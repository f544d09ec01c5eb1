//! Peer choice. Each system's rule lives here as a pure function over plain data, so the rules
//! can be tested without sockets and compared side by side.

use std::collections::HashMap;
use std::hash::Hash;

/// P2PTracker++: among `holders` (in the tracker's order), the one with the fewest transfers
/// currently running from us; ties go to the first in the order rotated by `rotate` (the chunk
/// index), so equal holders share the work across chunks. `None` when `holders` is empty.
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

/// P2PTracker++: order chunk indices so those with the fewest known holders come first (rarest
/// first); ties keep ascending index order.
pub fn rarest_first(mut chunks: Vec<(u32, usize)>) -> Vec<u32> {
    chunks.sort_by_key(|&(idx, holders)| (holders, idx));
    chunks.into_iter().map(|(idx, _)| idx).collect()
}

/// Simple xFS: the score of a peer, `latency + 10 × load` (the original README's formula: one
/// download in progress weighs as much as 10 ms of latency).
pub fn latency_load_score(latency_ms: u64, load: u64) -> u64 {
    latency_ms.saturating_add(load.saturating_mul(10))
}

/// Simple xFS: candidate indices ranked best first by [`latency_load_score`] over
/// `(latency_ms, load)` pairs given in the tracker's order; equal scores keep that order (the
/// sort is stable), so the first entry is the peer to ask and the rest are the fallbacks.
pub fn rank_by_latency_and_load(candidates: &[(u64, u64)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by_key(|&i| latency_load_score(candidates[i].0, candidates[i].1));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn xfs_rank_adds_ten_ms_per_download_and_keeps_tracker_order_on_ties() {
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
