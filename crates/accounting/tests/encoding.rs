//! Header lines and rows, compared character for character with the guide's samples.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use petrel_accounting::{
    AcctError, AcctRecord, AcctWriter, DlvType, DsnAction, Layout, RowOptions, SrcType,
};
use petrel_config::{AcctFile, RecordType};

/// Writes `recs` through a real `AcctWriter` into a tempdir and returns the file's lines.
fn written(cfg: AcctFile, recs: &[AcctRecord]) -> Vec<String> {
    let mut w = AcctWriter::new(&cfg).unwrap();
    for r in recs {
        w.write_at(r, at(D_TIME)).unwrap();
    }
    w.flush().unwrap();
    let path = w.current_path().unwrap().to_path_buf();
    w.close().unwrap();
    lines(&path)
}

fn cfg_in(dir: &Path, records: &[RecordType], fields: &[(RecordType, &str)]) -> AcctFile {
    AcctFile {
        record_fields: fields.iter().map(|(t, f)| (*t, sel(f))).collect(),
        ..file_acct(dir, records)
    }
}

#[test]
fn d_and_b_rows_match_the_guide_with_vmta_pool_appended() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg_in(dir.path(), &[RecordType::Delivery, RecordType::Bounce], &[]);
    let l = written(cfg, &[d_sample(), b_sample()]);
    assert_eq!(l[0], DBT_HEADER);
    // Real 5.x files add vmtaPool as column 23: an empty trailing column.
    assert_eq!(l[1], format!("{D_SAMPLE},"));
    assert_eq!(l[2], format!("{B_SAMPLE},"));
    assert_eq!(l.len(), 3);
}

#[test]
fn d_and_b_rows_match_the_guide_exactly_without_vmta_pool() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg_in(
        dir.path(),
        &[RecordType::Delivery, RecordType::Bounce],
        &[
            (RecordType::Delivery, "*,!vmtaPool"),
            (RecordType::Bounce, "*,!vmtaPool"),
        ],
    );
    let l = written(cfg, &[d_sample(), b_sample()]);
    assert_eq!(l[0], DBT_HEADER.strip_suffix(",vmtaPool").unwrap());
    assert_eq!(l[1], D_SAMPLE);
    assert_eq!(l[2], B_SAMPLE);
}

#[test]
fn t_row_matches_the_guide() {
    let dir = tempfile::tempdir().unwrap();
    let t = AcctRecord {
        time_queued: Some(at(1_549_662_800)),
        orig: "DA-x@bounce.bar.com".into(),
        rcpt: "DA@yahoo.fr".into(),
        dsn_action: Some(DsnAction::Delayed),
        dsn_status: status("4.7.0"),
        dsn_diag: "smtp;421 4.7.0 [TS01] too many errors".into(),
        dsn_mta: "mta5.am0.yahoodns.net (67.195.204.72)".into(),
        bounce_cat: "policy-related".into(),
        src_type: Some(SrcType::Api),
        src_mta: "foo.int.bar.com (127.0.0.1)".into(),
        dlv_type: Some(DlvType::Smtp),
        dlv_source_ip: ip("10.59.14.69"),
        dlv_destination_ip: ip("10.1.2.165"),
        dlv_esmtp_available: vec!["PIPELINING".into(), "8BITMIME".into()],
        vmta: "vmta21".into(),
        queue: "yahoo.rollup/vmta21".into(),
        ..AcctRecord::new(RecordType::Transient, at(1_549_662_834))
    };
    let l = written(cfg_in(dir.path(), &[RecordType::Transient], &[]), &[t]);
    assert_eq!(l[0], DBT_HEADER);
    assert_eq!(
        l[1],
        "t,2019-02-08 21:53:54+0000,2019-02-08 21:53:20+0000,DA-x@bounce.bar.com,DA@yahoo.fr,,delayed,\
         4.7.0 (other or undefined security status),smtp;421 4.7.0 [TS01] too many errors,\
         mta5.am0.yahoodns.net (67.195.204.72),policy-related,api,foo.int.bar.com (127.0.0.1),smtp,\
         10.59.14.69,10.1.2.165,\"PIPELINING,8BITMIME\",,vmta21,,,yahoo.rollup/vmta21,"
    );
}

