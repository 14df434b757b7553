//! A pipe target: `<acct-file |command>`, one long-running `sh -c command`.

use std::io::{self, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::error::AcctError;

/// How long [`PipeOut::close`] waits for the command to exit after end-of-input.
const EXIT_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Running {
    child: Child,
    stdin: ChildStdin,
}

#[derive(Debug)]
pub(crate) struct PipeOut {
    pub command: String,
    running: Option<Running>,
    failed_at: Option<SystemTime>,
}

impl PipeOut {
    pub fn new(command: &str) -> PipeOut {
        PipeOut {
            command: command.to_string(),
            running: None,
            failed_at: None,
        }
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Whether the command should be (re)started at `now`: not running, and either never
    /// failed or failed at least `retry` ago.
    pub fn start_due(&self, now: SystemTime, retry: Duration) -> bool {
        self.running.is_none()
            && self
                .failed_at
                .is_none_or(|t| now.duration_since(t).is_ok_and(|d| d >= retry))
    }

    /// Spawns the command and sends it the header line.
    pub fn start(&mut self, header: &[u8], now: SystemTime) -> Result<(), AcctError> {
        let spawned = Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                self.failed_at = Some(now);
                return Err(AcctError::pipe("starting", &self.command, e));
            }
        };
        let Some(stdin) = child.stdin.take() else {
            let _ = child.kill();
            let _ = child.wait();
            self.failed_at = Some(now);
            return Err(AcctError::pipe(
                "starting",
                &self.command,
                io::Error::other("no stdin"),
            ));
        };
        self.running = Some(Running { child, stdin });
        self.failed_at = None;
        if let Err(e) = self.stdin().map(|s| s.write_all(header)).transpose() {
            self.fail(now);
            return Err(AcctError::pipe("writing to", &self.command, e));
        }
        Ok(())
    }

    /// The running command's standard input.
    pub fn stdin(&mut self) -> Option<&mut ChildStdin> {
        self.running.as_mut().map(|r| &mut r.stdin)
    }

    /// Stops a command that failed; it is restarted after the retry interval.
    pub fn fail(&mut self, now: SystemTime) {
        if let Some(mut r) = self.running.take() {
            drop(r.stdin);
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
        self.failed_at = Some(now);
    }

    /// Notices a command that exited by itself (PowerMTA: `Error executing "CMD"`).
    pub fn reap(&mut self, now: SystemTime) -> Result<(), AcctError> {
        let Some(r) = &mut self.running else {
            return Ok(());
        };
        match r.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                self.fail(now);
                Err(AcctError::pipe(
                    "executing",
                    &self.command,
                    io::Error::other(format!("exited: {status}")),
                ))
            }
            Err(e) => {
                self.fail(now);
                Err(AcctError::pipe("executing", &self.command, e))
            }
        }
    }

    /// Ends the input and waits (up to 10 s) for the command to finish, then kills it.
    pub fn close(&mut self) -> Result<(), AcctError> {
        let Some(mut r) = self.running.take() else {
            return Ok(());
        };
        drop(r.stdin);
        let deadline = Instant::now() + EXIT_WAIT;
        loop {
            match r.child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                Ok(None) => {
                    let _ = r.child.kill();
                    let _ = r.child.wait();
                    return Err(AcctError::pipe(
                        "executing",
                        &self.command,
                        io::Error::new(io::ErrorKind::TimedOut, "did not exit after end of input"),
                    ));
                }
                Err(e) => return Err(AcctError::pipe("executing", &self.command, e)),
            }
        }
    }
}
