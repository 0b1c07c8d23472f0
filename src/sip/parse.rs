//! Parsing one framed SIP message: start line, header lines (folding, compact names) and the
//! body cut by Content-Length. Never panics; whatever cannot be read is reported so the
//! endpoint can answer 400 or drop and count.

use bytes::Bytes;
use memchr::memmem;

use super::message::{Header, Message, Name, StartLine};
use super::method::{is_token_char, Method};

/// Largest message holdless accepts on any transport. 64 KiB is the largest UDP datagram
/// and far above any real SIP message (a big INVITE with SDP is 2–4 KiB).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The bytes are not a SIP message at all (drop and count).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a SIP message: {0}")]
pub struct NotSip(pub &'static str);

/// What is wrong with a message whose headers could still be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Defect {
    /// The Request-Line does not follow `Method SP Request-URI SP SIP-Version`.
    RequestLine(&'static str),
    /// The version is not SIP/2.0 (505 for requests).
    Version,
    /// Content-Length is missing where required, negative, not a number, duplicated with
    /// different values, or larger than the bytes that came.
    Framing(&'static str),
    /// A header line is not `name: value`.
    HeaderLine(&'static str),
}

impl Defect {
    /// The reason phrase holdless uses when it answers this defect.
    pub fn reason(&self) -> &'static str {
        match self {
            Defect::RequestLine(r) | Defect::Framing(r) | Defect::HeaderLine(r) => r,
            Defect::Version => "Version Not Supported",
        }
    }
}

/// A message read from the wire and, if something was wrong with it, the first defect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The message as far as it could be read.
    pub msg: Message,
    /// The first defect found; `None` for a well-formed message.
    pub defect: Option<Defect>,
}

/// Where the message came from: datagrams and streams frame the body differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// UDP: the datagram is the message; no Content-Length means the rest is the body.
    Datagram,
    /// TCP: the framer already cut exactly head + Content-Length bytes.
    Stream,
}

/// Parses one message from a datagram or from a frame cut by [`crate::sip::framer`].
pub fn parse(buf: &[u8], framing: Framing) -> Result<Parsed, NotSip> {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .ok_or(NotSip("empty"))?;
    let buf = &buf[start..];
    if buf.len() > MAX_MESSAGE_BYTES {
        return Err(NotSip("message larger than 64 KiB"));
    }
    let (head, body_at) = split_head(buf);
    let head = std::str::from_utf8(head).map_err(|_| NotSip("header bytes are not UTF-8"))?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first = lines.next().ok_or(NotSip("empty"))?;
    let (start_line, mut defect) = parse_start_line(first)?;
    let mut headers: Vec<Header> = Vec::with_capacity(16);
    for line in lines {
        if line.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            match headers.last_mut() {
                Some(h) => {
                    let more = line.trim();
                    // One space between the parts, none before a value that only
                    // starts on the continuation line (`Call-ID:` CRLF SP `abc`).
                    if !h.value.is_empty() && !more.is_empty() {
                        h.value.push(' ');
                    }
                    h.value.push_str(more);
                }
                None => {
                    defect = defect.or(Some(Defect::HeaderLine(
                        "continuation line before any header",
                    )))
                }
            }
            continue;
        }
        match split_header(line) {
            Some(h) => headers.push(h),
            None => defect = defect.or(Some(Defect::HeaderLine("malformed header line"))),
        }
    }
    let rest = &buf[body_at.min(buf.len())..];
    let (body, framing_defect) = cut_body(&headers, rest, framing);
    let msg = Message {
        start: start_line,
        headers,
        body,
    };
    Ok(Parsed {
        msg,
        defect: defect.or(framing_defect),
    })
}

/// Splits the head from the body: the head ends at the first empty line, or at the end of
/// the bytes when there is none (RFC 4475 `baddn`: end of datagram ends the headers).
fn split_head(buf: &[u8]) -> (&[u8], usize) {
    if let Some(i) = memmem::find(buf, b"\r\n\r\n") {
        return (&buf[..i], i + 4);
    }
    if let Some(i) = memmem::find(buf, b"\n\n") {
        return (&buf[..i], i + 2);
    }
    (buf, buf.len())
}

fn parse_start_line(line: &str) -> Result<(StartLine, Option<Defect>), NotSip> {
    if let Some(rest) = line.strip_prefix("SIP/") {
        return parse_status_line(rest).map(|s| (s, None));
    }
    let mut parts = line.split(' ');
    let token = parts.next().unwrap_or_default();
    let method = Method::parse(token).ok_or(NotSip("request line does not start with a method"))?;
    let trimmed = line.trim_end_matches([' ', '\t']);
    let version = trimmed.rsplit([' ', '\t']).next().unwrap_or_default();
    let Some(v) = version.strip_prefix("SIP/") else {
        return Err(NotSip("request line does not end with a SIP version"));
    };
    let middle = trimmed[token.len()..trimmed.len() - version.len()].trim();
    let uri = middle.to_owned();
    let mut defect = None;
    if v != "2.0" {
        defect = Some(Defect::Version);
    } else if line.split(' ').count() != 3 || uri.is_empty() {
        defect = Some(Defect::RequestLine(
            "Malformed Request-Line: extra whitespace",
        ));
    } else if uri.contains(['<', '>', '\t']) {
        defect = Some(Defect::RequestLine("Malformed Request-URI: angle brackets"));
    }
    Ok((StartLine::Request { method, uri }, defect))
}

