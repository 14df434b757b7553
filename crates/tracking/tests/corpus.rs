//! Corpus tests for `rewrite_message`: awkward HTML in every transfer encoding and in nested
//! multiparts. Each message is built from fixed segments and HTML segments; the rewritten
//! message must reproduce every fixed segment byte for byte, and each HTML segment must
//! decode to HTML whose wrapped links verify back to the original URLs.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use petrel_tracking::{
    rewrite_message, Action, RewriteError, RewriteOptions, Rewritten, TokenKeys,
};

const BASE: &str = "https://track.example.com";
const MSG_ID: &str = "0123456789abcdef0002";
const RCPT: &str = "Fred.Tuck@example.org";
const NOW: u64 = 1_767_225_600;
const EXPIRES: u64 = NOW + 366 * 86_400;

fn keys() -> TokenKeys {
    TokenKeys::new(3, b"corpus-test-secret-0123456789").unwrap()
}

fn opts() -> RewriteOptions {
    RewriteOptions {
        base_url: format!("{BASE}/"),
        open_tracking: true,
        click_tracking: true,
        initial_open: true,
        expires_unix: EXPIRES,
        subaccount: 0,
    }
}

// ---------------------------------------------------------------------------------------
// The HTML corpus

struct Case {
    name: &'static str,
    html: Vec<u8>,
    /// Click targets expected to be wrapped, in order, after entity decoding.
    wrapped: Vec<String>,
    /// Raw substrings that must survive unchanged (links that are not wrapped).
    kept: Vec<&'static str>,
    /// The charset label for the Content-Type.
    charset: &'static str,
    /// Expected link names, in order, for the wrapped links.
    names: Vec<Option<&'static str>>,
    /// Which wrapped links, in order, are marked `data-msys-unsubscribe="1"`.
    unsubscribes: Vec<bool>,
}

fn case(name: &'static str, html: &str, wrapped: &[&str], kept: &[&'static str]) -> Case {
    Case {
        name,
        html: html.as_bytes().to_vec(),
        wrapped: wrapped.iter().map(|s| s.to_string()).collect(),
        kept: kept.to_vec(),
        charset: "utf-8",
        names: vec![None; wrapped.len()],
        unsubscribes: vec![false; wrapped.len()],
    }
}

fn huge_case() -> Case {
    let mut html = String::from("<!DOCTYPE html><html><head><title>big</title></head><body>\n");
    let mut wrapped = Vec::new();
    let mut i = 0;
    while html.len() < 2 * 1024 * 1024 {
        let url = format!("https://shop.example.com/p/{i}?utm_source=news&utm_medium=email");
        html.push_str(&format!(
            "<p style=\"margin:0\">Item {i}: lorem ipsum dolor sit amet, consectetur adipiscing \
             elit, sed do eiusmod tempor incididunt <a href=\"{}\">see</a></p>\n",
            url.replace('&', "&amp;")
        ));
        if i % 50 == 0 {
            html.push_str("<a href=\"mailto:help@example.com\">help</a>\n");
        }
        wrapped.push(url);
        i += 1;
    }
    html.push_str("</body></html>\n");
    let n = wrapped.len();
    Case {
        name: "huge-2mb",
        html: html.into_bytes(),
        wrapped,
        kept: vec!["<a href=\"mailto:help@example.com\">"],
        charset: "utf-8",
        names: vec![None; n],
        unsubscribes: vec![false; n],
    }
}

