//! Fuzz bodies for the media side: SDP and offer/answer, the relay's packet path, SRTP.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::acl::Egress;
use crate::media::config::{Latching, MediaConfig};
use crate::media::negotiate::Negotiation;
use crate::media::prompt::StreamState;
use crate::media::relay::{Continuity, Relay, Verdict};
use crate::media::sdes::Crypto;
use crate::media::srtp::SrtpLeg;
use crate::media::{rtp, sdp as sdp_mod, Side};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A well-formed offer from the caller: PCMU, PCMA and telephone-event.
const OFFER: &str =
    "v=0\r\no=peer 1 1 IN IP4 127.0.0.10\r\ns=-\r\nc=IN IP4 127.0.0.10\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n";

/// Answers from the callee to what holdless forwards of [`OFFER`]: the same law, the
/// other law (transcoding), and on hold.
const ANSWERS: [&str; 3] = [
    "v=0\r\no=ua 2 2 IN IP4 127.0.0.20\r\ns=-\r\nc=IN IP4 127.0.0.20\r\nt=0 0\r\n\
m=audio 41000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
    "v=0\r\no=ua 2 2 IN IP4 127.0.0.20\r\ns=-\r\nc=IN IP4 127.0.0.20\r\nt=0 0\r\n\
m=audio 41000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n",
    "v=0\r\no=ua 2 2 IN IP4 127.0.0.20\r\ns=-\r\nc=IN IP4 127.0.0.20\r\nt=0 0\r\n\
m=audio 41000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\n",
];

/// The SDP parser, the audio stream readers, and offer/answer with the bytes as the
/// offer and as the answer. Asserts that every SDP holdless writes parses again.
pub fn sdp(data: &[u8]) {
    if let Ok(session) = sdp_mod::parse(data) {
        let _ = sdp_mod::offered_audio(&session);
        for i in 0..session.medias.len() {
            let _ = sdp_mod::answered_audio(&session, i);
        }
    }
    let written = |sdp: &[u8]| {
        sdp_mod::parse(sdp).unwrap_or_else(|e| panic!("holdless wrote SDP it cannot read: {e}"));
    };
    // The bytes as the caller's offer, answered by the callee.
    let mut n = Negotiation::new([30000, 30002], [1, 2]);
    if let Ok(onward) = n.offer(Side::Caller, data, LOOPBACK) {
        written(&onward);
        for answer in ANSWERS {
            if let Ok(back) = n.answer(Side::Callee, answer.as_bytes(), LOOPBACK) {
                written(&back);
            }
        }
    }
    // The bytes as the callee's answer to a well-formed offer.
    let mut n = Negotiation::new([30000, 30002], [1, 2]);
    if n.offer(Side::Caller, OFFER.as_bytes(), LOOPBACK).is_ok() {
        if let Ok(back) = n.answer(Side::Callee, data, LOOPBACK) {
            written(&back);
        }
    }
    // The bytes as an offer holdless answers itself.
    let mut n = Negotiation::new([30000, 30002], [1, 2]);
    if let Ok((answer, _)) = n.answer_locally(Side::Caller, data, LOOPBACK) {
        written(&answer);
        if let Ok(onward) = n.offer_onward(Side::Caller, LOOPBACK) {
            written(&onward);
            if let Ok(back) = n.answer(Side::Callee, ANSWERS[0].as_bytes(), LOOPBACK) {
                written(&back);
            }
        }
    }
}

