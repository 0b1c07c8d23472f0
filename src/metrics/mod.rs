//! Counters of what the SIP endpoint received, sent, dropped and rejected, by method or
//! reason; the gauges and the RTP jitter histogram; the Prometheus text a scrape gets.
//!
//! Built on `prometheus-client`: one `Family` of atomic `Counter`s per [`Kind`], registered
//! once in a `Registry` that never changes after start-up, so a scrape encodes it without a
//! lock of ours. A count is an atomic add. The SIP engines count several times per message,
//! so they do not even look the label up in the shared family: each holds a
//! [`LocalCounters`], its own map from label to counter handle (an `Arc`'d atomic), filled on
//! a label's first hit; after that a per-message count takes no shared lock at all. Atomic
//! counters shared by the engines rather than per-thread shards: two engines hitting the
//! same label share a cache line, which costs far less than the mutex it replaces and keeps
//! reads (tests, scrapes) a plain load.
//!
//! Names and label keys are exactly those of the earlier hand-written renderer (the test
//! suites and the benchmarks' scrapers parse them); `prometheus-client` adds a `# HELP`
//! line per metric, which every scraper here skips like any comment.
//!
//! Labels that come from the wire (the method of a received request) must not grow the
//! label set without bound: a counter keeps at most [`MAX_LABELS`] distinct labels, and
//! any further new one is counted under [`OVERFLOW_LABEL`].

mod local;

use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge as PromGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use local::{GaugePart, LocalCounters};

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
    /// RTP bytes (header and payload) accepted from a side, counted when a call's media ends.
    RtpBytes,
    /// RTP packets a side's streams lost on the way to holdless (RFC 3550 A.3).
    RtpLost,
    /// Inbound transfers, by how the caller's conversation ended (`registered`, `refused`,
    /// and the call record's outcome for calls without a callback), and records not kept.
    Inbound,
    /// Callback attempts the dialler finished, by result.
    Attempts,
}

impl Kind {
    /// Every kind, in the order of [`Kind::index`].
    pub const ALL: [Kind; 11] = [
        Kind::Received,
        Kind::Sent,
        Kind::Dropped,
        Kind::Rejected,
        Kind::Calls,
        Kind::Absorbed,
        Kind::RtpRelayed,
        Kind::RtpBytes,
        Kind::RtpLost,
        Kind::Inbound,
        Kind::Attempts,
    ];

    /// Its place in [`Kind::ALL`] (and in the tables indexed by kind).
    pub const fn index(self) -> usize {
        self as usize
    }

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
            Kind::RtpBytes => "holdless_rtp_bytes_total",
            Kind::RtpLost => "holdless_rtp_lost_packets_total",
            Kind::Inbound => "holdless_inbound_calls_total",
            Kind::Attempts => "holdless_callback_attempts_total",
        }
    }

    /// The name of the label a counter of this kind is split by.
    fn label_key(self) -> &'static str {
        match self {
            Kind::Received | Kind::Sent | Kind::Absorbed => "what",
            Kind::Dropped | Kind::Rejected => "reason",
            Kind::Calls | Kind::Inbound => "outcome",
            Kind::Attempts => "result",
            Kind::RtpRelayed | Kind::RtpBytes | Kind::RtpLost => "from",
        }
    }

    /// The `# HELP` text.
    fn help(self) -> &'static str {
        match self {
            Kind::Received => "SIP messages received, by method (response for responses)",
            Kind::Sent => "SIP messages sent, by method or status code",
            Kind::Dropped => "SIP messages dropped without an answer, by reason",
            Kind::Rejected => "SIP requests refused with an error response, by reason_code",
            Kind::Calls => "Bridged calls answered and ended, by outcome",
            Kind::Absorbed => "Retransmitted requests absorbed by their transaction",
            Kind::RtpRelayed => "RTP packets relayed, by the side that sent them",
            Kind::RtpBytes => "RTP bytes accepted, by the side that sent them",
            Kind::RtpLost => "RTP packets lost on the way to holdless, by sending side",
            Kind::Inbound => "Inbound calls, by how the caller's conversation ended",
            Kind::Attempts => "Callback attempts the dialler finished, by result",
        }
    }
}

