#!/usr/bin/env python3
"""Writes the key-press pcaps the inbound suite plays with SIPp's play_pcap_audio.

    python3 sip-tests/inbound/make_pcaps.py [OUT_DIR]     (default: this folder)

Each pcap is Ethernet/IPv4/UDP/RTP (link type 1, like /usr/share/sip-tester/*.pcap);
SIPp rewrites only the addresses and ports, so the payload types below are what the SDP
must offer: telephone-event on 101, PCMA on 8.

  keys-0.pcap          RFC 4733 '0' (keep holding)
  keys-star.pcap       RFC 4733 '*' (keep holding too)
  keys-2-number.pcap   RFC 4733 '2', 1 s, '5552345678#', 1.5 s, '1'
                       (another number, its digits then #, the read-back confirmed)
  keys-3-1.pcap        RFC 4733 '3', 1.5 s, '1' (scheduled: the first slot read out)
  inband-1.pcap        PCMA audio: 100 ms silence, 200 ms of DTMF '1' (697 + 1209 Hz,
                       each tone about -9 dBm0), 300 ms silence; no telephone-event at all

An RFC 4733 key is 7 packets 20 ms apart (duration 160 .. 1120 samples) and three
end-of-event packets (E bit, duration 1280), volume 10, one timestamp per key, the marker
bit on its first packet; keys 100 ms apart. One SSRC, sequence numbers and timestamps run
on through the whole file (a receiver may drop a repeated timestamp as a retransmission).
"""
import math
import os
import struct
import sys

SSRC = 0x484C4453  # "HLDS"
TE_PT = 101
PCMA_PT = 8
EVENTS = {str(d): d for d in range(10)}
EVENTS.update({"*": 10, "#": 11})


def lin2alaw(sample):
    """G.711 A-law of a 16-bit linear sample."""
    sample = max(-32768, min(32767, int(sample)))
    sign = 0x80 if sample >= 0 else 0x00
    if sample < 0:
        sample = -sample - 1
    sample >>= 3  # 13-bit magnitude
    if sample < 32:
        seg, mant = 0, sample >> 1
    else:
        seg = 1
        while sample >= (64 << (seg - 1)) and seg < 7:
            seg += 1
        mant = (sample >> seg) & 0x0F
    return (sign | (seg << 4) | mant) ^ 0x55


class Pcap:
    """A pcap of RTP packets from 127.0.0.1:6000 to 127.0.0.1:7000, timed in seconds."""

    def __init__(self):
        self.packets = []
        self.seq = 4000
        self.t = 0.0

    def rtp(self, pt, ts, payload, marker=False, at=None):
        hdr = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, self.seq & 0xFFFF, ts & 0xFFFFFFFF, SSRC)
        self.seq += 1
        self.packets.append((self.t if at is None else at, hdr + payload))

    def write(self, path):
        out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
        base = 1_800_000_000
        for t, rtp in self.packets:
            udp_len = 8 + len(rtp)
            udp = struct.pack("!HHHH", 6000, 7000, udp_len, 0) + rtp
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0x4000, 64, 17, 0,
                             bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
            csum = sum(struct.unpack("!10H", ip))
            while csum >> 16:
                csum = (csum & 0xFFFF) + (csum >> 16)
            ip = ip[:10] + struct.pack("!H", ~csum & 0xFFFF) + ip[12:]
            frame = b"\x00" * 12 + b"\x08\x00" + ip + udp
            sec = base + int(t)
            usec = int(round((t - int(t)) * 1e6))
            if usec >= 1_000_000:
                sec, usec = sec + 1, usec - 1_000_000
            out.append(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
        with open(path, "wb") as f:
            f.write(b"".join(out))


def rfc4733(keys):
    """keys: a list of (key, pause_after_seconds)."""
    p = Pcap()
    ts = 160_000
    for key, pause in keys:
        ev = EVENTS[key]
        for i in range(7):
            p.rtp(TE_PT, ts, struct.pack("!BBH", ev, 10, 160 * (i + 1)), marker=(i == 0))
            p.t += 0.020
        for _ in range(3):
            p.rtp(TE_PT, ts, struct.pack("!BBH", ev, 0x80 | 10, 1280))
            p.t += 0.001
        p.t += pause
        ts += int(round((0.14 + 0.003 + pause) * 8000)) + 160
    return p


def inband(key_freqs, tone_s=0.2, before_s=0.1, after_s=0.3):
    p = Pcap()
    lo, hi = key_freqs
    amp = 8000  # per tone; A-law full scale is about 32767 (+3.14 dBm0)
    total = before_s + tone_s + after_s
    n = int(round(total * 8000))
    t0, t1 = int(before_s * 8000), int((before_s + tone_s) * 8000)
    samples = []
    for k in range(n):
        if t0 <= k < t1:
            x = amp * (math.sin(2 * math.pi * lo * k / 8000) + math.sin(2 * math.pi * hi * k / 8000))
        else:
            x = 0
        samples.append(lin2alaw(x))
    ts = 320_000
    for f in range(0, n, 160):
        p.rtp(PCMA_PT, ts + f, bytes(samples[f:f + 160]), marker=(f == 0))
        p.t += 0.020
    return p


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    rfc4733([("0", 0.1)]).write(os.path.join(out, "keys-0.pcap"))
    rfc4733([("*", 0.1)]).write(os.path.join(out, "keys-star.pcap"))
    number = [(d, 0.1) for d in "5552345678"] + [("#", 1.5)]
    rfc4733([("2", 1.0)] + number + [("1", 0.1)]).write(os.path.join(out, "keys-2-number.pcap"))
    rfc4733([("3", 1.5), ("1", 0.1)]).write(os.path.join(out, "keys-3-1.pcap"))
    inband((697, 1209)).write(os.path.join(out, "inband-1.pcap"))


if __name__ == "__main__":
    main()
