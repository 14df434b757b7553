//! `check-config` and `reload` name the changed directives that only a restart applies
//! (here an `<acct-file>`'s `records`), and say nothing of those a reload applies.

use crate::common;

use std::process::Command;

use common::{petrel_bin, text, Petrel};

const CONFIG: &str = "<domain example.com>\n  max-smtp-out 5\n</domain>\n<acct-file {DIR}/acct.csv>\n  records d\n</acct-file>\n";

#[test]
fn restart_only_changes_are_named() {
    let p = Petrel::start(CONFIG);
    let check = || {
        let out = Command::new(petrel_bin())
            .arg("check-config")
            .arg(&p.config)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let original = std::fs::read_to_string(&p.config).unwrap();

    // A change reload applies: nothing needs a restart.
    std::fs::write(
        &p.config,
        original.replace("max-smtp-out 5", "max-smtp-out 7"),
    )
    .unwrap();
    let said = check();
    assert!(
        said.contains("applies every change in this file on `petrel reload`"),
        "{said}"
    );

    // A new record type for the accounting file needs a restart: both commands say so.
    let edited = original
        .replace("max-smtp-out 5", "max-smtp-out 7")
        .replace("records d\n", "records d,b\n");
    std::fs::write(&p.config, edited).unwrap();
    let said = check();
    let place = format!("<acct-file {}/acct.csv> records", p.dir.path().display());
    assert!(
        said.contains("only after a restart") && said.contains(&place),
        "{said}"
    );

    let out = p.cli(&["reload"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(said.contains("Configuration reloaded."), "{said}");
    assert!(
        said.contains("These changes take effect only after a restart:") && said.contains(&place),
        "{said}"
    );
    assert!(!said.contains("max-smtp-out"), "{said}");
    // The log says it too, and the next check still names it: it is not applied yet.
    assert!(p.log().contains("only after a restart"), "{}", p.log());
    assert!(check().contains(&place));
}