/// The gauges the SIP engines report, each the sum of every engine's share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gauge {
    /// Calls in progress (`holdless_calls_active`).
    CallsActive,
    /// Live SIP transactions, including those kept for their RFC timers.
    TransactionsActive,
}

impl Gauge {
    /// Every gauge, in the order of [`Gauge::index`].
    pub const ALL: [Gauge; 2] = [Gauge::CallsActive, Gauge::TransactionsActive];

    /// Its place in [`Gauge::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The metric name.
    pub fn name(self) -> &'static str {
        match self {
            Gauge::CallsActive => "holdless_calls_active",
            Gauge::TransactionsActive => "holdless_sip_transactions_active",
        }
    }

    fn help(self) -> &'static str {
        match self {
            Gauge::CallsActive => "Calls in progress",
            Gauge::TransactionsActive => "Live SIP transactions, with those kept for RFC timers",
        }
    }
}

/// Most distinct labels one counter keeps; later new ones count under [`OVERFLOW_LABEL`].
/// Known methods, status codes and reasons stay far below it; only labels an attacker can
/// choose (the method token of a request) could reach it, and each costs memory forever.
pub const MAX_LABELS: usize = 64;

/// The label new labels of a full counter are counted under.
pub const OVERFLOW_LABEL: &str = "other";

/// Upper bounds (seconds) of the RTP jitter histogram: 20 ms is one G.711 packet time,
/// and 30–50 ms is where a default jitter buffer starts to discard and calls sound broken.
pub const JITTER_BUCKETS: [f64; 8] = [0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2];

/// The RTP jitter histogram's name.
pub const JITTER_HISTOGRAM: &str = "holdless_rtp_jitter_seconds";

/// Renders more Prometheus text at scrape time (gauges owned elsewhere, relay counters).
pub type Source = Arc<dyn Fn() -> String + Send + Sync>;

