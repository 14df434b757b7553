"""A recording SMTP sink for petrel's delivery tests (aiosmtpd).

Usage: sink.py HOST PORT RECORD_FILE

Every accepted message is appended to RECORD_FILE as one JSON line with the client's
address, the envelope and the data. Recipients steer the answer by their local part:
  reject*@...     550 5.1.1 at RCPT
  block*@...      554 5.7.1 ... blocked using zen.spamhaus.org at RCPT
  tempfail-N*@... 451 4.3.0 at RCPT for the first N attempts, then accepted
  full*@...       552 5.2.2 mailbox full at RCPT
  quota*@...      452 4.2.2 mailbox over quota at RCPT (always)
  throttle-N*@... 421 4.7.0 [TS01] ... deferred due to unexpected volume at RCPT for the
                  first N attempts, then accepted
  defer-N*@...    421 4.7.1 [TS02] ... deferred due to user complaints, likewise
Anything else is accepted. Prints "ready" once listening.
"""
import asyncio
import json
import time
import re
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

host, port, record = sys.argv[1], int(sys.argv[2]), sys.argv[3]
attempts = {}


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0].lower()
        if local.startswith("reject"):
            return "550 5.1.1 <%s>: Recipient address rejected: no such user" % address
        if local.startswith("block"):
            return "554 5.7.1 Service unavailable; client host %s blocked using zen.spamhaus.org" % session.peer[0]
        if local.startswith("full"):
            return "552 5.2.2 <%s>: mailbox full" % address
        if local.startswith("quota"):
            return "452 4.2.2 <%s>: mailbox over quota" % address
        peer = session.peer[0]
        for prefix, reply in (
            ("throttle", "421 4.7.0 [TS01] Messages from %s temporarily deferred due to unexpected volume" % peer),
            ("defer", "421 4.7.1 [TS02] Messages from %s temporarily deferred due to user complaints" % peer),
            ("tempfail", "451 4.3.0 <%s>: try again later (attempt {n})" % address),
        ):
            m = re.match(prefix + r"-(\d+)", local)
            if m:
                n = attempts.get(address, 0) + 1
                attempts[address] = n
                if n <= int(m.group(1)):
                    return reply.replace("{n}", str(n))
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or envelope.content
        if isinstance(data, bytes):
            data = data.decode("utf-8", "surrogateescape")
        with open(record, "a", encoding="utf-8", errors="surrogateescape") as f:
            f.write(json.dumps({
                "peer": session.peer[0],
                "helo": session.host_name,
                "mail_from": envelope.mail_from,
                "rcpts": envelope.rcpt_tos,
                "data": data,
                # When the message was accepted (seconds since the epoch), for tests
                # that check spacing between deliveries without timing themselves.
                "at": time.time(),
            }) + "\n")
        return "250 2.0.0 OK queued"


class Ctl(Controller):
    def factory(self):
        return SMTP(self.handler, decode_data=False, enable_SMTPUTF8=True, hostname="sink.test")


ctl = Ctl(Handler(), hostname=host, port=port)
ctl.start()
print("ready", flush=True)
try:
    sys.stdin.read()  # run until the test closes our stdin (or kills us)
finally:
    ctl.stop()
