//! RFC 3264 offer/answer across the two legs of one call. holdless is an SDP endpoint toward
//! each side (its own `o=` session id and version, its own address and ports) and carries the
//! codec choice across:
//!
//! - an offer from one side goes to the other with its G.711 codecs (plus the other law,
//!   which holdless can transcode to) and telephone-event, its direction and `a=ptime`;
//! - the answer goes back with the codecs both sides share in the offerer's order and
//!   payload types, or the offerer's first G.711 codec when they share none (transcoding);
//! - the completed pair becomes the relay's [`RelayParams`].
//!
//! Payload types toward a side stay stable across re-offers (RFC 3264 §8.3.2), so the two
//! sides may number telephone-event differently; the relay maps between them.
//!
//! Media security is per side (RFC 4568 SDES): an RTP/SAVP offer is answered RTP/SAVP
//! with a fresh key of holdless's own, a plain one plainly, each within that side's
//! [`SrtpPolicy`]; what holdless offers a side is SRTP when its policy requires it or
//! when that side already speaks SRTP. holdless keeps its key toward a side while the side
//! keeps its own (a session refresh does not restart SRTP).

use std::net::IpAddr;

use bytes::Bytes;
use sdp_types::Session;

use super::g711::Transcode;
use super::relay::{Action, LegParams, PtMap, RelayParams};
use super::sdes::{self, Crypto, Suite};
use super::sdp::write::{self, AudioPlan, Plan};
use super::sdp::{self, AudioStream, Codec, Direction, Format};
use super::srtp::{LegKeys, SrtpPolicy};
use super::{MediaError, Side};

/// The payload type holdless gives telephone-event when the offerer used a number that is
/// not dynamic (RFC 3551 §6: 96–127).
pub const DEFAULT_EVENTS_PT: u8 = 101;

/// holdless as an SDP endpoint toward one side.
#[derive(Debug, Clone)]
struct SideState {
    /// holdless's RTP port facing this side.
    port: u16,
    sess_id: u64,
    version: u64,
    /// The last SDP sent to this side, with version 0, to tell a change from a repeat.
    last_sent: Option<Session>,
    /// The telephone-event payload type holdless uses toward this side, once chosen.
    events_pt: Option<u8>,
    /// The IP this side last advertised (kept through an RFC 2543 hold).
    last_ip: Option<IpAddr>,
}

/// An offer in flight.
#[derive(Debug, Clone)]
struct Offer {
    from: Side,
    stream: AudioStream,
    /// What holdless offered the other side.
    forwarded: Vec<Format>,
    /// How many m= lines the offer had.
    m_lines: usize,
    /// The offerer's SRTP: its key and holdless's answer key (`None`: plain RTP).
    offerer_keys: Option<LegKeys>,
    /// holdless's key in the offer it forwarded (`None`: a plain offer).
    forwarded_key: Option<Crypto>,
}

/// The offer/answer state of one call.
#[derive(Debug, Clone)]
pub struct Negotiation {
    sides: [SideState; 2],
    pending: Option<Offer>,
    /// The last answered offer, so a repeated answer (183 then 200) updates it.
    last: Option<Offer>,
    params: RelayParams,
    /// Per side, the offer holdless answered itself ([`Negotiation::answer_locally`]): the
    /// offerer's SDP and its audio stream cut down to what was agreed, for the onward offer.
    local: [Option<Box<(Session, AudioStream)>>; 2],
    /// Per side, the media security its configuration asks for.
    policy: [SrtpPolicy; 2],
    /// Per side, the SRTP keys in force (`None`: plain RTP).
    keys: [Option<LegKeys>; 2],
    /// Per side, holdless's key in its own offer ([`Negotiation::offer_locally`]).
    local_offer_key: [Option<Crypto>; 2],
}

/// holdless's own media toward one side (prompts out, DTMF in): the codec it speaks and
/// the payload types as that side numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalParams {
    /// The G.711 law.
    pub codec: Codec,
    /// Its payload type on this side.
    pub audio_pt: u8,
    /// telephone-event's payload type on this side, when both have it.
    pub events_pt: Option<u8>,
    /// The side's SRTP keys (`None`: plain RTP).
    pub srtp: Option<LegKeys>,
}

