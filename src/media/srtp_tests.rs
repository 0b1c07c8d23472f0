//! SRTP (SDES) through the controller and the relay: each side's security negotiated on
//! its own within its policy, packets decrypted from an SRTP side and encrypted toward
//! one, holdless's own media on an SRTP side, and the SRTP contexts carried across a
//! session refresh and from local media to the relay.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::relay::{DropReason, Verdict};
use super::rtp::{build_rtp, parse_rtp};
use super::sdes::{Crypto, Suite};
use super::srtp::{SrtpLeg, SrtpPolicy};
use super::*;
use crate::acl::Egress;
use crate::media::dtmf::Digit;

const CALLER: &str = "127.0.0.10";
const CALLEE: &str = "127.0.0.20";

fn addr(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

/// An offer or answer from `ip:port` with PCMU and telephone-event 101; SRTP with
/// `crypto`'s key when given.
fn sdp(ip: &str, port: u16, crypto: Option<&Crypto>) -> Vec<u8> {
    let proto = if crypto.is_some() {
        "RTP/SAVP"
    } else {
        "RTP/AVP"
    };
    let mut s = format!(
        "v=0\r\no=x 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} {proto} 0 101\r\n\
         a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
    );
    if let Some(c) = crypto {
        s.push_str(&format!("a=crypto:{}\r\n", c.to_value()));
    }
    s.into_bytes()
}

/// The `m=` protocol and the first usable `a=crypto` of an SDP holdless wrote.
fn security(sdp: &[u8]) -> (String, Option<Crypto>) {
    let text = String::from_utf8(sdp.to_vec()).unwrap();
    let proto = text
        .lines()
        .find(|l| l.starts_with("m=audio"))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap()
        .to_owned();
    let crypto = text
        .lines()
        .find_map(|l| l.strip_prefix("a=crypto:"))
        .map(|v| Crypto::parse(v).unwrap());
    (proto, crypto)
}

fn controller() -> (MediaController, MediaId, Instant) {
    let egress = Egress::new(vec!["127.0.0.0/8".parse().unwrap()]);
    let mut mc = MediaController::with_seed(MediaConfig::default(), egress, 3);
    let t0 = Instant::now();
    let id = mc.create(t0).unwrap();
    (mc, id, t0)
}

fn key() -> Crypto {
    Crypto::fresh(1, Suite::AesCm128HmacSha1_80).unwrap()
}

/// Relays `pkt` from `from` at `src` through the call's relay, as the runtime does (a
/// buffer with room for the tag); returns the verdict and what went out.
fn relay(
    mc: &mut MediaController,
    id: MediaId,
    now: Instant,
    from: Side,
    src: SocketAddr,
    pkt: &[u8],
) -> (Verdict, Vec<u8>) {
    let mut slot = [0u8; 2048];
    slot[..pkt.len()].copy_from_slice(pkt);
    let r = mc.relay_mut(id).unwrap();
    let (v, len) = r.packet_in(now, from, false, src, &mut slot, pkt.len());
    (v, slot[..len].to_vec())
}

fn voice(seq: u16, fill: u8) -> Vec<u8> {
    build_rtp(0, seq, u32::from(seq) * 160, 0x5150, &[fill; 160])
}

/// A call from an SRTP caller answered by a plain callee: the controller, the media, the
/// time, the caller's key, holdless's answer key, and the caller's phone (which sends
/// with its key and receives with holdless's).
fn srtp_caller_call() -> (MediaController, MediaId, Instant, Crypto, Crypto, SrtpLeg) {
    let (mut mc, id, t0) = controller();
    let caller_key = key();
    mc.offer(t0, id, Side::Caller, &sdp(CALLER, 4000, Some(&caller_key)))
        .unwrap();
    let answer = mc
        .answer(t0, id, Side::Callee, &sdp(CALLEE, 5000, None))
        .unwrap();
    let ours = security(&answer).1.unwrap();
    let phone = SrtpLeg::new(&ours, &caller_key).unwrap();
    (mc, id, t0, caller_key, ours, phone)
}

#[test]
fn an_srtp_caller_gets_a_fresh_key_and_talks_to_a_plain_callee_both_ways() {
    let (mut mc, id, t0) = controller();
    let caller_key = key();
    let onward = mc
        .offer(t0, id, Side::Caller, &sdp(CALLER, 4000, Some(&caller_key)))
        .unwrap();
    assert_eq!(
        security(&onward),
        ("RTP/AVP".into(), None),
        "the callee stays plain"
    );
    let answer = mc
        .answer(t0, id, Side::Callee, &sdp(CALLEE, 5000, None))
        .unwrap();
    let (proto, ours) = security(&answer);
    assert_eq!(proto, "RTP/SAVP");
    let ours = ours.expect("holdless's key in its answer");
    assert_eq!((ours.tag, ours.suite), (caller_key.tag, caller_key.suite));
    assert_ne!(ours.key, caller_key.key, "a key of holdless's own");

    // The caller's phone: sends with its key, receives with holdless's.
    let mut phone = SrtpLeg::new(&ours, &caller_key).unwrap();
    let said = voice(1, 0x11);
    let (v, out) = relay(
        &mut mc,
        id,
        t0,
        Side::Caller,
        addr(CALLER, 4000),
        &phone.protect_rtp(&said).unwrap(),
    );
    assert_eq!(v, Verdict::Forward(addr(CALLEE, 5000)));
    assert_eq!(
        out, said,
        "the callee hears the caller's audio in the clear"
    );

    let back = voice(7, 0x22);
    let (v, out) = relay(&mut mc, id, t0, Side::Callee, addr(CALLEE, 5000), &back);
    assert_eq!(v, Verdict::Forward(addr(CALLER, 4000)));
    assert_eq!(out.len(), back.len() + 10, "an 80-bit tag");
    assert_eq!(phone.unprotect_rtp(&out).unwrap(), back);
}

#[test]
fn forged_replayed_and_plain_packets_from_an_srtp_side_are_counted_and_dropped() {
    let (mut mc, id, t0, _, _, mut phone) = srtp_caller_call();
    let src = addr(CALLER, 4000);
    let wire = phone.protect_rtp(&voice(1, 1)).unwrap();
    let mut forged = wire.clone();
    forged[20] ^= 0x40;
    let srtp_drop = Verdict::Drop(DropReason::Srtp);
    assert_eq!(
        relay(&mut mc, id, t0, Side::Caller, src, &forged).0,
        srtp_drop
    );
    assert_eq!(
        relay(&mut mc, id, t0, Side::Caller, src, &voice(2, 1)).0,
        srtp_drop
    );
    assert!(matches!(
        relay(&mut mc, id, t0, Side::Caller, src, &wire).0,
        Verdict::Forward(_)
    ));
    assert_eq!(
        relay(&mut mc, id, t0, Side::Caller, src, &wire).0,
        srtp_drop,
        "replay"
    );
    let stats = mc.stats(id).unwrap().caller;
    assert_eq!((stats.dropped.srtp, stats.relayed), (3, 1));
}

#[test]
fn each_sides_policy_refuses_what_it_does_not_take_with_488() {
    let cases = [
        (SrtpPolicy::Required, None, "plain where required"),
        (SrtpPolicy::Off, Some(key()), "SRTP where off"),
    ];
    for (policy, crypto, what) in cases {
        let (mut mc, id, t0) = controller();
        mc.secure(id, Side::Caller, policy);
        let e = mc
            .offer(t0, id, Side::Caller, &sdp(CALLER, 4000, crypto.as_ref()))
            .unwrap_err();
        assert_eq!(e.status().0, 488, "{what}: {e}");
        assert!(matches!(e, MediaError::Security(_)), "{what}: {e}");
    }
    // SRTP with only suites or key forms holdless does not take.
    let (mut mc, id, t0) = controller();
    let f8 = String::from_utf8(sdp(CALLER, 4000, Some(&key())))
        .unwrap()
        .replace("AES_CM_128_HMAC_SHA1_80", "F8_128_HMAC_SHA1_80");
    let e = mc.offer(t0, id, Side::Caller, f8.as_bytes()).unwrap_err();
    assert_eq!(e.status().0, 488, "{e}");
    // Optional takes either.
    for crypto in [None, Some(key())] {
        let (mut mc, id, t0) = controller();
        mc.secure(id, Side::Caller, SrtpPolicy::Optional);
        mc.offer(t0, id, Side::Caller, &sdp(CALLER, 4000, crypto.as_ref()))
            .unwrap();
    }
}

#[test]
fn a_callee_that_requires_srtp_is_offered_it_and_must_answer_with_it() {
    let (mut mc, id, t0) = controller();
    mc.secure(id, Side::Callee, SrtpPolicy::Required);
    let onward = mc
        .offer(t0, id, Side::Caller, &sdp(CALLER, 4000, None))
        .unwrap();
    let (proto, offered) = security(&onward);
    assert_eq!(proto, "RTP/SAVP");
    let offered = offered.expect("holdless's key in its offer");
    // A plain answer, or one with another tag, is refused.
    let e = mc
        .answer(t0, id, Side::Callee, &sdp(CALLEE, 5000, None))
        .unwrap_err();
    assert!(matches!(e, MediaError::Security(_)), "{e}");
    let wrong_tag = Crypto { tag: 9, ..key() };
    assert!(mc
        .answer(t0, id, Side::Callee, &sdp(CALLEE, 5000, Some(&wrong_tag)))
        .is_err());
    let callee_key = Crypto {
        tag: offered.tag,
        ..key()
    };
    let answer = mc
        .answer(t0, id, Side::Callee, &sdp(CALLEE, 5000, Some(&callee_key)))
        .unwrap();
    assert_eq!(
        security(&answer),
        ("RTP/AVP".into(), None),
        "the caller stays plain"
    );

    let mut pbx = SrtpLeg::new(&offered, &callee_key).unwrap();
    let said = voice(3, 0x33);
    let (v, out) = relay(&mut mc, id, t0, Side::Caller, addr(CALLER, 4000), &said);
    assert_eq!(v, Verdict::Forward(addr(CALLEE, 5000)));
    assert_eq!(pbx.unprotect_rtp(&out).unwrap(), said);
    let back = voice(4, 0x44);
    let (_, out) = relay(
        &mut mc,
        id,
        t0,
        Side::Callee,
        addr(CALLEE, 5000),
        &pbx.protect_rtp(&back).unwrap(),
    );
    assert_eq!(out, back);
}

#[test]
fn a_session_refresh_with_the_same_key_keeps_holdlesss_key_and_the_replay_window() {
    let (mut mc, id, t0, caller_key, ours, mut phone) = srtp_caller_call();
    let offer = sdp(CALLER, 4000, Some(&caller_key));
    let early = phone.protect_rtp(&voice(1, 1)).unwrap();
    let src = addr(CALLER, 4000);
    assert!(matches!(
        relay(&mut mc, id, t0, Side::Caller, src, &early).0,
        Verdict::Forward(_)
    ));

    // The same offer again (a session refresh): the same answer key, the same contexts.
    let later = t0 + Duration::from_secs(900);
    mc.offer(later, id, Side::Caller, &offer).unwrap();
    let again = mc
        .answer(later, id, Side::Callee, &sdp(CALLEE, 5000, None))
        .unwrap();
    assert_eq!(security(&again).1, Some(ours));
    assert_eq!(
        relay(&mut mc, id, later, Side::Caller, src, &early).0,
        Verdict::Drop(DropReason::Srtp),
        "still a replay"
    );
    let next = phone.protect_rtp(&voice(2, 2)).unwrap();
    assert!(matches!(
        relay(&mut mc, id, later, Side::Caller, src, &next).0,
        Verdict::Forward(_)
    ));

    // A new key from the caller: a new key from holdless.
    let rekey = key();
    mc.offer(later, id, Side::Caller, &sdp(CALLER, 4000, Some(&rekey)))
        .unwrap();
    let third = mc
        .answer(later, id, Side::Callee, &sdp(CALLEE, 5000, None))
        .unwrap();
    assert_ne!(security(&third).1.unwrap().key, ours.key);
}

#[test]
fn holdless_own_media_on_an_srtp_side_sends_protected_frames_and_reads_protected_digits() {
    let (mut mc, id, t0) = controller();
    let caller_key = key();
    let answer = mc
        .answer_locally(t0, id, Side::Caller, &sdp(CALLER, 4000, Some(&caller_key)))
        .unwrap();
    let (proto, ours) = security(&answer);
    assert_eq!(proto, "RTP/SAVP");
    let ours = ours.unwrap();
    assert_eq!(
        mc.local_params(id, Side::Caller)
            .unwrap()
            .srtp
            .unwrap()
            .ours,
        ours
    );
    let mut phone = SrtpLeg::new(&ours, &caller_key).unwrap();

    // Comfort silence goes out protected; the phone decrypts it to a plain RTP frame.
    let m = mc.local_mut(id, Side::Caller).unwrap();
    let (frame, to) = m.poll_transmit(t0).unwrap();
    assert_eq!(to, addr(CALLER, 4000));
    let mut buf = [0u8; local::FRAME_WIRE_MAX];
    let n = m.write_frame(&frame, &mut buf).unwrap();
    let mut plain = [0u8; 256];
    let p = frame.write(&mut plain).unwrap();
    assert_eq!(phone.unprotect_rtp(&buf[..n]).unwrap(), &plain[..p]);

    // An RFC 4733 key press, protected, is a digit; the same unprotected is not.
    let press = |seq: u16, end: bool| {
        let flags = if end { 0x80 } else { 0x00 } | 10;
        build_rtp(101, seq, 8000, 0x5150, &[5, flags, 0x03, 0x20])
    };
    let src = addr(CALLER, 4000);
    assert!(m.rtp_in(t0, src, &press(1, true)).is_none());
    assert_eq!(m.stats().dropped.srtp, 1);
    let digit = m.rtp_in(t0, src, &phone.protect_rtp(&press(2, true)).unwrap());
    assert_eq!(digit.map(|d| d.digit), Some(Digit::from_char('5').unwrap()));
}

#[test]
fn local_media_hands_its_srtp_contexts_to_the_relay_when_the_side_is_joined() {
    let (mut mc, id, t0) = controller();
    let caller_key = key();
    let answer = mc
        .answer_locally(t0, id, Side::Caller, &sdp(CALLER, 4000, Some(&caller_key)))
        .unwrap();
    let ours = security(&answer).1.unwrap();
    let mut phone = SrtpLeg::new(&ours, &caller_key).unwrap();
    let src = addr(CALLER, 4000);
    let early = phone.protect_rtp(&voice(1, 1)).unwrap();
    mc.local_mut(id, Side::Caller)
        .unwrap()
        .rtp_in(t0, src, &early);
    // Frames holdless sent while local move the phone's receive state on.
    let mut buf = [0u8; local::FRAME_WIRE_MAX];
    for k in 0..3 {
        let m = mc.local_mut(id, Side::Caller).unwrap();
        let (frame, _) = m.poll_transmit(t0 + Duration::from_millis(20 * k)).unwrap();
        let n = m.write_frame(&frame, &mut buf).unwrap();
        phone.unprotect_rtp(&buf[..n]).unwrap();
    }

    let onward = mc.offer_onward(t0, id, Side::Caller).unwrap();
    assert_eq!(
        security(&onward).0,
        "RTP/AVP",
        "the callee's policy is optional"
    );
    mc.answer(t0, id, Side::Callee, &sdp(CALLEE, 5000, None))
        .unwrap();
    assert_eq!(mc.local_params(id, Side::Caller), None, "joined");
    // The relay has the local media's contexts: the early packet is still a replay.
    assert_eq!(
        relay(&mut mc, id, t0, Side::Caller, src, &early).0,
        Verdict::Drop(DropReason::Srtp)
    );
    let said = voice(2, 9);
    let (v, out) = relay(
        &mut mc,
        id,
        t0,
        Side::Caller,
        src,
        &phone.protect_rtp(&said).unwrap(),
    );
    assert_eq!(v, Verdict::Forward(addr(CALLEE, 5000)));
    assert_eq!(parse_rtp(&out).unwrap().seq, 2);
    assert_eq!(out, said);
    // And what the callee says reaches the phone on the same outbound context.
    let (_, out) = relay(
        &mut mc,
        id,
        t0,
        Side::Callee,
        addr(CALLEE, 5000),
        &voice(50, 3),
    );
    let heard = phone.unprotect_rtp(&out).unwrap();
    assert_eq!(&heard[12..], &[3u8; 160][..]);
}
