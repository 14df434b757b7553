#!/usr/bin/env python3
"""One day of a newsletter sender's traffic through a running petrel, for demos and the
README's screenshots: real SMTP injection, delivery to a recording sink
(crates/petrel/tests/support/sink.py, whose recipients' local parts choose the answer),
then, like recipients and their providers would: opens and clicks through petrel's
tracking host, an out-of-band bounce to its bounce processor and a complaint to its
feedback-loop processor.

    tools/demo-traffic.py --smtp-port 2525 --sink-record FILE [--day N] [--messages 300]
                          [--complaints 0] [--dsns 1]

Campaigns, pools and subaccounts: spring-sale (pool warm, primary account), weekly-digest
(pool shared, subaccount 7), onboarding (pool warm). Recipients come from one fixed list,
so those who opened on earlier days count as engaged on later ones. The HTTP requests go
only to the tracking URLs found in the delivered copies (loopback); redirects to the
links' real targets are not followed. Python's standard library only.
"""
import argparse
import email
import json
import random
import re
import smtplib
import sys
import time
import urllib.error
import urllib.request
from email import policy
from email.message import EmailMessage

DOMAINS = [("gmail.com", 40), ("yahoo.com", 18), ("outlook.com", 14), ("hotmail.com", 10),
           ("icloud.com", 8), ("example.org", 10)]
CAMPAIGNS = [
    ("spring-sale", "warm", 0, "Deals <deals@mail.brand.example>", "Spring sale: 20% off everything", 45),
    ("weekly-digest", "shared", 7, "Brand News <news@news.brand.example>", "This week at Brand", 35),
    ("onboarding", "warm", 0, "Brand <hello@mail.brand.example>", "Welcome: three things to try first", 20),
]


def weighted(rng, items, weight):
    total = sum(weight(i) for i in items)
    x = rng.uniform(0, total)
    for i in items:
        x -= weight(i)
        if x <= 0:
            return i
    return items[-1]


def recipients(rng, n, day):
    """n recipients of a fixed list of 900 people; a few bounce, block, defer or are traps."""
    people = random.Random(7)
    pool = []
    for i in range(900):
        dom = weighted(people, DOMAINS, lambda d: d[1])[0]
        pool.append(("reader%d" % i, dom))
    out = []
    for local, dom in rng.sample(pool, n):
        r = rng.random()
        if r < 0.012:
            local = "reject-%s" % local          # unknown user: hard bounce
        elif r < 0.016:
            local = "block-%s" % local           # blocklisted: block bounce
        elif r < 0.04:
            local = "tempfail-1-d%d-%s" % (day, local)   # deferred once
        elif r < 0.044:
            dom = {"gmail.com": "gmial.com", "yahoo.com": "yaho.com"}.get(dom, dom)  # typo trap
        elif r < 0.05:
            local = "info"                       # a role account
        out.append("%s@%s" % (local, dom))
    return out


def message(campaign, rcpt):
    name, pool, sub, sender, subject, _ = campaign
    m = EmailMessage()
    m["From"] = sender
    m["To"] = rcpt
    m["Subject"] = subject
    m["X-Job"] = name
    m["X-Virtual-MTA"] = pool
    if sub:
        m["X-SP-Subaccount-ID"] = str(sub)
    m.set_content("%s\n\nShop: https://shop.brand.example/sale\n" % subject)
    m.add_alternative(
        '<html><body><h1>%s</h1><p><a href="https://shop.brand.example/sale" '
        'data-msys-linkname="hero">Shop the sale</a></p><p><a href="https://brand.example/blog" '
        'data-msys-linkname="blog">Read the blog</a></p></body></html>' % subject,
        subtype="html",
    )
    return m, sender.split("<")[1].rstrip(">")


def tracking_urls(raw):
    m = email.message_from_string(raw, policy=policy.default)
    body = m.get_body(("html",))
    if body is None:
        return [], []
    html = body.get_content()
    urls = re.findall(r'(?:src|href)="(http://127\.0\.0\.1:\d+/[oc]/[^"]+)"', html)
    return [u for u in urls if "/o/" in u], [u for u in urls if "/c/" in u]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


