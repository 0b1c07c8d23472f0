//! RFC 4733 telephone-event receiver: turns the RTP packets of the negotiated
//! telephone-event payload type into one [`DtmfEvent`] per key press.
//!
//! An event is identified by its RTP timestamp (§2.5.1.2: all packets of one event carry the
//! timestamp of its start). The digit is reported at the first packet seen of the event — the
//! start packet normally, any later one when the start was lost — so barge-in reacts without
//! waiting for the end; continuation packets, the three copies of the end packet and late
//! reordered packets of an event already reported are absorbed. Segments of a long event
//! (§2.5.1.3, a key held past the 16-bit duration) continue the same press.

use std::time::{Duration, Instant};

use super::{Digit, DtmfEvent, DtmfSource};
use crate::media::rtp::parse_rtp;

/// How many recent events are remembered to absorb their retransmissions and late packets.
const REMEMBERED: usize = 8;
/// A packet older (by RTP timestamp) than the newest event is dropped as a late leftover
/// when it comes within this time of the newest event's last packet; after that quiet time
/// any timestamp starts a new event (the sender may have restarted its timestamps).
const REORDER_WINDOW: Duration = Duration::from_secs(2);
/// Largest event duration field (§2.5.1.3); an event held longer is sent in segments.
const SEGMENT_UNITS: u32 = 0xFFFF;
/// Slack on the next segment's timestamp (one packet at 100 ms and 8 kHz).
const SEGMENT_SLACK: u32 = 800;

/// What is remembered of one event.
#[derive(Debug, Clone, Copy)]
struct Seen {
    timestamp: u32,
    code: u8,
    ended: bool,
    longest: u16,
    last: Instant,
}

/// RFC 4733 receiver for one RTP stream; feed it the stream's telephone-event packets.
#[derive(Debug, Clone)]
pub struct TelephoneEventDetector {
    payload_type: u8,
    clock_rate: u32,
    /// Recent events, oldest first; the last one is the newest.
    recent: Vec<Seen>,
}

impl TelephoneEventDetector {
    /// A receiver for `telephone-event/8000` on `payload_type`.
    pub fn new(payload_type: u8) -> TelephoneEventDetector {
        TelephoneEventDetector::with_clock_rate(payload_type, 8000)
    }

    /// A receiver for a telephone-event payload type with another RTP clock rate
    /// (`telephone-event/16000` alongside a wideband codec); 0 is taken as 8000.
    pub fn with_clock_rate(payload_type: u8, clock_rate: u32) -> TelephoneEventDetector {
        TelephoneEventDetector {
            payload_type,
            clock_rate: if clock_rate == 0 { 8000 } else { clock_rate },
            recent: Vec::with_capacity(REMEMBERED),
        }
    }

    /// The payload type this receiver takes.
    pub fn payload_type(&self) -> u8 {
        self.payload_type
    }

    /// Takes a whole RTP packet: parses the header and passes the payload to
    /// [`on_packet`](Self::on_packet) when the payload type is this receiver's; anything
    /// else (other payload types, malformed packets) gives `None`.
    pub fn on_rtp(&mut self, now: Instant, packet: &[u8]) -> Option<DtmfEvent> {
        let header = parse_rtp(packet)?;
        if header.pt != self.payload_type {
            return None;
        }
        let marker = packet.get(1).is_some_and(|b| b & 0x80 != 0);
        let payload = packet.get(header.payload_start..header.payload_end)?;
        self.on_packet(now, header.timestamp, marker, payload)
    }

