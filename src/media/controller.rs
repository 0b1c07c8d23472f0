//! [`MediaController`]: media for every bridged call as plain data. It allocates ports from
//! the pool, runs offer/answer per call and keeps each call's [`Relay`] and, for a side
//! answered locally, holdless's own [`LocalMedia`]. Used directly by the call core's tests
//! (feed packets through [`MediaController::relay_mut`] and
//! [`MediaController::local_rtp_in`], step time with [`MediaController::handle_timeout`],
//! read the frames sent with [`MediaController::poll_transmit`]) and wrapped by the runtime,
//! which moves the packets (it takes each [`LocalMedia`] into its call task).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::config::MediaConfig;
use super::local::{call_stats, merge_stats, LocalMedia, LocalSetup};
use super::negotiate::{LocalParams, Negotiation};
use super::pool::{splitmix64, PortPool};
use super::prompt::{Clip, PlayerEvent, RtpFrame, StreamState};
use super::relay::{MediaEvent, Relay, RelayParams};
use super::srtp::SrtpPolicy;
use super::stats::{CallStats, StreamStats};
use super::{MediaControl, MediaError, MediaId, Side};
use crate::acl::Egress;

/// Frames kept for [`MediaController::poll_transmit`] (a minute of one side's audio); older
/// ones are dropped when nobody reads them.
pub const SENT_FRAMES_KEPT: usize = 3000;

/// A frame holdless's own media sent toward a side (sans-IO: kept for the caller to read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentFrame {
    /// The call's media.
    pub id: MediaId,
    /// The side it went to.
    pub side: Side,
    /// The RTP packet.
    pub frame: RtpFrame,
    /// Its destination.
    pub to: SocketAddr,
}

#[derive(Debug)]
struct Call {
    /// holdless's RTP ports: caller-facing, callee-facing.
    ports: [u16; 2],
    neg: Negotiation,
    relay: Relay,
    /// Per side (caller, callee): holdless's own media when the side is answered locally.
    local: [Option<LocalParams>; 2],
    /// Per side: that media's endpoint (taken out by the runtime, which runs it itself).
    media: [Option<Box<LocalMedia>>; 2],
    /// Per side: what the side sent to local media that is gone (joined).
    earlier: [StreamStats; 2],
}

impl Call {
    /// The relay's statistics with those of local media, past and present.
    fn stats(&self) -> CallStats {
        let local = [self.media[0].as_deref(), self.media[1].as_deref()];
        call_stats(self.relay.stats(), &self.earlier, local)
    }
}

fn ix(side: Side) -> usize {
    match side {
        Side::Caller => 0,
        Side::Callee => 1,
    }
}

/// Media for bridged calls, sans-IO.
#[derive(Debug)]
pub struct MediaController {
    cfg: MediaConfig,
    egress: Arc<Egress>,
    pool: PortPool,
    /// Boxed: a media session is a few KB; the table keeps its peak capacity.
    calls: HashMap<MediaId, Box<Call>>,
    next_id: u64,
    rng: u64,
    events: VecDeque<MediaEvent>,
    sent: VecDeque<SentFrame>,
}

impl MediaController {
    /// A controller over the configured port range; RTP is only ever sent where `egress`
    /// allows.
    pub fn new(cfg: MediaConfig, egress: Egress) -> Self {
        Self::with_seed(cfg, egress, 0x401d_1e55)
    }

