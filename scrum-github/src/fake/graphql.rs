//! `POST /graphql`: the batched query the client sends for trust, answered in
//! GitHub's GraphQL JSON (`data` by alias, `errors` of type `NOT_FOUND`).
//!
//! The fake reads only the shape of the query: each `ALIAS: repository(owner:
//! "…", name: "…")` and, inside it, each `ALIAS: issue(number: N)`. Every issue is
//! answered with all the fields the client asks for (number, state, author,
//! editor, lastEditedAt, labels, and the last 100 `LabeledEvent` and
//! `RenamedTitleEvent` timeline items), and `rateLimit` with the query's cost.

use serde_json::{Map, Value, json};

use super::answer::{Answer, invalid, ok};
use super::state::{FakeEvent, FakeIssue, State};

/// One repository the query asks for: its alias, name, and issues by alias.
struct Wanted {
    alias: String,
    owner: String,
    name: String,
    issues: Vec<(String, u64)>,
}

/// Answers the query in `body`.
pub(crate) fn answer(st: &State, body: &Value) -> Answer {
    let Some(query) = body.get("query").and_then(Value::as_str) else {
        return invalid("A query attribute must be specified and must be a string.");
    };
    let wanted = parse(query);
    if wanted.is_empty() {
        return invalid("the fake GitHub answers only the batched trust query");
    }
    let mut data = Map::new();
    let mut errors = Vec::new();
    let issues: usize = wanted.iter().map(|w| w.issues.len()).sum();
    // GitHub's cost: the requests the connections need (two per issue, one per
    // repository), over 100, at least one point.
    let cost = (((wanted.len() + 2 * issues) as f64 / 100.0).round() as u64).max(1);
    data.insert(
        "rateLimit".into(),
        json!({ "cost": cost, "remaining": 5000u64.saturating_sub(st.graphql_points_spent + cost) }),
    );
    for w in &wanted {
        data.insert(w.alias.clone(), repository(st, w, &mut errors));
    }
    let mut answer = json!({ "data": data });
    if !errors.is_empty() {
        answer["errors"] = Value::Array(errors);
    }
    Answer {
        graphql_points: Some(cost),
        ..ok(answer)
    }
}

fn not_found(path: Value, message: String) -> Value {
    json!({ "type": "NOT_FOUND", "path": path, "locations": [], "message": message })
}

fn repository(st: &State, w: &Wanted, errors: &mut Vec<Value>) -> Value {
    let Some(r) = st.repo(&format!("{}/{}", w.owner, w.name)) else {
        errors.push(not_found(
            json!([w.alias]),
            format!(
                "Could not resolve to a Repository with the name '{}/{}'.",
                w.owner, w.name
            ),
        ));
        return Value::Null;
    };
    let mut out = Map::new();
    for (alias, number) in &w.issues {
        let issue = r.issues.get(number).filter(|i| i.pull.is_none());
        let value = match issue {
            Some(i) => issue_json(i),
            None => {
                errors.push(not_found(
                    json!([w.alias, alias]),
                    format!("Could not resolve to an Issue with the number of {number}."),
                ));
                Value::Null
            }
        };
        out.insert(alias.clone(), value);
    }
    Value::Object(out)
}

fn actor(login: &str) -> Value {
    let kind = if login.ends_with("[bot]") {
        "Bot"
    } else {
        "User"
    };
    json!({ "login": login, "__typename": kind })
}

fn timeline_item(e: &FakeEvent) -> Option<Value> {
    let at = e.created_at.to_rfc3339();
    match e.event.as_str() {
        "labeled" => Some(json!({
            "__typename": "LabeledEvent", "createdAt": at, "actor": actor(&e.actor),
            "label": { "name": e.label.clone().unwrap_or_default() }
        })),
        "renamed" => Some(json!({
            "__typename": "RenamedTitleEvent", "createdAt": at, "actor": actor(&e.actor)
        })),
        _ => None,
    }
}

fn issue_json(i: &FakeIssue) -> Value {
    let (editor, at) = match &i.last_edit {
        Some((login, at)) => (actor(login), json!(at.to_rfc3339())),
        None => (Value::Null, Value::Null),
    };
    let items: Vec<Value> = i.events.iter().filter_map(timeline_item).collect();
    let last: Vec<Value> = items[items.len().saturating_sub(100)..].to_vec();
    let labels: Vec<Value> = i.labels.iter().map(|l| json!({ "name": l })).collect();
    json!({
        "number": i.number,
        "state": if i.open { "OPEN" } else { "CLOSED" },
        "author": actor(&i.author),
        "editor": editor,
        "lastEditedAt": at,
        "labels": { "nodes": labels },
        "timelineItems": { "nodes": last },
    })
}

/// The identifier that ends `text` before a trailing `:` (an alias).
fn alias_before(text: &str) -> String {
    let t = text.trim_end().trim_end_matches(':').trim_end();
    let start = t
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    t[start..].to_string()
}

/// The string argument `key: "value"` in `args`.
fn string_arg(args: &str, key: &str) -> Option<String> {
    let rest = &args[args.find(&format!("{key}:"))? + key.len() + 1..];
    let rest = &rest[rest.find('"')? + 1..];
    Some(rest[..rest.find('"')?].to_string())
}

/// The repositories and issues the query names, by alias.
fn parse(query: &str) -> Vec<Wanted> {
    let query = query.split("fragment ").next().unwrap_or_default();
    let parts: Vec<&str> = query.split("repository(").collect();
    let mut wanted = Vec::new();
    for k in 1..parts.len() {
        let part = parts[k];
        let args = &part[..part.find(')').unwrap_or(part.len())];
        let (Some(owner), Some(name)) = (string_arg(args, "owner"), string_arg(args, "name"))
        else {
            continue;
        };
        let pieces: Vec<&str> = part.split("issue(number:").collect();
        let issues = (1..pieces.len())
            .filter_map(|n| {
                let digits: String = pieces[n]
                    .trim_start()
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                Some((alias_before(pieces[n - 1]), digits.parse().ok()?))
            })
            .collect();
        wanted.push(Wanted {
            alias: alias_before(parts[k - 1]),
            owner,
            name,
            issues,
        });
    }
    wanted
}
