//! Who vouches for an issue's text on GitHub: who applied its ready label (the
//! issue's events), who edited it last (GraphQL's `Issue.editor` and
//! `lastEditedAt`, and the timeline's renames, see `crate::provenance`), who opened it, and whether
//! each has write, maintain or admin permission on the repository (or is a GitHub
//! App, whose writes are what its installer allowed).
//!
//! Costs: the events are read page by page with the ETag each page last came with
//! (an unchanged issue answers 304 and costs no rate-limit point); permissions are
//! remembered for [`PERMISSION_FRESH`], so a poll of many issues labelled by the same
//! few maintainers costs one request per maintainer per minute at most; the GraphQL
//! query is sent only when the engine asks (an issue being queued, or one whose
//! text changed since its approval).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::StatusCode;
use scrum_core::{Error, Person, RepoName, Result, TaskId, Timestamp};

use crate::classify::{Subject, What};
use crate::client::{GitHubClient, issue_path, issue_what};
use crate::sync::lock;
use crate::transport::Call;
use crate::wire::{self, Actor, IssueEvent, encode_segment};

/// How long a permission read is trusted before it is read again.
pub(crate) const PERMISSION_FRESH: Duration = Duration::from_secs(60);

/// The most entries each cache keeps; past it the cache starts over.
const CACHE_MAX: usize = 10_000;

/// What [`GitHubClient`] remembers between trust reads.
#[derive(Default)]
pub(crate) struct TrustCache {
    /// Whether a login may approve in a repository, and when that was read.
    permissions: Mutex<HashMap<(RepoName, String), (bool, Instant)>>,
    /// Event pages by path, with the ETag they came with.
    events: Mutex<HashMap<String, EventPage>>,
}

/// One page of an issue's events as last read: its ETag, events and next page.
#[derive(Clone)]
struct EventPage {
    etag: String,
    events: Vec<IssueEvent>,
    next: Option<String>,
}

impl GitHubClient {
    /// Whether `actor` may approve work in `repo`: an app, or a collaborator with
    /// write, maintain or admin permission.
    pub(crate) async fn may_approve(&self, repo: &RepoName, actor: &Actor) -> Result<bool> {
        if actor.is_app() {
            return Ok(true);
        }
        let key = (repo.clone(), actor.login.to_ascii_lowercase());
        if let Some((may, at)) = lock(&self.inner.trust.permissions).get(&key) {
            if at.elapsed() < PERMISSION_FRESH {
                return Ok(*may);
            }
        }
        let what = What {
            action: "read a collaborator's permission in",
            subject: Subject::Repo(repo.clone()),
        };
        let path = format!(
            "/repos/{repo}/collaborators/{}/permission",
            encode_segment(&actor.login)
        );
        let reply = self
            .inner
            .transport
            .send(&Call::get(path, what.clone()))
            .await?;
        // 404: not a user GitHub knows (a deleted account reads as `ghost`).
        let may = if reply.status == StatusCode::NOT_FOUND {
            false
        } else {
            let p: wire::CollaboratorPermission = reply.success(&what)?.json(&what)?;
            p.may_approve()
        };
        let mut cache = lock(&self.inner.trust.permissions);
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(key, (may, Instant::now()));
        Ok(may)
    }

    /// A review asking for changes, with whether its author may approve work
    /// (as a ready label's author is judged), for `REWORK_ON_CHANGES_REQUESTED`:
    /// only a collaborator's text reaches an agent. A review without an author (a
    /// deleted account) may not.
    pub(crate) async fn change_request(
        &self,
        repo: &RepoName,
        review: wire::PullReview,
    ) -> Result<scrum_core::pull_gate::ChangeRequest> {
        let (login, may_approve) = match &review.user {
            Some(actor) => (actor.login.clone(), self.may_approve(repo, actor).await?),
            None => ("ghost".to_string(), false),
        };
        Ok(scrum_core::pull_gate::ChangeRequest {
            id: review.id.to_string(),
            reviewer: Person {
                login,
                may_approve,
                at: None,
            },
            body: review.body.unwrap_or_default(),
        })
    }

