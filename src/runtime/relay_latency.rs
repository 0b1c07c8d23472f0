//! The relay's own latency, for `/metrics`: a histogram of the time from the kernel's
//! receive of a datagram (`SO_TIMESTAMPNS`) to the return of the `sendto` that relays it,
//! sampled one forwarded datagram in [`super::call_media::LATENCY_SAMPLE`]. Media threads
//! tally locally ([`LatencyTally`]) and add to the shared [`RelayLatency`] once per turn.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Upper bounds of the buckets, in µs: the range a voice relay cares about (a jitter buffer
/// discards what arrives 40–60 ms late).
pub const BOUNDS_US: [u64; 12] = [
    50, 100, 250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 250_000,
];

const BUCKETS: usize = BOUNDS_US.len() + 1;

/// One thread's samples since its last flush.
#[derive(Debug, Default, Clone)]
pub struct LatencyTally {
    /// Samples per bucket (the last is above every bound).
    buckets: [u64; BUCKETS],
    sum_ns: u64,
    count: u64,
}

fn bucket(ns: u64) -> usize {
    BOUNDS_US
        .iter()
        .position(|&b| ns <= b * 1_000)
        .unwrap_or(BOUNDS_US.len())
}

impl LatencyTally {
    /// Counts one sample of `ns` nanoseconds.
    pub fn observe(&mut self, ns: u64) {
        self.buckets[bucket(ns)] += 1;
        self.sum_ns = self.sum_ns.saturating_add(ns);
        self.count += 1;
    }

    /// No samples.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// The histogram every media thread adds to.
#[derive(Debug, Default)]
pub struct RelayLatency {
    buckets: [AtomicU64; BUCKETS],
    sum_ns: AtomicU64,
    count: AtomicU64,
}

impl RelayLatency {
    /// Adds a thread's samples and empties its tally.
    pub fn add(&self, t: &mut LatencyTally) {
        if t.is_empty() {
            return;
        }
        for (shared, n) in self.buckets.iter().zip(t.buckets) {
            if n > 0 {
                shared.fetch_add(n, Relaxed);
            }
        }
        self.sum_ns.fetch_add(t.sum_ns, Relaxed);
        self.count.fetch_add(t.count, Relaxed);
        *t = LatencyTally::default();
    }

    /// Samples so far.
    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    /// Prometheus text: `holdless_rtp_relay_latency_seconds`, cumulative buckets.
    pub fn render(&self, out: &mut String) {
        let name = "holdless_rtp_relay_latency_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time from the kernel's receive of a media datagram to its relay, \
             sampled 1 in {}.\n# TYPE {name} histogram",
            super::call_media::LATENCY_SAMPLE
        );
        let mut cumulative = 0;
        for (b, n) in BOUNDS_US.iter().zip(&self.buckets) {
            cumulative += n.load(Relaxed);
            let le = *b as f64 / 1e6;
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_ns.load(Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_land_in_cumulative_buckets_with_sum_and_count() {
        let shared = RelayLatency::default();
        let mut t = LatencyTally::default();
        t.observe(30_000); // 30 µs
        t.observe(100_000); // exactly 100 µs: le="0.0001"
        t.observe(3_000_000); // 3 ms
        t.observe(900_000_000); // 0.9 s: only +Inf
        shared.add(&mut t);
        assert!(t.is_empty(), "the tally is emptied once added");
        let mut out = String::new();
        shared.render(&mut out);
        let line = |le: &str| {
            out.lines()
                .find(|l| l.contains(&format!("le=\"{le}\"")))
                .unwrap_or_else(|| panic!("no bucket {le} in {out}"))
                .rsplit(' ')
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        };
        assert_eq!(line("0.00005"), 1);
        assert_eq!(line("0.0001"), 2);
        assert_eq!(line("0.002"), 2);
        assert_eq!(line("0.005"), 3);
        assert_eq!(line("0.25"), 3);
        assert_eq!(line("+Inf"), 4);
        assert!(out.contains("holdless_rtp_relay_latency_seconds_count 4"));
        assert!(out.contains("holdless_rtp_relay_latency_seconds_sum 0.90313"));
        assert!(out.contains("# TYPE holdless_rtp_relay_latency_seconds histogram"));
    }
}
