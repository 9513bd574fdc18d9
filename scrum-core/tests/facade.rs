//! The engine's facade stays small: `Orchestrator` keeps the work API, the
//! leader's duties and construction; reads and operator actions are on its
//! `reads()` and `operator()` handles, and features plug into the claim-gate and
//! poll-step seams. Read from the source as text, so it follows the code.

use std::path::Path;

/// The most public methods `Orchestrator` may have.
const MAX_PUBLIC: usize = 25;

/// The public methods of every `impl Orchestrator` block in `text`.
fn public_methods(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("impl Orchestrator {") {
            inside = true;
        } else if inside && line.starts_with('}') {
            inside = false;
        } else if inside {
            let rest = line.strip_prefix("    pub ").unwrap_or_default();
            let rest = rest.strip_prefix("async ").unwrap_or(rest);
            if let Some(name) = rest.strip_prefix("fn ") {
                found.push(
                    name.split(['(', '<'])
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                );
            }
        }
    }
    found
}

#[test]
fn the_orchestrator_has_at_most_25_public_methods() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine");
    let mut methods = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("src/engine") {
        let path = entry.expect("an entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("a source file");
            methods.extend(public_methods(&text));
        }
    }
    methods.sort();
    println!(
        "Orchestrator has {} public methods: {methods:?}",
        methods.len()
    );
    assert!(methods.contains(&"next_work".to_string()), "{methods:?}");
    assert!(
        methods.len() <= MAX_PUBLIC,
        "Orchestrator has {} public methods (at most {MAX_PUBLIC}): {methods:?}",
        methods.len()
    );
}

#[test]
fn next_work_names_no_feature() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine/work.rs");
    let text = std::fs::read_to_string(path).expect("work.rs");
    let start = text.find("pub async fn next_work").expect("next_work");
    let body = &text[start..];
    let body = &body[..body.find("\n    }\n").expect("its end")];
    for feature in [
        "pause", "paused", "drain", "review", "pull", "refused", "hold", "budget", "trust", "vet_",
        "block", "lock(",
    ] {
        assert!(!body.contains(feature), "next_work names {feature:?}");
    }
}
