//! One request to GitLab the careful way: the token sent as `PRIVATE-TOKEN`, 5xx,
//! timeouts and malformed answers retried with backoff (reads and idempotent
//! writes only), the rate-limit headers kept, a 429 turned into `RateLimited` with
//! its `retry_after`, and every page of a list read, conditionally where an ETag
//! was given before.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, Method, StatusCode};
use scrum_core::{Error, ErrorKind, Result, Timestamp};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::{GitLabConfig, Timing};

/// GitLab's largest page.
pub(crate) const PER_PAGE: u32 = 100;

/// The most pages kept for `If-None-Match`; past it the cache starts over.
const ETAG_PAGES_MAX: usize = 10_000;

/// An answer that was a success (2xx, or 304 to a conditional read).
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body parsed as `T`.
    pub(crate) fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T> {
        serde_json::from_str(&self.body).map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("GitLab's answer to {what} has an unexpected shape"),
            )
            .with_source(e)
        })
    }

    /// The next page's number, from `x-next-page` (empty on the last page).
    fn next_page(&self) -> Option<u32> {
        self.header("x-next-page")
            .and_then(|p| p.trim().parse().ok())
    }
}

/// A page read before, kept for `If-None-Match`.
struct Cached {
    etag: String,
    reply: Reply,
}

/// The HTTP client, the token and what GitLab said of the rate limit.
pub(crate) struct Transport {
    http: reqwest::Client,
    /// `{url}/api/v4`.
    api: String,
    token: String,
    timing: Timing,
    /// `RateLimit-Remaining` and `RateLimit-Reset` of the last answer that had them.
    rate: Mutex<Option<(u64, Timestamp)>>,
    /// Pages of listings by URL, with their ETags.
    etags: Mutex<HashMap<String, Cached>>,
}

