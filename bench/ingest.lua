-- wrk script: signed Sentry issue.created deliveries with a unique Request-ID each.
--
-- wrk -s bench/ingest.lua <url> -- <bodies file> <path with integrationId> <run nonce>
--
-- The bodies file (bench/payloads.py write_wrk_file) holds one "<hex signature> <body>"
-- line per body; every thread cycles through all of them from its own offset. The
-- signature covers the body only, so a body can be re-sent under a fresh Request-ID,
-- exactly like Sentry re-delivering the same issue. done() prints one JSON line.

local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("tid", thread_count)
  table.insert(threads, thread)
end

local bodies, signatures = {}, {}
local total, counter, next_index = 0, 0, 0
local path, nonce
-- Globals, not locals: done() reads them from each thread with thread:get().
count_2xx, count_4xx, count_5xx, count_other = 0, 0, 0, 0

function init(args)
  local file = assert(io.open(args[1], "rb"))
  for line in file:lines() do
    local signature, body = line:match("^(%x+) (.*)$")
    total = total + 1
    signatures[total] = signature
    bodies[total] = body
  end
  file:close()
  path = args[2]
  nonce = args[3]
  -- Spread the threads over the file so that they do not send the same issue in step.
  next_index = math.floor((tid - 1) * total / 2) % total
end

function request()
  counter = counter + 1
  next_index = next_index % total + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["User-Agent"] = "sentry-bench/wrk",
    ["Request-ID"] = string.format("%s-%04x-4000-8000-%012x", nonce, tid, counter),
    ["Sentry-Hook-Resource"] = "issue",
    ["Sentry-Hook-Timestamp"] = tostring(os.time()),
    ["Sentry-Hook-Signature"] = signatures[next_index],
  }
  return wrk.format("POST", path, headers, bodies[next_index])
end

function response(status, headers, body)
  if status >= 500 then
    count_5xx = count_5xx + 1
  elseif status >= 400 then
    count_4xx = count_4xx + 1
  elseif status >= 200 and status < 300 then
    count_2xx = count_2xx + 1
  else
    count_other = count_other + 1
  end
end

function done(summary, latency, requests)
  local c2, c4, c5, co = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    c2 = c2 + thread:get("count_2xx")
    c4 = c4 + thread:get("count_4xx")
    c5 = c5 + thread:get("count_5xx")
    co = co + thread:get("count_other")
  end
  local errors = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
    '"status_2xx":%d,"status_4xx":%d,"status_5xx":%d,"status_other":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    errors.connect, errors.read, errors.write, errors.timeout,
    c2, c4, c5, co,
    latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency.max, latency.mean))
end
