//! PowerMTA accounting field names and each record type's default column order.

use petrel_config::RecordType;

/// A named accounting field (every column except `header_*` and `arf_*`).
///
/// Exists so column selection works on a closed set: an unknown name in `record-fields`
/// is an error at start-up rather than an always-empty column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // each variant is the field of the same (camelCase) name
pub enum Field {
    Type,
    TimeLogged,
    TimeQueued,
    Orig,
    ReturnPath,
    Rcpt,
    Orcpt,
    DsnAction,
    DsnStatus,
    DsnDiag,
    DsnMta,
    DsnReportingMta,
    BounceCat,
    SrcType,
    SrcMta,
    DlvType,
    DlvSourceIp,
    DlvDestinationIp,
    DlvEsmtpAvailable,
    DlvSize,
    DlvTlsProtocol,
    DlvTlsCipher,
    Vmta,
    VmtaPool,
    JobId,
    EnvId,
    Queue,
    TotalSecondsQueued,
    RcvSmtpUser,
    RcvSourceIp,
    RcvDestinationIp,
    UserString,
    Format,
    RepSourceIp,
    FeedbackType,
    UserAgent,
    ReportingMta,
    ReportedDomain,
}

const ALL: &[(Field, &str)] = &[
    (Field::Type, "type"),
    (Field::TimeLogged, "timeLogged"),
    (Field::TimeQueued, "timeQueued"),
    (Field::Orig, "orig"),
    (Field::ReturnPath, "returnPath"),
    (Field::Rcpt, "rcpt"),
    (Field::Orcpt, "orcpt"),
    (Field::DsnAction, "dsnAction"),
    (Field::DsnStatus, "dsnStatus"),
    (Field::DsnDiag, "dsnDiag"),
    (Field::DsnMta, "dsnMta"),
    (Field::DsnReportingMta, "dsnReportingMta"),
    (Field::BounceCat, "bounceCat"),
    (Field::SrcType, "srcType"),
    (Field::SrcMta, "srcMta"),
    (Field::DlvType, "dlvType"),
    (Field::DlvSourceIp, "dlvSourceIp"),
    (Field::DlvDestinationIp, "dlvDestinationIp"),
    (Field::DlvEsmtpAvailable, "dlvEsmtpAvailable"),
    (Field::DlvSize, "dlvSize"),
    (Field::DlvTlsProtocol, "dlvTlsProtocol"),
    (Field::DlvTlsCipher, "dlvTlsCipher"),
    (Field::Vmta, "vmta"),
    (Field::VmtaPool, "vmtaPool"),
    (Field::JobId, "jobId"),
    (Field::EnvId, "envId"),
    (Field::Queue, "queue"),
    (Field::TotalSecondsQueued, "totalSecondsQueued"),
    (Field::RcvSmtpUser, "rcvSmtpUser"),
    (Field::RcvSourceIp, "rcvSourceIp"),
    (Field::RcvDestinationIp, "rcvDestinationIp"),
    (Field::UserString, "userString"),
    (Field::Format, "format"),
    (Field::RepSourceIp, "repSourceIp"),
    (Field::FeedbackType, "feedbackType"),
    (Field::UserAgent, "userAgent"),
    (Field::ReportingMta, "reportingMta"),
    (Field::ReportedDomain, "reportedDomain"),
];

impl Field {
    /// The column name PowerMTA writes in the header line.
    pub fn name(self) -> &'static str {
        ALL.iter()
            .find(|(f, _)| *f == self)
            .map(|(_, n)| *n)
            .unwrap_or("")
    }

    /// Looks a field up by name, ignoring case (config files are case-insensitive).
    ///
    /// Exists for `record-fields`; `header_*`/`arf_*` are not fields (see [`Column`]).
    pub fn parse(name: &str) -> Option<Field> {
        ALL.iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(f, _)| *f)
    }
}

/// One column of an accounting file.
///
/// Exists because besides the fixed fields a column can name a message header
/// (`header_Message-Id`) or an ARF report field (`arf_Source-IP`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    /// A fixed field.
    Field(Field),
    /// `header_NAME`, with NAME as written in the config.
    Header(String),
    /// `arf_NAME`, with NAME as written in the config.
    Arf(String),
}

impl Column {
    /// The header-line name (`dsnStatus`, `header_X-Id`, `arf_Source-IP`).
    pub fn name(&self) -> String {
        match self {
            Column::Field(f) => f.name().to_string(),
            Column::Header(h) => format!("header_{h}"),
            Column::Arf(a) => format!("arf_{a}"),
        }
    }

    /// Same column? Header and ARF names compare case-insensitively, like the lookup.
    pub(crate) fn same(&self, other: &Column) -> bool {
        match (self, other) {
            (Column::Field(a), Column::Field(b)) => a == b,
            (Column::Header(a), Column::Header(b)) | (Column::Arf(a), Column::Arf(b)) => {
                a.eq_ignore_ascii_case(b)
            }
            _ => false,
        }
    }

