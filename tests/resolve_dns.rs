//! The RFC 3263 locator against a tiny DNS server on 127.0.0.1 (a random UDP port) run
//! inside the test: SRV order, the TTL cache (counted queries), negative caching, the
//! egress filter and an unreachable name server. Every packet stays on loopback.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_resolver::proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, SOA, SRV};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use holdless::acl::Egress;
use holdless::resolve::{DnsSettings, ResolveError, Resolver, Transport};
use tokio::net::UdpSocket;

/// The records served: SRV by name, A by name, one TTL for all.
#[derive(Default)]
struct Zone {
    srv: HashMap<&'static str, Vec<(u16, u16, u16, &'static str)>>,
    a: HashMap<&'static str, Vec<Ipv4Addr>>,
    ttl: u32,
}

/// Every question the server was asked: (name, type).
type Log = Arc<Mutex<Vec<(String, RecordType)>>>;

fn trunk_zone(ttl: u32) -> Zone {
    let mut z = Zone {
        ttl,
        ..Zone::default()
    };
    // Listed high priority first so the order the test sees is the resolver's doing.
    z.srv.insert(
        "_sip._udp.trunk.test.",
        vec![
            (20, 0, 5080, "b.trunk.test."),
            (10, 0, 5070, "a.trunk.test."),
        ],
    );
    z.a.insert("a.trunk.test.", vec![Ipv4Addr::new(127, 0, 0, 2)]);
    z.a.insert("b.trunk.test.", vec![Ipv4Addr::new(127, 0, 0, 3)]);
    z.a.insert("plain.test.", vec![Ipv4Addr::new(127, 0, 0, 4)]);
    z
}

/// Starts the server on 127.0.0.1:0; it answers until the test's runtime ends.
async fn serve(zone: Zone) -> (SocketAddr, Log) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let log: Log = Arc::default();
    let seen = log.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                continue;
            };
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let reply = answer(&zone, &query, &seen);
            if let Ok(bytes) = reply.to_vec() {
                let _ = sock.send_to(&bytes, from).await;
            }
        }
    });
    (addr, log)
}

fn answer(zone: &Zone, query: &Message, log: &Log) -> Message {
    let mut reply = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.metadata.authoritative = true;
    let Some(q) = query.queries.first() else {
        reply.metadata.response_code = ResponseCode::FormErr;
        return reply;
    };
    reply.add_query(q.clone());
    let name = q.name().to_ascii().to_ascii_lowercase();
    log.lock().unwrap().push((name.clone(), q.query_type()));
    match q.query_type() {
        RecordType::SRV => {
            for &(prio, weight, port, target) in zone.srv.get(name.as_str()).into_iter().flatten() {
                let target = Name::from_ascii(target).unwrap();
                let rdata = RData::SRV(SRV::new(prio, weight, port, target));
                reply.add_answer(Record::from_rdata(q.name().clone(), zone.ttl, rdata));
            }
        }
        RecordType::A => {
            for ip in zone.a.get(name.as_str()).into_iter().flatten() {
                let rdata = RData::A(A(*ip));
                reply.add_answer(Record::from_rdata(q.name().clone(), zone.ttl, rdata));
            }
        }
        _ => {}
    }
    if reply.answers.is_empty() {
        // No data: NOERROR with the zone's SOA (negative TTL 30 s, RFC 2308).
        let apex = Name::from_ascii("test.").unwrap();
        let soa = SOA::new(apex.clone(), apex.clone(), 1, 3600, 600, 86400, 30);
        reply.add_authority(Record::from_rdata(apex, 30, RData::SOA(soa)));
    }
    reply
}

fn settings(ns: SocketAddr) -> DnsSettings {
    DnsSettings {
        nameservers: vec![ns],
        timeout: Duration::from_millis(500),
        cache_max_entries: 100,
    }
}

fn egress(nets: &[&str]) -> Egress {
    Egress::new(nets.iter().map(|n| n.parse().unwrap()).collect())
}

fn asked(log: &Log) -> Vec<(String, RecordType)> {
    log.lock().unwrap().clone()
}

#[tokio::test]
async fn srv_candidates_come_in_priority_order_and_are_cached() {
    let (ns, log) = serve(trunk_zone(300)).await;
    let r = Resolver::new(&settings(ns), egress(&["127.0.0.0/8"])).unwrap();
    let mut targets = r.resolve("sip:+15550001111@trunk.test").await.unwrap();
    let order: Vec<String> = targets.all().iter().map(|t| t.to_string()).collect();
    assert_eq!(order, ["UDP 127.0.0.2:5070", "UDP 127.0.0.3:5080"]);
    // The cursor: first candidate, then (after a 503 or transport error) the next.
    let first = targets.next().unwrap();
    assert_eq!(first.transport, Transport::Udp);
    assert_eq!(first.peer().addr, "127.0.0.2:5070".parse().unwrap());
    assert_eq!(
        targets.next().unwrap().addr.ip(),
        IpAddr::from([127, 0, 0, 3])
    );
    assert!(targets.next().is_none());

    let first_round = asked(&log);
    assert!(first_round.contains(&("_sip._udp.trunk.test.".into(), RecordType::SRV)));
    assert!(first_round.contains(&("a.trunk.test.".into(), RecordType::A)));
    assert!(first_round.contains(&("b.trunk.test.".into(), RecordType::AAAA)));
    assert_eq!(first_round.len(), 5, "{first_round:?}");

    // Second resolution within the TTLs, from a spawned task as the dialler will call it
    // (the future is Send): every answer (the empty AAAA ones too) from the cache, not one
    // query to the server.
    let r = Arc::new(r);
    let shared = r.clone();
    let again = tokio::spawn(async move { shared.resolve("sip:+15550002222@trunk.test").await })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.all(), targets.all());
    assert_eq!(asked(&log).len(), 5, "{:?}", asked(&log));
}

