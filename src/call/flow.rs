//! The bridge flow: INVITE in → INVITE out → provisional and final answers relayed →
//! ACKs → re-INVITE/UPDATE relayed → BYE from either side ends both; CANCEL, ring timeout,
//! failures, session timers and teardown.

use bytes::Bytes;

use super::headers::{caller_failure, contact, copy_pass_through, is_sips, via};
use super::leg::Outgoing;
use super::session_timer::{self as st, UasNegotiation};
use super::*;
use crate::callback::attempt::LegEnd;
use crate::media::srtp::SrtpPolicy;
use crate::media::MediaError;
use crate::sip::dialog::{Dialog, DialogState};
use crate::sip::transaction::{response_for, TransactionEvent, TxId};
use crate::sip::validate::{cseq, max_forwards, ALLOWED_METHODS};
use crate::sip::{name_addr, Method, Name, Peer, Transport};

const SDP: &str = "application/sdp";

/// Times an INVITE is resent with credentials: a trunk still challenging after that is
/// refusing them (a fresh nonce each time would loop forever).
const MAX_AUTH_RETRIES: u8 = 2;

pub(super) fn sdp_body(m: &Message) -> Option<&[u8]> {
    let ct = m.get(Name::ContentType).unwrap_or(SDP);
    (!m.body.is_empty() && ct.to_ascii_lowercase().starts_with(SDP)).then_some(&m.body[..])
}

pub(super) fn set_body(m: &mut Message, body: &Bytes) {
    m.set(Name::ContentType, SDP);
    m.body = body.clone();
}

pub(super) fn media_rejection(req: &Message, e: &MediaError) -> Message {
    let (code, reason) = e.status();
    let mut r = response_for(req, code, reason, None);
    if code == 488 {
        r.push(Name::Warning, format!("305 holdless \"{e}\""));
    }
    r
}

impl CallCore {
    /// A new INVITE (no To tag) for a call target that bridges to `to_uri`, both legs with
    /// the media security `srtp`; `reply_to` is where the caller's responses go.
    pub fn bridge(
        &mut self,
        cx: &mut Ctx,
        tx: ServerTxId,
        invite: &Message,
        reply_to: Peer,
        to_uri: &str,
        srtp: SrtpPolicy,
    ) {
        let call = self
            .admit(invite)
            .and_then(|()| self.sh.bridge(cx, tx, invite, reply_to, to_uri, srtp));
        match call {
            Ok(call) => {
                self.calls.insert(call.key, call);
            }
            Err(r) => Shared::reply(cx, tx, r),
        }
    }

    /// Admission: a new call past `max_calls` gets 503 with Retry-After.
    pub(super) fn admit(&mut self, invite: &Message) -> Result<(), Message> {
        if self.calls.len() < self.sh.cfg.max_calls {
            return Ok(());
        }
        let mut r = response_for(invite, 503, "Service Unavailable", Some(&self.sh.token()));
        r.push(Name::RetryAfter, "5");
        Err(r)
    }

    /// A transaction event from the layer; ignored when it is not one of ours.
    pub fn tx_event(&mut self, cx: &mut Ctx, ev: TransactionEvent) {
        match ev {
            TransactionEvent::Response { id, resp } => {
                let Some(&(key, side, purpose)) = self.sh.client_txs.get(&id) else {
                    return;
                };
                self.with_call(key, |sh, call| {
                    sh.on_response(cx, call, side, purpose, resp)
                });
            }
            TransactionEvent::Timeout { id } => self.client_failed(cx, id, false),
            TransactionEvent::TransportError {
                id: TxId::Client(id),
            } => self.client_failed(cx, id, true),
            TransactionEvent::TransportError {
                id: TxId::Server(id),
            } => {
                if let Some(&(key, _)) = self.sh.server_txs.get(&id) {
                    let reason = EndReason::TransportError(Side::Caller);
                    self.with_call(key, |sh, call| sh.teardown(cx, call, reason));
                }
            }
            TransactionEvent::Cancelled { id } => self.on_cancelled(cx, id),
            TransactionEvent::Terminated {
                id: TxId::Server(id),
            } => {
                self.sh.server_txs.remove(&id);
            }
            TransactionEvent::Terminated {
                id: TxId::Client(id),
            } => {
                self.sh.client_txs.remove(&id);
            }
            TransactionEvent::AckTimeout { .. } => {}
        }
    }

    fn client_failed(&mut self, cx: &mut Ctx, id: ClientTxId, transport: bool) {
        let Some(&(key, side, purpose)) = self.sh.client_txs.get(&id) else {
            return;
        };
        self.with_call(key, |sh, call| {
            sh.client_failed(cx, call, side, purpose, transport)
        });
    }

    fn on_cancelled(&mut self, cx: &mut Ctx, id: ServerTxId) {
        let Some(&(key, purpose)) = self.sh.server_txs.get(&id) else {
            return;
        };
        if purpose != ServerPurpose::Initial {
            return;
        }
        tracing::info!(call = key.0, "caller cancelled");
        self.with_call(key, |sh, call| {
            call.caller.take_invite_tx();
            call.caller.dialog = None;
            sh.teardown(cx, call, EndReason::Cancelled);
        });
    }

    /// An in-dialog request (To tag present) arrived as a new server transaction. Returns
    /// false when it belongs to no call (the endpoint answers 481).
    pub fn in_dialog(
        &mut self,
        cx: &mut Ctx,
        tx: ServerTxId,
        req: &Message,
        reply_to: Peer,
    ) -> bool {
        let Some((key, side)) = self.sh.dialog_of(req) else {
            return false;
        };
        self.with_call(key, |sh, call| {
            sh.in_dialog(cx, call, side, tx, req, reply_to)
        })
        .unwrap_or(false)
    }

    /// The ACK for one of our 2xx (matched by dialog). Returns false when unknown.
    pub fn ack(&mut self, cx: &mut Ctx, ack: &Message) -> bool {
        let Some((key, side)) = self.sh.dialog_of(ack) else {
            return false;
        };
        self.with_call(key, |sh, call| sh.ack(cx, call, side, ack))
            .is_some()
    }

    /// A media timeout from the relay: the call ends with the reason recorded.
    pub fn media_timeout(&mut self, cx: &mut Ctx, media: MediaId, side: Side) {
        if let Some(&key) = self.sh.by_media.get(&media) {
            tracing::info!(call = key.0, ?side, "media timeout");
            let reason = EndReason::MediaTimeout(side);
            self.with_call(key, |sh, call| sh.teardown(cx, call, reason));
        }
    }

