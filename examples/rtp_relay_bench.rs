//! Loopback benchmark of holdless's RTP relay (run by `sip-tests/load/rtp-relay-bench.sh`).
//!
//! ```text
//! rtp_relay_bench relay --calls N --secs T [--threads M] --plan FILE [--ep-base PORT] [--transcode] [--srtp caller|both]
//! rtp_relay_bench gen   --plan FILE --pps R --secs T [--direct] [--transcode] [--srtp caller|both]
//! rtp_relay_bench gen   --c-relay BASE --flows N --sink PORT --pps R --secs T
//! ```
//!
//! `relay` runs [`RtpRuntime`] with N bridged calls negotiated in-process (PCMA on both legs,
//! or PCMU→PCMA with `--transcode`), writes the plan (holdless's ports and the endpoints'
//! ports, one call a line), relays for T seconds and prints its CPU time per relayed packet.
//! `gen` plays both endpoints of every call: 172-byte RTP packets in both directions at R
//! packets/s in total, paced in 0.2 ms steps, each carrying its send time (`--transcode`:
//! the callers send PCMU, matching the relay's plan), and prints the
//! one-way latency through the relay (`--direct` sends endpoint to endpoint instead, the
//! baseline that latency is compared with). `--srtp caller` makes every caller leg SRTP
//! (AES_CM_128_HMAC_SHA1_80, SDES: the relay decrypts what callers send and encrypts what
//! they receive), `--srtp both` both legs; the plan carries holdless's keys so the
//! generator protects what it sends (its receivers read the clear RTP header only). The
//! `--c-relay` measures the same latency through
//! the bare C relay of the peer baseline (`udpbench relay -p BASE -n N -P PORT`): N flows to
//! BASE, BASE+2, ... (its default port step), all coming back on the one sink port. Loopback only; every run ends by
//! itself.

use std::net::{SocketAddr, UdpSocket as StdSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use holdless::acl::Egress;
use holdless::media::rtp::{build_rtp, parse_rtp};
use holdless::media::sdes::Crypto;
use holdless::media::srtp::{SrtpLeg, SrtpPolicy};
use holdless::media::{MediaConfig, MediaControl, Side};
use holdless::runtime::rtp::RtpRuntime;

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: Option<T>) -> T {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("bad value for {name}")),
        None => default.unwrap_or_else(|| panic!("{name} is required")),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs: f64 = arg(&args, "--secs", None);
    assert!(secs > 0.0 && secs <= 600.0, "--secs must be in (0, 600]");
    match args.get(1).map(String::as_str) {
        Some("relay") => relay(&args, secs),
        Some("gen") => gen(&args, secs),
        _ => eprintln!("usage: rtp_relay_bench relay|gen ... (see the source header)"),
    }
}

/// CPU time of every thread of this process, in seconds (from /proc, ns resolution).
fn cpu_secs() -> f64 {
    let mut ns = 0u64;
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for t in dir.flatten() {
            let stat = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
            ns += stat
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    ns as f64 / 1e9
}

/// An SDP for an endpoint on `port` speaking `fmt`; SRTP with `key` when given.
fn sdp_with(port: u16, fmt: u8, key: Option<&Crypto>) -> Vec<u8> {
    let enc = if fmt == 0 { "PCMU" } else { "PCMA" };
    let (proto, crypto) = match key {
        Some(k) => ("RTP/SAVP", format!("a=crypto:{}\r\n", k.to_value())),
        None => ("RTP/AVP", String::new()),
    };
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} {proto} {fmt}\r\na=rtpmap:{fmt} {enc}/8000\r\n{crypto}"
    )
    .into_bytes()
}

/// The `a=crypto` value of an SDP holdless wrote ("-" when plain).
fn crypto_of(sdp: &[u8]) -> String {
    String::from_utf8_lossy(sdp)
        .lines()
        .find_map(|l| l.strip_prefix("a=crypto:"))
        .map_or("-".into(), |v| v.trim().replace(' ', ","))
}

/// The fixed keys the benchmark's endpoints send with (callers, callees): a benchmark on
/// loopback, never a real call.
fn endpoint_keys() -> (Crypto, Crypto) {
    let caller =
        Crypto::parse("1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz")
            .expect("caller key");
    let callee =
        Crypto::parse("1 AES_CM_128_HMAC_SHA1_80 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj")
            .expect("callee key");
    (caller, callee)
}

/// `--srtp`: which legs speak SRTP (caller, callee).
fn srtp_legs(args: &[String]) -> (bool, bool) {
    match args
        .iter()
        .position(|a| a == "--srtp")
        .and_then(|i| args.get(i + 1))
    {
        None => (false, false),
        Some(v) if v == "caller" => (true, false),
        Some(v) if v == "both" => (true, true),
        Some(v) => panic!("--srtp {v}: caller or both"),
    }
}

