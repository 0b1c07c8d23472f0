#!/usr/bin/env python3
"""SIP-over-TCP framing checks that SIPp cannot express, stdlib only.

usage: tcp-framing.py HOST PORT [IDLE_SECS]
HOST must be a loopback address (127.0.0.0/8 or ::1); anything else is refused.
IDLE_SECS: the server's tcp_idle_timeout_secs; adds the two idle cases.

Cases (one PASS/FAIL line each, exit 1 if any failed):
  pipelined   3 OPTIONS in ONE send() on one connection -> 3 x 200, CSeqs {1,2,3}
  split       one OPTIONS written in 3 pieces, 150 ms apart -> one 200
  keepalive   CRLF CRLF (RFC 5626 ping) -> exactly one CRLF (pong), nothing else
  after-ping  an OPTIONS on the same connection after the ping -> 200
  idle-close  a silent connection is closed by the server after IDLE_SECS
              (accepted: IDLE_SECS - 0.5 .. IDLE_SECS + 3)
  idle-reset  an OPTIONS every IDLE_SECS/2 for 1.5 x IDLE_SECS on one
              connection: all answered, the connection stays open
"""
import ipaddress
import re
import socket
import sys
import time

TIMEOUT_S = 3.0


def options(host, port, cseq, tag="tcpframing"):
    via_host = f"[{host}]" if ":" in host else host
    return (
        f"OPTIONS sip:{via_host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP {via_host}:9;branch=z9hG4bK-{tag}-{cseq}-{time.monotonic_ns()}\r\n"
        f"Max-Forwards: 70\r\n"
        f"From: <sip:{tag}@{via_host}>;tag={tag}\r\n"
        f"To: <sip:{via_host}:{port}>\r\n"
        f"Call-ID: {tag}-{time.monotonic_ns()}@{via_host}\r\n"
        f"CSeq: {cseq} OPTIONS\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


class Reader:
    """Frames SIP messages out of a TCP stream by Content-Length."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def fill(self, deadline):
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        if not data:
            raise ConnectionError("server closed the connection")
        self.buf += data
        return True

    def message(self, deadline):
        """Next whole message (bytes), or None at the deadline."""
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                head = self.buf[:end].decode(errors="replace")
                m = re.search(r"^(?:Content-Length|l)\s*:\s*(\d+)", head, re.M | re.I)
                total = end + 4 + (int(m.group(1)) if m else 0)
                if len(self.buf) >= total:
                    msg, self.buf = self.buf[:total], self.buf[total:]
                    return msg
            if time.monotonic() >= deadline or not self.fill(deadline):
                return None

    def drain(self, seconds):
        """Everything that arrives within `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.fill(deadline):
            pass
        out, self.buf = self.buf, b""
        return out


def status_and_cseq(msg):
    text = msg.decode(errors="replace")
    first = text.split("\r\n", 1)[0]
    m = re.search(r"^CSeq\s*:\s*(\d+)\s+(\S+)", text, re.M | re.I)
    return first, (int(m.group(1)) if m else None)


def case_pipelined(host, port):
    with socket.create_connection((host, port), timeout=TIMEOUT_S) as s:
        s.sendall(b"".join(options(host, port, n) for n in (1, 2, 3)))
        rd, got = Reader(s), []
        deadline = time.monotonic() + TIMEOUT_S
        for _ in range(3):
            msg = rd.message(deadline)
            if msg is None:
                break
            got.append(status_and_cseq(msg))
    ok = len(got) == 3 and all(f.startswith("SIP/2.0 200") for f, _ in got) \
        and sorted(c for _, c in got) == [1, 2, 3]
    return ok, f"responses {got}"


def case_split(host, port):
    msg = options(host, port, 7)
    with socket.create_connection((host, port), timeout=TIMEOUT_S) as s:
        for piece in (msg[:10], msg[10:60], msg[60:]):
            s.sendall(piece)
            time.sleep(0.15)
        resp = Reader(s).message(time.monotonic() + TIMEOUT_S)
    got = status_and_cseq(resp) if resp else None
    return bool(got and got[0].startswith("SIP/2.0 200") and got[1] == 7), f"response {got}"


def case_keepalive(host, port):
    with socket.create_connection((host, port), timeout=TIMEOUT_S) as s:
        s.sendall(b"\r\n\r\n")
        rd = Reader(s)
        pong = rd.drain(1.0)
        s.sendall(options(host, port, 9))
        resp = rd.message(time.monotonic() + TIMEOUT_S)
    after = status_and_cseq(resp) if resp else None
    return [
        ("keepalive", pong == b"\r\n", f"ping CRLFCRLF answered with {pong!r} (want b'\\r\\n')"),
        ("after-ping", bool(after and after[0].startswith("SIP/2.0 200") and after[1] == 9),
         f"OPTIONS after the ping: {after}"),
    ]


def case_idle_close(host, port, idle):
    with socket.create_connection((host, port), timeout=TIMEOUT_S) as s:
        t0 = time.monotonic()
        s.settimeout(idle + 3)
        try:
            data = s.recv(65536)
        except socket.timeout:
            return False, f"still open after {idle + 3} s"
        except ConnectionResetError:
            data = b""
        took = time.monotonic() - t0
    ok = data == b"" and idle - 0.5 <= took <= idle + 3
    return ok, f"closed after {took:.1f} s (idle timeout {idle} s), data before close {data[:40]!r}"


def case_idle_reset(host, port, idle):
    got, steps = [], 4
    with socket.create_connection((host, port), timeout=TIMEOUT_S) as s:
        rd = Reader(s)
        for n in range(1, steps + 1):
            s.sendall(options(host, port, n))
            msg = rd.message(time.monotonic() + TIMEOUT_S)
            got.append(status_and_cseq(msg)[1] if msg else None)
            if n < steps:
                time.sleep(idle / 2)
    return got == list(range(1, steps + 1)), f"answered CSeqs {got} over {(steps - 1) * idle / 2:.1f} s"


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    host, port = sys.argv[1], int(sys.argv[2])
    idle = float(sys.argv[3]) if len(sys.argv) == 4 else None
    if not ipaddress.ip_address(host).is_loopback:
        print(f"refusing non-loopback target {host}", file=sys.stderr)
        return 2
    results = []
    cases = [("pipelined", case_pipelined), ("split", case_split)]
    if idle:
        cases += [("idle-close", lambda h, p: case_idle_close(h, p, idle)),
                  ("idle-reset", lambda h, p: case_idle_reset(h, p, idle))]
    for name, fn in cases:
        try:
            ok, detail = fn(host, port)
        except OSError as e:
            ok, detail = False, f"socket error: {e}"
        results.append((name, ok, detail))
    try:
        results += case_keepalive(host, port)
    except OSError as e:
        results.append(("keepalive", False, f"socket error: {e}"))
    for name, ok, detail in results:
        print(f"{'PASS' if ok else 'FAIL'}: tcp-framing/{name}: {detail}")
    return 0 if all(ok for _, ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
