//! What the sink does with one recipient, and how that is chosen: by a tag in the local part
//! (`ana+hard@…`) or, for untagged recipients, drawn from the `--mix` with the `--seed`.
//!
//! Pure: no I/O, no clock, no randomness of its own. A draw is a hash of the seed and the
//! recipient (and, for engagement, of the message's campaign and subject), so a run is
//! reproducible whatever order the mail arrives in, and a retried recipient meets the same
//! behaviour again.

use std::fmt;
use std::str::FromStr;

/// Every behaviour the sink knows, in the order they are reported. The names are the tags
/// (`ana+tls-required@…`) and the `--mix` keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Behaviour {
    /// `250`: accepted and discarded.
    Delivered,
    /// `550 5.1.1` user unknown, at RCPT.
    Hard,
    /// `550 5.7.1` with a blocklist text, at RCPT.
    Block,
    /// `452 4.2.2` mailbox full at RCPT for the first N attempts, then accepted.
    Soft,
    /// `421 4.7.0` try again later at RCPT (and the connection closes) for the first N
    /// attempts, then accepted.
    Defer,
    /// Accepted, but the reply to the message's final dot comes after a delay.
    Slow,
    /// The connection closes in the middle of DATA for the first N attempts, then accepted.
    Drop,
    /// `530 5.7.0` at RCPT unless the session used STARTTLS.
    TlsRequired,
    /// Accepted, then an RFC 3464 DSN goes to the message's return path after a delay.
    Oob,
    /// Accepted, then an RFC 5965 ARF complaint goes to `--feedback-to` after a delay.
    Fbl,
    /// Accepted, then the HTML part's images (tracking pixels) are fetched after a delay.
    Open,
    /// Accepted, opened, then the first link that is not the unsubscribe link is followed.
    Click,
    /// Accepted, then the unsubscribe link is followed after a delay.
    Unsub,
}

impl Behaviour {
    /// All behaviours, in report order.
    pub const ALL: [Behaviour; 13] = [
        Behaviour::Delivered,
        Behaviour::Hard,
        Behaviour::Block,
        Behaviour::Soft,
        Behaviour::Defer,
        Behaviour::Slow,
        Behaviour::Drop,
        Behaviour::TlsRequired,
        Behaviour::Oob,
        Behaviour::Fbl,
        Behaviour::Open,
        Behaviour::Click,
        Behaviour::Unsub,
    ];

    /// The tag and `--mix` key.
    pub fn name(self) -> &'static str {
        match self {
            Behaviour::Delivered => "delivered",
            Behaviour::Hard => "hard",
            Behaviour::Block => "block",
            Behaviour::Soft => "soft",
            Behaviour::Defer => "defer",
            Behaviour::Slow => "slow",
            Behaviour::Drop => "drop",
            Behaviour::TlsRequired => "tls-required",
            Behaviour::Oob => "oob",
            Behaviour::Fbl => "fbl",
            Behaviour::Open => "open",
            Behaviour::Click => "click",
            Behaviour::Unsub => "unsub",
        }
    }

    /// Engagement behaviours happen to accepted mail after it was accepted; the others decide
    /// how the SMTP transaction goes, and a recipient has exactly one of those.
    pub fn is_engagement(self) -> bool {
        matches!(
            self,
            Behaviour::Fbl | Behaviour::Open | Behaviour::Click | Behaviour::Unsub
        )
    }

    /// Whether a count may follow the name (`soft3`: three refusals, `slow10`: ten seconds).
    fn takes_count(self) -> bool {
        matches!(
            self,
            Behaviour::Soft | Behaviour::Defer | Behaviour::Drop | Behaviour::Slow
        )
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a tag or a `--mix` could not be read. The messages name the offending text, since
/// they are printed as they are for a bad command line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MixError {
    /// A name that is no behaviour.
    #[error("unknown behaviour `{0}` (known: delivered, hard, block, soft[N], defer[N], slow[N], drop[N], tls-required, oob, fbl, open, click, unsub)")]
    UnknownTag(String),
    /// A count after a behaviour that takes none, or a count that is no number.
    #[error("`{0}`: only soft, defer, drop and slow take a count (soft3, slow10), and it must be a whole number from 1 to 1000")]
    BadCount(String),
    /// An item without `=`.
    #[error("`{0}` is not NAME=PERCENT (e.g. hard=4)")]
    NotPair(String),
    /// A value that is not a number.
    #[error("`{name}={value}`: `{value}` is not a percentage (a number from 0 to 100)")]
    NotNumber {
        /// The key.
        name: String,
        /// What was written.
        value: String,
    },
    /// One value over 100 (or negative).
    #[error("`{name}={value}`: a percentage must be between 0 and 100")]
    OutOfRange {
        /// The key.
        name: String,
        /// What was written.
        value: String,
    },
    /// The same behaviour twice.
    #[error("`{0}` is given twice")]
    Duplicate(String),
    /// The SMTP behaviours together over 100 %.
    #[error("delivered, hard, block, soft, defer, slow, drop, tls-required and oob add up to {0}%, over 100%")]
    OverHundred(f64),
    /// Nothing at all.
    #[error("empty mix (e.g. delivered=90,hard=10)")]
    Empty,
}