fn corpus() -> Vec<Case> {
    let long_target = format!("https://example.com/{}", "x".repeat(5000));
    let long_html = format!(
        "<html><body><a href=\"{long_target}\">long</a><a href=\"https://example.com/short\">s</a></body></html>"
    );
    let mut cases = vec![
        case(
            "basic",
            "<html><head><title>Hi</title></head><body style=\"margin:0\">\n<p>Hello</p>\n\
             <a href=\"https://example.com/a?x=1&amp;y=2\">Shop</a>\n\
             <a href=\"mailto:sales@example.com\">mail</a> <a href=\"tel:+15551234\">call</a>\n\
             <a href=\"#top\">top</a> <a href=\"/relative/path\">rel</a> <a href=\"page.html\">rel2</a>\n\
             <a href=\"javascript:alert(1)\">js</a> <a href=\"ftp://example.com/f\">ftp</a> <a name=\"x\">anchor</a>\n\
             </body></html>\n",
            &["https://example.com/a?x=1&y=2"],
            &[
                "<a href=\"mailto:sales@example.com\">",
                "<a href=\"tel:+15551234\">",
                "<a href=\"#top\">",
                "<a href=\"/relative/path\">",
                "<a href=\"page.html\">",
                "<a href=\"javascript:alert(1)\">",
                "<a href=\"ftp://example.com/f\">",
                "<a name=\"x\">",
            ],
        ),
        case(
            "upper-case",
            "<HTML><BODY BGCOLOR=white><TABLE><TR><TD><A HREF=\"HTTP://EXAMPLE.COM/UP\">UP</A>\
             <IMG SRC=\"https://example.com/map.png\" USEMAP=\"#m\"><MAP NAME=\"m\">\
             <AREA SHAPE=rect COORDS=\"0,0,1,1\" HREF='https://example.com/area'>\
             <area shape=rect href=\"mailto:x@example.com\"></MAP></TD></TR></TABLE></BODY></HTML>",
            &["HTTP://EXAMPLE.COM/UP", "https://example.com/area"],
            &["<area shape=rect href=\"mailto:x@example.com\">", "<IMG SRC=\"https://example.com/map.png\""],
        ),
        case(
            "quoting",
            "<body>\n<a href='https://example.com/single'>1</a>\n<a href=https://example.com/unquoted?a=1&amp;b=2>2</a>\n\
             <a href=\"  \thttps://example.com/ws \n\">3</a>\n<a class=x href = \"HtTpS://Example.com/Mixed\" >4</a>\n</body>",
            &[
                "https://example.com/single",
                "https://example.com/unquoted?a=1&b=2",
                "https://example.com/ws",
                "HtTpS://Example.com/Mixed",
            ],
            &[],
        ),
        case(
            "entities",
            "<body><a href=\"https://example.com/?a=1&amp;b=2&#38;c=3&#x26;d=4&copy=5&amp;e=&lt;6&gt;&quot;\">e</a>\
             <a href=\"&#104;ttps://example.com/encoded-scheme\">s</a><a href=\"mailto:a&#64;example.com\">m</a></body>",
            &[
                "https://example.com/?a=1&b=2&c=3&d=4&copy=5&e=<6>\"",
                "https://example.com/encoded-scheme",
            ],
            &["<a href=\"mailto:a&#64;example.com\">"],
        ),
        case(
            "no-body",
            "<p>Hello <a href=\"https://example.com/nobody\">there</a></p>\n<p>bye</p>",
            &["https://example.com/nobody"],
            &[],
        ),
        case(
            "doctype-no-body",
            "<!DOCTYPE html>\n<html><head><title>t</title></head>\n<p><a href=\"https://example.com/d\">d</a></p></html>",
            &["https://example.com/d"],
            &[],
        ),
        case(
            "broken-markup",
            "<body><table><tr><td><a href=\"https://example.com/b1\">one<td><a href=\"https://example.com/b2\">two</table>\
             <p><b><i>misnested</b></i> <<< >>> & <<a href=\"https://example.com/b3\">x</a> <div></span></p>\
             <a href=\"https://example.com/b4\"><a href=\"https://example.com/b5\">nested</a></a>\
             <!-- <a href=\"https://example.com/comment\">c</a> --><script>var s='<a href=\"https://example.com/script\">';</script>",
            &[
                "https://example.com/b1",
                "https://example.com/b2",
                "https://example.com/b3",
                "https://example.com/b4",
                "https://example.com/b5",
            ],
            &[
                "<!-- <a href=\"https://example.com/comment\">c</a> -->",
                "var s='<a href=\"https://example.com/script\">';",
            ],
        ),
        // Only `data-msys-clicktrack="0"` keeps a link unwrapped; unsubscribe links are
        // wrapped like any other, and the marked one says so in its token.
        Case {
            unsubscribes: vec![false, false, false, true, false],
            ..case(
                "opt-outs",
                "<html><body>\n<a href=\"https://example.com/nt\" data-msys-clicktrack=\"0\">no track</a>\n\
                 <a data-msys-clicktrack=\"1\" href=\"https://example.com/t\">track</a>\n\
                 <a href=\"https://example.com/Unsubscribe?u=9\">leave</a>\n\
                 <a href=\"https://example.com/u2\"><span>Click to <b>UNSUBSCRIBE</b></span></a>\n\
                 <a href=\"https://example.com/u3\" data-msys-unsubscribe=\"1\">stop</a>\n\
                 <a href=\"https://example.com/after\">after</a>\n</body></html>",
                &[
                    "https://example.com/t",
                    "https://example.com/Unsubscribe?u=9",
                    "https://example.com/u2",
                    "https://example.com/u3",
                    "https://example.com/after",
                ],
                &["<a href=\"https://example.com/nt\">no track</a>"],
            )
        },
        Case {
            names: vec![Some("Buy & save"), None, Some("0123456789012345678901234567890123456789012345678901234567890ab")],
            ..case(
                "link-names",
                "<body><a data-msys-linkname=\"Buy &amp; save\" href=\"https://example.com/n1\">1</a>\
                 <a href=\"https://example.com/n2\" data-msys-linkname=\"\">2</a>\
                 <a href=\"https://example.com/n3\" data-msys-linkname=\"0123456789012345678901234567890123456789012345678901234567890abcdef\">3</a></body>",
                &["https://example.com/n1", "https://example.com/n2", "https://example.com/n3"],
                &[],
            )
        },
        case("long-target", &long_html, &["https://example.com/short"], &[]),
        Case {
            charset: "iso-8859-1",
            html: b"<html><body><p>Caf\xe9 cr\xe8me \xa9</p><a href=\"https://example.com/caf\xe9?q=\xe8\">caf\xe9</a></body></html>".to_vec(),
            ..case("latin1", "", &["https://example.com/caf\u{e9}?q=\u{e8}"], &[])
        },
        case(
            "empty-body-tag",
            "<html><body></body></html>",
            &[],
            &[],
        ),
    ];
    // `kept` for the long target is the long anchor itself.
    let leaked: &'static str = Box::leak(format!("<a href=\"{long_target}\">").into_boxed_str());
    cases
        .iter_mut()
        .find(|c| c.name == "long-target")
        .unwrap()
        .kept
        .push(leaked);
    cases.push(huge_case());
    cases
}