fn ix(side: Side) -> usize {
    match side {
        Side::Caller => 0,
        Side::Callee => 1,
    }
}

impl Negotiation {
    /// A call whose holdless ports are `ports` (caller-facing, callee-facing) and whose `o=`
    /// session ids are `sess_ids`.
    pub fn new(ports: [u16; 2], sess_ids: [u64; 2]) -> Negotiation {
        let side = |i: usize| SideState {
            port: ports[i],
            sess_id: sess_ids[i],
            version: 0,
            last_sent: None,
            events_pt: None,
            last_ip: None,
        };
        Negotiation {
            sides: [side(0), side(1)],
            pending: None,
            last: None,
            params: RelayParams::default(),
            local: [None, None],
            policy: [SrtpPolicy::default(); 2],
            keys: [None, None],
            local_offer_key: [None, None],
        }
    }

    /// Sets the media security `side` must have (before its first offer).
    pub fn set_policy(&mut self, side: Side, policy: SrtpPolicy) {
        self.policy[ix(side)] = policy;
    }

    /// The SRTP keys of an offer from `from`: its usable `a=crypto` and holdless's answer
    /// key, or `None` for a plain offer; an error when `from`'s policy refuses it.
    fn offer_security(
        &self,
        from: Side,
        stream: &AudioStream,
    ) -> Result<Option<LegKeys>, MediaError> {
        let policy = self.policy[ix(from)];
        if !stream.secure {
            if policy == SrtpPolicy::Required {
                return Err(MediaError::Security(
                    "plain RTP offered where SRTP is required".into(),
                ));
            }
            return Ok(None);
        }
        if policy == SrtpPolicy::Off {
            return Err(MediaError::Security(
                "SRTP offered where SRTP is off".into(),
            ));
        }
        let theirs = sdes::choose(stream.crypto.iter().map(String::as_str)).ok_or_else(|| {
            MediaError::Security(format!(
                "none of the {} a=crypto offered is usable (AES_CM_128_HMAC_SHA1_80/_32, \
                 inline key, no MKI)",
                stream.crypto.len()
            ))
        })?;
        let ours = match self.keys[ix(from)] {
            Some(k) if k.theirs == theirs => k.ours,
            _ => sdes::answer(&theirs).map_err(|e| MediaError::Security(e.to_string()))?,
        };
        Ok(Some(LegKeys { theirs, ours }))
    }

    /// holdless's key for an offer to `to`: SRTP when `to`'s policy requires it or `to`
    /// already speaks SRTP (the key in force is kept), else `None`.
    fn key_toward(&self, to: Side) -> Result<Option<Crypto>, MediaError> {
        if let Some(k) = self.keys[ix(to)] {
            return Ok(Some(k.ours));
        }
        if self.policy[ix(to)] != SrtpPolicy::Required {
            return Ok(None);
        }
        Crypto::fresh(1, Suite::AesCm128HmacSha1_80)
            .map(Some)
            .map_err(|e| MediaError::Security(e.to_string()))
    }

    /// The keys of `from`'s answer to an offer that carried `offered` (holdless's key, or
    /// `None` for a plain offer): the answer must take the offered security.
    fn answer_security(
        offered: Option<Crypto>,
        answer: &AudioStream,
    ) -> Result<Option<LegKeys>, MediaError> {
        match (offered, answer.secure) {
            (None, false) => Ok(None),
            (None, true) => Err(MediaError::Security(
                "SRTP answered to a plain RTP offer".into(),
            )),
            (Some(_), false) => Err(MediaError::Security(
                "plain RTP answered to an SRTP offer".into(),
            )),
            (Some(ours), true) => answer
                .crypto
                .iter()
                .filter_map(|v| Crypto::parse(v).ok())
                .find(|c| c.tag == ours.tag && c.suite == ours.suite)
                .map(|theirs| Some(LegKeys { theirs, ours }))
                .ok_or_else(|| {
                    MediaError::Security(format!(
                        "the answer has no usable a=crypto with tag {} and {}",
                        ours.tag,
                        ours.suite.name()
                    ))
                }),
        }
    }

