//! The B2BUA core driven through the endpoint with scripted SIP and a fake clock: the
//! bridge flow and every way a call ends, with the real media controller behind it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use holdless::acl::{Egress, FloodGuard};
use holdless::call::{CallEvent, EndReason};
use holdless::config::Config;
use holdless::endpoint::Endpoint;
use holdless::media::config::MediaConfig;
use holdless::media::controller::MediaController;
use holdless::media::{MediaControl, MediaError, MediaId, Side};
use holdless::metrics::Counters;
use holdless::sip::name_addr;
use holdless::sip::parse::{parse, Framing};
use holdless::sip::shard::{self, Shard};
use holdless::sip::{Message, Method, Name, Peer, Transmit};

/// The real controller, shared so the test can look at its pool after the endpoint used it;
/// the second field is the media of the last call created.
#[derive(Clone)]
struct Shared(Arc<Mutex<MediaController>>, Arc<Mutex<Option<MediaId>>>);

impl MediaControl for Shared {
    fn create(&mut self, now: Instant) -> Result<MediaId, MediaError> {
        let id = self.0.lock().unwrap().create(now)?;
        *self.1.lock().unwrap() = Some(id);
        Ok(id)
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
    fn secure(&mut self, id: MediaId, side: Side, policy: holdless::media::srtp::SrtpPolicy) {
        self.0.lock().unwrap().secure(id, side, policy)
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
        Self::sharded(config, Shard::SOLE)
    }

    /// One of several engines sharing the calls by Call-ID.
    fn sharded(config: &str, shard: Shard) -> Self {
        let cfg = Config::parse(config).unwrap_or_else(|e| panic!("{e:?}"));
        let egress = Egress::new(cfg.egress_allow.clone());
        let media = Shared(
            Arc::new(Mutex::new(MediaController::new(
                MediaConfig::default(),
                egress,
            ))),
            Arc::default(),
        );
        let flood = Arc::new(Mutex::new(FloodGuard::new(&cfg.flood)));
        let ep = Endpoint::sharded(
            &cfg,
            Counters::default(),
            42,
            Box::new(media.clone()),
            shard,
            flood,
        );
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
        self.invite_offering(extra, &sdp("127.0.0.10", 40000, "8 101", "sendrecv"))
    }

    /// [`Harness::invite`] with this SDP offer.
    fn invite_offering(&mut self, extra: &str, body: &str) -> (String, Vec<Message>) {
        self.seq += 1;
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

    /// The media of the last call created.
    fn last_media(&self) -> MediaId {
        self.media.1.lock().unwrap().expect("a call created media")
    }

    /// Why each call that ended since the last look ended.
    fn ended(&mut self) -> Vec<EndReason> {
        std::iter::from_fn(|| self.ep.poll_call_event())
            .filter_map(|ev| match ev {
                CallEvent::Ended { reason, .. } => Some(reason),
                _ => None,
            })
            .collect()
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
    answer_as(CALLEE, req, code, tag, body, extra)
}

/// [`answer`] from the UA at `host` (its Contact).
fn answer_as(
    host: &str,
    req: &Message,
    code: u16,
    tag: &str,
    body: Option<&str>,
    extra: &str,
) -> String {
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
         Contact: <sip:ua@{host}>\r\n{extra}{ct}Content-Length: {}\r\n\r\n{body}",
        req.get(Name::From).unwrap(),
        req.call_id().unwrap(),
        req.get(Name::CSeq).unwrap(),
        body.len()
    )
}

/// Makes every branch a test UA uses unique, so no request reads as a retransmission of an
/// earlier one (RFC 3261 §17.2.3 matches on branch, sent-by and method).
static BRANCH: AtomicU64 = AtomicU64::new(0);

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
        "{method} sip:holdless@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {via_host};branch=z9hG4bK{method}{cseq}x{}\r\n\
         Max-Forwards: 70\r\nFrom: {from_ua}\r\nTo: {ours}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n\
         Contact: <sip:ua@{via_host}>\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        BRANCH.fetch_add(1, Ordering::Relaxed),
        body.len()
    )
}

/// Runs an INVITE through to an answered, ACKed call; returns the callee's INVITE and the
/// caller's 200.
fn answered_call(h: &mut Harness, callee_extra: &str) -> (String, Message, Message) {
    answered_call_with(h, "", callee_extra)
}

/// [`answered_call`] with extra headers in the caller's INVITE too.
fn answered_call_with(
    h: &mut Harness,
    caller_extra: &str,
    callee_extra: &str,
) -> (String, Message, Message) {
    let (inv, out) = h.invite(caller_extra);
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
    assert!(h.send(CALLER, &ack_for(&ok, 1, CALLER)).is_empty());
    (inv, b_inv, ok)
}

/// The ACK a UA at `via_host` sends for a 2xx holdless gave its (re-)INVITE number `cseq`.
fn ack_for(ok: &Message, cseq: u32, via_host: &str) -> String {
    format!(
        "ACK sip:holdless@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {via_host};branch=z9hG4bKack{}\r\n\
         Max-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n",
        BRANCH.fetch_add(1, Ordering::Relaxed),
        ok.get(Name::From).unwrap(),
        ok.get(Name::To).unwrap(),
        ok.call_id().unwrap()
    )
}

/// The two dialogs of an answered call, seen from the UAs: requests each side sends.
struct Legs {
    /// holdless's 200 to the caller's INVITE.
    ok: Message,
    /// holdless's INVITE to the callee.
    b_inv: Message,
    /// The callee's To tag.
    cc_tag: &'static str,
}

impl Legs {
    fn new(b_inv: &Message, ok: &Message) -> Self {
        Legs {
            ok: ok.clone(),
            b_inv: b_inv.clone(),
            cc_tag: "cc1",
        }
    }

    /// An in-dialog request from the caller.
    fn by_caller(&self, method: &str, cseq: u32, body: Option<&str>) -> String {
        let ok = &self.ok;
        in_dialog(
            method,
            cseq,
            ok.get(Name::From).unwrap(),
            ok.get(Name::To).unwrap(),
            ok.call_id().unwrap(),
            body,
            CALLER,
        )
    }

    /// An in-dialog request from the callee.
    fn by_callee(&self, method: &str, cseq: u32, body: Option<&str>) -> String {
        let b = &self.b_inv;
        in_dialog(
            method,
            cseq,
            &format!("{};tag={}", b.get(Name::To).unwrap(), self.cc_tag),
            b.get(Name::From).unwrap(),
            b.call_id().unwrap(),
            body,
            CALLEE,
        )
    }

