//! The B2BUA core driven through the endpoint with scripted SIP and a fake clock: the
//! bridge flow and every way a call ends, with the real media controller behind it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use holdless::acl::Egress;
use holdless::config::Config;
use holdless::endpoint::Endpoint;
use holdless::media::config::MediaConfig;
use holdless::media::controller::MediaController;
use holdless::media::{MediaControl, MediaError, MediaId, Side};
use holdless::metrics::Counters;
use holdless::sip::name_addr;
use holdless::sip::parse::{parse, Framing};
use holdless::sip::{Message, Method, Name, Peer, Transmit};

/// The real controller, shared so the test can look at its pool after the endpoint used it.
#[derive(Clone)]
struct Shared(Arc<Mutex<MediaController>>);

impl MediaControl for Shared {
    fn create(&mut self, now: Instant) -> Result<MediaId, MediaError> {
        self.0.lock().unwrap().create(now)
    }
    fn offer(
        &mut self,
        now: Instant,
        id: MediaId,
        from: Side,
        sdp: &[u8],
    ) -> Result<Bytes, MediaError> {
        self.0.lock().unwrap().offer(now, id, from, sdp)
    }
    fn answer(
        &mut self,
        now: Instant,
        id: MediaId,
        from: Side,
        sdp: &[u8],
    ) -> Result<Bytes, MediaError> {
        self.0.lock().unwrap().answer(now, id, from, sdp)
    }
    fn release(&mut self, id: MediaId) {
        self.0.lock().unwrap().release(id)
    }
}

const CONFIG: &str = r#"
[sip]
udp = ["127.0.0.1:5060"]
[acl]
allow = ["127.0.0.0/8"]
[egress]
allow = ["127.0.0.0/8"]
[flood]
max_requests = 1000000
[calls]
ring_timeout_secs = 20
session_expires_secs = 1800
[[call_targets]]
id = "billing"
name = "Billing"
numbers = ["+15550001000"]
bridge_to = "sip:+15550009999@127.0.0.1:5090"
"#;

const CALLER: &str = "127.0.0.10:5070";
const CALLEE: &str = "127.0.0.1:5090";

fn sdp(ip: &str, port: u16, codecs: &str, dir: &str) -> String {
    let mut s = format!("v=0\r\no=peer 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {codecs}\r\n");
    for pt in codecs.split(' ') {
        match pt {
            "0" => s.push_str("a=rtpmap:0 PCMU/8000\r\n"),
            "8" => s.push_str("a=rtpmap:8 PCMA/8000\r\n"),
            "101" => s.push_str("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"),
            _ => {}
        }
    }
    s.push_str(&format!("a={dir}\r\n"));
    s
}

struct Harness {
    ep: Endpoint,
    media: Shared,
    now: Instant,
    seq: u32,
}

impl Harness {
    fn new() -> Self {
        Self::with(CONFIG)
    }

    fn with(config: &str) -> Self {
        let cfg = Config::parse(config).unwrap_or_else(|e| panic!("{e:?}"));
        let egress = Egress::new(cfg.egress_allow.clone());
        let media = Shared(Arc::new(Mutex::new(MediaController::new(
            MediaConfig::default(),
            egress,
        ))));
        let ep = Endpoint::new(&cfg, Counters::default(), 42, Box::new(media.clone()));
        Harness {
            ep,
            media,
            now: Instant::now(),
            seq: 0,
        }
    }

    fn send(&mut self, from: &str, msg: &str) -> Vec<Message> {
        let peer = Peer::udp(from.parse().unwrap());
        self.ep.handle_message(self.now, msg.as_bytes(), peer);
        self.drain()
    }

    fn drain(&mut self) -> Vec<Message> {
        let out: Vec<Transmit> = std::iter::from_fn(|| self.ep.poll_transmit()).collect();
        out.into_iter().map(|t| reparse(&t)).collect()
    }

