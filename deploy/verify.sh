#!/usr/bin/env bash
# Checks the systemd units in deploy/ with `systemd-analyze verify` (needs the
# systemd package, not a running systemd). verify also insists that ExecStart='s
# binary exists, so it checks copies whose binaries are stand-in scripts. Any
# warning fails the check. Without systemd-analyze, says so and succeeds.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v systemd-analyze >/dev/null; then
    echo "deploy/verify.sh: systemd-analyze not found; unit files not checked"
    exit 0
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/bin" "$scratch/units"
for bin in scrum-orchestrator scrum-worker scale-workers.sh; do
    printf '#!/bin/sh\n' >"$scratch/bin/$bin"
    chmod +x "$scratch/bin/$bin"
done
for unit in *.service; do
    sed "s#/usr/local/bin/#$scratch/bin/#" "$unit" >"$scratch/units/$unit"
done
# The autoscaling example (autoscale/): its template is checked as instance 1.
for unit in autoscale/*.service autoscale/*.timer; do
    name=$(basename "$unit")
    sed "s#/usr/local/bin/#$scratch/bin/#" "$unit" >"$scratch/units/${name/@./@1.}"
done
if ! out=$(systemd-analyze verify --man=no "$scratch"/units/*.service "$scratch"/units/*.timer 2>&1) || [ -n "$out" ]; then
    printf '%s\n' "${out//$scratch\/units\//deploy/}"
    echo "deploy/verify.sh: the unit files have problems (above)"
    exit 1
fi
echo "deploy/verify.sh: $(ls *.service autoscale/*.service autoscale/*.timer | tr '\n' ' ')verified"
