#!/usr/bin/env python3
"""A simulated contact center on loopback, driving a running holdless (issue 13).

    sim.py run PARAMS.json OUT_DIR      run the simulated day against holdless; writes
                                        OUT_DIR/events.json (everything observed)
    sim.py explain PARAMS.json OUT_DIR  (holdless stopped) read holdless's store: per callback
                                        the queue it was quoted against, against what happened
                                        -> OUT_DIR/explain.md, explain.json
    sim.py report PARAMS.json OUT_DIR   fetch holdless's records of every registered callback,
                                        compare, write OUT_DIR/report.json, report.md and
                                        sim.png (if matplotlib imports); exit 1 when an aim
                                        (PARAMS "aims") fails; OUT_DIR/records.json keeps the
                                        records (SIM_OFFLINE=1: use them, holdless not needed;
                                        SIM_BREAK_QUOTES=zero|half|double: the same checks
                                        against quotes broken on purpose, a self-test)

Standard library only (matplotlib for the plot, optional). sim.sh writes PARAMS.json and
holdless's configuration; see sim.sh for the parameters and their defaults.

The model. Callers arrive as a Poisson process whose rate is `base_rate` per simulated
minute times a piecewise-linear daily shape (`shape`: [[hour from opening, factor], ...]:
a morning peak, a lunch dip). Each caller is either transferred to holdless over SIP (an
INVITE with `User-to-User`, the menu answered with SIP INFO `application/dtmf-relay`: 1 =
call me back at this number, 0 = keep holding) or, for the `api_share`, registers through
the Scheduler API (request_callback); `callback_share` of them choose a callback. A SIP
caller who keeps holding is really passed by holdless to the contact center (key 0).
Callers alternate between the call targets (customer-first and agent-first).

The contact center (one UAS on its own address) has `agents` agents. An INVITE is answered
after a connect delay (uniform `connect_s`) when an agent is free; otherwise it rings in a
queue (`cc_mode` "queue") or gets 486 ("busy"). Agent legs of callbacks (an
`X-User-To-User` header, or From a number with a registered callback) are queued ahead of
holding callers. An agent who answers hangs up (BYE) after a handle time drawn from a
lognormal of mean `handle_mean_s` and spread `handle_sigma`. The customers' phones (a UAS
behind holdless's outbound trunk) answer after a ring delay (uniform `ring_s`) and press 1
(SIP INFO); a share is busy (486) or never answers (rings until CANCEL).

Time is compressed: every simulated duration is divided by `speed` for the wire (one real
second = `speed` simulated seconds); every figure reported is in simulated time. SIP
protocol timers are not scaled. Everything stays on 127.0.0.0/8; the run is bounded.
"""
import asyncio
import bisect
import json
import math
import os
import random
import socket
import sys
import time
import urllib.error
import urllib.request

# ------------------------------------------------------------------ SIP messages

COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
           "l": "content-length", "c": "content-type", "k": "supported", "s": "subject"}


class Msg:
    def __init__(self, data):
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", "replace").split("\r\n")
        self.first = lines[0]
        self.headers = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and self.headers:
                n, v = self.headers[-1]
                self.headers[-1] = (n, v + " " + line.strip())
                continue
            n, _, v = line.partition(":")
            n = n.strip().lower()
            self.headers.append((COMPACT.get(n, n), v.strip()))
        self.body = body
        p = self.first.split(" ", 2)
        self.is_response = p[0].startswith("SIP/")
        if self.is_response:
            self.status = int(p[1])
            self.method = None
            self.uri = None
        else:
            self.status = None
            self.method = p[0]
            self.uri = p[1] if len(p) > 1 else ""

    def get(self, name, default=""):
        for n, v in self.headers:
            if n == name:
                return v
        return default

    def all(self, name):
        out = []
        for n, v in self.headers:
            if n == name:
                out.extend(x.strip() for x in split_commas(v))
        return out

    @property
    def call_id(self):
        return self.get("call-id")

    @property
    def cseq(self):
        n, _, m = self.get("cseq").partition(" ")
        return int(n or 0), m.strip()

    @property
    def branch(self):
        return param(self.get("via"), "branch")


def split_commas(v):
    out, cur, q, a = [], "", False, 0
    for ch in v:
        if ch == '"':
            q = not q
        elif not q and ch == "<":
            a += 1
        elif not q and ch == ">":
            a -= 1
        if ch == "," and not q and a == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out


def param(v, name):
    for p in v.split(";")[1:]:
        k, _, val = p.partition("=")
        if k.strip().lower() == name:
            return val.strip()
    return ""


def uri_of(v):
    """The URI of a name-addr or addr-spec header value."""
    if "<" in v:
        return v[v.index("<") + 1:v.index(">")]
    return v.split(";")[0].strip()


def user_of(uri):
    u = uri.split(":", 1)[-1]
    return u.split("@")[0].split(";")[0] if "@" in u else ""


def hostport_of(uri):
    u = uri.split(":", 1)[-1]
    u = u.split("@")[-1].split(";")[0].split(">")[0]
    h, _, p = u.partition(":")
    return h, int(p or 5060)


def rnd(n=10):
    return "".join(random.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))


def sdp(ip, port):
    return (f"v=0\r\no=sim {port} 1 IN IP4 {ip}\r\ns=sim\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
            f"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n").encode()


def build(first, headers, body=b""):
    out = [first]
    for n, v in headers:
        out.append(f"{n}: {v}")
    out.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(out) + "\r\n\r\n").encode() + body


# ------------------------------------------------------------------ a UDP user agent

T1 = 0.5
T2 = 4.0


class Dialog:
    def __init__(self, ua, call_id, local, local_tag, remote, remote_tag, target, peer):
        self.ua, self.call_id = ua, call_id
        self.local, self.local_tag = local, local_tag
        self.remote, self.remote_tag = remote, remote_tag
        self.target, self.peer = target, peer
        self.cseq = random.randint(1, 1000)
        self.ended = asyncio.get_running_loop().create_future()
        self.ack = None      # our ACK for a 2xx (resent on a 2xx retransmission)
        self.on_bye = None   # callback when the other side hangs up

    def end(self, why):
        if not self.ended.done():
            self.ended.set_result(why)

    async def request(self, method, body=b"", ctype=None, extra=()):
        self.cseq += 1
        branch = "z9hG4bK" + rnd(16)
        h = [("Via", f"SIP/2.0/UDP {self.ua.ip}:{self.ua.port};branch={branch};rport"),
             ("Max-Forwards", "70"),
             ("From", f"<{self.local}>;tag={self.local_tag}"),
             ("To", f"<{self.remote}>" + (f";tag={self.remote_tag}" if self.remote_tag else "")),
             ("Call-ID", self.call_id), ("CSeq", f"{self.cseq} {method}"),
             ("Contact", f"<sip:{self.ua.ip}:{self.ua.port}>")]
        h.extend(extra)
        if ctype:
            h.append(("Content-Type", ctype))
        return await self.ua.send_request(build(f"{method} {self.target} SIP/2.0", h, body),
                                          branch, self.peer, method == "INVITE")


