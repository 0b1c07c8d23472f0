//! The sans-IO RFC 3263 §4 core: which DNS queries a URI needs, what to do with their
//! answers, the RFC 2782 order of SRV records and the egress filter. No sockets, no clock:
//! answers and randomness come in as inputs.
//!
//! ```text
//! IP literal                 → that address (port from the URI, else 5060 / 5061 for TLS)
//! name with explicit port    → A + AAAA of the name
//! name, no port              → SRV _sip._udp, then _sip._tcp (sip:, no transport=), or the
//!                              one SRV name for the transport given / _sips._tcp for sips:
//!   SRV records found        → A + AAAA of each target; candidates in RFC 2782 order
//!   no SRV record            → A + AAAA of the name on the transport's default port
//! ```

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::uri::{Host, SipTarget};
use super::{ResolveError, Target, Targets, Transport};

/// Most SRV records used from one answer: a bound on the A/AAAA queries one resolution
/// makes (two per distinct target). Real trunks publish 2–6.
pub const MAX_SRV_RECORDS: usize = 16;

/// Most addresses used per name and family: a bound on the candidate list (a dialler that
/// fails over through more than this is stuck anyway).
pub const MAX_ADDRS_PER_NAME: usize = 8;

/// The DNS record types the locator asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordType {
    /// Service location (RFC 2782).
    Srv,
    /// IPv4 address.
    A,
    /// IPv6 address.
    Aaaa,
}

/// One DNS question: a fully qualified name (lowercase, trailing dot) and a type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Query {
    /// The name asked, e.g. `_sip._udp.trunk.test.`.
    pub name: String,
    /// The record type.
    pub rtype: RecordType,
}

impl Query {
    fn new(name: &str, rtype: RecordType) -> Query {
        let mut name = name.to_ascii_lowercase();
        if !name.ends_with('.') {
            name.push('.');
        }
        Query { name, rtype }
    }
}

/// One SRV record (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SrvRecord {
    /// Lower is tried first.
    pub priority: u16,
    /// Share of the traffic among records of one priority; 0: only when nothing else.
    pub weight: u16,
    /// The port to send to.
    pub port: u16,
    /// The host to look up, fully qualified; `.` means "no service here".
    pub target: String,
}

/// The records of one answer, of the type asked. Empty: a negative answer (NXDOMAIN or
/// no data), which is an answer, not a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Records {
    /// SRV records.
    Srv(Vec<SrvRecord>),
    /// A or AAAA addresses.
    Addrs(Vec<IpAddr>),
}

impl Records {
    /// Whether the answer is negative.
    pub fn is_empty(&self) -> bool {
        match self {
            Records::Srv(v) => v.is_empty(),
            Records::Addrs(v) => v.is_empty(),
        }
    }
}

/// A DNS answer: records and how long they may be kept (the smallest record TTL, or for
/// a negative answer the SOA's negative TTL when there is one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The records.
    pub records: Records,
    /// How long the answer may be cached; `None`: the server did not say (negative
    /// answer without SOA), the cache's default applies.
    pub ttl: Option<Duration>,
}

/// The addresses of one name, as the answers come in.
#[derive(Debug, Default)]
struct Addrs {
    v4: Vec<IpAddr>,
    v6: Vec<IpAddr>,
}

/// Where the resolution stands.
#[derive(Debug)]
enum Stage {
    /// Asking SRV names in turn; the first with records wins.
    Srv(Vec<Transport>),
    /// Asking A and AAAA for the names in `names`.
    Addresses,
    /// Finished early with an error.
    Failed(ResolveError),
}

/// One RFC 3263 resolution of one URI: the state between the DNS questions and answers.
///
/// Drive it: while [`Resolution::queries`] is not empty, answer each query (from the cache
/// or DNS) with [`Resolution::handle`]; then [`Resolution::finish`].
#[derive(Debug)]
#[must_use]
pub struct Resolution {
    host: String,
    name: String,
    stage: Stage,
    pending: Vec<Query>,
    /// SRV records found and their transport; empty: the name itself on `port`.
    srv: Vec<SrvRecord>,
    transport: Transport,
    port: u16,
    addrs: HashMap<String, Addrs>,
    failures: Vec<String>,
}