impl Transport {
    pub(crate) fn new(config: &GitLabConfig) -> Result<Transport> {
        // reqwest is built without a default TLS provider: use ring, the one
        // stack of the workspace. Installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(config.timing.request_timeout)
            .user_agent(concat!("scrum-orchestrator/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::invalid("could not build the HTTP client").with_source(e))?;
        Ok(Transport {
            http,
            api: format!("{}/api/v4", config.url),
            token: config.token.clone(),
            timing: config.timing.clone(),
            rate: Mutex::new(None),
            etags: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn rate_limit(&self) -> Option<(u64, Timestamp)> {
        *self.rate.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A GET of `path` (with its query), parsed, retried also when the answer
    /// is malformed.
    pub(crate) async fn get_json<T: DeserializeOwned>(&self, path: &str, what: &str) -> Result<T> {
        let mut tries = 0;
        loop {
            let reply = self.send(Method::GET, path, None, None, what).await?;
            match reply.json(what) {
                Ok(v) => return Ok(v),
                Err(e) if tries < self.timing.retries => {
                    tracing::debug!(error = %e, "retrying a malformed GitLab answer");
                    tries += 1;
                    tokio::time::sleep(self.backoff(tries)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A GET of plain text (a job's log).
    pub(crate) async fn get_text(&self, path: &str, what: &str) -> Result<String> {
        Ok(self.send(Method::GET, path, None, None, what).await?.body)
    }

    /// A write with a JSON body, parsed. PUTs are retried; a POST is not (its
    /// caller checks whether it happened).
    pub(crate) async fn write<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Value,
        what: &str,
    ) -> Result<T> {
        self.send(method, path, Some(body), None, what)
            .await?
            .json(what)
    }

    /// Every page of the list at `path` (which has a query already), in order.
    /// With `conditional`, each page is asked for with the ETag it had last time
    /// and a 304 reuses it: an unchanged list costs GitLab no work.
    pub(crate) async fn get_all<T: DeserializeOwned>(
        &self,
        path: &str,
        conditional: bool,
        what: &str,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let mut page = 1;
        loop {
            let url = format!("{path}&per_page={PER_PAGE}&page={page}");
            let reply = match conditional {
                true => self.get_conditional(&url, what).await?,
                false => self.send(Method::GET, &url, None, None, what).await?,
            };
            let mut items: Vec<T> = match reply.json(what) {
                Ok(items) => items,
                Err(_) => {
                    // A malformed page: read it again, without its ETag.
                    self.forget(&url);
                    self.send(Method::GET, &url, None, None, what)
                        .await?
                        .json(what)?
                }
            };
            out.append(&mut items);
            match reply.next_page() {
                Some(next) if next > page => page = next,
                _ => return Ok(out),
            }
        }
    }

    async fn get_conditional(&self, url: &str, what: &str) -> Result<Reply> {
        let etag = self.cached(url).map(|c| c.0);
        let reply = self
            .send(Method::GET, url, None, etag.as_deref(), what)
            .await?;
        if reply.status == StatusCode::NOT_MODIFIED {
            if let Some((_, cached)) = self.cached(url) {
                return Ok(cached);
            }
            // A 304 for a page no longer kept: ask again in full.
            return self.send(Method::GET, url, None, None, what).await;
        }
        if let Some(etag) = reply.header("etag") {
            let cached = Cached {
                etag: etag.to_string(),
                reply: reply.clone(),
            };
            let mut etags = self.lock_etags();
            if etags.len() >= ETAG_PAGES_MAX {
                etags.clear();
            }
            etags.insert(url.to_string(), cached);
        }
        Ok(reply)
    }

    fn cached(&self, url: &str) -> Option<(String, Reply)> {
        self.lock_etags()
            .get(url)
            .map(|c| (c.etag.clone(), c.reply.clone()))
    }

    fn forget(&self, url: &str) {
        self.lock_etags().remove(url);
    }

    fn lock_etags(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.etags.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn backoff(&self, tries: u32) -> Duration {
        let factor = 1u32 << tries.min(16);
        self.timing
            .backoff_base
            .saturating_mul(factor)
            .min(self.timing.backoff_max)
    }

    /// Sends one request, retrying transient failures of idempotent ones.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        if_none_match: Option<&str>,
        what: &str,
    ) -> Result<Reply> {
        let idempotent = method != Method::POST;
        let mut tries = 0;
        loop {
            let result = self
                .send_once(&method, path, body.as_ref(), if_none_match, what)
                .await;
            match result {
                Err(e) if idempotent && transient(&e) && tries < self.timing.retries => {
                    tries += 1;
                    tracing::debug!(error = %e, tries, "retrying a GitLab request");
                    tokio::time::sleep(self.backoff(tries)).await;
                }
                other => return other,
            }
        }
    }

    async fn send_once(
        &self,
        method: &Method,
        path: &str,
        body: Option<&Value>,
        if_none_match: Option<&str>,
        what: &str,
    ) -> Result<Reply> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.api))
            .header("PRIVATE-TOKEN", &self.token);
        if let Some(etag) = if_none_match {
            req = req.header(http::header::IF_NONE_MATCH, etag);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let response = req.send().await.map_err(|e| request_error(e, what))?;
        let status = response.status();
        let headers = response.headers().clone();
        self.note_rate_limit(&headers);
        let body = response.text().await.map_err(|e| request_error(e, what))?;
        let reply = Reply {
            status,
            headers,
            body,
        };
        if status.is_success() || status == StatusCode::NOT_MODIFIED {
            Ok(reply)
        } else {
            Err(classify(&reply, what))
        }
    }

    fn note_rate_limit(&self, headers: &HeaderMap) {
        let num = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        if let (Some(remaining), Some(reset)) = (num("ratelimit-remaining"), num("ratelimit-reset"))
        {
            let reset = Timestamp(i64::try_from(reset.saturating_mul(1000)).unwrap_or(i64::MAX));
            *self.rate.lock().unwrap_or_else(|e| e.into_inner()) = Some((remaining, reset));
        }
    }
}

/// Whether trying again may help.
fn transient(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout)
}

fn request_error(e: reqwest::Error, what: &str) -> Error {
    // reqwest's message may hold the URL, never the token (a header).
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Unavailable
    };
    Error::new(kind, format!("GitLab did not answer {what}")).with_source(e)
}

/// GitLab's `message` (or `error`) of an error body.
pub(crate) fn gitlab_message(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let text = match v.get("message").or_else(|| v.get("error")) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => body.chars().take(200).collect(),
    };
    text.trim().to_string()
}

/// GitLab's answer as an error: the one place a status becomes a kind.
fn classify(reply: &Reply, what: &str) -> Error {
    let message = gitlab_message(&reply.body);
    let kind = match reply.status.as_u16() {
        401 => ErrorKind::Unauthorized,
        403 => ErrorKind::Forbidden,
        404 => ErrorKind::NotFound,
        409 => ErrorKind::Conflict,
        400 | 405 | 422 => ErrorKind::Invalid,
        429 => ErrorKind::RateLimited,
        408 | 500..=599 => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    };
    let text = match kind {
        ErrorKind::Unauthorized => format!(
            "GitLab refused the token for {what} (401 {message}): check that it is valid and not expired"
        ),
        ErrorKind::Forbidden => format!(
            "GitLab forbade {what} (403 {message}): the token needs the api scope and Developer access"
        ),
        ErrorKind::NotFound => format!("{what}: not found on GitLab (404 {message})"),
        ErrorKind::RateLimited => format!("GitLab's rate limit was reached during {what}"),
        _ => format!(
            "GitLab answered {} to {what}: {message}",
            reply.status.as_u16()
        ),
    };
    let error = Error::new(kind, text);
    match (kind, retry_after(reply)) {
        (ErrorKind::RateLimited, Some(after)) => error.with_retry_after(after),
        (ErrorKind::RateLimited, None) => error.with_retry_after(Duration::from_secs(60)),
        _ => error,
    }
}

/// How long a 429 asks to wait: `Retry-After`, else until `RateLimit-Reset`.
fn retry_after(reply: &Reply) -> Option<Duration> {
    if let Some(secs) = reply
        .header("retry-after")
        .and_then(|v| v.trim().parse().ok())
    {
        return Some(Duration::from_secs(secs));
    }
    let reset: u64 = reply.header("ratelimit-reset")?.trim().parse().ok()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(reset.saturating_sub(now).max(1)))
}

/// `path` as GitLab takes a project's `:id`: URL-encoded (`group%2Fsub%2Fproject`).
pub(crate) fn project_id(path: &str) -> String {
    encode(path)
}

/// Percent-encodes everything but unreserved characters (for paths and queries).
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_path_is_encoded_whole() {
        assert_eq!(project_id("group/sub/project"), "group%2Fsub%2Fproject");
        assert_eq!(encode("needs review,c++"), "needs%20review%2Cc%2B%2B");
    }
}
