//! Requests a client transaction derives from the one it sent: the ACK for a non-2xx final
//! response (RFC 3261 §17.1.1.3) and a CANCEL (§9.1).

use crate::sip::message::{Message, Name};
use crate::sip::method::Method;
use crate::sip::via::split_list;

use super::key::cseq;

/// The Max-Forwards of the requests the layer builds (RFC 3261 §8.1.1.6 recommends 70).
const MAX_FORWARDS: &str = "70";

/// The ACK for a 3xx-6xx response to `invite`: same Request-URI, Call-ID, From, CSeq number
/// and the single top Via of the INVITE, the To of the response, the INVITE's Route headers.
pub fn ack_for_non_2xx(invite: &Message, resp: &Message) -> Message {
    derived(
        invite,
        Method::Ack,
        resp.get(Name::To).or(invite.get(Name::To)),
    )
}

/// A CANCEL for `req` (§9.1): same Request-URI, Call-ID, From, To, CSeq number and single top
/// Via as the request (so it has the request's branch), and its Route headers.
pub fn cancel_for(req: &Message) -> Message {
    derived(req, Method::Cancel, req.get(Name::To))
}

fn derived(orig: &Message, method: Method, to: Option<&str>) -> Message {
    let mut m = Message::request(method.clone(), orig.request_uri().unwrap_or_default());
    if let Some(top) = orig
        .get(Name::Via)
        .and_then(|v| split_list(v).into_iter().next())
    {
        m.push(Name::Via, top);
    }
    m.push(Name::MaxForwards, MAX_FORWARDS);
    if let Some(from) = orig.get(Name::From) {
        m.push(Name::From, from);
    }
    if let Some(to) = to {
        m.push(Name::To, to);
    }
    if let Some(call_id) = orig.call_id() {
        m.push(Name::CallId, call_id);
    }
    if let Some((number, _)) = cseq(orig) {
        m.push(Name::CSeq, format!("{number} {method}"));
    }
    for route in orig.get_all(Name::Route) {
        m.push(Name::Route, route);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transaction::response::response_for;

    fn invite() -> Message {
        let mut m = Message::request(Method::Invite, "sip:bob@127.0.0.1:5080");
        m.push(
            Name::Via,
            "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKinv, SIP/2.0/UDP 127.0.0.9",
        );
        m.push(Name::Route, "<sip:127.0.0.2;lr>");
        m.push(Name::MaxForwards, "69");
        m.push(Name::From, "<sip:a@127.0.0.1>;tag=f");
        m.push(Name::To, "<sip:bob@127.0.0.1>");
        m.push(Name::CallId, "cid");
        m.push(Name::CSeq, "314 INVITE");
        m.push(Name::Route, "<sip:127.0.0.3;lr>");
        m.push(Name::ContentType, "application/sdp");
        m
    }

    #[test]
    fn ack_for_a_486_follows_17_1_1_3() {
        let resp = response_for(&invite(), 486, "Busy Here", Some("callee"));
        let ack = ack_for_non_2xx(&invite(), &resp);
        let text = String::from_utf8(ack.to_bytes()).unwrap();
        assert_eq!(
            text,
            "ACK sip:bob@127.0.0.1:5080 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKinv\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:a@127.0.0.1>;tag=f\r\n\
             To: <sip:bob@127.0.0.1>;tag=callee\r\n\
             Call-ID: cid\r\n\
             CSeq: 314 ACK\r\n\
             Route: <sip:127.0.0.2;lr>\r\n\
             Route: <sip:127.0.0.3;lr>\r\n\
             Content-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn cancel_keeps_the_request_to_and_branch() {
        let c = cancel_for(&invite());
        assert_eq!(c.method(), Some(&Method::Cancel));
        assert_eq!(c.get(Name::To), Some("<sip:bob@127.0.0.1>"));
        assert_eq!(c.get(Name::CSeq), Some("314 CANCEL"));
        assert_eq!(
            c.get(Name::Via),
            Some("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKinv")
        );
        assert!(c.body.is_empty());
    }
}
