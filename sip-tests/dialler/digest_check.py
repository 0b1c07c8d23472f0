#!/usr/bin/env python3
"""Checks the digest answer holdless sent a challenging trunk (dialler suite, trunk-auth).

    digest_check.py SIPP_LOG NUMBER PORT

SIPP_LOG holds the line "AUTH <Proxy-Authorization value>" logged by uas-customer-407.xml;
the answer must be RFC 7616's for user holdless, password s3cret-trunk, realm trunk.test,
MD5, qop=auth, Request-URI sip:NUMBER@127.0.0.1:PORT. Exits 1 saying why when it is not.
"""
import hashlib
import re
import sys

log, number, port = sys.argv[1], sys.argv[2], sys.argv[3]
lines = [l for l in open(log) if l.startswith("AUTH ")]
if not lines:
    sys.exit("no AUTH line: the trunk never got a second INVITE")
p = dict(re.findall(r'(\w+)="?([^",]*)"?', lines[0].strip().split(" ", 1)[1]))
md5 = lambda s: hashlib.md5(s.encode()).hexdigest()
uri = f"sip:{number}@127.0.0.1:{port}"
if p.get("uri") != uri or p.get("username") != "holdless" or p.get("qop") != "auth":
    sys.exit(f"unexpected parameters: {p}")
ha1, ha2 = md5("holdless:trunk.test:s3cret-trunk"), md5(f"INVITE:{uri}")
want = md5(f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:auth:{ha2}")
if p.get("response") != want:
    sys.exit(f"response {p.get('response')}, RFC 7616 gives {want}")
print(f"response {want} (nc={p['nc']})")
