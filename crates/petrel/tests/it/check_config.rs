//! `petrel check-config` on the article's configuration and on broken files.

use crate::common;

use std::process::Command;

use common::{petrel_bin, shared_dir, text};

fn check(path: &std::path::Path) -> std::process::Output {
    Command::new(petrel_bin())
        .arg("check-config")
        .arg(path)
        .output()
        .unwrap()
}

#[test]
fn the_seed_blog_config_is_accepted() {
    let out = check(&shared_dir().join("fixtures/seed-blog.conf"));
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("configuration OK"), "{}", text(&out));
    // Directives that later issues act on are listed, not silently ignored.
    assert!(stdout.contains("warning:"), "{}", text(&out));
    assert!(stdout.contains("engagement-tracking"), "{}", text(&out));
    // The article's file names no tracking host, so nothing is said about SparkPost's.
    assert!(!stdout.contains("spgo.io"), "{}", text(&out));
}

/// The article's tracking host, `pmta.eu.spgo.io`, decodes only SparkPost's links: the file is
/// accepted, with a warning at the line that says what to use instead.
#[test]
fn a_sparkpost_tracking_domain_is_warned_about() {
    let (ok, msg) = check_text(
        "<signals>\n  api-key 0123456789abcdef0123456789abcdef01234567\n  engagement-tracking sparkpost\n  tracking-domain pmta.eu.spgo.io\n</signals>\n",
    );
    assert!(ok, "{msg}");
    assert!(
        msg.contains("warning: ") && msg.contains("broken.conf:4: `tracking-domain pmta.eu.spgo.io` is one of SparkPost's tracking hosts"),
        "{msg}"
    );
    assert!(msg.contains("dead click"), "{msg}");
    assert!(
        msg.contains("a name of your own") && msg.contains("`tracking-listener`"),
        "{msg}"
    );
    assert!(msg.contains("configuration OK (1 warning(s))"), "{msg}");
}

#[test]
fn unfilled_placeholders_point_at_their_lines() {
    let path = shared_dir().join("fixtures/seed-blog-placeholders.conf");
    let out = check(&path);
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("seed-blog-placeholders.conf:12:"),
        "{}",
        text(&out)
    );
    assert!(
        stderr.contains("seed-blog-placeholders.conf:66:"),
        "{}",
        text(&out)
    );
    assert!(
        stderr.to_lowercase().contains("placeholder"),
        "{}",
        text(&out)
    );
}

fn check_text(body: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.conf");
    std::fs::write(&path, body).unwrap();
    let out = check(&path);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn unknown_directive_gets_file_line_and_a_suggestion() {
    let (ok, msg) = check_text("# comment\nsmtp-listner 127.0.0.1:25\n");
    assert!(!ok, "{msg}");
    assert!(msg.contains("broken.conf:2:"), "{msg}");
    assert!(msg.contains("smtp-listener"), "did-you-mean missing: {msg}");
}

#[test]
fn directive_in_the_wrong_section_is_named() {
    let (ok, msg) = check_text("<source 0/0>\n  max-smtp-out 20\n</source>\n");
    assert!(!ok, "{msg}");
    assert!(msg.contains("broken.conf:2:"), "{msg}");
    assert!(msg.contains("max-smtp-out"), "{msg}");
}

#[test]
fn bad_values_are_explained() {
    let (ok, msg) = check_text("<source 0/0>\n  smtp-service maybe\n</source>\n");
    assert!(!ok, "{msg}");
    assert!(
        msg.contains("broken.conf:2:") && msg.contains("maybe"),
        "{msg}"
    );

    let (ok, msg) = check_text("<domain *>\n  retry-after 10 minutes\n</domain>\n");
    assert!(!ok, "{msg}");
    assert!(msg.contains("broken.conf:2:"), "{msg}");
}

#[test]
fn missing_files_and_unclosed_sections_are_errors() {
    let (ok, msg) = check_text("smtp-server-tls-certificate /nonexistent/cert.pem\n");
    assert!(!ok, "{msg}");
    assert!(
        msg.contains("broken.conf:1:") && msg.contains("/nonexistent/cert.pem"),
        "{msg}"
    );

    let (ok, msg) = check_text("include missing-part.conf\n");
    assert!(!ok, "{msg}");
    assert!(msg.contains("missing-part.conf"), "{msg}");

    let (ok, msg) = check_text("<source 0/0>\n  smtp-service true\n");
    assert!(!ok, "{msg}");
    assert!(msg.contains("broken.conf"), "{msg}");
}

#[test]
fn tls_1_0_and_1_1_are_refused_with_a_reason() {
    for directive in [
        "smtp-server-tls-allow-tlsv1",
        "smtp-server-tls-allow-tlsv1.1",
    ] {
        let (ok, msg) = check_text(&format!("{directive} true\n"));
        assert!(!ok, "{directive}: {msg}");
        assert!(msg.contains("broken.conf:1:"), "{msg}");
        assert!(msg.contains("1.2") && msg.contains("1.3"), "{msg}");
    }
}

#[test]
fn relative_paths_resolve_against_the_including_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("conf.d")).unwrap();
    std::fs::copy(common::test_cert(), dir.path().join("conf.d/cert.pem")).unwrap();
    std::fs::write(
        dir.path().join("conf.d/tls.conf"),
        "smtp-server-tls-certificate cert.pem\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("main.conf"), "include conf.d/*.conf\n").unwrap();
    let out = check(&dir.path().join("main.conf"));
    assert!(out.status.success(), "{}", text(&out));
}
