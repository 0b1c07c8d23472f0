//! TCP and TLS listeners and connections: framing by Content-Length, CRLF keep-alives,
//! idle timeout, and a write queue per connection for responses. A TLS connection is a
//! TCP one with rustls in between: the same framing, limits and access list (checked at
//! accept, before any handshake).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::inboxes::Inboxes;
use super::input::Input;
use crate::acl::AccessList;
use crate::metrics::{Counters, Kind};
use crate::sip::framer::{Frame, StreamFramer};
use crate::sip::{ConnId, Peer};

/// Most TCP connections at once: each costs two small buffers and a task; a trunk needs a
/// handful, so 10k leaves room for many peers and bounds a connection flood.
pub const MAX_CONNECTIONS: usize = 10_000;

/// Responses queued per connection before new ones are dropped (a peer that stops reading).
pub const WRITE_QUEUE: usize = 256;

/// Pending connections the kernel holds before `accept` (tokio's own default): a trunk
/// reconnecting after a restart opens a few, a burst of many peers needs more.
pub const LISTEN_BACKLOG: i32 = 1024;

/// Binds a TCP listener. IPv6 listeners are v6-only (as for UDP), so `[::]:p` and
/// `0.0.0.0:p` can both be configured; SO_REUSEADDR so a restart rebinds at once.
pub(super) fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.set_reuse_address(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(LISTEN_BACKLOG)?;
    TcpListener::from_std(sock.into())
}

/// Listener settings.
#[derive(Clone)]
pub(super) struct Options {
    pub(super) idle: Duration,
    pub(super) drop_acl: Option<AccessList>,
    /// SIP over TLS: the handshake's server side (`None`: plain TCP).
    pub(super) tls: Option<tokio_rustls::TlsAcceptor>,
}

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// Accepts connections until the engine goes away.
pub(super) async fn accept_loop(l: TcpListener, tx: Inboxes, opts: Options, counters: Counters) {
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let (stream, addr) = match l.accept().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "TCP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if opts
            .drop_acl
            .as_ref()
            .is_some_and(|acl| !acl.permits(addr.ip()))
        {
            counters.inc(Kind::Dropped, "acl");
            continue;
        }
        if open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            counters.inc(Kind::Dropped, "tcp_connection_limit");
            continue;
        }
        if tx.is_closed() {
            return;
        }
        let conn = ConnId(NEXT_CONN.fetch_add(1, Ordering::Relaxed));
        open.fetch_add(1, Ordering::Relaxed);
        let (open, tx, counters, idle) = (open.clone(), tx.clone(), counters.clone(), opts.idle);
        let tls = opts.tls.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            match tls {
                None => connection(stream, Peer::tcp(addr, conn), tx.clone(), idle, counters).await,
                Some(acceptor) => {
                    let shake = tokio::time::timeout(
                        crate::tls::HANDSHAKE_TIMEOUT,
                        acceptor.accept(stream),
                    )
                    .await;
                    match shake {
                        Ok(Ok(stream)) => {
                            let peer = Peer::tls(addr, conn);
                            connection(stream, peer, tx.clone(), idle, counters).await
                        }
                        Ok(Err(e)) => {
                            tracing::info!(peer = %addr, error = %e, "TLS handshake failed");
                            counters.inc(Kind::Dropped, "tls_handshake");
                        }
                        Err(_) => {
                            tracing::info!(peer = %addr, "TLS handshake timed out");
                            counters.inc(Kind::Dropped, "tls_handshake");
                        }
                    }
                }
            }
            let _ = tx.send(Input::Closed { conn }).await;
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// The client side of an outbound TLS connection: the connector and the name the
/// server's certificate must carry (sent as SNI when it is a host name).
pub(super) type TlsClient = (
    tokio_rustls::TlsConnector,
    rustls::pki_types::ServerName<'static>,
);

