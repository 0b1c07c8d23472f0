//! The [`TransactionLayer`]: the tables of live transactions, the timer queue and the output
//! queues. Server logic lives in `server.rs`, client logic in `client.rs`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::sip::message::Message;
use crate::sip::peer::{ConnId, Peer, Transmit};

use super::client::ClientTx;
use super::key::{ClientKey, ServerKey};
use super::server::ServerTx;
use super::timer::{TimerConfig, TimerQueue, AUTO_TRYING_DELAY};
use super::{ClientTxId, ServerTxId, TransactionEvent, TxId};

/// The seed [`TransactionLayer::new`] uses; production code should pass its own.
const DEFAULT_SEED: u64 = 0x686f_6c64_6c65_7373;

/// The RFC 3261 §17 transaction layer: every live server and client transaction.
#[derive(Debug)]
pub struct TransactionLayer {
    pub(super) sh: Shared,
    next_id: u64,
    /// Boxed: a table slot is then 16 bytes, not a whole transaction (tables keep their
    /// peak capacity, and tens of thousands of transactions live 32 s under load).
    pub(super) servers: HashMap<ServerTxId, Box<ServerTx>>,
    pub(super) server_index: HashMap<ServerKey, ServerTxId>,
    /// Boxed, as `servers`.
    pub(super) clients: HashMap<ClientTxId, Box<ClientTx>>,
    pub(super) client_index: HashMap<ClientKey, ClientTxId>,
}

/// What every transaction touches: configuration, randomness, timers and outputs.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) config: TimerConfig,
    pub(super) auto_trying: Option<Duration>,
    rng: fastrand::Rng,
    pub(super) timers: TimerQueue,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TransactionEvent>,
}

impl Shared {
    /// Queues a message for the transport.
    pub(super) fn send(&mut self, to: Peer, msg: Message) {
        self.transmits.push_back(Transmit { to, msg });
    }

    /// Queues an event for the TU.
    pub(super) fn emit(&mut self, event: TransactionEvent) {
        self.events.push_back(event);
    }

    /// A fresh To tag (RFC 3261 §19.3: at least 32 bits of randomness; we use 64).
    pub(super) fn new_tag(&mut self) -> String {
        format!("{:016x}", self.rng.u64(..))
    }
}

impl TransactionLayer {
    /// A layer with a fixed tag seed; use [`TransactionLayer::with_seed`] in production.
    pub fn new(config: TimerConfig) -> Self {
        Self::with_seed(config, DEFAULT_SEED)
    }

    /// A layer whose To tags come from a generator seeded with `seed`.
    pub fn with_seed(config: TimerConfig, seed: u64) -> Self {
        TransactionLayer {
            sh: Shared {
                config,
                auto_trying: Some(AUTO_TRYING_DELAY),
                rng: fastrand::Rng::with_seed(seed),
                timers: TimerQueue::default(),
                transmits: VecDeque::new(),
                events: VecDeque::new(),
            },
            next_id: 0,
            servers: HashMap::new(),
            server_index: HashMap::new(),
            clients: HashMap::new(),
            client_index: HashMap::new(),
        }
    }

    /// Sets when a server INVITE transaction sends `100 Trying` on its own if the TU has sent no
    /// provisional response (§17.2.1); `None` leaves it to the TU. Default: 200 ms.
    /// Applies to INVITEs that arrive afterwards.
    pub fn set_auto_trying(&mut self, delay: Option<Duration>) {
        self.sh.auto_trying = delay;
    }

    /// The timer configuration.
    pub fn config(&self) -> &TimerConfig {
        &self.sh.config
    }

    /// Queues a message outside any transaction, such as the ACK for a 2xx (§13.2.2.4).
    /// Retransmissions of a 2xx the TU sends go through `respond` instead.
    pub fn send_stateless(&mut self, msg: Message, to: Peer) {
        self.sh.send(to, msg);
    }

