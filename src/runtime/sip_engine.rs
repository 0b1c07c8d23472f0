//! The engine loop: one task owns the [`Endpoint`], takes inputs from the socket tasks,
//! sleeps until the next protocol deadline and writes what the endpoint wants sent.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::inboxes::Inboxes;
use super::input::Input;
use crate::call::ivr::menu::{RefusalKind, RegisteredSummary};
use crate::call::{CallEvent, CallKey};
use crate::callback::engine::TargetView;
use crate::callback::service::{Service, ServiceError};
use crate::config::Config;
use crate::endpoint::Endpoint;
use crate::media::relay::MediaEvent;
use crate::metrics::{Counters, Gauge, GaugePart, Kind, LocalCounters};
use crate::sip::{ConnId, Peer, Transport};
use chrono::{DateTime, Utc};

/// Most inputs handled before the engine looks at its timers again, so a burst cannot
/// starve retransmissions.
const BATCH: usize = 256;

/// How long a dialler report or call record is offered again while the callback engine is
/// unavailable (no node leads during a takeover, or the store is down), and how often.
const REPORT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);
const REPORT_RETRY: std::time::Duration = std::time::Duration::from_millis(250);

/// Runs `op` again while it answers [`ServiceError::Unavailable`], for at most
/// [`REPORT_PATIENCE`]: what a call reports is kept through a leader's takeover. (Each is
/// idempotent: a record is an upsert, a second attempt end is refused as not in progress.)
async fn patiently<T, Fut>(mut op: impl FnMut() -> Fut) -> Result<T, ServiceError>
where
    Fut: Future<Output = Result<T, ServiceError>>,
{
    let deadline = Instant::now() + REPORT_PATIENCE;
    loop {
        match op().await {
            Err(ServiceError::Unavailable) if Instant::now() < deadline => {
                tokio::time::sleep(REPORT_RETRY).await
            }
            r => return r,
        }
    }
}

pub(super) struct SipEngine {
    endpoint: Endpoint,
    /// The SIP UDP sockets with their local addresses (read once: `getsockname` per send
    /// showed in profiles).
    udp: Vec<(Arc<UdpSocket>, Option<std::net::SocketAddr>)>,
    conns: HashMap<ConnId, mpsc::Sender<Bytes>>,
    /// Outbound connections by destination, reused for every message to it.
    outbound: HashMap<(Transport, std::net::SocketAddr), ConnId>,
    /// Outbound TLS: the connector, and the server names of addresses resolved from
    /// host names (the certificate must carry that name; an address dialled as an IP
    /// literal must be in the certificate's IP addresses).
    tls: Option<TlsOut>,
    inputs: Inboxes,
    tcp_idle: std::time::Duration,
    media_events: mpsc::Receiver<MediaEvent>,
    /// This engine's counter handles (spawned tasks count through `counters.shared()`).
    counters: LocalCounters,
    /// This engine's shares of the calls and transactions gauges.
    calls_active: GaugePart,
    transactions_active: GaugePart,
    /// The callback engine inbound calls ask for views and registrations.
    callbacks: Service,
    /// Its answers, back into this loop.
    replies_tx: mpsc::UnboundedSender<Reply>,
    replies: mpsc::UnboundedReceiver<Reply>,
    /// Callbacks the engine released to this SIP engine for dialling.
    launches: mpsc::UnboundedReceiver<super::dialler::Placed>,
    /// How long calls in progress may go on at shutdown (`calls.drain_secs`).
    drain_calls: std::time::Duration,
    /// Dialler reports and call records on their way to the callback engine (possibly a
    /// leader on another node): the engine waits for them before it stops.
    reports: tokio::task::JoinSet<()>,
}

/// The callback engine's answer to a request of an inbound call.
enum Reply {
    /// The call target's view (`None`: the engine did not answer).
    View {
        call: CallKey,
        view: Option<(DateTime<Utc>, TargetView)>,
    },
    /// A registration's outcome.
    Registered {
        call: CallKey,
        result: Result<RegisteredSummary, RefusalKind>,
    },
}

