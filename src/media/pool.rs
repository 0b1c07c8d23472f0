//! The media port pool: even RTP ports from the configured range, RTCP on the next odd port.
//! Free ports queue in first-in, first-out order so a port that was just released is the last
//! to be handed out again: late packets of an ended call do not land in a new one.

use std::collections::VecDeque;

use super::MediaError;

/// A pool of RTP/RTCP port pairs.
#[derive(Debug, Clone)]
pub struct PortPool {
    /// The lowest even port of the range.
    base: u16,
    /// Free RTP ports, the next to hand out first.
    free: VecDeque<u16>,
    /// In-use flag per pair, indexed by `(port - base) / 2`.
    used: Vec<bool>,
    in_use: usize,
}

impl PortPool {
    /// A pool over `[min, max]`: every even port `p` with `p + 1 <= max`. `seed` shuffles
    /// the first order so ports are not predictable from one call to the next.
    pub fn new(min: u16, max: u16, seed: u64) -> PortPool {
        let base = min.saturating_add(min % 2);
        let mut free: Vec<u16> = (u32::from(base)..u32::from(max))
            .step_by(2)
            .filter_map(|p| u16::try_from(p).ok())
            .collect();
        let mut rng = seed;
        for i in (1..free.len()).rev() {
            let j = (splitmix64(&mut rng) % (i as u64 + 1)) as usize;
            free.swap(i, j);
        }
        PortPool {
            base,
            used: vec![false; free.len()],
            free: free.into(),
            in_use: 0,
        }
    }

    /// Takes a pair; returns its RTP port (RTCP is the next one).
    pub fn allocate(&mut self) -> Result<u16, MediaError> {
        let port = self.free.pop_front().ok_or(MediaError::PortsExhausted)?;
        if let Some(slot) = self.slot(port) {
            self.used[slot] = true;
        }
        self.in_use += 1;
        Ok(port)
    }

    /// Gives a pair back. Returns `false` (and changes nothing) if it was not in use.
    pub fn release(&mut self, port: u16) -> bool {
        match self.slot(port) {
            Some(slot) if self.used[slot] => {
                self.used[slot] = false;
                self.in_use -= 1;
                self.free.push_back(port);
                true
            }
            _ => false,
        }
    }

    /// Pairs in use.
    pub fn in_use(&self) -> usize {
        self.in_use
    }

    /// Pairs in the range.
    pub fn capacity(&self) -> usize {
        self.used.len()
    }

    fn slot(&self, port: u16) -> Option<usize> {
        let off = port.checked_sub(self.base)?;
        let slot = usize::from(off / 2);
        (off % 2 == 0 && slot < self.used.len()).then_some(slot)
    }
}

/// SplitMix64: a small, good-enough generator for shuffles and session ids.
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_even_and_inside_the_range() {
        let mut p = PortPool::new(30001, 30010, 7);
        // 30002, 30004, 30006, 30008 (30010 has no RTCP port inside the range).
        assert_eq!(p.capacity(), 4);
        let mut got: Vec<u16> = (0..4).map(|_| p.allocate().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, vec![30002, 30004, 30006, 30008]);
        assert_eq!(p.allocate(), Err(MediaError::PortsExhausted));
    }

    #[test]
    fn a_released_port_is_handed_out_last() {
        let mut p = PortPool::new(40000, 40007, 1);
        let a = p.allocate().unwrap();
        assert!(p.release(a));
        let next: Vec<u16> = (0..4).map(|_| p.allocate().unwrap()).collect();
        assert_eq!(next[3], a);
    }

    #[test]
    fn double_and_foreign_releases_change_nothing() {
        let mut p = PortPool::new(40000, 40007, 1);
        let a = p.allocate().unwrap();
        assert!(p.release(a));
        assert!(!p.release(a));
        assert!(!p.release(a + 1));
        assert!(!p.release(39998));
        assert!(!p.release(u16::MAX));
        assert_eq!(p.in_use(), 0);
        assert_eq!(p.free.len(), p.capacity());
    }

    #[test]
    fn thousands_of_allocations_leak_nothing() {
        let mut p = PortPool::new(30000, 30999, 42);
        let cap = p.capacity();
        let mut held = Vec::new();
        let mut rng = 5u64;
        for round in 0..20_000u32 {
            if held.len() < cap && (held.is_empty() || !splitmix64(&mut rng).is_multiple_of(3)) {
                held.push(p.allocate().unwrap());
            } else {
                let i = (splitmix64(&mut rng) % held.len() as u64) as usize;
                assert!(p.release(held.swap_remove(i)), "round {round}");
            }
            assert_eq!(p.in_use(), held.len());
        }
        for port in held.drain(..) {
            assert!(p.release(port));
        }
        assert_eq!(p.in_use(), 0);
        let mut all: Vec<u16> = p.free.iter().copied().collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), cap, "every pair is back exactly once");
    }

    #[test]
    fn a_degenerate_range_is_empty() {
        let mut p = PortPool::new(5000, 5000, 0);
        assert_eq!(p.capacity(), 0);
        assert_eq!(p.allocate(), Err(MediaError::PortsExhausted));
        let p = PortPool::new(65534, 65535, 0);
        assert_eq!(p.capacity(), 1);
    }
}