    /// The same with a seed for the port order and the SDP session ids (randomness is an
    /// input).
    pub fn with_seed(cfg: MediaConfig, egress: Egress, seed: u64) -> Self {
        MediaController {
            pool: PortPool::new(cfg.port_min, cfg.port_max, seed),
            cfg,
            egress: Arc::new(egress),
            calls: HashMap::new(),
            next_id: 1,
            rng: seed ^ 0x5eed,
            events: VecDeque::new(),
            sent: VecDeque::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &MediaConfig {
        &self.cfg
    }

    /// The egress allow-list.
    pub fn egress(&self) -> &Arc<Egress> {
        &self.egress
    }

    /// Calls with media.
    pub fn active(&self) -> usize {
        self.calls.len()
    }

    /// Ports in use (RTP and RTCP, both sides: four a call).
    pub fn ports_in_use(&self) -> usize {
        self.pool.in_use() * 2
    }

    /// holdless's RTP port facing `side` (RTCP is the next one).
    pub fn port(&self, id: MediaId, side: Side) -> Option<u16> {
        let call = self.calls.get(&id)?;
        Some(match side {
            Side::Caller => call.ports[0],
            Side::Callee => call.ports[1],
        })
    }

    /// The address holdless's RTP socket facing `side` binds to.
    pub fn local_addr(&self, id: MediaId, side: Side) -> Option<SocketAddr> {
        self.port(id, side)
            .map(|p| SocketAddr::new(self.cfg.bind, p))
    }

    /// The relay instructions of the call's last completed offer/answer.
    pub fn relay_params(&self, id: MediaId) -> Option<&RelayParams> {
        self.calls.get(&id).map(|c| c.neg.params())
    }

    /// The call's relay, to feed packets to in tests.
    pub fn relay_mut(&mut self, id: MediaId) -> Option<&mut Relay> {
        self.calls.get_mut(&id).map(|c| &mut c.relay)
    }

    /// Makes `side` local: its LocalMedia speaking `local`, carrying on the stream the relay
    /// sent it if it was joined before.
    fn go_local(
        &mut self,
        now: Instant,
        id: MediaId,
        side: Side,
        local: LocalParams,
    ) -> Result<(), MediaError> {
        let fresh = self.new_stream();
        let call = self.calls.get_mut(&id).ok_or(MediaError::UnknownSession)?;
        call.local[ix(side)] = Some(local);
        // The relay may have sent to the side before (joined, then local again).
        let stream = call
            .relay
            .take_continuity(side)
            .map_or(fresh, |c| c.stream(now));
        let setup = LocalSetup::from_negotiation(local, call.neg.params(), side);
        let mut m = LocalMedia::new(now, &self.cfg, self.egress.clone(), setup, stream);
        if let Some(srtp) = call.relay.take_srtp(side) {
            m.adopt_srtp(srtp);
        }
        if let Some(old) = call.media[ix(side)].take() {
            m.take_over(*old);
        }
        call.media[ix(side)] = Some(Box::new(m));
        Ok(())
    }

    /// holdless's own media toward `side`, while that side is answered locally.
    pub fn local_params(&self, id: MediaId, side: Side) -> Option<LocalParams> {
        self.calls.get(&id).and_then(|c| c.local[ix(side)])
    }

    /// holdless's own media toward `side`, while that side is answered locally (feed it
    /// packets, pull its frames in tests).
    pub fn local_mut(&mut self, id: MediaId, side: Side) -> Option<&mut LocalMedia> {
        self.calls
            .get_mut(&id)
            .and_then(|c| c.media[ix(side)].as_deref_mut())
    }

    /// Takes `side`'s local media out (the runtime runs it in the call's task); the side
    /// stays local as far as [`MediaController::local_params`] goes.
    pub fn take_local(&mut self, id: MediaId, side: Side) -> Option<Box<LocalMedia>> {
        self.calls
            .get_mut(&id)
            .and_then(|c| c.media[ix(side)].take())
    }

    /// An RTP datagram from `src` reached holdless's port facing `side`, whose media is
    /// local: its digits become [`MediaEvent::Digit`]s. Ignored when the side is not local.
    pub fn local_rtp_in(
        &mut self,
        now: Instant,
        id: MediaId,
        side: Side,
        src: SocketAddr,
        pkt: &[u8],
    ) {
        let call = self.calls.get_mut(&id);
        let Some(m) = call.and_then(|c| c.media[ix(side)].as_deref_mut()) else {
            return;
        };
        let mut digit = m.rtp_in(now, src, pkt);
        while let Some(event) = digit {
            self.events.push_back(MediaEvent::Digit { id, side, event });
            digit = m.next_digit();
        }
    }

    /// What each side of the call has sent so far (to the relay and to local media).
    pub fn stats(&self, id: MediaId) -> Option<CallStats> {
        self.calls.get(&id).map(|c| c.stats())
    }

    /// Releases the call's media and returns its final statistics.
    pub fn release_with_stats(&mut self, id: MediaId) -> Option<CallStats> {
        let call = self.calls.remove(&id)?;
        for port in call.ports {
            self.pool.release(port);
        }
        Some(call.stats())
    }

    /// The earliest media timeout or local frame due of any call (a scan: the runtime keeps
    /// one per call task).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.calls
            .values()
            .flat_map(|c| {
                let local = c.media.iter().flatten().filter_map(|m| m.poll_timeout());
                c.relay.poll_timeout().into_iter().chain(local)
            })
            .min()
    }

    /// Fires due media timeouts as [`MediaEvent::Timeout`] and sends the frames local media
    /// has due (kept for [`MediaController::poll_transmit`]); a clip whose last frame went
    /// out becomes [`MediaEvent::PlayFinished`]. A side whose media is local times out
    /// through its local media only.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut ids: Vec<MediaId> = self.calls.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(call) = self.calls.get_mut(&id) else {
                continue;
            };
            while let Some((side, reason)) = call.relay.handle_timeout(now) {
                if call.media[ix(side)].is_none() {
                    self.events
                        .push_back(MediaEvent::Timeout { id, side, reason });
                }
            }
            for side in [Side::Caller, Side::Callee] {
                let Some(m) = call.media[ix(side)].as_deref_mut() else {
                    continue;
                };
                while let Some((frame, to)) = m.poll_transmit(now) {
                    if self.sent.len() == SENT_FRAMES_KEPT {
                        self.sent.pop_front();
                    }
                    self.sent.push_back(SentFrame {
                        id,
                        side,
                        frame,
                        to,
                    });
                }
                if let Some(reason) = m.handle_timeout(now) {
                    self.events
                        .push_back(MediaEvent::Timeout { id, side, reason });
                }
                fold_player_events(&mut self.events, id, side, m);
            }
        }
    }

    /// The next frame local media sent (oldest first).
    pub fn poll_transmit(&mut self) -> Option<SentFrame> {
        self.sent.pop_front()
    }

    /// The next event: media timeouts, digits and finished clips of local media.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// A new stream's numbering (random from the controller's seed).
    fn new_stream(&mut self) -> StreamState {
        let r = splitmix64(&mut self.rng);
        StreamState {
            ssrc: r as u32,
            next_seq: (r >> 32) as u16,
            next_timestamp: splitmix64(&mut self.rng) as u32,
        }
    }

    fn call_mut(&mut self, id: MediaId) -> Result<&mut Call, MediaError> {
        self.calls
            .get_mut(&id)
            .map(|c| &mut **c)
            .ok_or(MediaError::UnknownSession)
    }
}

