//! The inbound transfer flow: a caller sent to holdless by the contact center. holdless
//! asks the callback engine what the call target offers now, then answers the caller
//! itself (its media local: prompts out, DTMF in) and lets the [`Menu`] lead the
//! conversation: the offer, the menu, the registration, the goodbye; or passes the caller
//! on to the contact center (keep holding, or callbacks not offered), or refuses.
//!
//! Sans-IO like the rest of the core: what it needs from the engine it asks for with
//! [`CallEvent::ViewWanted`] and [`CallEvent::Register`], and the answers come back as
//! inputs ([`CallCore::view_ready`], [`CallCore::registration_done`]). Every inbound call
//! that registers nothing ends with a [`CallEvent::Record`].

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::flow::{media_rejection, sdp_body};
use super::ivr::menu::{Action, Menu, RefusalKind, RegisterKind, RegisteredSummary};
use super::ivr::plan::{self, Entry, NotOffering};
use super::ivr::IvrSettings;
use super::session_timer as st;
use super::*;
use crate::callback::config::{metadata_of, resend_headers, CapturedHeader};
use crate::callback::engine::{RegisterRequest, TargetView};
use crate::callback::model::{Source, WidgetState};
use crate::callback::record::{CallRecord, InboundCall, InboundEnd, RecordEntry, TargetRef};
use crate::callback::CallbackSettings;
use crate::media::dtmf::{parse_info, DtmfEvent, InfoError};
use crate::media::prompt::{names, Law, PromptSet, Say};
use crate::media::MediaEvent;
use crate::sip::transaction::response_for;
use crate::sip::{name_addr, Method, Name, Peer};

/// How long an inbound call waits for the callback engine's view before it is handled as
/// "platform unavailable" (callbacks not offered).
const VIEW_TIMEOUT: Duration = Duration::from_secs(3);

/// A call target as the inbound flow needs it; shared by every call to it.
#[derive(Debug)]
pub struct InboundTarget {
    /// Identifier (API, records).
    pub id: String,
    /// Human-readable name (records).
    pub name: String,
    /// The organization owning it (records).
    pub organization: Option<String>,
    /// Callback settings: hours, contact center, metadata capture.
    pub callback: CallbackSettings,
    /// The conversation's settings.
    pub ivr: IvrSettings,
    /// Its prompts, loaded once.
    pub prompts: Arc<PromptSet>,
    /// How its callbacks are dialled.
    pub dialler: super::dialler::DiallerSettings,
    /// Media security of the legs facing the contact center.
    pub srtp: crate::media::srtp::SrtpPolicy,
}

/// Where an inbound call's conversation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waiting for the engine's view of the call target (nothing answered yet).
    AwaitingView,
    /// Answered: the menu leads.
    Conversation,
    /// Passing the caller to the contact center (the second leg placed).
    Holding,
    /// The contact center did not take the caller: the apology plays, then BYE.
    Apologising,
}

/// The inbound flow's state for one call.
pub(super) struct Inbound {
    target: Arc<InboundTarget>,
    stage: Stage,
    /// When the INVITE arrived (monotonic, and on the wall clock).
    arrived: Instant,
    arrived_at: DateTime<Utc>,
    /// The caller's number (P-Asserted-Identity, else From).
    ani: Option<String>,
    /// The number dialled.
    dialled: String,
    /// The configured headers found on the INVITE.
    captured: Vec<CapturedHeader>,
    /// The caller's offer, kept until the view says how to answer it (`None`: the INVITE
    /// had none; holdless offers in its 200 and the answer comes in the ACK).
    offer: Option<Bytes>,
    /// holdless offered in its 200: the conversation starts with the ACK's answer.
    awaiting_answer: bool,
    menu: Option<Menu>,
    law: Law,
    /// Callbacks were not offered: the widget state that said so.
    not_offered: Option<WidgetState>,
    /// A registration sent and not answered yet.
    registering: bool,
    /// The contact center refused the caller who kept holding, with this status.
    refused_by_contact_center: Option<u16>,
}

