#!/usr/bin/env python3
"""A tiny authoritative DNS server on loopback for the dialler suite's SRV case.

    dns.py PORT ZONE_RECORDS_JSON SECONDS

Answers UDP queries on 127.0.0.1:PORT from the records given as JSON:
    {"srv": {"_sip._udp.trunk.test": [[priority, weight, port, "a.trunk.test"], ...]},
     "a":   {"a.trunk.test": "127.0.0.1", ...}}
Other names get NXDOMAIN; other types of a known name an empty answer (NOERROR). Every
query is printed as "QUERY <name> <type>" (flushed), so the suite can count them. Exits
after SECONDS. Standard library only; replies to loopback only.
"""
import json
import socket
import struct
import sys
import time

TYPES = {1: "A", 28: "AAAA", 33: "SRV", 35: "NAPTR"}


def name_bytes(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def read_name(msg, i):
    labels = []
    while msg[i] != 0:
        n = msg[i]
        labels.append(msg[i + 1:i + 1 + n].decode())
        i += 1 + n
    return ".".join(labels).lower(), i + 1


def answer(query, zone):
    (qid, _flags, qd, _an, _ns, _ar) = struct.unpack("!6H", query[:12])
    if qd != 1:
        return None
    name, i = read_name(query, 12)
    qtype, qclass = struct.unpack("!2H", query[i:i + 4])
    question = query[12:i + 4]
    print(f"QUERY {name} {TYPES.get(qtype, qtype)}", flush=True)
    known = name in zone["srv"] or name in zone["a"]
    rrs = []
    if qtype == 33 and name in zone["srv"]:
        for prio, weight, port, target in zone["srv"][name]:
            rdata = struct.pack("!3H", prio, weight, port) + name_bytes(target)
            rrs.append(b"\xc0\x0c" + struct.pack("!2HIH", 33, 1, 60, len(rdata)) + rdata)
    if qtype == 1 and name in zone["a"]:
        rdata = socket.inet_aton(zone["a"][name])
        rrs.append(b"\xc0\x0c" + struct.pack("!2HIH", 1, 1, 60, 4) + rdata)
    rcode = 0 if known else 3
    # a response, authoritative, recursion desired copied, recursion available
    flags = 0x8400 | (struct.unpack("!H", query[2:4])[0] & 0x0100) | 0x0080 | rcode
    soa = b""
    ns = 0
    if not rrs:
        # a SOA in the authority section so the negative answer can be cached
        rdata = name_bytes("ns.test") + name_bytes("hostmaster.test") + struct.pack("!5I", 1, 60, 60, 60, 30)
        soa = name_bytes("test") + struct.pack("!2HIH", 6, 1, 30, len(rdata)) + rdata
        ns = 1
    head = struct.pack("!6H", qid, flags, 1, len(rrs), ns, 0)
    return head + question + b"".join(rrs) + soa


def main():
    port, zone, seconds = int(sys.argv[1]), json.loads(sys.argv[2]), float(sys.argv[3])
    zone = {k: {n.lower(): v for n, v in zone.get(k, {}).items()} for k in ("srv", "a")}
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    s.settimeout(0.5)
    print("ready", flush=True)
    end = time.time() + seconds
    while time.time() < end:
        try:
            q, peer = s.recvfrom(512)
        except socket.timeout:
            continue
        if not peer[0].startswith("127."):
            continue
        try:
            r = answer(q, zone)
        except (IndexError, struct.error, UnicodeDecodeError):
            continue
        if r:
            s.sendto(r, peer)


if __name__ == "__main__":
    main()
