//! A bridged call through the running server over real loopback sockets (SIP and RTP), then
//! the per-side RTP totals on /metrics: packets relayed, bytes, loss and jitter.

use std::net::SocketAddr;
use std::time::Duration;

use holdless::config::Config;
use holdless::media::rtp::build_rtp;
use holdless::sip::parse::{parse, Framing};
use holdless::sip::{Message, Method, Name};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::time::timeout;

/// Bound on waiting for anything, so a broken server fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(5);

fn free_port() -> u16 {
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

async fn http_get(port: u16, path: &str) -> String {
    let mut t = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    t.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    timeout(WAIT, t.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    out
}

/// The next SIP message on `sock` satisfying `want` (others are skipped: 100, ACK...).
async fn recv_sip(sock: &UdpSocket, want: impl Fn(&Message) -> bool) -> Message {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, _) = timeout(WAIT, sock.recv_from(&mut buf))
            .await
            .expect("no SIP message came")
            .unwrap();
        let msg = parse(&buf[..n], Framing::Datagram)
            .expect("holdless sent SIP")
            .msg;
        if want(&msg) {
            return msg;
        }
    }
}

/// `n` RTP packets arrive on `sock`.
async fn recv_rtp(sock: &UdpSocket, n: usize) {
    let mut buf = vec![0u8; 2048];
    for _ in 0..n {
        timeout(WAIT, sock.recv_from(&mut buf))
            .await
            .expect("RTP not relayed")
            .unwrap();
    }
}

fn sdp(addr: SocketAddr) -> String {
    format!(
        "v=0\r\no=ua 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n",
        addr.port()
    )
}

/// holdless's RTP address in an SDP body.
fn media_addr(m: &Message) -> SocketAddr {
    let body = std::str::from_utf8(&m.body).unwrap();
    let port = body
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split(' ').next())
        .and_then(|p| p.parse::<u16>().ok())
        .expect("m=audio port");
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The 200 a UA sends to `req` (adding `tag` when the To has none).
fn ok_for(req: &Message, tag: &str, contact: SocketAddr, body: &str) -> String {
    let vias: String = req
        .get_all(Name::Via)
        .map(|v| format!("Via: {v}\r\n"))
        .collect();
    let to = req.get(Name::To).unwrap();
    let to = if to.contains(";tag=") {
        to.to_owned()
    } else {
        format!("{to};tag={tag}")
    };
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "SIP/2.0 200 OK\r\n{vias}From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <sip:ua@{contact}>\r\n\
         {ct}Content-Length: {}\r\n\r\n{body}",
        req.get(Name::From).unwrap(),
        req.call_id().unwrap(),
        req.get(Name::CSeq).unwrap(),
        body.len()
    )
}

/// A request in the caller's dialog, from what holdless's 200 says.
fn caller_request(method: &str, cseq: u32, ok: &Message, caller: SocketAddr) -> String {
    format!(
        "{method} sip:holdless@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {caller};branch=z9hG4bK{method}{cseq}\r\n\
         Max-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
        ok.get(Name::From).unwrap(),
        ok.get(Name::To).unwrap(),
        ok.call_id().unwrap()
    )
}

/// holdless running through `serve` on free loopback ports, bridging `billing`
/// (+15550001000) to `callee`, media ports `port_min..port_min+99`.
struct Server {
    sip: SocketAddr,
    http: u16,
    stop: watch::Sender<bool>,
    running: tokio::task::JoinHandle<Result<(), holdless::runtime::RuntimeError>>,
    _dir: tempfile::TempDir,
}

async fn start(callee: SocketAddr, port_min: u16) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let (sip, http) = (free_port(), free_port());
    let text = format!(
        r#"
[sip]
udp = ["127.0.0.1:{sip}"]
[sip.timers]
t1_ms = 50
[http]
listen = "127.0.0.1:{http}"
[store]
data_dir = "{dir}"
[acl]
allow = ["127.0.0.0/8"]
[egress]
allow = ["127.0.0.0/8"]
[media]
address = "127.0.0.1"
port_min = {port_min}
port_max = {port_max}
[[call_targets]]
id = "billing"
name = "Billing"
numbers = ["+15550001000"]
bridge_to = "sip:+15550009999@{callee}"
"#,
        dir = dir.path().display(),
        port_max = port_min + 99,
    );
    let cfg = Config::parse(&text).unwrap_or_else(|e| panic!("{e:?}"));
    let (stop, rx) = watch::channel(false);
    let running = tokio::spawn(holdless::runtime::serve(cfg, rx));
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", http)).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Server {
        sip: ([127, 0, 0, 1], sip).into(),
        http,
        stop,
        running,
        _dir: dir,
    }
}