    fn advance(&mut self, by: Duration) -> Vec<Message> {
        let until = self.now + by;
        let mut out = Vec::new();
        while let Some(t) = self.ep.poll_timeout().filter(|t| *t <= until) {
            self.now = t.max(self.now);
            self.ep.handle_timeout(self.now);
            out.extend(self.drain());
        }
        self.now = until;
        out
    }

    fn invite(&mut self, extra: &str) -> (String, Vec<Message>) {
        self.seq += 1;
        let body = sdp("127.0.0.10", 40000, "8 101", "sendrecv");
        let call_id = format!("in-{}@caller", self.seq);
        let msg = format!(
            "INVITE sip:+15550001000@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKin{seq}\r\n\
             Max-Forwards: 70\r\nFrom: \"Caller\" <sip:+15557654321@127.0.0.10>;tag=ca{seq}\r\n\
             To: <sip:+15550001000@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n\
             Contact: <sip:caller@{CALLER}>\r\nX-User-To-User: 4142432d3132333435;encoding=hex\r\nX-Foo: bar\r\n\
             P-Secret: internal\r\n{extra}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len(),
            seq = self.seq
        );
        let out = self.send(CALLER, &msg);
        (msg, out)
    }

    fn ports_in_use(&self) -> usize {
        self.media.0.lock().unwrap().ports_in_use()
    }
}

fn reparse(t: &Transmit) -> Message {
    parse(&t.msg.to_bytes(), Framing::Datagram)
        .expect("holdless sends SIP that parses")
        .msg
}

fn find(msgs: &[Message], pred: impl Fn(&Message) -> bool) -> Option<&Message> {
    msgs.iter().find(|m| pred(m))
}

fn status(msgs: &[Message], code: u16) -> Option<&Message> {
    find(msgs, |m| m.status() == Some(code))
}

fn request(msgs: &[Message], method: Method) -> Option<&Message> {
    find(msgs, |m| m.method() == Some(&method))
}

/// A response from a UA to a request holdless sent (To tag added, Contact, optional SDP).
fn answer(req: &Message, code: u16, tag: &str, body: Option<&str>, extra: &str) -> String {
    let vias: String = req
        .get_all(Name::Via)
        .map(|v| format!("Via: {v}\r\n"))
        .collect();
    let to = req.get(Name::To).unwrap();
    let to = if name_addr::tag(to).is_some() {
        to.to_owned()
    } else {
        format!("{to};tag={tag}")
    };
    let body = body.unwrap_or("");
    let ct = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\r\n".into()
    };
    format!(
        "SIP/2.0 {code} Whatever\r\n{vias}From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n\
         Contact: <sip:cc@{CALLEE}>\r\n{extra}{ct}Content-Length: {}\r\n\r\n{body}",
        req.get(Name::From).unwrap(),
        req.call_id().unwrap(),
        req.get(Name::CSeq).unwrap(),
        body.len()
    )
}

/// An in-dialog request from a UA, built from a message holdless sent it (which carries
/// holdless's tag in From for requests and in To for responses).
fn in_dialog(
    method: &str,
    cseq: u32,
    from_ua: &str,
    ours: &str,
    call_id: &str,
    body: Option<&str>,
    via_host: &str,
) -> String {
    let body = body.unwrap_or("");
    let ct = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\r\n".into()
    };
    format!(
        "{method} sip:holdless@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {via_host};branch=z9hG4bK{method}{cseq}{}\r\n\
         Max-Forwards: 70\r\nFrom: {from_ua}\r\nTo: {ours}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n\
         Contact: <sip:ua@{via_host}>\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        call_id.len(),
        body.len()
    )
}

