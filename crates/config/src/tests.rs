//! Loader-level tests: fixtures, precedence, diagnostics, includes, fuzzing.

use crate::*;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
const KEY: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures")
        .join(name)
}

fn ok(text: &str) -> Loaded {
    match parse_str(text, Path::new("/virtual/petrel.conf")) {
        Ok(l) => l,
        Err(e) => panic!("unexpected errors:\n{e}"),
    }
}

fn cfg(text: &str) -> Config {
    ok(text).config
}

/// The errors of a config that must fail, as (line, message).
fn errs(text: &str) -> Vec<(usize, String)> {
    match parse_str(text, Path::new("/virtual/petrel.conf")) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e.errors.into_iter().map(|d| (d.line, d.message)).collect(),
    }
}

fn one_err(text: &str) -> (usize, String) {
    let e = errs(text);
    assert_eq!(e.len(), 1, "expected one error, got {e:?}");
    e.into_iter().next().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

// ------------------------------------------------------------------ fixtures

#[test]
fn seed_blog_loads_with_typed_values() {
    let l = match load(&fixture("seed-blog.conf")) {
        Ok(l) => l,
        Err(e) => panic!("seed failed:\n{e}"),
    };
    let c = &l.config;
    let addrs: Vec<SocketAddr> = c.listeners.iter().map(|l| l.addr).collect();
    assert_eq!(
        addrs,
        vec![
            "0.0.0.0:587".parse().unwrap(),
            "0.0.0.0:25".parse().unwrap()
        ]
    );

    let p = c.source_for_ip(ip("203.0.113.9"));
    assert!(p.smtp_service);
    assert!(p.allow_starttls);
    assert!(!p.allow_unencrypted_plain_auth);
    assert!(!p.log_commands);
    assert_eq!(p.rewrite_list.as_deref(), Some("mfrom"));
    assert_eq!(
        p.smtp_max_auth_failure_rate,
        Some(Rate {
            count: 1,
            window: secs(60)
        })
    );
    assert!(!p.always_allow_relaying);
    assert!(!p.process_x_job);

    let a = c.source_after_auth(&p, "SMTP_Injection");
    assert!(a.always_allow_relaying);
    assert_eq!(a.default_virtual_mta.as_deref(), Some("default"));
    assert!(a.process_x_job);
    assert!(a.allow_starttls, "IP-derived settings survive the overlay");

    assert_eq!(
        c.check_smtp_password("SMTP_Injection", "correct-horse-battery-staple"),
        Some(None)
    );
    assert_eq!(
        c.check_smtp_password("SMTP_Injection", "correct-horse-battery-stapl"),
        None
    );
    assert_eq!(c.check_smtp_password("nobody", "x"), None);
    assert_eq!(
        c.rewrite_mail_from("mfrom", "a@pmta.signalsdemo.trymsys.net")
            .as_deref(),
        Some("a@bounces.pmta.signalsdemo.trymsys.net")
    );
    assert!(c.virtual_mta_exists("mta1") && !c.virtual_mta_exists("mta2"));
    assert_eq!(c.listeners().len(), 2);
    assert_eq!(c.spool_dir(), fixture("var/spool"));
    assert_eq!(c.spool_min_free_space(), 0);
    let u = c.smtp_user("SMTP_Injection").unwrap();
    assert_eq!(u.password, "correct-horse-battery-staple");
    assert!(c.smtp_user("smtp_injection").is_none());

    let tls = &c.server_tls;
    assert_eq!(
        tls.certificate.as_ref().unwrap().path,
        fixture("pmtasignalsdemo.pem")
    );
    assert!(tls.allow_tlsv1_2 && tls.allow_tlsv1_3);
    assert!(!tls.allow_tlsv1 && !tls.allow_tlsv1_1 && !tls.allow_sslv3);

    let rw = c.rewrite_list("mfrom").unwrap();
    assert_eq!(
        rw.rewrite_mail_from("alice@pmta.signalsdemo.trymsys.net")
            .as_deref(),
        Some("alice@bounces.pmta.signalsdemo.trymsys.net")
    );
    assert!(c.is_relay_domain("bounces.pmta.signalsdemo.trymsys.net"));
    assert!(c.is_relay_domain("FBL.pmta.signalsdemo.trymsys.net"));
    assert!(!c.is_relay_domain("gmail.com"));

    assert_eq!(c.domain_keys.len(), 1);
    assert_eq!(c.domain_keys[0].selector, "mypmta");
    assert_eq!(
        c.domain_keys[0].key_file,
        fixture("mypmta.pmta.signalsdemo.trymsys.net.pem")
    );

    let bp = c.bounce_processor.as_ref().unwrap();
    assert!(!bp.deliver_unmatched_email && !bp.deliver_matched_email);
    assert_eq!(
        bp.address_list.domains,
        vec![
            "pmta.signalsdemo.trymsys.net",
            "bounces.pmta.signalsdemo.trymsys.net"
        ]
    );
    let fbl = c.feedback_loop_processor.as_ref().unwrap();
    assert_eq!(
        fbl.address_list.domains,
        vec!["fbl.pmta.signalsdemo.trymsys.net"]
    );

    let sig = c.signals.as_ref().unwrap();
    assert_eq!(sig.api_key, "0123456789abcdef0123456789abcdef01234567");
    assert_eq!(sig.min_free_space, 1 << 30);
    assert_eq!(sig.engagement_tracking, EngagementTracking::Sparkpost);
    assert_eq!(sig.customer_id, Some(123));
    assert!(sig.log_verbose);
    assert_eq!(
        c.enable_signals,
        EnableSignals::Enabled { subaccount: None }
    );

    let v = c.virtual_mta("mta1").unwrap();
    assert_eq!(
        v.smtp_source_hosts[0].addr,
        SourceAddr::Ip(ip("172.31.25.101"))
    );
    assert_eq!(c.pool("default").unwrap().members, vec!["mta1"]);
    assert!(c.is_selectable_vmta("default") && c.is_selectable_vmta("{default}"));

    let d = c.domain_settings("gmail.com", "mta1");
    assert_eq!(d.max_smtp_out, 20);
    assert_eq!(d.bounce_after, secs(4 * 86400 + 12 * 3600));
    assert_eq!(d.retry_after, vec![secs(600)]);
    assert_eq!(d.dkim_sign, DkimSign::Yes);
    assert!(d.use_starttls);
    assert_eq!(d.max_rcpt_per_transaction, 1000);
    // the {default} queue does not see the pool's <domain *>
    assert_eq!(
        c.domain_settings("gmail.com", "{default}").dkim_sign,
        DkimSign::No
    );

    assert_eq!(c.http_mgmt_port, 8080);
    assert_eq!(c.spool_dirs().len(), 1);
    assert_eq!(c.spool_dirs()[0].path, fixture("var/spool"));
    assert!(!c.host_name.is_empty());

    // planned directives warn, active ones do not
    let warned: Vec<usize> = l.warnings.iter().map(|w| w.line).collect();
    // Engagement tracking warns that it has nowhere to point (SparkPost's tracking host is
    // not petrel's); Signals, the bounce and feedback-loop processors, DKIM keys, delivery
    // settings, the listener and the users are acted on.
    assert!(warned.contains(&16));
    for active in [
        12, 13, 14, 15, 17, 19, 24, 33, 66, 73, 82, 83, 84, 85, 86, 87, 91, 92, 93, 94, 95, 111,
        112,
    ] {
        assert!(
            !warned.contains(&active),
            "line {active} warned: {warned:?}"
        );
    }
    assert!(l.warnings[0].to_string().contains(
        ":16: `engagement-tracking sparkpost` has no `tracking-domain` or `tracking-listener`"
    ));
    assert_eq!(sig.event_dir, PathBuf::from("/var/lib/petrel/signals"));
    assert_eq!(sig.upload_interval, secs(10));
    assert!(sig.upload);
    assert_eq!(c.signals_service, None);
    assert_eq!(
        c.signals_scope("mta1", Some("default"), Some("x.com")),
        Some(0)
    );
    assert_eq!(c.signals_scope("{default}", None, None), Some(0));
}

#[test]
fn placeholder_fixture_fails_at_12_and_66() {
    let e = load(&fixture("seed-blog-placeholders.conf")).unwrap_err();
    let lines: Vec<usize> = e.errors.iter().map(|d| d.line).collect();
    assert_eq!(lines, vec![12, 66], "{e}");
    for d in &e.errors {
        assert!(d.message.contains("placeholder value left unfilled"), "{d}");
        assert!(d.file.ends_with("seed-blog-placeholders.conf"));
    }
    let shown = e.to_string();
    assert!(
        shown.contains("seed-blog-placeholders.conf:12: placeholder value left unfilled"),
        "{shown}"
    );
}

#[test]
fn missing_main_file() {
    let e = load(Path::new("/definitely/not/here.conf")).unwrap_err();
    assert_eq!(e.errors[0].line, 0);
    assert!(e
        .to_string()
        .starts_with("/definitely/not/here.conf: cannot read"));
}

// ------------------------------------------------------------------ syntax

#[test]
fn comments_quotes_and_case() {
    let c = cfg(r#"
# comment
POSTMASTER ops@example.com   # trailing
Host-Name "mx.example.com"
<Source 0/0>
  Smtp-Service YES
  jobid-prefix "{auth}"
</SOURCE>
<domain *>
  remove-header "X-One, X-Two"
</domain>
<domain example.com>
  remove-header ""
</domain>
"#);
    assert_eq!(c.postmaster, vec!["ops@example.com"]);
    assert_eq!(c.host_name, vec!["mx.example.com"]);
    assert_eq!(
        c.source_for_ip(ip("1.1.1.1")).jobid_prefix.as_deref(),
        Some("{auth}")
    );
    assert_eq!(
        c.domain_settings("other.com", "{default}").remove_header,
        vec!["X-One", "X-Two"]
    );
    assert!(
        c.domain_settings("example.com", "{default}")
            .remove_header
            .is_empty(),
        "\"\" clears"
    );
}

#[test]
fn quoted_escapes_in_values() {
    let c = cfg(r#"
<smtp-user u>
  password "pa ss\"wo\\rd"
</smtp-user>
"#);
    assert_eq!(c.smtp_user("u").unwrap().password, r#"pa ss"wo\rd"#);
}

#[test]
fn section_structure_errors() {
    let (l, m) = one_err("<source 0/0>\nsmtp-service yes\n");
    assert_eq!(l, 1);
    assert!(m.contains("never closed"), "{m}");
    let e = errs("<virtual-mta a>\n</virtual-mta b>\n");
    assert_eq!(e[0].0, 2);
    assert!(e[0].1.contains("does not match"));
    let e = errs("</domain>\n");
    assert_eq!(e[0].0, 1);
    let (l, m) = one_err("<source 0/0>\n<domain *>\n</domain>\n</source>\n");
    assert_eq!(l, 2);
    assert!(m.contains("`<domain>` is not allowed in <source>"), "{m}");
    let (l, m) = one_err("\n<sourse 0/0>\n</sourse>\n");
    assert_eq!(l, 2);
    assert!(m.contains("did you mean `<source>`?"), "{m}");
    let (_, m) = one_err("<source>\n</source>\n");
    assert!(m.contains("argument missing"), "{m}");
    let (_, m) =
        one_err("<signals x>\napi-key 0123456789abcdef0123456789abcdef01234567\n</signals>\n");
    assert!(m.contains("takes no argument"), "{m}");
    let (_, m) = one_err("<transmissions-api>\n</transmissions-api>\n");
    assert!(m.contains("not supported"), "{m}");
}

// ------------------------------------------------------------------ diagnostics

#[test]
fn unknown_directive_suggests() {
    let (l, m) = one_err("\n\n<source 0/0>\n  smtp-servise yes\n</source>\n");
    assert_eq!(l, 4);
    assert_eq!(
        m,
        "unknown directive `smtp-servise` in <source>; did you mean `smtp-service`?"
    );
    let (_, m) = one_err("http-mgmt-prot 8080\n");
    assert!(m.ends_with("did you mean `http-mgmt-port`?"), "{m}");
    let (_, m) = one_err("frobnicate yes\n");
    assert_eq!(m, "unknown directive `frobnicate` in global level");
}

#[test]
fn wrong_section_names_the_right_ones() {
    let (l, m) = one_err("<source 0/0>\n max-smtp-out 20\n</source>\n");
    assert_eq!(l, 2);
    assert!(
        m.starts_with("`max-smtp-out` is not allowed in <source>; it belongs in "),
        "{m}"
    );
    assert!(m.contains("<domain>") && m.contains("<virtual-mta>"), "{m}");
    let (_, m) = one_err("smtp-service yes\n");
    assert!(m.contains("belongs in <source>"), "{m}");
}

#[test]
fn bad_values() {
    let (l, m) = one_err("<source 0/0>\nsmtp-service maybe\n</source>\n");
    assert_eq!(l, 2);
    assert_eq!(
        m,
        "`smtp-service`: `maybe` is not a boolean (yes/no/true/false)"
    );
    let (_, m) = one_err("<source 0/0>\nsmtp-max-auth-failure-rate 5/fortnight\n</source>\n");
    assert!(m.contains("is not a rate"), "{m}");
    let (_, m) = one_err("<domain *>\nretry-after 10m,soon\n</domain>\n");
    assert!(m.contains("not a time interval"), "{m}");
    let (_, m) = one_err("<domain *>\nqueue-priority 101\n</domain>\n");
    assert!(m.contains("out of range"), "{m}");
    let (_, m) = one_err("http-mgmt-port 99999\n");
    assert!(m.contains("not a port"), "{m}");
    let (_, m) = one_err("<source 0/0>\nmax-message-size huge\n</source>\n");
    assert!(m.contains("not a size"), "{m}");
    let (_, m) = one_err("relay-domain bad..domain\n");
    assert!(m.contains("not a domain pattern"), "{m}");
    let (_, m) = one_err("<source 0/0>\nsmtp-service yes no\n</source>\n");
    assert!(m.contains("single value"), "{m}");
}

#[test]
fn missing_argument() {
    let (l, m) = one_err("postmaster\n");
    assert_eq!(l, 1);
    assert_eq!(m, "`postmaster`: argument missing");
    let (_, m) = one_err("<source 0/0>\nallow-starttls   # nothing\n</source>\n");
    assert_eq!(m, "`allow-starttls`: argument missing");
}

#[test]
fn errors_are_collected_in_one_pass() {
    let e = errs("frobnicate 1\n<source 0/0>\nsmtp-service maybe\nrewrite-list nope\n</source>\nhttp-mgmt-port x\n");
    let lines: Vec<usize> = e.iter().map(|x| x.0).collect();
    assert_eq!(lines, vec![1, 3, 4, 6], "{e:?}");
}

#[test]
fn placeholders_anywhere() {
    let (l, m) = one_err("postmaster ##your address##\n");
    assert_eq!(l, 1);
    assert!(m.contains("placeholder value left unfilled"));
    let (_, m) = one_err("<smtp-user u>\npassword \"##x##\"\n</smtp-user>\n");
    assert!(m.contains("placeholder"), "{m}");
}

#[test]
fn error_display_format() {
    let e = parse_str("bogus 1\n", Path::new("/etc/petrel/petrel.conf")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "/etc/petrel/petrel.conf:1: unknown directive `bogus` in global level"
    );
}

#[test]
fn planned_and_deprecated_warnings() {
    let l = ok("<domain *>\nmax-errors-per-connection 5\nmax-msg-per-hour 100\n</domain>\nspool /var/spool/old\n<mx-rollup-list>\nmx *.x y.rollup\n</mx-rollup-list>\n");
    let w: Vec<String> = l.warnings.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        w[0],
        "/virtual/petrel.conf:2: `max-errors-per-connection` is accepted but not acted on yet (planned)"
    );
    assert!(
        w[1].contains(":3: `max-msg-per-hour` is deprecated, use `max-msg-rate`"),
        "{w:?}"
    );
    assert!(
        w[2].contains(":5: `spool` is deprecated, use <spool DIR>"),
        "{w:?}"
    );
    assert!(
        w[3].contains(":6: `<mx-rollup-list>` is accepted but not acted on yet"),
        "{w:?}"
    );
    assert_eq!(
        l.config.spool_dirs()[0].path,
        PathBuf::from("/var/spool/old")
    );
}

// ------------------------------------------------------------------ TLS, users, files

#[test]
fn old_tls_versions_are_refused() {
    for v in ["sslv3", "tlsv1", "tlsv1.1"] {
        let (l, m) = one_err(&format!("\nsmtp-server-tls-allow-{v} true\n"));
        assert_eq!(l, 2);
        assert!(m.contains("supports only TLS 1.2 and TLS 1.3"), "{m}");
        ok(&format!("smtp-server-tls-allow-{v} false\n"));
    }
    let (_, m) = one_err("smtp-server-tls-allow-tlsv1.2 no\nsmtp-server-tls-allow-tlsv1.3 no\n");
    assert!(m.contains("no TLS version is left"), "{m}");
    let c = cfg("smtp-server-tls-allow-tlsv1.3 false\n");
    assert!(!c.server_tls.allow_tlsv1_3 && c.server_tls.allow_tlsv1_2);
}

#[test]
fn certificate_checks() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("petrel.conf");
    std::fs::write(dir.path().join("good.pem"), PEM).unwrap();
    std::fs::write(
        dir.path().join("nokey.pem"),
        "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("nocert.pem"), KEY).unwrap();

    let c = parse_str("smtp-server-tls-certificate good.pem secret\n", &conf)
        .unwrap()
        .config;
    let cert = c.server_tls.certificate.as_ref().unwrap();
    assert_eq!(cert.path, dir.path().join("good.pem"));
    assert_eq!(cert.password.as_deref(), Some("secret"));

    let e = parse_str("smtp-server-tls-certificate missing.pem\n", &conf).unwrap_err();
    let m = &e.errors[0].message;
    assert!(
        m.contains(&dir.path().join("missing.pem").display().to_string()),
        "{m}"
    );
    let e = parse_str("smtp-server-tls-certificate nokey.pem\n", &conf).unwrap_err();
    assert!(e.errors[0].message.contains("no private key block"), "{e}");
    let e = parse_str("smtp-server-tls-certificate nocert.pem\n", &conf).unwrap_err();
    assert!(e.errors[0].message.contains("BEGIN CERTIFICATE"), "{e}");
}

#[test]
fn domain_key_checks() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("petrel.conf");
    let real = std::fs::read(fixture("mypmta.pmta.signalsdemo.trymsys.net.pem")).unwrap();
    std::fs::write(dir.path().join("k.pem"), real).unwrap();
    let loaded = parse_str(
        "domain-key s1, example.com, k.pem\ndomain-key s2,*,k.pem\n",
        &conf,
    )
    .unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = loaded.config;
    assert_eq!(
        c.domain_keys[0].domain,
        KeyDomain::Name("example.com".into())
    );
    assert_eq!(c.domain_keys[1].domain, KeyDomain::Any);
    assert_eq!(c.domain_keys[1].key_file, dir.path().join("k.pem"));
    let e = parse_str("\ndomain-key s1,example.com,nope.pem\n", &conf).unwrap_err();
    assert_eq!(e.errors[0].line, 2);
    assert!(e.errors[0]
        .message
        .contains(&dir.path().join("nope.pem").display().to_string()));
    let e = parse_str("domain-key s1 example.com k.pem\n", &conf).unwrap_err();
    assert!(e.errors[0].message.contains("SELECTOR,DOMAIN,KEYFILE"));
}

/// The key file is parsed at load as the signer will parse it: what petrel cannot sign with
/// is an error (never mail sent unsigned later); a 1024-bit RSA key signs, with a warning.
#[test]
fn domain_key_files_are_parsed_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("petrel.conf");
    let dkim_fixture = |name: &str| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../dkim/tests/fixtures")
            .join(name)
    };
    std::fs::write(dir.path().join("fake.pem"), KEY).unwrap();
    let e = parse_str("\n\ndomain-key s1,example.com,fake.pem\n", &conf).unwrap_err();
    assert_eq!(e.errors[0].line, 3);
    assert!(e.errors[0].message.contains("fake.pem"), "{e}");
    assert!(e.errors[0].message.contains("malformed key"), "{e}");

    let text = format!(
        "domain-key tiny,example.com,{}\n",
        dkim_fixture("rsa512.pem").display()
    );
    let e = parse_str(&text, &conf).unwrap_err();
    assert!(
        e.errors[0].message.contains("shorter than 1024 bits"),
        "{e}"
    );

    let text = format!(
        "domain-key ec,example.com,{}\n",
        dkim_fixture("ec-p256.pem").display()
    );
    let e = parse_str(&text, &conf).unwrap_err();
    assert!(e.errors[0].message.contains("unsupported key type"), "{e}");

    let text = format!(
        "\ndomain-key old,example.com,{}\n",
        dkim_fixture("rsa1024.pem").display()
    );
    let loaded = parse_str(&text, &conf).unwrap();
    assert_eq!(loaded.config.domain_keys.len(), 1);
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    let w = &loaded.warnings[0];
    assert_eq!(w.line, 2);
    assert!(
        w.message.contains("1024-bit RSA key") && w.message.contains("recommends 2048"),
        "{w}"
    );
}

