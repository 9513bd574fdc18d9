//! Conformance suites: one plain async function per `# Behavior` bullet of a trait,
//! run against every implementation by one macro call in a test file.
//!
//! - [`queue`]: every [`crate::WorkQueue`] backend ([`crate::queue_conformance!`]).
//! - [`source`]: every [`crate::IssueSource`] ([`crate::source_conformance!`]).
//! - [`work`]: every [`crate::worker::WorkSource`] ([`crate::work_conformance!`]).
//! - [`workers`]: every [`crate::WorkerRegistry`], so every queue backend
//!   ([`crate::registry_conformance!`]).
//!
//! Each macro also generates a test that fails when the suite has a `pub async fn`
//! the macro does not run, so a new conformance test cannot be forgotten.

pub mod memory;
pub mod queue;
pub mod source;
pub mod work;
pub mod workers;

/// Panics unless `listed` names exactly the top-level `pub async fn`s of a suite's
/// `source` text (methods, indented, are not suite functions): the check behind
/// every suite macro.
#[doc(hidden)]
pub fn assert_runs_every_function(source: &str, listed: &[&str]) {
    let mut defined: Vec<&str> = source
        .lines()
        .filter_map(|l| l.strip_prefix("pub async fn "))
        .filter_map(|rest| rest.split(['(', '<']).next())
        .map(str::trim)
        .collect();
    let mut listed = listed.to_vec();
    defined.sort_unstable();
    listed.sort_unstable();
    assert_eq!(
        defined, listed,
        "the suite macro must run every `pub async fn` of its suite, and nothing else"
    );
}

#[cfg(test)]
mod tests {
    use super::assert_runs_every_function;

    #[test]
    fn a_function_the_macro_does_not_list_is_caught() {
        let source = "pub async fn a(q: &X) {}\npub async fn b<T>(q: T) {}\nasync fn helper() {}\n\
                      impl Fixture {\n    pub async fn setup(&self) {}\n}\n";
        assert_runs_every_function(source, &["b", "a"]);
        let missing = std::panic::catch_unwind(|| assert_runs_every_function(source, &["a"]));
        assert!(
            missing.is_err(),
            "a function left out of the list must fail"
        );
    }
}