impl SipEngine {
    /// The engine driving `endpoint`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        cfg: &Config,
        counters: Counters,
        endpoint: Endpoint,
        udp: Vec<Arc<UdpSocket>>,
        inputs: Inboxes,
        media_events: mpsc::Receiver<MediaEvent>,
        callbacks: Service,
        launches: mpsc::UnboundedReceiver<super::dialler::Placed>,
        tls: Option<TlsOut>,
    ) -> Self {
        let (replies_tx, replies) = mpsc::unbounded_channel();
        SipEngine {
            drain_calls: cfg.calls.drain,
            launches,
            callbacks,
            replies_tx,
            replies,
            endpoint,
            udp: udp
                .into_iter()
                .map(|s| {
                    let local = s.local_addr().ok();
                    (s, local)
                })
                .collect(),
            conns: HashMap::new(),
            outbound: HashMap::new(),
            tls,
            inputs,
            tcp_idle: cfg.sip.tcp_idle_timeout,
            media_events,
            calls_active: counters.gauge_part(Gauge::CallsActive),
            transactions_active: counters.gauge_part(Gauge::TransactionsActive),
            counters: LocalCounters::new(counters),
            reports: tokio::task::JoinSet::new(),
        }
    }

    /// Sends a report to the callback engine in a task of its own, tracked until done.
    fn report(&mut self, fut: impl Future<Output = ()> + Send + 'static) {
        while self.reports.try_join_next().is_some() {}
        self.reports.spawn(fut);
    }

    pub(super) async fn run(
        mut self,
        mut rx: mpsc::Receiver<Input>,
        stop: impl Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        loop {
            let deadline = self.endpoint.poll_timeout();
            tokio::select! {
                input = rx.recv() => {
                    let Some(input) = input else { break };
                    self.handle(input).await;
                    for _ in 0..BATCH {
                        match rx.try_recv() {
                            Ok(input) => self.handle(input).await,
                            Err(_) => break,
                        }
                    }
                    self.gauges();
                }
                _ = sleep_until(deadline) => {
                    self.endpoint.handle_timeout(Instant::now().into_std());
                    self.flush().await;
                    self.gauges();
                }
                Some(ev) = self.media_events.recv() => {
                    self.media_event(ev);
                    self.flush().await;
                    self.gauges();
                }
                Some(p) = self.launches.recv() => {
                    self.endpoint.dial(Instant::now().into_std(), p.launch, p.customer, p.agent);
                    self.flush().await;
                    self.gauges();
                }
                Some(reply) = self.replies.recv() => {
                    self.reply(reply);
                    self.flush().await;
                    self.gauges();
                }
                _ = &mut stop => break,
            }
        }
        self.drain(rx).await;
    }

    /// Lets live transactions finish (retransmissions, ACK waits) up to the deadline.
    async fn drain(&mut self, mut rx: mpsc::Receiver<Input>) {
        if !self.drain_calls.is_zero() && self.endpoint.calls() > 0 {
            let until = Instant::now() + self.drain_calls;
            tracing::info!(
                calls = self.endpoint.calls(),
                secs = self.drain_calls.as_secs(),
                "draining: calls in progress may finish"
            );
            self.endpoint.stop_accepting();
            while self.endpoint.calls() > 0 && Instant::now() < until {
                let deadline = self
                    .endpoint
                    .poll_timeout()
                    .map(|d| d.min(until.into_std()))
                    .or(Some(until.into_std()));
                tokio::select! {
                    Some(input) = rx.recv() => self.handle(input).await,
                    _ = sleep_until(deadline) => {
                        self.endpoint.handle_timeout(Instant::now().into_std());
                        self.flush().await;
                    }
                    Some(ev) = self.media_events.recv() => {
                        self.media_event(ev);
                        self.flush().await;
                    }
                    Some(reply) = self.replies.recv() => {
                        self.reply(reply);
                        self.flush().await;
                    }
                }
                self.gauges();
            }
        }
        let until = Instant::now() + super::DRAIN_DEADLINE;
        tracing::info!(
            calls = self.endpoint.calls(),
            transactions = self.endpoint.transactions(),
            "draining: ending calls"
        );
        self.endpoint.shut_down(Instant::now().into_std());
        self.flush().await;
        self.gauges();
        while (self.endpoint.transactions_awaiting() > 0 || self.endpoint.calls() > 0)
            && Instant::now() < until
        {
            let deadline = self
                .endpoint
                .poll_timeout()
                .map(|d| d.min(until.into_std()))
                .or(Some(until.into_std()));
            tokio::select! {
                Some(input) = rx.recv() => self.handle(input).await,
                _ = sleep_until(deadline) => {
                    self.endpoint.handle_timeout(Instant::now().into_std());
                    self.flush().await;
                }
            }
            self.gauges();
        }
        // What the calls reported reaches the callback engine before this node stops.
        let pending = self.reports.len();
        if pending > 0 {
            let grace = super::DRAIN_DEADLINE;
            let all = async { while self.reports.join_next().await.is_some() {} };
            if tokio::time::timeout(grace, all).await.is_err() {
                tracing::warn!(
                    pending,
                    "reports to the callback engine not done at shutdown"
                );
            }
        }
    }

    /// A media timeout ends its call; released media adds its packet, byte and loss counts
    /// and its jitter (only for a side that sent RTP: silence is not zero jitter).
    fn media_event(&mut self, ev: MediaEvent) {
        match ev {
            MediaEvent::Timeout { id, side, .. } => {
                self.endpoint
                    .media_timeout(Instant::now().into_std(), id, side)
            }
            MediaEvent::Digit { .. } | MediaEvent::PlayFinished { .. } => {
                self.endpoint.local_media(Instant::now().into_std(), ev)
            }
            MediaEvent::Released { stats, .. } => {
                for (from, s) in [("caller", &stats.caller), ("callee", &stats.callee)] {
                    self.counters.add(Kind::RtpRelayed, from, s.relayed);
                    self.counters.add(Kind::RtpBytes, from, s.bytes);
                    self.counters.add(Kind::RtpLost, from, s.lost);
                    if s.packets > 1 {
                        self.counters
                            .shared()
                            .observe_jitter(from, s.jitter_duration());
                    }
                }
            }
        }
    }

    /// Takes the call events (counted by outcome) and publishes the gauges a scrape shows.
    fn gauges(&mut self) {
        while let Some(ev) = self.endpoint.poll_call_event() {
            match ev {
                crate::call::CallEvent::Answered { .. } => {
                    self.counters.inc(Kind::Calls, "answered")
                }
                crate::call::CallEvent::Ended { reason, .. } => {
                    self.counters.inc(Kind::Calls, reason.label())
                }
                ev => self.callback_request(ev),
            }
        }
        self.calls_active.set(self.endpoint.calls() as i64);
        self.transactions_active
            .set(self.endpoint.transactions() as i64);
    }

    /// Hands a call's request to the callback engine; the answer comes back through
    /// `replies`. Records are kept without an answer (a failure is logged and counted).
    fn callback_request(&mut self, ev: CallEvent) {
        let svc = self.callbacks.clone();
        let tx = self.replies_tx.clone();
        match ev {
            CallEvent::ViewWanted { call, call_target } => {
                tokio::spawn(async move {
                    let view = match svc.views(vec![call_target]).await {
                        Ok((at, mut views)) => views.pop().map(|v| (at, v)),
                        Err(e) => {
                            tracing::warn!(error = %e, "no call target view for an inbound call");
                            None
                        }
                    };
                    let _ = tx.send(Reply::View { call, view });
                });
            }
            CallEvent::Register { call, request } => {
                let counters = self.counters.shared().clone();
                tokio::spawn(async move {
                    let result = match svc.register(*request).await {
                        Ok(Ok(r)) => Ok(RegisteredSummary::from(&r)),
                        Ok(Err(refused)) => Err(RefusalKind::from(&refused)),
                        Err(e) => {
                            tracing::warn!(error = %e, "registration of an inbound caller failed");
                            Err(RefusalKind::Unavailable)
                        }
                    };
                    let outcome = if result.is_ok() {
                        "registered"
                    } else {
                        "refused"
                    };
                    counters.inc(Kind::Inbound, outcome);
                    let _ = tx.send(Reply::Registered { call, result });
                });
            }
            CallEvent::Record(entry) => {
                let counters = self.counters.shared().clone();
                let outcome = serde_json::to_value(entry.record.outcome)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_ascii_lowercase))
                    .unwrap_or_else(|| "unknown".into());
                self.report(async move {
                    match patiently(|| svc.record((*entry).clone())).await {
                        Ok(()) => counters.inc(Kind::Inbound, &outcome),
                        Err(e) => {
                            counters.inc(Kind::Inbound, "record_lost");
                            tracing::error!(error = %e, "call record not kept");
                        }
                    }
                });
            }
            CallEvent::AgentConnected { callback_id } => {
                self.report(async move {
                    match patiently(|| svc.agent_connected(&callback_id)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::warn!(error = %e, "agent connected: not taken"),
                        Err(e) => tracing::warn!(error = %e, "agent connected: engine down"),
                    }
                });
            }
            CallEvent::AttemptEnded {
                callback_id,
                result,
                report,
            } => {
                let counters = self.counters.shared().clone();
                counters.inc(Kind::Attempts, result.as_str());
                self.report(async move {
                    match patiently(|| svc.attempt_report(&callback_id, result, (*report).clone()))
                        .await
                    {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::warn!(error = %e, "attempt end not taken"),
                        Err(e) => {
                            // The engine restarts the attempt as an error from the store.
                            tracing::error!(error = %e, "attempt end lost with the engine")
                        }
                    }
                });
            }
            CallEvent::Answered { .. } | CallEvent::Ended { .. } => {}
        }
    }

    fn reply(&mut self, reply: Reply) {
        let now = Instant::now().into_std();
        match reply {
            Reply::View { call, view } => self.endpoint.view_ready(now, call, view),
            Reply::Registered { call, result } => {
                self.endpoint.registration_done(now, call, result)
            }
        }
    }

    async fn handle(&mut self, input: Input) {
        let now = Instant::now().into_std();
        match input {
            Input::Message { bytes, from } => self.endpoint.handle_message(now, &bytes, from),
            Input::Opened { conn, writer } => {
                self.conns.insert(conn, writer);
            }
            Input::Closed { conn } => {
                self.conns.remove(&conn);
                self.outbound.retain(|_, c| *c != conn);
                self.endpoint.connection_closed(now, conn);
            }
            Input::Unreachable { to } => self.endpoint.destination_failed(now, to),
        }
        self.flush().await;
    }

    async fn flush(&mut self) {
        while let Some(t) = self.endpoint.poll_transmit() {
            let bytes = Bytes::from(t.msg.to_bytes());
            match t.to.transport {
                Transport::Udp => send_udp(&self.udp, &mut self.counters, bytes, t.to).await,
                Transport::Tcp | Transport::Tls => self.send_stream(bytes, t.to),
            }
        }
    }

    /// Down the peer's TCP or TLS connection, else the one open to its address, else a
    /// new one (TLS verified against the configured roots, never plain instead).
    fn send_stream(&mut self, bytes: Bytes, to: Peer) {
        let key = (to.transport, to.addr);
        let conn = match to.conn.or_else(|| self.outbound.get(&key).copied()) {
            Some(c) => c,
            None => {
                let tls = match (to.transport, &self.tls) {
                    (Transport::Tls, Some(out)) => Some(out.client_for(to.addr)),
                    (Transport::Tls, None) => {
                        tracing::warn!(dst = %to.addr, "no outbound TLS configured: message dropped");
                        self.counters.inc(Kind::Dropped, "tls_unavailable");
                        return;
                    }
                    _ => None,
                };
                let (conn, writer) = super::tcp::connect(
                    to,
                    tls,
                    self.inputs.clone(),
                    self.tcp_idle,
                    self.counters.shared().clone(),
                );
                self.conns.insert(conn, writer);
                self.outbound.insert(key, conn);
                conn
            }
        };
        let writer = self.conns.get(&conn);
        match writer.map(|w| w.try_send(bytes)) {
            Some(Ok(())) => {}
            _ => {
                tracing::debug!(dst = %to.addr, "connection gone or full; message dropped");
                self.counters.inc(Kind::Dropped, "tcp_unavailable");
            }
        }
    }
}