#[test]
fn tq_row_matches_the_guide_character_for_character() {
    let dir = tempfile::tempdir().unwrap();
    let tq = AcctRecord {
        dsn_status: status("4.4.1"),
        dsn_mta: "mx.xn--bcher-kva.de (87.98.150.101)".into(),
        dlv_type: Some(DlvType::Smtp),
        dlv_source_ip: ip("0.0.0.0"),
        dlv_destination_ip: ip("87.98.150.101"),
        vmta: "vmta29".into(),
        queue: "bücher.de/vmta29".into(),
        ..AcctRecord::new(RecordType::TransientQueue, at(1_549_662_819))
    };
    let l = written(
        cfg_in(dir.path(), &[RecordType::TransientQueue], &[]),
        &[tq],
    );
    assert_eq!(
        l[0],
        "type,timeLogged,dsnStatus,dsnDiag,dsnMta,dlvType,dlvSourceIp,dlvDestinationIp,vmta,queue"
    );
    assert_eq!(
        l[1],
        "tq,2019-02-08 21:53:39+0000,4.4.1 (no answer from host),,mx.xn--bcher-kva.de (87.98.150.101),smtp,0.0.0.0,87.98.150.101,vmta29,bücher.de/vmta29"
    );
}

fn r_sample() -> AcctRecord {
    AcctRecord {
        orig: "test@port25.com".into(),
        rcpt: "test@port25.com".into(),
        src_type: Some(SrcType::Smtp),
        src_mta: "tesFeeder (192.168.25.56)".into(),
        rcv_source_ip: ip("192.168.25.56"),
        rcv_destination_ip: ip("192.168.25.11"),
        vmta: "vmta1".into(),
        job_id: "job2".into(),
        env_id: "envid1234".into(),
        rcv_smtp_user: "feeder".into(),
        ..AcctRecord::new(RecordType::Receipt, at(1_271_535_597))
    }
}

#[test]
fn r_rows_default_and_the_guide_sample() {
    let dir = tempfile::tempdir().unwrap();
    let l = written(
        cfg_in(dir.path(), &[RecordType::Receipt], &[]),
        &[r_sample()],
    );
    assert_eq!(
        l[0],
        "type,timeLogged,orig,rcpt,orcpt,srcType,srcMta,rcvSourceIp,rcvDestinationIp,vmta,vmtaPool,jobId,envId,userString,rcvSmtpUser"
    );
    assert_eq!(
        l[1],
        "r,2010-04-17 20:19:57+0000,test@port25.com,test@port25.com,,smtp,tesFeeder (192.168.25.56),192.168.25.56,192.168.25.11,vmta1,,job2,envid1234,,feeder"
    );

    // The guide's sample has no vmtaPool, userString or rcvSmtpUser column.
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg_in(
        dir.path(),
        &[RecordType::Receipt],
        &[(RecordType::Receipt, "*,!vmtaPool,!userString,!rcvSmtpUser")],
    );
    let l = written(cfg, &[r_sample()]);
    assert_eq!(
        l[1],
        "r,2010-04-17 20:19:57+0000,test@port25.com,test@port25.com,,smtp,tesFeeder (192.168.25.56),192.168.25.56,192.168.25.11,vmta1,job2,envid1234"
    );
}

#[test]
fn rb_row_matches_the_guide() {
    let dir = tempfile::tempdir().unwrap();
    let rb = AcctRecord {
        orig: "bounce@bounce.com".into(),
        rcpt: "lksjflkj@somedomain.com".into(),
        dsn_status: status("5.1.1"),
        dsn_diag: "smtp;550 5.1.1 no such local recipient: <lksjflkj@somedomain.com>, sorry".into(),
        dsn_mta: "mail.remotedomain.com (169.3.169.30)".into(),
        dsn_reporting_mta: "my.local.server.com".into(),
        bounce_cat: "bad-mailbox".into(),
        src_type: Some(SrcType::Smtp),
        src_mta: "my.local.server.com (192.168.0.150)".into(),
        format: "dsn".into(),
        ..AcctRecord::new(RecordType::RemoteBounce, at(1_291_231_484))
    };
    let cfg = cfg_in(dir.path(), &[RecordType::RemoteBounce], &[]);
    let l = written(cfg, std::slice::from_ref(&rb));
    assert_eq!(
        l[0],
        "type,timeLogged,orig,rcpt,orcpt,dsnStatus,dsnDiag,dsnMta,dsnReportingMta,bounceCat,srcType,srcMta,envId,format"
    );
    let sample = "rb,2010-12-01 19:24:44+0000,bounce@bounce.com,lksjflkj@somedomain.com,,5.1.1 (bad destination mailbox address),\"smtp;550 5.1.1 no such local recipient: <lksjflkj@somedomain.com>, sorry\",mail.remotedomain.com (169.3.169.30),my.local.server.com,bad-mailbox,smtp,my.local.server.com (192.168.0.150),";
    assert_eq!(l[1], format!("{sample},dsn"));

    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg_in(
        dir.path(),
        &[RecordType::RemoteBounce],
        &[(RecordType::RemoteBounce, "!format")],
    );
    assert_eq!(written(cfg, &[rb])[1], sample);
}

