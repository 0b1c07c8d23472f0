//! The RTP shell: [`RtpRuntime`] implements [`MediaControl`] by wrapping the sans-IO
//! [`MediaController`] (ports, offer/answer) and handing every call's four UDP sockets (RTP
//! and RTCP facing each side) with its [`Relay`] to a media thread.
//!
//! The media threads ([`super::media_thread`]) are plain OS threads, one per CPU unless
//! configured, each running one edge-triggered epoll loop over all of its calls' sockets,
//! calls spread round robin and pinned to their thread for life. A readable socket is
//! drained with batched receives and each datagram relayed straight away
//! ([`super::call_media`]); signalling load cannot delay media beyond the scheduler's own
//! share of the CPU (rtpengine's media threads work the same way). The relay parameters
//! change only on a completed offer/answer, through the thread's inbox. Media timeouts,
//! digits, finished prompts and the final statistics go to the engine as [`MediaEvent`]s.
//!
//! A side answered locally ([`MediaControl::answer_locally`]) gets holdless's own endpoint,
//! a [`LocalMedia`](crate::media::local::LocalMedia) built by the controller and moved to the
//! call's thread: see [`super::call_media`].

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket as StdSocket};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::call_media::{CallMedia, Command};
use super::media_thread::{self, CallKey, Inbox, ThreadMsg};
use super::relay_latency::RelayLatency;
use crate::acl::Egress;
use crate::media::prompt::Clip;
use crate::media::relay::Relay;
use crate::media::{
    MediaConfig, MediaControl, MediaController, MediaError, MediaEvent, MediaId, Side,
};

/// Depth of the media event queue to the engine. Events are rare (a timeout or a release per
/// call, a digit or a finished prompt now and then); 1024 absorbs a burst of call ends. A
/// media thread never drops an event a full queue refuses: it keeps it, in order, and
/// retries (see [`super::media_thread`]).
pub const EVENT_QUEUE: usize = 1024;

/// Port pairs tried when a bind fails (a port of the range taken by another process).
const BIND_ATTEMPTS: usize = 8;

/// Media threads when the configuration leaves it to holdless: one per CPU.
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Totals over every call, updated once per turn of a media thread (not per packet).
#[derive(Debug, Default)]
pub struct RtpCounters {
    /// Datagrams received on media ports.
    pub received: AtomicU64,
    /// Datagrams forwarded.
    pub relayed: AtomicU64,
    /// Datagrams dropped (any reason; per-call reasons are in the call's statistics).
    pub dropped: AtomicU64,
    /// Calls whose sockets are open (four media ports each): back to 0 when every call has
    /// ended.
    pub sessions: AtomicI64,
    /// The relay's latency, sampled.
    pub latency: RelayLatency,
}

/// Media for the running server: the controller, and each call's media on a media thread.
#[derive(Debug)]
pub struct RtpRuntime {
    ctl: MediaController,
    /// Each call's thread (index into the inboxes) and key there.
    calls: HashMap<MediaId, (usize, CallKey)>,
    events_tx: mpsc::Sender<MediaEvent>,
    events_rx: mpsc::Receiver<MediaEvent>,
    threads: MediaThreads,
}

/// The media threads, shared by every SIP engine's [`RtpRuntime`] (clone it into each), and
/// the totals they keep. The threads end when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct MediaThreads(Arc<Threads>);

#[derive(Debug)]
struct Threads {
    inboxes: Vec<Inbox>,
    /// The next call key; its remainder picks the thread (round robin).
    next_key: AtomicU64,
    counters: Arc<RtpCounters>,
}

impl Drop for Threads {
    fn drop(&mut self) {
        for inbox in std::mem::take(&mut self.inboxes) {
            inbox.close();
        }
    }
}

impl MediaThreads {
    /// Starts `cfg.threads` media threads (0: one per CPU).
    pub fn start(cfg: &MediaConfig) -> Self {
        let wanted = if cfg.threads == 0 {
            default_threads()
        } else {
            cfg.threads
        };
        let counters = Arc::new(RtpCounters::default());
        let inboxes = (0..wanted)
            .filter_map(|n| {
                media_thread::start(n, counters.clone(), cfg.realtime_priority)
                    .map_err(|e| tracing::error!(error = %e, "cannot start a media thread"))
                    .ok()
            })
            .collect();
        MediaThreads(Arc::new(Threads {
            inboxes,
            next_key: AtomicU64::new(0),
            counters,
        }))
    }

    /// Relay totals over every call on these threads.
    pub fn counters(&self) -> Arc<RtpCounters> {
        self.0.counters.clone()
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
        Self::assemble(cfg, egress, events_tx, events_rx, threads)
    }

    /// A runtime for one of several SIP engines: its own port range (in `cfg`) and event
    /// queue, the media threads and their totals shared with the others.
    pub fn sharing(cfg: MediaConfig, egress: Egress, threads: MediaThreads) -> Self {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        Self::assemble(cfg, egress, tx, rx, threads)
    }

    fn assemble(
        cfg: MediaConfig,
        egress: Egress,
        events_tx: mpsc::Sender<MediaEvent>,
        events_rx: mpsc::Receiver<MediaEvent>,
        threads: MediaThreads,
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
            threads,
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
        self.threads.counters()
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
        let relay = Relay::new(now, self.ctl.config(), self.ctl.egress().clone());
        let call = Box::new(CallMedia::new(id, socks, relay));
        let threads = &self.threads.0;
        let key = threads.next_key.fetch_add(1, Ordering::Relaxed);
        let n = threads.inboxes.len().max(1);
        let thread = (key % n as u64) as usize;
        let msg = ThreadMsg::Start {
            key,
            call,
            events: self.events_tx.clone(),
        };
        // Counted before the thread can end it and count it down.
        threads.counters.sessions.fetch_add(1, Ordering::Relaxed);
        if threads.inboxes.get(thread).is_some_and(|t| t.send(msg)) {
            self.calls.insert(id, (thread, key));
            Ok(())
        } else {
            threads.counters.sessions.fetch_sub(1, Ordering::Relaxed);
            tracing::error!("no media thread is running");
            Err(MediaError::PortsExhausted)
        }
    }
}

fn bind(addr: SocketAddr) -> io::Result<StdSocket> {
    let s = StdSocket::bind(addr)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

impl RtpRuntime {
    fn command(&self, id: MediaId, cmd: Command) {
        if let Some(&(thread, key)) = self.calls.get(&id) {
            // The thread is gone only if it panicked; the call then simply has no media.
            if let Some(t) = self.threads.0.inboxes.get(thread) {
                t.send(ThreadMsg::Command { key, cmd });
            }
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
        // The thread closes the sockets and reports the final statistics.
        if let Some((thread, key)) = self.calls.remove(&id) {
            if let Some(t) = self.threads.0.inboxes.get(thread) {
                t.send(ThreadMsg::Release { key });
            }
        }
        self.ctl.release(id);
    }
}
