//! Mid-call offers: re-INVITE and UPDATE relayed from one leg to the other (hold, resume,
//! codec change), glare, and RFC 4028 session refreshes.

use super::headers::{contact, is_sips};
use super::session_timer as st;
use super::*;
use crate::sip::transaction::response_for;
use crate::sip::validate::{cseq, ALLOWED_METHODS};
use crate::sip::{Method, Name, Peer};

use super::flow::{media_rejection, sdp_body, set_body};

/// How many times a relayed re-offer is retried after 491 before the 491 is passed back.
const MAX_GLARE_RETRIES: u8 = 2;

impl CallCore {}

impl Shared {
    /// Session-Expires for a 2xx to a refresh or re-offer arriving on `side`.
    fn session_echo(&self, call: &Call, side: Side) -> Option<String> {
        let t = call.leg(side)?.session?;
        let refresher = if t.we_refresh { "uas" } else { "uac" };
        Some(format!("{};refresher={refresher}", t.interval))
    }

    /// A re-INVITE or UPDATE from `side`: relayed to the other side with SDP rewritten,
    /// or answered here when it carries no offer (a plain session refresh).
    pub(super) fn on_reoffer(
        &mut self,
        cx: &mut Ctx,
        call: &mut Call,
        side: Side,
        tx: ServerTxId,
        req: &Message,
        reply_to: Peer,
    ) {
        let is_invite = req.method() == Some(&Method::Invite);
        let callee_ringing = call
            .callee
            .as_ref()
            .is_some_and(|l| l.invite_out_tx().is_some());
        if call.phase != Phase::Answered || callee_ringing {
            return Self::reply(cx, tx, response_for(req, 491, "Request Pending", None));
        }
        if let Some(relay) = &call.reoffer {
            if relay.from == side {
                let mut r = response_for(req, 500, "Server Internal Error", None);
                r.push(Name::RetryAfter, self.rng.clone().u32(1..5).to_string());
                return Self::reply(cx, tx, r);
            }
            return Self::reply(cx, tx, response_for(req, 491, "Request Pending", None));
        }
        if call.leg(side).is_some_and(|l| l.request_out.is_some())
            || call
                .leg(side.other())
                .is_some_and(|l| l.request_out.is_some())
        {
            return Self::reply(cx, tx, response_for(req, 491, "Request Pending", None));
        }
        if let Some(d) = call.leg_mut(side).and_then(|l| l.dialog.as_mut()) {
            d.refresh_target(req);
        }
        let Some(sdp) = sdp_body(req).map(<[u8]>::to_vec) else {
            return self.answer_without_offer(cx, call, side, tx, req, reply_to, is_invite, false);
        };
        if call.callee.is_none() {
            // Nobody to relay to: holdless answers for itself (hold, resume, codec change
            // while the caller talks to the menu).
            return match cx.media.answer_locally(cx.now, call.media, side, &sdp) {
                Ok(answer) => {
                    if let Some(l) = call.leg_mut(side) {
                        l.sdp_sent = Some(answer);
                    }
                    self.answer_without_offer(cx, call, side, tx, req, reply_to, is_invite, true)
                }
                Err(e) => Self::reply(cx, tx, media_rejection(req, &e)),
            };
        }
        let offer = match cx.media.offer(cx.now, call.media, side, &sdp) {
            Ok(o) => o,
            Err(e) => return Self::reply(cx, tx, media_rejection(req, &e)),
        };
        let other = side.other();
        let session = session_header_out(call, other);
        let Some(d) = call.leg_mut(other).and_then(|l| l.dialog.as_mut()) else {
            return Self::reply(
                cx,
                tx,
                response_for(req, 481, "Call/Transaction Does Not Exist", None),
            );
        };
        let method = if is_invite {
            Method::Invite
        } else {
            Method::Update
        };
        let mut out = d.request(method, None);
        out.push(Name::Allow, ALLOWED_METHODS);
        out.push(Name::Supported, "timer");
        if let Some(se) = session {
            out.push_other(st::SESSION_EXPIRES, se);
        }
        super::headers::copy_pass_through(&self.cfg, req, &mut out);
        set_body(&mut out, &offer);
        let Some(id) = self.send_in_dialog(cx, call, other, out, ClientPurpose::Reoffer) else {
            return Self::reply(
                cx,
                tx,
                response_for(req, 500, "Server Internal Error", None),
            );
        };
        if let Some(l) = call.leg_mut(other) {
            l.set_request_out(id);
            l.sdp_sent = Some(offer);
        }
        call.reoffer = Some(Reoffer {
            from: side,
            server_tx: tx,
            request: req.clone(),
            is_invite,
            glare_retries: 0,
        });
        self.server_txs
            .insert(tx, (call.key, ServerPurpose::Reoffer));
    }

