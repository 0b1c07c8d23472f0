//! holdless's own media toward one side, sans-IO: while a side is answered locally
//! ([`super::MediaControl::answer_locally`]) holdless is its far end. [`LocalMedia`] sends the
//! side prompts (a [`Player`] with comfort silence between them, so the side hears one
//! continuous stream and NAT bindings stay open) and listens for its DTMF (RFC 4733
//! telephone-events and in-band tones).
//!
//! The side's packets get the relay's checks: symmetric RTP latching under the configured
//! policy (strict: only from the IP its SDP advertised) and the egress allow-list on every
//! frame sent. The media timeout runs as in the relay. RTCP from the side is accepted and
//! counted, never answered: holdless sends no RTCP of its own yet (sender reports could come
//! later; RTP alone keeps the stream and the NAT binding alive).
//!
//! When the side is joined to another leg, [`LocalMedia::continuity`] hands the player's
//! stream to the relay ([`Continuity`]) so the side's stream carries on without a break.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::{Latching, MediaConfig};
use super::dtmf::{DtmfEvent, InbandDetector, TelephoneEventDetector};
use super::g711;
use super::negotiate::LocalParams;
use super::prompt::player::{FRAME_SAMPLES, PTIME};
use super::prompt::{Clip, Law, Player, PlayerEvent, RtpFrame, StreamState};
use super::relay::{
    arrival_ticks, srtp_leg, Continuity, Dest, Peer, RelayParams, Rule, TimeoutReason,
};
use super::rtp;
use super::srtp::SrtpLeg;
use super::stats::{CallStats, DropCounts, Receiver, StreamStats};
use super::Side;
use crate::acl::Egress;

/// What holdless's own media toward one side is built from: what it speaks
/// ([`LocalParams`]) and where the side is, from the negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalSetup {
    /// The codec and payload types agreed with the side.
    pub params: LocalParams,
    /// Where the side receives RTP, from its SDP (`None`: nowhere to send yet).
    pub rtp: Option<SocketAddr>,
    /// Where it receives RTCP.
    pub rtcp: Option<SocketAddr>,
    /// The IP its packets must come from under strict latching (its SDP's `c=`).
    pub source_ip: Option<IpAddr>,
    /// Its SDP says it receives (else frames are not sent: hold, inactive).
    pub receives: bool,
    /// The stream is not sendrecv: the hold timeout applies.
    pub on_hold: bool,
}

impl LocalSetup {
    /// The setup of `side` after the negotiation that answered it locally.
    pub fn from_negotiation(params: LocalParams, relay: &RelayParams, side: Side) -> LocalSetup {
        let leg = relay.leg(side);
        LocalSetup {
            params,
            rtp: leg.rtp,
            rtcp: leg.rtcp,
            source_ip: leg.source_ip,
            receives: leg.receives,
            on_hold: relay.on_hold,
        }
    }
}

/// holdless as the far end of one side: a prompt player out, DTMF detectors in.
///
/// In-band detection decodes every audio packet and runs Goertzel filters over it, the
/// costliest thing local media does; once the side has sent an RFC 4733 event on the
/// negotiated telephone-event payload type, its keys are known to come that way and in-band
/// detection stops for the rest of this media (a phone that sends both would otherwise also
/// give each key twice).
#[derive(Debug)]
pub struct LocalMedia {
    setup: LocalSetup,
    latching: Latching,
    timeout: Duration,
    hold_timeout: Duration,
    egress: Arc<Egress>,
    epoch: Instant,
    rtp: Peer,
    rtcp: Peer,
    law: Law,
    player: Player,
    events: Option<TelephoneEventDetector>,
    events_seen: bool,
    inband: InbandDetector,
    /// Digits found after the first of one packet.
    digits: VecDeque<DtmfEvent>,
    /// Player events carried over from media this one replaced.
    notices: VecDeque<PlayerEvent>,
    receiver: Receiver,
    stats: StreamStats,
    /// Statistics of media this one replaced.
    earlier: StreamStats,
    last_rtp: Instant,
    timed_out: bool,
    /// When the last frame handed out was due.
    last_sent: Option<Instant>,
    frames_sent: u64,
    frames_unsent: u64,
    /// The side's SRTP contexts, when it speaks SRTP.
    srtp: Option<Box<SrtpLeg>>,
}

