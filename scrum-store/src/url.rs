//! Where a store lives: parsing `DATABASE_URL` and keeping its password out of
//! messages.

use std::fmt;
use std::path::{Path, PathBuf};

use scrum_core::{Error, Result};

use crate::Durability;

/// The file name of the SQLite store inside the orchestrator's state directory.
pub const SQLITE_FILE_NAME: &str = "scrum-orchestrator.sqlite3";

/// The default store: a SQLite file in `state_dir`.
pub fn default_sqlite_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SQLITE_FILE_NAME)
}

/// A parsed `DATABASE_URL`: which backend, and where.
///
/// `Debug` and `Display` never show a password: `postgres://app:secret@db/x` prints
/// as `postgres://app:***@db/x`.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// A SQLite file: `sqlite:PATH`, `sqlite://PATH` or a plain path; the URL forms
    /// take `?synchronous=full` for [`Durability::Power`].
    Sqlite {
        /// The file.
        path: PathBuf,
        /// How durable each commit is.
        durability: Durability,
    },
    /// `postgres://…` or `postgresql://…`.
    Postgres(String),
    /// `redis://…` or `rediss://…`.
    Redis(String),
}

impl StoreUrl {
    /// Parses `url`. A string with no `scheme://` and no `sqlite:` prefix is a path to
    /// a SQLite file.
    ///
    /// ```
    /// use scrum_store::StoreUrl;
    /// assert!(matches!(StoreUrl::parse("/var/lib/scrum/state.sqlite3").unwrap(), StoreUrl::Sqlite { .. }));
    /// assert!(matches!(StoreUrl::parse("postgres://localhost/scrum").unwrap(), StoreUrl::Postgres(_)));
    /// let err = StoreUrl::parse("mysql://root:hunter2@db/scrum").unwrap_err();
    /// assert!(!err.to_string().contains("hunter2"));
    /// ```
    pub fn parse(url: &str) -> Result<StoreUrl> {
        let url = url.trim();
        if url.is_empty() {
            return Err(Error::invalid(
                "DATABASE_URL is empty: give a SQLite path, postgres://… or redis://…",
            ));
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            if path.is_empty() {
                return Err(Error::invalid("DATABASE_URL sqlite: names no file"));
            }
            return Ok(StoreUrl::Sqlite {
                path: PathBuf::from(path),
                durability: sqlite_durability(query)?,
            });
        }
        match url.split_once("://") {
            None => Ok(StoreUrl::Sqlite {
                path: PathBuf::from(url),
                durability: Durability::default(),
            }),
            Some((scheme, _)) => match scheme.to_ascii_lowercase().as_str() {
                "postgres" | "postgresql" => Ok(StoreUrl::Postgres(url.to_string())),
                "redis" | "rediss" => Ok(StoreUrl::Redis(url.to_string())),
                other => Err(Error::invalid(format!(
                    "DATABASE_URL {} has the unknown scheme {other:?}: use a SQLite path, \
                     postgres://… or redis://…",
                    redact_url(url)
                ))),
            },
        }
    }

    /// The backend's name: `sqlite`, `postgres` or `redis` (also the cargo feature).
    pub fn backend(&self) -> &'static str {
        match self {
            StoreUrl::Sqlite { .. } => "sqlite",
            StoreUrl::Postgres(_) => "postgres",
            StoreUrl::Redis(_) => "redis",
        }
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Sqlite { path, durability } => {
                write!(f, "sqlite:{}", path.display())?;
                if *durability != Durability::default() {
                    write!(f, "?synchronous={}", durability.as_str())?;
                }
                Ok(())
            }
            StoreUrl::Postgres(u) | StoreUrl::Redis(u) => f.write_str(&redact_url(u)),
        }
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreUrl({self})")
    }
}

/// The durability a URL's query asks for: `synchronous=normal|full`. Other
/// parameters are refused: SQLite has no others.
fn sqlite_durability(query: &str) -> Result<Durability> {
    let (rest, durability) = split_query(query)?;
    let durability = durability.unwrap_or(Durability::Process);
    if let Some(other) = rest.first() {
        return Err(Error::invalid(format!(
            "DATABASE_URL sqlite parameter {other:?} is not understood: the one parameter \
             is synchronous=normal or synchronous=full"
        )));
    }
    Ok(durability)
}

/// Splits `synchronous=…` off a query string: the other parameters, and the
/// durability it asks for (`None` when it does not say).
fn split_query(query: &str) -> Result<(Vec<&str>, Option<Durability>)> {
    let mut durability = None;
    let mut rest = Vec::new();
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        match kv.split_once('=') {
            Some(("synchronous", "normal")) => durability = Some(Durability::Process),
            Some(("synchronous", "full")) => durability = Some(Durability::Power),
            Some(("synchronous", other)) => {
                return Err(Error::invalid(format!(
                    "DATABASE_URL synchronous={other:?}: use synchronous=normal or synchronous=full"
                )));
            }
            _ => rest.push(kv),
        }
    }
    Ok((rest, durability))
}

