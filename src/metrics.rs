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
    /// Bridged calls answered and ended, by outcome.
    Calls,
    /// Retransmitted requests absorbed by a transaction (its last response re-sent).
    Absorbed,
    /// RTP packets relayed, by the side that sent them (counted when a call's media ends).
    RtpRelayed,
}

impl Kind {
    /// The metric name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Received => "holdless_sip_received_total",
            Kind::Sent => "holdless_sip_sent_total",
            Kind::Dropped => "holdless_sip_dropped_total",
            Kind::Rejected => "holdless_sip_rejected_total",
            Kind::Calls => "holdless_calls_total",
            Kind::Absorbed => "holdless_sip_retransmissions_absorbed_total",
            Kind::RtpRelayed => "holdless_rtp_relayed_packets_total",
        }
    }
}

/// Renders more Prometheus text at scrape time (gauges owned elsewhere, relay counters).
pub type Source = Arc<dyn Fn() -> String + Send + Sync>;

/// A cheap-to-clone handle on the shared counters.
#[derive(Clone, Default)]
pub struct Counters {
    /// Counters by kind, then label (nested so a hit needs no allocation).
    inner: Arc<Mutex<BTreeMap<Kind, BTreeMap<String, u64>>>>,
    gauges: Arc<Mutex<BTreeMap<&'static str, i64>>>,
    sources: Arc<Mutex<Vec<Source>>>,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters").finish_non_exhaustive()
    }
}

impl Counters {
    /// Adds `n` to a counter.
    pub fn add(&self, kind: Kind, label: &str, n: u64) {
        let mut map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let labels = map.entry(kind).or_default();
        match labels.get_mut(label) {
            Some(v) => *v += n,
            None => {
                labels.insert(label.to_owned(), n);
            }
        }
    }

    /// Adds one to a counter.
    pub fn inc(&self, kind: Kind, label: &str) {
        self.add(kind, label, 1);
    }

    /// The value of one counter.
    pub fn get(&self, kind: Kind, label: &str) -> u64 {
        let map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&kind)
            .and_then(|l| l.get(label))
            .copied()
            .unwrap_or(0)
    }

    /// Sum over every label of a kind.
    pub fn total(&self, kind: Kind) -> u64 {
        let map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&kind).map_or(0, |l| l.values().sum())
    }

    /// Sets a gauge (calls in progress, transactions...).
    pub fn set_gauge(&self, name: &'static str, value: i64) {
        let mut g = self.gauges.lock().unwrap_or_else(PoisonError::into_inner);
        g.insert(name, value);
    }

    /// Adds a source of more metrics text, called at every scrape.
    pub fn add_source(&self, source: Source) {
        self.sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(source);
    }

    /// Prometheus text exposition of every counter, gauge and source.
    pub fn render(&self) -> String {
        let mut out = self.render_counters();
        for (name, v) in self
            .gauges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            out.push_str(&format!("# TYPE {name} gauge\n{name} {v}\n"));
        }
        let sources: Vec<Source> = self
            .sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for s in sources {
            out.push_str(&s());
        }
        out
    }

    fn render_counters(&self) -> String {
        let map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::new();
        for (kind, labels) in map.iter() {
            out.push_str(&format!("# TYPE {} counter\n", kind.name()));
            for (label, v) in labels {
                let key = match kind {
                    Kind::Received | Kind::Sent | Kind::Absorbed => "what",
                    Kind::Dropped | Kind::Rejected => "reason",
                    Kind::Calls => "outcome",
                    Kind::RtpRelayed => "from",
                };
                out.push_str(&format!(
                    "{}{{{key}=\"{}\"}} {v}\n",
                    kind.name(),
                    label.replace('"', "'")
                ));
            }
        }
        out
    }
}
