//! The relay core of one call, sans-IO: for every datagram a side sends to holdless it decides
//! where the datagram goes and rewrites it in place. The packet path is a row of small named
//! steps (after rtpengine's `stream_packet`): parse → latch → map the payload type → count →
//! check direction → pick the destination (egress-checked) → rewrite. The caller owns the
//! sockets and the clock; [`Relay::handle_timeout`] reports a side that went silent.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::{Latching, MediaConfig};
use super::g711::Transcode;
use super::prompt::StreamState;
use super::rtp::{self, RtpHeader};
use super::srtp::{LegKeys, SrtpLeg};
use super::stats::{CallStats, Receiver, StreamStats, CLOCK_RATE};
use super::{MediaId, Side};
use crate::acl::Egress;

/// A latched source that has sent nothing for this long may be replaced by another
/// admissible source (an endpoint that restarted, or a NAT binding that changed). Short
/// enough to recover quickly, long enough that a stray packet cannot flip a live stream.
pub const RELATCH_AFTER: Duration = Duration::from_secs(1);

/// What to do with an RTP packet of one payload type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    /// Not negotiated: drop.
    #[default]
    Drop,
    /// Same codec on both sides: send with this payload type.
    Forward(u8),
    /// The other side took the other G.711 law: transcode, send with this payload type.
    Transcode(u8, Transcode),
    /// An RFC 4733 event: send with this payload type.
    Event(u8),
}

/// Payload type → action, for the packets of one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtMap([Action; 128]);

impl Default for PtMap {
    fn default() -> Self {
        PtMap([Action::Drop; 128])
    }
}

impl PtMap {
    /// Sets the action of a payload type (types above 127 are ignored).
    pub fn set(&mut self, pt: u8, action: Action) {
        if let Some(a) = self.0.get_mut(usize::from(pt)) {
            *a = action;
        }
    }

    /// The action of a payload type.
    pub fn get(&self, pt: u8) -> Action {
        self.0.get(usize::from(pt)).copied().unwrap_or_default()
    }
}

/// What the relay knows of one side from the negotiation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LegParams {
    /// Where the side receives RTP (`None`: not negotiated, rejected, or the hold address).
    pub rtp: Option<SocketAddr>,
    /// Where it receives RTCP.
    pub rtcp: Option<SocketAddr>,
    /// The IP its packets must come from under strict latching (its SDP's `c=`).
    pub source_ip: Option<IpAddr>,
    /// Its SDP says it sends.
    pub sends: bool,
    /// Its SDP says it receives.
    pub receives: bool,
    /// What to do with each payload type it sends.
    pub map: PtMap,
    /// Its SRTP keys (`None`: plain RTP).
    pub srtp: Option<LegKeys>,
}

/// The relay's instructions for a call, from the last completed offer/answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RelayParams {
    /// The caller's side.
    pub caller: LegParams,
    /// The callee's side.
    pub callee: LegParams,
    /// An audio stream was negotiated (media timeouts run only then).
    pub active: bool,
    /// Either side's direction is not sendrecv: the hold timeout applies.
    pub on_hold: bool,
}

impl RelayParams {
    /// One side's parameters.
    pub fn leg(&self, side: Side) -> &LegParams {
        match side {
            Side::Caller => &self.caller,
            Side::Callee => &self.callee,
        }
    }

    /// One side's parameters, to change.
    pub fn leg_mut(&mut self, side: Side) -> &mut LegParams {
        match side {
            Side::Caller => &mut self.caller,
            Side::Callee => &mut self.callee,
        }
    }
}

/// Why a packet was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Not RTP (or RTCP) at all.
    Malformed,
    /// From a source the stream is not latched to and may not latch to.
    Source,
    /// A payload type that was not negotiated.
    PayloadType,
    /// The SDP direction forbids it.
    Direction,
    /// The other side has no address yet.
    NoDestination,
    /// The destination is outside the egress allow-list.
    Egress,
    /// SRTP: failed authentication or the replay check, or could not be protected.
    Srtp,
}