#[test]
fn f_rows_include_the_four_default_headers() {
    let layout = Layout::new(&[RecordType::FeedbackLoop], &[], "x").unwrap();
    assert_eq!(
        layout.header_line(),
        "type,timeLogged,repSourceIp,feedbackType,format,userAgent,envId,orig,rcpt,reportingMta,dlvSourceIp,reportedDomain,header_From,header_Return-Path,header_X-job,header_Subject\r\n"
    );
    let f = AcctRecord {
        rep_source_ip: ip("169.63.151.30"),
        feedback_type: "abuse".into(),
        format: "arf".into(),
        user_agent: "AOL SComp".into(),
        rcpt: "victim@aol.com".into(),
        reporting_mta: "mail1.domain.com".into(),
        headers: vec![
            ("subject".into(), "Hello, world".into()),
            ("X-Job".into(), "j1".into()),
        ],
        ..AcctRecord::new(RecordType::FeedbackLoop, at(D_TIME))
    };
    let opts = RowOptions {
        iso_times: true,
        user_string: None,
    };
    assert_eq!(
        layout.encode(&f, &opts).unwrap(),
        "f,2019-02-08 21:54:05+0000,169.63.151.30,abuse,arf,AOL SComp,,,victim@aol.com,mail1.domain.com,,,,,j1,\"Hello, world\"\r\n"
    );
}

#[test]
fn esmtp_list_and_diag_with_commas_and_quotes_are_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let rec = AcctRecord {
        dsn_diag: "smtp;550 5.1.1 <a@b.c>: user \"a\" unknown, sorry".into(),
        dlv_esmtp_available: vec!["SIZE 1000".into(), "STARTTLS".into()],
        ..d_sample()
    };
    let cfg = cfg_in(
        dir.path(),
        &[RecordType::Delivery],
        &[(RecordType::Delivery, "dsnDiag,dlvEsmtpAvailable,rcpt")],
    );
    let l = written(cfg, &[rec]);
    assert_eq!(l[0], "type,dsnDiag,dlvEsmtpAvailable,rcpt");
    assert_eq!(
        l[1],
        "d,\"smtp;550 5.1.1 <a@b.c>: user \"\"a\"\" unknown, sorry\",\"SIZE 1000,STARTTLS\",D@1181.com"
    );
}

#[test]
fn union_of_columns_follows_the_guide_example() {
    // The guide's example, parsed by petrel-config itself.
    let dir = tempfile::tempdir().unwrap();
    let conf = format!(
        "<acct-file {}/acct.csv>\n  records d,b\n  record-fields delivery timeLogged,orig,rcpt,dlvSourceIp\n  record-fields bounce timeLogged,orig,rcpt,bounceCat\n</acct-file>\n",
        dir.path().display()
    );
    let loaded = petrel_config::parse_str(&conf, &dir.path().join("petrel.conf"))
        .unwrap_or_else(|e| panic!("{e:?}"));
    let cfg = loaded.config.acct_files[0].clone();
    let d = AcctRecord {
        dlv_source_ip: ip("10.0.0.1"),
        bounce_cat: "must-not-show".into(),
        ..d_sample()
    };
    let b = AcctRecord {
        bounce_cat: "policy-related".into(),
        ..b_sample()
    };
    let l = written(cfg, &[d, b]);
    assert_eq!(l[0], "type,timeLogged,orig,rcpt,dlvSourceIp,bounceCat");
    assert_eq!(
        l[1],
        "d,2019-02-08 21:54:05+0000,AA-D=1181.com@bounce.bar.com,D@1181.com,10.0.0.1,"
    );
    assert_eq!(
        l[2],
        "b,2019-02-08 21:53:41+0000,CB-A=yahoo.com@bounce.bar.com,A@yahoo.com,,policy-related"
    );
}

#[test]
fn header_fields_match_case_insensitively_and_union_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg_in(
        dir.path(),
        &[RecordType::Delivery, RecordType::Bounce],
        &[
            (RecordType::Delivery, "rcpt,header_Message-Id,header_X-Id"),
            (RecordType::Bounce, "rcpt,header_x-id"),
        ],
    );
    let d = AcctRecord {
        headers: vec![
            ("MESSAGE-ID".into(), "<1@x>".into()),
            ("x-id".into(), "first".into()),
            ("X-Id".into(), "second".into()),
        ],
        ..d_sample()
    };
    let b = AcctRecord {
        headers: vec![("X-ID".into(), "b, id".into())],
        ..b_sample()
    };
    let l = written(cfg, &[d, b]);
    assert_eq!(l[0], "type,rcpt,header_Message-Id,header_X-Id");
    assert_eq!(l[1], "d,D@1181.com,<1@x>,first");
    assert_eq!(l[2], "b,A@yahoo.com,,\"b, id\"");
}

