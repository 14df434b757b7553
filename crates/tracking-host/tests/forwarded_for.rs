//! Behind a local proxy (loopback peer) the reader's address comes from `X-Forwarded-For`,
//! else `X-Real-IP`; unparseable values fall back to the peer.

mod common;

use common::*;
use petrel_tracking::Action;

#[tokio::test]
async fn forwarded_headers_are_honoured_from_loopback() {
    let h = Harness::start().await;
    let open = open_token(Action::Open);
    let path = format!("/o/{open}");
    let cases: [&[(&str, &str)]; 5] = [
        &[("X-Forwarded-For", "198.51.100.23, 10.0.0.1")],
        &[("X-Forwarded-For", "unknown, 2001:db8::77")],
        &[("X-Real-IP", "203.0.113.5")],
        &[("X-Forwarded-For", "garbage"), ("X-Real-IP", "nonsense")],
        &[],
    ];
    for headers in cases {
        let mut hs = headers.to_vec();
        hs.push(("User-Agent", BROWSER));
        assert_eq!(h.get(&path, &hs).await.status, 200);
    }
    let events = h.finish().await;
    let ips: Vec<_> = events
        .iter()
        .map(|e| e["ip_address"].as_str().unwrap())
        .collect();
    assert_eq!(
        ips,
        [
            "198.51.100.23",
            "2001:db8::77",
            "203.0.113.5",
            "127.0.0.1",
            "127.0.0.1"
        ]
    );
}
