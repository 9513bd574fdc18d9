//! Review state of the pull requests workers open ([`scrum_core::IssueSource::pull_state`],
//! and with the request for changes behind it, [`scrum_core::IssueSource::pull_review`]):
//! `GET /repos/{repo}/pulls/{n}` and, while it is open, `…/reviews`, both asked
//! with the ETag they last came with, so an unchanged pull request costs no
//! rate-limit point.

use std::collections::HashMap;
use std::sync::Mutex;

use http::StatusCode;
use scrum_core::pull_gate::PullState;
use scrum_core::{RepoName, Result};

use crate::classify::{Subject, What};
use crate::sync::lock;
use crate::transport::{Call, Transport};
use crate::wire::{self, PullReview, PullStatus};

/// The most answers kept; past it the cache starts over.
const MAX: usize = 10_000;

/// Answers by path, with their ETag and `Link` header.
#[derive(Default)]
pub(crate) struct ReviewCache(Mutex<HashMap<String, Cached>>);

/// One answer as last read.
#[derive(Clone)]
struct Cached {
    etag: String,
    body: String,
    link: Option<String>,
}

/// One page of an answer: its body and the path of the next page.
pub(crate) struct Page {
    pub(crate) body: String,
    pub(crate) next: Option<String>,
    /// Whether GitHub said it had not changed since it was last read (a 304).
    pub(crate) unchanged: bool,
}

impl ReviewCache {
    /// `GET path`, conditionally: the body (the cached one on a 304).
    pub(crate) async fn get(
        &self,
        transport: &Transport,
        path: String,
        what: &What,
    ) -> Result<String> {
        Ok(self.page(transport, path, what).await?.body)
    }

    /// `GET path`, conditionally: the body and next page (the cached ones on a
    /// 304).
    pub(crate) async fn page(
        &self,
        transport: &Transport,
        path: String,
        what: &What,
    ) -> Result<Page> {
        let page = self.fetch(transport, path, what, false).await?;
        Ok(page.unwrap_or(Page {
            body: String::new(),
            next: None,
            unchanged: false,
        }))
    }

    /// As [`ReviewCache::page`], but `None` for a 404 or a 403 that is no rate
    /// limit (a token that may not read it).
    pub(crate) async fn page_if_found(
        &self,
        transport: &Transport,
        path: String,
        what: &What,
    ) -> Result<Option<Page>> {
        self.fetch(transport, path, what, true).await
    }

    /// `GET path` with the ETag it last came with; `None` for a 403 or 404 when
    /// `tolerate`, else those fail as GitHub's answers are classified.
    async fn fetch(
        &self,
        transport: &Transport,
        path: String,
        what: &What,
        tolerate: bool,
    ) -> Result<Option<Page>> {
        let cached = lock(&self.0).get(&path).cloned();
        let mut call = Call::get(path.clone(), what.clone());
        call.if_none_match = cached.as_ref().map(|c| c.etag.clone());
        let reply = transport.send(&call).await?;
        if tolerate && matches!(reply.status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN) {
            return Ok(None);
        }
        let reply = reply.success(what)?;
        if reply.status == StatusCode::NOT_MODIFIED {
            if let Some(c) = cached {
                return Ok(Some(Page {
                    body: c.body,
                    next: wire::next_link(c.link.as_deref()),
                    unchanged: true,
                }));
            }
        }
        let link = reply.header("link").map(str::to_string);
        if let Some(etag) = reply.header("etag") {
            let mut map = lock(&self.0);
            if map.len() >= MAX {
                map.clear();
            }
            let entry = Cached {
                etag: etag.to_string(),
                body: reply.body.clone(),
                link: link.clone(),
            };
            map.insert(path, entry);
        }
        Ok(Some(Page {
            next: wire::next_link(link.as_deref()),
            body: reply.body,
            unchanged: false,
        }))
    }

    /// Every page from `path` on, each conditionally, parsed and joined.
    pub(crate) async fn all_pages<T: serde::de::DeserializeOwned>(
        &self,
        transport: &Transport,
        path: String,
        what: &What,
    ) -> Result<Vec<T>> {
        let mut all = Vec::new();
        let mut path = Some(path);
        while let Some(p) = path.take() {
            let page = self.page(transport, p, what).await?;
            let items: Vec<T> = parse(&page.body, what)?;
            all.extend(items);
            path = page.next;
        }
        Ok(all)
    }

    /// Pull request `number` of `repo` as `GET /repos/{repo}/pulls/{n}` answers.
    pub(crate) async fn pull(
        &self,
        transport: &Transport,
        repo: &RepoName,
        number: u64,
    ) -> Result<String> {
        Ok(self.pull_page(transport, repo, number).await?.body)
    }

    /// As [`ReviewCache::pull`], saying whether it changed since the last read.
    pub(crate) async fn pull_page(
        &self,
        transport: &Transport,
        repo: &RepoName,
        number: u64,
    ) -> Result<Page> {
        let path = format!("/repos/{repo}/pulls/{number}");
        self.page(transport, path, &pull_what(repo)).await
    }

    /// The review state of pull request `number` of `repo`, and while changes are
    /// requested, the latest review asking for them.
    pub(crate) async fn pull_review(
        &self,
        transport: &Transport,
        repo: &RepoName,
        number: u64,
    ) -> Result<(PullState, Option<PullReview>)> {
        let body = self.pull(transport, repo, number).await?;
        self.review(transport, repo, number, &body).await
    }

