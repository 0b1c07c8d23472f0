//! The SIP message as holdless keeps it: a start line, an ordered list of raw headers and
//! a body. Headers stay transparent (kept as received, in order); typed views are parsed on
//! demand by the functions in [`crate::sip::header`].

use bytes::Bytes;
use std::fmt::Write as _;

use super::method::Method;

/// The first line of a SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `METHOD SP Request-URI SP SIP/2.0`.
    Request {
        /// The request method.
        method: Method,
        /// The Request-URI, as received.
        uri: String,
    },
    /// `SIP/2.0 SP Status-Code SP Reason-Phrase`.
    Response {
        /// The status code (100..=699).
        code: u16,
        /// The reason phrase, free text.
        reason: String,
    },
}

/// Well-known header names, with their RFC 3261 §7.3.3 compact forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Name {
    Via,
    From,
    To,
    CallId,
    CSeq,
    MaxForwards,
    ContentLength,
    ContentType,
    Contact,
    Route,
    RecordRoute,
    Require,
    ProxyRequire,
    Supported,
    Unsupported,
    Accept,
    Allow,
    Server,
    UserAgent,
    RetryAfter,
    Warning,
}

impl Name {
    /// The canonical full name, as holdless writes it.
    pub const fn full(self) -> &'static str {
        match self {
            Name::Via => "Via",
            Name::From => "From",
            Name::To => "To",
            Name::CallId => "Call-ID",
            Name::CSeq => "CSeq",
            Name::MaxForwards => "Max-Forwards",
            Name::ContentLength => "Content-Length",
            Name::ContentType => "Content-Type",
            Name::Contact => "Contact",
            Name::Route => "Route",
            Name::RecordRoute => "Record-Route",
            Name::Require => "Require",
            Name::ProxyRequire => "Proxy-Require",
            Name::Supported => "Supported",
            Name::Unsupported => "Unsupported",
            Name::Accept => "Accept",
            Name::Allow => "Allow",
            Name::Server => "Server",
            Name::UserAgent => "User-Agent",
            Name::RetryAfter => "Retry-After",
            Name::Warning => "Warning",
        }
    }

    /// The compact form, where RFC 3261 or an extension defines one.
    pub const fn compact(self) -> Option<&'static str> {
        match self {
            Name::Via => Some("v"),
            Name::From => Some("f"),
            Name::To => Some("t"),
            Name::CallId => Some("i"),
            Name::ContentLength => Some("l"),
            Name::ContentType => Some("c"),
            Name::Contact => Some("m"),
            Name::Supported => Some("k"),
            _ => None,
        }
    }

    /// Whether a header name as written on the wire (any case, full or compact) is this one.
    pub fn matches(self, raw: &str) -> bool {
        raw.eq_ignore_ascii_case(self.full())
            || self.compact().is_some_and(|c| raw.eq_ignore_ascii_case(c))
    }
}

/// One header line, name and value exactly as received (folding removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The header name as written on the wire.
    pub name: String,
    /// The value, with surrounding whitespace trimmed and folded lines joined by one space.
    pub value: String,
}

/// A parsed SIP message: start line, ordered raw headers, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Request line or status line.
    pub start: StartLine,
    /// Every header in arrival order; unknown ones included.
    pub headers: Vec<Header>,
    /// The body, exactly Content-Length bytes.
    pub body: Bytes,
}

impl Message {
    /// A request with no headers and no body.
    pub fn request(method: Method, uri: impl Into<String>) -> Self {
        Message {
            start: StartLine::Request {
                method,
                uri: uri.into(),
            },
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// A response with no headers and no body.
    pub fn response(code: u16, reason: impl Into<String>) -> Self {
        Message {
            start: StartLine::Response {
                code,
                reason: reason.into(),
            },
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The request method, for a request.
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code, for a response.
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    /// The Request-URI, for a request.
    pub fn request_uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The first value of a header.
    pub fn get(&self, name: Name) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| name.matches(&h.name))
            .map(|h| h.value.as_str())
    }

    /// Every header line of that name, in order.
    pub fn get_all(&self, name: Name) -> impl Iterator<Item = &str> + '_ {
        self.headers
            .iter()
            .filter(move |h| name.matches(&h.name))
            .map(|h| h.value.as_str())
    }

    /// The first value of a header not in [`Name`], by case-insensitive name.
    pub fn get_other(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// How many header lines carry that name.
    pub fn count(&self, name: Name) -> usize {
        self.headers
            .iter()
            .filter(|h| name.matches(&h.name))
            .count()
    }

    /// Appends a header line.
    pub fn push(&mut self, name: Name, value: impl Into<String>) {
        self.headers.push(Header {
            name: name.full().to_owned(),
            value: value.into(),
        });
    }

    /// Appends a header line with a name outside [`Name`].
    pub fn push_other(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.headers.push(Header {
            name: name.into(),
            value: value.into(),
        });
    }

    /// Replaces the first header of that name (or appends one).
    pub fn set(&mut self, name: Name, value: impl Into<String>) {
        match self.headers.iter_mut().find(|h| name.matches(&h.name)) {
            Some(h) => h.value = value.into(),
            None => self.push(name, value),
        }
    }

    /// Removes every header of that name.
    pub fn remove(&mut self, name: Name) {
        self.headers.retain(|h| !name.matches(&h.name));
    }

    /// The Call-ID, if present.
    pub fn call_id(&self) -> Option<&str> {
        self.get(Name::CallId)
    }

    /// Serialises the message, writing Content-Length from the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = String::with_capacity(256 + self.headers.len() * 48);
        match &self.start {
            StartLine::Request { method, uri } => {
                let _ = write!(s, "{} {} SIP/2.0\r\n", method.as_str(), uri);
            }
            StartLine::Response { code, reason } => {
                let _ = write!(s, "SIP/2.0 {code} {reason}\r\n");
            }
        }
        for h in &self.headers {
            if Name::ContentLength.matches(&h.name) {
                continue;
            }
            let _ = write!(s, "{}: {}\r\n", h.name, h.value);
        }
        let _ = write!(s, "Content-Length: {}\r\n\r\n", self.body.len());
        let mut out = s.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_full_names_match_case_insensitively() {
        assert!(Name::Via.matches("v"));
        assert!(Name::Via.matches("VIA"));
        assert!(Name::CallId.matches("i"));
        assert!(!Name::CallId.matches("Call-Info"));
    }

    #[test]
    fn serialises_with_content_length_from_body() {
        let mut m = Message::response(200, "OK");
        m.push(Name::CallId, "abc");
        m.push(Name::ContentLength, "999");
        m.body = Bytes::from_static(b"hi");
        let out = String::from_utf8(m.to_bytes()).unwrap();
        assert_eq!(
            out,
            "SIP/2.0 200 OK\r\nCall-ID: abc\r\nContent-Length: 2\r\n\r\nhi"
        );
    }
}