#[test]
fn smtp_users() {
    let c = cfg("<source relayers>\nalways-allow-relaying yes\n</source>\n<smtp-user a>\npassword pw\nsource relayers\n</smtp-user>\n<smtp-user b>\npassword pw2\nauthentication-method password\n</smtp-user>\n");
    assert_eq!(
        c.smtp_user("a").unwrap().source.as_deref(),
        Some("relayers")
    );
    let base = c.source_for_ip(ip("1.2.3.4"));
    assert!(c.source_after_auth(&base, "a").always_allow_relaying);
    assert!(
        !c.source_after_auth(&base, "b").always_allow_relaying,
        "no {{auth}} block"
    );
    let (l, m) = one_err("<smtp-user a>\npassword x\nauthentication-method system\n</smtp-user>\n");
    assert_eq!(l, 3);
    assert!(m.contains("not supported"), "{m}");
    let (_, m) =
        one_err("<smtp-user a>\npassword x\nauthentication-method certificate\n</smtp-user>\n");
    assert!(m.contains("not supported"), "{m}");
    let (l, m) = one_err("<smtp-user a>\n</smtp-user>\n");
    assert_eq!(l, 1);
    assert!(m.contains("no `password`"));
    let (l, m) = one_err("<smtp-user a>\npassword x\nsource ghost\n</smtp-user>\n");
    assert_eq!(l, 3);
    assert!(m.contains("named <source>"), "{m}");
}

// ------------------------------------------------------------------ sources

