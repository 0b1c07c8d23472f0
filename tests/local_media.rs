//! holdless's own media over real loopback sockets: a caller (a plain UDP socket) answered
//! locally by [`RtpRuntime`] hears a prompt from the real prompt set and presses a key; then
//! a callee is joined and RTP flows both ways, the caller's stream carrying on unbroken.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use holdless::acl::Egress;
use holdless::media::dtmf::{Digit, DtmfSource};
use holdless::media::prompt::set::Segment;
use holdless::media::prompt::{Clip, Law, PromptSet, Say};
use holdless::media::rtp::{build_rtp, parse_rtp, RtpHeader};
use holdless::media::{MediaConfig, MediaControl, MediaEvent, MediaId, Side};
use holdless::runtime::rtp::RtpRuntime;
use tokio::net::UdpSocket;
use tokio::time::timeout;

/// Generous bound on waiting for a packet or an event, so a broken runtime fails instead of
/// hanging.
const WAIT: Duration = Duration::from_secs(10);

fn config() -> MediaConfig {
    MediaConfig {
        port_min: 43000,
        port_max: 43199,
        threads: 1,
        ..MediaConfig::default()
    }
}

fn sdp(addr: SocketAddr, fmts: &str) -> Vec<u8> {
    let mut s = format!(
        "v=0\r\no=x 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {fmts}\r\n",
        ip = addr.ip(),
        port = addr.port()
    );
    for pt in fmts.split(' ') {
        let enc = match pt {
            "0" => "PCMU/8000",
            "8" => "PCMA/8000",
            _ => "telephone-event/8000",
        };
        s.push_str(&format!("a=rtpmap:{pt} {enc}\r\n"));
    }
    s.into_bytes()
}

/// One received RTP packet: its header, marker bit and payload.
#[derive(Clone)]
struct Got {
    h: RtpHeader,
    marker: bool,
    payload: Vec<u8>,
}

async fn recv(sock: &UdpSocket) -> Got {
    let mut buf = vec![0u8; 2048];
    let n = timeout(WAIT, sock.recv(&mut buf))
        .await
        .expect("no packet arrived")
        .unwrap();
    buf.truncate(n);
    let h = parse_rtp(&buf).expect("RTP");
    Got {
        h,
        marker: buf[1] & 0x80 != 0,
        payload: buf[h.payload_start..h.payload_end].to_vec(),
    }
}

/// The next event about `id` other than `Released`.
async fn event(rt: &mut RtpRuntime, id: MediaId) -> MediaEvent {
    loop {
        let ev = timeout(WAIT, rt.events().recv())
            .await
            .expect("no media event")
            .expect("event queue closed");
        match &ev {
            MediaEvent::Timeout { id: got, .. }
            | MediaEvent::Digit { id: got, .. }
            | MediaEvent::PlayFinished { id: got, .. }
                if *got == id =>
            {
                return ev
            }
            _ => {}
        }
    }
}

/// The clip's bytes as sent: each segment's audio or silence, padded to whole frames.
fn frames_of(clip: &Clip) -> Vec<Vec<u8>> {
    let silence = clip.law().silence();
    let mut bytes = Vec::new();
    for seg in clip.segments() {
        match seg {
            Segment::Audio(a) => bytes.extend_from_slice(a),
            Segment::Silence(n) => bytes.extend(std::iter::repeat_n(silence, *n)),
        }
    }
    bytes.resize(clip.frames(160) * 160, silence);
    bytes.chunks(160).map(<[u8]>::to_vec).collect()
}

/// Checks each packet follows the one before on one stream: same SSRC and payload type,
/// sequence number +1, timestamp +160.
fn assert_continuous(packets: &[Got]) {
    for w in packets.windows(2) {
        let (a, b) = (&w[0].h, &w[1].h);
        assert_eq!(b.ssrc, a.ssrc);
        assert_eq!(b.seq, a.seq.wrapping_add(1), "consecutive sequence numbers");
        assert_eq!(b.timestamp, a.timestamp.wrapping_add(160), "20 ms apart");
    }
}

