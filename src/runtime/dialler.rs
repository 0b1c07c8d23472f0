//! The dialler's shell: takes the callbacks the engine releases, finds where each leg goes
//! (trunks and contact centers resolved per RFC 3263, off the SIP engines), and hands the
//! launch to a SIP engine, which places the legs.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::call::dialler::Hop;
use crate::call::trunk::Trunk;
use crate::call::InboundTarget;
use crate::callback::service::Service;
use crate::callback::{AttemptResult, Launch};
use crate::cluster::forward;
use crate::media::srtp::SrtpPolicy;
use crate::resolve::Resolver;
use crate::sip::Transport;

/// A launch with its legs' destinations.
pub(super) struct Placed {
    /// The engine's launch.
    pub launch: Launch,
    /// The customer's leg.
    pub customer: Option<Hop>,
    /// The agent's leg.
    pub agent: Option<Hop>,
}

/// What is needed to route a callback's legs.
pub(super) struct Routing {
    /// Resolves trunk and contact-center hosts (egress-checked).
    pub resolver: Arc<Resolver>,
    /// `[[trunks]]` by id.
    pub trunks: HashMap<String, Trunk>,
    /// `[calls] outbound_trunk`: customers' trunk when a call target names none.
    pub outbound_trunk: Option<String>,
    /// Call targets by id.
    pub targets: HashMap<String, Arc<InboundTarget>>,
    /// Where TLS peers' host names are recorded for certificate verification.
    pub tls_names: super::sip_engine::TlsNames,
}

impl Routing {
    /// Resolves `next_hop`; `None` (logged) when nothing can be reached.
    async fn hop(
        &self,
        request_uri: &str,
        next_hop: &str,
        route: Option<String>,
        trunk: Option<&Trunk>,
        srtp: SrtpPolicy,
    ) -> Option<Hop> {
        match self.resolver.resolve(next_hop).await {
            Ok(targets) => {
                if !targets.refused().is_empty() {
                    tracing::warn!(to = next_hop, refused = ?targets.refused(), "addresses outside the egress allow-list skipped");
                }
                let peers: Vec<_> = targets.all().iter().map(|t| t.peer()).collect();
                let host = host_only(crate::call::dialler::host_of(next_hop));
                if host.parse::<std::net::IpAddr>().is_err() {
                    let mut names = self
                        .tls_names
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    for p in peers.iter().filter(|p| p.transport == Transport::Tls) {
                        names.insert(p.addr, host.to_owned());
                    }
                }
                Some(Hop {
                    uri_host: crate::call::dialler::host_of(request_uri).to_owned(),
                    peers,
                    route,
                    credentials: trunk.and_then(|t| t.credentials.clone()),
                    srtp: trunk.and_then(|t| t.srtp).unwrap_or(srtp),
                })
            }
            Err(e) => {
                tracing::warn!(to = next_hop, error = %e, "callback destination not resolved");
                None
            }
        }
    }

    /// The customer's and the agent's destinations for a launch.
    pub async fn place(&self, launch: Launch) -> Placed {
        let target = self.targets.get(&launch.call_target);
        let dialler = target.map(|t| &t.dialler);
        let customer_trunk = dialler
            .and_then(|d| d.customer_trunk.as_ref())
            .and_then(|id| self.trunks.get(id));
        // Customers' legs: the trunk's media security, else SRTP when offered; agents'
        // legs: the agent trunk's, else the call target's.
        let plain = SrtpPolicy::default();
        let customer = match (customer_trunk, &self.outbound_trunk) {
            (Some(t), _) => {
                self.hop(
                    &t.uri,
                    t.next_hop(),
                    t.outbound_proxy.clone(),
                    Some(t),
                    plain,
                )
                .await
            }
            // The legacy trunk: a loose Route to it, as bridged calls have.
            (None, Some(uri)) => self.hop(uri, uri, Some(uri.clone()), None, plain).await,
            (None, None) => None,
        };
        let facing_cc = target.map_or(plain, |t| t.srtp);
        let agent_trunk = dialler
            .and_then(|d| d.agent_trunk.as_ref())
            .and_then(|id| self.trunks.get(id));
        let agent = match (&launch.contact_center, agent_trunk) {
            (None, _) => None,
            (Some(cc), Some(t)) => {
                let route = t.outbound_proxy.clone().unwrap_or_else(|| t.uri.clone());
                self.hop(cc, t.next_hop(), Some(route), Some(t), facing_cc)
                    .await
            }
            (Some(cc), None) => self.hop(cc, cc, None, None, facing_cc).await,
        };
        Placed {
            launch,
            customer,
            agent,
        }
    }
}

/// `host[:port]` or `[v6][:port]` without the port.
fn host_only(hostport: &str) -> &str {
    match hostport.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => hostport.rsplit_once(':').map_or(hostport, |(h, _)| h),
    }
}

/// Attaches the dialler to the callback engine and hands each released callback, routed,
/// to the SIP engines in turn (a callback's legs live on the engine that placed them).
pub(super) async fn hand_out_launches(
    callbacks: Service,
    routing: Arc<Routing>,
    engines: Vec<mpsc::UnboundedSender<Placed>>,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut launches = match callbacks.attach_dialler() {
        Ok(rx) => rx,
        Err(e) => {
            tracing::error!(error = %e, "the dialler could not attach: callbacks stay queued");
            return;
        }
    };
    let mut next = 0usize;
    loop {
        let launch = tokio::select! {
            l = launches.recv() => l,
            // Shutting down: no new callback is launched (the engine, finding no
            // dialler, puts what it releases back in the queue).
            _ = &mut stop => None,
        };
        let Some(launch) = launch else { break };
        if !callbacks.dials_here(&launch) {
            tokio::spawn(hand_to_node(callbacks.clone(), launch));
            continue;
        }
        let Some(engine) = engines.get(next % engines.len().max(1)).cloned() else {
            return;
        };
        next = next.wrapping_add(1);
        let routing = routing.clone();
        let callbacks = callbacks.clone();
        // Resolution may wait on DNS: each launch on its own, never holding the others.
        tokio::spawn(async move {
            let placed = routing.place(launch).await;
            if let Err(e) = engine.send(placed) {
                // The engine stopped (shutdown): the attempt goes back as an error.
                let id = e.0.launch.callback_id;
                let _ = callbacks
                    .attempt_ended(&id, AttemptResult::Interrupted)
                    .await;
            }
        });
    }
}

/// Hands a launch the leader stamped for another node to that node's admin listener; if
/// it does not take it, that node gets no launch until the next heartbeat and the
/// attempt ends as interrupted (queued again, not counted).
async fn hand_to_node(callbacks: Service, launch: Launch) {
    let Some(node) = launch.node else { return };
    let id = launch.callback_id.clone();
    let taken = match callbacks.dialler_address(node) {
        Some(addr) => matches!(
            forward::forward(&addr, &forward::Request::Dial(Box::new(launch))).await,
            Ok(forward::Answer::Dial)
        ),
        None => false,
    };
    if !taken {
        callbacks.dialler_unreachable(node);
        let _ = callbacks
            .attempt_ended(&id, AttemptResult::Interrupted)
            .await;
    }
}
