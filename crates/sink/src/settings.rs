//! The sink's settings: the command line (`SinkArgs`) over an optional `--config FILE` of
//! `name value` lines, checked once at start. Any mistake is a [`UsageError`], which the
//! binary reports with exit code 2, naming the option or the file and line.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::behaviour::{Behaviour, Mix};
use crate::provider::Style;

/// `petrel sink`'s command line.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SinkArgs {
    /// Where to listen for SMTP [default: 127.0.0.1:2527].
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// What untagged recipients get, in percent, e.g.
    /// `delivered=80,hard=4,soft=6,block=2,oob=3,fbl=0.5,open=35,click=8,unsub=0.5`
    /// (engagement rates are of accepted mail). Without it, untagged recipients are accepted.
    #[arg(long, value_name = "SPEC")]
    pub mix: Option<Mix>,
    /// Seed of the draws: the same seed and the same recipients give the same behaviours.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Serve the counts here: JSON at `/`, Prometheus text at `/metrics`.
    #[arg(long, value_name = "ADDR:PORT")]
    pub stats: Option<SocketAddr>,
    /// The SMTP server that takes the DSNs and ARF reports the sink sends back (petrel's
    /// listener), instead of looking up MX records.
    #[arg(long = "return-to", value_name = "HOST:PORT")]
    pub return_to: Option<String>,
    /// The address ARF complaints are sent to (petrel's feedback-loop processor).
    #[arg(long = "feedback-to", value_name = "ADDRESS")]
    pub feedback_to: Option<String>,
    /// Shorter or longer waits, e.g. `oob=1s,fbl=1s,open=500ms,click=1s,unsub=1s,slow=2s`
    /// (repeatable; overrides the configuration file).
    #[arg(long, value_name = "NAME=TIME,...")]
    pub delay: Vec<String>,
    /// A configuration file (`name value` lines; see docs/sink.md).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// A mistake in the arguments or the configuration file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// How long the sink waits before each delayed action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delays {
    /// Acceptance → out-of-band DSN.
    pub oob: Duration,
    /// Acceptance → ARF complaint.
    pub fbl: Duration,
    /// Acceptance → images fetched.
    pub open: Duration,
    /// Acceptance → link followed (the open comes first, at `open`).
    pub click: Duration,
    /// Acceptance → unsubscribe link followed.
    pub unsub: Duration,
    /// The wait before answering a `slow` recipient's message.
    pub slow: Duration,
}

impl Default for Delays {
    fn default() -> Self {
        Delays {
            oob: Duration::from_secs(5),
            fbl: Duration::from_secs(10),
            open: Duration::from_secs(3),
            click: Duration::from_secs(5),
            unsub: Duration::from_secs(8),
            slow: Duration::from_secs(5),
        }
    }
}

impl Delays {
    fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let d = petrel_config::parse_duration(value).map_err(|e| e.to_string())?;
        let slot = match name {
            "oob" => &mut self.oob,
            "fbl" => &mut self.fbl,
            "open" => &mut self.open,
            "click" => &mut self.click,
            "unsub" => &mut self.unsub,
            "slow" => &mut self.slow,
            _ => {
                return Err(format!(
                    "`{name}` has no delay (oob, fbl, open, click, unsub, slow)"
                ))
            }
        };
        *slot = d;
        Ok(())
    }
}

/// How many attempts a recipient is refused before it is accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tries {
    /// `soft` (452) refusals.
    pub soft: u32,
    /// `defer` (421) refusals.
    pub defer: u32,
    /// `drop` (closed mid-DATA) attempts.
    pub drop: u32,
}

impl Default for Tries {
    fn default() -> Self {
        Tries {
            soft: 2,
            defer: 1,
            drop: 1,
        }
    }
}

/// The User-Agent of opens and clicks: a desktop Chrome, which petrel's tracking host does
/// not flag as machine activity.
pub const BROWSER_UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

/// Everything the sink runs with.
#[derive(Clone, Debug)]
pub struct Settings {
    /// SMTP listening address.
    pub listen: SocketAddr,
    /// Draws for untagged recipients.
    pub mix: Mix,
    /// Seed of the draws.
    pub seed: u64,
    /// The counts' HTTP address.
    pub stats: Option<SocketAddr>,
    /// Where DSNs and ARF reports are delivered.
    pub return_to: Option<SocketAddr>,
    /// Where ARF reports are addressed.
    pub feedback_to: Option<String>,
    /// The name in the greeting, EHLO and reports.
    pub host_name: String,
    /// Waits before delayed actions.
    pub delays: Delays,
    /// Refusals before acceptance.
    pub tries: Tries,
    /// PEM (chain and key) for STARTTLS; without it STARTTLS is not offered.
    pub tls_certificate: Option<PathBuf>,
    /// The operator's domain → style lines, checked before the built-in names.
    pub providers: Vec<(String, Style)>,
    /// User-Agent of HTTP fetches.
    pub user_agent: String,
    /// Largest message accepted (`552` above).
    pub max_message_size: u64,
    /// Worker threads of the runtime.
    pub threads: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 2527)),
            mix: Mix::default(),
            seed: 1,
            stats: None,
            return_to: None,
            feedback_to: None,
            host_name: "mx.sink.petrel.test".into(),
            delays: Delays::default(),
            tries: Tries::default(),
            tls_certificate: None,
            providers: Vec::new(),
            user_agent: BROWSER_UA.into(),
            max_message_size: 64 * 1024 * 1024,
            threads: 1,
        }
    }
}

