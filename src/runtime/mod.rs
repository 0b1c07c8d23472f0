//! The tokio shell: binds sockets, feeds the [`Endpoint`] core with messages and time,
//! sends what it asks, serves HTTP, and drains on shutdown.

mod call_media;
mod dialler;
mod http;
mod inboxes;
mod input;
mod media_thread;
mod recv_batch;
mod relay_latency;
pub mod rtp;
mod sip_engine;
mod tcp;
mod udp;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::acl::AccessList;
use crate::config::{Config, RefuseAction};
use crate::endpoint::Endpoint;
use crate::metrics::Counters;
use crate::sip::shard::Shard;
use inboxes::Inboxes;

pub use input::Input;

/// Depth of the queue from the socket readers to the engine. At ~20k messages/s this is
/// ~200 ms of backlog; beyond it datagrams are dropped (and counted) rather than queued
/// without bound.
pub const ENGINE_QUEUE: usize = 4096;

/// How long a shutdown waits for live transactions to finish.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(2);

/// Errors while starting the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// A listening socket could not be bound.
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        /// `SIP/UDP`, `SIP/TCP` or `HTTP`.
        what: &'static str,
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TLS certificate, key or CA could not be loaded.
    #[error("TLS: {0}")]
    Tls(crate::key_error::KeyError),
    /// A call target's prompts could not be loaded.
    #[error("prompts: {0}")]
    Prompts(String),
    /// The DNS resolver for trunks could not be set up.
    #[error("DNS: {0}")]
    Dns(crate::resolve::ResolveError),
    /// The callback store could not be opened, or the callback service not started.
    #[error("callback store: {0}")]
    Callbacks(#[from] crate::callback::service::StartError),
}

