//! Git over HTTP from the fake: `{url}/{group/sub/project}.git` serves the bare
//! repository `{root}/{group/sub/project}.git` of
//! [`super::FakeGitLab::serve_git_from`] through `git http-backend`, after
//! checking the token given as the HTTP basic password (`oauth2:<token>`), as
//! GitLab takes it.

use std::process::Stdio;

use axum::body::Body;
use axum::response::Response;
use http::{StatusCode, header};
use tokio::io::AsyncWriteExt;

use super::server::{Shared, lock};
use super::state::ServedRequest;

/// Whether `path` is a git request: it names a `.git` repository.
pub(crate) fn is_git(path: &str) -> bool {
    path.contains(".git/") || path.ends_with(".git")
}

/// Serves one git request.
pub(crate) async fn serve(shared: &Shared, parts: &http::request::Parts, body: &[u8]) -> Response {
    let path = parts.uri.path();
    let project = path
        .split_once(".git")
        .map(|(p, _)| p.trim_start_matches('/').to_string())
        .unwrap_or_default();
    let password = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| decode_base64(b.trim()))
        .and_then(|pair| pair.split_once(':').map(|(_, p)| p.to_string()));
    let (root, known, token) = {
        let st = lock(shared);
        (
            st.git_root.clone(),
            st.projects.contains_key(&project),
            st.token.clone(),
        )
    };
    let response = match (root, known, password) {
        (_, _, None) => refuse(StatusCode::UNAUTHORIZED, "HTTP Basic: Access denied"),
        (_, _, Some(p)) if p != token => {
            refuse(StatusCode::UNAUTHORIZED, "HTTP Basic: Access denied")
        }
        (_, false, _) => refuse(
            StatusCode::NOT_FOUND,
            "The project you were looking for could not be found.",
        ),
        (None, true, _) => refuse(StatusCode::NOT_FOUND, "no git root served"),
        (Some(root), true, _) => backend(&root, parts, path, body).await,
    };
    lock(shared).log.push(ServedRequest {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| path.to_string(), |p| p.as_str().to_string()),
        if_none_match: None,
        status: response.status().as_u16(),
    });
    response
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let mut r = Response::new(Body::from(message.to_string()));
    *r.status_mut() = status;
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Basic realm=\"GitLab\""),
        );
    }
    r
}

/// Standard base64 (with padding), as HTTP basic credentials are written.
fn decode_base64(s: &str) -> Option<String> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = s.bytes().filter(|b| *b != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (k, c) in chunk.iter().enumerate() {
            acc |= value(*c)? << (18 - 6 * k);
        }
        let n = chunk.len().saturating_sub(1);
        for k in 0..n {
            out.push((acc >> (16 - 8 * k)) as u8);
        }
    }
    String::from_utf8(out).ok()
}

/// Runs `git http-backend` (CGI) for the request.
async fn backend(
    root: &std::path::Path,
    parts: &http::request::Parts,
    path: &str,
    body: &[u8],
) -> Response {
    let header_of = |name: &str| {
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
        .env("REMOTE_USER", "oauth2")
        .env("PATH_INFO", path)
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
        .env("CONTENT_TYPE", header_of("content-type"))
        .env("HTTP_CONTENT_ENCODING", header_of("content-encoding"))
        .env("GIT_PROTOCOL", header_of("git-protocol"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_decode() {
        assert_eq!(
            decode_base64("b2F1dGgyOnNlY3JldA==").as_deref(),
            Some("oauth2:secret")
        );
        assert_eq!(decode_base64("YQ==").as_deref(), Some("a"));
        assert_eq!(decode_base64("!!"), None);
    }
}
