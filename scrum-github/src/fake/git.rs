//! Git over HTTP from the fake: `{url}/git/{owner}/{name}.git` serves the bare
//! repositories of [`super::FakeGitHub::serve_git_from`] through `git
//! http-backend`, after checking the request's token as GitHub does (the personal
//! token, or an installation token that reaches the repository and has not
//! expired).

use std::process::Stdio;

use axum::body::Body;
use axum::response::Response;
use http::{StatusCode, header};
use tokio::io::AsyncWriteExt;

use super::server::{Shared, lock, now_ms};
use super::state::ServedRequest;

/// Serves a git request whose path starts `/git/`.
pub(crate) async fn serve(shared: &Shared, parts: &http::request::Parts, body: &[u8]) -> Response {
    let path = parts.uri.path().trim_start_matches("/git");
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let credential = super::app::presented(
        parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    );
    let (root, checked) = {
        let st = lock(shared);
        let checked = match segments.as_slice() {
            [owner, repo, ..] => {
                let repo = repo.trim_end_matches(".git");
                super::app::authenticate(
                    &st,
                    credential.as_deref(),
                    &["repos", owner, repo],
                    now_ms(),
                )
            }
            _ => Err((StatusCode::NOT_FOUND, "Not Found")),
        };
        (st.git_root.clone(), checked)
    };
    let issued = match &checked {
        Ok(super::app::Caller::Installation(t)) => Some(t.clone()),
        _ => None,
    };
    let response = match (root, checked) {
        (_, Err((status, message))) => refuse(status, message),
        (None, Ok(_)) => refuse(StatusCode::NOT_FOUND, "no git root served"),
        (Some(root), Ok(_)) => backend(&root, parts, path, body).await,
    };
    lock(shared).log.push(ServedRequest {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_string(), |p| p.as_str().to_string()),
        if_none_match: None,
        status: response.status().as_u16(),
        points: 0,
        graphql_points: 0,
        installation: issued.as_ref().map(|t| t.installation),
        token_scope: issued.and_then(|t| t.repositories),
    });
    response
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let mut r = Response::new(Body::from(message.to_string()));
    *r.status_mut() = status;
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Basic realm=\"GitHub\""),
        );
    }
    r
}

/// Runs `git http-backend` (CGI) for the request.
async fn backend(
    root: &std::path::Path,
    parts: &http::request::Parts,
    path: &str,
    body: &[u8],
) -> Response {
    let header_of = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let child = tokio::process::Command::new("git")
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REMOTE_USER", "x-access-token")
        .env("PATH_INFO", path)
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
        .env("CONTENT_TYPE", header_of(header::CONTENT_TYPE))
        .env("HTTP_CONTENT_ENCODING", header_of(header::CONTENT_ENCODING))
        .env(
            "GIT_PROTOCOL",
            parts
                .headers
                .get("git-protocol")
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let Ok(mut child) = child else {
        return refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "git http-backend did not start",
        );
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(body).await;
    }
    match child.wait_with_output().await {
        Ok(out) => cgi_response(&out.stdout),
        Err(_) => refuse(StatusCode::INTERNAL_SERVER_ERROR, "git http-backend failed"),
    }
}

/// A CGI answer (headers, a blank line, the body) as an HTTP response.
fn cgi_response(out: &[u8]) -> Response {
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let Some((at, gap)) = split else {
        return refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "git http-backend answered no headers",
        );
    };
    let mut response = Response::new(Body::from(out[at + gap..].to_vec()));
    for line in String::from_utf8_lossy(&out[..at]).lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split(' ').next().and_then(|c| c.parse().ok());
            *response.status_mut() = code
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        } else if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.trim().as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            response.headers_mut().insert(n, v);
        }
    }
    response
}
