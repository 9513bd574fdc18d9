//! Trust reads in batches: one GraphQL query, with an alias per repository and per
//! issue, reads for up to [`BATCH`] issues who last applied a ready label (the
//! timeline's last `LabeledEvent`s), who last edited the body and when, who last
//! renamed it, who opened it, and its state and labels. Batches go out together
//! (the transport bounds how many at once); permissions are then read once per
//! person and repository (and remembered, see `crate::trust`).
//!
//! Costs: a batch of 50 issues is one GraphQL point (GitHub counts the requests its
//! connections need, two per issue, over 100) and one round trip, where the REST
//! reads cost two or three requests per issue.

use std::collections::HashMap;

use http::Method;
use scrum_core::{Error, ErrorKind, Person, Provenance, RepoName, Result, TaskId, Timestamp};
use serde_json::json;

use crate::classify::{Subject, What};
use crate::client::GitHubClient;
use crate::transport::Call;
use crate::wire::{self, Actor, GraphQlAnswer, TrustNode};

/// The most issues one query asks for. Each costs 201 nodes (itself, 100 labels,
/// 100 timeline items), far below GraphQL's 500,000, and two connection requests:
/// 50 issues make one point.
pub(crate) const BATCH: usize = 50;

/// Someone, and when they did it (when GitHub says).
pub(crate) type Stamp = (Actor, Option<Timestamp>);

/// What the trust query read of one issue.
#[derive(Clone, Debug)]
pub(crate) struct IssueFacts {
    /// Whether it is open now.
    pub(crate) open: bool,
    /// Its labels now.
    pub(crate) labels: Vec<String>,
    /// The last application of a ready label, when among the timeline items read.
    pub(crate) labelled: Option<Stamp>,
    /// The later of the last body edit and the last rename.
    pub(crate) edited: Option<Stamp>,
    /// Who opened it, and when.
    pub(crate) author: Option<Stamp>,
}

/// The fields read of each issue (a fragment the query spreads into every alias).
const FRAGMENT: &str = "fragment trust on Issue { number state createdAt \
    author { login __typename } editor { login __typename } lastEditedAt \
    labels(first: 100) { nodes { name } } \
    timelineItems(last: 100, itemTypes: [LABELED_EVENT, RENAMED_TITLE_EVENT]) { nodes { \
    __typename ... on LabeledEvent { createdAt actor { login __typename } label { name } } \
    ... on RenamedTitleEvent { createdAt actor { login __typename } } } } }";

/// The query for `ids` (at most [`BATCH`]): repository `r{k}` holds issue `i{n}`,
/// `n` being the id's index. Owner and name need no escaping: GitHub's names are
/// letters, digits, `.`, `_` and `-` (checked by [`RepoName`]).
fn query(ids: &[TaskId]) -> String {
    let mut repos: Vec<(RepoName, Vec<usize>)> = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        let repo = id.repo_name();
        match repos.iter_mut().find(|(r, _)| *r == repo) {
            Some((_, list)) => list.push(n),
            None => repos.push((repo, vec![n])),
        }
    }
    let mut q = String::from("query { rateLimit { cost } ");
    for (k, (repo, list)) in repos.iter().enumerate() {
        q.push_str(&format!(
            "r{k}: repository(owner: \"{}\", name: \"{}\") {{ ",
            repo.owner(),
            repo.name()
        ));
        for n in list {
            q.push_str(&format!(
                "i{n}: issue(number: {}) {{ ...trust }} ",
                ids[*n].number()
            ));
        }
        q.push_str("} ");
    }
    q.push_str("} ");
    q.push_str(FRAGMENT);
    q
}

/// The repository alias each id's issue is under in [`query`].
fn repo_aliases(ids: &[TaskId]) -> Vec<String> {
    let mut seen: Vec<RepoName> = Vec::new();
    ids.iter()
        .map(|id| {
            let repo = id.repo_name();
            let k = seen.iter().position(|r| *r == repo).unwrap_or_else(|| {
                seen.push(repo);
                seen.len() - 1
            });
            format!("r{k}")
        })
        .collect()
}

