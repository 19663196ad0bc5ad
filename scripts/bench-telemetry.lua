-- wrk script: POST /telemetry/gps from a fleet of 1000 devices, each request
-- a new fix (a timestamp of its own per thread and request, so none is a
-- retry). KEY comes from the environment.
local counter = 0
local threads = 0
local key = os.getenv("KEY")

function setup(thread)
  -- Sets the global `thread_index` of that thread's own Lua state.
  thread:set("thread_index", threads)
  threads = threads + 1
end

function init(args)
  -- Milliseconds, two days back so the skew check never refuses; each
  -- thread's fixes a few hours apart from the next thread's.
  base = (os.time() - 2 * 86400) * 1000 + thread_index * 10000000
end

function request()
  counter = counter + 1
  local device = string.format("bench-%d-%d", thread_index, counter % 500)
  local body = string.format(
    '{"device_id":"%s","timestamp":%d,"latitude":%.6f,"longitude":%.6f,"speed":8.5}',
    device, base + counter, 52.5 + (counter % 1000) / 100000, 13.4 + (counter % 777) / 100000)
  return wrk.format("POST", "/telemetry/gps",
    { ["content-type"] = "application/json", ["x-api-key"] = key }, body)
end

function response(status, headers, body)
  if status ~= 201 then
    io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n")
  end
end
