//! `/suppressions` end to end: a real SQLite list in a temp dir, the API served on loopback
//! with `http-access` applied, and a hand-written HTTP/1.1 client.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use petrel_mgmt::{AccessLevel, AccessRule, Mgmt};
use petrel_spool::{Spool, SpoolOptions};
use petrel_suppression::{NewEntry, Reason, SuppressionList};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Api {
    addr: SocketAddr,
    list: Option<Arc<SuppressionList>>,
    _dir: tempfile::TempDir,
}

/// Starts the API with a suppression list (when `with_list`) and the given `http-access`
/// rules (empty: loopback gets operator rights).
async fn start(with_list: bool, rules: Vec<AccessRule>) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let origin = dir.path().join("petrel.conf");
    let config = petrel_config::parse_str("host-name mgmt.test\n", &origin)
        .unwrap()
        .config;
    let (spool, _) = Spool::open(
        &dir.path().join("spool"),
        SpoolOptions {
            min_free_space: 0,
            segment_size: 1 << 20,
            preallocate: false,
            ..SpoolOptions::default()
        },
    )
    .unwrap();
    let live = petrel_config::LiveConfig::new(Arc::new(config));
    let mut mgmt = Mgmt::new(live, spool, None, rules, None);
    let list = with_list
        .then(|| Arc::new(SuppressionList::open(&dir.path().join("suppression.db")).unwrap()));
    if let Some(l) = &list {
        mgmt = mgmt.with_suppression(l.clone());
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(mgmt.serve(listener));
    Api {
        addr,
        list,
        _dir: dir,
    }
}

/// One request with `Connection: close`; returns the status and the JSON body.
async fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    stream.read_to_end(&mut resp).await.unwrap();
    let text = String::from_utf8(resp).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked { dechunk(body) } else { body.into() };
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    (status, json)
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    out
}

#[tokio::test]
async fn add_list_remove() {
    let api = start(true, Vec::new()).await;
    let a = api.addr;

    let (s, b) = request(
        a,
        "POST",
        "/suppressions",
        r#"{"address":"Gone@Example.org","description":"asked by phone"}"#,
    )
    .await;
    assert_eq!((s, &b), (200, &serde_json::json!({"added": true})));
    let (s, b) = request(
        a,
        "POST",
        "/suppressions",
        r#"{"address":"x@example.com","subaccount":7}"#,
    )
    .await;
    assert_eq!((s, &b), (200, &serde_json::json!({"added": true})));
    // Adding again refreshes: not new.
    let (s, b) = request(
        a,
        "POST",
        "/suppressions",
        r#"{"address":"gone@example.org"}"#,
    )
    .await;
    assert_eq!((s, &b), (200, &serde_json::json!({"added": false})));

    // The engine's view (same list object) sees what the API added.
    let list = api.list.as_ref().unwrap();
    assert_eq!(
        list.is_suppressed(0, "gone@example.org").unwrap().reason,
        Reason::Manual
    );
    assert!(list.is_suppressed(0, "x@example.com").is_none());

    let (s, b) = request(a, "GET", "/suppressions", "").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["total"], 2);
    let results = b["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    // Newest first: the refresh moved gone@ to the front.
    assert_eq!(results[0]["address"], "gone@example.org");
    assert_eq!(results[0]["subaccount"], 0);
    assert_eq!(results[0]["reason"], "manual");
    assert_eq!(results[0]["description"], "");
    let created = results[0]["created"].as_str().unwrap();
    assert!(
        created.len() == 20 && created.ends_with('Z') && created.as_bytes()[10] == b'T',
        "{created}"
    );
    assert_eq!(results[1]["address"], "x@example.com");
    assert_eq!(results[1]["subaccount"], 7);

    // Filters.
    let (_, b) = request(a, "GET", "/suppressions?subaccount=7", "").await;
    assert_eq!(b["total"], 1);
    assert_eq!(b["results"][0]["address"], "x@example.com");
    let (_, b) = request(a, "GET", "/suppressions?address=GONE%40example.org", "").await;
    assert_eq!(b["total"], 1);
    let (_, b) = request(a, "GET", "/suppressions?reason=hard_bounce", "").await;
    assert_eq!(b["total"], 0);
    assert_eq!(b["results"], serde_json::json!([]));
    let (_, b) = request(a, "GET", "/suppressions?limit=1", "").await;
    assert_eq!(b["results"].as_array().unwrap().len(), 1);
    assert_eq!(b["total"], 2, "total counts every match, not just the page");

    // Remove: subaccount matters.
    let (s, b) = request(a, "DELETE", "/suppressions?address=x%40example.com", "").await;
    assert_eq!(s, 404);
    assert_eq!(
        b["error"],
        "x@example.com is not suppressed for subaccount 0"
    );
    let (s, b) = request(
        a,
        "DELETE",
        "/suppressions?address=x%40example.com&subaccount=7",
        "",
    )
    .await;
    assert_eq!((s, &b), (200, &serde_json::json!({"removed": true})));
    let (s, _) = request(
        a,
        "DELETE",
        "/suppressions?address=x%40example.com&subaccount=7",
        "",
    )
    .await;
    assert_eq!(s, 404);
    let (_, b) = request(a, "GET", "/suppressions", "").await;
    assert_eq!(b["total"], 1);
}