#[test]
fn source_cidr_most_specific_merge() {
    // deliberately specific-first in the file: order must not matter
    let c = cfg("
<source 10.1/16>
  log-data yes
</source>
<source 10/8>
  log-commands yes
  log-data no
  require-auth yes
</source>
<source 0/0>
  log-connections yes
  log-commands no
  max-message-size 10M
</source>
<source 10.1.2.3>
  smtp-service no
</source>
");
    let p = c.source_for_ip(ip("10.1.2.4"));
    assert!(p.log_connections && p.log_commands && p.log_data && p.require_auth && p.smtp_service);
    assert_eq!(p.max_message_size, Some(10 << 20));
    let p = c.source_for_ip(ip("10.2.0.1"));
    assert!(p.log_connections && p.log_commands && !p.log_data);
    let p = c.source_for_ip(ip("11.0.0.1"));
    assert!(p.log_connections && !p.log_commands && !p.require_auth);
    let p = c.source_for_ip(ip("10.1.2.3"));
    assert!(!p.smtp_service && p.log_data);
    // IPv4-mapped IPv6
    assert!(c.source_for_ip(ip("::ffff:10.1.2.3")).log_data);
    // 0/0 also covers IPv6 clients
    let p = c.source_for_ip(ip("2001:db8::1"));
    assert!(p.log_connections && !p.log_commands);
}

#[test]
fn source_defaults_without_blocks() {
    let c = cfg("");
    let p = c.source_for_ip(ip("192.0.2.1"));
    assert_eq!(p, SourcePolicy::default());
    assert!(
        p.smtp_service
            && p.allow_auth
            && p.add_received_header
            && p.allow_smtputf8
            && p.allow_chunking
    );
    assert!(!p.always_allow_relaying && !p.require_auth && !p.allow_starttls);
    assert_eq!(p.smtp_command_timeout, secs(600));
    assert_eq!(p.smtp_data_timeout, secs(600));
    assert_eq!(p.max_message_hops, 100);
    assert_eq!(p.smtp_max_auth_failure_rate, None);
    assert_eq!(p.max_message_size, None);
    assert_eq!(p.max_rcpt_per_message, None);
    let l = &c.listeners[0];
    assert_eq!(l.addr, "0.0.0.0:25".parse().unwrap());
    assert_eq!(l.origin.line, 0);
    assert_eq!(c.total_max_smtp_in, 100);
    assert_eq!(c.enable_signals, EnableSignals::Disabled);
    assert_eq!(c.spool_dirs()[0].path, PathBuf::from("/virtual/var/spool"));
}

#[test]
fn global_level_source_settings_are_the_base() {
    let c = cfg("max-message-size 5M\n<source 10/8>\nmax-message-size unlimited\n</source>\n");
    assert_eq!(
        c.source_for_ip(ip("1.1.1.1")).max_message_size,
        Some(5 << 20)
    );
    assert_eq!(c.source_for_ip(ip("10.0.0.1")).max_message_size, None);
}

#[test]
fn named_source_overlay_and_listeners() {
    let c = cfg("
smtp-listener 127.0.0.1:2525 source=internal
smtp-listener [::1]:2526
<smtp-listener 0/0:587>
  source submission
</smtp-listener>
<source 0/0>
  require-auth yes
  log-commands yes
</source>
<source internal>
  always-allow-relaying yes
  require-auth no
</source>
<source submission>
  require-starttls-before-auth yes
</source>
<source {auth}>
  max-rcpt-per-message 50
</source>
");
    assert_eq!(c.listeners[0].source.as_deref(), Some("internal"));
    assert_eq!(c.listeners[1].addr, "[::1]:2526".parse().unwrap());
    assert_eq!(c.listeners[2].addr, "0.0.0.0:587".parse().unwrap());
    assert_eq!(c.listeners[2].source.as_deref(), Some("submission"));
    let base = c.source_for_ip(ip("127.0.0.1"));
    assert!(base.require_auth);
    let p = c.source_with_named(&base, "internal");
    assert!(p.always_allow_relaying && !p.require_auth && p.log_commands);
    let p = c.source_with_named(&base, "{auth}");
    assert_eq!(p.max_rcpt_per_message, Some(50));
    assert!(p.require_auth);
    assert_eq!(c.source_with_named(&base, "unknown"), base);
    assert!(c.source_with_named(&base, "INTERNAL").always_allow_relaying);
    assert!(c.has_named_source("{auth}"));
}

#[test]
fn listener_forms() {
    let l = ok("smtp-listener ::1:2525\n");
    assert_eq!(l.config.listeners[0].addr, "[::1]:2525".parse().unwrap());
    assert!(
        l.warnings[0].message.contains("[::1]:2525"),
        "{:?}",
        l.warnings
    );
    let (_, m) = one_err("smtp-listener 0.0.0.0\n");
    assert!(m.contains("no port"), "{m}");
    let (_, m) = one_err("smtp-listener 0.0.0.0:0\n");
    assert!(m.contains("invalid port"), "{m}");
    let (_, m) = one_err("smtp-listener 10/8:25\n");
    assert!(m.contains("network range"), "{m}");
    let (_, m) = one_err("smtp-listener 0.0.0.0:25 sauce=x\n");
    assert!(m.contains("source=NAME"), "{m}");
    let (l, m) = one_err("\nsmtp-listener 0.0.0.0:25 source=ghost\n");
    assert_eq!(l, 2);
    assert!(m.contains("no named <source> named `ghost`"), "{m}");
    let (_, m) = one_err("<source 10.0.0.300/8>\n</source>\n");
    assert!(m.contains("not an IP address or network"), "{m}");
}

// ------------------------------------------------------------------ relay & rewrite

#[test]
fn relay_domains_and_host_names() {
    let c = cfg("host-name mx.example.com\nrelay-domain [*.]example.org\nrelay-domain *.sub.example.net\nrelay-domain exact.example\n");
    assert!(c.is_relay_domain("mx.example.com"));
    assert!(c.is_relay_domain("MX.Example.com."));
    assert!(c.is_relay_domain("example.org"));
    assert!(c.is_relay_domain("a.b.example.org"));
    assert!(!c.is_relay_domain("sub.example.net"));
    assert!(c.is_relay_domain("x.sub.example.net"));
    assert!(c.is_relay_domain("exact.example"));
    assert!(!c.is_relay_domain("example.com"));
    assert_eq!(c.primary_host_name(), "mx.example.com");
}

#[test]
fn rewrite_rules() {
    let c = cfg("
<rewrite-list r>
  mail-from <> bounces@example.com
  mail-from alice@old.example bob@new.example
  mail-from carol@* dave@*
  mail-from *@old.example *@new.example
  mail-from *@* fallback@example.com
  from-domain [*.]old.example new.example
</rewrite-list>
<source 0/0>
  rewrite-list R
</source>
");
    let r = c.rewrite_list("r").unwrap();
    assert_eq!(r.rules.len(), 6);
    assert_eq!(
        r.rewrite_mail_from("").as_deref(),
        Some("bounces@example.com")
    );
    assert_eq!(
        r.rewrite_mail_from("Alice@OLD.example").as_deref(),
        Some("bob@new.example")
    );
    assert_eq!(
        r.rewrite_mail_from("carol@any.where").as_deref(),
        Some("dave@any.where")
    );
    assert_eq!(
        r.rewrite_mail_from("zed@old.example").as_deref(),
        Some("zed@new.example")
    );
    assert_eq!(
        r.rewrite_mail_from("x@y.z").as_deref(),
        Some("fallback@example.com")
    );
    let r2 = cfg("<rewrite-list r>\nmail-from a@b.c <>\n</rewrite-list>\n");
    assert_eq!(
        r2.rewrite_list("r")
            .unwrap()
            .rewrite_mail_from("a@b.c")
            .as_deref(),
        Some("")
    );
    assert_eq!(
        r2.rewrite_list("r").unwrap().rewrite_mail_from("q@b.c"),
        None
    );

    for bad in [
        "<> *@x.com",
        "<> a@*",
        "a@x *@*",
        "a b@c",
        "a@x.com bø@x.com",
        "@x a@b",
    ] {
        let (l, m) = one_err(&format!(
            "<rewrite-list r>\nmail-from {bad}\n</rewrite-list>\n"
        ));
        assert_eq!(l, 2, "{bad}");
        assert!(m.starts_with("`mail-from`"), "{bad}: {m}");
    }
    let (_, m) = one_err("<rewrite-list r>\nmail-from a@b.c\n</rewrite-list>\n");
    assert!(m.contains("source and a target"), "{m}");
    let (l, m) = one_err("<source 0/0>\nrewrite-list missing\n</source>\n");
    assert_eq!(l, 2);
    assert!(m.contains("no <rewrite-list> named `missing`"), "{m}");
}

// ------------------------------------------------------------------ vmtas, pools, domains

#[test]
fn vmta_pool_references() {
    let (l, m) = one_err("<virtual-mta a>\n</virtual-mta>\n<virtual-mta-pool a>\nvirtual-mta a\n</virtual-mta-pool>\n");
    assert_eq!(l, 3);
    assert!(m.contains("same name"), "{m}");
    let (l, m) = one_err("<virtual-mta-pool p>\n  virtual-mta ghost\n</virtual-mta-pool>\n");
    assert_eq!(l, 2);
    assert!(m.contains("no <virtual-mta ghost>"), "{m}");
    let (l, m) = one_err(
        "<virtual-mta a>\n</virtual-mta>\n<source {auth}>\ndefault-virtual-mta b\n</source>\n",
    );
    assert_eq!(l, 4);
    assert!(m.contains("default-virtual-mta b"), "{m}");
    ok("<source {auth}>\ndefault-virtual-mta {default}\n</source>\n");
    let (_, m) = one_err("<virtual-mta a>\n</virtual-mta>\n<virtual-mta a>\n</virtual-mta>\n");
    assert!(m.contains("more than once"));
    let (_, m) = one_err("<virtual-mta-pool p>\n</virtual-mta-pool>\n");
    assert!(m.contains("no `virtual-mta` members"));
    let e = errs("<virtual-mta v>\n</virtual-mta>\n<virtual-mta-pool p1>\nvirtual-mta v\n<domain *>\n</domain>\n</virtual-mta-pool>\n<virtual-mta-pool p2>\nvirtual-mta v\n<domain *>\n</domain>\n</virtual-mta-pool>\n");
    assert!(e[0].1.contains("more than one pool"), "{e:?}");
    let (_, m) = one_err("enable-signals nofilter\n");
    assert!(m.contains("<signals-filter>"), "{m}");
}

#[test]
fn domain_precedence() {
    let c = cfg("
<domain *>
  max-smtp-out 5
  retry-after 5m,10m
  use-starttls no
</domain>
<domain example.com>
  max-smtp-out 2
</domain>
<domain [*.]example.com>
  max-smtp-out 3
  queue-priority 60
</domain>
<domain *.example.com>
  max-smtp-out 4
</domain>
<virtual-mta v1>
  <domain [*.]example.com>
    max-msg-rate 100/h
  </domain>
</virtual-mta>
<virtual-mta v2>
</virtual-mta>
<virtual-mta-pool p>
  virtual-mta v1
  virtual-mta v2
  <domain *>
    max-smtp-out 9
    bounce-after 1d
    max-rcpt-per-message 7
  </domain>
</virtual-mta-pool>
");
    let d = c.domain_settings("example.com", "{default}");
    assert_eq!(d.max_smtp_out, 2, "exact beats [*.] beats *");
    assert_eq!(d.queue_priority, 60);
    assert_eq!(d.retry_after, vec![secs(300), secs(600)]);
    assert!(!d.use_starttls);
    assert_eq!(
        c.domain_settings("a.example.com", "{default}").max_smtp_out,
        4
    );
    assert_eq!(c.domain_settings("other.org", "{default}").max_smtp_out, 5);
    assert_eq!(c.domain_settings("OTHER.org", "nosuchvmta").max_smtp_out, 5);

    // pool level beats global, even the global exact match
    let d = c.domain_settings("example.com", "v2");
    assert_eq!(d.max_smtp_out, 9);
    assert_eq!(d.bounce_after, secs(86400));
    assert_eq!(d.max_rcpt_per_transaction, 7, "alias");
    assert_eq!(
        d.queue_priority, 60,
        "unset at pool level: global value kept"
    );
    assert_eq!(d.max_msg_rate, None);
    // vmta level beats pool
    let d = c.domain_settings("example.com", "v1");
    assert_eq!(
        d.max_msg_rate,
        Some(Rate {
            count: 100,
            window: secs(3600)
        })
    );
    assert_eq!(
        d.backoff_max_msg_rate, d.max_msg_rate,
        "backoff rate defaults to max-msg-rate"
    );
    assert_eq!(d.max_smtp_out, 9);
    assert_eq!(c.domain_settings("example.org", "v1").max_msg_rate, None);
    // a pool name as the queue's vmta
    assert_eq!(c.domain_settings("x.net", "p").max_smtp_out, 9);
}

#[test]
fn domain_defaults() {
    let d = cfg("").domain_settings("example.com", "{default}");
    assert_eq!(d, EffectiveDomainSettings::default());
    assert_eq!(d.max_smtp_out, 20);
    assert_eq!(d.retry_after, vec![secs(600)]);
    assert_eq!(d.bounce_after, secs(4 * 86400 + 12 * 3600));
    assert!(d.use_starttls && !d.require_starttls);
    assert_eq!(d.max_rcpt_per_transaction, 1000);
    assert_eq!(d.connect_timeout, secs(120));
    assert_eq!(d.smtp_greeting_timeout, secs(300));
    assert_eq!(d.data_send_timeout, secs(180));
    assert_eq!(d.smtp_data_termination_timeout, secs(600));
    assert_eq!(d.queue_priority, 50);
    assert_eq!(d.delivery_type, DeliveryType::Smtp);
    assert_eq!(d.smtp_hosts, None);
}

#[test]
fn domain_typed_directives() {
    let c = cfg("
<domain relay.example>
  smtp-hosts h1.example, h2.example; [10.1.1.1]:2525
  type discard
  bounce-upon-no-mx 2h
  dkim-sign if-x-dkim-options-present
  max-msg-per-connection unlimited
  notify-of-delay-every never
  auth-username user
  second-dkim-sign yes
  source-ip-max-msg-rate 10/8 100/h
</domain>
<domain {sparkpost}>
  auth-password 0123
</domain>
");
    let d = c.domain_settings("relay.example", "{default}");
    let h = d.smtp_hosts.unwrap();
    assert_eq!(h.levels.len(), 2);
    assert_eq!(
        h.levels[1],
        vec![SmtpHost::Ip {
            ip: ip("10.1.1.1"),
            port: Some(2525)
        }]
    );
    assert_eq!(d.delivery_type, DeliveryType::Discard);
    assert_eq!(d.bounce_upon_no_mx, NoMxPolicy::After(secs(7200)));
    assert_eq!(d.dkim_sign, DkimSign::IfXDkimOptionsPresent);
    assert_eq!(d.max_msg_per_connection, None);
    assert_eq!(d.notify_of_delay_every, None);
    assert_eq!(d.auth_username.as_deref(), Some("user"));
    assert_eq!(
        c.domain_settings("{sparkpost}", "{default}")
            .auth_password
            .as_deref(),
        Some("0123")
    );
    let (_, m) = one_err("<domain x.com>\ntype carrier-pigeon\n</domain>\n");
    assert!(m.contains("not one of smtp"), "{m}");
    let (_, m) = one_err("<domain x.com>\nsmtp-hosts a,,b\n</domain>\n");
    assert!(m.contains("empty host"), "{m}");
    let (_, m) = one_err("<domain yahoo.$tld>\n</domain>\n");
    assert!(m.contains("macro"), "{m}");
}

// ------------------------------------------------------------------ other sections

#[test]
fn spool_http_log_acct() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("petrel.conf");
    let text = "
<spool spool-a>
  min-free-space 1G
  priority 10
</spool>
<spool /abs/spool>
  deliver-only yes
</spool>
http-mgmt-port 0
http-access 127.0.0.1 monitor
http-access ::1 admin
http-access 10/8 monitor,deny-logs
http-access 0/0 none
log-file logs/petrel.log
total-max-smtp-in 500
<acct-file acct.csv>
  records d, b, rb
  record-fields d *,header_X-Id,!orcpt
  move-interval 5m
  max-size 50M
  delete-after never
</acct-file>
<acct-file |/usr/bin/etl --log x.log>
  records d
</acct-file>
";
    let c = parse_str(text, &conf).unwrap().config;
    let s = c.spool_dirs();
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].path, dir.path().join("spool-a"));
    assert_eq!(s[0].min_free_space, 1 << 30);
    assert_eq!(s[0].priority, 10);
    assert!(s[1].deliver_only);
    assert_eq!(c.http_mgmt_port, 0);
    assert_eq!(c.http_access.len(), 4);
    assert_eq!(c.http_access[1].level, HttpAccessLevel::Admin);
    assert!(c.http_access[1].cidr.contains(ip("::1")));
    assert!(c.http_access[2].deny_logs);
    assert_eq!(c.http_access[3].level, HttpAccessLevel::None);
    assert_eq!(
        c.log_file.as_deref(),
        Some(dir.path().join("logs/petrel.log").as_path())
    );
    assert_eq!(c.total_max_smtp_in, 500);
    let a = &c.acct_files[0];
    assert_eq!(a.target, AcctTarget::File(dir.path().join("acct.csv")));
    assert_eq!(
        a.records,
        vec![
            RecordType::Delivery,
            RecordType::Bounce,
            RecordType::RemoteBounce
        ]
    );
    assert_eq!(
        a.record_fields[0].1,
        vec![
            FieldSelector::All,
            FieldSelector::Header("X-Id".into()),
            FieldSelector::Exclude("orcpt".into()),
        ]
    );
    assert_eq!(a.move_interval, secs(300));
    assert_eq!(a.max_size, 50 << 20);
    assert_eq!(a.delete_after, None);
    assert_eq!(
        c.acct_files[1].target,
        AcctTarget::Pipe("/usr/bin/etl --log x.log".into())
    );

    let (_, m) = one_err("http-access 127.0.0.1 god\n");
    assert!(m.contains("not one of none"), "{m}");
    let (_, m) = one_err("<acct-file a.csv>\nrecords d,x\n</acct-file>\n");
    assert!(m.contains("`x` is not a record type"), "{m}");
    let (_, m) = one_err("<acct-file a.csv>\nmax-size 10k\n</acct-file>\n");
    assert!(m.contains("at least 1M"), "{m}");
}

#[test]
fn signals_validation() {
    let (l, m) = one_err("<signals>\napi-key abc\n</signals>\n");
    assert_eq!(l, 2);
    assert!(m.contains("40 hexadecimal"), "{m}");
    let (l, m) = one_err("<signals>\nlog-verbose yes\n</signals>\n");
    assert_eq!(l, 1);
    assert!(m.contains("needs an `api-key`"), "{m}");
    // the key is required even without uploads
    let (l, m) = one_err("<signals>\nupload false\n</signals>\n");
    assert_eq!(l, 1);
    assert!(m.contains("needs an `api-key`"), "{m}");
    let c = cfg("<signals>\napi-key 0123456789abcdef0123456789abcdef01234567\nprivacy-policy sha1\nengagement-tracking true\n</signals>\nenable-signals false\n<signals-filter f>\nsender-or-from *.example.com enable-signals,subaccount=5\nsender-or-from * disable-signals\n</signals-filter>\n<virtual-mta v>\nenable-signals true,subaccount=100\n</virtual-mta>\n<virtual-mta w>\nenable-signals f\n</virtual-mta>\n");
    let s = c.signals.as_ref().unwrap();
    assert_eq!(s.privacy_policy, SignalsPrivacy::Sha1);
    assert_eq!(s.engagement_tracking, EngagementTracking::Declared);
    assert_eq!(
        s.upload_url,
        "https://api.sparkpost.com/api/v1/ingest/events"
    );
    assert_eq!(c.enable_signals, EnableSignals::Disabled);
    assert_eq!(
        c.virtual_mta("v").unwrap().enable_signals,
        Some(EnableSignals::Enabled {
            subaccount: Some(100)
        })
    );
    assert_eq!(
        c.virtual_mta("w").unwrap().enable_signals,
        Some(EnableSignals::Filter("f".into()))
    );
    let (_, m) = one_err("enable-signals false,subaccount=3\n");
    assert!(m.contains("only with `true`"), "{m}");
    assert_eq!(
        c.signals_filters,
        vec![SignalsFilter {
            name: "f".into(),
            rules: vec![
                SignalsFilterRule {
                    pattern: "*.example.com".parse().unwrap(),
                    action: FilterAction::Enable {
                        subaccount: Some(5)
                    },
                },
                SignalsFilterRule {
                    pattern: DomainPattern::Any,
                    action: FilterAction::Disable,
                },
            ],
            origin: Origin {
                file: PathBuf::from("/virtual/petrel.conf"),
                line: 7,
            },
        }]
    );
}

// ------------------------------------------------------------------ Signals scope (spec §7.2)

const SIG_BLOCK: &str = "<signals>\napi-key 0123456789abcdef0123456789abcdef01234567\n</signals>\n";

/// A config with a `<signals>` block followed by `rest`.
fn sig_cfg(rest: &str) -> Config {
    cfg(&format!("{SIG_BLOCK}{rest}"))
}

const VMTAS: &str = "<virtual-mta mktg>\n</virtual-mta>\n<virtual-mta transact>\n</virtual-mta>\n";

#[test]
fn signals_use_case_1_global_false_sends_nothing() {
    let c = sig_cfg(&format!("enable-signals false\n{VMTAS}"));
    for v in ["mktg", "transact", "{default}", "nosuch"] {
        assert_eq!(c.signals_scope(v, None, Some("customer1.com")), None, "{v}");
        assert_eq!(c.signals_scope(v, None, None), None, "{v}");
    }
}

#[test]
fn signals_use_case_2_enabled_or_omitted_sends_everything() {
    for global in ["enable-signals true\n", ""] {
        let c = sig_cfg(&format!("{global}{VMTAS}"));
        for v in ["mktg", "transact", "{default}", "nosuch"] {
            assert_eq!(c.signals_scope(v, None, Some("a.com")), Some(0), "{v}");
            assert_eq!(c.signals_scope(v, None, None), Some(0), "{v}");
        }
    }
    let c = sig_cfg("enable-signals true,subaccount=7\n");
    assert_eq!(c.signals_scope("{default}", None, None), Some(7));
}

#[test]
fn signals_use_case_3_only_one_vmta() {
    let c = sig_cfg(
        "enable-signals false\n<virtual-mta mktg>\nenable-signals true\n</virtual-mta>\n<virtual-mta transact>\n</virtual-mta>\n",
    );
    assert_eq!(c.signals_scope("mktg", None, Some("a.com")), Some(0));
    assert_eq!(c.signals_scope("MKTG", None, None), Some(0));
    assert_eq!(c.signals_scope("transact", None, Some("a.com")), None);
    assert_eq!(c.signals_scope("{default}", None, Some("a.com")), None);
}

#[test]
fn signals_use_case_4_subaccount_per_vmta() {
    let c = sig_cfg(
        "enable-signals false\n<virtual-mta mktg>\nenable-signals true,subaccount=100\n</virtual-mta>\n<virtual-mta transact>\nenable-signals true, subaccount=200\n</virtual-mta>\n<virtual-mta other>\n</virtual-mta>\n",
    );
    assert_eq!(c.signals_scope("mktg", None, Some("a.com")), Some(100));
    assert_eq!(c.signals_scope("transact", None, Some("a.com")), Some(200));
    assert_eq!(c.signals_scope("other", None, Some("a.com")), None);
    assert_eq!(c.signals_scope("{default}", None, None), None);
}

#[test]
fn signals_use_case_5_pool_members() {
    let c = sig_cfg(
        "enable-signals false\n\
         <virtual-mta a>\n</virtual-mta>\n\
         <virtual-mta b>\n</virtual-mta>\n\
         <virtual-mta c>\nenable-signals false\n</virtual-mta>\n\
         <virtual-mta d>\nenable-signals true,subaccount=9\n</virtual-mta>\n\
         <virtual-mta outside>\n</virtual-mta>\n\
         <virtual-mta-pool p>\nvirtual-mta a\nvirtual-mta b\nvirtual-mta c\nvirtual-mta d\nenable-signals true,subaccount=50\n</virtual-mta-pool>\n",
    );
    for pool in [None, Some("p")] {
        assert_eq!(c.signals_scope("a", pool, Some("x.com")), Some(50));
        assert_eq!(c.signals_scope("b", pool, None), Some(50));
        // a vmta's own setting wins over the pool
        assert_eq!(c.signals_scope("c", pool, Some("x.com")), None);
        assert_eq!(c.signals_scope("d", pool, Some("x.com")), Some(9));
    }
    assert_eq!(c.signals_scope("outside", None, Some("x.com")), None);
    // selected through the pool explicitly, even when not a member
    assert_eq!(
        c.signals_scope("outside", Some("p"), Some("x.com")),
        Some(50)
    );
    assert_eq!(c.signals_scope("{default}", None, None), None);
}

const LIST_ONE: &str = "<signals-filter ListOne>\n\
    sender-or-from customer1.com enable-signals,subaccount=100\n\
    sender-or-from customer2.com enable-signals,subaccount=200\n\
    sender-or-from customer3.com enable-signals\n\
    </signals-filter>\n";

#[test]
fn signals_use_case_6_filter_in_one_vmta() {
    let c = sig_cfg(&format!(
        "enable-signals false\n{LIST_ONE}<virtual-mta mktg>\nenable-signals ListOne\n</virtual-mta>\n<virtual-mta transact>\n</virtual-mta>\n"
    ));
    assert_eq!(
        c.signals_scope("mktg", None, Some("customer1.com")),
        Some(100)
    );
    assert_eq!(
        c.signals_scope("mktg", None, Some("Customer2.COM.")),
        Some(200)
    );
    assert_eq!(
        c.signals_scope("mktg", None, Some("customer3.com")),
        Some(0)
    );
    assert_eq!(
        c.signals_scope("mktg", None, Some("sub.customer1.com")),
        None
    );
    assert_eq!(c.signals_scope("mktg", None, Some("other.com")), None);
    assert_eq!(c.signals_scope("mktg", None, None), None);
    assert_eq!(c.signals_scope("mktg", None, Some("")), None);
    assert_eq!(
        c.signals_scope("transact", None, Some("customer1.com")),
        None
    );
    assert_eq!(
        c.signals_scope("{default}", None, Some("customer1.com")),
        None
    );
}

#[test]
fn signals_use_case_7_wildcard_with_exclusion() {
    // the exclusion wins because it is more specific, whatever the order of the lines
    for filter in [
        "sender-or-from *.customer1.com enable-signals,subaccount=100\nsender-or-from transact.customer1.com disable-signals\n",
        "sender-or-from transact.customer1.com disable-signals\nsender-or-from *.customer1.com enable-signals,subaccount=100\n",
    ] {
        let c = sig_cfg(&format!(
            "enable-signals false\n<signals-filter ListOne>\n{filter}</signals-filter>\n<virtual-mta mktg>\nenable-signals ListOne\n</virtual-mta>\n"
        ));
        assert_eq!(c.signals_scope("mktg", None, Some("mail.customer1.com")), Some(100));
        assert_eq!(c.signals_scope("mktg", None, Some("a.b.customer1.com")), Some(100));
        assert_eq!(c.signals_scope("mktg", None, Some("transact.customer1.com")), None);
        // `*.x` covers proper subdomains only
        assert_eq!(c.signals_scope("mktg", None, Some("customer1.com")), None);
        assert_eq!(c.signals_scope("mktg", None, Some("customer2.com")), None);
        assert_eq!(c.signals_scope("{default}", None, Some("mail.customer1.com")), None);
    }
}

#[test]
fn signals_use_case_8_global_filter_applies_to_all_vmtas() {
    let c = sig_cfg(&format!("enable-signals ListOne\n{LIST_ONE}{VMTAS}"));
    for v in ["mktg", "transact", "{default}", "nosuch"] {
        assert_eq!(
            c.signals_scope(v, None, Some("customer1.com")),
            Some(100),
            "{v}"
        );
        assert_eq!(
            c.signals_scope(v, None, Some("customer2.com")),
            Some(200),
            "{v}"
        );
        assert_eq!(c.signals_scope(v, None, Some("other.com")), None, "{v}");
        assert_eq!(c.signals_scope(v, None, None), None, "{v}");
    }
}

#[test]
fn signals_use_case_9_global_filter_with_catch_all_and_excluded_vmtas() {
    let c = sig_cfg(
        "enable-signals ListOne\n\
         <signals-filter ListOne>\n\
         sender-or-from customer1.com enable-signals,subaccount=5\n\
         sender-or-from [*.]customer2.com enable-signals\n\
         sender-or-from * disable-signals\n\
         </signals-filter>\n\
         <virtual-mta mta1>\n</virtual-mta>\n\
         <virtual-mta blocked>\nenable-signals false\n</virtual-mta>\n\
         <virtual-mta-pool quiet>\nvirtual-mta mta1\nenable-signals false\n</virtual-mta-pool>\n",
    );
    assert_eq!(
        c.signals_scope("{default}", None, Some("customer1.com")),
        Some(5)
    );
    assert_eq!(
        c.signals_scope("{default}", None, Some("x.customer2.com")),
        Some(0)
    );
    assert_eq!(
        c.signals_scope("{default}", None, Some("customer2.com")),
        Some(0)
    );
    assert_eq!(c.signals_scope("{default}", None, Some("other.com")), None);
    assert_eq!(
        c.signals_scope("blocked", None, Some("customer1.com")),
        None
    );
    assert_eq!(c.signals_scope("blocked", None, Some("other.com")), None);
    // mta1 sits in a pool that is switched off
    assert_eq!(c.signals_scope("mta1", None, Some("customer1.com")), None);
    assert_eq!(
        c.signals_scope("mta1", Some("quiet"), Some("customer1.com")),
        None
    );
}

#[test]
fn signals_scope_needs_a_signals_block() {
    let c = cfg(
        "enable-signals true\n<virtual-mta v>\nenable-signals true,subaccount=3\n</virtual-mta>\n<virtual-mta-pool p>\nvirtual-mta v\nenable-signals true\n</virtual-mta-pool>\n<signals-filter f>\nsender-or-from * enable-signals\n</signals-filter>\n<virtual-mta w>\nenable-signals f\n</virtual-mta>\n",
    );
    assert!(c.signals.is_none());
    assert_eq!(
        c.enable_signals,
        EnableSignals::Enabled { subaccount: None }
    );
    for v in ["v", "w", "{default}"] {
        assert_eq!(c.signals_scope(v, None, Some("a.com")), None, "{v}");
        assert_eq!(c.signals_scope(v, Some("p"), Some("a.com")), None, "{v}");
    }
}

#[test]
fn signals_scope_pool_precedence_and_ties() {
    let c = sig_cfg(
        "enable-signals true,subaccount=1\n\
         <virtual-mta v>\n</virtual-mta>\n\
         <virtual-mta-pool p0>\nvirtual-mta v\n</virtual-mta-pool>\n\
         <virtual-mta-pool p1>\nvirtual-mta v\nenable-signals false\n</virtual-mta-pool>\n\
         <virtual-mta-pool p2>\nvirtual-mta v\nenable-signals true,subaccount=2\n</virtual-mta-pool>\n\
         <signals-filter ties>\n\
         sender-or-from a.com enable-signals,subaccount=10\n\
         sender-or-from a.com disable-signals\n\
         sender-or-from *.a.com disable-signals\n\
         sender-or-from *.a.com enable-signals,subaccount=11\n\
         sender-or-from [*.]b.com enable-signals,subaccount=12\n\
         sender-or-from *.b.com enable-signals,subaccount=13\n\
         sender-or-from *.x.b.com enable-signals,subaccount=14\n\
         </signals-filter>\n\
         <virtual-mta-pool pf>\nvirtual-mta v\nenable-signals TIES\n</virtual-mta-pool>\n",
    );
    // the selected pool if it sets a value...
    assert_eq!(c.signals_scope("v", Some("p2"), None), Some(2));
    assert_eq!(c.signals_scope("v", Some("P1"), None), None);
    // ...else the first member pool that sets one (p0 sets nothing, p1 says false)
    assert_eq!(c.signals_scope("v", Some("p0"), None), None);
    assert_eq!(c.signals_scope("v", None, None), None);
    assert_eq!(c.signals_scope("v", Some("nosuch"), None), None);
    // a pool the vmta is not in still counts when it was the selection
    assert_eq!(c.signals_scope("{default}", Some("p2"), None), Some(2));
    assert_eq!(c.signals_scope("{default}", Some("p0"), None), Some(1));
    assert_eq!(c.signals_scope("{default}", None, None), Some(1));
    // filter: ties go to the first line, more specific patterns win
    let f = |d| c.signals_scope("v", Some("pf"), Some(d));
    assert_eq!(f("a.com"), Some(10));
    assert_eq!(f("x.a.com"), None);
    assert_eq!(f("b.com"), Some(12));
    assert_eq!(f("y.b.com"), Some(13));
    assert_eq!(f("z.x.b.com"), Some(14));
    assert_eq!(f("x.b.com"), Some(13));
    assert_eq!(f("c.com"), None);
}

#[test]
fn signals_filter_validation() {
    for bad in [
        "sender-or-from *.a.com",
        "sender-or-from *.a.com enable",
        "sender-or-from *.a.com disable-signals,subaccount=1",
        "sender-or-from *.a.com enable-signals,subaccount=x",
        "sender-or-from *.a.com enable-signals,sub=1",
        "sender-or-from *.a.com enable-signals,subaccount=1,subaccount=2",
        "sender-or-from a..com enable-signals",
    ] {
        let (l, m) = one_err(&format!("<signals-filter f>\n{bad}\n</signals-filter>\n"));
        assert_eq!(l, 2, "{bad}");
        assert!(m.contains("`sender-or-from`"), "{bad}: {m}");
    }
    let (l, m) =
        one_err("<signals-filter f>\n</signals-filter>\n<signals-filter F>\n</signals-filter>\n");
    assert_eq!(l, 3);
    assert!(m.contains("more than once"), "{m}");
    // spaces after the comma are tolerated; names and keywords are case-insensitive
    let c = sig_cfg("enable-signals LIST\n<signals-filter list>\nsender-or-from A.com Enable-Signals, subaccount=4\n</signals-filter>\n");
    assert_eq!(
        c.signals_filter("List").unwrap().rules[0].action,
        FilterAction::Enable {
            subaccount: Some(4)
        }
    );
    assert_eq!(c.signals_scope("{default}", None, Some("a.com")), Some(4));
}

#[test]
fn signals_petrel_extensions() {
    let l = ok("<signals>\napi-key 0123456789abcdef0123456789abcdef01234567\nevent-dir spool/signals\nupload-interval 200ms\nupload no\n</signals>\n");
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let s = l.config.signals.clone().unwrap();
    assert_eq!(s.event_dir, PathBuf::from("/virtual/spool/signals"));
    assert_eq!(s.upload_interval, Duration::from_millis(200));
    assert!(!s.upload);
    let s = cfg("<signals>\napi-key 0123456789abcdef0123456789abcdef01234567\nevent-dir /srv/sig\nupload-interval 1m\n</signals>\n")
        .signals
        .clone()
        .unwrap();
    assert_eq!(s.event_dir, PathBuf::from("/srv/sig"));
    assert_eq!(s.upload_interval, secs(60));
    assert!(s.upload);
    for bad in [
        "upload-interval 0",
        "upload-interval 0ms",
        "upload-interval 5x",
        "upload maybe",
        "event-dir a b",
    ] {
        let (l, m) = one_err(&format!(
            "<signals>\napi-key 0123456789abcdef0123456789abcdef01234567\n{bad}\n</signals>\n"
        ));
        assert_eq!(l, 3, "{bad}: {m}");
    }
    let (_, m) = one_err("<signals>\napi-key 0123456789abcdef0123456789abcdef01234567\nupload-interval 0s\n</signals>\n");
    assert!(m.contains("greater than zero"), "{m}");
    // every Signals directive is active: none warns
    let l = ok("<signals>\napi-key 0123456789abcdef0123456789abcdef01234567\nupload-url https://api.eu.sparkpost.com/api/v1/ingest/events\nlog-verbose true\nmin-free-space 0\ncustomer-id 1\ncustom-message-id-header X-Id\nprocess-x-sp-subaccount-id true\nretain-x-sp-subaccount-id true\nprivacy-policy retain\nengagement-tracking true\ntracking-domain t.example.com\n</signals>\nenable-signals f\n<signals-filter f>\nsender-or-from * enable-signals\n</signals-filter>\n");
    let warned: Vec<usize> = l.warnings.iter().map(|w| w.line).collect();
    assert!(warned.is_empty(), "{:?}", l.warnings);
    let s = l.config.signals.clone().unwrap();
    assert!(s.process_x_sp_subaccount_id && s.retain_x_sp_subaccount_id);
    assert_eq!(s.custom_message_id_header.as_deref(), Some("X-Id"));
    assert_eq!(s.min_free_space, 0);
}

#[test]
fn signals_service_block() {
    // a file with only the service is a valid configuration
    let l = ok("<signals-service>\nlistener 127.0.0.1:8090\n</signals-service>\n");
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let c = l.config;
    assert_eq!(
        c.signals_service,
        Some(SignalsService {
            listener: "127.0.0.1:8090".parse().unwrap(),
            database: PathBuf::from("/var/lib/petrel/signals.db"),
            event_retention: Duration::from_secs(10 * 86_400),
            metrics_retention: Duration::from_secs(183 * 86_400),
            spam_trap_file: None,
            origin: Origin {
                file: PathBuf::from("/virtual/petrel.conf"),
                line: 1,
            },
        })
    );
    assert!(c.signals.is_none());
    assert_eq!(c.signals_scope("{default}", None, None), None);
    let s =
        cfg("<signals-service>\nlistener [::1]:9000\ndatabase data/sig.db\n</signals-service>\n")
            .signals_service
            .clone()
            .unwrap();
    assert_eq!(s.listener, "[::1]:9000".parse::<SocketAddr>().unwrap());
    assert_eq!(s.database, PathBuf::from("/virtual/data/sig.db"));
    let s = cfg("<signals-service>\nlistener 0.0.0.0:80\ndatabase /srv/s.db\n</signals-service>\n")
        .signals_service
        .clone()
        .unwrap();
    assert_eq!(s.database, PathBuf::from("/srv/s.db"));

    let (l, m) = one_err("\n<signals-service>\ndatabase x.db\n</signals-service>\n");
    assert_eq!(l, 2);
    assert!(m.contains("needs a `listener"), "{m}");
    for bad in [
        "localhost:80",
        "127.0.0.1",
        "::1:80",
        "127.0.0.1:0",
        "127.0.0.1:99999",
        "1.2.3.4:80 x",
    ] {
        let (l, m) = one_err(&format!(
            "<signals-service>\nlistener {bad}\n</signals-service>\n"
        ));
        assert_eq!(l, 2, "{bad}");
        assert!(m.contains("`listener`"), "{bad}: {m}");
    }
    let (l, m) = one_err("<signals-service>\nlistener 127.0.0.1:1\n</signals-service>\n<signals-service>\nlistener 127.0.0.1:2\n</signals-service>\n");
    assert_eq!(l, 4);
    assert!(m.contains("more than once"), "{m}");
    let (_, m) = one_err("<signals-service x>\nlistener 127.0.0.1:1\n</signals-service>\n");
    assert!(m.contains("takes no argument"), "{m}");
    let (_, m) = one_err("listener 127.0.0.1:1\n");
    assert!(m.contains("<signals-service>"), "{m}");
    let (_, m) =
        one_err("<signals-service>\nlistener 127.0.0.1:1\napi-key x\n</signals-service>\n");
    assert!(m.contains("<signals>"), "{m}");
}

#[test]
fn processors_and_address_lists() {
    let c = cfg("<bounce-processor>\nforward-unmatched-to ops@example.com\n<address-list>\ndomain B.example\naddress /^bounce-/\naddress postmaster\naddress a@b.c\n</address-list>\n<email-patterns>\nlog-match-info yes\n</email-patterns>\n</bounce-processor>\n<address-list suppress>\naddress x@y.z\n</address-list>\n");
    let bp = c.bounce_processor.as_ref().unwrap();
    assert!(bp.deliver_unmatched_email, "default true");
    assert_eq!(bp.forward_unmatched_to, vec!["ops@example.com"]);
    assert_eq!(bp.address_list.domains, vec!["b.example"]);
    assert_eq!(
        bp.address_list.addresses,
        vec![
            AddressEntry::Regex(Pattern::new("^bounce-").unwrap()),
            AddressEntry::LocalPart("postmaster".into()),
            AddressEntry::Email("a@b.c".into()),
        ]
    );
    assert!(bp.log_match_info);
    assert_eq!(c.address_lists[0].name.as_deref(), Some("suppress"));
    let (_, m) = one_err("<feedback-loop-processor>\n<email-patterns>\n</email-patterns>\n<domain x>\n</domain>\n</feedback-loop-processor>\n");
    assert!(
        m.contains("not allowed in <feedback-loop-processor>"),
        "{m}"
    );
}

// ------------------------------------------------------------------ includes

#[test]
fn includes_relative_glob_and_nested() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("conf.d")).unwrap();
    std::fs::create_dir_all(root.join("conf.d/tls")).unwrap();
    std::fs::write(root.join("conf.d/tls/cert.pem"), PEM).unwrap();
    std::fs::write(
        root.join("conf.d/10-users.conf"),
        "<smtp-user u1>\npassword one\n</smtp-user>\n",
    )
    .unwrap();
    // file-valued directive in an included file resolves against that file's directory
    std::fs::write(
        root.join("conf.d/20-tls.conf"),
        "smtp-server-tls-certificate tls/cert.pem\ninclude nested/*.inc\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("conf.d/nested")).unwrap();
    std::fs::write(root.join("conf.d/nested/a.inc"), "relay-domain a.example\n").unwrap();
    std::fs::write(root.join("conf.d/ignored.txt"), "this is not config\n").unwrap();
    std::fs::write(root.join("source-body.conf"), "log-commands yes\n").unwrap();
    let main = root.join("petrel.conf");
    std::fs::write(
        &main,
        "include conf.d/*.conf\n<source 0/0>\n  include source-body.conf\n</source>\n",
    )
    .unwrap();
    let l = load(&main).unwrap_or_else(|e| panic!("{e}"));
    let c = l.config;
    assert_eq!(c.smtp_user("u1").unwrap().password, "one");
    assert_eq!(
        c.server_tls.certificate.as_ref().unwrap().path,
        root.join("conf.d/tls/cert.pem")
    );
    assert!(c.is_relay_domain("a.example"));
    assert!(c.source_for_ip(ip("1.2.3.4")).log_commands);

    // errors inside an included file name that file and its line
    std::fs::write(root.join("conf.d/30-bad.conf"), "\n\nbogus-directive 1\n").unwrap();
    let e = load(&main).unwrap_err();
    assert_eq!(e.errors[0].file, root.join("conf.d/30-bad.conf"));
    assert_eq!(e.errors[0].line, 3);
}

#[test]
fn include_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let main = root.join("petrel.conf");
    std::fs::write(&main, "\ninclude missing.conf\n").unwrap();
    let e = load(&main).unwrap_err();
    assert_eq!(e.errors[0].line, 2);
    assert!(
        e.errors[0]
            .message
            .contains(&root.join("missing.conf").display().to_string()),
        "{e}"
    );

    std::fs::write(root.join("a.conf"), "include b.conf\n").unwrap();
    std::fs::write(root.join("b.conf"), "include a.conf\n").unwrap();
    std::fs::write(&main, "include a.conf\n").unwrap();
    let e = load(&main).unwrap_err();
    assert!(e.errors[0].message.contains("include loop"), "{e}");
    assert_eq!(e.errors[0].file, root.join("b.conf"));

    std::fs::write(&main, "include petrel.conf\n").unwrap();
    let e = load(&main).unwrap_err();
    assert!(e.errors[0].message.contains("include loop"), "{e}");

    std::fs::write(&main, "include none/*.conf\n").unwrap();
    let e = load(&main).unwrap_err();
    assert!(
        e.errors[0]
            .message
            .contains("cannot list include directory"),
        "{e}"
    );

    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::fs::write(&main, "include empty/*.conf\n").unwrap();
    let l = load(&main).unwrap();
    assert!(l.warnings[0].message.contains("matched no files"));

    std::fs::write(
        &main,
        "<smtp-user u>\npassword p\ninclude x\n</smtp-user>\n",
    )
    .unwrap();
    let e = load(&main).unwrap_err();
    assert!(
        e.errors[0].message.contains("not allowed in <smtp-user>"),
        "{e}"
    );
}

