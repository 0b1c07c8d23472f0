//! The running server over real loopback sockets: UDP and TCP transport, framing,
//! keep-alives, idle timeout, ACL, flood guard, Timer G/H, counters on /metrics.

use std::net::SocketAddr;
use std::time::Duration;

use holdless::config::Config;
use holdless::sip::framer::{Frame, StreamFramer};
use holdless::sip::parse::{parse, Framing};
use holdless::sip::{Message, Name};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::time::timeout;

struct Server {
    sip: u16,
    http: u16,
    stop: watch::Sender<bool>,
    /// The serving task (finished once holdless has stopped).
    task: tokio::task::JoinHandle<Result<(), holdless::runtime::RuntimeError>>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn free_port() -> u16 {
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

async fn start(extra: &str, acl_allow: &str) -> Server {
    start_with(extra, acl_allow, &["127.0.0.1"]).await
}

/// Like [`start`], with SIP over TCP on each of `tcp_hosts` (an IP, `[v6]` bracketed).
async fn start_with(extra: &str, acl_allow: &str, tcp_hosts: &[&str]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let (sip, http) = (free_port(), free_port());
    let tcp: Vec<String> = tcp_hosts.iter().map(|h| format!("\"{h}:{sip}\"")).collect();
    let tcp = tcp.join(", ");
    let text = format!(
        r#"
[sip]
udp = ["127.0.0.1:{sip}", "[::1]:{sip}"]
tcp = [{tcp}]
tcp_idle_timeout_secs = 1
[sip.timers]
t1_ms = 50
t2_ms = 4000
t4_ms = 100
[http]
listen = "127.0.0.1:{http}"
[store]
data_dir = "{dir}"
[acl]
allow = [{acl_allow}]
{extra}
[egress]
allow = ["127.0.0.0/8", "::1/128"]
[[call_targets]]
id = "billing"
name = "Billing"
numbers = ["+15550001000"]
"#,
        dir = dir.path().display()
    );
    let text = if extra.contains("[flood]") {
        text
    } else {
        format!("{text}\n[flood]\nmax_requests = 100000\n")
    };
    let cfg = Config::parse(&text).unwrap_or_else(|e| panic!("{e:?}"));
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(holdless::runtime::serve(cfg, rx));
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", http)).await.is_ok() {
            return Server {
                sip,
                http,
                stop,
                task,
                _dir: dir,
            };
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("server did not start");
}

fn request(method: &str, ruri: &str, cseq: u32, transport: &str, local: SocketAddr) -> String {
    format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/{transport} {local};branch=z9hG4bK-{cseq}-{method};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:caller@127.0.0.1>;tag=abc\r\nTo: <{ruri}>\r\nCall-ID: call-{cseq}@test\r\n\
         CSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
    )
}

async fn recv_udp(sock: &UdpSocket, wait: Duration) -> Option<Message> {
    let mut buf = vec![0u8; 65536];
    let (n, _) = timeout(wait, sock.recv_from(&mut buf)).await.ok()?.ok()?;
    Some(
        parse(&buf[..n], Framing::Datagram)
            .expect("holdless sent SIP")
            .msg,
    )
}

async fn udp_client(bind: &str) -> UdpSocket {
    UdpSocket::bind(bind).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_over_udp_fills_received_and_rport() {
    let s = start("", "\"127.0.0.0/8\", \"::1/128\"").await;
    let c = udp_client("127.0.0.1:0").await;
    let local = c.local_addr().unwrap();
    let req = request(
        "OPTIONS",
        "sip:holdless@127.0.0.1",
        1,
        "UDP",
        "127.0.0.1:1".parse().unwrap(),
    );
    c.send_to(req.as_bytes(), ("127.0.0.1", s.sip))
        .await
        .unwrap();
    let resp = recv_udp(&c, Duration::from_secs(2)).await.expect("a 200");
    assert_eq!(resp.status(), Some(200));
    let via = resp.get(Name::Via).unwrap();
    assert!(via.contains(&format!("rport={}", local.port())), "{via}");
    assert!(via.contains("received=127.0.0.1"), "{via}");
    for h in [Name::Allow, Name::Accept, Name::Supported] {
        assert!(resp.get(h).is_some(), "missing {h:?}");
    }
    assert!(resp.get(Name::To).unwrap().contains("tag="));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_over_udp_ipv6() {
    let s = start("", "\"127.0.0.0/8\", \"::1/128\"").await;
    let Ok(c) = UdpSocket::bind("[::1]:0").await else {
        return;
    };
    let req = request(
        "OPTIONS",
        "sip:holdless@[::1]",
        1,
        "UDP",
        c.local_addr().unwrap(),
    );
    c.send_to(req.as_bytes(), ("::1", s.sip)).await.unwrap();
    let resp = recv_udp(&c, Duration::from_secs(2))
        .await
        .expect("a 200 over IPv6");
    assert_eq!(resp.status(), Some(200));
}

async fn read_frames(stream: &mut TcpStream, framer: &mut StreamFramer, want: usize) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while out.len() < want {
        while let Some(f) = framer.next_frame().unwrap() {
            out.push(f);
        }
        if out.len() >= want {
            break;
        }
        let n = timeout(Duration::from_secs(2), stream.read(&mut buf))
            .await
            .expect("read timed out")
            .unwrap();
        assert!(n > 0, "connection closed early");
        framer.push(&buf[..n]);
    }
    out
}

fn frame_msg(f: &Frame) -> Message {
    match f {
        Frame::Message(b) => parse(b, Framing::Stream).unwrap().msg,
        Frame::Ping => panic!("unexpected ping"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_pipelined_split_and_keepalive() {
    let s = start("", "\"127.0.0.0/8\"").await;
    let mut t = TcpStream::connect(("127.0.0.1", s.sip)).await.unwrap();
    let local = t.local_addr().unwrap();
    let batch: String = (1..=3)
        .map(|i| request("OPTIONS", "sip:h@127.0.0.1", i, "TCP", local))
        .collect();
    t.write_all(batch.as_bytes()).await.unwrap();
    let mut framer = StreamFramer::new();
    let frames = read_frames(&mut t, &mut framer, 3).await;
    let mut cseqs: Vec<String> = frames
        .iter()
        .map(|f| frame_msg(f).get(Name::CSeq).unwrap().to_owned())
        .collect();
    // Three Call-IDs may be three engines: each request gets its answer on this
    // connection, in whatever order the engines finish (SIP matches them by branch).
    cseqs.sort();
    assert_eq!(cseqs, vec!["1 OPTIONS", "2 OPTIONS", "3 OPTIONS"]);

    let one = request("OPTIONS", "sip:h@127.0.0.1", 4, "TCP", local);
    for chunk in one.as_bytes().chunks(40) {
        t.write_all(chunk).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let f = read_frames(&mut t, &mut framer, 1).await;
    assert_eq!(frame_msg(&f[0]).get(Name::CSeq), Some("4 OPTIONS"));

    t.write_all(b"\r\n\r\n").await.unwrap();
    let mut pong = [0u8; 8];
    let n = timeout(Duration::from_secs(2), t.read(&mut pong))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&pong[..n], b"\r\n");
}

/// One OPTIONS over a fresh TCP connection to `to`; the response.
async fn tcp_options(to: SocketAddr) -> Message {
    let mut t = TcpStream::connect(to).await.unwrap();
    let local = t.local_addr().unwrap();
    let ruri = format!("sip:h@{to}");
    t.write_all(request("OPTIONS", &ruri, 1, "TCP", local).as_bytes())
        .await
        .unwrap();
    let mut framer = StreamFramer::new();
    let frames = read_frames(&mut t, &mut framer, 1).await;
    frame_msg(&frames[0])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_over_tcp_ipv6_beside_ipv4_on_the_same_port() {
    if let Err(e) = std::net::TcpListener::bind("[::1]:0") {
        eprintln!("SKIPPED options_over_tcp_ipv6_beside_ipv4_on_the_same_port: cannot bind TCP on [::1] here ({e})");
        return;
    }
    let s = start_with("", "\"127.0.0.0/8\", \"::1/128\"", &["127.0.0.1", "[::1]"]).await;
    let v6 = tcp_options(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, s.sip))).await;
    assert_eq!(v6.status(), Some(200), "over TCP/IPv6");
    let via = v6.get(Name::Via).unwrap();
    assert!(via.contains("SIP/2.0/TCP [::1]:"), "{via}");
    let v4 = tcp_options(SocketAddr::from(([127, 0, 0, 1], s.sip))).await;
    assert_eq!(v4.status(), Some(200), "over TCP/IPv4 on the same port");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_from_a_dropped_source_is_closed_at_accept_unanswered() {
    let s = start("action = \"drop\"", "\"127.0.0.1/32\"").await;
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut t = sock
        .connect(SocketAddr::from(([127, 0, 0, 1], s.sip)))
        .await
        .expect("the kernel completes the handshake before accept");
    let local = t.local_addr().unwrap();
    // may fail already if the close won the race
    let _ = t
        .write_all(request("OPTIONS", "sip:h@127.0.0.1", 1, "TCP", local).as_bytes())
        .await;
    let mut buf = [0u8; 1024];
    // The idle timeout is 1 s: a close well before it is the drop at accept.
    let read = timeout(Duration::from_millis(500), t.read(&mut buf))
        .await
        .expect("the connection must be closed at accept, not left open");
    if let Ok(n) = read {
        let got = String::from_utf8_lossy(&buf[..n]);
        assert_eq!(n, 0, "a dropped source must get nothing, got {got:?}");
    }
    let metrics = http_get(s.http, "/metrics").await;
    assert!(
        metrics.contains("holdless_sip_dropped_total{reason=\"acl\"} 1"),
        "{metrics}"
    );
    let ok = tcp_options(SocketAddr::from(([127, 0, 0, 1], s.sip))).await;
    assert_eq!(ok.status(), Some(200), "the allowed source is still served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_oversized_message_and_idle_connections_are_closed() {
    let s = start("", "\"127.0.0.0/8\"").await;
    let mut t = TcpStream::connect(("127.0.0.1", s.sip)).await.unwrap();
    t.write_all(b"OPTIONS sip:h@127.0.0.1 SIP/2.0\r\nContent-Length: 70000\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let n = timeout(Duration::from_secs(2), t.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "oversized message must close the connection");

    let mut idle = TcpStream::connect(("127.0.0.1", s.sip)).await.unwrap();
    let n = timeout(Duration::from_secs(3), idle.read(&mut buf))
        .await
        .expect("idle close")
        .unwrap_or(0);
    assert_eq!(n, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_rejects_with_403_or_drops() {
    let s = start("action = \"reject\"", "\"127.0.0.1/32\"").await;
    let c = udp_client("127.0.0.2:0").await;
    let req = request(
        "INVITE",
        "sip:+15550001000@127.0.0.1",
        1,
        "UDP",
        c.local_addr().unwrap(),
    );
    c.send_to(req.as_bytes(), ("127.0.0.1", s.sip))
        .await
        .unwrap();
    let resp = recv_udp(&c, Duration::from_secs(2)).await.expect("a 403");
    assert_eq!(resp.status(), Some(403));
    drop(s);

    let s = start("action = \"drop\"", "\"127.0.0.1/32\"").await;
    c.send_to(req.as_bytes(), ("127.0.0.1", s.sip))
        .await
        .unwrap();
    assert!(
        recv_udp(&c, Duration::from_millis(700)).await.is_none(),
        "drop must say nothing"
    );
    let metrics = http_get(s.http, "/metrics").await;
    assert!(
        metrics.contains("holdless_sip_dropped_total{reason=\"acl\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_guard_answers_503_with_retry_after() {
    let s = start(
        "[flood]\nmax_requests = 5\nwindow_ms = 60000\nretry_after_secs = 7",
        "\"127.0.0.0/8\"",
    )
    .await;
    let c = udp_client("127.0.0.1:0").await;
    let mut codes = Vec::new();
    for i in 1..=7 {
        let req = request(
            "OPTIONS",
            "sip:h@127.0.0.1",
            i,
            "UDP",
            c.local_addr().unwrap(),
        );
        c.send_to(req.as_bytes(), ("127.0.0.1", s.sip))
            .await
            .unwrap();
        let resp = recv_udp(&c, Duration::from_secs(2)).await.unwrap();
        if resp.status() == Some(503) {
            assert_eq!(resp.get(Name::RetryAfter), Some("7"));
        }
        codes.push(resp.status().unwrap());
    }
    assert_eq!(codes, vec![200, 200, 200, 200, 200, 503, 503]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacked_404_is_retransmitted_until_timer_h_and_ack_stops_it() {
    let s = start("", "\"127.0.0.0/8\"").await;
    let c = udp_client("127.0.0.1:0").await;
    let local = c.local_addr().unwrap();
    let invite = request("INVITE", "sip:+15559999999@127.0.0.1", 1, "UDP", local);
    c.send_to(invite.as_bytes(), ("127.0.0.1", s.sip))
        .await
        .unwrap();
    let mut finals = 0;
    // T1 = 50 ms: 404 at 0, then G at 50, 150, 350, 750, 1550, 3150; H at 3200 ms.
    while let Some(m) = recv_udp(&c, Duration::from_millis(1500)).await {
        if m.status() == Some(404) {
            finals += 1;
        }
    }
    assert!((6..=8).contains(&finals), "saw {finals} copies of the 404");

    let invite = request("INVITE", "sip:+15559999999@127.0.0.1", 2, "UDP", local);
    c.send_to(invite.as_bytes(), ("127.0.0.1", s.sip))
        .await
        .unwrap();
    let resp = recv_udp(&c, Duration::from_secs(2)).await.unwrap();
    assert_eq!(resp.status(), Some(404));
    let to = resp.get(Name::To).unwrap();
    let ack = invite
        .replace("CSeq: 2 INVITE", "CSeq: 2 ACK")
        .replace("INVITE sip:", "ACK sip:")
        .replace("To: <sip:+15559999999@127.0.0.1>", &format!("To: {to}"));
    c.send_to(ack.as_bytes(), ("127.0.0.1", s.sip))
        .await
        .unwrap();
    let mut after_ack = 0;
    while let Some(m) = recv_udp(&c, Duration::from_millis(600)).await {
        if m.status() == Some(404) {
            after_ack += 1;
        }
    }
    assert!(
        after_ack <= 1,
        "the ACK must stop retransmissions, saw {after_ack} more"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_method_max_forwards_and_garbage() {
    let s = start("", "\"127.0.0.0/8\"").await;
    let c = udp_client("127.0.0.1:0").await;
    let local = c.local_addr().unwrap();
    let req = request("FROBNICATE", "sip:h@127.0.0.1", 1, "UDP", local);
    c.send_to(req.as_bytes(), ("127.0.0.1", s.sip))
        .await
        .unwrap();
    let resp = recv_udp(&c, Duration::from_secs(2)).await.unwrap();
    assert_eq!(resp.status(), Some(501));
    assert!(resp.get(Name::Allow).unwrap().contains("INVITE"));

    let req = request("INVITE", "sip:+15550001000@127.0.0.1", 2, "UDP", local)
        .replace("Max-Forwards: 70", "Max-Forwards: 0");
    c.send_to(req.as_bytes(), ("127.0.0.1", s.sip))
        .await
        .unwrap();
    let resp = recv_udp(&c, Duration::from_secs(2)).await.unwrap();
    assert_eq!(resp.status(), Some(483));

    c.send_to(b"\x00\x01garbage that is not SIP", ("127.0.0.1", s.sip))
        .await
        .unwrap();
    c.send_to(
        b"INVITE sip:x SIP/2.0\r\nFrom: x\r\n\r\n",
        ("127.0.0.1", s.sip),
    )
    .await
    .unwrap();
    // only Timer G copies of the 483 may arrive: nothing answers the garbage
    while let Some(m) = recv_udp(&c, Duration::from_millis(300)).await {
        assert_eq!(m.status(), Some(483));
    }
    let metrics = http_get(s.http, "/metrics").await;
    assert!(
        metrics.contains("holdless_sip_dropped_total{reason=\"not_sip\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("holdless_sip_dropped_total{reason=\"no_via\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("holdless_sip_received_total{what=\"FROBNICATE\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("holdless_sip_sent_total{what=\"501\"} 1"),
        "{metrics}"
    );
}

async fn http_get(port: u16, path: &str) -> String {
    let mut t = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    t.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    timeout(Duration::from_secs(2), t.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    out
}

/// Shutdown with `calls.drain_secs`: new INVITEs get 503 at once, a call in progress goes on
/// (no BYE) while the drain lasts, then is hung up on both legs, and holdless stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_calls_in_progress_go_on_until_the_drain_deadline() {
    let callee = udp_client("127.0.0.1:0").await;
    let callee_addr = callee.local_addr().unwrap();
    let extra = format!(
        "[calls]\ndrain_secs = 2\n[[call_targets]]\nid = \"bridged\"\nname = \"Bridged\"\n\
         numbers = [\"+15550002000\"]\nbridge_to = \"sip:+15550009999@{callee_addr}\"\n"
    );
    let s = start(&extra, "\"127.0.0.0/8\"").await;
    let caller = udp_client("127.0.0.1:0").await;
    let local = caller.local_addr().unwrap();
    let to = ("127.0.0.1", s.sip);
    let sdp = "v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    let invite = request("INVITE", "sip:+15550002000@127.0.0.1", 1, "UDP", local).replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Contact: <sip:caller@{local}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        ),
    );
    caller.send_to(invite.as_bytes(), to).await.unwrap();
    // The callee answers holdless's INVITE.
    let out = loop {
        let m = recv_udp(&callee, Duration::from_secs(5))
            .await
            .expect("INVITE to the callee");
        if m.method() == Some(&holdless::sip::Method::Invite) {
            break m;
        }
    };
    let vias: String = out
        .get_all(Name::Via)
        .map(|v| format!("Via: {v}\r\n"))
        .collect();
    let answer = sdp.replace("40000", "41000");
    let ok = format!(
        "SIP/2.0 200 OK\r\n{vias}From: {}\r\nTo: {};tag=callee1\r\nCall-ID: {}\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:callee@{callee_addr}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{answer}",
        out.get(Name::From).unwrap(),
        out.get(Name::To).unwrap(),
        out.call_id().unwrap(),
        answer.len()
    );
    let hl = ("127.0.0.1", s.sip);
    callee.send_to(ok.as_bytes(), hl).await.unwrap();
    let ok = loop {
        let m = recv_udp(&caller, Duration::from_secs(5))
            .await
            .expect("200 to the caller");
        if m.status() == Some(200) {
            break m;
        }
    };
    let ack = format!(
        "ACK sip:holdless@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-ack\r\n\
         Max-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        ok.get(Name::From).unwrap(),
        ok.get(Name::To).unwrap(),
        ok.call_id().unwrap()
    );
    caller.send_to(ack.as_bytes(), to).await.unwrap();
    // Stop: a new call is refused, the one in progress goes on...
    s.stop.send(true).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let late = request("INVITE", "sip:+15550002000@127.0.0.1", 7, "UDP", local);
    caller.send_to(late.as_bytes(), to).await.unwrap();
    let refused = recv_udp(&caller, Duration::from_secs(2))
        .await
        .expect("an answer to the new INVITE");
    assert_eq!(refused.status(), Some(503), "{refused:?}");
    let quiet_until = tokio::time::Instant::now() + Duration::from_millis(800);
    while let Some(m) = recv_udp(&callee, quiet_until - tokio::time::Instant::now()).await {
        assert_ne!(
            m.method(),
            Some(&holdless::sip::Method::Bye),
            "no BYE while the drain lasts"
        );
    }
    // ...until the drain ends: BYE to both legs, then holdless stops.
    let bye = loop {
        let m = recv_udp(&callee, Duration::from_secs(5))
            .await
            .expect("BYE at the deadline");
        if m.method() == Some(&holdless::sip::Method::Bye) {
            break m;
        }
    };
    assert_eq!(bye.call_id(), out.call_id());
    let mut caller_bye = None;
    for _ in 0..30 {
        match recv_udp(&caller, Duration::from_secs(2)).await {
            Some(m) if m.method() == Some(&holdless::sip::Method::Bye) => {
                caller_bye = Some(m);
                break;
            }
            Some(_) => continue, // the 503's retransmissions (never ACKed here)
            None => break,
        }
    }
    assert!(caller_bye.is_some(), "BYE to the caller too");
    let mut s = s;
    let done = timeout(Duration::from_secs(10), &mut s.task).await;
    assert!(
        matches!(done, Ok(Ok(Ok(())))),
        "holdless stopped cleanly: {done:?}"
    );
}