/// The caller's INVITE for +15550001000 with this Call-ID, From tag and SDP offer.
fn invite(call_id: &str, tag: &str, caller: SocketAddr, offer: &str) -> String {
    format!(
        "INVITE sip:+15550001000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {caller};branch=z9hG4bK{tag}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:+15557654321@127.0.0.1>;tag={tag}\r\nTo: <sip:+15550001000@127.0.0.1>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{caller}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}",
        offer.len()
    )
}

/// The value of one sample line of the metrics text.
fn sample(metrics: &str, line: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(line)?.strip_prefix(' ')?.parse().ok())
}

/// Ten caller packets with two sequence numbers missing and five callee packets, sent back
/// to back while their timestamps step 20 ms: after the BYE /metrics shows what each side
/// sent (packets relayed, bytes, lost) and one jitter observation per side.
#[tokio::test]
async fn a_bridged_call_reports_rtp_bytes_loss_and_jitter_per_side() {
    let callee_sip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let caller_sip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let caller_rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let callee_rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (callee_addr, caller_addr) = (
        callee_sip.local_addr().unwrap(),
        caller_sip.local_addr().unwrap(),
    );
    let hl = start(callee_addr, 44600).await;
    let (server, http) = (hl.sip, hl.http);

    let offer = sdp(caller_rtp.local_addr().unwrap());
    let invite = invite("metrics-1@test", "a1", caller_addr, &offer);
    caller_sip.send_to(invite.as_bytes(), server).await.unwrap();
    let b_inv = recv_sip(&callee_sip, |m| m.method() == Some(&Method::Invite)).await;
    let to_callee_side = media_addr(&b_inv);
    let answer = sdp(callee_rtp.local_addr().unwrap());
    let ok_b = ok_for(&b_inv, "cc1", callee_addr, &answer);
    callee_sip.send_to(ok_b.as_bytes(), server).await.unwrap();
    let ok = recv_sip(&caller_sip, |m| m.status() == Some(200)).await;
    let to_caller_side = media_addr(&ok);
    let ack = caller_request("ACK", 1, &ok, caller_addr);
    caller_sip.send_to(ack.as_bytes(), server).await.unwrap();

    let payload = [0xD5u8; 160];
    let caller_seqs: Vec<u16> = (0..12).filter(|s| *s != 4 && *s != 7).collect();
    for &seq in &caller_seqs {
        let p = build_rtp(8, seq, u32::from(seq) * 160, 0xCA11, &payload);
        caller_rtp.send_to(&p, to_caller_side).await.unwrap();
    }
    recv_rtp(&callee_rtp, caller_seqs.len()).await;
    for seq in 100..105u16 {
        let p = build_rtp(8, seq, u32::from(seq) * 160, 0xCA1E, &payload);
        callee_rtp.send_to(&p, to_callee_side).await.unwrap();
    }
    recv_rtp(&caller_rtp, 5).await;

    let bye = caller_request("BYE", 2, &ok, caller_addr);
    caller_sip.send_to(bye.as_bytes(), server).await.unwrap();
    let b_bye = recv_sip(&callee_sip, |m| m.method() == Some(&Method::Bye)).await;
    let ok_bye = ok_for(&b_bye, "cc1", callee_addr, "");
    callee_sip.send_to(ok_bye.as_bytes(), server).await.unwrap();

    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = http_get(http, "/metrics").await;
        if metrics.contains("holdless_rtp_bytes_total") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let get = |line: &str| sample(&metrics, line).unwrap_or_else(|| panic!("{line} in {metrics}"));
    // 12 + 160 bytes a packet.
    assert_eq!(get("holdless_rtp_bytes_total{from=\"caller\"}"), 1720.0);
    assert_eq!(get("holdless_rtp_bytes_total{from=\"callee\"}"), 860.0);
    assert_eq!(
        get("holdless_rtp_relayed_packets_total{from=\"caller\"}"),
        10.0
    );
    assert_eq!(
        get("holdless_rtp_relayed_packets_total{from=\"callee\"}"),
        5.0
    );
    assert_eq!(get("holdless_rtp_lost_packets_total{from=\"caller\"}"), 2.0);
    assert_eq!(get("holdless_rtp_lost_packets_total{from=\"callee\"}"), 0.0);
    for from in ["caller", "callee"] {
        let count = get(&format!(
            "holdless_rtp_jitter_seconds_count{{from=\"{from}\"}}"
        ));
        assert_eq!(count, 1.0, "one observation per side and call");
        let inf = get(&format!(
            "holdless_rtp_jitter_seconds_bucket{{from=\"{from}\",le=\"+Inf\"}}"
        ));
        assert_eq!(inf, 1.0);
        // Timestamps step 20 ms while the packets arrive together: clearly not zero.
        let sum = get(&format!(
            "holdless_rtp_jitter_seconds_sum{{from=\"{from}\"}}"
        ));
        assert!(sum > 0.001, "{from} jitter {sum}");
    }
    // The relay's own latency, sampled (a media thread's first forwarded packet always is):
    // some samples, all in the histogram, each far under a second on loopback.
    let count = get("holdless_rtp_relay_latency_seconds_count");
    assert!(count >= 1.0, "relay latency sampled: {metrics}");
    assert_eq!(
        get("holdless_rtp_relay_latency_seconds_bucket{le=\"+Inf\"}"),
        count
    );
    let sum = get("holdless_rtp_relay_latency_seconds_sum");
    assert!(
        sum > 0.0 && sum < count,
        "latency sum {sum} for {count} samples"
    );
    let _ = hl.stop.send(true);
}

