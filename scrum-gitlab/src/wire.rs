//! GitLab's JSON, as far as the client reads it: the fields of REST API v4
//! answers that matter here, everything else ignored.

use serde::Deserialize;

/// A user as GitLab embeds one (`author`, `user`).
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct User {
    pub(crate) id: u64,
    pub(crate) username: String,
}

/// `GET /projects/:id`.
#[derive(Debug, Deserialize)]
pub(crate) struct Project {
    #[serde(default)]
    pub(crate) default_branch: Option<String>,
}

/// An issue (`GET /projects/:id/issues`, `…/issues/:iid`).
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Issue {
    pub(crate) iid: u64,
    pub(crate) title: String,
    #[serde(default)]
    pub(crate) description: Option<String>,
    /// `opened` or `closed`.
    pub(crate) state: String,
    #[serde(default)]
    pub(crate) labels: Vec<String>,
    pub(crate) created_at: String,
    pub(crate) author: User,
    /// Who last edited the title or description, where GitLab says.
    #[serde(default)]
    pub(crate) last_edited_by: Option<User>,
    /// Who last updated the issue, where GitLab says.
    #[serde(default)]
    pub(crate) updated_by_id: Option<u64>,
    #[serde(default)]
    pub(crate) last_edited_at: Option<String>,
    #[serde(default)]
    pub(crate) updated_at: Option<String>,
}

impl Issue {
    pub(crate) fn is_open(&self) -> bool {
        self.state == "opened"
    }
}

/// A note (comment) on an issue or merge request.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Note {
    pub(crate) id: u64,
    pub(crate) body: String,
    pub(crate) author: User,
    #[serde(default)]
    pub(crate) created_at: Option<String>,
    /// A note GitLab wrote itself ("added ~label"), not a person's.
    #[serde(default)]
    pub(crate) system: bool,
    /// Where a diff note sits.
    #[serde(default)]
    pub(crate) position: Option<Position>,
}

/// A diff note's place.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Position {
    #[serde(default)]
    pub(crate) new_path: Option<String>,
    #[serde(default)]
    pub(crate) new_line: Option<u64>,
}

/// `GET …/issues/:iid/resource_label_events`.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct LabelEvent {
    #[serde(default)]
    pub(crate) user: Option<User>,
    pub(crate) created_at: String,
    /// `add` or `remove`.
    pub(crate) action: String,
    #[serde(default)]
    pub(crate) label: Option<LabelRef>,
}

/// A label as an event names it.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct LabelRef {
    pub(crate) name: String,
}

/// `GET /projects/:id/members/all/:user_id`.
#[derive(Debug, Deserialize)]
pub(crate) struct Member {
    pub(crate) access_level: u32,
}

/// `GET /personal_access_tokens/self`.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenSelf {
    #[serde(default)]
    pub(crate) scopes: Vec<String>,
    pub(crate) user_id: u64,
    #[serde(default = "yes")]
    pub(crate) active: bool,
}

fn yes() -> bool {
    true
}

/// One of `GET …/issues/:iid/links`: the linked issue, with the link.
#[derive(Debug, Deserialize)]
pub(crate) struct LinkedIssue {
    pub(crate) iid: u64,
    /// `relates_to`, `blocks` or `is_blocked_by`.
    pub(crate) link_type: String,
    #[serde(default)]
    pub(crate) references: Option<References>,
    #[serde(default)]
    pub(crate) web_url: Option<String>,
}

/// An issue's references (`full`: `group/sub/project#12`).
#[derive(Debug, Deserialize)]
pub(crate) struct References {
    pub(crate) full: String,
}

/// A merge request.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct MergeRequest {
    pub(crate) iid: u64,
    /// `opened`, `closed`, `locked` or `merged`.
    pub(crate) state: String,
    pub(crate) web_url: String,
    #[serde(default)]
    pub(crate) description: Option<String>,
    #[serde(default)]
    pub(crate) sha: Option<String>,
    #[serde(default)]
    pub(crate) has_conflicts: bool,
    #[serde(default)]
    pub(crate) detailed_merge_status: Option<String>,
    #[serde(default)]
    pub(crate) head_pipeline: Option<PipelineRef>,
}

/// A merge request's head pipeline.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct PipelineRef {
    pub(crate) id: u64,
}

/// `GET …/merge_requests/:iid/approvals`.
#[derive(Debug, Deserialize)]
pub(crate) struct Approvals {
    /// Who approved (GitLab lets only eligible members approve).
    #[serde(default)]
    pub(crate) approved_by: Vec<serde_json::Value>,
}

/// One of `GET …/merge_requests/:iid/reviewers`.
#[derive(Debug, Deserialize)]
pub(crate) struct Reviewer {
    pub(crate) user: User,
    /// `unreviewed`, `review_started`, `reviewed`, `requested_changes`,
    /// `approved`, `unapproved`.
    pub(crate) state: String,
}

/// A job of a pipeline.
#[derive(Debug, Deserialize)]
pub(crate) struct Job {
    pub(crate) id: u64,
    pub(crate) name: String,
    /// `created`, `pending`, `running`, `success`, `failed`, `canceled`,
    /// `skipped`, `manual`…
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) stage: Option<String>,
    #[serde(default)]
    pub(crate) allow_failure: bool,
    #[serde(default)]
    pub(crate) failure_reason: Option<String>,
}
