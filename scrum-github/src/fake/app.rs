//! The fake acting as a GitHub App: installations per owner, JWTs checked against
//! the app's public key, installation tokens that expire (and may be scoped to
//! some repositories), and who may call what.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::answer::{Answer, fail, not_found, ok};
use super::state::State;

/// The app, when the fake acts as one.
#[derive(Debug)]
pub(crate) struct FakeApp {
    pub(crate) id: u64,
    /// PKCS#1 `RSAPublicKey` (DER) that checks the app's JWTs.
    pub(crate) public_key: Vec<u8>,
    /// Installation ids by lower-case owner.
    pub(crate) installations: BTreeMap<String, u64>,
    pub(crate) tokens: HashMap<String, IssuedToken>,
    /// How long a new installation token lives (GitHub: an hour).
    pub(crate) lifetime: Duration,
}

/// An installation token the fake issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedToken {
    /// The installation it belongs to.
    pub installation: u64,
    /// The owner the installation is on (lower case).
    pub owner: String,
    /// The repositories (lower-case names) it is limited to; `None`: every
    /// repository of the installation.
    pub repositories: Option<Vec<String>>,
    /// When it expires, in milliseconds since the Unix epoch.
    pub expires_at_ms: i64,
}

/// Who a request's credentials name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Caller {
    /// The personal token.
    Token,
    /// The app itself (a valid JWT).
    App,
    /// An installation token.
    Installation(IssuedToken),
}

/// The bearer credential of `header` (`Bearer X`, `token X`, or git's
/// `Basic base64(x-access-token:X)`).
pub(crate) fn presented(header: Option<&str>) -> Option<String> {
    let h = header?;
    if let Some(basic) = h.strip_prefix("Basic ") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(basic.trim())
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        return text.split_once(':').map(|(_, p)| p.to_string());
    }
    h.strip_prefix("Bearer ")
        .or_else(|| h.strip_prefix("token "))
        .map(str::to_string)
}

/// Checks `credential` for a request to `segments`; the caller, or the status
/// and message GitHub answers.
pub(crate) fn authenticate(
    st: &State,
    credential: Option<&str>,
    segments: &[&str],
    now_ms: i64,
) -> Result<Caller, (StatusCode, &'static str)> {
    let Some(credential) = credential else {
        return Err((StatusCode::UNAUTHORIZED, "Requires authentication"));
    };
    let Some(app) = &st.app else {
        return match credential == st.token {
            true => Ok(Caller::Token),
            false => Err((StatusCode::UNAUTHORIZED, "Bad credentials")),
        };
    };
    if needs_jwt(segments) {
        return match jwt_valid(app, credential, now_ms / 1000) {
            true => Ok(Caller::App),
            false => Err((
                StatusCode::UNAUTHORIZED,
                "A JSON web token could not be decoded",
            )),
        };
    }
    let Some(t) = app.tokens.get(credential) else {
        return Err((StatusCode::UNAUTHORIZED, "Bad credentials"));
    };
    if t.expires_at_ms <= now_ms {
        return Err((StatusCode::UNAUTHORIZED, "Bad credentials"));
    }
    if let ["repos", o, r, ..] = segments {
        let reaches = o.eq_ignore_ascii_case(&t.owner)
            && t.repositories
                .as_ref()
                .is_none_or(|rs| rs.iter().any(|n| n.eq_ignore_ascii_case(r)));
        if !reaches {
            return Err((StatusCode::NOT_FOUND, "Not Found"));
        }
    }
    Ok(Caller::Installation(t.clone()))
}

/// Whether a route is the app's own (it takes a JWT, not a token).
fn needs_jwt(segments: &[&str]) -> bool {
    matches!(segments, ["app", ..] | ["repos", _, _, "installation"])
}