#[tokio::test]
async fn answers_are_asked_again_when_their_ttl_runs_out() {
    let (ns, log) = serve(trunk_zone(1)).await;
    let r = Resolver::new(&settings(ns), egress(&["127.0.0.0/8"])).unwrap();
    let _ = r.resolve("sip:trunk.test;transport=udp").await.unwrap();
    let _ = r.resolve("sip:trunk.test;transport=udp").await.unwrap();
    let positive = |log: &Log| {
        asked(log)
            .iter()
            .filter(|(_, t)| *t != RecordType::AAAA)
            .count()
    };
    assert_eq!(positive(&log), 3, "{:?}", asked(&log));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let _ = r.resolve("sip:trunk.test;transport=udp").await.unwrap();
    // SRV and both A records (TTL 1 s) asked again; the empty AAAA answers are still
    // within their 30 s negative TTL.
    assert_eq!(positive(&log), 6, "{:?}", asked(&log));
    assert_eq!(asked(&log).len(), 8, "{:?}", asked(&log));
}

#[tokio::test]
async fn without_srv_the_host_is_used_and_the_empty_answers_are_cached() {
    let (ns, log) = serve(trunk_zone(300)).await;
    let r = Resolver::new(&settings(ns), egress(&["127.0.0.0/8"])).unwrap();
    let t = r.resolve("sip:cc@plain.test").await.unwrap();
    let order: Vec<String> = t.all().iter().map(|t| t.to_string()).collect();
    assert_eq!(order, ["UDP 127.0.0.4:5060"]);
    let first_round = asked(&log);
    assert!(first_round.contains(&("_sip._udp.plain.test.".into(), RecordType::SRV)));
    assert!(first_round.contains(&("_sip._tcp.plain.test.".into(), RecordType::SRV)));
    assert_eq!(first_round.len(), 4, "{first_round:?}");
    let _ = r.resolve("sip:cc@plain.test").await.unwrap();
    assert_eq!(asked(&log).len(), 4, "{:?}", asked(&log));
    // An explicit port: A/AAAA only, here from the cache.
    let t = r
        .resolve("sip:cc@plain.test:5099;transport=tcp")
        .await
        .unwrap();
    assert_eq!(t.all()[0].to_string(), "TCP 127.0.0.4:5099");
    assert_eq!(asked(&log).len(), 4);
}

#[tokio::test]
async fn egress_allow_list_drops_candidates_and_refuses_when_none_remain() {
    let (ns, _log) = serve(trunk_zone(300)).await;
    let only_b = Resolver::new(&settings(ns), egress(&["127.0.0.3/32"])).unwrap();
    let t = only_b.resolve("sip:trunk.test").await.unwrap();
    let order: Vec<String> = t.all().iter().map(|t| t.to_string()).collect();
    assert_eq!(order, ["UDP 127.0.0.3:5080"]);
    assert_eq!(t.refused(), [IpAddr::from([127, 0, 0, 2])]);

    let none = Resolver::new(&settings(ns), egress(&["127.1.0.0/16"])).unwrap();
    let err = none.resolve("sip:trunk.test").await.unwrap_err();
    match &err {
        ResolveError::EgressRefused { host, refused } => {
            assert_eq!(host, "trunk.test");
            assert_eq!(
                refused,
                &[IpAddr::from([127, 0, 0, 2]), IpAddr::from([127, 0, 0, 3])]
            );
        }
        other => panic!("expected an egress refusal, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("trunk.test") && text.contains("127.0.0.2"),
        "{text}"
    );
}

#[tokio::test]
async fn unknown_names_and_dead_name_servers_are_errors() {
    let (ns, _log) = serve(trunk_zone(300)).await;
    let r = Resolver::new(&settings(ns), egress(&["127.0.0.0/8"])).unwrap();
    let err = r.resolve("sip:nowhere.test").await.unwrap_err();
    assert!(matches!(err, ResolveError::NoAddresses { .. }), "{err:?}");

    // A port nobody listens on (bound, then closed): the lookup fails, quickly.
    let dead = UdpSocket::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let mut s = settings(dead);
    s.timeout = Duration::from_millis(200);
    let r = Resolver::new(&s, egress(&["127.0.0.0/8"])).unwrap();
    let err = r.resolve("sip:trunk.test").await.unwrap_err();
    assert!(matches!(err, ResolveError::DnsFailed { .. }), "{err:?}");
    // IP literals never need DNS.
    let t = r.resolve("sip:127.0.0.9:5070").await.unwrap();
    assert_eq!(t.all()[0].to_string(), "UDP 127.0.0.9:5070");
}