impl Settings {
    /// The settings of a command line: defaults, then the configuration file, then the
    /// options given.
    pub fn from_args(args: &SinkArgs) -> Result<Settings, UsageError> {
        let mut s = Settings::default();
        if let Some(path) = &args.config {
            let text = std::fs::read_to_string(path)
                .map_err(|e| UsageError(format!("--config {}: {e}", path.display())))?;
            s.apply_file(&text, path)?;
        }
        if let Some(l) = args.listen {
            s.listen = l;
        }
        if let Some(m) = &args.mix {
            s.mix = m.clone();
        }
        if let Some(seed) = args.seed {
            s.seed = seed;
        }
        if let Some(a) = args.stats {
            s.stats = Some(a);
        }
        if let Some(r) = &args.return_to {
            s.return_to = Some(resolve(r).map_err(|e| UsageError(format!("--return-to {e}")))?);
        }
        if let Some(f) = &args.feedback_to {
            s.feedback_to = Some(address(f).map_err(|e| UsageError(format!("--feedback-to {e}")))?);
        }
        for spec in &args.delay {
            for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                let (name, value) = item.split_once('=').ok_or_else(|| {
                    UsageError(format!("--delay: `{item}` is not NAME=TIME (e.g. oob=1s)"))
                })?;
                s.delays
                    .set(name.trim(), value.trim())
                    .map_err(|e| UsageError(format!("--delay: {e}")))?;
            }
        }
        s.check()?;
        Ok(s)
    }

    /// A mix that draws complaints or bounces needs somewhere to send them.
    fn check(&self) -> Result<(), UsageError> {
        if self.return_to.is_none() {
            for b in [Behaviour::Oob, Behaviour::Fbl] {
                if self.mix.can_draw(b) {
                    return Err(UsageError(format!(
                        "--mix draws {b} but there is no --return-to HOST:PORT to send reports to"
                    )));
                }
            }
        }
        if self.feedback_to.is_none() && self.mix.can_draw(Behaviour::Fbl) {
            return Err(UsageError(
                "--mix draws fbl but there is no --feedback-to ADDRESS for the complaints".into(),
            ));
        }
        Ok(())
    }

    /// Applies a configuration file's lines (`name value`, `#` comments).
    fn apply_file(&mut self, text: &str, path: &Path) -> Result<(), UsageError> {
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split_once('#').map_or(raw, |(l, _)| l).trim();
            if line.is_empty() {
                continue;
            }
            let (name, value) = line
                .split_once(char::is_whitespace)
                .map_or((line, ""), |(n, v)| (n, v.trim()));
            let base = path.parent().unwrap_or(Path::new("."));
            self.apply_line(&name.to_ascii_lowercase(), value, base)
                .map_err(|e| UsageError(format!("{}:{}: {name}: {e}", path.display(), i + 1)))?;
        }
        Ok(())
    }

    /// One setting; relative file names are taken from `base`, the file's directory.
    fn apply_line(&mut self, name: &str, value: &str, base: &Path) -> Result<(), String> {
        if value.is_empty() {
            return Err("a value is missing".into());
        }
        let number = |v: &str| -> Result<u32, String> {
            v.parse::<u32>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| format!("`{v}` is not a whole number from 1 to 1000"))
        };
        match name {
            "listen" => self.listen = value.parse().map_err(|_| not_addr(value))?,
            "stats" => self.stats = Some(value.parse().map_err(|_| not_addr(value))?),
            "mix" => {
                self.mix = value
                    .parse()
                    .map_err(|e: crate::behaviour::MixError| e.to_string())?
            }
            "seed" => {
                self.seed = value
                    .parse()
                    .map_err(|_| format!("`{value}` is not a whole number"))?
            }
            "return-to" => self.return_to = Some(resolve(value)?),
            "feedback-to" => self.feedback_to = Some(address(value)?),
            "host-name" => self.host_name = value.to_string(),
            "soft-tries" => self.tries.soft = number(value)?,
            "defer-tries" => self.tries.defer = number(value)?,
            "drop-tries" => self.tries.drop = number(value)?,
            "tls-certificate" => {
                let p = base.join(value);
                if !p.is_file() {
                    return Err(format!("`{}` is not a file", p.display()));
                }
                self.tls_certificate = Some(p);
            }
            "provider" => {
                let (domain, style) = value
                    .split_once(char::is_whitespace)
                    .ok_or("use `provider DOMAIN gmail|microsoft|yahoo|generic`")?;
                let style = Style::from_name(style.trim()).ok_or_else(|| {
                    format!(
                        "`{}` is not gmail, microsoft, yahoo or generic",
                        style.trim()
                    )
                })?;
                self.providers.push((
                    domain.trim().trim_start_matches("*.").to_ascii_lowercase(),
                    style,
                ));
            }
            "user-agent" => self.user_agent = value.trim_matches('"').to_string(),
            "max-message-size" => {
                self.max_message_size =
                    petrel_config::parse_size(value).map_err(|e| e.to_string())?
            }
            "threads" => self.threads = number(value)? as usize,
            _ => match name.strip_suffix("-delay") {
                Some(kind) => self.delays.set(kind, value)?,
                None => return Err("unknown setting (see docs/sink.md)".into()),
            },
        }
        Ok(())
    }
}

