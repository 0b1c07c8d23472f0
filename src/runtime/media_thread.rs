//! A media thread: one OS thread running one event loop over every socket of the calls it
//! holds (edge-triggered epoll through mio), after rtpengine's media threads.
//!
//! Each turn: wait for readiness, the inbox or the earliest deadline; take the inbox (new
//! calls, commands, releases) first, so a socket event never reaches a call that is gone;
//! drain every ready socket ([`CallMedia::drain`], batched receive); run the due deadlines
//! (media timeouts, prompt frames); hand the events the calls produced to their engines; add
//! the turn's tallies to the shared counters once.
//!
//! Calls live in a slab; socket `i` of the call at key `k` is token `4k + i`. Deadlines sit
//! in a heap, re-armed lazily: a call's entry is replaced only when its deadline moves
//! earlier (a relayed packet moves the media timeout later every 20 ms; popping the old
//! entry then re-arms it at the new one). A full engine queue never blocks the thread:
//! events it refuses wait, in order, and are retried every turn.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io;
use std::sync::atomic::Ordering;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Registry, Token, Waker};
use slab::Slab;
use tokio::sync::mpsc;

use super::call_media::{CallMedia, Command, Drained, Tally, MAX_DATAGRAM};
use super::recv_batch::BATCH;
use super::rtp::RtpCounters;
use crate::media::MediaEvent;

/// The waker's token (no call key reaches it).
const WAKE: Token = Token(usize::MAX);

/// Readiness events taken per wait.
const EVENTS: usize = 1024;

/// How soon a thread retries events an engine's full queue refused.
const OWED_RETRY: Duration = Duration::from_millis(2);

/// A call's key on its thread, unique across every engine sharing the threads.
pub type CallKey = u64;

/// What a runtime tells a media thread.
pub enum ThreadMsg {
    /// A new call: register its sockets and relay.
    Start {
        /// The call's key.
        key: CallKey,
        /// Its media.
        call: Box<CallMedia>,
        /// Where its events go (its engine's queue).
        events: mpsc::Sender<MediaEvent>,
    },
    /// A command for one call.
    Command {
        /// The call's key.
        key: CallKey,
        /// The command.
        cmd: Command,
    },
    /// The call is over: close its sockets, report its statistics.
    Release {
        /// The call's key.
        key: CallKey,
    },
}

/// The way into one media thread: a queue and the waker that interrupts its wait.
#[derive(Clone)]
pub struct Inbox {
    tx: std_mpsc::Sender<ThreadMsg>,
    waker: Arc<Waker>,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Inbox")
    }
}

impl Inbox {
    /// Queues a message and wakes the thread; false once the thread is gone.
    pub fn send(&self, msg: ThreadMsg) -> bool {
        self.tx.send(msg).is_ok() && self.waker.wake().is_ok()
    }

    /// Drops this way in and wakes the thread, which ends once no other way in is left.
    pub fn close(self) {
        let Inbox { tx, waker } = self;
        drop(tx);
        let _ = waker.wake();
    }
}

/// Starts media thread `n`, reporting to `counters`, under `SCHED_FIFO` at
/// `realtime_priority` when it is not 0. The thread ends once every clone of its [`Inbox`]
/// is dropped and it is woken.
pub fn start(n: usize, counters: Arc<RtpCounters>, realtime_priority: u8) -> io::Result<Inbox> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
    let (tx, rx) = std_mpsc::channel();
    let mut lp = MediaLoop {
        poll,
        inbox: rx,
        calls: Slab::new(),
        keys: HashMap::new(),
        deadlines: BinaryHeap::new(),
        again: Vec::new(),
        touched: Vec::new(),
        owed: VecDeque::new(),
        tally: Tally::default(),
        counters,
        buf: vec![0u8; MAX_DATAGRAM * BATCH],
    };
    std::thread::Builder::new()
        // Linux keeps 15 bytes of a thread name: short enough to tell the threads apart.
        .name(format!("hl-media-{n}"))
        .spawn(move || {
            if realtime_priority > 0 {
                if let Err(e) = realtime(realtime_priority) {
                    tracing::warn!(error = %e, thread = n,
                        "media.realtime_priority: SCHED_FIFO refused (needs CAP_SYS_NICE or \
                         RLIMIT_RTPRIO); this media thread keeps the normal scheduler");
                }
            }
            lp.run()
        })?;
    Ok(Inbox { tx, waker })
}

/// Puts the calling thread under `SCHED_FIFO` at `priority`: it then runs as soon as a
/// packet wakes it, ahead of every normal thread (the SIP engines, the API, other
/// processes). Safe for a loop that sleeps in epoll between bursts; a thread that spun
/// would starve its core.
pub fn realtime(priority: u8) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority.into(),
    };
    // SAFETY: pid 0 is the calling thread on Linux; `param` is a valid sched_param.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A call on its thread: its media, where its events go, its armed deadline.
