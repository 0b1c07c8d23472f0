//! API access: bearer tokens name an organization; each organization has an IP allow-list.
//! A request is served only for the organization its token names, from an allowed address.

use std::collections::HashMap;
use std::net::IpAddr;

use axum::http::{header, HeaderMap};
use ipnet::IpNet;

use super::error::ApiError;
use crate::callback::{Organization, Widget};
use crate::config::Config;

/// Compares without an early exit, so response timing does not leak a token's prefix.
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

/// Who may do what, indexed from the configuration.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    /// (token, organization id).
    tokens: Vec<(String, String)>,
    allow: HashMap<String, Vec<IpNet>>,
    /// Widgets by id.
    pub widgets: HashMap<String, Widget>,
    /// Active widgets of each organization, in configuration order.
    pub org_widgets: HashMap<String, Vec<String>>,
    /// Time zone of each call target.
    pub target_tz: HashMap<String, chrono_tz::Tz>,
}

impl Directory {
    /// Indexes a validated configuration.
    pub fn new(cfg: &Config) -> Self {
        let mut d = Directory::default();
        for Organization {
            id,
            api_tokens,
            api_allow,
            ..
        } in &cfg.organizations
        {
            for t in api_tokens {
                d.tokens.push((t.clone(), id.clone()));
            }
            d.allow.insert(id.clone(), api_allow.clone());
            d.org_widgets.insert(id.clone(), vec![]);
        }
        for w in &cfg.widgets {
            if w.enabled {
                d.org_widgets
                    .entry(w.organization.clone())
                    .or_default()
                    .push(w.id.clone());
            }
            d.widgets.insert(w.id.clone(), w.clone());
        }
        for t in &cfg.call_targets {
            d.target_tz.insert(t.id.clone(), t.callback.hours.tz());
        }
        d
    }

    /// The organization a request's bearer token names.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<&str, ApiError> {
        let value = headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthorized("missing Authorization: Bearer token".into()))?;
        let value = value
            .to_str()
            .map_err(|_| ApiError::Unauthorized("malformed Authorization header".into()))?;
        let token = match value.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
            _ => {
                return Err(ApiError::Unauthorized(
                    "the Authorization header must be \"Bearer <token>\"".into(),
                ))
            }
        };
        // Check every token (no early exit on a match either).
        let mut found = None;
        for (t, org) in &self.tokens {
            if same(t.as_bytes(), token.as_bytes()) {
                found = Some(org.as_str());
            }
        }
        found.ok_or_else(|| ApiError::Unauthorized("invalid API token".into()))
    }

    /// Allows the request only for the token's own organization and an allowed address.
    pub fn authorize(&self, token_org: &str, org: &str, peer: IpAddr) -> Result<(), ApiError> {
        if token_org != org {
            return Err(ApiError::Forbidden(
                "this API token does not give access to that organization".into(),
            ));
        }
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
            v4 => v4,
        };
        let allowed = self
            .allow
            .get(org)
            .is_some_and(|nets| nets.iter().any(|n| n.contains(&peer)));
        if allowed {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "{peer} is not allowed by the organization's access policy"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = r#"
[sip]
udp = ["127.0.0.1:5060"]
[acl]
allow = ["127.0.0.0/8"]
[egress]
allow = ["127.0.0.0/8"]
[[organizations]]
id = "a"
api_tokens = ["token-of-a-1", "token-of-a-2"]
api_allow = ["127.0.0.0/8"]
[[organizations]]
id = "b"
api_tokens = ["token-of-b-1"]
api_allow = ["10.0.0.0/8"]
"#;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, v.parse().unwrap());
        h
    }

    #[test]
    fn tokens_name_their_organization() {
        let d = Directory::new(&Config::parse(CFG).unwrap());
        assert_eq!(
            d.authenticate(&headers("Bearer token-of-a-2")).unwrap(),
            "a"
        );
        assert_eq!(
            d.authenticate(&headers("bearer token-of-b-1")).unwrap(),
            "b"
        );
        for bad in [
            "Bearer token-of-a",
            "Bearer ",
            "Basic dXNlcjpwYXNz",
            "token-of-a-1",
        ] {
            assert!(
                matches!(
                    d.authenticate(&headers(bad)),
                    Err(ApiError::Unauthorized(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            d.authenticate(&HeaderMap::new()),
            Err(ApiError::Unauthorized(_))
        ));
    }

    #[test]
    fn other_organizations_and_outside_addresses_are_forbidden() {
        let d = Directory::new(&Config::parse(CFG).unwrap());
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(d.authorize("a", "a", lo).is_ok());
        assert!(d
            .authorize("a", "a", "::ffff:127.0.0.1".parse().unwrap())
            .is_ok());
        assert!(matches!(
            d.authorize("a", "b", lo),
            Err(ApiError::Forbidden(_))
        ));
        assert!(matches!(
            d.authorize("b", "b", lo),
            Err(ApiError::Forbidden(_))
        ));
        assert!(d.authorize("b", "b", "10.1.2.3".parse().unwrap()).is_ok());
    }

    #[test]
    fn constant_time_compare() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
        assert!(!same(b"", b"a"));
    }
}
