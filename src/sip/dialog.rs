//! RFC 3261 §12 dialogs, UAC and UAS side: Call-ID and tags, local and remote CSeq, the
//! route set from Record-Route, the remote target from Contact, early and confirmed
//! states, and the in-dialog requests built from them.

use super::message::{Message, Name};
use super::method::Method;
use super::name_addr;
use super::validate::cseq;
use super::via::split_list;

/// Dialog state (§12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a provisional response with a To tag.
    Early,
    /// Created or confirmed by a 2xx.
    Confirmed,
}

/// Why a dialog could not be made or a request does not fit it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialogError {
    /// A header a dialog needs is missing.
    #[error("missing {0} header")]
    Missing(&'static str),
    /// The response has no To tag.
    #[error("response without a To tag")]
    NoRemoteTag,
    /// An in-dialog request's CSeq is lower than one already seen (§12.2.2: 500).
    #[error("CSeq {got} is lower than {last} already seen in this dialog")]
    CSeqOutOfOrder {
        /// The CSeq that arrived.
        got: u32,
        /// The highest seen.
        last: u32,
    },
}

/// One side's view of a SIP dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
    /// Our party (From when we send), without tag.
    pub local_party: String,
    /// The peer's party (To when we send), without tag.
    pub remote_party: String,
    /// The CSeq of the last request we sent.
    pub local_cseq: u32,
    /// The highest CSeq the peer sent, once it sent one.
    pub remote_cseq: Option<u32>,
    /// Route set: name-addr values, in the order our requests list them.
    pub route_set: Vec<String>,
    /// Where in-dialog requests go (the peer's Contact URI).
    pub remote_target: String,
    /// Our Contact value.
    pub local_contact: String,
    /// Early or confirmed.
    pub state: DialogState,
}

fn header<'a>(m: &'a Message, name: Name, what: &'static str) -> Result<&'a str, DialogError> {
    m.get(name).ok_or(DialogError::Missing(what))
}

