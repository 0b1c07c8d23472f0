//! Queue positions in O(log n): a Fenwick tree over dense slots, one slot per callback of a
//! call target, handed out in registration order (registration order is queue order).
//!
//! A callback keeps its slot while it is dialled (absent) so a retry comes back to its
//! place, and gives it up when it is finished ([`RankIndex::forget`]). When the slots run
//! out they are handed out again densely to the callbacks still known (amortized O(1)).

use std::collections::HashMap;

/// Fewest slots allocated at a compaction.
const MIN_CAPACITY: usize = 1024;

/// Counts the present sequence numbers below a given one.
#[derive(Debug, Default, Clone)]
pub struct RankIndex {
    slot_of: HashMap<u64, u32>,
    present: Vec<bool>,
    tree: Vec<u32>,
    next: usize,
    max_seq: Option<u64>,
}

impl RankIndex {
    /// Marks `seq` present. A new seq above every known one takes the next slot; one
    /// below (a scheduled callback retried in the FIFO queue: rare) re-slots everything.
    pub fn insert(&mut self, seq: u64) {
        let slot = match self.slot_of.get(&seq) {
            Some(&s) => s as usize,
            None if self.max_seq.is_some_and(|m| seq < m) => {
                self.compact(Some(seq));
                self.slot_of.get(&seq).copied().unwrap_or(0) as usize
            }
            None => {
                if self.next >= self.present.len() {
                    self.compact(None);
                }
                let s = self.next;
                self.next += 1;
                self.slot_of.insert(seq, s as u32);
                self.max_seq = Some(seq);
                s
            }
        };
        if !self.present[slot] {
            self.present[slot] = true;
            self.add(slot, true);
        }
    }

    /// Marks `seq` absent; it keeps its place for a later [`RankIndex::insert`].
    pub fn remove(&mut self, seq: u64) {
        if let Some(&s) = self.slot_of.get(&seq) {
            let s = s as usize;
            if self.present[s] {
                self.present[s] = false;
                self.add(s, false);
            }
        }
    }

    /// Forgets `seq` for good.
    pub fn forget(&mut self, seq: u64) {
        self.remove(seq);
        self.slot_of.remove(&seq);
    }

    /// How many present seqs are below `seq` (which must be known).
    pub fn rank(&self, seq: u64) -> usize {
        match self.slot_of.get(&seq) {
            Some(&s) => self.prefix(s as usize),
            None => 0,
        }
    }

    /// Present entries in slots `0..end`.
    fn prefix(&self, end: usize) -> usize {
        let mut i = end;
        let mut sum = 0usize;
        while i > 0 {
            sum += self.tree[i - 1] as usize;
            i &= i - 1;
        }
        sum
    }

    fn add(&mut self, slot: usize, up: bool) {
        let mut i = slot + 1;
        while i <= self.tree.len() {
            if up {
                self.tree[i - 1] += 1;
            } else {
                self.tree[i - 1] -= 1;
            }
            i += i & i.wrapping_neg();
        }
    }

    /// Hands out slots again, densely, in seq order (with `extra`, absent, among them);
    /// doubles the room for new ones.
    fn compact(&mut self, extra: Option<u64>) {
        let mut known: Vec<(u64, bool)> = self
            .slot_of
            .iter()
            .map(|(&seq, &s)| (seq, self.present[s as usize]))
            .chain(extra.map(|e| (e, false)))
            .collect();
        known.sort_unstable_by_key(|k| k.0);
        let cap = (known.len() * 2).max(MIN_CAPACITY);
        self.present = vec![false; cap];
        self.tree = vec![0; cap];
        self.slot_of.clear();
        for (slot, (seq, here)) in known.iter().enumerate() {
            self.slot_of.insert(*seq, slot as u32);
            self.present[slot] = *here;
            if *here {
                self.tree[slot] += 1;
            }
        }
        // Linear Fenwick build.
        for i in 1..=cap {
            let parent = i + (i & i.wrapping_neg());
            if parent <= cap {
                self.tree[parent - 1] += self.tree[i - 1];
            }
        }
        self.next = known.len();
        self.max_seq = known.last().map(|k| k.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn ranks_follow_inserts_removals_and_returns() {
        let mut r = RankIndex::default();
        for s in [10, 20, 30, 40] {
            r.insert(s);
        }
        assert_eq!((r.rank(10), r.rank(30), r.rank(40)), (0, 2, 3));
        r.remove(20);
        assert_eq!(r.rank(40), 2);
        r.insert(20); // a retry comes back to its place
        assert_eq!(r.rank(40), 3);
        r.forget(10);
        assert_eq!((r.rank(20), r.rank(40)), (0, 2));
        assert_eq!(r.rank(99), 0, "unknown");
    }

    #[test]
    fn an_old_seq_inserted_late_takes_its_place() {
        let mut r = RankIndex::default();
        for s in [10, 30, 40] {
            r.insert(s);
        }
        r.insert(20);
        assert_eq!((r.rank(20), r.rank(30), r.rank(40)), (1, 2, 3));
        r.insert(50);
        assert_eq!(r.rank(50), 4);
        r.insert(5);
        assert_eq!((r.rank(5), r.rank(50)), (0, 5));
    }

    #[test]
    fn matches_a_sorted_set_through_many_compactions() {
        let mut r = RankIndex::default();
        let mut set = BTreeSet::new();
        let mut known = Vec::new();
        let mut rng = fastrand::Rng::with_seed(9);
        let mut seq = 0u64;
        for step in 0..20_000 {
            match rng.u8(0..10) {
                0..=4 => {
                    seq += rng.u64(1..4);
                    r.insert(seq);
                    set.insert(seq);
                    known.push(seq);
                }
                5..=6 if !known.is_empty() => {
                    let s = known[rng.usize(..known.len())];
                    r.remove(s);
                    set.remove(&s);
                }
                7 if !known.is_empty() => {
                    let s = known[rng.usize(..known.len())];
                    r.insert(s);
                    set.insert(s);
                }
                9 if seq > 10 && step % 50 == 0 => {
                    // An old seq never seen before (a retried appointment).
                    let s = rng.u64(1..seq);
                    if !known.contains(&s) {
                        r.insert(s);
                        set.insert(s);
                        known.push(s);
                    }
                }
                8 if !known.is_empty() => {
                    let i = rng.usize(..known.len());
                    let s = known.swap_remove(i);
                    r.forget(s);
                    set.remove(&s);
                }
                _ => {}
            }
            if step % 97 == 0 {
                for &s in known.iter().take(50) {
                    assert_eq!(r.rank(s), set.range(..s).count(), "step {step}, seq {s}");
                }
            }
        }
        assert!(
            r.present.len() < 4 * known.len().max(MIN_CAPACITY),
            "memory stays bounded"
        );
    }
}
