//! Customer number rules: normalization to E.164, allowed country codes and lengths,
//! blocked prefixes and a per-minute rate table (the toll-fraud guard).

/// Longest contact number accepted before normalization (with separators and `tel:`).
pub const MAX_RAW_NUMBER: usize = 64;

/// A number that fails the call target's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NumberError {
    /// No number at all.
    #[error("no contact number")]
    Empty,
    /// Characters other than digits, a leading `+` and visual separators.
    #[error("not a telephone number: {0}")]
    NotANumber(String),
    /// Not 2-15 digits starting with a non-zero country code (ITU-T E.164).
    #[error("not a valid E.164 number: {0}")]
    NotE164(String),
    /// The country code is not in the allowed list.
    #[error("country code of {0} is not allowed for this call target")]
    CountryNotAllowed(String),
    /// The national number has a length the country rule does not allow.
    #[error("{number} has {len} digits after country code {cc}; allowed: {allowed:?}")]
    BadLength {
        /// The number.
        number: String,
        /// Its country code.
        cc: String,
        /// Digits after the country code.
        len: usize,
        /// Allowed lengths.
        allowed: Vec<u8>,
    },
    /// The number starts with a blocked prefix.
    #[error("{number} starts with blocked prefix {prefix}")]
    Blocked {
        /// The number.
        number: String,
        /// The prefix.
        prefix: String,
    },
    /// The destination costs more per minute than the call target allows.
    #[error("{number} costs {rate} per minute, above the maximum {max}")]
    RateTooHigh {
        /// The number.
        number: String,
        /// Its rate (in millionths, shown as a decimal).
        rate: Rate,
        /// The maximum.
        max: Rate,
    },
    /// A rate table is configured and no entry covers the number.
    #[error("{0}: no rate for this destination")]
    NoRate(String),
}

impl NumberError {
    /// Whether this is a toll-fraud refusal (blocked or too expensive) rather than a
    /// malformed or disallowed number.
    pub fn is_toll(&self) -> bool {
        matches!(
            self,
            NumberError::Blocked { .. } | NumberError::RateTooHigh { .. } | NumberError::NoRate(_)
        )
    }
}

/// A per-minute price in millionths of the currency unit (exact comparisons, no floats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rate(pub u64);

impl Rate {
    /// From a decimal amount (e.g. `0.012`); `None` if negative, not finite or too large.
    pub fn from_decimal(v: f64) -> Option<Rate> {
        (v.is_finite() && (0.0..1.0e9).contains(&v)).then(|| Rate((v * 1e6).round() as u64))
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = format!("{}.{:06}", self.0 / 1_000_000, self.0 % 1_000_000);
        f.write_str(s.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// A country code and the national-number lengths allowed after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountryRule {
    /// Country code digits, e.g. `1`, `44`.
    pub cc: String,
    /// Allowed digit counts after the country code; empty = any.
    pub lengths: Vec<u8>,
}

/// The rules of one call target.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NumberRules {
    /// Allowed countries; empty = any E.164 number.
    pub allowed: Vec<CountryRule>,
    /// Country code for numbers given without `+` or `00` whose length fits its rule.
    pub default_country: Option<String>,
    /// Blocked E.164 prefixes, with `+`.
    pub blocked: Vec<String>,
    /// `(E.164 prefix with +, rate)`, longest prefix first.
    pub rates: Vec<(String, Rate)>,
    /// Highest acceptable rate.
    pub max_rate: Option<Rate>,
}

impl NumberRules {
    /// Normalizes `raw` to E.164 and checks every rule.
    pub fn check(&self, raw: &str) -> Result<String, NumberError> {
        let n = self.normalize(raw)?;
        self.check_country(&n)?;
        self.check_toll(&n)?;
        Ok(n)
    }

    /// Strips `tel:`, visual separators (space, `-`, `.`, `(`, `)`, `/`) and user
    /// parameters; `00` becomes `+`; a national number gets the default country code.
    pub fn normalize(&self, raw: &str) -> Result<String, NumberError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(NumberError::Empty);
        }
        if s.len() > MAX_RAW_NUMBER {
            return Err(NumberError::NotANumber(format!(
                "longer than {MAX_RAW_NUMBER} characters"
            )));
        }
        let s = s.strip_prefix("tel:").unwrap_or(s);
        let s = s.split(';').next().unwrap_or(s);
        let (plus, rest) = match s.strip_prefix('+') {
            Some(r) => (true, r),
            None => (false, s),
        };
        let mut digits = String::with_capacity(rest.len());
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' | '/' => {}
                _ => return Err(NumberError::NotANumber(raw.to_owned())),
            }
        }
        let intl = if plus {
            digits
        } else if let Some(d) = digits.strip_prefix("00") {
            d.to_owned()
        } else {
            match self.default_country.as_deref() {
                Some(cc) if self.fits_national(cc, digits.len()) => format!("{cc}{digits}"),
                _ => digits,
            }
        };
        let e164 = format!("+{intl}");
        if !is_e164(&e164) {
            return Err(NumberError::NotE164(raw.to_owned()));
        }
        Ok(e164)
    }

    fn fits_national(&self, cc: &str, len: usize) -> bool {
        self.allowed
            .iter()
            .find(|r| r.cc == cc)
            .is_some_and(|r| r.lengths.iter().any(|&l| usize::from(l) == len))
    }

    /// Country and length rules on an E.164 number.
    pub fn check_country(&self, e164: &str) -> Result<(), NumberError> {
        if self.allowed.is_empty() {
            return Ok(());
        }
        let digits = e164.trim_start_matches('+');
        // Longest matching country code wins (e.g. 1 vs 1868).
        let rule = self
            .allowed
            .iter()
            .filter(|r| digits.starts_with(r.cc.as_str()))
            .max_by_key(|r| r.cc.len())
            .ok_or_else(|| NumberError::CountryNotAllowed(e164.to_owned()))?;
        let len = digits.len() - rule.cc.len();
        if rule.lengths.is_empty() || rule.lengths.iter().any(|&l| usize::from(l) == len) {
            Ok(())
        } else {
            Err(NumberError::BadLength {
                number: e164.to_owned(),
                cc: rule.cc.clone(),
                len,
                allowed: rule.lengths.clone(),
            })
        }
    }

    /// Blocked prefixes and the rate table on an E.164 number.
    pub fn check_toll(&self, e164: &str) -> Result<(), NumberError> {
        if let Some(p) = self.blocked.iter().find(|p| e164.starts_with(p.as_str())) {
            return Err(NumberError::Blocked {
                number: e164.to_owned(),
                prefix: p.clone(),
            });
        }
        let Some(max) = self.max_rate else {
            return Ok(());
        };
        match self.rate(e164) {
            Some(rate) if rate > max => Err(NumberError::RateTooHigh {
                number: e164.to_owned(),
                rate,
                max,
            }),
            Some(_) => Ok(()),
            None if self.rates.is_empty() => Ok(()),
            None => Err(NumberError::NoRate(e164.to_owned())),
        }
    }

    /// The rate of the longest matching prefix.
    pub fn rate(&self, e164: &str) -> Option<Rate> {
        self.rates
            .iter()
            .filter(|(p, _)| e164.starts_with(p.as_str()))
            .max_by_key(|(p, _)| p.len())
            .map(|(_, r)| *r)
    }
}

