//! The RTP relay over real loopback sockets: two fake endpoints (plain UDP sockets on
//! 127.0.0.1) negotiate through [`RtpRuntime`] and exchange RTP and RTCP through holdless.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use holdless::acl::Egress;
use holdless::media::g711::ULAW_TO_ALAW;
use holdless::media::rtp::{build_rtp, parse_rtp};
use holdless::media::{MediaConfig, MediaControl, MediaEvent, MediaId, Side, TimeoutReason};
use holdless::runtime::rtp::RtpRuntime;
use tokio::net::UdpSocket;
use tokio::time::timeout;

/// Generous bound on waiting for a packet, so a broken relay fails instead of hanging.
const WAIT: Duration = Duration::from_secs(5);

fn config(port_min: u16) -> MediaConfig {
    MediaConfig {
        port_min,
        port_max: port_min + 199,
        ..MediaConfig::default()
    }
}

fn loopback() -> Egress {
    Egress::new(vec!["127.0.0.0/8".parse().unwrap()])
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

async fn endpoint() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.unwrap()
}

async fn recv(sock: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0u8; 2048];
    let (n, from) = timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .expect("no packet arrived")
        .unwrap();
    buf.truncate(n);
    (buf, from)
}

struct Call {
    id: MediaId,
    caller: UdpSocket,
    callee: UdpSocket,
    /// The RTCP sockets (named in each side's a=rtcp).
    caller_rtcp: UdpSocket,
    callee_rtcp: UdpSocket,
    /// holdless's ports facing each side.
    to_caller_side: SocketAddr,
    to_callee_side: SocketAddr,
}

async fn call(rt: &mut RtpRuntime, caller_fmts: &str, callee_fmts: &str) -> Call {
    let (caller, callee) = (endpoint().await, endpoint().await);
    let (caller_rtcp, callee_rtcp) = (endpoint().await, endpoint().await);
    let with_rtcp = |rtp: &UdpSocket, rtcp: &UdpSocket, fmts: &str| {
        let mut s = sdp(rtp.local_addr().unwrap(), fmts);
        let port = rtcp.local_addr().unwrap().port();
        s.extend_from_slice(format!("a=rtcp:{port}\r\n").as_bytes());
        s
    };
    let now = Instant::now();
    let id = rt.create(now).unwrap();
    rt.offer(
        now,
        id,
        Side::Caller,
        &with_rtcp(&caller, &caller_rtcp, caller_fmts),
    )
    .unwrap();
    rt.answer(
        now,
        id,
        Side::Callee,
        &with_rtcp(&callee, &callee_rtcp, callee_fmts),
    )
    .unwrap();
    Call {
        id,
        caller,
        callee,
        caller_rtcp,
        callee_rtcp,
        to_caller_side: rt.local_addr(id, Side::Caller).unwrap(),
        to_callee_side: rt.local_addr(id, Side::Callee).unwrap(),
    }
}

async fn released(rt: &mut RtpRuntime, id: MediaId) -> holdless::media::CallStats {
    loop {
        match timeout(WAIT, rt.events().recv()).await.expect("no event") {
            Some(MediaEvent::Released { id: got, stats }) if got == id => return *stats,
            Some(_) => continue,
            None => panic!("event queue closed"),
        }
    }
}