/// `url` without its `synchronous` parameter, and the durability it asked for, if
/// any (for the server URLs, whose other parameters go to the driver).
#[cfg_attr(not(any(feature = "postgres", feature = "redis")), allow(dead_code))]
pub(crate) fn take_durability(url: &str) -> Result<(String, Option<Durability>)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), None));
    };
    let (rest, durability) = split_query(query)?;
    if rest.is_empty() {
        Ok((base.to_string(), durability))
    } else {
        Ok((format!("{base}?{}", rest.join("&")), durability))
    }
}

/// `url` without its `name=value` query parameter, and that value, if any: the
/// store's own parameters (`schema`, `prefix`) are taken off before the URL goes to
/// the driver.
#[cfg_attr(not(any(feature = "postgres", feature = "redis")), allow(dead_code))]
pub(crate) fn take_param(url: &str, name: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), None);
    };
    let mut value = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.split_once('=') {
            Some((k, v)) if k == name => {
                value = Some(v.to_string());
                false
            }
            _ => !kv.is_empty(),
        })
        .collect();
    match rest.is_empty() {
        true => (base.to_string(), value),
        false => (format!("{base}?{}", rest.join("&")), value),
    }
}

/// `url` with the password of its user-info part (and any `password=` query
/// parameter) replaced by `***`.
///
/// ```
/// use scrum_store::redact_url;
/// assert_eq!(redact_url("redis://:s3cret@cache:6379/0"), "redis://:***@cache:6379/0");
/// assert_eq!(redact_url("postgres://app@db/x?password=pw&sslmode=require"),
///            "postgres://app@db/x?password=***&sslmode=require");
/// assert_eq!(redact_url("postgres://db/x"), "postgres://db/x");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_pick_backends() {
        let cases = [
            ("/var/lib/scrum/s.sqlite3", "sqlite"),
            ("relative.db", "sqlite"),
            ("sqlite:/tmp/x.db", "sqlite"),
            ("sqlite:///tmp/x.db?synchronous=full", "sqlite"),
            ("postgres://u:p@h/db", "postgres"),
            ("postgresql://h/db", "postgres"),
            ("redis://127.0.0.1:6379/0", "redis"),
            ("rediss://h", "redis"),
        ];
        for (url, backend) in cases {
            assert_eq!(StoreUrl::parse(url).unwrap().backend(), backend, "{url}");
        }
        assert_eq!(
            StoreUrl::parse("sqlite:///tmp/x.db?synchronous=full").unwrap(),
            StoreUrl::Sqlite {
                path: PathBuf::from("/tmp/x.db"),
                durability: Durability::Power
            }
        );
        assert_eq!(
            StoreUrl::parse("sqlite:x.db").unwrap().to_string(),
            "sqlite:x.db"
        );
    }

    #[test]
    fn bad_urls_are_refused_without_their_password() {
        for url in [
            "",
            "   ",
            "sqlite:",
            "sqlite:x.db?mode=rwc",
            "mysql://root:hunter2@db/x",
        ] {
            let err = StoreUrl::parse(url).unwrap_err();
            assert_eq!(err.kind(), scrum_core::ErrorKind::Invalid);
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        let err = StoreUrl::parse("mysql://root:hunter2@db/x").unwrap_err();
        assert!(err.message().contains("\"mysql\""), "{err}");
    }

    #[test]
    fn display_and_debug_hide_passwords() {
        let url = StoreUrl::parse("postgres://app:s3cr3t@db:5432/scrum?password=also").unwrap();
        for shown in [url.to_string(), format!("{url:?}")] {
            assert!(
                !shown.contains("s3cr3t") && !shown.contains("also"),
                "{shown}"
            );
            assert!(shown.contains("app:***@db:5432/scrum"), "{shown}");
        }
        let (url, d) = take_durability("postgres://h/db?sslmode=require&synchronous=full").unwrap();
        assert_eq!(
            (url.as_str(), d),
            ("postgres://h/db?sslmode=require", Some(Durability::Power))
        );
        let (url, d) = take_durability("postgres://h/db?synchronous=normal").unwrap();
        assert_eq!(
            (url.as_str(), d),
            ("postgres://h/db", Some(Durability::Process))
        );
        assert_eq!(take_durability("postgres://h/db").unwrap().1, None);
        assert_eq!(
            take_param("postgres://h/db?sslmode=require&schema=fleet_a", "schema"),
            (
                "postgres://h/db?sslmode=require".to_string(),
                Some("fleet_a".to_string())
            )
        );
        assert_eq!(
            take_param("redis://h/0?prefix=a", "prefix"),
            ("redis://h/0".to_string(), Some("a".to_string()))
        );
        assert_eq!(
            take_param("redis://h/0", "prefix"),
            ("redis://h/0".to_string(), None)
        );
        assert!(take_durability("postgres://h/db?synchronous=off").is_err());
        // An '@' in the password does not leak its tail.
        assert_eq!(redact_url("redis://u:p@ss@h/0"), "redis://u:***@h/0");
    }
}
