#!/usr/bin/env python3
"""Runs every piece of ClickHouse SQL the project ships on a current ClickHouse engine.

The integration tests run against the ClickHouse server CI can install (an old release);
users run current ones. This script embeds a current engine in-process (the `chdb` package)
and runs, in a database named `aqs`:

- every migration of deploy/clickhouse/, statement by statement, as `aqs migrate` splits them;
- every ```sql block of the READMEs that hold example queries (analytics/README.md,
  deploy/README.md); statements about users and grants are parsed only (`EXPLAIN AST`),
  since the embedded engine has no access control;
- every query of the Grafana dashboards (panels' rawSql and template variables), with
  Grafana's macros and variables replaced by plain values.

It exits non-zero, naming the file and the statement, when the engine refuses any of them.

    python3 deploy/test-services/current_clickhouse.py
"""

import json
import pathlib
import re
import sys

from chdb import session

ROOT = pathlib.Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "deploy" / "clickhouse"
READMES = [ROOT / "analytics" / "README.md", ROOT / "deploy" / "README.md"]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
DATABASE = "aqs"

# Grafana template variables, as a dashboard would fill them.
VARIABLES = {"region": "R01", "branch": "B001", "team": "T0001", "agent": "A000001"}


def split_statements(sql):
    """Statements end with `;` at the end of a line (the rule of `aqs migrate`)."""
    statements, current = [], []
    for line in sql.splitlines():
        stripped = line.rstrip()
        if not current and (not stripped.strip() or stripped.strip().startswith("--")):
            continue
        if stripped.endswith(";"):
            current.append(stripped[:-1])
            statement = "\n".join(current).strip()
            if statement:
                statements.append(statement)
            current = []
        else:
            current.append(line)
    tail = "\n".join(current).strip()
    if tail and not all(l.strip().startswith("--") or not l.strip() for l in current):
        statements.append(tail)
    return statements


def sql_blocks(markdown):
    return re.findall(r"```sql\n(.*?)```", markdown, flags=re.S)


def grafana_queries(dashboard):
    """(where, sql) of every panel target and query variable of a dashboard."""
    found = []

    def walk(node, where):
        if isinstance(node, dict):
            if isinstance(node.get("rawSql"), str):
                found.append((where, node["rawSql"]))
            if node.get("type") == "query" and isinstance(node.get("query"), str):
                found.append((where + " variable " + node.get("name", "?"), node["query"]))
            title = node.get("title")
            for key, value in node.items():
                walk(value, where + (f" panel {title!r}" if title and key == "targets" else ""))
        elif isinstance(node, list):
            for item in node:
                walk(item, where)

    walk(dashboard, dashboard.get("title", "dashboard"))
    return found


def fill_grafana(sql):
    sql = re.sub(
        r"\$__timeFilter\(([^()]*(?:\([^()]*\))?[^()]*)\)",
        r"(\1 BETWEEN toDateTime('2026-01-01 00:00:00') AND toDateTime('2026-12-31 00:00:00'))",
        sql,
    )
    for name, value in VARIABLES.items():
        sql = sql.replace("${" + name + "}", value).replace("$" + name, value)
    leftover = re.search(r"\$\{?\w+", sql)
    if leftover:
        raise ValueError(f"unknown Grafana variable or macro {leftover.group(0)}")
    return sql


def main():
    engine = session.Session()
    engine.query(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
    engine.query(f"USE {DATABASE}")
    version = str(engine.query("SELECT version()", "TSV")).strip()
    failures, checked = [], 0

    def run(where, statement, parse_only=False):
        nonlocal checked
        checked += 1
        try:
            engine.query(("EXPLAIN AST " if parse_only else "") + statement, "TSV")
        except Exception as error:  # the engine's message names the problem
            first_line = str(error).strip().splitlines()[0]
            failures.append(f"{where}: {first_line}\n    {statement[:300]}")

    for path in sorted(MIGRATIONS.glob("*.sql")):
        for index, statement in enumerate(split_statements(path.read_text()), 1):
            run(f"{path.relative_to(ROOT)} statement {index}", statement)

    for path in READMES:
        for block_number, block in enumerate(sql_blocks(path.read_text()), 1):
            for index, statement in enumerate(split_statements(block), 1):
                access_control = re.match(r"\s*(CREATE|ALTER|DROP)\s+(USER|ROLE)|\s*GRANT|\s*REVOKE",
                                          statement, flags=re.I)
                where = f"{path.relative_to(ROOT)} sql block {block_number} statement {index}"
                if re.match(r"\s*CREATE\s+DATABASE", statement, flags=re.I):
                    run(where, statement, parse_only=True)
                else:
                    run(where, statement, parse_only=bool(access_control))

    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for where, sql in grafana_queries(dashboard):
            try:
                filled = fill_grafana(sql)
            except ValueError as error:
                failures.append(f"{path.relative_to(ROOT)} {where}: {error}")
                continue
            run(f"{path.relative_to(ROOT)} {where}", filled)

    if failures:
        print(f"current ClickHouse {version}: {len(failures)} of {checked} statements refused:")
        for failure in failures:
            print("  " + failure)
        return 1
    print(f"current ClickHouse {version}: all {checked} statements accepted "
          "(migrations, README examples, Grafana queries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