class UA(asyncio.DatagramProtocol):
    """One SIP endpoint: client transactions with retransmission, server side with
    response caching (retransmitted requests get the same answer), dialogs by Call-ID."""

    def __init__(self, ip, port, on_invite=None, media_port=5370):
        self.ip, self.port, self.media_port = ip, port, media_port
        self.on_invite = on_invite
        self.tx = {}         # branch -> [future(final), provisional event, msg bytes, addr]
        self.dialogs = {}    # call-id -> Dialog
        self.served = {}     # (call-id, cseq, method) -> last response bytes
        self.invites = {}    # call-id -> ServerInvite (UAS)
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def error_received(self, exc):
        pass

    def send(self, data, addr):
        try:
            self.transport.sendto(data, addr)
        except OSError:
            pass

    async def send_request(self, data, branch, addr, invite):
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        prov = asyncio.Event()
        self.tx[branch] = [fut, prov, data, addr]
        t = T1
        deadline = loop.time() + 32
        try:
            self.send(data, addr)
            while not fut.done() and loop.time() < deadline:
                if invite and prov.is_set():
                    # proceeding: wait for the final answer (ring timeouts are the peer's)
                    return await asyncio.wait_for(fut, 3600)
                try:
                    return await asyncio.wait_for(asyncio.shield(fut), t)
                except asyncio.TimeoutError:
                    if invite and prov.is_set():
                        continue
                    self.send(data, addr)
                    t = min(t * 2, T2)
            return fut.result() if fut.done() else None
        except asyncio.TimeoutError:
            return None
        finally:
            self.tx.pop(branch, None)

    def respond(self, req, addr, status, reason, body=b"", ctype=None, to_tag=None, extra=()):
        h = [("Via", v) for v in req.all("via")]
        to = req.get("to")
        if to_tag and "tag=" not in to:
            to = to + ";tag=" + to_tag
        h += [("From", req.get("from")), ("To", to), ("Call-ID", req.call_id),
              ("CSeq", req.get("cseq"))]
        if status < 300 and req.method in ("INVITE", "SUBSCRIBE"):
            h.append(("Contact", f"<sip:{self.ip}:{self.port}>"))
        h.extend(extra)
        if ctype:
            h.append(("Content-Type", ctype))
        data = build(f"SIP/2.0 {status} {reason}", h, body)
        n, m = req.cseq
        self.served[(req.call_id, n, m)] = data
        self.send(data, addr)
        return data

    def datagram_received(self, data, addr):
        if not data.strip():
            return
        try:
            msg = Msg(data)
        except Exception:
            return
        if msg.is_response:
            self.on_response(msg, addr)
        else:
            self.on_request(msg, addr)

    def on_response(self, msg, addr):
        t = self.tx.get(msg.branch)
        n, m = msg.cseq
        if t is None:
            # a 2xx retransmission for an INVITE already answered: ACK again
            d = self.dialogs.get(msg.call_id)
            if d is not None and m == "INVITE" and 200 <= msg.status < 300 and d.ack:
                self.send(d.ack, addr)
            return
        fut, prov, data, taddr = t
        if msg.status < 200:
            prov.set()
            return
        if m == "INVITE" and msg.status >= 300:
            # ACK for a failure: same branch, To from the response
            h = [("Via", msg.all("via")[0]), ("Max-Forwards", "70"), ("From", msg.get("from")),
                 ("To", msg.get("to")), ("Call-ID", msg.call_id), ("CSeq", f"{n} ACK")]
            first = Msg(data).first.split(" ")[1]
            self.send(build(f"ACK {first} SIP/2.0", h), addr)
        if not fut.done():
            fut.set_result(msg)

    def on_request(self, msg, addr):
        n, m = msg.cseq
        key = (msg.call_id, n, m)
        if msg.method != "ACK" and key in self.served:
            self.send(self.served[key], addr)   # a retransmission
            return
        if msg.method == "ACK":
            s = self.invites.get(msg.call_id)
            if s is not None:
                s.acked.set()
            return
        if msg.method == "CANCEL":
            self.respond(msg, addr, 200, "OK")
            s = self.invites.get(msg.call_id)
            if s is not None and not s.final:
                s.final = True
                self.respond(s.req, addr, 487, "Request Terminated", to_tag=s.tag)
                s.cancelled.set()
            return
        d = self.dialogs.get(msg.call_id)
        if msg.method == "INVITE" and d is None and msg.call_id not in self.invites:
            if self.on_invite is None or "tag=" in msg.get("to"):
                self.respond(msg, addr, 481, "Call/Transaction Does Not Exist")
                return
            s = ServerInvite(self, msg, addr)
            self.invites[msg.call_id] = s
            self.on_invite(s)   # the owner keeps the task (an unreferenced task may be collected)
            return
        if d is None and msg.call_id in self.invites:
            d = self.invites[msg.call_id].dialog
        if d is None:
            if msg.method in ("OPTIONS",):
                self.respond(msg, addr, 200, "OK")
            else:
                self.respond(msg, addr, 481, "Call/Transaction Does Not Exist")
            return
        if msg.method == "BYE":
            self.respond(msg, addr, 200, "OK")
            d.end("bye")
        elif msg.method in ("INVITE", "UPDATE"):
            # a refresh or re-offer: answer with the same media
            s = self.invites.get(msg.call_id)
            if s is not None:
                s.acked.clear()
            self.respond(msg, addr, 200, "OK", sdp(self.ip, self.media_port), "application/sdp")
        else:
            self.respond(msg, addr, 200, "OK")   # INFO, OPTIONS, NOTIFY...


class ServerInvite:
    """An INVITE we received (customer phone, contact center)."""

    def __init__(self, ua, req, addr):
        self.ua, self.req, self.addr = ua, req, addr
        self.tag = rnd(8)
        self.final = False
        self.acked = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.dialog = None
        self.at = time.time()

    def ring(self):
        self.ua.respond(self.req, self.addr, 180, "Ringing", to_tag=self.tag)

    def reject(self, status, reason):
        if self.final:
            return
        self.final = True
        self.ua.respond(self.req, self.addr, status, reason, to_tag=self.tag)

    async def answer(self):
        """200 with SDP, retransmitted until the ACK; -> the dialog, or None."""
        if self.final:
            return None
        self.final = True
        req = self.req
        contact = uri_of(req.get("contact")) or uri_of(req.get("from"))
        d = Dialog(self.ua, req.call_id, uri_of(req.get("to")), self.tag, uri_of(req.get("from")),
                   param(req.get("from"), "tag"), contact, self.addr)
        d.cseq = random.randint(1, 1000)
        self.dialog = d
        self.ua.dialogs[req.call_id] = d
        data = self.ua.respond(req, self.addr, 200, "OK", sdp(self.ua.ip, self.ua.media_port), "application/sdp",
                               to_tag=self.tag)
        t = T1
        for _ in range(10):
            try:
                await asyncio.wait_for(self.acked.wait(), t)
                return d
            except asyncio.TimeoutError:
                if d.ended.done():
                    return None
                self.ua.send(data, self.addr)
                t = min(t * 2, T2)
        return d