    /// Every event of the issue, oldest first, each page asked for with its ETag.
    async fn events(&self, id: &TaskId) -> Result<Vec<IssueEvent>> {
        let what = issue_what("read the events of", id);
        let mut all = Vec::new();
        let mut path = Some(format!("{}/events?per_page=100", issue_path(id)));
        while let Some(p) = path.take() {
            let cached = lock(&self.inner.trust.events).get(&p).cloned();
            let mut call = Call::get(p.clone(), what.clone());
            call.if_none_match = cached.as_ref().map(|c| c.etag.clone());
            let reply = self.inner.transport.send(&call).await?.success(&what)?;
            let (events, next) = match cached {
                Some(c) if reply.status == StatusCode::NOT_MODIFIED => (c.events, c.next),
                _ => {
                    let events: Vec<IssueEvent> = reply.json(&what)?;
                    let next = wire::next_link(reply.header("link"));
                    if let Some(etag) = reply.header("etag") {
                        let mut cache = lock(&self.inner.trust.events);
                        if cache.len() >= CACHE_MAX {
                            cache.clear();
                        }
                        let page = EventPage {
                            etag: etag.to_string(),
                            events: events.clone(),
                            next: next.clone(),
                        };
                        cache.insert(p, page);
                    }
                    (events, next)
                }
            };
            all.extend(events);
            path = next;
        }
        Ok(all)
    }

    async fn person(
        &self,
        repo: &RepoName,
        actor: &Actor,
        at: Option<Timestamp>,
    ) -> Result<Person> {
        Ok(Person {
            login: actor.login.clone(),
            may_approve: self.may_approve(repo, actor).await?,
            at,
        })
    }

    /// See [`scrum_core::IssueSource::labelled_by`].
    pub(crate) async fn labeller(&self, id: &TaskId) -> Result<Person> {
        let ready = &self.inner.labels.ready;
        let events = self.events(id).await?;
        let last = events.iter().rev().find(|e| {
            e.event == "labeled"
                && e.label
                    .as_ref()
                    .is_some_and(|l| ready.iter().any(|r| r.eq_ignore_ascii_case(l.name())))
        });
        match last.and_then(|e| e.actor.as_ref().map(|a| (a, e))) {
            Some((actor, e)) => {
                let mut actor = actor.clone();
                if e.performed_via_github_app.is_some() {
                    actor.kind = Some("Bot".into());
                }
                self.person(&id.repo_name(), &actor, wire::parse_time(&e.created_at))
                    .await
            }
            // A label whose application GitHub does not show is nobody's approval.
            None => Ok(Person {
                login: "unknown".into(),
                may_approve: false,
                at: None,
            }),
        }
    }

    /// See [`scrum_core::IssueSource::edited_by`]: the later of the body's last
    /// editor and the title's last renamer, from one GraphQL query.
    pub(crate) async fn editor(&self, id: &TaskId) -> Result<Option<Person>> {
        let facts = self.facts(std::slice::from_ref(id)).await?;
        let edited = match facts.into_iter().next() {
            Some(f) => f?.edited,
            None => return Err(Error::not_found(format!("GitHub has no issue {id}"))),
        };
        match edited {
            Some((actor, at)) => Ok(Some(self.person(&id.repo_name(), &actor, at).await?)),
            None => Ok(None),
        }
    }

    /// See [`scrum_core::IssueSource::opened_by`].
    pub(crate) async fn author(&self, id: &TaskId) -> Result<Person> {
        let what = issue_what("read", id);
        let reply = self
            .inner
            .transport
            .send(&Call::get(issue_path(id), what.clone()))
            .await?
            .success(&what)?;
        let issue: wire::Issue = reply.json(&what)?;
        match issue.user {
            Some(user) => {
                let at = wire::parse_time(&issue.created_at);
                self.person(&id.repo_name(), &user, at).await
            }
            None => Ok(Person {
                login: "unknown".into(),
                may_approve: false,
                at: None,
            }),
        }
    }
}
