//! The RTP shell: [`RtpRuntime`] implements [`MediaControl`] by wrapping the sans-IO
//! [`MediaController`] (ports, offer/answer) and giving every call one task that owns the
//! call's four UDP sockets (RTP and RTCP facing each side) and its [`Relay`].
//!
//! The call tasks run on dedicated media threads, each a current-thread tokio runtime, calls
//! spread round robin: measured on this 2-vCPU box, a current-thread runtime relays a packet
//! ~2–3 µs cheaper than tokio's work-stealing scheduler, and signalling load cannot delay
//! media (rtpengine's media threads work the same way).
//!
//! The hot path stays inside that task: a readable socket is drained with non-blocking
//! batched receives (`recvmmsg`, see [`super::recv_batch`]), each datagram goes through the
//! relay's decision and is sent straight from the socket facing the other side. No allocation, channel hop or shared lock per packet; the
//! relay parameters change only on a completed offer/answer, through the call's command
//! channel. Media timeouts and the final statistics go to the engine as [`MediaEvent`]s.
//!
//! A side answered locally ([`MediaControl::answer_locally`]) gets holdless's own endpoint,
//! a [`LocalMedia`] built by the controller and moved into the call's task: that side's RTP
//! and RTCP go to it instead of the relay (DTMF detectors), its prompt frames go out on the
//! 20 ms deadlines of its player from holdless's socket facing the side, and its digits and
//! finished clips go to the engine like timeouts (waiting for room, never dropped). When the
//! side is joined (the answer to the onward offer), the local media is dropped and its stream
//! handed to the relay's [`Continuity`](crate::media::relay::Continuity), so the side's RTP
//! stream carries on. A bridged call pays one untaken branch per packet for this.

use std::collections::{HashMap, VecDeque};
use std::future::{poll_fn, Future};
use std::io;
use std::net::{SocketAddr, UdpSocket as StdSocket};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Sleep;

use super::recv_batch::{recv_batch, Received, BATCH};
use crate::acl::Egress;
use crate::media::local::{call_stats, merge_stats, LocalMedia, FRAME_WIRE_MAX};
use crate::media::prompt::{Clip, PlayerEvent};
use crate::media::relay::{Relay, RelayParams, Verdict};
use crate::media::{
    CallStats, MediaConfig, MediaControl, MediaController, MediaError, MediaEvent, MediaId, Side,
    StreamStats,
};

/// Depth of the media event queue to the engine. Events are rare (a timeout or a release per
/// call, a digit or a finished prompt now and then); 1024 absorbs a burst of call ends. A full
/// queue drops `Released` statistics (counted in [`RtpCounters::events_dropped`]); timeouts,
/// digits and finished prompts wait for room.
pub const EVENT_QUEUE: usize = 1024;

/// Largest datagram relayed. RTP for G.711 is ~172–332 bytes; anything that fills the
/// buffer may have been truncated and is dropped.
pub const MAX_DATAGRAM: usize = 2048;

/// Datagrams taken from one socket before the task looks at the others, so one busy socket
/// cannot starve its neighbours.
const BURST: usize = 32;

/// Datagrams a call task handles before it yields to the scheduler, so one flooded call
/// cannot starve the others on its worker thread.
const YIELD_AFTER: usize = 256;

/// An empty receive slot.
const NOTHING: Received = Received {
    len: 0,
    from: None,
    truncated: false,
};

/// Port pairs tried when a bind fails (a port of the range taken by another process).
const BIND_ATTEMPTS: usize = 8;

/// Media threads when the configuration leaves it to holdless: one per CPU.
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Totals over every call, updated once per wake-up of a call task (not per packet).
#[derive(Debug, Default)]
pub struct RtpCounters {
    /// Datagrams received on media ports.
    pub received: AtomicU64,
    /// Datagrams forwarded.
    pub relayed: AtomicU64,
    /// Datagrams dropped (any reason; per-call reasons are in the call's statistics).
    pub dropped: AtomicU64,
    /// `Released` events lost to a full event queue.
    pub events_dropped: AtomicU64,
    /// Call tasks whose sockets are open (four media ports each): back to 0 when every
    /// call has ended.
    pub sessions: AtomicI64,
}

