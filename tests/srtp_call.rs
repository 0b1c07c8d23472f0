//! SRTP on one leg, end to end on real loopback sockets: a caller reaches holdless over
//! TLS with an RTP/SAVP offer (SDES), the call target bridges it to a contact center that
//! speaks plain RTP over UDP. holdless answers the caller with a key of its own and offers
//! the contact center plain RTP/AVP; the audio each side sends arrives at the other intact
//! (SRTP decrypted toward the contact center, encrypted toward the caller, payloads
//! compared packet by packet). A call target with `srtp = "required"` refuses a plain
//! offer with 488.

mod api_support;
mod tls_support;

use std::net::SocketAddr;
use std::time::Duration;

use api_support::{config, free_port, wait_healthy, Holdless};
use holdless::media::sdes::{Crypto, Suite};
use holdless::media::srtp::SrtpLeg;
use rustls::pki_types::ServerName;
use tls_support::{client, Pki, BOTH};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;

/// Packets each side sends.
const PACKETS: u16 = 50;

/// Reads one SIP message from a stream (Content-Length framing).
async fn read_message<S: AsyncRead + Unpin>(s: &mut S, pending: &mut Vec<u8>) -> String {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).to_string();
            let len: usize = header(&head, "Content-Length").map_or(0, |v| v.parse().unwrap());
            if pending.len() >= end + 4 + len {
                let msg: Vec<u8> = pending.drain(..end + 4 + len).collect();
                return String::from_utf8(msg).unwrap();
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("a SIP message within 10 s")
            .unwrap();
        assert!(n > 0, "connection closed");
        pending.extend_from_slice(&buf[..n]);
    }
}

/// The value of the first header `name` in `msg`.
fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn status(msg: &str) -> u16 {
    msg.strip_prefix("SIP/2.0 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn body(msg: &str) -> &str {
    msg.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// The audio address, profile and first `a=crypto` of an SDP body.
fn media_of(sdp: &str) -> (SocketAddr, String, Option<Crypto>) {
    let ip = sdp
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))
        .unwrap()
        .trim();
    let m: Vec<&str> = sdp
        .lines()
        .find(|l| l.starts_with("m=audio "))
        .unwrap()
        .split_whitespace()
        .collect();
    let crypto = sdp
        .lines()
        .find_map(|l| l.strip_prefix("a=crypto:"))
        .map(|v| Crypto::parse(v.trim()).unwrap());
    (
        format!("{ip}:{}", m[1]).parse().unwrap(),
        m[2].to_owned(),
        crypto,
    )
}

fn voice(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    // A payload that differs per packet, so a lost, stale or garbled one is seen.
    p.extend((0..160u16).map(|i| (i.wrapping_mul(7) ^ seq.wrapping_mul(31)) as u8));
    p
}