/// The relay's decision for one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send the (rewritten) datagram, same length, to this address from holdless's socket
    /// facing the other side.
    Forward(SocketAddr),
    /// Drop it (counted).
    Drop(DropReason),
}

/// Why a side's media timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutReason {
    /// No RTP for the media timeout.
    NoRtp {
        /// How long the side was silent.
        idle: Duration,
    },
    /// No RTP for the (longer) hold timeout while the call was on hold.
    NoRtpOnHold {
        /// How long the side was silent.
        idle: Duration,
    },
}

impl fmt::Display for TimeoutReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeoutReason::NoRtp { idle } => write!(f, "no RTP for {} s", idle.as_secs()),
            TimeoutReason::NoRtpOnHold { idle } => {
                write!(f, "no RTP for {} s while on hold", idle.as_secs())
            }
        }
    }
}

/// What media reports to the call core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// A side sent no RTP for the media timeout: the call should end, with this reason.
    Timeout {
        /// The call's media.
        id: MediaId,
        /// The silent side.
        side: Side,
        /// Why.
        reason: TimeoutReason,
    },
    /// A DTMF digit from a side whose media is local (RFC 4733 telephone-event or in-band).
    Digit {
        /// The call's media.
        id: MediaId,
        /// The side that pressed it.
        side: Side,
        /// The digit, when and how it came.
        event: crate::media::dtmf::DtmfEvent,
    },
    /// The clip played to a local side has sent its last frame.
    PlayFinished {
        /// The call's media.
        id: MediaId,
        /// The side it played to.
        side: Side,
    },
    /// The media of a released call is gone (sockets closed); its final statistics.
    Released {
        /// The call's media.
        id: MediaId,
        /// What each side sent (boxed: the event queue stays small).
        stats: Box<CallStats>,
    },
}

/// Where packets to one of a side's ports go, egress already checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dest {
    None,
    Allowed(SocketAddr),
    Refused,
}

/// The latching rule for one of a side's addresses (shared with holdless's own media,
/// [`super::local`]).
pub(super) struct Rule<'a> {
    /// The IP the side's SDP advertised.
    pub(super) expected: Option<IpAddr>,
    /// The address the side's SDP advertised for this port.
    pub(super) sdp: Option<SocketAddr>,
    pub(super) mode: Latching,
    pub(super) egress: &'a Egress,
}

/// Latching state of one of a side's addresses (RTP or RTCP).
#[derive(Debug, Clone, Copy)]
pub(super) struct Peer {
    latched: Option<SocketAddr>,
    last_seen: Option<Instant>,
    pub(super) dest: Dest,
}

impl Peer {
    pub(super) const NEW: Peer = Peer {
        latched: None,
        last_seen: None,
        dest: Dest::None,
    };

    /// Symmetric RTP: accepts the packet if it comes from the latched source, or latches to
    /// it when the policy admits it and no live source holds the latch; packets to this side
    /// then go to the latched address.
    pub(super) fn admit(&mut self, now: Instant, src: SocketAddr, rule: &Rule) -> bool {
        if self.latched == Some(src) {
            self.last_seen = Some(now);
            return true;
        }
        let admissible = match rule.mode {
            Latching::Strict => rule.expected.is_some_and(|ip| same_ip(ip, src.ip())),
            Latching::Any => true,
        };
        let free = match (self.latched, self.last_seen) {
            (Some(_), Some(seen)) => now.saturating_duration_since(seen) >= RELATCH_AFTER,
            _ => true,
        };
        if admissible && free {
            self.latched = Some(src);
            self.last_seen = Some(now);
            self.refresh(rule.sdp, rule.egress);
        }
        admissible && free
    }

    pub(super) fn refresh(&mut self, sdp: Option<SocketAddr>, egress: &Egress) {
        self.dest = match self.latched.or(sdp) {
            None => Dest::None,
            Some(a) if egress.permits(a.ip()) => Dest::Allowed(a),
            Some(_) => Dest::Refused,
        };
    }
}

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    let canon = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    canon(a) == canon(b)
}