impl MediaControl for MediaController {
    fn create(&mut self, now: Instant) -> Result<MediaId, MediaError> {
        let caller = self.pool.allocate()?;
        let callee = match self.pool.allocate() {
            Ok(p) => p,
            Err(e) => {
                self.pool.release(caller);
                return Err(e);
            }
        };
        let id = MediaId(self.next_id);
        self.next_id += 1;
        // o= session ids: 62 random bits, printed in decimal (RFC 4566 §5.2).
        let sess_ids = [
            splitmix64(&mut self.rng) >> 2,
            splitmix64(&mut self.rng) >> 2,
        ];
        let call = Call {
            ports: [caller, callee],
            neg: Negotiation::new([caller, callee], sess_ids),
            relay: Relay::new(now, &self.cfg, self.egress.clone()),
            local: [None, None],
            media: [None, None],
            earlier: [StreamStats::default(); 2],
        };
        self.calls.insert(id, Box::new(call));
        Ok(id)
    }

    fn offer(
        &mut self,
        _now: Instant,
        id: MediaId,
        from: Side,
        sdp: &[u8],
    ) -> Result<Bytes, MediaError> {
        let address = self.cfg.advertised;
        self.call_mut(id)?.neg.offer(from, sdp, address)
    }

    fn answer(
        &mut self,
        now: Instant,
        id: MediaId,
        from: Side,
        sdp: &[u8],
    ) -> Result<Bytes, MediaError> {
        let address = self.cfg.advertised;
        let call = self.calls.get_mut(&id).ok_or(MediaError::UnknownSession)?;
        let out = call.neg.answer(from, sdp, address)?;
        call.relay.update(now, call.neg.params().clone());
        // An answer to an onward offer joins the local side to this one: the relay carries
        // on the stream local media sent to it.
        call.local = [None, None];
        for side in [Side::Caller, Side::Callee] {
            let i = ix(side);
            if let Some(mut m) = call.media[i].take() {
                fold_player_events(&mut self.events, id, side, &mut m);
                call.relay.set_continuity(side, m.continuity(now));
                if let Some(srtp) = m.take_srtp() {
                    call.relay.adopt_srtp(side, srtp);
                }
                call.earlier[i] = merge_stats(&call.earlier[i], &m.stats());
            }
        }
        Ok(out)
    }

