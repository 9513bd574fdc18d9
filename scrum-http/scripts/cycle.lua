-- wrk script: each connection plays one worker that loops GET /work/next -> POST /work/complete.
-- Run with as many threads as connections (the state below is per thread):
--   wrk -t50 -c50 -d15s -s scrum-http/scripts/cycle.lua http://127.0.0.1:8000
-- It prints completed cycles, cycles per second, empty polls, and request latency p50/p99.
local counter = 0
local threads = {}
function setup(thread) counter = counter + 1; thread:set("wid", "w" .. counter); table.insert(threads, thread) end
function init(args) pending = nil; cycles = 0; empty = 0 end
function request()
  if pending then
    local body = '{"worker_id":"' .. wid .. '","issue_number":' .. pending .. ',"pr_url":"https://github.com/acme/widgets/pull/1","success":true}'
    pending = nil
    return wrk.format("POST", "/work/complete", {["Content-Type"]="application/json"}, body)
  end
  return wrk.format("GET", "/work/next?worker_id=" .. wid)
end
function response(status, headers, body)
  local n = body and string.match(body, '"issue_number"%s*:%s*(%d+)')
  if n and string.find(body, '"work_available"%s*:%s*true') then pending = n; cycles = cycles + 1
  elseif body and string.find(body, '"status"') == nil then empty = empty + 1 end
end
function done(summary, latency, requests)
  local c, e = 0, 0
  for _, t in ipairs(threads) do c = c + t:get("cycles"); e = e + t:get("empty") end
  io.write(string.format("cycles: %d  cycles/s: %.1f  empty: %d  p50: %.2fms  p99: %.2fms\n", c, c / (summary.duration / 1e6), e, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
