//! One SMTP session: commands parsed by `petrel-smtp`, replies chosen per recipient, the
//! message read with its DATA reader and discarded once counted.
//!
//! Built to keep up with `smtp-sink`: one read buffer per connection, commands parsed in
//! place, replies collected and written once when the client has nothing more pipelined,
//! the message body kept in a buffer reused across messages, the campaign's counters looked
//! up only when the campaign changes, and no allocation for a message that nothing happens
//! to later beyond the parser's own strings.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use petrel_smtp::{parse_command, Command, CommandError, DataReader, MAX_COMMAND_LINE};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tracing::debug;

use crate::after::{Afterwards, Copy};
use crate::behaviour::{tagged, Engagement, Smtp};
use crate::counts::{AtomicCounts, Stats};
use crate::provider::{refusal, Refusal, Style};
use crate::reports::{header_section, header_value};
use crate::settings::Settings;

/// Longest wait for a command or a piece of the message.
const READ_TIMEOUT: Duration = Duration::from_secs(300);
/// Size of each connection's read buffer.
const READ_BUFFER: usize = 64 * 1024;
/// Errors in one session before the sink hangs up.
const MAX_ERRORS: u32 = 20;
/// Recipients per message.
const MAX_RCPTS: usize = 1000;

/// What every session shares.
pub struct Shared {
    /// The settings.
    pub settings: Settings,
    /// The counters.
    pub stats: Arc<Stats>,
    /// Delayed actions.
    pub after: Arc<Afterwards>,
    /// STARTTLS, when a certificate is configured.
    pub tls: Option<TlsAcceptor>,
    /// Attempts so far of recipients still being refused (soft, defer, drop), by
    /// `return path NUL recipient`, lower-cased. Not on the hot path: only those
    /// behaviours take the lock.
    tries: Mutex<HashMap<String, u32>>,
    greeting: Vec<u8>,
    helo: Vec<u8>,
    ehlo: Vec<u8>,
    ehlo_tls: Vec<u8>,
}

impl Shared {
    /// Pre-renders the greeting and EHLO replies.
    pub fn new(
        settings: Settings,
        stats: Arc<Stats>,
        after: Arc<Afterwards>,
        tls: Option<TlsAcceptor>,
    ) -> Shared {
        let host = &settings.host_name;
        let ehlo = |starttls: bool| {
            let mut lines = vec![
                host.clone(),
                "PIPELINING".into(),
                format!("SIZE {}", settings.max_message_size),
                "ENHANCEDSTATUSCODES".into(),
                "8BITMIME".into(),
                "SMTPUTF8".into(),
                "DSN".into(),
            ];
            if starttls {
                lines.push("STARTTLS".into());
            }
            petrel_smtp::Reply::multiline(250, lines)
                .to_wire()
                .into_bytes()
        };
        Shared {
            greeting: format!("220 {host} ESMTP petrel-sink\r\n").into_bytes(),
            helo: format!("250 {host}\r\n").into_bytes(),
            ehlo: ehlo(tls.is_some()),
            ehlo_tls: ehlo(false),
            tls,
            tries: Mutex::new(HashMap::new()),
            settings,
            stats,
            after,
        }
    }

    /// True while `key` is still to be refused: counts this attempt, and forgets the key
    /// once the attempts are used up (the recipient is accepted from then on).
    fn refuse_again(&self, key: String, limit: u32) -> bool {
        let mut map = self.tries.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(key.clone()).or_insert(0);
        *n += 1;
        if *n <= limit {
            true
        } else {
            map.remove(&key);
            false
        }
    }
}

/// The connection's read side: the unparsed bytes are `buf[start..]`. Reads go into the
/// buffer's spare capacity (`read_buf`), so nothing is zeroed per connection or per read.
struct Input<S> {
    stream: S,
    buf: Vec<u8>,
    start: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Input<S> {
    fn new(stream: S) -> Self {
        Input {
            stream,
            buf: Vec::with_capacity(READ_BUFFER),
            start: 0,
        }
    }

    fn buffered(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start >= self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Reads more; `Ok(0)` at the end of the stream.
    async fn fill(&mut self) -> io::Result<usize> {
        // Move the unparsed rest to the front when little room is left behind it, so reads
        // stay large.
        if self.start > 0 && self.buf.capacity() - self.buf.len() < READ_BUFFER / 8 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        match tokio::time::timeout(READ_TIMEOUT, self.stream.read_buf(&mut self.buf)).await {
            Ok(n) => n,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "read timeout")),
        }
    }

