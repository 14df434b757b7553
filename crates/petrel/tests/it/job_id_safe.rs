//! `petrel job-id-safe`: the article's X-Job character rule on every character 32–255.

use crate::common;

use std::process::Command;

#[test]
fn every_character_from_32_to_255() {
    let input: String = (32u32..=255).map(|c| char::from_u32(c).unwrap()).collect();
    let out = Command::new(common::petrel_bin())
        .args(["job-id-safe", &input])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    let got = String::from_utf8(out.stdout).unwrap();
    let got: Vec<char> = got.trim_end_matches('\n').chars().collect();
    assert_eq!(got.len(), 224, "one output character per input character");
    for (i, c) in got.iter().enumerate() {
        let code = 32 + i as u32;
        if (33..=126).contains(&code) && code != 34 && code != 96 {
            assert_eq!(*c as u32, code, "printable {code} must be kept");
        } else {
            assert_eq!(*c, '_', "character {code} must become _");
        }
    }
    // The line the article's test prints.
    let line: String = got.iter().collect();
    assert_eq!(
        line,
        format!(
            "{}{}",
            r##"_!_#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^__abcdefghijklmnopqrstuvwxyz{|}~"##,
            "_".repeat(129)
        )
    );
}

#[test]
fn a_campaign_name() {
    let out = Command::new(common::petrel_bin())
        .args(["job-id-safe", "Black Friday – \"2026\" (`EU`)"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        "Black_Friday____2026__(_EU_)"
    );
}