fn relay(args: &[String], secs: f64) {
    let calls: usize = arg(args, "--calls", None);
    let threads: usize = arg(args, "--threads", Some(1));
    let plan_file: String = arg(args, "--plan", None);
    let ep_base: u16 = arg(args, "--ep-base", Some(20000));
    let transcode = args.iter().any(|a| a == "--transcode");
    let (srtp_caller, srtp_callee) = srtp_legs(args);
    let (caller_key, callee_key) = endpoint_keys();
    // The relay runs on the runtime's own media threads (`--threads`); this one only sets up.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let cfg = MediaConfig {
            port_min: 30000,
            port_max: 39999,
            threads,
            ..MediaConfig::default()
        };
        let egress = Egress::new(vec!["127.0.0.0/8".parse().expect("net")]);
        let mut media = RtpRuntime::new(cfg, egress);
        let mut plan = String::new();
        let now = Instant::now();
        for i in 0..calls {
            let caller_ep = ep_base + 2 * i as u16;
            let callee_ep = ep_base + 2 * (calls + i) as u16;
            let id = media.create(now).expect("ports");
            let caller_fmt = if transcode { 0 } else { 8 };
            if srtp_callee {
                media.secure(id, Side::Callee, SrtpPolicy::Required);
            }
            let onward = media
                .offer(
                    now,
                    id,
                    Side::Caller,
                    &sdp_with(caller_ep, caller_fmt, srtp_caller.then_some(&caller_key)),
                )
                .expect("offer");
            let toward_callee = crypto_of(&onward);
            let answer = media
                .answer(
                    now,
                    id,
                    Side::Callee,
                    &sdp_with(callee_ep, 8, srtp_callee.then_some(&callee_key)),
                )
                .expect("answer");
            let toward_caller = crypto_of(&answer);
            let port = |s| media.local_addr(id, s).expect("port").port();
            plan.push_str(&format!(
                "{} {} {caller_ep} {callee_ep} {toward_caller} {toward_callee}\n",
                port(Side::Caller),
                port(Side::Callee)
            ));
        }
        std::fs::write(&plan_file, plan).expect("write plan");
        let counters = media.counters();
        let (c0, t0) = (cpu_secs(), Instant::now());
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
        let (cpu, wall) = (cpu_secs() - c0, t0.elapsed().as_secs_f64());
        let relayed = counters.relayed.load(Ordering::Relaxed);
        let received = counters.received.load(Ordering::Relaxed);
        println!(
            "relay: calls={calls} threads={threads} transcode={transcode} \
             srtp={srtp_caller}/{srtp_callee} received={received} \
             relayed={relayed} wall={wall:.2}s cpu={cpu:.3}s cpu_frac={:.3} us_per_pkt={:.3} \
             pps_per_core={:.0}",
            cpu / wall,
            if relayed > 0 {
                cpu * 1e6 / relayed as f64
            } else {
                0.0
            },
            if cpu > 0.0 { relayed as f64 / cpu } else { 0.0 },
        );
    });
}

/// One endpoint socket, where its packets go and their payload type; SRTP when its leg
/// speaks it.
struct Flow {
    sock: StdSocket,
    to: SocketAddr,
    pt: u8,
    srtp: Option<SrtpLeg>,
}

/// The endpoint's SRTP for a plan field (holdless's key toward it; "-": plain).
fn endpoint_srtp(field: Option<&str>, ours: &Crypto) -> Option<SrtpLeg> {
    let v = field.filter(|f| *f != "-")?;
    let holdless = Crypto::parse(&v.replace(',', " ")).expect("a=crypto in the plan");
    Some(SrtpLeg::new(&holdless, ours).expect("SRTP contexts"))
}