    /// Ends every call for a shutdown: BYE to answered legs, CANCEL and 503 before answer.
    pub fn end_all(&mut self, cx: &mut Ctx) {
        let sh = &mut self.sh;
        self.calls.retain(|_, call| {
            sh.teardown(cx, call, EndReason::Shutdown);
            !call.finished
        });
    }
}

impl Shared {
    /// [`CallCore::bridge`] once admitted: the new call, or the response to send instead.
    fn bridge(
        &mut self,
        cx: &mut Ctx,
        tx: ServerTxId,
        invite: &Message,
        reply_to: Peer,
        to_uri: &str,
        srtp: SrtpPolicy,
    ) -> Result<Call, Message> {
        let dest = self
            .destination_for(to_uri)
            .map_err(|()| response_for(invite, 500, "Bad Bridge Destination", None))?;
        let mut caller = self.uas_leg(tx, invite, reply_to)?;
        let media = cx
            .media
            .create(cx.now)
            .map_err(|e| media_rejection(invite, &e))?;
        cx.media.secure(media, Side::Caller, srtp);
        cx.media.secure(media, Side::Callee, srtp);
        let offer = match sdp_body(invite) {
            Some(sdp) => match cx.media.offer(cx.now, media, Side::Caller, sdp) {
                Ok(o) => Some(o),
                Err(e) => {
                    cx.media.release(media);
                    return Err(media_rejection(invite, &e));
                }
            },
            None => None,
        };
        let Some(callee) = self.originate(cx, invite, to_uri, dest, offer) else {
            cx.media.release(media);
            return Err(response_for(invite, 500, "Server Internal Error", None));
        };
        Self::reply(cx, tx, response_for(invite, 100, "Trying", None));
        caller.allows_update = st::allows(invite, "UPDATE");
        let mut call = self.new_call(caller, Some(callee), media, Flow::Bridge);
        tracing::info!(
            call = call.key.0,
            call_id = invite.call_id(),
            to = to_uri,
            "bridging call"
        );
        let ring = cx.now + self.cfg.ring_timeout;
        self.set_timer(&mut call, CallTimer::Ring(Side::Callee), ring);
        Ok(call)
    }

    /// A response to a client transaction of `call`'s, on `side`, for `purpose`.
    fn on_response(
        &mut self,
        cx: &mut Ctx,
        call: &mut Call,
        side: Side,
        purpose: ClientPurpose,
        resp: Message,
    ) {
        match purpose {
            ClientPurpose::Invite => self.on_outbound_response(cx, call, side, resp),
            ClientPurpose::Cancel | ClientPurpose::Info => {}
            ClientPurpose::Reoffer => self.on_reoffer_response(cx, call, side, resp),
            ClientPurpose::Refresh => self.on_refresh_response(cx, call, side, resp),
            ClientPurpose::Bye => {
                let code = resp.status().unwrap_or(0);
                let challenged = code == 401 || code == 407;
                if challenged && self.bye_with_credentials(cx, call, side, &resp) {
                    return;
                }
                if code >= 200 {
                    self.bye_done(cx, call);
                }
            }
        }
    }

    /// A client transaction of `call`'s timed out or its transport failed.
    fn client_failed(
        &mut self,
        cx: &mut Ctx,
        call: &mut Call,
        side: Side,
        purpose: ClientPurpose,
        transport: bool,
    ) {
        let reason = if transport {
            EndReason::TransportError(side)
        } else {
            EndReason::Timeout(side)
        };
        match purpose {
            ClientPurpose::Invite => {
                if let Some(o) = call.leg_mut(side).and_then(Leg::outgoing_mut) {
                    o.tx = None;
                }
                if self.fail_over(cx, call, side) {
                    return;
                }
                if self.dialler_leg_failed(cx, call, side, LegEnd::Error) {
                    return;
                }
                if let Some(tx) = call.caller.take_invite_tx() {
                    let r = self.caller_response(call, 408, "Request Timeout");
                    Self::reply(cx, tx, r);
                }
                self.teardown(cx, call, reason);
            }
            ClientPurpose::Bye => self.bye_done(cx, call),
            ClientPurpose::Cancel | ClientPurpose::Info => {}
            ClientPurpose::Reoffer | ClientPurpose::Refresh => {
                if let Some(l) = call.leg_mut(side) {
                    l.request_out = None;
                }
                let relay = (purpose == ClientPurpose::Reoffer)
                    .then(|| call.reoffer.take())
                    .flatten();
                if let Some(r) = relay {
                    // The far leg never answered: say so to the side that asked.
                    let resp = response_for(&r.request, 408, "Request Timeout", None);
                    Self::reply(cx, r.server_tx, resp);
                }
                let reason = if purpose == ClientPurpose::Refresh {
                    EndReason::SessionExpired(side)
                } else {
                    reason
                };
                self.teardown(cx, call, reason);
            }
        }
    }

    /// A response to the INVITE of the UAC leg on `side`.
    fn on_outbound_response(&mut self, cx: &mut Ctx, call: &mut Call, side: Side, resp: Message) {
        let code = resp.status().unwrap_or(0);
        let Some(callee) = call.leg_mut(side) else {
            return;
        };
        if code < 200 {
            let cancel_wanted = callee.outgoing_mut().is_some_and(|o| {
                o.provisional = true;
                o.cancel_wanted
            });
            if code == 100 {
                // Not relayed (hop by hop), but a provisional response all the same: a
                // CANCEL may go now (RFC 3261 §9.1), or a callee that only ever sends 100
                // would keep its INVITE, and the call, past the ring timeout for good.
                if cancel_wanted {
                    self.send_cancel(cx, call, side);
                }
                return;
            }
            if callee.dialog.is_none() && resp.get(Name::To).and_then(name_addr::tag).is_some() {
                callee.dialog = Dialog::as_uac(&callee.invite, &resp).ok();
            }
            if cancel_wanted {
                return self.send_cancel(cx, call, side);
            }
            return self.relay_provisional(cx, call, side, resp);
        }
        let out = callee.outgoing_mut().map(|o| {
            o.tx = None;
            o.clone()
        });
        if (200..300).contains(&code) {
            return self.on_outbound_answer(cx, call, side, resp);
        }
        let may_retry = out
            .as_ref()
            .is_some_and(|o| !o.retried_422 && !o.cancel_wanted);
        if code == 422 && may_retry && call.phase == Phase::Proceeding {
            return self.retry_422(cx, call, side, &resp);
        }
        let cancelled = out.as_ref().is_none_or(|o| o.cancel_wanted);
        if (code == 401 || code == 407)
            && !cancelled
            && self.answer_challenge(cx, call, side, &resp)
        {
            return;
        }
        if code == 503 && !cancelled && self.fail_over(cx, call, side) {
            return;
        }
        if call.phase == Phase::Proceeding {
            if let Some(tx) = call.caller.take_invite_tx() {
                let reason = match &resp.start {
                    crate::sip::StartLine::Response { reason, .. } => reason.clone(),
                    _ => String::new(),
                };
                let (c, r) = caller_failure(code, &reason);
                let mut out = self.caller_response(call, c, &r);
                copy_pass_through(&self.cfg, &resp, &mut out);
                Self::reply(cx, tx, out);
            }
        }
        if self.held_caller_refused(cx, call, code)
            || self.dialler_leg_failed(cx, call, side, LegEnd::of_status(code))
        {
            return;
        }
        self.teardown(cx, call, EndReason::Rejected(code));
    }

