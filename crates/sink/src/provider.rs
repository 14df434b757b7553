//! Reply texts in the style of the big mailbox providers, chosen by recipient domain, so
//! petrel's reply classifier and `<smtp-pattern-list>` rules meet the wording they meet in
//! production. The texts follow what Gmail, Microsoft (Outlook.com / Office 365) and Yahoo
//! answer; the host names and addresses in them are made up.
//!
//! Pure: texts only. The session decides when to send them.

use std::net::IpAddr;

use petrel_smtp::{EnhancedCode, Reply};

/// A family of reply texts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Style {
    /// Gmail / Google Workspace: multi-line replies ending in `- gsmtp`.
    Gmail,
    /// Outlook.com, Hotmail, Office 365.
    Microsoft,
    /// Yahoo and AOL: bracketed codes such as `[TSS04]`.
    Yahoo,
    /// Postfix-like texts for everyone else.
    Generic,
}

impl Style {
    /// The name used in the configuration (`provider example.com gmail`).
    pub fn name(self) -> &'static str {
        match self {
            Style::Gmail => "gmail",
            Style::Microsoft => "microsoft",
            Style::Yahoo => "yahoo",
            Style::Generic => "generic",
        }
    }

    /// Parses a configuration name.
    pub fn from_name(s: &str) -> Option<Style> {
        [Style::Gmail, Style::Microsoft, Style::Yahoo, Style::Generic]
            .into_iter()
            .find(|st| st.name().eq_ignore_ascii_case(s))
    }

    /// The style for a recipient domain: the operator's `provider` lines first (a domain
    /// and its subdomains), else a provider's name anywhere in the domain (`gmail.com`,
    /// `gmail.example`, `mx.outlook.test`), else generic.
    pub fn for_domain(domain: &str, overrides: &[(String, Style)]) -> Style {
        let d = domain.trim_end_matches('.').to_ascii_lowercase();
        for (suffix, style) in overrides {
            if d == *suffix || d.ends_with(&format!(".{suffix}")) {
                return *style;
            }
        }
        const WORDS: [(&str, Style); 10] = [
            ("gmail", Style::Gmail),
            ("googlemail", Style::Gmail),
            ("google", Style::Gmail),
            ("outlook", Style::Microsoft),
            ("hotmail", Style::Microsoft),
            ("live", Style::Microsoft),
            ("msn", Style::Microsoft),
            ("yahoo", Style::Yahoo),
            ("aol", Style::Yahoo),
            ("ymail", Style::Yahoo),
        ];
        d.split(['.', '-'])
            .find_map(|label| {
                WORDS
                    .iter()
                    .find(|(w, _)| label == *w)
                    .map(|(_, style)| *style)
            })
            .unwrap_or(Style::Generic)
    }
}

/// The refusals the sink gives at RCPT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The mailbox does not exist (`550 5.1.1`).
    Hard,
    /// The sending IP is on a blocklist (`550 5.7.1`).
    Block,
    /// The mailbox is full (`452 4.2.2`).
    Soft,
    /// Try again later (`421 4.7.0`; the connection closes).
    Defer,
    /// STARTTLS first (`530 5.7.0`).
    TlsRequired,
}

fn reply(code: u16, e: (u8, u16, u16), lines: &[String]) -> Reply {
    Reply {
        code,
        enhanced: Some(EnhancedCode(e.0, e.1, e.2)),
        lines: lines.to_vec(),
    }
}

