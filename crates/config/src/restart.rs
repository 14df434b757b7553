//! Which changes between two configurations need a restart: the directive table marks the
//! directives and sections that set up something the daemon builds once (bound sockets,
//! open files and databases, keys loaded at start, the uploader). Everything else applies
//! on `reload`.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};

use crate::config::Config;
use crate::directives::{lookup, sec::G, section_def, Apply, Lookup};
use crate::tree::Node;

/// Where each restart-only setting of a configuration stands, as `(where, digest of the
/// value)`: `smtp-listener`, `<acct-file /var/log/acct.csv> records`,
/// `<bounce-processor>`. Only digests are kept, so no secret is held twice.
pub(crate) type Fingerprint = Vec<(String, u64)>;

/// The fingerprint of a parsed tree.
pub(crate) fn fingerprint(nodes: &[Node]) -> Fingerprint {
    let mut out = Vec::new();
    walk(nodes, G, "", &mut out);
    out
}

fn walk(nodes: &[Node], bit: u32, path: &str, out: &mut Fingerprint) {
    for node in nodes {
        match node {
            Node::Line(l) => {
                if let Lookup::Found(d) = lookup(&l.keyword, bit) {
                    if d.apply == Apply::Restart {
                        out.push((join(path, &l.keyword), digest(&l.value)));
                    }
                }
            }
            Node::Section(s) => {
                let Some(def) = section_def(&s.tag) else {
                    continue;
                };
                let here = match &s.arg {
                    Some(arg) => join(path, &format!("<{} {arg}>", s.tag)),
                    None => join(path, &format!("<{}>", s.tag)),
                };
                if def.apply == Apply::Restart {
                    out.push((here.clone(), 0));
                }
                if !def.opaque {
                    walk(&s.children, def.bit, &here, out);
                }
            }
        }
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path} {name}")
    }
}

fn digest(value: &str) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// The restart-only settings that differ between the running configuration and a newly
/// loaded one, in order: what `reload` applies only after a restart. A section added or
/// removed is named once, not with each of its directives.
pub fn restart_needed(running: &Config, loaded: &Config) -> Vec<String> {
    let (a, b) = (by_place(&running.restart), by_place(&loaded.restart));
    let places: BTreeSet<&str> = a.keys().chain(b.keys()).copied().collect();
    let changed: Vec<&str> = places
        .into_iter()
        .filter(|p| a.get(p) != b.get(p))
        .collect();
    changed
        .iter()
        .filter(|p| {
            !changed
                .iter()
                .any(|outer| p.len() > outer.len() && p.starts_with(&format!("{outer} ")))
        })
        .map(|p| p.to_string())
        .collect()
}

/// Each place with the digests of its values, sorted (a directive may appear several times).
fn by_place(f: &Fingerprint) -> BTreeMap<&str, Vec<u64>> {
    let mut m: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (place, d) in f {
        m.entry(place.as_str()).or_default().push(*d);
    }
    for v in m.values_mut() {
        v.sort_unstable();
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Config {
        crate::parse_str(text, std::path::Path::new("/virtual/petrel.conf"))
            .unwrap()
            .config
    }

    const BASE: &str = "smtp-listener 127.0.0.1:2525\nhttp-mgmt-port 8081\n\
        <source 0/0>\nalways-allow-relaying yes\n</source>\n\
        <domain example.com>\nmax-smtp-out 5\n</domain>\n\
        <acct-file /tmp/a.csv>\nrecords d\n</acct-file>\n";

    #[test]
    fn reload_only_changes_need_nothing() {
        let changed = BASE
            .replace("max-smtp-out 5", "max-smtp-out 9")
            .replace("always-allow-relaying yes", "always-allow-relaying no");
        assert!(restart_needed(&load(BASE), &load(&changed)).is_empty());
        assert!(restart_needed(&load(BASE), &load(BASE)).is_empty());
    }

    #[test]
    fn restart_only_changes_are_named_where_they_are() {
        let changed = BASE
            .replace("127.0.0.1:2525", "127.0.0.1:2526")
            .replace("records d", "records d,b")
            .replace("max-smtp-out 5", "max-smtp-out 9");
        assert_eq!(
            restart_needed(&load(BASE), &load(&changed)),
            vec![
                "<acct-file /tmp/a.csv> records".to_string(),
                "smtp-listener".to_string()
            ]
        );
        // A second listener line is a change too; a new section is named once.
        let more = format!(
            "{BASE}smtp-listener 127.0.0.1:2527\n<bounce-processor>\n<address-list>\ndomain b.example\n</address-list>\nreturn-path-key 1 0123456789abcdef0123\n</bounce-processor>\n"
        );
        assert_eq!(
            restart_needed(&load(BASE), &load(&more)),
            vec![
                "<bounce-processor>".to_string(),
                "smtp-listener".to_string()
            ]
        );
        // Removing the accounting file is named by its section alone.
        let without = BASE.replace("<acct-file /tmp/a.csv>\nrecords d\n</acct-file>\n", "");
        assert_eq!(
            restart_needed(&load(BASE), &load(&without)),
            vec!["<acct-file /tmp/a.csv>".to_string()]
        );
    }
}
