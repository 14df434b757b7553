//! Micro benchmark: rewrites a ~20 KB HTML message (multipart/alternative, quoted-printable
//! HTML part with ~60 links) N times and prints messages per second.
//!
//! `cargo run --release -p petrel-tracking --example rewrite_bench -- [N] [--print]`

use std::time::Instant;

use petrel_tracking::{rewrite_message, RewriteOptions, TokenKeys};

fn qp(html: &str) -> String {
    // The sample is ASCII; only '=' needs escaping, plus soft breaks for long lines.
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

fn sample() -> Vec<u8> {
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
    format!(
        "From: Shop <news@shop.example.com>\r\nTo: fred@example.org\r\nSubject: Spring sale\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSpring sale: https://shop.example.com/\r\n\
         --b1\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
         {}--b1--\r\n",
        qp(&html)
    )
    .into_bytes()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let print = std::env::args().any(|a| a == "--print");
    let raw = sample();
    let keys = TokenKeys::new(1, b"benchmark-secret-0123456789abcdef").expect("key");
    let opts = RewriteOptions {
        base_url: "https://track.example.com".into(),
        open_tracking: true,
        click_tracking: true,
        initial_open: true,
        expires_unix: 4_000_000_000,
    };
    let first = rewrite_message(
        &raw,
        "0123456789abcdef0000",
        "fred@example.org",
        &keys,
        &opts,
    )
    .expect("rewrite");
    if print {
        println!("{}", String::from_utf8_lossy(&first.message));
    }
    let start = Instant::now();
    let mut bytes = 0usize;
    for i in 0..n {
        let id = format!("0123456789abcdef{i:04x}");
        let r = rewrite_message(&raw, &id, "fred@example.org", &keys, &opts).expect("rewrite");
        bytes += r.message.len();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "input {} bytes -> output {} bytes, {} links wrapped, {} pixels",
        raw.len(),
        first.message.len(),
        first.links_wrapped,
        first.pixels_added
    );
    println!(
        "{n} messages in {secs:.3} s: {:.0} messages/s, {:.1} MB/s out",
        n as f64 / secs,
        bytes as f64 / secs / 1e6
    );
}
