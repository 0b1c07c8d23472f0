//! SDES key exchange for SRTP (RFC 4568): the `a=crypto` attributes of an SDP offer or
//! answer. holdless takes AES_CM_128_HMAC_SHA1_80 and AES_CM_128_HMAC_SHA1_32 (RFC 3711,
//! RFC 4568 §6.2), one inline key without MKI and without session parameters, and answers
//! each SRTP leg with a fresh key of its own. Key material is never printed: `Debug`
//! shows the suite and tag only.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// Master key length of the AES_CM_128 suites, in bytes.
pub const KEY_LEN: usize = 16;
/// Master salt length, in bytes.
pub const SALT_LEN: usize = 14;

/// An SRTP crypto suite holdless speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// AES-128 counter mode, HMAC-SHA1 with an 80-bit tag (the default everywhere).
    AesCm128HmacSha1_80,
    /// The same with a 32-bit tag on SRTP (SRTCP keeps 80 bits).
    AesCm128HmacSha1_32,
}

impl Suite {
    /// Its name in `a=crypto`.
    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// The SRTP authentication tag length, in bytes.
    pub fn srtp_tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 => 4,
        }
    }

    fn parse(name: &str) -> Option<Suite> {
        [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32]
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name))
    }
}

/// One usable `a=crypto` attribute: tag, suite and master key and salt.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Crypto {
    /// The attribute's tag (the answer echoes the chosen offer's tag).
    pub tag: u32,
    /// The suite.
    pub suite: Suite,
    /// Master key.
    pub key: [u8; KEY_LEN],
    /// Master salt.
    pub salt: [u8; SALT_LEN],
}

impl std::fmt::Debug for Crypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crypto")
            .field("tag", &self.tag)
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// Why an `a=crypto` attribute is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// Not `tag suite key-params`.
    #[error("malformed a=crypto: {0}")]
    Malformed(&'static str),
    /// A suite holdless does not speak (AES_256, AEAD_AES_128_GCM, F8...).
    #[error("crypto suite {0} not supported")]
    Suite(String),
    /// More than one key, an MKI, or session parameters (UNENCRYPTED_SRTP...).
    #[error("not supported: {0}")]
    Unsupported(&'static str),
    /// The system's random source gave no key.
    #[error("no random key: the system's random source failed")]
    Random,
}

impl Crypto {
    /// Parses the value of one `a=crypto` attribute (what follows `a=crypto:`).
    pub fn parse(value: &str) -> Result<Crypto, CryptoError> {
        let mut words = value.split_ascii_whitespace();
        let tag = words
            .next()
            .and_then(|t| t.parse::<u32>().ok())
            .filter(|t| *t <= 999_999_999)
            .ok_or(CryptoError::Malformed("tag"))?;
        let suite_name = words.next().ok_or(CryptoError::Malformed("suite"))?;
        let suite =
            Suite::parse(suite_name).ok_or_else(|| CryptoError::Suite(suite_name.into()))?;
        let params = words.next().ok_or(CryptoError::Malformed("key params"))?;
        if words.next().is_some() {
            return Err(CryptoError::Unsupported("session parameters"));
        }
        if params.contains(';') {
            return Err(CryptoError::Unsupported("more than one key"));
        }
        let inline = params
            .strip_prefix("inline:")
            .ok_or(CryptoError::Malformed("key method is not inline"))?;
        let mut parts = inline.split('|');
        let material = parts.next().unwrap_or_default();
        for p in parts {
            if p.contains(':') {
                return Err(CryptoError::Unsupported("MKI"));
            }
            // A lifetime (2^n or decimal) is accepted; holdless rekeys never, and a
            // call outlives no 2^31-packet lifetime.
            let ok = p
                .strip_prefix("2^")
                .map_or_else(|| p.parse::<u64>().is_ok(), |n| n.parse::<u8>().is_ok());
            if !ok {
                return Err(CryptoError::Malformed("lifetime"));
            }
        }
        let raw = STANDARD
            .decode(material)
            .map_err(|_| CryptoError::Malformed("key is not base64"))?;
        if raw.len() != KEY_LEN + SALT_LEN {
            return Err(CryptoError::Malformed("key and salt are not 30 bytes"));
        }
        Ok(Crypto::from_material(tag, suite, &raw))
    }

    /// Key then salt from `raw` (exactly [`KEY_LEN`] + [`SALT_LEN`] bytes).
    pub(crate) fn from_material(tag: u32, suite: Suite, raw: &[u8]) -> Crypto {
        let mut key = [0u8; KEY_LEN];
        let mut salt = [0u8; SALT_LEN];
        key.copy_from_slice(&raw[..KEY_LEN]);
        salt.copy_from_slice(&raw[KEY_LEN..KEY_LEN + SALT_LEN]);
        Crypto {
            tag,
            suite,
            key,
            salt,
        }
    }

    /// A fresh master key and salt from the system's CSPRNG, for `suite` under `tag`.
    pub fn fresh(tag: u32, suite: Suite) -> Result<Crypto, CryptoError> {
        use ring::rand::SecureRandom;
        let mut raw = [0u8; KEY_LEN + SALT_LEN];
        ring::rand::SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| CryptoError::Random)?;
        Ok(Crypto::from_material(tag, suite, &raw))
    }

    /// The attribute's value, for `a=crypto:` in our SDP.
    pub fn to_value(&self) -> String {
        let mut raw = Vec::with_capacity(KEY_LEN + SALT_LEN);
        raw.extend_from_slice(&self.key);
        raw.extend_from_slice(&self.salt);
        format!(
            "{} {} inline:{}",
            self.tag,
            self.suite.name(),
            STANDARD.encode(raw)
        )
    }
}