def sink(ip, port):
    """A UDP socket nobody reads: RTP sent to our SDP ports is dropped by the kernel."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.bind((ip, port))
    return s


# ------------------------------------------------------------------ HTTP (Scheduler API)

def http(base, token, method, path, body=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"null")
        except Exception:
            return e.code, None
    except Exception as e:
        return 0, str(e)


# ------------------------------------------------------------------ the simulation

def shape_at(shape, h):
    """The load factor at simulated hour h (from opening), piecewise linear."""
    xs = [p[0] for p in shape]
    if h <= xs[0]:
        return shape[0][1]
    if h >= xs[-1]:
        return shape[-1][1]
    i = bisect.bisect_right(xs, h)
    (x0, y0), (x1, y1) = shape[i - 1], shape[i]
    return y0 + (y1 - y0) * (h - x0) / (x1 - x0) if x1 > x0 else y1


class Sim:
    def __init__(self, p, out):
        self.p, self.out = p, out
        self.speed = p["speed"]
        self.rng = random.Random(p["seed"])
        self.t0 = None
        self.callers = []        # one dict per caller
        self.callbacks = {}      # number -> dict (registered callbacks)
        self.cust_invites = []   # {number, at, outcome}
        self.agent_legs = []     # {number, at, priority, uui, answered, ended, agent}
        self.agent_busy = []     # [start, end] real times per agent assignment
        self.free_agents = p["agents"]
        self.queue_pri = []      # ServerInvite entries
        self.queue_hold = []
        self.tasks = set()
        self.active_calls = 0
        self.errors = []

    # times
    def now(self):
        return time.time()

    def sim_s(self, real_s):
        return real_s * self.speed

    def real(self, sim_s):
        return sim_s / self.speed

    async def sleep_sim(self, sim_s):
        await asyncio.sleep(max(0.0, self.real(sim_s)))

    def uni(self, lo_hi):
        return self.rng.uniform(lo_hi[0], lo_hi[1])

    def handle_time(self):
        m, s = self.p["handle_mean_s"], self.p["handle_sigma"]
        return self.rng.lognormvariate(math.log(m) - s * s / 2, s)

    def spawn(self, coro):
        t = asyncio.ensure_future(coro)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)
        t.add_done_callback(self._log_exc)
        return t

    def _log_exc(self, t):
        if not t.cancelled() and not isinstance(t.exception(), asyncio.CancelledError) and t.exception() is not None:
            self.errors.append(repr(t.exception()))

    # ---------------------------------------------------------- the callers
    async def caller(self, k, target, channel, wants_cb):
        p = self.p
        number = "+1555%07d" % (6100000 + k)
        c = {"k": k, "number": number, "target": target["id"], "channel": channel,
             "callback": wants_cb, "arrived": self.now()}
        self.callers.append(c)
        if channel == "api":
            if not wants_cb:
                c["outcome"] = "api_hold"   # held in the contact center's own queue: not modelled
                return
            body = {"contact_number": number, "user_data": {"uui": f"SIM-{k}"}, "channel": "ivr"}
            t_send = self.now()
            st, js = await asyncio.to_thread(http, p["api"], p["token"], "POST",
                                             f"/api/widget/{target['widget']}/request_callback", body)
            t_ans = self.now()
            if st == 200:
                d = js["data"][0]
                self.callbacks[number] = {"number": number, "target": target["id"],
                                          "first_party": target["first_party"], "channel": "api",
                                          "reg": (t_send + t_ans) / 2, "quote_real": d.get("ewt"),
                                          "id": d.get("callback_request_id"), "k": k}
                c["outcome"] = "registered"
            else:
                c["outcome"] = f"refused {st} {js}"
            return
        # over SIP: the transfer with User-to-User, the menu, a key by SIP INFO
        self.active_calls += 1
        try:
            await self.sip_caller(c, target, wants_cb)
        finally:
            self.active_calls -= 1

    async def sip_caller(self, c, target, wants_cb):
        p, ua = self.p, self.ua_caller
        number = c["number"]
        call_id = rnd(20) + "@sim"
        tag = rnd(8)
        ruri = f"sip:{target['number']}@{p['holdless_ip']}:{p['holdless_port']}"
        d = Dialog(ua, call_id, f"sip:{number}@{ua.ip}", tag, f"sip:{target['number']}@{p['holdless_ip']}",
                   None, ruri, (p["holdless_ip"], p["holdless_port"]))
        ua.dialogs[call_id] = d
        uui = ("SIM-%d" % c["k"]).encode().hex()
        try:
            r = await d.request("INVITE", sdp(ua.ip, p["sink_port"]), "application/sdp",
                                [("User-to-User", f"{uui};encoding=hex;purpose=call")])
            if r is None or r.status >= 300:
                c["outcome"] = f"invite {r.status if r else 'timeout'}"
                return
            d.remote_tag = param(r.get("to"), "tag")
            d.target = uri_of(r.get("contact")) or d.target
            n, _ = r.cseq
            h = [("Via", f"SIP/2.0/UDP {ua.ip}:{ua.port};branch=z9hG4bK{rnd(16)};rport"),
                 ("Max-Forwards", "70"), ("From", f"<{d.local}>;tag={tag}"),
                 ("To", r.get("to")), ("Call-ID", call_id), ("CSeq", f"{n} ACK")]
            d.ack = build(f"ACK {d.target} SIP/2.0", h)
            ua.send(d.ack, d.peer)
            await self.sleep_sim(self.uni(p["think_s"]))
            key = "1" if wants_cb else "0"
            c["key_at"] = self.now()
            r = await d.request("INFO", f"Signal={key}\r\nDuration=160\r\n".encode(),
                                "application/dtmf-relay")
            c["key_answered"] = self.now()
            if wants_cb:
                self.callbacks[number] = {"number": number, "target": target["id"],
                                          "first_party": target["first_party"], "channel": "sip",
                                          "reg": c["key_answered"], "invite_at": c["arrived"],
                                          "quote_real": None, "id": None, "k": c["k"]}
                self.spawn(self.lookup(number))
            # wait for holdless's BYE (after the confirmation, or when the agent hangs up)
            try:
                why = await asyncio.wait_for(asyncio.shield(d.ended), p["caller_max_real_s"])
                c["outcome"] = f"ended {why}"
            except asyncio.TimeoutError:
                await d.request("BYE")
                c["outcome"] = "hung up (bound)"
        finally:
            c["ended"] = self.now()
            ua.dialogs.pop(call_id, None)

    async def lookup(self, number):
        """The callback id and quote of a SIP caller's callback (callback_status)."""
        p = self.p
        for _ in range(5):
            st, js = await asyncio.to_thread(http, p["api"], p["token"], "POST",
                                             f"/api/organization/{p['org']}/callback_status",
                                             {"contact_number": number})
            if st == 200 and js and js.get("data"):
                e = js["data"][0]
                cb = self.callbacks[number]
                cb["id"] = e.get("call_request_id")
                cb["status_wait"] = e.get("estimated_wait_time")
                return
            await asyncio.sleep(0.3)

    # ---------------------------------------------------------- the customers' phones
    async def customer(self, s):
        p = self.p
        number = user_of(s.req.uri)
        ev = {"number": number, "at": s.at}
        self.cust_invites.append(ev)
        x = self.rng.random()
        if x < p["customer_busy"]:
            await asyncio.sleep(0.05)
            s.reject(486, "Busy Here")
            ev["outcome"] = "busy"
            return
        s.ring()
        if x < p["customer_busy"] + p["customer_no_answer"]:
            ev["outcome"] = "no_answer"
            try:
                await asyncio.wait_for(s.cancelled.wait(), p["caller_max_real_s"])
            except asyncio.TimeoutError:
                s.reject(480, "Temporarily Unavailable")
            return
        try:
            await asyncio.wait_for(s.cancelled.wait(), self.real(self.uni(p["ring_s"])))
            ev["outcome"] = "cancelled"
            return
        except asyncio.TimeoutError:
            pass
        d = await s.answer()
        ev["answered"] = self.now()
        if d is None:
            ev["outcome"] = "no ack"
            return
        ev["outcome"] = "answered"
        self.active_calls += 1
        try:
            await self.sleep_sim(self.uni(p["press_s"]))
            if not d.ended.done():
                await d.request("INFO", b"Signal=1\r\nDuration=160\r\n", "application/dtmf-relay")
            try:
                await asyncio.wait_for(asyncio.shield(d.ended), p["caller_max_real_s"])
            except asyncio.TimeoutError:
                await d.request("BYE")
        finally:
            ev["ended"] = self.now()
            self.active_calls -= 1
            s.ua.dialogs.pop(s.req.call_id, None)
            s.ua.invites.pop(s.req.call_id, None)

    # ---------------------------------------------------------- the contact center
    async def cc_invite(self, s):
        p = self.p
        frm = user_of(uri_of(s.req.get("from")))
        uui = s.req.get("x-user-to-user")
        pri = bool(uui) or frm in self.callbacks
        leg = {"number": frm, "at": s.at, "priority": pri, "uui": uui, "uui_header": bool(uui)}
        self.agent_legs.append(leg)
        s.leg = leg
        s.ring()
        if self.free_agents <= 0 and p["cc_mode"] == "busy":
            s.reject(486, "Busy Here")
            leg["outcome"] = "busy"
            return
        (self.queue_pri if pri else self.queue_hold).append(s)
        self.dispatch()
        await s.cancelled.wait()
        if leg.get("outcome") is None:
            leg["outcome"] = "cancelled"
        for q in (self.queue_pri, self.queue_hold):
            if s in q:
                q.remove(s)

    def dispatch(self):
        while self.free_agents > 0 and (self.queue_pri or self.queue_hold):
            s = (self.queue_pri or self.queue_hold).pop(0)
            if s.final:
                continue
            self.free_agents -= 1
            self.spawn(self.agent(s))

    async def agent(self, s):
        p = self.p
        leg = s.leg
        start = self.now()
        leg["assigned"] = start
        try:
            try:
                await asyncio.wait_for(s.cancelled.wait(), self.real(self.uni(p["connect_s"])))
                return
            except asyncio.TimeoutError:
                pass
            d = await s.answer()
            leg["answered"] = self.now()
            if d is None:
                return
            self.active_calls += 1
            try:
                ht = self.handle_time()
                leg["handle_s"] = ht
                try:
                    why = await asyncio.wait_for(asyncio.shield(d.ended), self.real(ht))
                    leg["outcome"] = f"ended by holdless ({why})"
                except asyncio.TimeoutError:
                    leg["outcome"] = "completed"
                    d.end("agent")
                    self.spawn(d.request("BYE"))
            finally:
                self.active_calls -= 1
        finally:
            end = self.now()
            leg["freed"] = end
            self.agent_busy.append([start, end])
            self.free_agents += 1
            s.ua.dialogs.pop(s.req.call_id, None)
            s.ua.invites.pop(s.req.call_id, None)
            self.dispatch()

    # ---------------------------------------------------------- the run
    async def run(self):
        p = self.p
        loop = asyncio.get_running_loop()
        mp = p["sink_port"]
        self.ua_caller = UA(p["caller_ip"], p["caller_port"], None, mp)
        self.ua_cust = UA(p["customer_ip"], p["customer_port"], lambda s: self.spawn(self.customer(s)), mp)
        self.ua_cc = UA(p["cc_ip"], p["cc_port"], lambda s: self.spawn(self.cc_invite(s)), mp)
        sinks = []
        for ua in (self.ua_caller, self.ua_cust, self.ua_cc):
            await loop.create_datagram_endpoint(lambda ua=ua: ua, local_addr=(ua.ip, ua.port))
            sinks.append(sink(ua.ip, p["sink_port"]))
        self.t0 = self.now()
        day_real = self.real(p["day_min"] * 60)
        # arrivals: thinning of a Poisson process at the peak rate
        shape = p["shape"]
        fmax = max(y for _, y in shape)
        lam_max = p["base_rate"] * fmax / 60.0          # per simulated second
        t = 0.0
        arrivals = []
        while True:
            t += self.rng.expovariate(lam_max)
            if t >= p["day_min"] * 60:
                break
            if self.rng.random() <= shape_at(shape, t / 3600.0) / fmax:
                arrivals.append(t)
        print(f"sim: {len(arrivals)} callers over {p['day_min']} simulated minutes "
              f"({day_real:.0f} real s at speed {self.speed})", flush=True)
        targets = p["targets"]
        for k, ts in enumerate(arrivals):
            delay = self.t0 + self.real(ts) - self.now()
            if delay > 0:
                await asyncio.sleep(delay)
            target = targets[k % len(targets)]
            channel = "api" if self.rng.random() < p["api_share"] else "sip"
            wants = self.rng.random() < p["callback_share"]
            self.spawn(self.caller(k, target, channel, wants))
            if k % 50 == 0:
                self.progress()
        # drain: every registered callback launched, and no call left (bounded)
        end_by = self.now() + p["drain_max_real_s"]
        while self.now() < end_by:
            await asyncio.sleep(1)
            launched = self.launches()
            if all(n in launched for n in self.callbacks) and self.active_calls == 0 \
                    and not self.queue_pri and self.free_agents == p["agents"]:
                break
            self.progress()
        self.t_end = self.now()
        pending = list(self.tasks)
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for s in sinks:
            s.close()
        self.save()

    def launches(self):
        out = {}
        for e in self.cust_invites:
            out.setdefault(e["number"], e["at"])
        for e in self.agent_legs:
            if e["number"] in self.callbacks:
                out.setdefault(e["number"], e["at"])
        return out

    def progress(self):
        el = self.sim_s(self.now() - self.t0)
        busy = self.p["agents"] - self.free_agents
        print(f"sim: t={el / 60:6.1f} min  callers {len(self.callers)}  callbacks "
              f"{len(self.callbacks)}  launched {len(self.launches())}  agents busy {busy}  "
              f"queue {len(self.queue_pri)}+{len(self.queue_hold)}  calls {self.active_calls}",
              flush=True)

    def save(self):
        ev = {"t0": self.t0, "t_end": self.t_end, "callers": self.callers,
              "callbacks": self.callbacks, "cust_invites": self.cust_invites,
              "agent_legs": self.agent_legs, "agent_busy": self.agent_busy,
              "errors": self.errors[:50]}
        with open(os.path.join(self.out, "events.json"), "w") as f:
            json.dump(ev, f, indent=1, default=str)


