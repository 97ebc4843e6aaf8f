"""Checks an exported members table (XLSX with openpyxl, or CSV) against the KPI store.

    python3 export_check.py FILE --team T0001 --month 2026-12 --as-of 2026-12-05 \
        (--kpi-dir DIR | --clickhouse URL --database DB --user U --password P) \
        [--names required|forbidden]

The KPI store is read on its own: the Parquet file of the run with DuckDB, or ClickHouse's
`kpi` table over HTTP. The export must hold exactly the team's agents of that month, with
the store's premium (money with two decimals), attainment (a percentage) and visits; in an
XLSX the header row is frozen and the cells are typed. Exits 1 with the reasons otherwise.
"""

import argparse
import csv
import io
import json
import sys
import urllib.parse
import urllib.request


def store_rows(args):
    month_start = f"{args.month}-01"
    if args.kpi_dir:
        import duckdb

        path = f"{args.kpi_dir}/kpi_as_of_{args.as_of}.parquet"
        rows = duckdb.sql(
            "SELECT scope_id, CAST(premium AS VARCHAR), premium_attainment, visits "
            f"FROM read_parquet('{path}') WHERE scope = 'agent' AND period = 'month' "
            f"AND CAST(period_start AS VARCHAR) = '{month_start}' AND team_id = '{args.team}' "
            "ORDER BY scope_id"
        ).fetchall()
        return [(r[0], r[1], r[2], r[3]) for r in rows]
    query = (
        "SELECT scope_id, toString(premium) AS premium, premium_attainment, visits FROM kpi FINAL "
        f"WHERE as_of = '{args.as_of}' AND scope = 'agent' AND period = 'month' "
        f"AND period_start = '{month_start}' AND team_id = '{args.team}' "
        "ORDER BY scope_id FORMAT JSONEachRow"
    )
    params = urllib.parse.urlencode(
        {"database": args.database, "user": args.user, "password": args.password}
    )
    with urllib.request.urlopen(f"{args.clickhouse}/?{params}", query.encode()) as answer:
        lines = answer.read().decode().splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return [
        (r["scope_id"], r["premium"], r["premium_attainment"], int(r["visits"])) for r in rows
    ]


def exported_rows(args, problems):
    """(header, rows) of the file; rows as lists of cell values."""
    if args.file.endswith(".csv"):
        raw = open(args.file, "rb").read()
        if not raw.startswith(b"\xef\xbb\xbf"):
            problems.append("the CSV does not start with a UTF-8 byte-order mark")
        table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
        return table[0], table[1:]
    import openpyxl

    workbook = openpyxl.load_workbook(args.file)
    sheet = workbook.active
    if sheet.freeze_panes != "A2":
        problems.append(f"the header row is not frozen (freeze_panes {sheet.freeze_panes!r})")
    table = [[cell for cell in row] for row in sheet.iter_rows()]
    header = [cell.value for cell in table[0]]
    return header, table[1:]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("file")
    parser.add_argument("--team", required=True)
    parser.add_argument("--month", required=True)
    parser.add_argument("--as-of", required=True)
    parser.add_argument("--kpi-dir")
    parser.add_argument("--clickhouse")
    parser.add_argument("--database")
    parser.add_argument("--user", default="default")
    parser.add_argument("--password", default="")
    parser.add_argument("--names", choices=["required", "forbidden"])
    args = parser.parse_args()

    problems = []
    header, rows = exported_rows(args, problems)
    expected = store_rows(args)
    is_csv = args.file.endswith(".csv")
    value = (lambda cell: cell) if is_csv else (lambda cell: cell.value)
    column = {title: i for i, title in enumerate(header)}
    for title in ("保费", "达成率", "拜访"):
        if title not in column:
            problems.append(f"no column {title} in {header}")
    if problems:
        print("\n".join(problems))
        sys.exit(1)

    ids = [value(row[1]) for row in rows]
    if ids != [r[0] for r in expected]:
        problems.append(f"agents {ids} differ from the store's {[r[0] for r in expected]}")
    for row, (agent, premium, attainment, visits) in zip(rows, expected):
        name, premium_cell = value(row[0]), row[column["保费"]]
        attainment_cell, visits_cell = row[column["达成率"]], row[column["拜访"]]
        if is_csv:
            if premium_cell != premium:
                problems.append(f"{agent}: premium {premium_cell} != {premium}")
            shown = None if attainment_cell == "" else float(attainment_cell.rstrip("%")) / 100
            if (shown is None) != (attainment is None) or (
                shown is not None and abs(shown - attainment) > 5e-5
            ):
                problems.append(f"{agent}: attainment {attainment_cell} != {attainment}")
            if int(visits_cell) != visits:
                problems.append(f"{agent}: visits {visits_cell} != {visits}")
        else:
            if not isinstance(premium_cell.value, (int, float)) or abs(
                premium_cell.value - float(premium)
            ) > 0.001:
                problems.append(f"{agent}: premium {premium_cell.value!r} != {premium}")
            if premium_cell.number_format != "#,##0.00":
                problems.append(f"{agent}: premium format {premium_cell.number_format}")
            if attainment is None:
                if attainment_cell.value is not None:
                    problems.append(f"{agent}: attainment {attainment_cell.value} for none")
            else:
                if (
                    not isinstance(attainment_cell.value, (int, float))
                    or abs(attainment_cell.value - attainment) > 1e-9
                    or "%" not in attainment_cell.number_format
                ):
                    problems.append(
                        f"{agent}: attainment {attainment_cell.value!r} "
                        f"({attainment_cell.number_format}) != {attainment}"
                    )
            if visits_cell.value != visits:
                problems.append(f"{agent}: visits {visits_cell.value!r} != {visits}")
        if args.names == "required" and name == agent:
            problems.append(f"{agent}: no name shown")
        if args.names == "forbidden" and name != agent:
            problems.append(f"{agent}: a name is shown ({name})")
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"export_check: {args.file}: {len(rows)} agents equal to the KPI store")


if __name__ == "__main__":
    main()
