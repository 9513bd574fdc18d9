//! The few fields of GitHub's JSON this crate reads, and the small text helpers
//! (timestamps, path segments, `Link` headers) that go with them.

use scrum_core::Timestamp;
use serde::Deserialize;

/// An issue (or pull request) from `/repos/{repo}/issues`.
#[derive(Debug, Deserialize)]
pub(crate) struct Issue {
    pub(crate) number: u64,
    pub(crate) title: String,
    #[serde(default)]
    pub(crate) body: Option<String>,
    pub(crate) state: String,
    #[serde(default)]
    pub(crate) labels: Vec<Label>,
    pub(crate) created_at: String,
    /// Present (an object) when the "issue" is a pull request.
    #[serde(default)]
    pub(crate) pull_request: Option<serde::de::IgnoredAny>,
    /// Who opened it.
    #[serde(default)]
    pub(crate) user: Option<Actor>,
    /// How many issues block it (GitHub's issue dependencies); absent on older
    /// GitHub versions.
    #[serde(default)]
    pub(crate) issue_dependencies_summary: Option<DependencySummary>,
}

/// An issue's `issue_dependencies_summary`: `blocked_by` counts its open blockers.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub(crate) struct DependencySummary {
    #[serde(default)]
    pub(crate) blocked_by: u64,
}

/// An issue as `/issues/{n}/dependencies/blocked_by` lists it: its number and
/// repository.
#[derive(Debug, Deserialize)]
pub(crate) struct DependencyIssue {
    pub(crate) number: u64,
    /// `https://api.github.com/repos/{owner}/{repo}`.
    pub(crate) repository_url: String,
}

/// A user or app named by GitHub (`user`, `actor`, GraphQL's `editor`).
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Actor {
    pub(crate) login: String,
    /// `User`, `Bot` or `Organization` in REST answers.
    #[serde(rename = "type", default)]
    pub(crate) kind: Option<String>,
    /// GraphQL's type name: `User`, `Bot`, `Mannequin`…
    #[serde(rename = "__typename", default)]
    pub(crate) typename: Option<String>,
}

impl Actor {
    /// A GitHub App acting itself: its writes are what an installer allowed.
    pub(crate) fn is_app(&self) -> bool {
        self.kind.as_deref() == Some("Bot") || self.typename.as_deref() == Some("Bot")
    }
}

/// One entry of `/repos/{repo}/issues/{n}/events`.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct IssueEvent {
    pub(crate) event: String,
    #[serde(default)]
    pub(crate) actor: Option<Actor>,
    pub(crate) created_at: String,
    #[serde(default)]
    pub(crate) label: Option<Label>,
    /// Set when a GitHub App made the change.
    #[serde(default)]
    pub(crate) performed_via_github_app: Option<serde::de::IgnoredAny>,
}

/// `/repos/{repo}/collaborators/{user}/permission`.
#[derive(Debug, Deserialize)]
pub(crate) struct CollaboratorPermission {
    /// `admin`, `write`, `read` or `none` (maintain reads as write, triage as read).
    pub(crate) permission: String,
    /// The role itself: `admin`, `maintain`, `write`, `triage`, `read` or a custom name.
    #[serde(default)]
    pub(crate) role_name: Option<String>,
}

impl CollaboratorPermission {
    /// Write, maintain or admin.
    pub(crate) fn may_approve(&self) -> bool {
        let strong = |p: &str| matches!(p, "admin" | "maintain" | "write");
        strong(&self.permission) || self.role_name.as_deref().is_some_and(strong)
    }
}

/// The answer of the batched trust query: `data` by alias, and `errors`.
#[derive(Debug, Deserialize)]
pub(crate) struct GraphQlAnswer {
    #[serde(default)]
    pub(crate) data: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub(crate) errors: Option<Vec<GraphQlError>>,
}

/// What the trust query reads of one issue.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TrustNode {
    /// `OPEN` or `CLOSED`.
    pub(crate) state: String,
    #[serde(default)]
    pub(crate) author: Option<Actor>,
    #[serde(default)]
    pub(crate) created_at: Option<String>,
    /// Who last edited the body, and when.
    #[serde(default)]
    pub(crate) editor: Option<Actor>,
    #[serde(default)]
    pub(crate) last_edited_at: Option<String>,
    #[serde(default)]
    pub(crate) labels: Nodes<Label>,
    /// The last `LabeledEvent` and `RenamedTitleEvent` items, oldest first.
    #[serde(default)]
    pub(crate) timeline_items: Nodes<TimelineItem>,
}

