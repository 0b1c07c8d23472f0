//! Client transactions: INVITE (RFC 3261 §17.1.1 with the RFC 6026 Accepted state) and
//! non-INVITE (§17.1.2), response matching (§17.1.3).

use std::time::{Duration, Instant};

use crate::sip::message::Message;
use crate::sip::method::Method;
use crate::sip::peer::Peer;
use crate::sip::via;

use super::key::{cseq, ClientKey};
use super::layer::{Shared, TransactionLayer};
use super::request::{ack_for_non_2xx, cancel_for};
use super::timer::{Timer, TimerSlots, TIMER_D_UDP};
use super::{ClientTxId, TransactionError, TransactionEvent, TxId};

/// Where a client transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClientState {
    /// INVITE sent, no response yet.
    Calling,
    /// Non-INVITE sent, no response yet.
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived (INVITE: 3xx-6xx, ACKed); absorbing retransmissions.
    Completed,
    /// INVITE: a 2xx arrived (RFC 6026); later 2xx still go to the TU.
    Accepted,
    /// Done: the layer removes it.
    Terminated,
}

/// One client transaction.
#[derive(Debug)]
pub(super) struct ClientTx {
    id: ClientTxId,
    pub(super) key: ClientKey,
    invite: bool,
    state: ClientState,
    pub(super) peer: Peer,
    request: Message,
    /// The ACK sent for a non-2xx final, re-sent when that response is retransmitted.
    ack: Option<Message>,
    pub(super) timers: TimerSlots,
    /// The current retransmission interval of Timer A or E.
    interval: Duration,
}

impl ClientTx {
    /// Whether the transaction still waits for a final response.
    pub(super) fn awaiting(&self) -> bool {
        matches!(
            self.state,
            ClientState::Calling | ClientState::Trying | ClientState::Proceeding
        )
    }

    /// Builds the transaction, sends the request and arms its first timers.
    fn start(
        id: ClientTxId,
        key: ClientKey,
        request: Message,
        peer: Peer,
        now: Instant,
        sh: &mut Shared,
    ) -> ClientTx {
        let invite = key.method == Method::Invite;
        let mut tx = ClientTx {
            id,
            key,
            invite,
            state: if invite {
                ClientState::Calling
            } else {
                ClientState::Trying
            },
            peer,
            request,
            ack: None,
            timers: TimerSlots::default(),
            interval: sh.config.t1,
        };
        sh.send(peer, tx.request.clone());
        let (retransmit, give_up) = if invite {
            (Timer::A, Timer::B)
        } else {
            (Timer::E, Timer::F)
        };
        let t = TxId::Client(id);
        if !peer.transport.is_reliable() {
            sh.timers
                .set_after(&mut tx.timers, t, retransmit, now, sh.config.t1);
        }
        sh.timers
            .set_after(&mut tx.timers, t, give_up, now, sh.config.t1_x64());
        tx
    }

    /// Whether the transaction still waits for a final response.
    pub(super) fn awaiting_final(&self) -> bool {
        matches!(
            self.state,
            ClientState::Calling | ClientState::Trying | ClientState::Proceeding
        )
    }

    fn on_response(&mut self, now: Instant, code: u16, resp: Message, sh: &mut Shared) {
        use ClientState::*;
        let t = TxId::Client(self.id);
        let timers = &mut sh.timers;
        let pass_up = match (self.invite, self.state, code) {
            (true, Calling | Proceeding, 100..=199) => {
                timers.cancel(&mut self.timers, Timer::A);
                if self.state == Calling {
                    timers.cancel(&mut self.timers, Timer::B);
                }
                self.state = Proceeding;
                true
            }
            (true, Calling | Proceeding, 200..=299) => {
                timers.cancel_all(&mut self.timers);
                // Accepted only absorbs 2xx retransmissions (matched by key) for Timer M's
                // 32 s: the request is never sent again, so free it.
                self.request.headers = Vec::new();
                self.request.body = bytes::Bytes::new();
                timers.set_after(&mut self.timers, t, Timer::M, now, sh.config.t1_x64());
                self.state = Accepted;
                true
            }
            (true, Calling | Proceeding, _) => {
                timers.cancel_all(&mut self.timers);
                let ack = ack_for_non_2xx(&self.request, &resp);
                sh.send(self.peer, ack.clone());
                self.ack = Some(ack);
                self.complete(Timer::D, TIMER_D_UDP, now, sh);
                true
            }
            (true, Accepted, 200..=299) => true,
            (true, Completed, 300..) => {
                if let Some(ack) = &self.ack {
                    sh.send(self.peer, ack.clone());
                }
                false
            }
            (false, Trying | Proceeding, 100..=199) => {
                self.state = Proceeding;
                true
            }
            (false, Trying | Proceeding, _) => {
                timers.cancel_all(&mut self.timers);
                let t4 = sh.config.t4;
                self.complete(Timer::K, t4, now, sh);
                true
            }
            _ => false,
        };
        if pass_up {
            sh.emit(TransactionEvent::Response { id: self.id, resp });
        }
    }