// ------------------------------------------------------------------ misc

#[test]
fn config_is_cheap_to_clone_and_shared() {
    let c = cfg("postmaster a@b.c\n");
    let d = c.clone();
    assert!(std::ptr::eq(&c.postmaster, &d.postmaster));
}

#[test]
fn host_name_defaults_to_os_name() {
    let c = cfg("");
    assert_eq!(c.host_name.len(), 1);
    assert!(!c.host_name[0].is_empty());
}

// ------------------------------------------------------------------ fuzzing

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn fuzz_parse_never_panics() {
    let seed = std::fs::read(fixture("seed-blog.conf")).unwrap();
    let lines: Vec<&[u8]> = seed.split(|b| *b == b'\n').collect();
    let tokens: &[&[u8]] = &[
        b"<",
        b">",
        b"</",
        b"\"",
        b"\\",
        b"#",
        b"##x##",
        b"<source",
        b"</source>",
        b"<domain *>",
        b"</domain>",
        b"include *",
        b"0/0",
        b"::1",
        b"[",
        b"]",
        b":",
        b",",
        b";",
        b"/",
        b"\n",
        b"\r\n",
        b"\xff\xfe",
        b"unlimited",
        b"never",
        b"99999999999999999999",
        b"<virtual-mta x>",
        b"mail-from <> *@x",
        b"smtp-hosts [::1]:99999",
        b"\xc3\xa9",
        b"$tld",
        b"{auth}",
        b"=",
    ];
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for round in 0..2000 {
        let mut data: Vec<u8> = match round % 5 {
            // random directives with random values inside random sections
            4 => {
                use crate::directives::{DIRECTIVES, SECTIONS};
                let values: &[&str] = &[
                    "",
                    "\"\"",
                    "yes",
                    "maybe",
                    "10m",
                    "4d12h",
                    "never",
                    "1G",
                    "unlimited",
                    "0",
                    "1/min",
                    "100/15m",
                    "10/8",
                    "::1",
                    "[::1]:25",
                    "0/0:25",
                    "a@b.c",
                    "*@*",
                    "<>",
                    "h1, h2; [10.1.1.1]:2525",
                    "lookup-mé:x",
                    "héader_é",
                    "d *,header_X,!y",
                    "s,é.com,k.pem",
                    "true,subaccount=é",
                    "é",
                    "x y z",
                    "10/8 5",
                    "1/day,2/dé",
                    "[ipvé:1]",
                    "*.é",
                    "[*.]x",
                    "{auth}",
                    "source=é",
                    "retain",
                    "monitor,deny-logs",
                ];
                let mut out = String::new();
                for _ in 0..rng.below(30) {
                    let open = rng.below(3) == 0;
                    let sec = SECTIONS[rng.below(SECTIONS.len())];
                    if open {
                        out.push_str(&format!(
                            "<{} {}>\n",
                            sec.tag,
                            values[rng.below(values.len())]
                        ));
                    }
                    for _ in 0..rng.below(6) {
                        let d = DIRECTIVES[rng.below(DIRECTIVES.len())];
                        out.push_str(&format!(
                            "{} {} {}\n",
                            d.name,
                            values[rng.below(values.len())],
                            values[rng.below(values.len())]
                        ));
                    }
                    if open {
                        out.push_str(&format!("</{}>\n", sec.tag));
                    }
                }
                out.into_bytes()
            }
            // pure random bytes
            0 => (0..rng.below(400)).map(|_| rng.next() as u8).collect(),
            // byte-level mutations of the seed
            1 => {
                let mut d = seed.clone();
                for _ in 0..=rng.below(20) {
                    let i = rng.below(d.len());
                    match rng.below(3) {
                        0 => d[i] = rng.next() as u8,
                        1 => {
                            d.remove(i);
                        }
                        _ => d.insert(i, rng.next() as u8),
                    }
                }
                d
            }
            // line shuffles / duplications / truncations
            2 => {
                let mut out = Vec::new();
                for _ in 0..rng.below(150) {
                    out.extend_from_slice(lines[rng.below(lines.len())]);
                    out.push(b'\n');
                }
                out
            }
            // token soup spliced into the seed
            _ => {
                let mut d = seed.clone();
                for _ in 0..=rng.below(15) {
                    let t = tokens[rng.below(tokens.len())];
                    let i = rng.below(d.len() + 1);
                    d.splice(i..i, t.iter().copied());
                }
                d
            }
        };
        if round % 97 == 0 {
            data.truncate(rng.below(data.len() + 1));
        }
        fuzz_parse(&data);
    }
}

