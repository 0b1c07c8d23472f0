//! SIP over TLS on real loopback sockets: holdless with a certificate from a test CA
//! answers OPTIONS and INVITEs on its TLS listener (Via transport TLS kept), refuses TLS
//! 1.1 and older by construction, requires a client certificate from the configured CA
//! when mutual TLS is on, and `check-config` names the key and file of a bad certificate.

mod api_support;
mod tls_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use api_support::{config, free_port, wait_healthy, Holdless};
use chrono::Datelike;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tls_support::{client, provider, Pki, BOTH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `msg` over a new TLS connection to 127.0.0.1:`port` and reads the first response.
async fn exchange(
    connector: &tokio_rustls::TlsConnector,
    port: u16,
    msg: &str,
) -> Result<String, String> {
    exchange_at(
        connector,
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        msg,
    )
    .await
}

/// The same to any address (the certificate is still checked for 127.0.0.1).
async fn exchange_at(
    connector: &tokio_rustls::TlsConnector,
    to: std::net::SocketAddr,
    msg: &str,
) -> Result<String, String> {
    let tcp = tokio::net::TcpStream::connect(to)
        .await
        .map_err(|e| e.to_string())?;
    let local = tcp.local_addr().unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let msg = msg.replace("LOCAL", &local.to_string());
    tls.write_all(msg.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 8192];
    let mut got = Vec::new();
    let read = async {
        loop {
            let n = tls.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err(format!("closed after {:?}", String::from_utf8_lossy(&got)));
            }
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_string();
            if text.contains("\r\n\r\n") {
                return Ok(text);
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .map_err(|_| "no answer".to_string())?
}

fn options(branch: &str) -> String {
    format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS LOCAL;branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\n\
         Call-ID: {branch}@tls\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

/// A config with a TLS listener on `tls` and `extra` lines in [sip].
fn tls_config(dir: &Path, tls: u16, extra: &str) -> PathBuf {
    let (sip, http) = (free_port(), free_port());
    let data = dir.join("data").display().to_string();
    let text = config(sip, http, &data).replace(
        "[sip]\n",
        &format!(
            "[sip]\ntls = [\"127.0.0.1:{tls}\"]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n{extra}\n",
            dir.join("server.pem").display(),
            dir.join("server.key").display()
        ),
    );
    let cfg = dir.join(format!("holdless-{tls}.toml"));
    std::fs::write(&cfg, text).unwrap();
    cfg
}

fn http_port(cfg: &Path) -> u16 {
    let text = std::fs::read_to_string(cfg).unwrap();
    let line = text.lines().find(|l| l.starts_with("listen = ")).unwrap();
    line.rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('"')
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_over_tls_answers_on_the_same_connection() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "ca");
    pki.issue("server", (2099, 1, 1));
    let tls = free_port();
    let cfg = tls_config(dir.path(), tls, "");
    let _h = Holdless::spawn(&cfg, &dir.path().join("h.log"));
    wait_healthy(http_port(&cfg)).await;
    let ca = dir.path().join("ca.pem");

    let ok = exchange(&client(&ca, None, BOTH), tls, &options("a1"))
        .await
        .unwrap();
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert!(ok.contains("Via: SIP/2.0/TLS 127.0.0.1:"), "Via kept: {ok}");
    // TLS 1.2 is accepted too.
    let v12 = client(&ca, None, &[&rustls::version::TLS12]);
    let ok = exchange(&v12, tls, &options("a2")).await.unwrap();
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    // An INVITE for a number nobody serves: 404 over the same connection.
    let invite = "INVITE sip:+15559999999@127.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/TLS LOCAL;branch=z9hG4bKinv1\r\nMax-Forwards: 70\r\n\
        From: <sip:+15551234567@127.0.0.1>;tag=9\r\nTo: <sip:+15559999999@127.0.0.1>\r\n\
        Call-ID: inv1@tls\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@LOCAL;transport=tls>\r\n\
        Content-Length: 0\r\n\r\n";
    let nf = exchange(&client(&ca, None, BOTH), tls, invite)
        .await
        .unwrap();
    assert!(nf.starts_with("SIP/2.0 404"), "{nf}");
    // A client that does not trust holdless's CA fails its handshake.
    let other = Pki::new(dir.path(), "other-ca");
    drop(other);
    let err = exchange(
        &client(&dir.path().join("other-ca.pem"), None, BOTH),
        tls,
        &options("a3"),
    )
    .await
    .unwrap_err();
    assert!(err.starts_with("handshake"), "{err}");
}

/// A TLS listener on IPv6 loopback answers as the IPv4 one does (Via with the bracketed
/// address kept), beside an IPv4 listener on the same port number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_over_tls_on_ipv6() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "ca");
    pki.issue("server", (2099, 1, 1));
    let tls = free_port();
    let cfg = tls_config(dir.path(), tls, "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(
            &format!("tls = [\"127.0.0.1:{tls}\"]"),
            &format!("tls = [\"127.0.0.1:{tls}\", \"[::1]:{tls}\"]"),
        )
        .replace(
            "allow = [\"127.0.0.0/8\"]\n",
            "allow = [\"127.0.0.0/8\", \"::1\"]\n",
        );
    assert!(text.contains("[::1]"), "{text}");
    std::fs::write(&cfg, text).unwrap();
    let _h = Holdless::spawn(&cfg, &dir.path().join("h.log"));
    wait_healthy(http_port(&cfg)).await;
    let c = client(&dir.path().join("ca.pem"), None, BOTH);
    let v6: std::net::SocketAddr = format!("[::1]:{tls}").parse().unwrap();
    let ok = exchange_at(&c, v6, &options("v6")).await.unwrap();
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert!(ok.contains("Via: SIP/2.0/TLS [::1]:"), "{ok}");
    let ok = exchange(&c, tls, &options("v4")).await.unwrap();
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_requires_a_certificate_from_the_configured_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "ca");
    pki.issue("server", (2099, 1, 1));
    let trunk = Pki::new(dir.path(), "trunk-ca");
    let trunk_id = trunk.issue("trunk", (2099, 1, 1));
    let stranger_id = pki.issue("stranger", (2099, 1, 1));
    let tls = free_port();
    let extra = format!(
        "tls_client_ca = \"{}\"",
        dir.path().join("trunk-ca.pem").display()
    );
    let cfg = tls_config(dir.path(), tls, &extra);
    let _h = Holdless::spawn(&cfg, &dir.path().join("h.log"));
    wait_healthy(http_port(&cfg)).await;
    let ca = dir.path().join("ca.pem");

    let ok = exchange(&client(&ca, Some(trunk_id), BOTH), tls, &options("m1"))
        .await
        .unwrap();
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    for (who, id) in [
        ("no certificate", None),
        ("another CA's", Some(stranger_id)),
    ] {
        let r = exchange(&client(&ca, id, BOTH), tls, &options("m2")).await;
        assert!(r.is_err(), "{who}: answered {r:?}");
    }
}

fn check_config(cfg: &Path) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_holdless"))
        .arg("check-config")
        .arg(cfg)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn check_config_names_the_key_and_file_of_bad_tls_material() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "ca");
    let cfg = tls_config(dir.path(), free_port(), "");
    let cert = dir.path().join("server.pem").display().to_string();
    let key = dir.path().join("server.key").display().to_string();

    // Missing files.
    let (ok, out) = check_config(&cfg);
    assert!(
        !ok && out.contains("sip.tls_cert") && out.contains(&cert),
        "{out}"
    );
    // Expired.
    pki.issue("server", (2021, 1, 1));
    let (ok, out) = check_config(&cfg);
    assert!(
        !ok && out.contains("sip.tls_cert") && out.contains("expired"),
        "{out}"
    );
    // Expiring within 14 days: a warning, still ok.
    let soon = chrono::Utc::now() + chrono::Duration::days(7);
    pki.issue(
        "server",
        (soon.year(), soon.month() as u8, soon.day() as u8),
    );
    let (ok, out) = check_config(&cfg);
    assert!(
        ok && out.contains("warning") && out.contains("expires in"),
        "{out}"
    );
    // A key that is not PEM.
    pki.issue("server", (2099, 1, 1));
    std::fs::write(&key, "not a key").unwrap();
    let (ok, out) = check_config(&cfg);
    assert!(
        !ok && out.contains("sip.tls_key") && out.contains(&key),
        "{out}"
    );
    // A key that does not match the certificate.
    pki.issue("other", (2099, 1, 1));
    std::fs::copy(dir.path().join("other.key"), &key).unwrap();
    let (ok, out) = check_config(&cfg);
    assert!(!ok && out.contains("sip.tls_key"), "{out}");
    // TLS listeners without a certificate.
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("tls_cert") && !l.starts_with("tls_key"))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&cfg, text).unwrap();
    let (ok, out) = check_config(&cfg);
    assert!(!ok && out.contains("sip.tls_cert"), "{out}");
}