    /// As [`ReviewCache::pull_review`], with the pull request's answer (`pull`)
    /// already read.
    pub(crate) async fn review(
        &self,
        transport: &Transport,
        repo: &RepoName,
        number: u64,
        pull: &str,
    ) -> Result<(PullState, Option<PullReview>)> {
        let what = pull_what(repo);
        let pull: PullStatus = parse(pull, &what)?;
        if pull.merged || pull.merged_at.is_some() {
            return Ok((PullState::Merged, None));
        }
        if pull.state != "open" {
            return Ok((PullState::Closed, None));
        }
        let path = format!("/repos/{repo}/pulls/{number}/reviews?per_page=100");
        let body = self.get(transport, path, &what).await?;
        let reviews: Vec<PullReview> = parse(&body, &what)?;
        let state = review_state(&reviews);
        let request = (state == PullState::ChangesRequested)
            .then(|| latest_request(&reviews))
            .flatten()
            .cloned();
        Ok((state, request))
    }
}

fn pull_what(repo: &RepoName) -> What {
    What {
        action: "read a pull request of",
        subject: Subject::Repo(repo.clone()),
    }
}

pub(crate) fn parse<T: serde::de::DeserializeOwned>(body: &str, what: &What) -> Result<T> {
    serde_json::from_str(body).map_err(|e| {
        scrum_core::Error::new(
            scrum_core::ErrorKind::Internal,
            format!("GitHub's answer to {what} has an unexpected shape"),
        )
        .with_source(e)
    })
}

/// Each reviewer's latest approval, request for changes or dismissal (comments are
/// no word on the state), in the order they were given.
fn latest_words(reviews: &[PullReview]) -> Vec<&PullReview> {
    let mut latest: HashMap<&str, usize> = HashMap::new();
    for (i, r) in reviews.iter().enumerate() {
        if matches!(
            r.state.as_str(),
            "APPROVED" | "CHANGES_REQUESTED" | "DISMISSED"
        ) {
            latest.insert(r.user.as_ref().map_or("", |u| u.login.as_str()), i);
        }
    }
    let mut at: Vec<usize> = latest.into_values().collect();
    at.sort_unstable();
    at.into_iter().map(|i| &reviews[i]).collect()
}

/// Each reviewer's latest word counts: changes requested by anyone wins, else
/// approved by anyone, else open.
fn review_state(reviews: &[PullReview]) -> PullState {
    let words = latest_words(reviews);
    if words.iter().any(|r| r.state == "CHANGES_REQUESTED") {
        PullState::ChangesRequested
    } else if words.iter().any(|r| r.state == "APPROVED") {
        PullState::Approved
    } else {
        PullState::Open
    }
}

/// The latest review asking for changes that is still its reviewer's latest word.
fn latest_request(reviews: &[PullReview]) -> Option<&PullReview> {
    let words = latest_words(reviews);
    words
        .into_iter()
        .rev()
        .find(|r| r.state == "CHANGES_REQUESTED")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(login: &str, state: &str) -> PullReview {
        serde_json::from_value(serde_json::json!({"user": {"login": login}, "state": state}))
            .unwrap()
    }

    fn said(id: u64, login: &str, state: &str, body: &str) -> PullReview {
        serde_json::from_value(serde_json::json!({
            "id": id, "user": {"login": login}, "state": state, "body": body
        }))
        .unwrap()
    }

    #[test]
    fn the_latest_standing_request_for_changes_is_named() {
        let id = |rs: &[PullReview]| latest_request(rs).map(|r| r.id);
        assert_eq!(id(&[]), None);
        let a = said(1, "a", "CHANGES_REQUESTED", "rename foo");
        let b = said(2, "b", "CHANGES_REQUESTED", "add a test");
        assert_eq!(id(&[a.clone(), b.clone()]), Some(2));
        // b approved since: a's request stands.
        let b_ok = said(3, "b", "APPROVED", "");
        assert_eq!(id(&[a.clone(), b.clone(), b_ok]), Some(1));
        // A comment is no word on the state.
        let c = said(4, "a", "COMMENTED", "nit");
        assert_eq!(id(&[a.clone(), c]), Some(1));
        let a2 = said(5, "a", "CHANGES_REQUESTED", "and bar");
        assert_eq!(
            latest_request(&[a, a2]).unwrap().body.as_deref(),
            Some("and bar")
        );
    }

    #[test]
    fn each_reviewers_latest_word_counts() {
        assert_eq!(review_state(&[]), PullState::Open);
        assert_eq!(
            review_state(&[said(1, "a", "CHANGES_REQUESTED", "x")]),
            PullState::ChangesRequested
        );
        assert_eq!(review_state(&[review("a", "COMMENTED")]), PullState::Open);
        assert_eq!(
            review_state(&[review("a", "CHANGES_REQUESTED"), review("a", "APPROVED")]),
            PullState::Approved
        );
        assert_eq!(
            review_state(&[review("a", "APPROVED"), review("b", "CHANGES_REQUESTED")]),
            PullState::ChangesRequested
        );
        assert_eq!(
            review_state(&[review("b", "CHANGES_REQUESTED"), review("b", "DISMISSED")]),
            PullState::Open
        );
    }
}
