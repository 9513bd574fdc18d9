//! Webhooks and the token's kind: a repository's hooks as `GET /repos/{repo}/hooks`
//! lists them (to an admin only, as GitHub does), and the `X-OAuth-Scopes` header a
//! classic token's answers carry.

use serde_json::{Value, json};

use super::answer::{Answer, not_found, ok};
use super::server::lock;
use super::state::State;
use super::{FakeGitHub, TOKEN_USER};

/// A webhook of a repository, as the fake keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeHook {
    /// GitHub's id of the hook.
    pub id: u64,
    /// Where deliveries go.
    pub url: String,
    /// Whether a secret signs deliveries (GitHub never shows the secret itself).
    pub has_secret: bool,
    /// The HTTP status of the last delivery, if there was one.
    pub last_status: Option<u16>,
}

impl FakeGitHub {
    /// Adds a webhook to `repo` pointing at `url`, signed when `has_secret`, as
    /// `GET /repos/{repo}/hooks` lists it; returns its id. It delivers nothing
    /// (for that, [`FakeGitHub::deliver_to`]). The token reads hooks only where its
    /// role is `admin` ([`FakeGitHub::set_role`] with [`TOKEN_USER`]).
    ///
    /// # Panics
    /// When the repository was not added.
    pub fn add_hook(&self, repo: &str, url: &str, has_secret: bool) -> u64 {
        let mut st = lock(&self.state);
        let id = st.fresh_id();
        st.repo_mut(repo)
            .expect("add_repo first")
            .hooks
            .push(FakeHook {
                id,
                url: url.to_string(),
                has_secret,
                last_status: None,
            });
        id
    }

    /// Records the HTTP status GitHub got for hook `id`'s last delivery (`401`
    /// when the receiver refused its signature).
    pub fn set_hook_last_status(&self, repo: &str, id: u64, status: u16) {
        let mut st = lock(&self.state);
        if let Some(h) = st
            .repo_mut(repo)
            .and_then(|r| r.hooks.iter_mut().find(|h| h.id == id))
        {
            h.last_status = Some(status);
        }
    }

    /// Makes the token a classic one with these scopes (`Some("repo, read:org")`):
    /// every authenticated answer carries `X-OAuth-Scopes`. `None` (the default)
    /// is a fine-grained token, which sends no such header.
    pub fn set_token_scopes(&self, scopes: Option<&str>) {
        lock(&self.state).scopes = scopes.map(str::to_string);
    }
}

/// `GET /repos/{repo}/hooks`: the hooks, to a token whose role there is `admin`;
/// anyone else gets GitHub's 404.
pub(crate) fn list_hooks(st: &State, repo: &str) -> Answer {
    let Some(r) = st.repo(repo) else {
        return not_found();
    };
    if r.roles.get(TOKEN_USER).map(String::as_str) != Some("admin") {
        return not_found();
    }
    let base = &st.base_url;
    let hooks: Vec<Value> = r
        .hooks
        .iter()
        .map(|h| hook_json(base, &r.full_name, h))
        .collect();
    ok(Value::Array(hooks))
}

fn hook_json(base: &str, repo: &str, h: &FakeHook) -> Value {
    let mut config = json!({ "content_type": "json", "insecure_ssl": "0", "url": h.url });
    if h.has_secret {
        config["secret"] = json!("********");
    }
    let last = match h.last_status {
        Some(code) => {
            json!({ "code": code, "status": if code < 300 { "active" } else { "failed" }, "message": null })
        }
        None => json!({ "code": null, "status": "unused", "message": null }),
    };
    json!({
        "type": "Repository", "id": h.id, "name": "web", "active": true,
        "events": ["issues"], "config": config,
        "updated_at": "2020-01-01T00:00:00Z", "created_at": "2020-01-01T00:00:00Z",
        "url": format!("{base}/repos/{repo}/hooks/{}", h.id),
        "last_response": last
    })
}
