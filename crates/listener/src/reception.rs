//! What happens to a message between the end of DATA and the spool: the X-headers petrel
//! honours, the virtual MTA choice (and a pool's member), and the headers every MTA adds
//! (pmta-spec §5, §8.5).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use petrel_config::{Config, SourcePolicy};
use petrel_message::{address_domain, header_address, job_id_safe, HeaderEdit, Headers};
use petrel_smtp::Reply;
use petrel_spool::MessageFacts;

/// The name PowerMTA gives the virtual MTA used when none is selected.
pub const DEFAULT_VMTA: &str = "{default}";

/// Who sent the message and how, for the `Received:` header.
pub(crate) struct Origin<'a> {
    pub helo: &'a str,
    pub peer: SocketAddr,
    pub host: &'a str,
    pub tls: bool,
    pub esmtp: bool,
    pub auth_user: Option<&'a str>,
    pub single_rcpt: Option<&'a str>,
    /// The envelope, for `<pattern-list>` entries.
    pub mail_from: &'a str,
    pub rcpts: &'a [(String, petrel_smtp::RcptParams)],
}

/// The message as it will be spooled: `head` (the edited header section) followed by the
/// received bytes from `rest` on, which are not copied.
pub(crate) struct Prepared {
    pub head: Vec<u8>,
    pub rest: usize,
    pub job_id: Option<String>,
    pub vmta: String,
    /// The member chosen when `vmta` is a pool.
    pub pool_member: Option<String>,
    pub facts: MessageFacts,
}

/// A reason to refuse the message at end of DATA, with the reply to send.
pub(crate) struct Rejection(pub Reply);

/// Applies the source policy to the received bytes.
pub(crate) fn prepare_message(
    config: &Config,
    policy: &SourcePolicy,
    raw: &[u8],
    origin: &Origin<'_>,
) -> Result<Prepared, Rejection> {
    let headers = Headers::parse(raw);
    let mut edit = HeaderEdit::default();

    if headers.count("Received") >= policy.max_message_hops as usize {
        return Err(Rejection(Reply::new(
            554,
            (5, 4, 6),
            "too many hops (Received headers); possible mail loop",
        )));
    }

    let mut job_id = None;
    if policy.process_x_job {
        let values = headers.get_all("X-Job");
        if values.len() > 1 {
            return Err(Rejection(Reply::new(
                550,
                (5, 6, 0),
                "more than one X-Job header; a message belongs to one job",
            )));
        }
        if let Some(v) = values.into_iter().next() {
            if v.is_empty() {
                return Err(Rejection(Reply::new(
                    550,
                    (5, 6, 0),
                    "empty X-Job header: name the job or leave the header out",
                )));
            }
            // The article's rule (`petrel job-id-safe`): space, `"`, `` ` ``, control
            // characters and everything after `~` become `_`.
            let v = job_id_safe(&v);
            let prefix = match (&policy.jobid_prefix, origin.auth_user) {
                (Some(p), Some(user)) => p.replace("{auth}", user),
                (Some(p), None) => p.replace("{auth}", ""),
                (None, _) => String::new(),
            };
            job_id = Some(format!("{prefix}{v}"));
        }
        if !policy.retain_x_job {
            edit.remove.push("X-Job".into());
        }
    }

    let mut vmta = policy
        .default_virtual_mta
        .clone()
        .unwrap_or_else(|| DEFAULT_VMTA.to_string());
    // `<pattern-list>` (the source's `pattern-list`) beats `default-virtual-mta`; an
    // X-Virtual-MTA header (when processed) beats both.
    if let Some(list) = policy
        .pattern_list
        .as_deref()
        .and_then(|n| config.pattern_list(n))
    {
        let rcpts = origin.rcpts.iter().map(|(r, _)| r.as_str());
        if let Some(v) = list.virtual_mta(|name| headers.get(name), origin.mail_from, rcpts) {
            vmta = v.to_string();
        }
    }
    if policy.process_x_virtual_mta {
        if let Some(v) = headers.get("X-Virtual-MTA") {
            if v.is_empty() {
                return Err(Rejection(Reply::new(
                    550,
                    (5, 3, 5),
                    "empty X-Virtual-MTA header",
                )));
            }
            if !config.virtual_mta_exists(&v) {
                return Err(Rejection(Reply::new(
                    550,
                    (5, 3, 5),
                    format!("specified VirtualMTA does not exist: {v}"),
                )));
            }
            vmta = v;
        }
        if !policy.retain_x_virtual_mta {
            edit.remove.push("X-Virtual-MTA".into());
        }
    }

    // A pool hands the message to one of its members now: PowerMTA queues it domain/vmta
    // from the start, so the injection event names the member, its pool and its IP.
    let pool_member = config.next_pool_member(&vmta).map(str::to_string);

    let facts = message_facts(config, &headers, &mut edit);

    if policy.add_received_header {
        edit.prepend
            .push(received_header(origin, policy.hide_message_source));
    }
    if !headers.has("Message-ID") {
        edit.append
            .push(format!("Message-ID: {}", new_message_id(origin.host)));
    }
    let (head, rest) = headers.apply_split(&edit);
    Ok(Prepared {
        head,
        rest,
        job_id,
        vmta,
        pool_member,
        facts,
    })
}

