//! Sending one request to GitHub the careful way: rate limits waited out, 5xx,
//! timeouts and malformed answers retried with backoff, and the status kept current.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, Method, StatusCode, header};
use octocrab::Octocrab;
use scrum_core::observe::ObserverSlot;
use scrum_core::{Error, ErrorKind, Result};
use serde_json::Value;

use crate::app::Installations;
use crate::classify::{What, classify, github_message};
use crate::config::{Auth, GitHubConfig, Timing};
use crate::status::StatusCell;

/// One request to make.
pub(crate) struct Call {
    pub(crate) method: Method,
    /// Path and query, starting with `/`.
    pub(crate) path: String,
    pub(crate) body: Option<Value>,
    pub(crate) if_none_match: Option<String>,
    pub(crate) what: What,
    /// Whether sending it twice does no harm. A non-idempotent call (posting a
    /// comment) is not retried after a failure that may have followed the write: its
    /// caller checks what happened first.
    pub(crate) idempotent: bool,
    /// Whether the answer is text rather than JSON (a job's log).
    pub(crate) text: bool,
}

impl Call {
    pub(crate) fn get(path: String, what: What) -> Call {
        Call {
            method: Method::GET,
            path,
            body: None,
            if_none_match: None,
            what,
            idempotent: true,
            text: false,
        }
    }

    pub(crate) fn with_body(method: Method, path: String, body: Value, what: What) -> Call {
        Call {
            idempotent: method != Method::POST,
            method,
            path,
            body: Some(body),
            if_none_match: None,
            what,
            text: false,
        }
    }

    /// Marks a POST that is safe to repeat (adding labels; creating what GitHub
    /// refuses to create twice).
    pub(crate) fn idempotent(mut self) -> Call {
        self.idempotent = true;
        self
    }
}

/// An answer the transport did not turn into an error: 2xx, 304, or a 4xx the caller
/// decides about (404 for an absent label, 422 for an existing one).
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Reply {
    /// The reply when it is a success (2xx or 304); otherwise the classified error.
    pub(crate) fn success(self, what: &What) -> Result<Reply> {
        if self.status.is_success() || self.status == StatusCode::NOT_MODIFIED {
            Ok(self)
        } else {
            Err(classify(self.status, &self.body, what))
        }
    }

    /// The body parsed as `T`.
    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self, what: &What) -> Result<T> {
        serde_json::from_str(&self.body).map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("GitHub's answer to {what} has an unexpected shape"),
            )
            .with_source(e)
        })
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// GitHub's error message, for callers that accept some 4xx.
    pub(crate) fn message(&self) -> String {
        github_message(&self.body)
    }
}

/// The octocrab client, the timing and the rate-limit bookkeeping.
pub(crate) struct Transport {
    octo: Octocrab,
    pub(crate) timing: Timing,
    /// A token, or a GitHub App whose installation tokens are used.
    pub(crate) auth: Auth,
    pub(crate) status: StatusCell,
    /// The pacing of each token: the personal token's (or the app's own, for its
    /// JWT requests) under `None`, each installation's under its id. GitHub
    /// counts and limits each of them apart.
    lanes: Mutex<HashMap<Option<u64>, Arc<Lane>>>,
    /// `GITHUB_CONCURRENCY`, the bound of each lane.
    concurrency: usize,
    /// The app's installations and their tokens.
    pub(crate) installations: Installations,
    /// Told of every request's kind, status and duration (the API's metrics).
    pub(crate) observer: ObserverSlot,
    /// Points spent in each of GitHub's budgets since start, all tokens together.
    pub(crate) spent: Spent,
}

/// One token's pacing: its rate-limit hold, its requests in flight, its writes.
pub(crate) struct Lane {
    /// Set when GitHub said to wait (no primary points left, or a secondary rate
    /// limit's `retry-after`): a limit is the token's, so no request is sent
    /// with it before then, whichever request met it.
    hold_until: Mutex<Option<(SystemTime, String)>>,
    /// Bounds the requests in flight (`GITHUB_CONCURRENCY`): reads of different
    /// issues and repositories go out together, up to this many.
    in_flight: tokio::sync::Semaphore,
    /// Held by a write from before its spacing wait until it was sent: one write
    /// at a time per token, spaced by `write_spacing`, as GitHub asks of
    /// content-creating requests. A read never waits for a write's spacing (a
    /// claim's or a poll's read must not queue behind a second of label writes).
    last_write: tokio::sync::Mutex<Option<tokio::time::Instant>>,
    /// Points this token spent.
    pub(crate) spent: Spent,
}

impl Lane {
    fn new(concurrency: usize) -> Lane {
        Lane {
            hold_until: Mutex::new(None),
            in_flight: tokio::sync::Semaphore::new(concurrency.max(1)),
            last_write: tokio::sync::Mutex::new(None),
            spent: Spent::default(),
        }
    }

