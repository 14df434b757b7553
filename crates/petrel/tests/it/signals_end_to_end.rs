//! Signals end to end: mail injected over SMTP and delivered to a sink produces injection,
//! delivery, bounce and delay events that petrel's uploader ships to petrel's own Signals
//! service (in the same daemon), where the events search finds them with the campaign
//! (X-Job), IP pool, sending IP, subaccount and sending domain of the message.

use crate::common;

use common::{free_port, send_mail, signals_get, wait_for_events, Petrel, Sink};
use serde_json::Value;

const KEY: &str = "0123456789abcdef0123456789abcdef01234567";

const CONFIG: &str = r#"
<source 0/0>
  always-allow-relaying yes
  process-x-job yes
  process-x-virtual-mta yes
  default-virtual-mta pool1
</source>
<virtual-mta mta1>
  smtp-source-host 127.0.0.2 mta1.petrel.test
</virtual-mta>
<virtual-mta direct>
  smtp-source-host 127.0.0.3 direct.petrel.test
  enable-signals false
</virtual-mta>
<virtual-mta filtered>
  smtp-source-host 127.0.0.4 filtered.petrel.test
  enable-signals ListOne
</virtual-mta>
<signals-filter ListOne>
  sender-or-from *.brand.example enable-signals,subaccount=100
  sender-or-from transact.brand.example disable-signals
</signals-filter>
<virtual-mta-pool pool1>
  virtual-mta mta1
  enable-signals true,subaccount=7
</virtual-mta-pool>
<domain sink.example>
  smtp-hosts [127.0.0.1]:{SINK}
  use-starttls no
  retry-after 1h
</domain>
<signals>
  api-key {KEY}
  upload-url http://127.0.0.1:{SIGPORT}/api/v1/ingest/events
  event-dir {DIR}/events
  upload-interval 200ms
  process-x-sp-subaccount-id true
  custom-message-id-header X-Customer-Ref
  customer-id 4242
</signals>
<signals-service>
  listener 127.0.0.1:{SIGPORT}
  database {DIR}/signals.db
</signals-service>
"#;

fn start() -> (Sink, Petrel, u16) {
    let sink = Sink::start("127.0.0.1");
    let sig_port = free_port();
    let p = Petrel::start(
        &CONFIG
            .replace("{SINK}", &sink.port.to_string())
            .replace("{SIGPORT}", &sig_port.to_string())
            .replace("{KEY}", KEY),
    );
    (sink, p, sig_port)
}

fn of_type<'a>(events: &'a [Value], t: &str, rcpt: &str) -> Option<&'a Value> {
    events
        .iter()
        .find(|e| e["type"] == t && e["rcpt_to"] == rcpt)
}

#[test]
fn injection_and_outcomes_are_searchable_with_campaign_pool_ip_subaccount_and_domain() {
    let (sink, p, sig) = start();
    send_mail(
        p.smtp_port,
        "news@brand.example",
        &[
            "Alice@sink.example",
            "reject-1@sink.example",
            "tempfail-99@sink.example",
        ],
        "X-Job: spring-sale\r\nX-Customer-Ref: order-981\r\n",
    );
    sink.wait_for(1, 30);

    // injection ×3, delivery, bounce, delay.
    let events = wait_for_events(sig, KEY, "campaigns=spring-sale&per_page=100", 30, |r| {
        r.len() >= 6
    });
    let injection = of_type(&events, "injection", "alice@sink.example")
        .unwrap_or_else(|| panic!("no injection event: {events:#?}"));
    let delivery = of_type(&events, "delivery", "alice@sink.example")
        .unwrap_or_else(|| panic!("no delivery event: {events:#?}"));
    for e in [injection, delivery] {
        assert_eq!(e["campaign_id"], "spring-sale", "{e}");
        assert_eq!(e["ip_pool"], "pool1", "{e}");
        assert_eq!(e["subaccount_id"], "7", "{e}");
        assert_eq!(e["sending_domain"], "brand.example", "{e}");
        assert_eq!(e["recipient_domain"], "sink.example", "{e}");
        assert_eq!(e["mailbox_provider"], "Other", "{e}");
        assert_eq!(e["msg_from"], "news@brand.example", "{e}");
        assert_eq!(e["raw_rcpt_to"], "Alice@sink.example", "{e}");
        assert_eq!(e["subject"], "test", "{e}");
        assert_eq!(e["custom_message_id"], "order-981", "{e}");
        assert_eq!(e["customer_id"], "4242", "{e}");
    }
    // Times read as the Events API shows them.
    for key in ["timestamp", "injection_time"] {
        let t = delivery[key].as_str().unwrap_or_default();
        assert!(
            t.len() == 29 && t.ends_with("+00:00") && t.contains('T'),
            "{key}: {delivery}"
        );
    }
    // The same recipient's events share one message_id.
    assert_eq!(injection["message_id"], delivery["message_id"]);
    assert_eq!(delivery["sending_ip"], "127.0.0.2", "{delivery}");
    assert_eq!(delivery["ip_address"], "127.0.0.1", "{delivery}");
    assert_eq!(delivery["delv_method"], "esmtp", "{delivery}");
    assert_eq!(
        injection["sending_ip"].as_str(),
        None,
        "a pool has no single IP yet"
    );

    let bounce = of_type(&events, "bounce", "reject-1@sink.example")
        .unwrap_or_else(|| panic!("no bounce event: {events:#?}"));
    assert_eq!(bounce["error_code"], "550", "{bounce}");
    assert_eq!(bounce["bounce_class"], "10", "invalid recipient: {bounce}");
    assert!(
        bounce["raw_reason"].as_str().unwrap().starts_with("550"),
        "{bounce}"
    );
    let delay = of_type(&events, "delay", "tempfail-99@sink.example")
        .unwrap_or_else(|| panic!("no delay event: {events:#?}"));
    assert_eq!(delay["error_code"], "451", "{delay}");
    assert_eq!(delay["num_retries"], "0", "{delay}");

    // Filters narrow the search: by event type, by IP pool, by subaccount, by sending IP.
    let (_, only) = signals_get(
        sig,
        KEY,
        "/api/v1/events/message?events=delivery&ip_pools=pool1&subaccounts=7&sending_ips=127.0.0.2",
    );
    let only = only["results"].as_array().unwrap();
    assert_eq!(only.len(), 1, "{only:#?}");
    assert_eq!(only[0]["rcpt_to"], "alice@sink.example");
}

