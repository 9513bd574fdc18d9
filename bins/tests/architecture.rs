//! The docs stay true to the code:
//!
//! - every file or folder path ARCHITECTURE.md, the READMEs and `docs/*.md` name
//!   exists, and every relative link in them points at a file that exists;
//! - the endpoint table of `docs/http-api.md` lists exactly the routes the server
//!   and the dashboard register;
//! - "Adding a backend" in ARCHITECTURE.md lists exactly the required methods (those
//!   without a default body) of `Store`, `WorkQueue` and `WorkerRegistry`.
//!
//! Each check reads the source as text, so it follows the code as it changes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `path` as the repository names it (`docs/deploy.md`).
fn shown(path: &Path) -> String {
    let relative = path.strip_prefix(root()).unwrap_or(path);
    relative.display().to_string()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `.md` files in `dir` (relative to the root), sorted.
fn markdown_in(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.sort();
    files
}

/// The pages users read: the README, ARCHITECTURE.md, the crates' READMEs and `docs/`.
fn pages() -> Vec<PathBuf> {
    let root = root();
    let mut pages = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    for entry in std::fs::read_dir(&root).expect("the repository").flatten() {
        let readme = entry.path().join("README.md");
        if entry.path().is_dir() && readme.is_file() {
            pages.push(readme);
        }
    }
    pages.extend(markdown_in("docs"));
    pages
}

/// The text between backticks in `text`.
fn code_spans(text: &str) -> impl Iterator<Item = &str> {
    text.split('`').skip(1).step_by(2)
}

/// The repository paths `text` names in backticks: `scrum-core/src/state.rs`,
/// `examples/embed`, `deploy/autoscale/`. A path has a slash and either a file
/// name with an extension or a top-level entry of the repository as its first
/// part; API routes (`/work/next`), task ids (`owner/repo#N`), URLs, globs and
/// commands are not paths.
fn named_paths<'a>(text: &'a str, top: &[String]) -> Vec<&'a str> {
    let is_path = |s: &&str| {
        let first = s.split('/').next().unwrap_or_default();
        let file = s.rsplit('/').next().unwrap_or_default();
        s.contains('/')
            && !s.starts_with(['/', '~', '$', '.'])
            && !s.contains([' ', '(', ':', '#', '*', '{', '…', '<', '='])
            && (file.contains('.') || top.iter().any(|t| t == first))
    };
    code_spans(text).filter(is_path).collect()
}

