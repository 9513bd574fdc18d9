//! ARCHITECTURE.md stays true: every file or folder path it names exists.

use std::path::Path;

#[test]
fn every_path_architecture_md_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    // Paths are written in backticks: `scrum-core/src/state.rs`, `examples/embed`. A
    // file has an extension; a folder starts with a top-level folder of the
    // repository. API routes (`/work/next`) and task ids (`owner/repo`) are neither.
    let top: Vec<String> = std::fs::read_dir(&root)
        .expect("the repository")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    let is_path = |s: &&str| {
        let first = s.split('/').next().unwrap_or_default();
        let file = s.rsplit('/').next().unwrap_or_default();
        s.contains('/')
            && !s.starts_with('/')
            && !s.contains([' ', '(', ':', '#'])
            && (file.contains('.') || top.iter().any(|t| t == first))
    };
    let named: Vec<&str> = text.split('`').skip(1).step_by(2).filter(is_path).collect();
    assert!(
        named.len() >= 30,
        "only {} paths found: {named:?}",
        named.len()
    );
    let missing: Vec<&&str> = named.iter().filter(|p| !root.join(p).exists()).collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names missing paths: {missing:?}"
    );
}