/// Runs an INVITE through to an answered, ACKed call; returns the callee's INVITE and the
/// caller's 200.
fn answered_call(h: &mut Harness, callee_extra: &str) -> (String, Message, Message) {
    let (inv, out) = h.invite("");
    let b_inv = request(&out, Method::Invite)
        .expect("INVITE to the callee")
        .clone();
    let out = h.send(CALLEE, &answer(&b_inv, 180, "cc1", None, ""));
    assert!(status(&out, 180).is_some(), "180 relayed");
    let body = sdp("127.0.0.1", 41000, "8 101", "sendrecv");
    let out = h.send(
        CALLEE,
        &answer(&b_inv, 200, "cc1", Some(&body), callee_extra),
    );
    assert!(request(&out, Method::Ack).is_some(), "callee ACKed");
    let ok = status(&out, 200).expect("200 to the caller").clone();
    let ack = format!(
        "ACK sip:holdless@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKack{}\r\nMax-Forwards: 70\r\n\
         From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        h.seq,
        ok.get(Name::From).unwrap(),
        ok.get(Name::To).unwrap(),
        ok.call_id().unwrap()
    );
    assert!(h.send(CALLER, &ack).is_empty());
    (inv, b_inv, ok)
}

fn settle(h: &mut Harness) {
    h.advance(Duration::from_secs(200));
    assert_eq!(h.ep.calls(), 0, "calls left");
    assert_eq!(h.ep.transactions(), 0, "transactions left");
    assert!(h.ep.call_tables_empty(), "call tables not empty");
    assert_eq!(h.ports_in_use(), 0, "media ports leaked");
}

#[test]
fn the_callee_leg_is_built_anew_and_carries_the_metadata() {
    let mut h = Harness::new();
    let (inv, out) = h.invite("");
    let trying = status(&out, 100).expect("100 Trying");
    assert!(trying.get(Name::Via).unwrap().contains(CALLER));
    let b = request(&out, Method::Invite).expect("INVITE to the callee");
    assert_eq!(b.request_uri(), Some("sip:+15550009999@127.0.0.1:5090"));
    assert!(!inv.contains(b.call_id().unwrap()), "a new Call-ID");
    assert_eq!(b.count(Name::Via), 1);
    assert!(!b.get(Name::Via).unwrap().contains(CALLER));
    assert!(b.get(Name::Contact).unwrap().contains("127.0.0.1:5060"));
    assert!(b.get(Name::From).unwrap().contains("+15557654321"));
    assert_eq!(
        b.get_other("X-User-To-User"),
        Some("4142432d3132333435;encoding=hex")
    );
    assert_eq!(b.get_other("X-Foo"), Some("bar"));
    assert_eq!(
        b.get_other("P-Secret"),
        None,
        "only pass-through headers cross"
    );
    let body = std::str::from_utf8(&b.body).unwrap();
    assert!(body.contains("c=IN IP4 127.0.0.1"), "{body}");
    assert!(
        !body.contains("127.0.0.10"),
        "the caller's address never reaches the callee: {body}"
    );
}

#[test]
fn bridged_call_ends_with_a_bye_from_the_caller() {
    let mut h = Harness::new();
    let (_, b_inv, ok) = answered_call(&mut h, "");
    let body = std::str::from_utf8(&ok.body).unwrap();
    assert!(
        body.contains("c=IN IP4 127.0.0.1") && !body.contains("41000"),
        "{body}"
    );
    let bye = in_dialog(
        "BYE",
        2,
        ok.get(Name::From).unwrap(),
        ok.get(Name::To).unwrap(),
        ok.call_id().unwrap(),
        None,
        CALLER,
    );
    let out = h.send(CALLER, &bye);
    assert!(status(&out, 200).is_some());
    let b_bye = request(&out, Method::Bye).expect("BYE to the callee");
    assert_eq!(b_bye.call_id(), b_inv.call_id());
    assert_eq!(
        b_bye.request_uri(),
        Some("sip:cc@127.0.0.1:5090"),
        "remote target from the 200's Contact"
    );
    h.send(CALLEE, &answer(b_bye, 200, "x", None, ""));
    assert_eq!(h.ep.calls(), 0);
    settle(&mut h);
}

