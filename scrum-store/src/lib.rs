//! Durable [`WorkQueue`] backends for the scrum orchestrator: every task state change
//! and the GitHub effects it causes are stored together, so nothing is lost when the
//! orchestrator restarts or crashes.
//!
//! Which backend is chosen at run time from `DATABASE_URL` by [`open`]:
//!
//! | `DATABASE_URL` | backend | feature | for |
//! | --- | --- | --- | --- |
//! | unset: [`default_sqlite_path`] in the state directory; a path; `sqlite:PATH[?synchronous=full]` | [`SqliteQueue`] | `sqlite` (default) | one orchestrator |
//! | `postgres://…`, `postgresql://…` (`?synchronous=normal`, `?schema=NAME`) | `PostgresQueue` | `postgres` | several orchestrators sharing state |
//! | `redis://…`, `rediss://…` (`?prefix=NAME`) | `RedisQueue` | `redis` | several orchestrators sharing state |
//!
//! `schema` (PostgreSQL) and `prefix` (Redis, default `scrum`) keep several
//! independent fleets apart on one server.
//!
//! How far a commit is durable is one setting, [`Durability`], chosen with
//! `?synchronous=normal|full` in the URL: by default a commit survives the
//! orchestrator being killed, and `full` makes it survive a power loss too.
//!
//! Each backend implements the few primitives of [`scrum_core::store::Store`] (load
//! with a version, write if the version holds, reserve a claim, read, the outbox);
//! enqueue, claim, apply, expire and acknowledge are scrum-core's, the same for
//! every store. Each passes the conformance suite of `scrum_core::conformance`
//! unchanged. The shared backends also implement the leader lease
//! ([`WorkQueue::lead`]) so that only one orchestrator polls GitHub, reaps leases
//! and applies the outbox at a time.
//!
//! # Layout
//!
//! - [`url`](StoreUrl): parsing `DATABASE_URL`; passwords never reach messages.
//! - [`Durability`]: what a commit survives.
//! - `logic`: what the stores share beyond `scrum_core::store` (indexed columns, JSON).
//! - `registry`: reading back what the worker registries store (every backend keeps
//!   its workers and probe reports beside its tasks, in a `workers` module).
//! - `sqlite`, `postgres`, `redis`: one backend each, behind its feature.
//!
//! # Example
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use scrum_core::{state::Policy, QueueCounts};
//! let dir = std::env::temp_dir().join(format!("scrum-store-lib-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let url = scrum_store::default_sqlite_path(&dir);
//! let queue = scrum_store::open(url.to_str().unwrap(), Policy::default()).await.unwrap();
//! assert_eq!(queue.counts().await.unwrap(), QueueCounts::default());
//! # drop(queue);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # });
//! ```

use std::sync::Arc;

use scrum_core::state::{Jitter, Policy};
use scrum_core::{Error, Result, WorkQueue};

mod durability;
// Each backend uses some of the shared helpers; a build with fewer backends leaves
// some unused.
#[cfg_attr(
    not(all(feature = "sqlite", feature = "postgres", feature = "redis")),
    allow(dead_code)
)]
mod logic;
// The worker registries' shared column readers.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "redis"))]
mod registry;
#[cfg(feature = "postgres")]
mod sql;
mod url;

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use durability::Durability;
pub use url::{SQLITE_FILE_NAME, StoreUrl, default_sqlite_path, redact_url};

#[cfg(feature = "postgres")]
pub use postgres::{POSTGRES_SCHEMA_VERSION, PostgresQueue};
#[cfg(feature = "redis")]
pub use redis::{REDIS_SCHEMA_VERSION, RedisQueue};
#[cfg(feature = "sqlite")]
pub use sqlite::{SQLITE_SCHEMA_VERSION, SqliteQueue};

/// Opens the store `url` names (see the crate docs for the forms), applying `policy`
/// with random backoff jitter.
///
/// Fails with [`scrum_core::ErrorKind::Invalid`] for an unknown scheme or a backend
/// this build was compiled without (the message names the cargo feature), and with
/// the backend's error when the store cannot be opened. No message contains the
/// URL's password.
pub async fn open(url: &str, policy: Policy) -> Result<Arc<dyn WorkQueue>> {
    open_with_jitter(url, policy, Jitter::random()).await
}

/// [`open`] with a chosen jitter source (deterministic tests).
pub async fn open_with_jitter(
    url: &str,
    policy: Policy,
    jitter: Jitter,
) -> Result<Arc<dyn WorkQueue>> {
    let parsed = StoreUrl::parse(url)?;
    match parsed {
        #[cfg(feature = "sqlite")]
        StoreUrl::Sqlite { path, durability } => Ok(Arc::new(
            SqliteQueue::open_with(path, durability, policy, jitter).await?,
        )),
        #[cfg(feature = "postgres")]
        StoreUrl::Postgres(url) => Ok(Arc::new(
            PostgresQueue::connect_with_jitter(&url, policy, jitter).await?,
        )),
        #[cfg(feature = "redis")]
        StoreUrl::Redis(url) => Ok(Arc::new(
            RedisQueue::connect_with_jitter(&url, policy, jitter).await?,
        )),
        #[allow(unreachable_patterns)]
        other => {
            let _ = (policy, jitter);
            Err(not_compiled(&other))
        }
    }
}

/// The error for a backend this build lacks.
#[allow(dead_code)]
fn not_compiled(url: &StoreUrl) -> Error {
    Error::invalid(format!(
        "DATABASE_URL {url} needs the {0} backend, which this build was compiled without \
         (enable the `{0}` feature of scrum-store)",
        url.backend()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_backend_names_its_feature_and_hides_the_password() {
        let url = StoreUrl::parse("redis://:hunter2@cache:6379").unwrap();
        let err = not_compiled(&url);
        assert_eq!(err.kind(), scrum_core::ErrorKind::Invalid);
        assert!(err.message().contains("`redis` feature"), "{err}");
        assert!(!err.message().contains("hunter2"), "{err}");
    }
}