/// A relay set up by a real offer/answer, then fed packets. Input: one byte choosing the
/// answer, latching and stream continuity, then records of `[control, length, bytes...]`;
/// the control byte picks the side, RTP or RTCP, the source address and a clock step.
/// Asserts that a forwarded packet goes only to an egress-allowed address (under strict
/// latching, the other side's SDP address), and that the relay's timers move forward.
pub fn rtp_relay(data: &[u8]) {
    let _ = rtp::parse_rtp(data);
    let _ = rtp::is_rtcp(data);
    let Some((&setup, mut rest)) = data.split_first() else {
        return;
    };
    let mut now = Instant::now();
    let cfg = MediaConfig {
        latching: if setup & 4 == 0 {
            Latching::Strict
        } else {
            Latching::Any
        },
        ..MediaConfig::default()
    };
    let egress = Arc::new(Egress::new(vec!["127.0.0.0/8".parse().expect("a net")]));
    let mut relay = Relay::new(now, &cfg, egress);
    let mut n = Negotiation::new([30000, 30002], [1, 2]);
    let answer = ANSWERS[usize::from(setup & 3) % ANSWERS.len()];
    let negotiated = n.offer(Side::Caller, OFFER.as_bytes(), LOOPBACK).is_ok()
        && n.answer(Side::Callee, answer.as_bytes(), LOOPBACK).is_ok();
    assert!(negotiated, "the fixed offer/answer must work");
    relay.update(now, n.params().clone());
    if setup & 8 != 0 {
        let player = StreamState {
            ssrc: 0x5151_5151,
            next_seq: 65_530,
            next_timestamp: u32::MAX - 500,
        };
        relay.set_continuity(Side::Caller, Continuity::new(player, Some(now), now));
    }
    let sources: [SocketAddr; 4] = [
        "127.0.0.10:40000".parse().expect("addr"),
        "127.0.0.20:41000".parse().expect("addr"),
        "127.0.0.10:50000".parse().expect("addr"),
        "127.0.0.99:40001".parse().expect("addr"),
    ];
    while let [control, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let mut packet = tail[..len].to_vec();
        rest = &tail[len..];
        now += Duration::from_millis(u64::from(control >> 4) * 250);
        if relay.poll_timeout().is_some_and(|t| t <= now) {
            // One side per call, as the media controller drives it; each side once.
            let fired = std::iter::from_fn(|| relay.handle_timeout(now))
                .take(3)
                .count();
            assert!(fired <= 2, "a side timed out twice");
            assert!(
                relay.poll_timeout().is_none_or(|t| t > now),
                "a timer that never fires"
            );
        }
        let side = if control & 1 == 0 {
            Side::Caller
        } else {
            Side::Callee
        };
        let src = sources[usize::from(control >> 2) & 3];
        let before = packet.clone();
        let verdict = if control & 2 == 0 {
            relay.rtp_in(now, side, src, &mut packet)
        } else {
            relay.rtcp_in(now, side, src, &packet)
        };
        if let Verdict::Forward(to) = verdict {
            let leg = relay.params().leg(side.other());
            assert!(
                to.ip().is_loopback(),
                "forwarded outside the egress list: {to}"
            );
            assert!(
                // Strict latching follows the source port (NAT), never another address.
                cfg.latching == Latching::Any || Some(to.ip()) == leg.source_ip,
                "forwarded to {to}, not to the other side's SDP address"
            );
            assert_eq!(
                packet.len(),
                before.len(),
                "the relay changed the packet's length"
            );
        }
    }
    let _ = relay.stats();
}

/// Fixed SDES keys (RFC 4568 inline key and salt, base64): per suite, theirs and ours.
const KEYS: [[&str; 2]; 2] = [
    [
        "1 AES_CM_128_HMAC_SHA1_80 inline:BwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMk",
        "1 AES_CM_128_HMAC_SHA1_80 inline:Dg8QERITFBUWFxgZGhscHR4fICEiIyQlJicoKSor",
    ],
    [
        "1 AES_CM_128_HMAC_SHA1_32 inline:FRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEy",
        "1 AES_CM_128_HMAC_SHA1_32 inline:HB0eHyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5",
    ],
];

/// SRTP unprotect on the bytes as SRTP and as SRTCP, protect/unprotect round trips, and
/// the a=crypto parser. The first byte picks the suite. Asserts that unprotect undoes
/// protect and that a parsed a=crypto prints back to a value that parses the same.
pub fn srtp(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(c) = Crypto::parse(&text) {
        let again = Crypto::parse(&c.to_value()).expect("holdless reads its own a=crypto");
        assert!(again == c, "a=crypto changed when printed and read back");
    }
    let Some((&setup, packet)) = data.split_first() else {
        return;
    };
    let [theirs, ours] =
        KEYS[usize::from(setup & 1)].map(|k| Crypto::parse(k).expect("a fixed key"));
    let leg = || SrtpLeg::new(&theirs, &ours).expect("a leg from fixed keys");
    let mut a = leg();
    let _ = a.unprotect_rtp(packet);
    let _ = a.unprotect_rtcp(packet);
    // The peer's protect (its keys are our `theirs`), our unprotect, on a fresh leg.
    let mut peer = SrtpLeg::new(&ours, &theirs).expect("a leg from fixed keys");
    let mut b = leg();
    if rtp::parse_rtp(packet).is_some() && !rtp::is_rtcp(packet) {
        if let Ok(sealed) = peer.protect_rtp(packet) {
            let opened = b.unprotect_rtp(&sealed);
            assert_eq!(
                opened.as_deref().ok(),
                Some(packet),
                "SRTP round trip changed the packet"
            );
        }
    }
    if rtp::is_rtcp(packet) {
        if let Ok(sealed) = peer.protect_rtcp(packet) {
            let opened = b.unprotect_rtcp(&sealed);
            assert_eq!(
                opened.as_deref().ok(),
                Some(packet),
                "SRTCP round trip changed the packet"
            );
        }
    }
}