impl Inbound {
    /// What the call leaves behind when it registered nothing: the end to record, or
    /// `None` when a callback was registered (its inbound fields go with the callback).
    fn end(&self) -> Option<InboundEnd> {
        let Some(menu) = &self.menu else {
            return Some(if self.not_offered.is_some() {
                InboundEnd::NotOffered
            } else {
                InboundEnd::EarlyHangup
            });
        };
        let o = menu.outcome();
        if o.callback_id.is_some() || self.registering {
            return None;
        }
        Some(if o.chose_to_hold {
            InboundEnd::ChoseToHold
        } else if o.not_offering.is_some() || self.not_offered.is_some() {
            InboundEnd::NotOffered
        } else if let Some(RefusalKind::Refused(r)) = &o.refused {
            InboundEnd::Refused(*r)
        } else {
            InboundEnd::EarlyHangup
        })
    }

    fn inbound_call(&self, registration: Option<Duration>) -> InboundCall {
        InboundCall {
            ani: self.ani.clone(),
            dialled: self.dialled.clone(),
            created_at: self.arrived_at,
            registration_duration_secs: registration.map(|d| d.as_secs()),
            metadata: metadata_of(&self.captured),
        }
    }
}

/// The caller's number: the user part of P-Asserted-Identity when present, else From's.
fn caller_number(invite: &Message) -> Option<String> {
    let user = |v: &str| {
        let user = crate::sip::uri::parse(name_addr::uri(v)).ok()?.user?;
        let user = user.split(';').next().unwrap_or_default().to_owned();
        (!user.is_empty() && !user.eq_ignore_ascii_case("anonymous")).then_some(user)
    };
    invite
        .get_other("P-Asserted-Identity")
        .and_then(user)
        .or_else(|| invite.get(Name::From).and_then(user))
}

/// A view for when the engine could not answer: nothing offered.
fn unavailable_view() -> TargetView {
    TargetView {
        state: WidgetState::PlatformUnavailable,
        offer_asap: false,
        offer_scheduled: false,
        ewt: None,
        timeslots: Vec::new(),
    }
}

impl CallCore {
    /// A new INVITE for a call target whose callers talk to holdless. The engine's view
    /// of the call target is asked for ([`CallEvent::ViewWanted`]); the call goes on in
    /// [`CallCore::view_ready`].
    pub fn inbound(
        &mut self,
        cx: &mut Ctx,
        tx: ServerTxId,
        invite: &Message,
        reply_to: Peer,
        target: Arc<InboundTarget>,
        dialled: &str,
    ) {
        if let Err(r) = self.admit(invite) {
            return Shared::reply(cx, tx, r);
        }
        if let Some(call) = self.sh.inbound(cx, tx, invite, reply_to, target, dialled) {
            self.calls.insert(call.key, call);
        }
    }

    /// The engine's view of the call target (`None`: the engine did not answer): decides
    /// what the caller gets.
    pub fn view_ready(
        &mut self,
        cx: &mut Ctx,
        key: CallKey,
        view: Option<(DateTime<Utc>, TargetView)>,
    ) {
        self.with_call(key, |sh, call| sh.view_ready(cx, call, view));
    }

    /// The engine answered a registration the menu asked for.
    pub fn registration_done(
        &mut self,
        cx: &mut Ctx,
        key: CallKey,
        result: Result<RegisteredSummary, RefusalKind>,
    ) {
        self.with_call(key, |sh, call| sh.registration_done(cx, call, result));
    }

    /// A digit or the end of a prompt from a side whose media holdless terminates.
    pub fn local_media(&mut self, cx: &mut Ctx, ev: MediaEvent) {
        let (id, digit) = match &ev {
            MediaEvent::Digit { id, event, .. } => (*id, Some(*event)),
            MediaEvent::PlayFinished { id, .. } => (*id, None),
            _ => return,
        };
        let Some(&key) = self.sh.by_media.get(&id) else {
            return;
        };
        self.with_call(key, |sh, call| sh.local_media(cx, call, &ev, digit));
    }
}

