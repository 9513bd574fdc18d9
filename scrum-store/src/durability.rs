//! How durable a commit is: what survives which crash.

/// How durable a commit is, for the stores whose durability is a per-connection
/// setting. Chosen with `synchronous=normal|full` in `DATABASE_URL`.
///
/// | | [`Durability::Process`] | [`Durability::Power`] |
/// | --- | --- | --- |
/// | SQLite (default: `Process`) | WAL, `synchronous = NORMAL` | WAL, `synchronous = FULL` |
/// | PostgreSQL (default: `Power`) | `synchronous_commit = off` for the queue's sessions | the server's setting (normally `on`) |
/// | Redis | the server's `appendonly`/`appendfsync` | the same |
///
/// Either way a transition and its effects commit together or not at all, and an
/// orchestrator that crashes or is killed loses nothing it acknowledged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// A commit survives the orchestrator crashing or being killed. A power loss or
    /// a kernel crash on the SQLite host, or a crash of the PostgreSQL server, may
    /// undo the last commits (under a second's worth; the data stays consistent).
    /// Commits do not wait for a disk flush: several times faster on ordinary disks.
    #[default]
    Process,
    /// Each commit is flushed to disk before it returns, so it survives a power loss
    /// too.
    Power,
}

impl Durability {
    /// The name used in `DATABASE_URL`'s `synchronous` parameter: `normal` or `full`.
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Process => "normal",
            Durability::Power => "full",
        }
    }
}
