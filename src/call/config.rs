//! `[calls]`: how holdless handles bridged calls (ring timeout, session timers, which
//! headers cross from one leg to the other, how many calls at once).

use std::time::Duration;

use serde::Deserialize;

use crate::key_error::KeyError;

/// Headers carried from one leg to the other unless configured otherwise: the UUI headers
/// contact centers route on, and every `X-` header.
pub const DEFAULT_PASS_THROUGH: &[&str] = &["X-User-To-User", "User-to-User", "X-*"];

/// Longest drain accepted, seconds: an hour covers any call a contact center would wait
/// for; past it a stuck call would hold a stopping node for ever.
pub const MAX_DRAIN_SECS: u64 = 3600;

/// The `[calls]` table as written.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawCalls {
    ring_timeout_secs: u64,
    session_expires_secs: u32,
    min_se_secs: u32,
    pass_through_headers: Vec<String>,
    max_calls: usize,
    outbound_trunk: Option<String>,
    dial_callbacks: bool,
    drain_secs: u64,
}

impl Default for RawCalls {
    fn default() -> Self {
        RawCalls {
            ring_timeout_secs: 60,
            session_expires_secs: 1800,
            min_se_secs: 90,
            pass_through_headers: DEFAULT_PASS_THROUGH.iter().map(|s| s.to_string()).collect(),
            max_calls: 10_000,
            outbound_trunk: None,
            dial_callbacks: true,
            drain_secs: 0,
        }
    }
}

/// Validated call settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSettings {
    /// No final answer from the called leg within this → CANCEL it, 480 to the caller.
    pub ring_timeout: Duration,
    /// Session-Expires holdless asks for (RFC 4028), seconds.
    pub session_expires: u32,
    /// The smallest session interval holdless accepts (Min-SE), seconds; at least 90.
    pub min_se: u32,
    /// Header names (a trailing `*` is a prefix) copied from one leg to the other.
    pub pass_through: Vec<String>,
    /// Most calls at once; beyond it new INVITEs get 503.
    pub max_calls: usize,
    /// The SIP trunk every outbound leg goes through (sent there with a loose Route; the
    /// Request-URI stays the number dialled). `None`: straight to the target URI.
    pub outbound_trunk: Option<String>,
    /// Whether this node dials due callbacks (false: it takes calls and registrations
    /// only; callbacks wait for a node that dials).
    pub dial_callbacks: bool,
    /// On shutdown, calls in progress may finish for this long (no new call or callback
    /// starts meanwhile); those still up then are hung up. Zero: hung up at once.
    pub drain: Duration,
}

impl Default for CallSettings {
    fn default() -> Self {
        let mut errors = Vec::new();
        RawCalls::default().validate(&mut errors)
    }
}

impl RawCalls {
    /// Checks every key, adding an error per problem.
    pub fn validate(&self, errors: &mut Vec<KeyError>) -> CallSettings {
        let mut err = |key: &str, message: &str| {
            errors.push(KeyError {
                key: format!("calls.{key}"),
                message: message.to_owned(),
            });
        };
        if self.ring_timeout_secs == 0 {
            err("ring_timeout_secs", "must be above 0");
        }
        if self.min_se_secs < 90 {
            err("min_se_secs", "RFC 4028 requires at least 90");
        }
        if self.session_expires_secs < self.min_se_secs {
            err("session_expires_secs", "must be at least min_se_secs");
        }
        if self.drain_secs > MAX_DRAIN_SECS {
            err("drain_secs", &format!("at most {MAX_DRAIN_SECS}"));
        }
        if self.max_calls == 0 {
            err("max_calls", "must be above 0");
        }
        for (i, h) in self.pass_through_headers.iter().enumerate() {
            let name = h.strip_suffix('*').unwrap_or(h);
            if name.is_empty() || !name.bytes().all(crate::sip::method::is_token_char) {
                err(
                    &format!("pass_through_headers[{i}]"),
                    "not a header name (or prefix ending in *)",
                );
            }
        }
        if let Some(t) = &self.outbound_trunk {
            if let Err(e) = super::route::destination(t) {
                err("outbound_trunk", &e);
            }
        }
        CallSettings {
            outbound_trunk: self.outbound_trunk.clone(),
            ring_timeout: Duration::from_secs(self.ring_timeout_secs),
            session_expires: self.session_expires_secs,
            min_se: self.min_se_secs,
            pass_through: self.pass_through_headers.clone(),
            max_calls: self.max_calls,
            dial_callbacks: self.dial_callbacks,
            drain: Duration::from_secs(self.drain_secs),
        }
    }
}

impl CallSettings {
    /// Whether a header crosses from one leg to the other.
    pub fn passes(&self, name: &str) -> bool {
        self.pass_through.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => {
                name.len() >= prefix.len() && name[..prefix.len()].eq_ignore_ascii_case(prefix)
            }
            None => name.eq_ignore_ascii_case(p),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_through_matches_names_and_prefixes() {
        let s = CallSettings::default();
        assert!(s.passes("x-user-to-user"));
        assert!(s.passes("User-to-User"));
        assert!(s.passes("X-Twilio-CallSid"));
        assert!(!s.passes("Via"));
        assert!(!s.passes("Contact"));
    }

    #[test]
    fn bad_values_name_their_keys() {
        let raw = RawCalls {
            min_se_secs: 30,
            pass_through_headers: vec!["Bad Header".into()],
            ..Default::default()
        };
        let mut errors = Vec::new();
        raw.validate(&mut errors);
        let keys: Vec<_> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            vec!["calls.min_se_secs", "calls.pass_through_headers[0]"]
        );
    }
}
