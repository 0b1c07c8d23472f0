//! Who may talk to holdless and whom holdless may talk to: the signalling access-control
//! list, the per-source flood guard and the egress allow-list. Plain data, no clock reads.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use crate::config::{AclConfig, FloodConfig};

/// Normalises IPv4-mapped IPv6 (`::ffff:a.b.c.d`) so v4 rules apply to dual-stack sockets.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// CIDR allow and deny lists; deny wins.
#[derive(Debug, Clone)]
pub struct AccessList {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

impl AccessList {
    /// Builds the list from configuration.
    pub fn new(cfg: &AclConfig) -> Self {
        AccessList {
            allow: cfg.allow.clone(),
            deny: cfg.deny.clone(),
        }
    }

    /// Whether a source address may send signalling.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        !self.deny.iter().any(|n| n.contains(&ip)) && self.allow.iter().any(|n| n.contains(&ip))
    }
}

/// The networks holdless may send SIP and RTP to (toll-fraud and reflection guard).
#[derive(Debug, Clone)]
pub struct Egress {
    allow: Vec<IpNet>,
}

impl Egress {
    /// Builds the allow-list.
    pub fn new(allow: Vec<IpNet>) -> Self {
        Egress { allow }
    }

    /// Whether holdless may send to this address.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.allow.iter().any(|n| n.contains(&ip))
    }
}

/// Most source addresses the flood guard tracks at once; beyond it, windows that have
/// ended are swept first. 100k sources × ~48 bytes is about 5 MB, a bounded worst case
/// under a spoofed-source flood.
pub const MAX_TRACKED_SOURCES: usize = 100_000;

/// Counts requests per source address in fixed windows.
#[derive(Debug)]
pub struct FloodGuard {
    max: u32,
    window: Duration,
    sources: HashMap<IpAddr, (Instant, u32)>,
}

impl FloodGuard {
    /// A guard allowing `cfg.max_requests` per `cfg.window` per source.
    pub fn new(cfg: &FloodConfig) -> Self {
        FloodGuard {
            max: cfg.max_requests,
            window: cfg.window,
            sources: HashMap::new(),
        }
    }

    /// Counts one request; `false` when the source is over its limit.
    pub fn admit(&mut self, now: Instant, ip: IpAddr) -> bool {
        if self.sources.len() >= MAX_TRACKED_SOURCES {
            self.sweep(now);
        }
        let window = self.window;
        let entry = self.sources.entry(canonical(ip)).or_insert((now, 0));
        if now.saturating_duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1 <= self.max
    }

    /// Forgets sources whose window has ended.
    pub fn sweep(&mut self, now: Instant) {
        let window = self.window;
        self.sources
            .retain(|_, (start, _)| now.saturating_duration_since(*start) < window);
    }

    /// Sources currently tracked.
    pub fn tracked(&self) -> usize {
        self.sources.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RefuseAction;

    fn acl(allow: &[&str], deny: &[&str]) -> AccessList {
        let p = |v: &[&str]| v.iter().map(|s| s.parse().unwrap()).collect();
        AccessList::new(&AclConfig {
            action: RefuseAction::Reject,
            allow: p(allow),
            deny: p(deny),
        })
    }

    #[test]
    fn allow_and_deny_v4_v6() {
        let a = acl(&["127.0.0.1/32", "2001:db8::/32"], &["2001:db8:bad::/48"]);
        assert!(a.permits("127.0.0.1".parse().unwrap()));
        assert!(!a.permits("127.0.0.2".parse().unwrap()));
        assert!(a.permits("::ffff:127.0.0.1".parse().unwrap()));
        assert!(a.permits("2001:db8::1".parse().unwrap()));
        assert!(!a.permits("2001:db8:bad::1".parse().unwrap()));
        assert!(!a.permits("::1".parse().unwrap()));
    }

    #[test]
    fn egress_is_an_allow_list() {
        let e = Egress::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(e.permits("127.9.9.9".parse().unwrap()));
        assert!(!e.permits("192.0.2.1".parse().unwrap()));
        assert!(!e.permits("::1".parse().unwrap()));
    }

    #[test]
    fn flood_guard_limits_per_window_and_resets() {
        let cfg = FloodConfig {
            max_requests: 3,
            window: Duration::from_secs(1),
            action: RefuseAction::Reject,
            retry_after_secs: 5,
        };
        let mut g = FloodGuard::new(&cfg);
        let t0 = Instant::now();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        assert!((0..3).all(|_| g.admit(t0, ip)));
        assert!(!g.admit(t0 + Duration::from_millis(500), ip));
        assert!(g.admit(t0, other));
        assert!(g.admit(t0 + Duration::from_secs(1), ip));
        g.sweep(t0 + Duration::from_secs(3));
        assert_eq!(g.tracked(), 0);
    }
}
