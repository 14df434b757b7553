//! `<acct-file>`, `<spool>`, processors, address lists and rewrite lists.

use super::*;

impl Builder<'_> {
    // ------------------------------------------------------------------ accounting

    pub(super) fn acct_section(&mut self, s: &Section) {
        let arg = Self::arg(s);
        let target = match arg.strip_prefix('|') {
            Some(cmd) if !cmd.trim().is_empty() => AcctTarget::Pipe(cmd.trim().to_string()),
            Some(_) => {
                self.err(&s.loc, "`<acct-file |…>`: the pipe command is empty");
                return;
            }
            None => AcctTarget::File(resolve_path(&s.loc.base_dir(), arg)),
        };
        let mut a = AcctFile {
            target,
            records: vec![RecordType::Delivery, RecordType::Bounce],
            record_fields: Vec::new(),
            move_to: None,
            move_interval: Duration::from_secs(86_400),
            max_size: 250 << 20,
            delete_after: Some(Duration::from_secs(8 * 86_400)),
            iso_times: true,
            user_string: None,
            world_readable: false,
            sync: false,
            origin: origin(&s.loc),
        };
        let mut records_seen = false;
        for c in &s.children {
            let l = match c {
                Node::Line(l) => l,
                Node::Section(sub) => {
                    self.open(sub, ACCT);
                    continue;
                }
            };
            let Some((d, v)) = self.check(l, ACCT) else {
                continue;
            };
            match (d.name, v) {
                ("records", _) => {
                    if records_seen {
                        self.err(&l.loc, "`records` may be set only once per <acct-file>");
                    }
                    records_seen = true;
                    let mut out = Vec::new();
                    for r in split_list(&l.value) {
                        match RecordType::parse(&r) {
                            Some(t) => out.push(t),
                            None => self.err(&l.loc, format!("`records`: `{r}` is not a record type (d, b, t, tq, r, f, rb, rs)")),
                        }
                    }
                    a.records = out;
                }
                ("record-fields", _) => {
                    let Some(t) = RecordType::parse(&l.words[0]) else {
                        self.err(
                            &l.loc,
                            format!("`record-fields`: `{}` is not a record type", l.words[0]),
                        );
                        continue;
                    };
                    let rest = l.value
                        [l.value.find(char::is_whitespace).unwrap_or(l.value.len())..]
                        .trim();
                    let fields = split_list(rest);
                    if fields.is_empty() {
                        self.err(&l.loc, "`record-fields`: field list missing");
                        continue;
                    }
                    let sel = fields
                        .into_iter()
                        .map(|f| {
                            if f == "*" {
                                FieldSelector::All
                            } else if let Some(x) = f.strip_prefix('!') {
                                FieldSelector::Exclude(x.to_string())
                            } else if let Some(h) = crate::values::strip_prefix_ci(&f, "header_")
                                .filter(|h| !h.is_empty())
                            {
                                FieldSelector::Header(h.to_string())
                            } else {
                                FieldSelector::Field(f)
                            }
                        })
                        .collect();
                    a.record_fields.push((t, sel));
                }
                ("map-header-to-field", _)
                    if l.words.len() != 3 || RecordType::parse(&l.words[0]).is_none() =>
                {
                    self.err(&l.loc, "`map-header-to-field` takes TYPE header_NAME FIELD");
                }
                ("privacy-policy", _) => {
                    let p = l.words[0].to_ascii_lowercase();
                    let ok = match p.as_str() {
                        "retain" => l.words.len() == 1,
                        "redact" => l.words.len() <= 2,
                        "siphash" | "siphash-hexkey" | "hmac-sha256" | "hmac-sha256-hexkey" => {
                            l.words.len() == 2
                        }
                        _ => false,
                    };
                    if !ok {
                        self.err(&l.loc, format!("`privacy-policy`: `{}` is not retain, redact [\"str\"], siphash \"key\", siphash-hexkey KEY, hmac-sha256 \"key\" or hmac-sha256-hexkey KEY", l.value));
                    }
                }
                ("move-to", Value::Path(p)) => a.move_to = Some(p),
                ("move-interval", Value::Duration(x)) => a.move_interval = x,
                ("max-size", Value::Size(n)) => {
                    if n < (1 << 20) {
                        self.err(&l.loc, "`max-size` must be at least 1M");
                    }
                    a.max_size = n;
                }
                ("delete-after", Value::OptDuration(x)) => a.delete_after = x,
                ("iso-times", Value::Bool(b)) => a.iso_times = b,
                ("user-string", Value::Text(t)) => a.user_string = Some(t),
                ("world-readable", Value::Bool(b)) => a.world_readable = b,
                ("sync", Value::Bool(b)) => a.sync = b,
                _ => {}
            }
        }
        self.data.acct_files.push(a);
    }

    pub(super) fn spool_section(&mut self, s: &Section) {
        let mut sp = SpoolDir {
            path: resolve_path(&s.loc.base_dir(), Self::arg(s)),
            priority: 1,
            min_free_space: 0,
            deliver_only: false,
            origin: origin(&s.loc),
        };
        for c in &s.children {
            match c {
                Node::Line(l) => {
                    let Some((d, v)) = self.check(l, SPOOL) else {
                        continue;
                    };
                    match (d.name, v) {
                        ("priority", Value::Int(n)) => sp.priority = n,
                        ("min-free-space", Value::Size(n)) => sp.min_free_space = n,
                        ("deliver-only", Value::Bool(b)) => sp.deliver_only = b,
                        _ => {}
                    }
                }
                Node::Section(sub) => {
                    self.open(sub, SPOOL);
                }
            }
        }
        self.data.spools.push(sp);
    }

    // ------------------------------------------------------------------ processors

    pub(super) fn processor_section(&mut self, s: &Section, bit: u32) -> Processor {
        let mut p = Processor {
            origin: origin(&s.loc),
            ..Processor::default()
        };
        for c in &s.children {
            match c {
                Node::Line(l) => {
                    let Some((d, v)) = self.check(l, bit) else {
                        continue;
                    };
                    match (d.name, v) {
                        ("deliver-unmatched-email", Value::Bool(b)) => {
                            p.deliver_unmatched_email = b
                        }
                        ("deliver-matched-email", Value::Bool(b)) => p.deliver_matched_email = b,
                        ("forward-unmatched-to", Value::Text(t)) => p.forward_unmatched_to.push(t),
                        ("forward-errors-to", Value::Text(t)) => p.forward_errors_to.push(t),
                        ("return-path-key", _) => match parse_key_line(l) {
                            Ok((id, secret)) => {
                                if p.return_path_keys.iter().any(|(k, _)| *k == id) {
                                    self.err(
                                        &l.loc,
                                        format!("`return-path-key`: key id {id} is given twice"),
                                    );
                                } else {
                                    p.return_path_keys.push((id, secret));
                                }
                            }
                            Err(why) => self.err(&l.loc, format!("`return-path-key`: {why}")),
                        },
                        ("return-path-key-file", Value::Path(f)) => {
                            p.return_path_key_file = Some(f)
                        }
                        _ => {}
                    }
                }
                Node::Section(sub) => {
                    let Some(def) = self.open(sub, bit) else {
                        continue;
                    };
                    if def.bit == ADDR {
                        let list = self.address_list(sub);
                        p.address_list.domains.extend(list.domains);
                        p.address_list.addresses.extend(list.addresses);
                        p.address_list.address_files.extend(list.address_files);
                    } else if def.bit == EMAILP {
                        for c2 in &sub.children {
                            match c2 {
                                Node::Line(l) => match self.check(l, EMAILP) {
                                    Some((_, Value::Path(f))) => p.body_pattern_files.push(f),
                                    Some((_, Value::Bool(b))) => p.log_match_info = b,
                                    _ => {}
                                },
                                Node::Section(x) => {
                                    self.open(x, EMAILP);
                                }
                            }
                        }
                    }
                }
            }
        }
        p
    }

    pub(super) fn address_list(&mut self, s: &Section) -> AddressList {
        let mut a = AddressList {
            name: s.arg.clone(),
            ..AddressList::default()
        };
        for c in &s.children {
            match c {
                Node::Line(l) => {
                    let Some((d, v)) = self.check(l, ADDR) else {
                        continue;
                    };
                    match (d.name, v) {
                        ("domain", Value::Text(t)) => match t.parse::<DomainPattern>() {
                            Ok(DomainPattern::Exact(x)) => a.domains.push(x),
                            _ => self.err(&l.loc, format!("`domain`: `{t}` is not a domain name")),
                        },
                        ("address", Value::Text(t)) => match address_entry(&t) {
                            Ok(e) => a.addresses.push(e),
                            Err(m) => self.err(&l.loc, format!("`address`: {m}")),
                        },
                        ("address-file", Value::Path(p)) => {
                            match std::fs::read_to_string(&p) {
                                Ok(text) => {
                                    for (n, line) in text.lines().enumerate() {
                                        let t = line.trim();
                                        if t.is_empty() || t.starts_with('#') {
                                            continue;
                                        }
                                        match address_entry(t) {
                                            Ok(e) => a.addresses.push(e),
                                            Err(m) => self.errors.push(Diagnostic::new(
                                                p.as_path(),
                                                n + 1,
                                                m,
                                            )),
                                        }
                                    }
                                }
                                Err(e) => self.err(
                                    &l.loc,
                                    format!("`address-file`: cannot read {}: {e}", p.display()),
                                ),
                            }
                            a.address_files.push(p);
                        }
                        _ => {}
                    }
                }
                Node::Section(sub) => {
                    self.open(sub, ADDR);
                }
            }
        }
        a
    }

    // ------------------------------------------------------------------ bounce categories

    /// `<bounce-category-patterns>`: every line is `/regex/ category`. The lexer sees the
    /// regex's first word as the keyword, so the line as written is parsed instead.
    pub(super) fn bounce_category_section(&mut self, s: &Section) {
        for c in &s.children {
            match c {
                Node::Line(l) => {
                    if l.broken {
                        continue;
                    }
                    let text = l.raw_text.as_str();
                    let parsed = leading_regex(text).and_then(|(p, rest)| {
                        let cat = rest.trim();
                        if cat.is_empty() || cat.contains(char::is_whitespace) {
                            Err(format!(
                                "`{}`: expected `/regex/ category` (one category name)",
                                text.trim()
                            ))
                        } else {
                            Ok((p, cat.to_ascii_lowercase()))
                        }
                    });
                    match parsed {
                        Ok(rule) => self.data.bounce_category_patterns.push(rule),
                        Err(m) => self.err(&l.loc, format!("<bounce-category-patterns>: {m}")),
                    }
                }
                Node::Section(sub) => {
                    self.open(sub, BCP);
                }
            }
        }
    }

    // ------------------------------------------------------------------ pattern-list

    pub(super) fn pattern_list_section(&mut self, s: &Section, name: String) -> PatternList {
        let mut list = PatternList {
            name,
            entries: Vec::new(),
        };
        for c in &s.children {
            match c {
                Node::Line(l) => {
                    if self.check(l, PAT).is_none() {
                        continue;
                    }
                    match pattern_entry(&l.keyword, &l.value) {
                        Ok((entry, planned)) => {
                            for p in planned {
                                self.warn(
                                    &l.loc,
                                    format!(
                                        "`{p}` results are accepted but not acted on yet (planned)"
                                    ),
                                );
                            }
                            if let Some(v) = &entry.virtual_mta {
                                self.reference(RefKind::VmtaOrPool, v, &l.loc, "virtual-mta=");
                            }
                            list.entries.push(entry);
                        }
                        Err(m) => self.err(&l.loc, format!("`{}`: {m}", l.keyword)),
                    }
                }
                Node::Section(sub) => {
                    self.warn(
                        &sub.loc,
                        "a nested `<pattern-list>` is accepted but not acted on yet (planned); its entries never match",
                    );
                    self.open(sub, PAT);
                }
            }
        }
        list
    }

    // ------------------------------------------------------------------ smtp-pattern-list

    pub(super) fn smtp_pattern_list_section(&mut self, s: &Section) -> SmtpPatternList {
        let mut list = SmtpPatternList {
            name: Self::arg(s).to_string(),
            rules: Vec::new(),
        };
        for c in &s.children {
            match c {
                Node::Line(l) => {
                    if self.check(l, SPAT).is_none() {
                        continue;
                    }
                    match reply_rule(&l.value) {
                        Ok((rule, planned)) => {
                            for p in planned {
                                self.warn(
                                    &l.loc,
                                    format!("`reply` action `{p}` is accepted but not acted on yet (planned)"),
                                );
                            }
                            list.rules.push(rule);
                        }
                        Err(m) => self.err(&l.loc, format!("`reply`: {m}")),
                    }
                }
                Node::Section(sub) => {
                    self.open(sub, SPAT);
                }
            }
        }
        list
    }

    // ------------------------------------------------------------------ rewrite

    pub(super) fn rewrite_section(&mut self, s: &Section) {
        let name = Self::arg(s).to_string();
        if self
            .data
            .rewrite_lists
            .iter()
            .any(|r| r.name.eq_ignore_ascii_case(&name))
        {
            self.err(
                &s.loc,
                format!("`<rewrite-list {name}>` is defined more than once"),
            );
        }
        let mut rules = Vec::new();
        for c in &s.children {
            let l = match c {
                Node::Line(l) => l,
                Node::Section(sub) => {
                    self.open(sub, RW);
                    continue;
                }
            };
            let Some((d, _)) = self.check(l, RW) else {
                continue;
            };
            if l.words.len() != 2 {
                self.err(&l.loc, format!("`{}` takes a source and a target", d.name));
                continue;
            }
            match d.name {
                "mail-from" => match parse_mail_from_rule(&l.words[0], &l.words[1]) {
                    Ok((from, to)) => rules.push(RewriteRule::MailFrom { from, to }),
                    Err(m) => self.err(&l.loc, format!("`mail-from`: {m}")),
                },
                _ => {
                    let from = match l.words[0].parse::<DomainPattern>() {
                        Ok(p) => p,
                        Err(e) => {
                            self.err(&l.loc, format!("`from-domain`: {e}"));
                            continue;
                        }
                    };
                    match l.words[1].parse::<DomainPattern>() {
                        Ok(DomainPattern::Exact(to)) if to.is_ascii() => {
                            rules.push(RewriteRule::FromDomain { from, to })
                        }
                        _ => self.err(
                            &l.loc,
                            format!(
                                "`from-domain`: target `{}` must be a plain ASCII domain",
                                l.words[1]
                            ),
                        ),
                    }
                }
            }
        }
        self.data.rewrite_lists.push(RewriteList {
            name,
            rules,
            origin: origin(&s.loc),
        });
    }
}

