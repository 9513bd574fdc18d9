//! The fake's merge requests as tests drive them: opened, approved, reviewed,
//! merged or closed, given conflicts and head pipelines, and noted on.

use super::server::lock;
use super::state::{self, FakeJob, FakeMergeRequest, Note, Pipeline, State};
use super::{FakeGitLab, MAINTAINER, hooks, json, mr_routes};

impl FakeGitLab {
    /// Opens a merge request from `source` into `target` as [`MAINTAINER`];
    /// answers its iid.
    pub fn add_merge_request(&self, project: &str, source: &str, target: &str, title: &str) -> u64 {
        let mut st = lock(&self.state);
        let author = st.user(MAINTAINER);
        let draft = mr_routes::Draft {
            source,
            target,
            title,
            description: "",
            author,
        };
        new_merge_request(&mut st, project, &draft)
    }

    /// The project's merge requests, oldest first.
    pub fn merge_requests(&self, project: &str) -> Vec<FakeMergeRequest> {
        let st = lock(&self.state);
        let Some(p) = st.projects.get(project) else {
            return Vec::new();
        };
        p.merge_requests
            .values()
            .map(|m| FakeMergeRequest {
                iid: m.iid,
                source_branch: m.source.clone(),
                target_branch: m.target.clone(),
                title: m.title.clone(),
                description: m.description.clone(),
                state: m.state.clone(),
                web_url: json::mr_url(&st, p, m.iid),
            })
            .collect()
    }

    /// Approves merge request `iid` as `username` (a reviewer now `approved`).
    pub fn approve(&self, project: &str, iid: u64, username: &str) {
        self.change_mr(project, iid, |st, m| {
            let user = st.user(username);
            if !m.approved_by.contains(&user) {
                m.approved_by.push(user);
            }
            set_reviewer(m, user, "approved");
            "approved"
        });
    }

    /// Submits a review of merge request `iid` as `username` requesting changes,
    /// with `body` as its note (their approval, if any, withdrawn).
    pub fn request_changes(&self, project: &str, iid: u64, username: &str, body: &str) {
        self.change_mr(project, iid, |st, m| {
            let user = st.user(username);
            m.approved_by.retain(|u| *u != user);
            set_reviewer(m, user, "requested_changes");
            "update"
        });
        self.comment_on_mr(project, iid, username, body);
    }

    /// Merges merge request `iid`.
    pub fn merge(&self, project: &str, iid: u64) {
        self.change_mr(project, iid, |_, m| {
            m.state = "merged".into();
            "merge"
        });
    }

    /// Closes merge request `iid` without merging.
    pub fn close_merge_request(&self, project: &str, iid: u64) {
        self.change_mr(project, iid, |_, m| {
            m.state = "closed".into();
            "close"
        });
    }

    /// Whether merge request `iid` conflicts with its target
    /// (`has_conflicts`, `detailed_merge_status: conflict`), or merges cleanly.
    pub fn set_conflicts(&self, project: &str, iid: u64, conflicts: bool) {
        self.change_mr(project, iid, |_, m| {
            m.has_conflicts = conflicts;
            m.detailed_merge_status = if conflicts { "conflict" } else { "mergeable" }.into();
            "update"
        });
    }

    /// Sets merge request `iid`'s `detailed_merge_status` as GitLab computes it
    /// (`checking`, `mergeable`, `conflict`, `ci_must_pass`…).
    pub fn set_merge_status(&self, project: &str, iid: u64, status: &str) {
        self.change_mr(project, iid, |_, m| {
            m.detailed_merge_status = status.to_string();
            "update"
        });
    }

    /// Gives merge request `iid` a new head commit and a head pipeline with
    /// these jobs (sends a `Pipeline Hook`).
    pub fn set_pipeline(&self, project: &str, iid: u64, jobs: &[FakeJob]) {
        let mut st = lock(&self.state);
        let pipeline_id = st.id();
        let jobs = jobs.iter().map(|j| (st.id(), j.clone())).collect();
        let sha = format!("{:040x}", u128::from(pipeline_id) * 0x2545_f491_4f6c_dd1d);
        let Some(m) = st.project_mut(project).merge_requests.get_mut(&iid) else {
            panic!("the fake GitLab has no merge request !{iid} in {project}");
        };
        m.sha = sha;
        m.pipeline = Some(Pipeline {
            id: pipeline_id,
            jobs,
        });
        hooks::pipeline(&mut st, project, iid);
    }

    /// The head commit of merge request `iid`.
    pub fn head_sha(&self, project: &str, iid: u64) -> Option<String> {
        let st = lock(&self.state);
        Some(
            st.projects
                .get(project)?
                .merge_requests
                .get(&iid)?
                .sha
                .clone(),
        )
    }

    /// Adds a note to merge request `iid` as `username`; answers the note's id.
    pub fn comment_on_mr(&self, project: &str, iid: u64, username: &str, body: &str) -> u64 {
        let mut st = lock(&self.state);
        let user = st.user(username);
        note_on_mr(&mut st, project, iid, user, body)
            .map(|n| n.id)
            .unwrap_or_else(|| panic!("the fake GitLab has no merge request !{iid} in {project}"))
    }

    fn change_mr(
        &self,
        project: &str,
        iid: u64,
        f: impl FnOnce(&mut State, &mut state::MergeRequest) -> &'static str,
    ) {
        let mut st = lock(&self.state);
        let Some(mut m) = st.project_mut(project).merge_requests.remove(&iid) else {
            panic!("the fake GitLab has no merge request !{iid} in {project}");
        };
        let action = f(&mut st, &mut m);
        st.project_mut(project).merge_requests.insert(iid, m);
        hooks::merge_request(&mut st, project, iid, action);
    }
}

fn set_reviewer(m: &mut state::MergeRequest, user: u64, state: &str) {
    match m.reviewers.iter_mut().find(|(u, _)| *u == user) {
        Some(r) => r.1 = state.to_string(),
        None => m.reviewers.push((user, state.to_string())),
    }
}

/// Opens a merge request in `key`; answers its iid.
pub(crate) fn new_merge_request(st: &mut State, key: &str, draft: &mr_routes::Draft<'_>) -> u64 {
    let (id, at) = (st.id(), st.now());
    let p = st.project_mut(key);
    let iid = p.merge_requests.keys().next_back().copied().unwrap_or(0) + 1;
    p.merge_requests
        .insert(iid, mr_routes::fresh(id, iid, at, draft));
    hooks::merge_request(st, key, iid, "open");
    iid
}

/// Adds a note by `author` to merge request `iid`; `None` when there is none.
pub(crate) fn note_on_mr(
    st: &mut State,
    key: &str,
    iid: u64,
    author: u64,
    body: &str,
) -> Option<Note> {
    let (id, at) = (st.id(), st.now());
    let note = Note {
        id,
        body: body.to_string(),
        author,
        created_at: at,
        updated_at: at,
        system: false,
    };
    st.projects
        .get_mut(key)?
        .merge_requests
        .get_mut(&iid)?
        .notes
        .push(note.clone());
    hooks::note_on_mr(st, key, iid, &note);
    Some(note)
}