#[tokio::test]
async fn prompt_digit_then_join_keeps_the_callers_stream() {
    let prompts = PromptSet::load(Path::new("configs/prompts")).expect("prompt set");
    let clip = prompts.render(&[Say::Number(7)], Law::Pcmu);
    let want = frames_of(&clip);
    assert!(want.len() > 5, "a clip of a few frames");

    let mut rt = RtpRuntime::new(config(), Egress::new(vec!["127.0.0.0/8".parse().unwrap()]));
    let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let callee = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let now = Instant::now();
    let id = rt.create(now).unwrap();
    let caller_sdp = sdp(caller.local_addr().unwrap(), "0 101");
    let answer = rt
        .answer_locally(now, id, Side::Caller, &caller_sdp)
        .unwrap();
    let answer = String::from_utf8(answer.to_vec()).unwrap();
    assert!(answer.contains("RTP/AVP 0 101\r\n"), "{answer}");
    rt.play(Instant::now(), id, Side::Caller, clip.clone());
    let holdless = rt.local_addr(id, Side::Caller).unwrap();

    // Comfort silence, the clip, silence again: one stream throughout.
    let mut heard = Vec::new();
    let start = loop {
        heard.push(recv(&caller).await);
        let n = heard.len();
        if n >= want.len() {
            let from = n - want.len();
            if heard[from..].iter().map(|g| &g.payload).eq(want.iter()) {
                break from;
            }
        }
        assert!(n < 500, "the clip never came");
    };
    heard.push(recv(&caller).await);
    assert_eq!(
        heard.last().unwrap().payload,
        vec![0xFF; 160],
        "silence after the clip"
    );
    assert_eq!(
        heard.len() - start - 1,
        want.len(),
        "one frame per 20 ms of clip"
    );
    assert!(heard[0].marker, "marker on the stream's first packet");
    assert!(heard[1..].iter().all(|g| !g.marker));
    assert!(heard.iter().all(|g| g.h.pt == 0));
    assert_continuous(&heard);
    assert_eq!(
        event(&mut rt, id).await,
        MediaEvent::PlayFinished {
            id,
            side: Side::Caller
        }
    );

    // The caller presses 4 (RFC 4733: start with the marker, continuation, 3 ends).
    for (k, (flags, dur)) in [
        (0x0A, 0u16),
        (0x0A, 160),
        (0x8A, 320),
        (0x8A, 320),
        (0x8A, 320),
    ]
    .into_iter()
    .enumerate()
    {
        let d = dur.to_be_bytes();
        let mut p = build_rtp(101, 10 + k as u16, 8000, 0xCA11, &[4, flags, d[0], d[1]]);
        if k == 0 {
            p[1] |= 0x80;
        }
        caller.send_to(&p, holdless).await.unwrap();
    }
    match event(&mut rt, id).await {
        MediaEvent::Digit { side, event, .. } => {
            assert_eq!(side, Side::Caller);
            assert_eq!(
                (event.digit, event.source),
                (Digit::Num(4), DtmfSource::Rfc4733)
            );
        }
        other => panic!("expected a digit, got {other:?}"),
    }

    // Join a callee: the onward offer, its answer.
    let offer = rt.offer_onward(Instant::now(), id, Side::Caller).unwrap();
    assert!(String::from_utf8_lossy(&offer).contains("telephone-event"));
    let callee_sdp = sdp(callee.local_addr().unwrap(), "0 101");
    rt.answer(Instant::now(), id, Side::Callee, &callee_sdp)
        .unwrap();
    let to_callee_side = rt.local_addr(id, Side::Callee).unwrap();

    // The callee speaks: the caller gets it on the same stream, right after the last
    // silence frame the player sent. Frames still in flight are skipped over.
    let mut prev = heard.pop().unwrap();
    for k in 0..5u16 {
        let p = build_rtp(
            0,
            40_000 + k,
            1_000_000 + 160 * u32::from(k),
            0xCA11EE,
            &[0x11; 160],
        );
        callee.send_to(&p, to_callee_side).await.unwrap();
    }
    let mut relayed = 0;
    while relayed < 5 {
        let g = recv(&caller).await;
        assert_eq!(
            g.h.seq,
            prev.h.seq.wrapping_add(1),
            "sequence numbers carry on"
        );
        assert_eq!(g.h.ssrc, prev.h.ssrc, "the player's SSRC throughout");
        if g.payload != vec![0x11; 160] {
            assert_eq!(relayed, 0, "no player frame after the relay took over");
            assert_eq!(g.payload, vec![0xFF; 160]);
            assert_continuous(&[prev, g.clone()]);
        } else if relayed == 0 {
            assert!(g.marker, "marker on the first relayed packet");
            let step = g.h.timestamp.wrapping_sub(prev.h.timestamp);
            assert!((160..0x8000_0000).contains(&step), "the timestamp moves on");
            relayed += 1;
        } else {
            assert!(!g.marker);
            assert_eq!(g.h.timestamp, prev.h.timestamp.wrapping_add(160));
            relayed += 1;
        }
        prev = g;
    }

    // And the caller is heard by the callee, unchanged.
    let p = build_rtp(0, 77, 7_700, 0xCA11, &[0x22; 160]);
    caller.send_to(&p, holdless).await.unwrap();
    let mut g = recv(&callee).await;
    while g.h.pt == 101 {
        // End packets of the key press the task read after the join: relayed, rightly.
        g = recv(&callee).await;
    }
    assert_eq!((g.h.seq, g.h.timestamp, g.h.ssrc), (77, 7_700, 0xCA11));
    assert_eq!(g.payload, vec![0x22; 160]);

    rt.release(id);
    loop {
        match timeout(WAIT, rt.events().recv()).await.expect("no release") {
            Some(MediaEvent::Released { id: got, stats }) if got == id => {
                assert_eq!(stats.caller.events, 5, "the key press, counted locally");
                assert_eq!(stats.caller.packets, 6);
                assert_eq!(stats.callee.relayed, 5);
                break;
            }
            Some(_) => continue,
            None => panic!("event queue closed"),
        }
    }
}

