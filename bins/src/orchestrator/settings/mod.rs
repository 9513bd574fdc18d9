//! The service's settings, grouped by what they configure. Each group is a struct of
//! its own (flattened into the command line, under its own heading in `--help` and
//! its own `[group]` in the settings file) and is checked beside the code it
//! configures, with errors that name the variable to fix.
//!
//! Each setting is read from, in this order of precedence: its flag, its
//! environment variable (the Python orchestrator's names and defaults), the settings
//! file (`--config`, `ORCHESTRATOR_CONFIG`; see [`mod@file`]), its default.
//!
//! # Layout
//!
//! - [`api`]: the HTTP listener and who may call the API;
//! - [`github`]: GitHub: token, repositories, labels, polling, webhook;
//! - [`gitlab`]: GitLab: address, token, projects, webhook;
//! - [`store`]: the state directory and the database;
//! - [`policy`]: leases and retries, budgets and locks (the queue's policy);
//! - [`gates`]: trust and review gating;
//! - [`fleet`]: the workers and their SSH checks;
//! - [`mod@file`]: the settings file, and how its values join the command line;
//! - [`table`]: the settings as documentation (`docs/settings.md`) and as the
//!   `settings` subcommand prints them.

pub mod api;
pub mod file;
pub mod fleet;
pub mod gates;
pub mod github;
pub mod gitlab;
pub mod policy;
pub mod store;
pub mod table;

use clap::{Arg, Args, Command};

pub use file::{Loaded, load};
pub use store::default_state_dir;

use super::notify::NotifyArgs;
use super::service::Service;
use crate::logging::LogArgs;

/// A group of settings: its `[key]` in the settings file and its heading in `--help`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Group {
    /// The table's name in the settings file.
    pub key: &'static str,
    /// The heading in `--help` and in `docs/settings.md`.
    pub heading: &'static str,
}

/// The groups, in the order `--help` shows them. Each struct's
/// `next_help_heading` is one of these headings (a test checks it).
pub const GROUPS: [Group; 15] = [
    Group {
        key: "listener",
        heading: "HTTP listener",
    },
    Group {
        key: "api",
        heading: "API",
    },
    Group {
        key: "github",
        heading: "GitHub",
    },
    Group {
        key: "gitlab",
        heading: "GitLab",
    },
    Group {
        key: "store",
        heading: "Store",
    },
    Group {
        key: "leases",
        heading: "Leases and retries",
    },
    Group {
        key: "trust",
        heading: "Trust",
    },
    Group {
        key: "review",
        heading: "Review gating",
    },
    Group {
        key: "follow_ups",
        heading: "Follow-ups",
    },
    Group {
        key: "budgets",
        heading: "Budgets",
    },
    Group {
        key: "locks",
        heading: "Locks",
    },
    Group {
        key: "workers",
        heading: "Workers",
    },
    Group {
        key: "ssh",
        heading: "SSH",
    },
    Group {
        key: "notifications",
        heading: "Notifications",
    },
    Group {
        key: "logging",
        heading: "Logging",
    },
];

/// The settings of `cmd` (the orchestrator's command) by group, in [`GROUPS`]'s
/// order: the arguments under each group's heading.
pub fn grouped(cmd: &Command) -> Vec<(Group, Vec<&Arg>)> {
    GROUPS
        .iter()
        .map(|g| {
            let args = cmd
                .get_arguments()
                .filter(|a| a.get_help_heading() == Some(g.heading))
                .collect();
            (*g, args)
        })
        .collect()
}

/// The service's configuration, one field per group.
#[derive(Debug, Args)]
#[allow(missing_docs)]
pub struct ServeArgs {
    #[command(flatten)]
    pub listener: api::ListenerArgs,
    #[command(flatten)]
    pub api: api::ApiArgs,
    #[command(flatten)]
    pub github: github::GitHubArgs,
    #[command(flatten)]
    pub gitlab: gitlab::GitLabArgs,
    #[command(flatten)]
    pub store: store::StoreArgs,
    #[command(flatten)]
    pub leases: policy::LeaseArgs,
    #[command(flatten)]
    pub trust: gates::TrustArgs,
    #[command(flatten)]
    pub review: gates::ReviewArgs,
    #[command(flatten)]
    pub follow_ups: gates::FollowUpArgs,
    #[command(flatten)]
    pub budgets: policy::BudgetArgs,
    #[command(flatten)]
    pub locks: policy::LockArgs,
    #[command(flatten)]
    pub workers: fleet::WorkerArgs,
    #[command(flatten)]
    pub ssh: fleet::SshArgs,
    #[command(flatten)]
    pub notify: NotifyArgs,
    #[command(flatten, next_help_heading = "Logging")]
    pub log: LogArgs,
}

impl ServeArgs {
    /// Checks every group; each error names the variable to fix.
    pub fn validate(self) -> anyhow::Result<Service> {
        let (github, webhook) = self.github.validate(self.gitlab.is_set())?;
        let labels = self.github.labels()?;
        let gitlab = self.gitlab.validate(&labels)?;
        let worker_hosts = self.workers.hosts();
        let api = self.api.validate(&worker_hosts, webhook)?;
        crate::logging::parse_level(&self.log.log_level)?;
        let notifier = self.notify.validate()?;
        let store = self.store.validate()?;
        let ssh = self.ssh.validate(&worker_hosts, &store.state_dir)?;
        Ok(Service {
            args: self,
            github,
            gitlab,
            labels,
            api,
            store,
            ssh,
            notifier,
            worker_hosts,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::orchestrator::OrchestratorCli;

    #[test]
    fn every_setting_is_in_one_group_with_its_variable() {
        let cmd = OrchestratorCli::command();
        let grouped: Vec<&str> = grouped(&cmd)
            .iter()
            .flat_map(|(g, args)| {
                assert!(!args.is_empty(), "group [{}] has no setting", g.key);
                args.iter().map(|a| a.get_id().as_str())
            })
            .collect();
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if ["config", "help", "version"].contains(&id) {
                continue;
            }
            assert!(
                grouped.contains(&id),
                "{id} is under {:?}, which is not in GROUPS",
                arg.get_help_heading()
            );
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            let names = arg.get_value_names().unwrap_or_default();
            assert!(
                env.is_some() && names.iter().any(|n| Some(n.as_str()) == env.as_deref()),
                "{id}: its value name must be its environment variable ({env:?})"
            );
        }
    }
}