/// A behaviour name with its optional count, as written in a tag or a `--mix` key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tag {
    /// The behaviour.
    pub behaviour: Behaviour,
    /// `soft3` → 3: refusals for soft/defer/drop, seconds for slow.
    pub count: Option<u32>,
}

impl FromStr for Tag {
    type Err = MixError;

    fn from_str(s: &str) -> Result<Tag, MixError> {
        let lower = s.trim().to_ascii_lowercase();
        let digits = lower.len() - lower.bytes().rev().take_while(u8::is_ascii_digit).count();
        let (name, count) = lower.split_at(digits);
        let behaviour = Behaviour::ALL
            .into_iter()
            .find(|b| b.name() == name)
            .ok_or_else(|| MixError::UnknownTag(s.trim().to_string()))?;
        if count.is_empty() {
            return Ok(Tag {
                behaviour,
                count: None,
            });
        }
        let n: u32 = count
            .parse()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| MixError::BadCount(s.trim().to_string()))?;
        if !behaviour.takes_count() {
            return Err(MixError::BadCount(s.trim().to_string()));
        }
        Ok(Tag {
            behaviour,
            count: Some(n),
        })
    }
}

/// How the SMTP transaction goes for one recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Smtp {
    /// Accepted at once.
    Deliver,
    /// Refused for good at RCPT.
    Hard,
    /// Refused for good at RCPT, blocklist style.
    Block,
    /// `452` for the first `tries` attempts (`None`: the configured default).
    Soft(Option<u32>),
    /// `421` and the connection closes, for the first `tries` attempts.
    Defer(Option<u32>),
    /// Accepted after `secs` seconds (`None`: the configured delay).
    Slow(Option<u32>),
    /// The connection closes mid-DATA for the first `tries` attempts.
    Drop(Option<u32>),
    /// Refused unless the session is encrypted.
    TlsRequired,
    /// Accepted, then bounced out of band.
    Oob,
}

impl Smtp {
    /// The behaviour this outcome is counted as.
    pub fn behaviour(self) -> Behaviour {
        match self {
            Smtp::Deliver => Behaviour::Delivered,
            Smtp::Hard => Behaviour::Hard,
            Smtp::Block => Behaviour::Block,
            Smtp::Soft(_) => Behaviour::Soft,
            Smtp::Defer(_) => Behaviour::Defer,
            Smtp::Slow(_) => Behaviour::Slow,
            Smtp::Drop(_) => Behaviour::Drop,
            Smtp::TlsRequired => Behaviour::TlsRequired,
            Smtp::Oob => Behaviour::Oob,
        }
    }

    fn from_tag(t: Tag) -> Option<Smtp> {
        Some(match t.behaviour {
            Behaviour::Delivered => Smtp::Deliver,
            Behaviour::Hard => Smtp::Hard,
            Behaviour::Block => Smtp::Block,
            Behaviour::Soft => Smtp::Soft(t.count),
            Behaviour::Defer => Smtp::Defer(t.count),
            Behaviour::Slow => Smtp::Slow(t.count),
            Behaviour::Drop => Smtp::Drop(t.count),
            Behaviour::TlsRequired => Smtp::TlsRequired,
            Behaviour::Oob => Smtp::Oob,
            Behaviour::Fbl | Behaviour::Open | Behaviour::Click | Behaviour::Unsub => return None,
        })
    }
}

