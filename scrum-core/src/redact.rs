//! Redaction of text that leaves the process: failure reasons posted to public issue
//! comments, and anything logged from a worker's output.
//!
//! The Python orchestrator this project replaces posted raw error text, with file paths and tokens, to public issues.
//! [`redact`] removes what is known to be secret or private and caps the length.

/// The longest reason [`redact`] returns, in characters.
pub const MAX_REASON_CHARS: usize = 1000;

/// `text` with credentials, URL passwords and absolute home/workspace paths replaced
/// by placeholders, control characters dropped, and the length capped.
///
/// ```
/// use scrum_core::redact::redact;
/// let r = redact("push to https://x-access-token:ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com/a/b failed in /home/ci/work");
/// assert!(!r.contains("ghp_"));
/// assert!(!r.contains("/home/ci"));
/// assert!(r.contains("[REDACTED]"));
/// ```
pub fn redact(text: &str) -> String {
    redact_to(text, MAX_REASON_CHARS)
}

/// [`redact`], capped at `max` characters instead (a follow-up's feedback carries
/// several checks' logs: [`crate::follow_up::MAX_FEEDBACK_CHARS`]).
pub fn redact_to(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max + 16));
    for (i, word) in text.split_inclusive(char::is_whitespace).enumerate() {
        let trimmed = word.trim_end();
        let tail = &word[trimmed.len()..];
        let previous_was_bearer = i > 0 && out.trim_end().to_ascii_lowercase().ends_with("bearer");
        if previous_was_bearer && !trimmed.is_empty() {
            out.push_str("[REDACTED]");
        } else {
            out.push_str(&redact_word(trimmed));
        }
        out.push_str(tail);
    }
    let mut out: String = out
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect();
    if out.chars().count() > max {
        out = out.chars().take(max).collect();
        out.push_str(" […]");
    }
    out
}

/// Prefixes of well-known credential formats (GitHub, Anthropic, OpenAI, AWS, Slack).
const SECRET_PREFIXES: [&str; 10] = [
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "sk-",
    "AKIA",
    "xoxb-",
    "xoxp-",
];

/// Key names whose value, in `key=value` or `key: value` form, is a secret.
const SECRET_KEYS: [&str; 7] = [
    "token",
    "password",
    "passwd",
    "secret",
    "api_key",
    "apikey",
    "authorization",
];

fn redact_word(word: &str) -> String {
    // user:password@ in URLs
    if let Some(scheme_end) = word.find("://") {
        let rest = &word[scheme_end + 3..];
        if let Some(at) = rest.find('@') {
            let host_part = &rest[at + 1..];
            if !rest[..at].contains('/') {
                return format!(
                    "{}[REDACTED]@{}",
                    &word[..scheme_end + 3],
                    redact_word(host_part)
                );
            }
        }
    }
    if let Some((key, _)) = word.split_once('=').or_else(|| word.split_once(':')) {
        let k = key
            .trim_start_matches(|c: char| !c.is_alphanumeric())
            .to_ascii_lowercase();
        if SECRET_KEYS.iter().any(|s| k.ends_with(s)) && !word.contains("://") {
            return format!("{key}=[REDACTED]");
        }
    }
    let bare = word.trim_matches(|c: char| "\"'`()[]{},;".contains(c));
    if SECRET_PREFIXES
        .iter()
        .any(|p| bare.starts_with(p) && bare.len() >= p.len() + 12)
    {
        return word.replace(bare, "[REDACTED]");
    }
    for home in ["/home/", "/root/", "/Users/", "/opt/", "/tmp/", "/var/"] {
        if let Some(pos) = word.find(home) {
            let file = word.rsplit('/').next().unwrap_or("");
            return format!("{}<path>/{file}", &word[..pos]);
        }
    }
    word.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_known_secret_shapes() {
        let cases = [
            "token=abc123secret",
            "Authorization: Bearer abcdefghijklmnop",
            "ANTHROPIC_API_KEY=sk-ant-api03-abcdefghijklmnopqrstuvwxyz",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
            "https://user:hunter2@example.com/repo.git",
        ];
        for c in cases {
            let r = redact(c);
            for secret in [
                "abc123secret",
                "abcdefghijklmnop",
                "sk-ant",
                "11ABCDEFG",
                "hunter2",
            ] {
                assert!(!r.contains(secret), "{c:?} -> {r:?} leaks {secret}");
            }
        }
    }

    #[test]
    fn keeps_ordinary_text_and_caps_length() {
        assert_eq!(
            redact("cargo test failed: 3 tests"),
            "cargo test failed: 3 tests"
        );
        assert_eq!(
            redact("error in /home/alice/work/src/main.rs"),
            "error in <path>/main.rs"
        );
        let long = "x".repeat(5000);
        assert!(redact(&long).chars().count() <= MAX_REASON_CHARS + 4);
        assert_eq!(redact("bell\u{7}"), "bell");
    }
}