/// Whether `jwt` is signed by the app's key, names the app and is current.
fn jwt_valid(app: &FakeApp, jwt: &str, now_secs: i64) -> bool {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return false;
    };
    let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).ok();
    let (Some(h), Some(c), Some(sig)) = (decode(header), decode(claims), decode(signature)) else {
        return false;
    };
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        &app.public_key,
    );
    let signed = format!("{header}.{claims}");
    if key.verify(signed.as_bytes(), &sig).is_err() {
        return false;
    }
    let (Ok(h), Ok(c)) = (
        serde_json::from_slice::<Value>(&h),
        serde_json::from_slice::<Value>(&c),
    ) else {
        return false;
    };
    let iss = match &c["iss"] {
        Value::String(s) => s.parse::<u64>().ok(),
        v => v.as_u64(),
    };
    let (iat, exp) = (
        c["iat"].as_i64().unwrap_or(i64::MAX),
        c["exp"].as_i64().unwrap_or(0),
    );
    h["alg"] == "RS256"
        && iss == Some(app.id)
        && iat <= now_secs + 60
        && exp > now_secs
        && exp - iat <= 600
}

/// Routes the app's endpoints; `None` for any other route.
pub(crate) fn route(
    st: &mut State,
    method: &Method,
    segments: &[&str],
    body: &Value,
    now_ms: i64,
) -> Option<Answer> {
    let app = st.app.as_mut()?;
    Some(match (method.clone(), segments) {
        (Method::GET, ["app", "installations"]) => ok(Value::Array(
            app.installations
                .iter()
                .map(|(owner, id)| installation_json(*id, owner))
                .collect(),
        )),
        (Method::GET, ["repos", o, r, "installation"]) => {
            let owner = o.to_ascii_lowercase();
            match app.installations.get(&owner) {
                Some(id) if st_has_repo(&st.repos, o, r) => ok(installation_json(*id, &owner)),
                _ => not_found(),
            }
        }
        (Method::POST, ["app", "installations", id, "access_tokens"]) => {
            issue_token(st, id, body, now_ms)
        }
        _ => return None,
    })
}

fn st_has_repo(repos: &BTreeMap<String, super::state::Repo>, o: &str, r: &str) -> bool {
    repos.contains_key(&format!("{o}/{r}").to_ascii_lowercase())
}

fn installation_json(id: u64, owner: &str) -> Value {
    json!({ "id": id, "account": { "login": owner, "type": "Organization" },
            "app_id": 1, "target_type": "Organization",
            "permissions": { "issues": "write", "contents": "write", "pull_requests": "write", "metadata": "read" } })
}

/// `POST /app/installations/{id}/access_tokens`: a token for the installation,
/// limited to `repositories` when the body names some.
fn issue_token(st: &mut State, id: &str, body: &Value, now_ms: i64) -> Answer {
    let fresh = st.fresh_id();
    let Some(app) = st.app.as_mut() else {
        return not_found();
    };
    let Some((owner, id)) = app
        .installations
        .iter()
        .find(|(_, i)| i.to_string() == id)
        .map(|(o, i)| (o.clone(), *i))
    else {
        return not_found();
    };
    let repositories = body["repositories"].as_array().map(|names| {
        names
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_ascii_lowercase)
            .collect::<Vec<_>>()
    });
    if let Some(names) = &repositories {
        let unknown = names
            .iter()
            .any(|n| !st.repos.contains_key(&format!("{owner}/{n}")));
        if unknown {
            return fail(
                StatusCode::UNPROCESSABLE_ENTITY,
                "There is at least one repository that does not exist or is not accessible to the parent installation.",
            );
        }
    }
    let Some(app) = st.app.as_mut() else {
        return not_found();
    };
    let lifetime = i64::try_from(app.lifetime.as_millis()).unwrap_or(i64::MAX);
    let expires_at_ms = now_ms.saturating_add(lifetime);
    let token = format!("ghs_fake{id}x{fresh}");
    let issued = IssuedToken {
        installation: id,
        owner,
        repositories: repositories.clone(),
        expires_at_ms,
    };
    app.tokens.insert(token.clone(), issued);
    let expires = scrum_core::Timestamp(expires_at_ms).to_rfc3339();
    let mut answer = ok(json!({ "token": token, "expires_at": expires,
        "permissions": body.get("permissions").cloned().unwrap_or(json!({})),
        "repository_selection": if repositories.is_some() { "selected" } else { "all" } }));
    answer.status = StatusCode::CREATED;
    answer
}
