"""Benchmark: `evalplatform run` against a mock OpenAI-compatible server, side by side with a raw asyncio client and Promptfoo.

Run: .venv/bin/python bench/bench_run.py [--runs 3] [--only NAME,...] [--out DIR]
Needs ../shared/bench (the mock server, the 200-case suite and the peers); skips with a message when absent.
Every command runs as a fresh child process: wall = perf_counter around it, peak RSS and exit code from
os.wait4 of that child, max in-flight and the request phase (first request to last response) from the
mock's /stats, reset before each run. One mock (127.0.0.1, --latency-ms) serves the session; it is stopped
by the PID this script started and exits by itself after --max-seconds anyway.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# ../shared/bench from the main checkout, ../../shared/bench from a worktree under wt/; BENCH_SHARED overrides.
SHARED = Path(os.environ.get("BENCH_SHARED") or next(
    (p for p in (ROOT.parent / "shared" / "bench", ROOT.parent.parent / "shared" / "bench") if p.is_dir()),
    ROOT.parent / "shared" / "bench"))
PY = sys.executable
_SCRIPT = Path(PY).parent / "evalplatform"
# The installed console script is what users run; `-m` is the fallback when it is missing.
EVALPLATFORM = [str(_SCRIPT)] if _SCRIPT.exists() else [PY, "-m", "evalplatform"]
PF_DIR = Path(os.environ.get("PROMPTFOO_DIR", Path(tempfile.gettempdir()) / "pf"))
# The code location's modules: a temp project links to them so the Dagster engine can run the bench suite.
CODE_LOCATION = ("definitions.py", "assets", "sensors", "workspace.yaml", "dagster.yaml", "requirements.lock")


@dataclass
class Variant:
    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    calls: int | None = None          # model calls the mock should see per run (None: not checked)
    prime: list[str] | None = None    # a command run once, untimed, before the timed runs
    note: str = ""


@dataclass
class Run:
    wall_s: float
    rc: int
    peak_rss_mb: float
    requests: int | None
    max_in_flight: int | None
    span_s: float | None
    tail: str
    server_child_rss_mb: float | None = None   # the warm launcher's child that ran the command (from its log)


# ---------------------------------------------------------------- mock server

class Mock:
    def __init__(self, latency_ms: float, max_seconds: float):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(Path(tempfile.gettempdir()) / f"bench_run_mock_{self.port}.log", "w")
        self.proc = subprocess.Popen(
            [PY, str(SHARED / "mock_llm_server.py"), "--port", str(self.port), "--latency-ms", str(latency_ms),
             "--max-seconds", str(max_seconds)], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                self._get("/health")
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise SystemExit("mock server did not start within 15 s")

    def _get(self, path: str) -> dict:
        with urllib.request.urlopen(self.base + path, timeout=5) as r:
            return json.loads(r.read())

    def stats(self) -> dict:
        return self._get("/stats")

    def reset(self) -> None:
        req = urllib.request.Request(self.base + "/stats/reset", data=b"{}", method="POST")
        urllib.request.urlopen(req, timeout=5).read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- timing one child

def run_child(argv: list[str], cwd: Path, env: dict[str, str], timeout_s: float, out: Path) -> tuple[float, int, float]:
    """(wall s, exit code, peak RSS MB) of one process; killed (exit -9) past timeout_s."""
    with open(out, "w") as f:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = t0 + timeout_s
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                wall = time.perf_counter() - t0
                break
            if time.perf_counter() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                _, status, usage = os.wait4(proc.pid, 0)
                wall = time.perf_counter() - t0
                break
            time.sleep(0.005)
    proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen from waiting again
    return wall, proc.returncode, usage.ru_maxrss / 1024


def _server_logs(env: dict) -> list[Path]:
    return sorted(Path(env.get("TMPDIR", "/nonexistent")).glob("evalplatform-launcher-*/*.log"))


def _child_lines(env: dict) -> set[str]:
    return {line for log in _server_logs(env) for line in log.read_text(errors="replace").splitlines()
            if " ended: " in line}


def _warm(v: Variant, env: dict) -> bool:
    """Whether the variant's command is handed to a warm launcher (a Dagster-engine run, launcher not cold)."""
    return "dagster" in v.argv and env.get("EVALPLATFORM_LAUNCHER") != "cold"


def _new_child_rss(env: dict, seen: set[str]) -> float | None:
    """Peak RSS of the launcher child that ran the command just timed (the server logs it when it reaps it)."""
    if not _server_logs(env):
        return None
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        new = _child_lines(env) - seen
        if new:
            return max(float(line.rsplit("peak RSS ", 1)[1].split()[0]) for line in new)
        if not _server_logs(env):
            return None
        time.sleep(0.1)
    return None