    fn relay_provisional(&mut self, cx: &mut Ctx, call: &mut Call, side: Side, resp: Message) {
        let code = resp.status().unwrap_or(180);
        let (Some(tx), Phase::Proceeding) = (call.caller.invite_tx(), call.phase) else {
            return;
        };
        let reason = if code == 183 {
            "Session Progress"
        } else {
            "Ringing"
        };
        let mut out = self.caller_response(call, if code == 183 { 183 } else { 180 }, reason);
        copy_pass_through(&self.cfg, &resp, &mut out);
        if let Some(sdp) = sdp_body(&resp) {
            if call.leg(side).is_some_and(|l| l.sdp_sent.is_some()) {
                match cx.media.answer(cx.now, call.media, side, sdp) {
                    Ok(answer) => {
                        set_body(&mut out, &answer);
                        call.caller.sdp_sent = Some(answer);
                    }
                    Err(e) => tracing::debug!(error = %e, "early media answer not usable"),
                }
            }
        }
        Self::reply(cx, tx, out);
    }

    fn retry_422(&mut self, cx: &mut Ctx, call: &mut Call, side: Side, resp: &Message) {
        let min = st::min_se(resp)
            .unwrap_or(self.cfg.session_expires)
            .max(self.cfg.min_se);
        let sent = self.resend_invite(cx, call, side, None, |inv, o| {
            inv.headers.retain(|h| {
                !h.name.eq_ignore_ascii_case(st::SESSION_EXPIRES)
                    && !h.name.eq_ignore_ascii_case(st::MIN_SE)
            });
            inv.push_other(st::SESSION_EXPIRES, min.to_string());
            inv.push_other(st::MIN_SE, min.to_string());
            o.retried_422 = true;
        });
        if !sent {
            self.teardown(cx, call, EndReason::Rejected(422));
        }
    }

    /// Sends the INVITE of the UAC leg on `side` again as a new transaction (CSeq + 1, a
    /// new branch), changed by `change`, to `to` (another address of the destination) or
    /// where it went. Credentials the leg holds are answered on it. False when it could
    /// not be sent.
    pub(super) fn resend_invite(
        &mut self,
        cx: &mut Ctx,
        call: &mut Call,
        side: Side,
        to: Option<Peer>,
        change: impl FnOnce(&mut Message, &mut Outgoing),
    ) -> bool {
        let branch = self.branch();
        let cnonce = self.rng.u64(..);
        let key = call.key;
        let Some(leg) = call.leg_mut(side) else {
            return false;
        };
        let dest = to.unwrap_or(leg.peer);
        let local = self.local_for(dest.transport, None);
        let Some(mut out) = leg.outgoing().cloned() else {
            return false;
        };
        let mut inv = leg.invite.clone();
        inv.set(Name::Via, via(local, dest.transport, &branch));
        let n = cseq(&inv).map(|(n, _)| n).unwrap_or(1);
        inv.set(Name::CSeq, format!("{} INVITE", n + 1));
        change(&mut inv, &mut out);
        if let Some(a) = leg.auth.as_mut().filter(|a| !a.session.is_empty()) {
            let cnonce = format!("{cnonce:016x}");
            if let Err(e) = a.session.apply(&mut inv, &a.credentials, &cnonce) {
                tracing::warn!(call = key.0, error = %e, "credentials not applied");
            }
        }
        match cx.tx.send_request(cx.now, inv.clone(), dest) {
            Ok(id) => {
                out.tx = Some(id);
                out.provisional = false;
                leg.invite = inv;
                leg.peer = dest;
                leg.role = leg::Role::Uac(out);
                leg.dialog = None;
                self.client_txs
                    .insert(id, (key, side, ClientPurpose::Invite));
                true
            }
            Err(e) => {
                tracing::warn!(call = key.0, error = %e, "INVITE not resent");
                false
            }
        }
    }

    /// A 401/407 to a UAC leg's INVITE: answered once per challenge with the leg's
    /// credentials (at most [`MAX_AUTH_RETRIES`] times). False when the leg has none, the
    /// challenge cannot be answered or the credentials were refused.
    fn answer_challenge(
        &mut self,
        cx: &mut Ctx,
        call: &mut Call,
        side: Side,
        resp: &Message,
    ) -> bool {
        let key = call.key;
        let Some(leg) = call.leg_mut(side) else {
            return false;
        };
        let retries = leg.outgoing().map_or(u8::MAX, |o| o.auth_retries);
        let Some(a) = leg.auth.as_mut() else {
            return false;
        };
        if retries >= MAX_AUTH_RETRIES {
            tracing::warn!(call = key.0, "credentials refused by the trunk");
            return false;
        }
        if let Err(e) = a.session.on_challenge(resp, &a.credentials) {
            tracing::warn!(call = key.0, error = %e, "challenge not answered");
            return false;
        }
        self.resend_invite(cx, call, side, None, |_, o| o.auth_retries += 1)
    }