impl Shared {
    /// [`CallCore::inbound`] once admitted: the new call, or `None` when the INVITE was
    /// answered with an error.
    fn inbound(
        &mut self,
        cx: &mut Ctx,
        tx: ServerTxId,
        invite: &Message,
        reply_to: Peer,
        target: Arc<InboundTarget>,
        dialled: &str,
    ) -> Option<Call> {
        // None: a delayed offer (holdless offers in its 200, the answer comes in the ACK).
        let offer = sdp_body(invite).map(Bytes::copy_from_slice);
        let mut caller = match self.uas_leg(tx, invite, reply_to) {
            Ok(leg) => leg,
            Err(r) => {
                Self::reply(cx, tx, r);
                return None;
            }
        };
        caller.allows_update = st::allows(invite, "UPDATE");
        let media = match cx.media.create(cx.now) {
            Ok(m) => m,
            Err(e) => {
                Self::reply(cx, tx, media_rejection(invite, &e));
                return None;
            }
        };
        // Both legs face the contact center: the transferred caller, and the leg that
        // passes a caller who keeps holding back to it.
        cx.media.secure(media, Side::Caller, target.srtp);
        cx.media.secure(media, Side::Callee, target.srtp);
        Self::reply(cx, tx, response_for(invite, 100, "Trying", None));
        let captured = target.callback.metadata.capture(
            invite
                .headers
                .iter()
                .map(|h| (h.name.as_str(), h.value.as_str())),
        );
        let flow = Inbound {
            stage: Stage::AwaitingView,
            arrived: cx.now,
            arrived_at: (self.clock)(),
            ani: caller_number(invite).map(|raw| {
                // E.164 by the call target's rules where it reads as a number; kept as sent
                // otherwise (a SIP user name), so the record still says who called.
                target.callback.numbers.normalize(&raw).unwrap_or(raw)
            }),
            dialled: dialled.to_owned(),
            captured,
            offer,
            awaiting_answer: false,
            menu: None,
            law: Law::Pcmu,
            not_offered: None,
            registering: false,
            refused_by_contact_center: None,
            target: target.clone(),
        };
        let mut call = self.new_call(caller, None, media, Flow::Inbound(Box::new(flow)));
        let key = call.key;
        tracing::info!(
            call = key.0,
            call_id = invite.call_id(),
            target = %target.id,
            "inbound transfer"
        );
        self.events.push_back(CallEvent::ViewWanted {
            call: key,
            call_target: target.id.clone(),
        });
        // A callback engine that does not answer must not leave the caller ringing.
        self.set_timer(&mut call, CallTimer::Menu, cx.now + VIEW_TIMEOUT);
        Some(call)
    }

    /// The engine's view of the call target (`None`: the engine did not answer): decides
    /// what the caller gets.
    fn view_ready(
        &mut self,
        cx: &mut Ctx,
        call: &mut Call,
        view: Option<(DateTime<Utc>, TargetView)>,
    ) {
        if call.phase != Phase::Proceeding {
            return;
        }
        if call
            .inbound_mut()
            .is_none_or(|f| f.stage != Stage::AwaitingView)
        {
            return;
        }
        self.clear_timer(call, CallTimer::Menu);
        let Flow::Inbound(f) = &mut call.flow else {
            return;
        };
        let (at, view) = view.unwrap_or_else(|| ((self.clock)(), unavailable_view()));
        let t = f.target.clone();
        let entry = plan::entry(at, &view, &t.callback, &t.ivr, f.ani.as_deref());
        if let Entry::NotOffering { reason, .. } = &entry {
            f.not_offered = Some(*reason);
        }
        match &entry {
            Entry::NotOffering {
                then: NotOffering::Reject(code),
                ..
            } => {
                let code = *code;
                if let Some(tx) = call.caller.take_invite_tx() {
                    let r = self.caller_response(call, code, reason_phrase(code));
                    Self::reply(cx, tx, r);
                }
                self.teardown(cx, call, EndReason::Rejected(code));
            }
            Entry::NotOffering {
                then: NotOffering::Bridge { announce },
                ..
            } if announce.is_empty() => self.straight_to_contact_center(cx, call),
            _ => {
                let menu = Menu::new(cx.now, &entry, &t.ivr);
                self.answer_inbound(cx, call, menu);
            }
        }
    }

