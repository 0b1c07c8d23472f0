//! UDP listeners: one reader task per socket handing datagrams to the engine.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::UdpSocket;

use super::inboxes::{Inboxes, NotQueued};
use super::input::Input;
use crate::metrics::{Counters, Kind, LocalCounters};
use crate::sip::parse::MAX_MESSAGE_BYTES;
use crate::sip::Peer;

/// Kernel buffer asked for on SIP UDP sockets: the 212 KB default overflows in bursts of a
/// few thousand messages a second (seen at 5k OPTIONS/s); 4 MiB holds ~4k messages,
/// ~200 ms of a 20k/s burst. The kernel caps it at net.core.rmem_max.
pub const SOCKET_BUFFER: usize = 4 << 20;

/// Binds a UDP socket with large buffers (IPv6 sockets are v6-only so a v4 listener can
/// share the port).
pub(super) async fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    let _ = sock.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = sock.set_send_buffer_size(SOCKET_BUFFER);
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    UdpSocket::from_std(sock.into())
}

/// Reads datagrams until the engine goes away.
pub(super) async fn read_loop(sock: Arc<UdpSocket>, tx: Inboxes, counters: Counters) {
    let mut buf = vec![0u8; MAX_MESSAGE_BYTES + 1];
    let local = sock.local_addr().ok();
    // Counted per datagram when the engines are overloaded: handles of this task's own.
    let mut counters = LocalCounters::new(counters);
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
            Err(NotQueued::Full) => counters.inc(Kind::Dropped, "overload"),
            Err(NotQueued::Closed) => return,
        }
    }
}
