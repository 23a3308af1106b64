-- http_post.lua — wrk script: tasker POSTs with keep-alive, each with a
-- new identifier (so every request creates a task; none is a known key).
--
--   wrk -t2 -c64 -d20s -s tests/bench/http_post.lua http://127.0.0.1:7780/bench
--
-- Non-2xx answers are counted by wrk as errors; the script also prints how
-- many 201s it saw, which must equal the requests.

local threads = {}
local next_id = 1

function setup(thread)
   thread:set("tid", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

function init(args)
   counter = 0
   created = 0
   prefix = tostring(tid) .. "-" .. tostring(os.time()) .. "-"
end

function request()
   counter = counter + 1
   local body = '{"identifier":"' .. prefix .. counter .. '","payload":{"n":' .. counter .. '}}'
   return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
   if status == 201 then
      created = created + 1
   end
end

function done(summary, latency, requests)
   local total = 0
   for _, thread in ipairs(threads) do
      total = total + thread:get("created")
   end
   io.write(string.format("201 Created: %d of %d requests\n", total, summary.requests))
end
