#!/usr/bin/env bash
# Runs a command with the real test services up: starts Kafka and ClickHouse, exports
# their addresses, runs the command, and always stops them again.
#
#   deploy/test-services/with-services.sh cargo test --workspace
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[[ $# -gt 0 ]] || { echo "usage: $0 COMMAND [ARG]..." >&2; exit 2; }

"$HERE/services.sh" start
trap '"$HERE/services.sh" stop' EXIT
# shellcheck disable=SC1091
. "${AQS_SERVICES_DIR:-/tmp/aqs-services}/env"
"$@"