    /// Callbacks not offered and nothing to announce: the caller is bridged to the
    /// contact center as a bridged call (answered when the contact center answers).
    fn straight_to_contact_center(&mut self, cx: &mut Ctx, call: &mut Call) {
        let Flow::Inbound(f) = &call.flow else { return };
        let (Some(cc), offer) = (f.target.callback.contact_center.clone(), f.offer.clone()) else {
            return self.teardown(cx, call, EndReason::Rejected(480));
        };
        let media = call.media;
        let out_offer = match offer.map(|o| cx.media.offer(cx.now, media, Side::Caller, &o)) {
            None => None,
            Some(Ok(o)) => Some(o),
            Some(Err(e)) => {
                if let Some(tx) = call.caller.take_invite_tx() {
                    let r = media_rejection(&call.caller.invite, &e);
                    Self::reply(cx, tx, r);
                }
                return self.teardown(cx, call, EndReason::Media(e.status().0));
            }
        };
        let invite = call.caller.invite.clone();
        let Some(callee) = self.place_contact_center_leg(cx, call, &invite, &cc, out_offer) else {
            return self.teardown(cx, call, EndReason::Rejected(500));
        };
        call.callee = Some(callee);
        // From here on the call runs as a bridged call (the caller is answered when
        // the contact center answers); the flow stays to record it.
        if let Flow::Inbound(f) = &mut call.flow {
            f.stage = Stage::Holding;
        }
        self.set_timer(
            call,
            CallTimer::Ring(Side::Callee),
            cx.now + self.cfg.ring_timeout,
        );
    }

