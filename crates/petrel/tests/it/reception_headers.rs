//! What reception does to a message: X-Job and X-Virtual-MTA processing, the Received and
//! Message-ID headers, the default virtual MTA, and refusals of invalid X-headers.

use crate::common;

use std::time::Duration;

use common::Petrel;

const CONFIG: &str = r#"
<source 0/0>
  always-allow-relaying yes
  process-x-job yes
  process-x-virtual-mta yes
  retain-x-virtual-mta yes
  default-virtual-mta pool1
</source>
<virtual-mta mta1>
</virtual-mta>
<virtual-mta-pool pool1>
  virtual-mta mta1
</virtual-mta-pool>
"#;

fn inject(p: &Petrel, headers: &str) -> String {
    let msg = format!(
        "EHLO client.test\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<r@c.example>\r\nDATA\r\n{headers}Subject: t\r\n\r\nbody\r\n.\r\nQUIT\r\n"
    );
    p.raw(msg.as_bytes(), Duration::from_millis(1500))
}

fn last_body(p: &Petrel) -> (serde_json::Value, String) {
    let list = p.list();
    let m = list["data"]["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let (status, body) = p.http_get(&format!("/messageBody?id={}", m["id"].as_str().unwrap()));
    assert_eq!(status, 200);
    (m, body)
}

#[test]
fn default_vmta_received_and_message_id() {
    let p = Petrel::start(CONFIG);
    let out = inject(&p, "");
    assert!(out.contains("250 2.6.0"), "{out}");
    let (m, body) = last_body(&p);
    assert_eq!(m["vmta"], "pool1");
    assert!(m["jobId"].is_null());
    assert!(
        body.starts_with(
            "Received: from client.test ([127.0.0.1])\r\n\tby petrel.test (petrel) with ESMTP"
        ),
        "{body}"
    );
    assert!(
        body.contains("\r\nMessage-ID: <") && body.contains("@petrel.test>\r\n"),
        "{body}"
    );
    assert!(body.ends_with("\r\n\r\nbody\r\n"), "{body}");
}

#[test]
fn x_headers_select_job_and_vmta() {
    let p = Petrel::start(CONFIG);
    let out = inject(
        &p,
        "X-Job: autumn_sale-7\r\nX-Virtual-MTA: mta1\r\nMessage-ID: <mine@client.test>\r\n",
    );
    assert!(out.contains("250 2.6.0"), "{out}");
    let (m, body) = last_body(&p);
    assert_eq!(m["jobId"], "autumn_sale-7");
    assert_eq!(m["vmta"], "mta1");
    assert!(!body.contains("X-Job"), "X-Job is stripped: {body}");
    assert!(
        body.contains("X-Virtual-MTA: mta1"),
        "retain-x-virtual-mta keeps it: {body}"
    );
    assert_eq!(body.matches("Message-ID").count(), 1, "{body}");
    // `petrel list --jobId` filters by job.
    let out = p.cli(&["list", "--jobId", "autumn_sale-7"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 message(s)."));
}

#[test]
fn invalid_x_headers_are_refused_with_reasons() {
    let p = Petrel::start(CONFIG);
    let out = inject(&p, "X-Virtual-MTA: nosuch\r\n");
    assert!(
        out.contains("550 5.3.5 specified VirtualMTA does not exist: nosuch"),
        "{out}"
    );
    let out = inject(&p, "X-Job:\r\n");
    assert!(out.contains("550 5.6.0 empty X-Job header"), "{out}");
    let out = inject(&p, "X-Job: a\r\nX-Job: b\r\n");
    assert!(
        out.contains("550 5.6.0 more than one X-Job header"),
        "{out}"
    );
    assert_eq!(p.list()["data"]["messages"].as_array().unwrap().len(), 0);
}

/// The article's rule at reception: space, `"`, `` ` `` and every character after `~` become
/// `_` (the same as `petrel job-id-safe`); the message is accepted under the safe id.
#[test]
fn x_job_values_are_made_safe() {
    let p = Petrel::start(CONFIG);
    let out = inject(&p, "X-Job: Spring \"VIP\" `sale` caf\u{e9}~1\r\n");
    assert!(out.contains("250 2.6.0"), "{out}");
    let (m, body) = last_body(&p);
    assert_eq!(m["jobId"], "Spring__VIP___sale__caf_~1");
    assert!(!body.contains("X-Job"), "{body}");
    let out = p.cli(&["list", "--jobId", "Spring__VIP___sale__caf_~1"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 message(s)."));
}
