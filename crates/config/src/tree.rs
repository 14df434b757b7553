//! Builds the section tree of one configuration, following `include` directives.
//!
//! Exists to separate *structure* (balanced tags, includes, file/line bookkeeping) from
//! *meaning* (which directives are valid where, typed values), which `builder` handles.

use crate::error::Diagnostic;
use crate::lexer::{lex_line, LexError, Lexed};
use crate::read::{read_limited, MAX_CONFIG_FILE, MAX_CONFIG_TOTAL};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a node came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Loc {
    pub file: Arc<PathBuf>,
    pub line: usize,
}

impl Loc {
    pub fn diag(&self, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::new(self.file.as_path(), self.line, msg)
    }
    /// Directory that relative paths named at this location resolve against.
    pub fn base_dir(&self) -> PathBuf {
        base_dir(&self.file)
    }
}

/// Directory of `file`, or `.`-relative empty path when it has none.
pub(crate) fn base_dir(file: &Path) -> PathBuf {
    file.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// A directive line with its location.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub loc: Loc,
    pub keyword: String,
    /// The line as written (see `RawLine::raw_text`).
    pub raw_text: String,
    pub words: Vec<String>,
    pub value: String,
    /// The line had an error already reported (e.g. a placeholder); only its keyword is
    /// known. Kept so "required directive missing" checks do not pile on.
    pub broken: bool,
}

/// A `<tag arg>` … `</tag>` block.
#[derive(Debug, Clone)]
pub(crate) struct Section {
    pub loc: Loc,
    pub tag: String,
    pub arg: Option<String>,
    pub children: Vec<Node>,
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Line(Line),
    Section(Section),
}

/// Sections inside which `include` may appear (plus global level).
const INCLUDE_OK: &[&str] = &["source", "domain", "virtual-mta", "smtp-pattern-list"];
const MAX_DEPTH: usize = 32;
/// Real configurations nest three or four levels; the cap keeps hostile input from building
/// a tree deep enough to exhaust the stack when it is dropped.
const MAX_NESTING: usize = 16;

pub(crate) struct Reader<'a> {
    pub io: bool,
    pub errors: &'a mut Vec<Diagnostic>,
    pub warnings: &'a mut Vec<Diagnostic>,
    stack: Vec<PathBuf>,
    /// Bytes of every file read so far, the root included.
    read_bytes: u64,
}

impl<'a> Reader<'a> {
    pub fn new(
        io: bool,
        errors: &'a mut Vec<Diagnostic>,
        warnings: &'a mut Vec<Diagnostic>,
    ) -> Self {
        Reader {
            io,
            errors,
            warnings,
            stack: Vec::new(),
            read_bytes: 0,
        }
    }

    /// Parses the top-level text of `file` (already read by the caller).
    pub fn parse_root(&mut self, file: &Path, text: &str) -> Vec<Node> {
        self.read_bytes = text.len() as u64;
        if self.io {
            if let Ok(c) = file.canonicalize() {
                self.stack.push(c);
            }
        }
        self.parse_text(Arc::new(file.to_path_buf()), text, None)
    }

