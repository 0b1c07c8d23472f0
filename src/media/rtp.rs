//! RTP (RFC 3550 §5.1) and RTCP (§6.4) header checks and the in-place edits the relay makes.
//! Hand-written header pokes: the relay reads five fields and writes one byte, so a crate
//! adds nothing but a dependency.

/// The fixed RTP header length.
pub const RTP_HEADER: usize = 12;

/// What the relay reads from an RTP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// Payload type (7 bits).
    pub pt: u8,
    /// Sequence number.
    pub seq: u16,
    /// Media timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Where the payload starts (after CSRCs and the header extension).
    pub payload_start: usize,
    /// Where the payload ends (before any padding).
    pub payload_end: usize,
}

/// Parses an RTP header; `None` for anything that is not a well-formed version-2 packet.
pub fn parse_rtp(buf: &[u8]) -> Option<RtpHeader> {
    if buf.len() < RTP_HEADER || buf[0] >> 6 != 2 {
        return None;
    }
    let csrcs = usize::from(buf[0] & 0x0F);
    let mut start = RTP_HEADER + 4 * csrcs;
    if buf[0] & 0x10 != 0 {
        let ext = buf.get(start + 2..start + 4)?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    let mut end = buf.len();
    if buf[0] & 0x20 != 0 {
        let pad = usize::from(*buf.last()?);
        end = end.checked_sub(pad).filter(|_| pad > 0)?;
    }
    if start > end {
        return None;
    }
    Some(RtpHeader {
        pt: buf[1] & 0x7F,
        seq: u16::from_be_bytes([buf[2], buf[3]]),
        timestamp: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
        ssrc: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
        payload_start: start,
        payload_end: end,
    })
}

/// Sets the payload type, keeping the marker bit. `buf` must hold at least 2 bytes.
pub fn set_pt(buf: &mut [u8], pt: u8) {
    if let Some(b) = buf.get_mut(1) {
        *b = (*b & 0x80) | (pt & 0x7F);
    }
}

/// Whether a datagram looks like RTCP: version 2, at least a header, and a first packet
/// type in 192..=223 (the range RFC 5761 §4 reserves so RTP and RTCP can be told apart).
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 8 && buf[0] >> 6 == 2 && (192..=223).contains(&buf[1])
}

/// Builds an RTP packet (tests and benchmarks).
pub fn build_rtp(pt: u8, seq: u16, timestamp: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(RTP_HEADER + payload.len());
    p.push(0x80);
    p.push(pt & 0x7F);
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&timestamp.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_plain_packet() {
        let p = build_rtp(8, 513, 0x01020304, 0xdeadbeef, &[1, 2, 3]);
        let h = parse_rtp(&p).unwrap();
        assert_eq!(
            (h.pt, h.seq, h.timestamp, h.ssrc),
            (8, 513, 0x01020304, 0xdeadbeef)
        );
        assert_eq!(&p[h.payload_start..h.payload_end], &[1, 2, 3]);
    }

    #[test]
    fn skips_csrcs_extension_and_padding() {
        let mut p = build_rtp(0, 1, 2, 3, &[]);
        p[0] |= 0x01 | 0x10 | 0x20; // one CSRC, an extension, padding
        p.extend_from_slice(&[0, 0, 0, 9]); // CSRC
        p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 1, 2, 3, 4]); // extension of 1 word
        p.extend_from_slice(&[7, 7]); // payload
        p.extend_from_slice(&[0, 0, 3]); // 3 bytes of padding
        let h = parse_rtp(&p).unwrap();
        assert_eq!(&p[h.payload_start..h.payload_end], &[7, 7]);
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse_rtp(&[0x80; 11]), None);
        assert_eq!(parse_rtp(&[0x40; 20]), None, "version 1");
        let mut p = build_rtp(0, 1, 2, 3, &[]);
        p[0] |= 0x0F; // 15 CSRCs that are not there
        assert_eq!(parse_rtp(&p), None);
        let mut p = build_rtp(0, 1, 2, 3, &[1]);
        p[0] |= 0x20;
        *p.last_mut().unwrap() = 200; // more padding than packet
        assert_eq!(parse_rtp(&p), None);
        *p.last_mut().unwrap() = 0; // zero padding count is invalid
        assert_eq!(parse_rtp(&p), None);
        let mut p = build_rtp(0, 1, 2, 3, &[]);
        p[0] |= 0x10; // extension header missing
        assert_eq!(parse_rtp(&p), None);
    }

    #[test]
    fn pt_rewrite_keeps_the_marker() {
        let mut p = build_rtp(101, 1, 2, 3, &[]);
        p[1] |= 0x80;
        set_pt(&mut p, 96);
        assert_eq!(p[1], 0x80 | 96);
    }

    #[test]
    fn rtcp_is_told_apart_from_rtp() {
        let rr = [0x80, 201, 0, 1, 0, 0, 0, 1];
        assert!(is_rtcp(&rr));
        assert!(!is_rtcp(&build_rtp(8, 1, 2, 3, &[0; 160])));
        assert!(!is_rtcp(&rr[..4]));
    }
}
