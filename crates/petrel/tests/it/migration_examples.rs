//! The migration guide was walked: the article's configuration and the larger PowerMTA
//! configuration in docs/examples/ both load with `petrel check-config`, and what the guide
//! (docs/migrating-from-powermta.md) shows as their output is exactly what petrel prints
//! today, so every warning it explains is a warning petrel really gives.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{petrel_bin, shared_dir, text};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `petrel check-config FILE` run from FILE's directory, as the guide does it.
fn check_in(dir: &Path, file: &str) -> String {
    let out = Command::new(petrel_bin())
        .arg("check-config")
        .arg(file)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{file} does not load: {}", text(&out));
    assert!(out.stderr.is_empty(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.ends_with(&format!(
            "{file}: configuration OK ({} warning(s))\n",
            stdout.lines().count() - 1
        )),
        "{stdout}"
    );
    stdout
}

fn guide() -> String {
    std::fs::read_to_string(repo().join("docs/migrating-from-powermta.md")).unwrap()
}

/// The guide's code block for `$ petrel check-config FILE`: the lines after the command.
fn documented_output(guide: &str, file: &str) -> String {
    let command = format!("$ petrel check-config {file}\n");
    let start = guide
        .find(&command)
        .unwrap_or_else(|| panic!("the guide does not run `{}`", command.trim()))
        + command.len();
    let end = start + guide[start..].find("```").unwrap();
    guide[start..end].to_string()
}

#[test]
fn the_articles_configuration_loads_as_the_guide_shows() {
    let out = check_in(&shared_dir().join("fixtures"), "seed-blog.conf");
    assert_eq!(out, documented_output(&guide(), "seed-blog.conf"));
}

#[test]
fn the_larger_example_configuration_loads_as_the_guide_shows() {
    let out = check_in(&repo().join("docs/examples/esp"), "config");
    assert_eq!(out, documented_output(&guide(), "config"));
    // The guide explains each warning in a table row whose first cell names its line.
    let guide = guide();
    let explained: Vec<&str> = guide
        .lines()
        .filter_map(|l| l.strip_prefix("| ")?.split(" |").next())
        .flat_map(|cell| cell.split(", "))
        .collect();
    for line in out.lines().filter(|l| l.starts_with("warning: ")) {
        let number = line["warning: config:".len()..].split(':').next().unwrap();
        assert!(
            explained.contains(&number),
            "the guide has no row for line {number}: {line}"
        );
    }
}
