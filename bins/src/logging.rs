//! Logging for both binaries: `LOG_LEVEL` (the Python orchestrator's names: ERROR, WARN, INFO,
//! DEBUG), to standard error, where systemd's journal collects it. `LOG_FORMAT=json`
//! writes one JSON object per line for log shippers instead of text.

use std::fmt;

use anyhow::bail;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How log lines are written (`LOG_FORMAT`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable text (the default).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message`, the
    /// event's fields, and `task_id`, `repository`, `worker_id` and `attempt`
    /// where they apply.
    Json,
}

/// How a binary logs: `LOG_LEVEL` and `LOG_FORMAT`, the same for both.
#[derive(Clone, Debug, clap::Args)]
pub struct LogArgs {
    /// Log level: ERROR, WARN, INFO, DEBUG or TRACE.
    #[arg(
        long,
        env = "LOG_LEVEL",
        value_name = "LOG_LEVEL",
        default_value = "INFO"
    )]
    pub log_level: String,
    /// Log format: text, or json (one JSON object per line with task_id, worker_id,
    /// repository and attempt where they apply, for log shippers).
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_name = "LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

/// Parses a `LOG_LEVEL` value.
pub fn parse_level(level: &str) -> anyhow::Result<tracing::Level> {
    match level.trim().to_ascii_uppercase().as_str() {
        "ERROR" | "CRITICAL" => Ok(tracing::Level::ERROR),
        "WARN" | "WARNING" => Ok(tracing::Level::WARN),
        "INFO" => Ok(tracing::Level::INFO),
        "DEBUG" => Ok(tracing::Level::DEBUG),
        "TRACE" => Ok(tracing::Level::TRACE),
        other => bail!("LOG_LEVEL {other:?} is not one of ERROR, WARN, INFO, DEBUG, TRACE"),
    }
}

/// Starts logging at `level` for this workspace's crates (and warnings from others),
/// as text or JSON lines. `worker_id` goes on every JSON line (the worker's own).
pub fn init(log: &LogArgs, worker_id: Option<&str>) -> anyhow::Result<()> {
    let format = log.log_format;
    let level = parse_level(&log.log_level)?
        .to_string()
        .to_ascii_lowercase();
    let filter = EnvFilter::new(format!(
        "warn,scrum_core={level},scrum_store={level},scrum_github={level},scrum_ssh={level},scrum_http={level},scrum_bins={level},scrum_orchestrator={level},scrum_worker={level}"
    ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .event_format(JsonLines {
                worker_id: worker_id.map(str::to_string),
            })
            .try_init(),
    };
    Ok(())
}

/// The JSON line format. The code logs a task as `task`, a worker as `worker`:
/// those become `task_id` (with its `repository`) and `worker_id`, the names log
/// shippers index.
struct JsonLines {
    worker_id: Option<String>,
}

/// An event's fields as JSON values.
#[derive(Default)]
struct Fields(Map<String, Value>);

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        let name = match field.name() {
            "task" => "task_id",
            "worker" => "worker_id",
            "repo" => "repository",
            other => other,
        };
        self.0.insert(name.to_string(), value);
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut line = Map::new();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        line.insert(
            "timestamp".into(),
            scrum_core::Timestamp(now).to_rfc3339().into(),
        );
        let meta = event.metadata();
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        let mut fields = fields.0;
        if let Some(message) = fields.remove("message") {
            line.insert("message".into(), message);
        }
        if let (Some(worker), false) = (&self.worker_id, fields.contains_key("worker_id")) {
            line.insert("worker_id".into(), worker.clone().into());
        }
        let repository = fields
            .get("task_id")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<scrum_core::TaskId>().ok())
            .map(|t| t.repo().to_string());
        if let (Some(repo), false) = (repository, fields.contains_key("repository")) {
            line.insert("repository".into(), repo.into());
        }
        line.extend(fields);
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for SIGTERM/SIGINT");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = int.recv() => tracing::info!("SIGINT"),
    }
}
