#!/usr/bin/env python3
"""Derive data/holidays-cn.tsv from holiday-cn JSON files (github.com/NateScarlet/holiday-cn, MIT).

Usage: scripts/derive-holidays.py ../shared/data/holiday-cn > data/holidays-cn.tsv
Each row: date, off (statutory holiday) or work (adjusted working day, 调休上班), holiday name.
A `#year` row lists each year whose official schedule the file carries.
"""
import json
import pathlib
import sys

src = pathlib.Path(sys.argv[1])
days = {}
years = []
for f in sorted(src.glob("[0-9][0-9][0-9][0-9].json")):
    doc = json.loads(f.read_text(encoding="utf-8"))
    years.append(doc["year"])
    for d in doc["days"]:
        days[d["date"]] = ("off" if d["isOffDay"] else "work", d["name"])
print("# PRC statutory holidays (off) and adjusted working days (work), from holiday-cn (MIT),")
print("# derived by scripts/derive-holidays.py. Unlisted days: Monday-Friday work, weekend rest.")
for y in years:
    print(f"#year\t{y}")
for date in sorted(days):
    kind, name = days[date]
    print(f"{date}\t{kind}\t{name}")
