//! One inbound SMTP session: the command state machine, policy checks and the hand-off to
//! the spool. Protocol syntax comes from `petrel-smtp`; this module decides what to answer.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use petrel_config::{Config, SourcePolicy};
use petrel_smtp::{
    decode_base64_line, parse_command, parse_plain_response, AuthError, Command, CommandError,
    DataReader, MailParams, RcptParams, Reply, MAX_COMMAND_LINE,
};
use petrel_spool::{Envelope, Recipient, SpoolError};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tracing::{info, warn};

use crate::io::{read_line, Line};
use crate::memory::Charge;
use crate::reception::{prepare_message, Prepared, Rejection};
use crate::{Context, ReturnedMail};

/// After this many protocol errors in one session the client is disconnected, as Postfix's
/// `smtpd_hard_error_limit` does, so a confused or hostile client cannot loop forever.
const MAX_ERRORS: u32 = 20;
/// What a recipient costs in memory besides its command line (the address and parameters
/// in the transaction, then in the envelope), for `max-smtp-in-memory`.
const RCPT_MEMORY: u64 = 128;
/// What the envelope costs before its recipients.
const ENVELOPE_MEMORY: u64 = 1024;
/// How long the one waiting transaction waits for memory before it too is refused with 452.
const MEMORY_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// What the dialogue loop asks its caller to do next.
enum Next {
    Close,
    StartTls,
}

/// The mail transaction being built between MAIL and the end of DATA.
struct Transaction {
    mail_from: String,
    params: MailParams,
    rcpts: Vec<(String, RcptParams)>,
    /// Its share of `max-smtp-in-memory`: the envelope, then the message too.
    memory: Charge,
    /// Bytes the envelope is charged for so far.
    envelope_bytes: u64,
}

/// Per-connection state. The policy starts as the client IP's `<source>` (overlaid by the
/// listener's `source=`), and becomes the `{auth}` / user source after AUTH.
pub(crate) struct Session {
    ctx: Arc<Context>,
    config: Arc<Config>,
    peer: SocketAddr,
    base_policy: SourcePolicy,
    policy: SourcePolicy,
    helo: Option<String>,
    esmtp: bool,
    tls: Option<String>,
    auth_user: Option<String>,
    txn: Option<Transaction>,
    errors: u32,
    out: Vec<u8>,
}

impl Session {
    pub(crate) fn new(
        ctx: Arc<Context>,
        peer: SocketAddr,
        listener_source: Option<String>,
    ) -> Self {
        let config = ctx.config();
        let mut base_policy = config.source_for_ip(peer.ip());
        if let Some(name) = &listener_source {
            base_policy = config.source_with_named(&base_policy, name);
        }
        Session {
            ctx,
            policy: base_policy.clone(),
            base_policy,
            config,
            peer,
            helo: None,
            esmtp: false,
            tls: None,
            auth_user: None,
            txn: None,
            errors: 0,
            out: Vec::with_capacity(512),
        }
    }

    fn host(&self) -> &str {
        self.config.primary_host_name()
    }

    fn reply(&mut self, reply: Reply) {
        if self.policy.log_commands {
            for line in reply.to_wire().lines() {
                info!(target: "petrel::smtp", "{} <<< {line}", self.peer);
            }
        }
        reply.write_to(&mut self.out);
    }

    fn error(&mut self, reply: Reply) {
        self.errors += 1;
        self.ctx.stats.rejections.fetch_add(1, Ordering::Relaxed);
        self.reply(reply);
    }