fn gen(args: &[String], secs: f64) {
    let plan_file: String = arg(args, "--plan", Some(String::new()));
    let pps: f64 = arg(args, "--pps", None);
    let direct = args.iter().any(|a| a == "--direct");
    let transcode = args.iter().any(|a| a == "--transcode");
    let lo = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
    let mut flows = Vec::new();
    let mut receivers = Vec::new();
    let c_base: u16 = arg(args, "--c-relay", Some(0));
    let plan = if c_base > 0 {
        let n: u16 = arg(args, "--flows", None);
        let sink: u16 = arg(args, "--sink", None);
        receivers.push(StdSocket::bind(lo(sink)).expect("bind sink"));
        for i in 0..n {
            flows.push(Flow {
                sock: StdSocket::bind(lo(0)).expect("bind flow"),
                to: lo(c_base + 2 * i),
                pt: 8,
                srtp: None,
            });
        }
        String::new()
    } else {
        std::fs::read_to_string(&plan_file).expect("read plan")
    };
    let (caller_key, callee_key) = endpoint_keys();
    for line in plan.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let p: Vec<u16> = fields[..4]
            .iter()
            .map(|v| v.parse().expect("plan"))
            .collect();
        let (h_caller, h_callee, caller, callee) = (p[0], p[1], p[2], p[3]);
        let a = StdSocket::bind(lo(caller)).expect("bind caller endpoint");
        let b = StdSocket::bind(lo(callee)).expect("bind callee endpoint");
        let (a_to, b_to) = if direct {
            (lo(callee), lo(caller))
        } else {
            (lo(h_caller), lo(h_callee))
        };
        receivers.push(a.try_clone().expect("clone"));
        receivers.push(b.try_clone().expect("clone"));
        let caller_pt = if transcode { 0 } else { 8 };
        let keyed = |i: usize, key: &Crypto| {
            (!direct)
                .then(|| endpoint_srtp(fields.get(i).copied(), key))
                .flatten()
        };
        flows.push(Flow {
            sock: a,
            to: a_to,
            pt: caller_pt,
            srtp: keyed(4, &caller_key),
        });
        flows.push(Flow {
            sock: b,
            to: b_to,
            pt: 8,
            srtp: keyed(5, &callee_key),
        });
    }
    let flow_count = flows.len();
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let stop = stop.clone();
        std::thread::spawn(move || send_loop(&mut flows, pps, secs, epoch, &stop))
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let c0 = cpu_secs();
    let mut lat: Vec<u32> = rt.block_on(async move {
        let mut tasks = Vec::new();
        for s in receivers {
            s.set_nonblocking(true).expect("nonblocking");
            let s = tokio::net::UdpSocket::from_std(s).expect("tokio socket");
            tasks.push(tokio::spawn(recv_loop(s, epoch, secs + 0.5)));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap_or_default());
        }
        all
    });
    stop.store(true, Ordering::Relaxed);
    let (sent, send_errors) = sender.join().unwrap_or((0, 0));
    lat.sort_unstable();
    let q = |f: f64| {
        lat.get(((lat.len() as f64 * f) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |&us| f64::from(us))
    };
    println!(
        "gen: direct={direct} flows={} target_pps={pps:.0} sent={sent} send_errors={send_errors} \
         received={} loss={:.3}% p50_us={:.1} p90_us={:.1} p99_us={:.1} max_us={:.1} cpu={:.2}s",
        flow_count,
        lat.len(),
        if sent > 0 {
            100.0 * (sent as f64 - lat.len() as f64) / sent as f64
        } else {
            0.0
        },
        q(0.5),
        q(0.9),
        q(0.99),
        q(1.0),
        cpu_secs() - c0,
    );
}

/// Sends `pps` packets a second over the flows, round robin, for `secs`.
fn send_loop(
    flows: &mut [Flow],
    pps: f64,
    secs: f64,
    epoch: Instant,
    stop: &AtomicBool,
) -> (u64, u64) {
    let mut seqs = vec![0u16; flows.len()];
    let payload = [0xD5u8; 160];
    let (mut sent, mut errors, mut next) = (0u64, 0u64, 0usize);
    let t0 = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let t = t0.elapsed().as_secs_f64();
        if t >= secs {
            break;
        }
        let due = (t * pps) as u64 - sent;
        if due == 0 {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        for _ in 0..due.min(64) {
            let i = next % flows.len();
            next += 1;
            seqs[i] = seqs[i].wrapping_add(1);
            // The RTP timestamp carries the send time in µs: the relay never changes it, even
            // when it transcodes the payload.
            let sent_us = epoch.elapsed().as_micros() as u32;
            let mut p = build_rtp(flows[i].pt, seqs[i], sent_us, i as u32, &payload);
            if let Some(s) = flows[i].srtp.as_mut() {
                p = s.protect_rtp(&p).expect("protect");
            }
            match flows[i].sock.send_to(&p, flows[i].to) {
                Ok(_) => sent += 1,
                Err(_) => {
                    errors += 1;
                    sent += 1;
                }
            }
        }
    }
    (sent - errors, errors)
}

/// Receives until `secs` after `epoch`; returns one-way latencies in µs.
async fn recv_loop(sock: tokio::net::UdpSocket, epoch: Instant, secs: f64) -> Vec<u32> {
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    let end = epoch + Duration::from_secs_f64(secs);
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return out;
        }
        let Ok(Ok((n, _))) = tokio::time::timeout(left, sock.recv_from(&mut buf)).await else {
            return out;
        };
        let Some(h) = parse_rtp(&buf[..n]) else {
            continue;
        };
        let now_us = epoch.elapsed().as_micros() as u32;
        out.push(now_us.wrapping_sub(h.timestamp));
    }
}
