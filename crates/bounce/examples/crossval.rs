//! Cross-validation of petrel's returned-mail rules by reporting MTA.
//!
//! `cargo run --release -p petrel-bounce --example crossval [-- --verbose] [--holdout-misses tuning|final]`
//!
//! The shared corpus (`shared/corpus/bounces`) is split into folds of whole reporting
//! systems (the `lhost-*` / `rhost-*` / `rfc*` file-name prefix: `lhost-postfix`,
//! `rhost-google`, …), so a held-out fold is mail from MTAs the tuning never saw. For each
//! fold, the rule groups of `petrel_bounce::RULE_GROUPS` are tuned on the other folds by
//! backward elimination (a group is switched off when that does not lower the training
//! objective: 2 × hard/soft + category + status, hard/soft counting double because a false
//! hard bounce suppresses an address for good), then the held-out fold is scored with the
//! tuned groups and with every group on (what petrel ships). Last, the committed hold-out
//! set (`tests/holdout`) is scored with every group on, whole and in its two halves of
//! whole reporting systems (`agreement::split_by_family`): rules may be checked against
//! the tuning half; the final half is only ever scored.
//!
//! Prints per-fold and pooled agreement for (a) recipient + status, (b) hard/soft and
//! (c) category, the groups each fold dropped, and per-MTA agreement with every group on.

#[path = "../tests/common/agreement.rs"]
mod agreement;

use std::collections::BTreeMap;

use agreement::{File, Score};
use petrel_bounce::{try_parse_with, Returned, Rules, RULE_GROUPS};

/// Number of folds.
const FOLDS: usize = 5;

fn score(files: &[&File], rules: &Rules) -> Score {
    let mut s = Score::default();
    for f in files {
        let got = try_parse_with(&f.raw, rules).unwrap_or(Returned::Unrecognised);
        s.add(agreement::score_file(f, &got, None));
    }
    s
}

/// Backward elimination: drop each group whose removal does not lower the objective on
/// `train`, until no removal helps.
fn tune(train: &[&File]) -> Rules {
    let mut rules = Rules::all();
    let mut best = score(train, &rules).objective();
    loop {
        let mut changed = false;
        for group in RULE_GROUPS {
            if !rules.on(group) {
                continue;
            }
            let candidate = rules.clone().without(group);
            let s = score(train, &candidate).objective();
            if s >= best {
                best = s;
                rules = candidate;
                changed = true;
            }
        }
        if !changed {
            return rules;
        }
    }
}

/// Families assigned to folds: largest first, each to the fold with the fewest rows.
fn folds(files: &[File]) -> Vec<Vec<&File>> {
    let mut families: BTreeMap<&str, Vec<&File>> = BTreeMap::new();
    for f in files {
        families
            .entry(agreement::family(&f.name))
            .or_default()
            .push(f);
    }
    let rows = |v: &Vec<&File>| v.iter().map(|f| f.rows.len()).sum::<usize>();
    let mut ordered: Vec<(&str, Vec<&File>)> = families.into_iter().collect();
    ordered.sort_by(|a, b| rows(&b.1).cmp(&rows(&a.1)).then(a.0.cmp(b.0)));
    let mut out: Vec<Vec<&File>> = vec![Vec::new(); FOLDS];
    for (_, members) in ordered {
        let smallest = (0..FOLDS).min_by_key(|&i| rows(&out[i])).expect("folds");
        out[smallest].extend(members);
    }
    out
}

fn line(label: &str, s: &Score) -> String {
    let (a, b, c) = s.percentages();
    format!(
        "{label:<34} rows {:>3}  status {a:>5.1} %  hard/soft {b:>5.1} %  category {c:>5.1} %",
        s.rows
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let verbose = args.iter().any(|a| a == "--verbose");
    // `--holdout-misses tuning` prints the disagreements of the hold-out's tuning half (the
    // final half is scored, never listed, while rules are being written).
    let misses_of = args
        .iter()
        .position(|a| a == "--holdout-misses")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    let files = agreement::load(&agreement::shared_corpus()).expect("shared corpus");
    let folds = folds(&files);
    let all = Rules::all();
    let (mut tuned_total, mut shipped_total) = (Score::default(), Score::default());
    let mut dropped: BTreeMap<&str, usize> = BTreeMap::new();
    println!("Cross-validation by reporting MTA ({FOLDS} folds) on the shared corpus\n");
    for (k, held) in folds.iter().enumerate() {
        let train: Vec<&File> = folds
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != k)
            .flat_map(|(_, f)| f.iter().copied())
            .collect();
        let rules = tune(&train);
        let tuned = score(held, &rules);
        let shipped = score(held, &all);
        tuned_total.add(tuned);
        shipped_total.add(shipped);
        let mut names: Vec<&str> = held.iter().map(|f| agreement::family(&f.name)).collect();
        names.dedup();
        println!("fold {k}: {}", names.join(" "));
        println!("  {}", line("held out, groups tuned on the rest", &tuned));
        println!("  {}", line("held out, every group on", &shipped));
        println!("  dropped by tuning: {}", rules.off().join(" "));
        for g in rules.off() {
            *dropped.entry(g).or_default() += 1;
        }
    }
    println!();
    println!("{}", line("pooled held-out folds, tuned", &tuned_total));
    println!(
        "{}",
        line("pooled held-out folds, all groups", &shipped_total)
    );
    println!(
        "{}",
        line(
            "in-sample, all groups",
            &score(&files.iter().collect::<Vec<_>>(), &all)
        )
    );
    let never = RULE_GROUPS
        .iter()
        .filter(|g| !dropped.contains_key(*g))
        .copied()
        .collect::<Vec<_>>();
    println!("\ngroups kept by every fold: {}", never.join(" "));
    let mut counts: Vec<_> = dropped.into_iter().collect();
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    println!(
        "groups dropped (folds of {FOLDS}): {}",
        counts
            .iter()
            .map(|(g, n)| format!("{g}:{n}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    if let Some(hold) = agreement::load(&agreement::holdout()) {
        let refs: Vec<&File> = hold.iter().collect();
        let (tuning, last) = agreement::split_by_family(&hold);
        println!();
        println!(
            "{}",
            line("hold-out (tests/holdout), all", &score(&refs, &all))
        );
        println!("{}", line("hold-out, tuning half", &score(&tuning, &all)));
        println!("{}", line("hold-out, final half", &score(&last, &all)));
        if let Some(half) = misses_of {
            let files = if half == "final" { &last } else { &tuning };
            println!("\nDisagreements in the {half} half of the hold-out:");
            for f in files {
                let got = try_parse_with(&f.raw, &all).unwrap_or(Returned::Unrecognised);
                let mut misses = Vec::new();
                agreement::score_file(f, &got, Some(&mut misses));
                misses.iter().for_each(|m| println!("  {m}"));
            }
        }
    }
    if verbose {
        println!("\nPer reporting MTA, every group on:");
        let mut per: BTreeMap<&str, Score> = BTreeMap::new();
        for f in &files {
            let got = try_parse_with(&f.raw, &all).unwrap_or(Returned::Unrecognised);
            per.entry(agreement::family(&f.name))
                .or_default()
                .add(agreement::score_file(f, &got, None));
        }
        for (fam, s) in per {
            println!("  {}", line(fam, &s));
        }
    }
}
