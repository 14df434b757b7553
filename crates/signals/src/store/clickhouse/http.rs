//! ClickHouse's HTTP interface: statements (with fully qualified table names) in, `RowBinary` out, keep-alive connections from
//! a pool (ureq, blocking: store methods run on the blocking pool). Errors are sorted into
//! what a client should retry ([`StoreError::Unavailable`]: unreachable, timed out,
//! overloaded) and what it should not ([`StoreError::Backend`]).

use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;

use super::super::StoreError;
use super::ClickHouseSettings;

/// ClickHouse error codes that mean "try again later" rather than "this statement is wrong".
const TRANSIENT: &[u32] = &[
    159, // TIMEOUT_EXCEEDED
    164, // READONLY (a replica in read-only mode)
    201, // QUOTA_EXPIRED
    202, // TOO_MANY_SIMULTANEOUS_QUERIES
    203, // NO_FREE_CONNECTION
    209, // SOCKET_TIMEOUT
    210, // NETWORK_ERROR
    236, // ABORTED
    241, // MEMORY_LIMIT_EXCEEDED
    242, // TABLE_IS_READ_ONLY
    243, // NOT_ENOUGH_SPACE
    252, // TOO_MANY_PARTS
    394, // QUERY_WAS_CANCELLED
];

/// Codes that mean the configured user cannot log in.
const AUTH: &[u32] = &[192, 193, 194, 195, 516];

/// A connection to one ClickHouse server and database.
pub(super) struct Client {
    agent: ureq::Agent,
    base: String,
    auth: String,
    user: String,
    /// URL parameters added to every insert (e.g. lifting the partitions-per-insert limit on
    /// servers that have it).
    insert_settings: Vec<(&'static str, &'static str)>,
    /// Every statement, for the chDB compatibility check (`statement-log` in tests).
    log: Option<Mutex<std::fs::File>>,
}

fn code_of(text: &str) -> Option<u32> {
    let rest = text.split("Code: ").nth(1)?;
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

impl Client {
    pub fn new(s: &ClickHouseSettings) -> Result<Self, StoreError> {
        let base = s.url.trim_end_matches('/').to_string() + "/";
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(StoreError::Backend(format!(
                "clickhouse-url {} must start with http:// or https://",
                s.url
            )));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(300)))
            .max_idle_connections_per_host(16)
            .user_agent(concat!("petrel/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let log = match &s.statement_log {
            Some(path) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| {
                        StoreError::Backend(format!("statement log {}: {e}", path.display()))
                    })?,
            )),
            None => None,
        };
        let credentials = format!("{}:{}", s.user, s.password);
        Ok(Client {
            agent,
            base,
            auth: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(credentials)
            ),
            user: s.user.clone(),
            insert_settings: Vec::new(),
            log,
        })
    }

    /// Adds a setting to every later insert.
    pub fn add_insert_setting(&mut self, name: &'static str, value: &'static str) {
        self.insert_settings.push((name, value));
    }

    fn record(&self, kind: &str, sql: &str, data: Option<&[u8]>) {
        let Some(log) = &self.log else { return };
        let mut line = serde_json::json!({ "kind": kind, "sql": sql });
        if let Some(d) = data {
            line["data"] = base64::engine::general_purpose::STANDARD.encode(d).into();
        }
        if let Ok(mut f) = log.lock() {
            let _ = writeln!(f, "{line}");
        }
    }

    fn unavailable(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Unavailable(format!("cannot reach ClickHouse at {}: {e}", self.base))
    }

    /// Sends one request; `query` goes in the URL when a body carries data.
    fn send(
        &self,
        params: &[(&str, &str)],
        body: &[u8],
        sql_for_errors: &str,
    ) -> Result<Vec<u8>, StoreError> {
        let mut req = self
            .agent
            .post(&self.base)
            .header("Authorization", &self.auth);
        for (k, v) in params {
            req = req.query(*k, *v);
        }
        let resp = req.send(body).map_err(|e| self.unavailable(e))?;
        let status = resp.status().as_u16();
        let mut out = Vec::new();
        resp.into_body()
            .into_reader()
            .read_to_end(&mut out)
            .map_err(|e| self.unavailable(e))?;
        if status == 200 {
            return Ok(out);
        }
        let text = String::from_utf8_lossy(&out).trim().to_string();
        let code = code_of(&text);
        let short: String = sql_for_errors.chars().take(200).collect();
        Err(match code {
            Some(c) if AUTH.contains(&c) => StoreError::Backend(format!(
                "ClickHouse at {} refused user {}: {text}",
                self.base, self.user
            )),
            Some(c) if TRANSIENT.contains(&c) => {
                StoreError::Unavailable(format!("ClickHouse is overloaded: {text}"))
            }
            _ if status == 502 || status == 503 || status == 504 => {
                StoreError::Unavailable(format!("ClickHouse answered HTTP {status}: {text}"))
            }
            _ => StoreError::Backend(format!("ClickHouse refused `{short}`: {text}")),
        })
    }

    /// A statement that returns nothing (DDL, ALTER).
    pub fn execute(&self, sql: &str) -> Result<(), StoreError> {
        self.record("execute", sql, None);
        self.send(&[], sql.as_bytes(), sql).map(|_| ())
    }

    /// A query answered in `RowBinary` (the format is appended here).
    pub fn select(&self, sql: &str) -> Result<Vec<u8>, StoreError> {
        self.record("select", sql, None);
        let full = format!("{sql} FORMAT RowBinary");
        self.send(
            &[
                // Errors after the first rows would otherwise arrive inside a 200 body.
                ("wait_end_of_query", "1"),
                // Key lists (event ids, message ids) can be long.
                ("max_query_size", "104857600"),
                // Point lookups re-read the same small blocks batch after batch.
                ("use_uncompressed_cache", "1"),
            ],
            full.as_bytes(),
            sql,
        )
    }

    /// `INSERT INTO {target} FORMAT RowBinary` with `rows` as data. The insert is one
    /// statement, so it is stored whole or not at all; `query_id` names it in
    /// `system.processes` (the ingest lease looks for it).
    pub fn insert(&self, target: &str, rows: &[u8], query_id: &str) -> Result<(), StoreError> {
        let sql = format!("INSERT INTO {target} FORMAT RowBinary");
        self.record("insert", &sql, Some(rows));
        let mut params: Vec<(&str, &str)> = vec![("query", sql.as_str()), ("query_id", query_id)];
        params.extend(self.insert_settings.iter().copied());
        self.send(&params, rows, &sql).map(|_| ())
    }
}

/// A string literal for SQL: quoted, with `\` and `'` escaped.
pub(super) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `(a, b, c)` of quoted strings, for `IN`.
pub(super) fn quoted_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let v: Vec<String> = items.into_iter().map(quote).collect();
    format!("({})", v.join(", "))
}

/// `(1, 2, 3)` of numbers, for `IN`.
pub(super) fn number_list<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let v: Vec<String> = items.into_iter().map(|n| n.to_string()).collect();
    format!("({})", v.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_codes() {
        assert_eq!(quote(r"it's a \ test"), r"'it\'s a \\ test'");
        assert_eq!(
            code_of("Code: 252, e.displayText() = DB::Exception: Too many parts"),
            Some(252)
        );
        assert_eq!(
            code_of("Code: 60. DB::Exception: Table x does not exist"),
            Some(60)
        );
        assert_eq!(code_of("nothing"), None);
        assert_eq!(number_list([1, 2]), "(1, 2)");
    }
}