/// A GraphQL connection's `nodes`.
#[derive(Debug, Deserialize)]
pub(crate) struct Nodes<T> {
    #[serde(default = "Vec::new")]
    pub(crate) nodes: Vec<T>,
}

impl<T> Default for Nodes<T> {
    fn default() -> Nodes<T> {
        Nodes { nodes: Vec::new() }
    }
}

/// A `LabeledEvent` or `RenamedTitleEvent` of an issue's timeline.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TimelineItem {
    #[serde(rename = "__typename")]
    pub(crate) typename: String,
    #[serde(default)]
    pub(crate) created_at: Option<String>,
    #[serde(default)]
    pub(crate) actor: Option<Actor>,
    #[serde(default)]
    pub(crate) label: Option<Label>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct GraphQlError {
    #[serde(default)]
    pub(crate) message: String,
    #[serde(rename = "type", default)]
    pub(crate) kind: Option<String>,
}

impl Issue {
    pub(crate) fn label_names(&self) -> Vec<String> {
        self.labels.iter().map(|l| l.name().to_string()).collect()
    }
}

/// A label: an object with a `name` in REST answers; a bare name in some payloads.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Label {
    Object { name: String },
    Name(String),
}

impl Label {
    pub(crate) fn name(&self) -> &str {
        match self {
            Label::Object { name } | Label::Name(name) => name,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Comment {
    #[serde(default)]
    pub(crate) id: u64,
    #[serde(default)]
    pub(crate) body: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Repository {
    pub(crate) default_branch: String,
    /// What the token may do there (absent for some tokens, such as an app's).
    #[serde(default)]
    pub(crate) permissions: Option<crate::access::Grants>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Pull {
    pub(crate) number: u64,
    pub(crate) html_url: String,
    pub(crate) head: PullRef,
}

/// A pull request's state, from `GET /repos/{repo}/pulls/{n}`.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct PullStatus {
    pub(crate) state: String,
    #[serde(default)]
    pub(crate) merged: bool,
    #[serde(default)]
    pub(crate) merged_at: Option<String>,
}

/// One review, from `GET /repos/{repo}/pulls/{n}/reviews`.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct PullReview {
    #[serde(default)]
    pub(crate) id: u64,
    #[serde(default)]
    pub(crate) user: Option<Actor>,
    pub(crate) state: String,
    /// What the reviewer wrote (null or empty when nothing).
    #[serde(default)]
    pub(crate) body: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PullRef {
    #[serde(rename = "ref")]
    pub(crate) branch: String,
}

/// Percent-encodes one path segment (label names may hold spaces, `:` or `/`).
pub(crate) fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `rel="next"` URL of a `Link` header, as a path and query (octocrab adds the
/// host, and only sends the token to the configured host).
pub(crate) fn next_link(link: Option<&str>) -> Option<String> {
    link?.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"");
        if !is_next {
            return None;
        }
        let url = url.trim().trim_start_matches('<').trim_end_matches('>');
        let uri: http::Uri = url.parse().ok()?;
        uri.path_and_query().map(|p| p.as_str().to_string())
    })
}

/// Parses an RFC 3339 time such as `2011-04-22T13:33:48Z` (or with fractions or an
/// offset) into milliseconds since the epoch ([`Timestamp::parse_rfc3339`]).
pub(crate) fn parse_time(s: &str) -> Option<Timestamp> {
    Timestamp::parse_rfc3339(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_and_round_trip() {
        for ms in [0, 951_782_400_000, 1_795_488_043_123, 1_303_479_228_000] {
            let t = Timestamp(ms);
            assert_eq!(parse_time(&t.to_rfc3339()), Some(t));
        }
        assert_eq!(
            parse_time("2011-04-22T13:33:48Z"),
            Some(Timestamp(1_303_479_228_000))
        );
        assert_eq!(
            parse_time("2011-04-22T15:33:48+02:00"),
            Some(Timestamp(1_303_479_228_000))
        );
        for bad in [
            "",
            "2011-04-22",
            "2011-13-01T00:00:00Z",
            "2011-04-22T13:33:48",
            "x011-04-22T13:33:48Z",
        ] {
            assert_eq!(parse_time(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn next_link_is_a_path() {
        let link = r#"<https://api.github.com/repositories/1/issues?page=2&per_page=100>; rel="next", <https://api.github.com/repositories/1/issues?page=3&per_page=100>; rel="last""#;
        assert_eq!(
            next_link(Some(link)).as_deref(),
            Some("/repositories/1/issues?page=2&per_page=100")
        );
        let last_page = r#"<https://api.github.com/x?page=1>; rel="first", <https://api.github.com/x?page=2>; rel="prev""#;
        assert_eq!(next_link(Some(last_page)), None);
        assert_eq!(next_link(None), None);
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode_segment("priority: high/x"), "priority%3A%20high%2Fx");
        assert_eq!(encode_segment("ai-ready"), "ai-ready");
    }
}

/// What follow-ups read of a pull request, from `GET /repos/{repo}/pulls/{n}`.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct PullDetail {
    pub(crate) head: PullSide,
    pub(crate) base: PullSide,
    /// `null` while GitHub computes it.
    #[serde(default)]
    pub(crate) mergeable: Option<bool>,
    /// `clean`, `dirty` (conflicts), `blocked`, `unstable`, `unknown`…
    #[serde(default)]
    pub(crate) mergeable_state: Option<String>,
    /// How many conversation comments it has (absent: unknown).
    #[serde(default)]
    pub(crate) comments: Option<u64>,
    /// How many review comments it has (absent: unknown).
    #[serde(default)]
    pub(crate) review_comments: Option<u64>,
}

/// One side of a pull request: its branch and commit.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct PullSide {
    #[serde(rename = "ref")]
    pub(crate) branch: String,
    #[serde(default)]
    pub(crate) sha: String,
}

/// `GET /repos/{repo}/commits/{sha}/check-runs`.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct CheckRuns {
    #[serde(default)]
    pub(crate) check_runs: Vec<CheckRun>,
}

/// One check run.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct CheckRun {
    pub(crate) id: u64,
    pub(crate) name: String,
    /// `queued`, `in_progress`, `completed`, `waiting`, `requested`, `pending`.
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) conclusion: Option<String>,
    #[serde(default)]
    pub(crate) output: Option<CheckOutput>,
    #[serde(default)]
    pub(crate) app: Option<CheckApp>,
}

/// A check run's output.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct CheckOutput {
    #[serde(default)]
    pub(crate) title: Option<String>,
    #[serde(default)]
    pub(crate) summary: Option<String>,
    #[serde(default)]
    pub(crate) annotations_count: u64,
}