#[test]
fn model_fields_and_directive_table_agree() {
    use crate::directives::{lookup, sec, Lookup};
    for n in SourceSettings::NAMES {
        assert!(
            matches!(lookup(n, sec::SRC), Lookup::Found(_)),
            "{n} missing from <source> table"
        );
    }
    for n in DomainSettings::NAMES {
        assert!(
            matches!(lookup(n, sec::DOM), Lookup::Found(_)),
            "{n} missing from <domain> table"
        );
    }
}

#[test]
fn shipped_petrel_conf_loads_if_present() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../petrel.conf");
    if !p.exists() {
        return;
    }
    let c = load(&p).unwrap_or_else(|e| panic!("{e}")).config;
    assert!(!c.source_for_ip(ip("192.0.2.1")).smtp_service);
    assert!(!c.source_for_ip(ip("2001:db8::1")).smtp_service);
    assert!(c.source_for_ip(ip("127.0.0.1")).always_allow_relaying);
    assert!(c.source_for_ip(ip("::1")).smtp_service);
}

#[test]
fn engagement_tracking_settings() {
    let sig = |body: &str| {
        cfg(&format!(
            "<signals>\napi-key 0123456789abcdef0123456789abcdef01234567\nevent-dir /srv/petrel/signals\n{body}</signals>\n"
        ))
        .signals
        .clone()
        .unwrap()
    };
    // Defaults: all three rewrites, a year and a day, key file next to the event directory,
    // links to petrel's own host.
    let s = sig("engagement-tracking sparkpost\ntracking-listener 127.0.0.1:8098\n");
    assert_eq!(s.engagement_tracking, EngagementTracking::Sparkpost);
    let t = &s.tracking;
    assert!(t.open && t.click && t.initial_open);
    assert_eq!(t.link_expiry, secs(366 * 86_400));
    assert_eq!(t.key_file, PathBuf::from("/srv/petrel/tracking.key"));
    assert_eq!(t.base_url(None).as_deref(), Some("http://127.0.0.1:8098"));

    // tracking-domain wins; a bare host is https; keys in order; proxies; switches.
    let s = sig("engagement-tracking sparkpost\ntracking-domain Track.Example.com/t/\ntracking-listener 127.0.0.1:8098\ntracking-listener [::1]:8098\ntracking-key 1 aaaaaaaaaaaaaaaaaaaa\ntracking-key 2 bbbbbbbbbbbbbbbbbbbb\ntracking-trusted-proxy 10.0.0.1\nopen-tracking true\ninitial-open-tracking false\nclick-tracking false\ntracking-link-expiry 30d\ntracking-key-file keys/t.key\n");
    let t = &s.tracking;
    assert_eq!(
        t.base_url(s.tracking_domain.as_deref()).as_deref(),
        Some("https://Track.Example.com/t")
    );
    assert_eq!(t.listeners.len(), 2);
    assert_eq!(t.keys, vec![(1, "a".repeat(20)), (2, "b".repeat(20))]);
    assert_eq!(t.trusted_proxies, vec![ip("10.0.0.1")]);
    assert!(t.open && !t.initial_open && !t.click);
    assert_eq!(t.link_expiry, secs(30 * 86_400));
    assert_eq!(t.key_file, PathBuf::from("/virtual/keys/t.key"));
    let s = sig("tracking-domain http://127.0.0.1:9000\n");
    assert_eq!(
        s.tracking.base_url(s.tracking_domain.as_deref()).as_deref(),
        Some("http://127.0.0.1:9000")
    );

    // Errors name the line.
    for (bad, why) in [
        ("tracking-domain ftp://x.example", "not a host name"),
        ("tracking-domain x.example/?a=1", "without spaces"),
        ("tracking-listener 127.0.0.1", "ADDRESS:PORT"),
        ("tracking-key 1 short", "at least 16"),
        ("tracking-key 300 aaaaaaaaaaaaaaaaaaaa", "0 to 255"),
        ("tracking-key aaaaaaaaaaaaaaaaaaaa", "ID SECRET"),
        ("tracking-trusted-proxy proxy.example", "not an IP"),
        ("tracking-link-expiry 10m", "at least 1h"),
    ] {
        let (l, m) = one_err(&format!(
            "<signals>\napi-key 0123456789abcdef0123456789abcdef01234567\n{bad}\n</signals>\n"
        ));
        assert_eq!(l, 3, "{bad}: {m}");
        assert!(m.contains(why), "{bad}: {m}");
    }
    let (l, m) = one_err("<signals>\napi-key 0123456789abcdef0123456789abcdef01234567\ntracking-key 1 aaaaaaaaaaaaaaaaaaaa\ntracking-key 1 bbbbbbbbbbbbbbbbbbbb\n</signals>\n");
    assert_eq!(l, 4);
    assert!(m.contains("given twice"), "{m}");
}

