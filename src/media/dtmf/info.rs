//! DTMF carried in SIP INFO request bodies: `application/dtmf-relay` (`Signal=5` and
//! `Duration=160` lines, the Cisco form most gateways send) and `application/dtmf` (the
//! body is just the key).

use std::time::Instant;

use super::{Digit, DtmfEvent, DtmfSource};

/// The key an INFO body carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InfoDigit {
    /// The key.
    pub digit: Digit,
    /// The `Duration` line in ms; 0 when the body has none (or an unreadable one).
    pub duration_ms: u32,
}

impl InfoDigit {
    /// The event the IVR takes, reported at `now`.
    pub fn into_event(self, now: Instant) -> DtmfEvent {
        DtmfEvent {
            digit: self.digit,
            at: now,
            duration_ms: self.duration_ms,
            source: DtmfSource::Info,
        }
    }
}

/// Why an INFO body gave no key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InfoError {
    /// The Content-Type is neither `application/dtmf-relay` nor `application/dtmf`.
    #[error("INFO body of type {0:?} carries no DTMF")]
    UnsupportedContentType(String),
    /// The body is not UTF-8 text.
    #[error("DTMF INFO body is not text")]
    NotText,
    /// An `application/dtmf-relay` body without a `Signal` line.
    #[error("DTMF INFO body has no Signal")]
    MissingSignal,
    /// The key is not one of `0`–`9`, `*`, `#`, `A`–`D` or an event code 0–15.
    #[error("DTMF INFO key {0:?} is not a DTMF key")]
    BadKey(String),
}

/// Reads the key of an INFO request from its Content-Type (parameters and case ignored)
/// and body.
pub fn parse_info(content_type: &str, body: &[u8]) -> Result<InfoDigit, InfoError> {
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    let text = std::str::from_utf8(body).map_err(|_| InfoError::NotText)?;
    if media_type.eq_ignore_ascii_case("application/dtmf-relay") {
        parse_relay(text)
    } else if media_type.eq_ignore_ascii_case("application/dtmf") {
        Ok(InfoDigit {
            digit: key(text)?,
            duration_ms: 0,
        })
    } else {
        Err(InfoError::UnsupportedContentType(media_type.to_owned()))
    }
}

/// `Signal=` and `Duration=` lines; other lines are ignored, the first of each counts.
fn parse_relay(text: &str) -> Result<InfoDigit, InfoError> {
    let mut signal = None;
    let mut duration = None;
    for line in text.lines() {
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("signal") {
            signal = signal.or(Some(value));
        } else if name.eq_ignore_ascii_case("duration") {
            duration = duration.or(Some(value));
        }
    }
    let digit = key(signal.ok_or(InfoError::MissingSignal)?)?;
    let duration_ms = duration
        .and_then(|d| d.trim().parse::<u32>().ok())
        .unwrap_or(0);
    Ok(InfoDigit { digit, duration_ms })
}

