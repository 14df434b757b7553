"""A tiny authoritative DNS server for petrel's MX tests (dnslib), on loopback.

Usage: dns.py PORT ZONE_JSON
ZONE_JSON maps names to records: {"mx.example.": {"MX": [[10, "mx1.mx.example."]]},
"mx1.mx.example.": {"A": ["127.0.0.3"]}}. Names not listed answer NXDOMAIN.
Prints "ready" once listening (UDP and TCP).
"""
import json
import sys
import time

from dnslib import A, AAAA, MX, QTYPE, RCODE, RR
from dnslib.server import BaseResolver, DNSLogger, DNSServer

port, zone = int(sys.argv[1]), json.loads(sys.argv[2])


class Resolver(BaseResolver):
    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).lower()
        qtype = QTYPE[request.q.qtype]
        records = zone.get(name)
        if records is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for value in records.get(qtype, []):
            if qtype == "MX":
                reply.add_answer(RR(name, QTYPE.MX, rdata=MX(value[1], value[0]), ttl=60))
            elif qtype == "A":
                reply.add_answer(RR(name, QTYPE.A, rdata=A(value), ttl=60))
            elif qtype == "AAAA":
                reply.add_answer(RR(name, QTYPE.AAAA, rdata=AAAA(value), ttl=60))
        return reply


quiet = DNSLogger(logf=lambda s: None)
servers = [DNSServer(Resolver(), port=port, address="127.0.0.1", tcp=t, logger=quiet) for t in (False, True)]
for s in servers:
    s.start_thread()
print("ready", flush=True)
try:
    sys.stdin.read()
finally:
    for s in servers:
        s.stop()
