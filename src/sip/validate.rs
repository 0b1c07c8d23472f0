//! The checks a request passes before any transaction or call logic sees it. Each failure
//! says which response to give (400, 416, 420, 501, 505) and why, in a reason phrase.

use super::message::{Message, Name};
use super::method::{is_token_char, Method};
use super::parse::{Defect, Parsed};
use super::uri;
use super::via::{self, split_list, MAGIC_COOKIE};

/// The methods holdless implements; every other one gets 501 with this list in Allow.
pub const ALLOWED_METHODS: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO";

/// Option tags holdless supports (sent in Supported; anything else in Require gets 420).
pub const SUPPORTED_OPTIONS: &[&str] = &[];

/// How to refuse a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The status code.
    pub code: u16,
    /// The reason phrase: says what was wrong.
    pub reason: String,
    /// Extra headers the response needs (Allow for 501, Unsupported for 420...).
    pub headers: Vec<(Name, String)>,
}

impl Rejection {
    fn new(code: u16, reason: impl Into<String>) -> Self {
        Rejection {
            code,
            reason: reason.into(),
            headers: Vec::new(),
        }
    }

    fn bad(reason: impl Into<String>) -> Self {
        Self::new(400, reason)
    }
}

/// The outcome of checking a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Well-formed and for a method holdless implements.
    Accept,
    /// Answer with this response.
    Reject(Rejection),
    /// No usable Via: no response can be routed; drop and count.
    Drop(&'static str),
}

/// Checks a parsed request, in the order that gives the most useful answer.
pub fn check_request(parsed: &Parsed) -> Verdict {
    let msg = &parsed.msg;
    if msg.get(Name::Via).is_none() {
        return Verdict::Drop("request without Via");
    }
    match check(parsed) {
        Ok(()) => Verdict::Accept,
        Err(r) => Verdict::Reject(r),
    }
}

fn check(parsed: &Parsed) -> Result<(), Rejection> {
    let msg = &parsed.msg;
    if let Some(defect) = &parsed.defect {
        return Err(match defect {
            Defect::Version => Rejection::new(505, "Version Not Supported"),
            other => Rejection::bad(other.reason()),
        });
    }
    via::all(msg).map_err(|e| Rejection::bad(capitalise(&e.to_string())))?;
    for name in [Name::From, Name::To, Name::CallId, Name::CSeq] {
        match msg.count(name) {
            0 => return Err(Rejection::bad(format!("Missing {} header", name.full()))),
            1 => {}
            _ => return Err(Rejection::bad(format!("Multiple {} headers", name.full()))),
        }
    }
    for name in [Name::MaxForwards, Name::ContentType] {
        if msg.count(name) > 1 {
            return Err(Rejection::bad(format!("Multiple {} headers", name.full())));
        }
    }
    let (_, cseq_method) = cseq(msg).map_err(Rejection::bad)?;
    let method = msg
        .method()
        .cloned()
        .unwrap_or(Method::Other(String::new()));
    if !is_implemented(&method) {
        let mut r = Rejection::new(501, "Not Implemented");
        r.headers.push((Name::Allow, ALLOWED_METHODS.to_owned()));
        return Err(r);
    }
    if cseq_method != method.as_str() {
        return Err(Rejection::bad(
            "CSeq method does not match the request method",
        ));
    }
    max_forwards(msg).map_err(Rejection::bad)?;
    let top = via::top(msg).map_err(|e| Rejection::bad(capitalise(&e.to_string())))?;
    if top.branch() == Some(MAGIC_COOKIE) {
        return Err(Rejection::bad("Via branch is the bare magic cookie"));
    }
    for name in [Name::From, Name::To] {
        let value = msg.get(name).unwrap_or_default();
        name_addr(value)
            .map_err(|e| Rejection::bad(format!("Malformed {} header: {e}", name.full())))?;
    }
    check_request_uri(msg.request_uri().unwrap_or_default())?;
    if !matches!(method, Method::Ack | Method::Cancel) {
        check_require(msg)?;
    }
    Ok(())
}

fn is_implemented(m: &Method) -> bool {
    matches!(
        m,
        Method::Invite
            | Method::Ack
            | Method::Cancel
            | Method::Bye
            | Method::Options
            | Method::Update
            | Method::Info
    )
}

