//! End-to-end tests: a real SQLite file in a temp dir, the router served on loopback, and a
//! hand-written HTTP/1.1 client.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use petrel_signals::{create_api_key, router, Permission, ServiceOptions, SignalsStore};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The example lines of the spec §2.7, plus one event of subaccount 7.
const SPEC_EXAMPLES: &str = r#"{"msys":{"message_event":{"type":"reception","event_id":"4812739012764551233","message_id":"0000a1b2c3d4e5f60718","timestamp":"1767225600","recv_method":"esmtp","rcpt_to":"ana@example.net","raw_rcpt_to":"Ana@Example.net","routing_domain":"example.net","msg_from":"bounces@mail.example.com","friendly_from":"news@example.com","subject":"Spring is here","msg_size":"18234","campaign_id":"spring-launch","binding":"vmta-a","binding_group":"warm","sending_ip":"192.0.2.10","subaccount_id":0,"open_tracking":true,"click_tracking":true,"initial_pixel":true,"rcpt_meta":{"plan":"gold"},"rcpt_tags":["eu","trial"]}}}
{"msys":{"message_event":{"type":"delivery","event_id":"4812739012764551234","message_id":"0000a1b2c3d4e5f60718","timestamp":"1767225603","delv_method":"esmtp","recv_method":"esmtp","rcpt_to":"ana@example.net","routing_domain":"example.net","msg_from":"bounces@mail.example.com","friendly_from":"news@example.com","subject":"Spring is here","msg_size":"18234","num_retries":"0","queue_time":"2870","binding":"vmta-a","binding_group":"warm","sending_ip":"192.0.2.10","ip_address":"198.51.100.25","outbound_tls":"1","campaign_id":"spring-launch","subaccount_id":0}}}
{"msys":{"message_event":{"type":"inband","event_id":"4812739012764551235","message_id":"0000b7c6d5e4f3021a2b","timestamp":"1767225611","delv_method":"esmtp","recv_method":"esmtp","rcpt_to":"gone@example.org","routing_domain":"example.org","msg_from":"bounces@mail.example.com","bounce_class":"10","error_code":"550","raw_reason":"smtp;550 5.1.1 <gone@example.org>: Recipient address rejected","reason":"smtp;550 5.1.1 <...@...>: Recipient address rejected","num_retries":"0","sending_ip":"192.0.2.10","binding_group":"warm","campaign_id":"spring-launch","subaccount_id":0}}}
{"msys":{"message_event":{"type":"tempfail","event_id":"4812739012764551236","message_id":"0000c8d7e6f5041b2c3d","timestamp":"1767225640","delv_method":"esmtp","recv_method":"esmtp","rcpt_to":"busy@example.com","msg_from":"bounces@mail.example.com","bounce_class":"22","error_code":"452","raw_reason":"smtp;452 4.2.2 Mailbox full","reason":"smtp;452 4.2.2 Mailbox full","num_retries":"1","queue_time":"600412","sending_ip":"192.0.2.10","subaccount_id":0}}}
{"msys":{"message_event":{"type":"outofband","event_id":"4812739012764551237","message_id":"0000a1b2c3d4e5f60718","timestamp":"1767229200","delv_method":"esmtp","recv_method":"esmtp","rcpt_to":"ana@example.net","msg_from":"bounces@mail.example.com","bounce_class":"10","error_code":"550","raw_reason":"550 5.0.0 <ana@example.net>... User unknown","reason":"550 5.0.0 ...@... User unknown","subaccount_id":0}}}
{"msys":{"message_event":{"type":"feedback","event_id":"4812739012764551238","message_id":"0000a1b2c3d4e5f60718","timestamp":"1767232800","delv_method":"esmtp","rcpt_to":"ana@example.net","fbtype":"abuse","report_by":"fbl.example.net","report_to":"fbl@mail.example.com","friendly_from":"news@example.com","sending_ip":"192.0.2.10","subaccount_id":0}}}
{"msys":{"message_event":{"type":"rejection","event_id":"4812739012764551239","message_id":"0000d9e8f7a6051c3d4e","timestamp":"1767225605","recv_method":"esmtp","rcpt_to":"x@example.com","raw_rcpt_to":"x@example.com","msg_from":"app@unverified.example","friendly_from":"app@unverified.example","bounce_class":"25","error_code":"550","raw_reason":"550 5.7.1 Unconfigured Sending Domain","reason":"550 5.7.1 Unconfigured Sending Domain","remote_addr":"203.0.113.7","subaccount_id":0}}}
{"msys":{"gen_event":{"type":"gen_fail","event_id":"4812739012764551240","timestamp":"1767225606","recv_method":"rest","rcpt_to":"bo@example.com","raw_rcpt_to":"bo@example.com","msg_from":"bounces@mail.example.com","friendly_from":"news@example.com","campaign_id":"spring-launch","template_id":"welcome","template_version":"3","error_code":"554","raw_reason":"554 5.3.3 [internal] substitution value 'first' missing","reason":"554 5.3.3 [internal] substitution value 'first' missing","subaccount_id":0}}}
{"msys":{"track_event":{"type":"initial_open","event_id":"4812739012764551241","message_id":"0000a1b2c3d4e5f60718","timestamp":"1767226000","delv_method":"esmtp","rcpt_to":"ana@example.net","user_agent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64)","ip_address":"203.0.113.50","geo_ip":{"country":"DE","region":"BE","city":"Berlin","latitude":52.52,"longitude":13.40,"zip":10115,"postal_code":"10115"},"subaccount_id":0}}}
{"msys":{"track_event":{"type":"open","event_id":"4812739012764551242","message_id":"0000a1b2c3d4e5f60718","timestamp":"1767226001","delv_method":"esmtp","rcpt_to":"ana@example.net","user_agent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64)","ip_address":"203.0.113.50","subaccount_id":0}}}
{"msys":{"track_event":{"type":"click","event_id":"4812739012764551243","message_id":"0000a1b2c3d4e5f60718","timestamp":"1767226030","delv_method":"esmtp","rcpt_to":"ana@example.net","target_link_url":"https://shop.example.com/spring","target_link_name":"hero-banner","user_agent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64)","ip_address":"203.0.113.50","subaccount_id":0}}}
{"msys":{"unsubscribe_event":{"type":"link","event_id":"4812739012764551244","message_id":"0000a1b2c3d4e5f60718","timestamp":"1767226100","delv_method":"esmtp","recv_method":"esmtp","rcpt_to":"ana@example.net","user_agent":"Mozilla/5.0","target_link_url":"https://example.com/unsub?u=77","subaccount_id":0}}}
{"msys":{"unsubscribe_event":{"type":"list","event_id":"4812739012764551245","message_id":"0000a1b2c3d4e5f60718","timestamp":"1767226200","delv_method":"esmtp","recv_method":"esmtp","rcpt_to":"ana@example.net","subaccount_id":0}}}
{"msys":{"message_event":{"type":"delivery","event_id":"4812739012764551299","message_id":"0000ffffffffffffffff","timestamp":"1767225700","delv_method":"esmtp","rcpt_to":"zed@example.com","friendly_from":"hi@other.example","campaign_id":"autumn","binding_group":"cold","sending_ip":"192.0.2.99","subaccount_id":7}}}
"#;

