//! Connecting to PostgreSQL: the schema to work in and versioned migrations, applied
//! under an advisory lock so orchestrators starting together migrate once.

use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, Row};

use scrum_core::{Error, ErrorKind, Result};

use crate::sql::db_error;

/// The schema, one entry per version: version `n` is `MIGRATIONS[n - 1]`. Entries
/// are only ever appended; a database at a higher version is from a newer build and
/// is refused rather than misread.
const MIGRATIONS: &[&str] = &[
    // 1: tasks with their indexed columns, a version for compare-and-set writes and
    // the end of a claim's reservation; the outbox; and the leader lease.
    r#"CREATE TABLE tasks (
        repo TEXT COLLATE "C" NOT NULL,
        number BIGINT NOT NULL,
        version BIGINT NOT NULL,
        state TEXT NOT NULL,
        claimable BOOLEAN NOT NULL,
        priority SMALLINT NOT NULL,
        created_at BIGINT NOT NULL,
        not_before BIGINT NOT NULL,
        lease_expires_at BIGINT,
        reserved_until BIGINT,
        holder TEXT,
        task TEXT NOT NULL,
        PRIMARY KEY (repo, number)
    );
    CREATE INDEX tasks_claim ON tasks (priority, created_at, repo, number) WHERE claimable;
    CREATE INDEX tasks_lease ON tasks (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
    CREATE INDEX tasks_state ON tasks (state);
    CREATE INDEX tasks_reserved ON tasks (reserved_until) WHERE reserved_until IS NOT NULL;
    CREATE TABLE outbox (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        repo TEXT NOT NULL,
        number BIGINT NOT NULL,
        effect TEXT NOT NULL,
        failures INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE leader (
        id SMALLINT PRIMARY KEY CHECK (id = 1),
        holder TEXT NOT NULL,
        expires_at BIGINT NOT NULL
    );"#,
    // 2: each effect's own retry schedule, so failing effects hold back only their
    // task's later effects; set-aside (dead) effects wait for an operator.
    r#"ALTER TABLE outbox ADD COLUMN next_attempt_at BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN dead BOOLEAN NOT NULL DEFAULT FALSE,
        ADD COLUMN refused BOOLEAN NOT NULL DEFAULT FALSE,
        ADD COLUMN last_error TEXT;
    CREATE INDEX outbox_task ON outbox (repo, number, id);
    CREATE INDEX outbox_failing ON outbox (id) WHERE failures > 0;"#,
    // 3: the worker registry (`super::workers`): one row per worker that called (or
    // that an operator drained), and the leader's latest probe report per host.
    r#"CREATE TABLE workers (
        id TEXT COLLATE "C" PRIMARY KEY,
        address TEXT,
        first_seen BIGINT,
        last_seen BIGINT,
        completed BIGINT NOT NULL DEFAULT 0,
        failed BIGINT NOT NULL DEFAULT 0,
        draining BOOLEAN NOT NULL DEFAULT false
    );
    CREATE TABLE probes (
        host TEXT COLLATE "C" PRIMARY KEY,
        health TEXT NOT NULL,
        reason TEXT,
        at BIGINT NOT NULL
    );"#,
    // 4: file-level locks (`scrum_core::locks`): each task's lock keys, the
    // in-progress ones that hold any, and the overlap test of
    // `scrum_core::locks::key_overlaps` in SQL.
    r#"ALTER TABLE tasks ADD COLUMN locks TEXT[] NOT NULL DEFAULT '{}';
    CREATE INDEX tasks_locked ON tasks (lease_expires_at) WHERE cardinality(locks) > 0;"#,
    // Lock overlap is decided in Rust (`scrum_core::locks`): the SQL function
    // schema 4 had is gone.
    r#"DROP FUNCTION IF EXISTS scrum_locks_overlap(TEXT[], TEXT[]);"#,
    // 6: the sandbox each worker says its agents run in (`super::workers`); rows
    // of earlier versions have none (NULL: the worker never said).
    r#"ALTER TABLE workers ADD COLUMN sandbox TEXT;"#,
];

/// The schema version this build writes.
pub(crate) const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// Whether `name` is a schema name this crate accepts: lower-case letters, digits
/// and `_`, not starting with a digit, at most 63 characters.
pub(crate) fn valid_schema_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Creates `schema` if needed and brings it to [`SCHEMA_VERSION`]. The pool's
/// connections have `search_path` set to it; `None` works in the connection's
/// current schema (normally `public`).
pub(crate) async fn migrate(pool: &PgPool, schema: Option<&str>, target: &str) -> Result<()> {
    let fail = |e| db_error("migrate the PostgreSQL store", e);
    let mut tx = pool.begin().await.map_err(fail)?;
    let schema = match schema {
        Some(s) => s.to_string(),
        None => sqlx::query("SELECT current_schema()::TEXT")
            .fetch_one(&mut *tx)
            .await
            .map_err(fail)?
            .get::<Option<String>, _>(0)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "store: {target}: the search_path names no existing schema"
                ))
            })?,
    };
    // Orchestrators starting at once queue here; the first migrates, the others then
    // find the schema current.
    sqlx::query("SELECT pg_advisory_xact_lock(1396920909, hashtext($1))")
        .bind(&schema)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
    let exists: bool = sqlx::query("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(&schema)
        .fetch_one(&mut *tx)
        .await
        .map_err(fail)?
        .get(0);
    if !exists {
        if !valid_schema_name(&schema) {
            return Err(Error::invalid(format!(
                "store: schema name {schema:?} must be lower-case letters, digits and '_'"
            )));
        }
        // The name was validated above, so quoting it is enough.
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
    }
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS scrum_schema (version INTEGER NOT NULL)")
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
    let version: i64 = sqlx::query("SELECT coalesce(max(version), 0)::BIGINT FROM scrum_schema")
        .fetch_one(&mut *tx)
        .await
        .map_err(fail)?
        .get(0);
    let version = usize::try_from(version).unwrap_or(usize::MAX);
    if version > SCHEMA_VERSION {
        return Err(Error::new(
            ErrorKind::Corrupt,
            format!(
                "store: {target} has schema version {version}, written by a newer \
                 scrum-store (this build knows versions up to {SCHEMA_VERSION}); upgrade \
                 every orchestrator that shares it"
            ),
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        sqlx::raw_sql(*sql).execute(&mut *tx).await.map_err(fail)?;
        sqlx::query("INSERT INTO scrum_schema (version) VALUES ($1)")
            .bind(i32::try_from(i + 1).unwrap_or(i32::MAX))
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
    }
    tx.commit().await.map_err(fail)
}