struct Slot {
    media: Box<CallMedia>,
    events: mpsc::Sender<MediaEvent>,
    /// The deadline in the heap for this call, if any.
    armed: Option<Instant>,
    /// Bumped whenever the armed entry is replaced; older heap entries are stale.
    generation: u32,
    /// Already in this turn's `touched` list.
    touched: bool,
}

/// A heap entry: a call's deadline, its slab key and the generation it was armed in
/// (reversed: earliest first).
type Deadline = Reverse<(Instant, usize, u32)>;

/// One media thread's state.
struct MediaLoop {
    poll: Poll,
    inbox: std_mpsc::Receiver<ThreadMsg>,
    calls: Slab<Slot>,
    /// Call key → slab index.
    keys: HashMap<CallKey, usize>,
    deadlines: BinaryHeap<Deadline>,
    /// Sockets left with datagrams after a burst, read again next turn.
    again: Vec<Token>,
    /// Calls that ran this turn: their events are handed over and deadlines re-armed.
    touched: Vec<usize>,
    /// Events an engine's full queue refused, in order.
    owed: VecDeque<(mpsc::Sender<MediaEvent>, MediaEvent)>,
    tally: Tally,
    counters: Arc<RtpCounters>,
    /// The receive buffer: [`BATCH`] slots of [`MAX_DATAGRAM`].
    buf: Vec<u8>,
}

fn token(slab: usize, socket: usize) -> Token {
    Token(slab * 4 + socket)
}

impl MediaLoop {
    fn run(&mut self) {
        let mut events = Events::with_capacity(EVENTS);
        loop {
            let timeout = self.wait_limit(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!(error = %e, "media thread cannot poll; its calls lose media");
                    return;
                }
            }
            let now = Instant::now();
            if !self.take_inbox(now) {
                break;
            }
            for t in std::mem::take(&mut self.again) {
                self.ready(t, now);
            }
            for t in events.iter().map(|e| e.token()).filter(|&t| t != WAKE) {
                self.ready(t, now);
            }
            self.due(now);
            self.finish_turn();
        }
        for (_, slot) in std::mem::take(&mut self.calls) {
            self.end(slot);
        }
        self.flush_owed();
    }

    /// How long the next wait may last: not past the earliest deadline, not at all when
    /// sockets are owed a read, briefly when events are owed.
    fn wait_limit(&self, now: Instant) -> Option<Duration> {
        if !self.again.is_empty() {
            return Some(Duration::ZERO);
        }
        let deadline = self
            .deadlines
            .peek()
            .map(|Reverse((at, _, _))| at.saturating_duration_since(now));
        let owed = (!self.owed.is_empty()).then_some(OWED_RETRY);
        deadline.into_iter().chain(owed).min()
    }

    /// Takes every queued message; false once every sender is gone.
    fn take_inbox(&mut self, now: Instant) -> bool {
        loop {
            match self.inbox.try_recv() {
                Ok(ThreadMsg::Start { key, call, events }) => self.start(key, call, events),
                Ok(ThreadMsg::Command { key, cmd }) => {
                    if let Some(&k) = self.keys.get(&key) {
                        self.calls[k].media.command(now, cmd);
                        self.touch(k);
                        // A command may bring work due now (a prompt's first frame).
                        self.calls[k].media.tick(now);
                    }
                }
                Ok(ThreadMsg::Release { key }) => {
                    if let Some(k) = self.keys.remove(&key) {
                        let slot = self.calls.remove(k);
                        self.end(slot);
                    }
                }
                Err(std_mpsc::TryRecvError::Empty) => return true,
                Err(std_mpsc::TryRecvError::Disconnected) => return false,
            }
        }
    }

    /// Registers a new call's sockets.
    fn start(&mut self, key: CallKey, mut media: Box<CallMedia>, events: mpsc::Sender<MediaEvent>) {
        let entry = self.calls.vacant_entry();
        let k = entry.key();
        let registered = register(self.poll.registry(), k, &mut media);
        let slot = Slot {
            media,
            events,
            armed: None,
            generation: 0,
            touched: false,
        };
        if let Err(e) = registered {
            tracing::error!(error = %e, "cannot register media sockets; the call has no media");
            self.end(slot);
            return;
        }
        entry.insert(slot);
        self.keys.insert(key, k);
        self.touch(k);
    }

    /// Socket `t` is readable: relay what it holds.
    fn ready(&mut self, t: Token, now: Instant) {
        let (k, i) = (t.0 / 4, t.0 % 4);
        let Some(slot) = self.calls.get_mut(k) else {
            return; // released this turn
        };
        if slot.media.drain(i, now, &mut self.buf, &mut self.tally) == Drained::More {
            self.again.push(t);
        }
        if !slot.media.pending.is_empty() {
            self.touch(k);
        }
    }

    /// Runs every deadline due by `now`.
    fn due(&mut self, now: Instant) {
        while let Some(Reverse((at, k, generation))) = self.deadlines.peek() {
            if *at > now {
                break;
            }
            let (k, generation) = (*k, *generation);
            self.deadlines.pop();
            let Some(slot) = self.calls.get_mut(k) else {
                continue;
            };
            if slot.generation != generation {
                continue; // replaced by an earlier deadline
            }
            slot.armed = None;
            slot.media.tick(now);
            self.touch(k);
        }
    }

    fn touch(&mut self, k: usize) {
        if let Some(slot) = self.calls.get_mut(k) {
            if !slot.touched {
                slot.touched = true;
                self.touched.push(k);
            }
        }
    }

    /// Hands the touched calls' events over, re-arms their deadlines, adds the tallies.
    fn finish_turn(&mut self) {
        self.flush_owed();
        for k in std::mem::take(&mut self.touched) {
            let Some(slot) = self.calls.get_mut(k) else {
                continue;
            };
            slot.touched = false;
            while let Some(ev) = slot.media.pending.pop_front() {
                deliver(&mut self.owed, &slot.events, ev);
            }
            let next = slot.media.next_deadline();
            let earlier = match (next, slot.armed) {
                (Some(n), Some(a)) => n < a,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if earlier {
                slot.generation = slot.generation.wrapping_add(1);
                slot.armed = next;
                if let Some(at) = next {
                    self.deadlines.push(Reverse((at, k, slot.generation)));
                }
            }
        }
        let t = &mut self.tally;
        if t.received > 0 {
            let c = &self.counters;
            c.received.fetch_add(t.received, Ordering::Relaxed);
            c.relayed.fetch_add(t.relayed, Ordering::Relaxed);
            c.dropped
                .fetch_add(t.received - t.relayed - t.local, Ordering::Relaxed);
            t.received = 0;
            t.relayed = 0;
            t.local = 0;
        }
        self.counters.latency.add(&mut t.latency);
    }

    /// A call's end: its sockets closed, its last events, then its statistics.
    fn end(&mut self, mut slot: Slot) {
        for s in slot.media.sockets() {
            let _ = self.poll.registry().deregister(s);
        }
        let stats = slot.media.stats();
        while let Some(ev) = slot.media.pending.pop_front() {
            deliver(&mut self.owed, &slot.events, ev);
        }
        let id = slot.media.id;
        drop(slot.media); // closes the sockets
        self.counters.sessions.fetch_sub(1, Ordering::Relaxed);
        deliver(
            &mut self.owed,
            &slot.events,
            MediaEvent::Released {
                id,
                stats: Box::new(stats),
            },
        );
    }

    /// Retries owed events, in order, until a queue refuses again.
    fn flush_owed(&mut self) {
        while let Some((tx, ev)) = self.owed.pop_front() {
            match tx.try_send(ev) {
                Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
                Err(mpsc::error::TrySendError::Full(ev)) => {
                    self.owed.push_front((tx, ev));
                    break;
                }
            }
        }
    }
}

