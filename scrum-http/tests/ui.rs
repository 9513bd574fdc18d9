//! The dashboard at `/ui` through the router: every link and form on every page
//! answers, `GET /` for browsers and for JSON clients, the login, the CSRF token,
//! the access rules, and an action done from a form.

mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{Fixture, LOOPBACK, call_raw};
use scrum_core::{
    Completion, EffectFailure, Failure, LeaseKind, TaskId, TaskState, Timestamp, WorkQueue,
    WorkerId,
};
use scrum_http::{ApiConfig, ApiToken};

const TOKEN: &str = "ui-test-token-0123456789";

/// A browser's cookie jar, enough for the dashboard's two cookies.
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn take(&mut self, headers: &axum::http::HeaderMap) {
        for v in headers.get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let pair = v.split(';').next().unwrap();
            let (k, val) = pair.split_once('=').unwrap();
            if val.is_empty() {
                self.0.remove(k);
            } else {
                self.0.insert(k.to_string(), val.to_string());
            }
        }
    }
}

struct Browser<'a> {
    f: &'a Fixture,
    jar: Jar,
    peer: &'a str,
}

impl<'a> Browser<'a> {
    fn new(f: &'a Fixture) -> Browser<'a> {
        Browser {
            f,
            jar: Jar::default(),
            peer: LOOPBACK,
        }
    }

    async fn send(
        &mut self,
        method: &str,
        uri: &str,
        form: Option<&str>,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let cookie = self.jar.header();
        let mut headers = vec![("accept", "text/html")];
        if !cookie.is_empty() {
            headers.push(("cookie", cookie.as_str()));
        }
        if form.is_some() {
            headers.push(("content-type", "application/x-www-form-urlencoded"));
        }
        let got = call_raw(&self.f.app, method, uri, form, Some(self.peer), &headers).await;
        self.jar.take(&got.1);
        got
    }

    async fn get(&mut self, uri: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        self.send("GET", uri, None).await
    }
}

/// The values of attribute `name` in `html`, entity-decoded.
fn attrs(html: &str, name: &str) -> Vec<String> {
    let needle = format!(" {name}=\"");
    html.match_indices(&needle)
        .map(|(i, _)| {
            let rest = &html[i + needle.len()..];
            decode(&rest[..rest.find('"').unwrap()])
        })
        .collect()
}

fn decode(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// One form of a page: its method, target and fields with their values.
#[derive(Debug)]
struct FormSpec {
    method: String,
    action: String,
    fields: Vec<(String, String)>,
}

impl FormSpec {
    fn body(&self) -> String {
        self.fields
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// Every `<form>` of `html`, with its inputs (a select counts with its selected
/// option, or its first).
fn forms(html: &str) -> Vec<FormSpec> {
    html.split("<form")
        .skip(1)
        .map(|chunk| {
            let chunk = &chunk[..chunk.find("</form>").unwrap()];
            let head = &chunk[..chunk.find('>').unwrap()];
            let attr = |n: &str| attrs(&format!(" {head}"), n).into_iter().next();
            let mut fields = Vec::new();
            for input in chunk.split("<input").skip(1) {
                let tag = &input[..input.find('>').unwrap()];
                let tag = format!(" {tag}");
                if let Some(name) = attrs(&tag, "name").into_iter().next() {
                    let value = attrs(&tag, "value").into_iter().next().unwrap_or_default();
                    let value = if value.is_empty() && name == "token" {
                        TOKEN.to_string()
                    } else {
                        value
                    };
                    fields.push((name, value));
                }
            }
            for select in chunk.split("<select").skip(1) {
                let tag = &select[..select.find('>').unwrap()];
                let name = attrs(&format!(" {tag}"), "name").remove(0);
                let options = &select[..select.find("</select>").unwrap()];
                let first = attrs(options, "value")
                    .into_iter()
                    .next()
                    .unwrap_or_default();
                let chosen = options
                    .split("<option")
                    .find(|o| o.contains(" selected"))
                    .and_then(|o| attrs(&format!(" {o}"), "value").into_iter().next());
                fields.push((name, chosen.unwrap_or(first)));
            }
            FormSpec {
                method: attr("method").unwrap_or_else(|| "get".into()),
                action: attr("action").unwrap(),
                fields,
            }
        })
        .collect()
}

/// A fleet with a task in every state, a worker holding one, a set-aside and a
/// backing-off GitHub write, over several pages of the queue.
async fn busy_fixture(config: ApiConfig) -> (Fixture, BTreeMap<&'static str, TaskId>) {
    let f = Fixture::with(config);
    for n in 1..=60 {
        f.queue_issue_in("acme/widgets", n).await;
    }
    f.queue_issue_in("acme/gadgets", 1).await;
    let o = &f.orchestrator;
    let claim = |who: &'static str| {
        let o = o.clone();
        async move {
            let worker = WorkerId::new(who).unwrap();
            let a = o
                .next_work(&worker, None, LeaseKind::Heartbeat, Duration::ZERO)
                .await
                .unwrap()
                .unwrap();
            (worker, a)
        }
    };
    let (w, done) = claim("worker-1").await;
    let completion = Completion {
        pr_url: Some("https://github.com/acme/widgets/pull/100".into()),
        cost_usd: Some(1.25),
        tokens: Some(4200),
        revisions: None,
    };
    o.complete(&w, &done.task, done.lease_token, completion)
        .await
        .unwrap();
    let (w, failed) = claim("worker-1").await;
    let failure = Failure {
        reason: "the tests fail".into(),
        retryable: false,
        ..Failure::default()
    };
    o.fail(&w, &failed.task, failed.lease_token, failure)
        .await
        .unwrap();
    let (_, held) = claim("worker-2").await;
    let cancelled = TaskId::new("acme/widgets", 60).unwrap();
    o.operator().cancel(&cancelled, "not wanted").await.unwrap();
    let effects = f.queue.pending_effects(10).await.unwrap();
    let dead = EffectFailure {
        error: "403 Resource not accessible".into(),
        refused: true,
        retry_at: None,
    };
    f.queue.nack_effect(effects[0].id, &dead).await.unwrap();
    let later = EffectFailure {
        error: "502 Bad Gateway".into(),
        refused: false,
        retry_at: Some(Timestamp(o.now().0 + 60_000)),
    };
    f.queue.nack_effect(effects[1].id, &later).await.unwrap();
    let ids = BTreeMap::from([
        ("completed", done.task),
        ("failed", failed.task),
        ("in_progress", held.task),
        ("cancelled", cancelled),
    ]);
    (f, ids)
}

#[tokio::test]
async fn every_link_and_form_on_every_page_answers() {
    let (f, ids) = busy_fixture(ApiConfig::default()).await;
    let mut b = Browser::new(&f);
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut todo: VecDeque<(String, Option<FormSpec>)> = VecDeque::from([("/ui".into(), None)]);
    let mut pages = 0;
    let mut posts = 0;
    while let Some((uri, form)) = todo.pop_front() {
        let (status, headers, body) = match &form {
            Some(post) => {
                posts += 1;
                b.send("POST", &uri, Some(&post.body())).await
            }
            None => b.get(&uri).await,
        };
        let location = headers
            .get("location")
            .map(|l| l.to_str().unwrap().to_string());
        match (status, &location) {
            (StatusCode::OK, _) => {}
            (StatusCode::SEE_OTHER, Some(to)) => {
                assert!(
                    to.starts_with("/ui"),
                    "{uri} sends the browser off the dashboard: {to}"
                );
                if seen.insert(to.clone()) {
                    todo.push_back((to.clone(), None));
                }
                continue;
            }
            other => panic!("{uri} answered {other:?}: {body}"),
        }
        pages += 1;
        for href in attrs(&body, "href") {
            assert!(
                href.starts_with('/') || href.starts_with("https://github.com/"),
                "{uri} links off the dashboard: {href}"
            );
            if href.starts_with("/ui") && seen.insert(href.clone()) {
                todo.push_back((href, None));
            }
        }
        for form in forms(&body) {
            if form.method == "get" {
                let query = form.body();
                let to = format!("{}?{query}", form.action);
                if seen.insert(to.clone()) {
                    todo.push_back((to, None));
                }
            } else {
                assert!(
                    form.fields
                        .iter()
                        .any(|(k, v)| k == "csrf" && v.len() == 32),
                    "a POST form of {uri} has no CSRF token: {form:?}"
                );
                let key = format!("POST {} {}", form.action, form.body());
                if seen.insert(key) {
                    todo.push_back((form.action.clone(), Some(form)));
                }
            }
        }
    }
    // Every kind of page was reached: each task's page, the queue's pages, the
    // confirmations, and the actions (each sends the browser back).
    for (state, id) in &ids {
        let href = format!("/ui/tasks/{}/{}", id.repo(), id.number());
        assert!(seen.contains(&href), "no link to the {state} task {href}");
    }
    for must in ["/ui/workers", "/ui/writeback", "/ui/queue?state=pending"] {
        assert!(
            seen.iter().any(|s| s.starts_with(must)),
            "{must} not reached"
        );
    }
    assert!(
        seen.iter().any(|s| s.contains("page=2")),
        "no second page of the queue"
    );
    assert!(
        seen.iter()
            .any(|s| s.starts_with("/ui/confirm?action=retry"))
    );
    assert!(
        seen.iter()
            .any(|s| s.starts_with("/ui/confirm?action=retry-effects"))
    );
    assert!(pages > 40 && posts >= 6, "{pages} pages, {posts} actions");
}

#[tokio::test]
async fn the_root_sends_browsers_to_the_dashboard_and_tells_clients_what_it_is() {
    let f = Fixture::new();
    let mut b = Browser::new(&f);
    let (s, h, _) = b.get("/").await;
    assert_eq!(
        (s, h["location"].to_str().unwrap()),
        (StatusCode::SEE_OTHER, "/ui")
    );
    let (s, _, body) = call_raw(&f.app, "GET", "/", None, Some("198.51.100.7:1"), &[]).await;
    assert_eq!(s, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["name"], "scrum-orchestrator");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["status"], "healthy");
    let (s, h, body) = b.get("/ui").await;
    assert_eq!(s, StatusCode::OK);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(body.contains("id=\"count-pending\""), "{body}");
    let (s, h, js) = b.get("/ui/assets/htmx.min.js").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(js.contains("htmx"));
}

#[tokio::test]
async fn with_a_token_the_pages_need_the_login_and_a_wrong_token_is_refused() {
    let config = ApiConfig {
        token: Some(ApiToken::new(TOKEN).unwrap()),
        ..ApiConfig::default()
    };
    let (f, ids) = busy_fixture(config).await;
    let task = format!(
        "/ui/tasks/{}/{}",
        ids["failed"].repo(),
        ids["failed"].number()
    );
    let mut b = Browser::new(&f);
    b.peer = "203.0.113.9:5000";
    for page in [
        "/ui",
        "/ui/queue",
        task.as_str(),
        "/ui/workers",
        "/ui/writeback",
    ] {
        let (s, h, _) = b.get(page).await;
        assert_eq!(s, StatusCode::SEE_OTHER, "{page}");
        let to = h["location"].to_str().unwrap();
        assert!(to.starts_with("/ui/login?next="), "{page} -> {to}");
    }
    let (s, _, login) = b.get(&format!("/ui/login?next={}", enc(&task))).await;
    assert_eq!(s, StatusCode::OK);
    let form = forms(&login).remove(0);
    let wrong = form.body().replace(&enc(TOKEN), "not-the-token-at-all");
    let (s, h, body) = b.send("POST", "/ui/login", Some(&wrong)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(h.get("set-cookie").is_none() && body.contains("not the API token"));
    assert_eq!(
        b.get("/ui").await.0,
        StatusCode::SEE_OTHER,
        "a wrong token let it in"
    );
    let (s, h, _) = b.send("POST", "/ui/login", Some(&form.body())).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(h["location"], task.as_str(), "back to the page asked for");
    let cookie = h
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_string())
        .find(|c| c.starts_with("scrum_session="))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains(TOKEN), "the token itself is in the cookie");
    let (s, _, page) = b.get(&task).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("the tests fail"));
    // Logged in, actions work from anywhere (the token's rule), with the CSRF token.
    let retry = format!(
        "/ui/confirm?action=retry&task={}",
        enc(&ids["failed"].to_string())
    );
    let (_, _, confirm) = b.get(&retry).await;
    let post = forms(&confirm)
        .into_iter()
        .find(|f| f.action.starts_with("/ui/actions/"))
        .unwrap();
    let (s, h, _) = b.send("POST", &post.action, Some(&post.body())).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(h["location"].to_str().unwrap().contains("notice="));
    assert_eq!(f.task(&ids["failed"]).await.state(), TaskState::Pending);
    // A bearer header works as well as the cookie; a wrong one does not.
    let bearer = format!("Bearer {TOKEN}");
    let (s, _, _) = call_raw(
        &f.app,
        "GET",
        "/ui",
        None,
        Some(b.peer),
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let wrong = [("authorization", "Bearer wrong-wrong-wrong-wrong")];
    let (s, _, _) = call_raw(&f.app, "GET", "/ui", None, Some(b.peer), &wrong).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    // Logging out ends it.
    let (_, _, overview) = b.get("/ui").await;
    let logout = forms(&overview)
        .into_iter()
        .find(|f| f.action == "/ui/logout")
        .unwrap();
    b.send("POST", "/ui/logout", Some(&logout.body())).await;
    assert_eq!(b.get("/ui").await.0, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn without_a_token_actions_answer_loopback_only_and_need_the_csrf_token() {
    let f = Fixture::with(
        ApiConfig::default()
            .with_worker_hosts(&["10.0.0.5"])
            .unwrap(),
    );
    let id = f.queue_issue().await;
    let cancel = format!("task={}", enc(&id.to_string()));
    // A worker host may read the pages, as it may read /queue; a stranger may not.
    let mut worker = Browser::new(&f);
    worker.peer = "10.0.0.5:1000";
    assert_eq!(worker.get("/ui/queue").await.0, StatusCode::OK);
    let mut stranger = Browser::new(&f);
    stranger.peer = "198.51.100.7:1000";
    let (s, _, body) = stranger.get("/ui").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(
        body.contains("WORKER_IPS") && !body.contains("Issue 1"),
        "{body}"
    );
    // Only loopback may act, and only with the CSRF token of its own cookie.
    let (_, _, confirm) = worker
        .get(&format!("/ui/confirm?action=cancel&{cancel}"))
        .await;
    let post = forms(&confirm)
        .into_iter()
        .find(|f| f.action.starts_with("/ui/actions/"))
        .unwrap();
    let (s, _, _) = worker
        .send("POST", "/ui/actions/cancel", Some(&post.body()))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let mut local = Browser::new(&f);
    local.get("/ui").await;
    let forged = format!("csrf={}&{cancel}", "0".repeat(32));
    let (s, _, body) = local
        .send("POST", "/ui/actions/cancel", Some(&forged))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        f.task(&id).await.state(),
        TaskState::Pending,
        "cancelled without the token"
    );
    // The confirmation page asks first; nothing happened before the POST.
    let (_, _, confirm) = local
        .get(&format!("/ui/confirm?action=cancel&{cancel}"))
        .await;
    assert!(confirm.contains(&format!("Cancel {id}?")), "{confirm}");
    assert_eq!(f.task(&id).await.state(), TaskState::Pending);
    let post = forms(&confirm)
        .into_iter()
        .find(|f| f.action.starts_with("/ui/actions/"))
        .unwrap();
    let (s, h, _) = local.send("POST", &post.action, Some(&post.body())).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let back = h["location"].to_str().unwrap().to_string();
    assert!(
        back.starts_with(&format!("/ui/tasks/{}/{}", id.repo(), id.number())),
        "{back}"
    );
    assert_eq!(f.task(&id).await.state(), TaskState::Cancelled);
    let (_, _, page) = local.get(&back).await;
    assert!(page.contains("cancelled"), "{page}");
}

/// Reads the stream until a whole `change` event arrived, or fails at `limit`.
async fn next_change(resp: &mut reqwest::Response, limit: Duration) -> String {
    let mut seen = String::new();
    let read = async {
        while !seen.contains("event: change\ndata:") || !seen.ends_with("\n\n") {
            let chunk = resp.chunk().await.unwrap().expect("the stream ended");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    if tokio::time::timeout(limit, read).await.is_err() {
        panic!("no change event within {limit:?}; read {seen:?}");
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_says_when_something_changed_and_ends_at_shutdown() {
    let f = Fixture::new();
    f.queue_issue().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(scrum_http::serve(listener, f.state.clone(), async {
        let _ = stopped.await;
    }));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let mut resp = http.get(format!("{url}/ui/events")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    // One on connecting (for what changed since the page was rendered)...
    next_change(&mut resp, Duration::from_secs(2)).await;
    // ...then one per change, within a tick.
    let queued = Instant::now();
    f.queue_issue().await;
    let event = next_change(&mut resp, Duration::from_secs(1)).await;
    assert!(event.contains("data: 1"), "{event}");
    eprintln!(
        "the change event came {:?} after the change",
        queued.elapsed()
    );
    // A stream open at shutdown does not hold the server up.
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server waited on the open event stream")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn blocked_tasks_show_their_blockers_and_the_queue_filters_them() {
    let f = Fixture::new();
    let waiting = f.queue_issue_in("acme/widgets", 1).await;
    let free = f.queue_issue_in("acme/widgets", 2).await;
    let cyclic = f.queue_issue_in("acme/widgets", 3).await;
    let now = f.orchestrator.now();
    let block = |by: &[&str], problem: Option<&str>| scrum_core::state::Event::Block {
        blocked: scrum_core::deps::Blocked {
            by: by.iter().map(|s| s.parse().unwrap()).collect(),
            problem: problem.map(str::to_string),
            since: now,
        },
    };
    f.queue
        .apply(
            &waiting,
            block(&["acme/api#9", "acme/widgets#7"], None),
            now,
        )
        .await
        .unwrap();
    let cycle = "a dependency cycle: acme/widgets#3 → acme/widgets#4 → acme/widgets#3";
    f.queue
        .apply(&cyclic, block(&["acme/widgets#4"], Some(cycle)), now)
        .await
        .unwrap();
    let mut b = Browser::new(&f);

    // The queue: every state shows the blocked ones as such, with their blockers.
    let (status, _, all) = b.get("/ui/queue").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert!(all.contains("state-blocked"), "{all}");
    assert!(
        all.contains("waiting for acme/api#9, acme/widgets#7 to be closed"),
        "{all}"
    );
    assert!(all.contains(&free.to_string()));
    assert!(
        all.contains(r#"<option value="blocked">"#),
        "a filter for blocked tasks: {all}"
    );
    // Filtered to blocked: the two blocked, not the free one.
    let (status, _, only) = b.get("/ui/queue?state=blocked&repo=&q=").await;
    assert_eq!(status, StatusCode::OK, "{only}");
    assert!(only.contains(&waiting.to_string()), "{only}");
    assert!(only.contains(&cyclic.to_string()), "{only}");
    assert!(!only.contains(&format!(">{free}<")), "{only}");
    assert!(only.contains("2 tasks"), "{only}");
    assert!(
        only.contains(r#"<option value="blocked" selected>"#),
        "{only}"
    );
    // Pending still lists all three.
    let (_, _, pending) = b.get("/ui/queue?state=pending").await;
    assert!(pending.contains("3 tasks"), "{pending}");

    // A blocked task's page says what it waits for, and any dependency problem.
    let (status, _, page) = b.get("/ui/tasks/acme/widgets/1").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains(r#"id="blocked""#), "{page}");
    assert!(page.contains("waiting for acme/api#9"), "{page}");
    assert!(page.contains("waiting for acme/widgets#7"), "{page}");
    assert!(!page.contains("dependency-problem"), "{page}");
    let (_, _, page) = b.get("/ui/tasks/acme/widgets/3").await;
    assert!(page.contains(r#"id="dependency-problem""#), "{page}");
    assert!(page.contains("a dependency cycle"), "{page}");
    let (_, _, page) = b.get("/ui/tasks/acme/widgets/2").await;
    assert!(!page.contains(r#"id="blocked""#), "{page}");
}

#[tokio::test]
async fn a_tasks_page_shows_each_attempt_and_when_its_retry_runs() {
    let policy = scrum_core::state::Policy {
        backoff: scrum_core::state::Backoff {
            initial: Duration::from_secs(3600),
            cap: Duration::from_secs(3600),
        },
        ..scrum_core::state::Policy::default()
    };
    let page = |id: &TaskId| format!("/ui/tasks/{}/{}", id.repo(), id.number());
    let f = Fixture::with_policy(ApiConfig::default(), policy.clone());
    let waiting = f.retried_task(false).await;
    let (_, _, html) = Browser::new(&f).get(&page(&waiting)).await;
    assert!(html.contains(r#"id="retry-at""#), "{html}");
    assert!(html.contains("waiting for its retry"), "{html}");
    // Its attempt drawn on the time axis, with the retry marked after it.
    let chart = section(&html, r#"id="attempt-chart""#, "</figure>");
    assert_eq!(
        chart.matches(r#"data-outcome="failed""#).count(),
        1,
        "{chart}"
    );
    assert!(
        chart.contains(r#"class="mark""#) && chart.contains(">retry "),
        "{chart}"
    );
    // The queue says when it runs again too.
    let (_, _, queue) = Browser::new(&f).get("/ui/queue").await;
    let row = section(&queue, &waiting.to_string(), "</tr>");
    assert!(row.contains("retry at"), "{row}");
    assert!(
        row.contains(" min)") || row.contains(" h)"),
        "a time ahead: {row}"
    );
    let f = Fixture::with_policy(ApiConfig::default(), policy);
    let done = f.retried_task(true).await;
    let (status, _, html) = Browser::new(&f).get(&page(&done)).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let table = &html[html
        .find(r#"id="attempt-list""#)
        .expect("the attempts table")..];
    let rows: Vec<&str> = table.split(r#"<tr class="attempt">"#).skip(1).collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(rows[0].contains("worker-1") && rows[0].contains("failed"));
    assert!(rows[0].contains("tests failed"));
    assert!(rows[1].contains("worker-2") && rows[1].contains("completed"));
    assert!(rows[1].contains("$0.50"));
    assert!(
        html.contains("Attempt 2 claimed by"),
        "the timeline: {html}"
    );
    let chart = section(&html, r#"id="attempt-chart""#, "</figure>");
    let bars: Vec<String> = attrs(chart, "data-outcome");
    assert_eq!(bars, ["failed", "completed"], "{chart}");
    assert!(
        chart.contains("Attempt 2 by worker-2: completed after"),
        "{chart}"
    );
}

/// The part of `html` from `start` to the first `end` after it.
fn section<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {html}"));
    let rest = &html[from..];
    &rest[..rest.find(end).map_or(rest.len(), |i| i + end.len())]
}

/// The sum of the `data-value`s of the bars of `series` in chart `id`.
fn bar_total(html: &str, id: &str, series: &str) -> f64 {
    let chart = section(html, &format!(r#"id="{id}""#), "</figure>");
    chart
        .split("<rect ")
        .skip(1)
        .map(|r| &r[..r.find("</rect>").unwrap()])
        .filter(|r| r.contains(&format!(r#"data-series="{series}""#)))
        .flat_map(|r| attrs(r, "data-value"))
        .map(|v| v.parse::<f64>().unwrap())
        .sum()
}

#[tokio::test]
async fn the_overview_draws_the_fleets_history_without_scripts() {
    let (f, ids) = busy_fixture(ApiConfig::default()).await;
    let mut b = Browser::new(&f);
    let (status, _, html) = b.get("/ui").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    // One completion and one failure this hour, drawn as bars in the page itself.
    assert_eq!(bar_total(&html, "chart-outcomes", "completed"), 1.0);
    assert_eq!(bar_total(&html, "chart-outcomes", "failed"), 1.0);
    // The completed attempt's cost, today, for its repository only.
    let (paid, other) = match ids["completed"].repo() {
        "acme/widgets" => ("acme/widgets", "acme/gadgets"),
        _ => ("acme/gadgets", "acme/widgets"),
    };
    assert_eq!(bar_total(&html, "chart-cost", paid), 1.25);
    let cost = section(&html, r#"id="chart-cost""#, "</figure>");
    assert!(!cost.contains(other), "{cost}");
    assert!(cost.contains("$1.25"), "the legend's total: {cost}");
    // The queue: 61 tasks waited before the first claim; 57 wait now (two
    // finished, one runs, one was cancelled).
    let load = section(&html, r#"id="chart-load""#, "</figure>");
    let peaks: Vec<String> = attrs(load, "data-peak");
    assert_eq!(peaks, ["61", "1"], "{load}");
    assert!(load.contains("57 now") && load.contains("1 now"), "{load}");

    // Nothing happened yet: the charts say so.
    let empty = Fixture::new();
    let (_, _, html) = Browser::new(&empty).get("/ui").await;
    assert!(html.contains("No task finished in the last day."), "{html}");
    assert!(html.contains("No attempt reported a cost"), "{html}");
    assert!(!section(&html, r#"id="chart-outcomes""#, "</figure>").contains("<rect"));
}

#[tokio::test]
async fn a_follow_up_runs_page_shows_what_it_answers_and_the_rounds() {
    let f = Fixture::new();
    let id = f.queue_issue_in("acme/widgets", 1).await;
    let o = &f.orchestrator;
    let worker = WorkerId::new("worker-1").unwrap();
    let a = o
        .next_work(&worker, None, LeaseKind::Heartbeat, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    let url = "https://github.com/acme/widgets/pull/5";
    let completion = Completion {
        pr_url: Some(url.into()),
        ..Completion::default()
    };
    o.complete(&worker, &id, a.lease_token, completion)
        .await
        .unwrap();
    let follow_up = scrum_core::follow_up::FollowUp::new(
        scrum_core::follow_up::FollowUpCause::Checks,
        url,
        "checks:abc".into(),
        "checks",
        "Check \"test\" failed: tests::adds",
        0,
        o.now(),
    );
    f.queue
        .apply(
            &id,
            scrum_core::state::Event::FollowUp { follow_up },
            o.now(),
        )
        .await
        .unwrap();
    let mut b = Browser::new(&f);
    let (status, _, page) = b.get("/ui/tasks/acme/widgets/1").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains(r#"id="follow-up""#), "{page}");
    assert!(page.contains("Round 1, a check failed"), "{page}");
    assert!(page.contains("tests::adds"), "{page}");
    assert!(page.contains("Run 2 queued again"), "{page}");
    assert!(page.contains("run 1 (opened): completed"), "{page}");
    assert!(page.contains("run 2 (checks): running"), "{page}");
}

#[tokio::test]
async fn a_task_waiting_for_a_file_lock_says_whose() {
    let f = Fixture::new();
    let ids: Vec<TaskId> = [(1, "Files: src/**"), (2, "Files: src/a.rs"), (3, "")]
        .into_iter()
        .map(|(n, body)| {
            let id = TaskId::new("acme/widgets", n).unwrap();
            let title = format!("Issue {n}");
            f.source
                .open_issue(id.clone(), &title, &["ai-ready"], Timestamp(n as i64));
            f.source
                .edit_as(&id, &title, body, "maintainer", true, Timestamp(9));
            id
        })
        .collect();
    f.orchestrator.poll_once().await.unwrap();
    let worker = WorkerId::new("w1").unwrap();
    let a = f
        .orchestrator
        .next_work(&worker, None, LeaseKind::Heartbeat, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.task, ids[0]);

    // The API: the waiting task names the holder; the free one waits for nothing.
    let (status, queue) = f.get("/queue").await;
    assert_eq!(status, StatusCode::OK, "{queue}");
    let pending = queue["pending"].as_array().unwrap();
    let entry = |id: &TaskId| {
        pending
            .iter()
            .find(|e| e["task_id"] == id.to_string())
            .unwrap()
    };
    assert_eq!(entry(&ids[1])["waiting_for_lock"], "acme/widgets#1");
    assert_eq!(entry(&ids[1])["locks"], serde_json::json!(["src/a.rs"]));
    assert!(entry(&ids[2])["waiting_for_lock"].is_null());

    // The dashboard: on the queue and on the task's page.
    let mut b = Browser::new(&f);
    let (status, _, all) = b.get("/ui/queue").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(
        all.matches("waiting for a lock held by").count(),
        1,
        "{all}"
    );
    let (_, _, page) = b.get("/ui/tasks/acme/widgets/2").await;
    assert!(page.contains(r#"id="lock-wait""#), "{page}");
    assert!(page.contains("acme/widgets#1"), "{page}");
    let (_, _, page) = b.get("/ui/tasks/acme/widgets/1").await;
    assert!(
        page.contains(r#"id="locks""#) && page.contains("src/"),
        "{page}"
    );
    let (_, _, page) = b.get("/ui/tasks/acme/widgets/3").await;
    assert!(!page.contains(r#"id="lock-wait""#), "{page}");
}

#[tokio::test]
async fn a_task_of_a_nested_gitlab_project_has_its_page_and_the_overview_each_forge() {
    let f = Fixture::new();
    let lab = f.queue_issue_in("gitlab:group/sub/project", 12).await;
    f.queue_issue_in("acme/widgets", 3).await;
    f.orchestrator.report_forge(
        "github",
        scrum_core::engine::ForgeReport::Health {
            connected: true,
            reason: None,
        },
    );
    f.orchestrator.report_forge(
        "gitlab",
        scrum_core::engine::ForgeReport::Health {
            connected: false,
            reason: Some("rate limited".into()),
        },
    );
    f.orchestrator.report_forge(
        "gitlab",
        scrum_core::engine::ForgeReport::RateLimit {
            remaining: Some(17),
            reset: None,
        },
    );
    let mut b = Browser::new(&f);
    let (_, _, queue) = b.get("/ui/queue").await;
    let href = "/ui/task?id=gitlab:group/sub/project%2312";
    assert!(
        attrs(&queue, "href").iter().any(|h| h == href),
        "the queue links {lab} to {href}: {queue}"
    );
    let (status, _, page) = b.get(href).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Issue 12"), "{page}");
    let (status, _, _) = b.get("/ui/task?id=gitlab:group/sub/project%2399").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = b.get("/ui/task?id=not-an-id").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // GitHub's keep their old address.
    let (status, _, _) = b.get("/ui/tasks/acme/widgets/3").await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, overview) = b.get("/ui").await;
    assert!(overview.contains("id=\"forge-gitlab\""), "{overview}");
    assert!(overview.contains("17 requests left"), "{overview}");
}
