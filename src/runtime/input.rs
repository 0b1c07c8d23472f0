//! What the socket tasks hand a SIP engine: messages, and TCP connections opening and
//! closing.

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::sip::{ConnId, Peer};

/// What the socket tasks hand the engine.
#[derive(Debug, Clone)]
pub enum Input {
    /// A datagram or a framed TCP message.
    Message {
        /// The bytes.
        bytes: Bytes,
        /// Who sent them.
        from: Peer,
    },
    /// A TCP connection is up; its writer takes bytes to send.
    Opened {
        /// The connection.
        conn: ConnId,
        /// Its write queue.
        writer: mpsc::Sender<Bytes>,
    },
    /// A TCP connection is gone.
    Closed {
        /// The connection.
        conn: ConnId,
    },
    /// An outbound connection could not be opened (refused, timed out, or its TLS
    /// handshake or certificate failed): what waits on it fails now.
    Unreachable {
        /// The destination, as the core addressed it.
        to: Peer,
    },
}