    /// A 503 or an unreachable address: the INVITE goes to the destination's next
    /// address (RFC 3263 §4.3) when there is one. False when none is left.
    fn fail_over(&mut self, cx: &mut Ctx, call: &mut Call, side: Side) -> bool {
        let key = call.key;
        let Some(leg) = call.leg_mut(side) else {
            return false;
        };
        let Some(o) = leg.outgoing_mut().filter(|o| !o.cancel_wanted) else {
            return false;
        };
        if o.alternates.is_empty() {
            return false;
        }
        let next = o.alternates.remove(0);
        tracing::info!(call = key.0, to = %next.addr, "trying the destination's next address");
        self.resend_invite(cx, call, side, Some(next), |_, _| {})
    }

    fn on_outbound_answer(&mut self, cx: &mut Ctx, call: &mut Call, side: Side, resp: Message) {
        let Some(callee) = call.leg_mut(side) else {
            return;
        };
        let tag = resp
            .get(Name::To)
            .and_then(name_addr::tag)
            .unwrap_or_default()
            .to_owned();
        let same = callee.dialog.as_ref().is_some_and(|d| d.remote_tag == tag);
        let already = same
            && callee
                .dialog
                .as_ref()
                .is_some_and(|d| d.state == DialogState::Confirmed);
        match callee.dialog.as_mut() {
            Some(d) if same => d.confirm(&resp),
            _ => callee.dialog = Dialog::as_uac(&callee.invite, &resp).ok(),
        }
        let invite_cseq = cseq(&callee.invite).map(|(n, _)| n).unwrap_or(1);
        let delayed_offer = callee.sdp_sent.is_none();
        let cancel_wanted = callee.outgoing().is_some_and(|o| o.cancel_wanted);
        if !delayed_offer || already {
            self.send_ack(cx, call, side, invite_cseq, None);
        }
        if already {
            return;
        }
        // A caller holdless answered itself (kept holding) waits in Answered; any other
        // caller is still Proceeding until this answer.
        let held = call.answered.is_some();
        let expected = if held {
            call.phase == Phase::Answered
        } else {
            call.phase == Phase::Proceeding
        };
        if cancel_wanted || !expected {
            if delayed_offer {
                self.send_ack(cx, call, side, invite_cseq, None);
            }
            return self.send_bye(cx, call, side);
        }
        self.clear_timer(call, CallTimer::Ring(side));
        let Some(callee) = call.leg_mut(side) else {
            return;
        };
        callee.allows_update = st::allows(&resp, "UPDATE");
        // What our INVITE last asked for: raised by a 422 retry above the configured value.
        let asked =
            st::session_expires(&callee.invite).map_or(self.cfg.session_expires, |(se, _)| se);
        callee.session = Some(st::from_uac_answer(&resp, asked));
        if call.is_dialler() {
            return self.dialler_answered(cx, call, side, &resp);
        }
        if held {
            return self.held_caller_joined(cx, call, &resp);
        }
        let body = sdp_body(&resp).unwrap_or_default().to_vec();
        let to_caller = if delayed_offer {
            cx.media.offer(cx.now, call.media, side, &body)
        } else {
            cx.media.answer(cx.now, call.media, side, &body)
        };
        let to_caller = match to_caller {
            Ok(b) => b,
            Err(e) => {
                let (code, reason) = e.status();
                if let Some(tx) = call.caller.take_invite_tx() {
                    let r = self.caller_response(call, code, reason);
                    Self::reply(cx, tx, r);
                }
                if delayed_offer {
                    self.send_ack(cx, call, side, invite_cseq, None);
                }
                return self.teardown(cx, call, EndReason::Media(code));
            }
        };
        self.answer_caller(cx, call, &resp, to_caller, delayed_offer);
    }

    /// A BYE the far end challenged: sent once more with the leg's credentials (the
    /// BYE still outstanding). False when the leg has none or already answered one.
    fn bye_with_credentials(
        &mut self,
        cx: &mut Ctx,
        call: &mut Call,
        side: Side,
        resp: &Message,
    ) -> bool {
        let key = call.key;
        let Some(a) = call.leg_mut(side).and_then(|l| l.auth.as_mut()) else {
            return false;
        };
        let Some(mut bye) = a.bye.take() else {
            return false;
        };
        if let Err(e) = a.session.on_challenge(resp, &a.credentials) {
            tracing::warn!(call = key.0, error = %e, "BYE challenge not answered");
            return false;
        }
        let n = cseq(&bye).map(|(n, _)| n).unwrap_or(1);
        bye.set(Name::CSeq, format!("{} BYE", n + 1));
        self.send_in_dialog(cx, call, side, bye, ClientPurpose::Bye)
            .is_some()
    }

    /// An in-dialog request on `side` of `call`. False when that leg has no dialog.
    fn in_dialog(
        &mut self,
        cx: &mut Ctx,
        call: &mut Call,
        side: Side,
        tx: ServerTxId,
        req: &Message,
        reply_to: Peer,
    ) -> bool {
        let Some(d) = call.leg_mut(side).and_then(|l| l.dialog.as_mut()) else {
            return false;
        };
        if let Err(e) = d.accept_remote_cseq(req) {
            Self::reply(
                cx,
                tx,
                response_for(req, 500, &format!("Server Internal Error: {e}"), None),
            );
            return true;
        }
        if side == Side::Caller && reply_to.transport.is_reliable() {
            call.caller.peer = reply_to;
        }
        match req.method() {
            Some(Method::Bye) => self.on_bye(cx, call, side, tx, req),
            Some(Method::Invite) | Some(Method::Update) => {
                self.on_reoffer(cx, call, side, tx, req, reply_to)
            }
            Some(Method::Info) => self.on_info(cx, call, side, tx, req),
            _ => Self::reply(cx, tx, response_for(req, 405, "Method Not Allowed", None)),
        }
        true
    }

    fn dialog_of(&self, m: &Message) -> Option<(CallKey, Side)> {
        let call_id = m.call_id()?.to_owned();
        let tag = m.get(Name::To).and_then(name_addr::tag)?.to_owned();
        self.dialogs.get(&(call_id, tag)).copied()
    }

    fn on_bye(&mut self, cx: &mut Ctx, call: &mut Call, side: Side, tx: ServerTxId, req: &Message) {
        Self::reply(cx, tx, response_for(req, 200, "OK", None));
        tracing::debug!(call = call.key.0, ?side, "BYE");
        if let Some(leg) = call.leg_mut(side) {
            leg.dialog = None;
            leg.pending_2xx = None;
            // The side hung up itself: the BYE owed once it ACKed is owed no more (left
            // set, the call waited for an ACK whose timer had just been cleared, for good).
            leg.bye_after_ack = false;
        }
        self.clear_timer(call, CallTimer::Retransmit2xx(side));
        self.clear_timer(call, CallTimer::AckWait(side));
        self.teardown(cx, call, EndReason::HungUp(side));
    }