#[test]
fn bye_from_the_callee_ends_both_legs() {
    let mut h = Harness::new();
    let (_, b_inv, ok) = answered_call(&mut h, "");
    let from_cc = format!("{};tag=cc1", b_inv.get(Name::To).unwrap());
    let bye = in_dialog(
        "BYE",
        7,
        &from_cc,
        b_inv.get(Name::From).unwrap(),
        b_inv.call_id().unwrap(),
        None,
        CALLEE,
    );
    let out = h.send(CALLEE, &bye);
    assert!(status(&out, 200).is_some());
    let a_bye = request(&out, Method::Bye).expect("BYE to the caller");
    assert_eq!(a_bye.call_id(), ok.call_id());
    assert_eq!(
        a_bye.request_uri(),
        Some(format!("sip:caller@{CALLER}").as_str())
    );
    h.send(CALLER, &answer(a_bye, 200, "x", None, ""));
    settle(&mut h);
}

#[test]
fn cancel_before_answer_cancels_the_callee() {
    let mut h = Harness::new();
    let (inv, out) = h.invite("");
    let b_inv = request(&out, Method::Invite).unwrap().clone();
    h.send(CALLEE, &answer(&b_inv, 180, "cc1", None, ""));
    let cancel = inv
        .lines()
        .filter(|l| {
            l.starts_with("Via")
                || l.starts_with("From")
                || l.starts_with("To")
                || l.starts_with("Call-ID")
        })
        .map(|l| format!("{l}\r\n"))
        .collect::<String>();
    let cancel = format!("CANCEL sip:+15550001000@127.0.0.1:5060 SIP/2.0\r\n{cancel}Max-Forwards: 70\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n");
    let out = h.send(CALLER, &cancel);
    assert!(status(&out, 200).is_some(), "200 to the CANCEL");
    assert!(status(&out, 487).is_some(), "487 to the INVITE");
    let b_cancel = request(&out, Method::Cancel).expect("CANCEL to the callee");
    h.send(CALLEE, &answer(b_cancel, 200, "cc1", None, ""));
    let out = h.send(CALLEE, &answer(&b_inv, 487, "cc1", None, ""));
    assert!(request(&out, Method::Ack).is_some(), "487 ACKed");
    assert_eq!(h.ep.calls(), 0);
    settle(&mut h);
}

#[test]
fn busy_callee_gives_the_caller_486() {
    let mut h = Harness::new();
    let (_, out) = h.invite("");
    let b_inv = request(&out, Method::Invite).unwrap().clone();
    let out = h.send(
        CALLEE,
        &answer(&b_inv, 486, "cc1", None, "X-Reason: queue full\r\n"),
    );
    let busy = status(&out, 486).expect("486 to the caller");
    assert_eq!(busy.get_other("X-Reason"), Some("queue full"));
    assert!(request(&out, Method::Ack).is_some());
    assert_eq!(h.ep.calls(), 0);
    settle(&mut h);
}

#[test]
fn server_errors_map_to_bad_gateway() {
    let mut h = Harness::new();
    let (_, out) = h.invite("");
    let b_inv = request(&out, Method::Invite).unwrap().clone();
    let out = h.send(CALLEE, &answer(&b_inv, 500, "cc1", None, ""));
    assert!(status(&out, 502).is_some());
    settle(&mut h);
}

#[test]
fn no_answer_within_the_ring_timeout_gives_480_and_cancels() {
    let mut h = Harness::new();
    let (_, out) = h.invite("");
    let b_inv = request(&out, Method::Invite).unwrap().clone();
    h.send(CALLEE, &answer(&b_inv, 180, "cc1", None, ""));
    let out = h.advance(Duration::from_secs(21));
    assert!(status(&out, 480).is_some(), "480 to the caller");
    let b_cancel = request(&out, Method::Cancel)
        .expect("CANCEL to the callee")
        .clone();
    h.send(CALLEE, &answer(&b_cancel, 200, "cc1", None, ""));
    let out = h.send(CALLEE, &answer(&b_inv, 487, "cc1", None, ""));
    assert!(
        request(&out, Method::Bye).is_none(),
        "the unanswered caller gets no BYE"
    );
    assert_eq!(
        h.ep.calls(),
        0,
        "the call ends once the callee's INVITE is done"
    );
    settle(&mut h);
}