#[derive(Debug, Clone)]
struct Leg {
    rtp: Peer,
    rtcp: Peer,
    receiver: Receiver,
    stats: StreamStats,
    last_rtp: Instant,
    timed_out: bool,
}

/// The relay state of one call.
#[derive(Debug)]
pub struct Relay {
    latching: Latching,
    timeout: Duration,
    hold_timeout: Duration,
    egress: Arc<Egress>,
    epoch: Instant,
    params: RelayParams,
    legs: [Leg; 2],
    /// Per destination side (caller, callee): the stream rewrite that carries on a stream
    /// holdless's own player sent to it. `None` (every bridged call): packets keep their
    /// numbering and the hot path pays one untaken branch.
    continuity: [Option<Continuity>; 2],
    /// Per side (caller, callee): its SRTP contexts, when it speaks SRTP.
    srtp: [Option<Box<SrtpLeg>>; 2],
}

fn ix(side: Side) -> usize {
    match side {
        Side::Caller => 0,
        Side::Callee => 1,
    }
}

const SIDES: [Side; 2] = [Side::Caller, Side::Callee];

impl Relay {
    /// A relay with nothing negotiated: every packet is dropped until [`Relay::update`].
    pub fn new(now: Instant, cfg: &MediaConfig, egress: Arc<Egress>) -> Relay {
        let leg = Leg {
            rtp: Peer::NEW,
            rtcp: Peer::NEW,
            receiver: Receiver::default(),
            stats: StreamStats::default(),
            last_rtp: now,
            timed_out: false,
        };
        Relay {
            latching: cfg.latching,
            timeout: cfg.timeout,
            hold_timeout: cfg.hold_timeout,
            egress,
            epoch: now,
            params: RelayParams::default(),
            legs: [leg.clone(), leg],
            continuity: [None, None],
            srtp: [None, None],
        }
    }

    /// Adopts `side`'s SRTP contexts until now (from its local media) when their keys are
    /// those in force, so the rollover counter and the replay window carry on.
    pub fn adopt_srtp(&mut self, side: Side, srtp: Box<SrtpLeg>) {
        if Some(*srtp.keys()) == self.params.leg(side).srtp {
            self.srtp[ix(side)] = Some(srtp);
        }
    }

    /// Takes `side`'s SRTP contexts out (to hand them to its local media).
    pub fn take_srtp(&mut self, side: Side) -> Option<Box<SrtpLeg>> {
        self.srtp[ix(side)].take()
    }

    /// From now on, packets forwarded toward `toward` carry on `c`'s stream (its SSRC, its
    /// sequence numbers and timestamps). Kept across later negotiations, for the whole call.
    pub fn set_continuity(&mut self, toward: Side, c: Continuity) {
        self.continuity[ix(toward)] = Some(c);
    }

    /// Stops rewriting toward `toward`; returns the rewrite, to carry its stream on.
    pub fn take_continuity(&mut self, toward: Side) -> Option<Continuity> {
        self.continuity[ix(toward)].take()
    }

    /// The rewrite of packets forwarded toward `toward`, if any.
    pub fn continuity(&self, toward: Side) -> Option<&Continuity> {
        self.continuity[ix(toward)].as_ref()
    }

    /// Applies a completed negotiation. A side whose address changed is unlatched; the
    /// media timeouts restart. Stream continuity ([`Relay::set_continuity`]) is kept.
    pub fn update(&mut self, now: Instant, params: RelayParams) {
        for side in SIDES {
            let (old, new) = (self.params.leg(side), params.leg(side));
            let leg = &mut self.legs[ix(side)];
            if old.source_ip != new.source_ip || old.rtp != new.rtp {
                leg.rtp = Peer::NEW;
            }
            if old.source_ip != new.source_ip || old.rtcp != new.rtcp {
                leg.rtcp = Peer::NEW;
            }
            leg.rtp.refresh(new.rtp, &self.egress);
            leg.rtcp.refresh(new.rtcp, &self.egress);
            leg.last_rtp = now;
            leg.timed_out = false;
            let slot = &mut self.srtp[ix(side)];
            if slot.as_ref().map(|s| *s.keys()) != new.srtp {
                *slot = new.srtp.as_ref().and_then(srtp_leg);
            }
        }
        self.params = params;
    }

