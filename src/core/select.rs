//! Peer choice. Each system's rule lives here as a pure function over plain data, so the rules
//! can be tested without sockets and compared side by side. (P2PTracker++'s rules moved to
//! `p2ptracker::schedule`, beside the state they read.)

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
