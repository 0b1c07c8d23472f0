#!/usr/bin/env bash
# The Scheduler API against its own OpenAPI document: schemathesis (PyPI) generates
# requests for every route (valid and invalid bodies, odd query strings, wrong methods,
# missing auth) and fails on any 5xx, an undocumented status, a wrong content type, or a
# body or header that does not match the schema. Then /metrics must show no 5xx at all.
#
# Checks: all of schemathesis's but positive_data_acceptance (schema-valid numbers and
# times are still refused by the call target's business rules: InvalidContact,
# DuplicateRequest, ...; those 400s are documented and intended).
# Bounded: ST_EXAMPLES (default 150) cases per operation, a fixed seed (ST_SEED, default
# 4242) so a failure reproduces, and a 240 s hard stop.
# Ports: SIP 15200, HTTP 18200. Installs schemathesis with pip when `st` is missing.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
require_tools
holdless_bin

if ! command -v st >/dev/null 2>&1; then
    echo "schemathesis not found: installing it (python3 -m pip install --quiet schemathesis)"
    python3 -m pip install --quiet schemathesis >"$WORK/pip.log" 2>&1 || {
        fail_line pip "could not install schemathesis"
        tail -n 20 "$WORK/pip.log"
        suite_finish
        exit 1
    }
fi
ST=$(command -v st)

SIP_PORT=15200 HTTP_PORT=18200
CFG=$WORK/api.toml
write_config "$CFG"
cat "$SIPT_DIR/api/config-tail.toml" >>"$CFG"

if hl_start api "$CFG" "$SIP_PORT" "$HTTP_PORT"; then
    base=http://127.0.0.1:$HTTP_PORT
    check openapi-served "GET /openapi.json is an OpenAPI 3 document" \
        bash -c "curl -fsS $base/openapi.json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"openapi\"].startswith(\"3.\"); print(len(d[\"paths\"]), \"paths\")'"
    # Runs in $WORK: hypothesis and schemathesis keep their caches in the current directory.
    if (cd "$WORK" && timeout -k 10 240 "$ST" --config-file "$SIPT_DIR/api/schemathesis.toml" \
        run "$base/openapi.json" \
        -H "Authorization: Bearer demo-token" \
        --checks all --exclude-checks positive_data_acceptance \
        -n "${ST_EXAMPLES:-150}" --seed "${ST_SEED:-4242}" \
        --request-timeout 10 --no-color \
        >"$WORK/schemathesis.out" 2>&1); then
        pass schemathesis "$(grep -E 'generated' "$WORK/schemathesis.out" | tail -n 1 | sed 's/^ *//')"
    else
        fail_line schemathesis "schemathesis found failures (or timed out): $WORK/schemathesis.out"
        grep -E '^_{3,}|^- ST|curl|Failures|generated' "$WORK/schemathesis.out" | head -n 40 | sed 's/^/    > /'
        dump_logs schemathesis
    fi
    check api-no-5xx "no API request answered 5xx during the run" \
        bash -c "! curl -fsS $base/metrics | grep -E 'holdless_api_requests_total\{.*status=\"5'"
    check cross-org "the other organization's token gets 403 on demo's routes" \
        bash -c "test \"\$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer other-token' $base/api/widget/billing-widget)\" = 403"
    hl_alive api-alive && pass api-alive "holdless still running after the run"
    hl_stop
fi
suite_finish