/// The app that made a check run (`github-actions` for Actions jobs).
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct CheckApp {
    #[serde(default)]
    pub(crate) slug: Option<String>,
}

/// One annotation of a check run.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Annotation {
    #[serde(default)]
    pub(crate) path: String,
    #[serde(default)]
    pub(crate) start_line: Option<u64>,
    #[serde(default)]
    pub(crate) message: Option<String>,
}

/// `GET /repos/{repo}/commits/{sha}/status`: the latest status of each context.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct CombinedStatus {
    #[serde(default)]
    pub(crate) statuses: Vec<CommitStatus>,
}

/// One commit status.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct CommitStatus {
    pub(crate) context: String,
    /// `pending`, `success`, `failure`, `error`.
    pub(crate) state: String,
    #[serde(default)]
    pub(crate) description: Option<String>,
}

/// `GET /repos/{repo}/branches/{b}/protection/required_status_checks`.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct RequiredChecks {
    #[serde(default)]
    pub(crate) contexts: Vec<String>,
    #[serde(default)]
    pub(crate) checks: Vec<RequiredCheck>,
}

/// One required check, by name.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct RequiredCheck {
    pub(crate) context: String,
}

/// A comment on a pull request: a conversation comment
/// (`/issues/{n}/comments`) or a review comment (`/pulls/{n}/comments`, with
/// its file and line).
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct PullComment {
    pub(crate) id: u64,
    #[serde(default)]
    pub(crate) body: Option<String>,
    #[serde(default)]
    pub(crate) user: Option<Actor>,
    #[serde(default)]
    pub(crate) created_at: String,
    #[serde(default)]
    pub(crate) path: Option<String>,
    #[serde(default)]
    pub(crate) line: Option<u64>,
    #[serde(default)]
    pub(crate) original_line: Option<u64>,
}
