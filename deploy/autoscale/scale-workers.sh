#!/bin/sh
# Starts scrum-worker instances (ai-scrum-worker@N, from ai-scrum-worker@.service)
# up to the orchestrator's `desired_workers` (GET /scaling). Run by
# ai-scrum-worker-scale.timer. It never stops one: idle workers leave on their
# own (EXIT_WHEN_IDLE in worker.env), busy ones finish.
set -eu
url="${ORCHESTRATOR_URL:-http://127.0.0.1:8000}/scaling"
auth=""
[ -n "${ORCHESTRATOR_API_TOKEN:-}" ] && auth="Authorization: Bearer $ORCHESTRATOR_API_TOKEN"
desired=$(curl -fsS ${auth:+-H "$auth"} "$url" | sed -n 's/.*"desired_workers":\([0-9]*\).*/\1/p')
[ -n "$desired" ] || { echo "no desired_workers in $url" >&2; exit 1; }
n=1
while [ "$n" -le "$desired" ]; do
    systemctl is-active --quiet "ai-scrum-worker@$n" || systemctl start "ai-scrum-worker@$n"
    n=$((n + 1))
done
