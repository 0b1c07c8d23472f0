//! [`MediaController`]: media for every bridged call as plain data. It allocates ports from
//! the pool, runs offer/answer per call and keeps each call's [`Relay`]. Used directly by the
//! call core's tests (feed packets through [`MediaController::relay_mut`], step time with
//! [`MediaController::handle_timeout`]) and wrapped by the runtime, which moves the packets.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::config::MediaConfig;
use super::negotiate::{LocalParams, Negotiation};
use super::pool::{splitmix64, PortPool};
use super::relay::{MediaEvent, Relay, RelayParams};
use super::stats::CallStats;
use super::{MediaControl, MediaError, MediaId, Side};
use crate::acl::Egress;

#[derive(Debug)]
struct Call {
    /// holdless's RTP ports: caller-facing, callee-facing.
    ports: [u16; 2],
    neg: Negotiation,
    relay: Relay,
    /// Per side (caller, callee): holdless's own media when the side is answered locally.
    local: [Option<LocalParams>; 2],
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

    /// holdless's own media toward `side`, while that side is answered locally.
    pub fn local_params(&self, id: MediaId, side: Side) -> Option<LocalParams> {
        self.calls.get(&id).and_then(|c| c.local[ix(side)])
    }

    /// What each side of the call has sent so far.
    pub fn stats(&self, id: MediaId) -> Option<CallStats> {
        self.calls.get(&id).map(|c| c.relay.stats())
    }

    /// Releases the call's media and returns its final statistics.
    pub fn release_with_stats(&mut self, id: MediaId) -> Option<CallStats> {
        let call = self.calls.remove(&id)?;
        for port in call.ports {
            self.pool.release(port);
        }
        Some(call.relay.stats())
    }

    /// The earliest media timeout of any call (a scan: the runtime keeps one per call task).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.calls
            .values()
            .filter_map(|c| c.relay.poll_timeout())
            .min()
    }

    /// Fires due media timeouts as [`MediaEvent::Timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut ids: Vec<MediaId> = self.calls.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(call) = self.calls.get_mut(&id) else {
                continue;
            };
            while let Some((side, reason)) = call.relay.handle_timeout(now) {
                self.events
                    .push_back(MediaEvent::Timeout { id, side, reason });
            }
        }
    }

    /// The next event (media timeouts).
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
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
        let call = self.call_mut(id)?;
        let out = call.neg.answer(from, sdp, address)?;
        call.relay.update(now, call.neg.params().clone());
        // An answer to an onward offer joins the local side to this one.
        call.local = [None, None];
        Ok(out)
    }

    fn answer_locally(
        &mut self,
        _now: Instant,
        id: MediaId,
        side: Side,
        sdp: &[u8],
    ) -> Result<Bytes, MediaError> {
        let address = self.cfg.advertised;
        let call = self.call_mut(id)?;
        let (out, local) = call.neg.answer_locally(side, sdp, address)?;
        call.local[ix(side)] = Some(local);
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

    fn release(&mut self, id: MediaId) {
        self.release_with_stats(id);
    }
}