/// From an offer's `a=crypto` values, the one to accept: the first usable one in the
/// offerer's order of preference (RFC 4568 §7.1.1); `None` if none is usable.
pub fn choose<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<Crypto> {
    offered.into_iter().find_map(|v| Crypto::parse(v).ok())
}

/// The answer to an offer's chosen attribute: the same tag and suite, holdless's own key.
pub fn answer(chosen: &Crypto) -> Result<Crypto, CryptoError> {
    Crypto::fresh(chosen.tag, chosen.suite)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4568 §9.1's example key.
    const EXAMPLE: &str =
        "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4";

    #[test]
    fn inline_keys_parse_and_print_back() {
        let v = "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20";
        let c = Crypto::parse(v).unwrap();
        assert_eq!((c.tag, c.suite), (1, Suite::AesCm128HmacSha1_80));
        assert_eq!(&c.key[..3], b"=-n");
        assert_eq!(
            c.to_value(),
            "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
        );
        let c32 = Crypto::parse(&v.replace("_80", "_32").replace("1 ", "7 ")).unwrap();
        assert_eq!((c32.tag, c32.suite.srtp_tag_len()), (7, 4));
    }

    #[test]
    fn what_holdless_does_not_take_is_refused_with_the_reason() {
        assert_eq!(Crypto::parse(EXAMPLE), Err(CryptoError::Unsupported("MKI")));
        let key = "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
        for (v, want) in [
            (format!("1 AES_256_CM_HMAC_SHA1_80 {key}"), "crypto suite"),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 {key} UNENCRYPTED_SRTP"),
                "session parameters",
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 {key};{key}"),
                "more than one key",
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=".into(),
                "30 bytes",
            ),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:!!!".into(), "base64"),
            ("x AES_CM_128_HMAC_SHA1_80".into(), "tag"),
            (format!("1 AES_CM_128_HMAC_SHA1_80 {key}|2^x"), "lifetime"),
        ] {
            let e = Crypto::parse(&v).unwrap_err().to_string();
            assert!(e.contains(want), "{v}: {e}");
        }
    }

    #[test]
    fn the_first_usable_offer_is_chosen_and_answered_with_a_fresh_key() {
        let offered = [
            "1 AEAD_AES_128_GCM inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
            "2 AES_CM_128_HMAC_SHA1_32 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
            "3 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
        ];
        let chosen = choose(offered).unwrap();
        assert_eq!((chosen.tag, chosen.suite), (2, Suite::AesCm128HmacSha1_32));
        let (a, b) = (answer(&chosen).unwrap(), answer(&chosen).unwrap());
        assert_eq!((a.tag, a.suite), (2, Suite::AesCm128HmacSha1_32));
        assert_ne!(a.key, chosen.key);
        assert_ne!((a.key, a.salt), (b.key, b.salt), "fresh each time");
        assert_eq!(Crypto::parse(&a.to_value()).unwrap(), a);
        assert!(choose(["1 F8_128_HMAC_SHA1_80 inline:x"]).is_none());
    }

    #[test]
    fn key_material_is_never_printed() {
        let c = Crypto::fresh(1, Suite::AesCm128HmacSha1_80).unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains(&STANDARD.encode(c.key)) && !shown.contains("key"),
            "{shown}"
        );
    }
}