/// Sends an event to its engine, or queues it behind those already owed.
fn deliver(
    owed: &mut VecDeque<(mpsc::Sender<MediaEvent>, MediaEvent)>,
    tx: &mpsc::Sender<MediaEvent>,
    ev: MediaEvent,
) {
    if !owed.is_empty() {
        owed.push_back((tx.clone(), ev));
        return;
    }
    match tx.try_send(ev) {
        Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
        Err(mpsc::error::TrySendError::Full(ev)) => owed.push_back((tx.clone(), ev)),
    }
}

/// Registers a call's four sockets, edge-triggered, as tokens `4k..4k+3`.
fn register(registry: &Registry, k: usize, media: &mut CallMedia) -> io::Result<()> {
    for (i, s) in media.sockets().iter_mut().enumerate() {
        registry.register(s, token(k, i), Interest::READABLE)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scheduling policy of this process's thread named `name` (`/proc`, field 41 of
    /// `stat`: 0 normal, 1 FIFO), once it exists.
    fn policy_of(name: &str) -> Option<u32> {
        for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim() == name {
                let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
                // Fields after the parenthesised name, which may hold spaces.
                let rest = &stat[stat.rfind(')')? + 2..];
                return rest.split(' ').nth(41 - 3)?.parse().ok();
            }
        }
        None
    }

    /// The policy of thread `name` once it exists and `done` holds for it.
    fn wait_policy(name: &str, done: impl Fn(u32) -> bool) -> Option<u32> {
        for _ in 0..100 {
            match policy_of(name) {
                Some(p) if done(p) => return Some(p),
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        policy_of(name)
    }

    #[test]
    fn a_realtime_priority_puts_the_media_thread_under_sched_fifo() {
        let allowed = std::thread::spawn(|| realtime(1).is_ok()).join().unwrap();
        if !allowed {
            eprintln!("SCHED_FIFO not permitted here: case skipped");
            return;
        }
        let fifo = start(61, Arc::default(), 7).unwrap();
        let normal = start(62, Arc::default(), 0).unwrap();
        assert_eq!(
            wait_policy("hl-media-61", |p| p != 0),
            Some(libc::SCHED_FIFO as u32)
        );
        assert_eq!(
            wait_policy("hl-media-62", |_| true),
            Some(libc::SCHED_OTHER as u32)
        );
        fifo.close();
        normal.close();
    }
}
