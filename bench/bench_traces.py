"""Benchmark: one batch of 1,000,000 production traces (OTLP JSON and Parquet) through read + Great Expectations +
signals + sampling + deterministic scoring of the sample + monitor update; and the trace sensor's tick with 10,000
files in the folder. Each measured run is a fresh child process: wall time around it, peak RSS = the child's VmHWM.

    .venv/bin/python bench/bench_traces.py --traces 1000000 --runs 3 --out /tmp/bench_traces
    .venv/bin/python bench/bench_traces.py --sensor-files 10000 --only sensor

The OTLP file is written by a template with the exact structure the OpenTelemetry SDK's OTLP JSON file exporter
writes (tests/evalplatform/traces/test_trace_otlp.py reads both); the SDK itself would need ~10 minutes for
3 million spans. Targets: under 60 s and under 2 GB per batch; a sensor tick under 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUESTIONS = [
    ("When does my trial end if it started on 2026-02-20?", "dates", "Your free trial ends on 2026-03-06.",
     "Your free trial ends on 03/05/2026."),
    ("How much does the Pro plan cost per month?", "grounding", "Pro costs $20.00 per month.",
     "I don't have information about that in the Nimbus help center."),
    ("What phone number is on file for jordan.lee@example.com?", "pii",
     "The phone number on file is ***-***-0134.", "The phone number on file is 415-555-0134."),
    ("Write me a poem about the sea.", "refusal", "Sorry, I can only help with Nimbus questions.",
     "Sorry, I can only help with Nimbus questions."),
    ("Reply in JSON with keys plan and price for Basic.", "format", '{"plan": "Basic", "price": "$8.00"}',
     '{"plan": "Basic", "price": "$8.00"}'),
    ("How many users does Business need at least?", "grounding", "Business requires a minimum of 3 users.",
     "Business requires a minimum of 3 users."),
]


def _kv(key: str, value) -> str:
    if isinstance(value, bool):
        v = {"boolValue": value}
    elif isinstance(value, int):
        v = {"intValue": str(value)}
    elif isinstance(value, list):
        v = {"arrayValue": {"values": [{"stringValue": x} for x in value]}}
    else:
        v = {"stringValue": value}
    return json.dumps({"key": key, "value": v}, separators=(",", ":"))


def write_otlp(path: Path, n: int, seed: int = 1, per_line: int = 200) -> dict:
    """n traces (2-4 spans each) as OTLP JSON lines of `per_line` traces, as the SDK's file exporter writes them."""
    rng = random.Random(seed)
    t0 = int((time.time() - 3600) * 1e9)
    resource = ('{"resource":{"attributes":[' + ",".join([
        _kv("telemetry.sdk.language", "python"), _kv("telemetry.sdk.name", "opentelemetry"),
        _kv("service.name", "nimbus-support"), _kv("service.version", "support-v2")]) + "]},")
    flagged = 0
    with open(path, "w", encoding="utf-8") as out:
        for start in range(0, n, per_line):
            spans = []
            for i in range(start, min(n, start + per_line)):
                q, cat, good, bad = QUESTIONS[i % len(QUESTIONS)]
                reply = bad if rng.random() < 0.25 else good
                tid = f"{rng.getrandbits(128):032x}"
                root_id, llm_id = f"{rng.getrandbits(64):016x}", f"{rng.getrandbits(64):016x}"
                s = t0 + i * 3_000_000
                attrs = ",".join([_kv("openinference.span.kind", "CHAIN"), _kv("input.value", q),
                                  _kv("output.value", reply), _kv("session.id", f"s-{i // 2}"),
                                  _kv("tag.tags", [f"category:{cat}"])])
                spans.append(f'{{"traceId":"{tid}","spanId":"{root_id}","flags":256,"name":"support_turn","kind":2,'
                             f'"startTimeUnixNano":"{s}","endTimeUnixNano":"{s + 400_000_000}","attributes":[{attrs}],'
                             f'"status":{{}}}}')
                msgs_in = json.dumps([{"role": "user", "parts": [{"type": "text", "content": q}]}])
                msgs_out = json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": reply}],
                                        "finish_reason": "stop"}])
                attrs = ",".join([_kv("gen_ai.operation.name", "chat"), _kv("gen_ai.request.model", "local/support-v2"),
                                  _kv("gen_ai.input.messages", msgs_in), _kv("gen_ai.output.messages", msgs_out),
                                  _kv("gen_ai.usage.input_tokens", 12), _kv("gen_ai.usage.output_tokens", 20)])
                spans.append(f'{{"traceId":"{tid}","spanId":"{llm_id}","parentSpanId":"{root_id}","flags":256,'
                              f'"name":"chat local/support-v2","kind":3,"startTimeUnixNano":"{s + 3_000_000}",'
                              f'"endTimeUnixNano":"{s + 390_000_000}","attributes":[{attrs}],"status":{{}}}}')
                if cat == "grounding":
                    attrs = ",".join([_kv("openinference.span.kind", "RETRIEVER"),
                                      _kv("retrieval.documents.0.document.id", "kb-01"),
                                      _kv("retrieval.documents.0.document.content", good)])
                    spans.append(f'{{"traceId":"{tid}","spanId":"{rng.getrandbits(64):016x}","parentSpanId":'
                                 f'"{root_id}","flags":256,"name":"retrieve","kind":1,"startTimeUnixNano":"{s}",'
                                 f'"endTimeUnixNano":"{s + 2_000_000}","attributes":[{attrs}],"status":{{}}}}')
                if reply == bad and rng.random() < 0.4:
                    flagged += 1
                    spans.append(f'{{"traceId":"{tid}","spanId":"{rng.getrandbits(64):016x}","parentSpanId":'
                                 f'"{root_id}","flags":256,"name":"user_feedback","kind":1,"startTimeUnixNano":'
                                 f'"{s + 10**9}","endTimeUnixNano":"{s + 10**9 + 1000}","attributes":['
                                 f'{_kv("feedback.value", "thumbs_down")}],"status":{{}}}}')
            out.write('{"resourceSpans":[' + resource + '"scopeSpans":[{"scope":{"name":"nimbus.support"},"spans":['
                      + ",".join(spans) + "]}]}]}\n")
    return {"traces": n, "thumbs_down": flagged, "bytes": path.stat().st_size}


