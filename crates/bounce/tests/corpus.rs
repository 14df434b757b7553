//! Agreement with the Sisimai-labelled bounce corpus (`shared/corpus/bounces`,
//! `EXPECTED.tsv`: one row per bounced recipient). Prints three percentages and asserts
//! them against thresholds just below what the parser achieves. See docs/BOUNCES.md.
//!
//! Scoring, per expected row:
//! - (a) recipient + status: the file parses as a `Bounce` with as many recipients as the
//!   file has rows, and recipient `rcpt_index` has the expected status. Sisimai writes an
//!   internal pseudo-status `c.0.9xx` when the message carries no usable status; for those
//!   rows only the class `c` (4 or 5) must agree. `vacation` rows agree when the file is an
//!   `AutoReply`, `delivered` rows when it is not a `Bounce`; an empty expected status
//!   occurs only on `vacation` rows.
//! - (b) hard/soft: `hard` equals `hardbounce` (non-bounce rows: agree as in (a)).
//! - (c) category: our `bounce_cat` (and `bounce_class` for size) is in the set that
//!   [`accepted`] maps the Sisimai `reason` to.
//!
//! `BOUNCE_CORPUS_VERBOSE=1` prints every disagreement.

use std::collections::BTreeMap;
use std::path::PathBuf;

use petrel_bounce::{parse, Returned};

/// Sisimai reason → the PowerMTA `bounceCat` values that count as the same verdict.
/// `None` means the row is not a bounce (handled by the caller).
fn accepted(reason: &str) -> Option<&'static [&'static str]> {
    Some(match reason {
        "userunknown" | "hasmoved" => &["bad-mailbox"],
        "hostunknown" => &["bad-domain"],
        "notaccept" => &["bad-domain", "no-answer-from-host", "bad-configuration"],
        "mailboxfull" => &["quota-issues"],
        "suspend" => &["inactive-mailbox"],
        "expired" => &["message-expired"],
        "networkerror" => &["routing-errors", "bad-connection", "no-answer-from-host"],
        "blocked" => &["spam-related", "policy-related"],
        "requireptr" => &["policy-related", "spam-related"],
        "authfailure" => &["policy-related"],
        "policyviolation" => &["policy-related", "content-related"],
        "filtered" => &["policy-related", "content-related", "spam-related"],
        "rejected" => &["invalid-sender", "policy-related"],
        "spamdetected" => &["spam-related"],
        "securityerror" => &["policy-related", "bad-configuration"],
        "systemerror" => &["bad-configuration", "other", "routing-errors"],
        "mailererror" => &["other", "bad-configuration"],
        "toomanyconn" => &["policy-related", "bad-connection"],
        "norelaying" => &["relaying-issues"],
        "mesgtoobig" => &["content-related"],
        "contenterror" => &["content-related"],
        "virusdetected" => &["virus-related"],
        "notcompliantrfc" => &["content-related", "protocol-errors"],
        "onhold" | "undefined" => &["other"],
        _ => return None,
    })
}

struct Row {
    reason: String,
    status: String,
    hard: bool,
    index: usize,
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/bounces")
}

fn status_agrees(expected: &str, got: Option<&str>) -> bool {
    let parts: Vec<&str> = expected.split('.').collect();
    if parts.len() == 3 && parts[1] == "0" && parts[2].len() == 3 && parts[2].starts_with('9') {
        return got.is_some_and(|g| g.starts_with(parts[0]));
    }
    got == Some(expected)
}

#[test]
fn corpus_agreement() {
    let dir = corpus_dir();
    let Ok(tsv) = std::fs::read_to_string(dir.join("EXPECTED.tsv")) else {
        eprintln!("corpus not found at {}; skipping", dir.display());
        return;
    };
    let verbose = std::env::var_os("BOUNCE_CORPUS_VERBOSE").is_some();
    let mut files: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for line in tsv.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        files.entry(f[0].to_string()).or_default().push(Row {
            reason: f[1].to_string(),
            status: f[2].to_string(),
            hard: f[4] == "1",
            index: f[5].parse().unwrap(),
        });
    }
    let (mut total, mut a_ok, mut b_ok, mut c_ok) = (0usize, 0usize, 0usize, 0usize);
    for (file, rows) in &files {
        let raw = std::fs::read(dir.join(file)).unwrap();
        let got = parse(&raw);
        for row in rows {
            total += 1;
            let (a, b, c, note) = match (row.reason.as_str(), &got) {
                ("vacation", g) => {
                    let ok = matches!(g, Returned::AutoReply);
                    (ok, ok, ok, format!("{g:?}").chars().take(60).collect())
                }
                ("delivered", g) => {
                    let ok = !matches!(g, Returned::Bounce(_));
                    (ok, ok, ok, "expected no bounce".to_string())
                }
                ("feedback", g) => {
                    let ok = matches!(g, Returned::Complaint(_));
                    (ok, ok, ok, String::new())
                }
                (reason, Returned::Bounce(bounce)) => {
                    let count_ok = bounce.recipients.len() == rows.len();
                    match bounce.recipients.get(row.index) {
                        Some(r) => {
                            let a = count_ok && status_agrees(&row.status, r.status.as_deref());
                            let b = r.hard == row.hard;
                            let c = accepted(reason)
                                .is_some_and(|set| set.contains(&r.bounce_cat.as_str()))
                                && (reason != "mesgtoobig" || r.bounce_class == 23);
                            let note = format!(
                                "n={} addr={} status={:?} code={:?} cat={} class={} hard={} diag={:?}",
                                bounce.recipients.len(),
                                r.address,
                                r.status,
                                r.reply_code,
                                r.bounce_cat,
                                r.bounce_class,
                                r.hard,
                                r.diagnostic.as_deref().map(|d| d.chars().take(160).collect::<String>())
                            );
                            (a, b, c, note)
                        }
                        None => (
                            false,
                            false,
                            false,
                            format!("n={}", bounce.recipients.len()),
                        ),
                    }
                }
                (_, g) => (
                    false,
                    false,
                    false,
                    format!("{g:?}").chars().take(80).collect(),
                ),
            };
            a_ok += a as usize;
            b_ok += b as usize;
            c_ok += c as usize;
            if verbose && !(a && b && c) {
                println!(
                    "MISS {file}#{} [{}{}{}] want {} {} hard={} | {note}",
                    row.index,
                    if a { "" } else { "S" },
                    if b { "" } else { "H" },
                    if c { "" } else { "C" },
                    row.reason,
                    row.status,
                    row.hard,
                );
            }
        }
    }
    let pct = |n: usize| 100.0 * n as f64 / total as f64;
    println!("corpus rows: {total}");
    println!("(a) recipient + status agreement: {:.1} %", pct(a_ok));
    println!("(b) hard/soft agreement:          {:.1} %", pct(b_ok));
    println!("(c) category agreement:           {:.1} %", pct(c_ok));
    // Measured: 98.2 %, 93.8 %, 90.5 % (docs/BOUNCES.md; targets 97 % and 90 %). Raise
    // these when the parser improves.
    assert!(pct(a_ok) >= 98.0, "recipient + status agreement fell");
    assert!(pct(b_ok) >= 93.5, "hard/soft agreement fell");
    assert!(pct(c_ok) >= 90.0, "category agreement fell");
}
