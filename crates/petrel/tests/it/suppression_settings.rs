//! The suppression list's settings: `suppression-database` puts the list where the operator
//! says, `suppress-hard-bounces no` keeps in-band hard bounces off it, and after `reload` with
//! the switch back on the next hard bounce is suppressed.

use crate::common;

use common::{relay_to_sink, send_mail, text, wait_for_acct, Petrel, Sink};

fn suppressed(p: &Petrel) -> serde_json::Value {
    let out = p.cli(&["suppression", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_database_path_and_the_hard_bounce_switch_are_honoured() {
    let sink = Sink::start("127.0.0.1");
    let p = Petrel::start(&format!(
        r#"
suppression-database {{DIR}}/lists/suppression.db
suppress-hard-bounces no
{relay}<acct-file {{DIR}}/acct.csv>
  records b
</acct-file>
"#,
        relay = relay_to_sink(sink.port)
    ));
    let db = p.dir.path().join("lists/suppression.db");
    assert!(db.exists(), "the list is created where configured");
    assert!(
        !p.dir.path().join("suppression.db").exists(),
        "and not at the default place"
    );

    // 550 5.1.1 at RCPT: a hard bounce (class 10), but the switch is off.
    send_mail(
        p.smtp_port,
        "news@brand.example",
        &["reject-1@sink.example"],
        "",
    );
    wait_for_acct(p.dir.path(), 30, |r| {
        r["type"] == "b" && r["rcpt"] == "reject-1@sink.example"
    });
    assert_eq!(suppressed(&p)["total"], 0, "suppress-hard-bounces no");

    // Switched back on by reload: the next hard bounce is suppressed.
    let conf = std::fs::read_to_string(&p.config).unwrap();
    std::fs::write(
        &p.config,
        conf.replace("suppress-hard-bounces no", "suppress-hard-bounces yes"),
    )
    .unwrap();
    let out = p.cli(&["reload"]);
    assert!(out.status.success(), "{}", text(&out));
    send_mail(
        p.smtp_port,
        "news@brand.example",
        &["reject-2@sink.example"],
        "",
    );
    wait_for_acct(p.dir.path(), 30, |r| {
        r["type"] == "b" && r["rcpt"] == "reject-2@sink.example"
    });
    let v = suppressed(&p);
    assert_eq!(v["total"], 1, "{v}");
    assert_eq!(v["results"][0]["address"], "reject-2@sink.example");
    assert_eq!(v["results"][0]["reason"], "hard_bounce");

    // It went into the configured file.
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from suppressions').fetchone()[0])",
            db.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1",
        "{}",
        text(&out)
    );
}
