//! Endpoint core tests: scripted inputs and a fake clock, no sockets.

use std::time::{Duration, Instant};

use super::*;

const CONFIG: &str = r#"
[sip]
udp = ["127.0.0.1:5060"]
[acl]
allow = ["0.0.0.0/0"]
deny = ["127.0.0.66/32"]
[egress]
allow = ["127.0.0.0/8"]
[flood]
max_requests = 1000
[[call_targets]]
id = "billing"
name = "Billing"
numbers = ["+15550001000"]
"#;

fn endpoint(config: &str) -> (Endpoint, Counters) {
    let cfg = Config::parse(config).unwrap();
    let counters = Counters::default();
    (
        Endpoint::new(&cfg, counters.clone(), 1, Box::new(crate::media::NoMedia)),
        counters,
    )
}

fn req(method: &str, ruri: &str, branch: &str, extra: &str) -> Vec<u8> {
    format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.9:5070;branch={branch}\r\nMax-Forwards: 70\r\n\
         From: <sip:c@127.0.0.9>;tag=f1\r\nTo: <{ruri}>\r\nCall-ID: c1\r\nCSeq: 1 {method}\r\n{extra}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn from(ip: &str) -> Peer {
    Peer::udp(format!("{ip}:5070").parse().unwrap())
}

fn sent(ep: &mut Endpoint) -> Vec<Transmit> {
    std::iter::from_fn(|| ep.poll_transmit()).collect()
}

#[test]
fn invite_for_an_owned_number_gets_480_unknown_gets_404() {
    let (mut ep, _) = endpoint(CONFIG);
    let now = Instant::now();
    ep.handle_message(
        now,
        &req("INVITE", "sip:+15550001000@127.0.0.1", "z9hG4bK1", ""),
        from("127.0.0.9"),
    );
    ep.handle_message(
        now,
        &req("INVITE", "tel:15550001000", "z9hG4bK2", ""),
        from("127.0.0.9"),
    );
    ep.handle_message(
        now,
        &req("INVITE", "sip:+15550001001@127.0.0.1", "z9hG4bK3", ""),
        from("127.0.0.9"),
    );
    let codes: Vec<_> = sent(&mut ep)
        .iter()
        .filter_map(|t| t.msg.status())
        .collect();
    assert_eq!(codes, vec![480, 480, 404]);
}

#[test]
fn denied_source_gets_403_without_a_transaction() {
    let (mut ep, counters) = endpoint(CONFIG);
    ep.handle_message(
        Instant::now(),
        &req("OPTIONS", "sip:h@127.0.0.1", "z9hG4bK1", ""),
        from("127.0.0.66"),
    );
    let out = sent(&mut ep);
    assert_eq!(out[0].msg.status(), Some(403));
    assert_eq!(ep.transactions(), 0);
    assert_eq!(counters.get(Kind::Rejected, "acl_403"), 1);
}

#[test]
fn responses_outside_the_egress_list_are_never_sent() {
    let (mut ep, counters) = endpoint(CONFIG);
    ep.handle_message(
        Instant::now(),
        &req("OPTIONS", "sip:h@127.0.0.1", "z9hG4bK1", ""),
        from("192.0.2.1"),
    );
    assert!(sent(&mut ep).is_empty());
    assert_eq!(counters.get(Kind::Dropped, "egress"), 1);
}

#[test]
fn via_gets_received_and_the_response_goes_to_the_sent_by_port() {
    let (mut ep, _) = endpoint(CONFIG);
    ep.handle_message(
        Instant::now(),
        &req("OPTIONS", "sip:h@127.0.0.1", "z9hG4bK1", ""),
        Peer::udp("127.0.0.8:40000".parse().unwrap()),
    );
    let out = sent(&mut ep);
    assert_eq!(out[0].to.addr, "127.0.0.8:5070".parse().unwrap());
    assert!(out[0]
        .msg
        .get(Name::Via)
        .unwrap()
        .contains("received=127.0.0.8"));
}

#[test]
fn cancel_after_the_final_response_gets_200_only() {
    let (mut ep, _) = endpoint(CONFIG);
    let now = Instant::now();
    ep.handle_message(
        now,
        &req("INVITE", "sip:+15550001001@127.0.0.1", "z9hG4bKc", ""),
        from("127.0.0.9"),
    );
    ep.handle_message(
        now,
        &req("CANCEL", "sip:+15550001001@127.0.0.1", "z9hG4bKc", ""),
        from("127.0.0.9"),
    );
    let codes: Vec<_> = sent(&mut ep)
        .iter()
        .map(|t| (t.msg.status(), t.msg.get(Name::CSeq).map(str::to_owned)))
        .collect();
    assert_eq!(codes[0].0, Some(404));
    assert_eq!(codes[1], (Some(200), Some("1 CANCEL".into())));
    assert_eq!(codes.len(), 2);
}

#[test]
fn retransmitted_request_is_absorbed_and_answered_again() {
    let (mut ep, counters) = endpoint(CONFIG);
    let now = Instant::now();
    let r = req("OPTIONS", "sip:h@127.0.0.1", "z9hG4bKr", "");
    ep.handle_message(now, &r, from("127.0.0.9"));
    ep.handle_message(now + Duration::from_millis(500), &r, from("127.0.0.9"));
    let out = sent(&mut ep);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].msg, out[1].msg);
    assert_eq!(counters.get(Kind::Absorbed, "request"), 1);
    ep.handle_timeout(now + Duration::from_secs(40));
    assert_eq!(ep.transactions(), 0);
}