#[test]
fn silent_callee_times_out_with_408() {
    let mut h = Harness::with(&CONFIG.replace("ring_timeout_secs = 20", "ring_timeout_secs = 600"));
    h.invite("");
    let out = h.advance(Duration::from_secs(40));
    assert!(status(&out, 408).is_some(), "408 after Timer B");
    settle(&mut h);
}

#[test]
fn hold_reinvite_is_relayed_with_sdp_rewritten() {
    let mut h = Harness::new();
    let (_, b_inv, ok) = answered_call(&mut h, "");
    let hold = sdp("127.0.0.10", 40000, "8 101", "sendonly");
    let reinv = in_dialog(
        "INVITE",
        2,
        ok.get(Name::From).unwrap(),
        ok.get(Name::To).unwrap(),
        ok.call_id().unwrap(),
        Some(&hold),
        CALLER,
    );
    let out = h.send(CALLER, &reinv);
    let b_re = request(&out, Method::Invite)
        .expect("re-INVITE to the callee")
        .clone();
    assert_eq!(b_re.call_id(), b_inv.call_id());
    let body = std::str::from_utf8(&b_re.body).unwrap();
    assert!(body.contains("a=sendonly"), "{body}");
    let held = sdp("127.0.0.1", 41000, "8 101", "recvonly");
    let out = h.send(CALLEE, &answer(&b_re, 200, "cc1", Some(&held), ""));
    assert!(request(&out, Method::Ack).is_some(), "re-INVITE 200 ACKed");
    let ok2 = status(&out, 200).expect("200 to the caller's re-INVITE");
    assert!(std::str::from_utf8(&ok2.body)
        .unwrap()
        .contains("a=recvonly"));
    // glare: a second re-INVITE from the callee while one is pending toward it
    let reinv2 = in_dialog(
        "INVITE",
        3,
        ok.get(Name::From).unwrap(),
        ok.get(Name::To).unwrap(),
        ok.call_id().unwrap(),
        Some(&hold),
        CALLER,
    );
    let out = h.send(CALLER, &reinv2);
    let b_re2 = request(&out, Method::Invite)
        .expect("second re-INVITE")
        .clone();
    let from_cc = format!("{};tag=cc1", b_inv.get(Name::To).unwrap());
    let cross = in_dialog(
        "INVITE",
        8,
        &from_cc,
        b_inv.get(Name::From).unwrap(),
        b_inv.call_id().unwrap(),
        Some(&held),
        CALLEE,
    );
    let out = h.send(CALLEE, &cross);
    assert!(status(&out, 491).is_some(), "glare gets 491");
    h.send(CALLEE, &answer(&b_re2, 200, "cc1", Some(&held), ""));
    let bye = in_dialog(
        "BYE",
        4,
        ok.get(Name::From).unwrap(),
        ok.get(Name::To).unwrap(),
        ok.call_id().unwrap(),
        None,
        CALLER,
    );
    let out = h.send(CALLER, &bye);
    let b_bye = request(&out, Method::Bye).unwrap().clone();
    h.send(CALLEE, &answer(&b_bye, 200, "x", None, ""));
    settle(&mut h);
}

#[test]
fn session_refresh_by_holdless_and_teardown_when_it_fails() {
    let mut h = Harness::new();
    let (_, _, _) = answered_call(
        &mut h,
        "Session-Expires: 120;refresher=uac\r\nAllow: INVITE, ACK, BYE, UPDATE\r\n",
    );
    let out = h.advance(Duration::from_secs(61));
    let update = request(&out, Method::Update)
        .expect("UPDATE refresh at half the interval")
        .clone();
    assert!(update
        .get_other("Session-Expires")
        .unwrap()
        .starts_with("120"));
    h.send(
        CALLEE,
        &answer(
            &update,
            200,
            "cc1",
            None,
            "Session-Expires: 120;refresher=uac\r\n",
        ),
    );
    let out = h.advance(Duration::from_secs(61));
    let update2 = request(&out, Method::Update)
        .expect("second refresh")
        .clone();
    let out = h.send(CALLEE, &answer(&update2, 481, "cc1", None, ""));
    assert!(
        request(&out, Method::Bye).is_some(),
        "a failed refresh ends the call"
    );
    settle(&mut h);
}

