//! RFC 3261 §17 transactions, with the RFC 6026 Accepted states for INVITE 2xx, as a sans-IO
//! state machine.
//!
//! [`TransactionLayer`] takes inputs — `handle_request`, `handle_response`, `respond`,
//! `send_request`, `handle_timeout`, `connection_closed` — each with the current time, and
//! gives back outputs through `poll_transmit`, `poll_event` and `poll_timeout`. It never reads
//! the clock, touches a socket or sleeps; the driver drains the outputs after every input and
//! calls `handle_timeout` when `poll_timeout` comes due. Timers are the [`Timer`] enum and a
//! table of deadlines; randomness (To tags of the responses the layer builds) comes from a
//! seed given to [`TransactionLayer::with_seed`].
//!
//! Server side, a request is either a retransmission (absorbed, the last response re-sent), the
//! ACK of a non-2xx (absorbed), an ACK for a 2xx (handed to the dialog layer), a CANCEL
//! (answered by the layer, the INVITE answered 487) or a new transaction the TU must answer
//! with [`TransactionLayer::respond`]. Client side, responses become
//! [`TransactionEvent::Response`]; the layer retransmits, ACKs non-2xx finals and times out.

mod client;
mod key;
mod layer;
pub mod request;
pub mod response;
mod server;
mod timer;

#[cfg(test)]
mod test_util;

pub use key::tag as key_tag;
pub use layer::TransactionLayer;
pub use request::{ack_for_non_2xx, cancel_for};
pub use response::response_for;
pub use timer::{Timer, TimerConfig, AUTO_TRYING_DELAY, TIMER_D_UDP};

use crate::sip::message::Message;
use crate::sip::via::ViaError;

/// Identifies a server transaction (a request we received) for the life of the layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerTxId(pub u64);

/// Identifies a client transaction (a request we sent) for the life of the layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientTxId(pub u64);

/// Either kind of transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxId {
    /// A server transaction.
    Server(ServerTxId),
    /// A client transaction.
    Client(ClientTxId),
}

/// What became of a request handed to [`TransactionLayer::handle_request`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum RequestOutcome {
    /// A new server transaction: the TU must answer it with `respond`.
    New(ServerTxId),
    /// A retransmission: absorbed (the last response, if any, was queued again for sending).
    /// A message that is not a request at all is dropped and reported this way too.
    Retransmission,
    /// An ACK that matched a server INVITE transaction in Completed (non-2xx): absorbed, moves
    /// to Confirmed. ACK retransmissions in Confirmed, and a stray ACK matching an INVITE not yet
    /// answered with a final response, are absorbed the same way.
    AckAbsorbed,
    /// An ACK matching no transaction (the ACK for a 2xx, §17.1.1.1), or matching an INVITE in
    /// Accepted (a peer reusing the INVITE branch): the TU/dialog layer takes it.
    AckForDialog(Message),
    /// A CANCEL: the layer answered it itself (200 if an INVITE server transaction matches it
    /// per §9.2, 481 otherwise) and, when that INVITE had no final response yet, answered the
    /// INVITE with 487 Request Terminated and queued [`TransactionEvent::Cancelled`].
    /// `invite` is the matching INVITE, if any, whether or not it was still cancellable.
    /// A retransmitted CANCEL is a [`RequestOutcome::Retransmission`].
    Cancelled {
        /// The INVITE server transaction the CANCEL matched.
        invite: Option<ServerTxId>,
    },
}

/// Something the TU must hear about, from [`TransactionLayer::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionEvent {
    /// A client transaction received a response (provisional or final) for the TU; for an
    /// INVITE in Accepted (RFC 6026), every retransmitted 2xx too. After Timer M a 2xx matches
    /// nothing and `handle_response` returns `None`: the dialog layer may take it.
    Response {
        /// The client transaction.
        id: ClientTxId,
        /// The response as received.
        resp: Message,
    },
    /// Timer B or F fired (no final response): the TU should act as if 408 arrived.
    Timeout {
        /// The client transaction that gave up.
        id: ClientTxId,
    },
    /// The connection a transaction used closed before it had its final response: for a client
    /// transaction act as if 503 arrived; a server transaction can no longer be answered.
    TransportError {
        /// The transaction.
        id: TxId,
    },
    /// Timer H fired: the ACK for our non-2xx final response never came.
    AckTimeout {
        /// The server INVITE transaction.
        id: ServerTxId,
    },
    /// A server INVITE transaction was cancelled by a CANCEL (the 487 has been sent).
    Cancelled {
        /// The server INVITE transaction.
        id: ServerTxId,
    },
    /// A transaction terminated and was removed (every transaction ends with exactly one,
    /// including the CANCEL transactions the layer handles alone).
    Terminated {
        /// The transaction.
        id: TxId,
    },
}

/// Why the transaction layer refused what the TU asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionError {
    /// The transaction already terminated (or never existed).
    #[error("no such transaction {0:?}: it has terminated or never existed")]
    UnknownTransaction(TxId),
    /// A final response was already sent; only further 2xx may follow a 2xx to an INVITE.
    #[error("cannot send {code}: the transaction already sent its final response")]
    FinalAlreadySent {
        /// The status code the TU tried to send.
        code: u16,
    },
    /// `respond` was given a request.
    #[error("respond needs a response, not a request")]
    NotAResponse,
    /// The status code is outside 100-699.
    #[error("status code {0} is outside 100-699")]
    BadStatusCode(u16),
    /// `send_request` was given a response.
    #[error("send_request needs a request, not a response")]
    NotARequest,
    /// An ACK is not sent in a client transaction (§17.1.1.3 builds the non-2xx ACK; the 2xx
    /// ACK goes through `send_stateless`).
    #[error("an ACK is not a transaction: send the ACK for a 2xx with send_stateless")]
    AckIsNotATransaction,
    /// The request's top Via cannot be read.
    #[error("the request's top Via is unusable: {0}")]
    Via(#[from] ViaError),
    /// The request's top Via branch is missing or lacks the z9hG4bK magic cookie.
    #[error("the request's top Via has no RFC 3261 branch (z9hG4bK...)")]
    NoRfc3261Branch,
    /// CSeq is missing, malformed, or names another method than the request line.
    #[error("the request's CSeq is missing or does not match the request method")]
    BadCSeq,
    /// A live client transaction already uses that branch and method.
    #[error("a client transaction with branch {branch} and method {method} already exists")]
    DuplicateBranch {
        /// The branch.
        branch: String,
        /// The method.
        method: String,
    },
}
