//! Mapping sqlx errors, once, to [`scrum_core::Error`] (PostgreSQL).

use scrum_core::{Error, ErrorKind};

/// Maps a sqlx error met while `doing` something to the error callers see. The
/// message names what failed; the cause is attached, and sqlx never puts
/// connection passwords in its errors.
pub(crate) fn db_error(doing: &str, e: sqlx::Error) -> Error {
    let kind = match &e {
        sqlx::Error::Database(db) => database_kind(db.code().as_deref()),
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => {
            ErrorKind::Unavailable
        }
        sqlx::Error::PoolTimedOut => ErrorKind::Timeout,
        sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => ErrorKind::Unavailable,
        sqlx::Error::Configuration(_) => ErrorKind::Invalid,
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => ErrorKind::Corrupt,
        _ => ErrorKind::Internal,
    };
    Error::new(kind, format!("store: cannot {doing}")).with_source(e)
}

/// The kind of a database error, from its SQLSTATE.
fn database_kind(code: Option<&str>) -> ErrorKind {
    match code {
        // Serialization failure, deadlock, lock not available.
        Some("40001" | "40P01" | "55P03") => ErrorKind::Unavailable,
        // Connection exceptions, insufficient resources, operator
        // intervention (shutdown), and "cannot connect now".
        Some(c) if c.starts_with("08") || c.starts_with("53") || c.starts_with("57") => {
            ErrorKind::Unavailable
        }
        // Invalid authorization / password.
        Some("28000" | "28P01") => ErrorKind::Unauthorized,
        Some("42501") => ErrorKind::Forbidden,
        _ => ErrorKind::Internal,
    }
}
