//! The state-machine fuzz body: an arbitrary sequence of SIP inputs and clock steps driven
//! into the endpoint (transactions, dialogs, bridged calls with the real media controller).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::acl::Egress;
use crate::config::Config;
use crate::endpoint::Endpoint;
use crate::media::config::MediaConfig;
use crate::media::controller::MediaController;
use crate::media::prompt::Clip;
use crate::media::{MediaControl, MediaError, MediaEvent, MediaId, Side};
use crate::metrics::Counters;
use crate::sip::{name_addr, Message, Name, Peer};

/// Two call targets: one bridged to the callee, one that owns a number but has no route.
const CONFIG: &str = r#"
[sip]
udp = ["127.0.0.1:5060"]
[acl]
allow = ["127.0.0.0/8"]
deny = ["127.0.0.66/32"]
[egress]
allow = ["127.0.0.0/8"]
[flood]
max_requests = 1000000
[calls]
ring_timeout_secs = 20
session_expires_secs = 90
[[call_targets]]
id = "billing"
name = "Billing"
numbers = ["+15550001000"]
bridge_to = "sip:+15550009999@127.0.0.1:5090"
[[call_targets]]
id = "sales"
name = "Sales"
numbers = ["+15550002000"]
"#;

const CALLER: &str = "127.0.0.10:5070";
const CALLEE: &str = "127.0.0.1:5090";
/// The peers raw datagrams come from: caller, callee, a denied source, another source.
const PEERS: [&str; 4] = [CALLER, CALLEE, "127.0.0.66:5070", "127.0.0.11:5070"];
/// The request URIs of new INVITEs: bridged, owned without a route, unknown.
const NUMBERS: [&str; 3] = ["+15550001000", "+15550002000", "+15550003000"];
/// Status codes the callee answers with.
const CODES: [u16; 12] = [100, 180, 183, 200, 200, 401, 422, 486, 487, 491, 503, 603];
/// In-dialog methods either side sends.
const METHODS: [&str; 8] = [
    "ACK", "BYE", "CANCEL", "INFO", "INVITE", "UPDATE", "OPTIONS", "PRACK",
];
/// Calls the caller keeps apart by Call-ID (enough for glare and cross-talk).
const CALLS: usize = 4;
/// Requests and responses holdless sent that the fuzzer can answer or build on.
const KEPT: usize = 16;
/// When the whole input is spent, the clock runs on this far: past every SIP timer
/// (64·T1 is 32 s), the ring timeout, the session timer and the media timeouts.
const SETTLE: Duration = Duration::from_secs(600);
/// Timer firings allowed per clock step before the timers count as stuck.
const MAX_FIRINGS: usize = 100_000;

fn sdp(ip: &str, port: u16, codecs: &str, dir: &str) -> String {
    let mut s = format!(
        "v=0\r\no=peer 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {codecs}\r\n"
    );
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

/// The real media controller behind the endpoint, shared so the end check can see it.
#[derive(Clone)]
struct Shared(Arc<Mutex<MediaController>>);

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, MediaController> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl MediaControl for Shared {
    fn create(&mut self, now: Instant) -> Result<MediaId, MediaError> {
        self.lock().create(now)
    }
    fn offer(
        &mut self,
        now: Instant,
        id: MediaId,
        from: Side,
        sdp: &[u8],
    ) -> Result<Bytes, MediaError> {
        self.lock().offer(now, id, from, sdp)
    }
    fn answer(
        &mut self,
        now: Instant,
        id: MediaId,
        from: Side,
        sdp: &[u8],
    ) -> Result<Bytes, MediaError> {
        self.lock().answer(now, id, from, sdp)
    }
    fn release(&mut self, id: MediaId) {
        self.lock().release(id)
    }
    fn secure(&mut self, id: MediaId, side: Side, policy: crate::media::srtp::SrtpPolicy) {
        self.lock().secure(id, side, policy)
    }
    fn answer_locally(
        &mut self,
        now: Instant,
        id: MediaId,
        side: Side,
        sdp: &[u8],
    ) -> Result<Bytes, MediaError> {
        self.lock().answer_locally(now, id, side, sdp)
    }
    fn offer_onward(&mut self, now: Instant, id: MediaId, from: Side) -> Result<Bytes, MediaError> {
        self.lock().offer_onward(now, id, from)
    }
    fn offer_locally(
        &mut self,
        now: Instant,
        id: MediaId,
        side: Side,
    ) -> Result<Bytes, MediaError> {
        self.lock().offer_locally(now, id, side)
    }
    fn accept_local_answer(
        &mut self,
        now: Instant,
        id: MediaId,
        side: Side,
        sdp: &[u8],
    ) -> Result<(), MediaError> {
        self.lock().accept_local_answer(now, id, side, sdp)
    }
    fn play(&mut self, now: Instant, id: MediaId, side: Side, clip: Clip) {
        self.lock().play(now, id, side, clip)
    }
    fn stop_playing(&mut self, id: MediaId, side: Side) {
        self.lock().stop_playing(id, side)
    }
}

/// The fuzzer's bytes, read a byte at a time (zeros once spent).
struct Input<'a> {
    data: &'a [u8],
}

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn pick<'t, T>(&mut self, from: &'t [T]) -> &'t T {
        &from[usize::from(self.byte()) % from.len()]
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }
}

