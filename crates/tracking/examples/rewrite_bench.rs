//! Micro benchmark: rewrites ~20 KB HTML messages (multipart/alternative with a
//! quoted-printable HTML part) N times each and prints the cost per message.
//!
//! * `dense72`: a product grid, 72 links (one per item), 21.6 KB.
//! * `newsletter30`: a typical newsletter: text-heavy articles with inline styles, 30 links
//!   (navigation, "read more", social icons, footer) and an "Unsubscribe" link marked
//!   `data-msys-unsubscribe="1"`, wrapped like the others with the subaccount in its token.
//!   Most of its URLs are long enough (≥ 96 bytes) to be deflated inside the tokens.
//! * `newsletter30u`: the same newsletter, but every message has its own link URLs (as with
//!   per-recipient personalised links), so nothing computed for one message's URLs can be
//!   reused for the next (each thread remembers recent deflated URLs). Building each message
//!   is not timed.
//!
//! `cargo run --release -p petrel-tracking --example rewrite_bench -- [N] [--print] [--sample=NAME] [--file=PATH]`
//!
//! Prints one `RESULT sample=… per_msg_us=…` line per sample (easy to grep in scripts).

use std::borrow::Cow;
use std::time::{Duration, Instant};

use petrel_tracking::{rewrite_message, RewriteOptions, TokenKeys};

fn qp(html: &str) -> String {
    // The samples are ASCII; only '=' needs escaping, plus soft breaks for long lines.
    let mut out = String::new();
    for line in html.split("\r\n") {
        let line = line.replace('=', "=3D");
        let mut col = 0;
        for ch in line.chars() {
            if col >= 72 {
                out.push_str("=\r\n");
                col = 0;
            }
            out.push(ch);
            col += 1;
        }
        out.push_str("\r\n");
    }
    out
}

/// A multipart/alternative message with a text part and `html` as quoted-printable.
fn message(subject: &str, html: &str) -> Vec<u8> {
    format!(
        "From: Shop <news@shop.example.com>\r\nTo: fred@example.org\r\nSubject: {subject}\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{subject}: https://shop.example.com/\r\n\
         --b1\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
         {}--b1--\r\n",
        qp(html)
    )
    .into_bytes()
}

/// The original sample: a product grid with one link per item.
fn dense72() -> Vec<u8> {
    let mut html = String::from(
        "<!DOCTYPE html>\r\n<html><head><meta charset=\"utf-8\"><title>Spring sale</title>\r\n\
         <style>body{font-family:Arial,sans-serif} .btn{background:#06c;color:#fff}</style></head>\r\n\
         <body style=\"margin:0;padding:0\">\r\n<table width=\"100%\" cellpadding=\"0\" cellspacing=\"0\">\r\n",
    );
    let mut i = 0;
    while html.len() < 19_500 {
        html.push_str(&format!(
            "<tr><td class=\"item\"><img src=\"https://cdn.example.com/img/{i}.jpg\" width=\"120\" alt=\"\">\r\n\
             <p>Product {i}: a fine thing at a fine price, while stocks last.</p>\r\n\
             <a class=\"btn\" href=\"https://shop.example.com/p/{i}?utm_source=mail&amp;utm_campaign=spring\">Buy</a></td></tr>\r\n"
        ));
        i += 1;
    }
    html.push_str(
        "</table>\r\n<p><a href=\"https://example.com/unsubscribe?u=1\">Unsubscribe</a> \
         <a href=\"mailto:help@example.com\">Help</a></p>\r\n</body></html>",
    );
    message("Spring sale", &html)
}

