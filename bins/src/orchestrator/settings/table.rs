//! The settings as text: the table of `docs/settings.md` ([`markdown`]) and the
//! settings a service would start with, as the `settings` subcommand prints them
//! ([`effective`]). Both are read from the command line's own definition, so they
//! cannot drift from it.

use std::fmt::Write;

use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Command};

use super::file::SettingsFile;
use super::grouped;

/// The generated part of `docs/settings.md`: per group, a heading, its file table
/// and a table of its settings (variable, flag and file key, default, meaning).
pub fn markdown(cmd: &Command) -> String {
    let mut out = String::new();
    for (group, args) in grouped(cmd) {
        let _ = writeln!(out, "### {} (`[{}]`)\n", group.heading, group.key);
        out.push_str("| variable | flag | file key | default | what it does |\n");
        out.push_str("| --- | --- | --- | --- | --- |\n");
        for arg in args {
            let env = arg
                .get_env()
                .map(|e| e.to_string_lossy())
                .unwrap_or_default();
            let long = arg.get_long().unwrap_or_default();
            let default = match default(arg) {
                None => "unset".to_string(),
                Some(d) if d.is_empty() => "empty".to_string(),
                Some(d) => format!("`{d}`"),
            };
            let _ = writeln!(
                out,
                "| `{env}` | `--{long}` | `{}` | {default} | {} |",
                arg.get_id(),
                cell(&help(arg))
            );
        }
        out.push('\n');
    }
    out
}

/// What `scrum-orchestrator settings` prints: each setting as the service would
/// start with it, in the settings file's form, with where its value came from.
/// Secrets show only where they came from.
pub fn effective(matches: &ArgMatches, file: Option<&SettingsFile>, cmd: &Command) -> String {
    let mut out = String::from(
        "# The settings scrum-orchestrator would start with. Each comes from its flag,\n\
         # else its environment variable, else the settings file, else its default.\n",
    );
    if let Some(f) = file {
        let _ = writeln!(out, "# Settings file: {}", f.path.display());
    }
    for (group, args) in grouped(cmd) {
        let _ = writeln!(out, "\n[{}]", group.key);
        for arg in args {
            let id = arg.get_id().as_str();
            let from = match matches.value_source(id) {
                Some(ValueSource::CommandLine) => "flag",
                Some(ValueSource::EnvVariable) => "environment",
                Some(_) if file.is_some_and(|f| f.values.contains_key(id)) => "file",
                Some(_) => "default",
                None => {
                    let _ = writeln!(out, "# {id}: not set");
                    continue;
                }
            };
            let value: Vec<String> = matches
                .get_raw(id)
                .into_iter()
                .flatten()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            if arg.is_hide_env_values_set() {
                let _ = writeln!(out, "# {id}: set, hidden ({from})");
            } else {
                let _ = writeln!(out, "{id} = {}  # {from}", toml_value(&value.join(",")));
            }
        }
    }
    out
}

/// The setting's default as its flag would take it; `None` when it has none.
fn default(arg: &Arg) -> Option<String> {
    let values = arg.get_default_values();
    (!values.is_empty()).then(|| {
        values
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// The setting's whole help text on one line.
fn help(arg: &Arg) -> String {
    let text = arg
        .get_long_help()
        .or(arg.get_help())
        .map(ToString::to_string)
        .unwrap_or_default();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` safe in a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// A value in TOML: bare when it is a number or a boolean, else a quoted string.
fn toml_value(v: &str) -> String {
    if v.parse::<i64>().is_ok() || v == "true" || v == "false" {
        return v.to_string();
    }
    let mut quoted = String::from("\"");
    for c in v.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(quoted, "\\u{:04X}", c as u32);
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}
