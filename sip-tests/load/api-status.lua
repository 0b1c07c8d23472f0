-- wrk script for sip-tests/load/api-bench.sh: POST callback_status for numbers registered
-- by api-register.lua (thread 1's first 1000), so each lookup finds a pending callback.
function init(args)
    n = 0
    token = os.getenv("API_TOKEN") or "demo-token"
end

function request()
    n = n % 1000 + 1
    local body = string.format('{"contact_number":"+1201%07d"}', n)
    return wrk.format("POST", nil, {
        ["Content-Type"] = "application/json",
        ["Authorization"] = "Bearer " .. token,
    }, body)
end
