//! Webhooks: signatures checked in constant time; `issues` events become the task to
//! look at; anything malformed is refused or ignored without a panic.

use scrum_core::ErrorKind;
use scrum_github::webhook::{WebhookSecret, affected_task, parse_event, sign, verify_signature};

fn secret() -> WebhookSecret {
    WebhookSecret::new("It's a Secret to Everybody").unwrap()
}

fn issues_event(action: &str) -> Vec<u8> {
    format!(
        r#"{{"action":"{action}","issue":{{"number":42,"title":"x","labels":[{{"name":"ai-ready"}}]}},
            "repository":{{"full_name":"acme/widgets","id":1}},"sender":{{"login":"alice"}}}}"#
    )
    .into_bytes()
}

#[test]
fn githubs_documented_example_signature_is_accepted() {
    // The example from GitHub's "Validating webhook deliveries" page.
    let s = secret();
    let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    verify_signature(&s, Some(sig), b"Hello, World!").unwrap();
    assert_eq!(sign(&s, b"Hello, World!"), sig);
}

#[test]
fn a_valid_signature_turns_each_issue_action_into_its_task() {
    let s = secret();
    for action in ["labeled", "unlabeled", "closed", "reopened"] {
        let body = issues_event(action);
        let task = affected_task(&s, Some("issues"), Some(&sign(&s, &body)), &body)
            .unwrap()
            .unwrap();
        assert_eq!(task.to_string(), "acme/widgets#42", "{action}");
    }
}

#[test]
fn a_dependency_event_names_the_blocked_issue() {
    let body = br#"{"action":"blocked_by_added","blocked_issue":{"number":7,"title":"B"},
        "blocking_issue":{"number":3},"repository":{"full_name":"acme/widgets"}}"#;
    let task = parse_event(Some("issue_dependencies"), body)
        .unwrap()
        .unwrap();
    assert_eq!(task.to_string(), "acme/widgets#7");
    let err = parse_event(Some("issue_dependencies"), b"{}").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
}

#[test]
fn pull_request_and_review_events_name_the_pull_request() {
    let body = br#"{"action":"submitted","pull_request":{"number":12},
        "review":{"state":"approved"},"repository":{"full_name":"acme/widgets"}}"#;
    for event in ["pull_request", "pull_request_review"] {
        let task = parse_event(Some(event), body).unwrap().unwrap();
        assert_eq!(task.to_string(), "acme/widgets#12", "{event}");
    }
}

#[test]
fn a_wrong_or_missing_signature_is_refused_as_unauthorized() {
    let s = secret();
    let body = issues_event("labeled");
    let other = WebhookSecret::new("another secret").unwrap();
    let good = sign(&s, &body);
    let flipped = format!(
        "{}{}",
        &good[..good.len() - 1],
        if good.ends_with('0') { '1' } else { '0' }
    );
    let cases: Vec<Option<String>> = vec![
        None,
        Some(String::new()),
        Some(sign(&other, &body)),
        Some(sign(&s, b"another body")),
        Some(flipped),
        Some(good.replace("sha256=", "sha1=")),
        Some("sha256=".into()),
        Some("sha256=zz".into()),
        Some("sha256=abc".into()),
        Some(format!("sha256={}", "ab".repeat(500))),
        Some(good.to_uppercase()),
    ];
    for sig in cases {
        let err = affected_task(&s, Some("issues"), sig.as_deref(), &body).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthorized, "{sig:?}");
    }
}

#[test]
fn malformed_payloads_are_refused_and_other_events_ignored() {
    let s = secret();
    let signed =
        |event: Option<&str>, body: &[u8]| affected_task(&s, event, Some(&sign(&s, body)), body);

    assert_eq!(
        signed(Some("ping"), br#"{"zen":"Design for failure."}"#).unwrap(),
        None
    );
    assert_eq!(signed(Some("push"), b"not even json").unwrap(), None);
    assert_eq!(
        signed(Some("issues"), &issues_event("assigned")).unwrap(),
        None
    );
    assert_eq!(
        signed(Some("issue_comment"), &issues_event("created")).unwrap(),
        None
    );

    for body in [
        &b"{"[..],
        b"",
        b"null",
        b"[]",
        br#"{"action":"labeled"}"#,
        br#"{"action":"labeled","issue":{"number":"seven"},"repository":{"full_name":"acme/widgets"}}"#,
        br#"{"action":"labeled","issue":{"number":0},"repository":{"full_name":"acme/widgets"}}"#,
        br#"{"action":"labeled","issue":{"number":3},"repository":{"full_name":"no slash"}}"#,
        b"\xff\xfe\x00garbage",
    ] {
        let err = signed(Some("issues"), body).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid, "{:?}", String::from_utf8_lossy(body));
    }
    let err = signed(None, &issues_event("labeled")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
}

#[test]
fn arbitrary_bytes_never_panic() {
    let s = secret();
    let mut rng = fastrand::Rng::with_seed(7);
    let base = issues_event("labeled");
    for _ in 0..2000 {
        let mut body = base.clone();
        for _ in 0..rng.usize(1..8) {
            let i = rng.usize(..body.len());
            body[i] = rng.u8(..);
        }
        body.truncate(rng.usize(..=body.len()));
        let _ = parse_event(Some("issues"), &body);
        let _ = affected_task(&s, Some("issues"), Some(&sign(&s, &body)), &body);
    }
}

#[test]
fn the_secret_stays_out_of_debug_and_must_not_be_empty() {
    assert!(!format!("{:?}", secret()).contains("Secret to"));
    let err = WebhookSecret::new("").unwrap_err();
    assert!(err.to_string().contains("GITHUB_WEBHOOK_SECRET"));
}
