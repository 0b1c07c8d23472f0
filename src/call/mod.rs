//! The B2BUA core: a call is two legs (each its own dialog, Call-ID, tags, CSeq and SDP)
//! joined by holdless. Sans-IO: it is driven by new server transactions, transaction
//! events, media events and time, and acts through the transaction layer and the media
//! control handed in with each input ([`Ctx`]).
//!
//! [`CallCore`] keeps the calls apart from what they share (`Shared`: settings, the tables
//! that find a call, timers, RNG, events). An input finds its call once; the handlers are
//! `Shared` methods taking that `&mut Call`, and a call they finish is dropped after the
//! input (`CallCore::with_call`).

pub mod config;
pub mod dialler;
mod flow;
mod headers;
mod inbound;
pub mod ivr;
mod leg;
mod reoffer;
pub mod route;
pub mod session_timer;
#[cfg(test)]
mod tests;
pub mod trunk;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::media::{MediaControl, MediaId, Side};
use crate::sip::shard::Shard;
use crate::sip::transaction::{ClientTxId, ServerTxId, TimerConfig, TransactionLayer};
use crate::sip::Message;

use config::CallSettings;
pub use inbound::{inbound_targets, InboundTarget};
use leg::{Leg, Pending2xx};

/// Everything an input needs to act: the time, the transaction layer and media.
pub struct Ctx<'a> {
    /// Now.
    pub now: Instant,
    /// The transaction layer requests and responses go through.
    pub tx: &'a mut TransactionLayer,
    /// Media negotiation and relay.
    pub media: &'a mut dyn MediaControl,
}

/// Identifies a call inside the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey(pub u64);

/// Why a call ended, for call records and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// A leg hung up with BYE.
    HungUp(Side),
    /// The caller cancelled before answer.
    Cancelled,
    /// The called side refused with this status.
    Rejected(u16),
    /// Nobody answered within the ring timeout.
    NoAnswer,
    /// A transaction timed out (no response at all).
    Timeout(Side),
    /// The transport of a leg failed.
    TransportError(Side),
    /// No ACK came for a 2xx within 64×T1.
    NoAck(Side),
    /// A session timer refresh failed or never came (RFC 4028).
    SessionExpired(Side),
    /// No RTP from a side for the media timeout.
    MediaTimeout(Side),
    /// The offer could not be handled (no common codec, no ports...).
    Media(u16),
    /// holdless was shutting down: both legs got BYE (or CANCEL and 503 before answer).
    Shutdown,
    /// holdless ended the call when its conversation was done (a goodbye after the menu).
    Completed,
}

impl EndReason {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            EndReason::HungUp(Side::Caller) => "caller_hangup",
            EndReason::HungUp(Side::Callee) => "callee_hangup",
            EndReason::Cancelled => "cancelled",
            EndReason::Rejected(_) => "rejected",
            EndReason::NoAnswer => "no_answer",
            EndReason::Timeout(_) => "timeout",
            EndReason::TransportError(_) => "transport_error",
            EndReason::NoAck(_) => "no_ack",
            EndReason::SessionExpired(_) => "session_expired",
            EndReason::MediaTimeout(_) => "media_timeout",
            EndReason::Media(_) => "media_error",
            EndReason::Shutdown => "shutdown",
            EndReason::Completed => "completed",
        }
    }
}

/// What the core reports to the rest of holdless, and what it asks of the callback engine.
#[derive(Debug, Clone)]
pub enum CallEvent {
    /// The called leg answered and both legs are bridged.
    Answered {
        /// The call.
        call: CallKey,
    },
    /// The call is over and every resource it held is released.
    Ended {
        /// The call.
        call: CallKey,
        /// Why.
        reason: EndReason,
        /// When it was answered, if it was.
        answered: Option<Instant>,
    },
    /// An inbound call needs the engine's view of its call target: answer with
    /// [`CallCore::view_ready`].
    ViewWanted {
        /// The call.
        call: CallKey,
        /// The call target.
        call_target: String,
    },
    /// An inbound caller asked for a callback: register it and answer with
    /// [`CallCore::registration_done`].
    Register {
        /// The call.
        call: CallKey,
        /// The registration.
        request: Box<crate::callback::engine::RegisterRequest>,
    },
    /// An inbound call ended without a callback: its call record, to keep.
    Record(Box<crate::callback::record::RecordEntry>),
    /// A callback's agent leg answered (the engine learns the connect time).
    AgentConnected {
        /// The callback.
        callback_id: String,
    },
    /// A callback's attempt is over: the engine records it and retries per policy.
    AttemptEnded {
        /// The callback.
        callback_id: String,
        /// How it ended.
        result: crate::callback::model::AttemptResult,
        /// What the dialler saw, for the attempt's call record.
        report: Box<crate::callback::attempt::AttemptReport>,
    },
}

