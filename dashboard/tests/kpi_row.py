"""Reads this month's KPI rows of a team and of its first agent from the newest KPI
Parquet file, independently of aqs's own code (DuckDB), in the API's JSON shape."""

import datetime
import decimal
import glob
import json
import sys

import duckdb


def month_row(con, path, scope, scope_id):
    result = con.execute(
        "SELECT * FROM read_parquet(?) WHERE scope = ? AND scope_id = ? AND period = 'month' "
        "AND period_start = date_trunc('month', as_of)",
        [path, scope, scope_id],
    )
    columns = [d[0] for d in result.description]
    values = result.fetchone()
    if values is None:
        return None
    row = {}
    for column, value in zip(columns, values):
        if isinstance(value, decimal.Decimal):
            value = f"{value:.2f}"
        elif isinstance(value, datetime.date):
            value = value.isoformat()
        row[column] = value
    return row


def main():
    kpi_dir, team = sys.argv[1], sys.argv[2]
    files = sorted(glob.glob(f"{kpi_dir}/kpi_as_of_*.parquet"))
    if not files:
        sys.exit(f"no KPI file in {kpi_dir}")
    path = files[-1]
    con = duckdb.connect()
    expected = month_row(con, path, "team", team)
    if expected is None:
        sys.exit(f"no month row for team {team} in {path}")
    first_agent = con.execute(
        "SELECT min(scope_id) FROM read_parquet(?) WHERE scope = 'agent' AND team_id = ? AND period = 'month' "
        "AND period_start = date_trunc('month', as_of)",
        [path, team],
    ).fetchone()[0]
    if first_agent is not None:
        expected["agent"] = month_row(con, path, "agent", first_agent)
    json.dump(expected, sys.stdout, ensure_ascii=False, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
