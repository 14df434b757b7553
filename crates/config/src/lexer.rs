//! Line lexer: turns one physical line into a directive, an opening tag or a closing tag.
//!
//! PowerMTA's language is line-oriented, so lexing is per line: comments (`#` outside
//! quotes) are stripped, double-quoted strings are unescaped (`\"`, `\\`), and the rest of
//! the line is split into whitespace-separated words while also keeping the whole value
//! (for directives whose value contains spaces, such as `domain-key a, b, c`).

/// What one non-empty line holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lexed {
    /// `keyword value…`
    Directive(RawLine),
    /// `<tag [arg]>`
    Open { tag: String, arg: Option<String> },
    /// `</tag [arg]>`
    Close { tag: String, arg: Option<String> },
}

/// A directive line after lexing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawLine {
    /// The keyword, lower-cased.
    pub keyword: String,
    /// The whole line as written, comment and outer space removed (a
    /// `<bounce-category-patterns>` line starts with its regex, spacing included).
    pub raw_text: String,
    /// The value words (quotes removed, escapes applied). `""` yields one empty word.
    pub words: Vec<String>,
    /// The whole value after the keyword, quotes removed, inner spacing preserved.
    pub value: String,
}

/// Why a line could not be lexed, or a placeholder marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LexError {
    /// The value contains `##…##`: a template placeholder nobody filled in. Carries the
    /// placeholder and the directive keyword (lower-case) when the line had one.
    Placeholder(String, Option<String>),
    /// Any other syntax problem, already phrased for the operator.
    Syntax(String),
}

/// Lexes one line. `Ok(None)` for blank and comment-only lines.
pub(crate) fn lex_line(raw: &str) -> Result<Option<Lexed>, LexError> {
    let line = raw.trim_end_matches(['\r', '\n']);
    let (content, comment) = split_comment(line);
    let content = content.trim();
    if content.is_empty() {
        return Ok(None);
    }
    // A `##…##` template placeholder looks like a comment to PowerMTA; we catch it.
    if let Some(c) = comment {
        if let Some(inner) = c.strip_prefix("##") {
            if let Some(end) = inner.find("##") {
                if !inner[..end].trim().is_empty() {
                    let kw = content
                        .split_whitespace()
                        .next()
                        .filter(|k| !k.starts_with('<'))
                        .map(str::to_ascii_lowercase);
                    return Err(LexError::Placeholder(format!("##{}##", &inner[..end]), kw));
                }
            }
        }
    }
    if content.starts_with('<') {
        return lex_tag(content).map(Some);
    }
    let (kw, rest) = match content.find(char::is_whitespace) {
        Some(i) => (&content[..i], content[i..].trim()),
        None => (content, ""),
    };
    if kw.contains('"') {
        return Err(LexError::Syntax(format!(
            "a keyword cannot be quoted: `{kw}`"
        )));
    }
    let (words, value) = split_value(rest)?;
    if let Some(w) = words.iter().find(|w| w.contains("##")) {
        return Err(LexError::Placeholder(
            w.clone(),
            Some(kw.to_ascii_lowercase()),
        ));
    }
    Ok(Some(Lexed::Directive(RawLine {
        keyword: kw.to_ascii_lowercase(),
        raw_text: content.to_string(),
        words,
        value,
    })))
}

/// Splits `line` at the first `#` that is outside double quotes.
fn split_comment(line: &str) -> (&str, Option<&str>) {
    let mut in_quote = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if in_quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_quote = false;
            }
        } else if c == '"' {
            in_quote = true;
        } else if c == '#' {
            return (&line[..i], Some(&line[i..]));
        }
    }
    (line, None)
}

/// Splits a value into words, honouring quotes; also returns the unquoted whole value.
fn split_value(rest: &str) -> Result<(Vec<String>, String), LexError> {
    let mut words = Vec::new();
    let mut value = String::new();
    let mut cur = String::new();
    let mut have_word = false;
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' {
            have_word = true;
            let mut closed = false;
            while let Some(q) = chars.next() {
                match q {
                    '\\' => match chars.peek() {
                        Some('"') | Some('\\') => {
                            let e = chars.next().unwrap_or('\\');
                            cur.push(e);
                            value.push(e);
                        }
                        _ => {
                            cur.push('\\');
                            value.push('\\');
                        }
                    },
                    '"' => {
                        closed = true;
                        break;
                    }
                    other => {
                        cur.push(other);
                        value.push(other);
                    }
                }
            }
            if !closed {
                return Err(LexError::Syntax(
                    "unterminated double-quoted string".to_string(),
                ));
            }
        } else if c.is_whitespace() {
            if have_word {
                words.push(std::mem::take(&mut cur));
                have_word = false;
            }
            value.push(c);
        } else {
            have_word = true;
            cur.push(c);
            value.push(c);
        }
    }
    if have_word {
        words.push(cur);
    }
    Ok((words, value.trim().to_string()))
}

