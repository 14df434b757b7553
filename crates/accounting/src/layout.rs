//! Which columns an accounting file has, and how a record becomes a row.

use std::time::SystemTime;

use petrel_config::{FieldSelector, RecordType};

use crate::csv::{encode_list, push_field};
use crate::error::AcctError;
use crate::field::{default_columns, Column, Field};
use crate::record::AcctRecord;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

use crate::naming::{unix_secs, utc};

/// PowerMTA's `iso-times` form: `YYYY-MM-DD HH:MM:SS+0000`, always UTC.
const STAMP: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]+0000");

/// A time as PowerMTA writes it: `iso-times` form, or the Unix `time_t`.
fn format_time(t: std::time::SystemTime, iso: bool) -> String {
    if iso {
        utc(t).format(STAMP).unwrap_or_default()
    } else {
        unix_secs(t).to_string()
    }
}

/// The column layout of one accounting file.
///
/// Exists because a file holding several record types has one header line: the union of
/// the types' selected columns (first type's columns in order, then each later type's new
/// columns appended), and every row leaves the columns of other types empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    columns: Vec<Column>,
    /// Per accepted record type: for each column, whether this type fills it.
    types: Vec<(RecordType, Vec<bool>)>,
}

/// Per-file settings that change how values are rendered.
///
/// Exists so [`Layout::encode`] can be used without a whole `<acct-file>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowOptions {
    /// `iso-times yes`: `YYYY-MM-DD HH:MM:SS+0000`; otherwise Unix `time_t`.
    pub iso_times: bool,
    /// The file's `user-string`; overrides [`AcctRecord::user_string`] when set.
    pub user_string: Option<String>,
}

impl Layout {
    /// Computes the layout for `records` with the `record-fields` selections.
    ///
    /// `target` only names the file in errors. Fails on a field name PowerMTA does not
    /// know, in any selection (even one for a type the file does not record), so typos
    /// are caught at start-up.
    pub fn new(
        records: &[RecordType],
        record_fields: &[(RecordType, Vec<FieldSelector>)],
        target: &str,
    ) -> Result<Layout, AcctError> {
        let mut selected: Vec<(RecordType, Vec<Column>)> = Vec::new();
        for (t, _) in record_fields {
            let cols = select(*t, record_fields, target)?;
            if !selected.iter().any(|(x, _)| x == t) {
                selected.push((*t, cols));
            }
        }
        let mut columns: Vec<Column> = Vec::new();
        let mut accepted: Vec<(RecordType, Vec<Column>)> = Vec::new();
        for t in records {
            if accepted.iter().any(|(x, _)| x == t) {
                continue;
            }
            let cols = match selected.iter().find(|(x, _)| x == t) {
                Some((_, c)) => c.clone(),
                None => default_columns(*t),
            };
            for c in &cols {
                if !columns.iter().any(|x| x.same(c)) {
                    columns.push(c.clone());
                }
            }
            accepted.push((*t, cols));
        }
        if columns.is_empty() {
            columns.push(Column::Field(Field::Type));
        }
        let types = accepted
            .into_iter()
            .map(|(t, cols)| {
                let mask = columns
                    .iter()
                    .map(|c| cols.iter().any(|x| x.same(c)))
                    .collect();
                (t, mask)
            })
            .collect();
        Ok(Layout { columns, types })
    }

    /// The columns, in file order (column 1 is always `type`).
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Whether records of type `t` go to this file.
    pub fn accepts(&self, t: RecordType) -> bool {
        self.types.iter().any(|(x, _)| *x == t)
    }

    /// The header line, CRLF-terminated.
    pub fn header_line(&self) -> String {
        let names: Vec<String> = self.columns.iter().map(Column::name).collect();
        let mut line = encode_list(names.iter().map(String::as_str));
        line.push_str("\r\n");
        line
    }

    /// Encodes `rec` as one CRLF-terminated row, or `None` if this file does not take
    /// records of its type.
    pub fn encode(&self, rec: &AcctRecord, opts: &RowOptions) -> Option<String> {
        let (_, mask) = self.types.iter().find(|(t, _)| *t == rec.record_type)?;
        let mut line = String::with_capacity(256);
        for (i, (col, used)) in self.columns.iter().zip(mask).enumerate() {
            if i > 0 {
                line.push(',');
            }
            if *used {
                push_field(&mut line, &value(col, rec, opts));
            }
        }
        line.push_str("\r\n");
        Some(line)
    }
}

/// The selected columns of type `t`: every `record-fields` line for `t`, in order.
fn select(
    t: RecordType,
    record_fields: &[(RecordType, Vec<FieldSelector>)],
    target: &str,
) -> Result<Vec<Column>, AcctError> {
    let sels: Vec<&FieldSelector> = record_fields
        .iter()
        .filter(|(x, _)| *x == t)
        .flat_map(|(_, s)| s)
        .collect();
    let unknown = |name: &str| AcctError::UnknownField {
        target: target.to_string(),
        record_type: t.code(),
        field: name.to_string(),
    };
    // A list that starts with an exclusion (`!orcpt`) trims the default set.
    let mut cols = match sels.first() {
        Some(FieldSelector::Exclude(_)) => default_columns(t),
        _ => Vec::new(),
    };
    let add = |cols: &mut Vec<Column>, c: Column| {
        if !cols.iter().any(|x| x.same(&c)) {
            cols.push(c);
        }
    };
    for s in sels {
        match s {
            FieldSelector::All => {
                for c in default_columns(t) {
                    add(&mut cols, c);
                }
            }
            FieldSelector::Field(name) => {
                add(&mut cols, Column::parse(name).ok_or_else(|| unknown(name))?)
            }
            FieldSelector::Header(h) if h.is_empty() => return Err(unknown("header_")),
            FieldSelector::Header(h) => add(&mut cols, Column::Header(h.clone())),
            FieldSelector::Exclude(name) => {
                let c = Column::parse(name).ok_or_else(|| unknown(name))?;
                cols.retain(|x| !x.same(&c));
            }
        }
    }
    cols.retain(|c| *c != Column::Field(Field::Type));
    cols.insert(0, Column::Field(Field::Type));
    Ok(cols)
}

