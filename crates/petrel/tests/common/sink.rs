//! `petrel sink` for tests: started on free loopback ports, its counts read as the typed
//! [`petrel_sink::Snapshot`], stopped with SIGTERM (by PID) so its summary can be checked.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use petrel_sink::Snapshot;

use super::{free_port, http, petrel_bin};

/// A running `petrel sink`. Killed on drop if not stopped.
pub struct PetrelSink {
    pub port: u16,
    pub stats_port: u16,
    child: Option<Child>,
    stderr: mpsc::Receiver<String>,
}

impl PetrelSink {
    /// `petrel sink --listen 127.0.0.1:FREE --stats 127.0.0.1:FREE ARGS…`, ready.
    pub fn start(args: &[&str]) -> PetrelSink {
        let port = free_port();
        let stats_port = free_port();
        let mut child = Command::new(petrel_bin())
            .arg("sink")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--stats", &format!("127.0.0.1:{stats_port}")])
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn petrel sink");
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let ready = line.contains("petrel sink ready");
                    seen.push(line);
                    if ready {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => panic!("petrel sink exited:\n{}", seen.join("\n")),
            }
            assert!(
                Instant::now() < deadline,
                "petrel sink not ready:\n{}",
                seen.join("\n")
            );
        }
        PetrelSink {
            port,
            stats_port,
            child: Some(child),
            stderr: rx,
        }
    }

    /// The counts now.
    pub fn snapshot(&self) -> Snapshot {
        let (status, body) = http(self.stats_port, "GET", "/");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    /// Waits until `done` holds for the counts, or panics with them after `secs`.
    pub fn wait_for(&self, secs: u64, done: impl Fn(&Snapshot) -> bool) -> Snapshot {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.snapshot();
            if done(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "sink counts never got there: {s:#?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Log lines written so far (stderr).
    pub fn log(&self) -> String {
        self.stderr.try_iter().collect::<Vec<_>>().join("\n")
    }

    /// SIGTERM; returns the exit status and the summary printed on stdout.
    pub fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let mut child = self.child.take().unwrap();
        let ok = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let status = child.wait().unwrap();
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        (status, out)
    }
}

impl Drop for PetrelSink {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A plain SMTP client for talking to the sink step by step: each call sends one command
/// (or nothing, for the greeting) and returns the whole reply.
pub struct Smtp {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Smtp {
    /// Connects to `port` and reads the greeting.
    pub fn connect(port: u16) -> (Smtp, String) {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        let mut s = Smtp { stream, reader };
        let greeting = s.reply();
        (s, greeting)
    }

    /// Connects and says EHLO.
    pub fn ehlo(port: u16) -> Smtp {
        let (mut s, greeting) = Smtp::connect(port);
        assert!(greeting.starts_with("220 "), "{greeting}");
        let r = s.cmd("EHLO client.test");
        assert!(r.starts_with("250"), "{r}");
        s
    }

    /// Reads one reply (all its lines); empty when the server closed the connection.
    pub fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return all,
                Ok(_) => {}
            }
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] == b' ' {
                return all;
            }
        }
    }

    /// Sends a command line, returns its reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
        self.reply()
    }

    /// Sends a message body (dot-stuffing is the caller's business) and its final dot.
    pub fn body(&mut self, message: &str) -> String {
        let mut m = message.replace("\r\n", "\n").replace('\n', "\r\n");
        if !m.ends_with("\r\n") {
            m.push_str("\r\n");
        }
        m.push_str(".\r\n");
        // A sink that hangs up mid-message may reset the connection under the write.
        let _ = self.stream.write_all(m.as_bytes());
        self.reply()
    }

    /// MAIL, RCPT, DATA and the message; returns the replies to RCPT and to the final dot
    /// (empty when the transaction stopped earlier).
    pub fn send(&mut self, from: &str, rcpt: &str, message: &str) -> (String, String) {
        let r = self.cmd(&format!("MAIL FROM:<{from}>"));
        assert!(r.starts_with("250"), "{r}");
        let rcpt_reply = self.cmd(&format!("RCPT TO:<{rcpt}>"));
        if !rcpt_reply.starts_with("250") {
            self.cmd("RSET");
            return (rcpt_reply, String::new());
        }
        let r = self.cmd("DATA");
        assert!(r.starts_with("354"), "{r}");
        let dot = self.body(message);
        (rcpt_reply, dot)
    }
}

/// One request a [`Web`] server received.
#[derive(Clone, Debug)]
pub struct Hit {
    pub path: String,
    pub user_agent: String,
}

/// A small HTTP server on loopback that records every GET: paths starting with `/go/`
/// answer `302` to the rest of the path (`/go/http://127.0.0.1:1/x` → `http://127.0.0.1:1/x`),
/// everything else `200`. It stands in for landing pages, unsubscribe pages and, in tag
/// tests, a tracking host.
pub struct Web {
    pub port: u16,
    hits: std::sync::Arc<std::sync::Mutex<Vec<Hit>>>,
}

impl Web {
    pub fn start() -> Web {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let h = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let h = h.clone();
                std::thread::spawn(move || serve_http(stream, &h));
            }
        });
        Web { port, hits }
    }

    /// Requests so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Requests so far whose path starts with `prefix`.
    pub fn hits_on(&self, prefix: &str) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|h| h.path.starts_with(prefix))
            .collect()
    }
}

fn serve_http(stream: TcpStream, hits: &std::sync::Mutex<Vec<Hit>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut request = String::new();
        if reader.read_line(&mut request).unwrap_or(0) == 0 {
            return;
        }
        let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut user_agent = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((n, v)) = l.split_once(':') {
                if n.eq_ignore_ascii_case("user-agent") {
                    user_agent = v.trim().to_string();
                }
            }
        }
        hits.lock().unwrap().push(Hit {
            path: path.clone(),
            user_agent,
        });
        let answer = match path.strip_prefix("/go/") {
            Some(target) => {
                format!("HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\n\r\n")
            }
            None => "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nok"
                .to_string(),
        };
        if stream.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}