/// SparkPost's tracking hosts decode only SparkPost's links: a `tracking-domain` there is
/// accepted (PowerMTA configs carry it) with a warning that says what to do instead.
#[test]
fn sparkpost_tracking_hosts_are_warned_about() {
    let signals = |domain: &str| {
        ok(&format!(
            "<signals>\napi-key 0123456789abcdef0123456789abcdef01234567\nengagement-tracking sparkpost\ntracking-listener 127.0.0.1:8098\ntracking-domain {domain}\n</signals>\n"
        ))
    };
    for host in [
        "pmta.eu.spgo.io",
        "spgo.io",
        "eu.spgo.io",
        "https://v2.spgo.io",
        "EU.V2.SPGO.IO.",
        "acme.et.e.sparkpost.com",
        "https://pmta.spgo.io/t/",
    ] {
        let l = signals(host);
        assert_eq!(l.warnings.len(), 1, "{host}: {:?}", l.warnings);
        let w = l.warnings[0].to_string();
        assert!(w.contains(":5: `tracking-domain "), "{w}");
        assert!(w.contains("SparkPost's tracking hosts"), "{w}");
        assert!(w.contains("tracking-listener"), "{w}");
        assert_eq!(
            l.config
                .signals
                .as_ref()
                .and_then(|s| s.tracking_domain.as_deref()),
            Some(host)
        );
    }
    for host in [
        "track.example.com",
        "spgo.io.example.com",
        "myspgo.io",
        "http://127.0.0.1:9000",
    ] {
        let l = signals(host);
        assert!(l.warnings.is_empty(), "{host}: {:?}", l.warnings);
    }
}

