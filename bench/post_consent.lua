-- wrk script: POST the SPEC's consent body as text/plain, a unique event_id per request.
--
-- Usage: wrk -s post_consent.lua URL -- PREFIX
-- PREFIX (8 hex digits) makes event_ids unique across runs on one database: each is a
-- UUID "<prefix>-<thread>-4000-8000-<n>", as the service requires.
-- done() prints one line "wrk-summary {json}" that post_throughput.py reads.

local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_number", thread_count)
  table.insert(threads, thread)
end

local path
local headers = {
  ["Content-Type"] = "text/plain;charset=UTF-8",
  ["Origin"] = "http://localhost:8000",
}
local body_tail = '","action":"accept_all",'
  .. '"choices":{"functional":true,"analytics":true,"advertising":true},'
  .. '"revision":1,"language":"en","page_url":"https://shop.example/products/42",'
  .. '"gpc":false,"dnt":false}'
local id_prefix
-- Requests built by this thread: an upper bound on what the server received.
issued = 0

function init(args)
  id_prefix = string.format("%s-%04x-4000-8000-", args[1] or "0badbe0c", thread_number)
  path = wrk.path
end

function request()
  issued = issued + 1
  local body = '{"event_id":"' .. id_prefix .. string.format("%012x", issued) .. body_tail
  return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
  local built = 0
  for _, thread in ipairs(threads) do
    built = built + thread:get("issued")
  end
  local errors = summary.errors
  io.write(string.format(
    'wrk-summary {"duration_us":%d,"requests":%d,"bytes":%d,"issued":%d,'
      .. '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,'
      .. '"p50_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.duration, summary.requests, summary.bytes, built,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max
  ))
end
