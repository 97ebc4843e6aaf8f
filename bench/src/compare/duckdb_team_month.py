"""Runs the team x month KPI query on DuckDB over the Parquet ledgers (`aqs-bench compare`).

Prints one JSON object: the DuckDB version, the seconds of each run (query and fetch of the
rows, measured inside Python so that the interpreter's start is left out) and the rows of the
last run.
"""

import argparse
import datetime
import json
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sql", required=True, help="the query, with {dir} {first} {last} {month_from}")
    parser.add_argument("--parquet-dir", required=True)
    parser.add_argument("--first", required=True)
    parser.add_argument("--last", required=True)
    parser.add_argument("--month-from", required=True)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    try:
        import duckdb
    except ImportError:
        print("the Python package duckdb is missing: python3 -m pip install duckdb", file=sys.stderr)
        return 2

    with open(args.sql, encoding="utf-8") as file:
        sql = file.read()
    for name, value in [
        ("dir", args.parquet_dir),
        ("first", args.first),
        ("last", args.last),
        ("month_from", args.month_from),
    ]:
        sql = sql.replace("{" + name + "}", value)

    connection = duckdb.connect()
    seconds = []
    rows = []
    columns = []
    for _ in range(args.runs):
        started = time.perf_counter()
        cursor = connection.execute(sql)
        rows = cursor.fetchall()
        seconds.append(time.perf_counter() - started)
        columns = [d[0] for d in cursor.description]

    def plain(value):
        return value.isoformat() if isinstance(value, datetime.date) else value

    json.dump(
        {
            "engine": f"DuckDB {duckdb.__version__}",
            "seconds": seconds,
            "rows": [{c: plain(v) for c, v in zip(columns, row)} for row in rows],
        },
        sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
