//! Which piece to fetch next: rarest first, then endgame.
//!
//! Plain data. `availability[i]` counts the connected peers that have piece `i`; a peer asking
//! for work gets the missing piece it has that the fewest peers have and nobody is fetching yet
//! (ties go to the lowest index). Once every missing piece is being fetched by someone, the
//! picker enters endgame: a peer may take a piece another peer is already fetching (fewest
//! fetchers first), so one slow peer cannot hold up the last pieces; the first verified copy
//! wins and the others are cancelled.

use super::wire::Bitfield;

pub struct Picker {
    have: Bitfield,
    availability: Vec<u32>,
    fetching: Vec<u32>,
}

impl Picker {
    pub fn new(have: Bitfield) -> Picker {
        let n = have.len();
        Picker {
            have,
            availability: vec![0; n],
            fetching: vec![0; n],
        }
    }

    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    pub fn is_complete(&self) -> bool {
        self.have.is_full()
    }

    pub fn add_peer(&mut self, bits: &Bitfield) {
        for i in 0..self.availability.len() {
            if bits.has(i) {
                self.availability[i] += 1;
            }
        }
    }

    pub fn remove_peer(&mut self, bits: &Bitfield) {
        for i in 0..self.availability.len() {
            if bits.has(i) {
                self.availability[i] = self.availability[i].saturating_sub(1);
            }
        }
    }

    pub fn peer_has(&mut self, i: usize) {
        if let Some(a) = self.availability.get_mut(i) {
            *a += 1;
        }
    }

    /// True when every missing piece is already being fetched.
    pub fn in_endgame(&self) -> bool {
        (0..self.fetching.len()).all(|i| self.have.has(i) || self.fetching[i] > 0)
    }

    /// A piece for a peer holding `peer`, never one `skip` names (pieces this peer is already
    /// fetching or sent bad data for). Marks it as being fetched.
    pub fn pick(&mut self, peer: &Bitfield, skip: &dyn Fn(usize) -> bool) -> Option<usize> {
        let wanted = |i: usize| !self.have.has(i) && peer.has(i) && !skip(i);
        let fresh = (0..self.fetching.len())
            .filter(|&i| wanted(i) && self.fetching[i] == 0)
            .min_by_key(|&i| self.availability[i]);
        let chosen = fresh.or_else(|| {
            if self.in_endgame() {
                (0..self.fetching.len())
                    .filter(|&i| wanted(i))
                    .min_by_key(|&i| self.fetching[i])
            } else {
                None
            }
        })?;
        self.fetching[chosen] += 1;
        Some(chosen)
    }

    /// A fetch of `i` ended without a verified piece (peer gone, choked, or bad data).
    pub fn release(&mut self, i: usize) {
        if let Some(f) = self.fetching.get_mut(i) {
            *f = f.saturating_sub(1);
        }
    }

    /// Piece `i` is verified and written; false if it already was (an endgame duplicate).
    pub fn complete(&mut self, i: usize) -> bool {
        if self.have.has(i) {
            return false;
        }
        self.have.set(i);
        self.fetching[i] = 0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(n: usize, set: &[usize]) -> Bitfield {
        let mut b = Bitfield::new(n);
        for &i in set {
            b.set(i);
        }
        b
    }

    #[test]
    fn rarest_piece_comes_first() {
        let mut p = Picker::new(Bitfield::new(4));
        p.add_peer(&bits(4, &[0, 1, 2, 3]));
        p.add_peer(&bits(4, &[0, 1, 3]));
        p.add_peer(&bits(4, &[0, 3]));
        let everything = bits(4, &[0, 1, 2, 3]);
        assert_eq!(p.pick(&everything, &|_| false), Some(2));
        assert_eq!(p.pick(&everything, &|_| false), Some(1));
    }

    #[test]
    fn pieces_being_fetched_go_to_nobody_else_until_endgame() {
        let mut p = Picker::new(Bitfield::new(3));
        let all = bits(3, &[0, 1, 2]);
        p.add_peer(&all);
        assert_eq!(p.pick(&all, &|_| false), Some(0));
        assert_eq!(p.pick(&all, &|_| false), Some(1));
        assert!(!p.in_endgame());
        assert_eq!(p.pick(&all, &|_| false), Some(2));
        assert!(p.in_endgame());
        // Endgame: a second peer may take a piece in flight, but not one it skips.
        assert_eq!(p.pick(&all, &|i| i == 0), Some(1));
        assert!(p.complete(1));
        assert!(!p.complete(1));
    }

    #[test]
    fn a_released_piece_is_picked_again_but_not_by_a_peer_that_skips_it() {
        let mut p = Picker::new(Bitfield::new(2));
        let all = bits(2, &[0, 1]);
        p.add_peer(&all);
        assert_eq!(p.pick(&all, &|i| i == 1), Some(0));
        p.release(0);
        assert_eq!(p.pick(&all, &|i| i == 0), Some(1));
        assert_eq!(p.pick(&all, &|_| false), Some(0));
    }

    #[test]
    fn nothing_to_pick_from_a_peer_without_missing_pieces() {
        let mut p = Picker::new(bits(2, &[0]));
        let peer = bits(2, &[0]);
        p.add_peer(&peer);
        assert_eq!(p.pick(&peer, &|_| false), None);
        p.complete(1);
        assert!(p.is_complete());
    }
}
