//! RFC 4028 session timers for one leg: what was negotiated and when to refresh or give up.

use std::time::Duration;

use crate::sip::{Message, Name};

/// The Session-Expires header name (compact `x`).
pub const SESSION_EXPIRES: &str = "Session-Expires";
/// The Min-SE header name.
pub const MIN_SE: &str = "Min-SE";

/// A negotiated session timer on one leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimer {
    /// Session interval in seconds.
    pub interval: u32,
    /// Whether holdless refreshes (otherwise the peer does and holdless watches).
    pub we_refresh: bool,
}

impl SessionTimer {
    /// When the refresher must refresh: half the interval (§7.4, §9).
    pub fn refresh_after(&self) -> Duration {
        Duration::from_secs(u64::from(self.interval / 2).max(1))
    }

    /// When the watching side gives up: interval − min(32, interval/3) (§10).
    pub fn expire_after(&self) -> Duration {
        let i = u64::from(self.interval);
        Duration::from_secs(i - (i / 3).min(32))
    }
}

/// Session-Expires of a message: (delta-seconds, refresher param).
pub fn session_expires(m: &Message) -> Option<(u32, Option<String>)> {
    let v = m.get_other(SESSION_EXPIRES).or_else(|| m.get_other("x"))?;
    let mut parts = v.split(';');
    let secs = parts.next()?.trim().parse::<u32>().ok()?;
    let refresher = parts
        .filter_map(|p| p.split_once('='))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("refresher"))
        .map(|(_, r)| r.trim().to_ascii_lowercase());
    Some((secs, refresher))
}

/// Min-SE of a message.
pub fn min_se(m: &Message) -> Option<u32> {
    m.get_other(MIN_SE)?.split(';').next()?.trim().parse().ok()
}

/// Whether the message lists `tag` in Supported (or Require).
pub fn supports(m: &Message, tag: &str) -> bool {
    m.get_all(Name::Supported)
        .chain(m.get_all(Name::Require))
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(tag))
}

/// Whether the message's Allow lists a method.
pub fn allows(m: &Message, method: &str) -> bool {
    m.get_all(Name::Allow)
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(method))
}

/// The outcome of negotiating a session timer as UAS for an incoming INVITE (§9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UasNegotiation {
    /// The requested interval is below our Min-SE: answer 422 with this Min-SE.
    TooSmall(u32),
    /// Use this timer; put these headers in the 2xx.
    Use(SessionTimer, Vec<(String, String)>),
    /// The peer neither asked for nor supports session timers.
    None,
}

/// Negotiates the session timer for an incoming INVITE, holdless being the UAS.
pub fn negotiate_uas(req: &Message, our_min_se: u32, our_default: u32) -> UasNegotiation {
    let supported = supports(req, "timer");
    let asked = session_expires(req);
    if let Some((se, _)) = &asked {
        if *se < our_min_se {
            return UasNegotiation::TooSmall(our_min_se);
        }
    }
    if asked.is_none() && !supported {
        return UasNegotiation::None;
    }
    let interval = asked
        .as_ref()
        .map(|(s, _)| *s)
        .unwrap_or(our_default)
        .max(min_se(req).unwrap_or(0));
    let peer_refreshes = match asked.and_then(|(_, r)| r) {
        Some(r) => r == "uac",
        None => supported,
    };
    let refresher = if peer_refreshes { "uac" } else { "uas" };
    let mut headers = vec![(
        SESSION_EXPIRES.to_owned(),
        format!("{interval};refresher={refresher}"),
    )];
    if supported {
        headers.push(("Require".to_owned(), "timer".to_owned()));
    }
    UasNegotiation::Use(
        SessionTimer {
            interval,
            we_refresh: !peer_refreshes,
        },
        headers,
    )
}

/// The session timer from a 2xx to our INVITE, holdless being the UAC (§7.2).
pub fn from_uac_answer(resp: &Message, asked: u32) -> SessionTimer {
    match session_expires(resp) {
        Some((interval, refresher)) => SessionTimer {
            interval,
            we_refresh: refresher.as_deref() != Some("uas"),
        },
        None => SessionTimer {
            interval: asked,
            we_refresh: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::Method;

    fn invite(headers: &[(&str, &str)]) -> Message {
        let mut m = Message::request(Method::Invite, "sip:a@h");
        for (n, v) in headers {
            m.push_other(*n, *v);
        }
        m
    }

    #[test]
    fn too_small_gets_422() {
        let m = invite(&[("Session-Expires", "60"), ("Supported", "timer")]);
        assert_eq!(negotiate_uas(&m, 90, 1800), UasNegotiation::TooSmall(90));
    }

    #[test]
    fn uac_refreshes_when_it_supports_timer() {
        let m = invite(&[("Session-Expires", "1800"), ("Supported", "timer, 100rel")]);
        let UasNegotiation::Use(t, h) = negotiate_uas(&m, 90, 1800) else {
            panic!()
        };
        assert_eq!(
            t,
            SessionTimer {
                interval: 1800,
                we_refresh: false
            }
        );
        assert_eq!(h[0].1, "1800;refresher=uac");
        assert_eq!(h[1], ("Require".into(), "timer".into()));
    }

    #[test]
    fn without_support_we_refresh_or_nothing() {
        let m = invite(&[("Session-Expires", "600;refresher=uas")]);
        let UasNegotiation::Use(t, h) = negotiate_uas(&m, 90, 1800) else {
            panic!()
        };
        assert!(t.we_refresh);
        assert_eq!(h.len(), 1);
        assert_eq!(negotiate_uas(&invite(&[]), 90, 1800), UasNegotiation::None);
    }

    #[test]
    fn refresh_and_expiry_points() {
        let t = SessionTimer {
            interval: 1800,
            we_refresh: true,
        };
        assert_eq!(t.refresh_after(), Duration::from_secs(900));
        assert_eq!(t.expire_after(), Duration::from_secs(1768));
        let t = SessionTimer {
            interval: 90,
            we_refresh: false,
        };
        assert_eq!(t.expire_after(), Duration::from_secs(60));
    }

    #[test]
    fn uac_answer_refresher() {
        let mut ok = Message::response(200, "OK");
        ok.push_other("Session-Expires", "1200;refresher=uas");
        assert_eq!(
            from_uac_answer(&ok, 1800),
            SessionTimer {
                interval: 1200,
                we_refresh: false
            }
        );
        assert_eq!(
            from_uac_answer(&Message::response(200, "OK"), 1800),
            SessionTimer {
                interval: 1800,
                we_refresh: true
            }
        );
    }
}