    /// The relay parameters of the last completed offer/answer.
    pub fn params(&self) -> &RelayParams {
        &self.params
    }

    /// An offer from `from`: returns the offer for the other side. A new offer replaces one
    /// still pending (the call core settles glare before it gets here).
    pub fn offer(&mut self, from: Side, body: &[u8], address: IpAddr) -> Result<Bytes, MediaError> {
        let session = sdp::parse(body)?;
        let stream = sdp::offered_audio(&session)?;
        let keys = self.offer_security(from, &stream)?;
        self.forward_offer(from, &session, stream, keys, address)
    }

    /// Writes the offer for the other side of `from` from `from`'s `stream` (in `session`)
    /// and keeps it pending.
    fn forward_offer(
        &mut self,
        from: Side,
        session: &Session,
        stream: AudioStream,
        offerer_keys: Option<LegKeys>,
        address: IpAddr,
    ) -> Result<Bytes, MediaError> {
        let to = from.other();
        let forwarded_key = self.key_toward(to)?;
        let forwarded = self.forward_formats(&stream, to);
        let plan = Plan {
            sess_id: self.sides[ix(to)].sess_id,
            version: 0,
            address,
            audio_index: stream.index,
            audio: Some(AudioPlan {
                port: self.sides[ix(to)].port,
                formats: &forwarded,
                events_fmtp: stream.events_fmtp.as_deref(),
                direction: stream.direction,
                crypto: forwarded_key.as_ref(),
            }),
        };
        let out = self.emit(to, session, &plan);
        self.pending = Some(Offer {
            from,
            stream,
            forwarded,
            m_lines: session.medias.len(),
            offerer_keys,
            forwarded_key,
        });
        Ok(out)
    }

    /// Answers `from`'s offer with holdless itself as the far end: the offerer's first G.711
    /// codec and telephone-event when offered. Returns the answer for the offerer and what
    /// holdless's own media on that side speaks. The offer and the agreed codec are kept for
    /// [`Negotiation::offer_onward`].
    pub fn answer_locally(
        &mut self,
        from: Side,
        body: &[u8],
        address: IpAddr,
    ) -> Result<(Bytes, LocalParams), MediaError> {
        let session = sdp::parse(body)?;
        let stream = sdp::offered_audio(&session)?;
        let codec = stream
            .audio_codecs()
            .next()
            .ok_or_else(|| MediaError::NoCommonCodec("no G.711 codec offered".into()))?;
        self.offer(from, body, address)?;
        let to = from.other();
        let (forwarded, offerer_keys, forwarded_key) = self
            .pending
            .as_ref()
            .map(|o| (o.forwarded.clone(), o.offerer_keys, o.forwarded_key))
            .unwrap_or_default();
        // What a far end speaking only `codec` (and events) would answer, on holdless's own
        // port facing `to`; the relay never forwards there while the side is local.
        let far: Vec<Format> = forwarded
            .iter()
            .filter(|f| f.codec == codec || f.codec == Codec::TelephoneEvent)
            .copied()
            .collect();
        let plan = Plan {
            sess_id: self.sides[ix(to)].sess_id,
            version: 0,
            address,
            audio_index: stream.index,
            audio: Some(AudioPlan {
                port: self.sides[ix(to)].port,
                formats: &far,
                events_fmtp: stream.events_fmtp.as_deref(),
                direction: stream.direction.answer_to(Direction::SendRecv),
                // The far end echoes holdless's own key: `to` is not really there, and
                // what it speaks is put back below.
                crypto: forwarded_key.as_ref(),
            }),
        };
        let far_answer = write::to_bytes(&write::rewrite(&session, &plan));
        let to_keys = (self.keys[ix(to)], self.params.leg(to).srtp);
        let answer = self.answer(to, &far_answer, address)?;
        self.keys[ix(to)] = to_keys.0;
        self.params.leg_mut(to).srtp = to_keys.1;
        let audio_pt = stream.pt_of(codec).unwrap_or(0);
        let events_pt = far
            .iter()
            .any(|f| f.codec == Codec::TelephoneEvent)
            .then(|| stream.pt_of(Codec::TelephoneEvent))
            .flatten();
        let mut agreed = stream;
        agreed
            .formats
            .retain(|f| f.codec == codec || f.codec == Codec::TelephoneEvent);
        self.local[ix(from)] = Some(Box::new((session, agreed)));
        Ok((
            answer,
            LocalParams {
                codec,
                audio_pt,
                events_pt,
                srtp: offerer_keys,
            },
        ))
    }

