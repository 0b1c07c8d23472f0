//! Counters of what the SIP endpoint received, sent, dropped and rejected, by method or
//! reason. Shared between the engine (which counts) and the HTTP server (which reads).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// What a counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Messages received, by method (`response` for responses).
    Received,
    /// Messages sent, by method or status code.
    Sent,
    /// Messages dropped without an answer, by reason.
    Dropped,
    /// Requests refused with an error response, by reason.
    Rejected,
}

impl Kind {
    /// The metric name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Received => "holdless_sip_received_total",
            Kind::Sent => "holdless_sip_sent_total",
            Kind::Dropped => "holdless_sip_dropped_total",
            Kind::Rejected => "holdless_sip_rejected_total",
        }
    }
}

/// A cheap-to-clone handle on the shared counters.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    inner: Arc<Mutex<BTreeMap<(Kind, String), u64>>>,
}

impl Counters {
    /// Adds one to a counter.
    pub fn inc(&self, kind: Kind, label: &str) {
        let mut map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get_mut(&(kind, label.to_owned())) {
            Some(v) => *v += 1,
            None => {
                map.insert((kind, label.to_owned()), 1);
            }
        }
    }

    /// The value of one counter.
    pub fn get(&self, kind: Kind, label: &str) -> u64 {
        let map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&(kind, label.to_owned())).copied().unwrap_or(0)
    }

    /// Sum over every label of a kind.
    pub fn total(&self, kind: Kind) -> u64 {
        let map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        map.iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|(_, v)| v)
            .sum()
    }

    /// Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::new();
        let mut last = None;
        for ((kind, label), v) in map.iter() {
            if last != Some(*kind) {
                out.push_str(&format!("# TYPE {} counter\n", kind.name()));
                last = Some(*kind);
            }
            let key = match kind {
                Kind::Received | Kind::Sent => "what",
                Kind::Dropped | Kind::Rejected => "reason",
            };
            out.push_str(&format!(
                "{}{{{key}=\"{}\"}} {v}\n",
                kind.name(),
                label.replace('"', "'")
            ));
        }
        out
    }
}