/// What happens to an accepted message afterwards, for one recipient (`bool`), or how
/// often it happens in a mix (`f64`, percent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Engagement<T = bool> {
    /// An ARF complaint.
    pub fbl: T,
    /// The images are fetched.
    pub open: T,
    /// A link is followed (after opening).
    pub click: T,
    /// The unsubscribe link is followed.
    pub unsub: T,
}

impl<T> Engagement<T> {
    /// The field of an engagement behaviour; `None` for the others.
    fn slot(&mut self, b: Behaviour) -> Option<&mut T> {
        match b {
            Behaviour::Fbl => Some(&mut self.fbl),
            Behaviour::Open => Some(&mut self.open),
            Behaviour::Click => Some(&mut self.click),
            Behaviour::Unsub => Some(&mut self.unsub),
            _ => None,
        }
    }
}

impl Engagement {
    /// True when nothing happens after acceptance.
    pub fn is_none(&self) -> bool {
        !(self.fbl || self.open || self.click || self.unsub)
    }
}

/// The behaviour a recipient's tags ask for: `None` when the local part has no known tag,
/// so the recipient is drawn from the mix. The first SMTP tag wins; engagement tags add up;
/// other `+` parts are ordinary subaddresses and are ignored.
pub fn tagged(address: &str) -> Option<(Smtp, Engagement)> {
    let local = address.rsplit_once('@').map_or(address, |(l, _)| l);
    if !local.contains('+') {
        return None;
    }
    let mut smtp = None;
    let mut eng = Engagement::default();
    let mut any = false;
    for part in local.split('+').skip(1) {
        let Ok(tag) = part.parse::<Tag>() else {
            continue;
        };
        any = true;
        match eng.slot(tag.behaviour) {
            Some(flag) => *flag = true,
            None => smtp = smtp.or(Smtp::from_tag(tag)),
        }
    }
    any.then(|| (smtp.unwrap_or(Smtp::Deliver), eng))
}

/// The `--mix`: percentages of untagged recipients per SMTP behaviour (the rest are
/// delivered), and of accepted messages per engagement behaviour.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mix {
    /// SMTP behaviours with their percentages, in the order written.
    smtp: Vec<(Smtp, f64)>,
    /// Percent of accepted messages that get a complaint, are opened (clicked ones are
    /// opened too), clicked, unsubscribed.
    pub rates: Engagement<f64>,
}

impl FromStr for Mix {
    type Err = MixError;

    /// `delivered=80,hard=4,soft3=6,block=2,oob=3,fbl=0.5,open=35,click=8,unsub=0.5`.
    fn from_str(s: &str) -> Result<Mix, MixError> {
        let mut mix = Mix::default();
        let mut seen: Vec<Behaviour> = Vec::new();
        let mut total = 0.0;
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, value) = item
                .split_once('=')
                .ok_or_else(|| MixError::NotPair(item.to_string()))?;
            let (name, value) = (name.trim(), value.trim());
            let tag: Tag = name.parse()?;
            let pct: f64 = value
                .strip_suffix('%')
                .unwrap_or(value)
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| MixError::NotNumber {
                    name: name.to_string(),
                    value: value.to_string(),
                })?;
            if !(0.0..=100.0).contains(&pct) {
                return Err(MixError::OutOfRange {
                    name: name.to_string(),
                    value: value.to_string(),
                });
            }
            if seen.contains(&tag.behaviour) {
                return Err(MixError::Duplicate(tag.behaviour.name().to_string()));
            }
            seen.push(tag.behaviour);
            if let Some(rate) = mix.rates.slot(tag.behaviour) {
                *rate = pct;
            } else if let Some(smtp) = Smtp::from_tag(tag) {
                total += pct;
                mix.smtp.push((smtp, pct));
            }
        }
        if seen.is_empty() {
            return Err(MixError::Empty);
        }
        // A little slack for decimal fractions that do not add up exactly in binary.
        if total > 100.0 + 1e-9 {
            return Err(MixError::OverHundred((total * 1000.0).round() / 1000.0));
        }
        Ok(mix)
    }
}