    fn parse_text(&mut self, file: Arc<PathBuf>, text: &str, outer: Option<&str>) -> Vec<Node> {
        let mut root: Vec<Node> = Vec::new();
        let mut open: Vec<Section> = Vec::new();
        for (idx, raw) in text.lines().enumerate() {
            let loc = Loc {
                file: file.clone(),
                line: idx + 1,
            };
            let lexed = match lex_line(raw) {
                Ok(Some(l)) => l,
                Ok(None) => continue,
                Err(LexError::Placeholder(p, kw)) => {
                    self.errors.push(loc.diag(format!(
                        "placeholder value left unfilled (`{p}`); put the real value here"
                    )));
                    if let Some(keyword) = kw {
                        let node = Node::Line(Line {
                            loc,
                            raw_text: keyword.clone(),
                            keyword,
                            words: Vec::new(),
                            value: String::new(),
                            broken: true,
                        });
                        match open.last_mut() {
                            Some(s) => s.children.push(node),
                            None => root.push(node),
                        }
                    }
                    continue;
                }
                Err(LexError::Syntax(m)) => {
                    self.errors.push(loc.diag(m));
                    continue;
                }
            };
            match lexed {
                Lexed::Directive(d) if d.keyword == "include" => {
                    let here = open.last().map(|s| s.tag.as_str()).or(outer);
                    if let Some(tag) = here {
                        if !INCLUDE_OK.contains(&tag) {
                            self.errors.push(loc.diag(format!(
                                "`include` is not allowed in <{tag}>; it may appear at global level and in <source>, <domain>, <virtual-mta>, <smtp-pattern-list>"
                            )));
                            continue;
                        }
                    }
                    let here = here.map(str::to_string);
                    let nodes = self.include(&loc, &d.words, here.as_deref());
                    match open.last_mut() {
                        Some(s) => s.children.extend(nodes),
                        None => root.extend(nodes),
                    }
                }
                Lexed::Directive(d) => {
                    let node = Node::Line(Line {
                        loc,
                        keyword: d.keyword,
                        raw_text: d.raw_text,
                        words: d.words,
                        value: d.value,
                        broken: false,
                    });
                    match open.last_mut() {
                        Some(s) => s.children.push(node),
                        None => root.push(node),
                    }
                }
                Lexed::Open { .. } if open.len() >= MAX_NESTING => {
                    self.errors.push(
                        loc.diag(format!("sections are nested more than {MAX_NESTING} deep")),
                    );
                }
                Lexed::Open { tag, arg } => open.push(Section {
                    loc,
                    tag,
                    arg,
                    children: Vec::new(),
                }),
                Lexed::Close { tag, arg } => {
                    let Some(pos) = open.iter().rposition(|s| s.tag == tag) else {
                        self.errors
                            .push(loc.diag(format!("`</{tag}>` has no matching `<{tag}>`")));
                        continue;
                    };
                    while open.len() > pos + 1 {
                        let inner = open.pop().expect("len checked");
                        self.errors.push(loc.diag(format!(
                            "`</{tag}>` closes `<{}>` but `<{}>` opened at line {} is still open",
                            tag, inner.tag, inner.loc.line
                        )));
                        attach(&mut open, &mut root, inner);
                    }
                    let sec = open.pop().expect("position found");
                    if let (Some(a), Some(b)) = (&arg, &sec.arg) {
                        if !a.eq_ignore_ascii_case(b) {
                            self.errors.push(loc.diag(format!(
                                "`</{tag} {a}>` does not match `<{tag} {b}>` opened at line {}",
                                sec.loc.line
                            )));
                        }
                    } else if let (Some(a), None) = (&arg, &sec.arg) {
                        self.errors.push(loc.diag(format!(
                            "`</{tag} {a}>` does not match `<{tag}>` opened at line {}",
                            sec.loc.line
                        )));
                    }
                    attach(&mut open, &mut root, sec);
                }
            }
        }
        while let Some(sec) = open.pop() {
            let shown = match &sec.arg {
                Some(a) => format!("<{} {}>", sec.tag, a),
                None => format!("<{}>", sec.tag),
            };
            self.errors.push(sec.loc.diag(format!(
                "`{shown}` is never closed (expected `</{}>`)",
                sec.tag
            )));
            attach(&mut open, &mut root, sec);
        }
        root
    }

    fn include(&mut self, loc: &Loc, words: &[String], here: Option<&str>) -> Vec<Node> {
        if words.len() != 1 || words[0].is_empty() {
            self.errors.push(loc.diag(if words.is_empty() {
                "`include`: argument missing (expected a file path or glob)".to_string()
            } else {
                "`include` takes exactly one path (quote it if it contains spaces)".to_string()
            }));
            return Vec::new();
        }
        let path = resolve_path(&loc.base_dir(), &words[0]);
        if !self.io {
            self.errors.push(loc.diag(format!(
                "`include {}`: includes are disabled in this context",
                path.display()
            )));
            return Vec::new();
        }
        if self.stack.len() >= MAX_DEPTH {
            self.errors.push(loc.diag(format!(
                "`include {}`: includes are nested more than {MAX_DEPTH} deep",
                path.display()
            )));
            return Vec::new();
        }
        let files = match expand_glob(&path) {
            Ok(f) => f,
            Err(m) => {
                self.errors.push(loc.diag(m));
                return Vec::new();
            }
        };
        if files.is_empty() {
            self.warnings.push(loc.diag(format!(
                "include pattern `{}` matched no files",
                path.display()
            )));
        }
        let mut out = Vec::new();
        for f in files {
            let canon = match f.canonicalize() {
                Ok(c) => c,
                Err(e) => {
                    self.errors
                        .push(loc.diag(format!("cannot read include file `{}`: {e}", f.display())));
                    continue;
                }
            };
            if self.stack.contains(&canon) {
                self.errors.push(loc.diag(format!(
                    "include loop: `{}` is already being read",
                    f.display()
                )));
                continue;
            }
            let text = match read_limited(&f, MAX_CONFIG_FILE) {
                Ok(b) => b,
                Err(e) => {
                    self.errors
                        .push(loc.diag(format!("cannot read include file `{}`: {e}", f.display())));
                    continue;
                }
            };
            self.read_bytes += text.len() as u64;
            if self.read_bytes > MAX_CONFIG_TOTAL {
                self.errors.push(loc.diag(format!(
                    "`include {}`: the configuration's files add up to more than {} MiB",
                    f.display(),
                    MAX_CONFIG_TOTAL >> 20
                )));
                return out;
            }
            let text = String::from_utf8_lossy(&text).into_owned();
            self.stack.push(canon);
            out.extend(self.parse_text(Arc::new(f), &text, here));
            self.stack.pop();
        }
        out
    }
}