def measure(v: Variant, mock: Mock | None, runs: int, base_env: dict, workdir: Path, timeout_s: float) -> list[Run]:
    env = {**base_env, **v.env}
    out_dir = workdir / "logs" / v.name
    out_dir.mkdir(parents=True, exist_ok=True)
    if v.prime:
        wall, rc, _ = run_child(v.prime, v.cwd, env, timeout_s, out_dir / "prime.txt")
        print(f"  {v.name}: prime run {wall:.2f}s exit {rc}", flush=True)
    result = []
    for i in range(runs):
        if mock:
            mock.reset()
        seen = _child_lines(env) if _warm(v, env) else set()
        wall, rc, rss = run_child(v.argv, v.cwd, env, timeout_s, out_dir / f"run{i + 1}.txt")
        child_rss = _new_child_rss(env, seen) if _warm(v, env) else None
        st = mock.stats() if mock else {}
        tail = (out_dir / f"run{i + 1}.txt").read_text(errors="replace").strip().splitlines()[-1:]
        r = Run(wall, rc, rss, st.get("requests"), st.get("max_in_flight"), st.get("active_span_s"),
                tail[0][:160] if tail else "", child_rss)
        if v.calls is not None and r.requests != v.calls:
            r.tail = f"[mock saw {r.requests} requests, expected {v.calls}] " + r.tail
        print(f"  {v.name} run {i + 1}: {wall:.2f}s exit {rc} rss {rss:.0f}MB requests {r.requests} "
              f"in-flight {r.max_in_flight} span {r.span_s}", flush=True)
        result.append(r)
    return result


# ---------------------------------------------------------------- suites

def write_suite(folder: Path, name: str, rows: list[dict], repeats: int, concurrency: int,
                transport: str = "auto") -> Path:
    """suite.yaml + cases.jsonl + prompt.txt: the prompt is the question, a `contains` check of `expected`."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "cases.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps({"id": r["id"], "question": r["question"], "expected": r["expected"],
                                "category": r["tags"][0] if r.get("tags") else "none"}) + "\n")
    # No trailing newline: the mock answers by a hash of the exact user message, as the peers send it.
    (folder / "prompt.txt").write_text("{{ question }}")
    (folder / "suite.yaml").write_text(
        f"schema_version: 1\nname: {name}\n"
        "description: bench suite against the mock server (contains the expected keyword)\n"
        "datasets:\n  - path: cases.jsonl\nprompt: prompt.txt\n"
        "target: {model: openai/mock-model, api_base: '${MOCK_BASE_URL}', api_key_env: MOCK_API_KEY, temperature: 0, "
        f"transport: {transport}}}\n"
        f"concurrency: {concurrency}\nrepeats: {repeats}\n"
        "scorers:\n  - {id: keyword, type: contains, criterion: correctness, column: expected}\n"
        "gate:\n  pass_rate_floor: 0.5\n  confidence: 0.95\n")
    return folder / "suite.yaml"


def big_rows(base: list[dict], n: int) -> list[dict]:
    """n cases shaped like the 200 (same prompt words, a distinct keyword each) so every prompt is new."""
    rows = []
    for i in range(n):
        b = base[i % len(base)]
        kw = f"{b['expected']}x{i:05d}"
        q = b["question"].replace(f"echo: {b['expected']}", f"echo: {kw}").replace(b["id"][1:], f"{i:05d}", 1)
        rows.append({"id": f"c{i:05d}", "question": q, "expected": kw, "tags": b.get("tags")})
    return rows


def make_project(workdir: Path, name: str, suites: dict[str, tuple[list[dict], int]], concurrency: int,
                 api_base: str) -> Path:
    # A suite named ..._litellm is sent through litellm (transport: litellm), the others take `auto`.
    """A project folder: the code location linked from the repo, the bench suites under datasets/."""
    proj = workdir / name
    (proj / "datasets").mkdir(parents=True, exist_ok=True)
    for item in CODE_LOCATION:
        if (ROOT / item).exists() and not (proj / item).exists():
            (proj / item).symlink_to(ROOT / item)
    for suite_name, (rows, repeats) in suites.items():
        path = write_suite(proj / "datasets" / suite_name, suite_name, rows, repeats, concurrency,
                           "litellm" if suite_name.endswith("_litellm") else "auto")
        # The suite file takes a literal api_base (no env interpolation), so write the mock's URL in.
        path.write_text(path.read_text().replace("${MOCK_BASE_URL}", f"{api_base}/v1"))
    return proj


# ---------------------------------------------------------------- variants

# The mock's own floor on this machine: N plain urllib requests from 16 threads, no framework at all.
FLOOR_CLIENT = r"""
import concurrent.futures, json, os, sys, urllib.request
url = os.environ["MOCK_BASE_URL"] + "/chat/completions"
n, threads = int(sys.argv[1]), int(sys.argv[2])
def call(i):
    body = json.dumps({"model": "mock-model", "messages": [{"role": "user", "content": f"floor {i} echo: w{i}"}]})
    req = urllib.request.Request(url, data=body.encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)["choices"][0]["message"]["content"]