fn not_addr(v: &str) -> String {
    format!("`{v}` is not an ADDRESS:PORT (e.g. 127.0.0.1:2527)")
}

/// `HOST:PORT` to one socket address, looked up once at start.
fn resolve(v: &str) -> Result<SocketAddr, String> {
    v.to_socket_addrs()
        .map_err(|e| format!("`{v}` is not a HOST:PORT ({e})"))?
        .next()
        .ok_or_else(|| format!("`{v}` has no address"))
}

fn address(v: &str) -> Result<String, String> {
    let a = v.trim().trim_start_matches('<').trim_end_matches('>');
    match a.rsplit_once('@') {
        Some((l, d)) if !l.is_empty() && !d.is_empty() && !a.contains(char::is_whitespace) => {
            Ok(a.to_string())
        }
        _ => Err(format!("`{v}` is not an e-mail address")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(f: impl FnOnce(&mut SinkArgs)) -> SinkArgs {
        let mut a = SinkArgs::default();
        f(&mut a);
        a
    }

    #[test]
    fn file_then_options() {
        let dir = std::env::temp_dir().join(format!("petrel-sink-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sink.conf");
        std::fs::write(
            &path,
            "# comment\nlisten 127.0.0.1:2600\nseed 7\noob-delay 2s\nsoft-tries 3\nprovider corp.example microsoft\nmix delivered=90,hard=10\n",
        )
        .unwrap();
        let s = Settings::from_args(&args(|a| {
            a.config = Some(path.clone());
            a.seed = Some(9);
            a.delay = vec!["open=100ms,slow=1s".into()];
        }))
        .unwrap();
        assert_eq!(s.listen.port(), 2600);
        assert_eq!(s.seed, 9);
        assert_eq!(s.delays.oob, Duration::from_secs(2));
        assert_eq!(s.delays.open, Duration::from_millis(100));
        assert_eq!(s.delays.slow, Duration::from_secs(1));
        assert_eq!(s.tries.soft, 3);
        assert_eq!(
            s.providers,
            vec![("corp.example".to_string(), Style::Microsoft)]
        );
        assert!(s.mix.can_draw(Behaviour::Hard));

        std::fs::write(&path, "listen 127.0.0.1:2600\nsoft-tries many\n").unwrap();
        let e = Settings::from_args(&args(|a| a.config = Some(path.clone()))).unwrap_err();
        assert!(
            e.0.ends_with("sink.conf:2: soft-tries: `many` is not a whole number from 1 to 1000"),
            "{e}"
        );
        std::fs::write(&path, "colour blue\n").unwrap();
        let e = Settings::from_args(&args(|a| a.config = Some(path.clone()))).unwrap_err();
        assert!(e.0.contains("sink.conf:1: colour: unknown setting"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reports_need_a_destination() {
        let e = Settings::from_args(&args(|a| a.mix = Some("oob=3".parse().unwrap()))).unwrap_err();
        assert!(e.0.contains("--return-to"), "{e}");
        let e = Settings::from_args(&args(|a| {
            a.mix = Some("fbl=1".parse().unwrap());
            a.return_to = Some("127.0.0.1:25".into());
        }))
        .unwrap_err();
        assert!(e.0.contains("--feedback-to"), "{e}");
        assert!(Settings::from_args(&args(|a| {
            a.mix = Some("fbl=1,oob=2".parse().unwrap());
            a.return_to = Some("127.0.0.1:25".into());
            a.feedback_to = Some("fbl@fbl.example".into());
        }))
        .is_ok());
        let e = Settings::from_args(&args(|a| a.delay = vec!["oob=soon".into()])).unwrap_err();
        assert!(
            e.0.starts_with("--delay: `soon` is not a time interval"),
            "{e}"
        );
        let e = Settings::from_args(&args(|a| a.feedback_to = Some("nobody".into()))).unwrap_err();
        assert!(e.0.contains("not an e-mail address"), "{e}");
    }
}
