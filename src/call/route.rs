//! Where a SIP URI sends us: an IP literal, a port (5060 by default) and a transport.
//! holdless does not resolve names (RFC 3263): trunks and contact centers are configured by
//! address, and the egress allow-list is checked on the result.

use std::net::{IpAddr, SocketAddr};

use crate::sip::{uri, Peer, Transport};

/// The peer a `sip:` URI (Request-URI, Route or Contact) points at.
pub fn destination(target: &str) -> Result<Peer, String> {
    let u = uri::parse(target).map_err(|e| format!("not a SIP URI: {e}"))?;
    let secure = u.scheme == "sips";
    if u.scheme != "sip" && !secure {
        return Err(format!(
            "only sip: and sips: URIs can be dialled, not {}:",
            u.scheme
        ));
    }
    let rest = target
        .trim()
        .split_once(':')
        .map(|x| x.1)
        .unwrap_or_default();
    let hostport = rest.rsplit('@').next().unwrap_or_default();
    let hostport = hostport.split([';', '?']).next().unwrap_or_default();
    let (host, port) = split_host_port(hostport, if secure { 5061 } else { 5060 })?;
    let ip: IpAddr = host
        .parse()
        .map_err(|_| format!("host {host:?} is not an IP address (holdless does not use DNS)"))?;
    let addr = SocketAddr::new(ip, port);
    let param = |v: &str| {
        target
            .split(';')
            .skip(1)
            .any(|p| p.trim().eq_ignore_ascii_case(v))
    };
    let transport = if secure || param("transport=tls") {
        Transport::Tls
    } else if param("transport=tcp") {
        Transport::Tcp
    } else {
        Transport::Udp
    };
    Ok(Peer {
        transport,
        ..Peer::udp(addr)
    })
}

fn split_host_port(s: &str, default_port: u16) -> Result<(&str, u16), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']').ok_or("unterminated IPv6 reference")?;
        (&rest[..end], rest[end + 1..].strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        None => default_port,
        Some(p) => p.parse().map_err(|_| format!("bad port {p:?}"))?,
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_ports_and_transport() {
        let p = destination("sip:+15550009999@127.0.0.1:5090").unwrap();
        assert_eq!(p.addr, "127.0.0.1:5090".parse().unwrap());
        assert_eq!(p.transport, Transport::Udp);
        let p = destination("sip:127.0.0.54;lr").unwrap();
        assert_eq!(p.addr.port(), 5060);
        let p = destination("sip:agent@[::1]:5070;transport=TCP").unwrap();
        assert_eq!(p.transport, Transport::Tcp);
        assert_eq!(p.addr, "[::1]:5070".parse().unwrap());
        assert!(destination("sip:cc@example.com").is_err());
        assert!(destination("tel:+15550009999").is_err());
        let p = destination("sips:agent@127.0.0.1").unwrap();
        assert_eq!((p.transport, p.addr.port()), (Transport::Tls, 5061));
        let p = destination("sip:agent@127.0.0.1:5071;transport=tls").unwrap();
        assert_eq!((p.transport, p.addr.port()), (Transport::Tls, 5071));
    }
}
