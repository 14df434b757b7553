//! Independent verification: every signature petrel-dkim makes is checked by Python's
//! dkimpy, a widely deployed DKIM implementation that shares no code with this crate.
//!
//! dkimpy (and PyNaCl, which it needs for Ed25519) is installed with pip when missing; if
//! pip fails the test fails with pip's error rather than being skipped.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use petrel_dkim::{sign, signing_identity_domain, DkimKey, KeyRing, SignOptions};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair as _};

const RSA_SELECTOR: &str = "mypmta";
const RSA_DOMAIN: &str = "pmta.signalsdemo.trymsys.net";
const RSA_PEM: &str = "mypmta.pmta.signalsdemo.trymsys.net.pem";
const RSA_TXT: &str = "mypmta.dkim-dns.txt";

fn local_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn shared_fixture(name: &str) -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures"
    ))
    .join(name)
}

/// The quoted TXT content from the fixture zone line.
fn rsa_record() -> String {
    let line = std::fs::read_to_string(local_fixture(RSA_TXT)).unwrap();
    line.split('"')
        .nth(1)
        .expect("quoted TXT record")
        .to_string()
}

fn python_ok(code: &str) -> bool {
    Command::new("python3")
        .args(["-c", code])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Makes sure `import dkim, nacl` works, installing with pip once per test binary.
fn ensure_dkimpy() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        if python_ok("import dkim, nacl") {
            return Ok(());
        }
        let out = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "dkimpy", "pynacl"])
            .output()
            .map_err(|e| format!("cannot run python3 -m pip: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "pip install dkimpy pynacl failed ({}):\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        if python_ok("import dkim, nacl") {
            Ok(())
        } else {
            Err("dkimpy installed but `import dkim, nacl` still fails".into())
        }
    });
    if let Err(e) = ready {
        panic!("{e}");
    }
}

const VERIFY_PY: &str = r#"
import sys, logging, dkim
logging.basicConfig(stream=sys.stderr, level=logging.DEBUG)
record = sys.argv[1].encode()
queried = []
def dnsfunc(name, timeout=5):
    queried.append(name.decode() if isinstance(name, bytes) else str(name))
    return record
msg = sys.stdin.buffer.read()
try:
    ok = dkim.verify(msg, logger=logging.getLogger("dkimpy"), dnsfunc=dnsfunc)
except Exception:
    # dkimpy lets some crypto errors escape; for us any exception means "not verified".
    logging.exception("dkimpy raised")
    ok = False
print("PASS" if ok else "FAIL")
print(",".join(queried))
"#;

struct Verdict {
    pass: bool,
    queried: String,
    log: String,
}

fn dkimpy_verify(signed: &[u8], record: &str) -> Verdict {
    ensure_dkimpy();
    let mut child = Command::new("python3")
        .args(["-c", VERIFY_PY, record])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    child.stdin.take().unwrap().write_all(signed).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "dkimpy crashed:\n{stdout}\n{log}");
    let mut lines = stdout.lines();
    Verdict {
        pass: lines.next() == Some("PASS"),
        queried: lines.next().unwrap_or_default().to_string(),
        log,
    }
}

/// What a receiver sees: the signature prepended, every line ending in CRLF (petrel's
/// transmitter sends bare LF as CRLF, as SMTP requires).
fn on_the_wire(header: &str, message: &[u8]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(header.len() + message.len() + 2);
    raw.extend_from_slice(header.as_bytes());
    raw.extend_from_slice(b"\r\n");
    raw.extend_from_slice(message);
    let mut wire = Vec::with_capacity(raw.len() + 64);
    for (i, &b) in raw.iter().enumerate() {
        if b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            wire.push(b'\r');
        }
        wire.push(b);
    }
    wire
}

fn rsa_key() -> DkimKey {
    DkimKey::load(RSA_SELECTOR, RSA_DOMAIN, local_fixture(RSA_PEM)).unwrap()
}

