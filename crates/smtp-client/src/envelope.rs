//! One mail transaction: what the caller asks for, the commands that go on the wire, and the
//! per-recipient outcome. Everything here is pure; `connection.rs` does the I/O.

use petrel_smtp::{Notify, Reply, Ret};

use crate::extensions::Extensions;

/// One recipient of a transaction, with its DSN parameters as stored in the spool
/// (RFC 3461: `NOTIFY=` list and `ORCPT=` decoded, e.g. `rfc822;user@example.com`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecipientSpec<'a> {
    /// The forward path without angle brackets.
    pub address: &'a str,
    /// `NOTIFY=` values, passed on when the peer offers DSN.
    pub notify: Option<&'a [Notify]>,
    /// `ORCPT=` (decoded `type;address`; a value without `;` is taken as `rfc822`), passed on
    /// when the peer offers DSN.
    pub orcpt: Option<&'a str>,
}

impl<'a> RecipientSpec<'a> {
    /// A recipient without DSN parameters.
    pub fn new(address: &'a str) -> Self {
        RecipientSpec {
            address,
            notify: None,
            orcpt: None,
        }
    }
}

/// The envelope of one message delivery attempt. Borrowed, so the delivery engine can point
/// into its spool records without copying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transaction<'a> {
    /// The reverse path without angle brackets; `""` is the null sender.
    pub mail_from: &'a str,
    /// Recipients in the order their replies are wanted.
    pub recipients: &'a [RecipientSpec<'a>],
    /// DSN `RET=`, passed on when the peer offers DSN.
    pub ret: Option<Ret>,
    /// DSN `ENVID=` (decoded), passed on when the peer offers DSN.
    pub envid: Option<&'a str>,
    /// The message needs SMTPUTF8 (UTF-8 headers). Non-ASCII addresses imply it too.
    pub smtputf8: bool,
    /// The body has bytes above 127, so `BODY=8BITMIME` is declared when offered.
    pub body_8bit: bool,
    /// Message size in bytes, declared as `SIZE=` when the peer offers SIZE.
    pub size: u64,
}

/// Something the caller has to know about how the transaction was carried out, beyond the
/// replies: downgrades that change what DSNs to write, and replies made up locally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransactionNote {
    /// The body has 8-bit bytes but the peer does not offer 8BITMIME; it was sent anyway,
    /// as most MTAs do, since converting it would break signatures.
    EightBitWithout8BitMime,
    /// DSN parameters were asked for but the peer does not offer DSN, so they were dropped;
    /// RFC 3461 §4.3 makes petrel send `relayed` notices for `NOTIFY=SUCCESS` itself.
    DsnNotOffered,
    /// SMTPUTF8 was needed but not offered: nothing was sent and every reply is a
    /// locally made `553 5.6.7`.
    Smtputf8NotOffered,
    /// The sender cannot be written in a command (control character or angle bracket):
    /// nothing was sent and every reply is a locally made `501 5.1.7`.
    InvalidSender,
    /// This recipient (an index into [`Transaction::recipients`]) cannot be written in a
    /// command: it was left out and its reply is a locally made `501 5.1.3`.
    InvalidRecipient(usize),
}

/// What the server answered, per phase. Rejections are data here, not errors: the caller
/// turns each recipient's reply into a delivery, a retry or a bounce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionOutcome {
    /// The reply to MAIL FROM.
    pub mail: Reply,
    /// One reply per recipient, in the order of [`Transaction::recipients`]. When MAIL
    /// failed, each is a copy of the MAIL reply, since that is what decided their fate.
    pub rcpts: Vec<Reply>,
    /// The reply to DATA when it was refused, else the reply to the final dot. `None` when
    /// MAIL failed or no recipient was accepted.
    pub data: Option<Reply>,
    /// Downgrades and locally made replies; empty in the common case.
    pub notes: Vec<TransactionNote>,
}

impl TransactionOutcome {
    /// The reply that decides recipient `i`: the MAIL reply if MAIL failed, else the RCPT
    /// reply if that failed, else the DATA/dot reply. A 2xx here means delivered.
    ///
    /// # Panics
    /// When `i` is not a recipient index.
    pub fn recipient_reply(&self, i: usize) -> &Reply {
        let rcpt = &self.rcpts[i];
        if !is_positive(&self.mail) || !is_positive(rcpt) {
            return rcpt;
        }
        self.data.as_ref().unwrap_or(rcpt)
    }

