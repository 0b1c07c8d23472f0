//! RFC 3261 §17 timers as data: the [`Timer`] names, the [`TimerConfig`] they derive from, a
//! per-transaction table of armed deadlines and one ordered queue for the whole layer.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::TxId;

/// Timer D on unreliable transports: RFC 3261 §17.1.1.2 asks for at least 32 s, long enough to
/// absorb every retransmission of a final response the server may still send.
pub const TIMER_D_UDP: Duration = Duration::from_secs(32);

/// RFC 3261 §17.2.1: a server INVITE transaction sends `100 Trying` if the TU has not sent a
/// provisional response within 200 ms.
pub const AUTO_TRYING_DELAY: Duration = Duration::from_millis(200);

/// The RFC 3261 timer base values (§17.1.1.1, table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// Round-trip time estimate, the first retransmission interval (default 500 ms).
    pub t1: Duration,
    /// Cap on the retransmission interval of non-INVITE requests and INVITE responses (4 s).
    pub t2: Duration,
    /// How long a message may stay in the network (5 s).
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// 64*T1: Timers B, F, H, J, L and M (32 s with the defaults).
    pub fn t1_x64(&self) -> Duration {
        self.t1.saturating_mul(64)
    }
}

/// A transaction timer, named as in RFC 3261 §17 and RFC 6026 §8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Client INVITE retransmission (unreliable transports), doubling from T1.
    A,
    /// Client INVITE gives up waiting for any response (64*T1).
    B,
    /// Client INVITE Completed: absorbs final response retransmissions.
    D,
    /// Client non-INVITE retransmission, doubling from T1 up to T2.
    E,
    /// Client non-INVITE gives up waiting for a final response (64*T1).
    F,
    /// Server INVITE retransmits its non-2xx final response, doubling from T1 up to T2.
    G,
    /// Server INVITE gives up waiting for the ACK (64*T1).
    H,
    /// Server INVITE Confirmed: absorbs ACK retransmissions (T4).
    I,
    /// Server non-INVITE Completed: absorbs request retransmissions (64*T1).
    J,
    /// Client non-INVITE Completed: absorbs response retransmissions (T4).
    K,
    /// Server INVITE Accepted (RFC 6026): absorbs INVITE retransmissions after a 2xx (64*T1).
    L,
    /// Client INVITE Accepted (RFC 6026): 2xx retransmissions still reach the TU (64*T1).
    M,
    /// Server INVITE: send `100 Trying` if the TU stays silent (§17.2.1, 200 ms).
    Trying,
}

/// Where one armed timer sits in the [`TimerQueue`]: its deadline and a tie-breaking sequence.
type QueueKey = (Instant, u64);

/// Timers one transaction can have armed at once: two in every state of RFC 3261 §17
/// (A+B, E+F, G+H, or Trying alone), so four leaves room. Kept inline: a table of all
/// thirteen timers per transaction was ~40 % of a completed transaction's memory, and
/// tens of thousands of them live for Timer J/L/M's 32 s under load.
const ARMED_MAX: usize = 4;

/// One transaction's armed timers.
#[derive(Debug, Default)]
pub(super) struct TimerSlots([Option<(Timer, QueueKey)>; ARMED_MAX]);

impl TimerSlots {
    /// The deadline of a timer, if armed.
    #[cfg(test)]
    pub(super) fn deadline(&self, timer: Timer) -> Option<Instant> {
        self.0
            .iter()
            .flatten()
            .find(|(t, _)| *t == timer)
            .map(|(_, (at, _))| *at)
    }

    /// Removes `timer`, giving its queue key.
    fn take(&mut self, timer: Timer) -> Option<QueueKey> {
        let slot = self
            .0
            .iter_mut()
            .find(|s| s.is_some_and(|(t, _)| t == timer))?;
        slot.take().map(|(_, k)| k)
    }

    /// A free slot, or (never in RFC 3261's state machines) the first one, evicted: its
    /// key is returned so the queue can drop it too.
    fn free_slot(&mut self) -> (&mut Option<(Timer, QueueKey)>, Option<QueueKey>) {
        match self.0.iter().position(Option::is_none) {
            Some(i) => (&mut self.0[i], None),
            None => {
                let evicted = self.0[0].take().map(|(_, k)| k);
                tracing::error!("a transaction armed more than {ARMED_MAX} timers");
                (&mut self.0[0], evicted)
            }
        }
    }
}

/// Every armed timer of the layer, earliest first. Arming, cancelling and popping are
/// O(log n), so thousands of live transactions stay cheap.
#[derive(Debug, Default)]
pub(super) struct TimerQueue {
    entries: BTreeMap<QueueKey, (TxId, Timer)>,
    next_seq: u64,
}

impl TimerQueue {
    /// Arms (or re-arms) `timer` of transaction `tx` to fire at `at`.
    pub(super) fn set(&mut self, slots: &mut TimerSlots, tx: TxId, timer: Timer, at: Instant) {
        self.cancel(slots, timer);
        let key = (at, self.next_seq);
        self.next_seq += 1;
        self.entries.insert(key, (tx, timer));
        let (slot, evicted) = slots.free_slot();
        *slot = Some((timer, key));
        if let Some(old) = evicted {
            self.entries.remove(&old);
        }
    }

