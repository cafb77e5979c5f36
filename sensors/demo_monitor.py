"""`make demo-monitor`: production monitoring end to end on the demo app, in a scratch copy of the project.

v1 traffic lands as OTLP JSON files (written through the OpenTelemetry SDK) -> the trace sensor picks them
up -> each file runs the suite's trace job (validate, sample, score, monitor); then v2 ships, its traffic
lands, the dates monitor alerts; a reviewer labels a failed trace from the queue (a scripted review), the
failure is appended to the regression set, and the next PR-tier run includes the new case.
Runs against DAGSTER_HOME's instance, so `make ui` shows the runs, partitions and checks afterwards.
"""


import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _say(text: str) -> None:
    print(text, flush=True)


def _scratch(root: Path) -> Path:
    if root.exists():
        shutil.rmtree(root)
    (root / "datasets").mkdir(parents=True)
    for name in ("demo", "calibration"):
        shutil.copytree(REPO / "datasets" / name, root / "datasets" / name,
                        ignore=shutil.ignore_patterns("*.py"))
    return root


def _tick(defs, instance, cursor: str | None):
    import dagster as dg

    sensor = defs.resolve_sensor_def("demo_trace_files_sensor")
    result = sensor(dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs))
    for req in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
    return result


def _run_files(defs, instance, result) -> None:
    job = defs.resolve_job_def("demo_traces")
    for req in result.run_requests:
        out = job.execute_in_process(partition_key=req.partition_key, instance=instance, raise_on_error=False,
                                     tags={**req.tags, "dagster/run_key": req.run_key})
        checks = {c.check_name: c for c in out.get_asset_check_evaluations()}
        valid = checks.get("trace_batch_is_valid")
        slo = checks.get("production_within_slos")
        line = f"  {req.partition_key}: {'accepted' if valid and valid.passed else 'QUARANTINED'}"
        if valid is not None:
            line += f" ({valid.description})"
        _say(line)
        if slo is not None:
            _say(f"    monitor check production_within_slos: {'passed' if slo.passed else 'FAILED ' + slo.severity.value}"
                 f" - {slo.description}")