# ------------------------------------------------------------------ the report

def parse_ts(v):
    if v is None:
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str) and v.isdigit():
        return float(v)
    from datetime import datetime
    return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()


def pct(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    i = (len(xs) - 1) * q
    lo, hi = int(math.floor(i)), int(math.ceil(i))
    return xs[lo] + (xs[hi] - xs[lo]) * (i - lo)


def within(quote, actual):
    """The issue's aim: within ±20 % of the quote, or ±2 minutes for quotes under 10 minutes."""
    err = abs(actual - quote)
    return err <= 120 if quote < 600 else err <= 0.2 * quote


def report(p, out):
    ev = json.load(open(os.path.join(out, "events.json")))
    S = p["speed"]
    t0 = ev["t0"]
    hours0 = p.get("open_hour", 9)
    cbs = ev["callbacks"]
    # holdless's record of every callback
    mism = []
    cache = os.path.join(out, "records.json")
    if os.environ.get("SIM_OFFLINE") == "1":
        # holdless is gone: the records fetched by the run's own report
        for n, rec in json.load(open(cache)).items():
            cbs[n]["record"] = rec
    for n, cb in cbs.items():
        if "record" in cb:
            continue
        if not cb.get("id"):
            st, js = http(p["api"], p["token"], "POST",
                          f"/api/organization/{p['org']}/callback_status", {"contact_number": n})
            if st == 200 and js and js.get("data"):
                cb["id"] = js["data"][0].get("call_request_id")
        if cb.get("id"):
            st, js = http(p["api"], p["token"], "GET", f"/api/organization/{p['org']}/callback/{cb['id']}")
            cb["record"] = js["data"][0] if st == 200 and js and js.get("data") else None
    if os.environ.get("SIM_OFFLINE") != "1":
        with open(cache, "w") as f:
            json.dump({n: cb.get("record") for n, cb in cbs.items()}, f)
    # SIM_BREAK_QUOTES=zero|half|double: the checks against a broken estimator (self-test)
    brk = os.environ.get("SIM_BREAK_QUOTES")
    if brk:
        for cb in cbs.values():
            rec = cb.get("record") or {}
            for o in (rec, cb):
                key = "ecbt" if o is rec else "quote_real"
                if o.get(key) is not None:
                    o[key] = {"zero": 0, "half": o[key] / 2, "double": o[key] * 2}[brk]
    cust_first, agent_first = {}, {}
    for e in ev["cust_invites"]:
        cust_first.setdefault(e["number"], e)
    for e in ev["agent_legs"]:
        if e["number"] in cbs:
            agent_first.setdefault(e["number"], e)
    rows = []
    for n, cb in cbs.items():
        rec = cb.get("record") or {}
        ecbt = rec.get("ecbt", cb.get("quote_real"))
        if cb.get("quote_real") is not None and rec.get("ecbt") is not None and cb["quote_real"] != rec["ecbt"]:
            mism.append(f"{n}: API ewt {cb['quote_real']} s != record ecbt {rec['ecbt']} s")
        # "actual": when the customer's phone first rang (what the quote promises, and
        # holdless's processedAt: the customer leg's launch, after the agent answered when
        # the agent is called first); the agent-first launch (agent INVITE) is kept apart
        cust = cust_first.get(n)
        launch = cust
        agent = agent_first.get(n)
        r = {"number": n, "target": cb["target"], "first_party": cb["first_party"],
             "channel": cb["channel"], "reg_sim": (cb["reg"] - t0) * S,
             "quote": ecbt * S if ecbt is not None else None,
             "status": rec.get("status"), "last_result": rec.get("last_result"),
             "attempts": rec.get("attempts")}
        if launch is not None:
            r["actual"] = (launch["at"] - cb["reg"]) * S
        if agent is not None and cb["first_party"] == "agent":
            r["actual_agent_leg"] = (agent["at"] - cb["reg"]) * S
        # holdless's own figures (real seconds -> simulated)
        req_at = parse_ts(rec.get("requested_at"))
        est_for = parse_ts(rec.get("estimatedFor"))
        proc = parse_ts(rec.get("processedAt"))
        if rec.get("punctuality") is not None:
            r["hl_punctuality"] = rec["punctuality"] * S
            r["hl_was_punctual"] = rec.get("wasPunctual")
            r["hl_accuracy"] = rec.get("estimatePercentAccuracy")
        if proc is not None and launch is not None:
            d = proc - launch["at"]
            if abs(d) > 2.5:   # whole seconds on holdless's side
                mism.append(f"{n}: processedAt {rec.get('processedAt')} is {d:+.1f} real s from the "
                            f"launch the simulator saw")
        if req_at is not None and abs(req_at - cb["reg"]) > 2.5:
            mism.append(f"{n}: requested_at {rec.get('requested_at')} is {req_at - cb['reg']:+.1f} "
                        f"real s from the registration the simulator saw")
        if est_for is not None and launch is not None:
            r["punctuality"] = (launch["at"] - est_for) * S
            if r.get("hl_punctuality") is not None and abs(r["punctuality"] - r["hl_punctuality"]) > 2.5 * S:
                mism.append(f"{n}: punctuality {r['hl_punctuality']:.0f} sim s recorded, "
                            f"{r['punctuality']:.0f} measured")
            if rec.get("wasPunctual") is not None:
                off = abs(launch["at"] - est_for)
                mine = off <= p["punctual_within_real_s"] + 0.5
                if mine != rec["wasPunctual"] and abs(off - p["punctual_within_real_s"]) > 1.5:
                    mism.append(f"{n}: wasPunctual {rec['wasPunctual']} recorded, {mine} measured")
            if req_at is not None and rec.get("estimatePercentAccuracy") is not None:
                est = est_for - req_at
                acc = max(0.0, min(1.0, 1 - abs(launch["at"] - est_for) / max(est, 60.0)))
                if abs(acc - rec["estimatePercentAccuracy"]) > 0.05:
                    mism.append(f"{n}: estimatePercentAccuracy {rec['estimatePercentAccuracy']} "
                                f"recorded, {acc:.3f} measured")
        if r.get("actual") is not None and r.get("quote") is not None:
            r["err"] = r["actual"] - r["quote"]
            r["ok"] = within(r["quote"], r["actual"])
            r["ok20"] = abs(r["err"]) <= 0.2 * r["quote"]
            r["ok2m"] = abs(r["err"]) <= 120
            # estimatePercentAccuracy with the 60 s floor in simulated time
            r["accuracy_sim"] = max(0.0, min(1.0, 1 - abs(r["err"]) / max(r["quote"], 60.0)))
        rows.append(r)
    rows.sort(key=lambda r: r["reg_sim"])

    def summary(rs):
        m = [r for r in rs if r.get("err") is not None]
        comp = [r for r in m if r.get("status") == "Completed"]
        base = comp or m
        errs = [r["err"] for r in base]
        out = {"n": len(rs), "launched": len(m), "completed": len(comp),
               "failed": sum(1 for r in rs if r.get("status") == "Failed"),
               "aim_share": (sum(r["ok"] for r in base) / len(base)) if base else None,
               "within_20pct": (sum(r["ok20"] for r in base) / len(base)) if base else None,
               "within_2min": (sum(r["ok2m"] for r in base) / len(base)) if base else None,
               "err_p10": pct(errs, 0.1), "err_p50": pct(errs, 0.5), "err_p90": pct(errs, 0.9),
               "abs_err_p50": pct([abs(x) for x in errs], 0.5),
               "abs_err_p90": pct([abs(x) for x in errs], 0.9),
               "quote_mean": (sum(r["quote"] for r in base) / len(base)) if base else None,
               "actual_mean": (sum(r["actual"] for r in base) / len(base)) if base else None}
        pun = [r for r in base if r.get("hl_was_punctual") is not None]
        out["was_punctual"] = (sum(bool(r["hl_was_punctual"]) for r in pun) / len(pun)) if pun else None
        acc = [r["hl_accuracy"] for r in base if r.get("hl_accuracy") is not None]
        out["hl_accuracy_mean"] = sum(acc) / len(acc) if acc else None
        acc = [r["accuracy_sim"] for r in base]
        out["accuracy_sim_mean"] = sum(acc) / len(acc) if acc else None
        return out

    res = {"params": p, "all": summary(rows)}
    for fp in ("customer", "agent"):
        res[f"first_party_{fp}"] = summary([r for r in rows if r["first_party"] == fp])
    for ch in ("sip", "api"):
        res[f"channel_{ch}"] = summary([r for r in rows if r["channel"] == ch])
    phases = p.get("phases", [])
    res["phases"] = []
    for name, a, b in phases:
        s = summary([r for r in rows if a * 3600 <= r["reg_sim"] < b * 3600])
        s["phase"] = f"{name} ({a:g}-{b:g} h)"
        res["phases"].append(s)
    # agents' utilisation (simulated day, and per hour)
    span = (ev["t_end"] - t0)
    day = p["day_min"] * 60 / S
    busy = sum(min(e, t0 + day) - max(s, t0) for s, e in ev["agent_busy"] if s < t0 + day)
    res["utilisation_day"] = busy / (p["agents"] * day)
    hourly = []
    nb = max(1, int(math.ceil(p["day_min"] / 30)))
    for i in range(nb):
        a, b = t0 + i * 1800 / S, t0 + (i + 1) * 1800 / S
        u = sum(max(0.0, min(e, b) - max(s, a)) for s, e in ev["agent_busy"]) / (p["agents"] * (b - a))
        arr = sum(1 for c in ev["callers"] if a <= c["arrived"] < b)
        hourly.append({"from_min": i * 30, "utilisation": u, "arrivals_per_min": arr / 30})
    res["per_half_hour"] = hourly
    res["run_real_s"] = span
    # held callers' waits (contact center queue)
    held = [(e.get("answered", e.get("freed", 0)) - e["at"]) * S for e in ev["agent_legs"]
            if not e["priority"] and e.get("answered")]
    pri = [(e["answered"] - e["at"]) * S for e in ev["agent_legs"] if e["priority"] and e.get("answered")]
    res["cc_wait"] = {"holding_n": len(held), "holding_p50": pct(held, 0.5), "holding_p90": pct(held, 0.9),
                      "callback_legs_n": len(pri), "callback_legs_p50": pct(pri, 0.5),
                      "callback_legs_p90": pct(pri, 0.9),
                      "uui_header_share": (sum(e["uui_header"] for e in ev["agent_legs"] if e["priority"]) /
                                           max(1, sum(1 for e in ev["agent_legs"] if e["priority"])))}
    res["callers"] = len(ev["callers"])
    res["caller_outcomes"] = {}
    for c in ev["callers"]:
        o = (c.get("outcome") or "?").split(" (")[0][:40]
        res["caller_outcomes"][o] = res["caller_outcomes"].get(o, 0) + 1
    res["tracking"] = tracking(rows, p)
    res["mismatches"] = mism[:200]
    res["mismatch_count"] = len(mism)
    res["sim_errors"] = ev.get("errors", [])
    res["rows"] = rows
    # the aims
    aims = p["aims"]
    checks = []
    a = res["all"]
    checks.append(("callbacks launched", a["launched"] >= aims["min_launched"],
                   f"{a['launched']} launched of {a['n']} registered (want >= {aims['min_launched']})"))
    checks.append(("quotes within +-20 % / +-2 min", a["aim_share"] is not None and a["aim_share"] >= aims["share"],
                   f"{fmt_pct(a['aim_share'])} of {a['completed'] or a['launched']} (want >= {fmt_pct(aims['share'])})"))
    t = res["tracking"]
    lag = t.get("lag_min")
    if aims.get("track_min") is not None:
        checks.append(("quote follows the load", lag is not None and lag <= aims["track_min"],
                       f"lag {lag} min (want <= {aims['track_min']})"))
    if aims.get("informative"):
        # quotes must move with the waits: long actual waits must have been quoted as long
        long = [r for r in rows if r.get("actual") is not None and r.get("quote") is not None
                and r["actual"] >= aims["informative"]["wait_s"]]
        if long:
            q = sum(r["quote"] for r in long) / len(long)
            act = sum(r["actual"] for r in long) / len(long)
            lo, hi = aims["informative"]["ratio"], aims["informative"].get("ratio_max", 2.0)
            ok = lo * act <= q <= hi * act
            checks.append(("quotes informative", ok,
                           f"{len(long)} callbacks waited >= {aims['informative']['wait_s'] / 60:.0f} min: "
                           f"mean quote {q / 60:.1f} min, mean wait {act / 60:.1f} min "
                           f"(want the quote {lo:.0%}-{hi:.0%} of the wait)"))
        else:
            checks.append(("quotes informative", False,
                           f"no callback waited {aims['informative']['wait_s'] / 60:.0f} min: the run built no queue"))
    res["checks"] = [{"name": n, "ok": ok, "detail": d} for n, ok, d in checks]
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(res, f, indent=1, default=str)
    md = markdown(res, p)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(md)
    print(md)
    try:
        plot(rows, res, p, os.path.join(out, "sim.png"))
        print(f"plot: {os.path.join(out, 'sim.png')}")
    except Exception as e:   # no matplotlib: the figures stand without the plot
        print(f"plot: not drawn ({e})")
    return all(ok for _, ok, _ in checks)


def tracking(rows, p):
    """How the quote followed the waits. Per 10-minute bin of registration time: the mean
    quote and the mean actual wait. The lag: the shift L (0-60 min, 1-min steps) for which
    each callback's quote best matches the actual waits of callbacks registered L earlier
    (a +-5 min running mean), i.e. how late the quote is in telling what the waits are.
    And when the actual waits (5-min bins) first reach half way from their first hour's
    level to their peak, and when the quotes do."""
    pts = sorted((r["reg_sim"], r["quote"], r["actual"]) for r in rows
                 if r.get("actual") is not None and r.get("quote") is not None)
    binm = 10
    nb = int(math.ceil(p["day_min"] / binm))
    out = {"bin_min": binm}
    for name, idx, w in (("quote_mean_min", 1, binm), ("actual_mean_min", 2, binm)):
        vals = [[] for _ in range(nb)]
        for x in pts:
            vals[min(nb - 1, int(x[0] // (w * 60)))].append(x[idx])
        out[name] = [sum(v) / len(v) / 60 if v else None for v in vals]
    if len(pts) < 5:
        return out

    def actual_at(t):
        v = [a for r, _, a in pts if abs(r - t) <= 300]
        return sum(v) / len(v) if v else None

    best = None
    for lag in range(0, 61):
        d = [(q - a) ** 2 for r, q, _ in pts for a in [actual_at(r - lag * 60)] if a is not None]
        if len(d) >= 5:
            e = sum(d) / len(d)
            if best is None or e < best[1] - 1e-6:
                best = (lag, e)
    if best is not None:
        out["lag_min"] = best[0]
        out["rmse_min_at_lag"] = math.sqrt(best[1]) / 60
        d0 = [(q - a) ** 2 for r, q, _ in pts for a in [actual_at(r)] if a is not None]
        out["rmse_min_at_0"] = math.sqrt(sum(d0) / len(d0)) / 60
    # half-way crossings, 5-minute bins
    n5 = int(math.ceil(p["day_min"] / 5))
    qa = [[[], []] for _ in range(n5)]
    for r, q, a in pts:
        i = min(n5 - 1, int(r // 300))
        qa[i][0].append(q)
        qa[i][1].append(a)
    qm = [sum(x[0]) / len(x[0]) if x[0] else None for x in qa]
    am = [sum(x[1]) / len(x[1]) if x[1] else None for x in qa]
    # the load change: the first rise of the shape; the level before it (its last hour)
    rise = next((a for (a, y0), (_, y1) in zip(p["shape"], p["shape"][1:]) if y1 > y0), 0)
    i0 = int(rise * 12)
    first = [x for x in am[max(0, i0 - 12):i0] if x is not None]
    vals = [x for x in am[i0:] if x is not None]
    if first and vals and max(vals) > sum(first) / len(first) + 120:
        lo = sum(first) / len(first)
        half = (lo + max(vals)) / 2
        ia = next(i for i, x in enumerate(am) if i >= i0 and x is not None and x >= half)
        iq = next((i for i, x in enumerate(qm) if i >= ia - 6 and x is not None and x >= half), None)
        out["actual_crosses_half_at_min"] = ia * 5
        out["quote_crosses_half_at_min"] = iq * 5 if iq is not None else None
        out["crossing_lag_min"] = (iq - ia) * 5 if iq is not None else None
    return out


def fmt_pct(x):
    return "-" if x is None else f"{100 * x:.0f} %"


def fmt_min(x):
    return "-" if x is None else f"{x / 60:+.1f}"


def markdown(res, p):
    L = []
    L.append(f"# Simulated contact center: {p['day_min'] / 60:g} h at speed {p['speed']}\n")
    L.append(f"callers {res['callers']} ({json.dumps(res['caller_outcomes'])}); agents {p['agents']}, "
             f"utilisation over the day {fmt_pct(res['utilisation_day'])}; run {res['run_real_s']:.0f} real s\n")
    L.append("| slice | registered | launched | completed | failed | within aim | ±20 % | ±2 min | "
             "actual−quote p10/p50/p90 (min) | mean quote / actual (min) | wasPunctual | accuracy (holdless / sim floor) |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")

    def f1(x, fmt="{:.1f}", div=60):
        return "-" if x is None else fmt.format(x / div)

    def row(name, s):
        L.append(f"| {name} | {s['n']} | {s['launched']} | {s['completed']} | {s['failed']} | "
                 f"{fmt_pct(s['aim_share'])} | {fmt_pct(s['within_20pct'])} | {fmt_pct(s['within_2min'])} | "
                 f"{fmt_min(s['err_p10'])} / {fmt_min(s['err_p50'])} / {fmt_min(s['err_p90'])} | "
                 f"{f1(s['quote_mean'])} / {f1(s['actual_mean'])} | {fmt_pct(s['was_punctual'])} | "
                 f"{f1(s['hl_accuracy_mean'], '{:.2f}', 1)} / {f1(s['accuracy_sim_mean'], '{:.2f}', 1)} |")

    row("all", res["all"])
    row("customer first", res["first_party_customer"])
    row("agent first", res["first_party_agent"])
    row("over SIP", res["channel_sip"])
    row("over the API", res["channel_api"])
    for s in res["phases"]:
        row(s["phase"], s)
    L.append("")
    t = res["tracking"]
    L.append(f"Tracking: best-fit lag (checked) of the quote behind the waits {t.get('lag_min')} min "
             f"(rms error {t.get('rmse_min_at_0', 0):.1f} min at lag 0, {t.get('rmse_min_at_lag', 0):.1f} at that lag); "
             f"actual waits cross half-way to their peak at {t.get('actual_crosses_half_at_min')} min, "
             f"quotes at {t.get('quote_crosses_half_at_min')} min (5-min bins).")
    L.append("quote per bin (min): " + " ".join("-" if x is None else f"{x:.1f}" for x in t["quote_mean_min"]))
    L.append("actual per bin (min): " + " ".join("-" if x is None else f"{x:.1f}" for x in t["actual_mean_min"]))
    L.append("")
    w = res["cc_wait"]
    L.append(f"Contact-center queue: holding callers {w['holding_n']} waited p50 {fmt_min(w['holding_p50'])} "
             f"p90 {fmt_min(w['holding_p90'])} min; callback agent legs {w['callback_legs_n']} p50 "
             f"{fmt_min(w['callback_legs_p50'])} p90 {fmt_min(w['callback_legs_p90'])} min; "
             f"callback legs with X-User-To-User {fmt_pct(w['uui_header_share'])}")
    L.append("utilisation per half hour: " + " ".join(f"{h['utilisation']:.2f}" for h in res["per_half_hour"]))
    L.append("arrivals/min per half hour: " + " ".join(f"{h['arrivals_per_min']:.2f}" for h in res["per_half_hour"]))
    L.append("")
    L.append(f"Records against the simulator: {res['mismatch_count']} mismatches" +
             (":" if res["mismatches"] else "."))
    for m in res["mismatches"][:15]:
        L.append(f"- {m}")
    if res["sim_errors"]:
        L.append(f"Simulator task errors: {len(res['sim_errors'])}: {res['sim_errors'][:3]}")
    L.append("")
    for c in res["checks"]:
        L.append(f"{'PASS' if c['ok'] else 'FAIL'}  {c['name']}: {c['detail']}")
    return "\n".join(L) + "\n"


def plot(rows, res, p, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    h0 = p.get("open_hour", 9)
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(10, 7), sharex=True,
                                 gridspec_kw={"height_ratios": [3, 1]})
    for fp, mk in (("customer", "o"), ("agent", "s")):
        rs = [r for r in rows if r["first_party"] == fp and r.get("actual") is not None
              and r.get("quote") is not None]
        x = [h0 + r["reg_sim"] / 3600 for r in rs]
        ax.scatter(x, [r["quote"] / 60 for r in rs], marker=mk, s=14, c="tab:blue",
                   label=f"quoted ({fp} first)", alpha=0.7)
        ax.scatter(x, [r["actual"] / 60 for r in rs], marker=mk, s=14, facecolors="none",
                   edgecolors="tab:red", label=f"actual ({fp} first)", alpha=0.8)
    t = res["tracking"]
    xb = [h0 + (i + 0.5) * t["bin_min"] / 60 for i in range(len(t["quote_mean_min"]))]
    ax.plot([x for x, v in zip(xb, t["quote_mean_min"]) if v is not None],
            [v for v in t["quote_mean_min"] if v is not None], c="tab:blue", lw=1.5, label="quoted, 10-min mean")
    ax.plot([x for x, v in zip(xb, t["actual_mean_min"]) if v is not None],
            [v for v in t["actual_mean_min"] if v is not None], c="tab:red", lw=1.5, label="actual, 10-min mean")
    ax.set_ylabel("wait (simulated minutes)")
    ax.set_title(f"holdless quotes vs actual callback waits — simulated day at speed {p['speed']}, "
                 f"{p['agents']} agents, pacing {p['pacing']}/target")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    hh = [h["from_min"] for h in res["per_half_hour"]]
    xs = [h0 + i / 60 for i in range(0, int(p["day_min"]) + 1, 5)]
    bx.plot(xs, [p["base_rate"] * shape_at(p["shape"], x - h0) for x in xs], c="k", label="arrival rate (calls/min)")
    bx.bar([h0 + (m + 15) / 60 for m in hh], [h["arrivals_per_min"] for h in res["per_half_hour"]],
           width=0.45, alpha=0.3, color="gray", label="arrivals/min (measured)")
    b2 = bx.twinx()
    b2.plot([h0 + (m + 15) / 60 for m in hh], [h["utilisation"] for h in res["per_half_hour"]],
            c="tab:green", marker=".", label="agents' utilisation")
    b2.set_ylim(0, 1.1)
    b2.set_ylabel("utilisation")
    bx.set_ylabel("calls/min")
    bx.set_xlabel("simulated time of day (h)")
    bx.legend(fontsize=7, loc="upper left")
    b2.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def explain(out, speed):
    """Why the quotes miss: from holdless's store (after it stopped; read only), for each
    callback at its registration: I (attempts in progress on its call target), A (callbacks
    queued ahead, never launched yet), R (callbacks waiting for a retry: in the FIFO, counted
    ahead by the estimator, not due), the launches that really happened before its own,
    the quote and the wait; grouped by A + R (what the estimator counts ahead)."""
    import sqlite3
    c = sqlite3.connect(f"file:{out}/data/holdless.sqlite3?mode=ro", uri=True)
    est = {r[0]: json.loads(r[1]) for r in c.execute("select * from estimators")}
    att = list(c.execute("select callback_id, attempt, call_target, launched_at, agent_connected_at, "
                         "ended_at, result from attempts"))
    cbs = list(c.execute("select cb.id, cb.call_target, cb.requested_at, cb.ecbt_secs, a.launched_at, "
                         "cb.processed_at from callbacks cb join attempts a on a.callback_id = cb.id "
                         "and a.attempt = 1"))
    nxt = {(a[0], a[1]): a for a in att}
    rows = []
    for cid, t, req, ecbt, l1, proc in cbs:
        inp = [a for a in att if a[2] == t and a[3] <= req and (a[5] or 1e18) > req]
        A = sum(1 for d in cbs if d[1] == t and d[2] < req and d[4] > req)
        R = sum(1 for a in att if a[2] == t and a[5] and a[5] <= req and (a[0], a[1] + 1) in nxt
                and nxt[(a[0], a[1] + 1)][3] > req)
        before = [a for a in att if a[2] == t and req < a[3] < l1]
        first_rel = min([a[5] for a in inp if a[5]] or [None]) if inp else None
        rows.append({"target": t, "I": len(inp), "A": A, "R": R, "launches_before": len(before),
                     "failed_before": sum(1 for a in before if a[6] != "completed"),
                     "quote_min": ecbt * speed / 60, "wait_min": ((proc or l1) - req) * speed / 60000,
                     "first_release_min": (first_rel - req) * speed / 60000 if first_rel else None})
    L = ["# Why the quotes miss (holdless's store, per callback at registration)\n",
         "estimator state at the end: " + "; ".join(
             f"{t}: H {e['hold_secs'] * speed / 60:.1f} min, G {e['gap_secs'] * speed / 60:.1f} min, "
             f"C {e['connect_secs'] * speed:.0f} s" for t, e in sorted(est.items())) + "\n",
         "| A+R counted ahead | callbacks | of which R (retries not due) | mean quote (min) | "
         "mean wait (min) | launches really before it | of which failed attempts | "
         "first slot release after registration (min, all slots busy) |",
         "|---|---|---|---|---|---|---|---|"]
    groups = {}
    for r in rows:
        if r["I"] < 2 and r["A"] + r["R"] == 0:
            key = "free slot"
        else:
            key = str(min(r["A"] + r["R"], 5)) + ("+" if r["A"] + r["R"] >= 5 else "")
        groups.setdefault(key, []).append(r)

    def m(xs):
        xs = [x for x in xs if x is not None]
        return f"{sum(xs) / len(xs):.1f}" if xs else "-"
    for k in sorted(groups, key=lambda k: (k != "free slot", k)):
        g = groups[k]
        L.append(f"| {k} | {len(g)} | {m([r['R'] for r in g])} | {m([r['quote_min'] for r in g])} | "
                 f"{m([r['wait_min'] for r in g])} | {m([r['launches_before'] for r in g])} | "
                 f"{m([r['failed_before'] for r in g])} | "
                 f"{m([r['first_release_min'] for r in g if r['I'] >= 2])} |")
    # What better counts could reach: the wait modelled as (x + c) x G with the best
    # constant G for the run (least squares, per call target), for callbacks that queued
    L += ["", "Share within the aim (+-20 %, +-2 min under 10 min) of callbacks that queued, "
          "for quotes (x + c) x G with the best G of the run:", "",
          "| count x, c | customer first | agent first |", "|---|---|---|"]

    def within_min(q, a):
        return abs(a - q) <= 2 if q < 10 else abs(a - q) <= 0.2 * q
    models = [("holdless's quote as it was", None),
              ("x = A + R (holdless's count), c = 1", lambda r: (r["A"] + r["R"], 1.0)),
              ("x = A (retries not due left out), c = 1/2 (half a gap to the first release)",
               lambda r: (r["A"], 0.5)),
              ("oracle: x = the launches that really came first, c = 1/2",
               lambda r: (r["launches_before"], 0.5)),
              ("oracle: those launches, and the first slot release known",
               lambda r: (r["launches_before"], r["first_release_min"]))]
    for name, f in models:
        cells = []
        for tgt in ("cust", "agent"):
            rs = [r for r in rows if r["target"] == tgt and (r["I"] >= 2 or r["A"] + r["R"] > 0)]
            if f is not None and "first slot" in name:
                rs = [r for r in rs if r["first_release_min"] is not None]
            if not rs:
                cells.append("-")
                continue
            if f is None:
                q = [r["quote_min"] for r in rs]
            elif "first slot" in name:
                num = sum((r["wait_min"] - r["first_release_min"]) * r["launches_before"] for r in rs)
                g = num / max(1, sum(r["launches_before"] ** 2 for r in rs))
                q = [r["first_release_min"] + r["launches_before"] * g for r in rs]
            else:
                xc = [f(r) for r in rs]
                g = sum(r["wait_min"] * (x + c) for r, (x, c) in zip(rs, xc)) / \
                    max(1e-9, sum((x + c) ** 2 for x, c in xc))
                q = [(x + c) * g for x, c in xc]
            ok = sum(within_min(a, r["wait_min"]) for a, r in zip(q, rs))
            cells.append(f"{100 * ok / len(rs):.0f} % of {len(rs)}")
        L.append(f"| {name} | {cells[0]} | {cells[1]} |")
    txt = "\n".join(L) + "\n"
    with open(os.path.join(out, "explain.md"), "w") as f:
        f.write(txt)
    with open(os.path.join(out, "explain.json"), "w") as f:
        json.dump(rows, f, indent=1)
    print(txt)


def main():
    cmd, pfile, out = sys.argv[1], sys.argv[2], sys.argv[3]
    p = json.load(open(pfile))
    random.seed(p["seed"] + 1)
    if cmd == "run":
        asyncio.run(Sim(p, out).run())
    elif cmd == "explain":
        explain(out, p["speed"])
    elif cmd == "report":
        sys.exit(0 if report(p, out) else 1)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
