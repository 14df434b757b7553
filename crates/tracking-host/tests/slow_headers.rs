//! A client that trickles its request head (slowloris) is cut off once the header-read limit
//! passes, on the plain-HTTP listener too; it records nothing, and other clients are served.

mod common;

use std::time::{Duration, Instant};

use common::*;
use petrel_tracking::Action;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn a_trickled_request_head_is_cut_off() {
    let h = Harness::start_configured(None, |c| {
        c.header_read_timeout = Duration::from_millis(500);
    })
    .await;
    let token = open_token(Action::Open);
    let head =
        format!("GET /o/{token} HTTP/1.1\r\nHost: t.example\r\nUser-Agent: {BROWSER}\r\n\r\n");

    // One byte every 100 ms: the whole head would take far longer than the limit.
    let mut slow = TcpStream::connect(h.addr).await.unwrap();
    let started = Instant::now();
    let mut closed_after = None;
    for b in head.bytes() {
        if slow.write_all(&[b]).await.is_err() {
            closed_after = Some(started.elapsed());
            break;
        }
        let mut buf = [0u8; 64];
        match tokio::time::timeout(Duration::from_millis(100), slow.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed_after = Some(started.elapsed());
                break;
            }
            Ok(Ok(n)) => panic!(
                "answered a head that never completed: {:?}",
                String::from_utf8_lossy(&buf[..n])
            ),
            Err(_) => {} // still open: send the next byte
        }
    }
    let closed_after = closed_after.expect("the server kept the trickling connection open");
    assert!(
        closed_after >= Duration::from_millis(400),
        "closed before the limit: {closed_after:?}"
    );

    // A normal client is served meanwhile and afterwards.
    let ok = h
        .get(
            &format!("/o/{}", open_token(Action::InitialOpen)),
            &[("User-Agent", BROWSER)],
        )
        .await;
    assert_eq!(ok.status, 200);

    let events = h.finish().await;
    assert_eq!(
        events.len(),
        1,
        "only the normal request is recorded: {events:#?}"
    );
    assert_eq!(events[0]["type"], "initial_open");
}
