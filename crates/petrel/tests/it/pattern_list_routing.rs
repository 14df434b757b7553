//! `<pattern-list>` picks each message's virtual MTA from its sender, recipients or headers
//! (first match wins, over `default-virtual-mta`), and an `X-Virtual-MTA` header still beats
//! it; the sink sees each message arrive from the chosen vmta's source IP.

use crate::common;

use common::{send_mail, Petrel, Sink};

#[test]
fn messages_leave_through_the_vmta_their_pattern_selects() {
    let sink = Sink::start("127.0.0.1");
    let p = Petrel::start(&format!(
        r#"
<virtual-mta brand1>
  smtp-source-host 127.0.0.2 brand1.petrel.test
</virtual-mta>
<virtual-mta receipts>
  smtp-source-host 127.0.0.3 receipts.petrel.test
</virtual-mta>
<virtual-mta fallback>
  smtp-source-host 127.0.0.4 fallback.petrel.test
</virtual-mta>
<pattern-list route>
  header X-Stream /^receipts$/ virtual-mta=receipts
  mail-from /@brand1\.example$/ virtual-mta=brand1
  rcpt-to /^vip-/ virtual-mta=receipts
</pattern-list>
<source 0/0>
  always-allow-relaying yes
  process-x-job yes
  process-x-virtual-mta yes
  pattern-list route
  default-virtual-mta fallback
</source>
<domain sink.example>
  smtp-hosts [127.0.0.1]:{}
  use-starttls no
</domain>
"#,
        sink.port
    ));
    let cases = [
        // (sender, recipient, extra headers, expected source IP)
        ("news@brand1.example", "a@sink.example", "", "127.0.0.2"),
        (
            "news@brand1.example",
            "b@sink.example",
            "X-Stream: receipts\r\n",
            "127.0.0.3",
        ),
        ("news@other.example", "vip-c@sink.example", "", "127.0.0.3"),
        ("news@other.example", "d@sink.example", "", "127.0.0.4"),
        (
            "news@brand1.example",
            "e@sink.example",
            "X-Virtual-MTA: fallback\r\n",
            "127.0.0.4",
        ),
    ];
    for (from, to, headers, _) in &cases {
        send_mail(p.smtp_port, from, &[to], headers);
    }
    let got = sink.wait_for(cases.len(), 30);
    for (from, to, _, ip) in &cases {
        let m = got
            .iter()
            .find(|m| m["rcpts"][0] == *to)
            .unwrap_or_else(|| panic!("{to} not delivered: {got:?}"));
        assert_eq!(m["peer"], *ip, "{from} → {to}: {m}");
    }
}
