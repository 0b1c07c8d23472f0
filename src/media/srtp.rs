//! SRTP on one leg (RFC 3711): the leg's two keys from SDES ([`super::sdes`]), the
//! peer's for what it sends us, ours for what we send it; RTP and RTCP protected and
//! unprotected with the rollover counter kept across sequence wraps and a replay window
//! on what comes in. Sans-IO: bytes in, bytes out.

use rtc_srtp::context::Context;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;

use super::sdes::{Crypto, Suite};

/// Packets accepted out of order behind the newest one (libsrtp's default window).
pub const REPLAY_WINDOW: usize = 128;

/// Media security a leg must have: per call target (the legs facing the contact center)
/// and per trunk (the legs sent through it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SrtpPolicy {
    /// Plain RTP only: an offer of SRTP alone is refused (488).
    Off,
    /// SRTP when the side offers it, plain RTP when it does not; holdless's own offers
    /// are plain.
    #[default]
    Optional,
    /// SRTP only: a plain offer is refused (488); holdless's own offers are SRTP.
    Required,
}

impl SrtpPolicy {
    /// Its name in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            SrtpPolicy::Off => "off",
            SrtpPolicy::Optional => "optional",
            SrtpPolicy::Required => "required",
        }
    }
}

/// The two SDES keys of an SRTP leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegKeys {
    /// The peer's key: what it sends us is protected with it.
    pub theirs: Crypto,
    /// holdless's key: what we send the peer.
    pub ours: Crypto,
}

/// Why a packet was not protected or unprotected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SRTP: {0}")]
pub struct SrtpError(String);

fn profile(s: Suite) -> ProtectionProfile {
    match s {
        Suite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        Suite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
    }
}

fn context(c: &Crypto, replay: bool) -> Result<Context, SrtpError> {
    let provider = rtc_srtp::crypto::default_provider().map_err(|e| SrtpError(e.to_string()))?;
    let (rtp, rtcp) = if replay {
        (
            Some(srtp_replay_protection(REPLAY_WINDOW)),
            Some(srtcp_replay_protection(REPLAY_WINDOW)),
        )
    } else {
        (None, None)
    };
    Context::new(
        &c.key,
        &c.salt,
        profile(c.suite),
        rtp,
        rtcp,
        provider.crypto(),
    )
    .map_err(|e| SrtpError(e.to_string()))
}

/// One leg's SRTP state: what it receives (the peer's key) and what it sends (ours).
pub struct SrtpLeg {
    keys: LegKeys,
    inbound: Context,
    outbound: Context,
}

impl std::fmt::Debug for SrtpLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpLeg").finish_non_exhaustive()
    }
}

impl SrtpLeg {
    /// A leg whose peer sends with `theirs` and receives what we send with `ours`.
    pub fn new(theirs: &Crypto, ours: &Crypto) -> Result<SrtpLeg, SrtpError> {
        Ok(SrtpLeg {
            keys: LegKeys {
                theirs: *theirs,
                ours: *ours,
            },
            inbound: context(theirs, true)?,
            outbound: context(ours, false)?,
        })
    }

    /// A leg with these keys.
    pub fn with_keys(keys: &LegKeys) -> Result<SrtpLeg, SrtpError> {
        SrtpLeg::new(&keys.theirs, &keys.ours)
    }

    /// Its keys (to tell whether a new negotiation changed them).
    pub fn keys(&self) -> &LegKeys {
        &self.keys
    }

    /// Unprotects the packet in `buf[..len]` in place (RTP, or RTCP when `rtcp`); returns
    /// the plain length.
    pub fn unprotect_in_place(
        &mut self,
        rtcp: bool,
        buf: &mut [u8],
        len: usize,
    ) -> Result<usize, SrtpError> {
        self.in_place(Way::Unprotect, rtcp, buf, len)
    }

    /// Protects the packet in `buf[..len]` in place (RTP, or RTCP when `rtcp`); returns
    /// the protected length, or an error when `buf` has no room for the tag.
    pub fn protect_in_place(
        &mut self,
        rtcp: bool,
        buf: &mut [u8],
        len: usize,
    ) -> Result<usize, SrtpError> {
        self.in_place(Way::Protect, rtcp, buf, len)
    }

    fn in_place(
        &mut self,
        way: Way,
        rtcp: bool,
        buf: &mut [u8],
        len: usize,
    ) -> Result<usize, SrtpError> {
        let packet = buf
            .get(..len)
            .ok_or_else(|| SrtpError("short buffer".into()))?;
        let out = self.transform(way, rtcp, packet)?;
        copy_back(&out, buf)
    }