#[test]
fn flood_drop_says_nothing() {
    let (mut ep, counters) =
        endpoint(&CONFIG.replace("max_requests = 1000", "max_requests = 2\naction = \"drop\""));
    let now = Instant::now();
    for i in 0..5 {
        ep.handle_message(
            now,
            &req("OPTIONS", "sip:h@127.0.0.1", &format!("z9hG4bK{i}"), ""),
            from("127.0.0.9"),
        );
    }
    assert_eq!(sent(&mut ep).len(), 2);
    assert_eq!(counters.get(Kind::Dropped, "flood"), 3);
}

#[test]
fn bye_without_dialog_gets_481_and_require_gets_420() {
    let (mut ep, _) = endpoint(CONFIG);
    let now = Instant::now();
    ep.handle_message(
        now,
        &req("BYE", "sip:h@127.0.0.1", "z9hG4bKb", ""),
        from("127.0.0.9"),
    );
    ep.handle_message(
        now,
        &req(
            "OPTIONS",
            "sip:h@127.0.0.1",
            "z9hG4bKo",
            "Require: 100rel\r\n",
        ),
        from("127.0.0.9"),
    );
    let out = sent(&mut ep);
    assert_eq!(out[0].msg.status(), Some(481));
    assert_eq!(out[1].msg.status(), Some(420));
    assert_eq!(out[1].msg.get(Name::Unsupported), Some("100rel"));
}