    /// When GitHub said no request may be sent before, if that is still ahead.
    fn held(&self) -> Option<(SystemTime, String)> {
        let hold = self.hold_until.lock().unwrap_or_else(|e| e.into_inner());
        hold.clone().filter(|(until, _)| *until > SystemTime::now())
    }

    /// Holds every request until `until` (a later hold already set stands).
    fn hold(&self, until: SystemTime, reason: &str) {
        let mut hold = self.hold_until.lock().unwrap_or_else(|e| e.into_inner());
        if hold.as_ref().is_none_or(|(at, _)| *at < until) {
            *hold = Some((until, reason.to_string()));
        }
    }
}

/// Rate-limit points spent since start: REST's (every answer but a 304) and
/// GraphQL's (each query's `rateLimit { cost }`), which GitHub keeps apart.
#[derive(Debug, Default)]
pub(crate) struct Spent {
    rest: AtomicU64,
    graphql: AtomicU64,
}

impl Spent {
    /// (REST points, GraphQL points) so far.
    pub(crate) fn get(&self) -> (u64, u64) {
        (
            self.rest.load(Ordering::Relaxed),
            self.graphql.load(Ordering::Relaxed),
        )
    }

    fn add_rest(&self, points: u64) {
        self.rest.fetch_add(points, Ordering::Relaxed);
    }

    fn add_graphql(&self, points: u64) {
        self.graphql.fetch_add(points, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("timing", &self.timing)
            .finish_non_exhaustive()
    }
}

/// What to do after one try.
enum Next {
    Done(Result<Reply>),
    /// A transient failure: back off and retry while retries remain.
    Retry(Error),
    /// A rate limit: wait until then (or fail when that is too long).
    Wait(SystemTime, String),
}

impl Transport {
    pub(crate) fn new(config: &GitHubConfig) -> Result<Transport> {
        let invalid_url = |e: octocrab::Error| {
            Error::invalid(format!(
                "GITHUB_API_URL {:?} is not a usable URL: {e}",
                config.api_url
            ))
        };
        let octo = Octocrab::builder()
            .base_uri(config.api_url.as_str())
            .map_err(invalid_url)?
            .add_retry_config(octocrab::service::middleware::retry::RetryConfig::None)
            .set_connect_timeout(Some(config.timing.request_timeout))
            .build()
            .map_err(|e| {
                Error::new(
                    ErrorKind::Internal,
                    format!("could not build the GitHub client: {e}"),
                )
            })?;
        Ok(Transport {
            octo,
            timing: config.timing,
            auth: config.auth().clone(),
            status: StatusCell::new(),
            lanes: Mutex::new(HashMap::new()),
            concurrency: config.concurrency.max(1),
            installations: Installations::default(),
            observer: ObserverSlot::new(),
            spent: Spent::default(),
        })
    }

    /// The lane of the personal token or the app (`None`), or of an installation.
    pub(crate) fn lane(&self, installation: Option<u64>) -> Arc<Lane> {
        let mut lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        lanes
            .entry(installation)
            .or_insert_with(|| Arc::new(Lane::new(self.concurrency)))
            .clone()
    }