/// `tracking-key` / `return-path-key ID SECRET`: ID 0-255, SECRET at least 16 printable
/// ASCII characters.
pub(super) fn parse_key_line(l: &Line) -> Result<(u8, String), String> {
    let [id, secret] = l.words.as_slice() else {
        return Err(format!(
            "`{}` is not `ID SECRET` (a key id 0-255 and a secret of at least 16 characters)",
            l.value
        ));
    };
    let id: u8 = id
        .parse()
        .map_err(|_| format!("key id `{id}` is not a number from 0 to 255"))?;
    if secret.len() < 16 || !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(
            "the secret must be at least 16 printable ASCII characters (e.g. `openssl rand -hex 32`)"
                .into(),
        );
    }
    Ok((id, secret.clone()))
}

/// One `address` value or `address-file` line: `/regex/`, `user@domain` or a bare local part.
fn address_entry(t: &str) -> Result<AddressEntry, String> {
    if t.len() >= 2 && t.starts_with('/') && t.ends_with('/') {
        Pattern::new(&t[1..t.len() - 1]).map(AddressEntry::Regex)
    } else if t.chars().any(char::is_whitespace) {
        Err(format!("`{t}` is not an address (it contains a space)"))
    } else if t.contains('@') {
        Ok(AddressEntry::Email(t.to_string()))
    } else {
        Ok(AddressEntry::LocalPart(t.to_string()))
    }
}