fn resp(code: u16, branch: &str) -> Vec<u8> {
    format!(
        "SIP/2.0 {code} OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch={branch}\r\n\
         From: <sip:h@127.0.0.1>;tag=a\r\nTo: <sip:c@127.0.0.9>;tag=b\r\nCall-ID: r1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn responses_do_not_count_toward_the_flood_guard() {
    let (mut ep, counters) =
        endpoint(&CONFIG.replace("max_requests = 1000", "max_requests = 2\naction = \"drop\""));
    let now = Instant::now();
    for i in 0..5 {
        ep.handle_message(now, &resp(200, &format!("z9hG4bKr{i}")), from("127.0.0.9"));
        // after keep-alive CRLFs too
        let mut b = b"\r\n".to_vec();
        b.extend(resp(180, &format!("z9hG4bKs{i}")));
        ep.handle_message(now, &b, from("127.0.0.9"));
    }
    assert_eq!(counters.get(Kind::Dropped, "flood"), 0);
    assert_eq!(counters.get(Kind::Dropped, "stray_response"), 10);
    for i in 0..2 {
        ep.handle_message(
            now,
            &req("OPTIONS", "sip:h@127.0.0.1", &format!("z9hG4bKq{i}"), ""),
            from("127.0.0.9"),
        );
    }
    assert_eq!(
        sent(&mut ep).len(),
        2,
        "the requests still have their budget"
    );
}

#[test]
fn responses_from_a_refused_source_are_dropped() {
    let (mut ep, counters) = endpoint(CONFIG);
    ep.handle_message(Instant::now(), &resp(200, "z9hG4bKr"), from("127.0.0.66"));
    assert!(sent(&mut ep).is_empty());
    assert_eq!(counters.get(Kind::Dropped, "acl"), 1);
}

std::thread_local! {
    /// What this thread's test is capturing: the most verbose level wanted, and the lines so far.
    static CAPTURE: std::cell::RefCell<Option<(tracing::Level, Vec<u8>)>> =
        const { std::cell::RefCell::new(None) };
}

/// The log writer of the test binary: appends to the calling thread's capture, if any.
struct ThreadSink;

impl std::io::Write for ThreadSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|c| {
            if let Some((_, lines)) = c.borrow_mut().as_mut() {
                lines.extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The log lines `f` writes on this thread at `level` and above.
///
/// One subscriber serves the whole test binary and asks each event whether its thread
/// captures. A subscriber scoped to one test thread would not do: tracing caches each
/// callsite's interest globally, and a callsite first reached on another thread while no
/// subscriber was listening can stay cached as "never".
fn logs_of(level: tracing::Level, f: impl FnOnce()) -> String {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::Layer;
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        // A dynamic filter: its answer is never cached per callsite.
        let wanted = tracing_subscriber::filter::dynamic_filter_fn(|meta, _| {
            CAPTURE.with(|c| c.borrow().as_ref().is_some_and(|(l, _)| meta.level() <= l))
        });
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(|| ThreadSink)
            .with_filter(wanted);
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .expect("no other global subscriber in the unit tests");
    });
    CAPTURE.with(|c| *c.borrow_mut() = Some((level, Vec::new())));
    f();
    let (_, lines) = CAPTURE
        .with(|c| c.borrow_mut().take())
        .expect("capture still set");
    String::from_utf8_lossy(&lines).into_owned()
}

#[test]
fn log_lines_carry_the_call_id_and_source() {
    let invite = req("INVITE", "sip:+15550001001@127.0.0.1", "z9hG4bK4", "");
    let bad = String::from_utf8(req("OPTIONS", "sip:h@127.0.0.1", "z9hG4bK5", ""))
        .unwrap()
        .replace("CSeq: 1 OPTIONS", "CSeq: one OPTIONS")
        .into_bytes();
    let info = logs_of(tracing::Level::INFO, || {
        let (mut ep, _) = endpoint(CONFIG);
        ep.handle_message(Instant::now(), &invite, from("127.0.0.9"));
    });
    let line = info
        .lines()
        .find(|l| l.contains("no call target owns"))
        .unwrap_or_else(|| panic!("no 404 log line in {info:?}"));
    assert!(line.contains("src=127.0.0.9:5070"), "{line}");
    assert!(
        line.contains("call_id=\"c1\"") || line.contains("call_id=c1"),
        "{line}"
    );

    let debug = logs_of(tracing::Level::DEBUG, || {
        let (mut ep, _) = endpoint(CONFIG);
        ep.handle_message(Instant::now(), &bad, from("127.0.0.9"));
    });
    let line = debug
        .lines()
        .find(|l| l.contains("rejected request"))
        .unwrap_or_else(|| panic!("no rejection log line in {debug:?}"));
    assert!(line.contains("src=127.0.0.9:5070"), "{line}");
    assert!(line.contains("call_id"), "{line}");
}