    fn offer_locally(
        &mut self,
        _now: Instant,
        id: MediaId,
        side: Side,
    ) -> Result<Bytes, MediaError> {
        let address = self.cfg.advertised;
        self.call_mut(id)?.neg.offer_locally(side, address)
    }

    fn accept_local_answer(
        &mut self,
        now: Instant,
        id: MediaId,
        side: Side,
        sdp: &[u8],
    ) -> Result<(), MediaError> {
        let address = self.cfg.advertised;
        let local = self
            .call_mut(id)?
            .neg
            .accept_local_answer(side, sdp, address)?;
        self.go_local(now, id, side, local)
    }

    fn answer_locally(
        &mut self,
        now: Instant,
        id: MediaId,
        side: Side,
        sdp: &[u8],
    ) -> Result<Bytes, MediaError> {
        let address = self.cfg.advertised;
        let call = self.calls.get_mut(&id).ok_or(MediaError::UnknownSession)?;
        let (out, local) = call.neg.answer_locally(side, sdp, address)?;
        self.go_local(now, id, side, local)?;
        Ok(out)
    }

    fn offer_onward(
        &mut self,
        _now: Instant,
        id: MediaId,
        from: Side,
    ) -> Result<Bytes, MediaError> {
        let address = self.cfg.advertised;
        self.call_mut(id)?.neg.offer_onward(from, address)
    }

    fn secure(&mut self, id: MediaId, side: Side, policy: SrtpPolicy) {
        if let Some(call) = self.calls.get_mut(&id) {
            call.neg.set_policy(side, policy);
        }
    }

    fn release(&mut self, id: MediaId) {
        self.release_with_stats(id);
    }

    fn play(&mut self, now: Instant, id: MediaId, side: Side, clip: Clip) {
        let call = self.calls.get_mut(&id);
        if let Some(m) = call.and_then(|c| c.media[ix(side)].as_deref_mut()) {
            m.play(now, clip);
            // An empty clip finishes at once.
            fold_player_events(&mut self.events, id, side, m);
        }
    }

    fn stop_playing(&mut self, id: MediaId, side: Side) {
        let call = self.calls.get_mut(&id);
        if let Some(m) = call.and_then(|c| c.media[ix(side)].as_deref_mut()) {
            m.stop();
            fold_player_events(&mut self.events, id, side, m);
        }
    }
}

