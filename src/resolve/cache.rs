//! A TTL cache of DNS answers keyed by (name, record type): plain data, the clock an input.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::select::{Answer, Query, RecordType};

/// Longest time a positive answer is kept whatever its TTL says: a trunk provider that
/// moves or rebalances its servers is followed within the hour even behind day-long TTLs.
pub const MAX_TTL: Duration = Duration::from_secs(3600);

/// How long a negative answer (NXDOMAIN, or no records of the type) is kept, at most;
/// also the time used when the server gives no SOA. Most trunks have no SRV records (or no
/// AAAA), so without it every call would spend two or three extra round trips on the same
/// empty answers; 30 s is short enough that a record an operator adds is used within half
/// a minute. The SOA's negative TTL (RFC 2308) is used when it is shorter.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(30);

/// Entries kept when the configuration does not say (`dns.cache_max_entries`); a few
/// hundred bytes each.
pub const DEFAULT_MAX_ENTRIES: usize = 10_000;

/// One cached answer.
#[derive(Debug, Clone)]
struct Entry {
    answer: Answer,
    expires: Instant,
}

/// Answers by (name, type), each until its TTL runs out. Failures (timeouts, SERVFAIL)
/// are never cached: the next resolution asks again.
#[derive(Debug)]
pub struct DnsCache {
    entries: HashMap<(String, RecordType), Entry>,
    max_entries: usize,
}

impl DnsCache {
    /// An empty cache holding at most `max_entries` answers (at least one).
    pub fn new(max_entries: usize) -> Self {
        DnsCache {
            entries: HashMap::new(),
            max_entries: max_entries.max(1),
        }
    }

    /// The answer to `query` if one is cached and still fresh at `now`; its TTL is what
    /// remains.
    pub fn get(&self, now: Instant, query: &Query) -> Option<Answer> {
        let e = self.entries.get(&(query.name.clone(), query.rtype))?;
        let left = e
            .expires
            .checked_duration_since(now)
            .filter(|d| !d.is_zero())?;
        let mut answer = e.answer.clone();
        answer.ttl = Some(left);
        Some(answer)
    }

    /// Keeps `answer` to `query` for its TTL (clamped to [`MAX_TTL`]; negative answers to
    /// [`NEGATIVE_TTL`]). A TTL of 0 means "do not cache" (RFC 1035 §3.2.1). When full,
    /// expired entries go first, then the one closest to expiry.
    pub fn insert(&mut self, now: Instant, query: &Query, answer: &Answer) {
        let ttl = if answer.records.is_empty() {
            answer.ttl.map_or(NEGATIVE_TTL, |t| t.min(NEGATIVE_TTL))
        } else {
            answer.ttl.unwrap_or(Duration::ZERO).min(MAX_TTL)
        };
        if ttl.is_zero() {
            return;
        }
        let key = (query.name.clone(), query.rtype);
        if self.entries.len() >= self.max_entries && !self.entries.contains_key(&key) {
            self.make_room(now);
        }
        self.entries.insert(
            key,
            Entry {
                answer: answer.clone(),
                expires: now + ttl,
            },
        );
    }

    /// Drops every entry that has expired at `now`.
    pub fn sweep(&mut self, now: Instant) {
        self.entries.retain(|_, e| e.expires > now);
    }

    /// Entries held (fresh or not yet swept).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn make_room(&mut self, now: Instant) {
        self.sweep(now);
        if self.entries.len() < self.max_entries {
            return;
        }
        let soonest = self
            .entries
            .iter()
            .min_by_key(|(_, e)| e.expires)
            .map(|(k, _)| k.clone());
        if let Some(k) = soonest {
            self.entries.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::select::Records;

    fn q(name: &str, rtype: RecordType) -> Query {
        Query {
            name: name.into(),
            rtype,
        }
    }

    fn a(ips: &[&str], ttl: Option<u64>) -> Answer {
        Answer {
            records: Records::Addrs(ips.iter().map(|s| s.parse().unwrap()).collect()),
            ttl: ttl.map(Duration::from_secs),
        }
    }

    #[test]
    fn answers_expire_with_their_ttl() {
        let t0 = Instant::now();
        let mut c = DnsCache::new(100);
        let query = q("a.test.", RecordType::A);
        c.insert(t0, &query, &a(&["127.0.0.2"], Some(60)));
        let got = c.get(t0 + Duration::from_secs(59), &query).unwrap();
        assert_eq!(got.ttl, Some(Duration::from_secs(1)));
        assert_eq!(got.records, a(&["127.0.0.2"], None).records);
        assert!(c.get(t0 + Duration::from_secs(60), &query).is_none());
        // Keyed by type too.
        assert!(c.get(t0, &q("a.test.", RecordType::Aaaa)).is_none());
        c.sweep(t0 + Duration::from_secs(61));
        assert!(c.is_empty());
    }

    #[test]
    fn ttl_zero_is_not_cached_and_long_ttls_are_capped() {
        let t0 = Instant::now();
        let mut c = DnsCache::new(100);
        let query = q("a.test.", RecordType::A);
        c.insert(t0, &query, &a(&["127.0.0.2"], Some(0)));
        assert!(c.get(t0, &query).is_none());
        c.insert(t0, &query, &a(&["127.0.0.2"], Some(86_400)));
        assert!(c
            .get(t0 + MAX_TTL - Duration::from_secs(1), &query)
            .is_some());
        assert!(c.get(t0 + MAX_TTL, &query).is_none());
    }

    #[test]
    fn negative_answers_are_kept_briefly() {
        let t0 = Instant::now();
        let mut c = DnsCache::new(100);
        let query = q("_sip._udp.a.test.", RecordType::Srv);
        let none = Answer {
            records: Records::Srv(vec![]),
            ttl: None,
        };
        c.insert(t0, &query, &none);
        assert!(c
            .get(t0 + NEGATIVE_TTL - Duration::from_secs(1), &query)
            .is_some());
        assert!(c.get(t0 + NEGATIVE_TTL, &query).is_none());
        // An SOA minimum of a day is cut to NEGATIVE_TTL; a shorter one is used as is.
        let day = Answer {
            ttl: Some(Duration::from_secs(86_400)),
            ..none.clone()
        };
        c.insert(t0, &query, &day);
        assert!(c.get(t0 + NEGATIVE_TTL, &query).is_none());
        let short = Answer {
            ttl: Some(Duration::from_secs(5)),
            ..none
        };
        c.insert(t0, &query, &short);
        assert!(c.get(t0 + Duration::from_secs(5), &query).is_none());
    }

    #[test]
    fn full_cache_evicts_the_soonest_to_expire() {
        let t0 = Instant::now();
        let mut c = DnsCache::new(2);
        c.insert(t0, &q("a.", RecordType::A), &a(&["127.0.0.1"], Some(10)));
        c.insert(t0, &q("b.", RecordType::A), &a(&["127.0.0.1"], Some(100)));
        c.insert(t0, &q("c.", RecordType::A), &a(&["127.0.0.1"], Some(50)));
        assert_eq!(c.len(), 2);
        assert!(c.get(t0, &q("a.", RecordType::A)).is_none());
        assert!(c.get(t0, &q("b.", RecordType::A)).is_some());
        assert!(c.get(t0, &q("c.", RecordType::A)).is_some());
    }
}
