//! `<source>` rules: most specific CIDR wins, `smtp-service false` refuses with 521,
//! `always-allow-relaying`, and `source=` on a listener. Clients connect from several
//! loopback addresses (127.0.0.1, 127.0.0.2, 127.0.0.3) to exercise the matching.

use crate::common;

use common::{free_port, python, text, Petrel};

const CONFIG: &str = r#"
<source 0/0>
  smtp-service false
</source>
<source 127.0.0.0/8>
  smtp-service true
</source>
<source 127.0.0.3>
  always-allow-relaying yes
</source>
<source relayer>
  always-allow-relaying yes
</source>
smtp-listener 127.0.0.1:{EXTRA_PORT} source=relayer
relay-domain [*.]local.example
"#;

/// Opens a session from `source_ip`, says EHLO and tries one recipient; prints the replies.
const CLIENT: &str = r#"
import socket, sys
port, source_ip, rcpt = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source_ip, 0))
f = s.makefile("rb")
out = [f.readline().decode().strip()]
if out[0].startswith("220"):
    s.sendall(("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<%s>\r\nQUIT\r\n" % rcpt).encode())
    for line in f:
        out.append(line.decode().strip())
print("\n".join(out))
"#;

fn session(port: u16, source_ip: &str, rcpt: &str) -> String {
    let out = python(CLIENT, &[&port.to_string(), source_ip, rcpt]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn most_specific_source_wins() {
    let extra = free_port();
    let p = Petrel::start(&CONFIG.replace("{EXTRA_PORT}", &extra.to_string()));
    // 127.0.0.2 matches 127.0.0.0/8 (service on) but not the relaying /32.
    let out = session(p.smtp_port, "127.0.0.2", "x@faraway.example");
    assert!(out.starts_with("220 petrel.test"), "{out}");
    assert!(
        out.contains(r#"550 5.7.1 relaying denied for recipient in "RCPT TO:<x@faraway.example>""#),
        "{out}"
    );
    // relay-domain with [*.] matches the domain and its subdomains.
    let out = session(p.smtp_port, "127.0.0.2", "x@mx.local.example");
    assert!(out.contains("250 2.1.5"), "{out}");
    let out = session(p.smtp_port, "127.0.0.2", "x@local.example");
    assert!(out.contains("250 2.1.5"), "{out}");
    // 127.0.0.3 has its own /32 rule that allows relaying, merged over the /8.
    let out = session(p.smtp_port, "127.0.0.3", "x@faraway.example");
    assert!(out.contains("250 2.1.5"), "{out}");
}

#[test]
fn smtp_service_false_refuses_with_521() {
    let extra = free_port();
    let body = CONFIG.replace("{EXTRA_PORT}", &extra.to_string()).replace(
        "<source 127.0.0.3>\n  always-allow-relaying yes",
        "<source 127.0.0.3>\n  smtp-service false",
    );
    let p = Petrel::start(&body);
    let out = session(p.smtp_port, "127.0.0.3", "x@local.example");
    assert!(
        out.starts_with("521 petrel.test does not accept mail from you"),
        "{out}"
    );
    let out = session(p.smtp_port, "127.0.0.2", "x@local.example");
    assert!(out.starts_with("220"), "{out}");
}

#[test]
fn listener_source_overrides_ip_rules() {
    let extra = free_port();
    let _daemon = Petrel::start(&CONFIG.replace("{EXTRA_PORT}", &extra.to_string()));
    let out = session(extra, "127.0.0.2", "x@faraway.example");
    assert!(
        out.contains("250 2.1.5"),
        "listener source=relayer should allow relaying: {out}"
    );
}

/// The article's refusal, as swaks shows it: the whole RCPT command, quoted.
#[test]
fn relaying_denied_quotes_the_rcpt_command() {
    let p = Petrel::start(&CONFIG.replace("{EXTRA_PORT}", &free_port().to_string()));
    let out = p.swaks(&["--from", "a@b.example", "--to", "test@strange.example"]);
    let out = text(&out);
    assert!(
        out.contains(
            r#"<** 550 5.7.1 relaying denied for recipient in "RCPT TO:<test@strange.example>""#
        ),
        "{out}"
    );
}
