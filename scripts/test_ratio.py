"""Lines of tests per line of code, per source module and per room (issue 17: tests at least as
long as the code for the dashboard and every pipeline stage).

A module's tests are the test files that import it (``from longshot.x.y import``,
``import longshot.x.y`` or ``from longshot.x import y``); a test file importing several modules counts for each. Blank and
comment lines are not counted. Prints JSON: ``{"modules": {...}, "rooms": {...}}``, modules
sorted by ratio (lowest first). Usage: ``python scripts/test_ratio.py [--under 1.0] [ROOM ...]``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "longshot"
TESTS = ROOT / "tests"


def lines(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.strip() and not line.strip().startswith("#"))


def module(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def ratios(src: Path = SRC, tests: Path = TESTS, rooms: list[str] | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """``{"modules": {name: {code, tests, ratio}}, "rooms": {room: {...}}}`` for the package at ``src``."""
    sources = {module(p, src): p for p in src.rglob("*.py")
               if "demo/sample" not in str(p) and "demo/work" not in str(p) and p.name != "__init__.py"}
    texts = {p: p.read_text() for p in tests.rglob("*.py")}
    sizes = {p: lines(p) for p in texts}
    table: dict[str, dict[str, float]] = {}
    for name, path in sorted(sources.items()):
        room = name.split(".")[1]
        if rooms and room not in rooms:
            continue
        parent, _, leaf = name.rpartition(".")
        pattern = re.compile(rf"(from {re.escape(name)} import|import {re.escape(name)}\b"
                             rf"|from {re.escape(parent)} import (\([^)]*|[^\n]*)\b{leaf}\b)")
        test_lines = sum(sizes[t] for t, text in texts.items() if pattern.search(text))
        code = lines(path)
        table[name] = {"code": code, "tests": test_lines, "ratio": round(test_lines / code, 2) if code else 0.0}
    by_room: dict[str, dict[str, float]] = {}
    for name, row in table.items():
        r = by_room.setdefault(name.split(".")[1], {"code": 0, "tests": 0})
        r["code"] += row["code"]
        r["tests"] += row["tests"]
    for r in by_room.values():
        r["ratio"] = round(r["tests"] / r["code"], 2) if r["code"] else 0.0
    return {"modules": table, "rooms": by_room}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("rooms", nargs="*", help="e.g. pipeline dashboard (default: all)")
    parser.add_argument("--under", type=float, default=None, help="only modules whose ratio is below this")
    args = parser.parse_args()
    found = ratios(rooms=args.rooms or None)
    shown = {k: v for k, v in sorted(found["modules"].items(), key=lambda kv: kv[1]["ratio"])
             if args.under is None or v["ratio"] < args.under}
    print(json.dumps({"modules": shown, "rooms": found["rooms"]}, indent=1))


if __name__ == "__main__":
    main()
