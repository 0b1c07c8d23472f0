//! The callback dialler's flows: a call made of two UAC legs holdless places itself.
//!
//! * **Customer first**: the customer is called (through the customer trunk, from the call
//!   target's caller ID); on answer holdless plays the callback prompt and waits for a key:
//!   1 dials the contact center with the callback's metadata while the customer hears the
//!   holding prompt, and the agent's answer joins the two legs through the relay; 2
//!   reschedules; no key leaves the voicemail prompt where configured.
//! * **Agent first**: the contact center is called with the metadata; when an agent
//!   answers, the whisper asks for 1 (where configured), then the customer is called while
//!   the agent hears the holding prompt; the customer's answer joins the legs.
//!
//! The first leg dialled is the call's [`Side::Caller`], the second its [`Side::Callee`]:
//! the first leg's media is local (prompts out, DTMF in) until the second joins it through
//! the relay with the first leg's stream continuous. Every attempt ends with one
//! [`CallEvent::AttemptEnded`] carrying its result and an [`AttemptReport`].

pub mod config;

use std::sync::Arc;

use bytes::Bytes;

pub use config::DiallerSettings;
use config::ReturnEncoding;

use super::flow::{sdp_body, set_body};
use super::headers::{contact, is_sips, via};
use super::inbound::InboundTarget;
use super::session_timer as st;
use super::*;
use crate::callback::attempt::{AttemptReport, LegEnd, Party};
use crate::callback::model::{AttemptResult, FirstParty};
use crate::media::dtmf::{Digit, DtmfEvent};
use crate::media::prompt::{names, Law, Say};
use crate::media::srtp::SrtpPolicy;
use crate::media::MediaEvent;
use crate::sip::validate::ALLOWED_METHODS;
use crate::sip::{Method, Name, Peer};

/// A callback to dial: the engine's launch with its call target.
#[derive(Debug, Clone)]
pub struct Dial {
    /// The callback.
    pub callback_id: String,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// The customer's number, E.164.
    pub number: String,
    /// Which leg goes first.
    pub first_party: FirstParty,
    /// The contact center's URI (the agent leg).
    pub contact_center: Option<String>,
    /// Caller ID presented to the customer.
    pub caller_id: Option<String>,
    /// Headers captured from the inbound call (name, value as received).
    pub headers: Vec<(String, String)>,
    /// The call target.
    pub target: Arc<InboundTarget>,
    /// Where the customer's leg goes (`None`: no trunk for customers).
    pub customer: Option<Hop>,
    /// Where the agent's leg goes (`None`: no contact center).
    pub agent: Option<Hop>,
}

/// Where one leg of a callback goes, resolved before the launch reaches the call core
/// (DNS never runs in the SIP engine).
#[derive(Debug, Clone)]
pub struct Hop {
    /// The Request-URI: the contact center's URI, or for a customer `sip:<number>@<host>`
    /// with this host (and port).
    pub uri_host: String,
    /// The addresses to try in turn (RFC 3263 order, egress-checked).
    pub peers: Vec<Peer>,
    /// A loose Route to add (an outbound proxy, or the trunk a number is sent through).
    pub route: Option<String>,
    /// Digest credentials of the trunk.
    pub credentials: Option<Arc<crate::sip::digest::Credentials>>,
    /// The leg's media security.
    pub srtp: SrtpPolicy,
}

impl Hop {
    /// A hop to a URI with an IP address (no DNS), through `route` when given.
    pub fn literal(uri: &str, route: Option<String>) -> Result<Hop, String> {
        let to = route.as_deref().unwrap_or(uri);
        let peer = route::destination(to)?;
        Ok(Hop {
            uri_host: host_of(uri).to_owned(),
            peers: vec![peer],
            route,
            credentials: None,
            srtp: SrtpPolicy::default(),
        })
    }
}

/// Where a dialler call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The first leg rings.
    FirstRinging,
    /// The first leg answered: its prompt plays, a key is awaited.
    Asking,
    /// The second leg rings; the first hears the holding prompt.
    SecondRinging,
    /// Both legs are joined.
    Bridged,
    /// A last prompt plays on the first leg, then BYE.
    Closing,
}

