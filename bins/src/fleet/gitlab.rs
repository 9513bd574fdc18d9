//! GitLab in the fleet, beside the fake GitHub: a fake GitLab with projects in
//! nested groups, each with a bare git remote it serves over HTTP (checking the
//! token), and the settings that point the orchestrator and the workers at it.

use scrum_core::{TaskId, Timestamp};
use scrum_gitlab::fake::{FakeGitLab, NewIssue};

use super::Fleet;
use super::remote::make_remote;

impl Fleet {
    /// Starts the fake GitLab with `issues` (project path such as
    /// `group/sub/project`, title) labelled `ai-ready` by a maintainer, a bare
    /// remote per project it serves at `{url}/{path}.git`, and sets `GITLAB_URL`,
    /// `GITLAB_TOKEN` and `GITLAB_PROJECTS` for the processes started from now on.
    /// Its issues join [`Fleet::issues`], after GitHub's.
    pub async fn add_gitlab(&mut self, issues: &[(&str, &str)]) -> anyhow::Result<Vec<TaskId>> {
        let gitlab = FakeGitLab::start().await;
        let remotes = self.root.join("gitlab-remotes");
        gitlab.serve_git_from(&remotes);
        let mut projects: Vec<&str> = Vec::new();
        for (project, _) in issues {
            if !projects.contains(project) {
                projects.push(project);
                gitlab.add_project(project);
                make_remote(&remotes, project, &self.root.join("gitlab-seed"))?;
            }
        }
        let mut ids = Vec::new();
        for (n, (project, title)) in issues.iter().enumerate() {
            let issue = NewIssue::new(title)
                .body("Scripted issue for the scrum orchestrator's demo, on GitLab.")
                .labels(&["ai-ready"])
                .created_at(Timestamp(1_700_000_500_000 + n as i64 * 1000));
            ids.push(gitlab.add_issue(project, issue));
        }
        self.set_env("GITLAB_URL", &gitlab.url());
        self.set_env("GITLAB_TOKEN", gitlab.token());
        self.set_env("GITLAB_PROJECTS", &projects.join(","));
        self.issues.extend(ids.iter().cloned());
        self.gitlab = Some(gitlab);
        Ok(ids)
    }

    /// The fake GitLab, once [`Fleet::add_gitlab`] started it.
    ///
    /// # Panics
    /// When it was not started.
    pub fn gitlab(&self) -> &FakeGitLab {
        self.gitlab
            .as_ref()
            .expect("the fleet has no GitLab: call add_gitlab first")
    }

    /// An issue's labels on its forge.
    pub fn labels(&self, id: &TaskId) -> Vec<String> {
        match (id.repo_name().forge(), &self.gitlab) {
            ("gitlab", Some(gitlab)) => gitlab.labels(id),
            _ => self.github.labels(id),
        }
    }

    /// An issue's comments on its forge, oldest first.
    pub fn comments(&self, id: &TaskId) -> Vec<String> {
        match (id.repo_name().forge(), &self.gitlab) {
            ("gitlab", Some(gitlab)) => gitlab.comments(id),
            _ => self.github.comments(id),
        }
    }
}
