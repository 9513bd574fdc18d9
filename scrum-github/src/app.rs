//! GitHub App authentication: the app's private key signs short JSON Web Tokens
//! (RS256), which find the installation that covers each repository owner and mint
//! installation tokens; those tokens are kept and renewed before they expire.
//!
//! The signing is ring's RSA (already in the build for TLS), so the app needs no
//! further crypto crate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use scrum_core::{Error, ErrorKind, Result};

use crate::sync::lock;

/// A GitHub App: its id (`GITHUB_APP_ID`) and private key
/// (`GITHUB_APP_PRIVATE_KEY`). `Debug` shows the id only.
#[derive(Clone)]
pub struct GitHubApp {
    id: u64,
    key: Arc<RsaKeyPair>,
}

impl std::fmt::Debug for GitHubApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubApp")
            .field("id", &self.id)
            .field("key", &"[REDACTED]")
            .finish()
    }
}

impl GitHubApp {
    /// The app `id` with the private key in `pem`: the PKCS#1 PEM file GitHub
    /// hands out (`-----BEGIN RSA PRIVATE KEY-----`), or PKCS#8
    /// (`-----BEGIN PRIVATE KEY-----`).
    ///
    /// # Errors
    /// `Invalid` naming `GITHUB_APP_PRIVATE_KEY` when the text is no RSA private key.
    pub fn from_pem(id: u64, pem: &str) -> Result<GitHubApp> {
        let bad = |why: &str| {
            Error::invalid(format!(
                "GITHUB_APP_PRIVATE_KEY is not the app's RSA private key in PEM form: {why}"
            ))
        };
        let (label, der) = pem_der(pem).ok_or_else(|| bad("no PEM block found"))?;
        let key = match label.as_str() {
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
            other => return Err(bad(&format!("a {other:?} block"))),
        }
        .map_err(|e| bad(&e.to_string()))?;
        Ok(GitHubApp {
            id,
            key: Arc::new(key),
        })
    }

    /// The app's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The public half of the key (PKCS#1 `RSAPublicKey`, DER), which verifies its
    /// signatures.
    pub fn public_key_der(&self) -> Vec<u8> {
        ring::signature::KeyPair::public_key(self.key.as_ref())
            .as_ref()
            .to_vec()
    }

    /// A JWT that authenticates as the app for the next nine minutes (GitHub takes
    /// at most ten; `iat` is set a minute back for clock drift).
    ///
    /// # Errors
    /// `Internal` when signing fails.
    pub(crate) fn jwt(&self, now: SystemTime) -> Result<String> {
        let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({
            "iat": secs.saturating_sub(60),
            "exp": secs + 9 * 60,
            "iss": self.id.to_string(),
        });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let message = format!("{header}.{claims}");
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message.as_bytes(),
                &mut signature,
            )
            .map_err(|_| Error::new(ErrorKind::Internal, "could not sign the app's JWT"))?;
        Ok(format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// The first PEM block of `pem`: its label and its bytes.
pub(crate) fn pem_der(pem: &str) -> Option<(String, Vec<u8>)> {
    let start = pem.find("-----BEGIN ")?;
    let rest = &pem[start + "-----BEGIN ".len()..];
    let (label, rest) = rest.split_once("-----")?;
    let end = rest.find(&format!("-----END {label}-----"))?;
    let text: String = rest[..end].chars().filter(|c| !c.is_whitespace()).collect();
    Some((label.to_string(), STANDARD.decode(text).ok()?))
}

/// An installation token and when it expires.
#[derive(Clone)]
pub(crate) struct InstallationToken {
    pub(crate) token: String,
    pub(crate) expires_at: SystemTime,
}

impl InstallationToken {
    /// Whether it is still good for at least `margin`.
    pub(crate) fn fresh(&self, margin: Duration) -> bool {
        self.expires_at
            .duration_since(SystemTime::now())
            .is_ok_and(|left| left > margin)
    }
}

/// What the client knows of the app's installations: which one covers each
/// owner, and each one's current token. One refresh at a time per installation:
/// requests that need a token meanwhile wait for it rather than mint their own.
#[derive(Default)]
pub(crate) struct Installations {
    /// Installation ids by lower-case owner login.
    owners: Mutex<HashMap<String, u64>>,
    tokens: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<Option<InstallationToken>>>>>,
}

impl Installations {
    /// The installation known to cover `owner`.
    pub(crate) fn of(&self, owner: &str) -> Option<u64> {
        lock(&self.owners).get(&owner.to_ascii_lowercase()).copied()
    }

    /// Remembers that `installation` covers `owner`.
    pub(crate) fn learn(&self, owner: &str, installation: u64) {
        lock(&self.owners).insert(owner.to_ascii_lowercase(), installation);
    }

    /// The slot that holds `installation`'s token (lock it to read or renew it).
    pub(crate) fn slot(
        &self,
        installation: u64,
    ) -> Arc<tokio::sync::Mutex<Option<InstallationToken>>> {
        lock(&self.tokens).entry(installation).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = include_str!("fake/app_key.pem");

    #[test]
    fn a_jwt_is_signed_with_the_key_and_names_the_app() {
        let app = GitHubApp::from_pem(42, KEY).unwrap();
        let jwt = app
            .jwt(UNIX_EPOCH + Duration::from_secs(1_000_000))
            .unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], "42");
        assert_eq!(claims["exp"], 1_000_540);
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            app.public_key_der(),
        );
        let signed = format!("{}.{}", parts[0], parts[1]);
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        assert!(public.verify(signed.as_bytes(), &signature).is_ok());
        assert!(public.verify(b"something else", &signature).is_err());
    }

    #[test]
    fn a_bad_key_is_refused_naming_the_setting() {
        let e = GitHubApp::from_pem(1, "not a key").unwrap_err();
        assert!(e.to_string().contains("GITHUB_APP_PRIVATE_KEY"), "{e}");
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(GitHubApp::from_pem(1, cert).is_err());
        assert!(!format!("{:?}", GitHubApp::from_pem(1, KEY).unwrap()).contains("BEGIN"));
    }
}
