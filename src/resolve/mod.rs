//! Locating SIP servers (RFC 3263 §4) for outbound trunks: a SIP URI becomes an ordered
//! list of candidate addresses, each with a transport, that the dialler tries in turn.
//!
//! The shape follows the rest of holdless:
//! - [`uri`] reads the URI parts RFC 3263 needs (scheme, host, port, `transport=`);
//! - [`select`] is the sans-IO core: a [`Resolution`] says which DNS queries it needs,
//!   takes their answers, orders SRV records (RFC 2782) with an RNG handed in and applies
//!   the egress allow-list;
//! - [`cache`] is a TTL cache of answers, plain data driven by a `now` input;
//! - [`shell`] is the thin tokio part: [`Resolver`] asks `hickory-resolver` for what the
//!   core needs and never blocks the caller's runtime;
//! - [`config`] is the `[dns]` table.
//!
//! NAPTR (RFC 3263 §4.1) is not looked up: trunk providers publish SRV, and without NAPTR
//! RFC 3263 falls back to SRV for each supported transport, which is what [`select`] does.

pub mod cache;
pub mod config;
pub mod select;
pub mod shell;
pub mod uri;

use std::fmt;
use std::net::{IpAddr, SocketAddr};

pub use cache::DnsCache;
pub use config::{DnsSettings, RawDns};
pub use select::{Answer, Query, RecordType, Records, Resolution, SrvRecord};
pub use shell::Resolver;

use crate::sip::Peer;

/// Why a SIP URI could not be turned into a destination.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The URI is not a `sip:` or `sips:` URI holdless can route to.
    #[error("cannot route to {uri:?}: {reason}")]
    BadUri {
        /// The URI as given.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// DNS did not answer (timeout, SERVFAIL, no name server reachable), so the host's
    /// servers are unknown; not the same as "the name has no addresses".
    #[error("DNS lookup for {host} failed: {reason}")]
    DnsFailed {
        /// The URI's host.
        host: String,
        /// The failures, one per query that failed.
        reason: String,
    },
    /// The domain says it offers no SIP service here (an SRV record with target `.`).
    #[error("{host} publishes no SIP service for {service} (SRV target \".\")")]
    ServiceUnavailable {
        /// The URI's host.
        host: String,
        /// The SRV name asked.
        service: String,
    },
    /// DNS answered, but there is no address for the host (no SRV, A or AAAA records).
    #[error("{host} has no address in DNS (no SRV, A or AAAA records)")]
    NoAddresses {
        /// The URI's host.
        host: String,
    },
    /// Every address found is outside the egress allow-list (toll-fraud and reflection
    /// guard), so nothing may be sent there.
    #[error(
        "{host} resolves only to addresses outside the egress allow-list: {}",
        list(refused)
    )]
    EgressRefused {
        /// The URI's host.
        host: String,
        /// The addresses found and refused.
        refused: Vec<IpAddr>,
    },
    /// The resolver could not be built (unreadable `/etc/resolv.conf`, bad settings).
    #[error("DNS resolver setup failed: {0}")]
    Setup(String),
}

fn list(addrs: &[IpAddr]) -> String {
    let parts: Vec<String> = addrs.iter().map(IpAddr::to_string).collect();
    parts.join(", ")
}

/// The transport RFC 3263 picks for a candidate. TLS is here because `sips:` URIs and
/// `transport=tls` resolve to it; holdless's SIP transports are UDP and TCP only, so
/// [`Target::peer`] gives `None` for TLS targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// SIP over UDP (`_sip._udp`, default port 5060).
    Udp,
    /// SIP over TCP (`_sip._tcp`, default port 5060).
    Tcp,
    /// SIP over TLS (`_sips._tcp`, default port 5061).
    Tls,
}

impl Transport {
    /// The port to use when neither the URI nor an SRV record gives one (RFC 3263 §4.2).
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Udp | Transport::Tcp => 5060,
            Transport::Tls => 5061,
        }
    }

    /// The SRV service and protocol labels for this transport, e.g. `_sip._udp`.
    pub fn srv_prefix(self) -> &'static str {
        match self {
            Transport::Udp => "_sip._udp",
            Transport::Tcp => "_sip._tcp",
            Transport::Tls => "_sips._tcp",
        }
    }

    /// holdless's SIP transport for this one.
    pub fn sip(self) -> crate::sip::Transport {
        match self {
            Transport::Udp => crate::sip::Transport::Udp,
            Transport::Tcp => crate::sip::Transport::Tcp,
            Transport::Tls => crate::sip::Transport::Tls,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        })
    }
}

/// One place to send a request: an address and a transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Target {
    /// Where to.
    pub addr: SocketAddr,
    /// How.
    pub transport: Transport,
}

impl Target {
    /// The SIP peer to send to (no TCP or TLS connection yet: the transport shell opens
    /// or reuses one).
    pub fn peer(&self) -> Peer {
        Peer {
            transport: self.transport.sip(),
            addr: self.addr,
            conn: None,
            local: None,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.transport, self.addr)
    }
}

/// The ordered candidates for one URI, as a cursor: [`Targets::next`] gives the next one to
/// try. RFC 3263 §4.3: try the first; on a transport error, a timeout or a 503, move on to
/// the next; a new request (not a retransmission) starts from a fresh resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Targets {
    host: String,
    list: Vec<Target>,
    refused: Vec<IpAddr>,
    next: usize,
}

impl Targets {
    /// Candidates for `host`, in the order to try them, and the addresses the egress
    /// allow-list refused.
    pub fn new(host: impl Into<String>, list: Vec<Target>, refused: Vec<IpAddr>) -> Self {
        Targets {
            host: host.into(),
            list,
            refused,
            next: 0,
        }
    }

    /// The host the URI named.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Every candidate, in order, whether tried or not.
    pub fn all(&self) -> &[Target] {
        &self.list
    }

    /// Candidates not handed out yet.
    pub fn remaining(&self) -> &[Target] {
        &self.list[self.next..]
    }

    /// Addresses DNS gave that the egress allow-list refused (for the log line).
    pub fn refused(&self) -> &[IpAddr] {
        &self.refused
    }
}

impl Iterator for Targets {
    type Item = Target;

    /// The next candidate to try; `None` when all have been tried.
    fn next(&mut self) -> Option<Target> {
        let t = self.list.get(self.next).copied()?;
        self.next += 1;
        Some(t)
    }
}
