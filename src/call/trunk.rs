//! `[[trunks]]`: SIP trunks holdless places calls through (a PSTN carrier, Twilio Elastic
//! SIP Trunking's termination side, a contact center's SBC). A trunk has an address (a
//! host name resolved per RFC 3263, or an IP), an optional outbound proxy, and optional
//! digest credentials answered on 401 and 407. Call targets name the trunks their legs
//! use (`[call_targets.dialler] customer_trunk` / `agent_trunk`).

use std::sync::Arc;

use serde::Deserialize;

use crate::media::srtp::SrtpPolicy;

use crate::key_error::KeyError;
use crate::sip::digest::Credentials;

/// One trunk, validated.
#[derive(Debug, Clone)]
pub struct Trunk {
    /// Its name (what call targets refer to).
    pub id: String,
    /// Where it is: `sip:host[:port][;transport=tcp|tls]` or `sips:host[:port]` (with the
    /// trunk's `transport` key, if set, as the `transport` parameter). Numbers are sent as
    /// `sip:<number>@<host[:port]>`.
    pub uri: String,
    /// Requests go to this proxy first (a loose `Route`), not straight to `uri`.
    pub outbound_proxy: Option<String>,
    /// Digest credentials (never logged).
    pub credentials: Option<Arc<Credentials>>,
    /// Media security of the legs sent through it (`None`: as for the leg without a
    /// trunk).
    pub srtp: Option<SrtpPolicy>,
}

impl PartialEq for Trunk {
    fn eq(&self, o: &Self) -> bool {
        self.id == o.id && self.uri == o.uri && self.outbound_proxy == o.outbound_proxy
    }
}

impl Trunk {
    /// The URI the INVITE is sent to (resolved per RFC 3263): the proxy, else the trunk.
    pub fn next_hop(&self) -> &str {
        self.outbound_proxy.as_deref().unwrap_or(&self.uri)
    }
}

/// One `[[trunks]]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTrunk {
    id: String,
    uri: String,
    #[serde(default)]
    outbound_proxy: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    realm: Option<String>,
    /// `udp`, `tcp` or `tls`: the transport, when the URI does not say.
    #[serde(default)]
    transport: Option<String>,
    /// `off`, `optional` or `required`: SRTP on the legs sent through it.
    #[serde(default)]
    srtp: Option<SrtpPolicy>,
}

impl std::fmt::Debug for RawTrunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawTrunk")
            .field("id", &self.id)
            .field("uri", &self.uri)
            .field("outbound_proxy", &self.outbound_proxy)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("realm", &self.realm)
            .finish()
    }
}

/// Whether `uri` is a `sip:` or `sips:` URI holdless can send to (host or IP; UDP, TCP
/// or TLS).
fn check_uri(uri: &str) -> Result<crate::resolve::uri::SipTarget, String> {
    crate::resolve::uri::SipTarget::parse(uri).map_err(|e| e.to_string())
}

/// `uri` with the trunk's `transport` key as its parameter; an error if the URI already
/// says another transport.
fn with_transport(uri: &str, transport: &str) -> Result<String, (&'static str, String)> {
    let t = transport.to_ascii_lowercase();
    if !["udp", "tcp", "tls"].contains(&t.as_str()) {
        return Err(("transport", format!("{transport:?}: udp, tcp or tls")));
    }
    match check_uri(uri) {
        Ok(target) if target.transport.is_some() || target.secure => {
            let has = target.default_transport().to_string().to_ascii_lowercase();
            if has == t {
                Ok(uri.to_owned())
            } else {
                Err((
                    "transport",
                    format!("{t} but the uri says {has}: set one of them"),
                ))
            }
        }
        Ok(_) => Ok(match uri.split_once(['?', '>']) {
            Some(_) => uri.to_owned(), // headers in a trunk URI are refused below anyway
            None => format!("{uri};transport={t}"),
        }),
        Err(_) => Ok(uri.to_owned()), // reported against `uri`
    }
}

