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
}

/// Upper bounds (seconds) of the RTP jitter histogram: 20 ms is one G.711 packet time,
/// and 30–50 ms is where a default jitter buffer starts to discard and calls sound broken.
pub const JITTER_BUCKETS: [f64; 8] = [0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2];

/// A Prometheus histogram over [`JITTER_BUCKETS`].
#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Observations at or below each bound (not cumulative; summed when rendered).
    buckets: [u64; JITTER_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, v: f64) {
        if let Some(i) = JITTER_BUCKETS.iter().position(|b| v <= *b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += v;
    }
}

/// The RTP jitter histogram's name.
pub const JITTER_HISTOGRAM: &str = "holdless_rtp_jitter_seconds";

/// Renders more Prometheus text at scrape time (gauges owned elsewhere, relay counters).
pub type Source = Arc<dyn Fn() -> String + Send + Sync>;

/// A cheap-to-clone handle on the shared counters.
#[derive(Clone, Default)]
pub struct Counters {
    /// Counters by kind, then label (nested so a hit needs no allocation).
    inner: Arc<Mutex<BTreeMap<Kind, BTreeMap<String, u64>>>>,
    /// Gauges by name, then by the part (engine) that reports it; rendered as the sum.
    gauges: Arc<Mutex<BTreeMap<&'static str, BTreeMap<usize, i64>>>>,
    /// RTP jitter at the end of each call, by the side that sent the stream.
    jitter: Arc<Mutex<BTreeMap<String, Histogram>>>,
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
        self.set_gauge_part(name, 0, value);
    }

    /// Sets one part's share of a gauge (each SIP engine its calls); a scrape shows the sum.
    pub fn set_gauge_part(&self, name: &'static str, part: usize, value: i64) {
        let mut g = self.gauges.lock().unwrap_or_else(PoisonError::into_inner);
        g.entry(name).or_default().insert(part, value);
    }

    /// Records the RFC 3550 interarrival jitter of one stream (the sending side `from`) at
    /// the end of a call in [`JITTER_HISTOGRAM`].
    pub fn observe_jitter(&self, from: &str, jitter: std::time::Duration) {
        let mut h = self.jitter.lock().unwrap_or_else(PoisonError::into_inner);
        h.entry(from.to_owned())
            .or_default()
            .observe(jitter.as_secs_f64());
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
        out.push_str(&self.render_jitter());
        for (name, parts) in self
            .gauges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let v: i64 = parts.values().sum();
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

    fn render_jitter(&self) -> String {
        let map = self.jitter.lock().unwrap_or_else(PoisonError::into_inner);
        if map.is_empty() {
            return String::new();
        }
        let name = JITTER_HISTOGRAM;
        let mut out = format!("# TYPE {name} histogram\n");
        for (from, h) in map.iter() {
            let from = from.replace('"', "'");
            let mut cumulative = 0;
            for (le, n) in JITTER_BUCKETS.iter().zip(h.buckets) {
                cumulative += n;
                out.push_str(&format!(
                    "{name}_bucket{{from=\"{from}\",le=\"{le}\"}} {cumulative}\n"
                ));
            }
            out.push_str(&format!(
                "{name}_bucket{{from=\"{from}\",le=\"+Inf\"}} {}\n{name}_sum{{from=\"{from}\"}} {}\n{name}_count{{from=\"{from}\"}} {}\n",
                h.count, h.sum, h.count
            ));
        }
        out
    }

    fn render_counters(&self) -> String {
        let map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::new();
        for (kind, labels) in map.iter() {
            out.push_str(&format!("# TYPE {} counter\n", kind.name()));
            let key = kind.label_key();
            for (label, v) in labels {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_gauge_is_the_sum_of_its_parts() {
        let c = Counters::default();
        c.set_gauge_part("holdless_calls_active", 0, 3);
        c.set_gauge_part("holdless_calls_active", 1, 4);
        c.set_gauge_part("holdless_calls_active", 1, 5);
        assert!(
            c.render().contains("holdless_calls_active 8\n"),
            "{}",
            c.render()
        );
    }

    #[test]
    fn jitter_histogram_is_cumulative_with_sum_and_count() {
        let c = Counters::default();
        assert!(
            !c.render().contains(JITTER_HISTOGRAM),
            "absent until observed"
        );
        c.observe_jitter("caller", Duration::from_millis(4));
        c.observe_jitter("caller", Duration::from_millis(40));
        c.observe_jitter("caller", Duration::from_millis(900));
        let text = c.render();
        assert!(text.contains("# TYPE holdless_rtp_jitter_seconds histogram"));
        for (le, n) in [
            ("0.001", 0),
            ("0.005", 1),
            ("0.03", 1),
            ("0.05", 2),
            ("0.2", 2),
        ] {
            let line =
                format!("holdless_rtp_jitter_seconds_bucket{{from=\"caller\",le=\"{le}\"}} {n}\n");
            assert!(text.contains(&line), "{line} in {text}");
        }
        assert!(
            text.contains("holdless_rtp_jitter_seconds_bucket{from=\"caller\",le=\"+Inf\"} 3\n")
        );
        assert!(text.contains("holdless_rtp_jitter_seconds_count{from=\"caller\"} 3\n"));
        let sum: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("holdless_rtp_jitter_seconds_sum{from=\"caller\"} "))
            .and_then(|v| v.parse().ok())
            .expect("a _sum line");
        assert!((sum - 0.944).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn rtp_byte_and_loss_counters_are_labelled_by_sender() {
        let c = Counters::default();
        c.add(Kind::RtpBytes, "callee", 1720);
        c.add(Kind::RtpLost, "callee", 2);
        let text = c.render();
        assert!(
            text.contains("holdless_rtp_bytes_total{from=\"callee\"} 1720\n"),
            "{text}"
        );
        assert!(
            text.contains("holdless_rtp_lost_packets_total{from=\"callee\"} 2\n"),
            "{text}"
        );
    }
}