/// Binds everything, serves until `shutdown` turns true (or `POST /admin/drain`), then
/// drains.
pub async fn serve(cfg: Config, shutdown: watch::Receiver<bool>) -> Result<(), RuntimeError> {
    let inbound = crate::call::inbound_targets(&cfg).map_err(RuntimeError::Prompts)?;
    let callbacks = start_callbacks(&cfg)?;
    // Draining starts on the caller's shutdown or the admin listener's drain; the HTTP
    // listeners stay up (readiness false) until the last call is done.
    let (drain_tx, drain) = watch::channel(false);
    let (done_tx, done) = watch::channel(false);
    {
        let (drain_tx, callbacks) = (drain_tx.clone(), callbacks.clone());
        let mut drain = drain.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = stopped(shutdown) => { let _ = drain_tx.send(true); }
                _ = drain.changed() => {}
            }
            callbacks.drain();
        });
    }
    let shutdown = drain;
    let counters = Counters::default();
    let engines = cfg
        .sip
        .engine_threads
        .clamp(1, cfg.media.port_pairs().max(1));
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..engines).map(|_| mpsc::channel(ENGINE_QUEUE)).unzip();
    let tx = Inboxes::new(senders, AccessList::new(&cfg.acl));
    let mut udp_sockets = Vec::new();
    for addr in &cfg.sip.udp {
        let sock = udp::bind(*addr)
            .await
            .map_err(|source| RuntimeError::Bind {
                what: "SIP/UDP",
                addr: *addr,
                source,
            })?;
        udp_sockets.push(Arc::new(sock));
    }
    let mut tcp_listeners = Vec::new();
    for addr in &cfg.sip.tcp {
        let l = tcp::bind(*addr).map_err(|source| RuntimeError::Bind {
            what: "SIP/TCP",
            addr: *addr,
            source,
        })?;
        tcp_listeners.push(l);
    }
    let mut tls_listeners = Vec::new();
    if !cfg.sip.tls.is_empty() {
        let files = cfg.sip.tls_files.as_ref().ok_or(RuntimeError::Tls(
            crate::key_error::KeyError::new(
                "sip.tls_cert",
                "TLS listeners need sip.tls_cert and sip.tls_key",
            ),
        ))?;
        let now = chrono::Utc::now().timestamp();
        let ctx = crate::tls::TlsContext::load(files, now).map_err(RuntimeError::Tls)?;
        for w in &ctx.warnings {
            tracing::warn!("{w}");
        }
        let acceptor = tokio_rustls::TlsAcceptor::from(ctx.server.clone());
        for addr in &cfg.sip.tls {
            let l = tcp::bind(*addr).map_err(|source| RuntimeError::Bind {
                what: "SIP/TLS",
                addr: *addr,
                source,
            })?;
            tls_listeners.push((l, acceptor.clone()));
        }
    }
    let tls_names: sip_engine::TlsNames = Default::default();
    let tls_out = sip_engine::TlsOut {
        connector: tokio_rustls::TlsConnector::from(
            crate::tls::client_config(cfg.sip.tls_files.as_ref(), cfg.sip.tls_ca.as_deref())
                .map_err(RuntimeError::Tls)?,
        ),
        names: tls_names.clone(),
    };
    let http = tokio::net::TcpListener::bind(cfg.http_listen)
        .await
        .map_err(|source| RuntimeError::Bind {
            what: "HTTP",
            addr: cfg.http_listen,
            source,
        })?;
    for s in &udp_sockets {
        tokio::spawn(udp::read_loop(s.clone(), tx.clone(), counters.clone()));
    }
    let drop_at_accept = (cfg.acl.action == RefuseAction::Drop).then(|| AccessList::new(&cfg.acl));
    for l in tcp_listeners {
        let opts = tcp::Options {
            idle: cfg.sip.tcp_idle_timeout,
            drop_acl: drop_at_accept.clone(),
            tls: None,
        };
        tokio::spawn(tcp::accept_loop(l, tx.clone(), opts, counters.clone()));
    }
    for (l, acceptor) in tls_listeners {
        // TLS: the access list closes a stranger's connection before any handshake.
        let opts = tcp::Options {
            idle: cfg.sip.tcp_idle_timeout,
            drop_acl: Some(AccessList::new(&cfg.acl)),
            tls: Some(acceptor),
        };
        tokio::spawn(tcp::accept_loop(l, tx.clone(), opts, counters.clone()));
    }
    if let Some(addr) = cfg.cluster.admin_listen {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| RuntimeError::Bind {
                what: "admin HTTP",
                addr,
                source,
            })?;
        let state = crate::cluster::admin::AdminState {
            service: callbacks.clone(),
            node_id: cfg.cluster.node_id.as_str().into(),
            allow: cfg.cluster.admin_allow.clone().into(),
            drain: drain_tx.clone(),
        };
        tokio::spawn(crate::cluster::admin::serve(
            l,
            state,
            stopped(done.clone()),
        ));
        tracing::info!(admin = %addr, node = %cfg.cluster.node_id, "admin listener up");
    }
    let api = crate::api::ApiState::new(callbacks.clone(), &cfg);
    tokio::spawn(http::serve(http, counters.clone(), api, done.clone()));
    tracing::info!(udp = ?cfg.sip.udp, tcp = ?cfg.sip.tcp, tls = ?cfg.sip.tls, http = %cfg.http_listen, "holdless serving");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x401d1e55);
    let threads = rtp::MediaThreads::start(&cfg.media);
    let shown = threads.counters();
    counters.add_source(Arc::new(move || render_rtp(&shown)));
    let flood = Arc::new(std::sync::Mutex::new(crate::acl::FloodGuard::new(
        &cfg.flood,
    )));
    let mut running = Vec::new();
    let (launch_txs, mut launch_rxs): (Vec<_>, Vec<_>) =
        (0..engines).map(|_| mpsc::unbounded_channel()).unzip();
    launch_rxs.reverse();
    if cfg.calls.dial_callbacks {
        let resolver = crate::resolve::Resolver::new(
            &cfg.dns,
            crate::acl::Egress::new(cfg.egress_allow.clone()),
        )
        .map_err(RuntimeError::Dns)?;
        let routing = dialler::Routing {
            resolver: Arc::new(resolver),
            trunks: cfg
                .trunks
                .iter()
                .map(|t| (t.id.clone(), t.clone()))
                .collect(),
            outbound_trunk: cfg.calls.outbound_trunk.clone(),
            targets: inbound.clone(),
            tls_names: tls_names.clone(),
        };
        tokio::spawn(dialler::hand_out_launches(
            callbacks.clone(),
            Arc::new(routing),
            launch_txs,
            stopped(shutdown.clone()),
        ));
    } else {
        tracing::info!("calls.dial_callbacks = false: this node dials no callbacks");
    }
    for (index, rx) in receivers.into_iter().enumerate() {
        let mut rtp = rtp::RtpRuntime::sharing(
            cfg.media.ports_for_engine(index, engines),
            crate::acl::Egress::new(cfg.egress_allow.clone()),
            threads.clone(),
        );
        let media_events = rtp.take_events();
        let shard = Shard {
            index,
            count: engines,
        };
        let endpoint = Endpoint::sharded(
            &cfg,
            counters.clone(),
            seed.wrapping_add(index as u64)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15),
            Box::new(rtp),
            shard,
            flood.clone(),
        )
        .with_inbound(inbound.clone());
        let engine = sip_engine::SipEngine::new(
            &cfg,
            counters.clone(),
            endpoint,
            udp_sockets.clone(),
            tx.clone(),
            media_events,
            callbacks.clone(),
            launch_rxs
                .pop()
                .unwrap_or_else(|| mpsc::unbounded_channel().1),
            Some(tls_out.clone()),
        );
        let stop = stopped(shutdown.clone());
        running.push(tokio::spawn(engine.run(rx, stop)));
    }
    tracing::info!(engines, "SIP engines running");
    drop(tx);
    for r in running {
        if let Err(e) = r.await {
            tracing::error!(error = %e, "a SIP engine stopped abnormally");
        }
    }
    let _ = done_tx.send(true);
    callbacks.stop().await;
    Ok(())
}

