//! Small scanners over free text: RFC 3463 enhanced status codes, SMTP reply codes and
//! e-mail addresses. Hand-written so the crate needs no regex engine.

/// The first enhanced status code `c.s.d` in `text` whose class is in `classes`, not part of
/// a longer dotted number (an IP address or a version).
pub(crate) fn enhanced_code(text: &str, classes: &[u8]) -> Option<(u8, u16, u16)> {
    enhanced_codes(text, classes).next()
}

/// Every enhanced status code in `text` with a class in `classes`, in order.
pub(crate) fn enhanced_codes<'a>(
    text: &'a str,
    classes: &'a [u8],
) -> impl Iterator<Item = (u8, u16, u16)> + 'a {
    let b = text.as_bytes();
    (0..b.len()).filter_map(move |i| {
        let class = b[i];
        if !class.is_ascii_digit() || !classes.contains(&(class - b'0')) {
            return None;
        }
        if i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.' || b[i - 1] == b'-') {
            return None;
        }
        if b.get(i + 1) != Some(&b'.') {
            return None;
        }
        let (subject, j) = number(b, i + 2, 3)?;
        if b.get(j) != Some(&b'.') {
            return None;
        }
        let (detail, k) = number(b, j + 1, 3)?;
        if k < b.len() && (b[k].is_ascii_alphanumeric() || (b[k] == b'.' && next_is_digit(b, k))) {
            return None;
        }
        Some((class - b'0', subject, detail))
    })
}

fn next_is_digit(b: &[u8], i: usize) -> bool {
    b.get(i + 1).is_some_and(u8::is_ascii_digit)
}

/// Up to `max` digits at `at`: the value and the index after them.
fn number(b: &[u8], at: usize, max: usize) -> Option<(u16, usize)> {
    let mut end = at;
    while end < b.len() && b[end].is_ascii_digit() && end - at < max {
        end += 1;
    }
    if end == at || (end < b.len() && b[end].is_ascii_digit()) {
        return None;
    }
    std::str::from_utf8(&b[at..end])
        .ok()?
        .parse()
        .ok()
        .map(|n| (n, end))
}

/// Formats an enhanced status code.
pub(crate) fn code_string(c: (u8, u16, u16)) -> String {
    format!("{}.{}.{}", c.0, c.1, c.2)
}

/// The SMTP reply code of a diagnostic: a 4xx/5xx number at the start (after an optional
/// `smtp;` type), else the first one that stands as a word followed by a space, `-` or end,
/// e.g. in "host x said: 550 Unknown user".
pub(crate) fn reply_code(text: &str) -> Option<u16> {
    let t = crate::fields::untyped(text.trim());
    if let Some(c) = leading_code(t) {
        return Some(c);
    }
    let b = t.as_bytes();
    (0..b.len().saturating_sub(2)).find_map(|i| {
        if i > 0
            && !matches!(
                b[i - 1],
                b' ' | b':' | b'(' | b'[' | b'"' | b'\'' | b'=' | b'\n'
            )
        {
            return None;
        }
        leading_code(&t[i..])
    })
}

/// A reply code at the very start of `t`.
fn leading_code(t: &str) -> Option<u16> {
    let b = t.as_bytes();
    if b.len() < 3
        || !matches!(b[0], b'4' | b'5')
        || !matches!(b[1], b'0'..=b'5')
        || !b[2].is_ascii_digit()
    {
        return None;
    }
    if b.len() > 3 && !matches!(b[3], b' ' | b'-' | b'\t' | b'\r' | b'\n' | b',' | b';') {
        return None;
    }
    // "550-5.1.1" and "550 5.1.1" are codes; "450 days" is unlikely in a reply text.
    t[..3].parse().ok()
}

/// Whether `c` may appear in the local part or domain of an address we extract.
fn addr_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._%+-=/!#$&'*?^`{|}~".contains(c) || !c.is_ascii()
}

/// Every plausible address (`local@domain.tld`) in `text`, in order, lower-cased domain.
pub(crate) fn addresses(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (at, _) in text.match_indices('@') {
        let start = text[..at]
            .char_indices()
            .rev()
            .take_while(|&(_, c)| addr_char(c))
            .last()
            .map(|(i, _)| i);
        let Some(start) = start else { continue };
        let end = text[at + 1..]
            .char_indices()
            .take_while(|&(_, c)| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            .last()
            .map(|(i, c)| at + 1 + i + c.len_utf8());
        let Some(end) = end else { continue };
        let local = text[start..at].trim_start_matches(['.', '=', '/', '\'', '`']);
        let domain = text[at + 1..end].trim_end_matches(['.', '-']);
        if local.is_empty() || !domain.contains('.') || domain.starts_with('.') {
            continue;
        }
        if !domain
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()))
        {
            continue;
        }
        out.push(format!("{local}@{}", domain.to_ascii_lowercase()));
    }
    out
}

/// The address inside a header-ish value: `Name <a@b>`, `<a@b>`, `rfc822; a@b`. The
/// value is read by petrel's one header address parser ([`petrel_message::header_address`]);
/// what it finds must still look like a real address (a domain with a TLD), domain
/// lower-cased.
pub(crate) fn address_in(value: &str) -> Option<String> {
    let found = petrel_message::header_address(crate::fields::untyped(value))?;
    addresses(&found).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(
            enhanced_code("550 5.1.1 <a@b.c> unknown", &[4, 5]),
            Some((5, 1, 1))
        );
        assert_eq!(enhanced_code("from 192.0.2.4 said", &[4, 5]), None);
        assert_eq!(enhanced_code("Postfix 2.11.3", &[4, 5]), None);
        assert_eq!(enhanced_code("(#5.5.0)", &[4, 5]), Some((5, 5, 0)));
        assert_eq!(
            enhanced_code("5.7.509 Access denied", &[5]),
            Some((5, 7, 509))
        );
        assert_eq!(reply_code("smtp; 550-5.1.1 no"), Some(550));
        assert_eq!(
            reply_code("remote host 192.0.2.32 said: 550 Unknown"),
            Some(550)
        );
        assert_eq!(reply_code("id 5501 and 450x"), None);
    }

    #[test]
    fn addrs() {
        assert_eq!(
            addresses("<kijitora@Example.JP>: and x@y, me@host.example.org."),
            vec!["kijitora@example.jp", "me@host.example.org"]
        );
        assert_eq!(
            address_in("rfc822; \"K\" <k@a.example>").as_deref(),
            Some("k@a.example")
        );
    }
}
