#!/usr/bin/env python3
"""Derive data/regions-gb2260.tsv from python-stdnum's stdnum/cn/loc.dat.

loc.dat (python-stdnum, LGPL-2.1+) is compiled from Wikipedia's lists 中华人民共和国行政区划代码 (CC BY-SA).
Usage: pip download --no-deps python-stdnum; unzip the wheel; scripts/derive-regions.py stdnum/cn/loc.dat
"""
import re
import sys

rows = {}
prov = None
for line in open(sys.argv[1], encoding="utf-8"):
    if line.startswith("#") or not line.strip():
        continue
    m = re.match(r'^(\d\d) province="([^"]*)"', line)
    if m:
        prov = m.group(1)
        continue
    m = re.match(r'^\s+(\d{4}) county="([^"]*)"', line)
    if not m:
        raise SystemExit("unparsed line: " + line)
    code = prov + m.group(1)
    raw = m.group(2)
    # A code renamed over time reads "[1983-1999]城区,[2000-]王益区": the span is first start to last end,
    # the name is the latest one and the earlier ones are kept as former names.
    segments = []
    for seg in raw.split(","):
        b = re.match(r"^\[(\d*)-(\d*)\](.*)$", seg)
        segments.append((b.group(1), b.group(2), b.group(3)) if b else ("", "", seg))
    valid_from, valid_to, name = segments[0][0], segments[-1][1], segments[-1][2]
    former = "|".join(s[2] for s in segments[:-1])
    if code.endswith("0000"):
        level, parent = "province", ""
    elif code.endswith("00"):
        level, parent = "prefecture", code[:2] + "0000"
    else:
        level = "county"
        parent = code[:4] + "00"
    rows.setdefault(code, []).append((name, level, parent, valid_from, valid_to, former))

out = sys.stdout
out.write("# GB/T 2260 行政区划代码, historical. Derived by scripts/derive-regions.py from python-stdnum's\n")
out.write("# stdnum/cn/loc.dat (LGPL-2.1+), itself compiled from Wikipedia (CC BY-SA 4.0). Columns:\n")
out.write("# code\tname\tlevel\tparent\tvalid_from_year\tvalid_to_year (empty: open)\tformer_names (|-separated)\n")
for code in sorted(rows):
    for (name, level, parent, vf, vt, former) in rows[code]:
        if level == "county" and parent not in rows:
            parent = code[:2] + "0000"
        out.write("\t".join([code, name, level, parent, vf, vt, former]) + "\n")
