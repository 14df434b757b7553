//! The article's injection setup: AUTH only after STARTTLS, `{auth}` relaying, the
//! `mfrom` rewrite list, X-Job, and the auth-failure throttle — driven by swaks and smtplib.

use crate::common;

use std::time::Duration;

use common::{python, text, Petrel};

const CONFIG: &str = r#"
smtp-server-tls-certificate {CERT}
smtp-server-tls-allow-tlsv1.2 true
smtp-server-tls-allow-tlsv1.3 true

<source 0/0>
  smtp-service true
  smtp-max-auth-failure-rate 1/min
  allow-unencrypted-plain-auth false
  allow-starttls true
  rewrite-list mfrom
</source>

<source {auth}>
  always-allow-relaying yes
  default-virtual-mta default
  process-x-job true
</source>

<rewrite-list mfrom>
  mail-from *@pmta.signalsdemo.trymsys.net *@bounces.pmta.signalsdemo.trymsys.net
</rewrite-list>

<smtp-user SMTP_Injection>
  password correct-horse-battery-staple
  authentication-method password
</smtp-user>

<virtual-mta mta1>
  smtp-source-host 127.0.0.2 petrel.test
</virtual-mta>

<virtual-mta-pool default>
  virtual-mta mta1
</virtual-mta-pool>

relay-domain bounces.pmta.signalsdemo.trymsys.net
"#;

const USER: &str = "SMTP_Injection";
const PASS: &str = "correct-horse-battery-staple";

#[test]
fn auth_is_refused_before_starttls_and_not_advertised() {
    let p = Petrel::start(CONFIG);
    let out = p.raw(
        b"EHLO client.test\r\nAUTH PLAIN AFNNVFBfSW5qZWN0aW9uAGNvcnJlY3QtaG9yc2UtYmF0dGVyeS1zdGFwbGU=\r\nQUIT\r\n",
        Duration::from_secs(2),
    );
    assert!(
        out.contains("250-STARTTLS") || out.contains("250 STARTTLS"),
        "{out}"
    );
    assert!(
        !out.contains("AUTH PLAIN"),
        "AUTH must not be offered in clear text: {out}"
    );
    assert!(out.contains("538 5.7.11"), "{out}");
}

#[test]
fn authenticated_submission_over_starttls_with_plain_and_login() {
    let p = Petrel::start(CONFIG);
    for mech in ["PLAIN", "LOGIN"] {
        let out = p.swaks(&[
            "--tls",
            "--auth",
            mech,
            "--auth-user",
            USER,
            "--auth-password",
            PASS,
            "--from",
            "news@pmta.signalsdemo.trymsys.net",
            "--to",
            &format!("reader-{mech}@example.com"),
            "--header",
            "X-Job: spring-2026",
            "--header",
            "Subject: hello",
        ]);
        let t = text(&out);
        assert!(out.status.success(), "{mech}: {t}");
        assert!(t.contains("235 2.7.0"), "{t}");
        assert!(t.contains("250 2.6.0"), "{t}");
    }
    let list = p.list();
    let msgs = list["data"]["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2, "{list}");
    for m in msgs {
        // The rewrite list moved the sender to the bounce domain.
        assert_eq!(
            m["orig"], "news@bounces.pmta.signalsdemo.trymsys.net",
            "{m}"
        );
        assert_eq!(m["jobId"], "spring-2026", "{m}");
        assert_eq!(m["vmta"], "default", "{m}");
        assert_eq!(m["authUser"], USER, "{m}");
    }
    // X-Job is consumed (not retained), and petrel's own headers are there.
    let id = msgs[0]["id"].as_str().unwrap();
    let (status, body) = p.http_get(&format!("/messageBody?id={id}"));
    assert_eq!(status, 200, "{body}");
    assert!(!body.to_lowercase().contains("x-job:"), "{body}");
    assert!(body.starts_with("Received: from "), "{body}");
    assert!(body.contains("with ESMTPSA"), "{body}");
}

#[test]
fn relaying_is_denied_without_auth_but_relay_domains_are_open() {
    let p = Petrel::start(CONFIG);
    let out = p.raw(
        b"EHLO client.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<someone@elsewhere.example>\r\nRCPT TO:<bounce+1@bounces.pmta.signalsdemo.trymsys.net>\r\nQUIT\r\n",
        Duration::from_secs(2),
    );
    assert!(out.contains("550 5.7.1 relaying denied"), "{out}");
    assert!(
        out.contains("250 2.1.5 recipient <bounce+1@bounces.pmta.signalsdemo.trymsys.net> ok"),
        "{out}"
    );
}

#[test]
fn wrong_passwords_are_throttled_by_smtp_max_auth_failure_rate() {
    let p = Petrel::start(CONFIG);
    let script = r#"
import smtplib, ssl, sys
port = int(sys.argv[1])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
codes = []
for password in ["wrong-1", "correct-horse-battery-staple"]:
    s = smtplib.SMTP("127.0.0.1", port, timeout=20)
    s.starttls(context=ctx)
    s.ehlo()
    try:
        # One mechanism per attempt (smtplib.login would fall back to LOGIN by itself).
        s.user, s.password = "SMTP_Injection", password
        s.auth("PLAIN", s.auth_plain)
        codes.append("235")
    except smtplib.SMTPAuthenticationError as e:
        codes.append("%d %s" % (e.smtp_code, e.smtp_error.decode()))
    except smtplib.SMTPResponseException as e:
        codes.append("%d %s" % (e.smtp_code, e.smtp_error.decode()))
    s.quit()
print("|".join(codes))
"#;
    let out = python(script, &[&p.smtp_port.to_string()]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let parts: Vec<&str> = stdout.trim().split('|').collect();
    assert!(parts[0].starts_with("535 5.7.8"), "{t}");
    // One failure per minute is allowed: even the right password is refused until the window ends.
    assert!(parts[1].starts_with("454 4.7.0"), "{t}");
    assert!(parts[1].contains("too many authentication failures"), "{t}");
}
