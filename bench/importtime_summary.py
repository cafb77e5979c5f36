"""Summarise `-X importtime` output: total import time and the top-level packages that cost the most.

Run: PYTHONPROFILEIMPORTTIME=1 <command> 2> imports.txt; .venv/bin/python bench/importtime_summary.py imports.txt [N]
(the variable, unlike -X importtime, reaches child processes too: the Dagster launcher's imports are counted).
"""

from __future__ import annotations

import sys
from collections import Counter


def summarise(lines: list[str]) -> tuple[float, Counter]:
    """(seconds spent importing, cumulative seconds per top-level package) over every process in the log."""
    per_package: Counter = Counter()
    total_us = 0
    for line in lines:
        if not line.startswith("import time:") or line.count("|") != 2 or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        if name.startswith("  "):  # nested: already inside its importer's cumulative time
            continue
        name = name.strip()
        us = int(cumulative)
        total_us += us
        per_package[name.split(".")[0]] += us
    return total_us / 1e6, Counter({k: v / 1e6 for k, v in per_package.items()})


def main(argv: list[str]) -> int:
    path, top = argv[0], int(argv[1]) if len(argv) > 1 else 12
    with open(path, errors="replace") as f:
        total, per_package = summarise(f.read().splitlines())
    print(f"imports: {total:.2f} s in all")
    print(", ".join(f"{name} {s:.2f}" for name, s in per_package.most_common(top)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