#[tokio::test]
async fn pcma_flows_both_ways_with_events_and_rtcp() {
    let mut rt = RtpRuntime::new(config(41000), loopback());
    let c = call(&mut rt, "8 101", "8 101").await;
    let payload: Vec<u8> = (0..160u32).map(|i| i as u8).collect();
    for seq in 0..10u16 {
        let p = build_rtp(8, seq, u32::from(seq) * 160, 0xC0FFEE, &payload);
        c.caller.send_to(&p, c.to_caller_side).await.unwrap();
        let (got, from) = recv(&c.callee).await;
        assert_eq!(got, p, "PCMA relayed unchanged");
        assert_eq!(
            from, c.to_callee_side,
            "sent from holdless's callee-facing port"
        );
    }
    let back = build_rtp(8, 1, 160, 0xBEEF, &payload);
    c.callee.send_to(&back, c.to_callee_side).await.unwrap();
    assert_eq!(recv(&c.caller).await.0, back);
    // An RFC 4733 event (digit 5, marker set).
    let mut ev = build_rtp(101, 10, 1600, 0xC0FFEE, &[5, 0x0A, 0, 160]);
    ev[1] |= 0x80;
    c.caller.send_to(&ev, c.to_caller_side).await.unwrap();
    assert_eq!(recv(&c.callee).await.0, ev);
    // RTCP goes between holdless's RTP port + 1 and the ports each side's a=rtcp names.
    let rr = [0x80u8, 201, 0, 1, 0, 0, 0, 1];
    let plus_one = |mut a: SocketAddr| {
        a.set_port(a.port() + 1);
        a
    };
    c.callee_rtcp
        .send_to(&rr, plus_one(c.to_callee_side))
        .await
        .unwrap();
    assert_eq!(recv(&c.caller_rtcp).await.0, rr);
    c.caller
        .send_to(&rr, plus_one(c.to_caller_side))
        .await
        .unwrap();
    assert_eq!(recv(&c.callee_rtcp).await.0, rr);
    rt.release(c.id);
    let stats = released(&mut rt, c.id).await;
    assert_eq!(stats.caller.packets, 11);
    assert_eq!(stats.caller.rtcp_packets, 1);
    assert_eq!(stats.caller.events, 1);
    assert_eq!(stats.caller.lost, 0);
    assert_eq!(stats.callee.packets, 1);
    assert_eq!(rt.ports_in_use(), 0);
}

#[tokio::test]
async fn different_laws_are_transcoded() {
    let mut rt = RtpRuntime::new(config(41200), loopback());
    let c = call(&mut rt, "0", "8").await;
    let ulaw: Vec<u8> = (0..=255u8).collect();
    let p = build_rtp(0, 1, 0, 7, &ulaw);
    c.caller.send_to(&p, c.to_caller_side).await.unwrap();
    let (got, _) = recv(&c.callee).await;
    let h = parse_rtp(&got).unwrap();
    assert_eq!(h.pt, 8, "PCMU → PCMA");
    let alaw: Vec<u8> = ulaw.iter().map(|&u| ULAW_TO_ALAW[usize::from(u)]).collect();
    assert_eq!(&got[h.payload_start..], &alaw[..]);
    c.callee.send_to(&got, c.to_callee_side).await.unwrap();
    let (back, _) = recv(&c.caller).await;
    assert_eq!(parse_rtp(&back).unwrap().pt, 0, "PCMA → PCMU");
    rt.release(c.id);
}

#[tokio::test]
async fn latching_follows_the_real_source_and_refuses_strangers() {
    let mut rt = RtpRuntime::new(config(41400), loopback());
    let c = call(&mut rt, "8", "8").await;
    // The caller really sends from another port of the advertised IP (a NAT, say).
    let natted = endpoint().await;
    let p = build_rtp(8, 1, 0, 1, &[0xD5; 160]);
    natted.send_to(&p, c.to_caller_side).await.unwrap();
    assert_eq!(recv(&c.callee).await.0, p);
    let back = build_rtp(8, 1, 0, 2, &[0x55; 160]);
    c.callee.send_to(&back, c.to_callee_side).await.unwrap();
    assert_eq!(
        recv(&natted).await.0,
        back,
        "replies go where the caller sends from"
    );
    // A stranger on another address is not relayed.
    let stranger = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    stranger
        .send_to(&build_rtp(8, 2, 160, 9, &[1; 160]), c.to_caller_side)
        .await
        .unwrap();
    // The caller's next packet is what arrives, not the stranger's.
    let p2 = build_rtp(8, 2, 160, 1, &[0xD5; 160]);
    natted.send_to(&p2, c.to_caller_side).await.unwrap();
    assert_eq!(recv(&c.callee).await.0, p2);
    rt.release(c.id);
    let stats = released(&mut rt, c.id).await;
    assert_eq!(stats.caller.dropped.source, 1);
}