#[test]
fn caller_session_timer_expires_without_refresh() {
    let mut h = Harness::new();
    let (inv, out) = h.invite("Session-Expires: 90\r\nSupported: timer\r\n");
    let _ = inv;
    let b_inv = request(&out, Method::Invite).unwrap().clone();
    let body = sdp("127.0.0.1", 41000, "8", "sendrecv");
    let out = h.send(CALLEE, &answer(&b_inv, 200, "cc1", Some(&body), ""));
    let ok = status(&out, 200).unwrap().clone();
    assert_eq!(ok.get_other("Session-Expires"), Some("90;refresher=uac"));
    assert_eq!(ok.get(Name::Require), Some("timer"));
    // no ACK and no refresh from the caller: the 2xx gives up after 64*T1, then BYE
    let out = h.advance(Duration::from_secs(100));
    assert!(find(&out, |m| m.method() == Some(&Method::Bye)).is_some());
    settle(&mut h);
}

#[test]
fn session_interval_too_small_gets_422() {
    let mut h = Harness::new();
    let (_, out) = h.invite("Session-Expires: 30\r\nSupported: timer\r\n");
    let r = status(&out, 422).expect("422");
    assert_eq!(r.get_other("Min-SE"), Some("90"));
    assert!(request(&out, Method::Invite).is_none());
    settle(&mut h);
}