    #[allow(clippy::too_many_arguments)]
    fn answer_without_offer(
        &mut self,
        cx: &mut Ctx,
        call: &mut Call,
        side: Side,
        tx: ServerTxId,
        req: &Message,
        reply_to: Peer,
        is_invite: bool,
        answered_offer: bool,
    ) {
        let mut ok = response_for(req, 200, "OK", None);
        let Some((p, secure)) = call.leg(side).map(|l| (l.peer, is_sips(&l.invite))) else {
            return;
        };
        ok.push(
            Name::Contact,
            contact(self.local_for_peer(p), p.transport, secure),
        );
        ok.push(Name::Supported, "timer");
        if let Some(se) = self.session_echo(call, side) {
            ok.push_other(st::SESSION_EXPIRES, se);
        }
        if is_invite || answered_offer {
            if let Some(sdp) = call.leg(side).and_then(|l| l.sdp_sent.clone()) {
                set_body(&mut ok, &sdp);
            }
        }
        if is_invite {
            let n = cseq(req).map(|(n, _)| n).unwrap_or(0);
            let pending = Pending2xx {
                msg: ok.clone(),
                to: reply_to,
                interval: self.timers.t1,
                cseq: n,
            };
            if let Some(l) = call.leg_mut(side) {
                l.pending_2xx = Some(pending);
            }
            self.arm_2xx(cx, call, side, reply_to);
        }
        Self::reply(cx, tx, ok);
        self.restart_session(cx, call, side);
    }

    fn local_for_peer(&self, p: Peer) -> SocketAddr {
        self.local_for(p.transport, p.local)
    }

    /// The other side answered a relayed re-INVITE/UPDATE.
    pub(super) fn on_reoffer_response(
        &mut self,
        cx: &mut Ctx,
        call: &mut Call,
        side: Side,
        resp: Message,
    ) {
        let code = resp.status().unwrap_or(0);
        if code < 200 {
            return self.request_out_provisional(cx, call, side);
        }
        let was_out = call.leg_mut(side).and_then(|l| l.request_out.take());
        let is_invite = cseq(&resp).map(|(_, m)| m == "INVITE").unwrap_or(false);
        if (200..300).contains(&code) && is_invite {
            let n = cseq(&resp).map(|(n, _)| n).unwrap_or(0);
            self.send_ack(cx, call, side, n, None);
        }
        if was_out.is_none() {
            return;
        }
        let Some(relay) = call.reoffer.take() else {
            // The call ended while the re-offer was out: it waited for this answer.
            return self.maybe_finish(cx, call);
        };
        if let Some(d) = call.leg_mut(side).and_then(|l| l.dialog.as_mut()) {
            d.refresh_target(&resp);
        }
        let from = relay.from;
        if code == 491 && relay.glare_retries < MAX_GLARE_RETRIES {
            // §14.1: wait 2.1–4 s when we chose this leg's Call-ID (the callee leg), else
            // 0–2 s, then send the re-offer again; the originator keeps waiting.
            let ms = match side {
                Side::Callee => self.rng.u64(2100..=4000),
                Side::Caller => self.rng.u64(0..=2000),
            };
            call.reoffer = Some(Reoffer {
                glare_retries: relay.glare_retries + 1,
                ..relay
            });
            let at = cx.now + Duration::from_millis(ms);
            return self.set_timer(call, CallTimer::GlareRetry(side), at);
        }
        if !(200..300).contains(&code) {
            let reason = match &resp.start {
                crate::sip::StartLine::Response { reason, .. } => reason.clone(),
                _ => String::new(),
            };
            Self::reply(
                cx,
                relay.server_tx,
                response_for(&relay.request, code, &reason, None),
            );
            if code == 408 || code == 481 {
                self.teardown(cx, call, EndReason::Timeout(side));
            }
            return;
        }
        let body = sdp_body(&resp).unwrap_or_default().to_vec();
        let answer = match cx.media.answer(cx.now, call.media, side, &body) {
            Ok(a) => a,
            Err(e) => return Self::reply(cx, relay.server_tx, media_rejection(&relay.request, &e)),
        };
        let mut ok = response_for(&relay.request, 200, "OK", None);
        let Some((p, secure)) = call.leg(from).map(|l| (l.peer, is_sips(&l.invite))) else {
            return;
        };
        ok.push(
            Name::Contact,
            contact(self.local_for_peer(p), p.transport, secure),
        );
        ok.push(Name::Allow, ALLOWED_METHODS);
        ok.push(Name::Supported, "timer");
        if let Some(se) = self.session_echo(call, from) {
            ok.push_other(st::SESSION_EXPIRES, se);
        }
        super::headers::copy_pass_through(&self.cfg, &resp, &mut ok);
        set_body(&mut ok, &answer);
        if let Some(l) = call.leg_mut(from) {
            l.sdp_sent = Some(answer);
        }
        if relay.is_invite {
            let n = cseq(&relay.request).map(|(n, _)| n).unwrap_or(0);
            let pending = Pending2xx {
                msg: ok.clone(),
                to: p,
                interval: self.timers.t1,
                cseq: n,
            };
            if let Some(l) = call.leg_mut(from) {
                l.pending_2xx = Some(pending);
            }
            self.arm_2xx(cx, call, from, p);
        }
        Self::reply(cx, relay.server_tx, ok);
        self.restart_session(cx, call, side);
        self.restart_session(cx, call, from);
    }