/// Timers a call keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum CallTimer {
    /// Ring timeout for the INVITE of the UAC leg on this side.
    Ring(Side),
    /// Retransmit our 2xx to this side (§13.3.1.4).
    Retransmit2xx(Side),
    /// Give up waiting for the ACK of our 2xx to this side (64×T1).
    AckWait(Side),
    /// Refresh the session on this side (we are the refresher).
    Refresh(Side),
    /// The peer's refresh on this side is overdue.
    Expire(Side),
    /// Resend a relayed re-offer to this side after a 491 (RFC 3261 §14.1).
    GlareRetry(Side),
    /// The flow's own deadline: the inbound menu's input timeout, the dialler's wait for
    /// a key, a closing prompt's bound.
    Menu,
}

/// What a client transaction of the core is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientPurpose {
    /// The outbound leg's INVITE.
    Invite,
    /// CANCEL of the outbound INVITE.
    Cancel,
    /// A re-INVITE or UPDATE relayed from the other side.
    Reoffer,
    /// Our own session refresh.
    Refresh,
    /// BYE.
    Bye,
    /// A DTMF INFO relayed from the other leg (answered there at once; its fate here
    /// changes nothing).
    Info,
}

/// What a server transaction of the core is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerPurpose {
    /// The inbound INVITE that created the call.
    Initial,
    /// A re-INVITE or UPDATE being relayed.
    Reoffer,
}

/// A re-INVITE or UPDATE from one side being relayed to the other.
#[derive(Debug, Clone)]
struct Reoffer {
    from: Side,
    server_tx: ServerTxId,
    request: Message,
    is_invite: bool,
    /// 491s already met on the other leg (each retried after the §14.1 wait).
    glare_retries: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Outbound INVITE in progress, caller not answered.
    Proceeding,
    /// Both legs answered.
    Answered,
    /// Tearing down: waiting for BYE/CANCEL transactions to finish.
    Ending,
}

/// A call: its legs (the caller's and the callee's), the media joining them and the
/// bookkeeping of its teardown.
struct Call {
    /// The call's key in the core.
    key: CallKey,
    /// Its media released and its table entries removed ([`Shared::maybe_finish`]): the
    /// core drops it once the input at hand is handled.
    finished: bool,
    phase: Phase,
    /// What the call does with its legs.
    flow: Flow,
    /// The call's first leg: the inbound caller (or, for the dialler, the first party dialled).
    caller: Leg,
    /// The second leg, once a flow places it.
    callee: Option<Leg>,
    /// Delayed offer: the callee's ACK waits for the caller's ACK carrying the answer.
    ack_waits_for_caller: bool,
    media: MediaId,
    reoffer: Option<Reoffer>,
    outstanding: usize,
    reason: Option<EndReason>,
    answered: Option<Instant>,
    timer_keys: HashMap<CallTimer, (Instant, u64)>,
    /// This call's entries in `CallCore::dialogs` (caller leg, callee leg), removed with it.
    dialog_keys: [(String, String); 2],
}

impl Call {
    fn leg(&self, side: Side) -> Option<&Leg> {
        match side {
            Side::Caller => Some(&self.caller),
            Side::Callee => self.callee.as_ref(),
        }
    }

    fn leg_mut(&mut self, side: Side) -> Option<&mut Leg> {
        match side {
            Side::Caller => Some(&mut self.caller),
            Side::Callee => self.callee.as_mut(),
        }
    }

    /// The inbound flow's state, when this is an inbound call.
    fn inbound_mut(&mut self) -> Option<&mut inbound::Inbound> {
        match &mut self.flow {
            Flow::Inbound(f) => Some(f),
            Flow::Bridge | Flow::Dialler(_) => None,
        }
    }

    /// Whether holdless dials this call itself (a callback).
    fn is_dialler(&self) -> bool {
        matches!(self.flow, Flow::Dialler(_))
    }

    /// The dialler's state, when this is a dialler call.
    fn dialler_mut(&mut self) -> Option<&mut dialler::Dialler> {
        match &mut self.flow {
            Flow::Dialler(f) => Some(f),
            Flow::Bridge | Flow::Inbound(_) => None,
        }
    }
}

/// What a call does with its legs.
enum Flow {
    /// The caller's INVITE is relayed to a second leg; everything after is relayed.
    Bridge,
    /// holdless answers the caller itself: the callback conversation, then perhaps a
    /// bridge to the contact center.
    Inbound(Box<inbound::Inbound>),
    /// holdless places both legs: a callback being dialled.
    Dialler(Box<dialler::Dialler>),
}

/// Where holdless can be reached, for Via and Contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalAddrs {
    /// The first UDP listener.
    pub udp: Option<SocketAddr>,
    /// The first TCP listener.
    pub tcp: Option<SocketAddr>,
    /// The first TLS listener.
    pub tls: Option<SocketAddr>,
}

/// The B2BUA core: every call, and the part the calls share. Each input finds its call
/// once; the handlers then work on that call and the shared part side by side.
pub struct CallCore {
    calls: HashMap<CallKey, Call>,
    sh: Shared,
}

