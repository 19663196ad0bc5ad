-- wrk script: POST /telemetry/gps, each request a new fix (a timestamp of its
-- own per thread and request, so none is a retry). KEY comes from the env.
local counter = 0
local thread_id = 0
local key = os.getenv("KEY")

function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end

function init(args)
  -- Milliseconds, minus a day so the skew check never refuses, spaced per thread.
  base = (os.time() - 86400) * 1000 + thread_id * 100000000
  device = "bench-" .. thread_id
end

function request()
  counter = counter + 1
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
