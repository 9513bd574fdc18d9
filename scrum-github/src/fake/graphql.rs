//! `POST /graphql`: the one query the client sends, an issue's last editor, answered
//! in GitHub's GraphQL JSON (`data`, and `errors` of type `NOT_FOUND`).

use serde_json::{Value, json};

use super::answer::{Answer, invalid, ok};
use super::state::State;

/// Answers `repository(owner: $owner, name: $name) { issue(number: $number) {
/// editor { login __typename } lastEditedAt } }`, read from the variables.
pub(crate) fn answer(st: &State, body: &Value) -> Answer {
    let Some(query) = body.get("query").and_then(Value::as_str) else {
        return invalid("A query attribute must be specified and must be a string.");
    };
    if !query.contains("repository") || !query.contains("issue") {
        return invalid("the fake GitHub answers only the query for an issue's editor");
    }
    let vars = body.get("variables").cloned().unwrap_or(Value::Null);
    let text = |k: &str| vars.get(k).and_then(Value::as_str).unwrap_or_default();
    let (owner, name) = (text("owner"), text("name"));
    let number = vars.get("number").and_then(Value::as_u64).unwrap_or(0);
    let not_found = |path: Value, message: String| json!({ "type": "NOT_FOUND", "path": path, "locations": [], "message": message });
    let Some(r) = st.repo(&format!("{owner}/{name}")) else {
        return ok(json!({
            "data": { "repository": null },
            "errors": [not_found(json!(["repository"]),
                format!("Could not resolve to a Repository with the name '{owner}/{name}'."))]
        }));
    };
    let Some(i) = r.issues.get(&number).filter(|i| i.pull.is_none()) else {
        return ok(json!({
            "data": { "repository": { "issue": null } },
            "errors": [not_found(json!(["repository", "issue"]),
                format!("Could not resolve to an Issue with the number of {number}."))]
        }));
    };
    let (editor, at) = match &i.last_edit {
        Some((login, at)) => {
            let kind = if login.ends_with("[bot]") {
                "Bot"
            } else {
                "User"
            };
            (
                json!({ "login": login, "__typename": kind }),
                json!(at.to_rfc3339()),
            )
        }
        None => (Value::Null, Value::Null),
    };
    ok(json!({
        "data": { "repository": { "issue": { "editor": editor, "lastEditedAt": at } } }
    }))
}
