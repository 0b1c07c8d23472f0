//! Batched, non-blocking datagram receive (`recvmmsg`) for the media sockets.
//!
//! A media socket at 33–50 packets/s usually holds one datagram when its task wakes. Reading
//! it with `recv_from` until `EAGAIN` costs two receive calls per packet; one `recvmmsg` that
//! returns fewer datagrams than it asked for has emptied the queue at that instant, so the
//! caller can clear the socket's readiness without the failing second call (a datagram
//! arriving afterwards raises a new readiness event).
//!
//! On a socket with [`enable_timestamps`], each datagram also carries the kernel's receive
//! time (`SO_TIMESTAMPNS`), from which the relay measures its own latency.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Datagrams asked for in one `recvmmsg`.
pub const BATCH: usize = 8;

/// One received datagram: its length in the buffer's slot, and its source.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    /// Bytes written into the slot.
    pub len: usize,
    /// The sender, or `None` for an address family holdless does not relay.
    pub from: Option<SocketAddr>,
    /// The datagram did not fit in its slot.
    pub truncated: bool,
    /// When the kernel received it (`CLOCK_REALTIME`, ns), or 0 without timestamps.
    pub stamp_ns: u64,
}

impl Received {
    /// An empty slot, before a receive fills it.
    pub const EMPTY: Received = Received {
        len: 0,
        from: None,
        truncated: false,
        stamp_ns: 0,
    };
}