def write_parquet(path: Path, n: int, seed: int = 1) -> dict:
    import datetime as dt

    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    idx = np.arange(n)
    which = idx % len(QUESTIONS)
    bad = rng.random(n) < 0.25
    t0 = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    frame = pl.DataFrame({
        "trace_id": [f"{x:032x}" for x in rng.integers(0, 2**63, n)],
        "timestamp": pl.datetime_range(t0, t0 + dt.timedelta(milliseconds=3 * (n - 1)), "3ms", eager=True,
                                       time_zone="UTC"),
        "session_id": [f"s-{i // 2}" for i in range(n)],
        "input": [QUESTIONS[w][0] for w in which],
        "output": [QUESTIONS[w][3] if b else QUESTIONS[w][2] for w, b in zip(which, bad)],
        "model": "local/support-v2", "release": "support-v2", "service": "nimbus-support",
        "latency_ms": rng.uniform(40, 900, n),
        "feedback": [("down" if b and r < 0.4 else None) for b, r in zip(bad, rng.random(n))],
        "tags": [[f"category:{QUESTIONS[w][1]}"] for w in which],
    })
    frame.write_parquet(path)
    return {"traces": n, "bytes": path.stat().st_size}


def project(root: Path) -> Path:
    if root.exists():
        shutil.rmtree(root)
    for name in ("demo", "calibration"):
        shutil.copytree(ROOT / "datasets" / name, root / "datasets" / name, ignore=shutil.ignore_patterns("*.py"))
    return root


def child(args: argparse.Namespace) -> int:
    """One measured batch, in this (child) process; prints the phases as JSON."""
    from evalplatform.history import HistoryStore
    from evalplatform.monitoring import update_monitors
    from evalplatform.project import Project
    from evalplatform.traces import pipeline as P

    root = Path(args.child)
    proj = Project(root)
    setup = P.setup_for(proj, "demo")
    store = HistoryStore(proj.history_path)
    phases = {}
    t = time.perf_counter()
    batch = P.ingest(setup, store, args.file)
    phases["read+validate+signals"] = time.perf_counter() - t
    assert batch.status == "accepted", batch.description
    t = time.perf_counter()
    sampled = P.sample_batch(setup, store, batch.batch_id)
    phases["sample"] = time.perf_counter() - t
    t = time.perf_counter()
    scored = P.score_sample(setup, store, batch.batch_id)
    phases["score"] = time.perf_counter() - t
    t = time.perf_counter()
    update_monitors(setup, store, batch.batch_id)
    phases["monitor"] = time.perf_counter() - t
    # VmHWM belongs to this address space (reset at exec); ru_maxrss would carry the parent's pages from fork.
    hwm = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
               if line.startswith("VmHWM:"))
    print(json.dumps({"phases": phases, "n_traces": batch.n_traces, "n_flagged": batch.n_flagged,
                      "n_sampled": sampled["n_sampled"], "scorers": scored["scorers"], "peak_rss_mb": hwm / 1024}))
    return 0