    /// Fires every timer due at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mark = self.sh.timers.mark();
        while let Some((tx, timer)) = self.sh.timers.pop_due(now, mark) {
            match tx {
                TxId::Server(id) => self.fire_server(id, now, timer),
                TxId::Client(id) => self.fire_client(id, now, timer),
            }
        }
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.sh.transmits.pop_front()
    }

    /// The next event for the TU.
    pub fn poll_event(&mut self) -> Option<TransactionEvent> {
        self.sh.events.pop_front()
    }

    /// The earliest pending deadline of any transaction.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sh.timers.next_deadline()
    }

    /// Number of live transactions (server + client), for leak checks.
    pub fn len(&self) -> usize {
        self.servers.len() + self.clients.len()
    }

    /// Transactions still waiting for a response (client) or owing one or its ACK (server);
    /// the others only absorb retransmissions until their Timer J/K/D/I/L/M.
    pub fn awaiting(&self) -> usize {
        self.servers.values().filter(|t| t.awaiting()).count()
            + self.clients.values().filter(|t| t.awaiting()).count()
    }

    /// Whether no transaction is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A TCP connection closed: every transaction answering or sending on it terminates. Those
    /// still without a final response report [`TransactionEvent::TransportError`] first.
    pub fn connection_closed(&mut self, conn: ConnId) {
        let mut servers: Vec<_> = (self.servers.iter())
            .filter(|(_, tx)| tx.reply_to.conn == Some(conn))
            .map(|(id, tx)| (*id, tx.awaiting_final()))
            .collect();
        servers.sort_unstable();
        for (id, pending) in servers {
            if pending {
                self.sh.emit(TransactionEvent::TransportError {
                    id: TxId::Server(id),
                });
            }
            self.remove_server(id);
        }
        self.fail_clients(|tx| tx.peer.conn == Some(conn));
    }

    /// No connection to `to` could be opened (TCP refused, TLS handshake or certificate
    /// refused): every client transaction waiting on one fails now with
    /// [`TransactionEvent::TransportError`] rather than at Timer B/F.
    pub fn destination_failed(&mut self, to: Peer) {
        self.fail_clients(|tx| {
            tx.peer.conn.is_none() && tx.peer.addr == to.addr && tx.peer.transport == to.transport
        });
    }

    /// Ends the client transactions `which` picks, reporting a transport error for those
    /// still without a final response.
    fn fail_clients(&mut self, which: impl Fn(&ClientTx) -> bool) {
        let mut clients: Vec<_> = (self.clients.iter())
            .filter(|(_, tx)| which(tx))
            .map(|(id, tx)| (*id, tx.awaiting_final()))
            .collect();
        clients.sort_unstable();
        for (id, pending) in clients {
            if pending {
                self.sh.emit(TransactionEvent::TransportError {
                    id: TxId::Client(id),
                });
            }
            self.remove_client(id);
        }
    }

    /// A fresh transaction number, shared by both kinds so ids never repeat.
    pub(super) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Removes a server transaction, its timers and its index entry; reports `Terminated`.
    pub(super) fn remove_server(&mut self, id: ServerTxId) {
        let Some(mut tx) = self.servers.remove(&id) else {
            return;
        };
        self.sh.timers.cancel_all(&mut tx.timers);
        if self.server_index.get(&tx.key) == Some(&id) {
            self.server_index.remove(&tx.key);
        }
        self.sh.emit(TransactionEvent::Terminated {
            id: TxId::Server(id),
        });
    }

    /// Removes a client transaction, its timers and its index entry; reports `Terminated`.
    pub(super) fn remove_client(&mut self, id: ClientTxId) {
        let Some(mut tx) = self.clients.remove(&id) else {
            return;
        };
        self.sh.timers.cancel_all(&mut tx.timers);
        if self.client_index.get(&tx.key) == Some(&id) {
            self.client_index.remove(&tx.key);
        }
        self.sh.emit(TransactionEvent::Terminated {
            id: TxId::Client(id),
        });
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::sip::message::Name;
    use crate::sip::method::Method;
    use crate::sip::transaction::test_util::*;
    use crate::sip::transaction::{ack_for_non_2xx, cancel_for, RequestOutcome, TransactionError};

    #[test]
    fn connection_close_fails_server_transactions_still_owing_a_final_response() {
        let mut h = Harness::new();
        let RequestOutcome::New(open) = h.request(invite("a"), tcp()) else {
            panic!()
        };
        let inv = invite("b");
        let RequestOutcome::New(done) = h.request(inv.clone(), tcp()) else {
            panic!()
        };
        h.respond(done, reply(&inv, 486, Some("t")));
        let RequestOutcome::New(other) = h.request(invite("c"), udp()) else {
            panic!()
        };
        h.take_events();
        h.close(ConnId(1));
        let expect = [
            TransactionEvent::TransportError {
                id: TxId::Server(open),
            },
            server_terminated(open),
            server_terminated(done),
        ];
        assert_eq!(h.take_events(), expect);
        assert_eq!(h.layer.len(), 1);
        let late = h.layer.respond(h.now, open, reply(&inv, 200, None));
        assert!(matches!(late, Err(TransactionError::UnknownTransaction(_))));
        h.respond(other, reply(&invite("c"), 486, None));
        h.run_all();
        h.assert_empty();
    }

    #[test]
    fn awaiting_counts_transactions_that_still_owe_or_wait_for_a_message() {
        let mut h = Harness::new();
        let inv = invite("a");
        let RequestOutcome::New(id) = h.request(inv.clone(), udp()) else {
            panic!()
        };
        assert_eq!(h.layer.awaiting(), 1, "no final response yet");
        h.respond(id, reply(&inv, 486, Some("t")));
        assert_eq!(h.layer.awaiting(), 1, "the 486 waits for its ACK");
        let ack = h.request(ack_for_non_2xx(&inv, &reply(&inv, 486, Some("t"))), udp());
        assert_eq!(ack, RequestOutcome::AckAbsorbed);
        assert_eq!(h.layer.awaiting(), 0, "Confirmed only absorbs ACKs");
        let opts = request(Method::Options, Some("z9hG4bKo1"), 1);
        let RequestOutcome::New(o) = h.request(opts.clone(), udp()) else {
            panic!()
        };
        h.respond(o, reply(&opts, 200, Some("t")));
        let bye = request(Method::Bye, Some("z9hG4bKb1"), 2);
        let b = h.send(bye.clone(), udp());
        assert_eq!(h.layer.awaiting(), 1, "the BYE waits for its answer");
        h.response(reply(&bye, 200, Some("t")));
        assert_eq!(h.layer.awaiting(), 0, "Timer J and K only absorb");
        assert_eq!(h.layer.len(), 3, "but they are still there: {b:?}");
        h.run_all();
        h.assert_empty();
    }

    #[test]
    fn a_late_driver_fires_each_due_timer_once_and_a_zero_t1_cannot_spin() {
        let mut h = Harness::new();
        h.layer = TransactionLayer::new(TimerConfig::default());
        h.send(invite("a"), udp());
        h.take_log();
        let late = h.now + s(100);
        h.layer.handle_timeout(late);
        let sent = std::iter::from_fn(|| h.layer.poll_transmit()).count();
        assert_eq!(sent, 1, "Timer A fired once, then Timer B ended it");
        assert!(h.layer.is_empty());

        let zero = TimerConfig {
            t1: Duration::ZERO,
            t2: Duration::ZERO,
            t4: Duration::ZERO,
        };
        let mut layer = TransactionLayer::new(zero);
        let id = layer.send_request(h.now, invite("z"), udp()).unwrap();
        layer.handle_timeout(h.now);
        assert_eq!(layer.poll_event(), Some(TransactionEvent::Timeout { id }));
        assert!(layer.is_empty());
    }

    #[test]
    fn seeds_make_tags_reproducible() {
        let tag_of = |seed| {
            let mut l = TransactionLayer::with_seed(TimerConfig::default(), seed);
            let _ = l.handle_request(Instant::now(), cancel_for(&invite("x")), udp());
            l.poll_transmit()
                .and_then(|t| t.msg.get(Name::To).map(str::to_owned))
        };
        assert_eq!(tag_of(1), tag_of(1));
        assert_ne!(tag_of(1), tag_of(2));
    }

    /// One of the ways a transaction can end, run at the harness's current time.
    fn scenario(h: &mut Harness, i: usize) -> usize {
        let branch = format!("z9hG4bK{i}");
        let mk = |method: Method, cseq| {
            let mut m = request(method, Some(&branch), cseq);
            m.set(Name::CallId, format!("call-{i}"));
            m
        };
        let inv = mk(Method::Invite, 1);
        let conn = Peer::tcp(addr(), ConnId(1000 + i as u64));
        let new = |h: &mut Harness, m: Message, p| match h.request(m, p) {
            RequestOutcome::New(id) => id,
            other => panic!("{other:?}"),
        };
        match i % 18 {
            0 => {
                let id = new(h, inv.clone(), udp());
                let busy = reply(&inv, 486, Some("t"));
                h.respond(id, busy.clone());
                let _ = h.request(inv.clone(), udp());
                let _ = h.request(ack_for_non_2xx(&inv, &busy), udp());
                1
            }
            1 => {
                let id = new(h, inv.clone(), udp());
                h.respond(id, reply(&inv, 486, Some("t")));
                1
            }
            2 => {
                let id = new(h, inv.clone(), udp());
                h.respond(id, reply(&inv, 180, Some("t")));
                let _ = h.request(inv.clone(), udp());
                h.respond(id, reply(&inv, 200, Some("t")));
                1
            }
            3 => {
                let _ = new(h, inv.clone(), udp());
                let _ = h.request(cancel_for(&inv), udp());
                let _ = h.request(cancel_for(&inv), udp());
                let _ = h.request(ack_for_non_2xx(&inv, &reply(&inv, 487, None)), udp());
                2
            }
            4 => {
                let id = new(h, inv.clone(), tcp());
                let busy = reply(&inv, 486, Some("t"));
                h.respond(id, busy.clone());
                let _ = h.request(ack_for_non_2xx(&inv, &busy), tcp());
                1
            }
            5 | 6 => {
                let opts = mk(Method::Options, 2);
                let peer = if i % 18 == 5 { udp() } else { tcp() };
                let id = new(h, opts.clone(), peer);
                let _ = h.request(opts.clone(), peer);
                h.respond(id, reply(&opts, 200, Some("t")));
                if peer == udp() {
                    assert_eq!(h.request(opts, peer), RequestOutcome::Retransmission);
                }
                1
            }
            7 => {
                let _ = new(h, inv, conn);
                h.layer.connection_closed(ConnId(1000 + i as u64));
                1
            }
            8 => {
                h.send(inv, udp());
                1
            }
            9 | 10 => {
                h.send(inv.clone(), udp());
                let code = if i % 18 == 9 { 486 } else { 200 };
                h.response(reply(&inv, code, Some("t")));
                h.response(reply(&inv, code, Some("t")));
                1
            }
            11 => {
                h.send(mk(Method::Bye, 2), udp());
                1
            }
            12 => {
                let bye = mk(Method::Bye, 2);
                h.send(bye.clone(), udp());
                h.response(reply(&bye, 200, Some("t")));
                1
            }
            13 => {
                h.send(inv.clone(), tcp());
                h.response(reply(&inv, 486, Some("t")));
                1
            }
            14 => {
                h.send(inv, conn);
                h.layer.connection_closed(ConnId(1000 + i as u64));
                1
            }
            15 => {
                let _ = h.request(cancel_for(&inv), udp());
                1
            }
            16 => {
                h.send(inv.clone(), udp());
                h.response(reply(&inv, 180, Some("t")));
                let cancel = cancel_for(&inv);
                h.send(cancel.clone(), udp());
                h.response(reply(&cancel, 200, Some("t")));
                h.response(reply(&inv, 487, Some("t")));
                2
            }
            _ => {
                let mut old = inv.clone();
                old.set(Name::Via, "SIP/2.0/UDP 127.0.0.1:5070");
                let id = new(h, old.clone(), udp());
                let busy = reply(&old, 486, Some("t"));
                h.respond(id, busy.clone());
                let _ = h.request(old.clone(), udp());
                assert_eq!(
                    h.request(ack_for_non_2xx(&old, &busy), udp()),
                    RequestOutcome::AckAbsorbed
                );
                1
            }
        }
    }

    #[test]
    fn a_thousand_transactions_ending_every_way_leave_the_tables_empty() {
        let mut h = Harness::new();
        let mut rng = fastrand::Rng::with_seed(42);
        let mut created = 0;
        for i in 0..1000 {
            let next = h.elapsed() + ms(rng.u64(0..50));
            h.run_until(next);
            created += scenario(&mut h, i);
        }
        assert!(h.layer.len() > 100, "many live at once");
        h.run_all();
        h.assert_empty();
        assert_eq!(h.layer.sh.timers.len(), 0);
        let mut ends: HashMap<TxId, usize> = HashMap::new();
        let (mut timeouts, mut ack_timeouts, mut errors) = (0, 0, 0);
        for e in h.take_events() {
            match e {
                TransactionEvent::Terminated { id } => *ends.entry(id).or_default() += 1,
                TransactionEvent::Timeout { .. } => timeouts += 1,
                TransactionEvent::AckTimeout { .. } => ack_timeouts += 1,
                TransactionEvent::TransportError { .. } => errors += 1,
                _ => {}
            }
        }
        assert_eq!(ends.len(), created, "every transaction terminated");
        assert!(ends.values().all(|n| *n == 1), "exactly once");
        let per = |k: usize| (0..1000).filter(|i| i % 18 == k).count();
        assert_eq!(timeouts, per(8) + per(11), "Timers B and F");
        assert_eq!(ack_timeouts, per(1), "Timer H");
        assert_eq!(errors, per(7) + per(14));
    }
}