/// The longest frame [`LocalMedia::write_frame`] writes: a frame and the longest SRTP tag.
pub const FRAME_WIRE_MAX: usize = RtpFrame::LEN + 16;

impl LocalMedia {
    /// Media toward a side set up as `setup`, carrying on `stream` (a random one for a new
    /// call, [`Continuity::stream`] when the relay sent to the side before). Comfort silence
    /// starts at `now`; the media timeout runs from `now`.
    pub fn new(
        now: Instant,
        cfg: &MediaConfig,
        egress: Arc<Egress>,
        setup: LocalSetup,
        stream: StreamState,
    ) -> LocalMedia {
        // The negotiation only answers locally with a G.711 law.
        let law = Law::from_codec(setup.params.codec).unwrap_or(Law::Pcmu);
        let mut player = Player::new(stream, law, setup.params.audio_pt);
        player.set_comfort_silence(now, true);
        let mut rtp = Peer::NEW;
        rtp.refresh(setup.rtp, &egress);
        let mut rtcp = Peer::NEW;
        rtcp.refresh(setup.rtcp, &egress);
        LocalMedia {
            setup,
            latching: cfg.latching,
            timeout: cfg.timeout,
            hold_timeout: cfg.hold_timeout,
            egress,
            epoch: now,
            rtp,
            rtcp,
            law,
            player,
            events: setup.params.events_pt.map(TelephoneEventDetector::new),
            events_seen: false,
            inband: InbandDetector::new(),
            digits: VecDeque::new(),
            notices: VecDeque::new(),
            receiver: Receiver::default(),
            stats: StreamStats::default(),
            earlier: StreamStats::default(),
            last_rtp: now,
            timed_out: false,
            last_sent: None,
            frames_sent: 0,
            frames_unsent: 0,
            srtp: setup.params.srtp.as_ref().and_then(srtp_leg),
        }
    }

    /// Adopts `srtp`, the side's SRTP contexts until now (from the relay or the media this
    /// replaces), when its keys are still those in force, so the rollover counter and the
    /// replay window carry on; otherwise keeps its own.
    pub fn adopt_srtp(&mut self, srtp: Box<SrtpLeg>) {
        if Some(*srtp.keys()) == self.setup.params.srtp {
            self.srtp = Some(srtp);
        }
    }

    /// Takes the side's SRTP contexts out (to hand them to the relay).
    pub fn take_srtp(&mut self) -> Option<Box<SrtpLeg>> {
        self.srtp.take()
    }

    /// Writes `frame` into `buf` as it goes on the wire: SRTP-protected when the side speaks
    /// SRTP. Returns the length, or `None` when it cannot be written (`buf` shorter than
    /// [`FRAME_WIRE_MAX`], or no SRTP contexts), counted as unsent by the caller.
    pub fn write_frame(&mut self, frame: &RtpFrame, buf: &mut [u8]) -> Option<usize> {
        let n = frame.write(buf)?;
        if self.setup.params.srtp.is_none() {
            return Some(n);
        }
        self.srtp
            .as_deref_mut()?
            .protect_in_place(false, buf, n)
            .ok()
    }

    /// What it was set up with.
    pub fn setup(&self) -> &LocalSetup {
        &self.setup
    }

    /// The law frames are sent in.
    pub fn law(&self) -> Law {
        self.law
    }

