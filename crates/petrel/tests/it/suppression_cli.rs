//! `petrel suppression list|add|remove` against a running daemon, and the list surviving a
//! restart.

use crate::common;

use common::{text, Petrel};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn add_list_remove_and_persist_across_restart() {
    let mut p = Petrel::start("");

    let out = p.cli(&[
        "suppression",
        "add",
        "Gone@Example.org",
        "--description",
        "asked us by phone",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains("Gone@Example.org suppressed for subaccount 0."),
        "{}",
        text(&out)
    );
    let out = p.cli(&["suppression", "add", "x@example.com", "--subaccount", "7"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains("suppressed for subaccount 7"),
        "{}",
        text(&out)
    );
    // Again: refreshed, not duplicated.
    let out = p.cli(&["suppression", "add", "x@example.com", "--subaccount", "7"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains("already suppressed"),
        "{}",
        text(&out)
    );

    // Table.
    let out = p.cli(&["suppression", "list"]);
    assert!(out.status.success(), "{}", text(&out));
    let table = stdout(&out);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    for col in ["address", "subaccount", "reason", "created", "description"] {
        assert!(lines[0].contains(col), "{table}");
    }
    // Newest first; addresses are stored lower-cased.
    assert!(lines[1].starts_with("x@example.com "), "{table}");
    assert!(lines[1].contains(" 7 manual "), "{table}");
    assert!(lines[2].starts_with("gone@example.org "), "{table}");
    assert!(lines[2].contains("asked us by phone"), "{table}");
    assert!(lines[2].contains('T') && lines[2].contains("Z "), "{table}");
    assert_eq!(lines[3], "2 of 2 suppressed address(es).");

    // JSON, with a filter.
    let out = p.cli(&["suppression", "list", "--subaccount", "7", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["total"], 1, "{v}");
    assert_eq!(v["results"][0]["address"], "x@example.com");
    assert_eq!(v["results"][0]["subaccount"], 7);
    assert_eq!(v["results"][0]["reason"], "manual");
    assert!(v["results"][0]["created"].as_str().unwrap().ends_with('Z'));
    let out = p.cli(&["suppression", "list", "--reason", "hard_bounce", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["total"], 0, "{v}");

    // Remove: the subaccount matters.
    let out = p.cli(&["suppression", "remove", "x@example.com"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("x@example.com is not suppressed for subaccount 0"),
        "{}",
        text(&out)
    );
    let out = p.cli(&[
        "suppression",
        "remove",
        "x@example.com",
        "--subaccount",
        "7",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains("x@example.com is no longer suppressed for subaccount 7."),
        "{}",
        text(&out)
    );
    let out = p.cli(&["suppression", "list"]);
    let table = stdout(&out);
    assert!(!table.contains("x@example.com"), "{table}");
    assert!(table.contains("gone@example.org"), "{table}");
    assert!(
        table.ends_with("1 of 1 suppressed address(es).\n"),
        "{table}"
    );

    // Unknown entry and invalid address: exit 1 with the API's error.
    let out = p.cli(&["suppression", "remove", "nobody@example.com"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("nobody@example.com is not suppressed for subaccount 0"),
        "{}",
        text(&out)
    );
    let out = p.cli(&["suppression", "add", "not-an-address"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a valid email address"),
        "{}",
        text(&out)
    );

    // The list is on disk: a crash and restart keep it.
    p.kill9();
    p.spawn();
    let out = p.cli(&["suppression", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["total"], 1, "{v}");
    assert_eq!(v["results"][0]["address"], "gone@example.org");
    assert_eq!(v["results"][0]["description"], "asked us by phone");
    assert!(
        p.dir.path().join("suppression.db").exists(),
        "the list lives beside the spool"
    );
}