    /// Arms `timer` to fire `after` from `now`; a deadline past the end of time is never armed.
    pub(super) fn set_after(
        &mut self,
        slots: &mut TimerSlots,
        tx: TxId,
        timer: Timer,
        now: Instant,
        after: Duration,
    ) {
        match now.checked_add(after) {
            Some(at) => self.set(slots, tx, timer, at),
            None => self.cancel(slots, timer),
        }
    }

    /// Disarms one timer, if armed.
    pub(super) fn cancel(&mut self, slots: &mut TimerSlots, timer: Timer) {
        if let Some(key) = slots.take(timer) {
            self.entries.remove(&key);
        }
    }

    /// Disarms every timer of a transaction.
    pub(super) fn cancel_all(&mut self, slots: &mut TimerSlots) {
        for slot in &mut slots.0 {
            if let Some((_, key)) = slot.take() {
                self.entries.remove(&key);
            }
        }
    }

    /// The earliest deadline.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.entries.keys().next().map(|(at, _)| *at)
    }

    /// A mark: timers armed after it are not popped by [`TimerQueue::pop_due`] with this mark,
    /// so a zero interval can never make one `handle_timeout` call loop forever.
    pub(super) fn mark(&self) -> u64 {
        self.next_seq
    }

    /// Removes and returns the earliest timer due at or before `now` and armed before `mark`.
    /// The caller must clear the slot with [`TimerSlots::fired`].
    pub(super) fn pop_due(&mut self, now: Instant, mark: u64) -> Option<(TxId, Timer)> {
        let (&(at, seq), _) = self.entries.first_key_value()?;
        if at > now || seq >= mark {
            return None;
        }
        self.entries.remove(&(at, seq))
    }

    /// How many timers are armed.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

impl TimerSlots {
    /// Forgets a timer the queue just popped.
    pub(super) fn fired(&mut self, timer: Timer) {
        self.take(timer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transaction::ServerTxId;

    #[test]
    fn defaults_are_rfc_3261_table_4() {
        let c = TimerConfig::default();
        assert_eq!(c.t1, Duration::from_millis(500));
        assert_eq!(c.t2, Duration::from_secs(4));
        assert_eq!(c.t4, Duration::from_secs(5));
        assert_eq!(c.t1_x64(), Duration::from_secs(32));
    }

    #[test]
    fn queue_pops_in_deadline_order_and_rearming_replaces() {
        let base = Instant::now();
        let mut q = TimerQueue::default();
        let (mut a, mut b) = (TimerSlots::default(), TimerSlots::default());
        let (ta, tb) = (TxId::Server(ServerTxId(1)), TxId::Server(ServerTxId(2)));
        q.set_after(&mut a, ta, Timer::G, base, Duration::from_secs(3));
        q.set_after(&mut b, tb, Timer::J, base, Duration::from_secs(1));
        q.set_after(&mut a, ta, Timer::G, base, Duration::from_secs(2));
        assert_eq!(q.len(), 2);
        assert_eq!(a.deadline(Timer::G), Some(base + Duration::from_secs(2)));
        assert_eq!(q.next_deadline(), Some(base + Duration::from_secs(1)));
        let mark = q.mark();
        let later = base + Duration::from_secs(5);
        assert_eq!(q.pop_due(later, mark), Some((tb, Timer::J)));
        assert_eq!(q.pop_due(later, mark), Some((ta, Timer::G)));
        assert_eq!(q.pop_due(later, mark), None);
    }

    #[test]
    fn slots_stay_small_and_consistent_with_the_queue_even_when_overfilled() {
        assert!(std::mem::size_of::<TimerSlots>() <= 128);
        let base = Instant::now();
        let mut q = TimerQueue::default();
        let mut s = TimerSlots::default();
        let t = TxId::Client(crate::sip::transaction::ClientTxId(3));
        let all = [Timer::A, Timer::B, Timer::D, Timer::E, Timer::F, Timer::K];
        for (i, timer) in all.into_iter().enumerate() {
            q.set_after(&mut s, t, timer, base, Duration::from_secs(i as u64 + 1));
        }
        assert_eq!(q.len(), ARMED_MAX, "evicted timers leave the queue too");
        assert_eq!(s.deadline(Timer::K), Some(base + Duration::from_secs(6)));
        q.cancel(&mut s, Timer::K);
        q.cancel_all(&mut s);
        assert_eq!(q.len(), 0);
        assert!(all.iter().all(|t| s.deadline(*t).is_none()));
    }

    #[test]
    fn cancel_all_empties_the_queue_and_marks_stop_new_timers() {
        let base = Instant::now();
        let mut q = TimerQueue::default();
        let mut s = TimerSlots::default();
        let t = TxId::Server(ServerTxId(7));
        q.set(&mut s, t, Timer::H, base);
        q.set(&mut s, t, Timer::G, base);
        q.cancel_all(&mut s);
        assert_eq!(q.next_deadline(), None);
        let mark = q.mark();
        q.set(&mut s, t, Timer::G, base);
        assert_eq!(q.pop_due(base, mark), None, "armed after the mark");
        assert!(q.pop_due(base, q.mark()).is_some());
    }
}
