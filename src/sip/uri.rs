//! Request-URI and name-addr URIs: a facade over `rsipstack::sip`'s URI parser (the
//! maintained fork of rsip, see reference/crates.md), plus the dialled number holdless
//! routes on. Kept behind this module so the parser can be swapped.

use rsipstack::sip as rsip;

/// Why a URI was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// A scheme holdless does not serve (only sip, sips and tel).
    #[error("unsupported URI scheme {0}")]
    UnsupportedScheme(String),
    /// Not a URI at all.
    #[error("malformed URI: {0}")]
    Malformed(String),
}

/// The parts of a URI holdless uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    /// `sip`, `sips` or `tel`, lowercase.
    pub scheme: String,
    /// The user part (sip/sips) or the number (tel), %-decoded once.
    pub user: Option<String>,
    /// Host (sip/sips); empty for tel.
    pub host: String,
    /// Whether `?headers` were present.
    pub has_headers: bool,
}

/// Parses a sip, sips or tel URI.
pub fn parse(s: &str) -> Result<Uri, UriError> {
    let s = s.trim();
    let (scheme, rest) = s
        .split_once(':')
        .ok_or_else(|| UriError::Malformed("no scheme".into()))?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return Err(UriError::Malformed("bad scheme".into()));
    }
    if s.contains(|c: char| c.is_whitespace() || c == '<' || c == '>') {
        return Err(UriError::Malformed("whitespace or brackets in URI".into()));
    }
    match scheme.to_ascii_lowercase().as_str() {
        "tel" => {
            let number = rest.split(';').next().unwrap_or_default();
            if number.is_empty() {
                return Err(UriError::Malformed("empty tel number".into()));
            }
            Ok(Uri {
                scheme: "tel".into(),
                user: Some(percent_decode(number)),
                host: String::new(),
                has_headers: false,
            })
        }
        sch @ ("sip" | "sips") => {
            // The user part may hold `;` (RFC 4475 semiuri); `@` inside it must be escaped,
            // so the first `@` ends it. rsipstack checks what follows.
            let (user, hostpart) = match rest.split_once('@') {
                Some((userinfo, host)) => {
                    let user = userinfo.split(':').next().unwrap_or_default();
                    (Some(percent_decode(user)), host)
                }
                None => (None, rest),
            };
            let u = rsip::Uri::try_from(format!("{sch}:{hostpart}"))
                .map_err(|e| UriError::Malformed(e.to_string()))?;
            Ok(Uri {
                scheme: sch.to_owned(),
                user,
                host: u.host().to_string(),
                has_headers: !u.headers.is_empty() || hostpart.contains('?'),
            })
        }
        other => Err(UriError::UnsupportedScheme(other.to_owned())),
    }
}

/// Decodes `%XX` escapes once; invalid escapes are kept as written.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The dialled number of a Request-URI, normalised for matching call targets: visual
/// separators removed, user parameters dropped (`+1555;npdi` → `+1555`).
pub fn dialled_number(request_uri: &str) -> Option<String> {
    let u = parse(request_uri).ok()?;
    let user = u.user?;
    let number = user.split(';').next().unwrap_or_default();
    let n: String = number.chars().filter(|c| !"-.() ".contains(*c)).collect();
    (!n.is_empty()).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_and_tel_numbers() {
        assert_eq!(
            dialled_number("sip:+15550001000@127.0.0.1:5060;transport=udp").as_deref(),
            Some("+15550001000")
        );
        assert_eq!(
            dialled_number("tel:+1-555-000-1000;phone-context=x").as_deref(),
            Some("+15550001000")
        );
        assert_eq!(
            dialled_number("sip:%2B15550001000@h").as_deref(),
            Some("+15550001000")
        );
        assert_eq!(
            dialled_number("sip:+15550001000;npdi@h").as_deref(),
            Some("+15550001000")
        );
        assert_eq!(dialled_number("sip:h.example.com"), None);
    }

    #[test]
    fn schemes() {
        assert!(matches!(
            parse("nobodyKnowsThisScheme:totallyopaquecontent"),
            Err(UriError::UnsupportedScheme(_))
        ));
        assert!(matches!(
            parse("sip:user@example.com; lr"),
            Err(UriError::Malformed(_))
        ));
        assert!(
            parse("sip:user@example.com?Route=%3Csip:example.com%3E")
                .unwrap()
                .has_headers
        );
        assert!(parse("sip:[2001:db8::10]:5070").is_ok());
    }

    #[test]
    fn percent_decoding_is_one_level() {
        assert_eq!(percent_decode("value%25%34%31"), "value%41");
        assert_eq!(percent_decode("bad%zz"), "bad%zz");
        assert_eq!(percent_decode("end%4"), "end%4");
    }
}
