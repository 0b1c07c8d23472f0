//! The tokio shell: binds sockets, feeds the [`Endpoint`] core with messages and time,
//! sends what it asks, serves HTTP, and drains on shutdown.

mod engine;
mod http;
pub mod rtp;
mod tcp;
mod udp;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::acl::AccessList;
use crate::config::{Config, RefuseAction};
use crate::metrics::Counters;

pub use engine::Input;

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
    /// The data directory could not be created.
    #[error("cannot create data directory {dir}: {source}")]
    DataDir {
        /// The directory.
        dir: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The callback store could not be opened, or the callback service not started.
    #[error("callback store: {0}")]
    Callbacks(#[from] crate::callback::service::StartError),
}

/// Binds everything, serves until `shutdown` turns true, then drains.
pub async fn serve(cfg: Config, mut shutdown: watch::Receiver<bool>) -> Result<(), RuntimeError> {
    std::fs::create_dir_all(&cfg.data_dir).map_err(|source| RuntimeError::DataDir {
        dir: cfg.data_dir.clone(),
        source,
    })?;
    let callbacks = start_callbacks(&cfg)?;
    let counters = Counters::default();
    let (tx, rx) = mpsc::channel(ENGINE_QUEUE);
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
        };
        tokio::spawn(tcp::accept_loop(l, tx.clone(), opts, counters.clone()));
    }
    let api = crate::api::ApiState::new(callbacks.clone(), &cfg);
    tokio::spawn(http::serve(http, counters.clone(), api, shutdown.clone()));
    tracing::info!(udp = ?cfg.sip.udp, tcp = ?cfg.sip.tcp, http = %cfg.http_listen, "holdless serving");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x401d1e55);
    let engine = {
        let mut rtp = rtp::RtpRuntime::new(
            cfg.media.clone(),
            crate::acl::Egress::new(cfg.egress_allow.clone()),
        );
        let media_events = rtp.take_events();
        let totals = rtp.counters();
        counters.add_source(std::sync::Arc::new(move || render_rtp(&totals)));
        engine::Engine::new(
            &cfg,
            counters,
            seed,
            udp_sockets,
            tx.clone(),
            Box::new(rtp),
            media_events,
        )
    };
    let stop = async move {
        while !*shutdown.borrow() {
            if shutdown.changed().await.is_err() {
                break;
            }
        }
    };
    engine.run(rx, stop).await;
    callbacks.stop().await;
    Ok(())
}

/// Opens the callback store under the data directory and starts the callback service
/// (restoring every registered callback). Callbacks are queued but not dialled until a
/// dialler attaches ([`crate::callback::service::Service::attach_dialler`]).
fn start_callbacks(cfg: &Config) -> Result<crate::callback::service::Service, RuntimeError> {
    use crate::callback::engine::TargetConfig;
    use crate::callback::service::{system_clock, Service, StartError};
    let store = crate::store::sqlite::SqliteStore::open(&cfg.data_dir).map_err(StartError::from)?;
    tracing::info!(path = %store.path().display(), "callback store open");
    let targets = cfg
        .call_targets
        .iter()
        .map(|t| TargetConfig {
            id: t.id.clone(),
            name: t.name.clone(),
            settings: t.callback.clone(),
        })
        .collect();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0xca11_ba2c);
    let service = Service::start(targets, Box::new(store), seed, system_clock())?;
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
    out
}