/// What the runtime tells a call's task.
enum Command {
    /// A completed offer/answer: new relay parameters; a local side is joined.
    Update(Box<RelayParams>),
    /// `side` is answered locally: this media takes its packets.
    Local { side: Side, media: Box<LocalMedia> },
    /// Play a clip to a local side.
    Play { side: Side, clip: Clip },
    /// Stop what plays to a local side.
    Stop { side: Side },
}

/// Media for the running server: the controller plus one relay task per call.
#[derive(Debug)]
pub struct RtpRuntime {
    ctl: MediaController,
    calls: HashMap<MediaId, mpsc::UnboundedSender<Command>>,
    events_tx: mpsc::Sender<MediaEvent>,
    events_rx: mpsc::Receiver<MediaEvent>,
    counters: Arc<RtpCounters>,
    /// One queue per media thread, taking new calls.
    threads: MediaThreads,
    next_thread: usize,
}

/// Starts a media thread: a current-thread runtime running the call tasks it is handed.
fn media_thread(n: usize) -> io::Result<mpsc::UnboundedSender<Box<CallTask>>> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Box<CallTask>>();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name(format!("holdless-media-{n}"))
        .spawn(move || {
            rt.block_on(async move {
                while let Some(task) = rx.recv().await {
                    tokio::spawn(task.run());
                }
            })
        })?;
    Ok(tx)
}

/// The media threads, each a current-thread runtime running the call tasks it is handed;
/// cloned into every SIP engine's [`RtpRuntime`].
#[derive(Debug, Clone)]
pub struct MediaThreads(Vec<mpsc::UnboundedSender<Box<CallTask>>>);

impl MediaThreads {
    /// Starts `cfg.threads` media threads (0: one per CPU).
    pub fn start(cfg: &MediaConfig) -> Self {
        let wanted = if cfg.threads == 0 {
            default_threads()
        } else {
            cfg.threads
        };
        let threads = (0..wanted)
            .filter_map(|n| {
                media_thread(n)
                    .map_err(|e| tracing::error!(error = %e, "cannot start a media thread"))
                    .ok()
            })
            .collect();
        MediaThreads(threads)
    }
}

impl RtpRuntime {
    /// A runtime with its own event queue (read it with [`RtpRuntime::events`]).
    pub fn new(cfg: MediaConfig, egress: Egress) -> Self {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        Self::build(cfg, egress, tx, rx)
    }

    /// A runtime that reports to an existing queue (the engine's); [`RtpRuntime::events`]
    /// then yields nothing.
    pub fn with_event_sender(
        cfg: MediaConfig,
        egress: Egress,
        events: mpsc::Sender<MediaEvent>,
    ) -> Self {
        let (_, rx) = mpsc::channel(1);
        Self::build(cfg, egress, events, rx)
    }

    fn build(
        cfg: MediaConfig,
        egress: Egress,
        events_tx: mpsc::Sender<MediaEvent>,
        events_rx: mpsc::Receiver<MediaEvent>,
    ) -> Self {
        let threads = MediaThreads::start(&cfg);
        Self::assemble(cfg, egress, events_tx, events_rx, threads, Arc::default())
    }

    /// A runtime for one of several SIP engines: its own port range (in `cfg`) and event
    /// queue, the media threads and totals shared with the others.
    pub fn sharing(
        cfg: MediaConfig,
        egress: Egress,
        threads: MediaThreads,
        counters: Arc<RtpCounters>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        Self::assemble(cfg, egress, tx, rx, threads, counters)
    }