    /// A datagram, the first `len` bytes of `slot`, reached holdless's port facing `from`
    /// (RTCP's when `rtcp`). Unprotected first when `from` speaks SRTP (so only an
    /// authentic packet can latch), relayed as by [`Relay::rtp_in`] and [`Relay::rtcp_in`],
    /// then protected when the other side speaks SRTP. On [`Verdict::Forward`] the first
    /// returned-length bytes of `slot` go out; `slot` needs room for the SRTP tag.
    pub fn packet_in(
        &mut self,
        now: Instant,
        from: Side,
        rtcp: bool,
        src: SocketAddr,
        slot: &mut [u8],
        len: usize,
    ) -> (Verdict, usize) {
        let (i, o) = (ix(from), ix(from.other()));
        let mut len = len.min(slot.len());
        if self.params.leg(from).srtp.is_some() {
            let plain = self.srtp[i]
                .as_deref_mut()
                .and_then(|s| s.unprotect_in_place(rtcp, slot, len).ok());
            match plain {
                Some(n) => len = n,
                None => return (self.dropped(i, DropReason::Srtp), 0),
            }
        }
        let verdict = if rtcp {
            self.rtcp_in(now, from, src, &slot[..len])
        } else {
            self.rtp_in(now, from, src, &mut slot[..len])
        };
        if matches!(verdict, Verdict::Forward(_)) && self.params.leg(from.other()).srtp.is_some() {
            let wire = self.srtp[o]
                .as_deref_mut()
                .and_then(|s| s.protect_in_place(rtcp, slot, len).ok());
            match wire {
                Some(n) => len = n,
                None => {
                    let s = &mut self.legs[i].stats;
                    s.relayed = s.relayed.saturating_sub(1);
                    return (self.dropped(i, DropReason::Srtp), 0);
                }
            }
        }
        (verdict, len)
    }

    /// The parameters in force.
    pub fn params(&self) -> &RelayParams {
        &self.params
    }

    /// An RTP datagram from `src` reached holdless's RTP port facing `from`. On
    /// [`Verdict::Forward`] `buf` has been rewritten (same length) for the other side.
    pub fn rtp_in(&mut self, now: Instant, from: Side, src: SocketAddr, buf: &mut [u8]) -> Verdict {
        let (i, o) = (ix(from), ix(from.other()));
        let Some(h) = rtp::parse_rtp(buf) else {
            return self.dropped(i, DropReason::Malformed);
        };
        let p = self.params.leg(from);
        let leg = &mut self.legs[i];
        let rule = Rule {
            expected: p.source_ip,
            sdp: p.rtp,
            mode: self.latching,
            egress: &self.egress,
        };
        if !leg.rtp.admit(now, src, &rule) {
            return self.dropped(i, DropReason::Source);
        }
        leg.last_rtp = now;
        let action = p.map.get(h.pt);
        if action == Action::Drop {
            return self.dropped(i, DropReason::PayloadType);
        }
        let arrival = arrival_ticks(self.epoch, now);
        let leg = &mut self.legs[i];
        let audio = !matches!(action, Action::Event(_));
        leg.receiver
            .update(h.ssrc, h.seq, h.timestamp, arrival, audio);
        leg.stats.packets += 1;
        leg.stats.bytes += buf.len() as u64;
        leg.stats.events += u64::from(!audio);
        if !p.sends || !self.params.leg(from.other()).receives {
            return self.dropped(i, DropReason::Direction);
        }
        let to = match self.legs[o].rtp.dest {
            Dest::Allowed(a) => a,
            Dest::None => return self.dropped(i, DropReason::NoDestination),
            Dest::Refused => return self.dropped(i, DropReason::Egress),
        };
        if let Some(c) = self.continuity[o].as_mut() {
            c.rewrite(now, &h, buf);
        }
        let stats = &mut self.legs[i].stats;
        match action {
            Action::Forward(pt) | Action::Event(pt) => rtp::set_pt(buf, pt),
            Action::Transcode(pt, how) => {
                rtp::set_pt(buf, pt);
                how.apply(&mut buf[h.payload_start..h.payload_end]);
                stats.transcoded += 1;
            }
            Action::Drop => {}
        }
        stats.relayed += 1;
        Verdict::Forward(to)
    }