/// The reply for a refusal, in `style`, naming the recipient and the client's address where
/// the provider does.
pub fn refusal(style: Style, kind: Refusal, rcpt: &str, client: IpAddr) -> Reply {
    let s = |t: &str| t.to_string();
    match (style, kind) {
        (Style::Gmail, Refusal::Hard) => reply(
            550,
            (5, 1, 1),
            &[
                s("The email account that you tried to reach does not exist. Please try"),
                s("double-checking the recipient's email address for typos or"),
                s("unnecessary spaces. For more information, go to"),
                s(" https://support.google.com/mail/?p=NoSuchUser - gsmtp"),
            ],
        ),
        (Style::Gmail, Refusal::Block) => reply(
            550,
            (5, 7, 1),
            &[
                format!("[{client}] Our system has detected that this message is likely"),
                s("suspicious due to the very low reputation of the sending IP address."),
                s("To best protect our users from spam, the message has been blocked."),
                s(" https://support.google.com/mail/answer/188131 - gsmtp"),
            ],
        ),
        (Style::Gmail, Refusal::Soft) => reply(
            452,
            (4, 2, 2),
            &[
                s("The email account that you tried to reach is over quota. Please direct"),
                s("the recipient to"),
                s(" https://support.google.com/mail/?p=OverQuotaTemp - gsmtp"),
            ],
        ),
        (Style::Gmail, Refusal::Defer) => reply(
            421,
            (4, 7, 0),
            &[
                s("Try again later, closing connection. This message was not"),
                s("delivered because of a temporary problem. For more information, go to"),
                s(" https://support.google.com/mail/?p=TempFail - gsmtp"),
            ],
        ),
        (Style::Gmail, Refusal::TlsRequired) => reply(
            530,
            (5, 7, 0),
            &[s("Must issue a STARTTLS command first. - gsmtp")],
        ),
        (Style::Microsoft, Refusal::Hard) => reply(
            550,
            (5, 1, 1),
            &[format!(
                "Requested action not taken: mailbox unavailable ({rcpt}). [BN8NAM12FT045.eop-nam12.prod.protection.outlook.com]"
            )],
        ),
        (Style::Microsoft, Refusal::Block) => reply(
            550,
            (5, 7, 1),
            &[format!(
                "Unfortunately, messages from [{client}] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150). You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors."
            )],
        ),
        (Style::Microsoft, Refusal::Soft) => reply(
            452,
            (4, 2, 2),
            &[s(
                "The recipient's mailbox is full and can't accept messages now. Please try resending this message later, or contact the recipient directly.",
            )],
        ),
        (Style::Microsoft, Refusal::Defer) => reply(
            421,
            (4, 7, 0),
            &[format!(
                "Server busy. Please try again later from [{client}]. (S77714) [DM6NAM12FT012.eop-nam12.prod.protection.outlook.com]"
            )],
        ),
        (Style::Microsoft, Refusal::TlsRequired) => reply(
            530,
            (5, 7, 0),
            &[s("Must issue a STARTTLS command first")],
        ),
        (Style::Yahoo, Refusal::Hard) => reply(
            550,
            (5, 1, 1),
            &[s("Requested action not taken: mailbox unavailable")],
        ),
        (Style::Yahoo, Refusal::Block) => reply(
            550,
            (5, 7, 1),
            &[format!(
                "[BL21] Connections will not be accepted from {client}, because the ip is in Spamhaus's list; see https://postmaster.yahooinc.com/error-codes"
            )],
        ),
        (Style::Yahoo, Refusal::Soft) => reply(
            452,
            (4, 2, 2),
            &[s("Mailbox full, message deferred; see https://postmaster.yahooinc.com/error-codes")],
        ),
        (Style::Yahoo, Refusal::Defer) => reply(
            421,
            (4, 7, 0),
            &[format!(
                "[TSS04] Messages from {client} temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes"
            )],
        ),
        (Style::Yahoo, Refusal::TlsRequired) => reply(
            530,
            (5, 7, 0),
            &[s("Must issue a STARTTLS command first")],
        ),
        (Style::Generic, Refusal::Hard) => reply(
            550,
            (5, 1, 1),
            &[format!(
                "<{rcpt}>: Recipient address rejected: User unknown in virtual mailbox table"
            )],
        ),
        (Style::Generic, Refusal::Block) => reply(
            550,
            (5, 7, 1),
            &[format!(
                "Service unavailable; Client host [{client}] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/{client}"
            )],
        ),
        (Style::Generic, Refusal::Soft) => reply(
            452,
            (4, 2, 2),
            &[format!("<{rcpt}>: Recipient address rejected: Mailbox full")],
        ),
        (Style::Generic, Refusal::Defer) => reply(
            421,
            (4, 7, 0),
            &[s("Try again later, closing connection")],
        ),
        (Style::Generic, Refusal::TlsRequired) => reply(
            530,
            (5, 7, 0),
            &[s("Must issue a STARTTLS command first")],
        ),
    }
}

/// The diagnostic an out-of-band bounce reports: the remote system's reply for an unknown
/// mailbox, on one line, as a DSN's `Diagnostic-Code` carries it.
pub fn oob_diagnostic(style: Style, rcpt: &str, client: IpAddr) -> String {
    let r = refusal(style, Refusal::Hard, rcpt, client);
    let text: Vec<&str> = r.lines.iter().map(|l| l.trim()).collect();
    format!("{} 5.1.1 {}", r.code, text.join(" "))
}

/// Who writes a provider's bounces and complaints, and how they look.
pub struct ReportLook {
    /// The report's `From:`.
    pub from: &'static str,
    /// The DSN's `Subject:` (the original subject follows where the provider adds it).
    pub dsn_subject: &'static str,
    /// Whether the original subject is appended to `dsn_subject`.
    pub subject_suffix: bool,
    /// The ARF `User-Agent:`.
    pub arf_agent: &'static str,
    /// The complaint's `From:`.
    pub arf_from: &'static str,
}

