//! CSRF and DNS rebinding on the management API (issue 17 item 3). A loopback peer was
//! enough: `POST /delete` with `Host: evil.example` and `Origin: http://evil.example` (what a
//! page in a browser on the host sends) deleted a queue, and a page whose name rebinds to
//! 127.0.0.1 could read `/messageBody`. Both are refused now; scripts (no `Origin`) and the
//! `petrel` commands keep working.

use crate::common;

use common::{http_with, send_mail, text, Petrel};

fn queued(p: &Petrel) -> usize {
    p.list()["data"]["messages"].as_array().unwrap().len()
}

#[test]
fn foreign_pages_cannot_change_or_read_through_the_management_api() {
    let p = Petrel::start(
        "http-access 127.0.0.1 admin\n<source 0/0>\n  always-allow-relaying yes\n</source>\n",
    );
    send_mail(p.smtp_port, "a@b.example", &["victim@x.example"], "");
    assert_eq!(queued(&p), 1);
    let id = p.list()["data"]["messages"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    for headers in [
        // The attack as found: a rebinding page (its own name in Host) posting from its origin.
        "Host: evil.example\r\nOrigin: http://evil.example\r\nContent-Type: text/plain\r\n",
        // A page elsewhere posting to the API by its address (classic CSRF): Host is fine,
        // the Origin is not.
        "Origin: http://evil.example\r\nContent-Type: application/x-www-form-urlencoded\r\n",
        // A browser that says the request is cross-site.
        "Sec-Fetch-Site: cross-site\r\n",
    ] {
        let (status, body) = http_with(p.mgmt_port, "POST", "/delete?queue=x.example", headers);
        assert_eq!(status, 403, "{headers}: {body}");
        assert!(body.contains("\"error\""), "a JSON error: {body}");
    }
    assert_eq!(queued(&p), 1, "nothing was deleted");

    // Rebinding: reading a message through a foreign name.
    let (status, body) = http_with(
        p.mgmt_port,
        "GET",
        &format!("/messageBody?id={id}"),
        "Host: evil.example:8080\r\n",
    );
    assert_eq!(status, 403, "{body}");
    assert!(!body.contains("Hello from the test"), "{body}");
    // By its own address, or as localhost, the body is there.
    for host in ["localhost", "127.0.0.1"] {
        let (status, body) = http_with(
            p.mgmt_port,
            "GET",
            &format!("/messageBody?id={id}"),
            &format!("Host: {host}:{}\r\n", p.mgmt_port),
        );
        assert_eq!(status, 200, "{host}: {body}");
        assert!(body.contains("Hello from the test"), "{body}");
    }

    // The API's own page (same origin) and the petrel command still change things.
    let own = format!("Origin: http://127.0.0.1:{}\r\n", p.mgmt_port);
    let (status, body) = http_with(p.mgmt_port, "POST", "/pauseQueue?queue=x.example", &own);
    assert_eq!(status, 200, "{body}");
    let out = p.cli(&["delete", "--queue=x.example"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("1 recipient(s) deleted"),
        "{}",
        text(&out)
    );
}
