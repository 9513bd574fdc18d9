//! What the fake GitLab keeps: users, projects with their members, issues, notes,
//! label events, links and merge requests, and the server's own bookkeeping
//! (faults, rate limit, request log, webhook and git settings).

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use scrum_core::Timestamp;
use serde_json::Value;

/// A fault to inject into the next matching request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this status code (500, 502, 503…) and GitLab's error body.
    Status(u16),
    /// Wait this long before answering: a client with a shorter timeout times out.
    Delay(Duration),
    /// A 429 with `Retry-After: retry_after_secs`.
    RateLimited {
        /// The `Retry-After` header's value, in seconds.
        retry_after_secs: u64,
    },
    /// Answer normally, but cut the JSON body in half.
    TruncatedJson,
    /// Carry the request out, then answer 502: a write that happened although the
    /// client was told it failed.
    LostAnswer,
}

/// One request the fake served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedRequest {
    /// `GET`, `PUT`, …
    pub method: String,
    /// The path and query as sent, e.g. `/api/v4/projects/g%2Fp/issues?page=2`.
    pub path: String,
    /// The `If-None-Match` header the client sent.
    pub if_none_match: Option<String>,
    /// The status answered.
    pub status: u16,
}

/// A job of a merge request's head pipeline, for [`super::FakeGitLab::set_pipeline`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeJob {
    /// The job's name (`test`, `lint`).
    pub name: String,
    /// GitLab's job status: `success`, `failed`, `running`, `pending`, …
    pub status: String,
    /// Its log.
    pub trace: String,
}

impl FakeJob {
    /// A job named `name` in `status`, with an empty log.
    pub fn new(name: &str, status: &str) -> FakeJob {
        FakeJob {
            name: name.to_string(),
            status: status.to_string(),
            trace: String::new(),
        }
    }

    /// With this log.
    pub fn trace(mut self, trace: &str) -> FakeJob {
        self.trace = trace.to_string();
        self
    }
}

/// A merge request as the fake holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeMergeRequest {
    /// Its number in the project.
    pub iid: u64,
    /// The branch merged.
    pub source_branch: String,
    /// The branch merged into.
    pub target_branch: String,
    /// Its title.
    pub title: String,
    /// Its description.
    pub description: String,
    /// `opened`, `merged` or `closed`.
    pub state: String,
    /// Its page.
    pub web_url: String,
}

#[derive(Clone, Debug)]
pub(crate) struct Note {
    pub(crate) id: u64,
    pub(crate) body: String,
    pub(crate) author: u64,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
    pub(crate) system: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct LabelEvent {
    pub(crate) id: u64,
    pub(crate) user: u64,
    pub(crate) at: Timestamp,
    pub(crate) add: bool,
    pub(crate) label: String,
}

#[derive(Clone, Debug)]
pub(crate) struct Issue {
    pub(crate) id: u64,
    pub(crate) iid: u64,
    pub(crate) title: String,
    pub(crate) description: String,
    pub(crate) open: bool,
    pub(crate) labels: Vec<String>,
    pub(crate) author: u64,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
    /// Who last edited the title or description, and when.
    pub(crate) edited: Option<(u64, Timestamp)>,
    pub(crate) notes: Vec<Note>,
    pub(crate) label_events: Vec<LabelEvent>,
    /// Issues blocking this one: (project path, iid).
    pub(crate) blocked_by: Vec<(String, u64)>,
}

#[derive(Clone, Debug)]
pub(crate) struct Pipeline {
    pub(crate) id: u64,
    pub(crate) jobs: Vec<(u64, FakeJob)>,
}

#[derive(Clone, Debug)]
pub(crate) struct MergeRequest {
    pub(crate) id: u64,
    pub(crate) iid: u64,
    pub(crate) title: String,
    pub(crate) description: String,
    pub(crate) source: String,
    pub(crate) target: String,
    pub(crate) state: String,
    pub(crate) author: u64,
    pub(crate) created_at: Timestamp,
    pub(crate) sha: String,
    pub(crate) has_conflicts: bool,
    pub(crate) detailed_merge_status: String,
    pub(crate) approved_by: Vec<u64>,
    /// Reviewers and their state (`unreviewed`, `requested_changes`, `approved`…).
    pub(crate) reviewers: Vec<(u64, String)>,
    pub(crate) pipeline: Option<Pipeline>,
    pub(crate) notes: Vec<Note>,
}

#[derive(Clone, Debug)]
pub(crate) struct Project {
    pub(crate) id: u64,
    pub(crate) path: String,
    pub(crate) default_branch: String,
    /// Access levels by user id.
    pub(crate) members: BTreeMap<u64, u32>,
    pub(crate) issues: BTreeMap<u64, Issue>,
    pub(crate) merge_requests: BTreeMap<u64, MergeRequest>,
}

/// The rate limit's window.
#[derive(Clone, Debug)]
pub(crate) struct RateWindow {
    pub(crate) limit: u64,
    pub(crate) remaining: u64,
    /// Unix seconds.
    pub(crate) reset: u64,
}

/// A webhook delivery waiting to be sent.
#[derive(Clone, Debug)]
pub(crate) struct PendingHook {
    pub(crate) event: &'static str,
    pub(crate) payload: Value,
}

pub(crate) struct State {
    pub(crate) token: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) base_url: String,
    /// Usernames; a user's id is its index plus one.
    pub(crate) users: Vec<String>,
    pub(crate) projects: BTreeMap<String, Project>,
    pub(crate) next_id: u64,
    /// The fake's clock: real time, but never the same millisecond twice.
    pub(crate) last_ms: i64,
    /// Faults, each for any request or one method and path prefix.
    pub(crate) faults: VecDeque<(Option<(String, String)>, Fault)>,
    pub(crate) log: Vec<ServedRequest>,
    pub(crate) rate: RateWindow,
    pub(crate) git_root: Option<PathBuf>,
    pub(crate) hook: Option<(String, String)>,
    /// Where [`State::hook`] queues deliveries for the delivery task.
    pub(crate) hook_queue: Option<tokio::sync::mpsc::UnboundedSender<PendingHook>>,
    pub(crate) deliveries: Vec<(String, u16)>,
    /// How long every API answer is held back ([`super::FakeGitLab::set_latency`]).
    pub(crate) latency: std::time::Duration,
}