    /// The ACK on `side` of `call` for one of our 2xx.
    fn ack(&mut self, cx: &mut Ctx, call: &mut Call, side: Side, ack: &Message) {
        let n = cseq(ack).map(|(n, _)| n).unwrap_or(0);
        let acked = call
            .leg(side)
            .and_then(|l| l.pending_2xx.as_ref())
            .is_some_and(|p| p.cseq == n);
        if acked {
            if let Some(l) = call.leg_mut(side) {
                l.pending_2xx = None;
            }
            self.clear_timer(call, CallTimer::Retransmit2xx(side));
            self.clear_timer(call, CallTimer::AckWait(side));
        }
        if side == Side::Caller && matches!(call.flow, Flow::Inbound(_)) && call.callee.is_none() {
            self.inbound_ack(cx, call, ack);
            if call.finished {
                return;
            }
        }
        if side == Side::Caller && call.ack_waits_for_caller {
            call.ack_waits_for_caller = false;
            let invite_cseq = call
                .callee
                .as_ref()
                .and_then(|l| cseq(&l.invite).ok().map(|(n, _)| n))
                .unwrap_or(1);
            let answer =
                sdp_body(ack).map(|b| cx.media.answer(cx.now, call.media, Side::Caller, b));
            let body = match answer {
                Some(Ok(b)) => Some(b),
                _ => None,
            };
            self.send_ack(cx, call, Side::Callee, invite_cseq, body);
        }
        if call
            .leg_mut(side)
            .is_some_and(|l| std::mem::take(&mut l.bye_after_ack))
        {
            self.send_bye(cx, call, side);
        }
    }

    /// Fires one call timer.
    pub(super) fn fire(&mut self, cx: &mut Ctx, call: &mut Call, timer: CallTimer) {
        match timer {
            CallTimer::Ring(side) => {
                let ringing = call.leg(side).is_some_and(|l| l.invite_out_tx().is_some());
                if call.phase == Phase::Ending || !ringing {
                    return;
                }
                Self::dialler_ring_timeout(call, side);
                if call.answered.is_some() {
                    // A caller holdless answered itself waits for the contact center: cancel
                    // that leg; its 487 leads to the apology ([`Shared::held_caller_refused`]).
                    tracing::info!(call = call.key.0, "contact center did not answer in time");
                    if let Some(o) = call.leg_mut(side).and_then(Leg::outgoing_mut) {
                        o.cancel_wanted = true;
                    }
                    return self.send_cancel(cx, call, side);
                }
                if let Some(tx) = call.caller.take_invite_tx() {
                    let r = self.caller_response(call, 480, "Temporarily Unavailable");
                    Self::reply(cx, tx, r);
                }
                tracing::info!(call = call.key.0, "no answer within the ring timeout");
                self.teardown(cx, call, EndReason::NoAnswer);
            }
            CallTimer::Retransmit2xx(side) => {
                let Some(p) = call.leg_mut(side).and_then(|l| l.pending_2xx.as_mut()) else {
                    return;
                };
                cx.tx.send_stateless(p.msg.clone(), p.to);
                p.interval = (p.interval * 2).min(self.timers.t2);
                let next = cx.now + p.interval;
                self.set_timer(call, CallTimer::Retransmit2xx(side), next);
            }
            CallTimer::AckWait(side) => {
                self.clear_timer(call, CallTimer::Retransmit2xx(side));
                let bye = call.leg_mut(side).is_some_and(|leg| {
                    leg.pending_2xx = None;
                    std::mem::take(&mut leg.bye_after_ack)
                });
                if bye {
                    self.send_bye(cx, call, side);
                }
                self.teardown(cx, call, EndReason::NoAck(side));
            }
            CallTimer::Refresh(side) => self.send_refresh(cx, call, side),
            CallTimer::Expire(side) => self.teardown(cx, call, EndReason::SessionExpired(side)),
            CallTimer::GlareRetry(side) => self.retry_reoffer(cx, call, side),
            CallTimer::Menu => self.menu_timeout(cx, call),
        }
    }