/// Outbound TLS for the SIP engines.
#[derive(Clone)]
pub(super) struct TlsOut {
    /// The client configuration (roots, versions, holdless's own certificate).
    pub connector: tokio_rustls::TlsConnector,
    /// Server names by address, recorded when a host name is resolved.
    pub names: TlsNames,
}

/// Host names by the addresses they resolved to, for TLS verification and SNI.
pub(super) type TlsNames = Arc<std::sync::RwLock<HashMap<std::net::SocketAddr, String>>>;

impl TlsOut {
    fn client_for(&self, addr: std::net::SocketAddr) -> super::tcp::TlsClient {
        use rustls::pki_types::ServerName;
        let known = self
            .names
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&addr)
            .cloned();
        let name = known
            .and_then(|n| ServerName::try_from(n).ok())
            .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()));
        (self.connector.clone(), name)
    }
}

async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

/// Sends a datagram from the socket the request came in on (else one of the same family).
async fn send_udp(
    udp: &[(Arc<UdpSocket>, Option<std::net::SocketAddr>)],
    counters: &mut LocalCounters,
    bytes: Bytes,
    to: Peer,
) {
    let sock = udp
        .iter()
        .find(|(_, local)| to.local.is_some() && *local == to.local)
        .or_else(|| {
            udp.iter()
                .find(|(_, local)| local.is_some_and(|a| a.is_ipv4() == to.addr.is_ipv4()))
        })
        .or(udp.first())
        .map(|(s, _)| s);
    let Some(sock) = sock else {
        counters.inc(Kind::Dropped, "no_udp_socket");
        return;
    };
    if let Err(e) = sock.send_to(&bytes, to.addr).await {
        tracing::debug!(dst = %to.addr, error = %e, "UDP send failed");
        counters.inc(Kind::Dropped, "send_error");
    }
}