    /// Places the leg to the contact center (directly, not through the outbound trunk)
    /// with `offer` (none: a delayed offer), the caller's captured headers passed on;
    /// files it under the call.
    fn place_contact_center_leg(
        &mut self,
        cx: &mut Ctx,
        call: &mut Call,
        inbound: &Message,
        to_uri: &str,
        offer: Option<Bytes>,
    ) -> Option<Leg> {
        let dest = match route::destination(to_uri) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(to = to_uri, error = %e, "contact center unusable");
                return None;
            }
        };
        let leg = self.originate_direct(cx, inbound, to_uri, dest, offer)?;
        self.index_second_leg(call, &leg);
        Some(leg)
    }

    /// Answers the caller with holdless's own media and starts the conversation.
    fn answer_inbound(&mut self, cx: &mut Ctx, call: &mut Call, menu: Option<Menu>) {
        let media = call.media;
        let Flow::Inbound(f) = &mut call.flow else {
            return;
        };
        let sdp = match &f.offer {
            Some(offer) => cx.media.answer_locally(cx.now, media, Side::Caller, offer),
            None => cx.media.offer_locally(cx.now, media, Side::Caller),
        };
        let answer = match sdp {
            Ok(a) => a,
            Err(e) => {
                if let Some(tx) = call.caller.take_invite_tx() {
                    let r = media_rejection(&call.caller.invite, &e);
                    Self::reply(cx, tx, r);
                }
                return self.teardown(cx, call, EndReason::Media(e.status().0));
            }
        };
        f.law = law_of(&answer);
        f.menu = menu;
        f.stage = Stage::Conversation;
        f.awaiting_answer = f.offer.is_none();
        let start_now = !f.awaiting_answer;
        self.send_caller_200(cx, call, answer, None);
        self.restart_session(cx, call, Side::Caller);
        self.events
            .push_back(CallEvent::Answered { call: call.key });
        if start_now {
            self.drive(cx, call);
        }
    }

    /// The caller's ACK to the 200 that carried holdless's offer: its answer makes the
    /// media local and the conversation starts. No usable answer: the call ends.
    pub(super) fn inbound_ack(&mut self, cx: &mut Ctx, call: &mut Call, ack: &Message) {
        let (key, media) = (call.key, call.media);
        let Flow::Inbound(f) = &mut call.flow else {
            return;
        };
        if !std::mem::take(&mut f.awaiting_answer) {
            return;
        }
        let result = match sdp_body(ack) {
            Some(answer) => cx
                .media
                .accept_local_answer(cx.now, media, Side::Caller, answer),
            None => Err(crate::media::MediaError::MalformedSdp(
                "the ACK carries no answer to holdless's offer".into(),
            )),
        };
        match result {
            Ok(()) => {
                if let Some(l) = law_from_answer(ack) {
                    f.law = l;
                }
                self.drive(cx, call)
            }
            Err(e) => {
                tracing::info!(call = key.0, error = %e, "no usable answer in the ACK");
                self.teardown(cx, call, EndReason::Media(e.status().0));
            }
        }
    }

    /// Carries out what the menu asks for, then arms its timer.
    fn drive(&mut self, cx: &mut Ctx, call: &mut Call) {
        loop {
            if call.finished {
                return;
            }
            let (key, media, phase) = (call.key, call.media, call.phase);
            let Flow::Inbound(f) = &mut call.flow else {
                return;
            };
            let Some(menu) = f.menu.as_mut() else { return };
            let Some(action) = menu.poll_action() else {
                match menu.poll_timeout() {
                    Some(at) => self.set_timer(call, CallTimer::Menu, at),
                    None => self.clear_timer(call, CallTimer::Menu),
                }
                return;
            };
            if phase == Phase::Ending {
                continue; // the caller is gone: the menu only settles its outcome
            }
            match action {
                Action::Play { say, .. } => {
                    let clip = f.target.prompts.render(&say, f.law);
                    cx.media.play(cx.now, media, Side::Caller, clip);
                }
                Action::StopPlayback => cx.media.stop_playing(media, Side::Caller),
                Action::Register { number, kind } => {
                    if let Some(request) = registration(f, number, kind, cx.now) {
                        self.events.push_back(CallEvent::Register {
                            call: key,
                            request: Box::new(request),
                        });
                    }
                }
                Action::Bridge => self.hold_for_agent(cx, call),
                Action::HangUp => self.teardown(cx, call, EndReason::Completed),
            }
        }
    }

    /// The engine answered a registration the menu asked for.
    fn registration_done(
        &mut self,
        cx: &mut Ctx,
        call: &mut Call,
        result: Result<RegisteredSummary, RefusalKind>,
    ) {
        let Some(f) = call.inbound_mut() else {
            return;
        };
        f.registering = false;
        if let Some(menu) = f.menu.as_mut() {
            menu.registration_done(cx.now, result);
        }
        self.drive(cx, call);
    }

    /// The caller keeps holding: an offer of the codec it already speaks goes to the
    /// contact center; its answer joins the two through the relay (no re-INVITE to the
    /// caller).
    fn hold_for_agent(&mut self, cx: &mut Ctx, call: &mut Call) {
        let (key, media) = (call.key, call.media);
        let Flow::Inbound(f) = &mut call.flow else {
            return;
        };
        let Some(cc) = f.target.callback.contact_center.clone() else {
            return self.teardown(cx, call, EndReason::Completed);
        };
        f.stage = Stage::Holding;
        let offer = match cx.media.offer_onward(cx.now, media, Side::Caller) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(call = key.0, error = %e, "no offer for the contact center");
                return self.teardown(cx, call, EndReason::Media(e.status().0));
            }
        };
        let invite = call.caller.invite.clone();
        match self.place_contact_center_leg(cx, call, &invite, &cc, Some(offer)) {
            Some(leg) => {
                call.callee = Some(leg);
                // While the contact center rings: "please hold while we connect you".
                if let Flow::Inbound(f) = &call.flow {
                    let say = [Say::Prompt(names::CONNECTING)];
                    let clip = f.target.prompts.render(&say, f.law);
                    cx.media.play(cx.now, media, Side::Caller, clip);
                }
                self.set_timer(
                    call,
                    CallTimer::Ring(Side::Callee),
                    cx.now + self.cfg.ring_timeout,
                );
            }
            None => self.teardown(cx, call, EndReason::Rejected(500)),
        }
    }

    /// The contact center answered the leg of a caller who kept holding: the media joins
    /// both legs; the caller, answered long ago, hears the agent.
    pub(super) fn held_caller_joined(&mut self, cx: &mut Ctx, call: &mut Call, resp: &Message) {
        let body = sdp_body(resp).unwrap_or_default().to_vec();
        if let Err(e) = cx.media.answer(cx.now, call.media, Side::Callee, &body) {
            tracing::info!(call = call.key.0, error = %e, "contact center answer unusable");
            return self.teardown(cx, call, EndReason::Media(e.status().0));
        }
        self.restart_session(cx, call, Side::Callee);
        tracing::info!(call = call.key.0, "caller bridged to the contact center");
    }

    /// The contact center refused (or never answered) a caller holdless had answered and
    /// who chose to keep holding: that leg is dropped, the caller hears the
    /// hold-failed prompt, then BYE. Returns false when this is not such a call.
    pub(super) fn held_caller_refused(&mut self, cx: &mut Ctx, call: &mut Call, code: u16) -> bool {
        let (key, media) = (call.key, call.media);
        let answered = call.answered.is_some() && call.phase == Phase::Answered;
        let Flow::Inbound(f) = &mut call.flow else {
            return false;
        };
        if !answered || f.stage != Stage::Holding {
            return false;
        }
        tracing::info!(
            call = key.0,
            code,
            "contact center did not take the held caller"
        );
        f.stage = Stage::Apologising;
        f.refused_by_contact_center = Some(code);
        let clip = f.target.prompts.render(
            &[crate::media::prompt::Say::Prompt(
                crate::media::prompt::names::AGENT_UNAVAILABLE,
            )],
            f.law,
        );
        let bound = clip.duration() + Duration::from_secs(2);
        if let Some(leg) = call.callee.take() {
            let k = super::flow::dialog_key(&leg);
            self.dialogs.remove(&k);
        }
        cx.media.play(cx.now, media, Side::Caller, clip);
        // Should the end of the prompt never be reported, the call still ends.
        self.set_timer(call, CallTimer::Menu, cx.now + bound);
        true
    }

    /// A digit (`digit`) or the end of a prompt (`ev`) from a side whose media holdless
    /// terminates.
    fn local_media(
        &mut self,
        cx: &mut Ctx,
        call: &mut Call,
        ev: &MediaEvent,
        digit: Option<DtmfEvent>,
    ) {
        if call.is_dialler() {
            return self.dialler_media(cx, call, ev);
        }
        let Some(f) = call.inbound_mut() else {
            return;
        };
        if f.stage == Stage::Apologising {
            if digit.is_none() {
                self.teardown(cx, call, EndReason::Completed);
            }
            return;
        }
        let Some(menu) = f.menu.as_mut() else { return };
        match digit {
            Some(DtmfEvent { digit, .. }) => menu.handle_digit(cx.now, digit),
            None => menu.prompt_finished(cx.now),
        }
        self.drive(cx, call);
    }

    /// An in-dialog INFO. DTMF (`application/dtmf-relay`, `application/dtmf`) from a caller
    /// talking to the menu is taken as a key press; in a bridged call it is relayed to the
    /// other leg (answered 200 here at once, as B2BUAs do for DTMF). Other bodies get 415.
    pub(super) fn on_info(
        &mut self,
        cx: &mut Ctx,
        call: &mut Call,
        side: Side,
        tx: ServerTxId,
        req: &Message,
    ) {
        let ct = req.get(Name::ContentType).unwrap_or("");
        let digit = match parse_info(ct, &req.body) {
            Ok(d) => d,
            Err(InfoError::UnsupportedContentType(_)) => {
                let mut r = response_for(req, 415, "Unsupported Media Type", None);
                r.push(Name::Accept, "application/dtmf-relay, application/dtmf");
                return Self::reply(cx, tx, r);
            }
            Err(e) => {
                return Self::reply(
                    cx,
                    tx,
                    response_for(req, 400, &format!("Bad Request: {e}"), None),
                )
            }
        };
        Self::reply(cx, tx, response_for(req, 200, "OK", None));
        let joined = call
            .callee
            .as_ref()
            .is_some_and(|l| l.invite_out_tx().is_none() && l.dialog.is_some());
        if !joined {
            if call.is_dialler() {
                return self.dialler_digit(cx, call, digit.digit);
            }
            if let Some(menu) = call.inbound_mut().and_then(|f| f.menu.as_mut()) {
                menu.handle_digit(cx.now, digit.digit);
                self.drive(cx, call);
            }
            return;
        }
        let other = side.other();
        let Some(d) = call.leg_mut(other).and_then(|l| l.dialog.as_mut()) else {
            return;
        };
        let mut out = d.request(Method::Info, None);
        out.set(Name::ContentType, ct);
        out.body = req.body.clone();
        self.send_in_dialog(cx, call, other, out, ClientPurpose::Info);
    }

    /// The menu's own timer (or the apology's bound, or the wait for the engine's view).
    pub(super) fn menu_timeout(&mut self, cx: &mut Ctx, call: &mut Call) {
        if call.is_dialler() {
            return self.dialler_timeout(cx, call);
        }
        let stage = call.inbound_mut().map(|f| f.stage);
        if stage == Some(Stage::AwaitingView) {
            tracing::warn!(
                call = call.key.0,
                "no call target view in time: nothing is offered"
            );
            return self.view_ready(cx, call, None);
        }
        if stage == Some(Stage::Apologising) {
            return self.teardown(cx, call, EndReason::Completed);
        }
        let Some(menu) = call.inbound_mut().and_then(|f| f.menu.as_mut()) else {
            return;
        };
        menu.handle_timeout(cx.now);
        self.drive(cx, call);
    }

    /// The call is ending: the menu hears of the hangup (its outcome settles).
    pub(super) fn inbound_ending(&mut self, cx: &mut Ctx, call: &mut Call) {
        if let Some(menu) = call.inbound_mut().and_then(|f| f.menu.as_mut()) {
            menu.hangup(cx.now);
        }
    }
}