impl Resolution {
    /// Starts resolving a `sip:`/`sips:` URI.
    pub fn new(uri: &str) -> Result<Resolution, ResolveError> {
        let t = SipTarget::parse(uri)?;
        let transport = t.default_transport();
        let mut r = Resolution {
            host: t.host_text(),
            name: String::new(),
            stage: Stage::Addresses,
            pending: Vec::new(),
            srv: Vec::new(),
            transport,
            port: t.port.unwrap_or(transport.default_port()),
            addrs: HashMap::new(),
            failures: Vec::new(),
        };
        match t.host {
            Host::Ip(ip) => {
                let mut a = Addrs::default();
                a.push(ip);
                r.addrs.insert(String::new(), a);
            }
            Host::Name(name) => {
                r.name = Query::new(&name, RecordType::A).name;
                if t.port.is_some() {
                    r.ask_addresses(&r.name.clone());
                } else {
                    // RFC 3263 §4.1: with no transport chosen, SRV for each transport we
                    // support, preferring UDP.
                    let order = match t.transport {
                        Some(tr) => vec![tr],
                        None => vec![Transport::Udp, Transport::Tcp],
                    };
                    r.stage = Stage::Srv(order);
                    r.ask_srv();
                }
            }
        }
        Ok(r)
    }

    /// The host the URI named.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The queries still unanswered. Empty: call [`Resolution::finish`].
    pub fn queries(&self) -> &[Query] {
        &self.pending
    }

    /// An answer to one of [`Resolution::queries`]; `Err` says why DNS gave none (timeout,
    /// SERVFAIL). Answers to queries not asked are ignored.
    pub fn handle(&mut self, query: &Query, answer: Result<Answer, String>) {
        let Some(i) = self.pending.iter().position(|q| q == query) else {
            return;
        };
        self.pending.swap_remove(i);
        match (&self.stage, answer) {
            (Stage::Srv(_), Ok(a)) => self.on_srv(query, a.records),
            (Stage::Srv(_), Err(e)) => {
                self.stage = Stage::Failed(ResolveError::DnsFailed {
                    host: self.host.clone(),
                    reason: format!("SRV {}: {e}", query.name),
                });
            }
            (Stage::Addresses, Ok(a)) => {
                if let (Records::Addrs(ips), Some(entry)) =
                    (a.records, self.addrs.get_mut(&query.name))
                {
                    ips.into_iter().for_each(|ip| entry.push(ip));
                }
            }
            (Stage::Addresses, Err(e)) => {
                self.failures
                    .push(format!("{:?} {}: {e}", query.rtype, query.name));
            }
            (Stage::Failed(_), _) => {}
        }
    }

    fn on_srv(&mut self, query: &Query, records: Records) {
        let Stage::Srv(order) = &mut self.stage else {
            return;
        };
        let transport = order.remove(0);
        let mut srv = match records {
            Records::Srv(v) => v,
            Records::Addrs(_) => Vec::new(),
        };
        if srv.is_empty() {
            if order.is_empty() {
                // RFC 3263 §4.2: no SRV records → the name itself, default port.
                self.port = self.transport.default_port();
                self.ask_addresses(&self.name.clone());
            } else {
                self.ask_srv();
            }
            return;
        }
        // RFC 2782: a single record with target "." means the service is not offered.
        if srv.len() == 1 && srv[0].target.trim_end_matches('.').is_empty() {
            self.stage = Stage::Failed(ResolveError::ServiceUnavailable {
                host: self.host.clone(),
                service: query.name.clone(),
            });
            return;
        }
        srv.retain(|r| !r.target.trim_end_matches('.').is_empty());
        srv.truncate(MAX_SRV_RECORDS);
        for r in &mut srv {
            r.target = Query::new(&r.target, RecordType::A).name;
        }
        self.transport = transport;
        let mut targets: Vec<String> = srv.iter().map(|r| r.target.clone()).collect();
        targets.sort();
        targets.dedup();
        self.srv = srv;
        for t in targets {
            self.ask_addresses(&t);
        }
    }

    fn ask_srv(&mut self) {
        if let Stage::Srv(order) = &self.stage {
            if let Some(t) = order.first() {
                let name = format!("{}.{}", t.srv_prefix(), self.name);
                self.pending.push(Query::new(&name, RecordType::Srv));
            }
        }
    }