    /// Replaces `old`, the media of the same side before a renegotiation: the stream carries
    /// on; with the same codec and payload type the player itself carries on (a prompt keeps
    /// playing), otherwise a prompt playing ends there, reported as finished so whoever
    /// waits for it moves on. Latching, detectors and statistics carry over where they still
    /// apply.
    pub fn take_over(&mut self, mut old: LocalMedia) {
        let same_audio =
            old.law == self.law && old.setup.params.audio_pt == self.setup.params.audio_pt;
        self.notices.append(&mut old.notices);
        if same_audio {
            std::mem::swap(&mut self.player, &mut old.player);
        } else {
            self.player.set_stream(old.player.stream());
            while let Some(e) = old.player.poll_event() {
                self.notices.push_back(e);
            }
            if old.player.is_playing() {
                self.notices.push_back(PlayerEvent::Finished);
            }
        }
        if old.setup.rtp == self.setup.rtp && old.setup.source_ip == self.setup.source_ip {
            self.rtp = old.rtp;
        }
        if old.setup.rtcp == self.setup.rtcp && old.setup.source_ip == self.setup.source_ip {
            self.rtcp = old.rtcp;
        }
        if old.setup.params.events_pt == self.setup.params.events_pt {
            self.events = old.events.take();
            self.events_seen = old.events_seen;
        }
        if let Some(srtp) = old.srtp.take() {
            self.adopt_srtp(srtp);
        }
        std::mem::swap(&mut self.inband, &mut old.inband);
        self.digits.append(&mut old.digits);
        self.earlier = old.stats();
        self.last_sent = old.last_sent;
        self.frames_sent += old.frames_sent;
        self.frames_unsent += old.frames_unsent;
    }

    /// Carries on `stream` (SSRC, next sequence number and timestamp) from the next frame.
    pub fn continue_stream(&mut self, stream: StreamState) {
        self.player.set_stream(stream);
    }

    /// An RTP datagram from `src` on holdless's RTP port facing the side. Returns a digit
    /// when the packet completes one (a further one, rare, from [`LocalMedia::next_digit`]).
    /// Packets that fail the checks are dropped and counted: not RTP, a source the stream
    /// may not latch to, a payload type other than the agreed audio and telephone-event.
    /// From an SRTP side the packet is authenticated and decrypted first (a failure is
    /// counted and dropped).
    pub fn rtp_in(&mut self, now: Instant, src: SocketAddr, pkt: &[u8]) -> Option<DtmfEvent> {
        if self.setup.params.srtp.is_some() {
            let plain = self
                .srtp
                .as_deref_mut()
                .and_then(|s| s.unprotect_rtp(pkt).ok());
            let Some(plain) = plain else {
                self.stats.dropped.srtp += 1;
                return None;
            };
            return self.plain_rtp_in(now, src, &plain);
        }
        self.plain_rtp_in(now, src, pkt)
    }

    fn plain_rtp_in(&mut self, now: Instant, src: SocketAddr, pkt: &[u8]) -> Option<DtmfEvent> {
        let Some(h) = rtp::parse_rtp(pkt) else {
            self.stats.dropped.malformed += 1;
            return None;
        };
        let rule = Rule {
            expected: self.setup.source_ip,
            sdp: self.setup.rtp,
            mode: self.latching,
            egress: &self.egress,
        };
        if !self.rtp.admit(now, src, &rule) {
            self.stats.dropped.source += 1;
            return None;
        }
        self.last_rtp = now;
        let audio = h.pt == self.setup.params.audio_pt;
        let event = !audio && Some(h.pt) == self.setup.params.events_pt;
        if !audio && !event {
            self.stats.dropped.payload_type += 1;
            return None;
        }
        let arrival = arrival_ticks(self.epoch, now);
        self.receiver
            .update(h.ssrc, h.seq, h.timestamp, arrival, audio);
        self.stats.packets += 1;
        self.stats.bytes += pkt.len() as u64;
        self.stats.events += u64::from(event);
        if event {
            self.events_seen = true;
            return self.events.as_mut()?.on_rtp(now, pkt);
        }
        if self.events_seen {
            return None;
        }
        let payload = pkt.get(h.payload_start..h.payload_end)?;
        let mut first = None;
        let mut pcm = [0i16; FRAME_SAMPLES];
        for (k, chunk) in payload.chunks(FRAME_SAMPLES).enumerate() {
            for (out, &b) in pcm.iter_mut().zip(chunk) {
                *out = match self.law {
                    Law::Pcmu => g711::ulaw_to_linear(b),
                    Law::Pcma => g711::alaw_to_linear(b),
                };
            }
            let at = now + PTIME * k as u32;
            // A 20 ms chunk confirms at most one key.
            if let Some(d) = self.inband.on_samples(at, &pcm[..chunk.len()]) {
                if first.is_none() {
                    first = Some(d);
                } else {
                    self.digits.push_back(d);
                }
            }
        }
        first
    }

