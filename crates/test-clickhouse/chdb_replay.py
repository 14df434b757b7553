#!/usr/bin/env python3
"""Replays a petrel ClickHouse statement log on current ClickHouse through chDB.

Every DDL statement, insert (with its RowBinary data) and query that petrel's ClickHouse
store sent to the test server (ClickHouse 18.16) is run again, in the same order, on the
engine chDB embeds (the current release). A statement the current engine refuses fails the
check, with the statement and the engine's error printed. Usage: chdb_replay.py LOG
"""
import base64
import json
import os
import re
import sys
import tempfile

from chdb import session

INSERT = re.compile(r"^INSERT INTO (\S+?)(?: \(([^)]*)\))? FORMAT RowBinary$")


def main(path):
    tmp = tempfile.mkdtemp(prefix="chdb-replay-")
    s = session.Session(os.path.join(tmp, "db"))
    s.query("SET max_query_size = 104857600")
    s.query("SET max_partitions_per_insert_block = 0")
    version = str(s.query("SELECT version()", "TSV")).strip()
    counts = {"execute": 0, "insert": 0, "select": 0}
    failures = []
    with open(path) as f:
        lines = [json.loads(l) for l in f if l.strip()]
    for n, entry in enumerate(lines):
        kind, sql = entry["kind"], entry["sql"]
        counts[kind] += 1
        try:
            if kind == "insert":
                m = INSERT.match(sql)
                if not m:
                    raise ValueError("unexpected insert form")
                table, cols = m.group(1), m.group(2)
                db, name = table.split(".")
                described = str(s.query(
                    f"SELECT name, type FROM system.columns WHERE database = '{db}' "
                    f"AND table = '{name}' ORDER BY position", "TSV")).strip().splitlines()
                types = dict(line.split("\t", 1) for line in described)
                wanted = [c.strip() for c in cols.split(",")] if cols else list(types)
                structure = ", ".join(f"{c} {types[c]}" for c in wanted)
                data = os.path.join(tmp, f"data-{n}.bin")
                with open(data, "wb") as out:
                    out.write(base64.b64decode(entry["data"]))
                s.query(f"INSERT INTO {table} ({', '.join(wanted)}) "
                        f"SELECT * FROM file('{data}', 'RowBinary', '{structure}')")
                os.remove(data)
            else:
                s.query(sql, "Null" if kind == "select" else "TSV")
        except Exception as e:  # chDB raises its own error types
            failures.append((sql, str(e)))
    for sql, err in failures[:20]:
        print(f"REFUSED by ClickHouse {version}:\n  {sql[:500]}\n  -> {err.strip()[:500]}")
    print(f"chDB {version}: {counts['execute']} DDL/ALTER, {counts['insert']} inserts, "
          f"{counts['select']} queries replayed; {len(failures)} refused")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main(sys.argv[1])