    async fn flush<S: AsyncWrite + Unpin>(&mut self, stream: &mut S) -> std::io::Result<()> {
        if !self.out.is_empty() {
            stream.write_all(&self.out).await?;
            stream.flush().await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Runs the whole session on a freshly accepted connection.
    pub(crate) async fn run(mut self, stream: TcpStream) {
        let peer = self.peer;
        if self.policy.log_connections {
            info!(target: "petrel::smtp", "{peer} connected");
        }
        let result = self.run_inner(stream).await;
        if let Err(e) = &result {
            if self.policy.log_connections {
                info!(target: "petrel::smtp", "{peer} connection ended: {e}");
            }
        } else if self.policy.log_connections {
            info!(target: "petrel::smtp", "{peer} disconnected");
        }
    }

    async fn run_inner(&mut self, stream: TcpStream) -> std::io::Result<()> {
        let mut reader = BufReader::with_capacity(16 * 1024, stream);
        if !self.policy.smtp_service {
            let host = self.host().to_string();
            self.reply(Reply::plain(
                521,
                format!("{host} does not accept mail from you"),
            ));
            return self.flush(reader.get_mut()).await;
        }
        let host = self.host().to_string();
        self.reply(Reply::plain(
            220,
            format!(
                "{host} (petrel {}) ESMTP service ready",
                env!("CARGO_PKG_VERSION")
            ),
        ));
        match self.dialogue(&mut reader).await? {
            Next::Close => Ok(()),
            Next::StartTls => {
                // Anything the client pipelined after STARTTLS arrived in clear text and must
                // not be read as if it came over TLS (CVE-2011-0411 class of bugs).
                let discarded = reader.buffer().len();
                let stream = reader.into_inner();
                if discarded > 0 {
                    warn!(target: "petrel::smtp", "{} discarded {discarded} bytes pipelined after STARTTLS", self.peer);
                }
                let Some(tls) = self.ctx.tls_acceptor() else {
                    return Ok(());
                };
                let tls_stream = match tokio::time::timeout(
                    self.policy.smtp_command_timeout,
                    tls.accept(stream),
                )
                .await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        info!(target: "petrel::smtp", "{} TLS handshake failed: {e}", self.peer);
                        return Ok(());
                    }
                    Err(_) => return Ok(()),
                };
                let version = tls_stream
                    .get_ref()
                    .1
                    .protocol_version()
                    .map(|v| format!("{v:?}"))
                    .unwrap_or_default();
                if self.policy.log_connections {
                    info!(target: "petrel::smtp", "{} tls:{version} connected", self.peer);
                }
                self.tls = Some(version);
                // RFC 3207 §4.2: forget everything learnt before the handshake.
                self.helo = None;
                self.esmtp = false;
                self.txn = None;
                let mut reader = BufReader::with_capacity(16 * 1024, tls_stream);
                self.dialogue(&mut reader).await.map(|_| ())
            }
        }
    }

