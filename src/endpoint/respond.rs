//! Building the responses the endpoint sends on its own: OPTIONS answers, rejections and
//! plain status responses, each with a To tag and a Server header.

use crate::sip::transaction::response::response_for;
use crate::sip::validate::{Rejection, ALLOWED_METHODS, SUPPORTED_OPTIONS};
use crate::sip::{Message, Name};

/// What holdless accepts as a session description.
pub const ACCEPT: &str = "application/sdp";

/// Makes responses for requests; owns the tag generator.
pub struct Responder {
    server: String,
    rng: fastrand::Rng,
}

impl Responder {
    /// A responder writing `server` in the Server header, tags from `seed`.
    pub fn new(server: String, seed: u64) -> Self {
        Responder {
            server,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    fn tag(&mut self) -> String {
        format!("{:016x}", self.rng.u64(..))
    }

    /// A response with a fresh To tag (unless the request already had one) and Server.
    pub fn reply(&mut self, req: &Message, code: u16, reason: &str) -> Message {
        let tag = self.tag();
        let mut resp = response_for(req, code, reason, Some(&tag));
        resp.push(Name::Server, self.server.clone());
        resp
    }

    /// The 200 to OPTIONS: what holdless can do.
    pub fn options(&mut self, req: &Message) -> Message {
        let mut resp = self.reply(req, 200, "OK");
        resp.push(Name::Allow, ALLOWED_METHODS);
        resp.push(Name::Accept, ACCEPT);
        resp.push(Name::Supported, SUPPORTED_OPTIONS.join(", "));
        resp
    }

    /// The response for a rejection, with its extra headers.
    pub fn rejection(&mut self, req: &Message, r: &Rejection) -> Message {
        let mut resp = self.reply(req, r.code, &r.reason);
        for (name, value) in &r.headers {
            resp.push(*name, value.clone());
        }
        resp
    }
}

/// RFC 3261 §21.4.7 and §21.4.13: an INVITE body holdless cannot read gets 415 with
/// Accept; an Accept that rules out SDP answers gets 406.
pub fn invite_body_problem(req: &Message) -> Option<Rejection> {
    if !req.body.is_empty() {
        let ct = req.get(Name::ContentType).unwrap_or("application/sdp");
        let mime = ct.split(';').next().unwrap_or_default().trim();
        if !mime.eq_ignore_ascii_case(ACCEPT) {
            return Some(Rejection {
                code: 415,
                reason: "Unsupported Media Type".into(),
                headers: vec![(Name::Accept, ACCEPT.into())],
            });
        }
    }
    let accept: Vec<&str> = req
        .get_all(Name::Accept)
        .flat_map(|v| v.split(','))
        .collect();
    let sdp_ok = accept.is_empty()
        || accept.iter().any(|a| {
            let m = a
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            m == ACCEPT || m == "application/*" || m == "*/*" || m.is_empty()
        });
    if !sdp_ok {
        return Some(Rejection {
            code: 406,
            reason: "Not Acceptable".into(),
            headers: vec![(
                Name::Warning,
                "399 holdless \"only application/sdp is offered\"".into(),
            )],
        });
    }
    None
}