/// `reply /regex/ ACTION[,ACTION…]` (actions may also be separated by spaces). Returns the
/// rule and the names of the actions petrel parses but does not act on yet.
fn reply_rule(value: &str) -> Result<(ReplyRule, Vec<&'static str>), String> {
    let (pattern, actions) = leading_regex(value)?;
    let mut a = ReplyActions::default();
    let mut planned = Vec::new();
    let words: Vec<&str> = actions
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return Err(format!("`{}`: no action after the pattern", value.trim()));
    }
    for w in words {
        let lower = w.to_ascii_lowercase();
        match lower.as_str() {
            "mode=backoff" | "mode=normal" => {
                if a.mode.is_some() {
                    return Err("only one `mode=` per rule".into());
                }
                a.mode = Some(if lower == "mode=backoff" {
                    QueueMode::Backoff
                } else {
                    QueueMode::Normal
                });
            }
            "defer-queue" => a.defer_queue = true,
            "bounce-queue" => a.bounce_queue = true,
            "bounce-rcpt" => a.bounce_rcpt = true,
            "skip-mx" => {
                a.skip_mx = true;
                planned.push("skip-mx");
            }
            "disable-source-ip" => {
                a.disable_source_ip = true;
                planned.push("disable-source-ip");
            }
            _ => {
                if let Some(t) = lower.strip_prefix("reenable-after=") {
                    if a.reenable_after.is_some() {
                        return Err("`reenable-after` given twice".into());
                    }
                    let d = crate::values::parse_duration(t).map_err(|e| format!("`{w}`: {e}"))?;
                    a.reenable_after = Some(d);
                    planned.push("reenable-after");
                } else {
                    return Err(format!(
                        "unknown action `{w}` (expected mode=backoff, mode=normal, skip-mx, bounce-queue, bounce-rcpt, disable-source-ip, reenable-after=TIME or defer-queue)"
                    ));
                }
            }
        }
    }
    if a.skip_mx && a.bounce_queue {
        return Err("`skip-mx` and `bounce-queue` cannot be combined".into());
    }
    if a.reenable_after.is_some() && !a.disable_source_ip {
        return Err("`reenable-after` needs `disable-source-ip`".into());
    }
    Ok((
        ReplyRule {
            pattern,
            actions: a,
        },
        planned,
    ))
}

