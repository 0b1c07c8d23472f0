//! Test harness: a fake clock that steps from deadline to deadline, a log of what was sent
//! and when, and builders for the messages of the scenarios.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::sip::message::{Message, Name};
use crate::sip::method::Method;
use crate::sip::peer::{ConnId, Peer, Transmit};

use super::*;

/// Where the remote party sits.
pub(super) fn addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 5070))
}

/// The remote party over UDP.
pub(super) fn udp() -> Peer {
    Peer::udp(addr())
}

/// The remote party over TCP connection 1.
pub(super) fn tcp() -> Peer {
    Peer::tcp(addr(), ConnId(1))
}

/// Milliseconds.
pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Seconds.
pub(super) fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A request from 127.0.0.1:5070 with the given top Via branch (`None`: RFC 2543, no branch).
pub(super) fn request(method: Method, branch: Option<&str>, cseq: u32) -> Message {
    let mut m = Message::request(method.clone(), "sip:bob@127.0.0.1:5060");
    let via = match branch {
        Some(b) => format!("SIP/2.0/UDP 127.0.0.1:5070;branch={b}"),
        None => "SIP/2.0/UDP 127.0.0.1:5070".to_owned(),
    };
    m.push(Name::Via, via);
    m.push(Name::MaxForwards, "70");
    m.push(Name::From, "\"Alice\" <sip:alice@127.0.0.1>;tag=alice1");
    m.push(Name::To, "<sip:bob@127.0.0.1>");
    m.push(Name::CallId, "call-1@127.0.0.1");
    m.push(Name::CSeq, format!("{cseq} {method}"));
    m.push(Name::Contact, "<sip:alice@127.0.0.1:5070>");
    m
}

/// An RFC 3261 INVITE with branch `z9hG4bK<tail>`.
pub(super) fn invite(tail: &str) -> Message {
    request(Method::Invite, Some(&format!("z9hG4bK{tail}")), 1)
}

/// An ACK as the remote UAC sends it for a non-2xx: same branch, To tag of the response.
pub(super) fn ack(inv: &Message, resp: &Message) -> Message {
    ack_for_non_2xx(inv, resp)
}

/// A response to `req` as the far end would build it.
pub(super) fn reply(req: &Message, code: u16, to_tag: Option<&str>) -> Message {
    let reason = match code {
        100 => "Trying",
        180 => "Ringing",
        200 => "OK",
        486 => "Busy Here",
        487 => "Request Terminated",
        _ => "Whatever",
    };
    response_for(req, code, reason, to_tag)
}

/// A short name for a sent message: the method, or the status code.
pub(super) fn label(m: &Message) -> String {
    match (m.method(), m.status()) {
        (Some(method), _) => method.to_string(),
        (_, Some(code)) => code.to_string(),
        _ => "?".to_owned(),
    }
}

/// A layer plus a fake clock and everything it produced.
pub(super) struct Harness {
    pub(super) layer: TransactionLayer,
    base: Instant,
    pub(super) now: Instant,
    pub(super) sent: Vec<(Duration, Transmit)>,
    pub(super) events: Vec<TransactionEvent>,
}

impl Harness {
    pub(super) fn new() -> Self {
        let base = Instant::now();
        Harness {
            layer: TransactionLayer::with_seed(TimerConfig::default(), 7),
            base,
            now: base,
            sent: Vec::new(),
            events: Vec::new(),
        }
    }

    /// The fake time since the start.
    pub(super) fn elapsed(&self) -> Duration {
        self.now - self.base
    }

    /// Fires every timer up to `t` after the start, in deadline order, and stops there.
    pub(super) fn run_until(&mut self, t: Duration) {
        let end = self.base + t;
        while let Some(deadline) = self.layer.poll_timeout().filter(|d| *d <= end) {
            self.now = self.now.max(deadline);
            self.layer.handle_timeout(self.now);
            self.drain();
        }
        self.now = self.now.max(end);
    }

    /// Fires timers until none is left.
    pub(super) fn run_all(&mut self) {
        for _ in 0..1_000_000 {
            let Some(deadline) = self.layer.poll_timeout() else {
                return;
            };
            self.now = self.now.max(deadline);
            self.layer.handle_timeout(self.now);
            self.drain();
        }
        panic!("timers never stopped");
    }

    fn drain(&mut self) {
        while let Some(t) = self.layer.poll_transmit() {
            self.sent.push((self.now - self.base, t));
        }
        while let Some(e) = self.layer.poll_event() {
            self.events.push(e);
        }
    }

    pub(super) fn request(&mut self, req: Message, from: Peer) -> RequestOutcome {
        let out = self.layer.handle_request(self.now, req, from);
        self.drain();
        out
    }

    pub(super) fn respond(&mut self, id: ServerTxId, resp: Message) {
        let result = self.layer.respond(self.now, id, resp);
        self.drain();
        result.unwrap();
    }

    pub(super) fn response(&mut self, resp: Message) -> Option<ClientTxId> {
        let out = self.layer.handle_response(self.now, resp);
        self.drain();
        out
    }

    pub(super) fn send(&mut self, req: Message, to: Peer) -> ClientTxId {
        let id = self.layer.send_request(self.now, req, to).unwrap();
        self.drain();
        id
    }

    pub(super) fn close(&mut self, conn: ConnId) {
        self.layer.connection_closed(conn);
        self.drain();
    }

    /// What was sent so far, as (time, label), and forgets it.
    pub(super) fn take_log(&mut self) -> Vec<(Duration, String)> {
        self.sent
            .drain(..)
            .map(|(t, m)| (t, label(&m.msg)))
            .collect()
    }

    /// The messages sent so far, and forgets them.
    pub(super) fn take_sent(&mut self) -> Vec<Message> {
        self.sent.drain(..).map(|(_, m)| m.msg).collect()
    }

    pub(super) fn take_events(&mut self) -> Vec<TransactionEvent> {
        std::mem::take(&mut self.events)
    }

    /// Nothing live, no timer armed.
    pub(super) fn assert_empty(&self) {
        assert_eq!(self.layer.len(), 0, "live transactions left");
        assert!(self.layer.is_empty());
        assert_eq!(self.layer.poll_timeout(), None, "timers left armed");
        assert!(self.layer.server_index.is_empty() && self.layer.client_index.is_empty());
    }
}

/// `(time, label)` pairs, for comparing against [`Harness::take_log`].
pub(super) fn log(entries: &[(Duration, &str)]) -> Vec<(Duration, String)> {
    entries.iter().map(|(t, l)| (*t, (*l).to_owned())).collect()
}

/// A `Terminated` event for a server transaction.
pub(super) fn server_terminated(id: ServerTxId) -> TransactionEvent {
    TransactionEvent::Terminated {
        id: TxId::Server(id),
    }
}

/// A `Terminated` event for a client transaction.
pub(super) fn client_terminated(id: ClientTxId) -> TransactionEvent {
    TransactionEvent::Terminated {
        id: TxId::Client(id),
    }
}
