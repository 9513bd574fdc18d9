//! `/openapi.json`: the OpenAPI 3.0 description of every endpoint, kept here in one
//! place. A test checks that it names exactly the routes in [`crate::server::ROUTES`].

use std::time::Duration;

use serde_json::{Map, Value, json};

const WORKER_ID: &str = "^[A-Za-z0-9._:@-]+$";
const REPOSITORY: &str = "^[A-Za-z0-9._-]{1,100}/[A-Za-z0-9._-]{1,100}$";
const LEASE_TOKEN: &str = "^[0-9a-fA-F]{32}$";
const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_991;
/// A string with something in it: a character that is not whitespace (Unicode
/// `White_Space`, what Rust's `char::is_whitespace` and the server's check see),
/// spelled out so every regex engine reads it the same.
const NOT_BLANK: &str = "[^\t\n\u{b}\u{c}\r \u{85}\u{a0}\u{1680}\u{2000}-\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}]";

/// The 403 of every guarded endpoint: the rule without an API token.
const FORBIDDEN: &str = "No API token is configured and the caller's address may not call this endpoint: the work endpoints and the reads answer only loopback and WORKER_IPS, the operator actions and worker logs only loopback. Set an API token, or add the address to WORKER_IPS";

/// The access rule, for the document's description.
const ACCESS: &str = "Access: with an API token, every call but `/health` and the webhooks (`POST /webhooks/github`, signed; `POST /webhooks/gitlab`, with its secret token) needs `Authorization: Bearer <token>`. Without one, `/work/*`, `/queue`, `/workers`, `/metrics`, `/openapi.json` and `GET /admin/*` answer only loopback and WORKER_IPS, `POST /admin/*` and `/workers/{id}/logs` only loopback (403 otherwise); `/health` is open and carries no issue text.";

fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn nullable(ty: &str) -> Value {
    json!({ "type": ty, "nullable": true })
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": r("Error") } }
    })
}

/// One operation: a summary, an optional JSON body, query parameters, the 200
/// schema and the error statuses it may answer.
fn op(
    summary: &str,
    body: Option<&str>,
    params: Value,
    ok: Value,
    errors: &[u16],
    open: bool,
) -> Value {
    let mut responses = Map::new();
    responses.insert(
        "200".into(),
        json!({ "description": "OK", "content": { "application/json": { "schema": ok } } }),
    );
    let mut statuses: Vec<u16> = errors.to_vec();
    if !open {
        statuses.extend([401, 403]);
    }
    if body.is_some() {
        statuses.extend([400, 413, 422]);
    }
    statuses.sort_unstable();
    statuses.dedup();
    for s in statuses {
        let what = match s {
            400 => {
                "Malformed JSON, a query string that does not parse or names a parameter the endpoint does not take, or a path segment that does not parse"
            }
            401 => "Missing or wrong bearer token",
            403 => FORBIDDEN,
            404 => "No such task, issue or worker",
            409 => {
                "The caller does not hold the lease (`lease_lost`), or the task is not in a state the action applies to"
            }
            413 => "The body is larger than the server accepts",
            422 => "A field is missing, has the wrong type or an invalid value",
            503 => "The store is unavailable; retry after `Retry-After`",
            _ => "Error",
        };
        responses.insert(s.to_string(), error_response(what));
    }
    let mut o = json!({ "summary": summary, "responses": responses });
    if let Some(schema) = body {
        o["requestBody"] = json!({
            "required": true,
            "content": { "application/json": { "schema": r(schema) } }
        });
    }
    if params.as_array().is_some_and(|p| !p.is_empty()) {
        o["parameters"] = params;
    }
    if open {
        o["security"] = json!([]);
    }
    o
}