    async fn write(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        if !out.is_empty() {
            self.stream.write_all(out).await?;
            out.clear();
        }
        Ok(())
    }
}

/// How a dialogue ended.
enum Next {
    Close,
    StartTls,
}

/// What a command asks the loop to do.
enum Step {
    Continue,
    Data,
    StartTls,
    Close,
}

/// An accepted recipient of the transaction in progress.
struct Rcpt {
    address: String,
    smtp: Smtp,
    /// The engagement its tags ask for; `None`: drawn from the mix after acceptance.
    engagement: Option<Engagement>,
    /// This attempt ends with the connection closed mid-DATA.
    drop_now: bool,
}

/// One connection's state.
struct Session<'a> {
    shared: &'a Shared,
    peer: IpAddr,
    ip: Arc<AtomicCounts>,
    tls: bool,
    helo: bool,
    errors: u32,
    mail_from: Option<String>,
    rcpts: Vec<Rcpt>,
    out: Vec<u8>,
    body: Vec<u8>,
    /// The previous message's campaign and its counters.
    campaign: Option<(Vec<u8>, Arc<AtomicCounts>)>,
}

/// Serves one accepted connection to its end.
pub async fn serve_connection(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let ip = shared.stats.source_ip(peer.ip());
    shared.stats.scope(&ip, None).add(1, |c| &c.connections);
    let mut s = Session {
        shared: &shared,
        peer: peer.ip(),
        ip,
        tls: false,
        helo: false,
        errors: 0,
        mail_from: None,
        rcpts: Vec::new(),
        out: Vec::with_capacity(4096),
        body: Vec::new(),
        campaign: None,
    };
    if let Err(e) = s.run(stream).await {
        debug!("{peer}: {e}");
    }
}