/// A dialler call's state.
pub(super) struct Dialler {
    dial: Dial,
    stage: Stage,
    law: Law,
    launched: Instant,
    first_answered: Option<Instant>,
    /// The key that let the second leg be dialled (1), or the first answer without whisper.
    accepted: Option<Instant>,
    second_answered: Option<Instant>,
    /// The ring timeout fired on the first, the second leg (its 487 is a timeout, not a
    /// refusal).
    timed_out: [bool; 2],
    /// The result decided along the way (voicemail, reschedule, second leg failed).
    result: Option<AttemptResult>,
    report: AttemptReport,
}

impl Dialler {
    fn party(&self, side: Side) -> Party {
        let first = match self.dial.first_party {
            FirstParty::Customer => Party::Customer,
            FirstParty::Agent => Party::Agent,
        };
        match (side, first) {
            (Side::Caller, p) => p,
            (Side::Callee, Party::Customer) => Party::Agent,
            (Side::Callee, _) => Party::Customer,
        }
    }

    fn leg_end_mut(&mut self, side: Side) -> &mut LegEnd {
        match self.party(side) {
            Party::Customer => &mut self.report.customer,
            _ => &mut self.report.agent,
        }
    }

    /// The attempt's result once the call is over.
    fn result(&self, reason: Option<&EndReason>) -> AttemptResult {
        if let Some(r) = self.result {
            return r;
        }
        if self.second_answered.is_some() {
            return AttemptResult::Completed;
        }
        if reason == Some(&EndReason::Shutdown) {
            return AttemptResult::Interrupted;
        }
        if self.first_answered.is_none() {
            return match reason {
                Some(EndReason::Rejected(code)) => LegEnd::of_status(*code).result(),
                Some(EndReason::NoAnswer) => AttemptResult::NoAnswer,
                _ => AttemptResult::Error,
            };
        }
        match (self.dial.first_party, self.stage) {
            // Answered and never acknowledged (hung up during the prompt).
            (FirstParty::Customer, Stage::Asking) => AttemptResult::Voicemail,
            // Acknowledged, then gone before an agent came.
            (FirstParty::Customer, Stage::SecondRinging)
                if matches!(reason, Some(EndReason::HungUp(Side::Caller))) =>
            {
                AttemptResult::Abandoned
            }
            _ => AttemptResult::Error,
        }
    }
}

fn secs(from: Option<Instant>, to: Option<Instant>) -> Option<u64> {
    Some(to?.saturating_duration_since(from?).as_secs())
}

/// The value of the metadata header sent back on the agent leg.
fn return_value(raw: &str, encoding: ReturnEncoding) -> String {
    let u = crate::sip::uui::decode(raw, usize::MAX);
    match encoding {
        ReturnEncoding::Raw if u.binary || u.bad_hex => raw.trim().to_owned(),
        ReturnEncoding::Raw => u.value,
        ReturnEncoding::Hex if u.binary => format!("{};encoding=hex", u.value),
        ReturnEncoding::Hex => {
            let hex: String = u.value.bytes().map(|b| format!("{b:02x}")).collect();
            format!("{hex};encoding=hex")
        }
    }
}

/// The host (and port) part of a SIP URI, for the Request-URI of a number sent there.
pub fn host_of(uri: &str) -> &str {
    let rest = uri.trim().trim_start_matches('<');
    let rest = rest.split_once(':').map_or(rest, |x| x.1);
    let rest = rest.rsplit('@').next().unwrap_or(rest);
    rest.split([';', '?', '>']).next().unwrap_or(rest)
}

impl CallCore {
    /// Places a callback's first leg. What happens next comes back as the attempt's
    /// [`CallEvent::AgentConnected`] and [`CallEvent::AttemptEnded`]; an attempt that
    /// cannot even start ends at once (result `error`).
    pub fn dial(&mut self, cx: &mut Ctx, dial: Dial) {
        let room = self.calls.len() < self.sh.cfg.max_calls;
        if let Some(call) = self.sh.dial(cx, dial, room) {
            self.calls.insert(call.key, call);
        }
    }

