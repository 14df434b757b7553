//! `reason` = `raw_reason` with personal data masked, the way SparkPost shows it.

/// Masks e-mail addresses as `...@...` and IPv4 addresses as `a.b.c.d`, so the `reason`
/// field can be shown and grouped without exposing recipients.
///
/// SparkPost's examples: `<gone@example.org>:` becomes `<...@...>:`, while sendmail's
/// `<ana@example.net>... User unknown` becomes `...@... User unknown`.
pub fn redact_reason(raw: &str) -> String {
    let chars: Vec<char> = raw.chars().collect();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < chars.len() {
        if let Some(end) = address_at(&chars, i) {
            let bracketed = out.ends_with('<') && chars.get(end) == Some(&'>');
            let ellipsis = bracketed && chars[end + 1..].starts_with(&['.', '.', '.']);
            if ellipsis {
                out.pop();
                out.push_str("...@...");
                i = end + 4;
            } else {
                out.push_str("...@...");
                i = end;
            }
            continue;
        }
        if let Some(end) = ipv4_at(&chars, i) {
            out.push_str("a.b.c.d");
            i = end;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

fn is_addr_char(c: char) -> bool {
    !(c.is_whitespace()
        || matches!(
            c,
            '<' | '>' | ';' | ':' | ',' | '"' | '(' | ')' | '[' | ']' | '@' | '\''
        ))
}

/// The end of an address starting exactly at `i` (a token boundary).
fn address_at(chars: &[char], i: usize) -> Option<usize> {
    if !is_addr_char(chars[i]) || (i > 0 && is_addr_char(chars[i - 1])) {
        return None;
    }
    let mut at = i;
    while at < chars.len() && is_addr_char(chars[at]) {
        at += 1;
    }
    if at == i || chars.get(at) != Some(&'@') {
        return None;
    }
    let mut end = at + 1;
    while end < chars.len() && is_addr_char(chars[end]) {
        end += 1;
    }
    // Trailing dots belong to the sentence (`user@host...`), not to the domain.
    while end > at + 1 && chars[end - 1] == '.' {
        end -= 1;
    }
    if end == at + 1 {
        return None;
    }
    Some(end)
}

/// A dotted-quad IPv4 address starting at `i` and not embedded in a longer number.
fn ipv4_at(chars: &[char], i: usize) -> Option<usize> {
    if i > 0 && (chars[i - 1].is_ascii_digit() || chars[i - 1] == '.') {
        return None;
    }
    let mut pos = i;
    for part in 0..4 {
        let start = pos;
        while pos < chars.len() && chars[pos].is_ascii_digit() && pos - start < 3 {
            pos += 1;
        }
        if pos == start {
            return None;
        }
        let value: u32 = chars[start..pos].iter().collect::<String>().parse().ok()?;
        if value > 255 {
            return None;
        }
        if part < 3 {
            if chars.get(pos) != Some(&'.') {
                return None;
            }
            pos += 1;
        }
    }
    if chars.get(pos).is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    if chars.get(pos) == Some(&'.') && chars.get(pos + 1).is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(pos)
}

#[cfg(test)]
mod tests {
    use super::redact_reason;

    #[test]
    fn spec_examples() {
        assert_eq!(
            redact_reason("smtp;550 5.1.1 <gone@example.org>: Recipient address rejected"),
            "smtp;550 5.1.1 <...@...>: Recipient address rejected"
        );
        assert_eq!(
            redact_reason("550 5.0.0 <ana@example.net>... User unknown"),
            "550 5.0.0 ...@... User unknown"
        );
        assert_eq!(
            redact_reason("smtp;452 4.2.2 Mailbox full"),
            "smtp;452 4.2.2 Mailbox full"
        );
    }

    #[test]
    fn bare_address_and_ip() {
        assert_eq!(
            redact_reason("550 user bob@x.example unknown from [192.0.2.1]"),
            "550 user ...@... unknown from [a.b.c.d]"
        );
        assert_eq!(
            redact_reason("421 4.7.0 try 1.2.3.4.5 later"),
            "421 4.7.0 try 1.2.3.4.5 later"
        );
        assert_eq!(redact_reason("no @ here, user@"), "no @ here, user@");
    }
}