/// Validates `[[trunks]]`, an error per bad key (`trunks[1].uri`).
pub(crate) fn validate(errors: &mut Vec<KeyError>, raw: &[RawTrunk]) -> Vec<Trunk> {
    let mut out: Vec<Trunk> = Vec::new();
    for (i, t) in raw.iter().enumerate() {
        let mut err = |k: &str, message: String| {
            errors.push(KeyError {
                key: format!("trunks[{i}].{k}"),
                message,
            })
        };
        if t.id.trim().is_empty() {
            err("id", "must not be empty".into());
        } else if out.iter().any(|o| o.id == t.id) {
            err("id", format!("{:?} is used by another trunk", t.id));
        }
        let uri = match t.transport.as_deref() {
            None => t.uri.clone(),
            Some(tr) => with_transport(&t.uri, tr).unwrap_or_else(|(k, e)| {
                err(k, e);
                t.uri.clone()
            }),
        };
        if let Err(e) = check_uri(&uri) {
            err("uri", e);
        }
        if let Some(p) = &t.outbound_proxy {
            if let Err(e) = check_uri(p) {
                err("outbound_proxy", e);
            }
        }
        let credentials = match (&t.username, &t.password) {
            (Some(u), Some(p)) => {
                let c = Credentials::new(u.clone(), p.clone());
                Some(Arc::new(match &t.realm {
                    Some(r) => c.with_realm(r.clone()),
                    None => c,
                }))
            }
            (None, None) => None,
            (Some(_), None) => {
                err("password", "username is set: set the password too".into());
                None
            }
            (None, Some(_)) => {
                err("username", "password is set: set the username too".into());
                None
            }
        };
        out.push(Trunk {
            id: t.id.clone(),
            uri,
            outbound_proxy: t.outbound_proxy.clone(),
            credentials,
            srtp: t.srtp,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(uri: &str, user: Option<&str>, pass: Option<&str>) -> RawTrunk {
        RawTrunk {
            id: "carrier".into(),
            uri: uri.into(),
            outbound_proxy: None,
            username: user.map(Into::into),
            password: pass.map(Into::into),
            realm: None,
            transport: None,
            srtp: None,
        }
    }

    #[test]
    fn a_trunk_by_name_with_credentials_loads_and_never_shows_its_password() {
        let mut e = Vec::new();
        let r = raw(
            "sip:example.pstn.twilio.com;transport=tcp",
            Some("holdless"),
            Some("s3cret-pw"),
        );
        assert!(!format!("{r:?}").contains("s3cret-pw"));
        let t = validate(&mut e, &[r]);
        assert!(e.is_empty(), "{e:?}");
        assert!(t[0].credentials.is_some());
        assert!(!format!("{t:?}").contains("s3cret-pw"));
        assert_eq!(t[0].next_hop(), "sip:example.pstn.twilio.com;transport=tcp");
    }

    #[test]
    fn tls_trunks_by_uri_or_by_key() {
        let mut e = Vec::new();
        let t = validate(
            &mut e,
            &[
                raw("sips:sip.example.com", None, None),
                RawTrunk {
                    id: "b".into(),
                    transport: Some("TLS".into()),
                    ..raw("sip:203.0.113.9:5061", None, None)
                },
                RawTrunk {
                    id: "c".into(),
                    transport: Some("tls".into()),
                    ..raw("sip:203.0.113.9;transport=tls", None, None)
                },
            ],
        );
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(t[1].uri, "sip:203.0.113.9:5061;transport=tls");
        assert_eq!(t[2].uri, "sip:203.0.113.9;transport=tls");
        let target = crate::resolve::uri::SipTarget::parse(&t[1].uri).unwrap();
        assert_eq!(target.default_transport(), crate::resolve::Transport::Tls);
    }

    #[test]
    fn bad_trunks_name_their_keys() {
        let mut e = Vec::new();
        validate(
            &mut e,
            &[
                raw("http://x", None, None),
                raw("sip:10.0.0.1", Some("u"), None),
                raw("sips:secure.example.com;transport=udp", None, None),
                RawTrunk {
                    id: "x".into(),
                    transport: Some("tls".into()),
                    ..raw("sip:10.0.0.2;transport=tcp", None, None)
                },
            ],
        );
        let keys: Vec<&str> = e.iter().map(|k| k.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "trunks[0].uri",
                "trunks[1].id",
                "trunks[1].password",
                "trunks[2].id",
                "trunks[2].uri",
                "trunks[3].transport"
            ],
            "{e:?}"
        );
    }
}
