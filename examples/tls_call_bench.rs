//! Call setup over TLS beside plain TCP, in one run against one holdless (issue 11's
//! benchmark). SIPp as packaged here has no TLS, so this is the caller: it starts the
//! release `holdless` with a test certificate (rcgen), a contact center that answers at once
//! (UDP, in this process) and a call target bridged to it, then for each mode places as
//! many calls as it can for `--secs` over `--conns` connections at once: INVITE (PCMA
//! offer), 200, ACK, BYE, 200. Modes: `tcp` and `tls` on long-lived connections (a trunk),
//! `tcp-new` and `tls-new` with a new connection (and, for TLS, a full handshake) per call.
//! Prints per mode: calls, calls/s, holdless CPU µs per call, INVITE→200 p50/p99.
//!
//! ```text
//! cargo build --release && cargo run --release --example tls_call_bench -- [--secs 10] [--conns 8] [--bin PATH]
//! ```
//! Loopback only; holdless is stopped (SIGKILL) at the end.

use std::io::Write as _;
use std::net::{SocketAddr, UdpSocket as StdUdp};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().ok().expect("a value"))
        .unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// CPU time (user + system) of process `pid`, in seconds.
fn cpu_of(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// The contact center: answers every INVITE 200 with PCMA, every BYE 200.
fn contact_center(sock: StdUdp) {
    let mut buf = vec![0u8; 65536];
    let me = sock.local_addr().expect("addr");
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            return;
        };
        let msg = String::from_utf8_lossy(&buf[..n]).to_string();
        let keep = |name: &str| -> String {
            msg.lines()
                .filter(|l| l.starts_with(&format!("{name}:")))
                .map(|l| format!("{l}\r\n"))
                .collect()
        };
        let (body, ctype) = if msg.starts_with("INVITE ") {
            let sdp = "v=0\r\no=cc 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                       m=audio 7000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
            (sdp, "Content-Type: application/sdp\r\n")
        } else if msg.starts_with("BYE ") {
            ("", "")
        } else {
            continue;
        };
        let to = keep("To");
        let to = if to.contains("tag=") {
            to
        } else {
            format!("{};tag=cc\r\n", to.trim_end())
        };
        let resp = format!(
            "SIP/2.0 200 OK\r\n{}{}{to}{}{}Contact: <sip:cc@{me}>\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
            keep("Via"),
            keep("From"),
            keep("Call-ID"),
            keep("CSeq"),
            body.len()
        );
        let _ = sock.send_to(resp.as_bytes(), from);
    }
}

/// Reads one SIP message (Content-Length framing).
async fn read_msg<S: AsyncRead + Unpin>(s: &mut S, pending: &mut Vec<u8>) -> Option<String> {
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if pending.len() >= end + 4 + len {
                let m: Vec<u8> = pending.drain(..end + 4 + len).collect();
                return Some(String::from_utf8_lossy(&m).to_string());
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        pending.extend_from_slice(&buf[..n]);
    }
}

/// Reads until a final response; its status.
async fn final_status<S: AsyncRead + Unpin>(
    s: &mut S,
    pending: &mut Vec<u8>,
) -> Option<(u16, String)> {
    loop {
        let m = read_msg(s, pending).await?;
        let code: u16 = m.get(8..11)?.parse().ok()?;
        if code >= 200 {
            return Some((code, m));
        }
    }
}

/// One call on `s`: INVITE → 200, ACK, BYE → 200. The INVITE→200 time, or `None`.
async fn call<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    pending: &mut Vec<u8>,
    local: SocketAddr,
    transport: &str,
    id: &str,
) -> Option<Duration> {
    let sdp = "v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=audio 7002 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
    let common = |method: &str, cseq: u32, branch: &str, to: &str| {
        format!(
            "{method} sip:+15550004444@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{transport} {local};branch=z9hG4bK{branch}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:+15551230000@127.0.0.1>;tag={id}\r\nTo: {to}\r\n\
             Call-ID: {id}@bench\r\nCSeq: {cseq} {method}\r\n"
        )
    };
    let t0 = Instant::now();
    let invite = format!(
        "{}Contact: <sip:caller@{local};transport={}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        common("INVITE", 1, &format!("{id}i"), "<sip:+15550004444@127.0.0.1>"),
        transport.to_ascii_lowercase(),
        sdp.len()
    );
    s.write_all(invite.as_bytes()).await.ok()?;
    let (code, ok) = final_status(s, pending).await?;
    let setup = t0.elapsed();
    if code != 200 {
        return None;
    }
    let to = ok
        .lines()
        .find_map(|l| l.strip_prefix("To:"))
        .map(str::trim)?
        .to_owned();
    let ack = common("ACK", 1, &format!("{id}a"), &to) + "Content-Length: 0\r\n\r\n";
    let bye = common("BYE", 2, &format!("{id}b"), &to) + "Content-Length: 0\r\n\r\n";
    s.write_all(format!("{ack}{bye}").as_bytes()).await.ok()?;
    let (code, _) = final_status(s, pending).await?;
    (code == 200).then_some(setup)
}

