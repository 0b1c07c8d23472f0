//! The SIP endpoint core: access control, parsing, validation, transactions and the
//! request handling of this issue (OPTIONS, 404/480 for INVITE, 501...). Sans-IO: bytes and
//! time go in, [`Transmit`]s and deadlines come out; the tokio shell moves them.

mod respond;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use crate::acl::{AccessList, Egress, FloodGuard};
use crate::call::ivr::menu::{RefusalKind, RegisteredSummary};
use crate::call::{CallCore, CallEvent, CallKey, Ctx, InboundTarget, LocalAddrs};
use crate::config::{Config, RefuseAction};
use crate::media::{MediaControl, MediaId, Side};
use crate::metrics::{Counters, Kind, LocalCounters};
use crate::sip::parse::{self, Framing, Parsed};
use crate::sip::shard::Shard;
use crate::sip::transaction::{RequestOutcome, ServerTxId, TimerConfig, TransactionLayer};
use crate::sip::validate::{self, Rejection, Verdict};
use crate::sip::{name_addr, uri, via, ConnId, Message, Method, Name, Peer, Transmit, Transport};

pub use respond::Responder;

/// What a new INVITE's call target does with it.
enum Route {
    /// Bridge it to this URI, both legs with this media security.
    Bridge(String, crate::media::srtp::SrtpPolicy),
    /// Talk to the caller (the dialled number given).
    Inbound(Arc<InboundTarget>, String),
}

/// The SIP endpoint: feed it messages and time, drain what it wants sent.
pub struct Endpoint {
    acl: AccessList,
    acl_action: RefuseAction,
    /// Shared by every engine: a source's requests count once, whichever engine they reach.
    flood: Arc<Mutex<FloodGuard>>,
    flood_action: RefuseAction,
    retry_after: u32,
    egress: Egress,
    numbers: HashMap<String, (String, Option<String>)>,
    /// Call targets whose callers talk to holdless, by id.
    inbound: HashMap<String, Arc<InboundTarget>>,
    tx: TransactionLayer,
    calls: CallCore,
    media: Box<dyn MediaControl + Send>,
    responder: Responder,
    out: VecDeque<Transmit>,
    /// This engine's own counter handles: a count per message takes no shared lock.
    counters: LocalCounters,
    /// Shutting down: no new calls.
    closing: bool,
}

/// Retry-After (seconds) on the 503 to INVITEs during shutdown: a restart takes about that.
pub const SHUTDOWN_RETRY_AFTER: u32 = 5;

impl Endpoint {
    /// Builds the endpoint from a validated configuration; `seed` drives tags and branches;
    /// `media` negotiates and relays bridged calls' media.
    pub fn new(
        cfg: &Config,
        counters: Counters,
        seed: u64,
        media: Box<dyn MediaControl + Send>,
    ) -> Self {
        let flood = Arc::new(Mutex::new(FloodGuard::new(&cfg.flood)));
        Self::sharded(cfg, counters, seed, media, Shard::SOLE, flood)
    }

    /// One of several engines sharing the calls by Call-ID ([`Shard`]), and one flood guard.
    pub fn sharded(
        cfg: &Config,
        counters: Counters,
        seed: u64,
        media: Box<dyn MediaControl + Send>,
        shard: Shard,
        flood: Arc<Mutex<FloodGuard>>,
    ) -> Self {
        let timers = TimerConfig {
            t1: cfg.sip.t1,
            t2: cfg.sip.t2,
            t4: cfg.sip.t4,
        };
        let numbers = cfg
            .call_targets
            .iter()
            .flat_map(|t| {
                t.numbers
                    .iter()
                    .map(move |n| (n.clone(), (t.id.clone(), t.bridge_to.clone())))
            })
            .collect();
        Endpoint {
            acl: AccessList::new(&cfg.acl),
            acl_action: cfg.acl.action,
            flood,
            flood_action: cfg.flood.action,
            retry_after: cfg.flood.retry_after_secs,
            egress: Egress::new(cfg.egress_allow.clone()),
            numbers,
            inbound: HashMap::new(),
            tx: TransactionLayer::with_seed(timers, seed),
            calls: CallCore::new(
                cfg.calls.clone(),
                timers,
                LocalAddrs {
                    udp: cfg.sip.udp.first().copied(),
                    tcp: cfg.sip.tcp.first().copied(),
                    tls: cfg.sip.tls.first().copied(),
                },
                seed ^ 0xca11,
            )
            .for_shard(shard),
            media,
            responder: Responder::new(cfg.sip.user_agent.clone(), seed ^ 0x5eed),
            out: VecDeque::new(),
            counters: LocalCounters::new(counters),
            closing: false,
        }
    }

