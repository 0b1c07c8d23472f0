//! The state-machine fuzz body: an arbitrary sequence of SIP inputs and clock steps driven
//! into the endpoint (transactions, dialogs, bridged calls, inbound callers in the menu and
//! callbacks dialled customer-first and agent-first) with the real media controller, the
//! real prompt set and the real callback engine answering the call core.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::acl::Egress;
use crate::call::dialler::Hop;
use crate::call::ivr::menu::{RefusalKind, RegisteredSummary};
use crate::call::{inbound_targets, CallEvent, CallKey, InboundTarget};
use crate::callback::engine::RegisterRequest;
use crate::callback::{AttemptResult, Engine};
use crate::config::Config;
use crate::endpoint::Endpoint;
use crate::media::config::MediaConfig;
use crate::media::controller::MediaController;
use crate::media::dtmf::{Digit, DtmfEvent, DtmfSource};
use crate::media::prompt::Clip;
use crate::media::{MediaControl, MediaError, MediaEvent, MediaId, Side};
use crate::metrics::Counters;
use crate::sip::{name_addr, Message, Name, Peer};

/// Four call targets: one bridged to the callee, one that owns a number but has no route,
/// and two inbound transfer targets with callbacks (the menu, customer first; no menu,
/// agent first). `PROMPTS` becomes the shipped prompt folder.
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
[[organizations]]
id = "demo"
name = "Demo"
api_tokens = ["fuzz-token"]
api_allow = ["127.0.0.0/8"]
[[call_targets]]
id = "billing"
name = "Billing"
numbers = ["+15550001000"]
bridge_to = "sip:+15550009999@127.0.0.1:5090"
[[call_targets]]
id = "sales"
name = "Sales"
numbers = ["+15550002000"]
[[call_targets]]
id = "menu"
name = "Menu"
numbers = ["+15550004000"]
organization = "demo"
contact_center = "sip:+15550009999@127.0.0.1:5090"
caller_id = "+15550004000"
first_party = "customer"
min_delay_secs = 0
input_timeout_secs = 3
prompts = "PROMPTS"
[call_targets.hours]
time_zone = "UTC"
daily = ["00:00-24:00"]
[call_targets.dialler]
customer_ring_timeout_secs = 15
agent_ring_timeout_secs = 25
press_timeout_secs = 4
[call_targets.retry]
busy = { attempts = 2, delay_secs = 30 }
[[call_targets]]
id = "direct"
name = "Direct"
numbers = ["+15550005000"]
organization = "demo"
contact_center = "sip:+15550009999@127.0.0.1:5090"
caller_id = "+15550005000"
first_party = "agent"
min_delay_secs = 0
ivr = "none"
prompts = "PROMPTS"
[call_targets.hours]
time_zone = "UTC"
daily = ["00:00-24:00"]
[call_targets.dialler]
customer_ring_timeout_secs = 15
agent_ring_timeout_secs = 25
"#;

const CALLER: &str = "127.0.0.10:5070";
/// The bridge's callee and the callbacks' contact center (agent legs).
const CALLEE: &str = "127.0.0.1:5090";
/// The customers' trunk (callbacks' customer legs).
const CUSTOMER: &str = "127.0.0.1:5080";
/// The peers raw datagrams come from: caller, callee, a denied source, another source,
/// the customers' trunk.
const PEERS: [&str; 5] = [
    CALLER,
    CALLEE,
    "127.0.0.66:5070",
    "127.0.0.11:5070",
    CUSTOMER,
];
/// The request URIs of new INVITEs: bridged, owned without a route, unknown, the menu,
/// no menu.
const NUMBERS: [&str; 5] = [
    "+15550001000",
    "+15550002000",
    "+15550003000",
    "+15550004000",
    "+15550005000",
];
/// The caller numbers of new INVITEs (one invalid under the number rules).
const CALLERS: [&str; 4] = ["+15557654321", "+15557654322", "+15557654323", "12"];
/// Keys the far ends press.
const KEYS: &[u8] = b"0123456789*#";
/// The UTC time the fuzz clock starts at.
const UTC0_MS: i64 = 1_796_400_000_000;
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