fn ip(v: Option<std::net::IpAddr>) -> String {
    v.map(|a| a.to_string()).unwrap_or_default()
}

fn time(v: Option<SystemTime>, iso: bool) -> String {
    v.map(|t| format_time(t, iso)).unwrap_or_default()
}

/// The text of column `col` for `rec`.
fn value(col: &Column, rec: &AcctRecord, opts: &RowOptions) -> String {
    let f = match col {
        Column::Field(f) => *f,
        Column::Header(h) => return rec.header(h).unwrap_or_default().to_string(),
        Column::Arf(a) => {
            let vals: Vec<&str> = rec
                .arf
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(a))
                .map(|(_, v)| v.as_str())
                .collect();
            return match vals.as_slice() {
                [one] => one.to_string(),
                many => encode_list(many.iter().copied()),
            };
        }
    };
    match f {
        Field::Type => rec.record_type.code().to_string(),
        Field::TimeLogged => format_time(rec.time_logged, opts.iso_times),
        Field::TimeQueued => time(rec.time_queued, opts.iso_times),
        Field::Orig => rec.orig.clone(),
        Field::Rcpt => rec.rcpt.clone(),
        Field::Orcpt => rec.orcpt.clone(),
        Field::DsnAction => rec.dsn_action.map(|a| a.as_str()).unwrap_or("").into(),
        Field::DsnStatus => rec.dsn_status.map(|s| s.with_gloss()).unwrap_or_default(),
        Field::DsnDiag => rec.dsn_diag.clone(),
        Field::DsnMta => rec.dsn_mta.clone(),
        Field::DsnReportingMta => rec.dsn_reporting_mta.clone(),
        Field::BounceCat => rec.bounce_cat.clone(),
        Field::SrcType => rec.src_type.map(|s| s.as_str()).unwrap_or("").into(),
        Field::SrcMta => rec.src_mta.clone(),
        Field::DlvType => rec.dlv_type.map(|s| s.as_str()).unwrap_or("").into(),
        Field::DlvSourceIp => ip(rec.dlv_source_ip),
        Field::DlvDestinationIp => ip(rec.dlv_destination_ip),
        Field::DlvEsmtpAvailable => rec.dlv_esmtp_available.join(","),
        Field::DlvSize => rec.dlv_size.map(|n| n.to_string()).unwrap_or_default(),
        Field::DlvTlsProtocol => rec.dlv_tls_protocol.clone(),
        Field::DlvTlsCipher => rec.dlv_tls_cipher.clone(),
        Field::Vmta => rec.vmta.clone(),
        Field::VmtaPool => rec.vmta_pool.clone(),
        Field::JobId => rec.job_id.clone(),
        Field::EnvId => rec.env_id.clone(),
        Field::Queue => rec.queue.clone(),
        Field::TotalSecondsQueued => rec
            .total_seconds_queued
            .or_else(|| {
                rec.time_queued
                    .map(|q| unix_secs(rec.time_logged).saturating_sub(unix_secs(q)))
            })
            .map(|n| n.to_string())
            .unwrap_or_default(),
        Field::RcvSmtpUser => rec.rcv_smtp_user.clone(),
        Field::RcvSourceIp => ip(rec.rcv_source_ip),
        Field::RcvDestinationIp => ip(rec.rcv_destination_ip),
        Field::UserString => opts
            .user_string
            .clone()
            .unwrap_or_else(|| rec.user_string.clone()),
        Field::Format => rec.format.clone(),
        Field::RepSourceIp => ip(rec.rep_source_ip),
        Field::FeedbackType => rec.feedback_type.clone(),
        Field::UserAgent => rec.user_agent.clone(),
        Field::ReportingMta => rec.reporting_mta.clone(),
        Field::ReportedDomain => rec.reported_domain.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::format_time;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn times_are_written_like_powermta() {
        // 2019-02-08 21:54:05 UTC, the guide's d sample.
        assert_eq!(
            format_time(at(1_549_662_845), true),
            "2019-02-08 21:54:05+0000"
        );
        assert_eq!(format_time(at(1_178_807_903), false), "1178807903");
        assert_eq!(format_time(at(0), true), "1970-01-01 00:00:00+0000");
        assert_eq!(
            format_time(at(951_782_400), true),
            "2000-02-29 00:00:00+0000"
        );
        let before_1970 = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(format_time(before_1970, true), "1970-01-01 00:00:00+0000");
        assert_eq!(format_time(before_1970, false), "0");
    }
}
