//! SDP (RFC 4566) as holdless reads it: the one audio stream it relays (PCMU, PCMA and
//! RFC 4733 telephone-event over RTP/AVP), where that stream's RTP and RTCP go, its direction,
//! and its payload types. Parsing and writing use `sdp-types` (faithful line order); every
//! address it keeps as a string is checked here. [`write`] builds the SDP holdless sends.

pub mod write;

use std::net::{IpAddr, SocketAddr};

use sdp_types::{AddrType, Connection, Media, NetType, Session};

use super::MediaError;

pub use sdp_types::Session as SdpSession;

/// Largest SDP body accepted: a two-stream audio/video offer with ICE is ~3 KB; 16 KB leaves
/// room for anything reasonable and bounds the parse.
pub const MAX_SDP_BYTES: usize = 16 * 1024;
/// Most `m=` lines accepted in one SDP (each is parsed and rewritten).
pub const MAX_MEDIA_LINES: usize = 16;

/// A codec holdless relays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
    /// RFC 4733 DTMF events, a dynamic payload type.
    TelephoneEvent,
}

impl Codec {
    /// The `a=rtpmap` encoding, e.g. `PCMU/8000`.
    pub fn rtpmap(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU/8000",
            Codec::Pcma => "PCMA/8000",
            Codec::TelephoneEvent => "telephone-event/8000",
        }
    }

    /// The static payload type (RFC 3551), if the codec has one.
    pub fn static_pt(self) -> Option<u8> {
        match self {
            Codec::Pcmu => Some(0),
            Codec::Pcma => Some(8),
            Codec::TelephoneEvent => None,
        }
    }

    /// Whether this is audio (G.711) rather than events.
    pub fn is_audio(self) -> bool {
        self != Codec::TelephoneEvent
    }

    /// The other G.711 law, the one holdless can transcode this one to.
    pub fn other_law(self) -> Option<Codec> {
        match self {
            Codec::Pcmu => Some(Codec::Pcma),
            Codec::Pcma => Some(Codec::Pcmu),
            Codec::TelephoneEvent => None,
        }
    }

    fn from_rtpmap(value: &str) -> Option<Codec> {
        let mut parts = value.split('/');
        let name = parts.next()?.trim();
        if parts.next()?.trim() != "8000" {
            return None;
        }
        if parts.next().is_some_and(|ch| ch.trim() != "1") {
            return None;
        }
        [Codec::Pcmu, Codec::Pcma, Codec::TelephoneEvent]
            .into_iter()
            .find(|c| eq_name(*c, name))
    }
}

fn eq_name(c: Codec, name: &str) -> bool {
    c.rtpmap()
        .split('/')
        .next()
        .is_some_and(|n| n.eq_ignore_ascii_case(name))
}

/// A codec under a payload type number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    /// The codec.
    pub codec: Codec,
    /// Its payload type in this SDP.
    pub pt: u8,
}

/// The SDP direction attribute (RFC 3264 §5.1), from the writer's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Sends and receives (the default).
    #[default]
    SendRecv,
    /// Sends only (putting the other side on hold).
    SendOnly,
    /// Receives only.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    /// From send and receive flags.
    pub fn from_flags(sends: bool, receives: bool) -> Direction {
        match (sends, receives) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// Whether the writer sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the writer receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The answer's direction for an offer in this direction, given what the answerer
    /// itself is willing to do (RFC 3264 §6.1: a sendonly offer gets recvonly, and so on).
    pub fn answer_to(self, willing: Direction) -> Direction {
        Direction::from_flags(
            willing.sends() && self.receives(),
            willing.receives() && self.sends(),
        )
    }

    fn parse(name: &str) -> Option<Direction> {
        [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ]
        .into_iter()
        .find(|d| d.as_str().eq_ignore_ascii_case(name))
    }
}

