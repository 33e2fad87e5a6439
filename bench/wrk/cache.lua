-- wrk script of the server benchmark (bench/throughput.mjs): POSTs seed-protocol requests.
--   wrk -t2 -c64 -d10s --latency -s bench/wrk/cache.lua URL -- MODE KEYSPACE CURSOR
-- MODE: sync  { lastSync, changes: 1–5 changes }, lastSync = the newest cursor this wrk thread
--             has been answered (`cursor`, else the top-level `timestamp`), like a client that
--             syncs continuously; before its first answer, CURSOR (the runner's fresh one; 0 if
--             not given, which would make the first 64 answers full dumps)
--       set   { key, value, ttl, timestamp }
--       poll  /sync with { lastSync, changes: [] } (lastSync as for sync)
--       light /sync as for sync, but only one request in 8 carries a change (one): at 32
--             connections an answer then carries the few changes made since the thread's last
--             answer (under 10), as clients that sync often and write now and then
-- Keys are drawn at random from KEYSPACE keys (default 10000); values are small JSON objects
-- (~90 bytes); timestamps are the wall clock in ms. done() prints one `WRKJSON {…}` line (and
-- `WRKBAD …` with the first non-2xx answer, if any) for the runner to parse.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_usec; } wrk_timeval_t;
int gettimeofday(wrk_timeval_t *tv, void *tz);
]]
local tv = ffi.new("wrk_timeval_t")
local function now_ms()
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) * 1000 + math.floor(tonumber(tv.tv_usec) / 1000)
end

-- main state: hand each thread an id, keep the threads for done()
local threads = {}
local next_id = 0
function setup(thread)
  next_id = next_id + 1
  thread:set("id", next_id)
  table.insert(threads, thread)
end

-- thread state
local mode, keyspace, path, last_sync, n
local headers = { ["Content-Type"] = "application/json" }
ok, bad, unparsed, sampled, sampled_updates, first_bad = 0, 0, 0, 0, 0, ""
-- light mode counts every answer's updates: their sum, the largest, the answers with more than 10
counted, counted_updates, max_updates, over10 = 0, 0, 0, 0

function init(args)
  mode = args[1] or "sync"
  keyspace = tonumber(args[2] or "10000")
  path = (mode == "set") and "/api/cache/set" or "/api/cache/sync"
  last_sync = tonumber(args[3] or "0")
  n = 0
  math.randomseed(id * 7919 + os.time())
end

local function value(i, gen)
  return string.format('{"id":%d,"gen":%d,"name":"user-%d","roles":["reader","editor"],"active":%s}',
    i, gen, i, (i % 2 == 0) and "true" or "false")
end

local function change(ts)
  local i = math.random(0, keyspace - 1)
  return string.format('{"key":"user:%d","value":%s,"ttl":3600,"timestamp":%.0f,"deleted":false}', i, value(i, n), ts)
end

function request()
  n = n + 1
  local ts = now_ms()
  local body
  if mode == "sync" then
    local k = math.random(1, 5)
    local parts = {}
    for j = 1, k do parts[j] = change(ts) end
    body = string.format('{"lastSync":%.0f,"changes":[%s]}', last_sync, table.concat(parts, ","))
  elseif mode == "light" then
    local changes = (math.random(1, 8) == 1) and change(ts) or ""
    body = string.format('{"lastSync":%.0f,"changes":[%s]}', last_sync, changes)
  elseif mode == "poll" then
    body = string.format('{"lastSync":%.0f,"changes":[]}', last_sync)
  else
    local i = math.random(0, keyspace - 1)
    body = string.format('{"key":"user:%d","value":%s,"ttl":3600,"timestamp":%.0f}', i, value(i, n), ts)
  end
  return wrk.format("POST", path, headers, body)
end

function response(status, hdrs, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    bad = bad + 1
    if first_bad == "" then first_bad = status .. " " .. string.sub(body or "", 1, 300) end
    return
  end
  if mode == "set" then return end
  -- the cursor sits after the updates array, at the end of the answer
  local tail = string.sub(body, -200)
  local c = string.match(tail, '"cursor"%s*:%s*(%d+)') or string.match(tail, '%]%s*,%s*"timestamp"%s*:%s*(%d+)')
  if c then
    c = tonumber(c)
    if c > last_sync then last_sync = c end
  else
    unparsed = unparsed + 1
  end
  if mode == "light" then
    local _, count = string.gsub(body, '"key"%s*:', "")
    counted = counted + 1
    counted_updates = counted_updates + count
    if count > max_updates then max_updates = count end
    if count > 10 then over10 = over10 + 1 end
  end
  -- every 64th answer: count its updates (how much each delta carries)
  if (ok % 64) == 0 then
    local _, count = string.gsub(body, '"key"%s*:', "")
    sampled = sampled + 1
    sampled_updates = sampled_updates + count
  end
end

function done(summary, latency, requests)
  local t = { ok = 0, bad = 0, unparsed = 0, sampled = 0, sampled_updates = 0, counted = 0, counted_updates = 0, over10 = 0 }
  local most = 0
  local bad_text = ""
  for _, thread in ipairs(threads) do
    for k in pairs(t) do t[k] = t[k] + (thread:get(k) or 0) end
    most = math.max(most, thread:get("max_updates") or 0)
    local fb = thread:get("first_bad")
    if bad_text == "" and fb and fb ~= "" then bad_text = fb end
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f,' ..
    '"ok":%d,"bad":%d,"unparsed":%d,"sampled":%d,"sampled_updates":%d,"counted":%d,"counted_updates":%d,"max_updates":%d,"over10":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean,
    t.ok, t.bad, t.unparsed, t.sampled, t.sampled_updates, t.counted, t.counted_updates, most, t.over10))
  if bad_text ~= "" then io.write("WRKBAD " .. string.gsub(bad_text, "[\r\n]", " ") .. "\n") end
end
