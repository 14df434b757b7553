#!/usr/bin/env python3
"""The demo's sending application: three campaigns of one brand, injected into petrel over
SMTP at a steady rate for a few minutes (examples/demo/run.sh starts it).

* spring-newsletter: news@acme.example, pool "newsletter", the opt-in list (untagged
  addresses: the sink's --mix decides, mostly delivered and read);
* order-receipts: orders@acme.example, pool "transactional", a trickle to customers;
* winback-blast: deals@acme-deals.example, pool "promo", a bought list: about a fifth of its
  addresses do not exist (+hard), some providers block the sender (+block), people complain
  (+fbl), mailboxes are full (+soft3) or bounce later (+oob). Tags are how petrel sink is told
  (docs/sink.md).

Every message has an HTML part with a landing link and an unsubscribe link on the demo's
web server (127.0.0.1:8099). NOTIFY=NEVER: the application learns of bounces from Signals,
so petrel sends no DSNs back to it.

Usage: inject.py [--port 2525] [--minutes 3] [--rate 20] [--web 8099]
"""
import argparse
import random
import smtplib
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, default=2525)
p.add_argument("--minutes", type=float, default=3)
p.add_argument("--rate", type=float, default=20, help="messages per second")
p.add_argument("--web", type=int, default=8099)
a = p.parse_args()
rng = random.Random(2026)

FIRST = ["maria", "john", "li", "fatima", "oliver", "ana", "noah", "emma", "lucas", "mia",
         "yuki", "omar", "sofia", "liam", "chloe", "ivan", "nina", "paul", "sara", "tom"]
LAST = ["garcia", "smith", "chen", "khan", "brown", "silva", "muller", "rossi", "kim", "novak"]
CLEAN_DOMAINS = ["gmail.com"] * 5 + ["yahoo.com"] * 2 + ["outlook.com", "hotmail.com",
                                                         "aol.com", "icloud.com"]
# A bought list: the same providers and a few more.
DIRTY_DOMAINS = CLEAN_DOMAINS + ["hotmail.co.uk", "yahoo.fr", "live.com"]
# (tag, share of the bought list)
DIRTY_TAGS = [("hard", 0.18), ("block", 0.05), ("fbl+open", 0.025), ("soft3", 0.04),
              ("oob", 0.04), ("tls-required", 0.04), ("defer2", 0.02), ("unsub+open", 0.01)]


def address(i, domains, tag=None):
    local = f"{FIRST[i % len(FIRST)]}.{LAST[(i // len(FIRST)) % len(LAST)]}{i}"
    if tag:
        local += "+" + tag
    return f"{local}@{domains[i % len(domains)]}"


def dirty_tag():
    r, acc = rng.random(), 0.0
    for tag, share in DIRTY_TAGS:
        acc += share
        if r < acc:
            return tag
    return None


clean = [address(i, CLEAN_DOMAINS) for i in range(4000)]
dirty = [address(100000 + i, DIRTY_DOMAINS, dirty_tag()) for i in range(2500)]

CAMPAIGNS = {
    "spring-newsletter": dict(sender="news", brand="Acme Outfitters", domain="acme.example",
                              bounce="bounces.acme.example", pool="newsletter",
                              page="spring", subject="The spring collection is here",
                              weight=0.5, rcpts=iter(clean)),
    "order-receipts": dict(sender="orders", brand="Acme Outfitters", domain="acme.example",
                           bounce="bounces.acme.example", pool="transactional",
                           page="order", subject="Your order has shipped",
                           weight=0.15, rcpts=None),
    "winback-blast": dict(sender="deals", brand="Acme Deals", domain="acme-deals.example",
                          bounce="bounces.acme-deals.example", pool="promo",
                          page="winback", subject="We miss you: 70% off today only",
                          weight=0.35, rcpts=iter(dirty)),
}


def message(job, c, rcpt, n):
    web = f"http://127.0.0.1:{a.web}"
    html = (f"<!doctype html><html><body style=\"font-family:sans-serif\">"
            f"<h1>{c['subject']}</h1><p>Hello {rcpt.split('.')[0].title()},</p>"
            f"<p><a href=\"{web}/{c['page']}.html?m={n}\" data-msys-linkname=\"hero\">"
            f"Take a look</a></p>"
            f"<p style=\"font-size:small\">{c['brand']}, 1 Market Street. "
            f"<a href=\"{web}/unsubscribe.html?m={n}\" data-msys-unsubscribe=\"1\">"
            f"Unsubscribe</a></p></body></html>")
    return (f"From: {c['brand']} <{c['sender']}@{c['domain']}>\r\nTo: <{rcpt}>\r\n"
            f"Subject: {c['subject']}\r\nX-Job: {job}\r\nX-Virtual-MTA: {c['pool']}\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n"
            f"--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{c['subject']}: "
            f"{web}/{c['page']}.html\r\n"
            f"--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--alt--\r\n")


def pick():
    live = [(j, c) for j, c in CAMPAIGNS.items() if c["weight"] > 0]
    r, acc = rng.random() * sum(c["weight"] for _, c in live), 0.0
    for job, c in live:
        acc += c["weight"]
        if r < acc:
            return job, c
    return live[-1]


end = time.time() + a.minutes * 60
sent = 0
smtp = smtplib.SMTP("127.0.0.1", a.port, timeout=60)
smtp.ehlo("app.acme.example")
while time.time() < end:
    job, c = pick()
    if c["rcpts"] is None:
        rcpt = rng.choice(clean)
    else:
        rcpt = next(c["rcpts"], None)
        if rcpt is None:  # list done: the campaign is over
            c["weight"] = 0
            continue
    smtp.sendmail(f"{c['sender']}@{c['bounce']}", [rcpt], message(job, c, rcpt, sent),
                  rcpt_options=["NOTIFY=NEVER"])
    sent += 1
    if sent % 500 == 0:
        print(f"  {sent} messages injected", flush=True)
    # Pace to --rate, whatever one message took.
    time.sleep(max(0.0, (sent / a.rate) - (time.time() - (end - a.minutes * 60))))
smtp.quit()
print(f"  {sent} messages injected in all", flush=True)
sys.exit(0)
