//! The Via header (RFC 3261 §20.42): a strict typed view of one via-parm, and the edits a
//! server transport makes to the top one (`received`, `rport` per RFC 3581).

use std::fmt;

use super::message::{Message, Name};
use super::method::is_token_char;

/// The RFC 3261 magic cookie that starts every RFC 3261 branch.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// Why a Via value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ViaError {
    /// No Via header at all: there is nowhere to send a response.
    #[error("missing Via header")]
    Missing,
    /// The value is not `SIP/2.0/transport sent-by *(;param)`.
    #[error("malformed Via header: {0}")]
    Malformed(&'static str),
}

/// One via-parm: protocol, transport, sent-by and parameters in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Protocol version, `2.0` for SIP/2.0.
    pub version: String,
    /// Transport token as written (`UDP`, `TCP`, `TLS`, or an extension).
    pub transport: String,
    /// Host of sent-by (IPv6 references keep their brackets).
    pub host: String,
    /// Port of sent-by, if given.
    pub port: Option<u16>,
    /// Parameters in order: name and optional value.
    pub params: Vec<(String, Option<String>)>,
}

impl Via {
    /// Parses one via-parm strictly.
    pub fn parse(s: &str) -> Result<Via, ViaError> {
        let mut parts = s.splitn(3, '/');
        let proto = parts.next().unwrap_or_default().trim();
        let version = parts
            .next()
            .ok_or(ViaError::Malformed("no protocol version"))?
            .trim();
        let rest = parts
            .next()
            .ok_or(ViaError::Malformed("no transport"))?
            .trim_start();
        if !proto.eq_ignore_ascii_case("SIP") {
            return Err(ViaError::Malformed("protocol is not SIP"));
        }
        let split = rest
            .find([' ', '\t'])
            .ok_or(ViaError::Malformed("no sent-by"))?;
        let (transport, rest) = rest.split_at(split);
        if transport.is_empty() || !transport.bytes().all(is_token_char) {
            return Err(ViaError::Malformed("bad transport token"));
        }
        let mut segs = rest.split(';');
        let sent_by = segs.next().unwrap_or_default().trim();
        let (host, port) = parse_host_port(sent_by)?;
        let mut params = Vec::new();
        for seg in segs {
            params.push(parse_param(seg)?);
        }
        Ok(Via {
            version: version.to_owned(),
            transport: transport.to_owned(),
            host,
            port,
            params,
        })
    }

    /// The value of a parameter: `None` if absent, `Some(None)` if present without value.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        self.param("branch").flatten()
    }

    /// Whether the branch starts with the RFC 3261 magic cookie.
    pub fn is_rfc3261(&self) -> bool {
        self.branch().is_some_and(|b| b.starts_with(MAGIC_COOKIE))
    }

    /// `host[:port]` as written in sent-by, for transaction matching.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{}", self.host, p),
            None => self.host.clone(),
        }
    }

    /// Sets a parameter's value, replacing it in place or appending it.
    pub fn set_param(&mut self, name: &str, value: Option<String>) {
        match self
            .params
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(p) => p.1 = value,
            None => self.params.push((name.to_owned(), value)),
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/{}/{} {}", self.version, self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        for (n, v) in &self.params {
            match v {
                Some(v) => write!(f, ";{n}={v}")?,
                None => write!(f, ";{n}")?,
            }
        }
        Ok(())
    }
}

fn parse_host_port(s: &str) -> Result<(String, Option<u16>), ViaError> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or(ViaError::Malformed("unterminated IPv6 reference"))?;
        let host = &s[..end + 2];
        let after = &rest[end + 1..];
        (host, after.strip_prefix(':'))
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let host = host.trim();
    let valid_host = |b: u8| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b);
    if host.is_empty() || !host.bytes().all(valid_host) {
        return Err(ViaError::Malformed("bad sent-by host"));
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            p.trim()
                .parse::<u16>()
                .map_err(|_| ViaError::Malformed("bad sent-by port"))?,
        ),
    };
    Ok((host.to_owned(), port))
}

