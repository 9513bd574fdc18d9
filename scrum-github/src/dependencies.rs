//! GitHub's own issue dependencies ([`scrum_core::IssueSource::blocked_by`]): an
//! issue's `issue_dependencies_summary` (in every listing and read of it) says how
//! many open issues block it, and only then is
//! `GET /repos/{repo}/issues/{n}/dependencies/blocked_by` asked. The summary of an
//! issue in the latest listing is fresh (the listing reads every page
//! conditionally, and a new dependency changes the page); any other issue's is read
//! again, conditionally, so an unchanged issue costs no rate-limit point.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use scrum_core::{Error, ErrorKind, Result, TaskId};

use crate::client::{issue_path, issue_what};
use crate::sync::lock;
use crate::transport::{Call, Transport};
use crate::wire::{self, DependencyIssue};

/// The most summaries kept; past it the map starts over.
const MAX: usize = 10_000;

/// The open-blocker count of each issue, from the last listing or read of it,
/// with the listing it came from (0: a read of the issue).
#[derive(Default)]
pub(crate) struct BlockerCounts {
    counts: Mutex<HashMap<TaskId, (u64, u64)>>,
    listing: AtomicU64,
}

impl BlockerCounts {
    /// A listing starts: counts it records are the fresh ones.
    pub(crate) fn new_listing(&self) {
        self.listing.fetch_add(1, Ordering::SeqCst);
    }

    /// Records what GitHub said of `id` (nothing, when it said nothing), in a
    /// listing or in a read of the issue.
    pub(crate) fn remember(&self, id: &TaskId, issue: &wire::Issue, listed: bool) {
        let Some(summary) = issue.issue_dependencies_summary else {
            return;
        };
        let from = if listed {
            self.listing.load(Ordering::SeqCst)
        } else {
            0
        };
        let mut map = lock(&self.counts);
        if map.len() >= MAX {
            map.clear();
        }
        map.insert(id.clone(), (summary.blocked_by, from));
    }

    /// A listing found `id` on a page GitHub answered 304: its count stands, fresh.
    pub(crate) fn listed_again(&self, id: &TaskId) {
        let current = self.listing.load(Ordering::SeqCst);
        if let Some((_, from)) = lock(&self.counts).get_mut(id).filter(|(_, f)| *f != 0) {
            *from = current;
        }
    }

    /// The count the latest listing gave `id`, if it listed it.
    pub(crate) fn listed(&self, id: &TaskId) -> Option<u64> {
        let current = self.listing.load(Ordering::SeqCst);
        lock(&self.counts)
            .get(id)
            .filter(|(_, from)| *from != 0 && *from == current)
            .map(|(n, _)| *n)
    }

    /// The count last seen for `id`.
    pub(crate) fn get(&self, id: &TaskId) -> Option<u64> {
        lock(&self.counts).get(id).map(|(n, _)| *n)
    }
}

/// Every issue GitHub lists as blocking `id` (every page).
pub(crate) async fn list_blocked_by(transport: &Transport, id: &TaskId) -> Result<Vec<TaskId>> {
    let what = issue_what("read the dependencies of", id);
    let mut out = Vec::new();
    let mut path = Some(format!(
        "{}/dependencies/blocked_by?per_page=100",
        issue_path(id)
    ));
    while let Some(p) = path.take() {
        let reply = transport
            .send(&Call::get(p, what.clone()))
            .await?
            .success(&what)?;
        let page: Vec<DependencyIssue> = reply.json(&what)?;
        for d in page {
            out.push(blocker_id(&d).ok_or_else(|| {
                Error::new(
                    ErrorKind::Internal,
                    format!(
                        "GitHub's answer to {what} names an issue with an unreadable repository_url {:?}",
                        d.repository_url
                    ),
                )
            })?);
        }
        path = wire::next_link(reply.header("link"));
    }
    Ok(out)
}

/// `owner/repo#n` from an entry's `repository_url` (`…/repos/owner/repo`).
fn blocker_id(d: &DependencyIssue) -> Option<TaskId> {
    let (_, repo) = d.repository_url.rsplit_once("/repos/")?;
    TaskId::new(repo.trim_end_matches('/'), d.number).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blockers_are_named_by_their_repository_url() {
        let d = DependencyIssue {
            number: 7,
            repository_url: "https://api.github.com/repos/acme/api".into(),
        };
        assert_eq!(blocker_id(&d).unwrap().to_string(), "acme/api#7");
        let bad = DependencyIssue {
            number: 7,
            repository_url: "https://api.github.com/acme".into(),
        };
        assert_eq!(blocker_id(&bad), None);
    }
}