    /// An SRTP packet from the peer, checked (tag, replay) and decrypted to RTP.
    pub fn unprotect_rtp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        self.transform(Way::Unprotect, false, packet)
    }

    /// An RTP packet for the peer, encrypted and tagged.
    pub fn protect_rtp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        self.transform(Way::Protect, false, packet)
    }

    /// An SRTCP packet from the peer, to RTCP.
    pub fn unprotect_rtcp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        self.transform(Way::Unprotect, true, packet)
    }

    /// An RTCP packet for the peer, to SRTCP.
    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        self.transform(Way::Protect, true, packet)
    }

    fn transform(&mut self, way: Way, rtcp: bool, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let out = match (way, rtcp) {
            (Way::Unprotect, false) => self.inbound.decrypt_rtp(packet),
            (Way::Protect, false) => {
                let header = rtp_header(packet)?;
                self.outbound.encrypt_rtp_with_header(packet, &header)
            }
            (Way::Unprotect, true) => self.inbound.decrypt_rtcp(packet),
            (Way::Protect, true) => self.outbound.encrypt_rtcp(packet),
        };
        out.map(|b| b.to_vec())
            .map_err(|e| SrtpError(e.to_string()))
    }
}

/// The RTP header of a packet to protect, refused unless it prints back to exactly the bytes
/// it was read from: the cipher starts at the printed size, so a header that prints longer
/// (a malformed extension) would run past the packet, and one that prints shorter would
/// encrypt part of the header.
fn rtp_header(packet: &[u8]) -> Result<rtc_rtp::header::Header, SrtpError> {
    use rtc_shared::marshal::{MarshalSize, Unmarshal};
    let mut rest = packet;
    let header = rtc_rtp::header::Header::unmarshal(&mut rest)
        .map_err(|e| SrtpError(format!("RTP header: {e}")))?;
    let read = packet.len() - rest.len();
    if header.marshal_size() != read {
        return Err(SrtpError(format!(
            "RTP header of {read} bytes prints as {}",
            header.marshal_size()
        )));
    }
    Ok(header)
}

/// Which way a packet goes through a leg.
#[derive(Debug, Clone, Copy)]
enum Way {
    /// From the peer: checked and decrypted.
    Unprotect,
    /// To the peer: encrypted and tagged.
    Protect,
}

