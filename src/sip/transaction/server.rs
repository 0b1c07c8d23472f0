//! Server transactions: INVITE (RFC 3261 §17.2.1 with the RFC 6026 Accepted state) and
//! non-INVITE (§17.2.2), request matching (§17.2.3) and CANCEL (§9.2).

use std::time::{Duration, Instant};

use crate::sip::message::{Message, Name};
use crate::sip::method::Method;
use crate::sip::peer::Peer;

use super::key::{tag, ServerKey};
use super::layer::{Shared, TransactionLayer};
use super::response::response_for;
use super::timer::{Timer, TimerSlots};
use super::{RequestOutcome, ServerTxId, TransactionError, TransactionEvent, TxId};

/// Where a server transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ServerState {
    /// Non-INVITE, nothing sent yet.
    Trying,
    /// A provisional response may have been sent; no final yet. INVITEs start here.
    Proceeding,
    /// Final response sent (INVITE: 3xx-6xx, waiting for the ACK).
    Completed,
    /// INVITE: the ACK arrived; absorbing ACK retransmissions.
    Confirmed,
    /// INVITE: a 2xx was sent (RFC 6026); absorbing INVITE retransmissions.
    Accepted,
    /// Done: the layer removes it.
    Terminated,
}

/// One server transaction.
#[derive(Debug)]
pub(super) struct ServerTx {
    id: ServerTxId,
    pub(super) key: ServerKey,
    invite: bool,
    state: ServerState,
    pub(super) reply_to: Peer,
    request: Message,
    last_response: Option<Message>,
    /// The To tag of the last response sent: an RFC 2543 ACK must carry it, a 487 reuses it.
    to_tag: Option<String>,
    pub(super) timers: TimerSlots,
    g_interval: Duration,
}

impl ServerTx {
    /// Whether the transaction still owes a response, or an ACK to stop retransmitting a
    /// final one; afterwards it only absorbs retransmissions.
    pub(super) fn awaiting(&self) -> bool {
        matches!(self.state, ServerState::Trying | ServerState::Proceeding)
            || (self.invite && self.state == ServerState::Completed)
    }

    fn new(id: ServerTxId, key: ServerKey, request: Message, reply_to: Peer) -> ServerTx {
        let invite = request.method() == Some(&Method::Invite);
        ServerTx {
            id,
            key,
            invite,
            state: if invite {
                ServerState::Proceeding
            } else {
                ServerState::Trying
            },
            reply_to,
            request,
            last_response: None,
            to_tag: None,
            timers: TimerSlots::default(),
            g_interval: Duration::ZERO,
        }
    }

    fn tx_id(&self) -> TxId {
        TxId::Server(self.id)
    }

    /// Whether the TU still owes a final response.
    pub(super) fn awaiting_final(&self) -> bool {
        matches!(self.state, ServerState::Trying | ServerState::Proceeding)
    }

    /// Whether `req` belongs here: RFC 2543 keys leave the To tag out, so check it (§17.2.3).
    fn to_tag_matches(&self, req: &Message) -> bool {
        if !self.key.to_tag_rule() {
            return true;
        }
        let theirs = req.get(Name::To).and_then(tag);
        if req.method() == Some(&Method::Ack) {
            theirs == self.to_tag.as_deref()
        } else {
            theirs == self.request.get(Name::To).and_then(tag)
        }
    }

    fn on_retransmission(&self, sh: &mut Shared) {
        if matches!(self.state, ServerState::Proceeding | ServerState::Completed) {
            if let Some(resp) = &self.last_response {
                sh.send(self.reply_to, resp.clone());
            }
        }
    }

    fn on_ack(&mut self, now: Instant, ack: Message, sh: &mut Shared) -> RequestOutcome {
        match self.state {
            ServerState::Completed => {
                sh.timers.cancel(&mut self.timers, Timer::G);
                sh.timers.cancel(&mut self.timers, Timer::H);
                self.enter(ServerState::Confirmed, now, sh);
                RequestOutcome::AckAbsorbed
            }
            ServerState::Accepted => RequestOutcome::AckForDialog(ack),
            _ => RequestOutcome::AckAbsorbed,
        }
    }