/// A key character or an RFC 4733 event code (10 `*`, 11 `#`, 12–15 `A`–`D`).
fn key(value: &str) -> Result<Digit, InfoError> {
    let value = value.trim();
    let mut chars = value.chars();
    let single = match (chars.next(), chars.next()) {
        (Some(c), None) => Digit::from_char(c),
        _ => None,
    };
    single
        .or_else(|| value.parse::<u8>().ok().and_then(Digit::from_event))
        .ok_or_else(|| InfoError::BadKey(value.chars().take(16).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(body: &str) -> Result<InfoDigit, InfoError> {
        parse_info("application/dtmf-relay", body.as_bytes())
    }

    #[test]
    fn dtmf_relay_signal_and_duration() {
        let d = relay("Signal=5\r\nDuration=160\r\n").unwrap();
        assert_eq!(
            d,
            InfoDigit {
                digit: Digit::Num(5),
                duration_ms: 160
            }
        );
        let d = relay("signal = #\nDURATION= 250").unwrap();
        assert_eq!(
            d,
            InfoDigit {
                digit: Digit::Pound,
                duration_ms: 250
            }
        );
        let d = relay("Signal= *\r\n").unwrap();
        assert_eq!(
            d,
            InfoDigit {
                digit: Digit::Star,
                duration_ms: 0
            }
        );
        assert_eq!(
            relay("Signal=d\r\nDuration=100").unwrap().digit,
            Digit::Letter('D')
        );
        assert_eq!(relay("Signal=A").unwrap().digit, Digit::Letter('A'));
    }

    #[test]
    fn dtmf_relay_numeric_event_codes() {
        assert_eq!(
            relay("Signal=10\r\nDuration=100\r\n").unwrap().digit,
            Digit::Star
        );
        assert_eq!(
            relay("Signal=11\r\nDuration=100\r\n").unwrap().digit,
            Digit::Pound
        );
        assert_eq!(relay("Signal=0").unwrap().digit, Digit::Num(0));
        assert_eq!(relay("Signal=15").unwrap().digit, Digit::Letter('D'));
    }

    #[test]
    fn dtmf_relay_unreadable_duration_keeps_the_digit() {
        let d = relay("Signal=3\r\nDuration=long\r\n").unwrap();
        assert_eq!(
            d,
            InfoDigit {
                digit: Digit::Num(3),
                duration_ms: 0
            }
        );
    }

    #[test]
    fn content_type_parameters_and_case_are_ignored() {
        let d = parse_info("Application/DTMF-Relay ; charset=utf-8", b"Signal=9\r\n").unwrap();
        assert_eq!(d.digit, Digit::Num(9));
        let d = parse_info(" APPLICATION/dtmf;x=y", b"7").unwrap();
        assert_eq!(
            d,
            InfoDigit {
                digit: Digit::Num(7),
                duration_ms: 0
            }
        );
    }

    #[test]
    fn application_dtmf_body_is_the_key() {
        for (body, want) in [
            ("5", '5'),
            ("*\r\n", '*'),
            (" #", '#'),
            ("b", 'B'),
            ("11", '#'),
        ] {
            let d = parse_info("application/dtmf", body.as_bytes()).unwrap();
            assert_eq!(d.digit.as_char(), want, "{body:?}");
        }
    }

    #[test]
    fn garbage_is_an_error() {
        assert_eq!(relay(""), Err(InfoError::MissingSignal));
        assert_eq!(relay("Duration=100\r\n"), Err(InfoError::MissingSignal));
        assert_eq!(relay("hello world"), Err(InfoError::MissingSignal));
        assert_eq!(relay("Signal=\r\n"), Err(InfoError::BadKey(String::new())));
        assert_eq!(relay("Signal=16"), Err(InfoError::BadKey("16".into())));
        assert_eq!(relay("Signal=X"), Err(InfoError::BadKey("X".into())));
        assert_eq!(relay("Signal=55"), Err(InfoError::BadKey("55".into())));
        assert_eq!(relay("Signal=-1"), Err(InfoError::BadKey("-1".into())));
        assert_eq!(relay("Signal=é"), Err(InfoError::BadKey("é".into())));
        assert_eq!(
            parse_info("application/dtmf-relay", &[0xff, 0xfe, b'=', 0x80]),
            Err(InfoError::NotText)
        );
        assert_eq!(
            parse_info("application/dtmf", b""),
            Err(InfoError::BadKey(String::new()))
        );
        assert_eq!(
            parse_info("application/dtmf", b"12345"),
            Err(InfoError::BadKey("12345".into()))
        );
        assert_eq!(
            parse_info("application/sdp", b"v=0\r\n"),
            Err(InfoError::UnsupportedContentType("application/sdp".into()))
        );
        assert_eq!(
            parse_info("", b"Signal=1"),
            Err(InfoError::UnsupportedContentType(String::new()))
        );
    }

    #[test]
    fn into_event_tags_the_source() {
        let now = Instant::now();
        let e = relay("Signal=1\r\nDuration=200").unwrap().into_event(now);
        assert_eq!(
            e,
            DtmfEvent {
                digit: Digit::Num(1),
                at: now,
                duration_ms: 200,
                source: DtmfSource::Info
            }
        );
    }
}
