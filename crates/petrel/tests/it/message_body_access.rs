//! `/messageBody` serves a spooled message's content: a `monitor` client (status views,
//! dashboards) must not read it; `operator` may (issue 17 item 7).

use crate::common;

use common::{send_mail, Petrel};

fn first_message_id(p: &Petrel) -> String {
    p.list()["data"]["messages"][0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn monitor_clients_cannot_read_message_bodies() {
    let relay = "<source 0/0>\n  always-allow-relaying yes\n</source>\n";
    let p = Petrel::start(&format!("http-access 127.0.0.1 monitor\n{relay}"));
    send_mail(p.smtp_port, "a@b.example", &["secret@x.example"], "");
    // `petrel list` and the other views work at monitor level …
    let id = first_message_id(&p);
    let (status, _) = p.http_get("/messages");
    assert_eq!(status, 200);
    // … the content does not.
    let (status, body) = p.http_get(&format!("/messageBody?id={id}"));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("http-access gives Monitor"), "{body}");
    assert!(!body.contains("Hello from the test"), "{body}");
    drop(p);

    let p = Petrel::start(&format!("http-access 127.0.0.1 operator\n{relay}"));
    send_mail(p.smtp_port, "a@b.example", &["secret@x.example"], "");
    let id = first_message_id(&p);
    let (status, body) = p.http_get(&format!("/messageBody?id={id}"));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Hello from the test"), "{body}");
}