/// A fresh Ed25519 key, written as PEM and loaded through the normal path, plus the DNS
/// record built independently from ring's public key.
fn ed25519_key(domain: &str) -> (DkimKey, String, tempfile::TempDir) {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let record = format!(
        "v=DKIM1; k=ed25519; p={}",
        STANDARD.encode(pair.public_key().as_ref())
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ed.pem");
    let b64 = STANDARD.encode(pkcs8.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    std::fs::write(&path, pem).unwrap();
    let key = DkimKey::load("ed2026", domain, &path).unwrap();
    assert_eq!(key.dns_record(), record);
    (key, record, dir)
}

fn messages(domain: &str) -> Vec<(&'static str, Vec<u8>, SignOptions)> {
    let plain = format!(
        "From: Joe <joe@{domain}>\r\nTo: Suzie <suzie@example.net>\r\nSubject: plain\r\n\
Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <plain.1@{domain}>\r\n\
MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
Hello Suzie,\r\n\r\n  indented   line with   spaces  \r\nBye.\r\n\r\n\r\n"
    );
    let eight_bit = format!(
        "From: Jörg <joerg@{domain}>\r\nTo: Zoë <zoe@example.net>\r\nSubject: Grüße aus Köln 🌧\r\n\
Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
Grüße, 世界!\tTabs\t\tand  spaces \r\nΚαλημέρα\r\n\u{a0}non-breaking\r\n"
    );
    let lf_only = format!(
        "From: joe@{domain}\nTo: suzie@example.net\nSubject: LF only\n\
Date: Mon, 1 Jan 2024 10:00:00 +0000\n\nline one\nline two  \n\n\n"
    );
    let folded = format!(
        "From: \"Joe Q. Public\"\r\n <joe@{domain}>\r\n\
To: a@example.net,\r\n\tb@example.net,\r\n   c@example.net\r\n\
Subject: a subject that is folded\r\n\tover   several\r\n  lines\r\n\
References: <a@x.example>\r\n <b@x.example>\r\n <c@x.example>\r\n\
Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nbody\r\n"
    );
    let received = format!(
        "Received: from one.example by two.example; Mon, 1 Jan 2024 10:00:02 +0000\r\n\
Received: from zero.example\r\n\tby one.example; Mon, 1 Jan 2024 10:00:01 +0000\r\n\
Return-Path: <bounce@{domain}>\r\n\
Resent-From: second@{domain}\r\nResent-Date: Mon, 1 Jan 2024 10:00:03 +0000\r\n\
Resent-From: first@{domain}\r\nResent-Date: Mon, 1 Jan 2024 10:00:02 +0000\r\n\
From: joe@{domain}\r\nTo: suzie@example.net\r\nBcc: secret@example.net\r\n\
Subject: repeated fields\r\nReceived: from late.example; Mon, 1 Jan 2024 10:00:04 +0000\r\n\r\nbody\r\n"
    );
    let no_body = format!(
        "From: joe@{domain}\r\nTo: suzie@example.net\r\nSubject: headers only, no blank line\r\n"
    );
    let empty_body =
        format!("From: joe@{domain}\r\nTo: suzie@example.net\r\nSubject: empty body\r\n\r\n");
    let extras = format!(
        "From: joe@{domain}\r\nTo: suzie@example.net\r\nSubject: extras\r\n\
X-Mailer: petrel\r\nX-Campaign-ID: 42\r\nX-Campaign-ID: 43\r\n\
List-Unsubscribe: <mailto:unsub@{domain}>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\nbody\r\n"
    );
    let extra_opts = SignOptions {
        extra_headers: vec![
            "X-Mailer".into(),
            "x-campaign-id".into(),
            "List-Unsubscribe-Post".into(),
            "X-Not-Present".into(),
            "Received".into(),
        ],
        ..SignOptions::default()
    };
    let all_opts = SignOptions {
        identity: Some(format!("bounces@news.{domain}")),
        extra_headers: vec!["X-Mailer".into()],
        body_length_limit: true,
        timestamp: true,
        expire_after: Some(Duration::from_secs(7 * 86400)),
    };
    let mut latin1 = format!(
        "From: joe@{domain}\r\nTo: suzie@example.net\r\nSubject: latin-1\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    )
    .into_bytes();
    latin1.extend_from_slice(b"caf\xe9 cr\xe8me br\xfbl\xe9e \xff\x80\r\n");
    let d = SignOptions::default;
    vec![
        ("plain", plain.clone().into_bytes(), d()),
        ("8-bit UTF-8", eight_bit.into_bytes(), d()),
        ("8-bit Latin-1 (not UTF-8)", latin1, d()),
        ("LF-only", lf_only.into_bytes(), d()),
        ("folded headers", folded.into_bytes(), d()),
        ("repeated Received/Resent-*", received.into_bytes(), d()),
        ("no body", no_body.into_bytes(), d()),
        ("empty body", empty_body.into_bytes(), d()),
        ("extra dkim-headers", extras.into_bytes(), extra_opts),
        (
            "i= @domain",
            plain.clone().into_bytes(),
            SignOptions {
                identity: Some(domain.to_string()),
                ..d()
            },
        ),
        ("i=, t=, x=, l=", plain.into_bytes(), all_opts),
    ]
}

fn h_tag(header: &str) -> String {
    let unfolded: String = header.chars().filter(|c| !c.is_whitespace()).collect();
    let start = unfolded.find(";h=").unwrap() + 3;
    unfolded[start..].split(';').next().unwrap().to_string()
}

fn check_all(key: &DkimKey, record: &str, domain: &str) {
    let mut failures = Vec::new();
    for (name, message, opts) in messages(domain) {
        let header = sign(&message, key, &opts, SystemTime::now()).unwrap();
        let wire = on_the_wire(&header, &message);
        let v = dkimpy_verify(&wire, record);
        if !v.pass {
            failures.push(format!("{name}: dkimpy FAIL\n{header}\n{}", v.log));
            continue;
        }
        let expected_name = format!("{}._domainkey.{domain}", key.selector());
        assert!(
            v.queried.trim_end_matches('.') == expected_name,
            "{name}: dkimpy looked up {:?}, expected {expected_name}",
            v.queried
        );
        match name {
            "repeated Received/Resent-*" => assert_eq!(
                h_tag(&header),
                "Resent-From:Resent-Date:Resent-From:Resent-Date:From:To:Subject"
            ),
            "extra dkim-headers" => assert_eq!(
                h_tag(&header),
                "From:To:Subject:X-Mailer:X-Campaign-ID:X-Campaign-ID:List-Unsubscribe:List-Unsubscribe-Post"
            ),
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn dkimpy_verifies_rsa_signatures_made_with_the_fixture_key() {
    check_all(&rsa_key(), &rsa_record(), RSA_DOMAIN);
}

/// RSA keys under 2048 bits (RFC 8301 allows 1024) are signed by a different library than
/// 2048-bit keys; dkimpy must accept them exactly like the others. 1100 bits checks a size
/// that is not a whole number of 64-bit limbs.
#[test]
fn dkimpy_verifies_signatures_made_with_short_rsa_keys() {
    for (file, record) in [
        ("rsa1024.pem", "rsa1024.dkim-record.txt"),
        ("rsa1024.pkcs1.pem", "rsa1024.dkim-record.txt"),
        ("rsa1100.pem", "rsa1100.dkim-record.txt"),
    ] {
        let key = DkimKey::load("legacy", "legacy.example", local_fixture(file)).unwrap();
        assert!(key.below_recommended_size(), "{file}");
        let record = std::fs::read_to_string(local_fixture(record)).unwrap();
        check_all(&key, record.trim(), "legacy.example");
    }
}

#[test]
fn dkimpy_verifies_ed25519_signatures() {
    let (key, record, _dir) = ed25519_key("ed.example.org");
    check_all(&key, &record, "ed.example.org");
}

#[test]
fn dkimpy_rejects_messages_changed_after_signing() {
    let key = rsa_key();
    let record = rsa_record();
    let (_, message, _) = messages(RSA_DOMAIN).remove(0);
    let header = sign(&message, &key, &SignOptions::default(), SystemTime::now()).unwrap();
    let wire = on_the_wire(&header, &message);
    assert!(dkimpy_verify(&wire, &record).pass, "baseline must pass");

    let text = String::from_utf8(wire.clone()).unwrap();
    let body_changed = text.replace("Bye.", "Bye!");
    assert!(
        !dkimpy_verify(body_changed.as_bytes(), &record).pass,
        "body edit"
    );
    let subject_changed = text.replace("Subject: plain", "Subject: plain!");
    assert!(
        !dkimpy_verify(subject_changed.as_bytes(), &record).pass,
        "subject edit"
    );
    let from_changed = text.replace("From: Joe <joe@", "From: Jim <joe@");
    assert!(
        !dkimpy_verify(from_changed.as_bytes(), &record).pass,
        "From edit"
    );

    // Another RSA key's record fails too (the signature really depends on the key).
    let other = std::fs::read_to_string(local_fixture("other-rsa.dkim-record.txt")).unwrap();
    let v = dkimpy_verify(&wire, other.trim());
    assert!(!v.pass, "another key's record");
    assert!(
        !v.log.contains("dkimpy raised"),
        "dkimpy should fail cleanly:\n{}",
        v.log
    );

    // Adding an unsigned header (a relay's Received) keeps the signature valid.
    let mut relayed =
        b"Received: from relay.example by mx.example; Mon, 1 Jan 2024 10:00:09 +0000\r\n".to_vec();
    relayed.extend_from_slice(&wire);
    assert!(
        dkimpy_verify(&relayed, &record).pass,
        "Received added in transit"
    );
}

#[test]
fn key_selection_then_signing_end_to_end() {
    // vmta ring: a key for a parent domain of the From domain, then the global fixture key.
    let (parent, parent_record, _dir) = ed25519_key("signalsdemo.trymsys.net");
    let ring = KeyRing::layered(
        [std::sync::Arc::new(parent)],
        [std::sync::Arc::new(rsa_key())],
    );
    let message = format!(
        "From: joe@{RSA_DOMAIN}\r\nTo: suzie@example.net\r\nSubject: chosen key\r\n\r\nbody\r\n"
    );
    let identity = signing_identity_domain(message.as_bytes()).unwrap();
    assert_eq!(identity, RSA_DOMAIN);
    let key = ring.select(&identity).unwrap();
    assert_eq!(
        key.domain(),
        Some("signalsdemo.trymsys.net"),
        "vmta key first"
    );
    let header = sign(
        message.as_bytes(),
        key,
        &SignOptions::default(),
        SystemTime::now(),
    )
    .unwrap();
    assert!(header.contains("d=signalsdemo.trymsys.net;"), "{header}");
    let v = dkimpy_verify(&on_the_wire(&header, message.as_bytes()), &parent_record);
    assert!(v.pass, "{header}\n{}", v.log);
}

#[test]
fn pkcs1_pem_signs_identically_to_pkcs8() {
    let pkcs1 = DkimKey::load(RSA_SELECTOR, RSA_DOMAIN, local_fixture("mypmta.pkcs1.pem")).unwrap();
    let (_, message, _) = messages(RSA_DOMAIN).remove(0);
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let a = sign(&message, &pkcs1, &SignOptions::default(), now).unwrap();
    let b = sign(&message, &rsa_key(), &SignOptions::default(), now).unwrap();
    assert_eq!(a, b);
    assert!(dkimpy_verify(&on_the_wire(&a, &message), &rsa_record()).pass);
}

#[test]
fn local_fixture_copies_match_the_shared_fixtures() {
    // The crate carries copies so its tests do not need ../shared; when the shared
    // directory is present, the copies must be identical to it.
    for name in [RSA_PEM, RSA_TXT] {
        let shared = shared_fixture(name);
        if shared.exists() {
            assert_eq!(
                std::fs::read(&shared).unwrap(),
                std::fs::read(local_fixture(name)).unwrap(),
                "{name} differs from {}",
                shared.display()
            );
        }
    }
}
