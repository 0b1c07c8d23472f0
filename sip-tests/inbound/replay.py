#!/usr/bin/env python3
"""Replays one of the Twilio-style INVITEs (sip-corpus/twilio/*.sip) against holdless, as the
Twilio edge would send it, and plays the caller's side of the call.

    replay.py FILE.sip HOST:PORT [--expect 200] [--key 1] [--timeout 25]

The INVITE goes out byte for byte. The sockets are the ones the message names, so that
holdless's answers must follow it: SIP from the top Via's host and port (UDP: holdless
answers there, no rport), RTP on the SDP's c=/m= address (127.0.0.86:19534 ...). Over TCP
the connection is opened from the top Via's host.

--expect CODE: the final response wanted (a non-2xx is ACKed with the INVITE's branch).
With 200: the ACK goes to the Contact of the 200; the prompt must arrive as RTP (25 packets
at least); then --key is sent as RFC 4733 telephone-events (10 packets, on the payload type
holdless's answer gives telephone-event) to the media address of the answer, from the
offered RTP address; holdless must then hang up: its BYE must come to the Record-Route
address (the edge, which is where the replay listens), with the caller's Contact as
Request-URI. The BYE is answered 200. A BYE sent to the Contact host instead (127.0.0.25,
Twilio's internal address) is caught and reported as a failure.
Prints one line; exit status 0 when everything above held.
"""
import argparse
import random
import re
import select
import socket
import struct
import sys
import time