#[test]
fn returned_mail_processors() {
    let c = cfg("postmaster pm@example.com\n<bounce-processor>\n  deliver-matched-email yes\n  forward-unmatched-to ops@example.com\n  return-path-key 2 bbbbbbbbbbbbbbbbbbbb\n  return-path-key-file keys/rp.key\n  <address-list>\n    domain Bounces.Example.com\n    address returns@other.example\n    address abuse\n  </address-list>\n</bounce-processor>\n<feedback-loop-processor>\n  <address-list>\n    domain fbl.example.com\n  </address-list>\n</feedback-loop-processor>\n");
    let bp = c.bounce_processor.as_ref().unwrap();
    assert!(bp.deliver_matched_email && bp.deliver_unmatched_email);
    assert_eq!(bp.forward_unmatched_to, vec!["ops@example.com"]);
    assert_eq!(bp.return_path_keys, vec![(2, "b".repeat(20))]);
    assert_eq!(
        bp.return_path_key_file,
        Some(PathBuf::from("/virtual/keys/rp.key"))
    );
    // Scope: domains (any case), full addresses, bare local parts; FBL first.
    let is_bp = |a: &str| {
        c.returned_mail_processor(a)
            .is_some_and(|p| p.origin.line == bp.origin.line)
    };
    assert!(is_bp("news+abc@bounces.example.com"));
    assert!(is_bp("NEWS@BOUNCES.EXAMPLE.COM"));
    assert!(is_bp("returns@other.example"));
    assert!(is_bp("abuse@anything.example"));
    assert!(!is_bp("x@other.example"));
    let fbl = c.feedback_loop_processor.as_ref().unwrap();
    assert_eq!(
        c.returned_mail_processor("fbl@fbl.example.com")
            .map(|p| p.origin.line),
        Some(fbl.origin.line)
    );
    assert!(c.returned_mail_processor("x@example.com").is_none());
    let (l, m) = one_err("<bounce-processor>\nreturn-path-key 1 short\n</bounce-processor>\n");
    assert_eq!(l, 2);
    assert!(m.contains("at least 16"), "{m}");
}