impl State {
    pub(crate) fn new(token: String) -> State {
        State {
            token,
            scopes: vec!["api".into()],
            base_url: String::new(),
            users: Vec::new(),
            projects: BTreeMap::new(),
            next_id: 1,
            last_ms: 0,
            faults: VecDeque::new(),
            log: Vec::new(),
            rate: RateWindow {
                limit: 100_000,
                remaining: 100_000,
                reset: 0,
            },
            git_root: None,
            hook: None,
            hook_queue: None,
            deliveries: Vec::new(),
            latency: std::time::Duration::ZERO,
        }
    }

    /// A fresh id for anything (GitLab's global ids).
    pub(crate) fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Now, later than any time handed out before.
    pub(crate) fn now(&mut self) -> Timestamp {
        self.last_ms = super::server::now_ms().max(self.last_ms + 1);
        Timestamp(self.last_ms)
    }

    /// The id of `username`, registering it when new.
    pub(crate) fn user(&mut self, username: &str) -> u64 {
        if let Some(i) = self.users.iter().position(|u| u == username) {
            return i as u64 + 1;
        }
        self.users.push(username.to_string());
        self.users.len() as u64
    }

    pub(crate) fn username(&self, id: u64) -> String {
        id.checked_sub(1)
            .and_then(|i| self.users.get(i as usize))
            .cloned()
            .unwrap_or_else(|| "ghost".into())
    }

    /// The first fault for this request, taken.
    pub(crate) fn take_fault(&mut self, method: &str, path: &str) -> Option<Fault> {
        let at = self.faults.iter().position(|(aim, _)| match aim {
            None => true,
            Some((m, prefix)) => {
                m.eq_ignore_ascii_case(method) && path.starts_with(prefix.as_str())
            }
        })?;
        self.faults.remove(at).map(|(_, f)| f)
    }

    pub(crate) fn project_mut(&mut self, path: &str) -> &mut Project {
        self.projects
            .get_mut(path)
            .unwrap_or_else(|| panic!("the fake GitLab has no project {path}: add_project first"))
    }

    /// Queues a webhook delivery, when a hook is set.
    pub(crate) fn hook(&mut self, event: &'static str, payload: Value) {
        if let (Some(_), Some(queue)) = (&self.hook, &self.hook_queue) {
            let _ = queue.send(PendingHook { event, payload });
        }
    }
}

impl Issue {
    /// Replaces the labels as `user` would, recording an event per change.
    pub(crate) fn relabel(
        &mut self,
        labels: Vec<String>,
        user: u64,
        at: Timestamp,
        ids: &mut impl FnMut() -> u64,
    ) {
        let has = |set: &[String], l: &str| set.iter().any(|x| x.eq_ignore_ascii_case(l));
        for old in self.labels.clone() {
            if !has(&labels, &old) {
                self.label_events.push(LabelEvent {
                    id: ids(),
                    user,
                    at,
                    add: false,
                    label: old,
                });
            }
        }
        let mut kept: Vec<String> = Vec::new();
        for new in labels {
            if has(&kept, &new) {
                continue;
            }
            if !has(&self.labels, &new) {
                self.label_events.push(LabelEvent {
                    id: ids(),
                    user,
                    at,
                    add: true,
                    label: new.clone(),
                });
            }
            // GitLab keeps the project label's spelling.
            let spelled = self
                .labels
                .iter()
                .find(|l| l.eq_ignore_ascii_case(&new))
                .cloned()
                .unwrap_or(new);
            kept.push(spelled);
        }
        self.labels = kept;
        self.updated_at = at;
    }
}
