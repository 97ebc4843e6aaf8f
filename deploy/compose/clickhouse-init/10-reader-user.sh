#!/bin/bash
# Runs once, when the ClickHouse container initialises an empty data volume: creates the
# read-only user that Grafana and analysts use. The writer user (aqs_writer, owner of the
# aqs database) comes from CLICKHOUSE_USER / CLICKHOUSE_PASSWORD of the image.
set -euo pipefail
clickhouse client --user "$CLICKHOUSE_USER" --password "$CLICKHOUSE_PASSWORD" --multiquery <<SQL
CREATE USER IF NOT EXISTS aqs_reader IDENTIFIED WITH sha256_password BY '${CLICKHOUSE_READER_PASSWORD}'
    SETTINGS readonly = 2;
GRANT SELECT ON ${CLICKHOUSE_DB}.* TO aqs_reader;
SQL
