//! Media for bridged calls: SDP offer/answer and rewriting, the RTP port pool and the
//! relay. The call core drives media through [`MediaControl`]; the sans-IO implementation
//! negotiates and allocates, the runtime's implementation also moves the packets.

pub mod config;
pub mod controller;
pub mod dtmf;
pub mod g711;
pub mod local;
pub mod negotiate;
pub mod pool;
pub mod prompt;
pub mod relay;
pub mod rtp;
pub mod sdes;
pub mod sdp;
pub mod srtp;
#[cfg(test)]
mod srtp_tests;
pub mod stats;
#[cfg(test)]
mod tests;

use std::time::Instant;

use bytes::Bytes;

pub use config::{Latching, MediaConfig, MediaSettings};
pub use controller::MediaController;
pub use relay::{MediaEvent, TimeoutReason};
pub use stats::{CallStats, DropCounts, StreamStats};

/// One side of a bridged call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The leg that called in (the inbound INVITE).
    Caller,
    /// The leg holdless placed (the outbound INVITE).
    Callee,
}

impl Side {
    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::Caller => Side::Callee,
            Side::Callee => Side::Caller,
        }
    }
}

/// Identifies the media of one bridged call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MediaId(pub u64);

/// Why a media operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// Every port of the configured range is in use (answer 503).
    #[error("no free media ports")]
    PortsExhausted,
    /// The SDP could not be parsed (answer 400).
    #[error("malformed SDP: {0}")]
    MalformedSdp(String),
    /// No codec in common with what holdless relays (answer 488 with a Warning).
    #[error("no common codec: {0}")]
    NoCommonCodec(String),
    /// The offer's or answer's media security is not what the side's `srtp` policy takes,
    /// or its keys are unusable (answer 488 with a Warning).
    #[error("media security: {0}")]
    Security(String),
    /// An answer arrived with no offer pending.
    #[error("SDP answer without a pending offer")]
    NoPendingOffer,
    /// The media id is not known (already released).
    #[error("unknown media session")]
    UnknownSession,
    /// This media relays only; it cannot answer a call itself.
    #[error("media cannot terminate calls")]
    CannotTerminate,
}

impl MediaError {
    /// The SIP status and reason phrase to answer an offer that failed this way.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            MediaError::PortsExhausted => (503, "Service Unavailable"),
            MediaError::MalformedSdp(_) => (400, "Malformed SDP"),
            MediaError::NoCommonCodec(_) | MediaError::Security(_) => (488, "Not Acceptable Here"),
            MediaError::NoPendingOffer
            | MediaError::UnknownSession
            | MediaError::CannotTerminate => (500, "Server Internal Error"),
        }
    }
}

/// What the call core asks of media. Implemented by the sans-IO controller (tests) and by
/// the runtime (which also binds sockets and relays packets).
pub trait MediaControl {
    /// Allocates media for a new bridged call (ports for both sides).
    fn create(&mut self, now: Instant) -> Result<MediaId, MediaError>;
    /// An SDP offer came from `from`; returns the offer to send to the other side.
    fn offer(
        &mut self,
        now: Instant,
        id: MediaId,
        from: Side,
        sdp: &[u8],
    ) -> Result<Bytes, MediaError>;
    /// The SDP answer came from `from`; returns the answer to send to the offering side.
    fn answer(
        &mut self,
        now: Instant,
        id: MediaId,
        from: Side,
        sdp: &[u8],
    ) -> Result<Bytes, MediaError>;
    /// Sets the media security `side` must have; before its first offer or answer.
    fn secure(&mut self, id: MediaId, side: Side, policy: srtp::SrtpPolicy);
    /// Ends the call's media; every port goes back to the pool.
    fn release(&mut self, id: MediaId);
    /// Answers `side`'s offer with holdless itself as the far end (the offerer's first G.711
    /// codec, telephone-event when offered): the side's media turns local (prompts out, DTMF
    /// in) until another leg is joined to it. Media that cannot terminate calls refuses.
    fn answer_locally(
        &mut self,
        _now: Instant,
        _id: MediaId,
        _side: Side,
        _sdp: &[u8],
    ) -> Result<Bytes, MediaError> {
        Err(MediaError::CannotTerminate)
    }
    /// An offer for the leg on the other side of `from`, whose media is local: the codec
    /// `from` speaks. That leg's answer, through [`MediaControl::answer`], joins the two:
    /// `from` stops being local and the relay carries both ways.
    fn offer_onward(
        &mut self,
        _now: Instant,
        _id: MediaId,
        _from: Side,
    ) -> Result<Bytes, MediaError> {
        Err(MediaError::CannotTerminate)
    }
    /// holdless's own SDP offer to `side` (its INVITE came without one): G.711 both laws
    /// and telephone-event. Its answer comes through [`MediaControl::accept_local_answer`].
    fn offer_locally(
        &mut self,
        _now: Instant,
        _id: MediaId,
        _side: Side,
    ) -> Result<Bytes, MediaError> {
        Err(MediaError::CannotTerminate)
    }
    /// `side`'s answer to [`MediaControl::offer_locally`]: the side's media turns local as
    /// after [`MediaControl::answer_locally`].
    fn accept_local_answer(
        &mut self,
        _now: Instant,
        _id: MediaId,
        _side: Side,
        _sdp: &[u8],
    ) -> Result<(), MediaError> {
        Err(MediaError::CannotTerminate)
    }
    /// Plays `clip` to `side`, whose media is local, replacing anything playing;
    /// [`MediaEvent::PlayFinished`] follows its last frame.
    fn play(&mut self, _now: Instant, _id: MediaId, _side: Side, _clip: prompt::Clip) {}
    /// Stops what plays to `side` (no [`MediaEvent::PlayFinished`] for it).
    fn stop_playing(&mut self, _id: MediaId, _side: Side) {}
}

/// Media for a server without a relay: every bridged call is refused (503).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoMedia;

impl MediaControl for NoMedia {
    fn create(&mut self, _now: Instant) -> Result<MediaId, MediaError> {
        Err(MediaError::PortsExhausted)
    }

    fn offer(&mut self, _: Instant, _: MediaId, _: Side, _: &[u8]) -> Result<Bytes, MediaError> {
        Err(MediaError::UnknownSession)
    }

    fn answer(&mut self, _: Instant, _: MediaId, _: Side, _: &[u8]) -> Result<Bytes, MediaError> {
        Err(MediaError::UnknownSession)
    }

    fn secure(&mut self, _: MediaId, _: Side, _: srtp::SrtpPolicy) {}

    fn release(&mut self, _id: MediaId) {}
}