#[test]
fn no_common_codec_gets_488_with_warning() {
    let mut h = Harness::new();
    let body = sdp("127.0.0.10", 40000, "18", "sendrecv")
        .replace("RTP/AVP 18", "RTP/AVP 18\r\na=rtpmap:18 G729/8000");
    let msg = format!(
        "INVITE sip:+15550001000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKg729\r\nMax-Forwards: 70\r\n\
         From: <sip:a@127.0.0.10>;tag=g\r\nTo: <sip:+15550001000@127.0.0.1>\r\nCall-ID: g729\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:a@{CALLER}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let out = h.send(CALLER, &msg);
    let r = status(&out, 488).expect("488");
    assert!(r.get(Name::Warning).unwrap().starts_with("305"));
    settle(&mut h);
}

/// Thousands of calls ending every way; afterwards every table is empty.
#[test]
fn thousands_of_calls_leave_nothing_behind() {
    let mut h = Harness::new();
    let mut rng = fastrand::Rng::with_seed(3261);
    for _ in 0..2000 {
        let (inv, out) = h.invite("");
        let Some(b_inv) = request(&out, Method::Invite).cloned() else {
            panic!("no INVITE out")
        };
        match rng.u8(0..6) {
            0 => {
                h.send(CALLEE, &answer(&b_inv, 486, "t", None, ""));
            }
            1 => {
                h.send(CALLEE, &answer(&b_inv, 180, "t", None, ""));
                let hdrs: String = inv
                    .lines()
                    .filter(|l| {
                        l.starts_with("Via")
                            || l.starts_with("From")
                            || l.starts_with("To:")
                            || l.starts_with("Call-ID")
                    })
                    .map(|l| format!("{l}\r\n"))
                    .collect();
                let out = h.send(CALLER, &format!("CANCEL sip:+15550001000@127.0.0.1:5060 SIP/2.0\r\n{hdrs}CSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n"));
                if let Some(c) = request(&out, Method::Cancel) {
                    let c = c.clone();
                    h.send(CALLEE, &answer(&c, 200, "t", None, ""));
                }
                if rng.bool() {
                    h.send(CALLEE, &answer(&b_inv, 487, "t", None, ""));
                }
            }
            2 => {
                let body = sdp("127.0.0.1", 41000, "8", "sendrecv");
                let out = h.send(CALLEE, &answer(&b_inv, 200, "t", Some(&body), ""));
                let ok = status(&out, 200).unwrap().clone();
                let bye = in_dialog(
                    "BYE",
                    2,
                    ok.get(Name::From).unwrap(),
                    ok.get(Name::To).unwrap(),
                    ok.call_id().unwrap(),
                    None,
                    CALLER,
                );
                let out = h.send(CALLER, &bye);
                if let Some(b) = request(&out, Method::Bye) {
                    let b = b.clone();
                    if rng.bool() {
                        h.send(CALLEE, &answer(&b, 200, "t", None, ""));
                    }
                }
            }
            3 => {
                let body = sdp("127.0.0.1", 41000, "0", "sendrecv");
                h.send(CALLEE, &answer(&b_inv, 200, "t", Some(&body), ""));
                let from_cc = format!("{};tag=t", b_inv.get(Name::To).unwrap());
                let bye = in_dialog(
                    "BYE",
                    5,
                    &from_cc,
                    b_inv.get(Name::From).unwrap(),
                    b_inv.call_id().unwrap(),
                    None,
                    CALLEE,
                );
                h.send(CALLEE, &bye);
            }
            _ => {}
        }
        h.advance(Duration::from_millis(rng.u64(0..3000)));
    }
    settle(&mut h);
}

#[allow(dead_code)]
fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn outbound_legs_go_through_the_configured_trunk() {
    let cfg = CONFIG.replace(
        "[calls]\n",
        "[calls]\noutbound_trunk = \"sip:127.0.0.1:5080\"\n",
    );
    let mut h = Harness::with(&cfg);
    h.seq += 1;
    let body = sdp("127.0.0.10", 40000, "8", "sendrecv");
    let msg = format!(
        "INVITE sip:+15550001000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKtr\r\nMax-Forwards: 70\r\n\
         From: <sip:a@127.0.0.10>;tag=t\r\nTo: <sip:+15550001000@127.0.0.1>\r\nCall-ID: trunk\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:a@{CALLER}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    h.ep.handle_message(h.now, msg.as_bytes(), Peer::udp(CALLER.parse().unwrap()));
    let out: Vec<Transmit> = std::iter::from_fn(|| h.ep.poll_transmit()).collect();
    let inv = out
        .iter()
        .find(|t| t.msg.method() == Some(&Method::Invite))
        .expect("INVITE out");
    assert_eq!(
        inv.to.addr,
        "127.0.0.1:5080".parse().unwrap(),
        "sent to the trunk"
    );
    assert_eq!(
        inv.msg.request_uri(),
        Some("sip:+15550009999@127.0.0.1:5090"),
        "R-URI is the target"
    );
    assert_eq!(inv.msg.get(Name::Route), Some("<sip:127.0.0.1:5080;lr>"));
}

/// A four-hour call: every refresh holdless owes is sent and answered, the caller's own
/// refreshes arrive in time, and the call is still up at the end.
#[test]
fn long_calls_survive_on_session_refreshes() {
    let mut h = Harness::new();
    let (_, _, ok) = answered_call(
        &mut h,
        "Session-Expires: 600;refresher=uac\r\nAllow: INVITE, ACK, BYE, UPDATE\r\n",
    );
    let mut cseq = 1;
    let mut refreshes = 0;
    for _ in 0..(4 * 3600 / 300) {
        for m in h.advance(Duration::from_secs(300)) {
            if m.method() == Some(&Method::Update) {
                refreshes += 1;
                h.send(
                    CALLEE,
                    &answer(
                        &m,
                        200,
                        "cc1",
                        None,
                        "Session-Expires: 600;refresher=uac\r\n",
                    ),
                );
            }
            assert_ne!(
                m.method(),
                Some(&Method::Bye),
                "the call must not be torn down"
            );
        }
        cseq += 1;
        let upd = in_dialog(
            "UPDATE",
            cseq,
            ok.get(Name::From).unwrap(),
            ok.get(Name::To).unwrap(),
            ok.call_id().unwrap(),
            None,
            CALLER,
        );
        let out = h.send(CALLER, &upd);
        assert!(
            status(&out, 200).is_some(),
            "the caller's refresh is answered"
        );
    }
    assert!(
        refreshes >= 45,
        "holdless refreshed the callee leg {refreshes} times"
    );
    assert_eq!(h.ep.calls(), 1, "still up after four hours");
}

/// The relay reports a silent side: the call ends on both legs with the reason recorded.
#[test]
fn media_timeout_ends_both_legs() {
    let mut h = Harness::new();
    let (_, b_inv, ok) = answered_call(&mut h, "");
    let now = h.now;
    h.ep.media_timeout(now, MediaId(1), Side::Callee);
    let out = h.drain();
    let byes: Vec<_> = out
        .iter()
        .filter(|m| m.method() == Some(&Method::Bye))
        .collect();
    assert_eq!(byes.len(), 2, "BYE to both legs");
    assert!(byes.iter().any(|b| b.call_id() == ok.call_id()));
    assert!(byes.iter().any(|b| b.call_id() == b_inv.call_id()));
    for b in byes.iter().map(|b| (*b).clone()).collect::<Vec<_>>() {
        let from = if b.call_id() == ok.call_id() {
            CALLER
        } else {
            CALLEE
        };
        h.send(from, &answer(&b, 200, "x", None, ""));
    }
    let mut ended = None;
    while let Some(ev) = h.ep.poll_call_event() {
        if let holdless::call::CallEvent::Ended { reason, .. } = ev {
            ended = Some(reason);
        }
    }
    assert_eq!(
        ended,
        Some(holdless::call::EndReason::MediaTimeout(Side::Callee))
    );
    settle(&mut h);
}

/// The callee answers a relayed re-INVITE with 491 (glare on its side): holdless waits the
/// RFC 3261 §14.1 time and sends it again; the caller gets the answer of the retry.
#[test]
fn relayed_reinvite_is_retried_after_491() {
    let mut h = Harness::new();
    let (_, _, ok) = answered_call(&mut h, "");
    let hold = sdp("127.0.0.10", 40000, "8 101", "sendonly");
    let reinv = in_dialog(
        "INVITE",
        2,
        ok.get(Name::From).unwrap(),
        ok.get(Name::To).unwrap(),
        ok.call_id().unwrap(),
        Some(&hold),
        CALLER,
    );
    let out = h.send(CALLER, &reinv);
    let first = request(&out, Method::Invite)
        .expect("re-INVITE to the callee")
        .clone();
    let out = h.send(CALLEE, &answer(&first, 491, "cc1", None, ""));
    assert!(
        status(&out, 491).is_none(),
        "the caller does not see the 491"
    );
    assert!(
        h.advance(Duration::from_millis(2000))
            .iter()
            .all(|m| m.method() != Some(&Method::Invite)),
        "not before 2.1 s"
    );
    let out = h.advance(Duration::from_millis(2100));
    let retry = request(&out, Method::Invite)
        .expect("re-INVITE sent again")
        .clone();
    assert_ne!(
        retry.get(Name::CSeq),
        first.get(Name::CSeq),
        "a new transaction"
    );
    assert!(std::str::from_utf8(&retry.body)
        .unwrap()
        .contains("a=sendonly"));
    let held = sdp("127.0.0.1", 41000, "8 101", "recvonly");
    let out = h.send(CALLEE, &answer(&retry, 200, "cc1", Some(&held), ""));
    let ok2 = status(&out, 200).expect("200 to the caller");
    assert!(std::str::from_utf8(&ok2.body)
        .unwrap()
        .contains("a=recvonly"));
}
