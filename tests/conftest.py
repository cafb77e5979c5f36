"""Test-wide environment: offline litellm, telemetry off, no writes outside tmp dirs."""

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_LOG", "ERROR")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")  # the browser test uses Debian's Chromium
# `evalplatform run` programs in tests run the Dagster engine cold (a program of its own per command): a warm
# launcher server per test project would outlive the test. tests/assets/test_launch_server.py opts in and
# stops every server it started by its PID.
os.environ.setdefault("EVALPLATFORM_LAUNCHER", "cold")