// ---------------------------------------------------------------------------------------
// Message construction and parsing

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Enc {
    Plain,
    Qp,
    B64,
}

impl Enc {
    fn header(self) -> &'static str {
        match self {
            Enc::Plain => "8bit",
            Enc::Qp => "quoted-printable",
            Enc::B64 => "base64",
        }
    }
}

enum Seg {
    Fixed(Vec<u8>),
    Html(Enc),
}

fn fixed(s: impl AsRef<[u8]>) -> Seg {
    Seg::Fixed(s.as_ref().to_vec())
}

fn qp_encode_simple(data: &[u8]) -> Vec<u8> {
    // Independent, naive encoder: escape everything questionable, soft-break at 73.
    let mut out = Vec::new();
    let mut col = 0;
    let mut i = 0;
    while i < data.len() {
        if data[i] == b'\r' && data.get(i + 1) == Some(&b'\n') {
            out.extend_from_slice(b"\r\n");
            col = 0;
            i += 2;
            continue;
        }
        let b = data[i];
        let piece = if (33..=126).contains(&b) && b != b'=' {
            vec![b]
        } else {
            format!("={b:02X}").into_bytes()
        };
        if col + piece.len() > 73 {
            out.extend_from_slice(b"=\r\n");
            col = 0;
        }
        col += piece.len();
        out.extend_from_slice(&piece);
        i += 1;
    }
    out
}