#[test]
fn exclusions_and_optional_fields() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = AcctFile {
        user_string: Some("cluster-1".into()),
        ..cfg_in(
            dir.path(),
            &[RecordType::Delivery],
            &[(
                RecordType::Delivery,
                "*,!orcpt,!timeQueued,!type,totalSecondsQueued,userString,dlvTlsProtocol,dlvTlsCipher,rcvSmtpUser",
            )],
        )
    };
    let d = AcctRecord {
        time_queued: Some(at(D_TIME - 90)),
        dlv_tls_protocol: "TLSv1.3".into(),
        dlv_tls_cipher: "TLS_AES_256_GCM_SHA384".into(),
        rcv_smtp_user: "alice".into(),
        user_string: "ignored: the file's user-string wins".into(),
        ..d_sample()
    };
    let l = written(cfg, &[d]);
    let header: Vec<&str> = l[0].split(',').collect();
    assert_eq!(header[0], "type");
    assert!(!header.contains(&"orcpt") && !header.contains(&"timeQueued"));
    assert!(l[0].ends_with(
        ",vmtaPool,totalSecondsQueued,userString,dlvTlsProtocol,dlvTlsCipher,rcvSmtpUser"
    ));
    assert!(
        l[1].ends_with(",1181.com/vmta48,,90,cluster-1,TLSv1.3,TLS_AES_256_GCM_SHA384,alice"),
        "{}",
        l[1]
    );
    assert!(l[1].starts_with(
        "d,2019-02-08 21:54:05+0000,AA-D=1181.com@bounce.bar.com,D@1181.com,relayed,"
    ));
}

#[test]
fn unix_times_when_iso_times_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = AcctFile {
        iso_times: false,
        ..cfg_in(
            dir.path(),
            &[RecordType::Delivery],
            &[(RecordType::Delivery, "timeLogged,timeQueued")],
        )
    };
    let l = written(cfg, &[d_sample()]);
    assert_eq!(l[1], "d,1549662845,1549662845");
}

#[test]
fn unknown_field_names_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    for list in ["*,dlvSorceIp", "!nosuch", "header_"] {
        let cfg = cfg_in(
            dir.path(),
            &[RecordType::Delivery],
            &[(RecordType::Bounce, list)],
        );
        match AcctWriter::new(&cfg) {
            Err(AcctError::UnknownField {
                record_type, field, ..
            }) => {
                assert_eq!(record_type, "b");
                assert!(list.contains(&field), "{field}");
            }
            other => panic!("{list}: {other:?}"),
        }
    }
    let err = AcctWriter::new(&cfg_in(
        dir.path(),
        &[RecordType::Delivery],
        &[(RecordType::Delivery, "rcpt,bogus")],
    ))
    .unwrap_err();
    assert!(err.to_string().contains("unknown field `bogus`"), "{err}");
}

#[test]
fn python_csv_reads_the_file_back_to_the_same_values() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg_in(
        dir.path(),
        &[RecordType::Delivery, RecordType::Bounce],
        &[
            (
                RecordType::Delivery,
                "rcpt,dsnDiag,dlvEsmtpAvailable,header_Subject",
            ),
            (RecordType::Bounce, "rcpt,dsnStatus,bounceCat"),
        ],
    );
    let nasty = "multi\r\nline \"quoted\", with commas, ünïcödé ✉ and  spaces ";
    let d = AcctRecord {
        rcpt: "ö@bücher.de".into(),
        dsn_diag: "smtp;250 ok, \"queued\" as 12".into(),
        headers: vec![("Subject".into(), nasty.into())],
        ..d_sample()
    };
    let b = AcctRecord {
        dsn_status: status("5.2.1"),
        ..b_sample()
    };
    let mut w = AcctWriter::new(&cfg).unwrap();
    w.write_at(&d, at(D_TIME)).unwrap();
    w.write_at(&b, at(D_TIME)).unwrap();
    w.flush().unwrap();
    let path = w.current_path().unwrap().to_path_buf();
    w.close().unwrap();

    let script = "import csv, json, sys\n\
                  with open(sys.argv[1], newline='', encoding='utf-8') as f:\n\
                  \x20   print(json.dumps(list(csv.reader(f))))";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Vec<String>> = serde_json::from_slice(&out.stdout).unwrap();
    let expect: Vec<Vec<&str>> = vec![
        vec![
            "type",
            "rcpt",
            "dsnDiag",
            "dlvEsmtpAvailable",
            "header_Subject",
            "dsnStatus",
            "bounceCat",
        ],
        vec![
            "d",
            "ö@bücher.de",
            "smtp;250 ok, \"queued\" as 12",
            "ENHANCEDSTATUSCODES,8BITMIME,SMTPUTF8",
            nasty,
            "",
            "",
        ],
        vec![
            "b",
            "A@yahoo.com",
            "",
            "",
            "",
            "5.2.1 (mailbox disabled, not accepting messages)",
            "spam-related",
        ],
    ];
    assert_eq!(rows, expect);
}
