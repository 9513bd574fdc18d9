//! Review state of the pull requests workers open ([`scrum_core::IssueSource::pull_state`]):
//! `GET /repos/{repo}/pulls/{n}` and, while it is open, `…/reviews`, both asked
//! with the ETag they last came with, so an unchanged pull request costs no
//! rate-limit point.

use std::collections::HashMap;
use std::sync::Mutex;

use http::StatusCode;
use scrum_core::review::PullState;
use scrum_core::{RepoName, Result};

use crate::classify::{Subject, What};
use crate::sync::lock;
use crate::transport::{Call, Transport};
use crate::wire::{PullReview, PullStatus};

/// The most answers kept; past it the cache starts over.
const MAX: usize = 10_000;

/// Answers by path, with their ETag.
#[derive(Default)]
pub(crate) struct ReviewCache(Mutex<HashMap<String, (String, String)>>);

impl ReviewCache {
    /// `GET path`, conditionally: the body (the cached one on a 304).
    async fn get(&self, transport: &Transport, path: String, what: &What) -> Result<String> {
        let cached = lock(&self.0).get(&path).cloned();
        let mut call = Call::get(path.clone(), what.clone());
        call.if_none_match = cached.as_ref().map(|(etag, _)| etag.clone());
        let reply = transport.send(&call).await?.success(what)?;
        if reply.status == StatusCode::NOT_MODIFIED {
            if let Some((_, body)) = cached {
                return Ok(body);
            }
        }
        if let Some(etag) = reply.header("etag") {
            let mut map = lock(&self.0);
            if map.len() >= MAX {
                map.clear();
            }
            map.insert(path, (etag.to_string(), reply.body.clone()));
        }
        Ok(reply.body)
    }

    /// The review state of pull request `number` of `repo`.
    pub(crate) async fn pull_state(
        &self,
        transport: &Transport,
        repo: &RepoName,
        number: u64,
    ) -> Result<PullState> {
        let what = What {
            action: "read a pull request of",
            subject: Subject::Repo(repo.clone()),
        };
        let path = format!("/repos/{repo}/pulls/{number}");
        let body = self.get(transport, path.clone(), &what).await?;
        let pull: PullStatus = parse(&body, &what)?;
        if pull.merged || pull.merged_at.is_some() {
            return Ok(PullState::Merged);
        }
        if pull.state != "open" {
            return Ok(PullState::Closed);
        }
        let body = self
            .get(transport, format!("{path}/reviews?per_page=100"), &what)
            .await?;
        let reviews: Vec<PullReview> = parse(&body, &what)?;
        Ok(review_state(&reviews))
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &str, what: &What) -> Result<T> {
    serde_json::from_str(body).map_err(|e| {
        scrum_core::Error::new(
            scrum_core::ErrorKind::Internal,
            format!("GitHub's answer to {what} has an unexpected shape"),
        )
        .with_source(e)
    })
}

/// Each reviewer's latest approval or request for changes counts (comments do
/// not): changes requested by anyone wins, else approved by anyone, else open.
fn review_state(reviews: &[PullReview]) -> PullState {
    let mut latest: HashMap<&str, &str> = HashMap::new();
    for r in reviews {
        let who = r.user.as_ref().map_or("", |u| u.login.as_str());
        match r.state.as_str() {
            "APPROVED" | "CHANGES_REQUESTED" | "DISMISSED" => {
                latest.insert(who, r.state.as_str());
            }
            _ => {}
        }
    }
    if latest.values().any(|s| *s == "CHANGES_REQUESTED") {
        PullState::ChangesRequested
    } else if latest.values().any(|s| *s == "APPROVED") {
        PullState::Approved
    } else {
        PullState::Open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(login: &str, state: &str) -> PullReview {
        serde_json::from_value(serde_json::json!({"user": {"login": login}, "state": state}))
            .unwrap()
    }

    #[test]
    fn each_reviewers_latest_word_counts() {
        assert_eq!(review_state(&[]), PullState::Open);
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
