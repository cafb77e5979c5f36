# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export LITELLM_LOCAL_MODEL_COST_MAP := True
export LITELLM_LOG := ERROR
export GX_ANALYTICS_ENABLED := false
export DAGSTER_DISABLE_TELEMETRY := 1
export DAGSTER_HOME := $(CURDIR)/.dagster_home
# The browser test drives Debian's Chromium (.ci/run installs it); Playwright must never fetch its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: setup demo demo-monitor test test-e2e screenshots ui bench clean-state

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	@test ! -e "$$($(BIN)/python -c 'import site; print(site.getsitepackages()[0])')/litellm_init.pth" \
		|| (echo "litellm_init.pth found: a compromised litellm release is installed" && exit 3)
	touch $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml $(STAMP)
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	@# Create the instance's storage once, before anything can race on it (sensors/instance.py).
	$(BIN)/python -c "from sensors.instance import ensure_instance_storage; ensure_instance_storage()"

setup: $(STAMP) $(DAGSTER_HOME)/dagster.yaml

# The demo: judges calibrated (one refused), then the PR tier of the demo suite through Dagster (in-process):
# v1 passes and is promoted as the baseline, then the regressed v2 is blocked. Its runs share one warm launcher
# (README, "The Dagster engine's warm launcher"), stopped at the end; if the demo fails midway it exits after 60 s.
demo: export EVALPLATFORM_LAUNCHER_IDLE_S ?= 60
demo: setup
	@echo "=== judges: calibrated against human labels (datasets/calibration); the always-PASS judge must be refused ==="
	@$(BIN)/evalplatform calibrate --suite demo; code=$$?; \
	  if [ $$code -eq 1 ]; then echo "(exit 1: a judge was refused, as the demo intends)"; else exit $$code; fi
	@echo ""
	@echo "=== the PR tier of the demo suite against support-v1 ==="
	$(BIN)/evalplatform run --suite demo
	@echo ""
	@echo "=== the same suite against support-v2 (a regressed release) ==="
	@$(BIN)/evalplatform run --suite demo --model local/support-v2; code=$$?; \
	  if [ $$code -eq 1 ]; then echo "(exit 1: the gate blocked v2, as it should)"; else exit $$code; fi
	@echo ""
	@echo "=== the agent suite (datasets/agent): an order-desk agent graded by the state it leaves, orders-v1 then orders-v2 ==="
	$(BIN)/evalplatform run --suite agent
	@$(BIN)/evalplatform run --suite agent --model orders-v2; code=$$?; \
	  if [ $$code -eq 1 ]; then echo "(exit 1: the gate blocked orders-v2, which cancels orders without checking them)"; else exit $$code; fi
	@echo ""
	@$(BIN)/evalplatform launcher stop > /dev/null
	@echo "next: 'make ui' opens the Dagster UI (lineage, re-runs) at http://127.0.0.1:3000;"
	@echo "      '$(BIN)/evalplatform history list' lists the runs in .evalplatform/history.duckdb"

# Production monitoring on the demo app (a scratch copy of the project under .evalplatform/demo-monitor): v1 then
# v2 traffic as OTLP JSON files, the trace sensor, a monitor alerting after v2 ships, a scripted review, the failure
# appended to the regression set, and the next PR-tier run including it.
demo-monitor: setup
	$(BIN)/python -m sensors.demo_monitor

test: setup
	$(BIN)/pytest

# The end-to-end tests alone: real webserver and daemon, PostgreSQL, headless Chromium.
test-e2e: setup
	$(BIN)/pytest -m e2e

# Re-take the README's asset-graph picture (docs/img/lineage.png) with the browser test.
screenshots: setup
	EVALPLATFORM_SAVE_SCREENSHOTS=1 $(BIN)/pytest tests/e2e/test_ui_browser.py

ui: setup
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

bench: setup
	$(BIN)/python bench/bench_run.py

clean-state:
	rm -rf .evalplatform .dagster_home