/// The registration the menu asked for (the call is registering from now on).
fn registration(
    f: &mut Inbound,
    number: Option<String>,
    kind: RegisterKind,
    now: Instant,
) -> Option<RegisterRequest> {
    let number = number.or_else(|| f.ani.clone()).unwrap_or_default();
    f.registering = true;
    Some(RegisterRequest {
        call_target: f.target.id.clone(),
        number,
        appointment: match kind {
            RegisterKind::Scheduled(at) => Some(at),
            RegisterKind::Asap | RegisterKind::NextDay => None,
        },
        source: Some(Source::Sip),
        channel: Some("phone".into()),
        sip_headers: resend_headers(&f.captured),
        inbound: Some(f.inbound_call(Some(now.saturating_duration_since(f.arrived)))),
        ..RegisterRequest::default()
    })
}

/// The record of an inbound call that registered nothing (`None` when it registered a
/// callback: the inbound fields travel with it to its first attempt).
pub(super) fn record_of(f: &Inbound, call_id: &str, now: Instant) -> Option<RecordEntry> {
    let end = f.end()?;
    let ended_at = f.arrived_at
        + chrono::Duration::from_std(now.saturating_duration_since(f.arrived)).unwrap_or_default();
    let t = &f.target;
    let mut record = CallRecord::inbound_without_callback(
        call_id.to_owned(),
        Some(TargetRef {
            id: &t.id,
            name: &t.name,
        }),
        &f.inbound_call(None),
        ended_at,
        end,
    );
    if let Some(code) = f.refused_by_contact_center {
        let flag = match code {
            486 | 600 => &mut record.agent_busy,
            408 | 480 | 487 => &mut record.agent_leg_timeout,
            500..=599 => &mut record.agent_leg_error,
            _ => &mut record.agent_leg_rejected,
        };
        *flag = Some(true);
    }
    if let Some(menu) = &f.menu {
        let o = menu.outcome();
        record.next_day_callback_offered = Some(o.next_day_offered);
    }
    Some(RecordEntry {
        organization: t.organization.clone().unwrap_or_default(),
        record,
    })
}

