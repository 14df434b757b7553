//! Job and queue control: a paused job or queue keeps its mail and sends none; resume sends
//! it; `show jobs` lists it; `delete --jobId` removes it with bounce records.

use crate::common;

use std::time::Duration;

use common::{send_mail, text, wait_for_acct, Petrel, Sink};

const CONFIG: &str = r#"
<source 0/0>
  always-allow-relaying yes
  process-x-job yes
</source>
<domain sink.example>
  smtp-hosts [127.0.0.1]:{SINK}
  use-starttls no
</domain>
<acct-file {DIR}/acct.csv>
  records d,b
</acct-file>
"#;

fn ok(p: &Petrel, args: &[&str]) -> String {
    let out = p.cli(args);
    assert!(out.status.success(), "{args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn paused_job_is_held_until_resumed() {
    let sink = Sink::start("127.0.0.1");
    let p = Petrel::start(&CONFIG.replace("{SINK}", &sink.port.to_string()));
    assert!(ok(&p, &["pause", "job", "spring"]).contains("paused job"));
    send_mail(
        p.smtp_port,
        "a@b.example",
        &["one@sink.example"],
        "X-Job: spring\r\n",
    );
    send_mail(
        p.smtp_port,
        "a@b.example",
        &["two@sink.example"],
        "X-Job: spring\r\n",
    );
    send_mail(
        p.smtp_port,
        "a@b.example",
        &["other@sink.example"],
        "X-Job: autumn\r\n",
    );
    // The other job flows; the paused one does not.
    let got = sink.wait_for(1, 20);
    std::thread::sleep(Duration::from_millis(1500));
    let got_now = sink.records();
    assert_eq!(got_now.len(), 1, "{got_now:?}");
    assert_eq!(got[0]["rcpts"][0], "other@sink.example");
    let jobs = ok(&p, &["show", "jobs", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&jobs).unwrap();
    let spring = v["data"]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["job"] == "spring")
        .unwrap()
        .clone();
    assert_eq!(spring["recipients"], 2, "{v}");
    assert_eq!(spring["paused"], true, "{v}");

    assert!(ok(&p, &["resume", "job", "spring"]).contains("resumed job"));
    let got = sink.wait_for(3, 20);
    assert_eq!(got.len(), 3);
}

#[test]
fn paused_queue_is_held_and_schedule_and_resume_release_it() {
    let sink = Sink::start("127.0.0.1");
    let p = Petrel::start(&CONFIG.replace("{SINK}", &sink.port.to_string()));
    assert!(ok(&p, &["pause", "queue", "sink.example/{default}"]).contains("paused"));
    send_mail(p.smtp_port, "a@b.example", &["held@sink.example"], "");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(sink.records().is_empty());
    let queues: serde_json::Value =
        serde_json::from_str(&ok(&p, &["show", "queues", "--json"])).unwrap();
    let q = &queues["data"]["queues"][0];
    assert_eq!(q["queue"], "sink.example/{default}", "{queues}");
    assert_eq!(q["paused"], true, "{queues}");
    assert_eq!(q["rcp"], 1, "{queues}");
    assert!(ok(&p, &["resume", "queue", "sink.example/*"]).contains("resumed"));
    sink.wait_for(1, 20);
}

#[test]
fn delete_by_job_writes_bounce_records() {
    let sink = Sink::start("127.0.0.1");
    let p = Petrel::start(&CONFIG.replace("{SINK}", &sink.port.to_string()));
    ok(&p, &["pause", "job", "doomed"]);
    send_mail(
        p.smtp_port,
        "a@b.example",
        &["x@sink.example", "y@sink.example"],
        "X-Job: doomed\r\n",
    );
    std::thread::sleep(Duration::from_millis(500));
    let out = ok(&p, &["delete", "--jobId=doomed"]);
    assert!(out.contains("2 recipient(s) deleted"), "{out}");
    let rows = wait_for_acct(p.dir.path(), 10, |r| {
        r["type"] == "b" && r["rcpt"] == "y@sink.example"
    });
    assert!(rows
        .iter()
        .all(|r| r["type"] != "b" || r["dsnDiag"].contains("deleted by administrator")));
    assert!(p.list()["data"]["messages"].as_array().unwrap().is_empty());
}
