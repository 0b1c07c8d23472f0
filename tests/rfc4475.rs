//! Every RFC 4475 torture message, fed to the endpoint core as a UDP datagram from
//! loopback: the answer INDEX.md says a UAS must give (or none, for responses).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use holdless::config::Config;
use holdless::endpoint::Endpoint;
use holdless::metrics::{Counters, Kind};
use holdless::sip::parse::{parse, Framing};
use holdless::sip::{Name, Peer};

const CONFIG: &str = r#"
[sip]
udp = ["127.0.0.1:5060"]
[acl]
allow = ["127.0.0.0/8"]
[egress]
allow = ["127.0.0.0/8"]
[flood]
max_requests = 100000
[[call_targets]]
id = "billing"
name = "Billing"
numbers = ["+15550001000"]
"#;

/// (file, expected status code, or None when nothing must be sent)
const EXPECTED: &[(&str, Option<u16>)] = &[
    // wsinv carries a To tag: an INVITE for a dialog holdless does not have (§12.2.2).
    ("wsinv", Some(481)),
    ("intmeth", Some(501)),
    ("esc01", Some(404)),
    ("escnull", Some(501)),
    ("esc02", Some(501)),
    ("lwsdisp", Some(200)),
    ("longreq", Some(404)),
    ("dblreq", Some(501)),
    ("semiuri", Some(200)),
    ("transports", Some(200)),
    ("mpart01", Some(501)),
    ("unreason", None),
    ("noreason", None),
    ("badinv01", Some(400)),
    ("clerr", Some(400)),
    ("ncl", Some(400)),
    ("scalar02", Some(400)),
    ("scalarlg", None),
    ("quotbal", Some(400)),
    ("ltgtruri", Some(400)),
    ("lwsruri", Some(400)),
    ("lwsstart", Some(400)),
    ("trws", Some(400)),
    ("escruri", Some(400)),
    ("baddate", Some(404)),
    ("regbadct", Some(501)),
    ("badaspec", Some(400)),
    ("baddn", Some(400)),
    ("badvers", Some(505)),
    ("mismatch01", Some(400)),
    ("mismatch02", Some(501)),
    ("bigcode", None),
    ("badbranch", Some(400)),
    ("insuf", Some(400)),
    ("unkscm", Some(416)),
    ("novelsc", Some(416)),
    ("unksm2", Some(501)),
    ("bext01", Some(420)),
    ("invut", Some(415)),
    ("regaut01", Some(501)),
    ("multi01", Some(400)),
    ("mcl01", Some(400)),
    ("bcast", None),
    ("zeromf", Some(200)),
    ("cparam01", Some(501)),
    ("cparam02", Some(501)),
    ("regescrt", Some(501)),
    ("sdp01", Some(406)),
    ("inv2543", Some(404)),
];

