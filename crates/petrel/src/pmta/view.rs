//! `pmta show …` with PowerMTA's list options (`--sort`, `--maxitems`, `--paused=`, a queue
//! pattern…), which petrel's own `show` verbs do not take: the list is fetched from the
//! management API as petrel's typed answer, filtered, sorted and cut here, and printed by
//! petrel's own table code.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use petrel_delivery::{queue_matcher, QueueKey};
use petrel_mgmt_api::{
    paths, Data, DomainRow, Domains, JobRow, Jobs, Mode, QueueRow, Queues, VmtaRow, Vmtas,
};

use crate::mgmt_client::NO_QUERY;
use crate::{admin, render};

/// The lists `show` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    /// `show queues` / `show topqueues`.
    Queues,
    /// `show domains` / `show topdomains`.
    Domains,
    /// `show jobs`.
    Jobs,
    /// `show vmtas`.
    Vmtas,
}

impl List {
    /// petrel's `show` verb.
    pub(super) fn verb(self) -> &'static str {
        match self {
            List::Queues => "queues",
            List::Domains => "domains",
            List::Jobs => "jobs",
            List::Vmtas => "vmtas",
        }
    }
}

/// What PowerMTA's filters and `--sort` read of a row of one of the lists.
trait Row {
    /// The name `--sort=name` orders by.
    fn name(&self) -> &str;
    /// What a `domain[/vmta]` pattern is matched against.
    fn key(&self) -> QueueKey {
        QueueKey {
            domain: self.name().to_ascii_lowercase(),
            vmta: String::new(),
        }
    }
    /// Recipients waiting (`--sort=rcpt`).
    fn recipients(&self) -> u64;
    /// Size in KiB (`--sort=size`), for the lists that have it.
    fn size(&self) -> Option<u64> {
        None
    }
    /// The queue, for the filters only queues answer (`--paused`, `--mode`, `--connected`,
    /// `--errors`).
    fn queue(&self) -> Option<&QueueRow> {
        None
    }
}

impl Row for QueueRow {
    fn name(&self) -> &str {
        &self.queue
    }
    fn key(&self) -> QueueKey {
        QueueKey {
            domain: self.domain.clone(),
            vmta: self.vmta.clone(),
        }
    }
    fn recipients(&self) -> u64 {
        self.rcp
    }
    fn size(&self) -> Option<u64> {
        Some(self.kb)
    }
    fn queue(&self) -> Option<&QueueRow> {
        Some(self)
    }
}

impl Row for DomainRow {
    fn name(&self) -> &str {
        &self.domain
    }
    fn recipients(&self) -> u64 {
        self.rcp
    }
    fn size(&self) -> Option<u64> {
        Some(self.kb)
    }
}

impl Row for JobRow {
    fn name(&self) -> &str {
        &self.job
    }
    fn recipients(&self) -> u64 {
        self.recipients
    }
}

impl Row for VmtaRow {
    fn name(&self) -> &str {
        &self.name
    }
    fn recipients(&self) -> u64 {
        self.recipients
    }
}

/// PowerMTA's `--sort=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// By name, ascending.
    Name,
    /// Most recipients first.
    Rcpt,
    /// Largest first.
    Size,
}

/// A `show` list and PowerMTA's filters over it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct View {
    /// Which list; `None` only in `Default`.
    pub list: Option<List>,
    /// `domain[/vmta]` with `*` wildcards (queues), or a domain pattern (domains).
    pub pattern: Option<String>,
    /// `--paused=yes|no`.
    pub paused: Option<bool>,
    /// `--mode=normal|backoff`.
    pub mode: Option<Mode>,
    /// `--connected=yes|no`.
    pub connected: Option<bool>,
    /// `--errors`: only queues whose last attempt failed.
    pub errors: bool,
    /// `--sort=`.
    pub sort: Option<Sort>,
    /// `--maxitems=`.
    pub max_items: Option<usize>,
    /// `pmta --json`.
    pub json: bool,
}

impl View {
    /// Filters, sorts and cuts `rows` in place; returns the number of matching rows before
    /// `--maxitems`, which petrel's table prints as "N of TOTAL".
    fn apply<R: Row>(&self, rows: &mut Vec<R>) -> u64 {
        let pattern = self.pattern.as_deref().map(queue_matcher);
        rows.retain(|r| {
            let q = r.queue();
            pattern.as_ref().is_none_or(|m| m(&r.key()))
                && self.paused.is_none_or(|p| q.is_some_and(|q| q.paused == p))
                && self.mode.is_none_or(|m| q.is_some_and(|q| q.mode == m))
                && self
                    .connected
                    .is_none_or(|c| q.is_some_and(|q| (q.conn > 0) == c))
                && (!self.errors
                    || q.is_some_and(|q| q.last_error.as_deref().is_some_and(|e| !e.is_empty())))
        });
        match self.sort {
            Some(Sort::Name) => rows.sort_by(|a, b| a.name().cmp(b.name())),
            Some(Sort::Rcpt) => rows.sort_by_key(|r| std::cmp::Reverse(r.recipients())),
            Some(Sort::Size) => {
                rows.sort_by_key(|r| std::cmp::Reverse(r.size().unwrap_or(r.recipients())))
            }
            None => {}
        }
        let total = rows.len() as u64;
        if let Some(max) = self.max_items {
            rows.truncate(max);
        }
        total
    }
}