fn invite(number: &str, local: SocketAddr, sdp: &str) -> String {
    format!(
        "INVITE sips:{number}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS {local};branch=z9hG4bKsrtp{number}\r\n\
         Max-Forwards: 70\r\nFrom: <sips:+15551234567@127.0.0.1>;tag=c1\r\nTo: <sips:{number}@127.0.0.1>\r\n\
         Call-ID: srtp-{number}@test\r\nCSeq: 1 INVITE\r\nContact: <sips:caller@{local}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

fn offer(rtp: u16, crypto: Option<&Crypto>) -> String {
    let proto = if crypto.is_some() {
        "RTP/SAVP"
    } else {
        "RTP/AVP"
    };
    let mut s = format!(
        "v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {rtp} {proto} 0\r\na=rtpmap:0 PCMU/8000\r\n"
    );
    if let Some(c) = crypto {
        s.push_str(&format!("a=crypto:{}\r\n", c.to_value()));
    }
    s
}

/// The contact center's side of the call: answers the INVITE on `sip` with plain RTP on
/// `rtp`, and returns the INVITE and where holdless sends it RTP from.
async fn contact_center_answers(sip: &UdpSocket, rtp: u16) -> (String, SocketAddr) {
    let mut buf = vec![0u8; 8192];
    let (n, from) = tokio::time::timeout(Duration::from_secs(10), sip.recv_from(&mut buf))
        .await
        .expect("holdless's INVITE")
        .unwrap();
    let invite = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(invite.starts_with("INVITE "), "{invite}");
    let keep = |name: &str| -> String {
        invite
            .lines()
            .filter(|l| l.starts_with(&format!("{name}:")))
            .map(|l| format!("{l}\r\n"))
            .collect()
    };
    let sdp = format!(
        "v=0\r\no=cc 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {rtp} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    );
    let ok = format!(
        "SIP/2.0 200 OK\r\n{}{}{};tag=cc\r\n{}{}Contact: <sip:cc@{}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        keep("Via"),
        keep("From"),
        keep("To").trim_end(),
        keep("Call-ID"),
        keep("CSeq"),
        sip.local_addr().unwrap(),
        sdp.len()
    );
    sip.send_to(ok.as_bytes(), from).await.unwrap();
    (invite, from)
}

/// Receives up to `n` datagrams on `sock` (stopping after 2 s of silence).
async fn receive(sock: &UdpSocket, n: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 2048];
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut buf)).await {
            Ok(Ok((len, _))) => got.push(buf[..len].to_vec()),
            _ => break,
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_srtp_caller_over_tls_talks_to_a_plain_contact_center_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "ca");
    pki.issue("server", (2099, 1, 1));
    let (sip, http, tls) = (free_port(), free_port(), free_port());
    let cc_sip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let cc_rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let cc_port = cc_sip.local_addr().unwrap().port();
    let data = dir.path().join("data").display().to_string();
    let text = config(sip, http, &data).replace(
        "[sip]\n",
        &format!(
            "[sip]\ntls = [\"127.0.0.1:{tls}\"]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            dir.path().join("server.pem").display(),
            dir.path().join("server.key").display(),
        ),
    ) + &format!(
        "\n[[call_targets]]\nid = \"secure-in\"\nname = \"Secure in\"\nnumbers = [\"+15550002777\"]\n\
         bridge_to = \"sip:+15550009999@127.0.0.1:{cc_port}\"\n\
         \n[[call_targets]]\nid = \"srtp-only\"\nname = \"SRTP only\"\nnumbers = [\"+15550002778\"]\n\
         bridge_to = \"sip:+15550009998@127.0.0.1:{cc_port}\"\nsrtp = \"required\"\n"
    );
    let cfg = dir.path().join("srtp.toml");
    std::fs::write(&cfg, text).unwrap();
    let log = dir.path().join("h.log");
    // Every log line holdless can write, to show no key material is among them.
    let _h = Holdless::spawn_logging(&cfg, &log, "trace");
    wait_healthy(http).await;

    let connector = client(&dir.path().join("ca.pem"), None, BOTH);
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", tls))
        .await
        .unwrap();
    let local = tcp.local_addr().unwrap();
    let mut conn = connector
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    let mut pending = Vec::new();

    // A plain offer to the call target that requires SRTP: 488, nothing dialled.
    let caller_rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let caller_port = caller_rtp.local_addr().unwrap().port();
    conn.write_all(invite("+15550002778", local, &offer(caller_port, None)).as_bytes())
        .await
        .unwrap();
    let refused = loop {
        let m = read_message(&mut conn, &mut pending).await;
        if status(&m) >= 200 {
            break m;
        }
    };
    assert_eq!(status(&refused), 488, "{refused}");

    // The SRTP call.
    let caller_key = Crypto::fresh(1, Suite::AesCm128HmacSha1_80).unwrap();
    let cc_rtp_port = cc_rtp.local_addr().unwrap().port();
    conn.write_all(
        invite(
            "+15550002777",
            local,
            &offer(caller_port, Some(&caller_key)),
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let (cc_invite, _) = contact_center_answers(&cc_sip, cc_rtp_port).await;
    let (toward_cc, cc_proto, cc_crypto) = media_of(body(&cc_invite));
    assert_eq!(cc_proto, "RTP/AVP", "plain toward the contact center");
    assert!(cc_crypto.is_none(), "no key toward the contact center");
    assert!(!cc_invite.contains(&caller_key.to_value()[2..30]));
    let ok = loop {
        let m = read_message(&mut conn, &mut pending).await;
        if status(&m) >= 200 {
            break m;
        }
    };
    assert_eq!(status(&ok), 200, "{ok}");
    let (toward_caller, proto, holdless_key) = media_of(body(&ok));
    assert_eq!(proto, "RTP/SAVP");
    let holdless_key = holdless_key.expect("holdless's key in its answer");
    assert_ne!(holdless_key.key, caller_key.key);
    let to_tag = header(&ok, "To").unwrap().to_owned();
    let ack = format!(
        "ACK sips:+15550002777@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS {local};branch=z9hG4bKsrtpack\r\n\
         Max-Forwards: 70\r\nFrom: <sips:+15551234567@127.0.0.1>;tag=c1\r\nTo: {to_tag}\r\n\
         Call-ID: srtp-+15550002777@test\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    conn.write_all(ack.as_bytes()).await.unwrap();

    // Caller → contact center: SRTP in, the same RTP out.
    let mut phone = SrtpLeg::new(&holdless_key, &caller_key).unwrap();
    let said: Vec<Vec<u8>> = (1..=PACKETS).map(|s| voice(s, 0xc0ffee)).collect();
    for p in &said {
        let wire = phone.protect_rtp(p).unwrap();
        caller_rtp.send_to(&wire, toward_caller).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let heard = receive(&cc_rtp, said.len()).await;
    assert_eq!(
        heard.len(),
        said.len(),
        "every packet reached the contact center"
    );
    for (h, s) in heard.iter().zip(&said) {
        assert_eq!(&h[12..], &s[12..], "the caller's audio, decrypted");
    }

    // Contact center → caller: plain in, SRTP out that the caller decrypts.
    let answered: Vec<Vec<u8>> = (1..=PACKETS).map(|s| voice(s, 0xcc)).collect();
    for p in &answered {
        cc_rtp.send_to(p, toward_cc).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let wire = receive(&caller_rtp, answered.len()).await;
    assert_eq!(
        wire.len(),
        answered.len(),
        "every packet reached the caller"
    );
    for (w, a) in wire.iter().zip(&answered) {
        assert_eq!(w.len(), a.len() + 10, "SRTP with an 80-bit tag");
        let plain = phone
            .unprotect_rtp(w)
            .expect("authentic SRTP from holdless");
        assert_eq!(
            &plain[12..],
            &a[12..],
            "the contact center's audio, encrypted"
        );
    }

    let bye = format!(
        "BYE sips:+15550002777@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS {local};branch=z9hG4bKsrtpbye\r\n\
         Max-Forwards: 70\r\nFrom: <sips:+15551234567@127.0.0.1>;tag=c1\r\nTo: {to_tag}\r\n\
         Call-ID: srtp-+15550002777@test\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    conn.write_all(bye.as_bytes()).await.unwrap();
    let done = read_message(&mut conn, &mut pending).await;
    assert_eq!(status(&done), 200, "{done}");

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("srtp-+15550002777@test"),
        "the call is in the trace log"
    );
    for key in [&caller_key, &holdless_key] {
        let inline = key.to_value();
        let material = inline.rsplit("inline:").next().unwrap();
        assert!(!text.contains(material), "key material in the log");
    }
}