fn lex_tag(content: &str) -> Result<Lexed, LexError> {
    let inner = content
        .strip_prefix('<')
        .and_then(|r| r.strip_suffix('>'))
        .ok_or_else(|| {
            LexError::Syntax(format!(
                "malformed section tag `{content}` (expected `<name [argument]>`)"
            ))
        })?;
    let (closing, inner) = match inner.strip_prefix('/') {
        Some(r) => (true, r),
        None => (false, inner),
    };
    let inner = inner.trim();
    let (tag, arg) = match inner.find(char::is_whitespace) {
        Some(i) => (&inner[..i], inner[i..].trim()),
        None => (inner, ""),
    };
    if tag.is_empty() || !tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(LexError::Syntax(format!(
            "malformed section tag `{content}`"
        )));
    }
    let arg = if arg.is_empty() {
        None
    } else if arg.starts_with('"') {
        let (words, value) = split_value(arg)?;
        if words.len() != 1 {
            return Err(LexError::Syntax(format!(
                "malformed section argument in `{content}`"
            )));
        }
        Some(value)
    } else {
        Some(arg.to_string())
    };
    if let Some(a) = &arg {
        if a.contains("##") {
            return Err(LexError::Placeholder(a.clone(), None));
        }
    }
    let tag = tag.to_ascii_lowercase();
    Ok(if closing {
        Lexed::Close { tag, arg }
    } else {
        Lexed::Open { tag, arg }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(l: &str) -> RawLine {
        match lex_line(l).unwrap().unwrap() {
            Lexed::Directive(d) => d,
            other => panic!("not a directive: {other:?}"),
        }
    }

    #[test]
    fn blank_and_comments() {
        assert_eq!(lex_line("").unwrap(), None);
        assert_eq!(lex_line("   \t ").unwrap(), None);
        assert_eq!(lex_line("# whole line").unwrap(), None);
        assert_eq!(lex_line("   # indented").unwrap(), None);
        assert_eq!(lex_line("## header ##").unwrap(), None);
        let d = dir("max-smtp-out 20  # per domain");
        assert_eq!(d.keyword, "max-smtp-out");
        assert_eq!(d.words, vec!["20"]);
        assert_eq!(d.value, "20");
        let d = dir("log-data false # WARNING: even more verbose!\r");
        assert_eq!(d.words, vec!["false"]);
    }

    #[test]
    fn keywords_are_case_insensitive() {
        assert_eq!(dir("Max-SMTP-Out 20").keyword, "max-smtp-out");
    }

    #[test]
    fn quotes() {
        let d = dir(r#"queue-to "hotmail.queue""#);
        assert_eq!(d.words, vec!["hotmail.queue"]);
        let d = dir(r#"custom-dsn-from-header "Postmaster <x@y>""#);
        assert_eq!(d.words, vec!["Postmaster <x@y>"]);
        assert_eq!(d.value, "Postmaster <x@y>");
        let d = dir(r#"command "/bin/x --envid \"$envid\"""#);
        assert_eq!(d.words, vec![r#"/bin/x --envid "$envid""#]);
        let d = dir(r#"x "a\\b" c"#);
        assert_eq!(d.words, vec![r"a\b", "c"]);
        let d = dir(r#"x "c:\my stuff""#);
        assert_eq!(d.words, vec![r"c:\my stuff"]);
        let d = dir(r#"remove-header """#);
        assert_eq!(d.words, vec![""]);
        assert_eq!(d.value, "");
        let d = dir(r#"x "has # hash" # comment"#);
        assert_eq!(d.words, vec!["has # hash"]);
        assert!(matches!(lex_line(r#"x "open"#), Err(LexError::Syntax(_))));
        let d = dir("records d, b, t");
        assert_eq!(d.words, vec!["d,", "b,", "t"]);
        assert_eq!(d.value, "d, b, t");
    }

    #[test]
    fn tags() {
        assert_eq!(
            lex_line("<source 0/0>").unwrap(),
            Some(Lexed::Open {
                tag: "source".into(),
                arg: Some("0/0".into())
            })
        );
        assert_eq!(
            lex_line("  <Signals>  # c").unwrap(),
            Some(Lexed::Open {
                tag: "signals".into(),
                arg: None
            })
        );
        assert_eq!(
            lex_line("</domain-key-list keylist-one>").unwrap(),
            Some(Lexed::Close {
                tag: "domain-key-list".into(),
                arg: Some("keylist-one".into())
            })
        );
        assert_eq!(
            lex_line(r#"<acct-file "c:\my stuff\\x.exe">"#).unwrap(),
            Some(Lexed::Open {
                tag: "acct-file".into(),
                arg: Some(r"c:\my stuff\x.exe".into())
            })
        );
        assert_eq!(
            lex_line("<acct-file |/usr/bin/etl --logfile x.log>").unwrap(),
            Some(Lexed::Open {
                tag: "acct-file".into(),
                arg: Some("|/usr/bin/etl --logfile x.log".into())
            })
        );
        assert!(lex_line("<source 0/0").is_err());
        assert!(lex_line("<>").is_err());
        assert!(lex_line("<so urce>").is_ok());
        assert!(lex_line("<so!urce>").is_err());
    }

    #[test]
    fn placeholders() {
        assert_eq!(
            lex_line("  api-key ##my ingest API key here##"),
            Err(LexError::Placeholder(
                "##my ingest API key here##".into(),
                Some("api-key".into())
            ))
        );
        assert!(matches!(
            lex_line(r###"password "##secret##""###),
            Err(LexError::Placeholder(..))
        ));
        assert!(matches!(
            lex_line("<virtual-mta ##name##x>"),
            Err(LexError::Placeholder(..))
        ));
        // an ordinary double-hash comment is not a placeholder
        assert!(lex_line("max-smtp-out 20 ## per domain").unwrap().is_some());
    }
}
