//! The MTA monitor in a real browser (headless Chromium) on a running daemon's management
//! port: status and queues show what the management API says; an admin pauses and resumes
//! a queue and a job with the page's buttons; a read-only client sees no buttons and a
//! forged command from it is refused by the API's `http-access` check; a command without
//! the page's token is refused. Screenshots go under the target directory.

use crate::common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::browser::Browser;
use common::{free_port, send_mail, Petrel};
use serde_json::{json, Value};

fn config(level: &str, signals_port: u16) -> String {
    format!(
        r#"
http-access 127.0.0.1 {level}
<source 0/0>
  always-allow-relaying yes
  process-x-job yes
</source>
<virtual-mta mta1>
  smtp-source-host 127.0.0.1 mta1.petrel.test
</virtual-mta>
<virtual-mta-pool newsletters>
  virtual-mta mta1
</virtual-mta-pool>
<signals-service>
  listener 127.0.0.1:{signals_port}
  database {{DIR}}/signals.db
</signals-service>
"#
    )
}

fn shots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn api(p: &Petrel, path: &str) -> Value {
    let (status, body) = p.http_get(path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// The queue of `domain` as the management API reports it.
fn queue(p: &Petrel, domain: &str) -> Value {
    api(p, "/queues")["data"]["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["domain"] == domain)
        .cloned()
        .unwrap_or(Value::Null)
}

fn wait_for_queue(p: &Petrel, domain: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let q = queue(p, domain);
        if q["rcp"].as_u64() == Some(1) && !q["lastError"].is_null() {
            return q;
        }
        assert!(
            Instant::now() < deadline,
            "no deferred queue for {domain}: {q}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits for the page after a button's POST: a confirmation `#done` starting with `expect`.
fn done(b: &Browser, expect: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if b.find("#done").is_some() {
            let said = b.text("#done");
            if said.starts_with(expect) {
                return said;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no confirmation `{expect}` at {}",
            b.current_url()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Posts a command the way the page's form does, from the page (same origin).
fn post_command(b: &Browser, token: &str, action: &str, target: &str) -> (u64, String) {
    let v = b.execute_async(
        "const [token, action, target, done] = arguments; \
         const body = new URLSearchParams({token, action, target, back: '/ui/queues'}); \
         fetch('/ui/command', {method: 'POST', body, redirect: 'manual'}) \
           .then(r => r.text().then(t => done([r.status, t])));",
        json!([token, action, target]),
    );
    (
        v[0].as_u64().unwrap_or(0),
        v[1].as_str().unwrap_or("").to_string(),
    )
}

#[test]
fn monitor_pages_in_a_browser() {
    let signals_port = free_port();
    let p = Petrel::start(&config("admin", signals_port));
    send_mail(
        p.smtp_port,
        "a@b.example",
        &["someone@queued.example"],
        "X-Job: spring\r\n",
    );
    let q = wait_for_queue(&p, "queued.example");
    let name = q["queue"].as_str().unwrap().to_string();

    let b = Browser::start();
    b.set_size(1360, 900);
    let base = format!("http://127.0.0.1:{}", p.mgmt_port);

    // Status: the numbers are the API's, the top queue is there, the Signals link works.
    b.goto(&format!("{base}/"));
    let status = api(&p, "/status");
    let stats = b.texts("#stats dd");
    assert_eq!(
        stats[0].replace(',', ""),
        status["data"]["traffic"]["total"]["in"]["msg"].to_string()
    );
    assert!(b.texts("#queues tbody th").contains(&name));
    let link = b.execute(
        "return document.querySelector('.top .aside a').href",
        json!([]),
    );
    assert_eq!(
        link,
        json!(format!(
            "http://127.0.0.1:{signals_port}/signals/health-score"
        ))
    );
    assert!(b.text("#access-note").contains("admin access"));
    b.full_screenshot(&shots().join("monitor-status.png"), 1360);

    // Queues: recipients, mode, last error as the API has them; pause and resume by button.
    b.goto(&format!("{base}/ui/queues"));
    let row = format!("#queues tr[data-queue='{name}']");
    assert_eq!(b.text(&format!("{row} td:nth-child(2)")), "1");
    let error = b.text(&format!("{row} td.error-text"));
    assert_eq!(error, q["lastError"].as_str().unwrap());
    assert!(
        b.text(&format!("{row} td:nth-child(8)")).starts_with("in "),
        "next retry shown"
    );
    b.click(&format!("{row} button[value='pause']"));
    assert!(
        b.text("#done").starts_with("Paused 1 queue(s)"),
        "{}",
        b.text("#done")
    );
    assert_eq!(queue(&p, "queued.example")["paused"], true);
    assert_eq!(b.text(&format!("{row} .state")), "paused");
    b.full_screenshot(&shots().join("monitor-queues.png"), 1360);
    b.click(&format!("{row} button[value='resume']"));
    done(&b, "Resumed 1 queue(s)");
    assert_eq!(queue(&p, "queued.example")["paused"], false);

    // A command without the page's token is refused, and changes nothing.
    let (status, body) = post_command(&b, "00", "pause", &name);
    assert_eq!(status, 403, "{body}");
    assert_eq!(queue(&p, "queued.example")["paused"], false);

    // Jobs: pause and resume the job.
    b.goto(&format!("{base}/ui/jobs"));
    b.click("#jobs tr[data-job='spring'] button[value='pause-job']");
    done(&b, "Paused job spring.");
    let jobs = api(&p, "/jobs");
    assert_eq!(jobs["data"]["jobs"][0]["paused"], true, "{jobs}");
    b.full_screenshot(&shots().join("monitor-jobs.png"), 1360);
    b.click("#jobs tr[data-job='spring'] button[value='resume-job']");
    done(&b, "Resumed job spring.");
    assert_eq!(api(&p, "/jobs")["data"]["jobs"][0]["paused"], false);

    // Virtual MTAs and pools.
    b.goto(&format!("{base}/ui/vmtas"));
    assert!(b
        .texts("#extra-table tbody th")
        .contains(&"newsletters".to_string()));
    b.full_screenshot(&shots().join("monitor-vmtas.png"), 1360);

    // A read-only client: no buttons, and a forged command is refused by the API.
    let ro = Petrel::start(&config("monitor", free_port()));
    send_mail(ro.smtp_port, "a@b.example", &["someone@queued.example"], "");
    let q = wait_for_queue(&ro, "queued.example");
    let ro_base = format!("http://127.0.0.1:{}", ro.mgmt_port);
    b.goto(&format!("{ro_base}/ui/queues"));
    assert!(b.text("#access-note").contains("monitor access"));
    assert!(
        b.find("form[action='/ui/command']").is_none(),
        "no command buttons for monitor"
    );
    let token = b
        .execute(
            "return document.getElementById('access-note').dataset.token",
            json!([]),
        )
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = post_command(&b, &token, "pause", q["queue"].as_str().unwrap());
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("http-access"), "{body}");
    assert_eq!(queue(&ro, "queued.example")["paused"], false);
    b.full_screenshot(&shots().join("monitor-queues-read-only.png"), 1360);
}
