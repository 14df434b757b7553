//! `queue-to`: recipients of several domains that share a provider's servers join one queue
//! (its routing and limits), as PowerMTA's `queue-to` does; other domains keep their own.

use crate::common;

use common::{relay_to_sink, send_mail, wait_for_acct, Petrel, Sink};

#[test]
fn sibling_domains_join_the_target_queue() {
    let sink = Sink::start("127.0.0.1");
    let p = Petrel::start(&format!(
        r#"
{relay}
<domain hotmail.example>
  queue-to sink.example
</domain>
<domain live.example>
  queue-to Sink.Example
</domain>
<acct-file {{DIR}}/acct.csv>
  records d
  record-fields d *
</acct-file>
"#,
        relay = relay_to_sink(sink.port)
    ));
    send_mail(
        p.smtp_port,
        "news@brand.example",
        &["a@hotmail.example", "b@live.example", "c@sink.example"],
        "",
    );
    let got = sink.wait_for(1, 30);
    let mut rcpts: Vec<String> = got
        .iter()
        .flat_map(|m| m["rcpts"].as_array().unwrap().clone())
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    rcpts.sort();
    assert_eq!(
        rcpts,
        ["a@hotmail.example", "b@live.example", "c@sink.example"],
        "all three reached the sink.example hosts"
    );
    for rcpt in ["a@hotmail.example", "b@live.example", "c@sink.example"] {
        let rows = wait_for_acct(p.dir.path(), 30, |r| r["type"] == "d" && r["rcpt"] == rcpt);
        let row = rows
            .iter()
            .find(|r| r["type"] == "d" && r["rcpt"] == rcpt)
            .unwrap();
        assert_eq!(row["queue"], "sink.example/{default}", "{row:?}");
    }
}