/// The relayed audio stream of one SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioStream {
    /// Index of its `m=` line.
    pub index: usize,
    /// The connection address (`None` for the RFC 2543 hold address 0.0.0.0 / `::`).
    pub ip: Option<IpAddr>,
    /// Where the writer receives RTP (`None` on hold by address or port 0).
    pub rtp: Option<SocketAddr>,
    /// Where the writer receives RTCP (`a=rtcp`, else the RTP port + 1).
    pub rtcp: Option<SocketAddr>,
    /// The direction, the RFC 2543 hold address already folded in (it means "do not send
    /// to me").
    pub direction: Direction,
    /// The codecs holdless knows, in `m=` order.
    pub formats: Vec<Format>,
    /// The `a=fmtp` of telephone-event (the events it takes, e.g. `0-16`).
    pub events_fmtp: Option<String>,
    /// SRTP: the `m=` line's protocol is RTP/SAVP (or RTP/SAVPF).
    pub secure: bool,
    /// Its `a=crypto` values (RFC 4568), in order (usable or not).
    pub crypto: Vec<String>,
}

impl AudioStream {
    /// The payload type of a codec in this stream.
    pub fn pt_of(&self, codec: Codec) -> Option<u8> {
        self.formats.iter().find(|f| f.codec == codec).map(|f| f.pt)
    }

    /// The G.711 codecs, in preference order.
    pub fn audio_codecs(&self) -> impl Iterator<Item = Codec> + '_ {
        self.formats
            .iter()
            .map(|f| f.codec)
            .filter(|c| c.is_audio())
    }
}

/// Parses an SDP body.
pub fn parse(body: &[u8]) -> Result<Session, MediaError> {
    if body.len() > MAX_SDP_BYTES {
        return Err(malformed(format!(
            "SDP of {} bytes is over the {MAX_SDP_BYTES}-byte limit",
            body.len()
        )));
    }
    let session = Session::parse(body).map_err(|e| malformed(e.to_string()))?;
    if session.medias.len() > MAX_MEDIA_LINES {
        return Err(malformed(format!(
            "{} m= lines, at most {MAX_MEDIA_LINES} accepted",
            session.medias.len()
        )));
    }
    Ok(session)
}

/// The audio stream holdless relays in an offer: the first `m=audio` RTP/AVP(F) line with a
/// port and a G.711 codec.
pub fn offered_audio(session: &Session) -> Result<AudioStream, MediaError> {
    let mut why = "no audio stream".to_owned();
    for (index, m) in session.medias.iter().enumerate() {
        if !m.media.eq_ignore_ascii_case("audio") || m.port == 0 {
            continue;
        }
        if !is_rtp(m) {
            why = format!(
                "audio over {} is not relayed (RTP/AVP and RTP/SAVP only)",
                m.proto
            );
            continue;
        }
        let stream = audio_stream(session, index)?;
        if stream.audio_codecs().next().is_some() {
            return Ok(stream);
        }
        why = format!(
            "audio offers formats {:?}; holdless relays PCMU and PCMA",
            m.fmt
        );
    }
    Err(MediaError::NoCommonCodec(why))
}

/// The answer's stream at the offered audio index: `None` if the answerer rejected it
/// (port 0).
pub fn answered_audio(session: &Session, index: usize) -> Result<Option<AudioStream>, MediaError> {
    let m = session
        .medias
        .get(index)
        .ok_or_else(|| malformed("the answer has fewer m= lines than the offer".into()))?;
    if m.port == 0 {
        return Ok(None);
    }
    if !m.media.eq_ignore_ascii_case("audio") || !is_rtp(m) {
        return Err(malformed(format!(
            "m= line {index} of the answer is {} {}, the offer had RTP audio",
            m.media, m.proto
        )));
    }
    let stream = audio_stream(session, index)?;
    if stream.audio_codecs().next().is_none() {
        return Err(MediaError::NoCommonCodec(format!(
            "the answer accepted none of PCMU and PCMA ({:?})",
            m.fmt
        )));
    }
    Ok(Some(stream))
}

/// RTP, plain or SRTP, with or without the feedback profile.
fn is_rtp(m: &Media) -> bool {
    ["RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF"]
        .iter()
        .any(|p| m.proto.eq_ignore_ascii_case(p))
}