#[test]
fn header_subaccount_wins_and_disabled_vmtas_stay_silent() {
    let (sink, p, sig) = start();
    // X-SP-Subaccount-ID overrides the pool's subaccount and is stripped before delivery.
    send_mail(
        p.smtp_port,
        "news@brand.example",
        &["bob@sink.example"],
        "X-Job: tagged\r\nX-SP-Subaccount-ID: 42\r\n",
    );
    // `direct` has enable-signals false: no events at all for this one.
    send_mail(
        p.smtp_port,
        "news@brand.example",
        &["carol@sink.example"],
        "X-Job: silent\r\nX-Virtual-MTA: direct\r\n",
    );
    let got = sink.wait_for(2, 30);
    let tagged = got
        .iter()
        .find(|m| m["rcpts"][0] == "bob@sink.example")
        .unwrap();
    assert!(
        !tagged["data"]
            .as_str()
            .unwrap()
            .contains("X-SP-Subaccount-ID"),
        "the header is removed unless retain-x-sp-subaccount-id: {tagged}"
    );
    let events = wait_for_events(sig, KEY, "campaigns=tagged", 30, |r| r.len() >= 2);
    for e in &events {
        assert_eq!(e["subaccount_id"], "42", "{e}");
    }
    // Both messages reached the sink; give the engine and the uploader (200 ms cycles) ample
    // time to ship anything `silent` might have produced before asserting there is none.
    wait_for_events(sig, KEY, "campaigns=tagged&events=delivery", 30, |r| {
        r.len() == 1
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    let (_, silent) = signals_get(sig, KEY, "/api/v1/events/message?campaigns=silent");
    assert_eq!(silent["results"].as_array().unwrap().len(), 0, "{silent}");
}

#[test]
fn a_signals_filter_decides_by_sender_or_from_domain() {
    let (sink, p, sig) = start();
    // Sender wins over From: this one counts as mail.brand.example → subaccount 100.
    send_mail(
        p.smtp_port,
        "someone@elsewhere.example",
        &["dave@sink.example"],
        "X-Job: filtered-in\r\nX-Virtual-MTA: filtered\r\nSender: <list@mail.brand.example>\r\n",
    );
    // transact.brand.example is excluded by the filter.
    send_mail(
        p.smtp_port,
        "receipts@transact.brand.example",
        &["erin@sink.example"],
        "X-Job: filtered-out\r\nX-Virtual-MTA: filtered\r\n",
    );
    sink.wait_for(2, 30);
    let events = wait_for_events(sig, KEY, "campaigns=filtered-in", 30, |r| r.len() >= 2);
    for e in &events {
        assert_eq!(e["subaccount_id"], "100", "{e}");
        assert_eq!(e["sending_domain"], "mail.brand.example", "{e}");
    }
    let delivery = of_type(&events, "delivery", "dave@sink.example").unwrap();
    assert_eq!(delivery["sending_ip"], "127.0.0.4", "{delivery}");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let (_, out) = signals_get(sig, KEY, "/api/v1/events/message?campaigns=filtered-out");
    assert_eq!(out["results"].as_array().unwrap().len(), 0, "{out}");
}
