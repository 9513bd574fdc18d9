//! How durable a SQLite commit is.

/// How durable a SQLite commit is: what survives which crash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// WAL with `synchronous = NORMAL`, the default: a commit survives the
    /// orchestrator crashing or being killed; a power loss or kernel crash may undo
    /// the last commits (the file stays consistent). About ten times faster than
    /// [`Durability::Power`] on an ordinary disk.
    #[default]
    Process,
    /// WAL with `synchronous = FULL`: each commit is on disk before it returns, so
    /// it survives a power loss too.
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
