//! A deterministic generator of Signals ingest batches that exercises everything the
//! analytics count: every event type (message, track, gen, unsubscribe and relay events),
//! every facet (subaccounts, campaigns, templates, IP pools, sending IPs and domains,
//! recipient domains with typo and role addresses, explicit mailbox providers and regions,
//! hashed recipients), thin tracking events that need enrichment, machine opens, repeat
//! recipients (cohorts), events that arrive late (hours to days after their time, after
//! other events of their message), duplicated events, re-sent batches and invalid lines.
//!
//! Used by the differential test (`tests/differential.rs`) and the ClickHouse benchmark
//! (`examples/clickhouse_bench.rs`, through `#[path]`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// A small deterministic generator (xorshift64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// True with probability `percent` / 100 (fractions allowed: 0.5 = one in 200).
    pub fn chance(&mut self, percent: f64) -> bool {
        (self.below(1_000_000) as f64) < percent * 10_000.0
    }
    /// Long-tailed pick in 0..n: a few values take most of the traffic.
    pub fn zipf(&mut self, n: u64) -> u64 {
        let u = (self.next() % 1_000_000) as f64 / 1_000_000.0;
        ((n as f64).powf(u) - 1.0) as u64 % n.max(1)
    }
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Stop after about this many events.
    pub events: u64,
    /// Events per batch (a batch also takes what arrived late by then).
    pub per_batch: usize,
    /// First day (unix seconds, midnight UTC).
    pub start: i64,
    /// Days the injections span.
    pub days: i64,
    /// Distinct recipients (reused, so cohorts move).
    pub recipients: u64,
    /// Mix in duplicates, re-sent batches and invalid lines.
    pub messy: bool,
    pub seed: u64,
}

const PROVIDER_DOMAINS: &[&str] = &[
    "gmail.com",
    "yahoo.com",
    "hotmail.com",
    "outlook.com",
    "aol.com",
    "icloud.com",
    "gmx.de",
    "yahoo.co.uk",
    "comcast.net",
    "gmal.com",
    "yahooo.com",
    "hotmial.com",
];
const REGIONS: &[&str] = &["Global", "North America", "Europe", "APAC"];
const LINKS: &[&str] = &["hero", "footer", "cta", "logo", "product-1", "product-2"];
const ROLES: &[&str] = &["info", "sales", "support", "admin"];

struct Pending {
    at: i64,
    seq: u64,
    line: String,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// Yields gzipped NDJSON batches in arrival order.
pub struct Batches {
    plan: Plan,
    rng: Rng,
    messages: u64,
    next_message: u64,
    queue: BinaryHeap<Reverse<Pending>>,
    seq: u64,
    event_id: u64,
    emitted: u64,
    last_batch: Option<Vec<u8>>,
    /// The arrival clock: the newest injection generated.
    now: i64,
    /// Batches handed out (re-sent ones included).
    batches: u64,
    done: bool,
}

/// The batches of `plan`.
pub fn batches(plan: Plan) -> Batches {
    // About 3.2 events a message.
    let messages = plan.events * 10 / 32 + 1;
    Batches {
        rng: Rng(plan.seed | 1),
        messages,
        next_message: 0,
        queue: BinaryHeap::new(),
        seq: 0,
        event_id: 1_000_000_000_000_000_000,
        emitted: 0,
        last_batch: None,
        now: plan.start,
        batches: 0,
        done: false,
        plan,
    }
}

fn gzip(text: &str) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(text.as_bytes()).expect("gzip");
    enc.finish().expect("gzip")
}

impl Batches {
    /// Events generated so far (duplicates included, invalid lines not).
    pub fn emitted(&self) -> u64 {
        self.emitted
    }

    fn push(&mut self, at: i64, line: String) {
        self.seq += 1;
        self.queue.push(Reverse(Pending {
            at,
            seq: self.seq,
            line,
        }));
    }