    /// Sends a relayed re-offer again after the §14.1 wait that followed a 491.
    pub(super) fn retry_reoffer(&mut self, cx: &mut Ctx, call: &mut Call, side: Side) {
        let session = session_header_out(call, side);
        let (Some(relay), Some(offer)) = (
            call.reoffer.clone(),
            call.leg(side).and_then(|l| l.sdp_sent.clone()),
        ) else {
            return;
        };
        if call.phase != Phase::Answered || call.leg(side).is_some_and(|l| l.request_out.is_some())
        {
            return;
        }
        let Some(d) = call.leg_mut(side).and_then(|l| l.dialog.as_mut()) else {
            return;
        };
        let mut out = d.request(
            if relay.is_invite {
                Method::Invite
            } else {
                Method::Update
            },
            None,
        );
        out.push(Name::Allow, ALLOWED_METHODS);
        out.push(Name::Supported, "timer");
        if let Some(se) = session {
            out.push_other(st::SESSION_EXPIRES, se);
        }
        super::headers::copy_pass_through(&self.cfg, &relay.request, &mut out);
        set_body(&mut out, &offer);
        match self.send_in_dialog(cx, call, side, out, ClientPurpose::Reoffer) {
            Some(id) => {
                if let Some(l) = call.leg_mut(side) {
                    l.set_request_out(id);
                }
            }
            None => {
                if let Some(r) = call.reoffer.take() {
                    Self::reply(
                        cx,
                        r.server_tx,
                        response_for(&r.request, 500, "Server Internal Error", None),
                    );
                }
            }
        }
    }

    /// Restarts the session timer of a leg after a successful refresh.
    pub(super) fn restart_session(&mut self, cx: &mut Ctx, call: &mut Call, side: Side) {
        let Some(t) = call.leg(side).and_then(|l| l.session) else {
            return;
        };
        if t.we_refresh {
            self.clear_timer(call, CallTimer::Expire(side));
            self.set_timer(call, CallTimer::Refresh(side), cx.now + t.refresh_after());
        } else {
            self.clear_timer(call, CallTimer::Refresh(side));
            self.set_timer(call, CallTimer::Expire(side), cx.now + t.expire_after());
        }
    }