    /// Whether `m` belongs to the caller's dialog (else the callee's).
    fn is_caller(&self, m: &Message) -> bool {
        m.call_id() == self.ok.call_id()
    }
}

/// The SDP body of a message.
fn body(m: &Message) -> &str {
    std::str::from_utf8(&m.body).unwrap()
}

/// The `o=` version of an SDP body.
fn o_version(sdp: &str) -> u64 {
    let o = sdp.lines().find(|l| l.starts_with("o=")).expect("o= line");
    o.split(' ').nth(2).unwrap().parse().unwrap()
}

/// The `m=audio` line of an SDP body.
fn m_line(sdp: &str) -> &str {
    sdp.lines()
        .find(|l| l.starts_with("m=audio"))
        .expect("m=audio")
}

/// Asserts `sdp` is holdless's (its address and its port), not the UA's.
fn assert_rewritten(sdp: &str, ua_port: u16) {
    assert!(sdp.contains("c=IN IP4 127.0.0.1\r\n"), "{sdp}");
    assert!(!sdp.contains("127.0.0.10"), "{sdp}");
    assert!(
        !m_line(sdp).contains(&format!(" {ua_port} ")),
        "the UA's port leaked: {sdp}"
    );
}

/// Answers every BYE in `msgs` with 200 (from the UA it went to); returns how many.
fn answer_byes(h: &mut Harness, legs: &Legs, msgs: &[Message]) -> usize {
    let mut byes: Vec<Message> = msgs
        .iter()
        .filter(|m| m.method() == Some(&Method::Bye))
        .cloned()
        .collect();
    // Over UDP a BYE may have been retransmitted (Timer E) before the test looks.
    let mut seen = std::collections::HashSet::new();
    byes.retain(|m| {
        seen.insert((
            m.call_id().map(str::to_owned),
            m.get(Name::CSeq).map(str::to_owned),
        ))
    });
    for b in &byes {
        let host = if legs.is_caller(b) { CALLER } else { CALLEE };
        h.send(host, &answer_as(host, b, 200, "x", None, ""));
    }
    byes.len()
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
        Some("sip:ua@127.0.0.1:5090"),
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
    let cancel = cancel_for(&inv);
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

/// Found by the `endpoint` fuzz target: a callee that answers only 100 Trying was never
/// cancelled (100 did not count as the provisional a CANCEL waits for), so its INVITE and
/// the call outlived every timer.
#[test]
fn a_callee_that_only_sent_100_is_cancelled_at_the_ring_timeout() {
    let mut h = Harness::new();
    let (_, out) = h.invite("");
    let b_inv = request(&out, Method::Invite).unwrap().clone();
    let trying = answer(&b_inv, 100, "x", None, "").replace(";tag=x\r\n", "\r\n");
    let out = h.send(CALLEE, &trying);
    assert!(status(&out, 100).is_none(), "100 is not relayed");
    let out = h.advance(Duration::from_secs(21));
    assert!(status(&out, 480).is_some(), "480 to the caller");
    assert!(
        request(&out, Method::Cancel).is_some(),
        "CANCEL to the callee"
    );
    // The callee answers nothing more: the INVITE gives up 64·T1 after the CANCEL.
    h.advance(Duration::from_secs(64));
    assert_eq!(h.ep.calls(), 0);
    settle(&mut h);
}

/// Found by the `endpoint` fuzz target: a shutdown between holdless's 200 and the
/// caller's ACK owes the caller a BYE once it ACKs; a BYE from the caller instead left that
/// debt set, and the call waited for an ACK forever.
#[test]
fn a_bye_before_the_ack_during_shutdown_ends_the_call() {
    let mut h = Harness::new();
    let (_, out) = h.invite("");
    let b_inv = request(&out, Method::Invite).unwrap().clone();
    let body = sdp("127.0.0.1", 41000, "8 101", "sendrecv");
    let out = h.send(CALLEE, &answer(&b_inv, 200, "cc1", Some(&body), ""));
    let ok = status(&out, 200).expect("200 to the caller").clone();
    h.ep.shut_down(h.now);
    h.drain();
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
    assert!(status(&out, 200).is_some(), "the caller's BYE answered");
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

/// The caller never ACKs holdless's 2xx: after 64×T1 (32 s, well before its 90 s session
/// would expire) holdless gives up and BYEs both legs.
#[test]
fn unacked_2xx_to_the_caller_ends_the_call_after_64_t1() {
    let mut h = Harness::new();
    let (_, out) = h.invite("Session-Expires: 90\r\nSupported: timer\r\n");
    let b_inv = request(&out, Method::Invite).unwrap().clone();
    let body = sdp("127.0.0.1", 41000, "8", "sendrecv");
    let out = h.send(CALLEE, &answer(&b_inv, 200, "cc1", Some(&body), ""));
    let ok = status(&out, 200).unwrap().clone();
    assert_eq!(ok.get_other("Session-Expires"), Some("90;refresher=uac"));
    assert_eq!(ok.get(Name::Require), Some("timer"));
    assert!(
        h.advance(Duration::from_secs(31))
            .iter()
            .all(|m| m.method() != Some(&Method::Bye)),
        "not before 64×T1"
    );
    let out = h.advance(Duration::from_secs(2));
    let legs = Legs::new(&b_inv, &ok);
    assert_eq!(
        answer_byes(&mut h, &legs, &out),
        2,
        "BYE to both legs (§13.3.1.4)"
    );
    assert_eq!(h.ended(), vec![EndReason::NoAck(Side::Caller)]);
    settle(&mut h);
}

/// The caller asked for a 90 s session and refreshes it once (at 45 s), then goes silent:
/// the session expires 60 s (interval − min(32, interval/3)) after that refresh, not after
/// the answer, and holdless BYEs both legs with the reason recorded.
#[test]
fn caller_session_timer_expires_without_refresh() {
    let mut h = Harness::new();
    let (_, b_inv, ok) =
        answered_call_with(&mut h, "Session-Expires: 90\r\nSupported: timer\r\n", "");
    assert_eq!(ok.get_other("Session-Expires"), Some("90;refresher=uac"));
    let legs = Legs::new(&b_inv, &ok);
    assert!(h.advance(Duration::from_secs(45)).is_empty());
    let out = h.send(CALLER, &legs.by_caller("UPDATE", 2, None));
    let r = status(&out, 200).expect("refresh answered");
    assert_eq!(r.get_other("Session-Expires"), Some("90;refresher=uac"));
    let quiet = h.advance(Duration::from_secs(59));
    assert!(
        quiet.iter().all(|m| m.method() != Some(&Method::Bye)),
        "the refresh restarted the session timer"
    );
    assert_eq!(h.ep.calls(), 1);
    let out = h.advance(Duration::from_secs(2));
    assert_eq!(answer_byes(&mut h, &legs, &out), 2, "BYE to both legs");
    assert!(out
        .iter()
        .any(|m| m.method() == Some(&Method::Bye) && legs.is_caller(m)));
    assert_eq!(h.ended(), vec![EndReason::SessionExpired(Side::Caller)]);
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

/// An SDP offer or answer with G.729 only: nothing in common with holdless.
fn g729(ip: &str, port: u16) -> String {
    sdp(ip, port, "18", "sendrecv").replace("RTP/AVP 18", "RTP/AVP 18\r\na=rtpmap:18 G729/8000")
}

/// CANCEL for the caller's INVITE `inv`.
fn cancel_for(inv: &str) -> String {
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
    format!("CANCEL sip:+15550001000@127.0.0.1:5060 SIP/2.0\r\n{hdrs}CSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n")
}

/// The callee answers `b_inv` 200 (with `extra` headers); the caller ACKs unless `ack` is
/// false. Returns the call's dialogs.
fn answer_leg(h: &mut Harness, b_inv: &Message, extra: &str, ack: bool) -> Legs {
    let body = sdp("127.0.0.1", 41000, "8", "sendrecv");
    let out = h.send(CALLEE, &answer(b_inv, 200, "cc1", Some(&body), extra));
    let ok = status(&out, 200).expect("200 to the caller").clone();
    if ack {
        h.send(CALLER, &ack_for(&ok, 1, CALLER));
    }
    Legs::new(b_inv, &ok)
}

/// Answers (or, when `rng` says so, ignores) the BYEs in `msgs`.
fn maybe_answer_byes(h: &mut Harness, legs: &Legs, msgs: &[Message], rng: &mut fastrand::Rng) {
    if rng.bool() {
        answer_byes(h, legs, msgs);
    }
}

/// Thousands of calls ending every way (busy, CANCEL, BYE from either side, no answer,
/// hold with glare, failed session refresh, media timeout, 5xx, no common codec on either
/// side, 422 on either side, in-dialog timeout); afterwards every table is empty.
#[test]
fn thousands_of_calls_leave_nothing_behind() {
    let mut h = Harness::new();
    let mut rng = fastrand::Rng::with_seed(3261);
    let mut reasons = std::collections::BTreeSet::new();
    for _ in 0..2500 {
        let case = rng.u8(0..14);
        // Refused before any outbound leg: too small a session interval, or no codec.
        if case == 11 {
            let (_, out) = h.invite("Session-Expires: 30\r\nSupported: timer\r\n");
            assert!(status(&out, 422).is_some());
        } else if case == 9 {
            let (_, out) = h.invite_offering("", &g729("127.0.0.10", 40000));
            assert!(status(&out, 488).is_some());
        }
        if case == 9 || case == 11 {
            h.advance(Duration::from_millis(rng.u64(0..3000)));
            continue;
        }
        let (inv, out) = h.invite("");
        let Some(b_inv) = request(&out, Method::Invite).cloned() else {
            panic!("no INVITE out")
        };
        match case {
            0 => {
                h.send(CALLEE, &answer(&b_inv, 486, "t", None, ""));
            }
            1 => {
                h.send(CALLEE, &answer(&b_inv, 180, "t", None, ""));
                let out = h.send(CALLER, &cancel_for(&inv));
                if let Some(c) = request(&out, Method::Cancel) {
                    let c = c.clone();
                    h.send(CALLEE, &answer(&c, 200, "t", None, ""));
                }
                if rng.bool() {
                    h.send(CALLEE, &answer(&b_inv, 487, "t", None, ""));
                }
            }
            2 => {
                let legs = answer_leg(&mut h, &b_inv, "", rng.bool());
                let out = h.send(CALLER, &legs.by_caller("BYE", 2, None));
                maybe_answer_byes(&mut h, &legs, &out, &mut rng);
            }
            3 => {
                let legs = answer_leg(&mut h, &b_inv, "", rng.bool());
                let out = h.send(CALLEE, &legs.by_callee("BYE", 5, None));
                maybe_answer_byes(&mut h, &legs, &out, &mut rng);
            }
            5 => {
                // Hold from the caller; the callee's crossing re-INVITE gets 491; the relay
                // completes, or meets a 491 itself and the caller hangs up during the wait.
                let legs = answer_leg(&mut h, &b_inv, "", true);
                let hold = sdp("127.0.0.10", 40000, "8", "sendonly");
                let out = h.send(CALLER, &legs.by_caller("INVITE", 2, Some(&hold)));
                let b_re = request(&out, Method::Invite).expect("relayed").clone();
                let held = sdp("127.0.0.1", 41000, "8", "recvonly");
                let out = h.send(CALLEE, &legs.by_callee("INVITE", 7, Some(&held)));
                assert!(status(&out, 491).is_some(), "glare gets 491");
                if rng.bool() {
                    let out = h.send(CALLEE, &answer(&b_re, 200, "cc1", Some(&held), ""));
                    let ok = status(&out, 200).expect("200 relayed").clone();
                    h.send(CALLER, &ack_for(&ok, 2, CALLER));
                    let out = h.send(CALLEE, &legs.by_callee("BYE", 8, None));
                    maybe_answer_byes(&mut h, &legs, &out, &mut rng);
                } else {
                    h.send(CALLEE, &answer(&b_re, 491, "cc1", None, ""));
                    let out = h.send(CALLER, &legs.by_caller("BYE", 3, None));
                    maybe_answer_byes(&mut h, &legs, &out, &mut rng);
                }
            }
            6 => {
                // holdless's refresh is refused: the session is over.
                let legs = answer_leg(
                    &mut h,
                    &b_inv,
                    "Session-Expires: 120;refresher=uac\r\nAllow: INVITE, ACK, BYE, UPDATE\r\n",
                    true,
                );
                let out = h.advance(Duration::from_secs(61));
                let upd = find(&out, |m| {
                    m.method() == Some(&Method::Update) && m.call_id() == b_inv.call_id()
                })
                .expect("refresh")
                .clone();
                let code = [481, 500, 408][rng.usize(0..3)];
                let out = h.send(CALLEE, &answer(&upd, code, "cc1", None, ""));
                maybe_answer_byes(&mut h, &legs, &out, &mut rng);
            }
            7 => {
                let legs = answer_leg(&mut h, &b_inv, "", true);
                let side = if rng.bool() {
                    Side::Caller
                } else {
                    Side::Callee
                };
                let now = h.now;
                let media = h.last_media();
                h.ep.media_timeout(now, media, side);
                let out = h.drain();
                maybe_answer_byes(&mut h, &legs, &out, &mut rng);
            }
            8 => {
                let code = [500, 503, 504][rng.usize(0..3)];
                let out = h.send(CALLEE, &answer(&b_inv, code, "t", None, ""));
                assert!(out.iter().any(|m| m.status().is_some_and(|c| c >= 500)));
            }
            10 => {
                // The callee answers with no codec in common: 488 to the caller, BYE to it.
                let out = h.send(
                    CALLEE,
                    &answer(&b_inv, 200, "cc1", Some(&g729("127.0.0.1", 41000)), ""),
                );
                assert!(status(&out, 488).is_some(), "488 to the caller");
                if rng.bool() {
                    if let Some(b) = request(&out, Method::Bye).cloned() {
                        h.send(CALLEE, &answer(&b, 200, "cc1", None, ""));
                    }
                }
            }
            12 => {
                let out = h.send(CALLEE, &answer(&b_inv, 422, "t", None, "Min-SE: 3600\r\n"));
                let retry = request(&out, Method::Invite).expect("retried").clone();
                if rng.bool() {
                    let legs = answer_leg(&mut h, &retry, "", true);
                    let out = h.send(CALLER, &legs.by_caller("BYE", 2, None));
                    maybe_answer_byes(&mut h, &legs, &out, &mut rng);
                } else {
                    let out = h.send(CALLEE, &answer(&retry, 422, "t", None, "Min-SE: 7200\r\n"));
                    assert!(out.iter().any(|m| m.status().is_some_and(|c| c >= 400)));
                }
            }
            13 => {
                // The callee goes silent: the relayed re-INVITE times out later (Timer B).
                let legs = answer_leg(&mut h, &b_inv, "", true);
                let hold = sdp("127.0.0.10", 40000, "8", "sendonly");
                let out = h.send(CALLER, &legs.by_caller("INVITE", 2, Some(&hold)));
                assert!(request(&out, Method::Invite).is_some());
            }
            _ => {} // no answer: the ring timeout ends it
        }
        // BYEs sent by timers (timeouts, expiries) go unanswered: Timer F ends them.
        h.advance(Duration::from_millis(rng.u64(0..3000)));
        reasons.extend(h.ended().iter().map(EndReason::label));
    }
    settle(&mut h);
    reasons.extend(h.ended().iter().map(EndReason::label));
    for want in [
        "rejected",
        "cancelled",
        "caller_hangup",
        "callee_hangup",
        "no_answer",
        "session_expired",
        "media_timeout",
        "media_error",
        "timeout",
    ] {
        assert!(reasons.contains(want), "no call ended {want}: {reasons:?}");
    }
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

/// The relay parameters of the last call's media.
fn relay_params(h: &Harness) -> holdless::media::relay::RelayParams {
    let id = h.last_media();
    h.media.0.lock().unwrap().relay_params(id).unwrap().clone()
}

/// Ends an answered call with a BYE from the caller, answered by the callee, and settles.
fn hang_up(h: &mut Harness, legs: &Legs, cseq: u32) {
    let out = h.send(CALLER, &legs.by_caller("BYE", cseq, None));
    assert!(status(&out, 200).is_some(), "BYE answered");
    assert_eq!(answer_byes(h, legs, &out), 1, "BYE to the callee");
    settle(h);
}

/// UPDATE with SDP, both ways: hold from the caller by UPDATE, resume from the callee by
/// UPDATE. Each is relayed in the other dialog with holdless's SDP (its address and port,
/// a higher `o=` version); no ACK is involved.
#[test]
fn update_with_sdp_is_relayed_both_ways_with_sdp_rewritten() {
    let mut h = Harness::new();
    let (_, b_inv, ok) = answered_call(&mut h, "");
    let legs = Legs::new(&b_inv, &ok);
    let (v_b, v_a) = (o_version(body(&b_inv)), o_version(body(&ok)));

    let hold = sdp("127.0.0.10", 40002, "8 101", "sendonly");
    let out = h.send(CALLER, &legs.by_caller("UPDATE", 2, Some(&hold)));
    let b_upd = request(&out, Method::Update)
        .expect("UPDATE to the callee")
        .clone();
    assert_eq!(b_upd.call_id(), b_inv.call_id());
    assert_rewritten(body(&b_upd), 40002);
    assert!(body(&b_upd).contains("a=sendonly"), "{}", body(&b_upd));
    assert!(o_version(body(&b_upd)) > v_b, "o= version goes up");
    let held = sdp("127.0.0.1", 41000, "8 101", "recvonly");
    let out = h.send(CALLEE, &answer(&b_upd, 200, "cc1", Some(&held), ""));
    assert!(request(&out, Method::Ack).is_none(), "no ACK for UPDATE");
    let ok_a = status(&out, 200).expect("200 to the caller's UPDATE");
    assert_eq!(ok_a.call_id(), ok.call_id());
    assert_rewritten(body(ok_a), 41000);
    assert!(body(ok_a).contains("a=recvonly"), "{}", body(ok_a));
    assert!(o_version(body(ok_a)) > v_a);
    let p = relay_params(&h);
    assert_eq!(p.caller.rtp, Some("127.0.0.10:40002".parse().unwrap()));
    assert!(p.on_hold);

    let resume = sdp("127.0.0.1", 41002, "8 101", "sendrecv");
    let out = h.send(CALLEE, &legs.by_callee("UPDATE", 9, Some(&resume)));
    let a_upd = request(&out, Method::Update)
        .expect("UPDATE to the caller")
        .clone();
    assert_eq!(a_upd.call_id(), ok.call_id());
    assert_rewritten(body(&a_upd), 41002);
    assert!(body(&a_upd).contains("a=sendrecv"), "{}", body(&a_upd));
    let answer_a = sdp("127.0.0.10", 40002, "8 101", "sendrecv");
    let out = h.send(
        CALLER,
        &answer_as(CALLER, &a_upd, 200, "x", Some(&answer_a), ""),
    );
    let ok_b = status(&out, 200).expect("200 to the callee's UPDATE");
    assert_eq!(ok_b.call_id(), b_inv.call_id());
    assert_rewritten(body(ok_b), 40002);
    assert!(body(ok_b).contains("a=sendrecv"), "{}", body(ok_b));
    let p = relay_params(&h);
    assert_eq!(p.callee.rtp, Some("127.0.0.1:41002".parse().unwrap()));
    assert!(!p.on_hold);
    hang_up(&mut h, &legs, 3);
}

/// The contact center puts the caller on hold with a re-INVITE, then resumes: each offer
/// reaches the caller rewritten, each answer comes back rewritten, every 2xx is ACKed on
/// both legs and the call stays up past the 64×T1 ACK wait.
#[test]
fn callee_hold_and_resume_reinvites_are_relayed() {
    let mut h = Harness::new();
    let (_, b_inv, ok) = answered_call(&mut h, "");
    let legs = Legs::new(&b_inv, &ok);
    for (cseq, (offer_dir, answer_dir)) in
        [(8, ("sendonly", "recvonly")), (9, ("sendrecv", "sendrecv"))]
    {
        let offer = sdp("127.0.0.1", 41000, "8 101", offer_dir);
        let out = h.send(CALLEE, &legs.by_callee("INVITE", cseq, Some(&offer)));
        let a_re = request(&out, Method::Invite)
            .expect("re-INVITE to the caller")
            .clone();
        assert_eq!(a_re.call_id(), ok.call_id());
        assert!(
            a_re.request_uri().unwrap().ends_with(&format!("@{CALLER}")),
            "sent to the caller's Contact"
        );
        assert_rewritten(body(&a_re), 41000);
        assert!(
            body(&a_re).contains(&format!("a={offer_dir}")),
            "{}",
            body(&a_re)
        );
        let ans = sdp("127.0.0.10", 40000, "8 101", answer_dir);
        let out = h.send(CALLER, &answer_as(CALLER, &a_re, 200, "x", Some(&ans), ""));
        let ack = request(&out, Method::Ack).expect("caller's 200 ACKed");
        assert_eq!(ack.call_id(), ok.call_id());
        let ok_b = status(&out, 200).expect("200 to the callee").clone();
        assert_eq!(ok_b.call_id(), b_inv.call_id());
        assert_rewritten(body(&ok_b), 40000);
        assert!(
            body(&ok_b).contains(&format!("a={answer_dir}")),
            "{}",
            body(&ok_b)
        );
        assert_eq!(relay_params(&h).on_hold, offer_dir == "sendonly");
        assert!(h.send(CALLEE, &ack_for(&ok_b, cseq, CALLEE)).is_empty());
        let later = h.advance(Duration::from_secs(40));
        assert!(
            later.iter().all(|m| m.method() != Some(&Method::Bye)),
            "the ACKed re-INVITE keeps the call up"
        );
        assert!(
            status(&later, 200).is_none(),
            "no 2xx retransmission after the ACK"
        );
    }
    assert_eq!(h.ep.calls(), 1);
    hang_up(&mut h, &legs, 2);
}

/// A codec change: the caller re-offers PCMU only on a PCMA call; the callee is offered
/// PCMU first, picks it, and the caller's answer names PCMU alone.
#[test]
fn codec_change_reoffer_is_relayed() {
    let mut h = Harness::new();
    let (_, b_inv, ok) = answered_call(&mut h, "");
    assert!(m_line(body(&ok)).ends_with(" 8 101"), "{}", body(&ok));
    let legs = Legs::new(&b_inv, &ok);
    let pcmu = sdp("127.0.0.10", 40000, "0 101", "sendrecv");
    let out = h.send(CALLER, &legs.by_caller("INVITE", 2, Some(&pcmu)));
    let b_re = request(&out, Method::Invite)
        .expect("re-INVITE to the callee")
        .clone();
    let offered = m_line(body(&b_re)).to_owned();
    assert!(offered.contains("RTP/AVP 0"), "PCMU first: {offered}");
    assert!(
        body(&b_re).contains("a=rtpmap:0 PCMU/8000"),
        "{}",
        body(&b_re)
    );
    let v = o_version(body(&b_re));
    assert!(
        v > o_version(body(&b_inv)),
        "a changed offer is a new version"
    );
    let ans = sdp("127.0.0.1", 41000, "0 101", "sendrecv");
    let out = h.send(CALLEE, &answer(&b_re, 200, "cc1", Some(&ans), ""));
    assert!(request(&out, Method::Ack).is_some());
    let ok2 = status(&out, 200).expect("200 to the caller").clone();
    let m = m_line(body(&ok2));
    assert!(m.ends_with(" 0 101"), "PCMU in the answer: {m}");
    assert!(!body(&ok2).contains("PCMA"), "{}", body(&ok2));
    assert_rewritten(body(&ok2), 41000);
    assert!(h.send(CALLER, &ack_for(&ok2, 2, CALLER)).is_empty());
    hang_up(&mut h, &legs, 3);
}

/// The callee refuses holdless's 1800 s session with 422 and Min-SE 3600: holdless sends
/// the INVITE again (same dialog identifiers, next CSeq) with Session-Expires and Min-SE
/// raised, the caller sees none of it, and the callee leg then refreshes on 3600 s.
#[test]
fn callee_422_is_retried_with_the_session_interval_raised() {
    let mut h = Harness::new();
    let (_, out) = h.invite("");
    let first = request(&out, Method::Invite).unwrap().clone();
    assert_eq!(first.get_other("Session-Expires"), Some("1800"));
    let out = h.send(
        CALLEE,
        &answer(&first, 422, "cc0", None, "Min-SE: 3600\r\n"),
    );
    assert!(request(&out, Method::Ack).is_some(), "422 ACKed");
    assert!(
        out.iter().all(|m| m.status().is_none()),
        "nothing reaches the caller"
    );
    let retry = request(&out, Method::Invite)
        .expect("INVITE sent again")
        .clone();
    assert_eq!(retry.call_id(), first.call_id());
    assert_eq!(retry.get(Name::From), first.get(Name::From));
    assert_eq!(retry.get(Name::CSeq), Some("2 INVITE"));
    assert_ne!(retry.get(Name::Via), first.get(Name::Via), "a new branch");
    assert_eq!(retry.get_other("Session-Expires"), Some("3600"));
    assert_eq!(retry.get_other("Min-SE"), Some("3600"));
    assert_eq!(retry.body, first.body, "the same offer");
    let body = sdp("127.0.0.1", 41000, "8 101", "sendrecv");
    // A callee that does not do session timers itself: no Session-Expires in its 200.
    let out = h.send(
        CALLEE,
        &answer(
            &retry,
            200,
            "cc1",
            Some(&body),
            "Allow: INVITE, ACK, BYE, UPDATE\r\n",
        ),
    );
    let ack = request(&out, Method::Ack).expect("200 ACKed");
    assert_eq!(ack.get(Name::CSeq), Some("2 ACK"));
    let ok = status(&out, 200).expect("200 to the caller").clone();
    assert!(h.send(CALLER, &ack_for(&ok, 1, CALLER)).is_empty());
    let legs = Legs::new(&retry, &ok);
    assert!(
        h.advance(Duration::from_secs(1700))
            .iter()
            .all(|m| m.method() != Some(&Method::Update)),
        "no refresh at half of the refused 1800 s"
    );
    let out = h.advance(Duration::from_secs(101));
    let upd = request(&out, Method::Update)
        .expect("refresh at half of 3600 s")
        .clone();
    assert_eq!(upd.get_other("Session-Expires"), Some("3600;refresher=uac"));
    let out = h.send(CALLEE, &answer(&upd, 200, "cc1", None, ""));
    assert!(request(&out, Method::Bye).is_none());
    assert_eq!(h.ep.calls(), 1);
    hang_up(&mut h, &legs, 2);
}

/// The callee's Allow has no UPDATE: holdless refreshes its session with a re-INVITE that
/// repeats the SDP it last sent (same `o=` version: nothing changed), ACKs the 200, and
/// the caller sees nothing of it.
#[test]
fn session_refresh_by_reinvite_when_update_is_not_allowed() {
    let mut h = Harness::new();
    let (_, b_inv, ok) = answered_call(
        &mut h,
        "Session-Expires: 120;refresher=uac\r\nAllow: INVITE, ACK, BYE, CANCEL\r\n",
    );
    let legs = Legs::new(&b_inv, &ok);
    let mut last_cseq = 1;
    for _ in 0..3 {
        let out = h.advance(Duration::from_secs(61));
        assert!(
            request(&out, Method::Update).is_none(),
            "UPDATE not allowed"
        );
        let re = request(&out, Method::Invite)
            .expect("re-INVITE refresh at half the interval")
            .clone();
        assert_eq!(re.call_id(), b_inv.call_id());
        let (n, _) = re.get(Name::CSeq).unwrap().split_once(' ').unwrap();
        let n: u32 = n.parse().unwrap();
        assert!(n > last_cseq);
        last_cseq = n;
        assert_eq!(re.get_other("Session-Expires"), Some("120;refresher=uac"));
        assert_eq!(re.body, b_inv.body, "the SDP last sent, unchanged");
        let body = sdp("127.0.0.1", 41000, "8 101", "sendrecv");
        let out = h.send(
            CALLEE,
            &answer(
                &re,
                200,
                "cc1",
                Some(&body),
                "Session-Expires: 120;refresher=uac\r\n",
            ),
        );
        let ack = request(&out, Method::Ack).expect("refresh 200 ACKed");
        assert_eq!(ack.get(Name::CSeq), Some(format!("{n} ACK").as_str()));
        assert!(
            out.iter().all(|m| !legs.is_caller(m)),
            "the caller sees nothing of it"
        );
    }
    assert_eq!(h.ep.calls(), 1);
    hang_up(&mut h, &legs, 2);
}

/// A relayed re-INVITE gets no response at all from the callee: at Timer B (64×T1) the
/// caller's re-INVITE is answered 408, both legs get a BYE, and once the dead callee's BYE
/// times out too nothing of the call is left.
#[test]
fn relayed_reinvite_timing_out_ends_the_call_on_both_legs() {
    let mut h = Harness::new();
    let (_, b_inv, ok) = answered_call(&mut h, "");
    let legs = Legs::new(&b_inv, &ok);
    let hold = sdp("127.0.0.10", 40000, "8 101", "sendonly");
    let out = h.send(CALLER, &legs.by_caller("INVITE", 2, Some(&hold)));
    assert!(request(&out, Method::Invite).is_some(), "relayed");
    let waiting = h.advance(Duration::from_secs(31));
    assert!(waiting.iter().all(|m| m.method() != Some(&Method::Bye)));
    assert!(waiting.iter().all(|m| m.status().is_none_or(|c| c < 200)));
    let out = h.advance(Duration::from_secs(2));
    let r = find(&out, |m| m.status().is_some_and(|c| c >= 200)).expect("final response");
    assert_eq!(r.status(), Some(408), "the far leg timed out");
    assert_eq!(r.call_id(), ok.call_id());
    let byes: Vec<_> = out
        .iter()
        .filter(|m| m.method() == Some(&Method::Bye))
        .collect();
    assert!(byes.iter().any(|b| legs.is_caller(b)), "BYE to the caller");
    assert!(byes.iter().any(|b| !legs.is_caller(b)), "BYE to the callee");
    // Only the caller answers its BYE; the callee's goes unanswered (Timer F).
    for b in byes.iter().filter(|b| legs.is_caller(b)).take(1) {
        let b = (*b).clone();
        h.send(CALLER, &answer_as(CALLER, &b, 200, "x", None, ""));
    }
    assert_eq!(h.ep.calls(), 1, "still waiting for the callee's BYE");
    h.advance(Duration::from_secs(33));
    assert_eq!(h.ended(), vec![EndReason::Timeout(Side::Callee)]);
    settle(&mut h);
}

/// An answered call whose caller put it on hold by re-INVITE: the call's legs and the
/// re-INVITE relayed to the callee (not answered yet).
fn relayed_hold(h: &mut Harness) -> (Legs, Message) {
    let (_, b_inv, ok) = answered_call(h, "");
    let legs = Legs::new(&b_inv, &ok);
    let hold = sdp("127.0.0.10", 40000, "8 101", "sendonly");
    let out = h.send(CALLER, &legs.by_caller("INVITE", 2, Some(&hold)));
    let reinv = request(&out, Method::Invite).expect("relayed").clone();
    (legs, reinv)
}

/// A relayed re-INVITE the callee only answered with 100 when the call ends (the fuzz crash
/// `crash-reoffer-client-tx-left`): it is cancelled (an INVITE client transaction past its
/// first provisional waits for ever otherwise), and nothing of the call is left.
#[test]
fn a_relayed_reinvite_still_proceeding_is_cancelled_when_the_call_ends() {
    let mut h = Harness::new();
    let (legs, reinv) = relayed_hold(&mut h);
    assert!(h
        .send(CALLEE, &answer(&reinv, 100, "cc1", None, ""))
        .is_empty());
    let out = h.send(CALLER, &legs.by_caller("BYE", 3, None));
    assert!(status(&out, 487).is_some(), "the caller's re-INVITE ends");
    let cancel = request(&out, Method::Cancel).expect("the re-INVITE is cancelled");
    assert_eq!(cancel.get(Name::Via), reinv.get(Name::Via));
    assert_eq!(answer_byes(&mut h, &legs, &out), 1, "BYE to the callee");
    assert_eq!(h.ep.calls(), 1, "the call waits for the re-INVITE's end");
    // The callee answers neither the CANCEL nor the re-INVITE: Timer B ends it.
    h.advance(Duration::from_secs(33));
    assert_eq!(h.ended(), vec![EndReason::HungUp(Side::Caller)]);
    settle(&mut h);
}

/// The same re-INVITE without a provisional yet when the call ends: no CANCEL may go
/// (RFC 3261 §9.1) until its first provisional, which is cancelled at once; its 487 ends
/// the call.
#[test]
fn a_relayed_reinvite_is_cancelled_at_its_first_provisional_after_the_call_ended() {
    let mut h = Harness::new();
    let (legs, reinv) = relayed_hold(&mut h);
    let out = h.send(CALLER, &legs.by_caller("BYE", 3, None));
    assert!(
        request(&out, Method::Cancel).is_none(),
        "no CANCEL before a 1xx"
    );
    assert_eq!(answer_byes(&mut h, &legs, &out), 1, "BYE to the callee");
    assert_eq!(h.ep.calls(), 1, "the call waits for the re-INVITE's end");
    let out = h.send(CALLEE, &answer(&reinv, 180, "cc1", None, ""));
    let cancel = request(&out, Method::Cancel).expect("cancelled at its first 1xx");
    h.send(CALLEE, &answer(cancel, 200, "cc1", None, ""));
    h.send(CALLEE, &answer(&reinv, 487, "cc1", None, ""));
    assert_eq!(h.ep.calls(), 0, "the call ended with the re-INVITE");
    assert_eq!(h.ended(), vec![EndReason::HungUp(Side::Caller)]);
    settle(&mut h);
}

/// holdless's own session refresh (UPDATE where allowed, else re-INVITE) gets no response:
/// at Timer F / Timer B the session is over, both legs get a BYE, nothing is left.
#[test]
fn session_refresh_timing_out_ends_the_call_on_both_legs() {
    for (allow, method) in [
        ("INVITE, ACK, BYE, UPDATE", Method::Update),
        ("INVITE, ACK, BYE", Method::Invite),
    ] {
        let mut h = Harness::new();
        let (_, b_inv, ok) = answered_call(
            &mut h,
            &format!("Session-Expires: 120;refresher=uac\r\nAllow: {allow}\r\n"),
        );
        let legs = Legs::new(&b_inv, &ok);
        let out = h.advance(Duration::from_secs(61));
        assert!(
            request(&out, method.clone()).is_some(),
            "refresh by {method:?}"
        );
        let waiting = h.advance(Duration::from_secs(30));
        assert!(waiting.iter().all(|m| m.method() != Some(&Method::Bye)));
        let out = h.advance(Duration::from_secs(3));
        let to_caller = find(&out, |m| {
            m.method() == Some(&Method::Bye) && legs.is_caller(m)
        })
        .expect("BYE to the caller")
        .clone();
        assert!(
            out.iter()
                .any(|m| m.method() == Some(&Method::Bye) && !legs.is_caller(m)),
            "BYE to the callee"
        );
        h.send(CALLER, &answer_as(CALLER, &to_caller, 200, "x", None, ""));
        h.advance(Duration::from_secs(33));
        assert_eq!(h.ended(), vec![EndReason::SessionExpired(Side::Callee)]);
        settle(&mut h);
    }
}

/// Early media: the callee's 183 with SDP reaches the caller as a 183 carrying holdless's
/// SDP (its address and port), the relay is set up for early media, and the 200 that
/// follows carries the same SDP (nothing changed, same `o=` version).
#[test]
fn early_media_183_is_relayed_with_holdless_sdp() {
    let mut h = Harness::new();
    let (_, out) = h.invite("");
    let b_inv = request(&out, Method::Invite).unwrap().clone();
    let early = sdp("127.0.0.1", 41000, "8 101", "sendrecv");
    let out = h.send(CALLEE, &answer(&b_inv, 183, "cc1", Some(&early), ""));
    let p183 = status(&out, 183).expect("183 to the caller").clone();
    assert!(status(&out, 180).is_none());
    assert!(
        p183.get(Name::To).and_then(name_addr::tag).is_some(),
        "To tag"
    );
    assert!(p183.get(Name::Contact).is_some());
    let early_sdp = body(&p183).to_owned();
    assert_rewritten(&early_sdp, 41000);
    assert!(m_line(&early_sdp).contains("RTP/AVP 8"), "{early_sdp}");
    let params = relay_params(&h);
    assert!(params.active, "early media relayed");
    assert_eq!(params.callee.rtp, Some("127.0.0.1:41000".parse().unwrap()));
    assert_eq!(params.caller.rtp, Some("127.0.0.10:40000".parse().unwrap()));
    let out = h.send(CALLEE, &answer(&b_inv, 200, "cc1", Some(&early), ""));
    assert!(request(&out, Method::Ack).is_some());
    let ok = status(&out, 200).expect("200 to the caller").clone();
    assert_eq!(
        ok.get(Name::To).and_then(name_addr::tag),
        p183.get(Name::To).and_then(name_addr::tag),
        "one dialog"
    );
    assert_rewritten(body(&ok), 41000);
    assert_eq!(
        m_line(body(&ok)),
        m_line(&early_sdp),
        "the same port and codecs"
    );
    assert_eq!(o_version(body(&ok)), o_version(&early_sdp), "unchanged SDP");
    assert!(h.send(CALLER, &ack_for(&ok, 1, CALLER)).is_empty());
    hang_up(&mut h, &Legs::new(&b_inv, &ok), 2);
}

#[test]
fn an_engine_among_several_makes_outbound_call_ids_that_come_back_to_it() {
    for index in 0..3 {
        let mut h = Harness::sharded(CONFIG, Shard { index, count: 3 });
        for _ in 0..20 {
            let (_, out) = h.invite("");
            let b = request(&out, Method::Invite).expect("INVITE to the callee");
            let id = b.call_id().expect("a Call-ID").as_bytes();
            assert_eq!(shard::of_call_id(id, 3), index, "{:?}", b.call_id());
            let bytes = b.to_bytes();
            assert_eq!(shard::of_message(&bytes, 3), index, "the dispatcher agrees");
        }
        assert_eq!(h.ep.calls(), 20);
    }
}

/// The Twilio SIP-domain INVITE of the shared corpus: its Contact is a Twilio-internal
/// address, so holdless's requests in that dialog must go to the Record-Route hop.
#[test]
fn a_twilio_caller_is_reached_through_its_record_route_not_its_contact() {
    let config = CONFIG.replace("+15550001000", "+15551230001");
    let mut h = Harness::with(&config);
    let edge = "127.0.0.54:5060";
    let invite = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/corpus/twilio/example-dial-sip-uui-udp.sip"
    ))
    .unwrap();
    let out = h.send(edge, &invite);
    assert!(status(&out, 100).is_some(), "{out:?}");
    let b_inv = request(&out, Method::Invite).expect("bridged").clone();
    assert_eq!(
        b_inv.get_other("User-to-User"),
        Some("4142432d3132333435;encoding=hex"),
        "the UUI crosses to the contact center"
    );
    let body = sdp("127.0.0.1", 41000, "0 101", "sendrecv");
    let out = h.send(CALLEE, &answer(&b_inv, 200, "cc1", Some(&body), ""));
    let ok = status(&out, 200).expect("200 to Twilio").clone();
    assert_eq!(ok.get(Name::RecordRoute), Some("<sip:127.0.0.54;lr>"));
    h.send(edge, &ack_for(&ok, 101, edge));

    let from_cc = format!("{};tag=cc1", b_inv.get(Name::To).unwrap());
    let bye = in_dialog(
        "BYE",
        2,
        &from_cc,
        b_inv.get(Name::From).unwrap(),
        b_inv.call_id().unwrap(),
        None,
        CALLEE,
    );
    h.ep.handle_message(h.now, bye.as_bytes(), Peer::udp(CALLEE.parse().unwrap()));
    let sent: Vec<Transmit> = std::iter::from_fn(|| h.ep.poll_transmit()).collect();
    let to_twilio = sent
        .iter()
        .find(|t| t.msg.method() == Some(&Method::Bye))
        .expect("BYE to the Twilio leg");
    assert_eq!(
        to_twilio.to.addr,
        edge.parse().unwrap(),
        "sent to the Record-Route hop"
    );
    let bye = reparse(to_twilio);
    assert_eq!(
        bye.request_uri(),
        Some("sip:+15557654321@127.0.0.25:5060;transport=udp"),
        "the Request-URI stays the remote target (Contact)"
    );
    assert_eq!(bye.get(Name::Route), Some("<sip:127.0.0.54;lr>"));
    assert_eq!(bye.call_id(), ok.call_id());
    h.send(edge, &answer(&bye, 200, "x", None, ""));
    settle(&mut h);
}

#[test]
fn shutdown_ends_every_call_and_refuses_new_ones() {
    let mut h = Harness::new();
    let (_, b1, ok1) = answered_call(&mut h, "");
    let (_, out) = h.invite("");
    let b2 = request(&out, Method::Invite).expect("second call").clone();
    h.send(CALLEE, &answer(&b2, 180, "cc2", None, ""));
    assert_eq!(h.ep.calls(), 2);

    h.ep.shut_down(h.now);
    let out = h.drain();
    let byes: Vec<&Message> = out
        .iter()
        .filter(|m| m.method() == Some(&Method::Bye))
        .collect();
    let bye_to = |call_id| byes.iter().find(|m| m.call_id() == call_id).copied();
    let bye_a = bye_to(ok1.call_id()).expect("BYE to the answered caller");
    let bye_b = bye_to(b1.call_id()).expect("BYE to the answered callee");
    let ringing = status(&out, 503).expect("503 to the caller still ringing");
    assert_eq!(ringing.call_id(), Some("in-2@caller"));
    let cancel = request(&out, Method::Cancel).expect("CANCEL to the ringing callee");
    assert_eq!(cancel.call_id(), b2.call_id());

    let (_, out) = h.invite("");
    let refused = status(&out, 503).expect("new INVITEs refused while closing");
    assert_eq!(refused.get(Name::RetryAfter), Some("5"));
    assert!(request(&out, Method::Invite).is_none(), "nothing bridged");

    h.send(CALLER, &answer(bye_a, 200, "x", None, ""));
    h.send(CALLEE, &answer(bye_b, 200, "x", None, ""));
    h.send(CALLEE, &answer(cancel, 200, "cc2", None, ""));
    let out = h.send(CALLEE, &answer(&b2, 487, "cc2", None, ""));
    assert!(request(&out, Method::Ack).is_some(), "487 ACKed");
    let ended = h.ended();
    assert_eq!(
        ended.iter().filter(|r| **r == EndReason::Shutdown).count(),
        2,
        "{ended:?}"
    );
    settle(&mut h);
}

/// CANCEL and the callee's 200 cross on the wire: the caller keeps its 487, and the callee's
/// answered leg is ACKed and hung up at once (RFC 3261 §9.1: the 2xx wins at the callee).
#[test]
fn a_200_crossing_the_cancel_is_acked_and_hung_up() {
    let mut h = Harness::new();
    let (inv, out) = h.invite("");
    let b_inv = request(&out, Method::Invite).unwrap().clone();
    h.send(CALLEE, &answer(&b_inv, 180, "cc1", None, ""));
    let cancel = cancel_for(&inv);
    let out = h.send(CALLER, &cancel);
    assert!(status(&out, 487).is_some(), "487 to the caller");
    let b_cancel = request(&out, Method::Cancel)
        .expect("CANCEL to the callee")
        .clone();
    let body = sdp("127.0.0.1", 41000, "8 101", "sendrecv");
    let out = h.send(CALLEE, &answer(&b_inv, 200, "cc1", Some(&body), ""));
    assert!(
        request(&out, Method::Ack).is_some(),
        "the callee's 2xx is ACKed"
    );
    let bye = request(&out, Method::Bye)
        .expect("and the callee hung up")
        .clone();
    assert_eq!(bye.call_id(), b_inv.call_id());
    assert!(status(&out, 200).is_none(), "nothing more to the caller");
    h.send(CALLEE, &answer(&b_cancel, 200, "cc1", None, ""));
    h.send(CALLEE, &answer(&bye, 200, "cc1", None, ""));
    settle(&mut h);
}