    /// True when recipient `i` was delivered (its deciding reply is 2xx).
    pub fn delivered(&self, i: usize) -> bool {
        is_positive(self.recipient_reply(i))
    }
}

/// 2xx.
pub(crate) fn is_positive(r: &Reply) -> bool {
    (200..300).contains(&r.code)
}

/// The commands of one transaction, ready to write.
#[derive(Debug)]
pub(crate) struct Plan {
    /// `MAIL FROM:<…> params CRLF`.
    pub mail: Vec<u8>,
    /// `(recipient index, RCPT TO:<…> params CRLF)` for each recipient that can be sent.
    pub rcpts: Vec<(usize, Vec<u8>)>,
    /// Locally made replies for recipients that are not sent, by recipient index.
    pub local: Vec<Option<Reply>>,
    /// Notes gathered while planning.
    pub notes: Vec<TransactionNote>,
}

/// Either the commands to send, or an outcome decided without sending anything.
#[derive(Debug)]
pub(crate) enum Prepared {
    Send(Plan),
    Refused(TransactionOutcome),
}

/// Builds the commands for `tx` given what the peer offered.
pub(crate) fn prepare(tx: &Transaction<'_>, ext: &Extensions) -> Prepared {
    let n = tx.recipients.len();
    let refused = |reply: Reply, note: TransactionNote| {
        Prepared::Refused(TransactionOutcome {
            rcpts: vec![reply.clone(); n],
            mail: reply,
            data: None,
            notes: vec![note],
        })
    };
    if !writable(tx.mail_from) {
        return refused(
            Reply::new(
                501,
                (5, 1, 7),
                "sender address cannot be written in an SMTP command; not sent",
            ),
            TransactionNote::InvalidSender,
        );
    }
    let needs_utf8 = tx.smtputf8
        || !tx.mail_from.is_ascii()
        || tx.recipients.iter().any(|r| !r.address.is_ascii());
    if needs_utf8 && !ext.smtputf8 {
        return refused(
            Reply::new(
                553,
                (5, 6, 7),
                "SMTPUTF8 is required but the remote host does not offer it; not sent",
            ),
            TransactionNote::Smtputf8NotOffered,
        );
    }

    let mut notes = Vec::new();
    let wants_dsn = tx.ret.is_some()
        || tx.envid.is_some()
        || tx
            .recipients
            .iter()
            .any(|r| r.notify.is_some() || r.orcpt.is_some());
    if wants_dsn && !ext.dsn {
        notes.push(TransactionNote::DsnNotOffered);
    }
    if tx.body_8bit && !ext.eight_bit_mime {
        notes.push(TransactionNote::EightBitWithout8BitMime);
    }

    let mut mail = format!("MAIL FROM:<{}>", tx.mail_from);
    if ext.size.is_some() {
        mail.push_str(&format!(" SIZE={}", tx.size));
    }
    if tx.body_8bit && ext.eight_bit_mime {
        mail.push_str(" BODY=8BITMIME");
    }
    if needs_utf8 {
        mail.push_str(" SMTPUTF8");
    }
    if ext.dsn {
        match tx.ret {
            Some(Ret::Full) => mail.push_str(" RET=FULL"),
            Some(Ret::Hdrs) => mail.push_str(" RET=HDRS"),
            None => {}
        }
        if let Some(envid) = tx.envid {
            mail.push_str(" ENVID=");
            xtext_encode(envid, &mut mail);
        }
    }
    mail.push_str("\r\n");

    let mut rcpts = Vec::with_capacity(n);
    let mut local = vec![None; n];
    for (i, r) in tx.recipients.iter().enumerate() {
        if r.address.is_empty() || !writable(r.address) {
            local[i] = Some(Reply::new(
                501,
                (5, 1, 3),
                "recipient address cannot be written in an SMTP command; not sent",
            ));
            notes.push(TransactionNote::InvalidRecipient(i));
            continue;
        }
        rcpts.push((i, rcpt_command(r, ext.dsn).into_bytes()));
    }
    if rcpts.is_empty() {
        let reply = Reply::new(
            554,
            (5, 5, 1),
            "no recipient address could be sent; nothing sent",
        );
        let rcpts = local
            .into_iter()
            .map(|l| l.unwrap_or_else(|| reply.clone()))
            .collect();
        return Prepared::Refused(TransactionOutcome {
            mail: reply,
            rcpts,
            data: None,
            notes,
        });
    }
    Prepared::Send(Plan {
        mail: mail.into_bytes(),
        rcpts,
        local,
        notes,
    })
}

