//! `petrel show queues` lists spooled mail by queue (recipient domain / virtual MTA), like
//! `pmta show queues`; `--json` gives the same data. Also checks restart keeps the view.

use crate::common;

use common::{python, text, Petrel};

const CONFIG: &str = r#"
<source 0/0>
  always-allow-relaying yes
  process-x-virtual-mta yes
</source>
<virtual-mta mta1>
</virtual-mta>
<virtual-mta mta2>
</virtual-mta>
"#;

const INJECT: &str = r#"
import smtplib, sys
port = int(sys.argv[1])
def send(rcpts, vmta=None):
    hdr = "Subject: q\r\n" + ("X-Virtual-MTA: %s\r\n" % vmta if vmta else "")
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
        s.sendmail("a@b.example", rcpts, hdr + "\r\nbody\r\n")
for i in range(3):
    send(["u%d@gmail.example" % i], "mta1")
send(["v1@gmail.example", "v2@gmail.example", "w@yahoo.example"], "mta2")
send(["z@Yahoo.Example"])
print("ok")
"#;

#[test]
fn queues_by_domain_and_vmta() {
    let mut p = Petrel::start(CONFIG);
    let out = python(INJECT, &[&p.smtp_port.to_string()]);
    assert!(out.status.success(), "{}", text(&out));

    for _ in 0..2 {
        let (rows, v) = p.queue_rows();
        let rows: Vec<(String, u64, u64)> =
            rows.into_iter().map(|(q, r, m, _)| (q, r, m)).collect();
        assert_eq!(
            rows,
            vec![
                ("gmail.example/mta1".to_string(), 3, 3),
                ("gmail.example/mta2".to_string(), 2, 1),
                ("yahoo.example/mta2".to_string(), 1, 1),
                ("yahoo.example/{default}".to_string(), 1, 1),
            ],
            "{v}"
        );

        let out = p.cli(&["show", "queues"]);
        let table = String::from_utf8_lossy(&out.stdout);
        assert!(table.lines().next().unwrap().contains("#rcpt"), "{table}");
        let line = table
            .lines()
            .find(|l| l.starts_with("gmail.example/mta1"))
            .unwrap();
        assert_eq!(line.split_whitespace().nth(1), Some("3"), "{table}");
        // Columns line up: the count ends where its header does.
        let header = table.lines().next().unwrap();
        let end = header.find("#rcpt").unwrap() + "#rcpt".len();
        assert_eq!(&line[end - 1..end], "3", "{table}");
        assert_eq!(line.as_bytes()[end - 2], b' ', "{table}");
        assert!(table.contains("4 of 4 queues."), "{table}");

        // The same view after a crash and restart: it is rebuilt from the spool.
        p.kill9();
        p.spawn();
    }
}

#[test]
fn cli_reports_a_daemon_that_is_not_running() {
    let mut p = Petrel::start(CONFIG);
    p.kill9();
    let out = p.cli(&["show", "queues"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach the petrel daemon"),
        "{}",
        text(&out)
    );
}

#[test]
fn management_errors_are_json() {
    let p = Petrel::start(CONFIG);
    let (status, body) = p.http_get("/nope");
    assert_eq!(status, 404);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["error"].as_str().is_some(), "{body}");
    let (status, body) = p.http_get("/messageBody?id=zz");
    assert_eq!(status, 400, "{body}");
    let (status, body) = p.http_get("/messageBody?id=00000000000000ff");
    assert_eq!(status, 404, "{body}");
}