    /// An RTCP datagram from `src` reached holdless's RTCP port facing `from`. RTCP flows in
    /// every direction state (RFC 3264 §5.1) and is forwarded unchanged.
    pub fn rtcp_in(&mut self, now: Instant, from: Side, src: SocketAddr, buf: &[u8]) -> Verdict {
        let (i, o) = (ix(from), ix(from.other()));
        if !rtp::is_rtcp(buf) {
            return self.dropped(i, DropReason::Malformed);
        }
        let p = self.params.leg(from);
        let leg = &mut self.legs[i];
        let rule = Rule {
            expected: p.source_ip,
            sdp: p.rtcp,
            mode: self.latching,
            egress: &self.egress,
        };
        if !leg.rtcp.admit(now, src, &rule) {
            return self.dropped(i, DropReason::Source);
        }
        leg.stats.rtcp_packets += 1;
        let to = match self.legs[o].rtcp.dest {
            Dest::Allowed(a) => a,
            Dest::None => return self.dropped(i, DropReason::NoDestination),
            Dest::Refused => return self.dropped(i, DropReason::Egress),
        };
        self.legs[i].stats.relayed += 1;
        Verdict::Forward(to)
    }

    /// The shell could not send a forwarded packet (socket buffer full).
    pub fn send_failed(&mut self, from: Side) {
        let s = &mut self.legs[ix(from)].stats;
        s.relayed = s.relayed.saturating_sub(1);
        s.dropped.send_failed += 1;
    }

    fn dropped(&mut self, i: usize, why: DropReason) -> Verdict {
        let d = &mut self.legs[i].stats.dropped;
        match why {
            DropReason::Malformed => d.malformed += 1,
            DropReason::Source => d.source += 1,
            DropReason::PayloadType => d.payload_type += 1,
            DropReason::Direction => d.direction += 1,
            DropReason::NoDestination => d.no_destination += 1,
            DropReason::Egress => d.egress += 1,
            DropReason::Srtp => d.srtp += 1,
        }
        Verdict::Drop(why)
    }

    fn limit(&self) -> (Duration, bool) {
        if self.params.on_hold {
            (self.hold_timeout, true)
        } else {
            (self.timeout, false)
        }
    }

    /// When the next media timeout is due, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.params.active {
            return None;
        }
        let (limit, _) = self.limit();
        self.legs
            .iter()
            .filter(|l| !l.timed_out)
            .map(|l| l.last_rtp + limit)
            .min()
    }

    /// Reports one side whose media timed out by `now` (call again for the other); each
    /// side is reported once per negotiation.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<(Side, TimeoutReason)> {
        if !self.params.active {
            return None;
        }
        let (limit, hold) = self.limit();
        for side in SIDES {
            let leg = &mut self.legs[ix(side)];
            let idle = now.saturating_duration_since(leg.last_rtp);
            if !leg.timed_out && idle >= limit {
                leg.timed_out = true;
                let reason = if hold {
                    TimeoutReason::NoRtpOnHold { idle }
                } else {
                    TimeoutReason::NoRtp { idle }
                };
                return Some((side, reason));
            }
        }
        None
    }

    /// What each side has sent so far.
    pub fn stats(&self) -> CallStats {
        let side = |l: &Leg| StreamStats {
            lost: l.receiver.lost(),
            jitter: l.receiver.jitter(),
            ..l.stats
        };
        CallStats {
            caller: side(&self.legs[0]),
            callee: side(&self.legs[1]),
        }
    }
}

