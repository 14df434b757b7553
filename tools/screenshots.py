#!/usr/bin/env python3
"""Screenshots of petrel's Signals pages from any running Signals service.

Logs in through the page's own form with a read key (in headless Chromium, driven over
chromedriver's WebDriver API; Python's standard library only) and saves a full-page PNG of
each page asked for.

    tools/screenshots.py --url http://127.0.0.1:8097 --key KEY --out docs/images \
        [--width 1360] [--page NAME=PATH ...]

Without --page it takes the README's two: health-score (/signals/health-score) and
summary-report (/signals/analytics). Needs chromium and chromedriver (./test.sh installs
them). The MTA monitor needs no key: --url http://127.0.0.1:8080 --no-login
--page monitor=/ takes it.
"""
import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

DEFAULT_PAGES = [
    ("health-score", "/signals/health-score?range=14"),
    ("summary-report", "/signals/analytics?range=7d&group_by=sending-ip"),
]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Driver:
    def __init__(self, width):
        self.port = free_port()
        self.profile = tempfile.TemporaryDirectory()
        self.proc = subprocess.Popen(
            ["chromedriver", "--port=%d" % self.port],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 20
        while True:
            try:
                self.call("GET", "/status")
                break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit("chromedriver did not start")
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-default-apps", "--hide-scrollbars",
                    "--user-data-dir=" + self.profile.name,
                ],
            },
        }}}
        self.session = self.call("POST", "/session", caps)["value"]["sessionId"]
        self.width = width

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            "http://127.0.0.1:%d%s" % (self.port, path), data=data, method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read() or b"null")

    def cmd(self, method, what, body=None):
        v = self.call(method, "/session/%s/%s" % (self.session, what), body)
        if isinstance(v.get("value"), dict) and "error" in v["value"]:
            raise SystemExit("webdriver %s %s: %s" % (method, what, v["value"]))
        return v["value"]

    def goto(self, url):
        self.cmd("POST", "url", {"url": url})

    def element(self, css):
        v = self.cmd("POST", "element", {"using": "css selector", "value": css})
        return list(v.values())[0]

    def size(self, w, h):
        self.cmd("POST", "window/rect", {"width": w, "height": h})

    def shot(self, path):
        self.size(self.width, 900)
        h = self.cmd("POST", "execute/sync", {
            "script": "return Math.ceil(document.documentElement.scrollHeight)", "args": []})
        self.size(self.width, min(max(int(h), 400), 12000) + 140)
        png = base64.b64decode(self.cmd("GET", "screenshot"))
        with open(path, "wb") as f:
            f.write(png)
        self.size(self.width, 900)

    def close(self):
        try:
            self.call("DELETE", "/session/%s" % self.session)
        finally:
            self.proc.terminate()
            self.proc.wait()
            self.profile.cleanup()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True, help="the service, e.g. http://127.0.0.1:8097")
    ap.add_argument("--key", default=os.environ.get("PETREL_KEY", ""), help="a read key (or $PETREL_KEY)")
    ap.add_argument("--out", required=True, help="folder for the PNGs")
    ap.add_argument("--width", type=int, default=1360)
    ap.add_argument("--no-login", action="store_true", help="the pages need no key (the MTA monitor)")
    ap.add_argument("--page", action="append", default=[], metavar="NAME=PATH")
    a = ap.parse_args()
    pages = [tuple(p.split("=", 1)) for p in a.page] or DEFAULT_PAGES
    base = a.url.rstrip("/")
    os.makedirs(a.out, exist_ok=True)
    d = Driver(a.width)
    try:
        d.size(a.width, 900)
        if not a.no_login:
            if not a.key:
                raise SystemExit("--key (or $PETREL_KEY) is required")
            d.goto(base + "/login")
            d.cmd("POST", "element/%s/value" % d.element("#key"), {"text": a.key})
            d.cmd("POST", "element/%s/click" % d.element("form[action='/login'] button"), {})
            # The click returns before the form's navigation ends: wait for it.
            deadline = time.time() + 10
            while d.cmd("GET", "url").endswith("/login") and time.time() < deadline:
                time.sleep(0.2)
            if d.cmd("GET", "url").endswith("/login"):
                raise SystemExit("the key was refused")
        for name, path in pages:
            d.goto(base + path)
            out = os.path.join(a.out, name + ".png")
            d.shot(out)
            print(out)
    finally:
        d.close()


if __name__ == "__main__":
    sys.exit(main())