fn stamp(actor: Option<Actor>, at: Option<&str>) -> Option<Stamp> {
    actor.map(|a| (a, at.and_then(wire::parse_time)))
}

/// Who GitHub no longer names (a deleted account): nobody's approval.
fn unknown() -> Person {
    Person {
        login: "unknown".into(),
        may_approve: false,
        at: None,
    }
}

/// The later of two stamps (a known time wins over an unknown one).
fn later(a: Option<Stamp>, b: Option<Stamp>) -> Option<Stamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.1 > a.1 { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// The facts of one issue node, its ready labels being `ready`.
fn facts_of(node: TrustNode, ready: &[String]) -> IssueFacts {
    let is_ready = |name: &str| ready.iter().any(|r| r.eq_ignore_ascii_case(name));
    let mut labelled = None;
    let mut renamed = None;
    for item in node.timeline_items.nodes {
        let at = item.created_at.as_deref();
        match item.typename.as_str() {
            "LabeledEvent" if item.label.as_ref().is_some_and(|l| is_ready(l.name())) => {
                labelled = stamp(item.actor, at).or(labelled);
            }
            "RenamedTitleEvent" => renamed = stamp(item.actor, at).or(renamed),
            _ => {}
        }
    }
    let body = stamp(node.editor, node.last_edited_at.as_deref());
    IssueFacts {
        open: node.state.eq_ignore_ascii_case("open"),
        labels: node
            .labels
            .nodes
            .iter()
            .map(|l| l.name().to_string())
            .collect(),
        labelled,
        edited: later(body, renamed),
        author: stamp(node.author, node.created_at.as_deref()),
    }
}

impl GitHubClient {
    /// The facts of each of `ids`, in order, read [`BATCH`] at a time, the
    /// batches together. An issue GitHub does not have is `NotFound`; the issues
    /// of a batch that failed (its retries spent) carry its error.
    ///
    /// # Errors
    /// A rate limit: every request would meet it.
    pub(crate) async fn facts(&self, ids: &[TaskId]) -> Result<Vec<Result<IssueFacts>>> {
        let chunks: Vec<&[TaskId]> = ids.chunks(BATCH).collect();
        let answers = futures::future::join_all(chunks.iter().map(|c| self.facts_batch(c))).await;
        let mut out = Vec::with_capacity(ids.len());
        for (chunk, answer) in chunks.iter().zip(answers) {
            match answer {
                Ok(facts) => out.extend(facts),
                Err(e) if e.kind() == ErrorKind::RateLimited => return Err(e),
                Err(e) => out.extend(chunk.iter().map(|_| Err(Error::new(e.kind(), e.message())))),
            }
        }
        Ok(out)
    }

    async fn facts_batch(&self, ids: &[TaskId]) -> Result<Vec<Result<IssueFacts>>> {
        let Some(first) = ids.first() else {
            return Ok(Vec::new());
        };
        let what = What {
            action: "read who vouches for the issues of",
            subject: Subject::Repo(first.repo_name()),
        };
        let body = json!({ "query": query(ids) });
        let call =
            Call::with_body(Method::POST, "/graphql".into(), body, what.clone()).idempotent();
        let reply = self.inner.transport.send(&call).await?.success(&what)?;
        let answer: GraphQlAnswer = reply.json(&what)?;
        let errors = answer.errors.unwrap_or_default();
        if let Some(e) = errors
            .iter()
            .find(|e| e.kind.as_deref() == Some("RATE_LIMITED"))
        {
            return Err(Error::new(
                ErrorKind::RateLimited,
                format!("GitHub's GraphQL budget is used up: {}", e.message),
            ));
        }
        let Some(mut data) = answer.data else {
            let message = errors.first().map_or("no data", |e| e.message.as_str());
            return Err(Error::unavailable(format!(
                "GitHub's GraphQL answer to {what}: {message}"
            )));
        };
        self.inner.transport.spent_graphql(&call, &data);
        let ready = &self.inner.labels.ready;
        let aliases = repo_aliases(ids);
        Ok(ids
            .iter()
            .enumerate()
            .map(|(n, id)| {
                let node = data
                    .get_mut(&aliases[n])
                    .and_then(|r| r.get_mut(format!("i{n}")))
                    .map(serde_json::Value::take)
                    .filter(|v| !v.is_null());
                let Some(node) = node else {
                    return Err(Error::not_found(format!("GitHub has no issue {id}")));
                };
                let node: TrustNode = serde_json::from_value(node).map_err(|e| {
                    Error::new(
                        ErrorKind::Internal,
                        format!("GitHub's answer to {what} has an unexpected shape"),
                    )
                    .with_source(e)
                })?;
                Ok(facts_of(node, ready))
            })
            .collect())
    }

    /// See [`scrum_core::IssueSource::provenance`]: [`GitHubClient::facts`], then
    /// each person's permission once. A ready label whose application is not among
    /// the timeline items read (over a hundred label events since) is looked up
    /// in the issue's events.
    pub(crate) async fn provenance_of(
        &self,
        ids: &[TaskId],
        author: bool,
    ) -> Result<Vec<Result<Provenance>>> {
        let facts = self.facts(ids).await?;
        let mut people: HashMap<(RepoName, String), Actor> = HashMap::new();
        for (id, f) in ids.iter().zip(&facts) {
            let Ok(f) = f else { continue };
            let who = [
                &f.labelled,
                &f.edited,
                if author { &f.author } else { &None },
            ];
            for (actor, _) in who.into_iter().flatten() {
                let key = (id.repo_name(), actor.login.to_ascii_lowercase());
                people.entry(key).or_insert_with(|| actor.clone());
            }
        }
        let reads = people.iter().map(|((repo, login), actor)| async move {
            let may = self.may_approve(repo, actor).await?;
            Ok::<_, Error>(((repo.clone(), login.clone()), may))
        });
        let may: HashMap<(RepoName, String), bool> = futures::future::try_join_all(reads)
            .await?
            .into_iter()
            .collect();
        let person = |id: &TaskId, (actor, at): &Stamp| Person {
            login: actor.login.clone(),
            may_approve: actor.is_app()
                || may
                    .get(&(id.repo_name(), actor.login.to_ascii_lowercase()))
                    .copied()
                    .unwrap_or(false),
            at: *at,
        };
        let mut out = Vec::with_capacity(ids.len());
        for (id, f) in ids.iter().zip(facts) {
            let f = match f {
                Ok(f) => f,
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            let labelled_by = match &f.labelled {
                Some(s) => person(id, s),
                None => self.labeller(id).await?,
            };
            out.push(Ok(Provenance {
                still_ready: f.open && self.inner.labels.is_ready(&f.labels),
                labelled_by,
                edited_by: f.edited.as_ref().map(|s| person(id, s)),
                opened_by: author
                    .then(|| f.author.as_ref().map_or_else(unknown, |s| person(id, s))),
            }));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_names_each_repository_once_and_each_issue_by_its_index() {
        let ids: Vec<TaskId> = ["acme/a#1", "acme/b#7", "acme/a#3"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let q = query(&ids);
        assert_eq!(q.matches("repository(").count(), 2, "{q}");
        assert!(q.contains("r0: repository(owner: \"acme\", name: \"a\") { i0: issue(number: 1) { ...trust } i2: issue(number: 3)"), "{q}");
        assert!(
            q.contains("r1: repository(owner: \"acme\", name: \"b\") { i1: issue(number: 7)"),
            "{q}"
        );
        assert_eq!(repo_aliases(&ids), ["r0", "r1", "r0"]);
    }
}
