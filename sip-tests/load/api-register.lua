-- wrk script for sip-tests/load/api-bench.sh: POST request_callback with a new US number
-- on every request (+1 2TT NNNNNNN: TT = wrk thread, N = per-thread counter), so every
-- request is a real registration (no DuplicateRequest), with user_data and channel.
local threads = 0

function setup(thread)
    threads = threads + 1
    thread:set("tid", threads)
end

function init(args)
    n = 0
    token = os.getenv("API_TOKEN") or "demo-token"
    -- TID_OFFSET: several wrk processes at once (cluster-bench.sh) register distinct numbers
    tid = tid + tonumber(os.getenv("TID_OFFSET") or "0")
end

function request()
    n = n + 1
    local number = string.format("+12%02d%07d", tid, n)
    local body = '{"contact_number":"' .. number .. '","user_data":{"bench":true,"n":' .. n .. '},"channel":"wrk"}'
    return wrk.format("POST", nil, {
        ["Content-Type"] = "application/json",
        ["Authorization"] = "Bearer " .. token,
    }, body)
end