#[tokio::test]
async fn bad_requests_are_400_with_json_errors() {
    let api = start(true, Vec::new()).await;
    let a = api.addr;
    for (body, needle) in [
        ("not json", "invalid JSON body"),
        (r#"{"subaccount":1}"#, "missing field `address`"),
        (
            r#"{"address":"a@b","subacount":1}"#,
            "unknown field `subacount`",
        ),
        (r#"{"address":"a@b","subaccount":-1}"#, "invalid JSON body"),
        (r#"{"address":"nobody"}"#, "is not a valid email address"),
        (
            r#"{"address":"a b@example.com"}"#,
            "is not a valid email address",
        ),
        (r#"{"address":"a@b@c"}"#, "is not a valid email address"),
    ] {
        let (s, b) = request(a, "POST", "/suppressions", body).await;
        assert_eq!(s, 400, "{body}: {b}");
        let e = b["error"].as_str().unwrap();
        assert!(e.contains(needle), "{body}: {e}");
    }
    for query in [
        "subaccount=x",
        "subaccount=-1",
        "reason=complaint",
        "limit=0",
        "limit=10001",
        "limit=many",
    ] {
        let (s, b) = request(a, "GET", &format!("/suppressions?{query}"), "").await;
        assert_eq!(s, 400, "{query}: {b}");
        assert!(b["error"].is_string(), "{query}: {b}");
    }
    let (s, b) = request(a, "DELETE", "/suppressions", "").await;
    assert_eq!(s, 400);
    assert_eq!(b["error"], "parameter `address` is required");
    assert!(api.list.as_ref().unwrap().is_empty());
}

#[tokio::test]
async fn without_a_list_suppression_is_not_enabled() {
    let api = start(false, Vec::new()).await;
    for method in ["GET", "POST", "DELETE"] {
        let (s, b) = request(
            api.addr,
            method,
            "/suppressions?address=a%40b",
            r#"{"address":"a@b"}"#,
        )
        .await;
        assert_eq!(s, 404, "{method}");
        assert_eq!(b["error"], "suppression is not enabled", "{method}");
    }
}

#[tokio::test]
async fn monitor_may_read_but_not_change() {
    let monitor = vec![AccessRule {
        network: IpAddr::from([127, 0, 0, 1]),
        prefix: 32,
        level: AccessLevel::Monitor,
    }];
    let api = start(true, monitor).await;
    api.list
        .as_ref()
        .unwrap()
        .add(NewEntry {
            address: "bounced@example.net".into(),
            subaccount: 0,
            reason: Reason::HardBounce,
            description: "550 5.1.1 user unknown".into(),
        })
        .unwrap();
    let (s, b) = request(api.addr, "GET", "/suppressions", "").await;
    assert_eq!(s, 200);
    assert_eq!(b["results"][0]["reason"], "hard_bounce");
    assert_eq!(b["results"][0]["description"], "550 5.1.1 user unknown");
    let (s, b) = request(
        api.addr,
        "POST",
        "/suppressions",
        r#"{"address":"a@example.com"}"#,
    )
    .await;
    assert_eq!(s, 403, "{b}");
    let (s, _) = request(
        api.addr,
        "DELETE",
        "/suppressions?address=bounced%40example.net",
        "",
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(api.list.as_ref().unwrap().len(), 1);
}