fn copy_back(out: &[u8], buf: &mut [u8]) -> Result<usize, SrtpError> {
    let dst = buf
        .get_mut(..out.len())
        .ok_or_else(|| SrtpError(format!("no room for {} bytes", out.len())))?;
    dst.copy_from_slice(out);
    Ok(out.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 0x00];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    /// Two ends of one SRTP leg: holdless and the peer, keys crossed.
    fn pair(suite: Suite) -> (SrtpLeg, SrtpLeg) {
        let a = Crypto::fresh(1, suite).unwrap();
        let b = Crypto::fresh(1, suite).unwrap();
        (SrtpLeg::new(&a, &b).unwrap(), SrtpLeg::new(&b, &a).unwrap())
    }

    #[test]
    fn both_suites_round_trip_with_their_tag_lengths() {
        for suite in [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32] {
            let (mut us, mut peer) = pair(suite);
            let plain = rtp(1, 160, &[0xd5; 160]);
            let wire = us.protect_rtp(&plain).unwrap();
            assert_eq!(wire.len(), plain.len() + suite.srtp_tag_len(), "{suite:?}");
            assert_eq!(&wire[..12], &plain[..12], "the header stays clear");
            assert_ne!(&wire[12..172], &plain[12..], "the payload does not");
            assert_eq!(peer.unprotect_rtp(&wire).unwrap(), plain);
            let back = peer.protect_rtp(&rtp(9, 0, b"hello")).unwrap();
            assert_eq!(us.unprotect_rtp(&back).unwrap(), rtp(9, 0, b"hello"));
        }
    }

    #[test]
    fn tampered_and_replayed_packets_are_refused() {
        let (mut us, mut peer) = pair(Suite::AesCm128HmacSha1_80);
        let wire = peer.protect_rtp(&rtp(7, 0, &[1; 20])).unwrap();
        let mut bad = wire.clone();
        bad[15] ^= 1;
        assert!(us.unprotect_rtp(&bad).is_err(), "tag check");
        assert!(us.unprotect_rtp(&wire).is_ok());
        assert!(us.unprotect_rtp(&wire).is_err(), "replay");
        // A packet with another key does not pass either.
        let (_, mut stranger) = pair(Suite::AesCm128HmacSha1_80);
        let foreign = stranger.protect_rtp(&rtp(8, 0, &[1; 20])).unwrap();
        assert!(us.unprotect_rtp(&foreign).is_err());
    }

    #[test]
    fn the_rollover_counter_carries_across_the_sequence_wrap() {
        let (mut us, mut peer) = pair(Suite::AesCm128HmacSha1_80);
        for seq in (65_530u16..=65_535).chain(0..10) {
            let plain = rtp(seq, u32::from(seq) * 160, &[seq as u8; 32]);
            let wire = peer.protect_rtp(&plain).unwrap();
            assert_eq!(us.unprotect_rtp(&wire).unwrap(), plain, "seq {seq}");
        }
    }

    #[test]
    fn rtcp_round_trips_as_srtcp() {
        let (mut us, mut peer) = pair(Suite::AesCm128HmacSha1_32);
        // A receiver report with no blocks: V=2, PT=201, length 1, SSRC.
        let rr = [0x80, 201, 0, 1, 0x12, 0x34, 0x56, 0x78];
        let wire = peer.protect_rtcp(&rr).unwrap();
        assert_eq!(wire.len(), rr.len() + 4 + 10, "E+index, then an 80-bit tag");
        assert_eq!(us.unprotect_rtcp(&wire).unwrap(), rr);
        assert!(us.unprotect_rtcp(&wire).is_err(), "replay");
    }

    /// libsrtp's known answers (`srtp_validate` in libsrtp's test driver): the default
    /// policy's key and salt, SSRC 0xcafebabe, sequence 0x1234, ROC 0; the _32 suite's
    /// packet is the same with a 4-byte tag; SRTCP index 1 with the E bit.
    #[test]
    fn libsrtp_reference_vectors() {
        let material = [
            0xe1, 0xf9, 0x7a, 0x0d, 0x3e, 0x01, 0x8b, 0xe0, 0xd6, 0x4f, 0xa3, 0x2c, 0x06, 0xde,
            0x41, 0x39, 0x0e, 0xc6, 0x75, 0xad, 0x49, 0x8a, 0xfe, 0xeb, 0xb6, 0x96, 0x0b, 0x3a,
            0xab, 0xe6,
        ];
        let mut rtp = vec![
            0x80, 0x0f, 0x12, 0x34, 0xde, 0xca, 0xfb, 0xad, 0xca, 0xfe, 0xba, 0xbe,
        ];
        rtp.extend_from_slice(&[0xab; 16]);
        let srtp: [u8; 38] = [
            0x80, 0x0f, 0x12, 0x34, 0xde, 0xca, 0xfb, 0xad, 0xca, 0xfe, 0xba, 0xbe, 0x4e, 0x55,
            0xdc, 0x4c, 0xe7, 0x99, 0x78, 0xd8, 0x8c, 0xa4, 0xd2, 0x15, 0x94, 0x9d, 0x24, 0x02,
            0xb7, 0x8d, 0x6a, 0xcc, 0x99, 0xea, 0x17, 0x9b, 0x8d, 0xbb,
        ];
        let mut rtcp = vec![0x81, 0xc8, 0x00, 0x0b, 0xca, 0xfe, 0xba, 0xbe];
        rtcp.extend_from_slice(&[0xab; 16]);
        let srtcp: [u8; 38] = [
            0x81, 0xc8, 0x00, 0x0b, 0xca, 0xfe, 0xba, 0xbe, 0x71, 0x28, 0x03, 0x5b, 0xe4, 0x87,
            0xb9, 0xbd, 0xbe, 0xf8, 0x90, 0x41, 0xf9, 0x77, 0xa5, 0xa8, 0x80, 0x00, 0x00, 0x01,
            0x99, 0x3e, 0x08, 0xcd, 0x54, 0xd6, 0xc1, 0x23, 0x07, 0x98,
        ];
        for (suite, tag) in [
            (Suite::AesCm128HmacSha1_80, 10),
            (Suite::AesCm128HmacSha1_32, 4),
        ] {
            let k = Crypto::from_material(1, suite, &material);
            let mut sender = SrtpLeg::new(&k, &k).unwrap();
            let mut receiver = SrtpLeg::new(&k, &k).unwrap();
            let wire = sender.protect_rtp(&rtp).unwrap();
            assert_eq!(wire, &srtp[..28 + tag], "{suite:?}");
            assert_eq!(receiver.unprotect_rtp(&wire).unwrap(), rtp);
            let wire = sender.protect_rtcp(&rtcp).unwrap();
            assert_eq!(wire, srtcp, "SRTCP keeps the 80-bit tag ({suite:?})");
            assert_eq!(receiver.unprotect_rtcp(&wire).unwrap(), rtcp);
        }
    }
}