    /// The command loop. Replies are buffered and written only when the client has nothing
    /// more pipelined, so a PIPELINING batch costs one write.
    async fn dialogue<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        reader: &mut BufReader<S>,
    ) -> std::io::Result<Next> {
        loop {
            if reader.buffer().is_empty() {
                self.flush(reader.get_mut()).await?;
            }
            let line = match tokio::time::timeout(
                self.policy.smtp_command_timeout,
                read_line(reader, MAX_COMMAND_LINE),
            )
            .await
            {
                Ok(line) => line?,
                Err(_) => {
                    let host = self.host().to_string();
                    self.reply(Reply::new(
                        421,
                        (4, 4, 2),
                        format!("{host} timeout exceeded, closing connection"),
                    ));
                    self.flush(reader.get_mut()).await?;
                    return Ok(Next::Close);
                }
            };
            let line = match line {
                Line::Eof => return Ok(Next::Close),
                Line::TooLong => {
                    self.error(Reply::new(500, (5, 5, 2), "line too long"));
                    if self.too_many_errors(reader).await? {
                        return Ok(Next::Close);
                    }
                    continue;
                }
                Line::Complete(line) => line,
            };
            if self.policy.log_commands {
                let shown = if self.awaiting_secret(&line) {
                    "AUTH ****".to_string()
                } else {
                    String::from_utf8_lossy(&line).trim_end().to_string()
                };
                info!(target: "petrel::smtp", "{} >>> {shown}", self.peer);
            }
            let next = match parse_command(&line) {
                Ok(cmd) => self.command(cmd, &line, reader).await?,
                Err(e) => {
                    self.command_error(e);
                    None
                }
            };
            if let Some(next) = next {
                self.flush(reader.get_mut()).await?;
                return Ok(next);
            }
            if self.too_many_errors(reader).await? {
                return Ok(Next::Close);
            }
        }
    }

    fn awaiting_secret(&self, line: &[u8]) -> bool {
        line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"AUTH")
    }

    async fn too_many_errors<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        reader: &mut BufReader<S>,
    ) -> std::io::Result<bool> {
        if self.errors < MAX_ERRORS {
            return Ok(false);
        }
        let host = self.host().to_string();
        self.reply(Reply::new(
            421,
            (4, 7, 0),
            format!("{host} too many errors, closing connection"),
        ));
        self.flush(reader.get_mut()).await?;
        Ok(true)
    }

    fn command_error(&mut self, e: CommandError) {
        let reply = match e {
            CommandError::Unknown => Reply::new(500, (5, 5, 1), "command unrecognized"),
            CommandError::LineTooLong => Reply::new(500, (5, 5, 2), "line too long"),
            CommandError::NotText => Reply::new(500, (5, 5, 2), "invalid characters in command"),
            CommandError::Syntax(why) => Reply::new(501, (5, 5, 4), format!("syntax error: {why}")),
            CommandError::BadAddress => Reply::new(501, (5, 1, 3), "bad address syntax"),
            CommandError::UnsupportedParam(p) => {
                Reply::new(555, (5, 5, 4), format!("unsupported parameter {p}"))
            }
            CommandError::BadParam(p) => Reply::new(501, (5, 5, 4), format!("bad value for {p}")),
        };
        self.error(reply);
    }

    /// Runs one parsed command; `line` is the command as received (for replies that quote it).
    async fn command<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        cmd: Command,
        line: &[u8],
        reader: &mut BufReader<S>,
    ) -> std::io::Result<Option<Next>> {
        match cmd {
            Command::Helo(name) => {
                self.helo = Some(name);
                self.esmtp = false;
                self.txn = None;
                let host = self.host().to_string();
                self.reply(Reply::plain(250, host));
            }
            Command::Ehlo(name) => {
                self.helo = Some(name);
                self.esmtp = true;
                self.txn = None;
                let reply = self.ehlo_reply();
                self.reply(reply);
            }
            Command::Quit => {
                let host = self.host().to_string();
                self.reply(Reply::new(
                    221,
                    (2, 0, 0),
                    format!("{host} closing connection"),
                ));
                return Ok(Some(Next::Close));
            }
            Command::Rset => {
                self.txn = None;
                self.reply(Reply::new(250, (2, 0, 0), "reset"));
            }
            Command::Noop => self.reply(Reply::new(250, (2, 0, 0), "ok")),
            Command::Help => self.reply(Reply::new(
                214,
                (2, 0, 0),
                "see https://www.rfc-editor.org/rfc/rfc5321",
            )),
            Command::Vrfy(_) => self.reply(Reply::new(
                252,
                (2, 5, 0),
                "cannot VRFY user, but will accept message",
            )),
            Command::Expn(_) => self.error(Reply::new(502, (5, 5, 1), "EXPN not available")),
            Command::Bdat { .. } => self.error(Reply::new(
                502,
                (5, 5, 1),
                "BDAT (CHUNKING) is not offered; use DATA",
            )),
            Command::StartTls => return Ok(self.starttls()),
            Command::Auth { mechanism, initial } => self.auth(mechanism, initial, reader).await?,
            Command::Mail { address, params } => self.mail(address, params),
            Command::Rcpt { address, params } => self.rcpt(address, params, line),
            Command::Data => self.data(reader).await?,
        }
        Ok(None)
    }

    fn tls_available(&self) -> bool {
        self.policy.allow_starttls && self.tls.is_none() && self.ctx.tls_acceptor().is_some()
    }

    fn auth_offered(&self) -> bool {
        self.policy.allow_auth
            && self.auth_user.is_none()
            && (self.tls.is_some() || self.policy.allow_unencrypted_plain_auth)
            && !(self.policy.require_starttls_before_auth && self.tls.is_none())
    }

    fn ehlo_reply(&self) -> Reply {
        let mut lines = vec![
            format!("{} hello [{}]", self.host(), self.peer.ip()),
            "ENHANCEDSTATUSCODES".to_string(),
            "PIPELINING".to_string(),
            format!("SIZE {}", self.policy.max_message_size.unwrap_or(0)),
            "8BITMIME".to_string(),
        ];
        if self.policy.allow_smtputf8 {
            lines.push("SMTPUTF8".into());
        }
        lines.push("DSN".into());
        if self.tls_available() {
            lines.push("STARTTLS".into());
        }
        if self.auth_offered() {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        Reply::multiline(250, lines)
    }

    fn starttls(&mut self) -> Option<Next> {
        if self.tls.is_some() {
            self.error(Reply::new(503, (5, 5, 1), "TLS already active"));
            return None;
        }
        if !self.tls_available() {
            self.error(Reply::new(454, (4, 7, 0), "TLS not available"));
            return None;
        }
        self.reply(Reply::new(220, (2, 0, 0), "ready to start TLS"));
        Some(Next::StartTls)
    }

    async fn read_auth_line<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        reader: &mut BufReader<S>,
        prompt: &str,
    ) -> std::io::Result<Option<String>> {
        self.reply(Reply::plain(334, prompt));
        self.flush(reader.get_mut()).await?;
        match tokio::time::timeout(
            self.policy.smtp_command_timeout,
            read_line(reader, MAX_COMMAND_LINE),
        )
        .await
        {
            Ok(Ok(Line::Complete(l))) => {
                Ok(Some(String::from_utf8_lossy(&l).trim_end().to_string()))
            }
            Ok(Ok(_)) | Err(_) => Ok(None),
            Ok(Err(e)) => Err(e),
        }
    }

    async fn auth<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        mechanism: String,
        initial: Option<String>,
        reader: &mut BufReader<S>,
    ) -> std::io::Result<()> {
        if self.helo.is_none() || !self.esmtp {
            self.error(Reply::new(503, (5, 5, 1), "send EHLO first"));
            return Ok(());
        }
        if self.auth_user.is_some() {
            self.error(Reply::new(503, (5, 5, 1), "already authenticated"));
            return Ok(());
        }
        if self.txn.is_some() {
            self.error(Reply::new(
                503,
                (5, 5, 1),
                "AUTH not allowed during a mail transaction",
            ));
            return Ok(());
        }
        if !self.policy.allow_auth {
            self.error(Reply::new(502, (5, 5, 1), "AUTH not available"));
            return Ok(());
        }
        if self.tls.is_none()
            && (!self.policy.allow_unencrypted_plain_auth
                || self.policy.require_starttls_before_auth)
        {
            self.error(Reply::new(
                538,
                (5, 7, 11),
                "encryption required for requested authentication mechanism; use STARTTLS first",
            ));
            return Ok(());
        }
        let ip = self.peer.ip();
        if let Some(rate) = self.policy.smtp_max_auth_failure_rate {
            if let Some(wait) =
                self.ctx
                    .auth_failures
                    .blocked_for(ip, rate.count, rate.window, Instant::now())
            {
                self.error(Reply::new(
                    454,
                    (4, 7, 0),
                    format!(
                        "too many authentication failures from {ip}; try again in {} seconds",
                        wait.as_secs().max(1)
                    ),
                ));
                return Ok(());
            }
        }
        let creds = match mechanism.as_str() {
            "PLAIN" => {
                let response = match initial {
                    Some(r) => Some(r),
                    None => self.read_auth_line(reader, "").await?,
                };
                let Some(response) = response else {
                    return Ok(());
                };
                decode_base64_line(&response)
                    .and_then(|d| parse_plain_response(&d))
                    .map(|c| (c.authcid, c.password))
            }
            "LOGIN" => {
                let user = match initial {
                    Some(r) => Some(r),
                    None => self.read_auth_line(reader, "VXNlcm5hbWU6").await?,
                };
                let Some(user) = user else { return Ok(()) };
                match decode_base64_line(&user) {
                    Err(e) => Err(e),
                    Ok(user) => {
                        let Some(pass) = self.read_auth_line(reader, "UGFzc3dvcmQ6").await? else {
                            return Ok(());
                        };
                        decode_base64_line(&pass).map(|p| {
                            (
                                String::from_utf8_lossy(&user).into_owned(),
                                String::from_utf8_lossy(&p).into_owned(),
                            )
                        })
                    }
                }
            }
            _ => {
                self.error(Reply::new(
                    504,
                    (5, 5, 4),
                    "unrecognized authentication type; use PLAIN or LOGIN",
                ));
                return Ok(());
            }
        };
        let (user, password) = match creds {
            Ok(c) => c,
            Err(AuthError::Cancelled) => {
                self.error(Reply::new(501, (5, 0, 0), "authentication cancelled"));
                return Ok(());
            }
            Err(_) => {
                self.error(Reply::new(
                    501,
                    (5, 5, 2),
                    "cannot decode authentication response",
                ));
                return Ok(());
            }
        };
        match self.config.check_smtp_password(&user, &password) {
            Some(source) => {
                info!(target: "petrel::smtp", "{} authenticated as {user}", self.peer);
                let source = source.unwrap_or_else(|| "{auth}".to_string());
                self.policy = self.config.source_with_named(&self.base_policy, &source);
                self.auth_user = Some(user);
                self.reply(Reply::new(235, (2, 7, 0), "authentication successful"));
            }
            None => {
                if let Some(rate) = self.policy.smtp_max_auth_failure_rate {
                    self.ctx
                        .auth_failures
                        .record(ip, rate.window, Instant::now());
                }
                warn!(target: "petrel::smtp", "{} authentication failed for {user:?}", self.peer);
                self.error(Reply::new(
                    535,
                    (5, 7, 8),
                    "authentication credentials invalid",
                ));
            }
        }
        Ok(())
    }

    fn mail(&mut self, address: String, params: MailParams) {
        if self.helo.is_none() {
            self.error(Reply::new(503, (5, 5, 1), "send HELO or EHLO first"));
            return;
        }
        if self.txn.is_some() {
            self.error(Reply::new(503, (5, 5, 1), "nested MAIL command"));
            return;
        }
        if self.policy.require_auth && self.auth_user.is_none() {
            self.error(Reply::new(530, (5, 7, 0), "authentication required"));
            return;
        }
        if !self.esmtp && (params != MailParams::default()) {
            self.error(Reply::new(555, (5, 5, 4), "parameters need EHLO"));
            return;
        }
        if params.smtputf8 && !self.policy.allow_smtputf8 {
            self.error(Reply::new(555, (5, 5, 4), "SMTPUTF8 not available"));
            return;
        }
        if !params.smtputf8 && !address.is_ascii() {
            self.error(Reply::new(
                553,
                (5, 6, 7),
                "non-ASCII address needs SMTPUTF8",
            ));
            return;
        }
        if let (Some(size), Some(max)) = (params.size, self.policy.max_message_size) {
            if size > max {
                self.error(Reply::new(
                    552,
                    (5, 3, 4),
                    format!("message size exceeds fixed maximum of {max} bytes"),
                ));
                return;
            }
        }
        let mail_from = match &self.policy.rewrite_list {
            Some(list) => self
                .config
                .rewrite_mail_from(list, &address)
                .unwrap_or(address),
            None => address,
        };
        let shown = mail_from.clone();
        let envelope_bytes = ENVELOPE_MEMORY + mail_from.len() as u64;
        let mut memory = self.ctx.memory.charge();
        if !memory.hold(envelope_bytes) {
            self.error(insufficient_memory());
            return;
        }
        self.txn = Some(Transaction {
            mail_from,
            params,
            rcpts: Vec::new(),
            memory,
            envelope_bytes,
        });
        self.reply(Reply::new(250, (2, 1, 0), format!("sender <{shown}> ok")));
    }

    /// `line` is the command as received, quoted back when relaying is denied.
    fn rcpt(&mut self, address: String, params: RcptParams, line: &[u8]) {
        let Some(txn) = &self.txn else {
            self.error(Reply::new(503, (5, 5, 1), "need MAIL before RCPT"));
            return;
        };
        if !txn.params.smtputf8 && !address.is_ascii() {
            self.error(Reply::new(
                553,
                (5, 6, 7),
                "non-ASCII address needs SMTPUTF8",
            ));
            return;
        }
        if (!self.esmtp) && params != RcptParams::default() {
            self.error(Reply::new(555, (5, 5, 4), "parameters need EHLO"));
            return;
        }
        // Unlimited by default, as in PowerMTA; memory bounds it (below).
        if let Some(max) = self.policy.max_rcpt_per_message {
            if txn.rcpts.len() >= max as usize {
                self.error(Reply::new(452, (4, 5, 3), "too many recipients"));
                return;
            }
        }
        let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        let local_postmaster = domain.is_empty();
        // Bounce and feedback-loop addresses take mail from anyone: they are the MX for it.
        if !(self.policy.always_allow_relaying
            || local_postmaster
            || self.config.is_relay_domain(domain)
            || self.config.returned_mail_processor(&address).is_some())
        {
            self.error(relaying_denied(line));
            return;
        }
        let shown = address.clone();
        let Some(txn) = &mut self.txn else { return };
        // RFC 5321 §4.5.3.1.10: a server out of room for recipients answers 452, and the
        // client sends the rest in another transaction.
        let cost = line.len() as u64 + RCPT_MEMORY;
        if !txn.memory.hold(txn.envelope_bytes + cost) {
            self.error(Reply::new(
                452,
                (4, 5, 3),
                "too many recipients (no memory left for more in this transaction)",
            ));
            return;
        }
        txn.envelope_bytes += cost;
        txn.rcpts.push((address, params));
        self.reply(Reply::new(
            250,
            (2, 1, 5),
            format!("recipient <{shown}> ok"),
        ));
    }

    async fn data<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        reader: &mut BufReader<S>,
    ) -> std::io::Result<()> {
        match &self.txn {
            None => {
                self.error(Reply::new(503, (5, 5, 1), "need MAIL before DATA"));
                return Ok(());
            }
            Some(t) if t.rcpts.is_empty() => {
                self.error(Reply::new(554, (5, 5, 1), "no valid recipients"));
                return Ok(());
            }
            _ => {}
        }
        self.reply(Reply::plain(
            354,
            "start mail input; end with <CRLF>.<CRLF>",
        ));
        self.flush(reader.get_mut()).await?;
        // The transaction ends with this DATA, whatever happens.
        let Some(mut txn) = self.txn.take() else {
            return Ok(());
        };
        let started = Instant::now();
        let max_size = self.policy.max_message_size;
        let mut data = DataReader::new(max_size);
        // Room for the SIZE the client announced, up to 1 MiB (more only as bytes arrive,
        // so announcing a size cannot hold memory for free), else a little.
        let hint = txn
            .params
            .size
            .map_or(8 << 10, |n| n.min(1 << 20) as usize + 1024);
        let mut body = Vec::new();
        let mut out_of_memory = !Self::grow_to(&mut txn, &mut body, hint);
        if out_of_memory {
            data.discard();
        }
        loop {
            let chunk = match tokio::time::timeout(self.policy.smtp_data_timeout, reader.fill_buf())
                .await
            {
                Ok(r) => r?,
                Err(_) => {
                    let host = self.host().to_string();
                    self.reply(Reply::new(
                        421,
                        (4, 4, 2),
                        format!("{host} timeout exceeded during DATA"),
                    ));
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "DATA timeout",
                    ));
                }
            };
            if chunk.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection lost during DATA",
                ));
            }
            if self.policy.log_data {
                info!(target: "petrel::smtp", "{} >>> rd {}\n{}", self.peer, chunk.len(), hex_dump(chunk));
            }
            let n = chunk.len();
            // Stored text can be up to twice the input (bare LFs become CRLF): make room
            // first, so memory is charged before it is taken.
            if !out_of_memory && !data.overflowed() {
                let room = body.len() + 2 * n + 16;
                if room > body.capacity() {
                    // Grow by half, but not far past the size limit: a message close to it
                    // need not reserve half as much again.
                    let step = body.capacity() + body.capacity() / 2;
                    let cap = max_size.map_or(usize::MAX, |m| m as usize + (64 << 10));
                    let want = room.max(step.min(cap));
                    // Near the budget, grow by just what this chunk needs before giving up.
                    if !Self::grow_to(&mut txn, &mut body, want)
                        && (want == room || !Self::grow_to(&mut txn, &mut body, room))
                        && !Self::grow_waiting(&mut txn, &mut body, room).await
                    {
                        out_of_memory = true;
                        data.discard();
                        body = Vec::new();
                        txn.memory.release();
                    }
                }
            }
            let end = data.feed(chunk, &mut body);
            if data.overflowed() && body.capacity() > 0 {
                // Over max-message-size: only the end is looked for now.
                body = Vec::new();
                txn.memory.release();
            }
            match end {
                Some(end) => {
                    reader.consume(end.consumed);
                    break;
                }
                None => reader.consume(n),
            }
        }
        if data.overflowed() {
            let max = max_size.unwrap_or(0);
            self.error(Reply::new(
                552,
                (5, 3, 4),
                format!("message size exceeds fixed maximum of {max} bytes"),
            ));
            return Ok(());
        }
        if out_of_memory {
            let total = self.ctx.memory.total();
            warn!(target: "petrel::smtp", "{} message refused: max-smtp-in-memory ({total} bytes) in use", self.peer);
            self.error(if data.size() > total {
                Reply::new(
                    552,
                    (5, 3, 4),
                    format!("message size exceeds the {total} bytes this server can hold"),
                )
            } else {
                insufficient_memory()
            });
            return Ok(());
        }
        let Some(txn) = self.process_returned_mail(txn, &body) else {
            return Ok(());
        };
        let prepared = prepare_message(
            &self.config,
            &self.policy,
            &body,
            &crate::reception::Origin {
                helo: self.helo.as_deref().unwrap_or(""),
                peer: self.peer,
                host: self.host(),
                tls: self.tls.is_some(),
                esmtp: self.esmtp,
                auth_user: self.auth_user.as_deref(),
                single_rcpt: (txn.rcpts.len() == 1).then(|| txn.rcpts[0].0.as_str()),
                mail_from: &txn.mail_from,
                rcpts: &txn.rcpts,
            },
        );
        let Prepared {
            head,
            rest,
            job_id,
            vmta,
            pool_member,
            facts,
        } = match prepared {
            Ok(p) => p,
            Err(Rejection(reply)) => {
                self.error(reply);
                return Ok(());
            }
        };
        let rcpt_count = txn.rcpts.len() as u64;
        // Held until the spool has the message on disk.
        let _memory = txn.memory;
        let envelope = Envelope {
            mail_from: txn.mail_from,
            recipients: txn
                .rcpts
                .into_iter()
                .map(|(address, p)| Recipient {
                    address,
                    notify: p.notify,
                    orcpt: p.orcpt,
                    done: false,
                })
                .collect(),
            vmta,
            pool_member,
            job_id,
            env_id: txn.params.envid,
            ret: txn.params.ret.map(|r| match r {
                petrel_smtp::Ret::Full => petrel_spool::Ret::Full,
                petrel_smtp::Ret::Hdrs => petrel_spool::Ret::Hdrs,
            }),
            smtputf8: txn.params.smtputf8,
            body_8bit: data.saw_8bit()
                || matches!(txn.params.body, Some(petrel_smtp::BodyType::EightBitMime)),
            auth_user: self.auth_user.clone(),
            client_ip: Some(self.peer.ip()),
            client_helo: self.helo.clone(),
            received_at_unix_ms: unix_ms(),
            facts,
        };
        match self
            .ctx
            .spool
            .commit_edited(envelope, head, body, rest)
            .await
        {
            Ok(id) => {
                self.ctx.committed(id);
                self.ctx.stats.messages.fetch_add(1, Ordering::Relaxed);
                self.ctx
                    .stats
                    .recipients
                    .fetch_add(rcpt_count, Ordering::Relaxed);
                if self.policy.log_connections {
                    info!(
                        target: "petrel::smtp",
                        "{} accepted message {id} ({} bytes, {rcpt_count} rcpt) in {:?}",
                        self.peer,
                        data.size(),
                        started.elapsed()
                    );
                }
                if data.bare_line_ends() > 0 || data.folds() > 0 {
                    // RFC 5321 forbids both; the stored (and relayed) text has CRLF only and
                    // no line over 998 octets, which may break a signature the client made.
                    info!(
                        target: "petrel::smtp",
                        "{} message {id}: {} bare CR/LF stored as CRLF, {} line(s) over 998 octets folded",
                        self.peer,
                        data.bare_line_ends(),
                        data.folds()
                    );
                }
                self.reply(Reply::new(250, (2, 6, 0), format!("message {id} accepted")));
            }
            Err(e) => {
                warn!(target: "petrel::smtp", "{} spool refused message: {e}", self.peer);
                let text = match e {
                    SpoolError::Full { .. } => {
                        "insufficient system storage, try again later".to_string()
                    }
                    _ => "insufficient system storage (spool write failed), try again later"
                        .to_string(),
                };
                self.error(Reply::new(452, (4, 3, 1), text));
            }
        }
        Ok(())
    }
}