/// A TLS server standing in for a trunk on 127.0.0.1: presents `chain`/`key`, reads one
/// request and answers it `486 Busy Here`; returns what it read (or the handshake error).
async fn busy_trunk(
    listener: tokio::net::TcpListener,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<String, String> {
    let cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(BOTH)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
    let mut tls = acceptor
        .accept(tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 8192];
    let invite = loop {
        let n = tls.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed".into());
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .map_or(0, |v| v.trim().parse().unwrap());
            if body.len() >= len {
                break head.to_string();
            }
        }
    };
    let keep = |name: &str| -> String {
        invite
            .lines()
            .filter(|l| l.starts_with(name))
            .map(|l| format!("{l}\r\n"))
            .collect()
    };
    let busy = format!(
        "SIP/2.0 486 Busy Here\r\n{}{}{}{}{}Content-Length: 0\r\n\r\n",
        keep("Via:"),
        keep("From:"),
        keep("To:").trim_end().to_owned() + ";tag=trunk\r\n",
        keep("Call-ID:"),
        keep("CSeq:")
    );
    tls.write_all(busy.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    // Keep the connection up while holdless ACKs.
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(invite)
}

/// A caller's INVITE over UDP to a call target bridged to `sip:…;transport=tls`: the final
/// response it gets, and how long it took.
async fn call_over_udp(sip: u16, id: &str) -> (u16, Duration) {
    let caller = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = caller.local_addr().unwrap();
    let sdp = "v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    let invite = format!(
        "INVITE sip:+15550002777@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{id}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:+15551234567@127.0.0.1>;tag=c1\r\nTo: <sip:+15550002777@127.0.0.1>\r\n\
         Call-ID: {id}@test\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{local}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    let t0 = std::time::Instant::now();
    caller
        .send_to(invite.as_bytes(), ("127.0.0.1", sip))
        .await
        .unwrap();
    let mut buf = vec![0u8; 8192];
    loop {
        let (n, _) = tokio::time::timeout(Duration::from_secs(40), caller.recv_from(&mut buf))
            .await
            .expect("a final response")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        let code: u16 = text
            .strip_prefix("SIP/2.0 ")
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        if code >= 200 {
            return (code, t0.elapsed());
        }
    }
}

/// holdless dials a TLS destination (`;transport=tls`): it verifies the server's
/// certificate against `sip.tls_ca` (Via transport TLS on the way out) and relays the
/// trunk's answer; a certificate from another CA is a failed leg at once, logged, never a
/// fallback to plain TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_tls_is_verified_and_never_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "ca");
    pki.issue("server", (2099, 1, 1));
    let trusted = pki.issue("trunk", (2099, 1, 1));
    let rogue = Pki::new(dir.path(), "rogue-ca").issue("rogue", (2099, 1, 1));
    let trunk = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tport = trunk.local_addr().unwrap().port();
    let sip = free_port();
    let http = free_port();
    let data = dir.path().join("data").display().to_string();
    let text = config(sip, http, &data).replace(
        "[sip]\n",
        &format!(
            "[sip]\ntls_cert = \"{}\"\ntls_key = \"{}\"\ntls_ca = \"{}\"\n",
            dir.path().join("server.pem").display(),
            dir.path().join("server.key").display(),
            dir.path().join("ca.pem").display()
        ),
    ) + &format!(
        "\n[[call_targets]]\nid = \"bridged\"\nname = \"Bridged\"\nnumbers = [\"+15550002777\"]\n\
         bridge_to = \"sip:+15550009999@127.0.0.1:{tport};transport=tls\"\n"
    );
    let cfg = dir.path().join("out.toml");
    std::fs::write(&cfg, text).unwrap();
    let log = dir.path().join("h.log");
    let (ok, out) = check_config(&cfg);
    assert!(ok, "{out}");
    let _h = Holdless::spawn(&cfg, &log);
    wait_healthy(http).await;

    let server = tokio::spawn(busy_trunk(trunk, trusted.0, trusted.1));
    let (code, _) = call_over_udp(sip, "trusted").await;
    let invite = server.await.unwrap().expect("the trunk read an INVITE");
    assert!(
        invite.starts_with("INVITE sip:+15550009999@127.0.0.1:"),
        "{invite}"
    );
    assert!(invite.contains("Via: SIP/2.0/TLS "), "{invite}");
    assert!(
        invite.contains(";transport=tls>"),
        "Contact on TLS: {invite}"
    );
    assert_eq!(code, 486, "the trunk's answer relayed");

    // The same trunk with a certificate holdless does not trust.
    let trunk = tokio::net::TcpListener::bind(("127.0.0.1", tport))
        .await
        .unwrap();
    let server = tokio::spawn(busy_trunk(trunk, rogue.0, rogue.1));
    let (code, took) = call_over_udp(sip, "rogue").await;
    assert!(
        server.await.unwrap().is_err(),
        "no request over a refused handshake"
    );
    assert!(code >= 400, "a failed leg: {code}");
    assert!(
        took < Duration::from_secs(10),
        "failed at once, not at Timer B: {took:?}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("outbound TLS failed"), "logged: {text}");
}
