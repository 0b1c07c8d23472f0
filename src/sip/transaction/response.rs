//! Building a response from the request it answers (RFC 3261 §8.2.6).

use crate::sip::message::{Message, Name};
use crate::sip::Method;

use super::key::tag;

/// A response to `req` carrying what §8.2.6.2 says it must copy: every Via line in order,
/// From, To, Call-ID and CSeq (plus Timestamp in a `100 Trying`, §8.2.6.1).
///
/// `to_tag` is added to To unless the request's To already has a tag (an in-dialog request).
/// A response that establishes a dialog (101–299 to an out-of-dialog INVITE) also copies
/// every Record-Route value in order (§12.1.1), so the caller learns the route set the
/// proxies asked for. Content-Length is written by [`Message::to_bytes`].
pub fn response_for(req: &Message, code: u16, reason: &str, to_tag: Option<&str>) -> Message {
    let mut resp = Message::response(code, reason);
    for v in req.get_all(Name::Via) {
        resp.push(Name::Via, v);
    }
    if let Some(from) = req.get(Name::From) {
        resp.push(Name::From, from);
    }
    if let Some(to) = req.get(Name::To) {
        resp.push(Name::To, with_tag(to, to_tag));
    }
    for name in [Name::CallId, Name::CSeq] {
        if let Some(value) = req.get(name) {
            resp.push(name, value);
        }
    }
    let establishes = (101..300).contains(&code)
        && req.method() == Some(&Method::Invite)
        && req.get(Name::To).and_then(tag).is_none();
    if establishes {
        for rr in req.get_all(Name::RecordRoute) {
            resp.push(Name::RecordRoute, rr);
        }
    }
    if code == 100 {
        if let Some(ts) = req.get_other("Timestamp") {
            resp.push_other("Timestamp", ts);
        }
    }
    resp
}

/// A To value with `;tag=` added, unless it has a tag already or there is none to add.
fn with_tag(to: &str, to_tag: Option<&str>) -> String {
    match to_tag {
        Some(t) if tag(to).is_none() => format!("{to};tag={t}"),
        _ => to.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::method::Method;

    fn request() -> Message {
        let mut m = Message::request(Method::Invite, "sip:bob@127.0.0.1");
        m.push(Name::Via, "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1");
        m.push_other(
            "v",
            "SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK0, SIP/2.0/UDP 127.0.0.3",
        );
        m.push(Name::From, "<sip:alice@127.0.0.1>;tag=a");
        m.push(Name::To, "<sip:bob@127.0.0.1>");
        m.push(Name::CallId, "c1");
        m.push(Name::CSeq, "7 INVITE");
        m.push_other("Timestamp", "54");
        m.push(Name::Contact, "<sip:alice@127.0.0.1:5070>");
        m
    }

    #[test]
    fn copies_vias_in_order_and_the_dialog_headers() {
        let r = response_for(&request(), 486, "Busy Here", Some("t1"));
        let text = String::from_utf8(r.to_bytes()).unwrap();
        assert_eq!(
            text,
            "SIP/2.0 486 Busy Here\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
             Via: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK0, SIP/2.0/UDP 127.0.0.3\r\n\
             From: <sip:alice@127.0.0.1>;tag=a\r\n\
             To: <sip:bob@127.0.0.1>;tag=t1\r\n\
             Call-ID: c1\r\n\
             CSeq: 7 INVITE\r\n\
             Content-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn keeps_an_existing_to_tag_and_copies_timestamp_into_100() {
        let mut req = request();
        req.set(Name::To, "<sip:bob@127.0.0.1>;tag=old");
        let r = response_for(&req, 100, "Trying", Some("new"));
        assert_eq!(r.get(Name::To), Some("<sip:bob@127.0.0.1>;tag=old"));
        assert_eq!(r.get_other("Timestamp"), Some("54"));
        let r = response_for(&req, 200, "OK", None);
        assert_eq!(r.get_other("Timestamp"), None);
    }

    #[test]
    fn dialog_establishing_responses_copy_record_route_in_order() {
        let mut req = request();
        req.push(Name::RecordRoute, "<sip:127.0.0.54;lr;r2=on>");
        req.push_other("record-route", "<sip:127.0.0.55;transport=tcp;lr;r2=on>");
        fn rr(r: &Message) -> Vec<String> {
            r.get_all(Name::RecordRoute).map(str::to_owned).collect()
        }
        let both = vec![
            "<sip:127.0.0.54;lr;r2=on>",
            "<sip:127.0.0.55;transport=tcp;lr;r2=on>",
        ];
        assert_eq!(rr(&response_for(&req, 180, "Ringing", Some("t"))), both);
        assert_eq!(rr(&response_for(&req, 200, "OK", Some("t"))), both);
        assert!(rr(&response_for(&req, 100, "Trying", None)).is_empty());
        assert!(rr(&response_for(&req, 486, "Busy Here", Some("t"))).is_empty());
        let mut reinvite = req.clone();
        reinvite.set(Name::To, "<sip:bob@127.0.0.1>;tag=old");
        assert!(rr(&response_for(&reinvite, 200, "OK", None)).is_empty());
        let mut options = req;
        options.start = crate::sip::StartLine::Request {
            method: Method::Options,
            uri: "sip:bob@127.0.0.1".into(),
        };
        assert!(rr(&response_for(&options, 200, "OK", Some("t"))).is_empty());
    }

    #[test]
    fn missing_headers_are_skipped() {
        let req = Message::request(Method::Options, "sip:x");
        let r = response_for(&req, 400, "Bad Request", Some("t"));
        assert!(r.headers.is_empty());
    }
}
