//! `show queues` counts messages by the queue they wait in: a pool's member (not the pool
//! the sender named) and a `queue-to` target (not the recipient's own domain).

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
<virtual-mta-pool pool1>
  virtual-mta mta1
  virtual-mta mta2
</virtual-mta-pool>
<domain alias.example>
  queue-to gmail.example
</domain>
"#;

const INJECT: &str = r#"
import smtplib, sys
port = int(sys.argv[1])
def send(rcpts, vmta=None, size=100):
    hdr = "Subject: q\r\n" + ("X-Virtual-MTA: %s\r\n" % vmta if vmta else "")
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
        s.sendmail("a@b.example", rcpts, hdr + "\r\n" + "x" * size + "\r\n")
# Two messages to the pool: one waits in each member's queue.
send(["p1@gmail.example"], "pool1", 3000)
send(["p2@gmail.example"], "pool1", 3000)
# A recipient of a queue-to domain waits in the target's queue.
send(["q@alias.example", "r@gmail.example"])
print("ok")
"#;

#[test]
fn pool_members_and_queue_to_targets_count_their_messages() {
    let p = Petrel::start(CONFIG);
    let out = python(INJECT, &[&p.smtp_port.to_string()]);
    assert!(out.status.success(), "{}", text(&out));

    let (rows, v) = p.queue_rows();
    assert_eq!(
        rows,
        vec![
            ("gmail.example/mta1".to_string(), 1, 1, 4),
            ("gmail.example/mta2".to_string(), 1, 1, 4),
            ("gmail.example/{default}".to_string(), 2, 1, 1),
        ],
        "{v}"
    );
    let table = text(&p.cli(&["show", "queues"]));
    let line = table
        .lines()
        .find(|l| l.starts_with("gmail.example/mta1"))
        .unwrap_or_else(|| panic!("{table}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&cols[1..4], ["1", "1", "4"], "{table}");

    // `show domains` groups by recipient domain, wherever the recipients wait.
    let out = p.cli(&["show", "domains", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let alias = v["data"]["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["domain"] == "alias.example")
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(
        (alias["rcp"].as_u64(), alias["msg"].as_u64()),
        (Some(1), Some(1))
    );
}