const RANGE: &str = "from=2025-12-31T00:00:00Z&to=2026-01-02T00:00:00Z";

struct Service {
    addr: SocketAddr,
    ingest_key: String,
    read_key: String,
    _dir: tempfile::TempDir,
}

async fn start() -> Service {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SignalsStore::open(&dir.path().join("signals.db")).unwrap());
    let ingest_key = create_api_key(&store, "mta", &[Permission::Ingest]).unwrap();
    let read_key = create_api_key(&store, "dashboard", &[Permission::Read]).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        async move { axum::serve(listener, router(store, ServiceOptions::default())).await },
    );
    Service {
        addr,
        ingest_key,
        read_key,
        _dir: dir,
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A minimal HTTP/1.1 exchange with `Connection: close`; returns status and JSON body.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut resp = Vec::new();
    stream.read_to_end(&mut resp).await.unwrap();
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let status_line = String::from_utf8_lossy(&resp[..split]).to_string();
    let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let body = &resp[split + 4..];
    let json = serde_json::from_slice(body).unwrap_or(Value::Null);
    (status, json)
}

async fn post_batch(svc: &Service, key: &str, body: &[u8]) -> (u16, Value) {
    request(
        svc.addr,
        "POST",
        "/api/v1/ingest/events",
        &[
            ("Authorization", key),
            ("Content-Type", "application/x-ndjson"),
            ("Content-Encoding", "gzip"),
        ],
        body,
    )
    .await
}

