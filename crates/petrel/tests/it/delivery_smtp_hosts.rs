//! Delivery end to end: petrel relays to a recording sink through `smtp-hosts`, from the
//! virtual MTA's source IP (127.0.0.2) with its EHLO name, and writes PowerMTA accounting
//! rows that are checked field by field.

use crate::common;

use common::{acct_rows, send_mail, wait_for_acct, Petrel, Sink};

const CONFIG: &str = r#"
<source 0/0>
  always-allow-relaying yes
  process-x-job yes
  default-virtual-mta pool1
</source>
<virtual-mta mta1>
  smtp-source-host 127.0.0.2 mta1.petrel.test
</virtual-mta>
<virtual-mta-pool pool1>
  virtual-mta mta1
</virtual-mta-pool>
<domain sink.example>
  smtp-hosts [127.0.0.1]:{SINK}
  use-starttls no
</domain>
<acct-file {DIR}/acct.csv>
  records d,b,t,tq,r
</acct-file>
"#;

#[test]
fn mail_reaches_the_sink_from_the_vmta_source_ip_and_is_accounted() {
    let sink = Sink::start("127.0.0.1");
    let p = Petrel::start(&CONFIG.replace("{SINK}", &sink.port.to_string()));
    for i in 0..3 {
        send_mail(
            p.smtp_port,
            "news@sender.example",
            &[&format!("a{i}@sink.example"), &format!("b{i}@sink.example")],
            "X-Job: launch-7\r\n",
        );
    }
    let got = sink.wait_for(3, 30);
    for m in &got {
        assert_eq!(m["peer"], "127.0.0.2", "{m}");
        assert_eq!(m["helo"], "mta1.petrel.test", "{m}");
        assert_eq!(m["mail_from"], "news@sender.example");
        assert_eq!(
            m["rcpts"].as_array().unwrap().len(),
            2,
            "both recipients in one transaction: {m}"
        );
        let data = m["data"].as_str().unwrap();
        assert!(data.contains("Received: from "), "{data}");
        assert!(
            data.contains("\r\n.leading dot\r\n"),
            "dot-stuffing round trip: {data}"
        );
        assert!(!data.contains("X-Job"), "{data}");
    }
    wait_for_acct(p.dir.path(), 20, |r| r["type"] == "d");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let rows = loop {
        let rows = acct_rows(p.dir.path());
        if rows.iter().filter(|r| r["type"] == "d").count() >= 6
            || std::time::Instant::now() > deadline
        {
            break rows;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let d: Vec<_> = rows.iter().filter(|r| r["type"] == "d").collect();
    assert_eq!(d.len(), 6, "{rows:#?}");
    let r = d.iter().find(|r| r["rcpt"] == "a0@sink.example").unwrap();
    assert_eq!(r["orig"], "news@sender.example");
    assert_eq!(r["dsnAction"], "relayed");
    assert!(r["dsnStatus"].starts_with("2.0.0"), "{r:?}");
    assert!(r["dsnDiag"].starts_with("smtp;250"), "{r:?}");
    assert_eq!(r["dsnMta"], "[127.0.0.1] (127.0.0.1)");
    assert_eq!(r["dlvSourceIp"], "127.0.0.2");
    assert_eq!(r["dlvDestinationIp"], "127.0.0.1");
    assert_eq!(r["vmta"], "mta1");
    assert_eq!(r["vmtaPool"], "pool1");
    assert_eq!(r["jobId"], "launch-7");
    assert_eq!(r["queue"], "sink.example/mta1");
    assert_eq!(r["bounceCat"], "");
    // srcMta is "HELO-name (client-ip)" as PowerMTA writes it.
    assert!(
        r["srcMta"].ends_with(" (127.0.0.1)") && r["srcMta"].len() > 12,
        "{r:?}"
    );
    assert!(
        r["dlvEsmtpAvailable"].contains("PIPELINING")
            || r["dlvEsmtpAvailable"].contains("8BITMIME"),
        "{r:?}"
    );
    // One reception row per recipient, with the pool as selected at injection.
    let r = rows
        .iter()
        .find(|r| r["type"] == "r" && r["rcpt"] == "b1@sink.example")
        .expect("an r row");
    assert_eq!(r["orig"], "news@sender.example");
    assert_eq!(r["vmta"], "pool1");
    assert_eq!(r["jobId"], "launch-7");
    assert_eq!(r["rcvSourceIp"], "127.0.0.1");
    // Nothing is left in the spool.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !p.list()["data"]["messages"].as_array().unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "spool not emptied: {}",
            p.list()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The header line is PowerMTA's.
    let header = std::fs::read_dir(p.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("acct-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .unwrap();
    assert!(
        header.starts_with("type,timeLogged,timeQueued,orig,rcpt,orcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,srcType,srcMta,dlvType,dlvSourceIp,dlvDestinationIp,dlvEsmtpAvailable,dlvSize,vmta,jobId,envId,queue,vmtaPool"),
        "{header}"
    );
}
