//! What each kind of target is sent: a Slack Block Kit message, a Discord embed,
//! or this project's JSON for any webhook.

use scrum_core::engine::Notification;
use scrum_core::state::NotifyEvent;
use serde_json::{Value, json};

/// A one-line headline: what happened to which task.
fn headline(n: &Notification) -> String {
    let what = match n.event {
        NotifyEvent::Completed => "completed",
        NotifyEvent::Failed => "failed for good",
        NotifyEvent::WorkerLost => "lost its worker",
        NotifyEvent::NeedsClarification => "needs clarification",
        NotifyEvent::FollowUpsExhausted => "used up its follow-up rounds",
    };
    format!("{} {what}: {}", n.task, n.title)
}

fn attempts(n: &Notification) -> String {
    format!("attempt {} of {}", n.attempts.max(1), n.max_attempts)
}

fn detail_label(n: &Notification) -> &'static str {
    match n.event {
        NotifyEvent::Completed => "Pull request",
        NotifyEvent::NeedsClarification => "Questions",
        NotifyEvent::FollowUpsExhausted => "Still wrong",
        _ => "Reason",
    }
}

/// Slack's incoming webhook: Block Kit, with `text` as the fallback.
pub(super) fn slack(n: &Notification) -> Value {
    let icon = match n.event {
        NotifyEvent::Completed => ":white_check_mark:",
        NotifyEvent::Failed => ":x:",
        NotifyEvent::WorkerLost => ":warning:",
        NotifyEvent::NeedsClarification => ":question:",
        NotifyEvent::FollowUpsExhausted => ":construction:",
    };
    let mut blocks = vec![json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": format!("{icon} *{}*", escape_slack(&headline(n)))},
    })];
    if let Some(d) = &n.detail {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": format!("*{}:* {}", detail_label(n), escape_slack(d))},
        }));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": format!("{} · scrum-orchestrator", attempts(n))}],
    }));
    json!({"text": headline(n), "blocks": blocks})
}

/// Slack's mrkdwn treats `&`, `<` and `>` as markup.
fn escape_slack(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Discord's webhook: one embed, coloured by outcome.
pub(super) fn discord(n: &Notification) -> Value {
    let color = match n.event {
        NotifyEvent::Completed => 0x2e_cc71,
        NotifyEvent::Failed => 0xe7_4c3c,
        NotifyEvent::WorkerLost => 0xf1_c40f,
        NotifyEvent::NeedsClarification => 0x34_98db,
        NotifyEvent::FollowUpsExhausted => 0xe6_7e22,
    };
    let mut fields = vec![json!({"name": "Attempts", "value": attempts(n), "inline": true})];
    if let Some(d) = &n.detail {
        fields.push(json!({"name": detail_label(n), "value": truncate(d, 1000), "inline": false}));
    }
    json!({
        "username": "scrum-orchestrator",
        "embeds": [{
            "title": truncate(&headline(n), 250),
            "color": color,
            "fields": fields,
            "footer": {"text": "scrum-orchestrator"},
        }],
    })
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max.saturating_sub(1)).chain(['…']).collect()
    }
}

/// Any webhook: the notification as JSON (the body the signature covers); a
/// `test` message says `event: test` (and has delivery id 0).
pub(super) fn webhook(n: &Notification, test: bool) -> Value {
    json!({
        "delivery_id": n.id,
        "event": if test { "test" } else { n.event.as_str() },
        "task_id": n.task.to_string(),
        "repository": n.task.repo(),
        "issue_number": n.task.number(),
        "title": n.title,
        "detail": n.detail,
        "attempts": n.attempts,
        "max_attempts": n.max_attempts,
    })
}