def parse(data):
    """One SIP message from bytes: (first line, [(name, value)], body)."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    headers = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            headers[-1] = (headers[-1][0], headers[-1][1] + " " + line.strip())
        elif ":" in line:
            n, v = line.split(":", 1)
            headers.append((n.strip(), v.strip()))
    return lines[0], headers, body


def get(headers, name):
    return [v for n, v in headers if n.lower() == name.lower()]


def uri_of(v):
    m = re.search(r"<([^>]*)>", v)
    return m.group(1) if m else v.split(";")[0].strip()


def sdp_media(body):
    text = body.decode(errors="replace")
    c = re.search(r"^c=IN IP4 (\S+)", text, re.M)
    m = re.search(r"^m=audio (\d+) RTP/AVP ([\d ]+)", text, re.M)
    te = re.search(r"^a=rtpmap:(\d+) telephone-event/8000", text, re.M | re.I)
    if not (c and m):
        return None
    return c.group(1), int(m.group(1)), int(te.group(1)) if te else None


class Tcp:
    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def messages(self):
        out = []
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i < 0:
                break
            _, hs, _ = parse(self.buf[: i + 4])
            n = int((get(hs, "Content-Length") or get(hs, "l") or ["0"])[0])
            if len(self.buf) < i + 4 + n:
                break
            out.append(self.buf[: i + 4 + n])
            self.buf = self.buf[i + 4 + n:]
        return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("target")
    ap.add_argument("--expect", type=int, default=200)
    ap.add_argument("--key", default="1")
    ap.add_argument("--timeout", type=float, default=25)
    a = ap.parse_args()
    host, port = a.target.rsplit(":", 1)
    dest = (host, int(port))
    raw = open(a.file, "rb").read()
    first, headers, body = parse(raw)
    via = get(headers, "Via")[0]
    vm = re.match(r"SIP/2.0/(UDP|TCP) ([\d.]+):?(\d+)?;.*branch=([^;\s]+)", via, re.I)
    transport, via_host, via_port, branch = vm.group(1).upper(), vm.group(2), int(vm.group(3) or 5060), vm.group(4)
    call_id = get(headers, "Call-ID")[0]
    from_ = get(headers, "From")[0]
    cseq_n = get(headers, "CSeq")[0].split()[0]
    offer = sdp_media(body)
    deadline = time.monotonic() + a.timeout
    problems = []

    rtp = None
    if offer:
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp.bind((offer[0], offer[1]))
    contact_uri = uri_of(get(headers, "Contact")[0])
    # A BYE wrongly sent to the caller's Contact (Twilio's internal host) lands here.
    stray = None
    cm = re.match(r"sip:[^@]*@([\d.]+):?(\d+)?", contact_uri)
    if transport == "UDP" and cm:
        try:
            stray = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            stray.bind((cm.group(1), int(cm.group(2) or 5060)))
        except OSError:
            stray = None
    if transport == "UDP":
        sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sip.bind((via_host, via_port))
        send = lambda data: sip.sendto(data, dest)  # noqa: E731
        tcp = None
    else:
        sip = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sip.bind((via_host, 0))
        sip.settimeout(3)
        sip.connect(dest)
        send = sip.sendall
        tcp = Tcp(sip)

    send(raw)
    sent_at, interval = time.monotonic(), 0.5
    final = None
    rtp_in, pts = 0, {}
    key_sent = False
    bye = None
    answer = None
    ack = None
    socks = [s for s in (sip, rtp, stray) if s]
    while time.monotonic() < deadline:
        if final is None and transport == "UDP" and time.monotonic() - sent_at > interval:
            send(raw)
            sent_at, interval = time.monotonic(), min(interval * 2, 4)
        r, _, _ = select.select(socks, [], [], 0.05)
        for s in r:
            if s is rtp:
                pkt, _ = rtp.recvfrom(2048)
                if len(pkt) >= 12:
                    rtp_in += 1
                    pts[pkt[1] & 0x7F] = pts.get(pkt[1] & 0x7F, 0) + 1
                continue
            if s is stray:
                data, src = stray.recvfrom(65535)
                what = data.split(b"\r\n")[0].decode(errors="replace")
                problems.append(f"a request reached the Contact host {contact_uri} instead of the Record-Route: {what}")
                continue
            if tcp:
                chunk = sip.recv(65535)
                if not chunk:
                    socks.remove(sip)
                    continue
                tcp.buf += chunk
                msgs = tcp.messages()
                src = dest
            else:
                data, src = sip.recvfrom(65535)
                msgs = [data]
            for data in msgs:
                line, hs, b = parse(data)
                if line.startswith("SIP/2.0"):
                    code = int(line.split()[1])
                    if "INVITE" not in (get(hs, "CSeq") or [""])[0]:
                        continue
                    if code < 200:
                        if final is None:
                            interval = 4  # provisional: stop fast retransmission (Timer A -> T2)
                        continue
                    to = get(hs, "To")[0]
                    if code >= 300:
                        ack = (f"ACK {first.split()[1]} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\n"
                               f"From: {from_}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq_n} ACK\r\n"
                               f"Content-Length: 0\r\n\r\n").encode()
                    else:
                        target = uri_of(get(hs, "Contact")[0]) if get(hs, "Contact") else first.split()[1]
                        nb = "z9hG4bK" + "%016x" % random.getrandbits(64)
                        v = f"SIP/2.0/{transport} {via_host}:{via_port};branch={nb}"
                        ack = (f"ACK {target} SIP/2.0\r\nVia: {v}\r\nMax-Forwards: 70\r\n"
                               f"From: {from_}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq_n} ACK\r\n"
                               f"Content-Length: 0\r\n\r\n").encode()
                        answer = sdp_media(b)
                    send(ack)  # also for each retransmitted final response
                    if final is None:
                        final = code
                elif line.startswith("BYE "):
                    bye = (line, get(hs, "Route"), src)
                    resp = "SIP/2.0 200 OK\r\n" + "".join(f"Via: {v}\r\n" for v in get(hs, "Via"))
                    for n in ("From", "To", "Call-ID", "CSeq"):
                        resp += f"{n}: {get(hs, n)[0]}\r\n"
                    send(resp.encode() + b"Content-Length: 0\r\n\r\n")
                elif line.split()[0] not in ("ACK",):
                    problems.append(f"unexpected request: {line}")
        if final is not None and final != 200:
            break
        if final == 200 and not key_sent and answer and rtp_in >= 25:
            te = answer[2] if answer[2] is not None else 101
            ts, seq, ssrc = random.getrandbits(31), random.getrandbits(15), random.getrandbits(32)
            ev = int(a.key) if a.key.isdigit() else {"*": 10, "#": 11}[a.key]
            for i in range(10):
                end = i >= 7
                dur = 1280 if end else 160 * (i + 1)
                hdr = struct.pack("!BBHII", 0x80, (0x80 if i == 0 else 0) | te, seq + i, ts, ssrc)
                rtp.sendto(hdr + struct.pack("!BBH", ev, (0x80 if end else 0) | 10, dur), (answer[0], answer[1]))
                time.sleep(0.02 if not end else 0.001)
            key_sent = True
        if bye:
            time.sleep(0.3)  # answer a retransmitted BYE, catch stray requests
            r, _, _ = select.select(socks, [], [], 0.2)
            if stray and stray in r:
                continue
            break

    desc = f"final {final}"
    if final is None:
        print(f"no final response to the INVITE within {a.timeout:.0f} s")
        return 1
    if final != a.expect:
        problems.append(f"final response {final}, want {a.expect}")
    if final == 200:
        desc += f", {rtp_in} RTP packets of prompt (PT {dict(sorted(pts.items()))}), key {a.key!r} sent" if key_sent else f", {rtp_in} RTP packets (key not sent: too little prompt audio)"
        if not key_sent:
            problems.append("fewer than 25 RTP packets of prompt audio")
        if not bye:
            problems.append("no BYE from holdless")
        else:
            line, route, src = bye
            desc += f"; BYE {line.split()[1]} at {src[0]}:{src[1]}->{via_host}:{via_port}, Route {route}"
            if line.split()[1] != contact_uri:
                problems.append(f"BYE Request-URI {line.split()[1]}, want the caller's Contact {contact_uri}")
    if problems:
        print(desc + " -- " + "; ".join(problems))
        return 1
    print(desc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