    /// Enters Completed with its absorbing timer, or terminates at once on a reliable transport.
    fn complete(&mut self, timer: Timer, after: Duration, now: Instant, sh: &mut Shared) {
        if self.peer.transport.is_reliable() {
            self.state = ClientState::Terminated;
        } else {
            self.state = ClientState::Completed;
            sh.timers
                .set_after(&mut self.timers, TxId::Client(self.id), timer, now, after);
        }
    }

    fn on_timer(&mut self, now: Instant, timer: Timer, sh: &mut Shared) {
        use ClientState::*;
        let next = match (timer, self.state) {
            (Timer::A, Calling) => self.interval.saturating_mul(2),
            (Timer::E, Trying) => self.interval.saturating_mul(2).min(sh.config.t2),
            (Timer::E, Proceeding) => sh.config.t2,
            (Timer::B, Calling | Proceeding) | (Timer::F, Trying | Proceeding) => {
                sh.emit(TransactionEvent::Timeout { id: self.id });
                self.state = Terminated;
                return;
            }
            (Timer::D | Timer::K, Completed) | (Timer::M, Accepted) => {
                self.state = Terminated;
                return;
            }
            _ => return,
        };
        sh.send(self.peer, self.request.clone());
        self.interval = next;
        sh.timers
            .set_after(&mut self.timers, TxId::Client(self.id), timer, now, next);
    }
}

impl TransactionLayer {
    /// Starts a client transaction for `req` (INVITE or non-INVITE, built with a fresh RFC 3261
    /// branch in its top Via) and queues it for `to`. A CANCEL also gives the INVITE it cancels
    /// 64*T1 more to get its final response before Timer B gives up (§9.1).
    pub fn send_request(
        &mut self,
        now: Instant,
        req: Message,
        to: Peer,
    ) -> Result<ClientTxId, TransactionError> {
        let key = client_key(&req)?;
        if self.client_index.contains_key(&key) {
            return Err(TransactionError::DuplicateBranch {
                branch: key.branch,
                method: key.method.to_string(),
            });
        }
        if key.method == Method::Cancel {
            self.rearm_timer_b(now, &key.branch);
        }
        let id = ClientTxId(self.next_id());
        let tx = ClientTx::start(id, key.clone(), req, to, now, &mut self.sh);
        self.client_index.insert(key, id);
        self.clients.insert(id, Box::new(tx));
        Ok(id)
    }

    /// A response arrived; returns the client transaction it matched (§17.1.3), if any. Stray
    /// responses are ignored; a matched one may still be absorbed (a retransmitted final).
    pub fn handle_response(&mut self, now: Instant, resp: Message) -> Option<ClientTxId> {
        let code = resp.status().filter(|c| (100..=699).contains(c))?;
        let key = ClientKey::of_response(&resp)?;
        let id = *self.client_index.get(&key)?;
        let tx = self.clients.get_mut(&id)?;
        tx.on_response(now, code, resp, &mut self.sh);
        self.reap_client(id);
        Some(id)
    }

    /// A CANCEL for a live client INVITE transaction (§9.1), to pass to `send_request`.
    pub fn cancel_request(&self, id: ClientTxId) -> Option<Message> {
        self.clients
            .get(&id)
            .filter(|tx| tx.invite)
            .map(|tx| cancel_for(&tx.request))
    }