/// SRTP contexts for `keys`; `None` (logged) if they cannot be made, and the side's
/// packets are then dropped as [`DropReason::Srtp`].
pub(super) fn srtp_leg(keys: &LegKeys) -> Option<Box<SrtpLeg>> {
    match SrtpLeg::with_keys(keys) {
        Ok(s) => Some(Box::new(s)),
        Err(e) => {
            tracing::warn!(error = %e, "SRTP contexts could not be made; the side's media is dropped");
            None
        }
    }
}

/// Time since `epoch` in RTP timestamp units.
pub(super) fn arrival_ticks(epoch: Instant, now: Instant) -> u32 {
    let d = now.saturating_duration_since(epoch);
    let per_tick = 1_000_000_000 / CLOCK_RATE;
    (d.as_secs()
        .wrapping_mul(u64::from(CLOCK_RATE))
        .wrapping_add(u64::from(d.subsec_nanos() / per_tick))) as u32
}

/// Samples of one 20 ms G.711 frame: the least a re-anchored timestamp moves on.
const FRAME_TICKS: u32 = 160;

/// What a [`Continuity`] has computed for one incoming stream (SSRC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Anchor {
    src_ssrc: u32,
    seq_off: u16,
    ts_off: u32,
}

/// Carries on, toward one side, an RTP stream holdless sent itself (its prompt player), so
/// the side sees one continuous stream when the relay takes over: every packet forwarded
/// toward the side gets the player's SSRC and sequence numbers and timestamps shifted by
/// offsets (`seq_out = seq_in + seq_off`, `ts_out = ts_in + ts_off`, wrapping).
///
/// The offsets are computed at the first packet of each incoming SSRC: its sequence number
/// follows the last one sent toward the side, its timestamp the last one plus the time
/// elapsed since (at least one 20 ms frame), and it carries the marker bit (RFC 3550 §5.1:
/// the timestamp jumps, a new talkspurt starts). Later packets of that SSRC keep their own
/// spacing, reordering and gaps. RTCP forwarded toward the side is not rewritten (its SSRC
/// fields still name the far end's stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Continuity {
    ssrc: u32,
    /// Sequence number and timestamp of the newest packet sent toward the side, and when.
    last_seq: u16,
    last_ts: u32,
    last_at: Instant,
    anchor: Option<Anchor>,
}

impl Continuity {
    /// Carries on `stream` (what the player's next packet would carry), whose last frame was
    /// due at `last_sent` (`None`: it sent nothing; `now` is used).
    pub fn new(stream: StreamState, last_sent: Option<Instant>, now: Instant) -> Continuity {
        Continuity {
            ssrc: stream.ssrc,
            last_seq: stream.next_seq.wrapping_sub(1),
            last_ts: stream.next_timestamp.wrapping_sub(FRAME_TICKS),
            last_at: last_sent.unwrap_or(now),
            anchor: None,
        }
    }

    /// The SSRC packets toward the side carry.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The stream as of `now`, to hand back to a player: the next sequence number, and the
    /// timestamp moved on by the time since the last packet (at least one frame).
    pub fn stream(&self, now: Instant) -> StreamState {
        StreamState {
            ssrc: self.ssrc,
            next_seq: self.last_seq.wrapping_add(1),
            next_timestamp: self.last_ts.wrapping_add(self.gap(now)),
        }
    }

    /// Timestamp units from the last packet to `now`, at least one frame.
    fn gap(&self, now: Instant) -> u32 {
        let nanos = now.saturating_duration_since(self.last_at).as_nanos();
        let ticks = nanos * u128::from(CLOCK_RATE) / 1_000_000_000;
        // Timestamps are modulo 2^32.
        (ticks as u32).max(FRAME_TICKS)
    }

