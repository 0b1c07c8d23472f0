//! DTMF: the digit type shared by the three detectors (RFC 4733 telephone-events, SIP INFO
//! bodies, in-band G.711 tones) and by the IVR that takes their digits.

pub mod inband;
pub mod info;
pub mod telephone_event;

pub use inband::InbandDetector;
pub use info::{parse_info, InfoDigit, InfoError};
pub use telephone_event::TelephoneEventDetector;

use std::time::Instant;

/// Which of the three detectors saw a digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtmfSource {
    /// An RFC 4733 telephone-event RTP packet.
    Rfc4733,
    /// A SIP INFO request body.
    Info,
    /// Tones in the G.711 audio.
    Inband,
}

/// One key press, reported once by the detector that saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfEvent {
    /// The key.
    pub digit: Digit,
    /// When the detector reported it (the `now` of the input that completed it).
    pub at: Instant,
    /// How long the key had been held when reported, in ms; 0 when not known yet (an
    /// RFC 4733 event is reported at its first packet, an INFO body may carry no duration).
    pub duration_ms: u32,
    /// The detector that saw it.
    pub source: DtmfSource,
}

/// One DTMF key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Digit {
    /// 0–9.
    Num(u8),
    /// `*`.
    Star,
    /// `#`.
    Pound,
    /// A–D (the fourth column, rare on phones).
    Letter(char),
}

impl Digit {
    /// The digit for a key character (`0`–`9`, `*`, `#`, `A`–`D`, case-insensitive).
    pub fn from_char(c: char) -> Option<Digit> {
        match c {
            '0'..='9' => Some(Digit::Num(c as u8 - b'0')),
            '*' => Some(Digit::Star),
            '#' => Some(Digit::Pound),
            'A'..='D' | 'a'..='d' => Some(Digit::Letter(c.to_ascii_uppercase())),
            _ => None,
        }
    }

    /// The digit of an RFC 4733 §3.2 event code (0–9, 10 `*`, 11 `#`, 12–15 A–D).
    pub fn from_event(code: u8) -> Option<Digit> {
        match code {
            0..=9 => Some(Digit::Num(code)),
            10 => Some(Digit::Star),
            11 => Some(Digit::Pound),
            12..=15 => Some(Digit::Letter((b'A' + code - 12) as char)),
            _ => None,
        }
    }

    /// The key's character.
    pub fn as_char(self) -> char {
        match self {
            Digit::Num(n) => (b'0' + n) as char,
            Digit::Star => '*',
            Digit::Pound => '#',
            Digit::Letter(c) => c,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Digit;

    #[test]
    fn chars_and_events_round_trip() {
        for c in "0123456789*#ABCD".chars() {
            let d = Digit::from_char(c).unwrap();
            assert_eq!(d.as_char(), c);
        }
        assert_eq!(Digit::from_event(10), Some(Digit::Star));
        assert_eq!(Digit::from_event(11), Some(Digit::Pound));
        assert_eq!(Digit::from_event(15), Some(Digit::Letter('D')));
        assert_eq!(Digit::from_event(16), None);
        assert_eq!(Digit::from_char('x'), None);
    }
}