    /// The state a response with `code` leads to, or why it may not be sent.
    fn next_state(&self, code: u16) -> Result<ServerState, TransactionError> {
        use ServerState::*;
        match (self.invite, self.state, code) {
            (true, Accepted, 200..=299) => Ok(Accepted),
            (_, Trying | Proceeding, 100..=199) => Ok(Proceeding),
            (true, Proceeding, 200..=299) => Ok(Accepted),
            (_, Trying | Proceeding, _) => Ok(Completed),
            _ => Err(TransactionError::FinalAlreadySent { code }),
        }
    }

    fn send_response(
        &mut self,
        now: Instant,
        resp: Message,
        sh: &mut Shared,
    ) -> Result<(), TransactionError> {
        let code = resp.status().ok_or(TransactionError::NotAResponse)?;
        if !(100..=699).contains(&code) {
            return Err(TransactionError::BadStatusCode(code));
        }
        let next = self.next_state(code)?;
        sh.timers.cancel(&mut self.timers, Timer::Trying);
        if let Some(t) = resp.get(Name::To).and_then(tag) {
            self.to_tag = Some(t.to_owned());
        }
        sh.send(self.reply_to, resp.clone());
        // Accepted (RFC 6026): the TU re-sends its 2xx itself, so keeping it here would only
        // hold memory for Timer L's 32 s.
        self.last_response = (next != ServerState::Accepted).then_some(resp);
        self.enter(next, now, sh);
        Ok(())
    }