    pub(super) fn local_for(&self, transport: Transport, hint: Option<SocketAddr>) -> SocketAddr {
        let configured = match transport {
            Transport::Udp => self.local.udp.or(self.local.tcp),
            Transport::Tcp => self.local.tcp.or(self.local.udp),
            Transport::Tls => self.local.tls.or(self.local.tcp).or(self.local.udp),
        };
        hint.or(configured)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5060)))
    }

    pub(super) fn reply(cx: &mut Ctx, tx: ServerTxId, resp: Message) {
        if let Err(e) = cx.tx.respond(cx.now, tx, resp) {
            tracing::debug!(error = %e, "response not sent");
        }
    }

    /// Where an outbound INVITE to `to_uri` goes: the outbound trunk when one is set, else
    /// the URI itself.
    fn destination_for(&self, to_uri: &str) -> Result<Peer, ()> {
        let hop = self.cfg.outbound_trunk.as_deref().unwrap_or(to_uri);
        route::destination(hop).map_err(|e| {
            tracing::warn!(to = to_uri, error = %e, "outbound destination unusable");
        })
    }

    /// The UAS leg for an INVITE holdless will answer: its session timer negotiated (422
    /// when the caller's interval is too small) and its dialog made with our tag. `Err`
    /// is the response to send instead.
    pub(super) fn uas_leg(
        &mut self,
        tx: ServerTxId,
        invite: &Message,
        reply_to: Peer,
    ) -> Result<Leg, Message> {
        let session = match st::negotiate_uas(invite, self.cfg.min_se, self.cfg.session_expires) {
            UasNegotiation::TooSmall(min) => {
                let mut r = response_for(
                    invite,
                    422,
                    "Session Interval Too Small",
                    Some(&self.token()),
                );
                r.push_other(st::MIN_SE, min.to_string());
                return Err(r);
            }
            UasNegotiation::Use(t, _) => Some(t),
            UasNegotiation::None => None,
        };
        let tag = self.token();
        let local = contact(
            self.local_for(reply_to.transport, reply_to.local),
            reply_to.transport,
            is_sips(invite),
        );
        let dialog = Dialog::as_uas(invite, &tag, &local)
            .map_err(|e| response_for(invite, 400, &format!("Bad Request: {e}"), None))?;
        let mut leg = Leg::uas(invite.clone(), tx, reply_to);
        leg.session = session;
        leg.dialog = Some(dialog);
        Ok(leg)
    }

    /// Places a UAC leg through the outbound trunk when one is set: an INVITE to `to_uri`
    /// through `dest` carrying `inbound`'s identity and pass-through headers and our
    /// `offer` (none: a delayed offer). `None` when it could not be sent.
    fn originate(
        &mut self,
        cx: &mut Ctx,
        inbound: &Message,
        to_uri: &str,
        dest: Peer,
        offer: Option<Bytes>,
    ) -> Option<Leg> {
        self.originate_leg(cx, inbound, to_uri, dest, offer, true)
    }

    /// The same straight to `dest`, never through the outbound trunk (the contact center).
    pub(super) fn originate_direct(
        &mut self,
        cx: &mut Ctx,
        inbound: &Message,
        to_uri: &str,
        dest: Peer,
        offer: Option<Bytes>,
    ) -> Option<Leg> {
        self.originate_leg(cx, inbound, to_uri, dest, offer, false)
    }

    fn originate_leg(
        &mut self,
        cx: &mut Ctx,
        inbound: &Message,
        to_uri: &str,
        dest: Peer,
        offer: Option<Bytes>,
        via_trunk: bool,
    ) -> Option<Leg> {
        let mut out = self.outbound_invite(
            inbound,
            to_uri,
            dest,
            offer.as_ref(),
            self.cfg.session_expires,
        );
        if let Some(trunk) = self.cfg.outbound_trunk.as_ref().filter(|_| via_trunk) {
            let uri = name_addr::uri(trunk);
            let route = if uri.contains(";lr") {
                format!("<{uri}>")
            } else {
                format!("<{uri};lr>")
            };
            out.headers.insert(
                1,
                crate::sip::Header {
                    name: "Route".into(),
                    value: route,
                },
            );
        }
        let tx = match cx.tx.send_request(cx.now, out.clone(), dest) {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(error = %e, "outbound INVITE not sent");
                return None;
            }
        };
        let mut leg = Leg::uac(out, tx, dest);
        leg.sdp_sent = offer;
        Some(leg)
    }

    /// Builds the outbound leg's INVITE: new Call-ID, tags, Via and Contact; the caller's
    /// identity and pass-through headers; our offer.
    fn outbound_invite(
        &mut self,
        inbound: &Message,
        to_uri: &str,
        dest: Peer,
        offer: Option<&Bytes>,
        se: u32,
    ) -> Message {
        let local = self.local_for(dest.transport, None);
        let mut m = Message::request(Method::Invite, to_uri);
        m.push(Name::Via, via(local, dest.transport, &self.branch()));
        let mf = max_forwards(inbound)
            .ok()
            .flatten()
            .map(|v| v.saturating_sub(1))
            .unwrap_or(70)
            .min(70);
        m.push(Name::MaxForwards, mf.to_string());
        let from = inbound
            .get(Name::From)
            .map(name_addr::without_tag)
            .unwrap_or_else(|| "<sip:anonymous@anonymous.invalid>".into());
        m.push(Name::From, name_addr::with_tag(&from, &self.token()));
        m.push(Name::To, format!("<{to_uri}>"));
        let call_id = self.new_call_id();
        m.push(Name::CallId, call_id);
        m.push(Name::CSeq, "1 INVITE");
        m.push(Name::Contact, contact(local, dest.transport, is_sips(&m)));
        m.push(Name::Allow, ALLOWED_METHODS);
        m.push(Name::Supported, "timer");
        m.push_other(st::SESSION_EXPIRES, se.to_string());
        m.push_other(st::MIN_SE, self.cfg.min_se.to_string());
        copy_pass_through(&self.cfg, inbound, &mut m);
        if let Some(o) = offer {
            set_body(&mut m, o);
        }
        m
    }

    /// A response to the caller's INVITE, with our tag and Contact.
    pub(super) fn caller_response(&self, call: &Call, code: u16, reason: &str) -> Message {
        let tag = call.caller.dialog.as_ref().map(|d| d.local_tag.clone());
        let mut r = response_for(&call.caller.invite, code, reason, tag.as_deref());
        if (101..300).contains(&code) {
            let p = call.caller.peer;
            r.push(
                Name::Contact,
                contact(
                    self.local_for(p.transport, p.local),
                    p.transport,
                    is_sips(&call.caller.invite),
                ),
            );
        }
        r
    }

    /// Files a new call under a fresh key: its dialogs, INVITE transactions and media
    /// indexed. The core keeps it from now on.
    pub(super) fn new_call(
        &mut self,
        caller: Leg,
        callee: Option<Leg>,
        media: MediaId,
        flow: Flow,
    ) -> Call {
        let key = CallKey(self.next_call);
        self.next_call += 1;
        let callee_key = callee.as_ref().map(dialog_key).unwrap_or_default();
        let dialog_keys = [dialog_key(&caller), callee_key];
        self.dialogs
            .insert(dialog_keys[0].clone(), (key, Side::Caller));
        if let Some(callee) = &callee {
            self.dialogs
                .insert(dialog_keys[1].clone(), (key, Side::Callee));
            if let Some(tx) = callee.invite_out_tx() {
                self.client_txs
                    .insert(tx, (key, Side::Callee, ClientPurpose::Invite));
            }
        }
        if let Some(tx) = caller.invite_tx() {
            self.server_txs.insert(tx, (key, ServerPurpose::Initial));
        }
        if let Some(tx) = caller.invite_out_tx() {
            self.client_txs
                .insert(tx, (key, Side::Caller, ClientPurpose::Invite));
        }
        self.by_media.insert(media, key);
        Call {
            key,
            finished: false,
            phase: Phase::Proceeding,
            flow,
            caller,
            callee,
            ack_waits_for_caller: false,
            media,
            reoffer: None,
            outstanding: 0,
            reason: None,
            answered: None,
            timer_keys: HashMap::new(),
            dialog_keys,
        }
    }

    /// Files a second leg a flow placed under its call: its dialog and its INVITE's
    /// transaction found from now on (the flow stores the leg itself).
    pub(super) fn index_second_leg(&mut self, call: &mut Call, leg: &Leg) {
        let dialog_key = dialog_key(leg);
        self.dialogs
            .insert(dialog_key.clone(), (call.key, Side::Callee));
        if let Some(tx) = leg.invite_out_tx() {
            self.client_txs
                .insert(tx, (call.key, Side::Callee, ClientPurpose::Invite));
        }
        call.dialog_keys[1] = dialog_key;
    }

    pub(super) fn answer_caller(
        &mut self,
        cx: &mut Ctx,
        call: &mut Call,
        resp: &Message,
        sdp: Bytes,
        ack_waits_for_caller: bool,
    ) {
        self.send_caller_200(cx, call, sdp, Some(resp));
        self.restart_session(cx, call, Side::Callee);
        self.restart_session(cx, call, Side::Caller);
        call.ack_waits_for_caller = ack_waits_for_caller;
        tracing::debug!(call = call.key.0, "call answered and bridged");
        self.events
            .push_back(CallEvent::Answered { call: call.key });
    }

    /// Answers the caller's INVITE with 200 and `sdp` (the far leg's headers passed through
    /// from `pass_through` when there is one), retransmitted until its ACK; the call is
    /// answered from now. Session timers are the caller's to restart.
    pub(super) fn send_caller_200(
        &mut self,
        cx: &mut Ctx,
        call: &mut Call,
        sdp: Bytes,
        pass_through: Option<&Message>,
    ) {
        let mut ok = self.caller_response(call, 200, "OK");
        ok.push(Name::Allow, ALLOWED_METHODS);
        ok.push(Name::Supported, "timer");
        if let UasNegotiation::Use(_, headers) = st::negotiate_uas(
            &call.caller.invite,
            self.cfg.min_se,
            self.cfg.session_expires,
        ) {
            for (n, v) in headers {
                ok.push_other(n, v);
            }
        }
        if let Some(resp) = pass_through {
            copy_pass_through(&self.cfg, resp, &mut ok);
        }
        set_body(&mut ok, &sdp);
        let initial_cseq = cseq(&call.caller.invite).map(|(n, _)| n).unwrap_or(0);
        let to = call.caller.peer;
        call.caller.sdp_sent = Some(sdp);
        call.phase = Phase::Answered;
        call.answered = Some(cx.now);
        let tx = call.caller.take_invite_tx();
        call.caller.pending_2xx = Some(Pending2xx {
            msg: ok.clone(),
            to,
            interval: self.timers.t1,
            cseq: initial_cseq,
        });
        if let Some(tx) = tx {
            Self::reply(cx, tx, ok);
        }
        self.arm_2xx(cx, call, Side::Caller, to);
    }

    pub(super) fn arm_2xx(&mut self, cx: &mut Ctx, call: &mut Call, side: Side, to: Peer) {
        if !to.transport.is_reliable() {
            self.set_timer(
                call,
                CallTimer::Retransmit2xx(side),
                cx.now + self.timers.t1,
            );
        }
        self.set_timer(call, CallTimer::AckWait(side), cx.now + self.timers.t1 * 64);
    }

    /// Sends the ACK for a 2xx on `side` (with an SDP answer in the delayed-offer case).
    pub(super) fn send_ack(
        &mut self,
        cx: &mut Ctx,
        call: &mut Call,
        side: Side,
        invite_cseq: u32,
        body: Option<Bytes>,
    ) {
        let branch = self.branch();
        let Some(leg) = call.leg_mut(side) else {
            return;
        };
        let Some(d) = leg.dialog.as_mut() else { return };
        let mut ack = d.request(Method::Ack, Some(invite_cseq));
        let to = leg.next_hop();
        ack.headers.insert(
            0,
            crate::sip::Header {
                name: "Via".into(),
                value: via(
                    self.local_for(to.transport, to.local),
                    to.transport,
                    &branch,
                ),
            },
        );
        if let Some(b) = body {
            set_body(&mut ack, &b);
        }
        cx.tx.send_stateless(ack, to);
    }

    /// Sends an in-dialog request on `side` through a client transaction.
    pub(super) fn send_in_dialog(
        &mut self,
        cx: &mut Ctx,
        call: &mut Call,
        side: Side,
        mut req: Message,
        purpose: ClientPurpose,
    ) -> Option<ClientTxId> {
        let branch = self.branch();
        let cnonce = self.rng.u64(..);
        let key = call.key;
        let leg = call.leg_mut(side)?;
        let to = leg.next_hop();
        // A trunk that challenged the INVITE gets credentials on the dialog's requests too
        // (the cnonce is only written out for them: no allocation on other requests).
        if let Some(a) = leg.auth.as_mut().filter(|a| !a.session.is_empty()) {
            let cnonce = format!("{cnonce:016x}");
            if let Err(e) = a.session.apply(&mut req, &a.credentials, &cnonce) {
                tracing::warn!(call = key.0, error = %e, "credentials not applied");
            }
        }
        let v = via(
            self.local_for(to.transport, to.local),
            to.transport,
            &branch,
        );
        req.headers.insert(
            0,
            crate::sip::Header {
                name: "Via".into(),
                value: v,
            },
        );
        match cx.tx.send_request(cx.now, req, to) {
            Ok(id) => {
                self.client_txs.insert(id, (key, side, purpose));
                Some(id)
            }
            Err(e) => {
                tracing::warn!(error = %e, "in-dialog request not sent");
                None
            }
        }
    }

    pub(super) fn send_bye(&mut self, cx: &mut Ctx, call: &mut Call, side: Side) {
        if call.finished {
            return;
        }
        call.phase = Phase::Ending;
        let Some(d) = call.leg_mut(side).and_then(|l| l.dialog.as_mut()) else {
            return self.maybe_finish(cx, call);
        };
        let bye = d.request(Method::Bye, None);
        if let Some(leg) = call.leg_mut(side) {
            leg.dialog = None;
            if let Some(a) = leg.auth.as_mut() {
                a.bye = Some(bye.clone());
            }
        }
        if self
            .send_in_dialog(cx, call, side, bye, ClientPurpose::Bye)
            .is_some()
        {
            call.outstanding += 1;
        }
        self.maybe_finish(cx, call);
    }

    pub(super) fn bye_done(&mut self, cx: &mut Ctx, call: &mut Call) {
        call.outstanding = call.outstanding.saturating_sub(1);
        self.maybe_finish(cx, call);
    }

    /// CANCELs the INVITE of the UAC leg on `side` once it had a provisional response.
    pub(super) fn send_cancel(&mut self, cx: &mut Ctx, call: &mut Call, side: Side) {
        let Some(callee) = call.leg(side) else {
            return;
        };
        let Some(Outgoing {
            tx: Some(out),
            provisional: true,
            ..
        }) = callee.outgoing()
        else {
            return;
        };
        let (out, to) = (*out, callee.peer);
        if let Some(cancel) = cx.tx.cancel_request(out) {
            if let Ok(id) = cx.tx.send_request(cx.now, cancel, to) {
                self.client_txs
                    .insert(id, (call.key, side, ClientPurpose::Cancel));
            }
        }
    }

    /// CANCELs the re-INVITE of ours in progress on `side` of an ending call once it had a
    /// provisional response: an INVITE client transaction in Proceeding waits for its
    /// final response for ever (RFC 3261 §17.1.1.2), and the call waits for it.
    pub(super) fn cancel_request_out(&mut self, cx: &mut Ctx, call: &Call, side: Side) {
        let out = call
            .leg(side)
            .filter(|l| l.request_out_provisional)
            .and_then(|l| l.request_out);
        let Some(out) = out.filter(|_| call.phase == Phase::Ending) else {
            return;
        };
        let (Some(cancel), Some(to)) = (cx.tx.cancel_request(out), cx.tx.destination(out)) else {
            return;
        };
        if let Ok(id) = cx.tx.send_request(cx.now, cancel, to) {
            self.client_txs
                .insert(id, (call.key, side, ClientPurpose::Cancel));
        }
    }

    /// Ends a call: answers what is pending, CANCELs or BYEs the legs still up.
    pub(super) fn teardown(&mut self, cx: &mut Ctx, call: &mut Call, reason: EndReason) {
        if call.finished {
            return;
        }
        let shutting_down = reason == EndReason::Shutdown;
        if call.phase != Phase::Ending {
            self.inbound_ending(cx, call);
        }
        call.reason.get_or_insert(reason);
        call.phase = Phase::Ending;
        for t in [
            CallTimer::Ring(Side::Caller),
            CallTimer::Ring(Side::Callee),
            CallTimer::Refresh(Side::Caller),
            CallTimer::Refresh(Side::Callee),
            CallTimer::Expire(Side::Caller),
            CallTimer::Expire(Side::Callee),
        ] {
            self.clear_timer(call, t);
        }
        if let Some(tx) = call.caller.take_invite_tx() {
            let (code, text) = if shutting_down {
                (503, "Service Unavailable")
            } else {
                (500, "Server Internal Error")
            };
            let r = self.caller_response(call, code, text);
            Self::reply(cx, tx, r);
        }
        if let Some(relay) = call.reoffer.take() {
            let (code, text) = if relay.is_invite {
                (487, "Request Terminated")
            } else {
                (481, "Call/Transaction Does Not Exist")
            };
            Self::reply(
                cx,
                relay.server_tx,
                response_for(&relay.request, code, text, None),
            );
        }
        for side in [Side::Caller, Side::Callee] {
            if let Some(o) = call
                .leg_mut(side)
                .and_then(Leg::outgoing_mut)
                .filter(|o| o.tx.is_some())
            {
                o.cancel_wanted = true;
                self.send_cancel(cx, call, side);
            }
        }
        for side in [Side::Caller, Side::Callee] {
            self.cancel_request_out(cx, call, side);
        }
        for side in [Side::Caller, Side::Callee] {
            if call.finished {
                return;
            }
            let up = call
                .leg(side)
                .and_then(|l| l.dialog.as_ref())
                .is_some_and(|d| d.state == DialogState::Confirmed);
            // A UAS leg is up once we answered it; a UAC leg once its INVITE had its answer.
            let answered_leg = match call.leg(side).map(|l| &l.role) {
                Some(leg::Role::Uas { .. }) => call.answered.is_some(),
                Some(leg::Role::Uac(o)) => o.tx.is_none(),
                None => false,
            };
            if up && answered_leg {
                if let Some(l) = call.leg_mut(side).filter(|l| l.pending_2xx.is_some()) {
                    // §15: no BYE before the ACK; the AckWait timer bounds the wait.
                    l.bye_after_ack = true;
                    continue;
                }
                self.send_bye(cx, call, side);
            }
        }
        self.maybe_finish(cx, call);
    }

    /// Releases a call once nothing of it is in flight: media released, tables cleaned,
    /// its end reported. The core drops it after the input ([`Call::finished`]).
    pub(super) fn maybe_finish(&mut self, cx: &mut Ctx, call: &mut Call) {
        if call.finished {
            return;
        }
        let legs = std::iter::once(&call.caller).chain(call.callee.as_ref());
        let busy = call.phase != Phase::Ending
            || call.outstanding > 0
            || legs
                .into_iter()
                .any(|l| l.invite_out_tx().is_some() || l.request_out.is_some() || l.bye_after_ack)
            || call.reoffer.is_some();
        if busy {
            return;
        }
        call.finished = true;
        for (_, k) in call.timer_keys.drain() {
            self.deadlines.remove(&k);
        }
        for k in &call.dialog_keys {
            self.dialogs.remove(k);
        }
        cx.media.release(call.media);
        self.by_media.remove(&call.media);
        match &call.flow {
            Flow::Inbound(f) => {
                let call_id = call.caller.invite.call_id().unwrap_or_default();
                if let Some(entry) = super::inbound::record_of(f, call_id, cx.now) {
                    self.events.push_back(CallEvent::Record(Box::new(entry)));
                }
            }
            Flow::Dialler(f) => self.dialler_finished(f, call.reason.as_ref(), cx.now),
            Flow::Bridge => {}
        }
        let reason = call
            .reason
            .take()
            .unwrap_or(EndReason::HungUp(Side::Caller));
        tracing::info!(call = call.key.0, ?reason, "call ended");
        self.events.push_back(CallEvent::Ended {
            call: call.key,
            reason,
            answered: call.answered,
        });
    }
}

/// The `(Call-ID, our tag)` a leg's in-dialog requests are found by: the local tag of a
/// UAS leg's dialog, the From tag of a UAC leg's INVITE.
pub(super) fn dialog_key(leg: &Leg) -> (String, String) {
    let m = &leg.invite;
    let call_id = m.call_id().unwrap_or_default().to_owned();
    let tag = match (&leg.role, &leg.dialog) {
        (leg::Role::Uas { .. }, Some(d)) => d.local_tag.clone(),
        _ => m
            .get(Name::From)
            .and_then(name_addr::tag)
            .unwrap_or_default()
            .to_owned(),
    };
    (call_id, tag)
}
