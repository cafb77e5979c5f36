"""Reports a person would rather look at than read: offline HTML per run and per suite, plots that are really drawn."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import pytest

from evalplatform.cli import main
from evalplatform.history import HistoryStore
from evalplatform.pipeline import scored_run
from evalplatform.project import find_project
from evalplatform.request import RunRequest
from tests.evalplatform.tier_helpers import mini_with_judge


def _pixels(png: bytes):
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    return image, image.getcolors(maxcolors=1 << 20)


def test_the_trend_plot_renders_to_a_png_that_is_not_blank():
    from evalplatform import plots

    points = [{"run_id": f"r{i}", "tier": "pr" if i % 2 else "nightly", "index": i, "estimate": 0.8 + 0.02 * (i % 5),
               "lower": 0.7 + 0.02 * (i % 5), "upper": 0.9 + 0.01 * (i % 5)} for i in range(12)]
    png = plots.trend(points, floor=0.8, mark="r5")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image, colors = _pixels(png)
    assert image.width > 300 and image.height > 150
    # Not blank: many distinct colours (lines, bands, text), and the drawing is not all one colour.
    assert len(colors) > 50
    most = max(count for count, _ in colors)
    assert most < 0.95 * image.width * image.height


def test_an_empty_history_still_draws_a_plot_that_says_so():
    from evalplatform import plots

    _, colors = _pixels(plots.trend([]))
    assert len(colors) > 2  # the "no complete run yet" text


def _offline(html: str) -> None:
    # Self-contained: no script, no stylesheet or image fetched from anywhere.
    assert "<script" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "data:image/png;base64," in html


def test_report_writes_a_run_report_and_a_trend_report_that_open_offline(tmp_path, monkeypatch, capsys):
    mini_with_judge(tmp_path, monkeypatch, tiers={"nightly": "scorers: [deterministic, llm_judge]"})
    project = find_project()
    scored_run(project, RunRequest(suite="mini", tier="pr"))
    run, _ = scored_run(project, RunRequest(suite="mini", tier="nightly"))
    out = tmp_path / "run.html"
    assert main(["report", "--suite", "mini", "--run", run.run_id[:-2], "--out", str(out)]) == 0
    assert f"report: {out}" in capsys.readouterr().out
    page = out.read_text(encoding="utf-8")
    _offline(page)
    assert run.run_id in page and "Release policy" in page and "Pass rate over runs" in page
    assert "judge calls" in page and "Cases whose verdict changed between repeats" in page
    assert page.count("data:image/png;base64,") == 4  # categories, judges, trend, cost and latency
    assert main(["report", "--suite", "mini"]) == 0
    trend = project.state_dir / "reports" / "mini" / "trend.html"
    assert f"report: {trend}" in capsys.readouterr().out
    _offline(trend.read_text(encoding="utf-8"))


def test_a_run_report_of_a_run_that_is_not_there_or_a_folder_as_out_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    mini_with_judge(tmp_path, monkeypatch)
    project = find_project()
    run, _ = scored_run(project, RunRequest(suite="mini", tier="pr"))
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    for suite, args, words in (
            ("mini", ["--run", "20990101T000000Z-deadbeef"], "no run"),
            ("mini", ["--run", " "], "--run: is empty"),
            ("mini", ["--run", run.run_id, "--out", str(tmp_path)], "is a folder"),
            ("nope", [], "nope"),                                                   # an unknown suite
            ("nope", ["--run", run.run_id], "nope"),
            ("mini", ["--out", str(blocker / "report.html")], "cannot write"),     # its folder is a file
            ("mini", ["--plots", str(blocker)], "is a file, not a folder"),
            ("mini", ["--plots", str(blocker / "plots")], "cannot write the plots")):
        assert main(["report", "--suite", suite, *args]) == 2, (suite, args)
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0] and err[0].startswith("error: "), (args, err)
        assert "Traceback" not in err[0]
    assert blocker.read_text() == "not a folder"  # nothing the user had is overwritten


def test_report_plots_saves_each_plot_as_a_png_for_the_readme(tmp_path, monkeypatch, capsys):
    mini_with_judge(tmp_path, monkeypatch)
    project = find_project()
    for _ in range(3):
        scored_run(project, RunRequest(suite="mini", tier="pr"))
    run, _ = scored_run(project, RunRequest(suite="mini", tier="nightly"))
    folder = tmp_path / "img"
    assert main(["report", "--suite", "mini", "--plots", str(folder)]) == 0
    assert f"plots: {folder}" in capsys.readouterr().out
    assert sorted(p.name for p in folder.iterdir()) == ["report_cost_latency.png", "report_pass_rate.png"]
    image, colors = _pixels((folder / "report_pass_rate.png").read_bytes())
    assert image.width > 300 and len(colors) > 50
    assert max(count for count, _ in colors) < 0.95 * image.width * image.height
    assert main(["report", "--suite", "mini", "--run", run.run_id, "--plots", str(folder)]) == 0
    assert {p.name for p in folder.iterdir()} == {"report_cost_latency.png", "report_pass_rate.png",
                                                  "report_categories.png", "report_judges.png"}


def test_listing_the_verbs_or_reading_the_report_help_does_not_import_matplotlib():
    code = ("import sys\nfrom evalplatform.cli import main\nmain(['--help'])\nmain(['report', '--help'])\n"
            "print('matplotlib' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"
    assert "report" in done.stdout


@pytest.mark.parametrize("tier", ["pr"])
def test_the_category_plot_sets_a_run_against_its_baseline(tmp_path, monkeypatch, tier):
    from evalplatform.html_report import category_rates

    mini_with_judge(tmp_path, monkeypatch)
    project = find_project()
    run, _ = scored_run(project, RunRequest(suite="mini", tier=tier))
    rates = category_rates(HistoryStore(project.history_path).get_results(run.run_id), [])
    assert {r["category"] for r in rates} >= {"echo"}
    for r in rates:
        assert r["lower"] <= r["estimate"] <= r["upper"]