fn corpus(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus/rfc4475")
        .join(format!("{name}.sip"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn endpoint() -> (Endpoint, Counters) {
    let cfg = Config::parse(CONFIG).expect("test config");
    let counters = Counters::default();
    (
        Endpoint::new(
            &cfg,
            counters.clone(),
            7,
            Box::new(holdless::media::NoMedia),
        ),
        counters,
    )
}

#[test]
fn every_torture_message_gets_the_rfc_answer() {
    let from = Peer::udp("127.0.0.1:5999".parse().unwrap());
    let mut failures = Vec::new();
    for (name, expected) in EXPECTED {
        let (mut ep, _) = endpoint();
        let now = Instant::now();
        ep.handle_message(now, &corpus(name), from);
        let sent: Vec<_> = std::iter::from_fn(|| ep.poll_transmit()).collect();
        let codes: Vec<u16> = sent
            .iter()
            .filter_map(|t| t.msg.status())
            .filter(|c| *c >= 200)
            .collect();
        let want: Vec<u16> = expected.iter().copied().collect();
        if codes != want {
            failures.push(format!("{name}: expected {want:?}, sent {codes:?}"));
        }
        for t in &sent {
            assert!(
                t.to.addr.ip().is_loopback(),
                "{name}: response left loopback"
            );
            // every response must itself parse back
            parse(&t.msg.to_bytes(), Framing::Datagram).expect("our response parses");
        }
        // no transaction may linger once its timers have run
        ep.handle_timeout(now + Duration::from_secs(120));
        while ep.poll_transmit().is_some() {}
        ep.handle_timeout(now + Duration::from_secs(240));
        assert_eq!(ep.transactions(), 0, "{name}: transactions leaked");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_corpus_is_complete() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/rfc4475");
    let files = std::fs::read_dir(dir).unwrap().filter(|e| {
        e.as_ref()
            .map(|e| e.path().extension().is_some_and(|x| x == "sip"))
            .unwrap_or(false)
    });
    assert_eq!(files.count(), EXPECTED.len());
}

#[test]
fn dblreq_answers_only_the_register() {
    let (mut ep, _) = endpoint();
    ep.handle_message(
        Instant::now(),
        &corpus("dblreq"),
        Peer::udp("127.0.0.1:5999".parse().unwrap()),
    );
    let sent: Vec<_> = std::iter::from_fn(|| ep.poll_transmit()).collect();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].msg.get(Name::CSeq).unwrap().ends_with("REGISTER"));
}

#[test]
fn responses_in_the_corpus_are_dropped_and_counted() {
    let (mut ep, counters) = endpoint();
    for name in ["unreason", "noreason", "scalarlg", "bigcode", "bcast"] {
        ep.handle_message(
            Instant::now(),
            &corpus(name),
            Peer::udp("127.0.0.1:5999".parse().unwrap()),
        );
    }
    assert!(ep.poll_transmit().is_none());
    assert_eq!(counters.total(Kind::Dropped), 5);
}

#[test]
fn truncations_and_byte_flips_never_panic() {
    let from = Peer::udp("127.0.0.1:5999".parse().unwrap());
    let (mut ep, _) = endpoint();
    let mut rng = fastrand::Rng::with_seed(4475);
    let now = Instant::now();
    for (name, _) in EXPECTED {
        let bytes = corpus(name);
        for cut in (0..bytes.len()).step_by(7) {
            ep.handle_message(now, &bytes[..cut], from);
        }
        for _ in 0..200 {
            let mut b = bytes.clone();
            for _ in 0..rng.usize(1..4) {
                let i = rng.usize(..b.len());
                b[i] = rng.u8(..);
            }
            ep.handle_message(now, &b, from);
        }
        while ep.poll_transmit().is_some() {}
    }
}

/// The status line of the one final response sent for a torture message.
fn status_line(name: &str) -> String {
    let (mut ep, _) = endpoint();
    ep.handle_message(
        Instant::now(),
        &corpus(name),
        Peer::udp("127.0.0.1:5999".parse().unwrap()),
    );
    let finals: Vec<String> = std::iter::from_fn(|| ep.poll_transmit())
        .filter(|t| t.msg.status().is_some_and(|c| c >= 200))
        .map(|t| {
            let bytes = t.msg.to_bytes();
            let text = String::from_utf8_lossy(&bytes).into_owned();
            text.lines().next().unwrap_or_default().to_owned()
        })
        .collect();
    assert_eq!(finals.len(), 1, "{name}: {finals:?}");
    finals[0].clone()
}

#[test]
fn a_400_says_what_was_wrong() {
    for (name, line) in [
        (
            "mismatch01",
            "SIP/2.0 400 CSeq method does not match the request method",
        ),
        (
            "clerr",
            "SIP/2.0 400 Content-Length larger than the message",
        ),
        (
            "badbranch",
            "SIP/2.0 400 Via branch is the bare magic cookie",
        ),
    ] {
        assert_eq!(status_line(name), line, "{name}");
    }
    let insuf = status_line("insuf");
    assert!(insuf.starts_with("SIP/2.0 400 Missing "), "{insuf}");
}

/// The socket readers pick an engine by scanning for the Call-ID without parsing
/// (`sip::shard`); for every torture message the parser accepts, the scan must find the
/// same Call-ID, or the messages of one dialog could reach different engines.
#[test]
fn the_dispatch_scan_finds_the_call_id_the_parser_finds() {
    use holdless::sip::parse::{parse, Framing};
    use holdless::sip::shard;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/rfc4475");
    let mut compared = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("sip") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let Ok(parsed) = parse(&bytes, Framing::Datagram) else {
            continue;
        };
        let ids: Vec<&str> = parsed.msg.get_all(holdless::sip::Name::CallId).collect();
        if ids.len() != 1 {
            continue; // multi01: two Call-IDs, a 400 from any engine
        }
        let scanned = shard::call_id(&bytes).map(|b| String::from_utf8_lossy(&b).into_owned());
        assert_eq!(scanned.as_deref(), Some(ids[0]), "{}", path.display());
        compared += 1;
    }
    assert!(compared > 30, "only {compared} messages compared");
    let folded =
        b"OPTIONS sip:h@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2;branch=z9hG4bKf\r\n\
        From: <sip:a@127.0.0.2>;tag=1\r\nTo: <sip:h@127.0.0.1>\r\nCall-ID:\r\n \t f1@x\r\n\
        CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    let parsed = parse(folded, Framing::Datagram).expect("a folded header parses");
    let scanned = shard::call_id(folded).expect("found");
    assert_eq!(parsed.msg.call_id().map(str::as_bytes), Some(&scanned[..]));
}