fn parse_param(seg: &str) -> Result<(String, Option<String>), ViaError> {
    let seg = seg.trim();
    let (name, value) = match seg.split_once('=') {
        Some((n, v)) => (n.trim(), Some(v.trim())),
        None => (seg, None),
    };
    if name.is_empty() || !name.bytes().all(is_token_char) {
        return Err(ViaError::Malformed("empty or bad parameter"));
    }
    let value_ok =
        |v: &str| !v.is_empty() && v.bytes().all(|b| is_token_char(b) || b"[]:".contains(&b));
    if let Some(v) = value {
        if !value_ok(v) {
            return Err(ViaError::Malformed("bad parameter value"));
        }
    }
    Ok((name.to_owned(), value.map(str::to_owned)))
}

/// Splits a header value on commas that are outside quotes and angle brackets.
pub fn split_list(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut escaped, mut start) = (false, false, false, 0);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim());
    out
}

/// Every via-parm of a message, top first, parsed strictly.
pub fn all(msg: &Message) -> Result<Vec<Via>, ViaError> {
    let mut out = Vec::new();
    for value in msg.get_all(Name::Via) {
        for part in split_list(value) {
            if part.is_empty() {
                return Err(ViaError::Malformed("empty Via value"));
            }
            out.push(Via::parse(part)?);
        }
    }
    if out.is_empty() {
        return Err(ViaError::Missing);
    }
    Ok(out)
}

/// The top via-parm of a message.
pub fn top(msg: &Message) -> Result<Via, ViaError> {
    let value = msg.get(Name::Via).ok_or(ViaError::Missing)?;
    let first = split_list(value).into_iter().next().unwrap_or_default();
    Via::parse(first)
}

/// Replaces the top via-parm of a message, keeping any further values on the same line.
pub fn replace_top(msg: &mut Message, via: &Via) {
    let Some(h) = msg.headers.iter_mut().find(|h| Name::Via.matches(&h.name)) else {
        return;
    };
    let parts = split_list(&h.value);
    let mut value = via.to_string();
    for rest in &parts[1..] {
        value.push_str(", ");
        value.push_str(rest);
    }
    h.value = value;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_plain_via() {
        let v = Via::parse("SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1;rport").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, "127.0.0.1");
        assert_eq!(v.port, Some(5061));
        assert_eq!(v.branch(), Some("z9hG4bK-1"));
        assert_eq!(v.param("rport"), Some(None));
        assert!(v.is_rfc3261());
        assert_eq!(
            v.to_string(),
            "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1;rport"
        );
    }

    #[test]
    fn accepts_lws_around_slashes_and_ipv6() {
        let v = Via::parse("SIP  /   2.0   /  UDP [2001:db8::9]:5060 ;branch=z9hG4bKx").unwrap();
        assert_eq!(v.host, "[2001:db8::9]");
        assert_eq!(v.port, Some(5060));
    }

    #[test]
    fn rejects_stray_separators() {
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;").is_err());
        assert!(Via::parse("SIP/2.0/UDP").is_err());
        assert!(Via::parse("SIP/2.0/UDP host:99999").is_err());
    }

    #[test]
    fn splits_lists_outside_quotes() {
        assert_eq!(split_list("a, b ,c"), vec!["a", "b", "c"]);
        assert_eq!(
            split_list("\"x,y\" <sip:a,b>, z"),
            vec!["\"x,y\" <sip:a,b>", "z"]
        );
    }

    #[test]
    fn replace_top_keeps_lower_values() {
        let mut m = Message::response(200, "OK");
        m.push(
            Name::Via,
            "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2",
        );
        let mut v = top(&m).unwrap();
        v.set_param("received", Some("10.0.0.1".into()));
        replace_top(&mut m, &v);
        assert_eq!(
            m.get(Name::Via).unwrap(),
            "SIP/2.0/UDP a;branch=z9hG4bK1;received=10.0.0.1, SIP/2.0/UDP b;branch=z9hG4bK2"
        );
    }
}
