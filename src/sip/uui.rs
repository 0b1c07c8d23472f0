//! User-to-User header values (RFC 7433) as contact centers send them:
//! `User-to-User: 56a390f3d2b7310023a2;encoding=hex;purpose=isdn-uui;content=isdn-uui`,
//! or Twilio's `X-User-To-User: <plain text or hex>`.
//!
//! [`decode`] never fails: whatever came in is kept, and what was wrong with it is a flag.
//!
//! * The value is everything before the first `;` outside double quotes; the parameters
//!   follow, `name=value`, names case-insensitive, values optionally quoted.
//! * `encoding=hex`: the value is decoded. Bytes that are valid UTF-8 become the text
//!   (`value`); bytes that are not (binary ISDN UUI) stay as the hex digits, lower-cased,
//!   and [`Uui::binary`] is set — a lossy UTF-8 conversion would destroy them for good,
//!   while the hex can still be decoded by whoever reads the record. Odd length or a
//!   non-hex digit: the value is kept as it came and [`Uui::bad_hex`] is set.
//! * No `encoding` (or one other than `hex`): the value is kept as it came (unquoted).
//! * Longer than `max_length` bytes: `raw` and `value` are cut to `max_length` bytes on a
//!   character boundary (an even number of digits for hex) and [`Uui::truncated`] is set.
//!   Parameters are read from the whole value first, so a cut never loses `encoding`.

/// A decoded User-to-User value. See the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uui {
    /// The header value as received (trimmed), at most `max_length` bytes.
    pub raw: String,
    /// The decoded value (text), at most `max_length` bytes.
    pub value: String,
    /// The `encoding` parameter (`hex`), as given.
    pub encoding: Option<String>,
    /// The `purpose` parameter (e.g. `isdn-uui`).
    pub purpose: Option<String>,
    /// The `content` parameter (e.g. `isdn-uui`).
    pub content: Option<String>,
    /// `raw` or `value` was cut to `max_length` bytes.
    pub truncated: bool,
    /// `encoding=hex` but the value is not an even number of hex digits: `value` is as it came.
    pub bad_hex: bool,
    /// `encoding=hex` and the bytes are not UTF-8: `value` holds the hex digits, lower-cased.
    pub binary: bool,
}

