//! The sans-IO prompt player: sends a [`Clip`] as 20 ms G.711 RTP frames on one leg's
//! stream, paced on absolute deadlines, and (optionally) comfort silence while nothing plays.
//! The runtime drives it like every core: [`Player::poll_timeout`] says when the next frame
//! is due, [`Player::poll_transmit`] hands out every frame due by `now`, and
//! [`Player::poll_event`] reports the end of a clip.
//!
//! The stream's RTP state ([`StreamState`]: SSRC, next sequence number and timestamp) can be
//! taken out with [`Player::stream`] and handed to whoever sends on the leg next (the relay,
//! or a new player), so the peer sees one continuous stream across the switch.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use super::set::{Clip, Law, Segment};
use crate::media::g711::Transcode;
use crate::media::rtp::RTP_HEADER;

/// Samples in one frame (20 ms at 8000 Hz; G.711 has one byte a sample).
pub const FRAME_SAMPLES: usize = 160;
/// The packet time: one frame every 20 ms.
pub const PTIME: Duration = Duration::from_millis(20);
/// Most frames sent back to back when polled late (see [`Player::poll_transmit`]).
pub const MAX_BURST: u64 = 3;

/// The RTP numbering of one outgoing stream: what the next packet will carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamState {
    /// Synchronisation source of the stream.
    pub ssrc: u32,
    /// Sequence number of the next packet.
    pub next_seq: u16,
    /// Timestamp of the next packet (8 kHz clock).
    pub next_timestamp: u32,
}

impl StreamState {
    /// A new stream with a random SSRC, sequence number and timestamp (RFC 3550 §5.1).
    pub fn random() -> StreamState {
        StreamState {
            ssrc: fastrand::u32(..),
            next_seq: fastrand::u16(..),
            next_timestamp: fastrand::u32(..),
        }
    }
}

/// One RTP packet of 20 ms of G.711: the header fields and the 160-byte payload, owned and
/// allocation-free. [`RtpFrame::write`] puts it on the wire.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RtpFrame {
    /// When the frame was due (its place on the 20 ms schedule).
    pub due: Instant,
    /// Sequence number.
    pub seq: u16,
    /// Timestamp (8 kHz clock).
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Marker bit: first packet of a talkspurt or of a new SSRC.
    pub marker: bool,
    /// Payload type.
    pub payload_type: u8,
    /// 160 G.711 samples.
    pub payload: [u8; FRAME_SAMPLES],
}

impl RtpFrame {
    /// Bytes of the packet on the wire: the 12-byte header and the payload.
    pub const LEN: usize = RTP_HEADER + FRAME_SAMPLES;

    /// Writes the packet into `buf`; returns its length, or `None` if `buf` is shorter than
    /// [`RtpFrame::LEN`].
    pub fn write(&self, buf: &mut [u8]) -> Option<usize> {
        let out = buf.get_mut(..Self::LEN)?;
        out[0] = 0x80; // version 2, no padding, no extension, no CSRC
        out[1] = (u8::from(self.marker) << 7) | (self.payload_type & 0x7F);
        out[2..4].copy_from_slice(&self.seq.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        out[RTP_HEADER..].copy_from_slice(&self.payload);
        Some(Self::LEN)
    }

    /// The packet as bytes.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0; Self::LEN];
        // `b` is exactly LEN long, so the write always succeeds.
        let _ = self.write(&mut b);
        b
    }
}

impl fmt::Debug for RtpFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RtpFrame")
            .field("due", &self.due)
            .field("seq", &self.seq)
            .field("timestamp", &self.timestamp)
            .field("ssrc", &self.ssrc)
            .field("marker", &self.marker)
            .field("payload_type", &self.payload_type)
            .finish_non_exhaustive()
    }
}

/// What the player reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayerEvent {
    /// The clip played to its end (its last frame was handed out).
    Finished,
    /// The clip was cut short by [`Player::stop`] or replaced by [`Player::play`].
    Stopped,
}

/// The 20 ms schedule frames are sent on: frame `index` is due at `anchor + index × 20 ms`,
/// computed from the anchor each time so no rounding accumulates.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    anchor: Instant,
    index: u64,
}

impl Schedule {
    fn due(&self) -> Instant {
        let offset = Duration::from_millis(self.index.saturating_mul(20));
        self.anchor.checked_add(offset).unwrap_or(self.anchor)
    }
}

/// Frames of 20 ms from `from` to `to` (whole frames, rounded down; 0 if `to` is earlier).
fn frames_between(from: Instant, to: Instant) -> u64 {
    let nanos = to.saturating_duration_since(from).as_nanos() / PTIME.as_nanos();
    u64::try_from(nanos).unwrap_or(u64::MAX)
}

/// A clip being played: where the next frame starts.
#[derive(Debug)]
struct Playback {
    clip: Clip,
    segment: usize,
    offset: usize,
    frames_left: u64,
}