    /// A launch that cannot be dialled at all (unknown call target): it ends as an error.
    pub fn launch_failed(&mut self, callback_id: String, first_party: FirstParty) {
        let report = AttemptReport::new(first_party, (self.sh.clock)());
        self.sh.events.push_back(CallEvent::AttemptEnded {
            callback_id,
            result: AttemptResult::Error,
            report: Box::new(report),
        });
    }
}

impl Shared {
    /// Places a callback's first leg (no `room`: the attempt ends at once); the new call.
    fn dial(&mut self, cx: &mut Ctx, dial: Dial, room: bool) -> Option<Call> {
        let launched_at = (self.clock)();
        let report = AttemptReport::new(dial.first_party, launched_at);
        let first = match dial.first_party {
            FirstParty::Customer => Party::Customer,
            FirstParty::Agent => Party::Agent,
        };
        if !room {
            tracing::warn!(callback = %dial.callback_id, "no room for another call: attempt ends");
            return self.attempt_failed_to_start(dial, report);
        }
        let media = match cx.media.create(cx.now) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(callback = %dial.callback_id, error = %e, "no media for a callback");
                return self.attempt_failed_to_start(dial, report);
            }
        };
        // The first leg is the caller side of the call's media, the second the callee.
        let hop = |p: Party| match p {
            Party::Customer => dial.customer.as_ref(),
            _ => dial.agent.as_ref(),
        };
        let second = match first {
            Party::Customer => Party::Agent,
            _ => Party::Customer,
        };
        for (side, party) in [(Side::Caller, first), (Side::Callee, second)] {
            let policy = hop(party).map_or(SrtpPolicy::default(), |h| h.srtp);
            cx.media.secure(media, side, policy);
        }
        let offer = match cx.media.offer_locally(cx.now, media, Side::Caller) {
            Ok(o) => o,
            Err(e) => {
                cx.media.release(media);
                tracing::warn!(callback = %dial.callback_id, error = %e, "no offer for a callback");
                return self.attempt_failed_to_start(dial, report);
            }
        };
        let Some(leg) = self.place(cx, &dial, first, offer) else {
            cx.media.release(media);
            return self.attempt_failed_to_start(dial, report);
        };
        let ring = self.ring_timeout(&dial, first);
        tracing::info!(
            callback = %dial.callback_id,
            attempt = dial.attempt,
            first = ?first,
            call_id = leg.invite.call_id(),
            "callback dialled"
        );
        let mut flow = Dialler {
            dial,
            stage: Stage::FirstRinging,
            law: Law::Pcmu,
            launched: cx.now,
            first_answered: None,
            accepted: None,
            second_answered: None,
            timed_out: [false; 2],
            result: None,
            report,
        };
        *flow.leg_end_mut(Side::Caller) = LegEnd::Abandoned;
        let mut call = self.new_call(leg, None, media, Flow::Dialler(Box::new(flow)));
        self.set_timer(&mut call, CallTimer::Ring(Side::Caller), cx.now + ring);
        Some(call)
    }

    fn attempt_failed_to_start(&mut self, dial: Dial, mut report: AttemptReport) -> Option<Call> {
        report.hung_up_first = Some(Party::System);
        self.events.push_back(CallEvent::AttemptEnded {
            callback_id: dial.callback_id,
            result: AttemptResult::Error,
            report: Box::new(report),
        });
        None
    }

    fn ring_timeout(&self, dial: &Dial, party: Party) -> Duration {
        match party {
            Party::Customer => dial.target.dialler.customer_ring,
            _ => dial.target.dialler.agent_ring,
        }
    }

    /// Sends the INVITE of `party`'s leg with `offer`: the customer through the customer
    /// trunk from the caller ID; the agent to the contact center (through the agent trunk
    /// when set) from the customer's number, with the metadata header.
    fn place(&mut self, cx: &mut Ctx, dial: &Dial, party: Party, offer: Bytes) -> Option<Leg> {
        let s = &dial.target.dialler;
        let (hop, uri, from_user) = match party {
            Party::Customer => {
                let Some(hop) = dial.customer.as_ref() else {
                    tracing::warn!(callback = %dial.callback_id, "no customer trunk configured");
                    return None;
                };
                let uri = format!("sip:{}@{}", dial.number, hop.uri_host);
                let from = dial.caller_id.clone().unwrap_or_else(|| "anonymous".into());
                (hop, uri, from)
            }
            _ => {
                let (Some(hop), Some(cc)) = (dial.agent.as_ref(), dial.contact_center.clone())
                else {
                    tracing::warn!(callback = %dial.callback_id, "no contact_center configured");
                    return None;
                };
                (hop, cc, dial.number.clone())
            }
        };
        let Some((&dest, alternates)) = hop.peers.split_first() else {
            tracing::warn!(callback = %dial.callback_id, to = %uri, "no address to send to");
            return None;
        };
        let local = self.local_for(dest.transport, None);
        let mut m = Message::request(Method::Invite, &uri);
        m.push(Name::Via, via(local, dest.transport, &self.branch()));
        m.push(Name::MaxForwards, "70");
        if let Some(t) = &hop.route {
            let t = crate::sip::name_addr::uri(t);
            let lr = if t.contains(";lr") { "" } else { ";lr" };
            m.push_other("Route", format!("<{t}{lr}>"));
        }
        let identity = format!("<sip:{from_user}@{}>", local.ip());
        m.push(
            Name::From,
            crate::sip::name_addr::with_tag(&identity, &self.token()),
        );
        m.push(Name::To, format!("<{uri}>"));
        m.push(Name::CallId, self.new_call_id());
        m.push(Name::CSeq, "1 INVITE");
        m.push(Name::Contact, contact(local, dest.transport, is_sips(&m)));
        m.push(Name::Allow, ALLOWED_METHODS);
        m.push(Name::Supported, "timer");
        m.push_other(st::SESSION_EXPIRES, self.cfg.session_expires.to_string());
        m.push_other(st::MIN_SE, self.cfg.min_se.to_string());
        m.push_other("P-Asserted-Identity", identity);
        if party == Party::Agent {
            if let Some((_, raw)) = dial.headers.first() {
                m.push_other(
                    s.return_header.clone(),
                    return_value(raw, s.return_encoding),
                );
            }
        }
        set_body(&mut m, &offer);
        let tx = match cx.tx.send_request(cx.now, m.clone(), dest) {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(error = %e, "callback INVITE not sent");
                return None;
            }
        };
        let mut leg = Leg::uac(m, tx, dest);
        leg.sdp_sent = Some(offer);
        if let Some(o) = leg.outgoing_mut() {
            o.alternates = alternates.to_vec();
        }
        leg.auth = hop
            .credentials
            .clone()
            .map(|credentials| super::leg::LegAuth {
                credentials,
                session: Default::default(),
                bye: None,
                refresh_challenged: false,
            });
        Some(leg)
    }

    /// A dialler leg answered (its dialog confirmed and ACKed already).
    pub(super) fn dialler_answered(
        &mut self,
        cx: &mut Ctx,
        call: &mut Call,
        side: Side,
        resp: &Message,
    ) {
        let media = call.media;
        let body = sdp_body(resp).unwrap_or_default().to_vec();
        let joined = match side {
            Side::Caller => cx
                .media
                .accept_local_answer(cx.now, media, Side::Caller, &body)
                .map(|_| ()),
            Side::Callee => cx
                .media
                .answer(cx.now, media, Side::Callee, &body)
                .map(|_| ()),
        };
        if let Err(e) = joined {
            tracing::info!(call = call.key.0, error = %e, "callback leg answer unusable");
            if let Some(f) = call.dialler_mut() {
                *f.leg_end_mut(side) = LegEnd::NotAcknowledged;
            }
            return self.teardown(cx, call, EndReason::Media(e.status().0));
        }
        if let Some(f) = call.dialler_mut() {
            *f.leg_end_mut(side) = LegEnd::Answered;
        }
        self.restart_session(cx, call, side);
        match side {
            Side::Caller => self.first_answered(cx, call, &body),
            Side::Callee => self.second_answered(cx, call),
        }
    }

    fn first_answered(&mut self, cx: &mut Ctx, call: &mut Call, answer: &[u8]) {
        call.phase = Phase::Answered;
        call.answered = Some(cx.now);
        let (key, media) = (call.key, call.media);
        let Flow::Dialler(f) = &mut call.flow else {
            return;
        };
        f.first_answered = Some(cx.now);
        f.law = super::inbound::law_of(answer);
        let agent_first = f.dial.first_party == FirstParty::Agent;
        let whisper = agent_first && f.dial.target.dialler.whisper;
        let say: &[Say] = if agent_first {
            &[Say::Prompt(names::WHISPER)]
        } else {
            &[
                Say::Prompt(names::CALLBACK_FROM),
                Say::Prompt(names::CALLBACK_MENU),
            ]
        };
        let callback = f.dial.callback_id.clone();
        self.events.push_back(CallEvent::Answered { call: key });
        if agent_first {
            self.events.push_back(CallEvent::AgentConnected {
                callback_id: callback,
            });
        }
        if agent_first && !whisper {
            return self.dial_second(cx, call);
        }
        let Some(f) = call.dialler_mut() else {
            return;
        };
        f.stage = Stage::Asking;
        let clip = f.dial.target.prompts.render(say, f.law);
        cx.media.play(cx.now, media, Side::Caller, clip);
    }

    /// The first leg accepted (1): the second leg is dialled with an offer of the first
    /// leg's codec; the first hears the holding prompt while it rings.
    fn dial_second(&mut self, cx: &mut Ctx, call: &mut Call) {
        let media = call.media;
        let offer = match cx.media.offer_onward(cx.now, media, Side::Caller) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(call = call.key.0, error = %e, "no offer for the second leg");
                return self.teardown(cx, call, EndReason::Media(e.status().0));
            }
        };
        let Some(f) = call.dialler_mut() else {
            return;
        };
        f.accepted = Some(cx.now);
        f.stage = Stage::SecondRinging;
        let dial = f.dial.clone();
        let second = f.party(Side::Callee);
        *f.leg_end_mut(Side::Callee) = LegEnd::Abandoned;
        let law = f.law;
        let Some(leg) = self.place(cx, &dial, second, offer) else {
            if let Some(f) = call.dialler_mut() {
                *f.leg_end_mut(Side::Callee) = LegEnd::Error;
            }
            return self.second_failed(cx, call, LegEnd::Error);
        };
        self.index_second_leg(call, &leg);
        call.callee = Some(leg);
        let clip = dial
            .target
            .prompts
            .render(&[Say::Prompt(names::HOLDING)], law);
        cx.media.play(cx.now, media, Side::Caller, clip);
        let ring = self.ring_timeout(&dial, second);
        self.set_timer(call, CallTimer::Ring(Side::Callee), cx.now + ring);
    }

    fn second_answered(&mut self, cx: &mut Ctx, call: &mut Call) {
        let key = call.key;
        let Some(f) = call.dialler_mut() else {
            return;
        };
        f.second_answered = Some(cx.now);
        f.stage = Stage::Bridged;
        let agent = f.party(Side::Callee) == Party::Agent;
        let callback = f.dial.callback_id.clone();
        tracing::info!(call = key.0, callback = %callback, "callback bridged");
        if agent {
            self.events.push_back(CallEvent::AgentConnected {
                callback_id: callback,
            });
        }
    }

    /// A final failure (or a transport failure) of a dialler leg's INVITE. The second leg
    /// failing leaves the first answered: it hears why, then BYE (returns true). The first
    /// leg failing ends the call as usual (returns false).
    pub(super) fn dialler_leg_failed(
        &mut self,
        cx: &mut Ctx,
        call: &mut Call,
        side: Side,
        end: LegEnd,
    ) -> bool {
        let Some(f) = call.dialler_mut() else {
            return false;
        };
        let end = if f.timed_out[side as usize] {
            LegEnd::NoAnswer
        } else {
            end
        };
        *f.leg_end_mut(side) = end;
        if side == Side::Caller || f.stage != Stage::SecondRinging {
            return false;
        }
        if let Some(leg) = call.callee.take() {
            let k = super::flow::dialog_key(&leg);
            self.dialogs.remove(&k);
        }
        self.second_failed(cx, call, end);
        true
    }

    /// The second leg could not be had: the first leg is told (agent unavailable to the
    /// customer; the customer unreachable to the agent) and the attempt ends with the
    /// second leg's class (customer) or `error` (agent).
    fn second_failed(&mut self, cx: &mut Ctx, call: &mut Call, end: LegEnd) {
        let (key, media) = (call.key, call.media);
        let Flow::Dialler(f) = &mut call.flow else {
            return;
        };
        let customer_failed = f.party(Side::Callee) == Party::Customer;
        f.result = Some(if customer_failed {
            end.result()
        } else {
            AttemptResult::Error
        });
        if !customer_failed && f.timed_out[1] {
            f.report.priority_queue_timed_out = true;
        }
        f.stage = Stage::Closing;
        let prompt = if customer_failed {
            names::CUSTOMER_UNREACHABLE
        } else {
            names::AGENT_UNAVAILABLE
        };
        tracing::info!(call = key.0, ?end, "callback's second leg failed");
        let clip = f.dial.target.prompts.render(&[Say::Prompt(prompt)], f.law);
        let bound = clip.duration() + Duration::from_secs(2);
        cx.media.play(cx.now, media, Side::Caller, clip);
        self.set_timer(call, CallTimer::Menu, cx.now + bound);
    }

    /// The ring timeout of a dialler leg fired: its end is "no answer", whatever the
    /// CANCEL brings back.
    pub(super) fn dialler_ring_timeout(call: &mut Call, side: Side) {
        if let Some(f) = call.dialler_mut() {
            f.timed_out[side as usize] = true;
        }
    }

    /// A key or the end of a prompt on the first leg.
    pub(super) fn dialler_media(&mut self, cx: &mut Ctx, call: &mut Call, ev: &MediaEvent) {
        if call.phase == Phase::Ending {
            return;
        }
        let media = call.media;
        let Flow::Dialler(f) = &mut call.flow else {
            return;
        };
        match (f.stage, ev) {
            (
                Stage::Asking,
                MediaEvent::Digit {
                    event: DtmfEvent { digit, .. },
                    ..
                },
            ) => self.dialler_digit(cx, call, *digit),
            (Stage::Asking, MediaEvent::PlayFinished { .. }) => {
                let at = cx.now + f.dial.target.dialler.press_timeout;
                self.set_timer(call, CallTimer::Menu, at);
            }
            (Stage::SecondRinging, MediaEvent::PlayFinished { .. }) => {
                // The holding prompt again until the second leg answers.
                let clip = f
                    .dial
                    .target
                    .prompts
                    .render(&[Say::Prompt(names::HOLDING)], f.law);
                cx.media.play(cx.now, media, Side::Caller, clip);
            }
            (Stage::Closing, MediaEvent::PlayFinished { .. }) => {
                self.teardown(cx, call, EndReason::Completed)
            }
            _ => {}
        }
    }

    /// A key pressed on the first leg while it is asked (RFC 4733, in-band or INFO).
    pub(super) fn dialler_digit(&mut self, cx: &mut Ctx, call: &mut Call, digit: Digit) {
        let media = call.media;
        let Flow::Dialler(f) = &mut call.flow else {
            return;
        };
        if f.stage != Stage::Asking {
            return;
        }
        let customer = f.dial.first_party == FirstParty::Customer;
        match digit {
            Digit::Num(1) => {
                if customer {
                    f.report.customer_delay = secs(f.first_answered, Some(cx.now));
                }
                self.clear_timer(call, CallTimer::Menu);
                cx.media.stop_playing(media, Side::Caller);
                self.dial_second(cx, call);
            }
            Digit::Num(2) if customer => {
                let delay = f.dial.target.dialler.reschedule_delay_secs;
                f.report.customer_delay = secs(f.first_answered, Some(cx.now));
                f.report.rescheduled = Some(delay);
                f.result = Some(AttemptResult::Rescheduled);
                self.close_with(cx, call, names::GOODBYE);
            }
            _ => {}
        }
    }

    /// Stops what plays on the first leg, plays `prompt`, then BYE.
    fn close_with(&mut self, cx: &mut Ctx, call: &mut Call, prompt: &'static str) {
        self.clear_timer(call, CallTimer::Menu);
        let media = call.media;
        let Flow::Dialler(f) = &mut call.flow else {
            return;
        };
        f.stage = Stage::Closing;
        let clip = f.dial.target.prompts.render(&[Say::Prompt(prompt)], f.law);
        let bound = clip.duration() + Duration::from_secs(2);
        cx.media.stop_playing(media, Side::Caller);
        cx.media.play(cx.now, media, Side::Caller, clip);
        self.set_timer(call, CallTimer::Menu, cx.now + bound);
    }

    /// The dialler's own timer: no key in time, or a closing prompt's bound.
    pub(super) fn dialler_timeout(&mut self, cx: &mut Ctx, call: &mut Call) {
        let key = call.key;
        let Some(f) = call.dialler_mut() else {
            return;
        };
        match f.stage {
            Stage::Asking => {
                tracing::info!(call = key.0, "callback not acknowledged in time");
                if f.dial.first_party == FirstParty::Agent {
                    // The agent did not accept the whisper.
                    f.result = Some(AttemptResult::Error);
                    return self.teardown(cx, call, EndReason::Completed);
                }
                f.result = Some(AttemptResult::Voicemail);
                if f.dial.target.dialler.leave_voicemail {
                    f.report.left_voicemail = true;
                    return self.close_with(cx, call, names::VOICEMAIL);
                }
                self.teardown(cx, call, EndReason::Completed)
            }
            Stage::Closing => self.teardown(cx, call, EndReason::Completed),
            _ => {}
        }
    }

    /// The attempt is over: its result and report for the engine.
    pub(super) fn dialler_finished(
        &mut self,
        f: &Dialler,
        reason: Option<&EndReason>,
        now: Instant,
    ) {
        let mut report = f.report.clone();
        let elapsed = now.saturating_duration_since(f.launched);
        report.ended_at =
            report.launched_at + chrono::Duration::from_std(elapsed).unwrap_or_default();
        report.hung_up_first = match reason {
            Some(EndReason::HungUp(side)) => Some(f.party(*side)),
            Some(EndReason::Rejected(_)) | Some(EndReason::NoAnswer) | None => None,
            Some(_) => Some(Party::System),
        };
        if f.second_answered.is_some() {
            report.talk = secs(f.second_answered, Some(now));
            match f.dial.first_party {
                FirstParty::Customer => {
                    report.agent_delay = secs(f.accepted, f.second_answered);
                }
                FirstParty::Agent => {
                    report.agent_delay = Some(0);
                    report.agent_wait = secs(f.first_answered, f.second_answered);
                    report.customer_wait = secs(f.accepted, f.second_answered);
                }
            }
        }
        let result = f.result(reason);
        tracing::info!(
            callback = %f.dial.callback_id,
            attempt = f.dial.attempt,
            result = %result,
            "callback attempt ended"
        );
        self.events.push_back(CallEvent::AttemptEnded {
            callback_id: f.dial.callback_id.clone(),
            result,
            report: Box::new(report),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_goes_back_raw_or_hex() {
        assert_eq!(
            return_value("48656c6c6f;encoding=hex", ReturnEncoding::Raw),
            "Hello"
        );
        assert_eq!(
            return_value("+15551234567", ReturnEncoding::Raw),
            "+15551234567"
        );
        assert_eq!(
            return_value("Hello", ReturnEncoding::Hex),
            "48656c6c6f;encoding=hex"
        );
        assert_eq!(
            return_value("zz;encoding=hex", ReturnEncoding::Raw),
            "zz;encoding=hex",
            "bad hex goes back as it came"
        );
    }

    #[test]
    fn a_number_is_sent_to_the_trunk_host() {
        assert_eq!(host_of("sip:127.0.0.1:5080"), "127.0.0.1:5080");
        assert_eq!(host_of("<sip:trunk@10.0.0.1;lr>"), "10.0.0.1");
        assert_eq!(
            host_of("sip:127.0.0.1:5080;transport=tcp"),
            "127.0.0.1:5080"
        );
    }
}