/// The law of an ACK's SDP answer (its first audio format).
fn law_from_answer(ack: &Message) -> Option<Law> {
    sdp_body(ack).map(law_of)
}

/// The G.711 law an SDP's audio stream puts first (PCMU when it names none).
pub(super) fn law_of(sdp: &[u8]) -> Law {
    use crate::media::sdp;
    sdp::parse(sdp)
        .ok()
        .and_then(|s| sdp::offered_audio(&s).ok())
        .and_then(|a| a.audio_codecs().next())
        .and_then(Law::from_codec)
        .unwrap_or(Law::Pcmu)
}

fn reason_phrase(code: u16) -> &'static str {
    match code {
        403 => "Forbidden",
        404 => "Not Found",
        480 => "Temporarily Unavailable",
        486 => "Busy Here",
        503 => "Service Unavailable",
        603 => "Decline",
        _ => "Call Rejected",
    }
}

/// Every call target by id, each with its prompts (every folder loaded once): the inbound
/// flow serves those without `bridge_to`, the dialler all of them. The error names the
/// call target's key and what is wrong with its prompts.
pub fn inbound_targets(
    cfg: &crate::config::Config,
) -> Result<std::collections::HashMap<String, Arc<InboundTarget>>, String> {
    let mut sets: HashMap<std::path::PathBuf, Arc<PromptSet>> = HashMap::new();
    let mut out = std::collections::HashMap::new();
    for (i, t) in cfg.call_targets.iter().enumerate() {
        let dir = t.ivr.prompts.clone();
        let prompts = match sets.get(&dir) {
            Some(p) => p.clone(),
            None => {
                let p = PromptSet::load(&dir)
                    .map(Arc::new)
                    .map_err(|e| format!("call_targets[{i}].prompts: {e}"))?;
                sets.insert(dir, p.clone());
                p
            }
        };
        out.insert(
            t.id.clone(),
            Arc::new(InboundTarget {
                id: t.id.clone(),
                name: t.name.clone(),
                organization: t.organization.clone(),
                callback: t.callback.clone(),
                ivr: t.ivr.clone(),
                prompts,
                dialler: t.dialler.clone(),
                srtp: t.srtp,
            }),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::parse::{parse, Framing};

    fn invite(extra: &str) -> Message {
        let text = format!(
            "INVITE sip:+15550001000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.9:5070;branch=z9hG4bK1\r\n\
             Max-Forwards: 70\r\nFrom: \"A\" <sip:+15557654321@127.0.0.9>;tag=1\r\nTo: <sip:+15550001000@127.0.0.1>\r\n\
             Call-ID: c\r\nCSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        parse(text.as_bytes(), Framing::Datagram).unwrap().msg
    }

    #[test]
    fn the_caller_is_p_asserted_identity_before_from() {
        assert_eq!(caller_number(&invite("")).as_deref(), Some("+15557654321"));
        let pai = "P-Asserted-Identity: \"Real\" <sip:5551112222@carrier.example;user=phone>\r\n";
        assert_eq!(caller_number(&invite(pai)).as_deref(), Some("5551112222"));
        let tel = "P-Asserted-Identity: <tel:+15553334444>\r\n";
        assert_eq!(caller_number(&invite(tel)).as_deref(), Some("+15553334444"));
    }

    #[test]
    fn an_anonymous_caller_has_no_number() {
        let m = invite("").to_bytes();
        let anon = String::from_utf8_lossy(&m).replace(
            "\"A\" <sip:+15557654321@127.0.0.9>",
            "\"Anonymous\" <sip:anonymous@anonymous.invalid>",
        );
        let msg = parse(anon.as_bytes(), Framing::Datagram).unwrap().msg;
        assert_eq!(caller_number(&msg), None);
    }

    #[test]
    fn the_law_answered_is_read_from_the_answer() {
        let sdp = |fmts: &str| {
            format!(
                "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                 m=audio 30000 RTP/AVP {fmts}\r\n"
            )
        };
        let (pcma, pcmu) = (sdp("8 101"), sdp("0"));
        let (pcma, pcmu) = (pcma.as_bytes(), pcmu.as_bytes());
        assert_eq!(law_of(pcma), Law::Pcma);
        assert_eq!(law_of(pcmu), Law::Pcmu);
    }
}
