//! The tokio shell: asks `hickory-resolver` the questions a [`Resolution`] needs, through
//! the [`DnsCache`]. Call it from a spawned task (the dialler's), never from the SIP
//! engine's loop: a resolution waits on the network, up to `dns.timeout_ms` per query.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::rr::{RData, RecordType as HickoryType};
use hickory_resolver::TokioResolver;
use tokio::task::JoinSet;

use super::cache::DnsCache;
use super::config::DnsSettings;
use super::select::{Answer, Query, RecordType, Records, Resolution, SrvRecord};
use super::{ResolveError, Targets};
use crate::acl::Egress;

/// Tries per query and name server before a query fails (a lost UDP datagram is retried
/// once; more would only stretch a failing call set-up).
const ATTEMPTS: usize = 2;

/// The egress check applied to every candidate address.
type Permits = Arc<dyn Fn(IpAddr) -> bool + Send + Sync>;

/// Resolves SIP URIs to ordered candidates (RFC 3263), caching answers by their TTLs and
/// dropping addresses outside the egress allow-list. Cheap to share: put it in an `Arc`.
pub struct Resolver {
    dns: TokioResolver,
    cache: Mutex<DnsCache>,
    rng: Mutex<fastrand::Rng>,
    permits: Permits,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

impl Resolver {
    /// A resolver asking `settings.nameservers` (empty: `/etc/resolv.conf`'s), sending only
    /// to addresses `egress` permits. Reads `/etc/resolv.conf` here, once, when it is used.
    pub fn new(settings: &DnsSettings, egress: Egress) -> Result<Resolver, ResolveError> {
        Resolver::with_filter(settings, move |ip| egress.permits(ip))
    }

    /// As [`Resolver::new`], with any egress check.
    pub fn with_filter(
        settings: &DnsSettings,
        permits: impl Fn(IpAddr) -> bool + Send + Sync + 'static,
    ) -> Result<Resolver, ResolveError> {
        let setup = |e: NetError| ResolveError::Setup(e.to_string());
        let mut builder = if settings.nameservers.is_empty() {
            TokioResolver::builder_tokio().map_err(setup)?
        } else {
            let servers = settings
                .nameservers
                .iter()
                .map(|a| {
                    let conn = |mut c: ConnectionConfig| {
                        c.port = a.port();
                        c
                    };
                    NameServerConfig::new(
                        a.ip(),
                        true,
                        vec![conn(ConnectionConfig::udp()), conn(ConnectionConfig::tcp())],
                    )
                })
                .collect();
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(servers),
                TokioRuntimeProvider::default(),
            )
            .with_options(ResolverOpts::default())
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.timeout = settings.timeout;
        opts.attempts = ATTEMPTS;
        // Our DnsCache is the one cache: capacity 0 turns hickory's off, so TTLs and
        // negative caching are decided (and tested) in one place.
        opts.cache_size = 0;
        // Names are asked fully qualified; /etc/hosts is not a source for trunks.
        opts.use_hosts_file = ResolveHosts::Never;
        opts.ndots = 0;
        let dns = builder.build().map_err(setup)?;
        Ok(Resolver {
            dns,
            cache: Mutex::new(DnsCache::new(settings.cache_max_entries)),
            rng: Mutex::new(fastrand::Rng::new()),
            permits: Arc::new(permits),
        })
    }

    /// The candidates for a `sip:`/`sips:` URI, in the order to try them.
    pub async fn resolve(&self, uri: &str) -> Result<Targets, ResolveError> {
        let mut res = Resolution::new(uri)?;
        while !res.queries().is_empty() {
            let at = now();
            let mut asked = JoinSet::new();
            for q in res.queries().to_vec() {
                match self.cached(at, &q) {
                    Some(a) => res.handle(&q, Ok(a)),
                    None => {
                        let dns = self.dns.clone();
                        asked.spawn(async move {
                            let answer = lookup(&dns, &q).await;
                            (q, answer)
                        });
                    }
                }
            }
            while let Some(done) = asked.join_next().await {
                let (q, answer) = done.map_err(|e| ResolveError::DnsFailed {
                    host: res.host().to_owned(),
                    reason: format!("lookup task ended: {e}"),
                })?;
                if let Ok(a) = &answer {
                    lock(&self.cache).insert(now(), &q, a);
                }
                res.handle(&q, answer);
            }
        }
        let mut rng = lock(&self.rng);
        res.finish(&mut rng, |ip| (self.permits)(ip))
    }

    fn cached(&self, now: Instant, q: &Query) -> Option<Answer> {
        lock(&self.cache).get(now, q)
    }
}

/// The locks are held for a few map operations, never across an await; a poisoned one
/// (a panic elsewhere while holding it) still holds consistent data.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Tokio's clock, so tests with paused time see the cache expire.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// One DNS question through hickory: an answer (perhaps negative) or why there is none.
async fn lookup(dns: &TokioResolver, q: &Query) -> Result<Answer, String> {
    let rtype = match q.rtype {
        RecordType::Srv => HickoryType::SRV,
        RecordType::A => HickoryType::A,
        RecordType::Aaaa => HickoryType::AAAA,
    };
    let empty = || match q.rtype {
        RecordType::Srv => Records::Srv(Vec::new()),
        _ => Records::Addrs(Vec::new()),
    };
    let lookup = match dns.lookup(q.name.as_str(), rtype).await {
        Ok(l) => l,
        Err(NetError::Dns(DnsError::NoRecordsFound(no))) => {
            return Ok(Answer {
                records: empty(),
                ttl: no.negative_ttl.map(|t| Duration::from_secs(t.into())),
            })
        }
        Err(e) => return Err(e.to_string()),
    };
    let mut ttl: Option<u32> = None;
    let mut srv = Vec::new();
    let mut addrs = Vec::new();
    for r in lookup.answers() {
        let used = match &r.data {
            RData::SRV(s) if q.rtype == RecordType::Srv => {
                srv.push(SrvRecord {
                    priority: s.priority,
                    weight: s.weight,
                    port: s.port,
                    target: s.target.to_ascii(),
                });
                true
            }
            RData::A(a) if q.rtype == RecordType::A => {
                addrs.push(IpAddr::V4(a.0));
                true
            }
            RData::AAAA(a) if q.rtype == RecordType::Aaaa => {
                addrs.push(IpAddr::V6(a.0));
                true
            }
            _ => false,
        };
        if used {
            ttl = Some(ttl.map_or(r.ttl, |t| t.min(r.ttl)));
        }
    }
    let records = match q.rtype {
        RecordType::Srv => Records::Srv(srv),
        _ => Records::Addrs(addrs),
    };
    Ok(Answer {
        records,
        ttl: ttl.map(|t| Duration::from_secs(t.into())),
    })
}