/// Asks the kernel to stamp every datagram `fd` receives with its arrival time. (The first
/// socket on a host to ask turns stamping on a moment later: until then the stamp is the
/// receive's own time, which reads as no latency.)
pub fn enable_timestamps(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a plain int option on a socket the caller owns.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `CLOCK_REALTIME` now, in ns: the clock of [`Received::stamp_ns`].
pub fn realtime_ns() -> u64 {
    // SAFETY: all-zero is a valid timespec; clock_gettime only writes it.
    let mut ts: libc::timespec = unsafe { zeroed() };
    // SAFETY: a valid pointer to a timespec on the stack.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Room for one control message holding a `timespec` (8-byte aligned).
type Control = [u64; 8];

/// Receives up to [`BATCH`] datagrams from `fd` into `buf`, split in [`BATCH`] slots of
/// `slot` bytes, without blocking. Returns how many arrived (`WouldBlock` for none).
pub fn recv_batch(
    fd: RawFd,
    buf: &mut [u8],
    slot: usize,
    out: &mut [Received; BATCH],
) -> io::Result<usize> {
    let slots = (buf.len() / slot.max(1)).min(BATCH);
    if slots == 0 {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: all-zero is a valid value for these plain C structs.
    let mut names: [libc::sockaddr_storage; BATCH] = unsafe { zeroed() };
    let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
    let mut controls: [Control; BATCH] = [[0; 8]; BATCH];
    for (i, chunk) in buf.chunks_exact_mut(slot).take(slots).enumerate() {
        iovs[i] = libc::iovec {
            iov_base: chunk.as_mut_ptr().cast(),
            iov_len: chunk.len(),
        };
        let h = &mut hdrs[i].msg_hdr;
        h.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
        h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        h.msg_iov = &mut iovs[i];
        h.msg_iovlen = 1;
        h.msg_control = controls[i].as_mut_ptr().cast();
        h.msg_controllen = size_of::<Control>() as _;
    }
    // SAFETY: every header points at a live iovec over its own slot of `buf` and at its own
    // sockaddr_storage and control buffer, all outliving the call; `slots` bounds what the kernel may fill.
    let n = unsafe {
        libc::recvmmsg(
            fd,
            hdrs.as_mut_ptr(),
            slots as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    for i in 0..n {
        out[i] = Received {
            len: hdrs[i].msg_len as usize,
            from: socket_addr(&names[i]),
            truncated: hdrs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            stamp_ns: stamp(&hdrs[i].msg_hdr),
        };
    }
    Ok(n)
}

/// The `SCM_TIMESTAMPNS` the kernel attached to a received message, or 0.
fn stamp(h: &libc::msghdr) -> u64 {
    // SAFETY: the header's control buffer was filled by recvmmsg (msg_controllen says how
    // much); the CMSG macros walk only within it.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                return ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    0
}

/// The socket address the kernel wrote, for IPv4 and IPv6.
fn socket_addr(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in; storage is larger
            // and suitably aligned for it.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddrV4::new(ip, u16::from_be(a.sin_port)).into())
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            let port = u16::from_be(a.sin6_port);
            Some(SocketAddrV6::new(ip, port, a.sin6_flowinfo, a.sin6_scope_id).into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    fn empty() -> [Received; BATCH] {
        [Received::EMPTY; BATCH]
    }

    #[test]
    fn reads_several_datagrams_with_their_sources_then_would_block() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        a.send_to(b"one", to).unwrap();
        b.send_to(b"second", to).unwrap();
        a.send_to(&[7u8; 40], to).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut buf = vec![0u8; 32 * BATCH];
        let mut out = empty();
        let n = recv_batch(rx.as_raw_fd(), &mut buf, 32, &mut out).unwrap();
        assert_eq!(n, 3);
        assert_eq!(&buf[..out[0].len], b"one");
        assert_eq!(out[0].from, Some(a.local_addr().unwrap()));
        assert_eq!(&buf[32..32 + out[1].len], b"second");
        assert_eq!(out[1].from, Some(b.local_addr().unwrap()));
        assert!(out[2].truncated, "40 bytes do not fit a 32-byte slot");
        assert!(!out[0].truncated && !out[1].truncated);
        let again = recv_batch(rx.as_raw_fd(), &mut buf, 32, &mut out);
        assert_eq!(again.unwrap_err().kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn timestamps_are_the_kernel_arrival_time_when_enabled() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let mut buf = vec![0u8; 32 * BATCH];
        let mut out = empty();
        tx.send_to(b"plain", to).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(10));
        recv_batch(rx.as_raw_fd(), &mut buf, 32, &mut out).unwrap();
        assert_eq!(out[0].stamp_ns, 0, "no timestamp unless asked for");
        enable_timestamps(rx.as_raw_fd()).unwrap();
        // The kernel turns arrival stamping on for the whole host a moment after the first
        // socket asks (a deferred static key); until then it stamps at receive. So: some
        // attempt within a second must show the arrival time, 30 ms before the receive.
        let mut seen = Vec::new();
        for _ in 0..30 {
            let before = realtime_ns();
            tx.send_to(b"stamped", to).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(30));
            let n = recv_batch(rx.as_raw_fd(), &mut buf, 32, &mut out).unwrap();
            let after = realtime_ns();
            assert_eq!(n, 1);
            assert_eq!(&buf[..out[0].len], b"stamped");
            let at = out[0].stamp_ns;
            assert!(before <= at && at <= after, "{before} <= {at} <= {after}");
            if after - at >= 20_000_000 {
                return; // stamped on arrival, not on receive
            }
            seen.push(after - at);
        }
        panic!("never stamped on arrival: receive - stamp = {seen:?} ns");
    }

    #[test]
    fn ipv6_sources_are_read_when_loopback_v6_exists() {
        let Ok(rx) = UdpSocket::bind("[::1]:0") else {
            eprintln!("no [::1] here: IPv6 case skipped");
            return;
        };
        let tx = UdpSocket::bind("[::1]:0").unwrap();
        tx.send_to(b"v6", rx.local_addr().unwrap()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut buf = vec![0u8; 64 * BATCH];
        let mut out = empty();
        let n = recv_batch(rx.as_raw_fd(), &mut buf, 64, &mut out).unwrap();
        assert_eq!(n, 1);
        assert_eq!(out[0].from, Some(tx.local_addr().unwrap()));
    }
}
