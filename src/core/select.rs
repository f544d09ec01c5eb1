//! Peer choice of P2PTracker++ as pure functions over plain data, tested without sockets.
//! (Simple xFS's rule lives in `xfs::latency`.)

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
}