def hit(url):
    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(url, timeout=10).read()
    except urllib.error.HTTPError:
        pass  # the click's 302: followed by a person, not here


def remote(port, mail_from, rcpt, text):
    s = smtplib.SMTP("127.0.0.1", port, timeout=20, source_address=("127.0.0.3", 0))
    s.ehlo("mx.provider.example")
    s.sendmail(mail_from, [rcpt], text.replace("\n", "\r\n"))
    s.quit()


def dsn(to, rcpt):
    return (
        "From: MAILER-DAEMON@mx.provider.example\nTo: %s\nSubject: Undelivered\nMIME-Version: 1.0\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\n\n--b1\n"
        "Content-Type: text/plain\n\nNot delivered.\n\n--b1\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx.provider.example\n\nFinal-Recipient: rfc822; %s\nAction: failed\n"
        "Status: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 <%s>: mailbox disabled\n\n--b1--\n" % (to, rcpt, rcpt)
    )


def arf(return_path, rcpt):
    return (
        "From: fbl@provider.example\nTo: fbl@fbl.brand.example\nSubject: Abuse report\nMIME-Version: 1.0\n"
        "Content-Type: multipart/report; report-type=feedback-report; boundary=\"b2\"\n\n--b2\n"
        "Content-Type: text/plain\n\nAbuse report.\n\n--b2\nContent-Type: message/feedback-report\n\n"
        "Feedback-Type: abuse\nUser-Agent: Provider-FBL/1.0\nVersion: 1\nOriginal-Rcpt-To: %s\n\n--b2\n"
        "Content-Type: message/rfc822\n\nReturn-Path: <%s>\nFrom: news@brand.example\nSubject: News\n\nHi\n--b2--\n"
        % (rcpt, return_path)
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smtp-port", type=int, required=True)
    ap.add_argument("--sink-record", required=True)
    ap.add_argument("--day", type=int, default=0, help="seed: each day sends to other people")
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--complaints", type=int, default=0)
    ap.add_argument("--dsns", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(1000 + a.day)
    seen_before = sum(1 for _ in open(a.sink_record)) if _exists(a.sink_record) else 0

    sent = {}
    with smtplib.SMTP("127.0.0.1", a.smtp_port, timeout=30) as s:
        for rcpt in recipients(rng, a.messages, a.day):
            campaign = weighted(rng, CAMPAIGNS, lambda c: c[5])
            m, env_from = message(campaign, rcpt)
            s.send_message(m, env_from, [rcpt])
            sent[rcpt] = campaign[0]
    accepted = [r for r in sent if not r.split("@")[0].startswith(("reject-", "block-", "tempfail-"))]

    # Wait for the copies the sink accepts at once.
    deadline = time.time() + 120
    copies = []
    while time.time() < deadline:
        lines = open(a.sink_record).read().splitlines()[seen_before:] if _exists(a.sink_record) else []
        copies = [json.loads(l) for l in lines]
        if len(copies) >= len(accepted):
            break
        time.sleep(0.5)
    print("sent %d, delivered %d" % (len(sent), len(copies)), file=sys.stderr)

    # Engagement: a person's habit is stable across days (seeded by the address).
    for c in copies:
        rcpt = c["rcpts"][0]
        habit = random.Random(rcpt).random()
        if habit < 0.45 and rng.random() < 0.75:
            pixels, links = tracking_urls(c["data"])
            for u in pixels:
                hit(u)
            if links and habit < 0.12 and rng.random() < 0.6:
                hit(rng.choice(links))
    # The providers' reports, sent back to petrel's processors from 127.0.0.3.
    for c in copies[: a.dsns]:
        remote(a.smtp_port, "", c["mail_from"], dsn(c["mail_from"], c["rcpts"][0]))
    for c in copies[a.dsns: a.dsns + a.complaints]:
        remote(a.smtp_port, "fbl@provider.example", "fbl@fbl.brand.example", arf(c["mail_from"], c["rcpts"][0]))
    return 0


def _exists(path):
    try:
        open(path).close()
        return True
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