/// `RCPT TO:<…>` with the DSN parameters when the peer offers DSN.
fn rcpt_command(r: &RecipientSpec<'_>, dsn: bool) -> String {
    let mut cmd = format!("RCPT TO:<{}>", r.address);
    if dsn {
        if let Some(notify) = r.notify {
            let words: Vec<&str> = notify
                .iter()
                .map(|n| match n {
                    Notify::Never => "NEVER",
                    Notify::Success => "SUCCESS",
                    Notify::Failure => "FAILURE",
                    Notify::Delay => "DELAY",
                })
                .collect();
            if !words.is_empty() {
                cmd.push_str(" NOTIFY=");
                cmd.push_str(&words.join(","));
            }
        }
        if let Some(orcpt) = r.orcpt {
            let (kind, addr) = orcpt.split_once(';').unwrap_or(("rfc822", orcpt));
            cmd.push_str(" ORCPT=");
            xtext_encode(kind, &mut cmd);
            cmd.push(';');
            xtext_encode(addr, &mut cmd);
        }
    }
    cmd.push_str("\r\n");
    cmd
}

impl Plan {
    /// Puts the server's replies (one per sent recipient, in order) and the locally made
    /// ones back into recipient order.
    pub(crate) fn outcome(
        self,
        mail: Reply,
        sent: Vec<Reply>,
        data: Option<Reply>,
    ) -> TransactionOutcome {
        let mail_ok = is_positive(&mail);
        let mut rcpts: Vec<Option<Reply>> = self.local;
        for ((i, _), reply) in self.rcpts.iter().zip(sent) {
            rcpts[*i] = Some(if mail_ok { reply } else { mail.clone() });
        }
        let rcpts = rcpts
            .into_iter()
            .map(|r| r.unwrap_or_else(|| mail.clone()))
            .collect();
        TransactionOutcome {
            data: if mail_ok { data } else { None },
            mail,
            rcpts,
            notes: self.notes,
        }
    }
}

/// True when the address can go between angle brackets without breaking the command line.
fn writable(address: &str) -> bool {
    !address
        .bytes()
        .any(|b| b < 0x20 || b == 0x7f || b == b'<' || b == b'>')
}

