//! `petrel sink`'s command line: bad arguments and configuration files get a clear error and
//! exit code 2; the counts are served as JSON and Prometheus text; SIGTERM prints a summary.

use crate::common;

use std::process::Command;

use common::sink::{PetrelSink, Smtp};
use common::{http, petrel_bin, text};

/// Runs `petrel sink ARGS` expecting it to refuse to start; returns stderr.
fn refused(args: &[&str]) -> String {
    let out = Command::new(petrel_bin())
        .arg("sink")
        .args(["--listen", "127.0.0.1:1"])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_arguments_exit_2_with_a_clear_error() {
    let e = refused(&["--mix", "hard=abc"]);
    assert!(
        e.contains("invalid value 'hard=abc' for '--mix <SPEC>'")
            && e.contains("`abc` is not a percentage"),
        "{e}"
    );
    let e = refused(&["--mix", "hard=150"]);
    assert!(e.contains("a percentage must be between 0 and 100"), "{e}");
    let e = refused(&["--mix", "delivered=90,hard=8,soft=5"]);
    assert!(e.contains("add up to 103%, over 100%"), "{e}");
    let e = refused(&["--mix", "hard=1,bounce=2"]);
    assert!(e.contains("unknown behaviour `bounce`"), "{e}");
    let e = refused(&["--mix", "hard3=2"]);
    assert!(
        e.contains("only soft, defer, drop and slow take a count"),
        "{e}"
    );
    let e = refused(&["--mix", "oob=2"]);
    assert!(
        e.contains("--mix draws oob but there is no --return-to"),
        "{e}"
    );
    let e = refused(&["--seed", "x"]);
    assert!(e.contains("invalid value 'x' for '--seed <N>'"), "{e}");
    let e = refused(&["--return-to", "nowhere"]);
    assert!(
        e.contains("--return-to `nowhere` is not a HOST:PORT"),
        "{e}"
    );
    let e = refused(&["--delay", "oob"]);
    assert!(e.contains("--delay: `oob` is not NAME=TIME"), "{e}");
    let e = refused(&["--delay", "open=later"]);
    assert!(e.contains("`later` is not a time interval"), "{e}");
    let e = refused(&["--frobnicate"]);
    assert!(e.contains("unexpected argument '--frobnicate'"), "{e}");
}

#[test]
fn configuration_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("sink.conf");
    std::fs::write(&conf, "# sink\nseed 3\nprovider corp.example hotmail\n").unwrap();
    let e = refused(&["--config", conf.to_str().unwrap()]);
    assert!(
        e.contains("sink.conf:3: provider: `hotmail` is not gmail, microsoft, yahoo or generic"),
        "{e}"
    );
    std::fs::write(&conf, "mix hard=x\n").unwrap();
    let e = refused(&["--config", conf.to_str().unwrap()]);
    assert!(e.contains("sink.conf:1: mix: `hard=x`"), "{e}");
    let e = refused(&["--config", "/nonexistent/sink.conf"]);
    assert!(e.contains("--config /nonexistent/sink.conf"), "{e}");
}

#[test]
fn counts_are_served_and_summarised_on_sigterm() {
    let sink = PetrelSink::start(&[]);
    let mut s = Smtp::ehlo(sink.port);
    let msg = "Subject: hi\nX-Job: spring\n\nHello\n";
    for rcpt in ["a@x.example", "b@x.example", "c+hard@x.example"] {
        s.send("news@brand.example", rcpt, msg);
    }
    assert!(s.cmd("QUIT").starts_with("221"));
    let c = sink.snapshot();
    assert_eq!(
        (c.totals.messages, c.totals.delivered, c.totals.hard),
        (2, 2, 1),
        "{c:?}"
    );
    assert!(c.first_message_unix_ms.is_some() && c.last_message_unix_ms.is_some());
    let (status, metrics) = http(sink.stats_port, "GET", "/metrics");
    assert_eq!(status, 200);
    for line in [
        "petrel_sink_total{what=\"delivered\"} 2",
        "petrel_sink_total{what=\"hard\"} 1",
        "petrel_sink_campaign_total{campaign=\"spring\",what=\"delivered\"} 2",
        "petrel_sink_source_ip_total{source_ip=\"127.0.0.1\",what=\"connections\"} 1",
        "petrel_sink_pending 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}\n{metrics}");
    }
    let (status, summary) = sink.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        summary.starts_with("petrel sink: connections=1 messages=2 delivered=2 hard=1\n"),
        "{summary}"
    );
    assert!(
        summary.contains("  campaign spring: messages=2 delivered=2\n"),
        "{summary}"
    );
    assert!(
        summary.contains("  source 127.0.0.1: connections=1"),
        "{summary}"
    );
}
