//! What [`FAKE_CLAUDE`](super::FAKE_CLAUDE) kept of each issue's calls, for tests to read.

use std::path::PathBuf;

use scrum_core::TaskId;

use super::Fleet;

impl Fleet {
    /// Where [`FAKE_CLAUDE`](super::FAKE_CLAUDE) keeps what each issue's calls got.
    pub fn agent_state(&self) -> PathBuf {
        self.root.join("agent-state")
    }

    /// What [`FAKE_CLAUDE`](super::FAKE_CLAUDE) kept for `id`: `(file name, content)`, sorted by name.
    pub fn agent_records(&self, id: &TaskId) -> Vec<(String, String)> {
        let dir = self.agent_dir(id);
        let mut records: Vec<(String, String)> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read_to_string(e.path()).unwrap_or_default(),
                )
            })
            .collect();
        records.sort();
        records
    }

    /// The content of [`FAKE_CLAUDE`](super::FAKE_CLAUDE)'s record `name` for `id` (such as
    /// `architect-1.prompt`), if it was written.
    pub fn agent_record(&self, id: &TaskId, name: &str) -> Option<String> {
        std::fs::read_to_string(self.agent_dir(id).join(name)).ok()
    }

    /// Where [`FAKE_CLAUDE`](super::FAKE_CLAUDE) keeps its records for `id`.
    fn agent_dir(&self, id: &TaskId) -> PathBuf {
        self.agent_state().join(format!(
            "{}_{}_issue-{}",
            id.repo_name().owner(),
            id.repo_name().name(),
            id.number()
        ))
    }

    /// How many times [`FAKE_CLAUDE`](super::FAKE_CLAUDE) was called as `role` for `id`.
    pub fn agent_calls(&self, id: &TaskId, role: &str) -> u32 {
        self.agent_record(id, &format!("{role}.count"))
            .map_or(0, |c| c.trim().parse().unwrap_or(0))
    }
}
