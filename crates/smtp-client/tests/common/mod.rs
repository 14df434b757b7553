//! Real peers for the integration tests: a Python aiosmtpd recording sink, Postfix's
//! smtp-sink, and a tiny scripted server for behaviour no real server shows on demand.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::Duration;

use petrel_smtp_client::{ClientOptions, Timeouts, TlsMode};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as TokioBufReader};
use tokio::net::{TcpListener, TcpStream};

/// Options with short timeouts so a hung test fails fast.
pub fn opts() -> ClientOptions {
    ClientOptions {
        ehlo_name: "petrel.test".into(),
        source_ip: None,
        starttls: TlsMode::Off,
        timeouts: Timeouts {
            connect: Duration::from_secs(5),
            greeting: Duration::from_secs(5),
            command: Duration::from_secs(5),
            data_send: Duration::from_secs(5),
            data_termination: Duration::from_secs(5),
        },
    }
}

pub fn cert_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../petrel/tests/fixtures/test-cert.pem")
}

/// The recording sink. Replies per recipient by local-part prefix: `t-` gets 450, `r-` gets
/// 550, anything else 250. Flags switch advertised extensions; every event is one JSON line
/// in the record file, written before the reply goes out.
const SINK_PY: &str = r#"
import argparse, asyncio, base64, json, ssl, sys
from aiosmtpd.smtp import SMTP

ap = argparse.ArgumentParser()
ap.add_argument("--records", required=True)
ap.add_argument("--pipelining", action="store_true")
ap.add_argument("--starttls")
ap.add_argument("--no-size", action="store_true")
ap.add_argument("--no-8bitmime", action="store_true")
ap.add_argument("--smtputf8", action="store_true")
a = ap.parse_args()
out = open(a.records, "a")

def record(**kw):
    out.write(json.dumps(kw) + "\n")
    out.flush()

class Handler:
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        words = [r[4:] for r in responses]
        keep = [words[0]]
        for w in words[1:]:
            kw = w.split(" ")[0].upper()
            if kw == "SIZE" and a.no_size: continue
            if kw == "8BITMIME" and a.no_8bitmime: continue
            if kw == "HELP": continue
            keep.append(w)
        if a.pipelining:
            keep.append("PIPELINING")
        record(ev="ehlo", name=hostname, peer=session.peer[0], tls=session.ssl is not None, offered=keep[1:])
        return ["250-" + w for w in keep[:-1]] + ["250 " + keep[-1]]

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        record(ev="mail", addr=address, options=mail_options, peer=session.peer[0])
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 sender ok"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0]
        if local.startswith("t-"):
            reply = "450 4.2.1 mailbox busy, try later"
        elif local.startswith("r-"):
            reply = "550 5.1.1 no such user"
        else:
            reply = "250 2.1.5 recipient ok"
            envelope.rcpt_tos.append(address)
        record(ev="rcpt", addr=address, options=rcpt_options, code=int(reply[:3]))
        return reply

    async def handle_RSET(self, server, session, envelope):
        record(ev="rset")
        return "250 2.0.0 reset"

    async def handle_DATA(self, server, session, envelope):
        record(ev="data", rcpts=envelope.rcpt_tos, peer=session.peer[0],
               content=base64.b64encode(envelope.original_content).decode())
        return "250 2.0.0 queued as X%d" % len(envelope.original_content)

ctx = None
if a.starttls:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(a.starttls)

async def main():
    handler = Handler()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="sink.test", tls_context=ctx, require_starttls=False,
                     enable_SMTPUTF8=a.smtputf8),
        "127.0.0.1", 0)
    print("PORT", server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"#;

fn ensure_aiosmtpd() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let have = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !have {
            let ok = Command::new("python3")
                .args(["-m", "pip", "install", "--quiet", "aiosmtpd"])
                .status()
                .expect("python3 runs");
            assert!(ok.success(), "pip install aiosmtpd failed");
        }
    });
}

/// A running aiosmtpd sink; killed when dropped.
pub struct PySink {
    child: Child,
    pub addr: SocketAddr,
    records: PathBuf,
    _dir: tempfile::TempDir,
}