/// Reads CSeq as (sequence number, method token).
pub fn cseq(msg: &Message) -> Result<(u32, &str), &'static str> {
    let value = msg.get(Name::CSeq).ok_or("Missing CSeq header")?;
    let mut it = value.split_whitespace();
    let num = it.next().ok_or("Malformed CSeq header")?;
    let method = it.next().ok_or("Malformed CSeq header: no method")?;
    if it.next().is_some() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return Err("Malformed CSeq header");
    }
    if !method.bytes().all(is_token_char) {
        return Err("Malformed CSeq header: bad method");
    }
    let num = num.parse::<u32>().map_err(|_| "CSeq number out of range")?;
    Ok((num, method))
}

/// Reads Max-Forwards (absent is allowed for RFC 2543 peers).
pub fn max_forwards(msg: &Message) -> Result<Option<u8>, &'static str> {
    match msg.get(Name::MaxForwards) {
        None => Ok(None),
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => v
            .parse::<u8>()
            .map(Some)
            .map_err(|_| "Max-Forwards out of range"),
        Some(_) => Err("Malformed Max-Forwards header"),
    }
}

/// A structural check of a From/To value: balanced quotes, a clean `<addr-spec>`, a
/// display name of tokens or a quoted string, and a URI that parses.
pub fn name_addr(value: &str) -> Result<(), &'static str> {
    let mut quoted = false;
    let mut escaped = false;
    let mut open = None;
    let mut close = None;
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted && open.is_none() => open = Some(i),
            '>' if !quoted && open.is_some() && close.is_none() => close = Some(i),
            _ => {}
        }
    }
    if quoted {
        return Err("unterminated quoted string");
    }
    let addr = match (open, close) {
        (Some(o), Some(c)) => {
            let inner = &value[o + 1..c];
            if inner.starts_with([' ', '\t']) || inner.ends_with([' ', '\t']) {
                return Err("whitespace inside <>");
            }
            display_name(&value[..o])?;
            inner
        }
        (None, None) => value.split(';').next().unwrap_or_default().trim(),
        _ => return Err("unbalanced <>"),
    };
    uri::parse(addr).map(|_| ()).or_else(|e| match e {
        uri::UriError::UnsupportedScheme(_) => Ok(()),
        _ => Err("bad URI"),
    })
}

fn display_name(s: &str) -> Result<(), &'static str> {
    let s = s.trim();
    if s.is_empty() || (s.starts_with('"') && s.ends_with('"')) {
        return Ok(());
    }
    let ok = s
        .split_whitespace()
        .all(|t| t.bytes().all(|b| is_token_char(b) || b >= 0x80));
    if ok {
        Ok(())
    } else {
        Err("display name must be tokens or a quoted string")
    }
}

fn check_request_uri(value: &str) -> Result<(), Rejection> {
    match uri::parse(value) {
        Ok(u) if u.has_headers => Err(Rejection::bad("Request-URI carries escaped headers")),
        Ok(_) => Ok(()),
        Err(uri::UriError::UnsupportedScheme(_)) => {
            Err(Rejection::new(416, "Unsupported URI Scheme"))
        }
        Err(_) => Err(Rejection::bad("Malformed Request-URI")),
    }
}

