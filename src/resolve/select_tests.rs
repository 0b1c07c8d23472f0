use super::*;

fn srv(priority: u16, weight: u16, port: u16, target: &str) -> SrvRecord {
    SrvRecord {
        priority,
        weight,
        port,
        target: target.into(),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn addrs(v: &[&str]) -> Result<Answer, String> {
    Ok(Answer {
        records: Records::Addrs(v.iter().map(|s| ip(s)).collect()),
        ttl: Some(Duration::from_secs(60)),
    })
}

fn srvs(v: Vec<SrvRecord>) -> Result<Answer, String> {
    Ok(Answer {
        records: Records::Srv(v),
        ttl: Some(Duration::from_secs(60)),
    })
}

fn q(name: &str, rtype: RecordType) -> Query {
    Query {
        name: name.into(),
        rtype,
    }
}

fn loopback(ip: IpAddr) -> bool {
    ip.is_loopback()
}

fn rng() -> fastrand::Rng {
    fastrand::Rng::with_seed(7)
}

/// Answers every pending query from `dns` (name, type) → answer; unknown → negative.
fn drive(r: &mut Resolution, dns: &[(Query, Result<Answer, String>)]) {
    let mut rounds = 0;
    while let Some(query) = r.queries().first().cloned() {
        rounds += 1;
        assert!(rounds < 50, "resolution does not end");
        let answer = dns
            .iter()
            .find(|(k, _)| *k == query)
            .map(|(_, a)| a.clone())
            .unwrap_or(Ok(Answer {
                records: match query.rtype {
                    RecordType::Srv => Records::Srv(vec![]),
                    _ => Records::Addrs(vec![]),
                },
                ttl: None,
            }));
        r.handle(&query, answer);
    }
}

fn targets(
    uri: &str,
    dns: &[(Query, Result<Answer, String>)],
) -> Result<Vec<String>, ResolveError> {
    let mut r = Resolution::new(uri).unwrap();
    drive(&mut r, dns);
    let t = r.finish(&mut rng(), loopback)?;
    Ok(t.all().iter().map(|t| t.to_string()).collect())
}

#[test]
fn ip_literals_need_no_dns() {
    let r = Resolution::new("sip:+1555@127.0.0.1").unwrap();
    assert!(r.queries().is_empty());
    let t = r.finish(&mut rng(), loopback).unwrap();
    assert_eq!(
        t.all(),
        [Target {
            addr: "127.0.0.1:5060".parse().unwrap(),
            transport: Transport::Udp
        }]
    );
    assert_eq!(targets("sips:[::1]", &[]).unwrap(), ["TLS [::1]:5061"]);
    assert_eq!(
        targets("sip:127.0.0.1:5099;transport=tcp", &[]).unwrap(),
        ["TCP 127.0.0.1:5099"]
    );
}

#[test]
fn explicit_port_asks_only_addresses() {
    let r = Resolution::new("sip:trunk.test:5080").unwrap();
    let mut asked: Vec<_> = r.queries().to_vec();
    asked.sort_by_key(|q| format!("{:?}", q.rtype));
    assert_eq!(
        asked,
        [
            q("trunk.test.", RecordType::A),
            q("trunk.test.", RecordType::Aaaa)
        ]
    );
    let dns = [
        (q("trunk.test.", RecordType::A), addrs(&["127.0.0.5"])),
        (q("trunk.test.", RecordType::Aaaa), addrs(&["::1"])),
    ];
    assert_eq!(
        targets("sip:trunk.test:5080", &dns).unwrap(),
        ["UDP 127.0.0.5:5080", "UDP [::1]:5080"]
    );
}

#[test]
fn srv_names_per_transport() {
    let first = |uri: &str| Resolution::new(uri).unwrap().queries()[0].clone();
    assert_eq!(
        first("sip:trunk.test"),
        q("_sip._udp.trunk.test.", RecordType::Srv)
    );
    assert_eq!(
        first("sip:trunk.test;transport=tcp"),
        q("_sip._tcp.trunk.test.", RecordType::Srv)
    );
    assert_eq!(
        first("sips:trunk.test"),
        q("_sips._tcp.trunk.test.", RecordType::Srv)
    );
    assert_eq!(
        first("sip:trunk.test;transport=tls"),
        q("_sips._tcp.trunk.test.", RecordType::Srv)
    );
}

#[test]
fn srv_targets_in_priority_order() {
    let dns = [
        (
            q("_sip._udp.trunk.test.", RecordType::Srv),
            srvs(vec![
                srv(20, 0, 5070, "b.trunk.test"),
                srv(10, 0, 5060, "a.trunk.test."),
            ]),
        ),
        (q("a.trunk.test.", RecordType::A), addrs(&["127.0.0.2"])),
        (
            q("b.trunk.test.", RecordType::A),
            addrs(&["127.0.0.3", "127.0.0.4"]),
        ),
    ];
    assert_eq!(
        targets("sip:+1555@trunk.test", &dns).unwrap(),
        [
            "UDP 127.0.0.2:5060",
            "UDP 127.0.0.3:5070",
            "UDP 127.0.0.4:5070"
        ]
    );
}

#[test]
fn no_udp_srv_tries_tcp_then_the_name() {
    let dns = [
        (
            q("_sip._tcp.trunk.test.", RecordType::Srv),
            srvs(vec![srv(1, 1, 5062, "t.trunk.test")]),
        ),
        (q("t.trunk.test.", RecordType::A), addrs(&["127.0.0.9"])),
        (q("trunk.test.", RecordType::A), addrs(&["127.0.0.8"])),
    ];
    assert_eq!(
        targets("sip:trunk.test", &dns).unwrap(),
        ["TCP 127.0.0.9:5062"]
    );
    // transport=udp asked: no TCP fallback; no SRV → the name on 5060.
    assert_eq!(
        targets("sip:trunk.test;transport=udp", &dns).unwrap(),
        ["UDP 127.0.0.8:5060"]
    );
    // sips: no SRV → the name on 5061 over TLS.
    assert_eq!(
        targets("sips:trunk.test", &dns).unwrap(),
        ["TLS 127.0.0.8:5061"]
    );
}

#[test]
fn srv_dot_target_means_no_service() {
    let dns = [(
        q("_sip._udp.trunk.test.", RecordType::Srv),
        srvs(vec![srv(0, 0, 0, ".")]),
    )];
    assert!(matches!(
        targets("sip:trunk.test;transport=udp", &dns),
        Err(ResolveError::ServiceUnavailable { .. })
    ));
}

#[test]
fn dns_failures_and_empty_answers() {
    assert_eq!(
        targets("sip:trunk.test", &[]),
        Err(ResolveError::NoAddresses {
            host: "trunk.test".into()
        })
    );
    let timeout = [(
        q("_sip._udp.trunk.test.", RecordType::Srv),
        Err("timed out".to_string()),
    )];
    assert!(matches!(
        targets("sip:trunk.test", &timeout),
        Err(ResolveError::DnsFailed { .. })
    ));
    // One SRV target's lookups fail: the other still serves.
    let partial = [
        (
            q("_sip._udp.trunk.test.", RecordType::Srv),
            srvs(vec![srv(1, 0, 5060, "a.test"), srv(2, 0, 5060, "b.test")]),
        ),
        (q("a.test.", RecordType::A), Err("SERVFAIL".to_string())),
        (q("b.test.", RecordType::A), addrs(&["127.0.0.3"])),
    ];
    assert_eq!(
        targets("sip:trunk.test", &partial).unwrap(),
        ["UDP 127.0.0.3:5060"]
    );
}

#[test]
fn egress_refusal_names_host_and_addresses() {
    let dns = [
        (
            q("_sip._udp.trunk.test.", RecordType::Srv),
            srvs(vec![srv(1, 0, 5060, "a.test"), srv(2, 0, 5060, "b.test")]),
        ),
        (q("a.test.", RecordType::A), addrs(&["192.0.2.10"])),
        (q("b.test.", RecordType::A), addrs(&["127.0.0.3"])),
    ];
    // Partly refused: the allowed candidate stays, the refused address is reported.
    let mut r = Resolution::new("sip:trunk.test").unwrap();
    drive(&mut r, &dns);
    let t = r.finish(&mut rng(), loopback).unwrap();
    assert_eq!(t.all().len(), 1);
    assert_eq!(t.refused(), [ip("192.0.2.10")]);
    // Wholly refused: an error naming the host and every address.
    let mut r = Resolution::new("sip:trunk.test").unwrap();
    drive(&mut r, &dns);
    let err = r.finish(&mut rng(), |_| false).unwrap_err();
    assert_eq!(
        err,
        ResolveError::EgressRefused {
            host: "trunk.test".into(),
            refused: vec![ip("192.0.2.10"), ip("127.0.0.3")],
        }
    );
    let text = err.to_string();
    assert!(
        text.contains("trunk.test") && text.contains("192.0.2.10") && text.contains("127.0.0.3"),
        "{text}"
    );
}

#[test]
fn cursor_hands_out_candidates_once() {
    let dns = [(
        q("trunk.test.", RecordType::A),
        addrs(&["127.0.0.2", "127.0.0.3"]),
    )];
    let mut r = Resolution::new("sip:trunk.test:5060").unwrap();
    drive(&mut r, &dns);
    let mut t = r.finish(&mut rng(), loopback).unwrap();
    assert_eq!(t.next().map(|t| t.addr.ip()), Some(ip("127.0.0.2")));
    assert_eq!(t.remaining().len(), 1);
    assert_eq!(t.next().map(|t| t.addr.ip()), Some(ip("127.0.0.3")));
    assert_eq!(t.next(), None);
    assert_eq!(t.all().len(), 2);
}

#[test]
fn priority_always_wins_over_weight() {
    let mut rng = rng();
    for _ in 0..200 {
        let o = order_srv(
            vec![
                srv(2, 65535, 1, "c"),
                srv(1, 0, 1, "b"),
                srv(1, 1, 1, "a"),
                srv(3, 0, 1, "d"),
            ],
            &mut rng,
        );
        assert_eq!(o.len(), 4);
        assert_eq!(o[2].target, "c");
        assert_eq!(o[3].target, "d");
        let mut first_two: Vec<_> = o[..2].iter().map(|r| r.target.as_str()).collect();
        first_two.sort();
        assert_eq!(first_two, ["a", "b"]);
    }
}

/// How often each target comes first over `n` draws.
fn first_counts(records: &[SrvRecord], n: usize) -> HashMap<String, usize> {
    let mut rng = fastrand::Rng::with_seed(2782);
    let mut counts = HashMap::new();
    for _ in 0..n {
        let o = order_srv(records.to_vec(), &mut rng);
        *counts.entry(o[0].target.clone()).or_insert(0) += 1;
    }
    counts
}

#[test]
fn weights_share_first_place_in_proportion() {
    let n = 20_000;
    let c = first_counts(
        &[srv(1, 60, 1, "a"), srv(1, 30, 1, "b"), srv(1, 10, 1, "c")],
        n,
    );
    let share = |t: &str| c.get(t).copied().unwrap_or(0) as f64 / n as f64;
    assert!((share("a") - 0.6).abs() < 0.03, "{c:?}");
    assert!((share("b") - 0.3).abs() < 0.03, "{c:?}");
    assert!((share("c") - 0.1).abs() < 0.03, "{c:?}");
}

#[test]
fn weight_zero_is_rarely_first_and_all_zero_is_uniform() {
    let n = 20_000;
    // Weight 0 beside weight 100: first only when the draw is 0, about 1 in 101.
    let c = first_counts(&[srv(1, 0, 1, "zero"), srv(1, 100, 1, "heavy")], n);
    let zero = c.get("zero").copied().unwrap_or(0) as f64 / n as f64;
    assert!(zero > 0.002 && zero < 0.02, "{c:?}");
    // All weights 0: every order equally likely.
    let c = first_counts(
        &[srv(1, 0, 1, "a"), srv(1, 0, 1, "b"), srv(1, 0, 1, "c")],
        n,
    );
    for t in ["a", "b", "c"] {
        let share = c.get(t).copied().unwrap_or(0) as f64 / n as f64;
        assert!((share - 1.0 / 3.0).abs() < 0.03, "{c:?}");
    }
}

#[test]
fn same_seed_same_order() {
    let recs = vec![
        srv(1, 5, 1, "a"),
        srv(1, 5, 1, "b"),
        srv(1, 5, 1, "c"),
        srv(1, 5, 1, "d"),
    ];
    let a = order_srv(recs.clone(), &mut fastrand::Rng::with_seed(1));
    let b = order_srv(recs, &mut fastrand::Rng::with_seed(1));
    assert_eq!(a, b);
}