/// The report look of `style`.
pub fn look(style: Style) -> ReportLook {
    match style {
        Style::Gmail => ReportLook {
            from: "Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
            dsn_subject: "Delivery Status Notification (Failure)",
            subject_suffix: false,
            arf_agent: "Gmail-FBL/1.0",
            arf_from: "Gmail Feedback Loop <fbl-noreply@google.com>",
        },
        Style::Microsoft => ReportLook {
            from: "Microsoft Outlook <postmaster@outlook.com>",
            dsn_subject: "Undeliverable: ",
            subject_suffix: true,
            arf_agent: "Microsoft-JMRP/2.0",
            arf_from: "Microsoft JMRP <staff@hotmail.com>",
        },
        Style::Yahoo => ReportLook {
            from: "MAILER-DAEMON@yahoo.com",
            dsn_subject: "Failure Notice",
            subject_suffix: false,
            arf_agent: "Yahoo!-Mail-Feedback/2.0",
            arf_from: "Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.com>",
        },
        Style::Generic => ReportLook {
            from: "Mail Delivery System <MAILER-DAEMON@sink.petrel.test>",
            dsn_subject: "Undelivered Mail Returned to Sender",
            subject_suffix: false,
            arf_agent: "petrel-sink/1.0",
            arf_from: "Feedback Loop <fbl@sink.petrel.test>",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use petrel_reply_class::classify;

    const STYLES: [Style; 4] = [Style::Gmail, Style::Microsoft, Style::Yahoo, Style::Generic];

    #[test]
    fn styles_by_domain() {
        assert_eq!(Style::for_domain("gmail.com", &[]), Style::Gmail);
        assert_eq!(Style::for_domain("Googlemail.com", &[]), Style::Gmail);
        assert_eq!(Style::for_domain("gmail.example", &[]), Style::Gmail);
        assert_eq!(Style::for_domain("hotmail.co.uk", &[]), Style::Microsoft);
        assert_eq!(Style::for_domain("outlook.test", &[]), Style::Microsoft);
        assert_eq!(Style::for_domain("yahoo.fr", &[]), Style::Yahoo);
        assert_eq!(Style::for_domain("aol.com", &[]), Style::Yahoo);
        assert_eq!(Style::for_domain("sink.example", &[]), Style::Generic);
        assert_eq!(
            Style::for_domain("deliverable.example", &[]),
            Style::Generic
        );
        let over = vec![("corp.example".to_string(), Style::Microsoft)];
        assert_eq!(
            Style::for_domain("mail.corp.example", &over),
            Style::Microsoft
        );
        assert_eq!(Style::for_domain("corp.example", &over), Style::Microsoft);
        assert_eq!(Style::for_domain("xcorp.example", &over), Style::Generic);
    }

    /// What petrel's classifier makes of each text: the texts are only useful if they land
    /// in the categories a real provider's reply lands in.
    #[test]
    fn petrel_classifies_every_text_as_intended() {
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        for style in STYLES {
            let c = |k| classify(Some(&refusal(style, k, "ana@x.example", ip)), None);
            let hard = c(Refusal::Hard);
            assert_eq!(
                (hard.bounce_cat.as_str(), hard.bounce_class, hard.permanent),
                ("bad-mailbox", 10, true),
                "{style:?}"
            );
            let block = c(Refusal::Block);
            assert!(block.permanent, "{style:?}");
            assert_eq!(
                (block.bounce_cat.as_str(), block.bounce_class),
                ("spam-related", 51),
                "{style:?}"
            );
            let soft = c(Refusal::Soft);
            assert_eq!(
                (soft.bounce_cat.as_str(), soft.permanent),
                ("quota-issues", false),
                "{style:?}"
            );
            assert!(!c(Refusal::Defer).permanent, "{style:?}");
            assert!(c(Refusal::TlsRequired).permanent, "{style:?}");
        }
    }

    #[test]
    fn multi_line_gmail_reply_repeats_the_code() {
        let r = refusal(
            Style::Gmail,
            Refusal::Hard,
            "a@gmail.com",
            "127.0.0.1".parse().unwrap(),
        );
        let wire = r.to_wire();
        assert!(wire.starts_with("550-5.1.1 The email account"), "{wire}");
        assert!(
            wire.contains(
                "\r\n550 5.1.1  https://support.google.com/mail/?p=NoSuchUser - gsmtp\r\n"
            ),
            "{wire}"
        );
    }

    #[test]
    fn oob_diagnostic_is_one_line() {
        let d = oob_diagnostic(Style::Gmail, "a@gmail.com", "127.0.0.1".parse().unwrap());
        assert!(d.starts_with("550 5.1.1 The email account"), "{d}");
        assert!(!d.contains('\n'));
    }
}