impl Mix {
    /// True when the mix can draw `b` at all.
    pub fn can_draw(&self, b: Behaviour) -> bool {
        let r = &self.rates;
        match b {
            Behaviour::Fbl => r.fbl > 0.0,
            Behaviour::Open => r.open > 0.0 || r.click > 0.0,
            Behaviour::Click => r.click > 0.0,
            Behaviour::Unsub => r.unsub > 0.0,
            Behaviour::Delivered => true,
            _ => self
                .smtp
                .iter()
                .any(|(s, p)| s.behaviour() == b && *p > 0.0),
        }
    }

    /// The SMTP behaviour of an untagged recipient: a function of the seed and the address
    /// (case-insensitive) only, so every attempt and every message to it behaves the same.
    pub fn smtp_for(&self, seed: u64, address: &str) -> Smtp {
        if self.smtp.is_empty() {
            return Smtp::Deliver;
        }
        let u = uniform(seed, hash_lower(FNV_OFFSET, address), 0);
        let mut acc = 0.0;
        for (smtp, pct) in &self.smtp {
            acc += pct;
            if u < acc {
                return *smtp;
            }
        }
        Smtp::Deliver
    }

    /// What happens after acceptance to an untagged recipient's copy of a message, drawn
    /// from the seed, the address and `message_key` (the campaign and subject: the same
    /// message gets the same draw on every run). Clickers are drawn among openers, so
    /// `open=35,click=8` opens 35 % and clicks 8 %.
    pub fn engagement_for(&self, seed: u64, address: &str, message_key: &str) -> Engagement {
        let key = hash_lower(hash_lower(FNV_OFFSET, address), message_key);
        let r = &self.rates;
        let reading = uniform(seed, key, 1);
        Engagement {
            fbl: uniform(seed, key, 2) < r.fbl,
            open: reading < r.open.max(r.click),
            click: reading < r.click,
            unsub: uniform(seed, key, 3) < r.unsub,
        }
    }