    /// Rewrites a forwarded packet's sequence number, timestamp and SSRC (and the marker bit
    /// on the first packet of a new incoming SSRC). `buf` holds the packet `h` was parsed from.
    fn rewrite(&mut self, now: Instant, h: &RtpHeader, buf: &mut [u8]) {
        let anchor = match self.anchor {
            Some(a) if a.src_ssrc == h.ssrc => a,
            _ => {
                let a = Anchor {
                    src_ssrc: h.ssrc,
                    seq_off: self.last_seq.wrapping_add(1).wrapping_sub(h.seq),
                    ts_off: self
                        .last_ts
                        .wrapping_add(self.gap(now))
                        .wrapping_sub(h.timestamp),
                };
                self.anchor = Some(a);
                if let Some(b) = buf.get_mut(1) {
                    *b |= 0x80;
                }
                a
            }
        };
        let seq = h.seq.wrapping_add(anchor.seq_off);
        let ts = h.timestamp.wrapping_add(anchor.ts_off);
        if let Some(head) = buf.get_mut(2..12) {
            head[0..2].copy_from_slice(&seq.to_be_bytes());
            head[2..6].copy_from_slice(&ts.to_be_bytes());
            head[6..10].copy_from_slice(&self.ssrc.to_be_bytes());
        }
        // Newer than the newest sent (RFC 3550 A.1 style: less than half the space ahead).
        let ahead = seq.wrapping_sub(self.last_seq);
        if ahead != 0 && ahead < 0x8000 {
            self.last_seq = seq;
            self.last_ts = ts;
            self.last_at = now;
        }
    }
}

#[cfg(test)]
mod continuity_tests {
    use super::*;
    use crate::media::rtp::{build_rtp, parse_rtp};

    const CALLER: ([u8; 4], u16) = ([127, 0, 0, 10], 4000);
    const CALLEE: ([u8; 4], u16) = ([127, 0, 0, 20], 5000);

    fn addr((ip, port): ([u8; 4], u16)) -> SocketAddr {
        SocketAddr::from((ip, port))
    }

    fn leg(at: SocketAddr, map: &[(u8, Action)]) -> LegParams {
        let mut m = PtMap::default();
        for &(pt, a) in map {
            m.set(pt, a);
        }
        LegParams {
            rtp: Some(at),
            rtcp: None,
            source_ip: Some(at.ip()),
            sends: true,
            receives: true,
            map: m,
            srtp: None,
        }
    }

    fn relay(t0: Instant) -> Relay {
        let egress = Arc::new(Egress::new(vec!["127.0.0.0/8".parse().unwrap()]));
        let mut r = Relay::new(t0, &MediaConfig::default(), egress);
        let fwd = [(0, Action::Forward(0)), (101, Action::Event(101))];
        r.update(
            t0,
            RelayParams {
                caller: leg(addr(CALLER), &fwd),
                callee: leg(addr(CALLEE), &fwd),
                active: true,
                on_hold: false,
            },
        );
        r
    }

    const PLAYER: StreamState = StreamState {
        ssrc: 0x5151_5151,
        next_seq: 65_534,
        next_timestamp: u32::MAX - 100,
    };

    /// A packet from the callee through the relay: the header the caller gets, and its marker.
    fn from_callee(r: &mut Relay, now: Instant, seq: u16, ts: u32, ssrc: u32) -> (RtpHeader, bool) {
        let mut p = build_rtp(0, seq, ts, ssrc, &[0xFF; 160]);
        let v = r.rtp_in(now, Side::Callee, addr(CALLEE), &mut p);
        assert_eq!(v, Verdict::Forward(addr(CALLER)));
        assert_eq!(p[12..], [0xFF; 160], "payload untouched");
        (parse_rtp(&p).unwrap(), p[1] & 0x80 != 0)
    }