#[test]
fn every_path_the_docs_name_exists() {
    let root = root();
    let top: Vec<String> = std::fs::read_dir(&root)
        .expect("the repository")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    let architecture = read(&root.join("ARCHITECTURE.md"));
    let named = named_paths(&architecture, &top);
    assert!(
        named.len() >= 30,
        "only {} paths found in ARCHITECTURE.md: {named:?}",
        named.len()
    );
    let mut missing = Vec::new();
    for page in pages() {
        let dir = page.parent().expect("a page's folder");
        let text = read(&page);
        // A path is the repository's, or relative to the page's folder (a crate's
        // README names `src/wire.rs`).
        for path in named_paths(&text, &top) {
            if !root.join(path).exists() && !dir.join(path).exists() {
                missing.push(format!("{}: `{path}`", shown(&page)));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the docs name missing paths: {missing:#?}"
    );
}

/// The targets of the Markdown links `[text](target)` in `text`.
fn link_targets(text: &str) -> Vec<&str> {
    text.match_indices("](")
        .filter_map(|(i, _)| {
            let rest = &text[i + 2..];
            Some(&rest[..rest.find(')')?])
        })
        .collect()
}

#[test]
fn every_relative_link_points_at_a_file() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let dir = page.parent().expect("a page's folder");
        for target in link_targets(&read(&page)) {
            if target.contains("://") || target.starts_with(['#', '<']) || target.contains(' ') {
                continue;
            }
            let file = target.split('#').next().unwrap_or_default();
            checked += 1;
            if !dir.join(file).exists() {
                broken.push(format!("{}: ({target})", shown(&page)));
            }
        }
    }
    assert!(checked >= 10, "only {checked} relative links found");
    assert!(broken.is_empty(), "links to missing files: {broken:#?}");
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The routes `src` registers, as `METHOD /path`: each `.route("/path", get(a).post(b))`
/// call, with the methods its second argument names outside any nested call.
fn routes_in(src: &str) -> Vec<String> {
    let mut routes = Vec::new();
    for (i, _) in src.match_indices(".route(") {
        let rest = src[i + ".route(".len()..].trim_start();
        let Some(rest) = rest.strip_prefix('"') else {
            continue;
        };
        let end = rest.find('"').expect("a route's closing quote");
        let path = &rest[..end];
        let (mut depth, mut word) = (0, String::new());
        for c in rest[end + 1..].chars() {
            match c {
                '(' if depth == 0 && METHODS.contains(&word.as_str()) => {
                    routes.push(format!("{} {path}", word.to_uppercase()));
                    depth += 1;
                }
                '(' => depth += 1,
                ')' if depth == 0 => break,
                ')' => depth -= 1,
                _ => {}
            }
            if c.is_alphanumeric() || c == '_' {
                word.push(c);
            } else {
                word.clear();
            }
        }
    }
    routes
}

/// Every route the orchestrator serves: the API's and the dashboard's routers.
fn registered_routes() -> BTreeSet<String> {
    let mut routes = BTreeSet::new();
    for dir in ["scrum-http/src/server", "scrum-http/src/ui"] {
        for entry in std::fs::read_dir(root().join(dir)).expect(dir).flatten() {
            if entry.path().extension().is_some_and(|x| x == "rs") {
                routes.extend(routes_in(&read(&entry.path())));
            }
        }
    }
    routes
}

/// The endpoints the tables of `text` list: each `METHOD /path` in backticks in a
/// row's first cell, without its query (`GET /queue?limit=100` is `GET /queue`).
fn documented_routes(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix('|')?.split('|').next())
        .flat_map(code_spans)
        .filter(|span| {
            let method = span.split(' ').next().unwrap_or_default();
            METHODS.contains(&method.to_lowercase().as_str())
                && method.chars().all(|c| c.is_ascii_uppercase())
                && span.contains(" /")
        })
        .map(|span| span.split('?').next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn the_endpoint_table_lists_every_route() {
    let registered = registered_routes();
    assert!(
        registered.len() >= 20,
        "only {} routes found in scrum-http/src: {registered:?}",
        registered.len()
    );
    let page = "docs/http-api.md";
    let text = read(&root().join(page));
    let table = text
        .split("\n## ")
        .find(|s| s.starts_with("Endpoints"))
        .unwrap_or_else(|| panic!("{page} has no section \"Endpoints\""));
    let documented = documented_routes(table);
    let missing: Vec<&String> = registered.difference(&documented).collect();
    let extra: Vec<&String> = documented.difference(&registered).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{page}'s endpoint table differs from the routes scrum-http registers:\n\
         served but not listed: {missing:?}\nlisted but not served: {extra:?}"
    );
}

/// The methods of `pub trait NAME` in `src` that have no default body.
fn required_methods(src: &str, name: &str) -> BTreeSet<String> {
    let code: String = src
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let start = code
        .find(&format!("pub trait {name}"))
        .unwrap_or_else(|| panic!("pub trait {name} not found"));
    let body_start = start + code[start..].find('{').expect("the trait's body");
    let mut depth = 0;
    let mut body_end = body_start;
    for (i, c) in code[body_start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        if depth == 0 {
            body_end = body_start + i;
            break;
        }
    }
    let body = &code[body_start + 1..body_end];
    let mut required = BTreeSet::new();
    let mut depth = 0;
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            'f' if depth == 0 && body[i..].starts_with("fn ") => {
                let rest = &body[i + 3..];
                let name_end = rest
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .expect("a method's name");
                // A signature holds no braces and no semicolons: the first of them
                // says whether a body follows.
                let ends = rest.find([';', '{']).expect("a method's end");
                if rest.as_bytes()[ends] == b';' {
                    required.insert(rest[..name_end].to_string());
                }
            }
            _ => {}
        }
    }
    required
}