/// `+` then 2 to 15 digits, the first not 0 (ITU-T E.164).
pub fn is_e164(n: &str) -> bool {
    n.strip_prefix('+').is_some_and(|d| {
        (2..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us_uk() -> NumberRules {
        NumberRules {
            allowed: vec![
                CountryRule {
                    cc: "1".into(),
                    lengths: vec![10],
                },
                CountryRule {
                    cc: "44".into(),
                    lengths: vec![9, 10],
                },
            ],
            default_country: Some("1".into()),
            blocked: vec!["+1900".into(), "+1976".into()],
            rates: vec![
                ("+1".into(), Rate(10_000)),
                ("+44".into(), Rate(20_000)),
                ("+447".into(), Rate(150_000)),
            ],
            max_rate: Rate::from_decimal(0.05),
        }
    }

    #[test]
    fn normalizes_visual_forms() {
        let r = us_uk();
        for raw in [
            "+1 (555) 123-4567",
            "+1.555.123.4567",
            "tel:+15551234567",
            "tel:+1-555-123-4567;phone-context=x",
            "001 555 123 4567",
            "(555) 123-4567",
            " +15551234567 ",
        ] {
            assert_eq!(r.normalize(raw).unwrap(), "+15551234567", "{raw}");
        }
        // 11 digits without + is taken as international.
        assert_eq!(r.normalize("15551234567").unwrap(), "+15551234567");
    }

    #[test]
    fn refuses_what_is_not_a_number() {
        let r = us_uk();
        assert_eq!(r.normalize(""), Err(NumberError::Empty));
        assert_eq!(r.normalize("   "), Err(NumberError::Empty));
        assert!(matches!(
            r.normalize("+1555abc4567"),
            Err(NumberError::NotANumber(_))
        ));
        assert!(matches!(r.normalize("+0123"), Err(NumberError::NotE164(_))));
        assert!(matches!(r.normalize("+1"), Err(NumberError::NotE164(_))));
        assert!(matches!(
            r.normalize("+1234567890123456"),
            Err(NumberError::NotE164(_))
        ));
        assert!(matches!(
            r.normalize(&"1".repeat(65)),
            Err(NumberError::NotANumber(_))
        ));
    }

    #[test]
    fn country_and_length_rules() {
        let r = us_uk();
        assert!(r.check("+15551234567").is_ok());
        assert!(r.check("+442071234567").is_ok());
        assert!(matches!(
            r.check("+4930123456"),
            Err(NumberError::CountryNotAllowed(_))
        ));
        assert!(matches!(
            r.check("+1555123456"),
            Err(NumberError::BadLength { len: 9, .. })
        ));
        let any = NumberRules::default();
        assert_eq!(any.check("+4930123456").unwrap(), "+4930123456");
    }

    #[test]
    fn blocked_prefixes_and_rates() {
        let r = us_uk();
        let e = r.check("+19005551234").unwrap_err();
        assert!(
            e.is_toll() && matches!(e, NumberError::Blocked { .. }),
            "{e}"
        );
        // UK mobiles (+447) cost 0.15 > 0.05: longest prefix wins over +44.
        let e = r.check("+447700900123").unwrap_err();
        assert!(matches!(e, NumberError::RateTooHigh { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            "+447700900123 costs 0.15 per minute, above the maximum 0.05"
        );
        assert!(r.check("+442071234567").is_ok());
        // With a rate table, a destination it does not cover is refused.
        let mut r2 = us_uk();
        r2.allowed.clear();
        assert!(matches!(
            r2.check("+4930123456"),
            Err(NumberError::NoRate(_))
        ));
        // Without max_rate the table is informative only.
        r2.max_rate = None;
        assert!(r2.check("+4930123456").is_ok());
    }

    #[test]
    fn rates_from_decimals() {
        assert_eq!(Rate::from_decimal(0.012), Some(Rate(12_000)));
        assert_eq!(Rate::from_decimal(-1.0), None);
        assert_eq!(Rate::from_decimal(f64::NAN), None);
        assert_eq!(Rate(1_500_000).to_string(), "1.5");
        assert_eq!(Rate(0).to_string(), "0");
    }
}
