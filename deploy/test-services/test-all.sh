#!/usr/bin/env bash
# The whole test suite, from a clean machine: installs what the tests need, starts the real
# Kafka, ClickHouse and Keycloak once, runs every Rust test, then the end-to-end dashboard
# test of `aqs up --demo` in headless Chromium (local users and SSO through Keycloak); stops
# the services whatever happens. Every piece of
# ClickHouse SQL the project ships also runs on a current ClickHouse engine (chdb), since the
# server the tests use is an old release.
#
#   deploy/test-services/test-all.sh
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

timed() {
    local name=$1; shift
    local begin=$SECONDS
    echo "test-all: $name ..."
    "$@"
    echo "test-all: $name done in $((SECONDS - begin)) s"
}

prerequisites() {
    local missing=()
    [[ -x /usr/bin/chromium ]] || missing+=(chromium)
    fc-list 2>/dev/null | grep -qi 'noto.*cjk' || missing+=(fonts-noto-cjk)
    command -v unzip >/dev/null 2>&1 || missing+=(unzip)   # the Keycloak distribution
    if ((${#missing[@]})); then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    python3 -c 'import duckdb' 2>/dev/null || python3 -m pip install -q duckdb
    # The browser test reads the exported workbooks with a real reader.
    python3 -c 'import openpyxl' 2>/dev/null || python3 -m pip install -q openpyxl
    python3 -c 'import chdb' 2>/dev/null || python3 -m pip install -q chdb
    # The published OpenAPI and JSON Schema documents are checked with real validators.
    python3 -c 'import openapi_spec_validator, jsonschema' 2>/dev/null ||
        python3 -m pip install -q openapi-spec-validator jsonschema
    [[ -d dashboard/tests/node_modules/playwright-core ]] || npm ci --prefix dashboard/tests --no-audit --no-fund
}

dashboard_e2e() {
    cargo build --locked --bin aqs
    AQS_BIN="$TARGET/debug/aqs" dashboard/tests/e2e.sh
}

# Run again by with-services.sh once the services are up: the Rust tests and the browser
# test share one start of the services (Keycloak alone takes about half a minute).
if [[ ${1:-} == --services-up ]]; then
    # The decoder's fuzz test (schemas/tests/fuzz.rs): 50,000 mutated events, about 20 s.
    export AQS_FUZZ_CASES=${AQS_FUZZ_CASES:-50000}
    timed "Rust tests with real Kafka, ClickHouse and Keycloak" cargo test --locked --workspace --all-features
    timed "dashboard end to end in Chromium" dashboard_e2e
    exit 0
fi

timed "test prerequisites (chromium, fonts, unzip, duckdb, openpyxl, chdb, openapi-spec-validator, jsonschema, playwright-core)" prerequisites
timed "ClickHouse SQL on a current engine (chdb)" python3 deploy/test-services/current_clickhouse.py
timed "published OpenAPI and JSON Schema documents (openapi-spec-validator, jsonschema)" python3 deploy/test-services/published_documents.py
timed "services up, then the tests" "$HERE/with-services.sh" "$0" --services-up