/// An SDES key (RFC 4568's example) for the SRTP offers and answers.
const CRYPTO: &str =
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n";

fn sdp(ip: &str, port: u16, codecs: &str, dir: &str) -> String {
    sdp_with(ip, port, codecs, dir, false)
}

/// An SDP body; `srtp`: `RTP/SAVP` with an `a=crypto` line.
fn sdp_with(ip: &str, port: u16, codecs: &str, dir: &str, srtp: bool) -> String {
    let profile = if srtp { "RTP/SAVP" } else { "RTP/AVP" };
    let mut s = format!(
        "v=0\r\no=peer 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} {profile} {codecs}\r\n"
    );
    if srtp {
        s.push_str(CRYPTO);
    }
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

/// Media sessions remembered for the fuzzer's keys (the newest).
const MEDIA_KEPT: usize = 8;

/// The real media controller behind the endpoint, shared so the end check can see it, and
/// the sessions it created (where the fuzzer's keys are pressed).
#[derive(Clone)]
struct Shared(Arc<Mutex<MediaController>>, Arc<Mutex<VecDeque<MediaId>>>);

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, MediaController> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn created(&self) -> std::sync::MutexGuard<'_, VecDeque<MediaId>> {
        self.1.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl MediaControl for Shared {
    fn create(&mut self, now: Instant) -> Result<MediaId, MediaError> {
        let id = self.lock().create(now)?;
        let mut created = self.created();
        if created.len() == MEDIA_KEPT {
            created.pop_front();
        }
        created.push_back(id);
        Ok(id)
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

/// The endpoint, its media, the callback engine and the clock, plus what holdless sent that
/// the peers answer.
struct Harness {
    ep: Endpoint,
    media: Shared,
    engine: Engine,
    t0: Instant,
    now: Instant,
    /// The endpoint's wall clock: UTC milliseconds, moved with `now`.
    utc_ms: Arc<AtomicI64>,
    /// While set, the engine leaves the call core's questions unanswered (a slow store).
    engine_stalled: bool,
    /// Questions the stalled engine has not answered yet, oldest first.
    views: VecDeque<(CallKey, String)>,
    registrations: VecDeque<(CallKey, Box<RegisterRequest>)>,
    /// Callbacks registered and launched, and how their attempts ended.
    registered: usize,
    launched: usize,
    ended: Vec<AttemptResult>,
    /// Requests holdless sent the callee or the customers' trunk (with where), newest last.
    to_callee: Vec<(&'static str, Message)>,
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

fn keep<T>(list: &mut Vec<T>, m: T) {
    if list.len() == KEPT {
        list.remove(0);
    }
    list.push(m);
}

/// Whether `FUZZ_TRACE` is set: every message holdless sends and every call event are
/// printed to stderr (to read what a crashing input does).
fn tracing_on() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("FUZZ_TRACE").is_some())
}

/// The inbound targets of [`CONFIG`], loaded once (the prompts are read from disk).
fn inbound(cfg: &Config) -> HashMap<String, Arc<InboundTarget>> {
    static TARGETS: OnceLock<HashMap<String, Arc<InboundTarget>>> = OnceLock::new();
    TARGETS
        .get_or_init(|| inbound_targets(cfg).expect("the shipped prompts load"))
        .clone()
}

fn config_text() -> String {
    CONFIG.replace(
        "PROMPTS",
        concat!(env!("CARGO_MANIFEST_DIR"), "/configs/prompts"),
    )
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
        let cfg = Config::parse(&config_text()).expect("the fixed configuration is valid");
        let media_cfg = MediaConfig {
            timeout: Duration::from_secs(30),
            hold_timeout: Duration::from_secs(120),
            ..MediaConfig::default()
        };
        let egress = Egress::new(cfg.egress_allow.clone());
        let media = Shared(
            Arc::new(Mutex::new(MediaController::with_seed(media_cfg, egress, 7))),
            Arc::default(),
        );
        let utc_ms = Arc::new(AtomicI64::new(UTC0_MS));
        let clock = utc_ms.clone();
        let ep = Endpoint::new(&cfg, Counters::default(), 42, Box::new(media.clone()))
            .with_inbound(inbound(&cfg))
            .with_clock(Arc::new(move || {
                DateTime::from_timestamp_millis(clock.load(Ordering::Relaxed)).unwrap_or_default()
            }));
        let targets = cfg.engine_targets();
        let mut engine = Engine::new(targets, 5);
        engine.set_dialling(true);
        let t0 = Instant::now();
        Harness {
            ep,
            media,
            engine,
            t0,
            now: t0,
            utc_ms,
            engine_stalled: false,
            views: VecDeque::new(),
            registrations: VecDeque::new(),
            registered: 0,
            launched: 0,
            ended: Vec::new(),
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

    /// The wall-clock time of `now`.
    fn utc(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.utc_ms.load(Ordering::Relaxed)).unwrap_or_default()
    }

    /// Moves the clock (the endpoint's wall clock with it).
    fn set_now(&mut self, t: Instant) {
        self.now = self.now.max(t);
        let ms = i64::try_from((self.now - self.t0).as_millis()).unwrap_or(i64::MAX / 2);
        self.utc_ms.store(UTC0_MS + ms, Ordering::Relaxed);
    }

    /// Moves what holdless sent into the peers' memory, answers the call core's questions
    /// with the engine, dials what the engine launches; checks the endpoint's bounds.
    fn drain(&mut self) {
        let mut sent = 0;
        loop {
            while let Some(t) = self.ep.poll_transmit() {
                sent += 1;
                assert!(
                    sent <= 1000,
                    "one input made holdless send over 1000 messages"
                );
                assert!(t.to.addr.ip().is_loopback(), "sent outside the egress list");
                let to = t.to.addr.to_string();
                if tracing_on() {
                    eprintln!(
                        "--> {to}: {}",
                        String::from_utf8_lossy(&t.msg.to_bytes())
                            .lines()
                            .next()
                            .unwrap_or("")
                    );
                }
                if t.msg.is_request() {
                    if to == CALLEE {
                        keep(&mut self.to_callee, (CALLEE, t.msg));
                    } else if to == CUSTOMER {
                        keep(&mut self.to_callee, (CUSTOMER, t.msg));
                    }
                } else {
                    keep(&mut self.to_caller, t.msg);
                }
            }
            if let Some(ev) = self.ep.poll_call_event() {
                self.call_event(ev);
                continue;
            }
            let Some(launch) = self.engine.poll_launch(self.utc()) else {
                break;
            };
            self.launched += 1;
            let customer = Hop::literal("sip:127.0.0.1:5080", None).ok();
            let agent = launch
                .contact_center
                .as_deref()
                .and_then(|cc| Hop::literal(cc, None).ok());
            self.ep.dial(self.now, launch, customer, agent);
        }
        while self.engine.poll_write().is_some() {}
        let bound = 8 * (self.inputs + self.launched + 1);
        assert!(
            self.ep.transactions() <= bound,
            "{} transactions after {} inputs",
            self.ep.transactions(),
            self.inputs
        );
        assert!(
            self.ep.calls() <= self.inputs + self.launched + 1,
            "{} calls after {} inputs and {} launches",
            self.ep.calls(),
            self.inputs,
            self.launched
        );
    }

    /// One event of the call core, handled the way the runtime hands it to the engine.
    fn call_event(&mut self, ev: CallEvent) {
        let utc = self.utc();
        if tracing_on() {
            eprintln!("event {ev:?}");
        }
        match ev {
            CallEvent::ViewWanted { call, call_target } if self.engine_stalled => {
                self.views.push_back((call, call_target))
            }
            CallEvent::ViewWanted { call, call_target } => self.answer_view(call, &call_target, 0),
            CallEvent::Register { call, request } if self.engine_stalled => {
                self.registrations.push_back((call, request))
            }
            CallEvent::Register { call, request } => self.answer_registration(call, request, 0),
            CallEvent::Record(entry) => self.engine.handle_record(*entry),
            CallEvent::AgentConnected { callback_id } => {
                let _ = self.engine.handle_agent_connected(utc, &callback_id);
            }
            CallEvent::AttemptEnded {
                callback_id,
                result,
                report,
            } => {
                self.ended.push(result);
                let _ = self
                    .engine
                    .handle_attempt_report(utc, &callback_id, result, Some(*report));
            }
            CallEvent::Answered { .. } | CallEvent::Ended { .. } => {}
        }
    }

    /// The engine's view of a call target (`how`: 0 the real one, 1 the store down, 2 no
    /// answer at all).
    fn answer_view(&mut self, call: CallKey, call_target: &str, how: u8) {
        let utc = self.utc();
        let view = match how % 3 {
            2 => None,
            n => Some((utc, self.engine.target_view(utc, call_target, n == 0))),
        };
        self.ep.view_ready(self.now, call, view);
    }

    /// The engine's answer to a registration (`how`: 0 the real one, else unavailable).
    fn answer_registration(&mut self, call: CallKey, request: Box<RegisterRequest>, how: u8) {
        let result = if how.is_multiple_of(4) {
            match self.engine.handle_register(self.utc(), *request) {
                Ok(r) => {
                    self.registered += 1;
                    Ok(RegisteredSummary::from(&r))
                }
                Err(r) => {
                    if tracing_on() {
                        eprintln!("refused {r:?}");
                    }
                    Err(RefusalKind::from(&r))
                }
            }
        } else {
            Err(RefusalKind::Unavailable)
        };
        self.ep.registration_done(self.now, call, result);
    }

    /// The engine stalls, resumes or answers its oldest open question.
    fn engine_step(&mut self, input: &mut Input<'_>) {
        let b = input.byte();
        match b % 4 {
            0 => self.engine_stalled = !self.engine_stalled,
            1 | 2 => {
                if let Some((call, target)) = self.views.pop_front() {
                    self.answer_view(call, &target, b >> 4);
                }
            }
            _ => {
                if let Some((call, request)) = self.registrations.pop_front() {
                    self.answer_registration(call, request, b >> 4);
                }
            }
        }
        self.drain();
    }

    /// A key detected on one side of a call whose media holdless terminates (a menu
    /// caller, a dialled customer, an agent hearing the whisper).
    fn key(&mut self, input: &mut Input<'_>) {
        let pick = input.byte();
        let key = *input.pick(KEYS);
        let id = {
            let created = self.media.created();
            if created.is_empty() {
                return;
            }
            created[usize::from(pick >> 1) % created.len()]
        };
        let side = if pick & 1 == 0 {
            Side::Caller
        } else {
            Side::Callee
        };
        let Some(digit) = Digit::from_char(char::from(key)) else {
            return;
        };
        let ev = MediaEvent::Digit {
            id,
            side,
            event: DtmfEvent {
                digit,
                at: self.now,
                duration_ms: 100,
                source: DtmfSource::Rfc4733,
            },
        };
        self.ep.local_media(self.now, ev);
        self.drain();
        self.media_events();
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
            let engine = self.engine.poll_timeout(self.utc()).map(|due| {
                let ms = (due.timestamp_millis() - UTC0_MS).max(0);
                self.t0 + Duration::from_millis(ms.unsigned_abs())
            });
            let next = [ep, media, engine]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(until + Duration::from_secs(1));
            if next > until {
                settled = true;
                break;
            }
            self.set_now(next);
            self.ep.handle_timeout(self.now);
            self.drain();
            self.media.lock().handle_timeout(self.now);
            self.media_events();
            while self.media.lock().poll_transmit().is_some() {}
        }
        assert!(settled, "timers did not settle in {MAX_FIRINGS} firings");
        self.set_now(until);
        self.drain();
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
        let srtp = flags & 0x80 != 0;
        let body = match (flags >> 1) & 3 {
            0 => sdp_with("127.0.0.10", 40000, "8 101", "sendrecv", srtp),
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
        let from = CALLERS[usize::from(flags >> 5) & 3];
        let msg = format!(
            "INVITE sip:{number}@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch={branch}\r\n\
             Max-Forwards: 70\r\nFrom: \"Caller\" <sip:{from}@127.0.0.10>;tag=ca{k}\r\n\
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
            ("INFO", n) => format!(
                "Signal={}\r\nDuration=160\r\n",
                char::from(KEYS[usize::from(n) * 3 % KEYS.len()])
            ),
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
        let (from, req) = self.to_callee.get(n.checked_sub(1 + back % n.max(1))?)?;
        let from = *from;
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
            (true, _) => sdp_with("127.0.0.20", 41000, "8 101", "sendrecv", true),
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
             Contact: <sip:ua@{from}>\r\n{extra}{}",
            req.get(Name::From)?,
            req.call_id()?,
            req.get(Name::CSeq)?,
            body_headers(&body)
        );
        Some((from, msg.into_bytes()))
    }

    /// An in-dialog request from the callee, on the dialog of an INVITE holdless sent it.
    fn callee_request(&mut self, input: &mut Input<'_>) -> Option<(&'static str, Vec<u8>)> {
        let method = *input.pick(&METHODS);
        let flags = input.byte();
        let branch = self.next_branch();
        let peer = if flags & 2 == 0 { CALLEE } else { CUSTOMER };
        let inv = self
            .to_callee
            .iter()
            .rev()
            .filter(|(to, _)| *to == peer)
            .map(|(_, m)| m)
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
            "{method} sip:holdless@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {peer};branch={branch}\r\n\
             Max-Forwards: 70\r\nFrom: {ours}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} {method}\r\n\
             Contact: <sip:ua@{peer}>\r\n{}",
            inv.get(Name::From)?,
            inv.call_id()?,
            1 + u32::from(flags % 8),
            body_headers(&body)
        );
        Some((peer, msg.into_bytes()))
    }

    /// One step of the input; `false` when there is nothing left to read.
    fn step(&mut self, input: &mut Input<'_>) -> bool {
        if input.data.is_empty() {
            return false;
        }
        let op = input.byte();
        match op {
            0xf0..=0xf3 => {
                self.engine_step(input);
                return true;
            }
            0xf4..=0xf9 => {
                self.key(input);
                return true;
            }
            _ => {}
        }
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
        // The engine launches nothing more, answers what it left open and stays awake.
        self.engine.set_dialling(false);
        self.engine_stalled = false;
        while let Some((call, target)) = self.views.pop_front() {
            self.answer_view(call, &target, 0);
            self.drain();
        }
        while let Some((call, request)) = self.registrations.pop_front() {
            self.answer_registration(call, request, 0);
            self.drain();
        }
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
        assert_eq!(
            self.launched,
            self.ended.len(),
            "a launched callback's attempt never ended"
        );
        let in_progress: u64 = self
            .engine
            .gauges(self.utc())
            .iter()
            .map(|g| g.in_progress)
            .sum();
        assert_eq!(in_progress, 0, "the engine kept a callback in progress");
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
    run(data);
}

fn run(data: &[u8]) -> Harness {
    let mut h = Harness::new();
    let mut input = Input { data };
    while h.step(&mut input) {}
    h.settle();
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed seed of that name.
    fn seed(name: &str) -> Vec<u8> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/endpoint/");
        std::fs::read(format!("{path}{name}")).expect("the seed is committed")
    }

    #[test]
    fn a_menu_caller_registers_and_is_called_back_customer_first() {
        let h = run(&seed("callback-customer-first"));
        assert_eq!(h.registered, 1);
        assert_eq!(h.launched, 1);
        assert_eq!(h.ended, [AttemptResult::Completed]);
    }

    #[test]
    fn an_srtp_caller_is_answered_with_srtp_and_bridged() {
        let h = run(&seed("srtp-caller-bridged"));
        let answered = h.to_caller.iter().any(|m| {
            let body = String::from_utf8_lossy(&m.body);
            m.status() == Some(200) && body.contains("RTP/SAVP") && body.contains("a=crypto:1 ")
        });
        assert!(answered, "no 200 with an SDES answer to the caller");
        assert!(
            h.to_callee
                .iter()
                .any(|(_, m)| m.method().is_some_and(|m| m.as_str() == "BYE")),
            "the bridged call did not end with a BYE to the callee"
        );
    }

    #[test]
    fn a_caller_without_menu_is_called_back_agent_first() {
        let h = run(&seed("callback-agent-first"));
        assert_eq!(h.registered, 1);
        assert_eq!(h.launched, 1);
        assert_eq!(h.ended, [AttemptResult::Completed]);
    }
}