fn check_require(msg: &Message) -> Result<(), Rejection> {
    let unsupported: Vec<&str> = msg
        .get_all(Name::Require)
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty() && !SUPPORTED_OPTIONS.iter().any(|s| s.eq_ignore_ascii_case(t)))
        .collect();
    if unsupported.is_empty() {
        return Ok(());
    }
    let mut r = Rejection::new(420, "Bad Extension");
    r.headers.push((Name::Unsupported, unsupported.join(", ")));
    Err(r)
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Splits a comma list (re-exported for header checks elsewhere).
pub fn list(value: &str) -> Vec<&str> {
    split_list(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::parse::{parse, Framing};

    const GOOD: &str = "OPTIONS sip:h@127.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.9:5070;branch=z9hG4bK1\r\n\
        Max-Forwards: 70\r\n\
        From: <sip:c@127.0.0.9>;tag=f1\r\n\
        To: <sip:h@127.0.0.1>\r\n\
        Call-ID: c1\r\n\
        CSeq: 1 OPTIONS\r\n\
        Content-Length: 0\r\n\r\n";

    /// The verdict for GOOD with `from` replaced by `to` (the replacement must apply).
    fn verdict(from: &str, to: &str) -> Verdict {
        assert!(GOOD.contains(from), "{from:?} is not in the request");
        let text = GOOD.replacen(from, to, 1);
        let parsed = parse(text.as_bytes(), Framing::Datagram).expect("still SIP");
        check_request(&parsed)
    }

    fn rejected(from: &str, to: &str) -> (u16, String) {
        match verdict(from, to) {
            Verdict::Reject(r) => (r.code, r.reason),
            other => panic!("{from:?} -> {to:?}: expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn a_well_formed_request_is_accepted() {
        assert_eq!(verdict("c1", "c1"), Verdict::Accept);
    }

    #[test]
    fn each_malformed_request_gets_400_saying_what_is_wrong() {
        let cases: &[(&str, &str, &str)] = &[
            ("Call-ID: c1\r\n", "", "Missing Call-ID header"),
            (
                "From: <sip:c@127.0.0.9>;tag=f1\r\n",
                "",
                "Missing From header",
            ),
            ("To: <sip:h@127.0.0.1>\r\n", "", "Missing To header"),
            ("CSeq: 1 OPTIONS\r\n", "", "Missing CSeq header"),
            (
                "Call-ID: c1\r\n",
                "Call-ID: c1\r\nCall-ID: c2\r\n",
                "Multiple Call-ID headers",
            ),
            (
                "Max-Forwards: 70\r\n",
                "Max-Forwards: 70\r\nMax-Forwards: 69\r\n",
                "Multiple Max-Forwards headers",
            ),
            (
                "CSeq: 1 OPTIONS",
                "CSeq: one OPTIONS",
                "Malformed CSeq header",
            ),
            (
                "CSeq: 1 OPTIONS",
                "CSeq: 1",
                "Malformed CSeq header: no method",
            ),
            (
                "CSeq: 1 OPTIONS",
                "CSeq: 1 OPT@ONS",
                "Malformed CSeq header: bad method",
            ),
            (
                "CSeq: 1 OPTIONS",
                "CSeq: 99999999999 OPTIONS",
                "CSeq number out of range",
            ),
            (
                "CSeq: 1 OPTIONS",
                "CSeq: 1 INVITE",
                "CSeq method does not match the request method",
            ),
            (
                "Max-Forwards: 70",
                "Max-Forwards: many",
                "Malformed Max-Forwards header",
            ),
            (
                "Max-Forwards: 70",
                "Max-Forwards: 300",
                "Max-Forwards out of range",
            ),
            (
                "branch=z9hG4bK1",
                "branch=z9hG4bK",
                "Via branch is the bare magic cookie",
            ),
            (
                "From: <sip:c@127.0.0.9>",
                "From: \"c <sip:c@127.0.0.9>",
                "Malformed From header: unterminated quoted string",
            ),
            (
                "To: <sip:h@127.0.0.1>",
                "To: < sip:h@127.0.0.1>",
                "Malformed To header: whitespace inside <>",
            ),
            (
                "To: <sip:h@127.0.0.1>",
                "To: <sip:h@127.0.0.1",
                "Malformed To header: unbalanced <>",
            ),
            (
                "sip:h@127.0.0.1 SIP",
                "sip:h@127.0.0.1?Route=x SIP",
                "Request-URI carries escaped headers",
            ),
            (
                "Content-Length: 0",
                "Content-Length: 20",
                "Content-Length larger than the message",
            ),
        ];
        let mut wrong = Vec::new();
        for (from, to, want) in cases {
            let (code, reason) = rejected(from, to);
            if (code, reason.as_str()) != (400, *want) {
                wrong.push(format!("{to:?}: want 400 {want:?}, got {code} {reason:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn other_refusals_carry_their_own_code_and_reason() {
        assert_eq!(
            rejected("sip:h@127.0.0.1 SIP", "tel:;phone-context=x SIP"),
            (400, "Malformed Request-URI".into())
        );
        assert_eq!(
            rejected("SIP/2.0\r\nVia", "SIP/3.0\r\nVia"),
            (505, "Version Not Supported".into())
        );
        assert_eq!(
            rejected("OPTIONS sip:h@127.0.0.1", "OPTIONS im:h@127.0.0.1"),
            (416, "Unsupported URI Scheme".into())
        );
        assert_eq!(
            rejected(
                "Content-Length: 0\r\n",
                "Require: 100rel\r\nContent-Length: 0\r\n"
            ),
            (420, "Bad Extension".into())
        );
        let Verdict::Reject(r) = verdict("OPTIONS sip:", "FROB sip:") else {
            panic!("FROB must be refused");
        };
        assert_eq!((r.code, r.reason.as_str()), (501, "Not Implemented"));
        assert_eq!(r.headers, vec![(Name::Allow, ALLOWED_METHODS.to_owned())]);
    }

    #[test]
    fn a_request_without_via_is_dropped() {
        let v = verdict("Via: SIP/2.0/UDP 127.0.0.9:5070;branch=z9hG4bK1\r\n", "");
        assert_eq!(v, Verdict::Drop("request without Via"));
    }
}
