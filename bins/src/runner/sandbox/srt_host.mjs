// The worker's sandbox-runtime host (scrum-worker, SANDBOX=srt): one Node process
// per worker that starts sandbox-runtime's proxies once and wraps each agent call,
// so a call pays bubblewrap's start, not Node's and the proxies' as `srt -c` does.
//
// node srt_host.mjs INDEX CONFIG
//   INDEX  sandbox-runtime's library (dist/index.js beside its `srt` command)
//   CONFIG the worker's settings as JSON (the network part applies to every call)
//
// It answers one JSON line per request line on stdin, in order:
//   {"ready":true} once started, or {"error":"…"} and exits;
//   {"command":"…","config":{…},"cwd":"…"} → {"wrapped":"…"} (a shell command that
//   runs `command` sandboxed by `config` in `cwd`) or {"error":"…"}.
// It stops (and its proxies with it) when stdin closes: the worker is gone.
import { createInterface } from 'node:readline';

const say = (reply) => process.stdout.write(JSON.stringify(reply) + '\n');
const [, , index, config] = process.argv;
let manager;
try {
  ({ SandboxManager: manager } = await import(index));
  await manager.initialize(JSON.parse(config));
} catch (e) {
  say({ error: String(e?.message ?? e) });
  process.exit(1);
}
say({ ready: true });
for await (const line of createInterface({ input: process.stdin })) {
  try {
    const call = JSON.parse(line);
    // The scan for files to protect (.bashrc, .git/hooks, …) is of the cwd.
    process.chdir(call.cwd);
    say({ wrapped: await manager.wrapWithSandbox(call.command, undefined, call.config) });
  } catch (e) {
    say({ error: String(e?.message ?? e) });
  }
}
await manager.reset();