    /// True when the mix draws any engagement at all.
    pub fn engages(&self) -> bool {
        let r = &self.rates;
        r.fbl > 0.0 || r.open > 0.0 || r.click > 0.0 || r.unsub > 0.0
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a over the ASCII-lower-cased bytes of `s`, continuing from `h`: stable across Rust
/// versions and platforms (unlike `DefaultHasher`), so a seed means the same on every build.
fn hash_lower(mut h: u64, s: &str) -> u64 {
    for b in s.bytes() {
        h ^= u64::from(b.to_ascii_lowercase());
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // A separator, so ("ab", "c") and ("a", "bc") differ.
    h ^= 0xff;
    h.wrapping_mul(0x0100_0000_01b3)
}

/// splitmix64's finaliser: spreads every input bit over the output.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A number in `[0, 100)` from the seed, a key and a stream (one stream per kind of draw).
fn uniform(seed: u64, key: u64, stream: u64) -> f64 {
    let z = mix64(
        seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ mix64(key)
            ^ stream.wrapping_mul(0xd1b5_4a32_d192_ed03),
    );
    (z >> 11) as f64 / (1u64 << 53) as f64 * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_parse_with_counts() {
        assert_eq!(
            "soft3".parse::<Tag>().unwrap(),
            Tag {
                behaviour: Behaviour::Soft,
                count: Some(3)
            }
        );
        assert_eq!(
            "TLS-Required".parse::<Tag>().unwrap().behaviour,
            Behaviour::TlsRequired
        );
        assert!(matches!("hard2".parse::<Tag>(), Err(MixError::BadCount(_))));
        assert!(matches!("soft0".parse::<Tag>(), Err(MixError::BadCount(_))));
        assert!(matches!(
            "bogus".parse::<Tag>(),
            Err(MixError::UnknownTag(_))
        ));
    }

    #[test]
    fn local_part_tags() {
        assert_eq!(tagged("ana@example.com"), None);
        assert_eq!(tagged("ana+newsletter@example.com"), None);
        assert_eq!(
            tagged("ana+hard@example.com"),
            Some((Smtp::Hard, Engagement::default()))
        );
        let (smtp, eng) = tagged("Ana+Soft2+click+news@example.com").unwrap();
        assert_eq!(smtp, Smtp::Soft(Some(2)));
        assert!(eng.click && !eng.open && !eng.fbl);
        assert_eq!(tagged("x+open+unsub@example.com").unwrap().0, Smtp::Deliver);
        // The first SMTP tag wins.
        assert_eq!(tagged("x+block+hard@e.com").unwrap().0, Smtp::Block);
    }

    #[test]
    fn mix_errors_are_specific() {
        let e = |s: &str| s.parse::<Mix>().unwrap_err().to_string();
        assert!(
            e("hard=abc").contains("`abc` is not a percentage"),
            "{}",
            e("hard=abc")
        );
        assert!(e("hard=120").contains("between 0 and 100"));
        assert!(e("hard=-1").contains("between 0 and 100"));
        assert!(e("delivered=90,hard=20").contains("add up to 110%"));
        assert!(e("bounce=3").contains("unknown behaviour `bounce`"));
        assert!(e("hard").contains("NAME=PERCENT"));
        assert!(e("hard=1,hard=2").contains("twice"));
        assert!(e("").contains("empty"));
        assert!(e("hard=nan").contains("not a percentage"));
        // Engagement rates are separate: 100 % open with 80 % delivered is fine.
        assert!("delivered=80,hard=20,open=100,click=100"
            .parse::<Mix>()
            .is_ok());
        assert!("delivered=33.3,hard=33.3,block=33.4".parse::<Mix>().is_ok());
    }

    #[test]
    fn draws_are_reproducible_and_follow_the_mix() {
        let mix: Mix = "delivered=80,hard=4,soft=6,block=2,oob=3,fbl=0.5,open=35,click=8,unsub=0.5"
            .parse()
            .unwrap();
        let mut counts = std::collections::HashMap::new();
        let mut opens = 0;
        let mut clicks = 0;
        let mut clicks_without_open = 0;
        let n = 100_000;
        for i in 0..n {
            let a = format!("user{i}@example.com");
            let s = mix.smtp_for(42, &a);
            assert_eq!(s, mix.smtp_for(42, &a.to_uppercase()));
            *counts.entry(s.behaviour()).or_insert(0) += 1;
            let e = mix.engagement_for(42, &a, "spring|Hello");
            opens += usize::from(e.open);
            clicks += usize::from(e.click);
            clicks_without_open += usize::from(e.click && !e.open);
        }
        let pct = |b| f64::from(*counts.get(&b).unwrap_or(&0)) * 100.0 / f64::from(n);
        assert!((pct(Behaviour::Hard) - 4.0).abs() < 0.3);
        assert!((pct(Behaviour::Soft) - 6.0).abs() < 0.3);
        assert!((pct(Behaviour::Oob) - 3.0).abs() < 0.3);
        // The 5 % nobody was drawn for are delivered.
        assert!((pct(Behaviour::Delivered) - 85.0).abs() < 0.5);
        assert!((opens as f64 * 100.0 / f64::from(n) - 35.0).abs() < 0.6);
        assert!((clicks as f64 * 100.0 / f64::from(n) - 8.0).abs() < 0.4);
        assert_eq!(clicks_without_open, 0);
        // Another seed gives other draws.
        let differ = (0..1000)
            .filter(|i| {
                let a = format!("user{i}@example.com");
                mix.smtp_for(1, &a) != mix.smtp_for(2, &a)
            })
            .count();
        assert!(differ > 50, "{differ}");
    }

    proptest::proptest! {
        /// Whatever the command line or the local part says, parsing answers and never
        /// panics; a mix that parses never adds up to more than 100 %.
        #[test]
        fn parsing_never_panics(text in "[a-z0-9=,.%+@ -]{0,40}") {
            if let Ok(m) = text.parse::<Mix>() {
                let total: f64 = m.smtp.iter().map(|(_, p)| p).sum();
                proptest::prop_assert!(total <= 100.0 + 1e-9);
            }
            let _ = tagged(&text);
        }
    }

    #[test]
    fn without_a_mix_everybody_is_delivered() {
        let mix = Mix::default();
        assert_eq!(mix.smtp_for(1, "a@b.c"), Smtp::Deliver);
        assert!(mix.engagement_for(1, "a@b.c", "x").is_none());
    }
}