    /// Our turn to refresh a leg: UPDATE without SDP where the peer allows it, else a
    /// re-INVITE with the SDP last sent on that leg.
    pub(super) fn send_refresh(&mut self, cx: &mut Ctx, call: &mut Call, side: Side) {
        if call.phase != Phase::Answered {
            return;
        }
        if call.reoffer.is_some() || call.leg(side).is_some_and(|l| l.request_out.is_some()) {
            let retry = cx.now + Duration::from_secs(2);
            return self.set_timer(call, CallTimer::Refresh(side), retry);
        }
        let Some(t) = call.leg(side).and_then(|l| l.session) else {
            return;
        };
        let use_update = call.leg(side).is_some_and(|l| l.allows_update);
        let sdp = call.leg(side).and_then(|l| l.sdp_sent.clone());
        let Some(d) = call.leg_mut(side).and_then(|l| l.dialog.as_mut()) else {
            return;
        };
        let mut req = d.request(
            if use_update {
                Method::Update
            } else {
                Method::Invite
            },
            None,
        );
        req.push(Name::Supported, "timer");
        req.push_other(st::SESSION_EXPIRES, format!("{};refresher=uac", t.interval));
        if !use_update {
            if let Some(sdp) = sdp {
                set_body(&mut req, &sdp);
            }
        }
        if let Some(id) = self.send_in_dialog(cx, call, side, req, ClientPurpose::Refresh) {
            if let Some(l) = call.leg_mut(side) {
                l.set_request_out(id);
            }
        }
    }

    /// The answer to our session refresh.
    pub(super) fn on_refresh_response(
        &mut self,
        cx: &mut Ctx,
        call: &mut Call,
        side: Side,
        resp: Message,
    ) {
        let code = resp.status().unwrap_or(0);
        if code < 200 {
            return self.request_out_provisional(cx, call, side);
        }
        let is_invite = cseq(&resp).map(|(_, m)| m == "INVITE").unwrap_or(false);
        if (200..300).contains(&code) && is_invite {
            let n = cseq(&resp).map(|(n, _)| n).unwrap_or(0);
            self.send_ack(cx, call, side, n, None);
        }
        if call
            .leg_mut(side)
            .and_then(|l| l.request_out.take())
            .is_none()
        {
            return;
        }
        if call.phase == Phase::Ending {
            // The call ended while the refresh was out: it waited for this answer.
            return self.maybe_finish(cx, call);
        }
        if (code == 401 || code == 407) && refresh_answers_challenge(call, side, &resp) {
            return self.send_refresh(cx, call, side);
        }
        match code {
            200..=299 => {
                if let Some(a) = call.leg_mut(side).and_then(|l| l.auth.as_mut()) {
                    a.refresh_challenged = false;
                }
                if let Some((interval, _)) = st::session_expires(&resp) {
                    if let Some(t) = call.leg_mut(side).and_then(|l| l.session.as_mut()) {
                        t.interval = interval;
                    }
                }
                self.restart_session(cx, call, side);
            }
            491 => {
                let retry = cx.now + Duration::from_millis(self.rng.u64(2100..4000));
                self.set_timer(call, CallTimer::Refresh(side), retry);
            }
            _ => {
                tracing::info!(call = call.key.0, ?side, code, "session refresh failed");
                self.teardown(cx, call, EndReason::SessionExpired(side));
            }
        }
    }

    /// A provisional response to the INVITE or UPDATE of ours on `side`: from now on it
    /// may be cancelled, and it is at once when the call is ending.
    fn request_out_provisional(&mut self, cx: &mut Ctx, call: &mut Call, side: Side) {
        if let Some(l) = call.leg_mut(side) {
            l.request_out_provisional = l.request_out.is_some();
        }
        self.cancel_request_out(cx, call, side);
    }
}

/// A challenge to our session refresh on a leg with credentials: taken (the refresh is
/// then sent again, answered) once per refresh. False when it cannot be answered.
fn refresh_answers_challenge(call: &mut Call, side: Side, resp: &Message) -> bool {
    let key = call.key;
    let Some(a) = call.leg_mut(side).and_then(|l| l.auth.as_mut()) else {
        return false;
    };
    if std::mem::replace(&mut a.refresh_challenged, true) {
        return false;
    }
    match a.session.on_challenge(resp, &a.credentials) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(call = key.0, error = %e, "refresh challenge not answered");
            false
        }
    }
}

/// Session-Expires for a request holdless sends on `side`.
fn session_header_out(call: &Call, side: Side) -> Option<String> {
    let t = call.leg(side)?.session?;
    let refresher = if t.we_refresh { "uac" } else { "uas" };
    Some(format!("{};refresher={refresher}", t.interval))
}
