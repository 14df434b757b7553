//! Shared helpers: `<acct-file>` blocks and the guide's sample records.
#![allow(dead_code)]

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use petrel_accounting::{AcctRecord, DlvType, DsnAction, EnhancedStatus, SrcType};
use petrel_config::{AcctFile, AcctTarget, FieldSelector, Origin, RecordType};

/// 2019-02-08 21:54:05 UTC (the guide's d sample).
pub const D_TIME: u64 = 1_549_662_845;

pub fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

pub fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

pub fn status(s: &str) -> Option<EnhancedStatus> {
    Some(s.parse().unwrap())
}

/// An `<acct-file>` with PowerMTA's defaults (as petrel-config fills them).
pub fn acct(target: AcctTarget) -> AcctFile {
    AcctFile {
        target,
        records: vec![RecordType::Delivery, RecordType::Bounce],
        record_fields: Vec::new(),
        move_to: None,
        move_interval: Duration::from_secs(86_400),
        max_size: 250 << 20,
        delete_after: Some(Duration::from_secs(8 * 86_400)),
        iso_times: true,
        user_string: None,
        world_readable: false,
        sync: false,
        origin: Origin {
            file: PathBuf::from("test.conf"),
            line: 1,
        },
    }
}

pub fn file_acct(dir: &Path, records: &[RecordType]) -> AcctFile {
    AcctFile {
        records: records.to_vec(),
        ..acct(AcctTarget::File(dir.join("acct.csv")))
    }
}

/// Parses a `record-fields` list the way petrel-config does.
pub fn sel(list: &str) -> Vec<FieldSelector> {
    list.split(',')
        .map(|f| {
            if f == "*" {
                FieldSelector::All
            } else if let Some(x) = f.strip_prefix('!') {
                FieldSelector::Exclude(x.into())
            } else if let Some(h) = f.strip_prefix("header_") {
                FieldSelector::Header(h.into())
            } else {
                FieldSelector::Field(f.into())
            }
        })
        .collect()
}

pub fn esmtp() -> Vec<String> {
    ["ENHANCEDSTATUSCODES", "8BITMIME", "SMTPUTF8"]
        .map(String::from)
        .to_vec()
}

/// The guide's d sample.
pub fn d_sample() -> AcctRecord {
    AcctRecord {
        time_queued: Some(at(D_TIME)),
        orig: "AA-D=1181.com@bounce.bar.com".into(),
        rcpt: "D@1181.com".into(),
        dsn_action: Some(DsnAction::Relayed),
        dsn_status: status("2.0.0"),
        dsn_diag: "smtp;250 DATA ok".into(),
        dsn_mta: "foo.int.port25.com (10.1.2.3)".into(),
        src_type: Some(SrcType::Api),
        src_mta: "foo.int.port25.com (127.0.0.1)".into(),
        dlv_type: Some(DlvType::Smtp),
        dlv_source_ip: ip("10.1.2.3"),
        dlv_destination_ip: ip("10.1.2.3"),
        dlv_esmtp_available: esmtp(),
        dlv_size: Some(41159),
        vmta: "vmta48".into(),
        job_id: "JoBID29546016861868".into(),
        queue: "1181.com/vmta48".into(),
        ..AcctRecord::new(RecordType::Delivery, at(D_TIME))
    }
}

pub const D_SAMPLE: &str = "d,2019-02-08 21:54:05+0000,2019-02-08 21:54:05+0000,AA-D=1181.com@bounce.bar.com,D@1181.com,,relayed,2.0.0 (success),smtp;250 DATA ok,foo.int.port25.com (10.1.2.3),,api,foo.int.port25.com (127.0.0.1),smtp,10.1.2.3,10.1.2.3,\"ENHANCEDSTATUSCODES,8BITMIME,SMTPUTF8\",41159,vmta48,JoBID29546016861868,,1181.com/vmta48";

/// The guide's b sample (the "…" of the guide's diag replaced by nothing).
pub fn b_sample() -> AcctRecord {
    AcctRecord {
        time_queued: Some(at(1_549_662_821)),
        orig: "CB-A=yahoo.com@bounce.bar.com".into(),
        rcpt: "A@yahoo.com".into(),
        dsn_action: Some(DsnAction::Failed),
        dsn_status: status("5.7.1"),
        dsn_diag: "smtp;554 5.7.1 Denied - Spam Suspected".into(),
        dsn_mta: "foo.int.bar.com (10.1.2.3)".into(),
        bounce_cat: "spam-related".into(),
        src_type: Some(SrcType::Api),
        src_mta: "foo.int.bar.com (127.0.0.1)".into(),
        dlv_type: Some(DlvType::Smtp),
        dlv_source_ip: ip("10.1.2.3"),
        dlv_destination_ip: ip("10.1.2.3"),
        dlv_esmtp_available: esmtp(),
        vmta: "vmta18".into(),
        queue: "yahoo.rollup/vmta18".into(),
        ..AcctRecord::new(RecordType::Bounce, at(1_549_662_821))
    }
}

pub const B_SAMPLE: &str = "b,2019-02-08 21:53:41+0000,2019-02-08 21:53:41+0000,CB-A=yahoo.com@bounce.bar.com,A@yahoo.com,,failed,5.7.1 (delivery not authorized),smtp;554 5.7.1 Denied - Spam Suspected,foo.int.bar.com (10.1.2.3),spam-related,api,foo.int.bar.com (127.0.0.1),smtp,10.1.2.3,10.1.2.3,\"ENHANCEDSTATUSCODES,8BITMIME,SMTPUTF8\",,vmta18,,,yahoo.rollup/vmta18";

pub const DBT_HEADER: &str = "type,timeLogged,timeQueued,orig,rcpt,orcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,srcType,srcMta,dlvType,dlvSourceIp,dlvDestinationIp,dlvEsmtpAvailable,dlvSize,vmta,jobId,envId,queue,vmtaPool";

/// The files in `dir`, sorted by name.
pub fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The CRLF-separated lines of a file (asserting every line ends in CRLF).
pub fn lines(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap();
    assert!(text.is_empty() || text.ends_with("\r\n"), "{text:?}");
    let mut v: Vec<String> = text.split("\r\n").map(String::from).collect();
    v.pop();
    v
}
