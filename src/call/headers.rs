//! Headers holdless builds for the other leg: pass-through copies, Via, Contact, and how a
//! callee's failure maps to the caller's final response.

use std::net::SocketAddr;

use super::config::CallSettings;
use crate::sip::{Message, Name, Transport};

/// Headers a B2BUA always builds itself, whatever the pass-through list says.
const NEVER_COPIED: &[Name] = &[
    Name::Via,
    Name::Route,
    Name::RecordRoute,
    Name::Contact,
    Name::CallId,
    Name::From,
    Name::To,
    Name::CSeq,
    Name::MaxForwards,
    Name::ContentLength,
    Name::ContentType,
    Name::Require,
    Name::Supported,
    Name::Allow,
];

/// Copies the pass-through headers of `from` into `to`, byte for byte and in order.
pub(super) fn copy_pass_through(cfg: &CallSettings, from: &Message, to: &mut Message) {
    for h in &from.headers {
        if NEVER_COPIED.iter().any(|n| n.matches(&h.name)) {
            continue;
        }
        if cfg.passes(&h.name) {
            to.headers.push(h.clone());
        }
    }
}

/// Our Contact for a leg on `transport`; `secure` when the leg's INVITE is addressed to a
/// `sips:` URI, which makes ours `sips:` too (RFC 3261 §12.1.1, RFC 5630 §4.1: no
/// `transport=tls` with `sips:`).
pub(super) fn contact(addr: SocketAddr, transport: Transport, secure: bool) -> String {
    match transport {
        Transport::Tls if secure => format!("<sips:holdless@{addr}>"),
        Transport::Udp => format!("<sip:holdless@{addr}>"),
        Transport::Tcp => format!("<sip:holdless@{addr};transport=tcp>"),
        Transport::Tls => format!("<sip:holdless@{addr};transport=tls>"),
    }
}

/// Whether a request (its Request-URI) is addressed to a `sips:` URI.
pub(super) fn is_sips(req: &crate::sip::Message) -> bool {
    req.request_uri().is_some_and(|u| {
        u.trim_start()
            .get(..5)
            .is_some_and(|s| s.eq_ignore_ascii_case("sips:"))
    })
}

/// Our top Via for a new request.
pub(super) fn via(addr: SocketAddr, transport: Transport, branch: &str) -> String {
    format!(
        "SIP/2.0/{} {addr};branch={branch};rport",
        transport.as_str()
    )
}

/// The final response the caller gets when the callee failed with `code`.
pub(super) fn caller_failure(code: u16, reason: &str) -> (u16, String) {
    match code {
        300..=399 => (480, "Temporarily Unavailable".into()),
        401 | 407 | 423 | 481 | 491 => (480, "Temporarily Unavailable".into()),
        400..=499 | 600..=699 => (code, reason.to_owned()),
        503 | 504 => (code, reason.to_owned()),
        _ => (502, "Bad Gateway".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_map_to_caller_responses() {
        assert_eq!(caller_failure(486, "Busy Here"), (486, "Busy Here".into()));
        assert_eq!(
            caller_failure(302, "Moved"),
            (480, "Temporarily Unavailable".into())
        );
        assert_eq!(
            caller_failure(407, "Proxy Auth"),
            (480, "Temporarily Unavailable".into())
        );
        assert_eq!(caller_failure(500, "Oops"), (502, "Bad Gateway".into()));
        assert_eq!(caller_failure(603, "Decline"), (603, "Decline".into()));
    }

    #[test]
    fn pass_through_never_copies_routing_headers() {
        let cfg = CallSettings {
            pass_through: vec!["*".into()],
            ..CallSettings::default()
        };
        let mut from = Message::request(crate::sip::Method::Invite, "sip:a@h");
        from.push(Name::Via, "SIP/2.0/UDP h;branch=z9hG4bK1");
        from.push_other("X-User-To-User", "abc");
        from.push(Name::RecordRoute, "<sip:p;lr>");
        let mut to = Message::request(crate::sip::Method::Invite, "sip:b@h");
        copy_pass_through(&cfg, &from, &mut to);
        assert_eq!(to.headers.len(), 1);
        assert_eq!(to.get_other("x-user-to-user"), Some("abc"));
    }

    #[test]
    fn contacts_follow_the_transport_and_sips() {
        let a: SocketAddr = "127.0.0.1:5061".parse().unwrap();
        assert_eq!(
            contact(a, Transport::Tls, false),
            "<sip:holdless@127.0.0.1:5061;transport=tls>"
        );
        assert_eq!(
            contact(a, Transport::Tls, true),
            "<sips:holdless@127.0.0.1:5061>"
        );
        assert_eq!(
            contact(a, Transport::Tcp, false),
            "<sip:holdless@127.0.0.1:5061;transport=tcp>"
        );
        let sips =
            crate::sip::Message::request(crate::sip::Method::Invite, "SIPS:+1555@example.com");
        let sip = crate::sip::Message::request(crate::sip::Method::Invite, "sip:+1555@example.com");
        assert!(is_sips(&sips) && !is_sips(&sip));
    }
}