    #[test]
    fn forwarded_packets_carry_on_the_players_stream() {
        let t0 = Instant::now();
        let mut r = relay(t0);
        let last_frame = t0;
        r.set_continuity(Side::Caller, Continuity::new(PLAYER, Some(last_frame), t0));
        // The callee's first packet arrives 20 ms after the player's last frame.
        let t1 = t0 + Duration::from_millis(20);
        let (h, marker) = from_callee(&mut r, t1, 1000, 80_000, 0xCA11EE);
        assert_eq!(
            (h.seq, h.timestamp, h.ssrc, marker),
            (PLAYER.next_seq, PLAYER.next_timestamp, PLAYER.ssrc, true),
            "continues the player's numbering, marker set"
        );
        // The next ones keep their spacing, wrapping, without the marker.
        for k in 1..5u16 {
            let (h, marker) = from_callee(
                &mut r,
                t1 + Duration::from_millis(20 * u64::from(k)),
                1000 + k,
                80_000 + 160 * u32::from(k),
                0xCA11EE,
            );
            assert_eq!(h.seq, PLAYER.next_seq.wrapping_add(k));
            assert_eq!(
                h.timestamp,
                PLAYER.next_timestamp.wrapping_add(160 * u32::from(k))
            );
            assert_eq!((h.ssrc, marker), (PLAYER.ssrc, false));
        }
        // Nothing toward the callee is rewritten.
        let mut p = build_rtp(0, 7, 7, 7, &[0xFF; 160]);
        let v = r.rtp_in(t1, Side::Caller, addr(CALLER), &mut p);
        assert_eq!(v, Verdict::Forward(addr(CALLEE)));
        assert_eq!(p, build_rtp(0, 7, 7, 7, &[0xFF; 160]));
    }

    #[test]
    fn a_late_first_packet_moves_the_timestamp_on_by_the_gap() {
        let t0 = Instant::now();
        let mut r = relay(t0);
        r.set_continuity(Side::Caller, Continuity::new(PLAYER, Some(t0), t0));
        // 1 s after the last frame: 50 frames later, 49 frames past the next slot.
        let (h, _) = from_callee(&mut r, t0 + Duration::from_secs(1), 9, 9, 1);
        assert_eq!(h.seq, PLAYER.next_seq);
        assert_eq!(h.timestamp, PLAYER.next_timestamp.wrapping_add(49 * 160));
    }

    #[test]
    fn a_new_incoming_ssrc_reanchors_with_the_marker() {
        let t0 = Instant::now();
        let mut r = relay(t0);
        r.set_continuity(Side::Caller, Continuity::new(PLAYER, Some(t0), t0));
        let t1 = t0 + Duration::from_millis(20);
        from_callee(&mut r, t1, 500, 1_000, 0xA);
        from_callee(&mut r, t1 + Duration::from_millis(20), 501, 1_160, 0xA);
        // A reordered straggler keeps its place and does not move the newest.
        let (h, _) = from_callee(&mut r, t1 + Duration::from_millis(30), 499, 840, 0xA);
        assert_eq!(h.seq, PLAYER.next_seq.wrapping_sub(1));
        // The far end restarts with another SSRC and numbering.
        let (h, marker) = from_callee(&mut r, t1 + Duration::from_millis(40), 7, 123, 0xB);
        assert_eq!(h.seq, PLAYER.next_seq.wrapping_add(2));
        assert_eq!(h.timestamp, PLAYER.next_timestamp.wrapping_add(2 * 160));
        assert_eq!((h.ssrc, marker), (PLAYER.ssrc, true));
        // Kept across a renegotiation; handed back as a stream.
        r.update(t1, r.params().clone());
        assert!(r.continuity(Side::Caller).is_some());
        let c = r.take_continuity(Side::Caller).unwrap();
        let s = c.stream(t1 + Duration::from_millis(60));
        assert_eq!(s.ssrc, PLAYER.ssrc);
        assert_eq!(s.next_seq, PLAYER.next_seq.wrapping_add(3));
        assert_eq!(
            s.next_timestamp,
            PLAYER.next_timestamp.wrapping_add(3 * 160)
        );
    }
}