    /// A further digit the last [`LocalMedia::rtp_in`] found (a packet of more than 76 ms
    /// of audio can hold two key presses).
    pub fn next_digit(&mut self) -> Option<DtmfEvent> {
        self.digits.pop_front()
    }

    /// An RTCP datagram from `src` on holdless's RTCP port facing the side: accepted (latched,
    /// counted) or dropped, never answered.
    pub fn rtcp_in(&mut self, now: Instant, src: SocketAddr, pkt: &[u8]) {
        if self.setup.params.srtp.is_some() {
            let plain = self
                .srtp
                .as_deref_mut()
                .and_then(|s| s.unprotect_rtcp(pkt).ok());
            match plain {
                Some(plain) => self.plain_rtcp_in(now, src, &plain),
                None => self.stats.dropped.srtp += 1,
            }
            return;
        }
        self.plain_rtcp_in(now, src, pkt)
    }

    fn plain_rtcp_in(&mut self, now: Instant, src: SocketAddr, pkt: &[u8]) {
        if !rtp::is_rtcp(pkt) {
            self.stats.dropped.malformed += 1;
            return;
        }
        let rule = Rule {
            expected: self.setup.source_ip,
            sdp: self.setup.rtcp,
            mode: self.latching,
            egress: &self.egress,
        };
        if self.rtcp.admit(now, src, &rule) {
            self.stats.rtcp_packets += 1;
        } else {
            self.stats.dropped.source += 1;
        }
    }

    /// Plays `clip` to the side from the next 20 ms slot, replacing anything playing.
    pub fn play(&mut self, now: Instant, clip: Clip) {
        self.player.play(now, clip);
    }

    /// Stops what plays (comfort silence carries on).
    pub fn stop(&mut self) {
        self.player.stop();
    }

    /// Whether a clip is playing.
    pub fn is_playing(&self) -> bool {
        self.player.is_playing()
    }

    /// The next frame due by `now` and where to send it (from holdless's RTP port facing the
    /// side); call until `None`. Frames that cannot be sent — the side does not receive, has
    /// no address, or its address is outside the egress allow-list — are consumed and
    /// counted ([`LocalMedia::frames_unsent`]) so the stream's numbering moves on.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<(RtpFrame, SocketAddr)> {
        loop {
            let frame = self.player.poll_transmit(now)?;
            self.last_sent = Some(frame.due);
            match self.rtp.dest {
                Dest::Allowed(to) if self.setup.receives => {
                    self.frames_sent += 1;
                    return Some((frame, to));
                }
                _ => self.frames_unsent += 1,
            }
        }
    }

    /// The shell could not send a frame (socket buffer full).
    pub fn send_failed(&mut self) {
        self.frames_sent = self.frames_sent.saturating_sub(1);
        self.frames_unsent += 1;
    }

    /// The earliest of the next frame's due time and the media timeout.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let media = (!self.timed_out).then(|| self.last_rtp + self.limit().0);
        match (self.player.poll_timeout(), media) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Reports the media timeout once: no RTP from the side for the media timeout (the hold
    /// timeout while the stream is not sendrecv).
    pub fn handle_timeout(&mut self, now: Instant) -> Option<TimeoutReason> {
        let (limit, hold) = self.limit();
        let idle = now.saturating_duration_since(self.last_rtp);
        if self.timed_out || idle < limit {
            return None;
        }
        self.timed_out = true;
        Some(if hold {
            TimeoutReason::NoRtpOnHold { idle }
        } else {
            TimeoutReason::NoRtp { idle }
        })
    }

    fn limit(&self) -> (Duration, bool) {
        if self.setup.on_hold {
            (self.hold_timeout, true)
        } else {
            (self.timeout, false)
        }
    }

    /// The next player event: a clip finished ([`PlayerEvent::Finished`], after its last
    /// frame was handed out) or was stopped or replaced.
    pub fn poll_event(&mut self) -> Option<PlayerEvent> {
        self.notices
            .pop_front()
            .or_else(|| self.player.poll_event())
    }

    /// The stream's numbering as of now: what the next frame would carry.
    pub fn stream(&self) -> StreamState {
        self.player.stream()
    }

    /// The relay's rewrite that carries this stream on toward the side from `now`.
    pub fn continuity(&self, now: Instant) -> Continuity {
        Continuity::new(self.player.stream(), self.last_sent, now)
    }

    /// What the side has sent, in the relay's shape (`relayed` stays 0: nothing is
    /// forwarded).
    pub fn stats(&self) -> StreamStats {
        let now = StreamStats {
            lost: self.receiver.lost(),
            jitter: self.receiver.jitter(),
            ..self.stats
        };
        merge_stats(&self.earlier, &now)
    }

    /// Frames sent toward the side.
    pub fn frames_sent(&self) -> u64 {
        self.frames_sent
    }

    /// Frames not sent (no address, egress refused, the side does not receive, send failed).
    pub fn frames_unsent(&self) -> u64 {
        self.frames_unsent
    }
}