fn qp_decode_simple(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < data.len() {
        if data[i] == b'=' {
            if data[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            let hex = std::str::from_utf8(&data[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).expect("valid =XX escape"));
            i += 3;
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

fn encode(html: &[u8], enc: Enc) -> Vec<u8> {
    match enc {
        Enc::Plain => html.to_vec(),
        Enc::Qp => qp_encode_simple(html),
        Enc::B64 => {
            let s = STANDARD.encode(html);
            let mut out = Vec::new();
            for (i, c) in s.as_bytes().chunks(76).enumerate() {
                if i > 0 {
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(c);
            }
            out
        }
    }
}

fn decode(body: &[u8], enc: Enc) -> Vec<u8> {
    match enc {
        Enc::Plain => body.to_vec(),
        Enc::Qp => qp_decode_simple(body),
        Enc::B64 => {
            let clean: Vec<u8> = body
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            STANDARD.decode(clean).unwrap()
        }
    }
}

fn build(segs: &[Seg], html: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in segs {
        match s {
            Seg::Fixed(b) => out.extend_from_slice(b),
            Seg::Html(e) => out.extend_from_slice(&encode(html, *e)),
        }
    }
    out
}

/// Checks the fixed segments are intact and returns the rewritten (still encoded) HTML bodies.
fn split_output(out: &[u8], segs: &[Seg]) -> Vec<(Enc, Vec<u8>)> {
    let mut pos = 0;
    let mut bodies = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        match s {
            Seg::Fixed(b) => {
                assert!(
                    out[pos..].starts_with(b),
                    "fixed segment {i} changed: expected {:?}, found {:?}",
                    String::from_utf8_lossy(b),
                    String::from_utf8_lossy(&out[pos..(pos + b.len()).min(out.len())])
                );
                pos += b.len();
            }
            Seg::Html(e) => {
                let end = match segs.get(i + 1) {
                    // The last segment must be a suffix (the HTML may contain its bytes).
                    Some(Seg::Fixed(next)) if i + 2 == segs.len() => out.len() - next.len(),
                    Some(Seg::Fixed(next)) => {
                        pos + find(&out[pos..], next).expect("next fixed segment present")
                    }
                    _ => out.len(),
                };
                bodies.push((*e, out[pos..end].to_vec()));
                pos = end;
            }
        }
    }
    assert_eq!(pos, out.len(), "trailing bytes");
    bodies
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn check_line_lengths(body: &[u8], enc: Enc, name: &str) {
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let max = match enc {
            Enc::Plain => 998,
            Enc::Qp | Enc::B64 => 76,
        };
        assert!(
            line.len() <= max,
            "{name}/{enc:?}: line of {} octets",
            line.len()
        );
        if enc != Enc::Plain {
            assert!(
                line.iter().all(|&b| (32..=126).contains(&b) || b == b'\t'),
                "{name}/{enc:?}: non-ASCII in encoded line"
            );
        }
        if enc == Enc::Qp {
            assert!(
                !line.ends_with(b" ") && !line.ends_with(b"\t"),
                "{name}: trailing whitespace"
            );
        }
    }
}

/// Extracts `{BASE}/{kind}/{token}` tokens from HTML, in order.
fn tokens(html: &[u8], kind: &str) -> Vec<String> {
    let prefix = format!("{BASE}/{kind}/");
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = find(rest, prefix.as_bytes()) {
        rest = &rest[i + prefix.len()..];
        let n = rest
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-' || **b == b'_')
            .count();
        out.push(String::from_utf8(rest[..n].to_vec()).unwrap());
        rest = &rest[n..];
    }
    out
}

/// Checks one rewritten HTML body against its case. `first_link` is the expected
/// `link_index` of its first wrapped link.
fn check_html(html: &[u8], c: &Case, first_link: u32, pixels: bool, label: &str) {
    let keys = keys();
    // Clicks decode to exactly the original targets, in order, with message-wide indices.
    let clicks: Vec<_> = tokens(html, "c")
        .iter()
        .map(|t| {
            keys.verify(t, NOW)
                .unwrap_or_else(|e| panic!("{label}: {e}"))
        })
        .collect();
    let urls: Vec<_> = clicks.iter().map(|d| d.url.clone().unwrap()).collect();
    assert_eq!(urls, c.wrapped, "{label}: wrapped URLs");
    for (i, d) in clicks.iter().enumerate() {
        assert_eq!(
            d.action,
            Action::Click {
                link_index: first_link + i as u32
            },
            "{label}"
        );
        assert_eq!(d.message_id, MSG_ID);
        assert_eq!(d.recipient, RCPT);
        assert_eq!(d.expires_unix, EXPIRES);
        assert_eq!(d.link_name.as_deref(), c.names[i], "{label}: link name {i}");
        let unsubscribe = c.unsubscribes[i].then_some(opts().subaccount);
        assert_eq!(d.unsubscribe, unsubscribe, "{label}: unsubscribe {i}");
    }
    for k in &c.kept {
        assert!(find(html, k.as_bytes()).is_some(), "{label}: lost {k:?}");
    }
    assert!(
        find(html, b"data-msys-").is_none(),
        "{label}: data-msys-* left in output"
    );
    // Pixels: exactly one initial open (top) and one open (bottom).
    let opens: Vec<_> = tokens(html, "o")
        .iter()
        .map(|t| keys.verify(t, NOW).unwrap().action)
        .collect();
    if !pixels {
        assert!(opens.is_empty());
        return;
    }
    assert_eq!(
        opens,
        vec![Action::InitialOpen, Action::Open],
        "{label}: pixels"
    );
    let img = format!("<img src=\"{BASE}/o/");
    let first = find(html, img.as_bytes()).unwrap();
    let last = html.len()
        - find(
            &html.iter().rev().copied().collect::<Vec<_>>(),
            img.as_bytes()
                .iter()
                .rev()
                .copied()
                .collect::<Vec<_>>()
                .as_slice(),
        )
        .unwrap()
        - img.len();
    assert!(find(
        &html[last..],
        b" width=\"1\" height=\"1\" alt=\"\" style=\""
    )
    .is_some());
    let lower = html.to_ascii_lowercase();
    match find(&lower, b"<body") {
        Some(b) => {
            let gt = b + find(&lower[b..], b">").unwrap() + 1;
            assert!(
                html[gt..].starts_with(b"<div style=\"display:none"),
                "{label}: top pixel not right after <body>"
            );
            assert!(first > gt);
        }
        None => {
            let expected = if lower.starts_with(b"<!doctype") {
                find(&lower, b">").unwrap() + 1
            } else {
                0
            };
            assert!(
                html[expected..].starts_with(b"<div style=\"display:none"),
                "{label}: top pixel not at start"
            );
        }
    }
    match find(&lower, b"</body>") {
        Some(e) => {
            let tag_end = last + find(&html[last..], b">").unwrap() + 1;
            assert_eq!(tag_end, e, "{label}: bottom pixel not right before </body>");
        }
        None => {
            let tag_end = last + find(&html[last..], b">").unwrap() + 1;
            let trailing = html
                .iter()
                .rev()
                .take_while(|b| b.is_ascii_whitespace())
                .count();
            assert_eq!(
                tag_end,
                html.len() - trailing,
                "{label}: bottom pixel not at the end"
            );
        }
    }
    // The result still parses (strict mode: no parser ambiguity introduced).
    let mut rw = lol_html::HtmlRewriter::new(lol_html::Settings::new(), |_: &[u8]| {});
    rw.write(html).unwrap();
    rw.end().unwrap();
}

fn run(raw: &[u8]) -> Rewritten {
    rewrite_message(raw, MSG_ID, RCPT, &keys(), &opts()).unwrap()
}

// ---------------------------------------------------------------------------------------
// Tests

#[test]
fn single_part_corpus_in_every_encoding() {
    for c in corpus() {
        for enc in [Enc::Plain, Enc::Qp, Enc::B64] {
            let label = format!("{}/{enc:?}", c.name);
            let segs_for = |enc: Enc| {
                vec![
                    fixed(format!(
                        "Return-Path: <bounce@example.com>\r\nFrom: News <news@example.com>\r\nTo: {RCPT}\r\n\
                         Subject: =?utf-8?q?Caf=C3=A9?= test\r\nMIME-Version: 1.0\r\n\
                         Content-Type: text/html;\r\n\tcharset=\"{}\"\r\nContent-Transfer-Encoding: {}\r\n\r\n",
                        c.charset,
                        enc.header()
                    )),
                    Seg::Html(enc),
                    fixed("\r\n"),
                ]
            };
            let raw = build(&segs_for(enc), &c.html);
            let r = run(&raw);
            // An 8bit part whose lines end up longer than 998 octets becomes quoted-printable,
            // and only then.
            let switched = enc == Enc::Plain
                && find(&r.message, b"Content-Transfer-Encoding: quoted-printable").is_some();
            let enc = if switched { Enc::Qp } else { enc };
            let bodies = split_output(&r.message, &segs_for(enc));
            let (_, body) = &bodies[0];
            if switched {
                let decoded = decode(body, Enc::Qp);
                assert!(
                    decoded.split(|&b| b == b'\n').any(|l| l.len() > 998),
                    "{label}: needless switch"
                );
            }
            check_line_lengths(body, enc, &label);
            let html = decode(body, enc);
            check_html(&html, &c, 0, true, &label);
            assert_eq!(r.html_parts_rewritten, 1, "{label}");
            assert_eq!(r.links_wrapped as usize, c.wrapped.len(), "{label}");
            assert_eq!(r.pixels_added, 2, "{label}");
            // Nothing but the changes: removing the inserted pixels and restoring the hrefs
            // is not needed here; the byte-identical check covers everything outside.
        }
    }
}

#[test]
fn latin1_bytes_are_not_transcoded() {
    let c = corpus().into_iter().find(|c| c.name == "latin1").unwrap();
    let raw = [
        b"Content-Type: text/html; charset=iso-8859-1\r\n\r\n".as_slice(),
        &c.html,
    ]
    .concat();
    let r = run(&raw);
    assert!(find(&r.message, b"<p>Caf\xe9 cr\xe8me \xa9</p>").is_some());
    assert!(find(&r.message, b">caf\xe9</a>").is_some());
}

#[test]
fn multipart_alternative_text_untouched() {
    let c = corpus().into_iter().find(|c| c.name == "basic").unwrap();
    for enc in [Enc::Plain, Enc::Qp, Enc::B64] {
        let text = "Hello,\r\nvisit https://example.com/a?x=1&y=2 or write to sales@example.com\r\n<a href=\"https://example.com/not-html\">x</a>\r\n";
        let segs = vec![
            fixed(format!(
                "From: a@example.com\r\nTo: {RCPT}\r\nMIME-Version: 1.0\r\n\
                 Content-Type: multipart/alternative; boundary=\"=_alt_42\"\r\n\r\n\
                 This is a multi-part message in MIME format.\r\n\r\n--=_alt_42\r\n\
                 Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n{text}\r\n\
                 --=_alt_42\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: {}\r\n\r\n",
                enc.header()
            )),
            Seg::Html(enc),
            fixed("\r\n--=_alt_42--  \r\n\r\nepilogue text\r\n--=_alt_42\r\nnot a part\r\n"),
        ];
        let raw = build(&segs, &c.html);
        let r = run(&raw);
        let bodies = split_output(&r.message, &segs);
        check_line_lengths(&bodies[0].1, enc, "alt");
        check_html(&decode(&bodies[0].1, enc), &c, 0, true, "alt");
        assert_eq!(r.html_parts_rewritten, 1);
    }
}

#[test]
fn nested_mixed_alternative_related() {
    let basic = corpus().into_iter().find(|c| c.name == "basic").unwrap();
    let quoting = corpus().into_iter().find(|c| c.name == "quoting").unwrap();
    let png = STANDARD.encode([0x89u8, b'P', b'N', b'G', 0, 1, 2, 3]);
    // Two HTML parts (related > html in base64, plus a second inline html part in QP);
    // the same HTML is used for both to keep the builder simple.
    for (c, encs) in [
        (&basic, [Enc::B64, Enc::Qp]),
        (&quoting, [Enc::Qp, Enc::Plain]),
    ] {
        let segs = vec![
            fixed(format!(
                "Received: from x by y; Thu, 1 Jan 2026 00:00:00 +0000\r\nFrom: a@example.com\r\nTo: {RCPT}\r\n\
                 MIME-Version: 1.0\r\nContent-Type: multipart/mixed;\r\n boundary=\"outer\"\r\n\r\npreamble\r\n\
                 --outer\r\nContent-Type: multipart/alternative; boundary=alt\r\n\r\n\
                 --alt\r\nContent-Type: text/plain\r\n\r\nplain https://example.com/plain\r\n\
                 --alt\r\nContent-Type: multipart/related; boundary=\"rel\"; type=\"text/html\"\r\n\r\n\
                 --rel\r\nContent-Type: text/html; charset=\"UTF-8\"\r\nContent-Transfer-Encoding: {}\r\n\r\n",
                encs[0].header()
            )),
            Seg::Html(encs[0]),
            fixed(format!(
                "\r\n--rel\r\nContent-Type: image/png\r\nContent-ID: <logo>\r\nContent-Transfer-Encoding: base64\r\n\r\n{png}\r\n\
                 --rel--\r\n\r\n--alt--\r\n\r\n--outer\r\nContent-Type: text/html; charset=utf-8\r\n\
                 Content-Disposition: attachment; filename=\"page.html\"\r\n\r\n\
                 <html><body><a href=\"https://example.com/attachment\">a</a></body></html>\r\n\
                 --outer\r\nContent-Type: message/rfc822\r\n\r\nContent-Type: text/html\r\n\r\n\
                 <html><body><a href=\"https://example.com/forwarded\">f</a></body></html>\r\n\
                 --outer\r\nContent-Type: TEXT/HTML\r\nContent-Transfer-Encoding: {}\r\n\r\n",
                encs[1].header()
            )),
            Seg::Html(encs[1]),
            fixed("\r\n--outer--\r\n"),
        ];
        let raw = build(&segs, &c.html);
        let r = run(&raw);
        let bodies = split_output(&r.message, &segs);
        assert_eq!(bodies.len(), 2);
        assert_eq!(r.html_parts_rewritten, 2);
        assert_eq!(r.links_wrapped as usize, 2 * c.wrapped.len());
        assert_eq!(r.pixels_added, 4);
        for (i, (enc, body)) in bodies.iter().enumerate() {
            check_line_lengths(body, *enc, c.name);
            // link indices continue across parts
            check_html(
                &decode(body, *enc),
                c,
                (i * c.wrapped.len()) as u32,
                true,
                c.name,
            );
        }
    }
}

#[test]
fn lf_only_messages_keep_lf() {
    let raw = b"Content-Type: text/html\nContent-Transfer-Encoding: quoted-printable\n\n<html><body>=\n<a href=3D\"https://example.com/lf\">x</a></body></html>\n";
    let r = run(raw);
    assert!(!r.message.contains(&b'\r'));
    assert!(r
        .message
        .starts_with(b"Content-Type: text/html\nContent-Transfer-Encoding: quoted-printable\n\n"));
    assert_eq!(r.links_wrapped, 1);
    for line in r.message.split(|&b| b == b'\n') {
        assert!(line.len() <= 76);
    }
}

#[test]
fn long_8bit_line_switches_part_to_quoted_printable() {
    let filler = "x".repeat(900);
    for (headers, cte_count) in [
        (
            "Content-Type: text/html\r\nContent-Transfer-Encoding: 8bit\r\n",
            1,
        ),
        ("Content-Type: text/html\r\n", 0),
    ] {
        let html = format!(
            "<html><body><p>{filler}<a href=\"https://example.com/l\">l</a></p></body></html>"
        );
        let raw = format!("Subject: long\r\n{headers}\r\n{html}\r\n");
        let r = run(raw.as_bytes());
        let text = String::from_utf8(r.message.clone()).unwrap();
        assert_eq!(
            text.matches("Content-Transfer-Encoding").count(),
            1,
            "{text}"
        );
        assert!(
            text.contains("Content-Transfer-Encoding: quoted-printable\r\n\r\n"),
            "{cte_count}"
        );
        assert!(text.starts_with("Subject: long\r\nContent-Type: text/html\r\n"));
        let body = &r.message[text.find("\r\n\r\n").unwrap() + 4..];
        check_line_lengths(body, Enc::Qp, "long");
        let decoded = qp_decode_simple(body);
        assert!(find(&decoded, filler.as_bytes()).is_some());
        let t = tokens(&decoded, "c");
        assert_eq!(
            keys().verify(&t[0], NOW).unwrap().url.as_deref(),
            Some("https://example.com/l")
        );
    }
}

#[test]
fn options_select_what_is_added() {
    let raw = b"Content-Type: text/html\r\n\r\n<body><a href=\"https://example.com/x\" data-msys-linkname=\"n\">x</a></body>";
    let k = keys();
    let go = |o: RewriteOptions| rewrite_message(raw, MSG_ID, RCPT, &k, &o).unwrap();

    let none = go(RewriteOptions {
        open_tracking: false,
        click_tracking: false,
        ..opts()
    });
    assert_eq!(none.message, raw);
    assert_eq!(none.html_parts_rewritten, 0);

    let clicks = go(RewriteOptions {
        open_tracking: false,
        ..opts()
    });
    assert_eq!((clicks.links_wrapped, clicks.pixels_added), (1, 0));
    assert!(tokens(&clicks.message, "o").is_empty());

    let opens = go(RewriteOptions {
        click_tracking: false,
        ..opts()
    });
    assert_eq!((opens.links_wrapped, opens.pixels_added), (0, 2));
    assert!(find(&opens.message, b"<a href=\"https://example.com/x\">x</a>").is_some());

    let bottom_only = go(RewriteOptions {
        initial_open: false,
        ..opts()
    });
    assert_eq!(bottom_only.pixels_added, 1);
    let t = tokens(&bottom_only.message, "o");
    assert_eq!(k.verify(&t[0], NOW).unwrap().action, Action::Open);
    assert!(find(&bottom_only.message, b"display:none").is_none());
}

#[test]
fn messages_without_html_are_returned_unchanged() {
    let raws: [&[u8]; 4] = [
        b"Subject: plain\r\n\r\nhttps://example.com/ <a href=\"https://example.com\">x</a>\r\n",
        b"Subject: no body, no blank line\r\nContent-Type: text/html\r\n",
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\nno delimiter at all\r\n",
        b"",
    ];
    for raw in raws {
        let r = run(raw);
        assert_eq!(r.message, raw);
        assert_eq!(
            r,
            Rewritten {
                message: raw.to_vec(),
                ..Default::default()
            }
        );
    }
}

#[test]
fn undecodable_parts_are_skipped_not_broken() {
    let raw = b"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n@@not base64@@\r\n--b\r\nContent-Type: text/html; charset=utf-16le\r\n\r\n<\0b\0>\0\r\n--b\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n<b>\r\n--b--\r\n";
    let r = run(raw);
    assert_eq!(r.message, raw);
    assert_eq!(r.html_parts_skipped, 3);
    assert_eq!(r.html_parts_rewritten, 0);
}

#[test]
fn errors() {
    let raw = b"Content-Type: text/html\r\n\r\n<body></body>";
    let bad = RewriteOptions {
        base_url: "track.example.com".into(),
        ..opts()
    };
    assert!(matches!(
        rewrite_message(raw, MSG_ID, RCPT, &keys(), &bad),
        Err(RewriteError::InvalidBaseUrl(_))
    ));
    let mut deep = Vec::new();
    for i in 0..64 {
        deep.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n").as_bytes(),
        );
    }
    assert_eq!(
        rewrite_message(&deep, MSG_ID, RCPT, &keys(), &opts()),
        Err(RewriteError::NestingTooDeep)
    );
}

#[test]
fn tokens_from_a_rotated_key_set_still_verify() {
    let raw =
        b"Content-Type: text/html\r\n\r\n<body><a href=\"https://example.com/r\">r</a></body>";
    let old = keys();
    let r = rewrite_message(raw, MSG_ID, RCPT, &old, &opts()).unwrap();
    let mut rotated = keys();
    rotated
        .rotate(4, b"the-next-secret-abcdefghijklmnop")
        .unwrap();
    for t in tokens(&r.message, "c")
        .iter()
        .chain(tokens(&r.message, "o").iter())
    {
        assert!(rotated.verify(t, NOW).is_ok());
        assert!(rotated.verify(t, EXPIRES + 1).is_err());
    }
}

/// Every `http(s)` link is wrapped whatever its text or URL says ("Each HTML link is also
/// changed"); only `data-msys-unsubscribe="1"` makes a link an unsubscribe link, and its
/// token names the message's subaccount.
#[test]
fn every_link_is_wrapped_and_only_marked_ones_unsubscribe() {
    // (HTML, the links expected to be wrapped, which of them unsubscribe).
    let cases: &[(&str, &[&str], &[bool])] = &[
        (
            "<a href=\"https://example.com/u\"><span style=\"color:#999\">Unsubscribe</span></a> \
             <a href=\"https://example.com/ok\">Shop</a>",
            &["https://example.com/u", "https://example.com/ok"],
            &[false, false],
        ),
        (
            "<a href=\"https://example.com/Unsubscribe?u=1\">leave</a>",
            &["https://example.com/Unsubscribe?u=1"],
            &[false],
        ),
        (
            "<a href=\"https://example.com/ok\">Shop</a>\
             <a data-msys-unsubscribe=\"1\" href=\"https://example.com/unsub?u=77\">Unsubscribe</a>",
            &["https://example.com/ok", "https://example.com/unsub?u=77"],
            &[false, true],
        ),
        // Values other than 1 do not mark it; clicktrack="0" wins over the mark.
        (
            "<a data-msys-unsubscribe=\" 1 \" href=\"https://example.com/a\">a</a>\n\
             <a data-msys-unsubscribe=\"0\" href=\"https://example.com/b\">b</a>\n\
             <area data-msys-unsubscribe=1 href=https://example.com/c>\n\
             <a data-msys-unsubscribe=\"1\" data-msys-clicktrack=\"0\" href=\"https://example.com/d\">d</a>",
            &["https://example.com/a", "https://example.com/b", "https://example.com/c"],
            &[true, false, true],
        ),
        // Links in scripts are still not links.
        (
            "<script>document.write('<a href=\"https://example.com/s\">unsubscribe</a>')</script>\
             <a href=\"https://example.com/ok\">Shop</a>",
            &["https://example.com/ok"],
            &[false],
        ),
    ];
    let opts = RewriteOptions {
        subaccount: 42,
        ..opts()
    };
    for (html, wrapped, unsubscribes) in cases {
        let raw = format!(
            "Content-Type: text/html; charset=utf-8\r\n\r\n<html><body>{html}</body></html>"
        );
        let r = rewrite_message(raw.as_bytes(), MSG_ID, RCPT, &keys(), &opts).unwrap();
        let clicks: Vec<_> = tokens(&r.message, "c")
            .iter()
            .map(|t| keys().verify(t, NOW).unwrap())
            .collect();
        let urls: Vec<_> = clicks.iter().map(|d| d.url.clone().unwrap()).collect();
        assert_eq!(urls, *wrapped, "{html}");
        let marked: Vec<_> = clicks.iter().map(|d| d.unsubscribe).collect();
        let expected: Vec<_> = unsubscribes.iter().map(|u| u.then_some(42)).collect();
        assert_eq!(marked, expected, "{html}");
        assert!(find(&r.message, b"data-msys-").is_none(), "{html}");
    }
}
