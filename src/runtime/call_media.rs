//! One call's media on a media thread ([`super::media_thread`]): its four sockets (RTP and
//! RTCP facing each side), its [`Relay`] and, while a side is answered locally, holdless's
//! own [`LocalMedia`] for that side.
//!
//! The hot path is [`CallMedia::drain`]: one readable socket is read with batched receives
//! (`recvmmsg`), each datagram goes through the relay's decision and is sent straight from
//! the socket facing the other side. No allocation, channel hop or shared lock per packet.
//!
//! A side answered locally gets its packets taken by its local media (DTMF detectors), and
//! its prompt frames go out on the player's 20 ms deadlines from holdless's socket facing the
//! side. When the side is joined (the answer to the onward offer) the local media is dropped
//! and its stream handed to the relay's [`Continuity`](crate::media::relay::Continuity), so
//! the side's RTP stream carries on. A bridged call pays one untaken branch per packet for
//! this.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Instant;

use mio::net::UdpSocket;

use super::recv_batch::{realtime_ns, recv_batch, Received, BATCH};
use super::relay_latency::LatencyTally;
use crate::media::local::{call_stats, merge_stats, LocalMedia, FRAME_WIRE_MAX};
use crate::media::prompt::{Clip, PlayerEvent};
use crate::media::relay::{Relay, RelayParams, Verdict};
use crate::media::{CallStats, MediaEvent, MediaId, Side, StreamStats};

/// Largest datagram relayed. RTP for G.711 is ~172–332 bytes; anything that fills the
/// buffer may have been truncated and is dropped.
pub const MAX_DATAGRAM: usize = 2048;

/// Datagrams taken from one socket before the thread looks at the others, so one flooded
/// socket cannot starve its neighbours; a socket left with more is read again next turn.
pub const BURST: usize = 32;

/// One forwarded datagram in this many has its latency measured (kernel receive → send).
pub const LATENCY_SAMPLE: u64 = 16;

/// What the runtime tells a call's media.
pub enum Command {
    /// A completed offer/answer: new relay parameters; a local side is joined.
    Update(Box<RelayParams>),
    /// `side` is answered locally: this media takes its packets.
    Local {
        /// The side answered.
        side: Side,
        /// Its media, built by the controller.
        media: Box<LocalMedia>,
    },
    /// Play a clip to a local side.
    Play {
        /// The side that hears it.
        side: Side,
        /// The clip.
        clip: Clip,
    },
    /// Stop what plays to a local side.
    Stop {
        /// The side.
        side: Side,
    },
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

/// RTP or RTCP.
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

/// A media thread's tallies since it last added them to the shared counters.
#[derive(Debug, Default)]
pub struct Tally {
    /// Datagrams received.
    pub received: u64,
    /// Datagrams forwarded.
    pub relayed: u64,
    /// Taken by local media (neither relayed nor dropped).
    pub local: u64,
    /// Forwarded datagrams since the last latency sample, modulo [`LATENCY_SAMPLE`].
    pub since_sample: u64,
    /// Sampled relay latencies, to be added to the shared histogram.
    pub latency: LatencyTally,
}

/// Whether a socket was emptied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// The kernel's queue was empty at the last receive: wait for the next readiness.
    Empty,
    /// [`BURST`] datagrams were read and more may wait: read it again next turn.
    More,
}

/// One call's media: sockets, relay, local media, and events owed to the engine.
pub struct CallMedia {
    /// The call, as its engine's controller knows it.
    pub id: MediaId,
    socks: [UdpSocket; 4],
    relay: Relay,
    /// Per side (caller, callee): holdless's own media while the side is answered locally.
    local: [Option<Box<LocalMedia>>; 2],
    /// Per side: what the side sent to local media that is gone.
    earlier: [StreamStats; 2],
    /// Events for the engine, handed over at the end of the thread's turn.
    pub pending: VecDeque<MediaEvent>,
}

impl CallMedia {
    /// A call's media over its four bound, non-blocking sockets (RTP and RTCP facing the
    /// caller, then the callee). Their receive timestamps are turned on for the latency
    /// histogram.
    pub fn new(id: MediaId, socks: [std::net::UdpSocket; 4], relay: Relay) -> Self {
        let socks = socks.map(|s| {
            if let Err(e) = super::recv_batch::enable_timestamps(s.as_raw_fd()) {
                tracing::debug!(error = %e, "no receive timestamps on a media socket");
            }
            UdpSocket::from_std(s)
        });
        CallMedia {
            id,
            socks,
            relay,
            local: [None, None],
            earlier: [StreamStats::default(); 2],
            pending: VecDeque::new(),
        }
    }

    /// The four sockets, to register with the thread's poller.
    pub fn sockets(&mut self) -> &mut [UdpSocket; 4] {
        &mut self.socks
    }

    /// Applies a command from the runtime.
    pub fn command(&mut self, now: Instant, cmd: Command) {
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

    /// Due work at `now`: media timeouts, local media's frames and finished clips.
    pub fn tick(&mut self, now: Instant) {
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
                    .map(|n| sock.send_to(&buf[..n], to));
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
    pub fn next_deadline(&self) -> Option<Instant> {
        let local = self.local.iter().flatten().filter_map(|m| m.poll_timeout());
        self.relay.poll_timeout().into_iter().chain(local).min()
    }

    /// The relay's statistics with those of local media, past and present.
    pub fn stats(&self) -> CallStats {
        let local = [self.local[0].as_deref(), self.local[1].as_deref()];
        call_stats(self.relay.stats(), &self.earlier, local)
    }

    /// Relays what socket `i` holds, up to [`BURST`] datagrams, [`BATCH`] per receive.
    /// `buf` holds [`BATCH`] slots of [`MAX_DATAGRAM`] bytes.
    pub fn drain(&mut self, i: usize, now: Instant, buf: &mut [u8], t: &mut Tally) -> Drained {
        let Some(&(side, kind)) = SOCKETS.get(i) else {
            return Drained::Empty;
        };
        // Whether holdless's own media is this side's far end, or the other side's.
        let local_in = self.local[side_index(side)].is_some();
        let local_out = self.local[side_index(side.other())].is_some();
        for _ in 0..BURST.div_ceil(BATCH) {
            let mut got = [Received::EMPTY; BATCH];
            let n = match recv_batch(self.socks[i].as_raw_fd(), buf, MAX_DATAGRAM, &mut got) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Drained::Empty,
                Err(e) => {
                    // Not expected on an unconnected socket; the next datagram raises a new
                    // readiness, so nothing is stranded for long.
                    tracing::trace!(error = %e, "media receive error");
                    return Drained::Empty;
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
                    match out.send_to(&slot[..len], to) {
                        Ok(_) => {
                            t.relayed += 1;
                            // The thread's first forwarded datagram, then one in LATENCY_SAMPLE.
                            if t.since_sample == 0 && r.stamp_ns != 0 {
                                t.latency.observe(realtime_ns().saturating_sub(r.stamp_ns));
                            }
                            t.since_sample = (t.since_sample + 1) % LATENCY_SAMPLE;
                        }
                        Err(_) => self.relay.send_failed(side),
                    }
                }
            }
            if n < BATCH {
                return Drained::Empty; // the queue was empty when the kernel answered
            }
        }
        Drained::More
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
}