    /// Queues the events of message `i` (injected at `t`).
    fn message(&mut self, i: u64, t: i64) {
        let p = self.plan.clone();
        let r = &mut self.rng;
        let span = (p.days * DAY).max(1);
        let campaign_n = ((t - p.start) * 40 / span + r.below(2) as i64).min(39);
        let campaign = (!r.chance(3.0)).then(|| format!("campaign-{campaign_n}"));
        let template = (!r.chance(20.0)).then(|| format!("tpl-{}", campaign_n % 9));
        let pool = campaign_n % 6;
        let ip = format!("10.0.{pool}.{}", r.below(4));
        let sub = if r.chance(5.0) {
            None
        } else {
            Some(campaign_n % 5)
        };
        let rcpt_n = r.below(p.recipients);
        let domain = if rcpt_n.is_multiple_of(3) {
            PROVIDER_DOMAINS[r.zipf(PROVIDER_DOMAINS.len() as u64) as usize].to_string()
        } else {
            format!("d{}.example", rcpt_n % 250)
        };
        let local = if rcpt_n.is_multiple_of(41) {
            ROLES[(rcpt_n % 4) as usize].to_string()
        } else {
            format!("u{rcpt_n}")
        };
        let hashed = rcpt_n.is_multiple_of(53);
        let from_domain = format!("brand{}.example", campaign_n % 4);
        let msg_id = format!("{:016x}{:04x}", (t as u64) << 16 | (i & 0xffff), i % 7);
        let explicit_provider = r.chance(2.0).then(|| "Custom MBP".to_string());
        let region = r.chance(10.0).then(|| REGIONS[r.below(4) as usize]);
        // Full fields of a message event.
        let full = |kind: &str, ts: i64, id: u64| {
            let mut f = serde_json::json!({
                "type": kind, "event_id": id.to_string(), "message_id": msg_id,
                "timestamp": ts.to_string(), "binding": format!("vmta-{pool}"),
                "sending_ip": ip, "friendly_from": format!("news@{from_domain}"),
                "msg_from": format!("bounces@mail.{from_domain}"), "subject": "Hello",
                "msg_size": "18000", "open_tracking": true, "click_tracking": true,
            });
            if hashed {
                f["rcpt_hash"] = format!("{:040x}", rcpt_n).into();
                f["rcpt_domain"] = domain.clone().into();
            } else {
                f["rcpt_to"] = format!("{local}@{domain}").into();
            }
            if let Some(c) = &campaign {
                f["campaign_id"] = c.clone().into();
            }
            if let Some(t) = &template {
                f["template_id"] = t.clone().into();
            }
            if pool % 2 == 0 {
                f["binding_group"] = format!("pool-{pool}").into();
            } else {
                f["ip_pool"] = format!("pool-{pool}").into();
            }
            if let Some(s) = sub {
                f["subaccount_id"] = s.into();
            }
            if let Some(m) = &explicit_provider {
                f["mailbox_provider"] = m.clone().into();
            }
            if let Some(reg) = region {
                f["mailbox_provider_region"] = reg.into();
            }
            if campaign_n % 7 == 3 {
                f["sending_domain"] = format!("send.{from_domain}").into();
            }
            f
        };
        // A thin event, as a tracker or a returned message sends it.
        let thin = |kind: &str, ts: i64, id: u64| {
            let mut f = serde_json::json!({
                "type": kind, "event_id": id.to_string(), "message_id": msg_id,
                "timestamp": ts.to_string(), "user_agent": "Mozilla/5.0",
            });
            if hashed {
                f["rcpt_hash"] = format!("{:040x}", rcpt_n).into();
                f["rcpt_domain"] = domain.clone().into();
            } else {
                f["rcpt_to"] = format!("{local}@{domain}").into();
            }
            if i.is_multiple_of(3) {
                f["subaccount_id"] = 0.into();
            }
            f
        };
        let mut out: Vec<(i64, i64, &'static str, serde_json::Value)> = Vec::new();
        let mut id = || {
            self.event_id += 1;
            self.event_id
        };
        let r = &mut self.rng;
        // Arrival delay: most within minutes, some hours or days late.
        let delay = |r: &mut Rng| -> i64 {
            if r.chance(2.0) {
                DAY + r.below(2 * DAY as u64) as i64
            } else if r.chance(8.0) {
                3600 + r.below(6 * 3600) as i64
            } else {
                r.below(300) as i64
            }
        };
        let roll = r.below(1000);
        if roll < 15 {
            let mut f = full("rejection", t, id());
            f["bounce_class"] = "25".into();
            f["reason"] = "550 5.7.1 recipient suppressed".into();
            out.push((t, delay(r), "message_event", f));
        } else if roll < 20 {
            let kind = if roll < 18 {
                "gen_rejection"
            } else {
                "gen_fail"
            };
            let mut f = full(kind, t, id());
            f.as_object_mut().unwrap().remove("message_id");
            f["reason"] = "554 5.3.3 substitution missing".into();
            out.push((t, delay(r), "gen_event", f));
        } else if roll < 23 {
            let kind =
                ["relay_injection", "relay_delivery", "relay_permfail"][(roll - 20) as usize];
            out.push((t, delay(r), "relay_event", full(kind, t, id())));
        } else {
            out.push((t, delay(r), "message_event", full("reception", t, id())));
            let outcome = r.below(100);
            let mut delivered_at = None;
            if outcome < 8 {
                let (class, reason) = [
                    ("10", "550 5.1.1 no such user"),
                    ("30", "552 5.2.2 mailbox full"),
                    ("51", "554 5.7.1 blocked"),
                    ("1", "550 undetermined"),
                    ("25", "550 5.7.1 admin failure"),
                    ("52", "550 5.7.1 spam block"),
                    ("21", "451 4.3.0 soft"),
                    ("10", "550 5.1.1 user unknown"),
                ][outcome as usize];
                let mut f = full("inband", t + 3, id());
                f["bounce_class"] = class.into();
                f["reason"] = reason.into();
                f["num_retries"] = "0".into();
                out.push((t + 3, delay(r), "message_event", f));
            } else {
                let retries = if outcome < 15 { 1 + r.below(3) } else { 0 };
                for n in 0..retries {
                    let ts = t + 5 + n as i64 * 600;
                    let mut f = full("tempfail", ts, id());
                    f["bounce_class"] = "21".into();
                    f["num_retries"] = n.to_string().into();
                    f["reason"] =
                        ["451 4.3.0 try later", "421 4.7.0 throttled"][(n % 2) as usize].into();
                    out.push((ts, delay(r), "message_event", f));
                }
                let ts = t + 5 + retries as i64 * 600;
                let mut f = full("delivery", ts, id());
                f["num_retries"] = retries.to_string().into();
                f["queue_time"] = (ts - t).saturating_mul(1000).to_string().into();
                out.push((ts, delay(r), "message_event", f));
                delivered_at = Some(ts);
            }
            if let Some(d) = delivered_at {
                let engaged = rcpt_n.is_multiple_of(4) || r.chance(15.0);
                if r.chance(1.0) {
                    let ts = d + 1800 + r.below(2 * DAY as u64) as i64;
                    let mut f = thin("outofband", ts, id());
                    f["bounce_class"] = ["10", "20"][r.below(2) as usize].into();
                    f["reason"] = "550 5.0.0 user unknown".into();
                    out.push((ts, delay(r), "message_event", f));
                }
                if engaged {
                    let mut ts = d + 60 + r.below(3 * 3600) as i64;
                    if r.chance(60.0) {
                        let kind = ["initial_open", "amp_initial_open"][r.below(5).min(1) as usize];
                        out.push((ts, delay(r), "track_event", thin(kind, ts, id())));
                    }
                    for _ in 0..1 + r.below(3) {
                        ts += r.below(5400) as i64;
                        let kind = ["open", "amp_open"][r.below(6).min(1) as usize];
                        let mut f = thin(kind, ts, id());
                        if r.chance(10.0) {
                            f["machine"] = "image-proxy".into();
                        }
                        out.push((ts, delay(r), "track_event", f));
                    }
                    if r.chance(40.0) {
                        for _ in 0..1 + r.below(2) {
                            ts += r.below(900) as i64;
                            let kind = ["click", "amp_click"][r.below(8).min(1) as usize];
                            let mut f = thin(kind, ts, id());
                            let link = LINKS[r.below(LINKS.len() as u64) as usize];
                            f["target_link_url"] = format!("https://shop.example/{link}").into();
                            if r.chance(80.0) {
                                f["target_link_name"] = link.into();
                            }
                            if r.chance(5.0) {
                                f["machine"] = "link-scanner".into();
                            }
                            out.push((ts, delay(r), "track_event", f));
                        }
                    }
                    if r.chance(3.0) {
                        ts += r.below(DAY as u64) as i64;
                        let kind = ["link", "list"][r.below(2) as usize];
                        out.push((ts, delay(r), "unsubscribe_event", thin(kind, ts, id())));
                    }
                }
                if r.chance(0.5) {
                    let ts = d + r.below(3 * DAY as u64) as i64;
                    let mut f = thin("feedback", ts, id());
                    f["fbtype"] = "abuse".into();
                    out.push((ts, delay(r), "message_event", f));
                }
            }
        }
        for (ts, late, grouping, f) in out {
            let line = serde_json::json!({ "msys": { grouping: f } }).to_string();
            let at = ts + late;
            if self.plan.messy && self.rng.chance(1.0) {
                let again = at + self.rng.below(4 * 3600) as i64;
                self.push(again, line.clone());
            }
            self.push(at, line);
        }
    }
}

impl Iterator for Batches {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.done {
            return None;
        }
        self.batches += 1;
        if self.plan.messy && self.batches % 37 == 5 {
            if let Some(b) = self.last_batch.clone() {
                return Some(b);
            }
        }
        let span = self.plan.days * DAY;
        let mut text = String::new();
        let mut n = 0;
        loop {
            // What has arrived by the newest injection generated so far.
            while n < self.plan.per_batch {
                let ready = self.queue.peek().is_some_and(|Reverse(p)| {
                    p.at <= self.now || self.next_message >= self.messages
                });
                if !ready {
                    break;
                }
                let Reverse(p) = self.queue.pop().expect("peeked");
                text.push_str(&p.line);
                text.push('\n');
                n += 1;
            }
            if n == self.plan.per_batch || self.next_message >= self.messages {
                break;
            }
            // The next stretch of injections (about a batch worth of events).
            for _ in 0..(self.plan.per_batch / 4).max(1) {
                if self.next_message >= self.messages {
                    break;
                }
                let i = self.next_message;
                let t = self.plan.start + (i as i64 * span) / self.messages as i64;
                self.message(i, t);
                self.now = t;
                self.next_message += 1;
            }
        }
        if self.plan.messy && self.batches % 23 == 7 {
            text.push_str("{\"msys\":{\"message_event\":{\"type\":\"delivery\"}}}\nnot json\n");
        }
        self.emitted += n as u64;
        if n == 0 && self.queue.is_empty() && self.next_message >= self.messages {
            self.done = true;
            return None;
        }
        let body = gzip(&text);
        self.last_batch = Some(body.clone());
        Some(body)
    }
}
