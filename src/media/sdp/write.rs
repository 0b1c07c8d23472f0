//! Builds the SDP holdless sends to one side from the SDP the other side sent: holdless's own
//! `o=`, its address in every `c=`, its port and codec list on the relayed audio stream, and
//! port 0 on every other stream. Everything else (session name, `b=`, `a=ptime`, unknown
//! attributes) passes through in order.

use std::net::IpAddr;

use bytes::Bytes;
use sdp_types::{Attribute, Connection, Media, NetType, Origin, Session};

use super::{Direction, Format};
use crate::media::sdes::Crypto;

/// Attributes that describe the peer's own transport, meaningless once holdless is in the
/// path: ICE (RFC 8839), DTLS-SRTP (RFC 8842), SDES keys (RFC 4568) and RTCP multiplexing
/// (RFC 5761, holdless uses a separate RTCP port).
const PEER_TRANSPORT_ATTRIBUTES: &[&str] = &[
    "candidate",
    "remote-candidates",
    "end-of-candidates",
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "ice-lite",
    "ice-mismatch",
    "crypto",
    "fingerprint",
    "setup",
    "rtcp-mux",
    "rtcp-rsize",
];

/// How to rewrite one SDP.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    /// holdless's `o=` session id toward this side.
    pub sess_id: u64,
    /// holdless's `o=` version toward this side.
    pub version: u64,
    /// holdless's media address.
    pub address: IpAddr,
    /// Index of the relayed audio `m=` line.
    pub audio_index: usize,
    /// The relayed stream as holdless offers or answers it; `None` writes it with port 0.
    pub audio: Option<AudioPlan<'a>>,
}

/// The relayed audio stream as holdless writes it.
#[derive(Debug, Clone)]
pub struct AudioPlan<'a> {
    /// holdless's RTP port (RTCP is the next one).
    pub port: u16,
    /// Codecs, in preference order, with this side's payload types.
    pub formats: &'a [Format],
    /// `a=fmtp` of telephone-event.
    pub events_fmtp: Option<&'a str>,
    /// Direction from holdless's point of view.
    pub direction: Direction,
    /// holdless's SDES key toward this side: the stream is written RTP/SAVP with it as
    /// `a=crypto`; `None` writes plain RTP/AVP.
    pub crypto: Option<&'a Crypto>,
}

/// Rewrites `src` by `plan`.
pub fn rewrite(src: &Session, plan: &Plan) -> Session {
    let mut s = src.clone();
    let had_direction = has_direction(&s.attributes);
    s.origin = Origin::with_ip_addr(plan.sess_id, plan.version, plan.address);
    if s.connection.is_some() {
        s.connection = Some(Connection::from_ip_addr(plan.address));
    }
    s.key = None;
    s.attributes
        .retain(|a| !is_peer_transport(&a.attribute) && !is_direction(&a.attribute));
    for (i, m) in s.medias.iter_mut().enumerate() {
        match &plan.audio {
            Some(a) if i == plan.audio_index => rewrite_audio(m, a, plan.address, had_direction),
            _ => disable(m, plan.address),
        }
    }
    s
}

/// The wire form (CRLF line ends).
pub fn to_bytes(s: &Session) -> Bytes {
    let mut out = Vec::with_capacity(512);
    // Writing to a Vec cannot fail.
    let _ = s.write(&mut out);
    Bytes::from(out)
}

fn disable(m: &mut Media, address: IpAddr) {
    m.port = 0;
    m.num_ports = None;
    m.key = None;
    m.bandwidths.clear();
    m.attributes.clear();
    replace_connections(m, address);
}

fn replace_connections(m: &mut Media, address: IpAddr) {
    if !m.connections.is_empty() {
        m.connections = vec![Connection::from_ip_addr(address)];
    }
}

fn rewrite_audio(m: &mut Media, a: &AudioPlan, address: IpAddr, session_direction: bool) {
    m.port = a.port;
    m.num_ports = None;
    m.key = None;
    m.fmt = a
        .formats
        .iter()
        .map(|f| f.pt.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    replace_connections(m, address);
    m.proto = profile(&m.proto, a.crypto.is_some()).to_owned();
    let codec_lines = codec_attributes(a);
    let direction = Attribute::new(a.direction.as_str());
    let mut out = Vec::with_capacity(m.attributes.len() + codec_lines.len());
    let (mut codecs_done, mut direction_done) = (false, false);
    for attr in std::mem::take(&mut m.attributes) {
        let name = attr.attribute.to_ascii_lowercase();
        match name.as_str() {
            "rtpmap" | "fmtp" => {
                if !codecs_done {
                    out.extend(codec_lines.iter().cloned());
                    codecs_done = true;
                }
            }
            "rtcp" => out.push(rtcp_attribute(&attr, a.port, address)),
            n if is_direction(n) => {
                if !direction_done {
                    out.push(direction.clone());
                    direction_done = true;
                }
            }
            n if is_peer_transport(n) => {}
            _ => out.push(attr),
        }
    }
    if !codecs_done {
        out.splice(0..0, codec_lines);
    }
    if !direction_done && (session_direction || a.direction != Direction::SendRecv) {
        out.push(direction);
    }
    if let Some(c) = a.crypto {
        out.push(Attribute::with_value("crypto", c.to_value()));
    }
    m.attributes = out;
}

/// The RTP profile to write: SRTP or plain, keeping the feedback profile (AVPF) if the
/// source had it.
fn profile(source: &str, secure: bool) -> &'static str {
    let feedback = source.to_ascii_uppercase().ends_with("AVPF");
    match (secure, feedback) {
        (true, true) => "RTP/SAVPF",
        (true, false) => "RTP/SAVP",
        (false, true) => "RTP/AVPF",
        (false, false) => "RTP/AVP",
    }
}

fn codec_attributes(a: &AudioPlan) -> Vec<Attribute> {
    let mut v = Vec::with_capacity(a.formats.len() + 1);
    for f in a.formats {
        v.push(Attribute::with_value(
            "rtpmap",
            format!("{} {}", f.pt, f.codec.rtpmap()),
        ));
        if f.codec == super::Codec::TelephoneEvent {
            if let Some(fmtp) = a.events_fmtp {
                v.push(Attribute::with_value("fmtp", format!("{} {fmtp}", f.pt)));
            }
        }
    }
    v
}

/// `a=rtcp` with holdless's RTCP port, and its address if the original named one.
fn rtcp_attribute(orig: &Attribute, rtp_port: u16, address: IpAddr) -> Attribute {
    let port = rtp_port.wrapping_add(1);
    let with_address = orig
        .value
        .as_deref()
        .is_some_and(|v| v.split_ascii_whitespace().count() > 1);
    let value = if with_address {
        let c = Connection::from_ip_addr(address);
        format!(
            "{port} {} {} {}",
            NetType::In.as_str(),
            c.addrtype.as_str(),
            c.connection_address
        )
    } else {
        port.to_string()
    };
    Attribute::with_value("rtcp", value)
}

fn is_direction(name: &str) -> bool {
    ["sendrecv", "sendonly", "recvonly", "inactive"]
        .iter()
        .any(|d| d.eq_ignore_ascii_case(name))
}

fn has_direction(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|a| is_direction(&a.attribute))
}

fn is_peer_transport(name: &str) -> bool {
    PEER_TRANSPORT_ATTRIBUTES
        .iter()
        .any(|d| d.eq_ignore_ascii_case(name))
}