/// SRTP (RFC 3711 §12: RTP/SAVP; RFC 5124: RTP/SAVPF).
fn is_srtp(m: &Media) -> bool {
    m.proto.eq_ignore_ascii_case("RTP/SAVP") || m.proto.eq_ignore_ascii_case("RTP/SAVPF")
}

fn malformed(why: String) -> MediaError {
    MediaError::MalformedSdp(why)
}

/// Reads the stream at `index`, which the caller checked is RTP audio with a port.
fn audio_stream(session: &Session, index: usize) -> Result<AudioStream, MediaError> {
    let m = &session.medias[index];
    let conn = m
        .connections
        .first()
        .or(session.connection.as_ref())
        .ok_or_else(|| malformed(format!("no c= line for m= line {index}")))?;
    let ip = connection_ip(conn)?;
    let mut direction = media_direction(session, m);
    if ip.is_unspecified() {
        // RFC 2543 hold: "do not send to me"; the writer may still send.
        direction = Direction::from_flags(direction.sends(), false);
    }
    let real_ip = (!ip.is_unspecified()).then_some(ip);
    let rtp = real_ip.map(|ip| SocketAddr::new(ip, m.port));
    let rtcp = match rtcp_attribute(m)? {
        Some((port, Some(rip))) => Some(SocketAddr::new(rip, port)),
        Some((port, None)) => real_ip.map(|ip| SocketAddr::new(ip, port)),
        None => real_ip.map(|ip| SocketAddr::new(ip, m.port.wrapping_add(1).max(1))),
    };
    let (formats, events_fmtp) = formats(m)?;
    let crypto = m
        .attributes
        .iter()
        .filter(|a| a.attribute.eq_ignore_ascii_case("crypto"))
        .filter_map(|a| a.value.clone())
        .collect();
    Ok(AudioStream {
        index,
        ip: real_ip,
        rtp,
        rtcp,
        direction,
        formats,
        events_fmtp,
        secure: is_srtp(m),
        crypto,
    })
}

/// A unicast IN IP4/IP6 address whose type matches `addrtype`.
pub fn connection_ip(conn: &Connection) -> Result<IpAddr, MediaError> {
    if conn.nettype != NetType::In {
        return Err(malformed(format!(
            "c= network type {} (only IN)",
            conn.nettype.as_str()
        )));
    }
    let addr = conn
        .try_address()
        .map_err(|e| malformed(format!("c= {e}")))?;
    let ok = matches!(
        (&conn.addrtype, addr.ip),
        (AddrType::Ip4, IpAddr::V4(_)) | (AddrType::Ip6, IpAddr::V6(_))
    );
    if !ok {
        return Err(malformed(format!(
            "c= address {} is not of type {}",
            conn.connection_address,
            conn.addrtype.as_str()
        )));
    }
    if addr.ip.is_multicast() || addr.ttl.is_some() || addr.count.is_some() {
        return Err(malformed(format!(
            "c= multicast address {} (unicast only)",
            conn.connection_address
        )));
    }
    Ok(addr.ip)
}

fn media_direction(session: &Session, m: &Media) -> Direction {
    let find =
        |attrs: &[sdp_types::Attribute]| attrs.iter().find_map(|a| Direction::parse(&a.attribute));
    find(&m.attributes)
        .or_else(|| find(&session.attributes))
        .unwrap_or_default()
}

/// `a=rtcp:port [IN IP4 addr]` (RFC 3605).
fn rtcp_attribute(m: &Media) -> Result<Option<(u16, Option<IpAddr>)>, MediaError> {
    let Some(value) = m.get_first_attribute_value("rtcp") else {
        return Ok(None);
    };
    let bad = || malformed(format!("a=rtcp:{}", value.unwrap_or_default()));
    let mut parts = value.ok_or_else(bad)?.split_ascii_whitespace();
    let port = parts
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|p| *p != 0)
        .ok_or_else(bad)?;
    let ip = match (parts.next(), parts.next(), parts.next()) {
        (None, ..) => None,
        (Some(net), Some(addrtype), Some(addr)) => {
            let conn = Connection::new(NetType::from(net), AddrType::new(addrtype), addr);
            Some(connection_ip(&conn)?).filter(|ip| !ip.is_unspecified())
        }
        _ => return Err(bad()),
    };
    Ok(Some((port, ip)))
}

