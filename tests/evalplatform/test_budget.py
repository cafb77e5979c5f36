"""Judge cost is recorded like the target's; a run prints its estimate before calling anything, is refused (exit 2,
one line) when the estimate is over its budget, and stops and fails closed when it reaches its budget midway.

Against a real local OpenAI-compatible server, with prices registered in litellm for its models."""

from __future__ import annotations

import json

import polars as pl
import pytest

from evalplatform.budget import Budget, Limits, estimate_run
from evalplatform.cli import main
from evalplatform.errors import InputError
from evalplatform.history import HistoryStore
from evalplatform.pipeline import planned_run, scored_run
from evalplatform.project import Project
from evalplatform.report import usage
from evalplatform.request import RunRequest
from evalplatform.suite import load_suite
from tests.helpers.openai_server import OpenAIServer

IN_PRICE, OUT_PRICE = 0.001, 0.01  # USD per token: the target's and the judge's


@pytest.fixture(scope="module")
def server():
    from evalplatform.models.calls import _load_litellm

    litellm = _load_litellm()
    for model in ("openai/budgeted", "openai/judge"):
        litellm.register_model({model: {"input_cost_per_token": IN_PRICE, "output_cost_per_token": OUT_PRICE,
                                        "litellm_provider": "openai", "mode": "chat"}})
    srv = OpenAIServer(max_lifetime_s=180).start()
    yield srv
    srv.stop()


def write_project(tmp_path, monkeypatch, server, *, model: str = "openai/budgeted", max_tokens: int = 64,
                  extra: str = "", n: int = 6) -> Project:
    root = tmp_path / "proj"
    suite = root / "datasets" / "priced"
    suite.mkdir(parents=True)
    (suite / "cases.jsonl").write_text("".join(json.dumps({"id": f"c{i}", "category": "c", "text": f"hello {i}"}) + "\n"
                                               for i in range(n)))
    (suite / "prompt.txt").write_text("Say {{ text }}\n")
    (suite / "suite.yaml").write_text(f"""
name: priced
datasets: [cases.jsonl]
prompt: prompt.txt
target: {{model: {model}, api_base: "{server.base_url}", api_key_env: TEST_LOCAL_KEY, max_tokens: {max_tokens},
          max_attempts: 1}}
concurrency: 1
scorers:
  - {{id: says_hello, type: contains, criterion: correctness, value: "hello"}}
  - {{id: polite, type: llm_judge, criterion: tone, input_field: text, advisory: true, rubric_text: "PASS when polite.",
     judge: {{model: openai/judge, api_base: "{server.base_url}", api_key_env: TEST_LOCAL_KEY, max_attempts: 1,
             max_tokens: {max_tokens}}}}}
gate: {{pass_rate_floor: 0.5}}
tiers: {{pr: {{scorers: [deterministic, llm_judge], adaptive: false}}, nightly: {{repeats: 2}}}}
{extra}
""")
    monkeypatch.setenv("TEST_LOCAL_KEY", "sk-test-local-0123456789abcdef")
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(root))
    monkeypatch.chdir(root)
    for name in ("EVALPLATFORM_HOME", "EVALPLATFORM_HISTORY", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)
    server.reset()
    return Project(root)


def test_judge_tokens_and_cost_are_recorded_per_verdict_and_summed_apart_from_the_target(tmp_path, monkeypatch,
                                                                                         server):
    project = write_project(tmp_path, monkeypatch, server)
    run, record = scored_run(project, RunRequest(suite="priced", no_cache=True))
    judged = run.results.filter(pl.col("scorer") == "polite")
    assert judged.height == 6 and judged["scorer_calls"].to_list() == [1] * 6
    assert judged["scorer_tokens_in"].min() > 0 and judged["scorer_tokens_out"].min() > 0
    expected = [IN_PRICE * a + OUT_PRICE * b for a, b in zip(judged["scorer_tokens_in"], judged["scorer_tokens_out"])]
    assert judged["scorer_cost_usd"].to_list() == pytest.approx(expected)
    # Deterministic scorers call no model: their usage stays empty, not zero.
    assert run.results.filter(pl.col("scorer") == "says_hello")["scorer_calls"].null_count() == 6
    stored = HistoryStore(project.history_path).get_run(run.run_id)
    assert stored["judge_calls"] == 6 == server.count("judge")
    assert stored["judge_cost_usd"] == pytest.approx(sum(expected))
    assert stored["cost_usd"] > 0  # the target's, as before
    assert stored["total_cost_usd"] == pytest.approx(stored["cost_usd"] + stored["judge_cost_usd"])
    u = usage(run.results)
    assert u["judge_cost_usd"] == pytest.approx(sum(expected)) and u["by_scorer"]["polite"]["calls"] == 6
    assert u["by_cost_tier"]["llm_judge"]["verdicts"] == 6
    assert u["total_cost_usd"] == pytest.approx(stored["total_cost_usd"])