    fn assemble(
        cfg: MediaConfig,
        egress: Egress,
        events_tx: mpsc::Sender<MediaEvent>,
        events_rx: mpsc::Receiver<MediaEvent>,
        threads: MediaThreads,
        counters: Arc<RtpCounters>,
    ) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x401d_1e55);
        RtpRuntime {
            ctl: MediaController::with_seed(cfg, egress, seed),
            calls: HashMap::new(),
            events_tx,
            events_rx,
            counters,
            threads,
            next_thread: 0,
        }
    }

    /// Media timeouts and released calls' statistics.
    pub fn events(&mut self) -> &mut mpsc::Receiver<MediaEvent> {
        &mut self.events_rx
    }

    /// Takes the event queue (for an engine that owns the runtime behind `dyn MediaControl`);
    /// [`RtpRuntime::events`] then yields nothing.
    pub fn take_events(&mut self) -> mpsc::Receiver<MediaEvent> {
        std::mem::replace(&mut self.events_rx, mpsc::channel(1).1)
    }

    /// The sans-IO controller (ports, negotiation state).
    pub fn controller(&self) -> &MediaController {
        &self.ctl
    }

    /// Relay totals over every call.
    pub fn counters(&self) -> Arc<RtpCounters> {
        self.counters.clone()
    }

    /// Calls with media.
    pub fn active(&self) -> usize {
        self.ctl.active()
    }

    /// Ports in use (four a call).
    pub fn ports_in_use(&self) -> usize {
        self.ctl.ports_in_use()
    }

    /// holdless's RTP address facing `side` of a call.
    pub fn local_addr(&self, id: MediaId, side: Side) -> Option<SocketAddr> {
        self.ctl.local_addr(id, side)
    }

    /// Binds the call's four sockets: RTP and RTCP facing the caller, then the callee.
    fn bind(&self, id: MediaId) -> io::Result<[StdSocket; 4]> {
        let port = |side| {
            self.ctl
                .local_addr(id, side)
                .ok_or_else(|| io::Error::other("media session vanished"))
        };
        let (a, b) = (port(Side::Caller)?, port(Side::Callee)?);
        let rtcp = |mut s: SocketAddr| {
            s.set_port(s.port() + 1);
            s
        };
        Ok([bind(a)?, bind(rtcp(a))?, bind(b)?, bind(rtcp(b))?])
    }

    /// Hands the call to the next media thread.
    fn spawn(
        &mut self,
        now: Instant,
        id: MediaId,
        socks: [StdSocket; 4],
    ) -> Result<(), MediaError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = Box::new(CallTask {
            id,
            socks,
            relay: Relay::new(now, self.ctl.config(), self.ctl.egress().clone()),
            cmds: rx,
            events: self.events_tx.clone(),
            counters: self.counters.clone(),
        });
        let n = self.threads.0.len();
        let thread = self.threads.0.get(self.next_thread % n.max(1));
        self.next_thread = self.next_thread.wrapping_add(1);
        match thread.map(|t| t.send(task)) {
            Some(Ok(())) => {
                self.counters.sessions.fetch_add(1, Ordering::Relaxed);
                self.calls.insert(id, tx);
                Ok(())
            }
            _ => {
                tracing::error!("no media thread is running");
                Err(MediaError::PortsExhausted)
            }
        }
    }
}

/// Sends a datagram from a non-blocking socket straight away. tokio's `try_send_to` answers
/// WouldBlock until its reactor has seen the socket writable, which a call task that sends
/// before it first parks (a prompt frame already due when the task starts) never has: the
/// first frames of a stream, marker included, would be lost. The syscall itself never blocks.
fn send_now(sock: &UdpSocket, datagram: &[u8], to: SocketAddr) -> io::Result<usize> {
    match sock.try_send_to(datagram, to) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            socket2::SockRef::from(sock).send_to(datagram, &to.into())
        }
        other => other,
    }
}