    /// holdless's own offer to `to` (an INVITE that came without SDP: the offer goes in our
    /// 200): PCMU, PCMA and telephone-event 101, sendrecv, on holdless's port facing `to`.
    pub fn offer_locally(&mut self, to: Side, address: IpAddr) -> Result<Bytes, MediaError> {
        let ip = match address {
            IpAddr::V4(_) => "IP4",
            IpAddr::V6(_) => "IP6",
        };
        let text = format!(
            "v=0\r\no=- 0 0 IN {ip} {address}\r\ns=-\r\nc=IN {ip} {address}\r\nt=0 0\r\n\
             m=audio 9 RTP/AVP 0 8 {DEFAULT_EVENTS_PT}\r\n"
        );
        let session = sdp::parse(text.as_bytes())?;
        let formats = [
            Format {
                codec: Codec::Pcmu,
                pt: 0,
            },
            Format {
                codec: Codec::Pcma,
                pt: 8,
            },
            Format {
                codec: Codec::TelephoneEvent,
                pt: DEFAULT_EVENTS_PT,
            },
        ];
        let key = self.key_toward(to)?;
        let plan = Plan {
            sess_id: self.sides[ix(to)].sess_id,
            version: 0,
            address,
            audio_index: 0,
            audio: Some(AudioPlan {
                port: self.sides[ix(to)].port,
                formats: &formats,
                events_fmtp: Some("0-16"),
                direction: Direction::SendRecv,
                crypto: key.as_ref(),
            }),
        };
        self.local_offer_key[ix(to)] = key;
        Ok(self.emit(to, &session, &plan))
    }

    /// `from`'s answer to [`Negotiation::offer_locally`]: what holdless's own media on that
    /// side speaks (the answer's first G.711 codec, and telephone-event when kept). The
    /// agreed codec is kept for [`Negotiation::offer_onward`] as after an answered offer.
    pub fn accept_local_answer(
        &mut self,
        from: Side,
        body: &[u8],
        address: IpAddr,
    ) -> Result<LocalParams, MediaError> {
        // The answer names what both sides take: settle it as an offer answered by holdless,
        // then put back what holdless last sent that side (the offer), which is what it has.
        let session = sdp::parse(body)?;
        let stream = sdp::offered_audio(&session)?;
        let keys = Self::answer_security(self.local_offer_key[ix(from)], &stream)?;
        let saved = (
            self.sides[ix(from)].version,
            self.sides[ix(from)].last_sent.clone(),
        );
        let (_, mut local) = self.answer_locally(from, body, address)?;
        self.sides[ix(from)].version = saved.0;
        self.sides[ix(from)].last_sent = saved.1;
        // The keys are those of holdless's offer and the answer, not of an answer to it.
        local.srtp = keys;
        self.keys[ix(from)] = keys;
        self.params.leg_mut(from).srtp = keys;
        self.local_offer_key[ix(from)] = None;
        Ok(local)
    }

    /// An offer for the other side of `from`, whose offer holdless answered itself: the
    /// codec agreed with `from` (plus the other law, which the relay transcodes) and
    /// telephone-event. The other side's answer, through [`Negotiation::answer`], makes the
    /// relay parameters that join the two.
    pub fn offer_onward(&mut self, from: Side, address: IpAddr) -> Result<Bytes, MediaError> {
        let (session, stream) = self.local[ix(from)]
            .as_deref()
            .cloned()
            .ok_or(MediaError::NoPendingOffer)?;
        let keys = self.keys[ix(from)];
        self.forward_offer(from, &session, stream, keys, address)
    }

