//! Where a message came from or goes to: transport, address and, for TCP, the connection.

use std::fmt;
use std::net::SocketAddr;

use super::message::Message;

/// The transport a message travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Datagrams: retransmissions are ours to do.
    Udp,
    /// A byte stream framed by Content-Length: reliable, no retransmissions.
    Tcp,
    /// TCP inside TLS (RFC 3261 §26.2): framed and reliable as TCP.
    Tls,
}

impl Transport {
    /// Whether the transport is reliable (RFC 3261 §17: Timers A, E, G not used, D/I/J/K zero).
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Tls)
    }

    /// Whether messages travel on a connection (TCP or TLS) rather than as datagrams.
    pub fn is_stream(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Tls)
    }

    /// The Via transport token.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifies one accepted or opened TCP connection in the transport shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// The far end of a message: transport, socket address and TCP connection if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    /// The transport.
    pub transport: Transport,
    /// The remote socket address.
    pub addr: SocketAddr,
    /// The TCP connection the message arrived on or must leave on.
    pub conn: Option<ConnId>,
    /// The local UDP socket address it arrived on; replies leave from the same socket.
    pub local: Option<SocketAddr>,
}

impl Peer {
    /// A UDP peer.
    pub fn udp(addr: SocketAddr) -> Self {
        Peer {
            transport: Transport::Udp,
            addr,
            conn: None,
            local: None,
        }
    }

    /// A TCP peer on a known connection.
    pub fn tcp(addr: SocketAddr, conn: ConnId) -> Self {
        Peer {
            transport: Transport::Tcp,
            addr,
            conn: Some(conn),
            local: None,
        }
    }

    /// A TLS peer on a known connection.
    pub fn tls(addr: SocketAddr, conn: ConnId) -> Self {
        Peer {
            transport: Transport::Tls,
            ..Peer::tcp(addr, conn)
        }
    }

    /// The same peer, reached through the local socket `local`.
    pub fn via_local(mut self, local: SocketAddr) -> Self {
        self.local = Some(local);
        self
    }
}

/// A message to send, produced by a sans-IO core and sent by the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub to: Peer,
    /// What.
    pub msg: Message,
}
