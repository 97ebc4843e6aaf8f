#!/usr/bin/env bash
# End-to-end check of `aqs up --demo` in a real browser:
#  1. start it on a fresh data folder and wait until the demo region is folded and its KPIs
#     are stable;
#  2. the dashboard's figures for a team and one of its agents equal the KPI store's
#     (read independently with DuckDB), checked in headless Chromium, with screenshots;
#  3. an event posted to the running ingest shows in the dashboard's numbers within the
#     documented delay (one analytics interval plus the projector's batch);
#  4. a restart resumes without loss or double counting.
# Needs: a built `aqs` (AQS_BIN), chromium, `npm ci --prefix dashboard/tests`, python3 with duckdb.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
AQS=${AQS_BIN:-$ROOT/target/debug/aqs}
ARTIFACTS=${AQS_ARTIFACTS_DIR:-$ROOT/target/ci-artifacts}/dashboard
TEAM=${AQS_E2E_TEAM:-T0003}
EVERY=3
mkdir -p "$ARTIFACTS"
DATA=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
INGEST_PORT=$(free_port)
DASH_PORT=$(free_port)
PID=
log() { printf 'e2e: %s\n' "$*" >&2; }
stop() {
    if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then
        kill -INT "$PID"
        for _ in $(seq 1 60); do kill -0 "$PID" 2>/dev/null || break; sleep 0.5; done
        kill -KILL "$PID" 2>/dev/null || true
    fi
    PID=
}
trap 'stop; rm -rf "$DATA"' EXIT

start() {
    "$AQS" up --demo --data-dir "$DATA" --listen "127.0.0.1:$INGEST_PORT" \
        --dashboard-listen "127.0.0.1:$DASH_PORT" --analytics-every "$EVERY" \
        --demo-events-per-second 0 >>"$ARTIFACTS/aqs-up.log" 2>&1 &
    PID=$!
    for _ in $(seq 1 240); do
        curl -sf "http://127.0.0.1:$DASH_PORT/api/meta" >/dev/null && return 0
        kill -0 "$PID" 2>/dev/null || { tail -20 "$ARTIFACTS/aqs-up.log"; log "aqs up exited"; exit 1; }
        sleep 0.5
    done
    log "the dashboard did not come up"; tail -20 "$ARTIFACTS/aqs-up.log"; exit 1
}

# The KPIs are stable once two runs of the job a few intervals apart agree.
stable_expectation() {
    local previous='' current
    for _ in $(seq 1 60); do
        sleep $((EVERY + 1))
        current=$(python3 "$HERE/kpi_row.py" "$DATA/kpi" "$TEAM" 2>/dev/null || true)
        if [[ -n $current && $current == "$previous" ]]; then
            printf '%s\n' "$current"
            return 0
        fi
        previous=$current
    done
    log "the KPIs never settled"; exit 1
}

began=$SECONDS
start
log "aqs up answered after $((SECONDS - began)) s"
stable_expectation >"$DATA/expected.json"
log "KPIs settled after $((SECONDS - began)) s"
cp "$DATA/expected.json" "$ARTIFACTS/expected-$TEAM.json"

node "$HERE/browser.mjs" --base-url "http://127.0.0.1:$DASH_PORT" --team "$TEAM" \
    --expect "$DATA/expected.json" --screenshot-dir "$ARTIFACTS" --timeout-ms 120000

# Freshness: one visit posted through ingest must reach the agent's month figures.
AGENT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["agent"]["scope_id"])' "$DATA/expected.json")
visits_now() {
    curl -sf "http://127.0.0.1:$DASH_PORT/api/scope?scope=agent&id=$AGENT" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["month"]["visits"])'
}
before=$(visits_now)
token=$(cat "$DATA/demo-token.txt")
outlet=$(python3 - "$DATA/ledgers.db" "$AGENT" <<'PY'
import sqlite3, sys
row = sqlite3.connect(sys.argv[1]).execute(
    "SELECT outlet_id FROM assignments WHERE agent_id = ? AND deleted = 0 ORDER BY outlet_id LIMIT 1", (sys.argv[2],)).fetchone()
print(row[0])
PY
)
now=$(python3 -c 'import datetime; print(datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=8))).isoformat(timespec="seconds"))')
posted=$SECONDS
answer=$(curl -s -w ' %{http_code}' -X POST "http://127.0.0.1:$INGEST_PORT/v1/events" \
    -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    --data "[{\"event_id\":\"e2e-visit-$$\",\"type\":\"outlet_visit\",\"schema_version\":1,\"occurred_at\":\"$now\",\"source\":\"demo\",\"agent_id\":\"$AGENT\",\"payload\":{\"outlet_id\":\"$outlet\",\"purpose\":\"service\"}}]")
log "ingest answered: $answer"
[[ $answer == *' 200' ]] || { log "the event was not accepted"; exit 1; }
limit=$((EVERY * 3 + 10))
while (( SECONDS - posted <= limit )); do
    [[ $(visits_now) -gt $before ]] && break
    sleep 0.5
done
seen=$((SECONDS - posted))
(( $(visits_now) == before + 1 )) || { log "the posted visit did not show within $limit s"; exit 1; }
log "a posted event showed in the dashboard after ${seen} s (documented bound: $limit s)"

# Restart: same figures, the posted visit counted once.
stop
after_first=$(python3 "$HERE/kpi_row.py" "$DATA/kpi" "$TEAM")
start
after_restart=$(stable_expectation)
if [[ $after_first != "$after_restart" ]]; then
    diff <(printf '%s\n' "$after_first") <(printf '%s\n' "$after_restart") || true
    log "figures changed across a restart"; exit 1
fi
log "restart resumed with identical figures"
echo "e2e: 3 passed, 0 failed"