/// Places calls for `secs` on one connection (or a new one per call); setup times.
async fn worker(
    tls: Option<tokio_rustls::TlsConnector>,
    port: u16,
    fresh: bool,
    secs: f64,
    w: usize,
) -> (Vec<Duration>, u64) {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let (mut times, mut failed, mut k) = (Vec::new(), 0u64, 0u64);
    let name = ServerName::try_from("127.0.0.1").expect("name");
    'outer: while Instant::now() < end {
        let Ok(tcp) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
            failed += 1;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().expect("local");
        let mut pending = Vec::new();
        macro_rules! run_calls {
            ($s:expr, $t:expr) => {{
                loop {
                    k += 1;
                    let id = format!("w{w}c{k}{}", $t);
                    match call($s, &mut pending, local, $t, &id).await {
                        Some(d) => times.push(d),
                        None => {
                            failed += 1;
                            continue 'outer;
                        }
                    }
                    if fresh || Instant::now() >= end {
                        continue 'outer;
                    }
                }
            }};
        }
        match &tls {
            Some(c) => match c.connect(name.clone(), tcp).await {
                Ok(mut s) => run_calls!(&mut s, "TLS"),
                Err(_) => failed += 1,
            },
            None => {
                let mut s = tcp;
                run_calls!(&mut s, "TCP")
            }
        }
    }
    (times, failed)
}

fn main() {
    let secs: f64 = arg("--secs", 10.0);
    let conns: usize = arg("--conns", 8);
    let exe = std::env::current_exe().expect("exe");
    let default_bin = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("holdless"))
        .expect("bin");
    let bin: String = arg("--bin", default_bin.display().to_string());
    let dir = tempfile::tempdir().expect("tempdir");

    // A CA and a certificate for 127.0.0.1.
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().expect("k"))
        .expect("ca");
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("leaf");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = leaf.signed_by(&key, &ca).expect("signed");
    std::fs::write(dir.path().join("server.pem"), cert.pem()).expect("write");
    std::fs::write(dir.path().join("server.key"), key.serialize_pem()).expect("write");

    let cc = StdUdp::bind("127.0.0.1:0").expect("cc");
    let cc_port = cc.local_addr().expect("addr").port();
    std::thread::spawn(move || contact_center(cc));
    let (sip, tls, http) = (free_port(), free_port(), free_port());
    let cfg = dir.path().join("bench.toml");
    let data = dir.path().join("data");
    let mut f = std::fs::File::create(&cfg).expect("cfg");
    write!(
        f,
        "[sip]\nudp = [\"127.0.0.1:{sip}\"]\ntcp = [\"127.0.0.1:{sip}\"]\ntls = [\"127.0.0.1:{tls}\"]\n\
         tls_cert = \"{}\"\ntls_key = \"{}\"\n[http]\nlisten = \"127.0.0.1:{http}\"\n\
         [store]\ndata_dir = \"{}\"\n[acl]\nallow = [\"127.0.0.0/8\"]\n[egress]\nallow = [\"127.0.0.0/8\"]\n\
         [flood]\nmax_requests = 100000000\n[calls]\ndial_callbacks = false\nmax_calls = 100000\n\
         [media]\nport_min = 40000\nport_max = 59999\n\
         [[call_targets]]\nid = \"bench\"\nname = \"Bench\"\nnumbers = [\"+15550004444\"]\n\
         bridge_to = \"sip:+15550009999@127.0.0.1:{cc_port}\"\n",
        dir.path().join("server.pem").display(),
        dir.path().join("server.key").display(),
        data.display()
    )
    .expect("write cfg");
    let mut child = std::process::Command::new(&bin)
        .args(["run", "--config"])
        .arg(&cfg)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{bin}: {e}"));
    let pid = child.id();
    for _ in 0..150 {
        if std::net::TcpStream::connect(("127.0.0.1", tls)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.der().to_vec()))
        .expect("root");
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("# {conns} connections at once, {secs} s per mode; holdless pid {pid}");
    for (mode, port, use_tls, fresh) in [
        ("tcp", sip, false, false),
        ("tls", tls, true, false),
        ("tcp-new", sip, false, true),
        ("tls-new", tls, true, true),
    ] {
        std::thread::sleep(Duration::from_secs(2));
        let c0 = cpu_of(pid);
        let t0 = Instant::now();
        let results = rt.block_on(async {
            let tasks: Vec<_> = (0..conns)
                .map(|w| {
                    let c = use_tls.then(|| connector.clone());
                    tokio::spawn(worker(c, port, fresh, secs, w))
                })
                .collect();
            let mut all = Vec::new();
            for t in tasks {
                all.push(t.await.expect("task"));
            }
            all
        });
        let wall = t0.elapsed().as_secs_f64();
        let cpu = cpu_of(pid) - c0;
        let mut times: Vec<Duration> = results.iter().flat_map(|r| r.0.clone()).collect();
        let failed: u64 = results.iter().map(|r| r.1).sum();
        times.sort_unstable();
        let q = |p: f64| {
            times
                .get(((times.len() as f64 * p) as usize).min(times.len().saturating_sub(1)))
                .map_or(0.0, |d| d.as_secs_f64() * 1e3)
        };
        let n = times.len();
        println!(
            "{mode:8} calls={n} failed={failed} calls_per_s={:.0} holdless_cpu_us_per_call={:.0} setup_p50_ms={:.2} setup_p99_ms={:.2}",
            n as f64 / wall,
            if n > 0 { cpu * 1e6 / n as f64 } else { 0.0 },
            q(0.5),
            q(0.99)
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}
