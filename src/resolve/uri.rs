//! The parts of a SIP URI that RFC 3263 §4 decides on: scheme, host, port and the
//! `transport` parameter.

use std::net::IpAddr;

use super::{ResolveError, Transport};

/// Longest host name accepted (RFC 1035 §2.3.4: 255 octets on the wire, 253 as text).
pub const MAX_HOST_LEN: usize = 253;

/// The host of a SIP URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// An IPv4 or IPv6 literal: no DNS.
    Ip(IpAddr),
    /// A domain name, lowercase, without a trailing dot.
    Name(String),
}

/// What RFC 3263 needs from a `sip:`/`sips:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipTarget {
    /// `sips:`: TLS is required (RFC 3261 §26.2.2).
    pub secure: bool,
    /// The host.
    pub host: Host,
    /// The explicit port, if the URI has one.
    pub port: Option<u16>,
    /// The `transport=` parameter, if any (`sips:` always gives TLS).
    pub transport: Option<Transport>,
}

impl SipTarget {
    /// Reads a `sip:` or `sips:` URI (as in a Request-URI, Route or configuration value).
    pub fn parse(uri: &str) -> Result<SipTarget, ResolveError> {
        let bad = |reason: &str| ResolveError::BadUri {
            uri: uri.to_owned(),
            reason: reason.to_owned(),
        };
        let parsed = crate::sip::uri::parse(uri).map_err(|e| bad(&e.to_string()))?;
        let secure = match parsed.scheme.as_str() {
            "sip" => false,
            "sips" => true,
            other => {
                return Err(bad(&format!(
                    "only sip: and sips: URIs can be dialled, not {other}:"
                )))
            }
        };
        let rest = uri.trim().split_once(':').map(|x| x.1).unwrap_or_default();
        // The first `@` ends the user part (as in sip::uri::parse); `?` starts headers.
        let hostpart = rest.split_once('@').map_or(rest, |x| x.1);
        let hostpart = hostpart.split('?').next().unwrap_or_default();
        let mut params = hostpart.split(';');
        let hostport = params.next().unwrap_or_default();
        let (host, port) = split_host_port(hostport).map_err(|r| bad(&r))?;
        let mut transport = None;
        for p in params {
            if let Some((k, v)) = p.split_once('=') {
                if k.trim().eq_ignore_ascii_case("transport") {
                    transport = Some(parse_transport(v.trim()).map_err(|r| bad(&r))?);
                }
            }
        }
        if secure {
            transport = match transport {
                None | Some(Transport::Tcp | Transport::Tls) => Some(Transport::Tls),
                Some(Transport::Udp) => return Err(bad("sips: needs TLS, not transport=udp")),
            };
        }
        Ok(SipTarget {
            secure,
            host: parse_host(host).map_err(|r| bad(&r))?,
            port,
            transport,
        })
    }

    /// The transport when nothing else decides it: the `transport` parameter, else TLS for
    /// `sips:`, else UDP (RFC 3263 §4.1).
    pub fn default_transport(&self) -> Transport {
        self.transport.unwrap_or(if self.secure {
            Transport::Tls
        } else {
            Transport::Udp
        })
    }

    /// The host as text, for messages.
    pub fn host_text(&self) -> String {
        match &self.host {
            Host::Ip(ip) => ip.to_string(),
            Host::Name(n) => n.clone(),
        }
    }
}

fn parse_transport(v: &str) -> Result<Transport, String> {
    match v.to_ascii_lowercase().as_str() {
        "udp" => Ok(Transport::Udp),
        "tcp" => Ok(Transport::Tcp),
        "tls" => Ok(Transport::Tls),
        other => Err(format!("transport={other} is not one holdless can use")),
    }
}

fn split_host_port(s: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']').ok_or("unterminated IPv6 reference")?;
        let after = &rest[end + 1..];
        if !after.is_empty() && !after.starts_with(':') {
            return Err(format!("junk after IPv6 reference: {after:?}"));
        }
        (&rest[..end], after.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(format!("bad port {p:?}")),
        },
    };
    Ok((host, port))
}

fn parse_host(host: &str) -> Result<Host, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.is_empty() || name.len() > MAX_HOST_LEN || !name.split('.').all(label_ok) {
        return Err(format!("{host:?} is not an IP address or a domain name"));
    }
    Ok(Host::Name(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(uri: &str) -> SipTarget {
        SipTarget::parse(uri).unwrap()
    }

    #[test]
    fn hosts_ports_and_transports() {
        let a = t("sip:+15550009999@Trunk.Example.COM;transport=TCP");
        assert_eq!(a.host, Host::Name("trunk.example.com".into()));
        assert_eq!((a.port, a.transport), (None, Some(Transport::Tcp)));
        let b = t("sip:127.0.0.1:5090");
        assert_eq!(b.host, Host::Ip("127.0.0.1".parse().unwrap()));
        assert_eq!(b.port, Some(5090));
        assert_eq!(b.default_transport(), Transport::Udp);
        let c = t("sips:agent@[::1]:5071");
        assert_eq!(c.host, Host::Ip("::1".parse().unwrap()));
        assert_eq!((c.port, c.transport), (Some(5071), Some(Transport::Tls)));
        let d = t("sip:trunk.test.;lr?subject=x");
        assert_eq!(d.host, Host::Name("trunk.test".into()));
    }

    #[test]
    fn refusals() {
        for bad in [
            "tel:+15550009999",
            "sips:h.test;transport=udp",
            "sip:h.test;transport=sctp",
            "sip:h.test:0",
            "sip:h.test:99999",
            "sip:bad..name",
            "sip:[::1",
        ] {
            assert!(
                matches!(SipTarget::parse(bad), Err(ResolveError::BadUri { .. })),
                "{bad}"
            );
        }
    }
}