/// SIGTERM with a call up: holdless ends it with BYE on both legs, waits for their 200s and
/// stops; nothing is left for the peers to time out.
#[tokio::test]
async fn shutdown_hangs_up_calls_in_progress_on_both_legs() {
    let callee_sip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let caller_sip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (callee_addr, caller_addr) = (
        callee_sip.local_addr().unwrap(),
        caller_sip.local_addr().unwrap(),
    );
    let hl = start(callee_addr, 44700).await;
    let server = hl.sip;
    let offer = sdp("127.0.0.1:40010".parse().unwrap());
    let invite = invite("shutdown-1@test", "a9", caller_addr, &offer);
    caller_sip.send_to(invite.as_bytes(), server).await.unwrap();
    let b_inv = recv_sip(&callee_sip, |m| m.method() == Some(&Method::Invite)).await;
    let answer = sdp("127.0.0.1:40020".parse().unwrap());
    let ok_b = ok_for(&b_inv, "cc9", callee_addr, &answer);
    callee_sip.send_to(ok_b.as_bytes(), server).await.unwrap();
    let ok = recv_sip(&caller_sip, |m| m.status() == Some(200)).await;
    let ack = caller_request("ACK", 1, &ok, caller_addr);
    caller_sip.send_to(ack.as_bytes(), server).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    hl.stop.send(true).unwrap();
    let bye_a = recv_sip(&caller_sip, |m| m.method() == Some(&Method::Bye)).await;
    assert_eq!(bye_a.call_id(), Some("shutdown-1@test"));
    let bye_b = recv_sip(&callee_sip, |m| m.method() == Some(&Method::Bye)).await;
    assert_eq!(bye_b.call_id(), b_inv.call_id());
    let ok_a = ok_for(&bye_a, "x", caller_addr, "");
    caller_sip.send_to(ok_a.as_bytes(), server).await.unwrap();
    let ok_b = ok_for(&bye_b, "x", callee_addr, "");
    callee_sip.send_to(ok_b.as_bytes(), server).await.unwrap();
    let done = timeout(WAIT, hl.running).await.expect("holdless stopped");
    assert!(matches!(done, Ok(Ok(()))), "{done:?}");
}
