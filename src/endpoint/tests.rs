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