fn parse_status_line(rest: &str) -> Result<StartLine, NotSip> {
    let (version, rest) = rest
        .split_once(' ')
        .ok_or(NotSip("status line without a code"))?;
    if version != "2.0" {
        return Err(NotSip("response version is not SIP/2.0"));
    }
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NotSip("status code is not three digits"));
    }
    let code: u16 = code
        .parse()
        .map_err(|_| NotSip("status code is not a number"))?;
    if !(100..=699).contains(&code) {
        return Err(NotSip("status code outside 100-699"));
    }
    Ok(StartLine::Response {
        code,
        reason: reason.to_owned(),
    })
}

fn split_header(line: &str) -> Option<Header> {
    let (name, value) = line.split_once(':')?;
    let name = name.trim_end_matches([' ', '\t']);
    if name.is_empty() || !name.bytes().all(is_token_char) {
        return None;
    }
    Some(Header {
        name: name.to_owned(),
        value: value.trim().to_owned(),
    })
}

/// Reads Content-Length from the headers: `Ok(None)` when absent, an error when every
/// value is not the same non-negative number.
pub fn content_length(headers: &[Header]) -> Result<Option<usize>, &'static str> {
    let mut found: Option<usize> = None;
    for h in headers
        .iter()
        .filter(|h| Name::ContentLength.matches(&h.name))
    {
        let v = h.value.trim();
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err("Content-Length is not a non-negative number");
        }
        let n = v
            .parse::<usize>()
            .map_err(|_| "Content-Length is too large")?;
        if found.is_some_and(|f| f != n) {
            return Err("conflicting Content-Length headers");
        }
        found = Some(n);
    }
    Ok(found)
}

fn cut_body(headers: &[Header], rest: &[u8], framing: Framing) -> (Bytes, Option<Defect>) {
    match content_length(headers) {
        Err(e) => (Bytes::new(), Some(Defect::Framing(e))),
        Ok(None) => match framing {
            Framing::Datagram => (Bytes::copy_from_slice(rest), None),
            Framing::Stream => (
                Bytes::new(),
                Some(Defect::Framing("Content-Length is required on TCP")),
            ),
        },
        Ok(Some(n)) if n > rest.len() => (
            Bytes::copy_from_slice(rest),
            Some(Defect::Framing("Content-Length larger than the message")),
        ),
        Ok(Some(n)) => (Bytes::copy_from_slice(&rest[..n]), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dgram(s: &str) -> Parsed {
        parse(s.as_bytes(), Framing::Datagram).unwrap()
    }

    const OPTIONS: &str = "OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK1\r\n\
        f: <sip:b@127.0.0.1>;tag=1\r\nt: <sip:a@127.0.0.1>\r\ni: x1\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n";

    #[test]
    fn reads_compact_headers() {
        let p = dgram(OPTIONS);
        assert_eq!(p.defect, None);
        assert_eq!(p.msg.call_id(), Some("x1"));
        assert_eq!(p.msg.get(Name::From), Some("<sip:b@127.0.0.1>;tag=1"));
        assert_eq!(p.msg.method(), Some(&Method::Options));
    }

    #[test]
    fn unfolds_continuation_lines() {
        let p = dgram("OPTIONS sip:a@b SIP/2.0\r\nSubject: one\r\n  two\r\n\tthree\r\n\r\n");
        assert_eq!(p.msg.get_other("subject"), Some("one two three"));
    }

    #[test]
    fn datagram_without_length_takes_the_rest() {
        let p = dgram("INVITE sip:a@b SIP/2.0\r\nCall-ID: 1\r\n\r\nv=0\r\n");
        assert_eq!(&p.msg.body[..], b"v=0\r\n");
    }

    #[test]
    fn trailing_bytes_after_content_length_are_ignored() {
        let p =
            dgram("OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 2\r\n\r\nhiINVITE sip:x SIP/2.0\r\n");
        assert_eq!(&p.msg.body[..], b"hi");
    }

    #[test]
    fn framing_defects() {
        let too_long = dgram("OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 99\r\n\r\nhi");
        assert!(matches!(too_long.defect, Some(Defect::Framing(_))));
        let neg = dgram("OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -9\r\n\r\n");
        assert!(matches!(neg.defect, Some(Defect::Framing(_))));
        let two = dgram("OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\nab");
        assert!(matches!(two.defect, Some(Defect::Framing(_))));
    }

    #[test]
    fn request_line_defects() {
        assert_eq!(
            dgram("OPTIONS sip:a@b SIP/7.0\r\n\r\n").defect,
            Some(Defect::Version)
        );
        assert!(matches!(
            dgram("OPTIONS  sip:a@b SIP/2.0\r\n\r\n").defect,
            Some(Defect::RequestLine(_))
        ));
        assert!(matches!(
            dgram("OPTIONS sip:a@b SIP/2.0 \r\n\r\n").defect,
            Some(Defect::RequestLine(_))
        ));
        assert!(matches!(
            dgram("OPTIONS <sip:a@b> SIP/2.0\r\n\r\n").defect,
            Some(Defect::RequestLine(_))
        ));
    }

    #[test]
    fn not_sip_is_rejected() {
        assert!(parse(b"", Framing::Datagram).is_err());
        assert!(parse(b"\r\n\r\n", Framing::Datagram).is_err());
        assert!(parse(b"\x16\x03\x01\x00\xa5\x01", Framing::Datagram).is_err());
        assert!(parse(b"GET / HTTP/1.1\r\n\r\n", Framing::Datagram).is_err());
        assert!(parse(b"SIP/2.0 4294967301 Huge\r\n\r\n", Framing::Datagram).is_err());
    }

    #[test]
    fn responses_parse() {
        let p = dgram("SIP/2.0 100 \r\nCall-ID: 1\r\n\r\n");
        assert_eq!(p.msg.status(), Some(100));
    }
}
