"""The Dagster UI in a real browser: a blocked PR run's suite, checks and failing rule's reason are on screen.

Debian's Chromium, headless, driven by Playwright (never a browser Playwright downloads), against a
real webserver on a free port. Screenshots go to the test's temp folder; with
EVALPLATFORM_SAVE_SCREENSHOTS=1 the asset graph is also saved as docs/img/lineage.png for the README.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from evalplatform.ci import DagsterCiClient
from evalplatform.decide import effective_policy
from evalplatform.suite import load_suite
from tests.e2e.procs import BIN, ROOT, free_port, graphql_loaded, start, stop, wait_until

pytestmark = pytest.mark.e2e

# --- What the UI shows today. The asset-graph redesign changes these, and only these. -------------
SUITE = "demo"
BLOCKED_MODEL = "local/support-v2"  # the regressed release the demo's gate blocks
JOB = "demo_pr"
RUN_CONFIG = {"ops": {"demo__pr_run": {"config": {"model": BLOCKED_MODEL}}}}
GRAPH_PATH = "/locations/evalplatform/asset-groups/demo"  # the suite's group: its lineage
GRAPH_ASSETS = ("golden_cases", "regression_set", "pr_run", "nightly_run", "promoted_baseline")  # node labels
CHECKS_PATH = "/assets/demo/pr_run?view=checks"  # the asset whose checks are the suite's policy rules
CHECK_PATH = CHECKS_PATH + "&checkDetail={check}"
FAILING_CHECK = "pass_rate_at_least_floor"
FAILING_REASON = re.compile(r"upper bound \d\.\d+ < 0\.8")
# ----------------------------------------------------------------------------------------------------

CHROMIUM = os.environ.get("EVALPLATFORM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run"]
UI_TIMEOUT_MS = 30_000
RUN_TIMEOUT_S = 300
LINEAGE_PNG = ROOT / "docs" / "img" / "lineage.png"


@pytest.fixture(scope="module")
def chromium() -> str:
    if not Path(CHROMIUM).is_file():
        reason = f"Chromium is not installed at {CHROMIUM}; `.ci/run` installs it (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(reason)  # CI installs it, so a CI machine without it is a broken CI script
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    home, state = tmp_path_factory.mktemp("dagster_home"), tmp_path_factory.mktemp("state")
    # No daemon: the default coordinator launches runs at once. No "join the community" dialog.
    (home / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"
        "run_coordinator:\n  module: dagster.core.run_coordinator\n  class: DefaultRunCoordinator\n")
    env = {k: v for k, v in os.environ.items() if k not in ("EVALPLATFORM_PROJECT", "EVALPLATFORM_HISTORY")}
    env.update(DAGSTER_HOME=str(home), EVALPLATFORM_HOME=str(state), DAGSTER_DISABLE_TELEMETRY="1",
               LITELLM_LOCAL_MODEL_COST_MAP="True")
    port, log = free_port(), home / "webserver.log"
    proc = start([str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
                 env=env, cwd=ROOT, log=log)
    try:
        wait_until(lambda: graphql_loaded(port), timeout_s=180, what="dagster-webserver", alive=proc, log=log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def _suite_rules(suite: str) -> list[str]:
    return sorted(r.id for r in effective_policy(load_suite(ROOT / "datasets" / suite / "suite.yaml")).policy.rules)


def test_blocked_run_shows_its_assets_checks_and_failing_reason_in_the_browser(chromium, ui, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    client = DagsterCiClient(ui)
    # The judges are calibrated through their assets first (the UI's judge job), as a gating judge must be.
    assert client.wait(client.launch("judge_nightly_job", None, {}, {}), RUN_TIMEOUT_S) == "SUCCESS"
    run_id = client.launch(JOB, None, RUN_CONFIG, {"evalplatform/test": "ui-browser"})
    assert client.wait(run_id, RUN_TIMEOUT_S) == "FAILURE"  # blocked by its gate
    gates, _ = client.outcomes(run_id)
    failing = next(g for g in gates if g.name == FAILING_CHECK)
    assert not failing.passed and failing.severity == "ERROR"
    reason = str(failing.metadata["reason"])
    assert FAILING_REASON.search(reason), reason
    rules = _suite_rules(SUITE)
    assert FAILING_CHECK in rules

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, timeout=UI_TIMEOUT_MS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(UI_TIMEOUT_MS)
            expect.set_options(timeout=UI_TIMEOUT_MS)

            # The asset graph: every asset of the suite's PR job is a node on it.
            page.goto(ui + GRAPH_PATH)
            page.get_by_role("button", name=re.compile("Materialize all")).wait_for()
            for asset in GRAPH_ASSETS:
                page.get_by_text(asset, exact=True).first.wait_for(state="visible")
            # The checked asset's node counts the suite's checks (the run failed some), once loaded.
            # (+1: the release decision, the check that gates promotion)
            page.get_by_text(re.compile(rf"^\d+ / {len(rules) + 1} Passed$")).first.wait_for(state="visible")
            expect(page.get_by_text(re.compile(r"^Loading"))).to_have_count(0)
            page.screenshot(path=tmp_path / "asset_graph.png")
            if os.environ.get("EVALPLATFORM_SAVE_SCREENSHOTS") == "1":
                # The README's picture: the whole group, zoomed out with the graph's zoom-out button (the
                # lowest of the zoom controls, 28 px from the right edge and 149 px from the bottom).
                width, height = page.viewport_size["width"], page.viewport_size["height"]
                for _ in range(9):
                    page.mouse.click(width - 28, height - 149)
                    page.wait_for_timeout(400)
                page.wait_for_timeout(1500)
                page.screenshot(path=tmp_path / "lineage_readme.png")

            # The checks tab: one check per rule of the suite's policy, the failing one marked Failed.
            page.goto(ui + CHECKS_PATH)
            for rule in rules:
                page.get_by_title(rule, exact=True).wait_for(state="visible")  # long names are truncated
            failing_row = page.get_by_title(FAILING_CHECK, exact=True).locator("xpath=..")
            failing_row.get_by_text("Failed", exact=True).wait_for(state="visible")
            page.screenshot(path=tmp_path / "checks.png")

            # The failing check's page: its reason, as the run decided it.
            page.goto(ui + CHECK_PATH.format(check=FAILING_CHECK))
            page.get_by_text(reason).first.wait_for(state="visible")
            page.get_by_text("Failed", exact=True).first.wait_for(state="visible")
            page.screenshot(path=tmp_path / "failing_check.png", full_page=True)
        finally:
            browser.close()

    for name in ("asset_graph.png", "checks.png", "failing_check.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    if os.environ.get("EVALPLATFORM_SAVE_SCREENSHOTS") == "1":
        LINEAGE_PNG.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / "lineage_readme.png", LINEAGE_PNG)
