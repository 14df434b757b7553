//! Spam traps petrel can know about: the operator's own list (`spam-trap-file`, one
//! `ADDRESS-OR-DOMAIN TYPE` per line) and typo domains — a recipient domain one edit away
//! from a major mailbox provider's domain that is not itself a real provider domain
//! (`gmal.com`, `hotmial.com`). SparkPost's recycled-trap feeds are its own (spec §4.4).

use std::collections::HashMap;

/// The kind of trap hit, as `trap_hits_<type>` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrapType {
    /// An old address turned into a trap.
    Recycled,
    /// A look-alike of a provider domain.
    Typo,
    /// A parked domain.
    Parked,
}

impl TrapType {
    /// `recycled`, `typo` or `parked`.
    pub fn name(self) -> &'static str {
        match self {
            TrapType::Recycled => "recycled",
            TrapType::Typo => "typo",
            TrapType::Parked => "parked",
        }
    }

    fn parse(s: &str) -> Option<TrapType> {
        match s.to_ascii_lowercase().as_str() {
            "recycled" => Some(TrapType::Recycled),
            "typo" => Some(TrapType::Typo),
            "parked" => Some(TrapType::Parked),
            _ => None,
        }
    }
}

/// A line of a trap file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrapFileError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The operator's trap list: exact addresses and whole domains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrapList {
    addresses: HashMap<String, TrapType>,
    domains: HashMap<String, TrapType>,
}

impl TrapList {
    /// Parses a trap file. Blank lines and `#` comments are skipped; every other line is
    /// `ADDRESS-OR-DOMAIN TYPE`. All bad lines are reported, each with its line number.
    pub fn parse(text: &str) -> Result<TrapList, Vec<TrapFileError>> {
        let mut list = TrapList::default();
        let mut errors = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(target), Some(kind), None) = (words.next(), words.next(), words.next())
            else {
                errors.push(TrapFileError {
                    line: n + 1,
                    message: format!("`{line}` is not `ADDRESS-OR-DOMAIN TYPE`"),
                });
                continue;
            };
            let Some(kind) = TrapType::parse(kind) else {
                errors.push(TrapFileError {
                    line: n + 1,
                    message: format!("unknown trap type `{kind}` (use recycled, typo or parked)"),
                });
                continue;
            };
            let target = target.to_ascii_lowercase();
            let valid = |d: &str| {
                !d.is_empty()
                    && d.contains('.')
                    && d.split('.').all(|l| {
                        !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    })
            };
            match target.rsplit_once('@') {
                Some((local, domain)) if !local.is_empty() && valid(domain) => {
                    list.addresses.insert(target.clone(), kind);
                }
                None if valid(&target) => {
                    list.domains.insert(target, kind);
                }
                _ => errors.push(TrapFileError {
                    line: n + 1,
                    message: format!("`{target}` is not an email address or a domain name"),
                }),
            }
        }
        if errors.is_empty() {
            Ok(list)
        } else {
            Err(errors)
        }
    }

    /// Entries in the list.
    pub fn len(&self) -> usize {
        self.addresses.len() + self.domains.len()
    }

    /// True when the list has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The trap `recipient` (an address, or only a domain under privacy hashing) hits:
    /// the operator's list first, then typo detection on the domain.
    pub fn check(&self, address: Option<&str>, domain: &str) -> Option<TrapType> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        if let Some(a) = address {
            if let Some(t) = self.addresses.get(&a.to_ascii_lowercase()) {
                return Some(*t);
            }
        }
        if let Some(t) = self.domains.get(&domain) {
            return Some(*t);
        }
        is_typo_domain(&domain).then_some(TrapType::Typo)
    }
}

/// Domains of the major mailbox providers whose look-alikes count as typo traps.
const MAJOR: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "ymail.com",
    "hotmail.com",
    "outlook.com",
    "live.com",
    "msn.com",
    "aol.com",
    "icloud.com",
    "comcast.net",
    "verizon.net",
    "yahoo.co.uk",
    "hotmail.co.uk",
    "gmx.de",
    "web.de",
    "t-online.de",
    "orange.fr",
    "wanadoo.fr",
];