    /// Where a client transaction sends its request (and a CANCEL of it must go, §9.1).
    pub fn destination(&self, id: ClientTxId) -> Option<Peer> {
        self.clients.get(&id).map(|tx| tx.peer)
    }

    fn rearm_timer_b(&mut self, now: Instant, branch: &str) {
        let key = ClientKey {
            branch: branch.to_owned(),
            method: Method::Invite,
        };
        let Some(&id) = self.client_index.get(&key) else {
            return;
        };
        let after = self.sh.config.t1_x64();
        if let Some(tx) = self.clients.get_mut(&id).filter(|tx| tx.awaiting_final()) {
            self.sh
                .timers
                .set_after(&mut tx.timers, TxId::Client(id), Timer::B, now, after);
        }
    }

    pub(super) fn fire_client(&mut self, id: ClientTxId, now: Instant, timer: Timer) {
        if let Some(tx) = self.clients.get_mut(&id) {
            tx.timers.fired(timer);
            tx.on_timer(now, timer, &mut self.sh);
            self.reap_client(id);
        }
    }

    fn reap_client(&mut self, id: ClientTxId) {
        if self
            .clients
            .get(&id)
            .is_some_and(|tx| tx.state == ClientState::Terminated)
        {
            self.remove_client(id);
        }
    }
}

