//! Listing ready issues: every page, pull requests left out, and each page asked for
//! with `If-None-Match`, so an unchanged repository is answered 304 page by page and
//! costs no rate-limit point.
//!
//! A 304 for page 1 says nothing about page 2 (with oldest-first order, new issues
//! land on the last page), so each page keeps its own ETag, issues and next link.

use std::collections::HashMap;
use std::sync::Mutex;

use http::StatusCode;
use scrum_core::{Error, ErrorKind, Labels, ReadyIssue, RepoName, Result, TaskId};

use crate::classify::{Subject, What};
use crate::dependencies::BlockerCounts;
use crate::known_labels::KnownLabels;
use crate::sync::lock;
use crate::transport::{Call, Transport};
use crate::wire::{self, encode_segment};

/// Pages per repository beyond which a listing is refused as runaway paging.
const MAX_PAGES: usize = 1000;

/// What one poll cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PollStats {
    /// Requests sent (one per page per repository).
    pub requests: u32,
    /// Of those, answered 304 Not Modified: free of rate-limit points.
    pub not_modified: u32,
    /// Ready issues found.
    pub issues: u32,
}

#[derive(Clone)]
struct Page {
    path: String,
    etag: String,
    issues: Vec<ReadyIssue>,
    next: Option<String>,
    /// GitHub sent a full page ([`PER_PAGE`] issues).
    full: bool,
}

/// The issues GitHub is asked for per page (its most).
const PER_PAGE: usize = 100;

/// The pages last seen per repository, and the last poll's cost.
#[derive(Default)]
pub(crate) struct Listing {
    pages: Mutex<HashMap<RepoName, Vec<Page>>>,
    last: Mutex<PollStats>,
}

impl Listing {
    pub(crate) fn last(&self) -> PollStats {
        *lock(&self.last)
    }

    pub(crate) fn record(&self, stats: PollStats) {
        *lock(&self.last) = stats;
    }
}

/// The first page's path: open issues with every ready label, oldest first.
fn first_page(repo: &RepoName, ready: &[String]) -> String {
    let labels: Vec<String> = ready.iter().map(|l| encode_segment(l.trim())).collect();
    format!(
        "/repos/{repo}/issues?state=open&labels={}&sort=created&direction=asc&per_page={PER_PAGE}",
        labels.join(",")
    )
}

/// What a listing reads with and writes to: the client's transport, its labels, and
/// the labels it knows exist (every label seen on a listed issue is recorded).
pub(crate) struct ListWith<'a> {
    pub(crate) transport: &'a Transport,
    pub(crate) labels: &'a Labels,
    pub(crate) known_labels: &'a KnownLabels,
    pub(crate) blockers: &'a BlockerCounts,
}

impl Listing {
    /// The open, ready, non-pull-request issues of `repo`, every page read, each
    /// asked for with the ETag it last came with.
    pub(crate) async fn list_repo(
        &self,
        with: &ListWith<'_>,
        repo: &RepoName,
        stats: &mut PollStats,
    ) -> Result<Vec<ReadyIssue>> {
        let old = lock(&self.pages).get(repo).cloned().unwrap_or_default();
        let what = What {
            action: "list the issues of",
            subject: Subject::Repo(repo.clone()),
        };
        let mut pages: Vec<Page> = Vec::new();
        let first = first_page(repo, &with.labels.ready);
        let mut path = Some(first.clone());
        while let Some(p) = path.take() {
            if pages.len() >= MAX_PAGES {
                return Err(Error::new(
                    ErrorKind::Internal,
                    format!("GitHub kept paging past {MAX_PAGES} pages while trying to {what}"),
                ));
            }
            let cached = old.get(pages.len()).filter(|c| c.path == p);
            let mut call = Call::get(p.clone(), what.clone());
            call.if_none_match = cached.map(|c| c.etag.clone());
            let reply = with.transport.send(&call).await?.success(&what)?;
            stats.requests += 1;
            let page = match (reply.status, cached) {
                (StatusCode::NOT_MODIFIED, Some(c)) => {
                    stats.not_modified += 1;
                    for issue in &c.issues {
                        with.blockers.listed_again(&issue.id);
                    }
                    let mut page = c.clone();
                    // A full page that was the last has no next link, and stays
                    // unchanged (304) when an issue lands after it: look further.
                    if page.full && page.next.is_none() {
                        page.next = Some(format!("{first}&page={}", pages.len() + 2));
                    }
                    page
                }
                (StatusCode::NOT_MODIFIED, None) => {
                    return Err(Error::new(
                        ErrorKind::Internal,
                        format!("GitHub answered 304 to an unconditional request to {what}"),
                    ));
                }
                _ => {
                    let raw: Vec<wire::Issue> = reply.json(&what)?;
                    Page {
                        path: p,
                        etag: reply.header("etag").unwrap_or_default().to_string(),
                        full: raw.len() >= PER_PAGE,
                        issues: ready_issues(with, repo, raw, &what)?,
                        next: wire::next_link(reply.header("link")),
                    }
                }
            };
            path = page.next.clone();
            pages.push(page);
        }
        let issues: Vec<ReadyIssue> = pages.iter().flat_map(|p| p.issues.clone()).collect();
        stats.issues += u32::try_from(issues.len()).unwrap_or(u32::MAX);
        // Pages without an ETag cannot be asked for conditionally: keep none of them.
        pages.retain(|p| !p.etag.is_empty());
        lock(&self.pages).insert(repo.clone(), pages);
        Ok(issues)
    }
}

/// The open, ready, non-pull-request issues of one page.
fn ready_issues(
    with: &ListWith<'_>,
    repo: &RepoName,
    raw: Vec<wire::Issue>,
    what: &What,
) -> Result<Vec<ReadyIssue>> {
    let mut out = Vec::with_capacity(raw.len());
    for issue in raw {
        let labels = issue.label_names();
        with.known_labels
            .remember(repo, labels.iter().map(String::as_str));
        if issue.pull_request.is_some() || issue.state != "open" || !with.labels.is_ready(&labels) {
            continue;
        }
        let created_at = wire::parse_time(&issue.created_at).ok_or_else(|| {
            Error::new(
                ErrorKind::Internal,
                format!(
                    "GitHub's answer to {what} has issue #{} with an unreadable created_at {:?}",
                    issue.number, issue.created_at
                ),
            )
        })?;
        let number = issue.number;
        if number == 0 {
            continue;
        }
        let id = TaskId::in_repo(repo, number);
        with.blockers.remember(&id, &issue, true);
        out.push(ReadyIssue {
            id,
            title: issue.title,
            body: issue.body.unwrap_or_default(),
            labels,
            created_at,
        });
    }
    Ok(out)
}