    /// The codecs offered to `to`: the offerer's G.711 codecs in its order, the other law
    /// when it offered only one, then telephone-event if it offered it.
    fn forward_formats(&self, stream: &AudioStream, to: Side) -> Vec<Format> {
        let mut out: Vec<Format> = stream.audio_codecs().filter_map(standard).collect();
        if let [only] = out[..] {
            if let Some(other) = only.codec.other_law().and_then(standard) {
                out.push(other);
            }
        }
        if let Some(pt) = stream.pt_of(Codec::TelephoneEvent) {
            let pt = self.sides[ix(to)].events_pt.unwrap_or(pt);
            out.push(Format {
                codec: Codec::TelephoneEvent,
                pt: if pt >= 96 { pt } else { DEFAULT_EVENTS_PT },
            });
        }
        out
    }

    /// The answer from `from` to the pending offer: returns the answer for the offerer and
    /// updates [`Negotiation::params`].
    pub fn answer(
        &mut self,
        from: Side,
        body: &[u8],
        address: IpAddr,
    ) -> Result<Bytes, MediaError> {
        let offer = match (&self.pending, &self.last) {
            (Some(o), _) if o.from == from.other() => o.clone(),
            (None, Some(o)) if o.from == from.other() => o.clone(),
            _ => return Err(MediaError::NoPendingOffer),
        };
        let session = sdp::parse(body)?;
        if session.medias.len() != offer.m_lines {
            // RFC 3264 §6: the answer has exactly as many m= lines as the offer.
            return Err(MediaError::MalformedSdp(format!(
                "the answer has {} m= lines, the offer had {}",
                session.medias.len(),
                offer.m_lines
            )));
        }
        let answer = sdp::answered_audio(&session, offer.stream.index)?;
        let out = match &answer {
            Some(stream) => self.accept(&offer, stream, &session, address)?,
            None => self.reject(&offer, &session, address),
        };
        self.pending = None;
        self.last = Some(offer);
        Ok(out)
    }

    /// The answerer took the audio stream.
    fn accept(
        &mut self,
        offer: &Offer,
        answer: &AudioStream,
        session: &Session,
        address: IpAddr,
    ) -> Result<Bytes, MediaError> {
        let (a, b) = (offer.from, offer.from.other());
        let b_formats: Vec<Format> = answer
            .formats
            .iter()
            .filter(|f| offer.forwarded.iter().any(|o| o.codec == f.codec))
            .copied()
            .collect();
        if !b_formats.iter().any(|f| f.codec.is_audio()) {
            return Err(MediaError::NoCommonCodec(
                "the answer took none of the offered codecs".into(),
            ));
        }
        let b_keys = Self::answer_security(offer.forwarded_key, answer)?;
        let a_formats = answer_formats(&offer.stream, &b_formats);
        let direction = offer.stream.direction.answer_to(answer.direction);
        let events_fmtp = answer
            .events_fmtp
            .as_deref()
            .or(offer.stream.events_fmtp.as_deref());
        let plan = Plan {
            sess_id: self.sides[ix(a)].sess_id,
            version: 0,
            address,
            audio_index: offer.stream.index,
            audio: Some(AudioPlan {
                port: self.sides[ix(a)].port,
                formats: &a_formats,
                events_fmtp,
                direction,
                crypto: offer.offerer_keys.as_ref().map(|k| &k.ours),
            }),
        };
        let out = self.emit(a, session, &plan);
        self.keys[ix(a)] = offer.offerer_keys;
        self.keys[ix(b)] = b_keys;
        self.remember_events_pt(a, &a_formats);
        self.remember_events_pt(b, &offer.forwarded);
        let mut a_leg = self.leg(
            a,
            &offer.stream,
            &offer.stream.formats,
            &a_formats,
            &b_formats,
        );
        a_leg.srtp = offer.offerer_keys;
        let mut b_leg = self.leg(b, answer, &b_formats, &offer.forwarded, &a_formats);
        b_leg.srtp = b_keys;
        let on_hold = offer.stream.direction != Direction::SendRecv
            || answer.direction != Direction::SendRecv;
        self.params = match a {
            Side::Caller => RelayParams {
                caller: a_leg,
                callee: b_leg,
                active: true,
                on_hold,
            },
            Side::Callee => RelayParams {
                caller: b_leg,
                callee: a_leg,
                active: true,
                on_hold,
            },
        };
        Ok(out)
    }