/// RFC 3461 §4 xtext: printable ASCII except `+` and `=` as is, everything else `+HH`.
fn xtext_encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext_all() -> Extensions {
        Extensions {
            pipelining: true,
            size: Some(0),
            eight_bit_mime: true,
            smtputf8: true,
            dsn: true,
            ..Extensions::default()
        }
    }

    fn tx<'a>(rcpts: &'a [RecipientSpec<'a>]) -> Transaction<'a> {
        Transaction {
            mail_from: "bounce@example.com",
            recipients: rcpts,
            ret: None,
            envid: None,
            smtputf8: false,
            body_8bit: false,
            size: 1234,
        }
    }

    fn plan(p: Prepared) -> Plan {
        match p {
            Prepared::Send(p) => p,
            Prepared::Refused(o) => panic!("refused: {o:?}"),
        }
    }

    fn text(v: &[u8]) -> &str {
        std::str::from_utf8(v).unwrap()
    }

    #[test]
    fn parameters_only_when_offered() {
        let notify = [Notify::Success, Notify::Failure];
        let rcpts = [RecipientSpec {
            address: "a@example.org",
            notify: Some(&notify),
            orcpt: Some("rfc822;a+b=c@example.org"),
        }];
        let mut t = tx(&rcpts);
        t.ret = Some(Ret::Hdrs);
        t.envid = Some("id 1");
        t.body_8bit = true;

        let p = plan(prepare(&t, &ext_all()));
        assert_eq!(
            text(&p.mail),
            "MAIL FROM:<bounce@example.com> SIZE=1234 BODY=8BITMIME RET=HDRS ENVID=id+201\r\n"
        );
        assert_eq!(
            text(&p.rcpts[0].1),
            "RCPT TO:<a@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+2Bb+3Dc@example.org\r\n"
        );
        assert!(p.notes.is_empty());

        let p = plan(prepare(&t, &Extensions::default()));
        assert_eq!(text(&p.mail), "MAIL FROM:<bounce@example.com>\r\n");
        assert_eq!(text(&p.rcpts[0].1), "RCPT TO:<a@example.org>\r\n");
        assert_eq!(
            p.notes,
            [
                TransactionNote::DsnNotOffered,
                TransactionNote::EightBitWithout8BitMime
            ]
        );
    }

    #[test]
    fn orcpt_without_type_is_rfc822_and_null_sender_is_allowed() {
        let rcpts = [RecipientSpec {
            address: "a@example.org",
            notify: Some(&[Notify::Never]),
            orcpt: Some("a@example.org"),
        }];
        let mut t = tx(&rcpts);
        t.mail_from = "";
        let p = plan(prepare(&t, &ext_all()));
        assert_eq!(text(&p.mail), "MAIL FROM:<> SIZE=1234\r\n");
        assert_eq!(
            text(&p.rcpts[0].1),
            "RCPT TO:<a@example.org> NOTIFY=NEVER ORCPT=rfc822;a@example.org\r\n"
        );
    }

    #[test]
    fn smtputf8_is_declared_or_refused_locally() {
        let rcpts = [RecipientSpec::new("jörg@example.de")];
        let t = tx(&rcpts);
        let p = plan(prepare(&t, &ext_all()));
        assert_eq!(
            text(&p.mail),
            "MAIL FROM:<bounce@example.com> SIZE=1234 SMTPUTF8\r\n"
        );

        let Prepared::Refused(o) = prepare(&t, &Extensions::default()) else {
            panic!("should be refused");
        };
        assert_eq!(o.mail.code, 553);
        assert_eq!(o.mail.enhanced, Some(petrel_smtp::EnhancedCode(5, 6, 7)));
        assert_eq!(o.rcpts.len(), 1);
        assert_eq!(o.data, None);
        assert_eq!(o.notes, [TransactionNote::Smtputf8NotOffered]);
        assert!(!o.delivered(0));

        let rcpts = [RecipientSpec::new("plain@example.de")];
        let mut t = tx(&rcpts);
        t.smtputf8 = true;
        assert!(matches!(
            prepare(&t, &Extensions::default()),
            Prepared::Refused(_)
        ));
    }

    #[test]
    fn unwritable_addresses_are_answered_locally() {
        let rcpts = [
            RecipientSpec::new("ok@example.org"),
            RecipientSpec::new("evil@example.org>\r\nRSET"),
            RecipientSpec::new(""),
        ];
        let p = plan(prepare(&tx(&rcpts), &ext_all()));
        assert_eq!(p.rcpts.len(), 1);
        assert_eq!(
            p.notes,
            [
                TransactionNote::InvalidRecipient(1),
                TransactionNote::InvalidRecipient(2)
            ]
        );
        let o = p.outcome(
            Reply::new(250, (2, 1, 0), "ok"),
            vec![Reply::new(250, (2, 1, 5), "ok")],
            Some(Reply::new(250, (2, 0, 0), "queued")),
        );
        assert!(o.delivered(0));
        assert_eq!(o.rcpts[1].code, 501);
        assert_eq!(o.recipient_reply(1).code, 501);
        assert_eq!(o.recipient_reply(0).lines, ["queued"]);

        let mut t = tx(&rcpts[..1]);
        t.mail_from = "x\n@y";
        let Prepared::Refused(o) = prepare(&t, &ext_all()) else {
            panic!("should be refused");
        };
        assert_eq!(
            (o.mail.code, o.notes[0]),
            (501, TransactionNote::InvalidSender)
        );

        let Prepared::Refused(o) = prepare(&tx(&rcpts[1..]), &ext_all()) else {
            panic!("should be refused");
        };
        assert_eq!(o.mail.code, 554);
        assert_eq!(
            o.rcpts.iter().map(|r| r.code).collect::<Vec<_>>(),
            [501, 501]
        );
    }

    #[test]
    fn failed_mail_decides_every_recipient() {
        let rcpts = [RecipientSpec::new("a@x.org"), RecipientSpec::new("b@x.org")];
        let p = plan(prepare(&tx(&rcpts), &ext_all()));
        let o = p.outcome(
            Reply::new(451, (4, 3, 0), "try later"),
            vec![
                Reply::new(503, (5, 5, 1), "need MAIL"),
                Reply::new(503, (5, 5, 1), "need MAIL"),
            ],
            Some(Reply::new(503, (5, 5, 1), "need MAIL")),
        );
        assert_eq!(
            o.rcpts.iter().map(|r| r.code).collect::<Vec<_>>(),
            [451, 451]
        );
        assert_eq!(o.data, None);
        assert_eq!(o.recipient_reply(1).code, 451);
    }

    #[test]
    fn xtext_escapes_plus_equals_and_non_printables() {
        let mut s = String::new();
        xtext_encode("a+b=c d\u{e9}", &mut s);
        assert_eq!(s, "a+2Bb+3Dc+20d+C3+A9");
    }
}