impl Session<'_> {
    async fn run(&mut self, stream: TcpStream) -> io::Result<()> {
        let mut input = Input::new(stream);
        self.out.extend_from_slice(&self.shared.greeting);
        let Next::StartTls = self.dialogue(&mut input).await? else {
            return Ok(());
        };
        // Bytes pipelined after STARTTLS came in clear text: never read them as TLS data.
        let Some(acceptor) = self.shared.tls.clone() else {
            return Ok(());
        };
        let tls = tokio::time::timeout(READ_TIMEOUT, acceptor.accept(input.stream))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timeout"))??;
        self.tls = true;
        self.helo = false;
        self.reset();
        let mut input = Input::new(tls);
        self.dialogue(&mut input).await.map(|_| ())
    }

    fn reset(&mut self) {
        self.mail_from = None;
        self.rcpts.clear();
    }

    /// The command loop: replies are written when nothing more is buffered, so a pipelined
    /// batch costs one write.
    async fn dialogue<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        input: &mut Input<S>,
    ) -> io::Result<Next> {
        let mut skipping = false;
        loop {
            let Some(nl) = memchr::memchr(b'\n', input.buffered()) else {
                if input.buffered().len() > MAX_COMMAND_LINE {
                    // A line too long: drop what came, keep dropping up to its end.
                    skipping = true;
                    let n = input.buffered().len();
                    input.consume(n);
                }
                input.write(&mut self.out).await?;
                if input.fill().await? == 0 {
                    return Ok(Next::Close);
                }
                continue;
            };
            if skipping {
                skipping = false;
                input.consume(nl + 1);
                self.error(b"500 5.5.2 Error: line too long\r\n");
                continue;
            }
            let cmd = parse_command(&input.buffered()[..=nl]);
            input.consume(nl + 1);
            let step = match cmd {
                Ok(cmd) => self.command(cmd),
                Err(e) => {
                    self.command_error(&e);
                    Step::Continue
                }
            };
            match step {
                Step::Continue if self.errors >= MAX_ERRORS => {
                    self.out
                        .extend_from_slice(b"421 4.7.0 Error: too many errors\r\n");
                    input.write(&mut self.out).await?;
                    return Ok(Next::Close);
                }
                Step::Continue => {}
                Step::Close => {
                    input.write(&mut self.out).await?;
                    return Ok(Next::Close);
                }
                Step::StartTls => {
                    input.write(&mut self.out).await?;
                    return Ok(Next::StartTls);
                }
                Step::Data => {
                    input.write(&mut self.out).await?;
                    if !self.data(input).await? {
                        return Ok(Next::Close);
                    }
                }
            }
        }
    }

    fn error(&mut self, reply: &[u8]) {
        self.errors += 1;
        self.out.extend_from_slice(reply);
    }

    fn command_error(&mut self, e: &CommandError) {
        let reply: &[u8] = match e {
            CommandError::Unknown => b"500 5.5.1 Error: command not recognized\r\n",
            CommandError::LineTooLong => b"500 5.5.2 Error: line too long\r\n",
            CommandError::NotText => b"500 5.5.2 Error: bad characters in command\r\n",
            CommandError::BadAddress => b"501 5.1.3 Error: bad address syntax\r\n",
            CommandError::UnsupportedParam(_) => b"555 5.5.4 Error: unsupported parameter\r\n",
            CommandError::Syntax(_) | CommandError::BadParam(_) => {
                b"501 5.5.4 Error: syntax error in parameters\r\n"
            }
        };
        self.error(reply);
    }

    fn command(&mut self, cmd: Command) -> Step {
        match cmd {
            Command::Ehlo(_) => {
                self.reset();
                self.helo = true;
                let r = if self.tls {
                    &self.shared.ehlo_tls
                } else {
                    &self.shared.ehlo
                };
                self.out.extend_from_slice(r);
            }
            Command::Helo(_) => {
                self.reset();
                self.helo = true;
                self.out.extend_from_slice(&self.shared.helo);
            }
            Command::Mail { address, params } => {
                if !self.helo {
                    self.error(b"503 5.5.1 Error: send HELO/EHLO first\r\n");
                } else if self.mail_from.is_some() {
                    self.error(b"503 5.5.1 Error: nested MAIL command\r\n");
                } else if params
                    .size
                    .is_some_and(|s| s > self.shared.settings.max_message_size)
                {
                    self.error(b"552 5.3.4 Error: message size exceeds fixed limit\r\n");
                } else {
                    self.mail_from = Some(address);
                    self.out.extend_from_slice(b"250 2.1.0 Ok\r\n");
                }
            }
            Command::Rcpt { address, .. } => return self.rcpt(address),
            Command::Data => {
                if self.mail_from.is_none() {
                    self.error(b"503 5.5.1 Error: need MAIL command\r\n");
                } else if self.rcpts.is_empty() {
                    self.error(b"554 5.5.1 Error: no valid recipients\r\n");
                } else {
                    self.out
                        .extend_from_slice(b"354 End data with <CR><LF>.<CR><LF>\r\n");
                    return Step::Data;
                }
            }
            Command::Rset => {
                self.reset();
                self.out.extend_from_slice(b"250 2.0.0 Ok\r\n");
            }
            Command::Noop => self.out.extend_from_slice(b"250 2.0.0 Ok\r\n"),
            Command::Quit => {
                self.out.extend_from_slice(b"221 2.0.0 Bye\r\n");
                return Step::Close;
            }
            Command::Vrfy(_) | Command::Expn(_) => self
                .out
                .extend_from_slice(b"252 2.0.0 Send some mail, I'll try my best\r\n"),
            Command::Help => self
                .out
                .extend_from_slice(b"214 2.0.0 petrel-sink: see docs/sink.md\r\n"),
            Command::StartTls => {
                if self.tls || self.shared.tls.is_none() {
                    self.error(b"502 5.5.1 Error: STARTTLS not available\r\n");
                } else {
                    self.out
                        .extend_from_slice(b"220 2.0.0 Ready to start TLS\r\n");
                    return Step::StartTls;
                }
            }
            Command::Bdat { .. } | Command::Auth { .. } => {
                self.error(b"502 5.5.1 Error: command not implemented\r\n");
            }
        }
        Step::Continue
    }

    /// Decides one recipient's fate: refused (in its provider's words), or accepted with
    /// what happens to it later.
    fn rcpt(&mut self, address: String) -> Step {
        let Some(mail_from) = &self.mail_from else {
            self.error(b"503 5.5.1 Error: need MAIL command\r\n");
            return Step::Continue;
        };
        if self.rcpts.len() >= MAX_RCPTS {
            self.error(b"452 4.5.3 Error: too many recipients\r\n");
            return Step::Continue;
        }
        let shared = self.shared;
        let settings = &shared.settings;
        let (smtp, engagement) = match tagged(&address) {
            Some((s, e)) => (s, Some(e)),
            None => (settings.mix.smtp_for(settings.seed, &address), None),
        };
        let tries = settings.tries;
        let key = || {
            format!(
                "{}\0{}",
                mail_from.to_ascii_lowercase(),
                address.to_ascii_lowercase()
            )
        };
        let mut drop_now = false;
        let refused = match smtp {
            Smtp::Hard => Some(Refusal::Hard),
            Smtp::Block => Some(Refusal::Block),
            Smtp::TlsRequired if !self.tls => Some(Refusal::TlsRequired),
            Smtp::Soft(n) if shared.refuse_again(key(), n.unwrap_or(tries.soft)) => {
                Some(Refusal::Soft)
            }
            Smtp::Defer(n) if shared.refuse_again(key(), n.unwrap_or(tries.defer)) => {
                Some(Refusal::Defer)
            }
            Smtp::Drop(n) => {
                drop_now = shared.refuse_again(key(), n.unwrap_or(tries.drop));
                None
            }
            _ => None,
        };
        if let Some(kind) = refused {
            let domain = address.rsplit_once('@').map_or("", |(_, d)| d);
            let style = Style::for_domain(domain, &settings.providers);
            refusal(style, kind, &address, self.peer).write_to(&mut self.out);
            let scope = shared.stats.scope(&self.ip, None);
            match kind {
                Refusal::Hard => scope.add(1, |c| &c.hard),
                Refusal::Block => scope.add(1, |c| &c.block),
                Refusal::TlsRequired => scope.add(1, |c| &c.tls_required),
                Refusal::Soft => scope.add(1, |c| &c.soft),
                Refusal::Defer => {
                    scope.add(1, |c| &c.defer);
                    return Step::Close;
                }
            }
            return Step::Continue;
        }
        self.rcpts.push(Rcpt {
            address,
            smtp,
            engagement,
            drop_now,
        });
        self.out.extend_from_slice(b"250 2.1.5 Ok\r\n");
        Step::Continue
    }

    /// Reads the message (the 354 has been sent). `Ok(false)`: the connection is to close
    /// (a `drop` recipient, or the client went away).
    async fn data<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        input: &mut Input<S>,
    ) -> io::Result<bool> {
        let max = self.shared.settings.max_message_size;
        let mut reader = DataReader::new(Some(max));
        let drop_now = self.rcpts.iter().any(|r| r.drop_now);
        self.body.clear();
        loop {
            if input.buffered().is_empty() && input.fill().await? == 0 {
                self.reset();
                return Ok(false);
            }
            let chunk = input.buffered();
            let n = chunk.len();
            let end = reader.feed(chunk, &mut self.body);
            input.consume(end.map_or(n, |e| e.consumed));
            if drop_now && (end.is_some() || header_section(&self.body).len() < self.body.len()) {
                // Hang up in the middle of the message, once its header (and campaign) is in.
                // Every recipient of the transaction is cut off, not only the one that asked.
                let count = self.rcpts.len() as u64;
                let campaign = self.campaign_counts();
                self.shared
                    .stats
                    .scope(&self.ip, campaign.as_deref())
                    .add(count, |c| &c.drop);
                self.reset();
                self.out.clear();
                return Ok(false);
            }
            if end.is_some() {
                break;
            }
        }
        if reader.overflowed() {
            self.reset();
            self.error(b"552 5.3.4 Error: message too big\r\n");
            return Ok(true);
        }
        self.accept().await;
        Ok(true)
    }

    /// The counters of the current message's campaign (`X-Job`), cached across messages.
    fn campaign_counts(&mut self) -> Option<Arc<AtomicCounts>> {
        let value = x_job(header_section(&self.body))?;
        match &self.campaign {
            Some((name, counts)) if name == value => Some(counts.clone()),
            _ => {
                let counts = self.shared.stats.campaign(&String::from_utf8_lossy(value));
                self.campaign = Some((value.to_vec(), counts.clone()));
                Some(counts)
            }
        }
    }

    /// Counts the accepted message, waits for `slow` recipients, answers, and schedules
    /// what happens to each copy later.
    async fn accept(&mut self) {
        let now = SystemTime::now();
        let campaign = self.campaign_counts();
        let shared = self.shared;
        let settings = &shared.settings;
        let stats = &shared.stats;
        let scope = stats.scope(&self.ip, campaign.as_deref());
        let slow: Vec<Duration> = self
            .rcpts
            .iter()
            .filter_map(|r| match r.smtp {
                Smtp::Slow(secs) => {
                    Some(secs.map_or(settings.delays.slow, |s| Duration::from_secs(u64::from(s))))
                }
                _ => None,
            })
            .collect();
        scope.add(1, |c| &c.messages);
        scope.add(self.rcpts.len() as u64, |c| &c.delivered);
        scope.add(slow.len() as u64, |c| &c.slow);
        stats.message_at(now);
        if let Some(wait) = slow.iter().max() {
            tokio::time::sleep(*wait).await;
        }
        self.out.extend_from_slice(b"250 2.0.0 Ok: queued\r\n");
        self.schedule(now, campaign);
        self.reset();
    }

    /// Hands the copies that have a future to [`Afterwards`].
    fn schedule(&mut self, now: SystemTime, campaign: Option<Arc<AtomicCounts>>) {
        let shared = self.shared;
        let settings = &shared.settings;
        let mix = &settings.mix;
        let mix_engages = mix.engages();
        let mut message_key: Option<String> = None;
        let mut message: Option<Arc<[u8]>> = None;
        for r in &self.rcpts {
            let engagement = match (r.smtp, r.engagement) {
                (Smtp::Oob, _) => Engagement::default(),
                (_, Some(e)) => e,
                (_, None) if mix_engages => {
                    let key = message_key.get_or_insert_with(|| {
                        let h = header_section(&self.body);
                        format!(
                            "{}|{}",
                            header_value(h, "x-job").unwrap_or_default(),
                            header_value(h, "subject").unwrap_or_default()
                        )
                    });
                    mix.engagement_for(settings.seed, &r.address, key)
                }
                (_, None) => Engagement::default(),
            };
            if r.smtp != Smtp::Oob && engagement.is_none() {
                continue;
            }
            let message = message
                .get_or_insert_with(|| Arc::from(&self.body[..]))
                .clone();
            let domain = r.address.rsplit_once('@').map_or("", |(_, d)| d);
            let copy = Arc::new(Copy {
                message,
                mail_from: self.mail_from.clone().unwrap_or_default(),
                rcpt: r.address.clone(),
                client: self.peer,
                arrival: now,
                style: Style::for_domain(domain, &settings.providers),
                ip: self.ip.clone(),
                campaign: campaign.clone(),
            });
            if r.smtp == Smtp::Oob {
                shared.after.bounce_later(copy);
            } else {
                shared.after.engage(copy, engagement);
            }
        }
    }
}

/// The trimmed value of the first `X-Job:` field of a header section, without allocating
/// (campaign names are single tokens, so folding is not looked at).
fn x_job(header: &[u8]) -> Option<&[u8]> {
    header
        .split(|&b| b == b'\n')
        .find(|l| l.len() > 6 && l[..6].eq_ignore_ascii_case(b"x-job:"))
        .map(|l| l[6..].trim_ascii())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_job_is_found_in_place() {
        assert_eq!(
            x_job(b"From: a\r\nX-JOB:  spring \r\nX-Job: other\r\n"),
            Some(&b"spring"[..])
        );
        assert_eq!(x_job(b"From: a\r\nX-Jobs: no\r\n"), None);
        assert_eq!(x_job(b"X-Job:\r\n"), None);
    }
}