/// Every Record-Route value in order, split on commas.
fn record_route(m: &Message) -> Vec<String> {
    m.get_all(Name::RecordRoute)
        .flat_map(split_list)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

fn contact_uri(m: &Message) -> Option<String> {
    let c = m.get(Name::Contact)?;
    let first = split_list(c).into_iter().next()?;
    Some(name_addr::uri(first).to_owned())
}

impl Dialog {
    /// The UAS side, from a dialog-creating request we answer with `local_tag` (§12.1.1).
    pub fn as_uas(
        req: &Message,
        local_tag: &str,
        local_contact: &str,
    ) -> Result<Dialog, DialogError> {
        let from = header(req, Name::From, "From")?;
        let to = header(req, Name::To, "To")?;
        let (remote_cseq, _) = cseq(req).map_err(|_| DialogError::Missing("CSeq"))?;
        Ok(Dialog {
            call_id: header(req, Name::CallId, "Call-ID")?.to_owned(),
            local_tag: local_tag.to_owned(),
            remote_tag: name_addr::tag(from).unwrap_or_default().to_owned(),
            local_party: name_addr::without_tag(to),
            remote_party: name_addr::without_tag(from),
            local_cseq: 0,
            remote_cseq: Some(remote_cseq),
            route_set: record_route(req),
            remote_target: contact_uri(req).ok_or(DialogError::Missing("Contact"))?,
            local_contact: local_contact.to_owned(),
            state: DialogState::Confirmed,
        })
    }

    /// The UAC side, from our request and a response with a To tag (§12.1.2): early for
    /// 1xx, confirmed for 2xx.
    pub fn as_uac(req: &Message, resp: &Message) -> Result<Dialog, DialogError> {
        let from = header(req, Name::From, "From")?;
        let to = header(resp, Name::To, "To")?;
        let (local_cseq, _) = cseq(req).map_err(|_| DialogError::Missing("CSeq"))?;
        let mut route_set = record_route(resp);
        route_set.reverse();
        let state = if resp.status().unwrap_or(0) < 200 {
            DialogState::Early
        } else {
            DialogState::Confirmed
        };
        Ok(Dialog {
            call_id: header(req, Name::CallId, "Call-ID")?.to_owned(),
            local_tag: name_addr::tag(from).unwrap_or_default().to_owned(),
            remote_tag: name_addr::tag(to)
                .ok_or(DialogError::NoRemoteTag)?
                .to_owned(),
            local_party: name_addr::without_tag(from),
            remote_party: name_addr::without_tag(to),
            local_cseq,
            remote_cseq: None,
            route_set,
            remote_target: contact_uri(resp)
                .unwrap_or_else(|| req.request_uri().unwrap_or_default().to_owned()),
            local_contact: header(req, Name::Contact, "Contact")?.to_owned(),
            state,
        })
    }

    /// A 2xx confirms an early UAC dialog: its Record-Route and Contact win (§12.1.2, §13.2.2.4).
    pub fn confirm(&mut self, resp: &Message) {
        let mut rr = record_route(resp);
        rr.reverse();
        self.route_set = rr;
        self.refresh_target(resp);
        self.state = DialogState::Confirmed;
    }

    /// A target refresh (re-INVITE, UPDATE, or their 2xx) moves the remote target (§12.2).
    pub fn refresh_target(&mut self, m: &Message) {
        if let Some(uri) = contact_uri(m) {
            self.remote_target = uri;
        }
    }

    /// Checks and records the CSeq of an in-dialog request from the peer (§12.2.2).
    pub fn accept_remote_cseq(&mut self, req: &Message) -> Result<(), DialogError> {
        let (got, method) = cseq(req).map_err(|_| DialogError::Missing("CSeq"))?;
        if method == "ACK" || method == "CANCEL" {
            return Ok(());
        }
        match self.remote_cseq {
            Some(last) if got <= last => Err(DialogError::CSeqOutOfOrder { got, last }),
            _ => {
                self.remote_cseq = Some(got);
                Ok(())
            }
        }
    }

    /// Whether a message belongs to this dialog (Call-ID and both tags, from our view).
    pub fn matches(&self, m: &Message, incoming_request: bool) -> bool {
        let (ours, theirs) = if incoming_request {
            (Name::To, Name::From)
        } else {
            (Name::From, Name::To)
        };
        m.call_id() == Some(self.call_id.as_str())
            && m.get(ours).and_then(name_addr::tag) == Some(self.local_tag.as_str())
            && m.get(theirs).and_then(name_addr::tag).unwrap_or_default() == self.remote_tag
    }

    /// The URI the next in-dialog request is sent towards: the first loose route, else the
    /// remote target (a strict first route is the Request-URI itself, §12.2.1.1).
    pub fn next_hop(&self) -> String {
        match self.route_set.first() {
            Some(r) => name_addr::uri(r).to_owned(),
            None => self.remote_target.clone(),
        }
    }

    /// Builds an in-dialog request (§12.2.1.1). ACK and CANCEL reuse `cseq`; any other
    /// method takes the next local CSeq. The caller adds the top Via.
    pub fn request(&mut self, method: Method, ack_cseq: Option<u32>) -> Message {
        let cseq = match (method.clone(), ack_cseq) {
            (Method::Ack | Method::Cancel, Some(n)) => n,
            _ => {
                self.local_cseq = self.local_cseq.wrapping_add(1).max(1);
                self.local_cseq
            }
        };
        let strict = self
            .route_set
            .first()
            .is_some_and(|r| !name_addr::uri(r).contains(";lr"));
        let (ruri, routes): (String, Vec<String>) = if strict {
            let mut rest: Vec<String> = self.route_set[1..].to_vec();
            rest.push(format!("<{}>", self.remote_target));
            (name_addr::uri(&self.route_set[0]).to_owned(), rest)
        } else {
            (self.remote_target.clone(), self.route_set.clone())
        };
        let mut m = Message::request(method.clone(), ruri);
        for r in routes {
            m.push(Name::Route, r);
        }
        m.push(Name::MaxForwards, "70");
        m.push(
            Name::From,
            name_addr::with_tag(&self.local_party, &self.local_tag),
        );
        let to = if self.remote_tag.is_empty() {
            self.remote_party.clone()
        } else {
            name_addr::with_tag(&self.remote_party, &self.remote_tag)
        };
        m.push(Name::To, to);
        m.push(Name::CallId, self.call_id.clone());
        m.push(Name::CSeq, format!("{cseq} {}", method.as_str()));
        if method != Method::Ack && method != Method::Cancel {
            m.push(Name::Contact, self.local_contact.clone());
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite() -> Message {
        let mut m = Message::request(Method::Invite, "sip:+15550001000@127.0.0.1");
        m.push(Name::RecordRoute, "<sip:127.0.0.54;lr>");
        m.push(
            Name::RecordRoute,
            "<sip:127.0.0.55;lr>, <sip:127.0.0.56;lr>",
        );
        m.push(Name::Via, "SIP/2.0/UDP 127.0.0.54;branch=z9hG4bK1");
        m.push(Name::From, "\"Caller\" <sip:+15557654321@twilio>;tag=abc");
        m.push(Name::To, "<sip:+15550001000@127.0.0.1>");
        m.push(Name::CallId, "c1");
        m.push(Name::CSeq, "101 INVITE");
        m.push(
            Name::Contact,
            "<sip:+15557654321@127.0.0.25:5060;transport=udp>",
        );
        m
    }

    #[test]
    fn uas_dialog_routes_in_dialog_requests_through_record_route() {
        let mut d = Dialog::as_uas(&invite(), "ours", "<sip:holdless@127.0.0.1:5060>").unwrap();
        let bye = d.request(Method::Bye, None);
        assert_eq!(
            bye.request_uri(),
            Some("sip:+15557654321@127.0.0.25:5060;transport=udp")
        );
        let routes: Vec<_> = bye.get_all(Name::Route).collect();
        assert_eq!(
            routes,
            vec![
                "<sip:127.0.0.54;lr>",
                "<sip:127.0.0.55;lr>",
                "<sip:127.0.0.56;lr>"
            ]
        );
        assert_eq!(d.next_hop(), "sip:127.0.0.54;lr");
        assert_eq!(
            bye.get(Name::From),
            Some("<sip:+15550001000@127.0.0.1>;tag=ours")
        );
        assert_eq!(
            bye.get(Name::To),
            Some("\"Caller\" <sip:+15557654321@twilio>;tag=abc")
        );
        assert_eq!(bye.get(Name::CSeq), Some("1 BYE"));
        assert!(d.matches(&bye, false));
    }

    #[test]
    fn uac_dialog_reverses_record_route_and_confirms() {
        let mut req = Message::request(Method::Invite, "sip:+15550009999@127.0.0.1:5090");
        req.push(Name::From, "<sip:+15557654321@127.0.0.1>;tag=me");
        req.push(Name::To, "<sip:+15550009999@127.0.0.1:5090>");
        req.push(Name::CallId, "out1");
        req.push(Name::CSeq, "1 INVITE");
        req.push(Name::Contact, "<sip:holdless@127.0.0.1:5060>");
        let mut ringing = Message::response(180, "Ringing");
        ringing.push(Name::To, "<sip:+15550009999@127.0.0.1:5090>;tag=them");
        ringing.push(Name::RecordRoute, "<sip:p2;lr>, <sip:p1;lr>");
        let mut d = Dialog::as_uac(&req, &ringing).unwrap();
        assert_eq!(d.state, DialogState::Early);
        assert_eq!(d.route_set, vec!["<sip:p1;lr>", "<sip:p2;lr>"]);
        let mut ok = ringing.clone();
        ok.start = crate::sip::StartLine::Response {
            code: 200,
            reason: "OK".into(),
        };
        ok.remove(Name::RecordRoute);
        ok.push(Name::Contact, "<sip:uas@127.0.0.1:5090>");
        d.confirm(&ok);
        assert_eq!(d.state, DialogState::Confirmed);
        assert!(d.route_set.is_empty());
        let ack = d.request(Method::Ack, Some(1));
        assert_eq!(ack.request_uri(), Some("sip:uas@127.0.0.1:5090"));
        assert_eq!(ack.get(Name::CSeq), Some("1 ACK"));
        assert_eq!(d.request(Method::Bye, None).get(Name::CSeq), Some("2 BYE"));
    }

    #[test]
    fn strict_route_becomes_the_request_uri() {
        let mut inv = invite();
        inv.remove(Name::RecordRoute);
        inv.push(Name::RecordRoute, "<sip:strict.example>");
        let mut d = Dialog::as_uas(&inv, "t", "<sip:h>").unwrap();
        let bye = d.request(Method::Bye, None);
        assert_eq!(bye.request_uri(), Some("sip:strict.example"));
        assert_eq!(
            bye.get(Name::Route),
            Some("<sip:+15557654321@127.0.0.25:5060;transport=udp>")
        );
    }

    #[test]
    fn remote_cseq_must_increase() {
        let mut d = Dialog::as_uas(&invite(), "t", "<sip:h>").unwrap();
        let mut bye = invite();
        bye.set(Name::CSeq, "100 BYE");
        assert!(matches!(
            d.accept_remote_cseq(&bye),
            Err(DialogError::CSeqOutOfOrder { .. })
        ));
        bye.set(Name::CSeq, "102 BYE");
        assert!(d.accept_remote_cseq(&bye).is_ok());
    }
}