#[test]
fn suppression_directives() {
    let c = cfg("");
    assert_eq!(c.suppression_database, None);
    assert!(c.suppress_hard_bounces && c.suppress_complaints);
    let c = cfg("suppression-database lists/suppression.db\nsuppress-hard-bounces no\nsuppress-complaints false\n");
    assert_eq!(
        c.suppression_database.as_deref(),
        Some(Path::new("/virtual/lists/suppression.db"))
    );
    assert!(!c.suppress_hard_bounces);
    assert!(!c.suppress_complaints);
    let e = errs("host-name a.example\nsuppress-complaints maybe\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, 2);
    assert!(e[0].1.contains("suppress-complaints"), "{e:?}");
}

#[test]
fn address_regexes_and_address_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("fbl.txt"),
        "# FBL addresses registered with the ISPs\nfbl-yahoo@fbl.example.com\n\n  abuse-reports  \n/^arf-[0-9]+@/\n",
    )
    .unwrap();
    let conf = dir.path().join("petrel.conf");
    std::fs::write(
        &conf,
        "<feedback-loop-processor>\n<address-list>\naddress /^bounce-[a-z]+@Mail\\.example\\.com$/\naddress-file fbl.txt\n</address-list>\n</feedback-loop-processor>\n",
    )
    .unwrap();
    let c = parse_str(&std::fs::read_to_string(&conf).unwrap(), &conf)
        .unwrap()
        .config;
    let list = &c.feedback_loop_processor.as_ref().unwrap().address_list;
    assert_eq!(list.address_files, vec![dir.path().join("fbl.txt")]);
    assert_eq!(list.addresses.len(), 4, "{:?}", list.addresses);
    for yes in [
        "bounce-news@mail.example.com",
        "BOUNCE-x@MAIL.EXAMPLE.COM",
        "fbl-yahoo@FBL.example.com",
        "abuse-reports@anywhere.example",
        "arf-42@isp.example",
    ] {
        assert!(list.contains(yes), "{yes}");
    }
    for no in [
        "bounce-news@mail.example.com.evil",
        "bounce-1@mail.example.com",
        "fbl-gmail@fbl.example.com",
        "arf-x@isp.example",
        "not-an-address",
    ] {
        assert!(!list.contains(no), "{no}");
    }
    assert!(c.returned_mail_processor("arf-7@isp.example").is_some());

    // A bad pattern in the file is reported at the file's own line; a missing file at the
    // directive's.
    std::fs::write(dir.path().join("bad.txt"), "ok@example.com\n/unclosed(/\n").unwrap();
    let text = "<bounce-processor>\n<address-list>\naddress-file bad.txt\naddress-file missing.txt\naddress /[z-a]/\n</address-list>\n</bounce-processor>\n";
    let e = match parse_str(text, &conf) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.errors,
    };
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(
        e.iter().any(|d| d.file == dir.path().join("bad.txt")
            && d.line == 2
            && d.message.contains("/unclosed(/")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|d| d.line == 4 && d.message.contains("cannot read")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|d| d.line == 5 && d.message.contains("not a valid regular expression")),
        "{e:?}"
    );
}

#[test]
fn smtp_pattern_lists_and_backoff_settings() {
    let l = ok("<smtp-pattern-list throttles>\n\
        reply /\\[TS0[1-3]\\]/ mode=backoff\n\
        reply /^421 .*too many connections/ mode=backoff, defer-queue\n\
        reply /over quota/ bounce-rcpt\n\
        reply /(?-i)Domain Gone/ bounce-queue\n\
        reply /welcome back/ mode=normal\n\
        reply /blocked using/ disable-source-ip,reenable-after=1h\n\
        </smtp-pattern-list>\n\
        <domain yahoo.com>\n\
        smtp-pattern-list throttles\n\
        backoff-max-smtp-out 2\n\
        backoff-max-msg-rate 100/h\n\
        backoff-retry-after 5m,15m\n\
        backoff-to-normal-after 2h\n\
        backoff-to-normal-after-delivery yes\n\
        </domain>\n");
    let c = &l.config;
    let list = c.smtp_pattern_list("THROTTLES").unwrap();
    assert_eq!(list.rules.len(), 6);
    let act = |reply: &str| list.actions_for(reply).cloned();
    assert_eq!(
        act("421 4.7.0 [ts02] Messages from 192.0.2.1 temporarily deferred")
            .unwrap()
            .mode,
        Some(QueueMode::Backoff),
        "case-insensitive by default"
    );
    let a = act("421 Too many connections from your IP").unwrap();
    assert_eq!(a.mode, Some(QueueMode::Backoff));
    assert!(a.defer_queue);
    assert!(act("452 4.2.2 user is over quota").unwrap().bounce_rcpt);
    assert!(act("550 Domain Gone").unwrap().bounce_queue);
    assert!(
        act("550 domain gone").is_none(),
        "(?-i) makes it case-sensitive"
    );
    assert_eq!(
        act("250 welcome back").unwrap().mode,
        Some(QueueMode::Normal)
    );
    assert!(act("250 ok").is_none());
    let planned: Vec<&str> = l.warnings.iter().map(|w| w.message.as_str()).collect();
    assert!(
        planned
            .iter()
            .any(|m| m.contains("`disable-source-ip` is accepted but not acted on yet")),
        "{planned:?}"
    );

    let s = c.domain_settings("yahoo.com", "{default}");
    assert_eq!(s.smtp_pattern_list.as_deref(), Some("throttles"));
    assert_eq!(s.backoff_max_smtp_out, 2);
    assert_eq!(
        s.backoff_retry_after,
        vec![Duration::from_secs(300), Duration::from_secs(900)]
    );
    assert_eq!(s.backoff_to_normal_after, Some(Duration::from_secs(7200)));
    assert!(s.backoff_to_normal_after_delivery);
    assert!(s.backoff_max_msg_rate.is_some());
    let d = c.domain_settings("other.example", "{default}");
    assert_eq!(d.backoff_to_normal_after, None);
    assert!(!d.backoff_to_normal_after_delivery);

    for (text, needle) in [
        ("reply /x/ mode=fast\n", "unknown action `mode=fast`"),
        ("reply /x/ mode=backoff,mode=normal\n", "only one `mode=`"),
        ("reply /x/ skip-mx bounce-queue\n", "cannot be combined"),
        ("reply /x/ reenable-after=1h\n", "needs `disable-source-ip`"),
        (
            "reply /x(/ mode=backoff\n",
            "not a valid regular expression",
        ),
        ("reply /x/\n", "no action"),
        ("reply // defer-queue\n", "empty pattern"),
        ("reply x mode=backoff\n", "expected `/regex/`"),
    ] {
        let (line, m) = one_err(&format!(
            "<smtp-pattern-list p>\n{text}</smtp-pattern-list>\n"
        ));
        assert_eq!(line, 2, "{text}: {m}");
        assert!(m.contains(needle), "{text}: {m}");
    }
    let (line, m) = one_err("<domain x.example>\nsmtp-pattern-list nosuch\n</domain>\n");
    assert_eq!(line, 2);
    assert!(m.contains("<smtp-pattern-list>"), "{m}");
}

#[test]
fn pattern_lists_choose_the_virtual_mta() {
    let l = ok(
        "<virtual-mta brand1>\n</virtual-mta>\n<virtual-mta gmail-ips>\n</virtual-mta>\n\
        <virtual-mta-pool transactional>\nvirtual-mta brand1\n</virtual-mta-pool>\n\
        <pattern-list route>\n\
        header X-Stream /^receipts$/ virtual-mta=transactional\n\
        mail-from /@brand1\\.example$/ virtual-mta=brand1\n\
        rcpt-to /@gmail\\.com$/ virtual-mta=gmail-ips, recipient-priority=80\n\
        * virtual-mta=brand1\n\
        </pattern-list>\n\
        <source 0/0>\npattern-list route\n</source>\n",
    );
    let list = l.config.pattern_list("ROUTE").unwrap();
    assert_eq!(list.entries.len(), 4);
    let pick = |hdr: Option<&str>, from: &str, rcpts: &[&str]| {
        list.virtual_mta(
            |name| {
                if name.eq_ignore_ascii_case("x-stream") {
                    hdr.map(String::from)
                } else {
                    None
                }
            },
            from,
            rcpts.iter().copied(),
        )
        .map(String::from)
    };
    assert_eq!(
        pick(Some("Receipts"), "a@b.example", &["x@y.example"]).as_deref(),
        Some("transactional")
    );
    assert_eq!(
        pick(None, "news@BRAND1.example", &["x@gmail.com"]).as_deref(),
        Some("brand1"),
        "first match wins"
    );
    assert_eq!(
        pick(None, "a@other.example", &["x@y.example", "z@gmail.com"]).as_deref(),
        Some("gmail-ips"),
        "any recipient"
    );
    assert_eq!(
        pick(None, "a@other.example", &["x@y.example"]).as_deref(),
        Some("brand1"),
        "catch-all"
    );
    assert_eq!(
        l.config
            .source_for_ip(ip("192.0.2.1"))
            .pattern_list
            .as_deref(),
        Some("route")
    );
    assert!(
        l.warnings.iter().any(|w| w.line == 11
            && w.message
                .contains("`recipient-priority` results are accepted but not acted on yet")),
        "{:?}",
        l.warnings
    );

    for (text, needle) in [
        ("mail-from /x/ virtual-mta=nosuch\n", "nosuch"),
        (
            "mail-from /x(/ virtual-mta=a\n",
            "not a valid regular expression",
        ),
        ("mail-from /x/ lane=fast\n", "unknown result `lane=fast`"),
        ("rcpt-to /x/\n", "no result"),
        ("header X-Only\n", "expected a header name"),
        ("mail-from /x/ recipient-priority=101\n", "0 to 100"),
    ] {
        let (line, m) = one_err(&format!(
            "<virtual-mta a>\n</virtual-mta>\n<pattern-list p>\n{text}</pattern-list>\n"
        ));
        assert_eq!(line, 4, "{text}: {m}");
        assert!(m.contains(needle), "{text}: {m}");
    }
    let (_, m) = one_err("<source 0/0>\npattern-list missing\n</source>\n");
    assert!(m.contains("<pattern-list>"), "{m}");
}

#[test]
fn bounce_category_patterns() {
    let c = cfg("<bounce-category-patterns>\n\
        /(?-i)Recipient Address Rejected/ Bad-Mailbox\n\
        /mailbox  (is )?full/ quota-issues\n\
        /\\bspamhaus\\b/ blocklisted\n\
        </bounce-category-patterns>\n");
    assert_eq!(c.bounce_category_patterns.len(), 3);
    assert_eq!(
        c.bounce_category_for("550 5.1.1 <a@b>: Recipient Address Rejected: no such user"),
        Some("bad-mailbox"),
        "the regex keeps its case, the category is lower-cased"
    );
    assert_eq!(
        c.bounce_category_for("550 5.1.1 recipient address rejected"),
        None,
        "(?-i) in the first word survives the lexer"
    );
    assert_eq!(
        c.bounce_category_for("452 Mailbox  is FULL"),
        Some("quota-issues"),
        "the two spaces of the pattern stay two"
    );
    assert_eq!(c.bounce_category_for("452 Mailbox is FULL"), None);
    assert_eq!(
        c.bounce_category_for("554 blocked using zen.spamhaus.org"),
        Some("blocklisted")
    );
    assert_eq!(c.bounce_category_for("250 ok"), None);
    let (line, m) = one_err("<bounce-category-patterns>\n/x/\n</bounce-category-patterns>\n");
    assert_eq!(line, 2);
    assert!(m.contains("one category name"), "{m}");
    let (_, m) = one_err("<bounce-category-patterns>\n/x(/ other\n</bounce-category-patterns>\n");
    assert!(m.contains("not a valid regular expression"), "{m}");
}