impl Playback {
    /// Fills `out` with the next samples (silence past the end) and moves on.
    fn fill(&mut self, out: &mut [u8; FRAME_SAMPLES]) {
        let silence = self.clip.law().silence();
        let mut filled = 0;
        while filled < out.len() {
            let Some(seg) = self.clip.segments().get(self.segment) else {
                out[filled..].fill(silence);
                break;
            };
            let take = (seg.len() - self.offset).min(out.len() - filled);
            let dst = &mut out[filled..filled + take];
            match seg {
                Segment::Audio(a) => dst.copy_from_slice(&a[self.offset..self.offset + take]),
                Segment::Silence(_) => dst.fill(silence),
            }
            filled += take;
            self.advance_within(take);
        }
        self.frames_left = self.frames_left.saturating_sub(1);
    }

    /// Skips `frames` frames of the clip.
    fn skip(&mut self, frames: u64) {
        let mut samples = frames.saturating_mul(FRAME_SAMPLES as u64);
        while samples > 0 {
            let Some(seg) = self.clip.segments().get(self.segment) else {
                break;
            };
            let take = ((seg.len() - self.offset) as u64).min(samples);
            // take ≤ seg.len(), a usize.
            self.advance_within(take as usize);
            samples -= take;
        }
        self.frames_left = self.frames_left.saturating_sub(frames);
    }

    fn advance_within(&mut self, samples: usize) {
        self.offset += samples;
        if self
            .clip
            .segments()
            .get(self.segment)
            .is_some_and(|s| self.offset >= s.len())
        {
            self.segment += 1;
            self.offset = 0;
        }
    }
}

/// Plays clips on one leg's RTP stream. Sans-IO: no sockets, no clock of its own.
///
/// Rules it keeps:
/// - Frames go out on a 20 ms schedule of absolute deadlines: frame k of a run of sending is
///   due at its start + k × 20 ms, whatever the times it is polled at, so nothing drifts.
///   While comfort silence is on, playback joins the running schedule at its next slot.
/// - Sequence numbers go up by one a packet (wrapping); timestamps by 160 a frame, through
///   clips, pauses and comfort silence alike. When sending resumes after a spell of not
///   sending, the timestamp also moves on by the whole frames that spell lasted, so it keeps
///   tracking the sampling clock (RFC 3550 §5.1).
/// - Marker bit: on the first packet after not sending (a new player, or a clip after idle
///   with comfort silence off) and on the first packet after an SSRC change.
/// - Comfort silence (off by default): while idle it sends silent frames (0xFF µ-law, 0xD5
///   A-law) so NAT bindings and the peer's jitter buffer stay up.
pub struct Player {
    stream: StreamState,
    law: Law,
    payload_type: u8,
    comfort: bool,
    schedule: Option<Schedule>,
    playback: Option<Playback>,
    marker_next: bool,
    /// The due time of the last frame sent, to move the timestamp across a gap in sending.
    last_due: Option<Instant>,
    events: VecDeque<PlayerEvent>,
}

impl fmt::Debug for Player {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Player")
            .field("stream", &self.stream)
            .field("law", &self.law)
            .field("payload_type", &self.payload_type)
            .field("comfort", &self.comfort)
            .field("sending", &self.schedule.is_some())
            .field(
                "frames_left",
                &self.playback.as_ref().map(|p| p.frames_left),
            )
            .finish_non_exhaustive()
    }
}

impl Player {
    /// A player that carries on `stream`, sending `law` audio under `payload_type`. It starts
    /// idle and sends nothing until [`Player::play`] or [`Player::set_comfort_silence`].
    pub fn new(stream: StreamState, law: Law, payload_type: u8) -> Player {
        Player {
            stream,
            law,
            payload_type: payload_type & 0x7F,
            comfort: false,
            schedule: None,
            playback: None,
            marker_next: true,
            last_due: None,
            events: VecDeque::new(),
        }
    }

    /// The stream's numbering as of now: the SSRC and what the next packet would carry. Hand
    /// it to the next sender on the leg to keep the peer's stream continuous.
    pub fn stream(&self) -> StreamState {
        self.stream
    }

    /// Carries on with another stream's numbering; a new SSRC marks the next packet.
    pub fn set_stream(&mut self, stream: StreamState) {
        if stream.ssrc != self.stream.ssrc {
            self.marker_next = true;
        }
        self.stream = stream;
    }

    /// The law frames are sent in.
    pub fn law(&self) -> Law {
        self.law
    }

    /// Whether a clip is playing.
    pub fn is_playing(&self) -> bool {
        self.playback.is_some()
    }

    /// Turns comfort silence on or off. On while idle starts sending silence at `now`; off
    /// while idle stops sending (a playing clip plays to its end first).
    pub fn set_comfort_silence(&mut self, now: Instant, on: bool) {
        self.comfort = on;
        if on && self.schedule.is_none() {
            self.start_sending(now);
        } else if !on && self.playback.is_none() {
            self.schedule = None;
        }
    }

