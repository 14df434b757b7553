//! One outbound SMTP session over TCP, optionally upgraded with STARTTLS.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use petrel_smtp::{parse_reply, Reply};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::dot::DotStuffer;
use crate::envelope::{is_positive, prepare, Plan, Prepared, Transaction, TransactionOutcome};
use crate::extensions::Extensions;
use crate::options::{ClientOptions, Timeouts, TlsMode};
use crate::tls::{client_config, server_name, TlsInfo};
use petrel_reply_class::{one_line, ClientError, Phase};

/// Message bytes encoded per write. Large enough that a typical message goes out in a few
/// writes, small enough that the encode buffer stays small.
const DATA_CHUNK: usize = 64 * 1024;

/// The socket, before or after STARTTLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only while the plain stream is being handed to the TLS handshake.
    Detached,
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Detached => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Detached => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Detached => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Detached => Poll::Ready(Ok(())),
        }
    }
}

/// One SMTP session with a remote MX, reusable for many transactions. Built by
/// [`Connection::open`], which has already done greeting, EHLO and STARTTLS; the delivery
/// engine then calls [`Connection::send`] per message and [`Connection::quit`] at the end.
pub struct Connection {
    stream: Stream,
    /// Bytes read but not yet parsed; `rpos` is where parsing resumes.
    rbuf: Vec<u8>,
    rpos: usize,
    greeting: Reply,
    extensions: Extensions,
    tls: Option<TlsInfo>,
    tls_fallback: Option<String>,
    peer: SocketAddr,
    local: SocketAddr,
    timeouts: Timeouts,
    /// MAIL was accepted and the transaction has not ended (no dot, no RSET yet).
    in_transaction: bool,
    /// A 421 was received, or I/O failed: the session must not be used again.
    broken: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.peer)
            .field("local", &self.local)
            .field("tls", &self.tls)
            .field("in_transaction", &self.in_transaction)
            .field("reusable", &!self.broken)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects to `addr` (from `opts.source_ip` when set), waits for the greeting, sends
    /// EHLO (HELO when EHLO gets a 5xx), and applies the STARTTLS mode: with TLS, EHLO is
    /// sent again and the extensions are those offered over TLS. `mx_name` is used for SNI.
    ///
    /// In [`TlsMode::Opportunistic`], a refused STARTTLS leaves the session in plaintext, and
    /// a failed handshake (or data pushed before it, after which the TCP connection cannot
    /// be trusted) is followed by one new connection without STARTTLS;
    /// [`Connection::tls_fallback`] says why.
    pub async fn open(
        addr: SocketAddr,
        mx_name: &str,
        opts: &ClientOptions,
    ) -> Result<Connection, ClientError> {
        match Self::open_with(addr, mx_name, opts, opts.starttls).await {
            Err(
                e @ (ClientError::Tls { .. }
                | ClientError::Protocol {
                    phase: Phase::StartTls,
                    ..
                }),
            ) if opts.starttls == TlsMode::Opportunistic => {
                let mut conn = Self::open_with(addr, mx_name, opts, TlsMode::Off).await?;
                conn.tls_fallback = Some(e.to_string());
                Ok(conn)
            }
            other => other,
        }
    }

    async fn open_with(
        addr: SocketAddr,
        mx_name: &str,
        opts: &ClientOptions,
        mode: TlsMode,
    ) -> Result<Connection, ClientError> {
        let t = opts.timeouts;
        let tcp = connect(addr, opts).await?;
        let local = tcp.local_addr().map_err(|source| ClientError::Io {
            phase: Phase::Connect,
            source,
        })?;
        let mut conn = Connection {
            stream: Stream::Plain(tcp),
            rbuf: Vec::with_capacity(4096),
            rpos: 0,
            greeting: Reply::plain(0, ""),
            extensions: Extensions::default(),
            tls: None,
            tls_fallback: None,
            peer: addr,
            local,
            timeouts: t,
            in_transaction: false,
            broken: false,
        };

        let greeting = conn.read_reply(Phase::Greeting, t.greeting).await?;
        if !is_positive(&greeting) {
            conn.abandon().await;
            return Err(ClientError::Rejected {
                phase: Phase::Greeting,
                reply: greeting,
            });
        }
        conn.greeting = greeting;
        conn.hello(&opts.ehlo_name).await?;

        if mode == TlsMode::Off {
            return Ok(conn);
        }
        if !conn.extensions.starttls {
            if mode == TlsMode::Required {
                conn.abandon().await;
                return Err(ClientError::TlsUnavailable);
            }
            return Ok(conn);
        }
        conn.write(Phase::StartTls, b"STARTTLS\r\n", t.command)
            .await?;
        let reply = conn.read_reply(Phase::StartTls, t.command).await?;
        if reply.code != 220 {
            if mode == TlsMode::Required || reply.code == 421 {
                conn.abandon().await;
                return Err(ClientError::Rejected {
                    phase: Phase::StartTls,
                    reply,
                });
            }
            conn.tls_fallback = Some(format!("STARTTLS refused: {}", one_line(&reply)));
            return Ok(conn);
        }
        if conn.rpos < conn.rbuf.len() {
            // Anything after the 220 was sent before TLS and must not be trusted as if it
            // came over TLS (the STARTTLS command injection of CVE-2011-0411, reversed).
            return Err(ClientError::Protocol {
                phase: Phase::StartTls,
                detail: "data received after the STARTTLS reply".into(),
            });
        }
        conn.start_tls(mx_name).await?;
        conn.hello(&opts.ehlo_name).await?;
        Ok(conn)
    }

    /// EHLO, or HELO when the server refuses EHLO with a 5xx (RFC 5321 §3.2).
    async fn hello(&mut self, name: &str) -> Result<(), ClientError> {
        let t = self.timeouts.command;
        self.write(Phase::Ehlo, format!("EHLO {name}\r\n").as_bytes(), t)
            .await?;
        let reply = self.read_reply(Phase::Ehlo, t).await?;
        if is_positive(&reply) {
            self.extensions = Extensions::from_ehlo(&reply);
            return Ok(());
        }
        if (500..600).contains(&reply.code) {
            self.write(Phase::Ehlo, format!("HELO {name}\r\n").as_bytes(), t)
                .await?;
            let reply = self.read_reply(Phase::Ehlo, t).await?;
            if is_positive(&reply) {
                self.extensions = Extensions::default();
                return Ok(());
            }
            self.abandon_ref().await;
            return Err(ClientError::Rejected {
                phase: Phase::Ehlo,
                reply,
            });
        }
        self.abandon_ref().await;
        Err(ClientError::Rejected {
            phase: Phase::Ehlo,
            reply,
        })
    }

    /// Runs the TLS handshake on the plain stream.
    async fn start_tls(&mut self, mx_name: &str) -> Result<(), ClientError> {
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Detached) else {
            return Err(ClientError::Protocol {
                phase: Phase::StartTls,
                detail: "STARTTLS on a session that is already encrypted".into(),
            });
        };
        self.broken = true;
        let connector = TlsConnector::from(client_config());
        let name = server_name(mx_name, self.peer.ip());
        let limit = self.timeouts.command;
        let tls = match timeout(limit, connector.connect(name, tcp)).await {
            Err(_) => {
                // A handshake that stalls is a failed handshake: opportunistic mode falls
                // back to plaintext for it as for any other.
                return Err(ClientError::Tls {
                    source: io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no progress within {limit:?}"),
                    ),
                });
            }
            Ok(Err(source)) => return Err(ClientError::Tls { source }),
            Ok(Ok(tls)) => tls,
        };
        self.tls = Some(TlsInfo::from_connection(tls.get_ref().1));
        self.stream = Stream::Tls(Box::new(tls));
        self.broken = false;
        Ok(())
    }

    /// The extensions of the last EHLO (after TLS when TLS is on); empty after HELO.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// Protocol and cipher when the session runs over TLS.
    pub fn tls_info(&self) -> Option<&TlsInfo> {
        self.tls.as_ref()
    }

    /// Why an opportunistic session ended up without TLS although the server offered
    /// STARTTLS (refused, or the handshake failed and a plaintext connection was opened).
    pub fn tls_fallback(&self) -> Option<&str> {
        self.tls_fallback.as_deref()
    }

    /// The remote address (`dlvDestinationIp`).
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The local address the connection left from (`dlvSourceIp`).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The server's 220 greeting, for logs and PIX detection.
    pub fn greeting(&self) -> &Reply {
        &self.greeting
    }

    /// False once the server sent a 421 or the connection failed; the pool must not hand it
    /// out again.
    pub fn is_reusable(&self) -> bool {
        !self.broken
    }

    /// Runs one transaction: MAIL, RCPT per recipient, DATA and the dot-stuffed `body`.
    ///
    /// With PIPELINING, MAIL, every RCPT and DATA go out in one write and the replies are
    /// read in order (RFC 2920); without it, each command waits for its reply. Parameters
    /// (SIZE, BODY, SMTPUTF8, DSN) are added only when advertised; see
    /// [`crate::TransactionNote`] for what happens when they are needed but missing. A 421
    /// ends the transaction: every unanswered slot gets the 421. If an earlier transaction
    /// was left open (MAIL accepted, no data sent), RSET is sent first.
    ///
    /// Refusals are in the outcome; `Err` means the connection failed and is not reusable.
    pub async fn send(
        &mut self,
        envelope: &Transaction<'_>,
        body: &[u8],
    ) -> Result<TransactionOutcome, ClientError> {
        if self.broken {
            return Err(ClientError::Closed { phase: Phase::Mail });
        }
        let plan = match prepare(envelope, &self.extensions) {
            Prepared::Refused(outcome) => return Ok(outcome),
            Prepared::Send(plan) => plan,
        };
        if self.in_transaction {
            self.reset().await?;
        }
        if self.extensions.pipelining {
            self.send_pipelined(plan, body).await
        } else {
            self.send_lockstep(plan, body).await
        }
    }

    async fn send_pipelined(
        &mut self,
        plan: Plan,
        body: &[u8],
    ) -> Result<TransactionOutcome, ClientError> {
        let t = self.timeouts.command;
        let mut batch = plan.mail.clone();
        for (_, rcpt) in &plan.rcpts {
            batch.extend_from_slice(rcpt);
        }
        batch.extend_from_slice(b"DATA\r\n");
        self.write(Phase::Mail, &batch, t).await?;

        let mail = self.read_reply(Phase::Mail, t).await?;
        if mail.code == 421 {
            self.broken = true;
            return Ok(plan.outcome(mail, Vec::new(), None));
        }
        self.in_transaction = is_positive(&mail);
        let mut sent = Vec::with_capacity(plan.rcpts.len());
        for _ in &plan.rcpts {
            let reply = self.read_reply(Phase::Rcpt, t).await?;
            if reply.code == 421 {
                return Ok(self.cut_short(plan, mail, sent, reply));
            }
            sent.push(reply);
        }
        let accepted = is_positive(&mail) && sent.iter().any(is_positive);
        let data = self.read_reply(Phase::Data, t).await?;
        if data.code == 421 {
            return Ok(self.cut_short(plan, mail, sent, data));
        }
        if data.code != 354 {
            let data = accepted.then_some(data);
            return Ok(plan.outcome(mail, sent, data));
        }
        if !accepted {
            // RFC 2920 §3.1: the server took DATA although nothing was accepted; end the
            // empty message and ignore what it says about it.
            self.write(Phase::Dot, b".\r\n", t).await?;
            self.read_reply(Phase::Dot, self.timeouts.data_termination)
                .await?;
            self.in_transaction = false;
            return Ok(plan.outcome(mail, sent, None));
        }
        let done = self.transfer(body).await?;
        Ok(plan.outcome(mail, sent, Some(done)))
    }

    async fn send_lockstep(
        &mut self,
        plan: Plan,
        body: &[u8],
    ) -> Result<TransactionOutcome, ClientError> {
        let t = self.timeouts.command;
        self.write(Phase::Mail, &plan.mail, t).await?;
        let mail = self.read_reply(Phase::Mail, t).await?;
        if !is_positive(&mail) {
            self.broken |= mail.code == 421;
            return Ok(plan.outcome(mail, Vec::new(), None));
        }
        self.in_transaction = true;
        let mut sent = Vec::with_capacity(plan.rcpts.len());
        for i in 0..plan.rcpts.len() {
            self.write(Phase::Rcpt, &plan.rcpts[i].1, t).await?;
            let reply = self.read_reply(Phase::Rcpt, t).await?;
            if reply.code == 421 {
                return Ok(self.cut_short(plan, mail, sent, reply));
            }
            sent.push(reply);
        }
        if !sent.iter().any(is_positive) {
            return Ok(plan.outcome(mail, sent, None));
        }
        self.write(Phase::Data, b"DATA\r\n", t).await?;
        let data = self.read_reply(Phase::Data, t).await?;
        if data.code == 421 {
            return Ok(self.cut_short(plan, mail, sent, data));
        }
        if data.code != 354 {
            return Ok(plan.outcome(mail, sent, Some(data)));
        }
        let done = self.transfer(body).await?;
        Ok(plan.outcome(mail, sent, Some(done)))
    }

    /// The outcome after a 421 in the middle of a transaction: the 421 answers every
    /// recipient still waiting and, when any was accepted, the data.
    fn cut_short(
        &mut self,
        plan: Plan,
        mail: Reply,
        mut sent: Vec<Reply>,
        reply: Reply,
    ) -> TransactionOutcome {
        self.broken = true;
        self.in_transaction = false;
        let accepted = sent.iter().any(is_positive);
        sent.resize(plan.rcpts.len(), reply.clone());
        let data = accepted.then_some(reply);
        plan.outcome(mail, sent, data)
    }

    /// Streams the dot-stuffed body and the terminator, then waits for the final reply.
    async fn transfer(&mut self, body: &[u8]) -> Result<Reply, ClientError> {
        let limit = self.timeouts.data_send;
        let mut stuffer = DotStuffer::new();
        let mut out = Vec::with_capacity(DATA_CHUNK + DATA_CHUNK / 16 + 8);
        let mut chunks = body.chunks(DATA_CHUNK).peekable();
        loop {
            out.clear();
            if let Some(chunk) = chunks.next() {
                stuffer.push(chunk, &mut out);
            }
            let last = chunks.peek().is_none();
            if last {
                stuffer.finish(&mut out);
            }
            self.write(Phase::Data, &out, limit).await?;
            if last {
                break;
            }
        }
        let reply = self
            .read_reply(Phase::Dot, self.timeouts.data_termination)
            .await?;
        self.in_transaction = false;
        self.broken |= reply.code == 421;
        Ok(reply)
    }

    /// Sends RSET, ending whatever transaction is open so the next MAIL is accepted. A
    /// non-2xx reply is [`ClientError::Rejected`] in the RSET phase.
    pub async fn reset(&mut self) -> Result<(), ClientError> {
        let t = self.timeouts.command;
        self.write(Phase::Rset, b"RSET\r\n", t).await?;
        let reply = self.read_reply(Phase::Rset, t).await?;
        if !is_positive(&reply) {
            self.broken |= reply.code == 421;
            return Err(ClientError::Rejected {
                phase: Phase::Rset,
                reply,
            });
        }
        self.in_transaction = false;
        Ok(())
    }

    /// Sends QUIT, waits briefly for the reply and closes the connection (with a TLS
    /// close_notify when encrypted). Errors are ignored: the mail is already accounted for.
    pub async fn quit(mut self) {
        self.abandon_ref().await;
    }

    /// Best-effort QUIT and close, used on the error paths of `open` too.
    async fn abandon(mut self) {
        self.abandon_ref().await;
    }

    async fn abandon_ref(&mut self) {
        let limit = self.timeouts.command.min(Duration::from_secs(10));
        if !self.broken && self.write(Phase::Quit, b"QUIT\r\n", limit).await.is_ok() {
            let _ = self.read_reply(Phase::Quit, limit).await;
        }
        let _ = timeout(limit, self.stream.shutdown()).await;
        self.broken = true;
    }

    /// Writes and flushes `bytes` within `limit`.
    async fn write(
        &mut self,
        phase: Phase,
        bytes: &[u8],
        limit: Duration,
    ) -> Result<(), ClientError> {
        let stream = &mut self.stream;
        let result = timeout(limit, async {
            stream.write_all(bytes).await?;
            stream.flush().await
        })
        .await;
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => {
                self.broken = true;
                Err(io_error(phase, source))
            }
            Err(_) => {
                self.broken = true;
                Err(ClientError::Timeout {
                    phase,
                    after: limit,
                })
            }
        }
    }

    /// Reads one complete reply within `limit`.
    async fn read_reply(&mut self, phase: Phase, limit: Duration) -> Result<Reply, ClientError> {
        let result = timeout(limit, self.read_reply_inner(phase)).await;
        let result = result.unwrap_or(Err(ClientError::Timeout {
            phase,
            after: limit,
        }));
        if result.is_err() {
            self.broken = true;
        }
        result
    }

    async fn read_reply_inner(&mut self, phase: Phase) -> Result<Reply, ClientError> {
        loop {
            match parse_reply(&self.rbuf[self.rpos..]) {
                Ok(Some((reply, used))) => {
                    self.rpos += used;
                    if self.rpos == self.rbuf.len() {
                        self.rbuf.clear();
                        self.rpos = 0;
                    }
                    return Ok(reply);
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(ClientError::Protocol {
                        phase,
                        detail: e.to_string(),
                    })
                }
            }
            if self.rpos > 0 {
                self.rbuf.drain(..self.rpos);
                self.rpos = 0;
            }
            let mut chunk = [0u8; 4096];
            let n = self
                .stream
                .read(&mut chunk)
                .await
                .map_err(|e| io_error(phase, e))?;
            if n == 0 {
                return Err(ClientError::Closed { phase });
            }
            self.rbuf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// A reset or aborted connection reads as "closed by the remote host"; other errors as I/O.
fn io_error(phase: Phase, source: io::Error) -> ClientError {
    match source.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => ClientError::Closed { phase },
        _ => ClientError::Io { phase, source },
    }
}

/// Opens the TCP connection, bound to the source address when one is set.
async fn connect(addr: SocketAddr, opts: &ClientOptions) -> Result<TcpStream, ClientError> {
    let phase = Phase::Connect;
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|source| ClientError::Io { phase, source })?;
    if let Some(ip) = opts.source_ip {
        socket
            .bind(SocketAddr::new(ip, 0))
            .map_err(|source| ClientError::Io { phase, source })?;
    }
    let limit = opts.timeouts.connect;
    let tcp = match timeout(limit, socket.connect(addr)).await {
        Err(_) => {
            return Err(ClientError::Timeout {
                phase,
                after: limit,
            })
        }
        Ok(Err(source)) => return Err(ClientError::Io { phase, source }),
        Ok(Ok(tcp)) => tcp,
    };
    // Commands are batched by hand; Nagle would only delay the last segment of each batch.
    tcp.set_nodelay(true)
        .map_err(|source| ClientError::Io { phase, source })?;
    Ok(tcp)
}