/// One label: the kind's key and a value.
type Label = [(&'static str, String); 1];

/// The jitter histograms by sending side.
type JitterFamily = Family<Label, Histogram, fn() -> Histogram>;

fn jitter_histogram() -> Histogram {
    Histogram::new(JITTER_BUCKETS)
}

/// What every [`Counters`] handle shares.
struct Shared {
    /// Fixed after construction: a scrape encodes it without locking.
    registry: Registry,
    /// The counters by [`Kind::index`], then label.
    families: Vec<Family<Label, Counter>>,
    /// Each kind's labels, in order of creation (for [`Counters::total`]); locked only when
    /// a label is created and by `total`, never to count.
    created: Vec<Mutex<Vec<Counter>>>,
    /// RTP jitter at the end of each call, by the side that sent the stream.
    jitter: JitterFamily,
    /// By [`Gauge::index`]: the sum of every engine's share.
    gauges: Vec<PromGauge>,
    sources: Mutex<Vec<Source>>,
}

/// A cheap-to-clone handle on the shared counters.
#[derive(Clone)]
pub struct Counters {
    shared: Arc<Shared>,
}

impl Default for Counters {
    fn default() -> Self {
        let mut registry = Registry::default();
        let families: Vec<Family<Label, Counter>> =
            Kind::ALL.iter().map(|_| Family::default()).collect();
        for (kind, family) in Kind::ALL.iter().zip(&families) {
            // prometheus-client appends `_total` to a counter's name itself.
            let name = kind.name().strip_suffix("_total").unwrap_or(kind.name());
            registry.register(name, kind.help(), family.clone());
        }
        let jitter: JitterFamily = Family::new_with_constructor(jitter_histogram);
        registry.register(
            JITTER_HISTOGRAM,
            "RFC 3550 interarrival jitter of each stream at the end of its call, by sending side",
            jitter.clone(),
        );
        let gauges: Vec<PromGauge> = Gauge::ALL.iter().map(|_| PromGauge::default()).collect();
        for (g, gauge) in Gauge::ALL.iter().zip(&gauges) {
            registry.register(g.name(), g.help(), gauge.clone());
        }
        Counters {
            shared: Arc::new(Shared {
                registry,
                families,
                created: Kind::ALL.iter().map(|_| Mutex::default()).collect(),
                jitter,
                gauges,
                sources: Mutex::default(),
            }),
        }
    }
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters").finish_non_exhaustive()
    }
}

impl Counters {
    /// The counter of `label`, created at its first use (under [`OVERFLOW_LABEL`] once the
    /// kind has [`MAX_LABELS`] labels). Keep the handle to count without a lookup.
    pub fn counter(&self, kind: Kind, label: &str) -> Counter {
        let family = &self.shared.families[kind.index()];
        let key = [(kind.label_key(), label.to_owned())];
        if let Some(c) = family.get(&key) {
            return c.clone();
        }
        let mut created = self.shared.created[kind.index()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = family.get(&key) {
            return c.clone();
        }
        let key = if created.len() >= MAX_LABELS && label != OVERFLOW_LABEL {
            let other = [(kind.label_key(), OVERFLOW_LABEL.to_owned())];
            if let Some(c) = family.get(&other) {
                return c.clone();
            }
            other
        } else {
            key
        };
        let c = family.get_or_create_owned(&key);
        created.push(c.clone());
        c
    }

    /// Adds `n` to a counter (a lookup in the shared family: hot paths use
    /// [`LocalCounters`]).
    pub fn add(&self, kind: Kind, label: &str, n: u64) {
        self.counter(kind, label).inc_by(n);
    }

    /// Adds one to a counter.
    pub fn inc(&self, kind: Kind, label: &str) {
        self.add(kind, label, 1);
    }

    /// The value of one counter.
    pub fn get(&self, kind: Kind, label: &str) -> u64 {
        let key = [(kind.label_key(), label.to_owned())];
        self.shared.families[kind.index()]
            .get(&key)
            .map_or(0, |c| c.get())
    }

    /// Sum over every label of a kind.
    pub fn total(&self, kind: Kind) -> u64 {
        self.shared.created[kind.index()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(Counter::get)
            .sum()
    }

    /// A share of a gauge, for one part (a SIP engine) to set; a scrape shows the sum of
    /// every part's last value.
    pub fn gauge_part(&self, gauge: Gauge) -> GaugePart {
        GaugePart::new(self.shared.gauges[gauge.index()].clone())
    }

    /// A gauge's value: the sum of its parts.
    pub fn gauge(&self, gauge: Gauge) -> i64 {
        self.shared.gauges[gauge.index()].get()
    }

    /// Records the RFC 3550 interarrival jitter of one stream (the sending side `from`) at
    /// the end of a call in [`JITTER_HISTOGRAM`].
    pub fn observe_jitter(&self, from: &str, jitter: std::time::Duration) {
        let key = [("from", from.to_owned())];
        self.shared
            .jitter
            .get_or_create(&key)
            .observe(jitter.as_secs_f64());
    }

    /// Adds a source of more metrics text, called at every scrape.
    pub fn add_source(&self, source: Source) {
        self.shared
            .sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(source);
    }

    /// Prometheus text exposition (format 0.0.4) of every counter, gauge and source.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_text::encode(&mut out, &self.shared.registry) {
            // Writing to a String does not fail; an encoder error would be a bug there.
            tracing::error!(error = %e, "metrics not encoded");
        }
        let sources: Vec<Source> = self
            .shared
            .sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for s in sources {
            out.push_str(&s());
        }
        out
    }
}

#[cfg(test)]
mod tests;