/// Fetches the list, applies PowerMTA's filters and prints it as `petrel show` does.
pub(super) fn show(view: &View, config: Option<&Path>) -> Result<ExitCode> {
    let Some(list) = view.list else {
        return Ok(ExitCode::SUCCESS);
    };
    let client = admin::client(config)?;
    match list {
        List::Queues => {
            let mut body: Data<Queues> = client.get(paths::QUEUES, NO_QUERY)?;
            body.data.total = Some(view.apply(&mut body.data.queues));
            admin::print(&body, view.json, |d| render::queues(&d.data))
        }
        List::Domains => {
            let mut body: Data<Domains> = client.get(paths::DOMAINS, NO_QUERY)?;
            body.data.total = Some(view.apply(&mut body.data.domains));
            admin::print(&body, view.json, |d| render::domains(&d.data))
        }
        List::Jobs => {
            let mut body: Data<Jobs> = client.get(paths::JOBS, NO_QUERY)?;
            body.data.total = Some(view.apply(&mut body.data.jobs));
            admin::print(&body, view.json, |d| render::jobs(&d.data))
        }
        List::Vmtas => {
            let mut body: Data<Vmtas> = client.get(paths::VMTAS, NO_QUERY)?;
            body.data.total = Some(view.apply(&mut body.data.vmtas));
            admin::print(&body, view.json, |d| render::vmtas(&d.data))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(line: &str) -> View {
        let words: Vec<String> = line.split_whitespace().map(String::from).collect();
        match super::super::plan(&words, None) {
            Ok(super::super::Plan::View(v)) => v,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn queues() -> Vec<QueueRow> {
        let q = |name: &str, rcp: u64, kb: u64, paused: bool, mode: Mode, conn: u32, err: &str| {
            let (domain, vmta) = name.split_once('/').unwrap();
            QueueRow {
                queue: name.into(),
                domain: domain.into(),
                vmta: vmta.into(),
                rcp,
                msg: rcp,
                kb,
                conn,
                paused,
                mode,
                backoff_since: None,
                retry: false,
                retry_until: None,
                last_error: Some(err.into()).filter(|e: &String| !e.is_empty()),
            }
        };
        vec![
            q("a.com/v1", 1, 50, false, Mode::Normal, 0, ""),
            q("b.com/v1", 9, 10, true, Mode::Normal, 0, "ECONNREFUSED"),
            q("c.com/v2", 5, 90, false, Mode::Backoff, 2, ""),
            q("b.com/v2", 3, 20, false, Mode::Normal, 1, ""),
        ]
    }

    fn names(rows: &[QueueRow]) -> Vec<&str> {
        rows.iter().map(|q| q.queue.as_str()).collect()
    }

    #[test]
    fn filters_sort_and_cut_like_powermta() {
        let run_total = |line: &str| {
            let mut rows = queues();
            let total = view(line).apply(&mut rows);
            (rows, total)
        };
        let run = |line: &str| run_total(line).0;
        let (b, total) = run_total("show topqueues");
        assert_eq!(names(&b), ["b.com/v1", "c.com/v2", "b.com/v2", "a.com/v1"]);
        assert_eq!(total, 4);
        let (b, total) = run_total("show queues --sort=size --maxitems=2");
        assert_eq!(names(&b), ["c.com/v2", "a.com/v1"]);
        assert_eq!(total, 4, "total counts matches before --maxitems");
        assert_eq!(
            names(&run("show queues --sort=name")),
            ["a.com/v1", "b.com/v1", "b.com/v2", "c.com/v2"]
        );
        assert_eq!(names(&run("show queues b.com")), ["b.com/v1", "b.com/v2"]);
        assert_eq!(names(&run("show queues */v2")), ["c.com/v2", "b.com/v2"]);
        assert_eq!(names(&run("show queues --paused=yes")), ["b.com/v1"]);
        assert_eq!(names(&run("show queues --mode=backoff")), ["c.com/v2"]);
        assert_eq!(
            names(&run("show queues --connected=yes")),
            ["c.com/v2", "b.com/v2"]
        );
        assert_eq!(names(&run("show queues --errors")), ["b.com/v1"]);
        // A pattern alone keeps the daemon's order.
        assert_eq!(
            names(&run("show queues *.com")),
            ["a.com/v1", "b.com/v1", "c.com/v2", "b.com/v2"]
        );
    }
}