/// Everything of the core that is no one call's: settings, the tables that find a call
/// from a transaction, dialog, media session or deadline, the RNG and the events out.
/// Handlers are its methods and take the call they act on as `&mut Call`.
struct Shared {
    cfg: CallSettings,
    timers: TimerConfig,
    local: LocalAddrs,
    rng: fastrand::Rng,
    next_call: u64,
    next_timer: u64,
    server_txs: HashMap<ServerTxId, (CallKey, ServerPurpose)>,
    client_txs: HashMap<ClientTxId, (CallKey, Side, ClientPurpose)>,
    dialogs: HashMap<(String, String), (CallKey, Side)>,
    deadlines: BTreeMap<(Instant, u64), (CallKey, CallTimer)>,
    events: VecDeque<CallEvent>,
    /// Which call a media session belongs to.
    by_media: HashMap<MediaId, CallKey>,
    /// The wall clock (dates in registrations and records).
    clock: crate::callback::service::Clock,
    /// The engine this core is, among those sharing the calls by Call-ID.
    shard: Shard,
}

impl CallCore {
    /// A core with no calls.
    pub fn new(cfg: CallSettings, timers: TimerConfig, local: LocalAddrs, seed: u64) -> Self {
        CallCore {
            calls: HashMap::new(),
            sh: Shared {
                cfg,
                timers,
                local,
                rng: fastrand::Rng::with_seed(seed),
                next_call: 1,
                next_timer: 0,
                server_txs: HashMap::new(),
                client_txs: HashMap::new(),
                dialogs: HashMap::new(),
                deadlines: BTreeMap::new(),
                events: VecDeque::new(),
                by_media: HashMap::new(),
                clock: crate::callback::service::system_clock(),
                shard: Shard::SOLE,
            },
        }
    }

    /// The same core reading the wall clock from `clock` (tests).
    pub fn with_clock(mut self, clock: crate::callback::service::Clock) -> Self {
        self.sh.clock = clock;
        self
    }

    /// The same core as one of several engines: outbound Call-IDs are chosen to hash to
    /// `shard`, and `max_calls` is this engine's share.
    pub fn for_shard(mut self, shard: Shard) -> Self {
        self.sh.shard = shard;
        self.sh.cfg.max_calls = self.sh.cfg.max_calls.div_ceil(shard.count.max(1));
        self
    }

    /// Calls in progress.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether no call is in progress.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Whether every internal table is empty (leak checks).
    pub fn tables_empty(&self) -> bool {
        self.calls.is_empty()
            && self.sh.server_txs.is_empty()
            && self.sh.client_txs.is_empty()
            && self.sh.dialogs.is_empty()
            && self.sh.deadlines.is_empty()
    }

    /// The next event for the rest of holdless.
    pub fn poll_event(&mut self) -> Option<CallEvent> {
        self.sh.events.pop_front()
    }

    /// The earliest deadline of any call.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sh.deadlines.keys().next().map(|(t, _)| *t)
    }

    /// Fires every call timer due at `cx.now`.
    pub fn handle_timeout(&mut self, cx: &mut Ctx) {
        while let Some((&(at, seq), &(key, timer))) = self.sh.deadlines.iter().next() {
            if at > cx.now {
                break;
            }
            self.sh.deadlines.remove(&(at, seq));
            self.with_call(key, |sh, call| {
                call.timer_keys.remove(&timer);
                sh.fire(cx, call, timer);
            });
        }
    }

    /// Runs `f` on the call `key` beside the shared part (one lookup), and drops the call
    /// when `f` finished it. `None` when there is no such call.
    fn with_call<R>(
        &mut self,
        key: CallKey,
        f: impl FnOnce(&mut Shared, &mut Call) -> R,
    ) -> Option<R> {
        let call = self.calls.get_mut(&key)?;
        let r = f(&mut self.sh, call);
        if call.finished {
            self.calls.remove(&key);
        }
        Some(r)
    }
}

impl Shared {
    /// Arms `timer` of `call` for `at` (replacing it if armed); nothing once it finished.
    fn set_timer(&mut self, call: &mut Call, timer: CallTimer, at: Instant) {
        if call.finished {
            return;
        }
        if let Some(old) = call.timer_keys.remove(&timer) {
            self.deadlines.remove(&old);
        }
        self.next_timer += 1;
        call.timer_keys.insert(timer, (at, self.next_timer));
        self.deadlines
            .insert((at, self.next_timer), (call.key, timer));
    }

    fn clear_timer(&mut self, call: &mut Call, timer: CallTimer) {
        if let Some(old) = call.timer_keys.remove(&timer) {
            self.deadlines.remove(&old);
        }
    }

    fn token(&mut self) -> String {
        format!("{:016x}", self.rng.u64(..))
    }

    /// A Call-ID for an outbound leg that hashes to this core's engine, so the far side's
    /// answers and requests in that dialog come back here (about `count` draws).
    fn new_call_id(&mut self) -> String {
        loop {
            let id = format!("{}@holdless", self.token());
            if self.shard.owns(&id) {
                return id;
            }
        }
    }

    fn branch(&mut self) -> String {
        format!("z9hG4bK{:016x}", self.rng.u64(..))
    }
}