    /// The answerer rejected the audio stream (port 0): so does holdless, and media stops.
    fn reject(&mut self, offer: &Offer, session: &Session, address: IpAddr) -> Bytes {
        let a = offer.from;
        let plan = Plan {
            sess_id: self.sides[ix(a)].sess_id,
            version: 0,
            address,
            audio_index: offer.stream.index,
            audio: None,
        };
        self.params = RelayParams::default();
        self.emit(a, session, &plan)
    }

    fn remember_events_pt(&mut self, side: Side, formats: &[Format]) {
        if let Some(f) = formats.iter().find(|f| f.codec == Codec::TelephoneEvent) {
            self.sides[ix(side)].events_pt = Some(f.pt);
        }
    }

    /// The relay's view of `side`: what it declared (`declared`, its own payload types),
    /// what holdless told it (`advertised`) and what the other side receives (`other`).
    fn leg(
        &mut self,
        side: Side,
        stream: &AudioStream,
        declared: &[Format],
        advertised: &[Format],
        other: &[Format],
    ) -> LegParams {
        let state = &mut self.sides[ix(side)];
        if stream.ip.is_some() {
            state.last_ip = stream.ip;
        }
        let mut map = PtMap::default();
        // Its own numbering wins where the two disagree.
        for f in advertised.iter().chain(declared) {
            map.set(f.pt, action_for(f.codec, other));
        }
        LegParams {
            rtp: stream.rtp,
            rtcp: stream.rtcp,
            source_ip: state.last_ip,
            sends: stream.direction.sends(),
            receives: stream.direction.receives(),
            map,
            srtp: None,
        }
    }

    /// Writes the SDP for `to`, bumping holdless's `o=` version if it changed.
    fn emit(&mut self, to: Side, src: &Session, plan: &Plan) -> Bytes {
        let mut out = write::rewrite(src, plan);
        let side = &mut self.sides[ix(to)];
        if side.last_sent.as_ref() != Some(&out) {
            side.version += 1;
            side.last_sent = Some(out.clone());
        }
        out.origin.sess_version = side.version;
        write::to_bytes(&out)
    }
}

/// A G.711 codec under its static payload type.
fn standard(codec: Codec) -> Option<Format> {
    codec.static_pt().map(|pt| Format { codec, pt })
}

/// The answer's codecs toward the offerer, with the offerer's payload types: the G.711
/// codecs the answerer also took, in the offerer's order, else the offerer's first (the
/// relay transcodes); telephone-event if both sides have it.
fn answer_formats(offer: &AudioStream, b: &[Format]) -> Vec<Format> {
    let has = |c: Codec| b.iter().any(|f| f.codec == c);
    let audio = offer.formats.iter().filter(|f| f.codec.is_audio());
    let mut out: Vec<Format> = audio.clone().filter(|f| has(f.codec)).copied().collect();
    if out.is_empty() {
        out.extend(audio.take(1).copied());
    }
    if has(Codec::TelephoneEvent) {
        out.extend(
            offer
                .formats
                .iter()
                .filter(|f| f.codec == Codec::TelephoneEvent)
                .copied(),
        );
    }
    out
}

/// What to do with `codec` so the side receiving `other` gets it.
fn action_for(codec: Codec, other: &[Format]) -> Action {
    let pt = |c: Codec| other.iter().find(|f| f.codec == c).map(|f| f.pt);
    match codec {
        Codec::TelephoneEvent => pt(codec).map_or(Action::Drop, Action::Event),
        Codec::Pcmu | Codec::Pcma => {
            if let Some(p) = pt(codec) {
                return Action::Forward(p);
            }
            let how = match codec {
                Codec::Pcmu => Transcode::UlawToAlaw,
                _ => Transcode::AlawToUlaw,
            };
            codec
                .other_law()
                .and_then(pt)
                .map_or(Action::Drop, |p| Action::Transcode(p, how))
        }
    }
}