/// Resolves once `shutdown` turns true (or its sender is gone).
async fn stopped(mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            break;
        }
    }
}

/// Opens the callback store (`store.url`, or SQLite in the data directory) and starts the callback service
/// (restoring every registered callback). Callbacks are queued but not dialled until a
/// dialler attaches ([`crate::callback::service::Service::attach_dialler`]).
fn start_callbacks(cfg: &Config) -> Result<crate::callback::service::Service, RuntimeError> {
    use crate::callback::service::{system_clock, Service, StartError};
    let store = cfg.store.open().map_err(StartError::from)?;
    tracing::info!(store = %cfg.store, "callback store open");
    let targets = cfg.engine_targets();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0xca11_ba2c);
    // A shared database (PostgreSQL) may hold several nodes: this one announces itself and
    // leads or forwards. SQLite is one node's own.
    let node =
        matches!(cfg.store, crate::store::Location::Postgres(_)).then(|| crate::store::NodeBeat {
            id: cfg.cluster.node_id.clone(),
            instance: (seed >> 1) as i64,
            admin: cfg.cluster.admin_listen.map(|a| a.to_string()),
            lease: cfg.cluster.lease,
            lead: true,
            dials: false, // the service says, at each heartbeat, once a dialler attaches
        });
    let service = Service::start_node(targets, store, seed, system_clock(), node)?;
    Ok(service)
}

/// The media relay's totals in Prometheus text.
fn render_rtp(c: &rtp::RtpCounters) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = String::new();
    for (name, v) in [
        ("holdless_rtp_received_total", c.received.load(Relaxed)),
        ("holdless_rtp_forwarded_total", c.relayed.load(Relaxed)),
        ("holdless_rtp_dropped_total", c.dropped.load(Relaxed)),
    ] {
        out.push_str(&format!("# TYPE {name} counter\n{name} {v}\n"));
    }
    let name = "holdless_media_sessions_active";
    let v = c.sessions.load(Relaxed);
    out.push_str(&format!("# TYPE {name} gauge\n{name} {v}\n"));
    c.latency.render(&mut out);
    out
}