fn task_ref_props() -> Map<String, Value> {
    let v = json!({
        "worker_id": { "type": "string", "pattern": WORKER_ID, "minLength": 1, "maxLength": 128 },
        "issue_number": { "type": "integer", "minimum": 1, "maximum": MAX_SAFE_INTEGER },
        "repository": { "type": "string", "pattern": REPOSITORY, "nullable": true },
        "lease_token": { "type": "string", "pattern": LEASE_TOKEN, "nullable": true },
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn request(extra: Value, required: &[&str]) -> Value {
    let mut props = task_ref_props();
    if let Value::Object(m) = extra {
        props.extend(m);
    }
    let mut req = vec!["worker_id", "issue_number"];
    req.extend_from_slice(required);
    json!({ "type": "object", "properties": props, "required": req })
}

fn schemas() -> Value {
    let entry_state = json!({ "type": "string", "enum": ["pending", "in_progress", "completed", "failed", "cancelled", "parked"] });
    let token_count =
        json!({ "type": "integer", "minimum": 0, "maximum": MAX_SAFE_INTEGER, "nullable": true });
    let cost = json!({ "type": "number", "minimum": 0, "nullable": true });
    let strings = json!({ "type": "array", "items": { "type": "string" } });
    let mut schemas = json!({
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": { "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": { "code": { "type": "string" }, "message": { "type": "string" } }
            } }
        },
        "Health": {
            "type": "object",
            "required": ["status", "workers", "queue", "github_connected", "version"],
            "properties": {
                "status": { "type": "string", "enum": ["healthy", "degraded"] },
                "workers": { "type": "object", "required": ["total", "available"], "properties": {
                    "total": { "type": "integer" }, "available": { "type": "integer" }, "busy": { "type": "integer" } } },
                "queue": { "type": "object", "required": ["pending", "in_progress", "completed"], "properties": {
                    "pending": { "type": "integer" }, "in_progress": { "type": "integer" },
                    "completed": { "type": "integer" }, "failed": { "type": "integer" },
                    "cancelled": { "type": "integer" }, "parked": { "type": "integer" } } },
                "github_connected": { "type": "boolean" },
                "github": { "type": "object", "properties": {
                    "connected": { "type": "boolean" }, "reason": nullable("string"),
                    "last_poll": nullable("string"),
                    "writes": { "type": "object", "properties": {
                        "status": { "type": "string", "enum": ["ok", "degraded"] },
                        "repositories": { "type": "array", "items": { "type": "object",
                            "required": ["repository", "failing", "dead", "refused", "last_error"],
                            "properties": {
                                "repository": { "type": "string" },
                                "failing": { "type": "integer", "minimum": 0 },
                                "dead": { "type": "integer", "minimum": 0 },
                                "refused": { "type": "boolean" },
                                "last_error": nullable("string") } } } } } } },
                "forges": { "type": "array",
                    "description": "Each forge apart when the orchestrator serves several (GitHub beside GitLab); empty otherwise, the `github` fields then speak for the one source",
                    "items": { "type": "object",
                        "required": ["forge", "connected", "reason", "rate_limit", "writes"],
                        "properties": {
                            "forge": { "type": "string", "example": "gitlab" },
                            "connected": { "type": "boolean" },
                            "reason": nullable("string"),
                            "rate_limit": { "type": "object", "required": ["remaining", "reset"], "properties": {
                                "remaining": nullable("integer"), "reset": nullable("string") } },
                            "writes": { "type": "object", "required": ["status", "failing_repositories"], "properties": {
                                "status": { "type": "string", "enum": ["ok", "degraded"] },
                                "failing_repositories": { "type": "integer", "minimum": 0 } } } } } },
                "store": { "type": "object", "properties": {
                    "status": { "type": "string", "enum": ["ok", "unavailable"] },
                    "error": { "type": "string" } } },
                "dispatch": { "type": "object", "properties": {
                    "paused": { "type": "boolean" }, "leader": { "type": "boolean" } } },
                "trust_mode": { "type": "string", "enum": ["off", "labeler", "author"] },
                "version": { "type": "string" }
            }
        },
        "NextResponse": {
            "type": "object",
            "required": ["work_available"],
            "description": "`{\"work_available\":false}`, or the work with every other field present.",
            "properties": {
                "work_available": { "type": "boolean" },
                "issue_number": { "type": "integer" },
                "title": { "type": "string" },
                "body": { "type": "string" },
                "labels": { "type": "array", "items": { "type": "string" } },
                "branch_name": { "type": "string" },
                "repository": { "type": "string" },
                "task_id": { "type": "string" },
                "lease_token": { "type": "string", "pattern": LEASE_TOKEN },
                "lease_expires_at": { "type": "string", "format": "date-time" },
                "lease_expires_at_ms": { "type": "integer" },
                "attempt": { "type": "integer" },
                "max_attempts": { "type": "integer" },
                "heartbeat_interval_secs": { "type": "number" },
                "text_digest": { "type": "string", "pattern": "^sha256:[0-9a-f]{64}$" }
            }
        },
        "CompleteRequest": request(json!({
            "pr_url": nullable("string"),
            "success": { "type": "boolean" },
            "error": nullable("string"),
            "cost_usd": cost.clone(),
            "tokens": token_count.clone(),
            "revisions": { "type": "integer", "minimum": 0, "maximum": u32::MAX, "nullable": true }
        }), &["success"]),
        "FailedRequest": request(json!({
            "error": { "type": "string" },
            "retryable": nullable("boolean"),
            "cost_usd": cost.clone(),
            "tokens": token_count.clone()
        }), &["error"]),
        "HeartbeatRequest": request(json!({}), &[]),
        "ReleaseRequest": request(json!({ "reason": nullable("string") }), &[]),
        "ClarifyRequest": request(json!({
            "questions": { "type": "array", "minItems": 1,
                "description": "What a person should answer; every question says something (not only whitespace)",
                "items": { "type": "string", "pattern": NOT_BLANK } },
            "reasoning": nullable("string"),
            "cost_usd": cost.clone(),
            "tokens": token_count.clone()
        }), &["questions"]),
        "ReportResponse": {
            "type": "object",
            "required": ["status", "task_id", "state"],
            "properties": {
                "status": { "type": "string", "enum": ["acknowledged"] },
                "task_id": { "type": "string" },
                "state": entry_state
            }
        },
        "HeartbeatResponse": {
            "type": "object",
            "required": ["status", "lease_expires_at", "lease_expires_at_ms", "cancel"],
            "properties": {
                "status": { "type": "string", "enum": ["acknowledged"] },
                "lease_expires_at": { "type": "string", "format": "date-time" },
                "lease_expires_at_ms": { "type": "integer" },
                "cancel": { "type": "boolean" }
            }
        },
        "TaskAction": {
            "type": "object",
            "required": ["repository", "issue_number"],
            "properties": {
                "repository": { "type": "string", "pattern": REPOSITORY },
                "issue_number": { "type": "integer", "minimum": 1, "maximum": MAX_SAFE_INTEGER },
                "reason": nullable("string")
            }
        },
        "DrainRequest": {
            "type": "object",
            "required": ["worker_id"],
            "properties": {
                "worker_id": { "type": "string", "pattern": WORKER_ID, "minLength": 1, "maxLength": 128 },
                "draining": nullable("boolean")
            }
        },
        "EffectEntry": {
            "type": "object",
            "required": ["id", "task_id", "repository", "effect", "failures", "dead", "refused", "next_attempt_at", "last_error"],
            "properties": {
                "id": { "type": "integer", "minimum": 1 },
                "task_id": { "type": "string" },
                "repository": { "type": "string", "pattern": REPOSITORY },
                "effect": { "type": "string", "enum": ["queued", "retry_scheduled", "completed", "failed", "cancelled"] },
                "failures": { "type": "integer", "minimum": 0 },
                "dead": { "type": "boolean" },
                "refused": { "type": "boolean" },
                "next_attempt_at": nullable("string"),
                "last_error": nullable("string")
            }
        },
        "EffectsResponse": {
            "type": "object",
            "required": ["effects"],
            "properties": { "effects": { "type": "array", "items": r("EffectEntry") } }
        },
        "EffectsRetryRequest": {
            "type": "object",
            "description": "A repository, an effect id, or neither (every set-aside effect); not both",
            "not": { "required": ["repository", "id"] },
            "properties": {
                "repository": { "type": "string", "pattern": REPOSITORY },
                "id": { "type": "integer", "minimum": 1, "maximum": u64::MAX }
            }
        },
        "EffectsRetryResponse": {
            "type": "object",
            "required": ["status", "retried"],
            "properties": {
                "status": { "type": "string", "enum": ["ok"] },
                "retried": { "type": "integer", "minimum": 0 }
            }
        },
        "WebhookResponse": {
            "type": "object",
            "required": ["status", "task_id"],
            "properties": {
                "status": { "type": "string", "enum": ["polling", "ignored"] },
                "task_id": nullable("string")
            }
        },
        "ActionResponse": {
            "type": "object",
            "required": ["status"],
            "properties": {
                "status": { "type": "string", "enum": ["ok"] },
                "task": r("QueueEntry"),
                "paused": { "type": "boolean" }
            }
        }
    });
    // In two parts: one `json!` of every schema passes the macro recursion limit.
    let more = json!({
        "QueueEntry": {
            "type": "object",
            "required": ["task_id", "issue_number", "repository", "title", "labels", "state",
                         "attempts", "max_attempts", "worker_id", "enqueued_at", "updated_at",
                         "last_error", "pr_url", "cancel_requested"],
            "properties": {
                "task_id": { "type": "string" },
                "issue_number": { "type": "integer" },
                "repository": { "type": "string" },
                "title": { "type": "string" },
                "labels": { "type": "array", "items": { "type": "string" } },
                "state": entry_state,
                "attempts": { "type": "integer" },
                "max_attempts": { "type": "integer" },
                "worker_id": nullable("string"),
                "enqueued_at": { "type": "string", "format": "date-time" },
                "updated_at": { "type": "string", "format": "date-time" },
                "last_error": nullable("string"),
                "pr_url": nullable("string"),
                "cancel_requested": { "type": "boolean" },
                "approved_by": nullable("string"),
                "text_changed": { "type": "boolean" },
                "edited_by": nullable("string"),
                "cost_usd": nullable("number"),
                "tokens": token_count,
                "blocked": { "type": "boolean" },
                "blocked_by": strings.clone(),
                "blocked_reason": nullable("string"),
                "locks": strings.clone(),
                "waiting_for_lock": nullable("string"),
                "status": { "type": "string", "enum": ["ready", "scheduled", "held", "running",
                            "completed", "failed", "cancelled", "parked"] },
                "next_attempt_at": { "type": ["string", "null"], "format": "date-time" },
                "run_cause": { "type": "string", "enum": ["ready", "retry", "follow_up"] },
                "attempt_history": { "type": "array", "items": r("AttemptEntry") },
                "follow_up_cause": { "type": ["string", "null"], "enum": ["checks", "conflicts", "comments", "changes-requested", null] },
                "rounds": { "type": "array", "items": r("RoundEntry") },
                "follow_ups_exhausted": nullable("string")
            }
        },
        "AttemptEntry": {
            "type": "object",
            "required": ["number", "worker_id", "started_at", "ended_at", "outcome", "error",
                         "cost_usd", "tokens"],
            "properties": {
                "number": { "type": "integer", "minimum": 1 },
                "worker_id": { "type": "string" },
                "started_at": { "type": "string", "format": "date-time" },
                "ended_at": { "type": ["string", "null"], "format": "date-time" },
                "outcome": { "type": ["string", "null"], "enum": ["completed", "failed", "lost",
                             "released", "parked", "cancelled", "withdrawn", null] },
                "error": nullable("string"),
                "cost_usd": nullable("number"),
                "tokens": token_count
            }
        },
        "QueueResponse": {
            "type": "object",
            "required": ["pending", "in_progress", "completed", "failed", "cancelled", "counts", "limit", "offset"],
            "properties": {
                "pending": { "type": "array", "items": r("QueueEntry") },
                "in_progress": { "type": "array", "items": r("QueueEntry") },
                "completed": { "type": "array", "items": r("QueueEntry") },
                "failed": { "type": "array", "items": r("QueueEntry") },
                "cancelled": { "type": "array", "items": r("QueueEntry") },
                "parked": { "type": "array", "items": r("QueueEntry") },
                "counts": { "type": "object", "additionalProperties": { "type": "integer" } },
                "limit": { "type": "integer" },
                "offset": { "type": "integer" }
            }
        },
        "WorkerEntry": {
            "type": "object",
            "required": ["id", "ip", "status", "current_task", "last_seen", "health"],
            "properties": {
                "id": { "type": "string" },
                "ip": nullable("string"),
                "status": { "type": "string", "enum": ["busy", "available", "draining", "offline"] },
                "current_task": nullable("integer"),
                "last_seen": nullable("string"),
                "health": { "type": "string", "enum": ["healthy", "degraded", "unreachable", "unknown"] },
                "current_task_id": nullable("string"),
                "health_reason": nullable("string"),
                "completed": { "type": "integer" },
                "failed": { "type": "integer" },
                "sandbox": { "type": ["string", "null"], "enum": ["srt", "bwrap", "none", null],
                             "description": "The sandbox the worker's agents run in, as it said; `none`: unsandboxed; null: never said" }
            }
        },
        "LogsResponse": {
            "type": "object",
            "required": ["worker_id", "host", "lines", "logs"],
            "properties": {
                "worker_id": { "type": "string" },
                "host": { "type": "string" },
                "lines": { "type": "integer", "minimum": 1 },
                "logs": { "type": "string" }
            }
        },
        "WorkersResponse": {
            "type": "object",
            "required": ["workers"],
            "properties": { "workers": { "type": "array", "items": r("WorkerEntry") } }
        }
    });
    if let (Some(all), Value::Object(more)) = (schemas.as_object_mut(), more) {
        all.extend(more);
    }
    schemas
}

