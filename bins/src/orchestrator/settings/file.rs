//! The settings file (`--config FILE`, or `ORCHESTRATOR_CONFIG`): TOML grouped as
//! `--help` groups the settings (`[github]`, `[store]`, …), each key a setting's
//! flag in snake_case (`github_poll_interval = 60` for `--github-poll-interval`).
//! A list stands for a comma-separated value (`github_repos = ["acme/api",
//! "acme/web"]`). An unknown group or key, or a value its setting refuses, is an
//! error naming it.
//!
//! The file's values take the place of the defaults, so a flag or an environment
//! variable still wins over them.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Arg, ArgMatches, Command, CommandFactory, FromArgMatches};

use super::{GROUPS, grouped};
use crate::orchestrator::cli::OrchestratorCli;

/// The environment variable naming the settings file (also `--config`).
pub const CONFIG_VARIABLE: &str = "ORCHESTRATOR_CONFIG";

/// The command line, the environment and the settings file, read together.
pub struct Loaded {
    /// What was read.
    pub cli: OrchestratorCli,
    /// Where each value came from ([`ArgMatches::value_source`]).
    pub matches: ArgMatches,
    /// The settings file, when one was given.
    pub file: Option<SettingsFile>,
}

/// The values a settings file gives, by setting (its argument id).
pub struct SettingsFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Each setting's value, as its flag would take it.
    pub values: BTreeMap<String, String>,
}