    /// Points spent with each installation's tokens: (installation, REST, GraphQL).
    pub(crate) fn spent_by_installation(&self) -> Vec<(u64, u64, u64)> {
        let lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<(u64, u64, u64)> = lanes
            .iter()
            .filter_map(|(id, lane)| {
                let (rest, graphql) = lane.spent.get();
                id.map(|id| (id, rest, graphql))
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// Sends `call`, retrying transient failures and waiting out rate limits, with
    /// the personal token, or as the app's installation on the call's repository.
    ///
    /// Returns 2xx, 304 and the 4xx answers other than 401 and rate limits; the
    /// caller decides about those with [`Reply::success`].
    pub(crate) async fn send(&self, call: &Call) -> Result<Reply> {
        match &self.auth {
            Auth::Token(token) => self.send_on(&self.lane(None), call, token).await,
            Auth::App(app) => self.send_as_installation(app, call).await,
        }
    }

    /// Sends `call` on `lane` with `bearer`: a write waits its turn and spacing.
    pub(crate) async fn send_on(&self, lane: &Lane, call: &Call, bearer: &str) -> Result<Reply> {
        // GraphQL is queried with POST, but our queries only read; the app's
        // token requests create no content.
        if call.method == Method::GET || call.path == "/graphql" || call.path.starts_with("/app/") {
            return self.send_in_turn(lane, call, bearer).await;
        }
        let mut last_write = lane.last_write.lock().await;
        if let Some(at) = *last_write {
            tokio::time::sleep_until(at + self.timing.write_spacing).await;
        }
        let result = self.send_in_turn(lane, call, bearer).await;
        *last_write = Some(tokio::time::Instant::now());
        result
    }

    /// Sends `call` once a slot of `GITHUB_CONCURRENCY` is free.
    async fn send_in_turn(&self, lane: &Lane, call: &Call, bearer: &str) -> Result<Reply> {
        let _slot = lane
            .in_flight
            .acquire()
            .await
            .map_err(|_| Error::new(ErrorKind::Internal, "the GitHub client was shut down"))?;
        self.send_with_retries(lane, call, bearer).await
    }

    async fn send_with_retries(&self, lane: &Lane, call: &Call, bearer: &str) -> Result<Reply> {
        let mut retries = 0;
        let mut waits = 0;
        loop {
            let next = match lane.held() {
                Some((until, reason)) => Next::Wait(until, reason),
                None => self.try_once(lane, call, bearer).await,
            };
            match next {
                Next::Done(result) => return result,
                Next::Retry(err) => {
                    retries += 1;
                    if retries > self.timing.retries || !call.idempotent {
                        self.status.degraded(err.message().to_string(), None);
                        return Err(err);
                    }
                    tracing::warn!(error = %err, retry = retries, "GitHub request failed; retrying");
                    self.pause(retries).await;
                }
                Next::Wait(until, reason) => {
                    waits += 1;
                    lane.hold(until, &reason);
                    let wait = until.duration_since(SystemTime::now()).unwrap_or_default();
                    let reason = format!("{reason}; waiting {}s before retrying", wait.as_secs());
                    self.status.degraded(reason.clone(), Some(until));
                    if wait > self.timing.max_rate_limit_wait || waits > 5 {
                        return Err(Error::new(
                            ErrorKind::RateLimited,
                            format!("GitHub rate limit while trying to {}: {reason}", call.what),
                        )
                        .with_retry_after(wait));
                    }
                    tracing::warn!(what = %call.what, ?wait, "GitHub rate limit; waiting");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Counts the cost of a GraphQL answer whose `data` holds `rateLimit { cost }`,
    /// sent as `call`.
    pub(crate) fn spent_graphql(&self, call: &Call, data: &serde_json::Map<String, Value>) {
        let cost = data
            .get("rateLimit")
            .and_then(|r| r.get("cost"))
            .and_then(Value::as_u64)
            .unwrap_or(1);
        self.spent.add_graphql(cost);
        if let Auth::App(_) = &self.auth {
            let owner = call.what.subject.repo();
            if let Some(id) = self.installations.of(owner.owner()) {
                self.lane(Some(id)).spent.add_graphql(cost);
            }
        }
        self.observer.get().source_points("graphql", cost);
    }

    /// Sleeps the backoff before retry number `retry` (1-based).
    pub(crate) async fn pause(&self, retry: u32) {
        tokio::time::sleep(backoff(&self.timing, retry)).await;
    }

    /// How many retries a transient failure gets.
    pub(crate) fn retries(&self) -> u32 {
        self.timing.retries
    }

    async fn try_once(&self, lane: &Lane, call: &Call, bearer: &str) -> Next {
        let mut auth = match http::HeaderValue::from_str(&format!("Bearer {bearer}")) {
            Ok(v) => v,
            Err(_) => {
                return Next::Done(Err(Error::invalid(
                    "the GitHub token holds characters a header cannot carry",
                )));
            }
        };
        auth.set_sensitive(true);
        let mut builder = http::Request::builder()
            .method(call.method.clone())
            .uri(call.path.as_str())
            .header(header::ACCEPT, "application/vnd.github+json")
            .header(header::AUTHORIZATION, auth);
        if let Some(tag) = &call.if_none_match {
            builder = builder.header(header::IF_NONE_MATCH, tag.as_str());
        }
        let request = match self.octo.build_request(builder, call.body.as_ref()) {
            Ok(r) => r,
            Err(e) => {
                return Next::Done(Err(Error::invalid(format!(
                    "could not build the request to {}: {e}",
                    call.what
                ))));
            }
        };
        let exchange = async {
            let response = self.octo.execute(request).await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = self.octo.body_to_string(response).await?;
            Ok::<_, octocrab::Error>((status, headers, body))
        };
        let started = tokio::time::Instant::now();
        let answer = tokio::time::timeout(self.timing.request_timeout, exchange).await;
        let status = match &answer {
            Ok(Ok((status, _, _))) => status.as_str(),
            Ok(Err(_)) => "error",
            Err(_) => "timeout",
        };
        self.observer
            .get()
            .source_request(call.what.kind(), status, started.elapsed());
        let (status, headers, body) = match answer {
            Err(_) => {
                return Next::Retry(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "GitHub did not answer within {:?} to {}",
                        self.timing.request_timeout, call.what
                    ),
                ));
            }
            Ok(Err(e)) => {
                return Next::Retry(Error::unavailable(format!(
                    "could not reach GitHub to {}: {e}",
                    call.what
                )));
            }
            Ok(Ok(answer)) => answer,
        };
        if status != StatusCode::NOT_MODIFIED && call.path != "/graphql" {
            self.spent.add_rest(1);
            lane.spent.add_rest(1);
            self.observer.get().source_points("rest", 1);
        }
        let limit = self.note_rate_limit(lane, &headers);
        let reply = Reply {
            status,
            headers,
            body,
        };
        match status.as_u16() {
            200..=299 | 304 => {
                if !call.text
                    && !reply.body.trim().is_empty()
                    && serde_json::from_str::<serde::de::IgnoredAny>(&reply.body).is_err()
                {
                    return Next::Retry(Error::unavailable(format!(
                        "GitHub's answer to {} is not valid JSON (cut short?)",
                        call.what
                    )));
                }
                self.status.healthy();
                Next::Done(Ok(reply))
            }
            403 | 429 => match self.rate_limit_wait(&reply, limit) {
                Some((until, reason)) => Next::Wait(until, reason),
                None => {
                    self.status.healthy();
                    Next::Done(Ok(reply))
                }
            },
            401 => {
                let err = classify(status, &reply.body, &call.what);
                self.status.degraded(err.message().to_string(), None);
                Next::Done(Err(err))
            }
            500..=599 => Next::Retry(classify(status, &reply.body, &call.what)),
            _ => {
                self.status.healthy();
                Next::Done(Ok(reply))
            }
        }
    }

    /// Reads `x-ratelimit-*`; remembers an exhausted primary limit. GraphQL's
    /// budget is its own: its headers neither show as the primary limit nor hold
    /// REST requests.
    fn note_rate_limit(&self, lane: &Lane, headers: &HeaderMap) -> (Option<u64>, Option<u64>) {
        let num =
            |name: &str| -> Option<u64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
        let (remaining, reset) = (num("x-ratelimit-remaining"), num("x-ratelimit-reset"));
        let resource = headers
            .get("x-ratelimit-resource")
            .and_then(|v| v.to_str().ok());
        if resource.is_some_and(|r| r != "core") {
            return (remaining, reset);
        }
        self.status.rate_limit(remaining, reset);
        if let (Some(0), Some(reset)) = (remaining, reset) {
            let until = UNIX_EPOCH + Duration::from_secs(reset) + self.slack();
            lane.hold(
                until,
                "the primary rate limit is used up (x-ratelimit-remaining: 0)",
            );
        }
        (remaining, reset)
    }

    /// A little margin past a reset time, for clock skew (small when tests shrink timing).
    fn slack(&self) -> Duration {
        self.timing.backoff_base.min(Duration::from_secs(1))
    }

    /// Whether a 403/429 is a rate limit, and until when to wait.
    fn rate_limit_wait(
        &self,
        reply: &Reply,
        (remaining, reset): (Option<u64>, Option<u64>),
    ) -> Option<(SystemTime, String)> {
        let now = SystemTime::now();
        if let Some(secs) = reply
            .header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            return Some((
                now + Duration::from_secs(secs),
                format!(
                    "secondary rate limit ({} retry-after: {secs})",
                    reply.status.as_u16()
                ),
            ));
        }
        if let (Some(0), Some(reset)) = (remaining, reset) {
            return Some((
                UNIX_EPOCH + Duration::from_secs(reset) + self.slack(),
                format!(
                    "primary rate limit used up ({} x-ratelimit-remaining: 0)",
                    reply.status.as_u16()
                ),
            ));
        }
        let message = reply.message().to_ascii_lowercase();
        if reply.status == StatusCode::TOO_MANY_REQUESTS || message.contains("rate limit") {
            return Some((
                now + self.timing.secondary_default_wait,
                format!("secondary rate limit ({})", reply.status.as_u16()),
            ));
        }
        None
    }
}

/// Exponential backoff with jitter: `base * 2^(retry-1)`, capped, then a random
/// point in its upper half.
fn backoff(timing: &Timing, retry: u32) -> Duration {
    let exp = timing
        .backoff_base
        .saturating_mul(1u32 << retry.saturating_sub(1).min(20));
    let cap = exp.min(timing.backoff_max);
    let half = cap / 2;
    half + half.mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let t = Timing {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(1000),
            ..Timing::default()
        };
        for _ in 0..50 {
            let first = backoff(&t, 1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = backoff(&t, 3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            assert!(backoff(&t, 30) <= Duration::from_millis(1000));
        }
    }
}