/// Links from a claim to the reports on it, so stateful tools (schemathesis) can
/// follow a task's life: each report names the task `/work/next` handed out.
fn claim_links() -> Value {
    let task = json!({
        "worker_id": "$request.query.worker_id",
        "issue_number": "$response.body#/issue_number",
        "repository": "$response.body#/repository",
        "lease_token": "$response.body#/lease_token"
    });
    let with = |extra: Value| {
        let mut body = task.clone();
        if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
            b.extend(e);
        }
        body
    };
    json!({
        "Heartbeat": { "operationId": "post_work_heartbeat", "requestBody": task.clone() },
        "Complete": { "operationId": "post_work_complete",
                      "requestBody": with(json!({ "success": true, "pr_url": "https://github.com/acme/widgets/pull/1" })) },
        "Fail": { "operationId": "post_work_failed", "requestBody": with(json!({ "error": "tests failed" })) },
        "Release": { "operationId": "post_work_release", "requestBody": with(json!({ "reason": "shutting down" })) },
        "Clarify": { "operationId": "post_work_clarify", "requestBody": with(json!({ "questions": ["Which page should change?"] })) }
    })
}

/// Names every operation `method_path` (`get_work_next`), for links and tools.
fn name_operations(doc: &mut Value) {
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            if let Some(ops) = item.as_object_mut() {
                for (method, op) in ops.iter_mut() {
                    let name = format!("{method}{}", path.replace(['/', '.'], "_"));
                    op["operationId"] = Value::String(name);
                }
            }
        }
    }
}