/// Splits on `;` outside double quotes (a backslash escapes the next character inside them).
fn split_params(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// A token or a quoted string, without its quotes and escapes.
fn unquote(s: &str) -> String {
    let s = s.trim();
    let Some(inner) = s
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .filter(|_| s.len() >= 2)
    else {
        return s.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut escaped = false;
    for c in inner.chars() {
        if escaped || c != '\\' {
            out.push(c);
            escaped = false;
        } else {
            escaped = true;
        }
    }
    out
}

/// The longest prefix of `s` of at most `max` bytes ending on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Hex digits to bytes; `None` on odd length or a non-hex digit.
fn unhex(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    b.chunks(2)
        .map(|p| Some((digit(p[0])? << 4) | digit(p[1])?))
        .collect()
}

/// Decodes one header value; never fails (see the module documentation).
pub fn decode(raw: &str, max_length: usize) -> Uui {
    let whole = raw.trim();
    let mut parts = split_params(whole).into_iter();
    let data = unquote(parts.next().unwrap_or_default());
    let mut uui = Uui::default();
    for p in parts {
        let (name, value) = p.split_once('=').unwrap_or((p, ""));
        let slot = match name.trim().to_ascii_lowercase().as_str() {
            "encoding" => &mut uui.encoding,
            "purpose" => &mut uui.purpose,
            "content" => &mut uui.content,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(cut(&unquote(value), max_length).to_owned());
        }
    }
    let hex = uui
        .encoding
        .as_deref()
        .is_some_and(|e| e.eq_ignore_ascii_case("hex"));
    let value = if hex {
        match unhex(&data) {
            Some(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => {
                    uui.binary = true;
                    data.to_ascii_lowercase()
                }
            },
            None => {
                uui.bad_hex = true;
                data
            }
        }
    } else {
        data
    };
    let mut v = cut(&value, max_length);
    if uui.binary && !v.len().is_multiple_of(2) {
        v = &v[..v.len() - 1];
    }
    let r = cut(whole, max_length);
    uui.truncated = v.len() < value.len() || r.len() < whole.len();
    uui.value = v.to_owned();
    uui.raw = r.to_owned();
    uui
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_text_is_decoded_with_its_parameters() {
        // "ABC-12345", as in the Twilio corpus.
        let u = decode(
            " 4142432d3132333435;encoding=hex;purpose=isdn-uui;content=isdn-uui ",
            256,
        );
        assert_eq!(
            u,
            Uui {
                raw: "4142432d3132333435;encoding=hex;purpose=isdn-uui;content=isdn-uui".into(),
                value: "ABC-12345".into(),
                encoding: Some("hex".into()),
                purpose: Some("isdn-uui".into()),
                content: Some("isdn-uui".into()),
                truncated: false,
                bad_hex: false,
                binary: false,
            }
        );
    }

    #[test]
    fn binary_hex_stays_hex() {
        let u = decode(
            "56A390F3D2B7310023A2;Encoding=HEX;PURPOSE=isdn-uui;content=isdn-uui",
            256,
        );
        assert_eq!(u.value, "56a390f3d2b7310023a2");
        assert!(u.binary && !u.bad_hex && !u.truncated);
        assert_eq!(u.encoding.as_deref(), Some("HEX"));
        assert_eq!(u.purpose.as_deref(), Some("isdn-uui"));
    }

    #[test]
    fn plain_values_are_kept_as_they_came() {
        let u = decode("order=1234&lang=fr", 256);
        assert_eq!(u.value, "order=1234&lang=fr");
        assert_eq!(u.raw, "order=1234&lang=fr");
        assert_eq!(u.encoding, None);
        assert!(!u.bad_hex && !u.binary && !u.truncated);
        // Hex-looking but no encoding parameter: plain.
        assert_eq!(decode("414243", 256).value, "414243");
        // An unknown encoding: plain, encoding recorded.
        let u = decode("QUJD;encoding=base64", 256);
        assert_eq!(
            (u.value.as_str(), u.encoding.as_deref()),
            ("QUJD", Some("base64"))
        );
    }

    #[test]
    fn quoted_values_and_parameters_keep_their_semicolons() {
        let u = decode(
            r#""a;b \"c\"";purpose="x;y";content = isdn-uui ;foo=bar"#,
            256,
        );
        assert_eq!(u.value, r#"a;b "c""#);
        assert_eq!(u.purpose.as_deref(), Some("x;y"));
        assert_eq!(u.content.as_deref(), Some("isdn-uui"));
        assert_eq!(u.encoding, None);
        // The first of a repeated parameter wins.
        let u = decode("41;encoding=hex;encoding=none", 256);
        assert_eq!((u.value.as_str(), u.bad_hex), ("A", false));
    }

    #[test]
    fn bad_hex_is_kept_raw_and_flagged() {
        let u = decode("41zz;encoding=hex", 256);
        assert_eq!(u.value, "41zz");
        assert!(u.bad_hex && !u.binary);
        let odd = decode("414;encoding=hex", 256);
        assert_eq!(odd.value, "414");
        assert!(odd.bad_hex);
        // A multi-byte character in "hex" is not a digit either (no panic on slicing).
        let u = decode("4é;encoding=hex", 256);
        assert_eq!(u.value, "4é");
        assert!(u.bad_hex);
    }

    #[test]
    fn oversize_values_are_cut_on_a_character_boundary() {
        // "é" is 2 bytes: 5 of them are 10 bytes; a cut at 7 keeps 3 (6 bytes).
        let u = decode("ééééé", 7);
        assert_eq!((u.raw.as_str(), u.value.as_str()), ("ééé", "ééé"));
        assert!(u.truncated);
        // Hex: the parameters survive the cut; the decoded text is cut too.
        let text = "€uro".repeat(10); // "€" is 3 bytes
        let hex: String = text.bytes().map(|b| format!("{b:02x}")).collect();
        let u = decode(&format!("{hex};encoding=hex"), 8);
        assert_eq!(u.encoding.as_deref(), Some("hex"));
        assert_eq!(u.value, "€uro");
        assert_eq!(u.raw, &hex[..8]);
        assert!(u.truncated && !u.bad_hex);
        // Binary hex is cut to whole bytes.
        let u = decode("56a390f3d2b7;encoding=hex", 5);
        assert_eq!(u.value, "56a3");
        assert!(u.truncated && u.binary);
        // Exactly at the limit: nothing is cut.
        let u = decode("abcd", 4);
        assert!(!u.truncated);
    }

    #[test]
    fn empty_values_are_empty() {
        for raw in ["", "   ", ";encoding=hex"] {
            let u = decode(raw, 256);
            assert_eq!(u.value, "", "{raw:?}");
            assert!(!u.bad_hex && !u.truncated && !u.binary, "{raw:?}");
        }
        assert_eq!(decode("", 0), Uui::default());
        let u = decode("abc", 0);
        assert!(u.truncated && u.value.is_empty() && u.raw.is_empty());
    }
}