async fn get(svc: &Service, path: &str) -> (u16, Value) {
    request(
        svc.addr,
        "GET",
        path,
        &[("Authorization", svc.read_key.as_str())],
        b"",
    )
    .await
}

/// Ingests and returns the batch id after checking the 200 shape.
async fn ingest_ok(svc: &Service, body: &[u8]) -> String {
    let (status, v) = post_batch(svc, &svc.ingest_key, body).await;
    assert_eq!(status, 200, "{v}");
    let id = v["results"]["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36);
    id
}

async fn batch_record(svc: &Service, id: &str) -> Value {
    let (status, v) = get(svc, &format!("/api/v1/events/ingest?batch_ids={id}")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["total_count"], 1, "{v}");
    v["results"][0].clone()
}

async fn search(svc: &Service, filter: &str) -> Value {
    let (status, v) = get(svc, &format!("/api/v1/events/message?{RANGE}&{filter}")).await;
    assert_eq!(status, 200, "{v}");
    v
}

fn ids(v: &Value) -> Vec<String> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn spec_examples_are_searchable_by_every_facet() {
    let svc = start().await;
    let id = ingest_ok(&svc, &gzip(SPEC_EXAMPLES.as_bytes())).await;
    let rec = batch_record(&svc, &id).await;
    assert_eq!(rec["type"], "success", "{rec}");
    assert_eq!(rec["number_succeeded"], 14);
    assert_eq!(rec["number_failed"], 0);
    assert_eq!(rec["number_duplicates"], 0);
    assert_eq!(rec["batch_id"], id);
    assert_eq!(rec["retryable"], false);
    assert!(rec["expiration_timestamp"].is_string());

    let count = |v: &Value| v["total_count"].as_u64().unwrap();
    assert_eq!(count(&search(&svc, "").await), 14);
    // The seven thin events of message 0000a1b2c3d4e5f60718 (out-of-band, complaint, two
    // opens, click, two unsubscribes) are enriched from its delivery: they count in its
    // campaign, pool, sending IP and (via the copied From) sending domain.
    assert_eq!(count(&search(&svc, "campaigns=spring-launch").await), 4 + 7);
    assert_eq!(count(&search(&svc, "recipients=Ana@Example.net").await), 9);
    assert_eq!(count(&search(&svc, "ip_pools=warm").await), 3 + 7);
    assert_eq!(count(&search(&svc, "ip_pools=cold,warm").await), 4 + 7);
    // (the complaint carried its own sending_ip already)
    assert_eq!(count(&search(&svc, "sending_ips=192.0.2.10").await), 5 + 6);
    assert_eq!(count(&search(&svc, "subaccounts=0").await), 13);
    assert_eq!(count(&search(&svc, "subaccounts=7").await), 1);
    assert_eq!(
        count(&search(&svc, "sending_domains=example.com").await),
        4 + 6
    );
    assert_eq!(
        count(&search(&svc, "sending_domains=other.example").await),
        1
    );
    assert_eq!(count(&search(&svc, "events=bounce,delay").await), 2);
    assert_eq!(count(&search(&svc, "events=click").await), 1);
    assert_eq!(count(&search(&svc, "bounce_classes=10").await), 2);
    assert_eq!(
        count(&search(&svc, "message_ids=0000a1b2c3d4e5f60718").await),
        9
    );
    assert_eq!(
        count(&search(&svc, "campaigns=spring-launch&events=bounce").await),
        1
    );

    // Time range: from inclusive, to exclusive.
    let (_, v) = get(
        &svc,
        "/api/v1/events/message?from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:10Z",
    )
    .await;
    assert_eq!(count(&v), 4);
    let mut got = ids(&v);
    got.sort();
    assert_eq!(
        got,
        [
            "4812739012764551233",
            "4812739012764551234",
            "4812739012764551239",
            "4812739012764551240"
        ]
    );
    // Newest first.
    assert_eq!(v["results"][0]["event_id"], "4812739012764551240");

    // Public form of a bounce.
    let v = search(&svc, "events=bounce").await;
    let b = &v["results"][0];
    assert_eq!(b["type"], "bounce");
    assert_eq!(b["timestamp"], "2026-01-01T00:00:11.000+00:00");
    assert_eq!(b["ip_pool"], "warm");
    assert_eq!(b["recipient_domain"], "example.org");
    assert_eq!(b["subaccount_id"], "0");
    assert_eq!(b["campaign_id"], "spring-launch");
    assert!(v["links"].get("next").is_none());

    // Bad query parameters are 400 with the error envelope.
    let (status, v) = get(&svc, "/api/v1/events/message?from=yesterday").await;
    assert_eq!(status, 400);
    assert!(v["errors"][0]["message"].as_str().unwrap().contains("from"));
    let (status, _) = get(&svc, "/api/v1/events/message?per_page=0").await;
    assert_eq!(status, 400);
    let (status, _) = get(&svc, "/api/v1/events/message?events=banana").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn duplicates_events_and_batches() {
    let svc = start().await;
    let body = gzip(SPEC_EXAMPLES.as_bytes());
    ingest_ok(&svc, &body).await;

    // Same bytes again: a duplicate batch, nothing stored twice.
    let id = ingest_ok(&svc, &body).await;
    let rec = batch_record(&svc, &id).await;
    assert_eq!(rec["type"], "error");
    assert_eq!(rec["error_type"], "duplicate_batch");
    assert_eq!(search(&svc, "").await["total_count"], 14);

    // A new batch repeating one event_id: that event is counted as a duplicate.
    let first = SPEC_EXAMPLES.lines().next().unwrap();
    let fresh = first
        .replace("4812739012764551233", "4812739012764551300")
        .replace("ana@example.net", "new@example.net");
    let id = ingest_ok(&svc, &gzip(format!("{first}\n{fresh}\n").as_bytes())).await;
    let rec = batch_record(&svc, &id).await;
    assert_eq!(rec["type"], "success");
    assert_eq!(rec["number_succeeded"], 1);
    assert_eq!(rec["number_duplicates"], 1);
    assert_eq!(search(&svc, "").await["total_count"], 15);
    assert_eq!(
        search(&svc, "recipients=new@example.net").await["total_count"],
        1
    );
}

#[tokio::test]
async fn keys_and_permissions() {
    let svc = start().await;
    let body = gzip(SPEC_EXAMPLES.as_bytes());
    let (status, v) = request(
        svc.addr,
        "POST",
        "/api/v1/ingest/events",
        &[("Content-Encoding", "gzip")],
        &body,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(v["errors"][0]["message"], "Unauthorized.");
    let wrong = "0".repeat(40);
    assert_eq!(post_batch(&svc, &wrong, &body).await.0, 401);
    // A read-only key cannot ingest; an ingest key cannot read.
    let (status, v) = post_batch(&svc, &svc.read_key, &body).await;
    assert_eq!(status, 403);
    assert!(v["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("ingest"));
    let (status, _) = request(
        svc.addr,
        "GET",
        "/api/v1/events/message",
        &[("Authorization", svc.ingest_key.as_str())],
        b"",
    )
    .await;
    assert_eq!(status, 403);
    // HTTP Basic with the key as user name works too.
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:", svc.ingest_key))
    );
    assert_eq!(post_batch(&svc, &basic, &body).await.0, 200);
    // Missing Content-Encoding is a malformed request.
    let (status, v) = request(
        svc.addr,
        "POST",
        "/api/v1/ingest/events",
        &[("Authorization", svc.ingest_key.as_str())],
        &body,
    )
    .await;
    assert_eq!(status, 400);
    assert!(v["errors"][0]["message"].is_string());
}

#[tokio::test]
async fn bad_batches_get_their_documented_outcome() {
    let svc = start().await;

    // Truncated gzip header: 200, then error_type decompress.
    let id = ingest_ok(&svc, &[0x1f, 0x8b, 0x08, 0x00]).await;
    assert_eq!(batch_record(&svc, &id).await["error_type"], "decompress");
    let id = ingest_ok(&svc, b"this is not gzip at all").await;
    assert_eq!(batch_record(&svc, &id).await["error_type"], "decompress");

    // Gzip of zero bytes, and a zero-byte body: empty_batch.
    let id = ingest_ok(&svc, &gzip(b"")).await;
    let rec = batch_record(&svc, &id).await;
    assert_eq!(rec["type"], "error");
    assert_eq!(rec["error_type"], "empty_batch");
    let id = ingest_ok(&svc, b"").await;
    assert_eq!(batch_record(&svc, &id).await["error_type"], "empty_batch");

    // Malformed lines are dropped one by one; the good line is kept.
    let good = SPEC_EXAMPLES.lines().nth(2).unwrap();
    let body = format!(
        "{{}}\nnot json\n{{\"msys\":{{\"banana\":{{\"type\":\"delivery\"}}}}}}\n{good}\n\
         {{\"msys\":{{\"message_event\":{{\"type\":\"delivery\",\"event_id\":\"9\",\"message_id\":\"m\",\"timestamp\":\"1767225600\",\"rcpt_hash\":\"abc\"}}}}}}\n"
    );
    let id = ingest_ok(&svc, &gzip(body.as_bytes())).await;
    let rec = batch_record(&svc, &id).await;
    assert_eq!(rec["type"], "error");
    assert_eq!(rec["error_type"], "validation");
    assert_eq!(rec["number_failed"], 4);
    assert_eq!(rec["number_succeeded"], 1);
    assert!(rec["error_message"]
        .as_str()
        .unwrap()
        .starts_with("line 1:"));
    assert_eq!(search(&svc, "").await["total_count"], 1);

    // Over 5 MiB uncompressed: 413 with the error envelope, nothing recorded.
    let line = SPEC_EXAMPLES.lines().next().unwrap();
    let mut big = String::new();
    while big.len() <= petrel_signals::MAX_BATCH_BYTES {
        big.push_str(line);
        big.push('\n');
    }
    let (status, v) = post_batch(&svc, &svc.ingest_key, &gzip(big.as_bytes())).await;
    assert_eq!(status, 413);
    assert!(v["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("large"));

    // Batch search by type: 5 error records so far.
    let (_, v) = get(&svc, "/api/v1/events/ingest?events=error").await;
    assert_eq!(v["total_count"], 5);
    let (_, v) = get(&svc, "/api/v1/events/ingest?events=success").await;
    assert_eq!(v["total_count"], 0);
    let (_, v) = get(&svc, "/api/v1/events/ingest?error_types=empty_batch").await;
    assert_eq!(v["total_count"], 2);
}

#[tokio::test]
async fn cursor_paging_returns_each_event_once() {
    let svc = start().await;
    // 23 events sharing few timestamps, so ties are broken by event_id across pages.
    let mut body = String::new();
    for i in 0..23 {
        body.push_str(&format!(
            "{{\"msys\":{{\"message_event\":{{\"type\":\"delivery\",\"event_id\":\"{}\",\"message_id\":\"m{i}\",\"timestamp\":\"{}\",\"delv_method\":\"esmtp\",\"rcpt_to\":\"r{i}@example.com\",\"campaign_id\":\"paging\"}}}}}}\n",
            1000 + i,
            1767225600 + i % 3
        ));
    }
    ingest_ok(&svc, &gzip(body.as_bytes())).await;

    let mut seen = Vec::new();
    let mut path = format!("/api/v1/events/message?{RANGE}&campaigns=paging&per_page=5");
    let mut pages = 0;
    loop {
        let (status, v) = get(&svc, &path).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["total_count"], 23);
        seen.extend(ids(&v));
        pages += 1;
        match v["links"]["next"].as_str() {
            Some(next) => path = next.to_string(),
            None => break,
        }
    }
    assert_eq!(pages, 5);
    assert_eq!(seen.len(), 23);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 23);

    // The batch search pages too.
    for _ in 0..3 {
        ingest_ok(&svc, &gzip(b"")).await;
    }
    let (_, v) = get(&svc, "/api/v1/events/ingest?per_page=3").await;
    assert_eq!(v["total_count"], 4);
    assert_eq!(v["results"].as_array().unwrap().len(), 3);
    let next = v["links"]["next"].as_str().unwrap().to_string();
    let (_, v) = get(&svc, &next).await;
    assert_eq!(v["results"].as_array().unwrap().len(), 1);
    assert!(v["links"].get("next").is_none());
}
