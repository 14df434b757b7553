//! `<bounce-category-patterns>`: the operator's own `bounceCat` for in-band bounces whose
//! reply matches, ahead of petrel's built-in rules; other bounces keep the built-in category.

use crate::common;

use common::{relay_to_sink, send_mail, wait_for_acct, Petrel, Sink};

#[test]
fn matching_replies_get_the_operators_category() {
    let sink = Sink::start("127.0.0.1");
    let p = Petrel::start(&format!(
        r#"
{relay}
<bounce-category-patterns>
  /Recipient address rejected/ list-cleaning
</bounce-category-patterns>
<acct-file {{DIR}}/acct.csv>
  records b
</acct-file>
"#,
        relay = relay_to_sink(sink.port)
    ));
    // "550 5.1.1 <…>: Recipient address rejected: no such user" and "552 5.2.2 … mailbox full".
    send_mail(
        p.smtp_port,
        "news@brand.example",
        &["reject-1@sink.example", "full-1@sink.example"],
        "",
    );
    wait_for_acct(p.dir.path(), 30, |r| {
        r["type"] == "b" && r["rcpt"] == "reject-1@sink.example"
    });
    let rows = wait_for_acct(p.dir.path(), 30, |r| {
        r["type"] == "b" && r["rcpt"] == "full-1@sink.example"
    });
    let cat = |rcpt: &str| {
        rows.iter()
            .find(|r| r["type"] == "b" && r["rcpt"] == rcpt)
            .map(|r| r["bounceCat"].clone())
            .unwrap()
    };
    assert_eq!(cat("reject-1@sink.example"), "list-cleaning");
    assert_eq!(cat("full-1@sink.example"), "quota-issues", "built-in rule");
}