/// The endpoint, its media and the clock, plus what holdless sent that the peers answer.
struct Harness {
    ep: Endpoint,
    media: Shared,
    t0: Instant,
    now: Instant,
    /// Requests holdless sent the callee, newest last.
    to_callee: Vec<Message>,
    /// Responses holdless sent the caller (for their To tags), newest last.
    to_caller: Vec<Message>,
    /// Per caller call: the branch and CSeq of its last INVITE.
    invites: [Option<(String, u32)>; CALLS],
    branch: u64,
    inputs: usize,
}

fn peer(addr: &str) -> Peer {
    Peer::udp(addr.parse::<SocketAddr>().expect("a fixed address"))
}

fn keep(list: &mut Vec<Message>, m: Message) {
    if list.len() == KEPT {
        list.remove(0);
    }
    list.push(m);
}

fn body_headers(body: &str) -> String {
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!("{ct}Content-Length: {}\r\n\r\n{body}", body.len())
}

impl Harness {
    fn new() -> Harness {
        let cfg = Config::parse(CONFIG).expect("the fixed configuration is valid");
        let media_cfg = MediaConfig {
            timeout: Duration::from_secs(30),
            hold_timeout: Duration::from_secs(120),
            ..MediaConfig::default()
        };
        let egress = Egress::new(cfg.egress_allow.clone());
        let media = Shared(Arc::new(Mutex::new(MediaController::with_seed(
            media_cfg, egress, 7,
        ))));
        let ep = Endpoint::new(&cfg, Counters::default(), 42, Box::new(media.clone()));
        let t0 = Instant::now();
        Harness {
            ep,
            media,
            t0,
            now: t0,
            to_callee: Vec::new(),
            to_caller: Vec::new(),
            invites: Default::default(),
            branch: 0,
            inputs: 0,
        }
    }

    fn next_branch(&mut self) -> String {
        self.branch += 1;
        format!("z9hG4bKfz{}", self.branch)
    }

    /// Moves what holdless sent into the peers' memory; checks the endpoint's bounds.
    fn drain(&mut self) {
        let mut sent = 0;
        while let Some(t) = self.ep.poll_transmit() {
            sent += 1;
            assert!(
                sent <= 1000,
                "one input made holdless send over 1000 messages"
            );
            assert!(t.to.addr.ip().is_loopback(), "sent outside the egress list");
            if t.to.addr.to_string() == CALLEE && t.msg.is_request() {
                keep(&mut self.to_callee, t.msg);
            } else if !t.msg.is_request() {
                keep(&mut self.to_caller, t.msg);
            }
        }
        let bound = 8 * (self.inputs + 1);
        assert!(
            self.ep.transactions() <= bound,
            "{} transactions after {} inputs",
            self.ep.transactions(),
            self.inputs
        );
        assert!(
            self.ep.calls() <= self.inputs + 1,
            "{} calls after {} inputs",
            self.ep.calls(),
            self.inputs
        );
    }

