//! Header-style field blocks (RFC 5322 §2.2 syntax), as used by the returned original's
//! header, `message/delivery-status` (RFC 3464 §2.1) and `message/feedback-report`
//! (RFC 5965 §3): `Name: value` lines, folded continuation lines, blank lines between
//! groups.

/// One field: the name in lower case (for lookups) and the unfolded value, trimmed.
pub(crate) type Field = (String, String);

/// Splits `text` into groups of fields separated by blank lines. Folded lines are joined
/// with one space; lines that are neither a field nor a continuation are skipped, so a
/// slightly broken report still yields what it has.
pub(crate) fn groups(text: &str) -> Vec<Vec<Field>> {
    let mut out: Vec<Vec<Field>> = Vec::new();
    let mut current: Vec<Field> = Vec::new();
    let mut last_was_field = false;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            last_was_field = false;
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if last_was_field {
                if let Some((_, v)) = current.last_mut() {
                    if !v.is_empty() {
                        v.push(' ');
                    }
                    v.push_str(line.trim());
                }
            }
            continue;
        }
        match split_field(line) {
            Some((name, value)) => {
                current.push((name.to_ascii_lowercase(), value.trim().to_string()));
                last_was_field = true;
            }
            None => last_was_field = false,
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The fields of the first group only: a header section that ends at the first blank line.
pub(crate) fn header_section(text: &str) -> Vec<Field> {
    let end = text
        .find("\n\n")
        .or_else(|| text.find("\r\n\r\n"))
        .unwrap_or(text.len());
    groups(&text[..end]).into_iter().flatten().collect()
}

/// `Name: value` when `Name` is a plausible field name (printable, no spaces).
fn split_field(line: &str) -> Option<(&str, &str)> {
    let colon = line.find(':')?;
    let name = &line[..colon];
    if name.is_empty()
        || name.len() > 76
        || !name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b':' && b != b'<' && b != b'@')
    {
        return None;
    }
    Some((name, &line[colon + 1..]))
}

/// The first value of field `name` (lower case) in `fields`.
pub(crate) fn get<'a>(fields: &'a [Field], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Drops an RFC 3464 type prefix (`rfc822;`, `smtp;`, `dns;`, `X-Unix;`) from a value.
pub(crate) fn untyped(value: &str) -> &str {
    match value.find(';') {
        Some(i)
            if i < 20
                && value[..i]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            value[i + 1..].trim()
        }
        _ => value.trim(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_unfold_and_split() {
        let g = groups(
            "Reporting-MTA: dns; a.example\r\n\r\nFinal-Recipient: rfc822; x@y\r\nDiagnostic-Code: smtp; 550\r\n  unknown\r\n",
        );
        assert_eq!(g.len(), 2);
        assert_eq!(get(&g[1], "diagnostic-code"), Some("smtp; 550 unknown"));
        assert_eq!(untyped(get(&g[1], "final-recipient").unwrap()), "x@y");
        assert_eq!(untyped("no type here"), "no type here");
    }
}
