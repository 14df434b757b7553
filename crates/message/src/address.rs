//! The mailbox inside an address header (`From`, `Sender`), without a full RFC 5322 parser:
//! Signals only needs the address and its domain, and must never fail on odd headers.

/// The first mailbox address in an address-header value: the part inside `<…>` when there
/// is one, else the first word containing `@`. Quoted display names and comments are
/// skipped, so `"a@b" <c@d>` gives `c@d`. `None` when no address is found.
pub fn header_address(value: &str) -> Option<String> {
    let mut in_quote = false;
    let mut depth = 0u32;
    let mut escaped = false;
    let mut angle_start = None;
    let mut plain = String::new();
    let mut words: Vec<String> = Vec::new();
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quote || depth > 0 => escaped = true,
            '"' if depth == 0 && angle_start.is_none() => in_quote = !in_quote,
            '(' if !in_quote && angle_start.is_none() => depth += 1,
            ')' if !in_quote && depth > 0 => depth -= 1,
            '<' if !in_quote && depth == 0 => angle_start = Some(i + 1),
            '>' if !in_quote && depth == 0 => {
                if let Some(s) = angle_start.take() {
                    let inner = value[s..i].trim();
                    // A source route (`<@a,@b:x@y>`) keeps only the mailbox.
                    let inner = inner.rsplit(':').next().unwrap_or(inner).trim();
                    if inner.contains('@') {
                        return Some(inner.to_string());
                    }
                }
            }
            _ if in_quote || depth > 0 || angle_start.is_some() => {}
            c if c.is_whitespace() || c == ',' || c == ';' => {
                if !plain.is_empty() {
                    words.push(std::mem::take(&mut plain));
                }
            }
            c => plain.push(c),
        }
    }
    if !plain.is_empty() {
        words.push(plain);
    }
    words
        .into_iter()
        .find(|w| w.contains('@') && !w.starts_with('@') && !w.ends_with('@'))
}

/// The lower-cased domain of an address (after the last `@`), or `None` without one.
pub fn address_domain(address: &str) -> Option<String> {
    let (_, d) = address.rsplit_once('@')?;
    let d = d.trim().trim_end_matches('.');
    (!d.is_empty()).then(|| d.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_mailbox_in_common_shapes() {
        let cases = [
            ("alice@example.com", Some("alice@example.com")),
            ("Alice <alice@example.com>", Some("alice@example.com")),
            ("\"Smith, Bob <x@y>\" <bob@ex.org>", Some("bob@ex.org")),
            ("bob@ex.org (Bob <not@this>)", Some("bob@ex.org")),
            ("(comment) <c@d.e>", Some("c@d.e")),
            (
                "<@relay.example:user@final.example>",
                Some("user@final.example"),
            ),
            ("a@b.c, d@e.f", Some("a@b.c")),
            ("undisclosed-recipients:;", None),
            ("", None),
            ("Name <>", None),
        ];
        for (input, want) in cases {
            assert_eq!(header_address(input).as_deref(), want, "{input}");
        }
    }

    #[test]
    fn domain_is_lowercased_and_needs_an_at() {
        assert_eq!(
            address_domain("x@Mail.Example.COM").as_deref(),
            Some("mail.example.com")
        );
        assert_eq!(address_domain("x@"), None);
        assert_eq!(address_domain("postmaster"), None);
    }
}
