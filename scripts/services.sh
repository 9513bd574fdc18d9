#!/usr/bin/env bash
# Installs and starts what the tests talk to: PostgreSQL (127.0.0.1:5432, database
# `test`), Redis (127.0.0.1:6379) and the OpenSSH server binary the SSH tests run;
# installs the tools the access test uses (ip, curl), the browser the dashboard
# test drives (chromium, chromedriver), promtool (Debian's prometheus package;
# its service is not started here), and the agent sandboxes bins/tests/sandbox.rs
# runs workers in: bubblewrap, ripgrep and socat (Debian) and Anthropic's
# sandbox-runtime (`srt`, npm), and the Claude Code CLI (`claude`, npm) the
# sandbox test runs in them. Does nothing for what is already there.
set -euo pipefail

need_apt=()
command -v pg_ctlcluster >/dev/null || need_apt+=(postgresql)
command -v redis-server >/dev/null || need_apt+=(redis-server)
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v systemd-analyze >/dev/null || need_apt+=(systemd)  # deploy/verify.sh checks the units with it
command -v ip >/dev/null || need_apt+=(iproute2)     # bins/tests/access.rs: a network namespace and a veth pair
command -v curl >/dev/null || need_apt+=(curl)       # bins/tests/access.rs: calls from inside that namespace
command -v chromium >/dev/null || need_apt+=(chromium)              # bins/tests/dashboard.rs: the browser
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)   # bins/tests/dashboard.rs: its WebDriver
command -v promtool >/dev/null || need_apt+=(prometheus)            # bins/tests/metrics.rs and .ci/run: promtool (check metrics, test rules)
command -v bwrap >/dev/null || need_apt+=(bubblewrap)                # bins/tests/sandbox.rs: SANDBOX=bwrap, and under srt
command -v rg >/dev/null || need_apt+=(ripgrep)                      # sandbox-runtime scans the clone with it
command -v socat >/dev/null || need_apt+=(socat)                     # the proxy bridge into a sandbox's empty network
command -v npm >/dev/null || need_apt+=(npm)                         # to install sandbox-runtime
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
mkdir -p /run/sshd
if ! command -v srt >/dev/null; then
    echo "installing @anthropic-ai/sandbox-runtime (srt)"
    npm install -g --silent @anthropic-ai/sandbox-runtime >/dev/null
fi
# bins/tests/sandbox.rs runs the real Claude Code CLI in each sandbox (against a
# scripted API on loopback).
if ! command -v claude >/dev/null; then
    echo "installing @anthropic-ai/claude-code (claude)"
    npm install -g --silent @anthropic-ai/claude-code@2.1.197 >/dev/null
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if ! psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_database where datname='test'" 2>/dev/null | grep -q 1; then
    psql -h 127.0.0.1 -U postgres -c "create database test" >/dev/null 2>&1 || true
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
    for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
fi
echo "services: PostgreSQL $(pg_isready -h 127.0.0.1 -p 5432 | sed 's/.* - //'), Redis $(redis-cli -h 127.0.0.1 -p 6379 ping), sshd $(/usr/sbin/sshd -V 2>&1 | head -n1 || true)"
