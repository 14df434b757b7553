//! Shared test harness: runs the real `petrel` binary on loopback ports and drives it with
//! real clients (swaks, Python's smtplib, openssl, Postfix's smtp-source).
#![allow(dead_code)]

pub mod browser;
pub mod pages;
pub mod signals_seed;
pub mod sink;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The petrel binary under test.
pub fn petrel_bin() -> &'static str {
    env!("CARGO_BIN_EXE_petrel")
}

/// The repository's `shared/` folder (beside the checkout), for the seed fixtures.
pub fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// The test certificate (chain and key in one PEM), copied into the repository.
pub fn test_cert() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/test-cert.pem")
}

/// The public key record of the test DKIM key (`tests/fixtures/dkim-mypmta.pem`, selector
/// `mypmta`, domain `pmta.signalsdemo.trymsys.net`): the TXT value a verifier looks up.
pub fn dkim_fixture_txt() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dkim-mypmta.dns.txt");
    let record = std::fs::read_to_string(path).unwrap();
    record
        .split_once("TXT")
        .unwrap()
        .1
        .trim()
        .trim_matches('"')
        .to_string()
}

/// A small tmpfs mounted for one test (we run as root), unmounted on drop. `None` when
/// mounting is not permitted here; the caller skips with a message saying so.
pub struct Tmpfs {
    pub dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount -o size=…`, e.g. `20m`).
    pub fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        mounted.then_some(Tmpfs { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

pub use petrel_test_ports::free_port;

/// Fails loudly when a peer tool is missing: `./test.sh` installs them, and a test that
/// silently skipped would prove nothing.
pub fn require(tool: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is not installed; run ./test.sh, which installs the test peers"
    );
}

/// A running petrel daemon with its own directory, config and ports. Killed (by PID) on drop.
pub struct Petrel {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub smtp_port: u16,
    pub mgmt_port: u16,
    pub child: Option<Child>,
    /// When set, the daemon runs under this soft and hard open-file limit (`prlimit`).
    pub nofile: Option<u64>,
}

impl Petrel {
    /// [`Petrel::start`] under an open-file limit of `nofile` (soft and hard), for tests of
    /// what petrel does when descriptors are scarce.
    pub fn start_with_nofile(body: &str, nofile: u64) -> Petrel {
        Petrel::start_inner(body, Some(nofile))
    }

    /// Writes `body` after a standard header (listener, mgmt port, spool, log file) and starts
    /// petrel. `{SMTP_PORT}` / `{MGMT_PORT}` / `{CERT}` / `{DIR}` in `body` are substituted.
    pub fn start(body: &str) -> Petrel {
        Petrel::start_inner(body, None)
    }

    fn start_inner(body: &str, nofile: Option<u64>) -> Petrel {
        let dir = tempfile::tempdir().unwrap();
        let smtp_port = free_port();
        let mgmt_port = free_port();
        // A test that brings its own <spool> gets only that one.
        let spool = if body.contains("<spool") {
            String::new()
        } else {
            format!("<spool {}/spool>\n</spool>\n", dir.path().display())
        };
        // Tests never reach real DNS or the Internet: unless a test routes `*` itself, mail
        // for any domain goes to a closed loopback port (and waits in its queue).
        let default_route = if body.contains("<domain *>") {
            ""
        } else {
            "<domain *>\n  smtp-hosts [127.0.0.1]:1\n</domain>\n"
        };
        let text = format!(
            "host-name petrel.test\nsmtp-listener 127.0.0.1:{smtp_port}\nhttp-mgmt-port {mgmt_port}\nlog-file {}/petrel.log\n{spool}{default_route}{}",
            dir.path().display(),
            substitute(body, smtp_port, mgmt_port, dir.path())
        );
        let config = dir.path().join("petrel.conf");
        std::fs::write(&config, text).unwrap();
        let mut p = Petrel {
            dir,
            config,
            smtp_port,
            mgmt_port,
            child: None,
            nofile,
        };
        p.spawn();
        p
    }

    /// Starts the daemon with the current config file (again, after `kill`).
    pub fn spawn(&mut self) {
        let mut cmd = match self.nofile {
            Some(n) => {
                require("prlimit");
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}")).arg(petrel_bin());
                c
            }
            None => Command::new(petrel_bin()),
        };
        let mut child = cmd
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn petrel");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stderr).lines();
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                let ready = line.contains("petrel ready");
                let _ = tx.send(line);
                if ready {
                    break;
                }
            }
            // Keep draining so the child never blocks on a full pipe.
            for _ in lines {}
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let ready = line.contains("petrel ready");
                    seen.push(line);
                    if ready {
                        break;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => {
                    let status = child.wait().ok();
                    panic!(
                        "petrel exited ({status:?}) before ready:\n{}\nlog:\n{}",
                        seen.join("\n"),
                        self.log()
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "petrel not ready in 30s:\n{}",
                seen.join("\n")
            );
        }
        self.child = Some(child);
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The daemon's log file.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("petrel.log")).unwrap_or_default()
    }

    /// Runs a `petrel` CLI verb against this daemon's config.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(petrel_bin());
        cmd.args(args).arg("--config").arg(&self.config);
        cmd.output().unwrap()
    }

    /// GET on the management API, returning (status, body).
    pub fn http_get(&self, path: &str) -> (u16, String) {
        http(self.mgmt_port, "GET", path)
    }

    /// `petrel show queues --json`: (queue, #rcpt, #msg, kbytes) per row, sorted, and the
    /// JSON itself for messages.
    pub fn queue_rows(&self) -> (Vec<(String, u64, u64, u64)>, serde_json::Value) {
        let out = self.cli(&["show", "queues", "--json"]);
        assert!(out.status.success(), "{}", text(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut rows: Vec<(String, u64, u64, u64)> = v["data"]["queues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| {
                let n = |k: &str| q[k].as_u64().unwrap();
                (
                    q["queue"].as_str().unwrap().to_string(),
                    n("rcp"),
                    n("msg"),
                    n("kb"),
                )
            })
            .collect();
        rows.sort();
        (rows, v)
    }

    /// JSON of `petrel list --json`.
    pub fn list(&self) -> serde_json::Value {
        let out = self.cli(&["list", "--json", "--maxitems", "100000"]);
        assert!(
            out.status.success(),
            "petrel list failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// swaks against this daemon's SMTP port; extra args appended.
    pub fn swaks(&self, args: &[&str]) -> Output {
        require("swaks");
        Command::new("swaks")
            .args([
                "--server",
                "127.0.0.1",
                "--port",
                &self.smtp_port.to_string(),
                "--timeout",
                "20",
            ])
            .args(args)
            .output()
            .unwrap()
    }

    /// A raw SMTP conversation: sends `input` in one write and returns everything read until
    /// the server closes or `settle` passes without data.
    pub fn raw(&self, input: &[u8], settle: Duration) -> String {
        raw_smtp(self.smtp_port, input, settle)
    }
}

impl Drop for Petrel {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn substitute(body: &str, smtp: u16, mgmt: u16, dir: &Path) -> String {
    body.replace("{SMTP_PORT}", &smtp.to_string())
        .replace("{MGMT_PORT}", &mgmt.to_string())
        .replace("{CERT}", &test_cert().display().to_string())
        .replace("{DIR}", &dir.display().to_string())
}

/// Minimal HTTP/1.1 request on loopback.
pub fn http(port: u16, method: &str, path: &str) -> (u16, String) {
    http_with(port, method, path, "")
}

/// [`http`] with extra header lines (each ending in CRLF).
pub fn http_with(port: u16, method: &str, path: &str, headers: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // The management API checks Host: the address, unless the test names its own.
    let host = if headers.to_ascii_lowercase().contains("host:") {
        String::new()
    } else {
        format!("Host: 127.0.0.1:{port}\r\n")
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\n{host}{headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = raw
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Sends `input` and reads replies until the peer closes or `settle` passes quietly.
pub fn raw_smtp(port: u16, input: &[u8], settle: Duration) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(settle)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    // Greeting first, then the whole input at once (pipelined).
    if let Ok(n) = s.read(&mut buf) {
        out.extend_from_slice(&buf[..n]);
    }
    s.write_all(input).unwrap();
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs a Python 3 script (given as text) with arguments; returns its output.
pub fn python(script: &str, args: &[&str]) -> Output {
    require("python3");
    let mut child = Command::new("python3")
        .arg("-")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Checks a delivered message with dkimpy (an independent DKIM verifier): the signature must
/// verify with the TXT record `txt` published at `dns_name` (the only name dkimpy may look
/// up), and must fail once the body is changed ("Hello from the test" → "…elsewhere").
/// Returns the script's output; success means both held.
pub fn dkimpy_verifies(message: &[u8], dns_name: &str, txt: &str) -> Output {
    const SCRIPT: &str = r#"
import dkim, sys
msg = sys.stdin.buffer.read()
name, txt = sys.argv[1].encode(), sys.argv[2].encode()
def dns(asked, timeout=5):
    assert asked == name, asked
    return txt
ok = dkim.verify(msg, dnsfunc=dns)
tampered = dkim.verify(msg.replace(b"Hello from the test", b"Hello from elsewhere"), dnsfunc=dns)
print("verify", ok, "tampered", tampered)
sys.exit(0 if ok and not tampered else 1)
"#;
    require("python3");
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT, &format!("{dns_name}."), txt])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(message).unwrap();
    child.wait_with_output().unwrap()
}

/// Output as text, for assertions with useful failure messages.
pub fn text(o: &Output) -> String {
    format!(
        "status: {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Reads a file under the daemon's directory.
pub fn read(p: &Path) -> String {
    let mut s = String::new();
    std::fs::File::open(p)
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    s
}

/// A recording SMTP sink (tests/support/sink.py, aiosmtpd) on a loopback address.
pub struct Sink {
    pub port: u16,
    pub record: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Sink {
    /// Starts the sink on `host` (e.g. 127.0.0.1) and a free port.
    pub fn start(host: &str) -> Sink {
        Sink::start_on(host, free_port())
    }

    /// Starts the sink on `host` and `port` (a port petrel was configured with before the
    /// sink came up).
    pub fn start_on(host: &str, port: u16) -> Sink {
        require("python3");
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("received.jsonl");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/sink.py");
        let mut cmd = Command::new("python3");
        cmd.arg(&script)
            .arg(host)
            .arg(port.to_string())
            .arg(&record);
        let child = spawn_ready(
            &mut cmd,
            "sink.py (is aiosmtpd installed? ./test.sh installs it)",
        );
        Sink {
            port,
            record,
            child,
            _dir: dir,
        }
    }

    /// Everything received so far, one JSON object per message. A last line the sink is
    /// still writing (no newline yet) is not counted.
    pub fn records(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.record).unwrap_or_default();
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits until at least `n` messages arrived, or panics after `secs`.
    pub fn wait_for(&self, n: usize, secs: u64) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let r = self.records();
            if r.len() >= n {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "sink got {} of {n} messages in {secs}s",
                r.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a helper process that prints `ready` on stdout once it listens (tests/support/*.py).
/// Its stdin stays open so it runs until the test kills it; stderr goes to the test output.
pub fn spawn_ready(cmd: &mut Command, what: &str) -> Child {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "{what} did not start");
    child
}

/// Waits until `path` contains `needle` (accounting files are written in batches).
pub fn wait_for_file_text(path: &Path, needle: &str, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never contained {needle:?}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Parses an RFC 4180 CSV file into rows of fields (quoted fields, doubled quotes, CRLF).
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// The accounting rows of every `acct-*.csv` in `dir`, as maps from column name to value.
pub fn acct_rows(dir: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        if !(name.starts_with("acct-") && name.ends_with(".csv")) {
            continue;
        }
        let rows = parse_csv(&std::fs::read_to_string(&f).unwrap());
        let Some((header, body)) = rows.split_first() else {
            continue;
        };
        for r in body {
            out.push(header.iter().cloned().zip(r.iter().cloned()).collect());
        }
    }
    out
}

/// Waits until the accounting files in `dir` hold a row matching `pred`.
pub fn wait_for_acct(
    dir: &Path,
    secs: u64,
    pred: impl Fn(&std::collections::HashMap<String, String>) -> bool,
) -> Vec<std::collections::HashMap<String, String>> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let rows = acct_rows(dir);
        if rows.iter().any(&pred) {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "no matching accounting row in {secs}s; rows: {rows:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The configuration most delivery tests share: every client may relay, and mail for
/// `sink.example` goes to the sink on `port` without STARTTLS.
pub fn relay_to_sink(port: u16) -> String {
    relay_to_sink_with(port, "")
}

/// [`relay_to_sink`] with `extra` lines (each ending in `\n`) in the `<domain sink.example>`
/// block.
pub fn relay_to_sink_with(port: u16, extra: &str) -> String {
    format!(
        "<source 0/0>\n  always-allow-relaying yes\n  process-x-job yes\n</source>\n\
         <domain sink.example>\n  smtp-hosts [127.0.0.1]:{port}\n  use-starttls no\n{extra}</domain>\n"
    )
}

/// `<signals>` uploading every 200 ms to petrel's own `<signals-service>` on `port` in the
/// same daemon, with `key`; `extra` lines (each ending in `\n`) go into `<signals>`.
pub fn signals_to_self(port: u16, key: &str, extra: &str) -> String {
    format!(
        "<signals>\n  api-key {key}\n  upload-url http://127.0.0.1:{port}/api/v1/ingest/events\n\
         event-dir {{DIR}}/events\n  upload-interval 200ms\n{extra}</signals>\n\
         <signals-service>\n  listener 127.0.0.1:{port}\n  database {{DIR}}/signals.db\n</signals-service>\n"
    )
}

/// Sends one message with smtplib; `headers` are extra header lines.
pub fn send_mail(port: u16, from: &str, rcpts: &[&str], headers: &str) {
    let script = r#"
import smtplib, sys
port, sender, headers = int(sys.argv[1]), sys.argv[2], sys.argv[3]
rcpts = sys.argv[4:]
msg = headers + "Subject: test\r\nFrom: <" + sender + ">\r\nTo: <" + rcpts[0] + ">\r\n\r\nHello from the test.\r\n.leading dot\r\n"
with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
    s.sendmail(sender, rcpts, msg)
"#;
    let mut args = vec![port.to_string(), from.to_string(), headers.to_string()];
    args.extend(rcpts.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = python(script, &args);
    assert!(out.status.success(), "{}", text(&out));
}

/// GET on petrel's Signals service with an API key; returns the status and the JSON body.
pub fn signals_get(port: u16, key: &str, path: &str) -> (u16, serde_json::Value) {
    let (status, body) = http_with(port, "GET", path, &format!("Authorization: {key}\r\n"));
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

/// A Metrics API `from` (`YYYY-MM-DDTHH:MM`, UTC) `secs_ago` seconds before now.
pub fn metrics_from(secs_ago: i64) -> String {
    let t = time::OffsetDateTime::now_utc() - time::Duration::seconds(secs_ago);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// Polls the events search (`/api/v1/events/message?QUERY`) until `done` holds for the
/// results, or panics with what was there after `secs`.
pub fn wait_for_events(
    port: u16,
    key: &str,
    query: &str,
    secs: u64,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (status, body) = signals_get(port, key, &format!("/api/v1/events/message?{query}"));
        assert_eq!(status, 200, "{body}");
        let results = body["results"].as_array().cloned().unwrap_or_default();
        if done(&results) {
            return results;
        }
        assert!(
            Instant::now() < deadline,
            "events search `{query}` never satisfied the test; last results: {results:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A standalone `petrel signals serve` with its own configuration (only `<signals-service>`)
/// and database, for tests where the ingest service comes and goes. Killed on drop.
pub struct StandaloneSignals {
    pub port: u16,
    pub config: PathBuf,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl StandaloneSignals {
    /// Writes the configuration; the service does not run until [`StandaloneSignals::start`].
    pub fn new() -> StandaloneSignals {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("signals.conf");
        std::fs::write(
            &config,
            format!(
                "<signals-service>\n  listener 127.0.0.1:{port}\n  database {}/signals.db\n</signals-service>\n",
                dir.path().display()
            ),
        )
        .unwrap();
        StandaloneSignals {
            port,
            config,
            child: None,
            _dir: dir,
        }
    }

    /// `petrel signals create-key`: returns the printed key.
    pub fn create_key(&self, label: &str, permissions: &str) -> String {
        let out = Command::new(petrel_bin())
            .args(["signals", "create-key", "--label", label])
            .args(["--permissions", permissions, "--config"])
            .arg(&self.config)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Runs `petrel signals serve` and waits until it listens.
    pub fn start(&mut self) {
        let child = Command::new(petrel_bin())
            .args(["signals", "serve", "--config"])
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "petrel signals serve did not listen"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for StandaloneSignals {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Event files (`sp1-*`) in an event directory: all of them, or only the closed `.json` ones
/// the uploader may send.
pub fn event_files(dir: &Path, closed_only: bool) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    let n = p.file_name().unwrap_or_default().to_string_lossy();
                    n.starts_with("sp1-") && (!closed_only || n.ends_with(".json"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Complete event lines in every event file, open ones included.
pub fn event_lines(dir: &Path) -> usize {
    event_files(dir, false)
        .iter()
        .map(|p| {
            std::fs::read(p)
                .map(|b| b.iter().filter(|&&c| c == b'\n').count())
                .unwrap_or(0)
        })
        .sum()
}

/// A tiny authoritative DNS server on loopback (tests/support/dns.py, dnslib) answering from
/// `zone` (JSON, see the script); point petrel at it with `name-server 127.0.0.1:PORT`.
/// Killed on drop.
pub struct Dns {
    pub port: u16,
    child: Child,
}

impl Dns {
    pub fn start(zone: &str) -> Dns {
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/dns.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script).arg(port.to_string()).arg(zone);
        let child = spawn_ready(
            &mut cmd,
            "dns.py (is dnslib installed? ./test.sh installs it)",
        );
        Dns { port, child }
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