/// Real domains one edit away from a major one: never typo traps.
const REAL: &[&str] = &[
    "mail.com",
    "email.com",
    "gmx.com",
    "gmx.net",
    "gmx.at",
    "live.de",
    "live.fr",
    "aim.com",
    "mac.com",
    "me.com",
    "ymail.net",
    "yahoo.de",
    "yahoo.fr",
    "yahoo.es",
    "yahoo.it",
    "hotmail.de",
    "hotmail.fr",
    "hotmail.es",
    "hotmail.it",
    "outlook.de",
    "outlook.fr",
    "msn.net",
    "aol.de",
    "aol.fr",
    "web.com",
    "icloud.net",
];

/// True when `domain` is one insertion, deletion, substitution or transposition away from
/// a major provider domain and is not a real domain of its own.
pub fn is_typo_domain(domain: &str) -> bool {
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    if MAJOR.contains(&d.as_str()) || REAL.contains(&d.as_str()) {
        return false;
    }
    MAJOR
        .iter()
        .any(|m| one_edit_apart(d.as_bytes(), m.as_bytes()))
}

/// Damerau–Levenshtein distance exactly 1 (optimal string alignment).
fn one_edit_apart(a: &[u8], b: &[u8]) -> bool {
    if a == b || a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (a, b) = (&a[prefix..], &b[prefix..]);
    match a.len().cmp(&b.len()) {
        std::cmp::Ordering::Equal => {
            a[1..] == b[1..] || (a.len() >= 2 && a[0] == b[1] && a[1] == b[0] && a[2..] == b[2..])
        }
        std::cmp::Ordering::Less => a == &b[1..],
        std::cmp::Ordering::Greater => &a[1..] == b,
    }
}

/// Local parts of role accounts, typical of bought or scraped lists: the "List Quality"
/// component of the Health Score counts injections to them.
const ROLE_LOCAL_PARTS: &[&str] = &[
    "abuse",
    "admin",
    "administrator",
    "billing",
    "contact",
    "info",
    "hostmaster",
    "marketing",
    "noreply",
    "no-reply",
    "office",
    "postmaster",
    "root",
    "sales",
    "spam",
    "support",
    "webmaster",
];

/// True when the recipient looks like a dirty-list address: a role account or a typo
/// domain. With hashed recipients only the domain can be judged.
pub fn is_list_quality_hit(address: Option<&str>, domain: &str) -> bool {
    let role = address
        .and_then(|a| a.rsplit_once('@'))
        .is_some_and(|(local, _)| ROLE_LOCAL_PARTS.contains(&local.to_ascii_lowercase().as_str()));
    role || is_typo_domain(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_domains() {
        for typo in [
            "gmal.com",
            "gmial.com",
            "gmaill.com",
            "hotmial.com",
            "yaho.com",
            "outlok.com",
        ] {
            assert!(is_typo_domain(typo), "{typo}");
        }
        for real in [
            "gmail.com",
            "mail.com",
            "example.com",
            "gmx.com",
            "yahoo.com",
            "sink.example",
        ] {
            assert!(!is_typo_domain(real), "{real}");
        }
    }

    #[test]
    fn trap_file() {
        let list = TrapList::parse("# traps\nold@example.com recycled\nparked.example parked\n\n")
            .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(
            list.check(Some("OLD@example.com"), "example.com"),
            Some(TrapType::Recycled)
        );
        assert_eq!(
            list.check(Some("x@parked.example"), "parked.example"),
            Some(TrapType::Parked)
        );
        assert_eq!(
            list.check(Some("x@gmial.com"), "gmial.com"),
            Some(TrapType::Typo)
        );
        assert_eq!(list.check(Some("x@example.com"), "example.com"), None);
        let errs =
            TrapList::parse("a@b.com recycled\nfoo\nx@y.com spammy\n@bad.com typo\n").unwrap_err();
        let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 4]);
        assert!(errs[1].message.contains("spammy"));
    }

    #[test]
    fn list_quality() {
        assert!(is_list_quality_hit(Some("info@example.com"), "example.com"));
        assert!(is_list_quality_hit(None, "gmal.com"));
        assert!(!is_list_quality_hit(Some("ana@example.com"), "example.com"));
    }
}