    /// Counts a request against its source's flood budget.
    fn admit(&self, now: Instant, ip: std::net::IpAddr) -> bool {
        let mut flood = self.flood.lock().unwrap_or_else(PoisonError::into_inner);
        flood.admit(now, ip)
    }

    /// One message arrived: a UDP datagram or a TCP frame.
    pub fn handle_message(&mut self, now: Instant, bytes: &[u8], from: Peer) {
        let ip = from.addr.ip();
        let allowed = self.acl.permits(ip);
        if !allowed && self.acl_action == RefuseAction::Drop {
            self.counters.inc(Kind::Dropped, "acl");
            return;
        }
        // The flood guard limits *requests* per second: a trunk's responses (to our own
        // INVITEs, BYEs...) must not use up its budget nor be dropped as a flood.
        let over_limit = allowed && !looks_like_response(bytes) && !self.admit(now, ip);
        if over_limit && self.flood_action == RefuseAction::Drop {
            self.counters.inc(Kind::Dropped, "flood");
            return;
        }
        let framing = match from.transport {
            Transport::Udp => Framing::Datagram,
            Transport::Tcp | Transport::Tls => Framing::Stream,
        };
        let parsed = match parse::parse(bytes, framing) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(src = %from.addr, reason = e.0, "dropped bytes that are not SIP");
                self.counters.inc(Kind::Dropped, "not_sip");
                return;
            }
        };
        // Every log line below carries the source and Call-ID. A debug span: when debug is
        // off (the default `info`) it is a disabled callsite, a branch on a cached flag, so
        // the 20k msg/s path pays nothing; the info/warn lines below name both explicitly.
        let span = tracing::debug_span!("sip", src = %from.addr, call_id = parsed.msg.call_id());
        let _in_span = span.enter();
        if !parsed.msg.is_request() {
            self.counters.inc(Kind::Received, "response");
            return self.on_response(now, parsed, allowed);
        }
        let method = parsed.msg.method().map(Method::as_str).unwrap_or_default();
        self.counters.inc(Kind::Received, method);
        if !allowed {
            return self.refuse(
                parsed.msg,
                from,
                Rejection {
                    code: 403,
                    reason: "Forbidden".into(),
                    headers: vec![],
                },
                "acl",
            );
        }
        if over_limit {
            let retry = vec![(Name::RetryAfter, self.retry_after.to_string())];
            let r = Rejection {
                code: 503,
                reason: "Service Unavailable".into(),
                headers: retry,
            };
            return self.refuse(parsed.msg, from, r, "flood");
        }
        self.on_request(now, parsed, from);
    }

    fn on_response(&mut self, now: Instant, parsed: Parsed, allowed: bool) {
        // Checked here too: with `reject` a refused source's responses are dropped (only
        // `drop` stops them before parsing).
        if !allowed {
            self.counters.inc(Kind::Dropped, "acl");
            return;
        }
        if parsed.defect.is_some()
            || validate::cseq(&parsed.msg).is_err()
            || via::top(&parsed.msg).is_err()
        {
            self.counters.inc(Kind::Dropped, "malformed_response");
            return;
        }
        if self.tx.handle_response(now, parsed.msg).is_none() {
            self.counters.inc(Kind::Dropped, "stray_response");
        }
        self.drain_tx(now);
    }

    fn on_request(&mut self, now: Instant, mut parsed: Parsed, from: Peer) {
        let reply_to = stamp_via(&mut parsed.msg, from);
        match validate::check_request(&parsed) {
            Verdict::Drop(reason) => {
                tracing::debug!(reason, "dropped request");
                self.counters.inc(Kind::Dropped, "no_via");
            }
            Verdict::Reject(r) => {
                tracing::debug!(code = r.code, reason = %r.reason, "rejected request");
                self.refuse_to(parsed.msg, reply_to, r, "invalid");
            }
            Verdict::Accept => {
                let outcome = self.tx.handle_request(now, parsed.msg, reply_to);
                match outcome {
                    RequestOutcome::New(id) => self.dispatch(now, id, reply_to, from.addr),
                    RequestOutcome::Retransmission => self.counters.inc(Kind::Absorbed, "request"),
                    RequestOutcome::AckAbsorbed => {}
                    RequestOutcome::AckForDialog(ack) => {
                        let mut cx = Ctx {
                            now,
                            tx: &mut self.tx,
                            media: self.media.as_mut(),
                        };
                        if !self.calls.ack(&mut cx, &ack) {
                            self.counters.inc(Kind::Dropped, "ack_without_dialog")
                        }
                    }
                    RequestOutcome::Cancelled { .. } => {}
                }
                self.drain_tx(now);
            }
        }
    }

    /// What each new server transaction gets: OPTIONS answered here, in-dialog requests
    /// to the call core, new INVITEs routed by dialled number. `src` is the source address
    /// (for the logs; `reply_to` is where responses go).
    fn dispatch(&mut self, now: Instant, id: ServerTxId, reply_to: Peer, src: SocketAddr) {
        let Some(req) = self.tx.server_request(id).cloned() else {
            return;
        };
        let req = &req;
        let method = req.method().cloned().unwrap_or(Method::Options);
        let mf = validate::max_forwards(req).ok().flatten();
        let in_dialog = req.get(Name::To).and_then(name_addr::tag).is_some();
        let resp = match method {
            Method::Options => self.responder.options(req),
            _ if mf == Some(0) => self.responder.reply(req, 483, "Too Many Hops"),
            Method::Invite | Method::Update | Method::Bye | Method::Info if in_dialog => {
                let mut cx = Ctx {
                    now,
                    tx: &mut self.tx,
                    media: self.media.as_mut(),
                };
                if self.calls.in_dialog(&mut cx, id, req, reply_to) {
                    return;
                }
                self.responder
                    .reply(req, 481, "Call/Transaction Does Not Exist")
            }
            Method::Invite => match self.invite(req, src) {
                Ok(route) => {
                    let mut cx = Ctx {
                        now,
                        tx: &mut self.tx,
                        media: self.media.as_mut(),
                    };
                    return match route {
                        Route::Bridge(to, srtp) => {
                            self.calls.bridge(&mut cx, id, req, reply_to, &to, srtp)
                        }
                        Route::Inbound(target, dialled) => self
                            .calls
                            .inbound(&mut cx, id, req, reply_to, target, &dialled),
                    };
                }
                Err(resp) => resp,
            },
            Method::Bye | Method::Update | Method::Info => {
                self.responder
                    .reply(req, 481, "Call/Transaction Does Not Exist")
            }
            _ => self.responder.reply(req, 501, "Not Implemented"),
        };
        if let Err(e) = self.tx.respond(now, id, resp) {
            tracing::warn!(%src, call_id = req.call_id(), error = %e, "could not answer a server transaction");
        }
    }

    /// A new INVITE: what the call target owning the dialled number does with it, or the
    /// response to give.
    fn invite(&mut self, req: &Message, src: SocketAddr) -> Result<Route, Message> {
        if self.closing {
            let mut r = self.responder.reply(req, 503, "Service Unavailable");
            r.push(Name::RetryAfter, SHUTDOWN_RETRY_AFTER.to_string());
            return Err(r);
        }
        if let Some(r) = respond::invite_body_problem(req) {
            return Err(self.responder.rejection(req, &r));
        }
        let number = req.request_uri().and_then(uri::dialled_number);
        let target = number.as_deref().and_then(|n| self.lookup(n));
        match target {
            None => {
                tracing::info!(
                    %src,
                    call_id = req.call_id(),
                    number = number.as_deref().unwrap_or("-"),
                    "INVITE for a number no call target owns"
                );
                Err(self.responder.reply(req, 404, "Not Found"))
            }
            Some((t, Some(bridge_to))) => {
                let srtp = self.inbound.get(&t).map(|t| t.srtp).unwrap_or_default();
                Ok(Route::Bridge(bridge_to, srtp))
            }
            Some((t, None)) => match self.inbound.get(&t) {
                Some(target) => Ok(Route::Inbound(target.clone(), number.unwrap_or_default())),
                None => {
                    tracing::info!(%src, call_id = req.call_id(), target = %t, "INVITE for a call target whose prompts are not loaded");
                    Err(self.responder.reply(req, 480, "Temporarily Unavailable"))
                }
            },
        }
    }

    fn lookup(&self, number: &str) -> Option<(String, Option<String>)> {
        self.numbers
            .get(number)
            .or_else(|| self.numbers.get(&format!("+{number}")))
            .cloned()
    }

    fn refuse(&mut self, mut req: Message, from: Peer, r: Rejection, why: &str) {
        let reply_to = stamp_via(&mut req, from);
        self.refuse_to(req, reply_to, r, why);
    }

    /// Answers statelessly: bad and refused requests never create a transaction.
    fn refuse_to(&mut self, req: Message, reply_to: Peer, r: Rejection, why: &str) {
        self.counters
            .inc_fmt(Kind::Rejected, format_args!("{why}_{}", r.code));
        if req.method() == Some(&Method::Ack) {
            return;
        }
        let resp = self.responder.rejection(&req, &r);
        self.out.push_back(Transmit {
            to: reply_to,
            msg: resp,
        });
    }

    /// Fires due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tx.handle_timeout(now);
        self.drain_tx(now);
        let mut cx = Ctx {
            now,
            tx: &mut self.tx,
            media: self.media.as_mut(),
        };
        self.calls.handle_timeout(&mut cx);
        self.drain_tx(now);
    }

    /// Draining: new INVITEs get 503 from now on; calls in progress go on.
    pub fn stop_accepting(&mut self) {
        self.closing = true;
    }

    /// Shutdown: new INVITEs get 503 from now on, and every call ends (BYE to answered
    /// legs, CANCEL and 503 before answer). The driver then drains the transactions.
    pub fn shut_down(&mut self, now: Instant) {
        self.closing = true;
        let mut cx = Ctx {
            now,
            tx: &mut self.tx,
            media: self.media.as_mut(),
        };
        self.calls.end_all(&mut cx);
        self.drain_tx(now);
    }

    /// The relay saw no RTP from one side of a call for the media timeout.
    pub fn media_timeout(&mut self, now: Instant, id: MediaId, side: Side) {
        let mut cx = Ctx {
            now,
            tx: &mut self.tx,
            media: self.media.as_mut(),
        };
        self.calls.media_timeout(&mut cx, id, side);
        self.drain_tx(now);
    }

    /// The engine's view of an inbound call's call target (`None`: it did not answer).
    pub fn view_ready(
        &mut self,
        now: Instant,
        call: CallKey,
        view: Option<(
            chrono::DateTime<chrono::Utc>,
            crate::callback::engine::TargetView,
        )>,
    ) {
        let mut cx = Ctx {
            now,
            tx: &mut self.tx,
            media: self.media.as_mut(),
        };
        self.calls.view_ready(&mut cx, call, view);
        self.drain_tx(now);
    }

    /// The engine's answer to an inbound caller's registration.
    pub fn registration_done(
        &mut self,
        now: Instant,
        call: CallKey,
        result: Result<RegisteredSummary, RefusalKind>,
    ) {
        let mut cx = Ctx {
            now,
            tx: &mut self.tx,
            media: self.media.as_mut(),
        };
        self.calls.registration_done(&mut cx, call, result);
        self.drain_tx(now);
    }

    /// A callback the engine released: its first leg is placed (see
    /// [`crate::call::dialler`]). A call target this endpoint does not know ends the
    /// attempt at once as an error.
    pub fn dial(
        &mut self,
        now: Instant,
        launch: crate::callback::Launch,
        customer: Option<crate::call::dialler::Hop>,
        agent: Option<crate::call::dialler::Hop>,
    ) {
        let Some(target) = self.inbound.get(&launch.call_target).cloned() else {
            tracing::warn!(target = %launch.call_target, "callback for an unknown call target");
            self.calls
                .launch_failed(launch.callback_id, launch.first_party);
            return;
        };
        let dial = crate::call::dialler::Dial {
            callback_id: launch.callback_id,
            attempt: launch.attempt,
            number: launch.number,
            first_party: launch.first_party,
            contact_center: launch.contact_center,
            caller_id: launch.caller_id,
            headers: launch.sip_headers,
            target,
            customer,
            agent,
        };
        let mut cx = Ctx {
            now,
            tx: &mut self.tx,
            media: self.media.as_mut(),
        };
        self.calls.dial(&mut cx, dial);
        self.drain_tx(now);
    }

    /// The wall clock the calls read (dates in registrations and records; tests).
    pub fn with_clock(mut self, clock: crate::callback::service::Clock) -> Self {
        self.calls = self.calls.with_clock(clock);
        self
    }

    /// Call targets whose callers talk to holdless (keyed by call target id); without
    /// them such INVITEs get 480.
    pub fn with_inbound(mut self, targets: HashMap<String, Arc<InboundTarget>>) -> Self {
        self.inbound = targets;
        self
    }

    /// A digit or the end of a prompt on a side whose media holdless terminates.
    pub fn local_media(&mut self, now: Instant, ev: crate::media::MediaEvent) {
        let mut cx = Ctx {
            now,
            tx: &mut self.tx,
            media: self.media.as_mut(),
        };
        self.calls.local_media(&mut cx, ev);
        self.drain_tx(now);
    }

    /// The next call event (answered, ended).
    pub fn poll_call_event(&mut self) -> Option<CallEvent> {
        self.calls.poll_event()
    }

    /// Calls in progress.
    pub fn calls(&self) -> usize {
        self.calls.len()
    }

    /// Whether the call core's tables are all empty (leak checks).
    pub fn call_tables_empty(&self) -> bool {
        self.calls.tables_empty()
    }

    /// A TCP connection closed.
    pub fn connection_closed(&mut self, now: Instant, conn: ConnId) {
        self.tx.connection_closed(conn);
        self.drain_tx(now);
    }

    /// No connection to `to` could be opened: what was sent there fails now.
    pub fn destination_failed(&mut self, now: Instant, to: Peer) {
        self.tx.destination_failed(to);
        self.drain_tx(now);
    }

    /// Moves transaction output out and hands transaction events to the call core, until
    /// neither has more.
    fn drain_tx(&mut self, now: Instant) {
        loop {
            while let Some(t) = self.tx.poll_transmit() {
                self.out.push_back(t);
            }
            let Some(ev) = self.tx.poll_event() else {
                break;
            };
            let mut cx = Ctx {
                now,
                tx: &mut self.tx,
                media: self.media.as_mut(),
            };
            self.calls.tx_event(&mut cx, ev);
        }
    }

    /// The next message to send; anything outside the egress allow-list is dropped here.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        while let Some(t) = self.out.pop_front() {
            if !self.egress.permits(t.to.addr.ip()) {
                tracing::warn!(dst = %t.to.addr, "not sending outside the egress allow-list");
                self.counters.inc(Kind::Dropped, "egress");
                continue;
            }
            match (t.msg.method(), t.msg.status()) {
                (Some(m), _) => self.counters.inc(Kind::Sent, m.as_str()),
                (None, Some(code)) => self.counters.inc_fmt(Kind::Sent, format_args!("{code}")),
                _ => self.counters.inc(Kind::Sent, ""),
            }
            return Some(t);
        }
        None
    }

    /// The earliest deadline the shell must wake up for.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.tx.poll_timeout(), self.calls.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Live transactions (for leak checks and metrics).
    pub fn transactions(&self) -> usize {
        self.tx.len()
    }

    /// Transactions that still wait for or owe a message (what a shutdown waits for).
    pub fn transactions_awaiting(&self) -> usize {
        self.tx.awaiting()
    }
}