    /// Starts playing `clip`, replacing (and reporting [`PlayerEvent::Stopped`] for) any clip
    /// playing. The first frame is due at `now`, or at the next slot of the running schedule
    /// while comfort silence is being sent. A clip in the other law is transcoded frame by
    /// frame; an empty clip finishes at once.
    pub fn play(&mut self, now: Instant, clip: Clip) {
        if self.playback.take().is_some() {
            self.events.push_back(PlayerEvent::Stopped);
        }
        let frames = clip.frames(FRAME_SAMPLES) as u64;
        if frames == 0 {
            self.events.push_back(PlayerEvent::Finished);
            if !self.comfort {
                self.schedule = None;
            }
            return;
        }
        if self.schedule.is_none() {
            self.start_sending(now);
        }
        self.playback = Some(Playback {
            clip,
            segment: 0,
            offset: 0,
            frames_left: frames,
        });
    }

    /// Stops the clip playing, if any ([`PlayerEvent::Stopped`]); comfort silence, if on,
    /// carries on.
    pub fn stop(&mut self) {
        if self.playback.take().is_some() {
            self.events.push_back(PlayerEvent::Stopped);
            if !self.comfort {
                self.schedule = None;
            }
        }
    }

    /// When the next frame is due; `None` while not sending.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.schedule.map(|s| s.due())
    }

    /// The next frame due by `now`, if any; call until `None`.
    ///
    /// Polled late, it catches up by handing out the overdue frames back to back, but never
    /// more than [`MAX_BURST`] (3): frames further behind are skipped — the schedule, the clip
    /// and the timestamp move on past them, the sequence number does not (to the peer it looks
    /// like a silence-suppressed gap, not loss) — so playback keeps its absolute schedule and
    /// the peer never gets a burst it cannot absorb.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<RtpFrame> {
        let schedule = self.schedule?;
        let due = schedule.due();
        if due > now {
            return None;
        }
        let also_due = frames_between(due, now);
        if also_due >= MAX_BURST {
            // Skipping may finish the clip and, without comfort silence, stop sending.
            self.skip(also_due + 1 - MAX_BURST);
        }
        let schedule = self.schedule.as_mut()?;
        let due = schedule.due();
        schedule.index += 1;

        let mut payload = [self.law.silence(); FRAME_SAMPLES];
        let mut finished = false;
        if let Some(p) = self.playback.as_mut() {
            p.fill(&mut payload);
            if p.clip.law() != self.law {
                let t = match self.law {
                    Law::Pcma => Transcode::UlawToAlaw,
                    Law::Pcmu => Transcode::AlawToUlaw,
                };
                t.apply(&mut payload);
            }
            finished = p.frames_left == 0;
        }
        let frame = RtpFrame {
            due,
            seq: self.stream.next_seq,
            timestamp: self.stream.next_timestamp,
            ssrc: self.stream.ssrc,
            marker: std::mem::take(&mut self.marker_next),
            payload_type: self.payload_type,
            payload,
        };
        self.stream.next_seq = self.stream.next_seq.wrapping_add(1);
        self.stream.next_timestamp = self
            .stream
            .next_timestamp
            .wrapping_add(FRAME_SAMPLES as u32);
        self.last_due = Some(due);
        if finished {
            self.finish();
        }
        Some(frame)
    }

    /// The next event (a clip finished or stopped), if any.
    pub fn poll_event(&mut self) -> Option<PlayerEvent> {
        self.events.pop_front()
    }

    /// Begins a run of sending at `now`: a fresh schedule, the timestamp moved on across the
    /// gap since the last frame, and the marker on the first packet.
    fn start_sending(&mut self, now: Instant) {
        if let Some(last) = self.last_due {
            // The frame after `last` would have been due at last + 20 ms.
            let gap = frames_between(last, now).saturating_sub(1);
            self.advance_timestamp(gap);
        }
        self.schedule = Some(Schedule {
            anchor: now,
            index: 0,
        });
        self.marker_next = true;
    }

    /// Skips `frames` frames of the schedule (and of the clip playing).
    fn skip(&mut self, frames: u64) {
        if let Some(s) = self.schedule.as_mut() {
            s.index = s.index.saturating_add(frames);
        }
        self.advance_timestamp(frames);
        if let Some(p) = self.playback.as_mut() {
            p.skip(frames);
            if p.frames_left == 0 {
                self.finish();
            }
        }
    }

    fn advance_timestamp(&mut self, frames: u64) {
        // Timestamps are modulo 2^32: only the low 32 bits of the product matter.
        let step = (frames as u32).wrapping_mul(FRAME_SAMPLES as u32);
        self.stream.next_timestamp = self.stream.next_timestamp.wrapping_add(step);
    }

    /// The clip played out: report it; stop sending unless comfort silence is on.
    fn finish(&mut self) {
        self.playback = None;
        self.events.push_back(PlayerEvent::Finished);
        if !self.comfort {
            self.schedule = None;
        }
    }
}

#[cfg(test)]
mod tests;