/// Turns local media's player events into [`MediaEvent::PlayFinished`] (a clip stopped or
/// replaced reports nothing).
fn fold_player_events(
    events: &mut VecDeque<MediaEvent>,
    id: MediaId,
    side: Side,
    m: &mut LocalMedia,
) {
    while let Some(e) = m.poll_event() {
        if e == PlayerEvent::Finished {
            events.push_back(MediaEvent::PlayFinished { id, side });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dtmf::Digit;
    use crate::media::prompt::Law;
    use crate::media::relay::Verdict;
    use crate::media::rtp::{build_rtp, parse_rtp};
    use std::time::Duration;

    const CALLER: [u8; 4] = [127, 0, 0, 10];
    const CALLEE: [u8; 4] = [127, 0, 0, 20];

    fn sdp(ip: [u8; 4], port: u16, fmts: &str) -> Vec<u8> {
        let ip = std::net::Ipv4Addr::from(ip);
        let mut s = format!(
            "v=0\r\no=x 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {fmts}\r\n"
        );
        for pt in fmts.split(' ') {
            let enc = match pt {
                "0" => "PCMU/8000",
                "8" => "PCMA/8000",
                _ => "telephone-event/8000",
            };
            s.push_str(&format!("a=rtpmap:{pt} {enc}\r\n"));
        }
        s.into_bytes()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A controller with a caller answered locally (PCMU, events on 101).
    fn local_caller() -> (MediaController, MediaId, Instant) {
        let egress = Egress::new(vec!["127.0.0.0/8".parse().unwrap()]);
        let mut mc = MediaController::with_seed(MediaConfig::default(), egress, 7);
        let t0 = Instant::now();
        let id = mc.create(t0).unwrap();
        mc.answer_locally(t0, id, Side::Caller, &sdp(CALLER, 4000, "0 101"))
            .unwrap();
        (mc, id, t0)
    }

    fn clip(frames: usize) -> Clip {
        let mut c = Clip::empty(Law::Pcmu);
        c.push_audio(std::sync::Arc::from(vec![0x55u8; frames * 160]));
        c
    }

    /// Steps the clock in 20 ms ticks from `from` to `to` (inclusive).
    fn run(mc: &mut MediaController, t0: Instant, from: u64, to: u64) {
        for k in (from..=to).step_by(20) {
            mc.handle_timeout(t0 + ms(k));
        }
    }

    #[test]
    fn a_clip_plays_to_the_local_side_then_play_finished() {
        let (mut mc, id, t0) = local_caller();
        assert!(mc.local_mut(id, Side::Caller).is_some());
        assert!(mc.local_mut(id, Side::Callee).is_none());
        let start = mc.local_mut(id, Side::Caller).unwrap().stream();
        mc.play(t0, id, Side::Caller, clip(3));
        run(&mut mc, t0, 0, 100);
        let sent: Vec<SentFrame> = std::iter::from_fn(|| mc.poll_transmit()).collect();
        assert_eq!(sent.len(), 6, "0, 20, … 100 ms");
        for (k, f) in sent.iter().enumerate() {
            assert_eq!((f.id, f.side), (id, Side::Caller));
            assert_eq!(f.to, SocketAddr::from((CALLER, 4000)));
            assert_eq!(f.frame.due, t0 + ms(20 * k as u64));
            assert_eq!(f.frame.seq, start.next_seq.wrapping_add(k as u16));
            assert_eq!(
                f.frame.timestamp,
                start.next_timestamp.wrapping_add(160 * k as u32)
            );
            assert_eq!(f.frame.ssrc, start.ssrc);
            let want = if k < 3 { 0x55 } else { 0xFF };
            assert_eq!(f.frame.payload, [want; 160], "frame {k}");
        }
        assert_eq!(
            mc.poll_event(),
            Some(MediaEvent::PlayFinished {
                id,
                side: Side::Caller
            })
        );
        assert_eq!(mc.poll_event(), None);
        // Stopped clips and replaced ones report nothing; an empty clip finishes at once.
        mc.play(t0 + ms(110), id, Side::Caller, clip(50));
        mc.play(t0 + ms(110), id, Side::Caller, clip(50));
        mc.stop_playing(id, Side::Caller);
        assert_eq!(mc.poll_event(), None);
        mc.play(t0 + ms(110), id, Side::Caller, Clip::empty(Law::Pcmu));
        assert!(matches!(
            mc.poll_event(),
            Some(MediaEvent::PlayFinished { .. })
        ));
    }

    #[test]
    fn digits_from_the_local_side_become_events() {
        let (mut mc, id, t0) = local_caller();
        let mut start = build_rtp(101, 1, 800, 9, &[1, 0x0A, 0, 0]);
        start[1] |= 0x80;
        let end = build_rtp(101, 2, 800, 9, &[1, 0x8A, 1, 0x40]);
        let from = SocketAddr::from((CALLER, 4000));
        mc.local_rtp_in(t0, id, Side::Caller, from, &start);
        mc.local_rtp_in(t0 + ms(20), id, Side::Caller, from, &end);
        match mc.poll_event() {
            Some(MediaEvent::Digit {
                id: got,
                side,
                event,
            }) => {
                assert_eq!((got, side, event.digit), (id, Side::Caller, Digit::Num(1)));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(mc.poll_event(), None);
        assert_eq!(mc.stats(id).unwrap().caller.events, 2);
        // The callee side is not local: ignored.
        mc.local_rtp_in(t0, id, Side::Callee, from, &start);
        assert_eq!(mc.poll_event(), None);
    }

    #[test]
    fn a_silent_local_side_times_out() {
        let (mut mc, id, t0) = local_caller();
        let limit = mc.config().timeout;
        mc.handle_timeout(t0 + limit);
        while mc.poll_transmit().is_some() {}
        let ev: Vec<MediaEvent> = std::iter::from_fn(|| mc.poll_event()).collect();
        assert_eq!(
            ev,
            vec![MediaEvent::Timeout {
                id,
                side: Side::Caller,
                reason: crate::media::TimeoutReason::NoRtp { idle: limit }
            }]
        );
    }

    #[test]
    fn joining_hands_the_players_stream_to_the_relay() {
        let (mut mc, id, t0) = local_caller();
        mc.play(t0, id, Side::Caller, clip(2));
        run(&mut mc, t0, 0, 60);
        let last = std::iter::from_fn(|| mc.poll_transmit()).last().unwrap();
        let next = mc.local_mut(id, Side::Caller).unwrap().stream();
        assert_eq!(next.next_seq, last.frame.seq.wrapping_add(1));
        mc.offer_onward(t0 + ms(70), id, Side::Caller).unwrap();
        mc.answer(t0 + ms(70), id, Side::Callee, &sdp(CALLEE, 5000, "0 101"))
            .unwrap();
        assert!(mc.local_mut(id, Side::Caller).is_none(), "joined");
        assert!(matches!(
            mc.poll_event(),
            Some(MediaEvent::PlayFinished { .. })
        ));
        // The callee's first packet, 20 ms after the player's last frame, carries on the
        // caller's stream: next sequence number, next timestamp, same SSRC, marker.
        let relay = mc.relay_mut(id).unwrap();
        let mut p = build_rtp(0, 40_000, 123_456, 0xCA11EE, &[0x11; 160]);
        let v = relay.rtp_in(
            last.frame.due + ms(20),
            Side::Callee,
            SocketAddr::from((CALLEE, 5000)),
            &mut p,
        );
        assert_eq!(v, Verdict::Forward(SocketAddr::from((CALLER, 4000))));
        let h = parse_rtp(&p).unwrap();
        assert_eq!(
            (h.seq, h.timestamp, h.ssrc),
            (next.next_seq, next.next_timestamp, next.ssrc)
        );
        assert_ne!(p[1] & 0x80, 0, "marker on the first relayed packet");
        let mut p = build_rtp(0, 40_001, 123_616, 0xCA11EE, &[0x11; 160]);
        relay.rtp_in(
            last.frame.due + ms(40),
            Side::Callee,
            SocketAddr::from((CALLEE, 5000)),
            &mut p,
        );
        let h = parse_rtp(&p).unwrap();
        assert_eq!(h.seq, next.next_seq.wrapping_add(1));
        assert_eq!(p[1] & 0x80, 0);
        // Answered locally again (the callee left): the player carries on the stream.
        mc.answer_locally(t0 + ms(200), id, Side::Caller, &sdp(CALLER, 4000, "0 101"))
            .unwrap();
        let again = mc.local_mut(id, Side::Caller).unwrap().stream();
        assert_eq!(again.ssrc, next.ssrc);
        assert_eq!(again.next_seq, next.next_seq.wrapping_add(2));
        assert!(mc.relay_mut(id).unwrap().continuity(Side::Caller).is_none());
    }
}
