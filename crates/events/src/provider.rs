//! The receiving mailbox provider of a recipient domain, as Signals' "Mailbox Provider"
//! reports group it. SparkPost classifies by MX; petrel, which must not depend on a DNS
//! lookup to write an event, classifies the well-known consumer domains by name and calls
//! everything else `Other`.

/// Consumer domains by provider. A domain matches its entry exactly or through a country
/// suffix written as `name.*` (e.g. `yahoo.*` covers `yahoo.co.uk`).
const PROVIDERS: &[(&str, &[&str])] = &[
    ("Gmail", &["gmail.com", "googlemail.com"]),
    (
        "Yahoo",
        &[
            "yahoo.*",
            "ymail.com",
            "rocketmail.com",
            "aol.com",
            "aim.com",
            "verizon.net",
        ],
    ),
    (
        "Hotmail / Outlook",
        &[
            "hotmail.*",
            "outlook.*",
            "live.*",
            "msn.com",
            "passport.com",
        ],
    ),
    ("Apple", &["icloud.com", "me.com", "mac.com"]),
    ("Comcast", &["comcast.net"]),
    ("GMX", &["gmx.*"]),
    ("Web.de", &["web.de"]),
    ("T-Online", &["t-online.de"]),
    ("Orange", &["orange.fr", "wanadoo.fr"]),
    ("Yandex", &["yandex.*", "ya.ru"]),
    ("Mail.ru", &["mail.ru", "inbox.ru", "list.ru", "bk.ru"]),
    ("QQ", &["qq.com", "foxmail.com"]),
    ("NetEase", &["163.com", "126.com", "yeah.net"]),
    ("Proton", &["proton.me", "protonmail.com", "pm.me"]),
    ("Zoho", &["zoho.com", "zohomail.com"]),
];

/// The provider name for `domain` (case-insensitive), or `"Other"`.
pub fn mailbox_provider(domain: &str) -> &'static str {
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    for (name, patterns) in PROVIDERS {
        for p in *patterns {
            let hit = match p.strip_suffix(".*") {
                Some(stem) => d
                    .strip_prefix(stem)
                    .and_then(|rest| rest.strip_prefix('.'))
                    .is_some_and(|tld| !tld.is_empty() && tld.split('.').count() <= 2),
                None => d == *p,
            };
            if hit {
                return name;
            }
        }
    }
    "Other"
}

#[cfg(test)]
mod tests {
    use super::mailbox_provider;

    #[test]
    fn consumer_domains_and_country_suffixes() {
        assert_eq!(mailbox_provider("Gmail.com"), "Gmail");
        assert_eq!(mailbox_provider("yahoo.co.uk"), "Yahoo");
        assert_eq!(mailbox_provider("hotmail.fr"), "Hotmail / Outlook");
        assert_eq!(mailbox_provider("outlook.com."), "Hotmail / Outlook");
        assert_eq!(mailbox_provider("example.com"), "Other");
        // A stem alone, or a longer name that merely starts like one, is not a match.
        assert_eq!(mailbox_provider("yahoo"), "Other");
        assert_eq!(mailbox_provider("yahoo.evil.example.com"), "Other");
        assert_eq!(mailbox_provider("gmail.com.example"), "Other");
    }
}