def test_the_estimate_is_printed_before_any_call_and_the_summary_sets_it_against_what_was_made(tmp_path, monkeypatch,
                                                                                               server, capsys):
    write_project(tmp_path, monkeypatch, server)
    assert main(["run", "--suite", "priced", "--engine", "direct", "--no-cache"]) == 0
    out = capsys.readouterr().out.splitlines()
    estimate = next(i for i, line in enumerate(out) if line.startswith("estimate: "))
    assert out[estimate].startswith("estimate: 12 model calls (target 6, judges 6) ~$")
    assert estimate < next(i for i, line in enumerate(out) if line.startswith("calls "))
    judges = next(line for line in out if line.startswith("judge calls "))
    assert judges.startswith("judge calls 6 (verdicts 6, cache hits 0)") and "[polite 6]" in judges
    total = next(line for line in out if line.startswith("cost $"))
    assert "for 12 model calls; estimated $" in total and "for 12 before the run" in total


def test_the_estimate_takes_token_counts_from_the_history_once_it_has_them(tmp_path, monkeypatch, server):
    project = write_project(tmp_path, monkeypatch, server, max_tokens=400)
    store = HistoryStore(project.history_path)
    suite = load_suite(project.datasets_dir / "priced" / "suite.yaml")
    plan = planned_run(store, suite, RunRequest(suite="priced"))
    before = estimate_run(plan, store)
    assert before.parts[0].token_source.startswith("prompt size and max_tokens")
    assert before.parts[0].tokens_out == 400  # no history: max_tokens, an upper bound
    scored_run(project, RunRequest(suite="priced", no_cache=True))
    after = estimate_run(plan, store)
    assert after.parts[0].token_source == "history (6 calls)" and after.parts[0].tokens_out < 400
    assert after.parts[1].token_source == "history (6 verdicts)"
    assert after.cost_usd < before.cost_usd


@pytest.mark.parametrize("args, where", [(["--budget-usd", "0.000001"], "--budget-usd"),
                                         (["--max-calls", "3"], "--max-calls")])