impl fmt::Debug for SettingsFile {
    // The values may be secrets: only the keys are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SettingsFile")
            .field("path", &self.path)
            .field("keys", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Reads the command line `args` (the program's name first), the environment and
/// the settings file they name, if any.
///
/// # Errors
/// A [`clap::Error`] (inside the `anyhow::Error`; call its `exit`) for a bad flag or
/// environment value, `--help` or `--version`; otherwise an error naming the file
/// and the group or key at fault.
pub fn load<I, T>(args: I) -> anyhow::Result<Loaded>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let first = OrchestratorCli::command().try_get_matches_from(&args)?;
    let Some(path) = first.get_one::<PathBuf>("config").cloned() else {
        let cli = OrchestratorCli::from_arg_matches(&first)?;
        return Ok(Loaded {
            cli,
            matches: first,
            file: None,
        });
    };
    let file = SettingsFile::read(&path)?;
    let matches = file
        .as_defaults(OrchestratorCli::command())
        .try_get_matches_from(&args)?;
    let cli = OrchestratorCli::from_arg_matches(&matches)?;
    Ok(Loaded {
        cli,
        matches,
        file: Some(file),
    })
}

impl SettingsFile {
    /// Reads and checks the file at `path`.
    pub fn read(path: &Path) -> anyhow::Result<SettingsFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{CONFIG_VARIABLE} {}: cannot be read", path.display()))?;
        let values = parse(&text, &OrchestratorCli::command())
            .map_err(|e| anyhow::anyhow!("{CONFIG_VARIABLE} {}: {e}", path.display()))?;
        Ok(SettingsFile {
            path: path.to_path_buf(),
            values,
        })
    }

    /// `cmd` with this file's values as its defaults, in every subcommand that
    /// takes the same setting (`notify test` takes the notification settings).
    pub fn as_defaults(&self, cmd: Command) -> Command {
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .collect();
        let mut cmd = cmd;
        for (id, value) in &self.values {
            if cmd.get_arguments().any(|a| a.get_id() == id.as_str()) {
                cmd = cmd.mut_arg(id, |a| {
                    // A secret's value never shows in `--help`.
                    let hide = a.is_hide_env_values_set();
                    a.default_value(value.clone()).hide_default_value(hide)
                });
            }
        }
        for name in names {
            cmd = cmd.mut_subcommand(name, |s| self.as_defaults(s));
        }
        cmd
    }
}

/// The settings in `text`, checked against `cmd`'s: each by its argument id, with
/// the value its flag would take.
fn parse(text: &str, cmd: &Command) -> Result<BTreeMap<String, String>, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let groups = grouped(cmd);
    let home = |key: &str| {
        groups
            .iter()
            .find(|(_, args)| args.iter().any(|a| a.get_id() == key))
            .map(|(g, _)| g.key)
    };
    let mut values = BTreeMap::new();
    for (name, body) in table {
        let Some((group, args)) = groups.iter().find(|(g, _)| g.key == name) else {
            return Err(match home(&name) {
                Some(h) => format!("`{name}` belongs in its group: put it under [{h}]"),
                None => format!(
                    "unknown group [{name}]; the groups are: {}",
                    GROUPS.map(|g| format!("[{}]", g.key)).join(", ")
                ),
            });
        };
        let toml::Value::Table(body) = body else {
            return Err(format!("[{name}] must be a group of settings"));
        };
        for (key, value) in body {
            let Some(arg) = args.iter().find(|a| a.get_id() == key.as_str()) else {
                return Err(match home(&key) {
                    Some(h) => format!("[{name}] {key}: this setting belongs in [{h}]"),
                    None => format!(
                        "unknown setting `{key}` in [{name}]; [{name}] has: {}",
                        args.iter()
                            .map(|a| a.get_id().as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            };
            let text = flag_text(&value).ok_or_else(|| {
                format!(
                    "[{}] {key}: a {} is not a value (use a string, number, boolean or list)",
                    group.key,
                    value.type_str()
                )
            })?;
            check(arg, &text).map_err(|e| format!("[{}] {key}: {e}", group.key))?;
            values.insert(key, text);
        }
    }
    Ok(values)
}

/// A TOML value as its flag would take it; `None` for a table or a date.
fn flag_text(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Array(items) => items
            .iter()
            .map(|i| match i {
                toml::Value::Array(_) => None,
                other => flag_text(other),
            })
            .collect::<Option<Vec<_>>>()
            .map(|parts| parts.join(",")),
        toml::Value::Table(_) | toml::Value::Datetime(_) => None,
    }
}

/// Whether `arg` takes `text`, by its own parser (so a file value that a flag or
/// variable overrides is still checked).
fn check(arg: &Arg, text: &str) -> Result<(), String> {
    let long = arg.get_long().unwrap_or(arg.get_id().as_str()).to_string();
    let alone = arg
        .clone()
        .env(None::<&'static str>)
        .default_value(None::<&'static str>);
    Command::new("settings-file")
        .no_binary_name(true)
        .arg(alone)
        .try_get_matches_from([format!("--{long}={text}")])
        .map(drop)
        .map_err(|e| {
            let shown = e.to_string();
            let first = shown.lines().next().unwrap_or_default();
            first.trim_start_matches("error: ").to_string()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<BTreeMap<String, String>, String> {
        parse(text, &OrchestratorCli::command())
    }

    #[test]
    fn values_are_read_by_group_and_lists_join_with_commas() {
        let v = parsed(
            "[listener]\nport = 9000\n[github]\ngithub_repos = [\"a/b\", \"c/d\"]\n\
             [review]\nblock_on_changes_requested = false\n[budgets]\nissue_budget_usd = 2.5\n",
        )
        .unwrap();
        assert_eq!(v["port"], "9000");
        assert_eq!(v["github_repos"], "a/b,c/d");
        assert_eq!(v["block_on_changes_requested"], "false");
        assert_eq!(v["issue_budget_usd"], "2.5");
    }

    #[test]
    fn unknown_groups_and_keys_and_misplaced_keys_are_named() {
        let e = parsed("[gihub]\ngithub_token = \"x\"\n").unwrap_err();
        assert!(
            e.contains("unknown group [gihub]") && e.contains("[github]"),
            "{e}"
        );
        let e = parsed("[github]\ngithub_tokn = \"x\"\n").unwrap_err();
        assert!(
            e.contains("unknown setting `github_tokn` in [github]"),
            "{e}"
        );
        assert!(e.contains("github_token"), "{e}");
        let e = parsed("[github]\nport = 1\n").unwrap_err();
        assert!(
            e.contains("[github] port") && e.contains("[listener]"),
            "{e}"
        );
        let e = parsed("port = 1\n").unwrap_err();
        assert!(e.contains("under [listener]"), "{e}");
    }

    #[test]
    fn a_value_its_setting_refuses_is_named_with_the_variable() {
        let e = parsed("[listener]\nport = \"eighty\"\n").unwrap_err();
        assert!(
            e.contains("[listener] port") && e.contains("ORCHESTRATOR_PORT"),
            "{e}"
        );
        let e = parsed("[leases]\nlease_secs = 1\n").unwrap_err();
        assert!(e.contains("[leases] lease_secs"), "{e}");
        let e = parsed("[locks]\nlock_areas = { auth = \"src\" }\n").unwrap_err();
        assert!(e.contains("[locks] lock_areas: a table"), "{e}");
    }
}