def _wait_settled(seconds: float) -> None:
    time.sleep(seconds)  # the sensor leaves files alone until they have been still this long


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sensors.demo_monitor", description=__doc__)
    parser.add_argument("--root", default=str(REPO / ".evalplatform" / "demo-monitor"),
                        help="scratch project folder (recreated)")
    parser.add_argument("--turns", type=int, default=300, help="user turns per trace file")
    args = parser.parse_args(argv)

    root = _scratch(Path(args.root).resolve())
    os.environ["EVALPLATFORM_PROJECT"] = str(root)
    for key in ("EVALPLATFORM_HOME", "EVALPLATFORM_HISTORY"):
        os.environ.pop(key, None)
    from definitions import build_definitions
    from evalplatform.demo.app import answer
    from evalplatform.demo.traffic import write_traffic
    from evalplatform.monitoring import monitor_report
    from evalplatform.project import Project
    from evalplatform.review import apply_label, review_list
    from evalplatform.traces.coverage import coverage_audit
    from evalplatform.traces.pipeline import setup_for
    from evalplatform.history import HistoryStore
    from sensors.instance import cli_instance

    project = Project(root)
    setup = setup_for(project, "demo")
    defs = build_definitions(root)
    settle = setup.monitors.traces.settle_seconds + 0.2
    _say(f"=== scratch project {root}; traces land in {setup.folder} ===")
    env = {**os.environ, "EVALPLATFORM_PROJECT": str(root), "EVALPLATFORM_CODE_LOCATION": str(REPO)}
    _say("=== judges calibrated against their human labels (the ones allowed to gate also score traces) ===")
    subprocess.run([sys.executable, "-m", "evalplatform", "calibrate", "--suite", "demo"], cwd=root, env=env,
                   timeout=900, stdout=subprocess.DEVNULL)
    # A timeline: v1 served the last two hours, v2 shipped 30 minutes ago.
    now = dt.datetime.now(dt.timezone.utc)
    step = 1800 / (2 * args.turns)
    with cli_instance() as instance:
        _say("=== support-v1 in production: two files of traffic (OpenTelemetry SDK, OTLP JSON) ===")
        for i in range(2):
            stats = write_traffic(setup.folder / f"support-v1-{i:03d}.jsonl", release="support-v1", turns=args.turns,
                                  seed=10 + i, start=now - dt.timedelta(minutes=120 - 45 * i), step_seconds=step)
            _say(f"  wrote support-v1-{i:03d}.jsonl: {stats.turns} turns, {stats.thumbs_down} thumbs down, "
                 f"{stats.rephrased} rephrased, {stats.regenerated} regenerated")
        _wait_settled(settle)
        tick = _tick(defs, instance, None)
        _say(f"=== the sensor picked up {len(tick.run_requests)} file(s); one run each ===")
        _run_files(defs, instance, tick)

        _say("=== support-v2 ships; its traffic lands ===")
        for i in range(2):
            stats = write_traffic(setup.folder / f"support-v2-{i:03d}.jsonl", release="support-v2", turns=args.turns,
                                  seed=20 + i, start=now - dt.timedelta(minutes=30 - 15 * i), step_seconds=step / 2)
            _say(f"  wrote support-v2-{i:03d}.jsonl: {stats.turns} turns, {stats.thumbs_down} thumbs down, "
                 f"{stats.rephrased} rephrased, {stats.regenerated} regenerated")
        _wait_settled(settle)
        tick = _tick(defs, instance, tick.cursor)
        _say(f"=== the sensor picked up {len(tick.run_requests)} new file(s) ===")
        _run_files(defs, instance, tick)

    _say("\n=== evalplatform monitor --suite demo ===")
    _say(monitor_report(project, "demo"))

    _say("\n=== scripted review: the most suspicious v2 date answer ===")
    items = [i for i in review_list(project, "demo", limit=200)
             if i.get("release") == "support-v2" and "category:dates" in (i.get("tags") or [])
             and any("iso_dates_only" in r for r in i["reasons"])]
    if not items:
        _say("no failed v2 date trace was queued (unexpected)")
        return 1
    item = items[0]
    right = answer([{"role": "user", "content": item["input"]}], {"temperature": 0.0}, version="support-v1")
    iso = re.findall(r"\d{4}-\d{2}-\d{2}", right)
    us = re.findall(r"\d{1,2}/\d{1,2}/\d{4}", item["output"] or "")
    _say(f"  {item['item_id']}\n  user:  {item['input']}\n  reply: {item['output']}\n  why:   {'; '.join(item['reasons'])}")
    cmd = (f"evalplatform review --suite demo --id {item['item_id']} --label fail --category date-format "
           f"--note 'US date format after the v2 release' --field must_contain='{json.dumps(iso)}' "
           f"--field must_not_contain='{json.dumps(us)}'")
    _say(f"  $ {cmd}")
    result = apply_label(project, "demo", item["item_id"], "fail", category="date-format",
                         note="US date format after the v2 release", reviewer="demo-reviewer",
                         fields={"must_contain": iso, "must_not_contain": us}, severity="high")
    _say(f"  {result.line()}")
    case_line = Path(result.regression_file).read_text(encoding="utf-8").splitlines()[-1]
    _say(f"  appended: {case_line}")
    audit = coverage_audit(setup_for(project, "demo"), HistoryStore(project.history_path))
    _say(f"  coverage audit: {audit['description']}")

    _say("\n=== the next PR-tier run includes the new regression case ===")
    proc = subprocess.run([sys.executable, "-m", "evalplatform", "run", "--suite", "demo"], cwd=root, env=env,
                          timeout=900)
    store = HistoryStore(project.history_path)
    run = store.latest_run("demo")
    if run is None:
        _say(f"the PR run did not complete (exit {proc.returncode})")
        return 3
    results = store.get_results(run["run_id"])
    mine = results.filter(results["case_id"] == result.case_id)
    outcomes = ", ".join(f"{r['scorer']}={r['outcome']}" for r in mine.iter_rows(named=True))
    _say(f"  PR run {run['run_id']} (exit {proc.returncode}) includes {result.case_id}: "
         f"{'yes' if mine.height else 'NO'} ({outcomes})")
    _say("\nnext: 'make ui' shows the demo_traces runs, the quarantine and SLO checks, and the monitor's history")
    return 0 if mine.height else 1


if __name__ == "__main__":
    # Leave without the interpreter's teardown of Dagster and the rest (~0.8 s, and DuckDB's bindings report
    # their module-level objects as "leaked" on the way out): output flushed, exit code kept.
    from evalplatform.cli import _exit_now

    code = main()
    _exit_now(code)
    sys.exit(code)