with concurrent.futures.ThreadPoolExecutor(threads) as ex:
    print(len(list(ex.map(call, range(n)))), "answers")
"""

def variants(workdir: Path, mock: Mock, concurrency: int, big_cases: int, big_repeats: int) -> list[Variant]:
    base = [json.loads(line) for line in (SHARED / "suite_200.jsonl").read_text().splitlines() if line.strip()]
    big = big_rows(base, big_cases)
    proj = make_project(workdir, "project", {"bench200": (base, 1), "bench2000": (big, big_repeats),
                                             "bench200_litellm": (base, 1), "bench200x3": (base, 3)},
                        concurrency, mock.base)
    # The Dagster engine gets one project per suite: the code location's partitions are the suites of
    # EVALPLATFORM_PROJECT's datasets/, and with several suites there the job's asset checks fail on the
    # partitions that were never materialized (FileNotFoundError .../storage/scored_run/<other suite>).
    proj_dagster = make_project(workdir, "project_dagster", {"bench200": (base, 1)}, concurrency, mock.base)
    proj_big_dagster = make_project(workdir, "project_big", {"bench2000": (big, big_repeats)}, concurrency, mock.base)
    s200 = str(proj / "datasets" / "bench200" / "suite.yaml")
    s2000 = str(proj / "datasets" / "bench2000" / "suite.yaml")
    s200_litellm = str(proj / "datasets" / "bench200_litellm" / "suite.yaml")
    s200x3 = str(proj / "datasets" / "bench200x3" / "suite.yaml")
    c = str(concurrency)

    def home(tag: str, project: Path | None = None) -> dict:
        return {"EVALPLATFORM_HOME": str(workdir / "home" / tag), "EVALPLATFORM_PROJECT": str(project or proj)}

    ep = [*EVALPLATFORM, "run", "--concurrency", c]
    n_big = big_cases * big_repeats
    v = [
        Variant("python -c pass", [PY, "-c", "pass"], ROOT, note="interpreter start"),
        Variant("mock floor 200", [PY, "-c", FLOOR_CLIENT, "200", c], ROOT, calls=200,
                note="16 stdlib threads, urllib, no framework: the mock's capacity on this machine"),
        Variant("evalplatform --help", [*EVALPLATFORM, "--help"], ROOT, note="CLI start"),
        Variant("raw-asyncio", [PY, str(SHARED / "peers" / "raw" / "run_raw.py"), "--concurrency", c],
                SHARED / "peers" / "raw", calls=200, note="AsyncOpenAI + Semaphore, our venv's python"),
    ]
    pf_bin = PF_DIR / "node_modules" / ".bin" / "promptfoo"
    if pf_bin.exists():
        pf_cfg = workdir / "pf"
        v.append(Variant(
            "promptfoo", [str(pf_bin), "eval", "-c", str(SHARED / "peers" / "promptfoo" / "promptfooconfig.yaml"),
                          "-j", c, "--no-table", "--no-progress-bar", "--no-cache", "-o", str(pf_cfg / "results.json")],
            SHARED / "peers" / "promptfoo", {"PROMPTFOO_CONFIG_DIR": str(pf_cfg / ".promptfoo")}, calls=200))
    else:
        print(f"promptfoo not found at {pf_bin}: skipped (install: mkdir -p {PF_DIR} && cd {PF_DIR} && "
              "npm init -y && npm install promptfoo)")
    v += [
        Variant("evalplatform direct", [*ep, "--suite", s200, "--engine", "direct", "--no-cache"], ROOT,
                home("direct"), calls=200, note="fresh EVALPLATFORM_HOME; run 1 pays the one-time dataset check"),
        Variant("evalplatform direct litellm", [*ep, "--suite", s200_litellm, "--engine", "direct", "--no-cache"],
                ROOT, home("direct-litellm"), calls=200, note="the same suite with transport: litellm"),
        Variant("evalplatform dagster", [*ep, "--suite", "bench200", "--engine", "dagster", "--no-cache"],
                proj_dagster, home("dagster", proj_dagster), calls=200,
                prime=[*ep, "--suite", "bench200", "--engine", "dagster", "--no-cache"],
                note="warm launcher (the prime run started it); the job runs in its forked child, ephemeral instance"),
        Variant("evalplatform direct cached", [*ep, "--suite", s200, "--engine", "direct"], ROOT, home("cached"),
                calls=0, prime=[*ep, "--suite", s200, "--engine", "direct"],
                note="prime run fills the cache; timed runs are identical re-runs"),
        Variant("evalplatform dagster cached", [*ep, "--suite", "bench200", "--engine", "dagster"], proj_dagster,
                home("dagster-cached", proj_dagster), calls=0,
                prime=[*ep, "--suite", "bench200", "--engine", "dagster"],
                note="warm launcher (the prime run started it)"),
        Variant("evalplatform dagster cached cold-launcher", [*ep, "--suite", "bench200", "--engine", "dagster"],
                proj_dagster, {**home("dagster-cached-cold", proj_dagster), "EVALPLATFORM_LAUNCHER": "cold"},
                calls=0, prime=[*ep, "--suite", "bench200", "--engine", "dagster"],
                note="EVALPLATFORM_LAUNCHER=cold: a launcher program per command"),
        Variant("raw-asyncio x3", [PY, str(SHARED / "peers" / "raw" / "run_raw.py"), "--concurrency", c,
                                   "--repeat", "3"], SHARED / "peers" / "raw", calls=600),
        Variant("evalplatform direct 200x3", [*ep, "--suite", s200x3, "--engine", "direct", "--no-cache"], ROOT,
                home("direct-x3"), calls=600),
        Variant(f"mock floor {n_big}", [PY, "-c", FLOOR_CLIENT, str(n_big), c], ROOT, calls=n_big,
                note="16 stdlib threads, urllib, no framework"),
        Variant(f"raw-asyncio x{big_cases * big_repeats // 200}",
                [PY, str(SHARED / "peers" / "raw" / "run_raw.py"), "--concurrency", c,
                 "--repeat", str(big_cases * big_repeats // 200)],
                SHARED / "peers" / "raw", calls=big_cases * big_repeats, note="same call count as the big suite"),
        Variant(f"evalplatform direct {big_cases}x{big_repeats}",
                [*ep, "--suite", s2000, "--engine", "direct", "--no-cache"], ROOT, home("big"),
                calls=big_cases * big_repeats),
        Variant(f"evalplatform dagster {big_cases}x{big_repeats}",
                [*ep, "--suite", "bench2000", "--engine", "dagster", "--no-cache"], proj_big_dagster,
                home("big-dagster", proj_big_dagster),
                calls=big_cases * big_repeats),
    ]
    return v


# ---------------------------------------------------------------- import probe

PROBED = ("litellm", "great_expectations", "dagster", "openai", "scipy", "statsmodels", "duckdb", "polars")


def import_probe(v: Variant, base_env: dict, workdir: Path, timeout_s: float) -> dict:
    """Which heavy packages one more run of `v` imports, with their cumulative import time (-X importtime)."""
    argv = [PY, "-X", "importtime", "-m", "evalplatform", *v.argv[len(EVALPLATFORM):]]
    out = workdir / "logs" / v.name / "importtime.txt"
    _, rc, _ = run_child(argv, v.cwd, {**base_env, **v.env}, timeout_s, out)
    seen = {}
    for line in out.read_text(errors="replace").splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            _, cumulative, name = line.split("|")
            if name.strip() in PROBED:
                seen[name.strip()] = round(int(cumulative) / 1e6, 3)
    return {"variant": v.name, "argv": argv, "rc": rc, "imported_s": seen,
            "not_imported": [m for m in PROBED if m not in seen]}


# ---------------------------------------------------------------- report

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(name: str, v: Variant, runs: list[Run]) -> dict:
    return {
        "variant": name, "argv": v.argv, "cwd": str(v.cwd), "env": v.env, "note": v.note,
        "wall_s": [round(r.wall_s, 3) for r in runs], "wall_median_s": round(med([r.wall_s for r in runs]), 3),
        "rc": [r.rc for r in runs], "peak_rss_mb": round(med([r.peak_rss_mb for r in runs]), 1),
        "requests": [r.requests for r in runs], "max_in_flight": [r.max_in_flight for r in runs],
        "span_s": [r.span_s for r in runs], "span_median_s": med([r.span_s for r in runs]),
        "tails": [r.tail for r in runs],
        "server_child_rss_mb": med([r.server_child_rss_mb for r in runs]),
    }


def markdown(results: list[dict]) -> str:
    """One table row per variant: the figures BENCHMARKS.md records, medians over the runs."""
    lines = ["| tool | wall median s | runs (s) | exit codes | max in-flight | request phase s (median) | "
             "peak RSS MB (median) | mock requests |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        span = f"{r['span_median_s']:.2f}" if r["span_median_s"] is not None else "-"
        lines.append(f"| {r['variant']} | **{r['wall_median_s']:.2f}** | {', '.join(f'{w:.2f}' for w in r['wall_s'])} | "
                     f"{sorted(set(r['rc']))} | {max((x or 0) for x in r['max_in_flight'])} | {span} | "
                     f"{r['peak_rss_mb']:.0f} | {sorted(set(r['requests']))} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--latency-ms", type=float, default=100.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--big-cases", type=int, default=2000)
    ap.add_argument("--big-repeats", type=int, default=3)
    ap.add_argument("--only", default="", help="comma-separated variant names (substring match)")
    ap.add_argument("--timeout", type=float, default=300.0, help="per-command bound, seconds")
    ap.add_argument("--out", default=None, help="folder for results.json and logs (default: a temp dir)")
    ap.add_argument("--report", default=None, help="print the Markdown tables of an earlier results.json and exit")
    args = ap.parse_args(argv)
    if args.report:
        print(markdown(json.loads(Path(args.report).read_text())))
        return 0

    if not (SHARED / "mock_llm_server.py").is_file():
        print(f"skipped: {SHARED} (the mock server and peers) is absent")
        return 0
    workdir = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_run_"))
    workdir.mkdir(parents=True, exist_ok=True)
    mock = Mock(args.latency_ms, max_seconds=3600)
    try:
        env = {**os.environ, "MOCK_BASE_URL": f"{mock.base}/v1", "MOCK_API_KEY": "sk-mock",
               "OPENAI_API_KEY": "sk-mock", "LITELLM_LOCAL_MODEL_COST_MAP": "True", "NO_COLOR": "1",
               "PROMPTFOO_DISABLE_TELEMETRY": "1", "PROMPTFOO_DISABLE_UPDATE": "1",
               "DAGSTER_DISABLE_TELEMETRY": "1"}
        env.pop("DAGSTER_HOME", None)
        env.pop("EVALPLATFORM_HISTORY", None)
        # The warm launcher servers the Dagster variants start live in a runtime folder of this sitting's own,
        # and are stopped by their PIDs at the end.
        runtime = workdir / "rt"
        runtime.mkdir(exist_ok=True)
        env["TMPDIR"] = str(runtime)
        env.setdefault("EVALPLATFORM_LAUNCHER", "server")
        only = [s.strip() for s in args.only.split(",") if s.strip()]
        results = []
        for v in variants(workdir, mock, args.concurrency, args.big_cases, args.big_repeats):
            if only and not any(s == v.name or (s.endswith("*") and v.name.startswith(s[:-1])) for s in only):
                continue
            shutil.rmtree(v.env.get("EVALPLATFORM_HOME", workdir / "none"), ignore_errors=True)
            print(f"{v.name}: {' '.join(v.argv)}", flush=True)
            runs = measure(v, mock, args.runs, env, workdir, args.timeout)
            results.append(summarize(v.name, v, runs))
            if v.name.endswith("cached") or v.name == "evalplatform direct":
                results[-1]["import_probe"] = import_probe(v, env, workdir, args.timeout)
                print(f"  import probe: {results[-1]['import_probe']['imported_s']}", flush=True)
            (workdir / "results.json").write_text(json.dumps(results, indent=2))
    finally:
        mock.stop()
        for pid_file in (workdir / "rt").glob("evalplatform-launcher-*/*.pid"):
            try:
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
    floor = math.ceil(args.big_cases * args.big_repeats / args.concurrency) * args.latency_ms / 1000
    print(f"\nresults: {workdir / 'results.json'}   (floor for the big suite: {floor:.1f} s + start)")
    print(markdown(results))
    for r in results:
        child = f"  server child rss {r['server_child_rss_mb']:.0f}MB" if r.get("server_child_rss_mb") else ""
        print(f"{r['variant']:<34}{r['wall_median_s']:>8.2f}s  rc {r['rc']}  rss {r['peak_rss_mb']:.0f}MB  "
              f"in-flight {r['max_in_flight']}  span {r['span_median_s']}{child}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