    fn ask_addresses(&mut self, name: &str) {
        self.stage = Stage::Addresses;
        self.addrs.entry(name.to_owned()).or_default();
        self.pending.push(Query::new(name, RecordType::A));
        self.pending.push(Query::new(name, RecordType::Aaaa));
    }

    /// The candidates in the order to try them: SRV records in RFC 2782 order (`rng`
    /// draws the weighted order), IPv4 before IPv6 for each name; addresses `permits`
    /// refuses (the egress allow-list) are dropped.
    pub fn finish(
        self,
        rng: &mut fastrand::Rng,
        permits: impl Fn(IpAddr) -> bool,
    ) -> Result<Targets, ResolveError> {
        if let Stage::Failed(e) = self.stage {
            return Err(e);
        }
        let mut found = Vec::new();
        if self.srv.is_empty() {
            // The name on its port; for an IP literal the name is "" and so is its key.
            self.push_name(&mut found, &self.name, self.port);
        } else {
            for r in order_srv(self.srv.clone(), rng) {
                self.push_name(&mut found, &r.target, r.port);
            }
        }
        if found.is_empty() {
            return Err(if self.failures.is_empty() {
                ResolveError::NoAddresses { host: self.host }
            } else {
                ResolveError::DnsFailed {
                    host: self.host,
                    reason: self.failures.join("; "),
                }
            });
        }
        let (list, refused) = egress_filter(found, permits);
        if list.is_empty() {
            return Err(ResolveError::EgressRefused {
                host: self.host,
                refused,
            });
        }
        Ok(Targets::new(self.host, list, refused))
    }

    fn push_name(&self, out: &mut Vec<Target>, name: &str, port: u16) {
        let Some(a) = self.addrs.get(name) else {
            return;
        };
        for ip in a.v4.iter().chain(&a.v6) {
            let t = Target {
                addr: SocketAddr::new(*ip, port),
                transport: self.transport,
            };
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
}

impl Addrs {
    fn push(&mut self, ip: IpAddr) {
        let v = if ip.is_ipv4() {
            &mut self.v4
        } else {
            &mut self.v6
        };
        if v.len() < MAX_ADDRS_PER_NAME && !v.contains(&ip) {
            v.push(ip);
        }
    }
}

/// Splits candidates into those `permits` allows (order kept) and the distinct addresses
/// it refuses.
pub fn egress_filter(
    candidates: Vec<Target>,
    permits: impl Fn(IpAddr) -> bool,
) -> (Vec<Target>, Vec<IpAddr>) {
    let mut refused = Vec::new();
    let kept = candidates
        .into_iter()
        .filter(|t| {
            let ok = permits(t.addr.ip());
            if !ok && !refused.contains(&t.addr.ip()) {
                refused.push(t.addr.ip());
            }
            ok
        })
        .collect();
    (kept, refused)
}

/// Orders SRV records as RFC 2782 says: lowest priority first; within a priority, a
/// weighted random draw. The records of a priority are first shuffled (the RFC's "any
/// order"), weight-0 records are put at the front, then each pick draws a number in
/// `0..=sum` and takes the first record whose running weight sum reaches it. A weight-0
/// record is thus picked first only when the draw is 0 (rarely, when others weigh more),
/// and records that all weigh 0 come out in a uniformly random order.
pub fn order_srv(mut records: Vec<SrvRecord>, rng: &mut fastrand::Rng) -> Vec<SrvRecord> {
    records.sort_by_key(|r| r.priority);
    let mut out = Vec::with_capacity(records.len());
    let mut rest = records.as_slice();
    while let Some(first) = rest.first() {
        let n = rest
            .iter()
            .take_while(|r| r.priority == first.priority)
            .count();
        let mut group = rest[..n].to_vec();
        rest = &rest[n..];
        rng.shuffle(&mut group);
        group.sort_by_key(|r| r.weight != 0);
        while !group.is_empty() {
            let sum: u32 = group.iter().map(|r| u32::from(r.weight)).sum();
            let draw = rng.u32(0..=sum);
            let mut running = 0;
            let pick = group
                .iter()
                .position(|r| {
                    running += u32::from(r.weight);
                    running >= draw
                })
                .unwrap_or(0);
            out.push(group.remove(pick));
        }
    }
    out
}

#[cfg(test)]
#[path = "select_tests.rs"]
mod tests;