    /// Hands media timeouts to the endpoint, the way the runtime does.
    fn media_events(&mut self) {
        loop {
            let ev = self.media.lock().poll_event();
            match ev {
                Some(MediaEvent::Timeout { id, side, .. }) => {
                    self.ep.media_timeout(self.now, id, side)
                }
                Some(other @ (MediaEvent::Digit { .. } | MediaEvent::PlayFinished { .. })) => {
                    self.ep.local_media(self.now, other)
                }
                Some(_) => {}
                None => break,
            }
            self.drain();
        }
    }

    /// Runs the clock to `until`, firing every endpoint and media timer on the way.
    fn advance(&mut self, until: Instant) {
        let mut settled = false;
        for _ in 0..MAX_FIRINGS {
            let ep = self.ep.poll_timeout();
            let media = self.media.lock().poll_timeout();
            let next = match (ep, media) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b).unwrap_or(until + Duration::from_secs(1)),
            };
            if next > until {
                settled = true;
                break;
            }
            self.now = self.now.max(next);
            self.ep.handle_timeout(self.now);
            self.drain();
            self.media.lock().handle_timeout(self.now);
            self.media_events();
            while self.media.lock().poll_transmit().is_some() {}
        }
        assert!(settled, "timers did not settle in {MAX_FIRINGS} firings");
        self.now = self.now.max(until);
    }

    fn send(&mut self, from: &str, bytes: &[u8]) {
        self.inputs += 1;
        self.ep.handle_message(self.now, bytes, peer(from));
        self.drain();
        self.media_events();
    }

    /// A new INVITE from the caller (or a retransmission of the last one of that call).
    fn invite(&mut self, input: &mut Input<'_>) -> (&'static str, Vec<u8>) {
        let k = usize::from(input.byte()) % CALLS;
        let number = *input.pick(&NUMBERS);
        let flags = input.byte();
        let (branch, cseq) = match (self.invites[k].clone(), flags & 1) {
            (Some((b, c)), 1) => (b, c),
            (prev, _) => (self.next_branch(), prev.map_or(1, |(_, c)| c + 1)),
        };
        self.invites[k] = Some((branch.clone(), cseq));
        let body = match (flags >> 1) & 3 {
            0 => sdp("127.0.0.10", 40000, "8 101", "sendrecv"),
            1 => sdp("127.0.0.10", 40000, "0 8", "sendonly"),
            2 => String::new(),
            _ => {
                let n = usize::from(input.byte());
                String::from_utf8_lossy(input.bytes(n)).into_owned()
            }
        };
        let extra = match (flags >> 3) & 3 {
            0 => "",
            1 => "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n",
            2 => "X-User-To-User: 4142432d3132333435;encoding=hex\r\n",
            _ => "Require: 100rel\r\n",
        };
        let msg = format!(
            "INVITE sip:{number}@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch={branch}\r\n\
             Max-Forwards: 70\r\nFrom: \"Caller\" <sip:+15557654321@127.0.0.10>;tag=ca{k}\r\n\
             To: <sip:{number}@127.0.0.1>\r\nCall-ID: fz-{k}@caller\r\nCSeq: {cseq} INVITE\r\n\
             Contact: <sip:caller@{CALLER}>\r\n{extra}{}",
            body_headers(&body)
        );
        (CALLER, msg.into_bytes())
    }

    /// An in-dialog request (or CANCEL/ACK) from the caller on one of its calls.
    fn caller_request(&mut self, input: &mut Input<'_>) -> (&'static str, Vec<u8>) {
        let k = usize::from(input.byte()) % CALLS;
        let method = *input.pick(&METHODS);
        let cseq_byte = input.byte();
        let call_id = format!("fz-{k}@caller");
        let to = self
            .to_caller
            .iter()
            .rev()
            .filter(|m| m.call_id() == Some(call_id.as_str()))
            .find_map(|m| m.get(Name::To).filter(|t| name_addr::tag(t).is_some()))
            .map_or_else(|| "<sip:+15550001000@127.0.0.1>".to_owned(), str::to_owned);
        let (invite_branch, invite_cseq) = self.invites[k]
            .clone()
            .unwrap_or_else(|| ("z9hG4bKnone".into(), 1));
        let (branch, cseq) = match method {
            "CANCEL" => (invite_branch, invite_cseq),
            "ACK" if cseq_byte & 1 == 0 => (invite_branch, invite_cseq),
            "ACK" => (self.next_branch(), invite_cseq),
            _ => (
                self.next_branch(),
                invite_cseq + 1 + u32::from(cseq_byte % 4),
            ),
        };
        let body = match (method, cseq_byte >> 6) {
            ("INVITE" | "UPDATE", 0) => sdp("127.0.0.10", 40002, "8 101", "sendrecv"),
            ("INVITE" | "UPDATE", 1) => sdp("127.0.0.10", 40002, "8", "sendonly"),
            ("INFO", _) => "Signal=5\r\nDuration=160\r\n".to_owned(),
            _ => String::new(),
        };
        let ct = if method == "INFO" {
            "Content-Type: application/dtmf-relay\r\n"
        } else {
            ""
        };
        let body_part = if ct.is_empty() {
            body_headers(&body)
        } else {
            format!("Content-Length: {}\r\n\r\n{body}", body.len())
        };
        let msg = format!(
            "{method} sip:holdless@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch={branch}\r\n\
             Max-Forwards: 70\r\nFrom: \"Caller\" <sip:+15557654321@127.0.0.10>;tag=ca{k}\r\nTo: {to}\r\n\
             Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:caller@{CALLER}>\r\n{ct}{body_part}"
        );
        (CALLER, msg.into_bytes())
    }

    /// The callee's response to one of the requests holdless sent it.
    fn callee_response(&mut self, input: &mut Input<'_>) -> Option<(&'static str, Vec<u8>)> {
        let back = usize::from(input.byte());
        let code = *input.pick(&CODES);
        let flags = input.byte();
        let n = self.to_callee.len();
        let req = self.to_callee.get(n.checked_sub(1 + back % n.max(1))?)?;
        let vias: String = req
            .get_all(Name::Via)
            .map(|v| format!("Via: {v}\r\n"))
            .collect();
        let to = req.get(Name::To)?;
        let to = if name_addr::tag(to).is_some() || code == 100 {
            to.to_owned()
        } else {
            format!("{to};tag=cc{}", flags & 1)
        };
        let is_invite = req.method().is_some_and(|m| m.as_str() == "INVITE");
        let body = match (is_invite && (code == 183 || code == 200), (flags >> 1) & 3) {
            (true, 0 | 1) => sdp("127.0.0.20", 41000, "8 101", "sendrecv"),
            (true, 2) => sdp("127.0.0.20", 41000, "0", "recvonly"),
            _ => String::new(),
        };
        let extra = match flags >> 4 {
            1 => "Require: 100rel\r\nRSeq: 1\r\n",
            2 => "WWW-Authenticate: Digest realm=\"x\", nonce=\"n1\", qop=\"auth\"\r\n",
            3 => "Min-SE: 120\r\n",
            4 => "Require: timer\r\nSession-Expires: 90;refresher=uas\r\n",
            _ => "",
        };
        let msg = format!(
            "SIP/2.0 {code} Whatever\r\n{vias}From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n\
             Contact: <sip:ua@{CALLEE}>\r\n{extra}{}",
            req.get(Name::From)?,
            req.call_id()?,
            req.get(Name::CSeq)?,
            body_headers(&body)
        );
        Some((CALLEE, msg.into_bytes()))
    }

    /// An in-dialog request from the callee, on the dialog of an INVITE holdless sent it.
    fn callee_request(&mut self, input: &mut Input<'_>) -> Option<(&'static str, Vec<u8>)> {
        let method = *input.pick(&METHODS);
        let flags = input.byte();
        let branch = self.next_branch();
        let inv = self
            .to_callee
            .iter()
            .rev()
            .find(|m| m.method().is_some_and(|m| m.as_str() == "INVITE"))?;
        let to = inv.get(Name::To)?;
        let ours = if name_addr::tag(to).is_some() {
            to.to_owned()
        } else {
            format!("{to};tag=cc{}", flags & 1)
        };
        let body = match (method, flags >> 6) {
            ("INVITE" | "UPDATE", 0) => sdp("127.0.0.20", 41002, "8 101", "sendrecv"),
            ("INVITE" | "UPDATE", 1) => sdp("127.0.0.20", 41002, "0", "inactive"),
            _ => String::new(),
        };
        let msg = format!(
            "{method} sip:holdless@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLEE};branch={branch}\r\n\
             Max-Forwards: 70\r\nFrom: {ours}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} {method}\r\n\
             Contact: <sip:ua@{CALLEE}>\r\n{}",
            inv.get(Name::From)?,
            inv.call_id()?,
            1 + u32::from(flags % 8),
            body_headers(&body)
        );
        Some((CALLEE, msg.into_bytes()))
    }

    /// One step of the input; `false` when there is nothing left to read.
    fn step(&mut self, input: &mut Input<'_>) -> bool {
        if input.data.is_empty() {
            return false;
        }
        let op = input.byte();
        let built = match op % 11 {
            0 => {
                let b = input.byte();
                let by = if b & 0x80 == 0 {
                    Duration::from_millis(u64::from(b) * 20)
                } else {
                    Duration::from_secs(u64::from(b & 0x7f))
                };
                self.advance(self.now + by);
                None
            }
            1 | 2 => Some(self.invite(input)),
            3 | 4 => Some(self.caller_request(input)),
            5 | 6 => self.callee_response(input),
            7 => self.callee_request(input),
            8 => {
                let from = *input.pick(&PEERS);
                let n = usize::from(input.byte());
                let raw = input.bytes(n).to_vec();
                self.send(from, &raw);
                None
            }
            9 => {
                // A template with one byte overwritten or the tail cut.
                let inner = input.byte();
                let built = match inner % 3 {
                    0 => Some(self.invite(input)),
                    1 => Some(self.caller_request(input)),
                    _ => self.callee_response(input),
                };
                built.map(|(from, mut bytes)| {
                    let at = usize::from(u16::from_le_bytes([input.byte(), input.byte()]));
                    let value = input.byte();
                    if inner & 0x80 != 0 {
                        bytes.truncate(at);
                    } else if let Some(b) = bytes.get_mut(at) {
                        *b = value;
                    }
                    (from, bytes)
                })
            }
            _ => {
                match input.byte() % 8 {
                    0 => self.ep.destination_failed(self.now, peer(CALLEE)),
                    1 => self.ep.shut_down(self.now),
                    _ => self.ep.stop_accepting(),
                }
                self.drain();
                None
            }
        };
        if let Some((from, bytes)) = built {
            self.send(from, &bytes);
        }
        true
    }

    /// Runs the clock far past every timer and checks that nothing is left behind.
    fn settle(&mut self) {
        let end = self.now + SETTLE;
        let mut t = self.now;
        while t < end {
            t += Duration::from_secs(10);
            self.advance(t);
        }
        let elapsed = self.now - self.t0;
        assert_eq!(
            self.ep.calls(),
            0,
            "a call outlived every timer ({elapsed:?})"
        );
        assert!(
            self.ep.call_tables_empty(),
            "the call core's tables kept an entry"
        );
        assert_eq!(
            self.ep.transactions(),
            0,
            "a transaction outlived every timer"
        );
        let media = self.media.lock();
        assert_eq!(media.active(), 0, "media outlived its call");
        assert_eq!(media.ports_in_use(), 0, "media ports leaked");
    }
}

/// Drives the endpoint with the steps the bytes encode (new INVITEs, in-dialog requests
/// and responses from the caller and the callee built from what holdless sent them, raw
/// or mangled datagrams from several peers, clock steps, shutdown), then runs the clock
/// ten minutes on. Asserts no panic, bounded transactions and calls along the way, and no
/// call, transaction, dialog or media left once every timer has passed.
pub fn endpoint(data: &[u8]) {
    let mut h = Harness::new();
    let mut input = Input { data };
    while h.step(&mut input) {}
    h.settle();
}
