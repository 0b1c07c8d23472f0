//! Behaviour of the media controller and relay together: SDP in, packets through, with a
//! fake clock. (The SDP text itself is covered by the golden files in `tests/golden/sdp/`.)

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::relay::{DropReason, Verdict, RELATCH_AFTER};
use super::rtp::{build_rtp, parse_rtp};
use super::*;
use crate::acl::Egress;

const CALLER: &str = "127.0.0.10";
const CALLEE: &str = "127.0.0.20";

fn sdp(ip: &str, port: u16, fmts: &str, extra: &str) -> Vec<u8> {
    let mut s = format!(
        "v=0\r\no=x 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {fmts}\r\n"
    );
    for pt in fmts.split(' ') {
        let enc = match pt {
            "0" => "PCMU/8000",
            "8" => "PCMA/8000",
            _ => "telephone-event/8000",
        };
        s.push_str(&format!("a=rtpmap:{pt} {enc}\r\n"));
    }
    s.push_str(extra);
    s.into_bytes()
}

fn addr(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

struct Fixture {
    mc: MediaController,
    id: MediaId,
    t0: Instant,
}

fn setup(cfg: MediaConfig, caller_fmts: &str, callee_fmts: &str) -> Fixture {
    setup_with(
        cfg,
        &sdp(CALLER, 4000, caller_fmts, ""),
        &sdp(CALLEE, 5000, callee_fmts, ""),
    )
}

fn setup_with(cfg: MediaConfig, offer: &[u8], answer: &[u8]) -> Fixture {
    let egress = Egress::new(vec!["127.0.0.0/8".parse().unwrap()]);
    let mut mc = MediaController::with_seed(cfg, egress, 3);
    let t0 = Instant::now();
    let id = mc.create(t0).unwrap();
    mc.offer(t0, id, Side::Caller, offer).unwrap();
    mc.answer(t0, id, Side::Callee, answer).unwrap();
    Fixture { mc, id, t0 }
}

impl Fixture {
    fn rtp(&mut self, at: Duration, from: Side, src: SocketAddr, pkt: &mut [u8]) -> Verdict {
        let now = self.t0 + at;
        self.mc
            .relay_mut(self.id)
            .unwrap()
            .rtp_in(now, from, src, pkt)
    }

    fn send(&mut self, from: Side, src: SocketAddr, pt: u8, seq: u16) -> Verdict {
        let mut p = build_rtp(pt, seq, u32::from(seq) * 160, 77, &[0xD5; 160]);
        self.rtp(
            Duration::from_millis(20 * u64::from(seq)),
            from,
            src,
            &mut p,
        )
    }

    fn stats(&self, side: Side) -> StreamStats {
        *self.mc.stats(self.id).unwrap().side(side)
    }
}

#[test]
fn strict_latching_takes_the_advertised_ip_on_any_port_and_nobody_else() {
    let mut f = setup(MediaConfig::default(), "8", "8");
    // Before the caller has sent anything, packets to it go to its SDP address.
    assert_eq!(
        f.send(Side::Callee, addr(CALLEE, 5000), 8, 1),
        Verdict::Forward(addr(CALLER, 4000))
    );
    // The caller sends from another port of its advertised IP (NAT port rewrite): latched.
    assert_eq!(
        f.send(Side::Caller, addr(CALLER, 4444), 8, 1),
        Verdict::Forward(addr(CALLEE, 5000))
    );
    // Packets to the caller now go where it really sends from.
    assert_eq!(
        f.send(Side::Callee, addr(CALLEE, 5000), 8, 2),
        Verdict::Forward(addr(CALLER, 4444))
    );
    // Another IP cannot inject into the stream or take it over.
    assert_eq!(
        f.send(Side::Caller, addr("127.0.0.66", 4000), 8, 2),
        Verdict::Drop(DropReason::Source)
    );
    assert_eq!(f.stats(Side::Caller).dropped.source, 1);
}

#[test]
fn strict_latching_refuses_a_first_packet_from_a_foreign_ip() {
    let mut f = setup(MediaConfig::default(), "8", "8");
    assert_eq!(
        f.send(Side::Caller, addr("127.0.0.66", 4000), 8, 1),
        Verdict::Drop(DropReason::Source)
    );
    assert_eq!(f.stats(Side::Caller).packets, 0);
}

#[test]
fn any_latching_follows_a_natted_caller() {
    let cfg = MediaConfig {
        latching: Latching::Any,
        ..MediaConfig::default()
    };
    let mut f = setup(cfg, "8", "8");
    let natted = addr("127.0.0.99", 31000);
    assert!(matches!(
        f.send(Side::Caller, natted, 8, 1),
        Verdict::Forward(_)
    ));
    assert_eq!(
        f.send(Side::Callee, addr(CALLEE, 5000), 8, 1),
        Verdict::Forward(natted)
    );
    // Still no takeover while the latched source is live.
    assert_eq!(
        f.send(Side::Caller, addr("127.0.0.98", 1), 8, 2),
        Verdict::Drop(DropReason::Source)
    );
}

#[test]
fn a_silent_latch_can_move_after_the_relatch_delay() {
    let mut f = setup(MediaConfig::default(), "8", "8");
    let old = addr(CALLER, 4000);
    let new = addr(CALLER, 4002);
    let mut p = build_rtp(8, 1, 0, 1, &[0; 160]);
    assert!(matches!(
        f.rtp(Duration::ZERO, Side::Caller, old, &mut p),
        Verdict::Forward(_)
    ));
    let soon = RELATCH_AFTER / 2;
    assert_eq!(
        f.rtp(soon, Side::Caller, new, &mut p),
        Verdict::Drop(DropReason::Source)
    );
    assert!(matches!(
        f.rtp(RELATCH_AFTER, Side::Caller, new, &mut p),
        Verdict::Forward(_)
    ));
    assert_eq!(
        f.send(Side::Callee, addr(CALLEE, 5000), 8, 9),
        Verdict::Forward(new)
    );
}

#[test]
fn payload_types_are_mapped_between_the_legs_numbering() {
    let offer = sdp(CALLER, 4000, "0 101", "a=fmtp:101 0-16\r\n");
    let answer = sdp(CALLEE, 5000, "0 96", "a=fmtp:96 0-15\r\n");
    let mut f = setup_with(MediaConfig::default(), &offer, &answer);
    let mut ev = build_rtp(101, 1, 0, 5, &[1, 0x80, 0, 160]);
    ev[1] |= 0x80; // marker: start of the event
    assert!(matches!(
        f.rtp(Duration::ZERO, Side::Caller, addr(CALLER, 4000), &mut ev),
        Verdict::Forward(_)
    ));
    assert_eq!(ev[1], 0x80 | 96, "event PT 101 → 96, marker kept");
    let mut back = build_rtp(96, 1, 0, 6, &[1, 0x80, 0, 160]);
    f.rtp(Duration::ZERO, Side::Callee, addr(CALLEE, 5000), &mut back);
    assert_eq!(parse_rtp(&back).unwrap().pt, 101);
    assert_eq!(f.stats(Side::Caller).events, 1);
    // A payload type nobody negotiated is dropped.
    assert_eq!(
        f.send(Side::Caller, addr(CALLER, 4000), 18, 2),
        Verdict::Drop(DropReason::PayloadType)
    );
}

#[test]
fn different_laws_are_transcoded_both_ways() {
    let mut f = setup(MediaConfig::default(), "0", "8");
    let payload: Vec<u8> = (0..=255u8).collect();
    let mut p = build_rtp(0, 1, 0, 5, &payload);
    assert!(matches!(
        f.rtp(Duration::ZERO, Side::Caller, addr(CALLER, 4000), &mut p),
        Verdict::Forward(_)
    ));
    let h = parse_rtp(&p).unwrap();
    assert_eq!(h.pt, 8);
    let expect: Vec<u8> = payload
        .iter()
        .map(|&u| g711::ULAW_TO_ALAW[usize::from(u)])
        .collect();
    assert_eq!(&p[h.payload_start..], &expect[..]);
    let mut q = build_rtp(8, 1, 0, 6, &expect);
    f.rtp(Duration::ZERO, Side::Callee, addr(CALLEE, 5000), &mut q);
    let h = parse_rtp(&q).unwrap();
    assert_eq!(h.pt, 0);
    for (i, (&back, &orig)) in q[h.payload_start..].iter().zip(&payload).enumerate() {
        let (b, o) = (g711::ulaw_to_linear(back), g711::ulaw_to_linear(orig));
        // Within one A-law quantisation step (16 near zero, 1/16 of the value above).
        let step = 16.max(i32::from(o).abs() / 16);
        assert!(
            (i32::from(b) - i32::from(o)).abs() <= step,
            "{i}: {o} came back {b}"
        );
    }
    assert_eq!(f.stats(Side::Caller).transcoded, 1);
    assert_eq!(f.stats(Side::Callee).transcoded, 1);
}

#[test]
fn shared_codec_is_not_transcoded() {
    let mut f = setup(MediaConfig::default(), "0 8", "8 0");
    let mut p = build_rtp(8, 1, 0, 5, &[0x11; 160]);
    f.rtp(Duration::ZERO, Side::Caller, addr(CALLER, 4000), &mut p);
    assert_eq!(&p[12..], &[0x11; 160][..]);
    assert_eq!(f.stats(Side::Caller).transcoded, 0);
}

#[test]
fn hold_stops_media_toward_the_holding_side() {
    let offer = sdp(CALLER, 4000, "8", "a=sendonly\r\n");
    let answer = sdp(CALLEE, 5000, "8", "a=recvonly\r\n");
    let mut f = setup_with(MediaConfig::default(), &offer, &answer);
    // Music on hold flows caller → callee; the held callee sends nothing back.
    assert!(matches!(
        f.send(Side::Caller, addr(CALLER, 4000), 8, 1),
        Verdict::Forward(_)
    ));
    assert_eq!(
        f.send(Side::Callee, addr(CALLEE, 5000), 8, 1),
        Verdict::Drop(DropReason::Direction)
    );
}

#[test]
fn rtcp_is_relayed_to_the_advertised_rtcp_port() {
    let offer = sdp(CALLER, 4000, "8", "a=rtcp:4009\r\n");
    let mut f = setup_with(MediaConfig::default(), &offer, &sdp(CALLEE, 5000, "8", ""));
    let rr = [0x80u8, 201, 0, 1, 0, 0, 0, 1];
    let relay = f.mc.relay_mut(f.id).unwrap();
    assert_eq!(
        relay.rtcp_in(f.t0, Side::Callee, addr(CALLEE, 5001), &rr),
        Verdict::Forward(addr(CALLER, 4009))
    );
    assert_eq!(
        relay.rtcp_in(f.t0, Side::Caller, addr(CALLER, 4009), &rr),
        Verdict::Forward(addr(CALLEE, 5001))
    );
    assert_eq!(
        relay.rtcp_in(f.t0, Side::Caller, addr(CALLER, 4009), &[0x80, 8, 0, 0]),
        Verdict::Drop(DropReason::Malformed)
    );
    assert_eq!(f.stats(Side::Caller).rtcp_packets, 1);
}

#[test]
fn egress_refuses_a_destination_outside_the_allow_list() {
    let answer = sdp("192.0.2.7", 5000, "8", "");
    let mut f = setup_with(MediaConfig::default(), &sdp(CALLER, 4000, "8", ""), &answer);
    assert_eq!(
        f.send(Side::Caller, addr(CALLER, 4000), 8, 1),
        Verdict::Drop(DropReason::Egress)
    );
    // Not even a latched source gets packets if it is outside the list.
    let cfg = MediaConfig {
        latching: Latching::Any,
        ..MediaConfig::default()
    };
    let mut f = setup(cfg, "8", "8");
    let outside = addr("192.0.2.9", 1);
    assert_eq!(
        f.send(Side::Callee, outside, 8, 1),
        Verdict::Forward(addr(CALLER, 4000))
    );
    assert_eq!(
        f.send(Side::Caller, addr(CALLER, 4000), 8, 2),
        Verdict::Drop(DropReason::Egress)
    );
    assert_eq!(f.stats(Side::Caller).dropped.egress, 1);
}

#[test]
fn stats_count_packets_bytes_loss_and_jitter() {
    let mut f = setup(MediaConfig::default(), "8", "8");
    for seq in 1..=50u16 {
        if seq % 10 != 0 {
            f.send(Side::Caller, addr(CALLER, 4000), 8, seq);
        }
    }
    let s = f.stats(Side::Caller);
    assert_eq!(s.packets, 45);
    assert_eq!(s.bytes, 45 * 172);
    assert_eq!(
        s.lost, 4,
        "10, 20, 30, 40 missing (50 is past the highest seen)"
    );
    assert_eq!(s.jitter, 0, "packets arrive exactly every 20 ms");
    assert_eq!(s.relayed, 45);
    assert_eq!(f.stats(Side::Callee), StreamStats::default());
}

#[test]
fn media_timeout_fires_once_per_side_with_the_reason() {
    let mut f = setup(MediaConfig::default(), "8", "8");
    let timeout = MediaConfig::default().timeout;
    assert_eq!(f.mc.poll_timeout(), Some(f.t0 + timeout));
    // The caller keeps talking; the callee is silent.
    for s in 1..=40u64 {
        let mut p = build_rtp(8, s as u16, 0, 1, &[0; 160]);
        f.rtp(
            Duration::from_secs(s),
            Side::Caller,
            addr(CALLER, 4000),
            &mut p,
        );
    }
    f.mc.handle_timeout(f.t0 + timeout - Duration::from_millis(1));
    assert_eq!(f.mc.poll_event(), None);
    f.mc.handle_timeout(f.t0 + timeout);
    assert_eq!(
        f.mc.poll_event(),
        Some(MediaEvent::Timeout {
            id: f.id,
            side: Side::Callee,
            reason: TimeoutReason::NoRtp { idle: timeout },
        })
    );
    f.mc.handle_timeout(f.t0 + timeout * 2);
    assert_eq!(f.mc.poll_event(), None, "reported once");
    assert_eq!(
        f.mc.poll_timeout(),
        Some(f.t0 + Duration::from_secs(40) + timeout)
    );
}

#[test]
fn hold_uses_the_longer_timeout() {
    let offer = sdp(CALLER, 4000, "8", "a=sendonly\r\n");
    let answer = sdp(CALLEE, 5000, "8", "a=recvonly\r\n");
    let mut f = setup_with(MediaConfig::default(), &offer, &answer);
    let cfg = MediaConfig::default();
    f.mc.handle_timeout(f.t0 + cfg.timeout * 2);
    assert_eq!(f.mc.poll_event(), None);
    f.mc.handle_timeout(f.t0 + cfg.hold_timeout);
    let Some(MediaEvent::Timeout { reason, .. }) = f.mc.poll_event() else {
        panic!("no timeout on hold");
    };
    assert_eq!(
        reason,
        TimeoutReason::NoRtpOnHold {
            idle: cfg.hold_timeout
        }
    );
    assert_eq!(reason.to_string(), "no RTP for 3600 s while on hold");
}

#[test]
fn a_reoffer_holds_then_resumes_and_restarts_the_timers() {
    let mut f = setup(MediaConfig::default(), "8", "8");
    let cfg = MediaConfig::default();
    let (id, t1, t2) = (
        f.id,
        f.t0 + Duration::from_secs(20),
        f.t0 + Duration::from_secs(50),
    );
    // The callee holds the caller...
    f.mc.offer(
        t1,
        id,
        Side::Callee,
        &sdp(CALLEE, 5000, "8", "a=sendonly\r\n"),
    )
    .unwrap();
    f.mc.answer(
        t1,
        id,
        Side::Caller,
        &sdp(CALLER, 4000, "8", "a=recvonly\r\n"),
    )
    .unwrap();
    assert_eq!(f.mc.poll_timeout(), Some(t1 + cfg.hold_timeout));
    assert_eq!(
        f.send(Side::Caller, addr(CALLER, 4000), 8, 1),
        Verdict::Drop(DropReason::Direction)
    );
    // ...and resumes from a new port.
    f.mc.offer(
        t2,
        id,
        Side::Callee,
        &sdp(CALLEE, 5002, "8", "a=sendrecv\r\n"),
    )
    .unwrap();
    f.mc.answer(
        t2,
        id,
        Side::Caller,
        &sdp(CALLER, 4000, "8", "a=sendrecv\r\n"),
    )
    .unwrap();
    assert_eq!(f.mc.poll_timeout(), Some(t2 + cfg.timeout));
    assert_eq!(
        f.send(Side::Caller, addr(CALLER, 4000), 8, 2),
        Verdict::Forward(addr(CALLEE, 5002))
    );
}

#[test]
fn no_timeout_before_an_answer_or_after_audio_is_rejected() {
    let egress = Egress::new(vec!["127.0.0.0/8".parse().unwrap()]);
    let mut mc = MediaController::new(MediaConfig::default(), egress);
    let t0 = Instant::now();
    let id = mc.create(t0).unwrap();
    assert_eq!(mc.poll_timeout(), None);
    mc.offer(t0, id, Side::Caller, &sdp(CALLER, 4000, "8", ""))
        .unwrap();
    let rejected = String::from_utf8(sdp(CALLEE, 0, "8", "")).unwrap();
    mc.answer(t0, id, Side::Callee, rejected.as_bytes())
        .unwrap();
    assert_eq!(mc.poll_timeout(), None);
}

#[test]
fn every_port_comes_back_however_the_call_ended() {
    let cfg = MediaConfig {
        port_min: 30000,
        port_max: 30099,
        ..MediaConfig::default()
    };
    let egress = Egress::new(vec!["127.0.0.0/8".parse().unwrap()]);
    let mut mc = MediaController::new(cfg, egress);
    let t0 = Instant::now();
    let mut live = Vec::new();
    for i in 0..5000u32 {
        let id = match mc.create(t0) {
            Ok(id) => id,
            Err(e) => {
                assert_eq!(e, MediaError::PortsExhausted);
                assert_eq!(mc.ports_in_use(), 100);
                mc.release(live.remove(0));
                continue;
            }
        };
        match i % 4 {
            0 => {} // released before any SDP (CANCEL)
            1 => {
                let _ = mc.offer(t0, id, Side::Caller, b"garbage");
            }
            2 => {
                mc.offer(t0, id, Side::Caller, &sdp(CALLER, 4000, "8", ""))
                    .unwrap();
            }
            _ => {
                mc.offer(t0, id, Side::Caller, &sdp(CALLER, 4000, "8", ""))
                    .unwrap();
                mc.answer(t0, id, Side::Callee, &sdp(CALLEE, 5000, "0", ""))
                    .unwrap();
            }
        }
        if i % 3 == 0 {
            mc.release(id);
        } else {
            live.push(id);
        }
    }
    for id in live {
        assert!(mc.release_with_stats(id).is_some());
    }
    assert_eq!((mc.active(), mc.ports_in_use()), (0, 0));
    assert_eq!(mc.release_with_stats(MediaId(1)), None);
}

#[test]
fn unknown_sessions_and_answers_without_offers_are_errors() {
    let mut f = setup(MediaConfig::default(), "8", "8");
    let t = f.t0;
    let body = sdp(CALLER, 4000, "8", "");
    assert_eq!(
        f.mc.offer(t, MediaId(999), Side::Caller, &body),
        Err(MediaError::UnknownSession)
    );
    // The offerer cannot answer its own offer.
    assert_eq!(
        f.mc.answer(t, f.id, Side::Caller, &body),
        Err(MediaError::NoPendingOffer)
    );
    // A repeated answer (183 then 200) is accepted against the same offer.
    assert!(f
        .mc
        .answer(t, f.id, Side::Callee, &sdp(CALLEE, 5000, "8", ""))
        .is_ok());
}

/// Byte-level mutations of a real offer and answer, and random datagrams into the relay:
/// every outcome is an error or a result, never a panic (wire input never panics).
#[test]
fn mutated_sdp_and_random_packets_never_panic() {
    use super::pool::splitmix64;
    let offer = sdp(
        CALLER,
        4000,
        "0 8 101",
        "a=fmtp:101 0-16\r\na=rtcp:4001 IN IP4 127.0.0.10\r\n",
    );
    let answer = sdp(CALLEE, 5000, "8 101", "a=ptime:20\r\na=sendrecv\r\n");
    let alphabet = b"0123456789 :/=\r\nabcmotIPN.-";
    let mut rng = 99u64;
    let mut f = setup(MediaConfig::default(), "8", "8");
    let mut ok = 0;
    for round in 0..3000 {
        let mut o = offer.clone();
        let mut a = answer.clone();
        for buf in [&mut o, &mut a] {
            for _ in 0..1 + splitmix64(&mut rng) % 4 {
                let i = (splitmix64(&mut rng) % buf.len() as u64) as usize;
                match splitmix64(&mut rng) % 3 {
                    0 => buf[i] = alphabet[(splitmix64(&mut rng) % alphabet.len() as u64) as usize],
                    1 => {
                        buf.remove(i);
                    }
                    _ => buf.insert(i, splitmix64(&mut rng) as u8),
                }
            }
        }
        let (side, other) = if round % 2 == 0 {
            (Side::Caller, Side::Callee)
        } else {
            (Side::Callee, Side::Caller)
        };
        if f.mc.offer(f.t0, f.id, side, &o).is_ok() && f.mc.answer(f.t0, f.id, other, &a).is_ok() {
            ok += 1;
        }
        let mut pkt: Vec<u8> = (0..splitmix64(&mut rng) % 200)
            .map(|_| splitmix64(&mut rng) as u8)
            .collect();
        if round % 3 == 0 && pkt.len() > 2 {
            pkt[0] = 0x80 | (pkt[0] & 0x3F); // version 2, so the header checks run
        }
        let relay = f.mc.relay_mut(f.id).unwrap();
        let src = addr(if round % 2 == 0 { CALLER } else { CALLEE }, 4000);
        relay.rtp_in(f.t0, side, src, &mut pkt);
        relay.rtcp_in(f.t0, side, src, &pkt);
    }
    // Some mutations land in harmless places, so a good share still negotiates.
    assert!(ok > 100, "only {ok} of 3000 mutated pairs negotiated");
}

/// The caller answered by holdless itself, then joined to a callee: what each side is told
/// and how packets flow afterwards.
mod local_then_joined {
    use super::*;
    use crate::media::sdp::Codec;

    fn local(offer: &[u8]) -> (MediaController, MediaId, Instant, String) {
        let egress = Egress::new(vec!["127.0.0.0/8".parse().unwrap()]);
        let mut mc = MediaController::with_seed(MediaConfig::default(), egress, 3);
        let t0 = Instant::now();
        let id = mc.create(t0).unwrap();
        let answer = mc.answer_locally(t0, id, Side::Caller, offer).unwrap();
        (mc, id, t0, String::from_utf8(answer.to_vec()).unwrap())
    }

    #[test]
    fn local_answer_takes_the_callers_first_law_and_its_event_numbering() {
        let (mc, id, _, answer) = local(&sdp(CALLER, 4000, "8 0 96", ""));
        let port = mc.port(id, Side::Caller).unwrap();
        assert!(
            answer.contains(&format!("m=audio {port} RTP/AVP 8 96\r\n")),
            "{answer}"
        );
        assert!(
            answer.contains("a=rtpmap:96 telephone-event/8000"),
            "{answer}"
        );
        assert!(!answer.contains("PCMU"), "{answer}");
        let local = mc.local_params(id, Side::Caller).unwrap();
        assert_eq!(local.codec, Codec::Pcma);
        assert_eq!((local.audio_pt, local.events_pt), (8, Some(96)));
        assert_eq!(mc.local_params(id, Side::Callee), None);
    }

    #[test]
    fn local_answer_without_events_offers_none() {
        let (mc, id, _, answer) = local(&sdp(CALLER, 4000, "0", ""));
        assert!(!answer.contains("telephone-event"), "{answer}");
        let local = mc.local_params(id, Side::Caller).unwrap();
        assert_eq!((local.codec, local.events_pt), (Codec::Pcmu, None));
    }

    #[test]
    fn local_answer_refuses_an_offer_without_g711() {
        let egress = Egress::new(vec!["127.0.0.0/8".parse().unwrap()]);
        let mut mc = MediaController::with_seed(MediaConfig::default(), egress, 3);
        let t0 = Instant::now();
        let id = mc.create(t0).unwrap();
        let offer = b"v=0\r\no=x 1 1 IN IP4 127.0.0.10\r\ns=-\r\nc=IN IP4 127.0.0.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
        let e = mc.answer_locally(t0, id, Side::Caller, offer).unwrap_err();
        assert_eq!(e.status().0, 488);
        assert_eq!(mc.local_params(id, Side::Caller), None);
    }

    #[test]
    fn onward_offer_carries_the_agreed_law_then_the_answer_joins_both_ways() {
        let (mut mc, id, t0, _) = local(&sdp(CALLER, 4000, "0 8 101", ""));
        let offer = mc.offer_onward(t0, id, Side::Caller).unwrap();
        let offer = String::from_utf8(offer.to_vec()).unwrap();
        let callee_port = mc.port(id, Side::Callee).unwrap();
        // PCMU agreed with the caller; PCMA added because the relay transcodes to it.
        assert!(
            offer.contains(&format!("m=audio {callee_port} RTP/AVP 0 8 101\r\n")),
            "{offer}"
        );
        mc.answer(t0, id, Side::Callee, &sdp(CALLEE, 5000, "8 101", ""))
            .unwrap();
        assert_eq!(
            mc.local_params(id, Side::Caller),
            None,
            "joined: no longer local"
        );
        let relay = mc.relay_mut(id).unwrap();
        // The caller still sends PCMU (what it was told): transcoded to the callee's PCMA.
        let mut p = build_rtp(0, 1, 160, 7, &[0xFF; 160]);
        let v = relay.rtp_in(t0, Side::Caller, addr(CALLER, 4000), &mut p);
        assert_eq!(v, Verdict::Forward(addr(CALLEE, 5000)));
        assert_eq!(parse_rtp(&p).unwrap().pt, 8);
        let mut back = build_rtp(8, 1, 160, 9, &[0xD5; 160]);
        let v = relay.rtp_in(t0, Side::Callee, addr(CALLEE, 5000), &mut back);
        assert_eq!(v, Verdict::Forward(addr(CALLER, 4000)));
        assert_eq!(parse_rtp(&back).unwrap().pt, 0);
    }

    #[test]
    fn a_local_offer_then_its_answer_make_the_side_local_without_a_new_sdp_version() {
        let egress = Egress::new(vec!["127.0.0.0/8".parse().unwrap()]);
        let mut mc = MediaController::with_seed(MediaConfig::default(), egress, 3);
        let t0 = Instant::now();
        let id = mc.create(t0).unwrap();
        let offer =
            String::from_utf8(mc.offer_locally(t0, id, Side::Caller).unwrap().to_vec()).unwrap();
        let port = mc.port(id, Side::Caller).unwrap();
        assert!(
            offer.contains(&format!("m=audio {port} RTP/AVP 0 8 101\r\n")),
            "{offer}"
        );
        assert!(
            offer.contains("a=rtpmap:101 telephone-event/8000"),
            "{offer}"
        );
        mc.accept_local_answer(t0, id, Side::Caller, &sdp(CALLER, 4000, "8 101", ""))
            .unwrap();
        let local = mc.local_params(id, Side::Caller).unwrap();
        assert_eq!(
            (local.codec, local.audio_pt, local.events_pt),
            (Codec::Pcma, 8, Some(101))
        );
        // A later re-offer answered locally is the next version after the one the side saw.
        let again = mc
            .answer_locally(t0, id, Side::Caller, &sdp(CALLER, 4000, "8 101", ""))
            .unwrap();
        let again = String::from_utf8(again.to_vec()).unwrap();
        let version = |s: &str| {
            s.lines()
                .find(|l| l.starts_with("o="))
                .and_then(|l| l.split_whitespace().nth(2))
                .map(str::to_owned)
        };
        assert_eq!(version(&offer).as_deref(), Some("1"));
        assert_eq!(version(&again).as_deref(), Some("2"), "{again}");
        // And the agreed law goes onward.
        let onward =
            String::from_utf8(mc.offer_onward(t0, id, Side::Caller).unwrap().to_vec()).unwrap();
        assert!(onward.contains("RTP/AVP 8 0 101"), "{onward}");
    }

    #[test]
    fn onward_offer_needs_a_local_answer_first() {
        let egress = Egress::new(vec!["127.0.0.0/8".parse().unwrap()]);
        let mut mc = MediaController::with_seed(MediaConfig::default(), egress, 3);
        let t0 = Instant::now();
        let id = mc.create(t0).unwrap();
        assert_eq!(
            mc.offer_onward(t0, id, Side::Caller).unwrap_err(),
            MediaError::NoPendingOffer
        );
    }
}