    /// Parses one `record-fields` name: a field, `header_NAME` or `arf_NAME`.
    pub(crate) fn parse(name: &str) -> Option<Column> {
        if let Some(h) = strip_prefix_ci(name, "header_").filter(|h| !h.is_empty()) {
            return Some(Column::Header(h.to_string()));
        }
        if let Some(a) = strip_prefix_ci(name, "arf_").filter(|a| !a.is_empty()) {
            return Some(Column::Arf(a.to_string()));
        }
        Field::parse(name).map(Column::Field)
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// The columns `*` stands for in a record type, in PowerMTA's order.
///
/// Exists because the default layout is what every PowerMTA log parser expects: d/b/t as
/// in real 5.x files (with `vmtaPool` last), tq in the guide's sample order, r/rb/rs/f as
/// the guide lists them.
pub fn default_columns(t: RecordType) -> Vec<Column> {
    use Field as F;
    let fields: &[Field] = match t {
        RecordType::Delivery | RecordType::Bounce | RecordType::Transient => &[
            F::Type,
            F::TimeLogged,
            F::TimeQueued,
            F::Orig,
            F::Rcpt,
            F::Orcpt,
            F::DsnAction,
            F::DsnStatus,
            F::DsnDiag,
            F::DsnMta,
            F::BounceCat,
            F::SrcType,
            F::SrcMta,
            F::DlvType,
            F::DlvSourceIp,
            F::DlvDestinationIp,
            F::DlvEsmtpAvailable,
            F::DlvSize,
            F::Vmta,
            F::JobId,
            F::EnvId,
            F::Queue,
            F::VmtaPool,
        ],
        RecordType::TransientQueue => &[
            F::Type,
            F::TimeLogged,
            F::DsnStatus,
            F::DsnDiag,
            F::DsnMta,
            F::DlvType,
            F::DlvSourceIp,
            F::DlvDestinationIp,
            F::Vmta,
            F::Queue,
        ],
        RecordType::Receipt => &[
            F::Type,
            F::TimeLogged,
            F::Orig,
            F::Rcpt,
            F::Orcpt,
            F::SrcType,
            F::SrcMta,
            F::RcvSourceIp,
            F::RcvDestinationIp,
            F::Vmta,
            F::VmtaPool,
            F::JobId,
            F::EnvId,
            F::UserString,
            F::RcvSmtpUser,
        ],
        RecordType::RemoteBounce => &[
            F::Type,
            F::TimeLogged,
            F::Orig,
            F::Rcpt,
            F::Orcpt,
            F::DsnStatus,
            F::DsnDiag,
            F::DsnMta,
            F::DsnReportingMta,
            F::BounceCat,
            F::SrcType,
            F::SrcMta,
            F::EnvId,
            F::Format,
        ],
        RecordType::RemoteStatus => &[
            F::Type,
            F::TimeLogged,
            F::Orig,
            F::Rcpt,
            F::Orcpt,
            F::DsnAction,
            F::DsnStatus,
            F::DsnDiag,
            F::DsnMta,
            F::BounceCat,
            F::SrcType,
            F::SrcMta,
            F::EnvId,
            F::Format,
        ],
        RecordType::FeedbackLoop => &[
            F::Type,
            F::TimeLogged,
            F::RepSourceIp,
            F::FeedbackType,
            F::Format,
            F::UserAgent,
            F::EnvId,
            F::Orig,
            F::Rcpt,
            F::ReportingMta,
            F::DlvSourceIp,
            F::ReportedDomain,
        ],
    };
    let mut cols: Vec<Column> = fields.iter().copied().map(Column::Field).collect();
    if t == RecordType::FeedbackLoop {
        for h in ["From", "Return-Path", "X-job", "Subject"] {
            cols.push(Column::Header(h.to_string()));
        }
    }
    cols
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_has_a_unique_name_that_parses_back() {
        for (f, n) in ALL {
            assert_eq!(f.name(), *n);
            assert_eq!(Field::parse(n), Some(*f));
            assert_eq!(Field::parse(&n.to_ascii_uppercase()), Some(*f));
        }
        let mut names: Vec<_> = ALL.iter().map(|(_, n)| n.to_ascii_lowercase()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
    }

    #[test]
    fn columns_parse_headers_and_arf() {
        assert_eq!(
            Column::parse("HEADER_Message-Id"),
            Some(Column::Header("Message-Id".into()))
        );
        assert_eq!(
            Column::parse("arf_Source-IP"),
            Some(Column::Arf("Source-IP".into()))
        );
        assert_eq!(Column::parse("header_"), None);
        assert_eq!(Column::parse("nosuch"), None);
    }
}
