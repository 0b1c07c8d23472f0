//! What one SIP message costs the endpoint core, alone and with two engines counting into
//! the same metrics at once (the shape of the server: one engine per core).
//!
//!     cargo bench --bench endpoint_messages            # 200 000 OPTIONS per engine
//!     cargo bench --bench endpoint_messages -- 50000   # own count
//!
//! Each engine is an [`Endpoint`] with its own transactions and one shared [`Counters`]
//! (as `runtime` builds them); it is fed OPTIONS requests, each a new transaction, answers
//! them (200), and its virtual clock moves 50 µs per message so Timer J frees the
//! transactions as in a real run. A message counts once received and once sent, like every
//! request. Printed: wall-clock ns per message, one engine, then two engines on two
//! threads (per message of each engine, so equal to the one-engine figure when nothing is
//! shared). Uses the endpoint's public API only, so the same file measures older commits.
//! Wall-clock numbers from one run on this machine; nothing here asserts on time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use holdless::config::Config;
use holdless::endpoint::Endpoint;
use holdless::media::NoMedia;
use holdless::metrics::{Counters, Kind};
use holdless::sip::Peer;

/// The allocator of the holdless binary, so the costs are holdless's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CONFIG: &str = r#"
[sip]
udp = ["127.0.0.1:5060"]
[acl]
allow = ["127.0.0.0/8"]
[egress]
allow = ["127.0.0.0/8"]
[flood]
max_requests = 100000000
"#;

/// Virtual time between two messages (20 000 messages/s per engine).
const STEP: Duration = Duration::from_micros(50);

fn options(engine: usize, i: usize) -> Vec<u8> {
    format!(
        "OPTIONS sip:holdless@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.9:5070;branch=z9hG4bK-{engine}-{i}\r\nMax-Forwards: 70\r\n\
         From: <sip:probe@127.0.0.9>;tag=p{engine}\r\nTo: <sip:holdless@127.0.0.1>\r\n\
         Call-ID: bench-{engine}-{i}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Drives one engine through `n` OPTIONS; returns the wall-clock time taken.
fn run(cfg: &Config, counters: Counters, engine: usize, n: usize) -> Duration {
    let mut ep = Endpoint::new(cfg, counters, engine as u64 + 1, Box::new(NoMedia));
    let from: SocketAddr = "127.0.0.9:5070".parse().expect("an address");
    let msgs: Vec<Vec<u8>> = (0..n).map(|i| options(engine, i)).collect();
    let mut now = Instant::now();
    let start = Instant::now();
    for m in &msgs {
        now += STEP;
        if ep.poll_timeout().is_some_and(|t| t <= now) {
            ep.handle_timeout(now);
        }
        ep.handle_message(now, m, Peer::udp(from));
        while let Some(t) = ep.poll_transmit() {
            std::hint::black_box(t);
        }
    }
    start.elapsed()
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    let cfg = Config::parse(CONFIG).expect("the bench configuration");

    // Warm-up (allocator, caches), not reported.
    run(&cfg, Counters::default(), 9, n / 10);

    let counters = Counters::default();
    let one = run(&cfg, counters.clone(), 0, n);
    assert_eq!(counters.get(Kind::Received, "OPTIONS"), n as u64);
    println!(
        "one engine:   {n} OPTIONS, {:.0} ns per message",
        one.as_nanos() as f64 / n as f64
    );

    let counters = Counters::default();
    let times: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|e| {
                let (cfg, counters) = (&cfg, counters.clone());
                s.spawn(move || run(cfg, counters, e, n))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("an engine thread"))
            .collect()
    });
    assert_eq!(counters.get(Kind::Received, "OPTIONS"), 2 * n as u64);
    let per: Vec<String> = times
        .iter()
        .map(|t| format!("{:.0}", t.as_nanos() as f64 / n as f64))
        .collect();
    println!(
        "two engines:  {n} OPTIONS each, {} ns per message (each engine)",
        per.join(" / ")
    );
}
