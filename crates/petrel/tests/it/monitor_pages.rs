//! The MTA monitor on a running daemon's management port, in a real browser (headless
//! Chromium) and over plain HTTP: status and queues show what the management API says; an
//! admin pauses, resumes and schedules a queue and pauses a job with the page's buttons; a
//! read-only client sees no buttons and a forged command from it is refused by the API's
//! `http-access` check; a command without the page's token, or from another origin, is
//! refused. Screenshots go under the target directory.

use crate::common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::browser::Browser;
use common::{free_port, http, send_mail, Petrel};
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
        // Read in one script, so a page replaced meanwhile is never a stale element.
        let said = b.execute(
            "const d = document.getElementById('done'); return d ? d.textContent.trim() : ''",
            json!([]),
        );
        if let Some(said) = said.as_str().filter(|s| s.starts_with(expect)) {
            return said.to_string();
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
    done(&b, "Paused 1 queue(s)");
    assert_eq!(queue(&p, "queued.example")["paused"], true);
    assert_eq!(b.text(&format!("{row} .state")), "paused");
    b.full_screenshot(&shots().join("monitor-queues.png"), 1360);
    b.click(&format!("{row} button[value='resume']"));
    done(&b, "Resumed 1 queue(s)");
    assert_eq!(queue(&p, "queued.example")["paused"], false);

    // Retry now (schedule): the queue leaves retry mode, is tried at once, fails again and
    // re-enters retry mode at the schedule's next, later step.
    let until = q["retryUntil"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    b.click(&format!("{row} button[value='schedule']"));
    done(&b, "Scheduled 1 queue(s)");
    let deadline = Instant::now() + Duration::from_secs(20);
    while queue(&p, "queued.example")["retryUntil"]
        .as_u64()
        .is_none_or(|t| t <= until)
    {
        assert!(Instant::now() < deadline, "no new attempt after schedule");
        std::thread::sleep(Duration::from_millis(200));
    }

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
    let campaign = b.execute(
        "return document.querySelector(\"#jobs tr[data-job='spring'] a.signals-link\").href",
        json!([]),
    );
    assert_eq!(
        campaign,
        json!(format!(
            "http://127.0.0.1:{signals_port}/signals/health-score/campaign_id/spring"
        ))
    );
    b.full_screenshot(&shots().join("monitor-jobs.png"), 1360);
    b.click("#jobs tr[data-job='spring'] button[value='resume-job']");
    done(&b, "Resumed job spring.");
    assert_eq!(api(&p, "/jobs")["data"]["jobs"][0]["paused"], false);

    // On a phone the page does not overflow sideways (a wide table scrolls in its card).
    b.set_size(390, 844);
    b.goto(&format!("{base}/ui/queues"));
    let overflow = b.execute(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
        json!([]),
    );
    b.full_screenshot(&shots().join("monitor-queues-phone.png"), 390);
    let wide = b.execute(
        "const w = document.documentElement.clientWidth; \
         return [...document.querySelectorAll('body *')] \
           .filter(e => e.getBoundingClientRect().right > w + 1) \
           .filter(e => { for (let a = e.parentElement; a; a = a.parentElement) { \
               if (getComputedStyle(a).overflowX !== 'visible') return a === document.body || a === document.documentElement; } \
             return true; }) \
           .slice(0, 6).map(e => e.tagName + '.' + e.className + '#' + e.id);",
        json!([]),
    );
    assert_eq!(overflow, json!(0), "wider than a phone: {wide}");
    b.set_size(1360, 900);

    // Virtual MTAs and pools.
    b.goto(&format!("{base}/ui/vmtas"));
    assert!(b
        .texts("#extra-table tbody th")
        .contains(&"newsletters".to_string()));
    b.full_screenshot(&shots().join("monitor-vmtas.png"), 1360);

    // A read-only client: no buttons, and a forged command is refused by the API.
    let ro = Petrel::start(&config("monitor", free_port()));
    let ro_base = format!("http://127.0.0.1:{}", ro.mgmt_port);
    // Before any mail: the empty states say so.
    b.goto(&format!("{ro_base}/"));
    b.full_screenshot(&shots().join("monitor-status-empty.png"), 1360);
    b.goto(&format!("{ro_base}/ui/queues"));
    assert_eq!(
        b.text("#empty"),
        "No mail is waiting: every queue is empty."
    );
    b.goto(&format!("{ro_base}/ui/jobs"));
    assert_eq!(b.text("#empty"), "No job has mail waiting.");
    send_mail(ro.smtp_port, "a@b.example", &["someone@queued.example"], "");
    let q = wait_for_queue(&ro, "queued.example");
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

/// The monitor's command form POSTed as a browser sends it, from `origin` (none: the
/// monitor's own): `(status, Location, body)`.
fn ui_command(
    port: u16,
    (token, action, target): (&str, &str, &str),
    origin: Option<&str>,
) -> (u16, String, String) {
    let own = format!("http://127.0.0.1:{port}");
    let origin = origin.unwrap_or(&own);
    let body = format!(
        "back=%2Fui%2Fqueues&token={token}&action={action}&target={}",
        enc(target)
    );
    let path = "/ui/command";
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: {origin}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let location = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("location")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    (status, location, body.to_string())
}

/// The page's command token (`data-token` of the access note) and the whole page.
fn page_token(port: u16, path: &str) -> (String, String) {
    let (status, page) = http(port, "GET", path);
    assert_eq!(status, 200, "{page}");
    let token = page
        .split_once("data-token=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(t, _)| t.to_string())
        .expect("the access note carries the token");
    (token, page)
}

/// A queue name in a query string or form (`{default}` has braces).
fn enc(v: &str) -> String {
    v.replace('/', "%2F")
        .replace('{', "%7B")
        .replace('}', "%7D")
}

/// A daemon whose `http-access` gives 127.0.0.1 `level`, with one deferred recipient of job
/// `spring`, and its queue's name; `/access` tells the level and whether it may command.
fn with_a_queue(level: &str, control: bool) -> (Petrel, String) {
    let p = Petrel::start(&config(level, free_port()));
    send_mail(
        p.smtp_port,
        "a@b.example",
        &["x@queued.example"],
        "X-Job: spring\r\n",
    );
    let name = wait_for_queue(&p, "queued.example")["queue"]
        .as_str()
        .unwrap()
        .to_string();
    let access = api(&p, "/access");
    assert_eq!(access["data"]["level"], level, "{access}");
    assert_eq!(access["data"]["control"], control);
    (p, name)
}

#[test]
fn monitor_commands_follow_http_access_over_http() {
    // Admin: the access endpoint says so, the page has the buttons, its form pauses.
    let (p, name) = with_a_queue("admin", true);
    let (token, page) = page_token(p.mgmt_port, "/ui/queues");
    assert!(page.contains("action=\"/ui/command\""), "{page}");
    assert!(page.contains("value=\"pause\""));
    assert!(page.contains("value=\"schedule\""));
    let (status, location, body) = ui_command(p.mgmt_port, (&token, "pause", &name), None);
    assert_eq!(status, 303, "{body}");
    assert!(location.starts_with("/ui/queues?done=pause"), "{location}");
    assert_eq!(queue(&p, "queued.example")["paused"], true);

    // The same form from another site, or with another client's token, changes nothing.
    let (status, _, body) = ui_command(
        p.mgmt_port,
        (&token, "resume", &name),
        Some("http://evil.example"),
    );
    assert_eq!(status, 403, "{body}");
    let forged = "0".repeat(64);
    let (status, _, _) = ui_command(p.mgmt_port, (&forged, "resume", &name), None);
    assert_eq!(status, 403);
    assert_eq!(queue(&p, "queued.example")["paused"], true);
    let (status, body) = http(
        p.mgmt_port,
        "POST",
        &format!("/resumeQueue?queue={}", enc(&name)),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(queue(&p, "queued.example")["paused"], false);

    // Monitor level: no buttons on any page; the page's form and the API both refuse.
    let (ro, name) = with_a_queue("monitor", false);
    for path in ["/", "/ui/queues", "/ui/jobs"] {
        let (_, page) = page_token(ro.mgmt_port, path);
        assert!(!page.contains("/ui/command"), "{path} offers a command");
        assert!(!page.contains("<button type=\"submit\" name=\"action\""));
    }
    let (token, _) = page_token(ro.mgmt_port, "/ui/queues");
    let (status, _, body) = ui_command(ro.mgmt_port, (&token, "pause", &name), None);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("http-access"), "{body}");
    for cmd in [
        format!("/pauseQueue?queue={}", enc(&name)),
        format!("/schedule?queue={}", enc(&name)),
        "/pauseJob?jobId=spring".to_string(),
    ] {
        let (status, body) = http(ro.mgmt_port, "POST", &cmd);
        assert_eq!(status, 403, "{cmd}: {body}");
    }
    assert_eq!(queue(&ro, "queued.example")["paused"], false);
    assert_eq!(api(&ro, "/jobs")["data"]["jobs"][0]["paused"], false);
}
