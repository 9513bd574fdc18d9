//! Who may see the dashboard and act from it: the login cookie (with an API token)
//! and the CSRF token every form posts.
//!
//! - **Session.** `scrum_session` is `EXPIRY.NONCE.MAC`, where `MAC` is
//!   HMAC-SHA256 keyed by the API token over the expiry and nonce. No server state:
//!   it survives a restart, every orchestrator with the same token accepts it, and
//!   changing the token logs everyone out. HttpOnly and SameSite=Strict; the token
//!   itself is only ever posted in the login form's body, never put in a URL.
//! - **CSRF.** `scrum_csrf` is a random value set on the first page a browser
//!   gets; every form carries it in a hidden field, and a POST whose field differs
//!   from the cookie is refused (the double-submit pattern; with SameSite=Strict a
//!   cross-site form sends neither cookie).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::config::ApiToken;

/// The login cookie's name.
pub(crate) const SESSION: &str = "scrum_session";
/// The CSRF cookie's name, and the form field that must match it.
pub(crate) const CSRF: &str = "scrum_csrf";
/// How long a login lasts.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

fn random_hex() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // The OS refused randomness: fall back to a seeded generator, never zeros.
        b = fastrand_bytes();
    }
    hex(&b)
}

fn fastrand_bytes() -> [u8; 16] {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mixed = nanos ^ (u128::from(std::process::id()) << 64);
    mixed.to_le_bytes()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn mac(token: &ApiToken, payload: &str) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(token.expose().as_bytes())
        .expect("HMAC accepts any key length");
    m.update(b"scrum-ui-session:");
    m.update(payload.as_bytes());
    m
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A fresh session cookie value for `token`.
pub(crate) fn new_session(token: &ApiToken) -> String {
    let payload = format!("{}.{}", unix_secs() + SESSION_TTL.as_secs(), random_hex());
    let tag = hex(&mac(token, &payload).finalize().into_bytes());
    format!("{payload}.{tag}")
}

/// Whether the request carries a session cookie `token` signed that has not expired.
pub(crate) fn has_session(headers: &HeaderMap, token: &ApiToken) -> bool {
    let Some(value) = cookie(headers, SESSION) else {
        return false;
    };
    let Some((payload, tag)) = value.rsplit_once('.') else {
        return false;
    };
    let Some(expiry) = payload
        .split_once('.')
        .and_then(|(e, _)| e.parse::<u64>().ok())
    else {
        return false;
    };
    let Some(tag) = unhex(tag) else {
        return false;
    };
    expiry > unix_secs() && mac(token, payload).verify_slice(&tag).is_ok()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The `Set-Cookie` value that logs a browser in.
pub(crate) fn session_cookie(value: &str) -> HeaderValue {
    let v = format!(
        "{SESSION}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_TTL.as_secs()
    );
    HeaderValue::from_str(&v).expect("a session cookie is visible ASCII")
}

/// The `Set-Cookie` value that logs a browser out.
pub(crate) fn cleared_session() -> HeaderValue {
    HeaderValue::from_static("scrum_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The request's CSRF token, as the dashboard's middleware found or made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Csrf(pub(crate) String);

impl Csrf {
    /// Whether a form's `csrf` field is this token.
    pub(crate) fn accepts(&self, given: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), given.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
    }
}

/// Gives every dashboard request a [`Csrf`] token: the browser's cookie, or a new
/// one, set on the answer.
pub(crate) async fn csrf(mut req: Request, next: Next) -> Response {
    let known = cookie(req.headers(), CSRF)
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string);
    let fresh = known.is_none();
    let token = known.unwrap_or_else(random_hex);
    req.extensions_mut().insert(Csrf(token.clone()));
    let mut resp = next.run(req).await;
    if fresh {
        let v = format!("{CSRF}={token}; Path=/; HttpOnly; SameSite=Strict");
        if let Ok(v) = HeaderValue::from_str(&v) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn a_session_is_accepted_only_with_the_token_that_signed_it() {
        let token = ApiToken::new("0123456789abcdef-token").unwrap();
        let other = ApiToken::new("0123456789abcdef-other").unwrap();
        let value = new_session(&token);
        let h = with_cookie(&format!("a=b; {SESSION}={value}"));
        assert!(has_session(&h, &token));
        assert!(!has_session(&h, &other));
        assert!(!value.contains(token.expose()));
        let forged = value.replacen(|c: char| c.is_ascii_digit(), "9", 1);
        assert!(!has_session(
            &with_cookie(&format!("{SESSION}={forged}")),
            &token
        ));
        assert!(!has_session(&with_cookie("scrum_session=x.y.z"), &token));
        assert!(!has_session(&HeaderMap::new(), &token));
    }

    #[test]
    fn an_expired_session_is_refused() {
        let token = ApiToken::new("0123456789abcdef-token").unwrap();
        let payload = format!("{}.{}", unix_secs() - 1, random_hex());
        let tag = hex(&mac(&token, &payload).finalize().into_bytes());
        let h = with_cookie(&format!("{SESSION}={payload}.{tag}"));
        assert!(!has_session(&h, &token));
    }

    #[test]
    fn csrf_tokens_compare_exactly() {
        let c = Csrf("ab".repeat(16));
        assert!(c.accepts(&"ab".repeat(16)));
        assert!(!c.accepts(&"ab".repeat(15)));
        assert!(!c.accepts(""));
    }
}
