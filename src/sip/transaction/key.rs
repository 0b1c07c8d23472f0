//! Transaction matching keys (RFC 3261 §17.1.3 and §17.2.3) and the few header views they need.
//! Building a key never fails: a missing part becomes an empty string, so a malformed message
//! can only fail to match, never panic.

use crate::sip::message::{Message, Name};
use crate::sip::method::Method;
use crate::sip::via;

/// The key of a server transaction (§17.2.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum ServerKey {
    /// The top Via carries an RFC 3261 branch: branch, sent-by and method decide.
    Rfc3261 {
        /// The branch, compared exactly.
        branch: String,
        /// `host[:port]` of the top Via, host lower-cased.
        sent_by: String,
        /// The request method, ACK counted as INVITE.
        method: Method,
    },
    /// An RFC 2543 request: the dialog and request identifiers decide. The To tag is checked
    /// apart (see [`ServerKey::to_tag_rule`]) because an ACK carries the tag of our response.
    Rfc2543 {
        /// The Request-URI as written.
        uri: String,
        /// The From tag, empty if none.
        from_tag: String,
        /// The Call-ID.
        call_id: String,
        /// The CSeq sequence number as written.
        cseq: String,
        /// Top Via sent-by and branch (if any).
        via: String,
        /// The request method, ACK counted as INVITE.
        method: Method,
    },
}

impl ServerKey {
    /// The key a request matches on; `method` is the method of the transaction looked for
    /// (INVITE for an ACK, or for a CANCEL looking for the request it cancels).
    pub(super) fn of(req: &Message, method: Method) -> ServerKey {
        let top = via::top(req).ok();
        if let Some(v) = top.as_ref().filter(|v| v.is_rfc3261()) {
            return ServerKey::Rfc3261 {
                branch: v.branch().unwrap_or_default().to_owned(),
                sent_by: sent_by_key(v),
                method,
            };
        }
        let via = match &top {
            Some(v) => format!("{};{}", sent_by_key(v), v.branch().unwrap_or_default()),
            None => req.get(Name::Via).unwrap_or_default().to_owned(),
        };
        ServerKey::Rfc2543 {
            uri: req.request_uri().unwrap_or_default().trim().to_owned(),
            from_tag: req
                .get(Name::From)
                .and_then(tag)
                .unwrap_or_default()
                .to_owned(),
            call_id: req.call_id().unwrap_or_default().trim().to_owned(),
            cseq: cseq(req).map(|(n, _)| n).unwrap_or_default().to_owned(),
            via,
            method,
        }
    }

    /// The same key for another method (a CANCEL looking for its INVITE).
    pub(super) fn with_method(&self, m: Method) -> ServerKey {
        let mut key = self.clone();
        match &mut key {
            ServerKey::Rfc3261 { method, .. } | ServerKey::Rfc2543 { method, .. } => *method = m,
        }
        key
    }

    /// Whether the To tag must be checked too: only RFC 2543 keys leave it out.
    pub(super) fn to_tag_rule(&self) -> bool {
        matches!(self, ServerKey::Rfc2543 { .. })
    }
}

fn sent_by_key(v: &via::Via) -> String {
    v.sent_by().to_ascii_lowercase()
}

/// The key of a client transaction (§17.1.3): top Via branch and CSeq method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct ClientKey {
    /// The branch of the top Via, which the layer's own Via carries.
    pub(super) branch: String,
    /// The CSeq method: a CANCEL has its own transaction with the INVITE's branch.
    pub(super) method: Method,
}

impl ClientKey {
    /// The key a response matches on, if it has a top Via branch and a CSeq method.
    pub(super) fn of_response(resp: &Message) -> Option<ClientKey> {
        let top = via::top(resp).ok()?;
        let method = Method::parse(cseq(resp)?.1)?;
        Some(ClientKey {
            branch: top.branch()?.to_owned(),
            method,
        })
    }
}

/// The tag parameter of a From or To value (`"A" <sip:a@h;tag=uri-param>;tag=this`).
pub fn tag(value: &str) -> Option<&str> {
    header_params(value)
        .split(';')
        .filter_map(|p| p.split_once('='))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("tag"))
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The header parameters of a name-addr / addr-spec value: what follows `>`, or the first `;`
/// outside quotes when there are no angle brackets.
fn header_params(value: &str) -> &str {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => {
                let rest = &value[i..];
                return rest.find('>').map_or("", |j| &rest[j + 1..]);
            }
            ';' if !quoted => return &value[i..],
            _ => {}
        }
    }
    ""
}

/// The CSeq sequence number and method tokens, if the header has both.
pub(super) fn cseq(msg: &Message) -> Option<(&str, &str)> {
    let mut parts = msg.get(Name::CSeq)?.split_ascii_whitespace();
    let number = parts.next()?;
    let method = parts.next()?;
    number
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then_some((number, method))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_is_a_header_param_not_a_uri_param() {
        assert_eq!(tag("<sip:a@h;tag=no>;tag=yes"), Some("yes"));
        assert_eq!(tag("\"x;tag=no <\" <sip:a@h>;TAG = yes ;x"), Some("yes"));
        assert_eq!(tag("sip:a@h;tag=bare"), Some("bare"));
        assert_eq!(tag("<sip:a@h;tag=no>"), None);
        assert_eq!(tag("<sip:a@h>;tag="), None);
        assert_eq!(tag("<sip:a@h"), None);
    }

    #[test]
    fn cseq_needs_number_and_method() {
        let mut m = Message::response(200, "OK");
        m.push(Name::CSeq, " 12  INVITE ");
        assert_eq!(cseq(&m), Some(("12", "INVITE")));
        m.set(Name::CSeq, "12");
        assert_eq!(cseq(&m), None);
        m.set(Name::CSeq, "x INVITE");
        assert_eq!(cseq(&m), None);
    }

    #[test]
    fn rfc3261_key_ignores_everything_but_branch_sent_by_and_method() {
        let mut a = Message::request(Method::Invite, "sip:b@h");
        a.push(
            Name::Via,
            "SIP/2.0/UDP Host.example:5060;branch=z9hG4bKx;rport",
        );
        a.push(Name::CallId, "one");
        let mut b = Message::request(Method::Ack, "sip:other@h");
        b.push(Name::Via, "SIP/2.0/UDP host.example:5060;branch=z9hG4bKx");
        b.push(Name::CallId, "two");
        assert_eq!(
            ServerKey::of(&a, Method::Invite),
            ServerKey::of(&b, Method::Invite)
        );
        assert!(!ServerKey::of(&a, Method::Invite).to_tag_rule());
        b.set(Name::Via, "SIP/2.0/UDP host.example:5060;branch=z9hG4bKX");
        assert_ne!(
            ServerKey::of(&a, Method::Invite),
            ServerKey::of(&b, Method::Invite)
        );
    }

    #[test]
    fn keys_of_malformed_messages_do_not_panic() {
        let m = Message::request(Method::Options, "sip:x");
        assert!(ServerKey::of(&m, Method::Options).to_tag_rule());
        assert_eq!(ClientKey::of_response(&Message::response(200, "OK")), None);
    }
}