impl Session {
    /// Makes `body` able to hold `capacity` bytes without reallocating, charging the
    /// transaction's memory first. False when `max-smtp-in-memory` has no room for it.
    /// (Growing a buffer of a megabyte or more moves it with `mremap`, not a copy: see
    /// the binary's `allocator.rs`; smaller ones cost little either way.)
    /// [`Self::grow_to`], waiting for memory that other sessions give back when no other
    /// transaction waits already (`crate::memory`): under a crowd of large messages one
    /// gets in.
    async fn grow_waiting(txn: &mut Transaction, body: &mut Vec<u8>, capacity: usize) -> bool {
        let bytes = txn.envelope_bytes + capacity as u64;
        if !txn.memory.hold_or_wait(bytes, MEMORY_WAIT).await {
            return false;
        }
        body.reserve_exact(capacity - body.len());
        true
    }

    fn grow_to(txn: &mut Transaction, body: &mut Vec<u8>, capacity: usize) -> bool {
        if capacity <= body.capacity() {
            return true;
        }
        if !txn.memory.hold(txn.envelope_bytes + capacity as u64) {
            return false;
        }
        body.reserve_exact(capacity - body.len());
        true
    }

    /// Hands the message to the bounce / feedback-loop processor for each recipient in a
    /// processor's scope. Those recipients are replaced by the addresses the processor names
    /// (`postmaster`, `forward-*-to`) or dropped; the rest stay. `None` when nothing is left
    /// to queue: the 250 has been sent.
    fn process_returned_mail(&mut self, mut txn: Transaction, body: &[u8]) -> Option<Transaction> {
        let Some(hook) = self.ctx.returned_mail_hook().cloned() else {
            return Some(txn);
        };
        if !txn
            .rcpts
            .iter()
            .any(|(a, _)| self.config.returned_mail_processor(a).is_some())
        {
            return Some(txn);
        }
        let helo = self.helo.clone().unwrap_or_default();
        let mut kept = Vec::with_capacity(txn.rcpts.len());
        let mut redirected: Vec<String> = Vec::new();
        for (address, params) in std::mem::take(&mut txn.rcpts) {
            if self.config.returned_mail_processor(&address).is_none() {
                kept.push((address, params));
                continue;
            }
            redirected.extend(hook(&ReturnedMail {
                rcpt: &address,
                mail_from: &txn.mail_from,
                client_ip: self.peer.ip(),
                helo: &helo,
                message: body,
            }));
        }
        for a in redirected {
            if !kept.iter().any(|(k, _)| k.eq_ignore_ascii_case(&a)) {
                kept.push((a, RcptParams::default()));
            }
        }
        if kept.is_empty() {
            self.ctx.stats.messages.fetch_add(1, Ordering::Relaxed);
            self.reply(Reply::new(250, (2, 6, 0), "message processed"));
            return None;
        }
        txn.rcpts = kept;
        Some(txn)
    }
}

