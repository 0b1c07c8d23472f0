//! UDP listeners: one reader task per socket handing datagrams to the engine.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::engine::Input;
use crate::metrics::{Counters, Kind};
use crate::sip::parse::MAX_MESSAGE_BYTES;
use crate::sip::Peer;

/// Binds a UDP socket (IPv6 sockets are v6-only so a v4 listener can share the port).
pub(super) async fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    UdpSocket::bind(addr).await
}

/// Reads datagrams until the engine goes away.
pub(super) async fn read_loop(sock: Arc<UdpSocket>, tx: mpsc::Sender<Input>, counters: Counters) {
    let mut buf = vec![0u8; MAX_MESSAGE_BYTES + 1];
    let local = sock.local_addr().ok();
    loop {
        let (n, from) = match sock.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                // ICMP port-unreachable from an earlier send surfaces here on some systems.
                tracing::trace!(error = %e, "UDP receive error");
                continue;
            }
        };
        if n > MAX_MESSAGE_BYTES {
            counters.inc(Kind::Dropped, "too_large");
            continue;
        }
        let input = Input::Message {
            bytes: Bytes::copy_from_slice(&buf[..n]),
            from: Peer {
                local,
                ..Peer::udp(from)
            },
        };
        match tx.try_send(input) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => counters.inc(Kind::Dropped, "overload"),
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}
