//! A real browser for tests: headless Chromium driven through chromedriver's W3C WebDriver
//! HTTP API on loopback. No client library: the few commands a test needs are plain JSON
//! requests.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{free_port, require};

/// One Chromium session; chromedriver (and with it the browser) is ended, by PID, on drop.
pub struct Browser {
    port: u16,
    session: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a headless session.
    pub fn start() -> Browser {
        require("chromium");
        require("chromedriver");
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let profile = tempfile::tempdir().unwrap();
        let mut b = Browser {
            port,
            session: String::new(),
            driver,
            _profile: profile,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while b.request("GET", "/status", None).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-default-apps",
                    format!("--user-data-dir={}", b._profile.path().display()),
                ]
            }
        }}});
        let v = b
            .request("POST", "/session", Some(&caps))
            .expect("creating a chromium session");
        b.session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        b
    }

    /// Navigates and waits for the page load (WebDriver's default page-load strategy).
    pub fn goto(&self, url: &str) {
        self.command("POST", "url", json!({ "url": url }));
    }

    /// Clicks the first element matching a CSS selector, as a user would.
    pub fn click(&self, css: &str) {
        let v = self.command(
            "POST",
            "element",
            json!({"using": "css selector", "value": css}),
        );
        let id = v["value"]
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string();
        self.command("POST", &format!("element/{id}/click"), json!({}));
    }

    /// Resizes the window (CSS pixels), e.g. to a phone's 390 × 844.
    pub fn set_size(&self, width: u32, height: u32) {
        self.command(
            "POST",
            "window/rect",
            json!({"width": width, "height": height}),
        );
    }

    /// The WebDriver id of the first element matching `css`, or `None`.
    pub fn find(&self, css: &str) -> Option<String> {
        let path = format!("/session/{}/element", self.session);
        let v = self
            .request(
                "POST",
                &path,
                Some(&json!({"using": "css selector", "value": css})),
            )
            .ok()?;
        if v["value"].get("error").is_some() {
            return None;
        }
        v["value"]
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// The rendered text of the first element matching `css` (panics when there is none).
    pub fn text(&self, css: &str) -> String {
        let id = self
            .find(css)
            .unwrap_or_else(|| panic!("no element {css} on {}", self.current_url()));
        let v = self.command("GET", &format!("element/{id}/text"), Value::Null);
        v["value"].as_str().unwrap_or_default().to_string()
    }

    /// The rendered text of every element matching `css`, in document order.
    pub fn texts(&self, css: &str) -> Vec<String> {
        let v = self.execute(
            "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.innerText.trim())",
            json!([css]),
        );
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|t| t.as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Types `text` into the first element matching `css`, as a user would.
    pub fn type_into(&self, css: &str, text: &str) {
        let id = self
            .find(css)
            .unwrap_or_else(|| panic!("no element {css} on {}", self.current_url()));
        self.command(
            "POST",
            &format!("element/{id}/value"),
            json!({ "text": text }),
        );
    }

    /// Runs a script in the page and returns its value (`arguments` are `args`).
    pub fn execute(&self, script: &str, args: Value) -> Value {
        let v = self.command(
            "POST",
            "execute/sync",
            json!({"script": script, "args": args}),
        );
        v["value"].clone()
    }

    /// Runs an asynchronous script; it ends by calling its last argument with the result.
    pub fn execute_async(&self, script: &str, args: Value) -> Value {
        let v = self.command(
            "POST",
            "execute/async",
            json!({"script": script, "args": args}),
        );
        v["value"].clone()
    }

    /// A screenshot of the whole page at `width`: the window is made as tall as the page
    /// first (headless Chromium captures only the window).
    pub fn full_screenshot(&self, path: &std::path::Path, width: u32) {
        self.set_size(width, 900);
        let h = self
            .execute(
                "return Math.ceil(document.documentElement.scrollHeight)",
                json!([]),
            )
            .as_u64()
            .unwrap_or(900)
            .clamp(400, 12_000) as u32;
        self.set_size(width, h + 140);
        self.screenshot(path);
        self.set_size(width, 900);
    }

    /// The address of the page the browser shows now.
    pub fn current_url(&self) -> String {
        let v = self.command("GET", "url", Value::Null);
        v["value"].as_str().unwrap_or_default().to_string()
    }

    /// Saves a PNG of what the browser shows now to `path`, for a person to look at.
    pub fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine as _;
        let v = self.command("GET", "screenshot", Value::Null);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v["value"].as_str().unwrap_or_default())
            .expect("webdriver screenshot is base64");
        std::fs::write(path, png).expect("writing the screenshot");
    }

    /// The browser's User-Agent string.
    pub fn user_agent(&self) -> String {
        let v = self.command(
            "POST",
            "execute/sync",
            json!({"script": "return navigator.userAgent", "args": []}),
        );
        v["value"].as_str().unwrap_or_default().to_string()
    }

    fn command(&self, method: &str, what: &str, body: Value) -> Value {
        let path = format!("/session/{}/{what}", self.session);
        let body = (!body.is_null()).then_some(body);
        let v = self
            .request(method, &path, body.as_ref())
            .unwrap_or_else(|e| panic!("webdriver {method} {what}: {e}"));
        assert!(
            v["value"].get("error").is_none(),
            "webdriver {method} {what}: {v}"
        );
        v
    }

    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> std::io::Result<Value> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        )?;
        // chromedriver keeps the connection open despite `Connection: close`: read the head,
        // then exactly Content-Length bytes.
        let mut raw = Vec::new();
        let mut buf = [0u8; 8192];
        let head_end = loop {
            if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = s.read(&mut buf)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            raw.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while raw.len() < head_end + len {
            let n = s.read(&mut buf)?;
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..n]);
        }
        let body = &raw[head_end..raw.len().min(head_end + len)];
        Ok(serde_json::from_slice(body).unwrap_or(Value::Null))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.request("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
