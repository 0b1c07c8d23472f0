#!/usr/bin/env python3
"""Counts RTP on the loopback interface for the inbound suite (needs root: AF_PACKET).

    rtpcount.py OUT.json --port 38000 [--port 38100] [--match /usr/share/sip-tester/g711a.pcap]
                [--prompts configs/prompts --prompt duplicate ...]

Runs until SIGTERM/SIGINT (or --seconds), then writes OUT.json:
  {"38000": {"in": N, "out": N, "in_pt": {"8": N, ...}, "in_matched": N, "out_matched": N,
             "in_prompt": {"duplicate": N, ...}}, ..., "prompt_frames": {"duplicate": N, ...}}
"in" counts UDP datagrams to 127.x:PORT that look like RTP (version 2), "out" those from it.
"in_matched"/"out_matched" count the ones whose RTP payload is byte for byte one of the
payloads of the --match pcap: audio that crossed holdless unchanged (e.g. g711a.pcap played by
the other side of a bridge), as opposed to holdless's own prompts.
"in_prompt" counts the distinct PCMA payloads to the port that are, byte for byte, one of the
20 ms frames of the --prompt's WAV (in --prompts, 8 kHz mono 16-bit) encoded with G.711
A-law from its first sample, and found in no other WAV of the folder (silence, and words
two prompts share, such as "Thank you", are left out). "prompt_frames" says how many such
frames the prompt has: a prompt played from its start to its end shows all of them.
Prints "ready" on stdout once the socket is open.
"""
import argparse
import glob
import os
import json
import signal
import socket
import struct
import sys
import time
import wave

sys.dont_write_bytecode = True  # no __pycache__ in the repo
from make_pcaps import lin2alaw  # noqa: E402

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def pcap_payloads(path):
    payloads = set()
    with open(path, "rb") as f:
        data = f.read()
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack("<IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if len(frame) < 14 + 20 + 8 + 12 or frame[12:14] != b"\x08\x00":
            continue
        ihl = (frame[14] & 0x0F) * 4
        rtp = frame[14 + ihl + 8:]
        cc = rtp[0] & 0x0F
        payloads.add(bytes(rtp[12 + 4 * cc:]))
    return payloads


def prompt_frames(path):
    with wave.open(path, "rb") as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (8000, 1, 2):
            sys.exit(f"{path}: want 8 kHz mono 16-bit")
        pcm = w.readframes(w.getnframes())
    samples = struct.unpack(f"<{len(pcm) // 2}h", pcm)
    alaw = bytes(lin2alaw(x) for x in samples)
    return {alaw[i:i + 160] for i in range(0, len(alaw) - 159, 160)}


def unique_frames(folder, names):
    """name -> the frames of folder/name.wav found in no other WAV of the folder."""
    every = {os.path.basename(f)[:-4]: prompt_frames(f) for f in glob.glob(os.path.join(folder, "*.wav"))}
    out = {}
    for n in names:
        if n not in every:
            sys.exit(f"no prompt {n}.wav in {folder}")
        others = set().union(*(f for m, f in every.items() if m != n))
        out[n] = every[n] - others
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--port", type=int, action="append", required=True)
    ap.add_argument("--match")
    ap.add_argument("--prompts")
    ap.add_argument("--prompt", action="append", default=[])
    ap.add_argument("--seconds", type=float, default=120)
    a = ap.parse_args()
    match = pcap_payloads(a.match) if a.match else set()
    prompts = unique_frames(a.prompts, a.prompt) if a.prompt else {}
    seen = {(p, n): set() for p in a.port for n in prompts}
    counts = {p: {"in": 0, "out": 0, "in_pt": {}, "in_matched": 0, "out_matched": 0,
                  "in_prompt": {n: 0 for n in prompts}} for p in a.port}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:  # all loopback traffic comes through here: room for bursts of other tests' RTP
        s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE (root)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    s.bind(("lo", 0))
    s.settimeout(0.2)
    print("ready", flush=True)
    end = time.monotonic() + a.seconds
    while not stop and time.monotonic() < end:
        try:
            frame, addr = s.recvfrom(65535)
        except socket.timeout:
            continue
        except InterruptedError:
            continue
        if addr[2] == PACKET_OUTGOING or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        if len(ip) < 20 or ip[9] != 17:
            continue
        ihl = (ip[0] & 0x0F) * 4
        sport, dport = struct.unpack("!HH", ip[ihl:ihl + 4])
        rtp = ip[ihl + 8:]
        if len(rtp) < 12 or rtp[0] >> 6 != 2:
            continue
        payload = bytes(rtp[12 + 4 * (rtp[0] & 0x0F):])
        pt = str(rtp[1] & 0x7F)
        if dport in counts:
            c = counts[dport]
            c["in"] += 1
            c["in_pt"][pt] = c["in_pt"].get(pt, 0) + 1
            c["in_matched"] += payload in match
            if pt == "8":
                for n, frames in prompts.items():
                    if payload in frames:
                        seen[(dport, n)].add(payload)
        if sport in counts:
            c = counts[sport]
            c["out"] += 1
            c["out_matched"] += payload in match
    for (p, n), frames in seen.items():
        counts[p]["in_prompt"][n] = len(frames)
    out = {str(k): v for k, v in counts.items()}
    out["prompt_frames"] = {n: len(f) for n, f in prompts.items()}
    with open(a.out, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    sys.exit(main())
