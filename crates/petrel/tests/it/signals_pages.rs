//! The Signals pages in a real browser (headless Chromium): a `petrel signals serve` seeded
//! with known events through its ingest API; log in, open every page, read the numbers the
//! pages show and compare them with the API's answers and with counts of the seeded events;
//! drill down from a campaign row; group the Summary report by sending IP; export its CSV;
//! a wrong key is refused; markup in a subject or campaign renders as text. A screenshot of
//! every page is saved under the target directory for a person to look at.
//!
//! Set `PETREL_PAGES_HOLD=SECONDS` to keep the seeded service running after the checks
//! (its URL and key are printed) and look at the pages yourself.

use crate::common;

use std::path::PathBuf;

use common::browser::Browser;
use common::signals_seed::{self, Seed, XSS_CAMPAIGN, XSS_SUBJECT};
use common::{http_with, signals_get, StandaloneSignals};
use serde_json::{json, Value};

fn shots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `1,234` / `12.5%` / `−3` as a number.
fn number(text: &str) -> f64 {
    let t: String = text
        .replace('−', "-")
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
        .collect();
    t.parse()
        .unwrap_or_else(|_| panic!("`{text}` is not a number"))
}

struct Site {
    port: u16,
    key: String,
    browser: Browser,
}

impl Site {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
    fn open(&self, path: &str) {
        self.browser.goto(&self.url(path));
    }
    fn api(&self, path: &str) -> Value {
        let (status, body) = signals_get(self.port, &self.key, path);
        assert_eq!(status, 200, "{path}: {body}");
        body
    }
    /// Waits for a click's navigation to land on a URL ending with `tail`.
    fn wait_for_url(&self, tail: &str) {
        self.wait_for(|url| url.ends_with(tail), tail);
    }
    /// Waits for a click's navigation to land on a URL containing `part`.
    fn wait_for_url_with(&self, part: &str) {
        self.wait_for(|url| url.contains(part), part);
    }
    /// Waits for an element of the page a click leads to.
    fn wait_for_element(&self, css: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.browser.find(css).is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "no {css} at {}",
                self.browser.current_url()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    fn wait_for(&self, ok: impl Fn(&str) -> bool, tail: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !ok(&self.browser.current_url()) {
            assert!(
                std::time::Instant::now() < deadline,
                "expected to land on {tail}, at {}",
                self.browser.current_url()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    fn shot(&self, name: &str) {
        self.browser
            .full_screenshot(&shots().join(format!("signals-{name}.png")), 1360);
    }
}

#[test]
fn signals_pages_in_a_browser() {
    let mut svc = StandaloneSignals::new();
    let key = svc.create_key("pages", "ingest,read");
    let ingest_only = svc.create_key("mta", "ingest");
    svc.start();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let seed = signals_seed::generate(now);
    signals_seed::post_batches(svc.port, &key, &seed);

    let site = Site {
        port: svc.port,
        key: key.clone(),
        browser: Browser::start(),
    };
    site.browser.set_size(1360, 900);

    hold("PETREL_PAGES_HOLD_FIRST", svc.port, &key);
    refused_without_a_good_key(&site, &ingest_only);
    log_in(&site);
    health_score(&site, &seed);
    spam_traps(&site, &seed);
    engagement(&site, &seed);
    summary_report(&site, &seed);
    events_search(&site, &seed);
    integration(&site, &seed);
    phone(&site);

    hold("PETREL_PAGES_HOLD", svc.port, &key);
}

/// Keeps the service up for a person when `var` is set (seconds); creating the file
/// `$CARGO_TARGET_TMPDIR/stop-hold` ends the wait early (and the test cleans up).
fn hold(var: &str, port: u16, key: &str) {
    let Ok(secs) = std::env::var(var) else { return };
    let stop = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("stop-hold");
    let _ = std::fs::remove_file(&stop);
    eprintln!(
        "holding http://127.0.0.1:{port}/ for {secs} s; key {key}; touch {} to stop",
        stop.display()
    );
    let deadline =
        std::time::Instant::now() + std::time::Duration::from_secs(secs.parse().unwrap_or(600));
    while std::time::Instant::now() < deadline && !stop.exists() {
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// A wrong key gets no session; an upload-only key neither; HTTP Basic with a wrong key is
/// refused with 401; no credentials at all leads to the login form.
fn refused_without_a_good_key(site: &Site, ingest_only: &str) {
    let (status, _) = http_with(site.port, "GET", "/signals/health-score", "");
    assert_eq!(status, 303, "no credentials: redirect to the login form");
    let wrong = base64_user("0000000000000000000000000000000000000bad");
    let (status, body) = http_with(
        site.port,
        "GET",
        "/signals/health-score",
        &format!("Authorization: Basic {wrong}\r\n"),
    );
    assert_eq!(status, 401, "wrong key over HTTP Basic: {body}");

    for (key, says) in [
        ("0000000000000000000000000000000000000bad", "not known"),
        (ingest_only, "lacks the read permission"),
    ] {
        site.open("/login");
        site.browser.type_into("#key", key);
        site.browser.click("form[action='/login'] button");
        site.wait_for_element("#login-error");
        let error = site.browser.text("#login-error");
        assert!(error.contains(says), "login with a bad key said: {error}");
        assert!(site.browser.current_url().ends_with("/login"));
    }
    site.shot("login-refused");
}

fn base64_user(key: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
}

fn log_in(site: &Site) {
    site.open("/signals/spam-traps?range=7");
    assert!(site.browser.current_url().contains("/login?next="));
    site.browser.type_into("#key", &site.key);
    site.browser.click("form[action='/login'] button");
    site.wait_for_url("/signals/spam-traps?range=7");
    // The session cookie is HttpOnly: the page's scripts cannot read it.
    let visible = site.browser.execute("return document.cookie", json!([]));
    assert_eq!(visible, json!(""), "the session cookie must be HttpOnly");
}

/// The row of `facet` = `value` of a Signals report over the pages' default 14 days.
fn signals_row(site: &Site, report: &str, facet: &str, value: &str) -> Value {
    let (from, to) = (
        signals_seed::utc_day(now_secs() - 13 * 86_400),
        signals_seed::utc_day(now_secs()),
    );
    let path = if facet == "sid" {
        format!("/api/v1/signals/{report}?from={from}&to={to}&limit=1000")
    } else {
        format!("/api/v1/signals/{report}/{facet}?from={from}&to={to}&limit=1000")
    };
    let api = site.api(&path);
    api["results"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| match &r[facet] {
            Value::String(s) => s == value,
            other => other.as_i64().is_some() && other.as_i64() == value.parse().ok(),
        })
        .cloned()
        .unwrap_or_else(|| panic!("no {facet} {value} in {path}: {api}"))
}

fn on_day(seed: &Seed, kind: &str, day: &str, pred: impl Fn(&signals_seed::Ev) -> bool) -> i64 {
    seed.count(kind, |e| signals_seed::utc_day(e.ts) == day && pred(e))
}

fn health_score(site: &Site, seed: &Seed) {
    site.open("/signals/health-score");
    site.shot("health-score");
    let all = signals_row(site, "health-score", "sid", "-1");
    let api_score: f64 = all["current_health_score"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        number(&site.browser.text("#current-score")),
        (api_score * 100.0).round(),
        "the score shown is the API's"
    );
    let day = all["current_dt"].as_str().unwrap().to_string();
    let injected = on_day(seed, "injection", &day, |_| true);
    assert_eq!(
        number(&site.browser.text("#current-injections")) as i64,
        injected
    );
    assert_eq!(all["current_total_injection_count"], injected);
    // The formula adds up: baseline plus the components shown is the score.
    let points: f64 = site
        .browser
        .texts("#components tbody td:nth-child(3)")
        .iter()
        .map(|t| number(t))
        .sum();
    assert!(
        (70.0 + points - api_score * 100.0).abs() < 0.7 || api_score == 0.0 || api_score == 1.0,
        "components ({points}) + 70 should make the score {api_score}"
    );
    let recs = site.browser.texts("#recommendations h3");
    assert!(
        !recs.is_empty(),
        "a score with bounces gets recommendations"
    );

    // The campaign table: each row's injections are that campaign's on its latest day.
    site.browser.click("nav.tabs a[href*='facet=campaign_id']");
    site.wait_for_url_with("facet=campaign_id");
    site.shot("health-score-by-campaign");
    let names = site.browser.texts("#table tbody th.name");
    let injections = site.browser.texts("#table tbody td:nth-child(4)");
    assert!(names.contains(&"spring-sale".to_string()), "{names:?}");
    for (name, shown) in names.iter().zip(&injections) {
        let truth = on_day(seed, "injection", &day, |e| &e.campaign == name);
        assert_eq!(number(shown) as i64, truth, "injections of {name} on {day}");
    }
    // Markup in a campaign name is text, and ran no script.
    assert!(names.contains(&XSS_CAMPAIGN.to_string()), "{names:?}");
    assert_eq!(
        site.browser
            .execute("return window.__xss === undefined", json!([])),
        json!(true)
    );

    // Drill down from the campaign row.
    site.browser
        .click("#table tbody th.name a[href*='spring-sale']");
    site.wait_for_url_with("/signals/health-score/campaign_id/spring-sale");
    assert_eq!(site.browser.text("h1"), "spring-sale");
    let row = signals_row(site, "health-score", "campaign_id", "spring-sale");
    let score: f64 = row["current_health_score"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        number(&site.browser.text("#current-score")),
        (score * 100.0).round()
    );
    assert_eq!(
        number(&site.browser.text("#current-injections")) as i64,
        on_day(seed, "injection", &day, |e| e.campaign == "spring-sale")
    );
    site.shot("health-score-campaign");
    // A component's raw rate, by clicking it.
    site.browser.click("#components a[href*='component=Hard']");
    site.wait_for_url_with("component=Hard");
    assert!(site
        .browser
        .text("#component h2")
        .starts_with("Hard Bounces"));
}

fn spam_traps(site: &Site, seed: &Seed) {
    site.open("/signals/spam-traps");
    site.shot("spam-traps");
    let all = signals_row(site, "spam-hits", "sid", "-1");
    let day = all["current_dt"].as_str().unwrap().to_string();
    let hits = on_day(seed, "injection", &day, |e| e.rcpt.ends_with("@gmial.com"));
    assert_eq!(all["current_trap_hits"], hits);
    assert_eq!(number(&site.browser.text("#current-hits")) as i64, hits);
    assert_eq!(
        number(&site.browser.text("#current-injections")) as i64,
        on_day(seed, "injection", &day, |_| true)
    );
    site.open("/signals/spam-traps?mode=absolute&facet=campaign_id");
    let names = site.browser.texts("#table tbody th.name");
    let shown = site.browser.texts("#table tbody td:nth-child(4)");
    for (name, n) in names.iter().zip(&shown) {
        let truth = on_day(seed, "injection", &day, |e| {
            &e.campaign == name && e.rcpt.ends_with("@gmial.com")
        });
        assert_eq!(number(n) as i64, truth, "trap hits of {name}");
    }
}

fn engagement(site: &Site, seed: &Seed) {
    site.open("/signals/engagement");
    site.shot("engagement");
    let all = signals_row(site, "cohort-engagement", "sid", "-1");
    let day = all["current_dt"].as_str().unwrap().to_string();
    assert_eq!(
        number(&site.browser.text("#current-injections")) as i64,
        on_day(seed, "injection", &day, |_| true)
    );
    let rel = all["current_relative_c_14d"].as_f64().unwrap();
    assert!((number(&site.browser.text("#current-recent")) - rel * 100.0).abs() < 0.06);
    let counts: i64 = site
        .browser
        .texts("#cohorts tbody td:nth-child(3)")
        .iter()
        .map(|t| number(t) as i64)
        .sum();
    assert_eq!(
        counts,
        all["current_c_total"].as_i64().unwrap(),
        "the cohorts add up to the injections"
    );
    site.browser.click("#table tbody th.name a");
    site.wait_for_url_with("/signals/engagement/sid/");
    site.shot("engagement-detail");
}

/// The value of a Summary report total.
fn total(site: &Site, label: &str) -> f64 {
    let t = site
        .browser
        .text(&format!("#totals dd[data-metric='{label}']"));
    number(t.lines().next().unwrap())
}

/// The Metrics API request the page made to `endpoint`, read from its list of requests.
fn page_request(site: &Site, endpoint: &str) -> String {
    let calls = site.browser.execute(
        "return Array.from(document.querySelectorAll('footer.calls code')).map(c => c.textContent)",
        json!([]),
    );
    let wanted = format!("/api/v1/metrics/deliverability{endpoint}?");
    calls
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c.as_str())
        .find(|c| c.contains(&wanted))
        .and_then(|c| c.split('\'').nth(1))
        .and_then(|url| {
            url.split_once(&format!(":{}", site.port))
                .map(|(_, p)| p.to_string())
        })
        .unwrap_or_else(|| panic!("the page lists no request to {wanted}: {calls}"))
}

fn summary_report(site: &Site, seed: &Seed) {
    site.open("/signals/analytics?range=30d&metric=count_targeted&metric=count_accepted&metric=count_hard_bounce&metric=accepted_rate&metric=open_rate&metric=click_through_rate&group_by=campaign");
    let targeted = seed.count("injection", |_| true) + seed.count("policy_rejection", |_| true);
    let accepted = seed.count("delivery", |_| true);
    let hard = seed.count("bounce", |e| e.bounce_class == Some("10"));
    assert_eq!(total(site, "Targeted") as i64, targeted);
    assert_eq!(total(site, "Accepted") as i64, accepted);
    assert_eq!(total(site, "Hard bounces") as i64, hard);
    let summary = site.api(&page_request(site, ""));
    assert_eq!(summary["results"][0]["count_targeted"], targeted);
    let sent = accepted + seed.count("bounce", |_| true);
    let rate = total(site, "Accepted rate");
    assert!(
        (rate - 100.0 * accepted as f64 / sent as f64).abs() < 0.06,
        "accepted rate {rate}"
    );
    site.shot("summary-report");

    // Group by sending IP, as a user does: choose it and apply.
    site.browser.execute(
        "document.getElementById('group_by').value = 'sending-ip'",
        json!([]),
    );
    site.browser.click("#apply");
    site.wait_for_url_with("group_by=sending-ip");
    assert_eq!(site.browser.text("#breakdown-h"), "By Sending IP");
    let ips = site.browser.texts("#breakdown-table tbody th");
    let shown = site.browser.texts("#breakdown-table tbody td:nth-child(2)");
    assert_eq!(ips.len(), 2, "{ips:?}");
    for (ip, n) in ips.iter().zip(&shown) {
        let truth = seed.count("injection", |e| e.ip == ip)
            + seed.count("policy_rejection", |e| e.ip == ip);
        assert_eq!(number(n) as i64, truth, "targeted from {ip}");
    }
    site.shot("summary-report-by-ip");

    // The CSV export holds what the API answers for the same request.
    let csv = site.browser.execute_async(
        "const done = arguments[arguments.length - 1]; \
         fetch(document.getElementById('export-csv').href).then(r => r.text()).then(done)",
        json!([]),
    );
    let rows = common::parse_csv(csv.as_str().unwrap());
    assert_eq!(rows[0][0], "sending_ip");
    assert_eq!(rows[0][1], "count_targeted");
    let api = site.api(&page_request(site, "/sending-ip"));
    let api_rows = api["results"].as_array().unwrap();
    assert_eq!(rows.len() - 1, api_rows.len());
    for (line, a) in rows[1..].iter().zip(api_rows) {
        assert_eq!(line[0], a["sending_ip"].as_str().unwrap());
        assert_eq!(line[1], a["count_targeted"].to_string());
        assert_eq!(line[2], a["count_accepted"].to_string());
    }

    // The bounce reasons add up to the bounces.
    site.open("/signals/analytics?range=30d&tab=bounce");
    let bounces: i64 = site
        .browser
        .texts("#reason-table tbody td:nth-child(4)")
        .iter()
        .map(|t| number(t) as i64)
        .sum();
    assert_eq!(bounces, seed.count("bounce", |_| true));
    site.open("/signals/analytics?range=30d&tab=links");
    let links = site.browser.texts("#reason-table tbody td:first-child");
    assert!(links.contains(&"hero".to_string()), "{links:?}");
}

fn events_search(site: &Site, seed: &Seed) {
    site.open("/reports/message-events?range=10d&events=bounce&campaigns=spring-sale");
    site.shot("events");
    let truth = seed.count("bounce", |e| e.campaign == "spring-sale");
    assert_eq!(number(&site.browser.text("#total-count")) as i64, truth);
    let kinds = site.browser.texts("#events tbody td:nth-child(2)");
    assert!(kinds.iter().all(|k| k == "bounce"), "{kinds:?}");

    // The first event's JSON is the API's.
    site.browser.click("#events tbody td a");
    site.wait_for_url_with("/reports/message-events/");
    site.shot("event");
    let shown: Value = serde_json::from_str(&site.browser.text("#event-json")).unwrap();
    let id = shown["event_id"].as_str().unwrap();
    let api = site.api(&format!(
        "/api/v1/events/message?event_ids={id}&from=2000-01-01T00:00:00Z"
    ));
    assert_eq!(shown, api["results"][0]);
    assert!(
        site.browser.texts("#history li").len() >= 2,
        "injection and bounce"
    );

    // Paging: 25 a page, the next page starts after the first.
    site.open("/reports/message-events?range=10d&per_page=25");
    let first_page = site.browser.texts("#events tbody td:first-child");
    assert_eq!(first_page.len(), 25);
    site.browser.click("#next-page");
    site.wait_for_url_with("cursor=");
    let second_page = site.browser.texts("#events tbody td:first-child");
    assert_eq!(second_page.len(), 25);
    assert!(
        second_page[0] <= first_page[24],
        "newest first across pages"
    );
    assert!(site.browser.text(".table-head .muted").contains("26–50"));

    // Markup in a subject is text.
    site.open("/reports/message-events?range=10d&recipients=xss@example.org");
    let subjects = site.browser.texts("#events td.subject");
    assert!(subjects.iter().all(|s| s == XSS_SUBJECT), "{subjects:?}");
    let bold = site.browser.execute(
        "return document.querySelectorAll('#events td.subject b, #events td script').length",
        json!([]),
    );
    assert_eq!(bold, json!(0));
    assert_eq!(
        site.browser
            .execute("return window.__xss === undefined", json!([])),
        json!(true)
    );
    site.shot("events-markup");
}

fn integration(site: &Site, seed: &Seed) {
    site.open("/signals/integration");
    site.shot("integration");
    let bad = 1;
    assert_eq!(
        number(&site.browser.text("#batches-ok")) as usize,
        seed.batches.len() - bad
    );
    assert_eq!(number(&site.browser.text("#batches-error")) as usize, bad);
    let errors = site.browser.texts("#batches tbody td:nth-child(6)");
    assert!(
        errors.iter().any(|e| e.contains("validation")),
        "{errors:?}"
    );
}

fn phone(site: &Site) {
    site.browser.set_size(390, 844);
    site.open("/signals/health-score");
    let overflow = site.browser.execute(
        "return document.documentElement.scrollWidth > window.innerWidth + 1",
        json!([]),
    );
    assert_eq!(overflow, json!(false), "the page fits a phone's width");
    site.browser
        .full_screenshot(&shots().join("signals-health-score-phone.png"), 390);
    site.open("/signals/analytics");
    site.browser
        .full_screenshot(&shots().join("signals-summary-report-phone.png"), 390);
    site.browser.set_size(1360, 900);
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