/// A call's statistics: the relay's, each side's with what its local media received,
/// `earlier` (spells already over) and the spell going on (`local`).
pub fn call_stats(
    relay: CallStats,
    earlier: &[StreamStats; 2],
    local: [Option<&LocalMedia>; 2],
) -> CallStats {
    let mut s = relay;
    for (i, side) in [Side::Caller, Side::Callee].into_iter().enumerate() {
        let mut spent = earlier[i];
        if let Some(m) = local[i] {
            spent = merge_stats(&spent, &m.stats());
        }
        let relayed = s.side_mut(side);
        *relayed = merge_stats(&spent, relayed);
    }
    s
}

/// The statistics of one side over two spells (local media, then the relay): counts
/// added, jitter the later spell's when it received anything.
pub fn merge_stats(a: &StreamStats, b: &StreamStats) -> StreamStats {
    let d = |x: &DropCounts, y: &DropCounts| DropCounts {
        malformed: x.malformed + y.malformed,
        source: x.source + y.source,
        payload_type: x.payload_type + y.payload_type,
        direction: x.direction + y.direction,
        no_destination: x.no_destination + y.no_destination,
        egress: x.egress + y.egress,
        send_failed: x.send_failed + y.send_failed,
        srtp: x.srtp + y.srtp,
    };
    StreamStats {
        packets: a.packets + b.packets,
        bytes: a.bytes + b.bytes,
        lost: a.lost + b.lost,
        jitter: if b.packets > 0 { b.jitter } else { a.jitter },
        rtcp_packets: a.rtcp_packets + b.rtcp_packets,
        events: a.events + b.events,
        relayed: a.relayed + b.relayed,
        transcoded: a.transcoded + b.transcoded,
        dropped: d(&a.dropped, &b.dropped),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dtmf::{Digit, DtmfSource};
    use crate::media::rtp::{build_rtp, parse_rtp};
    use crate::media::sdp::Codec;
    use std::sync::Arc;

    const SIDE_IP: [u8; 4] = [127, 0, 0, 10];

    fn at(port: u16) -> SocketAddr {
        SocketAddr::from((SIDE_IP, port))
    }

    fn setup(codec: Codec, audio_pt: u8, events_pt: Option<u8>) -> LocalSetup {
        LocalSetup {
            params: LocalParams {
                codec,
                audio_pt,
                events_pt,
                srtp: None,
            },
            rtp: Some(at(4000)),
            rtcp: Some(at(4001)),
            source_ip: Some(IpAddr::from(SIDE_IP)),
            receives: true,
            on_hold: false,
        }
    }

    const STREAM: StreamState = StreamState {
        ssrc: 0xABCD_0123,
        next_seq: 65_535,
        next_timestamp: 4_000_000_000,
    };

    fn media(t0: Instant, setup: LocalSetup) -> LocalMedia {
        let egress = Arc::new(Egress::new(vec!["127.0.0.0/8".parse().unwrap()]));
        LocalMedia::new(t0, &MediaConfig::default(), egress, setup, STREAM)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A µ-law clip of `n` samples, sample i = i mod 251 (never the silence byte).
    fn clip(n: usize) -> Clip {
        let mut c = Clip::empty(Law::Pcmu);
        let audio: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
        c.push_audio(Arc::from(audio));
        c
    }

    #[test]
    fn frames_are_paced_20_ms_on_the_players_numbering() {
        let t0 = Instant::now();
        let mut m = media(t0, setup(Codec::Pcmu, 0, Some(101)));
        // Comfort silence from the start, to the SDP address.
        let (f, to) = m.poll_transmit(t0).unwrap();
        assert_eq!(to, at(4000));
        assert_eq!(
            (f.seq, f.timestamp, f.ssrc),
            (65_535, 4_000_000_000, STREAM.ssrc)
        );
        assert!(f.marker);
        assert_eq!((f.payload_type, f.payload), (0, [0xFF; 160]));
        assert!(m.poll_transmit(t0).is_none());
        assert!(m.poll_transmit(t0 + ms(19)).is_none());
        assert_eq!(m.poll_timeout(), Some(t0 + ms(20)));
        // A clip of two and a half frames joins the schedule at its next slot.
        m.play(t0 + ms(15), clip(400));
        assert!(m.is_playing());
        let mut payload = Vec::new();
        for k in 1..=3u16 {
            let due = t0 + ms(20 * u64::from(k));
            assert!(m.poll_transmit(due - ms(1)).is_none());
            let (f, _) = m.poll_transmit(due).unwrap();
            assert_eq!(f.due, due);
            assert_eq!(f.seq, 65_535u16.wrapping_add(k));
            assert_eq!(f.timestamp, 4_000_000_000 + 160 * u32::from(k));
            assert!(!f.marker);
            payload.extend_from_slice(&f.payload);
        }
        let want: Vec<u8> = (0..400).map(|i| (i % 251) as u8).collect();
        assert_eq!(payload[..400], want[..]);
        assert_eq!(
            payload[400..],
            [0xFF; 80],
            "the last frame padded with silence"
        );
        assert_eq!(m.poll_event(), Some(PlayerEvent::Finished));
        assert_eq!(m.poll_event(), None);
        // Silence carries on after the clip.
        assert!(m.poll_transmit(t0 + ms(79)).is_none());
        let (f, _) = m.poll_transmit(t0 + ms(80)).unwrap();
        assert_eq!((f.seq, f.payload), (3, [0xFF; 160]));
        assert_eq!(m.frames_sent(), 5);
        assert_eq!(m.stream().next_seq, 4);
    }

    /// The packets of one RFC 4733 key press: start (marker), 2 continuations, 3 ends.
    fn press(code: u8, ts: u32, seq: u16) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for k in 0..6u16 {
            let end = k >= 3;
            let dur = (k.min(3) * 160).to_be_bytes();
            let flags = if end { 0x8A } else { 0x0A };
            let mut p = build_rtp(101, seq + k, ts, 0x77, &[code, flags, dur[0], dur[1]]);
            if k == 0 {
                p[1] |= 0x80;
            }
            out.push(p);
        }
        out
    }

    #[test]
    fn rfc4733_packets_give_each_digit_once() {
        let t0 = Instant::now();
        let mut m = media(t0, setup(Codec::Pcmu, 0, Some(101)));
        let mut digits = Vec::new();
        for (i, p) in press(5, 1000, 1)
            .into_iter()
            .chain(press(11, 2000, 7))
            .enumerate()
        {
            let now = t0 + ms(20 * i as u64);
            if let Some(e) = m.rtp_in(now, at(4000), &p) {
                assert_eq!(e.source, DtmfSource::Rfc4733);
                digits.push((e.digit, e.at));
            }
        }
        assert_eq!(
            digits,
            vec![(Digit::Num(5), t0), (Digit::Pound, t0 + ms(120))]
        );
        let s = m.stats();
        assert_eq!((s.packets, s.events), (12, 12));
        // Another payload type is dropped and counted.
        assert_eq!(
            m.rtp_in(t0, at(4000), &build_rtp(8, 1, 1, 1, &[0xD5; 160])),
            None
        );
        assert_eq!(m.stats().dropped.payload_type, 1);
    }

    /// 20 ms µ-law packets of key `key` (row, column Hz) for `on` ms then `off` ms silence.
    fn tone_packets(row: f32, col: f32, on: usize, off: usize) -> Vec<Vec<u8>> {
        let amp = 22_650.0 * 10f32.powf(-10.0 / 20.0);
        let samples: Vec<u8> = (0..(on + off) * 8)
            .map(|n| {
                if n >= on * 8 {
                    return 0xFF;
                }
                let t = n as f32 / 8000.0;
                let x = amp * (2.0 * std::f32::consts::PI * row * t).sin()
                    + amp * (2.0 * std::f32::consts::PI * col * t).sin();
                g711::linear_to_ulaw(x as i16)
            })
            .collect();
        samples
            .chunks(160)
            .enumerate()
            .map(|(k, c)| build_rtp(0, k as u16, 160 * k as u32, 0x99, c))
            .collect()
    }

    #[test]
    fn inband_tones_give_digits_until_rfc4733_is_seen() {
        let t0 = Instant::now();
        let mut m = media(t0, setup(Codec::Pcmu, 0, Some(101)));
        let run = |m: &mut LocalMedia, pkts: Vec<Vec<u8>>, from: u64| -> Vec<DtmfEvent> {
            pkts.iter()
                .enumerate()
                .filter_map(|(k, p)| m.rtp_in(t0 + ms(from + 20 * k as u64), at(4000), p))
                .collect()
        };
        // Key 7: 852 Hz + 1209 Hz, 100 ms.
        let got = run(&mut m, tone_packets(852.0, 1209.0, 100, 100), 0);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].digit, got[0].source),
            (Digit::Num(7), DtmfSource::Inband)
        );
        // Once an RFC 4733 event came, tones are no longer decoded.
        let ev = press(1, 9000, 100);
        assert!(m.rtp_in(t0 + ms(300), at(4000), &ev[0]).is_some());
        let got = run(&mut m, tone_packets(852.0, 1209.0, 100, 100), 400);
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn inband_digits_in_alaw_without_telephone_event() {
        let t0 = Instant::now();
        let mut m = media(t0, setup(Codec::Pcma, 8, None));
        // The same tone through A-law: 770 + 1336 Hz is key 5.
        let pkts: Vec<Vec<u8>> = tone_packets(770.0, 1336.0, 100, 0)
            .into_iter()
            .map(|mut p| {
                p[1] = 8;
                for b in &mut p[12..] {
                    *b = g711::linear_to_alaw(g711::ulaw_to_linear(*b));
                }
                p
            })
            .collect();
        let got: Vec<Digit> = pkts
            .iter()
            .enumerate()
            .filter_map(|(k, p)| m.rtp_in(t0 + ms(20 * k as u64), at(4000), p))
            .map(|e| e.digit)
            .collect();
        assert_eq!(got, vec![Digit::Num(5)]);
        // Telephone-event was not negotiated: its packets are dropped.
        assert_eq!(m.rtp_in(t0, at(4000), &press(1, 1, 1)[0]), None);
        assert_eq!(m.stats().dropped.payload_type, 1);
        assert_eq!(m.law(), Law::Pcma);
        let (f, _) = m.poll_transmit(t0).unwrap();
        assert_eq!((f.payload_type, f.payload[0]), (8, 0xD5));
    }

    #[test]
    fn strict_latching_refuses_a_wrong_source_and_follows_the_real_one() {
        let t0 = Instant::now();
        let mut m = media(t0, setup(Codec::Pcmu, 0, Some(101)));
        let stranger = SocketAddr::from(([127, 0, 0, 66], 4000));
        let ev = press(3, 500, 1);
        assert_eq!(m.rtp_in(t0, stranger, &ev[0]), None);
        assert_eq!(m.stats().dropped.source, 1);
        assert_eq!(m.stats().packets, 0);
        // The side's IP from another port (NAT) latches; frames follow it.
        let natted = at(61_000);
        assert!(m.rtp_in(t0, natted, &ev[0]).is_some());
        let (_, to) = m.poll_transmit(t0).unwrap();
        assert_eq!(to, natted);
        // Garbage is counted as malformed; RTCP is counted, not answered.
        assert_eq!(m.rtp_in(t0, natted, &[1, 2, 3]), None);
        assert_eq!(m.stats().dropped.malformed, 1);
        m.rtcp_in(t0, at(4001), &[0x80, 201, 0, 1, 0, 0, 0, 1]);
        m.rtcp_in(t0, stranger, &[0x80, 201, 0, 1, 0, 0, 0, 1]);
        let s = m.stats();
        assert_eq!((s.rtcp_packets, s.dropped.source), (1, 2));
    }

    #[test]
    fn frames_go_nowhere_outside_egress_or_to_a_side_that_does_not_receive() {
        let t0 = Instant::now();
        let mut far = setup(Codec::Pcmu, 0, None);
        far.rtp = Some(SocketAddr::from(([10, 9, 9, 9], 4000)));
        far.source_ip = Some(IpAddr::from([10, 9, 9, 9]));
        let mut m = media(t0, far);
        assert!(m.poll_transmit(t0 + ms(40)).is_none());
        assert_eq!((m.frames_sent(), m.frames_unsent()), (0, 3));
        let mut held = setup(Codec::Pcmu, 0, None);
        held.receives = false;
        let mut m = media(t0, held);
        assert!(m.poll_transmit(t0).is_none());
        assert_eq!(m.frames_unsent(), 1);
        assert_eq!(m.stream().next_seq, 0, "the numbering moved on");
    }

    #[test]
    fn media_timeout_fires_once_after_silence_from_the_side() {
        let t0 = Instant::now();
        let mut m = media(t0, setup(Codec::Pcmu, 0, Some(101)));
        let limit = MediaConfig::default().timeout;
        // RTP at 10 s moves the deadline on.
        let p = build_rtp(0, 1, 160, 5, &[0xFF; 160]);
        assert_eq!(m.rtp_in(t0 + Duration::from_secs(10), at(4000), &p), None);
        assert_eq!(m.handle_timeout(t0 + limit), None);
        let due = t0 + Duration::from_secs(10) + limit;
        assert_eq!(
            m.handle_timeout(due),
            Some(TimeoutReason::NoRtp { idle: limit })
        );
        assert_eq!(m.handle_timeout(due + limit), None, "reported once");
        // Only the frames are left to wake for.
        assert_eq!(m.poll_timeout(), Some(t0));
        // On hold, the hold timeout applies.
        let mut held = setup(Codec::Pcmu, 0, None);
        held.on_hold = true;
        let mut m = media(t0, held);
        assert_eq!(m.handle_timeout(t0 + limit), None);
        let hold = MediaConfig::default().hold_timeout;
        assert_eq!(
            m.handle_timeout(t0 + hold),
            Some(TimeoutReason::NoRtpOnHold { idle: hold })
        );
    }

    #[test]
    fn continuity_and_take_over_carry_the_stream_on() {
        let t0 = Instant::now();
        let mut m = media(t0, setup(Codec::Pcmu, 0, Some(101)));
        m.poll_transmit(t0).unwrap();
        m.play(t0, clip(1600));
        m.poll_transmit(t0 + ms(20)).unwrap();
        let c = m.continuity(t0 + ms(30));
        assert_eq!(c.ssrc(), STREAM.ssrc);
        let s = c.stream(t0 + ms(40));
        assert_eq!((s.next_seq, s.next_timestamp), (1, 4_000_000_320));
        // A renegotiated side with the same codec keeps its player (and its prompt).
        let mut again = media(t0 + ms(30), setup(Codec::Pcmu, 0, Some(101)));
        again.take_over(m);
        assert!(again.is_playing());
        let (f, _) = again.poll_transmit(t0 + ms(40)).unwrap();
        assert_eq!((f.seq, f.ssrc), (1, STREAM.ssrc));
        // With another law the prompt ends, reported as finished, the stream carries on.
        let mut other = media(t0 + ms(50), setup(Codec::Pcma, 8, Some(101)));
        other.take_over(again);
        assert!(!other.is_playing());
        assert_eq!(other.poll_event(), Some(PlayerEvent::Finished));
        let (f, _) = other.poll_transmit(t0 + ms(50)).unwrap();
        assert_eq!((f.seq, f.ssrc, f.payload_type), (2, STREAM.ssrc, 8));
        let h = parse_rtp(&f.to_bytes()).unwrap();
        assert_eq!(h.seq, 2);
    }
}