/// Opens an outbound connection to `to` (TCP, or TLS with `tls`) in the background;
/// returns its id and write queue at once, so messages queue while it connects. A failed
/// connect or handshake reports `Unreachable`, then `Closed`.
pub(super) fn connect(
    to: Peer,
    tls: Option<TlsClient>,
    tx: Inboxes,
    idle: Duration,
    counters: Counters,
) -> (ConnId, mpsc::Sender<Bytes>) {
    let conn = ConnId(NEXT_CONN.fetch_add(1, Ordering::Relaxed));
    let (wtx, wrx) = mpsc::channel::<Bytes>(WRITE_QUEUE);
    let wtx_all = wtx.clone();
    let addr = to.addr;
    tokio::spawn(async move {
        // Every engine may have to answer on it (a request with another Call-ID).
        let opened = Input::Opened {
            conn,
            writer: wtx_all.clone(),
        };
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(e)) => {
                tracing::info!(dst = %addr, error = %e, "outbound TCP connection failed");
                None
            }
            Err(_) => {
                tracing::info!(dst = %addr, "outbound TCP connection timed out");
                None
            }
        };
        let ran = match (stream, tls) {
            (None, _) => {
                counters.inc(Kind::Dropped, "tcp_connect_failed");
                false
            }
            (Some(stream), None) => {
                let _ = stream.set_nodelay(true);
                let peer = Peer::tcp(addr, conn);
                if !serve_opened(stream, peer, opened, &tx, idle, counters, wrx).await {
                    return;
                }
                true
            }
            (Some(stream), Some((connector, name))) => {
                let _ = stream.set_nodelay(true);
                let shake = tokio::time::timeout(
                    crate::tls::HANDSHAKE_TIMEOUT,
                    connector.connect(name.clone(), stream),
                )
                .await;
                match shake {
                    Ok(Ok(stream)) => {
                        let peer = Peer::tls(addr, conn);
                        if !serve_opened(stream, peer, opened, &tx, idle, counters, wrx).await {
                            return;
                        }
                        true
                    }
                    Ok(Err(e)) => {
                        // Never a fallback to plain TCP: the leg fails.
                        tracing::warn!(dst = %addr, server = ?name, error = %e, "outbound TLS failed: the server's certificate or handshake was refused");
                        counters.inc(Kind::Dropped, "tls_handshake");
                        false
                    }
                    Err(_) => {
                        tracing::warn!(dst = %addr, server = ?name, "outbound TLS handshake timed out");
                        counters.inc(Kind::Dropped, "tls_handshake");
                        false
                    }
                }
            }
        };
        if !ran {
            let _ = tx.send(Input::Unreachable { to }).await;
        }
        let _ = tx.send(Input::Closed { conn }).await;
    });
    (conn, wtx)
}

/// Announces an opened outbound connection to the engines, then serves it until it
/// closes; `false` if the engines are gone.
async fn serve_opened<S: AsyncRead + AsyncWrite + Send + 'static>(
    stream: S,
    peer: Peer,
    opened: Input,
    tx: &Inboxes,
    idle: Duration,
    counters: Counters,
    wrx: mpsc::Receiver<Bytes>,
) -> bool {
    if tx.send(opened).await.is_err() {
        return false;
    }
    run(stream, peer, tx.clone(), idle, counters, wrx).await;
    true
}

/// How long an outbound TCP connect may take (Timer B/F bound the transaction anyway).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

async fn connection<S: AsyncRead + AsyncWrite + Send + 'static>(
    stream: S,
    peer: Peer,
    tx: Inboxes,
    idle: Duration,
    counters: Counters,
) {
    let Some(conn) = peer.conn else { return };
    let (wtx, wrx) = mpsc::channel::<Bytes>(WRITE_QUEUE);
    if tx.send(Input::Opened { conn, writer: wtx }).await.is_err() {
        return;
    }
    run(stream, peer, tx, idle, counters, wrx).await;
}

/// Reads frames to the engine and writes queued bytes until either side closes.
async fn run<S: AsyncRead + AsyncWrite + Send + 'static>(
    stream: S,
    peer: Peer,
    tx: Inboxes,
    idle: Duration,
    counters: Counters,
    mut wrx: mpsc::Receiver<Bytes>,
) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut framer = StreamFramer::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            read = tokio::time::timeout(idle, rd.read(&mut buf)) => {
                let n = match read {
                    Err(_) => { tracing::debug!(peer = %peer.addr, "closing idle TCP connection"); return; }
                    Ok(Err(_)) | Ok(Ok(0)) => return,
                    Ok(Ok(n)) => n,
                };
                framer.push(&buf[..n]);
                loop {
                    match framer.next_frame() {
                        Ok(None) => break,
                        Ok(Some(Frame::Ping)) => {
                            if wr.write_all(b"\r\n").await.is_err() { return; }
                        }
                        Ok(Some(Frame::Message(bytes))) => {
                            if tx.send(Input::Message { bytes, from: peer }).await.is_err() { return; }
                        }
                        Err(e) => {
                            tracing::info!(peer = %peer.addr, error = %e, "closing TCP connection: stream cannot be framed");
                            counters.inc(Kind::Dropped, "tcp_framing");
                            return;
                        }
                    }
                }
            }
            out = wrx.recv() => {
                let Some(bytes) = out else { return };
                if wr.write_all(&bytes).await.is_err() { return; }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ipv6_listeners_are_v6_only() {
        let Ok(l) = bind("[::1]:0".parse().unwrap()) else {
            eprintln!("skipped: cannot bind a TCP socket on [::1] here");
            return;
        };
        assert!(socket2::SockRef::from(&l).only_v6().unwrap());
        let v4 = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        assert!(v4.local_addr().unwrap().is_ipv4());
    }
}
