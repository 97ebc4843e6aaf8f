#!/usr/bin/env bash
# Runs a command with the real test services up: starts Kafka, ClickHouse and Keycloak,
# exports their addresses, runs the command, and always stops them again.
#
#   deploy/test-services/with-services.sh cargo test --workspace
#   AQS_TEST_SERVICES="kafka clickhouse" deploy/test-services/with-services.sh ...  (a subset)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[[ $# -gt 0 ]] || { echo "usage: $0 COMMAND [ARG]..." >&2; exit 2; }

# shellcheck disable=SC2206 # a list of names, split on purpose
SERVICES=(${AQS_TEST_SERVICES:-kafka clickhouse keycloak})
"$HERE/services.sh" start "${SERVICES[@]}"
trap '"$HERE/services.sh" stop "${SERVICES[@]}"' EXIT
# shellcheck disable=SC1091
. "${AQS_SERVICES_DIR:-/tmp/aqs-services}/env"
"$@"
