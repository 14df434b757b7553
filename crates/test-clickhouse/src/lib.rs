//! A real ClickHouse server for tests: [`ClickHouseServer::start`] writes a small
//! `config.xml` / `users.xml` into a fresh temporary directory, starts `clickhouse-server`
//! as a plain process on free loopback ports, waits until it answers `/ping`, and stops it
//! by PID when dropped (the directory goes with it). A small shell watchdog started with
//! it kills the server and removes its directory when the test process ends without
//! dropping it (a panic, a kill, or [`ClickHouseServer::shared`], which lives as long as the
//! test binary).
//!
//! The binary is `$PETREL_CLICKHOUSE_SERVER`, else Debian's `/usr/sbin/clickhouse-server`
//! (package `clickhouse-server`, which `test.sh` installs), else `clickhouse` on `PATH`
//! (current releases' single binary, run as `clickhouse server`).
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The user and password every test server accepts besides `default` (no password).
pub const USER: &str = "petrel";
/// `USER`'s password.
pub const PASSWORD: &str = "petrel-test";

/// A running server; stopped when dropped.
pub struct ClickHouseServer {
    /// The watchdog shell; the server is its child, its PID in `server.pid`.
    child: Option<Child>,
    dir: tempfile::TempDir,
    http_port: u16,
    tcp_port: u16,
    binary: (PathBuf, Vec<String>),
}

use petrel_test_ports::free_port;

/// The server program and the arguments before `--config-file`.
fn find_binary() -> (PathBuf, Vec<String>) {
    if let Ok(p) = std::env::var("PETREL_CLICKHOUSE_SERVER") {
        return (PathBuf::from(p), Vec::new());
    }
    let debian = Path::new("/usr/sbin/clickhouse-server");
    if debian.exists() {
        return (debian.to_path_buf(), Vec::new());
    }
    (PathBuf::from("clickhouse"), vec!["server".into()])
}

fn config(dir: &Path, http: u16, tcp: u16) -> String {
    let d = dir.display();
    format!(
        r#"<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{d}/server.log</log><errorlog>{d}/server.err.log</errorlog></logger>
  <http_port>{http}</http_port>
  <tcp_port>{tcp}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{d}/data/</path>
  <tmp_path>{d}/data/tmp/</tmp_path>
  <user_files_path>{d}/data/user_files/</user_files_path>
  <format_schema_path>{d}/data/format_schemas/</format_schema_path>
  <users_config>{d}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>536870912</uncompressed_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
"#
    )
}

const USERS: &str = r#"<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users>
    <default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default>
    <petrel><password>petrel-test</password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></petrel>
  </users>
  <quotas><default></default></quotas>
</yandex>
"#;

impl ClickHouseServer {
    /// Starts a server in a new temporary directory (under `$TMPDIR`, or `dir` when given).
    pub fn start() -> ClickHouseServer {
        Self::start_in(None)
    }

    /// Starts a server whose data lives under `parent` (benchmarks keep it under
    /// `target/`).
    pub fn start_in(parent: Option<&Path>) -> ClickHouseServer {
        let dir = match parent {
            Some(p) => tempfile::Builder::new().prefix("clickhouse-").tempdir_in(p),
            None => tempfile::Builder::new().prefix("clickhouse-").tempdir(),
        }
        .expect("a temporary directory for ClickHouse");
        let mut s = ClickHouseServer {
            child: None,
            dir,
            http_port: free_port(),
            tcp_port: free_port(),
            binary: find_binary(),
        };
        std::fs::write(s.dir.path().join("users.xml"), USERS).expect("users.xml");
        s.run();
        s
    }

    fn run(&mut self) {
        let cfg = self.dir.path().join("config.xml");
        std::fs::write(&cfg, config(self.dir.path(), self.http_port, self.tcp_port))
            .expect("config.xml");
        let (bin, pre) = &self.binary;
        let pid_file = self.dir.path().join("server.pid");
        let _ = std::fs::remove_file(&pid_file);
        // The server runs under a watchdog: when this test process is gone, the server is
        // killed and its directory removed; when the server is killed on purpose
        // (`kill`), the watchdog just ends.
        let watchdog = r#"
            "$0" "$@" >/dev/null 2>&1 &
            server=$!
            echo "$server" > "$PETREL_CH_PID"
            parent=$PPID
            while kill -0 "$parent" 2>/dev/null && kill -0 "$server" 2>/dev/null; do sleep 0.5; done
            if ! kill -0 "$parent" 2>/dev/null; then
                kill -9 "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$PETREL_CH_DIR"
            fi"#;
        let child = Command::new("sh")
            .arg("-c")
            .arg(watchdog)
            .arg(bin)
            .args(pre)
            .arg(format!("--config-file={}", cfg.display()))
            .env("PETREL_CH_PID", &pid_file)
            .env("PETREL_CH_DIR", self.dir.path())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh runs");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.ping() {
                return;
            }
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                let log = std::fs::read_to_string(self.dir.path().join("server.err.log"))
                    .unwrap_or_default();
                panic!(
                    "{} did not start (install Debian's clickhouse-server, as test.sh does): {log}",
                    bin.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("clickhouse-server did not answer /ping within 60 s");
    }

    fn ping(&self) -> bool {
        ureq::get(format!("{}/ping", self.url()))
            .call()
            .ok()
            .and_then(|r| r.into_body().read_to_string().ok())
            .is_some_and(|b| b.starts_with("Ok"))
    }

    /// `http://127.0.0.1:PORT` of the HTTP interface.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// The server's data directory (to measure its size).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref()?;
        std::fs::read_to_string(self.dir.path().join("server.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Kills the server (SIGKILL, by its PID) and waits for it: "ClickHouse down".
    pub fn kill(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }

    /// One server for the whole test binary (each test uses its own database); the
    /// watchdog stops it when the binary exits.
    pub fn shared() -> &'static ClickHouseServer {
        static SERVER: OnceLock<ClickHouseServer> = OnceLock::new();
        SERVER.get_or_init(ClickHouseServer::start)
    }

    /// Starts the server again on the same ports and data after [`ClickHouseServer::kill`].
    pub fn restart(&mut self) {
        self.kill();
        self.run();
    }

    /// Runs one statement as `default` and returns the answer text (test setup, checks).
    pub fn query(&self, sql: &str) -> Result<String, String> {
        let resp = ureq::post(format!("{}/", self.url()))
            .config()
            .http_status_as_error(false)
            .build()
            .send(sql)
            .map_err(|e| e.to_string())?;
        let ok = resp.status().as_u16() == 200;
        let body = resp
            .into_body()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        if ok {
            Ok(body)
        } else {
            Err(body)
        }
    }
}

impl Drop for ClickHouseServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Replays a statement log (`ClickHouseSettings::statement_log`) on current ClickHouse
/// through chDB (`pip install chdb`, as `test.sh` does) and panics with the refused
/// statements if any.
pub fn replay_on_chdb(log: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("chdb_replay.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(log)
        .output()
        .expect("python3 runs (test.sh installs it and chdb)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "current ClickHouse (chDB) refused statements:\n{text}"
    );
    eprintln!("{}", text.trim());
}
