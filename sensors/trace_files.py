"""Sensor: each new or changed trace file in a suite's folder becomes a dynamic partition and one run of its trace job.

The cursor is the newest modification time taken (and the names taken at exactly that time), so a tick
only looks at files it has not requested; a file written again (a corrected batch) has a newer time and
is requested again, under the same partition with a new run key (name, size, modification time), which
Dagster also dedupes. A file still being written (changed within `settle_seconds`) waits for a later tick.
"""


import json
import os
import time
from fnmatch import fnmatch
from pathlib import Path
from typing import Callable

import dagster as dg

from evalplatform.traces.read import is_trace_file

_BAD_KEY = ("...", "\a", "\b", "\f", "\n", "\r", "\t", "\v", "\0")


def scan(folder: Path, cursor: dict, *, settle_ns: int, ignore: list[str], limit: int,
         now_ns: int) -> tuple[list[tuple[int, str, int]], dict, dict]:
    """New files as (mtime_ns, name, size), oldest first, at most `limit`; the next cursor; counts for the tick."""
    mark, at_mark = int(cursor.get("mtime_ns", -1)), set(cursor.get("names", []))
    fresh, counts = [], {"files": 0, "settling": 0, "skipped": 0}
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return [], cursor, {**counts, "missing": 1}
    for entry in entries:
        name = entry.name
        if not is_trace_file(name) or any(fnmatch(name, pat) for pat in ignore):
            continue
        try:
            if not entry.is_file():
                continue
            st = entry.stat()
        except OSError:
            continue  # removed between listing and stat
        counts["files"] += 1
        if any(bad in name for bad in _BAD_KEY):
            counts["skipped"] += 1
            continue
        if st.st_mtime_ns > now_ns - settle_ns:
            counts["settling"] += 1
            continue
        if st.st_mtime_ns < mark or (st.st_mtime_ns == mark and name in at_mark):
            continue
        fresh.append((st.st_mtime_ns, name, st.st_size))
    fresh.sort()
    taken = fresh[:limit]
    if taken:
        top = taken[-1][0]
        names = {n for m, n, _ in taken if m == top} | (at_mark if top == mark else set())
        cursor = {"mtime_ns": top, "names": sorted(names)}
    return taken, cursor, counts


def build_trace_sensor(entry, job, partitions: dg.DynamicPartitionsDefinition, folder: Path, source,
                       clock_ns: Callable[[], int] = time.time_ns) -> dg.SensorDefinition:
    """The sensor of one suite's trace folder (`source` is the policy's monitors.traces section)."""

    @dg.sensor(name=f"{entry.op_prefix}_trace_files_sensor", job=job, minimum_interval_seconds=30,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description=f"New trace files in {folder}: one partition and one run of {job.name} per file "
                           "(validate, sample, score, monitor).")
    def trace_files_sensor(context: dg.SensorEvaluationContext):
        cursor = json.loads(context.cursor) if context.cursor else {}
        taken, cursor, counts = scan(folder, cursor, settle_ns=int(source.settle_seconds * 1e9), ignore=source.ignore,
                                     limit=source.max_files_per_tick, now_ns=clock_ns())
        if not taken:
            detail = "folder does not exist yet" if counts.get("missing") else \
                f"{counts['files']} file(s), {counts['settling']} still being written"
            return dg.SensorResult(skip_reason=f"no new trace files in {folder} ({detail})",
                                   cursor=json.dumps(cursor))
        names = sorted({name for _, name, _ in taken})
        try:
            known = set(context.instance.get_dynamic_partitions(partitions.name))
        except dg.DagsterInvariantViolationError:  # evaluated without an instance (unit tests): add them all
            known = set()
        new_keys = [n for n in names if n not in known]
        requests = [dg.RunRequest(run_key=f"{name}@{size}:{mtime}", partition_key=name,
                                  tags={"suite": entry.name, "trace_file": name, "fingerprint": f"{size}:{mtime}"})
                    for mtime, name, size in taken]
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor),
                               dynamic_partitions_requests=[partitions.build_add_request(new_keys)] if new_keys else [])

    return trace_files_sensor