/// The scheduling additions (#12): review gating's endpoints and fields.
fn add_scheduling(doc: &mut Value) {
    let schemas = &mut doc["components"]["schemas"];
    schemas["NextResponse"]["properties"]["blocked"] = json!({ "type": "boolean",
        "description": "No work because review gating holds it back (absent otherwise)" });
    schemas["NextResponse"]["properties"]["reason"] = json!({ "type": "string" });
    schemas["Health"]["properties"]["pr_review"] = json!({ "type": "object",
        "description": "Review gating: `blocked`, `reason`, `pending` and the settings" });
    schemas["Health"]["properties"]["budget"] = json!({ "type": "object",
        "description": "Cost budgets: the settings, this month's spend, the repositories paused and why" });
    schemas["NextResponse"]["properties"]["budget_left_usd"] = json!({ "type": "number" });
    schemas["NextResponse"]["properties"]["github_token"] = json!({ "type": "string",
        "description": "With a GitHub App: a short-lived installation token that reaches this task's repository alone (contents and pull requests, write), to push and open the pull request with; absent otherwise" });
    schemas["NextResponse"]["properties"]["github_token_expires_at"] = json!({ "type": "string", "format": "date-time",
        "description": "When github_token expires" });
    schemas["NextResponse"]["properties"]["github_token_expires_at_ms"] = json!({ "type": "integer",
        "description": "When github_token expires, in milliseconds since the Unix epoch" });
    schemas["NextResponse"]["properties"]["follow_up"] = json!({ "type": "object",
        "description": "A follow-up run (a failed check, a conflict with the base branch, a request for changes, a collaborator's /agent comment on the issue's pull request): push to the same branch",
        "required": ["pr_url", "answers", "author", "feedback", "requested_at", "cause", "round", "history"],
        "properties": {
            "pr_url": { "type": "string" }, "answers": { "type": "string" },
            "author": { "type": "string" }, "feedback": { "type": "string" },
            "requested_at": { "type": "integer", "description": "milliseconds since the Unix epoch" },
            "cause": { "type": "string", "enum": ["changes_requested", "checks", "conflicts", "comments"] },
            "round": { "type": "integer", "minimum": 1 },
            "history": { "type": "array", "items": { "type": "object",
                "required": ["run", "cause", "outcome", "answers", "at"],
                "properties": { "run": { "type": "integer" },
                    "cause": { "type": ["string", "null"], "enum": ["changes_requested", "checks", "conflicts", "comments", null] },
                    "outcome": { "type": "string" }, "answers": { "type": "string" },
                    "at": { "type": "integer", "description": "when the round was queued, milliseconds since the Unix epoch" } } } }
        }
    });
    schemas["RoundEntry"] = json!({ "type": "object",
        "description": "One round of a pull request: the run that opened it (cause opened), or a follow-up",
        "required": ["run", "cause", "outcome"],
        "properties": { "run": { "type": "integer" },
            "cause": { "type": "string", "enum": ["opened", "checks", "conflicts", "comments", "changes-requested"] },
            "outcome": { "type": "string" } }
    });
    let nullable_int = json!({ "type": ["integer", "null"] });
    schemas["TrackedPull"] = json!({
        "type": "object",
        "required": ["repo", "number", "url", "task", "state"],
        "properties": {
            "repo": { "type": "string" }, "number": { "type": "integer" },
            "url": { "type": "string" }, "task": { "type": "string" },
            "state": { "type": "string", "enum": ["open", "approved", "changes_requested", "merged", "closed"] },
            "follow_up": { "type": "string", "enum": ["running", "done", "exhausted"],
                "description": "Its task runs again to answer a follow-up, did, or used up FOLLOW_UP_ROUNDS (absent otherwise)" }
        }
    });
    schemas["ReviewStatusResponse"] = json!({
        "type": "object",
        "required": ["blocked", "reason", "held_repositories", "max_pending_prs", "max_pending_prs_total",
                     "block_on_changes_requested", "pending", "pull_requests"],
        "properties": {
            "blocked": { "type": "boolean" }, "reason": nullable("string"),
            "held_repositories": { "type": "array", "items": { "type": "string" } },
            "max_pending_prs": { "type": "integer" }, "max_pending_prs_total": nullable_int,
            "block_on_changes_requested": { "type": "boolean" }, "pending": { "type": "integer" },
            "pull_requests": { "type": "array", "items": r("TrackedPull") }
        }
    });
    schemas["PullReviewResponse"] = json!({
        "type": "object",
        "required": ["status", "pull", "blocked", "reason"],
        "properties": {
            "status": { "type": "string" }, "pull": r("TrackedPull"),
            "blocked": { "type": "boolean" }, "reason": nullable("string")
        }
    });
    let mark_params = json!([
        { "name": "state", "in": "path", "required": true,
          "schema": { "type": "string", "enum": ["approved", "changes-requested", "merged"] } },
        { "name": "number", "in": "path", "required": true,
          "schema": { "type": "integer", "minimum": 1, "maximum": MAX_SAFE_INTEGER } },
        { "name": "repository", "in": "query", "required": false,
          "description": "`owner/name`, when several tracked repositories have that number",
          "schema": { "type": "string" } },
        { "name": "feedback", "in": "query", "required": false,
          "description": "With `changes-requested` and REWORK_ON_CHANGES_REQUESTED: what the agent is asked to change",
          "schema": { "type": "string" } }
    ]);
    schemas["Scaling"] = json!({
        "type": "object",
        "required": ["ready", "in_progress", "blocked", "idle_workers", "busy_workers", "desired_workers"],
        "properties": {
            "ready": { "type": "integer" }, "in_progress": { "type": "integer" },
            "blocked": { "type": "integer" }, "idle_workers": { "type": "integer" },
            "busy_workers": { "type": "integer" },
            "desired_workers": { "type": "integer", "description": "min(MAX_WORKERS, MIN_IDLE_WORKERS + ready + in_progress)" }
        }
    });
    let paths = &mut doc["paths"];
    paths["/scaling"] = json!({ "get": op("The scaling signal for autoscalers (KEDA metrics-api): ready, in progress, blocked, idle and busy workers, desired workers", None, json!([]), r("Scaling"), &[503], false) });
    paths["/pr-review/status"] = json!({ "get": op("Review gating: settings, what it holds and why, the tracked pull requests", None, json!([]), r("ReviewStatusResponse"), &[], false) });
    paths["/pr-review/{state}/{number}"] = json!({ "post": op("Record a pull request's review state (until GitHub says it was merged or closed)", None, mark_params, r("PullReviewResponse"), &[400, 404, 422], false) });
}

