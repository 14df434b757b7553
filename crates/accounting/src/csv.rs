//! RFC 4180 encoding: the only quoting rules accounting files use.

/// Appends `value` to `out` as one CSV field, quoted only when it has to be.
///
/// A field is quoted when it contains a comma, a double quote, CR or LF; inner quotes are
/// doubled. Everything else (including spaces and non-ASCII text) is written as is, which is
/// what PowerMTA does (`two inches,"2"""`).
pub(crate) fn push_field(out: &mut String, value: &str) {
    if value.contains([',', '"', '\r', '\n']) {
        out.push('"');
        for c in value.chars() {
            if c == '"' {
                out.push('"');
            }
            out.push(c);
        }
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// Encodes `values` as one CSV record (no line end): used for lists held in one column,
/// such as several values of an `arf_*` field.
pub(crate) fn encode_list<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_field(&mut out, v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: &str) -> String {
        let mut s = String::new();
        push_field(&mut s, v);
        s
    }

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(f("plain text"), "plain text");
        assert_eq!(f(""), "");
        assert_eq!(f("a,b"), "\"a,b\"");
        assert_eq!(f("2\""), "\"2\"\"\"");
        assert_eq!(f("line\r\nbreak"), "\"line\r\nbreak\"");
        assert_eq!(f("bücher"), "bücher");
        assert_eq!(encode_list(["a", "b,c"]), "a,\"b,c\"");
    }
}