/// The client key of a request the TU wants to send, checking what matching relies on.
fn client_key(req: &Message) -> Result<ClientKey, TransactionError> {
    let method = req.method().ok_or(TransactionError::NotARequest)?;
    if *method == Method::Ack {
        return Err(TransactionError::AckIsNotATransaction);
    }
    let top = via::top(req)?;
    let branch = top.branch().filter(|_| top.is_rfc3261());
    let branch = branch.ok_or(TransactionError::NoRfc3261Branch)?;
    match cseq(req) {
        Some((_, m)) if m == method.as_str() => {}
        _ => return Err(TransactionError::BadCSeq),
    }
    Ok(ClientKey {
        branch: branch.to_owned(),
        method: method.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::Name;
    use crate::sip::peer::{ConnId, Transmit};
    use crate::sip::transaction::test_util::*;
    use crate::sip::transaction::TransactionEvent as Ev;

    fn times(log: Vec<(Duration, String)>) -> Vec<u128> {
        log.into_iter().map(|(t, _)| t.as_millis()).collect()
    }

    #[test]
    fn timer_a_doubles_without_cap_and_timer_b_times_out_at_32s() {
        let mut h = Harness::new();
        let id = h.send(invite("c"), udp());
        h.run_until(ms(31_999));
        assert_eq!(
            times(h.take_log()),
            [0, 500, 1500, 3500, 7500, 15_500, 31_500]
        );
        assert!(h.take_events().is_empty());
        h.run_until(s(32));
        assert_eq!(
            h.take_events(),
            vec![Ev::Timeout { id }, client_terminated(id)]
        );
        h.assert_empty();
    }

    #[test]
    fn provisional_stops_timer_a_and_timer_b_then_486_is_acked_and_timer_d_absorbs() {
        let mut h = Harness::new();
        let inv = invite("c");
        let id = h.send(inv.clone(), udp());
        h.run_until(ms(600));
        let ringing = reply(&inv, 180, Some("callee"));
        assert_eq!(h.response(ringing.clone()), Some(id));
        h.run_until(s(100));
        assert_eq!(
            times(h.take_log()),
            [0, 500],
            "no retransmission in Proceeding"
        );
        assert_eq!(h.take_events(), vec![Ev::Response { id, resp: ringing }]);
        assert_eq!(h.layer.len(), 1, "Timer B does not run in Proceeding");
        let busy = reply(&inv, 486, Some("callee"));
        assert_eq!(h.response(busy.clone()), Some(id));
        let sent = h.take_sent();
        assert_eq!(sent, vec![ack_for_non_2xx(&inv, &busy)]);
        let a = &sent[0];
        assert_eq!(a.request_uri(), inv.request_uri());
        assert_eq!(a.get(Name::Via), inv.get(Name::Via));
        assert_eq!(a.get(Name::CSeq), Some("1 ACK"));
        assert_eq!(a.get(Name::To), Some("<sip:bob@127.0.0.1>;tag=callee"));
        assert_eq!(a.get(Name::From), inv.get(Name::From));
        assert_eq!(a.call_id(), inv.call_id());
        assert_eq!(
            h.take_events(),
            vec![Ev::Response {
                id,
                resp: busy.clone()
            }]
        );
        h.run_until(s(110));
        assert_eq!(h.response(busy.clone()), Some(id));
        assert_eq!(h.take_log(), log(&[(s(110), "ACK")]), "the ACK again");
        assert!(
            h.take_events().is_empty(),
            "a retransmitted final is not passed up"
        );
        h.run_until(ms(131_999));
        assert_eq!(h.layer.len(), 1);
        h.run_until(s(132));
        assert_eq!(
            h.take_events(),
            vec![client_terminated(id)],
            "Timer D = 32 s"
        );
        h.assert_empty();
        assert_eq!(h.response(busy), None, "stray after Timer D");
    }

    #[test]
    fn final_in_calling_is_acked_and_stops_timers_a_and_b() {
        let mut h = Harness::new();
        let inv = invite("c");
        let id = h.send(inv.clone(), udp());
        assert_eq!(h.response(reply(&inv, 503, Some("x"))), Some(id));
        h.run_until(ms(31_999));
        assert_eq!(h.take_log(), log(&[(ms(0), "INVITE"), (ms(0), "ACK")]));
        h.run_until(s(32));
        let ends: Vec<_> = h.take_events().into_iter().skip(1).collect();
        assert_eq!(ends, vec![client_terminated(id)], "Timer D, no Timeout");
        h.assert_empty();
    }

    #[test]
    fn invite_2xx_enters_accepted_and_timer_m_passes_retransmissions_up() {
        let mut h = Harness::new();
        let inv = invite("c");
        let id = h.send(inv.clone(), udp());
        h.run_until(s(1));
        let ok = reply(&inv, 200, Some("callee"));
        assert_eq!(h.response(ok.clone()), Some(id));
        h.run_until(s(5));
        assert_eq!(h.response(ok.clone()), Some(id));
        let mut fork = reply(&inv, 200, Some("other"));
        fork.set(Name::Contact, "<sip:fork@127.0.0.1>");
        assert_eq!(h.response(fork.clone()), Some(id));
        assert_eq!(
            h.response(reply(&inv, 486, Some("x"))),
            Some(id),
            "matched, ignored"
        );
        assert_eq!(
            h.response(reply(&inv, 180, Some("x"))),
            Some(id),
            "matched, ignored"
        );
        let expect = vec![
            Ev::Response {
                id,
                resp: ok.clone(),
            },
            Ev::Response {
                id,
                resp: ok.clone(),
            },
            Ev::Response { id, resp: fork },
        ];
        assert_eq!(h.take_events(), expect);
        assert_eq!(
            times(h.take_log()),
            [0, 500],
            "no ACK for a 2xx, no retransmission"
        );
        h.run_until(ms(32_999));
        assert_eq!(h.layer.len(), 1);
        h.run_until(s(33));
        assert_eq!(
            h.take_events(),
            vec![client_terminated(id)],
            "Timer M = 64*T1"
        );
        h.assert_empty();
        assert_eq!(
            h.response(ok),
            None,
            "after Timer M the dialog layer takes it"
        );
    }

    #[test]
    fn invite_over_tcp_no_timer_a_timer_b_and_timer_m_still_run_timer_d_is_zero() {
        let mut h = Harness::new();
        let id = h.send(invite("c"), tcp());
        h.run_until(s(32));
        assert_eq!(h.take_log(), log(&[(ms(0), "INVITE")]));
        assert_eq!(
            h.take_events(),
            vec![Ev::Timeout { id }, client_terminated(id)]
        );
        h.assert_empty();

        let inv = invite("d");
        let id = h.send(inv.clone(), tcp());
        h.response(reply(&inv, 486, Some("x")));
        assert_eq!(h.take_log(), log(&[(s(32), "INVITE"), (s(32), "ACK")]));
        let ev = h.take_events();
        assert_eq!(
            ev.last(),
            Some(&client_terminated(id)),
            "Timer D is zero on TCP"
        );
        h.assert_empty();

        let inv = invite("e");
        let id = h.send(inv.clone(), tcp());
        h.response(reply(&inv, 200, Some("x")));
        h.run_until(ms(63_999));
        assert_eq!(h.layer.len(), 1);
        h.run_until(s(64));
        assert_eq!(
            h.take_events().last(),
            Some(&client_terminated(id)),
            "Timer M on TCP"
        );
        h.assert_empty();
    }

    #[test]
    fn timer_e_caps_at_t2_and_timer_f_times_out() {
        let mut h = Harness::new();
        let reg = request(Method::Register, Some("z9hG4bKr"), 3);
        let id = h.send(reg, udp());
        h.run_until(ms(31_999));
        let e = [
            0, 500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500,
        ];
        assert_eq!(times(h.take_log()), e);
        h.run_until(s(32));
        assert_eq!(
            h.take_events(),
            vec![Ev::Timeout { id }, client_terminated(id)]
        );
        h.assert_empty();
    }

    #[test]
    fn timer_e_in_proceeding_runs_at_t2() {
        let mut h = Harness::new();
        let bye = request(Method::Bye, Some("z9hG4bKb"), 3);
        let id = h.send(bye.clone(), udp());
        h.run_until(ms(200));
        h.response(reply(&bye, 100, None));
        h.run_until(ms(31_999));
        let e = [0, 500, 4500, 8500, 12_500, 16_500, 20_500, 24_500, 28_500];
        assert_eq!(times(h.take_log()), e);
        h.run_until(s(32));
        let ev = h.take_events();
        assert_eq!(
            ev[1..],
            [Ev::Timeout { id }, client_terminated(id)],
            "Timer F"
        );
        h.assert_empty();
    }

    #[test]
    fn non_invite_final_stops_e_and_f_and_timer_k_absorbs() {
        let mut h = Harness::new();
        let bye = request(Method::Bye, Some("z9hG4bKb"), 3);
        let id = h.send(bye.clone(), udp());
        h.run_until(ms(700));
        let ok = reply(&bye, 200, None);
        assert_eq!(h.response(ok.clone()), Some(id));
        assert_eq!(h.response(reply(&bye, 100, None)), Some(id));
        h.run_until(s(2));
        assert_eq!(h.response(ok.clone()), Some(id));
        assert_eq!(h.take_events(), vec![Ev::Response { id, resp: ok }], "once");
        assert_eq!(times(h.take_log()), [0, 500]);
        h.run_until(ms(5699));
        assert_eq!(h.layer.len(), 1);
        h.run_until(ms(5700));
        assert_eq!(h.take_events(), vec![client_terminated(id)], "Timer K = T4");
        h.assert_empty();
    }

    #[test]
    fn non_invite_over_tcp_no_timer_e_timer_f_runs_timer_k_is_zero() {
        let mut h = Harness::new();
        let opts = request(Method::Options, Some("z9hG4bKo"), 3);
        let id = h.send(opts, tcp());
        h.run_until(s(32));
        assert_eq!(h.take_log(), log(&[(ms(0), "OPTIONS")]));
        assert_eq!(
            h.take_events(),
            vec![Ev::Timeout { id }, client_terminated(id)]
        );
        let opts = request(Method::Options, Some("z9hG4bKp"), 4);
        let id = h.send(opts.clone(), tcp());
        h.response(reply(&opts, 200, None));
        assert_eq!(h.take_events().last(), Some(&client_terminated(id)));
        h.assert_empty();
    }

    #[test]
    fn send_request_refuses_what_cannot_be_a_client_transaction() {
        let mut h = Harness::new();
        let now = h.now;
        let mut try_send = |m: Message| h.layer.send_request(now, m, udp()).unwrap_err();
        let ack = request(Method::Ack, Some("z9hG4bKa"), 1);
        assert!(matches!(
            try_send(ack),
            TransactionError::AckIsNotATransaction
        ));
        let old = request(Method::Invite, None, 1);
        assert!(matches!(try_send(old), TransactionError::NoRfc3261Branch));
        let old = request(Method::Invite, Some("1234"), 1);
        assert!(matches!(try_send(old), TransactionError::NoRfc3261Branch));
        let mut bad = invite("x");
        bad.set(Name::CSeq, "1 BYE");
        assert!(matches!(try_send(bad), TransactionError::BadCSeq));
        let mut no_via = invite("x");
        no_via.remove(Name::Via);
        assert!(matches!(try_send(no_via), TransactionError::Via(_)));
        let resp = reply(&invite("x"), 200, None);
        assert!(matches!(try_send(resp), TransactionError::NotARequest));
        h.send(invite("x"), udp());
        let e = h.layer.send_request(now, invite("x"), udp()).unwrap_err();
        assert!(matches!(e, TransactionError::DuplicateBranch { .. }));
        assert_eq!(
            e.to_string(),
            "a client transaction with branch z9hG4bKx and method INVITE already exists"
        );
        assert_eq!(h.layer.len(), 1);
    }

    #[test]
    fn responses_match_on_branch_and_cseq_method() {
        let mut h = Harness::new();
        let inv = invite("c");
        let id = h.send(inv.clone(), udp());
        h.response(reply(&inv, 180, Some("t")));
        let cancel = h.layer.cancel_request(id).unwrap();
        let cid = h.send(cancel.clone(), udp());
        assert_eq!(h.response(reply(&cancel, 200, Some("t"))), Some(cid));
        assert_eq!(
            h.response(reply(&invite("zzz"), 487, Some("t"))),
            None,
            "other branch"
        );
        let mut no_via = reply(&inv, 487, Some("t"));
        no_via.remove(Name::Via);
        assert_eq!(h.response(no_via), None);
        assert_eq!(h.response(Message::response(99, "Low")), None);
        assert_eq!(h.response(inv.clone()), None, "a request is not a response");
        assert_eq!(h.response(reply(&inv, 487, Some("t"))), Some(id));
        let log = h.take_log();
        let labels: Vec<_> = log.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(labels, ["INVITE", "CANCEL", "ACK"]);
        h.run_all();
        h.assert_empty();
    }

    #[test]
    fn a_cancel_gives_the_invite_64_t1_more_then_timer_b_gives_up() {
        let mut h = Harness::new();
        let inv = invite("c");
        let id = h.send(inv.clone(), udp());
        h.response(reply(&inv, 180, Some("t")));
        h.run_until(s(10));
        let cancel = cancel_for(&inv);
        let cid = h.send(cancel.clone(), udp());
        h.response(reply(&cancel, 200, Some("t")));
        h.response(reply(&inv, 183, Some("t")));
        h.run_until(ms(41_999));
        assert!(h.layer.clients.contains_key(&id));
        h.run_until(s(42));
        let ev = h.take_events();
        assert!(ev.contains(&Ev::Timeout { id }));
        assert!(ev.contains(&client_terminated(cid)));
        h.assert_empty();
    }

    #[test]
    fn connection_close_fails_pending_client_transactions_only() {
        let mut h = Harness::new();
        let inv = invite("c");
        let pending = h.send(inv.clone(), tcp());
        let inv2 = invite("d");
        let done = h.send(inv2.clone(), tcp());
        h.response(reply(&inv2, 200, Some("t")));
        let elsewhere = h.send(invite("e"), Peer::tcp(addr(), ConnId(2)));
        h.take_events();
        h.close(ConnId(1));
        let expect = [
            Ev::TransportError {
                id: TxId::Client(pending),
            },
            client_terminated(pending),
            client_terminated(done),
        ];
        assert_eq!(h.take_events(), expect);
        assert_eq!(h.layer.len(), 1);
        h.close(ConnId(2));
        let expect = [
            Ev::TransportError {
                id: TxId::Client(elsewhere),
            },
            client_terminated(elsewhere),
        ];
        assert_eq!(h.take_events(), expect);
        h.assert_empty();
    }

    #[test]
    fn send_stateless_only_queues() {
        let mut h = Harness::new();
        let ack = request(Method::Ack, Some("z9hG4bKack"), 1);
        h.layer.send_stateless(ack.clone(), udp());
        assert_eq!(
            h.layer.poll_transmit(),
            Some(Transmit {
                to: udp(),
                msg: ack
            })
        );
        h.assert_empty();
    }
}
