//! `[dns]`: where holdless asks DNS when a trunk or target URI names a host.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Deserialize;

use super::cache::DEFAULT_MAX_ENTRIES;
use crate::key_error::KeyError;

/// Longest per-query timeout accepted: a dialler waiting longer than this for DNS has
/// already lost the customer's patience.
pub const MAX_TIMEOUT_MS: u64 = 30_000;

/// Largest cache accepted (about a few hundred bytes an entry).
pub const MAX_CACHE_ENTRIES: usize = 1_000_000;

/// The `[dns]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RawDns {
    /// `ip:port` (or `ip`, port 53) of each name server; empty: `/etc/resolv.conf`.
    pub nameservers: Vec<String>,
    /// How long one query waits for an answer before it is retried or fails.
    pub timeout_ms: u64,
    /// Most answers kept in the cache.
    pub cache_max_entries: usize,
}

impl Default for RawDns {
    fn default() -> Self {
        RawDns {
            nameservers: Vec::new(),
            timeout_ms: 2000,
            cache_max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

/// Validated DNS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSettings {
    /// Name servers to ask; empty: the system's (`/etc/resolv.conf`).
    pub nameservers: Vec<SocketAddr>,
    /// Per-query timeout.
    pub timeout: Duration,
    /// Most answers kept in the cache.
    pub cache_max_entries: usize,
}

impl Default for DnsSettings {
    fn default() -> Self {
        RawDns::default().validate(&mut Vec::new())
    }
}

impl RawDns {
    /// Checks every key, adding an error per problem (keys under `dns.`).
    pub fn validate(&self, errors: &mut Vec<KeyError>) -> DnsSettings {
        let mut err = |key: &str, message: String| {
            errors.push(KeyError {
                key: format!("dns.{key}"),
                message,
            });
        };
        let mut nameservers = Vec::new();
        for (i, s) in self.nameservers.iter().enumerate() {
            match parse_nameserver(s) {
                Some(a) => nameservers.push(a),
                None => err(
                    &format!("nameservers[{i}]"),
                    format!("{s:?} is not an ip:port (e.g. \"127.0.0.53:53\" or \"[::1]:53\")"),
                ),
            }
        }
        if self.timeout_ms == 0 || self.timeout_ms > MAX_TIMEOUT_MS {
            err(
                "timeout_ms",
                format!("must be between 1 and {MAX_TIMEOUT_MS}"),
            );
        }
        if self.cache_max_entries == 0 || self.cache_max_entries > MAX_CACHE_ENTRIES {
            err(
                "cache_max_entries",
                format!("must be between 1 and {MAX_CACHE_ENTRIES}"),
            );
        }
        DnsSettings {
            nameservers,
            timeout: Duration::from_millis(self.timeout_ms.clamp(1, MAX_TIMEOUT_MS)),
            cache_max_entries: self.cache_max_entries.clamp(1, MAX_CACHE_ENTRIES),
        }
    }
}

/// `ip:port`, `[v6]:port`, or a bare address on port 53; port 0 refused.
fn parse_nameserver(s: &str) -> Option<SocketAddr> {
    let s = s.trim();
    let addr = match s.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => SocketAddr::new(s.parse::<IpAddr>().ok()?, 53),
    };
    (addr.port() != 0).then_some(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let mut errors = Vec::new();
        let s = RawDns::default().validate(&mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(s.nameservers.is_empty());
        assert_eq!(s.timeout, Duration::from_secs(2));
    }

    #[test]
    fn nameservers_parse_and_bad_values_name_their_keys() {
        let raw: RawDns = toml::from_str(
            "nameservers = [\"127.0.0.1:5353\", \"::1\", \"dns.example\", \"127.0.0.1:0\"]\n\
             timeout_ms = 0\ncache_max_entries = 0",
        )
        .unwrap();
        let mut errors = Vec::new();
        let s = raw.validate(&mut errors);
        assert_eq!(
            s.nameservers,
            [
                "127.0.0.1:5353".parse().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "dns.nameservers[2]",
                "dns.nameservers[3]",
                "dns.timeout_ms",
                "dns.cache_max_entries"
            ]
        );
    }
}
