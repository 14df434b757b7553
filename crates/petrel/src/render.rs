//! The CLI's text tables, in the spirit of `pmta show …`, from the management API's typed
//! answers.

use std::fmt::Write as _;

use petrel_mgmt_api::{
    Domains, Jobs, Messages, Mode, QueueRow, Queues, Status, Suppressions, Vmtas,
};

/// `show status`: the daemon, then every counter section on one line each.
pub fn status(s: &Status) -> String {
    let mut out = format!(
        "{} {} on {}: {}, up {}s\n",
        s.product.name, s.product.version, s.host_name, s.status, s.uptime_seconds
    );
    for (name, values) in &s.counters {
        let pairs: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(out, "{name:<12} {}", pairs.join(" "));
    }
    out
}

/// `show queues`' `st` column: `P` paused, `B` backoff mode, `R` retry mode (combined).
fn queue_state(q: &QueueRow) -> String {
    let mut st = String::new();
    if q.paused {
        st.push('P');
    }
    if q.mode == Mode::Backoff {
        st.push('B');
    }
    if q.retry {
        st.push('R');
    }
    st
}

/// `show queues`.
pub fn queues(q: &Queues) -> String {
    let mut out = format!(
        "{:<48} {:>8} {:>8} {:>10} {:>5}\n",
        "queue", "#rcpt", "#msg", "kbytes", "st"
    );
    for r in &q.queues {
        let _ = writeln!(
            out,
            "{:<48} {:>8} {:>8} {:>10} {:>5}",
            r.queue,
            r.rcp,
            r.msg,
            r.kb,
            queue_state(r)
        );
    }
    let n = q.queues.len();
    let total = q.total.unwrap_or(n as u64);
    let _ = writeln!(out, "{n} of {total} queues.");
    out
}

/// `show domains`.
pub fn domains(d: &Domains) -> String {
    let mut out = format!(
        "{:<40} {:>8} {:>8} {:>10}\n",
        "domain", "#rcpt", "#msg", "kbytes"
    );
    for r in &d.domains {
        let _ = writeln!(
            out,
            "{:<40} {:>8} {:>8} {:>10}",
            r.domain, r.rcp, r.msg, r.kb
        );
    }
    let _ = writeln!(out, "{} domains shown.", d.domains.len());
    out
}

/// `show jobs`.
pub fn jobs(j: &Jobs) -> String {
    let mut out = format!("{:<40} {:>8} {:>7}\n", "job-id", "#rcpt", "paused");
    for r in &j.jobs {
        let paused = if r.paused { "yes" } else { "no" };
        let _ = writeln!(out, "{:<40} {:>8} {:>7}", r.job, r.recipients, paused);
    }
    let _ = writeln!(out, "Total of {} job(s).", j.jobs.len());
    out
}

/// `show vmtas`.
pub fn vmtas(v: &Vmtas) -> String {
    let mut out = format!(
        "{:<24} {:>8} {:>8} {:>6}\n",
        "name", "domains", "#rcpt", "conn"
    );
    for r in &v.vmtas {
        let _ = writeln!(
            out,
            "{:<24} {:>8} {:>8} {:>6}",
            r.name, r.domains, r.recipients, r.connections
        );
    }
    let n = v.vmtas.len();
    let total = v.total.unwrap_or(n as u64);
    let _ = writeln!(out, "{n} of {total} virtual MTAs.");
    out
}

/// `list`: one line per spooled message.
pub fn messages(m: &Messages) -> String {
    let mut out = String::new();
    for r in &m.messages {
        let _ = writeln!(
            out,
            "{} from=<{}> vmta={} job={} rcpts={}",
            r.id,
            r.orig,
            r.vmta,
            r.job_id.as_deref().unwrap_or("-"),
            r.rcpts.join(",")
        );
    }
    let _ = writeln!(out, "{} message(s).", m.messages.len());
    out
}

/// The `suppression list` table: columns sized to their content, descriptions on one line.
pub fn suppressions(s: &Suppressions) -> String {
    let rows: Vec<[String; 5]> = s
        .results
        .iter()
        .map(|r| {
            [
                r.address.clone(),
                r.subaccount.to_string(),
                r.reason.clone(),
                r.created.clone(),
                r.description
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect(),
            ]
        })
        .collect();
    let header = ["address", "subaccount", "reason", "created", "description"];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].len()])
            .max()
            .unwrap_or(0)
    };
    let (wa, ws, wr, wc) = (width(0), width(1), width(2), width(3));
    let mut out = String::new();
    for r in std::iter::once(header.map(String::from)).chain(rows.iter().cloned()) {
        let line = format!(
            "{:<wa$} {:>ws$} {:<wr$} {:<wc$} {}",
            r[0], r[1], r[2], r[3], r[4]
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let _ = writeln!(out, "{} of {} suppressed address(es).", rows.len(), s.total);
    out
}