/// The same path for a caller that speaks SRTP (SDES): every frame holdless's player sends
/// is authentic SRTP that decrypts to the prompt, the caller's protected key press is a
/// digit, and once a plain callee is joined the relay carries on in both directions on the
/// SRTP state local media used (the runtime's handover, with its own sockets and thread).
#[tokio::test]
async fn an_srtp_caller_hears_protected_prompts_presses_a_key_then_is_joined() {
    use holdless::media::sdes::{Crypto, Suite};
    use holdless::media::srtp::SrtpLeg;
    let prompts = PromptSet::load(Path::new("configs/prompts")).expect("prompt set");
    let clip = prompts.render(&[Say::Number(3)], Law::Pcmu);
    let want = frames_of(&clip);

    let mut rt = RtpRuntime::new(
        MediaConfig {
            port_min: 43200,
            port_max: 43399,
            ..config()
        },
        Egress::new(vec!["127.0.0.0/8".parse().unwrap()]),
    );
    let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let callee = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let caller_key = Crypto::fresh(1, Suite::AesCm128HmacSha1_32).unwrap();
    let offer = String::from_utf8(sdp(caller.local_addr().unwrap(), "0 101"))
        .unwrap()
        .replace("RTP/AVP", "RTP/SAVP")
        + &format!("a=crypto:{}\r\n", caller_key.to_value());
    let now = Instant::now();
    let id = rt.create(now).unwrap();
    let answer = rt
        .answer_locally(now, id, Side::Caller, offer.as_bytes())
        .unwrap();
    let answer = String::from_utf8(answer.to_vec()).unwrap();
    assert!(answer.contains("RTP/SAVP 0 101\r\n"), "{answer}");
    let ours = answer
        .lines()
        .find_map(|l| l.strip_prefix("a=crypto:"))
        .map(|v| Crypto::parse(v).unwrap())
        .expect("holdless's key");
    let mut phone = SrtpLeg::new(&ours, &caller_key).unwrap();
    let holdless = rt.local_addr(id, Side::Caller).unwrap();
    rt.play(Instant::now(), id, Side::Caller, clip);

    // Every packet is authentic SRTP (4-byte tag); decrypted, the clip is in the stream.
    let mut buf = vec![0u8; 2048];
    let mut heard: Vec<Vec<u8>> = Vec::new();
    loop {
        let n = timeout(WAIT, caller.recv(&mut buf))
            .await
            .expect("a frame")
            .unwrap();
        assert_eq!(n, 12 + 160 + 4, "a protected 20 ms frame");
        let plain = phone.unprotect_rtp(&buf[..n]).expect("authentic SRTP");
        heard.push(plain[12..].to_vec());
        let k = heard.len();
        if k >= want.len() && heard[k - want.len()..] == want[..] {
            break;
        }
        assert!(k < 500, "the clip never came");
    }

    // A key press, protected; the same press unprotected is not a digit.
    let press = |seq: u16, flags: u8| {
        let mut p = build_rtp(101, seq, 8000, 0xCA11, &[7, flags, 0x01, 0x40]);
        if seq == 1 {
            p[1] |= 0x80;
        }
        p
    };
    for (seq, flags) in [(1u16, 0x0A), (2, 0x8A), (3, 0x8A), (4, 0x8A)] {
        let wire = phone.protect_rtp(&press(seq, flags)).unwrap();
        caller.send_to(&wire, holdless).await.unwrap();
    }
    loop {
        match event(&mut rt, id).await {
            MediaEvent::Digit { event, .. } => {
                assert_eq!(event.digit, Digit::Num(7));
                break;
            }
            MediaEvent::PlayFinished { .. } => continue,
            other => panic!("expected a digit, got {other:?}"),
        }
    }

    // Join a plain callee.
    let onward = rt.offer_onward(Instant::now(), id, Side::Caller).unwrap();
    let onward = String::from_utf8(onward.to_vec()).unwrap();
    assert!(
        onward.contains("RTP/AVP") && !onward.contains("a=crypto"),
        "{onward}"
    );
    let callee_sdp = sdp(callee.local_addr().unwrap(), "0 101");
    rt.answer(Instant::now(), id, Side::Callee, &callee_sdp)
        .unwrap();
    let to_callee_side = rt.local_addr(id, Side::Callee).unwrap();
    for k in 0..5u16 {
        let p = build_rtp(0, 500 + k, 160 * u32::from(k), 0xEE, &[0x11; 160]);
        callee.send_to(&p, to_callee_side).await.unwrap();
    }
    let mut relayed = 0;
    while relayed < 5 {
        let n = timeout(WAIT, caller.recv(&mut buf))
            .await
            .expect("a packet")
            .unwrap();
        let plain = phone
            .unprotect_rtp(&buf[..n])
            .expect("authentic SRTP after the join");
        if plain[12..] == [0x11; 160] {
            relayed += 1;
        }
    }
    let said = build_rtp(0, 9, 1440, 0xCA11, &[0x22; 160]);
    caller
        .send_to(&phone.protect_rtp(&said).unwrap(), holdless)
        .await
        .unwrap();
    let mut g = recv(&callee).await;
    while g.h.pt == 101 {
        g = recv(&callee).await;
    }
    assert_eq!(g.payload, vec![0x22; 160], "decrypted for the plain callee");
    rt.release(id);
}