/// `max-smtp-in-memory` is spent: a temporary failure, so the client tries again later.
fn insufficient_memory() -> Reply {
    Reply::new(
        452,
        (4, 3, 1),
        "insufficient system resources (memory for mail being received), try again later",
    )
}

/// The article's (PowerMTA's) refusal of a recipient petrel may not relay for:
/// `550 5.7.1 relaying denied for recipient in "RCPT TO:<a@b>"`, quoting the whole command as
/// the client sent it so a client log shows which line was refused. Control characters become
/// `?`, and a command longer than fits a 512-byte reply line is cut with `...`.
fn relaying_denied(line: &[u8]) -> Reply {
    const MAX_SHOWN: usize = 400;
    let text = String::from_utf8_lossy(line);
    let mut shown: String = text
        .trim_end_matches(['\r', '\n'])
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if shown.len() > MAX_SHOWN {
        shown.truncate(shown.floor_char_boundary(MAX_SHOWN));
        shown.push_str("...");
    }
    Reply::new(
        550,
        (5, 7, 1),
        format!("relaying denied for recipient in \"{shown}\""),
    )
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// PowerMTA's `log-data` layout: 16 bytes a row, hex then ASCII with `.` for the rest.
fn hex_dump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for row in bytes.chunks(16) {
        for b in row {
            out.push_str(&format!("{b:02x}"));
        }
        for _ in row.len()..16 {
            out.push_str("  ");
        }
        out.push(' ');
        out.extend(row.iter().map(|&b| {
            if (32..127).contains(&b) {
                b as char
            } else {
                '.'
            }
        }));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relaying_denied_quotes_the_command_as_received() {
        let r = relaying_denied(b"rcpt to: <test@strange.example> NOTIFY=NEVER\r\n");
        assert_eq!(
            r.to_wire(),
            "550 5.7.1 relaying denied for recipient in \"rcpt to: <test@strange.example> NOTIFY=NEVER\"\r\n"
        );
    }

    #[test]
    fn relaying_denied_keeps_the_reply_line_short() {
        let long = format!("RCPT TO:<{}@strange.example>\r\n", "a".repeat(900));
        let wire = relaying_denied(long.as_bytes()).to_wire();
        assert!(wire.len() <= 512, "{}", wire.len());
        assert!(wire.ends_with("...\"\r\n"), "{wire}");
        let wire = relaying_denied(b"RCPT TO:<a\x01b@c.example>").to_wire();
        assert!(wire.contains("\"RCPT TO:<a?b@c.example>\""), "{wire}");
    }
}