/// The header facts Signals events carry; strips `X-SP-Subaccount-ID` once it is processed
/// unless `retain-x-sp-subaccount-id` keeps it.
fn message_facts(config: &Config, headers: &Headers<'_>, edit: &mut HeaderEdit) -> MessageFacts {
    let Some(signals) = &config.signals else {
        return MessageFacts::default();
    };
    let from = headers.get("From").and_then(|v| header_address(&v));
    let sender = headers.get("Sender").and_then(|v| header_address(&v));
    let sending_domain = sender
        .as_deref()
        .and_then(address_domain)
        .or_else(|| from.as_deref().and_then(address_domain));
    let subject = headers.get("Subject").map(|s| truncate(s, 512));
    let mut subaccount = None;
    if signals.process_x_sp_subaccount_id {
        subaccount = headers
            .get("X-SP-Subaccount-ID")
            .and_then(|v| v.trim().parse::<u64>().ok());
        if !signals.retain_x_sp_subaccount_id {
            edit.remove.push("X-SP-Subaccount-ID".into());
        }
    }
    let custom_message_id = signals
        .custom_message_id_header
        .as_deref()
        .and_then(|h| headers.get(h))
        .map(|v| v.chars().filter(char::is_ascii).collect::<String>())
        .filter(|v| !v.is_empty())
        .map(|v| truncate(v, 512));
    MessageFacts {
        from,
        sending_domain,
        subject,
        subaccount,
        custom_message_id,
        generated: false,
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary.
fn truncate(mut s: String, max: usize) -> String {
    s.truncate(s.floor_char_boundary(max));
    s
}

fn received_header(o: &Origin<'_>, hide_source: bool) -> String {
    let with = match (o.esmtp, o.tls, o.auth_user.is_some()) {
        (false, _, _) => "SMTP",
        (true, false, false) => "ESMTP",
        (true, true, false) => "ESMTPS",
        (true, false, true) => "ESMTPA",
        (true, true, true) => "ESMTPSA",
    };
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default();
    let for_clause = o
        .single_rcpt
        .map(|r| format!("\r\n\tfor <{r}>"))
        .unwrap_or_default();
    let from = if hide_source {
        String::new()
    } else {
        format!("from {} ([{}])\r\n\t", o.helo, o.peer.ip())
    };
    format!(
        "Received: {from}by {} (petrel) with {with}{for_clause}; {date}",
        o.host
    )
}

/// A Message-ID unique across restarts and hosts: time, process id and a counter.
fn new_message_id(host: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    format!("<{now:x}.{:x}.{n:x}@{host}>", std::process::id())
}
