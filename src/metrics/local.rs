//! One task's counter handles and gauge shares: what the hot paths (the SIP engines, the
//! UDP readers) count through, so a count is a map lookup in memory of their own and an
//! atomic add, with no lock shared with the other engines.

use std::collections::HashMap;
use std::fmt::Write as _;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

use super::{Counters, Kind, MAX_LABELS};

/// Most handles one [`LocalCounters`] keeps per kind: room for every real label and as
/// many folded into `other`; past it a miss is looked up in the shared family each time
/// (correct, only slower), so a flood of invented methods cannot grow this map.
const LOCAL_MAX: usize = 2 * MAX_LABELS;

/// Counter handles of one task, by kind and label, filled from the shared [`Counters`] on
/// a label's first hit.
pub struct LocalCounters {
    shared: Counters,
    /// By [`Kind::index`]: label → handle.
    handles: Vec<HashMap<Box<str>, Counter>>,
    /// Where labels made at count time (status codes, `{why}_{code}`) are written, kept to
    /// spare an allocation per message.
    scratch: String,
}

impl std::fmt::Debug for LocalCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCounters").finish_non_exhaustive()
    }
}

impl LocalCounters {
    /// An empty cache over `shared`.
    pub fn new(shared: Counters) -> Self {
        LocalCounters {
            shared,
            handles: Kind::ALL.iter().map(|_| HashMap::new()).collect(),
            scratch: String::new(),
        }
    }

    /// The shared counters (to hand to another task).
    pub fn shared(&self) -> &Counters {
        &self.shared
    }

    /// Adds `n` to a counter.
    pub fn add(&mut self, kind: Kind, label: &str, n: u64) {
        let map = &mut self.handles[kind.index()];
        if let Some(c) = map.get(label) {
            c.inc_by(n);
            return;
        }
        let c = self.shared.counter(kind, label);
        c.inc_by(n);
        if map.len() < LOCAL_MAX {
            map.insert(label.into(), c);
        }
    }

    /// Adds one to a counter.
    pub fn inc(&mut self, kind: Kind, label: &str) {
        self.add(kind, label, 1);
    }

    /// Adds one to the counter whose label `label` formats, without allocating once the
    /// label is known (`format_args!("{code}")`).
    pub fn inc_fmt(&mut self, kind: Kind, label: std::fmt::Arguments<'_>) {
        let mut s = std::mem::take(&mut self.scratch);
        s.clear();
        // Writing into a String cannot fail.
        let _ = s.write_fmt(label);
        self.add(kind, &s, 1);
        self.scratch = s;
    }
}

/// One part's share of a summed gauge (each SIP engine's calls): setting it adds the change
/// since its last value to the shared atomic, so the gauge is the sum with no lock.
#[derive(Debug)]
pub struct GaugePart {
    gauge: Gauge,
    last: i64,
}

impl GaugePart {
    pub(super) fn new(gauge: Gauge) -> Self {
        GaugePart { gauge, last: 0 }
    }

    /// Sets this part's value.
    pub fn set(&mut self, value: i64) {
        if value != self.last {
            self.gauge.inc_by(value - self.last);
            self.last = value;
        }
    }
}

impl Drop for GaugePart {
    /// A part that goes away takes its share with it.
    fn drop(&mut self) {
        self.gauge.dec_by(self.last);
    }
}
