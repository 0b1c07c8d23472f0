//! Per-stream statistics for the call record and metrics: packet and byte counts, loss
//! (RFC 3550 A.3) and interarrival jitter (RFC 3550 A.8), and why packets were dropped.

use std::time::Duration;

use super::Side;

/// RFC 3550 A.1: a jump of up to this many sequence numbers is packet loss, not a restart.
const MAX_DROPOUT: u16 = 3000;
/// RFC 3550 A.1: a step back of up to this many sequence numbers is reordering.
const MAX_MISORDER: u16 = 100;
/// The RTP clock of every codec holdless relays (G.711 and telephone-event at 8 kHz).
pub const CLOCK_RATE: u32 = 8000;

/// Packets the relay did not forward, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounts {
    /// Not RTP / RTCP, or a truncated header.
    pub malformed: u64,
    /// From an address the stream is not latched to, or may not latch to.
    pub source: u64,
    /// A payload type that was not negotiated.
    pub payload_type: u64,
    /// The SDP direction forbids it (hold, inactive).
    pub direction: u64,
    /// The other side has no address to send to yet (no answer, port 0, c=0.0.0.0).
    pub no_destination: u64,
    /// The destination is outside the egress allow-list.
    pub egress: u64,
    /// The socket refused the send (buffer full).
    pub send_failed: u64,
    /// SRTP: failed authentication or the replay check (or could not be protected).
    pub srtp: u64,
}

impl DropCounts {
    /// The sum over every reason.
    pub fn total(&self) -> u64 {
        self.malformed
            + self.source
            + self.payload_type
            + self.direction
            + self.no_destination
            + self.egress
            + self.send_failed
            + self.srtp
    }
}

/// What one side sent to holdless over the call, and what became of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// RTP packets accepted from this side (after the source check).
    pub packets: u64,
    /// Their bytes (RTP header and payload).
    pub bytes: u64,
    /// RTP packets lost on the way to holdless (RFC 3550 A.3, summed over SSRCs).
    pub lost: u64,
    /// Interarrival jitter in RTP timestamp units (8 kHz), RFC 3550 A.8.
    pub jitter: u32,
    /// RTCP packets accepted from this side.
    pub rtcp_packets: u64,
    /// RFC 4733 event packets among `packets`.
    pub events: u64,
    /// Packets (RTP and RTCP) forwarded to the other side.
    pub relayed: u64,
    /// Of those, packets transcoded between µ-law and A-law.
    pub transcoded: u64,
    /// Packets not forwarded, by reason.
    pub dropped: DropCounts,
}

impl StreamStats {
    /// Jitter as a duration.
    pub fn jitter_duration(&self) -> Duration {
        Duration::from_micros(u64::from(self.jitter) * 1_000_000 / u64::from(CLOCK_RATE))
    }
}

/// The statistics of both sides of a call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStats {
    /// What the caller sent.
    pub caller: StreamStats,
    /// What the callee sent.
    pub callee: StreamStats,
}

impl CallStats {
    /// One side's statistics.
    pub fn side(&self, side: Side) -> &StreamStats {
        match side {
            Side::Caller => &self.caller,
            Side::Callee => &self.callee,
        }
    }

    /// One side's statistics, mutably.
    pub fn side_mut(&mut self, side: Side) -> &mut StreamStats {
        match side {
            Side::Caller => &mut self.caller,
            Side::Callee => &mut self.callee,
        }
    }
}

/// RFC 3550 Appendix A receiver state for one stream: sequence tracking and jitter.
#[derive(Debug, Clone, Default)]
pub struct Receiver {
    source: Option<Source>,
    /// Expected and received packets of sources that ended (SSRC changes).
    done_lost: u64,
}

#[derive(Debug, Clone)]
struct Source {
    ssrc: u32,
    base_seq: u16,
    max_seq: u16,
    cycles: u64,
    bad_seq: Option<u16>,
    received: u64,
    /// Relative transit time of the last audio packet (A.8), in timestamp units.
    transit: Option<u32>,
    /// Jitter × 16 (A.8's integer form).
    jitter16: u32,
}

impl Source {
    fn new(ssrc: u32, seq: u16) -> Source {
        Source {
            ssrc,
            base_seq: seq,
            max_seq: seq,
            cycles: 0,
            bad_seq: None,
            received: 1,
            transit: None,
            jitter16: 0,
        }
    }

    fn expected(&self) -> u64 {
        self.cycles + u64::from(self.max_seq) - u64::from(self.base_seq) + 1
    }

    fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }

    /// RFC 3550 A.1 `update_seq` without probation: counts the packet, tracks wraps.
    fn update_seq(&mut self, seq: u16) {
        let delta = seq.wrapping_sub(self.max_seq);
        if delta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += 1 << 16;
            }
            self.max_seq = seq;
            self.bad_seq = None;
        } else if delta <= u16::MAX - MAX_MISORDER {
            // A big jump: a restarted sender if the next packet follows it, else noise.
            if self.bad_seq == Some(seq) {
                let (ssrc, jitter16, transit) = (self.ssrc, self.jitter16, self.transit);
                *self = Source::new(ssrc, seq);
                self.jitter16 = jitter16;
                self.transit = transit;
                return;
            }
            self.bad_seq = Some(seq.wrapping_add(1));
            return;
        }
        // In order, or a duplicate / reordered packet: it still arrived.
        self.received += 1;
    }
}