def test_a_run_estimated_over_its_budget_is_refused_in_one_line_before_any_call(tmp_path, monkeypatch, server, capsys,
                                                                                args, where):
    project = write_project(tmp_path, monkeypatch, server)
    assert main(["run", "--suite", "priced", "--engine", "direct", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and where in err[0]
    assert server.count() == 0
    assert not HistoryStore(project.history_path).path.exists()  # nothing recorded


def test_a_suite_budget_names_the_file_and_field_and_a_tier_budget_overrides_it(tmp_path, monkeypatch, server, capsys):
    project = write_project(tmp_path, monkeypatch, server, extra="budget_usd: 0.000001\n")
    assert main(["run", "--suite", "priced", "--engine", "direct"]) == 2
    err = capsys.readouterr().err
    assert "suite.yaml" in err and "budget_usd" in err and "over the budget of $1e-06" in err
    suite = project.datasets_dir / "priced" / "suite.yaml"
    suite.write_text(suite.read_text().replace("adaptive: false}", "adaptive: false, budget_usd: 100}"))
    assert main(["run", "--suite", "priced", "--engine", "direct"]) == 0
    assert server.count() == 12


def test_a_dollar_budget_on_a_model_without_a_price_is_refused(tmp_path, monkeypatch, server, capsys):
    write_project(tmp_path, monkeypatch, server, model="openai/no-price-known")
    assert main(["run", "--suite", "priced", "--engine", "direct", "--budget-usd", "5"]) == 2
    err = capsys.readouterr().err
    assert "no price for openai/no-price-known" in err and server.count() == 0


def test_a_run_that_reaches_its_budget_midway_stops_calling_and_fails_closed(tmp_path, monkeypatch, server, capsys):
    # The history's token averages come from short cases; the cases then grow ~25-fold, so the estimate (from the
    # history) lets the run start and the budget is crossed a few calls in (one call in flight at a time).
    project = write_project(tmp_path, monkeypatch, server)
    store = HistoryStore(project.history_path)
    scored_run(project, RunRequest(suite="priced", no_cache=True))
    (project.datasets_dir / "priced" / "cases.jsonl").write_text("".join(
        json.dumps({"id": f"c{i}", "category": "c", "text": f"hello {i} " + "word " * 50}) + "\n" for i in range(6)))
    server.reset()
    plan = planned_run(store, load_suite(project.datasets_dir / "priced" / "suite.yaml"), RunRequest(suite="priced"))
    estimated = estimate_run(plan, store).cost_usd
    budget = round(estimated * 1.5, 6)
    code = main(["run", "--suite", "priced", "--engine", "direct", "--no-cache", "--budget-usd", str(budget),
                 "--json", "d.json"])
    assert code == 1
    decision = json.loads((project.root / "d.json").read_text())
    assert decision["overall"] == "BLOCK"
    rule = next(r for r in decision["rules"] if r["rule_id"] == "run_within_budget")
    assert rule["outcome"] == "ERROR" and rule["blocks"] and "budget exhausted" in rule["reason"]
    made = server.count()
    assert 0 < made < 12
    run = store.get_run(decision["run_id"])
    assert run["status"] == "complete" and run["decision"] == "BLOCK"
    results = store.get_results(decision["run_id"])
    stopped = results.filter(pl.col("error").str.contains("budget exhausted").fill_null(False))
    assert stopped.height > 0 and (stopped["outcome"] == "error").all()
    # Every call planned is accounted for: made, or an error row saying why not.
    assert server.count("budgeted") + stopped.filter(pl.col("scorer") == "says_hello").height == 6
    assert server.count("judge") + stopped.filter(pl.col("scorer") == "polite").height == 6
    spent = run["total_cost_usd"]
    assert spent >= budget  # crossed: that is what stopped it
    assert "budget exhausted" in capsys.readouterr().out


def test_a_budget_admits_calls_until_a_limit_is_reached_and_counts_the_refusals():
    budget = Budget(Limits(budget_usd=1.0, max_calls=3, budget_from="budget_usd", calls_from="max_calls"))
    assert budget.admit() and budget.admit()
    budget.spend(0.6)
    budget.spend(0.5)  # $1.10 spent: over the dollar limit
    assert not budget.admit() and budget.exhausted and budget.refused == 1
    assert "$1.1000 spent, the limit of budget_usd ($1)" in budget.reason()
    calls = Budget(Limits(max_calls=2, calls_from="--max-calls"))
    assert calls.admit() and calls.admit() and not calls.admit()
    assert "2 model calls made, the limit of --max-calls (2)" in calls.reason()


PRICED_PIPELINE = '''
from evalplatform.targets import TargetResult

PLAYED = []

def answer(case):
    PLAYED.append(case.prompt)
    return TargetResult(output=f"hello {case.prompt.strip()}", tokens_in=3, tokens_out=5, cost_usd=0.25)
'''


def _pipeline_suite(tmp_path, n: int = 6):
    from tests.python_targets import case, make_suite

    return make_suite(tmp_path, PRICED_PIPELINE, cases=[case(f"c{i}", f"q{i}", ["hello"]) for i in range(n)],
                      target={"python": "priced_pipeline_budget:answer"}, module="priced_pipeline_budget",
                      extra={"concurrency": 1})


def test_a_python_targets_trials_are_held_to_the_budget_one_call_each_at_their_reported_cost(tmp_path):
    import sys

    from evalplatform.runner import execute, plan_run

    suite_file = _pipeline_suite(tmp_path)
    plan = plan_run(load_suite(suite_file), "pr")
    budget = Budget(Limits(budget_usd=0.6, budget_from="--budget-usd"))
    run = execute(plan, "run-budget", cache_dir=None, budget=budget)
    # $0.25 a trial: the third brings the spend to $0.75, over $0.60; the other three are never played.
    assert len(sys.modules["priced_pipeline_budget"].PLAYED) == 3
    rows = run.results.filter(pl.col("error").fill_null("").str.contains("budget exhausted"))
    assert rows["case_id"].n_unique() == 3 and (rows["outcome"] == "error").all()
    assert budget.exhausted and budget.spent_usd == pytest.approx(0.75) and budget.refused == 3


def test_a_python_targets_estimate_is_unknown_until_its_trials_have_reported_their_cost(tmp_path, monkeypatch):
    suite_file = _pipeline_suite(tmp_path)
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(suite_file.parents[2]))
    monkeypatch.chdir(suite_file.parents[2])
    for name in ("EVALPLATFORM_HOME", "EVALPLATFORM_HISTORY"):
        monkeypatch.delenv(name, raising=False)
    project = Project(suite_file.parents[2])
    store = HistoryStore(project.history_path)
    plan = planned_run(store, load_suite(suite_file), RunRequest(suite="team"))
    before = estimate_run(plan, store)
    assert before.cost_usd is None and before.calls == 6  # one call per trial; it may call any model
    assert "no price or cost history for python:priced_pipeline_budget:answer" in before.line()
    # A dollar limit cannot be held without a price: refused before any trial, naming the option.
    with pytest.raises(InputError) as err:
        scored_run(project, RunRequest(suite="team", budget_usd=5.0))
    assert err.value.field == "--budget-usd" and HistoryStore(project.history_path).list_runs().height == 0
    scored_run(project, RunRequest(suite="team", no_cache=True))
    after = estimate_run(plan, store)
    assert after.cost_usd == pytest.approx(6 * 0.25) and after.parts[0].token_source == "history (6 trials)"


def test_a_zero_dollar_budget_admits_free_calls_and_stops_at_the_first_paid_one():
    budget = Budget(Limits(budget_usd=0.0, budget_from="--budget-usd"))
    for _ in range(3):
        assert budget.admit()
        budget.spend(0.0)  # a local model: free
    assert not budget.exhausted
    budget.spend(0.01)
    assert not budget.admit() and budget.exhausted


@pytest.mark.parametrize("extra, field", [
    ("budget_usd: .nan", "budget_usd"), ("budget_usd: -5", "budget_usd"), ("budget_usd: 1e400", "budget_usd"),
    ("max_calls: 0", "max_calls"), ("max_calls: 2.5", "max_calls"),
    ("pipeline_slos: {pr_wall_p95_s: .inf}", "pipeline_slos.pr_wall_p95_s"),
    ("pipeline_slos: {max_judge_cost_per_run_usd: .nan}", "pipeline_slos.max_judge_cost_per_run_usd"),
    ("pipeline_slos: {min_cases_per_minute: .inf}", "pipeline_slos.min_cases_per_minute"),
])
def test_a_corrupt_limit_in_the_suite_is_one_line_naming_file_and_field_before_anything_runs(tmp_path, monkeypatch,
                                                                                            capsys, extra, field):
    from tests.suite_helpers import make_project

    root = make_project(tmp_path)
    suite = root / "datasets" / "mini" / "suite.yaml"
    suite.write_text(suite.read_text() + extra + "\n")
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(root))
    for name in ("EVALPLATFORM_HOME", "EVALPLATFORM_HISTORY"):
        monkeypatch.delenv(name, raising=False)
    assert main(["run", "--suite", "mini", "--engine", "direct"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(suite) in err[0] and f"{field}:" in err[0]
    assert not (root / ".evalplatform" / "history.duckdb").exists()


@pytest.mark.parametrize("args", [["--budget-usd", "nan"], ["--budget-usd", "-1"], ["--budget-usd", "inf"],
                                  ["--budget-usd", "1e309"], ["--max-calls", "0"], ["--max-calls", "-3"]])
def test_a_corrupt_limit_on_the_command_line_is_one_line_exit_2(tmp_path, monkeypatch, capsys, args):
    from tests.suite_helpers import make_project

    root = make_project(tmp_path)
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(root))
    for name in ("EVALPLATFORM_HOME", "EVALPLATFORM_HISTORY"):
        monkeypatch.delenv(name, raising=False)
    assert main(["run", "--suite", "mini", "--engine", "direct", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and args[0] in err[0]


@pytest.mark.parametrize("model", ["gpt-4o-mini", "openai/gpt-4o-mini", "mistral/mistral-small-latest"])
def test_the_estimates_price_is_litellms_read_from_its_cost_map_file(model):
    import litellm

    from evalplatform.budget import _price

    want = sum(litellm.cost_per_token(model=model, prompt_tokens=1234, completion_tokens=567))
    assert _price(model, 1234, 567) == pytest.approx(want, rel=1e-12)


def test_an_openai_compatible_model_without_a_price_is_unknown_without_asking_litellm(monkeypatch):
    from evalplatform import budget
    from evalplatform.models import calls

    monkeypatch.setattr(calls, "_load_litellm", lambda: pytest.fail("litellm was loaded to price an openai/ model"))
    assert budget._price("openai/house-model", 100, 10) is None
    assert budget._price("openai/gpt-4o-mini", 100, 10) > 0