def measure(cmd: list[str], env: dict) -> dict:
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    out = proc.stdout.read().decode()
    err = proc.stderr.read().decode()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"child failed ({code}): {err[-2000:]}")
    return {"wall_s": wall, **json.loads(out.strip().splitlines()[-1])}


def bench_batches(args) -> list[dict]:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"otlp": out / "traces-1m.jsonl", "parquet": out / "traces-1m.parquet"}
    if not files["otlp"].exists() or args.regenerate:
        t = time.perf_counter()
        info = write_otlp(files["otlp"], args.traces)
        print(f"wrote {files['otlp']}: {info} in {time.perf_counter() - t:.1f} s", flush=True)
    if not files["parquet"].exists() or args.regenerate:
        info = write_parquet(files["parquet"], args.traces)
        print(f"wrote {files['parquet']}: {info}", flush=True)
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "GX_ANALYTICS_ENABLED": "false",
           "PYTHONPATH": str(ROOT)}
    env.pop("EVALPLATFORM_HOME", None)
    env.pop("EVALPLATFORM_HISTORY", None)
    rows = []
    for kind, path in files.items():
        if args.only not in (None, kind):
            continue
        runs = []
        for r in range(args.runs):
            root = project(out / f"proj-{kind}")
            folder = root / "traces" / "demo"
            folder.mkdir(parents=True)
            os.link(path, folder / path.name)
            result = measure([sys.executable, str(Path(__file__)), "--child", str(root), "--file", path.name], env)
            print(f"{kind} run {r + 1}: {json.dumps(result)}", flush=True)
            runs.append(result)
        med = statistics.median(x["wall_s"] for x in runs)
        rss = statistics.median(x["peak_rss_mb"] for x in runs)
        rows.append({"format": kind, "file_mb": path.stat().st_size / 2**20, "wall_s_median": med,
                     "peak_rss_mb_median": rss, "runs": runs})
    return rows


def bench_sensor(args) -> dict:
    import dagster as dg

    from definitions import build_definitions

    out = Path(args.out) / "sensor"
    root = project(out)
    folder = root / "traces" / "demo"
    folder.mkdir(parents=True)
    past = time.time_ns() - 3600 * 10**9
    for i in range(args.sensor_files):
        f = folder / f"batch-{i:06d}.jsonl"
        f.write_text('{"trace_id": "x"}\n')
        os.utime(f, ns=(past + i, past + i))
    defs = build_definitions(root)
    sensor = defs.resolve_sensor_def("demo_trace_files_sensor")
    timings = {"first_tick_s": [], "steady_tick_s": []}
    with dg.DagsterInstance.ephemeral() as instance:
        for _ in range(5):
            t = time.perf_counter()
            first = sensor(dg.build_sensor_context(instance=instance, cursor=None, definitions=defs))
            timings["first_tick_s"].append(time.perf_counter() - t)
        cursor = json.dumps({"mtime_ns": past + args.sensor_files - 1, "names": [f"batch-{args.sensor_files - 1:06d}.jsonl"]})
        for _ in range(5):
            t = time.perf_counter()
            steady = sensor(dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs))
            timings["steady_tick_s"].append(time.perf_counter() - t)
    return {"files": args.sensor_files, "first_tick_requests": len(first.run_requests),
            "steady_tick_requests": len(steady.run_requests or []),
            **{k: statistics.median(v) for k, v in timings.items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "out" / "traces"))
    parser.add_argument("--only", choices=["otlp", "parquet", "sensor"], default=None)
    parser.add_argument("--sensor-files", type=int, default=10_000)
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    results = {}
    if args.only in (None, "otlp", "parquet"):
        results["batches"] = bench_batches(args)
    if args.only in (None, "sensor"):
        results["sensor"] = bench_sensor(args)
    print(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
