//! What the call-core tests share: the real media controller behind the endpoint (with
//! what was played noted), SDP for a peer, and picking messages out of what holdless sent.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use holdless::media::controller::MediaController;
use holdless::media::prompt::Clip;
use holdless::media::{MediaControl, MediaError, MediaId, Side};
use holdless::sip::parse::{parse, Framing};
use holdless::sip::{name_addr, Message, Method, Name, Transmit};

/// The real controller behind the endpoint; what was played is noted for the test.
#[derive(Clone, Default)]
pub struct Shared {
    pub ctl: Arc<Mutex<Option<MediaController>>>,
    pub plays: Arc<Mutex<Vec<(MediaId, Duration)>>>,
    pub stops: Arc<Mutex<usize>>,
}

impl Shared {
    pub fn with<R>(&self, f: impl FnOnce(&mut MediaController) -> R) -> R {
        f(self.ctl.lock().unwrap().as_mut().unwrap())
    }
}

impl MediaControl for Shared {
    fn create(&mut self, now: Instant) -> Result<MediaId, MediaError> {
        self.with(|c| c.create(now))
    }
    fn offer(
        &mut self,
        now: Instant,
        id: MediaId,
        from: Side,
        sdp: &[u8],
    ) -> Result<Bytes, MediaError> {
        self.with(|c| c.offer(now, id, from, sdp))
    }
    fn answer(
        &mut self,
        now: Instant,
        id: MediaId,
        from: Side,
        sdp: &[u8],
    ) -> Result<Bytes, MediaError> {
        self.with(|c| c.answer(now, id, from, sdp))
    }
    fn release(&mut self, id: MediaId) {
        self.with(|c| c.release(id))
    }
    fn secure(&mut self, id: MediaId, side: Side, policy: holdless::media::srtp::SrtpPolicy) {
        self.with(|c| c.secure(id, side, policy))
    }
    fn answer_locally(
        &mut self,
        now: Instant,
        id: MediaId,
        side: Side,
        sdp: &[u8],
    ) -> Result<Bytes, MediaError> {
        self.with(|c| c.answer_locally(now, id, side, sdp))
    }
    fn offer_onward(&mut self, now: Instant, id: MediaId, from: Side) -> Result<Bytes, MediaError> {
        self.with(|c| c.offer_onward(now, id, from))
    }
    fn offer_locally(
        &mut self,
        now: Instant,
        id: MediaId,
        side: Side,
    ) -> Result<Bytes, MediaError> {
        self.with(|c| c.offer_locally(now, id, side))
    }
    fn accept_local_answer(
        &mut self,
        now: Instant,
        id: MediaId,
        side: Side,
        sdp: &[u8],
    ) -> Result<(), MediaError> {
        self.with(|c| c.accept_local_answer(now, id, side, sdp))
    }
    fn play(&mut self, now: Instant, id: MediaId, side: Side, clip: Clip) {
        self.plays.lock().unwrap().push((id, clip.duration()));
        self.with(|c| c.play(now, id, side, clip))
    }
    fn stop_playing(&mut self, id: MediaId, side: Side) {
        *self.stops.lock().unwrap() += 1;
        self.with(|c| c.stop_playing(id, side))
    }
}

/// An SDP body of a peer at `ip:port` offering `codecs` (payload types, space separated).
pub fn sdp(ip: &str, port: u16, codecs: &str) -> String {
    let mut s = format!("v=0\r\no=peer 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {codecs}\r\n");
    for pt in codecs.split(' ') {
        match pt {
            "0" => s.push_str("a=rtpmap:0 PCMU/8000\r\n"),
            "8" => s.push_str("a=rtpmap:8 PCMA/8000\r\n"),
            "101" => s.push_str("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"),
            _ => {}
        }
    }
    s
}

/// A message holdless sent, parsed back.
pub fn reparse(t: &Transmit) -> Message {
    parse(&t.msg.to_bytes(), Framing::Datagram)
        .expect("holdless sends SIP that parses")
        .msg
}

/// The first response with this status.
pub fn status(msgs: &[Message], code: u16) -> Option<&Message> {
    msgs.iter().find(|m| m.status() == Some(code))
}

/// The first request of this method.
pub fn request(msgs: &[Message], method: Method) -> Option<&Message> {
    msgs.iter().find(|m| m.method() == Some(&method))
}

/// A response from a peer to a request holdless sent: `To` gets `tag` unless it has one,
/// `Contact` is `<sip:contact>`, `body` is SDP.
pub fn respond(req: &Message, code: u16, body: Option<&str>, contact: &str, tag: &str) -> String {
    let vias: String = req
        .get_all(Name::Via)
        .map(|v| format!("Via: {v}\r\n"))
        .collect();
    let to = req.get(Name::To).unwrap();
    let to = if name_addr::tag(to).is_some() {
        to.to_owned()
    } else {
        format!("{to};tag={tag}")
    };
    let body = body.unwrap_or("");
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "SIP/2.0 {code} Whatever\r\n{vias}From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n\
         Contact: <sip:{contact}>\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        req.get(Name::From).unwrap(),
        req.call_id().unwrap(),
        req.get(Name::CSeq).unwrap(),
        body.len()
    )
}