/// The methods a list in ARCHITECTURE.md's "Adding a backend" gives for `name`: the
/// bullets right after the line that says "required methods of `name`", each naming
/// one or more methods in backticks before its first ": " (`- `get`, `list`: reads`).
fn listed_methods(architecture: &str, name: &str) -> BTreeSet<String> {
    let section = architecture
        .split("\n## ")
        .find(|s| s.starts_with("Adding a backend"))
        .expect("ARCHITECTURE.md has a section \"Adding a backend\"");
    let marker = format!("required methods of `{name}`").to_lowercase();
    let mut lines = section.lines();
    lines
        .by_ref()
        .find(|l| l.to_lowercase().contains(&marker))
        .unwrap_or_else(|| panic!("\"Adding a backend\" has no line with {marker}"));
    let mut bullets: Vec<String> = Vec::new();
    for line in lines.skip_while(|l| l.trim().is_empty()) {
        match (line.strip_prefix("- "), bullets.last_mut()) {
            (Some(item), _) => bullets.push(item.to_string()),
            (None, Some(last)) if line.starts_with("  ") => last.push_str(line),
            _ => break,
        }
    }
    bullets
        .iter()
        .flat_map(|b| code_spans(b.split(": ").next().unwrap_or_default()))
        .map(str::to_string)
        .collect()
}

#[test]
fn adding_a_backend_lists_the_required_methods() {
    let architecture = read(&root().join("ARCHITECTURE.md"));
    for (name, file) in [
        ("Store", "scrum-core/src/store.rs"),
        ("WorkQueue", "scrum-core/src/queue.rs"),
        ("WorkerRegistry", "scrum-core/src/workers.rs"),
    ] {
        let required = required_methods(&read(&root().join(file)), name);
        assert!(!required.is_empty(), "no required methods found in {file}");
        let listed = listed_methods(&architecture, name);
        let missing: Vec<&String> = required.difference(&listed).collect();
        let extra: Vec<&String> = listed.difference(&required).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "ARCHITECTURE.md's required methods of `{name}` differ from {file}:\n\
             required but not listed: {missing:?}\nlisted but not required: {extra:?}"
        );
    }
}

#[test]
fn the_parsers_read_what_they_should() {
    let router = r#"Router::new()
        .route("/a", get(views::a))
        .route(
            "/b/{id}",
            get(|| async { Redirect::to("/x") }).post(b),
        )"#;
    assert_eq!(routes_in(router), ["GET /a", "GET /b/{id}", "POST /b/{id}"]);
    let table = "| endpoint | answer |\n| --- | --- |\n\
                 | `GET /queue?limit=100`, `POST /admin/pause` | `GET /not-a-row` |";
    let documented: Vec<String> = documented_routes(table).into_iter().collect();
    assert_eq!(documented, ["GET /queue", "POST /admin/pause"]);
    let source = "pub trait T {\n    /// fn doc(); is not code\n    fn a(&self) -> u8;\n    \
                  async fn b(&self, x: Vec<u8>) -> Result<()> {\n        Ok(())\n    }\n    \
                  async fn c(\n        &self,\n    ) -> Result<()>;\n}\nfn outside();";
    let required: Vec<String> = required_methods(source, "T").into_iter().collect();
    assert_eq!(required, ["a", "c"]);
    let architecture = "# A\n## Adding a backend\n\nThe required methods of `T`:\n\n\
                        - `a`: one\n- `b`, `c`: two, see `X`\n- `d`,\n  `e`: three\n\n\
                        - `not-listed`\n## Next\n- `f`";
    let listed: Vec<String> = listed_methods(architecture, "T").into_iter().collect();
    assert_eq!(listed, ["a", "b", "c", "d", "e"]);
}
