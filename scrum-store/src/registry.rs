//! What the stores' worker registries share: reading back the columns they store a
//! worker record and a probe report in.

use std::net::IpAddr;

use scrum_core::{AgentSandbox, Error, ErrorKind, HostHealth, Result, Timestamp, WorkerId};

/// A stored worker id.
pub(crate) fn worker_id(text: &str) -> Result<WorkerId> {
    WorkerId::new(text).map_err(|e| corrupt(format!("a stored worker id {text:?} is invalid"), e))
}

/// A stored address (`None` for none).
pub(crate) fn address(text: Option<&str>) -> Result<Option<IpAddr>> {
    text.filter(|t| !t.is_empty())
        .map(|t| {
            t.parse()
                .map_err(|e| corrupt(format!("a stored worker address {t:?} is invalid"), e))
        })
        .transpose()
}

/// A stored count.
pub(crate) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A stored time (`None` for never).
pub(crate) fn time(ms: Option<i64>) -> Option<Timestamp> {
    ms.map(Timestamp)
}

/// A stored sandbox (`None` for none). A name this build does not know (a newer
/// release's sandbox) reads as none said: it is shown, never acted on.
pub(crate) fn sandbox(name: Option<&str>) -> Option<AgentSandbox> {
    name.and_then(AgentSandbox::from_name)
}

/// A stored host health.
pub(crate) fn health(name: &str) -> Result<HostHealth> {
    HostHealth::from_name(name).ok_or_else(|| {
        Error::new(
            ErrorKind::Corrupt,
            format!("a stored host health {name:?} is unknown (written by a newer version?)"),
        )
    })
}

fn corrupt(message: String, source: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::new(ErrorKind::Corrupt, message).with_source(source)
}