fn bind(addr: SocketAddr) -> io::Result<StdSocket> {
    let s = StdSocket::bind(addr)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

impl RtpRuntime {
    fn command(&self, id: MediaId, cmd: Command) {
        if let Some(tx) = self.calls.get(&id) {
            // The task is gone only if it panicked; the call then simply has no media.
            let _ = tx.send(cmd);
        }
    }
}

impl MediaControl for RtpRuntime {
    fn create(&mut self, now: Instant) -> Result<MediaId, MediaError> {
        for _ in 0..BIND_ATTEMPTS {
            let id = self.ctl.create(now)?;
            match self.bind(id) {
                Ok(socks) => {
                    if let Err(e) = self.spawn(now, id, socks) {
                        self.ctl.release(id);
                        return Err(e);
                    }
                    return Ok(id);
                }
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                    tracing::debug!(error = %e, port = ?self.ctl.local_addr(id, Side::Caller),
                        "media port taken by another process, trying others");
                    self.ctl.release(id);
                }
                Err(e) => {
                    // Out of file descriptors or buffers: another port cannot help, and
                    // retrying would only flood the log. The call is refused (503).
                    tracing::warn!(error = %e, "cannot open media sockets; refusing the call");
                    self.ctl.release(id);
                    return Err(MediaError::PortsExhausted);
                }
            }
        }
        Err(MediaError::PortsExhausted)
    }

    fn offer(
        &mut self,
        now: Instant,
        id: MediaId,
        from: Side,
        sdp: &[u8],
    ) -> Result<Bytes, MediaError> {
        self.ctl.offer(now, id, from, sdp)
    }

    fn answer(
        &mut self,
        now: Instant,
        id: MediaId,
        from: Side,
        sdp: &[u8],
    ) -> Result<Bytes, MediaError> {
        let out = self.ctl.answer(now, id, from, sdp)?;
        if let Some(p) = self.ctl.relay_params(id) {
            self.command(id, Command::Update(Box::new(p.clone())));
        }
        Ok(out)
    }

    fn answer_locally(
        &mut self,
        now: Instant,
        id: MediaId,
        side: Side,
        sdp: &[u8],
    ) -> Result<Bytes, MediaError> {
        let out = self.ctl.answer_locally(now, id, side, sdp)?;
        if let Some(media) = self.ctl.take_local(id, side) {
            self.command(id, Command::Local { side, media });
        }
        Ok(out)
    }

    fn offer_locally(
        &mut self,
        now: Instant,
        id: MediaId,
        side: Side,
    ) -> Result<Bytes, MediaError> {
        self.ctl.offer_locally(now, id, side)
    }

    fn accept_local_answer(
        &mut self,
        now: Instant,
        id: MediaId,
        side: Side,
        sdp: &[u8],
    ) -> Result<(), MediaError> {
        self.ctl.accept_local_answer(now, id, side, sdp)?;
        if let Some(media) = self.ctl.take_local(id, side) {
            self.command(id, Command::Local { side, media });
        }
        Ok(())
    }

    fn offer_onward(&mut self, now: Instant, id: MediaId, from: Side) -> Result<Bytes, MediaError> {
        self.ctl.offer_onward(now, id, from)
    }

    fn play(&mut self, _now: Instant, id: MediaId, side: Side, clip: Clip) {
        self.command(id, Command::Play { side, clip });
    }

    fn stop_playing(&mut self, id: MediaId, side: Side) {
        self.command(id, Command::Stop { side });
    }

    fn secure(&mut self, id: MediaId, side: Side, policy: crate::media::srtp::SrtpPolicy) {
        self.ctl.secure(id, side, policy);
    }

    fn release(&mut self, id: MediaId) {
        // Dropping the command sender ends the task, which closes the sockets and reports
        // the final statistics.
        self.calls.remove(&id);
        self.ctl.release(id);
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Rtp,
    Rtcp,
}

/// Which socket is which: index → (the side it faces, RTP or RTCP).
const SOCKETS: [(Side, Kind); 4] = [
    (Side::Caller, Kind::Rtp),
    (Side::Caller, Kind::Rtcp),
    (Side::Callee, Kind::Rtp),
    (Side::Callee, Kind::Rtcp),
];

fn side_index(side: Side) -> usize {
    match side {
        Side::Caller => 0,
        Side::Callee => 1,
    }
}

fn socket_index(side: Side, kind: Kind) -> usize {
    match (side, kind) {
        (Side::Caller, Kind::Rtp) => 0,
        (Side::Caller, Kind::Rtcp) => 1,
        (Side::Callee, Kind::Rtp) => 2,
        (Side::Callee, Kind::Rtcp) => 3,
    }
}

enum Wake {
    Packets,
    Timer,
    Command(Option<Command>),
}

/// One call's relay: its sockets, its decisions, its clock.
struct CallTask {
    id: MediaId,
    /// Bound, non-blocking; registered with the media thread's runtime when the task starts.
    socks: [StdSocket; 4],
    relay: Relay,
    cmds: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<MediaEvent>,
    counters: Arc<RtpCounters>,
}

/// Per wake-up tallies, added to the shared counters once.
#[derive(Default)]
struct Tally {
    received: u64,
    relayed: u64,
    /// Taken by local media (neither relayed nor dropped).
    local: u64,
}

fn clock() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl CallTask {
    async fn run(self: Box<Self>) {
        let CallTask {
            id,
            socks,
            relay,
            cmds,
            events,
            counters,
        } = *self;
        let mut registered = Vec::with_capacity(4);
        for s in socks {
            match UdpSocket::from_std(s) {
                Ok(s) => registered.push(s),
                Err(e) => {
                    tracing::error!(error = %e, "cannot register media socket; call has no media");
                    return;
                }
            }
        }
        let Ok(socks) = <[UdpSocket; 4]>::try_from(registered) else {
            return;
        };
        Running {
            id,
            socks,
            relay,
            cmds,
            events,
            counters,
            local: [None, None],
            earlier: [StreamStats::default(); 2],
            pending: VecDeque::new(),
        }
        .run()
        .await;
    }
}

thread_local! {
    /// One receive buffer per media thread, shared by its call tasks: they never run at
    /// once and a datagram is relayed before its task yields, so one cache-hot buffer does.
    static RECV_BUF: std::cell::RefCell<Vec<u8>> =
        std::cell::RefCell::new(vec![0u8; MAX_DATAGRAM * BATCH]);
}

/// A call task with its sockets registered.
struct Running {
    id: MediaId,
    socks: [UdpSocket; 4],
    relay: Relay,
    cmds: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<MediaEvent>,
    counters: Arc<RtpCounters>,
    /// Per side (caller, callee): holdless's own media while the side is answered locally.
    local: [Option<Box<LocalMedia>>; 2],
    /// Per side: what the side sent to local media that is gone.
    earlier: [StreamStats; 2],
    /// Events for the engine, sent (waiting for room) before the task sleeps again.
    pending: VecDeque<MediaEvent>,
}

impl Running {
    async fn run(mut self) {
        let far = || tokio::time::Instant::now() + std::time::Duration::from_secs(86_400 * 365);
        let sleep = tokio::time::sleep_until(far());
        tokio::pin!(sleep);
        let mut armed = None;
        loop {
            let now = clock();
            let t = RECV_BUF.with_borrow_mut(|buf| self.drain(now, buf));
            self.count(&t);
            while let Some((side, reason)) = self.relay.handle_timeout(now) {
                // A local side's timeout is its local media's.
                if self.local[side_index(side)].is_none() {
                    self.pending.push_back(MediaEvent::Timeout {
                        id: self.id,
                        side,
                        reason,
                    });
                }
            }
            if self.local.iter().any(Option::is_some) {
                self.tick_local(now);
            }
            while let Some(ev) = self.pending.pop_front() {
                if self.events.send(ev).await.is_err() {
                    self.pending.clear();
                }
            }
            let next = self.next_deadline();
            if next != armed {
                let at = next.map_or_else(far, tokio::time::Instant::from_std);
                sleep.as_mut().reset(at);
                armed = next;
            }
            if t.received as usize >= YIELD_AFTER {
                tokio::task::yield_now().await;
                continue;
            }
            match self.wait(sleep.as_mut()).await {
                Wake::Packets | Wake::Timer => {}
                Wake::Command(Some(cmd)) => self.command(clock(), cmd),
                Wake::Command(None) => break,
            }
        }
        let stats = self.stats();
        let Running {
            id,
            socks,
            events,
            counters,
            ..
        } = self;
        drop(socks);
        counters.sessions.fetch_sub(1, Ordering::Relaxed);
        if events
            .try_send(MediaEvent::Released {
                id,
                stats: Box::new(stats),
            })
            .is_err()
        {
            counters.events_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Applies a command from the runtime.
    fn command(&mut self, now: Instant, cmd: Command) {
        match cmd {
            Command::Update(p) => {
                self.relay.update(now, *p);
                // A completed offer/answer joins local sides: the relay carries their
                // streams on.
                for side in [Side::Caller, Side::Callee] {
                    let i = side_index(side);
                    if let Some(mut m) = self.local[i].take() {
                        self.fold_player_events(side, &mut m);
                        self.relay.set_continuity(side, m.continuity(now));
                        if let Some(srtp) = m.take_srtp() {
                            self.relay.adopt_srtp(side, srtp);
                        }
                        self.earlier[i] = merge_stats(&self.earlier[i], &m.stats());
                    }
                }
            }
            Command::Local { side, mut media } => {
                let i = side_index(side);
                if let Some(c) = self.relay.take_continuity(side) {
                    media.continue_stream(c.stream(now));
                }
                if let Some(srtp) = self.relay.take_srtp(side) {
                    media.adopt_srtp(srtp);
                }
                if let Some(old) = self.local[i].take() {
                    media.take_over(*old);
                }
                self.local[i] = Some(media);
            }
            Command::Play { side, clip } => match self.local[side_index(side)].as_deref_mut() {
                Some(m) => m.play(now, clip),
                None => tracing::debug!(?side, "play to a side that is not local; ignored"),
            },
            Command::Stop { side } => {
                if let Some(m) = self.local[side_index(side)].as_deref_mut() {
                    m.stop();
                }
            }
        }
    }

    /// Local media's due work: frames sent from the socket facing the side, the media
    /// timeout, finished clips.
    fn tick_local(&mut self, now: Instant) {
        for side in [Side::Caller, Side::Callee] {
            let Some(mut m) = self.local[side_index(side)].take() else {
                continue;
            };
            let sock = &self.socks[socket_index(side, Kind::Rtp)];
            let mut buf = [0u8; FRAME_WIRE_MAX];
            while let Some((frame, to)) = m.poll_transmit(now) {
                let sent = m
                    .write_frame(&frame, &mut buf)
                    .map(|n| send_now(sock, &buf[..n], to));
                if !matches!(sent, Some(Ok(_))) {
                    m.send_failed();
                }
            }
            if let Some(reason) = m.handle_timeout(now) {
                self.pending.push_back(MediaEvent::Timeout {
                    id: self.id,
                    side,
                    reason,
                });
            }
            self.fold_player_events(side, &mut m);
            self.local[side_index(side)] = Some(m);
        }
    }

    /// Local media's finished clips as [`MediaEvent::PlayFinished`].
    fn fold_player_events(&mut self, side: Side, m: &mut LocalMedia) {
        while let Some(e) = m.poll_event() {
            if e == PlayerEvent::Finished {
                self.pending
                    .push_back(MediaEvent::PlayFinished { id: self.id, side });
            }
        }
    }

    /// The earliest of the relay's media timeout and local media's next frame or timeout.
    fn next_deadline(&self) -> Option<Instant> {
        let local = self.local.iter().flatten().filter_map(|m| m.poll_timeout());
        self.relay.poll_timeout().into_iter().chain(local).min()
    }

    /// The relay's statistics with those of local media, past and present.
    fn stats(&self) -> CallStats {
        let local = [self.local[0].as_deref(), self.local[1].as_deref()];
        call_stats(self.relay.stats(), &self.earlier, local)
    }

    /// Waits for a readable socket, a command or the timer.
    fn wait<'a>(&'a mut self, mut sleep: Pin<&'a mut Sleep>) -> impl Future<Output = Wake> + 'a {
        poll_fn(move |cx| {
            if let Poll::Ready(c) = self.cmds.poll_recv(cx) {
                return Poll::Ready(Wake::Command(c));
            }
            let mut readable = false;
            for s in &self.socks {
                readable |= s.poll_recv_ready(cx).is_ready();
            }
            if readable {
                return Poll::Ready(Wake::Packets);
            }
            if sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Wake::Timer);
            }
            Poll::Pending
        })
    }

    /// Relays what the sockets hold, up to [`BURST`] datagrams each, [`BATCH`] per receive.
    fn drain(&mut self, now: Instant, buf: &mut [u8]) -> Tally {
        let mut t = Tally::default();
        for (i, &(side, kind)) in SOCKETS.iter().enumerate() {
            // Whether holdless's own media is this side's far end, or the other side's.
            let local_in = self.local[side_index(side)].is_some();
            let local_out = self.local[side_index(side.other())].is_some();
            for _ in 0..BURST.div_ceil(BATCH) {
                let mut got = [NOTHING; BATCH];
                let n = match self.receive(i, buf, &mut got) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        tracing::trace!(error = %e, "media receive error");
                        break;
                    }
                };
                for (r, slot) in got[..n].iter().zip(buf.chunks_exact_mut(MAX_DATAGRAM)) {
                    t.received += 1;
                    let (Some(src), false) = (r.from, r.truncated) else {
                        continue; // possibly truncated, or a family not relayed
                    };
                    if local_in {
                        t.local += 1;
                        self.local_packet(now, side, kind, src, &slot[..r.len]);
                        continue;
                    }
                    let rtcp = matches!(kind, Kind::Rtcp);
                    let (verdict, len) = self.relay.packet_in(now, side, rtcp, src, slot, r.len);
                    if let Verdict::Forward(to) = verdict {
                        if local_out {
                            // The other side hears holdless's own media, not this one.
                            continue;
                        }
                        let out = &self.socks[socket_index(side.other(), kind)];
                        match out.try_send_to(&slot[..len], to) {
                            Ok(_) => t.relayed += 1,
                            Err(_) => self.relay.send_failed(side),
                        }
                    }
                }
                if n < BATCH {
                    break; // the queue was empty when the kernel answered
                }
            }
        }
        t
    }

    /// A datagram from a side whose far end is holdless itself: its packets stop here (DTMF
    /// detectors, latching, counts). Kept out of line, off the relay's path.
    #[inline(never)]
    fn local_packet(&mut self, now: Instant, side: Side, kind: Kind, src: SocketAddr, pkt: &[u8]) {
        let Some(m) = self.local[side_index(side)].as_deref_mut() else {
            return;
        };
        match kind {
            Kind::Rtp => {
                let mut digit = m.rtp_in(now, src, pkt);
                while let Some(event) = digit {
                    self.pending.push_back(MediaEvent::Digit {
                        id: self.id,
                        side,
                        event,
                    });
                    digit = m.next_digit();
                }
            }
            Kind::Rtcp => m.rtcp_in(now, src, pkt),
        }
    }

    /// One `recvmmsg` on socket `i`. Fewer than [`BATCH`] datagrams means the queue was
    /// empty at that moment, so the socket's readiness is cleared without a second
    /// (failing) receive; a datagram arriving later raises readiness again.
    fn receive(&self, i: usize, buf: &mut [u8], got: &mut [Received; BATCH]) -> io::Result<usize> {
        let sock = &self.socks[i];
        let fd = sock.as_raw_fd();
        let mut n = 0;
        let res = sock.try_io(tokio::io::Interest::READABLE, || {
            n = recv_batch(fd, buf, MAX_DATAGRAM, got)?;
            if n < BATCH {
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                Ok(())
            }
        });
        match res {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && n > 0 => Ok(n),
            Err(e) => Err(e),
            Ok(()) => Ok(n),
        }
    }

    fn count(&self, t: &Tally) {
        if t.received > 0 {
            let c = &self.counters;
            c.received.fetch_add(t.received, Ordering::Relaxed);
            c.relayed.fetch_add(t.relayed, Ordering::Relaxed);
            c.dropped
                .fetch_add(t.received - t.relayed - t.local, Ordering::Relaxed);
        }
    }
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Update(_) => "Command::Update",
            Command::Local { .. } => "Command::Local",
            Command::Play { .. } => "Command::Play",
            Command::Stop { .. } => "Command::Stop",
        })
    }
}