/// A text-heavy newsletter: header navigation, articles with a "read more" link each, social
/// links and a footer with a marked unsubscribe link. `personal` is
/// appended to the tracking parameters of the links (empty for the shared sample).
fn newsletter30(personal: &str) -> Vec<u8> {
    const P: &str =
        "font-family:Georgia,serif;font-size:16px;line-height:24px;color:#333333;margin:0 0 16px 0";
    let utm =
        format!("utm_source=newsletter&amp;utm_medium=email&amp;utm_campaign=weekly-42{personal}");
    let mut html = String::from(
        "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\">\r\n\
         <html xmlns=\"http://www.w3.org/1999/xhtml\"><head>\r\n\
         <meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">\r\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\r\n\
         <title>The Weekly Petrel</title>\r\n<style type=\"text/css\">\r\n\
         body{margin:0;padding:0} table{border-collapse:collapse} img{border:0;display:block}\r\n\
         @media only screen and (max-width:600px){.col{width:100%!important}}\r\n</style>\r\n\
         <!--[if mso]><style>td{font-family:Arial,sans-serif}</style><![endif]-->\r\n</head>\r\n\
         <body style=\"margin:0;padding:0;background:#f4f4f4\">\r\n\
         <table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\">\r\n\
         <tr><td align=\"center\" style=\"padding:12px 0\">\r\n",
    );
    // Header: logo and four navigation links.
    html.push_str(&format!(
        "<a href=\"https://news.example.com/?{utm}\"><img src=\"https://cdn.example.com/logo.png\" \
         width=\"180\" height=\"48\" alt=\"The Weekly Petrel\"></a>\r\n"
    ));
    for section in ["world", "science", "culture", "sport"] {
        html.push_str(&format!(
            "<a href=\"https://news.example.com/{section}?{utm}\" style=\"color:#0066cc;\
             text-decoration:none;font-family:Arial,sans-serif;font-size:13px\">{section}</a> &middot;\r\n"
        ));
    }
    html.push_str("</td></tr>\r\n");
    // Articles: a heading, two paragraphs of text, a "read more" link (and some an image).
    // 14 articles (every third with a photo link) make 30 wrapped links and ~21 KB.
    for i in 0..14 {
        html.push_str(&format!(
            "<tr><td class=\"col\" style=\"padding:24px;background:#ffffff\">\r\n\
             <h2 style=\"font-family:Arial,sans-serif;font-size:22px;color:#111111;margin:0 0 12px 0\">\
             Story {i}: what the storm petrels tell us about the open sea</h2>\r\n\
             <p style=\"{P}\">Storm petrels spend most of their lives far from land, feeding on \
             plankton and small fish picked from the surface while they patter across the waves. \
             Researchers followed {i}0 birds with tiny trackers through a whole season.</p>\r\n\
             <p style=\"{P}\">The results surprised everyone: the birds travelled further than \
             expected, returned to the same burrows, and seemed to use smell to find their way \
             home in the dark &mdash; even across hundreds of kilometres of featureless ocean.</p>\r\n"
        ));
        if i % 3 == 0 {
            html.push_str(&format!(
                "<a href=\"https://news.example.com/story/{i}/photos?{utm}\"><img \
                 src=\"https://cdn.example.com/story/{i}.jpg\" width=\"552\" alt=\"Photos\"></a>\r\n"
            ));
        }
        html.push_str(&format!(
            "<p style=\"margin:0\"><a href=\"https://news.example.com/story/{i}?{utm}\" \
             style=\"color:#0066cc;font-weight:bold\">Read more &rarr;</a></p>\r\n</td></tr>\r\n"
        ));
    }
    // Social links and the footer.
    html.push_str("<tr><td align=\"center\" style=\"padding:16px\">\r\n");
    for net in ["facebook", "twitter", "instagram", "linkedin"] {
        html.push_str(&format!(
            "<a href=\"https://{net}.example.com/weeklypetrel\"><img \
             src=\"https://cdn.example.com/icons/{net}.png\" width=\"24\" height=\"24\" alt=\"{net}\"></a>\r\n"
        ));
    }
    html.push_str(&format!(
        "</td></tr>\r\n<tr><td style=\"padding:16px;font-family:Arial,sans-serif;font-size:11px;color:#999999\">\r\n\
         You receive this because you subscribed at news.example.com. \
         <a href=\"https://news.example.com/prefs?u=8f3a9c&amp;{utm}\" style=\"color:#999999\">Manage \
         preferences</a> or <a data-msys-unsubscribe=\"1\" href=\"https://news.example.com/l/8f3a9c\" style=\"color:#999999\">\
         <span>Unsubscribe</span></a> &middot; <a href=\"mailto:editor@news.example.com\">Write to us</a><br>\r\n\
         The Weekly Petrel, 1 Harbour Road, Port Example &middot; \
         <a href=\"https://news.example.com/privacy?{utm}\" style=\"color:#999999\">Privacy</a>\r\n\
         </td></tr>\r\n</table>\r\n</body>\r\n</html>"
    ));
    message("The Weekly Petrel", &html)
}

/// Rewrites `n` messages, `message(i)` being the i-th, each with its own message id (like
/// per-recipient delivery), and prints the result line. Only `rewrite_message` is timed.
fn run<'a>(name: &str, n: usize, print: bool, message: impl Fn(usize) -> Cow<'a, [u8]>) {
    let keys = TokenKeys::new(1, b"benchmark-secret-0123456789abcdef").expect("key");
    let opts = RewriteOptions {
        base_url: "https://track.example.com".into(),
        open_tracking: true,
        click_tracking: true,
        initial_open: true,
        expires_unix: 4_000_000_000,
        subaccount: 0,
    };
    let first_raw = message(0);
    let first = rewrite_message(
        &first_raw,
        "0123456789abcdef0000",
        "fred@example.org",
        &keys,
        &opts,
    )
    .expect("rewrite");
    if print {
        println!("{}", String::from_utf8_lossy(&first.message));
    }
    let mut busy = Duration::ZERO;
    let mut bytes = 0usize;
    for i in 0..n {
        let raw = message(i + 1);
        let id = format!("0123456789abcdef{i:04x}");
        let start = Instant::now();
        let r = rewrite_message(&raw, &id, "fred@example.org", &keys, &opts).expect("rewrite");
        busy += start.elapsed();
        bytes += r.message.len();
    }
    let secs = busy.as_secs_f64();
    println!(
        "RESULT sample={name} n={n} per_msg_us={:.1} msgs_per_s={:.0} mb_per_s_out={:.1} \
         in_bytes={} out_bytes={} links={} pixels={}",
        secs * 1e6 / n as f64,
        n as f64 / secs,
        bytes as f64 / secs / 1e6,
        first_raw.len(),
        first.message.len(),
        first.links_wrapped,
        first.pixels_added
    );
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let print = std::env::args().any(|a| a == "--print");
    // `--sample=NAME` runs only that sample (handy under `perf record`).
    let only = std::env::args().find_map(|a| a.strip_prefix("--sample=").map(str::to_owned));
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
    if wanted("dense72") {
        let raw = dense72();
        run("dense72", n, print, |_| Cow::Borrowed(&raw));
    }
    if wanted("newsletter30") {
        let raw = newsletter30("");
        run("newsletter30", n, print, |_| Cow::Borrowed(&raw));
    }
    // `--file=PATH`: a message of your own (e.g. `html_relay_bench --print > msg.eml`).
    if let Some(path) = std::env::args().find_map(|a| a.strip_prefix("--file=").map(str::to_owned))
    {
        let raw = std::fs::read(&path).expect("reading --file");
        run("file", n, print, |_| Cow::Borrowed(&raw));
        return;
    }
    if wanted("newsletter30u") {
        run("newsletter30u", n, print, |i| {
            Cow::Owned(newsletter30(&format!("&amp;r={i:06}")))
        });
    }
}