impl Receiver {
    /// Counts one RTP packet. `arrival` is the arrival time in timestamp units; `audio` is
    /// false for RFC 4733 events, whose repeated timestamps would read as jitter.
    pub fn update(&mut self, ssrc: u32, seq: u16, timestamp: u32, arrival: u32, audio: bool) {
        let src = match &mut self.source {
            Some(s) if s.ssrc == ssrc => {
                s.update_seq(seq);
                s
            }
            slot => {
                if let Some(old) = slot.take() {
                    self.done_lost += old.lost();
                }
                slot.insert(Source::new(ssrc, seq))
            }
        };
        if audio {
            let transit = arrival.wrapping_sub(timestamp);
            if let Some(prev) = src.transit {
                let d = (transit.wrapping_sub(prev) as i32).unsigned_abs();
                // J += (|D| - J) / 16, kept ×16 in integers as in A.8.
                src.jitter16 = src
                    .jitter16
                    .wrapping_add(d.min(1 << 26))
                    .wrapping_sub((src.jitter16 + 8) >> 4);
            }
            src.transit = Some(transit);
        }
    }

    /// Packets lost so far, over every SSRC seen.
    pub fn lost(&self) -> u64 {
        self.done_lost + self.source.as_ref().map_or(0, Source::lost)
    }

    /// The current source's jitter in timestamp units.
    pub fn jitter(&self) -> u32 {
        self.source.as_ref().map_or(0, |s| s.jitter16 >> 4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_gaps_as_loss_and_survives_the_wrap() {
        let mut r = Receiver::default();
        for seq in (65500u16..=65535).chain(0..100) {
            if seq % 10 != 3 {
                r.update(1, seq, 0, 0, false);
            }
        }
        // 136 sequence numbers, those ending in 3 are missing: 65503..65533 (4) and 3..93 (10).
        assert_eq!(r.lost(), 14);
    }

    #[test]
    fn duplicates_and_reordering_are_not_loss() {
        let mut r = Receiver::default();
        for seq in [1u16, 2, 4, 3, 5, 5, 6] {
            r.update(7, seq, 0, 0, false);
        }
        assert_eq!(r.lost(), 0);
    }

    #[test]
    fn a_restarted_sender_is_followed() {
        let mut r = Receiver::default();
        for seq in 0..10u16 {
            r.update(7, seq, 0, 0, false);
        }
        // Same SSRC jumps far away and continues from there: one restart, no loss.
        for seq in 40000..40010u16 {
            r.update(7, seq, 0, 0, false);
        }
        assert_eq!(r.lost(), 0);
    }

    #[test]
    fn a_new_ssrc_keeps_the_loss_of_the_old() {
        let mut r = Receiver::default();
        for seq in [1u16, 2, 5] {
            r.update(7, seq, 0, 0, false);
        }
        for seq in [100u16, 101] {
            r.update(8, seq, 0, 0, false);
        }
        assert_eq!(r.lost(), 2);
    }

    /// A.8 in floating point, the reference the integer version must track.
    fn reference_jitter(packets: &[(u32, u32)]) -> f64 {
        let mut j = 0.0f64;
        let mut last: Option<i64> = None;
        for &(ts, arrival) in packets {
            let transit = i64::from(arrival) - i64::from(ts);
            if let Some(prev) = last {
                let d = (transit - prev).abs() as f64;
                j += (d - j) / 16.0;
            }
            last = Some(transit);
        }
        j
    }

    #[test]
    fn jitter_follows_rfc3550_a8() {
        // 20 ms packets (160 ticks) arriving with a repeating 0/+40/-24/+8 tick wobble.
        let wobble = [0i64, 40, -24, 8];
        let packets: Vec<(u32, u32)> = (0..500u32)
            .map(|i| {
                let ts = 1000 + i * 160;
                let arrival = 50_000 + i64::from(i) * 160 + wobble[i as usize % 4];
                (ts, arrival as u32)
            })
            .collect();
        let mut r = Receiver::default();
        for (i, &(ts, arrival)) in packets.iter().enumerate() {
            r.update(9, i as u16, ts, arrival, true);
        }
        let expected = reference_jitter(&packets);
        assert!(expected > 20.0, "{expected}");
        assert!(
            (f64::from(r.jitter()) - expected).abs() <= 1.0,
            "{} vs {expected}",
            r.jitter()
        );
    }

    #[test]
    fn steady_arrival_has_no_jitter_and_events_are_ignored() {
        let mut r = Receiver::default();
        for i in 0..100u32 {
            r.update(9, i as u16, i * 160, 7 + i * 160, true);
        }
        assert_eq!(r.jitter(), 0);
        // An RFC 4733 event repeats its timestamp while time passes: not jitter.
        for i in 100..110u32 {
            r.update(9, i as u16, 16_000, 7 + i * 160, false);
        }
        assert_eq!(r.jitter(), 0);
        assert_eq!(
            StreamStats {
                jitter: 80,
                ..Default::default()
            }
            .jitter_duration(),
            Duration::from_millis(10)
        );
    }
}