fn attach(open: &mut [Section], root: &mut Vec<Node>, sec: Section) {
    match open.last_mut() {
        Some(p) => p.children.push(Node::Section(sec)),
        None => root.push(Node::Section(sec)),
    }
}

/// Resolves a path named in a config file: relative paths are taken from `base`, the
/// directory of the file that names them.
pub(crate) fn resolve_path(base: &Path, p: &str) -> PathBuf {
    let pb = PathBuf::from(p);
    if pb.is_absolute() || base.as_os_str().is_empty() {
        pb
    } else {
        base.join(pb)
    }
}

/// Expands `*` and `?` in the last path component. Returns the sorted matching regular
/// files; a path without wildcards is returned as is (existence is checked by the reader).
pub(crate) fn expand_glob(path: &Path) -> Result<Vec<PathBuf>, String> {
    let name = match path.file_name().and_then(|n| n.to_str()) {
        Some(n) => n.to_string(),
        None => return Ok(vec![path.to_path_buf()]),
    };
    let parent = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let parent_s = parent.to_string_lossy();
    if parent_s.contains('*') || parent_s.contains('?') {
        return Err(format!(
            "`{}`: wildcards are only supported in the last path component",
            path.display()
        ));
    }
    if !name.contains('*') && !name.contains('?') {
        return Ok(vec![path.to_path_buf()]);
    }
    let dir = if parent.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        parent.clone()
    };
    let rd = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot list include directory `{}`: {e}", dir.display()))?;
    let mut out = Vec::new();
    for entry in rd.flatten() {
        let fname = entry.file_name();
        let Some(fname) = fname.to_str() else {
            continue;
        };
        if fname.starts_with('.') && !name.starts_with('.') {
            continue;
        }
        if !glob_match(&name, fname) {
            continue;
        }
        let p = parent.join(fname);
        if p.is_file() {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// Matches `name` against a pattern with `*` (any run) and `?` (one character).
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globbing() {
        assert!(glob_match("*.conf", "a.conf"));
        assert!(glob_match("*.conf", ".conf"));
        assert!(!glob_match("*.conf", "a.conf.bak"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("?x", "ax"));
        assert!(!glob_match("?x", "x"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("exact", "exact"));
    }

    fn parse(text: &str) -> (Vec<Node>, Vec<Diagnostic>) {
        let mut e = Vec::new();
        let mut w = Vec::new();
        let nodes = Reader::new(false, &mut e, &mut w).parse_root(Path::new("/x/cfg"), text);
        (nodes, e)
    }

    #[test]
    fn nesting() {
        let (n, e) = parse("a 1\n<virtual-mta-pool p>\n virtual-mta v\n <domain *>\n  max-smtp-out 2\n </domain>\n</virtual-mta-pool p>\n");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(n.len(), 2);
        let Node::Section(s) = &n[1] else { panic!() };
        assert_eq!(s.tag, "virtual-mta-pool");
        assert_eq!(s.children.len(), 2);
    }

    #[test]
    fn unbalanced() {
        let (_, e) = parse("<source 0/0>\nsmtp-service yes\n");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].line, 1);
        assert!(e[0].message.contains("never closed"), "{}", e[0].message);
        let (_, e) = parse("</source>\n");
        assert_eq!(e[0].line, 1);
        assert!(e[0].message.contains("no matching"));
        let (_, e) = parse("<virtual-mta a>\n<domain *>\n</virtual-mta>\n");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].line, 3);
        let (_, e) = parse("<virtual-mta a>\n</virtual-mta b>\n");
        assert_eq!(e[0].line, 2);
        assert!(e[0].message.contains("does not match"));
        let (_, e) = parse("<virtual-mta a>\n</virtual-mta A>\n");
        assert!(e.is_empty());
    }

    #[test]
    fn deep_nesting_is_capped() {
        let text = "<pattern-list a>\n".repeat(100_000);
        let (_, e) = parse(&text);
        assert!(e.iter().any(|d| d.message.contains("nested more than")));
    }

    #[test]
    fn include_disabled_without_io() {
        let (_, e) = parse("include other.conf\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].message.contains("/x/other.conf"), "{}", e[0].message);
    }

    #[test]
    fn include_not_allowed_in_signals() {
        let (_, e) = parse("<signals>\ninclude x\n</signals>\n");
        assert!(e[0].message.contains("not allowed in <signals>"));
    }
}