    /// Takes one telephone-event payload (§2.3: event, E|R|volume, duration) with its RTP
    /// timestamp and marker bit; returns the digit the first time an event is seen.
    /// Payloads shorter than 4 bytes and events above 15 (not DTMF) are ignored.
    pub fn on_packet(
        &mut self,
        now: Instant,
        rtp_timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Option<DtmfEvent> {
        let [code, flags, d0, d1, ..] = *payload else {
            return None;
        };
        let digit = Digit::from_event(code)?;
        let ended = flags & 0x80 != 0;
        let duration = u16::from_be_bytes([d0, d1]);

        if let Some(seen) = self
            .recent
            .iter_mut()
            .find(|s| s.timestamp == rtp_timestamp && s.code == code)
        {
            seen.ended |= ended;
            seen.longest = seen.longest.max(duration);
            seen.last = now;
            return None;
        }

        let mut continues_press = false;
        if let Some(newest) = self.recent.last() {
            let ahead = rtp_timestamp.wrapping_sub(newest.timestamp);
            let recent = now.saturating_duration_since(newest.last) < REORDER_WINDOW;
            if recent && ahead > u32::MAX / 2 {
                // Older than the newest event: a leftover of an event that is over;
                // reporting it now would misorder the digits.
                return None;
            }
            continues_press = recent
                && !marker
                && newest.code == code
                && !newest.ended
                && u32::from(newest.longest) + SEGMENT_SLACK >= SEGMENT_UNITS
                && ahead.abs_diff(SEGMENT_UNITS) <= SEGMENT_SLACK;
        }

        if self.recent.len() == REMEMBERED {
            self.recent.remove(0);
        }
        self.recent.push(Seen {
            timestamp: rtp_timestamp,
            code,
            ended,
            longest: duration,
            last: now,
        });
        if continues_press {
            return None;
        }
        let duration_ms = u64::from(duration) * 1000 / u64::from(self.clock_rate);
        Some(DtmfEvent {
            digit,
            at: now,
            duration_ms: u32::try_from(duration_ms).unwrap_or(u32::MAX),
            source: DtmfSource::Rfc4733,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtp::build_rtp;
    use std::path::Path;

    /// Where Debian's `sip-tester` package installs SIPp's RFC 2833 sample captures.
    const PCAP_DIR: &str = "/usr/share/sip-tester";

    /// One RTP packet of a capture: its capture time offset and bytes.
    struct Captured {
        offset: Duration,
        rtp: Vec<u8>,
    }

    /// Reads a classic pcap (either byte order, µs or ns stamps) of Ethernet (linktype 1)
    /// or Linux cooked (linktype 113) frames and returns the UDP payloads of IPv4 packets.
    fn read_pcap_udp(bytes: &[u8]) -> Vec<Captured> {
        let magic = u32::from_le_bytes(bytes[0..4].try_into().unwrap());
        let (le, nanos) = match magic {
            0xa1b2_c3d4 => (true, false),
            0xd4c3_b2a1 => (false, false),
            0xa1b2_3c4d => (true, true),
            0x4d3c_b2a1 => (false, true),
            other => panic!("not a classic pcap: magic {other:#x}"),
        };
        let u32_at = |at: usize| {
            let b: [u8; 4] = bytes[at..at + 4].try_into().unwrap();
            if le {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            }
        };
        let linktype = u32_at(20);
        let link_header = match linktype {
            1 => 14,
            113 => 16,
            other => panic!("unsupported link type {other}"),
        };
        let mut out = Vec::new();
        let mut first = None;
        let mut at = 24;
        while at + 16 <= bytes.len() {
            let (secs, frac, incl) = (u32_at(at), u32_at(at + 4), u32_at(at + 8) as usize);
            let frame = &bytes[at + 16..at + 16 + incl];
            at += 16 + incl;
            let stamp = Duration::new(u64::from(secs), if nanos { frac } else { frac * 1000 });
            let first = *first.get_or_insert(stamp);
            let ethertype = u16::from_be_bytes([frame[link_header - 2], frame[link_header - 1]]);
            if ethertype != 0x0800 {
                continue;
            }
            let ip = &frame[link_header..];
            let ihl = usize::from(ip[0] & 0x0F) * 4;
            if ip[9] != 17 {
                continue;
            }
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            let udp = &ip[ihl..total];
            out.push(Captured {
                offset: stamp - first,
                rtp: udp[8..].to_vec(),
            });
        }
        out
    }

    /// The digits a capture yields, played at its capture times.
    fn digits_of_pcap(name: &str) -> Option<(String, usize)> {
        let path = Path::new(PCAP_DIR).join(name);
        let Ok(bytes) = std::fs::read(&path) else {
            eprintln!(
                "skipping {}: not installed (apt-get install sip-tester)",
                path.display()
            );
            return None;
        };
        let packets = read_pcap_udp(&bytes);
        let start = Instant::now();
        let mut detector = TelephoneEventDetector::new(101);
        let mut digits = String::new();
        for p in &packets {
            if let Some(event) = detector.on_rtp(start + p.offset, &p.rtp) {
                assert_eq!(event.source, DtmfSource::Rfc4733);
                assert_eq!(
                    event.at,
                    start + packets[0].offset,
                    "reported at the first packet"
                );
                digits.push(event.digit.as_char());
            }
        }
        Some((digits, packets.len()))
    }

    #[test]
    fn sipp_captures_yield_their_digit_once() {
        let files = [
            ("dtmf_2833_0.pcap", "0"),
            ("dtmf_2833_1.pcap", "1"),
            ("dtmf_2833_2.pcap", "2"),
            ("dtmf_2833_3.pcap", "3"),
            ("dtmf_2833_4.pcap", "4"),
            ("dtmf_2833_5.pcap", "5"),
            ("dtmf_2833_6.pcap", "6"),
            ("dtmf_2833_7.pcap", "7"),
            ("dtmf_2833_8.pcap", "8"),
            ("dtmf_2833_9.pcap", "9"),
            ("dtmf_2833_star.pcap", "*"),
            ("dtmf_2833_pound.pcap", "#"),
        ];
        for (name, want) in files {
            let Some((digits, packets)) = digits_of_pcap(name) else {
                continue;
            };
            // Each capture: a marker start packet, 6 continuations, the end packet 3 times.
            assert_eq!(packets, 10, "{name}");
            assert_eq!(digits, want, "{name}");
        }
    }

    #[test]
    fn sipp_captures_played_back_to_back_give_the_sequence() {
        let names = [
            // In the order of their RTP timestamps, as one stream would carry them.
            "dtmf_2833_1.pcap",
            "dtmf_2833_0.pcap",
            "dtmf_2833_2.pcap",
            "dtmf_2833_3.pcap",
            "dtmf_2833_star.pcap",
            "dtmf_2833_pound.pcap",
        ];
        let mut packets = Vec::new();
        for name in names {
            let Ok(bytes) = std::fs::read(Path::new(PCAP_DIR).join(name)) else {
                eprintln!("skipping: {PCAP_DIR}/{name} not installed");
                return;
            };
            packets.extend(read_pcap_udp(&bytes));
        }
        let start = Instant::now();
        let mut detector = TelephoneEventDetector::new(101);
        let digits: String = packets
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                detector.on_rtp(start + Duration::from_millis(20 * i as u64), &p.rtp)
            })
            .map(|e| e.digit.as_char())
            .collect();
        assert_eq!(digits, "1023*#");
    }

    /// A telephone-event payload.
    fn event(code: u8, end: bool, duration: u16) -> [u8; 4] {
        let d = duration.to_be_bytes();
        [code, if end { 0x8A } else { 0x0A }, d[0], d[1]]
    }

    /// Feeds `(timestamp, marker, payload)` packets 20 ms apart; returns the digits.
    fn run(detector: &mut TelephoneEventDetector, packets: &[(u32, bool, [u8; 4])]) -> String {
        let start = Instant::now();
        packets
            .iter()
            .enumerate()
            .filter_map(|(i, (ts, m, p))| {
                detector.on_packet(start + Duration::from_millis(20 * i as u64), *ts, *m, p)
            })
            .map(|e| e.digit.as_char())
            .collect()
    }

    /// The packets of one press: start, continuations every 160 units, the end 3 times.
    fn press(ts: u32, code: u8, steps: u16) -> Vec<(u32, bool, [u8; 4])> {
        let mut v = vec![(ts, true, event(code, false, 0))];
        v.extend((1..steps).map(|i| (ts, false, event(code, false, i * 160))));
        v.extend((0..3).map(|_| (ts, false, event(code, true, steps * 160))));
        v
    }

    #[test]
    fn retransmitted_end_packets_give_one_digit() {
        let mut d = TelephoneEventDetector::new(101);
        let packets = vec![
            (1000, true, event(5, false, 0)),
            (1000, false, event(5, true, 800)),
            (1000, false, event(5, true, 800)),
            (1000, false, event(5, true, 800)),
        ];
        assert_eq!(run(&mut d, &packets), "5");
    }

    #[test]
    fn long_press_gives_one_digit() {
        let mut d = TelephoneEventDetector::new(101);
        assert_eq!(run(&mut d, &press(5000, 9, 200)), "9");
    }

    #[test]
    fn long_press_past_the_duration_field_is_one_press() {
        // §2.5.1.3: a key held past 0xFFFF units continues in a segment with a new timestamp.
        let mut d = TelephoneEventDetector::new(101);
        let mut packets = vec![(10, true, event(4, false, 0))];
        packets.extend((1..=409).map(|i| (10, false, event(4, false, i * 160))));
        packets.push((10, false, event(4, false, 0xFFFF)));
        packets.extend((1..=20).map(|i| (10 + 0xFFFF, false, event(4, false, i * 160))));
        packets.extend((0..3).map(|_| (10 + 0xFFFF, false, event(4, true, 3200))));
        assert_eq!(run(&mut d, &packets), "4");
    }

    #[test]
    fn same_digit_twice_with_new_timestamps_gives_two() {
        let mut d = TelephoneEventDetector::new(101);
        let mut packets = press(1000, 1, 5);
        packets.extend(press(3000, 1, 5));
        packets.extend(press(5000, 11, 5));
        assert_eq!(run(&mut d, &packets), "11#");
    }

    #[test]
    fn end_packet_whose_start_was_lost_gives_the_digit_once() {
        let mut d = TelephoneEventDetector::new(101);
        let packets = vec![
            (800, false, event(7, true, 640)),
            (800, false, event(7, true, 640)),
            (800, false, event(7, true, 640)),
        ];
        assert_eq!(run(&mut d, &packets), "7");
    }

    #[test]
    fn reordered_packets_do_not_repeat_or_misorder() {
        let mut d = TelephoneEventDetector::new(101);
        let packets = vec![
            // Event 2: a continuation overtakes the start; an end copy overtakes the rest.
            (1000, false, event(2, false, 160)),
            (1000, true, event(2, false, 0)),
            (1000, false, event(2, true, 480)),
            (1000, false, event(2, false, 320)),
            (1000, false, event(2, true, 480)),
            // Event 3 starts, then a straggler of event 2 and a straggler of an event that
            // was never seen (timestamp older than 3's): neither is reported.
            (2000, true, event(3, false, 0)),
            (1000, false, event(2, true, 480)),
            (1500, false, event(6, true, 480)),
            (2000, false, event(3, true, 480)),
        ];
        assert_eq!(run(&mut d, &packets), "23");
    }

    #[test]
    fn timestamp_wraparound_is_a_new_event() {
        let mut d = TelephoneEventDetector::new(101);
        let mut packets = press(u32::MAX - 100, 8, 3);
        packets.extend(press(400, 8, 3));
        assert_eq!(run(&mut d, &packets), "88");
    }

    #[test]
    fn restarted_timestamps_after_a_quiet_spell_are_new_events() {
        let mut d = TelephoneEventDetector::new(101);
        let start = Instant::now();
        let e = d.on_packet(start, 90_000, true, &event(1, true, 800));
        assert_eq!(e.map(|e| e.digit), Some(Digit::Num(1)));
        let later = start + Duration::from_secs(5);
        let e = d.on_packet(later, 1_000, true, &event(2, false, 0));
        assert_eq!(e.map(|e| e.digit), Some(Digit::Num(2)));
    }

    #[test]
    fn non_dtmf_events_and_malformed_payloads_are_ignored() {
        let mut d = TelephoneEventDetector::new(101);
        let now = Instant::now();
        assert_eq!(d.on_packet(now, 1, true, &event(16, false, 0)), None);
        assert_eq!(d.on_packet(now, 2, true, &event(255, true, 160)), None);
        assert_eq!(d.on_packet(now, 3, true, &[]), None);
        assert_eq!(d.on_packet(now, 4, true, &[5, 0x0A, 0]), None);
        // Nothing above blocked a real event.
        let e = d.on_packet(now, 5, true, &[15, 0x0A, 0x01, 0x40, 0xFF]);
        assert_eq!(
            e.map(|e| (e.digit, e.duration_ms)),
            Some((Digit::Letter('D'), 40))
        );
    }

    #[test]
    fn on_rtp_filters_payload_type_and_reads_the_header() {
        let mut d = TelephoneEventDetector::new(101);
        let now = Instant::now();
        let audio = build_rtp(0, 1, 160, 7, &[0xFF; 160]);
        assert_eq!(d.on_rtp(now, &audio), None);
        assert_eq!(d.on_rtp(now, &[0x80, 101, 0]), None);
        let mut dtmf = build_rtp(101, 2, 320, 7, &event(10, false, 0));
        dtmf[1] |= 0x80;
        let e = d.on_rtp(now, &dtmf).map(|e| e.digit);
        assert_eq!(e, Some(Digit::Star));
        assert_eq!(d.on_rtp(now, &dtmf), None);
    }
}