/// The known formats of an RTP `m=` line, and telephone-event's fmtp.
fn formats(m: &Media) -> Result<(Vec<Format>, Option<String>), MediaError> {
    let mut out = Vec::new();
    for token in m.fmt.split_ascii_whitespace() {
        let pt = token
            .parse::<u8>()
            .ok()
            .filter(|pt| *pt < 128)
            .ok_or_else(|| malformed(format!("payload type {token:?} in m=audio")))?;
        let codec = match rtpmap_of(m, pt) {
            Some(enc) => Codec::from_rtpmap(enc),
            None => [Codec::Pcmu, Codec::Pcma]
                .into_iter()
                .find(|c| c.static_pt() == Some(pt)),
        };
        if let Some(codec) = codec {
            if !out.iter().any(|f: &Format| f.codec == codec) {
                out.push(Format { codec, pt });
            }
        }
    }
    let fmtp = out
        .iter()
        .find(|f| f.codec == Codec::TelephoneEvent)
        .and_then(|f| fmtp_of(m, f.pt))
        .map(str::to_owned);
    Ok((out, fmtp))
}

/// The encoding of `a=rtpmap:<pt> <encoding>`.
pub fn rtpmap_of(m: &Media, pt: u8) -> Option<&str> {
    attr_for_pt(m, "rtpmap", pt)
}

/// The parameters of `a=fmtp:<pt> <params>`.
pub fn fmtp_of(m: &Media, pt: u8) -> Option<&str> {
    attr_for_pt(m, "fmtp", pt)
}

fn attr_for_pt<'a>(m: &'a Media, name: &'a str, pt: u8) -> Option<&'a str> {
    m.get_attribute_values(name).flatten().find_map(|v| {
        let (n, rest) = v.split_once(' ')?;
        (n.trim().parse::<u8>().ok()? == pt).then_some(rest.trim())
    })
}