#[tokio::test]
async fn egress_refuses_a_non_loopback_destination() {
    let mut rt = RtpRuntime::new(config(41600), loopback());
    let caller = endpoint().await;
    let now = Instant::now();
    let id = rt.create(now).unwrap();
    rt.offer(
        now,
        id,
        Side::Caller,
        &sdp(caller.local_addr().unwrap(), "8"),
    )
    .unwrap();
    // The callee's SDP points at TEST-NET-1, outside the loopback-only allow-list.
    rt.answer(
        now,
        id,
        Side::Callee,
        &sdp("192.0.2.1:5000".parse().unwrap(), "8"),
    )
    .unwrap();
    let to_holdless = rt.local_addr(id, Side::Caller).unwrap();
    for seq in 0..5u16 {
        let p = build_rtp(8, seq, 0, 1, &[0; 160]);
        caller.send_to(&p, to_holdless).await.unwrap();
    }
    // Wait until the relay has seen all five, then check none was sent.
    let counters = rt.counters();
    let deadline = Instant::now() + WAIT;
    while counters.received.load(std::sync::atomic::Ordering::Relaxed) < 5 {
        assert!(Instant::now() < deadline, "packets never reached the relay");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    rt.release(id);
    let stats = released(&mut rt, id).await;
    assert_eq!(stats.caller.dropped.egress, 5);
    assert_eq!(stats.caller.relayed, 0);
}

#[tokio::test]
async fn ports_are_freed_after_release() {
    let mut rt = RtpRuntime::new(config(41800), loopback());
    let mut ids = Vec::new();
    let mut addrs = Vec::new();
    for _ in 0..20 {
        let id = rt.create(Instant::now()).unwrap();
        addrs.push(rt.local_addr(id, Side::Caller).unwrap());
        addrs.push(rt.local_addr(id, Side::Callee).unwrap());
        ids.push(id);
    }
    assert_eq!(rt.ports_in_use(), 80);
    for id in &ids {
        rt.release(*id);
    }
    // Every call reports its end (in any order: calls run on several media threads).
    let mut pending: std::collections::HashSet<MediaId> = ids.into_iter().collect();
    while !pending.is_empty() {
        match timeout(WAIT, rt.events().recv()).await.expect("no event") {
            Some(MediaEvent::Released { id, .. }) => assert!(pending.remove(&id), "{id:?} twice"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((rt.active(), rt.ports_in_use()), (0, 0));
    // The sockets are closed: every port can be bound again.
    for a in addrs {
        let mut rtcp = a;
        rtcp.set_port(a.port() + 1);
        UdpSocket::bind(a).await.unwrap();
        UdpSocket::bind(rtcp).await.unwrap();
    }
}

#[tokio::test]
async fn a_silent_side_times_out() {
    let cfg = MediaConfig {
        timeout: Duration::from_millis(300),
        hold_timeout: Duration::from_millis(300),
        ..config(42000)
    };
    let mut rt = RtpRuntime::new(cfg, loopback());
    let c = call(&mut rt, "8", "8").await;
    let mut timed_out = Vec::new();
    while timed_out.len() < 2 {
        match timeout(WAIT, rt.events().recv()).await.expect("no timeout") {
            Some(MediaEvent::Timeout { id, side, reason }) => {
                assert_eq!(id, c.id);
                assert!(matches!(reason, TimeoutReason::NoRtp { .. }));
                timed_out.push(side);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    timed_out.sort_by_key(|s| *s == Side::Callee);
    assert_eq!(timed_out, [Side::Caller, Side::Callee]);
    rt.release(c.id);
}