impl PySink {
    pub fn start(flags: &[&str]) -> PySink {
        ensure_aiosmtpd();
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("sink.py");
        std::fs::write(&script, SINK_PY).unwrap();
        let records = dir.path().join("records.jsonl");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg("--records")
            .arg(&records)
            .args(flags)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line
            .strip_prefix("PORT ")
            .unwrap_or_else(|| panic!("sink did not start: {line:?}"))
            .trim()
            .parse()
            .unwrap();
        PySink {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            records,
            _dir: dir,
        }
    }

    /// Every event recorded so far.
    pub fn records(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.records)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Events of one kind.
    pub fn events(&self, ev: &str) -> Vec<serde_json::Value> {
        self.records()
            .into_iter()
            .filter(|r| r["ev"] == ev)
            .collect()
    }

    /// The message bytes of the `i`th DATA event.
    pub fn content(&self, i: usize) -> Vec<u8> {
        use base64::Engine;
        let data = self.events("data");
        base64::engine::general_purpose::STANDARD
            .decode(data[i]["content"].as_str().unwrap())
            .unwrap()
    }
}

impl Drop for PySink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running Postfix smtp-sink dumping every transaction to a file; killed when dropped.
pub struct SmtpSink {
    child: Child,
    pub addr: SocketAddr,
    dump: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        // smtp-sink drops privileges to `nobody` when run as root; it must write the dump.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let dump = dir.path().join("dump");
        let port = petrel_test_ports::free_port();
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout.trim_ascii() == b"0")
            .unwrap_or(false);
        let mut cmd = Command::new("/usr/sbin/smtp-sink");
        if root {
            cmd.args(["-u", "nobody"]);
        }
        let child = cmd
            .arg("-D")
            .arg(&dump)
            .arg(format!("127.0.0.1:{port}"))
            .arg("50")
            .spawn()
            .expect("/usr/sbin/smtp-sink starts");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        for _ in 0..100 {
            if std::net::TcpStream::connect(addr).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        SmtpSink {
            child,
            addr,
            dump,
            _dir: dir,
        }
    }

    /// The dump file: envelope as `X-…-Args:` lines, then each message.
    pub fn dump(&self) -> String {
        std::fs::read_to_string(&self.dump).unwrap_or_default()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One accepted connection on the scripted server, read line by line.
pub struct Peer {
    io: TokioBufReader<TcpStream>,
}

pub async fn listen() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

impl Peer {
    pub async fn accept(l: &TcpListener) -> Peer {
        let (s, _) = l.accept().await.unwrap();
        Peer {
            io: TokioBufReader::new(s),
        }
    }

    pub async fn send(&mut self, s: &str) {
        self.io.get_mut().write_all(s.as_bytes()).await.unwrap();
    }

    /// The next command line, without CRLF ("" at end of stream).
    pub async fn line(&mut self) -> String {
        let mut s = String::new();
        self.io.read_line(&mut s).await.unwrap();
        s.trim_end().to_string()
    }

    /// Raw DATA bytes up to and including the terminating `CRLF . CRLF`.
    pub async fn data(&mut self) -> Vec<u8> {
        let mut v = Vec::new();
        while !v.ends_with(b"\r\n.\r\n") && v != b".\r\n" {
            let mut b = [0u8; 1];
            if self.io.read(&mut b).await.unwrap() == 0 {
                break;
            }
            v.push(b[0]);
        }
        v
    }

    /// Greeting and EHLO with the given extension lines.
    pub async fn hello(&mut self, extensions: &[&str]) {
        self.send("220 scripted.test ESMTP\r\n").await;
        let ehlo = self.line().await;
        assert!(ehlo.starts_with("EHLO "), "{ehlo}");
        let mut reply = String::from("250");
        reply.push_str(if extensions.is_empty() { " " } else { "-" });
        reply.push_str("scripted.test\r\n");
        for (i, e) in extensions.iter().enumerate() {
            let sep = if i + 1 == extensions.len() { ' ' } else { '-' };
            reply.push_str(&format!("250{sep}{e}\r\n"));
        }
        self.send(&reply).await;
    }
}