/// The payload type an `a=rtpmap` / `a=fmtp` value is about.
pub fn pt_of_attribute(value: &str) -> Option<u8> {
    value.split(' ').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdp(body: &str) -> Session {
        parse(body.replace('\n', "\r\n").as_bytes()).unwrap()
    }

    const TWILIO: &str = "v=0
o=root 1185414872 1185414872 IN IP4 127.0.0.18
s=Twilio Media Gateway
c=IN IP4 127.0.0.86
t=0 0
m=audio 19534 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=maxptime:20
a=sendrecv
";

    #[test]
    fn reads_a_twilio_offer() {
        let a = offered_audio(&sdp(TWILIO)).unwrap();
        assert_eq!(a.rtp, Some("127.0.0.86:19534".parse().unwrap()));
        assert_eq!(a.rtcp, Some("127.0.0.86:19535".parse().unwrap()));
        assert_eq!(a.direction, Direction::SendRecv);
        assert_eq!(a.pt_of(Codec::TelephoneEvent), Some(101));
        assert_eq!(
            a.audio_codecs().collect::<Vec<_>>(),
            [Codec::Pcmu, Codec::Pcma]
        );
        assert_eq!(a.events_fmtp.as_deref(), Some("0-16"));
    }

    #[test]
    fn media_level_c_and_rtcp_and_ipv6() {
        let s = sdp(
            "v=0\no=- 1 1 IN IP6 ::1\ns=-\nt=0 0\nm=audio 4000 RTP/AVP 8\n\
                     c=IN IP6 ::1\na=rtcp:4100 IN IP6 ::2\na=recvonly\n",
        );
        let a = offered_audio(&s).unwrap();
        assert_eq!(a.rtp, Some("[::1]:4000".parse().unwrap()));
        assert_eq!(a.rtcp, Some("[::2]:4100".parse().unwrap()));
        assert_eq!(a.direction, Direction::RecvOnly);
        assert_eq!(
            a.formats,
            [Format {
                codec: Codec::Pcma,
                pt: 8
            }]
        );
    }

    #[test]
    fn the_old_hold_address_means_do_not_send_to_me() {
        let s = sdp(&TWILIO.replace("c=IN IP4 127.0.0.86", "c=IN IP4 0.0.0.0"));
        let a = offered_audio(&s).unwrap();
        assert_eq!((a.rtp, a.ip), (None, None));
        assert_eq!(a.direction, Direction::SendOnly);
    }

    #[test]
    fn addresses_are_validated() {
        for c in [
            "c=IN IP4 10.20.30.400",
            "c=IN IP4 ::1",
            "c=IN IP6 127.0.0.1",
            "c=IN IP4 media.example.com",
            "c=IN IP4 224.2.1.1/127",
            "c=ATM NSAP 47.0091",
        ] {
            let s = sdp(&TWILIO.replace("c=IN IP4 127.0.0.86", c));
            assert!(
                matches!(offered_audio(&s), Err(MediaError::MalformedSdp(_))),
                "{c}"
            );
        }
        let s = sdp(&TWILIO.replace("c=IN IP4 127.0.0.86\n", ""));
        assert!(matches!(
            offered_audio(&s),
            Err(MediaError::MalformedSdp(_))
        ));
        let s = sdp(&TWILIO.replace("a=sendrecv", "a=rtcp:0"));
        assert!(matches!(
            offered_audio(&s),
            Err(MediaError::MalformedSdp(_))
        ));
    }

    #[test]
    fn no_g711_is_no_common_codec() {
        let s = sdp(&TWILIO.replace("RTP/AVP 0 8 101", "RTP/AVP 18 101"));
        assert!(matches!(
            offered_audio(&s),
            Err(MediaError::NoCommonCodec(_))
        ));
        // DTLS-SRTP (WebRTC) is not relayed; SDES SRTP is (the negotiation's tests).
        let s = sdp(&TWILIO.replace("RTP/AVP", "UDP/TLS/RTP/SAVPF"));
        assert!(matches!(
            offered_audio(&s),
            Err(MediaError::NoCommonCodec(_))
        ));
        let s = sdp(&TWILIO.replace("RTP/AVP", "RTP/SAVP"));
        let srtp = offered_audio(&s).unwrap();
        assert!(srtp.secure);
        let s = sdp(&TWILIO.replace("m=audio", "m=video"));
        assert!(matches!(
            offered_audio(&s),
            Err(MediaError::NoCommonCodec(_))
        ));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for body in [
            &b""[..],
            b"hello",
            b"v=0\r\nm=audio x RTP/AVP 0\r\n",
            b"v=1\r\n",
            &[0xff, 0xfe, 0x00][..],
        ] {
            assert!(parse(body).is_err(), "{body:?}");
        }
        let s = sdp(&TWILIO.replace("0 8 101", "0 8 300"));
        assert!(matches!(
            offered_audio(&s),
            Err(MediaError::MalformedSdp(_))
        ));
        assert!(parse(&vec![b'a'; MAX_SDP_BYTES + 1]).is_err());
    }

    #[test]
    fn directions_answer_per_rfc3264() {
        use Direction::*;
        assert_eq!(SendOnly.answer_to(SendRecv), RecvOnly);
        assert_eq!(RecvOnly.answer_to(SendRecv), SendOnly);
        assert_eq!(Inactive.answer_to(SendRecv), Inactive);
        assert_eq!(SendRecv.answer_to(SendRecv), SendRecv);
        assert_eq!(SendRecv.answer_to(RecvOnly), RecvOnly);
        assert_eq!(SendOnly.answer_to(SendOnly), Inactive);
    }

    #[test]
    fn rtpmap_names_are_case_insensitive_and_rates_checked() {
        let s = sdp(&TWILIO
            .replace("PCMU/8000", "pcmu/8000")
            .replace("telephone-event/8000", "telephone-event/48000"));
        let a = offered_audio(&s).unwrap();
        assert_eq!(
            a.audio_codecs().collect::<Vec<_>>(),
            [Codec::Pcmu, Codec::Pcma]
        );
        assert_eq!(a.pt_of(Codec::TelephoneEvent), None);
    }
}