/// `/regex/` at the start of `v`, and what follows it.
fn leading_regex(v: &str) -> Result<(Pattern, &str), String> {
    let v = v.trim();
    let close = v.rfind('/').filter(|&i| v.starts_with('/') && i > 0);
    let Some(close) = close else {
        return Err(format!("`{v}`: expected `/regex/` followed by what to do"));
    };
    Ok((Pattern::new(&v[1..close])?, &v[close + 1..]))
}

/// One `<pattern-list>` line: `header NAME /re/ RESULT`, `mail-from /re/ RESULT`,
/// `rcpt-to /re/ RESULT` or `* RESULT`, where RESULT is `virtual-mta=NAME`,
/// `recipient-priority=N` and `call-to:LIST`, comma-separated. Returns the entry and the
/// names of the results parsed but not acted on yet.
fn pattern_entry(keyword: &str, value: &str) -> Result<(PatternEntry, Vec<&'static str>), String> {
    let (subject, result) = match keyword {
        "header" => {
            let v = value.trim();
            let (name, rest) = v.split_once(char::is_whitespace).ok_or_else(|| {
                format!("`{v}`: expected a header name, `/regex/` and the result")
            })?;
            let (p, result) = leading_regex(rest)?;
            (PatternSubject::Header(name.to_string(), p), result)
        }
        "mail-from" => {
            let (p, result) = leading_regex(value)?;
            (PatternSubject::MailFrom(p), result)
        }
        "rcpt-to" => {
            let (p, result) = leading_regex(value)?;
            (PatternSubject::RcptTo(p), result)
        }
        _ => (PatternSubject::Any, value),
    };
    let mut entry = PatternEntry {
        subject,
        virtual_mta: None,
    };
    let mut planned = Vec::new();
    let items: Vec<&str> = result
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .collect();
    if items.is_empty() {
        return Err("no result (expected `virtual-mta=NAME`)".into());
    }
    for item in items {
        let lower = item.to_ascii_lowercase();
        if lower.starts_with("virtual-mta=") {
            let v = &item["virtual-mta=".len()..];
            if v.is_empty() || v.contains(char::is_whitespace) {
                return Err(format!("`{item}`: expected one virtual MTA or pool name"));
            }
            entry.virtual_mta = Some(v.to_string());
        } else if let Some(n) = lower.strip_prefix("recipient-priority=") {
            match n.parse::<u32>() {
                Ok(0..=100) => planned.push("recipient-priority"),
                _ => return Err(format!("`{item}`: a priority is 0 to 100")),
            }
        } else if lower.starts_with("call-to:") {
            planned.push("call-to");
        } else {
            return Err(format!(
                "unknown result `{item}` (expected virtual-mta=NAME, recipient-priority=N or call-to:LIST)"
            ));
        }
    }
    Ok((entry, planned))
}