    /// Moves to `next`, arming the timers of that state on entry.
    fn enter(&mut self, next: ServerState, now: Instant, sh: &mut Shared) {
        let (prev, reliable, config, t) = (
            self.state,
            self.reply_to.transport.is_reliable(),
            sh.config,
            self.tx_id(),
        );
        self.state = next;
        if prev == next {
            return;
        }
        let timers = &mut sh.timers;
        match next {
            ServerState::Accepted => {
                // From here on only retransmissions are matched (the To tag, for RFC 2543
                // peers): free the rest of the request for Timer L's 32 s.
                self.request.headers.retain(|h| Name::To.matches(&h.name));
                self.request.body = bytes::Bytes::new();
                timers.set_after(&mut self.timers, t, Timer::L, now, config.t1_x64());
            }
            ServerState::Completed if self.invite => {
                if !reliable {
                    self.g_interval = config.t1;
                    timers.set_after(&mut self.timers, t, Timer::G, now, config.t1);
                }
                timers.set_after(&mut self.timers, t, Timer::H, now, config.t1_x64());
            }
            ServerState::Completed | ServerState::Confirmed if reliable => {
                self.state = ServerState::Terminated;
            }
            ServerState::Completed => {
                // Only the response is needed from here on (re-sent to retransmissions for
                // Timer J, 32 s): free the request's headers and body.
                self.request.headers = Vec::new();
                self.request.body = bytes::Bytes::new();
                timers.set_after(&mut self.timers, t, Timer::J, now, config.t1_x64());
            }
            ServerState::Confirmed => {
                timers.set_after(&mut self.timers, t, Timer::I, now, config.t4);
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, now: Instant, timer: Timer, sh: &mut Shared) {
        use ServerState::*;
        match (timer, self.state) {
            (Timer::Trying, Proceeding) if self.last_response.is_none() => {
                let trying = response_for(&self.request, 100, "Trying", None);
                sh.send(self.reply_to, trying.clone());
                self.last_response = Some(trying);
            }
            (Timer::G, Completed) => {
                if let Some(resp) = &self.last_response {
                    sh.send(self.reply_to, resp.clone());
                }
                self.g_interval = (self.g_interval.saturating_mul(2)).min(sh.config.t2);
                let t = self.tx_id();
                sh.timers
                    .set_after(&mut self.timers, t, Timer::G, now, self.g_interval);
            }
            (Timer::H, Completed) => {
                sh.emit(TransactionEvent::AckTimeout { id: self.id });
                self.state = Terminated;
            }
            (Timer::I, Confirmed) | (Timer::J, Completed) | (Timer::L, Accepted) => {
                self.state = Terminated;
            }
            _ => {}
        }
    }
}

impl TransactionLayer {
    /// A request arrived. `reply_to` is where responses go (the caller has already applied
    /// RFC 3261 §18.2.2 / RFC 3581).
    pub fn handle_request(&mut self, now: Instant, req: Message, reply_to: Peer) -> RequestOutcome {
        let Some(method) = req.method().cloned() else {
            tracing::debug!("transaction layer: a response was handed in as a request; dropped");
            return RequestOutcome::Retransmission;
        };
        match method {
            Method::Ack => self.server_ack(now, req),
            Method::Cancel => self.server_cancel(now, req, reply_to),
            _ => {
                let key = ServerKey::of(&req, method);
                match self.find_server(&key, &req) {
                    Some(id) => self.server_retransmission(id),
                    None => RequestOutcome::New(self.new_server(now, key, req, reply_to)),
                }
            }
        }
    }

    /// The TU answers a server transaction (1xx..6xx). Fails if the id is unknown or a final
    /// response was already sent (except further 2xx to an INVITE, passed through, RFC 6026).
    pub fn respond(
        &mut self,
        now: Instant,
        id: ServerTxId,
        resp: Message,
    ) -> Result<(), TransactionError> {
        let tx = (self.servers.get_mut(&id))
            .ok_or(TransactionError::UnknownTransaction(TxId::Server(id)))?;
        let result = tx.send_response(now, resp, &mut self.sh);
        self.reap_server(id);
        result
    }

    /// The request that created a live server transaction.
    pub fn server_request(&self, id: ServerTxId) -> Option<&Message> {
        self.servers.get(&id).map(|tx| &tx.request)
    }

    fn find_server(&self, key: &ServerKey, req: &Message) -> Option<ServerTxId> {
        let id = *self.server_index.get(key)?;
        self.servers
            .get(&id)
            .filter(|tx| tx.to_tag_matches(req))
            .map(|_| id)
    }

    fn new_server(&mut self, now: Instant, key: ServerKey, req: Message, to: Peer) -> ServerTxId {
        let id = ServerTxId(self.next_id());
        let mut tx = ServerTx::new(id, key.clone(), req, to);
        if let Some(delay) = self.sh.auto_trying.filter(|_| tx.invite) {
            let t = tx.tx_id();
            self.sh
                .timers
                .set_after(&mut tx.timers, t, Timer::Trying, now, delay);
        }
        self.server_index.insert(key, id);
        self.servers.insert(id, Box::new(tx));
        id
    }

    fn server_retransmission(&mut self, id: ServerTxId) -> RequestOutcome {
        if let Some(tx) = self.servers.get(&id) {
            tx.on_retransmission(&mut self.sh);
        }
        RequestOutcome::Retransmission
    }

    fn server_ack(&mut self, now: Instant, ack: Message) -> RequestOutcome {
        let key = ServerKey::of(&ack, Method::Invite);
        let Some(id) = self.find_server(&key, &ack) else {
            return RequestOutcome::AckForDialog(ack);
        };
        let outcome = match self.servers.get_mut(&id) {
            Some(tx) => tx.on_ack(now, ack, &mut self.sh),
            None => RequestOutcome::AckForDialog(ack),
        };
        self.reap_server(id);
        outcome
    }

    /// §9.2: answer the CANCEL in its own transaction (200 or 481), then the INVITE with 487.
    /// A CANCEL for a non-INVITE request gets 481 (only INVITEs can be cancelled anyway).
    fn server_cancel(&mut self, now: Instant, req: Message, reply_to: Peer) -> RequestOutcome {
        let key = ServerKey::of(&req, Method::Cancel);
        if let Some(id) = self.find_server(&key, &req) {
            return self.server_retransmission(id);
        }
        let invite = self.find_server(&key.with_method(Method::Invite), &req);
        let invite_tag = invite.and_then(|id| self.servers.get(&id)?.to_tag.clone());
        let tag = invite_tag.unwrap_or_else(|| self.sh.new_tag());
        let (code, reason) = match invite {
            Some(_) => (200, "OK"),
            None => (481, "Call/Transaction Does Not Exist"),
        };
        let resp = response_for(&req, code, reason, Some(&tag));
        let cancel = self.new_server(now, key, req, reply_to);
        if let Err(e) = self.respond(now, cancel, resp) {
            tracing::warn!("transaction layer: answering a CANCEL failed: {e}");
        }
        if let Some(id) = invite {
            self.terminate_invite(now, id, &tag);
        }
        RequestOutcome::Cancelled { invite }
    }

    /// Answers a cancelled INVITE with 487 if it has no final response yet.
    fn terminate_invite(&mut self, now: Instant, id: ServerTxId, tag: &str) {
        let Some(tx) = self.servers.get_mut(&id) else {
            return;
        };
        if !tx.invite || !tx.awaiting_final() {
            return;
        }
        let resp = response_for(&tx.request, 487, "Request Terminated", Some(tag));
        if tx.send_response(now, resp, &mut self.sh).is_ok() {
            self.sh.emit(TransactionEvent::Cancelled { id });
        }
        self.reap_server(id);
    }

    pub(super) fn fire_server(&mut self, id: ServerTxId, now: Instant, timer: Timer) {
        if let Some(tx) = self.servers.get_mut(&id) {
            tx.timers.fired(timer);
            tx.on_timer(now, timer, &mut self.sh);
            self.reap_server(id);
        }
    }

    fn reap_server(&mut self, id: ServerTxId) {
        if self
            .servers
            .get(&id)
            .is_some_and(|tx| tx.state == ServerState::Terminated)
        {
            self.remove_server(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transaction::cancel_for;
    use crate::sip::transaction::test_util::*;
    use crate::sip::transaction::TransactionEvent as Ev;

    /// An INVITE arrived over `peer` at time zero; the TU answers with a provisional first.
    fn new_invite(h: &mut Harness, tail: &str, peer: Peer) -> (ServerTxId, Message) {
        let inv = invite(tail);
        let RequestOutcome::New(id) = h.request(inv.clone(), peer) else {
            panic!("not a new transaction");
        };
        (id, inv)
    }

    #[test]
    fn invite_486_over_udp_timer_g_until_the_ack_then_timer_i() {
        let mut h = Harness::new();
        let (id, inv) = new_invite(&mut h, "a", udp());
        let busy = reply(&inv, 486, Some("t1"));
        h.respond(id, busy.clone());
        h.run_until(ms(8000));
        let g = [0, 500, 1500, 3500, 7500];
        let expect: Vec<_> = g.iter().map(|t| (ms(*t), "486")).collect();
        assert_eq!(h.take_log(), log(&expect));
        assert_eq!(
            h.request(ack(&inv, &busy), udp()),
            RequestOutcome::AckAbsorbed
        );
        assert_eq!(
            h.request(ack(&inv, &busy), udp()),
            RequestOutcome::AckAbsorbed
        );
        assert_eq!(
            h.request(inv.clone(), udp()),
            RequestOutcome::Retransmission
        );
        h.run_until(ms(12_999));
        assert!(
            h.take_log().is_empty(),
            "Timer G stopped by the ACK, Confirmed absorbs"
        );
        assert_eq!(h.layer.len(), 1);
        h.run_until(ms(13_000));
        assert_eq!(h.take_events(), vec![server_terminated(id)], "Timer I = T4");
        h.assert_empty();
    }

    #[test]
    fn timer_g_caps_at_t2_and_timer_h_reports_the_missing_ack() {
        let mut h = Harness::new();
        let (id, inv) = new_invite(&mut h, "a", udp());
        h.respond(id, reply(&inv, 486, Some("t1")));
        h.run_until(ms(31_999));
        let times: Vec<_> = h
            .take_log()
            .into_iter()
            .map(|(t, _)| t.as_millis())
            .collect();
        let g = [
            0, 500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500,
        ];
        assert_eq!(times, g);
        assert!(h.take_events().is_empty());
        h.run_until(s(32));
        assert_eq!(
            h.take_events(),
            vec![Ev::AckTimeout { id }, server_terminated(id)]
        );
        assert!(h.take_log().is_empty());
        h.assert_empty();
    }

    #[test]
    fn invite_486_over_tcp_no_timer_g_ack_terminates_at_once() {
        let mut h = Harness::new();
        let (id, inv) = new_invite(&mut h, "a", tcp());
        let busy = reply(&inv, 486, Some("t1"));
        h.respond(id, busy.clone());
        h.run_until(s(10));
        assert_eq!(h.take_log(), log(&[(ms(0), "486")]));
        assert_eq!(
            h.request(ack(&inv, &busy), tcp()),
            RequestOutcome::AckAbsorbed
        );
        assert_eq!(
            h.take_events(),
            vec![server_terminated(id)],
            "Timer I is zero on TCP"
        );
        h.assert_empty();
    }

    #[test]
    fn timer_h_fires_over_tcp_too() {
        let mut h = Harness::new();
        let (id, inv) = new_invite(&mut h, "a", tcp());
        h.respond(id, reply(&inv, 603, Some("t1")));
        h.run_until(ms(31_999));
        assert_eq!(h.take_log().len(), 1, "no retransmission on TCP");
        h.run_until(s(32));
        assert_eq!(
            h.take_events(),
            vec![Ev::AckTimeout { id }, server_terminated(id)]
        );
        h.assert_empty();
    }

    #[test]
    fn trying_after_200ms_then_provisional_retransmitted_then_accepted_with_timer_l() {
        let mut h = Harness::new();
        let (id, inv) = new_invite(&mut h, "a", udp());
        h.run_until(ms(199));
        assert!(h.take_log().is_empty());
        h.run_until(ms(200));
        let trying = h.take_sent();
        assert_eq!(trying.len(), 1);
        assert_eq!(trying[0].status(), Some(100));
        assert_eq!(
            trying[0].get(Name::To),
            Some("<sip:bob@127.0.0.1>"),
            "no tag in 100"
        );
        h.run_until(ms(500));
        assert_eq!(
            h.request(inv.clone(), udp()),
            RequestOutcome::Retransmission
        );
        assert_eq!(h.take_log(), log(&[(ms(500), "100")]));
        h.run_until(s(1));
        h.respond(id, reply(&inv, 180, Some("t1")));
        h.run_until(ms(1500));
        assert_eq!(
            h.request(inv.clone(), udp()),
            RequestOutcome::Retransmission
        );
        assert_eq!(h.take_log(), log(&[(s(1), "180"), (ms(1500), "180")]));
        h.run_until(s(2));
        let ok = reply(&inv, 200, Some("t1"));
        h.respond(id, ok.clone());
        h.run_until(ms(2500));
        assert_eq!(
            h.request(inv.clone(), udp()),
            RequestOutcome::Retransmission
        );
        h.respond(id, ok.clone());
        assert_eq!(
            h.take_log(),
            log(&[(s(2), "200"), (ms(2500), "200")]),
            "TU's 2xx passed"
        );
        let mut ack2xx = request(Method::Ack, Some("z9hG4bKother"), 1);
        ack2xx.set(Name::To, "<sip:bob@127.0.0.1>;tag=t1");
        let out = h.request(ack2xx.clone(), udp());
        assert_eq!(out, RequestOutcome::AckForDialog(ack2xx));
        h.run_until(ms(33_999));
        assert_eq!(h.layer.len(), 1);
        h.run_until(s(34));
        assert_eq!(
            h.take_events(),
            vec![server_terminated(id)],
            "Timer L = 64*T1"
        );
        assert!(
            h.take_log().is_empty(),
            "no 2xx retransmission by the layer"
        );
        h.assert_empty();
    }

    #[test]
    fn timer_l_over_tcp_and_an_ack_reusing_the_invite_branch_goes_to_the_dialog() {
        let mut h = Harness::new();
        let (id, inv) = new_invite(&mut h, "a", tcp());
        let ok = reply(&inv, 200, Some("t1"));
        h.respond(id, ok.clone());
        let bad_ack = ack(&inv, &ok);
        assert_eq!(
            h.request(bad_ack.clone(), tcp()),
            RequestOutcome::AckForDialog(bad_ack)
        );
        assert_eq!(h.request(inv, tcp()), RequestOutcome::Retransmission);
        h.run_until(ms(31_999));
        assert_eq!(h.take_log(), log(&[(ms(0), "200")]));
        h.run_until(s(32));
        assert_eq!(h.take_events(), vec![server_terminated(id)]);
        h.assert_empty();
    }

    #[test]
    fn no_automatic_trying_when_the_tu_is_quick_or_it_is_off() {
        let mut h = Harness::new();
        let (id, inv) = new_invite(&mut h, "a", udp());
        h.run_until(ms(150));
        h.respond(id, reply(&inv, 180, Some("t")));
        h.layer.set_auto_trying(None);
        let (id2, inv2) = new_invite(&mut h, "b", udp());
        h.run_until(s(2));
        assert_eq!(h.take_log(), log(&[(ms(150), "180")]));
        h.respond(id, reply(&inv, 486, Some("t")));
        h.respond(id2, reply(&inv2, 486, Some("u")));
        h.run_all();
        h.assert_empty();
    }

    #[test]
    fn retransmitted_invite_before_any_response_is_absorbed() {
        let mut h = Harness::new();
        h.layer.set_auto_trying(None);
        let (id, inv) = new_invite(&mut h, "a", udp());
        assert_eq!(
            h.request(inv.clone(), udp()),
            RequestOutcome::Retransmission
        );
        assert!(h.take_log().is_empty());
        h.respond(id, reply(&inv, 486, Some("t")));
        assert_eq!(h.request(inv, udp()), RequestOutcome::Retransmission);
        assert_eq!(
            h.take_log(),
            log(&[(ms(0), "486"), (ms(0), "486")]),
            "Completed re-sends"
        );
        h.run_all();
        h.assert_empty();
    }

    #[test]
    fn respond_refuses_what_the_state_forbids() {
        let mut h = Harness::new();
        let (id, inv) = new_invite(&mut h, "a", udp());
        let err = |h: &mut Harness, id, m| h.layer.respond(h.now, id, m).unwrap_err();
        assert!(matches!(
            err(&mut h, id, inv.clone()),
            TransactionError::NotAResponse
        ));
        let odd = Message::response(700, "Odd");
        assert!(matches!(
            err(&mut h, id, odd),
            TransactionError::BadStatusCode(700)
        ));
        h.respond(id, reply(&inv, 200, Some("t")));
        let e = err(&mut h, id, reply(&inv, 180, Some("t")));
        assert!(matches!(
            e,
            TransactionError::FinalAlreadySent { code: 180 }
        ));
        let e = err(&mut h, id, reply(&inv, 486, Some("t")));
        assert!(matches!(
            e,
            TransactionError::FinalAlreadySent { code: 486 }
        ));
        let (id2, inv2) = new_invite(&mut h, "b", udp());
        h.respond(id2, reply(&inv2, 486, Some("t")));
        let e = err(&mut h, id2, reply(&inv2, 200, Some("t")));
        assert!(matches!(
            e,
            TransactionError::FinalAlreadySent { code: 200 }
        ));
        let gone = ServerTxId(999);
        let e = err(&mut h, gone, reply(&inv2, 200, Some("t")));
        assert!(matches!(
            e,
            TransactionError::UnknownTransaction(TxId::Server(ServerTxId(999)))
        ));
        h.run_all();
        h.assert_empty();
    }

    #[test]
    fn non_invite_over_udp_absorbs_then_resends_then_timer_j() {
        let mut h = Harness::new();
        let opts = request(Method::Options, Some("z9hG4bKo"), 5);
        let RequestOutcome::New(id) = h.request(opts.clone(), udp()) else {
            panic!()
        };
        h.run_until(s(1));
        assert_eq!(
            h.request(opts.clone(), udp()),
            RequestOutcome::Retransmission
        );
        assert!(
            h.take_log().is_empty(),
            "Trying: absorbed silently, no automatic 100"
        );
        h.respond(id, reply(&opts, 100, None));
        h.run_until(s(2));
        assert_eq!(
            h.request(opts.clone(), udp()),
            RequestOutcome::Retransmission
        );
        h.run_until(s(3));
        h.respond(id, reply(&opts, 200, Some("t")));
        let e = h
            .layer
            .respond(h.now, id, reply(&opts, 200, Some("t")))
            .unwrap_err();
        assert!(matches!(
            e,
            TransactionError::FinalAlreadySent { code: 200 }
        ));
        h.run_until(s(4));
        assert_eq!(
            h.request(opts.clone(), udp()),
            RequestOutcome::Retransmission
        );
        let expect = [(s(1), "100"), (s(2), "100"), (s(3), "200"), (s(4), "200")];
        assert_eq!(h.take_log(), log(&expect));
        h.run_until(ms(34_999));
        assert_eq!(h.layer.len(), 1);
        h.run_until(s(35));
        assert_eq!(
            h.take_events(),
            vec![server_terminated(id)],
            "Timer J = 64*T1"
        );
        h.assert_empty();
        assert_eq!(
            h.request(opts, udp()),
            RequestOutcome::New(ServerTxId(2)),
            "a new one"
        );
    }

    #[test]
    fn non_invite_over_tcp_terminates_on_the_final_response() {
        let mut h = Harness::new();
        let bye = request(Method::Bye, Some("z9hG4bKb"), 2);
        let RequestOutcome::New(id) = h.request(bye.clone(), tcp()) else {
            panic!()
        };
        h.respond(id, reply(&bye, 200, None));
        assert_eq!(
            h.take_events(),
            vec![server_terminated(id)],
            "Timer J is zero on TCP"
        );
        h.assert_empty();
    }

    #[test]
    fn cancel_gets_200_and_the_invite_487_with_the_provisional_tag() {
        let mut h = Harness::new();
        let (id, inv) = new_invite(&mut h, "a", udp());
        h.respond(id, reply(&inv, 180, Some("callee")));
        h.take_log();
        let cancel = cancel_for(&inv);
        let out = h.request(cancel.clone(), udp());
        assert_eq!(out, RequestOutcome::Cancelled { invite: Some(id) });
        let sent = h.take_sent();
        let summary: Vec<_> = sent.iter().map(|m| (label(m), m.get(Name::CSeq))).collect();
        let expect = [
            ("200".to_owned(), Some("1 CANCEL")),
            ("487".to_owned(), Some("1 INVITE")),
        ];
        assert_eq!(summary, expect);
        for m in &sent {
            assert_eq!(m.get(Name::To), Some("<sip:bob@127.0.0.1>;tag=callee"));
        }
        assert_eq!(h.take_events(), vec![Ev::Cancelled { id }]);
        assert_eq!(h.request(cancel, udp()), RequestOutcome::Retransmission);
        assert_eq!(h.take_log(), log(&[(ms(0), "200")]));
        h.run_until(ms(500));
        assert_eq!(
            h.take_log(),
            log(&[(ms(500), "487")]),
            "Timer G for the 487"
        );
        assert_eq!(
            h.request(ack(&inv, &sent[1]), udp()),
            RequestOutcome::AckAbsorbed
        );
        h.run_all();
        assert_eq!(h.layer.len(), 0);
        let ends = h
            .take_events()
            .into_iter()
            .filter(|e| matches!(e, Ev::Terminated { .. }));
        assert_eq!(ends.count(), 2, "the INVITE and the CANCEL transactions");
        h.assert_empty();
    }

    #[test]
    fn cancel_before_any_provisional_uses_one_new_tag_for_both() {
        let mut h = Harness::new();
        h.layer.set_auto_trying(None);
        let (id, inv) = new_invite(&mut h, "a", tcp());
        let out = h.request(cancel_for(&inv), tcp());
        assert_eq!(out, RequestOutcome::Cancelled { invite: Some(id) });
        let sent = h.take_sent();
        assert_eq!(sent.len(), 2);
        let tags: Vec<_> = sent.iter().map(|m| m.get(Name::To).and_then(tag)).collect();
        assert!(tags[0].is_some());
        assert_eq!(tags[0], tags[1]);
        assert_eq!(
            h.request(ack(&inv, &sent[1]), tcp()),
            RequestOutcome::AckAbsorbed
        );
        h.assert_empty();
    }

    #[test]
    fn cancel_without_an_invite_gets_481() {
        let mut h = Harness::new();
        let out = h.request(cancel_for(&invite("nothing")), udp());
        assert_eq!(out, RequestOutcome::Cancelled { invite: None });
        let sent = h.take_sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].status(), Some(481));
        assert!(sent[0].get(Name::To).and_then(tag).is_some());
        assert!(h.take_events().is_empty());
        h.run_until(ms(31_999));
        assert_eq!(h.layer.len(), 1, "the CANCEL's own transaction, Timer J");
        h.run_until(s(32));
        h.assert_empty();
    }

    #[test]
    fn cancel_after_the_final_response_gets_200_only() {
        let mut h = Harness::new();
        let (id, inv) = new_invite(&mut h, "a", udp());
        h.respond(id, reply(&inv, 200, Some("callee")));
        h.take_log();
        let out = h.request(cancel_for(&inv), udp());
        assert_eq!(out, RequestOutcome::Cancelled { invite: Some(id) });
        let sent = h.take_sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(
            (sent[0].status(), sent[0].get(Name::CSeq)),
            (Some(200), Some("1 CANCEL"))
        );
        assert_eq!(
            sent[0].get(Name::To),
            Some("<sip:bob@127.0.0.1>;tag=callee")
        );
        assert!(h.take_events().is_empty(), "no Cancelled event");
        h.run_all();
        h.assert_empty();
    }

    #[test]
    fn rfc2543_invite_retransmission_and_its_ack_match_by_dialog_identifiers() {
        let mut h = Harness::new();
        h.layer.set_auto_trying(None);
        let inv = request(Method::Invite, None, 1);
        let RequestOutcome::New(id) = h.request(inv.clone(), udp()) else {
            panic!()
        };
        assert_eq!(
            h.request(inv.clone(), udp()),
            RequestOutcome::Retransmission
        );
        let next = request(Method::Invite, None, 2);
        let RequestOutcome::New(other) = h.request(next.clone(), udp()) else {
            panic!("another CSeq is another transaction")
        };
        let busy = reply(&inv, 486, Some("x"));
        h.respond(id, busy.clone());
        assert_eq!(
            h.request(inv.clone(), udp()),
            RequestOutcome::Retransmission
        );
        assert_eq!(h.take_log(), log(&[(ms(0), "486"), (ms(0), "486")]));
        let wrong = ack(&inv, &reply(&inv, 486, Some("y")));
        assert_eq!(
            h.request(wrong.clone(), udp()),
            RequestOutcome::AckForDialog(wrong)
        );
        assert_eq!(
            h.request(ack(&inv, &busy), udp()),
            RequestOutcome::AckAbsorbed
        );
        h.run_until(s(1));
        assert!(h.take_log().is_empty(), "Timer G stopped");
        let out = h.request(cancel_for(&next), udp());
        assert_eq!(
            out,
            RequestOutcome::Cancelled {
                invite: Some(other)
            },
            "2543 CANCEL"
        );
        h.run_all();
        h.assert_empty();
    }

    #[test]
    fn same_branch_from_another_sent_by_is_another_transaction() {
        let mut h = Harness::new();
        let (id, inv) = new_invite(&mut h, "a", udp());
        let mut other = inv.clone();
        other.set(Name::Via, "SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bKa");
        let RequestOutcome::New(id2) = h.request(other, udp()) else {
            panic!()
        };
        assert_ne!(id, id2);
        let opts = request(Method::Options, Some("z9hG4bKa"), 1);
        assert!(
            matches!(h.request(opts, udp()), RequestOutcome::New(_)),
            "another method"
        );
        h.layer.connection_closed(crate::sip::peer::ConnId(1));
        assert_eq!(
            h.layer.len(),
            3,
            "UDP transactions ignore TCP connection closes"
        );
    }

    #[test]
    fn a_response_handed_in_as_a_request_is_dropped() {
        let mut h = Harness::new();
        let out = h.request(reply(&invite("a"), 200, None), udp());
        assert_eq!(out, RequestOutcome::Retransmission);
        h.assert_empty();
        assert!(h.take_log().is_empty());
    }

    #[test]
    fn server_request_gives_the_request_back() {
        let mut h = Harness::new();
        let (id, inv) = new_invite(&mut h, "a", udp());
        assert_eq!(h.layer.server_request(id), Some(&inv));
        h.respond(id, reply(&inv, 486, None));
        h.run_all();
        assert_eq!(h.layer.server_request(id), None);
        assert!(h.elapsed() >= s(32));
    }
}