/// Whether the bytes start like a SIP response (`SIP/2.0 `, after any keep-alive CRLFs): a
/// look at a few bytes, taken before parsing to keep responses out of the flood guard.
fn looks_like_response(bytes: &[u8]) -> bool {
    let start = bytes
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(bytes.len());
    bytes[start..].starts_with(b"SIP/2.0 ")
}

/// RFC 3261 §18.2.1 and RFC 3581: note `received` (and `rport`) in the top Via, then pick
/// where responses go per §18.2.2: the same connection for TCP; for UDP the source port
/// when rport was asked for, otherwise the sent-by port (5060 if none) at the source IP.
fn stamp_via(req: &mut Message, from: Peer) -> Peer {
    let Ok(mut top) = via::top(req) else {
        return from;
    };
    let ip = from.addr.ip();
    let host = top.host.trim_start_matches('[').trim_end_matches(']');
    let rport = top.param("rport").is_some();
    if rport || host.parse::<std::net::IpAddr>().ok() != Some(ip) {
        top.set_param("received", Some(ip.to_string()));
    }
    if rport {
        top.set_param("rport", Some(from.addr.port().to_string()));
    }
    via::replace_top(req, &top);
    match from.transport {
        Transport::Tcp | Transport::Tls => from,
        Transport::Udp if rport => from,
        Transport::Udp => Peer {
            addr: SocketAddr::new(ip, top.port.unwrap_or(5060)),
            ..from
        },
    }
}