/// The document served at `/openapi.json`, for a server whose long polls last at
/// most `max_wait` (`EngineConfig::max_wait`: the maximum of `/work/next`'s `wait`).
pub fn document(max_wait: Duration) -> Value {
    let mut doc = unnamed_document(max_wait.as_secs());
    add_scheduling(&mut doc);
    name_operations(&mut doc);
    doc["paths"]["/work/next"]["get"]["responses"]["200"]["links"] = claim_links();
    doc
}

fn unnamed_document(max_wait: u64) -> Value {
    let none = json!([]);
    let effects_params = json!([
        { "name": "state", "in": "query", "required": false,
          "description": "`failing` (default: backing off or set aside) or `dead` (set aside only).",
          "schema": { "type": "string", "enum": ["failing", "dead"] } }
    ]);
    let next_params = json!([
        { "name": "worker_id", "in": "query", "required": true,
          "schema": { "type": "string", "pattern": WORKER_ID, "minLength": 1, "maxLength": 128 } },
        { "name": "wait", "in": "query", "required": false,
          "description": format!("Seconds to wait for a task (long poll), at most {max_wait}: this server's longest poll (more is refused)"),
          "schema": { "type": "integer", "minimum": 0, "maximum": max_wait } },
        { "name": "lease", "in": "query", "required": false,
          "description": "`heartbeat` if the worker sends heartbeats; `run_time` (default) holds the task for the maximum run time.",
          "schema": { "type": "string", "enum": ["heartbeat", "run_time"] } },
        { "name": "sandbox", "in": "query", "required": false,
          "description": "The sandbox the worker runs its agents in, shown in `GET /workers`.",
          "schema": { "type": "string", "enum": ["srt", "bwrap", "none"] } }
    ]);
    let queue_params = json!([
        { "name": "limit", "in": "query", "required": false,
          "schema": { "type": "integer", "minimum": 1, "maximum": crate::wire::MAX_PAGE } },
        { "name": "offset", "in": "query", "required": false,
          "schema": { "type": "integer", "minimum": 0, "maximum": u64::MAX } }
    ]);
    let logs_params = json!([
        { "name": "id", "in": "path", "required": true,
          "description": "A worker id, or a WORKER_IPS host",
          "schema": { "type": "string", "minLength": 1 } },
        { "name": "lines", "in": "query", "required": false,
          "schema": { "type": "integer", "minimum": 1, "maximum": crate::wire::MAX_LOG_LINES } }
    ]);
    let report = [404, 409, 503];
    let text = json!({ "type": "string" });
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "scrum orchestrator",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!("Hands GitHub issues to AI coding workers under leases. The endpoints of the Python orchestrator this service replaces keep its JSON; new fields are additions. Errors are `{{\"error\":{{\"code\",\"message\"}}}}`. {ACCESS}")
        },
        "security": [{ "bearerAuth": [] }],
        "components": {
            "securitySchemes": { "bearerAuth": { "type": "http", "scheme": "bearer" } },
            "schemas": schemas()
        },
        "paths": {
            "/health": { "get": {
                "summary": "Orchestrator health: open to all (never needs a token), so it carries counts and fixed phrases, no issue text",
                "security": [],
                "responses": {
                    "200": { "description": "Healthy", "content": { "application/json": { "schema": r("Health") } } },
                    "503": { "description": "The store does not answer", "content": { "application/json": { "schema": r("Health") } } }
                }
            } },
            "/work/next": { "get": op("The next task for a worker, optionally waiting for one", None, next_params, r("NextResponse"), &[400, 422, 503], false) },
            "/work/complete": { "post": op("Report a task done (`success: false` counts as a failed attempt)", Some("CompleteRequest"), none.clone(), r("ReportResponse"), &report, false) },
            "/work/failed": { "post": op("Report a failed attempt", Some("FailedRequest"), none.clone(), r("ReportResponse"), &report, false) },
            "/work/heartbeat": { "post": op("Renew a lease; the answer says whether to stop", Some("HeartbeatRequest"), none.clone(), r("HeartbeatResponse"), &report, false) },
            "/work/clarify": { "post": op("Park a task whose issue needs a person's answers: its questions are posted once, needs-clarification replaces the ready label, no attempt is spent", Some("ClarifyRequest"), none.clone(), r("ReportResponse"), &report, false) },
            "/work/release": { "post": op("Hand a task back without spending an attempt", Some("ReleaseRequest"), none.clone(), r("ReportResponse"), &report, false) },
            "/workers": { "get": op("Every worker that called and every configured host", None, none.clone(), r("WorkersResponse"), &[], false) },
            "/workers/{id}/logs": { "get": op("The worker service's recent log, fetched over SSH from its host", None, logs_params, r("LogsResponse"), &[400, 404, 422, 503], false) },
            "/queue": { "get": op("Tasks by state, one page of each", None, queue_params, r("QueueResponse"), &[400, 422, 503], false) },
            "/admin/pause": { "post": op("Stop handing out work", None, none.clone(), r("ActionResponse"), &[], false) },
            "/admin/resume": { "post": op("Hand out work again", None, none.clone(), r("ActionResponse"), &[], false) },
            "/admin/drain": { "post": op("Stop (or resume) handing new work to one worker", Some("DrainRequest"), none.clone(), r("ActionResponse"), &[], false) },
            "/admin/retry": { "post": op("Start a new run of a failed or cancelled task", Some("TaskAction"), none.clone(), r("ActionResponse"), &report, false) },
            "/admin/cancel": { "post": op("Cancel a task (a holder is told on its next heartbeat)", Some("TaskAction"), none.clone(), r("ActionResponse"), &report, false) },
            "/admin/effects": { "get": op("GitHub effects that failed: backing off, or set aside (`state=dead`)", None, effects_params, r("EffectsResponse"), &[400, 422, 503], false) },
            "/admin/effects/retry": { "post": op("Try set-aside effects again: all, one repository's, or one by id", Some("EffectsRetryRequest"), none.clone(), r("EffectsRetryResponse"), &[503], false) },
            "/metrics": { "get": {
                "summary": "Counters, histograms and gauges in the Prometheus text format (OpenMetrics when `Accept` asks for `application/openmetrics-text`)",
                "responses": {
                    "200": { "description": "Prometheus text format 0.0.4, or OpenMetrics 1.0.0", "content": { "text/plain": { "schema": text }, "application/openmetrics-text": { "schema": text } } },
                    "401": error_response("Missing or wrong bearer token"),
                    "403": error_response(FORBIDDEN)
                }
            } },
            "/webhooks/github": { "post": {
                "summary": "GitHub webhook deliveries (`issues` events): the issue is looked at now. Checked by its signature, not a token; 404 when no webhook secret is configured",
                "security": [],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object" } } } },
                "responses": {
                    "200": { "description": "An event that changes no task", "content": { "application/json": { "schema": r("WebhookResponse") } } },
                    "202": { "description": "The issue is looked at now", "content": { "application/json": { "schema": r("WebhookResponse") } } },
                    "401": error_response("The signature is missing or wrong"),
                    "404": error_response("No webhook secret is configured"),
                    "422": error_response("The body is not a GitHub event")
                }
            } },
            "/webhooks/gitlab": { "post": {
                "summary": "GitLab webhook deliveries (Issue, Merge Request, Note and Pipeline Hooks): the issue is looked at now. Checked by `X-Gitlab-Token` (the secret GITLAB_WEBHOOK_SECRET names), not the API token; 404 when no GitLab webhook secret is configured",
                "security": [],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object" } } } },
                "responses": {
                    "200": { "description": "An event that changes no task", "content": { "application/json": { "schema": r("WebhookResponse") } } },
                    "202": { "description": "The issue is looked at now", "content": { "application/json": { "schema": r("WebhookResponse") } } },
                    "401": error_response("The token is missing or wrong"),
                    "404": error_response("No GitLab webhook secret is configured"),
                    "422": error_response("The body is not a GitLab event")
                }
            } },
            "/openapi.json": { "get": {
                "summary": "This document",
                "responses": {
                    "200": { "description": "OpenAPI 3.0", "content": { "application/json": { "schema": { "type": "object" } } } },
                    "401": error_response("Missing or wrong bearer token"),
                    "403": error_response(FORBIDDEN)
                }
            } }
        }
    })
}
